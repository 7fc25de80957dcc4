#!/usr/bin/env python3
"""zeroimage: container images for single-binary programs, without Docker.

``zeroimage build --from BASE some-program`` makes the image that

    FROM BASE
    COPY some-program /some-program
    ENTRYPOINT ["/some-program"]

would, and pushes it to a registry or writes it as an OCI image layout in a
tar archive that skopeo, podman, umoci and docker can all read.  It pulls bases
from registries or archives, builds multi-platform indexes, and handles registry
credentials as Docker does.  One module, standard library only: copy this file
into your project and ``import zeroimage`` (``build``, ``pull``, ``push_archive``,
``inspect``, ``login``, ``check_auth``), or run it.
"""

import argparse
import base64
import collections
import contextlib
import copy
import dataclasses
import datetime
import hashlib
import importlib
import io
import json
import logging
import os
import posixpath
import re
import shutil
import signal
import stat
import struct
import sys
import tarfile
import tempfile
import time
import urllib.parse
import zlib
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple


class _LazyModule:
    """A standard-library module imported on first use. The network stack (ssl, http.client,
    email, ...) costs ~25 ms that ``--help`` and offline builds do not need."""

    def __init__(self, name: str):
        self._lazy_name = name

    def __getattr__(self, attr: str):
        value = getattr(importlib.import_module(self._lazy_name), attr)
        setattr(self, attr, value)          # found directly from now on
        return value


concurrent_futures = _LazyModule("concurrent.futures")
email_utils = _LazyModule("email.utils")
getpass = _LazyModule("getpass")
http_client = _LazyModule("http.client")
ipaddress = _LazyModule("ipaddress")
socket = _LazyModule("socket")
ssl = _LazyModule("ssl")
subprocess = _LazyModule("subprocess")
threading = _LazyModule("threading")
urllib_request = _LazyModule("urllib.request")

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # errors
    "ZeroImageError", "UsageError", "InvalidReferenceError", "InvalidPlatformError",
    "DigestMismatchError", "PlatformNotFoundError", "ArchiveError", "CredentialError",
    "RegistryError", "AuthenticationError", "NotFoundError", "NetworkError",
    # values
    "Reference", "Platform", "ElfInfo", "Blob", "BuildResult", "Saved", "ImageOptions",
    # functions
    "read_elf", "select_manifest", "derive_config", "make_manifest", "canonical_json",
    "write_layer", "layer_diff_id", "GzipWriter", "LayerCache", "Layout", "Image", "assemble_image",
    "write_image_archive", "describe_image", "Progress", "progress",
    "Credentials", "resolve_credentials", "store_credentials", "erase_credentials", "parse_challenges",
    "tree_entries", "write_layout_dir", "make_image_index", "push_images",
    "Transport", "Registry", "Registries", "build", "pull", "push_archive", "push_image", "inspect",
    "login", "logout", "check_auth", "build_parser", "main",
]

log = logging.getLogger("zeroimage")

# ---- Constants ----

OCI_LAYOUT_VERSION = "1.0.0"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

# A media-type family: what an image built on a base of that family uses.
OCI_FAMILY = {"manifest": OCI_MANIFEST, "index": OCI_INDEX,
              "config": OCI_CONFIG, "layer": OCI_LAYER_GZIP}
DOCKER_FAMILY = {"manifest": DOCKER_MANIFEST, "index": DOCKER_MANIFEST_LIST,
                 "config": DOCKER_CONFIG, "layer": DOCKER_LAYER_GZIP}
IMAGE_MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
MANIFEST_ACCEPT = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
# The same layer bytes, described in each family (zstd and others have no Docker name and stay as they are).
LAYER_TYPE_PAIRS = (
    ("application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.docker.image.rootfs.diff.tar.gzip"),
    ("application/vnd.oci.image.layer.v1.tar", "application/vnd.docker.image.rootfs.diff.tar"),
    ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
     "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
)

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
ANNOTATION_DOCKER_REFERENCE_TYPE = "vnd.docker.reference.type"
ANNOTATION_BASE_NAME = "org.opencontainers.image.base.name"
ANNOTATION_BASE_DIGEST = "org.opencontainers.image.base.digest"

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"

DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MAX_JSON_SIZE = 4 * 1024 * 1024      # manifests, configs, index.json
MAX_INDEX_DEPTH = 4                  # index -> index -> ... -> manifest
CHUNK_SIZE = 1024 * 1024

# Where hosts keep their CA bundle (Debian/Ubuntu, Fedora/RHEL, openSUSE, Alpine/BSD/macOS).
HOST_CA_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
    "/usr/local/etc/openssl/cert.pem",
)
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

# ---- Errors ----


class ZeroImageError(Exception):
    """Root of every error zeroimage raises on purpose; the CLI prints it as one line."""

    exit_code = 1


class UsageError(ZeroImageError):
    """The command line itself is wrong (exit status 2)."""

    exit_code = 2


class InvalidReferenceError(ZeroImageError, ValueError):
    """An image reference or name does not follow Docker's grammar."""


class InvalidPlatformError(ZeroImageError, ValueError):
    """A platform string is not os/arch[/variant]."""


class DigestMismatchError(ZeroImageError):
    """Bytes did not hash to the digest that names them."""

    def __init__(self, what: str, expected: str, actual: str):
        super().__init__("%s does not match its digest: expected %s, got %s" % (what, expected, actual))
        self.expected = expected
        self.actual = actual


class PlatformNotFoundError(ZeroImageError):
    """The base has no image for the wanted platform."""

    def __init__(self, wanted: "Platform", available: Sequence["Platform"], where: str = "the base"):
        listed = ", ".join(sorted(set(str(p) for p in available))) or "none"
        super().__init__("%s has no image for %s (it has: %s); pick one with --platform"
                         % (where, wanted, listed))
        self.wanted = wanted
        self.available = list(available)


class ArchiveError(ZeroImageError):
    """An OCI layout or archive is malformed, unsafe or incomplete."""


class CredentialError(ZeroImageError):
    """config.json or a credential helper could not be read or used."""


class RegistryError(ZeroImageError):
    """A registry answered with an error (or not at all as expected)."""

    def __init__(self, status: int, method: str, url: str, detail: str = "", errors=()):
        reason = detail or http_client.responses.get(status, "unexpected answer")
        super().__init__("%s (%s %s: HTTP %s)" % (reason, method, url, status))
        self.status, self.method, self.url, self.detail, self.errors = status, method, url, detail, list(errors)


class NetworkError(ZeroImageError):
    """A registry could not be reached, or the connection broke (after the retries)."""


class AuthenticationError(RegistryError):
    """401/403: missing, wrong or insufficient credentials."""


class NotFoundError(RegistryError):
    """404: no such repository, manifest or blob."""


# ---- Digests and streams ----

_DIGEST_RE = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")


def parse_digest(text: str) -> Tuple[str, str]:
    """Split ``sha256:<hex>`` into (algorithm, hex); refuse anything else."""
    if not isinstance(text, str) or not _DIGEST_RE.match(text):
        raise ZeroImageError("not a valid digest: %r" % (text,))
    algorithm, _, hexpart = text.partition(":")
    return algorithm, hexpart


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class HashingWriter:
    """A write-only stream that counts and hashes what passes on to ``out`` (or nowhere)."""

    def __init__(self, out=None, algorithm: str = "sha256"):
        self._out = out
        self._hash = hashlib.new(algorithm)
        self._algorithm = algorithm
        self.size = 0

    def write(self, data) -> int:
        self._hash.update(data)
        self.size += len(data)
        if self._out is not None:
            self._out.write(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        if self._out is not None:
            self._out.flush()

    @property
    def digest(self) -> str:
        return "%s:%s" % (self._algorithm, self._hash.hexdigest())


class VerifyingReader:
    """Reads exactly ``size`` bytes from ``raw`` and checks them against ``digest``.

    The check happens as the last expected byte passes, so a consumer that reads
    exactly ``size`` bytes (as tarfile does) is protected too.  Short or long
    streams and wrong bytes raise before anything can use the result.
    """

    def __init__(self, raw, digest: str, size: int, what: str):
        algorithm, _ = parse_digest(digest)
        self._raw = raw
        self._hash = hashlib.new(algorithm)
        self._algorithm = algorithm
        self._digest = digest
        self._size = size
        self._seen = 0
        self._what = what
        if size == 0:           # no read will reach the end of an empty blob: check it now
            self._check()

    def read(self, n: int = -1) -> bytes:
        left = self._size - self._seen
        if n is None or n < 0 or n > left:
            n = left
        data = self._raw.read(n) if n else b""
        while len(data) < n:            # fill the request, so a short source is caught here
            more = self._raw.read(n - len(data))
            if not more:
                raise ArchiveError("%s is truncated: %d of %d bytes" % (self._what, self._seen + len(data), self._size))
            data += more
        self._hash.update(data)
        self._seen += len(data)
        if self._seen == self._size and n:
            self._check()
        return data

    def _check(self) -> None:
        actual = "%s:%s" % (self._algorithm, self._hash.hexdigest())
        if actual != self._digest:
            raise DigestMismatchError(self._what, self._digest, actual)
        if self._raw.read(1):
            raise ArchiveError("%s is longer than its descriptor says (%d bytes)" % (self._what, self._size))

    def close(self) -> None:
        self._raw.close()


def copy_stream(src, dst, size: Optional[int] = None) -> int:
    """Copy in CHUNK_SIZE pieces; with ``size``, exactly that many bytes or an error."""
    done = 0
    while size is None or done < size:
        want = CHUNK_SIZE if size is None else min(CHUNK_SIZE, size - done)
        data = src.read(want)
        if not data:
            if size is not None:
                raise ZeroImageError("stream ended after %d of %d bytes" % (done, size))
            break
        dst.write(data)
        done += len(data)
    return done


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def atomic_output(path: str, mode: Optional[int] = None):
    """Yield a file beside ``path``; rename it over ``path`` (with ``mode``, default 0666 less the umask)
    only if the block succeeds."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ZeroImageError("cannot write %s: it is a directory" % path)
    # Ctrl-C or SIGTERM between creating the file and entering the try below would leave it behind:
    # hold those signals until the try can clean up.
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS) if hasattr(signal, "pthread_sigmask") else None
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    except OSError as e:
        if held is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        raise ZeroImageError("cannot write %s: %s" % (path, e.strerror or e))
    try:
        if held is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)     # a held signal is raised here, inside
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ---- Progress ----


def _human_size(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (size, unit)
        size /= 1000.0
    return str(size)


class Progress:
    """What a command is doing, on stderr. ``mode``: "off" (the library's default, and -q);
    "plain": one line per finished step, no control characters (CI logs); "tty": a line per blob
    in flight with bytes done/total and rate, redrawn in place, collapsed to a summary at the end.
    Thread-safe: parallel transfers report at once."""

    def __init__(self):
        self.configure(None, "off")

    def configure(self, stream, mode: str) -> None:
        self.stream, self.mode = stream, mode
        self._lock = threading.RLock()
        self._active = []
        self._drawn = 0
        self._last_draw = 0.0
        self.started = time.monotonic()
        self.counts = collections.Counter()
        self.sizes = collections.Counter()

    def task(self, verb: str, label: str, total: int) -> "_Task":
        task = _Task(self, verb, label, total)
        with self._lock:
            self._active.append(task)
            self._draw()
        return task

    def event(self, verb: str, label: str, size: int) -> None:
        """Something that happened at once (a blob mounted or already there)."""
        with self._lock:
            self.counts[verb] += 1
            self.sizes[verb] += size
            if self.mode == "plain":
                self._write("zeroimage: %s %s (%s)\n" % (verb, label, _human_size(size)))

    def finished(self, task: "_Task") -> None:
        with self._lock:
            if task in self._active:
                self._active.remove(task)
            elapsed = max(time.monotonic() - task.started, 1e-6)
            self.counts[task.done_verb] += 1
            self.sizes[task.done_verb] += task.done
            if self.mode == "plain":
                self._write("zeroimage: %s %s %s in %.1f s (%s/s)\n" % (
                    task.done_verb, task.label, _human_size(task.done), elapsed, _human_size(task.done / elapsed)))
            self._draw(force=True)

    def note(self, text: str) -> None:
        """A log line: printed above the progress lines, which are drawn again below it."""
        with self._lock:
            self._clear()
            if self.stream is not None:
                self._write(text + "\n")
            self._draw(force=True)

    def summary(self) -> Optional[str]:
        """``pushed 3 blobs (21.4 MB), mounted 2, skipped 1 in 1.8 s``, or None if nothing moved."""
        parts = []
        for verb in ("compressed", "uploaded", "downloaded"):
            if self.counts[verb]:
                parts.append("%s %d blob%s (%s)" % ({"uploaded": "pushed"}.get(verb, verb), self.counts[verb],
                                                   "" if self.counts[verb] == 1 else "s", _human_size(self.sizes[verb])))
        for verb in ("mounted", "skipped"):
            if self.counts[verb]:
                parts.append("%s %d" % (verb, self.counts[verb]))
        if not parts:
            return None
        return "%s in %.1f s" % (", ".join(parts), time.monotonic() - self.started)

    def close(self) -> None:
        with self._lock:
            self._clear()
            self._active = []

    def _write(self, text: str) -> None:
        if self.stream is not None and self.mode != "off":
            self.stream.write(text)
            self.stream.flush()

    def _clear(self) -> None:
        if self.mode == "tty" and self._drawn:
            self._write("\x1b[%dA\x1b[J" % self._drawn)
            self._drawn = 0

    def _draw(self, force: bool = False) -> None:
        if self.mode != "tty" or (not force and time.monotonic() - self._last_draw < 0.1):
            return
        self._last_draw = time.monotonic()
        self._clear()
        lines = [task.line() for task in self._active[-8:]]
        if lines:
            self._write("".join(line[:150] + "\n" for line in lines))
        self._drawn = len(lines)


class _Task:
    """One blob on its way: bytes counted as they pass."""

    DONE = {"compressing": "compressed", "uploading": "uploaded", "downloading": "downloaded"}

    def __init__(self, progress: Progress, verb: str, label: str, total: int):
        self.progress, self.verb, self.label, self.total = progress, verb, label, total
        self.done_verb = self.DONE.get(verb, verb)
        self.done = 0
        self.started = time.monotonic()

    def advance(self, n: int) -> None:
        self.done += n
        if self.progress.mode == "tty":
            with self.progress._lock:
                self.progress._draw()

    def finish(self) -> None:
        self.progress.finished(self)

    def line(self) -> str:
        rate = self.done / max(time.monotonic() - self.started, 1e-6)
        return "  %-11s %-24s %10s / %-10s %10s/s" % (self.verb, self.label, _human_size(self.done),
                                                     _human_size(self.total), _human_size(rate))


def _short(digest: str) -> str:
    return digest[:19]


class _Counted:
    """A reader or writer that reports the bytes passing through it to a task."""

    def __init__(self, stream, task: _Task):
        self._stream = stream
        self._task = task

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self._task.advance(len(data))
        return data

    def write(self, data) -> int:
        self._task.advance(len(data))
        return self._stream.write(data)

    def close(self) -> None:
        self._stream.close()


progress = Progress()


# ---- References ----

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(r"^(?:%s(?:\.%s)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$" % (_DOMAIN_COMPONENT, _DOMAIN_COMPONENT))
_PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_MAX_NAME_LENGTH = 255


@dataclasses.dataclass(frozen=True)
class Reference:
    """An image reference in Docker's grammar, normalised (``busybox`` → ``docker.io/library/busybox:latest``).

    A frozen dataclass, not a tuple: ``"%s" % ref`` must format the reference, not unpack it.
    """

    registry: str
    repository: str
    tag: Optional[str] = None
    digest: Optional[str] = None

    @classmethod
    def parse(cls, text: str, default_tag: Optional[str] = "latest") -> "Reference":
        if not text or text != text.strip():
            raise InvalidReferenceError("invalid reference %r: empty or surrounded by spaces" % (text,))
        name, digest = text, None
        if "@" in text:
            name, digest = text.split("@", 1)
            if not _DIGEST_RE.match(digest):
                raise InvalidReferenceError("invalid reference %r: %r is not a digest like sha256:<64 hex>" % (text, digest))
        tag = None
        slash, colon = name.rfind("/"), name.rfind(":")
        if colon > slash:
            name, tag = name[:colon], name[colon + 1:]
            if not _TAG_RE.match(tag):
                raise InvalidReferenceError("invalid reference %r: bad tag %r (letters, digits, _ . -; at most 128)" % (text, tag))
        registry, path = DOCKER_HUB, name
        first, sep, rest = name.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
            if not _DOMAIN_RE.match(first):
                raise InvalidReferenceError("invalid reference %r: bad registry host %r" % (text, first))
            registry, path = first, rest
        if registry == "index.docker.io":
            registry = DOCKER_HUB
        for component in path.split("/"):
            if not _PATH_COMPONENT_RE.match(component):
                hint = " (repository names must be lowercase)" if component.lower() != component else ""
                raise InvalidReferenceError("invalid reference %r: bad name component %r%s" % (text, component, hint))
        if registry == DOCKER_HUB and "/" not in path:
            path = "library/" + path
        if len(registry) + 1 + len(path) > _MAX_NAME_LENGTH:
            raise InvalidReferenceError("invalid reference %r: name longer than %d characters" % (text, _MAX_NAME_LENGTH))
        if tag is None and digest is None:
            tag = default_tag
        return cls(registry, path, tag, digest)

    @property
    def name(self) -> str:
        return "%s/%s" % (self.registry, self.repository)

    @property
    def familiar_name(self) -> str:
        """The short form Docker shows: ``busybox`` for docker.io/library/busybox."""
        if self.registry != DOCKER_HUB:
            return self.name
        repository = self.repository
        return repository[len("library/"):] if repository.startswith("library/") else repository

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def config_key(self) -> str:
        return DOCKER_HUB_CONFIG_KEY if self.registry == DOCKER_HUB else self.registry

    def scope(self, actions: Sequence[str]) -> str:
        return "repository:%s:%s" % (self.repository, ",".join(actions))

    def replace(self, **changes) -> "Reference":
        return dataclasses.replace(self, **changes)

    def _suffix(self) -> str:
        return (":" + self.tag if self.tag else "") + ("@" + self.digest if self.digest else "")

    def familiar(self) -> str:
        return self.familiar_name + self._suffix()

    def __str__(self) -> str:
        return self.name + self._suffix()


def name_from_filename(filename: str) -> str:
    """A valid repository name made from a file name (``My_App.exe`` → ``my_app.exe``)."""
    name = re.sub(r"[^a-z0-9._-]+", "-", os.path.basename(filename).lower())
    name = re.sub(r"^[._-]+|[._-]+$", "", name)
    name = re.sub(r"-*([._])[._-]*", r"\1", name)
    return name or "image"


# ---- Platforms ----

_ARCH_ALIASES = {
    "x86_64": "amd64", "x86-64": "amd64", "x64": "amd64",
    "aarch64": "arm64", "armv8": "arm64",
    "i386": "386", "i486": "386", "i586": "386", "i686": "386", "x86": "386",
    "armhf": "arm", "armel": "arm", "armv7": "arm", "armv7l": "arm", "armv6": "arm", "armv6l": "arm",
}
_ARCH_IMPLIED_VARIANT = {"armhf": "v7", "armv7": "v7", "armv7l": "v7", "armel": "v6", "armv6": "v6", "armv6l": "v6"}
_DEFAULT_VARIANT = {"arm": "v7", "arm64": "v8", "amd64": "v1"}
_PLATFORM_PART_RE = re.compile(r"^[a-z0-9_.-]+$")


@dataclasses.dataclass(frozen=True)
class Platform:
    """An OCI platform: ``linux/amd64``, ``linux/arm/v7``, ``linux/arm64/v8`` (a dataclass, like Reference)."""

    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> "Platform":
        parts = text.strip().lower().split("/") if isinstance(text, str) else []
        if len(parts) not in (2, 3) or not all(_PLATFORM_PART_RE.match(p) for p in parts):
            raise InvalidPlatformError("invalid platform %r: expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7" % (text,))
        return cls.make(*parts)

    @classmethod
    def make(cls, os_name: str, architecture: str, variant: str = "") -> "Platform":
        """Normalise aliases: aarch64→arm64, x86_64→amd64, armhf→arm/v7, arm→arm/v7, 8→v8."""
        variant = variant or _ARCH_IMPLIED_VARIANT.get(architecture, "")
        architecture = _ARCH_ALIASES.get(architecture, architecture)
        if variant.isdigit():
            variant = "v" + variant
        if architecture == "arm" and not variant:
            variant = "v7"
        return cls(os_name, architecture, variant)

    @classmethod
    def from_dict(cls, data) -> Optional["Platform"]:
        if not isinstance(data, dict):
            return None
        os_name, arch = data.get("os"), data.get("architecture")
        if not isinstance(os_name, str) or not isinstance(arch, str) or not os_name or not arch:
            return None
        variant = data.get("variant")
        return cls.make(os_name.lower(), arch.lower(), variant.lower() if isinstance(variant, str) else "")

    def matches(self, other: "Platform") -> bool:
        """Same os and architecture, and the same variant once defaults are filled in (arm64 ≡ arm64/v8)."""
        if self.os != other.os or self.architecture != other.architecture:
            return False
        default = _DEFAULT_VARIANT.get(self.architecture, "")
        return (self.variant or default) == (other.variant or default)

    def to_dict(self) -> Dict[str, str]:
        data = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            data["variant"] = self.variant
        return data

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


DEFAULT_PLATFORM = Platform("linux", "amd64")


class Candidate(NamedTuple):
    """One image manifest reachable from an index, as a choice for ``select_manifest``."""

    descriptor: dict
    platform: Optional[Platform]
    ref_name: str = ""

    def describe(self) -> str:
        name = " %s" % self.ref_name if self.ref_name else ""
        return "%s%s (%s)" % (self.platform or "unknown platform", name, self.descriptor.get("digest", "?")[:19])


def select_manifest(candidates: Sequence[Candidate], platform: Platform,
                    ref_name: Optional[str] = None, where: str = "the base") -> Candidate:
    """Pick the one candidate for ``platform`` (and ``ref_name``); no match or several is an error."""
    pool = [c for c in candidates if ref_name is None or ref_name in _ref_names(c.ref_name)]
    if ref_name is not None and not pool:
        names = sorted(set(c.ref_name for c in candidates if c.ref_name))
        raise ArchiveError("%s has no image named %r (it has: %s)" % (where, ref_name, ", ".join(names) or "no names"))
    matching = [c for c in pool if c.platform is not None and c.platform.matches(platform)]
    if not matching:
        raise PlatformNotFoundError(platform, [c.platform for c in pool if c.platform], where)
    if len(set(c.descriptor["digest"] for c in matching)) > 1:
        raise ArchiveError("%s holds several images for %s: %s; name one as PATH:NAME"
                           % (where, platform, "; ".join(c.describe() for c in matching)))
    return matching[0]


def _ref_names(ref_name: str) -> List[str]:
    """A candidate answers to its full name, its familiar name and its bare tag."""
    if not ref_name:
        return []
    names = [ref_name]
    try:
        ref = Reference.parse(ref_name)
        names += [str(ref), ref.familiar(), ref.tag or ""]
    except InvalidReferenceError:
        pass
    return names


# ---- ELF ----

# e_machine -> architecture, for (class, data) where it matters.
_ELF_MACHINES = {
    3: "386", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390x", 40: "arm", 62: "amd64",
    183: "arm64", 243: "riscv64", 258: "loong64",
}
_PT_INTERP = 3


class ElfInfo(NamedTuple):
    """What the entrypoint's ELF header says: its platform (None if unknown) and its interpreter."""

    machine: int
    platform: Optional[Platform]
    interpreter: Optional[str]


def read_elf(f) -> Optional[ElfInfo]:
    """Read an ELF header from a seekable binary file; None when it is not ELF."""
    f.seek(0)
    header = f.read(64)
    if len(header) < 52 or header[:4] != b"\x7fELF" or header[4] not in (1, 2) or header[5] not in (1, 2):
        return None
    is64, endian = header[4] == 2, "<" if header[5] == 1 else ">"
    if is64 and len(header) < 64:
        return None
    (machine,) = struct.unpack_from(endian + "H", header, 18)
    if is64:
        (phoff,) = struct.unpack_from(endian + "Q", header, 32)
        phentsize, phnum = struct.unpack_from(endian + "HH", header, 54)
    else:
        (phoff,) = struct.unpack_from(endian + "I", header, 28)
        phentsize, phnum = struct.unpack_from(endian + "HH", header, 42)
    return ElfInfo(machine, _elf_platform(machine, is64, endian == "<"),
                   _elf_interpreter(f, endian, is64, phoff, phentsize, phnum))


def _elf_platform(machine: int, is64: bool, little: bool) -> Optional[Platform]:
    arch = _ELF_MACHINES.get(machine)
    if arch is None:
        return None
    if arch == "mips":
        arch = ("mips64" if is64 else "mips") + ("le" if little else "")
    elif arch == "ppc64":
        arch = "ppc64le" if little else "ppc64"
    return Platform.make("linux", arch)


def _elf_interpreter(f, endian: str, is64: bool, phoff: int, phentsize: int, phnum: int) -> Optional[str]:
    layout = (endian + "IIQQQQ", 0, 2, 5) if is64 else (endian + "IIIIII", 0, 1, 4)
    fmt, type_at, offset_at, size_at = layout
    size = f.seek(0, io.SEEK_END)
    if phentsize < struct.calcsize(fmt) or phoff + phnum * phentsize > size:
        return None     # a damaged or truncated header: no program headers to trust
    for i in range(min(phnum, 4096)):
        f.seek(phoff + i * phentsize)
        raw = f.read(struct.calcsize(fmt))
        if len(raw) < struct.calcsize(fmt):
            return None
        fields = struct.unpack(fmt, raw)
        if fields[type_at] == _PT_INTERP:
            if fields[offset_at] >= size:
                return None
            f.seek(fields[offset_at])
            path = f.read(min(fields[size_at], 4096))
            return path.split(b"\0", 1)[0].decode("utf-8", "replace")
    return None


# ---- Manifests and configs ----


def canonical_json(obj) -> bytes:
    """The one JSON encoding zeroimage writes: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def descriptor(media_type: str, digest: str, size: int, **extra) -> dict:
    desc = {"mediaType": media_type, "digest": digest, "size": size}
    desc.update({k: v for k, v in extra.items() if v})
    return desc


def rfc3339(timestamp: int) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def created_timestamp(environ=None) -> int:
    """``SOURCE_DATE_EPOCH`` when set (reproducible builds), else now."""
    environ = os.environ if environ is None else environ
    value = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    if not value.isdigit():
        raise ZeroImageError("SOURCE_DATE_EPOCH must be a whole number of seconds, not %r" % value)
    return int(value)


class AddedLayer(NamedTuple):
    """A layer this build puts on top of the base: its uncompressed digest and its history line."""

    diff_id: str
    created_by: str


def base_config_for(platform: Platform) -> dict:
    """The config of an empty base (``FROM scratch``), with Docker's default PATH."""
    config = {"config": {"Env": [DEFAULT_PATH_ENV]}, "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
    config.update(platform.to_dict())
    return config


class ImageOptions(NamedTuple):
    """What ``--env``, ``--label``, ``--user``, ``--workdir``, ``--cmd``, ``--expose``, ``--annotation``
    and ``--add`` ask of an image."""

    env: Sequence[Tuple[str, str]] = ()
    labels: Sequence[Tuple[str, str]] = ()
    annotations: Sequence[Tuple[str, str]] = ()
    user: Optional[str] = None
    workdir: Optional[str] = None
    cmd: Optional[Sequence[str]] = None
    expose: Sequence[str] = ()                  # "8080/tcp"
    add: Sequence[Tuple[str, str]] = ()         # (host path, absolute image path)


def _set_env(env: Sequence[str], key: str, value: str) -> List[str]:
    """``KEY=VALUE`` replacing an inherited ``KEY`` in place, or appended."""
    entry = "%s=%s" % (key, value)
    found = [i for i, item in enumerate(env) if isinstance(item, str) and item.split("=", 1)[0] == key]
    env = list(env)
    if found:
        env[found[0]] = entry
    else:
        env.append(entry)
    return env


def derive_config(base: dict, platform: Platform, layers: Sequence[AddedLayer],
                  entrypoint: Sequence[str], created: str, options: ImageOptions = ImageOptions()) -> dict:
    """The new image config: the base's, every unknown field kept, plus our layers, entrypoint and options."""
    config = copy.deepcopy(base)
    runtime = config.get("config")
    runtime = dict(runtime) if isinstance(runtime, dict) else {}
    runtime["Entrypoint"] = list(entrypoint)
    runtime.pop("Cmd", None)            # Docker drops an inherited CMD when ENTRYPOINT is set
    if options.cmd is not None:
        runtime["Cmd"] = list(options.cmd)
    for key, value in options.env:
        runtime["Env"] = _set_env(runtime.get("Env") or [], key, value)
    if options.labels:
        runtime["Labels"] = dict(runtime.get("Labels") or {}, **dict(options.labels))
    if options.expose:
        runtime["ExposedPorts"] = dict(runtime.get("ExposedPorts") or {}, **{p: {} for p in options.expose})
    if options.user is not None:
        runtime["User"] = options.user
    if options.workdir is not None:
        runtime["WorkingDir"] = options.workdir
    config["config"] = runtime
    config.pop("variant", None)
    config.update(platform.to_dict())
    rootfs = config.get("rootfs") if isinstance(config.get("rootfs"), dict) else {}
    diff_ids = list(rootfs.get("diff_ids") or [])
    history = list(config.get("history") or [])
    for layer in layers:
        diff_ids.append(layer.diff_id)
        history.append({"created": created, "created_by": layer.created_by})
    config["rootfs"] = dict(rootfs, type="layers", diff_ids=diff_ids)
    config["history"] = history
    config["created"] = created
    return config


def make_manifest(family: Dict[str, str], config_desc: dict, layer_descs: Sequence[dict],
                  annotations: Optional[Dict[str, str]] = None) -> dict:
    manifest = {"schemaVersion": 2, "mediaType": family["manifest"],
                "config": config_desc, "layers": list(layer_descs)}
    if annotations:
        manifest["annotations"] = dict(annotations)
    return manifest


def make_index(family: Dict[str, str], manifests: Sequence[dict]) -> dict:
    return {"schemaVersion": 2, "mediaType": family["index"], "manifests": list(manifests)}


# ---- Layers ----


class LayerEntry(NamedTuple):
    """One member of a layer: a directory, a file (from bytes or a host path) or a symlink."""

    path: str                     # inside the image, absolute: /etc/passwd
    kind: str = "file"            # "dir", "file" or "symlink"
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    data: Optional[bytes] = None  # file contents, or...
    source: object = None         # ...a host path or an open binary file, read as the layer is written
    linkname: str = ""


class Blob(NamedTuple):
    """Something to put in an image: its digest, size and a way to open it for reading."""

    digest: str
    size: int
    open: object                  # () -> readable file object, verified or trusted
    source: Optional[Tuple[str, str]] = None   # (registry, repository) it can be mounted from


class LayerResult(NamedTuple):
    blob: Blob
    diff_id: str


GZIP_CHUNK = 1024 * 1024         # the unit of parallel compression
GZIP_WINDOW = 32 * 1024          # deflate's window: each chunk is primed with the 32 KiB before it


def _deflate_chunk(data: bytes, primer: bytes, level: int, last: bool) -> bytes:
    """One chunk as raw deflate, primed with the bytes before it, ending on a byte boundary
    (a full flush) or, for the last chunk, finishing the stream."""
    if primer:
        deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY, primer)
    else:
        deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 8)
    return deflate.compress(data) + deflate.flush(zlib.Z_FINISH if last else zlib.Z_FULL_FLUSH)


class GzipWriter:
    """One gzip member, compressed on every core as pigz does, the same bytes whatever the thread count.

    The stream is cut into GZIP_CHUNK pieces, each deflated on its own (zlib releases the GIL) with
    the previous 32 KiB as its preset dictionary and a full flush at its end; the pieces, joined in
    order, are one valid deflate stream. The header has mtime 0 and no file name; CRC-32 and size
    are computed over the stream as it passes. At most ``threads + 1`` chunks are in flight, so
    memory does not grow with the input.
    """

    def __init__(self, out, level: int, threads: Optional[int] = None):
        self._out = out
        self._level = level
        # One thread more than cores keeps every core deflating while this thread hashes and writes.
        self._threads = max(1, threads or (os.cpu_count() or 1) + 1)
        self._pool = None
        self._pending = collections.deque()
        self._buffer = bytearray()
        self._primer = b""
        self._crc = 0
        self._size = 0
        xfl = b"\x02" if level == 9 else b"\x04" if level == 1 else b"\x00"
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + xfl + b"\xff")

    def write(self, data) -> int:
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        self._buffer += data
        while len(self._buffer) > GZIP_CHUNK:      # keep one chunk back: it may be the last
            chunk = bytes(self._buffer[:GZIP_CHUNK])
            del self._buffer[:GZIP_CHUNK]
            self._submit(chunk, False)
        return len(data)

    def _submit(self, chunk: bytes, last: bool) -> None:
        primer, self._primer = self._primer, chunk[-GZIP_WINDOW:]
        if self._threads == 1:
            self._out.write(_deflate_chunk(chunk, primer, self._level, last))
            return
        if self._pool is None:
            self._pool = concurrent_futures.ThreadPoolExecutor(self._threads, thread_name_prefix="zeroimage-gzip")
        self._pending.append(self._pool.submit(_deflate_chunk, chunk, primer, self._level, last))
        while len(self._pending) > self._threads or (last and self._pending):
            self._out.write(self._pending.popleft().result())

    def close(self) -> None:
        """Finish the stream: the last chunk, then CRC-32 and size."""
        self._submit(bytes(self._buffer), True)
        self._buffer = bytearray()
        self._out.write(struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF))
        self.abort()

    def abort(self) -> None:
        """Stop the workers (after an error, without waiting for the output)."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def with_parents(entries: Sequence[LayerEntry]) -> List[LayerEntry]:
    """Every parent directory made explicit (0755, root), sorted so parents come first."""
    by_path = {}
    for entry in entries:
        by_path[entry.path] = entry
    for entry in entries:
        parent = posixpath.dirname(entry.path)
        while parent not in ("/", "") and parent not in by_path:
            by_path[parent] = LayerEntry(parent, "dir", 0o755)
            parent = posixpath.dirname(parent)
    return [by_path[p] for p in sorted(by_path)]


_BLOCK = 512


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _ustar_header(name: bytes, mode: int, uid: int, gid: int, size: int, typeflag: bytes, linkname: bytes) -> bytes:
    header = (name.ljust(100, b"\0") + _octal(mode, 8) + _octal(uid, 8) + _octal(gid, 8) + _octal(size, 12)
              + _octal(0, 12) + b" " * 8 + typeflag + linkname.ljust(100, b"\0") + b"ustar\x0000"
              + b"\0" * 64 + _octal(0, 8) + _octal(0, 8)).ljust(_BLOCK, b"\0")
    return header[:148] + b"%06o\0 " % sum(header) + header[156:]


def _pax_record(key: str, value: str) -> bytes:
    payload = (" %s=%s\n" % (key, value)).encode("utf-8")
    size = len(payload) + len(str(len(payload)))
    size = len(payload) + len(str(size))
    return b"%d" % size + payload


class TarWriter:
    """A tar stream written by hand: ustar headers, PAX records only for long or non-ASCII
    names and big values, mtime 0, empty user and group names.

    tarfile's headers differ between Python versions (3.8 fills devmajor/devminor,
    3.11 does not), and a layer must be the same bytes on every supported Python.
    """

    _TYPES = {"dir": b"5", "file": b"0", "symlink": b"2"}

    def __init__(self, out):
        self._out = out

    def add(self, entry: LayerEntry, size: int = 0, src=None) -> None:
        name = entry.path.lstrip("/") + ("/" if entry.kind == "dir" else "")
        pax = []
        for key, value, limit in (("path", name, 100), ("linkpath", entry.linkname, 100)):
            if len(value.encode("utf-8")) > limit or not value.isascii():
                pax.append(_pax_record(key, value))
        for key, value, limit in (("size", size, 0o77777777777), ("uid", entry.uid, 0o7777777),
                                  ("gid", entry.gid, 0o7777777)):
            if value > limit:
                pax.append(_pax_record(key, str(value)))
        short = lambda text, n: text.encode("ascii", "replace")[:n]  # noqa: E731
        if pax:
            records = b"".join(pax)
            self._out.write(_ustar_header(short("PaxHeaders/" + posixpath.basename(name.rstrip("/")), 100),
                                          0o644, 0, 0, len(records), b"x", b""))
            self._write_padded(records)
        self._out.write(_ustar_header(short(name, 100), entry.mode & 0o7777, min(entry.uid, 0o7777777),
                                      min(entry.gid, 0o7777777), min(size, 0o77777777777),
                                      self._TYPES[entry.kind], short(entry.linkname, 100)))
        if size:
            copy_stream(src, self._out, size)
            self._out.write(b"\0" * (-size % _BLOCK))

    def _write_padded(self, data: bytes) -> None:
        self._out.write(data + b"\0" * (-len(data) % _BLOCK))

    def close(self) -> None:
        self._out.write(b"\0" * (2 * _BLOCK))


def _open_source(source):
    if isinstance(source, str):
        return open(source, "rb")
    source.seek(0)
    return contextlib.nullcontext(source)


def write_layer(entries: Sequence[LayerEntry], out, level: int = 6, task: Optional[_Task] = None) -> Tuple[str, str, int]:
    """Write a gzip-compressed tar layer to ``out`` in one pass: (diff_id, digest, size).

    The tar is sorted, parents explicit, owned by 0:0 unless said otherwise,
    with mtime 0 everywhere: the bytes depend only on paths, modes and contents.
    """
    compressed = HashingWriter(out)
    gz = GzipWriter(compressed, level)
    uncompressed = HashingWriter(_Counted(gz, task) if task else gz)
    try:
        _write_tar(entries, uncompressed)
        gz.close()
    finally:
        gz.abort()
    return uncompressed.digest, compressed.digest, compressed.size


def _write_tar(entries: Sequence[LayerEntry], out) -> None:
    tar = TarWriter(out)
    for entry in with_parents(entries):
        if entry.kind != "file":
            tar.add(entry)
        elif entry.data is not None:
            tar.add(entry, len(entry.data), io.BytesIO(entry.data))
        else:
            with _open_source(entry.source) as f:
                tar.add(entry, os.fstat(f.fileno()).st_size, f)
    tar.close()


def layer_diff_id(entries: Sequence[LayerEntry]) -> str:
    """The digest of a layer's tar, without compressing it (one read of each file)."""
    hashing = HashingWriter()
    _write_tar(entries, hashing)
    return hashing.digest


def build_layer(entries: Sequence[LayerEntry], tmp, level: int, cache: Optional["LayerCache"] = None,
                label: str = "layer", present=None) -> LayerResult:
    """Write a layer into ``tmp`` (an empty temporary file the caller closes); return it as a Blob.

    With a ``cache`` and ``present(digest) -> bool`` (for pushes): when the files are unchanged
    since a layer was last built from them (the tar is hashed to confirm it) and the registry
    already holds the blob that tar became, that blob is used and nothing is compressed.
    """
    def opener():
        tmp.seek(0)
        return _Unclosing(tmp)

    def compress() -> Tuple[str, str, int]:
        task = progress.task("compressing", label, _entries_size(entries))
        result = write_layer(entries, tmp, level, task)
        tmp.flush()
        task.finish()
        return result

    key = cache.key(entries, level) if cache else None
    known = cache.get(key) if cache else None
    if known and present and layer_diff_id(entries) == known["diff_id"] and present(known["digest"]):
        def lazy_opener():      # only if the blob vanished from the registry in the meantime
            if tmp.tell() == 0:
                _, digest, _ = compress()
                if digest != known["digest"]:
                    raise DigestMismatchError("the layer rebuilt from the cache", known["digest"], digest)
            return opener()
        return LayerResult(Blob(known["digest"], known["size"], lazy_opener), known["diff_id"])
    diff_id, digest, size = compress()
    if cache:
        cache.put(key, {"diff_id": diff_id, "digest": digest, "size": size})
    return LayerResult(Blob(digest, size, opener), diff_id)


def _entries_size(entries: Sequence[LayerEntry]) -> int:
    """About the size of a layer's tar (the files' bytes), for progress."""
    total = 0
    for entry in entries:
        if entry.data is not None:
            total += len(entry.data)
        elif entry.source is not None:
            total += os.stat(entry.source).st_size if isinstance(entry.source, str) else os.fstat(entry.source.fileno()).st_size
    return total


class LayerCache:
    """What layers the same files made before: {diff_id, digest, size} under a key made of each
    file's identity (device, inode, size, mtime, ctime), path, mode and the compression settings.

    A hit is always confirmed by hashing the tar again, so a stale entry costs time, never a
    wrong image. Entries are tiny JSON files; a cache that cannot be read or written is ignored.
    """

    VERSION = 2     # bump when the bytes a layer compresses to change (tar or gzip writer)

    def __init__(self, directory: str):
        self.directory = directory

    @classmethod
    def default(cls, environ=None) -> "LayerCache":
        environ = os.environ if environ is None else environ
        base = environ.get("ZEROIMAGE_CACHE_DIR") or os.path.join(
            environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "zeroimage")
        return cls(os.path.join(base, "layers"))

    def key(self, entries: Sequence[LayerEntry], level: int) -> str:
        parts = [self.VERSION, level, GZIP_CHUNK, zlib.ZLIB_RUNTIME_VERSION]
        for entry in with_parents(entries):
            identity = None
            if entry.data is not None:
                identity = hashlib.sha256(entry.data).hexdigest()
            elif entry.source is not None:
                st = os.stat(entry.source) if isinstance(entry.source, str) else os.fstat(entry.source.fileno())
                identity = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
            parts.append([entry.path, entry.kind, entry.mode, entry.uid, entry.gid, entry.linkname, identity])
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    def get(self, key: str) -> Optional[dict]:
        try:
            with open(os.path.join(self.directory, key), "rb") as f:
                entry = json.loads(f.read(4096).decode("utf-8"))
            if _DIGEST_RE.match(entry["diff_id"]) and _DIGEST_RE.match(entry["digest"]) and entry["size"] >= 0:
                return entry
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        return None

    def put(self, key: str, entry: dict) -> None:
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            with atomic_output(os.path.join(self.directory, key)) as f:
                f.write(canonical_json(entry))
        except (OSError, ZeroImageError) as e:
            log.debug("layer cache not written: %s", e)


class _Unclosing:
    """A view of a file whose close() leaves the file open (for temp files read more than once)."""

    def __init__(self, f):
        self._f = f

    def read(self, n: int = -1) -> bytes:
        return self._f.read(n)

    def close(self) -> None:
        pass


def tree_entries(source: str, target: str) -> List[LayerEntry]:
    """The entries of ``--add SOURCE:TARGET``: a file, or a directory tree with its symlinks kept as links.

    Modes are kept; owners become 0:0 and times 0 like every entry.  A link given as SOURCE
    itself is followed, as Docker's COPY does.  ``TARGET/`` for a file means "into that directory".
    """
    try:
        st = os.stat(source)
    except OSError as e:
        raise ZeroImageError("--add %s: %s" % (source, e.strerror or e))
    if target.endswith("/") and not stat.S_ISDIR(st.st_mode):
        target += os.path.basename(source.rstrip("/"))
    target = posixpath.normpath(target)
    if stat.S_ISREG(st.st_mode):
        return [LayerEntry(target, "file", stat.S_IMODE(st.st_mode), source=source)]
    if not stat.S_ISDIR(st.st_mode):
        raise ZeroImageError("--add %s: not a regular file or a directory" % source)
    entries = [LayerEntry(target, "dir", stat.S_IMODE(st.st_mode))]
    for root, dirs, files in os.walk(source):         # links to directories are listed, not followed
        dirs.sort()
        for name in sorted(dirs + files):
            full = os.path.join(root, name)
            path = posixpath.join(target, *os.path.relpath(full, source).split(os.sep))
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                entries.append(LayerEntry(path, "symlink", 0o777, linkname=os.readlink(full)))
            elif stat.S_ISDIR(st.st_mode):
                entries.append(LayerEntry(path, "dir", stat.S_IMODE(st.st_mode)))
            elif stat.S_ISREG(st.st_mode):
                entries.append(LayerEntry(path, "file", stat.S_IMODE(st.st_mode), source=full))
            else:
                log.warning("--add: leaving out %s (not a file, directory or link)", full)
    return entries


def bytes_blob(data: bytes) -> Blob:
    return Blob(sha256_digest(data), len(data), lambda: io.BytesIO(data))


def minimal_base_entries(ca_bundle: Optional[str]) -> List[LayerEntry]:
    """The built-in base: users and groups (root, nobody, nonroot), nsswitch, /tmp, homes, TLS roots."""
    passwd = ("root:x:0:0:root:/root:/sbin/nologin\n"
              "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
              "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
    group = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"
    entries = [
        LayerEntry("/etc/passwd", data=passwd.encode()),
        LayerEntry("/etc/group", data=group.encode()),
        LayerEntry("/etc/nsswitch.conf", data=b"hosts: files dns\n"),
        LayerEntry("/tmp", "dir", 0o1777),
        LayerEntry("/root", "dir", 0o700),
        LayerEntry("/home/nonroot", "dir", 0o700, 65532, 65532),
    ]
    if ca_bundle:
        entries.append(LayerEntry(IMAGE_CA_BUNDLE, source=ca_bundle))
    return entries


def find_host_ca_bundle(environ=None) -> Optional[str]:
    """The host's CA bundle: SSL_CERT_FILE, then the usual places (which hold OpenSSL's defaults)."""
    environ = os.environ if environ is None else environ
    for path in [environ.get("SSL_CERT_FILE")] + list(HOST_CA_BUNDLES):
        if path and os.path.isfile(path) and os.access(path, os.R_OK):
            return path
    return None


# ---- OCI layout and archives ----


def _blob_path(digest: str) -> str:
    algorithm, hexpart = parse_digest(digest)
    return "blobs/%s/%s" % (algorithm, hexpart)


def _safe_member_name(name: str) -> str:
    """A tar member name as a relative POSIX path; absolute or ``..`` names are refused."""
    stripped = name
    while stripped.startswith("./"):
        stripped = stripped[2:]
    parts = stripped.rstrip("/").split("/")
    if name.startswith("/") or ".." in parts or "\\" in name or "\0" in name:
        raise ArchiveError("refusing unsafe archive member %r (absolute path or '..')" % name)
    return "/".join(p for p in parts if p not in ("", "."))


def _is_layout_name(name: str) -> bool:
    return name in ("oci-layout", "index.json", "blobs") or name.startswith("blobs/")


class Layout:
    """Read an OCI image layout from a directory or a tar archive, never extracting anything.

    Every blob read through ``blob()`` or ``read_blob_json()`` is checked against
    its digest and size.  In a tar, members under ``blobs/``, ``index.json`` and
    ``oci-layout`` must be plain files with safe names; other members (the
    legacy files ``docker save`` adds) are ignored, links among them included.
    """

    def __init__(self, path: str):
        self.path = path
        self._tar = None
        self._lock = threading.Lock()
        self._members = {}
        if os.path.isdir(path):
            self._dir = path
        else:
            self._dir = None
            self._open_tar(path)
        if not self._exists("oci-layout"):
            raise ArchiveError("%s is not an OCI image layout (no oci-layout file); convert it with "
                               "skopeo copy docker-archive:%s oci-archive:base.tar" % (path, path))
        layout = self._read_json("oci-layout")
        if not isinstance(layout, dict) or not isinstance(layout.get("imageLayoutVersion"), str):
            raise ArchiveError("%s: oci-layout has no imageLayoutVersion" % path)

    def _open_tar(self, path: str) -> None:
        try:
            self._tar = tarfile.open(path, mode="r:*")
        except (tarfile.TarError, EOFError, zlib.error):
            raise ArchiveError("%s is not a tar archive or an OCI layout directory" % path)
        except OSError as e:
            raise ArchiveError("cannot read %s: %s" % (path, e.strerror or e))
        try:
            members = self._tar.getmembers()
        except (tarfile.TarError, EOFError, zlib.error) as e:
            self.close()
            raise ArchiveError("%s is a damaged tar archive (%s)" % (path, str(e).splitlines()[0]))
        for member in members:
            name = _safe_member_name(member.name)
            if not _is_layout_name(name):
                continue
            if member.isdir() and (name == "blobs" or posixpath.dirname(name) == "blobs"):
                continue
            if not member.isreg():
                raise ArchiveError("refusing archive member %r: a link or special file where a blob belongs" % member.name)
            if name in self._members:
                raise ArchiveError("refusing archive with two members named %r" % name)
            self._members[name] = member

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None

    def __enter__(self) -> "Layout":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _exists(self, name: str) -> bool:
        if self._dir is None:
            return name in self._members
        return os.path.isfile(os.path.join(self._dir, name))

    def _size(self, name: str) -> Optional[int]:
        if self._dir is None:
            member = self._members.get(name)
            return None if member is None else member.size
        full = os.path.join(self._dir, name)
        try:
            st = os.lstat(full)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or os.path.islink(os.path.dirname(full)) \
                or os.path.islink(os.path.dirname(os.path.dirname(full))):
            raise ArchiveError("refusing %s: not a plain file inside the layout" % full)
        return st.st_size

    def _open(self, name: str):
        if self._dir is None:       # members share one file: each read seeks, so reads take turns
            return _LockedReader(self._tar.extractfile(self._members[name]), self._lock)
        return open(os.path.join(self._dir, name), "rb")

    def _read_json(self, name: str):
        """index.json or oci-layout: size-capped, parsed."""
        size = self._size(name)
        if size is None:
            raise ArchiveError("%s: %s is missing" % (self.path, name))
        return self._parse_json(name, size, self._open(name))

    def _parse_json(self, what: str, size: int, f):
        if size > MAX_JSON_SIZE:
            f.close()
            raise ArchiveError("%s: %s is %d bytes, over the %d-byte limit for JSON"
                               % (self.path, what, size, MAX_JSON_SIZE))
        with contextlib.closing(f):
            data = f.read(MAX_JSON_SIZE + 1)
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ArchiveError("%s: %s is not valid JSON (%s)" % (self.path, what, e))

    def index(self) -> dict:
        index = self._read_json("index.json")
        if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            raise ArchiveError("%s: index.json has no manifests list" % self.path)
        return index

    def has_blob(self, digest: str) -> bool:
        return self._size(_blob_path(digest)) is not None

    def read_blob_json(self, desc: dict):
        """A small JSON blob (manifest, index, config), verified against its descriptor."""
        blob = self.blob(desc)
        return self._parse_json("blob " + blob.digest, blob.size, blob.open())

    def read_blob_bytes(self, desc: dict) -> bytes:
        """A small blob's exact bytes (a manifest to push as it is), verified and size-capped."""
        blob = self.blob(desc)
        if blob.size > MAX_JSON_SIZE:
            raise ArchiveError("%s: blob %s is over the %d-byte limit" % (self.path, blob.digest, MAX_JSON_SIZE))
        with contextlib.closing(blob.open()) as f:
            return f.read()

    def blob(self, desc: dict) -> Blob:
        """A Blob that streams from the layout, verified as it is read."""
        digest, size = _check_descriptor(desc, self.path)
        name = _blob_path(digest)
        actual = self._size(name)
        if actual is None:
            raise ArchiveError("%s: blob %s is missing" % (self.path, digest))
        if actual != size:
            raise ArchiveError("%s: blob %s is %d bytes, its descriptor says %d" % (self.path, digest, actual, size))
        what = "blob %s in %s" % (digest, self.path)
        return Blob(digest, size, lambda: VerifyingReader(self._open(name), digest, size, what))

    def candidates(self) -> List[Candidate]:
        """Every image manifest reachable from index.json, through nested indexes, with its platform."""
        found = []
        self._walk(self.index(), "", 0, found)
        return found

    def _walk(self, index: dict, ref_name: str, depth: int, found: List[Candidate]) -> None:
        if depth > MAX_INDEX_DEPTH:
            raise ArchiveError("%s: indexes nested more than %d deep" % (self.path, MAX_INDEX_DEPTH))
        for desc in index.get("manifests") or []:
            digest, _ = _check_descriptor(desc, self.path)
            annotations = desc.get("annotations") if isinstance(desc.get("annotations"), dict) else {}
            name = ref_name or annotations.get(ANNOTATION_CONTAINERD_NAME) or annotations.get(ANNOTATION_REF_NAME) or ""
            if annotations.get(ANNOTATION_DOCKER_REFERENCE_TYPE) == "attestation-manifest":
                continue
            if not self.has_blob(digest):
                continue        # docker save lists platforms it did not save
            media_type = desc.get("mediaType")
            if media_type in INDEX_TYPES:
                self._walk(self.read_blob_json(desc), name, depth + 1, found)
            elif media_type in IMAGE_MANIFEST_TYPES:
                platform = Platform.from_dict(desc.get("platform"))
                if platform is None:
                    platform = self._platform_of(desc)
                if platform is None or platform.os == "unknown":
                    continue
                found.append(Candidate(desc, platform, name))

    def _platform_of(self, desc: dict) -> Optional[Platform]:
        manifest = self.read_blob_json(desc)
        config_desc = manifest.get("config") if isinstance(manifest, dict) else None
        if not isinstance(config_desc, dict):
            raise ArchiveError("%s: manifest %s has no config" % (self.path, desc["digest"]))
        return Platform.from_dict(self.read_blob_json(config_desc))


class _LockedReader:
    """A reader whose reads hold a lock, for tar members read from several threads at once."""

    def __init__(self, f, lock):
        self._f = f
        self._lock = lock

    def read(self, n: int = -1) -> bytes:
        with self._lock:
            return self._f.read(n)

    def close(self) -> None:
        self._f.close()


def _check_descriptor(desc, where: str) -> Tuple[str, int]:
    if not isinstance(desc, dict):
        raise ArchiveError("%s: a descriptor is not a JSON object" % where)
    digest, size = desc.get("digest"), desc.get("size")
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise ArchiveError("%s: descriptor has an invalid digest %r" % (where, digest))
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ArchiveError("%s: descriptor of %s has an invalid size %r" % (where, digest, size))
    return digest, size


class ArchiveWriter:
    """Write an OCI image layout into a tar stream: blobs first, then the small files.

    Members are in a fixed order with fixed ownership and mtime 0, so the same
    images give the same bytes.  Each blob is written once, however often added.
    """

    def __init__(self, fileobj):
        self._tar = TarWriter(fileobj)
        self._written = set()
        for name in ("blobs", "blobs/sha256"):
            self._tar.add(LayerEntry(name, "dir", 0o755))

    def add_blob(self, blob: Blob) -> None:
        if blob.digest in self._written:
            return
        task = progress.task("downloading", _short(blob.digest), blob.size) if blob.source else None
        src = blob.open()
        try:
            self._tar.add(LayerEntry(_blob_path(blob.digest)), blob.size, _Counted(src, task) if task else src)
        finally:
            src.close()
        if task:
            task.finish()
        self._written.add(blob.digest)

    def add_file(self, name: str, data: bytes) -> None:
        self._tar.add(LayerEntry(name), len(data), io.BytesIO(data))

    def close(self) -> None:
        self._tar.close()


def write_archive(f, blobs: Sequence[Blob], index: dict, docker_manifest: Optional[list]) -> None:
    """Write an OCI layout tar (plus Docker's manifest.json when given) to the stream ``f``."""
    writer = ArchiveWriter(f)
    for blob in blobs:
        writer.add_blob(blob)
    writer.add_file("index.json", canonical_json(index))
    if docker_manifest is not None:
        writer.add_file("manifest.json", canonical_json(docker_manifest))
    writer.add_file("oci-layout", canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
    writer.close()


# ---- Credentials ----


class Credentials(NamedTuple):
    """What config.json or a helper gives for one registry. Never printed."""

    username: str = ""
    password: str = ""
    identity_token: str = ""     # an OAuth2 refresh token, exchanged at the token realm
    registry_token: str = ""     # a bearer token, sent as it is

    def __repr__(self) -> str:
        return "Credentials(username=%r, ...)" % self.username


def docker_config_path(environ=None) -> str:
    environ = os.environ if environ is None else environ
    directory = environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(directory, "config.json")


def _auth_file_paths(environ) -> List[str]:
    """podman's auth files, read-only fallbacks after Docker's config."""
    paths = []
    if environ.get("REGISTRY_AUTH_FILE"):
        paths.append(environ["REGISTRY_AUTH_FILE"])
    if environ.get("XDG_RUNTIME_DIR"):
        paths.append(os.path.join(environ["XDG_RUNTIME_DIR"], "containers", "auth.json"))
    return paths


def _load_json_file(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_JSON_SIZE + 1)
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise CredentialError("cannot read %s: %s" % (path, e.strerror or e))
    try:
        value = json.loads(data.decode("utf-8")) if data.strip() else {}
    except (UnicodeDecodeError, ValueError) as e:
        raise CredentialError("%s is not valid JSON (%s); fix or remove it" % (path, e))
    if not isinstance(value, dict):
        raise CredentialError("%s is not a JSON object; fix or remove it" % path)
    return value


def registry_host(text: str) -> str:
    """The registry a login/logout argument names: ``https://ghcr.io/v2/`` → ``ghcr.io``; Docker Hub → docker.io."""
    host = re.sub(r"^[a-z]+://", "", text.strip().lower()).split("/", 1)[0]
    if not host or not _DOMAIN_RE.match(host):
        raise InvalidReferenceError("invalid registry %r: expected a host name like ghcr.io or localhost:5000" % text)
    return DOCKER_HUB if host in ("docker.io", "index.docker.io", "registry-1.docker.io") else host


def _config_key(host: str) -> str:
    return DOCKER_HUB_CONFIG_KEY if host == DOCKER_HUB else host


def _auth_entry(auths: dict, host: str) -> Optional[dict]:
    """Find the ``auths`` entry for a host, under any of the key spellings Docker has used."""
    names = {host}
    if host == DOCKER_HUB:
        names |= {"index.docker.io", "registry-1.docker.io", "index.docker.io/v1"}
    for key, entry in auths.items():
        bare = re.sub(r"^[a-z]+://", "", key.lower()).rstrip("/")
        bare = re.sub(r"/v[12]$", "", bare)
        if (bare in names or key == _config_key(host)) and isinstance(entry, dict):
            return entry
    return None


def _entry_credentials(entry: dict, where: str) -> Optional[Credentials]:
    username, password = entry.get("username") or "", entry.get("password") or ""
    if entry.get("auth"):
        try:
            username, _, password = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            raise CredentialError("%s: an 'auth' entry is not base64 of user:password" % where)
    creds = Credentials(username, password, entry.get("identitytoken") or "", entry.get("registrytoken") or "")
    return creds if any(creds) else None


def run_credential_helper(name: str, action: str, payload: str, environ=None) -> Optional[str]:
    """Run ``docker-credential-NAME ACTION`` with an argument list; None when it has no credentials."""
    environ = os.environ if environ is None else environ
    program = "docker-credential-" + name
    found = shutil.which(program, path=environ.get("PATH", os.defpath))
    if found is None:
        raise CredentialError("credential helper %s is not on PATH" % program)
    try:
        proc = subprocess.run([found, action], input=payload.encode("utf-8"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CredentialError("credential helper %s failed to run: %s" % (program, e))
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        if "credentials not found" in out.lower() or "credentials not found" in proc.stderr.decode("utf-8", "replace").lower():
            return None
        raise CredentialError("credential helper %s %s failed (exit %d)" % (program, action, proc.returncode))
    return out


def _helper_for(config: dict, host: str) -> Optional[str]:
    helpers = config.get("credHelpers") if isinstance(config.get("credHelpers"), dict) else {}
    for key in (host, _config_key(host)):
        if helpers.get(key):
            return helpers[key]
    return config.get("credsStore") or None


def resolve_credentials(host: str, environ=None) -> Optional[Credentials]:
    """Credentials for a registry as Docker finds them: helper, then ``auths``, then podman's auth files."""
    environ = os.environ if environ is None else environ
    path = docker_config_path(environ)
    config = _load_json_file(path)
    helper = _helper_for(config, host)
    if helper:
        try:
            out = run_credential_helper(helper, "get", _config_key(host), environ)
        except CredentialError as e:
            log.warning("%s; trying other credentials", e)
            out = None
        if out:
            try:
                answer = json.loads(out)
                username, secret = answer.get("Username") or "", answer.get("Secret") or ""
            except (ValueError, AttributeError):
                raise CredentialError("credential helper docker-credential-%s answered something that is not JSON" % helper)
            if username == "<token>":
                return Credentials(identity_token=secret)
            if secret:
                return Credentials(username, secret)
    for where in [path] + _auth_file_paths(environ):
        auths = _load_json_file(where).get("auths") if where != path else config.get("auths")
        entry = _auth_entry(auths, host) if isinstance(auths, dict) else None
        creds = _entry_credentials(entry, where) if entry else None
        if creds:
            return creds
    return None


def _write_config(path: str, config: dict) -> None:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with atomic_output(path, mode=0o600) as f:
        f.write(json.dumps(config, indent="\t").encode("utf-8") + b"\n")


def store_credentials(host: str, creds: Credentials, environ=None) -> str:
    """Save credentials the way ``docker login`` does; returns where they went."""
    environ = os.environ if environ is None else environ
    path = docker_config_path(environ)
    config = _load_json_file(path)
    helper = _helper_for(config, host)
    if helper:
        payload = {"ServerURL": _config_key(host), "Username": creds.username or "<token>",
                   "Secret": creds.password or creds.identity_token}
        run_credential_helper(helper, "store", json.dumps(payload), environ)
        return "credential helper docker-credential-" + helper
    auths = config.get("auths") if isinstance(config.get("auths"), dict) else {}
    entry = {"auth": base64.b64encode(("%s:%s" % (creds.username, creds.password)).encode()).decode()}
    if creds.identity_token:
        entry = {"identitytoken": creds.identity_token}
    auths[_config_key(host)] = entry
    config["auths"] = auths
    _write_config(path, config)
    return path


def erase_credentials(host: str, environ=None) -> bool:
    """Forget a registry's credentials (helper and ``auths``); False when there were none."""
    environ = os.environ if environ is None else environ
    path = docker_config_path(environ)
    config = _load_json_file(path)
    found = False
    helper = _helper_for(config, host)
    if helper:
        found = run_credential_helper(helper, "erase", _config_key(host), environ) is not None
    auths = config.get("auths") if isinstance(config.get("auths"), dict) else {}
    keys = [k for k in auths if _auth_entry({k: auths[k]}, host) is not None]
    for key in keys:
        del auths[key]
    if keys:
        _write_config(path, config)
    return found or bool(keys)


# ---- HTTP transport ----

RETRY_STATUSES = (408, 429, 500, 502, 503, 504)
IDEMPOTENT = ("GET", "HEAD", "PUT", "DELETE")     # retried when the body (if any) can be sent again
MAX_ATTEMPTS = 5
MAX_RETRY_SECONDS = 60.0
MAX_REDIRECTS = 5
MAX_ERROR_BODY = 1024 * 1024
MAX_TOKEN_BODY = 1024 * 1024
CONNECT_TIMEOUT = 30.0
READ_TIMEOUT = 120.0
CERTS_DIRS = ("/etc/docker/certs.d", "/etc/containers/certs.d")


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Response:
    """An HTTP response whose body is read as a stream. Closing it hands its connection back for
    reuse when the body was read to the end, and closes the connection when it was not."""

    def __init__(self, raw: "http.client.HTTPResponse", conn, url: str, release):
        self._raw = raw
        self._conn = conn
        self._release = release
        self.status = raw.status
        self.headers = raw.headers
        self.url = url

    def read(self, n: int = -1) -> bytes:
        return self._raw.read() if n is None or n < 0 else self._raw.read(n)

    def read_capped(self, limit: int, what: str) -> bytes:
        data = self._raw.read(limit + 1)
        if len(data) > limit:
            self.close()
            raise RegistryError(self.status, "GET", self.url, "%s is over the %d-byte limit" % (what, limit))
        return data

    def close(self) -> None:
        if self._conn is None:
            return
        if not self._raw.isclosed() and self._raw.length == 0 and not self._raw.chunked:
            self._raw.read()        # nothing left: this lets http.client keep the connection
        if self._raw.isclosed():
            self._release(self._conn)
        else:
            self._conn.close()      # unread body left on the socket: the connection cannot be reused
        self._raw.close()
        self._conn = None


class Transport:
    """The one place that opens sockets: TLS, proxies, keep-alive, timeouts, retries and redirects.

    ``Authorization`` (given per request with ``auth_host``) goes only to that host,
    never to a redirect target elsewhere (S3, GCS, CDN signed URLs).
    """

    def __init__(self, insecure: bool = False, environ=None):
        self.insecure = insecure
        self._environ = os.environ if environ is None else environ
        self._local = threading.local()
        self._contexts = {}

    # -- connections --

    def _ssl_context(self, host: str) -> "ssl.SSLContext":
        if host not in self._contexts:
            context = ssl.create_default_context()      # honours SSL_CERT_FILE / SSL_CERT_DIR
            for base in CERTS_DIRS:
                directory = os.path.join(base, host)
                if not os.path.isdir(directory):
                    continue
                for name in sorted(os.listdir(directory)):
                    full = os.path.join(directory, name)
                    if name.endswith(".crt"):
                        context.load_verify_locations(cafile=full)
                    elif name.endswith(".cert") and os.path.exists(full[:-5] + ".key"):
                        context.load_cert_chain(full, full[:-5] + ".key")
            if self.insecure:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._contexts[host] = context
        return self._contexts[host]

    def _proxy_for(self, scheme: str, host: str) -> Optional[str]:
        proxies = urllib_request.getproxies_environment()
        if not proxies.get(scheme) or urllib_request.proxy_bypass_environment(host.rsplit(":", 1)[0], proxies):
            return None
        return proxies[scheme]

    def _idle(self) -> Dict[Tuple[str, str], list]:
        if not hasattr(self._local, "idle"):
            self._local.idle = {}
        return self._local.idle

    def _connection(self, scheme: str, netloc: str):
        """An idle kept-alive connection to the host, or a new one (a stream still being read
        from a host never shares its connection with the next request)."""
        idle = self._idle().setdefault((scheme, netloc), [])
        conn = idle.pop() if idle else None
        if conn is None:
            proxy = self._proxy_for(scheme, netloc)
            target = urllib.parse.urlsplit(proxy).netloc if proxy else netloc
            if scheme == "https":
                conn = http_client.HTTPSConnection(target, timeout=CONNECT_TIMEOUT, context=self._ssl_context(netloc),
                                                   blocksize=CHUNK_SIZE)
            else:
                conn = http_client.HTTPConnection(target, timeout=CONNECT_TIMEOUT, blocksize=CHUNK_SIZE)
            if proxy and scheme == "https":
                conn.set_tunnel(netloc)
            conn._zeroimage_proxied = bool(proxy and scheme == "http")
        return conn

    # -- requests --

    def request(self, method: str, url: str, headers: Optional[Dict[str, str]] = None, body=None,
                auth: Optional[str] = None, auth_host: Optional[str] = None,
                length: Optional[int] = None, idempotent: Optional[bool] = None) -> Response:
        """Send one request (retrying idempotent ones, following redirects for GET/HEAD).

        ``body`` is bytes, or a readable stream of ``length`` bytes sent in CHUNK_SIZE
        pieces; either way it goes with a Content-Length, never chunked.
        """
        started = time.monotonic()
        replayable = (method in IDEMPOTENT if idempotent is None else idempotent) \
            and isinstance(body, (bytes, type(None)))
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = self._send_following(method, url, headers or {}, (body, length), auth, auth_host)
            except (OSError, http_client.HTTPException) as e:
                # A connection dropped or timed out may work next time; a refusal or a bad name will not.
                transient = not isinstance(e, (ConnectionRefusedError, socket.gaierror, ssl.SSLError))
                if not transient or not replayable or not self._may_retry(attempt, started, None):
                    raise _network_error(method, url, e)
                delay = self._backoff(attempt)
                log.debug("retrying %s %s in %.1fs after %s", method, _redact_url(url), delay, e)
            else:
                if response.status not in RETRY_STATUSES or not replayable \
                        or not self._may_retry(attempt, started, response):
                    return response
                delay = self._retry_after(response) or self._backoff(attempt)
                response.close()
                log.debug("retrying %s %s in %.1fs after HTTP %d", method, _redact_url(url), delay, response.status)
            time.sleep(delay)
        raise AssertionError("unreachable")

    @staticmethod
    def _backoff(attempt: int) -> float:
        return min(0.25 * (2 ** attempt), 8.0)

    @staticmethod
    def _retry_after(response: Response) -> Optional[float]:
        value = (response.headers.get("Retry-After") or "").strip()
        if value.isdigit():
            return min(float(value), 30.0)
        if value:
            try:
                when = email_utils.parsedate_to_datetime(value)
                return max(0.0, min((when - datetime.datetime.now(datetime.timezone.utc)).total_seconds(), 30.0))
            except (TypeError, ValueError):
                return None
        return None

    def _may_retry(self, attempt: int, started: float, response: Optional[Response]) -> bool:
        if attempt >= MAX_ATTEMPTS:
            return False
        wait = (self._retry_after(response) if response is not None else None) or self._backoff(attempt)
        return time.monotonic() - started + wait <= MAX_RETRY_SECONDS

    def _send_following(self, method, url, headers, body, auth, auth_host) -> Response:
        for _ in range(MAX_REDIRECTS + 1):
            parts = urllib.parse.urlsplit(url)
            send_auth = auth if auth and parts.netloc == auth_host else None
            response = self._send(method, parts, headers, body, send_auth)
            if response.status not in (301, 302, 303, 307, 308) or method not in ("GET", "HEAD"):
                return response
            location = response.headers.get("Location")
            response.close()
            if not location:
                raise RegistryError(response.status, method, url, "redirect without a Location")
            url = urllib.parse.urljoin(url, location)
        raise RegistryError(0, method, url, "more than %d redirects" % MAX_REDIRECTS)

    def _send(self, method, parts, headers, body, auth) -> Response:
        all_headers = {"User-Agent": "zeroimage/" + __version__}
        all_headers.update(headers)
        if auth:
            all_headers["Authorization"] = auth
        body, length = body
        if isinstance(body, (bytes, bytearray)):
            length = len(body)
        if body is not None or method in ("PUT", "POST", "PATCH"):
            all_headers["Content-Length"] = str(length or 0)
        conn = self._connection(parts.scheme, parts.netloc)
        path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        if conn._zeroimage_proxied:
            path = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))
        try:
            conn.request(method, path, body=body, headers=all_headers)
            if conn.sock is not None:
                conn.sock.settimeout(READ_TIMEOUT)
            raw = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        idle = self._idle().setdefault((parts.scheme, parts.netloc), [])
        response = Response(raw, conn, urllib.parse.urlunsplit(parts), idle.append)
        log.debug("%s %s -> %d%s", method, _redact_url(response.url), response.status,
                  " (with credentials)" if auth else "")
        if method == "HEAD":
            response.close()
        return response


def _redact_url(url: str) -> str:
    """A URL fit for logs: the query (signatures, tokens) cut off."""
    return url.split("?", 1)[0]


def _network_error(method: str, url: str, error: Exception) -> "ZeroImageError":
    host = urllib.parse.urlsplit(url).netloc
    if isinstance(error, ssl.SSLCertVerificationError):
        return NetworkError("TLS certificate of %s not trusted (%s); add its CA with SSL_CERT_FILE or "
                            "/etc/docker/certs.d/%s/ca.crt, or use --insecure" % (host, error.verify_message, host))
    if isinstance(error, socket.timeout):
        return NetworkError("%s %s: timed out talking to %s" % (method, _redact_url(url), host))
    reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
    hint = ""
    if isinstance(error, (ConnectionRefusedError, socket.gaierror)):
        hint = "; is the registry name and port right, and is it running? (proxies: HTTPS_PROXY, NO_PROXY)"
    return NetworkError("cannot reach %s (%s %s): %s%s" % (host, method, _redact_url(url), reason, hint))


# ---- Registry client ----

_AUTH_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_AUTH_ITEM_RE = re.compile(r'\s*(?:(%s)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)|(%s)|,)' % (_AUTH_TOKEN, _AUTH_TOKEN))


def parse_challenges(header: str) -> List[Tuple[str, Dict[str, str]]]:
    """Parse ``WWW-Authenticate``: several challenges, quoted values with commas and escapes.

    ``Bearer realm="https://a/token",service="reg",scope="repository:x:pull,push"``
    → ``[("bearer", {"realm": ..., "service": ..., "scope": ...})]``.
    """
    challenges = []
    pos, text = 0, header or ""
    while pos < len(text):
        match = _AUTH_ITEM_RE.match(text, pos)
        if not match or match.end() == pos:
            break
        pos = match.end()
        key, value, scheme = match.groups()
        if scheme:
            challenges.append((scheme.lower(), {}))
        elif key and challenges:
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            challenges[-1][1][key.lower()] = value
    return challenges


class _ResumingReader:
    """Reads ``size`` bytes from ``fetch(offset)`` answers, picking up after a broken connection."""

    MAX_RESUMES = 3

    def __init__(self, fetch, size: int):
        self._fetch = fetch
        self._size = size
        self._done = 0
        self._resumes = 0
        self._response = fetch(0)

    def read(self, n: int = -1) -> bytes:
        while True:
            try:
                data = self._response.read(n)
            except (OSError, http_client.HTTPException) as e:
                data, error = b"", e
            else:
                error = None
            if data or self._done >= self._size or n == 0:
                self._done += len(data)
                return data
            if self._resumes >= self.MAX_RESUMES:
                if error is not None:
                    raise _network_error("GET", self._response.url, error)
                return b""
            self._resumes += 1
            log.debug("download of %s broke off at %d of %d bytes; resuming",
                      _redact_url(self._response.url), self._done, self._size)
            self._response.close()
            self._response = self._fetch(self._done)
            if self._response.status == 200:        # the server ignored Range: skip what we have
                copy_stream(self._response, _Discard(), self._done)

    def close(self) -> None:
        self._response.close()


class _Discard:
    def write(self, data) -> int:
        return len(data)


def _basic_auth(creds: Optional[Credentials]) -> Optional[str]:
    if not creds or not creds.username:
        return None
    return "Basic " + base64.b64encode(("%s:%s" % (creds.username, creds.password)).encode("utf-8")).decode()


def _pull(repository: str) -> str:
    return "repository:%s:pull" % repository


def _push(repository: str) -> str:
    return "repository:%s:pull,push" % repository


class Registry:
    """One registry's API: auth (Basic, Bearer tokens cached per scope), manifests and blobs, all streaming."""

    def __init__(self, host: str, transport: Optional[Transport] = None,
                 credentials: Optional[Credentials] = None, environ=None, use_config: bool = True):
        self.host = host                                    # as in references: docker.io, localhost:5000
        self.api_host = DOCKER_HUB_API if host == DOCKER_HUB else host
        self.transport = transport or Transport()
        self._environ = os.environ if environ is None else environ
        self._credentials = credentials
        self._use_config = use_config and credentials is None
        self._base = None                                   # https://host or http://host, after ping
        self._challenge = None                              # (scheme, params) of /v2/
        self._tokens = {}                                   # scopes -> (header, expiry)
        self._manifests = {}                                # (repository, reference) -> get_manifest()

    # -- auth --

    @property
    def credentials(self) -> Optional[Credentials]:
        if self._use_config:
            self._credentials = resolve_credentials(self.host, self._environ)
            self._use_config = False
        return self._credentials

    def ping(self) -> None:
        """Find the scheme (HTTPS; HTTP only for loopback or --insecure) and the auth challenge."""
        if self._base is not None:
            return
        schemes = ["https"]
        if self.transport.insecure or _is_loopback(self.api_host):
            schemes.append("http")
        https_error = None
        for scheme in schemes:
            url = "%s://%s/v2/" % (scheme, self.api_host)
            try:
                response = self.transport.request("GET", url)
            except ZeroImageError as e:
                https_error = https_error or e
                if scheme == schemes[-1]:
                    raise https_error
                continue
            response.read_capped(MAX_ERROR_BODY, "the /v2/ answer")
            response.close()
            if scheme == "http" and response.status == 400 and https_error:
                raise https_error           # an HTTPS-only server: the TLS problem is the one to report
            if response.status == 401:
                challenges = parse_challenges(response.headers.get("WWW-Authenticate", ""))
                self._challenge = next((c for c in challenges if c[0] == "bearer"), None) or \
                    next((c for c in challenges if c[0] == "basic"), None)
            elif response.status not in (200, 404):
                raise RegistryError(response.status, "GET", url, "the registry API check failed")
            self._base = "%s://%s" % (scheme, self.api_host)
            log.debug("%s: API at %s, auth %s", self.host, self._base,
                      "%s (realm %s)" % (self._challenge[0], _redact_url(self._challenge[1].get("realm", "")))
                      if self._challenge else "none")
            return

    def _auth_header(self, scopes: Sequence[str], fresh: bool = False) -> Optional[str]:
        self.ping()
        if self._challenge is None:
            return None
        scheme, params = self._challenge
        creds = self.credentials
        if scheme == "basic":
            return _basic_auth(creds)
        if creds and creds.registry_token:
            return "Bearer " + creds.registry_token
        key = tuple(sorted(scopes))
        cached = self._tokens.get(key)
        if cached and not fresh and cached[1] > time.monotonic():
            return cached[0]
        log.debug("%s: asking %s for a token (%s) for %s", self.host, _redact_url(params.get("realm", "")),
                  "identity token" if creds and creds.identity_token else "user %s" % creds.username
                  if creds and creds.username else "anonymous", ", ".join(key) or "no scope")
        token, expires_in = self._fetch_token(params, key, creds)
        header = "Bearer " + token
        self._tokens[key] = (header, time.monotonic() + max(expires_in - 10, 10))
        return header

    def _fetch_token(self, params: Dict[str, str], scopes: Sequence[str], creds: Optional[Credentials]):
        realm = params.get("realm")
        realm_parts = urllib.parse.urlsplit(realm or "")
        if realm_parts.scheme not in ("http", "https") or not realm_parts.netloc:
            raise AuthenticationError(401, "GET", self._base, "the registry's token realm %r is not a URL" % realm)
        if creds and realm_parts.scheme == "http" and not (self.transport.insecure or _is_loopback(realm_parts.netloc)):
            raise AuthenticationError(401, "GET", _redact_url(realm), "refusing to send credentials to a plain-HTTP "
                                      "token realm (use --insecure if you trust this network)")
        query = [("service", params["service"])] if params.get("service") else []
        if creds and creds.identity_token:
            form = query + [("grant_type", "refresh_token"), ("refresh_token", creds.identity_token),
                            ("client_id", "zeroimage")] + ([("scope", " ".join(scopes))] if scopes else [])
            response = self.transport.request("POST", realm, {"Content-Type": "application/x-www-form-urlencoded"},
                                              urllib.parse.urlencode(form).encode())
            if response.status != 404:
                return self._token_answer(response, realm)
            response.close()
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query + [("scope", s) for s in scopes])
        response = self.transport.request("GET", url, auth=_basic_auth(creds), auth_host=realm_parts.netloc)
        return self._token_answer(response, realm)

    def _token_answer(self, response: Response, realm: str) -> Tuple[str, int]:
        data = response.read_capped(MAX_TOKEN_BODY, "the token answer")
        response.close()
        if response.status in (401, 403):
            raise AuthenticationError(response.status, "GET", _redact_url(realm),
                                      "the token server refused the credentials")
        if response.status != 200:
            raise RegistryError(response.status, "GET", _redact_url(realm), "the token server answered %d" % response.status)
        try:
            answer = json.loads(data.decode("utf-8"))
            token = answer.get("token") or answer.get("access_token")
            expires_in = int(answer.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            raise RegistryError(200, "GET", _redact_url(realm), "the token answer is not valid JSON")
        if not isinstance(token, str) or not token:
            raise RegistryError(200, "GET", _redact_url(realm), "the token answer holds no token")
        return token, expires_in

    def request(self, method: str, path: str, scopes: Sequence[str], headers=None, body=None,
                ok: Sequence[int] = (200,), length: Optional[int] = None,
                idempotent: Optional[bool] = None) -> Response:
        """An API request with auth; on 401 one more try with a fresh token; an error for a status not in ``ok``.

        A streamed body cannot be sent twice, so a request with one is not retried.
        """
        self.ping()
        url = path if "://" in path else self._base + path
        for fresh in (False, True):
            auth = self._auth_header(scopes, fresh)
            response = self.transport.request(method, url, headers, body, auth=auth, length=length,
                                              auth_host=urllib.parse.urlsplit(self._base).netloc,
                                              idempotent=idempotent)
            if response.status != 401 or fresh or not isinstance(body, (bytes, type(None))):
                break
            challenges = parse_challenges(response.headers.get("WWW-Authenticate", ""))
            self._challenge = next((c for c in challenges if c[0] in ("bearer", "basic")), self._challenge)
            if method != "HEAD":
                response.read_capped(MAX_ERROR_BODY, "an error answer")
            response.close()
        if response.status in ok:
            return response
        raise self._error(response, method, url)

    def _error(self, response: Response, method: str, url: str) -> "RegistryError":
        body = b""
        if method != "HEAD":
            try:
                body = response.read_capped(MAX_ERROR_BODY, "an error answer")
            except (ZeroImageError, OSError, http_client.HTTPException):
                pass
        response.close()
        errors = []
        try:
            errors = [e for e in json.loads(body.decode("utf-8")).get("errors", []) if isinstance(e, dict)]
        except (ValueError, AttributeError, UnicodeDecodeError):
            pass
        detail = "; ".join("%s: %s" % (e.get("code", "?"), e.get("message", "")) for e in errors)
        cls = {401: AuthenticationError, 403: AuthenticationError, 404: NotFoundError}.get(response.status, RegistryError)
        return cls(response.status, method, _redact_url(url), detail, errors)

    # -- manifests --

    def get_manifest(self, repository: str, reference: str) -> Tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest or index, verified when asked by digest.

        Read once per client: an index is fetched once for all the platforms of a build, and a
        tag that moves during a command does not mix two versions of an image.
        """
        key = (repository, reference)
        if key not in self._manifests:
            self._manifests[key] = self._fetch_manifest(repository, reference)
        return self._manifests[key]

    def _fetch_manifest(self, repository: str, reference: str) -> Tuple[bytes, str, str]:
        response = self.request("GET", "/v2/%s/manifests/%s" % (repository, reference), [_pull(repository)],
                                {"Accept": ", ".join(MANIFEST_ACCEPT)})
        data = response.read_capped(MAX_JSON_SIZE, "manifest %s" % reference)
        response.close()
        digest = sha256_digest(data)
        expected = reference if reference.startswith("sha256:") else response.headers.get("Docker-Content-Digest")
        if expected and expected.startswith("sha256:") and expected != digest:
            raise DigestMismatchError("manifest %s@%s" % (repository, reference), expected, digest)
        media_type = (response.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            parsed = json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise RegistryError(200, "GET", repository, "manifest %s is not valid JSON" % reference)
        if not isinstance(parsed, dict) or parsed.get("schemaVersion") == 1 or media_type in DOCKER_SCHEMA1:
            raise ZeroImageError("%s/%s:%s has a Docker schema 1 manifest, which zeroimage does not read; "
                                 "re-push it with a current tool" % (self.host, repository, reference))
        media_type = parsed.get("mediaType") or media_type
        if media_type not in IMAGE_MANIFEST_TYPES + INDEX_TYPES:
            raise ZeroImageError("%s/%s:%s is a %s, not an image" % (self.host, repository, reference, media_type or "manifest of unknown type"))
        return data, media_type, digest

    def manifest_exists(self, repository: str, reference: str) -> bool:
        response = self.request("HEAD", "/v2/%s/manifests/%s" % (repository, reference), [_pull(repository)],
                                {"Accept": ", ".join(MANIFEST_ACCEPT)}, ok=(200, 404))
        return response.status == 200

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str, scopes) -> str:
        response = self.request("PUT", "/v2/%s/manifests/%s" % (repository, reference), scopes,
                                {"Content-Type": media_type}, data, ok=(200, 201, 202))
        response.read_capped(MAX_ERROR_BODY, "the manifest answer")
        response.close()
        digest = sha256_digest(data)
        answered = response.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise DigestMismatchError("the pushed manifest", digest, answered)
        return digest

    # -- blobs --

    def blob_exists(self, repository: str, digest: str, scopes=None) -> bool:
        response = self.request("HEAD", "/v2/%s/blobs/%s" % (repository, digest), scopes or [_pull(repository)],
                                ok=(200, 404))
        return response.status == 200

    def open_blob(self, repository: str, digest: str, size: int) -> VerifyingReader:
        """A verifying stream of a blob (redirects to other hosts followed without our Authorization).

        A download that breaks off resumes with ``Range`` (or starts over when the server ignores it).
        """
        path = "/v2/%s/blobs/%s" % (repository, digest)

        def fetch(offset: int) -> Response:
            headers = {"Range": "bytes=%d-" % offset} if offset else {}
            return self.request("GET", path, [_pull(repository)], headers, ok=(200, 206))
        return VerifyingReader(_ResumingReader(fetch, size), digest, size,
                               "blob %s from %s/%s" % (digest, self.host, repository))

    def mount_blob(self, repository: str, digest: str, source: str, scopes) -> bool:
        """Cross-repository mount; False (and no error) when the registry would rather have an upload."""
        try:
            response = self.request("POST", "/v2/%s/blobs/uploads/?%s" % (
                repository, urllib.parse.urlencode([("mount", digest), ("from", source)])), scopes, ok=(201, 202))
        except RegistryError:
            return False
        response.read_capped(MAX_ERROR_BODY, "the mount answer")
        response.close()
        if response.status == 201:
            return True
        self._cancel(response)
        return False

    def _cancel(self, response: Response) -> None:
        location = response.headers.get("Location")
        if location:
            with contextlib.suppress(ZeroImageError):
                self.request("DELETE", urllib.parse.urljoin(self._base + "/", location), [], ok=(200, 202, 204, 404)).close()

    def upload_blob(self, repository: str, blob: Blob, scopes) -> None:
        """POST a session, then one PUT ``?digest=`` streaming the blob with its length."""
        # Starting a session twice only leaves an unused session behind: safe to retry.
        response = self.request("POST", "/v2/%s/blobs/uploads/" % repository, scopes, ok=(202,), idempotent=True)
        response.read_capped(MAX_ERROR_BODY, "the upload answer")
        response.close()
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(202, "POST", repository, "upload started without a Location")
        url = urllib.parse.urljoin(self._base + "/v2/%s/blobs/uploads/" % repository, location)
        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True) + [("digest", blob.digest)]
        url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, urllib.parse.urlencode(query), ""))
        with contextlib.closing(blob.open()) as body:
            response = self.request("PUT", url, scopes, {"Content-Type": "application/octet-stream"}, body,
                                    ok=(201, 204), length=blob.size)
        response.read_capped(MAX_ERROR_BODY, "the upload answer")
        response.close()




# ---- Operations ----


class BaseImage(NamedTuple):
    """What a build starts from: the config, the layers to carry over, the media-type family."""

    config: dict
    layers: List[Tuple[dict, Blob]]     # (descriptor as in the base manifest, blob)
    family: Dict[str, str]
    platform: Platform
    may_have_libc: bool                 # False for scratch and the minimal base
    name: str
    annotations: Dict[str, str] = {}    # base.name / base.digest of this image, when the base has a name
    index_annotations: Dict[str, str] = {}  # the same for the base as named (its index, if it has one)


class BuildResult(NamedTuple):
    """What a build made: the digest of what the output names (an index for several platforms),
    where it went (a path, or REF@DIGEST), and each image."""

    digest: str
    path: str
    images: List["Image"]


def _resolve_platform(requested: Optional[Platform], elf: Optional[ElfInfo], entrypoint: str) -> Platform:
    elf_platform = elf.platform if elf else None
    if elf is None:
        if requested is None:
            log.info("%s is not an ELF binary; building for %s (set --platform to choose)", entrypoint, DEFAULT_PLATFORM)
        return requested or DEFAULT_PLATFORM
    if elf_platform is None:
        if requested is None:
            log.warning("%s is an ELF binary for unknown machine %d; building for %s (set --platform to choose)",
                        entrypoint, elf.machine, DEFAULT_PLATFORM)
        return requested or DEFAULT_PLATFORM
    if requested is None:
        return elf_platform
    # ELF cannot tell arm/v6 from arm/v7 reliably, so compare os and architecture only.
    if (requested.os, requested.architecture) != (elf_platform.os, elf_platform.architecture):
        log.warning("--platform %s disagrees with %s, which is an ELF binary for %s",
                    requested, entrypoint, elf_platform)
    return requested


def _split_archive_spec(spec: str) -> Tuple[str, Optional[str]]:
    """``PATH`` or ``PATH:NAME`` (NAME may hold ':' too, as in alpine:3.19)."""
    path, ref_name = spec, None
    colon = len(spec)
    while not os.path.exists(path) and ":" in spec[:colon]:
        colon = spec.rindex(":", 0, colon)
        if os.path.exists(spec[:colon]):
            path, ref_name = spec[:colon], spec[colon + 1:]
    if not os.path.exists(path):
        raise ZeroImageError("%s: no such file or directory" % spec)
    return path, ref_name


def _archive_base(layout: Layout, ref_name: Optional[str], platform: Platform) -> BaseImage:
    """The base image for ``platform`` from an open layout (named ``ref_name`` when it holds several)."""
    path = layout.path
    chosen = select_manifest(layout.candidates(), platform, ref_name, where=path)
    manifest = layout.read_blob_json(chosen.descriptor)
    if not isinstance(manifest, dict) or manifest.get("mediaType", chosen.descriptor.get("mediaType")) not in IMAGE_MANIFEST_TYPES:
        raise ArchiveError("%s: %s is not an image manifest" % (path, chosen.descriptor["digest"]))
    family = DOCKER_FAMILY if chosen.descriptor.get("mediaType") == DOCKER_MANIFEST else OCI_FAMILY
    config = layout.read_blob_json(manifest.get("config"))
    layers = manifest.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list):
        raise ArchiveError("%s: manifest %s has no config or layers" % (path, chosen.descriptor["digest"]))
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(layers):
        raise ArchiveError("%s: config lists %d layers but the manifest has %d" % (path, len(diff_ids), len(layers)))
    return BaseImage(config, [(desc, layout.blob(desc)) for desc in layers], family,
                     chosen.platform, True, chosen.ref_name or os.path.basename(path))


def _open_entrypoint(path: str):
    try:
        st = os.stat(path)
    except OSError as e:
        raise ZeroImageError("entrypoint %s: %s" % (path, e.strerror or e))
    if stat.S_ISDIR(st.st_mode):
        raise ZeroImageError("entrypoint %s is a directory; give the program file itself" % path)
    if not stat.S_ISREG(st.st_mode):
        raise ZeroImageError("entrypoint %s is not a regular file" % path)
    try:
        return open(path, "rb")
    except OSError as e:
        raise ZeroImageError("cannot read entrypoint %s: %s" % (path, e.strerror or e))


def check_target(target: str) -> str:
    """The path of the program in the image: absolute, normalised, not a directory."""
    normal = posixpath.normpath(target)
    if not target.startswith("/") or normal == "/" or target.endswith("/") or normal != target:
        raise UsageError("the target path must be absolute and normalised, like /app, not %r" % target)
    return target


class Image(NamedTuple):
    """A built image: its manifest and config, and every blob it is made of (layers, config, manifest)."""

    manifest: dict
    config: dict
    platform: Platform
    blobs: List[Blob]

    @property
    def manifest_blob(self) -> Blob:
        return self.blobs[-1]

    @property
    def digest(self) -> str:
        return self.manifest_blob.digest


def _minimal_layer(ca_bundle: Optional[str], environ, tmp, level: int,
                   cache: Optional[LayerCache], present) -> Tuple[LayerResult, str]:
    """The built-in base's one layer, with the host's (or the given) CA bundle, and its history line."""
    if ca_bundle and not os.access(ca_bundle, os.R_OK):
        raise ZeroImageError("--ca-bundle %s: cannot read it" % ca_bundle)
    bundle = ca_bundle or find_host_ca_bundle(environ)
    if bundle is None:
        log.warning("no CA bundle found on this host; the image will have no TLS roots (use --ca-bundle FILE)")
    return build_layer(minimal_base_entries(bundle), tmp, level, cache, "minimal base", present), \
        "zeroimage: minimal base (users root, nobody, nonroot; TLS roots)"


def _layer_type_in(family: Dict[str, str], media_type: Optional[str]) -> Optional[str]:
    """A base layer's media type said in the image's family, so one manifest never mixes OCI and Docker."""
    for oci, docker in LAYER_TYPE_PAIRS:
        if media_type in (oci, docker):
            return docker if family is DOCKER_FAMILY else oci
    return media_type


def assemble_image(base: BaseImage, added: Sequence[Tuple[LayerResult, str]], entrypoint: Sequence[str],
                   created: str, options: ImageOptions = ImageOptions()) -> Image:
    """Put new layers (each with its history line) on a base: config, manifest, and the blob list."""
    family = base.family
    config = derive_config(base.config, base.platform,
                           [AddedLayer(layer.diff_id, why) for layer, why in added], entrypoint, created, options)
    config_blob = bytes_blob(canonical_json(config))
    layer_descs = [dict(desc, mediaType=_layer_type_in(family, desc.get("mediaType"))) for desc, _ in base.layers]
    layer_descs += [descriptor(family["layer"], layer.blob.digest, layer.blob.size) for layer, _ in added]
    manifest = make_manifest(family, descriptor(family["config"], config_blob.digest, config_blob.size), layer_descs,
                             dict(base.annotations, **dict(options.annotations)))
    blobs = [blob for _, blob in base.layers] + [layer.blob for layer, _ in added]
    return Image(manifest, config, base.platform, blobs + [config_blob, bytes_blob(canonical_json(manifest))])


def make_image_index(images: Sequence[Image], family: Dict[str, str], annotations: Dict[str, str]) -> Blob:
    """An index (or Docker manifest list) of single-platform images, as a blob."""
    index = make_index(family, [descriptor(i.manifest["mediaType"], i.digest, i.manifest_blob.size,
                                           platform=i.platform.to_dict()) for i in images])
    if annotations:
        index["annotations"] = dict(annotations)
    return bytes_blob(canonical_json(index))


def _name_annotations(name: Reference) -> Dict[str, str]:
    return {ANNOTATION_CONTAINERD_NAME: str(name), ANNOTATION_REF_NAME: name.tag}


def _layout_content(images: Sequence[Image], index: Optional[Blob], name: Reference):
    """What an output holds: every blob, the descriptor index.json points at, and Docker's
    manifest.json (only for a single image: Docker cannot load multi-platform archives)."""
    blobs = [blob for image in images for blob in image.blobs]
    if index is None:
        (image,) = images
        top = descriptor(image.manifest["mediaType"], image.digest, image.manifest_blob.size,
                         annotations=_name_annotations(name), platform=image.platform.to_dict())
        docker = [{"Config": _blob_path(image.manifest["config"]["digest"]), "RepoTags": [name.familiar()],
                   "Layers": [_blob_path(d["digest"]) for d in image.manifest["layers"]]}]
        return blobs, top, docker
    with contextlib.closing(index.open()) as f:
        media_type = json.loads(f.read().decode("utf-8"))["mediaType"]
    top = descriptor(media_type, index.digest, index.size, annotations=_name_annotations(name))
    return blobs + [index], top, None


def write_image_archive(f, image: Image, name: Reference) -> None:
    """One image as an OCI layout tar that also carries Docker's manifest.json, named ``name``."""
    blobs, top, docker = _layout_content([image], None, name)
    write_archive(f, blobs, make_index(OCI_FAMILY, [top]), docker)


def write_layout_dir(path: str, blobs: Sequence[Blob], top: dict) -> None:
    """Add an image to an OCI layout directory (made if missing), as ``skopeo copy oci:DIR:TAG`` does:
    new blobs written, index.json updated atomically, an entry with the same ref name replaced."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ZeroImageError("cannot write the layout %s: it exists and is not a directory" % path)
    try:
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
    except OSError as e:
        raise ZeroImageError("cannot write the layout %s: %s" % (path, e.strerror or e))
    index_path = os.path.join(path, "index.json")
    if os.path.exists(index_path):
        with Layout(path) as existing:
            index = existing.index()
    else:
        index = make_index(OCI_FAMILY, [])
    for blob in blobs:
        target = os.path.join(path, _blob_path(blob.digest))
        if os.path.isfile(target) and os.path.getsize(target) == blob.size:
            continue
        with atomic_output(target) as out, contextlib.closing(blob.open()) as src:
            copy_stream(src, out, blob.size)
    ref_name = top["annotations"][ANNOTATION_REF_NAME]
    index["manifests"] = [d for d in index["manifests"]
                          if not (isinstance(d, dict) and (d.get("annotations") or {}).get(ANNOTATION_REF_NAME) == ref_name)]
    index["manifests"].append(top)
    with atomic_output(index_path) as out:
        out.write(canonical_json(index))
    with atomic_output(os.path.join(path, "oci-layout")) as out:
        out.write(canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION}))


class Registries:
    """One Registry client per host, sharing a Transport (and so its connections and TLS setup)."""

    def __init__(self, insecure: bool = False, environ=None):
        self.transport = Transport(insecure, environ)
        self._environ = environ
        self._clients = {}

    def __call__(self, host: str) -> Registry:
        if host not in self._clients:
            self._clients[host] = Registry(host, self.transport, environ=self._environ)
        return self._clients[host]


def host_platform() -> Platform:
    """The platform of this machine, as ``docker pull`` picks by default."""
    return Platform.make("linux", os.uname().machine.lower()) if hasattr(os, "uname") else DEFAULT_PLATFORM


def _is_attestation(desc: dict) -> bool:
    annotations = desc.get("annotations") if isinstance(desc.get("annotations"), dict) else {}
    platform = Platform.from_dict(desc.get("platform"))
    return annotations.get(ANNOTATION_DOCKER_REFERENCE_TYPE) == "attestation-manifest" or \
        (platform is not None and platform.os == "unknown")


def _index_candidates(index: dict, where: str) -> List[Candidate]:
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list):
        raise ZeroImageError("%s: the index has no manifests list" % where)
    found = []
    for desc in manifests:
        _check_descriptor(desc, where)
        if not _is_attestation(desc) and desc.get("mediaType") in IMAGE_MANIFEST_TYPES + (None,):
            platform = Platform.from_dict(desc.get("platform"))
            if platform is not None:
                found.append(Candidate(desc, platform))
    return found


class RemoteImage(NamedTuple):
    """A single-platform image in a registry: the exact manifest bytes and what they say."""

    ref: Reference
    digest: str
    media_type: str
    data: bytes
    manifest: dict
    platform: Optional[Platform]
    top_digest: str             # what the reference names: the index when there is one


def _json_object(data: bytes, what: str) -> dict:
    try:
        value = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ZeroImageError("%s is not valid JSON" % what)
    if not isinstance(value, dict):
        raise ZeroImageError("%s is not a JSON object" % what)
    return value


def resolve_image(registry: Registry, ref: Reference, platform: Optional[Platform]) -> RemoteImage:
    """The image manifest for ``platform`` (the one there is, if None), through an index when there is one."""
    data, media_type, digest = registry.get_manifest(ref.repository, ref.digest or ref.tag)
    chosen, top_digest = None, digest
    if media_type in INDEX_TYPES:
        candidates = _index_candidates(_json_object(data, "index %s" % (ref,)), str(ref))
        if platform is None and len(candidates) == 1:
            chosen = candidates[0]
        else:
            chosen = select_manifest(candidates, platform or host_platform(), where=str(ref))
        data, media_type, digest = registry.get_manifest(ref.repository, chosen.descriptor["digest"])
        if media_type not in IMAGE_MANIFEST_TYPES:
            raise ZeroImageError("%s: the index entry for %s is not an image manifest" % (ref, chosen.platform))
    manifest = _json_object(data, "manifest %s" % digest)
    if not isinstance(manifest.get("layers"), list) or not isinstance(manifest.get("config"), dict):
        raise ZeroImageError("%s: manifest %s has no config or layers" % (ref, digest))
    return RemoteImage(ref, digest, media_type, data, manifest, chosen.platform if chosen else None, top_digest)


def _remote_blob(registry: Registry, repository: str, desc: dict) -> Blob:
    digest, size = _check_descriptor(desc, repository)
    return Blob(digest, size, lambda: registry.open_blob(repository, digest, size), (registry.host, repository))


def _remote_json_blob(registry: Registry, repository: str, desc: dict, what: str) -> Tuple[bytes, dict]:
    blob = _remote_blob(registry, repository, desc)
    if blob.size > MAX_JSON_SIZE:
        raise ZeroImageError("%s is %d bytes, over the %d-byte limit" % (what, blob.size, MAX_JSON_SIZE))
    with contextlib.closing(blob.open()) as f:
        data = f.read()
    return data, _json_object(data, what)


def registry_base(registries: Registries, text: str, platform: Platform) -> BaseImage:
    """A base image from a registry: its config read now, its layers streamed when used."""
    ref = Reference.parse(text)
    registry = registries(ref.registry)
    try:
        image = resolve_image(registry, ref, platform)
        _, config = _remote_json_blob(registry, ref.repository, image.manifest["config"], "config of %s" % (ref,))
    except NotFoundError:
        raise ZeroImageError("cannot pull %s: not found (is the name right? are you logged in? try: zeroimage login %s)"
                             % (ref.familiar(), ref.registry))
    found = image.platform or Platform.from_dict(config)
    if image.platform is None and (found is None or not found.matches(platform)):
        raise PlatformNotFoundError(platform, [found] if found else [], ref.familiar())
    layers = [(desc, _remote_blob(registry, ref.repository, desc)) for desc in image.manifest["layers"]]
    family = DOCKER_FAMILY if image.media_type == DOCKER_MANIFEST else OCI_FAMILY
    name = str(ref.replace(digest=None)) if ref.tag else ref.name
    return BaseImage(config, layers, family, found or platform, True, ref.familiar(),
                     {ANNOTATION_BASE_NAME: name, ANNOTATION_BASE_DIGEST: image.digest},
                     {ANNOTATION_BASE_NAME: name, ANNOTATION_BASE_DIGEST: image.top_digest})


PARALLEL_TRANSFERS = 4


def push_blobs(registry: Registry, repository: str, blobs: Sequence[Blob], scopes: Sequence[str]) -> Dict[str, int]:
    """Make every blob present in ``repository`` (skip, mount from a same-registry source, or
    upload), up to PARALLEL_TRANSFERS at a time, each on its own connection."""
    unique = list(collections.OrderedDict((blob.digest, blob) for blob in blobs).values())
    registry.ping()
    registry._auth_header(scopes)           # one token for all the workers
    counts = {"skipped": 0, "mounted": 0, "uploaded": 0}
    with concurrent_futures.ThreadPoolExecutor(min(PARALLEL_TRANSFERS, max(1, len(unique))),
                                               thread_name_prefix="zeroimage-push") as pool:
        for outcome in pool.map(lambda blob: _push_blob(registry, repository, blob, scopes), unique):
            counts[outcome] += 1
    log.debug("blobs: %d uploaded, %d mounted, %d already there",
              counts["uploaded"], counts["mounted"], counts["skipped"])
    return counts


def _push_blob(registry: Registry, repository: str, blob: Blob, scopes: Sequence[str]) -> str:
    if registry.blob_exists(repository, blob.digest, scopes):
        progress.event("skipped", _short(blob.digest), blob.size)
        return "skipped"
    if blob.source and blob.source[0] == registry.host and blob.source[1] != repository \
            and registry.mount_blob(repository, blob.digest, blob.source[1], scopes):
        progress.event("mounted", "%s from %s" % (_short(blob.digest), blob.source[1]), blob.size)
        return "mounted"
    task = progress.task("uploading", _short(blob.digest), blob.size)
    counted = blob._replace(open=lambda: _Counted(blob.open(), task))
    _upload_with_restarts(registry, repository, counted, scopes)
    task.finish()
    return "uploaded"


UPLOAD_ATTEMPTS = 3


def _upload_with_restarts(registry: Registry, repository: str, blob: Blob, scopes: Sequence[str]) -> None:
    """Upload a blob; when the upload fails on the way (5xx, 429, a broken connection), start a new
    session and send it again from the start (the blob is opened anew each time)."""
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        try:
            registry.upload_blob(repository, blob, scopes)
            return
        except (NetworkError, RegistryError) as e:
            retryable = isinstance(e, NetworkError) or e.status in RETRY_STATUSES
            if not retryable or attempt == UPLOAD_ATTEMPTS:
                raise
            log.info("upload of %s failed (%s); starting it again", blob.digest[:19], e)
            time.sleep(Transport._backoff(attempt))


def _push_scopes(ref: Reference, blobs: Sequence[Blob]) -> List[str]:
    """push,pull on the target and pull on each same-registry source, in one token (for mounts)."""
    sources = sorted(set(b.source[1] for b in blobs if b.source and b.source[0] == ref.registry
                         and b.source[1] != ref.repository))
    return [_push(ref.repository)] + [_pull(s) for s in sources]


def push_image(registries: Registries, ref: Reference, image: Image) -> str:
    """Push an image's blobs, then its manifest (by tag, or by digest); returns the manifest digest."""
    return push_images(registries, ref, [image], None)


def push_images(registries: Registries, ref: Reference, images: Sequence[Image], index: Optional[Blob]) -> str:
    """Push images (blobs first, then manifests); with an index, the children go by digest and the
    index by tag. Returns the digest of what the tag names."""
    registry = registries(ref.registry)
    scopes = _push_scopes(ref, [b for image in images for b in image.blobs[:-1]])
    with _registry_context("push", ref):
        push_blobs(registry, ref.repository, [b for image in images for b in image.blobs[:-1]], scopes)
        for image in images:
            digest = _put_manifest_blob(registry, ref, image.manifest_blob, image.manifest["mediaType"], scopes,
                                        ref.tag if index is None else None)
        if index is None:
            return digest
        with contextlib.closing(index.open()) as f:
            media_type = json.loads(f.read().decode("utf-8"))["mediaType"]
        return _put_manifest_blob(registry, ref, index, media_type, scopes, ref.tag)


def _put_manifest_blob(registry: Registry, ref: Reference, blob: Blob, media_type: str, scopes, tag) -> str:
    with contextlib.closing(blob.open()) as f:
        data = f.read()
    return registry.put_manifest(ref.repository, tag or blob.digest, data, media_type, scopes)


@contextlib.contextmanager
def _registry_context(action: str, ref: Reference):
    """Turn registry errors into one line that says what failed and what to try."""
    try:
        yield
    except AuthenticationError as e:
        raise ZeroImageError("cannot %s %s: access denied (%s); are you logged in? try: zeroimage login %s"
                             % (action, ref.familiar(), e.detail or "HTTP %d" % e.status, ref.registry))
    except NotFoundError as e:
        raise ZeroImageError("cannot %s %s: not found (%s); is the name right? are you logged in? try: zeroimage login %s"
                             % (action, ref.familiar(), e.detail or "HTTP 404", ref.registry))
    except RegistryError as e:
        raise ZeroImageError("cannot %s %s: %s" % (action, ref.familiar(), e))


# -- pull --


def _image_blobs(registry: Registry, ref: Reference, image_digest: str, data: bytes, manifest: dict,
                 platform: Optional[Platform]) -> Image:
    config_data, config = _remote_json_blob(registry, ref.repository, manifest["config"], "config of %s" % (ref,))
    layers = [_remote_blob(registry, ref.repository, d) for d in manifest["layers"]]
    config_blob = Blob(manifest["config"]["digest"], len(config_data), lambda: io.BytesIO(config_data))
    manifest_blob = Blob(image_digest, len(data), lambda: io.BytesIO(data))
    return Image(manifest, config, platform or Platform.from_dict(config) or DEFAULT_PLATFORM,
                 layers + [config_blob, manifest_blob])


class Saved(NamedTuple):
    """What ``pull`` saved or ``push_archive`` pushed: the digest of the manifest or index the
    reference names, its media type, the platforms in it, and where it went."""

    digest: str
    media_type: str
    platforms: List[str]
    where: str


def pull(ref_text: str, output: Optional[str] = None, *, platform: Optional[Platform] = None,
         all_platforms: bool = False, insecure: bool = False, environ=None) -> Saved:
    """Save an image (or, with ``all_platforms``, its whole index byte for byte) to an archive."""
    ref = Reference.parse(ref_text)
    output = output or ref.repository.rsplit("/", 1)[-1] + ".tar"
    registry = Registries(insecure, environ)(ref.registry)
    name = ref.replace(digest=None) if ref.tag else ref.replace(tag="latest", digest=None)
    with _registry_context("pull", ref), atomic_output(output) as out:
        if not all_platforms:
            remote = resolve_image(registry, ref, platform)
            image = _image_blobs(registry, ref, remote.digest, remote.data, remote.manifest, remote.platform)
            write_image_archive(out, image, name)
            return Saved(image.digest, remote.media_type, [str(image.platform)], output)
        data, media_type, digest = registry.get_manifest(ref.repository, ref.digest or ref.tag)
        blobs, top = [], descriptor(media_type, digest, len(data), annotations=_name_annotations(name))
        platforms = []
        if media_type in INDEX_TYPES:
            for desc in _json_object(data, "index %s" % (ref,)).get("manifests") or []:
                child_digest, _ = _check_descriptor(desc, str(ref))
                child, child_type, _ = registry.get_manifest(ref.repository, child_digest)
                if child_type not in IMAGE_MANIFEST_TYPES:
                    raise ZeroImageError("%s: nested indexes are not supported (%s)" % (ref, child_digest))
                image = _image_blobs(registry, ref, child_digest, child, _json_object(child, child_digest), None)
                blobs += image.blobs
                platforms += [] if _is_attestation(desc) else [str(image.platform)]
        else:
            image = _image_blobs(registry, ref, digest, data, _json_object(data, digest), None)
            blobs += image.blobs[:-1]
            platforms.append(str(image.platform))
        blobs.append(Blob(digest, len(data), lambda: io.BytesIO(data)))
        write_archive(out, blobs, make_index(OCI_FAMILY, [top]), None)
        return Saved(digest, media_type, platforms, output)


# -- push an archive --


def push_archive(spec: str, ref_text: str, *, insecure: bool = False, environ=None) -> Saved:
    """Push what an archive holds (one image, or an index and all its children), manifests byte for byte."""
    ref = Reference.parse(ref_text)
    path, name = _split_archive_spec(spec)
    registries = Registries(insecure, environ)
    registry = registries(ref.registry)
    with Layout(path) as layout, _registry_context("push", ref):
        entries = [d for d in layout.index()["manifests"] if name is None or name in _ref_names(_desc_name(d))]
        if len(set(d.get("digest") for d in entries)) != 1:
            names = ", ".join(_desc_name(d) or d.get("digest", "?") for d in layout.index()["manifests"])
            raise ArchiveError("%s holds %s; name one as %s:NAME (it has: %s)"
                               % (path, "no such image" if not entries else "several images", path, names or "nothing"))
        top = entries[0]
        scopes = [_push(ref.repository)]
        if top.get("mediaType") in INDEX_TYPES:
            children = layout.read_blob_json(top).get("manifests") or []
            for child in children:
                _push_layout_image(registry, ref, layout, child, scopes, None)
            data = layout.read_blob_bytes(top)
            digest = registry.put_manifest(ref.repository, ref.tag or top["digest"], data, top["mediaType"], scopes)
            platforms = [str(Platform.from_dict(c.get("platform"))) for c in children
                         if not _is_attestation(c) and Platform.from_dict(c.get("platform"))]
            return Saved(digest, top["mediaType"], platforms, str(ref.replace(digest=digest)))
        digest = _push_layout_image(registry, ref, layout, top, scopes, ref.tag)
        platform = Platform.from_dict(top.get("platform")) or layout._platform_of(top)
        return Saved(digest, top.get("mediaType", ""), [str(platform)] if platform else [],
                     str(ref.replace(digest=digest)))


def _desc_name(desc: dict) -> str:
    annotations = desc.get("annotations") if isinstance(desc.get("annotations"), dict) else {}
    return annotations.get(ANNOTATION_CONTAINERD_NAME) or annotations.get(ANNOTATION_REF_NAME) or ""


def _push_layout_image(registry: Registry, ref: Reference, layout: "Layout", desc: dict, scopes, tag) -> str:
    data = layout.read_blob_bytes(desc)
    manifest = _json_object(data, "manifest %s" % desc.get("digest"))
    blobs = [layout.blob(d) for d in (manifest.get("layers") or [])] + [layout.blob(manifest.get("config"))]
    push_blobs(registry, ref.repository, blobs, scopes)
    return registry.put_manifest(ref.repository, tag or desc["digest"], data,
                                 manifest.get("mediaType") or desc.get("mediaType"), scopes)


# -- inspect --


def describe_image(name: str, digest: str, media_type: str, manifest: dict, config: dict, platforms) -> dict:
    """What ``inspect --json`` prints (and the summary shows)."""
    runtime = config.get("config") if isinstance(config.get("config"), dict) else {}
    layers = [{"digest": d.get("digest"), "size": d.get("size", 0), "mediaType": d.get("mediaType", "")}
              for d in manifest.get("layers") or []]
    platform = str(Platform.from_dict(config) or "unknown")
    return {"name": name, "digest": digest, "mediaType": media_type, "platforms": list(platforms) or [platform],
            "platform": platform, "created": config.get("created", ""),
            "size": sum(d["size"] for d in layers), "layers": layers,
            "entrypoint": runtime.get("Entrypoint"), "cmd": runtime.get("Cmd"), "env": runtime.get("Env") or [],
            "user": runtime.get("User") or "", "workdir": runtime.get("WorkingDir") or ""}


def _describe(info: dict) -> str:
    lines = ["Name:        %s" % info["name"], "Digest:      %s" % info["digest"],
             "Media type:  %s" % info["mediaType"]]
    if len(info["platforms"]) > 1:
        lines.append("Platforms:   %s" % ", ".join(info["platforms"]))
    lines.append("Platform:    %s" % info["platform"])
    lines.append("Created:     %s" % info["created"])
    lines.append("Layers:      %d (%s)" % (len(info["layers"]), _human_size(info["size"])))
    for d in info["layers"]:
        lines.append("  %s  %10s  %s" % (d["digest"], _human_size(d["size"]), d["mediaType"]))
    for key in ("entrypoint", "cmd", "env", "user", "workdir"):
        value = info[key]
        if value:
            label = {"workdir": "WorkingDir", "cmd": "Cmd", "env": "Env"}.get(key, key.capitalize()) + ":"
            lines.append("%-12s %s" % (label, json.dumps(value) if isinstance(value, list) else value))
    return "\n".join(lines)


def inspect(target: str, *, platform: Optional[Platform] = None, mode: str = "summary",
            insecure: bool = False, environ=None) -> str:
    """A summary of an image (``mode`` "summary"), its raw manifest ("raw") or its config ("config")."""
    path, name = _split_archive_spec(target) if _looks_like_path(target) else (None, None)
    if path is not None:
        with Layout(path) as layout:
            candidates = layout.candidates()
            if platform is None and len(set(c.descriptor["digest"] for c in candidates)) == 1:
                chosen = candidates[0]
            else:
                chosen = select_manifest(candidates, platform or host_platform(), name, where=path)
            data = layout.read_blob_bytes(chosen.descriptor)
            manifest = _json_object(data, chosen.descriptor["digest"])
            config_data = layout.read_blob_bytes(manifest.get("config"))
            platforms = sorted(set(str(c.platform) for c in candidates))
            return _inspect_output(mode, chosen.ref_name or path, chosen.descriptor["digest"],
                                   manifest.get("mediaType") or chosen.descriptor.get("mediaType", ""),
                                   data, manifest, config_data, platforms)
    ref = Reference.parse(target)
    registry = Registries(insecure, environ)(ref.registry)
    with _registry_context("inspect", ref):
        data, media_type, digest = registry.get_manifest(ref.repository, ref.digest or ref.tag)
        platforms = []
        if media_type in INDEX_TYPES:
            platforms = [str(c.platform) for c in _index_candidates(_json_object(data, str(ref)), str(ref))]
            if mode == "raw" and platform is None:
                return data.decode("utf-8")
        remote = resolve_image(registry, ref, platform)
        config_data, _ = _remote_json_blob(registry, ref.repository, remote.manifest["config"], "config of %s" % (ref,))
        return _inspect_output(mode, str(ref), digest, media_type, remote.data, remote.manifest, config_data, platforms)


def _inspect_output(mode, name, digest, media_type, data, manifest, config_data, platforms) -> str:
    if mode == "raw":
        return data.decode("utf-8")
    if mode == "config":
        return config_data.decode("utf-8")
    info = describe_image(name, digest, media_type, manifest, _json_object(config_data, "config"), platforms)
    return canonical_json(info).decode("utf-8") if mode == "json" else _describe(info)


def _looks_like_path(target: str) -> bool:
    try:
        _split_archive_spec(target)
        return True
    except ZeroImageError:
        return False


# -- login, logout, check-auth --


def login(registry_text: str, username: str, password: str, *, insecure: bool = False, environ=None) -> str:
    """Check the credentials against the registry, then store them; returns where they were stored."""
    host = registry_host(registry_text)
    creds = Credentials(username, password)
    registry = Registry(host, Transport(insecure, environ), credentials=creds, environ=environ)
    registry.ping()
    try:
        if registry._challenge is None:
            log.warning("%s does not ask for credentials; storing them anyway", host)
        elif registry._challenge[0] == "basic":
            registry.request("GET", "/v2/", []).close()
        else:
            registry._auth_header([], fresh=True)
    except AuthenticationError:
        raise ZeroImageError("login to %s failed: wrong username or password; nothing was stored" % host)
    return store_credentials(host, creds, environ)


def logout(registry_text: str, environ=None) -> bool:
    return erase_credentials(registry_host(registry_text), environ)


def check_auth(ref_text: str, *, push: bool = False, insecure: bool = False, environ=None) -> Dict[str, bool]:
    """Whether the current credentials may pull (and push) a repository, changing nothing visible.

    The push check opens an upload session and cancels it.
    """
    ref = Reference.parse(ref_text)
    registry = Registries(insecure, environ)(ref.registry)
    result = {}
    try:
        registry.manifest_exists(ref.repository, ref.digest or ref.tag)     # 404 still means "allowed"
        result["pull"] = True
    except AuthenticationError:
        result["pull"] = False
    if push:
        try:
            response = registry.request("POST", "/v2/%s/blobs/uploads/" % ref.repository, [_push(ref.repository)],
                                        ok=(202,))
            response.read_capped(MAX_ERROR_BODY, "the upload answer")
            response.close()
            registry._cancel(response)
            result["push"] = True
        except AuthenticationError:
            result["push"] = False
    return result


def _check_program_platform(platform: Platform, elf: Optional[ElfInfo], path: str, strict: bool) -> None:
    """In a multi-platform build each binary must be built for its platform (a wrong file, almost always)."""
    if elf is None or elf.platform is None:
        return
    if (elf.platform.os, elf.platform.architecture) != (platform.os, platform.architecture):
        message = "%s is an ELF binary for %s, not %s" % (path, elf.platform, platform)
        if strict:
            raise ZeroImageError(message + " (--no-platform-check to build it anyway)")
        log.warning(message)


def _base_source(base: Optional[str], base_archive: Optional[str], registries: Registries, stack):
    """A function platform -> BaseImage for the base asked for, and whether it is the minimal one."""
    if base_archive is not None:
        path, ref_name = _split_archive_spec(base_archive)
        layout = stack.enter_context(Layout(path))
        return lambda platform: _archive_base(layout, ref_name, platform)
    if base not in (None, "scratch"):
        return lambda platform: registry_base(registries, base, platform)
    kind = base or "minimal"
    return lambda platform: BaseImage(base_config_for(platform), [], OCI_FAMILY, platform, False, kind)


def build(entrypoint, output: Optional[str] = None, *, base: Optional[str] = None,
          base_archive: Optional[str] = None, platform: Optional[Platform] = None,
          target: Optional[str] = None, tag: Optional[str] = None, compression_level: int = 6,
          ca_bundle: Optional[str] = None, push: Optional[str] = None, insecure: bool = False,
          options: ImageOptions = ImageOptions(), output_format: str = "archive",
          platform_check: bool = True, environ=None) -> BuildResult:
    """Build a program on a base and write the image to an OCI archive or layout, or push it.

    ``entrypoint`` is a path (one image; its platform is ``platform`` or read from its ELF
    header) or a list of (Platform, path) pairs (one image per platform, in an index).
    ``base`` is None (the built-in minimal base), ``"scratch"``, or a registry reference;
    ``base_archive`` is an OCI layout tar or directory, ``PATH:NAME`` to pick an image.
    ``push`` is a reference to push to instead of writing ``output``.
    """
    single = isinstance(entrypoint, str)
    programs = [(platform, entrypoint)] if single else list(entrypoint)
    if not programs:
        raise UsageError("give at least one program")
    if not single and platform is not None:
        raise UsageError("--platform goes with one plain ENTRYPOINT; give PLATFORM=PATH for each binary instead")
    if len(set(str(p) for p, _ in programs)) != len(programs):
        raise UsageError("each platform can be given once")
    if base is not None and base_archive is not None:
        raise UsageError("give --from or --from-archive, not both")
    if push is not None and output is not None:
        raise UsageError("give --push or -o, not both")
    if output_format not in ("archive", "oci-layout"):
        raise UsageError("--format is archive or oci-layout")
    if output_format == "oci-layout" and output is None:
        raise UsageError("--format oci-layout needs -o DIR")
    if not 0 <= compression_level <= 9:
        raise UsageError("--compression-level must be 0 to 9")
    first = programs[0][1]
    target = check_target(target or "/" + os.path.basename(first))
    push_ref = Reference.parse(push) if push is not None else None
    output = None if push_ref else output or os.path.basename(first) + ".tar"
    name = Reference.parse(tag or name_from_filename(first))
    if name.digest:
        raise InvalidReferenceError("--tag %s: an image name cannot carry a digest" % tag)
    created = rfc3339(created_timestamp(environ))
    registries = Registries(insecure, environ)
    with contextlib.ExitStack() as stack:
        # Layers wait in anonymous files beside the output (same filesystem; gone when closed or killed).
        scratch_dir = os.path.dirname(os.path.abspath(output)) if output else None
        scratch_file = lambda: stack.enter_context(tempfile.TemporaryFile(dir=scratch_dir))  # noqa: E731
        opened = [(wanted, path, stack.enter_context(_open_entrypoint(path))) for wanted, path in programs]
        added_files = [e for source, dest in options.add for e in tree_entries(source, dest)]
        out = None
        if output and output_format == "archive":
            out = stack.enter_context(atomic_output(output))    # renamed into place last, removed on error
        base_for = _base_source(base, base_archive, registries, stack)
        cache = present = None
        if push_ref is not None:        # only a push can skip compressing: when the registry has the layer
            cache = LayerCache.default(environ)
            target_registry = registries(push_ref.registry)

            def present(digest: str) -> bool:
                try:
                    return target_registry.blob_exists(push_ref.repository, digest, [_push(push_ref.repository)])
                except ZeroImageError:      # the push will say what is wrong; here, just compress
                    return False
        minimal_layer = None
        images = []
        for wanted, path, program in opened:
            elf = read_elf(program)
            if single:
                wanted = _resolve_platform(wanted, elf, path)
            else:
                _check_program_platform(wanted, elf, path, platform_check)
            base_image = base_for(wanted)
            added = []
            image_options = options
            if base is None and base_archive is None:
                if minimal_layer is None:
                    minimal_layer = _minimal_layer(ca_bundle, environ, scratch_file(), compression_level,
                                                   cache, present)
                added.append(minimal_layer)
                if options.user == "nonroot":       # numeric, so runAsNonRoot checks can see it
                    image_options = options._replace(user="65532:65532")
            if elf and elf.interpreter and not base_image.may_have_libc:
                log.warning("%s is dynamically linked (interpreter %s) but the %s base has no libc, so it will not "
                            "start; build it statically (Go: CGO_ENABLED=0; Rust: a musl target; C: -static) "
                            "or use a base with a libc", path, elf.interpreter, base_image.name)
            entries = added_files + [LayerEntry(target, "file", 0o755, source=program)]
            added.append((build_layer(entries, scratch_file(), compression_level, cache,
                                      "%s (%s)" % (target, wanted), present),
                          "zeroimage: COPY %s %s" % (os.path.basename(path), target)))
            images.append(assemble_image(base_image, added, [target], created, image_options))
        index = None
        if not single:
            index = make_image_index(images, base_image.family, base_image.index_annotations)
        blobs, top, docker = _layout_content(images, index, name)
        if push_ref is not None:
            digest = push_images(registries, push_ref, images, index)
        elif output_format == "oci-layout":
            write_layout_dir(output, blobs, top)
            digest = top["digest"]
        else:
            write_archive(out, blobs, make_index(OCI_FAMILY, [top]), docker)
            digest = top["digest"]
    where = output or str(push_ref.replace(digest=digest))
    return BuildResult(digest, where, images)


# ---- CLI ----


class _ProgressLogHandler(logging.Handler):
    """Log lines go through the progress display, so they never cut a redrawn line in half."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            progress.note(self.format(record))
        except Exception:       # a log line must never break the command
            self.handleError(record)


class _LogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno < logging.WARNING else record.levelname.lower() + ": "
        return "zeroimage: %s%s" % (level, record.getMessage())


def _platform_arg(text: str) -> Platform:
    try:
        return Platform.parse(text)
    except InvalidPlatformError as e:
        raise argparse.ArgumentTypeError(str(e))


def _target_arg(text: str) -> str:
    try:
        return check_target(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e))


def _tag_arg(text: str) -> str:
    try:
        ref = Reference.parse(text)
    except InvalidReferenceError as e:
        raise argparse.ArgumentTypeError(str(e))
    if ref.digest:
        raise argparse.ArgumentTypeError("an image name cannot carry a digest: %r" % text)
    return text


def _command(commands, name: str, help_text: str, description: str, examples: Sequence[str],
             json_output: bool = False, network: bool = True):
    parser = commands.add_parser(name, help=help_text, description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="examples:\n" + "\n".join("  " + e for e in examples))
    parser.set_defaults(parser=parser, json=False)  # parser: a usage error found later shows this usage
    talk = parser.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help="print only the result, and errors")
    talk.add_argument("-v", "--verbose", action="store_true",
                      help="also show each HTTP request, auth step and retry (secrets redacted)")
    if json_output:
        parser.add_argument("--json", action="store_true", help="print the result as one JSON object (see README)")
    if network:
        parser.add_argument("--insecure", action="store_true",
                            help="allow plain HTTP and TLS certificates that do not verify")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zeroimage",
        description="Build container images for single-binary programs, without Docker.",
        epilog="Run 'zeroimage COMMAND --help' for a command's options and examples.")
    parser.add_argument("--version", action="version", version="zeroimage " + __version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    build_cmd = _command(
        commands, "build", "build an image from a program and a base",
        "Build the image that this Dockerfile would, without Docker:\n\n"
        "  FROM BASE\n  COPY ENTRYPOINT /ENTRYPOINT\n  ENTRYPOINT [\"/ENTRYPOINT\"]\n\n"
        "and write it as an OCI archive (with Docker's manifest.json) that skopeo,\n"
        "podman, docker and umoci read, or push it. Prints the image digest on stdout\n"
        "(with --push: the pushed reference with its digest).",
        ["zeroimage build ./app                          # minimal base (users, TLS roots) -> app.tar",
         "zeroimage build --from scratch ./app           # nothing but the program",
         "zeroimage build --from alpine:3.19 --push registry.example.com/app:1 ./app",
         "zeroimage build --from-archive alpine.tar -o app.tar -t app:1.0 ./app",
         "zeroimage build --push reg.example.com/app:1 linux/amd64=dist/app-amd64 linux/arm64=dist/app-arm64",
         "zeroimage build --env MODE=prod --user nonroot --expose 8080 --add static:/srv/static ./app"],
        json_output=True)
    base = build_cmd.add_mutually_exclusive_group()
    base.add_argument("--from", dest="base", metavar="BASE",
                      help="a registry image, or 'scratch' for none (default: the built-in minimal base)")
    base.add_argument("--from-archive", metavar="PATH[:NAME]",
                      help="base from an OCI layout, as a tar archive or a directory")
    build_cmd.add_argument("--platform", type=_platform_arg, metavar="OS/ARCH[/VARIANT]",
                           help="target platform (default: read from the program's ELF header)")
    build_cmd.add_argument("--target", type=_target_arg, metavar="PATH",
                           help="where the program lands in the image (default: /NAME)")
    output = build_cmd.add_mutually_exclusive_group()
    output.add_argument("-o", "--output", metavar="PATH", help="archive to write (default: ./NAME.tar)")
    output.add_argument("--push", type=_reference_arg, metavar="REF", help="push the image to a registry instead")
    build_cmd.add_argument("-t", "--tag", type=_tag_arg, metavar="NAME[:TAG]",
                           help="name of the image inside the archive (default: NAME:latest)")
    build_cmd.add_argument("--format", choices=("archive", "oci-layout"), default="archive",
                           help="archive: one tar file (default); oci-layout: a directory (-o DIR), "
                                "added to when it already holds a layout")
    build_cmd.add_argument("--no-platform-check", action="store_true",
                           help="only warn when a binary's ELF header does not match its PLATFORM=")
    opts = build_cmd.add_argument_group("image options (repeatable where it makes sense)")
    opts.add_argument("--add", action="append", type=_add_arg, default=[], metavar="SRC:DST",
                      help="add a file or directory tree at DST, in the program's layer")
    opts.add_argument("--env", action="append", type=_pair_arg("--env"), default=[], metavar="KEY=VALUE")
    opts.add_argument("--label", action="append", type=_pair_arg("--label"), default=[], metavar="KEY=VALUE")
    opts.add_argument("--annotation", action="append", type=_pair_arg("--annotation"), default=[],
                      metavar="KEY=VALUE", help="an annotation on the image manifest")
    opts.add_argument("--user", type=_user_arg, metavar="USER[:GROUP]",
                      help="the user the program runs as ('nonroot' is 65532:65532 on the minimal base)")
    opts.add_argument("--workdir", type=_workdir_arg, metavar="DIR", help="the working directory (absolute)")
    opts.add_argument("--cmd", action="append", metavar="ARG",
                      help="a default argument (the image's Cmd); repeat for several; "
                           "write --cmd=-v for one that starts with -")
    opts.add_argument("--expose", action="append", type=_port_arg, default=[], metavar="PORT[/PROTO]")
    build_cmd.add_argument("--compression-level", type=int, choices=range(10), default=6, metavar="0-9",
                           help="gzip level of the new layers (default: 6)")
    build_cmd.add_argument("--ca-bundle", metavar="FILE",
                           help="TLS roots for the minimal base (default: the host's CA bundle)")
    build_cmd.add_argument("entrypoint", nargs="+", type=_program_arg, metavar="ENTRYPOINT",
                           help="the program file, or PLATFORM=PATH once per platform for a multi-platform image")
    build_cmd.set_defaults(func=cmd_build)

    pull_cmd = _command(
        commands, "pull", "save an image from a registry to an archive",
        "Save an image to an OCI archive (the format build writes). With --all-platforms\n"
        "the index and every manifest are kept byte for byte, so digests survive a later push.\n"
        "Prints the digest of the saved manifest or index.",
        ["zeroimage pull alpine:3.19                     # this machine's platform -> alpine.tar",
         "zeroimage pull --platform linux/arm64 -o base.tar alpine:3.19",
         "zeroimage pull --all-platforms alpine:3.19     # then, offline: zeroimage build --from-archive alpine.tar ..."],
        json_output=True)
    which = pull_cmd.add_mutually_exclusive_group()
    which.add_argument("--platform", type=_platform_arg, metavar="OS/ARCH[/VARIANT]",
                       help="the platform to save from an index (default: this machine's)")
    which.add_argument("--all-platforms", action="store_true", help="save the whole index, every platform")
    pull_cmd.add_argument("-o", "--output", metavar="PATH", help="archive to write (default: ./NAME.tar)")
    pull_cmd.add_argument("ref", type=_reference_arg, metavar="REF")
    pull_cmd.set_defaults(func=cmd_pull)

    push_cmd = _command(
        commands, "push", "push an archive to a registry",
        "Push what an archive holds (one image, or an index with all its children).\n"
        "Manifests are sent byte for byte, so digests stay the same. Prints REF@DIGEST.",
        ["zeroimage push app.tar registry.example.com/app:1",
         "zeroimage push multi.tar:alpine:3.19 registry.example.com/mirror/alpine:3.19"],
        json_output=True)
    push_cmd.add_argument("archive", metavar="ARCHIVE[:NAME]")
    push_cmd.add_argument("ref", type=_reference_arg, metavar="REF")
    push_cmd.set_defaults(func=cmd_push)

    inspect_cmd = _command(
        commands, "inspect", "describe an image in a registry or an archive",
        "Show an image: media type, digest, platforms of an index, layers, entrypoint,\n"
        "cmd, env and user; or its raw manifest (--raw) or config (--config).",
        ["zeroimage inspect alpine:3.19", "zeroimage inspect --platform linux/arm64 --config alpine:3.19",
         "zeroimage inspect --raw app.tar"],
        json_output=True)
    inspect_cmd.add_argument("--platform", type=_platform_arg, metavar="OS/ARCH[/VARIANT]",
                             help="which image of an index (default: this machine's)")
    mode = inspect_cmd.add_mutually_exclusive_group()
    mode.add_argument("--raw", dest="mode", action="store_const", const="raw", help="print the manifest as it is")
    mode.add_argument("--config", dest="mode", action="store_const", const="config", help="print the image config")
    inspect_cmd.add_argument("target", metavar="REF|ARCHIVE")
    inspect_cmd.set_defaults(func=cmd_inspect, mode="summary")

    login_cmd = _command(
        commands, "login", "check and store credentials for a registry",
        "Check the credentials against the registry, then store them as docker login does\n"
        "(in the configured credential helper, else in $DOCKER_CONFIG/config.json).",
        ["zeroimage login -u me ghcr.io                 # asks for the password",
         "echo \"$TOKEN\" | zeroimage login -u me --password-stdin ghcr.io"])
    login_cmd.add_argument("-u", "--username", metavar="USER")
    secret = login_cmd.add_mutually_exclusive_group()
    secret.add_argument("-p", "--password", metavar="PASS", help="the password (lands in shell history: prefer stdin)")
    secret.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    login_cmd.add_argument("registry", type=_registry_arg, metavar="REGISTRY")
    login_cmd.set_defaults(func=cmd_login)

    logout_cmd = _command(commands, "logout", "forget the credentials for a registry",
                          "Remove a registry's credentials from config.json or its credential helper.",
                          ["zeroimage logout ghcr.io", "zeroimage logout docker.io"], network=False)
    logout_cmd.add_argument("registry", type=_registry_arg, metavar="REGISTRY")
    logout_cmd.set_defaults(func=cmd_logout)

    check_cmd = _command(
        commands, "check-auth", "tell whether the credentials can pull (or push) a repository",
        "Tell whether the current credentials can pull (with --push: and push) a repository,\n"
        "without changing anything visible. Exit status 0 when all asked for is allowed.",
        ["zeroimage check-auth ghcr.io/me/app", "zeroimage check-auth --push registry.example.com/team/app"])
    check_cmd.add_argument("--push", action="store_true", help="check push access too")
    check_cmd.add_argument("ref", type=_reference_arg, metavar="REF")
    check_cmd.set_defaults(func=cmd_check_auth)
    return parser


def _program_arg(text: str):
    """``PATH``, or ``PLATFORM=PATH`` when what stands before '=' is a platform."""
    head, sep, tail = text.partition("=")
    if sep and "/" in head:
        try:
            return Platform.parse(head), tail
        except InvalidPlatformError:
            pass
    return None, text


def _pair_arg(option: str):
    def parse(text: str) -> Tuple[str, str]:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError("expected KEY=VALUE, got %r" % text)
        return key, value
    return parse


def _add_arg(text: str) -> Tuple[str, str]:
    source, sep, dest = text.rpartition(":")
    if not sep or not source or not dest.startswith("/"):
        raise argparse.ArgumentTypeError("expected SRC:DST with an absolute DST, like static:/srv/static, got %r" % text)
    return source, dest


def _workdir_arg(text: str) -> str:
    if not text.startswith("/"):
        raise argparse.ArgumentTypeError("must be an absolute path, not %r" % text)
    return text


def _user_arg(text: str) -> str:
    if not text or text.count(":") > 1 or any(c.isspace() for c in text) or text.startswith(":") or text.endswith(":"):
        raise argparse.ArgumentTypeError("expected USER[:GROUP], got %r" % text)
    return text


def _port_arg(text: str) -> str:
    port, _, proto = text.partition("/")
    proto = proto or "tcp"
    if not port.isdigit() or not 1 <= int(port) <= 65535 or proto not in ("tcp", "udp", "sctp"):
        raise argparse.ArgumentTypeError("expected PORT[/tcp|udp|sctp] with a port from 1 to 65535, got %r" % text)
    return "%d/%s" % (int(port), proto)


def _registry_arg(text: str) -> str:
    try:
        registry_host(text)
    except InvalidReferenceError as e:
        raise argparse.ArgumentTypeError(str(e))
    return text


def _reference_arg(text: str) -> str:
    try:
        Reference.parse(text)
    except InvalidReferenceError as e:
        raise argparse.ArgumentTypeError(str(e))
    return text


def cmd_build(args) -> int:
    programs = args.entrypoint
    if len(programs) == 1 and programs[0][0] is None:
        entrypoint = programs[0][1]
    elif any(platform is None for platform, _ in programs):
        raise UsageError("give one plain ENTRYPOINT, or PLATFORM=PATH for every binary (e.g. linux/arm64=dist/app)")
    else:
        entrypoint = programs
    options = ImageOptions(env=args.env, labels=args.label, annotations=args.annotation, user=args.user,
                           workdir=args.workdir, cmd=args.cmd, expose=args.expose, add=args.add)
    result = build(entrypoint, args.output, base=args.base, base_archive=args.from_archive,
                   platform=args.platform, target=args.target, tag=args.tag,
                   compression_level=args.compression_level, ca_bundle=args.ca_bundle,
                   push=args.push, insecure=args.insecure, options=options, output_format=args.format,
                   platform_check=not args.no_platform_check)
    for image in result.images:
        layers = len(image.manifest["layers"])
        log.info("%s: %d layer%s, %s", image.platform, layers, "" if layers == 1 else "s", image.digest)
    log.info("%s %s", "pushed" if args.push else "wrote", result.path)
    if args.json:
        _print_json(_build_json(result, bool(args.push)))
    else:
        print(result.path if args.push else result.digest)
    return 0


def _print_json(value: dict) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def _build_json(result: BuildResult, pushed: bool) -> dict:
    images = [{"platform": str(i.platform), "digest": i.digest, "mediaType": i.manifest["mediaType"],
               "size": i.manifest_blob.size, "config": i.manifest["config"]["digest"],
               "layers": [{"digest": d["digest"], "size": d["size"], "mediaType": d["mediaType"]}
                          for d in i.manifest["layers"]]} for i in result.images]
    value = {"digest": result.digest, "platforms": [i["platform"] for i in images], "images": images,
             "mediaType": images[0]["mediaType"] if len(images) == 1 else
             (DOCKER_MANIFEST_LIST if images[0]["mediaType"] == DOCKER_MANIFEST else OCI_INDEX),
             "size": sum(layer["size"] for image in images for layer in image["layers"])}
    value["reference" if pushed else "path"] = result.path
    return value


def cmd_pull(args) -> int:
    saved = pull(args.ref, args.output, platform=args.platform, all_platforms=args.all_platforms,
                 insecure=args.insecure)
    log.info("wrote %s", saved.where)
    if args.json:
        _print_json({"reference": str(Reference.parse(args.ref)), "digest": saved.digest, "mediaType": saved.media_type,
                     "platforms": saved.platforms, "path": saved.where, "size": os.path.getsize(saved.where)})
    else:
        print(saved.digest)
    return 0


def cmd_push(args) -> int:
    saved = push_archive(args.archive, args.ref, insecure=args.insecure)
    if args.json:
        _print_json({"reference": saved.where, "digest": saved.digest, "mediaType": saved.media_type,
                     "platforms": saved.platforms})
    else:
        print(saved.where)
    return 0


def cmd_inspect(args) -> int:
    mode = "json" if args.json and args.mode == "summary" else args.mode
    output = inspect(args.target, platform=args.platform, mode=mode, insecure=args.insecure)
    if mode == "json":
        _print_json(json.loads(output))
    else:
        print(output)
    return 0


def cmd_login(args) -> int:
    username, password = args.username, args.password
    if password is not None:
        log.warning("a password given with -p lands in your shell history; prefer --password-stdin")
    if username is None:
        if not sys.stdin.isatty():
            raise UsageError("no username: give -u USER (and --password-stdin for the password)")
        sys.stderr.write("Username: ")       # prompts go to stderr: stdout is for results
        sys.stderr.flush()
        username = sys.stdin.readline().strip()
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif password is None:
        if not sys.stdin.isatty():
            raise UsageError("no password: give --password-stdin and pipe it in")
        password = getpass.getpass("Password: ")
    if not username or not password:
        raise UsageError("username and password must not be empty")
    where = login(args.registry, username, password, insecure=args.insecure)
    log.info("login succeeded; credentials stored in %s", where)
    return 0


def cmd_logout(args) -> int:
    host = registry_host(args.registry)
    if logout(args.registry):
        log.info("removed the credentials for %s", host)
    else:
        log.info("not logged in to %s", host)
    return 0


def cmd_check_auth(args) -> int:
    result = check_auth(args.ref, push=args.push, insecure=args.insecure)
    for action, allowed in result.items():
        print("%s: %s" % (action, "allowed" if allowed else "denied"))
    return 0 if all(result.values()) else 1


class _Terminated(BaseException):
    """SIGTERM, raised like Ctrl-C so every atomic output cleans up on the way out."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:         # --help, --version and usage errors
        return e.code if isinstance(e.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    quiet, verbose = getattr(args, "quiet", False), getattr(args, "verbose", False)
    progress.configure(sys.stderr, "off" if quiet else "tty" if sys.stderr.isatty() else "plain")
    handler = _ProgressLogHandler()
    handler.setFormatter(_LogFormatter())
    log.addHandler(handler)
    log.setLevel(logging.ERROR if quiet else logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
    debug = os.environ.get("ZEROIMAGE_DEBUG") == "1"
    previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = args.func(args)
        summary = progress.summary()
        progress.close()
        if summary and not quiet:
            log.info("%s", summary)
        return code
    except ZeroImageError as e:
        if debug:
            raise
        if e.exit_code == 2:
            getattr(args, "parser", parser).print_usage(sys.stderr)
        print("zeroimage: error: %s" % " ".join(str(e).split()), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("zeroimage: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print("zeroimage: terminated", file=sys.stderr)
        return 143
    except OSError as e:
        if debug:
            raise
        where = " (%s)" % e.filename if e.filename else ""
        print("zeroimage: error: %s%s" % (e.strerror or e, where), file=sys.stderr)
        return 1
    except Exception as e:
        # A signal that lands inside an import of a C module comes out as ImportError (or similar)
        # with the interruption as its cause: report the interruption, not a traceback.
        cause = e.__cause__ or e.__context__
        while cause is not None and not isinstance(cause, (KeyboardInterrupt, _Terminated)):
            cause = cause.__cause__ or cause.__context__
        if cause is None or debug:
            raise
        print("zeroimage: %s" % ("interrupted" if isinstance(cause, KeyboardInterrupt) else "terminated"),
              file=sys.stderr)
        return 130 if isinstance(cause, KeyboardInterrupt) else 143
    finally:
        progress.close()
        progress.configure(None, "off")
        signal.signal(signal.SIGTERM, previous_sigterm)
        log.removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
