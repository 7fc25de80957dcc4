"""zeroimage against the real docker-registry (distribution): open HTTP, htpasswd Basic auth,
and token auth over TLS with the token server in registries.py."""

import base64
import gzip
import json
import os
import pty
import re
import select
import shutil
import sys
import tarfile
import time

import pytest

import registries
from binaries import make_elf
from clients import MODES, Client, run_cli_stdin
from conftest import need_tool
from helpers import run_image, sh
from imagetools import DOCKER, MODULE, OCI, LayoutBuilder, dirs_of_program_layer, fhs_base, image_of, \
    multi_platform_base, read_archive, real_base, ref, run_cli, sha256

pytestmark = pytest.mark.interop


@pytest.fixture(params=MODES)
def client(request, tmp_path, pki, registry_servers):
    return Client(tmp_path, pki, registry_servers(request.param))


@pytest.fixture
def token_client(tmp_path, pki, registry_servers):
    return Client(tmp_path, pki, registry_servers("token"))


def test_build_push_pull_run_and_push_back(tmp_path, client, busybox_program):
    client.login()
    target = client.ref("roundtrip/app:1")
    pushed = client.ok("build", "--push", target, busybox_program).stdout.strip()
    assert pushed.startswith(target + "@sha256:")
    digest = pushed.split("@")[1]
    info = json.loads(client.skopeo("inspect", "docker://" + target))
    assert info["Digest"] == digest and info["Architecture"] == "amd64"
    # skopeo pulls it and runc runs it
    _, out = run_image(tmp_path, "docker://" + target, ["/busybox", "sh", "-c", "grep -c : /etc/passwd"],
                       skopeo_args=client.skopeo_flags("src-"))
    assert out.strip() == "3"
    # zeroimage pulls it back; pushed elsewhere, the digest stays the same
    archive = tmp_path / "pulled.tar"
    assert client.ok("pull", "-o", archive, target).stdout.strip() == digest
    again = client.ok("push", archive, client.ref("roundtrip/copy:2")).stdout.strip()
    assert again == client.ref("roundtrip/copy:2") + "@" + digest
    summary = client.ok("inspect", target).stdout
    assert digest in summary and '["/busybox"]' in summary and "Layers:      2" in summary


def test_without_login_access_is_refused_clearly(client, busybox_program):
    if client.server.mode == "open":
        pytest.skip("the open registry lets everyone in")
    r = client("build", "--push", client.ref("private/app:1"), busybox_program)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "access denied" in r.stderr and "zeroimage login %s" % client.server.host in r.stderr
    r = client("check-auth", "--push", client.ref("private/app"))
    assert r.returncode == 1 and "push: denied" in r.stdout


def test_login_wrong_password_stores_nothing(client):
    if client.server.mode == "open":
        pytest.skip("the open registry takes any password")
    r = run_cli_stdin(client.env, "not-the-password\n", "login", "-u", "alice", "--password-stdin", client.server.host)
    assert r.returncode == 1 and "wrong username or password" in r.stderr and "not-the-password" not in r.stderr
    assert not (client.home / "config.json").exists()
    client.login()
    config = json.loads((client.home / "config.json").read_text())
    assert client.server.host in config["auths"]
    assert oct(os.stat(str(client.home / "config.json")).st_mode & 0o777) == "0o600"
    assert client.ok("check-auth", "--push", client.ref("any/repo")).stdout.split("\n")[:2] == ["pull: allowed", "push: allowed"]
    client.ok("logout", client.server.host)
    assert client.server.host not in json.loads((client.home / "config.json").read_text())["auths"]


def test_anonymous_pull_with_token_auth(tmp_path, token_client, busybox_program):
    token_client.login()
    token_client.ok("build", "--from", "scratch", "--push", token_client.ref("public/base:1"), busybox_program)
    token_client.ok("logout", token_client.server.host)
    token_client.ok("pull", "-o", tmp_path / "anon.tar", token_client.ref("public/base:1"))
    r = token_client("push", tmp_path / "anon.tar", token_client.ref("public/base:2"))
    assert r.returncode == 1 and "access denied" in r.stderr


def test_identity_token_exchange(tmp_path, token_client, token_server, busybox_program):
    token_client.home.mkdir()
    (token_client.home / "config.json").write_text(json.dumps(
        {"auths": {token_client.server.host: {"identitytoken": "alice-refresh-token"}}}))
    before = len(token_server.requests)
    token_client.ok("build", "--push", token_client.ref("idtoken/app:1"), busybox_program)
    posts = [r for r in token_server.requests[before:] if r["method"] == "POST"]
    assert posts and all(r["user"] == "alice" for r in posts)


def test_cross_repository_mount_uploads_only_new_blobs(tmp_path, token_client, token_server, busybox_program):
    token_client.login()
    token_client.ok("build", "--push", token_client.ref("mount/base:1"), busybox_program)
    other = tmp_path / "other-program"
    other.write_bytes(busybox_program.read_bytes() + b"\0")
    before = len(token_server.requests)
    r = token_client.ok("build", "--from", token_client.ref("mount/base:1"), "--push", token_client.ref("mount/app:1"),
                        "--target", "/busybox", other)
    summary = r.stderr.strip().splitlines()[-1]     # new layer + config pushed; base layers mounted
    assert re.match(r"zeroimage: compressed 1 blob \(.*\), pushed 2 blobs \(.*\), mounted 2 in [0-9.]+ s$", summary)
    push_requests = [q for q in token_server.requests[before:] if "repository:mount/app:pull,push" in q["scopes"]]
    assert push_requests and "repository:mount/base:pull" in push_requests[-1]["scopes"]
    _, manifest, _, _ = image_of_remote(tmp_path, token_client, "mount/app:1")
    base_digest = json.loads(token_client.skopeo("inspect", "--raw", "docker://" + token_client.ref("mount/base:1")))
    assert manifest["annotations"]["org.opencontainers.image.base.name"] == token_client.ref("mount/base:1")
    assert manifest["layers"][:2] == base_digest["layers"]


def image_of_remote(tmp_path, client, name):
    archive = tmp_path / (name.replace("/", "_").replace(":", "_") + ".tar")
    client.ok("pull", "-o", archive, client.ref(name))
    return image_of(str(archive))


def test_credential_helper(tmp_path, pki, registry_servers, busybox_program):
    client = Client(tmp_path, pki, registry_servers("basic"))
    registries.write_helper(tmp_path, tmp_path / "helper-store.json")
    client.home.mkdir()
    (client.home / "config.json").write_text(json.dumps({"credHelpers": {client.server.host: "test"}, "x-kept": 1}))
    client.login()
    config = json.loads((client.home / "config.json").read_text())
    assert config == {"credHelpers": {client.server.host: "test"}, "x-kept": 1}, "stored by the helper, not the file"
    assert json.loads((tmp_path / "helper-store.json").read_text()) == {client.server.host: ["alice", "wonderland"]}
    client.ok("build", "--push", client.ref("helper/app:1"), busybox_program)
    client.ok("logout", client.server.host)
    assert json.loads((tmp_path / "helper-store.json").read_text()) == {}
    r = client("build", "--push", client.ref("helper/app:1"), busybox_program)
    assert r.returncode == 1 and "access denied" in r.stderr


def test_missing_helper_warns_and_tries_anonymous(tmp_path, pki, registry_servers, busybox_program):
    """public/base:1 is pushed by test_anonymous_pull_with_token_auth; pushed here again in case it runs alone."""
    (tmp_path / "pusher").mkdir()
    pusher = Client(tmp_path / "pusher", pki, registry_servers("token"))
    pusher.login()
    pusher.ok("build", "--from", "scratch", "--push", pusher.ref("public/base:1"), busybox_program)
    client = Client(tmp_path, pki, registry_servers("token"))
    client.home.mkdir()
    (client.home / "config.json").write_text(json.dumps({"credsStore": "nonexistent"}))
    r = client.ok("pull", "-o", tmp_path / "x.tar", client.ref("public/base:1"))
    assert "warning: credential helper docker-credential-nonexistent is not on PATH" in r.stderr


def test_multi_platform_base_from_registry(tmp_path, client, busybox, busybox_program):
    client.login()
    archive, b, amd, arm, top = multi_platform_base(tmp_path, busybox)
    pushed = client.ok("push", archive, client.ref("multi/base:1")).stdout.strip()
    assert pushed.endswith("@" + top["digest"]), "an index is pushed byte for byte"
    r = client.ok("build", "--from", client.ref("multi/base:1"), "--platform", "linux/arm64", "-o",
                  tmp_path / "arm.tar", busybox_program)
    _, manifest, config, _ = image_of(str(tmp_path / "arm.tar"))
    assert (config["architecture"], config["variant"]) == ("arm64", "v8")
    assert manifest["layers"][:2] == json.loads(b.blobs[arm["digest"]])["layers"]
    assert manifest["annotations"]["org.opencontainers.image.base.digest"] == arm["digest"]
    r = client("build", "--from", client.ref("multi/base:1"), "--platform", "linux/s390x", "-o",
               tmp_path / "x.tar", busybox_program)
    assert r.returncode == 1 and "linux/amd64, linux/arm64/v8" in r.stderr and "unknown" not in r.stderr
    # all platforms, byte for byte, survive a pull and a push
    client.ok("pull", "--all-platforms", "-o", tmp_path / "all.tar", client.ref("multi/base:1"))
    assert "manifest.json" not in read_archive(str(tmp_path / "all.tar"))
    again = client.ok("push", tmp_path / "all.tar", client.ref("multi/mirror:1")).stdout.strip()
    assert again.endswith("@" + top["digest"])
    summary = client.ok("inspect", client.ref("multi/base:1")).stdout
    assert "Platforms:   linux/amd64, linux/arm64/v8" in summary
    raw = client.ok("inspect", "--raw", client.ref("multi/base:1")).stdout
    assert json.loads(raw)["manifests"][0]["digest"] == amd["digest"]
    cfg = json.loads(client.ok("inspect", "--config", "--platform", "linux/arm64", client.ref("multi/base:1")).stdout)
    assert cfg["architecture"] == "arm64"


def test_docker_manifest_list_base(tmp_path, client, busybox, busybox_program):
    client.login()
    archive, b, amd, arm, top = multi_platform_base(tmp_path, busybox, family=DOCKER)
    client.ok("push", archive, client.ref("dockerlist/base:1"))
    target = client.ref("dockerlist/app:1")
    client.ok("build", "--from", client.ref("dockerlist/base:1"), "--push", target, busybox_program)
    raw = json.loads(client.skopeo("inspect", "--raw", "docker://" + target))
    assert raw["mediaType"] == DOCKER["manifest"] and raw["config"]["mediaType"] == DOCKER["config"]
    assert {d["mediaType"] for d in raw["layers"]} == {DOCKER["layer"]}
    assert "annotations" not in raw, "Docker's manifest schema has no annotations: base name and digest stay out"
    client.ok("pull", "-o", tmp_path / "app.tar", target)
    _, out = run_image(tmp_path, "oci-archive:%s" % (tmp_path / "app.tar"), ["/busybox", "cat", "/etc/base-release"])
    assert out == "zeroimage test base 1.0\n"


def test_untrusted_tls_says_what_to_do_and_insecure_skips_it(tmp_path, pki, registry_servers, busybox_program):
    server = registry_servers("token")
    env = {"DOCKER_CONFIG": str(tmp_path / "cfg"), "SSL_CERT_FILE": "/dev/null", "SSL_CERT_DIR": str(tmp_path)}
    (tmp_path / "pusher").mkdir()
    pusher = Client(tmp_path / "pusher", pki, server)
    pusher.login()
    pusher.ok("build", "--from", "scratch", "--push", pusher.ref("public/tls:1"), busybox_program)
    r = run_cli("pull", "-o", tmp_path / "x.tar", "%s/public/tls:1" % server.host, env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "not trusted" in r.stderr and "SSL_CERT_FILE" in r.stderr and "/etc/docker/certs.d/" in r.stderr
    r = run_cli("pull", "--insecure", "-o", tmp_path / "x.tar", "%s/public/tls:1" % server.host, env=env)
    assert r.returncode == 0, r.stderr


def test_certs_d_directory_is_trusted(tmp_path, pki, registry_servers, monkeypatch):
    import zeroimage
    server = registry_servers("token")
    certs = tmp_path / "certs.d" / server.host
    certs.mkdir(parents=True)
    shutil.copy(pki["ca"], str(certs / "ca.crt"))
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setattr(zeroimage, "CERTS_DIRS", (str(tmp_path / "certs.d"),))
    environ = {k: v for k, v in os.environ.items() if k != "SSL_CERT_FILE"}
    with zeroimage.Session(environ) as session:
        assert session.registry(server.host, zeroimage.Credentials()).auth.ping() == "https://" + server.host


def test_https_proxy_from_the_environment(tmp_path, pki, registry_servers, busybox_program):
    server = registry_servers("token")
    client = Client(tmp_path, pki, server)
    client.login()
    client.ok("build", "--from", "scratch", "--push", client.ref("proxied/app:1"), busybox_program)
    proxy = registries.ConnectProxy()
    try:
        env = dict(client.env, HTTPS_PROXY=proxy.url, NO_PROXY="")
        r = run_cli("pull", "-o", tmp_path / "p.tar", client.ref("proxied/app:1"), env=env)
        assert r.returncode == 0, r.stderr
        assert server.host in proxy.tunnels, "registry traffic went through the proxy"
        bypass = registries.ConnectProxy()
        r = run_cli("pull", "-o", tmp_path / "q.tar", client.ref("proxied/app:1"),
                    env=dict(client.env, HTTPS_PROXY=bypass.url, NO_PROXY="127.0.0.1"))
        bypass.close()
        assert r.returncode == 0 and bypass.tunnels == [], "NO_PROXY is honoured"
    finally:
        proxy.close()


def test_login_asks_on_the_terminal(tmp_path, pki, registry_servers):
    client = Client(tmp_path, pki, registry_servers("basic"))
    env = dict(os.environ, **client.env)
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(sys.executable, [sys.executable, MODULE, "login", client.server.host], env)
    seen, answers = b"", [(b"Username: ", b"alice\n"), (b"Password: ", b"wonderland\n")]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        if answers and answers[0][0] in seen:
            os.write(fd, answers.pop(0)[1])
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0, seen
    assert b"wonderland" not in seen, "the password is not echoed"
    assert client.server.host in json.loads((client.home / "config.json").read_text())["auths"]


def test_base_layers_stream_registry_to_registry_when_mount_is_refused(tmp_path, pki, registry_servers,
                                                                      busybox_program, monkeypatch):
    """Each base layer is read from the registry while it is uploaded to the same registry."""
    import zeroimage
    client = Client(tmp_path, pki, registry_servers("open"))
    client.ok("build", "--push", client.ref("stream/base:1"), busybox_program)
    monkeypatch.setattr(zeroimage.Registry, "mount_blob", lambda *args: False)
    other = tmp_path / "other"
    other.write_bytes(b"#!/bin/sh\necho other\n")
    result = zeroimage.build(zeroimage.BuildOptions(str(other), base=client.ref("stream/base:1"),
                                                    push=client.ref("stream/app:1"),
                                                    platform=zeroimage.Platform.parse("linux/amd64")))
    assert result.path == client.ref("stream/app:1") + "@" + result.digest
    pulled = tmp_path / "app.tar"
    client.ok("pull", "-o", pulled, client.ref("stream/app:1"))
    assert len(image_of(str(pulled))[3]) == 3


# ---- multi-platform builds and image options (issue: multi-platform images in one command) ----


def test_two_platform_build_pushed_and_read_back(tmp_path, client, busybox, busybox_program):
    client.login()
    archive, b, amd_base, arm_base, top = multi_platform_base(tmp_path, busybox)
    client.ok("push", archive, client.ref("mp/base:1"))
    arm_binary = tmp_path / "busybox-arm64"
    arm_binary.write_bytes(make_elf(183) + b"pretend arm64 busybox")
    target = client.ref("mp/app:1")
    pushed = client.ok("build", "--from", client.ref("mp/base:1"), "--push", target,
                       "linux/amd64=%s" % busybox_program, "linux/arm64=%s" % arm_binary).stdout.strip()
    index = json.loads(client.skopeo("inspect", "--raw", "docker://" + target))
    assert pushed == target + "@" + sha256(json.dumps(index, separators=(",", ":"), sort_keys=True).encode())
    assert index["annotations"]["org.opencontainers.image.base.digest"] == top["digest"]
    assert [(d["platform"]["architecture"], d["platform"].get("variant")) for d in index["manifests"]] == \
        [("amd64", None), ("arm64", "v8")]
    layout = tmp_path / "all"
    sh(need_tool("skopeo"), "copy", "--quiet", "--all", *client.skopeo_flags("src-"), "docker://" + target,
       "oci:%s:app" % layout)
    for desc, base_desc in zip(index["manifests"], (amd_base, arm_base)):
        manifest = json.loads((layout / "blobs" / "sha256" / desc["digest"][7:]).read_text())
        assert manifest["layers"][:2] == json.loads(b.blobs[base_desc["digest"]])["layers"]
        assert manifest["annotations"]["org.opencontainers.image.base.digest"] == base_desc["digest"]
    arm_layer = json.loads((layout / "blobs" / "sha256" / index["manifests"][1]["digest"][7:]).read_text())["layers"][-1]
    with tarfile.open(str(layout / "blobs" / "sha256" / arm_layer["digest"][7:])) as tar:
        assert tar.extractfile("busybox").read() == arm_binary.read_bytes()
    client.ok("pull", "--platform", "linux/amd64", "-o", tmp_path / "amd.tar", target)
    _, out = run_image(tmp_path, "oci-archive:%s" % (tmp_path / "amd.tar"), ["/busybox", "cat", "/etc/base-release"])
    assert out == "zeroimage test base 1.0\n"


def test_image_options_in_the_running_container(tmp_path, busybox_program):
    tree = tmp_path / "site"
    tree.mkdir()
    (tree / "index.html").write_text("hello from --add\n")
    archive = tmp_path / "app.tar"
    r = run_cli("build", "--add", "%s:/srv/site" % tree, "--env", "GREETING=hi there", "--workdir", "/srv/site",
                "--user", "nonroot", "--cmd", "sh", "--cmd=-c", "--cmd",
                "echo $GREETING; pwd; id -u; cat index.html; touch /home/nonroot/ok && echo writable",
                "-o", archive, busybox_program)
    assert r.returncode == 0, r.stderr
    process, out = run_image(tmp_path, "oci-archive:%s" % archive)
    assert process["args"][:3] == ["/busybox", "sh", "-c"]
    assert out.split("\n")[:5] == ["hi there", "/srv/site", "65532", "hello from --add", "writable"]


def test_layout_directory_validates_and_skopeo_reads_it(tmp_path, busybox_program):
    tool = need_tool("oci-image-tool")
    layout = tmp_path / "layout"
    arm = tmp_path / "arm"
    arm.write_bytes(make_elf(183) + b"arm")
    assert run_cli("build", "--format", "oci-layout", "-o", layout, "-t", "app:1", busybox_program).returncode == 0
    assert run_cli("build", "--format", "oci-layout", "-o", layout, "-t", "app:multi",
                   "linux/amd64=%s" % busybox_program, "linux/arm64=%s" % arm).returncode == 0
    for name in ("1", "multi"):
        assert "Validation succeeded" in sh(tool, "validate", "--type", "image", "--ref", "name=" + name, layout)
    assert json.loads(sh(need_tool("skopeo"), "inspect", "oci:%s:1" % layout))["Architecture"] == "amd64"
    raw = json.loads(sh(need_tool("skopeo"), "inspect", "--raw", "oci:%s:multi" % layout))
    assert len(raw["manifests"]) == 2
    _, out = run_image(tmp_path, "oci:%s:1" % layout)
    assert out.startswith("BusyBox v")


@pytest.mark.parametrize("mode", ["basic", "token"])
def test_secrets_never_reach_the_output(tmp_path, pki, registry_servers, busybox_program, mode):
    client = Client(tmp_path, pki, registry_servers(mode))
    client.home.mkdir()
    secrets = []
    for password in ("S3NTINEL-wrong", "wonderland"):
        encoded = base64.b64encode(("alice:" + password).encode()).decode()
        secrets += [password, encoded]
        (client.home / "config.json").write_text(json.dumps({"auths": {client.server.host: {"auth": encoded}}}))
        for args in (["build", "-v", "--push", client.ref("secret/app:1"), busybox_program],
                     ["pull", "-v", "-o", tmp_path / "s.tar", client.ref("secret/app:1")],
                     ["check-auth", "-v", "--push", client.ref("secret/app")],
                     ["login", "-v", "-u", "alice", "-p", password, client.server.host]):
            r = client(*args)
            for secret in secrets + ["eyJ"]:       # and no JWT (they all start with eyJ)
                assert secret not in r.stdout + r.stderr, (args, r.stderr)


def test_unchanged_repush_compresses_and_uploads_nothing(tmp_path, pki, registry_servers, busybox_program,
                                                         monkeypatch):
    import zeroimage
    client = Client(tmp_path, pki, registry_servers("open"))
    monkeypatch.setenv("ZEROIMAGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    target = client.ref("cache/app:1")
    first = zeroimage.build(zeroimage.BuildOptions(str(busybox_program), push=target))
    compressed = []
    original = zeroimage.write_layer
    monkeypatch.setattr(zeroimage, "write_layer", lambda *a, **k: compressed.append(1) or original(*a, **k))
    again = zeroimage.build(zeroimage.BuildOptions(str(busybox_program), push=target))
    assert again.digest == first.digest and compressed == [], "an unchanged layer is hashed, not compressed"
    # a new repository of the registry: the layers are mounted from where the blob places saw them
    mounted = zeroimage.build(zeroimage.BuildOptions(str(busybox_program), push=client.ref("cache/mounted:1")))
    assert mounted.digest == first.digest and compressed == []
    # a new repository that lacks the blobs, where they were seen nowhere: the cached layer is
    # compressed on demand, and verified
    os.unlink(str(tmp_path / "cache" / "blobs.json"))
    elsewhere = zeroimage.build(zeroimage.BuildOptions(str(busybox_program), push=client.ref("cache/other:1")))
    assert elsewhere.digest == first.digest and len(compressed) == 2
    client.ok("pull", "-o", tmp_path / "other.tar", client.ref("cache/other:1"))
    # a changed program (same size, new bytes) is never mistaken for the cached one
    data = bytearray(busybox_program.read_bytes())
    data[-1] ^= 1
    busybox_program.write_bytes(bytes(data))
    changed = zeroimage.build(zeroimage.BuildOptions(str(busybox_program), push=target))
    assert changed.digest != first.digest
    # an entry naming a blob the registry does not have (another zeroimage version compressed
    # differently) is not trusted: the layer is compressed and the image is whole
    for entry in (tmp_path / "cache" / "layers").iterdir():
        known = json.loads(entry.read_text())
        entry.write_text(json.dumps(dict(known, digest="sha256:" + "0" * 64)))
    assert zeroimage.build(zeroimage.BuildOptions(str(busybox_program),
                                                  push=client.ref("cache/third:1"))).digest == changed.digest
    client.ok("pull", "-o", tmp_path / "third.tar", client.ref("cache/third:1"))
    # a damaged cache is ignored
    for entry in (tmp_path / "cache" / "layers").iterdir():
        entry.write_text("{not json")
    assert zeroimage.build(zeroimage.BuildOptions(str(busybox_program), push=target)).digest == changed.digest


def test_a_push_target_with_a_digest_must_be_the_images(tmp_path, registry_servers, busybox_program):
    """build --push / push to REF@DIGEST: the image must have that digest; never a push under another."""
    server = registry_servers("open")
    wrong = "sha256:" + "0" * 64
    r = run_cli("build", "--from", "scratch", "--push", "%s/pinned/app:1@%s" % (server.host, wrong), busybox_program)
    assert r.returncode == 1 and "names the digest" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = run_cli("build", "--from", "scratch", "-o", tmp_path / "a.tar", busybox_program)
    assert r.returncode == 0, r.stderr
    digest = r.stdout.strip()
    r = run_cli("push", tmp_path / "a.tar", "%s/pinned/app@%s" % (server.host, digest))
    assert r.returncode == 0 and r.stdout.strip().endswith("@" + digest), r.stderr
    r = run_cli("push", tmp_path / "a.tar", "%s/pinned/app@%s" % (server.host, wrong))
    assert r.returncode == 1 and "names the digest" in r.stderr, r.stderr


@pytest.mark.parametrize("client", ["open"], indirect=True)
def test_inspect_of_an_archive_shows_what_inspect_of_the_registry_shows(tmp_path, client, busybox):
    """The same multi-platform image (index annotations, labels, ports, manifest annotations), inspected
    in the archive and after a push: the same JSON but for the name, the same --raw, the same child
    for --platform; a directory named like the reference does not shadow it."""
    b = LayoutBuilder()
    amd = real_base(b, busybox)
    arm = real_base(b, busybox, platform=("linux", "arm64", "v8"))
    manifest = json.loads(b.blobs[arm["digest"]])
    config = json.loads(b.blobs[manifest["config"]["digest"]])
    config["config"] = dict(config.get("config") or {}, Labels={"team": "core"}, ExposedPorts={"8080/tcp": {}})
    manifest["config"]["digest"] = b.add(json.dumps(config).encode())
    manifest["config"]["size"] = len(b.blobs[manifest["config"]["digest"]])
    manifest["annotations"] = {"org.example.note": "arm"}
    data = json.dumps(manifest).encode()
    arm = dict(arm, digest=b.add(data), size=len(data))
    index = json.loads(b.blobs[b.index([amd, arm])["digest"]])
    index["annotations"] = {"org.opencontainers.image.source": "https://example.com/src"}
    data = json.dumps(index).encode()
    top = {"mediaType": index["mediaType"], "digest": b.add(data), "size": len(data)}
    archive = b.write_tar(tmp_path / "multi.tar", [ref(top, "1")])
    target = client.ref("inspect/multi:1")
    client.ok("push", archive, target)
    for args in (["--json"], ["--json", "--platform", "linux/arm64"], ["--raw"], ["--raw", "--platform", "linux/arm64"],
                 ["--config", "--platform", "linux/amd64"]):
        local = client.ok("inspect", *args, archive).stdout
        remote = client.ok("inspect", *args, target).stdout
        if args[0] == "--json":
            local, remote = json.loads(local), json.loads(remote)
            assert (local.pop("name"), remote.pop("name")) == ("1", target)
        assert local == remote, args
    info = json.loads(client.ok("inspect", "--json", "--platform", "linux/arm64", target).stdout)
    assert (info["digest"], info["mediaType"], info["manifest"]) == (top["digest"], index["mediaType"], arm["digest"])
    assert [(m["platform"], m["digest"], m["size"]) for m in info["manifests"]] == [
        ("linux/amd64", amd["digest"], amd["size"]), ("linux/arm64/v8", arm["digest"], arm["size"])]
    assert info["labels"] == {"team": "core"} and info["exposedPorts"] == ["8080/tcp"]
    assert info["annotations"] == {"org.example.note": "arm"}
    assert info["indexAnnotations"] == {"org.opencontainers.image.source": "https://example.com/src"}
    assert client.ok("inspect", "--raw", target).stdout.rstrip("\n").encode() == data
    summary = client.ok("inspect", "--platform", "linux/arm64", archive).stdout
    for line in ("Platforms:   linux/amd64, linux/arm64/v8", "Manifest:    " + arm["digest"], "Ports:       8080/tcp",
                 "  team=core", "  org.example.note=arm", "  org.opencontainers.image.source=https://example.com/src"):
        assert line in summary, summary
    # a layout directory at the path the reference spells is not read instead of the registry
    shadow = tmp_path / "cwd" / client.server.host / "inspect"
    shadow.mkdir(parents=True)
    LayoutBuilder().write_dir(shadow / "multi:1", [])
    r = run_cli("inspect", "--json", target, cwd=str(tmp_path / "cwd"), env=client.env)
    assert r.returncode == 0 and json.loads(r.stdout)["digest"] == top["digest"], r.stderr


def test_directories_of_a_registry_base_keep_their_mode(tmp_path, token_client, busybox_program):
    token_client.login()
    token_client.ok("push", fhs_base(tmp_path), token_client.ref("fhs/base:1"))
    out = tmp_path / "o.tar"
    token_client.ok("build", "--from", token_client.ref("fhs/base:1"), "--add", "%s:/tmp/x" % busybox_program,
                    "-o", out, busybox_program)
    assert dirs_of_program_layer(out) == {"tmp": 0o1777}
    r = token_client("build", "--from", token_client.ref("fhs/base:1"), "--target", "/bin/busybox", "-o",
                     tmp_path / "x.tar", busybox_program)
    assert r.returncode == 2 and "a symlink to usr/bin" in r.stderr


def _all_docker(raw):
    """Every media type of a manifest (or list) skopeo read back raw is Docker's; no annotations."""
    if raw["mediaType"] == DOCKER["index"]:
        assert {d["mediaType"] for d in raw["manifests"]} == {DOCKER["manifest"]}
        assert all("platform" in d for d in raw["manifests"])
    else:
        assert raw["mediaType"] == DOCKER["manifest"] and raw["config"]["mediaType"] == DOCKER["config"]
        assert {d["mediaType"] for d in raw["layers"]} == {DOCKER["layer"]}
    assert "annotations" not in json.dumps(raw)


@pytest.mark.parametrize("base", ["scratch", "minimal", "oci"])
def test_build_media_types_docker_pushed_read_back_and_run(tmp_path, client, busybox, busybox_program, base):
    client.login()
    target = client.ref("dockertypes/%s:1" % base)
    args = {"scratch": ["--from", "scratch"], "minimal": []}.get(base)
    if args is None:
        b = LayoutBuilder()
        args = ["--from-archive", b.write_tar(tmp_path / "base.tar", [ref(real_base(b, busybox), "base")])]
    pushed = client.ok("build", "--media-types", "docker", *args, "--push", target, busybox_program).stdout.strip()
    raw = json.loads(client.skopeo("inspect", "--raw", "docker://" + target))
    _all_docker(raw)
    assert pushed.endswith("@" + json.loads(client.skopeo("inspect", "docker://" + target))["Digest"])
    _, out = run_image(tmp_path, "docker://" + target, ["/busybox", "echo", "hello"],
                       skopeo_args=client.skopeo_flags("src-"))
    assert out == "hello\n"


def test_push_media_types_docker_converts_an_archive_and_a_two_platform_index(tmp_path, client, busybox,
                                                                              busybox_program):
    """The seed's `skopeo copy --format v2s2 oci-archive:app.tar docker://...`, without skopeo."""
    client.login()
    archive = tmp_path / "app.tar"
    built = run_cli("build", "--from", "scratch", "-o", archive, busybox_program)
    assert built.returncode == 0, built.stderr
    target = client.ref("converted/app:1")
    r = client.ok("push", "--media-types", "docker", archive, target)
    assert r.stderr.count("converted to Docker media types: the manifest digest differs from the archive's") == 1
    raw = json.loads(client.skopeo("inspect", "--raw", "docker://" + target))
    _all_docker(raw)
    _, oci, _, _ = image_of(str(archive))
    assert [d["digest"] for d in raw["layers"]] == [d["digest"] for d in oci["layers"]], "layer blobs unchanged"
    assert raw["config"]["digest"] == oci["config"]["digest"]
    assert r.stdout.strip() != target + "@" + built.stdout.strip()
    _, out = run_image(tmp_path, "docker://" + target, ["/busybox", "echo", "converted"],
                       skopeo_args=client.skopeo_flags("src-"))
    assert out == "converted\n"
    # without the option: byte for byte, as before
    plain = client.ok("push", archive, client.ref("converted/plain:1"))
    assert plain.stdout.strip().endswith("@" + built.stdout.strip()) and "converted to" not in plain.stderr
    # an index with an attestation -> a manifest list of the two platforms, the attestation left out
    multi, _, amd, arm, _ = multi_platform_base(tmp_path, busybox)
    r = client.ok("push", "--media-types", "docker", "--json", multi, client.ref("converted/multi:1"))
    assert "attestation" in r.stderr and json.loads(r.stdout)["mediaType"] == DOCKER["index"]
    raw = json.loads(client.skopeo("inspect", "--raw", "docker://" + client.ref("converted/multi:1")))
    _all_docker(raw)
    assert [d["platform"]["architecture"] for d in raw["manifests"]] == ["amd64", "arm64"]
    # a Docker manifest list, the other way: an OCI index of OCI manifests
    (tmp_path / "docker").mkdir()
    docker_multi = multi_platform_base(tmp_path / "docker", busybox, family=DOCKER)[0]
    r = client.ok("push", "--media-types", "oci", docker_multi, client.ref("converted/oci:1"))
    assert "converted to OCI media types" in r.stderr
    raw = json.loads(client.skopeo("inspect", "--raw", "docker://" + client.ref("converted/oci:1")))
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert {d["mediaType"] for d in raw["manifests"]} == {"application/vnd.oci.image.manifest.v1+json"}


def test_push_media_types_refusals(tmp_path, registry_servers, busybox):
    server = registry_servers("open")
    b = LayoutBuilder()
    desc = b.image([[("x", "file", b"x", 0o644)]], {}, family=dict(OCI, layer="application/vnd.oci.image.layer.v1.tar+zstd"))
    zstd = b.write_tar(tmp_path / "zstd.tar", [ref(desc, "z")])
    r = run_cli("push", "--media-types", "docker", zstd, "%s/refused/zstd:1" % server.host)
    assert r.returncode == 1 and "Docker's media types cannot describe" in r.stderr and "Traceback" not in r.stderr
    b = LayoutBuilder()
    desc = b.image([[("x", "file", b"x", 0o644)]], {})
    manifest = json.loads(b.blobs[desc["digest"]])
    manifest["config"]["mediaType"] = "application/vnd.example.sbom.config+json"
    data = json.dumps(manifest).encode()
    artifact = b.write_tar(tmp_path / "artifact.tar", [ref(dict(desc, digest=b.add(data), size=len(data)), "a")])
    r = run_cli("push", "--media-types", "docker", artifact, "%s/refused/artifact:1" % server.host)
    assert r.returncode == 1 and "artifact" in r.stderr and "Traceback" not in r.stderr


# ---- chunked uploads against the real registry ----


@pytest.mark.parametrize("mode", MODES)
def test_a_chunked_upload(tmp_path, pki, registry_servers, busybox_program, mode):
    """Started chunked (as after a registry refused a monolithic upload), every blob goes in one
    PATCH without Content-Range (what docker, skopeo and crane send), then an empty PUT to the
    Location the PATCH's answer gave: distribution takes it in every auth mode, and the image reads
    back."""
    import io
    import logging
    import zeroimage
    client = Client(tmp_path, pki, registry_servers(mode))
    client.login()
    log = io.StringIO()
    target = client.ref("chunked/app:1")
    with zeroimage.Session(client.env, display=zeroimage.Display(log, "plain", logging.DEBUG)) as session:
        session.registry(client.server.host).upload_mode = "chunked"
        result = zeroimage.build(zeroimage.BuildOptions(busybox_program, push=target,
                                                        compression_level=0), session=session)
        assert session.registry(client.server.host).upload_mode == "chunked"
    patches = [line for line in log.getvalue().splitlines() if re.search(r"PATCH \S+ -> 202", line)]
    uploaded = [line for line in log.getvalue().splitlines() if "zeroimage: uploaded sha256:" in line]
    assert len(patches) == len(uploaded) >= 2, log.getvalue()[-2000:]      # one PATCH a blob
    r = client.ok("pull", "-o", tmp_path / "back.tar", target)
    assert r.stdout.strip() == result.digest
    _, _, _, layers = image_of(tmp_path / "back.tar")
    with open(busybox_program, "rb") as f:
        assert f.read() in gzip.decompress(layers[-1])
