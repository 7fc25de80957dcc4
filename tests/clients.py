"""zeroimage as a user of a registry, for the tests that push and pull: ``Client`` (one user on one
machine: its own DOCKER_CONFIG, the test CA trusted, skopeo's flags to reach the same registry) and
``Place`` (a user before a ``registries.QuirkProxy`` in front of the real registry, which it may also
reach straight); ``run_cli_stdin`` runs the CLI with text on stdin (``login --password-stdin``)."""

import base64
import json
import os
import shutil
import subprocess

import registries
import zeroimage
from conftest import need_tool
from helpers import ok, sh
from imagetools import cli_argv, run_env, run_cli

MODES = ["open", "basic", "token"]


class Client:
    """zeroimage as one user on one machine: its own DOCKER_CONFIG, trusting the test CA."""

    def __init__(self, tmp_path, pki, server):
        self.server = server
        self.home = tmp_path / ("docker-config-" + server.mode)
        # (the test's own cache directory: a Session given this environment alone would use ~/.cache)
        self.env = {"DOCKER_CONFIG": str(self.home), "SSL_CERT_FILE": pki["ca"],
                    "ZEROIMAGE_CACHE_DIR": os.environ["ZEROIMAGE_CACHE_DIR"],
                    "PATH": "%s:%s" % (tmp_path, os.environ.get("PATH", "")),
                    "REGISTRY_AUTH_FILE": str(tmp_path / "no-podman-auth.json")}
        self.certs = tmp_path / "skopeo-certs"
        self.certs.mkdir(exist_ok=True)
        shutil.copy(pki["ca"], str(self.certs / "ca.crt"))

    def __call__(self, *args):
        return run_cli(*args, env=self.env)

    def ok(self, *args):
        return ok(self(*args))

    def login(self, user="alice"):
        if self.server.mode != "open":
            ok(run_cli_stdin(self.env, registries.USERS[user] + "\n", "login", "-u", user, "--password-stdin",
                             self.server.host))

    def ref(self, name):
        return "%s/%s" % (self.server.host, name)

    def skopeo_flags(self, direction=""):
        """skopeo's flags to reach this registry (``direction``: "src-" or "dest-" for copy)."""
        creds = ["--%screds" % direction, "alice:wonderland"] if self.server.mode != "open" else []
        tls = ["--%scert-dir" % direction, str(self.certs)] if self.server.tls else ["--%stls-verify=false" % direction]
        return creds + tls

    def skopeo(self, *args):
        return sh(need_tool("skopeo"), *args[:1], *self.skopeo_flags(), *args[1:])


def open_and_token(tmp_path, pki, registry_servers):
    """The open registry and the token one, one user logged in to both (one DOCKER_CONFIG)."""
    a = Client(tmp_path, pki, registry_servers("open"))
    b = Client(tmp_path, pki, registry_servers("token"))
    b.home, b.env = a.home, a.env
    b.login()
    return a, b


def run_cli_stdin(env, stdin, *args):
    return subprocess.run(cli_argv() + [str(a) for a in args], input=stdin, env=run_env(env),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)


class Place:
    """zeroimage as one user: its own DOCKER_CONFIG, the test CA trusted, a QuirkProxy in front of the
    registry ``upstream``, which it may also reach straight (as alice, when the registry asks)."""

    def __init__(self, tmp_path, pki, upstream, proxy):
        self.tmp_path, self.upstream, self.proxy = tmp_path, upstream, proxy
        self.config = tmp_path / "docker-config"
        self.config.mkdir()
        self.env = {"DOCKER_CONFIG": str(self.config), "SSL_CERT_FILE": pki["ca"],
                    "ZEROIMAGE_CACHE_DIR": os.environ["ZEROIMAGE_CACHE_DIR"],
                    "REGISTRY_AUTH_FILE": str(tmp_path / "no-podman-auth.json")}
        if upstream.mode != "open":
            auth = base64.b64encode(b"alice:wonderland").decode()
            (self.config / "config.json").write_text(json.dumps({"auths": {upstream.host: {"auth": auth}}}))
        self.certs = tmp_path / "skopeo-certs"
        self.certs.mkdir()
        shutil.copy(pki["ca"], str(self.certs / "ca.crt"))

    def __call__(self, *args):
        return run_cli(*args, env=self.env)

    def ok(self, *args):
        return ok(self(*args))

    def via(self, name):
        """NAME through the proxy."""
        return "%s/%s" % (self.proxy.host, name)

    def up(self, name):
        """NAME straight at the registry behind."""
        return "%s/%s" % (self.upstream.host, name)

    def login(self, user="alice"):
        return ok(run_cli_stdin(self.env, registries.USERS[user] + "\n", "login", "-u", user, "--password-stdin",
                                self.proxy.host))

    def base(self, name, program):
        """An image pushed straight to the registry behind (not through the proxy); its digest."""
        return digest_of(self.ok("build", "--push", self.up(name), program))

    def upstream_manifest(self, name):
        """(raw bytes, parsed) of NAME's manifest as skopeo reads it straight from the registry behind."""
        flags = ["--tls-verify=false"] if self.upstream.mode == "open" else \
            ["--cert-dir", str(self.certs), "--creds", "alice:wonderland"]
        raw = sh(need_tool("skopeo"), "inspect", "--raw", *flags, "docker://" + self.up(name))
        return raw.encode(), json.loads(raw)

    def pulled_from_upstream(self, name):
        """The digest zeroimage pulls (every blob read and verified) straight from the registry behind."""
        archive = self.tmp_path / ("upstream-%d.tar" % len(os.listdir(str(self.tmp_path))))
        return self.ok("pull", "-o", archive, self.up(name)).stdout.strip()

    def session(self):
        return zeroimage.Session(dict(os.environ, **self.env))


def digest_of(r):
    """The digest a push printed (REF@sha256:...)."""
    return r.stdout.strip().rsplit("@", 1)[1]
