"""ZEROIMAGE_REPO (issue 25, item 7): a bare push name (one that names no registry host, so it would go
to Docker Hub) is completed under it, as ko's KO_DOCKER_REPO; a host written out always wins. One rule,
Targets' push_reference, which every push option goes through; then a real registry judged by skopeo."""

import io
import json
import logging
import os

import pytest

import zeroimage
from binaries import make_elf
from clients import Client
from helpers import fails, ok
from imagetools import run_cli

TEAM = "registry.example.com/team"
DIGEST = "sha256:" + "c" * 64


@pytest.mark.parametrize("repo, text, pushed", [
    (None, "app", "docker.io/library/app:latest"),
    ("", "app", "docker.io/library/app:latest"),                        # set and empty: as unset
    (TEAM, "app", TEAM + "/app:latest"),
    (TEAM, "app:1", TEAM + "/app:1"),
    (TEAM, "tools/app:1", TEAM + "/tools/app:1"),
    (TEAM, "app@" + DIGEST, TEAM + "/app@" + DIGEST),
    (TEAM + "/", "app", TEAM + "/app:latest"),
    ("registry.example.com:5000/a/b", "app", "registry.example.com:5000/a/b/app:latest"),
    ("localhost:5000", "app:2", "localhost:5000/app:2"),                  # a registry alone
    ("registry.example.com", "app", "registry.example.com/app:latest"),
    ("[::1]:5000", "app", "[::1]:5000/app:latest"),
    ("me", "app", "docker.io/me/app:latest"),                            # a Docker Hub account
    # a host written out always wins; docker.io written out is Docker Hub
    (TEAM, "localhost:5000/app", "localhost:5000/app:latest"),
    (TEAM, "other.example.com/app:2", "other.example.com/app:2"),
    (TEAM, "docker.io/me/app", "docker.io/me/app:latest"),
    (TEAM, "docker.io/app", "docker.io/library/app:latest"),
    (TEAM, "index.docker.io/me/app", "docker.io/me/app:latest"),
    (TEAM, "localhost/app", "localhost/app:latest"),
])
def test_a_bare_push_name_is_completed_under_zeroimage_repo(repo, text, pushed):
    environ = {} if repo is None else {"ZEROIMAGE_REPO": repo}
    assert str(zeroimage.push_reference(text, environ)) == pushed


@pytest.mark.parametrize("repo, said", [
    (TEAM + ":1", "names an image, not a repository: give it without a tag or digest (%s)" % TEAM),
    (TEAM + "@" + DIGEST, "names an image, not a repository"),
    ("https://registry.example.com/team", "a reference has no scheme"),
    ("registry.example.com/Team", "must be lowercase"),
    (" " + TEAM, "give a repository to push bare names under"),
    (" ", "ZEROIMAGE_REPO=' ': give a repository"),        # (a blank said so it is seen)
    (TEAM + "\t", "ZEROIMAGE_REPO='%s\\t': give" % TEAM),
    ("/", "give a repository to push bare names under"),
    ("registry.example.com/team/" + "x" * 250, "longer than"),
])
def test_a_wrong_zeroimage_repo_is_one_usage_error_naming_it(repo, said):
    for text in ("app", "localhost:5000/app"):      # said even when the name has a host of its own
        with pytest.raises(zeroimage.UsageError) as caught:
            zeroimage.push_reference(text, {"ZEROIMAGE_REPO": repo})
        message = str(caught.value)
        assert message.startswith("ZEROIMAGE_REPO=") and said in message and "\n" not in message, message


def test_a_completed_name_too_long_names_the_variable():
    with pytest.raises(zeroimage.UsageError) as caught:
        zeroimage.push_reference("a" * 200, {"ZEROIMAGE_REPO": "registry.example.com/" + "t" * 60})
    assert str(caught.value).startswith("ZEROIMAGE_REPO=") and "which is no reference" in str(caught.value)


def test_the_push_word_is_read_as_before():
    # a path, a transport word: refused as registry_reference refuses them, whatever ZEROIMAGE_REPO says
    for text, said in (("app.tar", "looks like a path"), ("docker://h.example/x:1", "transport syntax")):
        with pytest.raises(zeroimage.ZeroImageError) as caught:
            zeroimage.push_reference(text, {"ZEROIMAGE_REPO": TEAM})
        assert said in str(caught.value) and caught.value.exit_code == 2


def test_verbose_says_when_a_name_was_completed():
    out = io.StringIO()
    display = zeroimage.Display(out, "plain", logging.DEBUG)
    zeroimage.push_reference("app", {"ZEROIMAGE_REPO": TEAM}, display)
    zeroimage.push_reference("localhost:5000/app", {"ZEROIMAGE_REPO": TEAM}, display)
    assert out.getvalue() == ("zeroimage: app names no registry: pushed as %s/app:latest (ZEROIMAGE_REPO=%s)\n"
                              % (TEAM, TEAM))


def test_build_refuses_a_wrong_zeroimage_repo_before_any_work(tmp_path):
    (tmp_path / "app").write_bytes(make_elf(62))
    r = run_cli("build", "--from", "scratch", "--push", "app", tmp_path / "app", cwd=str(tmp_path),
                env={"ZEROIMAGE_REPO": TEAM + ":1"})
    fails(r, 2, "ZEROIMAGE_REPO=%s:1 names an image" % TEAM)
    assert os.listdir(str(tmp_path)) == ["app"]


@pytest.mark.interop
def test_build_push_completes_a_bare_name_on_the_real_registry(tmp_path, pki, registry_servers, prog):
    client = Client(tmp_path, pki, registry_servers("open"))
    env = dict(client.env, ZEROIMAGE_REPO=client.ref("team"))
    r = ok(run_cli("build", "-v", "--json", "--from", "scratch", "--push", "app:1", prog, env=env))
    result = json.loads(r.stdout)
    pushed = client.ref("team/app:1")
    assert result["reference"] == "%s@%s" % (pushed, result["digest"])
    assert "app:1 names no registry: pushed as %s (ZEROIMAGE_REPO=%s)" % (pushed, client.ref("team")) in r.stderr
    info = json.loads(client.skopeo("inspect", "docker://" + pushed))
    assert info["Digest"] == result["digest"]
    # a bare name with no tag gets latest; text output is the reference
    r = ok(run_cli("build", "-q", "--from", "scratch", "--push", "app", prog, env=env))
    assert r.stdout.startswith(client.ref("team/app:latest@sha256:"))
    # a host written out wins: ZEROIMAGE_REPO is not asked
    r = ok(run_cli("build", "-q", "--from", "scratch", "--push", client.ref("elsewhere/app:1"), prog, env=env))
    assert r.stdout.startswith(client.ref("elsewhere/app:1@sha256:"))
