"""Unit tests of the pure parts: no network, no external tools."""

import ast
import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zlib

import pytest

import zeroimage
from zeroimage import Platform, Reference
from binaries import make_elf
from imagetools import OCI, LayoutBuilder, ref, sha256

# ---- Platforms ----


@pytest.mark.parametrize("text, expected", [
    ("linux/amd64", ("linux", "amd64", "")),
    ("linux/x86_64", ("linux", "amd64", "")),
    ("linux/aarch64", ("linux", "arm64", "")),
    ("linux/arm64/v8", ("linux", "arm64", "v8")),
    ("linux/arm64/8", ("linux", "arm64", "v8")),
    ("linux/arm", ("linux", "arm", "v7")),
    ("linux/arm/v6", ("linux", "arm", "v6")),
    ("linux/armhf", ("linux", "arm", "v7")),
    ("linux/i386", ("linux", "386", "")),
    ("Linux/AMD64", ("linux", "amd64", "")),
    ("linux/ppc64le", ("linux", "ppc64le", "")),
    ("windows/amd64", ("windows", "amd64", "")),
])
def test_platform_parse_normalises(text, expected):
    p = Platform.parse(text)
    assert (p.os, p.architecture, p.variant) == expected


@pytest.mark.parametrize("text", ["", "linux", "amd64", "linux/", "/amd64", "linux/amd64/v8/x", "linux/am d64", "linux//v7"])
def test_platform_parse_rejects(text):
    with pytest.raises(zeroimage.InvalidPlatformError):
        Platform.parse(text)


@pytest.mark.parametrize("a, b, same", [
    ("linux/arm64", "linux/arm64/v8", True),
    ("linux/arm", "linux/arm/v7", True),
    ("linux/arm/v6", "linux/arm/v7", False),
    ("linux/amd64", "linux/amd64/v1", True),
    ("linux/amd64", "linux/amd64/v3", False),
    ("linux/amd64", "linux/arm64", False),
    ("linux/amd64", "windows/amd64", False),
])
def test_platform_matches(a, b, same):
    assert Platform.parse(a).matches(Platform.parse(b)) is same
    assert Platform.parse(b).matches(Platform.parse(a)) is same


def test_platform_str_and_dict():
    p = Platform.parse("linux/arm/v7")
    assert str(p) == "linux/arm/v7"
    assert p.to_dict() == {"os": "linux", "architecture": "arm", "variant": "v7"}
    assert Platform.from_dict({"os": "linux", "architecture": "arm64", "variant": "v8"}) == Platform("linux", "arm64", "v8")
    assert Platform.from_dict({"os": "linux"}) is None
    assert Platform.from_dict(None) is None


def _cand(digest_char, platform, name=""):
    desc = {"digest": "sha256:" + digest_char * 64, "size": 1, "mediaType": OCI["manifest"]}
    return zeroimage.Candidate(desc, Platform.parse(platform), name)


def test_select_manifest_by_platform_and_name():
    cands = [_cand("a", "linux/amd64", "app:1"), _cand("b", "linux/arm64/v8", "app:1"), _cand("c", "linux/amd64", "app:2")]
    assert zeroimage.select_manifest(cands, Platform.parse("linux/arm64"))[0]["digest"].endswith("b" * 64)
    assert zeroimage.select_manifest(cands, Platform.parse("linux/amd64"), "2")[0]["digest"].endswith("c" * 64)
    with pytest.raises(zeroimage.ArchiveError) as e:
        zeroimage.select_manifest(cands, Platform.parse("linux/amd64"))
    assert "several images" in str(e.value) and "app:1" in str(e.value) and "app:2" in str(e.value)
    with pytest.raises(zeroimage.PlatformNotFoundError) as e:
        zeroimage.select_manifest(cands, Platform.parse("linux/s390x"))
    assert "linux/amd64, linux/arm64/v8" in str(e.value)
    with pytest.raises(zeroimage.ArchiveError, match="no image named"):
        zeroimage.select_manifest(cands, Platform.parse("linux/amd64"), "nope")


def test_select_manifest_same_image_twice_is_not_ambiguous():
    cands = [_cand("a", "linux/amd64", "app:1"), _cand("a", "linux/amd64", "app:latest")]
    assert zeroimage.select_manifest(cands, Platform.parse("linux/amd64")).ref_name == "app:1"


# ---- References ----


@pytest.mark.parametrize("text, registry, repository, tag, digest", [
    ("busybox", "docker.io", "library/busybox", "latest", None),
    ("busybox:1.36", "docker.io", "library/busybox", "1.36", None),
    ("docker.io/busybox", "docker.io", "library/busybox", "latest", None),
    ("index.docker.io/library/busybox", "docker.io", "library/busybox", "latest", None),
    ("user/app", "docker.io", "user/app", "latest", None),
    ("localhost/app", "localhost", "app", "latest", None),
    ("localhost:5000/a/b:v1", "localhost:5000", "a/b", "v1", None),
    ("127.0.0.1:5000/app", "127.0.0.1:5000", "app", "latest", None),
    ("ghcr.io/o/app@sha256:" + "a" * 64, "ghcr.io", "o/app", None, "sha256:" + "a" * 64),
    ("ghcr.io/o/app:1@sha256:" + "a" * 64, "ghcr.io", "o/app", "1", "sha256:" + "a" * 64),
    ("my-app_1.x", "docker.io", "library/my-app_1.x", "latest", None),
    ("[::1]:5000/app", "[::1]:5000", "app", "latest", None),
])
def test_reference_parse(text, registry, repository, tag, digest):
    r = Reference.parse(text)
    assert (r.registry, r.repository, r.tag, r.digest) == (registry, repository, tag, digest)


@pytest.mark.parametrize("text, why", [
    ("", "empty"), ("App", "lowercase"), ("app:", "bad tag"), ("app:-x", "bad tag"),
    ("app@sha256:abc", "not a digest"), ("a//b", "bad name"), ("-app", "bad name"),
    ("app:" + "x" * 129, "bad tag"), ("exa mple", "bad name"), ("registry.io:port/x", "bad registry"),
])
def test_reference_parse_rejects(text, why):
    with pytest.raises(zeroimage.InvalidReferenceError, match=why):
        Reference.parse(text)


def test_reference_names():
    r = Reference.parse("busybox")
    assert str(r) == "docker.io/library/busybox:latest"
    assert r.familiar() == "busybox:latest"
    assert r.api_host == "registry-1.docker.io"
    assert r.config_key == "https://index.docker.io/v1/"
    assert zeroimage.push_scope(r.repository) == "repository:library/busybox:pull,push"
    r = Reference.parse("localhost:5000/team/app:1")
    assert r.familiar() == "localhost:5000/team/app:1" and r.api_host == "localhost:5000"


@pytest.mark.parametrize("filename, name", [
    ("some-program", "some-program"), ("./dist/My_App.exe", "my_app.exe"), ("__x__", "x"),
    ("a b+c", "a-b-c"), ("...", "image"), ("a._-b", "a.b"),
])
def test_name_from_filename(filename, name):
    assert zeroimage.name_from_filename(filename) == name
    Reference.parse(name)


# ---- ELF ----


@pytest.mark.parametrize("machine, is64, little, platform", [
    (62, True, True, "linux/amd64"),
    (183, True, True, "linux/arm64"),
    (40, False, True, "linux/arm/v7"),
    (3, False, True, "linux/386"),
    (21, True, True, "linux/ppc64le"),
    (21, True, False, "linux/ppc64"),
    (22, True, False, "linux/s390x"),
    (243, True, True, "linux/riscv64"),
    (8, True, True, "linux/mips64le"),
    (8, False, False, "linux/mips"),
    (258, True, True, "linux/loong64"),
])
@pytest.mark.parametrize("interpreter", [None, "/lib/ld-musl.so.1"])
def test_read_elf_crafted(machine, is64, little, platform, interpreter):
    elf = zeroimage.read_elf(io.BytesIO(make_elf(machine, is64, little, interpreter)))
    assert elf.platform == Platform.parse(platform)
    assert elf.interpreter == interpreter


def test_read_elf_unknown_machine_and_non_elf():
    assert zeroimage.read_elf(io.BytesIO(make_elf(9999))).platform is None
    assert zeroimage.read_elf(io.BytesIO(b"#!/bin/sh\necho hi\n")) is None
    assert zeroimage.read_elf(io.BytesIO(b"\x7fELF")) is None
    assert zeroimage.read_elf(io.BytesIO(b"")) is None


def test_read_elf_truncated_program_headers():
    data = make_elf(62, interpreter="/lib/ld.so")[:70]
    assert zeroimage.read_elf(io.BytesIO(data)).interpreter is None


def test_read_elf_real_binaries():
    """The running Python is a real, dynamically linked ELF for this machine."""
    with open(os.path.realpath(sys.executable), "rb") as f:
        elf = zeroimage.read_elf(f)
    if elf is None:
        pytest.skip("this Python is not an ELF binary")
    import platform as host
    expected = {"x86_64": "amd64", "aarch64": "arm64"}.get(host.machine())
    if expected:
        assert elf.platform.architecture == expected
    with open("/bin/sh", "rb") as f:
        sh = zeroimage.read_elf(f)
    assert sh.interpreter and sh.interpreter.startswith("/lib")


def test_read_elf_real_static_binary(busybox):
    with open(busybox, "rb") as f:
        elf = zeroimage.read_elf(f)
    assert elf.interpreter is None and elf.platform is not None


# ---- Configs and manifests ----


def test_derive_config_keeps_base_and_sets_entrypoint():
    base = {
        "architecture": "arm", "variant": "v6", "os": "linux", "created": "2020-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/bin", "A=1"], "Cmd": ["/bin/sh"], "WorkingDir": "/srv", "Labels": {"x": "y"},
                   "Entrypoint": ["/old"], "X-Unknown": 7},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
        "history": [{"created_by": "base"}],
        "x-custom-top": {"kept": True},
    }
    before = json.dumps(base, sort_keys=True)
    layers = [zeroimage.AddedLayer("sha256:" + "2" * 64, "zeroimage: COPY app /app")]
    out = zeroimage.derive_config(base, Platform.parse("linux/amd64"), layers, ["/app"], "2024-01-01T00:00:00Z")
    assert json.dumps(base, sort_keys=True) == before, "the base config must not be modified"
    assert out["config"]["Entrypoint"] == ["/app"] and "Cmd" not in out["config"]
    assert out["config"]["Env"] == ["PATH=/bin", "A=1"] and out["config"]["WorkingDir"] == "/srv"
    assert out["config"]["Labels"] == {"x": "y"} and out["config"]["X-Unknown"] == 7
    assert out["x-custom-top"] == {"kept": True}
    assert (out["os"], out["architecture"], "variant" in out) == ("linux", "amd64", False)
    assert out["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + "1" * 64, "sha256:" + "2" * 64]}
    assert out["history"][-1] == {"created": "2024-01-01T00:00:00Z", "created_by": "zeroimage: COPY app /app"}
    assert out["created"] == "2024-01-01T00:00:00Z"


def test_derive_config_from_empty_base():
    out = zeroimage.derive_config(zeroimage.base_config_for(Platform.parse("linux/arm/v7")), Platform.parse("linux/arm/v7"),
                                  [], ["/a"], "1970-01-01T00:00:00Z")
    assert out["variant"] == "v7" and out["config"]["Env"] == [zeroimage.DEFAULT_PATH_ENV]
    assert out["rootfs"] == {"type": "layers", "diff_ids": []}


def test_created_timestamp():
    assert zeroimage.created_timestamp({"SOURCE_DATE_EPOCH": "1700000000"}) == 1700000000
    assert zeroimage.rfc3339(1700000000) == "2023-11-14T22:13:20Z"
    with pytest.raises(zeroimage.ZeroImageError, match="SOURCE_DATE_EPOCH"):
        zeroimage.created_timestamp({"SOURCE_DATE_EPOCH": "yesterday"})


def test_canonical_json_is_stable():
    assert zeroimage.canonical_json({"b": 1, "a": ["é"]}) == '{"a":["é"],"b":1}'.encode()


# ---- Layers ----


def _layer(entries, level=6):
    out = io.BytesIO()
    diff_id, digest, size = zeroimage.write_layer(entries, out, level)
    data = out.getvalue()
    assert sha256(data) == digest and len(data) == size
    assert sha256(gzip.decompress(data)) == diff_id
    return data


def test_layer_members_parents_modes_owners(tmp_path):
    src = tmp_path / "prog"
    src.write_bytes(b"\x7fELF program bytes")
    entries = [zeroimage.LayerEntry("/usr/local/bin/prog", "file", 0o755, source=str(src)),
               zeroimage.LayerEntry("/home/nonroot", "dir", 0o700, 65532, 65532)]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(_layer(entries)))) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names == ["home", "home/nonroot", "usr", "usr/local", "usr/local/bin", "usr/local/bin/prog"]
        for m in members:
            assert m.mtime == 0 and m.uname == "" and m.gname == "" and not m.pax_headers
        by = {m.name: m for m in members}
        assert by["usr/local"].isdir() and by["usr/local"].mode == 0o755 and by["usr/local"].uid == 0
        assert by["home/nonroot"].uid == 65532 and by["home/nonroot"].mode == 0o700
        assert by["usr/local/bin/prog"].mode == 0o755
        assert tar.extractfile("usr/local/bin/prog").read() == b"\x7fELF program bytes"


def test_layer_is_deterministic_whatever_the_source_metadata(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"same bytes" * 1000)
    b.write_bytes(b"same bytes" * 1000)
    os.chmod(str(a), 0o600)
    os.utime(str(a), (1, 1))
    os.chmod(str(b), 0o777)
    one = _layer([zeroimage.LayerEntry("/app", "file", 0o755, source=str(a))])
    two = _layer([zeroimage.LayerEntry("/app", "file", 0o755, source=str(b))])
    assert one == two


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_gzip_stream_is_standard(level):
    data = os.urandom(50000) + b"a" * 300000
    out = io.BytesIO()
    gz = zeroimage.GzipWriter(out, level)
    gz.write(data[:1000])
    gz.write(data[1000:])
    gz.close()
    blob = out.getvalue()
    assert blob[:4] == b"\x1f\x8b\x08\x00" and blob[4:8] == b"\0\0\0\0"
    assert gzip.decompress(blob) == data
    assert zlib.decompress(blob, 31) == data


def test_verifying_reader():
    data = b"x" * 1000
    good = zeroimage.VerifyingReader(io.BytesIO(data), sha256(data), 1000, "blob")
    assert good.read(600) + good.read() == data
    with pytest.raises(zeroimage.DigestMismatchError) as e:
        bad = zeroimage.VerifyingReader(io.BytesIO(b"y" * 1000), sha256(data), 1000, "blob")
        bad.read()
    assert e.value.expected == sha256(data) and e.value.actual == sha256(b"y" * 1000)
    with pytest.raises(zeroimage.ArchiveError, match="truncated"):
        zeroimage.VerifyingReader(io.BytesIO(data[:10]), sha256(data), 1000, "blob").read(1000)
    with pytest.raises(zeroimage.ArchiveError, match="longer"):
        zeroimage.VerifyingReader(io.BytesIO(data + b"!"), sha256(data), 1000, "blob").read()


# ---- OCI layouts and archives ----


def _simple_layout(builder, platform=("linux", "amd64", "")):
    return builder.image([[("etc", "dir", None, 0o755), ("etc/hi", "file", b"hi\n", 0o644)]],
                         {"config": {"Cmd": ["/bin/sh"]}}, platform=platform)


def test_layout_round_trip_tar_and_dir(tmp_path):
    b = LayoutBuilder()
    desc = _simple_layout(b)
    for path in (b.write_tar(tmp_path / "l.tar", [ref(desc, "1")]), b.write_dir(tmp_path / "dir", [ref(desc, "1")])):
        with zeroimage.Layout(path) as layout:
            (cand,) = layout.candidates()
            assert cand.platform == Platform.parse("linux/amd64") and cand.ref_name == "1"
            manifest = json.loads(layout.read_manifest(cand.descriptor))
            blob = layout.blob(manifest["layers"][0])
            reader = blob.open()
            assert sha256(reader.read()) == blob.digest
            reader.close()


def test_archive_writer_output_reads_back(tmp_path):
    config = zeroimage.bytes_blob(b'{"os":"linux","architecture":"arm64","rootfs":{"type":"layers","diff_ids":[]}}')
    manifest = zeroimage.make_manifest(zeroimage.OCI_FAMILY, zeroimage.descriptor(OCI["config"], config.digest, config.size), [])
    mblob = zeroimage.bytes_blob(zeroimage.canonical_json(manifest))
    index = zeroimage.make_index(zeroimage.OCI_FAMILY, [zeroimage.descriptor(OCI["manifest"], mblob.digest, mblob.size)])
    path = str(tmp_path / "out.tar")
    with zeroimage.atomic_output(path) as f:
        zeroimage.write_archive(f, [config, mblob, config], index, None)
    with zeroimage.Layout(path) as layout:
        (cand,) = layout.candidates()
        assert cand.platform == Platform("linux", "arm64")    # read from the config: no platform on the descriptor
    assert os.listdir(str(tmp_path)) == ["out.tar"]


def test_nested_indexes_and_attestations_are_walked(tmp_path):
    b = LayoutBuilder()
    amd = _simple_layout(b)
    arm = _simple_layout(b, ("linux", "arm64", "v8"))
    attestation = dict(_simple_layout(b, ("unknown", "unknown", "")),
                       annotations={"vnd.docker.reference.type": "attestation-manifest"})
    missing = {"mediaType": OCI["manifest"], "digest": "sha256:" + "9" * 64, "size": 10,
               "platform": {"os": "linux", "architecture": "s390x"}}
    inner = b.index([amd, arm, attestation, missing])
    outer = b.index([inner])
    path = b.write_tar(tmp_path / "nested.tar", [ref(outer, "multi")])
    with zeroimage.Layout(path) as layout:
        cands = layout.candidates()
    assert sorted(str(c.platform) for c in cands if c.problem is None) == ["linux/amd64", "linux/arm64/v8"]
    (gone,) = [c for c in cands if c.problem is not None]      # listed, not held: said when it is asked for
    assert str(gone.platform) == "linux/s390x" and "does not hold its manifest" in str(gone.problem)
    assert all(c.ref_name == "multi" for c in cands)


def _use(layout):
    """The one image of a layout, chosen as every command chooses: a bad entry fails when it is used."""
    return zeroimage.choose_image(layout.candidates(), None, None, layout.path)


def _bad_members(digest):
    link = tarfile.TarInfo("blobs/sha256/" + "f" * 64)
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    hard = tarfile.TarInfo("blobs/sha256/" + "e" * 64)
    hard.type = tarfile.LNKTYPE
    hard.linkname = "index.json"
    absolute = tarfile.TarInfo("/etc/evil")
    absolute.size = 1
    dotdot = tarfile.TarInfo("blobs/../../evil")
    dotdot.size = 1
    dup = tarfile.TarInfo("index.json")
    dup.size = 2
    return {"symlink": (link, None), "hardlink": (hard, None), "absolute": (absolute, b"x"),
            "dotdot": (dotdot, b"x"), "duplicate": (dup, b"{}")}


@pytest.mark.parametrize("kind", ["symlink", "hardlink", "absolute", "dotdot", "duplicate"])
def test_unsafe_archive_members_are_refused(tmp_path, kind):
    b = LayoutBuilder()
    desc = _simple_layout(b)
    path = b.write_tar(tmp_path / "bad.tar", [desc], extra=[_bad_members(desc["digest"])[kind]])
    with pytest.raises(zeroimage.ArchiveError, match="refusing"):
        zeroimage.Layout(path)


def test_links_outside_the_layout_are_ignored(tmp_path):
    """docker save 25+ adds legacy <id>/layer.tar symlinks into blobs/: never followed, not an error."""
    b = LayoutBuilder()
    desc = _simple_layout(b)
    legacy = tarfile.TarInfo("0123abcd/layer.tar")
    legacy.type = tarfile.SYMTYPE
    legacy.linkname = "../blobs/sha256/" + desc["digest"].split(":")[1]
    path = b.write_tar(tmp_path / "docker.tar", [desc], extra=[(legacy, None)])
    with zeroimage.Layout(path) as layout:
        assert len(layout.candidates()) == 1


def test_symlinked_blob_in_layout_directory_is_refused(tmp_path):
    b = LayoutBuilder()
    desc = _simple_layout(b)
    path = b.write_dir(tmp_path / "dir", [desc])
    blob = os.path.join(path, "blobs", "sha256", desc["digest"][7:])
    os.rename(blob, str(tmp_path / "elsewhere"))
    os.symlink(str(tmp_path / "elsewhere"), blob)
    with zeroimage.Layout(path) as layout:
        with pytest.raises(zeroimage.ArchiveError, match="refusing"):
            _use(layout)


def test_blob_with_wrong_bytes_is_refused(tmp_path):
    b = LayoutBuilder()
    desc = _simple_layout(b)
    manifest = json.loads(b.blobs[desc["digest"]])
    layer = manifest["layers"][0]["digest"]
    b.blobs[layer] = b.blobs[layer][:-1] + bytes([b.blobs[layer][-1] ^ 1])
    path = b.write_tar(tmp_path / "bad.tar", [desc])
    with zeroimage.Layout(path) as layout:
        blob = layout.blob(manifest["layers"][0])
        with pytest.raises(zeroimage.DigestMismatchError) as e, contextlib.closing(blob.open()) as reader:
            reader.read()
    assert e.value.expected == layer


def test_manifest_with_wrong_bytes_is_refused(tmp_path):
    b = LayoutBuilder()
    desc = _simple_layout(b)
    b.blobs[desc["digest"]] = b.blobs[desc["digest"]].replace(b"layers", b"layerz")
    path = b.write_tar(tmp_path / "bad.tar", [dict(desc, platform=None)])
    with zeroimage.Layout(path) as layout:
        with pytest.raises(zeroimage.DigestMismatchError):
            _use(layout)


@pytest.mark.parametrize("bad", [
    {"digest": "sha256:../../etc/passwd", "size": 1},
    {"digest": "md5:abc", "size": 1},
    {"digest": "sha256:" + "a" * 64, "size": -1},
    {"digest": "sha256:" + "a" * 64, "size": "12"},
    "not an object",
])
def test_invalid_descriptors_are_refused(tmp_path, bad):
    path = LayoutBuilder().write_tar(tmp_path / "bad.tar", [bad])
    with zeroimage.Layout(path) as layout:
        with pytest.raises(zeroimage.ArchiveError, match="descriptor"):
            _use(layout)


def test_not_a_layout(tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar file at all" * 100)
    with pytest.raises(zeroimage.ArchiveError, match="not a tar archive"):
        zeroimage.Layout(str(junk))
    with tarfile.open(str(tmp_path / "plain.tar"), "w") as tar:
        info = tarfile.TarInfo("hello.txt")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(zeroimage.ArchiveError, match="not an OCI image layout"):
        zeroimage.Layout(str(tmp_path / "plain.tar"))


def test_huge_index_json_is_refused(tmp_path):
    b = LayoutBuilder()
    path = tmp_path / "big"
    b.write_dir(path, [])
    (path / "index.json").write_bytes(b" " * (zeroimage.MAX_JSON_SIZE + 1))
    with pytest.raises(zeroimage.ArchiveError, match="limit"):
        zeroimage.Layout(str(path)).index()


# ---- The module itself ----


def test_module_imports_only_the_standard_library():
    if not hasattr(sys, "stdlib_module_names"):
        pytest.skip("needs Python 3.10+ for sys.stdlib_module_names")
    with open(zeroimage.__file__) as f:
        tree = ast.parse(f.read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_LazyModule":
            imported.add(node.args[0].value.split(".")[0])      # imported on first use
    assert imported and imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def test_all_names_exist():
    for name in zeroimage.__all__:
        assert hasattr(zeroimage, name), name


def _zeroimage_classes(hint, found):
    if isinstance(hint, type) and hint.__module__ == "zeroimage":
        found.add(hint.__name__)
    for arg in getattr(hint, "__args__", None) or ():
        _zeroimage_classes(arg, found)
    return found


def test_every_type_in_a_public_signature_is_exported():
    """__all__ lists what a library user needs, the types its functions take and return included."""
    import inspect
    import typing
    missing = set()
    for name in zeroimage.__all__:
        obj = getattr(zeroimage, name)
        members = [(name, obj)] if inspect.isfunction(obj) else []
        if inspect.isclass(obj):
            members = [("%s.%s" % (name, attr), m.fget if isinstance(m, property) else m)
                       for attr, m in vars(obj).items() if (not attr.startswith("_") or attr == "__init__")
                       and (inspect.isfunction(m) or isinstance(m, property))]
            members.append((name, obj))
        for where, member in members:
            hints = typing.get_type_hints(member, vars(zeroimage))
            for hint in hints.values():
                missing |= {(cls, where) for cls in _zeroimage_classes(hint, set()) if cls not in zeroimage.__all__}
    assert not missing, sorted(missing)


def test_tar_writer_long_and_unicode_names_read_back(tmp_path):
    long_dir = "/opt/" + "d" * 120
    entries = [zeroimage.LayerEntry(long_dir + "/prog", data=b"long"),
               zeroimage.LayerEntry("/srv/naïve-ü.txt", data=b"unicode"),
               zeroimage.LayerEntry("/srv/link", "symlink", 0o777, linkname="/" + "l" * 150),
               zeroimage.LayerEntry("/big-ids", "dir", 0o755, 3000000, 3000000)]
    blob = _layer(entries)
    path = tmp_path / "layer.tar"
    path.write_bytes(gzip.decompress(blob))
    with tarfile.open(str(path)) as tar:
        by = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile(long_dir.lstrip("/") + "/prog").read() == b"long"
        assert tar.extractfile("srv/naïve-ü.txt").read() == b"unicode"
        assert by["srv/link"].issym() and by["srv/link"].linkname == "/" + "l" * 150
        assert by["big-ids"].uid == 3000000
    if shutil.which("tar"):
        listing = subprocess.run(["tar", "-tf", str(path)], stdout=subprocess.PIPE, check=True).stdout.decode()
        assert long_dir.lstrip("/") + "/prog" in listing.splitlines() and "srv/naïve-ü.txt" in listing


@pytest.mark.parametrize("size", [0, 1, zeroimage.GZIP_CHUNK, 3 * zeroimage.GZIP_CHUNK + 12345])
@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_parallel_gzip_is_the_same_for_every_thread_count(size, level, tmp_path):
    random_part = os.urandom(size // 3)
    data = (random_part + b"compressible text " * (size // 18 + 1))[:size]
    outputs = []
    for threads in (1, 2, 3, 8):
        out = io.BytesIO()
        gz = zeroimage.GzipWriter(out, level, threads)
        for start in range(0, len(data), 100000):       # written in pieces that do not align with chunks
            gz.write(data[start:start + 100000])
        gz.close()
        outputs.append(out.getvalue())
    assert len(set(outputs)) == 1, "byte-identical whatever the number of threads"
    assert zlib.decompress(outputs[0], 31) == data and gzip.decompress(outputs[0]) == data
    if shutil.which("gzip"):
        path = tmp_path / "t.gz"
        path.write_bytes(outputs[0])
        assert subprocess.run(["gzip", "-t", str(path)]).returncode == 0


def test_read_elf_with_a_damaged_header(tmp_path):
    """A header whose program-header offset points past the file (or past what seek allows)."""
    damaged = bytearray(make_elf(183, interpreter="/lib/ld.so"))
    damaged[32:40] = b"\xff" * 8           # e_phoff: beyond any file
    path = tmp_path / "damaged"
    path.write_bytes(bytes(damaged) + os.urandom(100))
    with open(str(path), "rb") as f:
        elf = zeroimage.read_elf(f)
    assert elf.platform == Platform.parse("linux/arm64") and elf.interpreter is None
    assert zeroimage.read_elf(io.BytesIO(bytes(damaged))).interpreter is None


# ---- digests: every algorithm the image spec registers is verified, any other refused ----

def _digests_of(data):
    blake3 = zeroimage._Blake3()
    blake3.update(data)
    return {"sha256": "sha256:" + hashlib.sha256(data).hexdigest(),
            "sha512": "sha512:" + hashlib.sha512(data).hexdigest(),
            "blake3": "blake3:" + blake3.hexdigest()}


@pytest.mark.parametrize("algorithm", ["sha256", "sha512", "blake3"])
def test_every_registered_algorithm_is_verified(algorithm):
    data = b"some bytes" * 100
    digest = _digests_of(data)[algorithm]
    assert zeroimage.verify_bytes(data, digest, "x") == data
    with pytest.raises(zeroimage.DigestMismatchError):
        zeroimage.verify_bytes(data + b"!", digest, "x")
    reader = zeroimage.VerifyingReader(io.BytesIO(data), digest, len(data), "x")
    assert reader.read(7) + reader.read() == data
    with pytest.raises(zeroimage.DigestMismatchError):
        zeroimage.VerifyingReader(io.BytesIO(data[:-1] + b"?"), digest, len(data), "x").read()
    writer = zeroimage.HashingWriter(algorithm=algorithm)
    writer.write(data)
    assert writer.digest == digest


@pytest.mark.parametrize("text, why", [
    ("md5:" + "a" * 32, "algorithm 'md5'"), ("sha384:" + "a" * 96, "algorithm 'sha384'"),
    ("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", "algorithm 'multihash+base58'"),
    ("sha256:" + "A" * 64, "64 lowercase hex"), ("sha256:abc", "64 lowercase hex"), ("sha512:" + "a" * 64, "128"),
    ("sha256", "not a digest"), (":abc", "not a digest"), ("sha256:a b", "not a digest"), (5, "not a digest"),
])
def test_digests_zeroimage_cannot_verify_are_refused(text, why):
    with pytest.raises(zeroimage.ZeroImageError, match=re.escape(why)):
        zeroimage.parse_digest(text)
    if isinstance(text, str):
        with pytest.raises(zeroimage.InvalidReferenceError, match=re.escape(why)):
            zeroimage.Reference.parse("app@" + text)
    with pytest.raises(zeroimage.ArchiveError):
        zeroimage.check_descriptor({"digest": text, "size": 1}, "here")


def test_blake3_and_sha512_blobs_in_a_layout(tmp_path):
    """A layout may name blobs by any registered algorithm: blobs/sha512/..., blobs/blake3/..."""
    data = b"layer bytes"
    for algorithm, digest in _digests_of(data).items():
        path = tmp_path / algorithm
        (path / "blobs" / algorithm).mkdir(parents=True)
        (path / "blobs" / algorithm / digest.split(":")[1]).write_bytes(data)
        (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        (path / "index.json").write_text('{"schemaVersion":2,"manifests":[]}')
        with zeroimage.Layout(str(path)) as layout:
            blob = layout.blob({"digest": digest, "size": len(data)})
            with contextlib.closing(blob.open()) as f:
                assert f.read() == data


# ---- text from outside ----


@pytest.mark.parametrize("text, present, absent", [
    ("a\x1b[31mred\r\nline", ["\\x1b[31mred line"], ["\x1b", "\r", "\n"]),
    ("see https://u:pw@cdn.example/blob?X-Amz-Signature=abc123 now", ["https://cdn.example/blob?..."],
     ["abc123", "pw@"]),
    ("Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", ["<redacted>"], ["eyJ"]),
    ("Basic YWxpY2U6d29uZGVybGFuZA== and password=hunter2", ["Basic <redacted>", "password=<redacted>"],
     ["YWxpY2U6", "hunter2"]),
    ("the token server refused the credentials", ["the token server refused the credentials"], []),
    ("right\u202eleft", ["\\u202e"], ["\u202e"]),
])
def test_outside_text_is_one_safe_line(text, present, absent):
    out = zeroimage.outside_text(text)
    for part in present:
        assert part in out, out
    for part in absent:
        assert part not in out, out
    assert len(zeroimage.outside_text("x" * 1000, 50)) == 50


@pytest.mark.parametrize("where", ["open", "finalize"])
def test_atomic_output_leaves_no_temporary_whatever_ends_its_making(tmp_path, monkeypatch, where):
    """An exception while atomic_output makes its temporary (a stop signal's, which can land anywhere:
    "open" raises it just after the file is made, as one raised inside mkstemp did) leaves no file,
    nothing in _UNFINISHED, and no stop signal blocked (every program this process starts would
    inherit the mask and never see its Ctrl-C)."""
    import signal
    import weakref

    real_open = os.open

    def made_then_interrupted(path, *args, **kwargs):
        os.close(real_open(path, *args, **kwargs))
        raise KeyboardInterrupt

    def boom(*args, **kwargs):
        raise RuntimeError("an alarm")
    if where == "open":
        monkeypatch.setattr(os, "open", made_then_interrupted)
    else:
        monkeypatch.setattr(weakref, "finalize", boom)
    with pytest.raises(KeyboardInterrupt if where == "open" else RuntimeError):
        with zeroimage.atomic_output(str(tmp_path / "out")) as f:
            f.write(b"x")
    if hasattr(signal, "pthread_sigmask"):
        assert not signal.pthread_sigmask(signal.SIG_BLOCK, []) & {signal.SIGINT, signal.SIGTERM}
    assert os.listdir(str(tmp_path)) == [] and not zeroimage._UNFINISHED


def test_tar_kinds_are_tarfiles_type_flags():
    """The member kinds are written as ustar type flags (tarfile is imported lazily): they are tarfile's."""
    assert zeroimage._TAR_KINDS == {
        tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file", tarfile.GNUTYPE_SPARSE: "file",
        tarfile.LNKTYPE: "hardlink", tarfile.SYMTYPE: "symlink", tarfile.CHRTYPE: "char", tarfile.BLKTYPE: "block",
        tarfile.DIRTYPE: "dir", tarfile.FIFOTYPE: "fifo"}
    assert zeroimage._KIND_TYPES == {
        "file": tarfile.REGTYPE, "hardlink": tarfile.LNKTYPE, "symlink": tarfile.SYMTYPE, "char": tarfile.CHRTYPE,
        "block": tarfile.BLKTYPE, "dir": tarfile.DIRTYPE, "fifo": tarfile.FIFOTYPE}


VALUES = [
    (Reference.parse("a"), Reference("docker.io", "library/a", "latest"), Reference.parse("a:1"), "tag", "2"),
    (Platform.parse("linux/arm/v7"), Platform("linux", "arm", "v7"), Platform("linux", "arm64"), "variant", "v6"),
    (zeroimage.engine_image("docker-daemon:x"), zeroimage.EngineImage(Reference.parse("x")),
     zeroimage.engine_image("docker-daemon:y"), "ref", Reference.parse("z")),
]


@pytest.mark.parametrize("value, same, other, field, changed", VALUES, ids=[type(v[0]).__name__ for v in VALUES])
def test_frozen_values_behave_as_the_frozen_dataclasses_they_replaced(value, same, other, field, changed):
    """Reference, Platform and EngineImage are _Values (dataclasses cost their import at every start):
    a library caller keeps what a frozen dataclass gave: equality and hashing by the fields (sets, dict
    keys), repr, replace, "%s", frozen, pickling and copying, and NotImplemented for another type."""
    import copy
    import pickle
    from unittest import mock
    assert value == same and hash(value) == hash(same) and value != other and not (value != same)
    assert len({value, same, other}) == 2 and {value: 1}[same] == 1
    assert repr(value).startswith(type(value).__name__ + "(")
    assert "%s=%r" % (field, getattr(value, field)) in repr(value)
    assert "%s" % value == str(value)
    replaced = value.replace(**{field: changed})
    assert getattr(replaced, field) == changed and replaced != value and getattr(value, field) != changed
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(value, protocol))
        assert back == value and hash(back) == hash(value) and type(back) is type(value)
    assert copy.copy(value) == value and copy.deepcopy(value) == value
    assert value == mock.ANY and [value] == [mock.ANY] and value != (value,) and value != str(value)
    with pytest.raises(AttributeError):
        setattr(value, field, changed)
    with pytest.raises(AttributeError):
        delattr(value, field)
    with pytest.raises(TypeError):
        type(value)(*(list(value._values()) + ["one too many"]))
    with pytest.raises(TypeError):
        type(value)(nonsense=1)
