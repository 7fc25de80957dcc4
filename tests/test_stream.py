"""Layers uploaded while they are compressed (issue 16): ranged PATCHes fed as the layer is written,
against the real docker-registry in its three modes; the fall-back when a registry refuses PATCH
(remembered for the session); a lost chunk or a lost answer resumed from what the registry says it
holds, through the fault-injecting proxy; and the pushed image byte-identical to the archive built
from the same inputs. Correctness only: speed is bench/bench.py's."""

import os
import threading

import pytest

import registries
import zeroimage
from binaries import make_elf
from clients import Client
from helpers import EPOCH

pytestmark = pytest.mark.interop

CHUNK = zeroimage.STREAM_CHUNK


@pytest.fixture
def program(tmp_path):
    """A program whose layer takes three ranged chunks: incompressible bytes after an ELF header."""
    path = tmp_path / "app"
    path.write_bytes(make_elf(62) + os.urandom(2 * CHUNK + CHUNK // 2))
    os.chmod(str(path), 0o755)
    return path


def archive_digest(client, tmp_path, program, *args):
    return client.ok("build", *args, "-o", tmp_path / "same.tar", program).stdout.strip()


def pushed_digest(result):
    return result.stdout.strip().rsplit("@", 1)[1]


@pytest.mark.parametrize("mode", ["open", "basic", "token"])
def test_streamed_push_in_every_mode(mode, tmp_path, pki, registry_servers, program):
    client = Client(tmp_path, pki, registry_servers(mode))
    client.env.update(EPOCH)
    client.login()
    pushed = client.ok("build", "-v", "--push", client.ref("stream/app:1"), program)
    ranged = [line for line in pushed.stderr.splitlines() if line.startswith("zeroimage: PATCH ")]
    assert len(ranged) >= 3, pushed.stderr                  # the program's layer, in chunks as it was made
    assert pushed_digest(pushed) == archive_digest(client, tmp_path, program)     # the same image, byte for byte
    pulled = client.ok("pull", "-o", tmp_path / "pulled.tar", client.ref("stream/app:1"))     # every blob verified
    assert pulled.stdout.strip() == pushed_digest(pushed)


@pytest.fixture
def quirk(registry_servers):
    proxy = registries.QuirkProxy(registry_servers("open"))
    yield proxy
    proxy.close()


def test_a_registry_refusing_patch_gets_whole_blobs(quirk, registry_servers, tmp_path, pki, program, binaries):
    """PATCH answered 405 (Google Artifact Registry): the first layer's try is the only one; the
    push goes on with whole blobs, and the next build in the session does not try again."""
    quirk.mode = "no-chunked"
    env = dict(os.environ, DOCKER_CONFIG=str(tmp_path / "config"), **EPOCH)
    with zeroimage.Session(env) as session:
        first = zeroimage.build(zeroimage.BuildOptions(str(program),
                                                       push="%s/refuse/app:1" % quirk.host), session=session)
        assert session.registry(quirk.host).may_stream() is False
        same = zeroimage.build(zeroimage.BuildOptions(str(program), str(tmp_path / "same.tar")), session=session)
        second = zeroimage.build(zeroimage.BuildOptions([(zeroimage.Platform.parse("linux/amd64"), str(binaries[0])),
                                  (zeroimage.Platform.parse("linux/arm64"), str(binaries[1]))], push="%s/refuse/multi:1" % quirk.host), session=session)
    assert quirk.counts["chunked refused"] == 1
    assert first.digest == same.digest
    client = Client(tmp_path, pki, registry_servers("open"))
    for result, name in ((first, "refuse/app:1"), (second, "refuse/multi:1")):
        assert client.ok("digest", client.ref(name)).stdout.strip() == result.digest


@pytest.fixture
def binaries(tmp_path):
    made = []
    for name, machine in (("app-amd64", 62), ("app-arm64", 183)):
        path = tmp_path / name
        path.write_bytes(make_elf(machine) + os.urandom(CHUNK + 1000))
        made.append(path)
    return made


@pytest.mark.parametrize("mode", ["chunk-lost", "answer-lost"])
def test_a_failed_chunk_resumes_from_what_the_registry_holds(mode, registry_servers, tmp_path, pki, program):
    upstream = registry_servers("open")
    proxy = registries.FaultProxy(upstream.host, mode)
    try:
        client = Client(tmp_path, pki, upstream)
        client.env.update(EPOCH)
        # -v: a layer sent again whole is said under -v only (when that fails too, its error is said once)
        pushed = client.ok("-v", "build", "--from", "scratch", "--push", "%s/resume/app:1" % proxy.host, program)
    finally:
        proxy.close()
    if mode == "chunk-lost":
        assert "the registry holds" in pushed.stderr and "going on from there" in pushed.stderr
        assert "sending it again" not in pushed.stderr         # resumed, not started over
    else:
        # The chunk got there, its answer did not: distribution's upload URL carries the offset it
        # was given (_state), now stale, so the status GET is refused and the blob goes again whole.
        assert "sending it again" in pushed.stderr
    assert "refused" not in pushed.stderr                      # a failure, not a refusal: streaming stays on
    statuses = [status for method, path, status in proxy.seen if method == "PATCH"]
    assert statuses.count(500) == 1
    assert pushed_digest(pushed) == archive_digest(client, tmp_path, program, "--from", "scratch")
    assert client.ok("pull", "-o", tmp_path / "pulled.tar", "%s/resume/app:1" % upstream.host
                     ).stdout.strip() == pushed_digest(pushed)


def test_a_push_failing_after_streaming_began_leaves_nothing_running(registry_servers, tmp_path, program):
    """A build that fails once its layer went up as it was made (it names a digest the image does
    not have): the build fails with one error, and no upload thread is left."""
    upstream = registry_servers("open")
    env = dict(os.environ, DOCKER_CONFIG=str(tmp_path / "config"), **EPOCH)
    with zeroimage.Session(env) as session:
        with pytest.raises(zeroimage.ZeroImageError, match="names the digest"):
            zeroimage.build(zeroimage.BuildOptions(str(program),
                                                   push="%s/cancel/app@sha256:%s" % (upstream.host, "0" * 64)), session=session)
    assert not [t for t in threading.enumerate() if t.name == "zeroimage-stream"]


def test_an_unchanged_repush_opens_no_upload(quirk, tmp_path, pki, registry_servers, program):
    """The layer cache knows the layer and the registry has it: nothing is compressed, no upload opens."""
    client = Client(tmp_path, pki, registry_servers("open"))
    client.env.update(EPOCH, ZEROIMAGE_CACHE_DIR=str(tmp_path / "cache"))
    first = client.ok("build", "--from", "scratch", "--push", "%s/again/app:1" % quirk.host, program)
    before = len(quirk.seen)
    again = client.ok("build", "--from", "scratch", "--push", "%s/again/app:1" % quirk.host, program)
    assert again.stdout == first.stdout
    # only the upload session the check before the push opens and cancels (RegistrySink.start): no blob goes
    sent = [m for m, _, _ in quirk.seen[before:] if m in ("POST", "PATCH", "PUT", "DELETE")]
    assert sent == ["POST", "DELETE"], sent       # the check's session; the tag names the image already: no PUT
    assert "names %s already: nothing sent" % first.stdout.strip().rsplit("@", 1)[1][:19] in again.stderr
    assert "compressed" not in again.stderr.splitlines()[-1]


def test_a_rebuild_whose_layer_went_up_as_it_was_made_asks_no_tag(tmp_path, pki, registry_servers, program):
    """Without the layer cache (another machine, a cleared cache) an unchanged rebuild sends its layer as
    it is made, before the image's digest is known. A layer just sent means a new image on the common
    path (a new program), so the tag is not asked what it names (a round trip to a far registry on
    every first push): the manifest is put, and nothing says "already"."""
    client = Client(tmp_path, pki, registry_servers("open"))
    client.env.update(EPOCH)
    ref = client.ref("stream/again:1")
    first = client.ok("build", "--from", "scratch", "--push", ref, program)
    client.env.update(ZEROIMAGE_CACHE_DIR=str(tmp_path / "empty-cache"))
    again = client.ok("build", "-v", "--from", "scratch", "--push", ref, program)
    assert again.stdout == first.stdout
    lines = again.stderr.splitlines()
    assert any(line.startswith("zeroimage: PATCH ") for line in lines), again.stderr
    assert "already: nothing" not in again.stderr, again.stderr
    manifests = [line.split()[1] for line in lines if " -> " in line and "/manifests/" in line]
    assert manifests == ["PUT"], manifests
