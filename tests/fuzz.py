"""A seeded mutation fuzzer for zeroimage's file inputs (issue 21): OCI archives (tar), OCI layout
directories, ``docker save`` archives and ELF programs with build info.  Standard library only.

A case is reproducible from (surface, seed, index): ``make_case`` draws a base input and a list of
mutations from ``random.Random("SURFACE/SEED/INDEX")``; each mutation carries its own sub-seed, so a
case can be shrunk by leaving mutations out (``keep``) and the others still do the same thing.
``run_case`` writes the input and runs every verb that reads that surface in-process through
``zeroimage.main``; ``problems`` says what broke the rules (an exit other than 0, 1, 2; an exception
or traceback; too slow; too much memory; an ``inspect --json`` that is not JSON; a half-written output).

From a shell (maintainers):

    python3 tests/fuzz.py run SURFACE SEED INDEX          # run one case, print each verb's result
    python3 tests/fuzz.py write SURFACE SEED INDEX PATH   # write its input to PATH
    python3 tests/fuzz.py shrink SURFACE SEED INDEX PATH  # leave out mutations while it still fails alike; write
    python3 tests/fuzz.py sweep SURFACE SEED COUNT        # run COUNT cases, print the distinct problems

tests/test_fuzz.py runs it in the test suite.
"""

import bz2
import contextlib
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import resource
import shutil
import signal
import struct
import sys
import tarfile
import tempfile
import time
import traceback
import warnings
import zlib
from random import Random

HERE = os.path.dirname(os.path.abspath(__file__))
for _path in (HERE, os.path.dirname(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import zeroimage  # noqa: E402
from binaries import INFO_END, INFO_START, MODINFO, RUST, craft_elf, go_inline, go_pointers, \
    rust_packages  # noqa: E402
from imagetools import DOCKER, OCI, DockerSaveBuilder, LayoutBuilder, ref, zstd_frame, zstd_unframe  # noqa: E402

SURFACES = ("oci-archive", "oci-layout", "docker-save", "elf")
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"      # a zstd layer (written by hand: imagetools.zstd_frame), read where Python can
# one verb on one small input takes 10-50 ms: 15 s is generous for a loaded 2-core machine
VERB_SECONDS = float(os.environ.get("ZEROIMAGE_FUZZ_VERB_SECONDS", "15"))
RSS_LIMIT_MB = 400
EPOCH = "1700000000"


# ---- the model of an archive: entries, written as a tar or a directory ----


class Entry:
    """One member: kind "file", "dir", "symlink", "link" (hard) or "fifo"; ``pax``: extra PAX records."""

    def __init__(self, name, data=b"", kind="file", linkname="", mode=0o644, pax=None):
        self.name, self.data, self.kind, self.linkname, self.mode, self.pax = name, data, kind, linkname, mode, pax

    def copy(self):
        return Entry(self.name, self.data, self.kind, self.linkname, self.mode, dict(self.pax) if self.pax else None)


def _entries_of_tar(data):
    out = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            if m.isfile():
                out.append(Entry(m.name, tar.extractfile(m).read(), mode=m.mode))
            elif m.isdir():
                out.append(Entry(m.name, b"", "dir", mode=m.mode))
            elif m.issym():
                out.append(Entry(m.name, b"", "symlink", m.linkname, m.mode))
            elif m.islnk():
                out.append(Entry(m.name, b"", "link", m.linkname, m.mode))
    return out


def tar_bytes(entries, fmt=tarfile.GNU_FORMAT):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape") as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.mode, info.mtime = e.mode & 0o7777, 1700000000
            if e.pax and fmt == tarfile.PAX_FORMAT:
                info.pax_headers = dict(e.pax)
            if e.kind == "file":
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "link": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE}[e.kind]
            info.linkname = e.linkname
            tar.addfile(info)
    return raw.getvalue()


def write_dir(entries, path):
    """The entries as a directory; names that would leave it are skipped (this writes to disk)."""
    os.makedirs(path)
    for e in entries:
        parts = [p for p in e.name.split("/") if p not in ("", ".")]
        if not parts or ".." in parts or e.name.startswith("/") or "\0" in e.name:
            continue
        full = os.path.join(path, *parts)
        try:
            os.makedirs(os.path.dirname(full), exist_ok=True)
            if os.path.lexists(full) and not os.path.isdir(full):
                os.unlink(full)
            if e.kind == "dir":
                os.makedirs(full, exist_ok=True)
            elif os.path.isdir(full) and not os.path.islink(full):
                continue
            elif e.kind == "file":
                with open(full, "wb") as f:
                    f.write(e.data)
            elif e.kind == "symlink":
                os.symlink(e.linkname, full)
            elif e.kind == "fifo":
                os.mkfifo(full)
            elif e.kind == "link":
                target = os.path.join(path, e.linkname)
                if os.path.isfile(target) and os.path.realpath(target).startswith(os.path.realpath(path) + os.sep):
                    os.link(target, full)
        except (OSError, ValueError, UnicodeEncodeError):
            continue
    return path


# ---- the bases: small valid inputs the mutations start from ----


def _sha(data):
    return hashlib.sha256(data).hexdigest()


PROGRAM = craft_elf([(".text", b"\x90" * 40), (".go.buildinfo", go_inline())])
RUST_PROGRAM = craft_elf([(".text", b"\0" * 16), (".dep-v0", rust_packages(RUST))], 183)


def _base_layers(program=PROGRAM):
    return [[("bin", "dir", None, 0o755), ("bin/app", "file", program, 0o755), ("bin/sh", "symlink", "app", 0o777),
             ("etc", "dir", None, 0o755), ("etc/os-release", "file", b"ID=fuzz\n", 0o644)],
            [("etc/hello", "file", b"hello\n", 0o644), ("etc/os-release", "file", b"ID=fuzz2\n", 0o644),
             ("etc/.wh.old", "file", b"", 0o644)]]


CONFIG = {"config": {"Entrypoint": ["/bin/app"], "Cmd": ["-v"], "Env": ["PATH=/bin", "A=1"], "User": "1000:1000",
                     "WorkingDir": "/srv", "ExposedPorts": {"80/tcp": {}}, "Labels": {"org.example": "yes"}},
          "created": "2024-01-01T00:00:00Z", "history": [{"created_by": "fuzz"}, {"created_by": "fuzz 2"}]}


def _layout_base(kind):
    b = LayoutBuilder()
    if kind == "oci":
        top = [ref(b.image(_base_layers(), CONFIG), "base:1")]
    elif kind == "docker":
        top = [ref(b.image(_base_layers(), CONFIG, family=DOCKER), "base:1")]
    elif kind == "zstd":
        top = [ref(b.image(_base_layers(), CONFIG, family=dict(OCI, layer=OCI["layer"].replace("gzip", "zstd"))),
                   "base:1")]
    elif kind == "index":
        amd = b.image(_base_layers(), CONFIG)
        arm = b.image(_base_layers(RUST_PROGRAM), CONFIG, platform=("linux", "arm64", "v8"))
        top = [ref(b.index([amd, arm]), "multi:1")]
    else:                       # an image with an SBOM attached, as build --sbom writes it into a layout
        desc = b.image(_base_layers(), CONFIG)
        spdx = json.dumps({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "app",
                           "dataLicense": "CC0-1.0", "documentNamespace": "https://example.invalid/spdx/1",
                           "creationInfo": {"created": "2024-01-01T00:00:00Z", "creators": ["Tool: fuzz"]},
                           "packages": [{"SPDXID": "SPDXRef-Package-app", "name": "app", "versionInfo": "1.0",
                                         "downloadLocation": "NOASSERTION"}],
                           "relationships": [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                                              "relatedSpdxElement": "SPDXRef-Package-app"}]}).encode()
        empty = b.add(b"{}")
        sbom = b.add(spdx)
        artifact = json.dumps({"schemaVersion": 2, "mediaType": OCI["manifest"], "artifactType": "application/spdx+json",
                               "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
                               "layers": [{"mediaType": "application/spdx+json", "digest": sbom, "size": len(spdx)}],
                               "subject": {"mediaType": desc["mediaType"], "digest": desc["digest"], "size": desc["size"]}
                               }).encode()
        b.add(artifact)
        top = [ref(desc, "base:1")]
    return [Entry(name, data) for name, data in b.files(top)]


def _docker_save_base(kind):
    b = DockerSaveBuilder()
    if kind == "classic":
        b.image(_base_layers(), CONFIG, tags=["base:1"])
        b.image(_base_layers()[:1], CONFIG, tags=["again:1"])          # its layer repeats: saved as a link
    elif kind == "podman":
        b.image(_base_layers(), CONFIG, tags=["localhost/base:1"], podman=True)
    elif kind == "zstd":
        b.image(_base_layers(), CONFIG, tags=["base:1"], compress="zstd")
    else:
        b.image(_base_layers(), CONFIG, tags=["base:1"], compress=True)
    path = tempfile.mktemp(prefix="zeroimage-fuzz-", suffix=".tar")
    try:
        b.write(path)
        with open(path, "rb") as f:
            return _entries_of_tar(f.read())
    finally:
        os.unlink(path)


_BUILT = {}


def _zeroimage_built(kind="built"):
    """An archive zeroimage itself writes (index.json naming its index of the image and the image's SBOM,
    and manifest.json), from the layout base: what docker save 25+ and other tools get from it; for
    ``built-index``, a multi-platform index with an SBOM for each image.  Depends on the zeroimage under test."""
    if kind not in _BUILT:
        work = tempfile.mkdtemp(prefix="zeroimage-fuzz-")
        old = os.environ.get("SOURCE_DATE_EPOCH")
        try:
            os.environ["SOURCE_DATE_EPOCH"] = EPOCH
            base = os.path.join(work, "base.tar")
            with open(base, "wb") as f:
                f.write(tar_bytes(_layout_base("oci" if kind == "built" else "index")))
            programs = []
            for name, data in (("app", PROGRAM), ("app-arm64", RUST_PROGRAM)):
                programs.append(os.path.join(work, name))
                with open(programs[-1], "wb") as f:
                    f.write(data)
            out = os.path.join(work, "out.tar")
            what = programs[:1] if kind == "built" else ["linux/amd64=" + programs[0], "linux/arm64=" + programs[1]]
            with _captured() as (stdout, stderr):
                code = zeroimage.main(["build", "-q", "--sbom", "--from-archive", base, "-t", "app:1", "-o", out]
                                      + what)
            if code != 0:
                raise RuntimeError("zeroimage could not build the fuzzer's base: " + _text(stderr))
            with open(out, "rb") as f:
                _BUILT[kind] = _entries_of_tar(f.read())
        finally:
            if old is None:
                os.environ.pop("SOURCE_DATE_EPOCH", None)
            else:
                os.environ["SOURCE_DATE_EPOCH"] = old
            shutil.rmtree(work)
    return [e.copy() for e in _BUILT[kind]]


_BASE_CACHE = {}


def archive_base(name):
    if name not in _BASE_CACHE:
        if name.startswith("layout-"):
            _BASE_CACHE[name] = _layout_base(name[len("layout-"):])
        elif name.startswith("save-"):
            _BASE_CACHE[name] = _docker_save_base(name[len("save-"):])
        else:
            _BASE_CACHE[name] = _zeroimage_built(name)
    return [e.copy() for e in _BASE_CACHE[name]]


ARCHIVE_BASES = {
    "oci-archive": ("layout-oci", "layout-docker", "layout-index", "layout-sbom", "layout-zstd", "built",
                    "built-index"),
    "oci-layout": ("layout-oci", "layout-docker", "layout-index", "layout-sbom", "layout-zstd", "built",
                   "built-index"),
    "docker-save": ("save-classic", "save-podman", "save-gzip", "save-zstd", "built"),
}


# ---- values for JSON type swaps ----


def _deep(n):
    return "[" * n + "]" * n


ODD_STRINGS = ("", "x", "serde\udcff", "\ud800", "a\x00b", "\x1b[31mred\x1b[0m\r\n", "\u202eevil", "../../etc/passwd",
               "/abs/path", "sha256:", "sha256:" + "0" * 64, "sha512:" + "0" * 128, "sha256:XYZ", "md5:00",
               "x" * 5000, "\U0001f600", "linux/amd64", "application/vnd.oci.image.manifest.v1+json",
               "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.v2+json",
               "application/vnd.oci.image.layer.v1.tar+zstd", "text/plain", "1.0.0", "2.0.0", "http://u:secret@h/x")
ODD_NUMBERS = (0, -1, 1, 2, 7, 2 ** 31, 2 ** 63, 2 ** 64 + 1, -2 ** 63, 10 ** 30, 1.5, -0.0, 1e308)


def odd_value(rng, old):
    """A value of another type than ``old`` (or an odd one of the same type)."""
    if isinstance(old, str) and rng.random() < 0.5:
        return odd_text(rng, old)
    pick = rng.random()
    if pick < 0.3:
        return rng.choice(ODD_STRINGS)
    if pick < 0.5:
        return rng.choice(ODD_NUMBERS)
    if pick < 0.6:
        return rng.choice((True, False, None))
    if pick < 0.7:
        return rng.choice(([], [old], [1, "a"], [None], [old, old]))
    if pick < 0.8:
        return rng.choice(({}, {"k": old}, {"digest": old}, {"": None}))
    if pick < 0.85:
        return str(old)
    if pick < 0.9 and isinstance(old, (int, float)) and not isinstance(old, bool):
        return old + rng.choice((-1, 1, 512, -512, 2 ** 40))
    return _RawJSON(rng.choice((_deep(100000), "NaN", "Infinity", "-Infinity", "1e999", "1" * 5000,
                                '"\\ud800"', '"\\u0000"')))


ODD_CHARS = ("\udcff", "\ud800", "\x00", "\x1b[2J", "\x7f", "\u202e", "\u200b", "\n", "\r", "\t", "/", "..", ":", "@",
             "%", "%00", " ", "\\", "\"", "'", "#", "?", "\U0001f600", "\xff", "A" * 300)


def odd_text(rng, old):
    """``old`` with an odd character put in, or put in place of one (text from a binary or a file is
    anything: lone surrogates, control characters, bidi overrides, separators)."""
    i = rng.randrange(len(old) + 1)
    odd = rng.choice(ODD_CHARS[:2]) if rng.random() < 0.25 else rng.choice(ODD_CHARS)    # surrogates: often
    return old[:i] + odd + old[i + rng.choice((0, 1)):]


class _RawJSON:
    """JSON text put in as it is (what json.dumps cannot write: deep nesting, NaN spelled oddly)."""

    def __init__(self, text):
        self.text = text


def _dumps(doc, rng):
    """The document as JSON text, with _RawJSON pieces put in verbatim."""
    raws = []

    def swap(value):
        if isinstance(value, _RawJSON):
            raws.append(value.text)
            return "\0RAW%d\0" % (len(raws) - 1)
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value
    text = json.dumps(swap(doc), ensure_ascii=rng.random() < 0.8, indent=rng.choice((None, None, 2)))
    for i, raw in enumerate(raws):
        text = text.replace(json.dumps("\0RAW%d\0" % i), raw)
    return text.encode("utf-8", "surrogatepass")


def _nodes(doc, path=()):
    """Every (path, value) in a JSON document, the root included."""
    yield path, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _nodes(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _nodes(v, path + (i,))


def _set(doc, path, value):
    if not path:
        return value
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    parent[path[-1]] = value
    return doc


def mutate_json(doc, rng):
    """One edit anywhere in a decoded JSON document: a type swap, a deleted or added key, a removed or
    repeated list item.  Returns the new document (may be the same object)."""
    nodes = list(_nodes(doc))
    texts = [n for n in nodes if isinstance(n[1], str)]
    path, value = rng.choice(texts if texts and rng.random() < 0.4 else nodes)   # text: where odd strings go
    pick = rng.random()
    if pick < 0.7 or not path:
        return _set(doc, path, odd_value(rng, value))
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    key = path[-1]
    if isinstance(parent, dict):
        if pick < 0.85:
            del parent[key]
        else:
            parent[rng.choice(("x-extra", "mediaType", "digest", "size", "urls", "annotations", "platform",
                               "subject", "manifests", "layers", "config"))] = odd_value(rng, value)
    else:
        if pick < 0.8:
            del parent[key]
        elif pick < 0.9:
            parent.insert(key, value)
        else:
            parent.extend([value] * rng.choice((2, 50, 2000)))
    return doc


# ---- byte-level mutations ----


def flip_bits(data, rng):
    data = bytearray(data)
    if not data:
        return bytes(data)
    for _ in range(rng.choice((1, 1, 2, 3, 8))):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
    return bytes(data)


def truncate(data, rng):
    if not data:
        return data
    if rng.random() < 0.3 and len(data) > 512:     # at a block boundary: looks like an archive cut short
        return data[:rng.randrange(1, len(data) // 512 + 1) * 512]
    return data[:rng.randrange(len(data))]


def insert(data, rng):
    i = rng.randrange(len(data) + 1)
    what = rng.choice((bytes(rng.getrandbits(8) for _ in range(rng.choice((1, 3, 17)))),
                       b"\0" * 512, b"\xff" * 512, data[i:i + rng.choice((1, 100, 512))]))
    return data[:i] + what + data[i:]


def delete_run(data, rng):
    if not data:
        return data
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.choice((1, 4, 100, 512)):]


def overwrite_run(data, rng):
    if not data:
        return data
    i = rng.randrange(len(data))
    n = min(len(data) - i, rng.choice((1, 4, 16, 100)))
    return data[:i] + bytes([rng.choice((0, 0xff, rng.getrandbits(8)))]) * n + data[i + n:]


BYTE_MUTATORS = (flip_bits, truncate, insert, delete_run, overwrite_run)


def damage_compressed(data, rng):
    """Damage a gzip, zlib or zstd stream where it hurts: header flags, trailer, inside, its end, after it."""
    if not data:
        return data
    data = bytearray(data)
    pick = rng.random()
    is_gzip = data[:2] == b"\x1f\x8b"
    if pick < 0.2 and data[:4] == ZSTD_MAGIC and len(data) > 9:      # frame header, window, first block's type
        at = rng.choice((4, 5, 6))
        data[at] = rng.choice((0xff, 0x04, 0x20, 0xe0, 0x06, 0x07))
    elif pick < 0.2 and is_gzip and len(data) > 10:
        data[3] = rng.choice((0x04, 0x08, 0x10, 0x02, 0xff, 0xe0))     # FEXTRA/FNAME/FCOMMENT/FHCRC, reserved
    elif pick < 0.3 and len(data) > 8:
        data[-8:] = bytes(rng.getrandbits(8) for _ in range(8))          # gzip CRC and ISIZE (zlib: adler)
    elif pick < 0.4 and len(data) > 2:
        data[0:2] = rng.choice((b"\x78\x00", b"\x1f\x8c", b"\x78\xff", b"\x08\x1d", b"\x1f\x8b"))
    elif pick < 0.6:
        return bytes(data[:rng.randrange(len(data))])
    elif pick < 0.7:
        return bytes(data) + rng.choice((b"\0" * 8, b"garbage", bytes(data), gzip.compress(b"more", mtime=0)))
    else:
        i = rng.randrange(min(len(data), 10), len(data)) if len(data) > 10 else rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
    return bytes(data)


_BOMBS = {}


def bomb(kind):
    """Small compressed data that inflates to 256 MiB (made once a process)."""
    if kind == "zstd":
        return zstd_frame(rle=(0, 256 << 20))
    if kind not in _BOMBS:
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31 if kind == "gzip" else 15)
        chunk = b"\0" * (1 << 20) if kind == "gzip" else b" " * (1 << 20)
        parts = [compressor.compress(b'{"packages": [' if kind == "zlib" else b"")]
        parts += [compressor.compress(chunk) for _ in range(256)]
        parts.append(compressor.flush())
        _BOMBS[kind] = b"".join(parts)
    return _BOMBS[kind]


# ---- tar header edits (on the written archive) ----


def _tar_headers(data):
    """Offsets of the header blocks of a tar, walking the size fields (stops at damage or the end)."""
    offsets, at = [], 0
    while at + 512 <= len(data):
        block = data[at:at + 512]
        if block == b"\0" * 512:
            break
        try:
            size = tarfile.nti(block[124:136])
        except (tarfile.HeaderError, ValueError):
            offsets.append(at)
            break
        offsets.append(at)
        if size < 0:
            break
        at += 512 + (size + 511) // 512 * 512
    return offsets


def _base256(n, width):
    n = min(n, (1 << (8 * (width - 1))) - 1)
    return bytes([0x80]) + n.to_bytes(width - 1, "big") if n >= 0 else (n % (1 << (8 * width))).to_bytes(width, "big")


def _octal(n, width):
    return ("%0*o" % (width - 1, n)).encode()[:width - 1] + b"\0"


TAR_FIELDS = {"name": (0, 100), "mode": (100, 8), "uid": (108, 8), "gid": (116, 8), "size": (124, 12),
              "mtime": (136, 12), "chksum": (148, 8), "type": (156, 1), "linkname": (157, 100),
              "magic": (257, 8), "uname": (265, 32), "prefix": (345, 155)}


def _odd_name(rng, data, offsets):
    other = data[offsets[rng.randrange(len(offsets))]:][:100].split(b"\0")[0] if offsets else b"x"
    return rng.choice((b"../evil", b"/etc/passwd", b"./index.json", b"index.json", b"oci-layout", b"manifest.json",
                       b"blobs/sha256/" + b"0" * 64, b"blobs/sha256", b"blobs/sha256/../../x", b"", b"a" * 100,
                       b"\xff\xfe", b"blobs\\sha256\\x", b"a\x00b", other, other + b"/", b"./" + other))


def edit_tar_header(data, rng):
    offsets = _tar_headers(data)
    if not offsets:
        return flip_bits(data, rng)
    at = rng.choice(offsets)
    field = rng.choice(list(TAR_FIELDS) + ["size", "size", "name", "type"])
    start, width = TAR_FIELDS[field]
    header = bytearray(data[at:at + 512])
    if field == "size":
        old = 0
        with contextlib.suppress(tarfile.HeaderError, ValueError):
            old = tarfile.nti(bytes(header[124:136]))
        value = rng.choice((_base256(2 ** 87, 12), _base256(2 ** 63, 12), _base256(2 ** 62, 12), _base256(-1, 12),
                            _base256(old + 1, 12), _octal(old + rng.choice((1, -1, 512, 10 ** 6)), 12),
                            _octal(8 ** 11 - 1, 12), b"99999999999\0", b"           \0", b"-1\0" + b"\0" * 9,
                            _octal(0, 12), b"\xff" * 12, b"\x80" + b"\xff" * 11))
    elif field in ("name", "linkname", "prefix"):
        value = _odd_name(rng, data, offsets)
    elif field == "type":
        value = bytes([rng.choice(b"0123456789gxLKSDAVM\0" + bytes([rng.getrandbits(8)]))])
    elif field == "magic":
        value = rng.choice((b"ustar\x0000", b"ustar  \0", b"garbage!", b"\0" * 8))
    elif field == "chksum":
        value = rng.choice((b"0000000\0", b"\xff" * 8, b"       \0"))
    else:
        value = rng.choice((_base256(2 ** 60, width), _base256(-5, width), b"9" * (width - 1) + b"\0",
                            b"\xff" * width, _octal(0, width), b"x" * width))
    header[start:start + width] = value[:width].ljust(width, b"\0")
    if field != "chksum" and rng.random() < 0.85:       # a right checksum, so tarfile reads on
        header[148:156] = b" " * 8
        header[148:156] = b"%06o\0 " % sum(header)
    return data[:at] + bytes(header) + data[at + 512:]


# ---- structured mutations of archives (before the tar is written) ----


def _json_entries(entries):
    out = []
    for i, e in enumerate(entries):
        if e.kind == "file" and e.data[:1] in (b"{", b"[") and len(e.data) < (1 << 20):
            try:
                out.append((i, json.loads(e.data)))
            except (ValueError, RecursionError):
                pass
    return out


def _gunzip(data, limit=16 << 20):
    """gzip data decompressed, or None when damaged or larger than ``limit`` (a bomb stays small here:
    the fuzzer's own memory must not hide zeroimage's in the peak RSS)."""
    if data[:2] != b"\x1f\x8b":
        return None
    try:
        inflater = zlib.decompressobj(31)
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        return None
    return out if len(out) <= limit and inflater.eof else None


def _unpacked(data):
    """(the tar a layer holds, its codec: "gzip" or "zstd"), or (None, None) when it is neither or damaged."""
    if data[:4] == ZSTD_MAGIC:
        plain = zstd_unframe(data, 16 << 20)       # (a bomb stays small here too)
        return (plain, "zstd") if plain is not None else (None, None)
    plain = _gunzip(data)
    return (plain, "gzip") if plain is not None else (None, None)


def _diff_id_of(data):
    plain = _unpacked(data)[0]
    return None if plain is None else _sha(plain)


def rehash(entries, index, old):
    """Entry ``index`` changed from ``old``: a name holding the old digest takes the new one, and so
    does every JSON document that names it (with the descriptor's size), and so on up; a layer's
    diff_id too, so the change reaches the checks behind the digest checks."""
    todo = [(index, old)]
    for _ in range(20):
        if not todo:
            break
        i, before = todo.pop()
        after = entries[i].data
        swaps = [(_sha(before), _sha(after))]
        old_diff, new_diff = _diff_id_of(before), _diff_id_of(after)
        if old_diff and new_diff and old_diff != new_diff:
            swaps.append((old_diff, new_diff))
        if swaps[0][0] == swaps[0][1]:
            continue
        for old_hex, new_hex in swaps:
            for e in entries:
                if old_hex in e.name:
                    e.name = e.name.replace(old_hex, new_hex)
                if e.linkname and old_hex in e.linkname:
                    e.linkname = e.linkname.replace(old_hex, new_hex)
        for j, doc in _json_entries(entries):
            if j == i:
                continue
            text = entries[j].data.decode("utf-8", "surrogateescape")
            if not any(o in text for o, _ in swaps):
                continue
            for old_hex, new_hex in swaps:
                text = text.replace(old_hex, new_hex)
            try:
                doc = json.loads(text)
            except (ValueError, RecursionError):
                continue
            for _, node in _nodes(doc):
                if isinstance(node, dict) and isinstance(node.get("digest"), str) \
                        and node["digest"].endswith(swaps[0][1]) and isinstance(node.get("size"), int):
                    node["size"] = len(after)
            before_j = entries[j].data
            entries[j].data = json.dumps(doc, separators=(",", ":")).encode()
            todo.append((j, before_j))


def m_json(entries, rng):
    docs = _json_entries(entries)
    if not docs:
        return
    i, doc = rng.choice(docs)
    old = entries[i].data
    entries[i].data = _dumps(mutate_json(doc, rng), rng)
    if rng.random() < 0.8:
        rehash(entries, i, old)


def _blob_entries(entries, layers_only=False):
    return [i for i, e in enumerate(entries) if e.kind == "file" and e.data and
            (not layers_only or e.data[:2] == b"\x1f\x8b" or e.data[:4] == ZSTD_MAGIC or e.data[257:262] == b"ustar")]


def m_blob_bytes(entries, rng):
    """Damage any member's content (blob, layer, index.json...), then (mostly) rename it to its digest."""
    choices = _blob_entries(entries)
    if not choices:
        return
    i = rng.choice(choices)
    old = entries[i].data
    entries[i].data = rng.choice(BYTE_MUTATORS)(old, rng)
    if rng.random() < 0.7:
        rehash(entries, i, old)


def m_layer(entries, rng):
    """Damage a layer: its gzip or zstd stream, its tar headers, its members (names, links, types), or a bomb."""
    choices = _blob_entries(entries, layers_only=True)
    if not choices:
        return
    i = rng.choice(choices)
    old = entries[i].data
    plain, codec = _unpacked(old)
    data, zipped = (old, False) if plain is None else (plain, True)
    pack = (lambda d: zstd_frame(d)) if codec == "zstd" else (lambda d: gzip.compress(d, mtime=0))
    pick = rng.random()
    if zipped and pick < 0.3:
        entries[i].data = damage_compressed(old, rng)
    elif pick < 0.35:
        entries[i].data = bomb(codec or "gzip") if rng.random() < 0.1 else pack(b"\0" * 10240)
    else:
        if pick < 0.7:
            data = edit_tar_header(data, rng)
        else:
            try:
                members = _entries_of_tar(data)
            except (tarfile.TarError, EOFError, OSError, ValueError, OverflowError):
                members = []
            if members:
                m = rng.choice(members)
                what = rng.random()
                if what < 0.3:
                    m.name = _odd_name(rng, data, []).decode("utf-8", "surrogateescape")
                elif what < 0.6:
                    m.kind, m.linkname = rng.choice((("symlink", "/bin/app"), ("symlink", "../../../../etc/passwd"),
                                                     ("symlink", m.name), ("link", "bin/app"), ("link", "nowhere"),
                                                     ("link", m.name), ("dir", ""), ("fifo", "")))
                elif what < 0.8:
                    m.data = b"\x7fELF" + bytes(rng.getrandbits(8) for _ in range(60))
                else:
                    members.append(Entry(m.name, b"dup"))
                data = tar_bytes(members, rng.choice((tarfile.GNU_FORMAT, tarfile.PAX_FORMAT)))
        entries[i].data = pack(data) if zipped else data
    if rng.random() < 0.8:
        rehash(entries, i, old)


def m_members(entries, rng):
    """Change the archive's members: drop, repeat, rename, turn into a link, a directory or a FIFO."""
    if not entries:
        return
    i = rng.randrange(len(entries))
    e = entries[i]
    pick = rng.random()
    if pick < 0.2:
        del entries[i]
    elif pick < 0.35:
        entries.insert(rng.randrange(len(entries) + 1), e.copy())
    elif pick < 0.5:
        dup = e.copy()
        dup.data = rng.choice((b"", b"{}", b"other"))
        entries.append(dup)
    elif pick < 0.65:
        e.name = rng.choice((e.name + "/", "./" + e.name, e.name.upper(), "blobs/sha256/" + "0" * 64, "blobs/x",
                             e.name.replace("sha256", "sha512"), "../" + e.name, "/" + e.name))
    elif pick < 0.85:
        others = [x.name for x in entries if x is not e]
        e.kind, e.linkname, e.data = rng.choice(("symlink", "link")), rng.choice(
            others + ["/dev/zero", "/dev/urandom", "/etc/passwd", e.name, "../../../../dev/zero", "nowhere"]), b""
    elif pick < 0.95:
        e.kind, e.data = rng.choice(("dir", "fifo")), b""
    else:
        e.pax = {rng.choice(("size", "path", "linkpath", "mtime", "uid", "hdrcharset", "GNU.sparse.size")):
                 rng.choice(("99999999999999999999999", "-1", "x", "\udcff", "1e9", "0"))}


STRUCTURED = ((m_json, 5), (m_blob_bytes, 2), (m_layer, 2), (m_members, 2))


# ---- cases ----


class Case:
    """One input: ``base`` and ``mutations`` ((phase, name, sub-seed), in the order applied)."""

    def __init__(self, surface, seed, index, base, mutations, fmt=None, outer=None):
        self.surface, self.seed, self.index = surface, seed, index
        self.base, self.mutations, self.fmt, self.outer = base, mutations, fmt, outer

    @property
    def id(self):
        return "%s/%d/%d" % (self.surface, self.seed, self.index)

    def describe(self):
        keep = "" if getattr(self, "kept", None) is None else " keep=%s" % (self.kept,)
        return "%s base=%s%s mutations=%s" % (self.id, self.base, keep, [m[1] for m in self.mutations])

    def write(self, path):
        """Write the input at ``path`` (a file, or a directory for layouts); returns ``path``."""
        if self.surface == "elf":
            data = _elf_case(self)
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, 0o755)
            return path
        entries = archive_base(self.base)
        raw = None
        for phase, name, sub in self.mutations:
            rng = Random(sub)
            if phase == 0:
                dict(STRUCTURED_BY_NAME)[name](entries, rng)
            elif phase == 1:
                if raw is None:
                    raw = _write_entries(entries, self.fmt)
                raw = RAW_BY_NAME[name](raw, rng)
            else:
                if raw is None:
                    raw = _write_entries(entries, self.fmt)
                raw = _outer(raw, name, rng)
        if self.surface == "oci-layout":
            return write_dir(entries, path)
        if raw is None:
            raw = _write_entries(entries, self.fmt)
        with open(path, "wb") as f:
            f.write(raw)
        return path


def _write_entries(entries, fmt):
    try:
        return tar_bytes(entries, fmt)
    except (ValueError, UnicodeError, tarfile.TarError):
        return tar_bytes(entries, tarfile.PAX_FORMAT)


def _outer(raw, name, rng):
    if name == "gzip":
        return gzip.compress(raw, mtime=0)
    if name == "zstd":
        return zstd_frame(raw)
    if name == "bz2":
        return bz2.compress(raw)
    if name == "xz":
        return lzma.compress(raw)
    return damage_compressed(raw, rng) if raw[:2] == b"\x1f\x8b" or raw[:4] == ZSTD_MAGIC or rng.random() < 0.5 \
        else flip_bits(raw, rng)


STRUCTURED_BY_NAME = tuple((f.__name__, f) for f, _ in STRUCTURED)
RAW_BY_NAME = {"tar_header": edit_tar_header, "flip_bits": flip_bits, "truncate": truncate, "insert": insert,
               "delete_run": delete_run, "overwrite_run": overwrite_run}


def _weighted(rng, table):
    total = sum(w for _, w in table)
    pick = rng.random() * total
    for item, w in table:
        pick -= w
        if pick < 0:
            return item
    return table[-1][0]


def make_case(surface, seed, index, keep=None):
    """The case (surface, seed, index); ``keep``: indexes of the mutations to keep (to shrink it)."""
    rng = Random("%s/%d/%d" % (surface, seed, index))
    if surface == "elf":
        case = Case(surface, seed, index, _weighted(rng, ELF_BASES), [])
        count = 1 + min(int(rng.expovariate(0.9)), 4)
        table = ELF_STRUCTURED + ELF_FIELDS + ELF_BYTES
        for _ in range(count):
            case.mutations.append(_weighted(rng, table) + (rng.getrandbits(64),))
    else:
        case = Case(surface, seed, index, rng.choice(ARCHIVE_BASES[surface]), [],
                    fmt=rng.choice((tarfile.GNU_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT)))
        count = 1 + min(int(rng.expovariate(0.9)), 4)
        table = [((0, f.__name__), w) for f, w in STRUCTURED]
        if surface != "oci-layout":
            table += [((1, "tar_header"), 3), ((1, "flip_bits"), 1), ((1, "truncate"), 1), ((1, "insert"), 0.5),
                      ((1, "delete_run"), 0.5), ((1, "overwrite_run"), 0.5)]
        for _ in range(count):
            case.mutations.append(_weighted(rng, table) + (rng.getrandbits(64),))
        if surface != "oci-layout" and rng.random() < 0.08:
            case.mutations.append((2, rng.choice(("gzip", "bz2", "xz", "zstd")), rng.getrandbits(64)))
            if rng.random() < 0.5:
                case.mutations.append((2, "damage", rng.getrandbits(64)))
        case.mutations.sort(key=lambda m: m[0])
    if keep is not None:
        case.mutations = [m for i, m in enumerate(case.mutations) if i in keep]
        case.kept = tuple(sorted(keep))
    return case


# ---- the ELF surface ----

ELF_BASES = [(name, 1) for name in ("go-inline", "go-inline-32", "go-inline-big", "go-pointers-8", "go-pointers-4",
                                    "go-pointers-big", "go-no-sections", "go-no-modinfo", "go-renamed")] + \
    [("rust", 3), ("rust-32-big", 1.5), ("go-and-rust", 1.5)]
ELF_STRUCTURED = [((0, "modinfo_text"), 2), ((0, "modinfo_bytes"), 2), ((0, "go_header"), 1.5),
                  ((0, "rust_json"), 4), ((0, "rust_zlib"), 1.5), ((0, "section_content"), 1)]
ELF_FIELDS = [((1, "elf_header"), 3), ((1, "section_header"), 3), ((1, "program_header"), 2)]
ELF_BYTES = [((2, "flip_bits"), 1), ((2, "truncate"), 1), ((2, "insert"), 0.5), ((2, "delete_run"), 0.5),
             ((2, "overwrite_run"), 0.5)]

_MODINFO_LINES = MODINFO.splitlines(True)


def _modinfo_text(rng):
    lines = list(_MODINFO_LINES)
    for _ in range(rng.choice((1, 1, 2, 4))):
        i = rng.randrange(len(lines))
        pick = rng.random()
        if pick < 0.2:
            del lines[i]
        elif pick < 0.4:
            lines.insert(i, rng.choice(("dep\t", "=>\t\n", "mod\n", "build\t\n", "path\n", "bogus\tline\n", "\n",
                                        "dep\ta\tb\tc\td\te\n", "build\t\"unterminated=1\n", "build\t=\n",
                                        "dep\tx\t" + "v" * 20000 + "\th1:=\n")))
        elif pick < 0.8:
            text = lines[i]
            j = rng.randrange(len(text))
            lines[i] = text[:j] + rng.choice(("\t", "\n", "\x00", "\x1b[2J", "\u202e", "\U0001f600", "\x7f", "\\",
                                              "\"", "`", " ", "://", "@", "%00", "\r")) + text[j + 1:]
        else:
            lines[i] = lines[i].replace("\t", rng.choice((" ", "\t\t", "")), 1)
    return "".join(lines)


def _go_content(base, modinfo, version=None):
    if base.startswith("go-pointers"):
        return go_pointers(version=version or "go1.16.15", modinfo=modinfo,
                           ptr_size=4 if base.endswith("-4") else 8, big=base.endswith("big"))
    return go_inline(version=version or "go1.22.1", modinfo=modinfo)


def _elf_case(case):
    """The ELF bytes of an elf-surface case."""
    base = case.base
    modinfo = "" if base == "go-no-modinfo" else MODINFO
    version = rust_doc = rust_seed = None
    content_edits = []
    for phase, name, sub in case.mutations:
        if phase != 0:
            continue
        rng = Random(sub)
        if name == "modinfo_text":
            modinfo = _modinfo_text(rng)
        elif name == "go_header":
            version = rng.choice(("", "go", "devel +abc", "go1.22\x00", "go1.22.1\u00ff\u00fe", "x" * 300, "go1.\u202e"))
        elif name == "rust_json":
            rust_doc = mutate_json({"packages": json.loads(json.dumps(RUST))} if rust_doc is None else rust_doc, rng)
            rust_seed = sub
        else:
            content_edits.append((name, rng))
    sections = [(".text", b"\x90" * 40)]
    if base.startswith("go"):
        # go-renamed: the section's name is another (Go finds it in the first writable segment)
        sections.append((".zz.buildinfo" if base == "go-renamed" else ".go.buildinfo",
                         _go_content(base, modinfo, version)))
    if base.startswith("rust") or base == "go-and-rust":
        sections.append((".dep-v0", rust_packages(RUST) if rust_doc is None
                         else zlib.compress(_dumps(rust_doc, Random(rust_seed)))))
    for name, rng in content_edits:
        i = rng.randrange(1, len(sections))
        sname, content = sections[i]
        if callable(content):       # the pre-1.18 format: a function of the section's address
            sections[i] = (sname, lambda addr, made=content, edit=name, r=rng, s=sname:
                           _edit_section(made(addr), edit, r, s))
        else:
            sections[i] = (sname, _edit_section(content, name, rng, sname))
    if base == "go-no-sections":
        data = craft_elf(sections, section_headers=False)
    else:
        big = "big" in base
        machine = (21 if big else 183) if base.startswith("rust") else (22 if big else 62)
        data = craft_elf(sections, machine=machine, is64="-32" not in base, little=not big)
    for phase, name, sub in case.mutations:
        rng = Random(sub)
        if phase == 1:
            data = edit_elf(data, name, rng)
        elif phase == 2:
            data = RAW_BY_NAME[name](data, rng)
    return data


def _edit_section(content, name, rng, sname):
    """One edit of a section's content: bad bytes in the Go module text (same length), damage to the
    zlib stream of .dep-v0, or any byte-level edit."""
    if name == "modinfo_bytes" and sname.endswith(".buildinfo") and INFO_START in content:
        start = content.index(INFO_START) + len(INFO_START)
        end = content.find(INFO_END, start)
        end = len(content) if end < 0 else end
        bad = rng.choice((b"\xff", b"\xed\xb3\xbf", b"\xc0\x80", b"\x80", b"\xf4\x90\x80\x80", b"\x00",
                          b"\x1b", b"\xe2\x80\xae"))
        if end - start > len(bad):
            j = rng.randrange(start, end - len(bad))
            content = content[:j] + bad + content[j + len(bad):]
        return content
    if name == "rust_zlib" and sname == ".dep-v0":
        return bomb("zlib") if rng.random() < 0.05 else damage_compressed(content, rng)
    return rng.choice(BYTE_MUTATORS)(content, rng)


def _elf_layout(data):
    """(endian, is64, header fields by name) of an ELF header, or None."""
    if len(data) < 52 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return None
    e = "<" if data[5] == 1 else ">"
    is64 = data[4] == 2
    if is64 and len(data) < 64:
        return None
    names = ("type", "machine", "version", "entry", "phoff", "shoff", "flags", "ehsize", "phentsize", "phnum",
             "shentsize", "shnum", "shstrndx")
    fmt = e + ("HHIQQQIHHHHHH" if is64 else "HHIIIIIHHHHHH")
    values = struct.unpack_from(fmt, data, 16)
    return e, is64, dict(zip(names, values)), fmt, names


def _odd_int(rng, old, bits, file_size):
    top = (1 << bits) - 1
    return rng.choice((0, 1, top, top >> 1, old + 1, old - 1 if old else top, old * 2, file_size, file_size - 1,
                       file_size + 1, rng.getrandbits(bits), 0x10000, old ^ (1 << rng.randrange(bits)))) & top


def edit_elf(data, name, rng):
    layout = _elf_layout(data)
    if layout is None:
        return flip_bits(data, rng)
    e, is64, header, fmt, names = layout
    data = bytearray(data)
    if name == "elf_header":
        if rng.random() < 0.15:
            i = rng.choice((4, 5, 6, 7))
            data[i] = rng.choice((0, 1, 2, 3, 0xff))
            return bytes(data)
        field = rng.choice(names)
        widths = dict(zip(names, [struct.calcsize(e + c) for c in fmt[1:]]))
        bits = widths[field] * 8
        header[field] = _odd_int(rng, header[field], bits, len(data))
        struct.pack_into(fmt, data, 16, *[header[n] for n in names])
        return bytes(data)
    if name == "section_header":
        if not header["shnum"] or header["shoff"] >= len(data):
            return flip_bits(bytes(data), rng)
        i = rng.randrange(header["shnum"])
        sfmt = e + ("IIQQQQIIQQ" if is64 else "IIIIIIIIII")
        at = header["shoff"] + i * struct.calcsize(sfmt)
        if at + struct.calcsize(sfmt) > len(data):
            return flip_bits(bytes(data), rng)
        fields = list(struct.unpack_from(sfmt, data, at))
        j = rng.randrange(len(fields))
        fields[j] = _odd_int(rng, fields[j], struct.calcsize(e + sfmt[1 + j]) * 8, len(data))
        struct.pack_into(sfmt, data, at, *fields)
        return bytes(data)
    pfmt = e + ("IIQQQQQQ" if is64 else "IIIIIIII")
    at = header["phoff"]
    if not header["phnum"] or at + struct.calcsize(pfmt) > len(data):
        return flip_bits(bytes(data), rng)
    fields = list(struct.unpack_from(pfmt, data, at))
    j = rng.randrange(len(fields))
    fields[j] = _odd_int(rng, fields[j], struct.calcsize(e + pfmt[1 + j]) * 8, len(data))
    struct.pack_into(pfmt, data, at, *fields)
    return bytes(data)


# ---- running a case ----


class _Timeout(BaseException):
    """Raised in the main thread when a verb runs longer than VERB_SECONDS."""


@contextlib.contextmanager
def _captured():
    """stdout and stderr as the real ones encode: UTF-8, strict for stdout, backslashreplace for stderr."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", newline="\n")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace", newline="\n")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield out, err
    with contextlib.suppress(Exception):
        out.flush()
    with contextlib.suppress(Exception):
        err.flush()


def _text(stream):
    with contextlib.suppress(Exception):
        stream.flush()
    return stream.buffer.getvalue().decode("utf-8", "replace")


class Result:
    def __init__(self, verb, argv, code=None, exception=None, stdout="", stderr="", seconds=0.0, rss_mb=0,
                 output=None, leftovers=()):
        self.verb, self.argv, self.code, self.exception = verb, argv, code, exception
        self.stdout, self.stderr, self.seconds, self.rss_mb = stdout, stderr, seconds, rss_mb
        self.output, self.leftovers, self.spec_problems, self.warnings = output, leftovers, [], []


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def run_verb(verb, argv, output=None):
    """Run ``zeroimage.main(argv)`` with a deadline; the Result (exception: (type name, last frame,
    last zeroimage frame, text))."""
    def alarm(signum, frame):
        raise _Timeout("more than %d s" % VERB_SECONDS)
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, VERB_SECONDS, 1)   # again each second: until one escapes main
    started = time.monotonic()
    code = exception = None
    try:
        with _captured() as (out, err), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            try:
                code = zeroimage.main(argv)
            except SystemExit as e:
                code = e.code
            except BaseException as e:      # noqa: B902 -- what escapes main is what we look for
                exception = _describe(e)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    result = Result(verb, argv, code, exception, _text(out), _text(err), time.monotonic() - started, _rss_mb(), output)
    result.warnings = ["%s: %s (%s:%s)" % (w.category.__name__, w.message, os.path.basename(w.filename), w.lineno)
                       for w in caught if issubclass(w.category, ResourceWarning)]
    if output is not None:
        parent = os.path.dirname(output)
        result.leftovers = sorted(n for n in os.listdir(parent) if n.startswith(os.path.basename(output)))
    return result


def _describe(e):
    tb = traceback.extract_tb(e.__traceback__)
    while len(tb) > 1 and isinstance(e, _Timeout) and tb[-1].filename == __file__:
        tb = tb[:-1]        # where the deadline found it, not the alarm handler
    last = tb[-1] if tb else None
    ours = [f for f in tb if os.path.basename(f.filename) == "zeroimage.py"]
    where = lambda f: "%s:%d %s" % (os.path.basename(f.filename), f.lineno, f.name) if f else "?"  # noqa: E731
    return (type(e).__name__, where(last), where(ours[-1]) if ours else "?",
            "".join(traceback.format_exception(type(e), e, e.__traceback__))[-3000:])


PROGRAM_NAME = "app"
# the archive surfaces an engine's export may be: docker save's (Docker before 25, podman) and an OCI
# layout with manifest.json (Docker 25+); read as docker-daemon:base:1 from ``_ExportingEngine``
ENGINE_SURFACES = ("docker-save", "oci-archive")


class _ExportingEngine:
    """The little of a Docker Engine API that reads an image from it, on a unix socket of its own:
    ``GET /_ping``, and ``GET /images/base:1/get`` answered with the case's input as the export. A
    context manager: started on entry, DOCKER_HOST pointing at it until exit."""

    def __init__(self, path):
        import http.server
        import socketserver
        import threading
        export = path

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def address_string(self):
                return "unix"

            def do_GET(self):
                if self.path.endswith("/_ping"):
                    body = b"OK"
                elif self.path.endswith("/images/base:1/get"):
                    with open(export, "rb") as f:
                        body = f.read()
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True
            block_on_close = False

        self.directory = tempfile.mkdtemp(prefix="zi-fz-", dir="/tmp")
        self.server = Server(os.path.join(self.directory, "e.sock"), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        self.old = os.environ.get("DOCKER_HOST")
        os.environ["DOCKER_HOST"] = "unix://" + self.server.server_address
        return self

    def __exit__(self, *exc):
        if self.old is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = self.old
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
        shutil.rmtree(self.directory, ignore_errors=True)


def verbs_for(case, inp, work):
    """(verb, argv, output path or None, needs) of the verbs that read this surface; ``needs``: the
    verb whose output this one reads (it runs only when that one exited 0). The verbs that read no
    file (tags, tag, delete, sync, copy between registries) meet mutated input as registry answers:
    tests/test_hostile_table.py's VERBS and its seeded fuzz of the JSON answers."""
    out = lambda name: os.path.join(work, name)  # noqa: E731
    if case.surface == "elf":
        return [("build", ["build", "-q", "-o", out("min.tar"), inp], out("min.tar"), None),
                ("build --sbom", ["build", "-q", "--sbom", "--from", "scratch", "--platform", "linux/amd64",
                                  "--no-platform-check", "-o", out("sbom.tar"), inp], out("sbom.tar"), None),
                # the program's build info read back out of the image's layer (--build-info), as JSON and
                # in the summary; without it, the summary and JSON of an image its SBOM refers to
                ("inspect --json --build-info built", ["inspect", "--json", "--build-info", out("min.tar")], None,
                 "build"),
                ("inspect --build-info built", ["inspect", "--build-info", out("sbom.tar")], None, "build --sbom"),
                ("inspect sbom-built", ["inspect", out("sbom.tar")], None, "build --sbom"),
                ("inspect --json sbom-built", ["inspect", "--json", out("sbom.tar")], None, "build --sbom"),
                ("inspect --sbom built", ["inspect", "--sbom", out("sbom.tar")], None, "build --sbom")]
    program = out(PROGRAM_NAME)
    return [("inspect", ["inspect", inp], None, None),
            ("inspect --json --build-info", ["inspect", "--json", "--build-info", inp], None, None),   # layers too
            ("inspect --config", ["inspect", "--config", inp], None, None),
            ("digest", ["digest", inp], None, None),
            ("digest NAME", ["digest", "--json", inp + ":base:1"], None, None),      # picks by ref name, RepoTags
            ("copy to archive", ["copy", "-q", inp, out("copy.tar")], out("copy.tar"), None),
            ("copy to layout", ["copy", "-q", inp, out("copy-layout")], out("copy-layout"), None),
            ("build --from-archive", ["build", "-q", "--from-archive", inp, "-o", out("built.tar"), program],
             out("built.tar"), None),
            ("export", ["export", "-q", "--json", inp, "-o", out("export.tar")], out("export.tar"), None),
            ("inspect --files", ["inspect", "--files", "--json", inp], None, None),
            ("inspect --json copied", ["inspect", "--json", out("copy.tar")], None, "copy to archive"),
            ("inspect --json built", ["inspect", "--json", out("built.tar")], None, "build --from-archive"),
            _changing(case, inp, out, program)] + \
        ([("inspect --json docker-daemon", ["inspect", "--json", "--build-info", "docker-daemon:base:1"], None, None),
          ("copy docker-daemon", ["copy", "-q", "docker-daemon:base:1", out("engine.tar")], out("engine.tar"), None)]
         if case.surface in ENGINE_SURFACES else [])


def _changing(case, inp, out, program):
    """The change verbs read a case through the same reader (``read_source``, ``change_image``): each
    case runs one of them, in turn by its index, the input as the image changed or as the old and the
    new base of a rebase; every one meets a quarter of each surface's cases."""
    return [("mutate", ["mutate", "-q", "--env", "A=b", "--entrypoint-arg", "x", "-o", out("mutated.tar"), inp],
             out("mutated.tar"), None),
            ("append", ["append", "-q", "--add", program + ":/usr/local/bin/app", "-o", out("appended.tar"), inp],
             out("appended.tar"), None),
            ("rebase", ["rebase", "-q", "--old-base", inp, "--base", inp, "-o", out("rebased.tar"), inp],
             out("rebased.tar"), None),
            ("rebase onto", ["rebase", "-q", "--old-base", "scratch", "--base", inp, "-o", out("onto.tar"),
                             out("built.tar")], out("onto.tar"), "build --from-archive")][case.index % 4]


def run_case(case, work, check_output=None):
    """Write the case's input under ``work`` and run its verbs; the Results.  ``check_output(path)``:
    the spec problems of an output (default: tests/speccheck.py)."""
    if check_output is None:
        import speccheck

        def check_output(path):
            def alarm(signum, frame):
                raise _Timeout("more than %d s" % VERB_SECONDS)
            previous = signal.signal(signal.SIGALRM, alarm)
            signal.setitimer(signal.ITIMER_REAL, VERB_SECONDS, 1)
            try:
                return speccheck.check(path)
            except BaseException as e:      # noqa: B902 -- the checker's own defect, said as a problem of the case
                return ["tests/speccheck.py failed on it: %s" % _describe(e)[3].strip().splitlines()[-1]]
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
    inp = os.path.join(work, "input" + ("" if case.surface in ("oci-layout", "elf") else ".tar"))
    if case.surface == "elf":
        inp = os.path.join(work, PROGRAM_NAME)
    case.write(inp)
    if case.surface != "elf":
        with open(os.path.join(work, PROGRAM_NAME), "wb") as f:
            f.write(PROGRAM)
        os.chmod(os.path.join(work, PROGRAM_NAME), 0o755)
    results, codes = [], {}
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = EPOCH
    engine = _ExportingEngine(inp) if case.surface in ENGINE_SURFACES else contextlib.nullcontext()
    engine.__enter__()
    try:
        for verb, argv, output, needs in verbs_for(case, inp, work):
            if needs is not None and codes.get(needs) != 0:
                continue
            if any(r.exception and r.exception[0] == "_Timeout" for r in results):
                break       # the case has failed; the other verbs would most likely wait as long
            result = run_verb(verb, argv, output)
            codes[verb] = result.code
            if result.code == 0 and output is not None and os.path.exists(output) and verb == "export":
                result.spec_problems = filesystem_tar_problems(output)     # a filesystem, not an image
            elif result.code == 0 and output is not None and os.path.exists(output):
                result.spec_problems = passed_on_problems_left_out(check_output(output), inp, output)
            results.append(result)
    finally:
        engine.__exit__(None, None, None)
        if old is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old
    return results


def filesystem_tar_problems(path):
    """What is wrong with the tar ``export`` wrote: it must read as a tar whose every member name is
    relative and without '..', never a whiteout, never twice, and whose hard links lead to members
    written before them."""
    found, seen = [], set()
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                name = member.name.rstrip("/")
                parts = name.split("/")
                if name.startswith("/") or ".." in parts or not name:
                    found.append("export: a member named %r" % member.name)
                if parts[-1].startswith(".wh."):
                    found.append("export: a whiteout %r written" % member.name)
                if name in seen:
                    found.append("export: %r twice" % member.name)
                if member.islnk() and member.linkname not in seen:
                    found.append("export: the hard link %r before its target %r" % (member.name, member.linkname))
                seen.add(name)
    except (tarfile.TarError, OSError, EOFError) as e:
        found.append("export: not a tar (%s)" % e)
    return found


# What speccheck finds inside a layer's bytes (its tar, members, compression, diff_id) is said at
# "layers[N] sha256:SHORT": descriptor problems are said elsewhere.
_LAYER_CONTENT_RE = re.compile(r"layers\[\d+\] sha256:([0-9a-f]{12})(?::| member )")


# What speccheck holds zeroimage's own configs to beyond the spec's MUSTs: no null field, nor null in a
# map of objects (Go and Docker read null as absent or empty, and Docker writes "Cmd": null), ExposedPorts keys of config.md's form (it says
# "can be"), one history entry for each layer (kaniko writes fewer; more is refused on every write).
_OWN_CONFIG_RULE_RE = re.compile(r"config sha256:([0-9a-f]{12}).*: (\w+ is null \(schema/config-schema|.* is not port, port/tcp"
                                 r"|(ExposedPorts|Volumes) is '\{.*null.*\}', not a map of objects"
                                 # Labels: copy refuses any value but a string or null, so these are nulls
                                 r"|Labels is '.*', not a map of strings|the value None is not a string)")
_HISTORY_COUNT_RE = re.compile(r"manifest sha256:([0-9a-f]{12}).*history has (\d+) entries without empty_layer for (\d+) layers")


def passed_on_problems_left_out(found, inp, output=None):
    """Spec problems of an output, less those of what was passed on byte for byte from the input:
    zeroimage copies and builds on base layers without reading their tar (as skopeo and crane do; the
    lead's decision on F4), so a damaged member there is the input's, not a write that broke a rule;
    and a config or manifest copied as it is keeps what speccheck asks of zeroimage's own configs only
    (``_OWN_CONFIG_RULE_RE``: the spec allows it; a copy cannot change it without changing the image)."""
    passed_on = set(_input_digests(inp))
    passed_on |= _passed_on_in_output(output, passed_on) if output else set()

    def passed(problem):
        for pattern in (_LAYER_CONTENT_RE, _OWN_CONFIG_RULE_RE):
            match = pattern.search(problem)
            if match and match.group(1) in passed_on:
                return True
        match = _HISTORY_COUNT_RE.search(problem)
        return bool(match and match.group(1) in passed_on and int(match.group(2)) < int(match.group(3)))
    return [p for p in found if not passed(p)]


def _passed_on_in_output(output, diff_ids):
    """The short digests of what ``output`` holds of the input's though its bytes are new: layers whose
    diff_id is among ``diff_ids`` (short; a docker save layer.tar passed on gzipped, as copy and build
    do), and manifests (made for a docker save image) whose config is the input's."""
    def read(name):
        try:
            if os.path.isdir(output):
                with open(os.path.join(output, name), "rb") as f:
                    return json.loads(f.read(1 << 22).decode("utf-8"))
            with tarfile.open(output) as tar:
                return json.loads(tar.extractfile(name).read(1 << 22).decode("utf-8"))
        except (OSError, KeyError, AttributeError, ValueError, tarfile.TarError):
            return None

    def blob(desc):
        digest = desc.get("digest") if isinstance(desc, dict) else None
        return read("blobs/" + digest.replace(":", "/", 1)) if isinstance(digest, str) else None

    found, pending, digest_of = set(), list((read("index.json") or {}).get("manifests") or []), {}
    for _ in range(100):
        if not pending:
            break
        desc = pending.pop()
        value = blob(desc)
        if not isinstance(value, dict):
            continue
        digest_of[id(value)] = desc["digest"][7:19]
        pending += [d for d in value.get("manifests") or [] if isinstance(d, dict)]
        config = blob(value.get("config"))
        layers = value.get("layers") or []
        config_digest = (value.get("config") or {}).get("digest") if isinstance(value.get("config"), dict) else None
        if isinstance(config_digest, str) and config_digest[7:19] in diff_ids:
            found.add(digest_of[id(value)])
        ids = ((config or {}).get("rootfs") or {}).get("diff_ids") if isinstance(config, dict) else None
        for desc, diff_id in zip(layers, ids if isinstance(ids, list) else []):
            if isinstance(desc, dict) and isinstance(diff_id, str) and diff_id[7:19] in diff_ids \
                    and isinstance(desc.get("digest"), str):
                found.add(desc["digest"][7:19])
    return found


def _input_digests(inp):
    """The short (12 hex) sha256 of every file in the input (a tar's members, a layout's files)."""
    def short(f):
        h = hashlib.sha256()
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
        return h.hexdigest()[:12]
    if os.path.isdir(inp):
        for top, _, names in os.walk(inp):
            for name in names:
                path = os.path.join(top, name)
                if os.path.isfile(path) and not os.path.islink(path):       # never a FIFO (open would wait)
                    with open(path, "rb") as f:
                        yield short(f)
        return
    try:
        with tarfile.open(inp) as tar:
            for member in tar:
                if member.isfile() and member.size <= os.path.getsize(inp):    # a huge size field would read on
                    with tar.extractfile(member) as f:
                        yield short(f)
    except (tarfile.TarError, OSError, EOFError, ValueError, OverflowError, zlib.error):
        return


def problems(result, rss_before=0):
    """What broke the rules in one Result: [(signature, detail)]; the signature names the class
    (exception type and place) so that one defect seen many times counts once."""
    out = []
    if result.exception is not None:
        name, last, ours, text = result.exception
        if 'speccheck.py", line' in text:     # conftest's check of an output, run as the output is renamed into place
            out.append(("tests/speccheck.py failed on the output of %s: %s at %s" % (result.verb, name, last), text))
        elif name == "_Timeout":
            out.append(("timeout in %s (%s)" % (result.verb, ours), "more than %d s, at %s" % (VERB_SECONDS, last)))
        else:
            out.append(("%s at %s (last frame %s)" % (name, ours, last), text))
    elif result.code not in (0, 1, 2):
        out.append(("exit %r" % (result.code,), result.stderr[-2000:]))
    for warning in result.warnings:
        out.append(("%s in %s" % (re.sub(r"<.*>|'.*'", "...", warning), result.verb), warning))
    for stream, text in (("stderr", result.stderr), ("stdout", result.stdout)):
        if "Traceback (most recent call last)" in text:
            out.append(("traceback in %s of %s" % (stream, result.verb), text[-2000:]))
    if result.code == 0 and "--json" in result.argv:
        try:
            json.loads(result.stdout)
        except ValueError as e:
            out.append(("%s printed no JSON" % result.verb, "%s: %r" % (e, result.stdout[:500])))
    if result.code not in (0, None) and result.output is not None and result.leftovers:
        out.append(("%s left %s behind after exit %s" % (result.verb, "output" if os.path.basename(result.output)
                                                        in result.leftovers else "a temporary file", result.code),
                    "%s: %s" % (result.output, result.leftovers)))
    for kind in sorted({_problem_kind(p) for p in result.spec_problems}):
        out.append(("%s wrote an invalid image (exit 0): %s" % (result.verb, kind), "\n".join(result.spec_problems[:10])))
    if result.seconds > VERB_SECONDS and result.exception is None:
        out.append(("%s slow" % result.verb, "%.1f s" % result.seconds))
    if result.rss_mb > RSS_LIMIT_MB and rss_before <= RSS_LIMIT_MB:
        out.append(("%s peak RSS %d MB" % (result.verb, result.rss_mb), "limit %d MB" % RSS_LIMIT_MB))
    return out


def _problem_kind(text):
    """A spec checker's problem without its particulars (the output's path, where in the image,
    which digest, which name)."""
    if text.startswith("/"):
        text = text.split(": ", 1)[-1]
    if text.startswith("index.json"):
        text = text.split(": ", 1)[-1]
    text = re.sub(r" ?\([^()]*(\([^()]*\))?[^()]*\)", "", text)     # the particulars, and the spec's chapter
    text = re.sub(r"sha256:[0-9a-f]+", "D", text)
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'N'", text)
    text = re.sub(r"(directory|entry for|target|link to) \S+", r"\1 N", text)
    text = re.sub(r"\d+", "0", text)
    return text[:120]


def case_problems(case, work, check_output=None):
    """[(signature, detail, verb, argv)] of one case, run in ``work``."""
    found, rss = [], _rss_mb()
    for result in run_case(case, work, check_output):
        for signature, detail in problems(result, rss):
            found.append((signature, detail, result.verb, result.argv))
        rss = result.rss_mb
    return found


def shrink(case, work_root):
    """Leave out mutations one at a time while the first problem's signature stays; the smaller case."""
    def signatures(c):
        work = tempfile.mkdtemp(dir=work_root)
        try:
            return {p[0] for p in case_problems(c, work)}
        finally:
            shutil.rmtree(work, ignore_errors=True)
    wanted = signatures(case)
    if not wanted:
        return case, set()
    target = sorted(wanted)[0]
    keep = list(range(len(case.mutations)))
    full = make_case(case.surface, case.seed, case.index)
    changed = True
    while changed:
        changed = False
        for i in list(keep):
            trial = [k for k in keep if k != i]
            if target in signatures(make_case(full.surface, full.seed, full.index, keep=set(trial))):
                keep, changed = trial, True
    return make_case(full.surface, full.seed, full.index, keep=set(keep)), {target}


def _main(argv):
    command, surface, seed, number = argv[0], argv[1], int(argv[2]), int(argv[3])
    root = tempfile.mkdtemp(prefix="zeroimage-fuzz-")
    try:
        if command == "write":
            print(make_case(surface, seed, number).write(argv[4]))
        elif command == "run":
            case = make_case(surface, seed, number)
            print(case.describe())
            for result in run_case(case, root):
                print("%-26s exit %s  %.2f s  %d MB  %s" % (result.verb, result.code, result.seconds, result.rss_mb,
                                                           (result.stderr.strip().splitlines() or [""])[-1][:150]))
                for signature, detail in problems(result):
                    print("  PROBLEM:", signature, "\n   ", detail.replace("\n", "\n    "))
        elif command == "shrink":
            case, target = shrink(make_case(surface, seed, number), root)
            print(case.describe(), "->", target)
            print(case.write(argv[4]))
        elif command == "sweep":
            seen = {}
            for i in range(number):
                work = tempfile.mkdtemp(dir=root)
                case = make_case(surface, seed, i)
                for signature, detail, verb, args in case_problems(case, work):
                    if signature not in seen:
                        seen[signature] = case.id
                        print("%s: %s [%s]" % (case.id, signature, verb), flush=True)
                shutil.rmtree(work, ignore_errors=True)
            print("%d cases, %d distinct problems" % (number, len(seen)))
        else:
            raise SystemExit(__doc__)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    _main(sys.argv[1:])
