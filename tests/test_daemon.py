"""docker-daemon:NAME wherever an image can be (issue 25, item 6): the local engine's image as a source
of inspect, digest, copy and push (its export, read as the docker save archive it is), and as copy's
destination (loaded); judged by a real Docker Engine (tests/engines.py), podman's service when it runs
here, the real registry and skopeo. The rule for the word (Targets' engine_image) has its units first."""

import contextlib
import hashlib
import json
import os
import subprocess
import uuid

import pytest

import zeroimage
from binaries import make_elf
from clients import Client
from helpers import fails, ok
from imagetools import run_cli


def _name():
    return "zi-daemon-%s:1" % uuid.uuid4().hex[:10]


# ---- the word ----


@pytest.mark.parametrize("word, name", [
    ("docker-daemon:app", "app:latest"), ("docker-daemon:app:1", "app:1"),
    ("docker-daemon:localhost/app:dev", "localhost/app:dev"),
    ("docker-daemon:registry.example.com:5000/team/app:2", "registry.example.com:5000/team/app:2"),
    ("docker-daemon:docker.io/library/busybox", "busybox:latest"), ("DOCKER-DAEMON:app:1", "app:1"),
])
def test_a_daemon_word_names_the_engines_image(word, name):
    engine = zeroimage.engine_image(word)
    assert engine.name == name and str(engine) == "docker-daemon:" + name
    assert "%s" % engine == str(engine)        # a value, not a tuple: formatting never unpacks it


@pytest.mark.parametrize("word", ["app", "app.tar", "./docker-daemon:x", "registry.example.com/app:1", "", None])
def test_other_words_are_no_daemon_word(word):
    assert zeroimage.engine_image(word) is None


@pytest.mark.parametrize("word, said", [
    ("docker-daemon:", "names no image"),
    ("docker-daemon:app@sha256:" + "a" * 64, "without a digest (docker-daemon:app)"),
    ("docker-daemon:App:1", "must be lowercase"),
    ("docker-daemon:app:bad tag", "bad tag"),
    ("docker-daemon: app", "surrounded by spaces"),
])
def test_a_bad_daemon_word_is_a_usage_error(word, said):
    with pytest.raises(zeroimage.UsageError) as caught:
        zeroimage.engine_image(word)
    assert said in str(caught.value) and "\n" not in str(caught.value)


# the same word, the same refusal, wherever it stands: before any engine is asked (none is here)
WHERE = [["inspect", "{w}"], ["digest", "{w}"], ["copy", "{w}", "out.tar"], ["copy", "out.tar", "{w}"],
         ["push", "{w}", "127.0.0.1:1/x:1"], ["build", "--from", "{w}", "p"]]


@pytest.mark.parametrize("argv", WHERE, ids=[" ".join(a) for a in WHERE])
@pytest.mark.parametrize("word, said", [("docker-daemon:", "names no image"),
                                        ("docker-daemon:x@sha256:" + "b" * 64, "without a digest")])
def test_a_bad_daemon_word_is_refused_alike_everywhere(tmp_path, argv, word, said):
    (tmp_path / "p").write_bytes(b"\x7fELF")
    dead = {"DOCKER_HOST": "unix://%s" % (tmp_path / "dead.sock")}
    r = run_cli(*[a.format(w=word) for a in argv], env=dead, cwd=str(tmp_path))
    line = fails(r, 2, said)
    assert "engine answers" not in line
    assert sorted(os.listdir(str(tmp_path))) == ["p"]


@pytest.mark.parametrize("argv", [["inspect", "docker-daemon:x:1"], ["inspect", "--json", "docker-daemon:x:1"],
                                  ["digest", "docker-daemon:x:1"], ["copy", "docker-daemon:x:1", "out.tar"],
                                  ["copy", "docker-daemon:x:1", "127.0.0.1:1/x:1"],
                                  ["push", "docker-daemon:x:1", "127.0.0.1:1/x:1"],
                                  ["copy", "127.0.0.1:1/x:1", "docker-daemon:x:1"],
                                  ["copy", "out.tar", "docker-daemon:x:1"]])
def test_no_engine_is_one_line_with_the_hint(tmp_path, argv):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app").write_bytes(make_elf(62))
    ok(run_cli("build", "-q", "--from", "scratch", "-o", tmp_path / "out.tar", tmp_path / "src" / "app"))
    dead = tmp_path / "dead.sock"
    r = run_cli(*argv, env={"DOCKER_HOST": "unix://%s" % dead}, cwd=str(tmp_path))
    fails(r, 1, "no container engine answers", str(dead), "DOCKER_HOST")
    assert len([x for x in r.stderr.splitlines() if "error" in x]) == 1, r.stderr
    assert sorted(os.listdir(str(tmp_path))) == ["out.tar", "src"]       # nothing written


def test_copy_to_the_engine_takes_one_image_and_no_referrers(tmp_path):
    for extra, said in ([["--referrers"], "keeps no referrers"],
                        [["--platform", "linux/amd64", "--platform", "linux/arm64"], "a second --platform"]):
        r = run_cli("copy", *extra, "127.0.0.1:1/x:1", "docker-daemon:x:1", cwd=str(tmp_path))
        fails(r, 2, "takes one image", said)


# ---- a real Docker Engine ----


@pytest.fixture
def loaded(docker_engine, busybox_program):
    """An image the engine holds, of two layers (an --add tree and the program), by its name."""
    name = _name()
    ok(run_cli("build", "--load", "-t", name, "--add", "%s:/opt/tool" % busybox_program, "--env", "FROM=engine",
               busybox_program, env=docker_engine.env))
    return name


def _sha256(text):
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.interop
def test_inspect_and_digest_of_the_engines_image(tmp_path, docker_engine, loaded):
    env, word = docker_engine.env, "docker-daemon:" + loaded
    image_id = docker_engine.inspect(loaded)["Id"]
    summary = ok(run_cli("inspect", word, env=env)).stdout
    assert "Name:        %s" % word in summary and "Layers:      2 " in summary, summary
    info = json.loads(ok(run_cli("inspect", "--json", word, env=env)).stdout)
    assert info["name"] == word and info["env"][-1] == "FROM=engine" and len(info["layers"]) == 2
    assert info["platform"] == "linux/amd64"
    # the config as the engine stores it: its digest is the engine's image ID
    assert _sha256(ok(run_cli("inspect", "--config", word, env=env)).stdout) == image_id
    # the manifest made of the export (layers as exported: uncompressed), the digest digest prints
    raw = ok(run_cli("inspect", "--raw", word, env=env)).stdout
    digest = ok(run_cli("digest", word, env=env)).stdout.strip()
    assert _sha256(raw) == digest == info["digest"]
    assert json.loads(raw)["config"]["digest"] == image_id
    # -q: the report alone; -v: the export said
    r = ok(run_cli("inspect", "-v", "--json", word, env=env))
    assert "exporting %s from the engine at %s" % (loaded, docker_engine.host) in r.stderr
    assert ok(run_cli("inspect", "-q", "--json", word, env=env)).stderr == ""
    # a name the engine does not hold: one line naming it
    fails(run_cli("inspect", "docker-daemon:nothing-here:1", env=env), 1, "nothing-here")


@pytest.mark.interop
def test_copy_and_push_from_the_engine_to_the_registry(tmp_path, docker_engine, loaded, pki, registry_servers):
    client = Client(tmp_path, pki, registry_servers("token"))
    client.login()
    env, word = dict(client.env, **docker_engine.env), "docker-daemon:" + loaded
    image_id = docker_engine.inspect(loaded)["Id"]
    pushed = client.ref("daemon/pushed:1")
    r = ok(run_cli("push", "--json", word, pushed, env=env))
    result = json.loads(r.stdout)
    assert result["reference"].startswith(pushed + "@sha256:") and result["platforms"] == ["linux/amd64"]
    assert "gzip-compressed for the registry" in r.stderr
    # skopeo judges: the manifest pushed is the digest printed, its config the engine's image
    raw = client.skopeo("inspect", "--raw", "docker://" + pushed)
    assert _sha256(raw) == result["digest"]
    manifest = json.loads(raw)
    assert manifest["config"]["digest"] == image_id
    assert all(layer["mediaType"].endswith("gzip") for layer in manifest["layers"]) and len(manifest["layers"]) == 2
    config = json.loads(client.skopeo("inspect", "--config", "docker://" + pushed))
    assert config["config"]["Env"][-1] == "FROM=engine"
    # copy to the registry: the same image, the same digest (gzip is deterministic)
    copied = client.ref("daemon/copied:1")
    r = ok(run_cli("copy", "--json", word, copied, env=env))
    result = json.loads(r.stdout)
    assert result["source"] == word and result["reference"] == "%s@%s" % (copied, _sha256(raw))
    assert result["sourceDigest"] == ok(run_cli("digest", word, env=env)).stdout.strip()
    # copy to an archive: named as the engine names it, the config unchanged
    out = tmp_path / "out.tar"
    r = ok(run_cli("copy", "--json", word, out, env=env))
    assert json.loads(r.stdout)["path"] == str(out)
    assert "image %s" % loaded in r.stderr
    assert _sha256(ok(run_cli("inspect", "--config", out)).stdout) == image_id
    client.skopeo("inspect", "oci-archive:%s" % out)


@pytest.mark.interop
def test_copy_from_the_registry_into_the_engine(tmp_path, docker_engine, pki, registry_servers, busybox_program):
    client = Client(tmp_path, pki, registry_servers("open"))
    (tmp_path / "arm64").mkdir()
    other = tmp_path / "arm64" / "busybox"
    other.write_bytes(b"#!/bin/sh\necho not for this machine\n")
    ref = client.ref("daemon/app:1")
    ok(client("build", "--push", ref, "linux/arm64=%s" % other, "linux/amd64=%s" % busybox_program))
    env = dict(client.env, **docker_engine.env)
    name = _name()
    r = ok(run_cli("copy", "--json", ref, "docker-daemon:" + name, env=env))
    result = json.loads(r.stdout)
    info = docker_engine.inspect(name)
    assert result["loaded"] == name and result["imageId"] == info["Id"] and info["Architecture"] == "amd64"
    assert result["platforms"] == ["linux/amd64"] and result["source"] == ref
    assert "loaded %s: image ID %s" % (name, info["Id"]) in r.stderr
    assert docker_engine.run(name, "echo", "hi") == "hi\n"
    # text: the digest on stdout, the one inspect gives of that platform's image
    r = ok(run_cli("copy", ref, "docker-daemon:" + name, env=env))
    amd64 = ok(run_cli("digest", "--platform", "linux/amd64", ref, env=env)).stdout.strip()
    assert r.stdout.strip() == amd64
    # --platform says which: the other image, loaded with a warning that it may not start
    arm = _name()
    r = ok(run_cli("copy", "--platform", "linux/arm64", ref, "docker-daemon:" + arm, env=env))
    assert docker_engine.inspect(arm)["Architecture"] == "arm64" and "may not start" in r.stderr
    # engine to engine: a new name for the same image (export, then load)
    again = _name()
    r = ok(run_cli("copy", "docker-daemon:" + name, "docker-daemon:" + again, env=env))
    assert docker_engine.inspect(again)["Id"] == info["Id"]
    assert "gzip" not in r.stderr       # the engine takes the export's layers as they are
    saved = tmp_path / "saved.tar"      # and a docker save archive's
    docker_engine.docker("save", "-o", str(saved), name)
    from_save = _name()
    r = ok(run_cli("copy", saved, "docker-daemon:" + from_save, env=env))
    assert docker_engine.inspect(from_save)["Id"] == info["Id"] and "gzip" not in r.stderr
    assert docker_engine.run(from_save, "echo", "hi") == "hi\n"
    # an archive into the engine, named as DST says
    archive = tmp_path / "one.tar"
    ok(run_cli("copy", "--platform", "linux/amd64", ref, archive, env=env))
    named = _name()
    ok(run_cli("copy", "-q", archive, "docker-daemon:" + named, env=env))
    assert docker_engine.inspect(named)["Id"] == info["Id"]


def test_read_source_reads_the_engines_image_for_every_verb(tmp_path):
    """read_source, the one place a source word becomes an image (what mutate, append, rebase and
    export read through): docker-daemon:NAME is the engine's export, named NAME, its layers gzipped."""
    from hostile_fakes import FakeEngine
    engine = FakeEngine()
    try:
        with zeroimage.Session({"DOCKER_HOST": engine.host}) as session, contextlib.ExitStack() as stack:
            seen = []
            read = zeroimage.read_source(session, stack, "docker-daemon:base:1", None, before_layers=seen.append)
            assert read.name == zeroimage.Reference.parse("base:1")
            assert len(seen) == 1 and seen[0].config == read.tree.config     # before the layers were gzipped
            assert isinstance(read.tree, zeroimage.Image) and read.tree.config["config"]["Entrypoint"] == ["/hello"]
            assert all(d["mediaType"].endswith("gzip") for d in read.tree.manifest["layers"])
            assert read.source.where == "docker-daemon:base:1"
            # what the engine does not hold: its refusal, one line
            with pytest.raises(zeroimage.ZeroImageError) as caught:
                zeroimage.read_source(session, stack, "docker-daemon:other:1", None)
            assert "cannot export other:1 (404)" in str(caught.value)
        assert engine.kinds["export"] == 1
    finally:
        engine.close()


@pytest.mark.interop
def test_a_name_the_engine_does_not_hold_is_one_line(tmp_path, docker_engine):
    env = docker_engine.env
    r = run_cli("copy", "docker-daemon:nothing-here:1", tmp_path / "o.tar", env=env)
    fails(r, 1, "nothing-here")
    assert not (tmp_path / "o.tar").exists()


@pytest.mark.interop
def test_podmans_service_is_an_engine_too(tmp_path, busybox_program):
    """podman's Docker-compatible API: an image loaded there is inspected and copied as docker-daemon:NAME."""
    import engines
    name = "localhost/" + _name()
    with engines.podman_service(pytest.skip) as (podman, sock):
        try:
            env = {"DOCKER_HOST": "unix://" + sock}
            archive = tmp_path / "app.tar"
            ok(run_cli("build", "-q", "-o", archive, busybox_program))
            ok(run_cli("copy", archive, "docker-daemon:" + name, env=env))
            out = subprocess.run([podman, "image", "inspect", name], stdout=subprocess.PIPE, timeout=60)
            assert out.returncode == 0 and json.loads(out.stdout)[0]["Architecture"] == "amd64"
            info = json.loads(ok(run_cli("inspect", "--json", "docker-daemon:" + name, env=env)).stdout)
            assert info["entrypoint"] == ["/busybox"]
            back = tmp_path / "back.tar"
            ok(run_cli("copy", "docker-daemon:" + name, back, env=env))
            built = json.loads(ok(run_cli("inspect", "--json", archive)).stdout)
            assert json.loads(ok(run_cli("inspect", "--json", back)).stdout)["entrypoint"] == built["entrypoint"]
        finally:
            subprocess.run([podman, "rmi", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
