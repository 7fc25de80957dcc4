"""Hostile fakes with generic modes (issue 21), and a runner that puts zeroimage.main through them.

- ``FakeRegistry``: a small in-memory registry on loopback (plain HTTP, token auth): a real small image
  (index -> manifest -> config + a gzip layer holding a tiny static ELF program), an SBOM artifact
  that refers to it (referrers API), a paged tag list, uploads (POST, PATCH, PUT, mounts), deletes,
  a token endpoint. Every answer goes out through ``FakeRegistry.answer`` with its kind ("manifest",
  "index", "config", "blob", "tags", "referrers", "token", "error", "upload"), where the one
  ``Fault`` of the fake can bend it.
- ``FakeEngine``: a Docker Engine API on a unix socket: /_ping, /version, /images/load (JSON-lines
  progress), /images/NAME/get (a docker save archive), /images/NAME/json; kinds "ping", "version",
  "load", "export", "image".
- ``Fault``: a generic mode applied to one kind of answer:
    pass        nothing bent
    self-next   (tags, referrers) every page names itself as the next one, with ``PAGE_ITEMS`` items
    endless     (tags, referrers) every page names a new next page, with ``PAGE_ITEMS`` items
    huge        the body is HUGE bytes, streamed (never built in memory), Content-Length said
    lying       Content-Length is 10 more than the body; the connection is kept open, silent
    drip        the body comes 1 byte every ``DRIP`` seconds
    types       one field (a path into the JSON) replaced by a value of another type
    userinfo    user:PLANTEDSECRET@ in every URL handed out (Location, redirect, realm, Link next)
    flaky       every Nth request (all kinds) answered ``status`` with Retry-After: 1
    fuzz        the JSON of the kind mutated by a seeded ``mutate_json``
    damaged-layer  (blob) the zstd layer of ``zbase`` cut in half (its digest follows)
    bomb-layer     (blob) the zstd layer of ``zbase`` a member of 256 MiB of zeros in 8 KiB (its digests follow)
  Stored documents (manifest, index, config, the SBOM's manifest) are bent where they are stored, so
  the digests that name them stay consistent (a wrong type reaches the parser, not a digest check).
- ``Case`` / ``run_cases``: each case runs ``zeroimage.main(argv)`` in a forked child of the test
  process (in-process: the child has the module and its monkeypatched constants), with its own
  environment, stdout/stderr files and working directory; the parent kills a child past its bound
  and reads its exit, traceback, peak RSS growth and waits from a result file. Several run at once.

Everything listens on loopback or a unix socket of the test's own; nothing reaches the internet.
"""

import base64
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import socketserver
import sys
import tarfile
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid

from imagetools import make_layer, zstd_frame
from registries import QuietHandler, QuietServer, QuirkProxy

SECRET = "PLANTEDSECRET"
HUGE = 100 * 1024 * 1024        # a huge body: past every cap, streamed in pieces
PIECE = 64 * 1024
DRIP = 0.2                      # seconds between the bytes of a drip-fed body
DRIP_BYTES = 400                # a drip-fed body is at least this long (80 s at DRIP)
HOLD = 60.0                     # the most a fake keeps a connection open and silent (a case's stop ends it sooner)
PAGE_ITEMS = 500                # items of each page in self-next and endless modes
TAG_PAGE = 2                    # the fake's own page size for tag lists
USER, PASSWORD = "alice", "wonderland"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
SPDX = "application/spdx+json"

REGISTRY_KINDS = ("manifest", "index", "config", "blob", "tags", "referrers", "token", "error", "upload")
ENGINE_KINDS = ("ping", "version", "load", "export", "image")
JSON_KINDS = ("manifest", "index", "config", "tags", "referrers", "token", "error", "version", "load", "image")


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def jdump(value):
    return json.dumps(value).encode()


def tiny_elf():
    """A real static x86-64 ELF executable of 129 bytes: exit(0). No busybox needed."""
    import struct
    code = b"\xb8\x3c\x00\x00\x00\x31\xff\x0f\x05"      # mov eax, 60; xor edi, edi; syscall
    base, total = 0x400000, 64 + 56 + len(code)
    ehdr = struct.pack("<4sBBBBB7sHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, b"\0" * 7, 2, 0x3E, 1,
                       base + 64 + 56, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, total, total, 0x1000)
    return ehdr + phdr + code


# ---- the JSON mutations: by field (types mode) and seeded (fuzz mode) ----

WRONG_VALUES = {"list": [], "dict": {}, "number": 12345, "null": None, "bool": True, "surrogate": "x\udcff"}

# (kind, path) of the fields the types mode bends, one at a time: a path is keys and list indexes
FIELDS = {
    "manifest": [(), ("schemaVersion",), ("mediaType",), ("config",), ("config", "digest"), ("config", "size"),
                 ("config", "mediaType"), ("layers",), ("layers", 0), ("layers", 0, "digest"), ("layers", 0, "size"),
                 ("layers", 0, "mediaType"), ("annotations",)],
    "index": [(), ("manifests",), ("manifests", 0), ("manifests", 0, "digest"), ("manifests", 0, "size"),
              ("manifests", 0, "mediaType"), ("manifests", 0, "platform"), ("manifests", 0, "platform", "architecture"),
              ("manifests", 0, "platform", "os"), ("annotations",)],
    "config": [(), ("architecture",), ("os",), ("config",), ("config", "Entrypoint"), ("config", "Env"),
               ("config", "Labels"), ("rootfs",), ("rootfs", "diff_ids"), ("rootfs", "diff_ids", 0), ("history",),
               ("created",)],
    "tags": [(), ("name",), ("tags",), ("tags", 0)],
    "referrers": [(), ("manifests",), ("manifests", 0), ("manifests", 0, "digest"), ("manifests", 0, "size"),
                  ("manifests", 0, "artifactType"), ("manifests", 0, "mediaType")],
    "token": [(), ("token",), ("access_token",), ("expires_in",), ("issued_at",)],
    "error": [(), ("errors",), ("errors", 0), ("errors", 0, "code"), ("errors", 0, "message")],
    "version": [(), ("Os",), ("Arch",), ("Version",), ("ApiVersion",)],
    "load": [(), ("stream",), ("error",), ("errorDetail",), ("errorDetail", "message")],
    "image": [(), ("Id",)],
}


def set_path(document, path, value):
    """``document`` with the value at ``path`` replaced (a missing key is added); a deep copy."""
    document = json.loads(json.dumps(document))
    if not path:
        return value
    node = document
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return document


ODD_VALUES = (None, True, False, 0, -1, 2 ** 64, 1.5, 1e308, "", "x\udcff", "\udcff" * 3, "\x00\x1b[31m\r",
              "sha256:" + "0" * 64, "../../etc/passwd", "a" * 5000, [], {}, [None], {"": None}, [[[[[]]]]])


def mutate_json(data, rng):
    """One seeded mutation of a JSON document's bytes: a type swap, a deletion, an insertion of an odd
    value, a duplicated key, deep nesting, or a byte-level edit (bit flip, truncation)."""
    try:
        document = json.loads(data.decode("utf-8"))
    except ValueError:
        document = None
    how = rng.choice(("swap", "swap", "delete", "insert", "nest", "flip", "truncate", "raw"))
    if document is None or how in ("flip", "truncate"):
        data = bytearray(data or b"{}")
        if how == "truncate":
            return bytes(data[:rng.randrange(len(data))])
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        return bytes(data)
    nodes = []

    def walk(node, path):
        nodes.append(path)
        if isinstance(node, dict):
            for k in node:
                walk(node[k], path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node[:8]):
                walk(v, path + (i,))
    walk(document, ())
    path = rng.choice(nodes)
    if how == "swap":
        return jdump(set_path(document, path, rng.choice(ODD_VALUES)))
    if how == "nest":
        deep = "[" * 100000 + "]" * 100000 if rng.random() < 0.3 else [[[[[[[[[[{}]]]]]]]]]]
        if isinstance(deep, str):
            return deep.encode()
        return jdump(set_path(document, path, deep))
    if how == "raw":     # numbers json.dumps cannot write, duplicate keys
        text = jdump(document).decode()
        return rng.choice((text.replace("2", "1e400", 1), text.replace("{", '{"mediaType": 7, ', 1),
                           text.replace(":", ': NaN, "x":', 1),
                           text.replace("{", '{"schemaVersion": 1, ', 1))).encode()
    parent_path = path[:-1] if path else ()
    node = document
    for step in parent_path:
        node = node[step]
    if how == "delete" and path:
        del node[path[-1]]
        return jdump(document)
    target = node if isinstance(node, (dict, list)) else document
    value = rng.choice(ODD_VALUES)
    if isinstance(target, dict):
        target[rng.choice(("x\udcff", "", "\x1b", "manifests", "config", "layers", "tags", "token"))] = value
    elif isinstance(target, list):
        target.insert(rng.randrange(len(target) + 1), value)
    return jdump(document)


class Fault:
    """One generic mode applied to one kind of answer (see the module's docstring)."""

    def __init__(self, mode="pass", kind=None, field=None, value=None, every=None, status=None, seed=None):
        self.mode, self.kind, self.field, self.value = mode, kind, field, value
        self.every, self.status, self.seed = every, status, seed
        self.hits = 0                   # answers it bent
        self._lock = threading.Lock()

    def __repr__(self):
        return "Fault(%s)" % ", ".join("%s=%r" % (k, v) for k, v in vars(self).items()
                                       if v is not None and not k.startswith("_") and k != "hits")

    def hit(self):
        with self._lock:
            self.hits += 1

    def bends(self, kind):
        return self.kind == kind and self.mode not in ("pass", "flaky")

    def document(self, kind, value):
        """A JSON document of ``kind`` as the fault makes it (types or fuzz), as bytes; else as given."""
        if self.bends(kind) and self.mode == "types":
            self.hit()
            return jdump(set_path(value, self.field, WRONG_VALUES[self.value]))
        if self.bends(kind) and self.mode == "fuzz":
            self.hit()
            return mutate_json(jdump(value), random.Random("%s-%s" % (self.seed, kind)))
        return jdump(value)


_ZSTD_BOMB = []


def zstd_bomb_layer():
    """(bytes, diff_id) of a zstd layer of 8 KiB whose tar holds one member of 256 MiB of zeros (the
    frames written by hand: run-length blocks); made once a process."""
    if not _ZSTD_BOMB:
        size = 256 << 20
        info = tarfile.TarInfo("big")
        info.size = size
        header = info.tobuf(tarfile.GNU_FORMAT)
        diff_id = hashlib.sha256(header)
        zeros = b"\0" * (1 << 20)
        for _ in range(size >> 20):
            diff_id.update(zeros)
        diff_id.update(b"\0" * 1024)          # the end of the archive
        layer = zstd_frame(header) + zstd_frame(rle=(0, size + 1024))
        _ZSTD_BOMB.append((layer, "sha256:" + diff_id.hexdigest()))
    return _ZSTD_BOMB[0]


def _read_request_body(h):
    body, _ = QuirkProxy.read_body(h)
    return body


class _Answering:
    """Sending an answer's body under the fault's byte-level modes (huge, lying, drip)."""

    stop = None         # threading.Event: the case is over, let go of every held connection

    def send(self, h, kind, status, headers, body, fault):
        body_mode = fault.mode if fault.bends(kind) and h.command != "HEAD" else None
        if body_mode == "drip" and not body:
            body_mode = None        # nothing to drip
        if body_mode == "drip":     # long enough to outlast any case: padded with JSON's white space
            body = body + b" " * max(0, DRIP_BYTES - len(body))
        if body_mode in ("huge", "lying", "drip"):
            fault.hit()
        length = HUGE if body_mode == "huge" else len(body) + 10 if body_mode == "lying" else len(body)
        try:
            h.send_response(status)
            for key, value in headers:
                h.send_header(key, value)
            h.send_header("Content-Length", str(length))
            h.end_headers()
            if h.command == "HEAD":
                return
            if body_mode == "huge":
                h.close_connection = True
                filler = b"\0" if kind in ("blob", "export") else b" "
                piece = (body[:PIECE // 2] + filler * PIECE)[:PIECE]
                sent = 0
                while sent < HUGE and not self.stop.is_set():
                    h.wfile.write(piece)
                    sent += PIECE
                    piece = filler * PIECE
            elif body_mode == "drip":
                h.close_connection = True
                for i in range(len(body)):
                    h.wfile.write(body[i:i + 1])
                    h.wfile.flush()
                    if self.stop.wait(DRIP):
                        return
            else:
                h.wfile.write(body)
                if body_mode == "lying":
                    h.wfile.flush()
                    h.close_connection = True
                    self.stop.wait(HOLD)        # kept open and silent: the 10 bytes never come
        except OSError:
            h.close_connection = True


class _Handler(QuietHandler):
    timeout = HOLD + 10

    def do_ANY(self):
        self.server.fake.handle(self)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_ANY


# ---- the fake registry ----


class FakeRegistry(_Answering):
    """An in-memory registry on loopback with token auth (anonymous pull and push, or alice's
    password), serving repository ``base`` (tags 1, 2, latest: an index of one linux/amd64 image,
    with an SBOM artifact referring to the image's manifest). ``kinds`` counts the answers given
    by kind; ``requests`` counts every request."""

    def __init__(self, fault=None):
        self.fault = fault or Fault()
        self.stop = threading.Event()
        self.requests = 0
        self.kinds = {}
        self._lock = threading.Lock()
        self.blobs = {}                 # digest -> bytes
        self.kind_of_blob = {}          # digest -> "config" or "blob"
        self.manifests = {}             # (repo, digest) -> (media type, bytes)
        self.tags = {}                  # (repo, tag) -> digest
        self.uploads = {}               # uuid -> bytearray
        self.token_auth = []            # the Authorization of each token request
        self.httpd = QuietServer(("127.0.0.1", 0), _Handler)
        self.httpd.fake = self
        self.host = "127.0.0.1:%d" % self.httpd.server_port
        self._seed()
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    # -- the image --

    def _blob(self, data, kind):
        digest = sha256(data)
        self.blobs[digest] = data
        self.kind_of_blob[digest] = kind
        return {"digest": digest, "size": len(data)}

    def _manifest(self, repo, media_type, data, *tags):
        digest = sha256(data)
        self.manifests[(repo, digest)] = (media_type, data)
        for tag in tags:
            self.tags[(repo, tag)] = digest
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def _seed(self):
        fault = self.fault
        layer, diff_id = make_layer([("hello", "file", tiny_elf(), 0o755), ("etc", "dir", None, 0o755)])
        config = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                  "config": {"Entrypoint": ["/hello"], "Env": ["PATH=/usr/bin:/bin"], "Labels": {"a": "b"}},
                  "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                  "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "fake"}]}
        config_desc = dict(self._blob(fault.document("config", config), "config"), mediaType=OCI_CONFIG)
        layer_desc = dict(self._blob(layer, "blob"), mediaType=OCI_LAYER)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc, "layers": [layer_desc],
                    "annotations": {"org.example": "yes"}}
        self.image = self._manifest("base", OCI_MANIFEST, fault.document("manifest", manifest))
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "annotations": {"org.example": "index"},
                 "manifests": [dict(self.image, platform={"architecture": "amd64", "os": "linux"})]}
        self.index = self._manifest("base", OCI_INDEX, fault.document("index", index), "1", "2", "latest")
        sbom = jdump({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "hello",
                      "dataLicense": "CC0-1.0", "documentNamespace": "https://example.com/hello",
                      "creationInfo": {"created": "2024-01-01T00:00:00Z", "creators": ["Tool: fake"]},
                      "packages": []})
        empty = dict(self._blob(b"{}", "config"), mediaType=OCI_EMPTY)
        artifact = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": SPDX, "config": empty,
                    "layers": [dict(self._blob(sbom, "blob"), mediaType=SPDX)], "subject": self.image,
                    "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}}
        self.sbom = self._manifest("base", OCI_MANIFEST, jdump(artifact))
        self._seed_zstd(config)

    def _seed_zstd(self, config):
        """Repository ``zbase`` (tag 1): an image whose one layer is zstd, holding /usr/local/bin: what a
        build whose program goes there decompresses. The damaged-layer and bomb-layer modes bend it."""
        fault = self.fault
        tar, diff_id = make_layer([("usr", "dir", None, 0o755), ("usr/local", "dir", None, 0o755),
                                   ("usr/local/bin", "dir", None, 0o755), ("hello", "file", tiny_elf(), 0o755)],
                                  compress=False)
        layer = zstd_frame(tar)
        if fault.bends("blob") and fault.mode == "damaged-layer":
            fault.hit()
            layer = layer[:len(layer) // 2]
        elif fault.bends("blob") and fault.mode == "bomb-layer":
            fault.hit()
            layer, diff_id = zstd_bomb_layer()
        config = dict(config, rootfs={"type": "layers", "diff_ids": [diff_id]})
        config_desc = dict(self._blob(fault.document("config", config), "config"), mediaType=OCI_CONFIG)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc,
                    "layers": [dict(self._blob(layer, "blob"), mediaType=OCI_LAYER_ZSTD)]}
        image = self._manifest("zbase", OCI_MANIFEST, fault.document("manifest", manifest))
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                 "manifests": [dict(image, platform={"architecture": "amd64", "os": "linux"})]}
        self._manifest("zbase", OCI_INDEX, fault.document("index", index), "1")

    def url(self, path):
        return "http://%s%s" % (self.host, path)

    def handed_out(self, url, kind):
        """A URL the fake hands out in an answer of ``kind``: with user:PLANTEDSECRET@ in the userinfo mode."""
        if self.fault.mode == "userinfo" and self.fault.kind == kind and url.startswith("http://"):
            self.fault.hit()
            return "http://user:%s@%s" % (SECRET, url[len("http://"):])
        return url

    def kind_of_path(self, path):
        """The kind of answer a GET of ``path`` gets: a blob's or a manifest's (None for others)."""
        match = re.match(r"/v2/(.+?)/(manifests|blobs)/(sha256:[0-9a-f]{64}|[^/]+)$", path)
        if not match:
            return None
        repo, what, ref = match.groups()
        if what == "blobs":
            return self.kind_of_blob.get(ref)
        found = self.manifests.get((repo, ref if ref.startswith("sha256:") else self.tags.get((repo, ref))))
        return None if found is None else "index" if found[0] == OCI_INDEX else "manifest"

    # -- answering --

    def answer(self, h, kind, status, headers=(), body=b""):
        if status >= 400 and h.command != "HEAD":
            kind = "error"
        with self._lock:
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
        self.send(h, kind, status, list(headers), body, self.fault)

    def error(self, h, status, code, message, headers=()):
        body = self.fault.document("error", {"errors": [{"code": code, "message": message}]}) \
            if h.command != "HEAD" else b""
        self.answer(h, "error", status, [("Content-Type", "application/json")] + list(headers), body)

    def challenge(self, scope):
        realm = self.handed_out(self.url("/token"), "token")
        value = 'Bearer realm="%s",service="fake"' % realm
        if scope:
            value += ',scope="%s"' % scope
        return [("WWW-Authenticate", value)]

    def handle(self, h):
        fault = self.fault
        body = _read_request_body(h)
        with self._lock:
            self.requests += 1
            n = self.requests
        if fault.mode == "flaky" and n % fault.every == 0:
            fault.hit()
            body = b'{"errors":[{"code":"UNAVAILABLE","message":"try again"}]}' if h.command != "HEAD" else b""
            return self.answer(h, "flaky", fault.status, [("Retry-After", "1"), ("Content-Type", "application/json")],
                               body)
        parts = urllib.parse.urlsplit(h.path)
        path, query = parts.path, dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        redirected = path.startswith("/_r/")     # where the userinfo mode redirects GETs: no auth asked
        if redirected:
            path = path[len("/_r"):]
        elif fault.mode == "userinfo" and h.command == "GET" and fault.kind == self.kind_of_path(path):
            target = self.handed_out(self.url("/_r" + h.path), fault.kind)
            return self.answer(h, "redirect", 307, [("Location", target)])
        if path == "/token":
            return self.token(h, query)
        if not path.startswith("/v2/"):
            return self.error(h, 404, "NOT_FOUND", "no such path")
        auth = h.headers.get("Authorization") or ""
        if not auth.startswith("Bearer fake-token-") and not redirected:
            repo = re.match(r"/v2/(.+?)/(?:manifests|blobs|tags|referrers)/", path)
            scope = "repository:%s:pull,push" % repo.group(1) if repo else ""
            return self.error(h, 401, "UNAUTHORIZED", "authentication required", self.challenge(scope))
        if path == "/v2/":
            return self.answer(h, "v2", 200, [("Content-Type", "application/json")], b"{}")
        rest = path[len("/v2/"):]
        if rest.endswith("/blobs/uploads"):
            rest += "/"
        for marker, route in (("/manifests/", self.manifest), ("/blobs/uploads/", self.upload),
                              ("/blobs/", self.blob), ("/referrers/", self.referrers)):
            if marker in rest:
                repo, _, ref = rest.partition(marker)
                return route(h, repo, ref, query, body)
        if rest.endswith("/tags/list"):
            return self.tag_list(h, rest[:-len("/tags/list")], query)
        return self.error(h, 404, "NOT_FOUND", "no such endpoint")

    def token(self, h, query):
        auth = h.headers.get("Authorization") or ""
        self.token_auth.append(auth)
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode("utf-8", "replace").partition(":")
            if (user, password) != (USER, PASSWORD):
                return self.error(h, 401, "UNAUTHORIZED", "wrong credentials")
        token = "fake-token-%s" % uuid.uuid4().hex
        body = self.fault.document("token", {"token": token, "access_token": token, "expires_in": 300,
                                             "issued_at": "2024-01-01T00:00:00Z"})
        self.answer(h, "token", 200, [("Content-Type", "application/json")], body)

    def manifest(self, h, repo, ref, query, body):
        digest = ref if ref.startswith("sha256:") else self.tags.get((repo, ref))
        if h.command == "PUT":
            media_type = (h.headers.get("Content-Type") or OCI_MANIFEST).split(";")[0]
            try:
                document = json.loads(body.decode())
            except ValueError:
                return self.error(h, 400, "MANIFEST_INVALID", "not JSON")
            digest = sha256(body)
            if ref.startswith("sha256:") and ref != digest:
                return self.error(h, 400, "DIGEST_INVALID", "digest mismatch")
            self.manifests[(repo, digest)] = (media_type, body)
            if not ref.startswith("sha256:"):
                self.tags[(repo, ref)] = digest
            headers = [("Location", self.handed_out(self.url("/v2/%s/manifests/%s" % (repo, digest)), "upload")),
                       ("Docker-Content-Digest", digest)]
            if isinstance(document, dict) and isinstance(document.get("subject"), dict):
                headers.append(("OCI-Subject", str(document["subject"].get("digest"))))
            return self.answer(h, "upload", 201, headers)
        found = self.manifests.get((repo, digest)) if digest else None
        if found is None:
            return self.error(h, 404, "MANIFEST_UNKNOWN", "manifest unknown")
        if h.command == "DELETE":
            del self.manifests[(repo, digest)]
            for key in [k for k, v in self.tags.items() if k[0] == repo and v == digest]:
                del self.tags[key]
            return self.answer(h, "deleted", 202)
        media_type, data = found
        kind = "index" if media_type == OCI_INDEX else "manifest"
        self.answer(h, kind, 200, [("Content-Type", media_type), ("Docker-Content-Digest", digest)], data)

    def blob(self, h, repo, digest, query, body):
        data = self.blobs.get(digest)
        if data is None:
            return self.error(h, 404, "BLOB_UNKNOWN", "blob unknown")
        if h.command == "DELETE":
            return self.answer(h, "deleted", 202)
        self.answer(h, self.kind_of_blob.get(digest, "blob"), 200,
                    [("Content-Type", "application/octet-stream"), ("Docker-Content-Digest", digest)], data)

    def upload(self, h, repo, session, query, body):
        location = lambda path: ("Location", self.handed_out(self.url(path), "upload"))   # noqa: E731
        if h.command == "POST":
            if query.get("mount") in self.blobs:
                return self.answer(h, "upload", 201, [location("/v2/%s/blobs/%s" % (repo, query["mount"])),
                                                      ("Docker-Content-Digest", query["mount"])])
            if "digest" in query:
                return self.finish(h, repo, bytearray(body), query["digest"], location)
            session = uuid.uuid4().hex
            self.uploads[session] = bytearray()
            return self.answer(h, "upload", 202, [location("/v2/%s/blobs/uploads/%s" % (repo, session)),
                                                  ("Range", "0-0"), ("Docker-Upload-UUID", session)])
        data = self.uploads.get(session)
        if data is None:
            return self.error(h, 404, "BLOB_UPLOAD_UNKNOWN", "upload unknown")
        if h.command == "DELETE":
            del self.uploads[session]
            return self.answer(h, "upload", 204)
        if h.command == "GET":
            return self.answer(h, "upload", 204, [location("/v2/%s/blobs/uploads/%s" % (repo, session)),
                                                  ("Range", "0-%d" % (max(len(data), 1) - 1))])
        data += body
        if h.command == "PATCH":
            return self.answer(h, "upload", 202, [location("/v2/%s/blobs/uploads/%s" % (repo, session)),
                                                  ("Range", "0-%d" % (max(len(data), 1) - 1))])
        self.uploads.pop(session, None)
        return self.finish(h, repo, data, query.get("digest", ""), location)

    def finish(self, h, repo, data, digest, location):
        if sha256(bytes(data)) != digest:
            return self.error(h, 400, "DIGEST_INVALID", "digest mismatch")
        self.blobs[digest] = bytes(data)
        self.answer(h, "upload", 201, [location("/v2/%s/blobs/%s" % (repo, digest)), ("Docker-Content-Digest", digest)])

    def _page(self, h, kind, items, start, make, path, key):
        """One page of a list: the fault's self-next and endless modes, else ``TAG_PAGE`` items a page."""
        fault = self.fault
        mode = fault.mode if fault.bends(kind) else None
        if mode in ("self-next", "endless"):
            fault.hit()
            if kind == "tags":
                page = ["t%d-%d" % (start, i) for i in range(PAGE_ITEMS)]
            else:       # the one referrer, under ever new digests (none when there is none)
                page = [dict(items[0], digest=sha256(b"%d-%d" % (start, i))) for i in range(PAGE_ITEMS)] if items else []
            nxt = h.path if mode == "self-next" else "%s?%s=%d" % (path, key, start + 1)
            more = True
        else:
            size = TAG_PAGE if kind == "tags" else 1
            page, more = items[start:start + size], start + size < len(items)
            nxt = "%s?%s=%d" % (path, key, start + size)
            if mode == "userinfo" and not more and start < len(items):
                more, nxt = True, "%s?%s=%d" % (path, key, len(items))
        headers = [("Content-Type", OCI_INDEX if kind == "referrers" else "application/json")]
        if more:
            target = self.handed_out(self.url(nxt), kind) if mode == "userinfo" else nxt
            headers.append(("Link", '<%s>; rel="next"' % target))
        self.answer(h, kind, 200, headers, fault.document(kind, make(page)))

    def tag_list(self, h, repo, query):
        tags = sorted(t for (r, t) in self.tags if r == repo)
        if not tags:
            return self.error(h, 404, "NAME_UNKNOWN", "repository unknown")
        start = int(query.get("page", 0) or 0)
        self._page(h, "tags", tags, start, lambda page: {"name": repo, "tags": page}, "/v2/%s/tags/list" % repo, "page")

    def referrers(self, h, repo, digest, query, body):
        listed = []
        for (r, d), (media_type, data) in sorted(self.manifests.items()):
            try:
                document = json.loads(data.decode())
            except ValueError:
                continue
            if r == repo and isinstance(document, dict) and isinstance(document.get("subject"), dict) \
                    and document["subject"].get("digest") == digest:
                listed.append({"mediaType": media_type, "digest": d, "size": len(data),
                               "artifactType": document.get("artifactType") or OCI_EMPTY})
        start = int(query.get("page", 0) or 0)
        self._page(h, "referrers", listed, start, lambda page: {"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                               "manifests": page},
                   "/v2/%s/referrers/%s" % (repo, digest), "page")

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- the fake engine ----


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):
        pass


class _EngineHandler(_Handler):
    def address_string(self):
        return "unix"


def docker_save_archive(layer_tar, config, name):
    """A docker save archive (Docker before 25: manifest.json, ID/layer.tar, ID.json) of one image."""
    config_bytes = jdump(config)
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = hashlib.sha256(layer_tar).hexdigest() + "/layer.tar"
    manifest = jdump([{"Config": config_name, "RepoTags": [name], "Layers": [layer_name]}])
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for member, data in ((config_name, config_bytes), (layer_name, layer_tar), ("manifest.json", manifest)):
            info = tarfile.TarInfo(member)
            info.size, info.mtime, info.mode = len(data), 1700000000, 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


LOAD_LINE = 4 * 1024 * 1024         # the line size of the huge load stream
LOAD_LINES = 150


class FakeEngine(_Answering):
    """A Docker Engine API on a unix socket of its own (``host``: unix://PATH). Holds one image,
    ``base:1``, that /images/base:1/get exports as docker save does; /images/load reads the archive
    sent and answers JSON lines (its huge mode: ``LOAD_LINES`` lines of ``LOAD_LINE`` bytes)."""

    def __init__(self, fault=None):
        self.fault = fault or Fault()
        self.stop = threading.Event()
        self.kinds = {}
        self.loaded = []            # sizes of the archives loaded
        self._lock = threading.Lock()
        raw, diff_id = make_layer([("hello", "file", tiny_elf(), 0o755)], compress=False)
        self.config = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                       "config": {"Entrypoint": ["/hello"], "Env": ["PATH=/usr/bin:/bin"]},
                       "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
        self.archive = docker_save_archive(raw, self.config, "base:1")
        self.directory = tempfile.mkdtemp(prefix="zi-fe-", dir="/tmp")
        self.path = os.path.join(self.directory, "e.sock")
        self.host = "unix://" + self.path
        self.server = _UnixServer(self.path, _EngineHandler)
        self.server.fake = self
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def answer(self, h, kind, status, headers=(), body=b""):
        with self._lock:
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
        self.send(h, kind, status, list(headers), body, self.fault)

    def handle(self, h):
        body = _read_request_body(h)
        path = urllib.parse.urlsplit(h.path).path
        json_type = [("Content-Type", "application/json")]
        if path.endswith("/_ping"):
            return self.answer(h, "ping", 200, [("Content-Type", "text/plain"), ("Api-Version", "1.43")], b"OK")
        if path.endswith("/version"):
            return self.answer(h, "version", 200, json_type, self.fault.document("version", {
                "Version": "24.0.0", "ApiVersion": "1.43", "Os": "linux", "Arch": "amd64"}))
        if path.endswith("/images/load") and h.command == "POST":
            self.loaded.append(len(body))
            return self.load(h)
        if path.startswith("/images/") and path.endswith("/get"):
            if urllib.parse.unquote(path[len("/images/"):-len("/get")]) not in ("base:1", "base"):
                return self.answer(h, "error", 404, json_type, b'{"message":"No such image"}')
            return self.answer(h, "export", 200, [("Content-Type", "application/x-tar")], self.archive)
        if path.startswith("/images/") and path.endswith("/json"):
            return self.answer(h, "image", 200, json_type, self.fault.document("image", {"Id": sha256(b"image")}))
        return self.answer(h, "error", 404, json_type, b'{"message":"page not found"}')

    def load(self, h):
        fault = self.fault
        if fault.bends("load") and fault.mode == "huge":
            fault.hit()
            with self._lock:
                self.kinds["load"] = self.kinds.get("load", 0) + 1
            h.close_connection = True
            try:
                h.send_response(200)
                h.send_header("Content-Type", "application/json")
                h.end_headers()         # no length: the stream ends when the connection does
                line = b'{"stream":"' + b"x" * (LOAD_LINE - 20) + b'"}\r\n'
                for _ in range(LOAD_LINES):
                    if self.stop.is_set():
                        return
                    h.wfile.write(line)
            except OSError:
                pass
            return
        lines = [{"stream": "Loaded image: base:1\n"}]
        body = b"".join(fault.document("load", line) + b"\r\n" for line in lines)
        self.answer(h, "load", 200, [("Content-Type", "application/json")], body)

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.directory, ignore_errors=True)


# ---- running zeroimage.main in a forked child ----


def _rss_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _status_kb(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _hung_in(stderr):
    """Where the main thread of a killed child was, from faulthandler's dump: its innermost frames in
    zeroimage.py, innermost first."""
    lines = stderr.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("Current thread")), None)
    if start is None:
        return None
    frames = []
    for line in lines[start + 1:]:
        if not line.startswith("  File "):
            break
        if "zeroimage.py" in line:
            frames.append(line.split('", ', 1)[1].strip())
    return frames[:3]


def _child(case, patches, wait_scale):
    """In the forked child: the case's environment, files and monkeypatches, then main(argv); the
    result written to case.result_path; never returns."""
    result = {"code": None, "traceback": None, "waits": [], "unraisable": [], "problems": []}
    try:
        os.chdir(case.workdir)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            target = os.open(os.path.join(case.logdir, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.stdin = open(0, "r", closefd=False)
        sys.stdout = open(1, "w", closefd=False, encoding="utf-8", errors="backslashreplace")
        sys.stderr = open(2, "w", closefd=False, encoding="utf-8", errors="backslashreplace")
        os.environ.clear()
        os.environ.update(case.env)
        import zeroimage
        for name, value in patches.items():
            setattr(zeroimage, name, value)
        waits = result["waits"]
        transport = getattr(zeroimage, "Transport", None)
        if transport is not None and hasattr(transport, "wait") and wait_scale != 1:
            def wait(self, seconds, _waits=waits):
                _waits.append(seconds)
                if self.cancelled.wait(max(0.0, seconds) * wait_scale):
                    raise zeroimage.CancelledError()
            transport.wait = wait
        sys.unraisablehook = lambda u: result["unraisable"].append(
            "%s: %s" % (type(u.exc_value).__name__, u.exc_value)) if hasattr(sys, "unraisablehook") else None
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")        # the peak RSS starts from here
        except OSError:
            pass
        result["rss_before"] = _rss_kb("VmRSS")
        with open(os.path.join(case.logdir, "rss_before"), "w") as f:
            f.write(str(result["rss_before"]))
        import faulthandler
        faulthandler.register(signal.SIGUSR1, file=sys.__stderr__ if sys.__stderr__ else sys.stderr, all_threads=True)
        try:
            result["code"] = zeroimage.main(case.argv)
        except BaseException:       # noqa: B902 -- what escapes main is the finding
            result["traceback"] = traceback.format_exc()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        import gc
        gc.collect()
        result["rss_peak"] = _rss_kb("VmHWM")
        if result["code"] == 0 and case.output and os.path.exists(case.output):
            import speccheck
            check_output = getattr(case, "check_output", None) or speccheck.check    # (export: a filesystem's tar)
            result["problems"] = list(check_output(case.output))
    except BaseException:       # noqa: B902
        result["traceback"] = (result["traceback"] or "") + "\n[harness] " + traceback.format_exc()
    finally:
        try:
            with open(case.result_path, "w") as f:
                json.dump(result, f, default=repr)
        finally:
            os._exit(0)


class Case:
    """One run of ``zeroimage.main(argv)`` against fakes. ``prepare(case)`` (in the parent) starts
    the fakes and fills ``argv``, ``env``, ``output``; ``cleanup(case)`` stops them."""

    def __init__(self, name, prepare, bound, expect=None, info=None):
        self.name, self.prepare, self.bound, self.expect, self.info = name, prepare, bound, expect, info or {}
        self.argv, self.env, self.output = [], {}, None
        self.fakes = []
        self.result = None

    def start(self, root, patches, wait_scale):
        self.workdir = os.path.join(root, "work")
        self.logdir = os.path.join(root, "log")
        os.makedirs(self.workdir)
        os.makedirs(self.logdir)
        self.result_path = os.path.join(self.logdir, "result.json")
        self.prepare(self)
        self.before = set(os.listdir(self.workdir))
        sys.stdout.flush()
        sys.stderr.flush()
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)     # 3.12: fork() of a threaded process
            pid = os.fork()
        if pid == 0:
            _child(self, patches, wait_scale)
        self.pid, self.started = pid, time.monotonic()
        self.peak_at_kill = None

    def poll(self):
        """True when the child has ended (or was killed past its bound)."""
        pid, status, _ = os.wait4(self.pid, os.WNOHANG)
        elapsed = time.monotonic() - self.started
        killed = False
        if pid == 0:
            if elapsed <= self.bound + 10:
                return False
            self.peak_at_kill = _status_kb(self.pid, "VmHWM")
            stderr = os.path.join(self.logdir, "stderr")
            size = os.path.getsize(stderr)
            os.kill(self.pid, signal.SIGUSR1)      # faulthandler: every thread's stack, to stderr
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and os.path.getsize(stderr) == size:
                time.sleep(0.05)    # polled, bounded: the dump has begun
            time.sleep(0.2)
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            killed = True
        self.finish(elapsed, killed)
        return True

    def finish(self, elapsed, killed):
        for fake in self.fakes:
            fake.close()
        result = {}
        if os.path.exists(self.result_path):
            with open(self.result_path) as f:
                result = json.load(f)
        for name in ("stdout", "stderr"):
            with open(os.path.join(self.logdir, name), encoding="utf-8", errors="replace") as f:
                result[name] = f.read()
        result["elapsed"] = elapsed
        result["killed"] = killed
        if killed:
            result["rss_peak"] = self.peak_at_kill
            try:
                with open(os.path.join(self.logdir, "rss_before")) as f:
                    result["rss_before"] = int(f.read())
            except (OSError, ValueError):
                pass
            result["hung_in"] = _hung_in(result["stderr"])
        result["left"] = sorted(set(os.listdir(self.workdir)) - self.before)
        result["hits"] = [getattr(f, "fault", None).hits for f in self.fakes if getattr(f, "fault", None) is not None]
        result["kinds"] = {}
        for fake in self.fakes:
            for k, v in getattr(fake, "kinds", {}).items():
                result["kinds"][k] = result["kinds"].get(k, 0) + v
        self.result = result


def run_cases(cases, patches, jobs=4, wait_scale=1.0, say=None):
    """Run every case, ``jobs`` at a time, each in a fresh directory; their results are on the cases."""
    root = tempfile.mkdtemp(prefix="zi-hostile-")
    todo, running = list(cases), []
    try:
        while todo or running:
            while todo and len(running) < jobs:
                case = todo.pop(0)
                case.start(os.path.join(root, "%d" % len(os.listdir(root))), patches, wait_scale)
                running.append(case)
            for case in list(running):
                if case.poll():
                    running.remove(case)
                    if say:
                        say(case)
            if running:
                time.sleep(0.01)        # polling the children, each bounded by its case's bound
    finally:
        for case in running:
            os.kill(case.pid, signal.SIGKILL)
            os.waitpid(case.pid, 0)
            for fake in case.fakes:
                fake.close()
        shutil.rmtree(root, ignore_errors=True)
    return cases
