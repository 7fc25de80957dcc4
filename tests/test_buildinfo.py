"""Build information read from binaries (issue 15): Go's .go.buildinfo and cargo auditable's .dep-v0,
the labels a build derives from it, and what inspect shows. Real Go binaries from this machine's
Debian packages are checked against their own bytes; everything else is crafted (tests/binaries.py)."""

import io
import json
import struct
import tarfile
import zlib

import pytest

import zeroimage
from zeroimage import BuildInfo, Module
from binaries import GO_MAGIC, LABEL, MODINFO, REAL_GO_BINARIES, RUST, craft_elf, go_inline, go_pointers, own_text, \
    real_binary, rewritten_go_binary, rust_packages, uvarint
from helpers import counting_reader, fails, ok
from imagetools import LayoutBuilder, image_of, run_cli

# ---- reading ----


def read(data):
    return zeroimage.read_build_info(io.BytesIO(data))


def bad(data, *words):
    with pytest.raises(ValueError) as caught:
        read(data)
    assert type(caught.value) is ValueError
    for word in words:
        assert word in str(caught.value)


# ---- Go: the inline format, every machine, both classes and byte orders ----


def check_modinfo(info, toolchain="go1.22.1"):
    assert info.language == "go" and info.toolchain == toolchain
    assert info.path == "example.com/app/cmd/app"
    assert info.main == Module("github.com/acme/app/v2", "v2.3.4", "h1:mainsum=")
    assert info.deps == (
        Module("golang.org/x/sys", "v0.15.0", "h1:syssum="),
        Module("github.com/old/lib", "v1.0.0", "h1:oldsum=", Module("github.com/new/lib", "v1.1.0", "h1:newsum=")),
        Module("example.com/local", "v0.0.0", "", Module("../local")),
    )
    settings = dict(info.settings)
    assert settings["-ldflags"] == "-s -w -X main.v=1" and settings["key with space"] == "raw value"
    assert settings["vcs.revision"] == "0123456789abcdef0123456789abcdef01234567"
    assert [k for k, _ in info.settings][:3] == ["-ldflags", "key with space", "CGO_ENABLED"], "the binary's order"


ELF_KINDS = [(machine, is64, little) for machine in sorted(zeroimage._ELF_MACHINES)
             for is64 in (True, False) for little in (True, False)]


@pytest.mark.parametrize("machine, is64, little", ELF_KINDS)
def test_go_inline_every_machine(machine, is64, little):
    data = craft_elf([(".text", b"\x90" * 40), (".go.buildinfo", go_inline())], machine, is64, little)
    check_modinfo(read(data))


@pytest.mark.parametrize("ptr_size, big", [(8, False), (4, False), (8, True), (4, True)])
@pytest.mark.parametrize("is64", [True, False])
def test_go_pointer_format(ptr_size, big, is64):
    """Before Go 1.18: pointers to string headers, resolved through the PT_LOAD segment."""
    data = craft_elf([(".go.buildinfo", go_pointers(ptr_size=ptr_size, big=big))], 62, is64, not big)
    check_modinfo(read(data), "go1.16.15")


def test_go_without_section_headers_found_in_the_writable_segment():
    data = craft_elf([(".data", b"x" * 48), (".go.buildinfo", go_inline())], section_headers=False)
    check_modinfo(read(data))
    assert read(craft_elf([(".go.buildinfo", go_inline())], section_headers=False, load_flags=5)) is None, \
        "only a writable, not executable, segment is searched"


def test_go_without_module_information():
    """A binary built outside module mode (or Debian's builds): the version, and nothing else."""
    info = read(craft_elf([(".go.buildinfo", go_inline(modinfo=""))]))
    assert info == BuildInfo("go", "go1.22.1")
    assert zeroimage.build_info_labels(info) == {}
    assert read(craft_elf([(".go.buildinfo", go_inline(modinfo="path\tx\n") + b"\0" * 8)])).path == "x"


def test_not_go_nor_rust():
    assert read(b"#!/bin/sh\n") is None and read(b"") is None and read(b"\x7fELF") is None
    assert read(craft_elf([(".text", b"\x90" * 64)])) is None
    assert read(craft_elf([(".data", b"\0" * 64)], section_headers=False)) is None
    with open("/bin/sh", "rb") as f:
        assert zeroimage.read_build_info(f) is None


GO_MALFORMED = [
    (go_inline()[:20], ["cut short"]),
    (go_inline()[:35], ["past its end"]),
    (GO_MAGIC + b"\x08\x02" + b"\0" * 16 + b"\xff" * 12, ["varint"]),
    (GO_MAGIC + b"\x08\x02" + b"\0" * 16 + b"\x80\x80", ["cut short"]),
    (GO_MAGIC + b"\x08\x02" + b"\0" * 16 + uvarint(10 ** 9) + b"go1", ["past its end"]),
    (GO_MAGIC + b"\x08\x02" + b"\0" * 16 + b"\0\0", ["no Go version"]),
    (b"\0" * 32, ["no Go build-info header"]),
    (GO_MAGIC + b"\x05\x00" + b"\0" * 16, ["pointer size 5"]),
    (GO_MAGIC + b"\x08\x00" + struct.pack("<QQ", 0xdead0000, 0xbeef0000), ["outside the program's segments"]),
    (go_inline(modinfo="mod\tonly-one-column\n"), ["line 1", "columns"]),
    (go_inline(modinfo="=>\tx\tv1\th1:\n"), ["line 1", "no module before it"]),
    (go_inline(modinfo="path\tp\nmod\tm\tv1\t\n=>\tx\tv1\n"), ["line 3", "columns"]),
    (go_inline(modinfo="build\tnoequals\n"), ["no '='"]),
    (go_inline(modinfo="build\t=v\n"), ["no key"]),
    (go_inline(modinfo="build\tk=\"\\q\"\n"), ["bad escape"]),
    (go_inline(modinfo="build\tk=\"open\n"), ["unterminated"]),
    (go_inline(modinfo="build\t\"k\"v\n"), ["no '='"]),
    (go_inline(modinfo="build\tk=a b\n"), ["must be quoted"]),
]


@pytest.mark.parametrize("blob, words", GO_MALFORMED, ids=[words[-1] for _, words in GO_MALFORMED])
def test_go_malformed(blob, words):
    bad(craft_elf([(".go.buildinfo", blob)]), *words)


def test_go_lying_pointer_lengths():
    def lying(addr):
        content = go_pointers()(addr)
        return content[:32] + struct.pack("<QQ", addr + 64, 1 << 40) + content[48:]
    bad(craft_elf([(".go.buildinfo", lying)]), "claims")


def test_truncated_files_never_raise_anything_else():
    """A file cut anywhere: None or a ValueError, never another exception."""
    data = craft_elf([(".go.buildinfo", go_inline())])
    for end in range(0, len(data), 7):
        try:
            read(data[:end])
        except ValueError as e:
            assert type(e) is ValueError


def test_lying_section_headers():
    data = bytearray(craft_elf([(".go.buildinfo", go_inline())]))
    shoff = struct.unpack_from("<Q", data, 40)[0]
    entry = shoff + 64                              # the .go.buildinfo section header
    past = bytearray(data)
    struct.pack_into("<Q", past, entry + 32, 1 << 20)          # sh_size past the end of the file
    bad(bytes(past), "no data in the file")
    huge = bytearray(data)
    struct.pack_into("<Q", huge, entry + 24, len(data) - 8)    # sh_offset near the end
    struct.pack_into("<Q", huge, entry + 32, 8)
    bad(bytes(huge), "no Go build-info header")
    nobits = bytearray(data)
    struct.pack_into("<I", nobits, entry + 4, 8)
    bad(bytes(nobits), "no data in the file")
    damaged = bytearray(data)
    struct.pack_into("<Q", damaged, 40, 1 << 62)                # e_shoff nowhere: the segment is searched
    check_modinfo(read(bytes(damaged)))
    names = bytearray(data)
    struct.pack_into("<H", names, 62, 99)                       # e_shstrndx out of range
    check_modinfo(read(bytes(names)))


def test_reads_are_bounded():
    """A 5 MiB section is refused without reading it into memory."""
    Counting = counting_reader()
    data = craft_elf([(".go.buildinfo", go_inline() + b"\0" * (5 << 20))])
    with pytest.raises(ValueError, match="larger than"):
        zeroimage.read_build_info(Counting(data))
    assert Counting.largest < 1 << 20


# ---- Rust: cargo auditable ----


@pytest.mark.parametrize("is64, little", [(True, True), (False, True), (True, False), (False, False)])
def test_rust_dep_v0(is64, little):
    info = read(craft_elf([(".text", b"\0" * 16), (".dep-v0", rust_packages(RUST))], 183, is64, little))
    assert info.language == "rust" and info.toolchain == ""
    assert info.main == Module("app", "0.3.1", source="local", kind="runtime")
    assert info.deps == (Module("fork", "0.1.0", source="git", kind="runtime"),
                         Module("libc", "0.2.152", source="crates.io", kind="build"),      # cargo auditable's kind kept
                         Module("serde", "1.0.195", source="crates.io", kind="runtime"))   # absent: runtime
    assert zeroimage.build_info_labels(info) == {LABEL + "version": "0.3.1"}


RUST_MALFORMED = [
    (b"not zlib", ["not zlib"]),
    (rust_packages(RUST)[:-6], ["cut short"]),
    (zlib.compress(b"{nope"), ["not JSON"]),
    (zlib.compress(b"[" * 100000 + b"]" * 100000), ["not JSON"]),
    (zlib.compress(b"[" * 2000000), ["not JSON"]),
    (zlib.compress(b"\xff\xfe"), ["not JSON"]),
    (zlib.compress(b'{"packages": {}}'), ["no list"]),
    (zlib.compress(b'{"packages": [{"name": "a"}, 3]}'), ["without a name"]),
    (zlib.compress(b'{"packages": [{"name": 1, "version": "1"}]}'), ["without a name"]),
    (zlib.compress(b'{"packages": [{"name": "a", "version": "1", "kind": 7}]}'), ["kind as strings"]),
    (rust_packages([dict(RUST[0]), dict(RUST[0])]), ["two root"]),
    (zlib.compress(b" " * (17 << 20)), ["more than 16 MiB"]),
]


@pytest.mark.parametrize("data, words", RUST_MALFORMED, ids=[words[-1] for _, words in RUST_MALFORMED])
def test_rust_malformed(data, words):
    bad(craft_elf([(".dep-v0", data)]), *words)


# ---- labels ----


@pytest.mark.parametrize("path, url", [
    ("github.com/o/r", "https://github.com/o/r"),
    ("github.com/o/r/v2/cmd/x", "https://github.com/o/r"),
    ("gitlab.com/group/sub/project/v3", "https://gitlab.com/group/sub/project"),
    ("bitbucket.org/o/r/pkg", "https://bitbucket.org/o/r"),
    ("codeberg.org/o/r", "https://codeberg.org/o/r"),
    ("git.sr.ht/~u/r/cmd", "https://git.sr.ht/~u/r"),
    ("github.com/o", None),
    ("github.com/../r", None),
    ("example.com/app", None),
    ("golang.org/x/tools", None),
    ("", None),
])
def test_source_label(path, url):
    info = BuildInfo("go", "go1.22", main=Module(path, "(devel)"))
    assert zeroimage.build_info_labels(info) == ({LABEL + "source": url} if url else {})


def test_labels_from_go():
    info = read(craft_elf([(".go.buildinfo", go_inline())]))
    assert zeroimage.build_info_labels(info) == {
        LABEL + "version": "v2.3.4", LABEL + "source": "https://github.com/acme/app",
        LABEL + "revision": "0123456789abcdef0123456789abcdef01234567"}
    odd = BuildInfo("go", "go1", main=Module("github.com/a/b", "v1 \n2"), settings=(("vcs.revision", "a\x1bb"),))
    assert zeroimage.build_info_labels(odd) == {LABEL + "source": "https://github.com/a/b"}, "one printable word"
    assert zeroimage.build_info_labels(BuildInfo("go", "go1", main=Module("x", ""))) == {}


# ---- real Go binaries from Debian: checked against their own bytes ----


@pytest.mark.parametrize("path", REAL_GO_BINARIES)
def test_real_go_binaries(path):
    _, version, package, builds = own_text(real_binary(path))
    with open(path, "rb") as f:
        info = zeroimage.read_build_info(f)
    assert (info.language, info.toolchain, info.path) == ("go", version, package)
    assert list(info.settings) == builds and ("GOOS", "linux") in builds
    assert info.main is None and info.deps == (), "Debian builds them without a module list"
    assert zeroimage.build_info_labels(info) == {LABEL + "source": "https://github.com/" + "/".join(
        package.split("/")[1:3])}


def test_rewritten_real_binary(tmp_path):
    with open(str(rewritten_go_binary(tmp_path)), "rb") as f:
        check_modinfo(zeroimage.read_build_info(f))


# ---- build: labels in the config ----


def labels_of(archive):
    return image_of(str(archive))[2]["config"].get("Labels") or {}


def test_build_labels_and_notes(tmp_path):
    program = rewritten_go_binary(tmp_path, MODINFO.replace("vcs.modified=false", "vcs.modified=true"))
    out = tmp_path / "app.tar"
    r = run_cli("build", "-v", "--from", "scratch", "-o", out, "--label", LABEL + "version=9.9", "--label", "a=b",
                program, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert labels_of(out) == {LABEL + "version": "9.9", "a": "b", LABEL + "source": "https://github.com/acme/app",
                              LABEL + "revision": "0123456789abcdef0123456789abcdef01234567"}, "--label wins"
    assert "Go go1.22.1, module github.com/acme/app/v2 v2.3.4, 3 dependencies" in r.stderr
    assert "modified work tree" in r.stderr
    r = run_cli("build", "--from", "scratch", "-o", out, "--no-build-info", program, cwd=str(tmp_path))
    assert r.returncode == 0 and labels_of(out) == {}, r.stderr


def test_build_goes_on_when_build_info_is_malformed(tmp_path):
    program = tmp_path / "app"
    program.write_bytes(craft_elf([(".go.buildinfo", go_inline()[:40])]))
    out = tmp_path / "app.tar"
    r = run_cli("build", "--from", "scratch", "-o", out, program, cwd=str(tmp_path))
    assert r.returncode == 0 and "build info" not in r.stderr, r.stderr
    r = run_cli("build", "-v", "--from", "scratch", "-o", out, program, cwd=str(tmp_path))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "build info is unreadable" in r.stderr and "past its end" in r.stderr
    assert labels_of(out) == {}


def test_each_platform_gets_its_own_labels(tmp_path):
    programs = []
    for machine, arch, version in ((62, "amd64", "v1.0.0"), (183, "arm64", "v2.0.0")):
        path = tmp_path / arch
        path.write_bytes(craft_elf([(".go.buildinfo", go_inline(modinfo="mod\tgithub.com/o/r\t%s\t\n" % version))],
                                   machine))
        programs.append((zeroimage.Platform.parse("linux/" + arch), str(path)))
    result = zeroimage.build(zeroimage.BuildOptions(programs, str(tmp_path / "multi.tar"), base="scratch",
                                                    target="/app"))
    assert [image.config["config"]["Labels"][LABEL + "version"] for image in result.images] == ["v1.0.0", "v2.0.0"]
    result = zeroimage.build(zeroimage.BuildOptions(programs, str(tmp_path / "none.tar"), base="scratch",
                                                    target="/app", build_info=False))
    assert all("Labels" not in image.config["config"] for image in result.images)


# ---- inspect ----


def test_inspect_shows_build_info(tmp_path):
    program = rewritten_go_binary(tmp_path)
    out = tmp_path / "app.tar"
    assert run_cli("build", "--from", "scratch", "-o", out, program, cwd=str(tmp_path)).returncode == 0
    r = run_cli("inspect", "--build-info", out)
    assert r.returncode == 0, r.stderr
    summary = r.stdout[r.stdout.index("Build info:"):]
    for text in ("Go go1.22.1", "Package:   example.com/app/cmd/app", "Module:    github.com/acme/app/v2 v2.3.4",
                 "Deps:      3", "Build:     vcs.revision=0123456789abcdef0123456789abcdef01234567"):
        assert text in summary
    r = run_cli("inspect", "--json", "--build-info", out)
    value = json.loads(r.stdout)["buildInfo"]
    assert value["language"] == "go" and value["toolchain"] == "go1.22.1"
    assert value["path"] == "example.com/app/cmd/app"
    assert value["main"] == {"path": "github.com/acme/app/v2", "version": "v2.3.4", "sum": "h1:mainsum="}
    assert value["deps"][1] == {"path": "github.com/old/lib", "version": "v1.0.0", "sum": "h1:oldsum=", "source": "",
                                "kind": "", "replace": {"path": "github.com/new/lib", "version": "v1.1.0", "sum": "h1:newsum="}}
    assert value["settings"]["vcs.time"] == "2024-03-01T10:00:00Z"


def layered_archive(tmp_path, layers, entrypoint="/app"):
    b = LayoutBuilder()
    desc = b.image(layers, {"config": {"Entrypoint": [entrypoint]}})
    return b.write_tar(tmp_path / "layered.tar", [desc])


def inspected(archive, *args):
    r = run_cli("inspect", "--json", "--build-info", *(list(args) + [archive]))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["buildInfo"], r.stderr


def test_inspect_through_layers_links_and_whiteouts(tmp_path):
    go = craft_elf([(".go.buildinfo", go_inline())])
    rust = craft_elf([(".dep-v0", rust_packages(RUST))])
    lower = [("usr", "dir", None, 0o755), ("usr/bin", "dir", None, 0o755), ("usr/bin/app", "file", go, 0o755)]
    # the program in a lower layer, reached through a symlink in the top one
    info, _ = inspected(layered_archive(tmp_path, [lower, [("app", "symlink", "usr/bin/app", 0o777)]]))
    assert info["main"]["version"] == "v2.3.4"
    # through a linked parent directory (merged /usr)
    info, _ = inspected(layered_archive(tmp_path, [lower, [("bin", "symlink", "usr/bin", 0o777)]], "/bin/app"))
    assert info["toolchain"] == "go1.22.1"
    # an upper layer's file wins over a lower one's
    info, _ = inspected(layered_archive(tmp_path, [lower, [("usr/bin/app", "file", rust, 0o755)]], "/usr/bin/app"))
    assert info["language"] == "rust" and info["main"]["path"] == "app"
    # a whiteout removes it: no build info, and inspect still succeeds
    for whiteout in ("usr/bin/.wh.app", "usr/.wh.bin", "usr/bin/.wh..wh..opq"):
        info, err = inspected(layered_archive(tmp_path, [lower, [(whiteout, "file", b"", 0o644)]], "/usr/bin/app"),
                              "-v")
        assert info is None and "not a file in the image's layers" in err


def test_inspect_never_fails_for_build_info(tmp_path):
    """Malformed data, no program, a relative entrypoint, a plain program: buildInfo null, exit 0."""
    broken = craft_elf([(".go.buildinfo", go_inline()[:40])])
    cases = [([[("app", "file", broken, 0o755)]], "/app", "past its end"),
             ([[("other", "file", b"x", 0o755)]], "/app", "not a file"),
             ([[("app", "file", b"x", 0o755)]], "app", "no absolute path"),
             ([[("app", "file", b"#!/bin/sh\n", 0o755)]], "/app", "carries none")]
    for layers, entrypoint, words in cases:
        info, err = inspected(layered_archive(tmp_path, layers, entrypoint), "-v")
        assert info is None and words in err and "Traceback" not in err
    r = run_cli("inspect", "--build-info", layered_archive(tmp_path, cases[0][0]))
    assert r.returncode == 0 and "Build info" not in r.stdout and r.stderr == ""


@pytest.mark.parametrize("kind", ["archive", "layout"])
def test_inspect_reads_layers_only_when_asked(tmp_path, monkeypatch, capsys, kind):
    """One rule for every source: a summary or JSON reads no layer (the summary says how to read the
    build info, the JSON says it was not asked), unless ``build_info``/--build-info asks."""
    go = craft_elf([(".go.buildinfo", go_inline())])
    b = LayoutBuilder()
    top = [b.image([[("app", "file", go, 0o755)]], {"config": {"Entrypoint": ["/app"]}})]
    path = str(b.write_tar(tmp_path / "app.tar", top) if kind == "archive" else b.write_dir(tmp_path / "app", top))
    read = []
    real = zeroimage._extract_program
    monkeypatch.setattr(zeroimage, "_extract_program", lambda *args: read.append(args[1]) or real(*args))
    summary = zeroimage.inspect(path)
    assert summary.endswith("\nBuild info:  not read (`build_info=True` reads the program from its layer)")
    value = json.loads(zeroimage.inspect(path, mode="json"))
    assert value["buildInfo"] is None and value["buildInfoUnread"] == "not asked" and read == []
    assert zeroimage.main(["inspect", path]) == 0
    out = capsys.readouterr().out
    assert "Build info:  not read (--build-info reads the program from its layer)\n" in out and "`" not in out
    assert "Go go1.22.1" in zeroimage.inspect(path, build_info=True) and read == ["/app"]
    value = json.loads(zeroimage.inspect(path, mode="json", build_info=True))
    assert value["buildInfo"]["toolchain"] == "go1.22.1" and "buildInfoUnread" not in value
    for mode in ("raw", "config"):      # machine-readable: exactly as stored, no line added
        assert zeroimage.main(["inspect", "--" + mode, path]) == 0
        assert "Build info" not in capsys.readouterr().out


def test_inspect_says_nothing_of_build_info_without_a_program(tmp_path):
    """No absolute Entrypoint (a base image): nothing to read, so no line about it."""
    for entrypoint in ("app", None):
        b = LayoutBuilder()
        config = {"config": {"Entrypoint": [entrypoint]} if entrypoint else {}}
        path = b.write_tar(tmp_path / "base.tar", [b.image([[("app", "file", b"x", 0o755)]], config)])
        assert "Build info" not in ok(run_cli("inspect", path)).stdout


@pytest.mark.parametrize("args, said", [
    (["--raw"], "--build-info adds build info to a summary or JSON; a raw manifest shows none"),
    (["--config"], "a config shows none"), (["--sbom"], "an SBOM shows none"), (["--files"], "a file list shows none"),
])
def test_build_info_is_for_a_summary_or_json(tmp_path, args, said):
    path = layered_archive(tmp_path, [[("app", "file", b"x", 0o755)]])
    fails(run_cli("inspect", "--build-info", *(args + [path])), 2, said)
    with pytest.raises(zeroimage.UsageError) as caught:
        zeroimage.inspect(str(path), mode=args[0][2:], build_info=True)
    assert "`build_info=True`" in str(caught.value)
    with pytest.raises(zeroimage.UsageError, match="`build_info` is True or False, not 'yes'"):
        zeroimage.inspect(str(path), build_info="yes")


def test_extract_program_streams_a_large_file(tmp_path):
    """The program is streamed out of its layer into the temporary file, whatever its size."""
    big = craft_elf([(".go.buildinfo", go_inline())]) + b"\0" * (3 << 20)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("app")
        info.size = len(big)
        tar.addfile(info, io.BytesIO(big))
    blob = zeroimage.bytes_blob(raw.getvalue())
    image = zeroimage.Image({"layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar"}]},
                            {"config": {"Entrypoint": ["/app"]}}, None, [blob, blob, blob])
    with open(str(tmp_path / "out"), "w+b") as out:
        assert zeroimage._extract_program(image, "/app", out, None)
        assert out.seek(0, io.SEEK_END) == len(big)
    with zeroimage.Session() as session:
        assert zeroimage._image_build_info(session, image)["main"]["version"] == "v2.3.4"


def test_gitlab_package_paths_are_cut_before_go_package_directories():
    assert zeroimage._source_url("gitlab.com/g/sub/proj/cmd/x", module=False) == "https://gitlab.com/g/sub/proj"
    assert zeroimage._source_url("gitlab.com/g/sub/proj/internal/y", module=False) == "https://gitlab.com/g/sub/proj"
    assert zeroimage._source_url("gitlab.com/g/sub/proj", module=False) is None       # where does it end?
    assert zeroimage._source_url("gitlab.com/g/sub/proj/v2") == "https://gitlab.com/g/sub/proj"
    info = zeroimage.BuildInfo("go", "go1.22.1", "gitlab.com/g/sub/proj/cmd/x")
    assert zeroimage.build_info_labels(info) == {LABEL + "source": "https://gitlab.com/g/sub/proj"}


def test_the_programs_labels_replace_the_bases_three_together(tmp_path):
    """A base built from a program with version, revision and source; a program on it that gives
    a version and a source: the base's revision must not stay beside them. A script keeps the base's."""
    base_program = rewritten_go_binary(tmp_path)
    base = tmp_path / "base.tar"
    assert run_cli("build", "--from", "scratch", "-o", base, base_program).returncode == 0
    assert set(labels_of(base)) >= {LABEL + "version", LABEL + "revision", LABEL + "source"}
    other = rewritten_go_binary(tmp_path, modinfo="path\tgithub.com/b/b\nmod\tgithub.com/b/b\tv9.9.9\th1:x=\n",
                                name="other")
    on_top = tmp_path / "on-top.tar"
    r = run_cli("build", "--from-archive", base, "--target", "/other", "-o", on_top, other)
    assert r.returncode == 0, r.stderr
    assert {k: v for k, v in labels_of(on_top).items() if k.startswith(LABEL)} == {
        LABEL + "version": "v9.9.9", LABEL + "source": "https://github.com/b/b"}
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    scripted = tmp_path / "scripted.tar"
    assert run_cli("build", "--from-archive", base, "--target", "/script", "-o", scripted, script).returncode == 0
    assert labels_of(scripted) == labels_of(base)
