"""Referrers kept in archives and layout directories (issue 23 part 1): an SBOM that ``build --sbom``
writes into ``-o`` is reachable from index.json (one OCI index of the image and its artifacts, the
artifacts as platform unknown/unknown, as BuildKit keeps attestations), so a layout's garbage
collector keeps it and ``skopeo copy --all`` takes it along; skopeo, podman and zeroimage still read
one image without a name, and zeroimage reads the image back byte for byte (``io.zeroimage.image``).
The garbage collector here is the image-layout spec's rule: a blob no descriptor reaches from
index.json is garbage."""

import json
import os
import tarfile

import pytest

import zeroimage
from binaries import make_elf
from conftest import need_tool
from helpers import EPOCH, fails, ok, sh
from imagetools import run_cli


def run(*args):
    return run_cli(*args, env=EPOCH)


def _blob(layout, digest):
    return os.path.join(layout, "blobs", *digest.split(":", 1))


def load(path):
    with open(path) as f:
        return json.load(f)


def reachable(layout):
    """Every blob digest a descriptor reaches from index.json (through indexes, manifests, subjects
    left out: a subject points back, not down)."""
    seen, todo = set(), list(load(os.path.join(layout, "index.json"))["manifests"])
    while todo:
        desc = todo.pop()
        if desc["digest"] in seen or not os.path.exists(_blob(layout, desc["digest"])):
            continue
        seen.add(desc["digest"])
        if desc.get("mediaType", "").endswith(("index.v1+json", "manifest.v1+json", "manifest.v2+json",
                                               "list.v2+json")):
            value = load(_blob(layout, desc["digest"]))
            todo += value.get("manifests", []) + value.get("layers", [])
            todo += [value["config"]] if "config" in value else []
    return seen


def collect_garbage(layout):
    """Remove every blob index.json does not reach (what a layout garbage collector does); the removed."""
    kept, removed = reachable(layout), []
    for algorithm in os.listdir(os.path.join(layout, "blobs")):
        for name in os.listdir(os.path.join(layout, "blobs", algorithm)):
            if "%s:%s" % (algorithm, name) not in kept:
                os.unlink(os.path.join(layout, "blobs", algorithm, name))
                removed.append("%s:%s" % (algorithm, name))
    return removed


def extracted(archive, into):
    with tarfile.open(archive) as tar:
        tar.extractall(into, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return str(into)


@pytest.fixture
def programs(tmp_path):
    made = []
    for name, machine in (("app-amd64", 62), ("app-arm64", 183)):
        (tmp_path / name).write_bytes(make_elf(machine) + name.encode())
        made.append(tmp_path / name)
    return made


def _build(tmp_path, programs, multi, layout, media_types="oci"):
    amd, arm = programs
    out = tmp_path / ("layout" if layout else "app.tar")
    args = ["linux/amd64=%s" % amd, "linux/arm64=%s" % arm] if multi else [str(amd)]
    fmt = ["--format", "oci-layout"] if layout else []
    digest = ok(run("build", "--sbom", "--media-types", media_types, *fmt, "-t", "app:1", "-o", out, *args)
                ).stdout.strip()
    return out, digest


@pytest.mark.parametrize("multi,layout,media_types", [
    (False, False, "oci"), (True, False, "oci"), (False, True, "oci"), (True, True, "oci"),
    (False, False, "docker"), (True, True, "docker")])
def test_the_sbom_is_reachable_from_index_json_and_the_image_reads_back_the_same(tmp_path, programs, multi, layout,
                                                                                 media_types):
    out, digest = _build(tmp_path, programs, multi, layout, media_types)
    directory = str(out) if layout else extracted(out, tmp_path / "x")
    [entry] = load(os.path.join(directory, "index.json"))["manifests"]
    held = load(_blob(directory, entry["digest"]))
    assert entry["mediaType"] == zeroimage.OCI_INDEX and held["annotations"]["io.zeroimage.image"] == digest
    artifacts = [d for d in held["manifests"] if d.get("artifactType") == "application/spdx+json"]
    assert len(artifacts) == (2 if multi else 1)
    assert all(d["platform"] == {"architecture": "unknown", "os": "unknown"} for d in artifacts)
    images = [d for d in held["manifests"] if d not in artifacts]
    assert [d["platform"]["architecture"] for d in images] == (["amd64", "arm64"] if multi else ["amd64"])
    for desc in artifacts:      # each artifact names its image; its document has a file name
        artifact = load(_blob(directory, desc["digest"]))
        assert artifact["subject"]["digest"] in [d["digest"] for d in images]
        assert artifact["layers"][0]["annotations"] == {"org.opencontainers.image.title": "app-amd64.spdx.json"
                                                        if not multi else "app.spdx.json"}
    # zeroimage reads the image (or index) it built, by the same digest, and finds each SBOM
    assert ok(run("digest", out)).stdout.strip() == digest
    info = json.loads(ok(run("inspect", "--json", out)).stdout)
    assert info["digest"] == digest
    for platform in (("linux/amd64", "linux/arm64") if multi else ("linux/amd64",)):
        assert json.loads(ok(run("inspect", "--sbom", "--platform", platform, out)).stdout)["spdxVersion"] == "SPDX-2.3"
    # nothing but (for an index) the index's own blob is garbage: the SBOMs outlive a collector
    removed = collect_garbage(directory)
    assert removed == ([digest] if multi else [])
    assert json.loads(ok(run("inspect", "--sbom", "--platform", "linux/amd64", directory)).stdout)["files"]
    if not multi:
        assert ok(run("digest", directory)).stdout.strip() == digest
    # a build on it takes its image, not the SBOM
    ok(run("build", "--from-archive", out, "--platform", "linux/amd64", "--target", "/second",
           "-o", tmp_path / "second.tar", programs[0]))


def test_skopeo_reads_one_image_and_copies_the_sbom_with_all(tmp_path, programs):
    skopeo = need_tool("skopeo")
    out, digest = _build(tmp_path, programs, False, False)
    sh(skopeo, "copy", "--quiet", "oci-archive:%s" % out, "oci:%s:one" % (tmp_path / "one"))
    assert json.loads(sh(skopeo, "inspect", "oci:%s:one" % (tmp_path / "one")))["Digest"] == digest
    assert "Referrers" not in ok(run("inspect", "%s:one" % (tmp_path / "one"))).stdout
    sh(skopeo, "copy", "--quiet", "--all", "oci-archive:%s" % out, "oci:%s:all" % (tmp_path / "all"))
    assert collect_garbage(str(tmp_path / "all")) == []
    document = json.loads(ok(run("inspect", "--sbom", "%s:all" % (tmp_path / "all"))).stdout)
    assert document["files"][0]["fileName"] == "./app-amd64"
    # and zeroimage copies it on, with its SBOM
    copied = tmp_path / "copied.tar"
    ok(run("copy", "--referrers", "%s:all" % (tmp_path / "all"), copied))
    assert json.loads(ok(run("inspect", "--sbom", copied)).stdout) == document


def test_a_pushed_archive_is_the_image_and_its_sbom_a_referrer(tmp_path, programs, upstream):
    out, digest = _build(tmp_path, programs, False, False)
    host = upstream.host
    pushed = ok(run("push", out, "%s/stored/app:1" % host))
    assert pushed.stdout.strip().endswith("@" + digest)
    assert "application/spdx+json" in pushed.stderr          # said to stay behind
    ok(run("push", "--referrers", out, "%s/stored/app:2" % host))
    # an SBOM asked for and left out (Docker's encoding has other digests) is said under -q too
    converted = ok(run("push", "-q", "--referrers", "--media-types", "docker", out, "%s/stored/app:3" % host))
    assert "it is left out" in converted.stderr
    document = json.loads(ok(run("inspect", "--sbom", "%s/stored/app:2" % host)).stdout)
    assert document["spdxVersion"] == "SPDX-2.3"


def _layout_with(tmp_path, annotation, extra_blob=None):
    """A layout whose index.json names an index annotated io.zeroimage.image=ANNOTATION."""
    out, digest = _build(tmp_path, ((tmp_path / "app-amd64"), None), False, True)
    index_path = os.path.join(out, "index.json")
    [entry] = load(index_path)["manifests"]
    held = load(_blob(out, entry["digest"]))
    if annotation is None:
        del held["annotations"]
    else:
        held["annotations"]["io.zeroimage.image"] = annotation
    data = json.dumps(held).encode()
    new = zeroimage.sha256_digest(data)
    with open(_blob(out, new), "wb") as f:
        f.write(data)
    if extra_blob is not None:
        with open(_blob(out, zeroimage.sha256_digest(extra_blob)), "wb") as f:
            f.write(extra_blob)
    entry.update(digest=new, size=len(data))
    with open(index_path, "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [entry]}, f)
    return out, digest, new


NOT_JSON = b"\x00not json"


EMPTY = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"     # {}: there, not an index


@pytest.mark.parametrize("annotation", [
    None, "", "sha256:" + "0" * 64, "../../etc/passwd", "sha256:short", "sha512:" + "0" * 128,
    zeroimage.sha256_digest(NOT_JSON), EMPTY, "its own artifact", 7, ["x"]], ids=repr)
def test_an_index_that_names_no_image_it_holds_is_read_as_itself(tmp_path, programs, annotation):
    if annotation == "its own artifact":
        (tmp_path / "first").mkdir()
        out, _ = _build(tmp_path / "first", programs, False, True)       # the same build: the same SBOM
        [entry] = load(os.path.join(str(out), "index.json"))["manifests"]
        annotation = [d for d in load(_blob(str(out), entry["digest"]))["manifests"] if "artifactType" in d][0]["digest"]
    out, digest, new = _layout_with(tmp_path, annotation, NOT_JSON)
    r = run("inspect", "--json", out)
    if not isinstance(annotation, (str, type(None))):        # not an index: its annotations are strings
        fails(r, 1, "annotations is not a map of strings")
        return
    assert json.loads(ok(r).stdout)["digest"] == new            # the index itself, its image chosen
    assert ok(run("digest", "--platform", "linux/amd64", out)).stdout.strip() == digest
    assert ok(run("digest", out)).stdout.strip() == new
    ok(run("copy", out, tmp_path / "copy.tar"))
    # copied with what refers to its image: the SBOM it holds is not attached to it again
    assert ok(run("copy", "--referrers", out, tmp_path / "again.tar")).stdout.strip() == new
    assert ok(run("digest", tmp_path / "again.tar")).stdout.strip() == new


def test_skopeo_pushes_the_holder_and_zeroimage_reads_the_image_and_its_sbom_there(tmp_path, programs, upstream):
    """skopeo copy --all puts zeroimage's index of an image and its SBOM in a registry: read there as
    from the archive, the image (by its own digest) and the SBOM as its referrer."""
    skopeo = need_tool("skopeo")
    out, digest = _build(tmp_path, programs, False, False)
    ref = "%s/held/app:1" % upstream.host
    sh(skopeo, "copy", "--quiet", "--all", "--dest-tls-verify=false", "oci-archive:%s" % out, "docker://" + ref)
    document = json.loads(ok(run("inspect", "--sbom", ref)).stdout)
    assert json.loads(ok(run("inspect", "--json", ref)).stdout)["digest"] == digest
    copied = tmp_path / "back.tar"
    assert ok(run("copy", "--referrers", ref, copied)).stdout.strip() == digest
    assert ok(run("digest", copied)).stdout.strip() == digest
    assert json.loads(ok(run("inspect", "--sbom", copied)).stdout) == document


def test_only_what_the_layout_lists_refers_to_its_image(tmp_path, programs, upstream):
    """An SBOM the layout lists but does not hold is said, not passed over; one it holds but no longer
    lists (its image written again without it) is garbage, not shown or copied."""
    out, digest = _build(tmp_path, programs, False, True)
    [entry] = load(os.path.join(out, "index.json"))["manifests"]
    [artifact] = [d for d in load(_blob(out, entry["digest"]))["manifests"] if "artifactType" in d]
    os.rename(_blob(out, artifact["digest"]), str(tmp_path / "kept"))
    info = json.loads(ok(run("inspect", "--json", out)).stdout)
    assert info["digest"] == digest and "lists the referrer %s" % artifact["digest"] in info["referrersUnknown"]
    fails(run("push", "--referrers", out, "%s/held/missing:1" % upstream.host), 1, artifact["digest"], "missing")
    fails(run("copy", "--referrers", out, tmp_path / "c.tar"), 1, artifact["digest"])
    assert not (tmp_path / "c.tar").exists()
    with open(_blob(out, artifact["digest"]), "wb") as f:      # there, but not the bytes listed
        f.write(b"x" * artifact["size"])
    info = json.loads(ok(run("inspect", "--json", out)).stdout)
    assert "lists the referrer %s" % artifact["digest"] in info["referrersUnknown"]
    os.replace(str(tmp_path / "kept"), _blob(out, artifact["digest"]))
    ok(run("build", "--format", "oci-layout", "-t", "app:1", "-o", out, programs[0]))     # again, no --sbom
    assert "Referrers" not in ok(run("inspect", out)).stdout
    ok(run("copy", "--referrers", out, tmp_path / "c.tar"))
    assert "Referrers" not in ok(run("inspect", tmp_path / "c.tar")).stdout


def test_an_image_another_replaces_in_a_layout_is_said(tmp_path, programs):
    """A layout names its images by tag, as skopeo's oci:DIR:TAG: another name with the same tag
    replaces the image there, said even under -q; the same name again is an update, not said."""
    layout = tmp_path / "layout"
    ok(run("build", "-q", "--format", "oci-layout", "-o", layout, "-t", "app:1", programs[0]))
    r = ok(run("build", "-q", "--format", "oci-layout", "-o", layout, "-t", "other:1", programs[0]))
    assert "other:1 replaces app:1 there" in r.stderr
    assert ok(run("build", "-q", "--format", "oci-layout", "-o", layout, "-t", "other:1", programs[0])).stderr == ""
    ok(run("build", "-q", "--format", "oci-layout", "-o", layout, "-t", "app:2", programs[0]))
    assert len(load(os.path.join(str(layout), "index.json"))["manifests"]) == 2


def test_a_holder_read_as_itself_copies_as_it_is_round_after_round(tmp_path, programs):
    """A multi-platform holder whose own index a collector removed (Docker's media types: the holder
    lists Docker manifests beside OCI artifacts) is read as itself: copied, with or without
    --referrers, byte for byte, its SBOMs listed once, round after round."""
    out, _ = _build(tmp_path, programs, True, True, "docker")
    collect_garbage(str(out))
    held = ok(run("digest", out)).stdout.strip()
    source = out
    for n in range(2):
        copied = tmp_path / ("round%d.tar" % n)
        assert ok(run("copy", "--referrers", source, copied)).stdout.strip() == held
        directory = extracted(copied, tmp_path / ("x%d" % n))
        [entry] = load(os.path.join(directory, "index.json"))["manifests"]
        assert entry["digest"] == held
        assert len(json.loads(ok(run("inspect", "--json", copied)).stdout)["referrers"]) == 1
        source = copied
    assert ok(run("copy", out, tmp_path / "plain.tar")).stdout.strip() == held


def test_one_image_under_two_tags_has_its_sbom_once(tmp_path, programs):
    layout = tmp_path / "layout"
    for tag in ("app:1", "app:2"):
        ok(run("build", "--sbom", "--format", "oci-layout", "-o", layout, "-t", tag, programs[0]))
    assert len(json.loads(ok(run("inspect", "--json", "%s:app:1" % layout)).stdout)["referrers"]) == 1
    r = ok(run("copy", "--referrers", "%s:app:1" % layout, tmp_path / "c.tar"))
    assert "1 referrer to copy" in r.stderr


def test_an_artifact_index_json_lists_is_a_referrer_not_an_image(tmp_path, programs):
    """As `oras attach --oci-layout` writes it: the artifact an entry of index.json beside the image."""
    out, digest = _build(tmp_path, programs, False, True)
    index_path = os.path.join(str(out), "index.json")
    index = load(index_path)
    [entry] = index["manifests"]
    [artifact] = [d for d in load(_blob(str(out), entry["digest"]))["manifests"] if "artifactType" in d]
    image = [d for d in load(_blob(str(out), entry["digest"]))["manifests"] if d is not artifact][0]
    index["manifests"] = [dict(image, annotations=entry["annotations"]),
                          {k: artifact[k] for k in ("mediaType", "digest", "size", "artifactType")}]
    with open(index_path, "w") as f:
        json.dump(index, f)
    assert ok(run("digest", out)).stdout.strip() == digest
    assert len(json.loads(ok(run("inspect", "--json", out)).stdout)["referrers"]) == 1
    ok(run("copy", "--referrers", out, tmp_path / "c.tar"))
    assert json.loads(ok(run("inspect", "--json", tmp_path / "c.tar")).stdout)["referrers"][0]["digest"] == \
        artifact["digest"]
