"""copy SRC DST and repeated pull --platform (issue 14): registry to registry (within one registry the
layers are mounted; between two they stream from one to the other), archives on either side, chosen
platforms. Against the real registry in its three modes, through the fault-injecting proxy and the
quirk proxy, with unit tests of the platform selection (no network) first."""

import json
import os
import tempfile
import tracemalloc

import pytest

import registries
import zeroimage
from binaries import make_elf
from clients import MODES, Client
from conftest import need_tool
from helpers import fails, ok, sh
from imagetools import DOCKER, OCI, DockerSaveBuilder, LayoutBuilder, image_of, multi_platform_base, read_archive, \
    real_base, ref, run_cli, sha256

pytestmark = pytest.mark.interop

AMD64, ARM64, ARMV7 = (zeroimage.Platform.parse(p) for p in ("linux/amd64", "linux/arm64", "linux/arm/v7"))


def three_platforms(tmp_path, busybox, family=OCI, name="three.tar"):
    """An archive of an index (OCI, with an annotation; or a Docker manifest list) of three images:
    amd64, arm64/v8, arm/v7. Returns (path, builder, [descriptors], top descriptor)."""
    b = LayoutBuilder()
    images = [real_base(b, busybox, platform=p, family=family)
              for p in (("linux", "amd64", ""), ("linux", "arm64", "v8"), ("linux", "arm", "v7"))]
    index = {"schemaVersion": 2, "mediaType": family["index"], "manifests": images}
    if family is OCI:
        index["annotations"] = {"org.opencontainers.image.source": "https://example.com/src"}
    data = json.dumps(index, indent=1).encode()
    top = {"mediaType": family["index"], "digest": b.add(data), "size": len(data)}
    return b.write_tar(tmp_path / name, [ref(top, "three")]), b, images, top


def error_line(r, code):
    """The one error line of a failed run; nothing on stdout."""
    assert r.returncode == code and "Traceback" not in r.stderr, (r.returncode, r.stderr)
    assert r.stdout == "", r.stdout
    lines = [line for line in r.stderr.splitlines() if ": error: " in line]
    assert len(lines) == 1 and r.stderr.strip().splitlines()[-1] == lines[0], r.stderr
    return lines[0]


def blob_counts(r):
    """(uploaded, mounted, already there) from -v's line."""
    line = next(line for line in r.stderr.splitlines() if line.startswith("zeroimage: blobs: "))
    words = line.split()
    return int(words[2]), int(words[4]), int(words[6])


# ---- the selection, no network ----


@pytest.fixture
def three(tmp_path, busybox):
    return three_platforms(tmp_path, busybox)


def _candidates(layout, top):
    return zeroimage.walk_index(zeroimage.make_index(zeroimage.OCI_FAMILY, [top]), layout, "three.tar")


def test_select_platforms_gives_each_image_once_in_the_index_order(three):
    path, _, images, top = three
    with zeroimage.open_archive(path) as layout:
        candidates = _candidates(layout, top)
        chosen = zeroimage.select_platforms(candidates, [ARMV7, AMD64, ARM64, AMD64], "three.tar")
        assert [c.descriptor["digest"] for c in chosen] == [d["digest"] for d in images]
        assert zeroimage.select_platforms(candidates, [zeroimage.Platform.parse("linux/arm64/v8"), ARM64],
                                          "x") == [candidates[1]]
        with pytest.raises(zeroimage.PlatformNotFoundError) as e:
            zeroimage.select_platforms(candidates, [AMD64, zeroimage.Platform.parse("linux/s390x")], "three.tar")
        assert "three.tar has no image for linux/s390x (it has: linux/amd64, linux/arm/v7, linux/arm64/v8)" in str(e.value)
        # None: as pull picks with no --platform (this machine's, of an index)
        assert zeroimage.select_platforms(candidates, [None], "x")[0].platform.matches(zeroimage.host_platform())


def test_selected_index_keeps_the_family_entries_and_annotations():
    platform = {"os": "linux", "architecture": "arm64", "variant": "v8", "os.features": ["x"]}
    listed = zeroimage.Candidate({"mediaType": DOCKER["manifest"], "digest": "sha256:" + "a" * 64, "size": 10,
                                  "platform": platform, "annotations": {"k": "v"}}, ARM64)
    unlisted = zeroimage.Candidate({"mediaType": DOCKER["manifest"], "digest": "sha256:" + "b" * 64, "size": 11},
                                   AMD64)
    top = {"mediaType": DOCKER["index"], "manifests": [], "annotations": {"a": "b"}}
    index = zeroimage.selected_index(top, [listed, unlisted], []).index
    assert index == {"schemaVersion": 2, "mediaType": DOCKER["index"], "manifests": [
        {"mediaType": DOCKER["manifest"], "digest": "sha256:" + "a" * 64, "size": 10, "platform": platform},
        {"mediaType": DOCKER["manifest"], "digest": "sha256:" + "b" * 64, "size": 11,
         "platform": {"os": "linux", "architecture": "amd64"}}]}, "Docker's list: no annotations anywhere"
    oci = dict(top, mediaType=OCI["index"], annotations={"a": "b", "n": 1})
    chosen = [c._replace(descriptor=dict(c.descriptor, mediaType=OCI["manifest"])) for c in (listed, unlisted)]
    made = zeroimage.selected_index(oci, chosen, [])
    assert made.kind == OCI["index"] and made.index["annotations"] == {"a": "b"}
    assert made.index["manifests"][0]["annotations"] == {"k": "v"}
    assert made.digest == sha256(zeroimage.canonical_json(made.index))


def test_read_selection_of_a_layout(three):
    path, b, images, top = three
    with zeroimage.open_archive(path) as layout:
        whole = zeroimage.read_selection(layout, top, path, None)
        assert whole.digest == top["digest"] and len(whole.children) == 3
        one = zeroimage.read_selection(layout, top, path, [ARM64])
        assert isinstance(one, zeroimage.Image) and one.digest == images[1]["digest"]
        assert one.manifest_blob.open().read() == b.blobs[images[1]["digest"]], "the image, byte for byte"
        two = zeroimage.read_selection(layout, top, path, [ARMV7, AMD64])
        assert [d["digest"] for d in two.index["manifests"]] == [images[0]["digest"], images[2]["digest"]]
        assert two.index["annotations"] == {"org.opencontainers.image.source": "https://example.com/src"}
        assert two.digest != top["digest"] and [c.digest for c in two.children] == [images[0]["digest"],
                                                                                    images[2]["digest"]]
        assert zeroimage.read_selection(layout, top, path, [AMD64, ARM64, ARMV7]).digest == top["digest"], \
            "every platform of the index: the index itself, byte for byte"


@pytest.mark.parametrize("text, expected", [
    ("app.tar", ("app.tar", None)),
    ("./out/app.tar.gz", ("./out/app.tar.gz", None)),
    ("app.tar:alpine:3.19", ("app.tar", "docker.io/library/alpine:3.19")),
    ("/x/app.oci:reg.example.com/a/b", ("/x/app.oci", "reg.example.com/a/b:latest")),
    ("./odd:name", ("./odd:name", None)),
    ("registry.example.com/app:1", "registry.example.com/app:1"),
    ("alpine", "docker.io/library/alpine:latest"),
])
def test_copy_destination(text, expected):
    got = zeroimage.copy_destination(text)
    if isinstance(got, zeroimage.Reference):
        assert str(got) == expected
    else:
        assert (got[0], str(got[1]) if got[1] else None) == expected


@pytest.mark.parametrize("text", ["app.tar:x@sha256:" + "0" * 64, "app.tar:UPPER", "Bad/Name:1", "app.tar:x:a__b"])
def test_copy_destination_refused(text):
    with pytest.raises(zeroimage.ZeroImageError) as e:
        zeroimage.copy_destination(text)
    assert e.value.exit_code == 2


# ---- archives only ----


def test_copy_archive_to_archive(tmp_path, three):
    path, b, images, top = three
    r = ok(run_cli("copy", path, tmp_path / "all.tar"))
    assert r.stdout.strip() == top["digest"] and "wrote" in r.stderr
    files = read_archive(str(tmp_path / "all.tar"))
    assert "manifest.json" not in files and files["blobs/sha256/" + top["digest"][7:]] == b.blobs[top["digest"]]
    r = ok(run_cli("copy", "--platform", "linux/arm64", path, tmp_path / "arm.tar"))
    index, manifest, config, _ = image_of(str(tmp_path / "arm.tar"))
    assert r.stdout.strip() == images[1]["digest"] == index["manifests"][0]["digest"]
    assert config["architecture"] == "arm64" and "manifest.json" in read_archive(str(tmp_path / "arm.tar"))
    r = ok(run_cli("copy", "--json", "--platform", "linux/arm/v7", "--platform", "linux/amd64", path,
                   "%s:mirror/three:2" % (tmp_path / "two.tar")))
    value = json.loads(r.stdout)
    assert value["sourceDigest"] == top["digest"] != value["digest"]
    assert value["platforms"] == ["linux/amd64", "linux/arm/v7"] and value["mediaType"] == OCI["index"]
    assert value["path"] == str(tmp_path / "two.tar") and value["size"] == os.path.getsize(value["path"])
    assert "a new index of linux/amd64, linux/arm/v7: its digest is %s, not the source's %s" % (
        value["digest"], top["digest"]) in r.stderr
    entry = json.loads(read_archive(str(tmp_path / "two.tar"))["index.json"])["manifests"][0]
    assert entry["digest"] == value["digest"]
    assert entry["annotations"]["io.containerd.image.name"] == "docker.io/mirror/three:2"


def test_copy_of_a_docker_save_archive_gzips_its_layers(tmp_path, busybox):
    save = DockerSaveBuilder()
    save.image([[("bin", "dir", None, 0o755), ("bin/busybox", "file", busybox, 0o755)]], {"config": {}},
               tags=["saved/app:1"])
    save.write(tmp_path / "save.tar")
    r = ok(run_cli("copy", tmp_path / "save.tar", tmp_path / "oci.tar"))
    assert "gzip-compressed" in r.stderr
    index, manifest, _, layers = image_of(str(tmp_path / "oci.tar"))
    assert manifest["layers"][0]["mediaType"] == DOCKER["layer"] and layers[0][:2] == b"\x1f\x8b"
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == "docker.io/saved/app:1"


def test_bad_input_is_one_line(tmp_path, busybox, three):
    path, _, _, _ = three
    single = LayoutBuilder()
    single_path = single.write_tar(tmp_path / "one.tar", [ref(real_base(single, busybox), "1")])
    two = LayoutBuilder()
    two_path = two.write_tar(tmp_path / "two.tar", [ref(real_base(two, busybox), "a"),
                                                   ref(real_base(two, busybox, platform=("linux", "arm64", "")), "b")])
    out = tmp_path / "out.tar"
    cases = [
        (2, ["copy", path], "the following arguments are required: DST"),
        (2, ["copy", "Bad::Ref", out], "SRC: invalid reference"),
        (2, ["copy", path, "registry.example.com/Bad"], "argument DST: invalid reference"),
        (2, ["copy", path, "%s:x@sha256:%s" % (out, "0" * 64)], "has no digest"),
        (2, ["copy", "--platform", "linux", path, out], "invalid platform"),
        (1, ["copy", tmp_path / "missing.tar", out], "missing.tar: no such file or directory"),
        (2, ["copy", path, path], "SRC and DST are both"),
        (2, ["copy", "registry.example.com/a:1", "registry.example.com/a:1"], "SRC and DST are both"),
        # the same tag, whatever digest DST carries, or another name of the same loopback registry
        (2, ["copy", "--platform", "linux/amd64", "127.0.0.1:5999/a:1", "127.0.0.1:5999/a:1@sha256:" + "1" * 64],
         "SRC and DST are both"),
        (2, ["copy", "127.0.0.1:5999/a:1", "localhost:5999/a:1"], "SRC and DST are both"),
        (2, ["copy", "registry.example.com/a", "registry.example.com/a:latest"], "SRC and DST are both"),
        (1, ["copy", "--platform", "linux/s390x", path, out],
         "has no image for linux/s390x (it has: linux/amd64, linux/arm/v7, linux/arm64/v8)"),
        (1, ["copy", "--platform", "linux/arm64", single_path, out], "has no image for linux/arm64 (it has: linux/amd64)"),
        (1, ["copy", two_path, out], "holds several images; name one as"),
        (1, ["copy", str(two_path) + ":c", out], "has no image named 'c'"),
        (2, ["pull", "--all-platforms", "--platform", "linux/amd64", "127.0.0.1:1/x:1"], "not allowed with"),
        (2, ["pull", "--load", "--platform", "linux/amd64", "--platform", "linux/arm64", "127.0.0.1:1/x:1"],
         "a second --platform"),
    ]
    for code, args, words in cases:
        line = error_line(run_cli(*args, cwd=str(tmp_path)), code)
        assert words in line, (args, line)
    assert not out.exists() and sorted(os.listdir(str(tmp_path))) == ["one.tar", "three.tar", "two.tar"]
    ok(run_cli("copy", str(two_path) + ":b", out))
    assert image_of(str(out))[2]["architecture"] == "arm64"


# ---- against the registry ----


@pytest.fixture(params=MODES)
def client(request, tmp_path, pki, registry_servers):
    c = Client(tmp_path, pki, registry_servers(request.param))
    c.login()
    return c


def raw_digest(client, name):
    """The digest of NAME's manifest as skopeo reads it raw (the bytes the registry holds)."""
    return sha256(client.skopeo("inspect", "--raw", "docker://" + client.ref(name)).encode())


def test_copy_within_one_registry_mounts_and_uploads_nothing(client, busybox_program):
    src = client.ok("build", "--push", client.ref("copy/one/src:1"), busybox_program).stdout.strip()
    digest = src.split("@")[1]
    r = client.ok("copy", "-v", client.ref("copy/one/src:1"), client.ref("copy/one/dst:1"))
    assert r.stdout == client.ref("copy/one/dst:1") + "@" + digest + "\n"
    assert blob_counts(r) == (0, 3, 0), "layers and config mounted, nothing uploaded"
    assert "uploaded sha256" not in r.stderr and not any(" PATCH " in line for line in r.stderr.splitlines())
    assert raw_digest(client, "copy/one/dst:1") == digest
    again = client.ok("copy", "-v", client.ref("copy/one/src:1"), client.ref("copy/one/dst:2"))
    assert blob_counts(again) == (0, 0, 3), "HEAD first: what is there is skipped"
    # by digest, to another tag in the same repository: nothing moves at all
    same = client.ok("copy", "-v", src, client.ref("copy/one/src:again"))
    assert blob_counts(same) == (0, 0, 3) and same.stdout.strip().endswith("@" + digest)
    # the same copy again: the tag names that digest already, so nothing is asked of its blobs, nothing put
    repeated = client.ok("copy", "-v", client.ref("copy/one/src:1"), client.ref("copy/one/dst:1"))
    assert repeated.stdout == r.stdout
    assert "copy/one/dst:1 names %s already: nothing sent" % digest[:19] in repeated.stderr, repeated.stderr
    sent = [line for line in repeated.stderr.splitlines() if " -> " in line and "/copy/one/dst/" in line]
    assert [line.split()[1] for line in sent if "/manifests/" in line] == ["HEAD"], sent
    assert not any("/blobs/sha256:" in line for line in sent), sent


def test_a_user_who_may_push_only_to_their_repositories(tmp_path, pki, registry_servers, busybox_program):
    """Token auth: bob may pull anything and push only under bob/; the mount from alice's repository works."""
    server = registry_servers("token")
    alice = Client(tmp_path, pki, server)
    alice.login()
    alice.ok("build", "--push", alice.ref("copy/alice/app:1"), busybox_program)
    (tmp_path / "bob").mkdir()
    bob = Client(tmp_path / "bob", pki, server)
    bob.login("bob")
    r = bob.ok("copy", "-v", bob.ref("copy/alice/app:1"), bob.ref("bob/app:1"))
    assert blob_counts(r) == (0, 3, 0)
    line = error_line(bob("copy", bob.ref("copy/alice/app:1"), bob.ref("copy/alice/stolen:1")), 1)
    assert "cannot push %s" % bob.ref("copy/alice/stolen:1") in line and "access denied to bob" in line
    line = error_line(bob("copy", bob.ref("copy/nothing/here:1"), bob.ref("bob/x:1")), 1)
    assert "cannot pull %s" % bob.ref("copy/nothing/here:1") in line and "not found" in line


@pytest.fixture(params=[("open", "token"), ("token", "basic"), ("basic", "open")], ids=lambda p: "-".join(p))
def two_registries(request, tmp_path, pki, registry_servers):
    """Two registries, one user logged in to both (one DOCKER_CONFIG)."""
    a = Client(tmp_path, pki, registry_servers(request.param[0]))
    b = Client(tmp_path, pki, registry_servers(request.param[1]))
    b.home, b.env = a.home, a.env
    a.login()
    b.login()
    return a, b


def test_copy_across_two_registries_streams_and_keeps_the_digest(tmp_path, two_registries, busybox):
    a, b = two_registries
    archive, _, _, _, top = multi_platform_base(tmp_path, busybox)
    a.ok("push", archive, a.ref("copy/across/src:1"))
    r = a.ok("copy", "-v", a.ref("copy/across/src:1"), b.ref("copy/across/dst:1"))
    assert r.stdout == b.ref("copy/across/dst:1") + "@" + top["digest"] + "\n"
    uploaded, mounted, there = blob_counts(r)
    assert uploaded >= 4 and mounted == 0, r.stderr
    gets = [line for line in r.stderr.splitlines() if " GET " in line and "/blobs/sha256:" in line]
    assert gets and all(a.server.host in line for line in gets), "layers come from the source registry"
    assert raw_digest(b, "copy/across/dst:1") == top["digest"], "the index, byte for byte"
    index = json.loads(b.skopeo("inspect", "--raw", "docker://" + b.ref("copy/across/dst:1")))
    for desc in index["manifests"]:     # every child (the attestation too) is there under its digest
        assert raw_digest(b, "copy/across/dst@" + desc["digest"]) == desc["digest"]
    again = a.ok("copy", "-v", a.ref("copy/across/src:1"), b.ref("copy/across/dst:2"))
    assert blob_counts(again)[:2] == (0, 0)


def test_copy_multi_platform_index_with_and_without_platform(tmp_path, client, busybox):
    archive, b, amd, arm, top = multi_platform_base(tmp_path, busybox)
    client.ok("push", archive, client.ref("copy/multi/src:1"))
    src = client.ref("copy/multi/src:1")
    whole = client.ok("copy", src, client.ref("copy/multi/all:1"))
    assert whole.stdout.strip().endswith("@" + top["digest"]) and "new index" not in whole.stderr
    one = client.ok("copy", "--platform", "linux/arm64", src, client.ref("copy/multi/arm:1"))
    assert one.stdout.strip() == client.ref("copy/multi/arm:1") + "@" + arm["digest"]
    assert client.skopeo("inspect", "--raw", "docker://" + client.ref("copy/multi/arm:1")).encode() == \
        b.blobs[arm["digest"]], "one platform: its manifest byte for byte"
    two = client.ok("copy", "--json", "--platform", "linux/arm64", "--platform", "linux/amd64", src,
                    client.ref("copy/multi/two:1"))
    value = json.loads(two.stdout)
    assert value["sourceDigest"] == top["digest"] != value["digest"]
    assert value["reference"] == client.ref("copy/multi/two:1") + "@" + value["digest"]
    assert value["platforms"] == ["linux/amd64", "linux/arm64/v8"] and value["mediaType"] == OCI["index"]
    assert "a new index of linux/amd64, linux/arm64/v8" in two.stderr
    raw = client.skopeo("inspect", "--raw", "docker://" + client.ref("copy/multi/two:1"))
    assert sha256(raw.encode()) == value["digest"]
    index = json.loads(raw)
    assert index["mediaType"] == OCI["index"]
    assert [d["digest"] for d in index["manifests"]] == [amd["digest"], arm["digest"]], "no attestation"
    other = client.ok("copy", "--platform", "linux/amd64", "--platform", "linux/arm64/v8", src,
                      client.ref("copy/multi/two:2"))
    assert other.stdout.strip().endswith("@" + value["digest"]), "the same choice, the same index"


def test_copy_docker_manifest_list(tmp_path, client, busybox):
    archive, b, images, top = three_platforms(tmp_path, busybox, family=DOCKER)
    client.ok("push", archive, client.ref("copy/list/src:1"))
    src = client.ref("copy/list/src:1")
    assert client.ok("copy", src, client.ref("copy/list/all:1")).stdout.strip().endswith("@" + top["digest"])
    r = client.ok("copy", "--platform", "linux/arm/v7", "--platform", "linux/amd64", src, client.ref("copy/list/two:1"))
    raw = client.skopeo("inspect", "--raw", "docker://" + client.ref("copy/list/two:1"))
    assert r.stdout.strip().endswith("@" + sha256(raw.encode()))
    listed = json.loads(raw)
    assert listed["mediaType"] == DOCKER["index"] and "annotations" not in raw
    assert [(d["mediaType"], d["digest"], d["platform"]) for d in listed["manifests"]] == [
        (DOCKER["manifest"], images[0]["digest"], images[0]["platform"]),
        (DOCKER["manifest"], images[2]["digest"], images[2]["platform"])]
    every = client.ok("copy", "--platform", "linux/arm/v7", "--platform", "linux/amd64", "--platform", "linux/arm64",
                      src, client.ref("copy/list/every:1"))
    assert every.stdout.strip().endswith("@" + top["digest"]) and "new index" not in every.stderr


def test_copy_archive_to_registry_and_back(tmp_path, client, busybox):
    archive, b, amd, arm, top = multi_platform_base(tmp_path, busybox)
    r = client.ok("copy", "--json", archive, client.ref("copy/tar/app:1"))
    value = json.loads(r.stdout)
    assert (value["digest"], value["reference"]) == (top["digest"], client.ref("copy/tar/app:1") + "@" + top["digest"])
    assert client.ok("copy", str(archive) + ":multi", client.ref("copy/tar/named:1")).stdout.strip().endswith(
        "@" + top["digest"])
    assert raw_digest(client, "copy/tar/app:1") == top["digest"]
    back = tmp_path / "back.tar"
    assert client.ok("copy", client.ref("copy/tar/app:1"), back).stdout.strip() == top["digest"]
    files = read_archive(str(back))
    assert "manifest.json" not in files and files["blobs/sha256/" + top["digest"][7:]] == b.blobs[top["digest"]]
    entry = json.loads(files["index.json"])["manifests"][0]
    assert entry["annotations"]["io.containerd.image.name"] == client.ref("copy/tar/app:1")
    arm_tar = tmp_path / "arm.tar"
    r = client.ok("copy", "--json", "--platform", "linux/arm64", client.ref("copy/tar/app:1"), arm_tar)
    value = json.loads(r.stdout)
    assert value["digest"] == arm["digest"] and value["path"] == str(arm_tar) and value["sourceDigest"] == top["digest"]
    assert image_of(str(arm_tar))[2]["architecture"] == "arm64" and "manifest.json" in read_archive(str(arm_tar))
    line = error_line(client("copy", client.ref("copy/tar/none:1"), tmp_path / "none.tar"), 1)
    assert "cannot pull %s" % client.ref("copy/tar/none:1") in line and "not found" in line
    assert not (tmp_path / "none.tar").exists()


def test_pull_several_platforms(tmp_path, client, busybox):
    archive, b, images, top = three_platforms(tmp_path, busybox)
    client.ok("push", archive, client.ref("copy/pull/three:1"))
    src = client.ref("copy/pull/three:1")
    r = client.ok("pull", "--json", "--platform", "linux/arm/v7", "--platform", "linux/arm64", "-o",
                  tmp_path / "two.tar", src)
    value = json.loads(r.stdout)
    assert value["platforms"] == ["linux/arm64/v8", "linux/arm/v7"] and value["mediaType"] == OCI["index"]
    assert "a new index of linux/arm64/v8, linux/arm/v7" in r.stderr
    files = read_archive(str(tmp_path / "two.tar"))
    assert "manifest.json" not in files
    entry = json.loads(files["index.json"])["manifests"][0]
    assert entry["digest"] == value["digest"] != top["digest"]
    index = json.loads(files["blobs/sha256/" + value["digest"][7:]])
    assert [d["digest"] for d in index["manifests"]] == [images[1]["digest"], images[2]["digest"]]
    assert index["annotations"] == {"org.opencontainers.image.source": "https://example.com/src"}
    # one --platform: the image, as ever
    r = client.ok("pull", "--platform", "linux/arm64", "-o", tmp_path / "arm.tar", src)
    assert r.stdout.strip() == images[1]["digest"] and "new index" not in r.stderr
    assert "manifest.json" in read_archive(str(tmp_path / "arm.tar"))
    # the archive of two platforms pushes back under the same digest
    back = client.ok("push", tmp_path / "two.tar", client.ref("copy/pull/two:1")).stdout.strip()
    assert back.endswith("@" + value["digest"]) and raw_digest(client, "copy/pull/two:1") == value["digest"]


def test_library_copy_streams_registry_to_registry_without_disk(tmp_path, pki, registry_servers, monkeypatch):
    """zeroimage.copy() between two registries: no temporary file, and memory that does not grow with
    the layer (a 24 MiB incompressible one)."""
    src, dst = registry_servers("open"), registry_servers("basic")
    client = Client(tmp_path, pki, dst)
    client.login()
    program = tmp_path / "big"
    program.write_bytes(make_elf(62) + os.urandom(24 << 20))
    ok(run_cli("build", "--from", "scratch", "--compression-level", "1", "--push", "%s/copy/big:1" % src.host,
               program))

    def no_disk(*args, **kwargs):
        raise AssertionError("copy made a temporary file")
    for name in ("mkstemp", "mkdtemp", "TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile"):
        monkeypatch.setattr(tempfile, name, no_disk)
    tracemalloc.start()
    try:
        saved = zeroimage.copy("%s/copy/big:1" % src.host, client.ref("copy/big:1"), environ=dict(os.environ, **client.env))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert saved.where == client.ref("copy/big:1") + "@" + saved.digest and saved.source_digest == saved.digest
    assert peak < 12 << 20, "peak %.1f MiB for a 24 MiB layer" % (peak / 1048576.0)
    monkeypatch.undo()
    assert raw_digest(client, "copy/big:1") == saved.digest


# ---- faults and quirks ----


@pytest.fixture
def source(upstream, busybox_program):
    """An image pushed straight to the registry: faults/copy:1, and its digest."""
    return ok(run_cli("build", "--push", "%s/faults/copy:1" % upstream.host, busybox_program)).stdout.strip().split("@")[1]


@pytest.mark.parametrize("mode, seen", [("flaky", 503), ("cut", "cut")])
def test_copy_from_a_faulty_registry_is_retried(tmp_path, proxy, upstream, source, mode, seen):
    """Read through the proxy (another host: every layer streams from it into the registry again)."""
    proxy.mode = mode
    dst = "%s/faults/copied-%s:1" % (upstream.host, mode)
    r = ok(run_cli("copy", "%s/faults/copy:1" % proxy.host, dst))
    assert r.stdout.strip() == dst + "@" + source
    assert any(s == seen for _, _, s in proxy.seen), proxy.seen
    ok(run_cli("pull", "-o", tmp_path / "back.tar", dst))


def test_copy_to_a_registry_that_fails_an_upload_sends_it_again_from_the_source(tmp_path, proxy, upstream, source):
    """The closing PUT of each upload fails once: it is sent again to the same upload session, its
    bytes streamed anew from the source registry (the body is an opener, not a spent stream)."""
    proxy.mode = "upload"
    dst = "%s/faults/uploaded:1" % proxy.host
    r = ok(run_cli("copy", "%s/faults/copy:1" % upstream.host, dst))
    assert r.stdout.strip() == dst + "@" + source
    failed_puts = [path.split("?")[0] for _, path, s in proxy.seen if s == 500]
    assert len(failed_puts) == 3, "each blob's first upload failed"
    for session in failed_puts:
        assert [s for method, p, s in proxy.seen if method == "PUT" and p.split("?")[0] == session] == [500, 201]
    proxy.mode = "pass"
    ok(run_cli("pull", "-o", tmp_path / "back.tar", dst))


def test_copy_of_a_corrupted_blob_is_refused_and_tags_nothing(tmp_path, proxy, upstream, source):
    proxy.mode = "corrupt"
    line = fails(run_cli("copy", "%s/faults/copy:1" % proxy.host, "%s/faults/never:1" % upstream.host), 1,
                 "does not match")
    assert line.count("sha256:") >= 2
    r = run_cli("inspect", "%s/faults/never:1" % upstream.host)
    assert r.returncode == 1 and "not found" in r.stderr, "no manifest was pushed"
    fails(run_cli("copy", "%s/faults/copy:1" % proxy.host, tmp_path / "never.tar"), 1, "does not match")
    assert not (tmp_path / "never.tar").exists()


def test_copy_to_a_registry_that_refuses_oci_pushes_the_docker_encoding(tmp_path, upstream, source):
    quirks = registries.QuirkProxy(upstream, mode="no-oci-415")
    try:
        dst = "%s/quirks/copy:1" % quirks.host
        r = ok(run_cli("copy", "%s/faults/copy:1" % upstream.host, dst))
        digest = r.stdout.strip().split("@")[1]
        assert digest != source and "refuses OCI manifests" in r.stderr and source in r.stderr
        raw = sh(need_tool("skopeo"), "inspect", "--raw", "--tls-verify=false", "docker://%s/quirks/copy:1"
                 % upstream.host)
        assert sha256(raw.encode()) == digest and json.loads(raw)["mediaType"] == DOCKER["manifest"]
        line = fails(run_cli("copy", "%s/faults/copy:1" % upstream.host, "%s/quirks/pinned@%s" % (quirks.host, source)), 1,
                     "refuses OCI")
        assert "name a tag instead" in line and "--media-types" not in line
    finally:
        quirks.close()


def _bent_tag_question(how):
    """A fake registry (tests/hostile_fakes.py) whose answer to the HEAD of a tag of repository ``pushed``
    is bent ``how``; it counts them in ``heads``."""
    import hostile_fakes

    class Bent(hostile_fakes.FakeRegistry):
        heads = 0

        def manifest(self, h, repo, ref, query, body):
            if h.command != "HEAD" or repo != "pushed" or ref.startswith("sha256:"):
                return super().manifest(h, repo, ref, query, body)
            self.heads += 1
            if how in (500, 403):
                return self.error(h, how, "UNKNOWN", "bent")
            h.send_response(200)
            if how == "huge header":
                h.send_header("Docker-Content-Digest", "sha256:" + "a" * 100000)
            elif how == "many headers":
                for n in range(500):
                    h.send_header("X-%d" % n, "y")
            elif how == "no digest":
                h.send_header("Docker-Content-Digest", "sha256:" + "z" * 64)       # then GET: 404, no such tag
            h.send_header("Content-Length", "0")
            if how == "drip":       # its head never ends
                h.wfile.write(b"X-Slow: ")
                while not self.stop.wait(0.2):
                    h.wfile.write(b"a")
                return
            h.end_headers()

    return Bent()


@pytest.mark.parametrize("how", [500, 403, "huge header", "many headers", "no digest", "drip"])
def test_a_tag_that_cannot_be_asked_is_pushed_all_the_same(tmp_path, monkeypatch, capsys, prog, how):
    """What the tag names is asked only to spare a push: a question that fails (an error status, a head
    past http.client's caps, a head that never ends, no usable digest) is a debug line, and the push
    goes on, after the transport's own bounded tries."""
    image = tmp_path / "image.tar"
    assert zeroimage.main(["build", "-q", "--from", "scratch", "-o", str(image), str(prog)]) == 0
    monkeypatch.setattr(zeroimage, "backoff_delay", lambda attempt: 0.0)
    monkeypatch.setattr(zeroimage, "READ_TIMEOUT", 0.5)      # (the drip: each try given up after this)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "config"))
    monkeypatch.setenv("NO_PROXY", "*")
    capsys.readouterr()
    fake = _bent_tag_question(how)
    try:
        assert zeroimage.main(["push", "-v", str(image), "%s/pushed:1" % fake.host]) == 0
        out, err = capsys.readouterr()
        digest = out.strip().rsplit("@", 1)[1]
        assert fake.tags[("pushed", "1")] == digest
        assert 1 <= fake.heads <= zeroimage.MAX_ATTEMPTS
        if how != "no digest":
            assert "pushed:1: what its tag names could not be asked (" in err, err
        assert "nothing sent" not in err and "Traceback" not in err
    finally:
        fake.close()
