"""The session every operation runs in: its environment, its connections, its cancellation, its
display; and the library API's promises (error classes kept, nothing left open, main() leaves the
process as it found it)."""

import gc
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import warnings

import pytest

import registries
import zeroimage
from binaries import make_elf
from imagetools import MODULE

EPOCH = "1700000000"


@pytest.fixture
def program(tmp_path):
    path = tmp_path / "app"
    path.write_bytes(make_elf(62) + b"\0" * 4096)
    return str(path)


def _no_resource_warnings(action):
    """Run ``action`` and collect the ResourceWarnings of whatever it left open."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        result = action()
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, leaks
    return result


# ---- the environment is the session's ----


def test_source_date_epoch_and_cache_come_from_the_session_environment(tmp_path, program, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    environ = dict(os.environ, SOURCE_DATE_EPOCH=EPOCH)
    result = zeroimage.build(zeroimage.BuildOptions(program, str(tmp_path / "a.tar"), base="scratch"), environ=environ)
    assert result.images[0].config["created"] == "2023-11-14T22:13:20Z"
    with zeroimage.Session(environ) as session:
        assert zeroimage.build(zeroimage.BuildOptions(program, str(tmp_path / "b.tar"),
                                                      base="scratch"), session=session).digest == result.digest
    assert zeroimage.Session({"HOME": "/somewhere"}).layer_cache.directory == "/somewhere/.cache/zeroimage/layers"
    assert zeroimage.Session({"XDG_CACHE_HOME": "/x", "HOME": "/h"}).layer_cache.directory == "/x/zeroimage/layers"


def test_session_and_its_parts_given_twice_is_a_usage_error(tmp_path, program):
    with zeroimage.Session() as session:
        with pytest.raises(zeroimage.UsageError, match="Session"):
            zeroimage.build(zeroimage.BuildOptions(program, str(tmp_path / "a.tar")), session=session, insecure=True)


def test_a_closed_session_opens_no_connection():
    session = zeroimage.Session()
    session.close()
    with pytest.raises(zeroimage.ZeroImageError, match="closed"):
        session.registry("localhost:5000")


def test_library_log_lines_go_to_the_zeroimage_logger(tmp_path, caplog):
    not_elf = tmp_path / "script"
    not_elf.write_bytes(b"#!/bin/sh\necho hi\n")
    with caplog.at_level(logging.INFO, logger="zeroimage"):
        zeroimage.build(zeroimage.BuildOptions(str(not_elf), str(tmp_path / "s.tar"), base="scratch"))
    assert any("not an ELF binary" in r.getMessage() for r in caplog.records)


# ---- nothing left open ----


def test_a_layout_that_fails_validation_is_closed(tmp_path):
    junk = tmp_path / "junk.tar"
    import tarfile
    with tarfile.open(str(junk), "w") as tar:
        tar.addfile(tarfile.TarInfo("hello"))

    def open_it():
        with pytest.raises(zeroimage.ArchiveError):
            zeroimage.Layout(str(junk))
    _no_resource_warnings(open_it)


@pytest.mark.interop
def test_library_calls_close_their_connections(tmp_path, registry_servers, program):
    server = registry_servers("open")
    target = "%s/session/app:1" % server.host
    _no_resource_warnings(lambda: zeroimage.build(zeroimage.BuildOptions(program, push=target, base="scratch")))
    info = _no_resource_warnings(lambda: zeroimage.inspect(target, mode="json"))
    assert json.loads(info)["entrypoint"] == ["/app"]
    _no_resource_warnings(lambda: zeroimage.pull(target, str(tmp_path / "p.tar")))
    _no_resource_warnings(lambda: zeroimage.check_auth(target, push=True))


# ---- error classes survive the library API ----


@pytest.mark.interop
def test_errors_keep_their_class(tmp_path, registry_servers, program):
    server = registry_servers("open")
    with pytest.raises(zeroimage.NotFoundError) as e:
        zeroimage.pull("%s/nothing/here:1" % server.host, str(tmp_path / "x.tar"))
    # the open registry asks for no credentials: no login is suggested (tests/test_network_hints.py)
    assert e.value.status == 404 and "is the name right?" in str(e.value) and "zeroimage login" not in str(e.value)
    assert not os.path.exists(str(tmp_path / "x.tar"))
    with pytest.raises(zeroimage.NotFoundError):
        zeroimage.build(zeroimage.BuildOptions(program, str(tmp_path / "y.tar"),
                                               base="%s/nothing/here:1" % server.host))
    with pytest.raises(zeroimage.NotFoundError):
        zeroimage.inspect("%s/nothing/here:1" % server.host)
    basic = registry_servers("basic")
    environ = dict(os.environ, DOCKER_CONFIG=str(tmp_path / "no-config"))
    with pytest.raises(zeroimage.AuthenticationError) as e:
        zeroimage.login(basic.host, "alice", "wrong", environ=environ)
    assert e.value.status == 401 and "nothing was stored" in str(e.value)
    with pytest.raises(zeroimage.AuthenticationError):
        zeroimage.build(zeroimage.BuildOptions(program, push="%s/denied/app:1" % basic.host,
                                               base="scratch"), environ=environ)


# ---- cancellation ----


@pytest.mark.interop
def test_cancel_from_another_thread_stops_a_push(tmp_path, registry_servers):
    """A library caller's Session.cancel() stops an upload under way within a second or two."""
    upstream = registry_servers("open")
    proxy = registries.FaultProxy(upstream.host, mode="throttle")
    program = tmp_path / "big"
    program.write_bytes(make_elf(62) + os.urandom(3 << 20))
    try:
        with zeroimage.Session() as session:
            timer = threading.Thread(target=lambda: proxy.receiving.wait(60) and session.cancel())
            timer.start()
            started = time.monotonic()
            with pytest.raises(zeroimage.CancelledError):
                zeroimage.build(zeroimage.BuildOptions(str(program), push="%s/cancel/app:1" % proxy.host,
                                                       base="scratch"), session=session)
            timer.join()
            assert proxy.receiving.is_set() and time.monotonic() - started < 30
            with pytest.raises(zeroimage.CancelledError):        # a cancelled session stays cancelled
                zeroimage.inspect("%s/cancel/app:1" % proxy.host, session=session)
    finally:
        proxy.close()


def test_parallel_keeps_order_and_raises_the_first_error():
    with zeroimage.Session() as session:
        assert session.parallel(lambda x: x * 2, range(10), workers=3) == [x * 2 for x in range(10)]

        def fail_on_3(x):
            if x == 3:
                raise zeroimage.ZeroImageError("three")
            return x
        with pytest.raises(zeroimage.ZeroImageError, match="three"):
            session.parallel(fail_on_3, range(8), workers=2)


# ---- main() ----


def test_main_leaves_the_process_as_it_found_it(tmp_path, program, capsys):
    logger = logging.getLogger("zeroimage")
    before = (list(logger.handlers), logger.level, logger.propagate, signal.getsignal(signal.SIGTERM), sys.stdout)
    for _ in range(2):
        assert zeroimage.main(["build", "-q", "--from", "scratch", "-o", str(tmp_path / "m.tar"), program]) == 0
        assert zeroimage.main(["build", "--from", "scratch", "-o", str(tmp_path / "nowhere" / "m.tar"), program]) == 1
    # (sys.stdout too: main() watches what fails to be written to it while a command runs)
    assert (list(logger.handlers), logger.level, logger.propagate, signal.getsignal(signal.SIGTERM), sys.stdout) == before
    err = capsys.readouterr().err
    assert "zeroimage: error:" in err and "Traceback" not in err


# ---- lazy imports ----


def test_lazy_imports_take_turns_under_one_lock():
    """A module imported on first use is imported under one lock, so no thread ever sees another's
    half-imported module (a http.client without HTTPSConnection was seen once)."""
    lazy = zeroimage._LazyModule("wave")         # a module nothing here imports
    sys.modules.pop("wave", None)
    got = []
    with zeroimage._IMPORT_LOCK:
        worker = threading.Thread(target=lambda: got.append(lazy.open))
        worker.start()
        worker.join(0.5)
        assert worker.is_alive() and not got, "the import went ahead without the lock"
    worker.join(10)
    assert got and callable(got[0])


def test_the_network_stack_is_imported_before_any_worker_runs():
    """A session's transport imports every lazily imported network module at once, in the thread
    that makes it: the parallel workers that come later import nothing."""
    script = ("import sys; sys.path.insert(0, ROOT); import zeroimage\n"
              "with zeroimage.Session() as s:\n"
              "    s.transport\n"
              "    print(sorted(set(zeroimage._NETWORK_MODULES) - set(sys.modules)))\n").replace(
        "ROOT", repr(os.path.dirname(MODULE)))
    r = subprocess.run([sys.executable, "-c", script], stdout=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert r.stdout.strip() == "[]"


# ---- the layer cache ----


def test_layer_cache_keeps_the_most_recently_used(tmp_path):
    cache = zeroimage.LayerCache(str(tmp_path / "cache"), max_entries=5)
    entry = {"diff_id": "sha256:" + "1" * 64, "digest": "sha256:" + "2" * 64, "size": 3}
    for i in range(5):
        cache.put("key%d" % i, entry)
        os.utime(os.path.join(cache.directory, "key%d" % i), (1000 + i, 1000 + i))
    assert cache.get("key0") == entry           # used now: the newest
    for i in range(5, 8):
        cache.put("key%d" % i, entry)
    kept = sorted(os.listdir(cache.directory))
    assert len(kept) == 5 and "key0" in kept and "key1" not in kept and "key7" in kept, kept


def test_default_layer_cache_is_bounded(tmp_path, program):
    cache_dir = tmp_path / "c"
    cache = zeroimage.LayerCache.default({"ZEROIMAGE_CACHE_DIR": str(cache_dir)})
    assert cache.max_entries == zeroimage.LayerCache.MAX_ENTRIES <= 10000


def test_an_output_whose_clean_up_never_ran_is_removed_at_exit(tmp_path):
    """A stop signal's exception landing in the unwinding itself can skip atomic_output's clean-up;
    the temporary file still goes when the process exits (or the generator is collected)."""
    script = ("import sys; sys.path.insert(0, %r); import zeroimage\n"
              "cm = zeroimage.atomic_output(%r); f = cm.__enter__(); f.write(b'half')\n"
              "KEEP = [cm, f]\n" % (os.path.dirname(MODULE), str(tmp_path / "out.tar")))
    subprocess.run([sys.executable, "-c", script], check=True)
    assert os.listdir(str(tmp_path)) == []
    cm = zeroimage.atomic_output(str(tmp_path / "out.tar"))
    cm.__enter__().write(b"half")
    assert len(os.listdir(str(tmp_path))) == 1
    del cm
    gc.collect()
    assert os.listdir(str(tmp_path)) == []
