"""What a user sees: progress (plain and on a terminal), -q, -v and --json."""

import json
import os
import pty
import re
import select
import sys
import time

import pytest

from binaries import make_elf
from helpers import EPOCH, ok
from imagetools import MODULE, run_cli

pytestmark = pytest.mark.interop

SUMMARY = re.compile(r"^zeroimage: (compressed \d+ blobs? \(.+\), )?(pushed|downloaded) \d+ blobs? \(.+\)"
                     r"(, mounted \d+)?(, skipped \d+)? in [0-9.]+ s$")


@pytest.fixture
def registry(registry_servers):
    return registry_servers("open").host


def test_plain_progress_when_not_a_terminal(tmp_path, registry, busybox_program):
    r = ok(run_cli("build", "--push", "%s/ux/plain:1" % registry, busybox_program, env=EPOCH))
    lines = r.stderr.splitlines()
    assert "\x1b" not in r.stderr and "\r" not in r.stderr, "no control characters in CI logs"
    assert any(re.match(r"zeroimage: compressed /busybox \(linux/amd64\) [0-9.]+ [kM]?B in [0-9.]+ s", l) for l in lines)
    assert any(re.match(r"zeroimage: uploaded sha256:[0-9a-f]{12} ", l) for l in lines)
    assert SUMMARY.match(lines[-1]), lines[-1]
    # the same image under another tag: its blobs are there (the same created time: SOURCE_DATE_EPOCH)
    r = ok(run_cli("build", "--push", "%s/ux/plain:2" % registry, busybox_program, env=EPOCH))
    assert re.search(r"skipped \d+ in", r.stderr.splitlines()[-1]) or "skipped" in r.stderr
    # under the tag that names it already: nothing sent, said plainly
    r = ok(run_cli("build", "--push", "%s/ux/plain:1" % registry, busybox_program, env=EPOCH))
    assert "ux/plain:1 names sha256:" in r.stderr and "already: nothing sent" in r.stderr, r.stderr
    assert "\x1b" not in r.stderr and "\r" not in r.stderr
    r = ok(run_cli("pull", "-o", tmp_path / "p.tar", "%s/ux/plain:1" % registry))
    assert SUMMARY.match(r.stderr.splitlines()[-1]) and "downloaded" in r.stderr


def test_quiet_prints_only_the_result(tmp_path, registry, busybox_program):
    r = ok(run_cli("build", "-q", "--push", "%s/ux/quiet:1" % registry, busybox_program))
    assert r.stderr == "" and re.match(r"^%s/ux/quiet:1@sha256:[0-9a-f]{64}\n$" % re.escape(registry), r.stdout)
    dyn = tmp_path / "dyn"
    dyn.write_bytes(make_elf(62, interpreter="/lib64/ld-linux-x86-64.so.2"))
    r = ok(run_cli("build", "-q", "--from", "scratch", "-o", tmp_path / "d.tar", dyn))
    assert r.stderr.startswith("zeroimage: warning: ") and "dynamically linked" in r.stderr, \
        "no warning but those that predict failure (tests/test_words.py)"
    assert len(r.stderr.splitlines()) == 1
    r = run_cli("pull", "-q", "-o", tmp_path / "x.tar", "%s/ux/missing:1" % registry)
    assert r.returncode == 1 and r.stderr.startswith("zeroimage: error: ") and len(r.stderr.splitlines()) == 1


def test_verbose_shows_requests(tmp_path, registry):
    ok(run_cli("build", "-q", "--from", "scratch", "--platform", "linux/amd64", "--push",
               "%s/ux/verbose:1" % registry, MODULE))
    r = ok(run_cli("pull", "-v", "-o", tmp_path / "p.tar", "%s/ux/verbose:1" % registry))
    assert re.search(r"zeroimage: GET http://%s/v2/ux/verbose/manifests/1 -> 200" % re.escape(registry), r.stderr)
    assert "API at http://%s" % registry in r.stderr


def _keys(value, expected):
    assert set(expected) <= set(value), sorted(set(expected) - set(value))


def test_json_outputs(tmp_path, registry, busybox_program):
    arm = tmp_path / "busybox-arm64"        # the name the two share is the target, /busybox
    arm.write_bytes(make_elf(183) + b"arm")
    build = json.loads(ok(run_cli("build", "--json", "--push", "%s/ux/json:1" % registry,
                                  "linux/amd64=%s" % busybox_program, "linux/arm64=%s" % arm)).stdout)
    _keys(build, ["reference", "digest", "mediaType", "platforms", "size", "images"])
    assert build["platforms"] == ["linux/amd64", "linux/arm64"] and build["mediaType"].endswith("index.v1+json")
    assert build["reference"] == "%s/ux/json:1@%s" % (registry, build["digest"])
    for image in build["images"]:
        _keys(image, ["platform", "digest", "mediaType", "size", "config", "layers"])
        for layer in image["layers"]:
            _keys(layer, ["digest", "size", "mediaType"])
    local = json.loads(ok(run_cli("build", "--json", "-o", tmp_path / "one.tar", busybox_program)).stdout)
    assert local["path"] == str(tmp_path / "one.tar") and local["platforms"] == ["linux/amd64"]
    pulled = json.loads(ok(run_cli("pull", "--json", "--all-platforms", "-o", tmp_path / "all.tar",
                                   "%s/ux/json:1" % registry)).stdout)
    _keys(pulled, ["reference", "digest", "mediaType", "platforms", "path", "size"])
    assert pulled["digest"] == build["digest"] and pulled["platforms"] == ["linux/amd64", "linux/arm64"]
    pushed = json.loads(ok(run_cli("push", "--json", tmp_path / "all.tar", "%s/ux/copy:1" % registry)).stdout)
    _keys(pushed, ["reference", "digest", "mediaType", "platforms"])
    assert pushed["digest"] == build["digest"]
    info = json.loads(ok(run_cli("inspect", "--json", "--platform", "linux/arm64", "%s/ux/json:1" % registry)).stdout)
    _keys(info, ["name", "digest", "mediaType", "platforms", "platform", "created", "size", "layers",
                 "entrypoint", "cmd", "env", "user", "workdir"])
    assert info["platform"] == "linux/arm64" and info["entrypoint"] == ["/busybox"]


def test_terminal_progress_is_redrawn_then_summarised(tmp_path, registry):
    big = tmp_path / "big"
    with open(str(big), "wb") as f:
        f.write(make_elf(62))
        f.write(os.urandom(12 << 20))
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, MODULE, "build", "--push", "%s/ux/tty:1" % registry, str(big)])
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    _, status = os.waitpid(pid, 0)
    text = seen.decode("utf-8", "replace")
    assert os.WEXITSTATUS(status) == 0, text
    assert "\x1b[" in text, "lines are redrawn in place on a terminal"
    assert re.search(r"compressing +/big", text) and "MB/s" in text
    plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text).replace("\r", "")
    last = [line for line in plain.splitlines() if line.strip()][-1]
    assert SUMMARY.match(last), last
