"""The registry verbs of issue 14 (tags, digest, tag, delete) against the real docker-registry in its
three modes (open, Basic, token over TLS), through QuirkProxy where a registry's way of paging or
answering is needed that Debian's registry does not have, and against small hostile loopback servers
for tag lists that try to loop, leave the registry or smuggle text to the terminal."""

import base64
import hashlib
import json
import os

import pytest

import registries
import zeroimage
from binaries import make_elf
from clients import MODES, Client
from helpers import cli_env, cli_failed, ok
from imagetools import run_cli
from registries import jdump

pytestmark = pytest.mark.interop


@pytest.fixture(params=MODES)
def client(request, tmp_path, pki, registry_servers):
    c = Client(tmp_path, pki, registry_servers(request.param))
    c.login()
    return c


@pytest.fixture
def open_client(tmp_path, pki, registry_servers):
    return Client(tmp_path, pki, registry_servers("open"))


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pushed(client, name, program):
    """Push an image built from ``program``; its digest."""
    return ok(client("build", "--from", "scratch", "--push", client.ref(name), program)).stdout.strip().split("@")[1]


def raw_manifest(client, name):
    """The manifest bytes skopeo reads for NAME (an independent judge of what the registry serves)."""
    return client.skopeo("inspect", "--raw", "docker://" + client.ref(name)).encode()


# ---- all four, in each mode ----


def test_tag_then_tags_digest_and_delete(client, busybox_program):
    digest = pushed(client, "verbs/app:1.0.0", busybox_program)
    r = ok(client("tag", client.ref("verbs/app:1.0.0"), "1.0", "1", "latest"))
    assert r.stdout.splitlines() == [client.ref("verbs/app:%s@%s" % (tag, digest)) for tag in ("1.0", "1", "latest")]
    assert sha256(raw_manifest(client, "verbs/app:1.0")) == digest, "the same bytes under the new tag"
    assert ok(client("pull", "-o", client.home.parent / "by-new-tag.tar", client.ref("verbs/app:latest"))
              ).stdout.strip() == digest

    listed = ok(client("tags", client.ref("verbs/app"))).stdout.splitlines()
    assert sorted(listed) == ["1", "1.0", "1.0.0", "latest"]
    assert json.loads(ok(client("tags", "--json", client.ref("verbs/app"))).stdout) == listed
    assert ok(client("digest", client.ref("verbs/app:1"))).stdout == digest + "\n"
    assert json.loads(ok(client("digest", "--json", client.ref("verbs/app:1"))).stdout) == {
        "digest": digest, "reference": client.ref("verbs/app:1")}
    assert ok(client("digest", client.ref("verbs/app@" + digest))).stdout == digest + "\n"

    r = ok(client("delete", client.ref("verbs/app:1")))
    assert r.stdout == "%s@%s\n" % (client.ref("verbs/app"), digest)
    assert "deleted %s@%s (was %s" % (client.ref("verbs/app"), digest, client.ref("verbs/app:1")) in r.stderr
    line = cli_failed(client("digest", client.ref("verbs/app:1.0.0")), secrets=())
    assert "not found" in line, "every tag of the manifest went with it"
    assert ok(client("tags", client.ref("verbs/app"))).stdout == ""


def test_quiet_prints_only_results(client, busybox_program):
    digest = pushed(client, "verbs/quiet:1", busybox_program)
    r = ok(client("-q", "tag", client.ref("verbs/quiet:1"), "2"))
    assert r.stderr == "" and r.stdout == client.ref("verbs/quiet:2@%s\n" % digest)
    r = ok(client("tags", "-q", client.ref("verbs/quiet")))
    assert r.stderr == "" and sorted(r.stdout.split()) == ["1", "2"]
    r = ok(client("delete", "-q", "--json", client.ref("verbs/quiet@" + digest)))
    assert r.stderr == "" and json.loads(r.stdout) == {"deleted": client.ref("verbs/quiet@" + digest),
                                                       "digest": digest, "reference": client.ref("verbs/quiet@" + digest)}


# ---- tags over pages ----


@pytest.fixture(params=["open", "token"])
def paged(request, tmp_path, pki, registry_servers, token_server):
    """(a client of the registry behind, a client through a QuirkProxy that pages tag lists) with
    alice's credentials for both."""
    upstream = registry_servers(request.param)
    proxy = registries.QuirkProxy(upstream, pki=pki if upstream.tls else None,
                                  token_server=token_server if request.param == "token" else None, mode="paged-tags")
    direct = Client(tmp_path, pki, upstream)
    direct.login()
    via = Client(tmp_path, pki, upstream)
    via.server = proxy
    if request.param != "open":
        config = json.loads((direct.home / "config.json").read_text())
        config["auths"][proxy.host] = {"auth": base64.b64encode(b"alice:wonderland").decode()}
        (direct.home / "config.json").write_text(json.dumps(config))
    yield direct, via, proxy
    proxy.close()


def test_tags_follow_every_page(paged, busybox_program):
    direct, via, proxy = paged
    pushed(direct, "verbs/paged:a", busybox_program)
    tags = ["b", "c", "d", "e", "f", "g", "h"]
    ok(direct("-q", "tag", direct.ref("verbs/paged:a"), *tags))
    r = ok(via("tags", via.ref("verbs/paged")))
    assert r.stdout.splitlines() == ["a"] + tags, "every page, in order, each tag once"
    assert proxy.counts["tag pages"] == 4 and proxy.counts["absolute links"] >= 1, proxy.counts
    asked = [path for method, path, _ in proxy.seen if method == "GET" and "/tags/list" in path]
    assert asked[0] == "/v2/verbs/paged/tags/list"
    assert asked[1:] == ["/v2/verbs/paged/tags/list?n=2&last=%s" % t for t in ("b", "d", "f")]
    assert json.loads(ok(via("tags", "--json", via.ref("verbs/paged"))).stdout) == ["a"] + tags


# ---- digest ----


@pytest.fixture
def arm_and_amd(tmp_path):
    amd = tmp_path / "amd" / "app"
    arm = tmp_path / "arm" / "app"
    for path, machine in ((amd, 62), (arm, 183)):
        path.parent.mkdir()
        path.write_bytes(make_elf(machine) + b"program for %d" % machine)
    return amd, arm


@pytest.mark.parametrize("media_types", ["oci", "docker"])
def test_digest_of_an_index_its_children_and_their_archive(tmp_path, open_client, arm_and_amd, media_types):
    c = open_client
    amd, arm = arm_and_amd
    name = "verbs/multi-%s:1" % media_types
    index_digest = ok(c("build", "--media-types", media_types, "--push", c.ref(name),
                        "linux/amd64=%s" % amd, "linux/arm64=%s" % arm)).stdout.strip().split("@")[1]
    index = json.loads(raw_manifest(c, name))
    children = {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}
    assert ok(c("digest", c.ref(name))).stdout.strip() == index_digest
    assert ok(c("digest", "--platform", "linux/arm64", c.ref(name))).stdout.strip() == children["arm64"]
    assert json.loads(ok(c("digest", "--json", "--platform", "linux/amd64", c.ref(name))).stdout) == {
        "digest": children["amd64"], "platform": "linux/amd64", "reference": c.ref(name)}
    line = cli_failed(c("digest", "--platform", "linux/s390x", c.ref(name)), secrets=())
    assert "no image for linux/s390x" in line and "linux/amd64, linux/arm64" in line

    archive = tmp_path / "multi.tar"
    assert ok(c("pull", "--all-platforms", "-o", archive, c.ref(name))).stdout.strip() == index_digest
    assert ok(c("digest", archive)).stdout.strip() == index_digest
    assert ok(c("digest", "%s:1" % archive)).stdout.strip() == index_digest
    assert ok(c("digest", "--platform", "linux/arm64", archive)).stdout.strip() == children["arm64"]
    assert json.loads(ok(c("digest", "--json", archive)).stdout) == {"digest": index_digest, "path": str(archive)}


def test_digest_of_a_one_image_archive_and_a_layout_directory(tmp_path, open_client, busybox_program):
    c = open_client
    digest = ok(c("build", "--from", "scratch", "-o", tmp_path / "one.tar", busybox_program)).stdout.strip()
    assert ok(c("digest", tmp_path / "one.tar")).stdout.strip() == digest
    assert ok(c("digest", "--platform", "linux/amd64", tmp_path / "one.tar")).stdout.strip() == digest
    line = cli_failed(c("digest", "--platform", "linux/arm64", tmp_path / "one.tar"), secrets=())
    assert "no image for linux/arm64" in line
    digest = ok(c("build", "--from", "scratch", "--format", "oci-layout", "-o", tmp_path / "layout",
                  busybox_program)).stdout.strip()
    assert ok(c("digest", tmp_path / "layout")).stdout.strip() == digest


@pytest.mark.parametrize("quirk", ["no-digest-header", "bare-digest-header"])
def test_digest_without_a_usable_header_reads_the_manifest(open_client, busybox_program, quirk):
    c = open_client
    digest = pushed(c, "verbs/no-header:1", busybox_program)
    proxy = registries.QuirkProxy(c.server, mode=quirk)
    try:
        r = ok(run_cli("-v", "digest", "%s/verbs/no-header:1" % proxy.host, env=c.env))
        assert r.stdout.strip() == digest
        assert "no usable Docker-Content-Digest" in r.stderr
        assert [m for m, p, _ in proxy.seen if "/manifests/" in p] == ["HEAD", "GET"]
        assert sum(proxy.counts.values()) >= 1, "the quirk happened"
    finally:
        proxy.close()


# ---- tag ----


def test_tag_keeps_a_docker_manifest_list_byte_for_byte(open_client, arm_and_amd):
    c = open_client
    amd, arm = arm_and_amd
    digest = ok(c("build", "--media-types", "docker", "--push", c.ref("verbs/list:1"),
                  "linux/amd64=%s" % amd, "linux/arm64=%s" % arm)).stdout.strip().split("@")[1]
    r = ok(c("tag", "--json", c.ref("verbs/list@" + digest), "stable"))
    assert json.loads(r.stdout) == {"source": c.ref("verbs/list@" + digest), "digest": digest,
                                    "references": [c.ref("verbs/list:stable@" + digest)]}
    raw = raw_manifest(c, "verbs/list:stable")
    assert raw == raw_manifest(c, "verbs/list:1") and sha256(raw) == digest
    assert json.loads(raw)["mediaType"] == zeroimage.DOCKER_MANIFEST_LIST


def test_tag_uploads_nothing_but_the_manifest(open_client, busybox_program):
    c = open_client
    pushed(c, "verbs/only-manifest:1", busybox_program)
    proxy = registries.QuirkProxy(c.server)
    try:
        ok(run_cli("tag", "%s/verbs/only-manifest:1" % proxy.host, "2", "3", env=c.env))
        writes = [(m, p) for m, p, _ in proxy.seen if m not in ("GET", "HEAD")]
        assert writes == [("PUT", "/v2/verbs/only-manifest/manifests/2"), ("PUT", "/v2/verbs/only-manifest/manifests/3")]
    finally:
        proxy.close()


# ---- delete: scopes, permissions, a registry that refuses deletes ----


def test_delete_asks_the_token_service_for_the_delete_action(tmp_path, pki, registry_servers, token_server,
                                                             busybox_program):
    c = Client(tmp_path, pki, registry_servers("token"))
    c.login()
    digest = pushed(c, "verbs/scoped:1", busybox_program)
    before = len(token_server.requests)
    ok(c("delete", c.ref("verbs/scoped:1")))
    asked = [s for request in token_server.requests[before:] for s in request["scopes"]]
    assert "repository:verbs/scoped:delete" in asked and not any("push" in s for s in asked), asked
    cli_failed(c("digest", c.ref("verbs/scoped@" + digest)), secrets=())


def test_delete_without_the_right_is_refused_and_deletes_nothing(tmp_path, pki, registry_servers, busybox_program):
    c = Client(tmp_path, pki, registry_servers("token"))
    c.login()
    digest = pushed(c, "verbs/alices:1", busybox_program)
    c.login("bob")              # bob may pull anything, and push and delete only under bob/
    line = cli_failed(c("delete", c.ref("verbs/alices:1")), secrets=("builder",))
    assert "cannot delete" in line and "access denied to bob" in line
    assert ok(c("digest", c.ref("verbs/alices:1"))).stdout.strip() == digest


def test_a_registry_with_deletes_disabled_says_so(tmp_path, pki, registry_servers, busybox_program):
    c = Client(tmp_path, pki, registry_servers("open-nodelete"))
    digest = pushed(c, "verbs/kept:1", busybox_program)
    for ref in (c.ref("verbs/kept:1"), c.ref("verbs/kept@" + digest)):
        line = cli_failed(c("delete", ref), secrets=())
        assert "%s does not allow deletes" % c.server.host in line and "storage.delete.enabled" in line, line
        assert "405" in line and "UNSUPPORTED" in line
    assert ok(c("digest", c.ref("verbs/kept:1"))).stdout.strip() == digest


# ---- bad input ----

DIGEST = "sha256:" + "a" * 64
USAGE = [
    ["tags", "localhost:1/app:1"], ["tags", "localhost:1/app@" + DIGEST], ["tags", "./app.tar"], ["tags", "Bad"],
    ["tags", ""], ["tags"], ["tags", "a", "b"],
    ["digest", "Bad:x"], ["digest", "a b"], ["digest", "--platform", "linux", "x"], ["digest"],
    ["tag", "localhost:1/app:1"], ["tag", "localhost:1/app:1", "localhost:1/app:2"], ["tag", "localhost:1/app:1", "a b"],
    ["tag", "localhost:1/app:1", "--", "-bad"], ["tag", "localhost:1/app:1", "caf\u00e9"], ["tag", "app:" + "x" * 129, "v1"],
    ["tag", "localhost:1/app:1", "x" * 129], ["tag", "./app.tar", "v1"], ["tag", "Bad:1", "v1"],
    ["delete", "localhost:1/app"], ["delete", "Bad:1"], ["delete", "./app.tar"], ["delete", "app@md5:abc"],
    ["delete"],
]


@pytest.mark.parametrize("args", USAGE, ids=[" ".join(a)[:60] for a in USAGE])
def test_usage_errors_exit_2_before_any_network(tmp_path, args):
    r = run_cli(*args, cwd=str(tmp_path), env=cli_env(tmp_path))
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stdout == "", r.stderr
    assert r.stderr.startswith("usage: zeroimage")
    assert ": error: " in r.stderr.strip().splitlines()[-1]


def test_failures_exit_1_with_one_line(tmp_path, open_client, busybox_program):
    c = open_client
    digest = pushed(c, "verbs/bad:1", busybox_program)
    cases = [
        (["tags", c.ref("verbs/nope")], ["cannot list the tags of", "not found", "NAME_UNKNOWN"]),
        (["digest", c.ref("verbs/bad:missing")], ["cannot get the digest of", "not found"]),
        (["digest", c.ref("verbs/nope:1")], ["not found"]),
        (["digest", "--platform", "linux/amd64", c.ref("verbs/bad:missing")], ["not found", "MANIFEST_UNKNOWN"]),
        (["digest", str(tmp_path / "missing.tar")], ["no such file"]),
        (["tag", c.ref("verbs/bad:missing"), "v2"], ["cannot tag", "not found", "MANIFEST_UNKNOWN"]),
        (["delete", c.ref("verbs/bad@" + DIGEST)], ["cannot delete", "not found", "MANIFEST_UNKNOWN"]),
        (["delete", c.ref("verbs/bad:missing")], ["cannot delete", "no such tag, digest or repository"]),
        (["tags", "127.0.0.1:1/app"], ["cannot reach 127.0.0.1:1"]),
    ]
    for args, words in cases:
        line = cli_failed(c(*args), secrets=())
        for word in words:
            assert word in line, (args, line)
    assert ok(c("digest", c.ref("verbs/bad:1"))).stdout.strip() == digest, "nothing changed"


def test_an_archive_of_several_images_wants_a_name(tmp_path, open_client, busybox_program, arm_and_amd):
    c = open_client
    layout = tmp_path / "layout"
    ok(c("build", "--from", "scratch", "--format", "oci-layout", "-o", layout, "-t", "app:1", busybox_program))
    arm = ok(c("build", "--from", "scratch", "--format", "oci-layout", "-o", layout, "-t", "app:2", arm_and_amd[1]))
    line = cli_failed(c("digest", layout), secrets=())
    assert "holds several images" in line and "name one as %s:NAME" % layout in line and "app:1, docker.io/library/app:2" in line
    assert ok(c("digest", "%s:2" % layout)).stdout == arm.stdout
    assert ok(c("digest", "--platform", "linux/arm64", layout)).stdout == arm.stdout


# ---- hostile tag lists (loopback servers) ----


def v2_basic(h):
    """/v2/ of a registry that asks for Basic credentials (so every later request carries them)."""
    if h.headers.get("Authorization"):
        return h.reply(200, b"{}")
    h.reply(401, b"{}", [("WWW-Authenticate", 'Basic realm="test"')])


def tags_route(pages):
    """A tags/list route answering page i (by the ``p`` query parameter) with pages[i]: (body, Link or None)."""
    def route(h):
        query = dict(p.split("=", 1) for p in h.path.partition("?")[2].split("&") if "=" in p)
        body, link = pages[int(query.get("p", "0"))]
        h.reply(200, body, [("Content-Type", "application/json")] + ([("Link", link)] if link else []))
    return route


def tags_of(tmp_path, server, *options):
    return run_cli("tags", *(list(options) + ["%s/a" % server.netloc]), env=cli_env(tmp_path))


def test_pages_relative_absolute_and_quoted_are_all_followed(tmp_path, servers):
    holder = {}
    pages = [(jdump({"tags": ["a", "b"]}), '</v2/a/tags/list?p=1>; rel="next"'),
             (jdump({"tags": ["c"]}), None),      # replaced below: an absolute link needs the port
             (jdump({"tags": ["d"], "name": "a"}), '<?p=3>; rel=next, <http://elsewhere.example/>; rel="prev"'),
             (jdump({"tags": None}), None)]
    server = holder["s"] = servers({"/v2/": lambda h: h.reply(200, b"{}"), "/v2/a/tags/list": tags_route(pages)})
    pages[1] = (jdump({"tags": ["c"]}), '<%s/v2/a/tags/list?p=2>; rel="next"' % server.url)
    r = ok(tags_of(tmp_path, server))
    assert r.stdout.splitlines() == ["a", "b", "c", "d"]


@pytest.mark.parametrize("link, words", [
    ('<http://127.0.0.1:1/v2/a/tags/list?p=1>; rel="next"', "another host, port or scheme"),
    ('<http://evil.example/v2/a/tags/list?p=1>; rel="next"', "another host"),
    ('<javascript:alert(1)>; rel="next"', "javascript:"),
    ('</v2/_catalog?p=1>; rel="next"', "another path"),
    ('</v2/a/tags/list>; rel="next"', "already read"),            # a loop back to the first page
    ('<%s>; rel="next"' % ("/v2/a/tags/list?p=1&x=" + "y" * 9000), "Link header is over"),
])
def test_a_next_page_that_leaves_or_loops_is_an_error_not_a_short_list(tmp_path, servers, link, words):
    """No partial list passes for the whole one, and nothing goes to another host."""
    pages = [(jdump({"tags": ["a"]}), link), (jdump({"tags": ["b"]}), None)]
    auth = base64.b64encode(("alice:" + "PLANTEDSECRET").encode()).decode()
    server = servers({"/v2/": v2_basic, "/v2/a/tags/list": tags_route(pages)})
    config = tmp_path / "docker" / "config.json"
    config.parent.mkdir(exist_ok=True)
    config.write_text(json.dumps({"auths": {server.netloc: {"auth": auth}}}))
    line = cli_failed(tags_of(tmp_path, server))
    assert "cannot list the tags of %s/a" % server.netloc in line and words in line, line
    assert server.paths("/v2/a/tags/list") == ["/v2/a/tags/list"], "no second page read"
    assert server.seen[-1].headers.get("Authorization") == "Basic " + auth, "the registry itself got them"


def test_a_page_loop_with_new_urls_ends_at_the_page_limit(servers, monkeypatch, tmp_path):
    def route(h):
        n = int(h.path.partition("?p=")[2] or 0)
        h.reply(200, jdump({"tags": ["t%d" % n]}), [("Link", '</v2/a/tags/list?p=%d>; rel="next"' % (n + 1))])
    server = servers({"/v2/": lambda h: h.reply(200, b"{}"), "/v2/a/tags/list": route})
    monkeypatch.setattr(zeroimage, "MAX_PAGES", 5)
    with zeroimage.Session({"DOCKER_CONFIG": str(tmp_path), "no_proxy": "*"}) as session:
        with pytest.raises(zeroimage.RegistryError, match="over 5 pages"):
            zeroimage.list_tags("%s/a" % server.netloc, session=session)
    assert len(server.paths("/v2/a/tags/list")) == 5


HOSTILE_PAGES = [
    (jdump({"tags": "latest"}), "not a JSON object with a tags list"),
    (jdump({"tags": ["ok", 7]}), "holds 7"),
    (jdump({"tags": ["ok", "\x1b]0;pwned\x07"]}), "not a tag"),
    (jdump({"tags": ["../../etc"]}), "not a tag"),
    (b"<html>502 Bad Gateway</html>", "not JSON"),
    (b'{"tags":["' + b"a" * (4 * 1024 * 1024) + b'"]}', "over the 4194304-byte limit"),
]


@pytest.mark.parametrize("body, words", HOSTILE_PAGES, ids=[w for _, w in HOSTILE_PAGES])
def test_a_hostile_tag_list_is_refused(tmp_path, servers, body, words):
    server = servers({"/v2/": lambda h: h.reply(200, b"{}"),
                      "/v2/a/tags/list": lambda h: h.reply(200, body, [("Content-Type", "application/json")])})
    line = cli_failed(tags_of(tmp_path, server))
    assert words in line, line


def test_tags_of_an_empty_repository_print_nothing(tmp_path, servers):
    server = servers({"/v2/": lambda h: h.reply(200, b"{}"),
                      "/v2/a/tags/list": lambda h: h.reply(200, jdump({"name": "a", "tags": None}))})
    r = ok(tags_of(tmp_path, server))
    assert r.stdout == "" and "0 tags" in r.stderr
    assert json.loads(ok(tags_of(tmp_path, server, "--json")).stdout) == []


def test_tags_are_printed_once_each_in_the_registrys_order(tmp_path, servers):
    pages = [(jdump({"tags": ["z", "a"]}), '<?p=1>; rel="next"'), (jdump({"tags": ["a", "m"]}), None)]
    server = servers({"/v2/": lambda h: h.reply(200, b"{}"), "/v2/a/tags/list": tags_route(pages)})
    assert ok(tags_of(tmp_path, server)).stdout.splitlines() == ["z", "a", "m"]


def test_a_file_named_like_a_reference_is_not_read_but_named(tmp_path, busybox_program):
    """digest follows inspect's rule: what does not look like a path is a reference, and a file of that
    name gets a note saying how to read it instead."""
    ok(run_cli("build", "--from", "scratch", "--format", "oci-layout", "-o", tmp_path / "127.0.0.1:1" / "app",
               busybox_program))
    r = run_cli("digest", "127.0.0.1:1/app", cwd=str(tmp_path), env=cli_env(tmp_path))
    line = cli_failed(r, secrets=())
    assert "cannot reach 127.0.0.1:1" in line
    assert "to read the file of that name, write ./127.0.0.1:1/app" in r.stderr
    assert ok(run_cli("digest", "./127.0.0.1:1/app", cwd=str(tmp_path), env=cli_env(tmp_path))).stdout.startswith("sha256:")


def test_an_index_whose_child_is_gone_names_the_child(tmp_path, open_client, arm_and_amd):
    """Pull or copy of an index whose arm64 image was deleted: the error names the missing child, not
    the tag (which is there), and asks for no login."""
    c = open_client
    amd, arm = arm_and_amd
    ok(c("build", "--push", c.ref("verbs/dangle:1"), "linux/amd64=%s" % amd, "linux/arm64=%s" % arm))
    child = ok(c("digest", "--platform", "linux/arm64", c.ref("verbs/dangle:1"))).stdout.strip()
    ok(c("delete", c.ref("verbs/dangle@" + child)))
    for args in (["pull", "--all-platforms", "-o", tmp_path / "d.tar"], ["copy"], ["pull", "--platform", "linux/arm64",
                                                                               "-o", tmp_path / "e.tar"]):
        extra = [c.ref("verbs/dangle-copy:1")] if args == ["copy"] else []
        line = cli_failed(c(*(args + [c.ref("verbs/dangle:1")] + extra)), secrets=())
        assert "manifest %s, which it lists, is not in the registry" % child in line, line
        assert "logged in" not in line
    assert not os.path.exists(str(tmp_path / "d.tar"))


# ---- The one paginator: every Link walk (tags, referrers) is bounded the same way (issue 21) ----

DIGEST = "sha256:" + "a" * 64


def _walks():
    """(name, path, page of N items as JSON, call): every list zeroimage walks page by page."""
    def referrer(i):
        return {"mediaType": zeroimage.OCI_MANIFEST, "digest": "sha256:%064x" % i, "size": 2,
                "artifactType": "application/spdx+json"}

    def referrers_page(start, n):
        return jdump({"schemaVersion": 2, "mediaType": zeroimage.OCI_INDEX,
                      "manifests": [referrer(start + i) for i in range(n)]})
    return [
        ("tags", "/v2/a/tags/list", lambda start, n: jdump({"tags": ["t%d" % (start + i) for i in range(n)]}),
         lambda registry: registry.list_tags("a")),
        ("referrers", "/v2/a/referrers/" + DIGEST, referrers_page, lambda registry: registry.referrers("a", DIGEST)),
    ]


WALKS = _walks()


@pytest.mark.parametrize("name, path, page, call", WALKS, ids=[w[0] for w in WALKS])
@pytest.mark.parametrize("hostility, words", [
    ("self", "already read (a loop)"),           # Link: <the same page>; rel="next"
    ("disguised", "only what earlier pages did (a loop)"),  # the first page again, under a new URL each time
    ("endless", "over 5 pages"),                 # a new page every time
    ("crowded", "over 50 items"),                # pages of many items each
])
def test_every_paged_list_is_bounded_by_the_one_paginator(servers, tmp_path, monkeypatch, name, path, page, call,
                                                          hostility, words):
    monkeypatch.setattr(zeroimage, "MAX_PAGES", 5)
    monkeypatch.setattr(zeroimage, "MAX_PAGE_ITEMS", 50)
    monkeypatch.setattr(zeroimage, "MAX_REFERRERS", 50)

    def route(h):
        n = int(h.path.partition("?p=")[2] or 0)
        link = path if hostility == "self" else "%s?p=%d" % (path, n + 1)
        size = 40 if hostility == "crowded" else 1
        h.reply(200, page(0 if hostility == "disguised" else n * size, size), [("Content-Type", "application/vnd.oci.image.index.v1+json"
                                             if name == "referrers" else "application/json"),
                                            ("Link", '<%s>; rel="next"' % link)])
    server = servers({"/v2/": lambda h: h.reply(200, b"{}"), path: route})
    with zeroimage.Session({"DOCKER_CONFIG": str(tmp_path), "no_proxy": "*"}) as session:
        with pytest.raises(zeroimage.RegistryError, match=r"\(a loop\)|over \d+ (pages|items)") as caught:
            call(session.registry(server.netloc))
    assert words in str(caught.value) and server.netloc in str(caught.value)
    assert len(server.paths(path)) <= 5
