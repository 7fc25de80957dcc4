"""Names, values and bases from other builders (issue 11, sections 4, 5 and 7): references and tags in
ASCII, whole-string validation, ref names in the image spec's grammar, reserved annotation keys,
environment variables, SOURCE_DATE_EPOCH, Docker formats without annotations, and base configs with
no history, short histories, nulls or no config at all. Real tools judge the images built on odd bases."""

import ast
import copy
import json
import os

import pytest

import zeroimage
from zeroimage import Platform, Reference
from conftest import need_tool
from helpers import EPOCH, fails, sh, skopeo_inspect
from imagetools import DOCKER, MODULE, OCI, LayoutBuilder, image_of, make_layer, ref, run_cli, sha256

HEX = "a" * 64


@pytest.fixture
def prog(tmp_path):
    path = tmp_path / "prog"
    path.write_bytes(b"#!/bin/sh\necho hi\n")
    path.chmod(0o755)
    return path


# ---- every regex that checks a whole value checks all of it ----


def _regex_patterns():
    """(line, pattern, function) of every literal pattern the module gives the re module."""
    with open(MODULE, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "re":
            first = node.args[0] if node.args else None
            if isinstance(first, ast.BinOp):        # "..." % (...)
                first = first.left
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield node.lineno, first.value, node.func.attr


def test_no_pattern_trusts_dollar_to_end_a_value():
    """``$`` also matches before a trailing newline: whole values are checked with fullmatch (or \\Z)."""
    found = list(_regex_patterns())
    assert len(found) > 10
    for line, pattern, function in found:
        assert not pattern.rstrip(")").endswith("$"), "line %d: %r ends with $" % (line, pattern)
        assert not (function == "match" and pattern.startswith("^")), "line %d: use re.fullmatch" % line


@pytest.mark.parametrize("text, why", [
    ("app:café", "bad tag"), ("app:caf\u00e9", "bad tag"), ("app:1\u0661", "bad tag"),   # \w is Unicode
    ("app\n:1", "bad name"), ("localhost:5000\n/app", "bad registry"),
    ("app@sha256:" + "a" * 63 + "\n", "surrounded"), ("app:1\n", "surrounded"),
])
def test_references_are_ascii_and_checked_whole(text, why):
    with pytest.raises(zeroimage.InvalidReferenceError, match=why) as caught:
        Reference.parse(text)
    assert caught.value.exit_code == 2, "a malformed reference is a usage error"


def test_whole_value_checks_refuse_a_trailing_newline():
    assert zeroimage.digest_problem("sha256:" + "a" * 63 + "\n")
    assert not zeroimage.is_digest("sha256:" + HEX + "\n")
    with pytest.raises(zeroimage.ZeroImageError):
        zeroimage.parse_digest("sha256:" + "a" * 63 + "\n")
    assert not zeroimage.valid_host("ghcr.io\n") and not zeroimage.valid_host("localhost:5000\n")
    assert zeroimage.url_problem("https://ghcr.io/v2/\n")
    assert Platform.from_dict({"os": "linux", "architecture": "amd64\n"}) is None
    with pytest.raises(zeroimage.ZeroImageError):
        zeroimage._header_token("token\n", "a token")
    with pytest.raises(zeroimage.CredentialError):
        zeroimage.run_credential_helper("pass\n", "get", "ghcr.io", environ={})


# ---- org.opencontainers.image.ref.name ----


@pytest.mark.parametrize("name, good", [
    ("latest", True), ("1.0", True), ("v1.0.0-vendor.0", True), ("a--b", True), ("a:b@c+d", True), ("a/b-c", True),
    ("stable-release", True), ("_x", False), ("x_", False), ("x__y", False), ("a---b", False), ("a..b", False),
    ("café", False), ("", False), ("a\n", False), ("-a", False), ("a/", False), (None, False),
])
def test_ref_name_grammar(name, good):
    assert (zeroimage.ref_name_problem(name) is None) == good


def test_a_tag_the_ref_name_grammar_refuses_is_a_usage_error(tmp_path, prog):
    r = run_cli("build", "--from", "scratch", "-t", "app:x__y", "-o", tmp_path / "a.tar", prog)
    fails(r, 2, "org.opencontainers.image.ref.name", "the image spec's grammar")
    assert r.stderr.startswith("usage: zeroimage build")
    with pytest.raises(zeroimage.UsageError, match="choose another tag"):
        zeroimage.build(zeroimage.BuildOptions(str(prog), str(tmp_path / "b.tar"), base="scratch",
                                               tag="app:_x"), environ=EPOCH)
    r = run_cli("pull", "-o", tmp_path / "c.tar", "localhost:1/app:1.0_")
    fails(r, 2, "cannot save", "by digest")
    assert "Connection refused" not in r.stderr, "refused before any network"
    assert sorted(os.listdir(str(tmp_path))) == ["prog"]


# ---- labels, annotations and environment variables ----


def _options(**kwargs):
    return zeroimage.ImageOptions(**kwargs)


@pytest.mark.parametrize("options, words", [
    (_options(env=[("A", "one\ntwo")]), ["`env` A", "line break"]),
    (_options(env=[("A", "x\0")]), ["NUL"]),
    (_options(env=[("A=B", "x")]), ["'A=B'", "without '='"]),
    (_options(env=[("", "x")]), ["non-empty"]),
    (_options(env=[("A B", "x")]), ["spaces"]),
    (_options(labels=[("org.opencontainers.custom", "x")]), ["`labels`", "reserved", "com.example.custom"]),
    (_options(annotations=[("org.opencontainers.image.flavour", "x")]), ["`annotations`", "reserved"]),
    (_options(annotations=[("org.opencontainers", "x")]), ["reserved"]),
    (_options(annotations=[("org.opencontainers.image.created", "yesterday")]), ["RFC 3339"]),
    (_options(labels=[("org.opencontainers.image.created", "2024-01-02 03:04:05")]), ["`labels`", "RFC 3339"]),
    (_options(annotations=[("org.opencontainers.image.created", "2024-02-30T00:00:00Z")]), ["RFC 3339"]),
    (_options(annotations=[("org.opencontainers.image.ref.name", "1")]), ["from `tag`"]),
    (_options(annotations=[("org.opencontainers.image.base.digest", "sha256:abc")]), ["not a digest"]),
    (_options(labels=[("", "x")]), ["key is empty"]),
])
def test_image_options_no_image_can_hold_are_usage_errors(options, words):
    """Said to a library caller: options by their names (the CLI words them as flags)."""
    with pytest.raises(zeroimage.UsageError) as caught:
        zeroimage.check_image_options(options)
    for word in words:
        assert word in str(caught.value)


def test_image_options_within_the_rules_pass():
    """Values at the edges of the rules are accepted, and reach the config and the annotations as given."""
    env = [("A", "tab\there"), ("path.with.dots", ""), ("É", "unicode é")]
    labels = [("org.opencontainers.image.created", "2024-01-02T03:04:05.5+01:00"), ("org.opencontainersx", "1")]
    annotations = [("org.opencontainers.image.source", "https://example.com"), ("com.example.k", "v\nw"),
                   ("org.opencontainers.image.base.digest", "sha256:" + HEX),
                   ("org.opencontainers.image.created", "2024-01-02T03:04:05.5+01:00")]
    options = _options(env=env, labels=labels, annotations=annotations)
    assert zeroimage.check_image_options(options) is None
    amd64 = Platform.parse("linux/amd64")
    config = zeroimage.derive_config(zeroimage.base_config_for(amd64), amd64, [], ["/app"], "2024-01-01T00:00:00Z",
                                     options)["config"]
    assert config["Env"][1:] == ["A=tab\there", "path.with.dots=", "É=unicode é"]
    assert config["Labels"] == dict(labels)
    assert zeroimage.image_metadata(options) == (dict(labels), dict(annotations))
    leap = _options(annotations=[("org.opencontainers.image.created", "2016-12-31T23:59:59Z")])
    assert zeroimage.check_image_options(leap) is None
    assert zeroimage.image_metadata(leap)[1] == {"org.opencontainers.image.created": "2016-12-31T23:59:59Z"}


@pytest.mark.parametrize("text, good", [
    ("2024-01-02T03:04:05Z", True), ("2024-01-02t03:04:05z", False), ("2024-01-02T03:04:05.123456789-07:30", True),
    ("2016-12-31T23:59:60Z", False), ("2024-01-02T03:04:05", False), ("2024-01-02 03:04:05Z", False),
    ("2024-13-01T00:00:00Z", False), ("2023-02-29T00:00:00Z", False), ("2024-01-02T24:00:00Z", False),
    ("2024-01-02T03:04:05Z\n", False), ("24-01-02T03:04:05Z", False), (1700000000, False),
])
def test_rfc3339(text, good):
    assert zeroimage.is_rfc3339(text) == good


@pytest.mark.parametrize("args, words", [
    (["--env=A=one\ntwo"], ["line break"]), (["--env", "=x"], ["KEY=VALUE"]),
    (["--label", "org.opencontainers.mine=1"], ["reserved"]),
    (["--annotation", "org.opencontainers.image.created=yesterday"], ["RFC 3339"]),
    (["--label", "org.opencontainers.image.version=1", "--annotation", "org.opencontainers.image.version=2"],
     ["one value per", "version='1'", "version='2'"]),
])
def test_option_values_are_usage_errors_before_any_work(tmp_path, prog, args, words):
    r = run_cli("build", "--from", "scratch", "-o", tmp_path / "a.tar", *(args + [prog]))
    fails(r, 2, *words)
    assert r.stderr.startswith("usage: zeroimage build") and "not an ELF binary" not in r.stderr
    assert sorted(os.listdir(str(tmp_path))) == ["prog"]


# ---- SOURCE_DATE_EPOCH ----


@pytest.mark.parametrize("value, created", [
    ("0", "1970-01-01T00:00:00Z"), ("253402300799", "9999-12-31T23:59:59Z"), (" 1700000000 ", "2023-11-14T22:13:20Z"),
])
def test_source_date_epoch_in_range(value, created):
    assert zeroimage.rfc3339(zeroimage.created_timestamp({"SOURCE_DATE_EPOCH": value})) == created


@pytest.mark.parametrize("value", ["253402300800", "999999999999", "-1", "1.5", "1e9", "\u0661\u0662", "0x10"])
def test_source_date_epoch_out_of_range_is_a_clear_error(value):
    with pytest.raises(zeroimage.ZeroImageError, match="SOURCE_DATE_EPOCH must be a whole number of seconds from 0"):
        zeroimage.created_timestamp({"SOURCE_DATE_EPOCH": value})


@pytest.mark.parametrize("value", [-1, 253402300800, 10 ** 12, 1.5, True])
def test_rfc3339_refuses_what_it_cannot_write(value):
    with pytest.raises(zeroimage.ZeroImageError, match="9999-12-31T23:59:59Z"):
        zeroimage.rfc3339(value)


def test_source_date_epoch_year_10000_is_one_line(tmp_path, prog):
    fails(run_cli("build", "--from", "scratch", "-o", tmp_path / "a.tar", prog,
                  env={"SOURCE_DATE_EPOCH": "253402300800"}), 1, "SOURCE_DATE_EPOCH must be", "9999-12-31T23:59:59Z")
    assert sorted(os.listdir(str(tmp_path))) == ["prog"]


# ---- a malformed reference is a usage error wherever it appears ----


@pytest.mark.parametrize("args", [
    ["build", "--from", "app:café", "p"], ["build", "--from", "a b", "p"], ["build", "--from", "App", "p"],
    ["build", "--push", "app:café", "p"], ["build", "-t", "app:café", "p"], ["pull", "app:café"],
    ["push", "x.tar", "app:café"], ["check-auth", "app:café"], ["inspect", "app:café"],
    ["pull", "app@sha256:" + "a" * 63 + "\n"],
])
def test_a_malformed_reference_is_a_usage_error_everywhere(tmp_path, prog, args):
    args = [str(prog) if a == "p" else a for a in args]
    r = run_cli(*args, cwd=str(tmp_path))
    fails(r, 2)
    assert r.stderr.startswith("usage: zeroimage") and "invalid reference" in r.stderr
    assert sorted(os.listdir(str(tmp_path))) == ["prog"]


def test_a_malformed_base_through_the_library_is_refused_before_any_work(tmp_path, prog):
    with pytest.raises(zeroimage.InvalidReferenceError) as caught:
        zeroimage.build(zeroimage.BuildOptions(str(prog), str(tmp_path / "a.tar"), base="a b"), environ=EPOCH)
    assert caught.value.exit_code == 2 and not (tmp_path / "a.tar").exists()


# ---- bases with unusual configs ----

LAYER1 = [("etc/", "dir", None, 0o755), ("etc/base-release", "file", b"odd base\n", 0o644)]
LAYER2 = [("srv/", "dir", None, 0o755), ("srv/data", "file", b"data\n", 0o644)]
DIFF_IDS = [make_layer(LAYER1)[1], make_layer(LAYER2)[1]]


def _no_nulls(value, where="config"):
    if isinstance(value, dict):
        for k, v in value.items():
            _no_nulls(v, "%s.%s" % (where, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _no_nulls(v, "%s[%d]" % (where, i))
    else:
        assert value is not None, where


def _check_history(config, ours=1):
    """One non-empty history entry per layer, in order, ours last."""
    history, diff_ids = config["history"], config["rootfs"]["diff_ids"]
    described = [h for h in history if not h.get("empty_layer")]
    assert len(described) == len(diff_ids), (history, diff_ids)
    assert all(h["created_by"].startswith("zeroimage:") for h in described[-ours:])
    for h in history:
        assert set(h) <= {"created", "created_by", "author", "comment", "empty_layer"}
        assert "created" not in h or zeroimage.is_rfc3339(h["created"])


ODD_CONFIGS = {
    "no history": {"config": {"Env": ["PATH=/bin"]}},
    "short history": {"config": {}, "history": [{"created": "2020-01-01T00:00:00Z", "created_by": "ADD one"}]},
    "empty_layer entries": {"config": {}, "history": [
        {"created_by": "ADD one"}, {"created_by": "ENV A=1", "empty_layer": True}, {"created_by": "ADD two"},
        {"created_by": "CMD sh", "empty_layer": True}]},
    "nulls": {"config": {"Env": None, "ExposedPorts": None, "Labels": None, "Volumes": None, "Cmd": None,
                         "Entrypoint": None, "User": None, "WorkingDir": None, "OnBuild": None, "Shell": None},
              "history": None, "author": None},
    "null values in maps": {"config": {"ExposedPorts": {"80/tcp": None}, "Volumes": {"/data": None},
                                       "Labels": {"gone": None, "kept": "yes"}},
                            "history": [{"created_by": "ADD one", "comment": None}, {"created_by": "ADD two"}]},
    "no config object": {},
    "null config object": {"config": None},
}


@pytest.mark.parametrize("kind", sorted(ODD_CONFIGS))
def test_derive_config_from_an_odd_base(kind):
    base = dict(copy.deepcopy(ODD_CONFIGS[kind]), os="linux", architecture="amd64",
                rootfs={"type": "layers", "diff_ids": DIFF_IDS})
    before = json.dumps(base, sort_keys=True)
    options = _options(env=[("A", "1")], labels=[("l", "v")], expose=["8080/tcp"])
    out = zeroimage.derive_config(base, Platform.parse("linux/amd64"), [zeroimage.AddedLayer("sha256:" + HEX, "zeroimage: COPY")],
                                  ["/app"], "2024-01-01T00:00:00Z", options)
    assert json.dumps(base, sort_keys=True) == before, "the base config is not modified"
    _no_nulls(out)
    _check_history(out)
    runtime = out["config"]
    assert runtime["Entrypoint"] == ["/app"] and "Cmd" not in runtime and "A=1" in runtime["Env"]
    assert runtime["Labels"]["l"] == "v" and runtime["ExposedPorts"]["8080/tcp"] == {}
    assert out["rootfs"]["diff_ids"] == DIFF_IDS + ["sha256:" + HEX]


def test_the_base_history_is_kept_and_padded_at_its_end():
    base = dict(ODD_CONFIGS["short history"], rootfs={"type": "layers", "diff_ids": DIFF_IDS})
    out = zeroimage.normal_base_config(base)
    assert out["history"][0] == {"created": "2020-01-01T00:00:00Z", "created_by": "ADD one"}
    assert out["history"][1] == {"comment": "zeroimage: the base recorded no history for this layer"}
    assert zeroimage.normal_base_config({})["rootfs"] == {"type": "layers", "diff_ids": []}


@pytest.mark.parametrize("config, words", [
    ({"history": [{"created_by": "a"}, {"created_by": "b"}, {"created_by": "c"}]}, ["describes 3 layers", "has 2"]),
    ({"history": "ADD"}, ["history is not a list"]),
    ({"history": ["ADD one"]}, ["history[0] is not an object"]),
    ({"history": [{"created_by": 5}]}, ["history[0].created_by is not a string"]),
    ({"history": [{"created": "yesterday"}]}, ["history[0].created is not an RFC 3339 time"]),
    ({"history": [{}, {"empty_layer": "yes"}]}, ["history[1].empty_layer"]),
    ({"config": "sh"}, ["\"config\" is not an object"]),
    ({"config": {"Env": "PATH=/bin"}}, ["Env is not a list of strings"]),
    ({"config": {"Cmd": ["sh", 1]}}, ["Cmd is not a list of strings"]),
    ({"config": {"Labels": ["a=b"]}}, ["Labels is not a map of strings"]),
    ({"config": {"Labels": {"a": 1}}}, ["Labels is not a map of strings"]),
    ({"config": {"ExposedPorts": ["80/tcp"]}}, ["ExposedPorts is not a map of objects"]),
    ({"config": {"User": 0}}, ["User is not a string"]),
    ({"rootfs": "layers"}, ["rootfs is not an object"]),
])
def test_a_malformed_base_config_is_refused_naming_the_field(config, words):
    base = dict({"rootfs": {"type": "layers", "diff_ids": DIFF_IDS}}, **config)
    with pytest.raises(zeroimage.ArchiveError) as caught:
        zeroimage.normal_base_config(base, "base.tar")
    assert str(caught.value).startswith("base.tar: ")
    for word in words:
        assert word in str(caught.value)


def _odd_base(b, config, family=OCI, manifest_annotations=None, platform=("linux", "amd64", "")):
    """An image like LayoutBuilder.image, with ``config`` exactly as given and optional manifest annotations."""
    layer_descs = []
    for members in (LAYER1, LAYER2):
        blob, _ = make_layer(members)
        layer_descs.append({"mediaType": family["layer"], "digest": b.add(blob), "size": len(blob)})
    if manifest_annotations and family is OCI:
        layer_descs[0]["annotations"] = {"org.example.layer": "first"}
    config = dict(config, os=platform[0], architecture=platform[1], rootfs={"type": "layers", "diff_ids": DIFF_IDS})
    config_bytes = json.dumps(config).encode()
    manifest = {"schemaVersion": 2, "mediaType": family["manifest"], "layers": layer_descs,
                "config": {"mediaType": family["config"], "digest": b.add(config_bytes), "size": len(config_bytes)}}
    if manifest_annotations:
        manifest["annotations"] = manifest_annotations
    data = json.dumps(manifest).encode()
    return {"mediaType": family["manifest"], "digest": b.add(data), "size": len(data),
            "platform": {"os": platform[0], "architecture": platform[1]}}


BASE_ANNOTATIONS = {"org.opencontainers.image.title": "the base", "org.opencontainers.image.revision": "abc",
                    "org.opencontainers.image.base.name": "docker.io/library/grandparent:1"}


def _judge(tmp_path, archive):
    """skopeo reads the archive and umoci unpacks it (as tests/test_interop.py's judges do)."""
    info = skopeo_inspect("oci-archive:%s" % archive)
    layout = tmp_path / ("layout-" + os.path.basename(str(archive)))
    sh(need_tool("skopeo"), "copy", "--quiet", "oci-archive:%s" % archive, "oci:%s:img" % layout)
    bundle = tmp_path / ("bundle-" + os.path.basename(str(archive)))
    sh(need_tool("umoci"), "unpack", *([] if os.geteuid() == 0 else ["--rootless"]), "--image", "%s:img" % layout, bundle)
    assert (bundle / "rootfs" / "etc" / "base-release").read_bytes() == b"odd base\n"
    return info


@pytest.mark.interop
@pytest.mark.parametrize("kind", sorted(ODD_CONFIGS))
def test_odd_bases_give_images_the_judges_accept(tmp_path, prog, kind):
    b = LayoutBuilder()
    desc = _odd_base(b, ODD_CONFIGS[kind], manifest_annotations=BASE_ANNOTATIONS)
    base = b.write_tar(tmp_path / "base.tar", [ref(desc, "odd")])
    archive = tmp_path / "app.tar"
    r = run_cli("build", "--from-archive", base, "--env", "A=1", "--expose", "80", "--annotation",
                "org.opencontainers.image.title=the app", "-o", archive, prog, env=EPOCH)
    assert r.returncode == 0, r.stderr
    _, manifest, config, layers = image_of(str(archive))
    _no_nulls(config)
    _check_history(config)
    assert len(layers) == 3 == len(config["rootfs"]["diff_ids"])
    annotations = manifest.get("annotations", {})
    assert annotations == {"org.opencontainers.image.title": "the app"}, "the base's own annotations stay behind"
    assert manifest["layers"][0]["annotations"] == {"org.example.layer": "first"}, "a layer's annotations describe it"
    info = _judge(tmp_path, archive)
    assert len(info["Layers"]) == 3 and "A=1" in info["Env"]


@pytest.mark.parametrize("config", [
    {"history": [{"created_by": "a"}, {"created_by": "b"}, {"created_by": "c"}]}, {"config": {"Env": "x"}},
])
def test_a_malformed_base_is_refused_before_any_work(tmp_path, prog, config):
    b = LayoutBuilder()
    base = b.write_tar(tmp_path / "base.tar", [_odd_base(b, config)])
    fails(run_cli("build", "--from-archive", base, "-o", tmp_path / "app.tar", prog), 1, "base.tar: image sha256:")
    assert sorted(os.listdir(str(tmp_path))) == ["base.tar", "prog"]


# ---- Docker formats carry no annotations ----


def test_docker_format_images_carry_no_annotations(tmp_path, prog):
    b = LayoutBuilder()
    desc = _odd_base(b, {"config": {"Labels": None}}, family=DOCKER, manifest_annotations=BASE_ANNOTATIONS)
    base = b.write_tar(tmp_path / "base.tar", [ref(desc, "docker")])
    archive = tmp_path / "app.tar"
    r = run_cli("build", "--from-archive", base, "--label", "org.opencontainers.image.title=app", "-o", archive,
                prog, env=EPOCH)
    assert r.returncode == 0, r.stderr
    index, manifest, config, _ = image_of(str(archive))
    assert manifest["mediaType"] == DOCKER["manifest"] and "annotations" not in manifest
    assert all("annotations" not in d for d in manifest["layers"] + [manifest["config"]])
    assert config["config"]["Labels"] == {"org.opencontainers.image.title": "app"}
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "latest", \
        "index.json is OCI: its names stay"
    fails(run_cli("build", "--from-archive", base, "--annotation", "com.example.k=v", "-o", tmp_path / "x.tar", prog),
          1, "--annotation", "Docker-format", "--label")
    assert not (tmp_path / "x.tar").exists()
    assert skopeo_inspect("oci-archive:%s" % archive, raw=True) == manifest, "skopeo reads it as written"


def _docker_base(name="docker.io/library/base:1", digest="sha256:" + HEX, platform=Platform("linux", "amd64")):
    return zeroimage.BaseImage(zeroimage.base_config_for(platform), [], zeroimage.DOCKER_FAMILY, platform, True, name,
                               {zeroimage.ANNOTATION_BASE_NAME: name, zeroimage.ANNOTATION_BASE_DIGEST: digest},
                               {zeroimage.ANNOTATION_BASE_NAME: name, zeroimage.ANNOTATION_BASE_DIGEST: digest})


def test_docker_manifests_and_lists_from_a_registry_base_keep_no_base_annotations(tmp_path):
    """A registry base knows its name and digest: they go on OCI images only."""
    added = [(zeroimage.LayerResult(zeroimage.bytes_blob(b"layer"), sha256(b"x")), "zeroimage: COPY")]
    images = []
    for arch in ("amd64", "arm64"):
        base = _docker_base(platform=Platform("linux", arch))
        image = zeroimage.assemble_image(base, added, ["/app"], "2024-01-01T00:00:00Z")
        assert "annotations" not in image.manifest and image.manifest["mediaType"] == DOCKER["manifest"]
        images.append(image)
    index = zeroimage.make_image_index(images, zeroimage.DOCKER_FAMILY, base.index_annotations)
    assert "annotations" not in index.index and index.index["mediaType"] == DOCKER["index"]
    oci = base._replace(family=zeroimage.OCI_FAMILY)
    image = zeroimage.assemble_image(oci, added, ["/app"], "2024-01-01T00:00:00Z")
    assert image.manifest["annotations"] == dict(oci.annotations)
    with pytest.raises(zeroimage.ZeroImageError, match="Docker manifests have no annotations"):
        zeroimage.assemble_image(base, added, ["/app"], "2024-01-01T00:00:00Z", _options(annotations=[("a", "b")]))
