"""docker save archives of the kind Docker wrote before version 25 (manifest.json, <id>/layer.tar,
<id>.json) and podman's docker-archive, as bases (--from-archive), for push and for inspect.

The archives are made here from real files (imagetools.DockerSaveBuilder), and by podman itself
when it is installed; real tools judge what zeroimage makes of them."""

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile

import pytest

from clients import Client
from conftest import need_tool
from helpers import check_built_on_real_base, fails, ok, sh
from imagetools import DOCKER, DockerSaveBuilder, LayoutBuilder, image_of, layer_members, real_base, run_cli


def _real_layers(busybox):
    """The layers and config of imagetools.real_base, as DockerSaveBuilder takes them."""
    return ([[("bin", "dir", None, 0o755), ("bin/busybox", "file", busybox, 0o755), ("bin/sh", "symlink", "busybox", 0o777),
              ("etc", "dir", None, 0o755), ("etc/base-release", "file", b"zeroimage test base 1.0\n", 0o644)],
             [("etc/protocols", "file", "/etc/protocols", 0o644), ("srv", "dir", None, 0o755)]],
            {"config": {"Env": ["PATH=/bin", "BASE_VAR=from-base"], "Cmd": ["/bin/sh"], "WorkingDir": "/srv",
                        "Labels": {"org.example.base": "yes"}}, "x-unknown": {"kept": True}})


def _small(b=None, **kwargs):
    b = b or DockerSaveBuilder()
    b.image([[("etc", "dir", None, 0o755), ("etc/hello", "file", b"hello\n", 0o644)]], {"config": {}},
            tags=kwargs.pop("tags", ["base:1"]), **kwargs)
    return b


def _program(tmp_path):
    path = tmp_path / "prog"
    path.write_bytes(b"#!/bin/sh\necho hi\n")
    path.chmod(0o755)
    return path


# ---- reading, without external tools ----


def test_build_gzips_the_layers_and_keeps_the_diff_ids(tmp_path):
    b = DockerSaveBuilder()
    _small(b)
    base = b.write(tmp_path / "save.tar")
    config = json.loads(b.files[b.manifest[0]["Config"]])
    out = tmp_path / "app.tar"
    r = run_cli("build", "--from-archive", "%s:base:1" % base, "-o", out, _program(tmp_path))
    assert r.returncode == 0, r.stderr
    _, manifest, built, layers = image_of(str(out))
    assert manifest["mediaType"] == DOCKER["manifest"] and manifest["config"]["mediaType"] == DOCKER["config"]
    assert [d["mediaType"] for d in manifest["layers"]] == [DOCKER["layer"]] * 2
    assert built["rootfs"]["diff_ids"][0] == config["rootfs"]["diff_ids"][0]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layers[0]))) as tar:
        assert tar.extractfile("etc/hello").read() == b"hello\n"


def test_podman_layer_names_gzip_layers_and_linked_repeats(tmp_path):
    """podman's <hex>.tar names; gzip layers (some writers compress); a layer saved twice as a link."""
    b = DockerSaveBuilder()
    _small(b, podman=True, tags=["localhost/p:1"])
    _small(b, compress=True, tags=["gz:1"])
    layer = [("etc", "dir", None, 0o755), ("etc/same", "file", b"same\n", 0o644)]
    b.image([layer, [("srv", "dir", None, 0o755)], layer], {"config": {}}, tags=["twice:1"])
    base = b.write(tmp_path / "save.tar")
    for name, count in (("localhost/p:1", 2), ("gz:1", 2), ("twice:1", 4)):
        out = tmp_path / ("app-%s.tar" % name.replace("/", "_").replace(":", "_"))
        r = run_cli("build", "--from-archive", "%s:%s" % (base, name), "-o", out, _program(tmp_path))
        assert r.returncode == 0, (name, r.stderr)
        assert len(image_of(str(out))[1]["layers"]) == count
    info = run_cli("inspect", "%s:twice:1" % base)
    assert info.returncode == 0 and "rootfs.diff.tar" in info.stdout


def test_several_images_and_no_name_lists_the_names(tmp_path):
    b = _small(tags=["one:1"])
    b.image([[("srv", "dir", None, 0o755)]], {"config": {}}, tags=["two:2"])
    base = b.write(tmp_path / "save.tar")
    fails(run_cli("push", base, "127.0.0.1:1/x:1"), 1, "several images", "one:1", "two:2")
    fails(run_cli("inspect", "%s:three" % base), 1, "no image named", "one:1")
    r = run_cli("inspect", "%s:two:2" % base)
    assert r.returncode == 0 and "docker.io/library/two:2" in r.stdout


def test_a_diff_id_mismatch_is_refused(tmp_path):
    wrong = "sha256:" + "ab" * 32
    for compress in (False, True):
        b = _small(diff_ids=[wrong], compress=compress)
        base = b.write(tmp_path / "save.tar")
        out = tmp_path / "app.tar"
        last = fails(run_cli("build", "--from-archive", base, "-o", out, _program(tmp_path)), 1)
        assert "sha256:abab" in last and "digest" in last.lower(), last
        assert not out.exists() and not [p for p in os.listdir(str(tmp_path)) if p.startswith(".") or "tmp" in p]
        fails(run_cli("push", base, "127.0.0.1:1/x:1"), 1)


def test_a_cut_gzip_layer_is_called_cut_not_a_diff_id_mismatch(tmp_path):
    b = _small(compress=True)
    name = b.manifest[0]["Layers"][0]
    b.files[name] = b.files[name][:-12]     # no gzip trailer: the stream ends early
    base = b.write(tmp_path / "save.tar")
    for verb in (["build", "--from-archive", base, "-o", tmp_path / "app.tar", _program(tmp_path)],
                 ["copy", base, tmp_path / "copy.tar"]):
        fails(run_cli(*verb), 1, "not valid gzip", "cut short")
    assert not (tmp_path / "app.tar").exists() and not (tmp_path / "copy.tar").exists()


def _tarinfo(name, data=b"", kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        return info, data
    return info, None


HOSTILE = {
    "dotdot": ([_tarinfo("../evil", b"x")], "unsafe archive member"),
    "absolute": ([_tarinfo("/etc/evil", b"x")], "unsafe archive member"),
    "duplicate": ([_tarinfo("manifest.json", b"[]")], "two members named"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_members_are_refused(tmp_path, case):
    extra, words = HOSTILE[case]
    base = _small().write(tmp_path / "save.tar", extra=extra)
    fails(run_cli("build", "--from-archive", base, "-o", tmp_path / "app.tar", _program(tmp_path)), 1, words)
    fails(run_cli("inspect", base), 1, words)
    assert not (tmp_path / "app.tar").exists()


def _rewritten(tmp_path, b, change):
    """The builder's archive with manifest.json replaced by ``change(manifest)`` (a list, or bytes)."""
    manifest = change(json.loads(json.dumps(b.manifest)))
    b.manifest = manifest
    return b.write(tmp_path / "save.tar")


def test_what_manifest_json_names_must_be_plain_members_of_the_archive(tmp_path):
    b = _small()
    layer = b.manifest[0]["Layers"][0]
    cases = [
        (lambda m: [dict(m[0], Layers=["gone/layer.tar"])], "'gone/layer.tar', which the archive does not hold"),
        (lambda m: [dict(m[0], Config="gone.json")], "'gone.json', which the archive does not hold"),
        (lambda m: [dict(m[0], Layers=[layer, layer])], "lists 1 layers but manifest.json names 2"),
        (lambda m: {"not": "a list"}, "not a list of images"),
        (lambda m: [dict(m[0], Layers=["../x/layer.tar"])], "unsafe", "a '..' component"),
        (lambda m: [dict(m[0], Layers=["/x/layer.tar"])], "unsafe", "an absolute path"),
        (lambda m: [dict(m[0], Layers=["x\u0000/layer.tar"])], "unsafe", "a NUL character"),
        (lambda m: [dict(m[0], Layers=["x\\layer.tar"])], "unsafe", "a backslash"),
    ]
    for change, *words in cases:
        base = _rewritten(tmp_path, _small(), change)
        fails(run_cli("build", "--from-archive", base, "-o", tmp_path / "app.tar", _program(tmp_path)), 1, *words)
    # links: out of the archive, to a directory, to nothing
    for target, words in (("../../etc/passwd", "a link out of the archive"), ("../etc", "special file"),
                          ("../missing/layer.tar", "which the archive does not hold")):
        b = _small()
        name = b.manifest[0]["Layers"][0]
        b.files[name] = ("symlink", target)
        extra = []
        if target == "../etc":      # a link to a FIFO member
            b.files[name] = ("symlink", "../d")
            extra = [_tarinfo("d", kind=tarfile.FIFOTYPE)]
        base = b.write(tmp_path / "save.tar", extra=extra)
        fails(run_cli("inspect", base), 1, words)


def test_huge_json_and_other_compressions_are_refused(tmp_path):
    b = _small()
    b.files[b.manifest[0]["Config"]] = b"{" + b" " * (5 * 1024 * 1024) + b"}"
    fails(run_cli("inspect", b.write(tmp_path / "save.tar")), 1, "over the", "limit for JSON")
    for magic, name in ((b"\xfd7zXZ\x00", "xz"), (b"BZh9", "bzip2")):      # (zstd is read: tests/test_compression.py)
        b = _small()
        b.files[b.manifest[0]["Layers"][0]] = magic + b"\0" * 100
        fails(run_cli("inspect", b.write(tmp_path / "save.tar")), 1, "%s-compressed" % name,
              "reads uncompressed, gzip and zstd layers")


def test_oci_layout_and_tar_without_either_are_said(tmp_path):
    path = tmp_path / "other.tar"
    with tarfile.open(str(path), "w") as tar:
        info, data = _tarinfo("hello.txt", b"hi")
        tar.addfile(info, io.BytesIO(data))
    fails(run_cli("inspect", path), 1, "not an OCI image layout", "nor a docker save archive")


# ---- real tools: runc runs the result, podman writes docker-archive, the registry takes the push ----


@pytest.mark.interop
def test_build_on_pre25_docker_save_runs(tmp_path, busybox, busybox_program):
    layers, config = _real_layers(busybox)
    b = DockerSaveBuilder()
    b.image(layers, config, tags=["base:1"])
    base = b.write(tmp_path / "save.tar")
    archive = tmp_path / "app.tar"
    r = run_cli("build", "--from-archive", "%s:base:1" % base, "-o", archive, busybox_program)
    assert r.returncode == 0, r.stderr
    raw = json.loads(sh(need_tool("skopeo"), "inspect", "--raw", "oci-archive:%s" % archive))
    assert raw["mediaType"] == DOCKER["manifest"] and {d["mediaType"] for d in raw["layers"]} == {DOCKER["layer"]}
    check_built_on_real_base(tmp_path, archive)


def _podman_docker_archive(tmp_path, busybox):
    """Our real base as an OCI archive, loaded into a private podman store and saved by podman as docker-archive."""
    podman = need_tool("podman")
    if os.geteuid() != 0:
        pytest.skip("podman with a private store needs root here")
    b = LayoutBuilder()
    desc = real_base(b, busybox)
    oci = b.write_tar(tmp_path / "oci.tar", [dict(desc, annotations={"org.opencontainers.image.ref.name": "1"})])
    runroot = tempfile.mkdtemp(prefix="zi-podman-")      # podman wants a short runroot path
    store = [podman, "--root", tmp_path / "storage", "--runroot", runroot, "--storage-driver", "vfs"]
    saved = tmp_path / "podman-save.tar"
    try:
        sh(*store, "load", "-i", oci)
        name = json.loads(sh(*store, "images", "--format", "json"))[0]["Id"]
        sh(*store, "tag", name, "example.com/team/base:1")
        sh(*store, "save", "--format", "docker-archive", "-o", saved, "example.com/team/base:1")
    finally:
        subprocess.run([str(a) for a in store] + ["rmi", "--all", "--force"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(runroot, ignore_errors=True)
    with tarfile.open(str(saved)) as tar:
        names = tar.getnames()
    assert "manifest.json" in names and "oci-layout" not in names, names
    return saved


@pytest.mark.interop
def test_build_on_podman_docker_archive_runs(tmp_path, busybox, busybox_program):
    saved = _podman_docker_archive(tmp_path, busybox)
    archive = tmp_path / "app.tar"
    r = run_cli("build", "--from-archive", "%s:example.com/team/base:1" % saved, "-o", archive, busybox_program)
    assert r.returncode == 0, r.stderr
    assert skopeo_raw("oci-archive:%s" % archive)["mediaType"] == DOCKER["manifest"]
    check_built_on_real_base(tmp_path, archive)


def skopeo_raw(transport_path, *flags):
    return json.loads(sh(need_tool("skopeo"), "inspect", "--raw", *flags, transport_path))


@pytest.mark.interop
def test_push_docker_save_and_podman_archives(tmp_path, pki, registry_servers, busybox, busybox_program):
    client = Client(tmp_path, pki, registry_servers("open"))
    layers, config = _real_layers(busybox)
    b = DockerSaveBuilder()
    b.image(layers, config, tags=["base:1"])
    sources = [b.write(tmp_path / "save.tar")]
    if shutil.which("podman") and os.geteuid() == 0:
        sources.append(_podman_docker_archive(tmp_path, busybox))
    for n, source in enumerate(sources):
        target = client.ref("saved/base:%d" % n)
        r = client.ok("push", source, target)
        assert "digest is new" in r.stderr
        digest = r.stdout.strip().split("@")[1]
        raw = json.loads(client.skopeo("inspect", "--raw", "docker://" + target))
        assert raw["mediaType"] == DOCKER["manifest"] and raw["config"]["mediaType"] == DOCKER["config"]
        assert {d["mediaType"] for d in raw["layers"]} == {DOCKER["layer"]} and len(raw["layers"]) == 2
        info = json.loads(client.skopeo("inspect", "docker://" + target))
        assert info["Digest"] == digest
        pushed_config = json.loads(client.skopeo("inspect", "--config", "--raw", "docker://" + target))
        assert pushed_config["rootfs"]["diff_ids"] == json.loads(
            b.files[b.manifest[0]["Config"]])["rootfs"]["diff_ids"] or n == 1
        # built on the pushed base, run
        archive = tmp_path / ("app%d.tar" % n)
        client.ok("build", "--from", target, "-o", archive, busybox_program)
        check_built_on_real_base(tmp_path, archive)


def test_members_named_with_dot_slash_are_the_same_members(tmp_path):
    """A writer that names members ``./X`` (tar -C dir .) and lists them so in manifest.json: every
    verb reads the layers (the fuzzer's docker-save/777/1636 was a KeyError)."""
    b = _small(podman=True)
    b.files = {"./" + name: data for name, data in b.files.items()}
    b.manifest[0]["Config"] = "./" + b.manifest[0]["Config"]
    b.manifest[0]["Layers"] = ["./" + name for name in b.manifest[0]["Layers"]]
    archive = b.write(tmp_path / "dot.tar")
    layer = json.loads(b.files[b.manifest[0]["Config"]])["rootfs"]["diff_ids"][0]
    assert layer in ok(run_cli("inspect", archive)).stdout.split(), "the layer listed"
    ok(run_cli("copy", archive, str(tmp_path / "out.tar")))
    _, _, config, layers = image_of(str(tmp_path / "out.tar"))
    assert config["rootfs"]["diff_ids"] == [layer] and layer_members(layers[0])["etc/hello"].size == 6, "copied whole"
    ok(run_cli("build", "--from-archive", archive, "-o", str(tmp_path / "built.tar"), str(_program(tmp_path))))
    _, _, config, layers = image_of(str(tmp_path / "built.tar"))
    assert config["rootfs"]["diff_ids"][0] == layer and len(layers) == 2 and "etc/hello" in layer_members(layers[0])
