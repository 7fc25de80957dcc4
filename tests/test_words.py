"""The command line's words (issue 22): warnings that predict failure, usage errors and their
hints, progress that tells the truth, and the README's synopses against --help.

main() runs in this process (its output captured), or run_cli() runs it as a user would. Offline;
the tests marked interop use the loopback registry, or skopeo, umoci and runc.
"""

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

import zeroimage
from conftest import need_tool
from binaries import make_elf
from imagetools import MODULE, LayoutBuilder, image_of, layer_members, ref, run_cli

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
    ([MERGED_USR], b"#!/bin/sh", [], None),                  # /bin -> usr/bin, sh -> dash
    ([MERGED_USR], b"#!/bin/bash", [], "no /bin/bash"),
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


LD_SO = "/lib64/ld-linux-x86-64.so.2"
DEBIAN_LD = [("usr/", "dir", None, 0o755), ("usr/lib/", "dir", None, 0o755), ("lib", "symlink", "usr/lib", 0o777),
             ("usr/lib/x86_64-linux-gnu/", "dir", None, 0o755),
             ("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "file", b"ld", 0o755),
             ("lib64/", "dir", None, 0o755),
             ("lib64/ld-linux-x86-64.so.2", "symlink", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", 0o777)]
MUSL_LD = [("lib/", "dir", None, 0o755), ("lib/ld-musl-x86_64.so.1", "file", b"ld", 0o755)]
LD_GONE = [("lib64/.wh.ld-linux-x86-64.so.2", "file", b"", 0o644)]


# (the base's layers; the program's PT_INTERP; the interpreter the warning names, or None for none)
INTERPRETERS = [
    ([BUSYBOX], LD_SO, LD_SO),                                   # busybox: no dynamic loader at all
    ([DEBIAN_LD], LD_SO, None),                                  # a link, to a link, to the file: followed
    ([DEBIAN_LD, LD_GONE], LD_SO, LD_SO),                        # whited out above
    ([MUSL_LD], LD_SO, LD_SO),                                   # a glibc program on a musl base
    ([MUSL_LD], "/lib/ld-musl-x86_64.so.1", None),
    ([DEBIAN_LD], "/lib/ld-musl-x86_64.so.1", "/lib/ld-musl-x86_64.so.1"),
    ([BUSYBOX], None, None),                                     # static: nothing to look up
]


@pytest.mark.parametrize("layers, interpreter, named", INTERPRETERS)
@pytest.mark.parametrize("suffix", ["", ":1"])      # the archive named as the user wrote it, with its :NAME
def test_an_elf_interpreter_is_looked_up_in_an_archive_base_like_a_scripts(tmp_path, capsys, layers, interpreter,
                                                                          named, suffix):
    program = tmp_path / "prog"
    program.write_bytes(make_elf(62, interpreter=interpreter))
    base = "%s%s" % (_base(tmp_path, *layers), suffix)
    code, out, err = run(capsys, "build", "-q", "--from-archive", base, "-o", tmp_path / "o.tar", program)
    assert code == 0 and out.startswith("sha256:"), err
    if named is None:
        assert err == ""
    else:
        assert err == ("zeroimage: warning: %s is dynamically linked (interpreter %s) but the %s base has no %s, so "
                       "it will not start; build it statically (Go: CGO_ENABLED=0; Rust: a musl target; C: -static), "
                       "or use a base that has it\n" % (program, interpreter, base, named)), err


# (the program's first bytes; what the warning says after "PROGRAM is ", or None for no warning)
UNSTARTABLE = [
    (b"echo hi\n", "neither an ELF program nor a script starting with #!: the runtime cannot start it"),
    (b"", "neither an ELF program nor a script starting with #!"),
    (b" #!/bin/sh\n", "neither an ELF program nor a script starting with #!"),          # not at byte 0
    (b"\xef\xbb\xbf#!/bin/sh\n", "UTF-8 byte order mark (BOM) before #!"),
    (b"MZ\x90\x00\x03", "a Windows program (it starts with MZ)"),
    (b"#!/bin/sh\r\necho hi\r\n", "carriage return (a Windows line end), which the kernel keeps as part of the "
                                   "line (#!/bin/sh\\r)"),
    (b"#!/bin/sh -e\r\n", "carriage return"),
    (b"#!/usr/bin/env python3\r\n", "(#!/usr/bin/env python3\\r)"),
    (b"#!\n", "names no interpreter"),
    (b"#!/bin/sh\necho hi\r\n", None),          # a carriage return after the first line: the shell's concern
    (b"\x7fELF", None),                           # ELF magic: the kernel's (and the platform check's) to judge
]


@pytest.mark.parametrize("head, said", UNSTARTABLE)
@pytest.mark.parametrize("base", [[], ["--from", "scratch"], ["--from-archive", "MERGED"]])
def test_a_program_the_kernel_cannot_exec_warns_even_under_quiet(tmp_path, capsys, head, said, base):
    program = tmp_path / "app"
    program.write_bytes(head)
    base_words, base = base, [_base(tmp_path, MERGED_USR) if word == "MERGED" else word for word in base]
    code, out, err = run(capsys, "build", "-q", *base, "--platform", "linux/amd64", "-o", tmp_path / "o.tar", program)
    assert code == 0 and out.startswith("sha256:"), err
    if said is None:            # on the merged base, nothing; elsewhere at most that /bin/sh is missing
        assert err == "" if "MERGED" in base_words else "cannot start it" not in err, err
    else:
        assert len(err.splitlines()) == 1 and err.startswith("zeroimage: warning: %s is " % program), err
        assert said in err and "the runtime cannot start it" in err, err


@pytest.mark.parametrize("program, target", [
    (b"#!/bin/sh\necho hi\n", "/usr/local/bin/app"),      # the check and the directories below it: one read
    (b"#!/bin/sh\necho hi\n", "/app"),
    (None, "/usr/local/bin/app"),                         # a dynamic ELF, its loader a file in the base
])
def test_a_local_base_is_read_once_for_the_checks_and_the_layer(tmp_path, capsys, monkeypatch, program, target):
    path = tmp_path / "app"
    path.write_bytes(program or make_elf(62, interpreter=LD_SO))
    base = _base(tmp_path, BIN + [("bin/sh", "file", b"sh", 0o755)],
                 [("lib64/", "dir", None, 0o755), ("lib64/ld-linux-x86-64.so.2", "file", b"ld", 0o755),
                  ("usr/", "dir", None, 0o755), ("usr/local/", "dir", None, 0o755)])
    opened, real = [], zeroimage.layer_tar

    def counting(desc, *args, **kwargs):
        opened.append(desc["digest"])
        return real(desc, *args, **kwargs)

    monkeypatch.setattr(zeroimage, "layer_tar", counting)
    code, out, err = run(capsys, "build", "-q", "--from-archive", base, "--platform", "linux/amd64", "--target", target,
                         "-o", tmp_path / "o.tar", path)
    assert code == 0 and err == "", err
    assert len(opened) == 2 and len(set(opened)) == 2, opened


def test_a_user_not_checked_is_said_under_verbose(tmp_path, capsys):
    program = tmp_path / "app"
    program.write_bytes(make_elf(62))
    base = _base(tmp_path, BIN)
    for args, said in [(["--from-archive", base], "the archive base is not read for it"),
                       (["--from", "scratch"], None), ([], None)]:
        code, _, err = run(capsys, "build", "-v", *args, "--user", "bob", "-o", tmp_path / "o.tar", program)
        assert code == 0 and ("--user bob: not checked" in err) == (said is not None), err
        assert said is None or said in err, err


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
        (["--from", "scratch", "--no-platform-check", "--target", "/app", "linux/amd64=%s" % arm, "linux/arm64=%s" % dyn],
         "not linux/amd64"),
    ]
    for args, words in cases:
        code, _, err = run(capsys, "build", "-q", "-o", tmp_path / "o.tar", *args)
        assert code == 0 and words in err and err.startswith("zeroimage: warning: "), (args, err)
    code, _, err = run(capsys, "build", "-q", "-o", tmp_path / "o.tar", "--from", "scratch", "--user", "65532", arm)
    assert code == 0 and err == ""


# (the option only the minimal base takes; what --add the error suggests)
MINIMAL_ONLY = [
    (["--ca-bundle", "{tmp}/ca.pem"], "--ca-bundle adds the CA bundle to the built-in minimal base, not to a {given} "
                                      "base; for that, use --add {tmp}/ca.pem:/etc/ssl/certs/ca-certificates.crt"),
    (["--ca-bundle", "/nonexistent"], "use --add /nonexistent:/etc/ssl/certs/ca-certificates.crt"),
    (["--tzdata"], "--tzdata adds the zone database to the built-in minimal base, not to a {given} base"),
    (["--tzdata=/usr/share/zoneinfo"], "use --add /usr/share/zoneinfo:/usr/share/zoneinfo"),
]


@pytest.mark.parametrize("option, said", MINIMAL_ONLY)
@pytest.mark.parametrize("base, given", [
    (["--from", "scratch"], "--from scratch"),
    (["--from-archive", "{tmp}/base.tar"], "--from-archive"),
    (["--from", "127.0.0.1:1/no/such:1"], "--from"),           # refused before any connection
    (["--from", "docker-daemon:nothing"], "--from"),
])
def test_an_option_only_the_minimal_base_takes_is_refused_with_another(tmp_path, capsys, option, said, base, given):
    """Not dropped without a word: one rule, a usage error naming the --add that does it."""
    (tmp_path / "ca.pem").write_bytes(b"")
    os.rename(str(_base(tmp_path, BIN)), str(tmp_path / "base.tar"))
    program = tmp_path / "app"
    program.write_bytes(make_elf(62))
    words = [w.format(tmp=tmp_path) for w in option + base]
    code, out, err = run(capsys, "build", *words, "-o", tmp_path / "o.tar", program)
    assert code == 2 and out == "" and not (tmp_path / "o.tar").exists(), err
    last = err.splitlines()[-1]
    assert last.startswith("zeroimage: error: --") and said.format(tmp=tmp_path, given=given) in last, err


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


def _commands():
    parser = zeroimage.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, zeroimage.argparse._SubParsersAction))
    return parser, commands.choices


# (argv, what the error line says): a usage error is one usage line pointing to --help, then the error
USAGE = [
    (["build", "--pussh", "r/x:1", "p"], "zeroimage build: error: unrecognized option --pussh; did you mean --push?"),
    (["build", "--pussh"], "did you mean --push?"),                 # before the missing program is said
    (["build", "--no-platfrom-check", "p"], "did you mean --no-platform-check?"),
    (["build", "--compresion-level=3", "p"], "unrecognized option --compresion-level; did you mean "
                                              "--compression-level?"),
    (["build", "-Q", "p"], "zeroimage build: error: unrecognized option -Q"),
    (["build", "--zzzzzz", "p"], "zeroimage build: error: unrecognized option --zzzzzz"),
    (["--quite", "build", "p"], "zeroimage: error: unrecognized option --quite; did you mean --quiet?"),
    (["pull", "--all-platform", "--allplatforms", "alpine"], "did you mean --all-platforms?"),
    (["inspect", "--conifg", "alpine"], "zeroimage inspect: error: unrecognized option --conifg; did you mean "
                                        "--config?"),
    (["tag", "--jsn", "r/x:1", "2"], "did you mean --json?"),
    (["inspect", "a", "b"], "zeroimage inspect: error: unrecognized arguments: b"),
    (["tag"], "zeroimage tag: error: the following arguments are required: REF, NEWTAG"),
    (["build"], "the following arguments are required: [PLATFORM=]PROGRAM"),
    (["build", "-q", "-v", "p"], "argument -v/--verbose: not allowed with argument -q/--quiet"),
    (["-q", "build", "-v", "p"], "zeroimage build: error: -q and -v cannot be given together"),
]


@pytest.mark.parametrize("argv, said", USAGE, ids=[" ".join(a) for a, _ in USAGE])
def test_a_usage_error_is_a_pointer_to_help_and_one_line(capsys, argv, said):
    code, out, err = run(capsys, *argv)
    lines = err.splitlines()
    command = argv[0] if not argv[0].startswith("-") else None
    prog = "zeroimage build" if argv[0] == "-q" else "zeroimage " + command if command else "zeroimage"
    assert code == 2 and out == "" and len(lines) == 2, err
    assert lines[0].startswith("usage: %s [options] " % prog) and lines[0].endswith("(see '%s --help')" % prog)
    assert said in lines[1] and lines[1].startswith(prog + ": error: "), lines[1]


def test_option_values_and_combined_short_options_are_not_mistaken_for_typos(tmp_path, capsys):
    prog = tmp_path / "prog"
    prog.write_bytes(make_elf(183))
    code, out, err = run(capsys, "build", "-q", "--from", "scratch", "--compression-level", "0", "--cmd=-v",
                         "--env", "A=-x", "--platform", "linux/arm64", "-qo", tmp_path / "o.tar", "--", prog)
    assert code == 0 and out.startswith("sha256:") and err == "", err        # -qo: quiet, and the output
    _, _, config, _ = image_of(str(tmp_path / "o.tar"))
    assert config["config"]["Cmd"] == ["-v"] and "A=-x" in config["config"]["Env"], "values, not options"
    assert config["architecture"] == "arm64" and config["config"]["Entrypoint"] == ["/prog"]


# (argv, the error): no abbreviation is taken (a typo meets the nearest option, not a longer one);
# the nearest is a close long option or none; other tools' spellings get zeroimage's way
NEAREST = [
    (["build", "--form", "scratch", "p"], "unrecognized option --form; did you mean --from?"),
    (["build", "--plat", "linux/arm64", "p"], "unrecognized option --plat; did you mean --platform?"),
    (["build", "--out", "x.tar", "p"], "unrecognized option --out; did you mean --output?"),
    (["build", "--no-build", "p"], "unrecognized option --no-build; did you mean --no-build-info?"),
    (["build", "--no", "p"], "unrecognized option --no\n"),          # the start of two: neither
    (["build", "--lable", "a=b", "p"], "did you mean --label?"),
    (["build", "--enntrypoint", "p"], "unrecognized option --enntrypoint\n"),
    (["push", "-t", "x:1", "a.tar", "r/x:1"], "unrecognized option -t: push names the image with REF"),
    (["push", "--tag", "x:1", "a.tar", "r/x:1"], "unrecognized option --tag: push names the image with REF"),
    (["inspect", "-p", "x"], "unrecognized option -p\n"),
    (["tags", "-n", "5", "x"], "unrecognized option -n\n"),
    (["digest", "-x", "x"], "unrecognized option -x\n"),
    (["copy", "--all-platforms", "a", "b"], "unrecognized option --all-platforms: copy takes every platform "
                                            "unless --platform names some"),
    (["push", "--tls-verify=false", "a.tar", "r/x:1"], "--tls-verify=false is --insecure"),
    (["copy", "--dest-tls-verify=false", "a", "b"], "--tls-verify=false is --insecure"),
    (["pull", "--src-tls-verify=false", "a"], "--tls-verify=false is --insecure"),
    (["logout", "--tls-verify=false", "a"], "unrecognized option --tls-verify\n"),   # no --insecure there
    (["build", "-f", "Dockerfile", "p"], "zeroimage reads no Dockerfile"),
    (["bulid", "p"], "zeroimage: error: unknown command 'bulid'; did you mean build?"),
    (["isnpect", "x"], "did you mean inspect?"),
    (["tga", "x", "y"], "did you mean tag?"),
    (["-q", "pul", "x"], "did you mean pull?"),
    (["frobnicate"], "unknown command 'frobnicate'; the commands are listed by 'zeroimage --help'"),
]


@pytest.mark.parametrize("argv, said", NEAREST, ids=[" ".join(a) for a, _ in NEAREST])
def test_typos_meet_the_nearest_option_or_command_and_nonsense_is_not_suggested(capsys, argv, said):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and len(err.splitlines()) == 2, err
    assert said in err, err
    assert "invalid choice" not in err and "--help?" not in err and "--quiet?" not in err


# (argv, the option named): an option of one value, given twice, on any command, is a usage error
TWICE = [
    (["build", "-t", "a:1", "-t", "b:1", "p"], "-t/--tag"),
    (["build", "--platform", "linux/arm64", "--platform", "linux/amd64", "p"], "--platform"),
    (["build", "--user", "1", "--user", "2", "p"], "--user"),
    (["build", "--workdir", "/a", "--workdir=/b", "p"], "--workdir"),
    (["build", "--target", "/a", "--target", "/b", "p"], "--target"),
    (["build", "-o", "a1.tar", "-o", "a2.tar", "p"], "-o/--output"),
    (["build", "-qo", "a1.tar", "--output", "a2.tar", "p"], "-o/--output"),
    (["build", "--from", "scratch", "--from", "alpine", "p"], "--from"),
    (["build", "--format", "archive", "--format", "archive", "p"], "--format"),     # the default, twice
    (["build", "--compression-level", "1", "--compression-level", "1", "p"], "--compression-level"),
    (["build", "--tzdata", "--tzdata", "p"], "--tzdata"),
    (["pull", "-o", "a.tar", "-o", "b.tar", "x"], "-o/--output"),
    (["push", "--media-types", "oci", "--media-types", "docker", "a.tar", "r/x:1"], "--media-types"),
    (["inspect", "--platform", "linux/arm64", "--platform", "linux/amd64", "x"], "--platform"),
    (["digest", "--platform", "linux/arm64", "--platform", "linux/arm64", "x"], "--platform"),
    (["login", "-u", "a", "-u", "b", "r.example.com"], "-u/--username"),
]


@pytest.mark.parametrize("argv, option", TWICE, ids=[" ".join(a) for a, _ in TWICE])
def test_an_option_of_one_value_given_twice_is_a_usage_error(capsys, argv, option):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and len(err.splitlines()) == 2, err
    assert "error: %s given twice; it takes one value" % option in err, err


def test_repeatable_options_flags_and_defaults_are_unaffected():
    parser = zeroimage.build_parser()
    args = parser.parse_args(["-q", "build", "-q", "--env", "A=1", "--env", "B=2", "--expose", "80", "--expose", "81",
                              "--cmd", "x", "--cmd", "y", "--label", "a=b", "--add", "s:/s", "--add", "t:/t",
                              "--sbom", "--sbom", "--insecure", "--insecure", "p"])
    assert args.env == [("A", "1"), ("B", "2")] and args.expose == ["80/tcp", "81/tcp"] and args.cmd == ["x", "y"]
    assert args.quiet and args.sbom and args.insecure and len(args.add) == 2
    assert args.output_format == "archive" and args.compression == "gzip" and args.compression_level is None
    assert args.user is None and args.tag is None
    args = parser.parse_args(["pull", "--platform", "linux/arm64", "--platform", "linux/amd64", "x"])
    assert [str(p) for p in args.platform] == ["linux/arm64", "linux/amd64"]
    args = parser.parse_args(["copy", "--platform", "linux/arm64", "--platform", "linux/amd64", "a", "b.tar"])
    assert len(args.platform) == 2
    args = parser.parse_args(["inspect", "--raw", "--raw", "x"])
    assert args.mode == "raw"
    # one parse does not leak into the next
    assert parser.parse_args(["build", "--user", "1", "p"]).user == "1"
    assert parser.parse_args(["build", "--user", "2", "p"]).user == "2"


def test_a_runtime_usage_error_shows_the_pointer_too(tmp_path, capsys):
    code, _, err = run(capsys, "build", "--json", "-o", "-", tmp_path / "p")
    assert code == 2 and err.splitlines()[0] == \
        "usage: zeroimage build [options] [PLATFORM=]PROGRAM ... (see 'zeroimage build --help')"
    assert err.splitlines()[1].startswith("zeroimage: error: --json prints to standard output")


def test_every_usage_line_names_the_positionals():
    parser, commands = _commands()
    assert parser.short_usage() == "usage: zeroimage [options] COMMAND ... (see 'zeroimage --help')"
    expected = {"build": "[PLATFORM=]PROGRAM ...", "pull": "REF", "push": "ARCHIVE[:NAME] REF", "copy": "SRC DST",
                "inspect": "TARGET", "login": "REGISTRY", "logout": "REGISTRY", "check-auth": "REF",
                "tags": "REPOSITORY", "digest": "TARGET", "tag": "REF NEWTAG ...", "delete": "REF",
                "sync": "SRC DST", "mutate": "SOURCE", "append": "SOURCE", "rebase": "SOURCE", "export": "SOURCE"}
    assert set(commands) == set(expected)
    for name, sub in commands.items():
        assert sub.short_usage() == "usage: zeroimage %s [options] %s (see 'zeroimage %s --help')" % (
            name, expected[name], name)
    help_text = commands["build"].format_help()
    assert "[PLATFORM=]PROGRAM ...\n" in help_text and "ENTRYPOINT [ENTRYPOINT" not in help_text


@pytest.fixture
def hub_unreachable(tmp_path, monkeypatch):
    """In an empty directory, with Docker Hub unreachable (a proxy on a closed port: no network in tests)."""
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)


@pytest.mark.parametrize("argv", [["inspect", "hello.tr"], ["copy", "app.tr", "x.tar"], ["digest", "app.tgzz"],
                                  ["pull", "-o", "x.tar", "hello.tr"]])
def test_a_word_read_as_a_docker_hub_image_that_looks_like_a_file_says_so(hub_unreachable, capsys, argv):
    code, out, err = run(capsys, *argv)
    word = [a for a in argv[1:] if "." in a and not a.startswith("x") and a != "-o"][0]
    assert code == 1 and out == "" and len(err.splitlines()) == 1, err
    assert err.rstrip().endswith(" (read %r as the image docker.io/library/%s:latest; no file %s here)" % (
        word, word, word)), err


@pytest.mark.parametrize("argv", [["copy", "alpine:3.19", "out.tar"], ["copy", "hello.tr", "out.tar"],
                                  ["copy", "alpine:3.19", "out.oci:app:1"]])
def test_an_archive_written_is_never_said_to_be_read_as_an_image(hub_unreachable, capsys, argv):
    # copy's DST out.tar looks like a path, so it is the archive to write: the registry error of SRC
    # must not say "read 'out.tar' as the image docker.io/library/out.tar:latest" (it was not)
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == "" and len(err.splitlines()) == 1, err
    assert "out." not in err, err
    assert ("(read 'hello.tr' as the image" in err) == (argv[1] == "hello.tr"), err


@pytest.mark.parametrize("argv", [["inspect", "alpine:3.19"], ["inspect", "python3.12"], ["pull", "alpine"]])
def test_a_plain_image_name_gets_no_such_hint(tmp_path, capsys, monkeypatch, argv):
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    code, _, err = run(capsys, *argv)
    assert code == 1 and "(read " not in err, err


# ---- progress that tells the truth ----


def test_a_task_of_unknown_size_shows_what_went_and_the_rate_not_a_total():
    display = zeroimage.Display(io.StringIO(), "tty")
    unknown = display.task("uploading", "/app (linux/amd64)", None)
    unknown.advance(4000000)
    assert re.match(r"^  uploading +/app \(linux/amd64\) +4\.0 MB so far +[0-9.]+ [kMG]?B/s$", unknown.line())
    known = display.task("uploading", "sha256:0123", 8000000)
    known.advance(4000000)
    assert re.match(r"^  uploading +sha256:0123 +4\.0 MB / 8\.0 MB +[0-9.]+ [kMG]?B/s$", known.line())
    unknown.finish()
    known.finish()
    display.close()


class _Watching(zeroimage.Display):
    """A display that notes each task's total every time it moves."""

    def __init__(self):
        super().__init__(io.StringIO(), "plain")
        self.seen = []

    def advanced(self, task):
        self.seen.append((task.verb, task.label, task.total, task.done))
        super().advanced(task)


@pytest.mark.interop
def test_a_streamed_upload_never_shows_a_growing_total(tmp_path, registry_servers):
    program = tmp_path / "app"
    program.write_bytes(make_elf(62) + os.urandom(2 * zeroimage.STREAM_CHUNK + 1000))
    display = _Watching()
    registry = registry_servers("open").host
    with zeroimage.Session(display=display) as session:
        zeroimage.build(zeroimage.BuildOptions(str(program), push="%s/words/progress:1" % registry,
                                               base="scratch"), session=session)
    streamed = [(total, done) for verb, label, total, done in display.seen if verb == "uploading" and "/app" in label]
    assert len(streamed) >= 3, display.seen
    totals = [total for total, _ in streamed]
    assert set(totals) - {None} <= {streamed[-1][1]}, "no total but the real one (%s)" % totals
    assert totals[-1] == streamed[-1][1] and None not in totals[totals.index(totals[-1]):], \
        "the real total once known, kept to the end (%s)" % totals


# ---- tests/run ----

STUB_PYTHON = """#!/bin/sh
case "$1" in
    --version) echo "Python {version}" ;;
    -c) exit 0 ;;
    -m) echo "{version} $*" >> "$STUB_LOG"; exit {code} ;;
esac
"""


def _stub(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(str(path), 0o755)


@pytest.mark.parametrize("first", [1, 0])
def test_tests_run_runs_every_interpreter_and_fails_at_the_end(tmp_path, first):
    """python3 fails (or passes); 3.8 and 3.13 (from a stub pyenv) still run; the summary names each;
    exit 1 when one failed. A missing package is said and installed with apt-get waiting for the dpkg
    lock (as root)."""
    stubs, log = tmp_path / "bin", tmp_path / "log"
    _stub(stubs / "python3", STUB_PYTHON.format(version="3.99.0", code=first))
    _stub(tmp_path / "pyenv/versions/3.8.20/bin/python", STUB_PYTHON.format(version="3.8.20", code=0))
    _stub(tmp_path / "pyenv/versions/3.13.1/bin/python", STUB_PYTHON.format(version="3.13.1", code=0))
    _stub(stubs / "pyenv", "#!/bin/sh\necho %s\n" % (tmp_path / "pyenv"))
    _stub(stubs / "dpkg", '#!/bin/sh\n[ "$2" != umoci ]\n')                 # umoci is missing
    _stub(stubs / "apt-get", '#!/bin/sh\necho "apt-get $*" >> "$STUB_LOG"\n')
    env = dict(os.environ, PATH="%s:%s" % (stubs, os.environ["PATH"]), STUB_LOG=str(log))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([os.path.join(root, "tests", "run"), "-x"], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert r.returncode == first, r.stderr
    ran = log.read_text().splitlines()
    pytest_runs = sorted(line for line in ran if "-m pytest" in line)     # (two parts at once: either first)
    assert [line.split()[0] for line in pytest_runs] == ["3.13.1"] * 2 + ["3.8.20"] * 2 + ["3.99.0"] * 2, ran
    assert [line.split(" tests ", 1)[1] for line in pytest_runs] == ["--shard 0/2 -x", "--shard 1/2 -x"] * 3, ran
    tail = [re.sub(r" in \d+ s$", " in N s", line) for line in r.stderr.splitlines()[-4:]]
    assert tail == ["tests/run: results:", "tests/run:   Python 3.99.0: %s in N s" % ("FAILED" if first else "passed"),
                    "tests/run:   Python 3.8.20: passed in N s",
                    "tests/run:   Python 3.13.1: passed in N s"], r.stderr
    assert r.stderr.count("tests/run: part 2 of 2:") == 3
    if os.getuid() == 0:
        assert "tests/run: the interop tests use the Debian packages: skopeo umoci" in r.stderr
        assert "installing the missing ones with apt-get: umoci" in r.stderr
        installs = [line for line in ran if line.startswith("apt-get")]
        assert len(installs) == 2 and all("-o DPkg::Lock::Timeout=600" in line for line in installs)
        assert installs[1].endswith("install -y -q umoci")
    else:
        assert "missing umoci" in r.stderr


def test_the_parts_of_a_run_hold_every_test_once():
    """conftest's --shard I/N (what tests/run runs at once): the parts together are the whole run,
    none twice, each with its share of every file."""
    def collected(*extra):
        r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                            "tests/test_module_map.py", "tests/test_standalone.py"] + list(extra), cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        return [line for line in r.stdout.splitlines() if "::" in line]
    whole = collected()
    parts = [collected("--shard", "%d/3" % i) for i in range(3)]
    assert sorted(sum(parts, [])) == sorted(whole) and len(set(sum(parts, []))) == len(whole)
    assert all(any("test_module_map" in t for t in part) and any("test_standalone" in t for t in part)
               for part in parts)


@pytest.mark.skipif(os.getuid() != 0, reason="tests/run installs packages only as root")
def test_tests_run_waits_for_the_package_lists_lock(tmp_path):
    """apt-get update meets the lists' lock (apt-daily at work): tests/run waits and tries again, says
    so once, then installs; it says before installing pytest that it does."""
    stubs, log = tmp_path / "bin", tmp_path / "log"
    _stub(stubs / "python3", '#!/bin/sh\nif [ "$1" = -c ]; then exit 1; fi\n'
          'if [ "$1" = --version ]; then echo Python 3.99.0; exit 0; fi\necho "python3 $*" >> "$STUB_LOG"\n')
    _stub(stubs / "pyenv", "#!/bin/sh\necho %s\n" % (tmp_path / "no-pyenv"))
    _stub(stubs / "dpkg", '#!/bin/sh\n[ "$2" != umoci ]\n')
    _stub(stubs / "apt-get", '#!/bin/sh\necho "apt-get $*" >> "$STUB_LOG"\n'
          'case "$*" in *update*) n=$(grep -c update "$STUB_LOG");\n'
          '  if [ "$n" -lt 3 ]; then echo "E: Could not get lock /var/lib/apt/lists/lock" >&2; exit 100; fi;; esac\n')
    env = dict(os.environ, PATH="%s:%s" % (stubs, os.environ["PATH"]), STUB_LOG=str(log), ZEROIMAGE_APT_POLL="0.05")
    r = subprocess.run([os.path.join(ROOT, "tests", "run")], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    ran = log.read_text().splitlines()
    assert [line.split()[3] for line in ran if line.startswith("apt-get")] == ["update"] * 3 + ["install"], ran
    assert r.stderr.count("holds the package lists' lock; waiting") == 1, r.stderr
    assert "installing pytest from PyPI for Python 3.99.0" in r.stderr, r.stderr


# ---- installable the Python way (pyproject.toml) ----

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_pyproject_says_one_module_no_dependencies_and_the_signal_safe_entry_point():
    tomllib = pytest.importorskip("tomllib")        # Python 3.11+
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    assert project["project"]["dependencies"] == [] and project["project"]["requires-python"] == ">=3.8"
    assert project["tool"]["setuptools"]["py-modules"] == ["zeroimage"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "zeroimage.__version__"}
    module, _, function = project["project"]["scripts"]["zeroimage"].partition(":")
    assert (module, function) == ("zeroimage", "_run_program")     # main() and the stop signals' handling


def _can_build_offline():
    try:
        import setuptools
    except ImportError:
        return "no setuptools here"
    version = tuple(int(part) for part in re.findall(r"\d+", setuptools.__version__)[:2])
    if version < (61, 0):
        return "setuptools %s is older than 61 (pyproject's [project])" % setuptools.__version__
    if version < (70, 1):
        try:
            import wheel  # noqa: F401 -- bdist_wheel, before setuptools 70.1 had its own
        except ImportError:
            return "no wheel package here (setuptools %s needs it to build)" % setuptools.__version__
    return None


def test_pip_installs_the_module_and_a_zeroimage_command(tmp_path):
    """What ``pip install .`` does, offline: no build isolation (nothing fetched), no dependencies."""
    why = _can_build_offline()
    if why:
        pytest.skip(why)
    source, target = tmp_path / "src", tmp_path / "site"
    source.mkdir()
    for name in ("pyproject.toml", "zeroimage.py", "README.md", "LICENSE"):
        shutil.copyfile(os.path.join(ROOT, name), str(source / name))
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index",
                        "--no-build-isolation", "--no-deps", "--target", str(target), str(source)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(ROOT, "zeroimage.py"), "rb") as a, open(str(target / "zeroimage.py"), "rb") as b:
        assert a.read() == b.read(), "the same single module"
    info = target / ("zeroimage-%s.dist-info" % zeroimage.__version__)
    metadata = (info / "METADATA").read_text()
    assert "Version: %s\n" % zeroimage.__version__ in metadata and "Requires-Dist" not in metadata
    assert "zeroimage = zeroimage:_run_program" in (info / "entry_points.txt").read_text()
    command = str(target / "bin" / "zeroimage")
    env = dict(os.environ, PYTHONPATH=str(target))
    version = subprocess.run([command, "--version"], env=env, stdout=subprocess.PIPE, universal_newlines=True)
    assert version.returncode == 0 and version.stdout == "zeroimage %s\n" % zeroimage.__version__
    typo = subprocess.run([command, "build", "--pussh"], env=env, stderr=subprocess.PIPE, universal_newlines=True)
    assert typo.returncode == 2 and "did you mean --push?" in typo.stderr


# ---- what the README says holds ----


def _readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def _synopses(text, command):
    """The README's synopses of a command: code lines ``zeroimage COMMAND ...`` whose words (but the
    options and a ``# comment``) are all placeholders (REF, PATH[:NAME], ...), with their continuation
    lines; and the Commands table's row for it."""
    found, lines, in_code = [], text.splitlines(), False
    for i, line in enumerate(lines):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code and line.startswith("zeroimage %s " % command):
            bare, previous = line.split("#", 1)[0], None
            while bare != previous:         # what stands in brackets is optional syntax: options, choices
                bare, previous = re.sub(r"\[[^\[\]]*\]|\([^()]*\)", " ", bare), bare   # (a | b): one of them
            if all(re.fullmatch(r"[A-Z0-9_.:=/|]+|\.\.\.", w) for w in bare.split()[2:] if not w.startswith("-")):
                block = [line]
                for following in lines[i + 1:]:
                    if not following.startswith(" ") or not following.strip()[:1] in ("[", "(", "-"):
                        break
                    block.append(following)
                found.append(" ".join(block))
        elif line.startswith("| `%s " % command) or line.startswith("| `%s`" % command):
            found.append(line.split("|")[1])
    return found


GLOBAL = {"-h", "--help", "-q", "--quiet", "-v", "--verbose"}     # said once, for every command


@pytest.mark.parametrize("command", sorted(_commands()[1]))
def test_every_option_in_help_is_in_the_readme_synopsis(command):
    sub = _commands()[1][command]
    synopses = _synopses(_readme(), command)
    assert synopses, "README has no synopsis of %s" % command
    said = set(re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", " ".join(synopses)))
    missing = [" / ".join(action.option_strings) for action in sub._actions
               if action.option_strings and not set(action.option_strings) & (said | GLOBAL)]
    assert not missing, "README's synopsis of %s lacks %s" % (command, ", ".join(missing))


def test_inspect_raw_and_config_print_the_bytes_their_digests_name(tmp_path):
    prog = tmp_path / "prog"
    prog.write_bytes(make_elf(183))
    out = tmp_path / "app.tar"
    digest = run_cli("build", "-q", "--from", "scratch", "-o", out, prog).stdout.strip()
    raw = subprocess.run([sys.executable, MODULE, "inspect", "--raw", str(out)], stdout=subprocess.PIPE, check=True)
    assert "sha256:" + hashlib.sha256(raw.stdout).hexdigest() == digest and not raw.stdout.endswith(b"\n")
    config = subprocess.run([sys.executable, MODULE, "inspect", "--config", str(out)], stdout=subprocess.PIPE,
                            check=True)
    assert "sha256:" + hashlib.sha256(config.stdout).hexdigest() == json.loads(raw.stdout)["config"]["digest"]
    # the README's words, run: zeroimage inspect --raw app.tar | sha256sum gives the digest zeroimage digest prints
    piped = subprocess.run("%s %s inspect --raw app.tar | sha256sum" % (sys.executable, MODULE), shell=True,
                           cwd=str(tmp_path), stdout=subprocess.PIPE, universal_newlines=True, check=True)
    printed = run_cli("digest", "app.tar", cwd=str(tmp_path)).stdout.strip()
    assert "sha256:" + piped.stdout.split()[0] == printed == digest
    assert "`zeroimage inspect --raw app.tar | sha256sum` gives the digest `zeroimage digest app.tar` prints" in \
        " ".join(_readme().split())


def test_load_with_another_destination_is_refused_in_the_errors_tables_words(tmp_path, capsys):
    prog = tmp_path / "prog"
    prog.write_bytes(make_elf(183))
    table = " ".join(_readme().split())
    for argv, said in [(["build", "--load", "-o", "x.tar", prog], "--load sends the image to the container engine; "
                        "give it without -o, --push or --format"),
                       (["build", "--load", "--push", "r.example/x:1", prog], None),
                       (["build", "--load", "--format", "oci-layout", prog], None),
                       (["pull", "--load", "-o", "x.tar", "alpine"], "--load sends one image to the container "
                        "engine; give it without -o, --all-platforms or a second --platform")]:
        code, out, err = run(capsys, *argv)
        line = err.splitlines()[-1]
        assert code == 2 and out == "" and line.startswith("zeroimage: error: --load sends"), err
        if said:
            assert line == "zeroimage: error: " + said and "`%s`" % said in table


@pytest.mark.interop
def test_the_readme_umoci_and_runc_recipe_runs_without_a_terminal(tmp_path, busybox):
    """The README's lines, run as written (the container's name made unique), with no terminal."""
    for tool in ("skopeo", "umoci", "runc"):
        need_tool(tool)
    if os.geteuid() != 0:
        pytest.skip("runc needs root here")
    lines = _readme().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("skopeo copy oci-archive:app.tar oci:layout:app"))
    recipe = [line.split("  #", 1)[0].strip() for line in lines[first:first + 3]]
    assert recipe[-1] == "runc run -b bundle app"
    assert recipe[1].startswith("sed -i 's/") and '"terminal": false' in recipe[1]
    shutil.copyfile(busybox, str(tmp_path / "busybox"))
    os.chmod(str(tmp_path / "busybox"), 0o755)
    run_cli("build", "-q", "-o", tmp_path / "app.tar", "--cmd", "echo", "--cmd", "hello from the README", "./busybox",
            cwd=str(tmp_path))
    name = "zeroimage-readme-%d" % os.getpid()
    script = "set -e\n" + "\n".join(recipe[:-1]) + "\nrunc run -b bundle %s\n" % name
    try:
        r = subprocess.run(["sh", "-c", script], cwd=str(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    finally:
        subprocess.run(["runc", "delete", "--force", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == "hello from the README", (r.stdout, r.stderr)


@pytest.mark.interop
def test_a_registry_base_is_not_downloaded_for_an_interpreter_warning(tmp_path, capsys, registry_servers,
                                                                      monkeypatch):
    """README: with --push to the same registry the base's layers are mounted, not downloaded; a
    warning does not download them either (as --user's check): under -v it says it did not look."""
    registry = registry_servers("open").host
    script = tmp_path / "app.sh"
    script.write_bytes(b"#!/bin/sh\necho hi\n")
    dynamic = tmp_path / "dyn"
    dynamic.write_bytes(make_elf(62, interpreter=LD_SO))
    fetched, base_layers = [], set()
    real = zeroimage.Registry.open_blob

    def counting(self, repository, digest, *args, **kwargs):
        if digest in base_layers:
            fetched.append(digest)
        return real(self, repository, digest, *args, **kwargs)

    monkeypatch.setattr(zeroimage.Registry, "open_blob", counting)
    for name, layers in [("merged", [MERGED_USR]), ("bare", [BIN])]:
        base = _base(tmp_path, *layers)
        base_ref = "%s/words/base-%s:1" % (registry, name)
        assert run(capsys, "push", "-q", base, base_ref)[0] == 0
        code, raw, _ = run(capsys, "inspect", "--raw", base_ref)
        base_layers.clear()
        base_layers.update(d["digest"] for d in json.loads(raw)["layers"])
        for program, needed in [(script, "/bin/sh"), (dynamic, LD_SO)]:
            for output in [["-o", tmp_path / "o.tar"], ["--push", "%s/words/out-%s:1" % (registry, name)]]:
                del fetched[:]
                code, out, err = run(capsys, "build", "-q", "--from", base_ref, *output, program)
                assert code == 0 and err == "", err
                assert fetched == [] if output[0] == "--push" else len(fetched) == len(set(fetched)), fetched
                code, out, err = run(capsys, "build", "-v", "--from", base_ref, *output, program)
                assert code == 0 and "%s: not checked whether the %s base has %s: a registry base is not " \
                    "downloaded for a warning" % (program, base_ref, needed) in err, err


def test_a_layers_progress_total_is_the_size_of_its_tar(tmp_path):
    source = tmp_path / "big"
    source.write_bytes(os.urandom(70000))
    entries = [zeroimage.LayerEntry("/app", "file", 0o755, source=str(source)),
               zeroimage.LayerEntry("/etc/passwd", "file", 0o644, data=b"root:x:0:0::/:/sbin/nologin\n"),
               zeroimage.LayerEntry("/empty", "file", 0o644, data=b""),
               zeroimage.LayerEntry("/d/" + "long-name-" * 20, "file", 0o644, data=b"x" * 513),   # a PAX path
               zeroimage.LayerEntry("/caf\u00e9", "file", 0o644, data=b"1"),                    # a PAX path too
               zeroimage.LayerEntry("/link", "symlink", 0o777, linkname="/d/" + "target-" * 20),
               zeroimage.LayerEntry("/hard", "hardlink", 0o644, linkname="/app"),
               zeroimage.LayerEntry("/big-uid", "file", 0o644, data=b"u", uid=1 << 22),          # a PAX uid
               zeroimage.LayerEntry("/srv/www/html", "dir", 0o755)]
    tar = io.BytesIO()
    zeroimage._write_tar(entries, tar)
    assert zeroimage._entries_size(entries) == len(tar.getvalue())
    out = io.BytesIO()
    display = zeroimage.Display(io.StringIO(), "plain")
    task = display.task("compressing", "layer", zeroimage._entries_size(entries))
    zeroimage.write_layer(entries, out, 1, task)
    assert task.done == task.total
    task.finish()


# ---- skopeo's transport words ----

# (argv, what to write instead): refused as a usage error wherever a reference or a path is read,
# saying what zeroimage reads there; never "no such file", "bad registry host" or --insecure
TRANSPORTS = [
    (["build", "--from", "oci-archive:app.tar", "p"], "write --from-archive app.tar"),
    (["build", "--from", "docker-archive:/x/save.tar", "p"], "write --from-archive /x/save.tar"),
    (["build", "--from", "oci:layout", "p"], "write --from-archive ./layout"),
    (["build", "--from", "docker://localhost:5000/x:1", "p"], "write --from localhost:5000/x:1"),
    (["build", "--from", "containers-storage:app", "p"], "read as docker-daemon:app through podman's socket"),
    (["build", "--from-archive", "oci-archive:app.tar:1.0", "p"], "write --from-archive app.tar:1.0"),
    (["build", "--from-archive", "docker://h.example/x:1", "p"], "a base in a registry is --from h.example/x:1"),
    (["build", "--from-archive", "docker-daemon:app:1", "p"], "is --from docker-daemon:app:1"),
    (["build", "--from-archive", "dir:lay", "p"], "skopeo copy dir:lay oci-archive:NAME.tar"),
    (["build", "--from-archive", "containers-storage:app:1", "p"], "is --from docker-daemon:app:1"),
    (["build", "--push", "docker://h.example/x:1", "p"], "write h.example/x:1"),
    (["push", "oci-archive:app.tar", "h.example/x:1"], "write app.tar"),
    (["push", "app.tar", "docker://h.example/x:1"], "write h.example/x:1"),
    (["inspect", "oci-archive:app.tar"], "write app.tar"),
    (["inspect", "oci-archive:dist/app.tgz:2"], "write dist/app.tgz:2"),
    (["inspect", "oci:mp"], "write ./mp"),
    (["inspect", "OCI:/srv/layout"], "write /srv/layout"),
    (["pull", "docker-daemon:x"], "where a registry image is named; the local engine's image docker-daemon:NAME "
                                  "is read where an image is read (inspect, copy, push's source, --from)"),
    (["push", "app.tar", "docker-daemon:x"], "where a registry image is named"),
    (["build", "--push", "docker-daemon:x", "p"], "where a registry image is named"),
    (["inspect", "dir:/tmp/x"], "skopeo copy dir:/tmp/x oci-archive:NAME.tar"),
    (["digest", "docker-archive:save"], "write ./save"),
    (["copy", "oci:dir", "h.example/x:1"], "write ./dir"),
    (["copy", "docker://localhost:5000/app:1", "out.tar"], "write localhost:5000/app:1"),
    (["copy", "h.example/x:1", "docker-archive:out.tar"], "write out.tar"),
    (["copy", "h.example/x:1", "oci:out"], "write ./out"),
    (["pull", "docker://alpine:3.19"], "write alpine:3.19"),
    (["tags", "docker://h.example/x"], "write h.example/x"),
    (["tag", "docker://h.example/x:1", "2"], "write h.example/x:1"),
    (["delete", "docker://h.example/x:1"], "write h.example/x:1"),
    (["check-auth", "containers-storage:x"], "podman save"),
]


@pytest.mark.parametrize("argv, said", TRANSPORTS, ids=[" ".join(a) for a, _ in TRANSPORTS])
def test_skopeo_transport_words_are_refused_with_what_to_write(tmp_path, capsys, monkeypatch, argv, said):
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "p").write_bytes(make_elf(62))
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and len(err.splitlines()) == 2, err
    assert said in err and "skopeo's transport syntax" in err, err
    assert "insecure" not in err and "bad registry host" not in err and "no such file" not in err, err


@pytest.mark.parametrize("word", ["oci-archive:app.tar", "oci-archive:App.TAR:1", "oci-archive:app.oci.gz",
                                  "docker-archive:save.tgz.xz", "docker-archive:save", "oci:lay", "oci:lay.tar",
                                  "oci-archive:dist/app.tgz:2", "docker-archive:x.tar.gz:a:1"])
def test_what_a_transport_word_says_to_write_is_read_as_a_path(word):
    # one rule for "an archive by its look" (ARCHIVE_SUFFIXES): the advice for oci-archive:app.oci.gz
    # was "write app.oci.gz", which looks_like_path does not take, so it was asked of Docker Hub
    prefix, kind, rest = zeroimage.transport_word(word)
    assert kind == "path" and zeroimage.looks_like_path(rest), rest
    assert rest.lstrip("./") == word[len(prefix):].lstrip("./")


SAME_WORDS = [("base", "--from", "app.tar"), ("base", "--from", "./x.tar"), ("base", "--from", "oci-archive:x.tar"),
              ("base", "--from", "docker://h.example/x:1"), ("base", "--from", "containers-storage:app"),
              ("base", "--from", "docker-daemon:"), ("base_archive", "--from-archive", "docker-daemon:app:1"),
              ("base_archive", "--from-archive", "dir:lay"), ("base_archive", "--from-archive", "docker://h.example/x:1"),
              ("base_archive", "--from-archive", "oci-archive:app.tar"), ("push", "--push", "docker://h.example/x:1"),
              ("push", "--push", "http://h.example/x")]


@pytest.mark.parametrize("field, flag, word", SAME_WORDS, ids=["%s %s" % (f, w) for _, f, w in SAME_WORDS])
def test_build_reads_a_base_or_push_word_as_the_cli_does(tmp_path, capsys, monkeypatch, field, flag, word):
    # one reading (Targets' check_base, check_base_archive, registry_reference), one message: the
    # library said `base` ./x.tar looks like a path ... in a wording of its own, and took
    # base_archive=docker-daemon:app:1 to the disk
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "p").write_bytes(make_elf(62))
    code, out, err = run(capsys, "build", flag, word, "p")
    assert code == 2 and out == "", err
    with pytest.raises(zeroimage.ZeroImageError) as caught:
        zeroimage.build(zeroimage.BuildOptions("p", **{field: word}), environ={"SOURCE_DATE_EPOCH": "0"})
    assert caught.value.exit_code == 2 and zeroimage._cli_words()(str(caught.value)) in err, (str(caught.value), err)
    assert os.listdir(str(tmp_path)) == ["p"]


def test_what_a_transport_refusal_says_to_write_works(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "p").write_bytes(make_elf(62))
    assert run(capsys, "build", "-q", "--from", "scratch", "-o", "app.tar", "p")[0] == 0
    assert run(capsys, "build", "-q", "--from", "scratch", "--format", "oci-layout", "-o", "lay", "p")[0] == 0
    for word in ("oci-archive:app.tar", "docker-archive:app.tar", "oci:lay", "oci-archive:app.tar:localhost/p:latest"):
        code, _, err = run(capsys, "digest", word)
        instead = re.search(r"write (\S+)$", err.strip()).group(1)
        code, out, err = run(capsys, "digest", instead)
        assert code == 0 and out.startswith("sha256:"), (word, instead, err)
    code, _, err = run(capsys, "build", "--from", "oci-archive:app.tar", "-o", "o.tar", "p")
    instead = re.search(r"write (--from-archive) (\S+)$", err.strip()).groups()
    assert run(capsys, "build", "-q", *instead, "-o", "o.tar", "p")[0] == 0


def test_a_file_named_like_a_transport_word_is_still_read(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(str(tmp_path))
    (tmp_path / "p").write_bytes(make_elf(62))
    (tmp_path / "p").rename(tmp_path / "oci:p")
    assert run(capsys, "build", "-q", "--from", "scratch", "-o", "app.tar", "./oci:p")[0] == 0
    _, _, config, layers = image_of(str(tmp_path / "app.tar"))
    assert config["config"]["Entrypoint"] == ["/oci:p"] and list(layer_members(layers[0])) == ["oci:p"]
    code, out, err = run(capsys, "build", "-q", "--from-archive", "./app.tar", "-o", "o.tar", "./oci:p")
    assert code == 0 and out.startswith("sha256:"), err
    base_layers = config["rootfs"]["diff_ids"]
    assert image_of(str(tmp_path / "o.tar"))[2]["rootfs"]["diff_ids"][:1] == base_layers, "built on the archive"
