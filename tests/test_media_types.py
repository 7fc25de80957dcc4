"""--media-types docker|oci: the pure conversion (convert_family) and build/push choosing a family.
Archives written here are judged by speccheck (run_cli); the registry round trips are in test_registry."""

import json

import pytest

import zeroimage
from imagetools import DOCKER, OCI, LayoutBuilder, image_of, read_archive, ref, run_cli, sha256

ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


def _layers():
    return [[("etc", "dir", None, 0o755), ("etc/base-release", "file", b"base 1\n", 0o644)],
            [("srv", "dir", None, 0o755)]]


def _tree(tmp_path, top, builder):
    path = builder.write_dir(tmp_path / "layout", [ref(top, "base")])
    with zeroimage.Layout(path) as layout:
        return zeroimage.read_tree(layout, layout.index()["manifests"][0], path)


def _blob_bytes(blob):
    f = blob.open()
    try:
        return f.read()
    finally:
        f.close()


def _no_annotations(value):
    if isinstance(value, dict):
        assert "annotations" not in value
        for v in value.values():
            _no_annotations(v)
    elif isinstance(value, list):
        for v in value:
            _no_annotations(v)


def test_an_oci_image_becomes_docker_with_the_same_layers_and_config(tmp_path):
    b = LayoutBuilder()
    desc = b.image(_layers(), {"config": {"Cmd": ["/x"]}})
    manifest = json.loads(b.blobs[desc["digest"]])
    manifest["annotations"] = {"org.example": "yes"}
    manifest["layers"][0]["annotations"] = {"org.example.layer": "1"}
    data = json.dumps(manifest).encode()
    desc = dict(desc, digest=b.add(data), size=len(data))
    image = _tree(tmp_path, desc, b)
    docker = zeroimage.convert_family(image, zeroimage.DOCKER_FAMILY)
    m = docker.manifest
    assert m == json.loads(_blob_bytes(docker.manifest_blob)) and docker.digest == sha256(_blob_bytes(docker.manifest_blob))
    assert (m["schemaVersion"], m["mediaType"], m["config"]["mediaType"]) == (2, DOCKER["manifest"], DOCKER["config"])
    assert [d["mediaType"] for d in m["layers"]] == [DOCKER["layer"]] * 2
    _no_annotations(m)
    assert set(m) == {"schemaVersion", "mediaType", "config", "layers"}
    # the blobs stay: only their descriptors' media types change
    assert [(d["digest"], d["size"]) for d in m["layers"]] == [(d["digest"], d["size"]) for d in manifest["layers"]]
    assert (m["config"]["digest"], m["config"]["size"]) == (manifest["config"]["digest"], manifest["config"]["size"])
    assert [blob.digest for blob in docker.blobs[:-1]] == [blob.digest for blob in image.blobs[:-1]]
    assert docker.kind == DOCKER["manifest"] and docker.digest != image.digest and docker.config == image.config
    # and back: OCI again, with the same blobs (Docker had no annotations to give back)
    oci = zeroimage.convert_family(docker, zeroimage.OCI_FAMILY)
    assert oci.manifest["mediaType"] == OCI["manifest"] and oci.manifest["config"]["mediaType"] == OCI["config"]
    assert [d["mediaType"] for d in oci.manifest["layers"]] == [OCI["layer"]] * 2
    assert [blob.digest for blob in oci.blobs[:-1]] == [blob.digest for blob in image.blobs[:-1]]


def test_an_image_already_in_the_family_keeps_its_bytes(tmp_path):
    b = LayoutBuilder()
    image = _tree(tmp_path, b.image(_layers(), {}, family=DOCKER), b)
    assert zeroimage.convert_family(image, zeroimage.DOCKER_FAMILY) is image
    b = LayoutBuilder()
    top = b.index([b.image(_layers(), {}), b.image(_layers(), {}, platform=("linux", "arm64", "v8"))])
    index = _tree(tmp_path / "oci", top, b)
    assert zeroimage.convert_family(index, zeroimage.OCI_FAMILY) is index


def test_an_index_becomes_a_manifest_list_with_platforms_and_no_attestations(tmp_path):
    b = LayoutBuilder()
    amd = b.image(_layers(), {})
    arm = b.image(_layers(), {}, platform=("linux", "arm64", "v8"))
    attestation = b.image([[("x", "file", b"{}", 0o644)]], {}, platform=("unknown", "unknown", ""))
    attestation = dict(attestation, annotations={"vnd.docker.reference.type": "attestation-manifest",
                                                 "vnd.docker.reference.digest": amd["digest"]})
    index = json.loads(b.blobs[b.index([amd, arm, attestation])["digest"]])
    index["annotations"] = {"org.example": "index"}
    data = json.dumps(index).encode()
    top = {"mediaType": OCI["index"], "digest": b.add(data), "size": len(data)}
    tree = _tree(tmp_path, top, b)
    notes = []
    docker = zeroimage.convert_family(tree, zeroimage.DOCKER_FAMILY, notes)
    listed = docker.index
    assert listed == json.loads(_blob_bytes(docker.manifest_blob)) and docker.kind == DOCKER["index"]
    assert (listed["schemaVersion"], listed["mediaType"]) == (2, DOCKER["index"])
    _no_annotations(listed)
    assert [d["platform"] for d in listed["manifests"]] == [
        {"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm64", "variant": "v8"}]
    assert [d["digest"] for d in listed["manifests"]] == [c.digest for c in docker.children]
    assert [d["size"] for d in listed["manifests"]] == [c.manifest_blob.size for c in docker.children]
    assert {d["mediaType"] for d in listed["manifests"]} == {DOCKER["manifest"]}
    assert all(c.manifest["mediaType"] == DOCKER["manifest"] for c in docker.children)
    assert len(notes) == 1 and attestation["digest"] in notes[0] and "attestation" in notes[0]
    assert zeroimage.tree_platforms(docker) == ["linux/amd64", "linux/arm64/v8"]
    # the layer and config blobs are those of the index's images
    assert {b.digest for b in zeroimage.tree_blobs(docker)} >= {
        d["digest"] for c in tree.children[:2] for d in c.manifest["layers"]}
    # back to OCI: an index again (the attestation stays out)
    oci = zeroimage.convert_family(docker, zeroimage.OCI_FAMILY)
    assert oci.index["mediaType"] == OCI["index"] and len(oci.index["manifests"]) == 2
    assert {d["mediaType"] for d in oci.index["manifests"]} == {OCI["manifest"]}


def test_what_docker_cannot_say_is_refused(tmp_path):
    b = LayoutBuilder()
    zstd = _tree(tmp_path / "zstd", b.image(_layers(), {}, family=dict(OCI, layer=ZSTD)), b)
    with pytest.raises(zeroimage.ZeroImageError, match="zstd.*Docker's media types cannot describe"):
        zeroimage.convert_family(zstd, zeroimage.DOCKER_FAMILY)
    b = LayoutBuilder()
    artifact = b.image([[("x", "file", b"sbom", 0o644)]], {})
    manifest = json.loads(b.blobs[artifact["digest"]])
    manifest["config"]["mediaType"] = "application/vnd.example.sbom.config+json"
    data = json.dumps(manifest).encode()
    tree = _tree(tmp_path / "artifact", dict(artifact, digest=b.add(data), size=len(data)), b)
    with pytest.raises(zeroimage.ZeroImageError, match="artifact"):
        zeroimage.convert_family(tree, zeroimage.DOCKER_FAMILY)
    b = LayoutBuilder()
    inner = b.index([b.image(_layers(), {})])
    nested = _tree(tmp_path / "nested", b.index([dict(inner, platform={"os": "linux", "architecture": "amd64"})]), b)
    with pytest.raises(zeroimage.ZeroImageError, match="holds only images"):
        zeroimage.convert_family(nested, zeroimage.DOCKER_FAMILY)


# -- build --media-types: archives (judged by speccheck) --


def _build(tmp_path, programs, *args):
    out = tmp_path / ("out-%d.tar" % len(list(tmp_path.glob("out-*.tar"))))
    r = run_cli("build", *args, "-o", out, *(programs if isinstance(programs, list) else [programs]),
                env={"SOURCE_DATE_EPOCH": "1700000000"})     # builds compared by digest: one created time
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return out


@pytest.mark.parametrize("base", [["--from", "scratch"], []])
def test_build_docker_on_scratch_and_the_minimal_base(tmp_path, busybox_program, base):
    out = _build(tmp_path, busybox_program, "--media-types", "docker", *base)
    index, manifest, config, _ = image_of(str(out))
    assert manifest["mediaType"] == DOCKER["manifest"] and manifest["config"]["mediaType"] == DOCKER["config"]
    assert {d["mediaType"] for d in manifest["layers"]} == {DOCKER["layer"]}
    _no_annotations(manifest)
    assert index["manifests"][0]["mediaType"] == DOCKER["manifest"]
    assert "manifest.json" in read_archive(str(out))
    # the same build in OCI differs only in the manifest: the layers and config are the same blobs
    _, oci, _, _ = image_of(str(_build(tmp_path, busybox_program, *base)))
    assert oci["mediaType"] == OCI["manifest"]
    assert [d["digest"] for d in oci["layers"]] == [d["digest"] for d in manifest["layers"]]
    assert oci["config"]["digest"] == manifest["config"]["digest"]


def _base_archive(tmp_path, family):
    b = LayoutBuilder()
    desc = b.image(_layers(), {"config": {"Env": ["PATH=/bin"]}}, family=family)
    return b.write_tar(tmp_path / "base.tar", [ref(desc, "base")])


def test_build_docker_on_an_oci_base_and_oci_on_a_docker_base(tmp_path, busybox_program):
    oci_base = _base_archive(tmp_path, OCI)
    _, manifest, _, _ = image_of(str(_build(tmp_path, busybox_program, "--from-archive", oci_base,
                                            "--media-types", "docker")))
    assert manifest["mediaType"] == DOCKER["manifest"] and len(manifest["layers"]) == 3
    assert {d["mediaType"] for d in manifest["layers"]} == {DOCKER["layer"]}
    _no_annotations(manifest)
    (tmp_path / "base.tar").unlink()
    docker_base = _base_archive(tmp_path, DOCKER)
    _, manifest, _, _ = image_of(str(_build(tmp_path, busybox_program, "--from-archive", docker_base,
                                            "--media-types", "oci", "--annotation", "org.example=1")))
    assert manifest["mediaType"] == OCI["manifest"] and manifest["config"]["mediaType"] == OCI["config"]
    assert {d["mediaType"] for d in manifest["layers"]} == {OCI["layer"]}
    assert manifest["annotations"] == {"org.example": "1"}


def test_two_platform_build_in_docker_media_types_is_a_manifest_list(tmp_path, busybox_program):
    out = _build(tmp_path, ["linux/amd64=%s" % busybox_program, "linux/arm64=%s" % busybox_program],
                 "--no-platform-check", "--from", "scratch", "--media-types", "docker")
    files = read_archive(str(out))
    top = json.loads(files["index.json"])["manifests"][0]
    listed = json.loads(files["blobs/sha256/" + top["digest"].split(":")[1]])
    assert top["mediaType"] == listed["mediaType"] == DOCKER["index"]
    _no_annotations(listed)
    assert [d["platform"]["architecture"] for d in listed["manifests"]] == ["amd64", "arm64"]


def test_build_refusals(tmp_path, busybox_program):
    r = run_cli("build", "--media-types", "docker", "--annotation", "a=b", "-o", tmp_path / "x.tar", busybox_program)
    assert r.returncode == 2 and "Docker manifests, which have no annotations" in r.stderr
    r = run_cli("build", "--media-types", "v2s2", "-o", tmp_path / "x.tar", busybox_program)
    assert r.returncode == 2 and "--media-types" in r.stderr
    b = LayoutBuilder()
    desc = b.image(_layers(), {}, family=dict(OCI, layer=ZSTD))
    base = b.write_tar(tmp_path / "zstd.tar", [ref(desc, "base")])
    r = run_cli("build", "--from-archive", base, "--media-types", "docker", "-o", tmp_path / "x.tar", busybox_program)
    assert r.returncode == 1 and "Docker's media types cannot describe" in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.count("\n") <= 3 and not (tmp_path / "x.tar").exists()
