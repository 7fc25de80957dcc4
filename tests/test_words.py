"""The command line's words (issue 22): warnings that predict failure, usage errors and their
hints, progress that tells the truth, and the README's synopses against --help.

No network and no external tools: main() runs in this process (its output captured), or
run_cli() runs it as a user would.
"""

import os
import re

import pytest

import zeroimage
from imagetools import LayoutBuilder, ref
from test_units import make_elf

BIN = [("bin/", "dir", None, 0o755)]
MERGED_USR = [("usr/", "dir", None, 0o755), ("usr/bin/", "dir", None, 0o755), ("bin", "symlink", "usr/bin", 0o777),
              ("usr/bin/dash", "file", b"dash", 0o755), ("usr/bin/sh", "symlink", "dash", 0o777)]
BUSYBOX = BIN + [("bin/busybox", "file", b"busybox", 0o755), ("bin/sh", "symlink", "/bin/busybox", 0o777),
                 ("usr/", "dir", None, 0o755), ("usr/bin/", "dir", None, 0o755),
                 ("usr/bin/env", "symlink", "/bin/busybox", 0o777)]
ENV_ONLY = [("usr/", "dir", None, 0o755), ("usr/bin/", "dir", None, 0o755), ("usr/bin/env", "file", b"env", 0o755)]
PYTHON = ENV_ONLY + [("usr/local/", "dir", None, 0o755), ("usr/local/bin/", "dir", None, 0o755),
                     ("usr/local/bin/python3", "file", b"py", 0o755)]
SH_GONE = [("bin/.wh.sh", "file", b"", 0o644)]


def run(capsys, *args):
    code = zeroimage.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _base(tmp_path, *layers, env=None):
    builder = LayoutBuilder()
    config = {"config": {"Env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}}
    desc = builder.image([list(layer) for layer in layers], config)
    return builder.write_tar(tmp_path / ("base%d.tar" % len(os.listdir(str(tmp_path)))), [ref(desc, "1")])


# (base: None for the minimal one, "scratch", or an archive's layers; the script's first line; extra
# build arguments; what the warning names, or None for no warning)
SCRIPTS = [
    ("scratch", b"#!/bin/sh", [], "no /bin/sh"),
    (None, b"#!/bin/sh", [], "no /bin/sh"),
    (None, b"#!/usr/bin/env python3", [], "no /usr/bin/env"),
    ("scratch", b"#! /bin/sh -e", [], "no /bin/sh"),
    ("scratch", b"#!/bin/sh", ["--add", "{sh}:/bin/sh"], None),
    ("scratch", b"#!sh", [], None),                          # relative: the working directory's, not judged
    ("scratch", b"echo no shebang", [], None),
    ([MERGED_USR], b"#!/bin/sh", [], None),                  # /bin -> usr/bin, sh -> dash
    ([MERGED_USR], b"#!/bin/bash", [], "no /bin/bash"),
    ([MERGED_USR], b"#!/usr/bin/sh\r", [], None),
    ([BUSYBOX], b"#!/bin/sh", [], None),                     # a link elsewhere: followed
    ([BUSYBOX], b"#!/usr/bin/env sh", [], None),
    ([BUSYBOX], b"#!/usr/bin/env python3", [], "no python3 (in PATH "),
    ([ENV_ONLY], b"#!/usr/bin/env python3", [], "no python3 (in PATH "),
    ([ENV_ONLY], b"#!/usr/bin/env -S python3 -u", [], "no python3 (in PATH "),
    ([PYTHON], b"#!/usr/bin/env python3", [], None),
    ([PYTHON], b"#!/usr/bin/env PYTHONPATH=/x python3", [], None),
    ([PYTHON], b"#!/usr/bin/env python3", ["--env", "PATH=/opt/bin"], "no python3 (in PATH /opt/bin)"),
    ([PYTHON], b"#!/usr/bin/env /usr/local/bin/python3", [], None),
    ([PYTHON], b"#!/usr/bin/env /opt/python3", [], "no /opt/python3"),
    ([BIN + [("bin/sh", "file", b"sh", 0o755)]], b"#!/bin/sh", [], None),
    ([BIN + [("bin/sh", "file", b"sh", 0o755)], SH_GONE], b"#!/bin/sh", [], "no /bin/sh"),    # whited out
    ([BIN + [("bin/sh", "dir", None, 0o755)]], b"#!/bin/sh", [], "no /bin/sh"),              # a directory
]


@pytest.mark.parametrize("base, line, extra, named", SCRIPTS)
def test_a_script_without_its_interpreter_warns_even_under_quiet(tmp_path, capsys, base, line, extra, named):
    work = tmp_path / "work"
    work.mkdir()
    script = work / "app.sh"
    script.write_bytes(line + b"\necho hi\n")
    sh = work / "sh"
    sh.write_bytes(b"#!/bin/true\n")
    extra = [a.format(sh=sh) for a in extra]
    if base is None:
        where = []
    elif base == "scratch":
        where = ["--from", "scratch"]
    else:
        where = ["--from-archive", _base(tmp_path / "work", *base)]
    code, out, err = run(capsys, "build", "-q", *where, "--platform", "linux/amd64", "-o", work / "o.tar", *extra,
                         script)
    assert code == 0 and out.startswith("sha256:"), err
    if named is None:
        assert err == ""
    else:
        assert len(err.splitlines()) == 1, err
        assert err.startswith("zeroimage: warning: %s is a script (#!" % script) and named in err
        assert "will not start" in err


def test_warnings_that_predict_failure_survive_quiet_and_others_do_not(tmp_path, capsys):
    dyn = tmp_path / "dyn"
    dyn.write_bytes(make_elf(62, interpreter="/lib64/ld-linux-x86-64.so.2"))
    arm = tmp_path / "arm"
    arm.write_bytes(make_elf(183))
    cases = [
        (["--from", "scratch", dyn], "dynamically linked"),
        (["--from", "scratch", "--user", "bob", arm], "--user bob"),
        (["--user", "bob:staff", arm], "'staff'"),
        (["--from", "scratch", "--platform", "linux/amd64", arm], "disagrees"),
        (["--from", "scratch", "--no-platform-check", "linux/amd64=%s" % arm, "linux/arm64=%s" % dyn],
         "not linux/amd64"),
    ]
    for args, words in cases:
        code, _, err = run(capsys, "build", "-q", "-o", tmp_path / "o.tar", *args)
        assert code == 0 and words in err and err.startswith("zeroimage: warning: "), (args, err)
    code, _, err = run(capsys, "build", "-q", "-o", tmp_path / "o.tar", "--from", "scratch", "--user", "65532", arm)
    assert code == 0 and err == ""


def test_a_library_display_logs_them_as_warnings(caplog):
    display = zeroimage.Display()
    with caplog.at_level("WARNING", logger="zeroimage"):
        display.warning("it will not start", fails=True)
        display.warning("a note")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "it will not start"), ("WARNING", "a note")]


@pytest.mark.parametrize("head, expected", [
    (b"#!/bin/sh\n", ("/bin/sh", "")),
    (b"#!/bin/sh -e\n", ("/bin/sh", "-e")),
    (b"#! \t/usr/bin/env  python3 -u \r\n", ("/usr/bin/env", "python3 -u")),
    (b"#!/bin/sh", ("/bin/sh", "")),
    (b"#!\n", None),
    (b"\x7fELF", None),
    (b"", None),
    (b"#!/bin/" + b"x" * 300, ("/bin/" + "x" * 249, "")),       # the kernel reads 256 bytes of it
])
def test_read_shebang(tmp_path, head, expected):
    path = tmp_path / "f"
    path.write_bytes(head)
    with open(str(path), "rb") as f:
        assert zeroimage.read_shebang(f) == expected
        assert f.tell() == 0
