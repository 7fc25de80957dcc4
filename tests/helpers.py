"""What the test files share to judge a run of zeroimage and to run the real tools.

- ``ok(result)``: the command succeeded: exit status 0 and no traceback on stderr. The one check of
  success every test file uses (a test that means more says so with its own asserts).
- ``fails(result, code, *words)``: the command failed the way the CLI promises: the exit status
  ``code``, no traceback, nothing on stdout, and the last line of stderr the error holding every word
  (``zeroimage: error: ...``; a usage error, 2, may name the command: ``zeroimage VERB: error: ...``).
  Returns that line.
- ``cli_failed(result, secrets, code)``: ``fails``'s stricter sibling for hostile input: also exactly
  one error line, no planted secret and no raw escape or carriage return on either stream; ``cli_env``
  the environment such a run gets (a private config.json, no proxy).
- ``sh``, ``skopeo_inspect``, ``run_image``, ``check_built_on_real_base``: the real tools as judges
  (skopeo, umoci, runc).
- ``EPOCH``, ``counting_reader``, ``python38``: a fixed ``SOURCE_DATE_EPOCH``, a reader that records
  its largest read, a Python 3.8 interpreter when there is one.

Test files import these from here (never from each other)."""

import glob
import io
import json
import os
import re
import shutil
import subprocess
import uuid

import pytest

from conftest import need_tool
from imagetools import image_of

EPOCH = {"SOURCE_DATE_EPOCH": "1700000000"}
SECRET = "PLANTEDSECRET"        # planted in credentials and URLs by the hostile tests: never printed


# ---- how a command ended ----


def ok(result):
    """The command succeeded: exit status 0 and no traceback on stderr. Returns the result."""
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result


def fails(result, code, *words):
    """The command failed as the CLI promises: exit status ``code``, no traceback, nothing on stdout,
    the last line of stderr ``zeroimage: error: ...`` (for a usage error ``zeroimage[ VERB]: error: ...``)
    holding each of ``words``. Returns the line."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout == "", (result.stdout, result.stderr)
    last = result.stderr.strip().splitlines()[-1]
    assert re.match(r"zeroimage: error: " if code == 1 else r"zeroimage( [a-z-]+)?: error: ", last), result.stderr
    for word in words:
        assert word in last, last
    return last


def cli_failed(r, secrets=(SECRET,), code=1):
    """The CLI failed the way it promises even to hostile input: the status, no traceback, one error
    line last, nothing secret or raw (escape, carriage return) on either stream. Returns the error line."""
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.endswith("\n"), repr(r.stderr)
    lines = r.stderr[:-1].split("\n")
    last = lines[-1]
    prefix = r"^zeroimage: error: " if code == 1 else r"^zeroimage( [a-z-]+)?: error: "
    assert re.match(prefix, last), r.stderr
    assert len([line for line in lines if ": error: " in line]) == 1, r.stderr
    for text in (r.stdout, r.stderr):
        assert "\x1b" not in text and "\r" not in text, repr(text)
        for secret in secrets:
            assert secret not in text, text
    return last


def cli_env(tmp_path, **extra):
    """Overrides for run_cli: a private config.json, and any proxy of the outer environment bypassed."""
    (tmp_path / "docker").mkdir(exist_ok=True)
    env = {"DOCKER_CONFIG": str(tmp_path / "docker"), "no_proxy": "*", "NO_PROXY": "*"}
    env.update(extra)
    return env


# ---- the real tools as judges ----


def sh(*args, **kwargs):
    """Run a tool; it must exit 0. Returns its stdout."""
    proc = subprocess.run([str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120, **kwargs)
    assert proc.returncode == 0, "%s failed: %s%s" % (args[0], proc.stdout, proc.stderr)
    return proc.stdout


def skopeo_inspect(transport_path, raw=False):
    return json.loads(sh(need_tool("skopeo"), "inspect", "--raw" if raw else "--no-tags", transport_path)
                      if raw else sh(need_tool("skopeo"), "inspect", transport_path))


def run_image(tmp_path, source, args=None, user=None, skopeo_args=()):
    """Copy SOURCE (a skopeo transport:path) to an OCI dir, unpack it with umoci, run it with runc.

    ``args`` replaces the process arguments the image's config gives (entrypoint + cmd);
    ``user`` is a uid.  Returns (config.json's process, stdout).
    """
    skopeo, umoci, runc = need_tool("skopeo"), need_tool("umoci"), need_tool("runc")
    if os.geteuid() != 0:
        pytest.skip("runc needs root here")
    work = tmp_path / ("run-" + uuid.uuid4().hex[:8])
    work.mkdir()
    sh(skopeo, "copy", "--quiet", *skopeo_args, source, "oci:%s:img" % (work / "layout"))
    sh(umoci, "unpack", "--image", "%s:img" % (work / "layout"), work / "bundle")
    spec_path = work / "bundle" / "config.json"
    spec = json.loads(spec_path.read_text())
    process = dict(spec["process"])
    spec["process"]["terminal"] = False
    if args is not None:
        spec["process"]["args"] = args
    if user is not None:
        spec["process"]["user"] = {"uid": user, "gid": user}
    spec_path.write_text(json.dumps(spec))
    name = "zeroimage-test-" + uuid.uuid4().hex[:12]
    try:
        out = sh(runc, "run", "--bundle", work / "bundle", name, stdin=subprocess.DEVNULL)
    finally:
        subprocess.run([runc, "delete", "--force", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process, out


def check_built_on_real_base(tmp_path, archive):
    """ARCHIVE is the busybox program built on ``imagetools.real_base``: its layers and config, and
    what the files and settings of the base look like from inside it under runc."""
    _, _, config, layers = image_of(str(archive))
    assert len(layers) == 3 and config["config"]["Entrypoint"] == ["/busybox"] and "Cmd" not in config["config"]
    assert config["config"]["Labels"] == {"org.example.base": "yes"} and config["x-unknown"] == {"kept": True}
    process, out = run_image(tmp_path, "oci-archive:%s" % archive,
                             ["/busybox", "sh", "-c", "cat /etc/base-release; echo $BASE_VAR; pwd; "
                              "grep -c tcp /etc/protocols; ls /bin/sh"])
    assert process["cwd"] == "/srv" and "BASE_VAR=from-base" in process["env"]
    lines = out.split("\n")
    assert lines[:3] == ["zeroimage test base 1.0", "from-base", "/srv"] and int(lines[3]) > 0 and lines[4] == "/bin/sh"


# ---- odds and ends ----


def counting_reader():
    """A BytesIO class of its own that remembers its largest read (``largest``) and refuses a read to the end."""
    class Counting(io.BytesIO):
        largest = 0

        def read(self, n=-1):
            assert n is not None and n >= 0, "never read to the end"
            Counting.largest = max(Counting.largest, n)
            return super().read(n)
    return Counting


def python38():
    """A working Python 3.8 interpreter (pyenv's, or python3.8 on PATH), else None."""
    try:
        root = subprocess.run(["pyenv", "root"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              universal_newlines=True).stdout.strip()
    except OSError:
        root = ""
    candidates = sorted(glob.glob(os.path.join(root, "versions", "3.8*", "bin", "python"))) if root else []
    for path in candidates[::-1] + [shutil.which("python3.8")]:
        if path and subprocess.run([path, "-c", "import sys; assert sys.version_info[:2] == (3, 8)"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
            return path
    return None
