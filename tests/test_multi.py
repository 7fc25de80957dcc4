"""Multi-platform builds, image options and OCI layout directories, without a registry."""

import gzip
import io
import json
import os
import tarfile

import pytest

from binaries import make_elf
from helpers import EPOCH, fails, ok
from imagetools import DOCKER, OCI, LayoutBuilder, image_of, layer_members, read_archive, ref, run_cli, small_base


@pytest.fixture
def binaries(tmp_path):
    amd = tmp_path / "app-amd64"
    amd.write_bytes(make_elf(62) + b"amd64 program")
    arm = tmp_path / "app-arm64"
    arm.write_bytes(make_elf(183) + b"arm64 program")
    return amd, arm


def _blob(files, digest):
    return files["blobs/sha256/" + digest.split(":")[1]]


def _index_images(path):
    """(index.json, the index, [(manifest, config, {layer member: bytes of the last layer})])"""
    files = read_archive(str(path))
    top = json.loads(files["index.json"])
    index = json.loads(_blob(files, top["manifests"][0]["digest"]))
    images = []
    for desc in index["manifests"]:
        manifest = json.loads(_blob(files, desc["digest"]))
        config = json.loads(_blob(files, manifest["config"]["digest"]))
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(_blob(files, manifest["layers"][-1]["digest"])))) as tar:
            last = {m.name: tar.extractfile(m).read() if m.isfile() else m for m in tar.getmembers()}
        images.append((desc, manifest, config, last))
    return files, top, index, images


def test_two_platform_archive(tmp_path, binaries):
    amd, arm = binaries
    out = tmp_path / "multi.tar"
    r = ok(run_cli("build", "-o", out, "-t", "app:2", "linux/amd64=%s" % amd, "linux/arm64=%s" % arm, env=EPOCH))
    files, top, index, images = _index_images(out)
    assert "manifest.json" not in files, "Docker cannot load multi-platform archives"
    assert top["manifests"][0]["mediaType"] == OCI["index"] and top["manifests"][0]["digest"] == r.stdout.strip()
    assert top["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "2"
    assert [d["platform"] for d, _, _, _ in images] == [{"os": "linux", "architecture": "amd64"},
                                                        {"os": "linux", "architecture": "arm64"}]
    for (desc, manifest, config, last), binary in zip(images, binaries):
        assert config["config"]["Entrypoint"] == ["/app"], "the name the binaries share, without platform words"
        assert last["app"] == binary.read_bytes()
        assert config["architecture"] == desc["platform"]["architecture"]
        assert len(manifest["layers"]) == 2
    assert images[0][1]["layers"][0] == images[1][1]["layers"][0], "one minimal base layer for both"


def test_two_platforms_from_an_archive_base(tmp_path, binaries):
    b = LayoutBuilder()
    amd_base = small_base(b, platform=("linux", "amd64", ""))
    arm_base = small_base(b)
    top = b.index([amd_base, arm_base])
    base = b.write_tar(tmp_path / "base.tar", [ref(top, "base")])
    out = tmp_path / "multi.tar"
    ok(run_cli("build", "--from-archive", base, "-o", out, "linux/amd64=%s" % binaries[0],
               "linux/arm64=%s" % binaries[1]))
    _, _, index, images = _index_images(out)
    assert images[1][2]["variant"] == "v8", "the base's platform is kept"
    assert images[0][1]["layers"][:2] == json.loads(b.blobs[amd_base["digest"]])["layers"]
    assert images[1][1]["layers"][:2] == json.loads(b.blobs[arm_base["digest"]])["layers"]
    single = b.write_tar(tmp_path / "single.tar", [ref(arm_base, "arm")])
    fails(run_cli("build", "--from-archive", single, "-o", tmp_path / "x.tar", "linux/amd64=%s" % binaries[0],
                  "linux/arm64=%s" % binaries[1]), 1, "no image for linux/amd64")


def test_docker_base_gives_a_manifest_list(tmp_path, binaries):
    b = LayoutBuilder()
    top = b.index([small_base(b, DOCKER, ("linux", "amd64", "")), small_base(b, DOCKER)], DOCKER)
    base = b.write_dir(tmp_path / "base", [top])
    ok(run_cli("build", "--from-archive", base, "-o", tmp_path / "m.tar", "linux/amd64=%s" % binaries[0],
               "linux/arm64=%s" % binaries[1]))
    _, top_json, index, images = _index_images(tmp_path / "m.tar")
    assert index["mediaType"] == DOCKER["index"] and top_json["manifests"][0]["mediaType"] == DOCKER["index"]
    assert {m["mediaType"] for _, m, _, _ in images} == {DOCKER["manifest"]}


def test_platform_check(tmp_path, binaries):
    amd, arm = binaries
    r = run_cli("build", "-o", tmp_path / "x.tar", "linux/amd64=%s" % arm, "linux/arm64=%s" % amd)
    fails(r, 1, "app-arm64 is an ELF binary for linux/arm64, not linux/amd64", "--no-platform-check")
    assert not (tmp_path / "x.tar").exists()
    assert "compressed" not in r.stderr, "every program is checked before any layer is made"
    r = ok(run_cli("build", "--no-platform-check", "-o", tmp_path / "x.tar", "linux/amd64=%s" % arm,
                   "linux/arm64=%s" % amd))
    assert "warning: " in r.stderr and "not linux/amd64" in r.stderr


@pytest.mark.parametrize("args, code, words", [
    (["linux/amd64=A", "B"], 2, ["PLATFORM=PROGRAM for every binary"]),
    (["--platform", "linux/amd64", "linux/amd64=A", "linux/arm64=B"], 2, ["--platform goes with one plain"]),
    (["linux/amd64=A", "linux/amd64=B"], 2, ["each platform can be given once"]),
    (["--env", "FOO", "A"], 2, ["--env", "KEY=VALUE"]),
    (["--label", "=x", "A"], 2, ["--label"]),
    (["--add", "static", "A"], 2, ["--add", "SRC:DST"]),
    (["--add", "static:relative", "A"], 2, ["--add", "absolute"]),
    (["--add", "missing:/srv", "A"], 1, ["--add missing", "No such file"]),
    (["--workdir", "srv", "A"], 2, ["--workdir", "absolute"]),
    (["--expose", "99999", "A"], 2, ["--expose"]),
    (["--expose", "80/icmp", "A"], 2, ["--expose"]),
    (["--user", "a:b:c", "A"], 2, ["--user"]),
    (["--format", "oci-layout", "A"], 2, ["needs -o DIR"]),
    (["--format", "zip", "A"], 2, ["--format"]),
])
def test_bad_options(tmp_path, binaries, args, code, words):
    args = [str(binaries[0]) if a == "A" else str(binaries[1]) if a == "B" else a for a in args]
    r = run_cli("build", "-o", tmp_path / "x.tar", *args, cwd=str(tmp_path)) if "oci-layout" not in args else \
        run_cli("build", *args, cwd=str(tmp_path))
    assert r.returncode == code and "Traceback" not in r.stderr, r.stderr
    for word in words:
        assert word in r.stderr
    assert not (tmp_path / "x.tar").exists()


def test_image_options_in_config_and_layer(tmp_path, binaries):
    tree = tmp_path / "static"
    (tmp_path / "static" / "css").mkdir(parents=True)
    (tree / "index.html").write_text("<h1>hi</h1>")
    (tree / "css" / "site.css").write_text("body{}")
    (tree / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(str(tree / "run.sh"), 0o750)
    os.symlink("index.html", str(tree / "home.html"))
    single = tmp_path / "motd"
    single.write_text("welcome\n")
    b = LayoutBuilder()
    base = b.write_tar(tmp_path / "base.tar", [small_base(b, platform=("linux", "amd64", ""))])
    out = tmp_path / "o.tar"
    ok(run_cli("build", "--from-archive", base, "-o", out,
               "--add", "%s:/srv/static" % tree, "--add", "%s:/etc/" % single,
               "--env", "BASE=2", "--env", "NEW=yes", "--label", "org.example.team=core",
               "--annotation", "org.opencontainers.image.source=https://example.com/app",
               "--user", "1000:1000", "--workdir", "/srv", "--cmd", "serve", "--cmd=--port=80",
               "--expose", "80", "--expose", "53/udp", binaries[0]))
    _, manifest, config, layers = image_of(str(out))
    runtime = config["config"]
    assert runtime["Env"] == ["PATH=/bin", "BASE=2", "NEW=yes"], "overridden in place, new ones appended"
    assert runtime["Labels"] == {"org.example": "yes", "org.example.team": "core"}
    assert manifest["annotations"]["org.opencontainers.image.source"] == "https://example.com/app"
    assert runtime["User"] == "1000:1000" and runtime["WorkingDir"] == "/srv"
    assert runtime["Cmd"] == ["serve", "--port=80"] and runtime["Entrypoint"] == ["/app-amd64"]
    assert runtime["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    members = layer_members(layers[-1])
    assert members["srv/static/run.sh"].mode == 0o750 and members["srv/static/css/site.css"].isfile()
    assert members["srv/static/home.html"].issym() and members["srv/static/home.html"].linkname == "index.html"
    assert members["etc/motd"].isfile() and "app-amd64" in members
    assert all(m.uid == 0 and m.gid == 0 and m.mtime == 0 for m in members.values())


def test_user_nonroot_on_the_minimal_base(tmp_path, binaries):
    ok(run_cli("build", "--user", "nonroot", "-o", tmp_path / "a.tar", binaries[0]))
    assert image_of(str(tmp_path / "a.tar"))[2]["config"]["User"] == "65532:65532"


def test_oci_layout_directory_adds_and_replaces(tmp_path, binaries):
    layout = tmp_path / "layout"
    ok(run_cli("build", "--format", "oci-layout", "-o", layout, "-t", "app:1", binaries[0]))
    ok(run_cli("build", "--format", "oci-layout", "-o", layout, "-t", "app:2", "linux/amd64=%s" % binaries[0],
               "linux/arm64=%s" % binaries[1]))
    index = json.loads((layout / "index.json").read_text())
    assert [d["annotations"]["org.opencontainers.image.ref.name"] for d in index["manifests"]] == ["1", "2"]
    assert [d["mediaType"] for d in index["manifests"]] == [OCI["manifest"], OCI["index"]]
    first = index["manifests"][0]["digest"]
    r = ok(run_cli("build", "--format", "oci-layout", "-o", layout, "-t", "app:1", "--env", "X=1", binaries[0]))
    index = json.loads((layout / "index.json").read_text())
    assert [d["annotations"]["org.opencontainers.image.ref.name"] for d in index["manifests"]] == ["2", "1"]
    assert index["manifests"][1]["digest"] == r.stdout.strip() != first
    assert (layout / "blobs" / "sha256" / first.split(":")[1]).exists(), "old blobs stay"
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    # the directory is a base for the next build
    ok(run_cli("build", "--from-archive", "%s:2" % layout, "--platform", "linux/arm64", "-o", tmp_path / "b.tar",
               binaries[1]))
