"""Where blobs were seen (issue 26, copy at skopeo's pace): ``BlobPlaces``, the bounded record of the
repositories of each registry a blob was seen in, kept in blobs.json beside the layer cache, so a push
mounts a blob the registry holds in another repository instead of sending it. The pure class first
(its bounds, its order, the file: merged, atomic, 0600, and every damaged or hostile form of it
ignored), then against the real registry: a second copy to another repository of the destination, in
a new process, mounts every blob and uploads none; a stale place costs one failed mount, then the
upload, and is forgotten; a damaged file changes nothing but the mounts."""

import json
import os
import re
import stat

import pytest

import zeroimage
import registries
from clients import Place, open_and_token
from imagetools import multi_platform_base

D = ["sha256:" + ("%x" % i) * 64 for i in range(10)]     # ten digests: sha256:000..., sha256:111..., ...
H = "127.0.0.1:5000"


class Small(zeroimage.BlobPlaces):
    MAX_REGISTRIES = 2
    MAX_BLOBS = 3
    MAX_PLACES = 2


# ---- the pure class ----


def test_most_recent_first_and_forgotten():
    places = zeroimage.BlobPlaces(None)
    assert places.where(H, D[0]) == []
    places.seen(H, "a", D[0])
    places.seen(H, "b", D[0])
    places.seen(H, "a/x", D[0])
    places.seen(H, "b", D[0])       # seen again: first again
    assert places.where(H, D[0]) == ["b", "a/x", "a"]
    places.forget(H, "a/x", D[0])
    places.forget(H, "nowhere", D[0])
    assert places.where(H, D[0]) == ["b", "a"]
    assert places.where("other:1", D[0]) == [] and places.where(H, D[1]) == []
    places.forget(H, "b", D[0])
    places.forget(H, "a", D[0])
    assert places.where(H, D[0]) == []


def test_bounds_hold_and_the_least_recently_used_go_first():
    places = Small(None)
    for repository in ("a", "b", "c"):
        places.seen(H, repository, D[0])
    assert places.where(H, D[0]) == ["c", "b"], "MAX_PLACES repositories a digest"
    places.seen(H, "a", D[1])
    places.seen(H, "a", D[2])
    places.seen(H, "a", D[0])       # used: now the most recent
    places.seen(H, "a", D[3])       # a fourth digest: the least recently seen (D[1]) goes
    assert [d for d in D[:4] if places.where(H, d)] == [D[0], D[2], D[3]]
    places.seen("r2:1", "a", D[4])          # another registry: the least recently used registry gives first
    assert places.where("r2:1", D[4]) == ["a"] and not places.where(H, D[2])
    places.seen("r3:1", "a", D[5])          # a third registry: the least recently used one (H) goes
    assert not any(places.where(H, d) for d in D) and places.where("r3:1", D[5]) == ["a"]
    assert sum(bool(places.where(h, d)) for h in (H, "r2:1", "r3:1") for d in D) <= Small.MAX_BLOBS
    # what is not a host, repository or digest is not remembered; nor a name over LONGEST_NAME
    for host, repository, digest in [("bad host", "a", D[6]), (H, "Upper", D[6]), (H, "a", "sha256:12"),
                                     (H, "a" * (zeroimage.BlobPlaces.LONGEST_NAME + 1), D[6]), (H, "", D[6])]:
        places.seen(host, repository, digest)
        assert places.where(host, digest) == []


def test_the_file_is_written_once_atomically_0600_and_read_back(tmp_path):
    path = tmp_path / "cache" / "blobs.json"
    places = zeroimage.BlobPlaces(str(path))
    places.seen(H, "a", D[0])
    places.seen(H, "b", D[1])
    assert not path.exists(), "nothing is written until the session ends"
    places.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.stat().st_ino
    places.save()
    assert path.stat().st_ino == before, "nothing new: not written again"
    places.seen(H, "c", D[0])
    places.save()
    assert path.stat().st_ino != before, "replaced by a rename, never written in place"
    assert sorted(os.listdir(str(path.parent))) == ["blobs.json"], "no temporary file left"
    value = json.loads(path.read_text())
    assert value == {"version": 1, "registries": {H: {D[1]: ["b"], D[0]: ["c", "a"]}}}
    again = zeroimage.BlobPlaces(str(path))
    assert again.where(H, D[0]) == ["c", "a"] and again.where(H, D[1]) == ["b"]


def test_at_its_bounds_the_file_is_still_read(tmp_path):
    """The longest names, the longest digests, every bound full: the file stays under MAX_FILE."""
    path = str(tmp_path / "blobs.json")
    places = zeroimage.BlobPlaces(path)
    longest = ["/".join([c * 63, "x" * 64])[:zeroimage.BlobPlaces.LONGEST_NAME] for c in "abcd"]
    per = zeroimage.BlobPlaces.MAX_BLOBS // zeroimage.BlobPlaces.MAX_REGISTRIES
    for r in range(zeroimage.BlobPlaces.MAX_REGISTRIES):
        host = "registry-%02d.example.com:65535" % r
        for i in range(per):
            for name in longest:
                places.seen(host, name, "sha512:%0128x" % (r * per + i))
    places.save()
    assert os.path.getsize(path) < zeroimage.BlobPlaces.MAX_FILE
    again = zeroimage.BlobPlaces(path)
    assert again.where("registry-31.example.com:65535", "sha512:%0128x" % (32 * per - 1)) == longest[::-1]


def test_two_processes_merge_and_a_forgotten_place_stays_forgotten(tmp_path):
    path = str(tmp_path / "blobs.json")
    first, second = zeroimage.BlobPlaces(path), zeroimage.BlobPlaces(path)
    first.seen(H, "a", D[0])
    first.seen(H, "a", D[1])
    first.save()
    second.seen(H, "b", D[0])       # (read before first saved? no: read on first use, now)
    second.forget(H, "a", D[1])
    third = zeroimage.BlobPlaces(path)
    third.seen("other:2", "x", D[2])
    third.save()
    second.save()
    merged = zeroimage.BlobPlaces(path)
    assert merged.where(H, D[0]) == ["b", "a"]
    assert merged.where(H, D[1]) == []
    assert merged.where("other:2", D[2]) == ["x"]


def _good():
    return {"version": 1, "registries": {H: {D[0]: ["a"]}}}


DAMAGED = {
    "garbage": b"\x00\xff not json at all",
    "empty": b"",
    "a list": b"[]",
    "nested deep": b"[" * 100000 + b"]" * 100000,
    "another version": json.dumps(dict(_good(), version=2)).encode(),
    "no version": json.dumps({"registries": _good()["registries"]}).encode(),
    "registries a list": json.dumps({"version": 1, "registries": []}).encode(),
    "a bad host": json.dumps({"version": 1, "registries": {"no such host/": {D[0]: ["a"]}}}).encode(),
    "blobs a string": json.dumps({"version": 1, "registries": {H: "x"}}).encode(),
    "a bad digest": json.dumps({"version": 1, "registries": {H: {"sha256:xyz": ["a"]}}}).encode(),
    "repositories a string": json.dumps({"version": 1, "registries": {H: {D[0]: "a"}}}).encode(),
    "no repositories": json.dumps({"version": 1, "registries": {H: {D[0]: []}}}).encode(),
    "too many repositories": json.dumps({"version": 1, "registries": {H: {D[0]: ["a", "b", "c", "d", "e"]}}}).encode(),
    "a repository twice": json.dumps({"version": 1, "registries": {H: {D[0]: ["a", "a"]}}}).encode(),
    "a bad repository": json.dumps({"version": 1, "registries": {H: {D[0]: ["../../etc"]}}}).encode(),
    "a number for a name": json.dumps({"version": 1, "registries": {H: {D[0]: [1]}}}).encode(),
    "a key twice": b'{"version": 1, "version": 1, "registries": {}}',
    "too many registries": json.dumps({"version": 1, "registries": {"r%d:1" % i: {D[0]: ["a"]} for i in range(
        zeroimage.BlobPlaces.MAX_REGISTRIES + 1)}}).encode(),
    "too many blobs": json.dumps({"version": 1, "registries": {H: {
        "sha256:%064x" % i: ["a"] for i in range(zeroimage.BlobPlaces.MAX_BLOBS + 1)}}}).encode(),
    "huge": b" " * (zeroimage.BlobPlaces.MAX_FILE + 1) + json.dumps(_good()).encode(),
}


@pytest.mark.parametrize("kind", sorted(DAMAGED) + ["a directory", "a FIFO", "a link to itself", "under a file"])
def test_a_damaged_file_is_ignored_and_never_fails(tmp_path, kind):
    path = tmp_path / "blobs.json"
    if kind == "a directory":
        path.mkdir()
    elif kind == "a FIFO":
        os.mkfifo(str(path))        # (read without blocking: no writer ever comes)
    elif kind == "a link to itself":
        path.symlink_to(path.name)
    elif kind == "under a file":
        (tmp_path / "file").write_bytes(b"x")
        path = tmp_path / "file" / "blobs.json"
    else:
        path.write_bytes(DAMAGED[kind])
    said = []
    places = zeroimage.BlobPlaces(str(path), lambda message, *args: said.append(message % args))
    assert places.where(H, D[0]) == []
    places.seen(H, "b", D[1])
    places.save()                   # replaced by a good one where it can be, else left alone; never an error
    assert places.where(H, D[1]) == ["b"]
    assert said and all(len(line) < 400 and "blob places" in line for line in said), said
    if kind in DAMAGED:
        assert zeroimage.BlobPlaces(str(path)).where(H, D[1]) == ["b"], "written anew, valid"


def test_the_file_is_beside_the_layer_cache_and_dev_null_turns_it_off(tmp_path):
    assert zeroimage.Session({"ZEROIMAGE_CACHE_DIR": "/c"}).blob_places.path == "/c/blobs.json"
    assert zeroimage.Session({"ZEROIMAGE_CACHE_DIR": "", "XDG_CACHE_HOME": "/x", "HOME": "/h"}).blob_places.path \
        == "/x/zeroimage/blobs.json", "empty counts as unset, as for the layer cache"
    assert zeroimage.Session({"HOME": "/h"}).blob_places.path == "/h/.cache/zeroimage/blobs.json"
    with zeroimage.Session({"ZEROIMAGE_CACHE_DIR": os.devnull}) as session:
        session.blob_places.seen(H, "a", D[0])
    assert zeroimage.BlobPlaces(os.path.join(os.devnull, "blobs.json")).where(H, D[0]) == []
    read_only = tmp_path / "ro"
    read_only.mkdir()
    (read_only / "blobs.json").write_text(json.dumps(_good()))
    read_only.chmod(0o500)
    try:
        with zeroimage.Session({"ZEROIMAGE_CACHE_DIR": str(read_only)}) as session:
            assert session.blob_places.where(H, D[0]) == ["a"], "read where it cannot be written"
            session.blob_places.seen(H, "b", D[0])
    finally:
        read_only.chmod(0o700)


def test_remembered_mounts_skip_same_registry_sources_and_stay_bounded():
    places = zeroimage.BlobPlaces(None)
    blobs = [zeroimage.Blob(d, 1, None) for d in D]
    for i, d in enumerate(D):
        places.seen(H, "repo%d" % i, d)
        places.seen(H, "dst", d)            # the destination itself: never a mount source
    places.seen(H, "src", D[1])
    blobs[0] = blobs[0]._replace(source=(H, "src"))          # mounted from its source, as always
    mounts = zeroimage._remembered_mounts(places, H, "dst", blobs, ["src"])
    assert D[0] not in mounts and mounts[D[1]] == "src", "a source already in the token is preferred"
    assert len(set(mounts.values()) - {"src"}) == zeroimage.MAX_REMEMBERED_MOUNTS
    assert all(mounts[d] == "repo%d" % i for i, d in enumerate(D) if d in mounts and i > 1)


# ---- against the real registry ----


def blob_counts(r):
    """(uploaded, mounted, already there) from -v's line."""
    line = next(line for line in r.stderr.splitlines() if line.startswith("zeroimage: blobs: "))
    return tuple(int(w) for w in re.findall(r"\d+", line))


def requests(r, method, part=""):
    return [line for line in r.stderr.splitlines() if re.search(r"\b%s https?://" % method, line) and part in line]


def read_json(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture
def two(tmp_path, pki, registry_servers):
    """An open registry and a token one (the mounts' pulls go into the token), one user on both."""
    return open_and_token(tmp_path, pki, registry_servers)


def copied_once(tmp_path, two, busybox, source, destination):
    """The two-platform image pushed to ``source`` of the open registry and copied (-v) from there to
    ``destination`` of the token one: (a, b, its top descriptor, that copy, the path of blobs.json)."""
    a, b = two
    archive, _, _, _, top = multi_platform_base(tmp_path, busybox)
    a.ok("push", archive, a.ref(source))
    first = a.ok("copy", "-v", a.ref(source), b.ref(destination))
    return a, b, top, first, os.path.join(os.environ["ZEROIMAGE_CACHE_DIR"], "blobs.json")


@pytest.mark.interop
def test_a_second_copy_to_another_repository_mounts_every_blob(tmp_path, two, busybox):
    a, b, top, first, cache = copied_once(tmp_path, two, busybox, "places/src:1", "places/x:1")
    uploaded, mounted, _ = blob_counts(first)
    assert uploaded >= 4 and mounted == 0
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o600
    again = a.ok("copy", "-v", a.ref("places/src:1"), b.ref("places/y:1"))       # a new process
    assert blob_counts(again) == (0, uploaded, 0), again.stderr
    assert not requests(again, "PUT", "/blobs/uploads/") and not requests(again, "PATCH")
    assert len(requests(again, "POST", "/blobs/uploads/ -> 201")) == uploaded, "each a mount"
    assert again.stdout.strip().endswith("@" + top["digest"])
    assert b.skopeo("inspect", "--raw", "docker://" + b.ref("places/y:1")) == \
        b.skopeo("inspect", "--raw", "docker://" + b.ref("places/x:1"))
    # the summary says it as before
    quiet = a.ok("copy", a.ref("places/src:1"), b.ref("places/z:1"))
    assert re.search(r"mounted %d\b" % uploaded, quiet.stderr), quiet.stderr


@pytest.mark.interop
def test_a_stale_place_falls_back_to_the_upload_and_is_forgotten(tmp_path, two, busybox):
    a, b, top, first, cache = copied_once(tmp_path, two, busybox, "places/stale:1", "places/one:1")
    uploaded = blob_counts(first)[0]
    value = read_json(cache)
    places = value["registries"][b.server.host]
    assert set(r for rs in places.values() for r in rs) == {"places/one"}
    for digest in places:       # every blob said to be in a repository that does not hold it (or is gone)
        places[digest] = ["places/never"]
    with open(cache, "w") as f:
        json.dump(value, f)
    again = a.ok("copy", "-v", a.ref("places/stale:1"), b.ref("places/two:1"))
    assert blob_counts(again) == (uploaded, 0, 0), again.stderr
    assert len(re.findall(r"was not to be mounted from places/never", again.stderr)) == uploaded, "one try a blob"
    after = read_json(cache)["registries"][b.server.host]
    assert "places/never" not in json.dumps(after) and all(after[d] == ["places/two"] for d in places)
    assert again.stdout.strip().endswith("@" + top["digest"])


@pytest.mark.interop
@pytest.mark.parametrize("damage", ["garbage", "a directory", "wrong types"])
def test_a_damaged_file_changes_nothing_but_the_mounts(tmp_path, two, busybox, damage):
    name = "places/" + damage.replace(" ", "-")
    a, b, top, first, cache = copied_once(tmp_path, two, busybox, "places/damaged:1", name + "-1:1")
    uploaded = blob_counts(first)[0]
    os.unlink(cache)
    if damage == "a directory":
        os.mkdir(cache)
    else:
        with open(cache, "w") as f:
            f.write("{]" if damage == "garbage" else json.dumps({"version": 1, "registries": {b.server.host: []}}))
    again = a.ok("copy", "-v", a.ref("places/damaged:1"), b.ref(name + "-2:1"))
    assert blob_counts(again) == (uploaded, 0, 0), again.stderr
    assert "blob places" in again.stderr and "Traceback" not in again.stderr
    assert again.stdout.strip().endswith("@" + top["digest"])


@pytest.mark.interop
@pytest.mark.parametrize("mode", ["first-scope", "last-scope"])
def test_a_token_service_that_keeps_one_scope_costs_only_the_mounts(tmp_path, pki, registry_servers, token_server,
                                                                     busybox, mode):
    """A token asked for the push and the pulls of the remembered repositories, by a token service that
    keeps one scope (the quirk proxy): the push goes through all the same, quietly (no line at the
    default verbosity: the places were only a chance), the blobs uploaded."""
    upstream = registries.QuirkProxy(registry_servers("token"), pki=pki, token_server=token_server)
    try:
        p = Place(tmp_path, pki, registry_servers("token"), upstream)
        archive, _, _, _, top = multi_platform_base(tmp_path, busybox)
        p.login()
        p.ok("push", archive, p.via("places/%s/one:1" % mode))
        p.proxy.mode = mode
        r = p.ok("push", archive, p.via("places/%s/two:1" % mode))
        assert r.stdout.strip().endswith("@" + top["digest"])
        assert p.proxy.counts["scopes dropped"] >= 1
        assert "refused" not in r.stderr and "warning" not in r.stderr, r.stderr
        assert re.search(r"pushed \d+ blobs", r.stderr), r.stderr
    finally:
        upstream.close()


@pytest.mark.interop
def test_the_same_program_pushed_to_a_second_repository_is_mounted_not_compressed(tmp_path, two, busybox):
    """build --push of an unchanged program to another repository of the registry: the layer cache
    knows its layer, the blob places know where it went, so it is mounted there and nothing is
    compressed or uploaded (token auth: the mount's pull goes into the token)."""
    _, b = two
    b.env.update(SOURCE_DATE_EPOCH="1700000000")
    first = b.ok("build", "-v", "--from", "scratch", "--push", b.ref("places/build-a:1"), busybox)
    assert "compressed 1 blob" in first.stderr
    again = b.ok("build", "-v", "--from", "scratch", "--push", b.ref("places/build-b:1"), busybox)
    assert "compressed" not in again.stderr and not requests(again, "PATCH"), again.stderr
    assert re.search(r"mounted sha256:\w+ from places/build-a", again.stderr), again.stderr
    assert re.search(r"mounted 2\b", again.stderr.splitlines()[-1]), again.stderr      # the layer and the config
    assert again.stdout.strip().rsplit("@", 1)[1] == first.stdout.strip().rsplit("@", 1)[1]


def test_present_mounts_from_the_place_it_knows_and_forgets_one_that_refuses(tmp_path, monkeypatch):
    """RegistrySink.present (the layer cache's question before compressing): a layer absent from the
    repository is mounted from the repository the places name, else compressed, and a place that
    gives no mount is forgotten (no network here: the registry's answers are stood in for)."""
    digest = "sha256:" + "a" * 64
    with zeroimage.Session({"ZEROIMAGE_CACHE_DIR": str(tmp_path)}) as session:
        sink = zeroimage.RegistrySink(session, zeroimage.Reference.parse("registry.example/app:1"))
        places = session.blob_places
        places.seen("registry.example", "other", digest)
        monkeypatch.setattr(sink.registry, "blob_exists", lambda *args: False)
        asked = []
        monkeypatch.setattr(sink.registry, "mount_blob", lambda *args: asked.append(args[:3]) or True)
        assert sink.present(digest, 10) and sink.mounted == {digest}
        assert asked == [("app", digest, "other")] and places.where("registry.example", digest)[0] == "app"
        places.forget("registry.example", "app", digest)
        monkeypatch.setattr(sink.registry, "mount_blob", lambda *args: False)
        assert not sink.present(digest, 10)
        assert places.where("registry.example", digest) == []       # forgotten: the next push asks no more
        assert not sink.present(digest, 10)                         # nowhere known: compressed
