"""SBOMs (issue 15): build --sbom attaches an SPDX 2.3 document to each image the OCI 1.1 way (an
artifact manifest whose subject is the image); inspect lists referrers and prints the SBOM; copy and
push bring referrers along with --referrers. The document's fields are checked against SPDX 2.3's
required ones here; archives are read by skopeo, podman, docker and zeroimage itself; pushes go to
the real docker-registry (no referrers API: the referrers tag schema) and, through QuirkProxy's
"referrers-api" mode, to a registry that has the API."""

import hashlib
import json
import shutil
import subprocess
import tempfile

import pytest

import zeroimage
from binaries import make_elf, rewritten_go_binary
from conftest import need_tool
from helpers import EPOCH, fails, ok, sh
from imagetools import read_archive, run_cli
from registries import open_v2
from sboms import CHECKSUMS, check_spdx, go_info

EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def spdx(info, target="/app", created="2023-11-14T22:13:20Z"):
    return json.loads(zeroimage.spdx_document(target, CHECKSUMS, info, created))


def purls(doc):
    return {p["name"]: [r["referenceLocator"] for r in p.get("externalRefs", [])] for p in doc["packages"]}


# -- the document: pure --


def test_spdx_document_of_a_go_program():
    doc = spdx(go_info(), "/usr/bin/app")
    check_spdx(doc)
    program = doc["packages"][0]
    assert (program["name"], program["versionInfo"]) == ("example.com/app", "v1.2.3")
    assert program["primaryPackagePurpose"] == "APPLICATION"
    assert doc["files"][0]["fileName"] == "./usr/bin/app"
    assert {c["algorithm"]: c["checksumValue"] for c in doc["files"][0]["checksums"]} == CHECKSUMS
    assert program["packageVerificationCode"]["packageVerificationCodeValue"] == \
        hashlib.sha1(CHECKSUMS["SHA1"].encode()).hexdigest()
    assert purls(doc) == {
        "example.com/app": ["pkg:golang/example.com/app@v1.2.3"],
        "stdlib": ["pkg:golang/stdlib@1.22.1"],
        "github.com/pkg/errors": ["pkg:golang/github.com/pkg/errors@v0.9.1"],
        "github.com/Docker/x": ["pkg:golang/github.com/Docker/x@v20.10.0%2Bincompatible"],
        "example.org/fork/sys": ["pkg:golang/example.org/fork/sys@v0.1.1"],     # what replaced golang.org/x/sys
        "../net": [],                                                          # a local directory: no purl
    }
    by_name = {p["name"]: p for p in doc["packages"]}
    assert by_name["example.org/fork/sys"]["comment"] == "replaces golang.org/x/sys v0.1.0"
    assert by_name["github.com/pkg/errors"]["checksums"] == [
        {"algorithm": "SHA256", "checksumValue": bytes(range(32)).hex()}]      # go.sum's h1: as hex
    assert "checksums" not in by_name["github.com/Docker/x"]                   # "h1:bad" is no SHA-256
    depends = [r["relatedSpdxElement"] for r in doc["relationships"] if r["relationshipType"] == "DEPENDS_ON"]
    assert sorted(depends) == sorted(p["SPDXID"] for p in doc["packages"][1:])
    assert {"spdxElementId": "SPDXRef-Package-program", "relationshipType": "CONTAINS",
            "relatedSpdxElement": "SPDXRef-File-program"} in doc["relationships"]


def test_spdx_document_of_a_rust_program():
    m = zeroimage.Module
    info = zeroimage.BuildInfo("rust", main=m("myapp", "0.3.0", source="local"),
                               deps=(m("serde", "1.0.190", source="crates.io"), m("gitdep", "0.1.0", source="git")))
    doc = spdx(info)
    check_spdx(doc)
    assert purls(doc) == {"myapp": [], "serde": ["pkg:cargo/serde@1.0.190"], "gitdep": []}


def test_spdx_document_without_build_info_names_the_file():
    doc = spdx(None, "/bin/tool")
    check_spdx(doc)
    assert [p["name"] for p in doc["packages"]] == ["tool"]
    assert [r["relationshipType"] for r in doc["relationships"]] == ["DESCRIBES", "CONTAINS"]


def test_spdx_document_is_the_same_for_the_same_inputs():
    assert zeroimage.spdx_document("/app", CHECKSUMS, go_info(), "2023-11-14T22:13:20Z") == \
        zeroimage.spdx_document("/app", CHECKSUMS, go_info(), "2023-11-14T22:13:20Z")
    one, other = spdx(go_info()), spdx(go_info()._replace(toolchain="go1.22.2"))
    assert one["documentNamespace"] != other["documentNamespace"]       # unique to its content


def test_artifact_manifest_shape():
    image = zeroimage.bytes_blob(b'{"x":1}')
    subject = zeroimage.Image({}, {}, None, [image], zeroimage.OCI_MANIFEST)
    artifact = zeroimage.attach(subject, zeroimage.Attachment("application/spdx+json", b"{}", "2023-11-14T22:13:20Z"))
    m = artifact.manifest
    assert m["mediaType"] == zeroimage.OCI_MANIFEST and m["artifactType"] == "application/spdx+json"
    assert m["config"] == {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2,
                           "data": "e30="}
    assert m["layers"] == [{"mediaType": "application/spdx+json", "digest": EMPTY_DIGEST, "size": 2}]
    assert m["subject"] == {"mediaType": zeroimage.OCI_MANIFEST, "digest": image.digest, "size": image.size}
    assert m["annotations"] == {"org.opencontainers.image.created": "2023-11-14T22:13:20Z"}
    assert [b.digest for b in artifact.blobs][-1] == artifact.digest


def test_referrers_tag_follows_the_spec_table():
    assert zeroimage.referrers_tag("sha256:" + "a" * 64) == "sha256-" + "a" * 64
    assert zeroimage.referrers_tag("sha512:" + "a" * 128) == "sha512-" + "a" * 64
    assert zeroimage.referrers_tag(
        "test+algorithm+using+algorithm+separators+and+lots+of+characters+to+excercise+overall+truncation:"
        "alsoSome=InTheEncodedSectionToShowHyphenReplacementAndLotsAndLotsOfCharactersToExcerciseEncodedTruncation") \
        == "test-algorithm-using-algorithm-s-alsoSome-InTheEncodedSectionToShowHyphenReplacementAndLotsAndLot"


def test_referrer_descriptor():
    manifest = {"mediaType": zeroimage.OCI_MANIFEST, "config": {"mediaType": "application/vnd.example.sig"},
                "annotations": {"a": "b", "n": 1}}
    assert zeroimage.referrer_descriptor(manifest, "sha256:" + "c" * 64, 10) == {
        "mediaType": zeroimage.OCI_MANIFEST, "digest": "sha256:" + "c" * 64, "size": 10,
        "artifactType": "application/vnd.example.sig", "annotations": {"a": "b"}}


# -- archives and layouts --


@pytest.fixture
def binaries(tmp_path):
    """Three small programs: for amd64, arm64, and another for amd64."""
    made = []
    for name, machine in (("app-amd64", 62), ("app-arm64", 183), ("other", 62)):
        path = tmp_path / name
        path.write_bytes(make_elf(machine) + name.encode())
        made.append(path)
    return made


def run(*args, env=EPOCH):
    return run_cli(*args, env=env)


def attached(files, top_digest):
    """The artifact manifests among an archive's blobs whose subject is ``top_digest``."""
    found = []
    for name, data in files.items():
        if name.startswith("blobs/") and len(data) < 65536:
            try:
                value = json.loads(data)
            except ValueError:
                continue
            if isinstance(value, dict) and value.get("subject", {}).get("digest") == top_digest:
                found.append(value)
    return found


def test_build_sbom_into_an_archive(tmp_path, busybox_program):
    a, b, plain = tmp_path / "a.tar", tmp_path / "b.tar", tmp_path / "plain.tar"
    digest = ok(run("build", "--sbom", "-o", a, busybox_program)).stdout.strip()
    ok(run("build", "--sbom", "-o", b, busybox_program))
    assert a.read_bytes() == b.read_bytes()                                 # the same inputs, the same bytes
    assert ok(run("build", "-o", plain, busybox_program)).stdout.strip() == digest     # the image is unchanged
    files = read_archive(str(a))
    assert len(json.loads(files["index.json"])["manifests"]) == 1         # one image named: tools need no name
    [artifact] = attached(files, digest)
    assert artifact["artifactType"] == "application/spdx+json"
    document = ok(run("inspect", "--sbom", a)).stdout
    assert document.encode() == files["blobs/sha256/" + artifact["layers"][0]["digest"].split(":")[1]]   # as stored
    doc = json.loads(document)
    check_spdx(doc)
    program = busybox_program.read_bytes()
    assert {c["algorithm"]: c["checksumValue"] for c in doc["files"][0]["checksums"]} == {
        "SHA1": hashlib.sha1(program).hexdigest(), "SHA256": hashlib.sha256(program).hexdigest()}
    assert doc["files"][0]["fileName"] == "./busybox"
    assert doc["creationInfo"]["created"] == "2023-11-14T22:13:20Z"        # SOURCE_DATE_EPOCH
    info = json.loads(ok(run("inspect", "--json", a)).stdout)
    assert info["referrers"] == [{"artifactType": "application/spdx+json", "digest": zeroimage.sha256_digest(
        json.dumps(artifact, sort_keys=True, separators=(",", ":")).encode()), "size": info["referrers"][0]["size"],
        "mediaType": zeroimage.OCI_MANIFEST}]
    assert "Referrers:\n  application/spdx+json  sha256:" in ok(run("inspect", a)).stdout
    assert json.loads(ok(run("inspect", "--json", plain)).stdout)["referrers"] == []
    built = json.loads(ok(run("build", "--json", "--sbom", "-o", tmp_path / "c.tar", busybox_program)).stdout)
    assert built["referrers"] == [{"subject": digest, "digest": info["referrers"][0]["digest"],
                                   "artifactType": "application/spdx+json"}]


def test_build_sbom_into_a_layout_directory(tmp_path, binaries):
    amd, arm, other = binaries
    layout = tmp_path / "layout"
    ok(run("build", "--format", "oci-layout", "-o", layout, "-t", "app:1", other))
    ok(run("build", "--sbom", "--format", "oci-layout", "-o", layout, "-t", "app:2",
           "linux/amd64=%s" % amd, "linux/arm64=%s" % arm))
    assert len(json.loads((layout / "index.json").read_text())["manifests"]) == 2     # no entry for artifacts
    for platform, program in (("linux/amd64", amd), ("linux/arm64", arm)):    # each image its own SBOM
        doc = json.loads(ok(run("inspect", "--sbom", "--platform", platform, "%s:app:2" % layout)).stdout)
        check_spdx(doc)
        assert doc["files"][0]["checksums"][1]["checksumValue"] == hashlib.sha256(program.read_bytes()).hexdigest()
    fails(run("inspect", "--sbom", "%s:app:1" % layout), 1, "no application/spdx+json attached", "--sbom")


def test_sbom_errors(tmp_path, busybox_program):
    fails(run("build", "--sbom", "--load", busybox_program), 2, "--sbom", "engine")
    plain = tmp_path / "plain.tar"
    ok(run("build", "-o", plain, busybox_program))
    fails(run("inspect", "--sbom", plain), 1, "no application/spdx+json attached")
    fails(run("inspect", "--sbom", "--raw", plain), 2)


def test_archive_with_an_sbom_still_loads_everywhere(tmp_path, busybox_program, docker_engine):
    archive = tmp_path / "app.tar"
    digest = ok(run("build", "--sbom", "-t", "example.com/sbom/app:1", "-o", archive, busybox_program)).stdout.strip()
    # skopeo, naming no image in the archive
    skopeo = need_tool("skopeo")
    sh(skopeo, "copy", "--quiet", "oci-archive:%s" % archive, "oci:%s:copied" % (tmp_path / "copied"))
    assert json.loads(sh(skopeo, "inspect", "oci:%s:copied" % (tmp_path / "copied")))["Digest"] == digest
    # zeroimage, as a base
    ok(run("build", "--from-archive", archive, "--target", "/second", "-o", tmp_path / "second.tar", busybox_program))
    # podman
    podman = need_tool("podman")
    runroot = tempfile.mkdtemp(prefix="zi-podman-")
    store = [podman, "--root", tmp_path / "storage", "--runroot", runroot, "--storage-driver", "vfs"]
    try:
        assert "Loaded image: example.com/sbom/app:1" in sh(*store, "load", "-i", archive)
        # podman loads the image from the index that holds it and its SBOM: it knows the image by both
        [loaded] = json.loads(sh(*store, "image", "inspect", "example.com/sbom/app:1"))
        assert "example.com/sbom/app@" + digest in loaded["RepoDigests"]
    finally:
        subprocess.run([str(a) for a in store] + ["rmi", "--all", "--force"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(runroot, ignore_errors=True)
    # docker
    assert "Loaded image: example.com/sbom/app:1" in docker_engine.docker("load", "-i", archive)
    assert docker_engine.run("example.com/sbom/app:1", "echo", "hi") == "hi\n"


# -- registries --


def test_sbom_pushed_to_a_registry_without_the_referrers_api(open_place, busybox_program):
    place = open_place
    pushed = ok(run_cli("build", "--sbom", "--push", place.up("sbom/app:1"), busybox_program,
                        env=dict(place.env, **EPOCH)))
    digest = pushed.stdout.strip().rsplit("@", 1)[1]
    assert "referrers tag sha256-" in pushed.stderr
    index = referrers_index_of(place, "sbom/app", digest)
    assert index["mediaType"] == zeroimage.OCI_INDEX
    [desc] = index["manifests"]
    assert desc["artifactType"] == "application/spdx+json"
    assert desc["annotations"] == {"org.opencontainers.image.created": "2023-11-14T22:13:20Z"}
    _, artifact = place.upstream_manifest("sbom/app@" + desc["digest"])
    assert artifact["subject"]["digest"] == digest
    check_spdx(json.loads(place.ok("inspect", "--sbom", place.up("sbom/app:1")).stdout))
    assert json.loads(place.ok("inspect", "--json", place.up("sbom/app:1")).stdout)["referrers"][0]["digest"] == \
        desc["digest"]

    # Another tool's referrer in the list stays; the same SBOM again is not listed twice.
    with place.session() as session:
        registry = session.registry(place.upstream.host)
        subject = zeroimage.Image({}, {}, None, [zeroimage.bytes_blob(registry.get_manifest("sbom/app", digest)[0])],
                                  zeroimage.OCI_MANIFEST)
        signature = zeroimage.attach(subject, zeroimage.Attachment("application/vnd.example.signature", b"signed"))
        zeroimage.push_referrer(session, registry, "sbom/app", signature, ["repository:sbom/app:push,pull"])
    ok(run_cli("build", "--sbom", "--push", place.up("sbom/app:1"), busybox_program, env=dict(place.env, **EPOCH)))
    listed = [d["artifactType"] for d in referrers_index_of(place, "sbom/app", digest)["manifests"]]
    assert listed == ["application/vnd.example.signature", "application/spdx+json"]     # once, moved last
    report = place.ok("inspect", place.up("sbom/app:1")).stdout
    assert "application/vnd.example.signature" in report and "application/spdx+json" in report


def test_sbom_pushed_to_a_registry_with_the_referrers_api(open_place, busybox_program):
    place = open_place
    place.proxy.mode = "referrers-api"
    pushed = ok(run_cli("build", "--sbom", "--push", place.via("api/app:1"), busybox_program,
                        env=dict(place.env, **EPOCH)))
    digest = pushed.stdout.strip().rsplit("@", 1)[1]
    assert "(referrers API)" in pushed.stderr and place.proxy.counts["referrer remembered"] == 1
    assert zeroimage.referrers_tag(digest) not in place.ok("tags", place.up("api/app")).stdout.split()
    with place.session() as session:        # two more referrers: the list comes in pages of two
        registry = session.registry(place.proxy.host)
        subject = zeroimage.Image({}, {}, None, [zeroimage.bytes_blob(registry.get_manifest("api/app", digest)[0])],
                                  zeroimage.OCI_MANIFEST)
        for n in range(2):
            artifact = zeroimage.attach(subject, zeroimage.Attachment("application/vnd.example.n%d" % n, b"%d" % n))
            assert zeroimage.push_referrer(session, registry, "api/app", artifact,
                                           ["repository:api/app:push,pull"]) == "referrers API"
    info = json.loads(place.ok("inspect", "--json", place.via("api/app:1")).stdout)
    assert [r["artifactType"] for r in info["referrers"]] == [
        "application/spdx+json", "application/vnd.example.n0", "application/vnd.example.n1"]
    assert place.proxy.counts["referrers pages"] >= 2
    check_spdx(json.loads(place.ok("inspect", "--sbom", place.via("api/app:1")).stdout))


def test_copy_and_push_bring_referrers_along(open_place, busybox_program, tmp_path):
    place = open_place
    env = dict(place.env, **EPOCH)
    digest = ok(run_cli("build", "--sbom", "--push", place.up("from/app:1"), busybox_program, env=env)
                ).stdout.strip().rsplit("@", 1)[1]
    ok(run_cli("copy", place.up("from/app:1"), place.up("plain/app:1"), env=env))
    line = fails(run_cli("inspect", "--sbom", place.up("plain/app:1"), env=env), 1, "no application/spdx+json attached",
                 "--referrers")
    assert "login" not in line and "not found" not in line
    copied = ok(run_cli("copy", "--referrers", place.up("from/app:1"), place.up("to/app:1"), env=env))
    assert "1 referrer to copy" in copied.stderr
    sbom = ok(run_cli("inspect", "--sbom", place.up("from/app:1"), env=env)).stdout
    assert ok(run_cli("inspect", "--sbom", place.up("to/app:1"), env=env)).stdout == sbom
    archive = tmp_path / "copied.tar"
    ok(run_cli("copy", "--referrers", place.up("from/app:1"), str(archive), env=env))
    assert ok(run_cli("inspect", "--sbom", archive, env=env)).stdout == sbom
    ok(run_cli("push", "--referrers", archive, place.up("pushed/app:1"), env=env))
    assert ok(run_cli("inspect", "--sbom", place.up("pushed/app:1"), env=env)).stdout == sbom
    assert [d["digest"] for d in referrers_index_of(place, "pushed/app", digest)["manifests"]] == \
        [d["digest"] for d in referrers_index_of(place, "from/app", digest)["manifests"]]
    # Docker's encoding has another digest: the SBOM, which names the OCI one, stays behind, said so.
    pushed = ok(run_cli("push", "--referrers", "--media-types", "docker", archive, place.up("docker/app:1"), env=env))
    assert "it is left out" in pushed.stderr


def referrers_index_of(place, repository, digest):
    return place.upstream_manifest("%s:%s" % (repository, zeroimage.referrers_tag(digest)))[1]


# -- the edges of reading and keeping referrers --


SUBJECT = "sha256:" + "d" * 64
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"


def referrers_answer(status, body=b"", content_type=INDEX_TYPE, headers=()):
    return lambda h: h.reply(status, body, [("Content-Type", content_type)] + list(headers))


def ask_referrers(servers, route):
    target = servers({"/v2/": open_v2, "/v2/a/referrers/" + SUBJECT: route})
    with zeroimage.Session({}) as session:
        return session.registry(target.netloc).referrers("a", SUBJECT)


@pytest.mark.parametrize("route", [
    referrers_answer(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"no route"}]}', "application/json"),
    referrers_answer(400, b"bad request", "text/plain"),
    referrers_answer(405, b"", "text/plain"),
    referrers_answer(501, b"", "text/plain"),
    referrers_answer(200, b"<html>a web page</html>", "text/html"),      # a catch-all front page
], ids=["404", "400", "405", "501", "html"])
def test_registries_without_the_referrers_api(servers, route):
    assert ask_referrers(servers, route) is None


def test_referrers_api_list_is_read_whole_and_checked(servers):
    one = {"mediaType": zeroimage.OCI_MANIFEST, "digest": "sha256:" + "1" * 64, "size": 3, "artifactType": "x/y"}
    two = dict(one, digest="sha256:" + "2" * 64)
    page2 = "/v2/a/referrers/%s?page=2" % SUBJECT

    def first(h):
        if h.path.endswith("page=2"):
            return h.reply(200, json.dumps({"schemaVersion": 2, "manifests": [two]}).encode(),
                           [("Content-Type", INDEX_TYPE)])
        h.reply(200, json.dumps({"schemaVersion": 2, "manifests": [one]}).encode(),
                [("Content-Type", INDEX_TYPE), ("Link", '<%s>; rel="next"' % page2)])
    target = servers({"/v2/": open_v2, "/v2/a/referrers/" + SUBJECT: first})
    with zeroimage.Session({}) as session:
        assert session.registry(target.netloc).referrers("a", SUBJECT) == [one, two]
    for body in (b"[1]", b'{"manifests": [1]}', b'{"manifests": "x"}', b"not json"):
        with pytest.raises(zeroimage.RegistryError):
            ask_referrers(servers, referrers_answer(200, body))


def test_inspect_shows_the_image_when_referrers_cannot_be_read(servers, tmp_path, busybox_program):
    """A registry whose referrers list is broken: inspect still shows the image, saying so."""
    archive = tmp_path / "app.tar"
    ok(run("build", "-o", archive, busybox_program))
    files = read_archive(str(archive))
    top = json.loads(files["index.json"])["manifests"][0]
    blobs = {n.split("/")[-1]: data for n, data in files.items() if n.startswith("blobs/")}
    manifest = blobs[top["digest"].split(":")[1]]
    config_digest = json.loads(manifest)["config"]["digest"]
    routes = {"/v2/": open_v2,
              "/v2/a/manifests/1": referrers_answer(200, manifest, zeroimage.OCI_MANIFEST),
              "/v2/a/manifests/" + top["digest"]: referrers_answer(200, manifest, zeroimage.OCI_MANIFEST),
              "/v2/a/blobs/" + config_digest: referrers_answer(200, blobs[config_digest.split(":")[1]], "application/json"),
              "/v2/a/referrers/" + top["digest"]: referrers_answer(200, b'{"manifests": 7}')}
    target = servers(routes)
    shown = ok(run("inspect", "%s/a:1" % target.netloc))
    assert "Referrers:   unknown (" in shown.stdout and "Entrypoint:" in shown.stdout
    info = json.loads(ok(run("inspect", "--json", "%s/a:1" % target.netloc)).stdout)
    assert info["referrers"] is None and info["referrersUnknown"]
    fails(run("inspect", "--sbom", "%s/a:1" % target.netloc), 1)


def test_a_referrers_tag_holding_something_else_is_left_alone(open_place, busybox_program, tmp_path):
    """The spec: a referrers tag that is not an OCI index is reported, and the remaining steps skipped."""
    place = open_place
    env = dict(place.env, **EPOCH)
    digest = ok(run_cli("build", "-o", tmp_path / "a.tar", busybox_program, env=env)).stdout.strip()
    squatter = tmp_path / "squatter"
    squatter.write_bytes(busybox_program.read_bytes() + b"other")
    tag = zeroimage.referrers_tag(digest)
    squatted = ok(run_cli("build", "--push", place.up("odd/app:" + tag), squatter, env=env)).stdout.strip()
    pushed = ok(run_cli("build", "--sbom", "--push", place.up("odd/app:1"), busybox_program, env=env))
    assert "the image is pushed without it" in pushed.stderr and "not an OCI index" in pushed.stderr
    assert pushed.stdout.strip().endswith(digest)
    assert ok(run_cli("digest", place.up("odd/app:" + tag), env=env)).stdout.strip() == squatted.rsplit("@", 1)[1]


def test_a_layouts_referrers_are_found_among_its_blobs_and_nothing_else(tmp_path, busybox_program):
    layout = tmp_path / "layout"
    digest = ok(run("build", "--sbom", "--format", "oci-layout", "-o", layout, busybox_program)).stdout.strip()
    blobs = layout / "blobs" / "sha256"
    [real] = [d for d in json.loads(ok(run("inspect", "--json", layout)).stdout)["referrers"]]

    def put(data):
        (blobs / hashlib.sha256(data).hexdigest()).write_bytes(data)

    put(b"not json")
    put(json.dumps({"subject": {"digest": digest}, "mediaType": zeroimage.OCI_INDEX, "manifests": []}).encode())
    put(json.dumps({"subject": {"digest": "sha256:" + "0" * 64}, "mediaType": zeroimage.OCI_MANIFEST}).encode())
    put(json.dumps([{"subject": {"digest": digest}}]).encode())
    lying = json.dumps({"subject": {"digest": digest}, "mediaType": zeroimage.OCI_MANIFEST}).encode()
    (blobs / ("e" * 64)).write_bytes(lying)           # its name is not its digest: never trusted
    (blobs / "not-a-digest").write_bytes(lying)
    (layout / "blobs" / "sha256" / ("f" * 64)).mkdir()
    assert json.loads(ok(run("inspect", "--json", layout)).stdout)["referrers"] == [real]
    assert json.loads(ok(run("inspect", "--sbom", layout)).stdout)["spdxVersion"] == "SPDX-2.3"


def test_go_program_pushed_its_build_info_labels_sbom_and_inspect(open_place, tmp_path, monkeypatch):
    """End to end with a Go binary whose build info has modules (a real one, rewritten): the labels,
    the SBOM's packages, and inspect reading the program back out of the registry's layers."""
    place = open_place
    program = rewritten_go_binary(tmp_path)
    env = dict(place.env, **EPOCH)
    ok(run_cli("build", "--sbom", "--from", "scratch", "--push", place.up("go/app:1"), program, env=env))
    info = json.loads(ok(run_cli("inspect", "--json", "--build-info", place.up("go/app:1"), env=env)).stdout)
    assert info["labels"]["org.opencontainers.image.version"] == "v2.3.4"
    assert info["labels"]["org.opencontainers.image.source"] == "https://github.com/acme/app"
    assert info["buildInfo"]["main"]["path"] == "github.com/acme/app/v2"
    doc = json.loads(ok(run_cli("inspect", "--sbom", place.up("go/app:1"), env=env)).stdout)
    check_spdx(doc)
    assert purls(doc) == {
        "github.com/acme/app/v2": ["pkg:golang/github.com/acme/app/v2@v2.3.4"],
        "stdlib": ["pkg:golang/stdlib@1.22.1"],
        "golang.org/x/sys": ["pkg:golang/golang.org/x/sys@v0.15.0"],
        "github.com/new/lib": ["pkg:golang/github.com/new/lib@v1.1.0"],
        "../local": []}
    # inspect downloads only so much from a registry to find the program: past it, no build info
    monkeypatch.setattr(zeroimage, "MAX_INSPECT_DOWNLOAD", 1000)
    with place.session() as session:
        value = json.loads(zeroimage.inspect(place.up("go/app:1"), mode="json", build_info=True, session=session))
    assert value["buildInfo"] is None and value["labels"]["org.opencontainers.image.version"] == "v2.3.4"


def _inspect_requests(place, *args):
    """What ``inspect ARGS go/app:1`` through the proxy asked the registry: (method, path) each."""
    del place.proxy.seen[:]
    out = place.ok("inspect", *(list(args) + [place.via("go/app:1")])).stdout
    return out, [(method, path) for method, path, _ in place.proxy.seen]


@pytest.mark.parametrize("api", [False, True], ids=["referrers tag", "referrers API"])
def test_inspect_of_a_registry_image_reads_no_layer_unless_asked(open_place, tmp_path, api):
    """inspect costs what skopeo inspect does: a manifest, a config and the referrers (the SBOM's
    entry among them, named in the summary, not read); with --build-info the program's layer too."""
    place = open_place
    place.proxy.mode = "referrers-api" if api else "pass"
    program = rewritten_go_binary(tmp_path)
    pushed = ok(run_cli("build", "--sbom", "--from", "scratch", "--push", place.via("go/app:1"), program,
                        env=dict(place.env, **EPOCH)))
    digest = pushed.stdout.strip().rsplit("@", 1)[1]
    manifest = place.upstream_manifest("go/app@" + digest)[1]
    layers = {d["digest"] for d in manifest["layers"]}
    config = manifest["config"]["digest"]
    for args in ([], ["--json"]):
        out, asked = _inspect_requests(place, *args)
        blobs = [path.rsplit("/", 1)[1] for method, path in asked if "/blobs/" in path]
        assert [m for m, _ in asked if m != "GET"] == [] and blobs == [config], asked
        manifests = [path for _, path in asked if "/manifests/" in path]
        referrers = [path for _, path in asked if "/referrers/" in path]
        assert manifests[0] == "/v2/go/app/manifests/1" and len(manifests) == (1 if api else 2), asked
        # the ping, the manifest, the config, the referrers (of a registry without the API: its 404,
        # then the referrers tag)
        assert len(referrers) == 1 and len(asked) == (4 if api else 5), asked
        if args:
            value = json.loads(out)
            assert value["buildInfo"] is None and value["buildInfoUnread"] == "not asked"
            assert value["labels"]["org.opencontainers.image.version"] == "v2.3.4"
        else:
            assert "Build info:  not read (--build-info reads the program from its layer; its SBOM lists what " \
                   "it is built from: --sbom)\n" in out and "Go go1.22.1" not in out
    out, asked = _inspect_requests(place, "--build-info")
    assert {path.rsplit("/", 1)[1] for _, path in asked if "/blobs/" in path} == layers | {config}, asked
    assert "Build info:  Go go1.22.1\n" in out and "not read" not in out


def test_copy_referrers_of_every_shape(open_place, busybox_program):
    """Referrers zeroimage did not make: no artifactType (the config's media type says it), and a
    stale entry in a referrers tag (its subject another image): the first copied, the second not."""
    place = open_place
    env = dict(place.env, **EPOCH)
    digest = ok(run_cli("build", "--push", place.up("shapes/app:1"), busybox_program, env=env)
                ).stdout.strip().rsplit("@", 1)[1]
    with place.session() as session:
        registry = session.registry(place.upstream.host)
        scopes = ["repository:shapes/app:push,pull"]
        image = registry.get_manifest("shapes/app", digest)[0]
        config = zeroimage.bytes_blob(b'{"signed": true}')
        manifest = {"schemaVersion": 2, "mediaType": zeroimage.OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.example.sig.config", "digest": config.digest,
                               "size": config.size}, "layers": [],
                    "subject": {"mediaType": zeroimage.OCI_MANIFEST, "digest": digest, "size": len(image)}}
        data = json.dumps(manifest).encode()
        untyped = zeroimage.Image(manifest, {}, None, [config, zeroimage.bytes_blob(data)], zeroimage.OCI_MANIFEST)
        assert zeroimage.push_referrer(session, registry, "shapes/app", untyped, scopes).startswith("referrers tag")
        stale = registry.referrers_index("shapes/app", digest)
        other = zeroimage.attach(zeroimage.Image({}, {}, None, [zeroimage.bytes_blob(b"{}")], zeroimage.OCI_MANIFEST),
                                 zeroimage.Attachment("application/vnd.example.other", b"x"))
        zeroimage.push_blobs(session, registry, "shapes/app", other.blobs, scopes)
        stale["manifests"].append(zeroimage.referrer_descriptor(other.manifest, other.digest, other.manifest_blob.size))
        registry.put_manifest("shapes/app", zeroimage.referrers_tag(digest), zeroimage.canonical_json(stale),
                              zeroimage.OCI_INDEX, scopes)
    copied = ok(run_cli("copy", "--referrers", place.up("shapes/app:1"), place.up("shapes/copy:1"), env=env))
    assert "not copied" in copied.stderr and "1 referrer to copy" in copied.stderr
    info = json.loads(ok(run_cli("inspect", "--json", place.up("shapes/copy:1"), env=env)).stdout)
    assert [r["artifactType"] for r in info["referrers"]] == ["application/vnd.example.sig.config"]
    assert info["referrers"][0]["digest"] == zeroimage.sha256_digest(data)      # byte for byte
