"""Faults, hostile input and concurrency, through a fault-injecting proxy in front of the real registry."""

import base64
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

import registries
import speccheck
from imagetools import MODULE, image_of, read_archive, run_cli
from test_units import make_elf

pytestmark = pytest.mark.interop


def ok(r):
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return r


def failed(r, *words):
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("zeroimage: error: "), r.stderr
    for word in words:
        assert word in line, line
    return line


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
    line = failed(run_cli("pull", "-o", tmp_path / "a.tar", "%s/faults/src:1" % proxy.host), "faults/src",
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
    line = failed(run_cli("pull", "-o", tmp_path / "a.tar", "%s/faults/src:1" % proxy.host), "does not match")
    assert line.count("sha256:") >= 2
    assert os.listdir(str(tmp_path)) == ["src"], "nothing written beside the program"
    line = failed(run_cli("build", "--from", "%s/faults/src:1" % proxy.host, "--push",
                          "%s/faults/never:1" % proxy.host, busybox_program), "does not match")
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
    ok(run_cli("pull", "-o", tmp_path / "a.tar", "%s/faults/src:1" % proxy.host))


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
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.05, 1.5))
        proc.send_signal(rng.choice([signal.SIGINT, signal.SIGTERM]))
        proc.communicate(timeout=60)
        listing = os.listdir(str(out))
        if listing == ["app.tar"]:          # the signal came after the rename: then the archive is whole
            assert image_of(str(out / "app.tar"))
            speccheck.assert_valid(out / "app.tar")
            os.unlink(str(out / "app.tar"))
        else:
            assert listing == [], listing
            assert proc.returncode in (130, 143, -signal.SIGINT, -signal.SIGTERM), proc.returncode


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_interrupt_during_a_slow_push_stops_within_two_seconds(tmp_path, proxy, upstream, sig, code):
    """Ctrl-C or SIGTERM while uploads crawl (256 kB/s, 3 MB layer): exit within 2 s of the signal,
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
        signalled = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
        elapsed = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, err
    assert elapsed < 2.0, "exited %.1f s after the signal" % elapsed
    assert out == "" and "Traceback" not in err and err.strip().splitlines()[-1] in (
        "zeroimage: interrupted", "zeroimage: terminated")
    deadline = time.monotonic() + 10
    while not any(m == "DELETE" and "/blobs/uploads/" in p for m, p, _ in proxy.seen) and time.monotonic() < deadline:
        time.sleep(0.05)        # poll (bounded) for the best-effort cancel of the upload session
    assert any(m == "DELETE" and "/blobs/uploads/" in p for m, p, _ in proxy.seen), proxy.seen
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
