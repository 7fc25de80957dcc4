"""The real Debian docker-registry (distribution) on loopback, in three modes, and a small
token server for its token auth: JWTs signed RS256 with the openssl CLI; the proxies that stand in
front of it (FaultProxy, QuirkProxy) and a loopback ``Server`` answering from routes."""

import base64
import collections
import email.utils
import hashlib
import http.client
import http.server
import json
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
import urllib.request

SERVICE = "zeroimage-test"
ISSUER = "zeroimage-test-issuer"
# robot$ci: a Harbor-style robot account name, with a "$"
# (https://goharbor.io/docs/2.5.0/working-with-projects/project-configuration/create-robot-accounts)
USERS = {"alice": "wonderland", "bob": "builder", "robot$ci": "s3cret"}
REFRESH_TOKENS = {"alice-refresh-token": "alice"}


def free_port(address="127.0.0.1"):
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def lan_address():
    """This machine's IPv4 address on its way out (not loopback), or None: a UDP socket "connected"
    to a TEST-NET address (RFC 5737) sends nothing but shows the address the route would use."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.254", 9))
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def openssl(*args, **kwargs):
    subprocess.run(["openssl"] + [str(a) for a in args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, **kwargs)


def make_pki(directory):
    """A CA, a server certificate for 127.0.0.1/localhost, and a token-signing certificate."""
    d = str(directory)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=zeroimage test CA",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", d + "/ca.key", "-out", d + "/ca.crt")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", d + "/server.key",
            "-out", d + "/server.csr")
    with open(d + "/ext.cnf", "w") as f:
        # what Python 3.13's strict verification asks of a server certificate
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "authorityKeyIdentifier=keyid,issuer\nsubjectKeyIdentifier=hash\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.crt", "-CAkey", d + "/ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", d + "/ext.cnf", "-out", d + "/server.crt")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=zeroimage token signer",
            "-keyout", d + "/token.key", "-out", d + "/token.crt")
    der = subprocess.run(["openssl", "x509", "-in", d + "/token.crt", "-outform", "DER"], check=True,
                         stdout=subprocess.PIPE).stdout
    return {"ca": d + "/ca.crt", "cert": d + "/server.crt", "key": d + "/server.key",
            "token_key": d + "/token.key", "token_crt": d + "/token.crt", "token_x5c": base64.b64encode(der).decode()}


class QuietServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server that does not print a traceback when a client hangs up."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, no access log on stderr, and one way to answer."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


# ---- A loopback server answering from routes (the hostile tests' servers) ----


class Seen:
    """One request a test server answered."""

    def __init__(self, method, path, headers, tls, body):
        self.method, self.path, self.headers, self.tls, self.body = method, path, headers, tls, body

    def __repr__(self):
        return "Seen(%s %s%s)" % (self.method, self.path, " tls" if self.tls else "")


class _PeekingServer(QuietServer):
    """Plain HTTP and, given a TLS context, TLS on the same port: the first byte of a connection
    decides (0x16 starts a TLS ClientHello)."""

    tls_context = None

    def finish_request(self, request, client_address):
        request.settimeout(15)
        if self.tls_context is None:
            return super().finish_request(request, client_address)
        try:
            first = request.recv(1, socket.MSG_PEEK)
        except OSError:
            return None
        if first != b"\x16":
            return super().finish_request(request, client_address)
        wrapped = self.tls_context.wrap_socket(request, server_side=True)
        try:
            self.RequestHandlerClass(wrapped, client_address, self)
        finally:
            wrapped.close()
        return None


class Server:
    """A loopback server answering from ``routes`` (path without query -> callable(handler)); every
    request is recorded in ``seen``. With ``pki``, it speaks TLS and plain HTTP on one port."""

    def __init__(self, routes, pki=None):
        self.routes = routes
        self.seen = []
        server = self

        class Handler(QuietHandler):
            def do_GET(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.seen.append(Seen(self.command, self.path, self.headers,
                                        isinstance(self.connection, ssl.SSLSocket), body))
                route = server.routes.get(self.path.split("?")[0])
                if route is None:
                    return self.reply(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"no route"}]}')
                route(self)

            do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_GET

        self.httpd = _PeekingServer(("127.0.0.1", 0), Handler)
        if pki is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(pki["cert"], pki["key"])
            self.httpd.tls_context = context
        self.port = self.httpd.server_port
        self.netloc = "127.0.0.1:%d" % self.port
        self.url = "http://" + self.netloc
        self.https_url = "https://" + self.netloc
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def paths(self, prefix=""):
        return [s.path for s in self.seen if s.path.startswith(prefix)]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def jdump(value):
    """VALUE as the JSON bytes a server answers with."""
    return json.dumps(value).encode()


def manifest_route(data, media_type="application/vnd.oci.image.manifest.v1+json", headers=()):
    """A route answering DATA with status 200 and its media type (and ``headers``)."""
    return lambda h: h.reply(200, data, [("Content-Type", media_type)] + list(headers))


def open_v2(h):
    """The route of ``/v2/`` for a registry that asks for no credentials."""
    h.reply(200, b"{}")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """Issues registry tokens: alice may do anything, bob may pull anything and push under bob/,
    robot$ci likewise under robot/, anyone may pull public/*. Records every request it answered."""

    def __init__(self, pki):
        self.pki = pki
        self.requests = []
        self.port = free_port()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                parts = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(parts.query)
                user = None
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    if USERS.get(name) != password:
                        return self.answer(401, {"details": "wrong credentials"})
                    user = name
                self.grant("GET", user, query.get("scope", []))

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                user = REFRESH_TOKENS.get((form.get("refresh_token") or [""])[0])
                if (form.get("grant_type") or [""])[0] != "refresh_token" or user is None:
                    return self.answer(401, {"error": "invalid_grant"})
                self.grant("POST", user, " ".join(form.get("scope", [])).split())

            def grant(self, method, user, scopes):
                server.requests.append({"method": method, "user": user, "scopes": list(scopes)})
                access = []
                for scope in scopes:
                    kind, _, rest = scope.partition(":")
                    name, _, actions = rest.rpartition(":")
                    allowed = [a for a in actions.split(",") if server.allowed(user, name, a)]
                    access.append({"type": kind, "name": name, "actions": allowed})
                token = server.sign(user or "", access)
                self.answer(200, {"token": token, "access_token": token, "expires_in": 300})

            def answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = QuietServer(("127.0.0.1", self.port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki["cert"], pki["key"])
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.realm = "https://127.0.0.1:%d/token" % self.port

    @staticmethod
    def allowed(user, repository, action):
        if user == "alice":
            return True
        if action == "pull" and (user is not None or repository.startswith("public/")):
            return True
        return (user == "bob" and repository.startswith("bob/")) or \
            (user == "robot$ci" and repository.startswith("robot/"))

    def sign(self, subject, access):
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.pki["token_x5c"]]}
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.pki["token_key"]],
                                   input=signing_input.encode(), stdout=subprocess.PIPE, check=True).stdout
        return signing_input + "." + b64url(signature)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class RegistryProcess:
    """docker-registry serve CONFIG on a free loopback port. ``mode``: "open" (plain HTTP, no auth),
    "basic" (htpasswd), "token" (TLS, token auth by ``token_server``), or "open-nodelete": open, with
    deletes disabled (``storage.delete.enabled: false``, distribution's default), as many registries run."""

    def __init__(self, binary, workdir, mode, pki=None, token_server=None, address="127.0.0.1"):
        # address: where it listens; another than loopback (lan_address()) is a registry zeroimage
        # reaches over HTTPS unless told --insecure
        self.mode = mode
        self.port = free_port(address)
        self.host = "%s:%d" % (address, self.port)
        self.deletes = mode != "open-nodelete"
        os.makedirs(str(workdir), exist_ok=True)
        lines = ["version: 0.1", "log:", "  level: error", "  accesslog:", "    disabled: true",
                 "storage:", "  filesystem:", "    rootdirectory: %s/data" % workdir, "  delete:",
                 "    enabled: %s" % ("true" if self.deletes else "false"),
                 "http:", "  addr: %s" % self.host, "  secret: zeroimage-test-secret"]
        self.tls = mode == "token"
        if self.tls:
            lines += ["  tls:", "    certificate: %s" % pki["cert"], "    key: %s" % pki["key"]]
        if mode == "basic":
            htpasswd = os.path.join(str(workdir), "htpasswd")
            with open(htpasswd, "w") as f:
                for user, password in USERS.items():
                    f.write(subprocess.run(["htpasswd", "-Bbn", user, password], check=True,
                                           stdout=subprocess.PIPE, universal_newlines=True).stdout.strip() + "\n")
            lines += ["auth:", "  htpasswd:", "    realm: zeroimage-test", "    path: %s" % htpasswd]
        elif mode == "token":
            lines += ["auth:", "  token:", "    realm: %s" % token_server.realm, "    service: %s" % SERVICE,
                      "    issuer: %s" % ISSUER, "    rootcertbundle: %s" % pki["token_crt"]]
        config = os.path.join(str(workdir), "config.yml")
        with open(config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log = open(os.path.join(str(workdir), "registry.log"), "w")
        self.process = subprocess.Popen([binary, "serve", config], stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready(pki)

    def _wait_ready(self, pki):
        context = ssl.create_default_context(cafile=pki["ca"]) if self.tls else None
        url = "%s://%s/v2/" % ("https" if self.tls else "http", self.host)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("docker-registry exited: see %s" % self.log.name)
            try:
                urllib.request.urlopen(url, timeout=2, context=context).close()
                return
            except urllib.error.HTTPError:
                return          # 401: up, and asking for auth
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not start within 20 s")

    def close(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def write_helper(directory, store):
    """A fake docker-credential-test helper on PATH, keeping its secrets in a JSON file."""
    path = os.path.join(str(directory), "docker-credential-test")
    with open(path, "w") as f:
        f.write("""#!/usr/bin/env python3
import json, sys
STORE = %r
try:
    data = json.load(open(STORE))
except (OSError, ValueError):
    data = {}
action = sys.argv[1]
payload = sys.stdin.read()
if action == "get":
    entry = data.get(payload.strip())
    if entry is None:
        print("credentials not found in native keychain")
        sys.exit(1)
    json.dump({"ServerURL": payload.strip(), "Username": entry[0], "Secret": entry[1]}, sys.stdout)
elif action == "store":
    entry = json.loads(payload)
    data[entry["ServerURL"]] = [entry["Username"], entry["Secret"]]
    json.dump(data, open(STORE, "w"))
elif action == "erase":
    if data.pop(payload.strip(), None) is None:
        print("credentials not found in native keychain")
        sys.exit(1)
    json.dump(data, open(STORE, "w"))
""" % str(store))
    os.chmod(path, 0o755)
    return path


def have(binary):
    return shutil.which(binary) is not None


def tunnel(handler):
    """Answer a CONNECT: open the upstream connection, say 200, relay bytes both ways until one side
    closes (or 30 s of silence)."""
    host, _, port = handler.path.rpartition(":")
    try:
        upstream = socket.create_connection((host, int(port)), timeout=10)
    except (OSError, ValueError):
        handler.send_error(502)
        return
    handler.send_response(200, "Connection established")
    handler.end_headers()
    handler.close_connection = True
    sockets = [handler.connection, upstream]
    try:
        while True:
            readable, _, _ = select.select(sockets, [], [], 30)
            if not readable:
                return
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (upstream if sock is handler.connection else handler.connection).sendall(data)
    finally:
        upstream.close()


class ConnectProxy:
    """An HTTPS proxy (CONNECT tunnels only) on loopback that records the hosts it tunnelled to."""

    def __init__(self):
        self.tunnels = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_CONNECT(self):
                proxy.tunnels.append(self.path)
                tunnel(self)

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def every_method_to(proxy):
    """A handler class that hands every request, whatever its method, to ``proxy.handle(handler)``."""
    class Handler(QuietHandler):
        def do_ANY(self):
            proxy.handle(self)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_ANY
    return Handler


class _Once:
    """``first_time(key)``: True the first time a key is seen (thread-safe)."""

    def first_time(self, key):
        with self._lock:
            if key in self._once:
                return False
            self._once.add(key)
            return True


class FaultProxy(_Once):
    """A reverse proxy in front of a plain-HTTP registry that misbehaves on purpose.

    ``mode`` (settable at any time):
      "pass"      forward everything
      "flaky"     the first time each (method, path) is seen: 503 with Retry-After: 0, or 429 with
                  Retry-After: 1 for manifests
      "cut"       blob GETs: promise the whole body, send half of it, hang up (once per blob)
      "redirect"  blob GETs: 307 to a second server that serves the bytes and records Authorization
      "corrupt"   blob GETs: one byte of the body changed (every time)
      "upload"    the first PUT that finishes an upload of each blob: 500
      "slow"      every answer waits ``delay`` seconds first
      "throttle"  request bodies over 64 kB are read at ``rate`` bytes a second (a slow upload link)
      "chunk-lost"   the second ranged PATCH (Content-Range) of each upload: 500, not passed on
      "answer-lost"  the second ranged PATCH of each upload: passed on, then answered 500 (the
                     registry has the chunk, the client is told it failed)
      "put-503"   every PUT that ends an upload: 503 with Retry-After: 0 (a registry that takes no blob)
      "periodic"  every ``period``-th request (counting every one): 503 with Retry-After: 1 (a flaky
                  load balancer: a fault that comes back periodically)
    ``seen`` lists (method, path, status sent); ``cdn_auth`` lists the Authorization headers the
    redirect target got (None when absent); ``receiving`` is set while a throttled body comes in.
    """

    def __init__(self, upstream_host, mode="pass", cdn_credentials=None):
        self.upstream_host = upstream_host
        self.cdn_headers = {}
        if cdn_credentials:         # the CDN's own access to the storage, not the client's
            self.cdn_headers["Authorization"] = "Basic " + base64.b64encode(cdn_credentials.encode()).decode()
        self.mode = mode
        self.delay = 0.0
        self.rate = 256 * 1024
        self.receiving = threading.Event()
        self.seen = []
        self.cdn_auth = []
        self._once = set()
        self._lock = threading.Lock()
        self.patches = collections.Counter()    # ranged PATCHes seen, by upload session
        self.period, self.requests = 3, 0
        proxy = self

        class CdnHandler(QuietHandler):
            def do_GET(self):
                proxy.cdn_auth.append(self.headers.get("Authorization"))
                path = urllib.parse.urlsplit(self.path).path
                status, headers, body = proxy.upstream("GET", path, dict(proxy.cdn_headers), b"")
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = QuietServer(("127.0.0.1", 0), every_method_to(self))
        self.cdn = QuietServer(("127.0.0.1", 0), CdnHandler)
        self.host = "127.0.0.1:%d" % self.httpd.server_port
        self.cdn_url = "http://127.0.0.1:%d" % self.cdn.server_port
        for server in (self.httpd, self.cdn):
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def upstream(self, method, path, headers, body):
        conn = http.client.HTTPConnection(self.upstream_host, timeout=60)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            return response.status, response.getheaders(), data
        finally:
            conn.close()

    def handle(self, h):
        method, path = h.command, h.path
        length = int(h.headers.get("Content-Length") or 0)
        body = self.read_body(h, length)
        if body is None:            # the client went away mid-body
            self.seen.append((method, path, "gone"))
            h.close_connection = True
            return
        is_blob_get = method == "GET" and "/blobs/sha256:" in path
        if self.delay:
            time.sleep(self.delay)
        if self.mode == "put-503" and method == "PUT" and "/blobs/uploads/" in path:
            return self.reply(h, 503, [("Retry-After", "0")], b'{"errors":[]}')
        if self.mode == "periodic":
            with self._lock:
                self.requests += 1
                due = self.requests % self.period == 0
            if due:
                return self.reply(h, 503, [("Retry-After", "1")], b'{"errors":[]}')
        if self.mode == "flaky" and path != "/v2/" and self.first_time((method, path.split("?")[0].split("/uploads/")[0])):
            status, retry = (429, "1") if "/manifests/" in path else (503, "0")
            return self.reply(h, status, [("Retry-After", retry)], b'{"errors":[]}')
        if self.mode == "redirect" and is_blob_get:
            return self.reply(h, 307, [("Location", self.cdn_url + path + "?signature=abc")], b"")
        if self.mode == "upload" and method == "PUT" and "/blobs/uploads/" in path \
                and self.first_time(("upload", urllib.parse.parse_qs(urllib.parse.urlsplit(path).query).get("digest")[0])):
            return self.reply(h, 500, [], b'{"errors":[{"code":"UNKNOWN","message":"injected"}]}')
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("content-length", "connection")}
        lost = self.lost_chunk(h, method, path)
        if lost == "chunk-lost":
            return self.reply(h, 500, [], b'{"errors":[{"code":"UNKNOWN","message":"injected: chunk lost"}]}')
        status, answer_headers, data = self.upstream(method, path, headers, body)
        if lost == "answer-lost":
            return self.reply(h, 500, [], b'{"errors":[{"code":"UNKNOWN","message":"injected: answer lost"}]}')
        if is_blob_get and status == 200 and data:
            if self.mode == "corrupt":
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            elif self.mode == "cut" and self.first_time(("cut", path)):
                h.send_response(200)
                for key, value in answer_headers:
                    if key.lower() not in ("content-length", "connection"):
                        h.send_header(key, value)
                h.send_header("Content-Length", str(len(data)))
                h.end_headers()
                h.wfile.write(data[:len(data) // 2])
                h.wfile.flush()
                h.close_connection = True
                self.seen.append((method, path, "cut"))
                return
        self.reply(h, status, [(k, v) for k, v in answer_headers
                               if k.lower() not in ("content-length", "connection", "transfer-encoding")], data)

    def lost_chunk(self, h, method, path):
        """The mode, when this request is the second ranged PATCH of its upload in a chunk-losing mode."""
        if self.mode not in ("chunk-lost", "answer-lost") or method != "PATCH" or not h.headers.get("Content-Range"):
            return None
        session = urllib.parse.urlsplit(path).path
        with self._lock:
            self.patches[session] += 1
            return self.mode if self.patches[session] == 2 else None

    def read_body(self, h, length):
        if self.mode != "throttle" or length <= 64 * 1024:
            return h.rfile.read(length) if length else b""
        self.receiving.set()
        parts, got, piece = [], 0, 16 * 1024
        started = time.monotonic()
        while got < length:
            data = h.rfile.read(min(piece, length - got))
            if not data:
                return None
            parts.append(data)
            got += len(data)
            ahead = started + got / float(self.rate) - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)       # the link's pace, not a wait for an event
        return b"".join(parts)

    def reply(self, h, status, headers, body):
        self.seen.append((h.command, h.path, status))
        h.reply(status, body, headers)

    def close(self):
        for server in (self.httpd, self.cdn):
            server.shutdown()
            server.server_close()


# ---- Real registries bend the spec (issue 13) ----

HOP_BY_HOP = ("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
              "transfer-encoding", "upgrade", "content-length", "host", "date", "server")
OCI_MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json")


def registry_errors_body(code, message, detail=None):
    error = {"code": code, "message": message}
    if detail is not None:
        error["detail"] = detail
    return json.dumps({"errors": [error]}).encode()


def jwt_claims(authorization):
    """The claims of a Bearer JWT (no verification: the registry behind checks the signature); {} if none."""
    if not authorization.startswith("Bearer "):
        return {}
    parts = authorization[7:].strip().split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


class QuirkProxy(_Once):
    """A plain-HTTP reverse proxy on loopback in front of a real test registry (a RegistryProcess,
    "open", or "token" with the TokenServer behind it too), reproducing one quirk of a real registry
    at a time.

    Everything is forwarded (method, path and query, headers but hop-by-hop ones, body) with the
    proxy's own Host, so the Locations the registry builds point here; any absolute Location to the
    registry is rewritten to the proxy as well. In front of a token registry every challenge's realm
    becomes http://PROXY/token, and /token (GET and POST) is forwarded to the token server.

    ``mode`` (settable at any time) picks the quirk; see ``MODES``. ``counts`` counts the quirk's
    events (so a test can prove it happened), ``seen`` lists (method, path, status sent),
    ``token_requests`` lists {"method", "asked", "sent"} (scopes the client asked for, and passed on).
    """

    MODES = {
        "pass": "forward everything",
        # -- bent rules that zeroimage must work around --
        # Older JFrog Artifactory and pulp_container: a monolithic upload (PUT ?digest= with the whole
        # body) is answered 404 BLOB_UNKNOWN; POST, PATCH, empty PUT works.
        # https://github.com/containerd/containerd/issues/3533, https://github.com/moby/buildkit/issues/1130
        # (JFrog RTFACT-19344), https://github.com/pulp/pulp_container/pull/1274
        "no-monolithic": "PUT ?digest= with a body: 404 BLOB_UNKNOWN",
        # Google Artifact Registry's documentation: chunked uploads are not supported (quoted in
        # https://github.com/dotnet/sdk-container-builds/issues/287); https://github.com/containers/skopeo/issues/1101
        "no-chunked": "PATCH on an upload: 405 UNSUPPORTED",
        "no-uploads": "both of the above: neither way of uploading works",
        # pulp_container answers an upload PATCH 204, not 202: https://github.com/pulp/pulp_container/issues/2199
        "patch-204": "PATCH answered 204 (Location and Range kept) instead of 202",
        # go-containerregistry pkg/v1/remote/transport/bearer.go: "Some registries seem to only look at
        # the first scope parameter during a token exchange"; Harbor's token service handled one scope
        # only: https://github.com/goharbor/harbor/issues/2411
        "first-scope": "token requests: only the first scope is passed on",
        # GitLab's /jwt/auth put only the last (second) scope in the token, so cross-repository mounts
        # failed: https://github.com/estesp/manifest-tool/issues/53 (gitlab-org/gitlab-ce#40197)
        "last-scope": "token requests: only the last scope is passed on",
        # The token spec's insufficient_scope challenge names the scope the registry wants
        # (https://github.com/distribution/distribution/blob/main/docs/spec/auth/token.md); clients add
        # the challenge's scopes to theirs (go-containerregistry bearer.go, refresh on 401).
        "extra-scope": "every /v2/NAME/ request needs registry:catalog:* in the token: 401 insufficient_scope",
        # Older Quay answered OCI manifests 415 or 400 "manifest invalid":
        # https://github.com/GoogleContainerTools/jib/issues/698, https://github.com/containers/buildah/issues/2594
        "no-oci-415": "manifest PUT with an OCI media type: 415 MANIFEST_INVALID",
        "no-oci-invalid": "manifest PUT with an OCI media type: 400 MANIFEST_INVALID (schema version not supported)",
        # A size limit in front of the registry (nginx's client_max_body_size, 1 MiB by default; the
        # distribution docs' nginx recipe sets it to 0 for this reason): 413 for a body over 64 kB.
        "body-limit": "PUT or PATCH bodies over 64 kB: nginx's 413 Request Entity Too Large (HTML)",
        # skopeo takes any 2xx to a PATCH (found trying registries; the spec says 202)
        "patch-201": "PATCH answered 201 instead of 202",
        # Registries without multi-platform images refuse an index and a manifest list alike (Quay before
        # manifest-list support: https://github.com/GoogleContainerTools/jib/issues/698 shows its 415s)
        "no-index": "manifest PUT of an OCI index or a Docker manifest list: 415 MANIFEST_INVALID",
        # GitHub Enterprise Server's registry and some mirrors answer a manifest HEAD 405 Method Not
        # Allowed (issue 27); containerd retries a HEAD 405 of a manifest with GET ("Support registries
        # which have not properly implemented the HEAD method for manifests endpoint",
        # https://github.com/containerd/containerd/blob/main/core/remotes/docker/resolver.go, retryRequest).
        # A front that does not know the method at all answers 501 Not Implemented.
        "no-head": "HEAD of a manifest or blob: 405 Method Not Allowed (GET works)",
        "head-501": "HEAD of a manifest or blob: 501 Not Implemented (GET works)",
        # ECR answered a manifest PUT with a subject with OCI-Subject while its referrers API answered
        # 404 (https://github.com/sigstore/sigstore-js/issues/1183, changed for it in #1187): a client
        # that trusts the header keeps no referrers tag, and the referrer can never be found.
        "subject-no-api": "a manifest PUT with a subject is answered with OCI-Subject; GET /v2/NAME/referrers/DIGEST "
                          "is the registry's own: 404 (distribution 2.8 has no referrers API)",
        # A user who may pull but not push: GHCR, Docker Hub and Harbor answer 403 DENIED
        # ("denied: permission_denied: write_package", https://github.com/orgs/community/discussions/26274)
        "deny-push": "POST, PATCH, PUT: 403 DENIED (logged in, but no push permission)",
        # -- bent rules that zeroimage already copes with (must stay so) --
        "no-digest-header": "Docker-Content-Digest removed from every answer",
        "bare-digest-header": "Docker-Content-Digest without its sha256: prefix",
        "mount-202": "a mount (POST ?mount=&from=) is forwarded without them: 202 and a new upload session",
        "relative-location": "every Location is path and query only",
        "access-token-only": "token answers keep only access_token and expires_in",
        "no-challenge-401": "WWW-Authenticate removed from every 401 but /v2/'s",
        "retry-after": "the first time each request is seen: 429, Retry-After 1 s or an HTTP-date 1 s ahead",
        "strict-content-type": "manifest PUT whose Content-Type is not the body's mediaType: 400 MANIFEST_INVALID",
        "length-required": "PUT, PATCH or POST without Content-Length (chunked): 411",
        # -- registries that page their tag lists --
        # The distribution spec's "Listing Tags" (https://github.com/opencontainers/distribution-spec/blob/
        # main/spec.md#listing-tags): tags in lexical order, at most n of them after ``last``, and a
        # ``Link: <URL?n=..&last=..>; rel="next"`` header (RFC 5988) while more remain. Docker Hub, GHCR and
        # Harbor page this way; Debian's docker-registry (distribution 2.8) ignores n and answers every tag.
        "paged-tags": "GET /v2/NAME/tags/list answered by the proxy in pages of PAGE_SIZE (or n) from the full list, "
                      "honouring last, with Link headers: relative on even pages, absolute on odd ones",
        # -- a registry with the referrers API (distribution-spec 1.1: Harbor 2.8+, zot, GHCR, ECR...);
        # Debian's distribution 2.8 has none and answers /v2/NAME/referrers/DIGEST 404 --
        "referrers-api": "a manifest PUT with a subject is answered with OCI-Subject and remembered; GET "
                         "/v2/NAME/referrers/DIGEST answers the remembered ones in pages of PAGE_SIZE (Link headers)",
    }
    PAGE_SIZE = 2

    def __init__(self, upstream, pki=None, token_server=None, mode="pass"):
        if mode not in self.MODES:
            raise ValueError("no such mode: %s" % mode)
        self.upstream_host = upstream.host
        self.tls = bool(getattr(upstream, "tls", False))
        self.context = ssl.create_default_context(cafile=pki["ca"]) if pki else None
        self.token_server = token_server
        self.mode = mode
        self.counts = collections.Counter()
        self.seen = []
        self.token_requests = []
        self._once = set()
        self._retries = 0
        self.referrers = collections.defaultdict(list)     # (repository, subject digest) -> descriptors
        self._lock = threading.Lock()
        self.httpd = QuietServer(("127.0.0.1", 0), every_method_to(self))
        self.host = "127.0.0.1:%d" % self.httpd.server_port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def count(self, event, n=1):
        with self._lock:
            self.counts[event] += n

    # -- the connection to the registry (or token server) behind --

    def _connect(self, host, tls):
        if tls:
            return http.client.HTTPSConnection(host, timeout=60, context=self.context)
        return http.client.HTTPConnection(host, timeout=60)

    def forward(self, method, target, headers, body, host=None, tls=None):
        """(status, [(name, value)], body) of the request sent upstream; HEAD's Content-Length kept."""
        conn = self._connect(host or self.upstream_host, self.tls if tls is None else tls)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", self.host)
            for key, value in headers:
                if key.lower() not in HOP_BY_HOP:
                    conn.putheader(key, value)
            if body or method in ("PUT", "POST", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            response = conn.getresponse()
            data = response.read()
            return response.status, response.getheaders(), data
        finally:
            conn.close()

    # -- one request --

    @staticmethod
    def read_body(h):
        """(body, whether it came with a Content-Length); a chunked body is decoded."""
        if "chunked" in (h.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(h.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass            # trailers
                    return b"".join(parts), False
                parts.append(h.rfile.read(size))
                h.rfile.readline(65537)
        length = h.headers.get("Content-Length")
        return (h.rfile.read(int(length)) if length else b""), length is not None

    def handle(self, h):
        mode = self.mode
        method = h.command
        parts = urllib.parse.urlsplit(h.path)
        path, query = parts.path, urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        body, has_length = self.read_body(h)
        headers = [(k, v) for k, v in h.headers.items()]

        if mode == "length-required" and method in ("PUT", "PATCH", "POST") and not has_length:
            self.count("length required")
            return self.send(h, 411, [("Content-Type", "text/plain")], b"Length Required")
        if path == "/token" and method in ("GET", "POST") and self.token_server is not None:
            return self.token(h, mode, query, headers, body)
        once = path.split("/uploads/")[0] + ("/uploads/" if "/uploads/" in path else "")    # a session: one key
        if mode == "retry-after" and path != "/v2/" and self.first_time((method, once)):
            with self._lock:
                self._retries += 1
                as_date = self._retries % 2 == 0
            when = email.utils.formatdate(time.time() + 1, usegmt=True) if as_date else "1"
            self.count("retry-after date" if as_date else "retry-after seconds")
            return self.send(h, 429, [("Retry-After", when), ("Content-Type", "application/json")],
                             registry_errors_body("TOOMANYREQUESTS", "too many requests"))
        is_upload = "/blobs/uploads/" in path
        is_manifest_put = method == "PUT" and "/manifests/" in path
        content_type = (h.headers.get("Content-Type") or "").split(";")[0].strip()
        if mode in ("no-monolithic", "no-uploads") and method == "PUT" and is_upload \
                and any(k == "digest" for k, _ in query) and body:
            self.count("monolithic refused")
            return self.send(h, 404, [("Content-Type", "application/json")],
                             registry_errors_body("BLOB_UNKNOWN", "blob unknown to registry"))
        if mode in ("no-chunked", "no-uploads") and method == "PATCH" and is_upload:
            self.count("chunked refused")
            return self.send(h, 405, [("Content-Type", "application/json")],
                             registry_errors_body("UNSUPPORTED", "chunked uploads are not supported"))
        if mode == "body-limit" and method in ("PUT", "PATCH") and len(body) > 64 * 1024:
            self.count("body too large")
            return self.send(h, 413, [("Content-Type", "text/html")], b"<html><head><title>413 Request Entity Too "
                             b"Large</title></head><body><center><h1>413 Request Entity Too Large</h1></center>"
                             b"<hr><center>nginx</center></body></html>")
        if mode == "deny-push" and method in ("POST", "PATCH", "PUT") and path.startswith("/v2/"):
            self.count("push denied")
            return self.send(h, 403, [("Content-Type", "application/json")],
                             registry_errors_body("DENIED", "requested access to the resource is denied"))
        if mode == "no-index" and is_manifest_put and content_type in (
                "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"):
            self.count("index refused")
            return self.send(h, 415, [("Content-Type", "application/json")], registry_errors_body(
                "MANIFEST_INVALID", "manifest invalid", "manifest lists are not supported"))
        if mode == "extra-scope" and path.startswith("/v2/") and path != "/v2/" and not self.has_catalog(h):
            self.count("insufficient_scope")
            challenge = ('Bearer realm="http://%s/token",service="%s",scope="registry:catalog:*",'
                         'error="insufficient_scope"' % (self.host, SERVICE))
            return self.send(h, 401, [("WWW-Authenticate", challenge), ("Content-Type", "application/json")],
                             registry_errors_body("DENIED", "insufficient scope"))
        if mode in ("no-oci-415", "no-oci-invalid") and is_manifest_put and content_type in OCI_MANIFEST_TYPES:
            self.count("oci refused")
            if mode == "no-oci-415":
                return self.send(h, 415, [("Content-Type", "application/json")], registry_errors_body(
                    "MANIFEST_INVALID", "manifest invalid", "unsupported media type"))
            return self.send(h, 400, [("Content-Type", "application/json")], registry_errors_body(
                "MANIFEST_INVALID", "manifest invalid", {"message": "schema version not supported"}))
        if mode == "strict-content-type" and is_manifest_put:
            self.count("manifest checked")
            try:
                declared = json.loads(body.decode()).get("mediaType")
            except (ValueError, UnicodeDecodeError, AttributeError):
                declared = None
            if declared is not None and declared != content_type:
                self.count("content type mismatch")
                return self.send(h, 400, [("Content-Type", "application/json")], registry_errors_body(
                    "MANIFEST_INVALID", "manifest invalid", "Content-Type %s is not the manifest's mediaType %s"
                    % (content_type, declared)))
        if mode in ("no-head", "head-501") and method == "HEAD" and ("/manifests/" in path or "/blobs/" in path) \
                and not is_upload:
            self.count("head refused")
            return self.send(h, 405 if mode == "no-head" else 501, [("Allow", "GET, PUT, DELETE")], b"")
        if mode == "subject-no-api" and method == "GET" and "/referrers/" in path:
            self.count("referrers asked")
        if mode == "paged-tags" and method == "GET" and path.startswith("/v2/") and path.endswith("/tags/list"):
            return self.tags_page(h, path, dict(query), headers)
        if mode == "referrers-api" and method == "GET" and "/referrers/" in path:
            return self.referrers_page(h, path, dict(query))
        if mode == "mount-202" and method == "POST" and is_upload and any(k == "mount" for k, _ in query):
            self.count("mount ignored")
            query = [(k, v) for k, v in query if k not in ("mount", "from")]

        target = h.path if mode != "mount-202" else \
            urllib.parse.urlunsplit(("", "", path, urllib.parse.urlencode(query), ""))   # else byte for byte
        try:
            status, answer, data = self.forward(method, target, headers, body)
        except OSError:
            return self.send(h, 502, [], b"the registry behind the proxy did not answer")
        answer = self.rewrite(mode, method, path, status, answer)
        if mode == "referrers-api" and is_manifest_put and status == 201:
            answer += self.remember_referrer(path, body)
        if mode == "subject-no-api" and is_manifest_put and status == 201:
            subject = json.loads(body.decode()).get("subject")
            if isinstance(subject, dict):
                self.count("subject claimed")
                answer.append(("OCI-Subject", subject["digest"]))
        if mode in ("patch-204", "patch-201") and method == "PATCH" and is_upload and status == 202:
            self.count(mode.replace("-", " "))
            status = int(mode[-3:])
        length = next((v for k, v in answer if k.lower() == "content-length"), None)
        self.send(h, status, answer, b"" if status == 204 else data, length if method == "HEAD" else None)

    def tags_page(self, h, path, query, headers):
        """One page of the tag list, cut from the whole list the registry behind answers (asked with the
        client's own headers, so its credentials and their refusal count)."""
        try:
            status, answer, data = self.forward("GET", path, headers, b"")
        except OSError:
            return self.send(h, 502, [], b"the registry behind the proxy did not answer")
        if status != 200:
            return self.send(h, status, self.rewrite("pass", "GET", path, status, answer), data)
        tags = sorted(json.loads(data.decode())["tags"] or [])
        size = int(query.get("n", self.PAGE_SIZE))
        after = [t for t in tags if "last" not in query or t > query["last"]]
        page, rest = after[:size], after[size:]
        number = (len(tags) - len(after)) // max(size, 1)
        self.count("tag pages")
        links = []
        if rest:
            link = "%s?%s" % (path, urllib.parse.urlencode([("n", size), ("last", page[-1])]))
            if number % 2:
                link = "http://%s%s" % (self.host, link)
                self.count("absolute links")
            links.append(("Link", '<%s>; rel="next"' % link))
        body = json.dumps({"name": path[len("/v2/"):-len("/tags/list")], "tags": page}).encode()
        self.send(h, 200, [("Content-Type", "application/json")] + links, body)

    def remember_referrer(self, path, body):
        """The OCI-Subject header for a pushed manifest with a subject (remembered for the referrers API)."""
        manifest = json.loads(body.decode())
        subject = manifest.get("subject")
        if not isinstance(subject, dict):
            return []
        repository = path[len("/v2/"):].split("/manifests/")[0]
        desc = {"mediaType": manifest.get("mediaType"), "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
                "size": len(body), "artifactType": manifest.get("artifactType") or manifest["config"]["mediaType"]}
        if manifest.get("annotations"):
            desc["annotations"] = manifest["annotations"]
        with self._lock:
            listed = self.referrers[(repository, subject["digest"])]
            if desc["digest"] not in [d["digest"] for d in listed]:
                listed.append(desc)
        self.count("referrer remembered")
        return [("OCI-Subject", subject["digest"])]

    def referrers_page(self, h, path, query):
        repository, digest = path[len("/v2/"):].split("/referrers/")
        listed = list(self.referrers[(repository, digest)])
        start = int(query.get("page", 0))
        page, more = listed[start:start + self.PAGE_SIZE], start + self.PAGE_SIZE < len(listed)
        self.count("referrers pages")
        links = [("Link", '<%s?page=%d>; rel="next"' % (path, start + self.PAGE_SIZE))] if more else []
        body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                           "manifests": page}).encode()
        self.send(h, 200, [("Content-Type", "application/vnd.oci.image.index.v1+json")] + links, body)

    def has_catalog(self, h):
        access = jwt_claims(h.headers.get("Authorization") or "").get("access")
        return isinstance(access, list) and any(
            isinstance(a, dict) and a.get("type") == "registry" and a.get("name") == "catalog"
            and "*" in (a.get("actions") or []) for a in access)

    def rewrite(self, mode, method, path, status, headers):
        """The answer's headers as the client gets them: Locations and realms to the proxy, and the mode's changes."""
        out = []
        for key, value in headers:
            name = key.lower()
            if name == "location":
                value = self.location(mode, value)
            elif name == "www-authenticate":
                if mode == "no-challenge-401" and status == 401 and path != "/v2/":
                    self.count("challenge stripped")
                    continue
                if self.token_server is not None:
                    value = re.sub(r'realm="[^"]*"', 'realm="http://%s/token"' % self.host, value)
            elif name == "docker-content-digest":
                if mode == "no-digest-header":
                    self.count("digest header stripped")
                    continue
                if mode == "bare-digest-header" and value.startswith("sha256:"):
                    self.count("digest header bare")
                    value = value[len("sha256:"):]
            out.append((key, value))
        return out

    def location(self, mode, value):
        parts = urllib.parse.urlsplit(value)
        if parts.netloc in (self.upstream_host, self.host):
            value = urllib.parse.urlunsplit(("http", self.host, parts.path, parts.query, parts.fragment))
        if mode == "relative-location" and parts.netloc:
            self.count("location made relative")
            value = urllib.parse.urlunsplit(("", "", parts.path, parts.query, parts.fragment))
        return value

    def token(self, h, mode, query, headers, body):
        """/token, forwarded to the token server, with the mode's say over the scopes."""
        method = h.command
        if method == "GET":
            asked = [v for k, v in query if k == "scope"]
        else:
            form = urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)
            asked = " ".join(v for k, v in form if k == "scope").split()
        sent = asked
        if mode in ("first-scope", "last-scope") and len(asked) > 1:
            self.count("scopes dropped")
            sent = asked[:1] if mode == "first-scope" else asked[-1:]
        with self._lock:
            self.token_requests.append({"method": method, "asked": list(asked), "sent": list(sent)})
        if method == "GET":
            rest = [(k, v) for k, v in query if k != "scope"] + [("scope", s) for s in sent]
            target = "/token?" + urllib.parse.urlencode(rest)
        else:
            rest = [(k, v) for k, v in form if k != "scope"] + ([("scope", " ".join(sent))] if sent else [])
            target, body = "/token", urllib.parse.urlencode(rest).encode()
        try:
            status, answer, data = self.forward(method, target, headers, body,
                                                host="127.0.0.1:%d" % self.token_server.port, tls=True)
        except OSError:
            return self.send(h, 502, [], b"the token server did not answer")
        if mode == "access-token-only" and status == 200:
            parsed = json.loads(data.decode())
            data = json.dumps({k: parsed[k] for k in ("access_token", "expires_in") if k in parsed}).encode()
            self.count("token trimmed")
        self.send(h, status, [(k, v) for k, v in answer if k.lower() == "content-type"], data)

    def send(self, h, status, headers, body, head_length=None):
        with self._lock:
            self.seen.append((h.command, h.path, status))
        h.send_response(status)
        for key, value in headers:
            if key.lower() not in HOP_BY_HOP:
                h.send_header(key, value)
        h.send_header("Content-Length", head_length if head_length is not None else str(len(body)))
        h.end_headers()
        if h.command != "HEAD" and body:
            h.wfile.write(body)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
