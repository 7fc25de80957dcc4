import os
import signal
import shutil
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import zeroimage  # noqa: E402
import imagetools  # noqa: E402

REQUIRE_INTEROP = os.environ.get("ZEROIMAGE_REQUIRE_INTEROP") == "1"
BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")


def pytest_configure(config):
    config.addinivalue_line("markers", "interop: runs real tools (skopeo, umoci, runc)")
    config.addinivalue_line("markers", "prog(machine=62, name='app'): what the `prog` fixture writes for "
                                       "the tests it marks (a module's pytestmark)")
    # Whatever a test (or the zeroimage code it runs) leaves open fails it: sockets, files, threads' errors.
    for rule in ("error::ResourceWarning", "error::pytest.PytestUnraisableExceptionWarning",
                 "error::pytest.PytestUnhandledThreadExceptionWarning"):
        config.addinivalue_line("filterwarnings", rule)
    # zeroimage's layer cache goes to a scratch directory, not the user's ~/.cache (subprocesses inherit it)
    os.environ["ZEROIMAGE_CACHE_DIR"] = tempfile.mkdtemp(prefix="zeroimage-test-cache-")
    imagetools.compiled_module()
    # Started in the background (`tests/run &`, a CI step), the suite inherits SIGINT ignored, and so
    # would every zeroimage it starts (an ignored signal stays ignored across exec): the tests of Ctrl-C
    # need it taken, as in a terminal. A handler here is reset to the default in each child.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_addoption(parser):
    parser.addoption("--shard", metavar="I/N", default=None,
                     help="run the Ith of N interleaved parts of the tests (tests/run runs N at once)")


def pytest_collection_modifyitems(config, items):
    """With --shard I/N, every Nth test from the Ith: the parts are alike in what they hold (each has
    its share of every file, slow and fast), so N of them at once end at about the same time."""
    shard = config.getoption("--shard")
    if not shard:
        return
    try:
        index, count = (int(part) for part in shard.split("/"))
    except ValueError:
        raise pytest.UsageError("--shard is I/N, like 0/2, not %r" % shard) from None
    if not 0 <= index < count:
        raise pytest.UsageError("--shard I/N needs 0 <= I < N")
    kept = items[index::count]
    config.hook.pytest_deselected(items=[item for position, item in enumerate(items) if position % count != index])
    items[:] = kept


def need_tool(name):
    """The tool's path; skip when missing, or fail when CI requires interop tests."""
    path = shutil.which(name)
    if path is None:
        message = "%s is not installed (tests/run installs it when run as root)" % name
        if REQUIRE_INTEROP:
            pytest.fail(message + "; ZEROIMAGE_REQUIRE_INTEROP=1 makes this a failure")
        pytest.skip(message)
    return path


@pytest.fixture(autouse=True)
def own_cache_directory(monkeypatch, tmp_path_factory):
    """Each test its own cache directory (the layer cache, blobs.json): the registries serve the whole
    run, and where one test's blobs were seen must not turn another's uploads into mounts."""
    monkeypatch.setenv("ZEROIMAGE_CACHE_DIR", str(tmp_path_factory.mktemp("cache", numbered=True)))


@pytest.fixture(autouse=True)
def spec_checked_outputs(monkeypatch):
    """Every archive and layout directory zeroimage writes in this process (library calls, main()) must
    satisfy the image spec: checked as the operation that wrote it finishes (a test may damage it
    afterwards on purpose), reported when the test ends."""
    import speccheck
    problems = []
    for sink_class in (zeroimage.ArchiveSink, zeroimage.LayoutSink):
        monkeypatch.setattr(sink_class, "start", _checking_start(sink_class.start, speccheck, problems))
    yield problems
    if problems:
        pytest.fail("zeroimage wrote images that break the image spec:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture(autouse=True)
def stop_signals_never_left_blocked():
    """No test may leave SIGINT or SIGTERM blocked in this process: every program a later test starts
    would inherit the mask and never see its Ctrl-C (atomic_output holds them for a moment)."""
    yield
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, []) & {signal.SIGINT, signal.SIGTERM}
    if blocked:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)
        pytest.fail("the test left %s blocked" % ", ".join(sorted(s.name for s in blocked)), pytrace=False)


def _checking_start(start, speccheck, problems):
    def checking_start(self, stack):
        def check(exc_type, exc, tb):
            path = self.path
            if exc_type is None and (os.path.isfile(path) or os.path.isfile(os.path.join(path, "oci-layout"))):
                problems.extend("%s: %s" % (path, problem) for problem in speccheck.check(path))
            return False
        stack.push(check)       # pushed first, so it runs after the output is renamed into place
        return start(self, stack)
    return checking_start


def static_busybox():
    """The path of a real statically linked binary (Debian's busybox-static), or None."""
    for path in BUSYBOX_PATHS:
        if os.path.exists(path):
            with open(path, "rb") as f:
                elf = zeroimage.read_elf(f)
            if elf and elf.interpreter is None:
                return path
    return None


@pytest.fixture(scope="session")
def busybox():
    """A real statically linked binary (Debian's busybox-static)."""
    if static_busybox():
        return static_busybox()
    message = "no static busybox (install Debian's busybox-static)"
    if REQUIRE_INTEROP:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def busybox_program(tmp_path, busybox):
    """The static busybox as the user's program: named busybox so it runs as itself."""
    path = tmp_path / "src" / "busybox"
    path.parent.mkdir()
    shutil.copyfile(busybox, str(path))
    os.chmod(str(path), 0o755)
    return path


@pytest.fixture
def prog(request, tmp_path):
    """A small program: a static ELF header (amd64) and 4 KiB of zeros at tmp_path/app, mode 0755. A module
    (or test) marked ``pytest.mark.prog(machine=183, name="prog")`` gets that machine under that name."""
    from binaries import make_elf
    marker = request.node.get_closest_marker("prog")
    wanted = dict(marker.kwargs) if marker else {}
    path = tmp_path / wanted.get("name", "app")
    path.write_bytes(make_elf(wanted.get("machine", 62)) + b"\0" * 4096)
    os.chmod(str(path), 0o755)
    return path


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    need_tool("openssl")
    import registries
    return registries.make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def token_server(pki):
    import registries
    server = registries.TokenServer(pki)
    yield server
    server.close()


@pytest.fixture(scope="session")
def registry_servers(tmp_path_factory, pki, token_server):
    """Start each mode's docker-registry once, on first use: "open", "basic", "token" (tests/registries.py),
    and "open-nodelete" (open, deletes disabled)."""
    import registries
    binary = need_tool("docker-registry")
    need_tool("htpasswd")
    started = {}

    def get(mode):
        if mode not in started:
            started[mode] = registries.RegistryProcess(binary, tmp_path_factory.mktemp("registry-" + mode),
                                                       mode, pki, token_server)
        return started[mode]
    yield get
    for server in started.values():
        server.close()


def _unavailable(message):
    if REQUIRE_INTEROP:
        pytest.fail(message + "; ZEROIMAGE_REQUIRE_INTEROP=1 makes this a failure")
    pytest.skip(message)


@pytest.fixture(scope="session")
def docker_engine():
    """A real Docker Engine (Debian's docker.io) on a private socket, for the whole session."""
    import engines
    dockerd = shutil.which("dockerd") or next((p for p in ("/usr/sbin/dockerd", "/sbin/dockerd") if os.path.exists(p)), None)
    if dockerd is None or not os.path.exists(engines.DOCKER_CLI):
        _unavailable("dockerd or %s is not installed (tests/run installs docker.io when run as root)" % engines.DOCKER_CLI)
    if os.geteuid() != 0:
        _unavailable("dockerd needs root here")
    engine = engines.DockerEngine(dockerd)
    yield engine
    engine.close()


@pytest.fixture
def servers():
    """start(routes, pki=None) -> a started loopback Server (tests/registries.py), closed after the test."""
    from registries import Server
    started = []

    def start(routes, pki=None):
        started.append(Server(routes, pki))
        return started[-1]
    yield start
    for server in started:
        server.close()


@pytest.fixture
def upstream(registry_servers):
    """The open registry, for a proxy to stand in front of."""
    return registry_servers("open")


@pytest.fixture
def open_place(tmp_path, pki, registry_servers):
    """zeroimage as a user of the open registry with a QuirkProxy before it (tests/clients.py's Place)."""
    import clients
    import registries
    upstream = registry_servers("open")
    proxy = registries.QuirkProxy(upstream)
    yield clients.Place(tmp_path, pki, upstream, proxy)
    proxy.close()


@pytest.fixture
def proxy(upstream):
    """A FaultProxy (tests/registries.py) in front of the open registry."""
    import registries
    p = registries.FaultProxy(upstream.host)
    yield p
    p.close()
