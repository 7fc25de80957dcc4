#!/usr/bin/env python3
"""zeroimage: container images for single-binary programs, without Docker.

``zeroimage build --from BASE some-program`` makes the image that

    FROM BASE
    COPY some-program /some-program
    ENTRYPOINT ["/some-program"]

would, and writes it as an OCI image layout in a tar archive that skopeo,
podman, umoci and docker can all read.  One module, standard library only:
copy this file into your project and ``import zeroimage``.
"""

import argparse
import contextlib
import copy
import datetime
import hashlib
import io
import json
import logging
import os
import posixpath
import re
import signal
import ssl
import stat
import struct
import sys
import tarfile
import tempfile
import zlib
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # errors
    "ZeroImageError", "UsageError", "InvalidReferenceError", "InvalidPlatformError",
    "DigestMismatchError", "PlatformNotFoundError", "ArchiveError",
    # values
    "Reference", "Platform", "ElfInfo", "Blob", "BuildResult",
    # functions
    "read_elf", "select_manifest", "derive_config", "make_manifest", "canonical_json",
    "write_layer", "Layout", "Image", "assemble_image", "write_image_archive", "build", "build_parser", "main",
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

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
ANNOTATION_DOCKER_REFERENCE_TYPE = "vnd.docker.reference.type"

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


# ---- References ----

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(r"^(?:%s(?:\.%s)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$" % (_DOMAIN_COMPONENT, _DOMAIN_COMPONENT))
_PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_MAX_NAME_LENGTH = 255


class Reference(NamedTuple):
    """An image reference in Docker's grammar, normalised (``busybox`` → ``docker.io/library/busybox:latest``)."""

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


class Platform(NamedTuple):
    """An OCI platform: ``linux/amd64``, ``linux/arm/v7``, ``linux/arm64/v8``."""

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
    if phentsize < struct.calcsize(fmt):
        return None
    for i in range(min(phnum, 4096)):
        f.seek(phoff + i * phentsize)
        raw = f.read(struct.calcsize(fmt))
        if len(raw) < struct.calcsize(fmt):
            return None
        fields = struct.unpack(fmt, raw)
        if fields[type_at] == _PT_INTERP:
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


def derive_config(base: dict, platform: Platform, layers: Sequence[AddedLayer],
                  entrypoint: Sequence[str], created: str) -> dict:
    """The new image config: the base's, every unknown field kept, plus our layers and entrypoint."""
    config = copy.deepcopy(base)
    runtime = config.get("config")
    runtime = dict(runtime) if isinstance(runtime, dict) else {}
    runtime["Entrypoint"] = list(entrypoint)
    runtime.pop("Cmd", None)            # Docker drops an inherited CMD when ENTRYPOINT is set
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


class LayerResult(NamedTuple):
    blob: Blob
    diff_id: str


class _GzipWriter:
    """A gzip member written by hand: mtime 0, no file name, the same bytes on every Python."""

    def __init__(self, out, level: int):
        self._out = out
        self._deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
        self._crc = 0
        self._size = 0
        xfl = b"\x02" if level == 9 else b"\x04" if level == 1 else b"\x00"
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + xfl + b"\xff")

    def write(self, data) -> int:
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        self._out.write(self._deflate.compress(data))
        return len(data)

    def close(self) -> None:
        self._out.write(self._deflate.flush())
        self._out.write(struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF))


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


def write_layer(entries: Sequence[LayerEntry], out, level: int = 6) -> Tuple[str, str, int]:
    """Write a gzip-compressed tar layer to ``out`` in one pass: (diff_id, digest, size).

    The tar is sorted, parents explicit, owned by 0:0 unless said otherwise,
    with mtime 0 everywhere: the bytes depend only on paths, modes and contents.
    """
    compressed = HashingWriter(out)
    gz = _GzipWriter(compressed, level)
    uncompressed = HashingWriter(gz)
    tar = TarWriter(uncompressed)
    for entry in with_parents(entries):
        if entry.kind != "file":
            tar.add(entry)
        elif entry.data is not None:
            tar.add(entry, len(entry.data), io.BytesIO(entry.data))
        else:
            with _open_source(entry.source) as f:
                tar.add(entry, os.fstat(f.fileno()).st_size, f)
    tar.close()
    gz.close()
    return uncompressed.digest, compressed.digest, compressed.size


def build_layer(entries: Sequence[LayerEntry], tmp, level: int) -> LayerResult:
    """Write a layer into ``tmp`` (an empty temporary file the caller closes); return it as a Blob."""
    diff_id, digest, size = write_layer(entries, tmp, level)
    tmp.flush()

    def opener():
        tmp.seek(0)
        return _Unclosing(tmp)
    return LayerResult(Blob(digest, size, opener), diff_id)


class _Unclosing:
    """A view of a file whose close() leaves the file open (for temp files read more than once)."""

    def __init__(self, f):
        self._f = f

    def read(self, n: int = -1) -> bytes:
        return self._f.read(n)

    def close(self) -> None:
        pass


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
    """The host's CA bundle: SSL_CERT_FILE, then OpenSSL's default, then the usual places."""
    environ = os.environ if environ is None else environ
    paths = [environ.get("SSL_CERT_FILE"), ssl.get_default_verify_paths().cafile]
    for path in paths + list(HOST_CA_BUNDLES):
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
        if self._dir is None:
            return self._tar.extractfile(self._members[name])
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


def _check_descriptor(desc, where: str) -> Tuple[str, int]:
    if not isinstance(desc, dict):
        raise ArchiveError("%s: a descriptor is not a JSON object" % where)
    digest, size = desc.get("digest"), desc.get("size")
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise ArchiveError("%s: descriptor has an invalid digest %r" % (where, digest))
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ArchiveError("%s: descriptor of %s has an invalid size %r" % (where, digest, size))
    return digest, size


@contextlib.contextmanager
def atomic_output(path: str):
    """Yield a file beside ``path``; rename it over ``path`` only if the block succeeds."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ZeroImageError("cannot write %s: it is a directory" % path)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    except OSError as e:
        raise ZeroImageError("cannot write %s: %s" % (path, e.strerror or e))
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
        src = blob.open()
        try:
            self._tar.add(LayerEntry(_blob_path(blob.digest)), blob.size, src)
        finally:
            src.close()
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


# ---- Operations ----


class BaseImage(NamedTuple):
    """What a build starts from: the config, the layers to carry over, the media-type family."""

    config: dict
    layers: List[Tuple[dict, Blob]]     # (descriptor as in the base manifest, blob)
    family: Dict[str, str]
    platform: Platform
    may_have_libc: bool                 # False for scratch and the minimal base
    name: str


class BuildResult(NamedTuple):
    digest: str
    path: str
    manifest: dict
    config: dict
    platform: Platform


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


def _archive_base(spec: str, platform: Platform) -> Tuple[BaseImage, Layout]:
    path, ref_name = spec, None
    colon = len(spec)
    while not os.path.exists(path) and ":" in spec[:colon]:    # PATH:NAME, where NAME may hold ':' too
        colon = spec.rindex(":", 0, colon)
        if os.path.exists(spec[:colon]):
            path, ref_name = spec[:colon], spec[colon + 1:]
    if not os.path.exists(path):
        raise ZeroImageError("--from-archive %s: no such file or directory" % spec)
    layout = Layout(path)
    try:
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
        base = BaseImage(config, [(desc, layout.blob(desc)) for desc in layers], family,
                         chosen.platform, True, chosen.ref_name or os.path.basename(path))
        return base, layout
    except BaseException:
        layout.close()
        raise


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


def _minimal_base(platform: Platform, ca_bundle: Optional[str], environ, tmp, level: int):
    """The built-in base and its one layer, with the host's (or the given) CA bundle."""
    if ca_bundle and not os.access(ca_bundle, os.R_OK):
        raise ZeroImageError("--ca-bundle %s: cannot read it" % ca_bundle)
    bundle = ca_bundle or find_host_ca_bundle(environ)
    if bundle is None:
        log.warning("no CA bundle found on this host; the image will have no TLS roots (use --ca-bundle FILE)")
    layer = build_layer(minimal_base_entries(bundle), tmp, level)
    base = BaseImage(base_config_for(platform), [], OCI_FAMILY, platform, False, "minimal")
    return base, (layer, "zeroimage: minimal base (users root, nobody, nonroot; TLS roots)")


def assemble_image(base: BaseImage, added: Sequence[Tuple[LayerResult, str]], entrypoint: Sequence[str],
                   created: str) -> Image:
    """Put new layers (each with its history line) on a base: config, manifest, and the blob list."""
    family = base.family
    config = derive_config(base.config, base.platform,
                           [AddedLayer(layer.diff_id, why) for layer, why in added], entrypoint, created)
    config_blob = bytes_blob(canonical_json(config))
    layer_descs = [desc for desc, _ in base.layers]
    layer_descs += [descriptor(family["layer"], layer.blob.digest, layer.blob.size) for layer, _ in added]
    manifest = make_manifest(family, descriptor(family["config"], config_blob.digest, config_blob.size), layer_descs)
    blobs = [blob for _, blob in base.layers] + [layer.blob for layer, _ in added]
    return Image(manifest, config, base.platform, blobs + [config_blob, bytes_blob(canonical_json(manifest))])


def write_image_archive(f, image: Image, name: Reference) -> None:
    """One image as an OCI layout tar that also carries Docker's manifest.json, named ``name``."""
    annotations = {ANNOTATION_CONTAINERD_NAME: str(name), ANNOTATION_REF_NAME: name.tag}
    manifest_desc = descriptor(image.manifest["mediaType"], image.digest, image.manifest_blob.size,
                               annotations=annotations, platform=image.platform.to_dict())
    docker_manifest = [{"Config": _blob_path(image.manifest["config"]["digest"]), "RepoTags": [name.familiar()],
                        "Layers": [_blob_path(d["digest"]) for d in image.manifest["layers"]]}]
    write_archive(f, image.blobs, make_index(OCI_FAMILY, [manifest_desc]), docker_manifest)


def build(entrypoint: str, output: Optional[str] = None, *, base: Optional[str] = None,
          base_archive: Optional[str] = None, platform: Optional[Platform] = None,
          target: Optional[str] = None, tag: Optional[str] = None, compression_level: int = 6,
          ca_bundle: Optional[str] = None, environ=None) -> BuildResult:
    """Build ENTRYPOINT on a base and write the image to an OCI archive; return its digest.

    ``base`` is None (the built-in minimal base), ``"scratch"``, or (later) a
    registry reference; ``base_archive`` is an OCI layout tar or directory, with
    an optional ``:NAME`` to choose among several images.
    """
    if base is not None and base_archive is not None:
        raise UsageError("give --from or --from-archive, not both")
    if base not in (None, "scratch"):
        raise ZeroImageError("--from %s: pulling bases from a registry is not supported yet; save the base with "
                             "'skopeo copy docker://%s oci-archive:base.tar' and use --from-archive base.tar" % (base, base))
    if not 0 <= compression_level <= 9:
        raise UsageError("--compression-level must be 0 to 9")
    target = check_target(target or "/" + os.path.basename(entrypoint))
    output = output or os.path.basename(entrypoint) + ".tar"
    name = Reference.parse(tag or name_from_filename(entrypoint))
    if name.digest:
        raise InvalidReferenceError("--tag %s: an image name cannot carry a digest" % tag)
    created = rfc3339(created_timestamp(environ))
    with contextlib.ExitStack() as stack:
        # Layers wait in anonymous files beside the output (same filesystem; gone when closed or killed).
        scratch_dir = os.path.dirname(os.path.abspath(output))
        scratch_file = lambda: stack.enter_context(tempfile.TemporaryFile(dir=scratch_dir))  # noqa: E731
        program = stack.enter_context(_open_entrypoint(entrypoint))
        out = stack.enter_context(atomic_output(output))     # renamed into place last, removed on error
        elf = read_elf(program)
        platform = _resolve_platform(platform, elf, entrypoint)
        added = []
        if base_archive is not None:
            base_image, layout = _archive_base(base_archive, platform)
            stack.callback(layout.close)
        elif base == "scratch":
            base_image = BaseImage(base_config_for(platform), [], OCI_FAMILY, platform, False, "scratch")
        else:
            base_image, base_layer = _minimal_base(platform, ca_bundle, environ, scratch_file(), compression_level)
            added.append(base_layer)
        if elf and elf.interpreter and not base_image.may_have_libc:
            log.warning("%s is dynamically linked (interpreter %s) but the %s base has no libc, so it will not start; "
                        "build it statically (Go: CGO_ENABLED=0; Rust: a musl target; C: -static) "
                        "or use a base with a libc (--from-archive)", entrypoint, elf.interpreter, base_image.name)
        program_layer = build_layer([LayerEntry(target, "file", 0o755, source=program)], scratch_file(), compression_level)
        added.append((program_layer, "zeroimage: COPY %s %s" % (os.path.basename(entrypoint), target)))
        image = assemble_image(base_image, added, [target], created)
        write_image_archive(out, image, name)
    return BuildResult(image.digest, output, image.manifest, image.config, image.platform)


# ---- CLI ----


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zeroimage",
        description="Build container images for single-binary programs, without Docker.",
        epilog="Run 'zeroimage COMMAND --help' for a command's options and examples.")
    parser.add_argument("--version", action="version", version="zeroimage " + __version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    build_cmd = commands.add_parser(
        "build", help="build an image from a program and a base",
        description="Build the image that this Dockerfile would, without Docker:\n\n"
                    "  FROM BASE\n  COPY ENTRYPOINT /ENTRYPOINT\n  ENTRYPOINT [\"/ENTRYPOINT\"]\n\n"
                    "and write it as an OCI archive (with Docker's manifest.json) that skopeo,\n"
                    "podman, docker and umoci read. Prints the image digest on stdout.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  zeroimage build ./app                          # minimal base (users, TLS roots) -> app.tar\n"
               "  zeroimage build --from scratch ./app           # nothing but the program\n"
               "  zeroimage build --from-archive alpine.tar -o app.tar -t app:1.0 ./app\n"
               "  skopeo copy oci-archive:app.tar docker-daemon:app:1.0")
    base = build_cmd.add_mutually_exclusive_group()
    base.add_argument("--from", dest="base", metavar="BASE",
                      help="'scratch' for an empty base (default: the built-in minimal base)")
    base.add_argument("--from-archive", metavar="PATH[:NAME]",
                      help="base from an OCI layout, as a tar archive or a directory")
    build_cmd.add_argument("--platform", type=_platform_arg, metavar="OS/ARCH[/VARIANT]",
                           help="target platform (default: read from the program's ELF header)")
    build_cmd.add_argument("--target", type=_target_arg, metavar="PATH", help="where the program lands in the image (default: /NAME)")
    build_cmd.add_argument("-o", "--output", metavar="PATH", help="archive to write (default: ./NAME.tar)")
    build_cmd.add_argument("-t", "--tag", type=_tag_arg, metavar="NAME[:TAG]",
                           help="name of the image inside the archive (default: NAME:latest)")
    build_cmd.add_argument("--compression-level", type=int, choices=range(10), default=6, metavar="0-9",
                           help="gzip level of the new layers (default: 6)")
    build_cmd.add_argument("--ca-bundle", metavar="FILE",
                           help="TLS roots for the minimal base (default: the host's CA bundle)")
    build_cmd.add_argument("entrypoint", metavar="ENTRYPOINT", help="the program file")
    build_cmd.set_defaults(func=cmd_build)
    return parser


def cmd_build(args) -> int:
    result = build(args.entrypoint, args.output, base=args.base, base_archive=args.from_archive,
                   platform=args.platform, target=args.target, tag=args.tag,
                   compression_level=args.compression_level, ca_bundle=args.ca_bundle)
    layers = len(result.manifest["layers"])
    log.info("wrote %s (%s, %d layer%s)", result.path, result.platform, layers, "" if layers == 1 else "s")
    print(result.digest)
    return 0


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
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    debug = os.environ.get("ZEROIMAGE_DEBUG") == "1"
    previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return args.func(args)
    except ZeroImageError as e:
        if debug:
            raise
        if e.exit_code == 2:
            parser.print_usage(sys.stderr)
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
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
        log.removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
