"""Messages speak to whoever called (issue 24, item 5): outside the CLI no message names a flag or
"zeroimage VERB"; it names an option by its library keyword in backquotes (`tzdata`,
`tzdata=DIR`) and another verb as a call (`login(HOST)`), and the CLI renders them from its parser
(--tzdata DIR, zeroimage login HOST). See the Errors section's comment. Offline, no tools.
"""

import argparse
import ast
import logging
import os
import re

import pytest

import zeroimage

with open(zeroimage.__file__, encoding="utf-8") as _f:
    SOURCE = _f.read()
CLI_LINE = SOURCE[:SOURCE.index("\n# ---- CLI ----")].count("\n") + 2

# Text in a message outside the CLI that may stand as it is, and why.
ALLOWED = {
    "skopeo copy --format oci": "another tool's command line (skopeo's own --format), said to run it",
}
# Backquoted words in messages that are not options, and why.
NOT_OPTIONS = {"quoted": "Go's raw strings are `quoted` (a build info message)"}


def _parsers(parser=None):
    """The top parser and every command's parser."""
    parser = parser or zeroimage.build_parser()
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                yield from _parsers(command)


def _flags_and_verbs():
    flags, verbs = set(), set()
    for parser in _parsers():
        for action in parser._actions:
            flags.update(o for o in action.option_strings if o.startswith("--") and o != "--help")
            if isinstance(action, argparse._SubParsersAction):
                verbs.update(action.choices)
    return flags, verbs


def _message_literals():
    """(line, text) of each string literal above the CLI section that is not a docstring (docstrings
    are for maintainers, who read the CLI's words too); f-strings' parts included."""
    tree = ast.parse(SOURCE)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and node.lineno < CLI_LINE and id(node) not in docstrings)


def test_no_message_outside_the_cli_names_a_flag_or_a_command():
    flags, verbs = _flags_and_verbs()
    assert {"--tzdata", "--insecure", "--platform", "--from-archive"} <= flags and {"login", "check-auth"} <= verbs
    flag = re.compile(r"(?<![\w-])(?:%s)(?![\w-])" % "|".join(map(re.escape, sorted(flags, key=len, reverse=True))))
    verb = re.compile(r"\bzeroimage (?:%s)\b" % "|".join(map(re.escape, sorted(verbs, key=len, reverse=True))))
    found = []
    for line, text in _message_literals():
        for allowed in ALLOWED:
            text = text.replace(allowed, "")
        match = flag.search(text) or verb.search(text)
        if match:
            found.append("zeroimage.py:%d names %r: %r" % (line, match.group(0), text[:100]))
    assert not found, "\n".join(found)
    assert all(any(allowed in text for _, text in _message_literals()) for allowed in ALLOWED), "an allowance unused"


def test_every_option_a_message_names_is_one_the_cli_can_word():
    words = zeroimage._cli_words()
    named = set()
    for line, text in _message_literals():
        for match in zeroimage._NAMED_RE.finditer(text):
            if match.group(1) in NOT_OPTIONS or "%" in match.group(0):
                continue
            named.add(match.group(1))
            said = words(match.group(0))
            assert "`" not in said and said != match.group(0), "zeroimage.py:%d: %s" % (line, match.group(0))
    assert {"tzdata", "insecure", "platform", "base_archive", "platform_check", "login"} <= named


def test_one_dest_is_one_option_in_every_command():
    """The CLI words an option by its dest, whatever the command: so one dest has one spelling, or
    two that say yes and no (inspect's --build-info, build's --no-build-info: worded by the value)."""
    spelled = {}
    for parser in _parsers():
        for action in parser._actions:
            if action.option_strings and type(action) is not argparse._StoreConstAction:
                spelled.setdefault(action.dest, set()).add(action.option_strings[0])
    pair = lambda options: len(options) == 2 and {"--no-" + o[2:] for o in options} & options  # noqa: E731
    assert {dest: options for dest, options in spelled.items() if len(options) > 1 and not pair(options)} == {}
    assert spelled["build_info"] == {"--build-info", "--no-build-info"}
    verbs = _flags_and_verbs()[1]
    for function, verb in zeroimage._CLI_VERBS.items():
        assert function in zeroimage.__all__ and verb in verbs


@pytest.mark.parametrize("text, said", [
    ("pick one with `platform`", "pick one with --platform"),
    ("give `tzdata=DIR`", "give --tzdata DIR"),
    ("(`platform_check=False` to build it anyway)", "(--no-platform-check to build it anyway)"),
    ("`build_info=False`", "--no-build-info"),
    ("`build_info=True`", "--build-info"),
    ("see `inspect(mode=sbom, NAME)`", "see zeroimage inspect --sbom NAME"),
    ("`labels` a=b and `annotations` a=c", "--label a=b and --annotation a=c"),
    ("give `base` or `base_archive`, not both", "give --from or --from-archive, not both"),
    ("a `base=scratch` base", "a --from scratch base"),
    ("give `push` or `output`, not both", "give --push or -o, not both"),
    ("`output_format=oci-layout` needs `output=DIR`", "--format oci-layout needs -o DIR"),
    ("use `insecure`", "use --insecure"),
    ("`sbom=True`", "--sbom"),
    ("try: `login(127.0.0.1:5000)`", "try: zeroimage login 127.0.0.1:5000"),
    ("with `push_archive(media_types=docker)`", "with zeroimage push --media-types docker"),
    ("read by `build(base=docker-daemon:NAME)`", "read by zeroimage build --from docker-daemon:NAME"),
    ("`copy(referrers=True, SRC, DST)`", "zeroimage copy --referrers SRC DST"),
    ("an unterminated `quoted` string", "an unterminated `quoted` string"),        # not an option: as it is
    ("`nothing(1)` and `no_such_option`", "`nothing(1)` and `no_such_option`"),
])
def test_the_cli_words_options_as_flags_and_calls_as_commands(text, said):
    assert zeroimage._cli_words()(text) == said


def _program(tmp_path, text=b"\x7fELF not really"):
    path = tmp_path / "app"
    path.write_bytes(text)
    path.chmod(0o755)
    return str(path)


AMD64 = zeroimage.Platform.parse("linux/amd64")
# (what the library is called with, the options its error names)
CALLS = [
    (lambda p, t: zeroimage.build(zeroimage.BuildOptions(p, str(t / "a.tar"), base="scratch", tzdata=True,
                                                         platform=AMD64)),
     ["tzdata", "base=scratch", "add"], ["--tzdata", "--from scratch", "--add"]),
    (lambda p, t: zeroimage.build(zeroimage.BuildOptions(p, str(t / "a.tar"), push="registry.example.com/app:1",
                                                         platform=AMD64)),
     ["push", "output"], ["--push", "-o"]),
    (lambda p, t: zeroimage.build(zeroimage.BuildOptions(p, output_format="oci-layout", platform=AMD64)),
     ["output_format=oci-layout", "output=DIR"], ["--format oci-layout", "-o DIR"]),
    (lambda p, t: zeroimage.build(zeroimage.BuildOptions(p, str(t / "a.tar"), platform=AMD64, base="scratch",
                                                         image=zeroimage.ImageOptions(env=[("A", "x\ny")]))),
     ["env", "add"], ["--env", "--add"]),
    (lambda p, t: zeroimage.build(zeroimage.BuildOptions(p, str(t / "a.tar"), platform=AMD64,
                                                         tzdata=str(t / "nowhere"))),
     ["tzdata"], ["--tzdata: "]),
    (lambda p, t: zeroimage.pull("registry.example.com/app:1", str(t / "a.tar"), all_platforms=True,
                                 platform=AMD64), ["all_platforms", "platform"], ["--all-platforms", "--platform"]),
    (lambda p, t: zeroimage.pull("me:secret@registry.example.com/app:1", str(t / "a.tar")),
     ["login(REGISTRY)"], ["zeroimage login REGISTRY"]),
]


@pytest.mark.parametrize("call, options, flags", CALLS, ids=[" ".join(o) for _, o, _ in CALLS])
def test_a_library_caller_meets_option_names_and_the_cli_the_flags(tmp_path, call, options, flags):
    all_flags, verbs = _flags_and_verbs()
    with pytest.raises(zeroimage.ZeroImageError) as caught:
        call(_program(tmp_path), tmp_path)
    said = str(caught.value)
    for option in options:
        assert "`%s`" % option in said, said
    assert not [f for f in all_flags if re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(f), said)], said
    assert "zeroimage login" not in said
    line = zeroimage._error_line(caught.value)
    assert "`" not in line and all(flag in line for flag in flags), line
    assert os.listdir(str(tmp_path)) == ["app"]


def test_a_library_callers_warnings_name_options_and_the_cli_words_them(tmp_path, caplog, capsys):
    program = _program(tmp_path, b"#!/bin/sh\necho hi\n")
    with caplog.at_level(logging.INFO, logger="zeroimage"):
        zeroimage.build(zeroimage.BuildOptions(program, str(tmp_path / "a.tar"), base="scratch"))
    said = [r.getMessage() for r in caplog.records if "/bin/sh" in r.getMessage() or "`platform`" in r.getMessage()]
    assert any("`add`" in text for text in said) and any("set `platform` to choose" in text for text in said), said
    assert not any("--" in text for text in said), said
    os.remove(str(tmp_path / "a.tar"))
    assert zeroimage.main(["build", "--from", "scratch", "-o", str(tmp_path / "a.tar"), program]) == 0
    err = capsys.readouterr().err
    assert "or --add it" in err and "(set --platform to choose)" in err and "`" not in err, err


def test_an_advice_kind_is_said_in_the_librarys_words_and_the_clis():
    error = zeroimage.NetworkError("10.0.0.1:5000 answered plain HTTP to a TLS handshake")
    error.hint = "plain-http"
    assert error.advice == "if it is a plain-HTTP registry, use `insecure`"
    assert zeroimage._error_line(error).endswith("; if it is a plain-HTTP registry, use --insecure")
    assert zeroimage.ZeroImageError("x").advice is None


@pytest.mark.parametrize("argv, flag", [
    (["pull", "http://registry.example.com/app:1"], "add --insecure"),            # argparse's type error
    (["build", "--from", "containers-storage:app", "app"], "push's source, --from), or save one"),
    (["build", "--from", "scratch", "--tzdata", "--", "app"], "--tzdata adds the zone database"),   # build()'s
])
def test_every_way_an_error_reaches_the_command_line_words_its_options(tmp_path, capsys, monkeypatch, argv, flag):
    monkeypatch.chdir(str(tmp_path))
    _program(tmp_path)
    assert zeroimage.main(argv) == 2
    err = capsys.readouterr().err
    assert flag in err and "`" not in err, err


# Where one command's parser words an option otherwise than every command's does, and why.
OWN_WORDING = {("inspect", "`build_info`"): "inspect's own --build-info (build's is --no-build-info)"}


def test_each_commands_parser_words_every_message_as_the_whole_parser_does():
    """main() words messages with the running command's parser (build_parser(verb)) and learns every
    command's only when a message names another's option: the words must come out the same, so a
    flag of another value (build's --no-build-info for `build_info=True`) is not taken for the one meant."""
    whole = zeroimage._cli_words()
    named = sorted(set(match.group(0) for _, text in _message_literals()
                       for match in zeroimage._NAMED_RE.finditer(text)
                       if match.group(1) not in NOT_OPTIONS and "%" not in match.group(0)))
    differ, used = [], set()
    for verb in sorted(_flags_and_verbs()[1]):
        for text in named:
            said = zeroimage._cli_words(zeroimage.build_parser(verb))(text)
            if said != whole(text):
                used.add((verb, text))
                if (verb, text) not in OWN_WORDING:
                    differ.append("%s: %s is %r, not %r" % (verb, text, said, whole(text)))
    assert not differ, "\n".join(differ)
    assert used == set(OWN_WORDING)
    assert zeroimage._cli_words(zeroimage.build_parser("build"))("`build_info=True`") == "--build-info"
