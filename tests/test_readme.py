"""Every shell example of README.md that can run offline is run (issue 22 part 10), and the README's
reference follows ``--help``: its command sections in ``--help`` order, each with the synopsis
``--help`` prints, its links leading somewhere.

The examples are the command lines of every ```sh block (continued lines joined, comments dropped),
taken in order, as a user would type them. A line is run when it runs zeroimage on local files only:
``build`` without ``--push``/``--load`` on no base, ``scratch`` or ``--from-archive``; ``inspect``,
``digest`` and ``copy`` of paths (zeroimage's own path-or-reference rule decides). It runs in a fresh
directory after the lines of its block that come before it and run too, with ``zeroimage`` (and
``python3 zeroimage.py``, ``python3 zeroimage.pyz``) meaning this checkout under this interpreter; the
programs it names are made from the static busybox (or a crafted ELF of their platform), a missing
``--add`` source is a small tree, a missing base or image archive is a two-platform layout written by
hand. It must exit 0, and every archive or layout it writes must satisfy the image spec
(tests/speccheck.py). Lines whose only registry is ``localhost:5000`` run against the tests'
docker-registry on loopback, under plain HTTP and without ``--insecure``, as the README says. Every
other line is listed with the reason it is not run: a synopsis, a tool other than zeroimage
(docker, podman, skopeo, ...), a registry, an engine, or credentials."""

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

import zeroimage
from conftest import REQUIRE_INTEROP, static_busybox
from binaries import elf_for
from imagetools import MODULE, ROOT, LayoutBuilder, ref

README = os.path.join(ROOT, "README.md")
REGISTRY_VERBS = {"pull": "pulls from a registry", "push": "pushes to a registry",
                  "login": "stores credentials", "logout": "changes the stored credentials",
                  "check-auth": "asks a registry", "tags": "lists a registry's tags",
                  "tag": "tags in a registry", "delete": "deletes from a registry",
                  "sync": "copies between repositories"}
OFFLINE_HELPERS = {"sha256sum", "cat", "head", "tail", "wc", "tar", "jq", "git", "echo"}   # fine to run beside zeroimage
LOCAL_REGISTRY = "localhost:5000"
PLACEHOLDER = re.compile(r"[A-Z0-9_.:=/|{},]+|\.\.\.")


def _read(path=README):
    with open(path, encoding="utf-8") as f:
        return f.read()


# ---- the examples, and which run ----


def sh_blocks(text):
    """[(line number of the block's first line, [(line number, logical line)])] of every ```sh block:
    lines ending in a backslash are joined with the next, indented lines (a synopsis' continuation)
    with the one before, and comment lines dropped."""
    blocks, block, lines = [], None, text.splitlines()
    for number, line in enumerate(lines, 1):
        if block is None:
            if line.strip() == "```sh":
                block, pending = [], None
            continue
        if line.startswith("```"):
            blocks.append(block)
            block = None
            continue
        if pending is not None:
            block[-1] = (block[-1][0], block[-1][1] + " " + line.strip())
        elif line[:1].isspace() and block and line.strip():
            block[-1] = (block[-1][0], block[-1][1] + " " + line.strip())
        elif line.strip() and not line.lstrip().startswith("#"):
            block.append((number, line.strip()))
        else:
            continue
        pending = True if block[-1][1].endswith("\\") else None
        if pending:
            block[-1] = (block[-1][0], block[-1][1][:-1].rstrip())
    return blocks


def simple_commands(line):
    """The simple commands of a shell line: lists of words, split at | && || ; ( ) $( and
    redirections (their file dropped), leading VAR=value assignments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands, words, redirect = [], [], False
    for token in lexer:
        if redirect:
            redirect = False
        elif token in ("|", "||", "&&", ";", "(", ")", "&"):
            commands.append(words)
            words = []
        elif token in (">", ">>", "<", "2>", "2>&1"):
            redirect = True
        elif token.endswith("$") and not words:
            continue                                # digest=$( ... : the assignment of a substitution
        elif not words and re.match(r"[A-Za-z_][A-Za-z0-9_]*=", token):
            continue
        else:
            words.append(token)
    commands.append(words)
    return [c for c in commands if c]


def zeroimage_args(words):
    """The arguments of a zeroimage command (None for another program)."""
    if words[0] == "zeroimage":
        return words[1:]
    if words[0] in ("python3", "python") and len(words) > 1 and words[1] in ("zeroimage.py", "zeroimage.pyz"):
        return words[2:]
    return None


def is_synopsis(line):
    """A synopsis as test_words reads them: after the command, only options and placeholders."""
    if not re.match(r"zeroimage [a-z-]+ ", line):
        return False
    bare, previous = line.split(" #", 1)[0], None
    while bare != previous:
        bare, previous = re.sub(r"\[[^\[\]]*\]", " ", bare), bare
    return all(PLACEHOLDER.fullmatch(w) for w in bare.split()[2:] if not w.startswith("-"))


def _parse(args):
    parser = zeroimage.build_parser()
    try:
        return parser.parse_args(args)
    except SystemExit:
        return None


def _references(parsed):
    """The registry references a parsed command names (paths left out)."""
    names = []
    for attr in ("push", "ref", "target", "src", "dst", "repository", "registry"):
        value = getattr(parsed, attr, None)
        if isinstance(value, str) and not zeroimage.looks_like_path(value):
            names.append(value)
    base = getattr(parsed, "base", None)
    if base and base != "scratch" and not base.startswith("docker-daemon:"):
        names.append(base)
    return names


def _registry_of(text):
    try:
        return zeroimage.Reference.parse(text).registry
    except zeroimage.ZeroImageError:
        return zeroimage.registry_host(text) if "/" not in text else None


def _zeroimage_need(parsed):
    """(why a parsed zeroimage command cannot run on local files alone, or None; whether what it
    needs is a registry, so that one on loopback can stand in)."""
    command = parsed.command
    if any(isinstance(getattr(parsed, attr, None), str) and zeroimage.engine_image(getattr(parsed, attr)) is not None
           for attr in ("target", "src", "dst", "archive")):
        return "reads from or loads into Docker or podman (docker-daemon:NAME)", False
    if command in ("login", "logout"):
        return REGISTRY_VERBS[command], False
    if command in REGISTRY_VERBS:
        return REGISTRY_VERBS[command], True
    if command == "build":
        if parsed.push:
            return "pushes to a registry", True
        if parsed.load:
            return "loads into Docker or podman", False
        if parsed.base and parsed.base.startswith("docker-daemon:"):
            return "reads its base from Docker or podman", False
        if parsed.base not in (None, "scratch"):
            return "pulls its base from a registry", True
        return None, False
    if command in ("inspect", "digest", "export"):
        return (None, False) if zeroimage.looks_like_path(parsed.target) else ("reads from a registry", True)
    if command in ("mutate", "append", "rebase", "export"):        # an existing image's, made into another
        if getattr(parsed, "push", None):
            return "pushes to a registry", True
        if getattr(parsed, "load", False):
            return "loads into Docker or podman", False
        return (None, False) if zeroimage.looks_like_path(parsed.target) else ("reads from a registry", True)
    if command == "copy":
        if zeroimage.looks_like_path(parsed.src) and zeroimage.looks_like_path(parsed.dst):
            return None, False
        return "copies from or to a registry", True
    return "%s is not classified" % command, False


def classify(line):
    """("run" | "local-registry" | "skip" | "broken", why)."""
    if is_synopsis(line):
        return "skip", "a synopsis"
    commands = simple_commands(line)
    others = sorted({words[0] for words in commands if zeroimage_args(words) is None
                     and not (words[0] in ("python3", "python") and words[1:2] == ["-c"])
                     and words[0] not in OFFLINE_HELPERS})
    ours = [zeroimage_args(words) for words in commands if zeroimage_args(words) is not None]
    if not ours:
        return "skip", "runs no zeroimage (%s)" % ", ".join(sorted({words[0] for words in commands}))
    if others:
        return "skip", "needs %s" % ", ".join(others)
    kind, why = "run", "runs offline"
    for args in ours:
        parsed = _parse(args)
        if parsed is None:
            return "broken", "zeroimage %s does not parse" % " ".join(args)
        need, registry = _zeroimage_need(parsed)
        if need is None:
            continue
        if registry and {_registry_of(name) for name in _references(parsed)} == {LOCAL_REGISTRY}:
            kind, why = "local-registry", "%s: the tests' registry on loopback" % need
            continue
        return "skip", need
    return kind, why


def examples():
    """pytest params: each example line with the lines of its block before it, classified."""
    params = []
    for block in sh_blocks(_read()):
        before = []
        for number, line in block:
            kind, why = classify(line)
            label = "L%d %s [%s]" % (number, re.sub(r"\s+", " ", line)[:70], why)
            marks = [pytest.mark.skip(reason=why)] if kind == "skip" else []
            if kind == "local-registry":
                marks.append(pytest.mark.interop)
            params.append(pytest.param(number, line, kind, list(before), id=label, marks=marks))
            if kind in ("run", "local-registry"):
                before.append(line)
    return params


# ---- what a line needs, made in its directory ----


def _program(path, platform):
    """A program file at ``path``: the static busybox when it is of ``platform`` (or none is asked),
    else a crafted ELF header of that platform."""
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    busybox = static_busybox()
    if busybox is None:
        (pytest.fail if REQUIRE_INTEROP else pytest.skip)("no static busybox (install Debian's busybox-static)")
    with open(busybox, "rb") as f:
        own = zeroimage.read_elf(f).platform
    if platform is None or zeroimage.Platform.parse(platform) == own:
        shutil.copyfile(busybox, path)
        os.chmod(path, 0o755)
    else:
        elf_for(path, str(zeroimage.Platform.parse(platform)))


def _split_spec(spec, where="."):
    """``PATH[:NAME]`` of an archive or layout: (path, name or None); a path that exists is taken as
    zeroimage takes it, else one ending like an archive."""
    for colon in [len(spec)] + [i for i in range(len(spec) - 1, 0, -1) if spec[i] == ":"]:
        if os.path.exists(os.path.join(where, spec[:colon])):
            return spec[:colon], spec[colon + 1:] or None
    match = re.match(r"(.*?(?:\.tar|\.tar\.gz|\.tgz|\.oci))(?::(.+))?$", spec)
    return (match.group(1), match.group(2)) if match else (spec, None)


def _base_archive(path, name):
    """An image layout tar written by hand: an index of linux/amd64 and linux/arm64 images of a
    small root file system, named ``name`` as docker save 25+ names it."""
    name = name or "alpine:3.19"
    full = zeroimage.Reference.parse(name)
    builder = LayoutBuilder()
    layer = [("etc", "dir", None, 0o755), ("etc/os-release", "file", b"ID=readme\n", 0o644),
             ("tmp", "dir", None, 0o1777)]
    config = {"config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
              "history": [{"created_by": "tests/test_readme.py"}]}
    images = [builder.image([layer], config, platform=("linux", arch, "")) for arch in ("amd64", "arm64")]
    index = ref(builder.index(images), full.tag or "latest")
    index["annotations"]["io.containerd.image.name"] = str(full)
    builder.write_tar(path, [index])


def _add_sources(parsed, at):
    """A missing ``--add`` source: a small tree."""
    for add in parsed.add:
        source = add[0] if isinstance(add, (tuple, list)) else str(add).split(":", 1)[0]
        if not os.path.exists(at(source)):
            os.makedirs(at(source))
            with open(os.path.join(at(source), "index.html"), "w") as f:
                f.write("<p>static</p>\n")


def prepare(line, where):
    """Make what the line's zeroimage commands read and the README leaves to the reader."""
    for words in simple_commands(line):
        args = zeroimage_args(words)
        if args is None:
            if words[0] == "git" and not os.path.isdir(os.path.join(where, ".git")):
                env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
                           GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
                for git in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "readme"]):
                    subprocess.run(["git"] + git, cwd=where, env=env, check=True, stdout=subprocess.DEVNULL)
            continue
        parsed = _parse(args)
        at = lambda p: os.path.join(where, os.path.expanduser(p))    # noqa: E731
        if parsed.command == "rebase":      # its bases on disk, as build's --from-archive
            for word in (parsed.new_base, parsed.old_base):
                path, name = _split_spec(word or "scratch", where)
                if zeroimage.looks_like_path(path) and not os.path.exists(at(path)):
                    _base_archive(at(path), name)
        if parsed.command == "append":
            _add_sources(parsed, at)
        if parsed.command == "build":
            for platform, program in parsed.entrypoint:
                _program(at(program), str(platform) if platform else parsed.platform and str(parsed.platform))
            _add_sources(parsed, at)
            if parsed.base_archive:
                path, name = _split_spec(parsed.base_archive, where)
                if zeroimage.looks_like_path(path) and not os.path.exists(at(path)):
                    _base_archive(at(path), name)
        inputs = {"inspect": ["target"], "digest": ["target"], "export": ["target"],
                  "copy": ["src"]}.get(parsed.command, [])
        for attr in inputs:
            path, name = _split_spec(getattr(parsed, attr), where)
            if zeroimage.looks_like_path(path) and not os.path.exists(at(path)):
                _image_archive(at(path), where)


def _image_archive(path, where):
    """An image archive of a program, with its SBOM attached (what `build --sbom` writes)."""
    program = os.path.join(where, ".readme-program", "app")
    _program(program, None)
    r = subprocess.run([sys.executable, MODULE, "build", "-q", "--sbom", "-o", path, program],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert r.returncode == 0, r.stderr


def _shims(bindir):
    """``zeroimage`` and ``python3`` on PATH: this checkout, this interpreter."""
    os.makedirs(bindir, exist_ok=True)
    for name, target in (("zeroimage", 'env PYTHONPATH="%s" "%s" -m zeroimage' % (ROOT, sys.executable)),
                         ("python3", '"%s"' % sys.executable)):
        path = os.path.join(bindir, name)
        with open(path, "w") as f:
            f.write('#!/bin/sh\nexec %s "$@"\n' % target)
        os.chmod(path, 0o755)


@pytest.fixture(scope="module")
def zipapp(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("pyz") / "zeroimage.pyz")
    subprocess.run([sys.executable, os.path.join(ROOT, "build_zipapp.py"), "-o", out], check=True,
                   stdout=subprocess.DEVNULL, timeout=300)
    return out


def _snapshot(where):
    seen = {}
    for top, dirs, files in os.walk(where):
        dirs[:] = [d for d in dirs if d not in (".git", ".readme-bin", ".readme-home")]
        for name in files:
            path = os.path.join(top, name)
            st = os.lstat(path)
            seen[path] = (st.st_size, st.st_mtime_ns)
    return seen


def _written_images(before, after):
    """Archives and layout directories a line wrote or changed."""
    found = set()
    for path, state in after.items():
        if before.get(path) == state:
            continue
        if os.path.basename(path) == "oci-layout":
            found.add(os.path.dirname(path))
        elif re.search(r"\.(tar|tar\.gz|tgz|oci)$", path):
            found.add(path)
    return sorted(found)


def run_line(line, where, env):
    import speccheck
    prepare(line, where)
    before = _snapshot(where)
    r = subprocess.run(["bash", "-c", "set -eo pipefail\n" + line], cwd=where, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert r.returncode == 0, "README line exits %d: %s\n%s%s" % (r.returncode, line, r.stdout[-2000:],
                                                                  r.stderr[-3000:])
    filesystems = set()         # export writes a filesystem's tar, not an image
    for words in simple_commands(line):
        parsed = _parse(zeroimage_args(words)) if zeroimage_args(words) is not None else None
        if parsed is not None and parsed.command == "export" and parsed.output not in (None, "-"):
            filesystems.add(os.path.join(where, parsed.output))
    for image in _written_images(before, _snapshot(where)):
        if image in filesystems:
            continue
        problems = speccheck.check(image)
        assert not problems, "%s wrote %s, which breaks the image spec:\n%s" % (line, image, "\n".join(problems))
    return r


@pytest.mark.parametrize("number, line, kind, before", examples())
def test_readme_example(number, line, kind, before, tmp_path, zipapp, request):
    assert kind != "broken", "README.md:%d: %s" % (number, line)
    where = str(tmp_path / "work")
    os.makedirs(where)
    bindir, home = os.path.join(where, ".readme-bin"), os.path.join(where, ".readme-home")
    _shims(bindir)
    os.makedirs(home)
    shutil.copyfile(zipapp, os.path.join(where, "zeroimage.pyz"))
    os.symlink(MODULE, os.path.join(where, "zeroimage.py"))
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""), HOME=home,
               DOCKER_CONFIG=os.path.join(home, ".docker"))
    for name in ("ZEROIMAGE_DEBUG", "DOCKER_HOST", "SOURCE_DATE_EPOCH"):
        env.pop(name, None)
    lines = before + [line]
    if kind == "local-registry" or any(classify(b)[0] == "local-registry" for b in before):
        registry = request.getfixturevalue("registry_servers")("open")
        port = registry.host.rsplit(":", 1)[1]
        lines = [b.replace(LOCAL_REGISTRY + "/", "localhost:%s/readme-%d/" % (port, number)) for b in lines]
    for each in lines[:-1]:
        run_line(each, where, env)
    r = run_line(lines[-1], where, env)
    if kind == "local-registry":
        assert "--insecure" not in lines[-1]
    if re.match(r"(zeroimage|python3 zeroimage\.pyz?) build ", line) and "-o -" not in line and "--json" not in line:
        assert re.match(r"(\S+@)?sha256:[0-9a-f]{64}$", r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""), \
            r.stdout


def test_the_examples_are_read_and_most_run():
    """The classification sees every example, and the offline ones are many: a README rewrite that
    turned them all into registry examples would be noticed."""
    params = examples()
    kinds = [p.values[2] for p in params]
    assert "broken" not in kinds, [p.id for p in params if p.values[2] == "broken"]
    assert kinds.count("run") >= 10, [p.id for p in params]
    assert kinds.count("local-registry") >= 2, [p.id for p in params]
    lines = [p.values[1] for p in params]
    assert "zeroimage build ./app" in " | ".join(lines)


@pytest.mark.parametrize("line, kind", [
    ("zeroimage build ./app", "run"),
    ("python3 zeroimage.pyz build --from scratch -o x.tar linux/amd64=dist/a-amd64", "run"),
    ("SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) zeroimage build ./app", "run"),
    ("zeroimage inspect --raw app.tar | sha256sum", "run"),
    ("zeroimage copy a.tar b.tar", "run"),
    ("zeroimage build --from alpine:3.19 ./app", "skip"),
    ("zeroimage build --load ./app", "skip"),
    ("zeroimage build -o - ./app | docker load", "skip"),
    ("zeroimage inspect alpine", "skip"),
    ("zeroimage copy app.tar registry.example.com/app:1", "skip"),
    ("zeroimage build --push localhost:5000/app:1 ./app", "local-registry"),
    ("zeroimage inspect localhost:5000/app:1", "local-registry"),
    ("zeroimage copy localhost:5000/app:1 registry.example.com/app:1", "skip"),
    ("echo x | zeroimage login -u me --password-stdin localhost:5000", "skip"),
    ("zeroimage build [--json] [-o PATH] PROGRAM", "skip"),
    ("docker run --rm localhost/app", "skip"),
    ("zeroimage build --nonsense ./app", "broken"),
])
def test_the_rule_that_says_which_examples_run(line, kind):
    assert classify(line)[0] == kind, classify(line)


# ---- the reference follows --help ----


def _help_commands():
    parser = zeroimage.build_parser()
    action = next(a for a in parser._actions if isinstance(a, type(parser._subparsers._group_actions[0])))
    return list(action.choices.items())


def _usage(sub):
    usage = sub.format_usage().replace("usage: ", "", 1).replace(" [-h]", "", 1)
    return " ".join(usage.split())


def test_each_command_has_its_section_in_help_order_with_the_help_synopsis():
    text = _read()
    sections = [(m.start(), m.group(1)) for m in re.finditer(r"^## (\S+)$", text, re.M)]
    commands = [name for name, _ in _help_commands()]
    found = [name for _, name in sections if name in commands]
    assert found == commands, "README's command sections are not in --help order: %s" % found
    for start, name in sections:
        if name not in commands:
            continue
        sub = dict(_help_commands())[name]
        block = re.search(r"```sh\n(.*?)```", text[start:], re.S).group(1)
        assert " ".join(block.split()) == _usage(sub), "README's synopsis of %s is not --help's:\n%s" % (name, block)


def test_the_first_screen_gets_a_newcomer_to_an_image_and_a_registry():
    text = _read()
    top = text[:text.index("\n## Commands")].splitlines()
    assert len(top) <= 62, len(top)
    said = " ".join(" ".join(top).split())
    for words in ("pipx install .", "pip install .", "python3 build_zipapp.py", "zeroimage.py",
                  "zeroimage build ./app", "localhost/app:latest", "docker load -i app.tar", "podman load",
                  "--load", "localhost:5000", "--insecure", "COPY some-program /some-program", "[Commands](#commands)"):
        assert words in said, words


def _slug(heading):
    heading = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


@pytest.mark.parametrize("document", ["README.md", "tests/README.md", "bench/README.md"])
def test_links_lead_somewhere(document):
    path = os.path.join(ROOT, document)
    text = _read(path)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
        assert os.path.exists(linked), "%s links to %s, which is not there" % (document, target)
        if anchor:
            headings = re.findall(r"^#+ (.+)$", _read(linked), re.M)
            assert anchor in {_slug(h) for h in headings}, "%s links to %s, no such heading" % (document, target)


def test_maintainers_material_lives_beside_the_tests_and_the_bench():
    text = _read()
    assert "### Benchmark" not in text and "tests/test_units.py" not in text
    listed = _read(os.path.join(ROOT, "tests", "README.md"))
    for name in sorted(os.listdir(os.path.join(ROOT, "tests"))):
        if re.match(r"test_.*\.py$", name):
            assert "tests/%s" % name in listed, "tests/README.md does not describe tests/%s" % name
    assert "bench/bench.py" in _read(os.path.join(ROOT, "bench", "README.md"))
