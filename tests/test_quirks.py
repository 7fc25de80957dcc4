"""Real registries bend the spec (issue 13): zeroimage through QuirkProxy (tests/registries.py), a proxy
in front of the real docker-registry that reproduces one documented quirk of a real registry at a time.
Each test proves its quirk happened (the proxy's counts) and checks the result on the registry behind."""

import base64
import http.client
import json
import os

import pytest

import registries
import zeroimage
from clients import Place, digest_of, run_cli_stdin
from conftest import need_tool
from helpers import fails, ok, sh
from imagetools import DOCKER, OCI, run_cli, sha256

pytestmark = pytest.mark.interop


def error_lines(r):
    return [line for line in r.stderr.splitlines() if line.startswith("zeroimage: error: ")]


def other_program(tmp_path, program, n):
    """The same program with bytes appended: another image, under the same name (so /busybox still runs)."""
    path = tmp_path / ("other%d" % n) / "busybox"
    path.parent.mkdir()
    path.write_bytes(program.read_bytes() + b"quirk %d" % n)
    os.chmod(str(path), 0o755)
    return path


@pytest.fixture
def token_place(tmp_path, pki, registry_servers, token_server):
    upstream = registry_servers("token")
    proxy = registries.QuirkProxy(upstream, pki=pki, token_server=token_server)
    yield Place(tmp_path, pki, upstream, proxy)
    proxy.close()


def probe(place, method, path, headers=(), body=None, chunked=False):
    """One request of our own to the proxy: (status, body)."""
    conn = http.client.HTTPConnection(place.proxy.host, timeout=30)
    try:
        conn.request(method, path, body=iter([body]) if chunked else body, headers=dict(headers),
                     encode_chunked=chunked)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# ---- the proxy itself ----


def test_the_proxy_passes_a_spec_following_client_through(tmp_path, open_place, busybox_program):
    """skopeo (POST, PATCH, empty PUT) pushes through no-monolithic untouched: the proxy only bends
    what the quirk names."""
    p = open_place
    p.ok("build", "-o", tmp_path / "app.tar", busybox_program)
    p.proxy.mode = "no-monolithic"
    sh(need_tool("skopeo"), "copy", "--dest-tls-verify=false", "oci-archive:%s" % (tmp_path / "app.tar"),
       "docker://" + p.via("quirks/proxy/skopeo:1"))
    assert p.proxy.counts["monolithic refused"] == 0
    assert any(m == "PATCH" and s == 202 for m, _, s in p.proxy.seen)
    raw, manifest = p.upstream_manifest("quirks/proxy/skopeo:1")
    assert manifest["layers"]


# ---- monolithic or chunked uploads ----


def test_no_monolithic_build_and_push_succeed(tmp_path, open_place, busybox_program):
    p = open_place
    p.base("quirks/nomono/base:1", busybox_program)
    p.proxy.mode = "no-monolithic"
    digest = digest_of(p.ok("build", "--from", p.via("quirks/nomono/base:1"), "--push", p.via("quirks/nomono/app:1"),
                            other_program(tmp_path, busybox_program, 1)))
    # one refusal: until a way has worked, uploads to a registry go one at a time
    assert p.proxy.counts["monolithic refused"] == 1
    assert p.pulled_from_upstream("quirks/nomono/app:1") == digest
    p.ok("pull", "-o", tmp_path / "base.tar", p.up("quirks/nomono/base:1"))
    pushed = digest_of(p.ok("push", tmp_path / "base.tar", p.via("quirks/nomono/copy:1")))
    assert p.pulled_from_upstream("quirks/nomono/copy:1") == pushed


def test_no_monolithic_is_remembered_for_the_session(tmp_path, open_place, busybox_program):
    p = open_place
    p.proxy.mode = "no-monolithic"
    with p.session() as session:
        first = zeroimage.build(zeroimage.BuildOptions(str(busybox_program),
                                                       push=p.via("quirks/nomono-lib/a:1")), session=session)
        refused = p.proxy.counts["monolithic refused"]
        assert refused >= 1
        second = zeroimage.build(zeroimage.BuildOptions(str(other_program(tmp_path, busybox_program, 2)),
                                                        push=p.via("quirks/nomono-lib/b:1")), session=session)
        assert p.proxy.counts["monolithic refused"] == refused, "the second push tried monolithic again"
    assert p.pulled_from_upstream("quirks/nomono-lib/a:1") == first.digest
    assert p.pulled_from_upstream("quirks/nomono-lib/b:1") == second.digest


def test_no_chunked_one_try_then_monolithic(tmp_path, open_place, busybox_program):
    """The first layer made goes up in chunks as it is compressed; refused (405), that is not tried
    again in the command, and every blob goes monolithic."""
    p = open_place
    p.proxy.mode = "no-chunked"
    r = p.ok("build", "--push", p.via("quirks/nochunk/app:1"), busybox_program)
    digest = digest_of(r)
    assert [s for m, _, s in p.proxy.seen if m == "PATCH"] == [405]
    assert "refused a layer sent in chunks as it was made" in r.stderr
    assert p.pulled_from_upstream("quirks/nochunk/app:1") == digest


def test_no_chunked_a_session_starting_chunked_falls_back(tmp_path, open_place, busybox_program):
    p = open_place
    p.proxy.mode = "no-chunked"
    with p.session() as session:
        session.registry(p.proxy.host).upload_mode = "chunked"
        result = zeroimage.build(zeroimage.BuildOptions(str(busybox_program),
                                                        push=p.via("quirks/nochunk-lib/app:1")), session=session)
        assert p.proxy.counts["chunked refused"] >= 1
        assert session.registry(p.proxy.host).upload_mode == "monolithic"
    assert p.pulled_from_upstream("quirks/nochunk-lib/app:1") == result.digest


def test_no_uploads_at_all_is_one_clear_error(open_place, busybox_program):
    p = open_place
    p.proxy.mode = "no-uploads"
    r = p("build", "--push", p.via("quirks/nouploads/app:1"), busybox_program)
    fails(r, 1, "refuses both")
    assert len(error_lines(r)) == 1, r.stderr
    assert p.proxy.counts["monolithic refused"] >= 1 and p.proxy.counts["chunked refused"] >= 1


@pytest.mark.parametrize("mode", ["patch-204", "patch-201"])
def test_patch_answered_with_another_2xx_is_accepted(tmp_path, open_place, busybox_program, mode):
    p = open_place
    p.proxy.mode = mode
    with p.session() as session:
        session.registry(p.proxy.host).upload_mode = "chunked"
        result = zeroimage.build(zeroimage.BuildOptions(str(busybox_program),
                                                        push=p.via("quirks/%s/app:1" % mode)), session=session)
    assert p.proxy.counts[mode.replace("-", " ")] >= 1
    assert p.pulled_from_upstream("quirks/%s/app:1" % mode) == result.digest


def test_a_body_size_limit_is_named(open_place, busybox_program):
    """A size limit refuses a big blob both ways: the error says what the 413 means and where to look."""
    p = open_place
    p.proxy.mode = "body-limit"
    r = p("build", "--push", p.via("quirks/limit/app:1"), busybox_program)
    line = fails(r, 1, "refuses both", "HTTP 413", "client_max_body_size")
    assert "<html" not in line
    # one try each way (ranged chunks as the layer is made, monolithic, one PATCH): no blind retries;
    # the other layer, in flight when the first is refused (on a loaded machine), may have its tries too
    assert 3 <= p.proxy.counts["body too large"] <= 6


# ---- token scopes ----


@pytest.mark.parametrize("mode", ["first-scope", "last-scope"])
def test_a_token_server_that_keeps_one_scope(tmp_path, token_place, busybox_program, mode):
    """Base and image in two repositories: one token for both (push here, pull there) is asked for."""
    p = token_place
    p.base("quirks/%s/base:1" % mode, busybox_program)
    p.proxy.mode = mode
    p.login()
    r = p.ok("build", "--from", p.via("quirks/%s/base:1" % mode), "--push", p.via("quirks/%s/app:1" % mode),
             other_program(tmp_path, busybox_program, 1))
    assert p.proxy.counts["scopes dropped"] >= 1
    # a token is asked for once per need, not once per worker or request that met a 401 (the check before
    # the push, RegistrySink.start, is one need: push alone)
    assert len(p.proxy.token_requests) <= 7, [t["asked"] for t in p.proxy.token_requests]
    assert p.pulled_from_upstream("quirks/%s/app:1" % mode) == digest_of(r)


def test_a_registry_that_wants_a_scope_nobody_could_guess(tmp_path, token_place, busybox_program):
    p = token_place
    base = p.base("quirks/extra/base:1", busybox_program)
    p.proxy.mode = "extra-scope"
    p.login()
    assert p.ok("pull", "-o", tmp_path / "base.tar", p.via("quirks/extra/base:1")).stdout.strip() == base
    assert base in p.ok("inspect", p.via("quirks/extra/base:1")).stdout
    assert p.proxy.counts["insufficient_scope"] >= 1
    before = p.proxy.counts["insufficient_scope"]
    r = p.ok("build", "--push", p.via("quirks/extra/app:1"), busybox_program)
    refused = p.proxy.counts["insufficient_scope"] - before
    assert 1 <= refused <= 6, "%d insufficient_scope answers for one push: not learnt once per token" % refused
    assert any("registry:catalog:*" in t["asked"] for t in p.proxy.token_requests)
    assert p.pulled_from_upstream("quirks/extra/app:1") == digest_of(r)


# ---- OCI media types refused ----


def _docker_manifest_upstream(p, name, digest):
    raw, manifest = p.upstream_manifest(name)
    assert manifest["mediaType"] == DOCKER["manifest"]
    assert sha256(raw) == digest
    return manifest


@pytest.mark.parametrize("mode", ["no-oci-415", "no-oci-invalid"])
@pytest.mark.parametrize("base", ["minimal", "scratch"])
def test_oci_refused_build_pushes_docker_media_types(open_place, busybox_program, mode, base):
    p = open_place
    p.proxy.mode = mode
    name = "quirks/%s/%s:1" % (mode, base)
    r = p.ok("build", *(["--from", "scratch"] if base == "scratch" else []), "--push", p.via(name), busybox_program)
    assert p.proxy.counts["oci refused"] >= 1
    assert any("refuses OCI" in line for line in r.stderr.splitlines()), r.stderr
    _docker_manifest_upstream(p, name, digest_of(r))


@pytest.mark.parametrize("mode", ["no-oci-415", "no-oci-invalid"])
def test_oci_refused_push_of_an_oci_archive(tmp_path, open_place, busybox_program, mode):
    p = open_place
    p.ok("build", "-o", tmp_path / "app.tar", busybox_program)
    p.proxy.mode = mode
    name = "quirks/%s/archive:1" % mode
    r = p.ok("push", tmp_path / "app.tar", p.via(name))
    assert p.proxy.counts["oci refused"] >= 1
    assert any("refuses OCI" in line for line in r.stderr.splitlines()), r.stderr
    _docker_manifest_upstream(p, name, digest_of(r))


@pytest.mark.parametrize("mode", ["no-oci-415", "no-oci-invalid"])
def test_oci_refused_when_oci_was_asked_for_is_an_error(open_place, busybox_program, mode):
    p = open_place
    p.proxy.mode = mode
    r = p("build", "--media-types", "oci", "--push", p.via("quirks/%s/asked:1" % mode), busybox_program)
    fails(r, 1, "refuses OCI", "--media-types docker")
    assert len(error_lines(r)) == 1, r.stderr
    assert p.proxy.counts["oci refused"] >= 1


# ---- bent rules zeroimage already copes with ----


@pytest.mark.parametrize("mode, event", [("no-digest-header", "digest header stripped"),
                                         ("bare-digest-header", "digest header bare")])
def test_digest_header_missing_or_bare(tmp_path, open_place, busybox_program, mode, event):
    p = open_place
    base = p.base("quirks/%s/base:1" % mode, busybox_program)
    p.proxy.mode = mode
    assert p.ok("pull", "-o", tmp_path / "base.tar", p.via("quirks/%s/base:1" % mode)).stdout.strip() == base
    assert base in p.ok("inspect", p.via("quirks/%s/base:1" % mode)).stdout
    r = p.ok("build", "--push", p.via("quirks/%s/app:1" % mode), other_program(tmp_path, busybox_program, 1))
    assert p.proxy.counts[event] >= 2
    raw, _ = p.upstream_manifest("quirks/%s/app:1" % mode)
    assert sha256(raw) == digest_of(r)


def test_mount_answered_with_a_new_upload_session(tmp_path, open_place, busybox_program):
    p = open_place
    p.base("quirks/mount202/base:1", busybox_program)
    p.proxy.mode = "mount-202"
    r = p.ok("build", "--from", p.via("quirks/mount202/base:1"), "--push", p.via("quirks/mount202/app:1"),
             other_program(tmp_path, busybox_program, 1))
    assert p.proxy.counts["mount ignored"] >= 1
    assert p.pulled_from_upstream("quirks/mount202/app:1") == digest_of(r)


def test_relative_locations(tmp_path, open_place, busybox_program):
    p = open_place
    p.proxy.mode = "relative-location"
    r = p.ok("build", "--push", p.via("quirks/relative/app:1"), busybox_program)
    assert p.proxy.counts["location made relative"] >= 1
    assert p.ok("pull", "-o", tmp_path / "back.tar", p.via("quirks/relative/app:1")).stdout.strip() == digest_of(r)
    assert p.pulled_from_upstream("quirks/relative/app:1") == digest_of(r)


def test_token_answer_with_access_token_only(tmp_path, token_place, busybox_program):
    p = token_place
    p.proxy.mode = "access-token-only"
    p.login()
    r = p.ok("build", "--push", p.via("quirks/accesstoken/app:1"), busybox_program)
    assert p.ok("pull", "-o", tmp_path / "back.tar", p.via("quirks/accesstoken/app:1")).stdout.strip() == digest_of(r)
    assert p.proxy.counts["token trimmed"] >= 2
    assert p.pulled_from_upstream("quirks/accesstoken/app:1") == digest_of(r)


def test_401_without_a_challenge(tmp_path, token_place, busybox_program):
    p = token_place
    p.base("quirks/nochallenge/base:1", busybox_program)
    p.proxy.mode = "no-challenge-401"
    line = fails(p("pull", "-o", tmp_path / "anon.tar", p.via("quirks/nochallenge/base:1")), 1, "access denied")
    assert "zeroimage login %s" % p.proxy.host in line
    assert p.proxy.counts["challenge stripped"] >= 1
    p.login()
    r = p.ok("build", "--from", p.via("quirks/nochallenge/base:1"), "--push", p.via("quirks/nochallenge/app:1"),
             other_program(tmp_path, busybox_program, 1))
    assert p.pulled_from_upstream("quirks/nochallenge/app:1") == digest_of(r)


def test_429_with_retry_after_in_seconds_and_as_a_date(tmp_path, open_place, busybox_program):
    p = open_place
    p.proxy.mode = "retry-after"
    r = p.ok("build", "--push", p.via("quirks/retry/app:1"), busybox_program)
    assert p.ok("pull", "-o", tmp_path / "back.tar", p.via("quirks/retry/app:1")).stdout.strip() == digest_of(r)
    assert p.proxy.counts["retry-after seconds"] >= 1 and p.proxy.counts["retry-after date"] >= 1
    assert p.pulled_from_upstream("quirks/retry/app:1") == digest_of(r)


def test_strict_manifest_content_type(tmp_path, open_place, busybox_program):
    p = open_place
    p.proxy.mode = "strict-content-type"
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI["manifest"]}).encode()
    status, _ = probe(p, "PUT", "/v2/quirks/strict/probe/manifests/1", [("Content-Type", DOCKER["manifest"])], body)
    assert status == 400 and p.proxy.counts["content type mismatch"] == 1, "the quirk is armed"
    r = p.ok("build", "--push", p.via("quirks/strict/app:1"), busybox_program)
    p.ok("build", "-o", tmp_path / "app.tar", busybox_program)
    docker = p.ok("push", "--media-types", "docker", tmp_path / "app.tar", p.via("quirks/strict/docker:1"))
    assert p.proxy.counts["manifest checked"] >= 3 and p.proxy.counts["content type mismatch"] == 1
    assert p.pulled_from_upstream("quirks/strict/app:1") == digest_of(r)
    assert p.pulled_from_upstream("quirks/strict/docker:1") == digest_of(docker)


def test_length_required(tmp_path, open_place, busybox_program):
    p = open_place
    p.proxy.mode = "length-required"
    status, _ = probe(p, "POST", "/v2/quirks/length/probe/blobs/uploads/", body=b"x", chunked=True)
    assert status == 411 and p.proxy.counts["length required"] == 1, "the quirk is armed"
    r = p.ok("build", "--push", p.via("quirks/length/app:1"), busybox_program)
    assert p.ok("pull", "-o", tmp_path / "back.tar", p.via("quirks/length/app:1")).stdout.strip() == digest_of(r)
    assert p.proxy.counts["length required"] == 1, "zeroimage sent a body without Content-Length"
    assert p.pulled_from_upstream("quirks/length/app:1") == digest_of(r)


def test_a_robot_account_name_with_a_dollar(tmp_path, token_place, registry_servers, busybox_program):
    """Harbor's robot accounts are named robot$...: through the token proxy, and with Basic auth straight."""
    p = token_place
    p.login("robot$ci")
    auths = json.loads((p.config / "config.json").read_text())["auths"]
    assert base64.b64decode(auths[p.proxy.host]["auth"]) == b"robot$ci:s3cret"
    r = p.ok("build", "--push", p.via("robot/app:1"), busybox_program)
    assert p.pulled_from_upstream("robot/app:1") == digest_of(r)
    basic = registry_servers("basic")
    env = dict(p.env, DOCKER_CONFIG=str(tmp_path / "basic-config"))
    login = run_cli_stdin(env, "s3cret\n", "login", "-u", "robot$ci", "--password-stdin", basic.host)
    assert login.returncode == 0, login.stderr
    ok(run_cli("build", "--push", "%s/robot/app:1" % basic.host, busybox_program, env=env))


def test_an_index_refused_in_both_encodings_says_both(tmp_path, open_place, busybox, busybox_program):
    """A registry without multi-platform images: the OCI index is refused, its Docker manifest list too:
    one line saying both refusals, the detail the registry gave, and what to do."""
    p = open_place
    p.proxy.mode = "no-index"
    r = p("build", "--push", p.via("quirks/noindex/app:1"), "linux/amd64=%s" % busybox_program,
          "linux/arm64=%s" % busybox_program, "--no-platform-check")
    line = fails(r, 1, "refuses OCI manifests", "Docker encoding too", "manifest lists are not supported",
                 "push one platform")
    assert len(error_lines(r)) == 1, r.stderr
    assert p.proxy.counts["index refused"] == 2, line


def test_a_logged_in_user_without_push_permission_is_told_so(token_place, busybox_program):
    """403 DENIED to a logged-in user: the error names the user, and does not ask for a login."""
    p = token_place
    p.login()
    p.proxy.mode = "deny-push"
    r = p("build", "--push", p.via("quirks/denied/app:1"), busybox_program)
    line = fails(r, 1, "access denied to alice", "DENIED")
    assert "are you logged in" not in line and "wonderland" not in r.stderr
    assert p.proxy.counts["push denied"] >= 1


def test_oci_refused_when_the_oci_digest_was_named_is_an_error(tmp_path, open_place, busybox_program):
    """Pushed to NAME@sha256:... (the OCI digest), the Docker encoding would land under another
    digest: an error, not a silent change."""
    p = open_place
    digest = p.ok("build", "-o", tmp_path / "app.tar", busybox_program).stdout.strip()
    p.proxy.mode = "no-oci-415"
    r = p("push", tmp_path / "app.tar", p.via("quirks/digest/app@" + digest))
    fails(r, 1, "refuses OCI", "--media-types docker and a tag")
    assert len(error_lines(r)) == 1, r.stderr


# ---- HEAD refused (issue 27) ----


def _refused_heads(p, since):
    """(method, path) of the HEADs the proxy refused after ``since`` requests."""
    return [(m, path) for m, path, s in p.proxy.seen[since:] if m == "HEAD" and s in (405, 501)]


@pytest.mark.parametrize("mode", ["no-head", "head-501"])
def test_a_registry_that_refuses_head_is_asked_with_get(tmp_path, open_place, busybox_program, mode):
    """Every verb that asks whether something is there, or for a digest, asks with GET where HEAD is
    refused, and learns it once: at most one refused HEAD of a manifest and one of a blob a command."""
    p = open_place
    base = p.base("quirks/%s/base:1" % mode, busybox_program)
    p.ok("build", "-o", tmp_path / "app.tar", other_program(tmp_path, busybox_program, 1))
    p.proxy.mode = mode
    env_sbom = dict(p.env, SOURCE_DATE_EPOCH="1700000000")
    steps = [
        ("digest", lambda: p.ok("digest", p.via("quirks/%s/base:1" % mode))),
        ("digest by digest", lambda: p.ok("digest", p.via("quirks/%s/base@%s" % (mode, base)))),
        ("inspect", lambda: p.ok("inspect", p.via("quirks/%s/base:1" % mode))),
        ("check-auth", lambda: p.ok("check-auth", p.via("quirks/%s/base:1" % mode))),
        ("copy", lambda: p.ok("copy", p.via("quirks/%s/base:1" % mode), p.via("quirks/%s/copy:1" % mode))),
        ("build", lambda: p.ok("build", "--from", p.via("quirks/%s/base:1" % mode), "--push",
                               p.via("quirks/%s/app:1" % mode), other_program(tmp_path, busybox_program, 2))),
        ("push", lambda: p.ok("push", tmp_path / "app.tar", p.via("quirks/%s/pushed:1" % mode))),
        ("build --sbom", lambda: ok(run_cli("build", "--sbom", "--push", p.via("quirks/%s/sbom:1" % mode),
                                            other_program(tmp_path, busybox_program, 3), env=env_sbom))),
        ("inspect --sbom", lambda: p.ok("inspect", "--sbom", p.via("quirks/%s/sbom:1" % mode))),
    ]
    results = {}
    for name, step in steps:
        since = len(p.proxy.seen)
        results[name] = step()
        refused = _refused_heads(p, since)
        assert sum("/manifests/" in path for _, path in refused) <= 1, (name, refused)
        assert sum("/blobs/" in path for _, path in refused) <= 1, (name, refused)
    assert p.proxy.counts["head refused"] >= 5
    assert results["digest"].stdout.strip() == base
    assert results["digest by digest"].stdout.strip() == base
    assert base in results["inspect"].stdout
    assert p.pulled_from_upstream("quirks/%s/copy:1" % mode) == base
    assert p.pulled_from_upstream("quirks/%s/app:1" % mode) == digest_of(results["build"])
    assert p.pulled_from_upstream("quirks/%s/pushed:1" % mode) == digest_of(results["push"])
    sbom = json.loads(results["inspect --sbom"].stdout)
    assert sbom["spdxVersion"] == "SPDX-2.3"
    # delete by tag: the digest by GET, then the DELETE
    since = len(p.proxy.seen)
    deleted = p.ok("delete", p.via("quirks/%s/app:1" % mode))
    assert digest_of(deleted) == digest_of(results["build"])
    assert len(_refused_heads(p, since)) <= 1
    line = fails(p("digest", p.up("quirks/%s/app:1" % mode)), 1, "not found")
    assert "Traceback" not in line
    # and a missing image is still "not found", not a refusal
    fails(p("digest", p.via("quirks/%s/none:1" % mode)), 1, "not found")


def test_a_refused_head_is_remembered_for_the_session(tmp_path, open_place, busybox_program):
    p = open_place
    base = p.base("quirks/remember/base:1", busybox_program)
    config = json.loads(p.upstream_manifest("quirks/remember/base:1")[0])["config"]
    p.proxy.mode = "no-head"
    with p.session() as session:
        registry = session.registry(p.proxy.host)
        for _ in range(2):
            assert registry.head_digest("quirks/remember/base", "1") == base
            assert registry.head_digest("quirks/remember/base", base) == base
            assert registry.manifest_exists("quirks/remember/base", "1")
            assert not registry.manifest_exists("quirks/remember/base", "2")
            assert registry.blob_exists("quirks/remember/base", config["digest"])
            assert not registry.blob_exists("quirks/remember/base", "sha256:" + "0" * 64)
            with pytest.raises(zeroimage.NotFoundError):
                registry.head_digest("quirks/remember/base", "2")
        assert registry.head_refused == {"manifest", "blob"}
        # an empty blob: its first byte is out of range (416), but it is there
        empty = zeroimage.bytes_blob(b"")
        registry.upload_blob("quirks/remember/base", empty, ["repository:quirks/remember/base:push,pull"])
        assert registry.blob_exists("quirks/remember/base", empty.digest)
    assert p.proxy.counts["head refused"] == 2, p.proxy.seen
    gets = [path for m, path, s in p.proxy.seen if m == "GET" and "/blobs/" in path]
    assert gets, "blobs were asked for with GET"


def test_head_without_a_digest_is_learnt_once(open_place, busybox_program):
    """A registry whose HEAD answers carry no Docker-Content-Digest: one HEAD, then GETs (the digest
    read from the manifest), while HEAD still serves "is it there"."""
    p = open_place
    base = p.base("quirks/nodigest/base:1", busybox_program)
    p.proxy.mode = "no-digest-header"
    with p.session() as session:
        registry = session.registry(p.proxy.host)
        assert [registry.head_digest("quirks/nodigest/base", "1") for _ in range(3)] == [base] * 3
        assert registry.head_refused == {"manifest digest"}
        assert registry.manifest_exists("quirks/nodigest/base", "1")
    methods = [m for m, path, _ in p.proxy.seen if "/manifests/" in path]
    assert methods == ["HEAD", "GET", "GET", "GET", "HEAD"], methods


@pytest.mark.parametrize("mode", ["pass", "no-head", "head-501", "no-digest-header", "bare-digest-header"])
def test_what_a_tag_names_already_is_asked_with_the_pushs_token(tmp_path, token_place, prog, mode):
    """A push or copy whose tag names that digest already sends nothing (one question of the tag), for
    every verb that writes to a registry, through every way a registry bends that question (HEAD refused:
    GET; no usable Docker-Content-Digest: GET), and asks no token for it but the push's: the GET that
    stands in for a refused HEAD (and sync's question) asked one for the pull alone."""
    p = token_place
    p.login()
    p.env.update(SOURCE_DATE_EPOCH="1700000000", ZEROIMAGE_CACHE_DIR=str(tmp_path / "cache"))
    name = "quirks/there-%s" % mode
    p.ok("build", "-o", tmp_path / "app.tar", prog)
    verbs = [       # (verb, its words, the repository it writes to)
        ("build", ["build", "--push", p.via(name + "/app:1"), prog], name + "/app"),
        ("push", ["push", tmp_path / "app.tar", p.via(name + "/pushed:1")], name + "/pushed"),
        ("copy", ["copy", "--referrers", p.via(name + "/app:1"), p.via(name + "/copy:1")], name + "/copy"),
        ("sync", ["sync", p.via(name + "/app"), p.via(name + "/synced")], name + "/synced"),
    ]
    firsts = {}
    for verb, args, destination in verbs:
        first = p.ok(*args)
        p.proxy.mode = mode
        since, tokens = len(p.proxy.seen), len(p.proxy.token_requests)
        again = p.ok(args[0], "-v", *args[1:])
        p.proxy.mode = "pass"
        assert again.stdout == first.stdout, verb
        said = "1: already there" if verb == "sync" else "names %s already: nothing sent" % digest_of(first)[:19]
        assert said in again.stderr, (verb, again.stderr)
        written = [(m, path) for m, path, _ in p.proxy.seen[since:] if m in ("PUT", "PATCH")
                   or (m == "POST" and "mount=" in path)]
        assert not written, (verb, written)
        firsts[verb] = first
        # the push's token, and the source's pull: none for the destination's pull alone
        asked = [t["asked"] for t in p.proxy.token_requests[tokens:]]
        assert ["repository:%s:pull" % destination] not in asked, (verb, asked)
    # a tag that names another image: written as before
    other = tmp_path / "other"
    other.write_bytes(prog.read_bytes() + b"other")
    os.chmod(str(other), 0o755)
    p.proxy.mode = mode
    moved = p.ok("build", "--push", p.via(name + "/app:1"), other)
    assert digest_of(moved) != digest_of(firsts["build"]) and "already" not in moved.stderr
    assert p.pulled_from_upstream(name + "/app:1") == digest_of(moved)


# ---- OCI-Subject without a referrers API (issue 27) ----


def test_oci_subject_without_a_referrers_api_keeps_the_referrers_tag(tmp_path, open_place, busybox_program):
    p = open_place
    p.proxy.mode = "subject-no-api"
    env = dict(p.env, SOURCE_DATE_EPOCH="1700000000")
    pushed = ok(run_cli("build", "--sbom", "--push", p.via("quirks/subject/app:1"), busybox_program, env=env))
    digest = digest_of(pushed)
    assert p.proxy.counts["subject claimed"] == 1 and p.proxy.counts["referrers asked"] >= 1
    assert "referrers API does not list it" in pushed.stderr and "referrers tag sha256-" in pushed.stderr
    _, index = p.upstream_manifest("quirks/subject/app:%s" % zeroimage.referrers_tag(digest))
    assert [d["artifactType"] for d in index["manifests"]] == ["application/spdx+json"]
    for where in (p.via, p.up):
        sbom = json.loads(p.ok("inspect", "--sbom", where("quirks/subject/app:1")).stdout)
        assert sbom["spdxVersion"] == "SPDX-2.3"
    # copied with its referrers through the same registry: the SBOM comes along, findable
    copied = p.ok("copy", "--referrers", p.via("quirks/subject/app:1"), p.via("quirks/subject/copy:1"))
    assert "referrers API does not list it" in copied.stderr
    assert json.loads(p.ok("inspect", "--sbom", p.up("quirks/subject/copy:1")).stdout) == sbom
    # each referrer pushed asks whether the API lists it (one GET each), and is listed in the tag too
    asked = p.proxy.counts["referrers asked"]
    with p.session() as session:
        registry = session.registry(p.proxy.host)
        subject = zeroimage.Image({}, {}, None, [zeroimage.bytes_blob(registry.get_manifest("quirks/subject/app",
                                                                                           digest)[0])],
                                  zeroimage.OCI_MANIFEST)
        for n in range(2):
            artifact = zeroimage.attach(subject, zeroimage.Attachment("application/vnd.example.n%d" % n, b"%d" % n))
            how = zeroimage.push_referrer(session, registry, "quirks/subject/app", artifact,
                                          ["repository:quirks/subject/app:push,pull"])
            assert how.startswith("referrers tag"), how
        assert registry.referrers_api is False
    assert p.proxy.counts["referrers asked"] == asked + 2
    _, index = p.upstream_manifest("quirks/subject/app:%s" % zeroimage.referrers_tag(digest))
    assert [d["artifactType"] for d in index["manifests"]] == [
        "application/spdx+json", "application/vnd.example.n0", "application/vnd.example.n1"]


def test_a_referrers_api_that_answers_is_relied_on(open_place, busybox_program):
    """The check costs one GET of the referrers API per referrer pushed (is it listed?), and then no
    referrers tag is written."""
    p = open_place
    p.proxy.mode = "referrers-api"
    pushed = ok(run_cli("build", "--sbom", "--push", p.via("quirks/api/app:1"), busybox_program,
                        env=dict(p.env, SOURCE_DATE_EPOCH="1700000000")))
    assert "(referrers API)" in pushed.stderr
    assert zeroimage.referrers_tag(digest_of(pushed)) not in p.ok("tags", p.up("quirks/api/app")).stdout.split()
    assert sum(1 for m, path, _ in p.proxy.seen if m == "GET" and "/referrers/" in path) == 1
