"""sync SRC-REPO DST-REPO and copy --all-tags (issue 25 item 5): every tag of a repository, byte for byte
(digests judged by skopeo inspect --raw on both sides), within one registry (mounts) and across two, a
second run that copies nothing, a tag list of several pages (the QuirkProxy's paged-tags), a tag that
fails alone, entries of a hostile tag list skipped, and the usage errors before any work."""

import json
import re
import urllib.request

import pytest

import hostile_fakes
import registries
import zeroimage
from binaries import make_elf
from clients import Client, open_and_token
from helpers import fails, ok
from imagetools import multi_platform_base, run_cli, sha256

pytestmark = pytest.mark.interop

TAGS = ["1", "latest", "multi"]         # 1 and latest: one digest; multi: an index of two platforms and an attestation


def digest_of(r):
    return r.stdout.strip().rsplit("@", 1)[1]


def raw_digest(client, name):
    """The digest of NAME's manifest as skopeo reads it raw (the bytes the registry holds)."""
    return sha256(client.skopeo("inspect", "--raw", "docker://" + client.ref(name)).encode())


def blob_lines(r):
    """Each -v "blobs: U uploaded, M mounted, S already there" line as (U, M, S)."""
    return [tuple(int(w) for w in re.findall(r"\d+", line)) for line in r.stderr.splitlines()
            if line.startswith("zeroimage: blobs: ")]


def requests_of(r, method):
    return [line for line in r.stderr.splitlines() if re.search(r"\b%s http" % method, line)]


def seed(tmp_path, client, repo, busybox, program):
    """REPO with tags 1 and latest (one image, one digest) and multi (an index); {tag: digest}."""
    archive, _, _, _, top = multi_platform_base(tmp_path, busybox)
    client.ok("push", archive, client.ref(repo + ":multi"))
    one = digest_of(client.ok("build", "--push", client.ref(repo + ":1"), program))
    client.ok("tag", client.ref(repo + ":1"), "latest")
    return {"1": one, "latest": one, "multi": top["digest"]}


@pytest.fixture(params=["open", "token"])
def client(request, tmp_path, pki, registry_servers):
    c = Client(tmp_path, pki, registry_servers(request.param))
    c.login()
    return c


def test_sync_within_one_registry_mounts_and_a_second_run_copies_nothing(tmp_path, client, busybox,
                                                                        busybox_program):
    digests = seed(tmp_path, client, "sync/one/src", busybox, busybox_program)
    r = client.ok("sync", "-v", client.ref("sync/one/src"), client.ref("sync/one/dst"))
    assert r.stdout == ""
    for tag in TAGS:
        assert "zeroimage: copied %s %s\n" % (tag, digests[tag]) in r.stderr
        assert raw_digest(client, "sync/one/dst:" + tag) == raw_digest(client, "sync/one/src:" + tag) == digests[tag]
    assert "zeroimage: 3 tags: 3 copied\n" in r.stderr
    assert all(uploaded == 0 for uploaded, _, _ in blob_lines(r)), "within one registry: mounted, never uploaded"
    assert sum(mounted for _, mounted, _ in blob_lines(r)) > 0
    index = json.loads(client.skopeo("inspect", "--raw", "docker://" + client.ref("sync/one/dst:multi")))
    for desc in index["manifests"]:         # every child, the attestation too, under its digest
        assert raw_digest(client, "sync/one/dst@" + desc["digest"]) == desc["digest"]

    again = client.ok("sync", "-v", client.ref("sync/one/src"), client.ref("sync/one/dst"))
    assert "zeroimage: 3 tags: 3 already there\n" in again.stderr
    assert all("zeroimage: %s: already there\n" % tag in again.stderr for tag in TAGS)
    assert all(re.search(r"/v2/ ->|/tags/list|/token", line) for line in requests_of(again, "GET")), again.stderr
    assert not requests_of(again, "PUT") and not requests_of(again, "PATCH"), "nothing read, nothing written"

    # a tag moved in the source: that one alone goes again
    moved = digest_of(client.ok("build", "--from", "scratch", "--push", client.ref("sync/one/src:latest"),
                                busybox_program))
    r = client.ok("sync", "--json", client.ref("sync/one/src"), client.ref("sync/one/dst"))
    value = json.loads(r.stdout)
    listed = json.loads(client.ok("tags", "--json", client.ref("sync/one/src")).stdout)
    assert [t["tag"] for t in value["tags"]] == listed, "in the registry's order"
    value["tags"].sort(key=lambda t: t["tag"])
    assert value == {"source": client.ref("sync/one/src"), "destination": client.ref("sync/one/dst"),
                     "copied": 1, "present": 2, "failed": 0, "skipped": [],
                     "tags": [{"tag": "1", "outcome": "present", "digest": digests["1"]},
                              {"tag": "latest", "outcome": "copied", "digest": moved},
                              {"tag": "multi", "outcome": "present", "digest": digests["multi"]}]}
    assert raw_digest(client, "sync/one/dst:latest") == moved


@pytest.fixture
def two_registries(tmp_path, pki, registry_servers):
    """The open registry and the token one, one user logged in to both (one DOCKER_CONFIG)."""
    return open_and_token(tmp_path, pki, registry_servers)


def test_copy_all_tags_across_two_registries(tmp_path, two_registries, busybox, busybox_program):
    a, b = two_registries
    digests = seed(tmp_path, a, "sync/across/src", busybox, busybox_program)
    r = a.ok("copy", "--all-tags", "-v", a.ref("sync/across/src"), b.ref("sync/across/dst"))
    assert r.stdout == "" and "zeroimage: 3 tags: 3 copied\n" in r.stderr
    assert sum(uploaded for uploaded, _, _ in blob_lines(r)) >= 4
    gets = [line for line in requests_of(r, "GET") if "/blobs/sha256:" in line]
    assert gets and all(a.server.host in line for line in gets), "layers come from the source registry"
    for tag in TAGS:
        assert raw_digest(b, "sync/across/dst:" + tag) == raw_digest(a, "sync/across/src:" + tag) == digests[tag]
    again = a.ok("sync", "-q", "--json", a.ref("sync/across/src"), b.ref("sync/across/dst"))
    assert again.stderr == ""
    value = json.loads(again.stdout)
    assert (value["copied"], value["present"], value["failed"]) == (0, 3, 0)
    assert sorted((t["tag"], t["digest"]) for t in value["tags"]) == [(tag, digests[tag]) for tag in TAGS]


def test_library_sync_in_one_session(tmp_path, two_registries, busybox_program):
    a, b = two_registries
    one = digest_of(a.ok("build", "--from", "scratch", "--push", a.ref("sync/lib/src:a"), busybox_program))
    a.ok("tag", a.ref("sync/lib/src:a"), "b", "c")
    environ = dict(__import__("os").environ, **a.env)
    with zeroimage.Session(environ) as session:
        synced = zeroimage.sync(a.ref("sync/lib/src"), b.ref("sync/lib/dst"), session=session)
        assert isinstance(synced, zeroimage.Synced) and synced.failed == []
        assert sorted(synced.tags) == [zeroimage.SyncedTag(tag, "copied", one) for tag in "abc"]
        assert synced.counts == {"copied": 3, "present": 0, "failed": 0}
        assert (synced.source, synced.destination) == (a.ref("sync/lib/src"), b.ref("sync/lib/dst"))
        again = zeroimage.sync(a.ref("sync/lib/src"), b.ref("sync/lib/dst"), session=session)
        assert again.counts == {"copied": 0, "present": 3, "failed": 0}


# ---- a tag list of several pages ----


def test_sync_follows_every_page_of_the_tag_list(tmp_path, pki, registry_servers, busybox_program):
    """The QuirkProxy answers the tag list in pages of 2 (n=, last=, Link headers): seven tags, four pages."""
    upstream = registry_servers("open")
    proxy = registries.QuirkProxy(upstream, mode="paged-tags")
    try:
        c = Client(tmp_path, pki, upstream)
        one = digest_of(c.ok("build", "--from", "scratch", "--push", c.ref("sync/paged/src:a"), busybox_program))
        tags = ["a", "b", "c", "d", "e", "f", "g"]
        c.ok("-q", "tag", c.ref("sync/paged/src:a"), *tags[1:])
        via = "%s/sync/paged/" % proxy.host
        r = ok(run_cli("sync", "--json", via + "src", via + "dst", env=c.env))
        value = json.loads(r.stdout)
        assert [(t["tag"], t["outcome"], t["digest"]) for t in value["tags"]] == [(t, "copied", one) for t in tags]
        assert proxy.counts["tag pages"] == 4, proxy.counts
        assert sorted(json.loads(c.ok("tags", "--json", c.ref("sync/paged/dst")).stdout)) == tags
        assert "7 tags: 7 copied" in r.stderr
    finally:
        proxy.close()


# ---- a tag that fails, alone ----


def _delete_blob(server, repository, digest):
    request = urllib.request.Request("http://%s/v2/%s/blobs/%s" % (server.host, repository, digest), method="DELETE")
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 202


def test_a_tag_that_fails_fails_alone(tmp_path, pki, registry_servers, busybox_program):
    """broken's layer is gone from the source repository (deleted by digest): that tag fails with its
    reason, the others are copied, and the command ends with exit 1 naming it."""
    c = Client(tmp_path, pki, registry_servers("open"))
    good = digest_of(c.ok("build", "--from", "scratch", "--push", c.ref("sync/broken/src:good"), busybox_program))
    c.ok("tag", c.ref("sync/broken/src:good"), "zz")
    program = tmp_path / "other"
    program.write_bytes(make_elf(62) + b"a program of its own, whose layer no other image has")
    program.chmod(0o755)
    c.ok("build", "--from", "scratch", "--push", c.ref("sync/broken/src:broken"), program)
    manifest = json.loads(c.skopeo("inspect", "--raw", "docker://" + c.ref("sync/broken/src:broken")))
    _delete_blob(c.server, "sync/broken/src", manifest["layers"][0]["digest"])

    r = c("sync", "--json", c.ref("sync/broken/src"), c.ref("sync/broken/dst"))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[-1] == "zeroimage: error: 1 of 3 tags failed: broken", r.stderr
    said = [line for line in lines if line.startswith("zeroimage: error: broken: ")]
    assert len(said) == 1 and manifest["layers"][0]["digest"] in said[0], r.stderr
    assert "3 tags: 2 copied, 1 failed" in r.stderr
    value = json.loads(r.stdout)
    assert value["failed"] == 1 and value["copied"] == 2
    failed = [t for t in value["tags"] if t["outcome"] == "failed"]
    assert failed == [{"tag": "broken", "outcome": "failed", "error": said[0][len("zeroimage: error: broken: "):]}]
    for tag in ("good", "zz"):
        assert raw_digest(c, "sync/broken/dst:" + tag) == good
    assert "broken" not in json.loads(c.ok("tags", "--json", c.ref("sync/broken/dst")).stdout)
    quiet = c("sync", "-q", c.ref("sync/broken/src"), c.ref("sync/broken/dst"))
    assert quiet.returncode == 1 and quiet.stdout == ""
    assert [line.split(":", 2)[1] for line in quiet.stderr.splitlines()] == [" error", " error"], quiet.stderr


# ---- a hostile tag list, and usage errors ----


def test_entries_of_the_tag_list_that_are_no_tags_are_skipped(tmp_path):
    """The fake registry lists, beside 1, 2 and latest, entries no tag may be: each skipped with a
    warning (the first ten one by one, the others in one line), never asked for (no request names it)."""
    fake = hostile_fakes.FakeRegistry()
    try:
        for bad in ("../../etc", "a b", "-dash", "x" * 129) + tuple("-%d" % n for n in range(8)):
            fake.tags[("base", bad)] = fake.index["digest"]
        env = {"DOCKER_CONFIG": str(tmp_path), "no_proxy": "*", "NO_PROXY": "*"}
        r = ok(run_cli("sync", "-v", "--json", "%s/base" % fake.host, "%s/synced" % fake.host, env=env))
        value = json.loads(r.stdout)
        assert [t["tag"] for t in value["tags"]] == ["1", "2", "latest"] and value["copied"] == 3
        assert len(value["skipped"]) == 12 and '"../../etc"' in value["skipped"]
        assert r.stderr.count("which is not a tag: skipped") == 10
        assert "the tag list holds 2 more entries that are not tags: skipped" in r.stderr
        assert "3 tags: 3 copied, 12 skipped (not a tag)" in r.stderr
        assert not [line for line in r.stderr.splitlines() if re.search(r"\b(GET|HEAD|PUT) http.*(\.\./|a b|-dash)",
                                                                        line)]
        assert sorted(t for (repo, t) in fake.tags if repo == "synced") == ["1", "2", "latest"]
    finally:
        fake.close()


def test_tag_list_page_skips_what_is_no_tag():
    page = json.dumps({"name": "x", "tags": ["1", 2, None, "../x", "ok", "\x1b[31m"]}).encode()
    with pytest.raises(ValueError):
        zeroimage.tag_list_page(page)
    skipped = []
    assert zeroimage.tag_list_page(page, skipped) == ["1", "ok"]
    assert skipped == ["2", "null", '"../x"', '"\\u001b[31m"']


def test_entries_that_are_no_tags_count_toward_the_cap(monkeypatch, servers):
    """As many as MAX_PAGE_ITEMS are skipped; more is the tag list's error, as more tags are."""
    monkeypatch.setattr(zeroimage, "MAX_PAGE_ITEMS", 5)
    body = json.dumps({"name": "a", "tags": ["ok"] + [n for n in range(6)]}).encode()
    server = servers({"/v2/": lambda h: h.reply(200, b"{}"), "/v2/a/tags/list": lambda h: h.reply(200, body)})
    with zeroimage.Session() as session:
        registry = session.registry(server.netloc)
        skipped = []
        with pytest.raises(zeroimage.RegistryError) as e:
            registry.list_tags("a", skipped)
        assert "the tag list has over 5 entries that are not tags" in str(e.value)
        with pytest.raises(zeroimage.RegistryError) as e:
            registry.list_tags("a")
        assert "holds 0, which is not a tag" in str(e.value)


@pytest.mark.parametrize("args, words", [
    (["sync", "127.0.0.1:1/a:1", "127.0.0.1:1/b"], "127.0.0.1:1/a:1 names an image, not a repository: give the "
                                                   "repository alone (127.0.0.1:1/a)"),
    (["sync", "127.0.0.1:1/a", "127.0.0.1:1/b@sha256:" + "0" * 64], "give the repository alone (127.0.0.1:1/b)"),
    (["sync", "127.0.0.1:1/a", "127.0.0.1:1/a"], "SRC and DST are both the repository 127.0.0.1:1/a"),
    (["sync", "127.0.0.1:1/a", "localhost:1/a"], "SRC and DST are both the repository localhost:1/a"),
    (["sync", "./app.tar", "127.0.0.1:1/a"], "looks like a path; a repository in a registry is wanted here, "
                                             "like registry.example.com/app"),
    (["tags", "./lay"], "a repository in a registry is wanted here, like registry.example.com/app"),
    (["sync", "127.0.0.1:1/a"], "the following arguments are required: DST"),
    (["copy", "--all-tags", "--platform", "linux/amd64", "127.0.0.1:1/a", "127.0.0.1:1/b"],
     "--all-tags copies every tag byte for byte, each with every platform; give it without --platform"),
    (["copy", "--all-tags", "127.0.0.1:1/a:1", "127.0.0.1:1/b"], "names an image, not a repository"),
    (["copy", "--all-tags", "127.0.0.1:1/a", "127.0.0.1:1/a"], "SRC and DST are both the repository"),
    (["copy", "--all-tags", "app.tar", "127.0.0.1:1/a"], "looks like a path; a repository in a registry"),
])
def test_usage_errors_before_any_work(tmp_path, args, words):
    fails(run_cli(*args, cwd=str(tmp_path)), 2, words)
    assert list(tmp_path.iterdir()) == []


def test_library_usage_errors():
    with pytest.raises(zeroimage.UsageError):
        zeroimage.sync("127.0.0.1:1/a:1", "127.0.0.1:1/b")
    with pytest.raises(zeroimage.UsageError) as e:
        zeroimage.sync("127.0.0.1:1/a", "127.0.0.1:1/a")
    assert "name another destination" in str(e.value)


def test_a_tag_whose_blob_is_gone_fails_alone_across_registries(tmp_path, two_registries, busybox_program):
    """Across two registries the blobs are uploaded: a source blob that is gone (404 from the source)
    is that tag's failure, not the destination refusing uploads (the other tags still upload theirs)."""
    a, b = two_registries
    for name in ("broken", "good"):
        program = tmp_path / name
        program.write_bytes(make_elf(62) + b"the program of %s, whose layer no other image has" % name.encode())
        program.chmod(0o755)
        a.ok("build", "--from", "scratch", "--push", a.ref("sync/gone/src:" + name), program)
    manifest = json.loads(a.skopeo("inspect", "--raw", "docker://" + a.ref("sync/gone/src:broken")))
    _delete_blob(a.server, "sync/gone/src", manifest["layers"][0]["digest"])
    r = a("sync", a.ref("sync/gone/src"), b.ref("sync/gone/dst"))
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1] == "zeroimage: error: 1 of 2 tags failed: broken", \
        r.stderr
    said = [line for line in r.stderr.splitlines() if line.startswith("zeroimage: error: broken: ")]
    assert len(said) == 1 and "refuses" not in said[0] and manifest["layers"][0]["digest"] in said[0], r.stderr
    assert raw_digest(b, "sync/gone/dst:good") == raw_digest(a, "sync/gone/src:good")


def test_sync_with_and_without_referrers(tmp_path, pki, registry_servers, busybox_program):
    """Debian's registry has no referrers API: build --sbom keeps the SBOM under the referrers tag
    (sha256-HEX), which is a tag like any other to sync; --referrers takes each image's SBOM along
    itself. Either way DST holds the image and its SBOM, which inspect --sbom finds."""
    c = Client(tmp_path, pki, registry_servers("open"))
    digest = digest_of(c.ok("build", "--sbom", "--from", "scratch", "--push", c.ref("sync/sbom/src:1"),
                            busybox_program))
    listed = json.loads(c.ok("tags", "--json", c.ref("sync/sbom/src")).stdout)
    assert sorted(listed) == ["1", digest.replace(":", "-")]
    sbom = c.ok("inspect", "--sbom", c.ref("sync/sbom/src:1")).stdout
    for dst, flags in (("plain", []), ("referrers", ["--referrers"])):
        r = c.ok("sync", *flags, c.ref("sync/sbom/src"), c.ref("sync/sbom/" + dst))
        assert "2 tags: " in r.stderr and "failed" not in r.stderr, r.stderr
        assert raw_digest(c, "sync/sbom/%s:1" % dst) == digest
        assert c.ok("inspect", "--sbom", c.ref("sync/sbom/%s:1" % dst)).stdout == sbom
        again = c.ok("sync", *flags, c.ref("sync/sbom/src"), c.ref("sync/sbom/" + dst))
        assert "2 tags: 2 already there" in again.stderr, again.stderr
