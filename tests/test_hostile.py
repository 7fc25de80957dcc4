"""Hostile and odd input at the network and credential edges: proxy settings, redirects, 401
challenges, token answers, manifests and indexes, digests, credential helpers and config.json.

Every server here is a loopback test server started by the test; nothing reaches the internet.
CLI tests check the user-facing contract: exit 1 (2 for usage), one line starting with
"zeroimage: error: " at the end of stderr, no traceback, and no planted secret anywhere.
"""

import base64
import hashlib
import http.client
import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest

import zeroimage
from helpers import SECRET, cli_env, cli_failed
from imagetools import MODULE, run_cli
from imagetools import SMALL_CONFIG as CONFIG, SMALL_IMAGE as IMAGE, SMALL_LAYER as LAYER     # a small valid image
from registries import QuietHandler, QuietServer, jdump, manifest_route, open_v2, tunnel
from zeroimage import Credentials

OCI_MANIFEST = zeroimage.OCI_MANIFEST
OCI_INDEX = zeroimage.OCI_INDEX
OCI_CONFIG = zeroimage.OCI_CONFIG
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                   "no_proxy", "NO_PROXY", "REQUEST_METHOD")


# ---- helpers: a recording proxy (the loopback Server and its routes are tests/registries.py's) ----


_HOP_BY_HOP = ("connection", "proxy-connection", "proxy-authorization", "keep-alive", "transfer-encoding",
               "content-length", "te", "upgrade")


class RecordingProxy:
    """A forward HTTP proxy: absolute-form requests (GET http://host:port/path) are forwarded, CONNECT
    tunnels are relayed; ``seen`` records (request line, Proxy-Authorization or None)."""

    def __init__(self):
        self.seen = []
        proxy = self

        class Handler(QuietHandler):
            def do_GET(self):
                proxy.seen.append((self.requestline, self.headers.get("Proxy-Authorization")))
                parts = urllib.parse.urlsplit(self.path)
                if parts.scheme != "http" or not parts.netloc:
                    return self.reply(400, b"absolute-form requests only")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                upstream = http.client.HTTPConnection(parts.netloc, timeout=30)
                try:
                    path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
                    upstream.request(self.command, path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                    self.reply(answer.status, data, [(k, v) for k, v in answer.getheaders()
                                                     if k.lower() not in _HOP_BY_HOP])
                finally:
                    upstream.close()

            do_HEAD = do_PUT = do_POST = do_GET

            def do_CONNECT(self):
                proxy.seen.append((self.requestline, self.headers.get("Proxy-Authorization")))
                tunnel(self)

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.netloc = "127.0.0.1:%d" % self.httpd.server_port
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def proxy():
    """A started RecordingProxy, closed after the test."""
    p = RecordingProxy()
    yield p
    p.close()


@pytest.fixture
def env(tmp_path):
    """A session environment of the test's own: no proxies, no credentials but its own config.json."""
    (tmp_path / "docker").mkdir(exist_ok=True)
    return {"DOCKER_CONFIG": str(tmp_path / "docker"), "HOME": str(tmp_path),
            "PATH": os.environ.get("PATH", os.defpath)}


@pytest.fixture
def session(env):
    with zeroimage.Session(env) as s:
        yield s


def b64(text):
    return base64.b64encode(text.encode()).decode()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blake3(data):
    h = zeroimage._Blake3()
    h.update(data)
    return "blake3:" + h.hexdigest()


MANIFEST = jdump({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                  "config": {"mediaType": OCI_CONFIG, "digest": sha256(b"{}"), "size": 2}, "layers": []})


# ---- 1. proxy settings: parsed as curl and urllib accept them ----


@pytest.mark.parametrize("text, netloc, userpass", [
    ("proxy:3128", "proxy:3128", None),
    ("http://proxy:3128", "proxy:3128", None),
    ("HTTP://Proxy:3128/", "proxy:3128", None),
    ("  http://proxy:3128  ", "proxy:3128", None),
    ("http://user:p%40ss@proxy:3128", "proxy:3128", "user:p@ss"),
    ("user:pw@proxy:3128", "proxy:3128", "user:pw"),
    ("http://user@proxy:3128", "proxy:3128", "user:"),
    ("http://us%3Aer:a%2Fb%20c@proxy.example.com:8080", "proxy.example.com:8080", "us:er:a/b c"),
    ("http://[::1]:3128", "[::1]:3128", None),
    ("[::1]:3128", "[::1]:3128", None),
    ("http://10.0.0.1:3128", "10.0.0.1:3128", None),
    ("proxy", "proxy:80", None),
    ("http://proxy", "proxy:80", None),
])
def test_proxy_url_forms(text, netloc, userpass):
    """A proxy setting is read as curl reads it: no scheme means http, no port means 80, and
    percent-encoded credentials become a Basic Proxy-Authorization."""
    proxy = zeroimage.parse_proxy(text)
    assert proxy.netloc == netloc
    expected = None if userpass is None else "Basic " + b64(userpass)
    assert proxy.authorization == expected
    assert "Basic" not in repr(proxy), "the credentials are never shown"


@pytest.mark.parametrize("text, words", [
    ("https://proxy:3128", ["TLS to the proxy"]),
    ("https://user:%s@proxy:3128" % SECRET, ["TLS to the proxy"]),
    ("socks5://proxy:1080", ["socks5"]),
    ("socks5h://user:%s@proxy:1080" % SECRET, ["socks5h"]),
    ("socks4://proxy:1080", ["socks4"]),
    ("ftp://proxy:21", ["ftp"]),
    ("http://proxy:notaport", ["port"]),
    ("http://[bad:3128", ["not a URL"]),
    ("http://user:%s@proxy:notaport" % SECRET, ["port"]),
    ("http://proxy:99999", ["port"]),
    ("http://:3128", ["host"]),
    ("http://bad_host!:3128", ["host"]),
])
def test_proxy_url_refused(text, words):
    """A proxy zeroimage cannot use is a clear ZeroImageError on one line, and never shows the proxy's
    password."""
    with pytest.raises(zeroimage.ZeroImageError) as e:
        zeroimage.parse_proxy(text)
    message = str(e.value)
    assert "\n" not in message and SECRET not in message, message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("host, port, no_proxy, bypass", [
    ("anything.example", 443, "*", True),
    ("10.1.2.3", 80, "*", True),
    ("reg.example.com", 443, "reg.example.com", True),
    ("REG.example.com", 443, "reg.EXAMPLE.com", True),
    ("other.example.com", 443, "reg.example.com", False),
    ("a.reg.example.com", 443, "reg.example.com", True),
    ("a.reg.example.com", 443, ".reg.example.com", True),
    ("reg.example.com", 443, ".reg.example.com", True),
    ("a.reg.example.com", 443, "*.reg.example.com", True),
    ("notreg.example.com", 443, "reg.example.com", False),
    ("reg.example.com.evil.net", 443, "reg.example.com", False),
    ("reg.example.com", 5000, "reg.example.com:5000", True),
    ("reg.example.com", 443, "reg.example.com:5000", False),
    ("a.reg.example.com", 5000, ".reg.example.com:5000", True),
    ("10.1.2.3", 80, "10.0.0.0/8", True),
    ("10.255.255.255", 5000, "10.0.0.0/8", True),
    ("11.1.2.3", 80, "10.0.0.0/8", False),
    ("192.168.1.7", 80, "192.168.1.7", True),
    ("192.168.1.8", 80, "192.168.1.7", False),
    ("192.168.1.7", 5000, "192.168.1.7:5000", True),
    ("192.168.1.7", 80, "192.168.1.7:5000", False),
    ("example.com", 80, "10.0.0.0/8", False),
    ("10.0.0.1", 80, "example.com", False),
    ("::1", 80, "::1", True),
    ("[::1]", 80, "::1", True),
    ("::2", 80, "::1", False),
    ("::1", 5000, "[::1]:5000", True),
    ("::1", 80, "[::1]:5000", False),
    ("fd00::42", 443, "fd00::/8", True),
    ("fe80::1", 443, "fd00::/8", False),
    ("reg.example.com", 443, "foo.com,reg.example.com", True),
    ("reg.example.com", 443, "foo.com, reg.example.com", True),
    ("reg.example.com", 443, "foo.com reg.example.com", True),
    ("reg.example.com", 443, " foo.com ,\treg.example.com\n", True),
    ("reg.example.com", 443, "foo.com,,bar.com", False),
    ("reg.example.com", 443, "", False),
    ("reg.example.com", 443, " , ", False),
    ("localhost", 5000, "localhost", True),
    ("127.0.0.1", 5000, "localhost", False),
    ("127.0.0.1", 5000, "127.0.0.0/8", True),
])
def test_no_proxy_matching(host, port, no_proxy, bypass):
    """NO_PROXY as curl reads it: '*', names covering their subdomains (leading '.' or '*.' change
    nothing), host:port, IPv4/IPv6 addresses and CIDR ranges, comma or whitespace separated."""
    assert zeroimage.bypasses_proxy(host, port, no_proxy) is bypass


def test_proxy_comes_from_the_session_environment(monkeypatch):
    """The proxy is the session's environment's, never the process's."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with zeroimage.Session({"HTTPS_PROXY": "proxy.example:3128"}) as session:
        assert session.transport.proxy_for("https", "reg.example:443") == \
            zeroimage.Proxy("proxy.example:3128", variable="HTTPS_PROXY")
        assert session.transport.proxy_for("http", "reg.example:80") is None, "HTTPS_PROXY is for https only"
    with zeroimage.Session({}) as session:
        assert session.transport.proxy_for("https", "reg.example:443") is None
    monkeypatch.setenv("HTTPS_PROXY", "process-proxy.example:1")
    monkeypatch.setenv("https_proxy", "process-proxy.example:1")
    monkeypatch.setenv("ALL_PROXY", "process-proxy.example:1")
    with zeroimage.Session({}) as session:
        assert session.transport.proxy_for("https", "reg.example:443") is None
    with zeroimage.Session({"HTTPS_PROXY": "proxy.example:3128"}) as session:
        assert session.transport.proxy_for("https", "reg.example:443").netloc == "proxy.example:3128"


@pytest.mark.parametrize("environ, scheme, netloc, expected", [
    ({"https_proxy": "lower:1", "HTTPS_PROXY": "upper:2"}, "https", "reg.example:443", "lower:1"),
    ({"HTTPS_PROXY": "upper:2"}, "https", "reg.example:443", "upper:2"),
    ({"http_proxy": "h:1", "https_proxy": "s:2"}, "http", "reg.example", "h:1"),
    ({"http_proxy": "h:1", "https_proxy": "s:2"}, "https", "reg.example", "s:2"),
    ({"all_proxy": "all:1"}, "https", "reg.example:443", "all:1"),
    ({"ALL_PROXY": "all:1"}, "http", "reg.example:80", "all:1"),
    ({"https_proxy": "  ", "HTTPS_PROXY": "upper:2"}, "https", "reg.example:443", "upper:2"),
    ({"https_proxy": ""}, "https", "reg.example:443", None),
    ({"HTTPS_PROXY": "p:1", "NO_PROXY": "reg.example"}, "https", "reg.example:443", None),
    ({"HTTPS_PROXY": "p:1", "no_proxy": ".example"}, "https", "reg.example:443", None),
    ({"HTTPS_PROXY": "p:1", "NO_PROXY": "reg.example:5000"}, "https", "reg.example:443", "p:1"),
    ({"HTTPS_PROXY": "p:1", "NO_PROXY": "reg.example:443"}, "https", "reg.example", None),
    ({"HTTP_PROXY": "p:1", "NO_PROXY": "reg.example:80"}, "http", "reg.example", None),
    ({"HTTP_PROXY": "p:1", "NO_PROXY": "127.0.0.0/8"}, "http", "127.0.0.1:5000", None),
    # httpoxy: under CGI, HTTP_PROXY may be a request's Proxy: header, so it is not read there
    ({"HTTP_PROXY": "evil:1", "REQUEST_METHOD": "GET"}, "http", "reg.example", None),
    ({"http_proxy": "good:1", "HTTP_PROXY": "evil:1", "REQUEST_METHOD": "GET"}, "http", "reg.example", "good:1"),
])
def test_proxy_variable_precedence(environ, scheme, netloc, expected):
    """Lowercase before uppercase, scheme's variable before all_proxy, empty values skipped, NO_PROXY
    (with ports) exempts, HTTP_PROXY ignored under CGI."""
    with zeroimage.Session(environ) as session:
        proxy = session.transport.proxy_for(scheme, netloc)
    assert (proxy.netloc if proxy else None) == expected


# ---- 2. proxies, end to end on loopback ----


@pytest.mark.parametrize("variable, form, userpass", [
    ("HTTP_PROXY", "{proxy}", None),
    ("http_proxy", "http://user:secret@{proxy}", "user:secret"),
    ("all_proxy", "http://us%40er:p%3Ass@{proxy}/", "us@er:p:ss"),
])
def test_plain_http_through_a_forward_proxy(servers, proxy, variable, form, userpass):
    """Plain HTTP through a proxy: the proxy gets the absolute URL (and, with credentials in the
    setting, Proxy-Authorization); the target gets the request, its Authorization, and no
    Proxy-Authorization."""
    target = servers({"/v2/x": lambda h: h.reply(200, b"through")})
    environ = {variable: form.format(proxy=proxy.netloc)}
    with zeroimage.Session(environ) as session:
        for _ in range(2):      # and again on the kept-alive connection
            with session.transport.request("GET", target.url + "/v2/x?q=1", auth="Bearer TARGET-TOKEN") as r:
                assert r.status == 200 and r.read() == b"through"
    expected = None if userpass is None else "Basic " + b64(userpass)
    assert proxy.seen == [("GET %s/v2/x?q=1 HTTP/1.1" % target.url, expected)] * 2
    assert len(target.seen) == 2
    for seen in target.seen:
        assert seen.headers.get("Proxy-Authorization") is None
        assert seen.headers.get("Authorization") == "Bearer TARGET-TOKEN"


def test_no_proxy_sends_loopback_direct(servers, proxy):
    """A host NO_PROXY names is reached directly: the proxy sees nothing."""
    target = servers({"/x": lambda h: h.reply(200, b"direct")})
    environ = {"HTTP_PROXY": "http://user:secret@" + proxy.netloc, "NO_PROXY": "localhost,127.0.0.1"}
    with zeroimage.Session(environ) as session, session.transport.request("GET", target.url + "/x") as r:
        assert r.read() == b"direct"
    assert proxy.seen == [] and target.seen[0].headers.get("Proxy-Authorization") is None


def test_registry_pull_through_a_forward_proxy(servers, proxy, env):
    """A registry client (ping, manifest) works through a plain HTTP proxy."""
    target = servers({"/v2/": open_v2, "/v2/a/manifests/1": manifest_route(MANIFEST)})
    with zeroimage.Session(dict(env, http_proxy=proxy.netloc)) as session:
        data, media_type, digest = session.registry(target.netloc).get_manifest("a", "1")
    assert data == MANIFEST and digest == sha256(MANIFEST)
    assert "GET %s/v2/a/manifests/1 HTTP/1.1" % target.url in [line for line, _ in proxy.seen]


def test_https_through_a_connect_proxy_keeps_proxy_credentials_on_the_proxy(servers, proxy, pki):
    """HTTPS goes through a CONNECT tunnel: Proxy-Authorization on the CONNECT only, the target's
    Authorization inside the tunnel only."""
    target = servers({"/x": lambda h: h.reply(200, b"tunnelled")}, pki)
    environ = {"HTTPS_PROXY": "http://user:secret@" + proxy.netloc, "SSL_CERT_FILE": pki["ca"]}
    with zeroimage.Session(environ) as session, \
            session.transport.request("GET", target.https_url + "/x", auth="Bearer T") as r:
        assert r.read() == b"tunnelled"
    assert [(line.split()[0], line.split()[1]) for line, _ in proxy.seen] == [("CONNECT", target.netloc)]
    assert proxy.seen[0][1] == "Basic " + b64("user:secret")
    assert target.seen[0].tls and target.seen[0].headers.get("Proxy-Authorization") is None
    assert target.seen[0].headers.get("Authorization") == "Bearer T"


def test_a_bad_proxy_setting_is_a_clear_error(servers):
    """A proxy the session cannot use fails the request with a ZeroImageError that hides its password."""
    target = servers({"/x": lambda h: h.reply(200, b"no")})
    with zeroimage.Session({"HTTP_PROXY": "socks5://user:%s@127.0.0.1:1" % SECRET}) as session:
        with pytest.raises(zeroimage.ZeroImageError) as e:
            session.transport.request("GET", target.url + "/x")
    assert SECRET not in str(e.value) and "socks5" in str(e.value)
    assert target.seen == []


# ---- 3. redirects: Authorization stays with its origin; only http and https ----


@pytest.mark.parametrize("start_tls", [True, False], ids=["https-to-http", "http-to-https"])
def test_a_change_of_scheme_on_the_same_host_and_port_drops_authorization(servers, pki, start_tls):
    """A redirect that keeps host and port but changes the scheme drops Authorization: a downgrade to
    plain HTTP above all, and an upgrade too (the origin is not the same)."""
    holder = {}
    server = servers({"/a": lambda h: h.reply(307, headers=[
                          ("Location", (holder["s"].url if start_tls else holder["s"].https_url) + "/b")]),
                      "/b": lambda h: h.reply(200, b"moved")}, pki)
    holder["s"] = server
    with zeroimage.Session({"SSL_CERT_FILE": pki["ca"]}) as session, session.transport.request(
            "GET", (server.https_url if start_tls else server.url) + "/a", auth="Bearer SECRET") as r:
        assert r.status == 200 and r.read() == b"moved"
    (a,), (b,) = [s for s in server.seen if s.path == "/a"], [s for s in server.seen if s.path == "/b"]
    assert a.tls == start_tls and a.headers.get("Authorization") == "Bearer SECRET"
    assert b.tls != start_tls and b.headers.get("Authorization") is None


@pytest.mark.parametrize("where, kept", [
    ("same origin, absolute", True),
    ("same origin, relative", True),
    ("same origin, path-relative", True),
    ("another port", False),
    ("localhost instead of 127.0.0.1", False),
])
def test_redirect_keeps_authorization_only_on_the_same_origin(servers, where, kept):
    """Authorization follows a redirect only to the same scheme, host and port."""
    other = servers({"/b": lambda h: h.reply(200, b"other")})
    holder = {}

    def location():
        s = holder["s"]
        return {"same origin, absolute": s.url + "/b", "same origin, relative": "/b",
                "same origin, path-relative": "b", "another port": other.url + "/b",
                "localhost instead of 127.0.0.1": "http://localhost:%d/b" % s.port}[where]
    server = servers({"/a": lambda h: h.reply(308, headers=[("Location", location())]),
                      "/b": lambda h: h.reply(200, b"same")})
    holder["s"] = server
    with zeroimage.Session({}) as session, \
            session.transport.request("GET", server.url + "/a", auth="Bearer SECRET") as r:
        assert r.status == 200
    final = [s for s in server.seen + other.seen if s.path == "/b"]
    assert len(final) == 1
    assert final[0].headers.get("Authorization") == ("Bearer SECRET" if kept else None)


def test_authorization_goes_only_to_its_origin(servers):
    """auth given for another origin (auth_origin) is not sent at all."""
    server = servers({"/x": lambda h: h.reply(200, b"x")})
    with zeroimage.Session({}) as session:
        with session.transport.request("GET", server.url + "/x", auth="Bearer SECRET",
                                       auth_origin="http://127.0.0.1:1") as r:
            r.read()
        with session.transport.request("GET", server.url + "/x", auth="Bearer SECRET",
                                       auth_origin="https://" + server.netloc) as r:
            r.read()
    assert [s.headers.get("Authorization") for s in server.seen] == [None, None]


@pytest.mark.parametrize("location, scheme", [
    ("ftp://x/y", "ftp"),
    ("gopher://x/", "gopher"),
    ("file:///etc/passwd", "file"),
    ("FILE:///etc/passwd", "file"),
    ("javascript:alert(1)", "javascript"),
    ("data:text/plain,hi", "data"),
])
def test_redirect_to_another_scheme_is_refused(servers, location, scheme):
    """A redirect to anything but http or https is one RegistryError saying so; nothing else is asked."""
    server = servers({"/a": lambda h: h.reply(302, headers=[("Location", location)])})
    with zeroimage.Session({}) as session:
        with pytest.raises(zeroimage.RegistryError) as e:
            session.transport.request("GET", server.url + "/a", auth="Bearer SECRET")
    message = str(e.value)
    assert "http and https" in message and scheme in message.lower() and "\n" not in message, message
    assert [s.path for s in server.seen] == ["/a"]


def test_redirect_without_location_is_an_error(servers):
    """A redirect status without a Location is a RegistryError, not a crash."""
    server = servers({"/a": lambda h: h.reply(302)})
    with zeroimage.Session({}) as session:
        with pytest.raises(zeroimage.RegistryError, match="Location"):
            session.transport.request("GET", server.url + "/a")


@pytest.mark.parametrize("relative", [True, False])
def test_too_many_redirects_hide_the_signed_query(servers, relative):
    """More than MAX_REDIRECTS redirects is an error whose text holds no query string (signatures)."""
    holder = {"n": 0}

    def loop(h):
        holder["n"] += 1
        location = "/loop?n=%d&X-Amz-Signature=SECRETSIG" % holder["n"]
        h.reply(302, headers=[("Location", location if relative else holder["s"].url + location)])
    server = servers({"/loop": loop})
    holder["s"] = server
    with zeroimage.Session({}) as session:
        with pytest.raises(zeroimage.RegistryError) as e:
            session.transport.request("GET", server.url + "/loop?X-Amz-Signature=SECRETSIG")
    assert "redirects" in str(e.value)
    assert "SECRETSIG" not in str(e.value) and "SECRETSIG" not in e.value.url
    assert len(server.seen) == zeroimage.MAX_REDIRECTS + 1


# ---- 4. a 401 after a token: the challenge's scopes are merged in ----


def test_a_401_retry_merges_the_challenge_scope(servers, session):
    """An insufficient_scope 401 is answered with one new token asked for our scopes and the
    challenge's together."""
    holder = {"asked": [], "good": set()}

    def challenge(h, extra=""):
        h.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', [(
            "WWW-Authenticate", 'Bearer realm="%s/token",service="svc"%s' % (holder["s"].url, extra))])

    def token(h):
        scopes = urllib.parse.parse_qs(urllib.parse.urlsplit(h.path).query).get("scope", [])
        holder["asked"].append(scopes)
        issued = "T%d" % len(holder["asked"])
        if "repository:b:pull" in scopes:
            holder["good"].add("Bearer " + issued)
        h.reply(200, jdump({"token": issued, "expires_in": 300}))

    def manifest(h):
        if h.headers.get("Authorization") in holder["good"]:
            return manifest_route(MANIFEST)(h)
        challenge(h, ',scope="repository:a:pull repository:b:pull",error="insufficient_scope"')
    holder["s"] = servers({"/v2/": challenge, "/token": token, "/v2/a/manifests/1": manifest})
    data, _, _ = session.registry(holder["s"].netloc).get_manifest("a", "1")
    assert data == MANIFEST
    assert len(holder["asked"]) == 2
    assert holder["asked"][0] == ["repository:a:pull"]
    assert holder["asked"][1] == ["repository:a:pull", "repository:b:pull"]       # the challenge's, in its order


def test_a_401_that_persists_is_retried_once_then_an_error(servers, session):
    """A registry that keeps answering 401 gets one more try with a fresh token, then an
    AuthenticationError: no loop."""
    holder = {"tokens": 0}

    def challenge(h):
        h.reply(401, b"{}", [("WWW-Authenticate", 'Bearer realm="%s/token",service="svc",'
                              'scope="repository:a:pull",error="insufficient_scope"' % holder["s"].url)])

    def token(h):
        holder["tokens"] += 1
        h.reply(200, jdump({"token": "T%d" % holder["tokens"]}))
    holder["s"] = servers({"/v2/": challenge, "/token": token, "/v2/a/manifests/1": challenge})
    with pytest.raises(zeroimage.AuthenticationError):
        session.registry(holder["s"].netloc).get_manifest("a", "1")
    assert holder["tokens"] <= 2
    assert holder["s"].paths("/v2/a/manifests/").count("/v2/a/manifests/1") == 2


@pytest.mark.parametrize("realm", ["file:///etc/passwd", "ftp://x/token", "/relative/token", "", "http://"])
def test_a_challenge_with_a_hostile_realm_is_an_error(servers, session, realm):
    """A token realm that is not an http(s) URL with a host is refused with an AuthenticationError."""
    server = servers({"/v2/": lambda h: h.reply(401, b"{}", [("WWW-Authenticate", 'Bearer realm="%s"' % realm)])})
    with pytest.raises(zeroimage.AuthenticationError, match="realm"):
        session.registry(server.netloc).get_manifest("a", "1")
    assert server.paths("/v2/a/") == []


def test_credentials_are_not_sent_to_a_plain_http_realm_elsewhere(servers, session):
    """A registry may not send the user's password to a plain-HTTP token realm that is not loopback:
    refused before any connection (0.0.0.0 is not loopback, and nothing listens there)."""
    server = servers({"/v2/": lambda h: h.reply(401, b"{}", [("WWW-Authenticate",
                                                              'Bearer realm="http://0.0.0.0:1/token"')])})
    registry = session.registry(server.netloc, Credentials("user", SECRET))
    with pytest.raises(zeroimage.AuthenticationError, match="plain-HTTP") as e:
        registry.get_manifest("a", "1")
    assert SECRET not in str(e.value)


# ---- 5. token lifetime, by an injected clock ----


def _token_registry(servers, answer):
    """A registry asking for bearer tokens; the token route answers ``answer(n)`` (bytes) for the n-th
    token request, and manifests need a token it issued (any one)."""
    holder = {"issued": []}

    def challenge(h):
        h.reply(401, b"{}", [("WWW-Authenticate", 'Bearer realm="%s/token",service="svc"' % holder["s"].url)])

    def token(h):
        holder["issued"].append(h.path)
        h.reply(200, answer(len(holder["issued"])), [("Content-Type", "application/json")])

    def manifest(h):
        if h.headers.get("Authorization", "").startswith("Bearer T"):
            return manifest_route(MANIFEST)(h)
        challenge(h)
    routes = {"/v2/": challenge, "/token": token}
    for n in range(1, 6):
        routes["/v2/a/manifests/%d" % n] = manifest
    holder["s"] = servers(routes)
    return holder


def test_token_expires_by_the_injected_clock(servers, env):
    """A token with expires_in 300 is reused at t=100 and replaced at t=400 (the session's clock)."""
    now = [0.0]
    holder = _token_registry(servers, lambda n: jdump({"token": "T%d" % n, "expires_in": 300}))
    with zeroimage.Session(env, clock=lambda: now[0]) as session:
        registry = session.registry(holder["s"].netloc)
        registry.get_manifest("a", "1")
        now[0] = 100.0
        registry.get_manifest("a", "2")
        assert len(holder["issued"]) == 1
        now[0] = 400.0
        registry.get_manifest("a", "3")
        assert len(holder["issued"]) == 2
    used = [s.headers.get("Authorization") for s in holder["s"].seen if s.path.startswith("/v2/a/manifests/")]
    assert used[-1] == "Bearer T2"


@pytest.mark.parametrize("body", [
    b'{"token":"T","expires_in":1e999}',
    b'{"token":"T","expires_in":-1e999}',
    b'{"token":"T","expires_in":NaN}',
    b'{"token":"T","expires_in":-5}',
    b'{"token":"T","expires_in":0}',
    b'{"token":"T","expires_in":"soon"}',
    b'{"token":"T","expires_in":"300"}',
    b'{"token":"T","expires_in":true}',
    b'{"token":"T","expires_in":null}',
    b'{"token":"T","expires_in":[300]}',
    b'{"token":"T","expires_in":{"s":300}}',
    b'{"token":"T","expires_in":1e308}',
    b'{"token":"T","expires_in":123456789012345678901234567890}',
    b'{"token":"T"}',
])
def test_hostile_expires_in_is_tolerated(servers, env, body):
    """Any expires_in (infinite, negative, not a number, huge) leaves the token usable: it is used,
    cached for a moment, and no longer than a day."""
    now = [0.0]
    holder = _token_registry(servers, lambda n: body)
    with zeroimage.Session(env, clock=lambda: now[0]) as session:
        registry = session.registry(holder["s"].netloc)
        assert registry.get_manifest("a", "1")[0] == MANIFEST
        now[0] = 1.0
        registry.get_manifest("a", "2")
        assert len(holder["issued"]) == 1, "reused a second later"
        now[0] = 2 * 24 * 3600.0
        registry.get_manifest("a", "3")
        assert len(holder["issued"]) == 2, "not kept for more than a day"
    assert [s.headers.get("Authorization") for s in holder["s"].seen
            if s.path.startswith("/v2/a/manifests/")][-1] == "Bearer T"


# ---- 6. hostile token answers ----


HOSTILE_TOKEN_ANSWERS = [
    ("crlf", jdump({"token": "abc\r\nX-Evil: 1 " + SECRET})),
    ("lf", jdump({"token": SECRET + "\nX-Evil: 1"})),
    ("space", jdump({"token": SECRET + " with space"})),
    ("nul", jdump({"token": SECRET + "\x00"})),
    ("non-ascii", jdump({"token": SECRET + "\u00e9"})),
    ("access_token with crlf", jdump({"token": "", "access_token": SECRET + "\r\nX-Evil: 1"})),
    ("not json", b"<html>" + SECRET.encode() + b"</html>"),
    ("not utf-8", b'{"token":"' + SECRET.encode() + b'\xff"}'),
    ("json list", jdump([SECRET])),
    ("json string", jdump(SECRET)),
    ("token a list", jdump({"token": [SECRET]})),
    ("token a number", jdump({"token": 12345, "note": SECRET})),
    ("token an object", jdump({"token": {"value": SECRET}})),
    ("no token", jdump({"tok": SECRET})),
    ("huge", b'{"token":"' + SECRET.encode() + b"x" * (zeroimage.MAX_TOKEN_BODY + 10) + b'"}'),
    ("deeply nested", b'{"token":' + b"[" * 100000 + b"]" * 100000 + b"}"),
]


def _hostile_token_registry(servers, body):
    holder = {}

    def challenge(h):
        h.reply(401, b"{}", [("WWW-Authenticate", 'Bearer realm="%s/token",service="svc"' % holder["s"].url)])
    holder["s"] = servers({"/v2/": challenge, "/token": lambda h: h.reply(200, body), "/v2/a/manifests/1": challenge})
    return holder["s"]


@pytest.mark.parametrize("name, body", HOSTILE_TOKEN_ANSWERS, ids=[n for n, _ in HOSTILE_TOKEN_ANSWERS])
def test_hostile_token_answer_library(servers, session, name, body):
    """A token answer that is not a usable token is a one-line ZeroImageError that never shows it,
    and nothing from it reaches a request header."""
    server = _hostile_token_registry(servers, body)
    with pytest.raises(zeroimage.ZeroImageError) as e:
        session.registry(server.netloc).get_manifest("a", "1")
    message = str(e.value)
    assert SECRET not in message and "\n" not in message and "\r" not in message, message
    assert len(message) < 1000
    for seen in server.seen:
        assert seen.headers.get("X-Evil") is None
        assert SECRET not in str(seen.headers.get("Authorization"))


@pytest.mark.parametrize("name, body", HOSTILE_TOKEN_ANSWERS, ids=[n for n, _ in HOSTILE_TOKEN_ANSWERS])
def test_hostile_token_answer_cli(servers, tmp_path, name, body):
    """The same through the CLI (with --verbose): exit 1, one error line, the token never printed."""
    server = _hostile_token_registry(servers, body)
    r = run_cli("inspect", "--verbose", "%s/a:1" % server.netloc, env=cli_env(tmp_path), cwd=tmp_path)
    cli_failed(r)
    r = run_cli("pull", "--verbose", "-o", tmp_path / "out.tar", "%s/a:1" % server.netloc, env=cli_env(tmp_path),
                cwd=tmp_path)
    cli_failed(r)
    assert not (tmp_path / "out.tar").exists()
    assert all(s.headers.get("X-Evil") is None for s in server.seen)


# ---- 7. hostile manifests and indexes ----


AMD64 = {"os": "linux", "architecture": "amd64"}


def _desc(data, media_type=OCI_MANIFEST, **fields):
    return dict({"mediaType": media_type, "digest": sha256(data), "size": len(data), "platform": AMD64}, **fields)


def _index(*manifests, **fields):
    return dict({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(manifests)}, **fields)


def _image(**fields):
    return dict({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                 "config": {"mediaType": OCI_CONFIG, "digest": sha256(CONFIG), "size": len(CONFIG)},
                 "layers": []}, **fields)


def _nested(depth):
    """An index nested ``depth`` levels above IMAGE, and every manifest on the way."""
    extra, data = [IMAGE], IMAGE
    for _ in range(depth):
        data = jdump(_index(_desc(data, OCI_INDEX if data is not IMAGE else OCI_MANIFEST)))
        extra.append(data)
    return data, extra[:-1]


def _bad_child(value):
    """An index whose one child (listed correctly) is ``value``."""
    child = jdump(value)
    return jdump(_index(_desc(child))), [child]


HOSTILE_MANIFESTS = [
    # (name, top manifest bytes, other manifests served by digest)
    ("manifests is a dict", jdump(_index(manifests={"digest": sha256(IMAGE)})), []),
    ("manifests is a string", jdump(_index(manifests=sha256(IMAGE))), []),
    ("manifests is null", jdump(_index(manifests=None)), []),
    ("manifests is a number", jdump(_index(manifests=5)), []),
    ("descriptor is a string", jdump(_index(sha256(IMAGE))), []),
    ("descriptor is null", jdump(_index(None)), []),
    ("digest is a number", jdump(_index(_desc(IMAGE, digest=5))), []),
    ("digest is a list", jdump(_index(_desc(IMAGE, digest=[sha256(IMAGE)]))), []),
    ("digest md5", jdump(_index(_desc(IMAGE, digest="md5:" + "0" * 32))), []),
    ("digest sha384", jdump(_index(_desc(IMAGE, digest="sha384:" + "0" * 96))), []),
    ("digest too short", jdump(_index(_desc(IMAGE, digest="sha256:abc"))), []),
    ("digest uppercase", jdump(_index(_desc(IMAGE, digest=sha256(IMAGE).upper()))), []),
    ("digest with path", jdump(_index(_desc(IMAGE, digest="sha256:../../" + "0" * 58))), []),
    ("size negative", jdump(_index(_desc(IMAGE, size=-1))), [IMAGE]),
    ("size a string", jdump(_index(_desc(IMAGE, size=str(len(IMAGE))))), [IMAGE]),
    ("size a float", jdump(_index(_desc(IMAGE, size=len(IMAGE) + 0.5))), [IMAGE]),
    ("size a bool", jdump(_index(_desc(IMAGE, size=True))), [IMAGE]),
    ("size wrong", jdump(_index(_desc(IMAGE, size=len(IMAGE) + 1))), [IMAGE]),
    ("size huge", jdump(_index(_desc(IMAGE, size=10 ** 30))), [IMAGE]),
    ("media type a number", jdump(_image(mediaType=5)), []),
    ("media type a list", jdump(_image(mediaType=[OCI_MANIFEST])), []),
    ("media type an object", jdump(_image(mediaType={"type": OCI_MANIFEST})), []),
    ("child media type a list", *_bad_child(_image(mediaType=[OCI_MANIFEST]))),
    ("child media type a number", *_bad_child(_image(mediaType=7))),
    ("child is a list", *_bad_child([1, 2])),
    ("child config a string", *_bad_child(_image(config="sha256:" + "0" * 64))),
    ("child layers a dict", *_bad_child(_image(layers={"digest": sha256(b"")}))),
    ("child layer a number", *_bad_child(_image(layers=[5]))),
    ("child config size huge", *_bad_child(_image(config={"mediaType": OCI_CONFIG, "digest": sha256(CONFIG),
                                                          "size": 10 ** 30}))),
    ("config a string", jdump(_image(config="x")), []),
    ("layers a string", jdump(_image(layers="x")), []),
    ("layer size negative", jdump(_image(layers=[{"mediaType": zeroimage.OCI_LAYER_GZIP, "digest": sha256(b""),
                                                  "size": -3}])), []),
    ("descriptor media type a list", jdump(_index(_desc(IMAGE, mediaType=[OCI_MANIFEST]))), [IMAGE]),
    ("top is a list", jdump([_desc(IMAGE)]), []),
    ("top is a string", jdump("manifest"), []),
    ("not json", b"\xff\xfe not json", []),
    ("deeply nested json", b"[" * 100000 + b"]" * 100000, []),
    ("indexes nested too deep", *_nested(zeroimage.MAX_INDEX_DEPTH + 2)),
]


def _hostile_registry(servers, top, extra):
    routes = {"/v2/": open_v2, "/v2/a/manifests/1": manifest_route(top, OCI_INDEX),
              "/v2/a/manifests/" + sha256(top): manifest_route(top, OCI_INDEX),
              "/v2/a/blobs/" + sha256(CONFIG): lambda h: h.reply(200, CONFIG),
              "/v2/a/blobs/" + sha256(LAYER): lambda h: h.reply(200, LAYER)}
    for data in extra:
        value = json.loads(data.decode())
        media_type = value.get("mediaType") if isinstance(value, dict) else None
        routes["/v2/a/manifests/" + sha256(data)] = manifest_route(
            data, media_type if isinstance(media_type, str) else OCI_MANIFEST)
    return servers(routes)


def test_the_fake_registry_serves_a_valid_index(servers, tmp_path):
    """Control: a well-formed index on the same fake registry pulls and inspects fine."""
    server = _hostile_registry(servers, jdump(_index(_desc(IMAGE))), [IMAGE])
    r = run_cli("inspect", "--platform", "linux/amd64", "%s/a:1" % server.netloc, env=cli_env(tmp_path), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run_cli("pull", "--platform", "linux/amd64", "-o", tmp_path / "out.tar", "%s/a:1" % server.netloc,
                env=cli_env(tmp_path), cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == sha256(IMAGE), r.stderr


@pytest.mark.parametrize("name, top, extra", HOSTILE_MANIFESTS, ids=[c[0] for c in HOSTILE_MANIFESTS])
def test_hostile_manifest_cli(servers, tmp_path, name, top, extra):
    """inspect and pull of a malformed index or manifest: exit 1, one line, no traceback, nothing written."""
    server = _hostile_registry(servers, top, extra)
    ref = "%s/a:1" % server.netloc
    cli_failed(run_cli("inspect", "--platform", "linux/amd64", ref, env=cli_env(tmp_path), cwd=tmp_path))
    cli_failed(run_cli("pull", "--platform", "linux/amd64", "-o", tmp_path / "out.tar", ref,
                       env=cli_env(tmp_path), cwd=tmp_path))
    cli_failed(run_cli("pull", "--all-platforms", "-o", tmp_path / "all.tar", ref, env=cli_env(tmp_path), cwd=tmp_path))
    assert not (tmp_path / "out.tar").exists() and not (tmp_path / "all.tar").exists()
    assert [p for p in os.listdir(str(tmp_path)) if p.endswith(".tmp")] == []


@pytest.mark.parametrize("name, top, extra", HOSTILE_MANIFESTS, ids=[c[0] for c in HOSTILE_MANIFESTS])
def test_hostile_manifest_library(servers, env, tmp_path, name, top, extra):
    """The library raises a ZeroImageError (never another exception) for the same manifests."""
    server = _hostile_registry(servers, top, extra)
    with zeroimage.Session(env) as session:
        with pytest.raises(zeroimage.ZeroImageError):
            zeroimage.inspect("%s/a:1" % server.netloc, platform=zeroimage.Platform.parse("linux/amd64"),
                              session=session)
        with pytest.raises(zeroimage.ZeroImageError):
            zeroimage.pull("%s/a:1" % server.netloc, str(tmp_path / "out.tar"), all_platforms=True, session=session)


@pytest.mark.parametrize("body, schema1", [
    (jdump([1, 2]), False),
    (jdump("a string"), False),
    (jdump(None), False),
    (jdump(42), False),
    (jdump({"schemaVersion": 1, "name": "a", "tag": "1", "fsLayers": []}), True),
])
def test_a_manifest_that_is_not_an_object_is_not_called_schema_1(servers, session, body, schema1):
    """A manifest that is not a JSON object is refused as such; only a real schema 1 manifest
    (schemaVersion 1) is called one (telling the user to re-push a JSON list would mislead)."""
    server = servers({"/v2/": open_v2, "/v2/a/manifests/1": manifest_route(body)})
    with pytest.raises(zeroimage.ZeroImageError) as e:
        session.registry(server.netloc).get_manifest("a", "1")
    assert ("schema 1" in str(e.value)) is schema1, str(e.value)


@pytest.mark.parametrize("text, kept, cut", [
    ("refused (GET https://auth.example/token: HTTP 401)", "HTTP 401", None),
    ("the token answer is not a JSON object (GET http://127.0.0.1:5000/token: HTTP 200)", "HTTP 200", None),
    ("(GET https://reg.example/v2/token: HTTP 404)", "HTTP 404", None),
    ("bad token: %s here" % SECRET, "bad token", SECRET),
    ("password=%s" % SECRET, "password", SECRET),
])
def test_redaction_cuts_secrets_but_keeps_the_status(text, kept, cut):
    """outside_text cuts token and password values, but a URL ending in /token followed by ': HTTP 401'
    keeps its status (the realm of every token server ends in /token)."""
    shown = zeroimage.outside_text(text)
    assert kept in shown, shown
    if cut:
        assert cut not in shown, shown


JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJQTEFOVEVEIn0.c2lnbmF0dXJlLXBsYW50ZWQ"


@pytest.mark.parametrize("status", [400, 403, 404, 405])
@pytest.mark.parametrize("message, planted", [
    ("\x1b[31mVISIBLEWORD\x1b[0m: use Bearer %s" % JWT, JWT),
    ("VISIBLEWORD\r\nbearer %sxyz" % SECRET, SECRET),
    ("VISIBLEWORD token=%s; password: %s2" % (SECRET, SECRET), SECRET),
    ("VISIBLEWORD see https://user:%s@host/x?sig=%s2" % (SECRET, SECRET), SECRET),
    ("VISIBLEWORD \x07\x08\x1b]0;title\x07\u202e", "\x07"),
])
def test_registry_error_text_is_escaped_and_redacted(servers, tmp_path, status, message, planted):
    """A registry's error message reaches stderr on one line, escapes and control characters
    escaped, tokens and passwords cut, the rest readable."""
    body = jdump({"errors": [{"code": "DENIED\x1b[5m", "message": message, "detail": {"token": SECRET}}]})
    server = servers({"/v2/": open_v2, "/v2/a/manifests/1": lambda h: h.reply(status, body)})
    for args in (["inspect"], ["pull", "-o", tmp_path / "out.tar"]):
        r = run_cli(*(args + ["--verbose", "%s/a:1" % server.netloc]), env=cli_env(tmp_path), cwd=tmp_path)
        line = cli_failed(r, secrets=(SECRET, JWT, planted))
        assert "VISIBLEWORD" in line, line
        assert "\x07" not in r.stderr and "\u202e" not in r.stderr


ODD_ERROR_BODIES = [
    ("errors an object", jdump({"errors": {"code": "X", "message": "VISIBLEWORD"}})),
    ("fields not strings", jdump({"errors": [{"code": ["X"], "message": {"m": "VISIBLEWORD"}}]})),
    ("entries not objects", jdump({"errors": [None, 5, "x"]})),
    ("many long errors", jdump({"errors": [{"code": "X", "message": "m" * 2000}] * 50})),
    ("over the size cap", b'{"errors": [{"code": "X", "message": "' + b"m" * (zeroimage.MAX_ERROR_BODY + 10) + b'"}]}'),
    ("a list", jdump([{"errors": []}])),
    ("not utf-8", b"\xff\xfe"),
    ("empty", b""),
]


@pytest.mark.parametrize("name, body", ODD_ERROR_BODIES, ids=[n for n, _ in ODD_ERROR_BODIES])
def test_odd_error_bodies_are_one_line(servers, tmp_path, name, body):
    """Error bodies of any shape give one short error line."""
    server = servers({"/v2/": open_v2, "/v2/a/manifests/1": lambda h: h.reply(400, body)})
    r = run_cli("inspect", "%s/a:1" % server.netloc, env=cli_env(tmp_path), cwd=tmp_path)
    line = cli_failed(r)
    assert len(line) < 1500, len(line)


# ---- 8. digests: every registered algorithm verified, others refused ----


BLAKE3_VECTORS = [
    # (input length, BLAKE3 of bytes(i % 251 for i in range(length))), as BLAKE3's test vectors and b3sum give
    (0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"),
    (1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"),
    (64, "4eed7141ea4a5cd4b788606bd23f46e212af9cacebacdc7d1f4c6dc7f2511b98"),
    (65, "de1e5fa0be70df6d2be8fffd0e99ceaa8eb6e8c93a63f2d8d1c30ecb6b263dee"),
    (1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"),
    (1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"),
    (1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"),
    (2048, "e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a"),
    (2049, "5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b6879522563030"),
    (3073, "7124b49501012f81cc7f11ca069ec9226cecb8a2c850cfe644e327d22d3e1cd3"),
    (4097, "9b4052b38f1c5fc8b1f9ff7ac7b27cd242487b3d890d15c96a1c25b8aa0fb995"),
    (8193, "bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b"),
    (16385, "1dabe216be2578830263b049de1639f39f05a4da616b9b78c7a5e4e41662fd1f"),
    (31744, "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47"),
]


@pytest.mark.parametrize("length, expected", BLAKE3_VECTORS)
def test_blake3_matches_the_reference_vectors(length, expected):
    """The built-in BLAKE3 gives the reference hashes, however the input is split into updates."""
    data = bytes(i % 251 for i in range(length))
    for piece in (max(length, 1), 1, 7, 64, 1024, 1025):
        h = zeroimage._Blake3()
        for start in range(0, length, piece):
            h.update(data[start:start + piece])
        assert h.hexdigest() == expected, piece


def _by_digest_server(servers, digest, data, headers=()):
    return servers({"/v2/": open_v2, "/v2/a/manifests/" + digest: manifest_route(data, headers=headers)})


@pytest.mark.parametrize("algorithm", ["sha256", "sha512", "blake3"])
def test_manifest_by_digest_is_verified_with_its_algorithm(servers, session, algorithm):
    """A manifest asked for by a sha256, sha512 or blake3 digest is hashed with that algorithm:
    the right bytes pass, other bytes are a DigestMismatchError."""
    if algorithm == "blake3":
        digest = blake3(MANIFEST)
    else:
        digest = "%s:%s" % (algorithm, hashlib.new(algorithm, MANIFEST).hexdigest())
    server = _by_digest_server(servers, digest, MANIFEST)
    data, media_type, got = session.registry(server.netloc).get_manifest("a", digest)
    assert (data, media_type, got) == (MANIFEST, OCI_MANIFEST, digest)

    tampered = MANIFEST.replace(b'"layers": []', b'"layers": [] ')
    assert tampered != MANIFEST
    server = _by_digest_server(servers, digest, tampered, [("Docker-Content-Digest", sha256(tampered))])
    with pytest.raises(zeroimage.DigestMismatchError) as e:
        session.registry(server.netloc).get_manifest("a", digest)
    assert e.value.expected == digest


@pytest.mark.parametrize("header", [
    lambda data: "sha512:" + hashlib.sha512(data + b"x").hexdigest(),
    lambda data: blake3(data + b"x"),
    lambda data: sha256(data + b"x"),
])
def test_docker_content_digest_of_any_algorithm_is_checked(servers, session, header):
    """The Docker-Content-Digest a registry states is checked with its own algorithm."""
    server = servers({"/v2/": open_v2, "/v2/a/manifests/1": manifest_route(
        MANIFEST, headers=[("Docker-Content-Digest", header(MANIFEST))])})
    with pytest.raises(zeroimage.DigestMismatchError):
        session.registry(server.netloc).get_manifest("a", "1")


UNVERIFIABLE = [
    ("md5:" + "0" * 32, "md5"),
    ("sha384:" + "0" * 96, "sha384"),
    ("sha1:" + "0" * 40, "sha1"),
    ("sha256:" + "A" * 64, "hex"),
    ("sha256:" + "0" * 63, "hex"),
    ("sha512:" + "0" * 64, "hex"),
]


@pytest.mark.parametrize("digest, word", UNVERIFIABLE)
def test_unverifiable_digest_is_refused_before_any_request(servers, session, digest, word):
    """A digest zeroimage cannot verify is refused, naming the problem, before any request."""
    server = servers({"/v2/": open_v2})
    with pytest.raises(zeroimage.ZeroImageError) as e:
        session.registry(server.netloc).get_manifest("a", digest)
    assert word in str(e.value)
    assert server.paths("/v2/a/") == []


@pytest.mark.parametrize("digest, word", UNVERIFIABLE)
def test_unverifiable_digest_reference_cli(servers, tmp_path, digest, word):
    """inspect and pull of REPO@md5:... (and other digests it cannot verify): exit 1 or 2, a message
    naming the algorithm, and no manifest request."""
    server = servers({"/v2/": open_v2})
    ref = "%s/a@%s" % (server.netloc, digest)
    for args in (["inspect", ref], ["pull", "-o", tmp_path / "out.tar", ref]):
        r = run_cli(*args, env=cli_env(tmp_path), cwd=tmp_path)
        line = cli_failed(r, code=r.returncode if r.returncode in (1, 2) else 1)
        assert word in line, line
    assert server.paths("/v2/a/") == []


# ---- 9. credential helpers, hostile ----


def write_program(directory, name, body):
    """An executable python script ``directory/name`` (directories made as needed)."""
    path = os.path.join(str(directory), name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("#!%s\n%s" % (sys.executable, body))
    os.chmod(path, 0o755)
    return path


def write_config(env, config):
    with open(os.path.join(env["DOCKER_CONFIG"], "config.json"), "w") as f:
        json.dump(config, f)


def capture_display():
    stream = io.StringIO()
    return zeroimage.Display(stream, "plain"), stream


@pytest.fixture
def trap(tmp_path, monkeypatch):
    """A working directory holding programs that a helper name escaping its prefix would run; each
    leaves a marker file when run. Yields (workdir, marker)."""
    work = tmp_path / "work"
    work.mkdir()
    marker = tmp_path / "MARKER"
    body = ("import sys\nopen(%r, 'a').write(' '.join(sys.argv) + '\\n')\n"
            "print('{\"Username\":\"u\",\"Secret\":\"s\"}')\n" % str(marker))
    for name in ("docker-credential-../evil", "docker-credential-sub/dir", "sub/dir", "docker-credential-./evil",
                 "evil", "docker-credential-.evil"):
        write_program(work, name, body)
    monkeypatch.chdir(str(work))
    return work, marker


HOSTILE_HELPER_NAMES = ["../evil", "sub/dir", "./evil", "../../../../bin/sh", "/bin/sh", "a b", "x\ny", "-evil",
                        ".evil", 5, ["evil"], {"name": "evil"}]


@pytest.mark.parametrize("name", HOSTILE_HELPER_NAMES)
@pytest.mark.parametrize("where", ["credsStore", "credHelpers"])
def test_a_helper_name_that_is_not_a_plain_name_is_never_run(trap, env, name, where):
    """credsStore/credHelpers naming a path (or anything not a plain name) never runs a program: the
    lookup warns, naming the bad helper, and falls back to auths."""
    work, marker = trap
    env = dict(env, PATH="%s:%s" % (work, env["PATH"]))
    config = {"auths": {"reg.example.com": {"auth": b64("file:pw")}}}
    if where == "credsStore":
        config["credsStore"] = name
    else:
        config["credHelpers"] = {"reg.example.com": name}
    write_config(env, config)
    display, stream = capture_display()
    assert zeroimage.resolve_credentials("reg.example.com", env, display) == Credentials("file", "pw")
    assert not marker.exists(), marker.read_text()
    if isinstance(name, str):
        assert zeroimage.outside_text(repr(name), 100) in stream.getvalue(), stream.getvalue()
    assert "warning" in stream.getvalue()
    with pytest.raises(zeroimage.CredentialError):
        zeroimage.store_credentials("reg.example.com", Credentials("u", "p"), env)
    with pytest.raises(zeroimage.CredentialError):
        zeroimage.erase_credentials("reg.example.com", env)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../evil", "sub/dir", "./evil"])
def test_run_credential_helper_refuses_paths(trap, env, name):
    """run_credential_helper itself refuses a name with a path in it."""
    work, marker = trap
    with pytest.raises(zeroimage.CredentialError, match="not a plain name"):
        zeroimage.run_credential_helper(name, "get", "reg.example.com", dict(env, PATH=str(work)))
    assert not marker.exists()


@pytest.mark.parametrize("config, bad", [
    ({"credsStore": "../evil"}, "../evil"),
    ({"credHelpers": {"HOST": "sub/dir"}}, "sub/dir"),
])
def test_hostile_helper_cli(trap, servers, tmp_path, config, bad):
    """Through the CLI: inspect warns naming the bad helper and goes on without credentials; logout
    fails with one line naming it; nothing is run."""
    work, marker = trap
    server = servers({"/v2/": lambda h: h.reply(401, b"{}", [("WWW-Authenticate", 'Basic realm="test"')]),
                      "/v2/a/manifests/1": lambda h: h.reply(401, b"{}", [("WWW-Authenticate", 'Basic realm="test"')])})
    env = cli_env(tmp_path, PATH="%s:%s" % (work, os.environ.get("PATH", os.defpath)))
    text = json.dumps(config).replace("HOST", server.netloc)
    (tmp_path / "docker" / "config.json").write_text(text)
    r = run_cli("inspect", "%s/a:1" % server.netloc, env=env, cwd=str(work))
    cli_failed(r)
    assert "warning" in r.stderr and bad in r.stderr, r.stderr
    r = run_cli("logout", server.netloc, env=env, cwd=str(work))
    line = cli_failed(r)
    assert bad in line, line
    assert not marker.exists(), marker.read_text()


LOUD = "import sys\nsys.stdin.read()\nsys.{stream}.write('x' * (3 * 1024 * 1024))\nsys.{stream}.flush()\n"


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_a_helper_that_says_megabytes_is_cut_off(tmp_path, env, monkeypatch, stream):
    """A helper answering more than MAX_HELPER_OUTPUT bytes fails with a short CredentialError
    ('more than'), well before the timeout; resolve_credentials warns in one short line and falls back."""
    monkeypatch.setattr(zeroimage, "HELPER_TIMEOUT", 60.0)
    bin_dir = tmp_path / "bin"
    write_program(bin_dir, "docker-credential-loud", LOUD.format(stream=stream))
    env = dict(env, PATH="%s:%s" % (bin_dir, env["PATH"]))
    started = time.monotonic()
    with pytest.raises(zeroimage.CredentialError) as e:
        zeroimage.run_credential_helper("loud", "get", "reg.example.com", env)
    assert "more than" in str(e.value) and len(str(e.value)) < 300
    assert time.monotonic() - started < 50, "stopped on size, not by the timeout"
    write_config(env, {"credsStore": "loud", "auths": {"reg.example.com": {"auth": b64("file:pw")}}})
    display, out = capture_display()
    assert zeroimage.resolve_credentials("reg.example.com", env, display) == Credentials("file", "pw")
    shown = out.getvalue()
    assert "more than" in shown and len(shown) < 2000 and "xxxxxxxxxx" not in shown, shown[:300]


def test_a_helper_that_never_answers_times_out(tmp_path, env, monkeypatch):
    """A helper that never exits is killed after HELPER_TIMEOUT: CredentialError 'did not ...'."""
    monkeypatch.setattr(zeroimage, "HELPER_TIMEOUT", 1.0)
    bin_dir = tmp_path / "bin"
    write_program(bin_dir, "docker-credential-stuck", "import time\ntime.sleep(3600)\n")
    env = dict(env, PATH="%s:%s" % (bin_dir, env["PATH"]))
    started = time.monotonic()
    with pytest.raises(zeroimage.CredentialError, match="did not"):
        zeroimage.run_credential_helper("stuck", "get", "reg.example.com", env)
    assert time.monotonic() - started < 15


def test_a_helper_that_answers_then_hangs_times_out(tmp_path, env, monkeypatch):
    """A helper that answers but never exits (nor closes its output) is killed after HELPER_TIMEOUT."""
    monkeypatch.setattr(zeroimage, "HELPER_TIMEOUT", 1.0)
    bin_dir = tmp_path / "bin"
    write_program(bin_dir, "docker-credential-lingers", "import sys, time\nsys.stdin.read()\n"
                  "sys.stdout.write('{\"Username\":\"u\",\"Secret\":\"s\"}')\nsys.stdout.flush()\ntime.sleep(3600)\n")
    env = dict(env, PATH="%s:%s" % (bin_dir, env["PATH"]))
    started = time.monotonic()
    with pytest.raises(zeroimage.CredentialError, match="did not"):
        zeroimage.run_credential_helper("lingers", "get", "reg.example.com", env)
    assert time.monotonic() - started < 15


@pytest.mark.parametrize("answer", [
    "not json at all " + SECRET,
    json.dumps({"Username": 5, "Secret": SECRET}),
    json.dumps({"Username": "u", "Secret": [SECRET]}),
    json.dumps({"Username": "u", "Secret": {"value": SECRET}}),
    json.dumps([{"Username": "u", "Secret": SECRET}]),
    json.dumps(SECRET),
    "{\"Username\": \"u\", \"Secret\": \"" + SECRET + "\"",
])
def test_a_helper_answering_nonsense_is_a_warning_and_a_fallback(tmp_path, env, answer):
    """A helper answer that is not {"Username": str, "Secret": str} is a warning naming the helper, never
    showing the answer; the lookup goes on to auths."""
    bin_dir = tmp_path / "bin"
    write_program(bin_dir, "docker-credential-odd", "import sys\nsys.stdin.read()\nsys.stdout.write(%r)\n" % answer)
    env = dict(env, PATH="%s:%s" % (bin_dir, env["PATH"]))
    write_config(env, {"credsStore": "odd", "auths": {"reg.example.com": {"auth": b64("file:pw")}}})
    display, out = capture_display()
    assert zeroimage.resolve_credentials("reg.example.com", env, display) == Credentials("file", "pw")
    shown = out.getvalue()
    assert "docker-credential-odd" in shown and SECRET not in shown, shown


def test_a_failing_helper_does_not_show_its_output(tmp_path, env):
    """A helper that fails (printing secrets on its way out) gives an error that does not repeat them."""
    bin_dir = tmp_path / "bin"
    write_program(bin_dir, "docker-credential-fails", "import sys\nsys.stdin.read()\nprint(%r)\n"
                  "sys.stderr.write(%r)\nsys.exit(3)\n" % (SECRET, SECRET))
    env = dict(env, PATH="%s:%s" % (bin_dir, env["PATH"]))
    with pytest.raises(zeroimage.CredentialError) as e:
        zeroimage.run_credential_helper("fails", "get", "reg.example.com", env)
    assert SECRET not in str(e.value) and "exit 3" in str(e.value)


# ---- 10. auths: which key a registry's credentials are under ----


@pytest.mark.parametrize("auths, host, expected", [
    # the exact key wins over a URL spelling of the same host, whatever the order
    ({"https://reg.example.com/v1/": {"auth": b64("A:a")}, "reg.example.com": {"auth": b64("B:b")}},
     "reg.example.com", Credentials("B", "b")),
    ({"reg.example.com": {"auth": b64("B:b")}, "https://reg.example.com/v1/": {"auth": b64("A:a")}},
     "reg.example.com", Credentials("B", "b")),
    ({"http://reg.example.com": {"auth": b64("A:a")}, "reg.example.com": {"username": "B", "password": "b"}},
     "reg.example.com", Credentials("B", "b")),
    # a key with a path names its host
    ({"reg.example.com/some/path": {"auth": b64("P:p")}}, "reg.example.com", Credentials("P", "p")),
    ({"https://reg.example.com/some/path/": {"auth": b64("P:p")}}, "reg.example.com", Credentials("P", "p")),
    # Docker Hub's legacy key, and its other names
    ({"https://index.docker.io/v1/": {"auth": b64("hub:h")}}, "docker.io", Credentials("hub", "h")),
    ({"index.docker.io": {"auth": b64("hub:h")}}, "docker.io", Credentials("hub", "h")),
    ({"registry-1.docker.io": {"auth": b64("hub:h")}}, "docker.io", Credentials("hub", "h")),
    ({"docker.io": {"auth": b64("x:1")}, "https://index.docker.io/v1/": {"auth": b64("hub:h")}},
     "docker.io", Credentials("hub", "h")),
    # other hosts and ports are other registries
    ({"reg.example.com:5000": {"auth": b64("port:p")}}, "reg.example.com", None),
    ({"reg.example.com": {"auth": b64("noport:p")}}, "reg.example.com:5000", None),
    ({"evilreg.example.com": {"auth": b64("E:e")}}, "reg.example.com", None),
    ({"reg.example.com.evil.net": {"auth": b64("E:e")}}, "reg.example.com", None),
    ({"https://evil.net/reg.example.com": {"auth": b64("E:e")}}, "reg.example.com", None),
    ({"example.com": {"auth": b64("E:e")}}, "reg.example.com", None),
    # keys and entries that are not usable are skipped
    ({"bad key with spaces": {"auth": b64("E:e")}, "https://reg.example.com/v2/": {"auth": b64("B:b")}},
     "reg.example.com", Credentials("B", "b")),
    ({"": {"auth": b64("E:e")}, "https://": {"auth": b64("E:e")}, "reg.example.com/x": {"auth": b64("B:b")}},
     "reg.example.com", Credentials("B", "b")),
    ({"reg.example.com": "not an object"}, "reg.example.com", None),
    ({"reg.example.com": {"auth": None}}, "reg.example.com", None),
    ({"reg.example.com": {"auth": ""}}, "reg.example.com", None),
    ({"reg.example.com": {}}, "reg.example.com", None),
])
def test_auths_key_matching(env, auths, host, expected):
    """The auths entry for a registry: its exact key first, else a key naming the same host (scheme and
    path dropped, as Docker does); never another host or port."""
    write_config(env, {"auths": auths})
    assert zeroimage.resolve_credentials(host, env) == expected


@pytest.mark.parametrize("entry", [
    {"auth": 5},
    {"auth": ["dTpw"]},
    {"auth": {"user": "u"}},
    {"auth": True},
    {"auth": "!!!not base64!!!"},
    {"auth": base64.b64encode(b"\xff\xfe:" + SECRET.encode()).decode()},
    {"username": 5, "password": SECRET},
    {"username": "u", "password": [SECRET]},
    {"identitytoken": {"t": SECRET}},
    {"registrytoken": 42},
])
def test_auths_entry_with_wrong_types_is_a_credential_error(env, entry):
    """An auths entry whose fields are not strings (or not base64 of user:password) is a CredentialError
    that does not show the secret."""
    write_config(env, {"auths": {"reg.example.com": entry}})
    with pytest.raises(zeroimage.CredentialError) as e:
        zeroimage.resolve_credentials("reg.example.com", env)
    assert SECRET not in str(e.value)


@pytest.mark.parametrize("config", [
    {"auths": []},
    {"auths": "x"},
    {"auths": None},
    {"credHelpers": []},
    {"credHelpers": "x"},
    {"credsStore": None},
    {"credsStore": ""},
])
def test_config_sections_of_the_wrong_shape_are_ignored(env, config):
    """auths or credHelpers that are not objects, and empty credsStore, mean none."""
    write_config(env, config)
    assert zeroimage.resolve_credentials("reg.example.com", env) is None


@pytest.mark.parametrize("text", ["[]", "5", "null", "\"x\"", "{", "\xff"])
def test_config_json_that_is_not_an_object_is_a_credential_error(env, text):
    """A config.json that is not a JSON object is a CredentialError naming the file."""
    with open(os.path.join(env["DOCKER_CONFIG"], "config.json"), "w", encoding="latin-1") as f:
        f.write(text)
    with pytest.raises(zeroimage.CredentialError, match="config.json"):
        zeroimage.resolve_credentials("reg.example.com", env)


# ---- 11. answers that break off, URLs and headers HTTP cannot carry, what errors name ----


def _chunked_cut(h):
    """A chunked answer that promises a chunk and hangs up half-way."""
    h.send_response(200)
    h.send_header("Content-Type", OCI_MANIFEST)
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    h.wfile.write(b"400\r\n" + MANIFEST[:20])
    h.wfile.flush()
    h.close_connection = True


def _length_cut(h):
    """A Content-Length answer that sends half and hangs up."""
    h.send_response(200)
    h.send_header("Content-Type", OCI_MANIFEST)
    h.send_header("Content-Length", str(len(MANIFEST)))
    h.end_headers()
    h.wfile.write(MANIFEST[:20])
    h.wfile.flush()
    h.close_connection = True


def _bad_chunk_line(h):
    h.send_response(200)
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    h.wfile.write(b"zz-not-hex\r\n")
    h.wfile.flush()
    h.close_connection = True


@pytest.mark.parametrize("route", [_chunked_cut, _length_cut, _bad_chunk_line], ids=["chunk", "length", "chunk-line"])
def test_an_answer_that_breaks_off_is_a_network_error(servers, session, tmp_path, route):
    """A manifest (or any small answer) cut short is a NetworkError naming the host: in the library, and
    as one line from the CLI; the broken connection is never used again."""
    server = servers({"/v2/": open_v2, "/v2/a/manifests/1": route})
    with pytest.raises(zeroimage.NetworkError, match="broke off"):
        session.registry(server.netloc).get_manifest("a", "1")
    assert not session.transport._idle.get(("http", server.netloc)), "a broken connection went back to the pool"
    cli_failed(run_cli("inspect", server.netloc + "/a:1", env=cli_env(tmp_path)))


@pytest.mark.parametrize("location", [
    "http://[bad/x", "http://127.0.0.1:99999/x", "/path with space?X-Amz-Signature=" + SECRET,
    "/caf\u00e9?sig=" + SECRET, "http://a\tb/", "/" + "x" * 9000,
])
def test_a_redirect_http_cannot_carry_is_refused_at_once(servers, session, location):
    """A Location that is not a URL zeroimage can request is refused in one line, with no retries and
    nothing of its query shown."""
    server = servers({"/v2/": open_v2, "/v2/a/manifests/1": lambda h: h.reply(302, headers=[("Location", location)])})
    with pytest.raises(zeroimage.RegistryError) as e:
        session.registry(server.netloc).get_manifest("a", "1")
    assert "refusing to follow a redirect" in str(e.value) and SECRET not in str(e.value)
    assert server.paths("/v2/a/").count("/v2/a/manifests/1") == 1, "no retry of a hopeless redirect"


@pytest.mark.parametrize("value", ["\u00b2", "-5", "1e3", "Mon, 99 Foo 2026", "9" * 40])
def test_odd_retry_after_values_are_ignored(servers, session, value):
    answers = [503, 200]
    server = servers({"/x": lambda h: h.reply(answers.pop(0), b"ok", [("Retry-After", value)])})
    with session.transport.request("GET", server.url + "/x") as r:
        assert r.status == 200 and r.read() == b"ok"


def test_an_unreachable_redirect_target_is_named(servers, session):
    """The error names the host that could not be reached (the CDN), not the registry that sent there."""
    server = servers({"/blob": lambda h: h.reply(307, headers=[("Location", "http://cdn.invalid/blob?sig=1")])})
    with pytest.raises(zeroimage.NetworkError) as e:
        session.transport.request("GET", server.url + "/blob")
    assert "cdn.invalid" in str(e.value) and "sig=1" not in str(e.value)


def test_platforms_with_escapes_never_reach_the_terminal(servers, tmp_path):
    """An index entry whose platform holds control characters has no platform (its config's counts):
    the characters are never printed."""
    evil = dict(_desc(IMAGE), platform={"os": "linux\x1b]0;pwned\x07", "architecture": "arm64"})
    top = jdump(_index(evil, _desc(IMAGE)))
    server = _hostile_registry(servers, top, [IMAGE])
    r = run_cli("inspect", "--platform", "linux/amd64", server.netloc + "/a:1", env=cli_env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "pwned" not in r.stdout, r.stdout


def test_a_proxy_that_asks_for_credentials_says_so(servers):
    """407 from a plain-HTTP proxy: one line naming the proxy and where its credentials go."""
    target = "http://registry.example:5000/v2/"
    proxy = servers({target: lambda h: h.reply(407, b"", [("Proxy-Authenticate", 'Basic realm="p"')])})
    with zeroimage.Session({"http_proxy": proxy.netloc}) as session:
        with pytest.raises(zeroimage.NetworkError, match="asks for credentials") as raised:
            session.transport.request("GET", target)
    line = zeroimage.outside_text(str(raised.value), 4000)      # as it is printed: nothing of the advice cut
    assert "write them into http_proxy's URL before the host, as user:password and an @ sign" in line, line
    with zeroimage.Session({"HTTP_PROXY": "user:wrong@" + proxy.netloc, "http_proxy": ""}) as session:
        with pytest.raises(zeroimage.NetworkError, match="refused those given") as raised:
            session.transport.request("GET", target)
    assert "wrong" not in zeroimage.outside_text(str(raised.value), 4000)


def test_an_empty_blob_with_a_wrong_digest_leaves_no_connection_busy(servers, session):
    empty = sha256(b"x")
    server = servers({"/v2/": open_v2, "/v2/a/blobs/" + empty: lambda h: h.reply(200, b"")})
    registry = session.registry(server.netloc)
    for _ in range(3):
        with pytest.raises(zeroimage.DigestMismatchError):
            registry.open_blob("a", empty, 0)
    assert not session.transport._busy


@pytest.mark.parametrize("content_type", ["application/json", "application/octet-stream", "text/plain", ""])
@pytest.mark.parametrize("body, kind", [
    ({"schemaVersion": 2, "config": {"mediaType": OCI_CONFIG, "digest": sha256(b"{}"), "size": 2}, "layers": []},
     OCI_MANIFEST),
    ({"schemaVersion": 2, "manifests": []}, "application/vnd.oci.image.index.v1+json"),
])
def test_an_oci_manifest_without_its_type_served_as_plain_json_is_read(servers, session, content_type, body, kind):
    """An OCI manifest need not carry mediaType, and some registries serve one with a generic
    Content-Type: its fields say what it is."""
    data = jdump(body)
    server = servers({"/v2/": open_v2, "/v2/a/manifests/1": manifest_route(data, content_type)})
    got, media_type, digest = session.registry(server.netloc).get_manifest("a", "1")
    assert (got, media_type, digest) == (data, kind, sha256(data))


def test_challenges_in_two_headers_are_both_read(servers, session):
    """Basic and Bearer in two WWW-Authenticate headers (RFC 9110 allows it): Bearer is chosen, as
    when they come in one header."""
    holder = {}

    def challenge(h):
        h.reply(401, b"{}", [("WWW-Authenticate", 'Basic realm="r"'),
                             ("WWW-Authenticate", 'Bearer realm="%s/token",service="svc"' % holder["s"].url)])

    def manifest(h):
        if h.headers.get("Authorization") == "Bearer T1":
            return manifest_route(MANIFEST)(h)
        challenge(h)
    holder["s"] = servers({"/v2/": challenge, "/token": lambda h: h.reply(200, jdump({"token": "T1"})),
                           "/v2/a/manifests/1": manifest})
    data, _, _ = session.registry(holder["s"].netloc).get_manifest("a", "1")
    assert data == MANIFEST


# ---- No secret in any message: userinfo anywhere (issue 21, rule 5) ----

@pytest.mark.parametrize("text", [
    "cannot reach http://user:PLANTEDSECRET@127.0.0.1:1/v2/ (PUT)",
    "invalid reference 'user:PLANTEDSECRET@127.0.0.1:5000/x:1'",
    "invalid reference 'user:PLANTEDSECRET@registry.example/x'",
    "proxy user:PLANTEDSECRET@proxy.example:3128: refused",
    "redirect to https://PLANTEDSECRET@cdn.example/blob?X-Amz-Signature=PLANTEDSECRET",
    "the realm user:PLANTEDSECRET@[::1]:5000/token",
])
def test_userinfo_is_redacted_from_every_message(text):
    assert SECRET not in zeroimage.outside_text(text)


@pytest.mark.parametrize("text", [
    "busybox:1@sha256:" + "0" * 64, "127.0.0.1:5000/x:1@sha256:" + "ab" * 32, "app:latest@sha256:" + "a" * 64,
])
def test_a_reference_with_tag_and_digest_is_not_taken_for_userinfo(text):
    assert zeroimage.outside_text(text) == text


@pytest.mark.parametrize("url", ["http://user:PLANTEDSECRET@127.0.0.1:1/v2/a/blobs/uploads/1",
                                 "https://PLANTEDSECRET@example.com/x", "http://:PLANTEDSECRET@h/"])
def test_a_url_from_outside_with_userinfo_is_never_requested(url):
    assert "user name or password" in zeroimage.url_problem(url)


def test_an_upload_location_with_userinfo_is_refused_without_showing_it(servers, tmp_path):
    """A registry hands out an upload Location with credentials in it: not followed, not printed."""
    server = servers({"/v2/": lambda h: h.reply(200, b"{}"),
                      "/v2/a/blobs/": lambda h: h.reply(404, b"{}"),
                      "/v2/a/blobs/uploads/": lambda h: h.reply(202, b"", [
                          ("Location", "http://user:%s@127.0.0.1:1/v2/a/blobs/uploads/x" % SECRET)])})
    with zeroimage.Session({"DOCKER_CONFIG": str(tmp_path), "no_proxy": "*"}) as session:
        registry = session.registry(server.netloc)
        with pytest.raises(zeroimage.RegistryError) as caught:
            registry.start_upload("a", [zeroimage.push_scope("a")])
    assert "without a usable Location" in str(caught.value) and SECRET not in str(caught.value)


@pytest.mark.parametrize("argv", [["inspect", "user:PLANTEDSECRET@127.0.0.1:1/x:1"],
                                  ["build", "--push", "user:PLANTEDSECRET@127.0.0.1:1/x:1", "/bin/true"],
                                  ["tags", "user:PLANTEDSECRET@127.0.0.1:1/x"]])
def test_credentials_in_a_reference_are_refused_and_never_shown(tmp_path, argv):
    r = run_cli(*argv, env=cli_env(tmp_path))
    assert r.returncode == 2 and SECRET not in r.stderr + r.stdout and "Traceback" not in r.stderr
    assert "carries no user or password" in r.stderr


# ---- JSON as Go reads it: what it would read otherwise, or not at all, is refused (issue 21, rule 3) ----

@pytest.mark.parametrize("document, words", [
    (b'{"x": NaN}', "NaN is not a JSON number"),
    (b'{"x": -Infinity}', "Infinity is not a JSON number"),
    (b'{"x": 1e999}', "too large for a float"),
    (b'{"size": ' + b"9" * 5000 + b'}', "a number of 5000 digits"),
    (b'{"a": 1, "a": 2}', "a key appears twice"),
    (b'{"User": "1000", "user": "0"}', "differ only in case"),
    (b'{"rootfs": {}, "RootFS": {}}', "differ only in case"),
])
def test_json_that_go_reads_otherwise_is_refused(document, words):
    with pytest.raises(zeroimage.ArchiveError, match=words):
        zeroimage.parse_json(document, "the config")


def test_labels_may_differ_in_case_only_spec_fields_may_not():
    assert zeroimage.parse_json(b'{"Labels": {"A": "1", "a": "2"}}', "the config") == {"Labels": {"A": "1", "a": "2"}}


# ---- from the second hunt (issue 21): each a member of a class the rules name ----


@pytest.mark.parametrize("echo", ["password", "basic", "token"])
def test_a_registry_that_echoes_the_secrets_it_was_sent_never_gets_them_printed(servers, tmp_path, echo):
    """The password, the Basic string or the bearer token a registry got, said back in its error: cut
    out word for word (they look like nothing the patterns know: 'pa55w0rd', 's3cr3t-t0k3n')."""
    password, token = "pa55w0rd", "s3cr3t-t0k3n"
    said = {"password": "user:password alice:" + password, "basic": "got " + b64("alice:" + password),
            "token": "token %s is not allowed" % token}[echo]

    def v2(h):
        if echo == "token":
            h.reply(401, b"", [("WWW-Authenticate", 'Bearer realm="http://%s/token",service="s"' % h.headers["Host"])])
        else:
            h.reply(401, b"", [("WWW-Authenticate", 'Basic realm="r"')])

    def denied(h):
        if not h.headers.get("Authorization"):
            return v2(h)
        h.reply(403, jdump({"errors": [{"code": "DENIED", "message": said}]}))
    server = servers({"/v2/": v2, "/token": lambda h: h.reply(200, jdump({"token": token})),
                      "/v2/a/manifests/1": denied})
    env = cli_env(tmp_path)
    with open(os.path.join(env["DOCKER_CONFIG"], "config.json"), "w") as f:
        json.dump({"auths": {server.netloc: {"auth": b64("alice:" + password)}}}, f)
    line = cli_failed(run_cli("inspect", server.netloc + "/a:1", env=env), secrets=(password, token, b64("alice:" + password)))
    assert "<redacted>" in line and "DENIED" in line, line


def test_json_too_deep_for_python_is_damaged_wherever_it_enters(tmp_path):
    """A credential helper's answer, an engine's error body, a layer cache entry: 100,000 '[' are not
    a RecursionError traceback but what each says of JSON that is not JSON."""
    deep = b"[" * 100000
    helper = tmp_path / "docker-credential-deep"
    helper.write_text("#!/bin/sh\nhead -c 100000 /dev/zero | tr '\\0' '['\n")
    helper.chmod(0o755)
    with pytest.raises(zeroimage.CredentialError, match="answered something that is not"):
        zeroimage._helper_credentials("deep", "example.com", dict(os.environ, PATH="%s:%s" % (tmp_path, os.environ["PATH"])),
                                      "config.json")
    assert zeroimage._engine_message(deep).startswith("[[[")
    cache = zeroimage.LayerCache(str(tmp_path / "cache"))
    os.makedirs(cache.directory, exist_ok=True)
    with open(os.path.join(cache.directory, "k"), "wb") as f:
        f.write(deep[:3000])
    assert cache.get("k") is None


def test_a_token_lifetime_past_any_float_is_capped():
    assert zeroimage._token_lifetime(10 ** 400) == zeroimage.MAX_TOKEN_LIFETIME
    assert zeroimage._token_lifetime(-10 ** 400) == zeroimage.DEFAULT_TOKEN_LIFETIME


@pytest.mark.parametrize("address", ["tcp://[::1", "http://[zz", "tcp://[::1]:99999999999"])
def test_a_docker_host_that_is_no_address_is_one_line(address):
    with pytest.raises(zeroimage.ZeroImageError):
        zeroimage._engine_connection(address, 1.0)


def test_a_closed_stdout_is_said_not_a_traceback_nor_silence(tmp_path):
    """`zeroimage ... >&-`: what it prints would vanish (or end in AttributeError): one line, exit 1."""
    for argv in (["--version"], ["digest", tmp_path / "x.tar"], ["inspect", "--raw", tmp_path / "x.tar"]):
        r = subprocess.run([sys.executable, MODULE] + [str(a) for a in argv], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=60,
                           preexec_fn=lambda: os.close(1))
        assert r.returncode == 1 and r.stderr == "zeroimage: error: standard output is closed; redirect it " \
                                                  "(>/dev/null) instead\n", (argv, r.stderr)


@pytest.mark.parametrize("text", ["[" * 100000, "a." * 50000, "a:" * 50000, "a:[" * 40000, "http://" * 20000,
                                  "x " * 100000, "Bearer " + "t" * 200000], ids=lambda text: repr(text[:8]))
@pytest.mark.parametrize("limit", [300, 4000])
def test_the_cleaner_of_outside_text_reads_a_bounded_text(monkeypatch, text, limit):
    """outside_text's patterns may look far ahead from every place they start, so a long text of the
    kind that makes them do so ("[[[[..." took 40 s once) is cut, between words, a little past what is
    shown, before they see it: what they are given is bounded whatever the text's length."""
    seen = []

    class Recording:
        def __init__(self, pattern):
            self.pattern = pattern

        def sub(self, replacement, text):
            seen.append(len(text))
            return self.pattern.sub(replacement, text)

    for name in ("_URL_IN_TEXT_RE", "_USERINFO_IN_TEXT_RE", "_JWT_IN_TEXT_RE", "_PREFIXED_TOKEN_RE",
                 "_SECRET_IN_TEXT_RE"):
        monkeypatch.setattr(zeroimage, name, Recording(getattr(zeroimage, name)))
    said = zeroimage.outside_text(text, limit)
    assert len(seen) == 5 and max(seen) <= limit + zeroimage._CLEANED_BEYOND
    assert len(said) <= limit and said.endswith("...")
    assert "t" * 8 not in said          # the token after Bearer, cut, is still a token
