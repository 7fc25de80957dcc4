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
into your project and ``import zeroimage``, or run it.

As a library: every operation (``build``, ``pull``, ``push_archive``, ``copy``, ``sync``, ``inspect``,
``login``, ``logout``, ``check_auth``, ``list_tags``, ``resolve_digest``, ``tag_image``,
``delete_image``, ``mutate``, ``append``, ``rebase``, ``export``) takes an optional ``session=``: a ``Session``
holds the environment, the display (progress and log lines), the registry clients
and their connections, the layer cache, where blobs were seen (``BlobPlaces``) and a
cancellation event, and closes every connection when it ends.  Without one, each call makes and closes its own.

The module reads top to bottom like a book: each section (``# ---- Name ----``) uses only
what stands above it, and the command line comes last (tests/test_module_map.py checks
both this order and this map).

Every command pays for the start (``--help`` within 2x ``python3 -c pass``; bench/README.md): the
top imports what every command needs; a module only some commands use is a ``_LazyModule``
(imported on first use), a regular expression a ``_Pattern`` (compiled on first use), a value
type a ``_Value`` (not dataclasses, which import inspect and ast); ``build_parser(verb)`` defines
only the running command's options; and once main() returns, the process ends (``_end_now``).

Foundations
  Constants                media types and their families, annotation keys, Docker Hub, caps
  Text for messages        the one cleaner of outside text (``outside_text``), URL redaction
  Errors                   ZeroImageError and its kinds; messages name options, never flags
  Digests                  digest grammar; sha256, sha512, BLAKE3; verifying readers
  Guards                   bounded reads, stall and answer deadlines, types checked at the border
  Files                    input and output paths, atomic outputs
  Display                  progress and log lines
Values
  References               image references, registry hosts, default names
  Platforms                platforms, platform words in file names, choosing from an index
  ELF                      what a binary's headers say (platform, interpreter, sections)
  Build information        Go's and Rust's embedded build info, and the labels it gives
  Manifests and configs    JSON from outside, shapes, ImageOptions, BuildOptions, metadata, configs
Layers
  Compression              the codec table (gzip, zstd, ...), ``open_layer``, the parallel gzip
  Layers                   deterministic tars, the layer cache, ``add`` trees
  Images                   Image and ImageIndex values, families, conversion, ``check_writable``
  The minimal base         users, groups, CA roots, the zone database
Network
  Credentials, Proxies, HTTP transport (the only code that opens sockets), Authentication,
  Registry client (the distribution API, its quirks, one paginator), Session (the composition
  root), Container engines (the Engine API)
Sources and sinks
  Sources                  the Source protocol: OCI layouts and archives, docker-save archives,
                           a registry's repository, the engine's export
  Reading images           a source's image or index, chosen by platform, as a BaseImage
  SBOMs and referrers      SPDX documents, artifacts, the index that holds them beside an image
  Sinks                    the Sink protocol: archive, layout directory, engine, registry
Verbs and CLI
  Targets                  what a word on the command line names: a path, PATH:NAME, a reference
  Build                    build: a program on a base
  Transfers                pull, push, copy, sync: images moved as they are
  Filesystems              export and inspect --files: an image's layers applied, as one tree
  Changes                  mutate, append, rebase: an existing image made into a new one
  Inspection and registry verbs
  CLI                      ``build_parser``, ``cmd_*``, the rendering of options as flags, ``main``
"""

# Run as a program, a stop signal is taken from the first line on: while the modules below are
# imported (and after main() has returned) nothing is half-written, so it ends the process at once
# with the exit status the signal asks for; main() takes over the signals while it works.
from __future__ import annotations  # annotations are not evaluated at import: the start is shorter

import os
import signal


def _stop_at_once(signum, frame) -> None:
    """Ctrl-C or SIGTERM while zeroimage starts or ends as a program: say so, exit 130 or 143."""
    try:
        os.write(2, b"zeroimage: interrupted\n" if signum == signal.SIGINT else b"zeroimage: terminated\n")
    finally:
        os._exit(128 + signum)


def _stop_signals_at_once() -> None:
    """``_stop_at_once`` for SIGINT and SIGTERM, unless they are ignored (a background job's Ctrl-C)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _stop_at_once)


if __name__ == "__main__":
    _stop_signals_at_once()

import argparse  # noqa: E402 -- after the stop signals' handlers, on purpose
import collections
import contextlib
import errno
import importlib
import io
import math
import posixpath
import re
import stat
import struct
import sys
import threading
import time
import types
import urllib.parse
import warnings
import weakref
import zlib
from typing import Callable, Dict, List, NamedTuple, Optional, Protocol, Sequence, Tuple, Union

# Imports of the network stack run under one lock: a module half-imported by one thread must
# never be seen by another (http.client without HTTPSConnection, seen under load).
_IMPORT_LOCK = threading.RLock()


class _LazyModule:
    """A standard-library module imported on first use. The network stack (ssl, http.client,
    email, ...) costs ~25 ms that ``--help`` and offline builds do not need."""

    def __init__(self, name: str):
        self._lazy_name = name

    def __getattr__(self, attr: str):
        with _IMPORT_LOCK:
            module = importlib.import_module(self._lazy_name)
        value = getattr(module, attr)
        setattr(self, attr, value)          # found directly from now on
        return value


class _Pattern:
    """A regular expression compiled at its first use: compiling the module's thirty took a tenth of
    every start, and a run uses a few of them."""

    def __init__(self, pattern: str, flags: int = 0):
        self._source = (pattern, flags)

    def __getattr__(self, attr: str):
        value = getattr(re.compile(*self._source), attr)
        setattr(self, attr, value)          # found directly from now on
        return value


concurrent_futures = _LazyModule("concurrent.futures")
email_utils = _LazyModule("email.utils")
getpass = _LazyModule("getpass")
logging = _LazyModule("logging")        # only where a library caller's Display sends its lines
# and what --help and a verb that fails early never use
base64 = _LazyModule("base64")
_copy_module = _LazyModule("copy")
datetime = _LazyModule("datetime")
hashlib = _LazyModule("hashlib")
json = _LazyModule("json")
shutil = _LazyModule("shutil")
tarfile = _LazyModule("tarfile")
tempfile = _LazyModule("tempfile")
http_client = _LazyModule("http.client")
ipaddress = _LazyModule("ipaddress")
selectors = _LazyModule("selectors")
socket = _LazyModule("socket")
ssl = _LazyModule("ssl")
subprocess = _LazyModule("subprocess")
# (concurrent.futures is not one: only the parallel gzip uses it, and it imports logging: 10 ms)
_NETWORK_MODULES = ("email.utils", "http.client", "ipaddress", "selectors", "socket", "ssl", "subprocess")


def _import_network_stack() -> None:
    """Import every lazily imported network module now, in one thread, before any worker can need one."""
    with _IMPORT_LOCK:
        for name in _NETWORK_MODULES:
            importlib.import_module(name)


__version__ = "0.1.0"

__all__ = [
    "__version__",
    # errors
    "ZeroImageError", "UsageError", "InvalidReferenceError", "InvalidPlatformError", "DigestMismatchError",
    "PlatformNotFoundError", "ArchiveError", "CredentialError", "RegistryError", "AuthenticationError",
    "NotFoundError", "NetworkError", "CancelledError", "NoCommonNameError",
    # the session every operation runs in, and what it shows
    "Session", "Display", "WARNING_FAILS",
    # values that operations take and return
    "Reference", "Platform", "ImageOptions", "BuildOptions", "Credentials", "Blob", "Image", "ImageIndex",
    "BuildResult", "Saved", "Synced", "SyncedTag", "ElfInfo", "BuildInfo", "Module", "LayerEntry", "Candidate",
    "AddedLayer", "Task", "Response", "Proxy",
    # operations
    "build", "pull", "push_archive", "copy", "sync", "inspect", "login", "logout", "check_auth",
    "list_tags", "resolve_digest", "tag_image", "delete_image", "mutate", "append", "rebase",
    "export", "image_files", "Exported", "FileEntry",
    # building blocks: reading binaries, archives and registries, writing layers
    "common_program_name", "default_image_name",
    "read_elf", "read_shebang", "read_build_info", "build_info_labels", "build_info_json", "select_manifest",
    "select_platforms",
    "read_selection", "walk_index", "read_tree", "parse_digest", "verify_bytes", "VerifyingReader",
    "spdx_document", "Attachment", "attach", "push_referrer", "referrers_tag",
    "derive_config", "apply_image_options", "Change", "change_image", "changed_tree", "rewritten_image",
    "image_layers", "mutated_config", "canonical_json", "convert_family", "write_layer", "tree_entries",
    "GzipWriter", "LayerCache", "BlobPlaces",
    "Codec", "CODECS", "Compression", "open_layer",
    "Layout", "DockerArchive", "open_archive", "compress_layer", "compressed_image", "Transport", "Authenticator",
    "Engine", "engine_addresses", "Registry", "Upload", "RegistrySource", "parse_challenges", "parse_links",
    "parse_proxy", "resolve_credentials", "store_credentials", "erase_credentials",
    # the command line
    "build_parser", "main",
]



# ---- Constants ----

OCI_LAYOUT_VERSION = "1.0.0"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"      # (Docker's schemas have no zstd)
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"                # uncompressed

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"      # uncompressed (docker save's layer.tar)

# A media-type family: what an image built on a base of that family uses.
# Read-only: no module-level state can change.
OCI_FAMILY = types.MappingProxyType({"manifest": OCI_MANIFEST, "index": OCI_INDEX,
                                     "config": OCI_CONFIG, "layer": OCI_LAYER_GZIP})
DOCKER_FAMILY = types.MappingProxyType({"manifest": DOCKER_MANIFEST, "index": DOCKER_MANIFEST_LIST,
                                        "config": DOCKER_CONFIG, "layer": DOCKER_LAYER_GZIP})
IMAGE_MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
IMAGE_CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG)
# What a Docker v2 schema 2 manifest's config may say it is: older skopeo and registries wrote
# application/octet-stream there (containers/image and Docker read such an image as any other).
DOCKER_CONFIG_TYPES = (DOCKER_CONFIG, "application/octet-stream")
OCI_ARTIFACT_MANIFEST = "application/vnd.oci.artifact.manifest.v1+json"     # an image-spec 1.1 draft, withdrawn
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
OCI_EMPTY = "application/vnd.oci.empty.v1+json"    # the config of an artifact that has none: the 2 bytes {}
SPDX_JSON = "application/spdx+json"                 # an SPDX 2.3 JSON document (the SBOM --sbom attaches)
MANIFEST_ACCEPT = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
ANNOTATION_DOCKER_REFERENCE_TYPE = "vnd.docker.reference.type"
ANNOTATION_BASE_NAME = "org.opencontainers.image.base.name"
ANNOTATION_BASE_DIGEST = "org.opencontainers.image.base.digest"
ANNOTATION_CREATED = "org.opencontainers.image.created"
ANNOTATION_TITLE = "org.opencontainers.image.title"
# On the index an archive or layout names when it keeps referrers beside an image: the digest of that image
ANNOTATION_HELD = "io.zeroimage.image"

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"

DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MAX_JSON_SIZE = 4 * 1024 * 1024      # manifests, configs, index.json
MAX_ATTACHED_SIZE = 64 * 1024 * 1024     # a document (an SBOM) inspect --sbom prints
MAX_INSPECT_DOWNLOAD = 128 * 1024 * 1024  # layers inspect --build-info downloads from a registry to find the program
MAX_INDEX_DEPTH = 4                  # index -> index -> ... -> manifest
CHUNK_SIZE = 1024 * 1024

# Windows' conventions, where no capability can be asked instead: the home directory is USERPROFILE,
# files have no execute bit, the engine listens on a named pipe. (The tests set it to simulate Windows.)
_WINDOWS = os.name == "nt"


# ---- Text for messages ----

_HTTP_REASONS = {400: "bad request", 401: "unauthorized", 403: "forbidden", 404: "not found",
                 405: "method not allowed", 408: "request timeout", 409: "conflict", 413: "payload too large",
                 415: "unsupported media type", 416: "range not satisfiable", 429: "too many requests",
                 500: "internal server error", 502: "bad gateway", 503: "service unavailable",
                 504: "gateway timeout"}
# outside_text hands the patterns below a text cut a little past what it shows: they may look far ahead
# from every place they start (a user and a password of any length must be found), so the time they
# take grows with the square of what they are given, and "[[[[..." or "a.a.a..." of any length costs
# no more than a few thousand characters do.
_URL_IN_TEXT_RE = _Pattern(r"(?i)\b([a-z][a-z0-9+.-]{0,31}://)(?:[^\s/?#@]*@)?([^\s?#]*)(?:[?#][^\s]*)?")
_SECRET_IN_TEXT_RE = _Pattern(r"(?i)(?<![\w/.-])(?:(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}|"
                                r"((?:[a-z0-9]{1,64}[_-]){0,8}(?:access_token|refresh_token|id_token|private_token|token|"
                                r"password|passwd|pwd|client_secret|secret|secret_key|access_key|api_key|apikey|"
                                r"signature|sig|credentials?|security-token|auth))"
                                r"(\s*[\"']?\s*[=:]\s*[\"']?|\s+[\"'])[^\s,;&\"')]+)")
# Token formats that announce themselves (GitHub, GitLab, Slack, AWS key IDs), wherever they stand.
_PREFIXED_TOKEN_RE = _Pattern(r"\b(?:gh[pousr]_|github_pat_|glpat-|xox[abposr]-|AKIA|ASIA)[A-Za-z0-9_-]{8,}")
# USER:PASSWORD@ before a host without a scheme (a reference, a proxy setting): never a reference's
# own NAME:TAG@DIGEST, whose @ is followed by ALGORITHM:HEX, not by a host and a / or the end.
_USERINFO_IN_TEXT_RE = _Pattern(r"(?<![\w./@:-])[^\s/@:'\"]+:[^\s/@'\"]*@(?![a-z0-9+._-]+:[A-Za-z0-9=_-]{32,})"
                                  r"(?=(?:\[[0-9A-Fa-f:]+\]|[A-Za-z0-9.-]*[A-Za-z0-9])(?::[0-9]{1,5})?(?:[/\s'\"),;:]|\Z)"
                                  r"|[\s'\"),;]|\Z)")
_CLEANED_BEYOND = 2048     # characters past a message's limit that are cleaned (a URL's query cut may pull them in)
_JWT_IN_TEXT_RE = _Pattern(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)?")


def outside_text(text, limit: int = 300) -> str:
    """Text that came from outside (a registry's message, a name in an archive, a URL) made fit for one
    line on a terminal: whitespace runs become one space, other unprintable characters are escaped,
    URLs lose their credentials and query strings, tokens and passwords are cut, and it is at most
    ``limit`` characters long."""
    text = " ".join(str(text).split())
    cut = len(text) > limit + _CLEANED_BEYOND
    if cut:     # what lies past this is never shown; cut between words, so no token is cut in two
        text = text[:limit + _CLEANED_BEYOND]
        text = text[:text.rfind(" ")] if text.rfind(" ") > limit else text
    text = _URL_IN_TEXT_RE.sub(lambda m: m.group(1) + m.group(2) + ("?..." if "?" in m.group(0) else ""), text)
    text = _USERINFO_IN_TEXT_RE.sub("", text)
    text = _JWT_IN_TEXT_RE.sub("<redacted>", text)
    text = _PREFIXED_TOKEN_RE.sub("<redacted>", text)
    text = _SECRET_IN_TEXT_RE.sub(lambda m: (m.group(1) or m.group(3)) + (m.group(2) or m.group(4)) + "<redacted>",
                                  text)
    text = "".join(c if c.isprintable() else "\\x%02x" % ord(c) if ord(c) < 256 else "\\u%04x" % ord(c)
                   for c in text)
    return text if len(text) <= limit and not cut else text[:limit - 3] + "..."


def _is_utf8(text: str) -> bool:
    """Whether a name (from the file system or argv, where bytes that are not UTF-8 come through as
    surrogates) can be a tar member name: PAX names are UTF-8."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _printable_text(text: str) -> str:
    """Text from a binary or a server (a module name, a label, a platform word) as valid, printable
    Unicode, fit for JSON, a URL, a label or a terminal: each character that is not (a control
    character, a lone surrogate from bytes that were not UTF-8) written as its escape, ``\\x1b``,
    ``\\udcff``. Printable text is returned as it is."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else "\\x%02x" % ord(c) if ord(c) < 256 else "\\u%04x" % ord(c)
                   for c in text)


def _redact_url(url: str) -> str:
    """A URL fit for messages: no user:password, no query (signatures, tokens)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return outside_text(str(url).split("?", 1)[0].rsplit("@", 1)[-1], 300)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return outside_text(urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", "")), 300)


_URL_CHARS_RE = _Pattern(r"[\x21-\x7e]{1,8192}")


def url_problem(url) -> Optional[str]:
    """Why a URL from outside (a redirect, a token realm, an upload location, a next page) will not be
    requested, or None: only http and https, with a host and a valid port and no user or password,
    in visible ASCII."""
    if not isinstance(url, str) or not _URL_CHARS_RE.fullmatch(url):
        return "a URL that is empty, too long, or holds spaces, control or non-ASCII characters"
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port
    except ValueError:
        return "a malformed URL (host or port)"
    if parts.scheme.lower() not in ("http", "https"):
        return "a %s URL (only http and https)" % (outside_text(parts.scheme, 20) + ":" if parts.scheme else "relative")
    if not parts.hostname:
        return "a URL without a host"
    if "@" in parts.netloc:         # credentials go in Authorization, to the origin that asked: never in a URL
        return "a URL that carries a user name or password"
    return None


# ---- Errors ----

# Messages (errors, warnings, notes) speak to whoever called: a library caller never typed a flag.
# So a message names what the caller can change in the library's words, in backquotes, and the CLI
# (the only place that knows flags) renders them from its parser (``_cli_words``):
# - an option by its keyword (build()'s, ImageOptions', Session's): `tzdata`, with a value
#   `tzdata=DIR`, `media_types=oci`, `platform_check=False`; the CLI writes --tzdata, --tzdata DIR,
#   --media-types oci, --no-platform-check;
# - another verb as a call of its function: `login(HOST)`, `push_archive(media_types=oci)`; the
#   CLI writes zeroimage login HOST, zeroimage push --media-types oci;
# - advice that fits only some errors of a kind is the error's ``hint`` (a kind), worded in
#   ``_HINTS`` the same way and given as ``advice``.
# Nothing else stands in backquotes in a message of ours; no message outside the CLI writes a flag
# or "zeroimage VERB" (tests/test_messages.py scans the module for both).
_NAMED_RE = _Pattern(r"`([a-z][a-z0-9_]*)(?:\(([^`()]*)\)|=([^`\s]+))?`")
_HINTS = {"plain-http": "if it is a plain-HTTP registry, use `insecure`"}


class ZeroImageError(Exception):
    """Root of every error zeroimage raises on purpose; the CLI prints it as one line. ``hint``, when
    set, is a kind of advice that names an option (``advice`` says it in the library's words, the CLI
    in its flags: "plain-http" is "if it is a plain-HTTP registry, use --insecure")."""

    exit_code = 1
    hint = None     # "plain-http": a TLS handshake met a plain-HTTP server (the option: insecure)

    @property
    def advice(self) -> Optional[str]:
        """What the hint kind advises, naming options as messages do (`insecure`), or None."""
        return _HINTS.get(self.hint)


class UsageError(ZeroImageError):
    """The command line itself is wrong (exit status 2)."""

    exit_code = 2


class InvalidReferenceError(ZeroImageError, ValueError):
    """An image reference or name does not follow Docker's grammar. Every reference zeroimage parses
    was given by its caller, so this is a usage error (exit status 2), wherever the reference appears."""

    exit_code = 2


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
        super().__init__("%s has no image for %s (it has: %s); pick one with `platform`"
                         % (where, wanted, listed))
        self.wanted = wanted
        self.available = list(available)


class NoCommonNameError(UsageError):
    """The programs of a multi-platform build have no name in common once their platform words are
    removed, so neither the path of the program in the image nor the image's name can come from
    them: ``options`` are what would name them (``target``, and ``tag`` unless the image is pushed)."""

    def __init__(self, paths: Sequence[str], options: Sequence[str]):
        self.paths, self.options = list(paths), tuple(options)
        super().__init__("the programs %s have no name in common once their platform words are removed; give %s"
                         % (", ".join(outside_text(p, 200) for p in self.paths),
                            " or ".join("`%s`" % option for option in self.options)))


class ArchiveError(ZeroImageError):
    """An OCI layout or archive is malformed, unsafe or incomplete."""


class CredentialError(ZeroImageError):
    """config.json or a credential helper could not be read or used."""


class RegistryError(ZeroImageError):
    """A registry answered with an error (or not at all as expected). ``message`` replaces the
    default text (what failed, and what to try) while the class and the fields stay."""

    def __init__(self, status: int, method: str, url: str, detail: str = "", errors=(),
                 message: Optional[str] = None):
        reason = detail or _HTTP_REASONS.get(status, "unexpected answer")
        super().__init__(message or "%s (%s %s: HTTP %s)" % (reason, method, url, status))
        self.status, self.method, self.url, self.detail, self.errors = status, method, url, detail, list(errors)
        self.explained = message is not None        # says what failed and what to try: not to be wrapped again
        self.retry_after = None                     # seconds the answer's Retry-After asked for
        self.spent = False                          # the request was retried as long as the budget allows

    def restated(self, message: str) -> "RegistryError":
        """The same error (class, status, fields, hint) saying ``message``."""
        error = type(self)(self.status, self.method, self.url, self.detail, self.errors, message=message)
        error.hint = self.hint
        return error


class NetworkError(ZeroImageError):
    """A registry could not be reached, or the connection broke (after the retries)."""

    spent = False       # tried as often as the retry budget allows, or a lasting fault: trying again will not help
    plain_http = False  # a TLS handshake met a server that speaks plain HTTP


class _ProxyError(NetworkError):
    """The proxy the environment names is the trouble: a setting zeroimage cannot use, a proxy that is
    not there, or one that refuses: reported as it is, never hidden behind another attempt's error."""


class AuthenticationError(RegistryError):
    """401/403: missing, wrong or insufficient credentials."""


class _NotSent(AuthenticationError):
    """Credentials zeroimage would not send (a hostile token realm, a plain-HTTP realm elsewhere, a
    token that cannot go in a header): nothing was refused by the registry."""


class NotFoundError(RegistryError):
    """404: no such repository, manifest or blob."""


class CancelledError(ZeroImageError):
    """The session was cancelled (Ctrl-C, SIGTERM, ``Session.cancel()``) while work was under way."""

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)


# ---- Digests ----

# The algorithms the OCI image spec registers, and the length of their hex encoding. Every one of
# them is verified; a digest with any other algorithm is refused, never trusted unchecked.
DIGEST_ALGORITHMS = types.MappingProxyType({"sha256": 64, "sha512": 128, "blake3": 64})
_DIGEST_GRAMMAR_RE = _Pattern(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_LOWER_HEX_RE = _Pattern(r"[a-f0-9]+")


def digest_problem(text) -> Optional[str]:
    """Why ``text`` is not a digest zeroimage can verify, or None when it is one."""
    if not isinstance(text, str) or len(text) > 300 or not _DIGEST_GRAMMAR_RE.fullmatch(text):
        return "not a digest (expected ALGORITHM:HEX, like sha256:<64 hex digits>)"
    algorithm, _, encoded = text.partition(":")
    if algorithm not in DIGEST_ALGORITHMS:
        return "not a digest zeroimage can verify: algorithm %r (it verifies %s)" % (
            algorithm, ", ".join(DIGEST_ALGORITHMS))
    if len(encoded) != DIGEST_ALGORITHMS[algorithm] or not _LOWER_HEX_RE.fullmatch(encoded):
        return "not a digest: a %s digest has %d lowercase hex digits" % (algorithm, DIGEST_ALGORITHMS[algorithm])
    return None


def is_digest(text) -> bool:
    return digest_problem(text) is None


def parse_digest(text: str) -> Tuple[str, str]:
    """Split ``sha256:<hex>`` into (algorithm, hex); refuse anything zeroimage cannot verify."""
    problem = digest_problem(text)
    if problem:
        raise ZeroImageError("%s: %s" % (outside_text(repr(text), 100), problem))
    algorithm, _, encoded = text.partition(":")
    return algorithm, encoded


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


_B3_CHUNK_START, _B3_CHUNK_END, _B3_PARENT, _B3_ROOT = 1, 2, 4, 8
_B3_BLOCK, _B3_CHUNK = 64, 1024

_B3_IV = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
_B3_PERMUTATION = (2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8)

_M32 = 0xFFFFFFFF


def _b3_compress(cv, block: bytes, counter: int, length: int, flags: int) -> List[int]:
    """BLAKE3's compression function: 16 output words for one 64-byte block."""
    m = list(struct.unpack("<16I", block.ljust(_B3_BLOCK, b"\0")))
    s = list(cv) + list(_B3_IV[:4]) + [counter & _M32, (counter >> 32) & _M32, length, flags]
    for round_number in range(7):
        for i, (a, b, c, d) in enumerate(((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15),
                                          (0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14))):
            sa = (s[a] + s[b] + m[2 * i]) & _M32
            sd = s[d] ^ sa
            sd = ((sd >> 16) | (sd << 16)) & _M32
            sc = (s[c] + sd) & _M32
            sb = s[b] ^ sc
            sb = ((sb >> 12) | (sb << 20)) & _M32
            sa = (sa + sb + m[2 * i + 1]) & _M32
            sd ^= sa
            sd = ((sd >> 8) | (sd << 24)) & _M32
            sc = (sc + sd) & _M32
            sb ^= sc
            s[a], s[b], s[c], s[d] = sa, ((sb >> 7) | (sb << 25)) & _M32, sc, sd
        if round_number < 6:
            m = [m[p] for p in _B3_PERMUTATION]
    return [s[i] ^ s[i + 8] for i in range(8)] + [s[i + 8] ^ cv[i] for i in range(8)]


class _Blake3:
    """BLAKE3 (256-bit output, hash mode), which hashlib lacks: the OCI image spec registers it.
    Written from the BLAKE3 paper's reference design; slow (pure Python), but only blake3 digests use it."""

    def __init__(self):
        self._stack = []            # chaining values of finished subtrees
        self._chunks = 0            # chunks finished
        self._cv = list(_B3_IV)     # of the chunk being hashed
        self._blocks = 0            # blocks compressed in that chunk
        self._buffer = b""          # its last, not yet compressed block

    def update(self, data) -> None:
        data = bytes(data)
        while data:
            if self._blocks * _B3_BLOCK + len(self._buffer) == _B3_CHUNK:
                self._push_chunk(self._chunk_output()[:8])
            if len(self._buffer) == _B3_BLOCK:
                flags = _B3_CHUNK_START if self._blocks == 0 else 0
                self._cv = _b3_compress(self._cv, self._buffer, self._chunks, _B3_BLOCK, flags)[:8]
                self._blocks += 1
                self._buffer = b""
            room = min(_B3_BLOCK - len(self._buffer), _B3_CHUNK - self._blocks * _B3_BLOCK - len(self._buffer))
            self._buffer += data[:room]
            data = data[room:]

    def _chunk_output(self, root: int = 0) -> List[int]:
        flags = _B3_CHUNK_END | (_B3_CHUNK_START if self._blocks == 0 else 0) | root
        return _b3_compress(self._cv, self._buffer, 0 if root else self._chunks, len(self._buffer), flags)

    def _push_chunk(self, cv: List[int]) -> None:
        self._chunks += 1
        total = self._chunks
        while total & 1 == 0:                       # merge finished subtrees, as the tree grows
            cv = _b3_compress(_B3_IV, struct.pack("<16I", *(self._stack.pop() + cv)), 0, _B3_BLOCK, _B3_PARENT)[:8]
            total >>= 1
        self._stack.append(cv)
        self._cv, self._blocks, self._buffer = list(_B3_IV), 0, b""

    def hexdigest(self) -> str:
        if not self._stack:
            words = self._chunk_output(_B3_ROOT)
        else:
            cv = self._chunk_output()[:8]
            for i in range(len(self._stack) - 1, -1, -1):
                flags = _B3_PARENT | (_B3_ROOT if i == 0 else 0)
                words = _b3_compress(_B3_IV, struct.pack("<16I", *(self._stack[i] + cv)), 0, _B3_BLOCK, flags)
                cv = words[:8]
        return struct.pack("<8I", *words[:8]).hex()


def _new_hash(algorithm: str):
    return _Blake3() if algorithm == "blake3" else hashlib.new(algorithm)


class HashingWriter:
    """A write-only stream that counts and hashes what passes on to ``out`` (or nowhere)."""

    def __init__(self, out=None, algorithm: str = "sha256"):
        self._out = out
        self._hash = _new_hash(algorithm)
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


class _DigestCheck:
    """The one digest verifier: hashes bytes with the digest's own algorithm as they pass, then
    checks digest and size. Every reader of blobs, manifests and configs goes through it."""

    def __init__(self, digest: str, size: Optional[int], what: str):
        algorithm, _ = parse_digest(digest)
        self._hash = _new_hash(algorithm)
        self._algorithm = algorithm
        self.digest, self.size, self.what = digest, size, what
        self.seen = 0

    def update(self, data) -> None:
        self._hash.update(data)
        self.seen += len(data)

    def verify(self) -> None:
        if self.size is not None and self.seen != self.size:
            raise ArchiveError("%s is %d bytes, its descriptor says %d" % (self.what, self.seen, self.size))
        actual = "%s:%s" % (self._algorithm, self._hash.hexdigest())
        if actual != self.digest:
            raise DigestMismatchError(self.what, self.digest, actual)


def verify_bytes(data: bytes, digest: str, what: str, size: Optional[int] = None) -> bytes:
    """``data`` when it hashes to ``digest`` (and has ``size`` bytes); DigestMismatchError otherwise."""
    check = _DigestCheck(digest, size, what)
    check.update(data)
    check.verify()
    return data


class VerifyingReader:
    """Reads exactly ``size`` bytes from ``raw`` and checks them against ``digest``.

    The check happens as the last expected byte passes, so a consumer that reads
    exactly ``size`` bytes (as tarfile does) is protected too.  Short or long
    streams and wrong bytes raise before anything can use the result.
    """

    def __init__(self, raw, digest: str, size: int, what: str):
        self._check = _DigestCheck(digest, size, what)
        self._raw = raw
        self._size = size
        self._what = what
        if size == 0:           # no read will reach the end of an empty blob: check it now
            try:
                self._finish()
            except BaseException:   # the caller gets no reader to close: the source is closed here
                raw.close()
                raise

    def read(self, n: int = -1) -> bytes:
        left = self._size - self._check.seen
        if n is None or n < 0 or n > left:
            n = left
        data = self._raw.read(n) if n else b""
        while len(data) < n:            # fill the request, so a short source is caught here
            more = self._raw.read(n - len(data))
            if not more:
                raise ArchiveError("%s is truncated: %d of %d bytes" % (self._what, self._check.seen + len(data), self._size))
            data += more
        self._check.update(data)
        if self._check.seen == self._size and n:
            self._finish()
        return data

    def _finish(self) -> None:
        self._check.verify()
        # a source that knows it has more (an answer's Content-Length) says so without being read: a
        # server that promised more than it sends would otherwise be waited for
        if getattr(self._raw, "left", None) or self._raw.read(1):
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


# ---- Guards ----

class _Checked:
    """A reader or writer that stops (CancelledError) once ``cancelled`` is set, checked before
    each piece of data passes: every loop that moves bytes goes through one of these."""

    def __init__(self, stream, cancelled: Optional[threading.Event]):
        self._stream = stream
        self._cancelled = cancelled

    def _check(self) -> None:
        if self._cancelled is not None and self._cancelled.is_set():
            raise CancelledError()

    def read(self, n: int = -1) -> bytes:
        self._check()
        return self._stream.read(n)

    def write(self, data) -> int:
        self._check()
        return self._stream.write(data)

    def close(self) -> None:
        self._stream.close()


# How an answer from outside (a registry, a token service, an engine) may arrive: at least STALL_BYTES
# every STALL_TIMEOUT seconds while zeroimage waits for it (curl's --speed-limit and --speed-time), and,
# for an answer read whole (a manifest, config, index, token, page of a list, error body), all of it
# within ANSWER_DEADLINE seconds. Read at run time: tests may shrink them.
STALL_TIMEOUT = 30.0
STALL_BYTES = 1024
ANSWER_DEADLINE = 60.0


class _Guard:
    """One exchange with a server, as the watchdog sees it: bytes moved so far (``moved``), whether
    zeroimage is waiting on it now with a stall window, a hard ``deadline``, and how to break it off
    (``expire``, from the watchdog's thread). ``expired`` says which limit broke it: "stalled" or
    "deadline"."""

    def __init__(self, expire: Callable[[], None]):
        self.expire = expire
        self.progress = 0
        self.window = None          # (ends at, progress then, seconds) while a stall is watched for
        self.deadline = None
        self.seconds = None         # what the deadline allowed, for messages
        self.expired = None

    def moved(self, n: int) -> None:
        self.progress += n


class _Watchdog:
    """Breaks off exchanges that overstay, whatever the code blocked in them is doing (a receive, a
    header or chunk line that never ends, trailers without end): one daemon thread, started when a
    guard is watched and gone when none is."""

    def __init__(self):
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._guards = set()
        self._running = False

    @contextlib.contextmanager
    def watching(self, guard: _Guard, stall: Optional[float] = None, deadline: Optional[float] = None):
        """Within the block, ``guard`` is broken off when fewer than STALL_BYTES move in ``stall``
        seconds (None: STALL_TIMEOUT; 0: not watched) or when ``deadline`` (seconds from now) passes."""
        now = time.monotonic()
        stall = STALL_TIMEOUT if stall is None else stall
        with self._lock:
            guard.window = (now + stall, guard.progress, stall) if stall else None
            guard.deadline = None if deadline is None else now + deadline
            guard.seconds = deadline
            self._guards.add(guard)
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="zeroimage-watchdog", daemon=True).start()
            self._wake.notify()
        try:
            yield guard
        finally:
            with self._lock:
                self._guards.discard(guard)

    def answer_within(self, guard: _Guard, seconds: float) -> None:
        """From now on no stall watch for ``guard`` (a request is sent: the server works), but an
        answer within ``seconds``. Under the lock: the watchdog's thread may be re-arming the window."""
        with self._lock:
            guard.window, guard.deadline, guard.seconds = None, time.monotonic() + seconds, seconds
            self._wake.notify()

    def _run(self) -> None:
        expired = []
        with self._lock:
            while self._guards:
                now, soonest = time.monotonic(), None
                for guard in list(self._guards):
                    if guard.deadline is not None and now >= guard.deadline:
                        guard.expired = "deadline"
                    elif guard.window is not None and now >= guard.window[0]:
                        if guard.progress - guard.window[1] < STALL_BYTES:
                            guard.expired = "stalled"
                        else:
                            guard.window = (now + guard.window[2], guard.progress, guard.window[2])
                    if guard.expired:
                        self._guards.discard(guard)
                        expired.append(guard)
                        continue
                    for when in (guard.deadline, guard.window[0] if guard.window is not None else None):
                        if when is not None and (soonest is None or when < soonest):
                            soonest = when
                if expired:
                    self._lock.release()
                    try:
                        for guard in expired:
                            with contextlib.suppress(Exception):
                                guard.expire()
                    finally:
                        self._lock.acquire()
                    expired = []
                    continue
                self._wake.wait(None if soonest is None else max(0.01, soonest - now))
            self._running = False


# -- types: a value decoded from outside is checked where it enters, before anything uses it --

MAX_DESCRIBED_SIZE = 2 ** 63 - 1           # the largest size a descriptor can say (an int64, as Go reads it)
_VISIBLE_RE = _Pattern(r"[\x21-\x7e]*")
_MEDIA_TYPE_RE = _Pattern(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")  # RFC 6838


def _is_size(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_DESCRIBED_SIZE


def _is_visible(value, longest: int) -> bool:
    return isinstance(value, str) and len(value) <= longest and bool(_VISIBLE_RE.fullmatch(value))


# kind -> (what a value of it is, in words; the test)
_KINDS = {
    "object": ("an object", lambda v: isinstance(v, dict)),
    "list": ("a list", lambda v: isinstance(v, list)),
    "string": ("a string", lambda v: isinstance(v, str)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "int": ("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "size": ("a size (a whole number from 0 to 2^63-1)", _is_size),
    "digest string": ("a digest string", lambda v: _is_visible(v, 300) and v != ""),   # (verifiable or not)
    "media type": ("a media type (visible ASCII characters)", lambda v: _is_visible(v, 255)),
    "digest": ("a digest", lambda v: digest_problem(v) is None),
    "strings": ("a list of strings", lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v)),
    "digests": ("a list of digests", lambda v: isinstance(v, list) and all(digest_problem(i) is None for i in v)),
    "objects": ("a list of objects", lambda v: isinstance(v, list) and all(isinstance(i, dict) for i in v)),
    "string map": ("a map of strings", lambda v: isinstance(v, dict) and all(
        i is None or isinstance(i, str) for i in v.values())),          # (a null value is none)
    "object map": ("a map of objects", lambda v: isinstance(v, dict) and all(
        i is None or isinstance(i, dict) for i in v.values())),
}


def _expect(value, kind: str, what: str, error: Callable[[str], Exception] = None):
    """``value`` when it is of ``kind`` (a key of _KINDS; ``"?kind"``: or null), else the one-line
    error (ArchiveError, or what ``error`` makes of the message) that ``what`` is not: the one check
    of a decoded value's type, made before the value is hashed, compared, joined or formatted."""
    if kind.startswith("?"):
        if value is None:
            return value
        kind = kind[1:]
    words, test = _KINDS[kind]
    if not test(value):
        raise (error or ArchiveError)("%s is not %s" % (what, words))
    return value


def _expect_fields(value: dict, fields: Dict[str, str], what: str, error=None) -> dict:
    """``value`` (an object) when each of ``fields`` it has is of its kind (``_expect``): ``what`` is
    said before the field's name, as in ``"the base: its config's "``."""
    for field, kind in fields.items():
        if field in value:
            _expect(value[field], kind, what + field, error)
    return value


def _parser_errors() -> tuple:
    """What the standard library's parsers (tarfile, gzip, zlib, bz2, lzma, zstd, struct, json) raise on
    damaged input: not only their own errors, but ValueError, OverflowError, EOFError, OSError..."""
    found = [tarfile.TarError, ValueError, OverflowError, EOFError, OSError, struct.error, zlib.error,
             RecursionError]
    for module, name in (("lzma", "LZMAError"), ("_lzma", "LZMAError"), ("compression.zstd", "ZstdError")):
        if module in sys.modules:           # (never imported: it raised nothing)
            found.append(getattr(sys.modules[module], name))
    return tuple(found)


@contextlib.contextmanager
def _damaged_input(what: str, kind: str, error: Callable[[str], Exception] = None):
    """The one guard where a standard-library parser reads input from outside (an archive, a layer,
    a compressed stream): whatever it raises on damaged input becomes one line, ``WHAT is a damaged
    KIND (reason)``, an ArchiveError unless ``error`` (a function of the message) makes another.
    zeroimage's own errors (a digest that does not match, a cancellation) pass as they are."""
    try:
        yield
    except ZeroImageError:
        raise
    except Exception as e:
        if not isinstance(e, _parser_errors()):
            raise
        first = str(e).splitlines()[0] if str(e).strip() else type(e).__name__
        raise (error or ArchiveError)("%s is a damaged %s (%s)" % (what, kind, outside_text(first, 200))) from e


# ---- Files ----

_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


_FILE_KINDS = ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def file_kind(mode: int) -> str:
    """What a stat mode is, in words ("a FIFO"), for errors."""
    return next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")


def output_file(path: str) -> str:
    """Where an output file really goes: ``path`` with symlinks followed (the link stays, its target is
    replaced, as cp does). Anything there but a regular file is refused: a directory, a FIFO, a device
    or a socket would be replaced by a regular file (as root, /dev/null too)."""
    if not path:
        raise UsageError("the output path is empty")
    if path.endswith(("/", os.sep)):
        raise UsageError("cannot write %s: a path ending in / names a directory; name a file" % path)
    try:
        st = os.stat(path)          # through links, to what is there (/dev/stdout: a pipe)
    except FileNotFoundError:
        return os.path.realpath(path)
    except OSError as e:
        raise ZeroImageError("cannot write %s: %s" % (path, e.strerror or e)) from e
    if not stat.S_ISREG(st.st_mode):
        raise ZeroImageError("cannot write %s: it is %s; name a file" % (path, file_kind(st.st_mode)))
    return os.path.realpath(path)


def input_file(path: str, what: str, hint: str = "give a file") -> None:
    """A file zeroimage reads must be one: a directory is refused, and so are a FIFO (opening it would
    wait for a writer), a socket and a device. ``what`` says which input it is, for the error."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise ZeroImageError("%s %s: %s" % (what, path, e.strerror or e)) from e
    if not stat.S_ISREG(st.st_mode):
        raise ZeroImageError("%s %s is %s; %s" % (what, path, file_kind(st.st_mode), hint))


def output_directory(path: str) -> str:
    """Where an output layout directory really is (symlinks followed): missing, empty or a layout; a file
    of any kind there is refused, and so is a directory of other files (a layout would mix with them)."""
    if not path:
        raise UsageError("the output path is empty")
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return real
    except OSError as e:
        raise ZeroImageError("cannot write %s: %s" % (path, e.strerror or e)) from e
    if not stat.S_ISDIR(st.st_mode):
        raise ZeroImageError("cannot write the layout %s: it is %s, not a directory" % (path, file_kind(st.st_mode)))
    if not os.path.lexists(os.path.join(real, "oci-layout")) and os.listdir(real):
        raise ZeroImageError("cannot write the layout %s: it is a directory of other files (no oci-layout file); "
                             "name a new or empty directory, or a layout" % path)
    link = _link_inside_layout(real)
    if link is not None:
        raise ZeroImageError("cannot write the layout %s: %s inside it is a symbolic link, which a layout does not "
                             "hold (writing through it would write outside the layout)" % (path, link))
    return real


def _link_inside_layout(directory: str) -> Optional[str]:
    """The first of a layout directory's own files (oci-layout, index.json, blobs/, blobs/ALGORITHM/,
    each blob) that is a symbolic link, as a relative path; None when none is. (A link to the
    directory itself is the user's to make, and followed.)"""
    names = [n for n in ("oci-layout", "index.json", "blobs") if os.path.lexists(os.path.join(directory, n))]
    if "blobs" in names and not os.path.islink(os.path.join(directory, "blobs")):
        with contextlib.suppress(OSError):
            for algorithm in sorted(os.listdir(os.path.join(directory, "blobs"))):
                names.append("blobs/" + algorithm)
                if not os.path.islink(os.path.join(directory, "blobs", algorithm)):
                    with contextlib.suppress(OSError), os.scandir(os.path.join(directory, "blobs", algorithm)) as it:
                        names += sorted("blobs/%s/%s" % (algorithm, e.name) for e in it if e.is_symlink())
    return next((n for n in names if os.path.islink(os.path.join(directory, n))), None)


_UNFINISHED = set()     # the temporaries of atomic_output not yet renamed into place or removed


@contextlib.contextmanager
def atomic_output(path: str, mode: Optional[int] = None, durable: bool = False):
    """Yield a file beside ``path``'s real location; rename it over that (with ``mode``, default 0666
    less the umask) only if the block succeeds. See ``output_file`` for what ``path`` may be.
    ``durable``: its bytes are on the disk before the rename (fsync), for a file whose loss in a power
    cut costs more than the wait (the credentials). An image is not: skopeo, docker save and tar
    leave that to the file system too, and the wait grows with the file (40 ms for 45 MB here)."""
    shown, path = path, output_file(path)
    directory = os.path.dirname(path)
    claimed, leftover = [], None
    try:
        try:
            # a short name of its own: the output's own name may already be as long as names go
            fd = _exclusive_file(directory, ".zeroimage-", ".tmp", claimed.append)
        except OSError as e:
            raise ZeroImageError("cannot write %s: %s" % (shown, e.strerror or e)) from e
        tmp = claimed[0]
        with os.fdopen(fd, "wb") as f:
            # The last resort, at exit: a stop signal's exception that lands in the unwinding itself
            # (after a cancellation already stopped the work) can skip the clean-up below.
            alive = _Alive()        # lives as long as this generator: collected unresumed, it removes tmp
            leftover = weakref.finalize(alive, _remove_quietly, tmp)
            _UNFINISHED.add(tmp)    # and if the process ends itself before finalizers run (_exit_soon)
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        for tmp in claimed:
            _remove_quietly(tmp)
        raise
    finally:
        if leftover is not None:
            leftover.detach()
        _UNFINISHED.difference_update(claimed)


def _exclusive_file(directory: str, prefix: str, suffix: str, claim: Callable[[str], None]) -> int:
    """A new file (read and write, mode 0600) of a random name in ``directory``, as mkstemp makes one,
    but its name handed to ``claim`` BEFORE it exists: a stop signal's exception may land anywhere in
    its creation (even inside mkstemp, after the file is made: another thread can take the signal
    that a mask kept from this one), and whoever claimed the name removes it (a name not yet made
    is removed quietly). 128 random bits: a name met twice is an error, not a retry."""
    path = os.path.join(directory, "%s%s%s" % (prefix, os.urandom(16).hex(), suffix))
    claim(path)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) |
                   getattr(os, "O_NOINHERIT", 0), 0o600)


class _Alive:
    """An object to hang a ``weakref.finalize`` on: it lives as long as the frame that holds it."""


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _pipe_closed(error: BaseException) -> bool:
    """Whether an error writing to a pipe says its reader is gone: BrokenPipeError, or on Windows
    EINVAL with ERROR_NO_DATA (232), which Python does not call a broken pipe."""
    return isinstance(error, BrokenPipeError) or getattr(error, "winerror", None) == 232


# ---- Display ----

def _human_size(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (size, unit)
        size /= 1000.0
    return str(size)


DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40     # the levels of log lines: logging's numbers
WARNING_FAILS = WARNING + 5      # a warning that predicts the image will not run: shown even with -q


class Display:
    """What one session shows: log lines and progress, on ``stream`` (stderr for the CLI).

    With no stream (the library's default) log lines go to the ``zeroimage`` logger, for the
    caller's logging setup to show or not, and there is no progress. With a stream, ``mode`` is
    "plain" (one line per finished step, no control characters: CI logs), "tty" (a line per blob
    in flight with bytes done/total and rate, redrawn in place) or "off" (log lines only), and
    ``level`` (a ``logging`` level) is the least a log line needs to be shown. A warning that predicts
    failure (``warning(..., fails=True)``: the image will not start, the user it names cannot be
    found) has the level ``WARNING_FAILS``, which -q (``level=WARNING_FAILS``) still shows. Every line
    is passed through ``outside_text`` (no control characters, no secrets). ``words``, when given,
    rewords each log line first (the CLI's: the options a message names, as flags). Thread-safe.
    """

    def __init__(self, stream=None, mode: str = "off", level: int = INFO,
                 words: Optional[Callable[[str], str]] = None):
        if mode not in ("off", "plain", "tty"):
            raise ValueError("Display mode is off, plain or tty, not %r" % (mode,))
        self.stream, self.mode, self.level = stream, mode if stream is not None else "off", level
        self.words = words
        self._lock = threading.RLock()
        self._active = []
        self._drawn = 0
        self._last_draw = 0.0
        self.started = time.monotonic()
        self.counts = collections.Counter()
        self.sizes = collections.Counter()

    # -- log lines --

    def log(self, level: int, message: str, *args) -> None:
        text = message % args if args else message
        if self.words is not None:
            text = self.words(text)
        if self.stream is None:
            # the ``zeroimage`` logger, for the caller's logging setup
            logging.getLogger("zeroimage").log(WARNING if level == WARNING_FAILS else level, "%s", text)
            return
        if level < self.level:
            return
        prefix = "" if level < WARNING else "warning: " if level < ERROR else "error: "
        self.note("zeroimage: %s%s" % (prefix, text))

    def debug(self, message: str, *args) -> None:
        self.log(DEBUG, message, *args)

    def info(self, message: str, *args) -> None:
        self.log(INFO, message, *args)

    def warning(self, message: str, *args, fails: bool = False) -> None:
        """``fails``: the warning predicts failure (the image will not run as built), so even -q shows it."""
        self.log(WARNING_FAILS if fails else WARNING, message, *args)

    def note(self, text: str) -> None:
        """A line printed above the progress lines, which are drawn again below it."""
        with self._lock:
            self._clear()
            if self.stream is not None:
                self._write(outside_text(text, 2000) + "\n", always=True)
            self._draw(force=True)

    # -- progress --

    def task(self, verb: str, label: str, total: Optional[int]) -> "Task":
        task = Task(self, verb, label, total)
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
                self._write(outside_text("zeroimage: %s %s (%s)" % (verb, label, _human_size(size)), 2000) + "\n")

    def advanced(self, task: "Task") -> None:
        """A task moved some bytes: redraw (at most ten times a second)."""
        if self.mode == "tty":
            with self._lock:
                self._draw()

    def finished(self, task: "Task") -> None:
        with self._lock:
            if task in self._active:
                self._active.remove(task)
            elapsed = max(time.monotonic() - task.started, 1e-6)
            self.counts[task.done_verb] += 1
            self.sizes[task.done_verb] += task.done
            if self.mode == "plain":
                self._write(outside_text("zeroimage: %s %s %s in %.1f s (%s/s)" % (
                    task.done_verb, task.label, _human_size(task.done), elapsed, _human_size(task.done / elapsed)),
                    2000) + "\n")
            self._draw(force=True)

    def dropped(self, task: "Task") -> None:
        with self._lock:
            if task in self._active:
                self._active.remove(task)
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
        """Take the progress lines off the screen (log lines stay)."""
        with self._lock:
            self._clear()
            self._active = []

    def _write(self, text: str, always: bool = False) -> None:
        if self.stream is not None and (always or self.mode != "off"):
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
        lines = [outside_text(task.line(), 150) for task in self._active[-8:]]
        if lines:
            self._write("".join(line + "\n" for line in lines))
        self._drawn = len(lines)


class Task:
    """One blob on its way: bytes counted as they pass. ``total`` is None while the size is not known
    (a layer uploaded as it is compressed): then the line shows what went and the rate, never a
    total that grows."""

    DONE = {"compressing": "compressed", "uploading": "uploaded", "downloading": "downloaded"}

    def __init__(self, display: Display, verb: str, label: str, total: Optional[int]):
        self.display, self.verb, self.label, self.total = display, verb, label, total
        self.done_verb = self.DONE.get(verb, verb)
        self.done = 0
        self.started = time.monotonic()

    def advance(self, n: int) -> None:
        self.done += n
        self.display.advanced(self)

    def restart(self) -> "Task":
        """The bytes go again from the start (an upload sent anew): count them once."""
        self.done = 0
        return self

    def finish(self) -> None:
        self.display.finished(self)

    def drop(self) -> None:
        """The blob did not get there this way (it will go another): no longer shown, not counted."""
        self.display.dropped(self)

    def line(self) -> str:
        rate = self.done / max(time.monotonic() - self.started, 1e-6)
        of = "/ %-10s" % _human_size(self.total) if self.total is not None else "%-12s" % "so far"
        return "  %-11s %-24s %10s %s %10s/s" % (self.verb, self.label, _human_size(self.done), of,
                                                _human_size(rate))


def _short(digest: str) -> str:
    return digest[:19]


class _Metered(_Checked):
    """A reader or writer that reports the bytes passing through it to a task (when there is one)
    and stops once ``cancelled`` is set."""

    def __init__(self, stream, task: Optional[Task] = None, cancelled: Optional[threading.Event] = None):
        super().__init__(stream, cancelled)
        self._task = task

    def read(self, n: int = -1) -> bytes:
        data = super().read(n)
        if self._task is not None:
            self._task.advance(len(data))
        return data

    def write(self, data) -> int:
        if self._task is not None:
            self._task.advance(len(data))
        return super().write(data)


# ---- References ----


class _Value:
    """A frozen value of named fields (``_FIELDS``; ``_DEFAULTS`` for those that may be left out),
    equal and hashed by them, changed with ``replace``. Not a tuple: ``"%s" % value`` formats it.
    (A frozen dataclass says the same, but importing ``dataclasses`` imports ``inspect`` and ``ast``:
    more time than any other import of a start.)"""

    _FIELDS: Tuple[str, ...] = ()
    _DEFAULTS: Dict[str, object] = {}

    def __init__(self, *args, **kwargs):
        name = type(self).__name__
        if len(args) > len(self._FIELDS):
            raise TypeError("%s() takes at most %d arguments" % (name, len(self._FIELDS)))
        values = dict(zip(self._FIELDS, args))
        for field, value in kwargs.items():
            if field not in self._FIELDS or field in values:
                raise TypeError("%s() got an unexpected or repeated argument %r" % (name, field))
            values[field] = value
        for field in self._FIELDS:
            if field not in values and field not in self._DEFAULTS:
                raise TypeError("%s() is missing the argument %r" % (name, field))
            object.__setattr__(self, field, values.get(field, self._DEFAULTS.get(field)))

    def _values(self) -> tuple:
        return tuple(getattr(self, field) for field in self._FIELDS)

    def replace(self, **changes):
        """A copy with ``changes`` made."""
        return type(self)(**dict(zip(self._FIELDS, self._values()), **changes))

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented       # the other side may know (mock.ANY), as a dataclass lets it
        return other._values() == self._values()

    def __hash__(self) -> int:
        return hash((type(self).__name__,) + self._values())

    def __repr__(self) -> str:
        return "%s(%s)" % (type(self).__name__, ", ".join("%s=%r" % pair for pair in zip(self._FIELDS, self._values())))

    def __setattr__(self, name, value):
        raise AttributeError("cannot assign to %s.%s: the value is frozen" % (type(self).__name__, name))

    def __delattr__(self, name):
        raise AttributeError("cannot delete %s.%s: the value is frozen" % (type(self).__name__, name))

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = _Pattern(r"(?:%s(?:\.%s)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?" % (_DOMAIN_COMPONENT, _DOMAIN_COMPONENT))
_PATH_COMPONENT_RE = _Pattern(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG_RE = _Pattern(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")      # ASCII only, as Docker's grammar
_MAX_NAME_LENGTH = 255
# The image spec's grammar for org.opencontainers.image.ref.name (annotations.md): components of
# letters and digits joined by one of - . _ : @ + or by --, the components joined by /.
_REF_NAME_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_REF_NAME_RE = _Pattern(r"%s(?:/%s)*" % (_REF_NAME_COMPONENT, _REF_NAME_COMPONENT))
REF_NAME_RULE = ("the image spec's grammar: letters and digits, joined by one of - . _ : @ + or by --, "
                 "starting and ending with a letter or digit")


def ref_name_problem(name) -> Optional[str]:
    """Why ``name`` cannot be written as ``org.opencontainers.image.ref.name``, or None when it can."""
    if not isinstance(name, str) or not _REF_NAME_RE.fullmatch(name):
        return "%s cannot be written as org.opencontainers.image.ref.name (%s)" % (
            outside_text(repr(name), 150), REF_NAME_RULE)
    return None


def valid_host(text: str) -> bool:
    """A registry host as references write it: a name or [IPv6], and a port from 1 to 65535 if any."""
    match = _DOMAIN_RE.fullmatch(text)
    if not match:
        return False
    port = text.rsplit(":", 1)[1] if not text.endswith("]") and ":" in text else None
    return port is None or (len(port) <= 5 and 1 <= int(port) <= 65535)


# skopeo's and podman's transport prefixes, and what zeroimage reads in their place: a registry
# reference as it is ("reference"), a path by its look ("path": an archive, or a layout directory),
# docker-daemon:NAME where an image is read or copied ("engine": Targets' engine_image), or nothing ("none").
# What an archive's name ends in (before an optional :NAME): the one list for Targets' looks_like_path
# and for what a skopeo transport word says to write instead (``transport_word``).
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".oci")


def has_archive_suffix(text: str) -> bool:
    """Whether ``text`` ends in one of ARCHIVE_SUFFIXES, or does before its first ':' (``app.tar:1``)."""
    lowered = text.lower()
    return lowered.endswith(ARCHIVE_SUFFIXES) or lowered.split(":", 1)[0].endswith(ARCHIVE_SUFFIXES)


_TRANSPORTS = (("docker://", "reference"), ("oci-archive:", "path"), ("docker-archive:", "path"),
               ("oci:", "path"), ("docker-daemon:", "engine"), ("containers-storage:", "none"), ("dir:", "none"))


def transport_word(text: str) -> Optional[Tuple[str, str, str]]:
    """``(prefix, kind, what to write instead)`` when ``text`` starts with a skopeo transport
    (``oci-archive:app.tar`` → app.tar, ``oci:dir`` → ./dir, ``docker://H/x:1`` → H/x:1), else None."""
    if not isinstance(text, str):
        return None
    for prefix, kind in _TRANSPORTS:
        if text.lower().startswith(prefix) and len(text) > len(prefix):
            rest = text[len(prefix):]
            if rest.startswith("//") and prefix != "docker://":
                return None         # oci://HOST/x is a URL's habit: Reference.parse says so
            if kind == "path" and not rest.startswith(("/", "./", "../", "~")) and (
                    prefix == "oci:" or not has_archive_suffix(rest)):
                rest = "./" + rest          # a layout directory, or an archive of another name: a path by its look
            return prefix, kind, rest
    return None


def transport_problem(text: str) -> Optional[str]:
    """What to write instead of a skopeo transport word, where a reference or a path is read: the
    one message for every verb (build's `base` and `base_archive` say it with their options)."""
    word = transport_word(text)
    if word is None:
        return None
    prefix, kind, rest = word
    said = "%s is skopeo's transport syntax, which zeroimage does not take" % outside_text(repr(text), 200)
    rest = outside_text(rest, 200)
    if kind == "reference":
        return "%s; a registry image is named by its reference alone: write %s" % (said, rest)
    if kind == "path":
        return "%s; a path is read as an archive or layout directory by its look: write %s" % (said, rest)
    if kind == "engine":
        return ("%s here, where a registry image is named; the local engine's image docker-daemon:NAME is read "
                "where an image is read (inspect, copy, push's source, `base`) and written by copy" % said)
    if prefix == "containers-storage:":
        return ("%s; podman's images are read as docker-daemon:%s through podman's socket, where an image is "
                "read (inspect, copy, push's source, `base`), or save one (podman save -o NAME.tar %s) and give "
                "the archive" % (said, rest, rest))
    return ("%s; skopeo's directory format is not read; make an OCI archive of it (skopeo copy %s "
            "oci-archive:NAME.tar) and give that" % (said, outside_text(text, 200)))


def _names_registry(first: str) -> bool:
    """Whether the first /-separated component of a reference names a registry host (it holds a '.'
    or a ':', is ``localhost``, or is [IPv6]) rather than the first part of a Docker Hub name."""
    return "." in first or ":" in first or first == "localhost" or first.startswith("[")


class Reference(_Value):
    """An image reference in Docker's grammar, normalised (``busybox`` → ``docker.io/library/busybox:latest``).

    A frozen value, not a tuple: ``"%s" % ref`` must format the reference, not unpack it.
    """

    registry: str
    repository: str
    tag: Optional[str]
    digest: Optional[str]
    _FIELDS = ("registry", "repository", "tag", "digest")
    _DEFAULTS = {"tag": None, "digest": None}

    @classmethod
    def parse(cls, text: str, default_tag: Optional[str] = "latest") -> "Reference":
        if not text or text != text.strip():
            raise InvalidReferenceError("invalid reference %r: empty or surrounded by spaces" % (text,))
        if transport_problem(text):
            raise InvalidReferenceError(transport_problem(text))
        scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", text)
        if scheme:      # a URL's habit: the scheme is a property of the registry, not of the reference
            raise InvalidReferenceError(
                "invalid reference %r: a reference has no scheme; write %s, and for a plain-HTTP registry add "
                "`insecure` (a loopback one needs none)" % (
                    text, outside_text(text[scheme.end():], 200) or "HOST[:PORT]/NAME[:TAG]"))
        name, digest = text, None
        if "@" in text:
            name, digest = text.split("@", 1)
            if "/" not in name and "/" in digest:       # USER:PASSWORD@HOST/NAME, as in a URL
                raise InvalidReferenceError("invalid reference %r: a reference carries no user or password; "
                                            "log in to the registry first (`login(REGISTRY)`)" % (text,))
            problem = digest_problem(digest)
            if problem:
                raise InvalidReferenceError("invalid reference %r: %s" % (text, problem))
        tag = None
        slash, colon = name.rfind("/"), name.rfind(":")
        if colon > slash:
            name, tag = name[:colon], name[colon + 1:]
            if not _TAG_RE.fullmatch(tag):
                raise InvalidReferenceError("invalid reference %r: bad tag %r (letters, digits, _ . -; at most 128)" % (text, tag))
        registry, path = DOCKER_HUB, name
        first, sep, rest = name.partition("/")
        if sep and _names_registry(first):
            if not valid_host(first):
                raise InvalidReferenceError("invalid reference %r: bad registry host %r" % (text, first))
            registry, path = first, rest
        if registry == "index.docker.io":
            registry = DOCKER_HUB
        for component in path.split("/"):
            if not _PATH_COMPONENT_RE.fullmatch(component):
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
        return registry_api_host(self.registry)

    @property
    def config_key(self) -> str:
        return registry_config_key(self.registry)

    def _suffix(self) -> str:
        return (":" + self.tag if self.tag else "") + ("@" + self.digest if self.digest else "")

    def familiar(self) -> str:
        return self.familiar_name + self._suffix()

    def __str__(self) -> str:
        return self.name + self._suffix()


def registry_api_host(host: str) -> str:
    """Where a registry's API answers: Docker Hub's is registry-1.docker.io."""
    return DOCKER_HUB_API if host == DOCKER_HUB else host


def registry_config_key(host: str) -> str:
    """The key config.json and credential helpers know a registry by (Docker Hub's is a URL)."""
    return DOCKER_HUB_CONFIG_KEY if host == DOCKER_HUB else host


def name_from_filename(filename: str) -> str:
    """A valid repository name made from a file name (``My_App.exe`` → ``my_app.exe``)."""
    name = re.sub(r"[^a-z0-9._-]+", "-", os.path.basename(filename).lower())
    name = re.sub(r"\A[._-]+|[._-]+\Z", "", name)
    name = re.sub(r"-*([._])[._-]*", r"\1", name)
    name = re.sub(r"[._-]+\Z", "", name[:128])       # a long file name still names the image
    return name or "image"


LOCAL_REGISTRY = "localhost"        # podman's word for images of no registry


def default_image_name(filename: str) -> Reference:
    """The name an image gets when none is given: ``localhost/NAME:latest`` (podman's convention),
    which no registry image can have, so loading it never replaces one (``busybox`` would replace
    Docker Hub's ``busybox:latest``)."""
    return Reference(LOCAL_REGISTRY, name_from_filename(filename), "latest")


# ---- Platforms ----

_ARCH_ALIASES = {
    "x86_64": "amd64", "x86-64": "amd64", "x64": "amd64",
    "aarch64": "arm64", "armv8": "arm64",
    "i386": "386", "i486": "386", "i586": "386", "i686": "386", "x86": "386",
    "armhf": "arm", "armel": "arm", "armv7": "arm", "armv7l": "arm", "armv6": "arm", "armv6l": "arm",
}
_ARCH_IMPLIED_VARIANT = {"armhf": "v7", "armv7": "v7", "armv7l": "v7", "armel": "v6", "armv6": "v6", "armv6l": "v6"}
_DEFAULT_VARIANT = {"arm": "v7", "arm64": "v8", "amd64": "v1"}
_PLATFORM_PART_RE = _Pattern(r"[a-z0-9_.-]+")


class Platform(_Value):
    """An OCI platform: ``linux/amd64``, ``linux/arm/v7``, ``linux/arm64/v8`` (a frozen value, like Reference)."""

    os: str
    architecture: str
    variant: str
    _FIELDS = ("os", "architecture", "variant")
    _DEFAULTS = {"variant": ""}

    @classmethod
    def parse(cls, text: str) -> "Platform":
        parts = text.strip().lower().split("/") if isinstance(text, str) else []
        if len(parts) not in (2, 3) or not all(_PLATFORM_PART_RE.fullmatch(p) for p in parts):
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
        variant = data.get("variant") if isinstance(data.get("variant"), str) else ""
        parts = [p.lower() if isinstance(p, str) else "" for p in (os_name, arch)] + [variant.lower()]
        if not all(_PLATFORM_PART_RE.fullmatch(p) for p in parts[:2]) or \
                (parts[2] and not _PLATFORM_PART_RE.fullmatch(parts[2])):
            return None         # missing, or not a platform name (control characters, spaces...)
        return cls.make(*parts)

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

# Words of a file name that say a platform (``app_linux_amd64``, ``app-x86_64-unknown-linux-musl``):
# a run of them that holds an architecture is taken out to find the program's own name.
_NAME_ARCH_WORDS = frozenset(list(_ARCH_ALIASES) + [
    "amd64", "arm64", "arm", "386", "arm64v8", "armv5", "armv5l", "armv7hf", "arm32v5", "arm32v6", "arm32v7",
    "ppc64le", "ppc64el", "ppc64", "powerpc64le", "s390x", "riscv64", "mips", "mipsle", "mipsel", "mips64",
    "mips64le", "mips64el", "loong64", "loongarch64", "wasm", "wasm32"])
_NAME_OS_WORDS = frozenset([
    "linux", "darwin", "macos", "osx", "windows", "win", "win32", "win64", "freebsd", "netbsd", "openbsd",
    "dragonfly", "illumos", "solaris", "aix", "android", "wasi", "wasip1"])
_NAME_ABI_WORDS = frozenset([           # a target triple's vendor and ABI (Rust, Zig, GCC)
    "unknown", "pc", "apple", "gnu", "musl", "gnueabi", "gnueabihf", "musleabi", "musleabihf", "eabi", "eabihf"])
_NAME_VARIANT_RE = _Pattern(r"v[1-9]|[5-8]")        # after an architecture: arm-v7, amd64_v3, arm_7
_NAME_TOKEN_RE = _Pattern(r"(?i)x86[-_]64|[^-_.]+|[-_.]+")
_GENERIC_DIRECTORIES = frozenset(["bin", "dist", "build", "out", "output", "target", "release", "debug", "tmp"])


def _without_platform_words(name: str) -> str:
    """A file name without the runs of platform words that name an architecture, and their separator:
    ``app_linux_arm64`` → ``app``, ``app-1.2-linux-amd64.exe`` → ``app-1.2.exe``; a run without an
    architecture stays (``linux-utils-amd64`` → ``linux-utils``)."""
    tokens = _NAME_TOKEN_RE.findall(name)
    keep = [True] * len(tokens)
    i = 0
    while i < len(tokens):
        run, has_arch, j = [], False, i
        while j < len(tokens):          # a run: platform words joined by separators
            word = tokens[j].lower()
            if word[0] in "-_.":
                j += 1
                continue
            if word in _NAME_ARCH_WORDS or word.replace("_", "-") == "x86-64":
                has_arch = True
            elif not (word in _NAME_OS_WORDS or word in _NAME_ABI_WORDS or
                      (has_arch and _NAME_VARIANT_RE.fullmatch(word))):
                break
            run.append(j)
            j += 1
        if run and has_arch:
            first, last = run[0], run[-1]
            before = first - 1 if first > 0 else None       # the separator that joined the run on
            after = last + 1 if before is None and last + 1 < len(tokens) else None
            for k in range(first if before is None else before, (after if after is not None else last) + 1):
                keep[k] = False
        i = max(j, i + 1)
    return "".join(t for t, kept in zip(tokens, keep) if kept).strip("-_.")


def common_program_name(paths: Sequence[str]) -> Optional[str]:
    """The name several programs of one multi-platform build share once their platform words are
    removed: ``app`` for ``dist/app-amd64`` and ``dist/app_linux_arm64``, for ``dist/amd64/app`` and
    ``dist/arm64/app``, for ``dist/app/amd64`` and ``dist/app/arm64`` (a file named for its platform
    alone takes its directory's name, unless that is a generic one like dist or bin). None when they
    differ, or nothing is left. A windows binary's ``.exe`` goes when the others have none
    (``app-linux-amd64``, ``app-windows-amd64.exe`` → ``app``); names that are all the same are
    the name, even a platform word (``amd64/x86``, ``arm64/x86`` → ``x86``). Pure: the file system
    is not asked."""
    names = []
    for path in paths:
        parts = [p for p in os.path.normpath(os.fspath(path)).replace(os.sep, "/").split("/") if p not in ("", ".")]
        stripped = _without_platform_words(parts[-1]) if parts else ""
        if not stripped and len(parts) > 1 and parts[-2] != ".." and parts[-2].lower() not in _GENERIC_DIRECTORIES:
            stripped = _without_platform_words(parts[-2])
        names.append(stripped)
    for candidates in (names, [re.sub(r"(?i)\.exe\Z", "", name) for name in names]):    # windows' .exe too
        if candidates and candidates[0] and all(name == candidates[0] for name in candidates):
            return candidates[0]
    bases = [os.path.basename(os.path.normpath(os.fspath(path))) for path in paths]
    if bases and bases[0] not in ("", ".", "..") and all(base == bases[0] for base in bases):
        return bases[0]         # amd64/x86 and arm64/x86: one name, though a platform word
    return None


class Candidate(NamedTuple):
    """One image manifest reachable from an index, as a choice for ``select_manifest``; or an entry
    that cannot be one (``problem``: the error it raises when it is the one asked for; a platform only
    when its descriptor names one)."""

    descriptor: dict
    platform: Optional[Platform]
    ref_name: str = ""
    problem: Optional[ZeroImageError] = None

    def describe(self) -> str:
        name = " %s" % self.ref_name if self.ref_name else ""
        return "%s%s (%s)" % (self.platform or "unknown platform", name, self.descriptor.get("digest", "?")[:19])


def select_manifest(candidates: Sequence[Candidate], platform: Platform,
                    ref_name: Optional[str] = None, where: str = "the base") -> Candidate:
    """Pick the one candidate for ``platform`` (and ``ref_name``); no match or several is an error."""
    pool = [c for c in candidates if ref_name is None or ref_name in _ref_names(c.ref_name)]
    if ref_name is not None and not pool:
        names = sorted(set(c.ref_name for c in candidates if c.ref_name))
        raise ArchiveError("%s has no image named %r (it has: %s)"
                           % (where, ref_name, outside_text(", ".join(names), 500) or "no names"))
    matching = [c for c in pool if c.platform is not None and c.platform.matches(platform)]
    if matching and all(c.problem is not None for c in matching):
        raise matching[0].problem       # listed for this platform, but not to be had
    matching = [c for c in matching if c.problem is None]
    if not matching:
        problems = [c.problem for c in pool if c.problem is not None]
        if problems and not any(c.platform and c.problem is None for c in pool):
            raise problems[0]       # nothing else was there to choose: what the entry is, not --platform
        if not pool:
            raise ArchiveError("%s holds no image" % where)
        raise PlatformNotFoundError(platform, [c.platform for c in pool if c.platform and c.problem is None], where)
    if len(set(c.descriptor["digest"] for c in matching)) > 1:
        raise ArchiveError("%s holds several images for %s: %s; name one as PATH:NAME"
                           % (where, platform, outside_text("; ".join(c.describe() for c in matching), 500)))
    return matching[0]


def _ref_names(ref_name: str) -> List[str]:
    """A candidate answers to its full name, its familiar name and its bare tag. A name with no tag
    (a bare ``org.opencontainers.image.ref.name`` like "1.0" is a tag) never answers to "latest"."""
    if not ref_name:
        return []
    names = [ref_name]
    try:
        ref = Reference.parse(ref_name, default_tag=None)
    except InvalidReferenceError:
        return names
    names += [str(ref), ref.familiar()]
    return names + [ref.tag] if ref.tag else names


# ---- ELF ----

# e_machine -> architecture, for (class, data) where it matters.
_ELF_MACHINES = {
    3: "386", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390x", 40: "arm", 62: "amd64",
    183: "arm64", 243: "riscv64", 258: "loong64",
}
_PT_LOAD, _PT_INTERP = 1, 3
_PF_X, _PF_W = 1, 2
_SHT_NOBITS = 8
_MAX_ELF_ENTRIES = 65536            # program or section headers read, at most (real binaries have tens)
# Program headers: (type, flags, offset, vaddr, filesz) at these positions; section headers: name, type, addr, offset, size, link.
_SEGMENT_LAYOUT = {True: ("IIQQQQQQ", (0, 1, 2, 3, 5)), False: ("IIIIIIII", (0, 6, 1, 2, 4))}
_SECTION_LAYOUT = {True: ("IIQQQQIIQQ", (0, 1, 3, 4, 5, 6)), False: ("IIIIIIIIII", (0, 1, 3, 4, 5, 6))}


class ElfInfo(NamedTuple):
    """What the entrypoint's ELF header says: its platform (None if unknown) and its interpreter."""

    machine: int
    platform: Optional[Platform]
    interpreter: Optional[str]


class _ElfHeader(NamedTuple):
    endian: str             # "<" or ">"
    is64: bool
    machine: int
    phoff: int
    phentsize: int
    phnum: int
    shoff: int
    shentsize: int
    shnum: int
    shstrndx: int
    size: int               # of the whole file


class _Segment(NamedTuple):
    kind: int
    flags: int
    offset: int
    vaddr: int
    filesz: int


class _Section(NamedTuple):
    kind: int
    addr: int
    offset: int
    size: int


def read_elf(f) -> Optional[ElfInfo]:
    """Read an ELF header from a seekable binary file; None when it is not ELF."""
    elf = _elf_header(f)
    if elf is None:
        return None
    return ElfInfo(elf.machine, _elf_platform(elf.machine, elf.is64, elf.endian == "<"), _elf_interpreter(f, elf))


def _elf_header(f) -> Optional[_ElfHeader]:
    f.seek(0)
    header = f.read(64)
    if len(header) < 52 or header[:4] != b"\x7fELF" or header[4] not in (1, 2) or header[5] not in (1, 2):
        return None
    is64, endian = header[4] == 2, "<" if header[5] == 1 else ">"
    if is64 and len(header) < 64:
        return None
    (machine,) = struct.unpack_from(endian + "H", header, 18)
    if is64:
        phoff, shoff = struct.unpack_from(endian + "QQ", header, 32)
        rest = struct.unpack_from(endian + "HHHHH", header, 54)
    else:
        phoff, shoff = struct.unpack_from(endian + "II", header, 28)
        rest = struct.unpack_from(endian + "HHHHH", header, 42)
    phentsize, phnum, shentsize, shnum, shstrndx = rest
    return _ElfHeader(endian, is64, machine, phoff, phentsize, phnum, shoff, shentsize, shnum, shstrndx,
                      f.seek(0, io.SEEK_END))


def _elf_platform(machine: int, is64: bool, little: bool) -> Optional[Platform]:
    arch = _ELF_MACHINES.get(machine)
    if arch is None:
        return None
    if arch == "mips":
        arch = ("mips64" if is64 else "mips") + ("le" if little else "")
    elif arch == "ppc64":
        arch = "ppc64le" if little else "ppc64"
    return Platform.make("linux", arch)


def _elf_table(f, elf: _ElfHeader, layout, offset: int, entsize: int, count: int, picks) -> List[tuple]:
    """``count`` entries of a header table at ``offset``, each the fields at ``picks``; [] when the
    table is damaged (entries too small, or past the end of the file)."""
    fmt = elf.endian + layout
    need = struct.calcsize(fmt)
    if not offset or entsize < need or count > _MAX_ELF_ENTRIES or offset + count * entsize > elf.size:
        return []
    entries = []
    for i in range(count):
        f.seek(offset + i * entsize)
        raw = f.read(need)
        if len(raw) < need:
            return []
        fields = struct.unpack(fmt, raw)
        entries.append(tuple(fields[at] for at in picks))
    return entries


def _elf_segments(f, elf: _ElfHeader) -> List[_Segment]:
    layout, picks = _SEGMENT_LAYOUT[elf.is64]
    return [_Segment(*fields) for fields in _elf_table(f, elf, layout, elf.phoff, elf.phentsize, elf.phnum, picks)]


def _elf_interpreter(f, elf: _ElfHeader) -> Optional[str]:
    for segment in _elf_segments(f, elf):
        if segment.kind == _PT_INTERP:
            if segment.offset >= elf.size:
                return None
            f.seek(segment.offset)
            path = f.read(min(segment.filesz, 4096))
            return path.split(b"\0", 1)[0].decode("utf-8", "replace")
    return None


def _elf_sections(f, elf: _ElfHeader) -> Dict[str, _Section]:
    """The sections by name (the first of a name wins); {} when the binary has no section headers or
    they (or their names) cannot be trusted."""
    layout, picks = _SECTION_LAYOUT[elf.is64]
    first = _elf_table(f, elf, layout, elf.shoff, elf.shentsize, 1, picks)
    if not first:
        return {}
    count = elf.shnum or first[0][4]            # extended numbering: the count is section 0's size
    names_at = first[0][5] if elf.shstrndx == 0xffff else elf.shstrndx
    table = _elf_table(f, elf, layout, elf.shoff, elf.shentsize, count, picks)
    if names_at >= len(table) or table[names_at][1] == _SHT_NOBITS:
        return {}
    _, _, _, offset, size, _ = table[names_at]
    if offset + size > elf.size:
        return {}
    f.seek(offset)
    names = f.read(min(size, 1 << 20))
    sections = {}
    for name_at, kind, addr, offset, size, _ in table:
        end = names.find(b"\0", name_at)
        if end >= 0:
            sections.setdefault(names[name_at:end].decode("utf-8", "replace"), _Section(kind, addr, offset, size))
    return sections


def read_shebang(f) -> Optional[Tuple[str, str]]:
    """A script's ``#!`` line, as Linux reads it: (interpreter, its one optional argument, "" for
    none); None when the file is no script. Linux reads at most 256 bytes of the line (BINPRM_BUF_SIZE),
    takes the interpreter up to the first blank and the rest, trimmed, as one argument."""
    f.seek(0)
    head = f.read(256)
    f.seek(0)
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].strip(b" \t\r")
    interpreter, _, argument = line.replace(b"\t", b" ").partition(b" ")
    if not interpreter:
        return None
    return os.fsdecode(interpreter), os.fsdecode(argument.strip(b" "))


# -- embedded build information: what a Go or Rust binary says it was built from --


class Module(NamedTuple):
    """A Go module or Rust crate a program is built from (or the program's own main module)."""

    path: str                           # Go module path, or the crate's name
    version: str = ""                   # as the binary says it; Go's "(devel)" kept
    sum: str = ""                       # Go's checksum ("h1:..."), "" when none
    replace: Optional["Module"] = None  # Go's "=>" replacement
    source: str = ""                    # Rust: "crates.io", "git", "local", "registry"; "" for Go
    kind: str = ""                      # Rust: "runtime", or "build" (a build script's or proc macro's); "" for Go


class BuildInfo(NamedTuple):
    """What a binary says about how it was built: Go's ``.go.buildinfo``, or the crate list
    ``cargo auditable`` embeds (``.dep-v0``)."""

    language: str                               # "go" or "rust"
    toolchain: str = ""                         # "go1.22.1"; "" for Rust (its data names none)
    path: str = ""                              # Go: the main package's path
    main: Optional[Module] = None               # Go: the main module; Rust: the root crate
    deps: Tuple[Module, ...] = ()
    settings: Tuple[Tuple[str, str], ...] = ()  # Go's build settings, in the binary's order


# ---- Build information ----

#
# What a Go or Rust binary embeds about how it was built, read through the ELF tables above, and the
# image labels it gives.

MAX_BUILD_INFO = 4 * 1024 * 1024            # the most of a binary read for its build info (Go's blob, Rust's zlib data)
MAX_BUILD_INFO_JSON = 16 * 1024 * 1024      # Rust's crate list once decompressed
_GO_MAGIC = b"\xff Go buildinf:"
_GO_CHUNK = 1 << 20                         # a writable segment is searched for Go's header this much at a time
_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}


def read_build_info(f) -> Optional[BuildInfo]:
    """What a binary (a seekable binary file) says about how it was built: Go's build info (the
    ``.go.buildinfo`` section; without a section of that name, the first writable segment, as
    Go's ``debug/buildinfo`` looks) or the crate list ``cargo auditable`` embeds (``.dep-v0``). None when
    the binary carries none (not ELF, no such section); ``ValueError`` with a short reason when it
    is there but malformed. Holds at most a few MiB in memory, whatever the size of the binary."""
    try:
        elf = _elf_header(f)
        if elf is None:
            return None
        sections = _elf_sections(f, elf)
        blob = _go_build_blob(f, elf, sections)
        if blob is not None:
            return _printable_build_info(_go_build_info(*_go_strings(f, elf, blob)))
        if ".dep-v0" in sections:
            return _printable_build_info(_rust_build_info(_section_data(f, elf, sections[".dep-v0"], ".dep-v0")))
        return None
    except (OSError, OverflowError, struct.error, RecursionError, MemoryError) as e:
        raise ValueError("cannot read the binary (%s)" % outside_text(e, 100)) from e


def _printable_module(module: Optional[Module]) -> Optional[Module]:
    if module is None:
        return None
    return Module(_printable_text(module.path), _printable_text(module.version), _printable_text(module.sum),
                  _printable_module(module.replace), _printable_text(module.source), _printable_text(module.kind))


def _printable_build_info(info: BuildInfo) -> BuildInfo:
    """Build info with every string valid, printable Unicode (``_printable_text``): what a binary says
    goes into labels, an SBOM, JSON and the terminal, and a name with a control character or bytes
    that are not UTF-8 (a lone surrogate) must not break any of them."""
    return BuildInfo(_printable_text(info.language), _printable_text(info.toolchain), _printable_text(info.path),
                     _printable_module(info.main), tuple(_printable_module(m) for m in info.deps),
                     tuple((_printable_text(k), _printable_text(v)) for k, v in info.settings))


def _read_at(f, offset: int, size: int, what: str) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) < size:
        raise ValueError("%s is cut short" % what)
    return data


def _section_data(f, elf: _ElfHeader, section: _Section, name: str) -> bytes:
    if section.kind == _SHT_NOBITS or section.offset + section.size > elf.size:
        raise ValueError("the section %s has no data in the file" % name)
    if section.size > MAX_BUILD_INFO:
        raise ValueError("the section %s is larger than %d MiB" % (name, MAX_BUILD_INFO >> 20))
    return _read_at(f, section.offset, section.size, "the section " + name)


def _find_go_magic(data: bytes) -> int:
    """Where Go's build-info header starts (16-byte aligned, as the linker puts it), or -1."""
    at = data.find(_GO_MAGIC)
    while at > 0 and at % 16:
        at = data.find(_GO_MAGIC, at + 1)
    return at


def _go_build_blob(f, elf: _ElfHeader, sections: Dict[str, _Section]) -> Optional[bytes]:
    """Go's 32-byte header and what follows it, or None when the binary has none. Where Go's
    ``debug/buildinfo`` looks: the section named ``.go.buildinfo``; without one (no section headers,
    or the section renamed or its name stripped), the first writable, not executable ``PT_LOAD``
    segment, searched in chunks for the first magic at a 16-byte aligned address with a whole
    header after it, then read from there through the program headers, as Go reads it."""
    section = sections.get(".go.buildinfo")
    if section is not None:
        data = _section_data(f, elf, section, ".go.buildinfo")
        at = _find_go_magic(data)
        if at < 0:
            raise ValueError("the section .go.buildinfo holds no Go build-info header")
        return data[at:]
    segments = _elf_segments(f, elf)
    data = next((s for s in segments if s.kind == _PT_LOAD and s.flags & (_PF_X | _PF_W) == _PF_W), None)
    address = _go_search_magic(f, elf, segments, data.vaddr, data.filesz) if data is not None else None
    blob = _go_read_data(f, elf, segments, address, MAX_BUILD_INFO) if address is not None else None
    return blob if blob is not None and len(blob) >= 32 else None


def _go_search_magic(f, elf: _ElfHeader, segments: Sequence[_Segment], start: int, size: int) -> Optional[int]:
    """The address of the first Go build-info magic 16-byte aligned in [start, start+size) with 32
    bytes left after it, read ``_GO_CHUNK`` at a time (an aligned magic never straddles two chunks,
    whose starts are aligned); None when there is none, or the range leaves the file's bytes."""
    end = start + size
    address = (start + 15) & ~15
    while address < end:
        chunk = _go_read_data(f, elf, segments, address, min(_GO_CHUNK, end - address))
        if chunk is None:
            return None
        at = chunk.find(_GO_MAGIC)
        while at >= 0:
            if end - address - at < 32:
                return None
            if at % 16 == 0:
                return address + at
            at = chunk.find(_GO_MAGIC, (at + 15) & ~15)
        address += min(_GO_CHUNK, end - address)
    return None


def _go_read_data(f, elf: _ElfHeader, segments: Sequence[_Segment], address: int, size: int) -> Optional[bytes]:
    """Up to ``size`` bytes of the program's memory at ``address``, as Go's ``DataReader`` gives them:
    from the first program header (of any type) whose file bytes hold the address, to that
    segment's end at most; None when none holds it or the file ends before its bytes do."""
    for segment in segments:
        if segment.filesz and segment.vaddr <= address < segment.vaddr + segment.filesz:
            size = min(size, segment.vaddr + segment.filesz - address)
            offset = segment.offset + address - segment.vaddr
            if offset + size > elf.size:
                return None
            f.seek(offset)
            data = f.read(size)
            return data if len(data) == size else None
    return None


def _go_strings(f, elf: _ElfHeader, blob: bytes) -> Tuple[bytes, bytes]:
    """The Go version and the module information the header leads to."""
    if len(blob) < 32:
        raise ValueError("the Go build-info header is cut short")
    if blob[15] & 2:        # Go 1.18 and later: the two strings follow, each after its varint length
        version, at = _go_varint_string(blob, 32)
        return version, _go_varint_string(blob, at)[0]
    return _go_pointer_strings(f, elf, blob, blob[14], ">" if blob[15] & 1 else "<")


def _go_varint_string(data: bytes, at: int) -> Tuple[bytes, int]:
    length, shift = 0, 0
    while True:
        if at >= len(data):
            raise ValueError("a length in the Go build info is cut short")
        if shift > 63:
            raise ValueError("a length in the Go build info is not a valid varint")
        byte = data[at]
        length |= (byte & 0x7f) << shift
        at, shift = at + 1, shift + 7
        if byte < 0x80:
            break
    if length > len(data) - at:
        raise ValueError("a string in the Go build info runs past its end (%d bytes claimed)" % length)
    return data[at:at + length], at + length


def _go_pointer_strings(f, elf: _ElfHeader, blob: bytes, ptr_size: int, endian: str) -> Tuple[bytes, bytes]:
    """Before Go 1.18: two pointers to Go string headers (pointer, length), in the program's memory."""
    if ptr_size not in (4, 8):
        raise ValueError("the Go build info names pointer size %d, not 4 or 8" % ptr_size)
    word = endian + ("Q" if ptr_size == 8 else "I")
    loads = [s for s in _elf_segments(f, elf) if s.kind == _PT_LOAD]
    found = []
    for at in (16, 16 + ptr_size):
        (header_at,) = struct.unpack_from(word, blob, at)
        pointer, length = struct.unpack(endian + word[1] * 2, _go_memory(f, loads, header_at, 2 * ptr_size))
        found.append(_go_memory(f, loads, pointer, length))
    return found[0], found[1]


def _go_memory(f, loads: Sequence[_Segment], address: int, size: int) -> bytes:
    if size > MAX_BUILD_INFO:
        raise ValueError("a string in the Go build info claims %d bytes" % size)
    for segment in loads:
        if segment.vaddr <= address and address + size <= segment.vaddr + segment.filesz:
            return _read_at(f, segment.offset + address - segment.vaddr, size, "a string in the Go build info")
    raise ValueError("the Go build info points to %#x, outside the program's segments" % address)


def _go_build_info(version: bytes, modinfo: bytes) -> BuildInfo:
    if not version:
        raise ValueError("the Go build info names no Go version")
    if len(modinfo) >= 33 and modinfo[-17:-16] == b"\n":
        text = modinfo[16:-16].decode("utf-8", "replace")      # without the sentinels at both ends
    else:
        text = ""           # as Go: no (or unframed) module information
    path, main_module, deps, settings = _go_modinfo(text)
    return BuildInfo("go", version.decode("utf-8", "replace"), path, main_module, tuple(deps), tuple(settings))


def _go_modinfo(text: str) -> Tuple[str, Optional[Module], List[Module], List[Tuple[str, str]]]:
    """Go's module information, read as ``runtime/debug.ParseBuildInfo`` reads it."""
    path, modules, settings = "", [None], []      # modules[0] is the main module
    last = None                                     # the index of the module a "=>" line replaces
    for number, line in enumerate(text.split("\n")[:-1], 1):
        word, _, rest = line.partition("\t")
        try:
            if word == "path":
                path = rest
            elif word in ("mod", "dep"):
                last = 0 if word == "mod" else len(modules)
                modules[last:last + 1] = [_go_module(rest.split("\t"), (2, 3))]
            elif word == "=>":
                if last is None:
                    raise ValueError("a replacement with no module before it")
                modules[last], last = modules[last]._replace(replace=_go_module(rest.split("\t"), (3,))), None
            elif word == "build":
                settings.append(_go_setting(rest))
        except ValueError as e:
            raise ValueError("Go build info, line %d: %s" % (number, e)) from None
    return path, modules[0], modules[1:], settings


def _go_module(fields: List[str], columns: Tuple[int, ...]) -> Module:
    if len(fields) not in columns:
        raise ValueError("%d columns, not %s" % (len(fields), " or ".join(map(str, columns))))
    return Module(fields[0], fields[1], fields[2] if len(fields) > 2 else "")


def _go_setting(text: str) -> Tuple[str, str]:
    """``key=value`` of a ``build`` line; either may be a Go-quoted string."""
    if text.startswith("="):
        raise ValueError("a build setting with no key")
    if text[:1] in ('"', "`"):
        key, rest = _go_quoted(text)
        if not rest.startswith("="):
            raise ValueError("no '=' after a quoted key")
        raw = rest[1:]
    else:
        key, equals, raw = text.partition("=")
        if not equals:
            raise ValueError("a build setting with no '='")
        if any(c in key for c in ' \t\r\n"`'):
            raise ValueError("the key %r must be quoted" % key)
    if raw[:1] not in ('"', "`"):
        if any(c in raw for c in ' \t\r\n"`'):
            raise ValueError("the value %r must be quoted" % raw)
        return key, raw
    value, rest = _go_quoted(raw)
    if rest:
        raise ValueError("text after a quoted value")
    return key, value


def _go_quoted(text: str) -> Tuple[str, str]:
    """A Go string literal at the start of ``text`` (as ``strconv.QuotedPrefix``, unquoted), and what follows."""
    if text[0] == "`":
        end = text.find("`", 1)
        if end < 0:
            raise ValueError("an unterminated `quoted` string")
        return text[1:end].replace("\r", ""), text[end + 1:]
    out, at = bytearray(), 1
    while at < len(text) and text[at] != '"':
        if text[at] != "\\":
            out += text[at].encode("utf-8", "replace")
            at += 1
        else:
            at = _go_escape(text, at + 1, out)
    if at >= len(text):
        raise ValueError('an unterminated "quoted" string')
    return out.decode("utf-8", "replace"), text[at + 1:]


def _go_escape(text: str, at: int, out: bytearray) -> int:
    """One escape after a backslash (at ``at``) appended to ``out``; where the string goes on."""
    c = text[at:at + 1]
    if c in _GO_ESCAPES:
        out += _GO_ESCAPES[c].encode()
        return at + 1
    if c in ("x", "u", "U"):
        digits, allowed, start = {"x": 2, "u": 4, "U": 8}[c], "0123456789abcdefABCDEF", at + 1
    else:
        digits, allowed, start = 3, "01234567", at
    chunk = text[start:start + digits]
    if not c or c not in "xuU01234567" or len(chunk) < digits or any(d not in allowed for d in chunk):
        raise ValueError("a bad escape \\%s in a quoted string" % c)
    value = int(chunk, 8 if allowed == "01234567" else 16)
    if c in "uU":
        if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            raise ValueError("a bad escape \\%s%s in a quoted string" % (c, chunk))
        out += chr(value).encode("utf-8")
    elif value > 255:
        raise ValueError("a bad escape \\%s in a quoted string" % chunk)
    else:
        out.append(value)
    return start + digits


def _rust_build_info(compressed: bytes) -> BuildInfo:
    """The crate list ``cargo auditable`` embeds: zlib-compressed JSON, ``{"packages": [...]}``."""
    inflate = zlib.decompressobj()
    try:
        data = inflate.decompress(compressed, MAX_BUILD_INFO_JSON)
    except zlib.error as e:
        raise ValueError("the section .dep-v0 is not zlib data (%s)" % e) from None
    if inflate.unconsumed_tail:
        raise ValueError("the section .dep-v0 decompresses to more than %d MiB" % (MAX_BUILD_INFO_JSON >> 20))
    if not inflate.eof:
        raise ValueError("the zlib data in the section .dep-v0 is cut short")
    try:
        document = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError, MemoryError) as e:
        raise ValueError("the section .dep-v0 is not JSON (%s)" % outside_text(e, 100)) from None
    packages = _expect(document.get("packages") if isinstance(document, dict) else None, "list", "packages",
                       lambda _: ValueError("the section .dep-v0 has no list of packages"))
    root, deps = None, []
    for package in packages:
        module = _rust_package(package)
        if isinstance(package, dict) and package.get("root") is True:
            if root is not None:
                raise ValueError("the section .dep-v0 names two root packages")
            root = module
        else:
            deps.append(module)
    return BuildInfo("rust", main=root, deps=tuple(sorted(deps, key=lambda m: (m.path, m.version))))


def _rust_package(package) -> Module:
    """One package of cargo auditable's list; its ``kind`` is "runtime" unless it says another
    ("build": only a build script or a proc macro uses it; the format leaves "runtime" out)."""
    def refuse(_):
        return ValueError("the section .dep-v0 lists a package without a name, version, source and kind as strings")
    _expect(package, "object", "a package", refuse)
    name, version, source, kind = (_expect(package.get(key, ""), "string", key, refuse)
                                   for key in ("name", "version", "source", "kind"))
    if not name:
        raise refuse(None)
    return Module(name, version, source=source, kind=kind or "runtime")


# Public code hosts a Go module path can name, and how many path elements after the host name the
# repository (None: all of them but a major-version suffix; GitLab has nested groups).
_CODE_HOSTS = {"github.com": 2, "bitbucket.org": 2, "codeberg.org": 2, "git.sr.ht": 2, "gitlab.com": None}
_REPO_ELEMENT = _Pattern(r"~?[A-Za-z0-9_.-]+")


BUILD_INFO_LABELS = tuple("org.opencontainers.image." + key for key in ("version", "revision", "source"))


def build_info_labels(info: BuildInfo) -> Dict[str, str]:
    """The OCI labels a program's build info gives: ``org.opencontainers.image.version`` (the main
    module's or root crate's version, when a real one: not Go's "(devel)"), ``...revision`` (Go's
    ``vcs.revision``) and ``...source`` (the Go module path as an https URL, when it names a public
    code host). Values that are not one printable word are left out, and so are those that held a
    character that was not printable (``_printable_text`` made it an escape: no version has a backslash)."""
    labels = {}
    version = info.main.version if info.main else ""
    if version and version != "(devel)":
        labels["org.opencontainers.image.version"] = version
    revision = dict(info.settings).get("vcs.revision", "")
    if revision:
        labels["org.opencontainers.image.revision"] = revision
    source = _source_url(info.main.path if info.main else info.path, info.main is not None) \
        if info.language == "go" else None
    if source:
        labels["org.opencontainers.image.source"] = source
    return {k: v for k, v in labels.items()
            if v.isprintable() and not any(c.isspace() for c in v) and "\\" not in v}


def _source_url(path: str, module: bool = True) -> Optional[str]:
    """``github.com/o/r/v2/cmd/x`` -> ``https://github.com/o/r``; None for a host not known to be public.
    A GitLab path (nested groups: no fixed depth) is a repository as a module path; a package path
    is cut before Go's usual package directories (``cmd``, ``internal``, ``pkg``), else unknown."""
    host, _, rest = path.partition("/")
    if host not in _CODE_HOSTS:
        return None
    elements = rest.split("/")
    keep = _CODE_HOSTS[host]
    if keep is None and not module:
        keep = next((i for i, e in enumerate(elements) if e in ("cmd", "internal", "pkg")), None)
        if keep is None:
            return None
    if keep is None:
        keep = len(elements) - (1 if re.fullmatch(r"v[0-9]+", elements[-1]) else 0)
    elements = elements[:keep]
    if len(elements) < 2 or not all(_REPO_ELEMENT.fullmatch(e) and e.strip(".") for e in elements):
        return None
    return "https://%s/%s" % (host, "/".join(elements))


def _build_info_line(info: BuildInfo) -> str:
    """``Go go1.22.1, module example.com/app v1.2.3, 14 dependencies`` (the build log's note)."""
    parts = ["Go %s" % info.toolchain if info.language == "go" else "Rust (cargo auditable)"]
    if info.main is not None:
        parts.append("%s %s %s" % ("module" if info.language == "go" else "crate", info.main.path,
                                   info.main.version or "(no version)"))
    elif info.path:
        parts.append("package %s" % info.path)
    parts.append("%d dependenc%s" % (len(info.deps), "y" if len(info.deps) == 1 else "ies"))
    return outside_text(", ".join(parts), 500)


# ---- Manifests and configs ----

def canonical_json(obj) -> bytes:
    """The one JSON encoding zeroimage writes: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# -- shapes of manifests, indexes, descriptors and configs (``_expect`` above) --

_DESCRIPTOR_FIELDS = {"mediaType": "?media type", "digest": "digest string", "size": "size", "urls": "?strings",
                      "annotations": "?string map", "data": "?string", "artifactType": "?media type",
                      "platform": "?object"}


def descriptor_shape(desc, where: str, error=None) -> dict:
    """A descriptor from outside, each field of its type: a digest in visible ASCII, a size from 0 to
    2^63-1, a media type, annotations a map of strings, a platform an object... Whether the digest is
    one zeroimage can verify, and the blob that size, is checked when the blob is used
    (``check_descriptor``): an index entry that is wrong in that way stops nothing but itself."""
    _expect(desc, "object", "%s: a descriptor" % where, error)
    for field in ("digest", "size"):
        if field not in desc:
            raise (error or ArchiveError)("%s: a descriptor has no %s" % (where, field))
    return _expect_fields(desc, _DESCRIPTOR_FIELDS, "%s: a descriptor's " % where, error)


_MANIFEST_FIELDS = {"schemaVersion": "?int", "mediaType": "?media type", "artifactType": "?media type",
                    "config": "?object", "layers": "?objects", "manifests": "?objects", "subject": "?object",
                    "annotations": "?string map"}


def manifest_shape(value, where: str, error=None) -> dict:
    """A manifest or index from outside, each field of its type, every descriptor in it too."""
    _expect(value, "object", where, error)
    _expect_fields(value, _MANIFEST_FIELDS, "%s: its " % where, error)
    for field in ("config", "subject"):
        if value.get(field) is not None:
            descriptor_shape(value[field], "%s: its %s" % (where, field), error)
    for field in ("layers", "manifests"):
        for desc in value.get(field) or ():
            descriptor_shape(desc, "%s: its %s" % (where, field), error)
    return value


_CONFIG_FIELDS = {"architecture": "?string", "os": "?string", "variant": "?string", "os.version": "?string",
                  "os.features": "?strings", "created": "?string", "author": "?string", "rootfs": "?object",
                  "history": "?list"}
_RUNTIME_FIELDS = {"User": "?string", "WorkingDir": "?string", "StopSignal": "?string", "Env": "?strings",
                   "Entrypoint": "?strings", "Cmd": "?strings", "Shell": "?strings", "OnBuild": "?strings",
                   "ExposedPorts": "?object map", "Volumes": "?object map", "Labels": "?string map",
                   "ArgsEscaped": "?bool"}
_HISTORY_FIELDS = {"created": "?string", "created_by": "?string", "author": "?string", "comment": "?string",
                   "empty_layer": "?bool"}


def config_shape(config, where: str, error=None) -> dict:
    """An image config from outside, each field the image spec defines of its type (null is absent):
    ``rootfs.diff_ids`` a list of digests, ``history`` a list of objects, ``config.Env`` a list of
    strings, ``config.Labels`` a map of strings... Unknown fields are kept as they are."""
    said = "%s: its config" % where
    _expect(config, "object", said, error)
    _expect_fields(config, _CONFIG_FIELDS, said + "'s ", error)
    runtime = _expect(config.get("config"), "?object", said + "'s \"config\"", error) or {}
    _expect_fields(runtime, _RUNTIME_FIELDS, said + "'s ", error)
    rootfs = config.get("rootfs") or {}
    _expect(rootfs.get("diff_ids"), "?digests", said + "'s rootfs.diff_ids", error)
    for i, entry in enumerate(config.get("history") or ()):
        _expect(entry, "object", "%s's history[%d]" % (said, i), error)
        _expect_fields(entry, _HISTORY_FIELDS, "%s's history[%d]." % (said, i), error)
    return config


def descriptor(media_type: str, digest: str, size: int, **extra) -> dict:
    desc = {"mediaType": media_type, "digest": digest, "size": size}
    desc.update({k: v for k, v in extra.items() if v})
    return desc


def referrer_descriptor(manifest: dict, digest: str, size: int) -> dict:
    """What a referrers list says of an artifact manifest (distribution spec): its descriptor, its
    ``artifactType`` (else its config's media type) and a copy of its annotations."""
    config = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    kind = manifest.get("artifactType") or config.get("mediaType") or ""
    return descriptor(manifest.get("mediaType") or OCI_MANIFEST, digest, size,
                      artifactType=kind if isinstance(kind, str) else "", annotations=_string_map(
                          manifest.get("annotations")))


def _string_map(value) -> Dict[str, str]:
    """Labels or annotations as they are, strings only (a null or a non-map is none)."""
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(value, dict) else {}


def referrers_tag(digest: str) -> str:
    """The referrers tag schema's tag for a subject: ``sha256-<hex>`` (algorithm cut to 32
    characters, the rest to 64, anything a tag cannot hold made ``-``)."""
    algorithm, _, encoded = digest.partition(":")
    return re.sub(r"[^A-Za-z0-9_.-]", "-", algorithm[:32] + "-" + encoded[:64])


MAX_TIMESTAMP = 253402300799        # 9999-12-31T23:59:59Z: the last second RFC 3339's four-digit year can write
_RFC3339_RE = _Pattern(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?"
                         r"(?:Z|[+-]([0-9]{2}):([0-9]{2}))")


def rfc3339(timestamp: int) -> str:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ZeroImageError("a time must be whole seconds from 0 to %d (9999-12-31T23:59:59Z), not %s"
                             % (MAX_TIMESTAMP, outside_text(repr(timestamp), 40)))
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_rfc3339(text) -> bool:
    """Whether ``text`` is an RFC 3339 date-time (section 5.6), as the image spec's times must be:
    ``2024-01-02T03:04:05Z``, with optional fractions and a numeric offset, in the form Go's
    time.RFC3339 reads (what most consumers use): upper-case T and Z, no leap second."""
    match = _RFC3339_RE.fullmatch(text) if isinstance(text, str) else None
    if not match:
        return False
    year, month, day, hour, minute, second, off_hour, off_minute = (int(g or 0) for g in match.groups())
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return hour < 24 and minute < 60 and second < 60 and off_hour < 24 and off_minute < 60


def created_timestamp(environ=None) -> int:
    """``SOURCE_DATE_EPOCH`` when set (reproducible builds), else now; a value that is not whole
    seconds an RFC 3339 time can say is an error, never a time made up from it."""
    environ = os.environ if environ is None else environ
    value = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    if not re.fullmatch(r"[0-9]{1,12}", value) or int(value) > MAX_TIMESTAMP:
        raise ZeroImageError("SOURCE_DATE_EPOCH must be a whole number of seconds from 0 to %d "
                             "(9999-12-31T23:59:59Z), not %s; fix or unset it"
                             % (MAX_TIMESTAMP, outside_text(repr(value), 40)))
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
    """What ``--env``, ``--label``, ``--user``, ``--workdir``, ``--cmd``, ``--expose``, ``--annotation``,
    ``--add`` and ``--entrypoint-arg`` ask of an image. ``args``: the entrypoint's fixed arguments after
    its program (``ENTRYPOINT ["/app", "serve"]``), which Cmd cannot replace."""

    env: Sequence[Tuple[str, str]] = ()
    labels: Sequence[Tuple[str, str]] = ()
    annotations: Sequence[Tuple[str, str]] = ()
    user: Optional[str] = None
    workdir: Optional[str] = None
    cmd: Optional[Sequence[str]] = None
    expose: Sequence[str] = ()                  # "8080/tcp"
    add: Sequence[Tuple[str, str]] = ()         # (host path, absolute image path)
    args: Sequence[str] = ()                    # the entrypoint's fixed arguments


class BuildOptions(NamedTuple):
    """What a build is asked for: ``build(BuildOptions(...))``. Each field is named as the option of
    ``zeroimage build`` that sets it (its argparse dest), the image's own options nested as ``image``:

    - ``entrypoint``: the program's path (one image; its platform ``platform``, else read from its ELF
      header), or a list of (Platform, path) pairs (one image per platform, in an index).
    - ``output``: the archive (or, with ``output_format`` "oci-layout", the directory) to write;
      ``"-"`` is standard output; default ``NAME.tar``.
    - ``base``: None (the built-in minimal base), ``"scratch"``, a registry reference, or
      ``docker-daemon:NAME`` (the local engine's image). ``base_archive`` (``--from-archive``): an OCI
      layout tar or directory, or a ``docker save`` archive, ``PATH:NAME`` to pick an image.
    - ``platform``: a Platform for the one program (not with PLATFORM=PROGRAM pairs).
    - ``target``: the program's absolute path in the image (default ``/NAME``).
    - ``tag``: the image's name in the archive or engine (default ``localhost/NAME:latest``).
    - ``push``: a reference to push to instead of writing ``output``; ``load``: send the image to the
      local container engine instead.
    - ``output_format`` (``--format``): "archive" or "oci-layout".
    - ``media_types``: "docker" or "oci", the manifests' family (default: the base's; OCI for scratch
      and the minimal base).
    - ``compression``: of the new layers, "gzip" or (where this Python has ``compression.zstd``)
      "zstd", or a ``Compression``; zstd layers make the image OCI's (Docker has no media type for
      them). ``compression_level``: its level (default: the codec's; gzip 0 to 9, zstd 1 to 22).
    - ``ca_bundle``: the TLS roots for the minimal base (default: the host's).
    - ``tzdata``: a zone database at /usr/share/zoneinfo in the minimal base: True for the host's
      ($ZONEINFO from the session's environment, else /usr/share/zoneinfo), or a directory; None or
      False for none.
    - ``sbom``: attach an SPDX document to each image (an OCI 1.1 artifact whose subject is the image),
      pushed after it or written into the archive or layout beside it.
    - ``platform_check`` (``--no-platform-check`` sets it False): a binary whose ELF header disagrees
      with its PLATFORM= is an error (else a warning).
    - ``build_info`` (``--no-build-info`` sets it False): read each program's build info (Go's, or
      cargo auditable's) and label its image with the version, revision and source it gives, unless
      ``image`` gives those keys (see ``image_metadata``).
    - ``image``: the ``ImageOptions`` (``--env``, ``--label``, ``--user``, ``--add``, ...).

    Kept beside ``ImageOptions``, not merged into it: what makes the image's config (ImageOptions) is
    all that config, manifest and SBOM code sees; where the image comes from and goes is build's."""

    entrypoint: Union[str, os.PathLike, Sequence[Tuple[Platform, str]]]
    output: Optional[str] = None
    base: Optional[str] = None
    base_archive: Optional[str] = None
    platform: Optional[Platform] = None
    target: Optional[str] = None
    tag: Optional[str] = None
    push: Optional[str] = None
    load: bool = False
    output_format: str = "archive"
    media_types: Optional[str] = None
    compression: Union[str, "Compression"] = "gzip"
    compression_level: Optional[int] = None
    ca_bundle: Optional[str] = None
    tzdata: Union[None, bool, str, os.PathLike] = None
    sbom: bool = False
    platform_check: bool = True
    build_info: bool = True
    image: ImageOptions = ImageOptions()


# The keys the image spec defines under its reserved prefix (annotations.md); no other key may use it.
_OCI_IMAGE_PREFIX = "org.opencontainers.image."      # one value per key under it (image_metadata)
OCI_ANNOTATION_KEYS = frozenset(_OCI_IMAGE_PREFIX + key for key in (
    "created", "authors", "url", "documentation", "source", "version", "revision", "vendor", "licenses",
    "ref.name", "title", "description", "base.digest", "base.name"))


def _env_problem(key, value) -> Optional[str]:
    if not isinstance(key, str) or not isinstance(value, str):
        return "`env` %s: the name and value must be strings" % outside_text(repr((key, value)), 100)
    if not key or "=" in key or any(c.isspace() or not c.isprintable() for c in key):
        return ("`env` %s: a variable's name must be non-empty, without '=', spaces or control characters"
                % outside_text(repr(key), 100))
    if any(c in value for c in "\n\r\0"):
        return ("`env` %s: the value holds a line break or NUL, which an environment (and env files, docker "
                "inspect) cannot carry intact; pass it another way (a file added with `add`)" % key)
    return None


def _is_reference(text: str) -> bool:
    try:
        Reference.parse(text)
        return True
    except InvalidReferenceError:
        return False


def _metadata_problem(option: str, key, value) -> Optional[str]:
    """Why a ``labels``/``annotations`` KEY=VALUE cannot go in an image, or None."""
    if not isinstance(key, str) or not isinstance(value, str):
        return "%s %s: the key and value must be strings" % (option, outside_text(repr((key, value)), 100))
    if not key:
        return "%s: the key is empty" % option
    if not key.isprintable() or any(c.isspace() for c in key):
        return "%s %s: the key holds a space, control character or line break" % (option, outside_text(repr(key), 100))
    shown = outside_text(key, 100)
    if (key == "org.opencontainers" or key.startswith("org.opencontainers.")) and key not in OCI_ANNOTATION_KEYS:
        return ("%s %s: keys under org.opencontainers. are reserved for the OCI's own; the image spec defines "
                "org.opencontainers.image.{%s}; use your own prefix, like com.example.%s"
                % (option, shown, ",".join(sorted(k.rsplit(".image.", 1)[1] for k in OCI_ANNOTATION_KEYS)),
                   key.rsplit(".", 1)[-1] or "key"))
    if key == ANNOTATION_REF_NAME:
        return ("%s %s: this key names an image in index.json, not in the image itself; zeroimage writes it "
                "from `tag`" % (option, shown))
    if key == "org.opencontainers.image.created" and not is_rfc3339(value):
        return ("%s %s=%s: the value must be an RFC 3339 time, like 2024-01-02T03:04:05Z"
                % (option, shown, outside_text(repr(value), 60)))
    if key == ANNOTATION_BASE_NAME and not _is_reference(value):
        return "%s %s=%s: the value must be an image reference, like docker.io/library/alpine:3.20" % (
            option, shown, outside_text(repr(value), 100))
    if key == ANNOTATION_BASE_DIGEST and digest_problem(value):
        return "%s %s=%s: %s" % (option, shown, outside_text(repr(value), 100), digest_problem(value))
    return None


_USER_NAME = _Pattern(r"[A-Za-z_][A-Za-z0-9_.-]*\$?")    # POSIX portable names (and Samba's trailing $)
# (not 2 ** 31: the compiler folds a power with a multiplication that runs a pending Ctrl-C's handler,
# so a Ctrl-C while python3 zeroimage.py is compiled became exit 1 instead of the signal's)
MAX_ID = (1 << 31) - 1                                      # what runc and umoci accept for a uid or gid


def user_problem(user: str) -> Optional[str]:
    """Why ``USER[:GROUP]`` cannot be an image's user (each part a name or an id up to 2^31-1), or None."""
    parts = user.split(":")
    if not user or len(parts) > 2:
        return "expected USER[:GROUP], got %r" % user
    for part in parts:
        if part.isascii() and part.isdigit():
            if int(part) > MAX_ID:
                return "the id %s in %r is out of range (0 to %d)" % (part, user, MAX_ID)
        elif not _USER_NAME.fullmatch(part):
            return "expected USER[:GROUP] with names of letters, digits, '_', '.', '-' (not first) or ids, got %r" % user
    return None


def _check_image_option_shapes(options) -> None:
    """Each ImageOptions field of the shape its annotation says (a caller's value, checked at the border:
    what is read from it later assumes it)."""
    if not isinstance(options, ImageOptions):
        raise UsageError("BuildOptions.image is an ImageOptions, not %s" % outside_text(repr(options), 100))

    def sequence(value) -> bool:
        return isinstance(value, (list, tuple))

    for name in ("env", "labels", "annotations", "add"):
        value = getattr(options, name)
        if not sequence(value) or not all(sequence(pair) and len(pair) == 2 for pair in value):
            raise UsageError("`%s` is a list of %s pairs, not %s" % (
                name, "(host path, image path)" if name == "add" else "(KEY, VALUE)", outside_text(repr(value), 100)))
    for name in ("cmd", "expose", "args"):
        value = getattr(options, name)
        if not (value is None and name == "cmd") and (not sequence(value) or
                                                      not all(isinstance(item, str) for item in value)):
            raise UsageError("`%s` is a list of strings, not %s" % (name, outside_text(repr(value), 100)))
    for name in ("user", "workdir"):
        value = getattr(options, name)
        if value is not None and not isinstance(value, str):
            raise UsageError("`%s` is a string, not %s" % (name, outside_text(repr(value), 100)))


def check_image_options(options: "ImageOptions") -> None:
    """Refuse (UsageError) what ImageOptions asks that no valid image can hold: an environment
    variable a runtime cannot pass, a label or annotation key the OCI reserves, a time that is not
    RFC 3339. A field of the wrong shape (``env="A=b"``, ``cmd="serve"``) is a one-line UsageError too."""
    _check_image_option_shapes(options)
    texts = [("`env`", text) for pair in options.env for text in pair]
    texts += [(option, text) for option, pairs in (("`labels`", options.labels), ("`annotations`", options.annotations))
              for pair in pairs for text in pair]
    texts += [("`cmd`", text) for text in options.cmd or ()]
    texts += [("`args`", text) for text in options.args]
    texts += [(option, text) for option, text in (("`user`", options.user), ("`workdir`", options.workdir)) if text]
    for option, text in texts:
        if not _is_utf8(text):
            raise UsageError("%s %r: not UTF-8 text, which image metadata (JSON) must be" % (option, text))
    if options.user and user_problem(options.user):
        raise UsageError("`user`: %s" % user_problem(options.user))
    problems = [_env_problem(key, value) for key, value in options.env]
    problems += [_metadata_problem("`labels`", key, value) for key, value in options.labels]
    problems += [_metadata_problem("`annotations`", key, value) for key, value in options.annotations]
    problems = [p for p in problems if p]
    if problems:
        raise UsageError(problems[0])
    labels = dict(options.labels)
    for key, value in dict(options.annotations).items():
        if key.startswith(_OCI_IMAGE_PREFIX) and labels.get(key, value) != value:
            raise UsageError("`labels` %s=%s and `annotations` %s=%s: an image states one value per "
                             "org.opencontainers.image.* key (zeroimage writes yours wherever that key goes, "
                             "label and annotation alike); give it once, or the same value twice" % (
                                 key, outside_text(repr(labels[key]), 100), key, outside_text(repr(value), 100)))


def _user_metadata(options: ImageOptions) -> Dict[str, str]:
    """The value the user gives each ``org.opencontainers.image.*`` key, as --label or --annotation
    (check_image_options made sure the two agree)."""
    return {key: value for key, value in list(options.labels) + list(options.annotations)
            if key.startswith(_OCI_IMAGE_PREFIX)}


def image_metadata(options: ImageOptions, base_labels: Optional[Dict[str, str]] = None,
                   base_annotations: Optional[Dict[str, str]] = None, program: Optional[Dict[str, str]] = None,
                   on_index: bool = False) -> Tuple[Dict[str, str], Dict[str, str]]:
    """The labels and the manifest's annotations an image is written with (``on_index``: the
    annotations of the index over several, which has no labels): the one home of "one value per
    metadata key". Each says, the later winning:

    1. the base: its config's labels (``base_labels``; without its version, revision and source when
       the program's build info gives any of them: they describe the base's own program, and a version
       from one program beside a source from another would be worse than none), and what zeroimage
       writes of it as annotations (``base_annotations``: base.name and base.digest), which the base's
       labels of those keys (about the base's own base) give way to;
    2. the program's build info (``program``, what build_info_labels gives): labels;
    3. the user: ``options.labels`` as labels, ``options.annotations`` as the manifest's annotations
       (not the index's); and each ``org.opencontainers.image.*`` key the user gives either way holds
       the user's value wherever steps 1 and 2 put that key, label and annotation alike, so the image
       never states two versions (or sources, or base names)."""
    labels = dict(base_labels or {})
    if program:
        labels = {key: value for key, value in labels.items() if key not in BUILD_INFO_LABELS}
    labels.update(program or {})
    annotations = dict(base_annotations or {})
    labels.update((key, value) for key, value in annotations.items() if key in labels)
    if on_index:
        labels = {}
    else:
        labels.update(options.labels)
        annotations.update(options.annotations)
    for key, value in _user_metadata(options).items():
        for place in (labels, annotations):
            if key in place:
                place[key] = value
    return labels, annotations


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


_STRING_LISTS = ("Env", "Entrypoint", "Cmd", "Shell", "OnBuild")      # runtime fields that are lists of strings
_OBJECT_MAPS = ("ExposedPorts", "Volumes")                             # maps of key -> {}
_HISTORY_TEXT = ("created", "created_by", "author", "comment")


def _is_string_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _normal_history(history, diff_ids: int, where: str) -> List[dict]:
    """The base's history with one entry that is not ``empty_layer`` per layer: entries it left out
    are padded at its end; more entries than layers, or entries that are not what the spec says
    (objects with string fields, RFC 3339 times, a boolean ``empty_layer``), are refused."""
    if history is None:
        history = []
    if not isinstance(history, list):
        raise ArchiveError("%s: its config's history is not a list" % where)
    entries = []
    for i, entry in enumerate(history):
        if not isinstance(entry, dict):
            raise ArchiveError("%s: its config's history[%d] is not an object" % (where, i))
        entry = {k: v for k, v in entry.items() if v is not None}
        for key in _HISTORY_TEXT:
            if key in entry and not isinstance(entry[key], str):
                raise ArchiveError("%s: its config's history[%d].%s is not a string" % (where, i, key))
        if "created" in entry and not is_rfc3339(entry["created"]):
            raise ArchiveError("%s: its config's history[%d].created is not an RFC 3339 time: %s"
                               % (where, i, outside_text(repr(entry["created"]), 60)))
        if not isinstance(entry.get("empty_layer", False), bool):
            raise ArchiveError("%s: its config's history[%d].empty_layer is not true or false" % (where, i))
        entries.append(entry)
    described = sum(1 for entry in entries if not entry.get("empty_layer"))
    if described > diff_ids:
        raise ArchiveError("%s: its config's history describes %d layers but it has %d; zeroimage cannot tell "
                           "which history line goes with which layer" % (where, described, diff_ids))
    pad = {"comment": "zeroimage: the base recorded no history for this layer"}
    return entries + [dict(pad) for _ in range(diff_ids - described)]


def normal_base_config(base, where: str = "the base") -> dict:
    """A base's config in the shape the image spec gives it, ready to build on. What is missing or
    null is filled in: no ``config`` object, null ``Env``/``Cmd``/``Labels``/``ExposedPorts``/...
    (null means absent), no ``rootfs`` or ``history``, a history shorter than the layers (padded).
    What is there but malformed is refused (ArchiveError naming the field): zeroimage cannot know what
    it meant."""
    if not isinstance(base, dict):
        raise ArchiveError("%s: its config is not a JSON object" % where)
    config_shape(base, where)
    config = {k: _copy_module.deepcopy(v) for k, v in base.items() if v is not None}
    runtime = config.get("config", {})
    if not isinstance(runtime, dict):
        raise ArchiveError("%s: its config's \"config\" is not an object" % where)
    runtime = {k: v for k, v in runtime.items() if v is not None}
    for key, value in runtime.items():
        if key in _STRING_LISTS and not _is_string_list(value):
            raise ArchiveError("%s: its config's %s is not a list of strings" % (where, key))
        if key == "Env" and not all(item.partition("=")[0] and "=" in item for item in value):
            raise ArchiveError("%s: its config's Env holds %r, not NAME=VALUE (runtimes refuse it)" % (
                where, outside_text(next(i for i in value if not (i.partition("=")[0] and "=" in i)), 100)))
        if key in _OBJECT_MAPS:
            if not isinstance(value, dict) or not all(v is None or isinstance(v, dict) for v in value.values()):
                raise ArchiveError("%s: its config's %s is not a map of objects" % (where, key))
            runtime[key] = {k: v or {} for k, v in value.items()}
        if key == "Labels":
            if not isinstance(value, dict) or not all(v is None or isinstance(v, str) for v in value.values()):
                raise ArchiveError("%s: its config's Labels is not a map of strings" % where)
            runtime[key] = {k: v for k, v in value.items() if v is not None}
        if key in ("User", "WorkingDir", "StopSignal") and not isinstance(value, str):
            raise ArchiveError("%s: its config's %s is not a string" % (where, key))
    config["config"] = runtime
    for key in ("author", "os.version"):
        if key in config and not isinstance(config[key], str):
            raise ArchiveError("%s: its config's %s is not a string" % (where, key))
    if "os.features" in config and not _is_string_list(config["os.features"]):
        raise ArchiveError("%s: its config's os.features is not a list of strings" % where)
    rootfs = config.get("rootfs", {})
    if not isinstance(rootfs, dict):
        raise ArchiveError("%s: its config's rootfs is not an object" % where)
    diff_ids = rootfs.get("diff_ids") or []
    if not _is_string_list(diff_ids):
        raise ArchiveError("%s: its config's rootfs.diff_ids is not a list of digests" % where)
    config["rootfs"] = dict(rootfs, type="layers", diff_ids=diff_ids)
    config["history"] = _normal_history(config.get("history"), len(diff_ids), where)
    return config


_PORT_KEY = _Pattern(r"[0-9]{1,5}(-[0-9]{1,5})?(/(tcp|udp|sctp))?")


def base_metadata_problems(config: dict) -> List[str]:
    """What a (normal) base config carries that the image spec does not allow in an image: labels
    under the reserved org.opencontainers. prefix that it does not define or with malformed values,
    exposed ports that are not PORT[/PROTO]. The new image leaves them out (and says so)."""
    runtime = config.get("config", {})
    problems = []
    for key, value in sorted((runtime.get("Labels") or {}).items()):
        problem = ref_name_problem(value) if key == ANNOTATION_REF_NAME else _metadata_problem("label", key, value)
        if problem:
            problems.append(("Labels", key, problem))
    problems += [("ExposedPorts", key, "not PORT[/tcp|udp|sctp]") for key in sorted(runtime.get("ExposedPorts") or {})
                 if not _PORT_KEY.fullmatch(key)]
    return problems


def without_base_metadata(config: dict, problems: Sequence[Tuple[str, str, str]]) -> dict:
    config = _copy_module.deepcopy(config)
    for field, key, _ in problems:
        del config["config"][field][key]
    return config


def apply_image_options(runtime: dict, options: ImageOptions, labels: Dict[str, str]) -> None:
    """Set in a (normal) config's runtime part what ``options`` asks of it: Cmd, Env, ExposedPorts,
    User, WorkingDir, and ``labels`` (what ``image_metadata`` gives). The entrypoint is the caller's."""
    if options.cmd is not None:
        runtime["Cmd"] = list(options.cmd)
    for key, value in options.env:
        runtime["Env"] = _set_env(runtime.get("Env") or [], key, value)
    if labels or "Labels" in runtime:
        runtime["Labels"] = labels
    if options.expose:
        runtime["ExposedPorts"] = dict(runtime.get("ExposedPorts") or {}, **{p: {} for p in options.expose})
    if options.user is not None:
        runtime["User"] = options.user
    if options.workdir is not None:
        runtime["WorkingDir"] = options.workdir


def derive_config(base: dict, platform: Platform, layers: Sequence[AddedLayer],
                  entrypoint: Sequence[str], created: str, options: ImageOptions = ImageOptions(),
                  where: str = "the base", program_labels: Optional[Dict[str, str]] = None,
                  base_annotations: Optional[Dict[str, str]] = None) -> dict:
    """The new image config: the base's (made whole by ``normal_base_config``), every unknown field
    kept, plus our layers, each with its history line, entrypoint and options, and the labels
    ``image_metadata`` gives (the base's, what zeroimage says of the base, ``program_labels`` from
    build info, the user's). Nothing in it is null."""
    config = normal_base_config(base, where)
    runtime = config["config"]
    runtime["Entrypoint"] = list(entrypoint) + list(options.args)
    runtime.pop("Cmd", None)            # Docker drops an inherited CMD when ENTRYPOINT is set
    apply_image_options(runtime, options,
                        image_metadata(options, runtime.get("Labels"), base_annotations, program_labels)[0])
    config.pop("variant", None)
    config.update(platform.to_dict())
    for layer in layers:
        config["rootfs"]["diff_ids"].append(layer.diff_id)
        config["history"].append({"created": created, "created_by": layer.created_by})
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


_SURROGATE_ESCAPE_RE = _Pattern(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE_RE = _Pattern("[\ud800-\udfff]")       # (json.loads joins the pairs that are whole)


# The fields of the image and distribution specs' documents (and Docker's), case-folded. Go's
# encoding/json, which registries, engines and runtimes read them with, matches a struct's field
# names without regard to case, the last key winning: an object that holds two of these keys equal
# but for case ("User" and "user") means one thing to zeroimage and another to Docker.
_SPEC_FIELDS = frozenset("""schemaversion mediatype config layers manifests annotations subject artifacttype
digest size urls data platform architecture os os.version os.features variant features rootfs type diff_ids
history created created_by author comment empty_layer user exposedports env entrypoint cmd volumes workingdir
labels stopsignal argsescaped healthcheck shell onbuild repotags container_config docker_version""".split())


def _json_pairs(pairs) -> dict:
    """An object, refused when a key repeats, or two of the specs' field names differ only in case."""
    value, folded = dict(pairs), set()
    if len(value) != len(pairs):
        raise ValueError("a key appears twice in one object")
    for key in value:
        fold = key.casefold()
        if fold in _SPEC_FIELDS:
            if fold in folded:
                raise ValueError("two keys differ only in case (%s): Go reads them as one" % outside_text(key, 40))
            folded.add(fold)
    return value


def _json_constant(name: str):
    raise ValueError("%s is not a JSON number" % name)         # NaN, Infinity, -Infinity: Python's, not JSON's


def _json_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("a number too large for a float (%s...)" % text[:20])
    return value


def _json_int(text: str) -> int:
    if len(text) > 400:
        raise ValueError("a number of %d digits" % len(text))
    return int(text)


def parse_json(data: bytes, what: str, error: Callable[[str], Exception] = None):
    """JSON from outside (a file, a server, a binary), decoded as Go's encoding/json decodes it, which
    is what registries and engines use: a lone surrogate (``"\\udcff"``, which no UTF-8 text can hold)
    becomes U+FFFD, so every string in the value is valid Unicode; what Go would read otherwise, or
    not at all, is refused: NaN and Infinity, a number past a float, a key twice, spec fields equal but
    for case. Malformed JSON is ArchiveError (or what ``error`` makes of the message)."""
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_json_pairs, parse_constant=_json_constant,
                           parse_float=_json_float, parse_int=_json_int)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise (error or ArchiveError)("%s is not valid JSON (%s)" % (what, outside_text(e, 100))) from e
    return _valid_unicode(value) if _SURROGATE_ESCAPE_RE.search(data) else value


def _valid_unicode(value):
    """A decoded JSON value with each lone surrogate in its strings (keys too) made U+FFFD."""
    if isinstance(value, str):
        return _LONE_SURROGATE_RE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_valid_unicode(item) for item in value]
    if isinstance(value, dict):
        return {_valid_unicode(k): _valid_unicode(v) for k, v in value.items()}
    return value


def json_object(data: bytes, what: str, error=None) -> dict:
    value = parse_json(data, what, error)
    if not isinstance(value, dict):
        raise (error or ArchiveError)("%s is not a JSON object" % what)
    return value


def manifest_object(data: bytes, what: str, error=None) -> dict:
    """A manifest or index from outside, parsed and shape-checked (``manifest_shape``)."""
    return manifest_shape(json_object(data, what, error), what, error)


def check_descriptor(desc, where: str, error=None) -> Tuple[str, int]:
    """(digest, size) of a descriptor from outside, about to be used: its shape (``descriptor_shape``)
    and a digest zeroimage can verify."""
    descriptor_shape(desc, where, error)
    digest, size = desc["digest"], desc["size"]
    problem = digest_problem(digest)
    if problem:
        raise (error or ArchiveError)("%s: descriptor with digest %s: %s" % (
            where, outside_text(repr(digest), 100), problem))
    return digest, size


def _annotations(desc: dict) -> dict:
    annotations = desc.get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def descriptor_name(desc: dict) -> str:
    """The image name an index entry carries (containerd's full name, else the OCI ref name)."""
    annotations = _annotations(desc)
    name = annotations.get(ANNOTATION_CONTAINERD_NAME) or annotations.get(ANNOTATION_REF_NAME) or ""
    return name if isinstance(name, str) else ""


def is_attestation(desc: dict) -> bool:
    """An index entry that is not an image to run: BuildKit's attestations (platform unknown/unknown)."""
    platform = Platform.from_dict(desc.get("platform"))
    return _annotations(desc).get(ANNOTATION_DOCKER_REFERENCE_TYPE) == "attestation-manifest" or \
        (platform is not None and platform.os == "unknown")


def index_manifests(index, where: str) -> List[dict]:
    """The entries an index lists, each a descriptor of the right shape (``descriptor_shape``); an index
    without a list of them is an error. Whether an entry's digest and size are right is checked when it
    is used (``check_descriptor``)."""
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list):
        raise ArchiveError("%s: the index has no manifests list" % where)
    for desc in manifests:
        descriptor_shape(desc, where)
    return manifests


def artifact_type(desc: dict, manifest: Optional[dict] = None) -> Optional[str]:
    """What an entry is when it is an artifact (a signature, an SBOM, a Helm chart...) rather than an
    image: its artifactType, or its config's media type; None for an image. The one rule every reader
    (registry, layout, archive, ``docker save``) and writer classifies a manifest by, as containers/image
    does: a Docker v2 schema 2 manifest is always an image, whatever its config's media type says
    (Docker's format has no artifacts; older skopeo and registries wrote application/octet-stream
    there); an OCI manifest is an image when its config is an image config's (OCI's, or Docker's as
    mixed manifests have it) and no artifactType says otherwise. An artifactType that names an image
    config's type is no artifact's: go-containerregistry and the referrers API put the config's media
    type in every descriptor's artifactType, images' included."""
    manifest = manifest or {}
    kind = manifest.get("mediaType") or desc.get("mediaType")
    if kind == OCI_ARTIFACT_MANIFEST:
        stated = desc.get("artifactType") or manifest.get("artifactType")
        return stated if isinstance(stated, str) and stated else OCI_ARTIFACT_MANIFEST
    if kind == DOCKER_MANIFEST:
        return None
    for value in (desc, manifest):
        stated = value.get("artifactType")
        if isinstance(stated, str) and stated and stated not in IMAGE_CONFIG_TYPES:
            return stated
    config = manifest.get("config")
    media_type = config.get("mediaType") if isinstance(config, dict) else None
    return media_type if isinstance(media_type, str) and media_type not in IMAGE_CONFIG_TYPES else None


def entry_problem(desc: dict, media_type, manifest: Optional[dict], where: str) -> Optional[ArchiveError]:
    """Why an index entry is not an image zeroimage can use, said as what it is; None for an image."""
    digest = desc.get("digest")
    kind = artifact_type(desc, manifest)
    if kind is not None:
        return ArchiveError("%s: %s is an artifact (%s), not an image" % (where, digest, outside_text(kind, 100)))
    if media_type in DOCKER_SCHEMA1 or (manifest or {}).get("schemaVersion") == 1:
        return ArchiveError("%s: %s is a Docker schema 1 manifest, which zeroimage does not read; "
                            "re-push or re-save it with a current tool" % (where, digest))
    if media_type not in IMAGE_MANIFEST_TYPES + INDEX_TYPES:
        return ArchiveError("%s: %s is a %s, not an image" % (
            where, digest, outside_text(media_type, 100) if isinstance(media_type, str) else "manifest of unknown type"))
    return None


def walk_index(index: dict, source, where: str, ref_name: str = "", depth: int = 0) -> List[Candidate]:
    """Every image manifest reachable from ``index``, through nested indexes, with its platform: the
    descriptor's, or else the one its config names. Attestations are left out.

    An entry that cannot be used (an artifact, a schema 1 manifest, a descriptor or blob that is
    wrong) is a Candidate with no platform and its error as ``problem``: it stops nothing while its
    siblings are read, and ``select_manifest`` raises it only when nothing else was there to choose
    (so an entry whose manifest ``source`` does not hold is one too).

    The one index walker, for archives, layout directories and registries alike: ``source`` has
    ``has(desc)``, ``read_manifest(desc)`` and ``read_small_blob(desc)`` (bytes, verified).
    """
    if depth > MAX_INDEX_DEPTH:
        raise ArchiveError("%s: indexes nested more than %d deep" % (where, MAX_INDEX_DEPTH))
    found = []
    for desc in index_manifests(index, where):
        name = ref_name or descriptor_name(desc)
        try:
            found += _walk_entry(desc, source, where, name, depth)
        except (ArchiveError, DigestMismatchError) as e:
            found.append(Candidate(desc, None, name, e))
    return found


def _walk_entry(desc: dict, source, where: str, name: str, depth: int) -> List[Candidate]:
    if is_attestation(desc):
        return []
    check_descriptor(desc, where)
    if not source.has(desc):        # docker save lists platforms it did not save: said only when asked for
        platform = Platform.from_dict(desc.get("platform"))
        return [Candidate(desc, platform, name, ArchiveError("%s lists the image %s%s but does not hold its manifest"
                                                             % (where, desc["digest"], " (%s)" % platform if platform else "")))]
    media_type, manifest = desc.get("mediaType"), None
    if media_type is None or artifact_type(desc) is not None:   # the manifest says what it is
        manifest = manifest_object(source.read_manifest(desc), "%s: manifest %s" % (where, desc["digest"]))
        media_type = manifest.get("mediaType") or (OCI_INDEX if "manifests" in manifest else OCI_MANIFEST)
    if media_type in INDEX_TYPES and artifact_type(desc) is None:
        nested = manifest or manifest_object(source.read_manifest(desc), "%s: index %s" % (where, desc["digest"]))
        return walk_index(nested, source, where, name, depth + 1)
    problem = entry_problem(desc, media_type, manifest, where)
    if problem is not None:
        raise problem
    platform = Platform.from_dict(desc.get("platform"))
    if platform is None:
        manifest = manifest or manifest_object(source.read_manifest(desc), "%s: manifest %s" % (where, desc["digest"]))
        problem = entry_problem(desc, media_type, manifest, where)
        if problem is not None:
            raise problem
        platform = _config_platform(source, desc, manifest, where)
        if platform is None:
            raise ArchiveError("%s: image %s names no platform (no os and architecture in its config)"
                               % (where, desc["digest"]))
    return [] if platform.os == "unknown" else [Candidate(desc, platform, name)]


def _config_platform(source, desc: dict, manifest: dict, where: str) -> Optional[Platform]:
    config_desc = manifest.get("config")
    check_descriptor(config_desc, "%s: manifest %s" % (where, desc["digest"]))
    config = parse_json(source.read_small_blob(config_desc), "%s: config %s" % (where, config_desc["digest"]))
    return Platform.from_dict(config)


# ---- Compression ----

GZIP_CHUNK = 1024 * 1024         # the unit of parallel compression
GZIP_WINDOW = 32 * 1024          # deflate's window: each chunk is primed with the 32 KiB before it


def _deflate_chunk(data: bytes, primer: bytes, level: int, last: bool) -> Tuple[bytes, bytes]:
    """One chunk as raw deflate, primed with the bytes before it, ending on a byte boundary
    (a full flush) or, for the last chunk, finishing the stream: two pieces, written in order (not
    joined: a copy of every chunk in flight)."""
    if primer:
        deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 8, zlib.Z_DEFAULT_STRATEGY, primer)
    else:
        deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 8)
    return deflate.compress(data), deflate.flush(zlib.Z_FINISH if last else zlib.Z_FULL_FLUSH)


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
            for piece in _deflate_chunk(chunk, primer, self._level, last):
                self._out.write(piece)
            return
        if self._pool is None:
            self._pool = concurrent_futures.ThreadPoolExecutor(self._threads, thread_name_prefix="zeroimage-gzip")
        self._pending.append(self._pool.submit(_deflate_chunk, chunk, primer, self._level, last))
        while len(self._pending) > self._threads or (last and self._pending):
            for piece in self._pending.popleft().result():
                self._out.write(piece)

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
        # Once only: a join that a stop signal broke into can leave its worker's lock taken (Python
        # before 3.13), and joining it again would wait forever.
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


class _ZstdWriter:
    """One zstd frame (``compression.zstd``, Python 3.14+), written as the data comes: the same bytes
    for the same data, level and zstd library (one thread: zstd's own workers are left off)."""

    def __init__(self, out, level: int, module):
        self._out, self._compressor = out, module.ZstdCompressor(level)

    def write(self, data) -> int:
        self._out.write(self._compressor.compress(data))
        return len(data)

    def close(self) -> None:
        self._out.write(self._compressor.flush())

    def abort(self) -> None:
        pass


class Codec(NamedTuple):
    """One way a tar is stored: its layer media types in each family, how its stream begins, the
    standard-library module that reads it (and, for a codec zeroimage writes, the levels it takes)."""

    name: str                       # as --compression says it; "none" for a plain tar
    media_types: Tuple[Tuple[str, Optional[str]], ...]     # (OCI, Docker) pairs, the written one first; no Docker name: None
    magic: bytes                    # the first bytes of its stream (b"" for a plain tar: anything else)
    module: str                     # the module that reads it ("" for none needed)
    since: Tuple[int, int] = (3, 8)                 # the first Python whose standard library has that module
    levels: Optional[Tuple[int, int, int]] = None   # (least, most, default) where zeroimage writes it

    def media_type(self, family: Dict[str, str]) -> Optional[str]:
        """This codec's (first) layer media type in ``family``; None where the family has no name for it."""
        oci, docker = self.media_types[0] if self.media_types else (None, None)
        return docker if family["manifest"] == DOCKER_MANIFEST else oci


# The one table of compressions: layers (plain tar, gzip, zstd) and the archives tarfile reads too
# (.tar.gz, .tar.bz2, .tar.xz). A plain tar is last: it is what begins with none of the others' bytes.
CODECS = (
    Codec("gzip", ((OCI_LAYER_GZIP, DOCKER_LAYER_GZIP),
                   ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")),
          b"\x1f\x8b", "gzip", levels=(0, 9, 6)),
    Codec("zstd", ((OCI_LAYER_ZSTD, None), ("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", None)),
          b"\x28\xb5\x2f\xfd", "compression.zstd", (3, 14), levels=(1, 22, 3)),
    Codec("bzip2", (), b"BZh", "bz2"),
    Codec("xz", (), b"\xfd7zXZ\x00", "lzma"),
    Codec("none", ((OCI_LAYER, DOCKER_LAYER), ("application/vnd.oci.image.layer.nondistributable.v1.tar", None)),
          b"", ""),
)
WRITTEN_CODECS = tuple(codec.name for codec in CODECS if codec.levels)      # what --compression chooses from
# The same layer bytes, described in each family (zstd has no Docker name and stays as it is).
LAYER_TYPE_PAIRS = tuple(pair for codec in CODECS for pair in codec.media_types if pair[1])


def codec_named(name: str) -> Codec:
    """The codec called ``name`` (UsageError for none)."""
    for codec in CODECS:
        if codec.name == name:
            return codec
    raise UsageError("`compression` is %s, not %s" % (" or ".join(WRITTEN_CODECS), outside_text(repr(name), 50)))


def layer_codec(media_type) -> Optional[Codec]:
    """The codec of a layer of ``media_type`` (OCI's or Docker's name); None for a type that is no layer's."""
    for codec in CODECS:
        if isinstance(media_type, str) and any(media_type in pair for pair in codec.media_types):
            return codec
    return None


def codec_of_bytes(head: bytes) -> Codec:
    """The codec a stream beginning with ``head`` (its first 6 bytes or more) is in: a plain tar for none."""
    return next(codec for codec in CODECS if head.startswith(codec.magic))


def codec_module(codec: Codec):
    """The module that reads and writes ``codec`` in this Python, imported now; None where it has none."""
    if not codec.module:
        return None
    try:
        with _IMPORT_LOCK:
            return importlib.import_module(codec.module)
    except ImportError:
        return None


def _python_version() -> str:
    return "%d.%d" % sys.version_info[:2]


def codec_problem(codec: Codec, verb: str = "decompress") -> Optional[str]:
    """Why this Python cannot ``verb`` (decompress, compress) ``codec``: one phrase, or None when it can."""
    if not codec.module or codec_module(codec) is not None:
        return None
    if sys.version_info[:2] < codec.since:
        return "this Python (%s) cannot %s %s; Python %d.%d or newer can" % (
            _python_version(), verb, codec.name, codec.since[0], codec.since[1])
    return "this Python (%s) has no %s module to %s %s with" % (_python_version(), codec.module, verb, codec.name)


def check_codec_readable(codec: Codec, what: str, advice: str = "") -> Codec:
    """``codec`` when this Python can decompress it; otherwise the one ArchiveError every reader of
    compressed data says, before any byte of it is read: WHAT is CODEC-compressed and why this Python
    cannot read it (``codec_problem``), then ``advice``."""
    problem = codec_problem(codec)
    if problem:
        raise ArchiveError("cannot read %s: it is %s-compressed and %s%s" % (what, codec.name, problem, advice))
    return codec


def check_layer_readable(desc: dict, what: str, advice: str = "") -> Codec:
    """The codec of the layer ``desc`` describes, when this Python can read it; ArchiveError otherwise
    (a type that is no layer's, or a compression the standard library here lacks), said before any
    byte of it is read."""
    media_type = desc.get("mediaType") if isinstance(desc, dict) else None
    codec = layer_codec(media_type) if isinstance(media_type, str) else None
    if codec is None:
        raise ArchiveError("cannot read %s: its type is %s%s" % (what, outside_text(media_type, 100), advice))
    return check_codec_readable(codec, what, advice)


def open_layer(desc: dict, raw, what: str):
    """The one reader of a layer's tar: ``raw`` (its stored bytes) decompressed as the codec of its
    media type says (``check_layer_readable``); a plain tar is ``raw`` itself. Closing the result
    leaves ``raw`` open."""
    codec = check_layer_readable(desc, what)
    return codec_module(codec).open(raw, "rb") if codec.module else raw


class _Inflater:
    """A codec's decompressor fed piece by piece (``feed`` yields what each piece decompresses to, at
    most CHUNK_SIZE at a time: a bomb never sits in memory); streams one after another (gzip members,
    zstd frames) are read as one. ``ended``: the input ended where a stream did."""

    _CLASSES = {"zstd": "ZstdDecompressor", "bzip2": "BZ2Decompressor", "xz": "LZMADecompressor"}

    def __init__(self, codec: Codec, module):
        self._codec, self._module = codec, module
        self._decompressor = self._new()

    def _new(self):
        if self._codec.name == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)      # (what gzip.GzipFile reads with)
        return getattr(self._module, self._CLASSES[self._codec.name])()

    @property
    def ended(self) -> bool:
        return self._decompressor.eof

    def feed(self, pending: bytes):
        while True:
            if self._decompressor.eof:      # a stream ended: what follows it is the next one's
                if not pending:
                    return
                self._decompressor = self._new()
            d = self._decompressor
            out = d.decompress(pending, CHUNK_SIZE)
            if out:
                yield out
            if d.eof:
                pending = d.unused_data
                continue
            if hasattr(d, "unconsumed_tail"):      # zlib's: input left over, or output held back
                pending = d.unconsumed_tail
                if not pending and len(out) < CHUNK_SIZE:
                    return
            else:                                   # the others keep their input and say when they need more
                pending = b""
                if d.needs_input:
                    return


class Compression(NamedTuple):
    """How new layers are compressed: a codec of WRITTEN_CODECS and its level (None: the codec's default)."""

    codec: str = "gzip"
    level: Optional[int] = None

    @classmethod
    def of(cls, value=None, level: Optional[int] = None) -> "Compression":
        """A Compression from what callers give: one, a codec's name, or (as before) a gzip level."""
        if isinstance(value, Compression):
            return value if level is None else value._replace(level=level)
        if isinstance(value, int) and not isinstance(value, bool):
            return cls("gzip", value)
        return cls(value or "gzip", level)

    def check(self) -> "Compression":
        """This value, with its level filled in, when this Python writes it (UsageError otherwise)."""
        codec = codec_named(self.codec)
        if not codec.levels:
            raise UsageError("`compression` is %s, not %s" % (" or ".join(WRITTEN_CODECS), codec.name))
        least, most, default = codec.levels
        level = default if self.level is None else self.level
        if isinstance(level, bool) or not isinstance(level, int) or not least <= level <= most:
            raise UsageError("`compression_level` must be %d to %d%s" % (
                least, most, "" if codec.name == "gzip" else " for %s" % codec.name))
        problem = codec_problem(codec, "compress")
        if problem:
            raise UsageError("`compression=%s`: %s" % (codec.name, problem))
        return self._replace(level=level)

    @property
    def media_type(self) -> str:
        """The OCI media type of the layers it writes."""
        return codec_named(self.codec).media_types[0][0]

    def settings(self) -> list:
        """What the bytes it writes depend on besides the data (for the layer cache's key)."""
        if self.codec == "gzip":
            return [self.level, GZIP_CHUNK, zlib.ZLIB_RUNTIME_VERSION]
        return [self.codec, self.level, getattr(codec_module(codec_named(self.codec)), "zstd_version", None)]

    def writer(self, out):
        """A writer (``write``, ``close`` to finish, ``abort`` to give up) compressing into ``out``."""
        checked = self.check()
        if checked.codec == "gzip":
            return GzipWriter(out, checked.level)
        return _ZstdWriter(out, checked.level, codec_module(codec_named(checked.codec)))


def compress_stream(fill: Callable[[object], None], out, compression: Compression, task: Optional[Task] = None,
                    cancelled: Optional[threading.Event] = None) -> Tuple[str, str, int]:
    """The one compressing pipeline: ``fill(writer)`` writes the uncompressed bytes, compressed into
    ``out`` with ``compression``; returns (digest of the uncompressed bytes, digest, size of the
    compressed). Once ``cancelled`` is set it stops (CancelledError) before the next piece."""
    compressed = HashingWriter(out)
    writer = compression.writer(compressed)
    uncompressed = HashingWriter(_Metered(writer, task, cancelled))
    try:
        fill(uncompressed)
        writer.close()
    finally:
        writer.abort()
    return uncompressed.digest, compressed.digest, compressed.size


# ---- Layers ----

class LayerEntry(NamedTuple):
    """One member of a layer: a directory, a file (from bytes or a host path), a symlink, or a hard
    link to a file earlier in the layer (``linkname`` its path in the image)."""

    path: str                     # inside the image, absolute: /etc/passwd
    kind: str = "file"            # "dir", "file", "symlink" or "hardlink"
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    data: Optional[bytes] = None  # file contents, or...
    source: object = None         # ...a host path or an open binary file, read as the layer is written
    linkname: str = ""
    implied: bool = False         # a directory only named as a destination: the base's own, if it has one


class Blob(NamedTuple):
    """Something to put in an image: its digest, size and a way to open it for reading."""

    digest: str
    size: int
    open: object                  # () -> readable file object, verified or trusted
    source: Optional[Tuple[str, str]] = None   # (registry, repository) it can be mounted from


class LayerResult(NamedTuple):
    blob: Blob
    diff_id: str
    media_type: str = OCI_LAYER_GZIP        # (its OCI name: said in the image's family when it is put in one)


def image_path(path: str) -> str:
    """An absolute path in the image, normalised: ``//srv/../x/`` is ``/x``. (posixpath keeps a
    leading ``//``, which POSIX leaves to the implementation; an image has one root.)"""
    return "/" + posixpath.normpath("/" + path).lstrip("/")


def layer_member_path(name: str) -> str:
    """A layer member's name as its absolute path in the image, as the image spec and runtimes read it
    (``./a``, ``/a`` and ``a//b/`` are ``/a`` and ``/a/b``). A name with a ``..`` component (it would
    climb out of the root, or through a link: a lexical clean and the kernel disagree) or a NUL is
    refused with ValueError, which ``layer_tar``'s guard says as one line naming the layer. Every
    reader of a layer's members (``scan_layer``, ``export``) names them through it."""
    parts = name.split("/")
    if ".." in parts or "\0" in name:
        raise ValueError("a member named %s has %s" % (outside_text(repr(name), 200),
                                                       "a '..' component" if ".." in parts else "a NUL character"))
    return image_path(name)


def with_parents(entries: Sequence[LayerEntry], below: Optional[Dict[str, LayerEntry]] = None) -> List[LayerEntry]:
    """Every parent directory made explicit, sorted so parents come first. A parent (or a directory
    only named as a destination) that the layers ``below`` hold keeps their mode and owner, as
    Docker's COPY leaves /tmp 1777; one they lack is 0755, root. A parent that is a file or a symlink
    below is an error: the entry would replace it (a symlinked /bin) or could not be unpacked."""
    below = below or {}
    by_path = {}
    for entry in entries:
        if entry.path != "/":           # the root is the base's: never a member of its own
            by_path[entry.path] = _as_below(entry, below) if entry.implied else entry
    for entry in entries:
        parent = posixpath.dirname(entry.path)
        while parent != posixpath.dirname(parent) and parent not in by_path:
            by_path[parent] = _as_below(LayerEntry(parent, "dir", 0o755), below, entry.path)
            parent = posixpath.dirname(parent)
    return [by_path[p] for p in sorted(by_path)]


def _as_below(entry: LayerEntry, below: Dict[str, LayerEntry], child: Optional[str] = None) -> LayerEntry:
    there = below.get(entry.path)
    if there is None:
        return entry._replace(implied=False)
    if there.kind != "dir":
        raise UsageError("%s would go inside %s, which the base has as %s%s; give a path %s" % (
            child or entry.path + "/", entry.path, _kind_words(there),
            " to %s" % there.linkname if there.kind == "symlink" else "",
            "under the link's target" if there.kind == "symlink" else "elsewhere"))
    return LayerEntry(entry.path, "dir", there.mode, there.uid, there.gid)


def _kind_words(entry: LayerEntry) -> str:
    return {"dir": "a directory", "symlink": "a symlink", "hardlink": "a file"}.get(entry.kind, "a file")


def paths_to_ask(entries: Sequence[LayerEntry]) -> List[str]:
    """What the base must be asked about for a layer: every path of it and every parent, unless the
    layer is only regular files at the root (the usual /app): then nothing, and no base is read."""
    if all(entry.kind == "file" and posixpath.dirname(entry.path) == "/" for entry in entries):
        return []
    paths = set()
    for entry in entries:
        path = entry.path
        while path != posixpath.dirname(path):
            paths.add(path)
            path = posixpath.dirname(path)
    return sorted(paths)


def check_over_base(entries: Sequence[LayerEntry], below: Dict[str, LayerEntry]) -> None:
    """A layer's own entries against what the base holds at their paths: a directory of the base is
    never replaced by a file or link (its contents would vanish), nor a base's symlink by a directory
    (a merged /usr's /bin would become a directory holding only the new files)."""
    for entry in entries:
        there = below.get(entry.path)
        if there is None or entry.implied:
            continue
        if there.kind == "dir" and entry.kind != "dir":
            raise UsageError("%s would replace the base's directory %s with %s; give a path inside it, like %s/NAME"
                             % (entry.path, entry.path, _kind_words(entry), entry.path))
        if there.kind == "symlink" and entry.kind == "dir":
            raise UsageError("%s would replace the base's symlink %s (to %s) with a directory; put the files "
                             "under the link's target" % (entry.path, entry.path, there.linkname))


class _EndsOnce:
    """A stream that may be asked again after its end only a few times: tarfile skips a member's data
    in a stream by reading it, so a size field of 2^62 made it read nothing for ever."""

    def __init__(self, stream):
        self._stream, self._ended = stream, 0

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        if not data and n != 0:
            self._ended += 1
            if self._ended > 16:
                raise EOFError("a member's data runs past the end of the layer")
        return data


MAX_TAR_RECORD = 1 << 20       # bytes of one PAX or GNU long-name record (a path, its attributes)


def _bounded_tarinfo() -> type:
    """A tar header as tarfile reads it, with one bound: tarfile reads a PAX or GNU long-name record
    whole into memory, so one that claims more than MAX_TAR_RECORD (a 1.5 MB gzip layer can claim
    1.5 GiB) is refused first, as damage. Every tar zeroimage reads is read with it. (The class is
    made at the first read: tarfile is imported only by what reads or writes a tar.)"""
    if "tarinfo" not in _BOUNDED_TAR:
        records = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                   tarfile.SOLARIS_XHDTYPE)

        class BoundedTarInfo(tarfile.TarInfo):
            def _proc_member(self, tar):
                if self.type in records and self.size > MAX_TAR_RECORD:
                    raise ValueError("a tar header record of %d bytes (the limit is %d)" % (self.size, MAX_TAR_RECORD))
                return super()._proc_member(tar)

        _BOUNDED_TAR["tarinfo"] = BoundedTarInfo
    return _BOUNDED_TAR["tarinfo"]


_BOUNDED_TAR = {}


class _Hashed:
    """A reader that hashes what passes through it."""

    def __init__(self, stream, algorithm: str):
        self._stream, self.hash = stream, _new_hash(algorithm)

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self.hash.update(data)
        return data


@contextlib.contextmanager
def layer_tar(desc: dict, blob: Blob, what: str, cancelled: Optional[threading.Event] = None,
              diff_id: Optional[str] = None):
    """The one reader of a layer's members: the layer ``desc`` describes (``open_layer``: plain tar,
    gzip, zstd where this Python has it), opened as a tarfile read once in order (``for member in tar``).
    Whatever the decompressor or tarfile raises on damaged data is one line naming ``what``
    (``_damaged_input``); after the block the layer is read to its end, so its digest is checked
    before what was found in it is used. With ``diff_id`` (the config's), what it decompresses to is
    read to its end too and must hash to it (DigestMismatchError), as umoci checks it."""
    check_layer_readable(desc, what)
    with contextlib.closing(blob.open()) as raw:
        checked = _Checked(raw, cancelled)
        with _damaged_input(what, "layer"):
            stream = open_layer(desc, checked, what)
            hashed = _Hashed(stream, parse_digest(diff_id)[0]) if diff_id else stream
            with tarfile.open(fileobj=_EndsOnce(hashed), mode="r|", tarinfo=_bounded_tarinfo()) as tar:
                yield tar
            if diff_id:
                while hashed.read(CHUNK_SIZE):
                    pass
                actual = "%s:%s" % (parse_digest(diff_id)[0], hashed.hash.hexdigest())
                if actual != diff_id:
                    raise DigestMismatchError(what + " (its diff_id, from the config)", diff_id, actual)
        while checked.read(CHUNK_SIZE):     # to its end: the blob's digest is checked there
            pass


def scan_layer(tar, wanted: Sequence[str], found: Dict[str, LayerEntry]) -> None:
    """Apply one layer (its members, from ``layer_tar``) to ``found``, what each path in ``wanted`` is in
    the layers below: first its whiteouts (which remove only what lower layers hold), then its entries
    (one that is not a directory ends what was beneath that path)."""
    wanted, removed, entries = set(wanted), [], []
    for member in tar:
        path = layer_member_path(member.name)
        name, parent = posixpath.basename(path), posixpath.dirname(path)
        if name == ".wh..wh..opq":
            removed.append(parent.rstrip("/") + "/")
        elif name.startswith(".wh."):
            removed.append(posixpath.join(parent, name[4:]))
        elif path in wanted:
            kind = "dir" if member.isdir() else "symlink" if member.issym() else "file"
            entries.append(LayerEntry(path, kind, member.mode & 0o7777, member.uid, member.gid,
                                      linkname=member.linkname if member.issym() else ""))
    for gone in removed:            # a path, or "dir/" for everything under dir (an opaque directory)
        _forget(found, gone.rstrip("/"), keep_top=gone.endswith("/"))
    for entry in entries:
        if entry.kind != "dir":
            _forget(found, entry.path, keep_top=True)
        found[entry.path] = entry


def _forget(found: Dict[str, LayerEntry], path: str, keep_top: bool) -> None:
    """Drop ``path`` (unless ``keep_top``) and everything under it."""
    under = path.rstrip("/") + "/"
    for known in [p for p in found if p.startswith(under) or (p == path and not keep_top)]:
        del found[known]


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

    _TYPES = {"dir": b"5", "file": b"0", "symlink": b"2", "hardlink": b"1"}

    def __init__(self, out):
        self._out = out

    @staticmethod
    def _names(entry: LayerEntry) -> Tuple[str, str]:
        name = entry.path.lstrip("/") + ("/" if entry.kind == "dir" else "")
        return name, entry.linkname.lstrip("/") if entry.kind == "hardlink" else entry.linkname  # a member's name

    @classmethod
    def _pax(cls, entry: LayerEntry, size: int) -> bytes:
        """The PAX records a member needs (b"" for none)."""
        name, linkname = cls._names(entry)
        pax = []
        for key, value, limit in (("path", name, 100), ("linkpath", linkname, 100)):
            if len(value.encode("utf-8")) > limit or not value.isascii():
                pax.append(_pax_record(key, value))
        for key, value, limit in (("size", size, 0o77777777777), ("uid", entry.uid, 0o7777777),
                                  ("gid", entry.gid, 0o7777777)):
            if value > limit:
                pax.append(_pax_record(key, str(value)))
        return b"".join(pax)

    @classmethod
    def member_size(cls, entry: LayerEntry, size: int = 0) -> int:
        """How many bytes ``add(entry, size)`` writes: headers, records, data and padding."""
        records = cls._pax(entry, size)
        return (_BLOCK + len(records) + -len(records) % _BLOCK if records else 0) + _BLOCK + size + -size % _BLOCK

    def add(self, entry: LayerEntry, size: int = 0, src=None) -> None:
        name, linkname = self._names(entry)
        records = self._pax(entry, size)
        short = lambda text, n: text.encode("ascii", "replace")[:n]  # noqa: E731
        if records:
            self._out.write(_ustar_header(short("PaxHeaders/" + posixpath.basename(name.rstrip("/")), 100),
                                          0o644, 0, 0, len(records), b"x", b""))
            self._write_padded(records)
        self._out.write(_ustar_header(short(name, 100), entry.mode & 0o7777, min(entry.uid, 0o7777777),
                                      min(entry.gid, 0o7777777), min(size, 0o77777777777),
                                      self._TYPES[entry.kind], short(linkname, 100)))
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


def write_layer(entries: Sequence[LayerEntry], out, compression: Union[Compression, int] = Compression(),
                task: Optional[Task] = None, cancelled: Optional[threading.Event] = None, *,
                level: Optional[int] = None) -> Tuple[str, str, int]:
    """Write a compressed tar layer to ``out`` in one pass: (diff_id, digest, size). ``compression``
    (gzip by default) may be given as before, a gzip ``level``.

    The tar is sorted, parents explicit, owned by 0:0 unless said otherwise,
    with mtime 0 everywhere: the bytes depend only on paths, modes and contents. Once ``cancelled``
    is set it stops (CancelledError) before the next piece is compressed.
    """
    return compress_stream(lambda writer: _write_tar(entries, writer), out, Compression.of(compression, level),
                           task, cancelled)


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


def build_layer(entries: Sequence[LayerEntry], tmp, compression: Compression, cache: Optional["LayerCache"] = None,
                label: str = "layer", present=None, display: Optional[Display] = None,
                cancelled: Optional[threading.Event] = None) -> LayerResult:
    """Write a layer into ``tmp`` (an empty temporary file the caller closes); return it as a Blob.

    With a ``cache`` and ``present(digest, size) -> bool`` (for pushes): when the files are unchanged
    since a layer was last built from them (the tar is hashed to confirm it) and the registry
    already holds the blob that tar became, that blob is used and nothing is compressed.
    """
    def opener():
        tmp.seek(0)
        return _Unclosing(tmp)

    display = display or Display()

    def compress() -> Tuple[str, str, int]:
        task = display.task("compressing", label, _entries_size(entries))
        result = write_layer(entries, tmp, compression, task, cancelled)
        tmp.flush()
        task.finish()
        return result

    key = cache.key(entries, compression) if cache else None
    known = cache.get(key) if cache else None
    if known and present and layer_diff_id(entries) == known["diff_id"] and present(known["digest"], known["size"]):
        def lazy_opener():      # only if the blob vanished from the registry in the meantime
            if tmp.tell() == 0:
                _, digest, _ = compress()
                if digest != known["digest"]:
                    raise DigestMismatchError("the layer rebuilt from the cache", known["digest"], digest)
            return opener()
        return LayerResult(Blob(known["digest"], known["size"], lazy_opener), known["diff_id"],
                           compression.media_type)
    diff_id, digest, size = compress()
    if cache:
        cache.put(key, {"diff_id": diff_id, "digest": digest, "size": size})
    return LayerResult(Blob(digest, size, opener), diff_id, compression.media_type)


def _entries_size(entries: Sequence[LayerEntry]) -> int:
    """The size of the layer's tar as ``_write_tar`` writes it (its files as they are now), for progress:
    the total that the bytes done reach."""
    total = 2 * _BLOCK
    for entry in with_parents(entries):
        size = 0
        if entry.kind == "file" and entry.data is not None:
            size = len(entry.data)
        elif entry.kind == "file" and entry.source is not None:
            size = os.stat(entry.source).st_size if isinstance(entry.source, str) else \
                os.fstat(entry.source.fileno()).st_size
        total += TarWriter.member_size(entry, size)
    return total


def home_directory(environ) -> str:
    """The home directory as Docker finds it: HOME in ``environ`` (on Windows USERPROFILE, then HOME),
    else the user database's, else Python's guess (no user database on Windows)."""
    for name in ("USERPROFILE", "HOME") if _WINDOWS else ("HOME",):
        if environ.get(name):
            return environ[name]
    try:
        import pwd
        return pwd.getpwuid(os.getuid()).pw_dir
    except (ImportError, KeyError, AttributeError):     # (AttributeError: no os.getuid)
        return os.path.expanduser("~")


def _host_mode(st: os.stat_result) -> int:
    """The permission bits a file or directory on this host gives the image. Windows keeps no execute
    bit (nor group and other bits): there, as Docker's tar does, every one is 0755 (0555 read-only)."""
    mode = stat.S_IMODE(st.st_mode)
    return (mode & 0o755) | 0o111 if _WINDOWS else mode


def _cache_directory(environ=None) -> str:
    """Where zeroimage keeps its caches: $ZEROIMAGE_CACHE_DIR, else $XDG_CACHE_HOME/zeroimage, else
    ~/.cache/zeroimage (an empty variable counts as unset, as XDG says)."""
    environ = os.environ if environ is None else environ
    return environ.get("ZEROIMAGE_CACHE_DIR") or os.path.join(
        environ.get("XDG_CACHE_HOME") or os.path.join(home_directory(environ), ".cache"), "zeroimage")


class LayerCache:
    """What layers the same files made before: {diff_id, digest, size} under a key made of each
    file's identity (device, inode, size, mtime, ctime), path, mode and the compression settings.

    A hit is always confirmed by hashing the tar again, so a stale entry costs time, never a
    wrong image. Entries are tiny JSON files, at most ``max_entries`` of them: past that, the least
    recently used go. A cache that cannot be read or written is ignored.
    """

    VERSION = 2     # bump when the bytes a layer compresses to change (tar or a codec's writer)
    MAX_ENTRIES = 1000

    def __init__(self, directory: str, max_entries: int = MAX_ENTRIES):
        self.directory = directory
        self.max_entries = max_entries

    @classmethod
    def default(cls, environ=None) -> "LayerCache":
        """layers/ in ``_cache_directory``."""
        return cls(os.path.join(_cache_directory(environ), "layers"))

    def key(self, entries: Sequence[LayerEntry], compression: Union[Compression, int]) -> str:
        parts = [self.VERSION] + Compression.of(compression).check().settings()
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
        path = os.path.join(self.directory, key)
        try:
            with open(path, "rb") as f:
                entry = json.loads(f.read(4096).decode("utf-8"))
            if is_digest(entry["diff_id"]) and is_digest(entry["digest"]) and entry["size"] >= 0:
                os.utime(path)          # used now: the last to be evicted
                return entry
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
            pass            # (an entry that is not one is a miss: the layer is made again)
        return None

    def put(self, key: str, entry: dict) -> None:
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            with atomic_output(os.path.join(self.directory, key)) as f:
                f.write(canonical_json(entry))
            self._evict()
        except (OSError, ZeroImageError):
            pass                        # a cache, not a record: the next build compresses again

    def _evict(self) -> None:
        """Keep at most ``max_entries``: remove the least recently used (oldest mtime) beyond that."""
        with os.scandir(self.directory) as found:
            entries = [(e.stat().st_mtime_ns, e.name) for e in found if e.is_file() and not e.name.startswith(".")]
        for _, name in sorted(entries)[:max(0, len(entries) - self.max_entries)]:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.directory, name))


class GrowingFile:
    """A temporary file one thread writes (a layer as it is compressed) while another reads what is
    written so far (its upload, fed as it goes). ``on_start`` is called at the first write (no
    upload is begun for a layer never written: one the registry already has). The writer ends with
    ``finish(digest)``, or ``finish(None)`` to give the readers up; ``read_from`` waits for more.
    The file has one position, moved under one lock: a reader seeks to its offset and puts the
    writer's position back (a read at an offset without ``os.preadv``, which Windows lacks)."""

    def __init__(self, f, on_start: Optional[Callable[[], None]] = None,
                 cancelled: Optional[threading.Event] = None):
        self._f, self._on_start, self._cancelled = f, on_start, cancelled
        self._changed = threading.Condition()
        self._position = threading.Lock()      # held while the file's position is moved
        self.size, self.done, self.digest = 0, False, None

    def write(self, data) -> int:
        if self._on_start is not None:
            start, self._on_start = self._on_start, None
            start()
        with self._position:
            written = self._f.write(data)
            self._f.flush()         # what a reader is told of is in the file
        with self._changed:
            self.size += len(data)
            self._changed.notify_all()
        return written

    def finish(self, digest: Optional[str]) -> None:
        with self._changed:
            if not self.done:
                self.done, self.digest = True, digest
                self._on_start = None       # written later (a cached layer rebuilt): no upload begins
            self._changed.notify_all()

    def read_into(self, offset: int, buffer: bytearray) -> int:
        """Fill ``buffer`` from ``offset``: wholly, or (once the writer is done) with what is left; how
        many bytes. One buffer, reused: no new 4 MB object for every chunk."""
        with self._changed:
            while self.size < offset + len(buffer) and not self.done:
                if self._cancelled is not None and self._cancelled.is_set():
                    raise CancelledError()
                self._changed.wait(0.25)
            end = min(self.size, offset + len(buffer))
        with memoryview(buffer) as view, self._position:
            kept, done = self._f.tell(), 0
            try:
                self._f.seek(offset)
                while offset + done < end:
                    n = self._f.readinto(view[done:end - offset])
                    if not n:
                        raise OSError("the layer's temporary file is shorter than what was written to it")
                    done += n
            finally:
                self._f.seek(kept)
        return done

    def seek(self, *args) -> int:
        with self._position:
            return self._f.seek(*args)

    def tell(self) -> int:
        with self._position:
            return self._f.tell()

    def read(self, n: int = -1) -> bytes:
        with self._position:
            return self._f.read(n)

    def flush(self) -> None:
        with self._position:
            self._f.flush()


class _Unclosing:
    """A view of a file whose close() leaves the file open (for temp files read more than once)."""

    def __init__(self, f):
        self._f = f

    def read(self, n: int = -1) -> bytes:
        return self._f.read(n)

    def close(self) -> None:
        pass


def tree_entries(source: str, target: str, display: Optional[Display] = None, *, origin: str = "`add`",
                 leave_out: Sequence[str] = ()) -> List[LayerEntry]:
    """The entries of ``add`` SOURCE:TARGET: a file, or a directory tree with its symlinks kept as links
    and files linked to each other kept as hard links (stored once).

    Modes are kept; owners become 0:0 and times 0 like every entry.  A link given as SOURCE
    itself is followed, as Docker's COPY does.  ``TARGET/`` for a file means "into that directory".
    SOURCE's contents are copied, not its own mode: TARGET keeps the base's mode and owner when the
    base has it, else is 0755 as Docker's COPY makes it; ``SOURCE:/`` writes no entry for the root.
    Anything that cannot be read, and anything but files, directories and symlinks (FIFOs,
    sockets, devices), is an error naming it: an image must not silently lack part of a tree.
    ``origin`` is the option errors name; ``leave_out`` are names at the top of the tree not to copy.
    """
    def refuse(path: str, what: str) -> ZeroImageError:
        return ZeroImageError("%s %s: %s %s" % (origin, source, path, what))

    def readable_file(path: str, st: os.stat_result) -> None:
        if not stat.S_ISREG(st.st_mode):
            raise refuse(path, "is %s; only files, directories and symlinks can be added" % file_kind(st.st_mode))
        if not os.access(path, os.R_OK):
            raise refuse(path, "cannot be read (permission denied)")

    def unreadable_directory(error: OSError) -> None:
        raise refuse(error.filename or source, "cannot be read (%s)" % (error.strerror or error))

    def utf8(text: str, path: str, what: str) -> str:
        if not _is_utf8(text):
            raise refuse(path, "has a %s that is not UTF-8 (%r); %s" % (
                what, text, "change it" if what == "link target" else "rename it"))
        return text

    try:
        st = os.stat(source)
    except OSError as e:
        raise ZeroImageError("%s %s: %s" % (origin, source, e.strerror or e)) from e
    given = target
    if target.endswith("/") and not stat.S_ISDIR(st.st_mode):
        target += os.path.basename(source.rstrip("/" + os.sep))
    target = utf8(image_path(target), source, "destination")
    if not stat.S_ISDIR(st.st_mode):
        readable_file(source, st)
        if target == "/":
            raise UsageError("`add` %s:%s: a file cannot be the root; name a path like /%s" % (
                source, given, os.path.basename(source)))
        return [LayerEntry(target, "file", _host_mode(st), source=source)]
    entries = [] if target == "/" else [LayerEntry(target, "dir", 0o755, implied=True)]   # as COPY makes it
    inodes = collections.defaultdict(list)      # (device, inode) -> entries of files linked to each other
    for root, dirs, files in os.walk(source, onerror=unreadable_directory):   # links to dirs listed, not followed
        if root == source:
            dirs[:] = [name for name in dirs if name not in leave_out]
            files = [name for name in files if name not in leave_out]
        dirs.sort()
        for name in sorted(dirs + files):
            full = os.path.join(root, name)
            path = utf8(posixpath.join(target, *os.path.relpath(full, source).split(os.sep)), full, "name")
            try:
                st = os.lstat(full)
                linkname = utf8(os.readlink(full).replace(os.sep, "/"), full, "link target") \
                    if stat.S_ISLNK(st.st_mode) else ""         # (Windows' links say ..\lib: ../lib in the image)
            except OSError as e:
                raise refuse(full, "cannot be read (%s)" % (e.strerror or e)) from e
            if stat.S_ISLNK(st.st_mode):
                entries.append(LayerEntry(path, "symlink", 0o777, linkname=linkname))
            elif stat.S_ISDIR(st.st_mode):
                if not os.access(full, os.R_OK | os.X_OK):
                    raise refuse(full, "cannot be read (permission denied)")
                entries.append(LayerEntry(path, "dir", _host_mode(st)))
            else:
                readable_file(full, st)
                entries.append(LayerEntry(path, "file", _host_mode(st), source=full))
                if st.st_nlink > 1:
                    inodes[st.st_dev, st.st_ino].append(len(entries) - 1)
    for linked in inodes.values():      # the first in layer order holds the bytes; the others link to it
        linked.sort(key=lambda i: entries[i].path)
        first = entries[linked[0]].path
        for i in linked[1:]:
            entries[i] = entries[i]._replace(kind="hardlink", source=None, linkname=first)
    return entries


def check_layer_paths(groups: Sequence[Tuple[str, Sequence[LayerEntry]]]) -> None:
    """Every path of a layer comes from one source (directories may merge), and nothing is put
    inside a file or a symlink: otherwise tar, umoci and runtimes fail on the layer, or one source
    silently hides another. ``groups`` are (what gave the entries, entries); UsageError otherwise."""
    owners = {}
    for origin, entries in groups:
        for entry in entries:
            seen = owners.get(entry.path)
            if seen is not None and not (seen[1].kind == entry.kind == "dir"):
                raise UsageError("%s and %s both put something at %s (%s and %s); give each its own path" % (
                    seen[0], origin, entry.path, _kind_words(seen[1]), _kind_words(entry)))
            owners[entry.path] = (origin, entry)
    for path, (origin, entry) in sorted(owners.items()):
        parent = posixpath.dirname(path)
        while parent != posixpath.dirname(parent):
            holder = owners.get(parent)
            if holder is not None and holder[1].kind != "dir":
                raise UsageError("%s puts %s inside %s, which %s makes %s; give it another path" % (
                    origin, path, parent, holder[0], _kind_words(holder[1])))
            parent = posixpath.dirname(parent)


# ---- Images ----

class Image(NamedTuple):
    """An image: its manifest and config, its platform, and every blob it is made of (layers, then
    the config, then the manifest itself). A value: building on it makes a new one."""

    manifest: dict
    config: dict
    platform: Optional[Platform]
    blobs: List[Blob]
    media_type: str = ""

    @property
    def manifest_blob(self) -> Blob:
        return self.blobs[-1]

    @property
    def digest(self) -> str:
        return self.manifest_blob.digest

    @property
    def kind(self) -> str:
        """The manifest's media type."""
        return self.media_type or self.manifest.get("mediaType") or OCI_MANIFEST


class ImageIndex(NamedTuple):
    """An index (or Docker manifest list) of images or further indexes, in the order it lists them."""

    index: dict
    manifest_blob: Blob
    children: List[Union[Image, "ImageIndex"]]
    media_type: str = ""

    @property
    def digest(self) -> str:
        return self.manifest_blob.digest

    @property
    def kind(self) -> str:
        return self.media_type or self.index.get("mediaType") or OCI_INDEX


def _bytes_blob(digest: str, data: bytes) -> Blob:
    return Blob(digest, len(data), lambda: io.BytesIO(data))


def bytes_blob(data: bytes) -> Blob:
    return _bytes_blob(sha256_digest(data), data)


def tree_images(top: Union[Image, ImageIndex]) -> List[Image]:
    """Every image in a tree, in order."""
    if isinstance(top, Image):
        return [top]
    return [image for child in top.children for image in tree_images(child)]


def tree_blobs(top: Union[Image, ImageIndex]) -> List[Blob]:
    """Every blob of a tree, children before the index that lists them (the order a layout is written in)."""
    if isinstance(top, Image):
        return list(top.blobs)
    return [blob for child in top.children for blob in tree_blobs(child)] + [top.manifest_blob]


def tree_platforms(top: Union[Image, ImageIndex]) -> List[str]:
    """The platforms of a tree's images, attestations left out."""
    if isinstance(top, Image):
        return [str(top.platform)] if top.platform else []
    found = []
    for desc, child in zip(top.index.get("manifests") or [], top.children):
        if not is_attestation(desc):
            found += tree_platforms(child)
    return found


def _name_annotations(name: Reference) -> Dict[str, str]:
    problem = ref_name_problem(name.tag)
    if problem:
        raise UsageError("the tag %s; choose another tag" % problem)
    return {ANNOTATION_CONTAINERD_NAME: str(name), ANNOTATION_REF_NAME: name.tag}


def top_descriptor(top: Union[Image, ImageIndex], name: Reference) -> dict:
    """The descriptor index.json gives the tree, named ``name``."""
    platform = top.platform.to_dict() if isinstance(top, Image) and top.platform else None
    return descriptor(top.kind, top.digest, top.manifest_blob.size, annotations=_name_annotations(name),
                      platform=platform)


# -- construction: pure, base + layers + config -> image(s) and an index --


class BaseImage(NamedTuple):
    """What a build starts from: the config, the layers to carry over, the media-type family."""

    config: dict
    layers: List[Tuple[dict, Blob]]     # (descriptor as in the base manifest, blob)
    family: Dict[str, str]
    platform: Platform
    may_have_libc: bool                 # False for scratch and the minimal base
    name: str
    annotations: Dict[str, str] = types.MappingProxyType({})        # base.name / base.digest of this image
    index_annotations: Dict[str, str] = types.MappingProxyType({})  # the same for the base as named
    remote: bool = False                # a registry's: its layers are downloaded only to be copied


def _layer_type_in(family: Dict[str, str], media_type: Optional[str]) -> Optional[str]:
    """A base layer's media type said in the image's family, so one manifest never mixes OCI and Docker."""
    for oci, docker in LAYER_TYPE_PAIRS:
        if media_type in (oci, docker):
            return docker if family is DOCKER_FAMILY else oci
    return media_type


def _docker_descriptor(desc: dict) -> dict:
    """A descriptor as Docker's schemas have it: no annotations."""
    return {k: v for k, v in desc.items() if k != "annotations"}


def media_type_family(name: Optional[str]) -> Optional[Dict[str, str]]:
    """The family ``--media-types`` names ("docker" or "oci"); None for none asked (follow the base)."""
    if name is None:
        return None
    if name not in ("docker", "oci"):
        raise UsageError("`media_types` is docker or oci, not %s" % outside_text(repr(name), 50))
    return DOCKER_FAMILY if name == "docker" else OCI_FAMILY


def _family_name(family: Dict[str, str]) -> str:
    return "Docker" if family["manifest"] == DOCKER_MANIFEST else "OCI"


def _layers_in_family(family: Dict[str, str], layer_descs: Sequence[dict], where: str) -> List[dict]:
    """Layer descriptors said in ``family``; in Docker's, a layer Docker has no media type for (zstd) is refused."""
    converted = []
    for desc in layer_descs:
        desc = {k: v for k, v in desc.items() if v is not None}       # a null field is absent (a new manifest has none)
        if not _MEDIA_TYPE_RE.fullmatch(desc.get("mediaType") or ""):
            raise ArchiveError("%s: layer %s has the mediaType %s, not a media type (type/subtype)" % (
                where, desc.get("digest"), outside_text(repr(desc.get("mediaType")), 100)))
        media_type = _layer_type_in(family, desc.get("mediaType"))
        if family["manifest"] == DOCKER_MANIFEST:
            if isinstance(media_type, str) and media_type.startswith("application/vnd.oci."):
                raise ZeroImageError("%s: layer %s is %s, which Docker's media types cannot describe; keep "
                                     "OCI media types (`media_types=oci`), or use gzip layers" % (
                                         where, desc.get("digest"), outside_text(media_type, 100)))
            desc = _docker_descriptor(desc)
        converted.append(dict(desc, mediaType=media_type))
    return converted


def check_family_options(base: BaseImage, options: ImageOptions) -> None:
    """Docker's manifest formats have no annotations: ``annotations`` need a base in the OCI family."""
    if options.annotations and base.family["manifest"] == DOCKER_MANIFEST:
        raise ZeroImageError("`annotations`: the base %s is a Docker-format image, and Docker manifests have no "
                             "annotations; use `labels`, or a base in OCI format (skopeo copy --format oci ...)"
                             % outside_text(base.name, 200))


def assemble_image(base: BaseImage, added: Sequence[Tuple[LayerResult, str]], entrypoint: Sequence[str],
                   created: str, options: ImageOptions = ImageOptions(),
                   program_labels: Optional[Dict[str, str]] = None) -> Image:
    """Put new layers (each with its history line) on a base: config, manifest, and the blob list.
    Labels and annotations are as ``image_metadata`` resolves them from the base, ``program_labels``
    (the program's build info) and ``options``. Only an OCI manifest carries annotations (the base's
    name and digest, and ``options``'); the base manifest's own annotations describe the base and are
    never carried over."""
    family = base.family
    check_image_options(options)
    check_family_options(base, options)
    config = derive_config(base.config, base.platform,
                           [AddedLayer(layer.diff_id, why) for layer, why in added], entrypoint, created, options,
                           "the base %s" % base.name, program_labels, base.annotations)
    config_blob = bytes_blob(canonical_json(config))
    layer_descs = _layers_in_family(family, [desc for desc, _ in base.layers], "the base %s" % base.name)
    layer_descs += [descriptor(_layer_type_in(family, layer.media_type), layer.blob.digest, layer.blob.size)
                    for layer, _ in added]
    annotations = image_metadata(options, base_annotations=base.annotations)[1]
    if family["manifest"] == DOCKER_MANIFEST:
        annotations = None
    manifest = make_manifest(family, descriptor(family["config"], config_blob.digest, config_blob.size), layer_descs,
                             annotations)
    blobs = [blob for _, blob in base.layers] + [layer.blob for layer, _ in added]
    return Image(manifest, config, base.platform, blobs + [config_blob, bytes_blob(canonical_json(manifest))],
                 family["manifest"])


def make_image_index(images: Sequence[Image], family: Dict[str, str], annotations: Dict[str, str]) -> ImageIndex:
    """An index (or Docker manifest list, which has no annotations) of single-platform images."""
    index = make_index(family, [descriptor(i.kind, i.digest, i.manifest_blob.size, platform=i.platform.to_dict())
                                for i in images])
    if annotations and family["manifest"] != DOCKER_MANIFEST:
        index["annotations"] = dict(annotations)
    return ImageIndex(index, bytes_blob(canonical_json(index)), list(images), family["index"])


def convert_family(top: Union[Image, ImageIndex], family: Dict[str, str],
                   notes: Optional[List[str]] = None) -> Union[Image, ImageIndex]:
    """The same image or index with its manifests said in ``family`` (OCI or Docker v2 schema 2): the
    layer and config blobs stay byte for byte (only their descriptors' media types change), so only
    manifest digests change; what is already in the family is kept as it is, bytes and digest.

    Docker's schemas have no annotations, artifacts, zstd layers or nested lists: an attestation in an
    index is left out (said in ``notes``), anything else that cannot be said is refused."""
    if isinstance(top, Image):
        return _convert_image(top, family)
    docker = family["manifest"] == DOCKER_MANIFEST
    where = "index %s" % top.digest
    entries, children = [], []
    for desc, child in zip(index_manifests(top.index, where), top.children):
        if docker and is_attestation(desc):
            if notes is not None:
                notes.append("left out %s: an attestation, which a Docker manifest list cannot hold" % desc.get("digest"))
            continue
        if docker and isinstance(child, ImageIndex):
            raise ZeroImageError("%s lists another index (%s); a Docker manifest list holds only images"
                                 % (where, child.digest))
        converted = convert_family(child, family, notes)
        entry = dict(desc, mediaType=converted.kind, digest=converted.digest, size=converted.manifest_blob.size)
        if docker:
            platform = desc.get("platform") or (child.platform.to_dict() if child.platform else None)
            if not platform:
                raise ZeroImageError("%s: image %s names no platform, which a Docker manifest list needs"
                                     % (where, child.digest))
            entry = dict(entry, platform=platform)
            entry = {k: v for k, v in entry.items() if k in ("mediaType", "digest", "size", "platform", "urls")}
        entries.append(entry)
        children.append(converted)
    index = make_index(family, entries)
    if not docker and top.index.get("annotations"):
        index["annotations"] = top.index["annotations"]
    if index == top.index and all(a is b for a, b in zip(children, top.children)):
        return top
    return ImageIndex(index, bytes_blob(canonical_json(index)), children, family["index"])


def _convert_image(image: Image, family: Dict[str, str]) -> Image:
    where = "image %s" % image.digest
    manifest = image.manifest
    problem = entry_problem({"digest": image.digest}, image.kind, manifest, where)
    if problem is not None:
        raise ZeroImageError("cannot convert to %s media types: %s" % (_family_name(family), problem))
    if manifest.get("subject") is not None and family["manifest"] == DOCKER_MANIFEST:
        raise ZeroImageError("cannot convert to Docker media types: %s refers to another (a subject), "
                             "which Docker manifests cannot say" % where)
    kept = family["manifest"] == DOCKER_MANIFEST and manifest["config"].get("mediaType") in DOCKER_CONFIG_TYPES
    config_desc = manifest["config"] if kept else dict(manifest["config"], mediaType=family["config"])
    layers = _layers_in_family(family, manifest["layers"], where)
    converted = {"schemaVersion": 2, "mediaType": family["manifest"]}
    if family["manifest"] == DOCKER_MANIFEST:
        converted.update(config=_docker_descriptor(config_desc), layers=layers)
    else:
        converted.update({k: v for k, v in manifest.items() if k not in ("schemaVersion", "mediaType")})
        converted.update(config=config_desc, layers=layers)
    if converted == manifest:
        return image
    return image._replace(manifest=converted, blobs=image.blobs[:-1] + [bytes_blob(canonical_json(converted))],
                          media_type=family["manifest"])


def choose_image(candidates: Sequence[Candidate], platform: Optional[Platform], ref_name: Optional[str],
                 where: str) -> Candidate:
    """The image asked for: by ``platform`` and ``ref_name``; with no platform, the one image there is
    (of that name), else this machine's platform. Entries that cannot be used are not counted."""
    pool = [c for c in candidates if c.problem is None and (ref_name is None or ref_name in _ref_names(c.ref_name))]
    if platform is None and pool and len(set(c.descriptor["digest"] for c in pool)) == 1:
        return pool[0]
    return select_manifest(candidates, platform or host_platform(), ref_name, where)


def host_platform() -> Platform:
    """The platform of this machine, as ``docker pull`` picks by default."""
    return Platform.make("linux", os.uname().machine.lower()) if hasattr(os, "uname") else DEFAULT_PLATFORM


def select_platforms(candidates: Sequence[Candidate], platforms: Sequence[Optional[Platform]],
                     where: str) -> List[Candidate]:
    """The image for each platform asked for (None: as ``choose_image`` picks with none), each image
    once, in the order the index lists them, so the same choice gives the same index whatever order
    the platforms were named in. A platform the source lacks is an error naming those it has."""
    wanted = set(choose_image(candidates, platform, None, where).descriptor["digest"] for platform in platforms)
    chosen = collections.OrderedDict()
    for candidate in candidates:
        digest = candidate.descriptor.get("digest")
        if digest in wanted and digest not in chosen:
            chosen[digest] = candidate
    return list(chosen.values())


def selected_index(top: dict, chosen: Sequence[Candidate], images: Sequence[Image]) -> ImageIndex:
    """A new index of the images chosen from the index ``top``: a Docker manifest list when ``top`` is
    one, else an OCI index keeping ``top``'s annotations; each entry as ``top`` (or the index under it)
    lists it, with its platform filled in when only its config names it."""
    family = DOCKER_FAMILY if top.get("mediaType") == DOCKER_MANIFEST_LIST else OCI_FAMILY
    entries = []
    for candidate in chosen:
        desc = candidate.descriptor
        if Platform.from_dict(desc.get("platform")) is None:
            desc = dict(desc, platform=candidate.platform.to_dict())
        entries.append(_docker_descriptor(desc) if family is DOCKER_FAMILY else desc)
    index = make_index(family, entries)
    annotations = _string_map(top.get("annotations"))
    if annotations and family is OCI_FAMILY:
        index["annotations"] = annotations
    return ImageIndex(index, bytes_blob(canonical_json(index)), list(images), family["index"])


# -- valid or refused: what every writing verb checks before anything is written --

DOCKER_LAYER_TYPES = frozenset(docker for _, docker in LAYER_TYPE_PAIRS)


def check_writable(top: Union[Image, ImageIndex], where: str) -> None:
    """Refuse (ArchiveError naming ``where`` and the manifest) an image or index no valid image can be
    made of, whichever verb writes it (build, pull, push, copy) and wherever to: each image's manifest
    and config as ``build`` checks a base it reads (fields of their types, ``normal_base_config``), its
    config's rootfs.diff_ids one for each layer of its manifest, and media types of one family (a
    Docker manifest's config and layers Docker's; an OCI manifest's no Docker type; a Docker list
    lists Docker manifests only, an OCI index no Docker type). Artifacts (SBOMs, signatures) are
    held to the manifest's shape and media types that are media types, not to an image's config.
    Nothing is changed: what passes is written byte for byte."""
    if isinstance(top, ImageIndex):
        _check_writable_index(top, where)
        for child in top.children:
            check_writable(child, where)
        return
    manifest, said = top.manifest, "%s: image %s" % (where, top.digest)
    docker = top.kind == DOCKER_MANIFEST
    artifact = artifact_type({"mediaType": top.kind}, manifest) is not None      # (Docker's format has none)
    _no_nulls(manifest_shape(manifest, said), said)
    _check_written_parts(manifest, said)
    if docker and manifest.get("mediaType") != DOCKER_MANIFEST:
        raise ArchiveError("%s: a Docker manifest must say its mediaType (%s)" % (said, DOCKER_MANIFEST))
    if manifest.get("schemaVersion") != 2 or isinstance(manifest.get("schemaVersion"), bool):
        raise ArchiveError("%s: its schemaVersion is %s, not 2" % (said, outside_text(repr(manifest.get(
            "schemaVersion")), 40)))
    if manifest.get("mediaType") not in (None, top.kind):
        raise ArchiveError("%s: its mediaType %s is not %s, as it is listed" % (
            said, outside_text(manifest["mediaType"], 100), top.kind))
    if top.kind not in IMAGE_MANIFEST_TYPES:
        raise ArchiveError("%s: its mediaType %s is not an image manifest's (%s)" % (
            said, outside_text(repr(top.kind), 100), " or ".join(IMAGE_MANIFEST_TYPES)))
    check_descriptor(manifest.get("config"), said + ": its config")
    layers = _expect(manifest.get("layers"), "list", said + ": its layers")
    for desc in layers:
        check_descriptor(desc, said + ": its layers")
    types = [(manifest["config"].get("mediaType"), "config")] + [(d.get("mediaType"), "layer") for d in layers]
    for media_type, part in types:
        if not media_type or not _MEDIA_TYPE_RE.fullmatch(media_type):
            raise ArchiveError("%s: a %s descriptor's mediaType is %s, not a media type (type/subtype)"
                               % (said, part, outside_text(repr(media_type), 100)))
        if artifact:
            continue
        wrong = (media_type not in DOCKER_CONFIG_TYPES if part == "config" else media_type not in DOCKER_LAYER_TYPES) \
            if docker else media_type == DOCKER_CONFIG or media_type in DOCKER_LAYER_TYPES
        if wrong:
            raise ArchiveError("%s: its manifest is %s, with a %s of type %s: one manifest is of one family (OCI or "
                               "Docker); convert it with `push_archive(media_types=docker|oci)`" % (
                                   said, _family_name(DOCKER_FAMILY if docker else OCI_FAMILY), part,
                                   outside_text(str(media_type), 100)))
    if artifact:
        return
    config = normal_base_config(top.config, said)
    for key, value in sorted(config["config"].get("Labels", {}).items()):
        problem = _written_metadata_problem(key, value)
        if problem:
            raise ArchiveError("%s: its config has the label %s" % (said, problem))
    for field in ("os", "architecture"):
        if not config.get(field) or not isinstance(config[field], str):
            raise ArchiveError("%s: its config names no %s" % (said, field))
    if "created" in config and not is_rfc3339(config["created"]):
        raise ArchiveError("%s: its config's created is not an RFC 3339 time: %s" % (
            said, outside_text(repr(config["created"]), 60)))
    listed = top.platform.to_dict() if top.platform else {}
    for field in ("os", "architecture", "variant"):
        if field in listed and field in config and listed[field] != config[field]:
            raise ArchiveError("%s: it is listed for %s, but its config's %s is %s" % (
                said, top.platform, field, outside_text(repr(config[field]), 60)))
    if (top.config.get("rootfs") or {}).get("type") != "layers":
        raise ArchiveError("%s: its config's rootfs.type is not \"layers\"" % said)
    if len(config["rootfs"]["diff_ids"]) != len(layers):
        raise ArchiveError("%s: its config lists %d layers (rootfs.diff_ids) but its manifest has %d"
                           % (said, len(config["rootfs"]["diff_ids"]), len(layers)))


def _no_nulls(value: dict, said: str) -> None:
    """A manifest or index to write has no null field, nor do its descriptors (the image spec's
    schemas give each a type; readers that take null as absent are not all readers)."""
    parts = [(said, value)] + [("%s: its %s" % (said, field), desc) for field in ("config", "subject")
                               for desc in [value.get(field)] if isinstance(desc, dict)]
    parts += [("%s: one of its %s" % (said, field), desc) for field in ("layers", "manifests")
              for desc in value.get(field) or ()]
    for what, part in parts:
        for field, item in part.items():
            if item is None:
                raise ArchiveError("%s: its %s is null (absent, or a value: the image spec gives it a type)"
                                   % (what, outside_text(field, 100)))


# Keys under org.opencontainers. that an OCI specification defines: the image spec's and the artifact
# spec's (which signatures and SBOMs that tools attach still carry).
_DEFINED_OCI_KEYS = OCI_ANNOTATION_KEYS | {"org.opencontainers.artifact.created",
                                           "org.opencontainers.artifact.description"}


def _written_metadata_problem(key: str, value: str) -> Optional[str]:
    """Why an annotation or label read from elsewhere cannot be written on as it is (annotations.md,
    config.md), or None: an empty key, a key under org.opencontainers. that no OCI spec defines, a
    value of a defined key that breaks its rule."""
    shown = outside_text(repr(key), 100)
    if not key:
        return "an empty key"
    if key.startswith("org.opencontainers.") and key not in _DEFINED_OCI_KEYS:
        return "%s, a key under org.opencontainers. that the OCI specifications do not define (they reserve it)" % shown
    if key == "org.opencontainers.image.created" and not is_rfc3339(value):
        return "%s=%s, not an RFC 3339 time" % (shown, outside_text(repr(value), 60))
    if key == ANNOTATION_REF_NAME and ref_name_problem(value):
        return "%s=%s: %s" % (shown, outside_text(repr(value), 100), ref_name_problem(value))
    if key == ANNOTATION_BASE_DIGEST and digest_problem(value):
        return "%s=%s: %s" % (shown, outside_text(repr(value), 100), digest_problem(value))
    return None


def _check_written_parts(value: dict, said: str) -> None:
    """What descriptor.md and annotations.md ask of a manifest or index about to be written, beyond its
    shape: its annotations and each descriptor's (config, subject, layers, manifests) keep the rules of
    their keys; a descriptor's artifactType is a media type; its embedded ``data`` is its blob's bytes."""
    parts = [(said, value, False)] + [("%s: its %s" % (said, field), value.get(field), True)
                                      for field in ("config", "subject") if isinstance(value.get(field), dict)]
    parts += [("%s: one of its %s" % (said, field), desc, True) for field in ("layers", "manifests")
              for desc in value.get(field) or () if isinstance(desc, dict)]
    for what, part, is_descriptor in parts:
        for key, item in sorted(_string_map(part.get("annotations")).items()):
            problem = _written_metadata_problem(key, item)
            if problem:
                raise ArchiveError("%s has the annotation %s" % (what, problem))
        if not is_descriptor:
            continue
        artifact = part.get("artifactType")
        if artifact is not None and not (isinstance(artifact, str) and _MEDIA_TYPE_RE.fullmatch(artifact)):
            raise ArchiveError("%s has the artifactType %s, not a media type (type/subtype)"
                               % (what, outside_text(repr(artifact), 100)))
        if "data" in part and _embedded_data_problem(part):
            raise ArchiveError("%s embeds data that %s" % (what, _embedded_data_problem(part)))


def _embedded_data_problem(desc: dict) -> Optional[str]:
    """Why a descriptor's ``data`` (base64 of the blob, descriptor.md) is not its blob, or None."""
    data = desc.get("data")
    try:
        raw = base64.b64decode(data, validate=True) if isinstance(data, str) else None
    except ValueError:
        raw = None
    if raw is None:
        return "is not base64"
    try:
        verify_bytes(raw, desc.get("digest"), "data", desc.get("size"))
    except (ZeroImageError, ValueError):
        return "is not the blob its digest and size name"
    return None


def _check_writable_index(top: ImageIndex, where: str) -> None:
    said = "%s: index %s" % (where, top.digest)
    index = manifest_shape(top.index, said)
    # zeroimage's index of an image and its referrers (``with_referrers``) holds an image of either family
    # beside OCI artifacts, as index.json may: read as itself (its held index gone), it is written as it is
    holder = ANNOTATION_HELD in _string_map(index.get("annotations"))
    _no_nulls(index, said)
    _check_written_parts(index, said)
    if index.get("schemaVersion") != 2 or isinstance(index.get("schemaVersion"), bool):
        raise ArchiveError("%s: its schemaVersion is %s, not 2" % (said, outside_text(repr(index.get(
            "schemaVersion")), 40)))
    if top.kind not in INDEX_TYPES:
        raise ArchiveError("%s: its mediaType %s is not an index's (%s)" % (
            said, outside_text(repr(top.kind), 100), " or ".join(INDEX_TYPES)))
    docker = top.kind == DOCKER_MANIFEST_LIST
    for desc, child in zip(index_manifests(index, said), top.children):
        listed = desc.get("mediaType")
        if not listed or not _MEDIA_TYPE_RE.fullmatch(listed):
            raise ArchiveError("%s: the entry of %s has the mediaType %s, not a media type (type/subtype)"
                               % (said, child.digest, outside_text(repr(listed), 100)))
        platform = desc.get("platform") or {}
        for field in ("os", "architecture"):        # image-index.md: REQUIRED where a platform is given
            if platform and not (isinstance(platform.get(field), str) and platform[field]):
                raise ArchiveError("%s: the entry of %s has a platform without %s" % (said, child.digest, field))
        config = child.config if isinstance(child, Image) else {}
        for field in ("os", "architecture", "variant"):
            if field in platform and field in config and platform[field] != config[field]:
                raise ArchiveError("%s lists %s for %s %s, but its config says %s" % (
                    said, child.digest, field, outside_text(repr(platform[field]), 60),
                    outside_text(repr(config[field]), 60)))
        if listed != child.kind:
            raise ArchiveError("%s lists %s as %s, but it is %s" % (said, child.digest, outside_text(listed, 100),
                                                                    child.kind))
        if docker and child.kind != DOCKER_MANIFEST or not docker and not holder and child.kind in (
                DOCKER_MANIFEST, DOCKER_MANIFEST_LIST):
            raise ArchiveError("%s: %s lists %s, a %s: one index is of one family (OCI or Docker); convert it "
                               "with `push_archive(media_types=docker|oci)`" % (said, "a Docker manifest list" if docker else "an OCI index",
                                                            child.digest, child.kind))


def compress_layer(blob: Blob, tmp, compression: Union[Compression, int] = Compression(),
                   display: Optional[Display] = None, cancelled: Optional[threading.Event] = None, *,
                   level: Optional[int] = None) -> Blob:
    """An uncompressed layer compressed (``compression``: gzip by default, or as before a gzip
    ``level``) into ``tmp``, an empty temporary file the caller closes; it is read through its own
    verification (for a ``docker save`` layer, its diff_id), so a layer whose bytes are not what the
    config says is refused here."""
    task = (display or Display()).task("compressing", _short(blob.digest), blob.size)

    def fill(writer) -> None:
        with contextlib.closing(blob.open()) as src:
            copy_stream(src, writer)
    _, digest, size = compress_stream(fill, tmp, Compression.of(compression, level), task, cancelled)
    tmp.flush()
    task.finish()

    def opener():
        tmp.seek(0)
        return _Unclosing(tmp)
    return Blob(digest, size, opener)


def compressed_image(image: Image, compress: Callable[[Blob], Blob], compression: Compression = Compression()) -> Image:
    """``image`` with each uncompressed layer replaced by its compressed bytes (``compress``, e.g.
    ``compress_layer`` into a temporary file, with ``compression``: its media type): the manifest
    made again, so its digest is new; config and diff_ids stay."""
    layers, blobs = [], []
    for desc, blob in zip(image.manifest["layers"], image.blobs):
        media_type = desc.get("mediaType")
        if media_type in (DOCKER_LAYER, OCI_LAYER):
            blob = compress(blob)
            family = DOCKER_FAMILY if media_type == DOCKER_LAYER else OCI_FAMILY
            desc = dict(desc, mediaType=_layer_type_in(family, compression.media_type), digest=blob.digest,
                        size=blob.size)
        layers.append(desc)
        blobs.append(blob)
    manifest = dict(image.manifest, layers=layers)
    return image._replace(manifest=manifest, blobs=blobs + [image.blobs[-2], bytes_blob(canonical_json(manifest))])


def _family_of(image: Image) -> Dict[str, str]:
    return DOCKER_FAMILY if image.kind == DOCKER_MANIFEST else OCI_FAMILY


# ---- The minimal base ----

# Where hosts keep their CA bundle (Debian/Ubuntu, Fedora/RHEL, openSUSE, Alpine/BSD/macOS).
HOST_CA_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
    "/usr/local/etc/openssl/cert.pem",
)
IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
ZONEINFO_DIR = "/usr/share/zoneinfo"     # the zone database, on the host and in the image: where Go, glibc, musl look
ZONEINFO_LEFT_OUT = ("right",)          # leap-second variants: no clock keeps that time (Go's own copy omits them)

MINIMAL_USERS = types.MappingProxyType({       # the user database of the built-in base
    "/etc/passwd": ("root:x:0:0:root:/root:/sbin/nologin\n"
                    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
                    "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"),
    "/etc/group": "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n",
})


def minimal_base_entries(ca_bundle: Optional[str], zoneinfo: Sequence[LayerEntry] = ()) -> List[LayerEntry]:
    """The built-in base: users and groups (root, nobody, nonroot), nsswitch, /tmp, homes, TLS roots,
    and the ``zoneinfo`` entries (``zoneinfo_entries``) when given."""
    entries = [
        LayerEntry("/etc/passwd", data=MINIMAL_USERS["/etc/passwd"].encode()),
        LayerEntry("/etc/group", data=MINIMAL_USERS["/etc/group"].encode()),
        LayerEntry("/etc/nsswitch.conf", data=b"hosts: files dns\n"),
        LayerEntry("/tmp", "dir", 0o1777),
        LayerEntry("/root", "dir", 0o700),
        LayerEntry("/home/nonroot", "dir", 0o700, 65532, 65532),
    ]
    if ca_bundle:
        entries.append(LayerEntry(IMAGE_CA_BUNDLE, source=ca_bundle))
    return entries + list(zoneinfo)


def find_host_ca_bundle(environ=None) -> Optional[str]:
    """The host's system CA bundle: the first of the usual places, then OpenSSL's own default file.
    Never SSL_CERT_FILE (``environ`` is not read for it): that says what zeroimage trusts to reach a
    registry, which may be one private CA; what the image trusts changes only with ``ca_bundle``."""
    for path in list(HOST_CA_BUNDLES) + [ssl.get_default_verify_paths().openssl_cafile]:
        if path and os.path.isfile(path) and os.access(path, os.R_OK):
            return path
    return None


MIN_CA_CERTIFICATES = 20        # fewer roots in the image's bundle than this: most TLS servers will not be trusted
_PEM_CERTIFICATE = (b"-----BEGIN CERTIFICATE-----", b"-----BEGIN TRUSTED CERTIFICATE-----")


def _pem_certificates(path: str) -> int:
    """How many PEM certificates a file holds, read a line at a time (memory stays flat)."""
    count = 0
    with open(path, "rb") as f:
        for line in iter(lambda: f.readline(64 * 1024), b""):
            count += line.strip().startswith(_PEM_CERTIFICATE)
    return count


def zoneinfo_source(tzdata, environ) -> Tuple[str, str]:
    """The directory ``build(tzdata=...)`` names, and how errors name it: ``True`` is the host's zone
    database ($ZONEINFO from ``environ`` when set, else /usr/share/zoneinfo), a path that directory."""
    if tzdata is True:
        if environ.get("ZONEINFO"):
            return environ["ZONEINFO"], "ZONEINFO=%s" % environ["ZONEINFO"]
        return ZONEINFO_DIR, ZONEINFO_DIR
    return os.fspath(tzdata), os.fspath(tzdata)


def zoneinfo_entries(source: str, named: Optional[str] = None, display: Optional[Display] = None) -> List[LayerEntry]:
    """A zone database directory as entries at /usr/share/zoneinfo, copied as ``--add`` copies a tree
    (links kept as links), without right/ (leap-second variants). A directory that holds no TZif file
    is refused (ZeroImageError naming it as ``named``): the image would have no time zones."""
    named = named or source
    hint = ("fix or unset ZONEINFO, or give `tzdata=DIR`" if named.startswith("ZONEINFO=") else
            "install the host's tzdata package, or give `tzdata=DIR`" if source == ZONEINFO_DIR else
            "give the directory of a zone database, like %s" % ZONEINFO_DIR)
    try:
        st = os.stat(source)
    except OSError as e:
        raise ZeroImageError("`tzdata`: %s: %s; %s" % (named, e.strerror or e, hint)) from e
    if not stat.S_ISDIR(st.st_mode):
        raise ZeroImageError("`tzdata`: %s is %s, not a directory; %s" % (named, file_kind(st.st_mode), hint))
    entries = tree_entries(source, ZONEINFO_DIR, display, origin="`tzdata`", leave_out=ZONEINFO_LEFT_OUT)
    if not any(_is_tzif(entry.source) for entry in entries if entry.kind == "file"):
        raise ZeroImageError("`tzdata`: %s holds no time zone file (TZif); %s" % (named, hint))
    return entries


def _is_tzif(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"TZif"
    except OSError:
        return False


def minimal_base_layer(ca_bundle: Optional[str], environ, display: Display,
                       zoneinfo: Sequence[LayerEntry] = ()) -> Tuple[List[LayerEntry], str]:
    """The built-in base's one layer (with the host's, or the given, CA bundle, and the zone database
    when ``zoneinfo`` holds its entries) and its history line."""
    if ca_bundle:
        input_file(ca_bundle, "`ca_bundle`", "give the PEM file of CA certificates")
        if not os.access(ca_bundle, os.R_OK):
            raise ZeroImageError("`ca_bundle` %s: cannot read it" % ca_bundle)
    bundle = ca_bundle or find_host_ca_bundle(environ)
    if bundle is None:
        display.warning("no CA bundle found on this host; the image will have no TLS roots (use `ca_bundle=FILE`)")
    else:
        try:
            found = _pem_certificates(bundle)
        except OSError as e:
            raise ZeroImageError("%s %s: cannot read it: %s" % ("`ca_bundle`" if ca_bundle else "the CA bundle",
                                                               bundle, e.strerror or e)) from e
        if found < MIN_CA_CERTIFICATES:
            display.warning("the image's CA bundle %s holds %s, so programs in the image will trust %s TLS servers "
                            "(a system bundle holds over a hundred roots); %s", bundle,
                            "no PEM certificate" if not found else "only %d certificate%s" % (found, "s"[found == 1:]),
                            "no" if not found else "few",
                            "give a full bundle with `ca_bundle=FILE` (SSL_CERT_FILE says what zeroimage "
                            "trusts for registries, not the image)" if ca_bundle else "give one with `ca_bundle=FILE`",
                            fails=True)
    return minimal_base_entries(bundle, zoneinfo), "zeroimage: minimal base (users root, nobody, nonroot; TLS roots%s)" % (
        "; time zones" if zoneinfo else "")


def _on_minimal_base(options: BuildOptions) -> bool:
    return options.base is None and options.base_archive is None


def _check_tzdata_option(tzdata, base: Optional[str], base_archive: Optional[str]) -> None:
    """``tzdata`` is None or False (none), True (the host's) or a directory, on the minimal base only."""
    if tzdata is None or tzdata is False:
        return
    if tzdata is not True and not isinstance(tzdata, (str, os.PathLike)):
        raise UsageError("`tzdata` is True (the host's zone database) or a directory, not %r" % (tzdata,))
    if tzdata is not True and not os.fspath(tzdata):
        raise UsageError("`tzdata`: the directory is empty text; give one like %s" % ZONEINFO_DIR)
    _check_minimal_base_only("tzdata", "the zone database", ZONEINFO_DIR, ZONEINFO_DIR, base, base_archive)


def _check_minimal_base_only(option: str, what: str, source: str, dest: str, base: Optional[str],
                             base_archive: Optional[str]) -> None:
    """The one rule for options only the built-in minimal base takes (``tzdata``, ``ca_bundle``): with
    another base, a usage error that says how to put the file there with ``add``."""
    if base is not None or base_archive is not None:
        given = "`base=scratch`" if base == "scratch" else "`base_archive`" if base_archive is not None else "`base`"
        raise UsageError("`%s` adds %s to the built-in minimal base, not to a %s base; for that, use `add` %s:%s"
                         % (option, what, given, source, dest))


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
    """$DOCKER_CONFIG/config.json, else ~/.docker/config.json (HOME from ``environ``)."""
    environ = os.environ if environ is None else environ
    directory = environ.get("DOCKER_CONFIG") or os.path.join(home_directory(environ), ".docker")
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
    if os.path.exists(path):
        try:
            input_file(path, "the credentials file")
        except ZeroImageError as e:
            raise CredentialError(str(e)) from e
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_JSON_SIZE + 1)
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise CredentialError("cannot read %s: %s" % (path, e.strerror or e)) from e
    if len(data) > MAX_JSON_SIZE:
        raise CredentialError("%s is over %d bytes; fix or remove it" % (path, MAX_JSON_SIZE))
    try:
        value = json.loads(data.decode("utf-8")) if data.strip() else {}
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise CredentialError("%s is not valid JSON (%s); fix or remove it" % (path, outside_text(e, 100))) from e
    if not isinstance(value, dict):
        raise CredentialError("%s is not a JSON object; fix or remove it" % path)
    return value


def registry_host(text: str) -> str:
    """The registry a login/logout argument names: ``https://ghcr.io/v2/`` → ``ghcr.io``; Docker Hub → docker.io."""
    host = re.sub(r"^[a-z]+://", "", text.strip().lower()).split("/", 1)[0]
    if not host or not valid_host(host):
        raise InvalidReferenceError("invalid registry %r: expected a host name like ghcr.io or localhost:5000" % text)
    return DOCKER_HUB if host in ("docker.io", "index.docker.io", "registry-1.docker.io") else host


def _key_host(key: str) -> str:
    """The host an ``auths`` key names, as Docker reads it: scheme and path dropped (``https://reg/v1/`` → reg)."""
    return registry_host(key) if isinstance(key, str) and key.strip() else ""


def _auth_entry(auths: dict, host: str) -> Optional[dict]:
    """The ``auths`` entry for a host: the one under its exact key first (``docker login``'s), else the
    first, in sorted order, whose key names the same host once scheme and path are dropped."""
    for key in (registry_config_key(host), host):
        if isinstance(auths.get(key), dict):
            return auths[key]
    for key in sorted(k for k in auths if isinstance(k, str)):
        try:
            same = _key_host(key) == host
        except InvalidReferenceError:
            continue
        if same and isinstance(auths[key], dict):
            return auths[key]
    return None


def _string_field(entry: dict, field: str, where: str) -> str:
    value = entry.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CredentialError("%s: %r is not a string; fix or remove it" % (where, field))
    return value


def _entry_credentials(entry: dict, where: str) -> Optional[Credentials]:
    username, password = _string_field(entry, "username", where), _string_field(entry, "password", where)
    auth = _string_field(entry, "auth", where)
    if auth:
        try:
            username, _, password = base64.b64decode(auth, validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            raise CredentialError("%s: an 'auth' entry is not base64 of user:password" % where) from None
    creds = Credentials(username, password, _string_field(entry, "identitytoken", where),
                        _string_field(entry, "registrytoken", where))
    return creds if any(creds) else None


MAX_HELPER_OUTPUT = 1024 * 1024
HELPER_TIMEOUT = 60.0
_HELPER_NAME_RE = _Pattern(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}")


def _run_bounded(argv: List[str], stdin: bytes, environ, timeout: float, limit: int) -> Tuple[int, bytes, bytes]:
    """Run a program, feed it ``stdin``, read at most ``limit`` bytes of each output within ``timeout``
    seconds; (exit status, stdout, stderr). A program that says more, or takes longer, is killed."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(environ))
    outputs = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    deadline = time.monotonic() + timeout
    try:
        try:
            with proc.stdin:
                proc.stdin.write(stdin)     # a few hundred bytes: the pipe takes them at once
        except OSError as e:
            if not _pipe_closed(e):         # (a helper that does not read its input is still heard)
                raise
        (_read_outputs_in_threads if _WINDOWS else _read_outputs)(proc, outputs, deadline, limit, argv[0], timeout)
        status = proc.wait(max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise CredentialError("%s did not finish within %d s" % (os.path.basename(argv[0]), timeout)) from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in outputs:
            stream.close()
    return status, bytes(outputs[proc.stdout]), bytes(outputs[proc.stderr])


def _read_outputs(proc, outputs: Dict[object, bytearray], deadline: float, limit: int, program: str,
                  timeout: float) -> None:
    """Read each of the program ``proc``'s output pipes to its end into ``outputs``, at most ``limit``
    bytes each, before ``deadline``, with a selector (POSIX: select takes pipes)."""
    with selectors.DefaultSelector() as selector:
        for stream in outputs:
            selector.register(stream, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise CredentialError("%s did not answer within %d s" % (os.path.basename(program), timeout))
            for key, _ in selector.select(left):
                data = os.read(key.fileobj.fileno(), 65536)
                if not data:
                    selector.unregister(key.fileobj)
                    continue
                outputs[key.fileobj] += data
                if len(outputs[key.fileobj]) > limit:
                    raise CredentialError("%s answered more than %d bytes" % (os.path.basename(program), limit))


def _read_outputs_in_threads(proc, outputs: Dict[object, bytearray], deadline: float, limit: int, program: str,
                             timeout: float) -> None:
    """``_read_outputs`` where select takes only sockets (Windows): a thread reads each pipe. Given
    up, it kills the program first, so its pipes end and the threads with them (a child it left
    holding a pipe: its thread is left to end with it, and the pipe is closed under it)."""
    changed = threading.Condition()
    ended = []

    def drain(stream, out: bytearray) -> None:
        try:
            while len(out) <= limit:
                data = os.read(stream.fileno(), 65536)
                if not data:
                    break
                with changed:
                    out += data
        except (OSError, ValueError):   # (closed under it: the caller gave up)
            pass
        finally:
            with changed:
                ended.append(stream)
                changed.notify_all()

    threads = [threading.Thread(target=drain, args=item, name="zeroimage-helper-output", daemon=True)
               for item in outputs.items()]
    for thread in threads:
        thread.start()
    try:
        with changed:
            while True:
                if any(len(out) > limit for out in outputs.values()):
                    raise CredentialError("%s answered more than %d bytes" % (os.path.basename(program), limit))
                if len(ended) == len(outputs):
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CredentialError("%s did not answer within %d s" % (os.path.basename(program), timeout))
                changed.wait(left)
    except BaseException:
        proc.kill()
        for thread in threads:
            thread.join(1.0)
        raise


def run_credential_helper(name: str, action: str, payload: str, environ=None,
                          where: str = "config.json") -> Optional[str]:
    """Run ``docker-credential-NAME ACTION`` (found on the environment's PATH, given an argument list and
    that environment); its answer, or None when it has no credentials. The answer is bounded in size
    and time, and a name that is not a plain program name is refused."""
    environ = os.environ if environ is None else environ
    if not isinstance(name, str) or not _HELPER_NAME_RE.fullmatch(name):
        raise CredentialError("%s names the credential helper %s, which is not a plain name; fix it"
                              % (where, outside_text(repr(name), 100)))
    program = "docker-credential-" + name
    found = shutil.which(program, path=environ.get("PATH", os.defpath))
    if found is None:
        raise CredentialError("credential helper %s is not on PATH" % program)
    try:
        status, out, err = _run_bounded([found, action], payload.encode("utf-8"), environ, HELPER_TIMEOUT,
                                        MAX_HELPER_OUTPUT)
    except OSError as e:
        raise CredentialError("credential helper %s failed to run: %s" % (program, e.strerror or e)) from e
    text = out.decode("utf-8", "replace")
    if status != 0:
        if "credentials not found" in (text + err.decode("utf-8", "replace")).lower():
            return None
        raise CredentialError("credential helper %s %s failed (exit %d)" % (program, action, status))
    return text


def _helper_for(config: dict, host: str) -> Optional[str]:
    helpers = config.get("credHelpers") if isinstance(config.get("credHelpers"), dict) else {}
    for key in (host, registry_config_key(host)):
        if helpers.get(key):
            return helpers[key]
    return config.get("credsStore") or None


def _helper_credentials(helper: str, host: str, environ, where: str) -> Optional[Credentials]:
    out = run_credential_helper(helper, "get", registry_config_key(host), environ, where)
    if not out:
        return None
    try:
        answer = json.loads(out)
    except (ValueError, RecursionError):
        answer = None
    if not isinstance(answer, dict) or not all(isinstance(answer.get(k, ""), str) for k in ("Username", "Secret")):
        raise CredentialError("credential helper docker-credential-%s answered something that is not "
                              "{\"Username\": ..., \"Secret\": ...}" % helper)
    username, secret = answer.get("Username") or "", answer.get("Secret") or ""
    if username == "<token>":
        return Credentials(identity_token=secret)
    return Credentials(username, secret) if secret else None


def resolve_credentials(host: str, environ=None, display: Optional["Display"] = None) -> Optional[Credentials]:
    """Credentials for a registry as Docker finds them: helper, then ``auths``, then podman's auth files."""
    environ = os.environ if environ is None else environ
    path = docker_config_path(environ)
    config = _load_json_file(path)
    helper = _helper_for(config, host)
    if helper:
        try:
            creds = _helper_credentials(helper, host, environ, path)
        except CredentialError as e:
            (display or Display()).warning("%s; trying other credentials", e)
            creds = None
        if creds:
            return creds
    for where in [path] + _auth_file_paths(environ):
        auths = _load_json_file(where).get("auths") if where != path else config.get("auths")
        entry = _auth_entry(auths, host) if isinstance(auths, dict) else None
        creds = _entry_credentials(entry, where) if entry else None
        if creds:
            return creds
    return None


def _write_config(path: str, config: dict) -> None:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with atomic_output(path, mode=0o600, durable=True) as f:
        f.write(json.dumps(config, indent="\t").encode("utf-8") + b"\n")


def store_credentials(host: str, creds: Credentials, environ=None) -> str:
    """Save credentials the way ``docker login`` does; returns where they went."""
    environ = os.environ if environ is None else environ
    path = docker_config_path(environ)
    config = _load_json_file(path)
    helper = _helper_for(config, host)
    if helper:
        payload = {"ServerURL": registry_config_key(host), "Username": creds.username or "<token>",
                   "Secret": creds.password or creds.identity_token}
        run_credential_helper(helper, "store", json.dumps(payload), environ, path)
        return "credential helper docker-credential-" + helper
    auths = config.get("auths") if isinstance(config.get("auths"), dict) else {}
    entry = {"auth": base64.b64encode(("%s:%s" % (creds.username, creds.password)).encode()).decode()}
    if creds.identity_token:
        entry = {"identitytoken": creds.identity_token}
    auths[registry_config_key(host)] = entry
    config["auths"] = auths
    _write_config(path, config)
    return path


def erase_credentials(host: str, environ=None) -> bool:
    """Forget a registry's credentials (helper and every ``auths`` key naming it); False when there were none."""
    environ = os.environ if environ is None else environ
    path = docker_config_path(environ)
    config = _load_json_file(path)
    found = False
    helper = _helper_for(config, host)
    if helper:
        found = run_credential_helper(helper, "erase", registry_config_key(host), environ, path) is not None
    auths = config.get("auths") if isinstance(config.get("auths"), dict) else {}
    keys = [k for k in auths if _auth_entry({k: auths[k]}, host) is not None]
    for key in keys:
        del auths[key]
    if keys:
        _write_config(path, config)
    return found or bool(keys)


# ---- Proxies ----

class Proxy(NamedTuple):
    """An HTTP proxy: where to connect, the Proxy-Authorization its URL carries (never printed), and
    the variable that named it (``https_proxy``...), for messages."""

    netloc: str
    authorization: Optional[str] = None
    variable: Optional[str] = None

    def __repr__(self) -> str:
        return "Proxy(%r%s)" % (self.netloc, ", with credentials" if self.authorization else "")

    def __str__(self) -> str:
        """``HOST:PORT (from VARIABLE)``: never its credentials."""
        return self.netloc + (" (from %s)" % self.variable if self.variable else "")


def parse_proxy(text: str) -> Proxy:
    """A proxy setting as curl and urllib accept it: ``host:port``, ``http://host:port`` or
    ``http://user:password@host:port`` (credentials percent-encoded); the port defaults to 80."""
    value = text.strip()
    if "://" not in value:
        value = "http://" + value
    shown = _redact_url(value)
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:
        raise NetworkError("proxy %s: not a URL (a bracketed IPv6 address not closed?)" % shown) from None
    if parts.scheme.lower() == "https":
        raise NetworkError("proxy %s: TLS to the proxy is not supported; give it as http://HOST:PORT" % shown)
    if parts.scheme.lower() != "http":
        raise NetworkError("proxy %s: only HTTP proxies are supported (not %s)"
                           % (shown, outside_text(parts.scheme, 20)))
    try:
        port = parts.port or 80
    except ValueError:
        raise NetworkError("proxy %s: the port is not a number from 1 to 65535" % shown) from None
    host = parts.hostname if not parts.hostname or ":" not in parts.hostname else "[%s]" % parts.hostname
    if not host or not _DOMAIN_RE.fullmatch(host):
        raise NetworkError("proxy %s: no valid host name" % shown)
    authorization = None
    if parts.username is not None:
        userpass = "%s:%s" % (urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or ""))
        authorization = "Basic " + base64.b64encode(userpass.encode("utf-8")).decode("ascii")
    return Proxy("%s:%d" % (host, port), authorization)


def bypasses_proxy(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` exempts a host, as curl reads it: ``*``; names, which cover their
    subdomains (a leading ``.`` or ``*.`` changes nothing); IP addresses and CIDR ranges; each
    optionally with ``:port``."""
    host = host.lower().strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in re.split(r"[\s,]+", no_proxy.strip().lower()):
        if entry == "*":
            return True
        match = re.fullmatch(r"\[([^\]]+)\](?::([0-9]+))?", entry) or re.fullmatch(r"([^:]+)(?::([0-9]+))?", entry) \
            or re.fullmatch(r"([0-9a-f:]+(?:/[0-9]+)?)()", entry)
        if not match:
            continue
        name, entry_port = match.group(1), match.group(2)
        if entry_port and int(entry_port) != port:
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = name.lstrip("*").lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


# ---- HTTP transport ----

RETRY_STATUSES = (408, 429, 500, 502, 503, 504)
IDEMPOTENT = ("GET", "HEAD", "PUT", "DELETE")     # retried when the body (if any) can be sent again
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
MAX_ATTEMPTS = 5
MAX_RETRY_AFTER = 30.0      # seconds: a longer Retry-After is cut to this
MAX_RETRY_SECONDS = 60.0
MAX_REDIRECTS = 5
MAX_ERROR_BODY = 1024 * 1024
CONNECT_TIMEOUT = 30.0
READ_TIMEOUT = 120.0
CLEANUP_TIMEOUT = 1.0        # a best-effort request on the way out (cancelling an upload session)
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


def _origin(url: str) -> str:
    """``scheme://host:port`` of a URL, ports filled in: credentials are bound to one origin."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return "invalid:" + url
    port = port or {"https": 443, "http": 80}.get(parts.scheme.lower(), 0)
    return "%s://%s:%d" % (parts.scheme.lower(), (parts.hostname or "").lower(), port)


def backoff_delay(attempt: int) -> float:
    """Seconds to wait before try ``attempt + 1``: 0.5, 1, 2, 4, then 8."""
    return min(0.25 * (2 ** attempt), 8.0)


class _Connection:
    """One kept-alive connection, and how requests are written on it (through a proxy or not)."""

    def __init__(self, http, key: Tuple[str, str], proxy: Optional[Proxy], absolute_form: bool,
                 proxy_authorization: Optional[str]):
        self.http, self.key, self.proxy = http, key, proxy
        self.absolute_form = absolute_form              # plain HTTP through a proxy: full URLs
        self.proxy_authorization = proxy_authorization  # sent with each request in that case
        self.broken = False                             # broken off: never to be used again

    def break_off(self) -> None:
        """Shut the socket down under a request in another thread, which then fails at once."""
        self.broken = True
        sock = self.http.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)      # the fd itself, even under TLS

    def close(self) -> None:
        self.http.close()


def _receive(raw, n: int, guard: _Guard, cancelled: Optional[threading.Event]) -> bytes:
    """Up to ``n`` bytes (all with -1) of an http.client answer, one receive at a time, so that the
    watchdog sees each piece arrive; CancelledError once ``cancelled`` is set."""
    pieces, got = [], 0
    while n is None or n < 0 or got < n:
        if cancelled is not None and cancelled.is_set():
            raise CancelledError()
        piece = raw.read1(CHUNK_SIZE if n is None or n < 0 else n - got)
        if not piece:
            break
        guard.moved(len(piece))
        pieces.append(piece)
        got += len(piece)
    return b"".join(pieces)


class Response:
    """An HTTP response whose body is read as a stream. Closing it hands its connection back for
    reuse when the body was read to the end, and closes the connection when it was not. Every read
    is watched: a body that stalls (less than STALL_BYTES in STALL_TIMEOUT seconds: a Content-Length
    that promises more than comes, a drip-fed body) is broken off, and one read whole
    (``read_capped``) must also come within ANSWER_DEADLINE seconds."""

    def __init__(self, raw, conn: object, url: str, cancelled: Optional[threading.Event],
                 done: Callable[[object, bool], None], method: str = "GET", guard=None, watchdog=None):
        # guard and watchdog: the transport's (private) watch over this exchange; a new one if not given
        self._raw = raw
        self._conn = conn           # the transport's, handed back to ``done`` on close
        self._done = done           # (connection, reusable): back to the pool, or closed
        self._cancelled = cancelled
        self._broken = False
        self._guard = guard or _Guard(lambda: None)
        self._watchdog = watchdog or _Watchdog()
        self.method = method
        self.status = raw.status
        self.headers = raw.headers
        self.url = url
        self.until = None           # with a time (time.monotonic()), all of the body must have come by then
        self.spent = False          # a 5xx or 429 answer after the retries the budget allows (Transport.request)
        self.within = None          # ... that is, within so many seconds of the request (for messages)

    @property
    def left(self) -> Optional[int]:
        """Bytes its Content-Length says are still to come (None: it gives none)."""
        return self._raw.length

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all with -1). A body that breaks off (a reset, a stall, a chunk or a
        Content-Length cut short, ``until`` passed) is a NetworkError; after a cancellation, a
        CancelledError."""
        return self._read(n, None if self.until is None else max(0.0, self.until - time.monotonic()))

    def _read(self, n: int, deadline: Optional[float] = None) -> bytes:
        try:
            with self._watchdog.watching(self._guard, deadline=deadline):
                data = _receive(self._raw, n, self._guard, self._cancelled)
        except (OSError, http_client.HTTPException) as e:
            self._broken = True
            if self._cancelled is not None and self._cancelled.is_set():
                raise CancelledError() from e
            raise self._given_up() or _network_error(self.method, self.url, e, what="the answer broke off from") from e
        if self._guard.expired:     # the watchdog cut it off (endless trailers, a stall): not the whole answer
            raise self._given_up()
        if not data and n != 0 and self._raw.length:        # the socket closed before Content-Length bytes
            raise self._given_up() or self._cut_short()     # (what came before it is handed out first)
        return data

    def _given_up(self) -> Optional[NetworkError]:
        """The error for a body the watchdog broke off, or None when it did not."""
        why = self._guard.expired
        if why is None:
            return None
        self._broken = True
        host = _host_of(self.url)
        if why == "deadline":
            return NetworkError("%s did not send its whole answer to %s %s within %g s (%d bytes came)"
                                % (host, self.method, _redact_url(self.url), self.within or self._guard.seconds,
                                   self._guard.progress))
        return NetworkError("the answer from %s stalled: less than %d bytes in %g s (%d bytes came%s)" % (
            host, STALL_BYTES, STALL_TIMEOUT, self._guard.progress,
            ", %d more promised" % self._raw.length if self._raw.length else ""))

    def _cut_short(self) -> NetworkError:
        self._broken = True
        return NetworkError("the answer from %s broke off (%d bytes missing)" % (_host_of(self.url), self._raw.length))

    def read_capped(self, limit: int, what: str) -> bytes:
        """The whole body, when it is at most ``limit`` bytes and comes within ANSWER_DEADLINE seconds
        (an error when it is longer, slower, or cut short)."""
        data = self._read(limit + 1, ANSWER_DEADLINE)
        if len(data) <= limit and self._raw.length:         # short of Content-Length: it broke off
            raise self._given_up() or self._cut_short()
        if len(data) > limit:
            self.close()
            raise RegistryError(self.status, self.method, _redact_url(self.url),
                                "%s is over the %d-byte limit" % (what, limit))
        return data

    def close(self) -> None:
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        try:
            if not self._raw.isclosed() and self._raw.length == 0 and not self._raw.chunked:
                self._raw.read()        # nothing left: this lets http.client keep the connection
        except (OSError, http_client.HTTPException):
            pass
        self._done(conn, self._raw.isclosed() and not self._broken)     # unread or broken: no reuse
        self._raw.close()

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _BytesReader:
    """Bytes or a bytearray read as a file, without the copy io.BytesIO makes of a bytearray (a
    streamed layer's 4 MB chunk buffer)."""

    def __init__(self, data):
        self._view, self._at = memoryview(data), 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._view) if n is None or n < 0 else min(len(self._view), self._at + n)
        data, self._at = self._view[self._at:end].tobytes(), end
        return data

    def close(self) -> None:
        self._view.release()


class _SentBody:
    """A request body as http.client sends it: opened from bytes, a stream or an opener; read in
    pieces of at most 64 KiB, each counted for the watchdog and checked for cancellation; when it
    ends, the exchange waits for the answer's head (``sent``)."""

    PIECE = 64 * 1024

    def __init__(self, stream, guard: _Guard, cancelled: Optional[threading.Event], sent: Callable[[], None]):
        self._stream, self._guard, self._cancelled, self._sent = stream, guard, cancelled, sent

    def read(self, n: int = -1) -> bytes:
        if self._cancelled is not None and self._cancelled.is_set():
            raise CancelledError()
        data = self._stream.read(self.PIECE if n is None or n < 0 else min(n, self.PIECE))
        if data:
            self._guard.moved(len(data))
        else:
            self._sent()
        return data


def _host_of(url: str) -> str:
    """``host[:port]`` of a URL, for messages: never its user or password."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return "the registry"
    host = parts.hostname or ""
    if ":" in host:
        host = "[%s]" % host
    return outside_text(host + (":%d" % port if port else ""), 200) if host else "the registry"


class Transport:
    """The one place that opens sockets: TLS, proxies, keep-alive, timeouts, retries and redirects.

    Everything comes from ``environ`` (proxies, NO_PROXY, SSL_CERT_FILE/SSL_CERT_DIR), never from
    the process. ``Authorization`` goes only to the origin (scheme, host and port) it was given
    for, never to a redirect target elsewhere (S3, GCS, CDN signed URLs) nor over a downgrade to
    plain HTTP; redirects go only to http and https URLs. Once ``cancelled`` is set, requests
    stop: new ones are refused, ``abort()`` breaks those under way. ``close()`` closes every
    connection; a closed transport opens no more.
    """

    def __init__(self, environ=None, insecure: bool = False, display: Optional[Display] = None,
                 cancelled: Optional[threading.Event] = None):
        _import_network_stack()     # here, in one thread, before any worker needs a module of it
        self.environ = os.environ if environ is None else environ
        self.insecure = insecure
        self.display = display or Display()
        self.cancelled = cancelled or threading.Event()
        self._lock = threading.Lock()
        self._idle = {}             # (scheme, netloc) -> [_Connection]
        self._busy = set()          # connections a request is using now
        self._contexts = {}
        self._closed = False
        self._watchdog = _Watchdog()

    # -- lifetime --

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections = list(self._busy) + [c for idle in self._idle.values() for c in idle]
            self._busy.clear()
            self._idle.clear()
        for conn in connections:
            conn.close()

    def abort(self) -> None:
        """Break every request under way (after the cancellation event is set)."""
        with self._lock:
            busy = list(self._busy)
        for conn in busy:
            conn.break_off()

    def wait(self, seconds: float) -> None:
        """Sleep, unless cancelled first (then CancelledError)."""
        if self.cancelled.wait(max(0.0, seconds)):
            raise CancelledError()

    def _check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise CancelledError()

    # -- connections --

    def _ssl_context(self, host: str) -> "ssl.SSLContext":
        # Loading the CA store takes ~25 ms: hosts without a certs.d directory of their own share one.
        key = host if any(os.path.isdir(os.path.join(base, host)) for base in CERTS_DIRS) else ""
        with self._lock:
            if key in self._contexts:
                return self._contexts[key]
        cafile, capath = self.environ.get("SSL_CERT_FILE"), self.environ.get("SSL_CERT_DIR")
        if not cafile and not capath:       # OpenSSL's own defaults, not the process's variables
            paths = ssl.get_default_verify_paths()
            cafile, capath = paths.openssl_cafile, paths.openssl_capath
        cafile = cafile if cafile and os.path.isfile(cafile) else None
        capath = capath if capath and os.path.isdir(capath) else None
        try:
            if cafile or capath:
                context = ssl.create_default_context(cafile=cafile, capath=capath)
            else:       # no CA store at all (never the process's variables): only certs.d can add trust
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
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
        except (ssl.SSLError, OSError) as e:
            raise NetworkError("cannot load the TLS certificates for %s: %s" % (host, outside_text(e, 200))) from e
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        with self._lock:
            return self._contexts.setdefault(key, context)

    def proxy_for(self, scheme: str, netloc: str) -> Optional[Proxy]:
        """The proxy the environment names for a URL (``https_proxy``, ``http_proxy``, ``all_proxy``,
        lowercase first), unless ``no_proxy`` exempts the host."""
        names = [scheme + "_proxy", "all_proxy"]
        if scheme == "http" and "REQUEST_METHOD" in self.environ:
            candidates = ["http_proxy", "all_proxy", "ALL_PROXY"]       # HTTP_PROXY is a CGI header ("httpoxy")
        else:
            candidates = [n for name in names for n in (name, name.upper())]
        variable = next((n for n in candidates if self.environ.get(n, "").strip()), None)
        if variable is None:
            return None
        parts = urllib.parse.urlsplit("//" + netloc)
        no_proxy = self.environ.get("no_proxy") or self.environ.get("NO_PROXY") or ""
        if bypasses_proxy(parts.hostname or "", parts.port or (443 if scheme == "https" else 80), no_proxy):
            return None
        try:
            return parse_proxy(self.environ[variable])._replace(variable=variable)
        except NetworkError as e:
            host = _host_of("//" + netloc)
            raise _ProxyError("%s (the proxy for %s://%s): %s; fix or unset it, or exempt %s with NO_PROXY"
                              % (variable, scheme, host, e, host)) from None

    def _checkout(self, scheme: str, netloc: str, timeout: float, fresh: bool = False) -> _Connection:
        """An idle kept-alive connection to the host (unless ``fresh``), or a new one; it is busy until
        released."""
        with self._lock:
            if self._closed:
                raise ZeroImageError("this session is closed; start a new one")
            idle = self._idle.get((scheme, netloc))
            conn = idle.pop() if idle and not fresh else None
            if conn is not None:
                self._busy.add(conn)
        if conn is None:
            proxy = self.proxy_for(scheme, netloc)
            target = proxy.netloc if proxy else netloc
            if scheme == "https":
                http = http_client.HTTPSConnection(target, timeout=timeout, context=self._ssl_context(netloc),
                                                   blocksize=CHUNK_SIZE)
                if proxy:
                    http.set_tunnel(netloc, headers={"Proxy-Authorization": proxy.authorization}
                                    if proxy.authorization else None)
            else:
                http = http_client.HTTPConnection(target, timeout=timeout, blocksize=CHUNK_SIZE)
            absolute = bool(proxy) and scheme == "http"
            conn = _Connection(http, (scheme, netloc), proxy, absolute, proxy.authorization if absolute else None)
            with self._lock:
                self._busy.add(conn)
        return conn

    def _release(self, conn: _Connection, reusable: bool) -> None:
        """A request is done with a connection: back to the pool when it can serve another, else closed."""
        with self._lock:
            self._busy.discard(conn)
            if reusable and not self._closed and not conn.broken:
                self._idle.setdefault(conn.key, []).append(conn)
                return
        conn.close()

    # -- requests --

    def request(self, method: str, url: str, headers: Optional[Dict[str, str]] = None, body=None, *,
                auth: Optional[str] = None, auth_origin: Optional[str] = None, length: Optional[int] = None,
                idempotent: Optional[bool] = None, timeout: Optional[float] = None,
                cancellable: bool = True) -> Response:
        """Send one request (retrying idempotent ones, following redirects for GET/HEAD).

        ``body`` is bytes, a readable stream of ``length`` bytes, or an opener of such a stream
        (called anew for every try); either way it goes with a Content-Length, never chunked. A
        request whose body can be sent again (bytes, an opener) is retried in place after an answer
        whose status is in RETRY_STATUSES (408, 429, 500, 502, 503, 504; never 501, which is for
        good) or a dropped connection, honouring Retry-After, within MAX_ATTEMPTS tries and
        MAX_RETRY_SECONDS. ``auth`` (an Authorization value) is sent to ``auth_origin`` only
        (default: the URL's origin). A request that is not ``cancellable`` (cleaning up after a
        cancellation) is tried once, with ``timeout``.
        """
        if cancellable:
            self._check_cancelled()
        started = time.monotonic()
        replayable = (method in IDEMPOTENT if idempotent is None else idempotent) and _replayable(body)
        auth_origin = (auth_origin or _origin(url)) if auth else None
        attempts = MAX_ATTEMPTS if cancellable else 1
        for attempt in range(1, attempts + 1):
            try:
                response = self._send_following(method, url, headers or {}, (body, length), auth, auth_origin,
                                                timeout, cancellable)
            except _SendFailed as failed:
                e = failed.error
                if cancellable and self.cancelled.is_set():
                    raise CancelledError() from e
                if not _transient(e) or not replayable or not self._may_retry(attempt, attempts, started, None):
                    error = _network_error(method, failed.url, e, failed.proxy)
                    if self.insecure:
                        error.hint = None       # plain HTTP is allowed already: the advice would be given in vain
                    # tried as often as the budget allows, or a refusal, a name unknown, TLS trouble: trying
                    # again (a new upload session) will not help either
                    error.spent = replayable or not _transient(e)
                    raise error from e
                delay = backoff_delay(attempt)
                self.display.debug("retrying %s %s in %.1fs after %s", method, _redact_url(url), delay,
                                   type(e).__name__)
            else:
                if response.status not in RETRY_STATUSES or not replayable \
                        or not self._may_retry(attempt, attempts, started, response):
                    response.spent = replayable and response.status in RETRY_STATUSES
                    return response
                delay = self.retry_after(response) or backoff_delay(attempt)
                response.close()
                self.display.debug("retrying %s %s in %.1fs after HTTP %d", method, _redact_url(url), delay,
                                   response.status)
            self.wait(delay)
        raise AssertionError("unreachable")

    @staticmethod
    def retry_after(response: Response) -> Optional[float]:
        """Seconds the answer's Retry-After asks to wait (seconds or an HTTP date), at most MAX_RETRY_AFTER."""
        value = (response.headers.get("Retry-After") or "").strip()
        if re.fullmatch(r"[0-9]{1,10}", value):
            return min(float(value), MAX_RETRY_AFTER)
        if value:
            try:
                when = email_utils.parsedate_to_datetime(value)
                return max(0.0, min((when - datetime.datetime.now(datetime.timezone.utc)).total_seconds(),
                                    MAX_RETRY_AFTER))
            except (TypeError, ValueError, OverflowError):
                return None
        return None

    def _may_retry(self, attempt: int, attempts: int, started: float, response: Optional[Response]) -> bool:
        if attempt >= attempts:
            return False
        wait = (self.retry_after(response) if response is not None else None) or backoff_delay(attempt)
        return time.monotonic() - started + wait <= MAX_RETRY_SECONDS

    def _send_following(self, method, url, headers, body, auth, auth_origin, timeout, cancellable) -> Response:
        problem = url_problem(url)
        if problem:
            raise NetworkError("refusing to send %s to %s: %s" % (method, _redact_url(url), problem))
        for _ in range(MAX_REDIRECTS + 1):
            parts = urllib.parse.urlsplit(url)
            send_auth = auth if auth and _origin(url) == auth_origin else None
            response = self._send(method, parts, headers, body, send_auth, timeout, cancellable)
            if response.status not in REDIRECT_STATUSES or method not in ("GET", "HEAD"):
                return response
            location = (response.headers.get("Location") or "").strip()
            response.close()
            try:        # urljoin drops tabs and line breaks: the Location itself is checked first
                target = urllib.parse.urljoin(url, location) if _URL_CHARS_RE.fullmatch(location) else location
            except ValueError:
                target = location
            problem = url_problem(target) if location else "no Location"
            if problem:
                raise RegistryError(response.status, method, _redact_url(url),
                                    "refusing to follow a redirect to %s" % problem)
            url = target
        raise RegistryError(response.status, method, _redact_url(url), "more than %d redirects" % MAX_REDIRECTS)

    def _send(self, method, parts, headers, body, auth, timeout, cancellable) -> Response:
        body, length = body
        all_headers = {"User-Agent": "zeroimage/" + __version__}
        all_headers.update(headers)
        if auth:
            all_headers["Authorization"] = auth
        if isinstance(body, (bytes, bytearray)):
            length = len(body)
        if body is not None or method in ("PUT", "POST", "PATCH"):
            all_headers["Content-Length"] = str(length or 0)
        # A request that gets one try (cleaning up) takes a new connection: a kept-alive one may be stale.
        conn = self._checkout(parts.scheme, parts.netloc, min(timeout or CONNECT_TIMEOUT, CONNECT_TIMEOUT),
                              fresh=not cancellable)
        if conn.proxy_authorization:
            all_headers["Proxy-Authorization"] = conn.proxy_authorization
        path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        if conn.absolute_form:
            path = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))
        url = urllib.parse.urlunsplit(parts)
        guard = _Guard(conn.break_off)
        head_wait = timeout or READ_TIMEOUT
        stream = None
        try:
            if cancellable:
                self._check_cancelled()
            if callable(body):
                stream = body()
            elif body is not None:
                stream = _BytesReader(body) if isinstance(body, (bytes, bytearray)) else body
            if conn.http.sock is not None:
                conn.http.sock.settimeout(min(timeout or CONNECT_TIMEOUT, CONNECT_TIMEOUT))
            # Sending, the body must move; then the answer's head must come within head_wait seconds.
            with self._watchdog.watching(guard, stall=None if stream is not None else 0,
                                         deadline=None if stream is not None else head_wait) as watched:
                def sent() -> None:
                    self._watchdog.answer_within(watched, head_wait)
                sending = None if stream is None else \
                    _SentBody(stream, guard, self.cancelled if cancellable else None, sent)
                conn.http.request(method, path, body=sending, headers=all_headers)
                if conn.http.sock is not None:
                    conn.http.sock.settimeout(head_wait)
                sent()
                raw = conn.http.getresponse()
            if guard.expired:           # a head cut off by the watchdog parses as one: it is not an answer
                raise ConnectionAbortedError()
        except (OSError, http_client.HTTPException) as e:      # ssl's errors are ValueErrors too: these first
            self._release(conn, False)
            if guard.expired:
                e = _Overstayed(self._gave_up(method, url, guard, head_wait))
            raise _SendFailed(url, conn.proxy, e) from e
        except ValueError:
            # http.client refuses a header value with a line break; its message would show the value
            self._release(conn, False)
            raise NetworkError("refusing to send a request to %s: a header value holds characters HTTP does "
                               "not allow (line breaks, non-ASCII)" % _host_of(url)) from None
        except BaseException:
            self._release(conn, False)
            raise
        finally:
            if stream is not None and stream is not body:      # opened here (from an opener, or bytes)
                stream.close()
        response = Response(raw, conn, url, self.cancelled if cancellable else None, self._release, method,
                            guard, self._watchdog)
        if response.status == 407 and conn.proxy is not None:
            response.close()
            # (no USER:PASSWORD@ example: the redaction every message goes through would cut it out)
            raise NetworkError("the proxy %s asks for credentials (407)%s; write them into %s's URL before the "
                               "host, as user:password and an @ sign" % (
                                   conn.proxy, " and refused those given" if conn.proxy.authorization else "",
                                   conn.proxy.variable or "the proxy variable"))
        self.display.debug("%s %s -> %d%s", method, _redact_url(url), response.status,
                           " (with credentials)" if auth else "")
        if method == "HEAD":
            response.close()
        return response

    @staticmethod
    def _gave_up(method: str, url: str, guard: _Guard, head_wait: float) -> str:
        """What a server did when the watchdog broke off a request before its answer's head came."""
        if guard.expired == "stalled":
            return "%s stopped taking the body of %s %s: less than %d bytes in %g s" % (
                _host_of(url), method, _redact_url(url), STALL_BYTES, STALL_TIMEOUT)
        return "%s sent no answer to %s %s within %g s" % (_host_of(url), method, _redact_url(url), head_wait)


class _Overstayed(TimeoutError):
    """A request the watchdog broke off; its message says what the server did."""


def _replayable(body) -> bool:
    """Whether a request body can be sent again: none, bytes, or an opener of a fresh stream."""
    return body is None or isinstance(body, (bytes, bytearray)) or callable(body)


class _SendFailed(Exception):
    """A request that got no answer: the URL it went to (a redirect's, maybe), the proxy, and why."""

    def __init__(self, url: str, proxy: Optional[Proxy], error: BaseException):
        super().__init__(url)
        self.url, self.proxy, self.error = url, proxy, error


def _transient(error: BaseException) -> bool:
    """A dropped connection or a timeout may go better next time; a refusal, an unknown name, TLS
    trouble, a proxy's refusal or an answer that is not HTTP will not."""
    if isinstance(error, (ConnectionRefusedError, ssl.SSLError)):
        return False
    return isinstance(error, (ConnectionError, TimeoutError, socket.timeout, http_client.IncompleteRead))


def _network_error(method: str, url: str, error: BaseException, proxy: Optional[Proxy] = None,
                   what: Optional[str] = None) -> "NetworkError":
    """One line for a request that failed on the way: the host it went to (and the proxy), what
    happened, what to check. Only the error's kind and errno text: never its message, which may
    quote a URL with a signature or a header; never a user or password the URL holds."""
    host = _host_of(url)
    where = "%s through the proxy %s" % (host, proxy) if proxy else host
    if isinstance(error, ssl.SSLCertVerificationError):
        return NetworkError("TLS certificate of %s not trusted (%s); add its CA with SSL_CERT_FILE or "
                            "/etc/docker/certs.d/%s/ca.crt, or use `insecure`" % (host, error.verify_message, host))
    if _met_plain_http(error):
        plain = NetworkError("%s answered plain HTTP to a TLS handshake (%s %s)" % (host, method, _redact_url(url)))
        plain.hint, plain.plain_http = "plain-http", True
        return plain
    if isinstance(error, _Overstayed):
        return NetworkError(str(error))
    if isinstance(error, (TimeoutError, socket.timeout)):
        return NetworkError("%s %s: timed out talking to %s" % (method, _redact_url(url), where))
    if isinstance(error, OSError) and str(error).startswith("Tunnel connection failed"):
        return _ProxyError("the proxy %s would not connect to %s (%s); check %s and its credentials, or exempt "
                           "%s with NO_PROXY" % (proxy or "", host, outside_text(str(error)[25:], 100),
                                                 proxy.variable if proxy and proxy.variable else "HTTPS_PROXY", host))
    if isinstance(error, OSError):
        reason = outside_text(error.strerror or type(error).__name__, 200)
    elif isinstance(error, http_client.IncompleteRead):
        reason = "the body ended early"
    else:
        reason = "the answer is not HTTP (%s)" % type(error).__name__
    if proxy is not None and isinstance(error, (ConnectionRefusedError, socket.gaierror)):
        # through a proxy, the only connection zeroimage opens is to the proxy: it is the one not there
        return _ProxyError("cannot reach the proxy %s for %s (%s %s): %s; is the proxy running, and is %s right? "
                           "(or exempt %s with NO_PROXY)" % (proxy, host, method, _redact_url(url), reason,
                                                            proxy.variable or "the proxy setting", host))
    hint = ""
    if isinstance(error, (ConnectionRefusedError, socket.gaierror)):
        hint = "; is the registry name and port right, and is it running?"
    return NetworkError("%s %s (%s %s): %s%s" % (what or "cannot reach", where, method, _redact_url(url), reason, hint))


# What OpenSSL says, across its versions, when the answer to a ClientHello is not TLS but plain
# HTTP ("HTTP/1.1 400 ..." read as a TLS record): 1.1 and 3.0 WRONG_VERSION_NUMBER, 3.2 and later
# RECORD_LAYER_FAILURE or PACKET_LENGTH_TOO_LONG, older ones UNKNOWN_PROTOCOL, and HTTP_REQUEST.
_PLAIN_HTTP_REASONS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL",
                       "HTTP_REQUEST")


def _met_plain_http(error: BaseException) -> bool:
    """Whether a TLS handshake failed because the server answered in plain HTTP."""
    if not isinstance(error, ssl.SSLError) or isinstance(error, ssl.SSLCertVerificationError):
        return False
    reason = str(getattr(error, "reason", None) or "").upper()
    said = str(error).upper().replace(" ", "_")
    return reason in _PLAIN_HTTP_REASONS or any(word in said for word in _PLAIN_HTTP_REASONS)


# ---- Authentication ----

MAX_TOKEN_BODY = 1024 * 1024
MAX_TOKEN_LIFETIME = 24 * 3600.0
DEFAULT_TOKEN_LIFETIME = 60.0        # the token spec's default for an answer without expires_in
_AUTH_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_AUTH_ITEM_RE = _Pattern(r'\s*(?:(%s)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)|(%s)|,)' % (_AUTH_TOKEN, _AUTH_TOKEN))
_HEADER_TOKEN_RE = _Pattern(r"[\x21-\x7e]{1,65536}")     # visible ASCII: nothing that could end a header


def parse_challenges(header: str) -> List[Tuple[str, Dict[str, str]]]:
    """Parse ``WWW-Authenticate``: several challenges, quoted values with commas and escapes.

    ``Bearer realm="https://a/token",service="reg",scope="repository:x:pull,push"``
    → ``[("bearer", {"realm": ..., "service": ..., "scope": ...})]``.
    """
    challenges = []
    pos, text = 0, (header or "")[:8192]
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


def challenges_of(response: "Response") -> str:
    """Every WWW-Authenticate of an answer as one header value: a registry may send Basic and Bearer
    in two headers (RFC 9110 allows either form)."""
    return ", ".join(response.headers.get_all("WWW-Authenticate") or [])


def _preferred_challenge(challenges) -> Optional[Tuple[str, Dict[str, str]]]:
    return next((c for c in challenges if c[0] == "bearer"), None) or \
        next((c for c in challenges if c[0] == "basic"), None)


def _basic_auth(creds: Optional[Credentials]) -> Optional[str]:
    if not creds or not creds.username:
        return None
    return "Basic " + base64.b64encode(("%s:%s" % (creds.username, creds.password)).encode("utf-8")).decode()


def repository_scope(repository: str, actions: str) -> str:
    """A token scope: ``repository:NAME:pull`` or ``repository:NAME:pull,push``."""
    return "repository:%s:%s" % (repository, actions)


def pull_scope(repository: str) -> str:
    return repository_scope(repository, "pull")


def push_scope(repository: str) -> str:
    return repository_scope(repository, "pull,push")


def merge_scopes(*groups: Sequence[str]) -> List[str]:
    """Scopes in the order first named, one per resource with every action any of them names: a
    challenge's ``repository:a:push,pull`` and our ``repository:a:pull,push`` are one scope."""
    merged = collections.OrderedDict()
    for scope in [scope for group in groups for scope in group]:
        resource, colon, actions = scope.rpartition(":")
        if not colon or not resource:
            merged.setdefault(scope, None)
            continue
        known = merged.setdefault(resource, [])
        known.extend(a for a in actions.split(",") if a and a not in known)
    return [resource if actions is None else "%s:%s" % (resource, ",".join(actions))
            for resource, actions in merged.items()]


def _header_token(token, where: str) -> str:
    if not isinstance(token, str) or not _HEADER_TOKEN_RE.fullmatch(token):
        raise _NotSent(401, "GET", where, "%s holds a token that cannot be sent in a header "
                                  "(spaces, line breaks or other control characters)" % where)
    return token


def _token_lifetime(value) -> float:
    """Seconds a token stays valid, from an answer's ``expires_in``: a finite positive number, capped at a
    day; anything else means the default minute."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 \
            or isinstance(value, float) and not math.isfinite(value):
        return DEFAULT_TOKEN_LIFETIME
    return float(min(value, MAX_TOKEN_LIFETIME))       # (compared first: an int may be past any float)


_TOKEN_REFUSED = "the token server refused the credentials"


class Authenticator:
    """Who zeroimage is to one registry: the registry's challenge (found by ``ping``), the credentials
    (given, or found as Docker finds them), and bearer tokens per set of scopes, each cached until
    it expires by ``clock`` (injectable, for tests). A lock makes parallel requests share one token.
    Talks to the network only through the transport."""

    def __init__(self, transport: Transport, host: str, credentials: Optional[Credentials] = None,
                 clock: Callable[[], float] = time.monotonic):
        self.transport = transport
        self.host = host                                    # as in references: docker.io, localhost:5000
        self.api_host = registry_api_host(host)
        self._credentials = credentials
        self._resolved = credentials is not None
        self._clock = clock
        self._lock = threading.RLock()
        self._base = None                                   # https://host or http://host, after ping
        self._challenge = None                              # (scheme, params), or None: no auth asked
        self._tokens = {}                                   # frozenset(scopes), or ("challenged", frozenset(scopes))
        #                                                     -> (header, expires at)

    @property
    def credentials(self) -> Optional[Credentials]:
        with self._lock:
            if not self._resolved:
                self._credentials = resolve_credentials(self.host, self.transport.environ, self.transport.display)
                self._resolved = True
            return self._credentials

    @property
    def user(self) -> Optional[str]:
        """The user name of the credentials in use, once found (None: anonymous, or not looked up yet)."""
        with self._lock:
            return self._credentials.username if self._resolved and self._credentials else None

    @property
    def asked(self) -> bool:
        """Whether the registry has asked for credentials so far (a challenge to its /v2/ or to a
        request); never asks the network."""
        with self._lock:
            return self._challenge is not None

    def without_secrets(self, text: str) -> str:
        """``text`` (a registry's own words) with each secret zeroimage sent it cut out, word for word: the
        password, the tokens, the Basic string; a registry that echoes them back (carelessly, or to be
        printed) is never repeated. The patterns of ``outside_text`` catch only secrets that look like
        ones; these are known."""
        with self._lock:
            creds = self._credentials if self._resolved else None
            secrets = [entry[0].split(" ", 1)[-1] for entry in self._tokens.values()
                       if isinstance(entry, tuple) and entry and isinstance(entry[0], str)]
        if creds is not None:
            secrets += [creds.password, creds.identity_token, creds.registry_token]
            if creds.password:
                secrets.append(base64.b64encode(("%s:%s" % (creds.username, creds.password)).encode()).decode())
        for secret in sorted(set(s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
            text = text.replace(secret, "<redacted>")
        return text

    def refused_credentials(self, error: "RegistryError") -> bool:
        """Whether ``error`` says the credentials themselves were refused (a wrong or expired password),
        not that they lack a right: the token service turned them down, or a registry that takes Basic
        credentials with every request answered 401. (A token registry's 401 for a scope, and 403, are
        about rights.) Never asks the network."""
        if error.detail == _TOKEN_REFUSED:
            return True
        with self._lock:
            return error.status == 401 and self._challenge is not None and self._challenge[0] == "basic"

    @property
    def scheme(self) -> Optional[str]:
        """"basic", "bearer", or None when the registry asks for no credentials."""
        self.ping()
        return self._challenge[0] if self._challenge else None

    def ping(self) -> str:
        """The API's base URL: HTTPS, or plain HTTP for loopback and --insecure; and the auth challenge."""
        with self._lock:
            if self._base is None:
                self._base = self._ping()
            return self._base

    def _ping(self) -> str:
        # A loopback registry is asked in plain HTTP first: nothing leaves the host, and making the TLS
        # context (the CA store loaded) took longer than a whole copy within a local registry. HTTPS
        # follows when HTTP finds no registry there (a 400 from an HTTPS-only server, or an error).
        # That first plain-HTTP question is asked once, never retried: a TLS server may answer it by
        # hanging up (stunnel, HAProxy, an openssl s_server), which is no reason to wait 7 s of retries.
        # When HTTPS then meets a plain-HTTP server, or the answer asks to try again (503), the
        # plain-HTTP server is asked again, with retries.
        loopback = _is_loopback(self.api_host)
        schemes = ["http", "https"] if loopback else ["https", "http"] if self.transport.insecure else ["https"]
        errors, once = {}, "http" if loopback else None
        while schemes:
            scheme = schemes.pop(0)
            url = "%s://%s/v2/" % (scheme, self.api_host)
            try:
                response = self.transport.request("GET", url, idempotent=False if scheme == once else None)
            except (NetworkError, RegistryError) as e:
                errors[scheme] = e
                dropped = errors.get("http") is not None and _transient(errors["http"].__cause__)
                if scheme == "https" and once and getattr(e, "plain_http", False) and dropped:
                    schemes, once = ["http"], None
                if not schemes:
                    raise self._ping_error(errors)
                continue
            with response:
                response.read_capped(MAX_ERROR_BODY, "the /v2/ answer")
            if scheme == once and response.status in RETRY_STATUSES:
                schemes, once = ["http"], None      # a plain-HTTP registry, busy: asked again, with retries
                continue
            if scheme == "http" and response.status == 400 and (loopback or "https" in errors):
                if "https" in errors:
                    raise errors["https"]       # an HTTPS-only server: the TLS problem is the one to report
                continue                        # (loopback: HTTPS is asked next)
            if response.status == 401:
                self._challenge = _preferred_challenge(parse_challenges(challenges_of(response)))
            elif response.status not in (200, 404):
                raise RegistryError(response.status, "GET", url, "the registry API check failed")
            self.transport.display.debug(
                "%s: API at %s://%s, auth %s", self.host, scheme, self.api_host,
                "%s (realm %s)" % (self._challenge[0], _redact_url(self._challenge[1].get("realm", "")))
                if self._challenge else "none")
            return "%s://%s" % (scheme, self.api_host)
        raise AssertionError("unreachable")

    @staticmethod
    def _ping_error(errors: Dict[str, ZeroImageError]) -> ZeroImageError:
        """Of the schemes' failures, the one to say: HTTPS's tells more (a certificate, a refusal),
        unless HTTPS met a plain-HTTP server, or the plain-HTTP attempt's proxy is the trouble."""
        https_error, http_error = errors.get("https"), errors.get("http")
        if http_error is None:
            return https_error
        if https_error is None or getattr(https_error, "plain_http", False) or isinstance(http_error, _ProxyError):
            return http_error
        return https_error

    def header(self, scopes: Sequence[str]) -> Optional[str]:
        """The Authorization value for a request needing ``scopes`` (None: send none)."""
        with self._lock:
            self.ping()
            if self._challenge is None:
                return None
            scheme, params = self._challenge
            creds = self.credentials
            if scheme == "basic":
                return _basic_auth(creds)
            if creds and creds.registry_token:
                return "Bearer " + _header_token(creds.registry_token, "the registry token in config.json")
            cached = self._tokens.get(frozenset(scopes))
            if cached and cached[1] > self._clock():
                return cached[0]
            return self._new_token(params, list(scopes), creds, [frozenset(scopes)])

    def challenged(self, scopes: Sequence[str], www_authenticate: str, used: Optional[str] = None) -> Optional[str]:
        """After a 401 to a request sent with ``used``: the Authorization for one more try (a token for
        the challenge's scopes and ours, new unless a parallel request just got it), or None when
        another try cannot help. ``remember`` it for ``scopes`` once it worked: a token service may
        grant less than was asked, so a token serves the scopes it was proven with."""
        with self._lock:
            self.ping()
            previous = self._challenge
            self._challenge = _preferred_challenge(parse_challenges(www_authenticate)) or previous
            if self._challenge is None:
                return None
            scheme, params = self._challenge
            creds = self.credentials
            if scheme == "basic":
                return _basic_auth(creds) if previous is None or previous[0] != "basic" else None
            if creds and creds.registry_token:
                return None
            # What the challenge names goes first: some token services read only the first scope
            # (go-containerregistry's bearer transport does the same, for the same reason).
            wanted = merge_scopes(params.get("scope", "").split(), scopes)
            key = ("challenged", frozenset(wanted))     # kept apart from the tokens proven for a request
            cached = self._tokens.get(key)
            if cached and cached[0] != used and cached[1] > self._clock():
                return cached[0]
            return self._new_token(params, wanted, creds, [key])

    def remember(self, scopes: Sequence[str], header: Optional[str]) -> None:
        """``header`` worked for a request needing ``scopes``: the next such request sends it too."""
        with self._lock:
            found = next((entry for entry in self._tokens.values() if entry[0] == header), None)
            if found is not None:
                self._tokens[frozenset(scopes)] = found

    def verify(self) -> bool:
        """Check the credentials with the registry: False when it asks for none, AuthenticationError
        when it refuses them."""
        with self._lock:
            base = self.ping()
            if self._challenge is None:
                return False
            scheme, params = self._challenge
            if scheme == "bearer":
                self._new_token(params, [], self.credentials, [frozenset()])
                return True
        with self.transport.request("GET", base + "/v2/", auth=self.header([])) as response:
            response.read_capped(MAX_ERROR_BODY, "the /v2/ answer")
        if response.status in (401, 403):
            raise AuthenticationError(response.status, "GET", base + "/v2/", "wrong username or password")
        return True

    def _new_token(self, params: Dict[str, str], scopes: List[str], creds, keys) -> str:
        self.transport.display.debug(
            "%s: asking %s for a token (%s) for %s", self.host, _redact_url(params.get("realm", "")),
            "identity token" if creds and creds.identity_token else "user %s" % creds.username
            if creds and creds.username else "anonymous", ", ".join(scopes) or "no scope")
        token, lifetime = self._fetch_token(params, scopes, creds)
        header = "Bearer " + token
        expires = self._clock() + max(lifetime - min(30.0, lifetime / 4), 0.0)
        for key in keys:
            self._tokens[key] = (header, expires)
        return header

    def _fetch_token(self, params: Dict[str, str], scopes: Sequence[str], creds: Optional[Credentials]):
        realm = params.get("realm") or ""
        problem = url_problem(realm)
        if problem:
            raise _NotSent(401, "GET", self._base, "the registry's token realm is %s" % problem)
        realm_parts = urllib.parse.urlsplit(realm)
        shown = _redact_url(realm)
        if creds and realm_parts.scheme == "http" and not (self.transport.insecure or _is_loopback(realm_parts.netloc)):
            raise _NotSent(401, "GET", shown, "refusing to send credentials to a plain-HTTP "
                                      "token realm (use `insecure` if you trust this network)")
        query = [("service", params["service"])] if params.get("service") else []
        if creds and creds.identity_token:
            form = query + [("grant_type", "refresh_token"), ("refresh_token", creds.identity_token),
                            ("client_id", "zeroimage")] + ([("scope", " ".join(scopes))] if scopes else [])
            response = self.transport.request("POST", realm, {"Content-Type": "application/x-www-form-urlencoded"},
                                              urllib.parse.urlencode(form).encode())
            if response.status != 404:
                return self._token_answer(response, shown)
            response.close()
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query + [("scope", s) for s in scopes])
        response = self.transport.request("GET", url, auth=_basic_auth(creds))
        return self._token_answer(response, shown)

    @staticmethod
    def _token_answer(response: Response, shown: str) -> Tuple[str, float]:
        with response:
            data = response.read_capped(MAX_TOKEN_BODY, "the token answer")
        if response.status in (401, 403):
            raise AuthenticationError(response.status, "GET", shown, _TOKEN_REFUSED)
        if response.status != 200:
            raise RegistryError(response.status, "GET", shown, "the token server answered %d" % response.status)
        try:
            answer = json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            answer = None
        if not isinstance(answer, dict):
            raise RegistryError(200, "GET", shown, "the token answer is not a JSON object")
        token = answer.get("token") or answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise RegistryError(200, "GET", shown, "the token answer holds no token")
        return _header_token(token, "the token answer from " + shown), _token_lifetime(answer.get("expires_in"))


# ---- Registry client ----

UPLOAD_ATTEMPTS = 3
UPLOAD_KINDS = ("monolithic", "chunked")


class _ResumingReader:
    """Reads ``size`` bytes from ``fetch(offset)`` answers, picking up after a broken connection:
    MAX_RESUMES times at most, within MAX_RETRY_SECONDS of the first break."""

    MAX_RESUMES = 3

    def __init__(self, fetch, size: int):
        self._fetch = fetch
        self._size = size
        self._done = 0
        self._resumes = 0
        self._first_break = None
        self._response = fetch(0)

    def read(self, n: int = -1) -> bytes:
        while True:
            try:
                data = self._response.read(n)
            except NetworkError as e:
                data, error = b"", e
            else:
                error = None
            if data or self._done >= self._size or n == 0:
                self._done += len(data)
                return data
            self._first_break = self._first_break or time.monotonic()
            if self._resumes >= self.MAX_RESUMES or time.monotonic() - self._first_break > MAX_RETRY_SECONDS:
                raise error or NetworkError("the download from %s broke off at %d of %d bytes"
                                            % (_redact_url(self._response.url), self._done, self._size))
            self._resumes += 1
            self._response.close()
            self._response = self._fetch(self._done)
            if self._response.status == 200:        # the server ignored Range: skip what we have
                copy_stream(self._response, _Discard(), self._done)

    @property
    def left(self) -> Optional[int]:
        return self._response.left

    def close(self) -> None:
        self._response.close()


class _Discard:
    """A writer that keeps nothing (the bytes a server sent again after ignoring Range)."""

    def write(self, data) -> int:
        return len(data)


class Upload:
    """An upload session a registry opened (POST /v2/NAME/blobs/uploads/). ``finish(blob, kind)``
    sends the blob "monolithic" (one PUT ``?digest=`` carrying the bytes) or "chunked" (the bytes in
    one PATCH without Content-Range, as docker, skopeo and crane send them, then an empty PUT
    ``?digest=`` to the Location the PATCH's answer gave); ``cancel()`` ends it, best-effort and
    within CLEANUP_TIMEOUT (on the way out)."""

    def __init__(self, registry: "Registry", repository: str, url: str, scopes: Sequence[str]):
        self.registry, self.repository, self.url, self.scopes = registry, repository, url, list(scopes)

    def finish(self, blob: Blob, kind: str = "monolithic") -> None:
        """Send the blob; its bytes go as ``blob.open`` opens them anew for each try, so a PUT that
        meets a 5xx, a 429 or a dropped connection is sent again in place, not the whole upload."""
        if kind == "chunked":
            self._patch(blob.open, blob.size)
            self.commit(blob.digest)
        else:
            self.commit(blob.digest, blob.open, blob.size)

    def commit(self, digest: str, body=b"", length: int = 0) -> None:
        """The ``PUT ?digest=`` that ends the upload (with the last bytes, or none)."""
        parts = urllib.parse.urlsplit(self.url)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True) + [("digest", digest)]
        url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, urllib.parse.urlencode(query), ""))
        with self.registry.request("PUT", url, self.scopes, {"Content-Type": "application/octet-stream"},
                                   body, ok=(200, 201, 204), length=length) as response:
            response.read_capped(MAX_ERROR_BODY, "the upload answer")

    def send_chunk(self, data: bytes, offset: int) -> None:
        """One PATCH with ``Content-Range: FIRST-LAST`` (the spec's chunked upload, in order)."""
        headers = {"Content-Type": "application/octet-stream",
                   "Content-Range": "%d-%d" % (offset, offset + len(data) - 1)}
        with self.registry.request("PATCH", self.url, self.scopes, headers, data, ok=(200, 201, 202, 204),
                                   length=len(data)) as response:
            response.read_capped(MAX_ERROR_BODY, "the upload answer")
        self.url = self.registry.upload_location(response, self.url) or self.url

    def received(self) -> Optional[int]:
        """How many bytes the registry holds of this upload (``GET`` on it: ``Range: 0-LAST``), or
        None when it does not say."""
        with self.registry.request("GET", self.url, self.scopes, ok=(200, 204)) as response:
            response.read_capped(MAX_ERROR_BODY, "the upload status")
        match = re.fullmatch(r"(?:bytes=)?0-([0-9]{1,18})", (response.headers.get("Range") or "").strip())
        self.url = self.registry.upload_location(response, self.url) or self.url
        if match is None:
            return None
        last = int(match.group(1))
        return 0 if last == 0 else last + 1     # distribution says 0-0 for nothing yet (no chunk is 1 byte)

    def _patch(self, body, size: int) -> None:
        # No Content-Range: GHCR refuses ranged chunks over 4 MiB, and a registry that wants PATCH takes
        # the whole blob in one. 202 is the spec's answer; pulp_container answered 204 (pulp_container#2199).
        with self.registry.request("PATCH", self.url, self.scopes, {"Content-Type": "application/octet-stream"},
                                   body, ok=(200, 201, 202, 204), length=size) as response:
            response.read_capped(MAX_ERROR_BODY, "the upload answer")
        self.url = self.registry.upload_location(response, self.url) or self.url

    def cancel(self, timeout: float = CLEANUP_TIMEOUT) -> None:
        with contextlib.suppress(ZeroImageError, OSError, http_client.HTTPException):
            self.registry.request("DELETE", self.url, self.scopes, ok=(200, 202, 204, 404),
                                  timeout=timeout, cancellable=False).close()


def upload_url(location: str, base: str, api: str) -> Optional[str]:
    """The URL an upload goes on to: ``location`` (relative ones, query and all, joined to ``base``);
    None when it is empty or unusable. A registry behind a proxy that ends TLS for it may not know its
    own scheme and say ``http://`` for itself (distribution#123, #479): an upload to the HTTPS API's own
    host stays on HTTPS, never sent in plain text."""
    try:
        url = urllib.parse.urljoin(base, location)
        parts, api_parts = urllib.parse.urlsplit(url), urllib.parse.urlsplit(api)
        port, api_port = parts.port, api_parts.port
    except ValueError:
        return None
    if not location or url_problem(url):
        return None
    if api_parts.scheme == "https" and parts.scheme == "http" and parts.hostname == api_parts.hostname \
            and port in (None, 80, api_port):
        url = urllib.parse.urlunsplit(("https", api_parts.netloc, parts.path, parts.query, ""))
    return url


MAX_PAGES = 10000                  # pages of one paged list (tags, referrers)
MAX_PAGE_ITEMS = 1000000           # items of one paged list (tags in one repository)
MAX_REFERRERS = 10000              # referrers of one manifest
_HEAD_REFUSED = (405, 501)         # HEAD answers of registries that take only GET there
_NO_REFERRERS_API = (400, 404, 405, 501)     # answers to GET /v2/NAME/referrers/DIGEST from registries without it
MAX_LINK_HEADER = 8192             # characters of an answer's Link headers
_LINK_TARGET_RE = _Pattern(r"[\s,]*<([^<>]*)>")
_LINK_PARAM_RE = _Pattern(r'\s*;\s*(%s)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^\s;,"]*))?' % _AUTH_TOKEN)


def parse_links(header: str) -> List[Tuple[str, Dict[str, str]]]:
    """Parse a ``Link`` header (RFC 8288): ``</v2/a/tags/list?n=2&last=b>; rel="next", <...>; rel=prev``
    → ``[("/v2/a/tags/list?n=2&last=b", {"rel": "next"}), ...]``. Targets are as written (relative or
    absolute, not checked); parameter names are lowercased; parsing stops at what it cannot read."""
    links, pos, text = [], 0, header or ""
    while True:
        match = _LINK_TARGET_RE.match(text, pos)
        if not match:
            return links
        pos, params = match.end(), {}
        while True:
            param = _LINK_PARAM_RE.match(text, pos)
            if not param or param.end() == pos:
                break
            pos = param.end()
            value = param.group(2) or ""
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params.setdefault(param.group(1).lower(), value)
        links.append((match.group(1).strip(), params))


def next_link(header: str) -> Optional[str]:
    """The target of the first ``rel="next"`` link in a Link header (rel may list several relations),
    or None. ValueError when the header is too long to be read whole: a page list cut short would
    look complete."""
    if len(header or "") > MAX_LINK_HEADER:
        raise ValueError("its Link header is over %d characters" % MAX_LINK_HEADER)
    return next((target for target, params in parse_links(header)
                 if "next" in params.get("rel", "").lower().split()), None)


def next_page_url(target: str, page: str, api: str) -> Tuple[Optional[str], str]:
    """(URL, "") of the page a next link names, joined to the ``page`` it came with; or (None, why
    not) when it leaves the registry: another scheme, host or port (where credentials must not go),
    another path than ``page``'s (another endpoint), or no usable URL (javascript:, spaces). A
    registry behind a TLS-ending proxy may say ``http://`` for itself: that stays on HTTPS, as
    uploads do (``upload_url``)."""
    url = upload_url(target, page, api)
    if url is None:
        try:
            joined = urllib.parse.urljoin(page, target) if _URL_CHARS_RE.fullmatch(target or "") else target
        except ValueError:
            joined = target
        return None, url_problem(joined) or "not a usable URL"
    if _origin(url) != _origin(api):
        parts = urllib.parse.urlsplit(url)
        return None, "another host, port or scheme (%s)" % outside_text("%s://%s" % (parts.scheme, _host_of(url)), 100)
    if urllib.parse.unquote(urllib.parse.urlsplit(url).path) != urllib.parse.unquote(urllib.parse.urlsplit(page).path):
        return None, "another path (%s)" % _redact_url(url)
    return url, ""


def tag_list_page(data: bytes, skipped: Optional[List[str]] = None) -> List[str]:
    """The tags of one page of a tag list (``{"name": ..., "tags": [...]}``; a null ``tags`` is none).
    ValueError when it is not that, or lists a tag that is not one (not a string, or outside the tag
    grammar: it is printed, and may be given back to a registry); with ``skipped``, such an entry is
    left out instead, and added there as printable text (``sync`` goes on with the others)."""
    try:
        answer = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValueError("the tag list is not JSON") from None
    tags = answer.get("tags", []) if isinstance(answer, dict) else None
    tags = [] if tags is None and isinstance(answer, dict) else tags
    if not isinstance(tags, list):
        raise ValueError("the tag list is not a JSON object with a tags list")
    valid = []
    for tag in tags:
        if isinstance(tag, str) and _TAG_RE.fullmatch(tag):
            valid.append(tag)
        elif skipped is None:
            raise ValueError("the tag list holds %s, which is not a tag" % outside_text(json.dumps(tag), 100))
        else:
            skipped.append(outside_text(json.dumps(tag), 100))
    return valid


def _upload_refused(error: BaseException) -> bool:
    """Whether an upload failed because the registry will not take a blob that way (one PUT with the
    bytes, or PATCHes): a 4xx that is not about credentials or pace, or 501 Not Implemented. Not a
    GET's: that is the blob's source (another repository or registry) failing to give its bytes."""
    return isinstance(error, RegistryError) and not isinstance(error, AuthenticationError) \
        and error.method != "GET" \
        and (400 <= error.status < 500 and error.status not in (408, 429) or error.status == 501)


class Registry:
    """One registry's distribution API: manifests, blobs, uploads and mounts, all streaming and every
    read verified. Authentication is its Authenticator's; connections are its Transport's."""

    def __init__(self, host: str, transport: Transport, auth: Optional[Authenticator] = None):
        self.host = host                                    # as in references: docker.io, localhost:5000
        self.transport = transport
        self.auth = auth or Authenticator(transport, host)
        self._lock = threading.Lock()
        self._manifests = {}                                # (repository, reference) -> get_manifest()
        self.upload_mode = None                             # "monolithic" or "chunked", once one worked
        self._streaming = None      # whether ranged chunks fed as a layer is made go up (None: not tried yet)
        self._stream_probe = None   # the first such upload, which the next waits for while that is not known
        self._probing = threading.Lock()                    # held by the upload that finds the way
        self._probe_failure = None      # how that upload failed when the registry took no blob (retries spent)
        # What this registry will not answer HEAD for ("manifest", "blob"; "manifest digest" when its
        # HEAD answers carry no usable digest): asked with GET instead, for the rest of the session.
        self.head_refused = set()
        self._present = set()       # (repository, digest) of blobs a HEAD found this session: not asked again
        self._head_known = set()                            # kinds whose first HEAD was answered
        self._heading = threading.Lock()                    # held by that first HEAD: it finds the way
        self.referrers_api = None   # whether its referrers API answers (None: not asked yet this session)


    def may_stream(self) -> bool:
        """Whether a layer may go up as it is made (chunks fed as it is compressed): not once this
        registry refused such an upload in this session. While that is not known, the first such
        upload is waited for (its layer written whole), so it alone finds out."""
        probe = self._stream_probe
        if self._streaming is None and probe is not None:
            probe.join()
        return self._streaming is not False

    def stream_started(self, stream) -> None:
        """A streamed upload begins: while it is not known whether the registry takes them, the probe
        the next waits for."""
        if self._streaming is None:
            self._stream_probe = stream

    def stream_ended(self, error: Optional[BaseException] = None) -> None:
        """A streamed upload ended: it went up (no ``error``), or the registry refused it (remembered
        for the session: no other layer tries), or it failed for another reason (nothing learned)."""
        if error is None:
            self._streaming = True
        elif _upload_refused(error) and self._streaming is None:
            self._streaming = False

    def request(self, method: str, path: str, scopes: Sequence[str], headers=None, body=None,
                ok: Sequence[int] = (200,), length: Optional[int] = None, idempotent: Optional[bool] = None,
                timeout: Optional[float] = None, cancellable: bool = True) -> Response:
        """An API request with auth; after a 401, one more try with what the challenge asks for; an
        error (of the class its status calls for) when the status is not in ``ok``.

        A streamed body cannot be sent twice, so a request with one gets no second try; bytes or an
        opener (``Transport.request``) can.
        """
        base = self.auth.ping()
        url = path if "://" in path else base + path
        options = dict(length=length, idempotent=idempotent, timeout=timeout, cancellable=cancellable)
        auth = self.auth.header(scopes)
        response = self.transport.request(method, url, headers, body, auth=auth, auth_origin=_origin(base), **options)
        if response.status == 401 and _replayable(body):
            challenge = challenges_of(response)
            retry = self.auth.challenged(scopes, challenge, auth)
            if retry is not None:
                with response:
                    if method != "HEAD":
                        response.read_capped(MAX_ERROR_BODY, "an error answer")
                response = self.transport.request(method, url, headers, body, auth=retry, auth_origin=_origin(base),
                                                  **options)
                if response.status not in (401, 403):
                    self.auth.remember(scopes, retry)
        if response.status in ok:
            return response
        raise self._error(response, method, url)

    def _error(self, response: Response, method: str, url: str) -> RegistryError:
        body = b""
        with response:
            if method != "HEAD":
                with contextlib.suppress(ZeroImageError, OSError, http_client.HTTPException):
                    body = response.read_capped(MAX_ERROR_BODY, "an error answer")
        errors = []
        with contextlib.suppress(ValueError, AttributeError, UnicodeDecodeError, RecursionError):
            found = json.loads(body.decode("utf-8")).get("errors", [])
            errors = [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []
        detail = outside_text(self.auth.without_secrets("; ".join(_said(e) for e in errors[:5])), 300)
        cls = {401: AuthenticationError, 403: AuthenticationError, 404: NotFoundError}.get(response.status, RegistryError)
        error = cls(response.status, method, _redact_url(url), detail, errors)
        error.retry_after = Transport.retry_after(response)
        error.spent = response.spent
        return error

    # -- manifests --

    def get_manifest(self, repository: str, reference: str) -> Tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest or index, verified against the digest it was asked
        by (any registered algorithm) and the digest the registry says it has.

        Read once per client: an index is fetched once for all the platforms of a build, and a
        tag that moves during a command does not mix two versions of an image.
        """
        key = (repository, reference)
        with self._lock:
            if key in self._manifests:
                return self._manifests[key]
        found = self._fetch_manifest(repository, reference)
        with self._lock:
            self._manifests.setdefault((repository, found[2]), found)     # a tag's manifest, by digest too
            return self._manifests.setdefault(key, found)

    def _manifest_answer(self, repository: str, reference: str,
                         scopes: Optional[Sequence[str]] = None) -> Tuple[bytes, Response]:
        """GET a manifest: its bytes (capped) and the answer, verified against the digest it was asked
        by (any registered algorithm) and the digest the answer names. ``scopes``: as ``head_digest``'s."""
        by_digest = ":" in reference
        what = "manifest %s/%s%s%s" % (self.host, repository, "@" if by_digest else ":", reference)
        if by_digest:
            parse_digest(reference)     # an algorithm zeroimage cannot verify is refused before asking
        with self.request("GET", "/v2/%s/manifests/%s" % (repository, reference),
                          [pull_scope(repository)] if scopes is None else scopes,
                          {"Accept": ", ".join(MANIFEST_ACCEPT)}) as response:
            data = response.read_capped(MAX_JSON_SIZE, "manifest %s" % reference)
        if by_digest:
            verify_bytes(data, reference, what)
        answered = response.headers.get("Docker-Content-Digest")
        if answered and is_digest(answered.strip()):
            verify_bytes(data, answered.strip(), what)
        return data, response

    def _fetch_manifest(self, repository: str, reference: str,
                        scopes: Optional[Sequence[str]] = None) -> Tuple[bytes, str, str]:
        by_digest = ":" in reference
        named = "%s/%s%s%s" % (self.host, repository, "@" if by_digest else ":", reference)
        data, response = self._manifest_answer(repository, reference, scopes)
        media_type = (response.headers.get("Content-Type") or "").split(";")[0].strip()
        parsed = json_object(data, "manifest " + named)
        url = _redact_url(response.url)
        if parsed.get("schemaVersion") == 1 or media_type in DOCKER_SCHEMA1:
            raise RegistryError(200, "GET", url, message="%s has a Docker schema 1 manifest, which zeroimage does "
                                "not read; re-push it with a current tool" % named)
        media_type = parsed.get("mediaType") or media_type
        if media_type not in IMAGE_MANIFEST_TYPES + INDEX_TYPES and "mediaType" not in parsed \
                and parsed.get("schemaVersion") == 2:
            # An OCI manifest need not name its type, and some registries serve one as
            # application/json or application/octet-stream: its fields say what it is.
            media_type = OCI_INDEX if isinstance(parsed.get("manifests"), list) else \
                OCI_MANIFEST if isinstance(parsed.get("config"), dict) else media_type
        if media_type not in IMAGE_MANIFEST_TYPES + INDEX_TYPES:
            raise RegistryError(200, "GET", url, message="%s is a %s, not an image" % (
                named, outside_text(media_type, 100) or "manifest of unknown type"))
        return data, media_type, reference if by_digest else sha256_digest(data)

    def manifest_exists(self, repository: str, reference: str) -> bool:
        """Whether the manifest is there: a HEAD, or where HEAD is refused, a GET (read whole, capped)."""
        path = "/v2/%s/manifests/%s" % (repository, reference)
        scopes, headers = [pull_scope(repository)], {"Accept": ", ".join(MANIFEST_ACCEPT)}
        response = self._head("manifest", path, scopes, headers, ok=(200, 404))
        if response is None:
            with self.request("GET", path, scopes, headers, ok=(200, 404)) as response:
                response.read_capped(MAX_JSON_SIZE, "manifest %s" % reference)
        return response.status == 200

    # -- HEAD, or GET where a registry refuses it --

    def _head(self, kind: str, path: str, scopes: Sequence[str], headers=None,
              ok: Sequence[int] = (200,)) -> Optional[Response]:
        """A HEAD of a ``kind`` of thing ("manifest", "blob"), or None when this registry does not
        answer HEAD there (405, 501: GitHub Enterprise Server's registry and some mirrors take only
        GET, as containerd allows), which is remembered: the caller asks with GET, now and for the
        rest of the session. Until the first HEAD of a kind is answered, they go one at a time, so
        a registry that refuses them gets one."""
        if kind in self.head_refused:
            return None
        if kind in self._head_known:
            return self._try_head(kind, path, scopes, headers, ok)
        with self._heading:
            if kind in self.head_refused:
                return None
            return self._try_head(kind, path, scopes, headers, ok)

    def _try_head(self, kind: str, path: str, scopes: Sequence[str], headers, ok: Sequence[int]) -> Optional[Response]:
        try:
            response = self.request("HEAD", path, scopes, headers, ok=tuple(ok) + _HEAD_REFUSED)
        except RegistryError:
            self._head_known.add(kind)      # answered (with an error of its own): HEAD is heard there
            raise
        self._head_known.add(kind)
        if response.status in _HEAD_REFUSED:
            self._refuse_head(kind, "answers HEAD of a %s with HTTP %d" % (kind, response.status))
            return None
        return response

    def _refuse_head(self, kind: str, why: str) -> None:
        if kind not in self.head_refused:
            self.head_refused.add(kind)
            self.transport.display.debug("%s %s; asking with GET from now on", self.host, why)

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str, scopes) -> str:
        return self._put_manifest(repository, reference, data, media_type, scopes)[0]

    def put_referrer(self, repository: str, data: bytes, scopes) -> bool:
        """PUT a manifest with a ``subject`` (by its digest); whether the referrers API lists it, so
        that no referrers tag need be kept: the registry says it processed the subject (``OCI-Subject``)
        and its referrers API, asked for that subject, answers a list that holds it. The header alone
        is not enough: ECR sent it for a time without serving the API (sigstore-js#1183, #1187), and an
        API that answers an empty list would hide the artifact as well."""
        digest, headers = self._put_manifest(repository, sha256_digest(data), data, OCI_MANIFEST, scopes)
        if not (headers.get("OCI-Subject") or "").strip():
            return False
        subject = json_object(data, "the artifact manifest").get("subject")
        if isinstance(subject, dict) and is_digest(subject.get("digest")) \
                and self.has_referrers_api(repository, subject["digest"], digest):
            return True
        self.transport.display.info("%s says it processed the subject of %s (OCI-Subject), but its referrers "
                                    "API does not list it; keeping the referrers tag", self.host, _short(digest))
        return False

    def has_referrers_api(self, repository: str, digest: str, listed: Optional[str] = None) -> bool:
        """Whether this registry's referrers API answers: a 200 with an OCI image index for ``digest``
        (asked once a session, a list read before counting too; with ``listed``, asked now, and the
        list must hold that digest). Anything else, an error included, is not knowing that it does."""
        if self.referrers_api is None or listed is not None:
            found = None
            with contextlib.suppress(RegistryError):
                found = self.referrers(repository, digest)      # says, as it reads
            if listed is not None:
                return bool(found) and any(d.get("digest") == listed for d in found)
        return bool(self.referrers_api)

    def _put_manifest(self, repository: str, reference: str, data: bytes, media_type: str, scopes):
        with self.request("PUT", "/v2/%s/manifests/%s" % (repository, reference), scopes,
                          {"Content-Type": media_type}, data, ok=(200, 201, 202)) as response:
            response.read_capped(MAX_ERROR_BODY, "the manifest answer")
        digest = sha256_digest(data)
        answered = (response.headers.get("Docker-Content-Digest") or "").strip()
        if answered.startswith("sha256:") and answered != digest:
            raise DigestMismatchError("the pushed manifest", digest, outside_text(answered, 100))
        return digest, response.headers

    def referrers(self, repository: str, digest: str) -> Optional[List[dict]]:
        """The referrers API's list for a manifest (descriptors, every page), or None when the
        registry has no referrers API: it answers 404 (the spec's sign), or 400, 405 or 501 (an
        unknown path to some registries), or something other than an OCI index (a web page): then
        the referrers tag holds the list."""
        def page(response: Response, data: bytes, first: bool) -> Optional[List[dict]]:
            kind = (response.headers.get("Content-Type") or "").split(";")[0].strip()
            if response.status in _NO_REFERRERS_API or (first and kind not in (OCI_INDEX, "application/json")):
                if not first:
                    raise ValueError("the referrers list's next page is missing")
                self.referrers_api = False
                return None
            found = index_manifests(json_object(data, "the referrers list"), "the referrers list")
            self.referrers_api = True
            return found
        return self.pages("/v2/%s/referrers/%s" % (repository, digest), [pull_scope(repository)], "the referrers list",
                          page, {"Accept": OCI_INDEX}, ok=(200,) + _NO_REFERRERS_API, max_items=MAX_REFERRERS)

    def referrers_index(self, repository: str, digest: str, scopes: Optional[Sequence[str]] = None) -> Optional[dict]:
        """The index the referrers tag schema keeps for ``digest`` (read anew, never from the cache:
        it is about to be changed), or None when there is no such tag. ``scopes``: as ``head_digest``'s
        (a pusher about to change it reads it with the push's token)."""
        try:
            data, media_type, _ = self._fetch_manifest(repository, referrers_tag(digest), scopes)
        except NotFoundError:
            return None
        if media_type != OCI_INDEX:
            raise RegistryError(200, "GET", "%s/%s:%s" % (self.host, repository, referrers_tag(digest)),
                                message="the referrers tag %s holds %s, not an OCI index; leaving it as it is"
                                % (referrers_tag(digest), media_type))
        index = manifest_object(data, "the referrers tag %s" % referrers_tag(digest))
        index_manifests(index, "the referrers tag %s" % referrers_tag(digest))
        return index

    def head_digest(self, repository: str, reference: str, scopes: Optional[Sequence[str]] = None) -> str:
        """The digest of the manifest a reference names, as the registry serves it: a digest reference
        itself once a HEAD found it there; a tag's, the ``Docker-Content-Digest`` a HEAD answers with
        (not verified: nothing was read). Where HEAD is refused or answers without a usable digest
        (missing, or not ALGORITHM:HEX), the manifest is read (GET, capped, verified) and hashed, and
        GET is used from then on. NotFoundError when there is no such manifest. ``scopes``: those of
        the token to ask with (a pusher's: no token for the pull alone); the pull by default."""
        path = "/v2/%s/manifests/%s" % (repository, reference)
        scopes = [pull_scope(repository)] if scopes is None else scopes
        if "manifest digest" not in self.head_refused:
            try:
                response = self._head("manifest", path, scopes, {"Accept": ", ".join(MANIFEST_ACCEPT)})
            except NotFoundError as e:      # a HEAD answer has no body to say what is missing
                raise NotFoundError(e.status, e.method, e.url, e.detail or "no such tag, digest or repository") from e
            if response is not None:
                answered = (response.headers.get("Docker-Content-Digest") or "").strip()
                if ":" in reference:
                    return reference
                if is_digest(answered):
                    return answered
                self._refuse_head("manifest digest", "gives no usable Docker-Content-Digest in its HEAD answers")
        data, _ = self._manifest_answer(repository, reference, scopes)     # (the same token as the HEAD's)
        return reference if ":" in reference else sha256_digest(data)

    def delete_manifest(self, repository: str, digest: str) -> None:
        """DELETE a manifest by digest (its tags go with it). Distribution's token auth asks for the
        ``delete`` action (``repository:NAME:delete``); a registry that wants more says so in its
        challenge, which the retry after a 401 adds."""
        with self.request("DELETE", "/v2/%s/manifests/%s" % (repository, digest),
                          [repository_scope(repository, "delete")], ok=(200, 202, 204)) as response:
            response.read_capped(MAX_ERROR_BODY, "the delete answer")

    # -- tags --

    def list_tags(self, repository: str, skipped: Optional[List[str]] = None) -> List[str]:
        """Every tag of a repository, in the registry's order, each once, following its pages: the
        distribution spec's "Listing Tags" (``Link: <URL>; rel="next"``, whose ``n`` and ``last`` are
        followed as the registry wrote them); see ``pages``. ``skipped``: as ``tag_list_page`` (as many
        as MAX_PAGE_ITEMS: more is an error, as more tags are)."""
        def page(response: Response, data: bytes, first: bool) -> List[str]:
            tags = tag_list_page(data, skipped)
            if skipped is not None and len(skipped) > MAX_PAGE_ITEMS:
                raise ValueError("the tag list has over %d entries that are not tags" % MAX_PAGE_ITEMS)
            return tags
        tags = self.pages("/v2/%s/tags/list" % repository, [pull_scope(repository)], "the tag list", page)
        return list(dict.fromkeys(tags))

    def pages(self, path: str, scopes: Sequence[str], what: str,
              page: Callable[[Response, bytes, bool], Optional[list]], headers=None, ok: Sequence[int] = (200,),
              max_items: Optional[int] = None) -> Optional[list]:
        """The one walk of a paged list (tags, referrers, any later one): GET ``path``, then every
        ``Link: <URL>; rel="next"``, each page read whole (MAX_JSON_SIZE, ANSWER_DEADLINE) and made
        items by ``page(response, data, first)`` (None: no list here, the walk ends with None;
        ValueError: the page is not one). A next page elsewhere (``next_page_url``), a page read
        twice or one that lists only items read before (a loop, under any URL), more than MAX_PAGES
        pages or ``max_items`` (MAX_PAGE_ITEMS) items is an error naming the registry, never a list
        cut short."""
        url, seen, items, known = self.auth.ping() + path, set(), [], set()
        max_items = MAX_PAGE_ITEMS if max_items is None else max_items
        for number in range(MAX_PAGES):
            seen.add(url)
            with self.request("GET", url, scopes, headers, ok=ok) as response:
                data = response.read_capped(MAX_JSON_SIZE, what)
            shown = _redact_url(response.url)
            try:
                found = page(response, data, number == 0)
                target = next_link(", ".join(response.headers.get_all("Link") or [])) if found is not None else None
            except (ValueError, ArchiveError) as e:
                raise RegistryError(response.status, "GET", shown, str(e)) from None
            if found is None:
                return None
            keys = [item if isinstance(item, str) else canonical_json(item) for item in found]
            if keys and known.issuperset(keys):     # a next page under another URL that says it all again
                raise RegistryError(response.status, "GET", shown, "%s's next page lists only what earlier pages "
                                    "did (a loop)" % what)
            known.update(keys)
            items.extend(found)
            if len(items) > max_items:
                raise RegistryError(response.status, "GET", shown, "%s has over %d items" % (what, max_items))
            if target is None:
                return items
            url, why = next_page_url(target, response.url, self.auth.ping())
            if url is None:
                raise RegistryError(response.status, "GET", shown, "refusing to follow %s's next page to %s"
                                    % (what, why))
            if url in seen:
                raise RegistryError(response.status, "GET", shown, "%s's next page is one already read (a loop)"
                                    % what)
        raise RegistryError(200, "GET", _redact_url(url), "%s has over %d pages" % (what, MAX_PAGES))

    # -- blobs --

    def blob_exists(self, repository: str, digest: str, scopes=None) -> bool:
        """Whether the repository holds a blob: a HEAD, or where HEAD is refused, a GET of its first byte
        (``Range: bytes=0-0``; 416 is an empty blob's answer), whose answer is closed unread when the
        server ignores the Range and sends the whole blob."""
        if (repository, digest) in self._present:
            return True
        path, scopes = "/v2/%s/blobs/%s" % (repository, digest), scopes or [pull_scope(repository)]
        response = self._head("blob", path, scopes, ok=(200, 404))
        if response is None:
            with self.request("GET", path, scopes, {"Range": "bytes=0-0"}, ok=(200, 206, 404, 416)) as response:
                if response.status != 200:      # one byte, or an error's few
                    response.read_capped(MAX_ERROR_BODY, "the blob answer")
        if response.status != 404:
            self._present.add((repository, digest))
        return response.status != 404

    def open_blob(self, repository: str, digest: str, size: int, within: Optional[float] = None) -> VerifyingReader:
        """A verifying stream of a blob (redirects to other hosts followed without our Authorization),
        all of it within ``within`` seconds when given (a blob read whole: a config).

        A download that breaks off resumes with ``Range`` (or starts over when the server ignores it).
        """
        path = "/v2/%s/blobs/%s" % (repository, digest)
        until = None if within is None else time.monotonic() + within

        def fetch(offset: int) -> Response:
            headers = {"Range": "bytes=%d-" % offset} if offset else {}
            response = self.request("GET", path, [pull_scope(repository)], headers, ok=(200, 206))
            response.until, response.within = until, within
            return response
        reader = _ResumingReader(fetch, size)
        try:
            return VerifyingReader(reader, digest, size, "blob %s from %s/%s" % (digest, self.host, repository))
        except BaseException:       # an empty blob is checked at once: its answer must not stay open
            reader.close()
            raise

    def read_small_blob(self, repository: str, digest: str, size: int) -> bytes:
        """A config or other small blob, whole, verified and size-capped."""
        if size > MAX_JSON_SIZE:
            raise RegistryError(200, "GET", "%s/%s" % (self.host, repository), "blob %s is %d bytes, over the "
                                "%d-byte limit for configs" % (digest, size, MAX_JSON_SIZE))
        with contextlib.closing(self.open_blob(repository, digest, size, within=ANSWER_DEADLINE)) as f:
            return f.read()

    def mount_blob(self, repository: str, digest: str, source: str, scopes) -> bool:
        """Cross-repository mount; False (and no error) when the registry would rather have an upload."""
        try:
            # asking twice only leaves an unused upload session behind: retried in place, as start_upload
            response = self.request("POST", "/v2/%s/blobs/uploads/?%s" % (
                repository, urllib.parse.urlencode([("mount", digest), ("from", source)])), scopes, ok=(201, 202),
                idempotent=True)
        except RegistryError:
            return False
        with response:
            response.read_capped(MAX_ERROR_BODY, "the mount answer")
        if response.status == 201:
            return True
        upload = self._upload_for(response, repository, scopes)
        if upload is not None:
            upload.cancel()
        return False

    def check_push(self, repository: str, timeout: float = READ_TIMEOUT) -> None:
        """Whether these credentials may push to ``repository``, changing nothing visible: an upload
        session opened and cancelled (within ``timeout``). The registry's error when it may not (or
        cannot be reached)."""
        self.start_upload(repository, [push_scope(repository)]).cancel(timeout)

    def start_upload(self, repository: str, scopes: Sequence[str]) -> Upload:
        # Starting a session twice only leaves an unused session behind: safe to retry.
        with self.request("POST", "/v2/%s/blobs/uploads/" % repository, scopes, ok=(202,), idempotent=True) as response:
            response.read_capped(MAX_ERROR_BODY, "the upload answer")
        upload = self._upload_for(response, repository, scopes)
        if upload is None:
            raise RegistryError(202, "POST", _redact_url(response.url), "upload started without a usable Location")
        return upload

    def _upload_for(self, response: Response, repository: str, scopes) -> Optional[Upload]:
        url = self.upload_location(response, self.auth.ping() + "/v2/%s/blobs/uploads/" % repository)
        return Upload(self, repository, url, scopes) if url else None

    def upload_location(self, response: Response, base: str) -> Optional[str]:
        """The upload URL an answer's Location names, or None when it names none usable."""
        return upload_url((response.headers.get("Location") or "").strip(), base, self.auth.ping())

    def upload_blob(self, repository: str, blob: Blob, scopes: Sequence[str]) -> None:
        """Upload a blob in a new session, the way this registry takes them (``upload_mode``).

        Registries differ: Google Artifact Registry takes no chunked upload, older JFrog
        Artifactory and pulp_container take no monolithic one. Until one way has worked, uploads to
        the registry go one at a time, monolithic first; when the registry refuses a way, the other
        is tried, and the one that worked is remembered for this client. When an upload fails on the
        way (5xx, 429, a broken connection) that its requests' own retries (``Transport.request``)
        did not get past, the session is cancelled and a new one sends the blob again from the start
        (the blob is opened anew each time), after the registry's Retry-After; not when those retries
        spent the whole budget. When the first upload fails so, those waiting behind it fail at once
        with the same error: the registry is not taking blobs, and one failure is said once."""
        if self.upload_mode is None:
            with self._probing:         # parallel uploads wait to learn the way, not send in vain
                if self.upload_mode is None:
                    if self._probe_failure is not None:
                        raise _same_error(self._probe_failure)
                    try:
                        return self._upload(repository, blob, scopes)
                    except (NetworkError, RegistryError) as e:
                        if e.spent:
                            self._probe_failure = e
                        raise
        return self._upload(repository, blob, scopes)

    def _upload(self, repository: str, blob: Blob, scopes: Sequence[str]) -> None:
        attempt, refused = 1, {}
        while True:
            kind = self.upload_mode or UPLOAD_KINDS[0]
            if kind in refused:
                kind = next(k for k in UPLOAD_KINDS if k not in refused)
            upload = self.start_upload(repository, scopes)
            try:
                upload.finish(blob, kind)
                self.upload_mode = kind
                return
            except BaseException as e:
                upload.cancel()
                if _upload_refused(e) and not refused:
                    refused[kind] = e
                    other = next(k for k in UPLOAD_KINDS if k != kind)
                    self.transport.display.info("%s refused a %s upload (%s); uploading %s instead", self.host,
                                                kind, _registry_reason(e), other)
                    continue
                if _upload_refused(e):
                    raise _refused_both(dict(refused, **{kind: e})) from e
                retryable = isinstance(e, NetworkError) or (isinstance(e, RegistryError) and e.status in RETRY_STATUSES)
                if not retryable or e.spent or attempt == UPLOAD_ATTEMPTS:
                    raise
                # said under -v only: when the next try fails as well, its error is the one to say, once
                self.transport.display.debug("upload of %s failed (%s); starting it again", _short(blob.digest), e)
                delay = max(backoff_delay(attempt), isinstance(e, RegistryError) and e.retry_after or 0.0)
            self.transport.wait(delay)
            attempt += 1


def _same_error(error: ZeroImageError) -> ZeroImageError:
    """A new error of the same class saying the same (raised again in another thread)."""
    same = error.restated(str(error)) if isinstance(error, RegistryError) else type(error)(str(error))
    same.hint = error.hint
    return same


def _refused_both(errors: Dict[str, "RegistryError"]) -> "RegistryError":
    last = errors["chunked"]
    hint = ""
    if any(e.status == 413 for e in errors.values()):
        hint = "; HTTP 413 means a limit on the size of a request, often a proxy's in front of the registry " \
               "(nginx: client_max_body_size): raise it"
    error = RegistryError(last.status, last.method, last.url, "the registry refuses both ways of uploading a blob: "
                          "one PUT with the bytes (%s) and a PATCH (%s)%s" % (_registry_reason(errors["monolithic"]),
                                                                              _registry_reason(last), hint), last.errors)
    error.spent = True      # trying again will not help: the uploads waiting behind this one fail with it, at once
    return error


def _said(error: dict) -> str:
    """One error of an answer's ``errors``: ``CODE: message (detail)``; the detail (a string, or an
    object with a message) is often the only useful part: "schema version not supported"."""
    detail = error.get("detail")
    if isinstance(detail, dict):
        detail = detail.get("message") or detail.get("Message")
    said = "%s: %s" % (error.get("code", "?"), error.get("message", ""))
    if isinstance(detail, str) and detail.strip() and detail.strip() not in said:
        said += " (%s)" % detail.strip()
    return said


def _registry_reason(error: "RegistryError") -> str:
    """An error answer in a few words: ``HTTP 404 BLOB_UNKNOWN: blob unknown``."""
    return "HTTP %d%s" % (error.status, " " + error.detail if error.detail else "")


def _part_missing(error: RegistryError, ref: Reference) -> Optional[str]:
    """"manifest sha256:..." or "blob sha256:..." when a 404 was for a part of the image ``ref`` names
    (an index's child, a layer), not for what ``ref`` itself names."""
    found = re.search(r"/(manifests|blobs)/([a-z0-9]+:[0-9a-f]+)", urllib.parse.urlsplit(error.url).path)
    if found is None or found.group(2) == ref.digest:
        return None
    return "%s %s" % ("manifest" if found.group(1) == "manifests" else "blob", found.group(2))


# -- reading images: one walker, one reader, for layouts and registries --


@contextlib.contextmanager
def registry_errors(action: str, ref: Reference, registry: Optional[Registry] = None):
    """Registry errors said as one line naming what failed and what to try; the class stays. With
    ``registry``, an access denied to a logged-in user says so, rather than asking for a login."""
    try:
        yield
    except RegistryError as e:
        if e.explained:
            raise
        user = registry.auth.user if registry is not None else None
        # A login is suggested only where it can help: the registry asked for credentials (a challenge,
        # or a 401), or, when it is not known whether it did, for an access denied.
        asked = registry.auth.asked if registry is not None else None
        login = "are you logged in? try: `login(%s)`" % ref.registry
        if isinstance(e, AuthenticationError) and user and registry.auth.refused_credentials(e):
            message = "cannot %s %s: the registry refused the credentials of %s (%s); a wrong or expired " \
                      "password? log in again: `login(%s)`" % (
                          action, ref.familiar(), user, e.detail or "HTTP 401", ref.registry)
        elif isinstance(e, AuthenticationError) and user:
            message = "cannot %s %s: access denied to %s (%s); may %s %s there? to use another account: " \
                      "`login(%s)`" % (action, ref.familiar(), user, e.detail or "HTTP %d" % e.status, user,
                                              action, ref.registry)
        elif isinstance(e, AuthenticationError):
            message = "cannot %s %s: access denied (%s); %s" % (
                action, ref.familiar(), e.detail or "HTTP %d" % e.status,
                login if asked is not False or e.status == 401 else
                "the registry asks for no credentials, so a login will not help; it refuses this %s" % action)
        elif isinstance(e, NotFoundError) and action in ("pull", "inspect") and _part_missing(e, ref):
            message = "cannot %s %s: %s, which it lists, is not in the registry (%s); the image there is " \
                      "incomplete" % (action, ref.familiar(), _part_missing(e, ref), e.detail or "HTTP 404")
        elif isinstance(e, NotFoundError):
            message = "cannot %s %s: not found (%s); is the name right?%s" % (
                action, ref.familiar(), e.detail or "HTTP 404", " " + login if asked and not user else "")
        else:
            message = "cannot %s %s: %s" % (action, ref.familiar(), e)
        raise e.restated(message) from e


# ---- Session ----

class BlobPlaces:
    """Where blobs were last seen, per registry: for each registry host, each digest and the
    repositories it was seen in, most recent first, so a push mounts a blob the registry holds in
    another repository instead of sending it (containers/image's blob info cache does the same for
    skopeo). Seen means known to be there: a HEAD found it, a mount or an upload succeeded, it was
    read from there.

    Bounded: MAX_PLACES repositories a digest, MAX_BLOBS digests in all, MAX_REGISTRIES registries;
    past a bound, the least recently used registry gives up its least recently seen digests first.
    Kept in one JSON file, ``blobs.json`` in the cache directory (beside the layer cache), that holds
    registry hosts, repository names and digests, nothing else: read on first use, written once,
    atomically (mode 0600), when the session closes, merged with what other processes wrote there
    meanwhile. A wrong entry costs a mount that fails, then the upload as before, and is forgotten.
    A file that is missing, unreadable, not a regular file, over MAX_FILE bytes or not of this shape
    is ignored (a debug line says why) and nothing is ever an error; ``path`` None keeps it in memory.
    ZEROIMAGE_CACHE_DIR=/dev/null turns it off (nothing can be read or written there); in a cache
    directory that cannot be written it is read, and never changed; an empty ZEROIMAGE_CACHE_DIR is
    unset, as for the layer cache."""

    VERSION = 1
    FILE = "blobs.json"
    MAX_REGISTRIES = 32
    MAX_BLOBS = 8192            # digests, in all registries together
    MAX_PLACES = 4              # repositories a digest
    LONGEST_NAME = 128          # a longer repository name is not remembered (so the file stays within MAX_FILE)
    MAX_FILE = 8 * 1024 * 1024  # (at the bounds it is under 6 MB)

    def __init__(self, path: Optional[str], debug: Optional[Callable[..., None]] = None):
        self.path = path
        self._debug = debug or (lambda message, *args: None)
        self._lock = threading.Lock()
        self._registries = None     # host -> OrderedDict(digest -> [repository, ...]); least recent first
        self._touched = collections.OrderedDict()   # (host, digest) -> whether seen (not only forgotten)
        self._forgotten = {}        # (host, digest) -> the repositories forgotten in this session

    @classmethod
    def default(cls, environ=None, debug: Optional[Callable[..., None]] = None) -> "BlobPlaces":
        """``blobs.json`` in ``_cache_directory`` (``ZEROIMAGE_CACHE_DIR``, ...)."""
        return cls(os.path.join(_cache_directory(environ), cls.FILE), debug)

    @classmethod
    def _is_repository(cls, name) -> bool:
        """A repository name as references write it (lowercase components joined by /), of at most
        LONGEST_NAME characters."""
        return isinstance(name, str) and 0 < len(name) <= cls.LONGEST_NAME and \
            all(_PATH_COMPONENT_RE.fullmatch(c) for c in name.split("/"))

    def where(self, host: str, digest: str) -> List[str]:
        """The repositories of ``host`` that ``digest`` was seen in, most recent first."""
        with self._lock:
            return list(self._loaded().get(host, {}).get(digest, ()))

    def seen(self, host: str, repository: str, digest: str) -> None:
        """``digest`` is in ``repository`` of ``host`` now."""
        if not (valid_host(host) and self._is_repository(repository) and is_digest(digest)):
            return
        with self._lock:
            registries, key = self._loaded(), (host, digest)
            known = registries.get(host, {}).get(digest, [])
            self._put(registries, host, digest, [repository] + [r for r in known if r != repository])
            self._touched[key] = True
            self._touched.move_to_end(key)
            self._forgotten.get(key, set()).discard(repository)

    def forget(self, host: str, repository: str, digest: str) -> None:
        """``digest`` is not (or no longer) in ``repository`` of ``host``."""
        with self._lock:
            registries, key = self._loaded(), (host, digest)
            blobs = registries.get(host, {})
            if repository not in blobs.get(digest, ()):
                return
            blobs[digest] = [r for r in blobs[digest] if r != repository]
            if not blobs[digest]:
                del blobs[digest]
                if not blobs:
                    del registries[host]
            self._touched.setdefault(key, False)
            self._forgotten.setdefault(key, set()).add(repository)

    def save(self) -> None:
        """Write what this session learnt into the file (merged with what is there now), if anything."""
        with self._lock:
            if self.path is None or not self._touched:
                return
            merged = self._read()
            mine = self._loaded()
            for (host, digest), seen in self._touched.items():
                own = mine.get(host, {}).get(digest, [])
                gone = self._forgotten.get((host, digest), set())
                theirs = [r for r in merged.get(host, {}).get(digest, ()) if r not in own and r not in gone]
                if seen:
                    self._put(merged, host, digest, own + theirs)
                elif digest in merged.get(host, {}):        # only forgotten: its place in the order stays
                    merged[host][digest] = own + theirs
                    if not merged[host][digest]:
                        del merged[host][digest]
            data = json.dumps({"version": self.VERSION, "registries": merged}, separators=(",", ":")).encode()
            try:
                os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
                with atomic_output(self.path, 0o600) as f:
                    f.write(data)
            except (OSError, ZeroImageError) as e:      # a cache, not a record: the next push uploads
                self._debug("blob places: not written to %s (%s)", self.path, getattr(e, "strerror", None) or e)
                return
            self._touched.clear()
            self._forgotten.clear()

    def _loaded(self) -> dict:
        if self._registries is None:
            self._registries = self._read() if self.path is not None else collections.OrderedDict()
        return self._registries

    def _read(self) -> dict:
        """What the file holds, checked; empty when it is missing or not as written here."""
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            return collections.OrderedDict()
        except OSError as e:
            self._debug("blob places: %s not read (%s)", self.path, e.strerror or e)
            return collections.OrderedDict()
        try:        # (opened without blocking: a FIFO there would wait for a writer)
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise ValueError("it is %s" % file_kind(mode))
            with os.fdopen(fd, "rb") as f:
                fd = None
                data = f.read(self.MAX_FILE + 1)
            if len(data) > self.MAX_FILE:
                raise ValueError("it is over %d bytes" % self.MAX_FILE)
            return self._checked(parse_json(data, "it", ValueError))
        except (OSError, ValueError) as e:
            self._debug("blob places: %s ignored (%s)", self.path, outside_text(getattr(e, "strerror", None) or e, 200))
            return collections.OrderedDict()
        finally:
            if fd is not None:
                os.close(fd)

    @classmethod
    def _checked(cls, value) -> dict:
        """The file's value as its registries (OrderedDicts, least recent first), or ValueError: every
        host, digest and repository checked, and the bounds."""
        _expect(value, "object", "its value", ValueError)
        if value.get("version") != cls.VERSION:
            raise ValueError("not version %d" % cls.VERSION)
        registries = _expect(value.get("registries"), "object", "its registries", ValueError)
        if len(registries) > cls.MAX_REGISTRIES:
            raise ValueError("over %d registries" % cls.MAX_REGISTRIES)
        checked, count = collections.OrderedDict(), 0
        for host, blobs in registries.items():
            if not valid_host(host):
                raise ValueError("a registry is not a host")
            _expect(blobs, "object", "a registry's blobs", ValueError)
            count += len(blobs)
            if count > cls.MAX_BLOBS:
                raise ValueError("over %d blobs" % cls.MAX_BLOBS)
            for digest, repositories in blobs.items():
                if not is_digest(digest):
                    raise ValueError("a blob is not a digest")
                if not isinstance(repositories, list) or not 0 < len(repositories) <= cls.MAX_PLACES or \
                        not all(cls._is_repository(r) for r in repositories) or len(set(repositories)) < len(repositories):
                    raise ValueError("a blob's repositories are not 1 to %d repository names" % cls.MAX_PLACES)
            checked[host] = collections.OrderedDict(blobs)
        return checked

    def _put(self, registries: dict, host: str, digest: str, repositories: List[str]) -> None:
        """``digest``'s repositories (none: forgotten), as the most recently used; then the bounds."""
        blobs = registries.pop(host, None) or collections.OrderedDict()
        registries[host] = blobs
        blobs.pop(digest, None)
        if repositories:
            blobs[digest] = repositories[:self.MAX_PLACES]
        while len(registries) > self.MAX_REGISTRIES:
            del registries[next(iter(registries))]
        count = sum(len(b) for b in registries.values())
        while count > self.MAX_BLOBS:
            oldest = next(iter(registries))
            registries[oldest].popitem(last=False)
            count -= 1
            if not registries[oldest]:
                del registries[oldest]
        if not blobs:
            registries.pop(host, None)


PARALLEL_TRANSFERS = 4
CANCEL_GRACE = 1.5      # seconds workers get, after a cancellation, to cancel their upload sessions


class Session:
    """What one command, or a library caller's series of operations, shares: the environment (read
    once: proxies, credentials, caches, SOURCE_DATE_EPOCH), the display, the registry clients and
    their connections, the layer cache, where blobs were seen (``BlobPlaces``: saved when the
    session closes), and a cancellation event.

    A context manager: on exit every connection is closed, and an interrupt (Ctrl-C, SIGTERM) on the
    way out cancels the work still under way in other threads first. ``cancel()`` (from any thread)
    stops every operation of the session within a second: byte-moving loops check the event
    between chunks and requests under way are broken off. A cancelled session stays cancelled.
    """

    def __init__(self, environ=None, *, insecure: bool = False, display: Optional[Display] = None,
                 layer_cache: Optional[LayerCache] = None, clock: Callable[[], float] = time.monotonic):
        self.environ = dict(os.environ if environ is None else environ)
        self.insecure = insecure
        self.display = display if display is not None else Display()
        self.cancelled = threading.Event()
        self.clock = clock
        self._layer_cache = layer_cache
        self._blob_places = None
        self._transport = None
        self._registries = {}
        self._lock = threading.Lock()
        self._closed = False
        self._on_cancel = []

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):     # KeyboardInterrupt, SIGTERM
            self.cancel()
        self.close()

    def close(self) -> None:
        """Close every connection; the session makes no more. Where blobs were seen is saved (not
        when cancelled: a stop is not held up by a file)."""
        with self._lock:
            self._closed = True
            transport, places = self._transport, self._blob_places
        if transport is not None:
            transport.close()
        if places is not None and not self.cancelled.is_set():
            places.save()
        self.display.close()

    @property
    def transport(self) -> Transport:
        with self._lock:
            if self._closed:
                raise ZeroImageError("this session is closed; start a new one")
            if self._transport is None:
                self._transport = Transport(self.environ, self.insecure, self.display, self.cancelled)
            return self._transport

    @property
    def layer_cache(self) -> LayerCache:
        if self._layer_cache is None:
            self._layer_cache = LayerCache.default(self.environ)
        return self._layer_cache

    @property
    def blob_places(self) -> BlobPlaces:
        with self._lock:
            if self._blob_places is None:
                self._blob_places = BlobPlaces.default(self.environ, self.display.debug)
            return self._blob_places

    def registry(self, host: str, credentials: Optional[Credentials] = None) -> Registry:
        """The client for a registry host (one per host and session); with ``credentials``, a new one
        that uses them instead of the stored ones (login checks them this way)."""
        transport = self.transport
        if credentials is not None:
            return Registry(host, transport, Authenticator(transport, host, credentials, self.clock))
        with self._lock:
            if host not in self._registries:
                self._registries[host] = Registry(host, transport, Authenticator(transport, host, clock=self.clock))
            return self._registries[host]

    def cancel(self) -> None:
        """Stop everything under way in this session, from any thread."""
        self.cancelled.set()
        with self._lock:
            transport = self._transport
            callbacks = list(self._on_cancel)
        if transport is not None:
            transport.abort()
        for callback in callbacks:
            callback()

    @contextlib.contextmanager
    def cancelling(self, callback: Callable[[], None]):
        """Within the block, ``cancel()`` also calls ``callback`` (a connection of its own to break off)."""
        with self._lock:
            self._on_cancel.append(callback)
        try:
            if self.cancelled.is_set():
                callback()
            yield
        finally:
            with self._lock:
                self._on_cancel.remove(callback)

    def check(self) -> None:
        """CancelledError once the session is cancelled."""
        if self.cancelled.is_set():
            raise CancelledError()

    def parallel(self, function: Callable, items: Sequence, workers: int = PARALLEL_TRANSFERS) -> list:
        """``function(item)`` for every item, up to ``workers`` at once, results in order. After an
        error no new item starts and the first error is raised once the running ones end. An
        interrupt in the calling thread cancels the session, gives the workers CANCEL_GRACE seconds
        to clean up (they are daemon threads: a stuck one never holds the process), then goes on."""
        items = list(items)
        if len(items) <= 1 or workers <= 1:
            return [function(item) for item in items]
        results, errors = [None] * len(items), []
        todo = collections.deque(enumerate(items))
        lock, finished = threading.Lock(), threading.Event()
        running = [min(workers, len(items))]

        def work() -> None:
            try:
                while True:
                    with lock:
                        if errors or not todo:
                            return
                        i, item = todo.popleft()
                    try:
                        results[i] = function(item)
                    except BaseException as e:      # noqa: B902 -- handed to the calling thread
                        with lock:
                            errors.append(e)
            finally:
                with lock:
                    running[0] -= 1
                    if running[0] == 0:
                        finished.set()
        for n in range(running[0]):
            threading.Thread(target=work, name="zeroimage-%d" % n, daemon=True).start()
        try:
            finished.wait()
        except BaseException:
            self.cancel()
            finished.wait(CANCEL_GRACE)
            raise
        if errors:
            raise errors[0]
        return results


# ---- Container engines ----

ENGINE_TIMEOUT = 300.0          # seconds an engine may take to answer (a big load is unpacked before it does)
ENGINE_STALL_TIMEOUT = 60.0     # seconds in which an engine's stream (an export, progress) must bring STALL_BYTES
ENGINE_PING_TIMEOUT = 5.0
MAX_ENGINE_PROGRESS = 16 * 1024 * 1024      # bytes of a progress stream read at most (its messages are kept)
MAX_ENGINE_MESSAGES = 100                   # messages of it kept
ENGINE_HINT = ("start one (sudo systemctl start docker, or podman system service), or point DOCKER_HOST at "
               "its socket (DOCKER_HOST=unix:///path/to/docker.sock)")
ENGINE_HINT_WINDOWS = ("start Docker Desktop (or podman machine start), or point DOCKER_HOST at its named pipe "
                       "(DOCKER_HOST=npipe:////./pipe/NAME)")


def engine_addresses(environ) -> List[str]:
    """Where to look for a Docker Engine API, in order: ``DOCKER_HOST`` alone when set; else Docker's
    socket (on macOS also Docker Desktop's in the home directory), then podman's (the user's, then
    the system's); on Windows (no unix sockets) Docker Desktop's named pipe, then podman machine's."""
    host = environ.get("DOCKER_HOST", "")
    if host:
        return [host]
    if _WINDOWS or not hasattr(socket, "AF_UNIX"):
        return ["npipe:////./pipe/docker_engine", "npipe:////./pipe/podman-machine-default"]
    found = ["unix:///var/run/docker.sock"]
    if sys.platform == "darwin":        # Docker Desktop without its /var/run link ("default Docker socket" off)
        found.append("unix://%s/.docker/run/docker.sock" % home_directory(environ).rstrip("/"))
    if environ.get("XDG_RUNTIME_DIR"):
        found.append("unix://%s/podman/podman.sock" % environ["XDG_RUNTIME_DIR"].rstrip("/"))
    return found + ["unix:///run/podman/podman.sock"]


def _open_named_pipe(path: str):
    """A Windows named pipe opened as a file: the standard library's one way to reach one."""
    return open(path, "r+b", buffering=0)


class _PipeReader(io.RawIOBase):
    """The pipe's reading side for http.client's buffered reader: closing it leaves the pipe open."""

    def __init__(self, f):
        super().__init__()
        self._f = f

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self._f.readinto(buffer)


class _PipeSocket:
    """A named pipe as the little of a socket that http.client uses (``sendall``, ``makefile``,
    ``close``). A read on it cannot be broken off: ``shutdown`` (the watchdog's, a cancellation's)
    does nothing, and the exchange ends when the engine answers or the pipe closes."""

    def __init__(self, f):
        self._f = f

    def sendall(self, data) -> None:
        with memoryview(data) as view, view.cast("B") as left:
            while len(left):
                n = self._f.write(left)
                left = left[n:]

    def makefile(self, mode: str = "rb", buffering: int = -1):
        return io.BufferedReader(_PipeReader(self._f))

    def shutdown(self, how: int) -> None:
        pass

    def close(self) -> None:
        self._f.close()


def _pipe_path(address: str) -> str:
    r"""``npipe:////./pipe/NAME`` (Docker's way to write it) as the path ``\\.\pipe\NAME``; a pipe
    on another machine (``//HOST/pipe/...``) is refused as a remote TCP engine is."""
    path = address[len("npipe://"):].replace("/", "\\")
    if not re.fullmatch(r"\\\\\.\\pipe\\[^\\\x00-\x1f\x7f]+", path):
        raise UsageError("DOCKER_HOST=%s: a named pipe on this machine is npipe:////./pipe/NAME "
                         "(Docker Desktop's: npipe:////./pipe/docker_engine)" % outside_text(address, 200))
    return path


def _engine_connection(address: str, timeout: float):
    """An unconnected http.client connection to ``unix://PATH``, a loopback ``tcp://HOST:PORT``
    or (Windows) a named pipe ``npipe:////./pipe/NAME``."""
    if address.startswith("npipe://"):
        path = _pipe_path(address)
        if not _WINDOWS:
            raise UsageError("DOCKER_HOST=%s: named pipes are Windows' (Docker Desktop's); here, give "
                             "unix:///path/to/docker.sock or a loopback tcp:// address" % outside_text(address, 200))

        class PipeConnection(http_client.HTTPConnection):
            def connect(self) -> None:
                self.sock = _PipeSocket(_open_named_pipe(path))
        return PipeConnection("localhost", timeout=timeout)
    if address.startswith("unix://"):
        path = address[len("unix://"):]
        if not path:
            raise UsageError("DOCKER_HOST=%s names no socket; give unix:///path/to/docker.sock" % address)
        if not hasattr(socket, "AF_UNIX"):
            raise UsageError("DOCKER_HOST=%s: this Python has no unix sockets (Windows); give the engine's "
                             "named pipe (npipe:////./pipe/docker_engine) or a loopback tcp:// address"
                             % outside_text(address, 200))

        class UnixConnection(http_client.HTTPConnection):
            def connect(self) -> None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                try:
                    sock.connect(path)
                except BaseException:
                    sock.close()
                    raise
                self.sock = sock
        return UnixConnection("localhost", timeout=timeout)
    if address.startswith(("tcp://", "http://")):
        try:
            netloc = urllib.parse.urlsplit(address).netloc
        except ValueError as e:
            raise UsageError("DOCKER_HOST=%s is not an address (%s)" % (outside_text(address, 200), e)) from e
        if not _is_loopback(netloc):
            raise UsageError("DOCKER_HOST=%s: zeroimage talks to an engine over a unix socket or plain TCP on "
                             "loopback only; tunnel it (ssh -L) or use its unix socket" % outside_text(address, 200))
        host, _, port = netloc.rpartition(":") if netloc.rpartition(":")[2].isdigit() else (netloc, "", "2375")
        if not 0 < int(port) < 65536:
            raise UsageError("DOCKER_HOST=%s: the port is not one (1-65535)" % outside_text(address, 200))
        return http_client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout)
    raise UsageError("DOCKER_HOST=%s: zeroimage knows unix://, npipe:// and tcp:// (loopback) engine addresses"
                     % outside_text(address, 200))


class _ChunkedBody:
    """A writable stream sent as an HTTP/1.1 chunked body, a chunk per CHUNK_SIZE gathered; every
    write checks the cancellation event, and what is sent counts for the watchdog (``guard``)."""

    def __init__(self, conn, cancelled: Optional[threading.Event], guard: _Guard):
        self._conn, self._cancelled, self._guard = conn, cancelled, guard
        self._buffer = bytearray()

    def write(self, data) -> int:
        if self._cancelled is not None and self._cancelled.is_set():
            raise CancelledError()
        self._buffer += data
        if len(self._buffer) >= CHUNK_SIZE:
            self._send()
        return len(data)

    def _send(self) -> None:
        if self._buffer:
            view = memoryview(self._buffer)
            self._conn.send(b"%x\r\n" % len(self._buffer))
            for start in range(0, len(view), _SentBody.PIECE):      # in pieces: the watchdog sees each go
                self._conn.send(view[start:start + _SentBody.PIECE])
                self._guard.moved(min(_SentBody.PIECE, len(view) - start))
            view.release()
            self._conn.send(b"\r\n")
            self._buffer = bytearray()

    def flush(self) -> None:
        pass

    def finish(self) -> None:
        self._send()
        self._conn.send(b"0\r\n\r\n")


class Engine:
    """A container engine (Docker, or podman's Docker-compatible service) through its HTTP API:
    ``find`` one, ask its ``version()`` and ``platform()``, ``load`` an archive into it (streamed),
    ask an image's ``image_id``, ``export`` an image as ``docker save`` does (a stream)."""

    def __init__(self, address: str, session: Session):
        self.address, self.session = address, session
        self._watchdog = _Watchdog()

    @classmethod
    def find(cls, session: Session) -> "Engine":
        """The first engine that answers ``GET /_ping``; none: one line naming every address tried."""
        tried = []
        for address in engine_addresses(session.environ):
            engine = cls(address, session)
            try:
                engine._call("GET", "/_ping", timeout=ENGINE_PING_TIMEOUT)
                return engine
            except (CancelledError, UsageError):      # a DOCKER_HOST zeroimage cannot use: said alone
                raise
            except ZeroImageError as e:
                tried.append("%s (%s)" % (address, _os_reason(e.__cause__) if e.__cause__ else e))
        raise ZeroImageError("no container engine answers: tried %s; %s" % (
            ", ".join(tried), ENGINE_HINT_WINDOWS if _WINDOWS else ENGINE_HINT))

    def _failed(self, method: str, path: str, error: BaseException, guard: _Guard, what: str = "") -> ZeroImageError:
        """The one line for an exchange with the engine that broke: what the engine did."""
        self.session.check()
        if guard.expired == "deadline":
            reason = "no whole answer within %g s" % guard.seconds
        elif guard.expired == "stalled":
            reason = "its answer stalled: less than %d bytes in %g s (%d bytes came)" % (
                STALL_BYTES, ENGINE_STALL_TIMEOUT, guard.progress)
        else:
            reason = _os_reason(error)
        return ZeroImageError("%sthe engine at %s: %s %s: %s" % (what, self.address, method, path, reason))

    def _open(self, method: str, path: str, timeout: float = ENGINE_TIMEOUT, body=None, headers=None):
        """Send a request; the connection, its response and the guard its body is read under (the
        caller closes the connection). The head must come within ``timeout`` seconds."""
        self.session.check()
        conn = _engine_connection(self.address, timeout)
        guard = _Guard(lambda: _shut(conn))
        try:
            with self._watchdog.watching(guard, stall=0, deadline=timeout):
                conn.request(method, path, body=body, headers=headers or {})
                return conn, conn.getresponse(), guard
        except BaseException as e:
            conn.close()
            if isinstance(e, (OSError, http_client.HTTPException)):
                raise self._failed(method, path, e, guard) from e
            raise

    def _read(self, conn, response, guard: _Guard, n: int, method: str, path: str,
              deadline: Optional[float] = -1) -> bytes:
        """Up to ``n`` bytes of an answer, under the stall watch and ``deadline`` (-1: ANSWER_DEADLINE;
        None: none, for a stream)."""
        try:
            with self.session.cancelling(lambda: _shut(conn)), \
                    self._watchdog.watching(guard, stall=ENGINE_STALL_TIMEOUT,
                                            deadline=ANSWER_DEADLINE if deadline == -1 else deadline):
                data = _receive(response, n, guard, self.session.cancelled)
        except (OSError, http_client.HTTPException) as e:
            raise self._failed(method, path, e, guard) from e
        if guard.expired:           # the watchdog shut the socket: what came is not all
            raise self._failed(method, path, ConnectionAbortedError(), guard)
        return data

    def _call(self, method: str, path: str, timeout: float = ENGINE_TIMEOUT) -> bytes:
        conn, response, guard = self._open(method, path, timeout)
        with contextlib.closing(conn):
            data = self._read(conn, response, guard, MAX_JSON_SIZE + 1, method, path)
        self.session.check()
        if len(data) > MAX_JSON_SIZE:
            raise ZeroImageError("the engine at %s answers %s %s with over %d bytes" % (
                self.address, method, path, MAX_JSON_SIZE))
        if not 200 <= response.status < 300:
            raise ZeroImageError("the engine at %s answers %s %s with %d: %s" % (
                self.address, method, path, response.status, _engine_message(data)))
        return data

    def _json(self, path: str) -> dict:
        return json_object(self._call("GET", path), "the engine's answer to %s" % path)

    def version(self) -> dict:
        """``GET /version``: Version, ApiVersion, Os, Arch..."""
        return self._json("/version")

    def platform(self) -> Platform:
        """The platform the engine runs images for."""
        info = self.version()
        os_name, arch = info.get("Os"), info.get("Arch")
        if not (isinstance(os_name, str) and isinstance(arch, str) and _PLATFORM_PART_RE.fullmatch(os_name.lower())
                and _PLATFORM_PART_RE.fullmatch(arch.lower())):
            raise ZeroImageError("the engine at %s does not say its platform (GET /version: Os %s, Arch %s)"
                                 % (self.address, outside_text(repr(os_name), 50), outside_text(repr(arch), 50)))
        return Platform.make(os_name.lower(), arch.lower())

    def image_id(self, name: str) -> str:
        """The engine's ID of an image it holds (``GET /images/NAME/json``)."""
        value = self._json("/images/%s/json" % urllib.parse.quote(name, safe="/:@")).get("Id")
        return value if _is_visible(value, 300) else ""        # (printed: an ID is a digest, not text)

    def load(self, write: Callable[[object], None]) -> List[str]:
        """``POST /images/load`` with the archive that ``write(stream)`` writes, streamed as it is
        written (chunked); the engine's messages. An error message the engine sends is raised."""
        self.session.check()
        method, path = "POST", "/images/load?quiet=1"
        conn = _engine_connection(self.address, ENGINE_TIMEOUT)
        guard = _Guard(lambda: _shut(conn))
        with contextlib.closing(conn):
            try:
                with self.session.cancelling(lambda: _shut(conn)), \
                        self._watchdog.watching(guard, stall=ENGINE_STALL_TIMEOUT) as watched:
                    conn.putrequest(method, path)
                    conn.putheader("Content-Type", "application/x-tar")
                    conn.putheader("Transfer-Encoding", "chunked")
                    conn.endheaders()
                    body = _ChunkedBody(conn, self.session.cancelled, guard)
                    write(body)
                    body.finish()
                    self._watchdog.answer_within(watched, ENGINE_TIMEOUT)
                    response = conn.getresponse()
            except (OSError, http_client.HTTPException) as e:
                raise self._failed(method, path, e, guard, "cannot load the image: ") from e
            if not 200 <= response.status < 300:
                data = self._read(conn, response, guard, MAX_JSON_SIZE, method, path)
                raise ZeroImageError("the engine at %s refused the image (%d): %s" % (
                    self.address, response.status, _engine_message(data)))
            return self._progress(conn, response, guard, method, path)

    def _progress(self, conn, response, guard: _Guard, method: str, path: str) -> List[str]:
        """The messages of a JSON-lines progress answer, read as it comes: at most MAX_ENGINE_PROGRESS
        bytes of it, at most MAX_ENGINE_MESSAGES messages kept (cleaned for the terminal). A line that
        says error is raised."""
        messages, pending, total = [], b"", 0
        while True:
            data = self._read(conn, response, guard, CHUNK_SIZE, method, path, deadline=None)
            total += len(data)
            if total > MAX_ENGINE_PROGRESS:
                raise ZeroImageError("the engine at %s answers %s %s with over %d bytes of progress" % (
                    self.address, method, path, MAX_ENGINE_PROGRESS))
            lines = (pending + data).split(b"\n")
            pending = lines.pop() if len(data) == CHUNK_SIZE else b""
            for line in lines:
                message = self._message(line)
                if message and len(messages) < MAX_ENGINE_MESSAGES:
                    messages.append(message)
            if len(data) < CHUNK_SIZE:
                self.session.check()
                return messages

    def _message(self, line: bytes) -> Optional[str]:
        """What one progress line says (None: nothing to show); an error line is raised."""
        if not line.strip():
            return None
        try:
            message = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError):
            return outside_text(line.decode("utf-8", "replace"), 300)
        if isinstance(message, dict) and (message.get("error") or message.get("errorDetail")):
            raise ZeroImageError("the engine at %s refused the image: %s" % (self.address, _engine_message(line)))
        if isinstance(message, dict) and isinstance(message.get("stream"), str) and message["stream"].strip():
            return outside_text(message["stream"], 300)
        return None

    def export(self, name: str):
        """``GET /images/NAME/get``: the image as ``docker save`` writes it, a stream to read and close
        (watched for stalls as it is read)."""
        method, path = "GET", "/images/%s/get" % urllib.parse.quote(name, safe="/:@")
        conn, response, guard = self._open(method, path)
        if not 200 <= response.status < 300:
            with contextlib.closing(conn):
                data = self._read(conn, response, guard, MAX_JSON_SIZE, method, path)
            raise ZeroImageError("the engine at %s cannot export %s (%d): %s" % (
                self.address, outside_text(name, 200), response.status, _engine_message(data)))
        return _EngineStream(self, conn, response, guard, path)


class _EngineStream:
    """An engine's streamed answer (an export): read under the stall watch; close() closes its connection."""

    def __init__(self, engine: Engine, conn, response, guard: _Guard, path: str):
        self._engine, self._conn, self._response, self._guard, self._path = engine, conn, response, guard, path

    def read(self, n: int = -1) -> bytes:
        data = self._engine._read(self._conn, self._response, self._guard, n, "GET", self._path, deadline=None)
        if not data and n != 0 and self._response.length:
            raise ZeroImageError("the engine at %s: GET %s: its answer broke off (%d bytes missing)" % (
                self._engine.address, self._path, self._response.length))
        return data

    def close(self) -> None:
        self._response.close()
        self._conn.close()


def _shut(conn) -> None:
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _os_reason(error: BaseException) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such pipe" if _WINDOWS else "no such socket"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused: nothing listens there"
    if isinstance(error, PermissionError):
        return "permission denied: are you in the docker group?"
    if isinstance(error, socket.timeout):
        return "no answer in time"
    return outside_text(getattr(error, "strerror", None) or error or type(error).__name__, 300)


def _engine_message(data: bytes) -> str:
    """What an engine's error body says: {"message": ...}, {"error": ...} or {"errorDetail": {"message": ...}}."""
    text = data.decode("utf-8", "replace").strip()
    try:
        value = json.loads(text.splitlines()[-1]) if text else {}
    except (ValueError, RecursionError):
        return outside_text(text or "no message", 500)
    if isinstance(value, dict):
        detail = value.get("errorDetail")
        for found in (value.get("message"), value.get("error"), detail.get("message") if isinstance(detail, dict) else None):
            if isinstance(found, str) and found:
                return outside_text(found.strip(), 500)
    return outside_text(text, 500)


# ---- Sources ----


class Source(Protocol):
    """What every source of images gives the verbs that read it: an OCI layout or archive (Layout), a
    ``docker save`` archive (DockerArchive; the engine's images come as one, its export), a registry's
    repository (RegistrySource). A source names itself for messages (``where``), says whether it holds
    a blob, reads manifests and small blobs (configs, SBOMs) whole and other blobs as streams, and
    lists the referrers it keeps of a digest. The members with a body are what a source that has no
    such thing gives; the sources subclass this, so each member is declared once, here."""

    where: str              # what messages call it: a path, or REGISTRY/REPOSITORY
    mount_from = None       # (registry, repository) its blobs can be mounted from, for a push to that registry

    def has(self, desc: dict) -> bool:
        """Whether the blob ``desc`` names is there."""

    def read_manifest(self, desc: dict) -> bytes:
        """A manifest or index, whole (bounded), checked against its digest."""

    def read_small_blob(self, desc: dict) -> bytes:
        """A config or other small blob, whole (bounded), checked against its digest."""

    def blob(self, desc: dict) -> "Blob":
        """A blob to stream (a layer), checked as it is read."""

    def referrers(self, digest: str) -> List[dict]:
        """The descriptors of the manifests it keeps whose subject is ``digest``."""

    def stored_size(self, digest: str) -> Optional[int]:
        """The size of the blob ``digest`` when it is stored unlisted (an index beside an image in a
        layout); None: not known, or not such a source."""
        return None

def _blob_path(digest: str) -> str:
    algorithm, hexpart = parse_digest(digest)
    return "blobs/%s/%s" % (algorithm, hexpart)


def _safe_member_name(name: str) -> str:
    """A tar member name as a relative POSIX path; absolute or ``..`` names are refused."""
    stripped = name
    while stripped.startswith("./"):
        stripped = stripped[2:]
    parts = stripped.rstrip("/").split("/")
    why = ("an absolute path" if name.startswith("/") else "a '..' component" if ".." in parts
           else "a backslash" if "\\" in name else "a NUL character" if "\0" in name else None)
    if why is not None:
        raise ArchiveError("refusing unsafe archive member %s (%s)" % (outside_text(repr(name), 200), why))
    return "/".join(p for p in parts if p not in ("", "."))


def _is_layout_name(name: str) -> bool:
    return name in ("oci-layout", "index.json", "blobs") or name.startswith("blobs/")


def _plain_tar_file(path: str):
    """The archive at ``path`` as a seekable, uncompressed tar: the file itself, or, when it is
    compressed (a ``.tar.gz`` of a layout), its content decompressed once into an anonymous
    temporary file, gone when closed.  tarfile reads a compressed stream by seeking in it, and
    each seek backwards decompresses again from the start: blobs read in turn took quadratic time."""
    with contextlib.suppress(OSError):      # (a missing file is said by open below)
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):          # a FIFO would make open() wait for a writer
            raise ArchiveError("%s is %s, not a tar archive or an OCI layout directory" % (path, file_kind(mode)))
    try:
        f = open(path, "rb")
    except OSError as e:
        raise ArchiveError("cannot read %s: %s" % (path, e.strerror or e)) from e
    try:
        magic = f.read(6)
        f.seek(0)
        codec = codec_of_bytes(magic)
        if not codec.module:
            return f
        with f:
            return _decompressed(f, path, codec)
    except BaseException:
        f.close()
        raise


def _decompressed(f, path: str, codec: Codec):
    check_codec_readable(codec, path, "; decompress it first")
    stream = codec_module(codec).open(f, "rb")
    out = tempfile.TemporaryFile(prefix="zeroimage-")
    try:
        with stream:
            while True:
                with _damaged_input(path, "%s stream" % codec.name):
                    data = stream.read(CHUNK_SIZE)
                if not data:
                    break
                try:
                    out.write(data)
                except OSError as e:
                    raise ArchiveError("cannot decompress %s into a temporary file: %s (set TMPDIR to a "
                                       "directory with room)" % (path, e.strerror or e)) from e
        out.seek(0)
        return out
    except BaseException:
        out.close()
        raise


def _open_tar(path: str):
    """(file, TarFile, members) of the tar archive at ``path`` (decompressed first when compressed);
    every member name is checked to be safe (``_safe_member_name``); nothing is extracted."""
    f = _plain_tar_file(path)
    try:
        try:
            tar = tarfile.open(fileobj=f, mode="r:", tarinfo=_bounded_tarinfo())
        except (tarfile.TarError, EOFError):
            raise ArchiveError("%s is not a tar archive or an OCI layout directory" % path) from None
        except OSError as e:
            raise ArchiveError("cannot read %s: %s" % (path, e.strerror or e)) from e
        except ValueError as e:         # (a header tarfile cannot even start on: a huge size or offset)
            raise ArchiveError("%s is a damaged tar archive (%s)" % (path, outside_text(e, 200))) from e
        try:
            with _damaged_input(path, "tar archive"):     # every header is read now, none later
                members = tar.getmembers()
        except BaseException:
            tar.close()
            raise
        for member in members:
            _safe_member_name(member.name)
        return f, tar, members
    except BaseException:
        f.close()
        raise


def listed_artifact(desc: dict) -> bool:
    """An index entry that is no image to run but may refer to one: an artifact, or an entry with the
    platform unknown/unknown (what ``with_referrers`` lists; BuildKit's attestations)."""
    return is_attestation(desc) or artifact_type(desc) is not None


def held(source, desc: dict, where: str) -> Tuple[dict, List[dict]]:
    """What a top descriptor (an index.json entry, a registry's tag) holds, and the artifacts listed
    beside it. Of the index zeroimage writes to keep an image's referrers where there is no referrers
    API (``with_referrers``: an OCI index annotated ``io.zeroimage.image``), wherever it is found (an
    archive, a layout, a registry ``skopeo copy --all`` put it in): the image or index that annotation
    names, under ``desc``'s names, so it reads back byte for byte, and the index's other entries, its
    artifacts, as referrers (``listed_referrers``). Of anything else: ``desc`` itself and, when it is an
    artifact, itself as listed. A holder whose annotation names nothing it holds (a garbage collector
    that follows descriptors removed the blob of an index it names), or one of its artifacts, is read
    as itself, an index of images and artifacts (its artifacts still listed: a copy does not attach
    what it copies as part of the tree again, ``attached_artifacts``)."""
    if desc.get("mediaType") != OCI_INDEX:
        return desc, [desc] if listed_artifact(desc) else []
    try:
        check_descriptor(desc, where)
        holder = manifest_object(source.read_manifest(desc), "%s: index %s" % (where, desc["digest"]))
        entries = index_manifests(holder, "%s: index %s" % (where, desc["digest"]))
    except (ArchiveError, DigestMismatchError):
        return desc, []             # said as it is read
    digest = _annotations(holder).get(ANNOTATION_HELD)
    if not digest:
        return desc, []
    artifacts = [entry for entry in entries if entry.get("digest") != digest and listed_artifact(entry)]
    names = {key: value for key, value in _annotations(desc).items()
             if key in (ANNOTATION_REF_NAME, ANNOTATION_CONTAINERD_NAME)}
    for entry in entries:
        if entry.get("digest") == digest:
            if listed_artifact(entry):          # it names one of its artifacts: no image of its own
                return desc, artifacts
            return dict(entry, annotations=dict(_annotations(entry), **names)), artifacts
    try:
        size = source.stored_size(digest)
        if size is None:
            return desc, artifacts
        value = manifest_object(source.read_manifest({"digest": digest, "size": size}),
                                "%s: index %s" % (where, digest))
    except (ArchiveError, DigestMismatchError):
        return desc, artifacts
    if not isinstance(value.get("manifests"), list):        # not an index
        return desc, artifacts
    media_type = value.get("mediaType") if isinstance(value.get("mediaType"), str) else OCI_INDEX
    return descriptor(media_type, digest, size, annotations=names), artifacts


def listed_referrers(source, listed: Sequence[dict], digest: str, where: str) -> List[dict]:
    """The manifests among ``listed`` (artifacts a layout or a holder index lists, ``held``) whose
    ``subject`` is ``digest``, as a referrers list has them, oldest first. One that is listed but not
    held is an error that names it: nothing listed is passed over unsaid."""
    found, seen = [], set()
    for desc in listed:
        check_descriptor(desc, where)
        if desc["digest"] in seen:          # listed twice (the same image under two tags): one referrer
            continue
        seen.add(desc["digest"])
        try:
            data = source.read_manifest(desc)
        except (ArchiveError, DigestMismatchError) as e:
            raise ArchiveError("%s lists the referrer %s but cannot give it: %s"
                               % (where, desc["digest"], outside_text(e, 300))) from e
        manifest = manifest_object(data, "%s: referrer %s" % (where, desc["digest"]))
        subject = manifest.get("subject")
        if isinstance(subject, dict) and subject.get("digest") == digest and \
                manifest.get("mediaType", OCI_MANIFEST) == OCI_MANIFEST:
            found.append(referrer_descriptor(manifest, desc["digest"], len(data)))
    return sorted(found, key=lambda d: (_annotations(d).get(ANNOTATION_CREATED, ""), d["digest"]))


class _TarSource(Source):
    """What Layout and DockerArchive share: an archive's open file and tarfile (either may be None),
    closed once, as a context manager; they are named by their path."""

    _tar = _file = None
    path: str

    @property
    def where(self) -> str:
        return self.path

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Layout(_TarSource):
    """Read an OCI image layout from a directory or a tar archive, never extracting anything.

    Every blob read through ``blob()``, ``read_manifest()`` or ``read_small_blob()`` is checked
    against its digest and size.  In a tar, members under ``blobs/``, ``index.json`` and
    ``oci-layout`` must be plain files with safe names; other members (the legacy files
    ``docker save`` adds) are ignored, links among them included.  A source for ``walk_index``
    and ``read_tree``.
    """

    def __init__(self, path: str, opened=None):
        self.path = path
        self._tar = self._file = None
        self._lock = threading.Lock()
        self._members = {}
        self._listed = None     # the artifacts the layout lists (``referrers``), once asked for
        self._dir = path if os.path.isdir(path) and opened is None else None
        try:
            if self._dir is None:
                self._file, self._tar, members = opened or _open_tar(path)
                self._index_members(members)
            if not self._exists("oci-layout") and self._dir is not None:
                raise ArchiveError("%s is a directory but not an OCI image layout (it has no oci-layout file)" % path)
            if not self._exists("oci-layout"):
                raise ArchiveError("%s is not an OCI image layout (no oci-layout file) nor a docker save archive "
                                   "(no manifest.json)" % path)
            layout = self._read_json("oci-layout")
            if not isinstance(layout, dict) or not isinstance(layout.get("imageLayoutVersion"), str):
                raise ArchiveError("%s: oci-layout has no imageLayoutVersion" % path)
            if not layout["imageLayoutVersion"].startswith("1."):
                raise ArchiveError("%s: image layout version %s; zeroimage reads version 1" % (
                    path, outside_text(repr(layout["imageLayoutVersion"]), 40)))
        except BaseException:
            self.close()
            raise

    def _index_members(self, members) -> None:
        for member in members:
            name = _safe_member_name(member.name)
            if not _is_layout_name(name):
                continue
            if member.isdir() and (name == "blobs" or posixpath.dirname(name) == "blobs"):
                continue
            if not member.isreg():
                raise ArchiveError("refusing archive member %s: a link or special file where a blob belongs"
                                   % outside_text(repr(member.name), 200))
            if name in self._members:
                raise ArchiveError("refusing archive with two members named %s" % outside_text(repr(name), 200))
            self._members[name] = member


    def _exists(self, name: str) -> bool:
        if self._dir is None:
            return name in self._members
        return os.path.lexists(os.path.join(self._dir, name))     # what is there but not a file: _size says so

    def _size(self, name: str) -> Optional[int]:
        if self._dir is None:
            member = self._members.get(name)
            return None if member is None else member.size
        try:
            st = os.lstat(os.path.join(self._dir, name))
        except OSError:
            return None
        # Inside the layout nothing is a link: not the file, not blobs/ nor blobs/ALGORITHM/ (a hostile
        # layout would read outside itself). The directory the user named is theirs: a link to it is
        # followed, as are links above it.
        parts = name.split("/")
        if not stat.S_ISREG(st.st_mode) or any(os.path.islink(os.path.join(self._dir, *parts[:n]))
                                               for n in range(1, len(parts))):
            raise ArchiveError("refusing %s: not a plain file inside the layout" % os.path.join(self.path, name))
        return st.st_size

    def _open(self, name: str):
        if self._dir is None:       # members share one file: each read seeks, so reads take turns
            return _LockedReader(self._tar.extractfile(self._members[name]), self._lock)
        # not through a link put there since _size looked (O_NOFOLLOW, where the system has it)
        try:
            fd = os.open(os.path.join(self._dir, name),     # (O_BINARY: Windows opens in text mode without it)
                         os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
        except OSError as e:
            raise ArchiveError("cannot read %s: %s" % (os.path.join(self._dir, name), e.strerror or e)) from e
        return os.fdopen(fd, "rb")

    def _read_json(self, name: str):
        """index.json or oci-layout: size-capped, parsed."""
        size = self._size(name)
        if size is None:
            raise ArchiveError("%s: %s is missing" % (self.path, name))
        if size > MAX_JSON_SIZE:
            raise ArchiveError("%s: %s is %d bytes, over the %d-byte limit for JSON"
                               % (self.path, name, size, MAX_JSON_SIZE))
        with contextlib.closing(self._open(name)) as f:
            return parse_json(f.read(MAX_JSON_SIZE + 1), "%s: %s" % (self.path, name))

    def index(self) -> dict:
        index = self._read_json("index.json")
        index_manifests(index, "%s: index.json" % self.path)
        return index

    def has(self, desc: dict) -> bool:
        digest, _ = check_descriptor(desc, self.path)
        return self._size(_blob_path(digest)) is not None

    def read_small_blob(self, desc: dict) -> bytes:
        """A small blob's exact bytes (a manifest, an index, a config), verified and size-capped."""
        blob = self.blob(desc)
        if blob.size > MAX_JSON_SIZE:
            raise ArchiveError("%s: blob %s is over the %d-byte limit" % (self.path, blob.digest, MAX_JSON_SIZE))
        with contextlib.closing(blob.open()) as f:
            return f.read()

    read_manifest = read_small_blob     # in a layout, manifests are blobs like any other

    def blob(self, desc: dict) -> Blob:
        """A Blob that streams from the layout, verified as it is read."""
        digest, size = check_descriptor(desc, self.path)
        name = _blob_path(digest)
        actual = self._size(name)
        if actual is None:
            raise ArchiveError("%s: blob %s is missing" % (self.path, digest))
        if actual != size:
            raise ArchiveError("%s: blob %s is %d bytes, its descriptor says %d" % (self.path, digest, actual, size))
        what = "blob %s in %s" % (digest, self.path)
        return Blob(digest, size, lambda: VerifyingReader(self._open(name), digest, size, what))

    def candidates(self) -> List[Candidate]:
        """Every image manifest reachable from index.json, through nested indexes, with its platform
        (entries that cannot be used carry their error: see ``walk_index``)."""
        return walk_index(self.index(), self, self.path)

    def referrers(self, digest: str) -> List[dict]:
        """The manifests the layout lists whose ``subject`` is ``digest`` (what ``build --sbom``
        attaches), as a referrers list has them: index.json's own artifact entries (as oras writes
        them) and those of zeroimage's index of an image and its artifacts (``with_referrers``). A blob
        nothing lists is garbage by the image-layout spec, and not read (an SBOM left behind when its
        image was written again without it; what zeroimage wrote beside the image before it listed them)."""
        if self._listed is None:
            self._listed = [artifact for desc in self.index()["manifests"]
                            for artifact in held(self, desc, self.path)[1]]
        return listed_referrers(self, self._listed, digest, self.path)

    def stored_size(self, digest: str) -> Optional[int]:
        """The size of the blob ``digest`` in the layout; None when it is not there (or no digest)."""
        if not isinstance(digest, str) or digest_problem(digest):
            return None
        return self._size(_blob_path(digest))


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


class _DiffIdCheck:
    """Pass a compressed layer's bytes through while hashing what they decompress to (``codec``:
    gzip, zstd); at their end the hash must be ``diff_id`` (DigestMismatchError otherwise)."""

    def __init__(self, f, diff_id: str, size: int, what: str, codec: Codec):
        self._f, self._diff_id, self._left, self._what = f, diff_id, size, what
        self._hash = _new_hash(parse_digest(diff_id)[0])
        self._codec = codec
        try:
            check_codec_readable(codec, what)
        except ArchiveError:
            f.close()
            raise
        self._inflate = _Inflater(codec, codec_module(codec))
        self._done = False

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._left -= len(data)
        try:
            for out in self._inflate.feed(data):    # a CHUNK_SIZE of output at a time: a bomb never sits in memory
                self._hash.update(out)
        except _parser_errors() as e:
            raise ArchiveError("%s is not valid %s (%s)" % (self._what, self._codec.name,
                                                            outside_text(str(e) or type(e).__name__, 200))) from e
        if (self._left <= 0 or not data) and not self._done and (n is None or n != 0):   # (readers stop at the size)
            self._done = True
            if not self._inflate.ended:
                raise ArchiveError("%s is not valid %s (it ends before its %s stream does: cut short)" % (
                    self._what, self._codec.name, self._codec.name))
            actual = "%s:%s" % (parse_digest(self._diff_id)[0], self._hash.hexdigest())
            if actual != self._diff_id:
                raise DigestMismatchError(self._what + " (its diff_id, from the config)", self._diff_id, actual)
        return data

    def close(self) -> None:
        self._f.close()


class _SavedLayer(NamedTuple):
    member: str         # the tar member holding the bytes (a link followed)
    media_type: str
    digest: str
    size: int
    diff_id: str


class DockerArchive(_TarSource):
    """A ``docker save`` archive as Docker wrote it before version 25 (``manifest.json``, each layer an
    uncompressed ``<id>/layer.tar``, the config ``<id>.json``, ``repositories``), or podman's
    ``docker-archive`` (layers ``<hex>.tar``); never extracted.

    A source for ``walk_index`` and ``read_tree`` like ``Layout``: each manifest.json entry is shown as a
    Docker v2 schema 2 manifest made here, one index entry per RepoTag. A layer is described as it is
    stored: an uncompressed one as ``rootfs.diff.tar`` with its diff_id as digest (so reading it checks
    the diff_id), a gzip one by the digest of its bytes (the diff_id checked by decompressing as it is
    read). Only what manifest.json names is read; those members must be plain files, or links to
    plain files of the archive (Docker links a layer saved twice to the first copy); two members of
    one name, unsafe names (checked for every member) and JSON over MAX_JSON_SIZE are refused.
    """

    def __init__(self, path: str, opened):
        self.path = path
        self._file, self._tar, members = opened
        self._lock = threading.Lock()
        self._small = {}            # digest -> bytes: the manifests made here and the configs
        self._layers = {}           # digest -> _SavedLayer
        self._entries = []
        try:
            self._members = self._index_members(members)
            self._read_manifest_json()
        except BaseException:
            self.close()
            raise

    def _index_members(self, members) -> Dict[str, tarfile.TarInfo]:
        found = {}
        for member in members:
            name = _safe_member_name(member.name)
            if member.isdir():
                continue
            if name in found:
                raise ArchiveError("refusing archive with two members named %s" % outside_text(repr(name), 200))
            found[name] = member
        return found


    def _member(self, name, what: str) -> tarfile.TarInfo:
        """The plain file ``name`` (as manifest.json gives it) stands for, one link followed."""
        if not isinstance(name, str) or not name:
            raise ArchiveError("%s: manifest.json names %s that is not a path" % (self.path, what))
        member = self._members.get(_safe_member_name(name))
        if member is None:
            raise ArchiveError("%s: manifest.json names %s %s, which the archive does not hold"
                               % (self.path, what, outside_text(repr(name), 200)))
        if member.issym() or member.islnk():
            base = posixpath.dirname(_safe_member_name(name)) if member.issym() else ""
            target = posixpath.normpath(posixpath.join(base, member.linkname))
            if target.startswith(("../", "/")) or target == "..":
                raise ArchiveError("refusing archive member %s: a link out of the archive"
                                   % outside_text(repr(member.name), 200))
            member = self._members.get(target)
            if member is None:
                raise ArchiveError("%s: %s %s is a link to %s, which the archive does not hold"
                                   % (self.path, what, outside_text(repr(name), 200), outside_text(repr(target), 200)))
        if not member.isreg():
            raise ArchiveError("refusing archive member %s: a link or special file where %s belongs"
                               % (outside_text(repr(member.name), 200), what))
        return member

    def _read_member(self, member: tarfile.TarInfo, what: str) -> bytes:
        if member.size > MAX_JSON_SIZE:
            raise ArchiveError("%s: %s is %d bytes, over the %d-byte limit for JSON"
                               % (self.path, what, member.size, MAX_JSON_SIZE))
        with contextlib.closing(self._open(member)) as f:
            return f.read(MAX_JSON_SIZE + 1)

    def _open(self, member: tarfile.TarInfo):
        return _LockedReader(self._tar.extractfile(member), self._lock)

    def _read_manifest_json(self) -> None:
        member = self._members.get("manifest.json")
        if member is None or not member.isreg():
            raise ArchiveError("%s: manifest.json is missing or not a plain file" % self.path)
        listed = parse_json(self._read_member(member, "manifest.json"), "%s: manifest.json" % self.path)
        if not isinstance(listed, list) or not listed or not all(isinstance(e, dict) for e in listed):
            raise ArchiveError("%s: manifest.json is not a list of images" % self.path)
        for n, entry in enumerate(listed):
            tags = _expect(entry.get("RepoTags"), "?strings", "%s: manifest.json: image %d's RepoTags"
                           % (self.path, n + 1)) or []
            desc = self._synthesize(entry, "image %d of manifest.json" % (n + 1))
            for tag in tags or [None]:
                self._entries.append(dict(desc, annotations=self._names(tag)) if tag else desc)

    @staticmethod
    def _names(tag: str) -> Dict[str, str]:
        try:
            ref = Reference.parse(tag)
        except InvalidReferenceError:
            return {ANNOTATION_CONTAINERD_NAME: tag}
        return {ANNOTATION_CONTAINERD_NAME: str(ref), ANNOTATION_REF_NAME: ref.tag or "latest"}

    def _synthesize(self, entry: dict, where: str) -> dict:
        """The manifest for one manifest.json entry, made and kept: its descriptor."""
        config_member = self._member(entry.get("Config"), "the config of " + where)
        config_data = self._read_member(config_member, "the config %s" % config_member.name)
        config = json_object(config_data, "%s: config %s" % (self.path, config_member.name))
        rootfs = config.get("rootfs")
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        names = _expect(entry.get("Layers"), "list", "%s: the Layers of %s" % (self.path, where))
        _expect(diff_ids, "digests", "%s: config %s: its rootfs.diff_ids" % (self.path, config_member.name))
        if len(diff_ids) != len(names):
            raise ArchiveError("%s: config %s lists %d layers but manifest.json names %d"
                               % (self.path, config_member.name, len(diff_ids), len(names)))
        layers = [self._layer(name, diff_id, "layer %d of %s" % (i + 1, where))
                  for i, (name, diff_id) in enumerate(zip(names, diff_ids))]
        config_desc = descriptor(DOCKER_CONFIG, sha256_digest(config_data), len(config_data))
        self._small[config_desc["digest"]] = config_data
        manifest = canonical_json(make_manifest(DOCKER_FAMILY, config_desc, [
            descriptor(layer.media_type, layer.digest, layer.size) for layer in layers]))
        digest = sha256_digest(manifest)
        self._small[digest] = manifest
        platform = Platform.from_dict(config)
        return descriptor(DOCKER_MANIFEST, digest, len(manifest),
                          **({"platform": platform.to_dict()} if platform else {}))

    def _layer(self, name, diff_id: str, what: str) -> _SavedLayer:
        member = self._member(name, what)
        with contextlib.closing(self._open(member)) as f:
            magic = f.read(6)
        codec = codec_of_bytes(magic)
        if not codec.module:
            layer = _SavedLayer(member.name, DOCKER_LAYER, diff_id, member.size, diff_id)
        elif codec.media_types:         # gzip; zstd (Docker has no name for it: OCI's, so a Docker image refuses it)
            hexpart = posixpath.basename(member.name)
            if member.name.startswith("blobs/sha256/") and digest_problem("sha256:" + hexpart) is None:
                digest = "sha256:" + hexpart        # named by its digest: checked as it is read
            else:
                hashing = HashingWriter()
                with contextlib.closing(self._open(member)) as f:
                    copy_stream(f, hashing)
                digest = hashing.digest
            oci, docker = codec.media_types[0]
            layer = _SavedLayer(member.name, docker or oci, digest, member.size, diff_id)
        else:
            raise ArchiveError("%s: %s (%s) is %s-compressed; zeroimage reads uncompressed, gzip and zstd layers"
                               % (self.path, what, outside_text(repr(name), 200), codec.name))
        known = self._layers.setdefault(layer.digest, layer)
        if known.diff_id != diff_id:
            raise ArchiveError("%s: %s is the same bytes as another layer with another diff_id" % (self.path, what))
        return known

    def index(self) -> dict:
        return make_index(OCI_FAMILY, list(self._entries))

    def has(self, desc: dict) -> bool:
        digest, _ = check_descriptor(desc, self.path)
        return digest in self._small or digest in self._layers

    def read_small_blob(self, desc: dict) -> bytes:
        digest, size = check_descriptor(desc, self.path)
        data = self._small.get(digest)
        if data is None or len(data) != size:
            raise ArchiveError("%s: no manifest or config %s of %d bytes" % (self.path, digest, size))
        return data

    read_manifest = read_small_blob

    def referrers(self, digest: str) -> List[dict]:
        """``docker save`` keeps no referrers."""
        return []

    def blob(self, desc: dict) -> Blob:
        digest, size = check_descriptor(desc, self.path)
        if digest in self._small:
            data = self.read_small_blob(desc)
            return Blob(digest, size, lambda: io.BytesIO(data))
        layer = self._layers.get(digest)
        if layer is None or layer.size != size:
            raise ArchiveError("%s: no layer %s of %d bytes" % (self.path, digest, size))
        member = self._members[_safe_member_name(layer.member)]      # (member.name as written: "./X.tar")
        what = "layer %s in %s" % (layer.member, self.path)

        def opener():
            if layer.media_type == DOCKER_LAYER:        # its digest is its diff_id
                return VerifyingReader(self._open(member), digest, size, what + " (its diff_id, from the config)")
            return _DiffIdCheck(VerifyingReader(self._open(member), digest, size, what), layer.diff_id, size, what,
                                layer_codec(layer.media_type))
        return Blob(digest, size, opener)

    def candidates(self) -> List[Candidate]:
        return walk_index(self.index(), self, self.path)

    def check_readable(self, manifest: dict) -> None:
        """Each compressed layer ``manifest`` lists can be decompressed here (its diff_id is checked as it
        is read): ArchiveError before any is read."""
        for desc in manifest.get("layers") or []:
            if desc.get("mediaType") != DOCKER_LAYER:
                check_layer_readable(desc, "layer %s in %s" % (self._layers[desc["digest"]].member, self.path))


def open_archive(path: str) -> Union[Layout, DockerArchive]:
    """The image archive at ``path``: an OCI layout (directory or tar, Docker 25+'s ``docker save``
    included), or a ``docker save`` archive of the older kind (manifest.json and no oci-layout)."""
    if os.path.isdir(path):
        return Layout(path)
    opened = _open_tar(path)
    names = set()
    for member in opened[2]:
        names.add(_safe_member_name(member.name))
    if "manifest.json" in names and "oci-layout" not in names:
        return DockerArchive(path, opened)
    return Layout(path, opened)


class RegistrySource(Source):
    """A repository seen the way ``walk_index`` and ``read_tree`` read a Layout: manifests fetched by
    digest, small blobs read whole, layers as blobs to stream; every read verified."""

    def __init__(self, registry: Registry, repository: str, where: Optional[str] = None,
                 ref: Optional[Reference] = None):
        self.registry, self.repository = registry, repository
        self.where = where or "%s/%s" % (registry.host, repository)     # for messages
        self.ref = ref          # what a blob that cannot be fetched is said to be part of
        self._small = {}        # digest -> bytes: a config is fetched once, however often it is read
        self._manifests = {}    # digest -> bytes: the same for manifests (the top is read again to select)
        self._listed = []       # the artifacts listed beside the image read (``held``)

    def top(self, ref: Reference) -> dict:
        """The descriptor of what a reference names (a manifest or an index; of zeroimage's index of an
        image and its artifacts, the image: ``held``)."""
        data, media_type, digest = self.registry.get_manifest(ref.repository, ref.digest or ref.tag)
        self._manifests[digest] = data
        desc, self._listed = held(self, {"mediaType": media_type, "digest": digest, "size": len(data)}, self.where)
        return desc

    @property
    def mount_from(self) -> Tuple[str, str]:
        """(registry, repository): where a push to the same registry may mount this source's blobs from."""
        return self.registry.host, self.repository

    def has(self, desc: dict) -> bool:
        return True

    def read_manifest(self, desc: dict) -> bytes:
        digest, size = check_descriptor(desc, self.where)
        if digest not in self._manifests:
            self._manifests[digest] = self.registry.get_manifest(self.repository, digest)[0]
        data = self._manifests[digest]
        if len(data) != size:
            raise ArchiveError("manifest %s in %s/%s is %d bytes, its descriptor says %d"
                               % (digest, self.registry.host, self.repository, len(data), size))
        return data

    def read_small_blob(self, desc: dict) -> bytes:
        digest, size = check_descriptor(desc, self.where)
        if digest not in self._small:
            self._small[digest] = self.registry.read_small_blob(self.repository, digest, size)
        return self._small[digest]

    def blob(self, desc: dict) -> Blob:
        digest, size = check_descriptor(desc, self.where)
        return Blob(digest, size, lambda: self._open_blob(digest, size), self.mount_from)

    def referrers(self, digest: str) -> List[dict]:
        """What refers to ``digest``: the referrers API's list, else (a registry without it) the index
        kept under the referrers tag, else none."""
        found = self.registry.referrers(self.repository, digest)
        if found is None:
            index = self.registry.referrers_index(self.repository, digest)
            found = index["manifests"] if index is not None else []
        listed = [d for d in listed_referrers(self, self._listed, digest, self.where)
                  if d["digest"] not in [f.get("digest") for f in found]]
        return found + listed

    def _open_blob(self, digest: str, size: int) -> VerifyingReader:
        """A layer's stream; opened while it is written elsewhere (an archive, another registry), so a
        refusal says it came from this repository."""
        if self.ref is None:
            return self.registry.open_blob(self.repository, digest, size)
        with registry_errors("pull", self.ref, self.registry):
            return self.registry.open_blob(self.repository, digest, size)


DAEMON_BASE = "docker-daemon:"      # --from docker-daemon:NAME[:TAG], the word skopeo uses


def _export_from_engine(session: Session, name: str, stack: contextlib.ExitStack) -> str:
    """The image NAME of the local engine, as ``docker save`` writes it, streamed into a temporary
    file (gone when ``stack`` closes) and read from there like any archive."""
    engine = Engine.find(session)
    claimed = []
    try:        # removed when the stack closes, whenever a stop signal lands (see _exclusive_file)
        fd = _exclusive_file(tempfile.gettempdir(), "zeroimage-", ".tar", lambda path: (
            claimed.append(path), stack.callback(_remove_quietly, path)))
        tmp = stack.enter_context(os.fdopen(fd, "w+b"))
    except OSError as e:
        raise ZeroImageError("cannot export %s from the engine into %s: %s (set TMPDIR to a directory with room)"
                             % (name, tempfile.gettempdir(), e.strerror or e)) from e
    session.display.info("exporting %s from the engine at %s", name, engine.address)
    with contextlib.closing(engine.export(name)) as stream:
        copy_stream(_Checked(stream, session.cancelled), tmp)
    tmp.flush()
    return claimed[0]


def _open_engine_export(session: Session, name: str, stack: contextlib.ExitStack) -> Union[Layout, DockerArchive]:
    """The engine's image NAME (``_export_from_engine``) opened as the archive its export is (a ``docker
    save`` archive, or Docker 25's OCI layout), open until ``stack`` closes. Its messages call it
    docker-daemon:NAME, never the temporary file; what is not a whole archive is said to be the engine's."""
    path = _export_from_engine(session, name, stack)
    try:
        layout = stack.enter_context(open_archive(path))
    except ArchiveError as e:       # the engine's answer, not a file of the user's
        raise ArchiveError("what the engine exported for %s is not a whole docker save archive (%s)" % (
            name, str(e).replace(path, "the export"))) from e
    layout.path = DAEMON_BASE + name       # (a tar's: its path is only what messages call it)
    return layout


# ---- Reading images ----

def base_paths(base: BaseImage, wanted: Sequence[str], minimal: Optional[Sequence[LayerEntry]] = None,
               cancelled: Optional[threading.Event] = None) -> Dict[str, LayerEntry]:
    """What the base holds at each path in ``wanted`` (see ``paths_to_ask``), so a new layer keeps the
    mode and owner of the base's directories and replaces none of them: read from the base's layers,
    in order, only when something is wanted (a program at /app wants nothing; /usr/local/bin/app does)."""
    found = {entry.path: entry for entry in with_parents(minimal)} if minimal else {}
    if not wanted:
        return found
    for desc, _ in base.layers:         # every one is read: each is said unreadable before any is
        check_layer_readable(desc, "the base's layer %s" % desc["digest"], " (it is read to see what the base "
                             "holds where the new layer adds files; or put the files at the root)")
    for desc, blob in base.layers:
        if cancelled is not None and cancelled.is_set():
            raise CancelledError()
        with layer_tar(desc, blob, "the base's layer %s" % desc["digest"], cancelled) as tar:
            scan_layer(tar, wanted, found)
    return found


def read_tree(source, desc: dict, where: str, depth: int = 0, layers_needed: bool = True) -> Union[Image, ImageIndex]:
    """The image or index ``desc`` names, from ``source`` (a Layout or a RegistrySource): manifests and
    configs read and verified now, byte for byte; layers as blobs, streamed when used. A config from
    a source with ``mount_from`` (a registry repository) may be mounted from there, as its layers may.
    A layer the source lacks is an error now, unless ``layers_needed`` is False (inspect: the manifest
    and config are all it needs, as skopeo's): then only if the layer is opened."""
    if depth > MAX_INDEX_DEPTH:
        raise ArchiveError("%s: indexes nested more than %d deep" % (where, MAX_INDEX_DEPTH))
    digest, _ = check_descriptor(desc, where)
    data = source.read_manifest(desc)
    value = manifest_object(data, "%s: manifest %s" % (where, digest))
    media_type = value.get("mediaType") or desc.get("mediaType") or ""
    if not isinstance(media_type, str):
        raise ArchiveError("%s: manifest %s has a media type that is not a string" % (where, digest))
    own = _bytes_blob(digest, data)
    if media_type in INDEX_TYPES or (not media_type and "manifests" in value):
        children = [read_tree(source, child, where, depth + 1, layers_needed) for child in index_manifests(value, where)]
        return ImageIndex(value, own, children, media_type)
    config_desc, layers = value.get("config"), value.get("layers")
    config_digest, _ = check_descriptor(config_desc, "%s: manifest %s" % (where, digest))
    if not isinstance(layers, list):
        raise ArchiveError("%s: manifest %s has no layers list" % (where, digest))
    config_data = source.read_small_blob(config_desc)
    config = parse_json(config_data, "%s: config %s" % (where, config_digest))
    if artifact_type(dict(desc, mediaType=media_type), value) is None:
        config_shape(config, "%s: image %s" % (where, digest))      # an image's: every field of its type
    config = config if isinstance(config, dict) else {}         # (an artifact's may be anything)
    platform = Platform.from_dict(desc.get("platform")) or Platform.from_dict(config)
    config_blob = _bytes_blob(config_digest, config_data)._replace(source=source.mount_from)
    blobs = [source.blob(layer) if layers_needed else _unread_layer(source, layer, where) for layer in layers]
    return Image(value, config, platform, blobs + [config_blob, own], media_type)


def _unread_layer(source, desc: dict, where: str) -> Blob:
    """A layer's blob that asks ``source`` for it only when opened (then missing is said, as always)."""
    digest, size = check_descriptor(desc, where)
    return Blob(digest, size, lambda: source.blob(desc).open(), source.mount_from)


def read_selection(source, desc: dict, where: str,
                   platforms: Optional[Sequence[Optional[Platform]]]) -> Union[Image, ImageIndex]:
    """What ``desc`` names, read as ``read_tree`` does: all of it when ``platforms`` is None; else the
    image for each platform (see ``select_platforms``): one is that image, byte for byte; several are a
    new index of them (``selected_index``), unless they are all the index lists: then it is the index."""
    if platforms is None:
        return read_tree(source, desc, where)
    candidates = walk_index(make_index(OCI_FAMILY, [desc]), source, where)
    chosen = select_platforms(candidates, platforms, where)
    if len(chosen) == 1:
        return read_tree(source, chosen[0].descriptor, where)
    top = manifest_object(source.read_manifest(desc), "%s: index %s" % (where, desc["digest"]))
    if [c.descriptor for c in chosen] == top.get("manifests"):
        return read_tree(source, desc, where)
    return selected_index(top, chosen, [read_tree(source, c.descriptor, where) for c in chosen])


def read_image(source, chosen: Candidate, where: str, layers_needed: bool = True) -> Image:
    """The image a candidate names, read as ``read_tree`` does; an artifact is an error that says so."""
    image = read_tree(source, chosen.descriptor, where, layers_needed=layers_needed)
    if not isinstance(image, Image):
        raise ArchiveError("%s: %s is not an image manifest" % (where, chosen.descriptor["digest"]))
    problem = entry_problem(chosen.descriptor, image.kind, image.manifest, where)
    if problem is not None:
        raise problem
    return image


def layout_entries(layout: Layout, ref_name: Optional[str]) -> List[dict]:
    """The index.json entries asked for: those that answer to ``ref_name`` (full name, familiar name
    or tag), else all; each as what it holds (``held``). Only these are read further: an entry
    not asked for never stops a command."""
    listed = layout.index()["manifests"]
    if not listed:
        raise ArchiveError("%s is an empty layout: its index.json lists no image" % layout.path)
    # an artifact index.json lists beside images (oras attach --oci-layout) refers to one: not an image of it
    entries = [d for d in listed if not listed_artifact(d)] or listed
    if ref_name is not None:
        entries = [d for d in listed if ref_name in _ref_names(descriptor_name(d))]
    if not entries:
        names = sorted(set(descriptor_name(d) for d in listed if descriptor_name(d)))
        raise ArchiveError("%s has no image named %r (it has: %s)"
                           % (layout.path, ref_name, outside_text(", ".join(names), 500) or "no names"))
    return [held(layout, d, layout.path)[0] for d in entries]


def _image_for(source, index: dict, platform: Platform, ref_name: Optional[str], where: str) -> Tuple[Candidate, Image]:
    chosen = select_manifest(walk_index(index, source, where), platform, ref_name, where)
    image = read_image(source, chosen, where)
    config = normal_base_config(image.config, "%s: image %s" % (where, image.digest))  # refused now, not after the work
    diff_ids = config["rootfs"]["diff_ids"]
    if len(diff_ids) != len(image.manifest["layers"]):
        raise ArchiveError("%s: config lists %d layers but the manifest has %d"
                           % (where, len(diff_ids), len(image.manifest["layers"])))
    return chosen, image._replace(config=config)


def archive_base(layout: Layout, ref_name: Optional[str], platform: Platform,
                 compress: Optional[Callable[[Blob], Blob]] = None, name: Optional[str] = None,
                 compression: Compression = Compression()) -> BaseImage:
    """The base image for ``platform`` from an open layout (named ``ref_name`` when it holds several),
    called ``name`` in messages (what the user wrote: ``PATH[:NAME]``).
    From a ``docker save`` archive of the older kind, uncompressed layers are compressed by ``compress``
    (with ``compression``)."""
    index = make_index(OCI_FAMILY, layout_entries(layout, ref_name))
    chosen, image = _image_for(layout, index, platform, None, layout.path)
    if isinstance(layout, DockerArchive):
        layout.check_readable(image.manifest)
    if isinstance(layout, DockerArchive) and compress is not None:
        image = compressed_image(image, compress, compression)
    layers = list(zip(image.manifest["layers"], image.blobs))
    return BaseImage(image.config, layers, _family_of(image), chosen.platform, True,
                     name or chosen.ref_name or os.path.basename(layout.path))


def registry_base(session: "Session", text: str, platform: Platform) -> BaseImage:
    """A base image from a registry: its manifest and config read now, its layers streamed when used."""
    ref = Reference.parse(text)
    source = RegistrySource(session.registry(ref.registry), ref.repository, ref.familiar())
    with registry_errors("pull", ref, source.registry):
        top = source.top(ref)
        chosen, image = _image_for(source, make_index(OCI_FAMILY, [top]), platform, None, ref.familiar())
    name = str(ref.replace(digest=None)) if ref.tag else ref.name
    return BaseImage(image.config, list(zip(image.manifest["layers"], image.blobs)), _family_of(image),
                     chosen.platform, True, ref.familiar(),
                     {ANNOTATION_BASE_NAME: name, ANNOTATION_BASE_DIGEST: image.digest},
                     {ANNOTATION_BASE_NAME: name, ANNOTATION_BASE_DIGEST: top["digest"]}, remote=True)


# ---- SBOMs and referrers ----

#
# What --sbom attaches to an image: an SPDX 2.3 JSON document naming the program file and what its
# build information lists (pure: the same inputs give the same bytes), and the OCI 1.1 artifact
# manifest that attaches a document to an image (its ``subject``), as sinks write or push it.


def purl(language: str, module: Module) -> Optional[str]:
    """The package URL of a Go module (``pkg:golang/PATH@VERSION``) or a crates.io crate
    (``pkg:cargo/NAME@VERSION``); None when it has no version or no such home."""
    if not module.version or module.version == "(devel)" or not module.path:
        return None
    version = urllib.parse.quote(module.version, safe="")
    if language == "go":
        if module.path.startswith((".", "/")):      # a replacement by a local directory
            return None
        return "pkg:golang/%s@%s" % ("/".join(urllib.parse.quote(part, safe="") for part in module.path.split("/")),
                                      version)
    if language == "rust" and module.source in ("", "crates.io"):
        return "pkg:cargo/%s@%s" % (urllib.parse.quote(module.path, safe=""), version)
    return None


def _go_sum_sha256(go_sum: str) -> Optional[str]:
    """Go's ``h1:`` checksum (base64 SHA-256 of the module's file list) as hex, else None."""
    if not go_sum.startswith("h1:"):
        return None
    try:
        raw = base64.b64decode(go_sum[3:], validate=True)
    except ValueError:      # binascii.Error is one
        return None
    return raw.hex() if len(raw) == 32 else None


_NOASSERTION = "NOASSERTION"
_GO_SUPPLIER = "Organization: The Go Project"
# Code hosts whose first path element after the host names the module's owner (its supplier).
_OWNER_HOSTS = ("github.com", "gitlab.com", "bitbucket.org", "codeberg.org", "git.sr.ht")
_GO_VERSION = _Pattern(r"go([0-9]+(?:\.[0-9]+)*(?:(?:rc|beta)[0-9]+)?)(?![0-9A-Za-z.])")


def _stdlib_version(toolchain: str) -> Optional[str]:
    """The Go version a toolchain string names, as a purl gives it: ``go1.23.1`` and
    ``go1.23.1 X:nocoverageredesign`` (experiments) -> ``1.23.1``, ``go1.22rc1`` -> ``1.22rc1``;
    None for a development toolchain (``devel go1.24-abc123 ...``) or anything else: no release."""
    match = _GO_VERSION.match(toolchain.split(" ", 1)[0])
    return match.group(1) if match else None


def _spdx_supplier(text: str) -> str:
    """What a user says of an image's vendor as an SPDX supplier, on one printable line: a value
    that starts with ``Organization: `` or ``Person: `` is an SPDX actor already (an e-mail address in
    parentheses at its end); any other is ``Organization: VALUE``, its parentheses made brackets
    (SPDX reads a final parenthesized part as an e-mail address); NOASSERTION when empty, when it says
    so, or when it names a kind of actor and no actor."""
    text = _printable_text(" ".join(text.split()))
    if not text or text == _NOASSERTION or re.fullmatch(r"(Person|Organization):?", text):
        return _NOASSERTION
    if re.match(r"(Person|Organization): \S", text):
        return text
    return "Organization: " + text.replace("(", "[").replace(")", "]")


def _module_supplier(language: str, module: Module, program_supplier: str = _NOASSERTION) -> str:
    """The supplier of a module or crate by where it comes from: Go's standard library and
    ``golang.org/x/...`` -> the Go project; ``github.com/OWNER/...`` (GitLab, Bitbucket, Codeberg
    alike; SourceHut's ``~USER``; ``gopkg.in``'s, as it redirects to GitHub) -> its owner; a Go module replaced by a local directory, or a
    crate of the program's own workspace (source "local") -> the program's supplier; anything else
    (other hosts, crates.io or git crates: nothing in the binary names who made them) -> NOASSERTION."""
    path = module.path
    if language == "go":
        if path in ("std", "stdlib") or path.startswith(("golang.org/x/", "go.googlesource.com/")):
            return _GO_SUPPLIER
        if path.startswith((".", "/")):
            return program_supplier
        host, _, rest = path.partition("/")
        owner = rest.split("/", 1)[0]
        if host == "gopkg.in":          # gopkg.in/NAME.vN is github.com/go-NAME/NAME; gopkg.in/USER/NAME.vN USER's
            if "/" not in rest:
                name = owner.split(".v", 1)[0]
                owner, rest = ("go-" + name if name else ""), "go-%s/%s" % (name, name)
            host = "github.com"
        if host in _OWNER_HOSTS and "/" in rest and _REPO_ELEMENT.fullmatch(owner) and owner.strip(".~"):
            return ("Person: " + owner[1:]) if owner.startswith("~") else "Organization: " + owner
        return _NOASSERTION
    if language == "rust" and module.source == "local":
        return program_supplier
    return _NOASSERTION


def _spdx_version(version: str) -> str:
    """A package's ``versionInfo``: as the binary says it; NOASSERTION when it says none (Go's
    "(devel)" is no version either)."""
    return version if version and version != "(devel)" else _NOASSERTION


def _spdx_package(spdx_id: str, name: str, version: str, locator: Optional[str], sha256: Optional[str] = None,
                  supplier: str = _NOASSERTION, **extra) -> dict:
    package = {"SPDXID": spdx_id, "name": name or "unknown", "versionInfo": _spdx_version(version),
               "supplier": supplier, "downloadLocation": "NOASSERTION",
               "filesAnalyzed": False, "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION",
               "copyrightText": "NOASSERTION"}
    if sha256:
        package["checksums"] = [{"algorithm": "SHA256", "checksumValue": sha256}]
    if locator:
        package["externalRefs"] = [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                                    "referenceLocator": locator}]
    package.update(extra)
    return package


def _dependency_packages(info: BuildInfo, program_supplier: str = _NOASSERTION) -> List[Tuple[dict, str]]:
    """A package for each module or crate the program is built from (a replaced Go module as what
    replaced it), and Go's standard library as ``stdlib`` (its ``versionInfo`` the whole toolchain
    string, experiments included: what built it; its purl the Go version alone), each with how the
    program uses it: "runtime", or "build" for a crate only a build script or proc macro uses."""
    packages = []
    if info.language == "go" and info.toolchain:
        version = _stdlib_version(info.toolchain)
        packages.append((_spdx_package("", "stdlib", info.toolchain, version and "pkg:golang/stdlib@%s" % version,
                                       supplier=_GO_SUPPLIER), "runtime"))
    for dep in info.deps:
        used = dep.replace or dep
        extra = {"comment": "replaces %s %s" % (dep.path, dep.version)} if dep.replace else {}
        packages.append((_spdx_package("", used.path, used.version, purl(info.language, used),
                                       _go_sum_sha256(used.sum), _module_supplier(info.language, used, program_supplier),
                                       **extra), "build" if dep.kind == "build" else "runtime"))
    for n, (package, _) in enumerate(packages):
        package["SPDXID"] = "SPDXRef-Package-%d" % (n + 1)
    return packages


def spdx_document(target: str, checksums: Dict[str, str], info: Optional[BuildInfo], created: str,
                  supplier: str = "", version: str = "") -> bytes:
    """The SPDX 2.3 JSON document of a program at ``target`` in an image: the program as a package
    (its main module or root crate when the build information names one) that CONTAINS the file
    (``checksums``: SHA1 and SHA256, hex) and DEPENDS_ON every module or crate it runs with; a crate
    only its build uses is a BUILD_DEPENDENCY_OF it. ``supplier`` is the image's vendor as the user
    gave it (``_spdx_supplier``), else the main module's owner (``_module_supplier``), else
    NOASSERTION; ``version`` the image's version for a program whose binary states none, else
    NOASSERTION. ``created`` is the image's creation time, so the same inputs give the same bytes."""
    name = posixpath.basename(target)
    root = info.main if info is not None else None
    language = info.language if info is not None else ""
    program_supplier = _spdx_supplier(supplier) if supplier else (
        _module_supplier(language, root) if root and language == "go" else _NOASSERTION)
    program = _spdx_package("SPDXRef-Package-program", root.path if root and root.path else name,
                            root.version if root and _spdx_version(root.version) != _NOASSERTION else version,
                            purl(language, root) if root else None, supplier=program_supplier,
                            primaryPackagePurpose="APPLICATION")
    # The package holds the one file, so its files were analysed: the verification code of one file
    # is the SHA-1 of that file's SHA-1 (hex).
    program.update(filesAnalyzed=True, packageVerificationCode={
        "packageVerificationCodeValue": hashlib.sha1(checksums["SHA1"].encode("ascii")).hexdigest()})
    if info is not None and info.language == "go" and info.path:
        program["summary"] = "Go program %s" % info.path
    file = {"SPDXID": "SPDXRef-File-program", "fileName": "." + target,
            "checksums": [{"algorithm": algorithm, "checksumValue": checksums[algorithm]}
                          for algorithm in ("SHA1", "SHA256")],
            "licenseConcluded": "NOASSERTION", "copyrightText": "NOASSERTION"}
    deps = _dependency_packages(info, program_supplier) if info is not None else []
    relationships = [("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Package-program"),
                     ("SPDXRef-Package-program", "CONTAINS", "SPDXRef-File-program")]
    relationships += [(dep["SPDXID"], "BUILD_DEPENDENCY_OF", "SPDXRef-Package-program") if kind == "build" else
                      ("SPDXRef-Package-program", "DEPENDS_ON", dep["SPDXID"]) for dep, kind in deps]
    document = {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": name,
        "creationInfo": {"created": created, "creators": ["Tool: zeroimage-%s" % __version__]},
        "packages": [program] + [dep for dep, _ in deps], "files": [file],
        "relationships": [{"spdxElementId": a, "relationshipType": kind, "relatedSpdxElement": b}
                          for a, kind, b in relationships],
    }
    # A namespace unique to this document and the same for the same inputs: named by its content.
    document["documentNamespace"] = "https://zeroimage.invalid/spdx/%s-%s" % (
        urllib.parse.quote(name, safe=""), hashlib.sha256(canonical_json(document)).hexdigest()[:32])
    return canonical_json(document)


# -- referrers: artifacts attached to an image the OCI 1.1 way --


class Attachment(NamedTuple):
    """A document to attach to an image (an SBOM): its artifact type, its bytes, when it was made."""

    artifact_type: str
    data: bytes
    created: str = ""
    title: str = ""         # a file name for the document (its layer's org.opencontainers.image.title)


def attach(subject: Union[Image, ImageIndex], attachment: Attachment) -> Image:
    """The artifact manifest that attaches a document to ``subject`` (image-spec 1.1): ``artifactType``,
    the empty config (``{}``), the document as its one layer, ``subject`` naming the image's manifest."""
    document, empty = bytes_blob(attachment.data), bytes_blob(b"{}")
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": attachment.artifact_type,
                "config": descriptor(OCI_EMPTY, empty.digest, empty.size, data="e30="),
                "layers": [descriptor(attachment.artifact_type, document.digest, document.size, annotations={
                    ANNOTATION_TITLE: attachment.title} if attachment.title else None)],
                "subject": descriptor(subject.kind, subject.digest, subject.manifest_blob.size)}
    if attachment.created:
        manifest["annotations"] = {ANNOTATION_CREATED: attachment.created}
    return Image(manifest, {}, None, [document, empty, bytes_blob(canonical_json(manifest))], OCI_MANIFEST)


# manifest digest -> what to attach to it: documents to make artifacts of, or artifacts read elsewhere
Attachments = Optional[Dict[str, Sequence[Union[Attachment, Image]]]]


def referable(top: Union[Image, ImageIndex]) -> List[Union[Image, ImageIndex]]:
    """What in a tree may have referrers: each image, and the index itself."""
    return tree_images(top) + ([top] if isinstance(top, ImageIndex) else [])


def artifacts_for(node: Union[Image, ImageIndex], attachments: Attachments) -> List[Image]:
    """The artifact manifests that attach ``attachments`` to ``node`` (one read elsewhere kept as it is)."""
    return [a if isinstance(a, Image) else attach(node, a) for a in (attachments or {}).get(node.digest, ())]


def attached_artifacts(top: Union[Image, ImageIndex], attachments: Attachments) -> List[Image]:
    """The artifacts attached to the images of ``top`` (and to the index itself), in the tree's order,
    each once; not those ``top`` holds itself (a holder index read as itself, ``held``)."""
    within = set(blob.digest for blob in tree_blobs(top))
    found = collections.OrderedDict()
    for node in referable(top):
        for artifact in artifacts_for(node, attachments):
            if artifact.digest not in within:
                found.setdefault(artifact.digest, artifact)
    return list(found.values())


_NO_PLATFORM = {"architecture": "unknown", "os": "unknown"}


def with_referrers(top: Union[Image, ImageIndex], artifacts: Sequence[Image]) -> Union[Image, ImageIndex]:
    """What an archive or layout directory names in index.json for ``top`` and the ``artifacts`` that
    refer to it (an SBOM), so that they are reachable from index.json (the image-layout spec has no
    referrers API: a blob nothing refers to is garbage to a layout's collector, and ``skopeo copy``
    leaves it behind): ``top`` itself when there are none; else one OCI index of ``top``'s images
    (``top``, when it is one image) and the artifacts, each artifact listed with the platform
    unknown/unknown, so that skopeo, podman and docker, which choose an image by platform, pass it by
    as they pass BuildKit's attestations, and read the image as before. The index is annotated with
    ``top``'s digest (``io.zeroimage.image``): zeroimage reads ``top`` back byte for byte, its digest
    unchanged (``held``), and the artifacts as its referrers. Of an index, ``top``'s own blob is
    written beside (the sinks write ``tree_blobs(top)``)."""
    if not artifacts:
        return top
    if isinstance(top, Image):
        platform = top.platform.to_dict() if top.platform else None
        entries, children, annotations = [descriptor(top.kind, top.digest, top.manifest_blob.size, platform=platform)], \
            [top], {}
    else:
        entries, children = list(top.index.get("manifests") or []), list(top.children)
        annotations = _string_map(top.index.get("annotations")) if top.kind == OCI_INDEX else {}
    entries += [descriptor(a.kind, a.digest, a.manifest_blob.size, artifactType=artifact_type({}, a.manifest),
                           platform=dict(_NO_PLATFORM)) for a in artifacts]
    index = make_index(OCI_FAMILY, entries)
    index["annotations"] = dict(annotations, **{ANNOTATION_HELD: top.digest})
    return ImageIndex(index, bytes_blob(canonical_json(index)), children + list(artifacts), OCI_INDEX)


def stored_blobs(top: Union[Image, ImageIndex], artifacts: Sequence[Image]) -> List[Blob]:
    """Every blob an archive or layout holds for ``top`` and its ``artifacts`` (``with_referrers``)."""
    stored = with_referrers(top, artifacts)
    return tree_blobs(top) + [blob for artifact in artifacts for blob in artifact.blobs] + \
        ([stored.manifest_blob] if stored is not top else [])


# ---- Sinks ----
#
# Where a finished image or index goes: an archive, a layout directory, a container engine, or a
# registry (every blob made present, then the manifests, met with the registries' quirks).


def docker_manifest(image: Image, name: Reference) -> list:
    """Docker's manifest.json for one image (what ``docker load`` reads)."""
    return [{"Config": _blob_path(image.manifest["config"]["digest"]), "RepoTags": [name.familiar()],
             "Layers": [_blob_path(d["digest"]) for d in image.manifest["layers"]]}]


class ArchiveWriter:
    """Write an OCI image layout into a tar stream: blobs first, then the small files.

    Members are in a fixed order with fixed ownership and mtime 0, so the same
    images give the same bytes.  Each blob is written once, however often added.
    Blobs that come from a registry show as downloads on ``display``; once ``cancelled``
    is set, writing stops (CancelledError).
    """

    def __init__(self, fileobj, display: Optional[Display] = None, cancelled: Optional[threading.Event] = None):
        self._tar = TarWriter(fileobj)
        self._display = display or Display()
        self._cancelled = cancelled
        self._written = set()
        self._algorithms = {"sha256"}
        for name in ("blobs", "blobs/sha256"):
            self._tar.add(LayerEntry(name, "dir", 0o755))

    def add_blob(self, blob: Blob) -> None:
        if blob.digest in self._written:
            return
        algorithm, _ = parse_digest(blob.digest)
        if algorithm not in self._algorithms:           # blobs/sha512/, blobs/blake3/ on first use
            self._algorithms.add(algorithm)
            self._tar.add(LayerEntry("blobs/" + algorithm, "dir", 0o755))
        task = self._display.task("downloading", _short(blob.digest), blob.size) if blob.source else None
        with contextlib.closing(blob.open()) as src:
            self._tar.add(LayerEntry(_blob_path(blob.digest)), blob.size, _Metered(src, task, self._cancelled))
        if task:
            task.finish()
        self._written.add(blob.digest)

    def add_file(self, name: str, data: bytes) -> None:
        self._tar.add(LayerEntry(name), len(data), io.BytesIO(data))

    def close(self) -> None:
        self._tar.close()


def write_archive(f, blobs: Sequence[Blob], index: dict, docker: Optional[list],
                  display: Optional[Display] = None, cancelled: Optional[threading.Event] = None) -> None:
    """Write an OCI layout tar (plus Docker's manifest.json when given) to the stream ``f``."""
    writer = ArchiveWriter(f, display, cancelled)
    for blob in blobs:
        writer.add_blob(blob)
    writer.add_file("index.json", canonical_json(index))
    if docker is not None:
        writer.add_file("manifest.json", canonical_json(docker))
    writer.add_file("oci-layout", canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
    writer.close()


def write_layout_dir(path: str, blobs: Sequence[Blob], top: dict, cancelled: Optional[threading.Event] = None) -> List[str]:
    """Add an image to an OCI layout directory (made if missing), as ``skopeo copy oci:DIR:TAG`` does:
    new blobs written, index.json updated atomically, an entry with the same ref name (the tag)
    replaced. The names of the images replaced that were named otherwise (``app:1`` by ``other:1``)."""
    path = output_directory(path)
    try:
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
    except OSError as e:
        raise ZeroImageError("cannot write the layout %s: %s" % (path, e.strerror or e)) from e
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
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with atomic_output(target) as out, contextlib.closing(blob.open()) as src:
            copy_stream(_Checked(src, cancelled), out, blob.size)
    ref_name = top["annotations"][ANNOTATION_REF_NAME]
    replaced = [descriptor_name(d) for d in index["manifests"] if _annotations(d).get(ANNOTATION_REF_NAME) == ref_name
                and descriptor_name(d) != descriptor_name(top)]
    index["manifests"] = [d for d in index["manifests"] if _annotations(d).get(ANNOTATION_REF_NAME) != ref_name]
    index["manifests"].append(top)
    with atomic_output(index_path) as out:
        out.write(canonical_json(index))
    with atomic_output(os.path.join(path, "oci-layout")) as out:
        out.write(canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
    return replaced


class Sink(Protocol):
    """What every destination of a finished image gives the verbs that write: an OCI archive
    (ArchiveSink), a layout directory (LayoutSink), a container engine (EngineSink), a registry
    (RegistrySink). A sink is started before the work begins (``start``: what can fail first fails
    before anything is read or built), takes the image through ``write_to_sink`` (``write``), and says
    where it went (``where``). The members with a body are what a sink that has no such thing gives;
    the sinks subclass this."""

    top = None          # what it took, when not what it was given (a registry that refuses OCI: Docker's encoding)
    image_id = None     # the engine's ID of the image loaded (an engine only)
    attached = ()       # the artifacts (SBOMs) written beside the image

    def start(self, stack: contextlib.ExitStack) -> None:
        """Check and open the destination, its cleanup on ``stack``."""

    def write(self, top: Union[Image, ImageIndex], name: Optional[Reference],
              attachments: "Attachments" = None) -> str:
        """Write the image or index (its artifacts beside it); the digest of what went."""

    def where(self, digest: str) -> str:
        """What to tell the user it went to: a path, a reference with its digest."""

    def stream(self, tmp, label: str) -> Optional[GrowingFile]:
        """A file a new layer is written into that sends it as it grows; None: the sink takes layers
        once they are made."""
        return None


def write_to_sink(sink: Sink, top: Union[Image, ImageIndex], name: Optional[Reference], attachments: "Attachments",
                  where: str) -> str:
    """The one way every writing verb (build, pull, push, copy) hands an image or index to a sink:
    refused first when it is not valid (``check_writable``; ``where`` names its source), so nothing
    invalid is written, uploaded or loaded; the digest of what went."""
    check_writable(top, where)
    return sink.write(top, name, attachments)


class ArchiveSink(Sink):
    """An OCI image layout in one tar file, with Docker's manifest.json when it holds one image (Docker
    loads no index), written atomically: nothing is left at ``path`` unless all of it was written."""

    def __init__(self, session: "Session", path: str):
        self.session, self.path = session, path
        self._out = None
        # temporary layers: on the output's filesystem (for stdout, the temporary directory)
        self.scratch_dir = None if path == "-" else os.path.dirname(os.path.abspath(path))
        self.present = None

    def start(self, stack: contextlib.ExitStack) -> None:
        """Claim the output before any work (an unwritable path fails now); renamed into place last.
        ``-`` is standard output, written as the archive is made (never a terminal)."""
        if self.path == "-":
            if sys.stdout.isatty():
                raise UsageError("`output=-` writes the archive to standard output, which is a terminal; "
                                 "pipe it (| docker load) or redirect it (> app.tar)")
            self._out = sys.stdout.buffer
        else:
            self._out = stack.enter_context(atomic_output(self.path))

    def write(self, top: Union[Image, ImageIndex], name: Reference, attachments: "Attachments" = None) -> str:
        docker = docker_manifest(top, name) if isinstance(top, Image) and artifact_type({}, top.manifest) is None \
            else None       # Docker loads an image, never an index or an artifact
        self.attached = attached_artifacts(top, attachments)
        write_archive(self._out, stored_blobs(top, self.attached),
                      make_index(OCI_FAMILY, [top_descriptor(with_referrers(top, self.attached), name)]), docker,
                      self.session.display, self.session.cancelled)
        if self.path == "-":
            self._out.flush()
        return top.digest

    def where(self, digest: str) -> str:
        return self.path


class LayoutSink(Sink):
    """An OCI image layout directory, added to as ``skopeo copy oci:DIR:TAG`` does."""

    def __init__(self, session: "Session", path: str):
        self.session, self.path = session, path
        scratch = os.path.dirname(os.path.abspath(path))
        while not os.path.isdir(scratch) and scratch != os.path.dirname(scratch):
            scratch = os.path.dirname(scratch)      # the layout's parents are made as it is written
        self.scratch_dir = scratch
        self.present = None

    def start(self, stack: contextlib.ExitStack) -> None:
        output_directory(self.path)

    def write(self, top: Union[Image, ImageIndex], name: Reference, attachments: "Attachments" = None) -> str:
        real = output_directory(self.path)
        made = not os.path.exists(real)
        self.attached = attached_artifacts(top, attachments)
        try:
            replaced = write_layout_dir(real, stored_blobs(top, self.attached),
                                        top_descriptor(with_referrers(top, self.attached), name), self.session.cancelled)
        except BaseException:
            if made:        # a layout this build started: nothing of it stays (one it added to keeps its blobs)
                shutil.rmtree(real, ignore_errors=True)
            raise
        for other in replaced:
            with contextlib.suppress(InvalidReferenceError):
                other = Reference.parse(other).familiar()
            self.session.display.warning("%s: %s replaces %s there: a layout names its images by tag (%s), as "
                                         "skopeo's oci:DIR:TAG does; give it another tag (`tag`) to keep both",
                                         self.path, name.familiar(), outside_text(other or "an unnamed image", 200),
                                         name.tag, fails=True)       # an image lost: said under -q too
        return top.digest

    def where(self, digest: str) -> str:
        return self.path


class EngineSink(Sink):
    """A container engine (Docker, podman): the image sent as an archive with Docker's manifest.json,
    streamed to ``POST /images/load`` as it is written; of an index, the image for the engine's own
    platform. ``image_id`` is the engine's ID of what it loaded."""

    def __init__(self, session: "Session"):
        self.session = session
        self.engine = None
        self.scratch_dir = None         # the layers wait in the temporary directory
        self.present = None
        self.name = self.image_id = None

    def start(self, stack: contextlib.ExitStack) -> None:
        """Find the engine before any work: none reachable fails now."""
        self.engine = Engine.find(self.session)

    def platform(self) -> Platform:
        return self.engine.platform()

    def choose(self, top: Union[Image, ImageIndex]) -> Image:
        """The image to load: the one image, or the index's image for the engine's platform."""
        wanted = self.platform()
        if isinstance(top, Image):
            if top.platform is not None and not top.platform.matches(wanted):
                self.session.display.warning("the image is for %s, the engine runs %s images: it may not start there",
                                             top.platform, wanted, fails=True)
            return top
        images = [image for image in tree_images(top) if image.platform is not None]
        for image in images:
            if image.platform.matches(wanted):
                return image
        error = PlatformNotFoundError(wanted, [image.platform for image in images], "the image to load")
        error.args = ("the engine runs %s images, and the image has none (it has: %s); build one for %s, or "
                      "write the archive with `output`" % (wanted, ", ".join(str(i.platform) for i in images) or "none",
                                                     wanted),)
        raise error

    def write(self, top: Union[Image, ImageIndex], name: Reference, attachments: "Attachments" = None) -> str:
        image = self.choose(top)
        if isinstance(top, ImageIndex):
            self.session.display.info("loading the %s image (the engine's platform)", image.platform)
        docker = docker_manifest(image, name)
        index = make_index(OCI_FAMILY, [top_descriptor(image, name)])
        display, cancelled = self.session.display, self.session.cancelled
        for message in self.engine.load(lambda out: write_archive(out, image.blobs, index, docker, display, cancelled)):
            display.debug("engine: %s", outside_text(message, 300))
        self.name = name.familiar()
        self.image_id = self.engine.image_id(self.name)
        return image.digest

    def where(self, digest: str) -> str:
        return self.name


PUSH_CHECK_TIMEOUT = 10.0       # seconds the check before a push waits for its upload session to be cancelled


_UNASKED = object()     # RegistrySink's ``there`` before the tag was asked for


class RegistrySink(Sink):
    """A repository: every blob made present (skipped when there, mounted from another repository of
    the registry, or uploaded, several at once), then the manifests, children first; the top one by
    the reference's tag. When the tag names that digest already, nothing of it is written."""

    def __init__(self, session: "Session", ref: Reference, keep_family: bool = False, can_convert: bool = True,
                 there=_UNASKED):
        self.session, self.ref = session, ref
        self.there = there                  # the digest the tag names, when the caller asked it (None: none)
        self.registry = session.registry(ref.registry)
        self.keep_family = keep_family      # the media types were asked for: no Docker fallback
        self.can_convert = can_convert      # the command has --media-types (copy has not)
        self.scratch_dir = None
        self.top = None                     # what was pushed (Docker's encoding, when OCI was refused)
        self.attached = []                  # the artifacts attached to it
        self.streams = []                   # layers uploaded as they are made
        self.mounted = set()                # digests of layers ``present`` mounted (not pushed again)
        self._stack = None

    def start(self, stack: contextlib.ExitStack) -> None:
        """Before any work: the registry is reached and takes a push from these credentials
        (``Registry.check_push``, as ``check_auth(push=True)`` asks), so a registry that is
        down, or refuses, fails the command now, not after the layers were compressed."""
        self._stack = stack
        with registry_errors("push", self.ref, self.registry):
            self.registry.check_push(self.ref.repository, PUSH_CHECK_TIMEOUT)

    def stream(self, tmp, label: str) -> Optional[GrowingFile]:
        """A file to write a new layer into that uploads it as it is written (``LayerStream``), or
        None when this registry took no such upload in this session."""
        if self._stack is None or not self.registry.may_stream():
            return None
        stream = LayerStream(self.session, self.registry, self.ref.repository, [push_scope(self.ref.repository)],
                             label)
        self.registry.stream_started(stream)
        self._stack.callback(stream.abort)
        self.streams.append(stream)
        return stream.start(tmp)

    def _streamed(self) -> set:
        """The digests of the layers that went up as they were made (each stream waited for)."""
        done = set()
        for stream in self.streams:
            if stream.join():
                done.add(stream.file.digest)
            elif stream.error is not None and not isinstance(stream.error, CancelledError):
                if _upload_refused(stream.error):
                    self.session.display.info("%s refused a layer sent in chunks as it was made (%s); sending "
                                              "whole blobs", self.registry.host, _registry_reason(stream.error))
                else:
                    self.session.display.debug("sending %s as it was made failed (%s); sending it again",
                                               stream.label, stream.error)
        self.streams = []
        return done

    def present(self, digest: str, size: int = 0) -> bool:
        """Whether the repository holds a blob already, or does now: mounted from the repository of the
        registry where the session's ``BlobPlaces`` saw it last (for the layer cache: then nothing is
        compressed; the same program pushed to a second repository is mounted there)."""
        repository, host, places = self.ref.repository, self.registry.host, self.session.blob_places
        try:
            if self.registry.blob_exists(repository, digest, [push_scope(repository)]):
                places.seen(host, repository, digest)
                return True
            place = next((p for p in places.where(host, digest) if p != repository), None)
            if place is None or not _mount(self.session, self.registry, repository, digest, size, place,
                                           [push_scope(repository), pull_scope(place)], remembered=True):
                return False
            self.mounted.add(digest)
            return True
        except CancelledError:
            raise
        except ZeroImageError:      # the push will say what is wrong; here, just compress
            return False

    def write(self, top: Union[Image, ImageIndex], name: Optional[Reference] = None,
              attachments: "Attachments" = None) -> str:
        if self.ref.digest and self.ref.digest != top.digest:
            raise ZeroImageError("cannot push to %s: it names the digest %s, but the image is %s (name a tag, "
                                 "or the image's own digest)" % (self.ref.familiar(), self.ref.digest, top.digest))
        repository = self.ref.repository
        blobs = [blob for image in tree_images(top) for blob in image.blobs[:-1] if blob.digest not in self.mounted]
        sources = sorted(set(b.source[1] for b in blobs if b.source and b.source[0] == self.ref.registry
                             and b.source[1] != repository))
        scopes = [push_scope(repository)] + [pull_scope(s) for s in sources]   # one token, for mounts too
        with registry_errors("push", self.ref, self.registry):
            streamed = self._streamed()
            if not streamed and self._names_already(top, scopes[:1]):      # (a layer just sent: a new image)
                self.session.display.info("%s names %s already: nothing sent", self.ref.familiar(),
                                          _short(top.digest))
                self.top = top
            else:
                scopes = self._push_blobs(blobs, scopes, sources, streamed)
                self.top = self._put_tree(top, scopes)
            if attachments:     # on the images as pushed (Docker's encoding has other digests)
                self._attach([(pushed, artifact) for node, pushed in zip(referable(top), referable(self.top))
                              for artifact in artifacts_for(pushed, {pushed.digest: attachments.get(node.digest, ())})],
                             scopes[:1])
        return self.top.digest

    def _names_already(self, top: Union[Image, ImageIndex], scopes: List[str]) -> bool:
        """Whether the tag names ``top`` already (an unchanged re-push, a copy made again): then its blobs
        and manifests are not asked for, one by one, and nothing is put (sync's "already there"). One
        HEAD, with the push's token; one that fails is no answer (the push goes on, and says what fails)."""
        there = self.there
        if there is _UNASKED and self.ref.tag:
            try:
                there = self.registry.head_digest(self.ref.repository, self.ref.tag, scopes)
            except CancelledError:
                raise
            except NotFoundError:
                there = None
            except ZeroImageError as e:
                self.session.display.debug("%s: what its tag names could not be asked (%s); pushing",
                                           self.ref.familiar(), e)
                there = None
        return there == top.digest

    def _push_blobs(self, blobs: List[Blob], scopes: List[str], sources: List[str], streamed: set) -> List[str]:
        """Every blob made present (``push_blobs``), mounted from the same-registry ``sources`` and from
        where the session's ``BlobPlaces`` saw them, with one token for all of it; the scopes that
        token was asked for."""
        session, repository = self.session, self.ref.repository
        remembered = _remembered_mounts(session.blob_places, self.registry.host, repository, blobs, sources)
        extra = [pull_scope(r) for r in sorted(set(remembered.values()) - set(sources))]
        if extra:
            try:
                push_blobs(session, self.registry, repository, blobs, scopes + extra, sent=streamed,
                           remembered=remembered)
                return scopes + extra
            except AuthenticationError as e:
                # a token service that takes no more scopes: the remembered places were only a chance
                session.display.debug("%s refused the token asked for %s with the repositories its blobs were "
                                      "seen in (%s); asking without them", self.registry.host, repository,
                                      _registry_reason(e))
        try:
            push_blobs(session, self.registry, repository, blobs, scopes, sent=streamed)
        except AuthenticationError as e:
            if len(scopes) == 1:
                raise
            # Some token services read only one of several scopes (only the last: GitLab's, once): a
            # token asked for the push and the mount sources' pulls may lack the push.
            session.display.info("%s refused the token asked for %s and the mounts' sources (%s); "
                                 "asking for %s alone, without mounts", self.registry.host, repository,
                                 _registry_reason(e), repository)
            scopes = scopes[:1]
            push_blobs(session, self.registry, repository, blobs, scopes, mount=False)
        return scopes

    def _attach(self, pairs: Sequence[Tuple[Union[Image, ImageIndex], Image]], scopes: List[str]) -> None:
        for pushed, artifact in pairs:
            kind = outside_text(referrer_descriptor(artifact.manifest, artifact.digest, 0).get("artifactType")
                                or "artifact", 100)
            if artifact.manifest["subject"]["digest"] != pushed.digest:
                self.session.display.warning("the %s %s refers to %s, which went to %s as %s (another encoding): "
                                             "it is left out", kind, _short(artifact.digest),
                                             _short(artifact.manifest["subject"]["digest"]), self.registry.host,
                                             _short(pushed.digest), fails=True)      # asked for, not done: -q shows it
                continue
            try:
                how = push_referrer(self.session, self.registry, self.ref.repository, artifact, scopes)
            except (RegistryError, ArchiveError) as e:
                # refused (no OCI artifacts here), or the referrers tag holds something else: the image
                # stands without it; a failure to talk to the registry at all is an error
                if isinstance(e, RegistryError) and not _refuses_oci(e) and e.status not in (200, 400, 404, 405):
                    raise
                reason = _registry_reason(e) if isinstance(e, RegistryError) and not e.explained else str(e)
                self.session.display.warning("%s: the %s for %s could not be attached (%s); the image is pushed "
                                             "without it", self.registry.host, kind,
                                             _short(artifact.manifest["subject"]["digest"]), reason, fails=True)
                continue
            self.session.display.info("attached %s %s to %s (%s)", kind, _short(artifact.digest),
                                      _short(artifact.manifest["subject"]["digest"]), how)
            self.attached.append(artifact)

    def _put_tree(self, top: Union[Image, ImageIndex], scopes: List[str]) -> Union[Image, ImageIndex]:
        """Put the manifests; when the registry refuses OCI ones, the Docker v2 schema 2 encoding of the
        same image (the same blobs: only manifest digests change), unless OCI was asked for."""
        try:
            self._put(top, scopes, self.ref.tag)
            return top
        except RegistryError as e:
            oci = top.kind == OCI_INDEX or any(image.kind == OCI_MANIFEST for image in tree_images(top))
            if not oci or not _refuses_oci(e):
                raise
            refusal = "%s refuses OCI manifests (%s)" % (self.registry.host, _registry_reason(e))
            if self.keep_family or self.ref.digest:     # OCI asked for, or its digest named: no other encoding
                advice = "push Docker v2 schema 2 manifests instead with `media_types=docker`%s" % (
                    " and a tag" if self.ref.digest else "") if self.can_convert else \
                    "name a tag instead, and the Docker v2 schema 2 encoding goes, under its own digest"
                raise e.restated("cannot push %s: %s; %s" % (self.ref.familiar(), refusal, advice)) from e
            notes = []
            try:
                docker = convert_family(top, DOCKER_FAMILY, notes)
            except ZeroImageError as c:
                raise e.restated("cannot push %s: %s, and the image cannot be said in Docker's media types: %s"
                                 % (self.ref.familiar(), refusal, c)) from e
        for note in notes:
            self.session.display.info("%s", note)
        self.session.display.warning("%s; pushing the Docker v2 schema 2 encoding of the same image instead "
                                     "(same layers and config; the manifest digest is %s, not %s)",
                                     refusal, docker.digest, top.digest)
        try:
            self._put(docker, scopes, self.ref.tag)
        except RegistryError as d:
            raise d.restated("cannot push %s: %s, and its Docker encoding too (%s)%s" % (
                self.ref.familiar(), refusal, _registry_reason(d), "; it may take no multi-platform images: push "
                "one platform's" if isinstance(top, ImageIndex) else "")) from d
        return docker

    def _put(self, node: Union[Image, ImageIndex], scopes: List[str], tag: Optional[str]) -> str:
        if isinstance(node, ImageIndex):
            for child in node.children:
                self._put(child, scopes, None)
        with contextlib.closing(node.manifest_blob.open()) as f:
            data = f.read()
        return self.registry.put_manifest(self.ref.repository, tag or node.digest, data, node.kind, scopes)

    def where(self, digest: str) -> str:
        return str(self.ref.replace(digest=digest))


def _refuses_oci(error: RegistryError) -> bool:
    """Whether a manifest PUT was refused for being OCI: 415, or MANIFEST_INVALID/UNSUPPORTED saying
    "schema version not supported" or naming the media type (older Quay; jib#698, buildah#2594)."""
    if error.status == 415:
        return True
    if error.status != 400:
        return False
    said = json.dumps(error.errors).lower()
    return any(e.get("code") in ("MANIFEST_INVALID", "UNSUPPORTED") for e in error.errors) and \
        any(words in said for words in ("schema version", "media type", "mediatype", "not supported", "unsupported"))


MAX_REMEMBERED_MOUNTS = 8      # other repositories a push asks pull access to, to mount blobs seen there


def _remembered_mounts(places: BlobPlaces, host: str, repository: str, blobs: Sequence[Blob],
                      sources: Sequence[str] = ()) -> Dict[str, str]:
    """digest -> the repository of ``host`` to mount it from into ``repository``, for each blob with no
    same-registry source: the one ``places`` saw it in last, among the ``sources`` and at most
    MAX_REMEMBERED_MOUNTS others (the token asks for a pull of each)."""
    mounts, extra = {}, set()
    for blob in blobs:
        if blob.digest in mounts or (blob.source and blob.source[0] == host and blob.source[1] != repository):
            continue
        for place in places.where(host, blob.digest):
            if place != repository and (place in sources or place in extra or len(extra) < MAX_REMEMBERED_MOUNTS):
                if place not in sources:
                    extra.add(place)
                mounts[blob.digest] = place
                break
    return mounts


def push_blobs(session: "Session", registry: Registry, repository: str, blobs: Sequence[Blob],
               scopes: Sequence[str], mount: bool = True, sent: Sequence[str] = (),
               remembered: Optional[Dict[str, str]] = None) -> Dict[str, int]:
    """Make every blob present in ``repository``: skip, mount (unless not ``mount``) from a same-registry
    source or from the repository ``remembered`` names for its digest (``_remembered_mounts``), or
    upload; up to PARALLEL_TRANSFERS at a time, each on its own connection. Blobs whose digest is in
    ``sent`` went up already (as they were made). Where each blob is now, and where it came from,
    is noted in the session's ``blob_places``."""
    unique = [blob for blob in collections.OrderedDict((blob.digest, blob) for blob in blobs).values()
              if blob.digest not in sent]
    registry.auth.header(scopes)            # one token for all the workers
    places = session.blob_places
    outcomes = []
    for digest in set(sent) & set(b.digest for b in blobs):
        places.seen(registry.host, repository, digest)
        outcomes.append("uploaded")
    outcomes += session.parallel(lambda blob: _push_blob(session, registry, repository, blob, scopes, mount,
                                                         remembered), unique)
    for blob in blobs:
        if blob.source:         # read from there (or could have been)
            places.seen(blob.source[0], blob.source[1], blob.digest)
    counts = {verb: outcomes.count(verb) for verb in ("skipped", "mounted", "uploaded")}
    session.display.debug("blobs: %d uploaded, %d mounted, %d already there",
                          counts["uploaded"], counts["mounted"], counts["skipped"])
    return counts


STREAM_CHUNK = 4 * 1000 * 1000     # a ranged PATCH while a layer compresses (GHCR refuses ranged chunks over 4 MiB)


class LayerStream:
    """A new layer uploaded while it is compressed: an upload session opened at the layer's first
    bytes, a ranged PATCH for every STREAM_CHUNK of it as they are written (``GrowingFile``), the
    ``PUT ?digest=`` once the digest is known. A chunk that fails on the way (a broken connection,
    5xx, 429) is sent again from what the registry says it holds. ``join()`` says whether the blob
    went up; when not, the push sends it whole from the file, as any other blob."""

    def __init__(self, session: "Session", registry: Registry, repository: str, scopes: Sequence[str], label: str):
        self.session, self.registry, self.repository, self.scopes = session, registry, repository, list(scopes)
        self.label, self.error, self.upload = label, None, None
        self.file = None
        self._started, self._ended = False, threading.Event()      # an Event: waiting on it can be interrupted
        self._thread = threading.Thread(target=self._run, name="zeroimage-stream", daemon=True)

    def start(self, tmp) -> GrowingFile:
        """The file to write the layer into; the upload begins at its first write."""
        self.file = GrowingFile(tmp, self._begin, self.session.cancelled)
        return self.file

    def _begin(self) -> None:
        self._started = True
        self._thread.start()

    def _run(self) -> None:
        try:
            self._send()
            self.registry.stream_ended()
        except BaseException as e:      # said by join(); the push then sends the blob whole
            self.error = e
            self.registry.stream_ended(e)
            if self.upload is not None:
                self.upload.cancel()
        finally:
            self._ended.set()

    def _send(self) -> None:
        task = self.session.display.task("uploading", self.label, None)    # its size: known at the end
        try:
            self.upload = self.registry.start_upload(self.repository, self.scopes)
            offset, buffer = 0, bytearray(STREAM_CHUNK)
            while True:
                n = self.file.read_into(offset, buffer)
                if self.file.done and self.file.digest is None:
                    raise CancelledError()      # given up by the writer
                if n:
                    self._chunk(buffer if n == len(buffer) else bytes(buffer[:n]), offset)
                    offset += n
                    if self.file.done:
                        task.total = self.file.size
                    task.advance(n)
                elif self.file.done:
                    break
            if offset != self.file.size:
                raise CancelledError()
            self.upload.commit(self.file.digest)
        except BaseException:
            task.drop()
            raise
        task.label = _short(self.file.digest)
        task.finish()

    def _chunk(self, data, offset: int) -> None:
        sent = 0
        for attempt in range(1, UPLOAD_ATTEMPTS + 1):
            try:
                self.upload.send_chunk(data[sent:] if sent else data, offset + sent)
                return
            except (NetworkError, RegistryError) as e:
                retryable = isinstance(e, NetworkError) or e.status in RETRY_STATUSES
                if not retryable or attempt == UPLOAD_ATTEMPTS:
                    raise
                self.registry.transport.wait(max(backoff_delay(attempt), getattr(e, "retry_after", 0) or 0.0))
                try:
                    held = self.upload.received()
                except (NetworkError, RegistryError):
                    # distribution: the upload URL's _state names the old offset, which a chunk that got
                    # there after all (its answer lost) made stale: the session cannot go on
                    raise e from None
                if held is None or not offset <= held <= offset + len(data):
                    raise e
                self.session.display.info("a chunk of %s failed (%s); the registry holds %s of it: going on from "
                                          "there", self.label, e, _human_size(held))
                sent = held - offset
                if sent == len(data):
                    return

    def join(self) -> bool:
        """Wait for the upload; whether the blob went up. Interrupted (Ctrl-C), the session is
        cancelled and the upload gets CANCEL_GRACE seconds to end its session at the registry."""
        if not self._started:
            return False
        try:
            self._ended.wait()
        except BaseException:
            self.session.cancel()
            self._ended.wait(CANCEL_GRACE)
            raise
        return self.error is None and self.file.digest is not None

    def abort(self) -> None:
        """On the way out: the upload given up (its session at the registry cancelled); the thread
        gets CANCEL_GRACE seconds for that (a daemon: it never holds the process)."""
        if self.file is not None:
            self.file.finish(None)
        if self._started:
            self._ended.wait(CANCEL_GRACE)


def push_referrer(session: "Session", registry: Registry, repository: str, artifact: Image,
                  scopes: Sequence[str]) -> str:
    """Push a manifest that has a ``subject``: its blobs, the manifest by digest, then, unless the
    registry's referrers API will list it (``Registry.put_referrer``), its descriptor added to the
    index under the referrers tag (distribution spec: "referrers tag schema"), which is updated,
    never overwritten: other entries stay, the artifact is listed once, last. Says how the artifact
    can be found."""
    push_blobs(session, registry, repository, artifact.blobs[:-1], scopes)
    with contextlib.closing(artifact.manifest_blob.open()) as f:
        data = f.read()
    if registry.put_referrer(repository, data, scopes):
        return "referrers API"
    subject, tag = artifact.manifest["subject"]["digest"], referrers_tag(artifact.manifest["subject"]["digest"])
    index = registry.referrers_index(repository, subject, scopes) or make_index(OCI_FAMILY, [])
    # listed once, last: the list's order says which was attached last (an SBOM pushed again moves)
    listed = [d for d in index["manifests"] if d.get("digest") != artifact.digest] + [
        referrer_descriptor(artifact.manifest, artifact.digest, len(data))]
    if listed != index["manifests"]:
        registry.put_manifest(repository, tag, canonical_json(dict(index, manifests=listed)), OCI_INDEX, scopes)
    return "referrers tag %s" % tag


def _mount(session: "Session", registry: Registry, repository: str, digest: str, size: int, source: str,
           scopes: Sequence[str], remembered: bool) -> bool:
    """Mount ``digest`` from ``source`` into ``repository`` of ``registry``: said as an event and noted in
    the session's ``blob_places``. A ``remembered`` source (one the places named, not where the blob
    was read) that gives no mount is forgotten there."""
    places, host = session.blob_places, registry.host
    if registry.mount_blob(repository, digest, source, scopes):
        places.seen(host, repository, digest)
        session.display.event("mounted", "%s from %s" % (_short(digest), source), size)
        return True
    if remembered:
        session.display.debug("%s was not to be mounted from %s, where it was seen", _short(digest), source)
        places.forget(host, source, digest)
    return False


def _push_blob(session: "Session", registry: Registry, repository: str, blob: Blob, scopes: Sequence[str],
               mount: bool, remembered: Optional[Dict[str, str]] = None) -> str:
    display, places, host = session.display, session.blob_places, registry.host
    if registry.blob_exists(repository, blob.digest, scopes):
        places.seen(host, repository, blob.digest)
        display.event("skipped", _short(blob.digest), blob.size)
        return "skipped"
    places.forget(host, repository, blob.digest)
    same = blob.source[1] if blob.source and blob.source[0] == host and blob.source[1] != repository else None
    source = same or (remembered or {}).get(blob.digest)
    if mount and source is not None and source != repository and \
            _mount(session, registry, repository, blob.digest, blob.size, source, scopes, remembered=same is None):
        return "mounted"
    task = display.task("uploading", _short(blob.digest), blob.size)
    metered = blob._replace(open=lambda: _Metered(blob.open(), task.restart(), session.cancelled))
    registry.upload_blob(repository, metered, scopes)
    places.seen(host, repository, blob.digest)
    task.finish()
    return "uploaded"


# ---- Targets ----


def looks_like_path(text: str) -> bool:
    """Whether ``text``, where a path on disk or a registry reference may stand, is a path: it starts
    with /, ./, ../ or ~, or ends in .tar (.gz, .xz, .bz2), .tgz, .txz, .tbz2 or .oci (before an
    optional :NAME). The disk
    is not asked: a file never shadows a reference (write ./NAME to read it), and a missing archive
    is never looked for in a registry."""
    if transport_word(text):
        return False        # a transport word (oci-archive:app.tar) is neither: Reference.parse says what to write
    lowered = text.lower()
    return lowered in (".", "..") or lowered.startswith(("/", "./", "../", "~")) or _host_path_start(text) or \
        has_archive_suffix(text)


def _host_path_start(text: str) -> bool:
    """Whether ``text`` starts as only a path does on this host, beyond / ./ ../: on Windows ``C:\\``,
    ``\\\\server\\share``, ``\\``, ``.\\``, ``..\\`` (on POSIX nothing more)."""
    drive, rest = os.path.splitdrive(text)
    seps = tuple(sep for sep in (os.sep, os.altsep) if sep)
    return drive.startswith(seps) or rest.startswith(seps + tuple(dots + sep for dots in (".", "..") for sep in seps))


def _split_archive_spec(spec: str) -> Tuple[str, Optional[str]]:
    """``PATH`` or ``PATH:NAME`` (NAME may hold ':' too, as in alpine:3.19); ``~`` is the home directory."""
    if not spec or spec.startswith(":") and not os.path.lexists(spec):      # "" or ":NAME"
        raise UsageError("the archive path is empty")
    path, ref_name = os.path.expanduser(spec), None
    whole = path
    colon = len(whole)
    while not os.path.exists(path) and ":" in whole[:colon]:
        colon = whole.rindex(":", 0, colon)
        if os.path.lexists(whole[:colon]):        # (a link that leads nowhere: said below)
            path, ref_name = whole[:colon], whole[colon + 1:]
    if not os.path.exists(path):
        if transport_problem(spec):
            raise UsageError(transport_problem(spec))
        broken = _broken_link(path)
        raise ArchiveError("%s is %s" % (path, broken) if broken else "%s: no such file or directory" % spec)
    return path, ref_name


def _broken_link(path: str) -> Optional[str]:
    """What is wrong with ``path`` when it is a symbolic link that leads to nothing (which
    ``os.path.exists`` calls missing); None when it is no link."""
    try:
        target = os.readlink(path)
    except OSError:
        return None
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symbolic link that leads back to itself (a loop of links)"
    return "a symbolic link to %s, which does not exist" % outside_text(target, 300)


def archive_target(target: str) -> Optional[Tuple[str, Optional[str]]]:
    """``(path, name)`` when ``target`` names an archive or layout on disk, None for a registry
    reference: it looks like a path (``looks_like_path``), or it is no valid reference but exists."""
    if looks_like_path(target):
        return _split_archive_spec(target)
    try:
        Reference.parse(target)
        return None
    except InvalidReferenceError:
        try:
            return _split_archive_spec(target)
        except ArchiveError:
            return None


def _note_on_disk(session: Session, text: str, ref: Reference, verb: str = "read") -> None:
    """A note when ``text``, taken as a reference, is also a file here (``./NAME`` means the file)."""
    if _on_disk(text):
        session.display.info("%s is %s the registry as %s; to %s the file of that name, write ./%s", text,
                             "read from" if verb == "read" else "written to", ref, verb, text)


def _on_disk(target: str) -> bool:
    try:
        _split_archive_spec(target)
        return True
    except ArchiveError:
        return False


class EngineImage(_Value):
    """What a ``docker-daemon:NAME`` word names (``engine_image``): the image NAME of the local
    container engine (Docker, or podman's service), a reference with a tag (latest when none).
    A frozen value, not a tuple, as Reference: ``"%s" % image`` formats the word."""

    ref: Reference
    _FIELDS = ("ref",)

    @property
    def name(self) -> str:
        """NAME as the engine is asked for it and loads it: Docker's short form (app:1, localhost/app:latest)."""
        return self.ref.familiar()

    def __str__(self) -> str:
        return DAEMON_BASE + self.name


def engine_image(text) -> Optional[EngineImage]:
    """The one rule for a ``docker-daemon:NAME`` word (skopeo's), wherever one may stand: build's
    ``base``, every source ``read_source`` reads, inspect's and digest's TARGET, copy's SRC and DST,
    push_archive's source. None when ``text`` is no such word; a UsageError when NAME is empty, is no
    reference, or carries a digest (an engine's image is named by NAME[:TAG])."""
    if not isinstance(text, str) or not text.lower().startswith(DAEMON_BASE):
        return None
    name = text[len(DAEMON_BASE):]
    if not name:
        raise UsageError("%s names no image: write docker-daemon:NAME[:TAG], an image the local engine holds "
                         "(docker images lists them)" % outside_text(text, 100))
    try:
        ref = Reference.parse(name)
    except InvalidReferenceError as e:
        raise UsageError("%s: %s" % (outside_text(text, 200), e)) from e
    if ref.digest:
        raise UsageError("%s: an image of the local engine is named by NAME[:TAG], without a digest (%s)" % (
            outside_text(text, 300), DAEMON_BASE + ref.replace(digest=None).familiar()))
    return EngineImage(ref)


def copy_destination(text: str) -> Union[Reference, EngineImage, Tuple[str, Optional[Reference]]]:
    """A copy's DST: the local engine's image for ``docker-daemon:NAME`` (``engine_image``), ``(path,
    name)`` for an archive to write (``PATH``, or ``PATH:NAME`` to name the image in it; a path as
    ``looks_like_path`` tells), else the registry reference."""
    engine = engine_image(text)
    if engine is not None:
        return engine
    if not looks_like_path(text):
        return Reference.parse(text)
    path, name = os.path.expanduser(text), None
    drive, rest = os.path.splitdrive(path)      # (Windows: the colon of C:\ names no image)
    head, colon, tail = rest.partition(":")
    head = drive + head
    if colon and not path.lower().endswith(ARCHIVE_SUFFIXES) and head.lower().endswith(ARCHIVE_SUFFIXES):
        path, name = head, Reference.parse(tail)
        if name.digest:
            raise UsageError("%s: the name of an image in an archive has no digest" % text)
        if ref_name_problem(name.tag):
            raise UsageError("%s: the tag %s; choose another tag" % (text, ref_name_problem(name.tag)))
    if not path:
        raise UsageError("the archive path is empty")
    return path, name


def _archive_stem(path: str) -> str:
    base = os.path.basename(path)
    for suffix in ARCHIVE_SUFFIXES:
        if base.lower().endswith(suffix):
            return base[:-len(suffix)]
    return base


# -- tags, digest, tag, delete --


def registry_reference(text: str, default_tag: Optional[str] = "latest") -> Reference:
    """A word only a registry reference may be (what pull, push_archive, check_auth, tag_image,
    delete_image and build's ``push`` name): text that looks like a path (``looks_like_path``) is a
    UsageError, never asked of Docker Hub as docker.io/library/app.tar."""
    if isinstance(text, str) and looks_like_path(text):
        raise UsageError("%s looks like a path; a registry image is wanted here, like registry.example.com/app:1"
                         % outside_text(repr(text), 200))
    return Reference.parse(text, default_tag)


REPO_VARIABLE = "ZEROIMAGE_REPO"      # where a bare push name goes (as ko's KO_DOCKER_REPO)


def push_reference(text: str, environ, display: Optional[Display] = None) -> Reference:
    """Where a push of ``text`` goes: the one rule for every ``push`` option (build's; mutate's,
    append's and rebase's). ``text`` is read as ``registry_reference`` reads it; when it is bare (it
    names no registry host, so it would go to Docker Hub) and $ZEROIMAGE_REPO is set in ``environ``
    (the session's), it is completed under that repository: with ZEROIMAGE_REPO=registry.example.com/team,
    ``app`` is registry.example.com/team/app:latest and ``tools/app:1`` registry.example.com/team/tools/app:1.
    A host written out always wins (``localhost:5000/app``; ``docker.io/me/app`` is Docker Hub's).
    ``display`` (-v) says when a name was completed."""
    ref = registry_reference(text)
    repo = environ.get(REPO_VARIABLE, "") if environ is not None else ""
    if not repo:
        return ref
    under = _push_repository(repo)      # checked even when unused: a wrong setting is said at once
    first, slash, _ = text.partition("/")
    if slash and _names_registry(first):
        return ref
    completed = under + "/" + text
    try:
        ref = Reference.parse(completed)
    except InvalidReferenceError as e:
        raise UsageError("%s=%s makes of %s the name %s, which is no reference: %s" % (
            REPO_VARIABLE, outside_text(repo, 200), outside_text(text, 200), outside_text(completed, 300), e)) from e
    if display is not None:
        display.debug("%s names no registry: pushed as %s (%s=%s)", text, ref, REPO_VARIABLE, outside_text(repo, 200))
    return ref


def _push_repository(value: str) -> str:
    """$ZEROIMAGE_REPO checked: a registry (``localhost:5000``, ``registry.example.com``) or a repository
    in one (``registry.example.com/team``), without tag or digest; a UsageError naming the variable."""
    said = "%s=%s" % (REPO_VARIABLE, outside_text(value if value == value.strip() else repr(value), 200))
    stripped = value.rstrip("/")
    if not stripped or stripped != stripped.strip():
        raise UsageError("%s: give a repository to push bare names under, like registry.example.com/team" % said)
    if "/" not in stripped and _names_registry(stripped) and valid_host(stripped):
        return stripped         # a registry alone: app goes to HOST/app
    try:
        ref = Reference.parse(stripped, default_tag=None)
    except InvalidReferenceError as e:
        raise UsageError("%s is not a repository to push bare names under (%s)" % (said, e)) from e
    if ref.tag or ref.digest:
        raise UsageError("%s names an image, not a repository: give it without a tag or digest (%s)" % (
            said, ref.familiar_name))
    return stripped


def repository_reference(text: str) -> Reference:
    """A repository as ``tags`` takes it: a name without tag or digest (as ``crane ls``: a tag there is
    more likely a mistake than a wish to have it ignored)."""
    if isinstance(text, str) and looks_like_path(text):
        raise UsageError("%s looks like a path; a repository in a registry is wanted here, like "
                         "registry.example.com/app" % outside_text(repr(text), 200))
    ref = registry_reference(text, default_tag=None)
    if ref.tag or ref.digest:
        raise UsageError("%s names an image, not a repository: give the repository alone (%s), without "
                         "a tag or digest" % (outside_text(text, 200), ref.familiar_name))
    return ref


def check_image_word(word: str) -> None:
    """A word that names an image to read (inspect's, digest's): the engine's image (``engine_image``),
    an archive or layout on disk, else a reference; a usage error that says neither was found."""
    if engine_image(word) is None and archive_target(word) is None:
        try:
            Reference.parse(word)
        except InvalidReferenceError as e:
            raise UsageError("%s (and there is no such archive)" % e) from e


def check_base(word: str) -> str:
    """What ``base`` may name: ``scratch``, ``docker-daemon:NAME`` (the local engine's image) or a
    registry reference; a path or skopeo's transport syntax is refused, naming the option that reads it."""
    if word == "scratch" or engine_image(word) is not None:
        return word
    said = transport_word(word)
    if said and said[1] in ("path", "reference"):
        raise UsageError("%s is skopeo's transport syntax; write `%s=%s`" % (
            word, "base_archive" if said[1] == "path" else "base", said[2]))
    if looks_like_path(word):
        raise UsageError("%s looks like a path; a base on disk is `base_archive=%s`" % (word, word))
    Reference.parse(word)
    return word


def check_base_archive(word: str) -> str:
    """What ``base_archive`` may name: PATH[:NAME]; skopeo's transport syntax (unless such a file is
    there) is refused, naming the option that reads it."""
    said = transport_word(word)
    if said and not os.path.exists(word):
        _, kind, rest = said
        if kind == "path":
            raise UsageError("%s is skopeo's transport syntax; write `base_archive=%s`" % (word, rest))
        if kind == "none" and not said[0].startswith("containers-storage"):
            raise UsageError(transport_problem(word))      # (dir:DIR is no engine's image: skopeo's own format)
        raise UsageError("%s is skopeo's transport syntax; a base %s is `base=%s`" % (
            word, "in a registry" if kind == "reference" else "from the local engine",
            rest if kind == "reference" else DAEMON_BASE + rest))
    return word


# ---- Build ----

@contextlib.contextmanager
def _session_for(session: Optional[Session], insecure: bool, environ):
    """The caller's session, or one made (and closed) for this call."""
    if session is not None:
        if insecure or environ is not None:
            raise UsageError("give insecure= and environ= to the Session, not to the call that uses it")
        yield session
        return
    with Session(environ, insecure=insecure) as own:
        yield own


# -- build --


class BuildResult(NamedTuple):
    """What a build made: the digest of what the output names (an index for several platforms),
    where it went (a path, or REF@DIGEST), and each image."""

    digest: str
    path: str
    images: List[Image]
    image_id: Optional[str] = None      # the engine's ID of the image, when loaded into one
    referrers: Sequence[Image] = ()     # what was attached to the images (--sbom's artifacts)
    name: Optional[str] = None          # the image's name in the archive, layout or engine (not when pushed)


def _build_programs(options: BuildOptions) -> Tuple[List[Tuple[Optional[Platform], str]], bool]:
    """The (platform asked for, path) of each program ``options.entrypoint`` names, and whether it
    names one plain program (a path, its platform ``options.platform`` or its ELF header's)."""
    entrypoint = options.entrypoint
    if isinstance(entrypoint, (str, os.PathLike)):
        return [(options.platform, os.fspath(entrypoint))], True
    try:
        programs = [(platform, os.fspath(path)) for platform, path in entrypoint]
    except (TypeError, ValueError):
        programs = None
    if programs is None or not all(isinstance(platform, Platform) for platform, _ in programs):
        raise UsageError("entrypoint is a program's path, or a list of (Platform, path) pairs, not %s"
                         % outside_text(repr(entrypoint), 100))
    return programs, False


def _resolve_platform(requested: Optional[Platform], elf: Optional[ElfInfo], entrypoint: str,
                      display: Display) -> Platform:
    elf_platform = elf.platform if elf else None
    if elf is None:
        if requested is None:
            display.info("%s is not an ELF binary; building for %s (set `platform` to choose)", entrypoint,
                         DEFAULT_PLATFORM)
        return requested or DEFAULT_PLATFORM
    if elf_platform is None:
        if requested is None:
            display.warning("%s is an ELF binary for unknown machine %d; building for %s (set `platform` to choose)",
                            entrypoint, elf.machine, DEFAULT_PLATFORM)
        return requested or DEFAULT_PLATFORM
    if requested is None:
        return elf_platform
    # ELF cannot tell arm/v6 from arm/v7 reliably, so compare os and architecture only.
    if (requested.os, requested.architecture) != (elf_platform.os, elf_platform.architecture):
        display.warning("`platform` %s disagrees with %s, which is an ELF binary for %s",
                        requested, entrypoint, elf_platform, fails=True)
    return requested


def _check_program_platform(platform: Platform, elf: Optional[ElfInfo], path: str, strict: bool,
                            display: Display) -> None:
    """In a multi-platform build each binary must be built for its platform (a wrong file, almost always)."""
    if elf is None or elf.platform is None:
        return
    if (elf.platform.os, elf.platform.architecture) != (platform.os, platform.architecture):
        message = "%s is an ELF binary for %s, not %s" % (path, elf.platform, platform)
        if strict:
            raise ZeroImageError(message + " (`platform_check=False` to build it anyway)")
        display.warning(message, fails=True)


def _check_entrypoint(path: str) -> None:
    input_file(path, "program", "give the program file")


def _open_entrypoint(path: str):
    _check_entrypoint(path)
    try:
        return open(path, "rb")
    except OSError as e:
        raise ZeroImageError("cannot read the program %s: %s" % (path, e.strerror or e)) from e


def check_target(target: str) -> str:
    """The path of the program in the image: absolute, normalised, not a directory."""
    normal = image_path(target)
    if not target.startswith("/") or normal == "/" or target.endswith("/") or normal != target:
        raise UsageError("the target path must be absolute and normalised, like /app, not %r" % target)
    if not _is_utf8(target):
        raise UsageError("the target path %r is not UTF-8; give `target=/NAME`" % target)
    return target


def _base_source(session: Session, base: Optional[str], base_archive: Optional[str],
                 stack: contextlib.ExitStack, layers: "_LayerMaker") -> Callable[[Platform], BaseImage]:
    """A function platform -> BaseImage for the base asked for."""
    if base_archive is not None:
        path, ref_name = _split_archive_spec(base_archive)
        layout = stack.enter_context(open_archive(path))
        return lambda platform: archive_base(layout, ref_name, platform, layers.compress, base_archive,
                                             layers.compression)
    engine = engine_image(base)
    if engine is not None:
        layout = _open_engine_export(session, engine.name, stack)
        return lambda platform: archive_base(layout, None, platform, layers.compress, base, layers.compression)
    if base not in (None, "scratch"):
        return lambda platform: registry_base(session, base, platform)
    kind = base or "minimal"
    return lambda platform: BaseImage(base_config_for(platform), [], OCI_FAMILY, platform, False, kind)


class _LayerMaker:
    """Builds the layers of one build into anonymous temporary files beside the output (same
    filesystem; gone when closed or killed), with the layer cache when the sink can tell what the
    registry already holds."""

    def __init__(self, session: Session, stack: contextlib.ExitStack, sink, compression: Compression):
        self.session, self.stack, self.sink, self.compression = session, stack, sink, compression.check()
        self.cache = session.layer_cache if sink.present is not None else None
        self._compressed = {}       # digest of an uncompressed base layer -> it compressed

    def _temporary(self):
        try:
            return self.stack.enter_context(tempfile.TemporaryFile(dir=self.sink.scratch_dir))
        except OSError as e:
            raise ZeroImageError("cannot write the layers in %s (beside the output, on its file system): %s" % (
                self.sink.scratch_dir or tempfile.gettempdir(), e.strerror or e)) from e

    def compress(self, blob: Blob) -> Blob:
        """An uncompressed base layer (from a ``docker save`` archive) compressed, once per build."""
        if blob.digest not in self._compressed:
            self._compressed[blob.digest] = compress_layer(blob, self._temporary(), self.compression,
                                                           self.session.display, self.session.cancelled)
        return self._compressed[blob.digest]

    def make(self, entries: Sequence[LayerEntry], label: str) -> LayerResult:
        """A new layer; to a registry, uploaded as it is compressed when the registry takes that."""
        tmp = self._temporary()
        growing = self.sink.stream(tmp, label)
        result = build_layer(entries, growing or tmp, self.compression, self.cache, label, self.sink.present,
                             self.session.display, self.session.cancelled)
        if growing is not None:     # not written: a layer the registry has (the cache said so)
            growing.finish(result.blob.digest if 0 < growing.size == result.blob.size else None)
        return result


def _build_images(session: Session, options: BuildOptions, programs, base_for, layers: _LayerMaker, created: str,
                  added_files: List[LayerEntry], zoneinfo: Sequence[LayerEntry] = (),
                  infos: Sequence[Optional[BuildInfo]] = ()) -> Tuple[List[Image], List[BaseImage]]:
    """One image per program (``programs``: each one's platform asked for, path and open file): its
    base for the program's platform, plus (on the minimal base) the base's own layer, plus the
    program's layer at ``options.target`` (resolved by build), in the base's media-type family unless
    ``options.media_types`` is given, with the labels each program's build info (``infos``, in the same
    order) gives. Returns the images and the bases they stand on."""
    display = session.display
    single, target, family = _build_programs(options)[1], options.target, media_type_family(options.media_types)
    checked = []
    for (wanted, path, program), info in zip(programs, list(infos) or [None] * len(programs)):
        elf = read_elf(program)         # every program checked before any layer is made
        if single:
            wanted = _resolve_platform(wanted, elf, path, display)
        else:
            _check_program_platform(wanted, elf, path, options.platform_check, display)
        checked.append((wanted, path, program, elf, _program_labels(display, path, info, options.image)))
    minimal_layer = minimal_entries = None
    images, bases = [], []
    for wanted, path, program, elf, program_labels in checked:
        image_options = options.image
        base_image = base_for(wanted)
        if family is not None:
            base_image = base_image._replace(family=family)
        if codec_named(layers.compression.codec).media_type(base_image.family) is None:
            base_image = base_image._replace(family=OCI_FAMILY)     # (zstd: OCI's, as skopeo 1.14+ and podman)
        problems = base_metadata_problems(base_image.config)
        if problems:
            for field, key, problem in problems:
                display.warning("the base's %s %s is left out of the image: %s", field, outside_text(repr(key), 100),
                                outside_text(problem, 300))
            base_image = base_image._replace(config=without_base_metadata(base_image.config, problems))
        check_family_options(base_image, options.image)
        bases.append(base_image)
        added = []
        if _on_minimal_base(options):
            if minimal_layer is None:
                minimal_entries, why = minimal_base_layer(options.ca_bundle, session.environ, display, zoneinfo)
                minimal_layer = (layers.make(minimal_entries, "minimal base"), why)
            added.append(minimal_layer)
            if image_options.user == "nonroot":       # numeric, so runAsNonRoot checks can see it
                image_options = image_options._replace(user="65532:65532")
        entries = added_files + [LayerEntry(target, "file", 0o755, source=program)]
        wanted_below = paths_to_ask(entries)
        below = _check_script(session, path, program, elf, base_image, minimal_entries, entries, image_options,
                              wanted_below)     # what it read of a local base serves here too: read once
        if below is None:
            below = base_paths(base_image, wanted_below, minimal_entries, session.cancelled)
        check_over_base(entries, below)
        entries = with_parents(entries, below)
        added.append((layers.make(entries, "%s (%s)" % (target, wanted)),
                      "zeroimage: COPY %s %s" % (os.fsencode(os.path.basename(path)).decode("utf-8", "replace"), target)))
        images.append(assemble_image(base_image, added, [target], created, image_options, program_labels))
    return images, bases


def _program_sboms(session: Session, programs, images: Sequence[Image], infos: Sequence[Optional[BuildInfo]],
                   target: str, created: str, options: ImageOptions = ImageOptions()) -> Dict[str, List[Attachment]]:
    """Each image's SBOM (``--sbom``): the SPDX document of its program, from the file's checksums
    and the build information it carries (``infos``; none, unreadable or not read: the file alone),
    with the supplier and version the user states of the image (``_user_says``)."""
    found = {}
    vendor, version = (_user_says(options, "org.opencontainers.image." + key) for key in ("vendor", "version"))
    for (_, path, program), image, info in zip(programs, images, infos):
        sha1, sha256 = hashlib.sha1(), hashlib.sha256()
        program.seek(0)
        reader = _Checked(program, session.cancelled)
        for chunk in iter(lambda: reader.read(CHUNK_SIZE), b""):
            sha1.update(chunk)
            sha256.update(chunk)
        document = spdx_document(target, {"SHA1": sha1.hexdigest(), "SHA256": sha256.hexdigest()}, info, created,
                                 supplier=vendor, version=version)
        title = re.sub(r"[\x00-\x1f\x7f]+", "-", posixpath.basename(target))    # a file name on one line
        found[image.digest] = [Attachment(SPDX_JSON, document, created, "%s.spdx.json" % title)]
    return found


def _user_says(options: ImageOptions, key: str) -> str:
    """What the user said of the image for ``key`` (``--annotation``, else ``--label``: they agree,
    ``check_image_options``): the value the image carries, as the user's wins (``image_metadata``).
    Not what the base says (a base's vendor did not make the program); "" when the user said nothing,
    or no printable line."""
    return _printable_text(" ".join(_user_metadata(options).get(key, "").split()))


def _program_build_info(display: Display, path: str, program) -> Optional[BuildInfo]:
    """The program's build info, read once for its labels and its SBOM; None (with a note under -v
    when it is there but unreadable)."""
    try:
        info = read_build_info(program)
    except ValueError as e:
        display.debug("%s: its build info is unreadable, so no labels or SBOM packages come from it: %s", path,
                      outside_text(e, 300))
        return None
    if info is None:
        display.debug("%s: no build info in it (a Go or cargo auditable binary has some)", path)
        return None
    display.debug("%s: %s", path, _build_info_line(info))
    if dict(info.settings).get("vcs.modified") == "true":
        display.info("%s was built from a modified work tree (vcs.modified=true): its revision label names "
                     "a commit without those changes", path)
    return info


def _program_labels(display: Display, path: str, info: Optional[BuildInfo], options: ImageOptions) -> Dict[str, str]:
    """The labels the program's build info gives (see image_metadata for where they go, and what
    wins over them); under -v, each one the user does not give a value of."""
    labels = build_info_labels(info) if info is not None else {}
    given = {key for key, _ in list(options.labels) + list(options.annotations)}
    for key, value in sorted(labels.items()):
        if key not in given:
            display.debug("%s: label %s=%s from its build info", path, key, outside_text(value, 200))
    return labels


def _check_output_is_not_an_input(output: str, inputs: Sequence[str]) -> None:
    """Writing over a file the build reads (``-o app app``) would replace the user's program; writing
    into a layout directory it reads would damage that layout."""
    real = os.path.realpath(output)
    for path in inputs:
        if os.path.isdir(path) and real.startswith(os.path.realpath(path).rstrip("/") + "/"):
            raise UsageError("the output %s is inside %s, which the build reads; name another with `output`" % (output, path))
    try:
        out = os.stat(output)
    except OSError:
        return
    for path in inputs:
        with contextlib.suppress(OSError):
            st = os.stat(path)
            if (st.st_dev, st.st_ino) == (out.st_dev, out.st_ino):
                raise UsageError("the output %s is %s, which the build reads; name another with `output`" % (output, path))


def _check_user_known(user: str, base: Optional[str], added_files: Sequence[LayerEntry], display: Display) -> None:
    """Warn when --user names a user or group the image's /etc/passwd or /etc/group does not list,
    as far as the build can tell (scratch, the minimal base, files it adds): the runtime will not
    find it and the container will not start. Registry and archive bases are not read for this
    (said under -v), as the interpreter check downloads no registry base."""
    if base not in ("minimal", "scratch"):
        display.debug("`user` %s: not checked against the image's /etc/passwd and /etc/group: the %s base is not "
                      "read for it", user, "archive" if base is None else base)
        return
    files = dict(MINIMAL_USERS) if base == "minimal" else {}
    for entry in added_files:
        if entry.path in ("/etc/passwd", "/etc/group") and entry.kind == "file":
            with contextlib.suppress(OSError, UnicodeDecodeError):
                with open(entry.source, "rb") as f:
                    files[entry.path] = f.read(1 << 20).decode("utf-8")
    name, _, group = user.partition(":")
    for value, path, what in ((name, "/etc/passwd", "user"), (group, "/etc/group", "group")):
        if not value or value.isdigit():
            continue
        if path not in files:
            display.warning("`user` %s: the image has no %s, so the runtime will not find the %s %r; give a "
                            "numeric id (like `user=65532:65532`)", user, path, what, value, fails=True)
        elif value not in [line.split(":", 1)[0] for line in files[path].splitlines()]:
            display.warning("`user` %s: %s in the image lists no %s %r, so the runtime will not find it; add it "
                            "or give a numeric id (like `user=65532:65532`)", user, path, what, value, fails=True)


def _image_path_variable(config: dict, options: ImageOptions) -> str:
    """The PATH the program will start with: --env's, else the base's, else Docker's default."""
    for key, value in reversed(list(options.env)):
        if key == "PATH":
            return value
    runtime = config.get("config")
    env = runtime.get("Env") if isinstance(runtime, dict) else None
    for item in reversed(env if isinstance(env, list) else []):
        if isinstance(item, str) and item.startswith("PATH="):
            return item[5:]
    return DEFAULT_PATH_ENV[5:]


def _script_needs(shebang: Tuple[str, str], path_variable: str) -> List[Tuple[str, List[str]]]:
    """What a script's ``#!`` line needs in the image: (what it is called, the paths any one of which
    gives it). ``#!/usr/bin/env X`` needs env and X in one of PATH's directories (or X itself, when it
    is a path). A relative interpreter is looked up from the working directory: not judged."""
    interpreter, argument = shebang
    if not interpreter.startswith("/"):
        return []
    needs = [(interpreter, [image_path(interpreter)])]
    if posixpath.basename(interpreter) == "env":
        words = [w for w in argument.split() if not w.startswith("-") and "=" not in w]
        if words and words[0].startswith("/"):
            needs.append((words[0], [image_path(words[0])]))
        elif words:
            directories = [d for d in path_variable.split(":") if d.startswith("/")]
            needs.append(("%s (in PATH %s)" % (words[0], path_variable),
                          [image_path(posixpath.join(d, words[0])) for d in directories]))
    return needs


def _found_in(found: Dict[str, LayerEntry], asked: Sequence[str], path: str) -> Union[bool, str]:
    """Whether the image's file system (``found``: what ``base_paths`` saw at the ``asked`` paths, with
    the new layer's entries over it) has a file at ``path``, following symlinks; when a link leads to
    a path not asked about, that path (to ask next)."""
    parts, current, hops = path.strip("/").split("/"), "/", 0
    while parts:
        candidate = posixpath.join(current, parts.pop(0))
        entry = found.get(candidate)
        if entry is None:
            return False if candidate in asked else posixpath.join(candidate, *parts)
        if entry.kind == "symlink":
            hops += 1
            if hops > 40:           # ELOOP, as the kernel counts
                return False
            parts = image_path(posixpath.join(current, entry.linkname)).strip("/").split("/") + parts
            parts, current = [p for p in parts if p], "/"
        elif parts and entry.kind != "dir":
            return False
        else:
            current = candidate
    return current != "/" and found[current].kind != "dir"


def _with_parent_paths(paths: Sequence[str]) -> set:
    """The paths and every parent of them (not the root); with a merged /usr's twin of each (/bin/sh:
    /usr/bin/sh), where a link from /bin most often leads."""
    result = set()
    for path in paths:
        twins = [path] + (["/usr" + path] if path.startswith(("/bin/", "/sbin/", "/lib")) else [])
        for twin in twins:
            while twin != "/":
                result.add(twin)
                twin = posixpath.dirname(twin)
    return result


_STATICALLY = "build it statically (Go: CGO_ENABLED=0; Rust: a musl target; C: -static)"


def _not_startable(program) -> Optional[str]:
    """Why the kernel cannot exec ``program`` (ENOEXEC, or a #! line it reads otherwise than meant),
    said for a warning; None when it can (ELF magic, or #! at byte 0 naming an interpreter, a line
    without a carriage return)."""
    program.seek(0)
    head = program.read(256)
    program.seek(0)
    if head.startswith(b"\x7fELF"):
        return None
    if head.startswith(b"#!"):
        line = head.split(b"\n", 1)[0]
        if b"\r" in line:
            return ("a script whose #! line ends in a carriage return (a Windows line end), which the kernel keeps "
                    "as part of the line (#!%s\\r), so the runtime cannot start it; save it with Unix line ends "
                    "(dos2unix)" % outside_text(os.fsdecode(line[2:].split(b"\r", 1)[0]).strip(), 200))
        if read_shebang(program) is None:
            return "a script whose #! line names no interpreter: the runtime cannot start it"
        return None
    if head.startswith(b"\xef\xbb\xbf#!"):
        return ("neither an ELF program nor a script starting with #!: it starts with a UTF-8 byte order mark (BOM) "
                "before #!, which the kernel does not read past, so the runtime cannot start it; save it without "
                "the BOM")
    if head.startswith(b"MZ"):
        return ("a Windows program (it starts with MZ), neither an ELF program nor a script starting with #!: "
                "the runtime cannot start it; build it for Linux")
    return "neither an ELF program nor a script starting with #!: the runtime cannot start it"


def _check_script(session: Session, path: str, program, elf: Optional[ElfInfo], base_image: BaseImage,
                  minimal_entries: Optional[Sequence[LayerEntry]], entries: Sequence[LayerEntry],
                  options: ImageOptions, also: Sequence[str] = ()) -> Optional[Dict[str, LayerEntry]]:
    """A program starts only where the kernel can exec it and the image has its interpreter, a
    script's (#!) or a dynamically linked ELF's (PT_INTERP), looked up the same way: warn (a warning
    that predicts failure) when it cannot be exec'd, or when the base's layers, read for those paths,
    and what the build adds lack the interpreter. A symlink is followed (the base read again for where
    it leads, at most twice more); where it still leads somewhere unread, or a base layer is
    unreadable, no guess is made (said under -v). Only local bases are read: a registry base is not
    downloaded for a warning (said under -v), as --user's check reads none.
    Returns what the base holds at the paths read, ``also`` among them (as ``base_paths``), when it
    read the base; None when it did not."""
    display = session.display
    if elf is not None:
        if not elf.interpreter:
            return None
        what = "dynamically linked (interpreter %s)" % outside_text(elf.interpreter, 200)
        if not base_image.may_have_libc:
            display.warning("%s is %s but the %s base has no libc, so it will not start; %s or use a base with a "
                            "libc", path, what, base_image.name, _STATICALLY, fails=True)
            return None
        needs = [(elf.interpreter, [image_path(elf.interpreter)])] if elf.interpreter.startswith("/") else []
        advice = "%s, or use a base that has it" % _STATICALLY
    else:
        problem = _not_startable(program)
        if problem is not None:
            display.warning("%s is %s", path, problem, fails=True)
            return None
        shebang = read_shebang(program)
        if shebang is None:
            return None
        what = "a script (#!%s%s)" % (shebang[0], " " + shebang[1] if shebang[1] else "")
        needs = _script_needs(shebang, _image_path_variable(base_image.config, options))
        advice = "use a base that has it, or `add` it"
    if not needs:
        return None
    if base_image.remote:
        display.debug("%s: not checked whether the %s base has %s: a registry base is not downloaded for a "
                      "warning", path, base_image.name, needs[0][0])
        return None
    asked = _with_parent_paths([candidate for _, candidates in needs for candidate in candidates]) | set(also)
    for _ in range(3):
        try:
            below = base_paths(base_image, sorted(asked), minimal_entries, session.cancelled)
        except CancelledError:
            raise
        except ZeroImageError as e:
            display.debug("%s: cannot tell whether the base has its interpreter: %s", path, e)
            return None
        found = dict(below)
        found.update((e.path, e) for e in with_parents(list(entries)))
        answers = [(needed, [_found_in(found, asked, candidate) for candidate in candidates])
                   for needed, candidates in needs]
        further = _with_parent_paths([a for _, seen in answers for a in seen if isinstance(a, str)]) - asked
        if not further:
            break
        asked |= further
    for needed, seen in answers:
        if seen and all(answer is False for answer in seen):
            display.warning("%s is %s but the %s base has no %s, so it will not start; %s", path, what,
                            base_image.name, outside_text(needed, 300), advice, fails=True)
            break
    return below


def _build_sink(session: Session, output: Optional[str], output_format: str, push_ref: Optional[Reference],
                load: bool = False, media_types: Optional[str] = None):
    if load:
        return EngineSink(session)
    if push_ref is not None:
        return RegistrySink(session, push_ref, keep_family=media_types is not None)
    if output_format == "oci-layout":
        return LayoutSink(session, output)
    return ArchiveSink(session, output)


def _check_build_options(options: BuildOptions) -> None:
    """What build() is asked must make sense before anything is read or written (UsageError)."""
    programs, single = _build_programs(options)
    platform, base, base_archive, push, output, output_format, media_types, load, sbom, tag = (
        options.platform, options.base, options.base_archive, options.push, options.output, options.output_format,
        options.media_types, options.load, options.sbom, options.tag)
    if media_type_family(media_types) is DOCKER_FAMILY and options.image.annotations:
        raise UsageError("`annotations`: `media_types=docker` writes Docker manifests, which have no annotations; "
                         "use `labels`, or leave out `media_types=docker`")
    if not programs:
        raise UsageError("give at least one program")
    if not single and platform is not None:
        raise UsageError("`platform` goes with one plain PROGRAM; give PLATFORM=PROGRAM for each binary instead")
    for i, (platform_i, _) in enumerate(programs):
        for platform_j, _ in programs[i + 1:]:
            if platform_i is not None and platform_j is not None and platform_i.matches(platform_j):
                raise UsageError("each platform can be given once: %s and %s are one platform" % (
                    platform_i, platform_j) if str(platform_i) != str(platform_j) else
                    "each platform can be given once: %s is given twice" % platform_i)
    if base is not None and base_archive is not None:
        raise UsageError("give `base` or `base_archive`, not both")
    if base is not None:        # (Targets reads each word as the CLI's --from, --from-archive and --push do)
        check_base(base)
    if base_archive is not None:
        check_base_archive(base_archive)
    if push is not None:        # a malformed reference is found before anything is read
        registry_reference(push)
    if push is not None and output is not None:
        raise UsageError("give `push` or `output`, not both")
    if push is not None and tag is not None and Reference.parse(tag) != Reference.parse(push).replace(digest=None):
        raise UsageError("`tag` %s: `push` %s names the pushed image (`tag` names it in an archive or the engine); "
                         "put the name in `push`" % (tag, push))
    if load and (push is not None or output is not None or output_format != "archive"):
        raise UsageError("`load` sends the image to the container engine; give it without `output`, `push` or `output_format`")
    if load and sbom:
        raise UsageError("`sbom`: a container engine keeps no referrers; write the image with `output`, or `push` it")
    if output == "-" and output_format != "archive":
        raise UsageError("`output=-` writes an archive to standard output; `output_format=oci-layout` needs `output=DIR`")
    if output_format not in ("archive", "oci-layout"):
        raise UsageError("`output_format` is archive or oci-layout")
    if output_format == "oci-layout" and output is None:
        raise UsageError("`output_format=oci-layout` needs `output=DIR`")
    if output == "":
        raise UsageError("the output path is empty")


def _program_stem(programs, single: bool, target: Optional[str], tag: Optional[str], push: Optional[str]) -> str:
    """What names the program in the image, the image and the archive when they are not given: the
    program's file name; of several (a multi-platform build), the name they share once platform words
    are removed (``common_program_name``), else the target's or the tag's last word, else
    NoCommonNameError."""
    if single:
        return os.path.basename(programs[0][1])
    paths = [path for _, path in programs]
    stem = common_program_name(paths)
    if stem is None and len(paths) == 1:
        stem = os.path.basename(os.path.normpath(paths[0]))
    if stem is None and target:
        stem = posixpath.basename(target)
    if stem is None and tag:
        stem = Reference.parse(tag).repository.rsplit("/", 1)[-1]
    if stem is None:
        raise NoCommonNameError(paths, ("target",) if push is not None else ("target", "tag"))
    return stem


# build()'s keywords before BuildOptions (BuildOptions' fields, its ``image`` as ``options``): still taken, deprecated
_OLD_BUILD_KEYWORDS = frozenset(BuildOptions._fields) - {"image"} | {"options"}


def _deprecated_build_call(entrypoint, args: tuple, keywords: dict) -> BuildOptions:
    """The BuildOptions of a call in build()'s old form, ``build(entrypoint, output, base=..., ...,
    options=ImageOptions(...))``, and one DeprecationWarning that names BuildOptions (said at the line
    that called build())."""
    fields = dict(keywords)
    unknown = sorted(set(fields) - _OLD_BUILD_KEYWORDS)
    if unknown:
        raise TypeError("build() got an unexpected keyword argument %r" % unknown[0])
    if len(args) > 1:
        raise TypeError("build() takes from 1 to 2 positional arguments but %d were given" % (1 + len(args)))
    for name, given in (("entrypoint", (entrypoint,) if entrypoint is not None else ()), ("output", args)):
        if given and name in fields:
            raise TypeError("build() got multiple values for argument %r" % name)
        if given:
            fields[name] = given[0]
    if isinstance(fields.get("options"), BuildOptions):
        raise TypeError("build(): give a BuildOptions alone, with everything in it (its _replace() changes a field)")
    if "entrypoint" not in fields:
        raise TypeError("build() missing 1 required positional argument: 'options' (a zeroimage.BuildOptions)")
    if "options" in fields:
        fields["image"] = fields.pop("options")
    warnings.warn("build(entrypoint, output, base=..., options=ImageOptions(...), ...) is deprecated: pass one "
                  "zeroimage.BuildOptions, build(BuildOptions(entrypoint, output, base=..., image=ImageOptions(...)))",
                  DeprecationWarning, stacklevel=4)
    return BuildOptions(**fields)


class _BuildPlan(NamedTuple):
    """What build() decided before reading anything: the options (the program's path in the image
    filled in), the compression, the programs, where the image goes and its name."""
    options: BuildOptions
    compression: Compression
    programs: List[Tuple[Optional[Platform], str]]
    single: bool
    push_ref: Optional[Reference]
    output: Optional[str]
    name: Reference


def _given_build_options(options, args: tuple, keywords: dict) -> BuildOptions:
    """build()'s arguments as one BuildOptions: given as one (positionally or as ``options=``), or in
    the older form of keywords (``_deprecated_build_call``)."""
    if options is None and list(keywords) == ["options"] and not args and isinstance(keywords["options"],
                                                                                   BuildOptions):
        return keywords["options"]          # build(options=BuildOptions(...))
    if not isinstance(options, BuildOptions):
        return _deprecated_build_call(options, args, keywords)
    if args or keywords:
        raise TypeError("build(): give a BuildOptions alone, with everything in it (its _replace() changes a field)")
    return options


# BuildOptions' fields that are not what their annotation says would fail deep inside build() (an
# AttributeError from a str given for a Platform): each is checked first, by this table: the field ->
# (the types it takes, what the message says it is). Paths may be os.PathLike (taken as str).
_PATH_TYPES = (str, os.PathLike)
_OPTION_TYPES = {
    "output": (_PATH_TYPES, "a path"), "base": ((str,), "a string"), "base_archive": (_PATH_TYPES, "a path"),
    "platform": ((Platform,), "a Platform (Platform.parse('linux/arm64'))"), "target": ((str,), "a string"),
    "tag": ((str,), "a string"), "push": ((str,), "a string"), "load": ((bool,), "True or False"),
    "output_format": ((str,), "a string"), "media_types": ((str,), "a string"),
    "compression": ((str, Compression), "a string or a Compression"), "ca_bundle": (_PATH_TYPES, "a path"),
    "sbom": ((bool,), "True or False"), "platform_check": ((bool,), "True or False"),
    "build_info": ((bool,), "True or False"),
}


def _checked_option_types(options: BuildOptions) -> BuildOptions:
    """``options`` with its paths as str, once each field in ``_OPTION_TYPES`` has a type it takes
    (None stands for the default, where that is None); UsageError naming the field otherwise."""
    for name, (taken, said) in _OPTION_TYPES.items():
        value = getattr(options, name)
        default = BuildOptions._field_defaults[name]
        if (value is None and default is None) or isinstance(value, taken):
            continue
        if name == "compression" and (value is None or isinstance(value, int) and not isinstance(value, bool)):
            continue        # (the default, or a gzip level, as before: Compression.of takes them)
        raise UsageError("`%s` is %s, not %s" % (name, said, outside_text(repr(value), 100)))
    return options._replace(**{name: os.fspath(getattr(options, name)) for name, (taken, _) in _OPTION_TYPES.items()
                               if taken is _PATH_TYPES and getattr(options, name) is not None})


def _build_plan(options: BuildOptions) -> _BuildPlan:
    """Every check of what build() is asked that can fail before anything is read or written, and
    what follows from it: the program's path in the image, the output, the image's name."""
    options = _checked_option_types(options)
    _check_build_options(options)
    compression = Compression.of(options.compression, options.compression_level).check()
    if media_type_family(options.media_types) is DOCKER_FAMILY and \
            codec_named(compression.codec).media_type(DOCKER_FAMILY) is None:
        raise UsageError("`compression=%s`: Docker's media types have no name for %s layers; leave out "
                         "`media_types=docker`" % (compression.codec, compression.codec))
    base, base_archive, tag, push = options.base, options.base_archive, options.tag, options.push
    _check_tzdata_option(options.tzdata, base, base_archive)
    if options.ca_bundle is not None:
        _check_minimal_base_only("ca_bundle", "the CA bundle", os.fspath(options.ca_bundle) or "FILE",
                                 IMAGE_CA_BUNDLE, base, base_archive)
    check_image_options(options.image)
    programs, single = _build_programs(options)
    for _, path in programs:        # before anything is derived from their names
        _check_entrypoint(path)
    stem = _program_stem(programs, single, options.target, tag, push)
    options = options._replace(target=check_target(options.target or "/" + stem))
    push_ref = Reference.parse(push) if push is not None else None
    output = None if push_ref or options.load else stem + ".tar" if options.output is None else options.output
    name = Reference.parse(tag) if tag else default_image_name(stem)
    if name.digest:
        raise InvalidReferenceError("`tag` %s: an image name cannot carry a digest" % tag)
    if ref_name_problem(name.tag):
        raise UsageError("`tag`: the tag %s; choose another tag" % ref_name_problem(name.tag))
    return _BuildPlan(options, compression, programs, single, push_ref, output, name)


def build(options: Optional[BuildOptions] = None, /, *deprecated_args, session: Optional[Session] = None,
          insecure: bool = False, environ=None, **deprecated_keywords) -> BuildResult:
    """Build what ``options`` (a ``BuildOptions``) asks: a program on a base, written to an OCI archive
    or layout, pushed, or sent to the local container engine. ``session`` (or, without one,
    ``insecure`` and ``environ``) as every operation takes it.

    The form before BuildOptions, ``build(entrypoint, output, base=..., options=ImageOptions(...),
    ...)`` (BuildOptions' fields as keywords, its ``image`` as ``options``), still works, with a
    DeprecationWarning.
    """
    plan = _build_plan(_given_build_options(options, deprecated_args, deprecated_keywords))
    options, programs, single, push_ref, output, name = (plan.options, plan.programs, plan.single, plan.push_ref,
                                                         plan.output, plan.name)
    base, base_archive, target, load, output_format = (options.base, options.base_archive, options.target,
                                                       options.load, options.output_format)
    with _session_for(session, insecure, environ) as session, contextlib.ExitStack() as stack:
        if push_ref is not None:        # a bare name completed by the session's ZEROIMAGE_REPO
            push_ref = push_reference(options.push, session.environ, session.display)
        created = rfc3339(created_timestamp(session.environ))
        opened = [(wanted, path, stack.enter_context(_open_entrypoint(path))) for wanted, path in programs]
        added = [("`add` %s:%s" % (source, dest), tree_entries(source, dest, session.display))
                 for source, dest in options.image.add]
        minimal = _on_minimal_base(options)
        zoneinfo = zoneinfo_entries(*zoneinfo_source(options.tzdata, session.environ), session.display) \
            if options.tzdata else []
        base_dirs = [e for e in with_parents(minimal_base_entries("ca-bundle", zoneinfo))
                     if e.kind == "dir"] if minimal else []
        check_layer_paths([("the minimal base", base_dirs)] + added + [("the program", [LayerEntry(target, "file")])])
        added_files = [entry for _, entries in added for entry in entries]
        if output and output != "-" and output_format == "archive":      # (a layout may be added to from itself)
            bundle = (options.ca_bundle or find_host_ca_bundle(session.environ)) if minimal else None
            _check_output_is_not_an_input(output, [path for _, path in programs] + [
                entry.source for entry in added_files + zoneinfo if isinstance(entry.source, str)] + [
                path for path in (bundle, base_archive and _split_archive_spec(base_archive)[0]) if path])
        if options.image.user:
            _check_user_known(options.image.user, "minimal" if minimal else base,
                              added_files, session.display)
        sink = _build_sink(session, output, output_format, push_ref, load, options.media_types)
        sink.start(stack)
        layers = _LayerMaker(session, stack, sink, plan.compression)
        base_for = _base_source(session, base, base_archive, stack, layers)
        infos = [_program_build_info(session.display, path, program) if options.build_info else None
                 for _, path, program in opened]
        images, bases = _build_images(session, options, opened, base_for, layers, created, added_files, zoneinfo,
                                      infos)
        top = images[0] if single else make_image_index(images, bases[-1].family, image_metadata(
            options.image, base_annotations=bases[-1].index_annotations, on_index=True)[1])
        attachments = _program_sboms(session, opened, images, infos, target, created, options.image) \
            if options.sbom else None
        digest = write_to_sink(sink, top, name, attachments, "the image built")
    if load:        # what the result describes is what was loaded: the image for the engine's platform
        images = [image for image in images if image.digest == digest]
    elif sink.top is not None and sink.top is not top:      # what a registry took: Docker's encoding, not OCI's
        images = tree_images(sink.top)
    return BuildResult(digest, sink.where(digest), images, sink.image_id, sink.attached,
                       None if push_ref else name.familiar())


# ---- Transfers ----

#
# pull, push and copy: one way from a source to a sink.


class Saved(NamedTuple):
    """What ``pull`` saved, ``push_archive`` pushed or ``copy`` copied: the digest of the manifest or
    index that went (the source's own, unless platforms were chosen or its encoding changed), its media
    type, the platforms in it, and where it went."""

    digest: str
    media_type: str
    platforms: List[str]
    where: str
    image_id: Optional[str] = None      # the engine's ID of the image, when loaded into one
    source_digest: Optional[str] = None     # the digest of what the source named
    name: Optional[str] = None          # the image's name in the archive or engine (not in a registry)
    referrers_left: Tuple[str, ...] = ()    # the artifact type of each referrer left behind (not asked for)


class _Read(NamedTuple):
    """A source read for a sink: the tree to write, the digest the source named, the name it had."""

    tree: Union[Image, ImageIndex]
    digest: str
    name: Optional[Reference]
    source: object = None       # a Layout, DockerArchive or RegistrySource: where referrers are asked for


def _platform_list(platform) -> Optional[List[Platform]]:
    """``platform=`` as the operations take it: None, one Platform, or several."""
    if platform is None or isinstance(platform, Platform):
        return None if platform is None else [platform]
    platforms = list(platform)
    if not all(isinstance(p, Platform) for p in platforms):
        raise UsageError("platforms are zeroimage.Platform values (Platform.parse(\"linux/arm64\"))")
    return platforms or None


def _tagged(ref: Reference) -> Reference:
    """``ref`` without its digest, by its tag, else latest: the name an image from it has in an archive."""
    return ref.replace(digest=None) if ref.tag else ref.replace(tag="latest", digest=None)


def _archive_name(ref: Reference) -> Reference:
    """``_tagged(ref)``, refused before any work when its tag cannot be written in an archive."""
    name = _tagged(ref)
    if ref_name_problem(name.tag):
        raise UsageError("cannot save %s under its tag: the tag %s; pull it by digest alone (NAME@sha256:...) to "
                         "save it as latest" % (ref.familiar(), ref_name_problem(name.tag)))
    return name


def _note_selection(session: Session, read: _Read) -> None:
    if isinstance(read.tree, ImageIndex) and read.tree.digest != read.digest:
        session.display.info("a new index of %s: its digest is %s, not the source's %s", ", ".join(
            tree_platforms(read.tree)), read.tree.digest, read.digest)


def _read_registry(session: Session, ref: Reference, platforms) -> _Read:
    """What ``ref`` names (see ``read_selection`` for ``platforms``); its layers stream when written."""
    registry = session.registry(ref.registry)
    source = RegistrySource(registry, ref.repository, str(ref), ref)
    with registry_errors("pull", ref, registry):
        desc = source.top(ref)
        read = _Read(read_selection(source, desc, str(ref), platforms), desc["digest"], _tagged(ref), source)
    return read


def _compressed_for_push(session: Session, stack: contextlib.ExitStack, layout: "DockerArchive",
                         image: Image) -> Image:
    """A ``docker save`` image as a registry takes it: uncompressed layers gzipped into temporary files."""
    if not isinstance(image, Image):        # (a manifest made from manifest.json is always one image)
        raise ArchiveError("%s: %s is not an image manifest" % (layout.path, image.digest))
    if not any(d.get("mediaType") == DOCKER_LAYER for d in image.manifest["layers"]):
        return image
    session.display.info("%s is a docker save archive with uncompressed layers: they are gzip-compressed for the "
                         "registry, so the manifest's digest is new (the config and its diff_ids stay)", layout.path)

    def compress(blob: Blob) -> Blob:
        try:
            tmp = stack.enter_context(tempfile.TemporaryFile(prefix="zeroimage-"))
        except OSError as e:
            raise ZeroImageError("cannot compress the layers in %s: %s (set TMPDIR to a directory with room)"
                                 % (tempfile.gettempdir(), e.strerror or e)) from e
        return compress_layer(blob, tmp, Compression(), session.display, session.cancelled)
    return compressed_image(image, compress)


def _read_archive(session: Session, stack: contextlib.ExitStack, spec: str, platforms,
                  before_layers: Optional[Callable[[Union[Image, ImageIndex]], None]] = None,
                  compress: bool = True) -> _Read:
    """What ``ARCHIVE[:NAME]`` holds: its one image or index (NAME picks one of several); a ``docker
    save`` image's uncompressed layers gzipped, as registries take them. ``before_layers(tree)`` runs
    once the archive's manifests and configs are read, before any layer work (``_checked_then_started``:
    a refused archive is said before any connection, a registry that is down before any gzip)."""
    path, ref_name = _split_archive_spec(spec)
    layout = stack.enter_context(open_archive(path))
    return _read_opened(session, stack, layout, ref_name, platforms, before_layers, compress)


def _read_engine(session: Session, stack: contextlib.ExitStack, engine: EngineImage, platforms,
                 before_layers: Optional[Callable[[Union[Image, ImageIndex]], None]] = None,
                 compress: bool = True) -> _Read:
    """The local engine's image (``docker-daemon:NAME``): its export (``_open_engine_export``, a
    temporary file until ``stack`` closes) read as ``_read_archive`` reads a ``docker save`` archive,
    its uncompressed layers gzipped as registries take them (unless not ``compress``); its name is NAME."""
    layout = _open_engine_export(session, engine.name, stack)
    return _read_opened(session, stack, layout, None, platforms, before_layers, compress)._replace(name=engine.ref)


def _read_opened(session: Session, stack: contextlib.ExitStack, layout: Union[Layout, DockerArchive],
                 ref_name: Optional[str], platforms,
                 before_layers: Optional[Callable[[Union[Image, ImageIndex]], None]] = None,
                 compress: bool = True) -> _Read:
    """``_read_archive``'s reading of an opened archive (``ref_name`` picks one of several images);
    ``compress``: a ``docker save`` image's layers gzipped (not for an engine, which takes them as they are)."""
    path = layout.path
    entries = layout_entries(layout, ref_name)
    if len(set(d.get("digest") for d in entries)) != 1:
        names = ", ".join(descriptor_name(d) or str(d.get("digest", "?")) for d in entries)
        raise ArchiveError("%s holds several images; name one as %s:NAME (it has: %s)"
                           % (path, path, outside_text(names, 500)))
    tree = read_selection(layout, entries[0], path, platforms)
    if isinstance(layout, DockerArchive) and isinstance(tree, Image):
        layout.check_readable(tree.manifest)
    if before_layers is not None:
        before_layers(tree)
    if isinstance(layout, DockerArchive) and compress:
        tree = _compressed_for_push(session, stack, layout, tree)
    return _Read(tree, entries[0]["digest"], _entry_name(entries[0]), layout)


def read_source(session: Session, stack: contextlib.ExitStack, text: str, platforms,
                before_layers: Optional[Callable[[Union[Image, ImageIndex]], None]] = None, *,
                compress: bool = True, note_selection: bool = True) -> _Read:
    """What a source word names, read for a sink: an archive or layout (``ARCHIVE[:NAME]``, told
    apart as ``archive_target`` does) or else a registry reference. The one place every verb that
    reads an existing image (copy, mutate, append, rebase, export, ...) turns a word into an image:
    a new kind of source is added here. ``platforms`` as ``read_selection`` takes them;
    ``before_layers`` as ``_read_archive`` runs it (for a registry it runs once the tree is read).
    ``docker-daemon:NAME`` (``engine_image``) is the local engine's image, read from its export.
    ``compress=False``: a ``docker save`` image's uncompressed layers stay so (for a sink that is an engine).
    ``note_selection``: say when ``platforms`` made a new index (``_note_selection``), whose digest
    is what goes (not for a verb that changes the images: that index is never written)."""
    engine = engine_image(text)
    if engine is not None:
        read = _read_engine(session, stack, engine, platforms, before_layers, compress)
    elif archive_target(text) is not None:
        read = _read_archive(session, stack, text, platforms, before_layers, compress)
    else:
        ref = Reference.parse(text)
        _note_on_disk(session, text, ref)
        read = _read_registry(session, ref, platforms)
        if before_layers is not None:
            before_layers(read.tree)
    if note_selection:
        _note_selection(session, read)
    return read


def _reading(read: "_Read"):
    """Registry errors said as errors reading the source, while its layers stream to a sink."""
    source = read.source
    if isinstance(source, RegistrySource) and source.ref is not None:
        return registry_errors("pull", source.ref, source.registry)
    return contextlib.nullcontext()


def _checked_then_started(sink, stack: contextlib.ExitStack, where: str, check: bool = True):
    """``before_layers`` for a sink that reaches a registry: what the archive holds is checked as it
    will be written (``check_writable``; not when a conversion comes first, which may mend it), then
    the sink started (the registry reached, a push allowed): each said before the other's work."""
    def before_layers(tree: Union[Image, ImageIndex]) -> None:
        if check:
            check_writable(tree, where)
        sink.start(stack)
    return before_layers


def _entry_name(desc: dict) -> Optional[Reference]:
    """The name an archive's entry carries, when it is a whole reference with a tag."""
    with contextlib.suppress(InvalidReferenceError):
        ref = Reference.parse(descriptor_name(desc), default_tag=None)
        if ref.tag and not ref.digest and not ref_name_problem(ref.tag):
            return ref
    return None


def read_referrers(session: Session, read: _Read, where: str) -> Dict[str, List[Image]]:
    """The artifacts that refer to each image read (and to the index itself), from where they were
    read, to be copied byte for byte; one level (what refers to those stays behind)."""
    found = {}
    for node in referable(read.tree):
        for desc in read.source.referrers(node.digest):
            if desc.get("mediaType") != OCI_MANIFEST:
                session.display.warning("%s: the referrer %s of %s is a %s, which `referrers` does not copy", where,
                                        outside_text(str(desc.get("digest")), 100), _short(node.digest),
                                        outside_text(str(desc.get("mediaType")), 100), fails=True)
                continue
            artifact = _read_artifact(read.source, desc, where)
            if artifact.manifest["subject"]["digest"] != node.digest:     # a stale entry of a referrers tag
                session.display.warning("%s: the referrer %s names %s, not %s: not copied", where, _short(desc["digest"]),
                                        _short(artifact.manifest["subject"]["digest"]), _short(node.digest))
                continue
            found.setdefault(node.digest, []).append(artifact)
    count = sum(len(artifacts) for artifacts in found.values())
    session.display.info("%s: %d referrer%s to copy", where, count, "" if count == 1 else "s")
    return found


def _referrers_left(session: Session, read: _Read, where: str) -> Tuple[str, ...]:
    """The artifact type of each referrer the source holds for what was read (the images, the index),
    when they are not copied: so that what stays behind is said. What cannot be asked is said
    under -v only, and counts as none."""
    within = set(blob.digest for blob in tree_blobs(read.tree))      # (a holder read as itself holds them)

    def ask(node) -> List[str]:
        return [outside_text(str(d.get("artifactType") or "artifact"), 100) for d in read.source.referrers(node.digest)
                if d.get("digest") not in within]
    try:
        found = session.parallel(ask, referable(read.tree))
    except CancelledError:
        raise
    except ZeroImageError as e:
        session.display.debug("%s: what refers to it could not be listed: %s", where, e)
        return ()
    return tuple(kind for kinds in found for kind in kinds)


def _read_artifact(source, desc: dict, where: str) -> Image:
    data = source.read_manifest(desc)
    manifest = manifest_object(data, "%s: referrer %s" % (where, desc["digest"]))
    layers, subject = manifest.get("layers") or [], manifest.get("subject")
    parts = (layers if isinstance(layers, list) else [None]) + [manifest.get("config")]
    if not all(isinstance(d, dict) for d in parts) or not isinstance(subject, dict) or \
            not isinstance(subject.get("digest"), str):
        raise ArchiveError("%s: referrer %s is not an artifact manifest with a config and a subject"
                           % (where, desc["digest"]))
    return Image(manifest, {}, None, [source.blob(d) for d in parts] + [_bytes_blob(desc["digest"], data)],
                 OCI_MANIFEST)


def _deliver(sink, read: _Read, name: Optional[Reference] = None, attachments: Attachments = None) -> Saved:
    """Write what was read to a started sink; what went there (a registry may have taken another encoding)."""
    where = read.source.where
    name = name or read.name
    digest = write_to_sink(sink, read.tree, name, attachments, where)
    top = sink.top or read.tree
    return Saved(digest, top.kind, tree_platforms(top), sink.where(digest), sink.image_id,
                 read.digest, None if isinstance(sink, RegistrySink) or name is None else name.familiar())


def pull(ref_text: str, output: Optional[str] = None, *, platform=None, all_platforms: bool = False,
         insecure: bool = False, load: bool = False, environ=None, session: Optional[Session] = None) -> Saved:
    """Save an image (or, with ``all_platforms``, its whole index byte for byte) to an archive
    (``"-"``: standard output), or (``load``) send it to the local container engine: by default
    the image for the engine's platform. ``platform`` is one Platform, or several: then the archive
    holds a new index of their images (``read_selection``)."""
    ref = registry_reference(ref_text)
    platforms = _platform_list(platform)
    if load and (output is not None or all_platforms or len(platforms or ()) > 1):
        raise UsageError("`load` sends one image to the container engine; give it without `output`, `all_platforms` "
                         "or a second `platform`")
    if all_platforms and platforms:
        raise UsageError("`all_platforms` saves every platform; give it without `platform`")
    output = ref.repository.rsplit("/", 1)[-1] + ".tar" if output is None and not load else output
    _archive_name(ref)
    with _session_for(session, insecure, environ) as session, contextlib.ExitStack() as stack:
        sink = EngineSink(session) if load else ArchiveSink(session, output)
        sink.start(stack)
        if load and platforms is None:
            platforms = [sink.platform()]
        read = _read_registry(session, ref, None if all_platforms else platforms or [None])
        _note_selection(session, read)
        with registry_errors("pull", ref, session.registry(ref.registry)):     # layers come as they are written
            saved = _deliver(sink, read)
        # an archive holds no referrers (an engine none at all): what stays in the registry is said
        return saved if load else saved._replace(referrers_left=_referrers_left(session, read, ref_text))


# -- push an archive --


def push_archive(spec: str, ref_text: str, *, media_types: Optional[str] = None, referrers: bool = False,
                 insecure: bool = False, environ=None, session: Optional[Session] = None) -> Saved:
    """Push what an archive holds (one image, or an index and all its children), or the local engine's
    image (``spec`` ``docker-daemon:NAME``: its export, layers gzipped), manifests byte for
    byte; with ``media_types`` ("docker" or "oci"), manifests re-encoded in that family on the way
    (``convert_family``: layer and config blobs unchanged, so only manifest digests change).
    ``referrers``: what refers to the images in the archive (``build --sbom``'s SBOMs) goes too."""
    ref = registry_reference(ref_text)
    family = media_type_family(media_types)
    engine = engine_image(spec)
    with _session_for(session, insecure, environ) as session, contextlib.ExitStack() as stack:
        sink = RegistrySink(session, ref, keep_family=family is not None)
        # the archive checked before any connection; the registry reached, and taking a push, before
        # a docker save layer is gzipped
        before_layers = _checked_then_started(sink, stack, spec, check=family is None)
        read = _read_engine(session, stack, engine, None, before_layers) if engine is not None else \
            _read_archive(session, stack, spec, None, before_layers)
        attachments = read_referrers(session, read, spec) if referrers else None
        if family is not None:
            converted = _converted(session, read.tree, family)
            attachments = {new.digest: attachments.get(old.digest, ()) for old, new in zip(
                referable(read.tree), referable(converted))} if attachments else None
            read = read._replace(tree=converted)
        saved = _deliver(sink, read, attachments=attachments)
        return saved if referrers else saved._replace(referrers_left=_referrers_left(session, read, spec))


def _converted(session: Session, tree: Union[Image, ImageIndex], family: Dict[str, str]) -> Union[Image, ImageIndex]:
    notes = []
    converted = convert_family(tree, family, notes)
    for note in notes:
        session.display.info("%s", note)
    if converted.digest != tree.digest:
        session.display.info("converted to %s media types: the manifest digest differs from the archive's",
                             _family_name(family))
    return converted


# -- copy --


def copy(src: str, dst: str, *, platforms=None, referrers: bool = False, insecure: bool = False, environ=None,
         session: Optional[Session] = None) -> Saved:
    """Copy an image or index from ``src`` to ``dst``, each a registry reference, an archive
    (``ARCHIVE[:NAME]``, told apart as ``inspect`` does: ``looks_like_path``) or the local engine's
    image (``docker-daemon:NAME``, read from its export; written by loading one image, the engine's
    platform's of an index unless ``platforms`` names one). Registry to registry,
    manifests go byte for byte (digests unchanged) and layers stream from one to the other, never to
    disk: skipped when there, mounted within one registry. ``platforms`` (one Platform or several)
    copies only their images: one is that image, several a new index of them (``read_selection``).
    A registry that refuses OCI manifests gets their Docker encoding, as ``push_archive`` does.
    ``referrers``: what refers to the images copied (and to the index), such as SBOMs and signatures,
    is copied too, byte for byte (to a registry: with the referrers tag when it has no referrers API)."""
    chosen = _platform_list(platforms)
    src_ref, target = _copy_ends(src, dst)
    to_registry, to_engine = isinstance(target, Reference), isinstance(target, EngineImage)
    if to_engine and (referrers or len(chosen or ()) > 1):
        raise UsageError("%s: a container engine takes one image and keeps no referrers; give it without %s" % (
            target, "`referrers`" if referrers else "a second `platforms`"))
    with _session_for(session, insecure, environ) as session, contextlib.ExitStack() as stack:
        if to_registry:
            _note_on_disk(session, dst, target, "write")
        sink = RegistrySink(session, target, can_convert=False) if to_registry else EngineSink(session) \
            if to_engine else ArchiveSink(session, target[0])
        started = src_ref is not None or to_engine      # (an engine is found first, for its platform)
        if started:
            sink.start(stack)
        if to_engine and chosen is None:
            chosen = [sink.platform()]
        # from an archive, as push: checked before any connection, the sink started before any layer work
        read = read_source(session, stack, src, chosen,       # (an engine takes docker save's layers as they are)
                           before_layers=None if started else _checked_then_started(sink, stack, src),
                           compress=not to_engine)
        with registry_errors("pull", src_ref, session.registry(src_ref.registry)) if src_ref else \
                contextlib.nullcontext():
            attachments = read_referrers(session, read, src) if referrers else None
        if to_registry:
            saved = _deliver(sink, read, attachments=attachments)
        else:
            name = target.ref if to_engine else \
                target[1] or read.name or default_image_name(_archive_stem(target[0]))
            with registry_errors("pull", src_ref, session.registry(src_ref.registry)) if src_ref else \
                    contextlib.nullcontext():       # layers come from the registry as they are written
                saved = _deliver(sink, read, name, attachments)
        if to_engine:       # an engine keeps no referrers: what stays behind is not listed (as pull's load)
            return saved
        return saved if referrers else saved._replace(referrers_left=_referrers_left(session, read, src))


def _copy_ends(src: str, dst: str) -> Tuple[Optional[Reference],
                                            Union[Reference, EngineImage, Tuple[str, Optional[Reference]]]]:
    """SRC's reference (None for an archive or the engine's image) and DST (``copy_destination``),
    refused before any work when they are the same: a copy onto itself does nothing, or (with
    platforms) drops the others."""
    src_engine = engine_image(src)
    src_ref = None if src_engine is not None or archive_target(src) is not None else Reference.parse(src)
    target = copy_destination(dst)
    if isinstance(target, EngineImage):
        if src_engine is not None and src_engine.ref == target.ref:
            raise UsageError("SRC and DST are both %s; name another image for the engine" % target)
    elif isinstance(target, Reference):
        if src_ref is not None and _same_tag(src_ref, target):
            raise UsageError("SRC and DST are both %s; name another destination" % target.familiar())
    elif src_engine is not None:
        if target[1] is None:
            _archive_name(src_engine.ref)
    elif src_ref is None:
        if os.path.realpath(_split_archive_spec(src)[0]) == os.path.realpath(target[0]):
            raise UsageError("SRC and DST are both %s; name another archive to write" % target[0])
    elif target[1] is None:
        _archive_name(src_ref)
    return src_ref, target


def _same_tag(src: Reference, dst: Reference) -> bool:
    """Whether a copy would write where it reads: one repository of one registry (loopback names of one
    port alike), and DST's tag SRC's (whatever digest DST carries), or the same digest alone."""
    def where(ref: Reference) -> Tuple[str, str]:
        host = registry_api_host(ref.registry)
        port = host.rsplit(":", 1)[1] if ":" in host and not host.endswith("]") else ""
        return ("loopback:" + port if _is_loopback(host) else host), ref.repository
    if where(src) != where(dst):
        return False
    return dst.tag == (src.tag or "latest") if dst.tag else dst.digest == src.digest


# -- sync: every tag of a repository --


class SyncedTag(NamedTuple):
    """What ``sync`` did with one tag: ``outcome`` is "copied" (``digest``: what went), "present" (the
    destination's tag held that digest already: nothing was read) or "failed" (``error``: the one-line
    reason, in the library's words)."""

    tag: str
    outcome: str
    digest: Optional[str] = None
    error: Optional[str] = None


class Synced(NamedTuple):
    """What ``sync`` did: the two repositories (``REGISTRY/NAME``), each tag in the source's order,
    and the entries of the source's tag list that were no tags (skipped, as printable text)."""

    source: str
    destination: str
    tags: List[SyncedTag]
    skipped: Tuple[str, ...] = ()

    @property
    def counts(self) -> Dict[str, int]:
        """How many tags were "copied", "present" and "failed"."""
        return {outcome: sum(1 for tag in self.tags if tag.outcome == outcome)
                for outcome in ("copied", "present", "failed")}

    @property
    def failed(self) -> List[SyncedTag]:
        """The tags that failed (the command line exits 1 when there is one)."""
        return [tag for tag in self.tags if tag.outcome == "failed"]


_SKIPPED_SAID = 10      # entries of a tag list that are no tags, said one by one (the rest in one line)


def sync(src: str, dst: str, *, referrers: bool = False, insecure: bool = False, environ=None,
         session: Optional[Session] = None) -> Synced:
    """Copy every tag of the repository ``src`` (``REGISTRY/NAME``, no tag or digest) to the
    repository ``dst``, as ``copy`` copies one: byte for byte (an index with every image in it, digests
    kept), layers mounted within one registry and skipped when there. The tags are listed through
    every page; a tag whose destination already names the same digest is skipped without reading
    anything else (both digests asked with HEAD). A tag that fails is said and the others go on:
    the result says what happened to each (``Synced.failed``); the command line exits 1 when any
    failed. An entry of the tag list that is no tag is skipped with a warning. ``referrers``: as
    ``copy``'s, for each tag. (``copy --all-tags`` on the command line is this.)"""
    src_ref, dst_ref = repository_reference(src), repository_reference(dst)
    if _same_tag(src_ref.replace(tag="latest"), dst_ref.replace(tag="latest")):
        raise UsageError("SRC and DST are both the repository %s; name another destination" % dst_ref.familiar())
    with _session_for(session, insecure, environ) as session, contextlib.ExitStack() as stack:
        display, skipped = session.display, []
        registry = session.registry(src_ref.registry)
        with registry_errors("list the tags of", src_ref, registry):
            tags = registry.list_tags(src_ref.repository, skipped)
        for entry in skipped[:_SKIPPED_SAID]:
            display.warning("%s: the tag list holds %s, which is not a tag: skipped", src_ref.familiar(), entry)
        if len(skipped) > _SKIPPED_SAID:
            display.warning("%s: the tag list holds %d more entries that are not tags: skipped", src_ref.familiar(),
                            len(skipped) - _SKIPPED_SAID)
        if tags:
            # the destination reached, and taking a push, once before any tag (each tag's sink is
            # the same repository: not asked again)
            RegistrySink(session, dst_ref).start(stack)
        done = []
        for tag in tags:
            done.append(_sync_tag(session, src_ref.replace(tag=tag), dst_ref.replace(tag=tag), referrers))
        synced = Synced(src_ref.name, dst_ref.name, done, tuple(skipped))
        display.info("%s", _sync_summary(synced))
        return synced


def _sync_tag(session: Session, src: Reference, dst: Reference, referrers: bool) -> SyncedTag:
    """One tag of ``sync``: skipped when the destination's tag names the source's digest already,
    else copied as ``copy`` copies it; a failure (but a cancellation) is said and returned."""
    display, tag = session.display, src.tag
    try:
        target = session.registry(dst.registry)
        with registry_errors("push", dst, target):
            try:        # with the push's token (the sink's there=): none asked for the pull alone
                there = target.head_digest(dst.repository, tag, [push_scope(dst.repository)])
            except NotFoundError:
                there = None
        if there is not None:
            with registry_errors("pull", src, session.registry(src.registry)):
                if session.registry(src.registry).head_digest(src.repository, tag) == there:
                    display.info("%s: already there", tag)
                    return SyncedTag(tag, "present", there)
        read = _read_registry(session, src, None)
        with registry_errors("pull", src, session.registry(src.registry)):
            attachments = read_referrers(session, read, str(src)) if referrers else None
        saved = _deliver(RegistrySink(session, dst, can_convert=False, there=there), read, attachments=attachments)
    except CancelledError:
        raise
    except ZeroImageError as e:
        reason = "%s%s" % (e, "; " + e.advice if e.advice else "")
        display.log(ERROR, "%s: %s", tag, reason)
        return SyncedTag(tag, "failed", error=reason)
    display.info("copied %s %s", tag, saved.digest)
    return SyncedTag(tag, "copied", saved.digest)


def _sync_summary(synced: Synced) -> str:
    """``12 tags: 9 copied, 3 already there`` (and how many failed, and were no tags)."""
    counts = synced.counts
    parts = ["%d %s" % (counts[outcome], words) for outcome, words in
             (("copied", "copied"), ("present", "already there"), ("failed", "failed")) if counts[outcome]]
    if synced.skipped:
        parts.append("%d skipped (not a tag)" % len(synced.skipped))
    return "%d tag%s%s" % (len(synced.tags), "" if len(synced.tags) == 1 else "s",
                           ": " + ", ".join(parts) if parts else "")


# ---- Filesystems ----

#
# export and inspect --files: what an image's layers make, applied in order, as one tree.


class FileEntry(NamedTuple):
    """One entry of an image's filesystem as ``export`` writes it and ``inspect --files`` lists it: its
    path (relative, as a tar member names it: ``etc/passwd``), kind ("dir", "file", "symlink",
    "hardlink", "char", "block" or "fifo"), permission bits, owner, size, mtime, and for a link its
    target (a symlink's as written; a hard link's, the path of the entry whose data it shares)."""

    path: str
    kind: str
    mode: int
    uid: int = 0
    gid: int = 0
    size: int = 0
    mtime: int = 0
    linkname: str = ""


class Exported(NamedTuple):
    """What ``export`` wrote: the digest of the image (its manifest), where (a path, or "-"), how many
    entries the tar holds, its size in bytes, and the image's platform."""

    digest: str
    where: str
    entries: int
    size: int
    platform: str = ""


# Each kind of tar member by its ustar type flag, written out (tarfile's REGTYPE is b"0", AREGTYPE
# b"\0", CONTTYPE b"7", GNUTYPE_SPARSE b"S", LNKTYPE b"1" ... FIFOTYPE b"6") so that only what reads or
# writes a tar imports tarfile; the first flag of a kind is the one written.
_TAR_KINDS = {b"0": "file", b"\0": "file", b"7": "file", b"S": "file", b"1": "hardlink", b"2": "symlink",
              b"3": "char", b"4": "block", b"5": "dir", b"6": "fifo"}
_KIND_TYPES = {kind: flag for flag, kind in reversed(list(_TAR_KINDS.items()))}


class _Entry:
    """One member of a layer as the filesystem walk keeps it: its header, never its data (memory grows
    with the number of entries, not their size). ``layer`` and ``index`` say where its data is (the
    index-th member of that layer); ``origin`` is the entry whose data (inode) it shares: itself, or
    for a hard link the entry the link leads to, followed to its end."""

    __slots__ = ("path", "kind", "mode", "uid", "gid", "size", "mtime", "linkname", "uname", "gname",
                 "devmajor", "devminor", "pax", "layer", "index", "origin")

    def __init__(self, path: str, member, kind: str, layer: int, index: int):
        self.path, self.kind, self.layer, self.index = path, kind, layer, index
        self.mode, self.uid, self.gid = member.mode & 0o7777, member.uid, member.gid
        self.size = member.size if kind == "file" else 0
        self.mtime = int(member.mtime)
        self.linkname = member.linkname if kind == "symlink" else ""
        self.uname, self.gname = member.uname, member.gname
        self.devmajor, self.devminor = member.devmajor, member.devminor
        # extended attributes (security.capability of ping, ...) go along; tarfile makes the rest again
        self.pax = {k: v for k, v in member.pax_headers.items() if k.startswith(("SCHILY.xattr.", "LIBARCHIVE.xattr."))}
        self.origin = self


class _Node:
    """A path of the filesystem the walk builds: its entry (None: a directory only implied by what is
    under it) and, for a directory, its children by name."""

    __slots__ = ("entry", "children")

    def __init__(self, entry: Optional[_Entry], children: Optional[dict]):
        self.entry, self.children = entry, children


def _find(root: _Node, path: str) -> Optional[_Node]:
    node = root
    for part in path.strip("/").split("/") if path != "/" else ():
        node = node.children.get(part) if node.children is not None else None
        if node is None:
            return None
    return node


def _read_layer_entries(tar, layer: int, root: _Node) -> Tuple[List[Tuple[str, bool]], List[_Entry]]:
    """One layer's whiteouts ((path, opaque) each) and entries, in order; a hard link is resolved
    as it is met, to what its target is at that point: an earlier entry of this layer, else what the
    layers below left (``root``). What no runtime unpacks is refused (ValueError: said naming the layer)."""
    removed, entries, here = [], [], {}
    for index, member in enumerate(tar):
        path = layer_member_path(member.name)
        parent, name = posixpath.split(path)
        if any(part.startswith(".wh..wh.") for part in parent.split("/")):
            continue        # inside AUFS's own directories (.wh..wh.plnk): never part of the filesystem
        if name == ".wh..wh..opq":
            removed.append((parent, True))
            continue
        if name.startswith(".wh..wh."):
            continue        # AUFS's own metadata, as runtimes skip it
        if name.startswith(".wh."):
            if name == ".wh.":
                raise ValueError("a whiteout that names nothing: %s" % outside_text(repr(member.name), 200))
            removed.append((posixpath.join(parent, name[4:]), False))
            continue
        kind = _TAR_KINDS.get(member.type)
        if kind is None:
            raise ValueError("%s is a tar member of type %s, which no runtime unpacks"
                             % (outside_text(repr(member.name), 200), outside_text(repr(member.type), 20)))
        if path == "/":
            if kind != "dir":
                raise ValueError("the root is a member of its own that is no directory")
            continue        # the root is the runtime's, not a member of the export
        entry = _Entry(path, member, kind, layer, index)
        if kind == "hardlink":
            target = layer_member_path(member.linkname)
            found = here.get(target) or getattr(_find(root, target), "entry", None)
            if found is None or found.kind == "dir":
                raise ValueError("the hard link %s leads to %s, which is %s before it" % (
                    outside_text(path, 200), outside_text(target, 200),
                    "a directory" if found is not None else "nothing"))
            entry.origin = found.origin
        here[path] = entry
        entries.append(entry)
    return removed, entries


def _apply_layer(root: _Node, removed: List[Tuple[str, bool]], entries: List[_Entry]) -> None:
    """A layer applied as the image spec says: its whiteouts first (they hide only what lower layers
    hold), then its entries in order (a later one replaces an earlier one at its path; a directory
    over a directory keeps what is in it; a file over a directory ends it, and a directory or file
    under a path that is no directory makes it one, as an overlay shows it)."""
    for path, opaque in removed:
        node = _find(root, path)
        if node is None:
            continue
        if opaque:
            if node.children is not None:
                node.children = {}
        else:
            _find(root, posixpath.dirname(path)).children.pop(posixpath.basename(path), None)
    for entry in entries:
        node = root
        parts = entry.path.strip("/").split("/")
        for part in parts[:-1]:
            child = node.children.get(part)
            if child is None or child.children is None:
                child = node.children[part] = _Node(None, {})
            node = child
        there = node.children.get(parts[-1])
        if entry.kind == "dir" and there is not None and there.children is not None:
            there.entry = entry
        else:
            node.children[parts[-1]] = _Node(entry, {} if entry.kind == "dir" else None)


def _walk_layers(layers: Sequence[Tuple[dict, Blob]], cancelled: Optional[threading.Event],
                 diff_ids: Sequence[Optional[str]] = ()) -> _Node:
    """The filesystem an image's layers make, applied in order (``_apply_layer``), each layer read once
    through ``layer_tar`` (its digest, and its diff_id where one is given, checked before it is applied)."""
    root = _Node(None, {})
    for number, (desc, blob) in enumerate(layers):
        diff_id = diff_ids[number] if number < len(diff_ids) else None
        with layer_tar(desc, blob, "the layer %s" % outside_text(str(desc.get("digest")), 100), cancelled,
                       diff_id) as tar:
            removed, entries = _read_layer_entries(tar, number, root)
        _apply_layer(root, removed, entries)
    return root


class _Export(NamedTuple):
    """A filesystem as ``export`` writes it: its entries sorted by path (what ``inspect --files``
    lists); those written first, with no data to read (directories, links, devices, empty files);
    those whose data a layer holds (layer -> member index -> [(entry, header)]); and last the hard
    links to those."""

    files: List[FileEntry]
    first: List[Tuple[FileEntry, Optional[_Entry]]]
    writes: Dict[int, Dict[int, List[Tuple[FileEntry, _Entry]]]]
    last: List[Tuple[FileEntry, _Entry]]


def _export_plan(root: _Node) -> _Export:
    """The filesystem ``root`` holds as entries to write. Hard links stay valid: the entries that share
    data (an ``origin``) are written once with it, at the origin's own path when it is still there
    (else at the first of them in layer order, with the origin's header and data), the others as hard
    links to that one, after it. A directory only implied by what is under it is 0755, root's."""
    found, stack = [], [("", root)]
    while stack:            # (no recursion: a hostile tree may be deep)
        path, node = stack.pop()
        if path:
            found.append((path, node))
        if node.children:
            stack.extend((posixpath.join(path, name), child)
                         for name, child in sorted(node.children.items(), reverse=True))
    holders = {}
    for path, node in found:
        entry = node.entry
        if entry is None or entry.kind == "dir":
            continue
        held = holders.get(id(entry.origin))
        if entry is entry.origin or held is None or (held[1] is not entry.origin and (
                entry.layer, entry.index) < (held[1].layer, held[1].index)):
            holders[id(entry.origin)] = (path, entry)
    plan = _Export([], [], {}, [])
    for path, node in found:
        entry = node.entry
        if entry is None:
            file = FileEntry(path, "dir", 0o755)
        elif entry.kind == "dir":
            file = FileEntry(path, "dir", entry.mode, entry.uid, entry.gid, 0, entry.mtime)
        else:
            origin = entry.origin
            holder_path, holder = holders[id(origin)]
            entry = origin
            if holder is not node.entry:
                file = FileEntry(path, "hardlink", origin.mode, origin.uid, origin.gid, 0, origin.mtime, holder_path)
                plan.last.append((file, origin))
                plan.files.append(file)
                continue
            file = FileEntry(path, origin.kind, origin.mode, origin.uid, origin.gid, origin.size, origin.mtime,
                             origin.linkname)
            if origin.size:         # read where the origin's member is
                plan.writes.setdefault(origin.layer, {}).setdefault(origin.index, []).append((file, origin))
                plan.files.append(file)
                continue
        plan.first.append((file, entry))
        plan.files.append(file)
    return plan


class _Tee:
    """A blob's stream, copied into ``spool`` as it is read (what ``export`` reads a second time)."""

    def __init__(self, stream, spool):
        self._stream, self._spool = stream, spool

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self._spool.write(data)
        return data

    def close(self) -> None:
        self._stream.close()


class _Reread:
    """A spooled blob, from its start; closing it leaves the spool open for the next reader."""

    def __init__(self, spool):
        spool.seek(0)
        self.read = spool.read

    def close(self) -> None:
        pass


class _Counted:
    """A writer that counts the bytes it passes on."""

    def __init__(self, out):
        self._out, self.size = out, 0

    def write(self, data) -> int:
        self.size += len(data)
        return self._out.write(data)


def _exported_tar_info(file: FileEntry, header: Optional[_Entry]) -> tarfile.TarInfo:
    info = tarfile.TarInfo(file.path)
    info.type = _KIND_TYPES[file.kind]
    info.mode, info.uid, info.gid, info.mtime = file.mode, file.uid, file.gid, file.mtime
    info.size, info.linkname = file.size if file.kind == "file" else 0, file.linkname
    if header is not None:
        info.uname, info.gname = header.uname, header.gname
        info.devmajor, info.devminor = header.devmajor, header.devminor
        info.pax_headers = dict(header.pax)
    return info


def _add_exported(tar, file: FileEntry, header: Optional[_Entry], data=None) -> None:
    """One entry into the exported tar; a header tarfile cannot write (a value out of every range) is
    refused naming the entry, before any byte of it is written."""
    info = _exported_tar_info(file, header)
    try:
        info.tobuf(tar.format, tar.encoding, tar.errors)
    except (ValueError, OverflowError) as e:
        raise ArchiveError("cannot export %s: its header cannot be written (%s)" % (
            outside_text(file.path, 200), outside_text(str(e), 200))) from e
    tar.addfile(info, data)


def _write_export(plan: _Export, layers: Sequence[Tuple[dict, Blob]], out, cancelled: Optional[threading.Event]) -> int:
    """The tar of ``plan``, written to ``out``: what needs no data first, then each layer that holds
    data to write read once more (only those), its members' data streamed to ``out``, then the hard
    links. Returns the bytes written."""
    counted = _Counted(_Checked(out, cancelled))
    with tarfile.open(fileobj=counted, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as tar:
        for file, header in plan.first:
            _add_exported(tar, file, header)
        for number in sorted(plan.writes):
            desc, blob = layers[number]
            wanted = plan.writes[number]
            last = max(wanted)
            with layer_tar(desc, blob, "the layer %s" % outside_text(str(desc.get("digest")), 100),
                           cancelled) as layer:
                for index, member in enumerate(layer):
                    for file, header in wanted.get(index, ()):
                        if not member.isreg() or member.size != file.size:
                            raise ValueError("it changed between two readings")
                        _add_exported(tar, file, header, layer.extractfile(member))
                    if index >= last:
                        break
        for file, header in plan.last:
            _add_exported(tar, file, header)
    return counted.size


def _image_layers(read: "_Read", target: str) -> Tuple[Image, List[Tuple[dict, Blob]]]:
    image = read.tree
    if not isinstance(image, Image):
        raise UsageError("%s is an index; name one `platform` of it" % outside_text(target, 200))
    layers = image.manifest.get("layers") or []
    return image, list(zip(layers, image.blobs[:len(layers)]))


def _diff_ids(image: Image) -> List[Optional[str]]:
    """The config's diff_id of each layer, where it is a digest this module can compute."""
    rootfs = image.config.get("rootfs")
    listed = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    return [d if isinstance(d, str) and is_digest(d) else None for d in listed] if isinstance(listed, list) else []


def image_files(target: str, *, platform: Optional[Platform] = None, insecure: bool = False, environ=None,
                session: Optional[Session] = None) -> List[FileEntry]:
    """The filesystem ``export`` writes for ``target`` (a registry reference or ``ARCHIVE[:NAME]``, read
    by ``read_source``; of an index, the image for ``platform``, default this machine's), sorted by
    path: what ``inspect --files`` lists. Every layer is read once, headers only."""
    with _session_for(session, insecure, environ) as session, contextlib.ExitStack() as stack:
        read = read_source(session, stack, target, [platform], compress=False)
        image, layers = _image_layers(read, target)
        with _reading(read):
            return _export_plan(_walk_layers(layers, session.cancelled, _diff_ids(image))).files


def export(target: str, output: str = "-", *, platform: Optional[Platform] = None, insecure: bool = False,
           environ=None, session: Optional[Session] = None) -> Exported:
    """Write the filesystem of the image ``target`` names (as ``image_files``) as one uncompressed tar to
    ``output`` (a path, written atomically; "-": standard output, never a terminal), as ``crane export``
    does: layers applied in order, whiteouts and opaque directories applied and never written, a later
    layer's entry replacing an earlier one's at its path, hard links kept valid, xattrs kept.

    How: two passes. The first reads every layer's headers (never its data) and builds the final
    tree, resolving each hard link to the member whose data it shares; the second reads again only
    the layers that hold data still visible and streams it out. Directories and what has no data come
    first (parents before children), then the files layer by layer, then the hard links, each after
    the entry it links to. crane's one reverse pass with a set of the paths seen writes a hard link
    before its target (a link to a lower layer), or to a target a higher layer replaced, which a
    runtime's tree does not have; the second pass costs a second decompression, and for a layer from
    a registry a copy of its compressed bytes in a temporary file (so nothing is downloaded twice).
    Memory grows with the number of entries, never with their size."""
    if not isinstance(output, str) or not output:
        raise UsageError("`output` is a path, or - for standard output")
    with _session_for(session, insecure, environ) as session, contextlib.ExitStack() as stack:
        if output == "-":
            if sys.stdout is None:
                raise ZeroImageError("`output=-` writes the tar to standard output, which is closed")
            if sys.stdout.isatty():
                raise UsageError("`output=-` writes the tar to standard output, which is a terminal; "
                                 "pipe it (| tar t) or redirect it (> rootfs.tar)")
            out = sys.stdout.buffer
        else:
            out = stack.enter_context(atomic_output(output))      # claimed before any work
        read = read_source(session, stack, target, [platform], compress=False)
        image, layers = _image_layers(read, target)
        first, second = [], []
        for desc, blob in layers:
            if blob.source is None:        # on this machine: read again from where it is
                first.append((desc, blob))
                second.append((desc, blob))
                continue
            try:
                spool = stack.enter_context(tempfile.TemporaryFile(prefix="zeroimage-"))
            except OSError as e:
                raise ZeroImageError("cannot export: a temporary file in %s: %s (set TMPDIR to a directory with "
                                     "room)" % (tempfile.gettempdir(), e.strerror or e)) from e
            first.append((desc, blob._replace(open=lambda blob=blob, spool=spool: _Tee(blob.open(), spool))))
            second.append((desc, blob._replace(open=lambda spool=spool: _Reread(spool), source=None)))
        with _reading(read):
            plan = _export_plan(_walk_layers(first, session.cancelled, _diff_ids(image)))
            size = _write_export(plan, second, out, session.cancelled)
        out.flush()
        platform_name = str(image.platform or Platform.from_dict(image.config) or "")
        session.display.info("exported %s: %d entr%s, %s", image.digest, len(plan.files),
                             "y" if len(plan.files) == 1 else "ies", _human_size(size))
        return Exported(image.digest, output, len(plan.files), size, platform_name)


# ---- Changes ----

#
# mutate (and append, rebase): an image that exists, or each image of an index, made into a new one.
# What is not changed is carried over as it is: layers as blobs (mounted within one registry, streamed
# from another, never unpacked), the config's other fields, the manifest's family and annotations.


def image_layers(image: Image) -> List[Tuple[dict, Blob]]:
    """An image's layers: each descriptor as its manifest lists it, with its blob."""
    return list(zip(image.manifest["layers"], image.blobs[:-2]))


def rewritten_image(image: Image, config: dict, layers: Sequence[Tuple[dict, Blob]],
                    annotations: Optional[Dict[str, str]] = None) -> Image:
    """``image`` with a new config and layers (descriptor, blob), in its own manifest family: the
    manifest's other fields (its annotations, unless ``annotations`` replaces them) kept."""
    config_blob = bytes_blob(canonical_json(config))
    manifest = dict(image.manifest, config=dict(image.manifest["config"], digest=config_blob.digest,
                                                  size=config_blob.size),
                    layers=[desc for desc, _ in layers])
    if annotations is not None:
        manifest.pop("annotations", None)
        if annotations:
            manifest["annotations"] = dict(annotations)
    return Image(manifest, config, Platform.from_dict(config) or image.platform,
                 [blob for _, blob in layers] + [config_blob, bytes_blob(canonical_json(manifest))], image.kind)


def changed_tree(top: Union[Image, ImageIndex], change: Callable[[Image], Image], where: str,
                 notes: Optional[List[str]] = None,
                 index_change: Optional[Callable[[dict], dict]] = None) -> Union[Image, ImageIndex]:
    """The same image or index with ``change`` made to each image: an index keeps its family, its
    annotations (unless ``index_change`` makes new ones of the index, once its images are changed)
    and each entry's (platform, annotations), with the new digests. An attestation or
    other artifact an index lists describes an image before the change: it is left out (said in
    ``notes``), as it would be false of the new one."""
    if isinstance(top, Image):
        if artifact_type({"mediaType": top.kind}, top.manifest) is not None:
            raise ZeroImageError("%s: %s is an artifact (%s), not an image to change" % (
                where, top.digest, outside_text(str(artifact_type({"mediaType": top.kind}, top.manifest)), 100)))
        return change(top)
    entries, children = [], []
    for desc, child in zip(index_manifests(top.index, where), top.children):
        kind = None if isinstance(child, ImageIndex) else artifact_type(desc, child.manifest)
        if is_attestation(desc) or kind is not None:
            if notes is not None:
                notes.append("left out %s: %s of the image before the change" % (
                    desc.get("digest"), "an attestation" if is_attestation(desc) else "an artifact"))
            continue
        new = changed_tree(child, change, where, notes, index_change)
        entries.append(dict(desc, mediaType=new.kind, digest=new.digest, size=new.manifest_blob.size))
        children.append(new)
    if not children:
        raise ZeroImageError("%s: index %s lists no image to change" % (where, top.digest))
    index = dict(top.index, manifests=entries)
    if index_change is not None:
        index = index_change(index)
    return ImageIndex(index, bytes_blob(canonical_json(index)), children, top.kind)


def _change_plan(push: Optional[str], output: Optional[str], load: bool, tag: Optional[str],
                 output_format: str) -> Tuple[Optional[Reference], Optional[Reference]]:
    """Where a changed image goes, checked before anything is read: exactly one of ``push``,
    ``output`` and ``load`` (an image is never changed in place unasked: ``push`` may name the tag
    it came from), and ``tag`` only where an image has a name of its own (an archive, the engine)."""
    if sum((push is not None, output is not None, bool(load))) != 1:
        raise UsageError("say where the new image goes: `push` (a reference; the one it came from is allowed), "
                         "`output` (an archive) or `load` (the container engine), one of them")
    if output_format not in ("archive", "oci-layout"):
        raise UsageError("`output_format` is archive or oci-layout, not %s" % outside_text(repr(output_format), 50))
    if output_format != "archive":      # (as build's: a layout is a directory, never a push or a load)
        if load:
            raise UsageError("`load` sends the image to the container engine; give it without `output_format`")
        if output == "-":
            raise UsageError("`output=-` writes an archive to standard output; `output_format=oci-layout` needs "
                             "`output=DIR`")
        if output is None:
            raise UsageError("`output_format=oci-layout` needs `output=DIR`")
    if push is not None and tag is not None:
        raise UsageError("`tag` names the image in an archive or the engine; with `push`, the reference names it")
    return (registry_reference(push) if push is not None else None,
            Reference.parse(tag, default_tag="latest") if tag is not None else None)


class Change(NamedTuple):
    """What ``change_image`` makes of each image (``image``) and, when given, of each index's own
    fields once its images are changed (``index``: rebase's base annotations)."""
    image: Callable[[Image], Image]
    index: Optional[Callable[[dict], dict]] = None


def change_image(target: str, make_change: Callable[..., Change], *, platforms=None,
                 push: Optional[str] = None, output: Optional[str] = None, load: bool = False,
                 tag: Optional[str] = None, output_format: str = "archive", insecure: bool = False, environ=None,
                 session: Optional[Session] = None) -> BuildResult:
    """The one way mutate, append and rebase go: read ``target`` (``read_source``: a registry
    reference, an archive or layout, ...), make a change to each of its images (``platforms``: only
    the images of those, as ``copy`` chooses them), and write the result where ``push``, ``output`` or
    ``load`` says (``_change_plan``), as build writes what it makes. The result is a BuildResult.
    ``make_change(session, stack, sink)`` gives the change (a ``Change``) once the sink is started:
    append's new layer streams to it, rebase reads its bases in the session."""
    push_ref, name = _change_plan(push, output, load, tag, output_format)
    chosen = _platform_list(platforms)
    with _session_for(session, insecure, environ) as session, contextlib.ExitStack() as stack:
        if push is not None:        # (a bare name completed under $ZEROIMAGE_REPO, as build's)
            push_ref = push_reference(push, session.environ, session.display)
        sink = _build_sink(session, output, output_format, push_ref, load)
        sink.start(stack)
        if load and chosen is None:
            chosen = [sink.platform()]
        # a docker save image's layers gzipped only for a registry, which takes no other
        read = read_source(session, stack, target, chosen, compress=push_ref is not None, note_selection=False)
        made = make_change(session, stack, sink)
        notes = []
        tree = changed_tree(read.tree, made.image, target, notes, made.index)
        for note in notes:
            session.display.info("%s", note)
        if push_ref is None:
            name = name or read.name or default_image_name(_archive_stem(output or target))
        with _reading(read):        # a registry's layers stream from it as they are written
            digest = write_to_sink(sink, tree, name, None, target)
    top = sink.top or tree
    images = [image for image in tree_images(top) if not load or image.digest == digest]
    return BuildResult(digest, sink.where(digest), images, sink.image_id, (),
                       None if push_ref is not None else name.familiar())


# -- mutate --


def mutated_config(config: dict, entrypoint: Optional[Sequence[str]], options: ImageOptions, where: str) -> dict:
    """An image's config with what ``entrypoint`` and ``options`` ask changed, as a Dockerfile's
    ``FROM image`` then ``ENTRYPOINT``, ``CMD``, ``ENV``, ``LABEL``, ``USER``, ``WORKDIR`` and ``EXPOSE``
    would: a new entrypoint (or new ``args`` to the one there) drops the inherited Cmd unless ``cmd``
    gives one. The rest stays, ``created`` and the history included (no layer is added)."""
    config = normal_base_config(config, where)
    runtime = config["config"]
    if entrypoint is not None or options.args:
        program = list(entrypoint) if entrypoint is not None else list(runtime.get("Entrypoint") or [])[:1]
        if not program:
            raise ZeroImageError("%s has no entrypoint to give `args` to; give `entrypoint` too" % where)
        runtime["Entrypoint"] = program + list(options.args)
        runtime.pop("Cmd", None)
    apply_image_options(runtime, options, image_metadata(options, runtime.get("Labels"))[0])
    return config


def _mutation(entrypoint: Optional[Sequence[str]], options: ImageOptions) -> Callable[[Image], Image]:
    def change(image: Image) -> Image:
        where = "image %s" % image.digest
        annotations = None
        if options.annotations or _user_metadata(options):
            if image.kind == DOCKER_MANIFEST:
                if options.annotations:
                    raise ZeroImageError("`annotations`: %s is a Docker-format image, and Docker manifests have no "
                                         "annotations; use `labels`" % where)
            else:
                annotations = image_metadata(options, base_annotations=_string_map(
                    image.manifest.get("annotations")))[1]
        return rewritten_image(image, mutated_config(image.config, entrypoint, options, where), image_layers(image),
                               annotations)
    return change


def mutate(target: str, options: ImageOptions = ImageOptions(), *, entrypoint: Optional[Sequence[str]] = None,
           platforms=None, push: Optional[str] = None, output: Optional[str] = None, load: bool = False,
           tag: Optional[str] = None, output_format: str = "archive", insecure: bool = False, environ=None,
           session: Optional[Session] = None) -> BuildResult:
    """Change the config of an existing image (each image of an index, or those of ``platforms``)
    without touching its layers: ``entrypoint`` (a list: the program and its fixed arguments),
    and what ``options`` (an ImageOptions) asks: ``args`` (new arguments to the entrypoint there),
    ``cmd``, ``env``, ``labels``, ``annotations`` (an OCI manifest's), ``user``, ``workdir``,
    ``expose`` (``add`` is ``append``'s). Written where ``push``, ``output`` or ``load`` says
    (``change_image``); within one registry the layers are mounted, never downloaded."""
    check_image_options(options)
    if options.add:
        raise UsageError("`add` puts files in a new layer, which `append(...)` makes; mutate changes the config only")
    if entrypoint is not None:
        if isinstance(entrypoint, str) or not isinstance(entrypoint, (list, tuple)) or not entrypoint or \
                not all(isinstance(item, str) and item for item in entrypoint):
            raise UsageError("`entrypoint` is a list of strings, the program first, not %s"
                             % outside_text(repr(entrypoint), 100))
    if entrypoint is None and options.cmd is None and not any(
            getattr(options, field) for field in ImageOptions._fields if field != "cmd"):
        raise UsageError("nothing to change: give `entrypoint`, or one of the image options")
    change = Change(_mutation(entrypoint, options))
    return change_image(target, lambda session, stack, sink: change, platforms=platforms, push=push, output=output,
                        load=load, tag=tag, output_format=output_format, insecure=insecure, environ=environ,
                        session=session)


# -- append --


def _added_entries(add, output: Optional[str]) -> Tuple[List[Tuple[str, str]], List[Tuple[str, List[LayerEntry]]]]:
    """append's ``add`` pairs (SRC, DST) read as build reads them (``tree_entries``, ``check_layer_paths``),
    before anything is reached: the pairs, and (what gave them, entries) for each."""
    if isinstance(add, (str, bytes)) or not isinstance(add, (list, tuple)) or not add:
        raise UsageError("`add` is a list of (SRC, DST) pairs, at least one, not %s" % outside_text(repr(add), 100))
    pairs = []
    for pair in add:
        if isinstance(pair, (str, bytes)) or not isinstance(pair, (list, tuple)) or len(pair) != 2 or \
                not all(isinstance(p, (str, os.PathLike)) for p in pair):
            raise UsageError("`add` is a list of (SRC, DST) pairs, not %s" % outside_text(repr(add), 100))
        pairs.append((os.fspath(pair[0]), os.fspath(pair[1])))
    check_image_options(ImageOptions(add=tuple(pairs)))
    added = [("`add` %s:%s" % (source, dest), tree_entries(source, dest)) for source, dest in pairs]
    check_layer_paths(added)
    if output and output != "-":
        _check_output_is_not_an_input(output, [entry.source for _, entries in added for entry in entries
                                               if isinstance(entry.source, str)])
    return pairs, added


def _append_history_line(add_pairs: Sequence[Tuple[str, str]]) -> str:
    """The history line of append's layer, as build's: ``zeroimage: COPY NAME DST``, one COPY per ``add``."""
    return "zeroimage: " + "; ".join("COPY %s %s" % (
        os.fsencode(os.path.basename(source.rstrip("/" + os.sep)) or source).decode("utf-8", "replace"), dest)
        for source, dest in add_pairs)


def _appending(added: Sequence[Tuple[str, List[LayerEntry]]], history_line: str):
    """``make_change`` for append: each image gets one new layer of the ``added`` entries, its parents
    as the image holds them (``base_paths`` over the image's own layers), made once for every image
    where it is the same bytes, streamed to the sink as build's is."""
    entries = [entry for _, group in added for entry in group]
    wanted = paths_to_ask(entries)

    def make_change(session: Session, stack: contextlib.ExitStack, sink) -> Change:
        layers = _LayerMaker(session, stack, sink, Compression())
        created = rfc3339(created_timestamp(session.environ))
        made = {}       # the layer's entries -> the layer made of them

        def change(image: Image) -> Image:
            where = "image %s" % image.digest
            config = normal_base_config(image.config, where)
            family, kept = _family_of(image), image_layers(image)
            if len(config["rootfs"]["diff_ids"]) != len(kept):
                raise ArchiveError("%s: its config lists %d layers but its manifest has %d" % (
                    where, len(config["rootfs"]["diff_ids"]), len(kept)))
            platform = image.platform or Platform.from_dict(config) or DEFAULT_PLATFORM
            view = BaseImage(config, kept, family, platform, True, where)
            below = base_paths(view, wanted, None, session.cancelled)
            check_over_base(entries, below)
            layer_entries = tuple(with_parents(entries, below))
            if layer_entries not in made:
                made[layer_entries] = layers.make(layer_entries, "the added files (%s)" % platform)
            layer = made[layer_entries]
            desc = descriptor(_layer_type_in(family, layer.media_type), layer.blob.digest, layer.blob.size)
            config["rootfs"]["diff_ids"].append(layer.diff_id)
            config["history"].append({"created": created, "created_by": history_line})
            config["created"] = created
            return rewritten_image(image, config, kept + [(desc, layer.blob)])
        return Change(change)
    return make_change


def append(target: str, add: Sequence[Tuple[str, str]], *, platforms=None, push: Optional[str] = None,
           output: Optional[str] = None, load: bool = False, tag: Optional[str] = None,
           output_format: str = "archive", insecure: bool = False, environ=None,
           session: Optional[Session] = None) -> BuildResult:
    """Add files and directory trees (``add``: (SRC, DST) pairs, as build's ``add``) as one new layer
    on top of an existing image, each image of an index (or those of ``platforms``). Parents the
    image already has keep its modes and owners; nothing of the image's is replaced by another kind
    (``check_over_base``). The config's diff_ids and history (a ``zeroimage: COPY ...`` line) grow by
    the layer, ``created`` is now (or ``SOURCE_DATE_EPOCH``); the rest is carried over. Written
    where ``push``, ``output`` or ``load`` says (``change_image``): the image's layers mounted
    within one registry; the new layer, the same bytes for every platform, made once."""
    pairs, added = _added_entries(add, output)
    return change_image(target, _appending(added, _append_history_line(pairs)), platforms=platforms, push=push,
                        output=output, load=load, tag=tag, output_format=output_format, insecure=insecure,
                        environ=environ, session=session)


# -- rebase --


def _base_word(word: str, what: str) -> str:
    """A base word of rebase (``what``: `new_base` or `old_base`): ``scratch``, an archive or layout
    (``ARCHIVE[:NAME]``, told apart as ``archive_target`` does) or a registry reference."""
    if not isinstance(word, str) or not word:
        raise UsageError("%s is a registry reference, an archive (ARCHIVE[:NAME]), docker-daemon:NAME or scratch, "
                         "not %s" % (what, outside_text(repr(word), 100)))
    if engine_image(word) is not None or archive_target(word) is not None:
        return word
    try:
        return check_base(word)
    except InvalidReferenceError as e:
        raise InvalidReferenceError("%s: %s" % (what, e)) from e


def _bases_of(session: Session, stack: contextlib.ExitStack, layers: "_LayerMaker"):
    """word, platform -> the BaseImage ``word`` names for ``platform`` (read once for each)."""
    sources, found = {}, {}

    def base(word: str, platform: Platform) -> BaseImage:
        if word not in sources:     # (docker-daemon:NAME first: archive_target refuses it)
            archive = engine_image(word) is None and archive_target(word) is not None
            if not archive and engine_image(word) is None and word != "scratch":
                _note_on_disk(session, word, Reference.parse(word))     # (as a SOURCE word: ./NAME is the file)
            sources[word] = _base_source(session, None if archive else word, word if archive else None, stack, layers)
        key = (word, str(platform))
        if key not in found:
            found[key] = sources[word](platform)
        return found[key]
    return base


def _base_for_image(base_for, word: str, platform: Platform, what: str, where: str) -> BaseImage:
    """``base_for(word, platform)``, a base that has no image for ``platform`` said as the base's
    lack (`platform` chooses the images to rebase, not the base's)."""
    try:
        return base_for(word, platform)
    except PlatformNotFoundError as e:
        listed = ", ".join(sorted(set(str(p) for p in e.available))) or "none"
        raise ZeroImageError("%s %s has no image for %s, the platform of %s (it has: %s); give a base that has "
                             "one (of an index, `platform` chooses the images to rebase)" % (
                                 what, outside_text(word, 200), platform, where, listed)) from e


def _recorded_base(image: Image, config: dict, where: str) -> Optional[str]:
    """The base an image records (zeroimage's build writes it: the manifest's annotations, else its
    labels, ``org.opencontainers.image.base.name`` and ``.base.digest``), as NAME@DIGEST; None if none."""
    for said in (_string_map(image.manifest.get("annotations")), _string_map(config["config"].get("Labels"))):
        name, digest = said.get(ANNOTATION_BASE_NAME), said.get(ANNOTATION_BASE_DIGEST)
        if not name or not digest:      # (a label of one alone may be the base's own, about its base)
            continue
        if digest_problem(digest):
            raise ZeroImageError("%s records its base unclearly (%s=%s, %s=%s); give its base with `old_base`" % (
                where, ANNOTATION_BASE_NAME, outside_text(repr(name), 200), ANNOTATION_BASE_DIGEST,
                outside_text(repr(digest), 100)))
        try:
            ref = Reference.parse(name)
        except InvalidReferenceError:
            raise ZeroImageError("%s records its base as %s, not a registry reference; give its base with "
                                 "`old_base`" % (where, outside_text(repr(name), 200))) from None
        return str(ref.replace(digest=digest))
    return None


def _check_prefix(image: Image, diff_ids: Sequence[str], old: BaseImage, old_diff_ids: Sequence[str],
                  where: str, hint: str) -> None:
    """The old base's layers (by digest and by diff_id) are the first of the image's: else a one-line error."""
    digests = [desc.get("digest") for desc in image.manifest["layers"]]
    if len(old.layers) > len(digests):
        raise ZeroImageError("%s has %d layers, fewer than the %d of %s: that is not its base%s" % (
            where, len(digests), len(old.layers), outside_text(old.name, 200), hint))
    for i, ((desc, _), diff_id) in enumerate(zip(old.layers, old_diff_ids)):
        if desc.get("digest") != digests[i] or diff_id != diff_ids[i]:
            raise ZeroImageError("%s is not on %s: its layer %d is %s, the base's is %s%s" % (
                where, outside_text(old.name, 200), i + 1, outside_text(str(digests[i]), 80),
                outside_text(str(desc.get("digest") if desc.get("digest") != digests[i] else diff_id), 80), hint))


def _base_metadata(said: Dict[str, str], new: BaseImage, only_there: bool = False) -> Dict[str, str]:
    """``said`` (annotations, or labels: ``only_there``, the keys it has) with the base keys as
    ``new`` gives them (none: left out)."""
    kept = {k: v for k, v in said.items() if k not in (ANNOTATION_BASE_NAME, ANNOTATION_BASE_DIGEST)}
    kept.update((k, v) for k, v in new.annotations.items() if not only_there or k in said)
    return kept


def _rebasing(new_base: str, old_base: Optional[str]):
    """``make_change`` for rebase: each image's old base's layers replaced by ``new_base``'s for its platform."""

    def make_change(session: Session, stack: contextlib.ExitStack, sink) -> Change:
        base_for = _bases_of(session, stack, _LayerMaker(session, stack, sink, Compression()))
        new_index_annotations = []

        def change(image: Image) -> Image:
            where = "image %s" % image.digest
            config = normal_base_config(image.config, where)
            diff_ids, layers = config["rootfs"]["diff_ids"], image_layers(image)
            if len(diff_ids) != len(layers):
                raise ArchiveError("%s: its config lists %d layers but its manifest has %d" % (
                    where, len(diff_ids), len(layers)))
            platform = image.platform or Platform.from_dict(config)
            if platform is None:
                raise ZeroImageError("%s names no platform, so no base can be chosen for it" % where)
            recorded = _recorded_base(image, config, where) if old_base is None else None
            if old_base is None and recorded is None:
                if _family_of(image) is DOCKER_FAMILY:      # (Docker's manifests have no annotations to record it)
                    raise ZeroImageError("%s records no base: it is a Docker-format image, whose manifest has no "
                                         "annotations to name one; give its base with `old_base`" % where)
                raise ZeroImageError("%s records no base (no %s and %s annotations, which `build(...)` writes); "
                                     "give its base with `old_base`" % (where, ANNOTATION_BASE_NAME,
                                                                        ANNOTATION_BASE_DIGEST))
            old = _base_for_image(base_for, old_base or recorded, platform, "`old_base`" if old_base else
                                  "the base it records", where)
            new = _base_for_image(base_for, new_base, platform, "`new_base`", where)
            if not new.platform.matches(platform):
                raise ZeroImageError("`new_base` %s is for %s, not %s as %s is" % (
                    outside_text(new.name, 200), new.platform, platform, where))
            old_config = normal_base_config(old.config, "the old base %s" % old.name)
            new_config = normal_base_config(new.config, "the new base %s" % new.name)
            hint = "" if old_base is not None else " (the base it records; give the one it is on with `old_base`)"
            _check_prefix(image, diff_ids, old, old_config["rootfs"]["diff_ids"], where, hint)
            rest = layers[len(old.layers):]
            family = _family_of(image)
            if family is DOCKER_FAMILY and any(str(_layer_type_in(family, desc.get("mediaType"))).startswith(
                    "application/vnd.oci.") for desc, _ in new.layers):
                raise ZeroImageError("%s is a Docker-format image, and the new base %s has layers Docker's media "
                                     "types cannot describe (zstd); give a base with gzip layers" % (
                                         where, outside_text(new.name, 200)))
            new_descs = _layers_in_family(family, [desc for desc, _ in new.layers], "the new base %s" % new.name)
            config["rootfs"]["diff_ids"] = new_config["rootfs"]["diff_ids"] + diff_ids[len(old.layers):]
            config["history"] = new_config["history"] + config["history"][len(old_config["history"]):]
            runtime = config["config"]
            labels = _string_map(runtime.get("Labels"))
            if ANNOTATION_BASE_NAME in labels or ANNOTATION_BASE_DIGEST in labels:
                runtime["Labels"] = _base_metadata(labels, new, only_there=True)
                if not runtime["Labels"]:
                    del runtime["Labels"]
            annotations = None
            if family is not DOCKER_FAMILY:
                annotations = _base_metadata(_string_map(image.manifest.get("annotations")), new)
            new_index_annotations.append(new.index_annotations)
            return rewritten_image(image, config, [(desc, blob) for desc, (_, blob) in zip(new_descs, new.layers)]
                                   + rest, annotations)

        def index_change(index: dict) -> dict:
            said = _string_map(index.get("annotations"))
            if not new_index_annotations or not (ANNOTATION_BASE_NAME in said or ANNOTATION_BASE_DIGEST in said):
                return index
            said = {k: v for k, v in said.items() if k not in (ANNOTATION_BASE_NAME, ANNOTATION_BASE_DIGEST)}
            said.update(new_index_annotations[-1])
            index = {k: v for k, v in index.items() if k != "annotations"}
            return dict(index, annotations=said) if said else index
        return Change(change, index_change)
    return make_change


def rebase(target: str, new_base: str, *, old_base: Optional[str] = None, platforms=None,
           push: Optional[str] = None, output: Optional[str] = None, load: bool = False, tag: Optional[str] = None,
           output_format: str = "archive", insecure: bool = False, environ=None,
           session: Optional[Session] = None) -> BuildResult:
    """Put an existing image (each image of an index, or those of ``platforms``) on ``new_base``
    without its program: the layers of its old base, the one its manifest records (``org.opencontainers.
    image.base.name`` and ``.base.digest``, which build writes) or ``old_base``, must be the first of
    its layers; they are replaced by the new base's for the image's platform, and the config's
    diff_ids and history follow. The image's config is kept (the new base's Env, Entrypoint... are
    not taken, as crane rebase), ``created`` too; the base annotations (and labels of those keys)
    name the new base. A base is a registry reference, an archive or layout (``ARCHIVE[:NAME]``), the
    local engine's image (``docker-daemon:NAME``), or ``scratch`` (no layers). Written where ``push``, ``output`` or ``load`` says (``change_image``):
    within one registry, the layers are mounted."""
    new_base = _base_word(new_base, "`new_base`")
    if old_base is not None:
        old_base = _base_word(old_base, "`old_base`")
    return change_image(target, _rebasing(new_base, old_base), platforms=platforms, push=push, output=output,
                        load=load, tag=tag, output_format=output_format, insecure=insecure, environ=environ,
                        session=session)


# ---- Inspection and registry verbs ----

#
# inspect, login, logout, check-auth, tags, digest, tag and delete.

# -- inspect --


def describe_image(name: str, digest: str, media_type: str, image: Image, listed: Sequence[Candidate] = (),
                   index: Optional[dict] = None, referrers: Optional[Sequence[dict]] = ()) -> dict:
    """What ``inspect --json`` prints (and the summary shows): what the name names (``digest``,
    ``media_type``; for an index, the images it lists, each with its digest and size), then the image
    shown, with its labels, exposed ports and annotations."""
    config, manifest = image.config, image.manifest
    runtime = config.get("config") if isinstance(config.get("config"), dict) else {}
    layers = [{"digest": d.get("digest"), "size": d.get("size", 0), "mediaType": d.get("mediaType", "")}
              for d in manifest.get("layers") or [] if isinstance(d, dict)]
    manifests = [{"platform": str(c.platform), "digest": c.descriptor["digest"], "size": c.descriptor["size"],
                  "mediaType": c.descriptor.get("mediaType") or ""} for c in listed if c.problem is None]
    ports = runtime.get("ExposedPorts")
    platform = str(Platform.from_dict(config) or "unknown")
    return {"name": name, "digest": digest, "mediaType": media_type,
            "platforms": list(dict.fromkeys(m["platform"] for m in manifests)) or [platform],
            "manifests": manifests, "platform": platform, "manifest": image.digest,
            "created": config.get("created", ""),
            "size": sum(d["size"] for d in layers if isinstance(d["size"], int)), "layers": layers,
            "entrypoint": runtime.get("Entrypoint"), "cmd": runtime.get("Cmd"), "env": runtime.get("Env") or [],
            "user": runtime.get("User") or "", "workdir": runtime.get("WorkingDir") or "",
            "labels": _string_map(runtime.get("Labels")),
            "exposedPorts": sorted(k for k in ports if isinstance(k, str)) if isinstance(ports, dict) else [],
            "annotations": _string_map(manifest.get("annotations")),
            "indexAnnotations": _string_map((index or {}).get("annotations")),
            "referrers": None if referrers is None else [
                {"artifactType": d.get("artifactType") or "", "digest": d.get("digest"), "size": d.get("size"),
                 "mediaType": d.get("mediaType") or ""} for d in referrers if isinstance(d, dict)]}


def _map_lines(label: str, values: Dict[str, str]) -> List[str]:
    return ["%s:" % label] + ["  %s=%s" % (outside_text(k, 200), outside_text(v, 1000))
                              for k, v in sorted(values.items())] if values else []


def _describe(info: dict) -> str:
    """The summary ``inspect`` prints; every value from the image made printable (no escapes reach the terminal)."""
    info = {k: outside_text(v, 1000) if isinstance(v, str) else v for k, v in info.items()}
    info["platforms"] = [outside_text(p, 100) for p in info["platforms"]]
    lines = ["Name:        %s" % info["name"], "Digest:      %s" % info["digest"],
             "Media type:  %s" % info["mediaType"]]
    if info["manifests"]:
        lines.append("Platforms:   %s" % ", ".join(info["platforms"]))
        width = max(len(outside_text(m["platform"], 100)) for m in info["manifests"])
        for m in info["manifests"]:
            lines.append("  %-*s  %s  %10s  %s" % (width, outside_text(m["platform"], 100), outside_text(m["digest"], 200),
                                                  _human_size(m["size"]), outside_text(m["mediaType"], 200)))
    lines += _map_lines("Index annotations", info["indexAnnotations"])
    lines.append("Platform:    %s" % info["platform"])
    if info["manifest"] != info["digest"]:
        lines.append("Manifest:    %s" % info["manifest"])
    lines.append("Created:     %s" % info["created"])
    lines.append("Layers:      %d (%s)" % (len(info["layers"]), _human_size(info["size"])))
    for d in info["layers"]:
        lines.append("  %s  %10s  %s" % (outside_text(d["digest"], 200),
                                         _human_size(d["size"]) if isinstance(d["size"], int) else "?",
                                         outside_text(d["mediaType"], 200)))
    for key in ("entrypoint", "cmd", "env", "user", "workdir"):
        value = info[key]
        if value:
            label = {"workdir": "WorkingDir", "cmd": "Cmd", "env": "Env"}.get(key, key.capitalize()) + ":"
            lines.append("%-12s %s" % (label, json.dumps(value) if isinstance(value, list) else value))
    if info["exposedPorts"]:
        lines.append("Ports:       %s" % ", ".join(outside_text(p, 100) for p in info["exposedPorts"]))
    lines += _map_lines("Labels", info["labels"]) + _map_lines("Annotations", info["annotations"])
    lines += _build_info_lines(info.get("buildInfo"))
    if info.get("buildInfoUnread") and _program_path(info):
        lines.append(_build_info_unread(info))
    if info["referrers"] is None:
        lines.append("Referrers:   unknown (%s)" % outside_text(info.get("referrersUnknown", ""), 300))
    elif info["referrers"]:
        lines.append("Referrers:")
        for d in info["referrers"]:
            lines.append("  %s  %s  %10s" % (outside_text(d["artifactType"] or d["mediaType"], 200),
                                            outside_text(str(d["digest"]), 200),
                                            _human_size(d["size"]) if isinstance(d["size"], int) else "?"))
    return "\n".join(lines)


# -- the build info of an image's program, read from its layers --

_MAX_LINK_HOPS = 8


def _module_json(module: Optional[Module], full: bool = True) -> Optional[dict]:
    if module is None:
        return None
    value = {"path": module.path, "version": module.version, "sum": module.sum}
    if full:
        value.update(replace=_module_json(module.replace, False), source=module.source, kind=module.kind)
    return value


def build_info_json(info: BuildInfo) -> dict:
    """A BuildInfo as ``inspect --json`` shows it: language, toolchain, path, main, deps, settings."""
    return {"language": info.language, "toolchain": info.toolchain, "path": info.path,
            "main": _module_json(info.main, False), "deps": [_module_json(m) for m in info.deps],
            "settings": dict(info.settings)}


def _build_info_lines(value: Optional[dict]) -> List[str]:
    """The summary's "Build info:" block, from ``build_info_json``'s value."""
    if not value:
        return []
    module, shown = value["main"], lambda text: outside_text(text, 300)
    lines = ["Build info:  %s" % ("Go " + shown(value["toolchain"]) if value["language"] == "go"
                                  else "Rust (cargo auditable)")]
    if value["path"]:
        lines.append("  Package:   %s" % shown(value["path"]))
    if module:
        lines.append(("  %-10s %s %s" % ("Module:" if value["language"] == "go" else "Crate:", shown(module["path"]),
                                         shown(module["version"]))).rstrip())
    build = sum(1 for dep in value["deps"] if dep.get("kind") == "build")
    lines.append("  Deps:      %d%s" % (len(value["deps"]), " (%d of them build dependencies)" % build if build else ""))
    # each setting as the binary says it, in its order: whole, on its own line (control characters escaped)
    lines += ["  Build:     %s=%s" % (_printable_text(k), _printable_text(v)) for k, v in value["settings"].items()]
    return lines


# ``inspect --json``'s ``buildInfoUnread`` when the layers were not read for it (``build_info`` False)
BUILD_INFO_NOT_ASKED = "not asked"
# the summary's line then (the CLI words the options as its flags); whoever reads the layers finds it
_BUILD_INFO_UNREAD = "Build info:  not read (`build_info=True` reads the program from its layer"


def _program_path(info: dict) -> str:
    """The program ``describe_image``'s value names (Entrypoint[0]) when an absolute path, else ""."""
    entrypoint = info.get("entrypoint")
    program = entrypoint[0] if isinstance(entrypoint, list) and entrypoint and isinstance(entrypoint[0], str) else ""
    return program if program.startswith("/") else ""


def _build_info_unread(info: dict) -> str:
    """The summary's one line when the layers were not read for build info: how to read them, and,
    when an SPDX SBOM refers to the image, that it lists what the program is built from (it carries no
    build settings and loses a "(devel)" version, so it is pointed to, not shown as build info)."""
    sbom = any(d.get("artifactType") == SPDX_JSON for d in info.get("referrers") or [])
    return _BUILD_INFO_UNREAD + ("; its SBOM lists what it is built from: `mode=sbom`)" if sbom else ")")


def _image_build_info(session: Session, image: Image) -> Optional[dict]:
    """The build info of the image's program (its Entrypoint[0]), found in its layers and streamed
    into a temporary file; None, with a note under -v, when there is none or it cannot be read."""
    runtime = image.config.get("config") if isinstance(image.config.get("config"), dict) else {}
    program = _program_path({"entrypoint": runtime.get("Entrypoint")})
    if not program:
        session.display.debug("no build info shown: the image's Entrypoint names no absolute path")
        return None
    shown = outside_text(program, 200)
    try:
        with tempfile.TemporaryFile(prefix="zeroimage-") as tmp:
            if not _extract_program(image, program, tmp, session.cancelled):
                session.display.debug("no build info shown: %s is not a file in the image's layers", shown)
                return None
            info = read_build_info(tmp)
    except CancelledError:
        raise
    except (ZeroImageError, ValueError, OSError, EOFError, zlib.error, tarfile.TarError) as e:
        session.display.debug("no build info shown: %s: %s", shown, outside_text(e, 300))
        return None
    if info is None:
        session.display.debug("no build info shown: %s carries none", shown)
        return None
    return build_info_json(info)


def _extract_program(image: Image, path: str, out, cancelled: Optional[threading.Event]) -> bool:
    """Copy the regular file at ``path`` in the image (top layer first; whiteouts respected; links
    followed a few times) into ``out``; False when the image has none there."""
    layers = list(zip(image.manifest.get("layers") or [], image.blobs[:-2]))
    path = image_path(path)
    fetched = 0
    for _ in range(_MAX_LINK_HOPS):
        found = False
        for desc, blob in reversed(layers):
            if blob.source is not None:     # from a registry: inspect downloads only so much to look
                fetched += blob.size
                if fetched > MAX_INSPECT_DOWNLOAD:
                    raise ZeroImageError("finding it would download over %s of layers; pull the image and "
                                         "inspect the archive" % _human_size(MAX_INSPECT_DOWNLOAD))
            found = _program_in_layer(desc, blob, path, out, cancelled)
            if found is not None:
                break
        if not isinstance(found, str):
            return bool(found)
        path = found
    return False


def _program_in_layer(desc, blob: Blob, path: str, out, cancelled: Optional[threading.Event]):
    """What one layer says of ``path``: None (nothing), False (removed, or not a file), True (the
    file, copied into ``out``) or the path a link leads to. The layer is read to its end, so its
    digest is checked before ``out`` is used."""
    with layer_tar(desc, blob, "the layer %s" % outside_text(str(desc.get("digest")), 100), cancelled) as tar:
        return _scan_for_program(tar, path, out)


def _scan_for_program(tar, path: str, out):
    found = None
    for member in tar:
        name = image_path(member.name)
        if name == path:
            if member.isfile():
                out.seek(0)
                out.truncate()
                copy_stream(tar.extractfile(member), out, member.size)
                return True
            if member.issym() or member.islnk():
                return image_path(posixpath.join(posixpath.dirname(path) if member.issym() else "/",
                                                 member.linkname))
            return False
        if path.startswith(name + "/") and not member.isdir():      # through a link, or under a file
            return _through(member, name, path)
        base, parent = posixpath.basename(name), posixpath.dirname(name)
        gone = parent if base == ".wh..wh..opq" else posixpath.join(parent, base[4:])
        if base.startswith(".wh.") and (path == gone or path.startswith(gone.rstrip("/") + "/")):
            found = False   # lower layers' file is gone, unless this layer has its own
    return found


def _through(member, name: str, path: str):
    if not member.issym():
        return False
    return image_path(posixpath.join(posixpath.dirname(name), member.linkname) + path[len(name):])


def _check_build_info(build_info, mode: str) -> None:
    """``inspect``'s ``build_info``: True or False, and True only where build info is shown."""
    if not isinstance(build_info, bool):
        raise UsageError("`build_info` is True or False, not %s" % outside_text(repr(build_info), 50))
    if build_info and mode not in ("summary", "json"):
        raise UsageError("`build_info=True` adds build info to a summary or JSON; %s shows none" % (
            {"raw": "a raw manifest", "config": "a config", "sbom": "an SBOM", "files": "a file list"}.get(
                mode, "mode %s" % outside_text(mode, 50))))


def inspect(target: str, *, platform: Optional[Platform] = None, mode: str = "summary", build_info: bool = False,
            insecure: bool = False, environ=None, session: Optional[Session] = None) -> str:
    """A summary of an image (``mode`` "summary", or "json"), its raw manifest ("raw") or its config
    ("config"), from an archive or layout (``PATH[:NAME]``, when ``target`` looks like a path: see
    ``PATH_RULE``) or else a registry. Both are shown alike: what the name names (an image, or an
    index with the images it lists), then the image for ``platform``; "raw" of an index is the index.
    ``docker-daemon:NAME`` is the local engine's image, shown from its export (the manifest made of
    it, as for ``docker save`` archives: layers uncompressed), named docker-daemon:NAME.

    A summary reads the manifest, the config and the referrers, never a layer: ``build_info`` (any
    source alike) also reads the program (Entrypoint[0]) out of the layers for its build info (from a
    registry, up to MAX_INSPECT_DOWNLOAD of them). Without it, ``buildInfo`` is None and
    ``buildInfoUnread`` is BUILD_INFO_NOT_ASKED."""
    _check_build_info(build_info, mode)
    engine = engine_image(target)
    archive = archive_target(target) if engine is None else None
    with _session_for(session, insecure, environ) as session:
        if engine is not None:
            with contextlib.ExitStack() as stack:
                layout = _open_engine_export(session, engine.name, stack)
                return _inspect_layout(layout, None, platform, mode, session, str(engine), build_info)
        if archive is not None:
            with open_archive(archive[0]) as layout:
                return _inspect_layout(layout, archive[1], platform, mode, session, build_info=build_info)
        ref = Reference.parse(target)
        _note_on_disk(session, target, ref)
        source = RegistrySource(session.registry(ref.registry), ref.repository, str(ref))
        with registry_errors("inspect", ref, source.registry):
            return _inspect_top(source, source.top(ref), str(ref), str(ref), platform, mode, session, build_info)


def _inspect_layout(layout: Union[Layout, DockerArchive], name: Optional[str], platform: Optional[Platform], mode: str,
                    session: Optional[Session] = None, shown: Optional[str] = None, build_info: bool = False) -> str:
    """inspect of an archive's image (``name``, else its one image, else the one for ``platform``);
    ``shown``: the name to show, instead of the entry's (the engine's image: docker-daemon:NAME)."""
    entries = layout_entries(layout, name)
    if len(set(d.get("digest") for d in entries)) == 1:
        return _inspect_top(layout, entries[0], shown or descriptor_name(entries[0]) or layout.path, layout.path,
                            platform, mode, session, build_info)
    # several images, none named: the one for the platform, among all index.json lists
    candidates = walk_index(make_index(OCI_FAMILY, entries), layout, layout.path)
    chosen = choose_image(candidates, platform, None, layout.path)
    image = read_image(layout, chosen, layout.path, layers_needed=False)
    return _inspect_output(mode, chosen.ref_name or layout.path, image.digest, image.kind, image, candidates,
                           source=layout, session=session, build_info=build_info)


def _inspect_top(source, top: dict, name: str, where: str, platform: Optional[Platform], mode: str,
                 session: Optional[Session] = None, build_info: bool = False) -> str:
    """inspect of what one descriptor names (from a layout's index.json or a registry's tag)."""
    digest, _ = check_descriptor(top, where)
    data = source.read_manifest(top)
    value = manifest_object(data, "%s: manifest %s" % (where, digest))
    media_type = value.get("mediaType") or top.get("mediaType") or (OCI_INDEX if "manifests" in value else OCI_MANIFEST)
    if not isinstance(media_type, str):
        raise ArchiveError("%s: manifest %s has a media type that is not a string" % (where, digest))
    is_index = media_type in INDEX_TYPES
    if is_index and mode == "raw" and platform is None:
        return data.decode("utf-8", "replace")
    candidates = walk_index(make_index(OCI_FAMILY, [top]), source, where)
    image = read_image(source, choose_image(candidates, platform, None, where), where, layers_needed=False)
    return _inspect_output(mode, name, digest, media_type, image, candidates if is_index else (),
                           value if is_index else None, source, session, build_info)


def _inspect_output(mode: str, name: str, digest: str, media_type: str, image: Image,
                    listed: Sequence[Candidate] = (), index: Optional[dict] = None, source=None,
                    session: Optional[Session] = None, build_info: bool = False) -> str:
    if mode in ("raw", "config"):
        blob = image.manifest_blob if mode == "raw" else image.blobs[-2]
        with contextlib.closing(blob.open()) as f:
            return f.read().decode("utf-8", "replace")
    if mode == "sbom":
        return attached_document(source, image, source.referrers(image.digest), SPDX_JSON, name)
    try:
        referrers = source.referrers(image.digest)
    except (RegistryError, ArchiveError) as e:      # the image is shown all the same
        referrers = None
        unknown = str(e)
    info = describe_image(name, digest, media_type, image, listed, index, referrers)
    if referrers is None:
        info["referrersUnknown"] = unknown
    info["buildInfo"] = _image_build_info(session, image) if build_info and session is not None else None
    if not build_info:          # the layers are read only when asked: a manifest, a config, the referrers
        info["buildInfoUnread"] = BUILD_INFO_NOT_ASKED
    return canonical_json(info).decode("utf-8") if mode == "json" else _describe(info)


def attached_document(source, image: Image, referrers: Sequence[dict], artifact_type: str, name: str) -> str:
    """The document of the artifact of ``artifact_type`` attached to ``image`` last (an SBOM): the
    latest ``created`` annotation, among equals the last listed; read and verified. An error when
    none is."""
    where = "%s (%s)" % (name, image.digest)
    candidates = [d for d in referrers if isinstance(d, dict) and d.get("artifactType") == artifact_type]
    candidates.sort(key=lambda d: str(_annotations(d).get(ANNOTATION_CREATED, "")))     # stable: ties keep the order
    for desc in reversed(candidates):
        manifest = manifest_object(source.read_manifest(desc), "%s: artifact %s" % (where, desc.get("digest")))
        subject = manifest.get("subject") if isinstance(manifest.get("subject"), dict) else {}
        layers = [d for d in manifest.get("layers") or [] if isinstance(d, dict) and d.get("mediaType") == artifact_type]
        if subject.get("digest") != image.digest or not layers:
            continue        # a stale or foreign entry of a referrers tag
        blob = source.blob(layers[0])
        if blob.size > MAX_ATTACHED_SIZE:
            raise ZeroImageError("%s: the %s is %s, over the %s zeroimage prints" % (
                where, artifact_type, _human_size(blob.size), _human_size(MAX_ATTACHED_SIZE)))
        with contextlib.closing(blob.open()) as f:
            return f.read().decode("utf-8", "replace")
    raise ZeroImageError("%s has no %s attached; build it with `sbom` (copy and push take referrers along "
                         "with `referrers`)" % (where, artifact_type))


# -- login, logout, check-auth --


def login(registry_text: str, username: str, password: str, *, insecure: bool = False, environ=None,
          session: Optional[Session] = None) -> str:
    """Check the credentials against the registry, then store them; returns where they were stored."""
    host = registry_host(registry_text)
    if not (_is_utf8(username) and _is_utf8(password)):
        raise UsageError("the username and password must be UTF-8 text")
    if ":" in username:
        raise UsageError("a username cannot hold ':' (HTTP Basic auth and config.json put one between it and "
                         "the password)")
    creds = Credentials(username, password)
    with _session_for(session, insecure, environ) as session:
        try:
            if not session.registry(host, creds).auth.verify():
                session.display.warning("%s does not ask for credentials; storing them anyway", host)
        except _NotSent as e:
            raise e.restated("login to %s failed: %s; nothing was stored" % (host, e.detail)) from e
        except AuthenticationError as e:
            raise e.restated("login to %s failed: wrong username or password; nothing was stored" % host) from e
        return store_credentials(host, creds, session.environ)


def logout(registry_text: str, environ=None, *, session: Optional[Session] = None) -> bool:
    """Forget a registry's credentials; False when there were none."""
    with _session_for(session, False, environ) as session:
        return erase_credentials(registry_host(registry_text), session.environ)


def check_auth(ref_text: str, *, push: bool = False, insecure: bool = False, environ=None,
               session: Optional[Session] = None) -> Dict[str, bool]:
    """Whether the current credentials may pull (and push) a repository, changing nothing visible.

    The push check opens an upload session and cancels it.
    """
    ref = registry_reference(ref_text)
    result = {}
    with _session_for(session, insecure, environ) as session:
        registry = session.registry(ref.registry)
        try:
            registry.manifest_exists(ref.repository, ref.digest or ref.tag)     # 404 still means "allowed"
            result["pull"] = True
        except AuthenticationError:
            result["pull"] = False
        if push:
            try:
                registry.check_push(ref.repository)
                result["push"] = True
            except AuthenticationError:
                result["push"] = False
    return result


def list_tags(repository: str, *, insecure: bool = False, environ=None,
              session: Optional[Session] = None) -> List[str]:
    """Every tag of a repository (``REGISTRY/NAME``, no tag or digest), in the registry's order,
    all pages of it."""
    ref = repository_reference(repository)
    with _session_for(session, insecure, environ) as session:
        registry = session.registry(ref.registry)
        with registry_errors("list the tags of", ref, registry):
            return registry.list_tags(ref.repository)


def _served_digest(registry: Registry, ref: Reference) -> str:
    """The digest of the manifest a reference names, as the registry serves it (``head_digest``: HEAD's
    Docker-Content-Digest, else the GET manifest's own, verified). A digest reference is checked to be
    there, and stays as it was given."""
    answered = registry.head_digest(ref.repository, ref.digest or ref.tag)
    return ref.digest or answered


def _platform_digest(source, top: dict, platform: Platform, where: str) -> str:
    """The digest of the image for ``platform`` that ``top`` (an index, or one image) holds, as the
    index lists it."""
    candidates = walk_index(make_index(OCI_FAMILY, [top]), source, where)
    return choose_image(candidates, platform, None, where).descriptor["digest"]


def _archive_digest(layout: Union[Layout, DockerArchive], name: Optional[str], platform: Optional[Platform]) -> str:
    entries = layout_entries(layout, name)
    if platform is not None:
        candidates = walk_index(make_index(OCI_FAMILY, entries), layout, layout.path)
        return choose_image(candidates, platform, None, layout.path).descriptor["digest"]
    if len(set(d.get("digest") for d in entries)) != 1:
        names = ", ".join(descriptor_name(d) or str(d.get("digest", "?")) for d in entries)
        raise ArchiveError("%s holds several images; name one as %s:NAME, or pick one with `platform` (it has: %s)"
                           % (layout.path, layout.path, outside_text(names, 500)))
    layout.read_small_blob(entries[0])      # there, and its bytes match the digest
    return check_descriptor(entries[0], layout.path)[0]


def resolve_digest(target: str, *, platform: Optional[Platform] = None, insecure: bool = False, environ=None,
                   session: Optional[Session] = None) -> str:
    """The digest of the manifest or index ``target`` names: a registry reference (as the registry
    serves it), or an archive or layout (``PATH[:NAME]`` when ``target`` looks like a path, as
    ``inspect`` reads them), or the local engine's image (``docker-daemon:NAME``: of its export, as
    ``inspect`` shows it). With ``platform``: the digest of that platform's image in the index."""
    platform = Platform.parse(platform) if isinstance(platform, str) else platform
    engine = engine_image(target)
    archive = archive_target(target) if engine is None else None
    with _session_for(session, insecure, environ) as session:
        if engine is not None:
            with contextlib.ExitStack() as stack:
                return _archive_digest(_open_engine_export(session, engine.name, stack), None, platform)
        if archive is not None:
            with open_archive(archive[0]) as layout:
                return _archive_digest(layout, archive[1], platform)
        ref = Reference.parse(target)
        _note_on_disk(session, target, ref)
        registry = session.registry(ref.registry)
        with registry_errors("get the digest of", ref, registry):
            if platform is None:
                return _served_digest(registry, ref)
            source = RegistrySource(registry, ref.repository, str(ref))
            return _platform_digest(source, source.top(ref), platform, str(ref))


def tag_problem(tag) -> Optional[str]:
    """Why ``tag`` is not a tag (Docker's grammar: letters, digits, _ . -, not starting with . or -,
    at most 128), or None."""
    if isinstance(tag, str) and _TAG_RE.fullmatch(tag):
        return None
    return "%s is not a tag (letters, digits, _ . and -, not starting with . or -, at most 128; a tag only: " \
           "the image stays in its repository)" % outside_text(repr(tag), 150)


def tag_image(ref_text: str, tags: Sequence[str], *, insecure: bool = False, environ=None,
              session: Optional[Session] = None) -> List[str]:
    """Put the manifest (or index) ``ref_text`` names under more ``tags`` of its repository: the same
    bytes and media type, so the same digest, and nothing else is uploaded. Returns
    ``REGISTRY/NAME:TAG@DIGEST`` for each tag."""
    ref = registry_reference(ref_text)
    tags = [tags] if isinstance(tags, str) else list(dict.fromkeys(tags))     # each tag once
    problems = [tag_problem(tag) for tag in tags if tag_problem(tag)] or ([] if tags else ["no tag given"])
    if problems:
        raise UsageError(problems[0])
    tagged = []
    with _session_for(session, insecure, environ) as session:
        registry = session.registry(ref.registry)
        with registry_errors("tag", ref, registry):
            data, media_type, digest = registry.get_manifest(ref.repository, ref.digest or ref.tag)
            for tag in tags:
                registry.put_manifest(ref.repository, tag, data, media_type, [push_scope(ref.repository)])
                tagged.append(str(ref.replace(tag=tag, digest=digest)))
                session.display.info("tagged %s as %s", ref.familiar(), tag)
    return tagged


def _deletes_refused(error: RegistryError) -> bool:
    """A registry that does not delete manifests: 405, or the spec's UNSUPPORTED error code."""
    return error.status == 405 or any(e.get("code") == "UNSUPPORTED" for e in error.errors)


def delete_image(ref_text: str, *, insecure: bool = False, environ=None, session: Optional[Session] = None) -> str:
    """Delete the manifest ``ref_text`` names (NAME:TAG or NAME@DIGEST; no default tag: a delete names
    what it deletes) and return its digest. A tag is resolved to its digest first, and the manifest is
    deleted by digest, as the spec asks: every tag of that manifest goes with it."""
    ref = registry_reference(ref_text, default_tag=None)
    if not ref.tag and not ref.digest:
        raise UsageError("say what to delete: %s:TAG or %s@sha256:... (delete has no default tag)"
                         % (ref.familiar_name, ref.familiar_name))
    with _session_for(session, insecure, environ) as session:
        registry = session.registry(ref.registry)
        with registry_errors("delete", ref, registry):
            digest = ref.digest or _served_digest(registry, ref)
            try:
                registry.delete_manifest(ref.repository, digest)
            except RegistryError as e:
                if not _deletes_refused(e):
                    raise
                raise e.restated(
                    "cannot delete %s: %s does not allow deletes (%s); a distribution registry (docker-registry) "
                    "allows them with storage.delete.enabled: true in its config, others in their settings or web "
                    "interface" % (ref.familiar(), ref.registry, _registry_reason(e))) from e
    return digest


# ---- CLI ----

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
    if ref_name_problem(ref.tag):
        raise argparse.ArgumentTypeError("the tag %s" % ref_name_problem(ref.tag))
    return text


def _command(commands, name: str, help_text: str, description: str, examples: Sequence[str],
             json_output: Union[bool, str] = False, network: bool = True):
    """A subcommand's parser; ``json_output``: a --json option (its help, when a string). When the
    parser defines one command only (``build_parser(verb)``), another is listed with its help line,
    and its options go nowhere (``_Undefined``)."""
    if commands.only is not None and name != commands.only:
        commands.add_parser(name, help=help_text, add_help=False)
        return _Undefined()
    parser = commands.add_parser(name, help=help_text, description=description, formatter_class=_Formatter,
                                 epilog="examples:\n" + "\n".join("  " + e for e in examples))
    parser.set_defaults(parser=parser, json=False)  # parser: a usage error found later shows this usage
    _global_options(parser, argparse.SUPPRESS, network)   # given after the command too; set only when given
    if json_output:
        parser.add_argument("--json", action="store_true", help=json_output if isinstance(json_output, str)
                            else "print the result as one JSON object (see README)")
    return parser


class _Undefined:
    """Where a command that will not run defines its options (``_command``): nowhere. Each argparse
    option added costs a help formatter made (``shutil.get_terminal_size`` and all): defining every
    command's options was most of the time ``--help`` took."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: self


def _global_options(parser: argparse.ArgumentParser, default, network: bool = True) -> None:
    """-q, -v and --insecure: before the command (``zeroimage -q build``) or after it."""
    talk = parser.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", default=default,
                      help="print only the result, errors and the warnings that predict failure")
    talk.add_argument("-v", "--verbose", action="store_true", default=default,
                      help="also show each HTTP request, auth step and retry (secrets redacted)")
    if network:
        parser.add_argument("--insecure", action="store_true", default=default,
                            help="allow plain HTTP and TLS certificates that do not verify")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's help, with a repeatable positional written ``NAME ...``, not ``NAME [NAME ...]``."""

    def _format_args(self, action, default_metavar):
        if action.nargs == argparse.ONE_OR_MORE:
            return "%s ..." % self._metavar_formatter(action, default_metavar)(1)
        return super()._format_args(action, default_metavar)


class _Once(argparse._StoreAction):
    """argparse's 'store', for an option that takes one value: given twice, a usage error (argparse
    would keep the last and drop the first without a word: -t a:1 -t b:1 wrote only b:1)."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = getattr(parser, "_given_once", None)
        if given is not None:
            if self.dest in given:
                parser.error("%s given twice; it takes one value%s" % (
                    "/".join(self.option_strings), _ONCE_HINTS.get((parser.prog, self.dest), "")))
            given.add(self.dest)
        super().__call__(parser, namespace, values, option_string)


# What to do instead, for a single-value option given twice (command's prog, option's dest).
_ONCE_HINTS = {("zeroimage build", "platform"): " (for a multi-platform image give PLATFORM=PROGRAM once per "
                                                "platform: linux/amd64=app-amd64 linux/arm64=app-arm64)"}


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors (which quote what was typed) through the one redaction, after one
    usage line that points to --help (not the whole synopsis), and a mistyped option answered with
    the nearest one. No abbreviations (--form is not --format: it is a typo of --from), and an option
    of one value given twice is an error (``_Once``), on every command."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.register("action", None, _Once)        # subparsers and groups share this registry
        self.register("action", "store", _Once)

    def short_usage(self) -> str:
        """``usage: zeroimage build [options] [PLATFORM=]PROGRAM ... (see 'zeroimage build --help')``."""
        words = []
        for action in self._actions:
            if action.option_strings or action.help == argparse.SUPPRESS:
                continue
            if isinstance(action, argparse._SubParsersAction):
                words.append("COMMAND ...")
            else:
                words.append(self._get_formatter()._format_args(action, action.dest.upper()))
        return "usage: %s [options] %s (see '%s --help')" % (self.prog, " ".join(words), self.prog)

    def _print_message(self, message, file=None):
        """As argparse's, but a failed write of --help or --version to stdout (a full disk) is raised
        for main() to say: argparse dropped it, and the command exited 0 having printed nothing. A
        failed write to stderr stays quiet, there being nowhere to say it."""
        file = file or sys.stderr
        if file is not sys.stdout:
            return super()._print_message(message, file)
        if message:
            file.write(message)
            file.flush()
        return None

    def error(self, message: str):
        self.exit(2, "%s\n%s: error: %s\n" % (self.short_usage(), self.prog, outside_text(_cli_words()(message), 4000)))

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        self._check_options(args)
        self._given_once = set()        # _Once's memory, for this parse
        try:
            return super().parse_known_args(args, namespace)
        finally:
            self._given_once = None

    def parse_args(self, args=None, namespace=None):
        """Words left over are the command's error (its usage), not the top's."""
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            getattr(namespace, "parser", self).error("unrecognized arguments: %s" % " ".join(extras))
        return namespace

    def _check_options(self, args: Sequence[str]) -> None:
        """An option this parser does not know (up to its command, for the top parser; up to ``--``)
        is an error here, with the nearest known option (``--pussh``: did you mean --push?) or what
        another tool's spelling is here (``_FOREIGN_OPTIONS``); a mistyped command, with the nearest."""
        commands = [a for a in self._actions if isinstance(a, argparse._SubParsersAction)]
        known = self._option_string_actions
        for word in args:
            if word == "--":
                return
            if commands and not word.startswith("-"):
                if word not in commands[0].choices:
                    near = _nearest(word, sorted(commands[0].choices))
                    self.error("unknown command %r; %s" % (word, "did you mean %s?" % near if near else
                                                             "the commands are listed by '%s --help'" % self.prog))
                return
            if not word.startswith("-") or word == "-" or re.match(r"-[0-9.]", word):
                continue
            name = word.split("=", 1)[0]
            if name in known or (not word.startswith("--") and word[:2] in known):
                continue                # (-qo FILE: combined short options)
            command = self.prog.split(" ", 1)[-1]
            advice = _FOREIGN_OPTIONS.get((command, name), _FOREIGN_OPTIONS.get((None, name)))
            if advice and (advice[1] is None or advice[1] in known):
                self.error("unrecognized option %s: %s" % (name, advice[0]))
            near = _nearest(name, sorted(o for o in known if o.startswith("--"))) if word.startswith("--") else None
            self.error("unrecognized option %s%s" % (name, "; did you mean %s?" % near if near else ""))


def _edit_distance(a: str, b: str) -> int:
    """Levenshtein's distance, with a swap of two neighbours as one edit (--form: --from)."""
    previous2, previous = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], previous2[j - 2] + 1)
        previous2, previous = previous, row
    return previous[-1]


def _nearest(word: str, choices: Sequence[str]) -> Optional[str]:
    """The choice a typo most likely meant: one or two edits away (one, for a word of under 8
    letters; a swap of neighbours is one), the fewest winning; else the one choice it starts (3
    letters or more); None when nothing is that close (--tag is not --json)."""
    core = word.lstrip("-")
    limit = 1 if len(core) < 8 else 2
    scored = sorted((_edit_distance(word, choice), choice) for choice in choices)
    if scored and scored[0][0] <= limit:
        return scored[0][1]
    starting = [choice for choice in choices if len(core) >= 3 and choice.lstrip("-").startswith(core)]
    return starting[0] if len(starting) == 1 else None  # an abbreviation (--plat): not taken, but meant


# Other tools' spellings (skopeo, podman, docker, crane), answered with zeroimage's way: (command,
# or None for every command; option) -> (advice, the option it names, said only where that exists).
_TLS_VERIFY = ("zeroimage verifies TLS unless --insecure (which also allows plain HTTP); "
               "--tls-verify=false is --insecure", "--insecure")
_EVERY_PLATFORM = ("copy takes every platform unless --platform names some", None)
_PUSH_TAG = ("push names the image with REF (zeroimage push ARCHIVE REF); to add tags after, "
             "zeroimage tag REF NEWTAG ...", None)
_DOCKERFILE = ("zeroimage reads no Dockerfile: give the program (zeroimage build ./app) and --from BASE", None)
_FOREIGN_OPTIONS = {
    (None, "--tls-verify"): _TLS_VERIFY, (None, "--dest-tls-verify"): _TLS_VERIFY,
    (None, "--src-tls-verify"): _TLS_VERIFY, (None, "--skip-tls-verify"): _TLS_VERIFY,
    ("copy", "--all-platforms"): _EVERY_PLATFORM, ("copy", "--all"): _EVERY_PLATFORM, ("copy", "-a"): _EVERY_PLATFORM,
    ("push", "--tag"): _PUSH_TAG, ("push", "-t"): _PUSH_TAG,
    ("build", "--file"): _DOCKERFILE, ("build", "-f"): _DOCKERFILE,
    ("build", "--build-arg"): ("zeroimage runs nothing at build time; for the program's environment, "
                               "--env KEY=VALUE", None),
    ("pull", "--all-tags"): ("pull saves one image or index; zeroimage tags REPOSITORY lists the tags, and "
                             "zeroimage sync SRC-REPO DST-REPO copies every tag to another repository", None),
}


def build_parser(verb: Optional[str] = None) -> argparse.ArgumentParser:
    """The command line's parser; with ``verb``, only that command's options are defined (the
    others are listed with their help line): what ``main`` asks for, as one command runs."""
    parser = _Parser(
        prog="zeroimage",
        description="Build container images for single-binary programs, without Docker.",
        epilog="Run 'zeroimage COMMAND --help' for a command's options and examples.")
    parser.add_argument("--version", action="version", version="zeroimage " + __version__)
    _global_options(parser, False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.only = verb

    _build_command(commands)
    _transfer_verbs(commands)
    _change_verbs(commands)
    _reading_verbs(commands)
    _account_verbs(commands)
    _registry_verbs(commands)
    return parser


def _build_command(commands) -> None:
    """build: a program on a base."""
    build_cmd = _command(
        commands, "build", "build an image from a program and a base",
        "Build the image that this Dockerfile would, without Docker:\n\n"
        "  FROM BASE\n  COPY PROGRAM /PROGRAM\n  ENTRYPOINT [\"/PROGRAM\"]\n\n"
        "and write it as an OCI archive (with Docker's manifest.json) that skopeo,\n"
        "podman, docker and umoci read, or push it. Prints the image digest on stdout\n"
        "(with --push: the pushed reference with its digest).",
        ["zeroimage build ./app                          # minimal base (users, TLS roots) -> app.tar",
         "zeroimage build --from scratch ./app           # nothing but the program",
         "zeroimage build --load -t app:dev ./app         # into Docker or podman; then: docker run --rm app:dev",
         "zeroimage build -o - ./app | docker load",
         "zeroimage build --from alpine:3.19 --push registry.example.com/app:1 ./app",
         "zeroimage build --from-archive alpine.tar -o app.tar -t app:1.0 ./app",
         "zeroimage build --push reg.example.com/app:1 linux/amd64=dist/app-amd64 linux/arm64=dist/app-arm64",
         "zeroimage build --env MODE=prod --user nonroot --expose 8080 --add static:/srv/static ./app",
         "zeroimage build --sbom --tzdata --push registry.example.com/app:1 ./app   # with an SPDX SBOM and time zones"],
        json_output=True)
    base = build_cmd.add_mutually_exclusive_group()
    base.add_argument("--from", dest="base", type=_base_arg, metavar="BASE",
                      help="a registry image, docker-daemon:NAME (the local engine's), or 'scratch' for none "
                           "(default: the built-in minimal base)")
    base.add_argument("--from-archive", dest="base_archive", metavar="PATH[:NAME]", type=_base_archive_arg,
                      help="base from an OCI layout, as a tar archive or a directory")
    build_cmd.add_argument("--platform", type=_platform_arg, metavar="OS/ARCH[/VARIANT]",
                           help="target platform (default: read from the program's ELF header)")
    build_cmd.add_argument("--target", type=_target_arg, metavar="PATH",
                           help="where the program lands in the image (default: /NAME; of several PLATFORM=PATH, "
                                "the name they share without platform words: app-amd64, app-arm64 -> /app)")
    output = build_cmd.add_mutually_exclusive_group()
    output.add_argument("-o", "--output", type=_output_arg, metavar="PATH",
                        help="archive to write (default: ./NAME.tar); - for standard output")
    output.add_argument("--push", type=_reference_arg, metavar="REF",
                        help="push the image to a registry instead (a name without a registry host goes under "
                             "$ZEROIMAGE_REPO when set)")
    build_cmd.add_argument("--load", action="store_true",     # not in the group: build() says why it goes alone
                           help="load the image into the local Docker or podman engine instead (DOCKER_HOST, "
                                "else /var/run/docker.sock, else podman's socket)")
    build_cmd.add_argument("-t", "--tag", type=_tag_arg, metavar="NAME[:TAG]",
                           help="name of the image in the archive or engine (default: localhost/NAME:latest; "
                                "with --push, REF names it)")
    build_cmd.add_argument("--format", dest="output_format", choices=("archive", "oci-layout"), default="archive",
                           help="archive: one tar file (default); oci-layout: a directory (-o DIR), "
                                "added to when it already holds a layout")
    build_cmd.add_argument("--media-types", choices=("docker", "oci"),
                           help="write Docker v2 schema 2 or OCI manifests (default: as the base; OCI for "
                                "scratch and the minimal base)")
    build_cmd.add_argument("--sbom", action="store_true",
                           help="attach an SPDX 2.3 SBOM of the program to each image (an OCI 1.1 referrer): "
                                "pushed after the image, or written into the archive or layout")
    build_cmd.add_argument("--no-platform-check", dest="platform_check", action="store_false",
                           help="only warn when a binary's ELF header does not match its PLATFORM=")
    build_cmd.add_argument("--no-build-info", dest="build_info", action="store_false",
                           help="do not read the program's build info (Go's, or cargo auditable's) for the "
                                "version, revision and source labels")
    _image_option_args(build_cmd.add_argument_group("image options (repeatable where it makes sense)"))
    build_cmd.add_argument("--compression", choices=WRITTEN_CODECS, default="gzip",
                           help="how the new layers are compressed: gzip (default), or zstd (OCI media types; "
                                "Python 3.14 or newer)")
    build_cmd.add_argument("--compression-level", type=int, metavar="LEVEL",
                           help="the new layers' compression level: gzip 0-9 (default: 6), zstd 1-22 (default: 3)")
    build_cmd.add_argument("--ca-bundle", metavar="FILE",
                           help="TLS roots for the minimal base (default: the host's CA bundle)")
    build_cmd.add_argument("--tzdata", nargs="?", const=True, type=_tzdata_arg, metavar="DIR",
                           help="add a zone database to the minimal base, at %s: DIR, else $ZONEINFO, else the "
                                "host's %s (just before PROGRAM: --tzdata -- PROGRAM)" % (ZONEINFO_DIR, ZONEINFO_DIR))
    build_cmd.add_argument("entrypoint", nargs="+", type=_program_arg, metavar="[PLATFORM=]PROGRAM",
                           help="the program file (the image's entrypoint); for a multi-platform image, "
                                "PLATFORM=PROGRAM once per platform (linux/arm64=dist/app-arm64)")
    build_cmd.set_defaults(func=cmd_build)


def _transfer_verbs(commands) -> None:
    """pull, push, copy and sync: images moved as they are."""
    pull_cmd = _command(
        commands, "pull", "save an image from a registry to an archive",
        "Save an image to an OCI archive (the format build writes). With --all-platforms\n"
        "the index and every manifest are kept byte for byte, so digests survive a later push.\n"
        "Prints the digest of the saved manifest or index.",
        ["zeroimage pull alpine:3.19                     # this machine's platform -> alpine.tar",
         "zeroimage pull --platform linux/arm64 -o base.tar alpine:3.19",
         "zeroimage pull --platform linux/amd64 --platform linux/arm64 alpine:3.19   # an index of the two",
         "zeroimage pull --load alpine:3.19             # into Docker or podman",
         "zeroimage pull --all-platforms alpine:3.19     # then, offline: zeroimage build --from-archive alpine.tar ..."],
        json_output=True)
    which = pull_cmd.add_mutually_exclusive_group()
    which.add_argument("--platform", action="append", type=_platform_arg, metavar="OS/ARCH[/VARIANT]",
                       help="the platform to save from an index (default: this machine's); repeat it to save "
                            "several, as a new index of them")
    which.add_argument("--all-platforms", action="store_true", help="save the whole index, every platform")
    pull_cmd.add_argument("-o", "--output", type=_output_arg, metavar="PATH",
                          help="archive to write (default: ./NAME.tar); - for standard output")
    pull_cmd.add_argument("--load", action="store_true",     # not in the group: pull() says why it goes alone
                          help="load the image into the local Docker or podman engine instead "
                               "(default platform: the engine's)")
    pull_cmd.add_argument("ref", type=_reference_arg, metavar="REF")
    pull_cmd.set_defaults(func=cmd_pull)

    push_cmd = _command(
        commands, "push", "push an archive to a registry",
        "Push what an archive holds (one image, or an index with all its children).\n"
        "Manifests are sent byte for byte, so digests stay the same, unless --media-types\n"
        "asks for the other family: then they are re-encoded (layers unchanged). Prints REF@DIGEST.\n"
        "docker-daemon:NAME pushes the local engine's image (its export; layers gzipped).",
        ["zeroimage push app.tar registry.example.com/app:1",
         "zeroimage push docker-daemon:app:dev registry.example.com/app:1   # from Docker or podman",
         "zeroimage push --media-types docker app.tar registry.example.com/app:1   # Docker v2 schema 2",
         "zeroimage push multi.tar:alpine:3.19 registry.example.com/mirror/alpine:3.19"],
        json_output=True)
    push_cmd.add_argument("--media-types", choices=("docker", "oci"),
                          help="convert the manifests to Docker v2 schema 2 or OCI on the way (layers unchanged; "
                               "the manifest digest changes)")
    push_cmd.add_argument("--referrers", action="store_true",
                          help="push what refers to the image in the archive too (build --sbom's SBOM)")
    push_cmd.add_argument("archive", metavar="ARCHIVE[:NAME]", help="the archive, or docker-daemon:NAME (the engine's image)")
    push_cmd.add_argument("ref", type=_reference_arg, metavar="REF")
    push_cmd.set_defaults(func=cmd_push)

    copy_cmd = _command(
        commands, "copy", "copy an image between registries (or archives)",
        "Copy an image, or an index with every image in it, from SRC to DST. Registry to\n"
        "registry, manifests go byte for byte (digests unchanged) and layers stream from\n"
        "one registry to the other, never to disk; within one registry they are mounted.\n"
        "--platform copies only that platform's image; repeated, a new index of those images\n"
        "(its digest is not the source's). SRC or DST may be an archive: a path, told apart\n"
        "from a reference as inspect does (it starts with /, ./, ../ or ~, or ends in .tar,\n"
        ".tar.gz, .tgz, .oci, ...); ARCHIVE:NAME picks or names the image in it. SRC or DST\n"
        "may be docker-daemon:NAME, the local engine's image: read from its export, or\n"
        "loaded (one image: the engine's platform's, unless --platform says). Prints\n"
        "DST@DIGEST (for an archive or the engine: the digest).",
        ["zeroimage copy staging.example.com/app:1.2 prod.example.com/app:1.2",
         "zeroimage copy --platform linux/amd64 --platform linux/arm64 alpine:3.19 registry.example.com/alpine:3.19",
         "zeroimage copy alpine:3.19 alpine.tar          # every platform; inside: copy alpine.tar REF",
         "zeroimage copy multi.tar:alpine:3.19 registry.example.com/mirror/alpine:3.19",
         "zeroimage copy registry.example.com/app:1 docker-daemon:app:1     # load it into Docker or podman"],
        json_output=True)
    copy_cmd.add_argument("--platform", action="append", type=_platform_arg, metavar="OS/ARCH[/VARIANT]",
                          help="copy only this platform's image; repeat it for a new index of several")
    copy_cmd.add_argument("--referrers", action="store_true",
                          help="copy what refers to the images too (SBOMs, signatures), byte for byte")
    copy_cmd.add_argument("--all-tags", action="store_true",
                          help="copy every tag of the repository SRC to the repository DST: zeroimage sync "
                               "(see its --help)")
    copy_cmd.add_argument("src", metavar="SRC", help="REF, ARCHIVE[:NAME] (a path: see above), or docker-daemon:NAME")
    copy_cmd.add_argument("dst", type=_copy_dst_arg, metavar="DST",
                          help="REF, ARCHIVE[:NAME] to write, or docker-daemon:NAME to load")
    copy_cmd.set_defaults(func=cmd_copy)

    sync_cmd = _command(
        commands, "sync", "copy every tag of a repository to another",
        "Copy every tag of the repository SRC to the repository DST, each as copy copies\n"
        "one: byte for byte (an index with every image in it; digests unchanged), layers\n"
        "mounted within one registry, skipped when DST has them. The tag list is read\n"
        "through all its pages. A tag whose DST tag names the same digest already is\n"
        "skipped without reading anything more. Each tag is said as it goes (copied TAG\n"
        "DIGEST, or TAG: already there), then a summary; a tag that fails is said and the\n"
        "others go on, and the exit status is 1. SRC and DST are repositories: no tag or\n"
        "digest. copy --all-tags SRC DST is the same.",
        ["zeroimage sync registry.example.com/team/app mirror.example.com/team/app",
         "zeroimage sync --referrers ghcr.io/me/app registry.example.com/me/app   # SBOMs and signatures too",
         "zeroimage sync -q --json reg.example.com/a reg.example.com/b > synced.json"],
        json_output="print what happened to each tag as one JSON object (see README)")
    sync_cmd.add_argument("--referrers", action="store_true",
                          help="copy what refers to the images of each tag too (SBOMs, signatures), byte for byte")
    sync_cmd.add_argument("src", type=_repository_arg, metavar="SRC", help="REGISTRY/NAME: the repository to read")
    sync_cmd.add_argument("dst", type=_repository_arg, metavar="DST", help="REGISTRY/NAME: the repository to write")
    sync_cmd.set_defaults(func=cmd_sync)


def _reading_verbs(commands) -> None:
    """export and inspect: what an image holds."""
    export_cmd = _command(
        commands, "export", "write an image's filesystem as one tar",
        "Write the filesystem of an image (in a registry or an archive) as one uncompressed\n"
        "tar, as crane export does: its layers applied in order, whiteouts applied (never\n"
        "written), hard links kept. To standard output (never a terminal) unless -o names\n"
        "a file, written whole or not at all. Of an index, the image for --platform (default:\n"
        "this machine's). zeroimage inspect --files lists what it writes.",
        ["zeroimage export alpine:3.19 -o rootfs.tar",
         "zeroimage export app.tar | tar -x -C rootfs     # an archive's image, unpacked",
         "zeroimage export --platform linux/arm64 registry.example.com/app:1 | tar -t"],
        json_output="print the result as one JSON object (with -o FILE)")
    export_cmd.add_argument("--platform", type=_platform_arg, metavar="OS/ARCH[/VARIANT]",
                            help="which image of an index (default: this machine's)")
    export_cmd.add_argument("-o", "--output", type=_output_arg, metavar="FILE",
                            help="the tar to write (default: standard output, as -o -)")
    export_cmd.add_argument("target", metavar="SOURCE", help="REF, ARCHIVE[:NAME] / DIR[:NAME] (a path, told apart "
                            "as inspect does), or docker-daemon:NAME")
    export_cmd.set_defaults(func=cmd_export)

    inspect_cmd = _command(
        commands, "inspect", "describe an image in a registry or an archive",
        "Show an image: digest and media type (of an index: each platform's manifest with\n"
        "its digest and size), layers, entrypoint, cmd, env, user, ports, labels,\n"
        "annotations and what refers to it (SBOMs, signatures), read from its manifest,\n"
        "config and referrers alone; with --build-info also its program's build info, read\n"
        "out of its layers. Or its raw manifest (--raw; of an index: the index), config\n"
        "(--config) or SBOM (--sbom).\n"
        "An archive or layout directory and a registry image are shown alike.\n\n"
        "TARGET is read from disk when it looks like a path: it starts with /, ./, ../\n"
        "or ~, or ends in .tar (.gz .xz .bz2), .tgz, .txz, .tbz2 or .oci (before an\n"
        "optional :NAME). Anything else is a registry reference, even when a file of\n"
        "that name exists: write ./NAME to read that file. PATH:NAME picks the image\n"
        "named NAME (its tag or full name). docker-daemon:NAME is the local engine's image.",
        ["zeroimage inspect alpine:3.19", "zeroimage inspect --platform linux/arm64 --config alpine:3.19",
         "zeroimage inspect --raw app.tar", "zeroimage inspect ./layout:1.0         # a layout directory, image 1.0",
         "zeroimage inspect --build-info registry.example.com/app:1   # reads the program's layer too",
         "zeroimage inspect --sbom registry.example.com/app:1 > app.spdx.json",
         "zeroimage inspect --files app.tar              # the files, as zeroimage export writes them"],
        json_output=True)
    inspect_cmd.add_argument("--platform", type=_platform_arg, metavar="OS/ARCH[/VARIANT]",
                             help="which image of an index (default: this machine's)")
    mode = inspect_cmd.add_mutually_exclusive_group()
    mode.add_argument("--raw", dest="mode", action="store_const", const="raw", help="print the manifest as it is")
    mode.add_argument("--config", dest="mode", action="store_const", const="config", help="print the image config")
    mode.add_argument("--sbom", dest="mode", action="store_const", const="sbom",
                      help="print the SBOM attached to the image (build --sbom)")
    mode.add_argument("--files", dest="mode", action="store_const", const="files",
                      help="list the image's filesystem, as export writes it (with --json: as a list)")
    inspect_cmd.add_argument("--build-info", action="store_true",
                             help="also read the program (Entrypoint[0]) out of the layers and show its build "
                                  "info (Go's, cargo auditable's): downloads layers from a registry")
    inspect_cmd.add_argument("target", metavar="TARGET",
                             help="REF, ARCHIVE[:NAME] / DIR[:NAME] (a path: see above), or docker-daemon:NAME")
    inspect_cmd.set_defaults(func=cmd_inspect, mode="summary")


def _account_verbs(commands) -> None:
    """login, logout and check-auth: credentials."""
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


def _destination_args(parser, verb: str) -> None:
    """Where a changed image goes: one of --push, -o and --load; -t and --format as build's."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--push", type=_reference_arg, metavar="REF",
                       help="push the new image (REF may be the tag it came from)")
    where.add_argument("-o", "--output", type=_output_arg, metavar="PATH",
                       help="write it to an archive (- for standard output)")
    where.add_argument("--load", action="store_true", help="load it into the local Docker or podman engine")
    parser.add_argument("-t", "--tag", type=_tag_arg, metavar="NAME[:TAG]",
                        help="its name in the archive or engine (default: the source's)")
    parser.add_argument("--format", dest="output_format", choices=("archive", "oci-layout"), default="archive",
                        help="archive: one tar file (default); oci-layout: a directory (-o DIR)")
    parser.add_argument("--platform", action="append", type=_platform_arg, metavar="OS/ARCH[/VARIANT]",
                        help="%s only this platform's image of an index (default: every one); repeat it for "
                             "several" % verb)


def _change_verbs(commands) -> None:
    """mutate, append and rebase: an existing image made into a new one."""
    mutate_cmd = _command(
        commands, "mutate", "change an image's config (entrypoint, env, labels...) without rebuilding",
        "Change the config of an existing image, every image of an index (or those of\n"
        "--platform), and push or write the result: its layers are carried over as they are,\n"
        "mounted within one registry, never downloaded. A new --entrypoint or --entrypoint-arg\n"
        "drops the Cmd the image had, as a Dockerfile's ENTRYPOINT does, unless --cmd gives one.\n"
        "Prints the new digest (with --push: REF@DIGEST).",
        ["zeroimage mutate --entrypoint /app --entrypoint-arg serve --push reg.example.com/app:1 reg.example.com/app:1",
         "zeroimage mutate --env MODE=prod --label team=core --push reg.example.com/app:prod reg.example.com/app:1",
         "zeroimage mutate --user 65532 -o app-nonroot.tar app.tar"],
        json_output=True)
    mutate_cmd.add_argument("--entrypoint", type=_entrypoint_arg, metavar="PROGRAM",
                            help="the entrypoint's program (its arguments: --entrypoint-arg)")
    _image_option_args(mutate_cmd.add_argument_group("image options (repeatable where it makes sense)"), add=False)
    _destination_args(mutate_cmd, "change")
    mutate_cmd.add_argument("target", metavar="SOURCE",
                            help="REF, ARCHIVE[:NAME] (a path: see inspect --help), or docker-daemon:NAME")
    mutate_cmd.set_defaults(func=cmd_mutate, add=[])

    append_cmd = _command(
        commands, "append", "add files to an existing image as one new layer",
        "Add files and directory trees on top of an existing image, every image of an index\n"
        "(or those of --platform), as ONE new layer, by build's --add rules: modes kept,\n"
        "owners root, directories the image has keep their modes and owners. The image's\n"
        "layers are carried over (mounted within one registry); its config gains the layer\n"
        "and a history line, created is now (or SOURCE_DATE_EPOCH). Prints the new digest\n"
        "(with --push: REF@DIGEST).",
        ["zeroimage append --add static:/srv/static --push reg.example.com/app:1-static reg.example.com/app:1",
         "zeroimage append --add app.yaml:/etc/app/ --add certs:/etc/app/certs -o app-conf.tar app.tar"],
        json_output=True)
    append_cmd.add_argument("--add", action="append", type=_add_arg, required=True, metavar="SRC:DST",
                            help="a file or directory tree to put at DST (absolute; DST/ for into it); repeat "
                                 "for several, all in the one layer")
    _destination_args(append_cmd, "add to")
    append_cmd.add_argument("target", metavar="SOURCE",
                            help="REF, ARCHIVE[:NAME] (a path: see inspect --help), or docker-daemon:NAME")
    append_cmd.set_defaults(func=cmd_append)

    rebase_cmd = _command(
        commands, "rebase", "put an image on a new version of its base, without the program",
        "Replace the base an image was built on with NEW, every image of an index (or those\n"
        "of --platform), each on NEW's image for its platform. The old base is the one the\n"
        "image records (org.opencontainers.image.base.name and .base.digest, which build\n"
        "writes), or --old-base; its layers must be the image's first, else nothing is\n"
        "written. The image's own layers and config stay (NEW's Env, Entrypoint... are not\n"
        "taken, as crane rebase); diff_ids, history and the base annotations follow. A base is\n"
        "a registry reference, ARCHIVE[:NAME] (a path), docker-daemon:NAME or scratch. Prints\n"
        "the new digest (with --push: REF@DIGEST).",
        ["zeroimage rebase --base alpine:3.20 --push reg.example.com/app:1 reg.example.com/app:1",
         "zeroimage rebase --base reg.example.com/base:2 --old-base reg.example.com/base:1 -o app2.tar app.tar"],
        json_output=True)
    rebase_cmd.add_argument("--base", dest="new_base", required=True, metavar="NEW",
                            help="the new base: REF, ARCHIVE[:NAME], docker-daemon:NAME or scratch")
    rebase_cmd.add_argument("--old-base", dest="old_base", metavar="OLD",
                            help="the base the image is on (default: the one it records)")
    _destination_args(rebase_cmd, "rebase")
    rebase_cmd.add_argument("target", metavar="SOURCE",
                            help="REF, ARCHIVE[:NAME] (a path: see inspect --help), or docker-daemon:NAME")
    rebase_cmd.set_defaults(func=cmd_rebase)


def _image_option_args(opts, add: bool = True) -> None:
    """The image options build and mutate share (``ImageOptions``' fields, each its dest)."""
    if add:
        opts.add_argument("--add", action="append", type=_add_arg, default=[], metavar="SRC:DST",
                          help="add a file or directory tree at DST, in the program's layer")
    opts.add_argument("--env", action="append", type=_pair_arg("--env"), default=[], metavar="KEY=VALUE")
    opts.add_argument("--label", dest="labels", action="append", type=_pair_arg("--label"), default=[],
                      metavar="KEY=VALUE")
    opts.add_argument("--annotation", dest="annotations", action="append", type=_pair_arg("--annotation"), default=[],
                      metavar="KEY=VALUE", help="an annotation on the image manifest")
    opts.add_argument("--user", type=_user_arg, metavar="USER[:GROUP]",
                      help="the user the program runs as ('nonroot' is 65532:65532 on the minimal base)")
    opts.add_argument("--workdir", type=_workdir_arg, metavar="DIR", help="the working directory (absolute)")
    opts.add_argument("--cmd", action="append", metavar="ARG",
                      help="a default argument (the image's Cmd); repeat for several; "
                           "write --cmd=-v for one that starts with -")
    opts.add_argument("--entrypoint-arg", dest="args", action="append", default=[], metavar="ARG",
                      help="a fixed argument after the entrypoint's program (ENTRYPOINT [\"/app\", \"serve\"]), "
                           "which Cmd and docker run's arguments follow; repeat for several")
    opts.add_argument("--expose", action="append", type=_port_arg, default=[], metavar="PORT[/PROTO]")


def _registry_verbs(commands) -> None:
    """tags, digest, tag and delete: what users otherwise reach crane or skopeo for."""
    tags_cmd = _command(
        commands, "tags", "list the tags of a repository",
        "List every tag of a repository, one per line, in the registry's order, following\n"
        "its pages (Link headers). REPOSITORY is a name alone, as for crane ls: a tag or\n"
        "digest there is an error.",
        ["zeroimage tags registry.example.com/app", "zeroimage tags --json alpine"],
        json_output="print the tags as one JSON list")
    tags_cmd.add_argument("repository", type=_repository_arg, metavar="REPOSITORY")
    tags_cmd.set_defaults(func=cmd_tags)

    digest_cmd = _command(
        commands, "digest", "print the digest of an image in a registry or an archive",
        "Print the digest of the manifest or index REF names, as the registry serves it\n"
        "(what NAME@DIGEST pins); with --platform, the digest of that platform's image\n"
        "in the index. TARGET may be an archive or layout directory, read as inspect\n"
        "reads them (see zeroimage inspect --help).",
        ["zeroimage digest alpine:3.19", "zeroimage digest --platform linux/arm64 alpine:3.19",
         "zeroimage digest app.tar"], json_output=True)
    digest_cmd.add_argument("--platform", type=_platform_arg, metavar="OS/ARCH[/VARIANT]",
                            help="the digest of this platform's image in an index")
    digest_cmd.add_argument("target", metavar="TARGET", help="REF, ARCHIVE[:NAME] / DIR[:NAME], or docker-daemon:NAME")
    digest_cmd.set_defaults(func=cmd_digest)

    tag_cmd = _command(
        commands, "tag", "put an image in a registry under more tags",
        "Put the manifest or index REF names under each NEWTAG of the same repository:\n"
        "the same bytes, so the same digest; nothing else is uploaded. Prints\n"
        "REPOSITORY:NEWTAG@DIGEST for each.",
        ["zeroimage tag registry.example.com/app:1.2.3 1.2 1 latest",
         "zeroimage tag registry.example.com/app@sha256:... stable"], json_output=True)
    tag_cmd.add_argument("ref", type=_reference_arg, metavar="REF")
    tag_cmd.add_argument("tags", nargs="+", type=_newtag_arg, metavar="NEWTAG", help="a tag (not a reference)")
    tag_cmd.set_defaults(func=cmd_tag)

    delete_cmd = _command(
        commands, "delete", "delete an image from a registry",
        "Delete the manifest or index REF names. A tag is resolved to its digest first and\n"
        "the manifest is deleted by digest: every other tag of it goes too. REF must name a\n"
        "tag or digest (no default tag). Prints NAME@DIGEST of what was deleted.",
        ["zeroimage delete registry.example.com/app:old", "zeroimage delete registry.example.com/app@sha256:..."],
        json_output=True)
    delete_cmd.add_argument("ref", type=_reference_arg, metavar="REF")
    delete_cmd.set_defaults(func=cmd_delete)


def _program_arg(text: str):
    """``PATH``, or ``PLATFORM=PATH`` when what stands before '=' is a platform. An architecture
    alone before '=' (``amd64=app``, ``arm64/v8=app``) is refused, unless a file has that name:
    a PLATFORM is OS/ARCH[/VARIANT]."""
    head, sep, tail = text.partition("=")
    short = head.split("/", 1)[0].lower()
    if sep and (short in _NAME_ARCH_WORDS or short in _DEFAULT_VARIANT) and not os.path.lexists(text):
        raise argparse.ArgumentTypeError(
            "%s: a PLATFORM is OS/ARCH[/VARIANT], like linux/amd64; write linux/%s=%s" % (text, head, tail))
    if sep and "/" in head:
        try:
            platform = Platform.parse(head)
        except InvalidPlatformError:
            return None, text
        if not tail:
            raise argparse.ArgumentTypeError("%s names no program file after '='" % text)
        return platform, tail
    if not text:
        raise argparse.ArgumentTypeError("the program path is empty")
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


def _output_arg(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("the output path is empty")
    return text


def _workdir_arg(text: str) -> str:
    if not text.startswith("/"):
        raise argparse.ArgumentTypeError("must be an absolute path, not %r" % text)
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise argparse.ArgumentTypeError("holds a control character: %r" % text)
    return image_path(text)


def _entrypoint_arg(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("the program is empty; give its path in the image, like /app")
    return text


def _user_arg(text: str) -> str:
    problem = user_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def _port_arg(text: str) -> str:
    port, _, proto = text.partition("/")
    proto = proto or "tcp"
    if not re.fullmatch(r"[0-9]{1,5}", port) or not 1 <= int(port) <= 65535 or proto not in ("tcp", "udp", "sctp"):
        raise argparse.ArgumentTypeError("expected PORT[/tcp|udp|sctp] with a port from 1 to 65535, got %r" % text)
    return "%d/%s" % (int(port), proto)


def _checked_arg(check: Callable[[str], object], errors=(InvalidReferenceError,)):
    """An argparse type: the text as it is once ``check(text)`` passes (its errors become argparse's)."""
    def checked(text: str) -> str:
        try:
            check(text)
        except errors as e:
            raise argparse.ArgumentTypeError(str(e))
        return text
    return checked


_registry_arg = _checked_arg(registry_host)
_reference_arg = _checked_arg(registry_reference, (InvalidReferenceError, UsageError))
_copy_dst_arg = _checked_arg(copy_destination, ZeroImageError)
_repository_arg = _checked_arg(repository_reference, (InvalidReferenceError, UsageError))


def _newtag_arg(text: str) -> str:
    problem = tag_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


_base_arg = _checked_arg(check_base, (InvalidReferenceError, UsageError))
_base_archive_arg = _checked_arg(check_base_archive, UsageError)


def _tzdata_arg(text: str) -> str:
    """--tzdata DIR: a file there is most likely the program, taken as DIR because --tzdata came just before it."""
    if not text:
        raise argparse.ArgumentTypeError("the directory is empty text; give one like %s" % ZONEINFO_DIR)
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(
            "%s is not a directory; if it is the program, write --tzdata -- %s, or --tzdata after it "
            "(--tzdata DIR takes a zone database's directory)" % (text, text))
    return text


def _build_options(args, entrypoint) -> BuildOptions:
    """What ``zeroimage build`` asks, as the library takes it: each option's dest is the field's name."""
    image = ImageOptions(**{field: getattr(args, field) for field in ImageOptions._fields})
    return BuildOptions(entrypoint, image=image, **{field: getattr(args, field) for field in BuildOptions._fields
                                                    if field not in ("entrypoint", "image")})


def cmd_build(args, session: Session) -> int:
    programs = args.entrypoint
    if len(programs) == 1 and programs[0][0] is None:
        entrypoint = programs[0][1]
    elif any(platform is None for platform, _ in programs):
        raise UsageError("give one plain PROGRAM, or PLATFORM=PROGRAM for every binary, where a PLATFORM is "
                         "OS/ARCH[/VARIANT] (e.g. linux/arm64=dist/app)")
    else:
        entrypoint = programs
    _check_stdout_output(args)
    try:
        result = build(_build_options(args, entrypoint), session=session)
    except NoCommonNameError as e:
        raise UsageError("the programs' file names (%s) have no name in common once platform words (linux, amd64, "
                         "arm64...) are removed: give the program's path in the image with --target /PATH%s" % (
                             ", ".join(os.path.basename(p) for p in e.paths),
                             ", or the image's name with -t NAME (either names both)" if "tag" in e.options else ""
                         )) from e
    return _report_made(args, session, result, "--load it (the image for the engine's platform goes), or build "
                        "one platform's image (one PROGRAM without PLATFORM=)")


def _report_made(args, session: Session, result: BuildResult, instead: str) -> int:
    """What build, mutate, append and rebase say of the image they made; ``instead``: what to do
    instead of writing an index to an archive, which ``docker load`` cannot take."""
    for image in result.images:
        layers = len(image.manifest["layers"])
        session.display.info("%s: %d layer%s, %s", image.platform, layers, "" if layers == 1 else "s", image.digest)
    if args.load:
        _say_loaded(session, result.path, result.image_id)
    elif args.push:
        session.display.info("pushed %s", result.path)
    else:
        _say_wrote(session, args.output, result.path, result.name)
    if not args.push and not args.load and args.output_format == "archive" and \
            result.digest != result.images[0].digest:       # an index, which docker load cannot take
        _note_index_archive(session, args.output or result.path, instead)
    if args.output == "-":
        _result_to_stderr(args, result.digest)
    elif args.json:
        _print_json(_build_json(result, bool(args.push)))
    else:
        print(result.path if args.push else result.digest)
    return 0


def cmd_mutate(args, session: Session) -> int:
    _check_stdout_output(args)
    options = ImageOptions(**{field: getattr(args, field) for field in ImageOptions._fields})
    result = mutate(args.target, options, entrypoint=None if args.entrypoint is None else [args.entrypoint],
                    platforms=args.platform, push=args.push, output=args.output, load=args.load, tag=args.tag,
                    output_format=args.output_format, session=session)
    return _report_made(args, session, result, "--load it (the image for the engine's platform goes), or "
                        "change one platform's image (--platform)")


def cmd_append(args, session: Session) -> int:
    _check_stdout_output(args)
    result = append(args.target, args.add, platforms=args.platform, push=args.push, output=args.output,
                    load=args.load, tag=args.tag, output_format=args.output_format, session=session)
    return _report_made(args, session, result, "--load it (the image for the engine's platform goes), or "
                        "add to one platform's image (--platform)")


def cmd_rebase(args, session: Session) -> int:
    _check_stdout_output(args)
    result = rebase(args.target, args.new_base, old_base=args.old_base, platforms=args.platform, push=args.push,
                    output=args.output, load=args.load, tag=args.tag, output_format=args.output_format,
                    session=session)
    return _report_made(args, session, result, "--load it (the image for the engine's platform goes), or "
                        "rebase one platform's image (--platform)")


def _say_wrote(session: Session, output: Optional[str], where: str, name: Optional[str]) -> None:
    """What an archive or layout was written as: its path (or standard output, for -o -) and the image's name."""
    session.display.info("wrote %s: image %s", "the archive to standard output" if output == "-" else where, name)


def _say_loaded(session: Session, name: str, image_id: Optional[str]) -> None:
    """What --load loaded, by the name and the ID ``docker images`` shows (the engine's own word)."""
    if image_id:
        short = image_id.split(":", 1)[-1][:12]
        session.display.info("loaded %s: image ID %s (docker images shows %s)", name, image_id, short)
    else:
        session.display.info("loaded %s (the engine gave no image ID)", name)


def _note_index_archive(session: Session, path: str, instead: str) -> None:
    """Once, for an archive that holds a multi-platform index (no manifest.json): who cannot load it."""
    session.display.info("%s holds a multi-platform index: Docker 24 and older cannot docker load it (Docker 25 and "
                         "later, podman, skopeo and containerd can); for them, %s", "the archive" if path == "-"
                         else path, instead)


def _check_stdout_output(args) -> None:
    """``-o -``: the archive fills standard output, so nothing else may go there, and not to a terminal."""
    if args.output != "-":
        return
    if args.json:
        raise UsageError("--json prints to standard output, which -o - fills with the archive; write a file with -o")
    if sys.stdout is None:
        raise ZeroImageError("-o - writes the archive to standard output, which is closed")
    if sys.stdout.isatty():
        raise UsageError("-o - writes the archive to standard output, which is a terminal; "
                         "pipe it (| docker load) or redirect it (> app.tar)")


def _result_to_stderr(args, digest: str) -> None:
    """With ``-o -`` the result (the digest) goes to stderr, unless -q."""
    sys.stdout.flush()
    if not args.quiet:
        print(digest, file=sys.stderr)


def _print_json(value) -> None:
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
    value["referrers"] = [{"subject": a.manifest["subject"]["digest"], "digest": a.digest,
                           "artifactType": a.manifest.get("artifactType", "")} for a in result.referrers]
    if result.image_id is not None:
        value["loaded"], value["imageId"] = result.path, result.image_id
    else:
        value["reference" if pushed else "path"] = result.path
    if result.name is not None:
        value["name"] = result.name
    return value


def cmd_pull(args, session: Session) -> int:
    _check_stdout_output(args)
    saved = pull(args.ref, args.output, platform=args.platform, all_platforms=args.all_platforms, load=args.load,
                 session=session)
    if args.load:
        _say_loaded(session, saved.where, saved.image_id)
    else:
        _say_wrote(session, args.output, saved.where, saved.name)
        if saved.media_type in INDEX_TYPES:
            _note_index_archive(session, args.output or saved.where, "pull one platform's image (a single --platform), "
                                "or --load it")
        # pull keeps to images; copy is the verb that takes what refers to them too
        chosen = saved.source_digest is not None and saved.source_digest != saved.digest     # platforms of an index
        _note_referrers_left(session, args.ref, saved, "zeroimage copy --referrers%s %s %s" % (
            "".join(" --platform %s" % p for p in saved.platforms) if chosen else "", args.ref,
            saved.where if args.output != "-" else "FILE.tar"))
    if args.output == "-":
        _result_to_stderr(args, saved.digest)
    elif args.json:
        value = {"reference": str(Reference.parse(args.ref)), "digest": saved.digest, "mediaType": saved.media_type,
                 "platforms": saved.platforms}
        if args.load:
            value.update(loaded=saved.where, imageId=saved.image_id)
        else:
            value.update(path=saved.where, size=os.path.getsize(saved.where))
        _print_json(value)
    else:
        print(saved.digest)
    return 0


def cmd_push(args, session: Session) -> int:
    saved = push_archive(args.archive, args.ref, media_types=args.media_types, referrers=args.referrers,
                         session=session)
    _note_referrers_left(session, args.archive, saved)
    if args.json:
        _print_json({"reference": saved.where, "digest": saved.digest, "mediaType": saved.media_type,
                     "platforms": saved.platforms})
    else:
        print(saved.where)
    return 0


def cmd_copy(args, session: Session) -> int:
    if args.all_tags:
        if args.platform:
            raise UsageError("`all_tags` copies every tag byte for byte, each with every platform; give it "
                             "without `platform`")
        return cmd_sync(args, session)
    engine = engine_image(args.src)     # (the engine's image, an archive, else a reference)
    if engine is not None:
        source = str(engine)
    elif archive_target(args.src) is None:
        try:
            source = str(Reference.parse(args.src))
        except InvalidReferenceError as e:
            raise UsageError("SRC: %s (and there is no such archive)" % e) from e
    else:
        source = args.src
    saved = copy(args.src, args.dst, platforms=args.platform, referrers=args.referrers, session=session)
    target = copy_destination(args.dst)
    to_engine = isinstance(target, EngineImage)
    to_archive = not to_engine and not isinstance(target, Reference)
    if to_engine:
        _say_loaded(session, saved.where, saved.image_id)
    elif to_archive:
        session.display.info("wrote %s: image %s", saved.where, saved.name)
        if saved.media_type in INDEX_TYPES:
            _note_index_archive(session, saved.where, "copy one platform's image (a single --platform)")
    _note_referrers_left(session, args.src, saved)
    if args.json:
        value = {"source": source, "sourceDigest": saved.source_digest, "digest": saved.digest,
                 "mediaType": saved.media_type, "platforms": saved.platforms}
        if to_engine:
            value.update(loaded=saved.where, imageId=saved.image_id)
        elif to_archive:
            value.update(path=saved.where, size=os.path.getsize(saved.where))
        else:
            value.update(reference=saved.where)
        _print_json(value)
    else:
        print(saved.where if isinstance(target, Reference) else saved.digest)
    return 0


def cmd_sync(args, session: Session) -> int:
    """sync, and copy --all-tags: the tags said as they go and summed up by ``sync``; --json prints
    the result; a tag that failed makes the exit status 1, with one last line naming them."""
    synced = sync(args.src, args.dst, referrers=args.referrers, session=session)
    if args.json:
        words = session.display.words or (lambda text: text)
        tags = [dict({"tag": t.tag, "outcome": t.outcome},
                     **({"error": words(t.error)} if t.error is not None else {"digest": t.digest}))
                for t in synced.tags]
        _print_json(dict(synced.counts, source=synced.source, destination=synced.destination, tags=tags,
                         skipped=list(synced.skipped)))
    failed = [t.tag for t in synced.failed]
    if failed:
        raise ZeroImageError("%d of %d tags failed: %s%s" % (len(failed), len(synced.tags), ", ".join(failed[:10]),
                                                            ", ..." if len(failed) > 10 else ""))
    return 0


def _note_referrers_left(session: Session, source: str, saved: Saved, way: str = "--referrers") -> None:
    """One line when the source has referrers (SBOMs, signatures) that stayed behind, and ``way``,
    what copies them."""
    left = saved.referrers_left
    if left:
        kinds = sorted(set(left))
        session.display.info("%s has %d referrer%s (%s) that %s not copied; %s copies %s", source, len(left),
                             "" if len(left) == 1 else "s", ", ".join(kinds[:3]) + (", ..." if len(kinds) > 3 else ""),
                             "was" if len(left) == 1 else "were", way, "it" if len(left) == 1 else "them")


def cmd_export(args, session: Session) -> int:
    check_image_word(args.target)
    output = args.output or "-"
    if output == "-" and args.json:     # (not _check_stdout_output's words: export writes no archive)
        raise UsageError("--json says what export wrote to a file; the tar goes to standard output unless "
                         "-o FILE names one")
    if output == "-" and sys.stdout is not None and sys.stdout.isatty():
        raise UsageError("export writes the tar to standard output, which is a terminal; write a file with -o FILE, "
                         "or pipe it (| tar -t)")
    args.output = output
    _check_stdout_output(args)
    exported = export(args.target, output, platform=args.platform, session=session)
    if output == "-":
        _result_to_stderr(args, exported.digest)
    else:
        if args.json:
            _print_json({"digest": exported.digest, "path": exported.where, "entries": exported.entries,
                         "size": exported.size, "platform": exported.platform})
        else:
            print(exported.digest)
    return 0


def _file_line(file: FileEntry) -> str:
    """One entry as ``tar -tv`` shows it: mode, owner, size, path, and where a link leads."""
    kind = {"dir": stat.S_IFDIR, "symlink": stat.S_IFLNK, "char": stat.S_IFCHR, "block": stat.S_IFBLK,
            "fifo": stat.S_IFIFO}.get(file.kind, stat.S_IFREG)
    mode = stat.filemode(kind | file.mode)
    if file.kind == "hardlink":
        mode = "h" + mode[1:]
    path = outside_text(file.path, 1000) + ("/" if file.kind == "dir" else "")
    if file.kind == "symlink":
        path += " -> " + outside_text(file.linkname, 1000)
    elif file.kind == "hardlink":
        path += " link to " + outside_text(file.linkname, 1000)
    return "%s %s %10d %s" % (mode, "%d/%d" % (file.uid, file.gid), file.size, path)


def cmd_inspect(args, session: Session) -> int:
    mode = "json" if args.json and args.mode == "summary" else args.mode
    check_image_word(args.target)
    _check_build_info(args.build_info, mode)
    if mode == "files":
        files = image_files(args.target, platform=args.platform, session=session)
        if args.json:
            _print_json([file._asdict() for file in files])
        else:
            for file in files:
                print(_file_line(file))
        return 0
    output = inspect(args.target, platform=args.platform, mode=mode, build_info=args.build_info, session=session)
    if mode == "summary":       # the line saying build info was not read names options: as flags here
        words = session.display.words or _cli_words()
        output = "\n".join(words(line) if line.startswith(_BUILD_INFO_UNREAD) else line for line in output.split("\n"))
    if mode == "json":
        _print_json(json.loads(output))
    elif mode in ("raw", "config", "sbom"):     # the bytes as stored: | sha256sum gives the digest
        sys.stdout.flush()
        binary = getattr(sys.stdout, "buffer", None)
        if binary is None:                      # a text stream put in its place (a caller's StringIO)
            sys.stdout.write(output)
        else:
            binary.write(output.encode("utf-8"))
        if sys.stdout.isatty():                 # (a prompt after it, on a terminal)
            sys.stdout.write("\n")
        sys.stdout.flush()
    else:
        print(output)
    return 0


def _read_as_hint(args) -> str:
    """For an error from a registry: how a word that looks like a mistyped file name (``hello.tr``: no
    slash, an extension, no such file here) was read: as a Docker Hub image. (A file of that name that
    is here gets ``_note_on_disk``'s note; a word that looks like a path, ``c.tar``, was read as one.)"""
    for field in ("target", "src", "dst", "ref", "base"):
        word = getattr(args, field, None)
        if not isinstance(word, str) or not re.fullmatch(r"[^/:@]+\.[A-Za-z][A-Za-z0-9]{0,5}", word) \
                or os.path.lexists(word) or looks_like_path(word):
            continue
        try:
            ref = Reference.parse(word)
        except InvalidReferenceError:
            continue
        if ref.registry != DOCKER_HUB:
            continue
        return "(read %r as the image %s; no file %s here)" % (word, ref, word)
    return ""


def _stdin_line() -> str:
    try:
        return sys.stdin.readline()
    except UnicodeDecodeError as e:
        raise UsageError("what stdin gave is not UTF-8 text") from e


def cmd_login(args, session: Session) -> int:
    username, password = args.username, args.password
    if password is not None:
        session.display.warning("a password given with -p lands in your shell history; prefer --password-stdin")
    if username is None:
        if not sys.stdin.isatty():
            raise UsageError("no username: give -u USER (and --password-stdin for the password)")
        sys.stderr.write("Username: ")       # prompts go to stderr: stdout is for results
        sys.stderr.flush()
        username = _stdin_line().strip()
    if args.password_stdin:
        password = _stdin_line().rstrip("\r\n")
    elif password is None:
        if not sys.stdin.isatty():
            raise UsageError("no password: give --password-stdin and pipe it in")
        password = getpass.getpass("Password: ")
    if not username or not password:
        raise UsageError("username and password must not be empty")
    where = login(args.registry, username, password, session=session)
    session.display.info("login succeeded; credentials stored in %s", where)
    return 0


def cmd_logout(args, session: Session) -> int:
    host = registry_host(args.registry)
    if logout(args.registry, session=session):
        session.display.info("removed the credentials for %s", host)
    else:
        session.display.info("not logged in to %s", host)
    return 0


def cmd_check_auth(args, session: Session) -> int:
    result = check_auth(args.ref, push=args.push, session=session)
    for action, allowed in result.items():
        print("%s: %s" % (action, "allowed" if allowed else "denied"))
    return 0 if all(result.values()) else 1


def cmd_tags(args, session: Session) -> int:
    tags = list_tags(args.repository, session=session)
    session.display.info("%d tag%s", len(tags), "" if len(tags) == 1 else "s")
    if args.json:
        _print_json(tags)
    else:
        for tag in tags:
            print(tag)
    return 0


def cmd_digest(args, session: Session) -> int:
    check_image_word(args.target)
    digest = resolve_digest(args.target, platform=args.platform, session=session)
    if args.json:
        archive = archive_target(args.target)
        value = {"digest": digest}
        value.update({"path": args.target} if archive else {"reference": str(Reference.parse(args.target))})
        if args.platform is not None:
            value["platform"] = str(args.platform)
        _print_json(value)
    else:
        print(digest)
    return 0


def cmd_tag(args, session: Session) -> int:
    tagged = tag_image(args.ref, args.tags, session=session)
    if args.json:
        _print_json({"source": str(Reference.parse(args.ref)), "digest": tagged[0].rsplit("@", 1)[1],
                     "references": tagged})
    else:
        for reference in tagged:
            print(reference)
    return 0


def cmd_delete(args, session: Session) -> int:
    ref = Reference.parse(args.ref, default_tag=None)
    digest = delete_image(args.ref, session=session)
    deleted = "%s@%s" % (ref.name, digest)
    was = " (was %s; any other tag of that manifest went with it)" % ref.replace(digest=None) if not ref.digest else ""
    session.display.info("deleted %s%s", deleted, was)
    if args.json:
        _print_json({"deleted": deleted, "digest": digest, "reference": str(ref)})
    else:
        print(deleted)
    return 0


class _Terminated(BaseException):
    """SIGTERM, raised like Ctrl-C so every atomic output cleans up on the way out."""


def _on_sigterm(signum, frame):
    raise _Terminated()


class _StopSignals:
    """Ctrl-C and SIGTERM for the command line, while a command runs in the main thread.

    Python raises a signal's exception in the main thread, but where Python cannot raise (a
    finalizer, a weakref callback inside an import) it prints "Exception ignored" and goes on, and
    the work would finish as if nothing happened. So the signal is also written to a wakeup pipe (by
    the C handler, before any Python code runs) and a watcher thread cancels the session: the next
    chunk or request stops. The process's handlers, wakeup fd and unraisable hook are restored on
    close, and an exception ignored for a stop signal is not printed. The wakeup "pipe" is a socket
    pair: Windows takes only a socket as the wakeup fd (a pipe is refused with ValueError)."""

    def __init__(self, session: "Session"):
        self.session = session
        self.received = None
        self._read, self._write = socket.socketpair()
        try:
            self._write.setblocking(False)
            self._previous_wakeup = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        except BaseException:
            self._read.close()
            self._write.close()
            raise
        self._previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
        self._previous_hook = sys.unraisablehook
        sys.unraisablehook = self._unraisable
        self._thread = threading.Thread(target=self._watch, name="zeroimage-signals", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while True:
            try:
                data = self._read.recv(64)
            except OSError:         # (Windows: the pair's other end reset as it closed)
                return
            if not data:
                return
            stops = [signum for signum in data if signum in _STOP_SIGNALS]
            if stops:
                self.received = stops[0] if self.received is None else self.received
                self.session.cancel()

    def _unraisable(self, unraisable) -> None:
        if not isinstance(unraisable.exc_value, (KeyboardInterrupt, _Terminated)):
            self._previous_hook(unraisable)

    def close(self) -> None:
        signal.set_wakeup_fd(self._previous_wakeup)
        signal.signal(signal.SIGTERM, self._previous_sigterm)
        sys.unraisablehook = self._previous_hook
        self._write.close()         # the watcher reads the end of the stream and returns
        self._thread.join()
        self._read.close()


def _stop_signal(error: BaseException) -> Optional[int]:
    """The stop signal behind an exception: its own, or a cause's (a signal that lands inside an
    import of a C module comes out as ImportError or similar with the interruption as its cause)."""
    while error is not None:
        if isinstance(error, KeyboardInterrupt):
            return signal.SIGINT
        if isinstance(error, _Terminated):
            return signal.SIGTERM
        error = error.__cause__ or error.__context__
    return None


def _report_stop(signum: int) -> int:
    print("zeroimage: %s" % ("interrupted" if signum == signal.SIGINT else "terminated"), file=sys.stderr)
    return 128 + signum


# Library functions that are not their verb. (Library keywords are argparse's dests of their flags;
# a plural keyword's singular dest and ``no_X`` for ``X=False`` are found too.)
_CLI_VERBS = {"push_archive": "push", "list_tags": "tags", "resolve_digest": "digest", "tag_image": "tag",
              "delete_image": "delete"}


def _cli_actions(parser: argparse.ArgumentParser,
                 verbs: Dict[str, str]) -> Dict[Union[str, Tuple[str, str]], argparse.Action]:
    """Each dest of the parser and its commands' parsers -> its action with a long option (the first
    met: one dest is one option everywhere); ``verbs`` gets each command (function name -> verb)."""
    actions = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for verb, command in action.choices.items():
                verbs[verb.replace("-", "_")] = verb
                for dest, known in _cli_actions(command, verbs).items():
                    actions.setdefault(dest, known)
        elif any(o.startswith("--") for o in action.option_strings):
            if action.nargs == 0:       # `build_info=True`, `build_info=False`, `mode=sbom`: the flag that sets it
                actions.setdefault((action.dest, str(action.const)), action)
            if type(action) is not argparse._StoreConstAction:
                actions.setdefault(action.dest, action)     # (inspect's --raw, --config, --sbom share one dest)
    return actions


def _cli_words(parser: Optional[argparse.ArgumentParser] = None) -> Callable[[str], str]:
    """The command line's wording of a message (see the Errors section): each `option` and
    `option=VALUE` as its flag, each `function(ARGS)` as the command; anything else as it is.
    ``parser``: the one the command was parsed with (its own options first: defining every
    command's takes longer than a quick command does), every command's when a name is not there."""
    verbs, actions, whole = dict(_CLI_VERBS), {}, [parser is None]

    def learn(from_parser: argparse.ArgumentParser) -> None:
        for key, action in _cli_actions(from_parser, verbs).items():
            actions.setdefault(key, action)

    def flag(name: str, value: Optional[str]) -> Optional[str]:
        if (name, value) in actions:
            return actions[name, value].option_strings[0]
        for dest, negated in ((name, False), (name[:-1], False), ("no_" + name, True)):
            action = actions.get(dest)
            if action is None or negated and value != "False":
                continue
            option = action.option_strings[0]       # as --help writes it first: -o, --tzdata
            if negated or value is None or (action.nargs == 0 and value == str(action.const)):
                return option
            if action.nargs == 0:       # a flag that sets another value (--no-build-info, for `build_info=True`)
                continue
            return "%s %s" % (option, value)
        return None

    def said(match, strict: bool) -> Optional[str]:
        """The words for one `...`; None for an option not known (yet), or, ``strict``, a call naming one."""
        name, args, value = match.groups()
        if args is None:
            return flag(name, value)
        if name not in verbs:
            return None
        words = ["zeroimage", verbs[name]]
        for arg in filter(None, (a.strip() for a in args.split(","))):
            keyword = re.fullmatch(r"([a-z][a-z0-9_]*)=(.*)", arg)
            option = flag(*keyword.groups()) if keyword else arg
            if option is None and strict:
                return None
            words.append(option or arg)
        return " ".join(words)

    def word(match) -> str:
        if not actions:         # made at the first message that names an option
            learn(parser or build_parser())
        found = said(match, not whole[0])
        if found is None and not whole[0]:      # another command's option: every command's parser
            whole[0] = True
            learn(build_parser())
            found = said(match, False)
        return found if found is not None else match.group(0)

    return lambda text: _NAMED_RE.sub(word, text)


def _error_line(error: ZeroImageError, words: Optional[Callable[[str], str]] = None) -> str:
    """An error as the command line says it: its message, then the advice its hint kind names, with
    the options they name as flags."""
    advice = error.advice
    return outside_text((words or _cli_words())("%s%s" % (error, "; " + advice if advice else "")), 4000)


class _Stdout:
    """sys.stdout while a command runs: what it fails to write there (a full disk), text or an archive
    (its ``buffer``), is marked as standard output's, for main() to say so ("standard output: No space
    left on device"), as it says a file's name; anything else is the stream's own."""

    def __init__(self, stream):
        self._stream = stream

    def __getattr__(self, name: str):
        value = getattr(self._stream, name)
        return _Stdout(value) if name == "buffer" else value

    def _marked(self, method: str, *args):
        try:
            return getattr(self._stream, method)(*args)
        except OSError as e:
            e.zeroimage_stdout = True
            raise

    def write(self, data):
        return self._marked("write", data)

    def writelines(self, lines) -> None:
        return self._marked("writelines", lines)

    def flush(self) -> None:
        return self._marked("flush")


def _draws_escapes(environ) -> bool:
    """Whether a terminal on stderr draws the escapes that redraw progress lines: everywhere but a
    Windows console that did not ask for them (Windows Terminal, mintty, VS Code, ConEmu say so)."""
    return not _WINDOWS or any(environ.get(name) for name in ("WT_SESSION", "TERM", "TERM_PROGRAM", "ConEmuANSI"))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line; returns the exit status and leaves the process as it found it (signal
    handlers, logging), so it can be called more than once."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # the command is the first word that is no option (no option before it takes a value)
    parser = build_parser(next((arg for arg in argv if not arg.startswith("-")), ""))
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    if sys.stdout is None:          # started with stdout closed (>&-): what the command prints would vanish
        print("zeroimage: error: standard output is closed; redirect it (>/dev/null) instead", file=sys.stderr)
        return 1
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:         # --help, --version and usage errors
        return e.code if isinstance(e.code, int) else 2
    except OSError as e:            # --help or --version could not be written (_Parser._print_message)
        return _stdout_lost(e)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    if args.quiet and args.verbose:     # one before the command, the other after it
        print(args.parser.short_usage(), file=sys.stderr)
        print("zeroimage %s: error: -q and -v cannot be given together" % args.command, file=sys.stderr)
        return 2
    quiet, verbose = getattr(args, "quiet", False), getattr(args, "verbose", False)
    words = _cli_words(parser)     # this command's options, every command's when a message names another's
    drawn = sys.stderr.isatty() and _draws_escapes(os.environ)
    display = Display(sys.stderr, "off" if quiet else "tty" if drawn else "plain",
                      WARNING_FAILS if quiet else DEBUG if verbose else INFO, words)
    debug = os.environ.get("ZEROIMAGE_DEBUG") == "1"
    session = Session(insecure=getattr(args, "insecure", False), display=display)
    stops = _StopSignals(session) if threading.current_thread() is threading.main_thread() else None
    stdout = sys.stdout
    if stops is not None:       # (the process's stdout: the main thread's to change)
        sys.stdout = _Stdout(stdout)
    try:
        with session:
            code = args.func(args, session)
            summary = display.summary()
        if stops is not None and stops.received is not None:
            return _report_stop(stops.received)
        if summary and not quiet:
            display.info("%s", summary)
        return code
    except BaseException as e:      # noqa: B902 -- sorted out below; anything else goes on up
        if _pipe_closed(e):         # stdout's reader went away (| head): stop quietly, as cat does
            _stdout_to_devnull()
            return 141
        signum = _stop_signal(e)
        if signum is None and stops is not None:
            signum = stops.received         # the work stopped because the session was cancelled
        if signum is not None and not (debug and isinstance(e, Exception)):
            return _report_stop(signum)
        if isinstance(e, ZeroImageError) and not debug:
            if e.exit_code == 2:
                print(getattr(args, "parser", parser).short_usage(), file=sys.stderr)
            hint = _read_as_hint(args) if isinstance(e, (RegistryError, NetworkError)) else ""
            print("zeroimage: error: %s%s" % (_error_line(e, words), " " + outside_text(hint, 4000) if hint else ""),
                  file=sys.stderr)
            return e.exit_code
        if isinstance(e, OSError) and getattr(e, "zeroimage_stdout", False) and not debug:
            return _stdout_lost(e)      # (a full disk: said as --help's is, and as _end_now's)
        if isinstance(e, OSError) and not debug:
            where = " (%s)" % e.filename if e.filename else ""
            print("zeroimage: error: %s" % outside_text("%s%s" % (e.strerror or e, where), 4000),
                  file=sys.stderr)
            return 1
        raise
    finally:
        if stops is not None:
            sys.stdout = stdout
        display.close()
        if stops is not None:
            stops.close()


def _run_program() -> int:
    """zeroimage as a program (``python3 zeroimage.py``, ``zeroimage.pyz``): ``main()``, with Ctrl-C and
    SIGTERM raised as exceptions while it works (every output cleans up on the way out), and ending
    the process at once before and after (``_stop_at_once``: imports, interpreter shutdown, thread
    joins), so a stop signal at any moment exits 130 or 143, leaves nothing behind and prints no
    traceback. Ignored signals stay ignored."""
    try:
        try:
            for signum, handler in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, _on_sigterm)):
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    signal.signal(signum, handler)
            code = _exit_soon(main())
        finally:
            _stop_signals_at_once()
    except BaseException as e:      # noqa: B902 -- a stop signal outside main()'s own handling
        signum = _stop_signal(e)
        if signum is None:
            raise
        return _exit_soon(_report_stop(signum))
    if code in (128 + signal.SIGINT, 128 + signal.SIGTERM) or sys.getprofile() or sys.gettrace():
        return code         # (a profiler or coverage writes its report at Python's ending)
    _end_now(code)


def _stdout_to_devnull() -> None:
    """Point stdout's descriptor at /dev/null, once what was printed cannot be written: Python's own
    last flush then has nowhere to fail."""
    with contextlib.suppress(OSError, ValueError):
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, sys.stdout.fileno())
        finally:
            os.close(null)


def _stdout_lost(error: OSError, code: int = 0) -> int:
    """The exit status once what was printed could not be written to stdout: 141 when its reader went
    away (quietly, as cat), else ``code`` or 1, said in one line. Nothing more is written to it."""
    _stdout_to_devnull()
    if _pipe_closed(error):
        return 141
    with contextlib.suppress(OSError, ValueError, AttributeError):
        print("zeroimage: error: standard output: %s" % outside_text(error.strerror or error, 300), file=sys.stderr)
    return code or 1


def _end_now(code: int) -> None:
    """End the process with ``code`` once main() is done: what it printed flushed, nothing else left
    to do (every file and connection closed on the way out of main, every thread joined). Python's
    own ending (its modules torn down one by one, a last garbage collection) took longer than
    anything a quick command did (30-60 ms), so it is skipped."""
    try:
        sys.stdout.flush()
    except (ValueError, AttributeError):        # closed or None: nothing was left to write
        pass
    except OSError as e:        # what was printed last is lost (a full disk): said, as an error
        code = _stdout_lost(e, code)
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.flush()
    for tmp in list(_UNFINISHED):       # none by now; if one were, what the finalizers at exit would remove
        _remove_quietly(tmp)
    os._exit(code)


EXIT_GRACE = 10.0       # seconds Python's own exit gets after a stop signal (thread joins, atexit: finalizers remove temporaries)


def _exit_soon(code: int) -> int:
    """``code``, and when it is a stop signal's, a deadline for the interpreter's exit: a thread join
    that the signal broke into can leave the thread's lock taken (Python before 3.13), and the join
    at exit would then wait forever. What zeroimage wrote is cleaned up by now, or by finalizers at
    exit; a temporary that both missed is removed before the process ends itself."""
    if code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        threading.Thread(target=_exit_after_grace, args=(code,), name="zeroimage-exit", daemon=True).start()
    return code


def _exit_after_grace(code: int) -> None:
    time.sleep(EXIT_GRACE)
    for tmp in list(_UNFINISHED):       # what the finalizers at exit would have removed
        _remove_quietly(tmp)
    os._exit(code)


if __name__ == "__main__":
    sys.exit(_run_program())
