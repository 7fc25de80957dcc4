"""mutate, append and rebase (issue 25 items 1-3): an existing image made into a new one. Offline on
archives first (the config, the layers, what is refused), then against the real docker-registry:
layers mounted within one registry, a rebased image judged by skopeo and run by runc on its new base,
a multi-platform index rebased per platform, an appended tree seen by umoci."""

import json
import os
import subprocess
import uuid

import pytest

import zeroimage
from binaries import elf_for
from clients import Client
from conftest import need_tool
from helpers import fails, ok, run_image, sh
from imagetools import DOCKER, OCI, LayoutBuilder, fhs_base, image_of, layer_members, multi_platform_base, \
    read_archive, real_base, ref, run_cli

AMD64, ARM64 = zeroimage.Platform.parse("linux/amd64"), zeroimage.Platform.parse("linux/arm64")


def base_layers(busybox, version):
    """Two layers of a real base: busybox with /bin/sh, and /etc/base-version saying ``version``."""
    return [[("bin", "dir", None, 0o755), ("bin/busybox", "file", busybox, 0o755),
             ("bin/sh", "symlink", "busybox", 0o777), ("tmp", "dir", None, 0o1777)],
            [("etc", "dir", None, 0o755), ("etc/base-version", "file", ("base %s\n" % version).encode(), 0o644)]]


def versioned_base(tmp_path, busybox, version, platforms=(("linux", "amd64", ""),), family=OCI, name=None):
    """An archive of a two-layer base of ``version`` (one image, or an index of ``platforms``):
    (path, [image descriptors], top descriptor)."""
    b = LayoutBuilder()
    config = {"config": {"Env": ["PATH=/bin", "BASE=%s" % version], "Cmd": ["/bin/sh"],
                         "Labels": {"org.opencontainers.image.base.name": "docker.io/library/debian:12"}},
              "history": [{"created_by": "base layer 1"}, {"created_by": "ENV BASE", "empty_layer": True},
                          {"created_by": "base layer 2"}]}
    images = [b.image(base_layers(busybox, version), config, platform=p, family=family) for p in platforms]
    top = images[0] if len(images) == 1 else b.index(images, family=family)
    path = b.write_tar(str(tmp_path / (name or "base-%s.tar" % version)), [ref(top, "base:%s" % version)])
    return path, images, top


def config_and_manifest(result):
    image = result.images[0]
    return image.config, image.manifest


# ---- mutate, offline ----


def test_mutate_entrypoint_with_arguments_drops_the_cmd_and_keeps_the_layers(tmp_path, busybox):
    base, _, _ = versioned_base(tmp_path, busybox, 1)
    out = tmp_path / "out.tar"
    ok(run_cli("mutate", "--entrypoint", "/bin/busybox", "--entrypoint-arg", "sh", "--entrypoint-arg=-c",
               "-o", out, base))
    _, manifest, config, _ = image_of(str(out))
    _, before, before_config, _ = image_of(base)
    assert config["config"]["Entrypoint"] == ["/bin/busybox", "sh", "-c"] and "Cmd" not in config["config"]
    assert manifest["layers"] == before["layers"], "layers carried over as they are"
    assert config["history"] == before_config["history"] and config["rootfs"] == before_config["rootfs"]
    # --cmd given with it stays; new arguments alone go to the entrypoint there
    again = tmp_path / "again.tar"
    ok(run_cli("mutate", "--entrypoint-arg", "serve", "--cmd=--port=1", "-o", again, out))
    assert image_of(str(again))[2]["config"]["Entrypoint"] == ["/bin/busybox", "serve"]
    assert image_of(str(again))[2]["config"]["Cmd"] == ["--port=1"]
    fails(run_cli("mutate", "--entrypoint-arg", "x", "-o", tmp_path / "no.tar", base), 1, "no entrypoint to give")


def test_mutate_every_image_option(tmp_path, busybox):
    base, _, _ = versioned_base(tmp_path, busybox, 1)
    out = tmp_path / "out.tar"
    r = ok(run_cli("mutate", "--json", "--env", "MODE=prod", "--env", "BASE=2", "--label", "team=core",
                   "--annotation", "org.example.note=hi", "--user", "65532:65532", "--workdir", "/srv",
                   "--expose", "8080", "--expose", "53/udp", "-o", out, base))
    _, manifest, config, _ = image_of(str(out))
    assert json.loads(r.stdout)["digest"] == json.loads(read_archive(str(out))["index.json"])["manifests"][0]["digest"]
    runtime = config["config"]
    assert runtime["Env"] == ["PATH=/bin", "BASE=2", "MODE=prod"] and runtime["Labels"]["team"] == "core"
    assert runtime["User"] == "65532:65532" and runtime["WorkingDir"] == "/srv"
    assert runtime["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}} and runtime["Cmd"] == ["/bin/sh"]
    assert manifest["annotations"]["org.example.note"] == "hi"


def test_mutate_refuses_annotations_on_a_docker_image_and_asks_for_something_to_change(tmp_path, busybox):
    docker, _, _ = versioned_base(tmp_path, busybox, 1, family=DOCKER, name="docker.tar")
    line = fails(run_cli("mutate", "--annotation", "a=b", "-o", tmp_path / "x.tar", docker), 1)
    assert "Docker-format image" in line and "--label" in line
    ok(run_cli("mutate", "--label", "a=b", "-o", tmp_path / "labelled.tar", docker))
    assert image_of(str(tmp_path / "labelled.tar"))[1]["mediaType"] == DOCKER["manifest"]
    fails(run_cli("mutate", "-o", tmp_path / "x.tar", docker), 2, "nothing to change")
    r = run_cli("mutate", "--env", "A=b", docker)
    assert r.returncode == 2 and "one of the arguments --push -o/--output --load is required" in r.stderr
    with pytest.raises(zeroimage.UsageError, match="say where the new image goes"):
        zeroimage.mutate(docker, zeroimage.ImageOptions(env=(("A", "b"),)))
    with pytest.raises(zeroimage.UsageError, match=r"`append\(...\)` makes"):
        zeroimage.mutate(docker, zeroimage.ImageOptions(add=(("x", "/x"),)), output=str(tmp_path / "x.tar"))
    assert not (tmp_path / "x.tar").exists()


def test_mutate_an_index_leaves_out_its_attestation_and_takes_a_platform_subset(tmp_path, busybox):
    path, _, amd, arm, top = multi_platform_base(tmp_path, busybox)
    out = tmp_path / "out.tar"
    r = ok(run_cli("mutate", "--env", "A=b", "-o", out, path))
    assert "left out" in r.stderr and "an attestation" in r.stderr
    files = read_archive(str(out))
    index_digest = json.loads(files["index.json"])["manifests"][0]["digest"]
    index = json.loads(files["blobs/sha256/" + index_digest[7:]])
    assert [d["platform"]["architecture"] for d in index["manifests"]] == ["amd64", "arm64"]
    for desc in index["manifests"]:
        config = json.loads(files["blobs/sha256/" + json.loads(files["blobs/sha256/" + desc["digest"][7:]])
                                  ["config"]["digest"][7:]])
        assert "A=b" in config["config"]["Env"]
    one = tmp_path / "one.tar"
    ok(run_cli("mutate", "--env", "A=b", "--platform", "linux/arm64", "-o", one, path))
    assert image_of(str(one))[2]["architecture"] == "arm64"
    # two platforms: copy's "a new index of ...: its digest is X" is not said, X never being written
    two = tmp_path / "two.tar"
    r = ok(run_cli("mutate", "--env", "A=b", "--platform", "linux/arm64", "--platform", "linux/amd64", "-o", two,
                   path))
    assert "a new index of" not in r.stderr and "its digest is" not in r.stderr, r.stderr
    assert r.stdout == ok(run_cli("mutate", "--env", "A=b", "-o", out, path)).stdout      # (every image: all of it)


def test_build_entrypoint_arg(tmp_path, busybox_program):
    out = tmp_path / "app.tar"
    ok(run_cli("build", "--from", "scratch", "--entrypoint-arg", "sh", "--entrypoint-arg=-c", "-o", out,
               busybox_program))
    assert image_of(str(out))[2]["config"]["Entrypoint"] == ["/busybox", "sh", "-c"]


# ---- append, offline ----


def unpack(tmp_path, source, skopeo_args=()):
    """The root file system of SOURCE (a skopeo transport:path), unpacked by umoci."""
    skopeo, umoci = need_tool("skopeo"), need_tool("umoci")
    work = tmp_path / ("unpack-" + uuid.uuid4().hex[:8])
    work.mkdir()
    sh(skopeo, "copy", "--quiet", *skopeo_args, source, "oci:%s:img" % (work / "layout"))
    rootless = ["--rootless"] if os.geteuid() != 0 else []
    sh(umoci, "unpack", *rootless, "--image", "%s:img" % (work / "layout"), work / "bundle")
    return work / "bundle" / "rootfs"


def a_tree(tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "file.txt").write_text("appended\n")
    os.chmod(str(tree / "sub" / "file.txt"), 0o640)
    return tree


def test_append_puts_a_tree_in_one_layer_with_the_images_parents(tmp_path, monkeypatch):
    base = fhs_base(tmp_path)        # /tmp 1777, /bin a symlink to usr/bin
    tree = a_tree(tmp_path)
    out = tmp_path / "out.tar"
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    ok(run_cli("append", "--add", "%s:/tmp/x" % tree, "--add", "%s:/etc/" % (tree / "sub" / "file.txt"),
               "-o", out, base, env=env))
    _, manifest, config, layers = image_of(str(out))
    _, before, before_config, _ = image_of(base)
    assert manifest["layers"][:-1] == before["layers"] and len(layers) == len(before["layers"]) + 1
    assert len(config["rootfs"]["diff_ids"]) == len(layers)
    assert config["history"][-1] == {"created": "2023-11-14T22:13:20Z",
                                     "created_by": "zeroimage: COPY tree /tmp/x; COPY file.txt /etc/"}
    assert config["created"] == "2023-11-14T22:13:20Z"
    members = layer_members(layers[-1])
    assert members["tmp"].mode == 0o1777, "the image's /tmp keeps its mode"
    assert members["tmp/x/sub/file.txt"].mode == 0o640 and members["etc/file.txt"].isfile()
    rootfs = unpack(tmp_path, "oci-archive:%s" % out)
    assert (rootfs / "tmp" / "x" / "sub" / "file.txt").read_text() == "appended\n"
    assert (rootfs / "etc" / "motd").read_text() == "hi", "the image's files are still there"
    # the same rules as build's --add, against what the image holds
    fails(run_cli("append", "--add", "%s:/bin/x" % tree, "-o", tmp_path / "no.tar", base), 2, "the base has as a symlink")
    fails(run_cli("append", "--add", "%s:/etc/motd/x" % tree, "-o", tmp_path / "no.tar", base), 2,
          "/etc/motd, which the base has as a file")
    fails(run_cli("append", "--add", "%s:/x" % (tmp_path / "none"), "-o", tmp_path / "no.tar", base), 1,
          "No such file")
    r = run_cli("append", "-o", tmp_path / "no.tar", base)
    assert r.returncode == 2 and "--add" in r.stderr
    assert not (tmp_path / "no.tar").exists()


def test_append_to_an_index_makes_the_layer_once(tmp_path, busybox):
    path, _, _, _, _ = multi_platform_base(tmp_path, busybox)
    tree = a_tree(tmp_path)
    result = zeroimage.append(path, [(str(tree), "/srv/tree")], output=str(tmp_path / "out.tar"))
    assert [str(i.platform) for i in result.images] == ["linux/amd64", "linux/arm64/v8"]
    last = [image.manifest["layers"][-1]["digest"] for image in result.images]
    assert last[0] == last[1], "the same bytes for each platform"
    for image in result.images:
        assert len(image.config["rootfs"]["diff_ids"]) == len(image.manifest["layers"]) == 3
    with pytest.raises(zeroimage.UsageError, match="`add` is a list"):
        zeroimage.append(path, "tree:/x", output=str(tmp_path / "x.tar"))


# ---- rebase, offline ----


def test_rebase_with_an_old_base_on_disk(tmp_path, busybox, busybox_program):
    base1, _, _ = versioned_base(tmp_path, busybox, 1)
    base2, (v2,), _ = versioned_base(tmp_path, busybox, 2)
    app = tmp_path / "app.tar"
    ok(run_cli("build", "--from-archive", base1, "--env", "APP=1", "-o", app, busybox_program))
    # an image built on an archive records no base: --old-base is asked for
    fails(run_cli("rebase", "--base", base2, "-o", tmp_path / "no.tar", app), 1, "records no base", "--old-base")
    fails(run_cli("rebase", "--base", base2, "--old-base", base2, "-o", tmp_path / "no.tar", app), 1,
          "is not on", "its layer 2 is")
    assert not (tmp_path / "no.tar").exists()
    out = tmp_path / "rebased.tar"
    r = ok(run_cli("rebase", "--json", "--base", base2, "--old-base", base1, "-o", out, app))
    _, manifest, config, layers = image_of(str(out))
    _, app_manifest, app_config, _ = image_of(str(app))
    _, base_manifest, base_config, _ = image_of(base2)
    assert json.loads(r.stdout)["digest"] == json.loads(read_archive(str(out))["index.json"])["manifests"][0]["digest"]
    assert manifest["layers"] == base_manifest["layers"] + app_manifest["layers"][2:]
    assert config["rootfs"]["diff_ids"] == base_config["rootfs"]["diff_ids"] + app_config["rootfs"]["diff_ids"][2:]
    assert config["history"] == base_config["history"] + app_config["history"][3:]
    # the image's config, not the new base's (BASE=1 stays); the label of the old base's base left out
    assert config["config"] == {k: v for k, v in app_config["config"].items() if k != "Labels"}
    assert config["created"] == app_config["created"]
    _, out_text = run_image(tmp_path, "oci-archive:%s" % out, ["/busybox", "cat", "/etc/base-version"])
    assert out_text == "base 2\n"
    # a new base with no image for the image's platform
    arm_only, _, _ = versioned_base(tmp_path, busybox, 3, platforms=(("linux", "arm64", "v8"),))
    line = fails(run_cli("rebase", "--base", arm_only, "--old-base", base1, "-o", tmp_path / "no.tar", app), 1,
                 "--base %s has no image for linux/amd64" % arm_only, "the platform of image sha256:")
    assert "pick one with" not in line      # (--platform picks the images to rebase, not the base's)
    line = fails(run_cli("rebase", "--base", base2, "--old-base", arm_only, "-o", tmp_path / "no.tar", app), 1,
                 "--old-base %s has no image for linux/amd64" % arm_only)
    # onto scratch: the base's layers go, the program's stay
    bare = zeroimage.rebase(str(app), "scratch", old_base=base1, output=str(tmp_path / "bare.tar"))
    assert bare.images[0].manifest["layers"] == app_manifest["layers"][2:]


def test_rebase_a_docker_image_keeps_its_family(tmp_path, busybox, busybox_program):
    base1, _, _ = versioned_base(tmp_path, busybox, 1, family=DOCKER)
    base2, _, _ = versioned_base(tmp_path, busybox, 2)          # OCI: its layers said in Docker's names
    zstd, _, _ = versioned_base(tmp_path, busybox, 3, family=dict(OCI, layer=OCI["layer"][:-4] + "zstd"))
    app = tmp_path / "app.tar"
    ok(run_cli("build", "--from-archive", base1, "-o", app, busybox_program))
    result = zeroimage.rebase(str(app), base2, old_base=base1, output=str(tmp_path / "out.tar"))
    manifest = result.images[0].manifest
    assert manifest["mediaType"] == DOCKER["manifest"] and "annotations" not in manifest
    line = fails(run_cli("rebase", "--base", base2, "-o", tmp_path / "no.tar", app), 1, "records no base",
                 "Docker-format image", "--old-base")
    assert "annotations, which" not in line     # (build writes none on a Docker manifest)
    assert {d["mediaType"] for d in manifest["layers"]} == {DOCKER["layer"]}
    line = fails(run_cli("rebase", "--base", zstd, "--old-base", base1, "-o", tmp_path / "no.tar", app), 1)
    assert "Docker-format image" in line and "zstd" in line and "--media-types" not in line
    assert not (tmp_path / "no.tar").exists()


def test_rebase_takes_its_bases_from_the_engine(tmp_path, busybox_program):
    """docker-daemon:NAME is a base of rebase as of build --from: old (the prefix) and new."""
    from hostile_fakes import FakeEngine
    engine = FakeEngine()
    try:
        env = {"DOCKER_HOST": engine.host}
        app = tmp_path / "app.tar"
        ok(run_cli("build", "--from", "docker-daemon:base:1", "-o", app, busybox_program, env=env))
        _, app_manifest, _, _ = image_of(str(app))
        bare = tmp_path / "bare.tar"
        ok(run_cli("rebase", "--old-base", "docker-daemon:base:1", "--base", "scratch", "-o", bare, app, env=env))
        assert image_of(str(bare))[1]["layers"] == app_manifest["layers"][1:]
        back = tmp_path / "back.tar"
        ok(run_cli("rebase", "--old-base", "scratch", "--base", "docker-daemon:base:1", "-o", back, bare, env=env))
        assert image_of(str(back))[1]["layers"] == app_manifest["layers"]
        line = fails(run_cli("rebase", "--old-base", "scratch", "--base", "docker-daemon:other:1", "-o",
                             tmp_path / "no.tar", bare, env=env), 1, "other:1")
        assert "transport syntax" not in line
        fails(run_cli("rebase", "--base", "docker-daemon:", "-o", tmp_path / "no.tar", bare, env=env), 2,
              "names no image")
        assert not (tmp_path / "no.tar").exists()
    finally:
        engine.close()


@pytest.mark.parametrize("verb", [["mutate", "--env", "A=b"], ["append", "--add", "{x}:/x"],
                                  ["rebase", "--old-base", "scratch", "--base", "scratch"]],
                         ids=["mutate", "append", "rebase"])
@pytest.mark.parametrize("where, said", [
    (["--format", "oci-layout", "--push", "127.0.0.1:1/x:1"], "--format oci-layout needs -o DIR"),
    (["--format", "oci-layout", "--load"], "--load sends the image to the container engine"),
    (["--format", "oci-layout", "-o", "-"], "-o - writes an archive to standard output"),
])
def test_a_layout_is_written_to_a_directory_only(tmp_path, busybox, verb, where, said):
    """--format oci-layout with --push, --load or -o -: refused before anything is read, as build does
    (it was ignored: pushed, loaded or written as an archive)."""
    base, _, _ = versioned_base(tmp_path, busybox, 1)
    (tmp_path / "x").write_bytes(b"x")
    dead = {"DOCKER_HOST": "unix://%s" % (tmp_path / "dead.sock")}
    r = run_cli(*[a.format(x=tmp_path / "x") for a in verb] + where + [base], env=dead)
    fails(r, 2, said)
    assert sorted(os.listdir(str(tmp_path))) == ["base-1.tar", "x"]


def test_a_base_word_that_is_also_a_file_here_is_said_as_a_source_word_is(tmp_path, busybox):
    """rebase's --base and --old-base tell a path from a reference as inspect does: a word that is a
    reference reads the registry, and when a file of that name is here, ./NAME is the way to it."""
    base, _, _ = versioned_base(tmp_path, busybox, 1)
    os.rename(base, str(tmp_path / "base"))
    dead = {"HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}
    for argv in (["--base", "base", "--old-base", "scratch"], ["--base", "scratch", "--old-base", "base"]):
        r = run_cli("rebase", *argv, "-o", "no.tar", "./base", cwd=str(tmp_path), env=dead)
        fails(r, 1)
        assert "base is read from the registry as docker.io/library/base:latest; to read the file of that name, " \
               "write ./base" in r.stderr, r.stderr
    ok(run_cli("rebase", "--base", "./base", "--old-base", "scratch", "-o", "yes.tar", "./base", cwd=str(tmp_path)))


def test_an_empty_entrypoint_is_a_usage_error(tmp_path, busybox):
    base, _, _ = versioned_base(tmp_path, busybox, 1)
    line = fails(run_cli("mutate", "--entrypoint", "", "-o", tmp_path / "no.tar", base), 2,
                 "argument --entrypoint: the program is empty")
    assert "list of strings" not in line and "[" not in line
    assert not (tmp_path / "no.tar").exists()


# ---- against the registry ----


@pytest.fixture
def client(tmp_path, pki, registry_servers):
    c = Client(tmp_path, pki, registry_servers("open"))
    c.login()
    return c


def blob_counts(r):
    """(uploaded, mounted, already there) from -v's line."""
    line = next(line for line in r.stderr.splitlines() if line.startswith("zeroimage: blobs: "))
    words = line.split()
    return int(words[2]), int(words[4]), int(words[6])


def layer_gets(r, *manifests):
    """-v's lines that GET a layer of ``manifests`` (a config is read, a layer need not be)."""
    layers = {d["digest"] for manifest in manifests for d in manifest["layers"]}
    return [line for line in r.stderr.splitlines() if " GET " in line and
            any("/blobs/" + digest in line for digest in layers)]


def raw(client, name):
    return json.loads(client.skopeo("inspect", "--raw", "docker://" + client.ref(name)))


def test_mutate_within_one_registry_mounts_the_layers(client, busybox_program):
    client.ok("build", "--push", client.ref("changes/mutate/src:1"), busybox_program)
    r = client.ok("mutate", "-v", "--entrypoint", "/busybox", "--entrypoint-arg", "echo", "--push",
                  client.ref("changes/mutate/dst:1"), client.ref("changes/mutate/src:1"))
    assert blob_counts(r) == (1, 2, 0), "the layers mounted, the new config uploaded"
    assert not layer_gets(r, raw(client, "changes/mutate/src:1")), "no layer downloaded"
    inspected = json.loads(client.skopeo("inspect", "--config", "docker://" + client.ref("changes/mutate/dst:1")))
    assert inspected["config"]["Entrypoint"] == ["/busybox", "echo"]


def test_rebase_in_a_registry_runs_on_the_new_base(tmp_path, client, busybox, busybox_program):
    base1, _, _ = versioned_base(tmp_path, busybox, 1)
    base2, _, top2 = versioned_base(tmp_path, busybox, 2)
    client.ok("push", base1, client.ref("changes/base:1"))
    client.ok("push", base2, client.ref("changes/base:2"))
    client.ok("build", "--from", client.ref("changes/base:1"), "--push", client.ref("changes/app:1"), busybox_program)
    app = raw(client, "changes/app:1")
    assert app["annotations"]["org.opencontainers.image.base.name"] == client.ref("changes/base:1")
    r = client.ok("rebase", "-v", "--base", client.ref("changes/base:2"), "--push", client.ref("changes/app:2"),
                  client.ref("changes/app:1"))
    rebased = raw(client, "changes/app:2")
    base = raw(client, "changes/base:2")
    # busybox's layer is base:1's too, and the program's is there: base:2's other layer is mounted
    assert blob_counts(r) == (1, 1, 2), "the new base's layer mounted, the config uploaded"
    assert not layer_gets(r, base, app), "no layer downloaded"
    assert [d["digest"] for d in rebased["layers"]] == [d["digest"] for d in base["layers"]] + [
        app["layers"][-1]["digest"]]
    assert rebased["annotations"]["org.opencontainers.image.base.name"] == client.ref("changes/base:2")
    assert rebased["annotations"]["org.opencontainers.image.base.digest"] == top2["digest"]
    labels = json.loads(client.skopeo("inspect", "--config", "docker://" + client.ref("changes/app:2")))[
        "config"]["Labels"]
    assert labels == {"org.opencontainers.image.base.name": client.ref("changes/base:2")}, "the label it had, renewed"
    inspected = json.loads(client.skopeo("inspect", "docker://" + client.ref("changes/app:2")))
    assert inspected["Layers"] == [d["digest"] for d in rebased["layers"]]
    assert r.stdout.strip() == client.ref("changes/app:2") + "@" + inspected["Digest"]
    _, out = run_image(tmp_path, "docker://" + client.ref("changes/app:2"),
                       ["/busybox", "cat", "/etc/base-version"], skopeo_args=client.skopeo_flags("src-"))
    assert out == "base 2\n"
    # rebased again: the recorded base is now base:2, whose layers are its first
    client.ok("rebase", "--base", client.ref("changes/base:1"), "--push", client.ref("changes/app:back"),
              client.ref("changes/app:2"))
    assert [d["digest"] for d in raw(client, "changes/app:back")["layers"]] == [d["digest"] for d in app["layers"]]
    # the recorded base is not the image's: refused, nothing pushed
    line = fails(client("rebase", "--base", client.ref("changes/base:2"), "--old-base", client.ref("changes/base:2"),
                        "--push", client.ref("changes/app:wrong"), client.ref("changes/app:1")), 1, "is not on")
    assert "its layer 2 is" in line
    assert client("digest", client.ref("changes/app:wrong")).returncode == 1


def test_rebase_an_index_per_platform(tmp_path, client, busybox, busybox_program):
    platforms = (("linux", "amd64", ""), ("linux", "arm64", "v8"))
    base1, _, _ = versioned_base(tmp_path, busybox, 1, platforms)
    base2, images2, top2 = versioned_base(tmp_path, busybox, 2, platforms)
    client.ok("push", base1, client.ref("changes/multi-base:1"))
    client.ok("push", base2, client.ref("changes/multi-base:2"))
    arm = elf_for(str(tmp_path / "arm" / "busybox"), "linux/arm64")
    client.ok("build", "--from", client.ref("changes/multi-base:1"), "--push", client.ref("changes/multi:1"),
              "linux/amd64=%s" % busybox_program, "linux/arm64=%s" % arm)
    client.ok("rebase", "--base", client.ref("changes/multi-base:2"), "--push", client.ref("changes/multi:2"),
              client.ref("changes/multi:1"))
    index = raw(client, "changes/multi:2")
    assert index["annotations"]["org.opencontainers.image.base.digest"] == top2["digest"]
    for desc, base_desc in zip(index["manifests"], images2):
        image = raw(client, "changes/multi@" + desc["digest"])
        base = raw(client, "changes/multi-base@" + base_desc["digest"])
        assert [d["digest"] for d in image["layers"][:2]] == [d["digest"] for d in base["layers"]]
        assert image["annotations"]["org.opencontainers.image.base.digest"] == base_desc["digest"]
    _, out = run_image(tmp_path, "docker://" + client.ref("changes/multi:2"), ["/busybox", "cat", "/etc/base-version"],
                       skopeo_args=client.skopeo_flags("src-") + ["--override-arch", "amd64"])
    assert out == "base 2\n"


def test_append_in_a_registry(tmp_path, client, busybox_program):
    client.ok("build", "--push", client.ref("changes/append:1"), busybox_program)
    tree = a_tree(tmp_path)
    r = client.ok("append", "-v", "--add", "%s:/srv/tree" % tree, "--push", client.ref("changes/append:2"),
                  client.ref("changes/append:1"))
    assert blob_counts(r) == (2, 0, 2), "the new layer and config uploaded, the image's layers there"
    rootfs = unpack(tmp_path, "docker://" + client.ref("changes/append:2"), client.skopeo_flags("src-"))
    assert (rootfs / "srv" / "tree" / "sub" / "file.txt").read_text() == "appended\n"
    assert (rootfs / "busybox").is_file()
    # files at the root only: nothing of the image is read for their parents
    r = client.ok("append", "-v", "--add", "%s:/file.txt" % (tree / "sub" / "file.txt"), "--push",
                  client.ref("changes/append:3"), client.ref("changes/append:2"))
    assert not layer_gets(r, raw(client, "changes/append:2")) and blob_counts(r)[:2] == (2, 0)
