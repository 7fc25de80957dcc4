"""The real Debian docker-registry (distribution) on loopback, in three modes, and a small
token server for its token auth: JWTs signed RS256 with the openssl CLI."""

import base64
import http.client
import http.server
import json
import os
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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    """docker-registry serve CONFIG on a free loopback port."""

    def __init__(self, binary, workdir, mode, pki=None, token_server=None):
        self.mode = mode
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        os.makedirs(str(workdir), exist_ok=True)
        lines = ["version: 0.1", "log:", "  level: error", "  accesslog:", "    disabled: true",
                 "storage:", "  filesystem:", "    rootdirectory: %s/data" % workdir, "  delete:", "    enabled: true",
                 "http:", "  addr: 127.0.0.1:%d" % self.port, "  secret: zeroimage-test-secret"]
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


class FaultProxy:
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
        proxy = self

        class Handler(QuietHandler):
            def do_ANY(self):
                proxy.handle(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_ANY

        class CdnHandler(QuietHandler):
            def do_GET(self):
                proxy.cdn_auth.append(self.headers.get("Authorization"))
                path = urllib.parse.urlsplit(self.path).path
                status, headers, body = proxy.upstream("GET", path, dict(proxy.cdn_headers), b"")
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.cdn = QuietServer(("127.0.0.1", 0), CdnHandler)
        self.host = "127.0.0.1:%d" % self.httpd.server_port
        self.cdn_url = "http://127.0.0.1:%d" % self.cdn.server_port
        for server in (self.httpd, self.cdn):
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def first_time(self, key):
        with self._lock:
            if key in self._once:
                return False
            self._once.add(key)
            return True

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
        if self.mode == "flaky" and path != "/v2/" and self.first_time((method, path.split("?")[0].split("/uploads/")[0])):
            status, retry = (429, "1") if "/manifests/" in path else (503, "0")
            return self.reply(h, status, [("Retry-After", retry)], b'{"errors":[]}')
        if self.mode == "redirect" and is_blob_get:
            return self.reply(h, 307, [("Location", self.cdn_url + path + "?signature=abc")], b"")
        if self.mode == "upload" and method == "PUT" and "/blobs/uploads/" in path \
                and self.first_time(("upload", urllib.parse.parse_qs(urllib.parse.urlsplit(path).query).get("digest")[0])):
            return self.reply(h, 500, [], b'{"errors":[{"code":"UNKNOWN","message":"injected"}]}')
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("content-length", "connection")}
        status, answer_headers, data = self.upstream(method, path, headers, body)
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
