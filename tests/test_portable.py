"""Every platform Python runs on (issue 24, item 9): zeroimage on Windows, simulated here by taking
away what Windows lacks (tests/nonposix.py). build, login, push, pull, inspect and --load run through
``zeroimage.main()`` in this process against the real docker-registry and a fake engine, once as
POSIX and once simulated: the results must be the same. Then the portable paths one at a time."""

import errno
import io
import json
import ntpath
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

import speccheck
import zeroimage
from hostile_fakes import FakeEngine, tiny_elf
from nonposix import AF_UNIX, simulated_windows
from registries import USERS, write_helper

EPOCH = "1700000000"


def run_main(capsys, *argv, stdin=None):
    """``zeroimage.main(argv)`` in this process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    saved = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        code = zeroimage.main([str(a) for a in argv])
    finally:
        sys.stdin = saved
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


def ok(result):
    code, out, err = result
    assert code == 0, err
    return out


def _make_inputs(top):
    """The program and an --add tree (modes 0755: what Windows gives every file, so both runs agree)."""
    os.makedirs(os.path.join(str(top), "dist"))
    program = os.path.join(str(top), "dist", "app")
    with open(program, "wb") as f:
        f.write(tiny_elf())
    os.chmod(program, 0o755)
    tree = os.path.join(str(top), "static")
    os.makedirs(os.path.join(tree, "css"))
    for name, data in (("index.html", b"<p>hi</p>\n"), (os.path.join("css", "site.css"), b"p{}\n")):
        with open(os.path.join(tree, name), "wb") as f:
            f.write(data)
        os.chmod(os.path.join(tree, name), 0o755)
    for directory in (tree, os.path.join(tree, "css")):
        os.chmod(directory, 0o755)
    return program, tree


def _scenario(capsys, monkeypatch, top, registry, engine, repository):
    """login (through a credential helper), build -o, build --push (streamed upload), pull, push,
    inspect, build --load: what each said, for comparing."""
    program, tree = _make_inputs(top)
    home = os.path.join(str(top), "home")
    os.makedirs(os.path.join(home, ".docker"))
    with open(os.path.join(home, ".docker", "config.json"), "w") as f:
        json.dump({"credsStore": "test"}, f)
    bin_dir = os.path.join(str(top), "bin")
    os.makedirs(bin_dir)
    write_helper(bin_dir, os.path.join(str(top), "helper-store.json"))
    monkeypatch.setenv("PATH", bin_dir + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    # caches of its own: the places the other scenario's blobs went would turn its uploads into mounts
    monkeypatch.setenv("ZEROIMAGE_CACHE_DIR", os.path.join(str(top), "cache"))
    streamed = []           # the layers uploaded as they were made: GrowingFile.read_into at work
    send = zeroimage.LayerStream._send
    monkeypatch.setattr(zeroimage.LayerStream, "_send", lambda self: (send(self), streamed.append(self.file.size)))
    host = registry.host
    ref = "%s/%s/app:1" % (host, repository)
    results = {}
    ok(run_main(capsys, "login", "-u", "alice", "--password-stdin", host, stdin=USERS["alice"] + "\n"))
    with open(os.path.join(str(top), "helper-store.json")) as f:
        results["login stored"] = sorted(json.load(f))
    out = os.path.join(str(top), "out", "app.tar")
    os.makedirs(os.path.dirname(out))
    built = json.loads(ok(run_main(capsys, "build", "--json", "--add", tree + ":/srv/static", "-o", out, program)))
    assert built.pop("path") == out
    results["build"] = built
    pushed = json.loads(ok(run_main(capsys, "build", "--json", "--add", tree + ":/srv/static", "--push", ref, program)))
    results["build --push"] = pushed["digest"]
    results["streamed"] = list(streamed)
    assert streamed, "no layer went up as it was made"
    pulled = os.path.join(str(top), "pulled.tar")
    results["pull"] = ok(run_main(capsys, "pull", "-o", pulled, ref)).strip()
    results["push"] = ok(run_main(capsys, "push", pulled, "%s/%s/copy:1" % (host, repository))).strip().split("@")[1]
    results["inspect registry"] = json.loads(ok(run_main(capsys, "inspect", "--json", ref)))
    results["inspect archive"] = json.loads(ok(run_main(capsys, "inspect", "--json", out)))
    layout = os.path.join(str(top), "layout")           # a layout directory: its blobs opened without O_NOFOLLOW
    results["build layout"] = ok(run_main(capsys, "build", "--format", "oci-layout", "-o", layout, program))
    results["inspect layout"] = json.loads(ok(run_main(capsys, "inspect", "--json", layout)))
    for report in (results["inspect registry"], results["inspect archive"], results["inspect layout"]):
        for key in ("reference", "path", "name", "source"):
            report.pop(key, None)
    loaded = json.loads(ok(run_main(capsys, "build", "--json", "--load", "-t", "app:dev", program)))
    results["build --load"] = (loaded["digest"], engine.loaded[-1])
    return results


@pytest.fixture
def engine():
    fake = FakeEngine()
    yield fake
    fake.close()


def test_build_push_pull_inspect_load_give_on_windows_what_they_give_on_posix(
        capsys, monkeypatch, tmp_path, registry_servers, engine):
    registry = registry_servers("basic")
    monkeypatch.setenv("DOCKER_HOST", engine.host)
    monkeypatch.setenv("HOME", str(tmp_path / "posix" / "home"))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    posix = _scenario(capsys, monkeypatch, tmp_path / "posix", registry, engine, "posix")

    monkeypatch.delenv("DOCKER_HOST")           # Windows: Docker Desktop's pipe, by default
    opened = []

    def open_pipe(path):                        # the pipe, as a file: here the fake engine's socket
        opened.append(path)
        sock = socket.socket(AF_UNIX, socket.SOCK_STREAM)
        sock.connect(engine.path)
        with sock:
            return sock.makefile("rwb", buffering=0)
    monkeypatch.setattr(zeroimage, "_open_named_pipe", open_pipe)
    with simulated_windows(tmp_path / "windows" / "home"):
        assert not hasattr(os, "preadv") and not hasattr(socket, "AF_UNIX")
        windows = _scenario(capsys, monkeypatch, tmp_path / "windows", registry, engine, "windows")
    assert windows == posix
    assert opened and set(opened) == {"\\\\.\\pipe\\docker_engine"}
    assert os.path.isfile(str(tmp_path / "windows" / "home" / ".docker" / "config.json"))   # USERPROFILE's


CHILD = """
import sys
sys.path[:0] = [%(root)r, %(tests)r]
import nonposix
with nonposix.simulated_windows(%(home)r):
    import zeroimage                # imported where Windows' facilities are missing
    zeroimage._WINDOWS = True
    sys.argv = ["zeroimage"] + %(argv)r
    code = zeroimage._run_program()
sys.exit(code)
"""


def test_zeroimage_imports_and_runs_as_a_program_where_posix_is_missing(tmp_path):
    """A process of its own: zeroimage imported under the simulation, run as a program (its stop
    signals taken over and given back at once), builds what it builds on POSIX."""
    (tmp_path / "app").write_bytes(tiny_elf())
    os.chmod(str(tmp_path / "app"), 0o755)
    here = os.path.dirname(os.path.abspath(__file__))
    digests = []
    for name, script in (("posix", None), ("windows", CHILD)):
        argv = ["build", "-q", "-o", str(tmp_path / (name + ".tar")), str(tmp_path / "app")]
        command = [sys.executable, os.path.join(os.path.dirname(here), "zeroimage.py")] + argv if script is None else \
            [sys.executable, "-c", script % {"root": os.path.dirname(here), "tests": here, "home": str(tmp_path),
                                             "argv": argv}]
        r = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                           timeout=120, env=dict(os.environ, SOURCE_DATE_EPOCH=EPOCH))
        assert r.returncode == 0 and r.stderr == "", r.stderr
        digests.append(r.stdout)
    assert digests[0] == digests[1] and digests[0].startswith("sha256:")
    assert speccheck.check(str(tmp_path / "windows.tar")) == []


def test_stop_signals_wake_through_a_socket_pair_where_pipes_are_refused(tmp_path):
    session = zeroimage.Session(environ={})
    try:
        with simulated_windows(tmp_path):
            with pytest.raises(ValueError):             # the simulation refuses a pipe as Windows does
                r, w = os.pipe()
                try:
                    signal.set_wakeup_fd(w)
                finally:
                    os.close(r)
                    os.close(w)
            stops = zeroimage._StopSignals(session)
            try:
                with pytest.raises(KeyboardInterrupt):
                    signal.raise_signal(signal.SIGINT)
                assert session.cancelled.wait(10) and stops.received == signal.SIGINT
            finally:
                stops.close()
    finally:
        session.close()
    assert signal.set_wakeup_fd(-1) == -1


def test_a_growing_file_is_read_at_offsets_without_preadv(tmp_path):
    chunks = [bytes([i]) * (1000 + 37 * i) for i in range(60)]
    whole = b"".join(chunks)
    got = bytearray()
    with simulated_windows(tmp_path), open(str(tmp_path / "layer"), "w+b") as f:
        growing = zeroimage.GrowingFile(f)

        def write():
            for chunk in chunks:
                growing.write(chunk)
            growing.finish("sha256:" + "0" * 64)
        writer = threading.Thread(target=write)
        writer.start()
        buffer = bytearray(4093)
        while True:
            n = growing.read_into(len(got), buffer)
            got += buffer[:n]
            if not n and growing.done:
                break
        writer.join()
        assert growing.tell() == len(whole)         # the writer's position is where it left it
    assert bytes(got) == whole


@pytest.mark.parametrize("script, expect", [
    ("import sys; sys.stdout.write(sys.stdin.read().upper()); sys.stderr.write('e')", (0, b"PAYLOAD", b"e")),
    ("import sys; sys.stdout.write('x' * 5000)", "answered more than 1000 bytes"),
    ("import time; time.sleep(60)", "did not answer within 1 s"),
    ("import sys, time; sys.stdout.write('{}'); sys.stdout.flush(); time.sleep(60)", "did not answer within 1 s"),
    # gone, but a child of its own holds its output open: given up at the deadline all the same
    ("import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(20)'])",
     "did not answer within 1 s"),
])
def test_a_credential_helper_is_read_in_threads_where_select_takes_no_pipes(tmp_path, script, expect):
    started = time.monotonic()
    with simulated_windows(tmp_path):
        run = lambda: zeroimage._run_bounded([sys.executable, "-c", script], b"payload", os.environ, 1.0, 1000)  # noqa
        if isinstance(expect, tuple):
            assert run() == expect
        else:
            with pytest.raises(zeroimage.CredentialError, match=expect):
                run()
    assert time.monotonic() - started < 15


def test_files_added_on_windows_are_0755_as_dockers_tar_makes_them(tmp_path):
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "a.txt").write_bytes(b"a")
    os.chmod(str(tmp_path / "tree" / "a.txt"), 0o644)
    (tmp_path / "tree" / "ro.txt").write_bytes(b"r")
    os.chmod(str(tmp_path / "tree" / "ro.txt"), 0o444)
    os.chmod(str(tmp_path / "tree" / "sub"), 0o777)
    posix = {e.path: oct(e.mode) for e in zeroimage.tree_entries(str(tmp_path / "tree"), "/t")}
    with simulated_windows(tmp_path):
        windows = {e.path: oct(e.mode) for e in zeroimage.tree_entries(str(tmp_path / "tree"), "/t")}
    assert posix == {"/t": "0o755", "/t/a.txt": "0o644", "/t/ro.txt": "0o444", "/t/sub": "0o777"}
    assert windows == {"/t": "0o755", "/t/a.txt": "0o755", "/t/ro.txt": "0o555", "/t/sub": "0o755"}
    os.chmod(str(tmp_path / "tree" / "ro.txt"), 0o644)


def test_the_home_directory_is_userprofile_on_windows(tmp_path):
    environ = {"USERPROFILE": "C:\\Users\\me", "HOME": "/home/me"}
    assert zeroimage.home_directory(environ) == "/home/me"
    assert zeroimage.docker_config_path({"HOME": "/home/me"}) == os.path.join("/home/me", ".docker", "config.json")
    with simulated_windows(tmp_path) as mp:
        assert zeroimage.home_directory(environ) == "C:\\Users\\me"
        assert zeroimage.home_directory({"HOME": "/home/me"}) == "/home/me"     # (Git Bash without USERPROFILE)
        mp.setenv("HOME", str(tmp_path))        # (for posixpath.expanduser: ntpath's reads USERPROFILE)
        assert zeroimage.home_directory({}) == str(tmp_path)       # no pwd, no getuid: Python's guess


def test_progress_is_redrawn_only_on_a_terminal_that_draws_escapes(tmp_path):
    assert zeroimage._draws_escapes({})
    with simulated_windows(tmp_path):
        assert not zeroimage._draws_escapes({})                 # the old Windows console: plain lines
        assert zeroimage._draws_escapes({"WT_SESSION": "1"}) and zeroimage._draws_escapes({"TERM": "xterm"})


class _ReaderGoneOnWindows(io.TextIOBase):
    """stdout after `| more` ended, on Windows: EINVAL with ERROR_NO_DATA, not BrokenPipeError."""

    def write(self, text):
        error = OSError(errno.EINVAL, "Invalid argument")
        error.winerror = 232
        raise error

    def fileno(self):
        raise io.UnsupportedOperation("fileno")


def test_a_reader_gone_on_windows_is_a_quiet_141_as_a_broken_pipe(capsys, monkeypatch, tmp_path):
    (tmp_path / "app").write_bytes(tiny_elf())
    ok(run_main(capsys, "build", "-o", tmp_path / "app.tar", tmp_path / "app"))
    with simulated_windows(tmp_path) as mp:
        mp.setattr(sys, "stdout", _ReaderGoneOnWindows())
        code = zeroimage.main(["digest", str(tmp_path / "app.tar")])
    assert code == 141 and capsys.readouterr().err == ""
    assert zeroimage._run_bounded([sys.executable, "-c", "import sys; sys.stdin.close(); print('ok')"],
                                  b"x" * (1 << 20), os.environ, 30.0, 1000)[:2] == (0, b"ok\n")


ENGINE_ADDRESSES = [
    ("npipe://server/pipe/docker_engine", "a named pipe on this machine is npipe:////./pipe/NAME"),
    ("npipe:////./pipe/", "a named pipe on this machine"),
    ("npipe:////./pipe/a/b", "a named pipe on this machine"),
    ("npipe:////./pipe/a\x00b", "a named pipe on this machine"),
    ("ssh://me@host", "zeroimage knows unix://, npipe:// and tcp://"),
]


@pytest.mark.parametrize("address, message", ENGINE_ADDRESSES)
def test_an_engine_address_zeroimage_cannot_use_is_one_line(address, message):
    with pytest.raises(zeroimage.UsageError, match=message):
        zeroimage._engine_connection(address, 1.0)


def test_engines_on_windows_are_found_on_named_pipes_and_unix_sockets_are_said_missing(
        capsys, monkeypatch, tmp_path):
    with simulated_windows(tmp_path):
        assert zeroimage.engine_addresses({}) == ["npipe:////./pipe/docker_engine",
                                                  "npipe:////./pipe/podman-machine-default"]
        (tmp_path / "app").write_bytes(tiny_elf())
        monkeypatch.setenv("DOCKER_HOST", "unix:///var/run/docker.sock")
        code, out, err = run_main(capsys, "build", "--load", tmp_path / "app")
        assert code == 2 and "this Python has no unix sockets" in err and out == ""
        monkeypatch.setattr(zeroimage, "_open_named_pipe", lambda path: open(str(tmp_path / "no-such-pipe"), "r+b"))
        monkeypatch.delenv("DOCKER_HOST")
        code, out, err = run_main(capsys, "build", "--load", tmp_path / "app")
        assert code == 1 and err.startswith("zeroimage: error: no container engine answers: tried "
                                            "npipe:////./pipe/docker_engine (no such pipe), "
                                            "npipe:////./pipe/podman-machine-default (no such pipe); "
                                            "start Docker Desktop"), err


def test_engines_on_macos_include_docker_desktops_socket_in_the_home_directory(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert zeroimage.engine_addresses({"HOME": "/Users/me"}) == [
        "unix:///var/run/docker.sock", "unix:///Users/me/.docker/run/docker.sock", "unix:///run/podman/podman.sock"]


@pytest.fixture
def windows_paths():
    """os.path as Windows' for the pure functions called inside (nothing here touches the disk)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "path", ntpath)
        mp.setattr(os, "sep", "\\")
        mp.setattr(os, "altsep", "/")
        yield


@pytest.mark.parametrize("text, path", [
    ("C:\\out\\app.tar", True), ("C:\\layouts\\app", True), ("C:/layouts/app", True), (".\\app", True),
    ("..\\build\\app", True), ("\\\\server\\share\\app.tar", True), ("\\layouts\\app", True),
    ("c:app", False), ("localhost:5000/app:1", False), ("registry.example.com/app", False), ("alpine", False),
])
def test_windows_paths_are_paths_and_references_stay_references(windows_paths, text, path):
    assert zeroimage.looks_like_path(text) is path


def test_a_windows_program_path_names_the_program_by_its_file_name(windows_paths):
    assert zeroimage._program_stem([(None, "C:\\dist\\app.exe")], True, None, None, None) == "app.exe"
    assert zeroimage.common_program_name(["C:\\dist\\app-amd64", "dist\\app-arm64"]) == "app"
    assert zeroimage.common_program_name(["dist\\amd64\\app.exe", "dist\\arm64\\app.exe"]) == "app.exe"


def test_a_windows_link_in_an_added_tree_points_with_slashes(tmp_path):
    (tmp_path / "tree" / "lib").mkdir(parents=True)
    (tmp_path / "tree" / "lib" / "x").write_bytes(b"x")
    os.symlink("lib\\x", str(tmp_path / "tree" / "link"))       # what Windows' readlink says
    with simulated_windows(tmp_path) as mp:
        mp.setattr(os, "sep", "\\")
        links = {e.path: e.linkname for e in zeroimage.tree_entries(str(tmp_path / "tree"), "/t") if e.linkname}
    assert links == {"/t/link": "lib/x"}


def test_the_colon_of_a_windows_drive_names_no_image(windows_paths):
    assert zeroimage.copy_destination("C:\\out\\app.tar") == ("C:\\out\\app.tar", None)
    path, name = zeroimage.copy_destination("C:\\out\\app.tar:app:1")
    assert path == "C:\\out\\app.tar" and str(name).endswith("app:1")


def test_posix_paths_are_read_as_before():
    assert zeroimage.looks_like_path("c:app") is False and zeroimage.looks_like_path(".\\app") is False
    path, name = zeroimage.copy_destination("./out/app.tar:app:1")
    assert path == "./out/app.tar" and str(name).endswith("app:1")
