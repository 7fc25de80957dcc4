"""Registry logic without a registry: challenges, credentials, hosts, and the transport against
tiny loopback HTTP servers (redirects, retries, schema 1)."""

import base64
import json
import os
import tarfile
import threading

import pytest

import zeroimage
from registries import QuietHandler, QuietServer
from zeroimage import Credentials


@pytest.mark.parametrize("header, expected", [
    ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
     [("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                  "scope": "repository:library/busybox:pull"})]),
    ('Basic realm="Registry Realm"', [("basic", {"realm": "Registry Realm"})]),
    ('Bearer realm="https://a/t",scope="repository:x:pull,push", error="insufficient_scope"',
     [("bearer", {"realm": "https://a/t", "scope": "repository:x:pull,push", "error": "insufficient_scope"})]),
    ('Basic realm="a, b", Bearer realm="https://t/token",service=s',
     [("basic", {"realm": "a, b"}), ("bearer", {"realm": "https://t/token", "service": "s"})]),
    ('Bearer realm="with \\"quotes\\""', [("bearer", {"realm": 'with "quotes"'})]),
    ('', []),
])
def test_parse_challenges(header, expected):
    assert zeroimage.parse_challenges(header) == expected


@pytest.mark.parametrize("text, host", [
    ("ghcr.io", "ghcr.io"), ("https://ghcr.io/v2/", "ghcr.io"), ("localhost:5000", "localhost:5000"),
    ("docker.io", "docker.io"), ("index.docker.io", "docker.io"), ("https://index.docker.io/v1/", "docker.io"),
    ("registry-1.docker.io", "docker.io"), ("GHCR.IO", "ghcr.io"),
])
def test_registry_host(text, host):
    assert zeroimage.registry_host(text) == host


@pytest.mark.parametrize("text", ["", "https://", "bad host", "a_b.com"])
def test_registry_host_rejects(text):
    with pytest.raises(zeroimage.InvalidReferenceError):
        zeroimage.registry_host(text)


@pytest.mark.parametrize("host, loopback", [
    ("localhost", True), ("localhost:5000", True), ("127.0.0.1:5000", True), ("127.1.2.3", True),
    ("[::1]:5000", True), ("10.0.0.1:5000", False), ("example.com", False), ("localhost.example.com", False),
])
def test_is_loopback(host, loopback):
    assert zeroimage._is_loopback(host) is loopback


def test_layer_types_follow_the_family():
    oci, docker = zeroimage.LAYER_TYPE_PAIRS[0]
    assert zeroimage._layer_type_in(zeroimage.DOCKER_FAMILY, oci) == docker
    assert zeroimage._layer_type_in(zeroimage.OCI_FAMILY, docker) == oci
    zstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    assert zeroimage._layer_type_in(zeroimage.DOCKER_FAMILY, zstd) == zstd


def test_credentials_repr_hides_secrets():
    assert "hunter2" not in repr(Credentials("me", "hunter2", "idtok", "regtok"))


# ---- credentials ----


def _env(tmp_path, config=None, podman=None):
    env = {"DOCKER_CONFIG": str(tmp_path / "docker"), "PATH": os.environ.get("PATH", "")}
    (tmp_path / "docker").mkdir(exist_ok=True)
    if config is not None:
        (tmp_path / "docker" / "config.json").write_text(json.dumps(config))
    if podman is not None:
        (tmp_path / "auth.json").write_text(json.dumps(podman))
        env["REGISTRY_AUTH_FILE"] = str(tmp_path / "auth.json")
    return env


def _b64(text):
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("key", ["reg.example.com", "https://reg.example.com", "https://reg.example.com/v1/",
                                 "http://reg.example.com/v2/"])
def test_auths_under_any_key_spelling(tmp_path, key):
    env = _env(tmp_path, {"auths": {key: {"auth": _b64("me:pw:with:colons")}}})
    assert zeroimage.resolve_credentials("reg.example.com", env) == Credentials("me", "pw:with:colons")


def test_docker_hub_legacy_key_and_tokens(tmp_path):
    env = _env(tmp_path, {"auths": {"https://index.docker.io/v1/": {"username": "u", "password": "p"},
                                    "ghcr.io": {"identitytoken": "refresh"}, "quay.io": {"registrytoken": "bearer"}}})
    assert zeroimage.resolve_credentials("docker.io", env) == Credentials("u", "p")
    assert zeroimage.resolve_credentials("ghcr.io", env) == Credentials(identity_token="refresh")
    assert zeroimage.resolve_credentials("quay.io", env) == Credentials(registry_token="bearer")
    assert zeroimage.resolve_credentials("other.io", env) is None


def test_podman_auth_file_is_a_fallback(tmp_path):
    env = _env(tmp_path, {"auths": {"a.io": {"auth": _b64("docker:1")}}},
               {"auths": {"a.io": {"auth": _b64("podman:2")}, "b.io": {"auth": _b64("podman:3")}}})
    assert zeroimage.resolve_credentials("a.io", env) == Credentials("docker", "1")
    assert zeroimage.resolve_credentials("b.io", env) == Credentials("podman", "3")


def test_helper_precedence_and_protocol(tmp_path):
    import registries
    registries.write_helper(tmp_path, tmp_path / "store.json")
    (tmp_path / "store.json").write_text(json.dumps({"a.io": ["helper-user", "s3cret"], "t.io": ["<token>", "idtok"]}))
    env = _env(tmp_path, {"credHelpers": {"a.io": "test", "t.io": "test", "c.io": "test"},
                          "auths": {"a.io": {"auth": _b64("file:x")}, "c.io": {"auth": _b64("file:c")}}})
    env["PATH"] = "%s:%s" % (tmp_path, env["PATH"])
    assert zeroimage.resolve_credentials("a.io", env) == Credentials("helper-user", "s3cret")
    assert zeroimage.resolve_credentials("t.io", env) == Credentials(identity_token="idtok")
    assert zeroimage.resolve_credentials("c.io", env) == Credentials("file", "c"), "helper had none: auths next"


def test_corrupt_config_is_a_clear_error(tmp_path):
    env = _env(tmp_path)
    (tmp_path / "docker" / "config.json").write_text("{not json")
    with pytest.raises(zeroimage.CredentialError, match="config.json is not valid JSON"):
        zeroimage.resolve_credentials("a.io", env)
    with pytest.raises(zeroimage.CredentialError):
        zeroimage.store_credentials("a.io", Credentials("u", "p"), env)
    assert (tmp_path / "docker" / "config.json").read_text() == "{not json", "never silently overwritten"


def test_store_keeps_other_keys_and_is_private(tmp_path):
    env = _env(tmp_path, {"auths": {"other.io": {"auth": "b3RoZXI6eA=="}}, "psFormat": "table", "proxies": {"x": 1}})
    zeroimage.store_credentials("docker.io", Credentials("me", "pw"), env)
    path = tmp_path / "docker" / "config.json"
    config = json.loads(path.read_text())
    assert config["psFormat"] == "table" and config["proxies"] == {"x": 1} and "other.io" in config["auths"]
    assert config["auths"]["https://index.docker.io/v1/"] == {"auth": _b64("me:pw")}
    assert os.stat(str(path)).st_mode & 0o777 == 0o600
    assert zeroimage.erase_credentials("docker.io", env) is True
    assert zeroimage.erase_credentials("docker.io", env) is False
    assert "https://index.docker.io/v1/" not in json.loads(path.read_text())["auths"]


# ---- transport, against loopback servers ----


class Server:
    """A loopback HTTP server whose handler answers from ``routes``: path -> callable(handler)."""

    def __init__(self, routes):
        self.seen = []
        server = self

        class Handler(QuietHandler):
            def do_GET(self):
                server.seen.append((self.command, self.path, dict(self.headers)))
                routes.get(self.path.split("?")[0], lambda h: h.reply(404, b"{}"))(self)

            do_HEAD = do_PUT = do_POST = do_GET

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_port
        self.netloc = "127.0.0.1:%d" % self.httpd.server_port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def session():
    with zeroimage.Session() as s:
        yield s


@pytest.fixture
def servers():
    started = []

    def start(routes):
        started.append(Server(routes))
        return started[-1]
    yield start
    for s in started:
        s.close()


def test_redirect_to_another_host_drops_authorization(servers):
    cdn = servers({"/blob": lambda h: h.reply(200, b"payload")})
    registry = servers({"/v2/r/blobs/x": lambda h: h.reply(307, headers=[("Location", cdn.url + "/blob?sig=1")]),
                        "/local": lambda h: h.reply(302, headers=[("Location", "/v2/r/blobs/y")]),
                        "/v2/r/blobs/y": lambda h: h.reply(200, b"same host")})
    with zeroimage.Session() as session:
        transport = session.transport
        with transport.request("GET", registry.url + "/v2/r/blobs/x", auth="Bearer SECRET") as r:
            assert r.read() == b"payload"
        assert registry.seen[0][2].get("Authorization") == "Bearer SECRET"
        assert "Authorization" not in cdn.seen[0][2] and cdn.seen[0][1] == "/blob?sig=1"
        with transport.request("GET", registry.url + "/local", auth="Bearer SECRET") as r:
            assert r.read() == b"same host"
    assert registry.seen[-1][2].get("Authorization") == "Bearer SECRET", "a redirect back to the registry keeps it"


def test_retries_503_honouring_retry_after(servers):
    answers = [503, 429, 200]

    def flaky(h):
        status = answers.pop(0)
        h.reply(status, b"ok" if status == 200 else b"busy", headers=[("Retry-After", "0")])
    server = servers({"/x": flaky})
    with zeroimage.Session() as session, session.transport.request("GET", server.url + "/x") as r:
        assert r.status == 200 and r.read() == b"ok" and len(server.seen) == 3


def test_post_is_not_retried(servers):
    server = servers({"/x": lambda h: h.reply(503, b"busy")})
    with zeroimage.Session() as session, session.transport.request("POST", server.url + "/x", body=b"data") as r:
        assert r.status == 503 and len(server.seen) == 1


def test_schema1_manifest_is_refused(servers, session):
    schema1 = json.dumps({"schemaVersion": 1, "name": "old", "tag": "1", "fsLayers": []}).encode()
    server = servers({"/v2/": lambda h: h.reply(200, b"{}"),
                      "/v2/old/manifests/1": lambda h: h.reply(200, schema1, [(
                          "Content-Type", "application/vnd.docker.distribution.manifest.v1+prettyjws")])})
    registry = session.registry(server.netloc, Credentials())
    with pytest.raises(zeroimage.ZeroImageError, match="schema 1"):
        registry.get_manifest("old", "1")


def test_manifest_digest_header_is_checked(servers, session):
    body = json.dumps({"schemaVersion": 2, "mediaType": zeroimage.OCI_MANIFEST, "config": {}, "layers": []}).encode()
    server = servers({"/v2/": lambda h: h.reply(200, b"{}"),
                      "/v2/a/manifests/1": lambda h: h.reply(200, body, [
                          ("Docker-Content-Digest", "sha256:" + "0" * 64)])})
    registry = session.registry(server.netloc, Credentials())
    with pytest.raises(zeroimage.DigestMismatchError):
        registry.get_manifest("a", "1")


@pytest.mark.parametrize("honours_range", [True, False], ids=["range", "whole-again"])
def test_broken_blob_download_resumes_with_range(servers, session, honours_range):
    """A cut download resumes at the byte it reached; a server that ignores Range sends it all again
    and the part already read is skipped."""
    data = os.urandom(300000)
    digest = "sha256:" + __import__("hashlib").sha256(data).hexdigest()
    calls = []

    def blob(h):
        calls.append(h.headers.get("Range"))
        if len(calls) == 1:                 # promise everything, send a third, hang up
            h.send_response(200)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data[:100000])
            h.wfile.flush()
            h.close_connection = True
            return
        start = int(h.headers["Range"][6:-1])
        if not honours_range:
            return h.reply(200, data)
        h.reply(206, data[start:], [("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))])
    server = servers({"/v2/": lambda h: h.reply(200, b"{}"), "/v2/r/blobs/" + digest: blob})
    registry = session.registry(server.netloc, Credentials())
    reader = registry.open_blob("r", digest, len(data))
    got = b""
    while True:
        chunk = reader.read(65536)
        if not chunk:
            break
        got += chunk
    assert got == data and calls == [None, "bytes=100000-"]


MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": zeroimage.OCI_MANIFEST, "config": {}, "layers": []}).encode()


def _bearer_registry(servers, token_route, expected_auth):
    holder = {}

    def v2(h):
        h.reply(401, b"{}", [("WWW-Authenticate", 'Bearer realm="%s/token",service="svc"' % holder["server"].url)])

    def manifest(h):
        if h.headers.get("Authorization") != expected_auth:
            return v2(h)
        h.reply(200, MANIFEST, [("Content-Type", zeroimage.OCI_MANIFEST)])
    holder["server"] = servers({"/v2/": v2, "/token": token_route, "/v2/a/manifests/1": manifest})
    return holder["server"]


def test_identity_token_falls_back_to_get_when_post_is_404(servers, session):
    def token(h):
        if h.command == "POST":
            return h.reply(404, b"{}")
        h.reply(200, json.dumps({"access_token": "T1", "expires_in": 300}).encode())
    server = _bearer_registry(servers, token, "Bearer T1")
    registry = session.registry(server.netloc, Credentials(identity_token="refresh"))
    assert registry.get_manifest("a", "1")[0] == MANIFEST
    assert [m for m, p, _ in server.seen if p.startswith("/token")] == ["POST", "GET"]
    assert "scope=repository%3Aa%3Apull" in [p for m, p, _ in server.seen if m == "GET" and p.startswith("/token")][0]


def test_registry_token_is_sent_as_it_is(servers, session):
    server = _bearer_registry(servers, lambda h: h.reply(500, b"{}"), "Bearer given-token")
    registry = session.registry(server.netloc, Credentials(registry_token="given-token"))
    assert registry.get_manifest("a", "1")[0] == MANIFEST
    assert not [p for _, p, _ in server.seen if p.startswith("/token")]


def test_tokens_are_cached_per_scope(servers, session):
    server = _bearer_registry(servers, lambda h: h.reply(200, b'{"token": "T1"}'), "Bearer T1")
    registry = session.registry(server.netloc, Credentials())
    for _ in range(3):
        registry.get_manifest("a", "1")
    assert len([p for _, p, _ in server.seen if p.startswith("/token")]) == 1


def test_oversized_token_manifest_and_error_bodies_are_cut_off(servers, monkeypatch, session):
    big = b"x" * (zeroimage.MAX_TOKEN_BODY + 10)
    holder = {}

    def v2(h):
        h.reply(401, b"{}", [("WWW-Authenticate", 'Bearer realm="%s/token"' % holder["s"].url)])
    holder["s"] = servers({"/v2/": v2, "/token": lambda h: h.reply(200, big)})
    registry = session.registry(holder["s"].netloc, Credentials())
    with pytest.raises(zeroimage.RegistryError, match="token answer is over"):
        registry.get_manifest("a", "1")

    huge = b"{" + b" " * zeroimage.MAX_JSON_SIZE + b"}"
    error_body = b"e" * (zeroimage.MAX_ERROR_BODY + 10)
    server = servers({"/v2/": lambda h: h.reply(200, b"{}"),
                      "/v2/a/manifests/1": lambda h: h.reply(200, huge),
                      "/v2/a/manifests/2": lambda h: h.reply(500, error_body)})
    registry = session.registry(server.netloc, Credentials())
    with pytest.raises(zeroimage.RegistryError, match="over the"):
        registry.get_manifest("a", "1")
    monkeypatch.setattr(zeroimage, "MAX_ATTEMPTS", 1)
    with pytest.raises(zeroimage.RegistryError) as e:
        registry.get_manifest("a", "2")
    assert e.value.status == 500 and len(str(e.value)) < 300


def test_a_manifest_is_read_once_per_client(servers, session):
    """An index is fetched once for all the platforms of a build (and a moving tag is read once)."""
    server = servers({"/v2/": lambda h: h.reply(200, b"{}"),
                      "/v2/a/manifests/1": lambda h: h.reply(200, MANIFEST, [("Content-Type", zeroimage.OCI_MANIFEST)])})
    registry = session.registry(server.netloc, Credentials())
    assert registry.get_manifest("a", "1") == registry.get_manifest("a", "1")
    assert [p for _, p, _ in server.seen].count("/v2/a/manifests/1") == 1


def test_inspect_and_base_read_each_manifest_and_config_once(servers, tmp_path):
    """Through the one walker and tree reader, a single-manifest image costs one manifest GET and one
    config GET, however many times the walker and the reader look at them."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                         "config": {}}).encode()
    config_digest = "sha256:" + __import__("hashlib").sha256(config).hexdigest()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": zeroimage.OCI_MANIFEST, "layers": [],
                           "config": {"mediaType": zeroimage.OCI_CONFIG, "digest": config_digest,
                                      "size": len(config)}}).encode()
    server = servers({"/v2/": lambda h: h.reply(200, b"{}"),
                      "/v2/a/manifests/1": lambda h: h.reply(200, manifest, [("Content-Type", zeroimage.OCI_MANIFEST)]),
                      "/v2/a/blobs/" + config_digest: lambda h: h.reply(200, config)})
    info = json.loads(zeroimage.inspect(server.netloc + "/a:1", mode="json"))
    assert info["platform"] == "linux/amd64"
    paths = [p for m, p, _ in server.seen if m == "GET"]
    assert paths.count("/v2/a/manifests/1") == 1 and paths.count("/v2/a/blobs/" + config_digest) == 1, paths
    assert not [p for p in paths if "/manifests/sha256:" in p], paths


def test_pull_by_sha512_digest_keeps_the_digest_and_reads_back(servers, tmp_path):
    """A manifest asked for by a sha512 digest is verified with sha512 and saved under it
    (blobs/sha512/...), and the archive reads back."""
    hashlib = __import__("hashlib")
    layer = __import__("gzip").compress(b"\0" * 1024, mtime=0)       # an empty tar
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [
                             "sha256:" + hashlib.sha256(b"\0" * 1024).hexdigest()]}}).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": zeroimage.OCI_MANIFEST,
                           "config": {"mediaType": zeroimage.OCI_CONFIG, "digest": config_digest, "size": len(config)},
                           "layers": [{"mediaType": zeroimage.OCI_LAYER_GZIP, "digest": layer_digest,
                                       "size": len(layer)}]}).encode()
    digest = "sha512:" + hashlib.sha512(manifest).hexdigest()
    server = servers({"/v2/": lambda h: h.reply(200, b"{}"),
                      "/v2/a/manifests/" + digest: lambda h: h.reply(200, manifest, [
                          ("Content-Type", zeroimage.OCI_MANIFEST)]),
                      "/v2/a/blobs/" + config_digest: lambda h: h.reply(200, config),
                      "/v2/a/blobs/" + layer_digest: lambda h: h.reply(200, layer)})
    saved = zeroimage.pull("%s/a@%s" % (server.netloc, digest), str(tmp_path / "a.tar"))
    assert saved.digest == digest
    with zeroimage.Layout(str(tmp_path / "a.tar")) as layout:
        (candidate,) = layout.candidates()
        assert candidate.descriptor["digest"] == digest
        assert json.loads(layout.read_manifest(candidate.descriptor)) == json.loads(manifest)
    with tarfile.open(str(tmp_path / "a.tar")) as tar:
        assert "blobs/sha512" in tar.getnames() and "blobs/sha512/" + digest.split(":")[1] in tar.getnames()


# ---- registry quirks: what counts as a refusal ----


def _error(status, *errors):
    return zeroimage.RegistryError(status, "PUT", "http://r/v2/x", "", list(errors))


@pytest.mark.parametrize("status, errors, refuses", [
    (415, [], True),                                                          # unsupported media type
    (400, [{"code": "MANIFEST_INVALID", "message": "manifest invalid",
            "detail": {"message": "schema version not supported"}}], True),   # older Quay
    (400, [{"code": "MANIFEST_INVALID", "message": "manifest invalid", "detail": "unsupported media type"}], True),
    (400, [{"code": "UNSUPPORTED", "message": "The operation is unsupported: mediaType"}], True),
    (400, [{"code": "MANIFEST_INVALID", "message": "manifest invalid", "detail": "layer missing"}], False),
    (400, [{"code": "MANIFEST_BLOB_UNKNOWN", "message": "blob unknown to registry"}], False),
    (400, [{"code": "TAG_INVALID", "message": "manifest tag did not match URI: not supported"}], False),
    (404, [{"code": "NAME_UNKNOWN", "message": "repository name not known"}], False),
    (401, [], False), (500, [], False),
])
def test_what_counts_as_refusing_oci(status, errors, refuses):
    assert zeroimage._refuses_oci(_error(status, *errors)) is refuses


@pytest.mark.parametrize("error, refused", [
    (_error(404, {"code": "BLOB_UNKNOWN"}), True),           # older Artifactory, on a PUT with the bytes
    (_error(405, {"code": "UNSUPPORTED"}), True),            # no chunked uploads
    (_error(400), True), (_error(411), True), (_error(413), True), (_error(416), True), (_error(501), True),
    (zeroimage.AuthenticationError(401, "PUT", "u"), False),  # credentials: not a way of uploading
    (zeroimage.AuthenticationError(403, "PUT", "u"), False),
    (_error(408), False), (_error(429), False), (_error(500), False), (_error(503), False),
    (zeroimage.NetworkError("reset"), False), (ValueError("x"), False),
])
def test_what_counts_as_refusing_an_upload_kind(error, refused):
    assert zeroimage._upload_refused(error) is refused


@pytest.mark.parametrize("groups, merged", [
    ([["repository:a:push,pull"], ["repository:a:pull,push"]], ["repository:a:push,pull"]),
    ([["repository:app:pull"], ["repository:app:pull,push", "repository:base:pull"]],
     ["repository:app:pull,push", "repository:base:pull"]),
    ([["registry:catalog:*"], ["repository:a:pull"]], ["registry:catalog:*", "repository:a:pull"]),
    ([["repository(plugin):p/x:pull"], ["repository(plugin):p/x:push"]], ["repository(plugin):p/x:pull,push"]),
    ([["odd", ":x", "repository:a:"], ["odd"]], ["odd", ":x", "repository:a:"]),
    ([[], []], []),
])
def test_merge_scopes_one_per_resource_in_the_order_first_named(groups, merged):
    assert zeroimage.merge_scopes(*groups) == merged


@pytest.mark.parametrize("location, api, url", [
    ("/v2/a/blobs/uploads/u?_state=x", "https://r.example", "https://r.example/v2/a/blobs/uploads/u?_state=x"),
    ("u2?_state=y", "https://r.example", "https://r.example/v2/a/blobs/uploads/u2?_state=y"),
    ("https://r.example/v2/a/blobs/uploads/u", "https://r.example", "https://r.example/v2/a/blobs/uploads/u"),
    ("https://uploads.example/s/u?sig=1", "https://r.example", "https://uploads.example/s/u?sig=1"),
    # a registry behind a proxy that ends TLS for it says http:// for itself (distribution#123, #479)
    ("http://r.example/v2/a/blobs/uploads/u?_state=x", "https://r.example", "https://r.example/v2/a/blobs/uploads/u?_state=x"),
    ("http://r.example:80/v2/a/blobs/uploads/u", "https://r.example", "https://r.example/v2/a/blobs/uploads/u"),
    ("http://r.example:5000/v2/a/u", "https://r.example:5000", "https://r.example:5000/v2/a/u"),
    ("http://r.example:8080/v2/a/u", "https://r.example", "http://r.example:8080/v2/a/u"),     # another service
    ("http://127.0.0.1:5000/v2/a/u", "http://127.0.0.1:5000", "http://127.0.0.1:5000/v2/a/u"),
    ("", "https://r.example", None), ("ftp://r.example/x", "https://r.example", None),
    ("http://[::1", "https://r.example", None),
])
def test_upload_url(location, api, url):
    assert zeroimage.upload_url(location, api + "/v2/a/blobs/uploads/", api) == url


# ---- tag lists: Link headers and pages (the distribution spec's "Listing Tags") ----


@pytest.mark.parametrize("header, expected", [
    ('</v2/a/tags/list?n=2&last=b>; rel="next"', [("/v2/a/tags/list?n=2&last=b", {"rel": "next"})]),
    ('<https://r.example/v2/a/tags/list?last=b>; rel=next', [("https://r.example/v2/a/tags/list?last=b", {"rel": "next"})]),
    ('<a>; rel="prev", <b>; REL="next"; title="x, y; z"', [("a", {"rel": "prev"}), ("b", {"rel": "next", "title": "x, y; z"})]),
    ('<a>;rel="next" , , <b>', [("a", {"rel": "next"}), ("b", {})]),
    ('<a>; title="with \\"quotes\\""', [("a", {"title": 'with "quotes"'})]),
    ('<a>; rel="next"; rel="prev"', [("a", {"rel": "next"})]),       # the first of a repeated parameter counts
    ("", []), ("garbage", []), ("<unclosed; rel=next", []),
])
def test_parse_links(header, expected):
    assert zeroimage.parse_links(header) == expected


@pytest.mark.parametrize("header, expected", [
    ('</v2/a/tags/list?n=2&last=b>; rel="next"', "/v2/a/tags/list?n=2&last=b"),
    ('<p>; rel="prev", <n>; rel="next"', "n"),
    ('<n>; rel="prev next"', "n"),                      # rel may name several relations
    ('<n>; rel=NEXT', "n"),
    ('<p>; rel="prev"', None), ('<x>; title="next"', None), ('<x>; rel="nextpage"', None),
    ("", None), (None, None),
])
def test_next_link(header, expected):
    assert zeroimage.next_link(header) == expected


def test_a_link_header_too_long_to_read_whole_is_an_error_not_a_last_page():
    long_link = '<%s>; rel="next"' % ("/v2/a/tags/list?last=" + "x" * zeroimage.MAX_LINK_HEADER)
    with pytest.raises(ValueError, match="Link header is over"):
        zeroimage.next_link(long_link)
    assert zeroimage.next_link(long_link[:zeroimage.MAX_LINK_HEADER - 20] + '>; rel="next"')


PAGE = "http://127.0.0.1:5000/v2/a/tags/list"
API = "http://127.0.0.1:5000"


@pytest.mark.parametrize("target, page, api, expected", [
    ("/v2/a/tags/list?n=2&last=b", PAGE, API, PAGE + "?n=2&last=b"),
    ("?n=2&last=b", PAGE + "?n=2&last=a", API, PAGE + "?n=2&last=b"),           # relative to the page
    ("tags/list?last=b", "http://127.0.0.1:5000/v2/a/tags/list", API, None),   # another path: /v2/a/tags/tags/list
    (PAGE + "?last=b", PAGE, API, PAGE + "?last=b"),
    ("http://reg.example/v2/a/tags/list?last=b", "https://reg.example/v2/a/tags/list", "https://reg.example",
     "https://reg.example/v2/a/tags/list?last=b"),                           # a TLS-ending proxy's http:// for itself
])
def test_next_page_url_follows_the_registrys_own_pages(target, page, api, expected):
    url, why = zeroimage.next_page_url(target, page, api)
    assert url == expected, why


@pytest.mark.parametrize("target, words", [
    ("http://other.example/v2/a/tags/list?last=b", "another host"),          # credentials must not go there
    ("http://127.0.0.1:5001/v2/a/tags/list?last=b", "another host, port"),
    ("https://127.0.0.1:5000/v2/a/tags/list?last=b", "scheme"),
    ("//other.example/v2/a/tags/list", "another host"),
    ("/v2/b/tags/list?last=b", "another path"),
    ("/v2/_catalog", "another path"),
    ("javascript:alert(1)", "javascript:"),
    ("file:///etc/passwd", "file:"),
    ("/v2/a/tags/list?last=a b", "spaces"),
    ("/v2/a/tags/list?last=\x1b[31m", "control"),
    ("http://user:pw@[::1/v2/a/tags/list", "malformed"),
])
def test_next_page_url_refuses_to_leave_the_registry(target, words):
    url, why = zeroimage.next_page_url(target, PAGE, API)
    assert url is None and words in why, why
    assert "pw" not in why and "\x1b" not in why


@pytest.mark.parametrize("data, tags", [
    (b'{"name":"a","tags":["1","latest","v1.0.0-rc_1"]}', ["1", "latest", "v1.0.0-rc_1"]),
    (b'{"name":"a","tags":[]}', []),
    (b'{"name":"a","tags":null}', []),          # a repository whose tags were all deleted (some registries)
    (b'{"name":"a"}', []),
])
def test_tag_list_page(data, tags):
    assert zeroimage.tag_list_page(data) == tags


@pytest.mark.parametrize("data, words", [
    (b'{"tags":"latest"}', "tags list"), (b'{"tags":{"a":1}}', "tags list"), (b'["latest"]', "tags list"),
    (b'not json', "not JSON"), (b'\xff\xfe', "not JSON"), (b'[' * 100000 + b']' * 100000, "not JSON"),
    (b'{"tags":["ok",1]}', "holds 1"), (b'{"tags":["ok",null]}', "holds null"),
    (b'{"tags":["a b"]}', "not a tag"), (b'{"tags":["\\u001b[31mred"]}', "not a tag"),
    (b'{"tags":[".hidden"]}', "not a tag"), (b'{"tags":["%s"]}' % (b"x" * 129), "not a tag"),
    (b'{"tags":["caf\\u00e9"]}', "not a tag"),
])
def test_tag_list_page_refuses_what_is_not_a_tag_list(data, words):
    with pytest.raises(ValueError, match=words) as info:
        zeroimage.tag_list_page(data)
    assert "\x1b" not in str(info.value)


@pytest.mark.parametrize("tag, good", [
    ("latest", True), ("1.2.3", True), ("_x", True), ("A-Z_0.9", True), ("x" * 128, True),
    ("", False), (".x", False), ("-x", False), ("x" * 129, False), ("a:b", False), ("reg/app:1", False),
    ("café", False), ("a b", False), (None, False),
])
def test_tag_problem(tag, good):
    assert (zeroimage.tag_problem(tag) is None) is good


@pytest.mark.parametrize("text, ok", [
    ("registry.example.com/app", True), ("alpine", True), ("localhost:5000/a/b", True),
    ("alpine:3.19", False), ("registry.example.com/app@sha256:" + "a" * 64, False),
    ("localhost:5000/a:1", False),
])
def test_repository_reference_takes_no_tag_or_digest(text, ok):
    if ok:
        assert zeroimage.repository_reference(text).tag is None
    else:
        with pytest.raises(zeroimage.UsageError, match="not a repository"):
            zeroimage.repository_reference(text)


class _SchemeServer:
    """A loopback /v2/ on one port, in TLS and plain HTTP as ``plain`` says: "answer" (a registry in
    plain HTTP), "400" (an HTTPS server's answer to plain HTTP, as Go's and nginx's), "hang up" (as
    stunnel's, HAProxy's, openssl s_server's), "hang up once" (a plain-HTTP registry that drops its first
    connection), "busy once" (one that answers 503 first); TLS when ``pki`` (else a handshake is
    answered in plain HTTP). Counts the connections of each kind."""

    def __init__(self, plain, pki=None):
        import ssl
        from registries import _PeekingServer
        self.connections, self.answers = {"plain": 0, "tls": 0}, 0
        outer = self

        class Handler(QuietHandler):
            def do_GET(self):
                if not isinstance(self.connection, ssl.SSLSocket) and plain == "400":
                    return self.reply(400, b"Client sent an HTTP request to an HTTPS server.\n")
                outer.answers += 1
                if plain == "busy once" and outer.answers == 1:
                    return self.reply(503, b"starting", [("Retry-After", "0")])
                self.reply(200, b"{}", [("Content-Type", "application/json")])

        class Peeking(_PeekingServer):
            def finish_request(self, request, client_address):
                first = request.recv(1, __import__("socket").MSG_PEEK)
                kind = "tls" if first == b"\x16" else "plain"
                outer.connections[kind] += 1
                if kind == "plain" and (plain == "hang up" or plain == "hang up once" and outer.connections[kind] == 1):
                    return None         # closed unanswered (shutdown_request)
                return super().finish_request(request, client_address)

        self.httpd = Peeking(("127.0.0.1", 0), Handler)
        if pki is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(pki["cert"], pki["key"])
            self.httpd.tls_context = context
        self.host = "127.0.0.1:%d" % self.httpd.server_port
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.mark.parametrize("plain, tls, scheme, connections", [
    ("answer", False, "http", {"plain": 1, "tls": 0}),           # a local plain-HTTP registry: no TLS at all
    ("400", True, "https", {"plain": 1, "tls": 1}),              # Go's HTTPS server: 400 to plain HTTP
    ("hang up", True, "https", {"plain": 1, "tls": 1}),          # a TLS server that hangs up: asked once, not 4 times
    ("hang up once", False, "http", {"plain": 2, "tls": 1}),     # plain HTTP after all: asked again, with retries
    ("busy once", False, "http", {"plain": 1, "tls": 0}),        # a 503: asked again (keep-alive), never in TLS
])
def test_a_loopback_registry_is_asked_in_plain_http_once_then_https(pki, plain, tls, scheme, connections):
    server = _SchemeServer(plain, pki if tls else None)
    try:
        with zeroimage.Session({"SSL_CERT_FILE": pki["ca"]}) as session:
            assert session.registry(server.host).auth.ping() == "%s://%s" % (scheme, server.host)
    finally:
        server.close()
    assert server.connections == connections
