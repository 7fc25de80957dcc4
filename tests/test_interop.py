"""Real tools judge the archives: skopeo reads them (oci-archive and docker-archive),
umoci unpacks them, runc runs them.  Bases are made from real files (tests/imagetools.py)."""

import json
import os
import shutil
import subprocess
import tempfile

import pytest

import tarfile

import zeroimage
from conftest import need_tool
from helpers import check_built_on_real_base, run_image, sh, skopeo_inspect
from imagetools import DOCKER, DOCKER_SAVE, LayoutBuilder, image_of, real_base, run_cli

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("transport", ["oci-archive", "docker-archive"])
def test_scratch_image_runs(tmp_path, busybox_program, transport):
    archive = tmp_path / "app.tar"
    r = run_cli("build", "--from", "scratch", "-o", archive, busybox_program)
    assert r.returncode == 0, r.stderr
    digest = r.stdout.strip()
    info = skopeo_inspect("%s:%s" % (transport, archive))
    if transport == "oci-archive":
        assert info["Digest"] == digest
    assert info["Architecture"] == "amd64" and info["Os"] == "linux" and len(info["Layers"]) == 1
    process, out = run_image(tmp_path, "%s:%s" % (transport, archive))
    assert process["args"] == ["/busybox"]
    assert out.startswith("BusyBox v"), out      # busybox with no applet prints its banner


def test_minimal_base_has_users_and_tls_roots(tmp_path, busybox_program):
    archive = tmp_path / "app.tar"
    r = run_cli("build", "-o", archive, busybox_program)
    assert r.returncode == 0, r.stderr
    _, out = run_image(tmp_path, "oci-archive:%s" % archive,
                       ["/busybox", "sh", "-c", "cat /etc/passwd; head -1 /etc/ssl/certs/ca-certificates.crt; "
                        "stat -c '%a %u' /tmp /home/nonroot"])
    assert "nonroot:x:65532:65532:nonroot:/home/nonroot:" in out
    assert "-----BEGIN CERTIFICATE-----" in out
    assert "1777 0" in out and "700 65532" in out
    _, out = run_image(tmp_path, "oci-archive:%s" % archive, ["/busybox", "sh", "-c", "whoami; touch /home/nonroot/x && echo ok"],
                       user=65532)
    assert out.split() == ["nonroot", "ok"]


def test_build_on_skopeo_written_base_keeps_files_and_config(tmp_path, busybox, busybox_program):
    b = LayoutBuilder()
    desc = real_base(b, busybox)
    b.write_dir(tmp_path / "src", [dict(desc, annotations={"org.opencontainers.image.ref.name": "base"})])
    sh(need_tool("skopeo"), "copy", "--quiet", "oci:%s:base" % (tmp_path / "src"), "oci-archive:%s:base" % (tmp_path / "base.tar"))
    archive = tmp_path / "app.tar"
    r = run_cli("build", "--from-archive", tmp_path / "base.tar", "-o", archive, busybox_program)
    assert r.returncode == 0, r.stderr
    check_built_on_real_base(tmp_path, archive)


def test_build_on_skopeo_multi_platform_archive(tmp_path, busybox, busybox_program):
    """skopeo copy --all writes index.json -> index -> manifests; --platform picks the child."""
    b = LayoutBuilder()
    amd = real_base(b, busybox)
    arm = real_base(b, busybox, platform=("linux", "arm64", "v8"))
    top = b.index([amd, arm])
    b.write_dir(tmp_path / "src", [dict(top, annotations={"org.opencontainers.image.ref.name": "multi"})])
    sh(need_tool("skopeo"), "copy", "--quiet", "--all", "oci:%s:multi" % (tmp_path / "src"),
       "oci-archive:%s:multi" % (tmp_path / "multi.tar"))
    archive = tmp_path / "app.tar"
    r = run_cli("build", "--from-archive", tmp_path / "multi.tar", "-o", archive, busybox_program)
    assert r.returncode == 0, r.stderr
    check_built_on_real_base(tmp_path, archive)
    r = run_cli("build", "--from-archive", tmp_path / "multi.tar", "--platform", "linux/arm64", "-o",
                tmp_path / "arm.tar", busybox_program)
    assert r.returncode == 0 and "disagrees" in r.stderr
    assert image_of(str(tmp_path / "arm.tar"))[2]["architecture"] == "arm64"
    assert skopeo_inspect("oci-archive:%s" % (tmp_path / "arm.tar"))["Architecture"] == "arm64"


def test_build_on_docker_format_base(tmp_path, busybox, busybox_program):
    b = LayoutBuilder()
    desc = real_base(b, busybox, family=DOCKER)
    base = b.write_dir(tmp_path / "base", [desc])
    archive = tmp_path / "app.tar"
    r = run_cli("build", "--from-archive", base, "-o", archive, busybox_program)
    assert r.returncode == 0, r.stderr
    assert skopeo_inspect("oci-archive:%s" % archive, raw=True)["mediaType"] == DOCKER["manifest"]
    check_built_on_real_base(tmp_path, archive)


def test_build_on_docker_save_archive(tmp_path, busybox, busybox_program):
    """The shape of `docker save` 25+: uncompressed OCI layers, manifest.json and repositories beside the layout."""
    b = LayoutBuilder()
    desc = real_base(b, busybox, family=DOCKER_SAVE)
    manifest = json.loads(b.blobs[desc["digest"]])
    legacy = json.dumps([{"Config": "blobs/sha256/" + manifest["config"]["digest"][7:], "RepoTags": ["base:1"],
                          "Layers": ["blobs/sha256/" + d["digest"][7:] for d in manifest["layers"]]}]).encode()
    extra = []
    for name, data in (("manifest.json", legacy), ("repositories", b'{"base":{"1":"x"}}')):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        extra.append((info, data))
    top = dict(desc, annotations={"io.containerd.image.name": "docker.io/library/base:1",
                                  "org.opencontainers.image.ref.name": "1"})
    base = b.write_tar(tmp_path / "saved.tar", [top], extra=extra)
    archive = tmp_path / "app.tar"
    r = run_cli("build", "--from-archive", "%s:base:1" % base, "-o", archive, busybox_program)
    assert r.returncode == 0, r.stderr
    assert image_of(str(archive))[1]["layers"][0]["mediaType"] == DOCKER_SAVE["layer"]
    check_built_on_real_base(tmp_path, archive)


def test_zeroimage_archive_as_base_and_through_docker_archive(tmp_path, busybox_program):
    """An archive zeroimage wrote is a base for the next build, read via docker-archive too."""
    first = tmp_path / "first.tar"
    assert run_cli("build", "-o", first, busybox_program).returncode == 0
    second = tmp_path / "second.tar"
    r = run_cli("build", "--from-archive", first, "--target", "/usr/bin/busybox", "-o", second, busybox_program)
    assert r.returncode == 0, r.stderr
    _, out = run_image(tmp_path, "docker-archive:%s" % second,
                       ["/usr/bin/busybox", "sh", "-c", "ls /busybox /usr/bin/busybox; grep -c : /etc/passwd"])
    assert out.split() == ["/busybox", "/usr/bin/busybox", "3"]


def test_podman_loads_the_archive(tmp_path, busybox_program):
    podman = need_tool("podman")
    archive = tmp_path / "app.tar"
    r = run_cli("build", "-t", "example.com/team/app:1.0", "-o", archive, busybox_program)
    assert r.returncode == 0, r.stderr
    runroot = tempfile.mkdtemp(prefix="zi-podman-")      # podman wants a short runroot path
    store = [podman, "--root", tmp_path / "storage", "--runroot", runroot, "--storage-driver", "vfs"]
    try:
        assert "Loaded image: example.com/team/app:1.0" in sh(*store, "load", "-i", archive)
        info = json.loads(sh(*store, "image", "inspect", "example.com/team/app:1.0"))[0]
    finally:
        subprocess.run([str(a) for a in store] + ["rmi", "--all", "--force"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(runroot, ignore_errors=True)
    assert info["Digest"] == r.stdout.strip()
    assert info["Config"]["Entrypoint"] == ["/busybox"] and info["Architecture"] == "amd64"


def test_blake3_agrees_with_b3sum(tmp_path):
    """zeroimage's own BLAKE3 (hashlib has none) against the reference implementation's b3sum."""
    b3sum = need_tool("b3sum")
    data = os.urandom(70000) + bytes(range(256)) * 3
    path = tmp_path / "data"
    path.write_bytes(data)
    expected = sh(b3sum, "--no-names", str(path)).strip()
    h = zeroimage._Blake3()
    for i in range(0, len(data), 4099):
        h.update(data[i:i + 4099])
    assert h.hexdigest() == expected
