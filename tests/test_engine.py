"""A real Docker Engine judges what zeroimage gives it: `docker load` of its archives, `--load`
through the Engine API, `-o - | docker load`; `docker run` prints what the program prints."""

import json
import os
import pty
import subprocess
import sys
import uuid

import pytest

from helpers import ok
from imagetools import DOCKER, MODULE, OCI, LayoutBuilder, real_base, run_cli

pytestmark = pytest.mark.interop


def _name():
    return "zi-test-%s:1" % uuid.uuid4().hex[:10]


def _real_base_archive(tmp_path, busybox, family):
    b = LayoutBuilder()
    desc = real_base(b, busybox, family=family)
    return b.write_tar(tmp_path / "base.tar", [dict(desc, annotations={"org.opencontainers.image.ref.name": "base"})])


@pytest.mark.parametrize("base", ["scratch", "minimal", "real", "docker"])
def test_docker_load_runs_the_program(tmp_path, docker_engine, busybox, busybox_program, base):
    """`docker load` (the CLI) of a single-platform archive on each kind of base; the program runs."""
    archive, name = tmp_path / "app.tar", _name()
    args = {"scratch": ["--from", "scratch"], "minimal": [],
            "real": ["--from-archive", "%s:base" % _real_base_archive(tmp_path, busybox, OCI)],
            "docker": ["--from-archive", "%s:base" % _real_base_archive(tmp_path, busybox, DOCKER)]}[base]
    ok(run_cli("build", *args, "-t", name, "-o", archive, busybox_program))
    assert "Loaded image: %s" % name in docker_engine.docker("load", "-i", archive)
    assert docker_engine.run(name, "echo", "hi") == "hi\n"
    if base in ("real", "docker"):
        out = docker_engine.run(name, "sh", "-c", "cat /etc/base-release; echo $BASE_VAR; pwd")
        assert out.split("\n")[:3] == ["zeroimage test base 1.0", "from-base", "/srv"]
        assert len(docker_engine.inspect(name)["RootFS"]["Layers"]) == 3


def test_build_load_into_the_engine(tmp_path, docker_engine, busybox_program):
    name = _name()
    r = ok(run_cli("build", "--load", "--json", "-t", name, busybox_program, env=docker_engine.env))
    result = json.loads(r.stdout)
    assert result["loaded"] == name and "path" not in result
    assert result["imageId"] == docker_engine.inspect(name)["Id"]
    assert docker_engine.run(name, "echo", "hi") == "hi\n"
    assert os.listdir(str(busybox_program.parent)) == ["busybox"]      # no archive left beside the program
    # without --json: the digest on stdout, as for an archive
    r = ok(run_cli("build", "--load", "--from", "scratch", "-t", name, busybox_program, env=docker_engine.env))
    assert r.stdout.startswith("sha256:") and len(r.stdout.split()) == 1
    assert "loaded %s" % name in r.stderr


def test_output_to_stdout_piped_into_docker_load(tmp_path, docker_engine, busybox_program):
    name = _name()
    build = subprocess.Popen([sys.executable, MODULE, "build", "-o", "-", "-t", name, str(busybox_program)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    load = subprocess.run(["/usr/bin/docker", "-H", docker_engine.host, "load"], stdin=build.stdout,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=180)
    build.stdout.close()
    err = build.stderr.read().decode()
    build.stderr.close()
    assert build.wait(60) == 0, err
    assert load.returncode == 0, load.stderr
    assert b"Loaded image: %s" % name.encode() in load.stdout
    assert any(line.startswith("sha256:") for line in err.splitlines()), err
    assert docker_engine.run(name, "echo", "hi") == "hi\n"


def test_output_to_stdout_is_the_archive_alone(tmp_path, busybox_program):
    """-o -: stdout holds the archive and nothing else (the same bytes -o FILE writes); the digest goes to stderr."""
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    r = subprocess.run([sys.executable, MODULE, "build", "-o", "-", "--from", "scratch", str(busybox_program)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, **env), timeout=120)
    assert r.returncode == 0, r.stderr
    ok(run_cli("build", "-o", tmp_path / "file.tar", "--from", "scratch", busybox_program, env=env))
    assert r.stdout == (tmp_path / "file.tar").read_bytes()
    digest = [line for line in r.stderr.decode().splitlines() if line.startswith("sha256:")]
    assert len(digest) == 1


def test_output_to_stdout_refuses_a_terminal_and_json(busybox_program):
    controller, terminal = pty.openpty()
    try:
        r = subprocess.run([sys.executable, MODULE, "build", "-o", "-", str(busybox_program)], stdout=terminal,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)
    assert r.returncode == 2 and "standard output, which is a terminal" in r.stderr
    r = run_cli("build", "-o", "-", "--json", busybox_program)
    assert r.returncode == 2 and "--json" in r.stderr.splitlines()[-1]


@pytest.mark.parametrize("args", [["-o", "x.tar"], ["--push", "127.0.0.1:5000/x:1"], ["--format", "oci-layout"]])
def test_load_is_exclusive_with_other_outputs(tmp_path, busybox_program, args):
    r = run_cli("build", "--load", *args, busybox_program, cwd=str(tmp_path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert not os.path.exists(str(tmp_path / "x.tar"))


def test_no_engine_is_one_line(tmp_path, busybox_program):
    dead = tmp_path / "dead.sock"
    r = run_cli("build", "--load", busybox_program, env={"DOCKER_HOST": "unix://%s" % dead}, cwd=str(tmp_path))
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(lines) == 1 and str(dead) in lines[0] and "DOCKER_HOST" in lines[0], r.stderr
    assert os.listdir(str(tmp_path)) == ["src"]      # nothing written
    r = run_cli("pull", "--load", "127.0.0.1:1/x:1", env={"DOCKER_HOST": "unix://%s" % dead}, cwd=str(tmp_path))
    assert r.returncode == 1 and "no container engine answers" in r.stderr


def test_two_platform_build_loads_the_engines_platform(tmp_path, docker_engine, busybox_program):
    other = tmp_path / "busybox-arm64"     # the name the two share is the target, /busybox
    other.write_bytes(b"#!/bin/sh\necho not for this machine\n")
    name = _name()
    r = ok(run_cli("build", "--load", "--json", "-t", name, "linux/amd64=%s" % busybox_program,
                   "linux/arm64=%s" % other, env=docker_engine.env))
    result = json.loads(r.stdout)
    amd64 = next(i for i in result["images"] if i["platform"] == "linux/amd64")
    info = docker_engine.inspect(name)
    assert info["Architecture"] == "amd64" and info["Id"] == result["imageId"] == amd64["config"]
    # the result describes what was loaded, not the index
    assert result["platforms"] == ["linux/amd64"] and result["digest"] == amd64["digest"]
    assert result["mediaType"] == amd64["mediaType"]
    assert docker_engine.run(name, "echo", "hi") == "hi\n"
    # none for the engine's platform: said, with the platforms there are
    r = run_cli("build", "--load", "-t", name, "linux/arm64=%s" % other, "linux/s390x=%s" % other,
                env=docker_engine.env)
    assert r.returncode == 1 and "linux/amd64" in r.stderr and "linux/arm64, linux/s390x" in r.stderr, r.stderr


def test_load_through_podmans_socket(tmp_path, busybox_program):
    """podman's Docker-compatible API (podman system service) takes --load too, when it runs here."""
    import engines
    with engines.podman_service(pytest.skip) as (podman, sock):
        name = "localhost/" + _name()
        r = ok(run_cli("build", "--load", "--json", "-t", name, busybox_program, env={"DOCKER_HOST": "unix://" + sock}))
        assert json.loads(r.stdout)["imageId"]
        out = subprocess.run([podman, "image", "inspect", name], stdout=subprocess.PIPE, timeout=60)
        assert out.returncode == 0 and json.loads(out.stdout)[0]["Architecture"] == "amd64"
        subprocess.run([podman, "rmi", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)


def test_pull_load_takes_the_engines_platform(tmp_path, docker_engine, pki, registry_servers, busybox_program):
    """pull --load from the test registry: of a two-platform index, the engine's platform is loaded."""
    from clients import Client
    client = Client(tmp_path, pki, registry_servers("open"))
    (tmp_path / "arm64").mkdir()
    other = tmp_path / "arm64" / "busybox"     # the same name: the entrypoint is named after the first program
    other.write_bytes(b"#!/bin/sh\necho not for this machine\n")
    ref = client.ref("engine/app:1")
    ok(client("build", "--push", ref, "linux/arm64=%s" % other, "linux/amd64=%s" % busybox_program))
    env = dict(client.env, **docker_engine.env)
    r = ok(run_cli("pull", "--load", "--json", ref, env=env, cwd=str(tmp_path)))
    result = json.loads(r.stdout)
    assert result["loaded"] == ref and result["imageId"] == docker_engine.inspect(ref)["Id"]
    assert docker_engine.inspect(ref)["Architecture"] == "amd64"
    assert docker_engine.run(ref, "echo", "hi") == "hi\n"
    assert not os.path.exists(str(tmp_path / "app.tar"))
    r = run_cli("pull", "--load", "--all-platforms", ref, env=env)
    assert r.returncode == 2 and "--all-platforms" in r.stderr


def test_a_base_from_the_engine_and_from_its_docker_save(tmp_path, docker_engine, busybox_program):
    # an image the engine holds (loaded from a multi-layer base made of real files)
    base = _name()
    ok(run_cli("build", "--load", "-t", base, "--add", "%s:/opt/tool" % busybox_program, "--env", "FROM_BASE=1",
               busybox_program, env=docker_engine.env))
    # --from docker-daemon:NAME streams GET /images/NAME/get and builds on it
    app = _name()
    ok(run_cli("build", "--from", "docker-daemon:" + base, "--load", "-t", app, busybox_program,
               env=docker_engine.env))
    assert docker_engine.run(app, "sh", "-c", "test -x /opt/tool && echo $FROM_BASE") == "1\n"
    # the engine's own docker save (Docker 20.10: the format before 25) as --from-archive, run again
    saved = tmp_path / "saved.tar"
    docker_engine.docker("save", "-o", str(saved), base)
    again = _name()
    ok(run_cli("build", "--from-archive", saved, "--load", "-t", again, busybox_program, env=docker_engine.env))
    assert docker_engine.run(again, "sh", "-c", "test -x /opt/tool && echo hi") == "hi\n"
    # a name the engine does not hold: one line
    r = run_cli("build", "--from", "docker-daemon:nothing-here:1", "-o", tmp_path / "o.tar", busybox_program,
                env=docker_engine.env)
    assert r.returncode == 1 and "nothing-here" in r.stderr.strip().splitlines()[-1] and "Traceback" not in r.stderr
    assert not (tmp_path / "o.tar").exists()


def test_a_docker_host_zeroimage_cannot_use_is_a_usage_error(tmp_path, busybox_program):
    for host in ("tcp://10.0.0.5:2375", "ssh://user@host", "npipe:////./pipe/docker"):
        r = run_cli("build", "--load", "-t", "x:1", busybox_program, env={"DOCKER_HOST": host})
        last = r.stderr.strip().splitlines()[-1]
        assert r.returncode == 2 and "DOCKER_HOST" in last and "start one" not in last, r.stderr


def test_output_to_a_closed_stdout_is_one_line(tmp_path, busybox_program):
    r = subprocess.run("%s %s build -o - %s >&-" % (sys.executable, MODULE, busybox_program), shell=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "standard output is closed" in r.stderr
