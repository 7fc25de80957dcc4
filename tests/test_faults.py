"""Faults, hostile input and concurrency, through a fault-injecting proxy in front of the real registry."""

import base64
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time

import pytest

import registries
import speccheck
from binaries import make_elf
from helpers import fails, ok
from imagetools import MODULE, ROOT, image_of, read_archive, run_cli

pytestmark = pytest.mark.interop


@pytest.fixture
def pushed(tmp_path, upstream, busybox_program):
    """An image pushed straight to the registry (not through the proxy): repo faults/src:1."""
    r = ok(run_cli("build", "--push", "%s/faults/src:1" % upstream.host, busybox_program))
    return r.stdout.strip().split("@")[1]


def test_flaky_registry_is_retried_for_pull_and_push(tmp_path, proxy, pushed, busybox_program):
    proxy.mode = "flaky"
    r = ok(run_cli("pull", "-o", tmp_path / "a.tar", "%s/faults/src:1" % proxy.host))
    assert r.stdout.strip() == pushed
    statuses = [s for _, _, s in proxy.seen]
    assert 503 in statuses and 429 in statuses
    ok(run_cli("build", "--push", "%s/faults/flaky:1" % proxy.host, busybox_program))
    assert sum(1 for _, path, s in proxy.seen if s == 503 and "/blobs/" in path) >= 2


def test_a_registry_that_keeps_failing_gives_up_with_a_clear_error(tmp_path, proxy, pushed):
    proxy.mode = "flaky"
    proxy.first_time = lambda key: True         # every request fails
    started = time.monotonic()
    line = fails(run_cli("pull", "-o", tmp_path / "a.tar", "%s/faults/src:1" % proxy.host), 1, "faults/src",
                 proxy.host)
    assert time.monotonic() - started < 90
    assert "429" in line or "503" in line
    assert not (tmp_path / "a.tar").exists()


def test_download_cut_in_half_resumes(tmp_path, proxy, pushed):
    proxy.mode = "cut"
    r = ok(run_cli("pull", "-o", tmp_path / "a.tar", "%s/faults/src:1" % proxy.host))
    assert r.stdout.strip() == pushed
    assert any(s == "cut" for _, _, s in proxy.seen)
    assert image_of(str(tmp_path / "a.tar"))[0]["manifests"][0]["digest"] == pushed


def test_blob_redirect_to_another_host_drops_authorization(tmp_path, pki, registry_servers, busybox_program):
    """Through a proxy in front of the Basic-auth registry: the registry gets the credentials, the CDN not."""
    basic = registry_servers("basic")
    proxy = registries.FaultProxy(basic.host, cdn_credentials="alice:wonderland")
    try:
        env = {"DOCKER_CONFIG": str(tmp_path / "cfg")}
        (tmp_path / "cfg").mkdir()
        auth = base64.b64encode(b"alice:wonderland").decode()
        (tmp_path / "cfg" / "config.json").write_text(json.dumps({"auths": {proxy.host: {"auth": auth}}}))
        ok(run_cli("build", "--push", "%s/redirect/src:1" % proxy.host, busybox_program, env=env))
        proxy.mode = "redirect"
        ok(run_cli("pull", "-o", tmp_path / "a.tar", "%s/redirect/src:1" % proxy.host, env=env))
        assert proxy.cdn_auth and all(a is None for a in proxy.cdn_auth), "Authorization leaked to the CDN"
    finally:
        proxy.close()


def test_corrupted_blob_is_refused_naming_both_digests(tmp_path, proxy, pushed, busybox_program):
    proxy.mode = "corrupt"
    line = fails(run_cli("pull", "-o", tmp_path / "a.tar", "%s/faults/src:1" % proxy.host), 1, "does not match")
    assert line.count("sha256:") >= 2
    assert os.listdir(str(tmp_path)) == ["src"], "nothing written beside the program"
    line = fails(run_cli("build", "--from", "%s/faults/src:1" % proxy.host, "--push",
                         "%s/faults/never:1" % proxy.host, busybox_program), 1, "does not match")
    r = run_cli("inspect", "%s/faults/never:1" % proxy.host)
    assert r.returncode == 1 and "not found" in r.stderr, "no manifest was pushed"


def test_a_failed_closing_put_is_sent_again_in_place(tmp_path, proxy, busybox_program):
    """The PUT that ends an upload meets a 500: it is sent again (its body opened anew) to the same
    upload session, not the whole upload started over."""
    proxy.mode = "upload"
    r = ok(run_cli("build", "--push", "%s/faults/upload:1" % proxy.host, busybox_program))
    failed_puts = [path for method, path, s in proxy.seen if s == 500]
    assert len(failed_puts) == 3, "each blob's first upload failed"
    for path in failed_puts:
        session = path.split("?")[0]
        assert [s for method, p, s in proxy.seen if method == "PUT" and p.split("?")[0] == session] == [500, 201]
    assert "starting it again" not in r.stderr
    proxy.mode = "pass"
    ok(run_cli("pull", "-o", tmp_path / "back.tar", "%s/faults/upload:1" % proxy.host))


def test_slow_registry_still_works(tmp_path, proxy, pushed):
    proxy.delay = 0.2
    r = ok(run_cli("pull", "-o", tmp_path / "a.tar", "%s/faults/src:1" % proxy.host))
    assert r.stdout.strip() == pushed and image_of(str(tmp_path / "a.tar"))[0]["manifests"][0]["digest"] == pushed
    assert any(method == "GET" and "/blobs/" in p for method, p, _ in proxy.seen), "the blobs came through the slow proxy"


def test_parallel_pushes_to_one_repository(tmp_path, upstream, busybox_program):
    programs = []
    for i in range(6):
        path = tmp_path / ("prog%d" % i)
        path.write_bytes(busybox_program.read_bytes() + str(i).encode())
        programs.append(path)
    procs = [subprocess.Popen([sys.executable, MODULE, "build", "--push", "%s/parallel/app:%d" % (upstream.host, i),
                               "--target", "/busybox", str(p)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True) for i, p in enumerate(programs)]
    results = [p.communicate(timeout=180) + (p.returncode,) for p in procs]
    assert all(code == 0 for _, _, code in results), [err.strip().splitlines()[-1:] for _, err, _ in results]
    for i in range(6):
        ok(run_cli("pull", "-o", tmp_path / ("p%d.tar" % i), "%s/parallel/app:%d" % (upstream.host, i)))


def test_two_builds_to_one_output_never_interleave(tmp_path, busybox_program):
    other = tmp_path / "other"
    other.write_bytes(b"\x7fELF" + os.urandom(3000000))
    out = tmp_path / "out.tar"
    procs = [subprocess.Popen([sys.executable, MODULE, "build", "--platform", "linux/amd64", "--target", "/app",
                               "-o", str(out), str(p)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for p in (busybox_program, other, busybox_program, other)]
    digests = set(p.communicate(timeout=120)[0].decode().strip() for p in procs)
    assert all(p.returncode == 0 for p in procs)
    index = json.loads(read_archive(str(out))["index.json"])
    assert index["manifests"][0]["digest"] in digests, "the archive is one whole build, not a mix"
    speccheck.assert_valid(out)
    assert sorted(os.listdir(str(tmp_path))) == ["other", "out.tar", "src"]


# Before zeroimage's first line runs, Python decides what a signal does (issue 21, rule 7): until it
# installs its own Ctrl-C handler, and for SIGTERM until zeroimage does, the process dies of the
# signal (-2, -15); a Ctrl-C after that is a KeyboardInterrupt that Python reports its own way,
# depending on where it lands and on the version: dying of the signal with a traceback at the
# script's first line (while the script is compiled), or exit 1 ("Fatal Python error: init_import_site"
# while site and its .pth files are imported, "Could not import runpy module" before a zipapp's
# __main__). From zeroimage's first line on, every stop signal exits 130 or 143 with one line, no
# traceback and nothing half-written.


def _handlers_line(path, marker):
    """The line of ``path`` where its stop signals' handlers are installed (a signal raised up to there
    is Python's to report)."""
    with open(path, encoding="utf-8") as f:
        return next(n for n, line in enumerate(f, 1) if line.rstrip() == marker)


def _traceback_before_the_handlers(err):
    """Whether every frame of zeroimage or the zipapp's __main__ in ``err`` is at or before the line
    that installs their handlers (Python 3.8 names the first statement's line, later ones line 0)."""
    import build_zipapp
    with tempfile.TemporaryDirectory() as directory:
        main = os.path.join(directory, "__main__.py")
        with open(main, "wb") as f:
            f.write(build_zipapp.MAIN)
        limits = {"zeroimage.py": _handlers_line(MODULE, "    _stop_signals_at_once()"),
                  "__main__.py": _handlers_line(main, "        signal.signal(signum, stop_at_once)")}
    frames = re.findall(r'File "[^"]*?(zeroimage\.py|__main__\.py)", line (-?[0-9]+)', err)
    return all(int(line) <= limits[name] for name, line in frames)


def _stopped_as_it_should(proc, err, sig, listing, out):
    """Whatever the moment: nothing half-written; a whole archive, or none and the signal's status."""
    if listing == ["app.tar"]:          # the signal came after the rename: then the archive is whole
        assert image_of(str(out / "app.tar"))
        speccheck.assert_valid(out / "app.tar")
        os.unlink(str(out / "app.tar"))
        assert proc.returncode in (0, 128 + sig, -sig), (proc.returncode, err)
    else:
        assert listing == [], listing
    lines = err.strip().splitlines()
    if proc.returncode == 128 + sig:
        assert lines and lines[-1] == ("zeroimage: interrupted" if sig == signal.SIGINT else "zeroimage: terminated")
        assert "Traceback" not in err and "Exception ignored" not in err, err
    elif proc.returncode == -sig:       # died of it before zeroimage's first line (or after Python's last)
        assert _traceback_before_the_handlers(err), err
    elif proc.returncode == 1 and sig == signal.SIGINT and "KeyboardInterrupt" in lines:
        # Python's own start-up took it, before zeroimage's handlers: nothing of zeroimage ran
        assert _traceback_before_the_handlers(err), err
        assert not any(line.startswith("zeroimage") for line in lines), err
    else:
        assert proc.returncode == 0 and listing == ["app.tar"], (proc.returncode, err)


def test_killed_at_random_points_leaves_no_partial_output(tmp_path):
    big = tmp_path / "big"
    with open(str(big), "wb") as f:
        f.write(make_elf(62))
        f.write(os.urandom(24 << 20))
    out = tmp_path / "out"
    out.mkdir()
    rng = random.Random(1234)
    for i in range(6):
        proc = subprocess.Popen([sys.executable, MODULE, "build", "-o", str(out / "app.tar"), str(big)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, universal_newlines=True)
        time.sleep(rng.uniform(0.05, 1.5))
        sig = rng.choice([signal.SIGINT, signal.SIGTERM])
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        _stopped_as_it_should(proc, err, sig, sorted(os.listdir(str(out))), out)


@pytest.mark.parametrize("entry", ["zeroimage.py", "zeroimage.pyz"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_from_the_first_millisecond_on(tmp_path, entry, sig):
    """A signal at every moment from 0 ms on: while Python starts, while zeroimage imports, while it
    builds, renames and exits."""
    program = tmp_path / "app"
    program.write_bytes(make_elf(62) + os.urandom(3 << 20))
    target = MODULE
    if entry.endswith(".pyz"):
        target = str(tmp_path / "zeroimage.pyz")
        subprocess.run([sys.executable, os.path.join(ROOT, "build_zipapp.py"), "-o", target], check=True,
                       stdout=subprocess.DEVNULL)
    out = tmp_path / "out"
    out.mkdir()
    for delay in (0, 0.001, 0.002, 0.004, 0.008, 0.015, 0.03, 0.05, 0.08, 0.12, 0.18, 0.25, 0.35, 0.5, 0.8,
                  1.2, 2.0):
        proc = subprocess.Popen([sys.executable, target, "build", "-o", str(out / "app.tar"), str(program)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, universal_newlines=True)
        try:
            time.sleep(delay)
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:     # it hung: a failure, with nothing left running or open
                proc.kill()
                proc.communicate()
        _stopped_as_it_should(proc, err, sig, sorted(os.listdir(str(out))), out)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_interrupt_during_a_slow_push_stops_mid_upload(tmp_path, proxy, upstream, sig, code):
    """Ctrl-C or SIGTERM while uploads crawl (256 kB/s, 3 MB layer): it exits mid-upload (the layer's
    body broken off, not sent to its end first: no clock is read, which a loaded machine could miss),
    nothing tagged, and the open upload session is cancelled on the way out."""
    program = tmp_path / "app"
    program.write_bytes(make_elf(62) + os.urandom(3 << 20))     # incompressible: the upload is ~12 s
    proxy.mode = "throttle"
    ref = "%s/slow/app:%s" % (proxy.host, sig.name.lower())
    proc = subprocess.Popen([sys.executable, MODULE, "build", "--from", "scratch", "--push", ref, str(program)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    try:
        assert proxy.receiving.wait(60), "the upload never started"
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, err
    assert out == "" and "Traceback" not in err and err.strip().splitlines()[-1] in (
        "zeroimage: interrupted", "zeroimage: terminated")
    deadline = time.monotonic() + 10
    while not any(m == "DELETE" and "/blobs/uploads/" in p for m, p, _ in proxy.seen) and time.monotonic() < deadline:
        time.sleep(0.05)        # poll (bounded) for the best-effort cancel of the upload session
    assert any(m == "DELETE" and "/blobs/uploads/" in p for m, p, _ in proxy.seen), proxy.seen
    # the layer's body was broken off by the exit (it takes ~12 s to send): the signal took effect at once
    # (the proxy, reading at its pace what was sent before, sees the end a little later: polled, bounded)
    deadline = time.monotonic() + 30
    while not any(s == "gone" for _, _, s in proxy.seen) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for m, p, s in proxy.seen if s == "gone" and "/blobs/uploads/" in p], proxy.seen
    assert not [p for m, p, s in proxy.seen if m == "PUT" and "/blobs/uploads/" in p and s == 201], proxy.seen
    r = run_cli("inspect", "%s/slow/app:%s" % (upstream.host, sig.name.lower()))
    assert r.returncode == 1 and "not found" in r.stderr, "nothing was tagged"


@pytest.mark.parametrize("period", [2, 3])
def test_a_fault_every_nth_request_cannot_defeat_a_push(tmp_path, proxy, pushed, busybox_program, period):
    """A load balancer that answers every Nth request 503 (Retry-After: 1): every request that can be
    sent again is retried in place, the closing PUT of an upload included, so the push goes through,
    also when the program's layer is known to the layer cache (its upload is one PUT from the file)."""
    ok(run_cli("build", "-o", tmp_path / "warm.tar", busybox_program))       # the layer cache knows it now
    proxy.mode, proxy.period = "periodic", period
    r = ok(run_cli("build", "--from", "%s/faults/src:1" % proxy.host, "--push", "%s/faults/app:%d" % (proxy.host, period),
                   busybox_program))
    assert sum(1 for _, _, s in proxy.seen if s == 503) >= 2
    proxy.mode = "pass"
    ok(run_cli("pull", "-o", tmp_path / "back.tar", r.stdout.strip()))


def test_a_registry_that_takes_no_blob_is_given_up_once_its_retries_are_spent(tmp_path, proxy, busybox_program):
    """Every closing PUT answered 503: the first blob's PUT is retried in place as the budget allows
    (at most 5 tries), then the push fails with one line; no upload starts over after its retries were
    spent, and the blobs queued behind the first fail with it instead of trying in turn."""
    proxy.mode = "put-503"
    fails(run_cli("push", _archive(tmp_path, busybox_program), "%s/faults/nothing:1" % proxy.host), 1, "503")
    puts = [path for method, path, s in proxy.seen if method == "PUT"]
    assert 1 <= len(puts) <= 5, puts
    assert len(set(p.split("?")[0] for p in puts)) == 1, "one upload session, never started over"


def _archive(tmp_path, program):
    out = tmp_path / "app.tar"
    ok(run_cli("build", "-o", out, program))
    return out
