"""The spec checker itself (tests/speccheck.py): hand-made valid layouts pass, and each rule has a broken
example it catches. Then the hooks that run it over what the suite writes."""

import gzip
import io
import json
import os
import tarfile

import pytest

import speccheck
import zeroimage
from imagetools import DOCKER, OCI, LayoutBuilder, make_layer, output_of, ref, sha256

EPOCH = "2024-01-02T03:04:05Z"
LAYERS = [[("etc/", "dir", None, 0o755), ("etc/base-release", "file", b"base 1\n", 0o644)],
          [("usr/", "dir", None, 0o755), ("usr/bin/", "dir", None, 0o755), ("usr/bin/app", "file", b"app", 0o755)]]


def raw_layer(members, compress=True):
    """A layer from (name, kind, payload) as given, oddities included: kinds dir, file, symlink, hardlink."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            info.type = {"dir": tarfile.DIRTYPE, "file": tarfile.REGTYPE, "symlink": tarfile.SYMTYPE,
                         "hardlink": tarfile.LNKTYPE}[kind]
            if kind in ("symlink", "hardlink"):
                info.linkname = payload
                payload = None
            elif kind == "file":
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    data = raw.getvalue()
    return (gzip.compress(data, mtime=0) if compress else data), sha256(data)


class Image:
    """One image, its parts kept as dicts so a test can damage any of them before they are written."""

    def __init__(self, layers=LAYERS, family=OCI, platform=("linux", "amd64"), raw=False):
        self.family = family
        self.layer_blobs, diff_ids = [], []
        for members in layers:
            blob, diff_id = (raw_layer(members, family["layer"].endswith("gzip")) if raw else
                             make_layer(members, compress=family["layer"].endswith("gzip")))
            self.layer_blobs.append(blob)
            diff_ids.append(diff_id)
        self.config = {"architecture": platform[1], "os": platform[0], "created": EPOCH,
                       "config": {"Env": ["PATH=/bin"], "Entrypoint": ["/usr/bin/app"], "Labels": {"a.b": "c"},
                                  "ExposedPorts": {"8080/tcp": {}}},
                       "rootfs": {"type": "layers", "diff_ids": diff_ids},
                       "history": [{"created": EPOCH, "created_by": "base"},
                                   {"created": EPOCH, "created_by": "ENV", "empty_layer": True}] +
                                  [{"created": EPOCH, "created_by": "layer"}] * (len(layers) - 1)}
        self.manifest = {"schemaVersion": 2, "mediaType": family["manifest"],
                         "config": None, "layers": [{"mediaType": family["layer"], "digest": sha256(blob),
                                                     "size": len(blob)} for blob in self.layer_blobs]}
        self.platform = {"os": platform[0], "architecture": platform[1]}

    def add_to(self, builder):
        """Hash the parts into ``builder``; returns the manifest's descriptor."""
        for blob in self.layer_blobs:
            builder.add(blob)
        config = json.dumps(self.config).encode()
        if self.manifest["config"] is None:
            self.manifest["config"] = {"mediaType": self.family["config"], "digest": builder.add(config),
                                       "size": len(config)}
        else:
            builder.add(config)
        data = json.dumps(self.manifest).encode()
        return {"mediaType": self.family["manifest"], "digest": builder.add(data), "size": len(data),
                "platform": dict(self.platform)}


def write(tmp_path, top, builder, form="dir", name="layout"):
    path = tmp_path / (name + (".tar" if form == "tar" else ""))
    return builder.write_tar(path, top) if form == "tar" else builder.write_dir(path, top)


def single(tmp_path, image=None, form="dir", name="1.0"):
    b = LayoutBuilder()
    desc = (image or Image()).add_to(b)
    return write(tmp_path, [ref(desc, name)], b, form)


def problems(path):
    return speccheck.check(path)


def caught(path, *words):
    found = problems(path)
    assert any(all(w in p for w in words) for p in found), found
    return found


# ---- valid layouts pass ----


@pytest.mark.parametrize("form", ["dir", "tar"])
@pytest.mark.parametrize("family", [OCI, DOCKER], ids=["oci", "docker"])
def test_a_hand_made_image_passes(tmp_path, form, family):
    assert problems(single(tmp_path, Image(family=family), form)) == []


@pytest.mark.parametrize("family", [OCI, DOCKER], ids=["oci", "docker"])
def test_a_multi_platform_index_passes(tmp_path, family):
    b = LayoutBuilder()
    children = [Image(family=family, platform=("linux", arch)).add_to(b) for arch in ("amd64", "arm64")]
    top = b.index(children, family=family)
    assert problems(write(tmp_path, [ref(top, "v1.0-rc.1")], b, "tar")) == []


def test_layout_builder_images_pass(tmp_path):
    b = LayoutBuilder()
    desc = b.image(LAYERS, {"config": {"Cmd": ["/bin/sh"]}})
    assert problems(b.write_tar(tmp_path / "b.tar", [ref(desc, "latest")])) == []


def test_whiteouts_hardlinks_dot_slash_and_parents_through_lower_symlinks_pass(tmp_path):
    image = Image(layers=[
        [("./usr", "dir", None), ("./usr/lib", "dir", None), ("./lib", "symlink", "usr/lib"),
         ("./etc", "dir", None), ("./etc/a", "file", b"a"), ("./etc/b", "hardlink", "etc/a"),
         ("./etc/old", "dir", None), ("./etc/old/x", "file", b"x")],
        [("lib/libx.so", "file", b"x"), ("etc/.wh.old", "file", b""), ("etc/old", "file", b"now a file"),
         ("usr/.wh..wh..opq", "file", b"")]], raw=True)
    assert problems(single(tmp_path, image)) == []


def test_zeroimage_builds_pass(tmp_path, busybox_program, spec_checked_outputs):
    zeroimage.build(zeroimage.BuildOptions(str(busybox_program), str(tmp_path / "a.tar"), base="scratch",
                                           tag="app:1",
                                           image=zeroimage.ImageOptions(env=[("A", "1")], labels=[("org.example", "x")], expose=["80"])))
    zeroimage.build(zeroimage.BuildOptions(str(busybox_program), str(tmp_path / "dir"), base="scratch",
                                           output_format="oci-layout"))
    assert problems(tmp_path / "a.tar") == [] and problems(tmp_path / "dir") == []
    assert spec_checked_outputs == []


# ---- the layout ----


def test_oci_layout_file(tmp_path):
    path = single(tmp_path)
    (tmp_path / "layout" / "oci-layout").write_text('{"imageLayoutVersion": "2.0.0"}')
    caught(path, "oci-layout", "imageLayoutVersion")
    os.unlink(str(tmp_path / "layout" / "oci-layout"))
    caught(path, "oci-layout", "missing")


def test_index_json_fields(tmp_path):
    path = single(tmp_path)
    index_path = tmp_path / "layout" / "index.json"
    index = json.loads(index_path.read_text())
    index_path.write_text(json.dumps(dict(index, schemaVersion=1, mediaType=DOCKER["index"])))
    found = caught(path, "index.json", "schemaVersion")
    caught(path, "index.json", "OCI image index")
    index_path.write_text(json.dumps({"schemaVersion": 2}))
    caught(path, "index.json", "manifests is missing")
    assert found


def test_two_entries_with_one_ref_name(tmp_path):
    b = LayoutBuilder()
    one, two = Image().add_to(b), Image(platform=("linux", "arm64")).add_to(b)
    caught(write(tmp_path, [ref(one, "latest"), ref(two, "latest")], b), "ref name 'latest'")


def test_a_blob_whose_content_is_not_its_name(tmp_path):
    b = LayoutBuilder()
    image = Image()
    desc = image.add_to(b)
    path = write(tmp_path, [ref(desc, "1")], b)
    layer = tmp_path / "layout" / "blobs" / "sha256" / sha256(image.layer_blobs[0]).split(":")[1]
    data = bytearray(layer.read_bytes())
    data[-1] ^= 1
    layer.write_bytes(bytes(data))
    caught(path, "hashes to")


def test_blob_names_follow_the_digest_grammar(tmp_path):
    path = single(tmp_path)
    (tmp_path / "layout" / "blobs" / "sha256" / "ABC").write_bytes(b"x")
    (tmp_path / "layout" / "blobs" / "stray").write_bytes(b"x")
    caught(path, "blobs/sha256/ABC", "not a digest")
    caught(path, "blobs/stray", "blobs/<algorithm>/<encoded>")


def test_a_missing_blobs_directory(tmp_path):
    b = LayoutBuilder()
    path = b.write_dir(tmp_path / "empty", [])
    assert problems(path) == ["blobs: the directory is missing (image-layout.md: it MUST exist)"]


@pytest.mark.parametrize("damage, words", [
    (lambda d: d.update(size=d["size"] + 1), ["bytes, the descriptor says"]),
    (lambda d: d.update(size=-1), ["size -1"]),
    (lambda d: d.update(size=True), ["size True"]),
    (lambda d: d.update(digest=d["digest"].upper().replace("SHA256", "sha256")), ["lower-case hex"]),
    (lambda d: d.update(digest=d["digest"] + "\n"), ["digest grammar"]),
    (lambda d: d.update(digest="sha256:" + "0" * 64), ["not in the layout"]),
    (lambda d: d.update(mediaType="not a type"), ["RFC 6838"]),
    (lambda d: d.update(urls="http://x"), ["urls"]),
    (lambda d: d.update(data="bm9wZQ=="), ["data is not the base64"]),
    (lambda d: d.update(annotations=None), ["annotations is null"]),
    (lambda d: d["platform"].update(architecture="arm64"), ["platform.architecture", "the config says"]),
    (lambda d: d["platform"].pop("os"), ["platform.os is missing"]),
])
def test_descriptors_in_index_json(tmp_path, damage, words):
    b = LayoutBuilder()
    desc = Image().add_to(b)
    damage(desc)
    caught(write(tmp_path, [desc], b), *words)


# ---- families ----


def test_an_oci_index_lists_no_docker_manifest_and_a_docker_list_no_oci_one(tmp_path):
    b = LayoutBuilder()
    docker, oci = Image(family=DOCKER).add_to(b), Image(family=OCI, platform=("linux", "arm64")).add_to(b)
    path = write(tmp_path, [ref(b.index([docker], OCI), "a"), ref(b.index([oci], DOCKER), "b")], b)
    caught(path, "an OCI index lists the Docker type")
    caught(path, "a Docker manifest list lists")


def test_a_docker_list_entry_needs_a_platform(tmp_path):
    b = LayoutBuilder()
    desc = Image(family=DOCKER).add_to(b)
    desc.pop("platform")
    caught(write(tmp_path, [b.index([desc], DOCKER)], b), "no platform")


@pytest.mark.parametrize("family, part, media_type, words", [
    (OCI, "config", DOCKER["config"], ["config", "one family"]),
    (OCI, "layer", DOCKER["layer"], ["Docker layer type", "OCI manifest"]),
    (DOCKER, "config", OCI["config"], ["config", "one family"]),
    (DOCKER, "layer", OCI["layer"], ["in a Docker manifest"]),
])
def test_a_manifest_keeps_to_its_family(tmp_path, family, part, media_type, words):
    image = Image(family=family)
    if part == "layer":
        image.manifest["layers"][0]["mediaType"] = media_type
    else:
        image.manifest["config"] = {"mediaType": media_type, "digest": sha256(json.dumps(image.config).encode()),
                                    "size": len(json.dumps(image.config).encode())}
    caught(single(tmp_path, image), *words)


def test_docker_manifests_and_lists_carry_no_annotations(tmp_path):
    b = LayoutBuilder()
    image = Image(family=DOCKER)
    image.manifest["annotations"] = {"org.opencontainers.image.base.name": "docker.io/library/x:1"}
    image.manifest["layers"][0]["annotations"] = {"a": "b"}
    child = image.add_to(b)
    data = json.dumps({"schemaVersion": 2, "mediaType": DOCKER["index"], "manifests": [child],
                       "annotations": {"a": "b"}}).encode()
    top = {"mediaType": DOCKER["index"], "digest": b.add(data), "size": len(data)}
    path = write(tmp_path, [ref(top, "x")], b)
    caught(path, "a Docker manifest has no annotations")
    caught(path, "a Docker manifest list has no annotations")
    caught(path, "layers[0]", "carries annotations")


def test_a_manifest_says_what_its_descriptor_says(tmp_path):
    image = Image()
    image.manifest["mediaType"] = OCI["index"]
    caught(single(tmp_path, image), "differs from its descriptor")
    image = Image(family=DOCKER)
    del image.manifest["mediaType"]
    caught(single(tmp_path, image, name="2"), "a Docker manifest without mediaType")


def test_a_manifest_needs_layers(tmp_path):
    image = Image()
    image.manifest["layers"] = []
    image.config["rootfs"]["diff_ids"] = []
    image.config["history"] = []
    caught(single(tmp_path, image), "layers is empty")


# ---- configs ----


@pytest.mark.parametrize("damage, words", [
    (lambda c: c.pop("os"), ["os is missing"]),
    (lambda c: c.update(architecture=5), ["architecture is missing or not a string"]),
    (lambda c: c.pop("rootfs"), ["rootfs is missing"]),
    (lambda c: c["rootfs"].update(type="layer"), ["rootfs.type"]),
    (lambda c: c["rootfs"]["diff_ids"].reverse(), ["the uncompressed layer is", "diff_ids[0]"]),
    (lambda c: c["rootfs"]["diff_ids"].pop(), ["1 diff_ids for 2 layers"]),
    (lambda c: c["rootfs"].update(diff_ids=["sha256:abc", c["rootfs"]["diff_ids"][1]]), ["not a digest"]),
    (lambda c: c["history"].pop(), ["history has 1 entries without empty_layer for 2 layers"]),
    (lambda c: c["history"][1].pop("empty_layer"), ["history has 3 entries without empty_layer for 2 layers"]),
    (lambda c: c.update(created="2024-01-02 03:04:05"), ["created", "RFC 3339"]),
    (lambda c: c.update(created="2024-02-30T00:00:00Z"), ["created", "RFC 3339"]),
    (lambda c: c["history"][0].update(created="yesterday"), ["history[0]", "RFC 3339"]),
    (lambda c: c["history"][0].update(empty_layer="no"), ["empty_layer", "a boolean"]),
    (lambda c: c.update(history=None), ["history is null"]),
    (lambda c: c.update(config=None), ["config is null"]),
    (lambda c: c["config"].update(Env=None), ["Env is null"]),
    (lambda c: c["config"].update(Cmd=None), ["Cmd is null"]),
    (lambda c: c["config"].update(Labels=None), ["Labels is null"]),
    (lambda c: c["config"].update(Volumes=None), ["Volumes is null"]),
    (lambda c: c["config"].update(ExposedPorts=None), ["ExposedPorts is null"]),
    (lambda c: c["config"].update(Env=["A=1", 2]), ["Env is", "a list of strings"]),
    (lambda c: c["config"].update(Env=["NOVALUE"]), ["VARNAME=VARVALUE"]),
    (lambda c: c["config"].update(Entrypoint="/app"), ["Entrypoint is"]),
    (lambda c: c["config"].update(ExposedPorts={"80/tcp": True}), ["ExposedPorts is"]),
    (lambda c: c["config"].update(ExposedPorts={"http": {}}), ["'http' is not port"]),
    (lambda c: c["config"].update(Volumes=["/data"]), ["Volumes is"]),
    (lambda c: c["config"].update(Labels={"org.opencontainers.image.colour": "red"}), ["Labels", "reserved"]),
    (lambda c: c["config"].update(User=0), ["User is"]),
    (lambda c: c.update({"os.features": None}), ["os.features is null"]),
])
def test_config_rules(tmp_path, damage, words):
    image = Image()
    damage(image.config)
    caught(single(tmp_path, image), *words)


# ---- annotations ----


@pytest.mark.parametrize("annotations, words", [
    ({"org.opencontainers.image.created": "2024-01-02"}, ["not an RFC 3339"]),
    ({"org.opencontainers.image.ref.name": "v1__x"}, ["ref grammar"]),
    ({"org.opencontainers.image.ref.name": "caf\u00e9"}, ["ref grammar"]),
    ({"org.opencontainers.image.base.digest": "sha256:abc"}, ["not a digest"]),
    ({"org.opencontainers.image.colour": "red"}, ["reserved"]),
    ({"org.opencontainers.foo": "x"}, ["reserved"]),
    ({"com.example.n": 5}, ["not a string"]),
    ({"": "x"}, ["an empty key"]),
    (["a=b"], ["not a map"]),
    (None, ["annotations is null"]),
])
def test_annotation_rules(tmp_path, annotations, words):
    image = Image()
    image.manifest["annotations"] = annotations
    caught(single(tmp_path, image), *words)


def test_ref_names_in_index_json_follow_the_grammar(tmp_path):
    caught(single(tmp_path, name="app:1.0@x--y+z/bad//"), "ref grammar")
    assert problems(single(tmp_path, name="docker.io/library/app:1.0")) == []


@pytest.mark.parametrize("value, valid", [
    ("2024-01-02T03:04:05Z", True), ("2024-01-02T03:04:05.123456789+02:00", True), ("2024-01-02t03:04:05z", True),
    ("2016-12-31T23:59:60Z", True), ("2024-01-02 03:04:05Z", False), ("2024-01-02T03:04:05", False),
    ("2024-13-02T03:04:05Z", False), ("2024-01-02T24:00:00Z", False), ("2024-01-02T03:04:05Z\n", False),
    ("10000-01-01T00:00:00Z", False), (1704164645, False),
])
def test_rfc3339(value, valid):
    assert speccheck.is_rfc3339(value) is valid


@pytest.mark.parametrize("value, valid", [
    ("latest", True), ("v1.0.0-vendor.0", True), ("a--b", True), ("docker.io/library/app:1@sha", True),
    ("a__b", False), ("a---b", False), ("-a", False), ("a/", False), ("", False), ("tag\n", False), ("\u00e9", False),
])
def test_ref_name_grammar(value, valid):
    assert speccheck.is_ref_name(value) is valid


@pytest.mark.parametrize("value, valid", [
    ("app:latest", True), ("docker.io/library/app:1.0", True), ("localhost:5000/a/b:v_1", True),
    ("app", False), ("App:1", False), ("app:caf\u00e9", False), ("app:1\n", False), ("app@sha256:" + "0" * 64, False),
    ("app:" + "x" * 129, False), ("app:.x", False),
])
def test_repo_tag_grammar(value, valid):
    assert speccheck.is_repo_tag(value) is valid


# ---- layers ----


@pytest.mark.parametrize("members, words", [
    ([("/etc", "dir", None)], ["absolute"]),
    ([("etc", "dir", None), ("etc/../../x", "file", b"x")], ["'..'"]),
    ([("/", "dir", None), ("etc", "dir", None)], ["only '/' and '.'"]),
    ([(".", "dir", None)], ["only '/' and '.'"]),
    ([("./", "dir", None)], ["only '/' and '.'"]),
    ([("etc", "dir", None), ("etc//x", "file", b"x")], ["empty or '.' component"]),
    ([("etc", "dir", None), ("etc/x", "file", b"1"), ("etc/x", "file", b"2")], ["duplicate entries"]),
    ([("etc", "dir", None), ("./etc/", "dir", None)], ["duplicate entries"]),
    ([("usr/bin/app", "file", b"x")], ["parent directory usr/bin"]),
    ([("app", "file", b"x"), ("app/index.html", "file", b"y")], ["parent app is a file"]),
    ([("app/", "dir", None), ("app/index.html", "file", b"y"), ("app", "file", b"x")], ["duplicate"]),
    ([("etc", "dir", None), ("etc/b", "hardlink", "etc/a")], ["hardlink", "not an earlier file"]),
    ([("etc", "dir", None), ("etc/.wh.", "file", b"")], ["whiteout without a name"]),
    ([("etc", "dir", None), ("etc/x", "file", b""), ("etc/.wh.x", "file", b"")], ["this same layer adds"]),
])
def test_layer_member_rules(tmp_path, members, words):
    caught(single(tmp_path, Image(layers=[members], raw=True)), *words)


def test_a_file_parent_without_a_directory_entry_is_named(tmp_path):
    image = Image(layers=[[("app/index.html", "file", b"y"), ("app", "file", b"x")]], raw=True)
    caught(single(tmp_path, image), "app is a file and the parent of other members")


def test_a_parent_that_a_lower_layer_made_a_file(tmp_path):
    image = Image(layers=[[("app", "file", b"x")], [("app/y", "file", b"y")]], raw=True)
    caught(single(tmp_path, image), "parent app is a file in the layers below")


def test_a_parent_a_lower_whiteout_removed(tmp_path):
    image = Image(layers=[[("d", "dir", None)], [(".wh.d", "file", b"")], [("d/x", "file", b"x")]], raw=True)
    caught(single(tmp_path, image), "parent directory d")


def test_layer_compression_matches_its_media_type(tmp_path):
    image = Image()
    blob, _ = make_layer(LAYERS[0], compress=False)
    image.layer_blobs[0] = blob
    image.manifest["layers"][0].update(digest=sha256(blob), size=len(blob))
    caught(single(tmp_path, image), "the media type says gzip")


def test_a_layer_that_is_not_a_tar(tmp_path):
    image = Image()
    blob = gzip.compress(b"not a tar at all" * 100, mtime=0)
    image.layer_blobs[0] = blob
    image.manifest["layers"][0].update(digest=sha256(blob), size=len(blob))
    caught(single(tmp_path, image), "not a readable tar")


# ---- Docker's manifest.json ----


def _with_docker_json(tmp_path, entries):
    b = LayoutBuilder()
    image = Image()
    desc = image.add_to(b)
    path = write(tmp_path, [ref(desc, "1")], b)
    config = "blobs/" + image.manifest["config"]["digest"].replace(":", "/")
    layers = ["blobs/" + d["digest"].replace(":", "/") for d in image.manifest["layers"]]
    (tmp_path / "layout" / "manifest.json").write_text(json.dumps(entries(config, layers)))
    return path


def test_docker_manifest_json(tmp_path):
    good = _with_docker_json(tmp_path, lambda c, ls: [{"Config": c, "RepoTags": ["app:1"], "Layers": ls}])
    assert problems(good) == []
    caught(_with_docker_json(tmp_path, lambda c, ls: [{"Config": "blobs/sha256/nope", "RepoTags": ["app:1"],
                                                        "Layers": ls}]), "Config 'blobs/sha256/nope' is not a file")
    caught(_with_docker_json(tmp_path, lambda c, ls: [{"Config": c, "RepoTags": ["app:1"], "Layers": ls[:1]}]),
           "not the config and layers of an image")
    caught(_with_docker_json(tmp_path, lambda c, ls: [{"Config": c, "RepoTags": ["app:1"], "Layers": ls + ["x"]}]),
           "Layers names 'x'")
    caught(_with_docker_json(tmp_path, lambda c, ls: [{"Config": c, "RepoTags": ["App:caf\u00e9"], "Layers": ls}]),
           "RepoTags holds")
    caught(_with_docker_json(tmp_path, lambda c, ls: [{"Config": c, "RepoTags": None, "Layers": ls}]),
           "RepoTags is None")
    caught(_with_docker_json(tmp_path, lambda c, ls: {"Config": c}), "manifest.json", "not a JSON list")


# ---- archives ----


def test_archive_members(tmp_path):
    b = LayoutBuilder()
    desc = Image().add_to(b)
    twice = tarfile.TarInfo("index.json")
    twice.size = 2
    link = tarfile.TarInfo("blobs/sha256/" + "0" * 64)
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    outside = tarfile.TarInfo("../evil")
    outside.size = 1
    path = b.write_tar(tmp_path / "a.tar", [ref(desc, "1")], extra=[(twice, b"{}"), (link, None), (outside, b"x")])
    caught(path, "'index.json'", "appears twice")
    caught(path, "a link or special file")
    caught(path, "'../evil'", "not a relative path")


def test_not_a_layout_at_all(tmp_path):
    (tmp_path / "x").write_bytes(b"junk")
    caught(tmp_path / "x", "neither a layout directory nor a readable tar")


def test_assert_valid_lists_the_problems(tmp_path):
    image = Image()
    image.config["rootfs"]["type"] = "nope"
    path = single(tmp_path, image)
    with pytest.raises(AssertionError, match="breaks the image spec:\n  .*rootfs.type"):
        speccheck.assert_valid(path)


# ---- the hooks ----


@pytest.mark.parametrize("args, cwd, expected", [
    (["build", "-o", "a.tar", "p"], None, "a.tar"),
    (["-q", "build", "--output", "d", "--format", "oci-layout", "p"], "/w", "/w/d"),
    (["pull", "--output=x.tar", "r"], None, "x.tar"),
    (["build", "-ox.tar", "p"], None, "x.tar"),
    (["build", "-o", "-", "p"], None, None),
    (["build", "p"], None, None),
    (["inspect", "-o", "a.tar"], None, None),
    (["push", "a.tar", "r"], None, None),
])
def test_run_cli_finds_the_output(args, cwd, expected):
    assert output_of(args, cwd) == expected


def test_the_fixture_checks_what_library_calls_write(tmp_path, busybox_program, spec_checked_outputs, monkeypatch):
    monkeypatch.setattr(speccheck, "check", lambda path: ["judged"])
    zeroimage.build(zeroimage.BuildOptions(str(busybox_program), str(tmp_path / "a.tar"), base="scratch"))
    zeroimage.build(zeroimage.BuildOptions(str(busybox_program), str(tmp_path / "d"), base="scratch",
                                           output_format="oci-layout"))
    with pytest.raises(zeroimage.ZeroImageError):
        zeroimage.build(zeroimage.BuildOptions(str(tmp_path / "missing"), str(tmp_path / "b.tar"), base="scratch"))
    assert spec_checked_outputs == ["%s: judged" % (tmp_path / "a.tar"), "%s: judged" % (tmp_path / "d")]
    del spec_checked_outputs[:]         # this test's findings are not the suite's
