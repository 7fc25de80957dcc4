"""One value per metadata key (issue 23 part 4): for each org.opencontainers.image.* key the user
gives (--label, --annotation or both), the image states the user's value and only it, in its labels
and its annotations alike, over what the program's build info and the base supply. Real Go binaries
of this machine give the build info; images are read back with zeroimage's own inspect and, where
cheap, with skopeo's."""

import json
import subprocess

import pytest

import zeroimage
from binaries import LABEL, craft_elf, go_inline, real_binary, rewritten_go_binary
from conftest import need_tool
from helpers import ok
from imagetools import LayoutBuilder, ref, run_cli

KEYS = ("version", "revision", "source", "created", "title", "vendor", "base.name")
USER = {"version": "9", "revision": "f" * 40, "source": "https://example.com/user/app",
        "created": "2030-01-02T03:04:05Z", "title": "the user's title", "vendor": "User Vendor",
        "base.name": "example.com/user/base:1"}
BASE = {"version": "1.0-base", "revision": "b" * 40, "source": "https://example.com/base",
        "created": "2020-01-01T00:00:00Z", "title": "the base's title", "vendor": "Base Vendor",
        "base.name": "docker.io/library/grandparent:1"}
GO_FULL = {"version": "v2.3.4", "revision": "0123456789abcdef0123456789abcdef01234567",
           "source": "https://github.com/acme/app"}        # what rewritten_go_binary's build info gives
SKOPEO = {"source": "https://github.com/containers/skopeo"}     # Debian's skopeo: no module list
MODES = ("none", "label", "annotation", "both")


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    """name -> (path, build info read or not, the labels it gives as {key: value})."""
    where = tmp_path_factory.mktemp("programs")
    go_full = str(rewritten_go_binary(where))
    return {"no build info": (go_full, False, {}), "go, version revision source": (go_full, True, GO_FULL),
            "skopeo, source": (real_binary("/usr/bin/skopeo"), True, SKOPEO)}


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """name -> (BuildOptions fields, its labels as {key: value})."""
    builder = LayoutBuilder()
    image = builder.image([[("etc", "dir", None, 0o755)]],
                          {"config": {"Labels": dict({LABEL + k: v for k, v in BASE.items()}, other="kept")}})
    archive = builder.write_tar(str(tmp_path_factory.mktemp("bases") / "labelled.tar"), [ref(image, "base")])
    return {"scratch": ({"base": "scratch"}, {}), "labelled": ({"base_archive": archive}, BASE)}


def _options(mode, values=USER, **kwargs):
    pairs = [(LABEL + key, value) for key, value in sorted(values.items())]
    return zeroimage.ImageOptions(labels=pairs if mode in ("label", "both") else (),
                                  annotations=pairs if mode in ("annotation", "both") else (), **kwargs)


def _inspected(target, platform=None):
    return json.loads(zeroimage.inspect(target, platform=platform, mode="json"))


def _expected(mode, program, base):
    """{key: (label or None, annotation or None)} by the rule: the base's labels, the program's over
    them (its three replace the base's three together), the user's over both, in every place any
    of them would be written."""
    supplied = {k: v for k, v in base.items() if not (program and k in ("version", "revision", "source"))}
    supplied.update(program)
    expected = {}
    for key in KEYS:
        if mode == "none":
            expected[key] = (supplied.get(key), None)
        else:
            label = USER[key] if mode in ("label", "both") or key in supplied else None
            expected[key] = (label, USER[key] if mode in ("annotation", "both") else None)
    return expected


@pytest.mark.parametrize("base_name", ["scratch", "labelled"])
@pytest.mark.parametrize("program_name", ["no build info", "go, version revision source", "skopeo, source"])
@pytest.mark.parametrize("mode", MODES)
def test_one_value_per_key(tmp_path, programs, bases, mode, program_name, base_name):
    path, read_info, program = programs[program_name]
    base_kwargs, base = bases[base_name]
    out = str(tmp_path / "app.tar")
    zeroimage.build(zeroimage.BuildOptions(path, out, target="/app", image=_options(mode), build_info=read_info,
                                           compression_level=1, **base_kwargs))
    seen = _inspected(out)
    labels, annotations = seen["labels"], seen["annotations"]
    for key, (label, annotation) in _expected(mode, program, base).items():
        assert (labels.get(LABEL + key), annotations.get(LABEL + key)) == (label, annotation), key
        stated = {value for value in (label, annotation) if value is not None}
        assert stated == ({USER[key]} if mode != "none" else stated) and len(stated) <= 1, key
    assert labels.get("other") == (None if base_name == "scratch" else "kept"), "other labels are inherited"
    if mode in ("annotation", "both") and program_name.startswith("go") and base_name == "labelled":   # the judge
        skopeo = need_tool("skopeo")
        said = json.loads(subprocess.check_output([skopeo, "inspect", "oci-archive:" + out]))
        raw = json.loads(subprocess.check_output([skopeo, "inspect", "--raw", "oci-archive:" + out]))
        assert {k: v for k, v in said["Labels"].items() if k.startswith(LABEL)} == \
            {LABEL + k: v for k, v in USER.items()} == raw["annotations"]


@pytest.mark.parametrize("key", KEYS)
def test_a_label_and_an_annotation_that_disagree_are_a_usage_error(tmp_path, programs, key):
    options = zeroimage.ImageOptions(labels=[(LABEL + key, USER[key])], annotations=[(LABEL + key, BASE[key])])
    with pytest.raises(zeroimage.UsageError, match="one value per"):
        zeroimage.build(zeroimage.BuildOptions(programs["no build info"][0], str(tmp_path / "app.tar"), base="scratch",
                                               image=options))
    assert not (tmp_path / "app.tar").exists()
    zeroimage.check_image_options(options._replace(labels=[("com.example." + key, "1")],
                                                   annotations=[("com.example." + key, "2")])), "not ours to judge"


# ---- what zeroimage writes as annotations: the base's name and digest (of a registry base) ----


def _registry_base(name="docker.io/library/base:1", digest="sha256:" + "a" * 64, index_digest="sha256:" + "c" * 64,
                   labels=None):
    config = zeroimage.base_config_for(zeroimage.Platform.parse("linux/amd64"))
    if labels:
        config["config"]["Labels"] = labels
    return zeroimage.BaseImage(config, [], zeroimage.OCI_FAMILY, zeroimage.Platform.parse("linux/amd64"), True, name,
                               {zeroimage.ANNOTATION_BASE_NAME: name, zeroimage.ANNOTATION_BASE_DIGEST: digest},
                               {zeroimage.ANNOTATION_BASE_NAME: name, zeroimage.ANNOTATION_BASE_DIGEST: index_digest})


@pytest.mark.parametrize("key", ["base.name", "base.digest"])
@pytest.mark.parametrize("mode", ["label", "annotation", "both"])
def test_the_users_base_name_and_digest_win_over_the_ones_zeroimage_writes(key, mode):
    """As ko and crane do (the user's annotations are applied last): a user who names the base (a
    mirror's image by its canonical name, say) is believed, in the manifest, the index and the label."""
    value = USER.get(key, "sha256:" + "d" * 64)
    options = _options(mode, {key: value})
    layer = zeroimage.LayerResult(zeroimage.bytes_blob(b"x"), "sha256:" + "e" * 64)
    image = zeroimage.assemble_image(_registry_base(), [(layer, "zeroimage: COPY app /app")], ["/app"],
                                     "2024-01-01T00:00:00Z", options)
    labels = image.config["config"].get("Labels") or {}
    assert image.manifest["annotations"][LABEL + key] == value
    assert labels.get(LABEL + key) == (value if mode != "annotation" else None)
    other = ({"base.name": "base.digest", "base.digest": "base.name"})[key]
    assert image.manifest["annotations"][LABEL + other] == _registry_base().annotations[LABEL + other]
    index = zeroimage.make_image_index([image], zeroimage.OCI_FAMILY, zeroimage.image_metadata(
        options, base_annotations=_registry_base().index_annotations, on_index=True)[1])
    assert index.index["annotations"][LABEL + key] == value
    assert index.index["annotations"][LABEL + other] == _registry_base().index_annotations[LABEL + other]


def test_image_metadata_is_the_one_rule():
    """The resolver alone: the user over build info over the base; the base's three go together."""
    base = {LABEL + "version": "1", LABEL + "revision": "r", LABEL + "title": "t", "a": "base"}
    labels, annotations = zeroimage.image_metadata(
        zeroimage.ImageOptions(labels=[("a", "user")], annotations=[(LABEL + "title", "T"), ("b", "x")]),
        base, {zeroimage.ANNOTATION_BASE_NAME: "docker.io/library/b:1"}, {LABEL + "source": "https://github.com/o/r"})
    assert labels == {LABEL + "title": "T", "a": "user", LABEL + "source": "https://github.com/o/r"}
    assert annotations == {zeroimage.ANNOTATION_BASE_NAME: "docker.io/library/b:1", LABEL + "title": "T", "b": "x"}
    assert zeroimage.image_metadata(zeroimage.ImageOptions(), base) == (base, {}), "no program: the base's, as FROM"
    _, on_index = zeroimage.image_metadata(zeroimage.ImageOptions(annotations=[("b", "x")]), base,
                                           {zeroimage.ANNOTATION_BASE_NAME: "n"}, on_index=True)
    assert on_index == {zeroimage.ANNOTATION_BASE_NAME: "n"}, "the index takes only what overrides its own"
    # the base's own base.name/base.digest labels (about its base) give way to what zeroimage says of it
    names = {zeroimage.ANNOTATION_BASE_NAME: "reg/base:1", zeroimage.ANNOTATION_BASE_DIGEST: "sha256:" + "2" * 64}
    inherited = {zeroimage.ANNOTATION_BASE_NAME: "debian:12", zeroimage.ANNOTATION_BASE_DIGEST: "sha256:" + "1" * 64}
    assert zeroimage.image_metadata(zeroimage.ImageOptions(), inherited, names) == (names, names)
    assert zeroimage.image_metadata(zeroimage.ImageOptions(), inherited) == (inherited, {}), \
        "a Docker-format base (nothing said of it): its labels, as FROM"


# ---- several platforms: each image resolved with its own program's build info ----


def test_multi_platform_build_states_the_users_value_in_every_image(tmp_path, programs):
    arm = tmp_path / "app-arm64"
    arm.write_bytes(craft_elf([(".go.buildinfo", go_inline(modinfo="mod\tgithub.com/o/r\tv7.0.0\t\n"))], 183))
    entries = [(zeroimage.Platform.parse("linux/amd64"), programs["go, version revision source"][0]),
               (zeroimage.Platform.parse("linux/arm64"), str(arm))]
    out = str(tmp_path / "multi.tar")
    options = _options("annotation", {"version": "9", "source": "https://example.com/user/app"})
    result = zeroimage.build(zeroimage.BuildOptions(entries, out, base="scratch", target="/app", image=options,
                                                    compression_level=1))
    for image, revision in zip(result.images, (GO_FULL["revision"], None)):
        labels, annotations = image.config["config"]["Labels"], image.manifest["annotations"]
        assert labels[LABEL + "version"] == annotations[LABEL + "version"] == "9"
        assert labels[LABEL + "source"] == annotations[LABEL + "source"] == "https://example.com/user/app"
        assert labels.get(LABEL + "revision") == revision and LABEL + "revision" not in annotations
    for platform in ("linux/amd64", "linux/arm64"):
        seen = _inspected(out, zeroimage.Platform.parse(platform))
        assert seen["labels"][LABEL + "version"] == seen["annotations"][LABEL + "version"] == "9"
        assert not seen["indexAnnotations"], "an index over a scratch base says nothing of a base"


@pytest.mark.interop
def test_multi_platform_build_on_a_registry_base(tmp_path, pki, registry_servers, busybox, busybox_program):
    """A registry base gives each manifest and the index base.name and base.digest; the user's
    --label base.name and --annotation version stand wherever zeroimage writes those keys; skopeo
    reads the index and each image alike."""
    from clients import Client
    from imagetools import multi_platform_base
    client = Client(tmp_path, pki, registry_servers("open"))
    archive = multi_platform_base(tmp_path, busybox)[0]
    client.ok("push", archive, client.ref("meta/base:1"))
    arm = tmp_path / "app-arm64"
    arm.write_bytes(craft_elf([(".go.buildinfo", go_inline(modinfo="mod\tgithub.com/o/r\tv7.0.0\t\n"))], 183))
    target = client.ref("meta/app:1")
    client.ok("build", "--from", client.ref("meta/base:1"), "--push", target, "--target", "/app",
              "--label", LABEL + "base.name=example.com/user/base:1", "--annotation", LABEL + "version=9",
              "linux/amd64=%s" % busybox_program, "linux/arm64=%s" % arm)
    index = json.loads(client.skopeo("inspect", "--raw", "docker://" + target))
    assert index["annotations"][LABEL + "base.name"] == "example.com/user/base:1"
    assert LABEL + "version" not in index["annotations"], "the index states no version to override"
    for desc in index["manifests"]:
        manifest = json.loads(client.skopeo("inspect", "--raw", "docker://%s@%s" % (target.rsplit(":", 1)[0],
                                                                                     desc["digest"])))
        config = json.loads(client.skopeo("inspect", "--config", "docker://%s@%s" % (target.rsplit(":", 1)[0],
                                                                                      desc["digest"])))
        labels = config["config"]["Labels"]
        assert manifest["annotations"][LABEL + "base.name"] == labels[LABEL + "base.name"] == "example.com/user/base:1"
        assert manifest["annotations"][LABEL + "version"] == "9"
        assert labels.get(LABEL + "version") in (None, "9"), "the arm64 program's v7.0.0 gave way"
        assert manifest["annotations"][LABEL + "base.digest"].startswith("sha256:")
    seen = json.loads(client.ok("inspect", "--json", "--platform", "linux/arm64", target).stdout)
    assert seen["labels"][LABEL + "version"] == seen["annotations"][LABEL + "version"] == "9"
    assert seen["indexAnnotations"][LABEL + "base.name"] == "example.com/user/base:1"


def test_the_command_line_as_reported(tmp_path):
    """The issue's case through the CLI, with this machine's Go binary: an annotation of the key that
    build info gives leaves one value, and -v no longer says the build info's label is used."""
    program = real_binary("/usr/bin/skopeo")
    out = tmp_path / "app.tar"
    r = run_cli("build", "-v", "--from", "scratch", "-o", out, "--annotation", LABEL + "source=https://example.com/s",
                program, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "from its build info" not in r.stderr and "Go go1." in r.stderr
    seen = _inspected(str(out))
    assert seen["labels"] == seen["annotations"] == {LABEL + "source": "https://example.com/s"}


def test_a_base_labelled_with_its_own_base_is_said_once(tmp_path, upstream, busybox_program):
    """A registry base whose labels name its own base: the new image's base.name and base.digest labels
    are what zeroimage writes of its base, as its annotations are (one value per key)."""
    name, digest = zeroimage.ANNOTATION_BASE_NAME, zeroimage.ANNOTATION_BASE_DIGEST
    base = "%s/meta/labelled:1" % upstream.host
    ok(run_cli("build", "--from", "scratch", "--label", name + "=docker.io/library/debian:12",
               "--label", digest + "=sha256:" + "1" * 64, "--push", base, busybox_program))
    out = tmp_path / "app.tar"
    ok(run_cli("build", "--from", base, "--target", "/app", "-o", out, busybox_program))
    info = json.loads(ok(run_cli("inspect", "--json", out)).stdout)
    assert info["annotations"][name] == info["labels"][name] == base
    assert info["annotations"][digest] == info["labels"][digest] != "sha256:" + "1" * 64
