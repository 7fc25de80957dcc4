"""The Compression section (issue 24, item 1): one codec table (name -> layer media types in each family,
magic bytes, module), one open_layer, Compression(codec, level) values, and zstd: read where the running
Python has compression.zstd (3.14+), said in one line where it has not, before anything is written;
written with build --compression zstd.

Without Python 3.14, the zstd paths run with backports.zstd (the same API) standing in for
compression.zstd in sys.modules, within a test only (the module stays standard library only); those
tests skip when it is missing (tests/run installs it for Python 3.9+), unless ZEROIMAGE_REQUIRE_INTEROP=1
on a Python it supports. zstd layers of bases are written by hand (tests/imagetools.zstd_frame), and
by skopeo (--dest-compress-format zstd); skopeo judges what zeroimage writes.
"""

import contextlib
import gzip
import hashlib
import importlib
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

import zeroimage
from conftest import need_tool
from helpers import EPOCH
from hostile_fakes import tiny_elf
from imagetools import (OCI, DOCKER, DockerSaveBuilder, LayoutBuilder, image_of, layer_members, read_archive, ref,
                        sha256, zstd_frame)

REQUIRE_INTEROP = os.environ.get("ZEROIMAGE_REQUIRE_INTEROP") == "1"
ZSTD_OCI = dict(OCI, layer="application/vnd.oci.image.layer.v1.tar+zstd")


def _native_zstd():
    try:
        return importlib.import_module("compression.zstd")
    except ImportError:
        return None


@pytest.fixture
def zstd_module(monkeypatch):
    """compression.zstd: the standard library's (3.14+), else backports.zstd put in its place for this test."""
    native = _native_zstd()
    if native is not None:
        return native
    try:
        import backports.zstd as module
    except ImportError:
        message = "no compression.zstd (Python 3.14+) and no backports.zstd (Python 3.9+: pip install backports.zstd)"
        if REQUIRE_INTEROP and sys.version_info >= (3, 9):
            pytest.fail(message + "; ZEROIMAGE_REQUIRE_INTEROP=1 makes this a failure")
        pytest.skip(message)
    monkeypatch.setitem(sys.modules, "compression.zstd", module)
    return module


@pytest.fixture
def no_zstd(monkeypatch):
    """A Python without compression.zstd (as every one before 3.14)."""
    monkeypatch.setitem(sys.modules, "compression.zstd", None)


def run(capsys, *args):
    code = zeroimage.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _program(tmp_path):
    path = tmp_path / "app"
    path.write_bytes(tiny_elf())
    path.chmod(0o755)
    return path


def _base(tmp_path, family=ZSTD_OCI, name="base.tar", layer=None):
    """An OCI archive of one image: /usr/local/bin and /etc/hello, its layer zstd by default; ``layer``
    (bytes) replaces the layer's stored bytes (its digest follows; its diff_id stays)."""
    b = LayoutBuilder()
    desc = b.image([[("usr", "dir", None, 0o755), ("usr/local", "dir", None, 0o755),
                     ("usr/local/bin", "dir", None, 0o755), ("etc", "dir", None, 0o755),
                     ("etc/hello", "file", b"hello\n", 0o644)]], {"config": {"Env": ["PATH=/usr/local/bin"]}},
                   family=family)
    if layer is not None:
        manifest_digest = desc["digest"]
        manifest = json.loads(b.blobs.pop(manifest_digest))
        old = manifest["layers"][0]["digest"]
        del b.blobs[old]
        manifest["layers"][0].update(digest=b.add(layer), size=len(layer))
        data = json.dumps(manifest).encode()
        desc = dict(desc, digest=b.add(data), size=len(data))
    return b.write_tar(str(tmp_path / name), [ref(desc, "1")])


# ---- the table ----


def test_every_layer_media_type_names_one_codec_in_both_families():
    seen = {}
    for codec in zeroimage.CODECS:
        for oci, docker in codec.media_types:
            assert oci.startswith("application/vnd.oci.image.layer.") and oci not in seen, oci
            seen[oci] = codec
            assert zeroimage.layer_codec(oci) is codec
            if docker is not None:
                assert docker.startswith("application/vnd.docker.image.rootfs.") and docker not in seen, docker
                seen[docker] = codec
                assert zeroimage.layer_codec(docker) is codec
                assert (oci, docker) in zeroimage.LAYER_TYPE_PAIRS
            ending = {"gzip": ("+gzip", ".gzip"), "zstd": ("+zstd",), "none": (".tar",)}[codec.name]
            assert oci.endswith(ending) and (docker is None or docker.endswith(ending))
    assert zeroimage.layer_codec("application/vnd.oci.image.layer.v1.tar+bzip2") is None
    assert zeroimage.layer_codec(None) is None and zeroimage.layer_codec(["x"]) is None
    assert set(zeroimage.LAYER_TYPE_PAIRS) == {pair for c in zeroimage.CODECS for pair in c.media_types if pair[1]}


def test_each_family_says_a_codec_by_its_own_name_or_none():
    gzip_codec, zstd_codec = zeroimage.codec_named("gzip"), zeroimage.codec_named("zstd")
    assert gzip_codec.media_type(zeroimage.OCI_FAMILY) == zeroimage.OCI_FAMILY["layer"] == zeroimage.OCI_LAYER_GZIP
    assert gzip_codec.media_type(zeroimage.DOCKER_FAMILY) == zeroimage.DOCKER_FAMILY["layer"]
    assert zstd_codec.media_type(zeroimage.OCI_FAMILY) == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert zstd_codec.media_type(zeroimage.DOCKER_FAMILY) is None          # Docker's schemas have no zstd
    assert zeroimage.codec_named("none").media_type(zeroimage.DOCKER_FAMILY) == zeroimage.DOCKER_LAYER
    for oci, docker in zeroimage.LAYER_TYPE_PAIRS:          # converted both ways; zstd stays as it is
        assert zeroimage._layer_type_in(zeroimage.DOCKER_FAMILY, oci) == docker
        assert zeroimage._layer_type_in(zeroimage.OCI_FAMILY, docker) == oci
    assert zeroimage._layer_type_in(zeroimage.DOCKER_FAMILY, zeroimage.OCI_LAYER_ZSTD) == zeroimage.OCI_LAYER_ZSTD


def test_magic_bytes_find_the_codec_and_a_plain_tar_is_the_rest():
    magics = [c.magic for c in zeroimage.CODECS if c.magic]
    assert all(not a.startswith(b) for a in magics for b in magics if a is not b)     # none a prefix of another
    samples = {"gzip": gzip.compress(b"x", mtime=0), "zstd": zstd_frame(b"x"), "bzip2": b"BZh91AY&SY",
               "xz": b"\xfd7zXZ\x00\x00\x04", "none": io.BytesIO(b"").getvalue() or b"etc/\0\0\0"}
    for name, data in samples.items():
        assert zeroimage.codec_of_bytes(data[:6]).name == name
    assert zeroimage.codec_of_bytes(b"").name == "none"
    assert [c.name for c in zeroimage.CODECS if c.levels] == list(zeroimage.WRITTEN_CODECS) == ["gzip", "zstd"]


def test_modules_of_the_codecs():
    for name in ("gzip", "bzip2", "xz"):            # in every Python zeroimage runs on
        codec = zeroimage.codec_named(name)
        assert zeroimage.codec_problem(codec) is None and zeroimage.codec_module(codec) is not None
    zstd = zeroimage.codec_named("zstd")
    assert zstd.module == "compression.zstd" and zstd.since == (3, 14)
    assert (zeroimage.codec_problem(zstd) is None) == (_native_zstd() is not None)


def test_without_zstd_each_problem_names_this_python(no_zstd):
    problem = zeroimage.codec_problem(zeroimage.codec_named("zstd"))
    version = "%d.%d" % sys.version_info[:2]
    if sys.version_info < (3, 14):
        assert problem == "this Python (%s) cannot decompress zstd; Python 3.14 or newer can" % version
    else:
        assert "this Python (%s) has no compression.zstd" % version in problem
    desc = {"mediaType": zeroimage.OCI_LAYER_ZSTD, "digest": "sha256:" + "a" * 64, "size": 1}
    with pytest.raises(zeroimage.ArchiveError, match=r"^cannot read the layer X: it is zstd-compressed and this Python"):
        zeroimage.check_layer_readable(desc, "the layer X")
    with pytest.raises(zeroimage.UsageError, match=r"^`compression=zstd`: this Python \(%s\) cannot compress zstd"
                                                   % version.replace(".", r"\.")):
        zeroimage.Compression("zstd").check()


def test_compression_values_and_their_levels():
    C = zeroimage.Compression
    assert C.of() == C("gzip", None) and C.of(3) == C("gzip", 3) and C.of("zstd", 5) == C("zstd", 5)
    assert C.of(C("gzip", 1)) is not None and C.of(C("gzip", 1), 9) == C("gzip", 9)
    assert C().check() == C("gzip", 6) and C("gzip", 0).check() == C("gzip", 0)
    for bad, said in ((C("gzip", 10), "`compression_level` must be 0 to 9"),
                      (C("gzip", -1), "`compression_level` must be 0 to 9"),
                      (C("gzip", True), "`compression_level` must be 0 to 9"),
                      (C("brotli"), "`compression` is gzip or zstd, not 'brotli'"),
                      (C("none"), "`compression` is gzip or zstd, not none"),
                      (C("xz"), "`compression` is gzip or zstd, not xz")):
        with pytest.raises(zeroimage.UsageError) as e:
            bad.check()
        assert str(e.value) == said
    assert C("gzip", 6).check().settings() == [6, zeroimage.GZIP_CHUNK, __import__("zlib").ZLIB_RUNTIME_VERSION]


def test_zstd_levels(zstd_module):
    C = zeroimage.Compression
    assert C("zstd").check() == C("zstd", 3) and C("zstd", 22).check().level == 22
    with pytest.raises(zeroimage.UsageError, match="^`compression_level` must be 1 to 22 for zstd$"):
        C("zstd", 0).check()
    assert C("zstd", 3).check().settings() == ["zstd", 3, zstd_module.zstd_version]


def test_the_level_api_still_takes_a_gzip_level(tmp_path):
    """write_layer, compress_layer and LayerCache.key took ``level`` (an int): they still do, positionally
    or by name, and it means what Compression("gzip", level) means."""
    entries = [zeroimage.LayerEntry("/a", data=b"a" * 100000)]
    written = []
    for how in ((1,), (), ("compression",)):
        out = io.BytesIO()
        if how == (1,):
            result = zeroimage.write_layer(entries, out, 1)
        elif how == ():
            result = zeroimage.write_layer(entries, out, level=1)
        else:
            result = zeroimage.write_layer(entries, out, zeroimage.Compression("gzip", 1))
        written.append((result, out.getvalue()))
    assert written[0] == written[1] == written[2]
    assert written[0][1][:2] == b"\x1f\x8b" and written[0][1][8:9] == b"\x04"       # level 1: XFL says fastest
    blob = zeroimage.bytes_blob(b"\0" * 2048)
    with open(tmp_path / "a", "w+b") as a, open(tmp_path / "b", "w+b") as b:
        one = zeroimage.compress_layer(blob, a, 6)
        other = zeroimage.compress_layer(blob, b, level=6)
        assert one.digest == other.digest and gzip.decompress(one.open().read()) == b"\0" * 2048
    cache = zeroimage.LayerCache(str(tmp_path / "cache"))
    assert cache.key(entries, 6) == cache.key(entries, zeroimage.Compression("gzip", 6)) != cache.key(entries, 1)


def test_one_pipeline_writes_every_codec(zstd_module):
    entries = [zeroimage.LayerEntry("/a", data=b"a" * 300000), zeroimage.LayerEntry("/b/c", data=b"c")]
    plain = io.BytesIO()
    zeroimage._write_tar(entries, plain)
    for codec, unpack in (("gzip", gzip.decompress), ("zstd", zstd_module.decompress)):
        out = io.BytesIO()
        diff_id, digest, size = zeroimage.write_layer(entries, out, zeroimage.Compression(codec))
        assert unpack(out.getvalue()) == plain.getvalue() and diff_id == sha256(plain.getvalue())
        assert digest == sha256(out.getvalue()) and size == len(out.getvalue())
        again = io.BytesIO()
        zeroimage.write_layer(entries, again, zeroimage.Compression(codec))
        assert again.getvalue() == out.getvalue()           # the same bytes every time
    cache = zeroimage.LayerCache("/nonexistent")
    assert cache.key(entries, zeroimage.Compression("zstd")) != cache.key(entries, zeroimage.Compression("gzip"))


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_the_inflater_reads_streams_one_after_another_in_bounded_pieces(codec, request):
    if codec == "zstd":
        request.getfixturevalue("zstd_module")
    frame = (lambda d: gzip.compress(d, mtime=0)) if codec == "gzip" else zstd_frame
    data = frame(b"one") + frame(b"\0" * (3 << 20)) + frame(b"two")
    module = zeroimage.codec_module(zeroimage.codec_named(codec))
    inflater = zeroimage._Inflater(zeroimage.codec_named(codec), module)
    pieces = [piece for i in range(0, len(data), 1000) for piece in inflater.feed(data[i:i + 1000])]
    assert b"".join(pieces) == b"one" + b"\0" * (3 << 20) + b"two" and inflater.ended
    assert max(len(p) for p in pieces) <= zeroimage.CHUNK_SIZE
    cut = zeroimage._Inflater(zeroimage.codec_named(codec), module)
    list(cut.feed(data[:-3]))
    assert not cut.ended


# ---- reading zstd layers ----


def test_without_zstd_a_base_it_must_read_is_refused_before_anything_is_written(tmp_path, capsys, no_zstd):
    base, program, out = _base(tmp_path), _program(tmp_path), tmp_path / "out.tar"
    code, _, err = run(capsys, "build", "-q", "--from-archive", base, "--target", "/usr/local/bin/app", "-o", out,
                       program)
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("zeroimage: error: cannot read the base's layer sha256:")
    assert ": it is zstd-compressed and this Python (%d.%d) " % sys.version_info[:2] in err
    assert sorted(os.listdir(tmp_path)) == ["app", "base.tar"]         # nothing written


def test_without_zstd_a_base_it_need_not_read_is_used_as_it_is(tmp_path, capsys, no_zstd):
    base, program, out = _base(tmp_path), _program(tmp_path), tmp_path / "out.tar"
    assert run(capsys, "build", "-q", "--from-archive", base, "-o", out, program)[0] == 0
    _, manifest, _, layers = image_of(str(out))
    _, base_manifest, _, base_layers = image_of(base)
    assert manifest["layers"][0] == base_manifest["layers"][0] and layers[0] == base_layers[0]
    assert [d["mediaType"] for d in manifest["layers"]] == [zeroimage.OCI_LAYER_ZSTD, zeroimage.OCI_LAYER_GZIP]
    assert run(capsys, "copy", "-q", base, tmp_path / "copy.tar")[0] == 0          # copy needs no codec
    assert run(capsys, "inspect", base)[0] == 0


def test_a_zstd_base_is_read_where_python_can(tmp_path, capsys, zstd_module):
    base, program, out = _base(tmp_path), _program(tmp_path), tmp_path / "out.tar"
    assert run(capsys, "build", "-q", "--from-archive", base, "--target", "/usr/local/bin/app", "-o", out,
               program)[0] == 0
    _, manifest, config, layers = image_of(str(out))
    members = layer_members(layers[1])
    assert "usr/local/bin/app" in members and members["usr/local/bin"].mode == 0o755
    assert run(capsys, "inspect", out)[0] == 0


def test_a_damaged_zstd_layer_is_one_line(tmp_path, capsys, zstd_module):
    good = zstd_frame(b"\0" * 10240)
    for damaged in (good[:-100], good[:6] + b"\x07\x00\x00" + good[9:], b"\x28\xb5\x2f\xfd\xff\xff"):
        base = _base(tmp_path, layer=damaged, name="damaged.tar")
        code, _, err = run(capsys, "build", "-q", "--from-archive", base, "--target", "/usr/local/bin/app",
                           "-o", tmp_path / "out.tar", _program(tmp_path))
        assert code == 1 and err.count("\n") == 1 and "is a damaged layer" in err, err
        assert not (tmp_path / "out.tar").exists()


def test_a_zstd_bomb_is_read_in_bounded_memory(tmp_path, zstd_module):
    """A docker save layer of 8 KiB that is 256 MiB of zeros: its diff_id is checked by decompressing
    it a CHUNK_SIZE at a time (the peak of this process grows by far less than the layer)."""
    import resource
    zeros = hashlib.sha256()
    for _ in range(256):
        zeros.update(b"\0" * (1 << 20))
    save = DockerSaveBuilder()
    save.image([[("etc", "dir", None, 0o755)]], {"config": {}}, tags=["bomb:1"], diff_ids=["sha256:" + zeros.hexdigest()])
    name = next(n for n in save.files if n.endswith("layer.tar"))
    save.files[name] = zstd_frame(rle=(0, 256 << 20))
    path = str(tmp_path / "save.tar")
    save.write(path)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with zeroimage.open_archive(path) as archive:
        image = zeroimage.read_image(archive, archive.candidates()[0], path)
        desc = image.manifest["layers"][0]
        assert desc["mediaType"] == zeroimage.OCI_LAYER_ZSTD
        with contextlib.closing(archive.blob(desc).open()) as f:
            while f.read(1 << 16):
                pass
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 * 1024


def test_docker_save_zstd_layers(tmp_path, capsys, zstd_module):
    """A docker save archive's zstd layer.tar: read (its diff_id checked) where Python can, as OCI's
    media type (Docker has none: a Docker-format result refuses it, --media-types oci keeps it)."""
    save = DockerSaveBuilder()
    save.image([[("etc", "dir", None, 0o755), ("etc/x", "file", b"x", 0o644)]], {"config": {}}, tags=["z:1"],
               compress="zstd")
    path = str(tmp_path / "save.tar")
    save.write(path)
    program, out = _program(tmp_path), tmp_path / "out.tar"
    code, _, err = run(capsys, "build", "-q", "--from-archive", path, "-o", out, program)
    assert code == 1 and "which Docker's media types cannot describe" in err and not out.exists()
    assert run(capsys, "build", "-q", "--media-types", "oci", "--from-archive", path, "-o", out, program)[0] == 0
    assert image_of(str(out))[1]["layers"][0]["mediaType"] == zeroimage.OCI_LAYER_ZSTD
    wrong = DockerSaveBuilder()
    wrong.image([[("etc", "dir", None, 0o755)]], {"config": {}}, tags=["z:1"], compress="zstd",
                diff_ids=["sha256:" + "0" * 64])
    wrong.write(str(tmp_path / "wrong.tar"))
    code, _, err = run(capsys, "build", "-q", "--media-types", "oci", "--from-archive", tmp_path / "wrong.tar",
                       "-o", tmp_path / "w.tar", program)
    assert code == 1 and "its diff_id, from the config" in err and not (tmp_path / "w.tar").exists()


def test_docker_save_zstd_layers_without_zstd(tmp_path, capsys, no_zstd):
    save = DockerSaveBuilder()
    save.image([[("etc", "dir", None, 0o755)]], {"config": {}}, tags=["z:1"], compress="zstd")
    path = str(tmp_path / "save.tar")
    save.write(path)
    for args in (("build", "-q", "--media-types", "oci", "--from-archive", path, "-o", tmp_path / "o.tar",
                  _program(tmp_path)),
                 ("copy", "-q", path, tmp_path / "o.tar")):
        code, _, err = run(capsys, *args)
        assert code == 1 and err.count("\n") == 1 and "/layer.tar in %s: it is zstd-compressed" % path in err, err
        assert not (tmp_path / "o.tar").exists()
    assert run(capsys, "inspect", path)[0] == 0


def test_a_zstd_compressed_archive(tmp_path, capsys, zstd_module, monkeypatch):
    base = _base(tmp_path, family=OCI)
    with open(base, "rb") as f:
        (tmp_path / "base.tar.zst").write_bytes(zstd_module.compress(f.read()))
    assert run(capsys, "inspect", tmp_path / "base.tar.zst")[0] == 0
    monkeypatch.setitem(sys.modules, "compression.zstd", None)
    code, _, err = run(capsys, "inspect", tmp_path / "base.tar.zst")
    assert code == 1 and "cannot read " in err and "base.tar.zst: it is zstd-compressed and this Python" in err and "decompress it first" in err


# ---- writing zstd layers ----


def test_compression_zstd_without_zstd_is_a_usage_error(tmp_path, capsys, no_zstd):
    code, _, err = run(capsys, "build", "-q", "--from", "scratch", "--compression", "zstd", "-o", tmp_path / "o.tar",
                       _program(tmp_path))
    assert code == 2 and "--compression zstd: this Python (%d.%d) " % sys.version_info[:2] in err
    assert not (tmp_path / "o.tar").exists()


def test_compression_zstd_writes_oci_zstd_layers(tmp_path, capsys, zstd_module, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH["SOURCE_DATE_EPOCH"])    # two builds compared: not "now" twice
    program, out = _program(tmp_path), tmp_path / "out.tar"
    docker_base = _base(tmp_path, family=DOCKER, name="docker.tar")
    assert run(capsys, "build", "-q", "--compression", "zstd", "--from-archive", docker_base, "-o", out, program)[0] == 0
    _, manifest, config, layers = image_of(str(out))
    assert manifest["mediaType"] == zeroimage.OCI_MANIFEST          # as skopeo: zstd makes the image OCI's
    assert [d["mediaType"] for d in manifest["layers"]] == [zeroimage.OCI_LAYER_GZIP, zeroimage.OCI_LAYER_ZSTD]
    assert sha256(zstd_module.decompress(layers[1])) == config["rootfs"]["diff_ids"][1]
    first = read_archive(str(out))
    assert run(capsys, "build", "-q", "--compression", "zstd", "--from-archive", docker_base, "-o", out, program)[0] == 0
    assert read_archive(str(out)) == first                          # reproducible
    code, _, err = run(capsys, "build", "-q", "--compression", "zstd", "--media-types", "docker", "--from", "scratch",
                       "-o", tmp_path / "d.tar", program)
    assert code == 2 and "Docker's media types have no name for zstd layers" in err
    code, _, err = run(capsys, "build", "-q", "--compression", "zstd", "--compression-level", "23", "--from",
                       "scratch", "-o", tmp_path / "d.tar", program)
    assert code == 2 and "--compression-level must be 1 to 22 for zstd" in err
    assert run(capsys, "build", "-q", "--compression", "zstd", "--compression-level", "19", "-o", tmp_path / "m.tar",
               program)[0] == 0
    _, manifest, config, layers = image_of(str(tmp_path / "m.tar"))      # the minimal base's layer too
    assert {d["mediaType"] for d in manifest["layers"]} == {zeroimage.OCI_LAYER_ZSTD}
    assert run(capsys, "inspect", tmp_path / "m.tar")[0] == 0


def test_skopeo_judges_zstd_layers(tmp_path, capsys, zstd_module):
    skopeo = need_tool("skopeo")
    out = tmp_path / "out.tar"
    assert run(capsys, "build", "-q", "--compression", "zstd", "--from", "scratch", "-o", out, _program(tmp_path))[0] == 0
    raw = json.loads(subprocess.run([skopeo, "inspect", "--raw", "oci-archive:%s" % out], check=True,
                                    stdout=subprocess.PIPE).stdout)
    assert raw["layers"][0]["mediaType"] == zeroimage.OCI_LAYER_ZSTD
    subprocess.run([skopeo, "copy", "-q", "--dest-decompress", "oci-archive:%s" % out, "dir:%s" % (tmp_path / "d")],
                   check=True)
    config = image_of(str(out))[2]
    diff_id = config["rootfs"]["diff_ids"][0]
    with open(tmp_path / "d" / diff_id.split(":")[1], "rb") as f:      # skopeo decompressed it to its diff_id
        assert sha256(f.read()) == diff_id


def test_a_base_skopeo_compressed_with_zstd(tmp_path, capsys, zstd_module):
    skopeo = need_tool("skopeo")
    base = _base(tmp_path, family=OCI)
    zbase = tmp_path / "zbase.tar"
    subprocess.run([skopeo, "copy", "-q", "--dest-compress-format", "zstd", "oci-archive:%s" % base,
                    "oci-archive:%s:1" % zbase], check=True)
    assert image_of(str(zbase))[1]["layers"][0]["mediaType"] == zeroimage.OCI_LAYER_ZSTD
    out = tmp_path / "out.tar"
    assert run(capsys, "build", "-q", "--from-archive", zbase, "--target", "/usr/local/bin/app", "-o", out,
               _program(tmp_path))[0] == 0
    assert "usr/local/bin/app" in layer_members(image_of(str(out))[3][1])
    with tarfile.open(str(zbase)) as tar:       # (a real zstd stream, with compressed blocks: not ours)
        assert any(m.isfile() and tar.extractfile(m).read(4) == b"\x28\xb5\x2f\xfd" for m in tar.getmembers())
