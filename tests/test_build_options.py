"""BuildOptions (issue 24 item 4): what a build is asked for, as one value. ``build(BuildOptions(...))``
is the library's form; the older one, ``build(entrypoint, output, base=..., options=ImageOptions(...))``,
still builds the same image, with one DeprecationWarning that names BuildOptions. ``zeroimage build``'s
options are named as BuildOptions' (and ImageOptions') fields, so the CLI hands them over by name, and
the README's library examples use the new form and run (offline: a push or a registry base goes to an
archive instead)."""

import os
import re
import struct
import threading
import warnings

import pytest

import zeroimage
from zeroimage import BuildOptions, ImageOptions, Platform

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCH = {"SOURCE_DATE_EPOCH": "1700000000"}
MACHINES = {"linux/amd64": 62, "linux/arm64": 183}


def elf(path, platform):
    """A crafted static 64-bit little-endian ELF header of the platform's machine (one PT_LOAD)."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, MACHINES[platform], 1, 0, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 4, 120, 0, 0, 0, 0, 1)
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(str(path), "wb") as f:
        f.write(header + phdr + platform.encode())
    return str(path)


@pytest.fixture
def programs(tmp_path):
    return {p: elf(tmp_path / "dist" / ("app-" + p.split("/")[1]), p) for p in MACHINES}


def _one_warning(record):
    deprecations = [w for w in record if issubclass(w.category, DeprecationWarning)]
    assert len(deprecations) == 1, [str(w.message) for w in deprecations]
    assert "BuildOptions" in str(deprecations[0].message)
    assert deprecations[0].filename == __file__         # it points at the caller's line
    return deprecations[0]


# ---- the value ----


def test_defaults_are_the_old_keywords_defaults():
    """(compression_level None: the codec's default, 6 for gzip, as before.)"""
    options = BuildOptions("app")
    assert options == BuildOptions(
        entrypoint="app", output=None, base=None, base_archive=None, platform=None, target=None, tag=None,
        push=None, load=False, output_format="archive", media_types=None, compression="gzip", compression_level=None, ca_bundle=None,
        tzdata=None, sbom=False, platform_check=True, build_info=True, image=ImageOptions())
    assert options._replace(tag="app:2").tag == "app:2" and options.tag is None


def test_docstring_lists_every_field_and_it_is_exported():
    assert "BuildOptions" in zeroimage.__all__
    for field in BuildOptions._fields:
        assert "``%s``" % field in BuildOptions.__doc__, field


def test_the_cli_names_its_options_as_the_fields():
    """Every option of ``zeroimage build`` is a field of BuildOptions or ImageOptions by its dest (so a
    message naming an option maps to one flag, and cmd_build hands them over by name), and back."""
    parser = zeroimage.build_parser()
    build_parser = parser._subparsers._group_actions[0].choices["build"]
    shared = {action.dest for action in parser._actions}            # the global options (--verbose, ...)
    dests = {action.dest for action in build_parser._actions} - shared - {"help", "json"}
    fields = (set(BuildOptions._fields) - {"image"}) | set(ImageOptions._fields)
    assert dests == fields


def test_the_cli_hands_over_what_it_was_given(tmp_path):
    args = zeroimage.build_parser().parse_args([
        "build", "--from-archive", "base.tar", "--format", "oci-layout", "-o", "dir", "--no-platform-check",
        "--no-build-info", "--label", "a=b", "--annotation", "c=d", "--env", "E=1", "--cmd", "x", "--tzdata",
        "--compression-level", "1", "-t", "app:1", "--sbom", "--", "app"])
    options = zeroimage._build_options(args, "app")
    assert options == BuildOptions("app", "dir", base_archive="base.tar", output_format="oci-layout", tag="app:1",
                                   compression_level=1, tzdata=True, sbom=True, platform_check=False,
                                   build_info=False, image=ImageOptions(env=[("E", "1")], labels=[("a", "b")],
                                                                        annotations=[("c", "d")], cmd=["x"],
                                                                        expose=[], add=[], args=[]))


def test_the_cli_builds_what_the_library_builds_and_warns_of_nothing(tmp_path, programs, monkeypatch, capsys):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH["SOURCE_DATE_EPOCH"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert zeroimage.main(["build", "-q", "--from", "scratch", "--label", "a=b", "--no-build-info", "-o",
                               str(tmp_path / "cli.tar"), programs["linux/arm64"]]) == 0
    options = BuildOptions(programs["linux/arm64"], str(tmp_path / "lib.tar"), base="scratch", build_info=False,
                           image=ImageOptions(labels=[("a", "b")]))
    assert capsys.readouterr().out.strip() == zeroimage.build(options).digest


# ---- the two forms of build() ----


def test_the_old_keywords_build_the_same_image_with_one_warning(tmp_path, programs):
    image = ImageOptions(env=[("MODE", "prod")], labels=[("a", "b")], user="65532")
    new = zeroimage.build(BuildOptions(programs["linux/arm64"], str(tmp_path / "new.tar"), base="scratch",
                                       target="/app", image=image), environ=EPOCH)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        old = zeroimage.build(programs["linux/arm64"], str(tmp_path / "old.tar"), base="scratch", target="/app",
                              options=image, environ=EPOCH)
    _one_warning(record)
    assert old.digest == new.digest and old.images[0].config == new.images[0].config
    assert old.images[0].platform == Platform.parse("linux/arm64")


def test_every_old_form_still_builds(tmp_path, programs):
    pairs = [(Platform.parse(p), path) for p, path in sorted(programs.items())]
    made = []
    calls = [
        lambda out: zeroimage.build(pairs, out, base="scratch", target="/app", environ=EPOCH),
        lambda out: zeroimage.build(entrypoint=pairs, output=out, base="scratch", target="/app", environ=EPOCH),
        lambda out: zeroimage.build(pairs, output=out, base="scratch", target="/app", compression_level=6,
                                    options=ImageOptions(), environ=EPOCH)]
    for i, call in enumerate(calls):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            made.append(call(str(tmp_path / ("old-%d.tar" % i))).digest)
        _one_warning(record)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # the new form, positional or keyword, warns of nothing
        options = BuildOptions(pairs, str(tmp_path / "new.tar"), base="scratch", target="/app")
        made.append(zeroimage.build(options, environ=EPOCH).digest)
        with zeroimage.Session(EPOCH) as session:
            made.append(zeroimage.build(options=options._replace(output=str(tmp_path / "kw.tar")),
                                        session=session).digest)
    assert len(set(made)) == 1


def test_the_warning_comes_once_per_calling_line_and_says_what_to_write(tmp_path, programs):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("default")
        for i in range(2):
            zeroimage.build(programs["linux/amd64"], str(tmp_path / ("%d.tar" % i)), base="scratch", environ=EPOCH)
    assert "build(BuildOptions(" in str(_one_warning(record).message)


@pytest.mark.parametrize("args, keywords, message", [
    ((), {}, "missing 1 required positional argument: 'options'"),
    (("app",), {"colour": "red"}, "unexpected keyword argument 'colour'"),
    (("app",), {"image": ImageOptions()}, "unexpected keyword argument 'image'"),
    (("app", "a.tar", "b.tar"), {}, "takes from 1 to 2 positional arguments but 3 were given"),
    (("app", "a.tar"), {"output": "b.tar"}, "multiple values for argument 'output'"),
    (("app",), {"entrypoint": "b"}, "multiple values for argument 'entrypoint'"),
    ((BuildOptions("app"), "a.tar"), {}, "give a BuildOptions alone"),
    ((BuildOptions("app"),), {"base": "scratch"}, "give a BuildOptions alone"),
    ((), {"options": BuildOptions("app"), "base": "scratch"}, "give a BuildOptions alone"),
])
def test_a_call_of_neither_form_is_a_type_error(args, keywords, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(TypeError, match=re.escape(message)):
            zeroimage.build(*args, **keywords)


@pytest.mark.parametrize("entrypoint", [None, 3, [("linux/amd64", "app")], [(None, "app")], [("x",)]])
def test_an_entrypoint_of_no_known_shape_is_a_usage_error(entrypoint, tmp_path):
    with pytest.raises(zeroimage.UsageError, match="entrypoint is a program's path, or a list of"):
        zeroimage.build(BuildOptions(entrypoint, str(tmp_path / "x.tar")), environ=EPOCH)
    assert not os.path.exists(str(tmp_path / "x.tar"))


def test_the_options_are_checked_before_anything_is_read(tmp_path):
    with pytest.raises(zeroimage.UsageError, match="compression"):
        zeroimage.build(BuildOptions(str(tmp_path / "missing"), compression_level=12), environ=EPOCH)
    with pytest.raises(zeroimage.UsageError, match="tzdata"):
        zeroimage.build(BuildOptions(str(tmp_path / "missing"), base="scratch", tzdata=True), environ=EPOCH)


# ---- the README's library examples run ----


def _library_blocks():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("\n## As a library\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_library_examples_use_build_options_and_run(tmp_path, monkeypatch, programs, capsys):
    """Each ```python block of "As a library" runs, in order, in a directory holding its dist/ programs.
    What needs a registry stays offline: a push is written to an archive (inspect of the pushed name
    reads that archive) and a registry base is scratch; every BuildOptions is checked as it was given."""
    blocks = _library_blocks()
    assert len(blocks) >= 2
    os.rename(str(tmp_path / "dist" / "app-arm64"), str(tmp_path / "dist" / "app"))
    elf(tmp_path / "dist" / "app-arm64", "linux/arm64")
    monkeypatch.chdir(str(tmp_path))
    real_build, real_inspect, pushed, calls = zeroimage.build, zeroimage.inspect, {}, []

    def build(options, **keywords):
        assert isinstance(options, BuildOptions), "the README shows the deprecated form: %r" % (options,)
        zeroimage._check_build_options(options)
        calls.append(options)
        if options.push:
            pushed[options.push] = os.path.abspath("pushed-%d.tar" % len(pushed))
            options = options._replace(push=None, output=pushed[options.push])
        if options.base not in (None, "scratch"):
            options = options._replace(base="scratch")
        return real_build(options, **keywords)

    def inspect(target, **keywords):
        return real_inspect(pushed.get(target, target), **keywords)

    monkeypatch.setattr(zeroimage, "build", build)
    monkeypatch.setattr(zeroimage, "inspect", inspect)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    before = set(threading.enumerate())
    for block in blocks:
        exec(compile(block, "README.md (As a library)", "exec"), {"__name__": "readme_example"})
    for thread in set(threading.enumerate()) - before:      # the example's deadline Timer, cancelled
        thread.join(10)
        assert not thread.is_alive()
    assert len(calls) >= 5 and len(pushed) >= 3
    assert os.path.exists("app.tar") and os.path.exists("app-2.tar")
    out = capsys.readouterr().out
    assert re.search(r"^sha256:[0-9a-f]{64}$", out, re.M)        # print(result.digest)
    assert "linux/arm64" in out                                 # print(zeroimage.inspect(...))


# A field of the wrong type is one line naming it, said before anything is read (never an AttributeError
# from deep inside build()); paths may be os.PathLike.
WRONG_TYPES = [
    ({"platform": "linux/amd64"}, "`platform` is a Platform"),
    ({"base": 3}, "`base` is a string, not 3"),
    ({"tag": ["app:1"]}, "`tag` is a string"),
    ({"target": 5}, "`target` is a string"),
    ({"output": 7}, "`output` is a path, not 7"),
    ({"load": "yes"}, "`load` is True or False, not 'yes'"),
    ({"sbom": "no"}, "`sbom` is True or False"),
    ({"platform_check": "False"}, "`platform_check` is True or False"),
    ({"build_info": None}, "`build_info` is True or False, not None"),
    ({"compression": ["gzip"]}, "`compression` is a string or a Compression"),
    ({"image": {"env": []}}, "BuildOptions.image is an ImageOptions"),
    ({"image": ImageOptions(env="A=b")}, "`env` is a list of (KEY, VALUE) pairs, not 'A=b'"),
    ({"image": ImageOptions(labels=[("a", "b", "c")])}, "`labels` is a list of (KEY, VALUE) pairs"),
    ({"image": ImageOptions(add=("static", "/srv"))}, "`add` is a list of (host path, image path) pairs"),
    ({"image": ImageOptions(cmd="serve")}, "`cmd` is a list of strings, not 'serve'"),
    ({"image": ImageOptions(expose=8080)}, "`expose` is a list of strings"),
    ({"image": ImageOptions(user=0)}, "`user` is a string, not 0"),
]


@pytest.mark.parametrize("fields, said", WRONG_TYPES, ids=[sorted(f)[0] + ":" + s for f, s in WRONG_TYPES])
def test_a_field_of_the_wrong_type_is_one_line_naming_it(tmp_path, programs, fields, said):
    out = str(tmp_path / "x.tar")
    with pytest.raises(zeroimage.UsageError) as caught:
        zeroimage.build(BuildOptions(programs["linux/amd64"], out, base="scratch")._replace(**fields), environ=EPOCH)
    assert said in str(caught.value) and "\n" not in str(caught.value), str(caught.value)
    assert not os.path.exists(out)


def test_paths_may_be_path_objects(tmp_path, programs):
    import pathlib
    as_str = zeroimage.build(BuildOptions(programs["linux/amd64"], str(tmp_path / "a.tar"), base="scratch"),
                             environ=EPOCH)
    as_path = zeroimage.build(BuildOptions(pathlib.Path(programs["linux/amd64"]), tmp_path / "b.tar", base="scratch"),
                              environ=EPOCH)
    assert as_path.digest == as_str.digest and as_path.path == str(tmp_path / "b.tar")
