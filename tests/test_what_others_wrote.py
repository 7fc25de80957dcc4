"""Reading what others wrote (issue 23, part 5), each a class tested as a table:

- which manifests are images: a Docker v2 schema 2 manifest always (its config said
  application/octet-stream when older skopeo and registries wrote it), an OCI one when its config is
  an image config's and no artifactType says otherwise; an artifactType naming an image config's type
  (go-containerregistry writes one into every descriptor) is no artifact's. From a layout, an
  archive and the real registry; built on, copied byte for byte, inspected; skopeo agrees.
- inspect needs a layout's manifest and config only (skopeo's does the same); verbs that need the
  layers say the one that is missing, in one line, before writing anything.
- a path the user gives is followed when it is a symlink (an archive, a layout directory), for
  reading and writing alike; links inside a layout stay refused both ways (a hostile layout must not
  read or write outside itself).
"""

import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request

import pytest

import zeroimage
from binaries import make_elf
from conftest import need_tool
from helpers import fails, ok, sh
from imagetools import DOCKER, OCI, LayoutBuilder, image_of, read_archive, ref, run_cli

OCTET = "application/octet-stream"
SBOM = "application/vnd.example.sbom+json"
NO_NETWORK = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}


@pytest.fixture
def prog(tmp_path):
    path = tmp_path / "prog"
    path.write_bytes(make_elf(62) + b"\0" * 64)
    return str(path)


def _layers():
    return [[("etc", "dir", None, 0o755), ("etc/base-release", "file", b"base 1\n", 0o644)]]


def _image(b, family, config_type, desc_artifact=None, manifest_artifact=None):
    """An image written by someone else: ``family``'s manifest, its config descriptor saying
    ``config_type``; ``desc_artifact``/``manifest_artifact``: an artifactType in index.json's entry
    or in the manifest."""
    desc = b.image(_layers(), {"config": {"Env": ["FROM=others"]}}, family=dict(family, config=config_type))
    if manifest_artifact:
        manifest = json.loads(b.blobs[desc["digest"]])
        manifest["artifactType"] = manifest_artifact
        data = json.dumps(manifest).encode()
        desc = dict(desc, digest=b.add(data), size=len(data))
    if desc_artifact:
        desc["artifactType"] = desc_artifact
    return ref(desc, "1")


# ---- which manifests are images: the one rule ----

# (family, config media type, descriptor's artifactType, manifest's artifactType, artifact it is or None)
RULE = [
    (DOCKER, DOCKER["config"], None, None, None),
    (DOCKER, OCTET, None, None, None),                      # older skopeo and registries
    (DOCKER, "application/json", None, None, None),         # Docker's format has no artifacts
    (DOCKER, OCTET, OCTET, None, None),                     # go-containerregistry's index entry of one
    (OCI, OCI["config"], None, None, None),
    (OCI, DOCKER["config"], None, None, None),              # mixed, read as before
    (OCI, OCI["config"], OCI["config"], None, None),        # go-containerregistry's index entry
    (OCI, OCTET, None, None, OCTET),                        # as containers/image: not an image
    (OCI, "application/vnd.oci.empty.v1+json", None, SBOM, SBOM),
    (OCI, OCI["config"], SBOM, None, SBOM),
    (OCI, OCI["config"], None, SBOM, SBOM),
]
RULE_IDS = ["docker", "docker-octet", "docker-json", "docker-octet-ggcr", "oci", "oci-docker-config",
            "oci-ggcr", "oci-octet", "oci-artifact", "desc-artifact", "manifest-artifact"]


@pytest.mark.parametrize("family, config_type, desc_artifact, manifest_artifact, artifact", RULE, ids=RULE_IDS)
def test_artifact_type_is_one_rule(family, config_type, desc_artifact, manifest_artifact, artifact):
    manifest = {"schemaVersion": 2, "mediaType": family["manifest"], "config": {"mediaType": config_type}}
    if manifest_artifact:
        manifest["artifactType"] = manifest_artifact
    desc = {"mediaType": family["manifest"]}
    if desc_artifact:
        desc["artifactType"] = desc_artifact
    assert zeroimage.artifact_type(desc, manifest) == artifact
    # without the manifest (an index entry looked at before its manifest is read): never called an
    # image's artifact when it is one, and a Docker manifest never an artifact
    early = zeroimage.artifact_type(desc)
    assert early is None if family is DOCKER or not desc_artifact else early == artifact


@pytest.mark.parametrize("as_dir", [False, True], ids=["archive", "directory"])
@pytest.mark.parametrize("family, config_type, desc_artifact, manifest_artifact, artifact", RULE, ids=RULE_IDS)
def test_every_verb_reads_by_the_rule(tmp_path, prog, as_dir, family, config_type, desc_artifact,
                                      manifest_artifact, artifact):
    b = LayoutBuilder()
    top = _image(b, family, config_type, desc_artifact, manifest_artifact)
    path = b.write_dir(tmp_path / "layout", [top]) if as_dir else b.write_tar(tmp_path / "layout.tar", [top])
    out = tmp_path / "out.tar"
    if artifact is not None:        # not an image to show or build on (copy moves it as it is, below)
        for args in (["inspect", path], ["build", "--from-archive", path, "-o", out, prog]):
            fails(run_cli(*args, env=NO_NETWORK), 1, "is an artifact (%s), not an image" % artifact)
        assert not out.exists()
    else:
        _read_as_image(path, top, family, out, prog)
    # copied: byte for byte, when it is valid to write (a Docker manifest's config is Docker's, or
    # octet-stream as they were written; an OCI manifest's not Docker's: one family per manifest)
    copied = tmp_path / "copy.tar"
    r = run_cli("copy", path, copied, env=NO_NETWORK)
    if (family, config_type) in ((DOCKER, "application/json"), (OCI, DOCKER["config"])):
        fails(r, 1, "one manifest is of one family")
        return
    ok(r)
    files = read_archive(str(copied))
    index = json.loads(files["index.json"])
    assert index["manifests"][0]["digest"] == top["digest"]
    assert files["blobs/sha256/" + top["digest"][7:]] == b.blobs[top["digest"]]
    if family is DOCKER:        # Docker loads it: manifest.json names its config and layers
        assert json.loads(files["manifest.json"])[0]["Config"] == "blobs/sha256/" + json.loads(
            b.blobs[top["digest"]])["config"]["digest"][7:]
    elif desc_artifact is None:     # (what an index entry said of the manifest is not copied: it is said anew)
        assert ("manifest.json" in files) == (artifact is None)     # Docker loads images only


def _read_as_image(path, top, family, out, prog):
    info = json.loads(ok(run_cli("inspect", "--json", path, env=NO_NETWORK)).stdout)
    assert (info["manifest"], info["mediaType"], info["env"]) == (top["digest"], family["manifest"], ["FROM=others"])
    # built on: the new image is of the base's family, its config described as that family's config
    ok(run_cli("build", "--from-archive", path, "-o", out, prog, env=NO_NETWORK))
    _, manifest, config, _ = image_of(str(out))
    assert (manifest["mediaType"], manifest["config"]["mediaType"]) == (family["manifest"], family["config"])
    assert config["config"]["Env"] == ["FROM=others"] and config["config"]["Entrypoint"] == ["/prog"]


def test_a_docker_manifest_converts_keeping_an_octet_stream_config_only_within_its_family(tmp_path):
    b = LayoutBuilder()
    path = b.write_dir(tmp_path / "layout", [_image(b, DOCKER, OCTET)])
    with zeroimage.Layout(path) as layout:
        image = zeroimage.read_tree(layout, layout.index()["manifests"][0], path)
    assert zeroimage.convert_family(image, zeroimage.DOCKER_FAMILY) is image        # kept: bytes and digest
    oci = zeroimage.convert_family(image, zeroimage.OCI_FAMILY)
    assert (oci.kind, oci.manifest["config"]["mediaType"]) == (OCI["manifest"], OCI["config"])
    assert oci.manifest["config"]["digest"] == image.manifest["config"]["digest"]
    zeroimage.check_writable(oci, "x")
    zeroimage.check_writable(image, "x")


def test_an_image_read_by_the_rule_has_its_config_checked_as_an_image_config(tmp_path):
    """A Docker manifest's config is an image's whatever its descriptor says: its fields are checked."""
    b = LayoutBuilder()
    config = json.dumps({"os": "linux", "architecture": "amd64", "config": {"Env": "not a list"},
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": DOCKER["manifest"], "layers": [],
                           "config": {"mediaType": OCTET, "digest": b.add(config), "size": len(config)}}).encode()
    top = {"mediaType": DOCKER["manifest"], "digest": b.add(manifest), "size": len(manifest)}
    path = b.write_tar(tmp_path / "l.tar", [top])
    fails(run_cli("inspect", path, env=NO_NETWORK), 1, "Env")


# -- from the real registry (distribution), judged by skopeo --


def _push_raw(host, repository, tag, blobs, manifest, media_type):
    """Put an image into an open registry by hand, as an older tool did: each blob in one upload."""
    base = "http://%s/v2/%s/" % (host, repository)
    for digest, data in blobs.items():
        with urllib.request.urlopen(urllib.request.Request(base + "blobs/uploads/", data=b"", method="POST"),
                                    timeout=30) as r:
            location = urllib.parse.urljoin(base, r.headers["Location"])
        location += ("&" if "?" in location else "?") + "digest=" + urllib.parse.quote(digest)
        request = urllib.request.Request(location, data=data, method="PUT",
                                         headers={"Content-Type": "application/octet-stream"})
        urllib.request.urlopen(request, timeout=30).close()
    request = urllib.request.Request(base + "manifests/" + tag, data=manifest, method="PUT",
                                     headers={"Content-Type": media_type})
    urllib.request.urlopen(request, timeout=30).close()


@pytest.mark.interop
def test_an_octet_stream_config_from_the_registry_is_an_image(tmp_path, prog, registry_servers):
    server = registry_servers("open")
    skopeo = need_tool("skopeo")
    b = LayoutBuilder()
    top = _image(b, DOCKER, OCTET)
    manifest = b.blobs[top["digest"]]
    _push_raw(server.host, "others/octet", "1", {d: data for d, data in b.blobs.items() if d != top["digest"]},
              manifest, DOCKER["manifest"])
    src = "%s/others/octet:1" % server.host
    theirs = json.loads(sh(skopeo, "inspect", "--tls-verify=false", "docker://" + src))
    info = json.loads(ok(run_cli("inspect", "--json", src)).stdout)
    assert info["digest"] == theirs["Digest"] == top["digest"] and info["env"] == theirs["Env"] == ["FROM=others"]
    assert ok(run_cli("inspect", "--raw", src)).stdout.rstrip("\n").encode() == manifest
    # built on
    out = tmp_path / "built.tar"
    ok(run_cli("build", "--from", src, "-o", out, prog))
    _, built, config, _ = image_of(str(out))
    assert (built["mediaType"], built["config"]["mediaType"]) == (DOCKER["manifest"], DOCKER["config"])
    assert config["config"]["Env"] == ["FROM=others"]
    ok(run_cli("build", "--from", src, "--push", "%s/others/built:1" % server.host, prog))
    # copied, byte for byte: to an archive, and to another repository; skopeo reads both
    ok(run_cli("copy", src, tmp_path / "copy.tar"))
    assert read_archive(str(tmp_path / "copy.tar"))["blobs/sha256/" + top["digest"][7:]] == manifest
    assert json.loads(sh(skopeo, "inspect", "oci-archive:%s" % (tmp_path / "copy.tar")))["Digest"] == top["digest"]
    ok(run_cli("pull", "-o", tmp_path / "pulled.tar", src))
    assert read_archive(str(tmp_path / "pulled.tar"))["blobs/sha256/" + top["digest"][7:]] == manifest
    _podman_loads(tmp_path, tmp_path / "copy.tar", src)      # (copy keeps the name it read)
    dst = "%s/others/copied:1" % server.host
    assert ok(run_cli("copy", src, dst)).stdout.strip() == dst + "@" + top["digest"]
    assert sh(skopeo, "inspect", "--raw", "--tls-verify=false", "docker://" + dst).rstrip("\n").encode() == manifest
    # an OCI manifest whose config says octet-stream is an artifact, for skopeo as for zeroimage
    b = LayoutBuilder()
    top = _image(b, OCI, OCTET)
    _push_raw(server.host, "others/oci-octet", "1", {d: data for d, data in b.blobs.items() if d != top["digest"]},
              b.blobs[top["digest"]], OCI["manifest"])
    fails(run_cli("inspect", "%s/others/oci-octet:1" % server.host), 1, "is an artifact (%s)" % OCTET)


def _podman_loads(tmp_path, archive, name):
    podman = need_tool("podman")
    runroot = tempfile.mkdtemp(prefix="zi-podman-")
    store = [podman, "--root", tmp_path / "storage", "--runroot", runroot, "--storage-driver", "vfs"]
    try:
        assert "Loaded image: " + name in sh(*store, "load", "-i", archive)
    finally:
        subprocess.run([str(a) for a in store] + ["rmi", "--all", "--force"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)
        shutil.rmtree(runroot, ignore_errors=True)


# ---- inspect needs the manifest and config only ----


def _without_layers(b, tmp_path, tops, as_dir):
    """The layout of ``tops`` with every layer blob left out."""
    for top in tops:
        for desc in _image_descs(b, top):
            manifest = json.loads(b.blobs[desc["digest"]])
            for layer in manifest["layers"]:
                b.blobs.pop(layer["digest"], None)
    return b.write_dir(tmp_path / "layout", tops) if as_dir else b.write_tar(tmp_path / "layout.tar", tops)


def _image_descs(b, desc):
    if desc["mediaType"] in (OCI["index"], DOCKER["index"]):
        return json.loads(b.blobs[desc["digest"]])["manifests"]
    return [desc]


@pytest.mark.parametrize("as_dir", [False, True], ids=["archive", "directory"])
@pytest.mark.parametrize("family", [OCI, DOCKER], ids=["oci", "docker"])
def test_inspect_of_a_layout_without_its_layers(tmp_path, prog, as_dir, family):
    b = LayoutBuilder()
    amd = b.image(_layers(), {"config": {"Env": ["A=1"], "Entrypoint": ["/prog"]}}, family=family)
    arm = b.image(_layers(), {"config": {"Env": ["A=2"]}}, family=family, platform=("linux", "arm64", ""))
    single = ref(amd, "one")
    multi = ref(b.index([amd, arm], family=family), "two")
    layers = [d["digest"] for d in json.loads(b.blobs[amd["digest"]])["layers"]]
    path = _without_layers(b, tmp_path, [single, multi], as_dir)
    _needs_layers(tmp_path, path, prog)
    for target, mode, platform in [(":one", "--json", []), (":one", "--raw", []), (":one", "--config", []),
                                   (":two", "--json", ["--platform", "linux/arm64"]), (":one", "-v", ["--build-info"]),
                                   (":one", "-v", [])]:
        r = ok(run_cli("inspect", mode, *platform, path + target, env=NO_NETWORK))
        if mode == "--json":
            info = json.loads(r.stdout)
            assert info["manifest"] == (amd if target == ":one" else arm)["digest"]
            assert info["env"] == (["A=1"] if target == ":one" else ["A=2"]) and info["buildInfo"] is None
        elif mode == "--raw":
            assert r.stdout.rstrip("\n").encode() == b.blobs[amd["digest"]]
        elif mode == "--config":
            assert json.loads(r.stdout)["config"]["Env"] == ["A=1"]
        elif platform:      # the summary, and under -v why no build info is shown
            assert amd["digest"] in r.stdout and layers[0] in r.stdout
            assert "is missing" in r.stderr and "no build info shown" in r.stderr
        else:               # not asked for: no layer is looked for
            assert amd["digest"] in r.stdout and "Build info:  not read (--build-info" in r.stdout
            assert "is missing" not in r.stderr and "no build info shown" not in r.stderr
    if family is DOCKER:
        return          # (skopeo reads from index.json OCI-typed entries only)
    # skopeo inspects it too, and agrees
    skopeo = need_tool("skopeo")
    transport = "oci" if as_dir else "oci-archive"
    theirs = json.loads(sh(skopeo, "inspect", "%s:%s:one" % (transport, path)))
    ours = json.loads(ok(run_cli("inspect", "--json", path + ":one", env=NO_NETWORK)).stdout)
    assert (theirs["Digest"], theirs["Layers"], theirs["Env"]) == (ours["manifest"], layers, ours["env"])


def _needs_layers(tmp_path, path, prog):
    """What needs the layers says which one is missing, in one line, and writes nothing."""
    out = tmp_path / "out.tar"
    for args in (["build", "--from-archive", path + ":one", "-o", out, prog], ["copy", path + ":one", out],
                 ["copy", path + ":two", out], ["push", path + ":one", "localhost:9/a:1"],
                 ["pull", "-o", out, "--platform", "linux/arm64", path + ":two"]):
        r = run_cli(*args, env=NO_NETWORK)
        if args[0] == "pull" and r.returncode == 2:
            continue            # pull reads registries only
        fails(r, 1, "blob sha256:", "is missing")
        assert not out.exists()


# ---- a path the user gives is followed; links inside a layout are not ----


def _layout_and_archive(tmp_path, prog):
    real = tmp_path / "real"
    real.mkdir()
    ok(run_cli("build", "--format", "oci-layout", "-t", "app:1", "-o", real / "layout", prog, env=NO_NETWORK))
    ok(run_cli("build", "-t", "app:1", "-o", real / "image.tar", prog, env=NO_NETWORK))
    return real / "layout", real / "image.tar"


def _links(tmp_path, layout, archive):
    """{kind: (link path, what reading it says, None when it reads)}."""
    (tmp_path / "fifo").mkdir()
    os.mkfifo(str(tmp_path / "fifo" / "f"))
    made = {"archive": (archive, None), "layout": (layout, None),
            "dangling": (tmp_path / "nowhere.tar", "is a symbolic link to %s, which does not exist"
                         % (tmp_path / "nowhere.tar")),
            "fifo": (tmp_path / "fifo" / "f", "is a FIFO, not a tar archive or an OCI layout directory"),
            "loop": (tmp_path / "loop-b", "is a symbolic link that leads back to itself")}
    links = {}
    for kind, (target, words) in made.items():
        link = tmp_path / ("link-" + kind)
        link.symlink_to(target)
        links[kind] = (link, words)
    (tmp_path / "loop-b").symlink_to(tmp_path / "link-loop")
    return links


READERS = ["inspect", "build", "push", "copy"]


def _read_through(verb, path, prog, out):
    return {"inspect": ["inspect", path], "build": ["build", "--from-archive", path, "-o", out, prog],
            "push": ["push", path, "localhost:9/a:1"], "copy": ["copy", path, out]}[verb]


@pytest.mark.parametrize("verb", READERS)
def test_a_symlink_the_user_names_is_followed_for_reading(tmp_path, prog, verb):
    layout, archive = _layout_and_archive(tmp_path, prog)
    for kind, (link, words) in _links(tmp_path, layout, archive).items():
        for spec in (str(link), str(link) + ":app:1"):
            out = tmp_path / "out.tar"
            r = run_cli(*_read_through(verb, spec, prog, out), env=NO_NETWORK)
            if words is not None:
                fails(r, 1, str(link), words)
            elif verb == "push":        # read whole, then the (refusing) proxy
                fails(r, 1, "cannot reach", "localhost:9")
            else:
                ok(r)
            if out.exists():
                out.unlink()


def test_a_symlink_the_user_names_is_followed_for_writing(tmp_path, prog):
    """-o through a link to a layout directory adds to the layout, and it reads back at once (the
    issue's example); through a link to an archive replaces the archive; the links stay links."""
    layout, archive = _layout_and_archive(tmp_path, prog)
    links = _links(tmp_path, layout, archive)
    link = links["layout"][0]
    two = ok(run_cli("build", "--format", "oci-layout", "-t", "app:2", "--env", "B=2", "-o", link, prog,
                     env=NO_NETWORK)).stdout.strip()
    assert link.is_symlink() and [d["annotations"]["org.opencontainers.image.ref.name"] for d in
                                  json.loads((layout / "index.json").read_text())["manifests"]] == ["1", "2"]
    for spec in ("%s:app:1" % link, "%s:app:2" % link):
        ok(run_cli("build", "--from-archive", spec, "-o", tmp_path / "on.tar", prog, env=NO_NETWORK))
    assert json.loads(ok(run_cli("inspect", "--json", "%s:app:2" % link)).stdout)["manifest"] == two
    ok(run_cli("copy", "%s:app:2" % link, links["archive"][0], env=NO_NETWORK))
    assert links["archive"][0].is_symlink() and image_of(str(archive))[0]["manifests"][0]["digest"] == two
    # what cannot be written through says so and leaves the link as it was
    fifo, loop = links["fifo"][0], links["loop"][0]
    fails(run_cli("build", "-o", fifo, prog), 1, "cannot write", "a FIFO")
    fails(run_cli("build", "--format", "oci-layout", "-o", fifo, prog), 1, "cannot write", "a FIFO")
    fails(run_cli("build", "-o", loop, prog), 1, "cannot write", "symbolic links")
    fails(run_cli("build", "--format", "oci-layout", "-o", loop, prog), 1, "cannot write", "symbolic links")
    assert fifo.is_symlink() and loop.is_symlink()
    # a dangling link's target is made, as cp does (a file, or a layout directory)
    dangling = links["dangling"][0]
    ok(run_cli("build", "--format", "oci-layout", "-o", dangling, prog))
    assert dangling.is_symlink() and (tmp_path / "nowhere.tar" / "oci-layout").is_file()
    ok(run_cli("inspect", dangling))


INSIDE = ["oci-layout", "index.json", "blobs", "blobs/sha256", "blob"]


@pytest.mark.parametrize("inside", INSIDE)
def test_a_link_inside_a_layout_is_refused_for_reading_and_writing(tmp_path, prog, inside):
    """The layout's own files are never links, however the layout is named: a hostile layout reads
    nothing and overwrites nothing outside itself (before, oci-layout -> a file of the user's had
    that file replaced by the next build -o into the layout)."""
    layout, _ = _layout_and_archive(tmp_path, prog)
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"]
    name = "blobs/sha256/" + manifest_digest[7:] if inside == "blob" else inside
    outside = tmp_path / "outside"
    os.rename(str(layout / name), str(outside))
    (layout / name).symlink_to(outside)
    (tmp_path / "link").symlink_to(layout)
    before = sorted(p.name for p in tmp_path.iterdir())
    content = outside.read_bytes() if outside.is_file() else None
    for path in (layout, tmp_path / "link"):
        for verb in READERS:
            fails(run_cli(*_read_through(verb, "%s:app:1" % path, prog, tmp_path / "out.tar"), env=NO_NETWORK),
                  1, "refusing", "not a plain file inside the layout")
        fails(run_cli("build", "--format", "oci-layout", "-t", "app:2", "-o", path, prog), 1,
              "cannot write the layout", "%s inside it is a symbolic link" % name)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if content is not None:
        assert outside.read_bytes() == content
