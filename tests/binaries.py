"""Crafted and real binaries for the tests: small ELF files (``make_elf``: a header and one program
header; ``craft_elf``: sections and a PT_LOAD, for build information), Go build-information blobs in
both formats (``go_inline``, ``go_pointers``), cargo auditable's data (``rust_packages``), a program
for each platform (``elf_for``), and Debian's real Go binaries (``real_binary``, ``own_text``,
``rewritten_go_binary``). Standard library and pytest only; no zeroimage."""

import json
import mmap
import os
import re
import shutil
import struct
import zlib

import pytest

GO_MAGIC = b"\xff Go buildinf:"
# cmd/go's modload.infoStart and infoEnd: the 16 bytes either side of the module information.
INFO_START = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6"
INFO_END = b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2"
VADDR = 0x10000
REAL_GO_BINARIES = ("/usr/bin/umoci", "/usr/bin/skopeo", "/usr/bin/docker")
LABEL = "org.opencontainers.image."

MODINFO = (
    "path\texample.com/app/cmd/app\n"
    "mod\tgithub.com/acme/app/v2\tv2.3.4\th1:mainsum=\n"
    "dep\tgolang.org/x/sys\tv0.15.0\th1:syssum=\n"
    "dep\tgithub.com/old/lib\tv1.0.0\th1:oldsum=\n"
    "=>\tgithub.com/new/lib\tv1.1.0\th1:newsum=\n"
    "dep\texample.com/local\tv0.0.0\t\n"
    "=>\t../local\t\t\n"
    "build\t-ldflags=\"-s -w -X main.v=1\"\n"
    "build\t\"key with space\"=`raw value`\n"
    "build\tCGO_ENABLED=0\n"
    "build\tGOARCH=amd64\n"
    "build\tGOOS=linux\n"
    "build\tvcs=git\n"
    "build\tvcs.revision=0123456789abcdef0123456789abcdef01234567\n"
    "build\tvcs.time=2024-03-01T10:00:00Z\n"
    "build\tvcs.modified=false\n"
)


# ---- small ELF files ----


def make_elf(machine, is64=True, little=True, interpreter=None):
    """A crafted ELF header with one program header (PT_INTERP when asked)."""
    e = "<" if little else ">"
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1 if little else 2, 1, 0]) + b"\0" * 8
    ehsize, phentsize = (64, 56) if is64 else (52, 32)
    interp = (interpreter.encode() + b"\0") if interpreter else b""
    ptype = 3 if interpreter else 1
    data_at = ehsize + phentsize
    if is64:
        header = ident + struct.pack(e + "HHIQQQIHHHHHH", 2, machine, 1, 0, ehsize, 0, 0, ehsize, phentsize, 1, 0, 0, 0)
        phdr = struct.pack(e + "IIQQQQQQ", ptype, 4, data_at, 0, 0, len(interp), len(interp), 1)
    else:
        header = ident + struct.pack(e + "HHIIIIIHHHHHH", 2, machine, 1, 0, ehsize, 0, 0, ehsize, phentsize, 1, 0, 0, 0)
        phdr = struct.pack(e + "IIIIIIII", ptype, data_at, 0, 0, len(interp), len(interp), 4, 1)
    return header + phdr + interp


MACHINES = {"linux/amd64": (62, True), "linux/arm64": (183, True), "linux/arm/v7": (40, False),
            "linux/386": (3, False), "linux/ppc64le": (21, True), "linux/s390x": (22, True)}


def elf_for(path, platform):
    """A program for PLATFORM ("linux/arm64") at PATH: make_elf of its machine, then the platform's name."""
    machine, is64 = MACHINES[platform]
    os.makedirs(os.path.dirname(str(path)) or ".", exist_ok=True)
    with open(str(path), "wb") as f:
        f.write(make_elf(machine, is64=is64, little=platform != "linux/s390x") + platform.encode())
    return path


# ---- crafting: Go blobs, cargo auditable data, ELF files with sections ----


def uvarint(n):
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7f | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def framed(modinfo):
    return INFO_START + modinfo.encode() + INFO_END if modinfo else b""


def go_inline(version="go1.22.1", modinfo=MODINFO):
    """The Go 1.18+ header: magic, pointer size, flags (2: strings inline), then the two strings."""
    version, mod = version.encode(), framed(modinfo)
    return GO_MAGIC + b"\x08\x02" + b"\0" * 16 + uvarint(len(version)) + version + uvarint(len(mod)) + mod


def go_pointers(version="go1.16.15", modinfo=MODINFO, ptr_size=8, big=False):
    """The pre-1.18 header, as a function of the address it is loaded at: two pointers to Go string
    headers (pointer, length), which point to the strings after them."""
    word = (">" if big else "<") + ("Q" if ptr_size == 8 else "I")

    def content(addr):
        strings = [version.encode(), framed(modinfo)]
        headers_at = addr + 32
        data_at = headers_at + 4 * ptr_size
        headers, data = b"", b""
        for s in strings:
            headers += struct.pack(word, data_at + len(data)) + struct.pack(word, len(s))
            data += s
        pointers = struct.pack(word, headers_at) + struct.pack(word, headers_at + 2 * ptr_size)
        head = GO_MAGIC + bytes([ptr_size, 1 if big else 0]) + pointers
        return head.ljust(32, b"\0") + headers + data
    return content


def rust_packages(packages):
    return zlib.compress(json.dumps({"packages": packages}).encode())


RUST = [
    {"name": "app", "version": "0.3.1", "source": "local", "dependencies": [1, 2], "root": True},
    {"name": "serde", "version": "1.0.195", "source": "crates.io"},
    {"name": "libc", "version": "0.2.152", "source": "crates.io", "kind": "build"},
    {"name": "fork", "version": "0.1.0", "source": "git", "dependencies": [1]},
]


def craft_elf(sections=(), machine=62, is64=True, little=True, section_headers=True, load_flags=6):
    """A small ELF file: a header, one PT_LOAD mapping the whole file at VADDR (flags 6: readable
    and writable), each section's data (16-aligned; bytes, or a function of the section's address),
    then .shstrtab and the section header table (unless ``section_headers`` is false)."""
    e = "<" if little else ">"
    ehsize, phentsize, shentsize = (64, 56, 64) if is64 else (52, 32, 40)
    body, placed = bytearray(b"\0" * (ehsize + phentsize)), []
    for name, content in list(sections) + [(".shstrtab", None)]:
        body += b"\0" * (-len(body) % 16)
        if content is None:
            content = b"\0" + b"".join(n.encode() + b"\0" for n, _ in sections) + b".shstrtab\0"
        elif callable(content):
            content = content(VADDR + len(body))
        placed.append((name, len(body), len(content)))
        body += content
    body += b"\0" * (-len(body) % 8)
    shoff, names, headers = len(body), 1, [b"\0" * shentsize]
    for name, offset, size in placed:
        fields = (names, 1, 3, VADDR + offset, offset, size, 0, 0, 16, 0)
        headers.append(struct.pack(e + ("IIQQQQIIQQ" if is64 else "IIIIIIIIII"), *fields))
        names += len(name) + 1
    if section_headers:
        body += b"".join(headers)
    count, strndx = (len(headers), len(headers) - 1) if section_headers else (0, 0)
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1 if little else 2, 1, 0]) + b"\0" * 8
    if is64:
        header = ident + struct.pack(e + "HHIQQQIHHHHHH", 2, machine, 1, 0, ehsize, shoff if section_headers else 0,
                                     0, ehsize, phentsize, 1, shentsize, count, strndx)
        phdr = struct.pack(e + "IIQQQQQQ", 1, load_flags, 0, VADDR, VADDR, len(body), len(body), 16)
    else:
        header = ident + struct.pack(e + "HHIIIIIHHHHHH", 2, machine, 1, 0, ehsize, shoff if section_headers else 0,
                                     0, ehsize, phentsize, 1, shentsize, count, strndx)
        phdr = struct.pack(e + "IIIIIIII", 1, 0, VADDR, VADDR, len(body), len(body), load_flags, 16)
    body[:ehsize + phentsize] = header + phdr
    return bytes(body)


# ---- real Go binaries from Debian ----


def own_text(path):
    """What the binary's own bytes say: the Go version, the package path, the build lines."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        at = data.find(GO_MAGIC)
        while at % 16:
            at = data.find(GO_MAGIC, at + 1)
        blob = data[at:at + 64 * 1024]
    version = re.search(rb"go1\.[0-9]+(?:\.[0-9]+)?", blob).group().decode()
    start, end = blob.index(INFO_START) + 16, blob.index(INFO_END)
    text = blob[start:end].decode()
    path_line = re.search(r"^path\t(.*)$", text, re.M).group(1)
    builds = [tuple(line.split("=", 1)) for line in re.findall(r"^build\t(.*)$", text, re.M)]
    return at, version, path_line, builds


def real_binary(path):
    if not os.path.exists(path):
        pytest.skip("%s is not installed" % path)
    return path


def rewritten_go_binary(tmp_path, modinfo=MODINFO, version="go1.22.1", name="app", blob=None):
    """A copy of a real Go binary with its build-info blob rewritten in place; the section header
    is grown to hold it (what follows the section is overwritten: no reader needs it)."""
    source = real_binary(REAL_GO_BINARIES[0])
    at = own_text(source)[0]
    path = tmp_path / name
    shutil.copyfile(source, str(path))
    blob = go_inline(version, modinfo) if blob is None else blob
    with open(str(path), "r+b") as f:
        header = f.read(64)
        shoff, = struct.unpack_from("<Q", header, 40)
        shentsize, shnum = struct.unpack_from("<HH", header, 58)
        for i in range(shnum):
            f.seek(shoff + i * shentsize + 24)
            offset, size = struct.unpack("<QQ", f.read(16))
            if offset == at:
                f.seek(shoff + i * shentsize + 32)
                f.write(struct.pack("<Q", max(size, len(blob))))
                break
        else:
            pytest.fail("no section holds the build info")
        f.seek(at)
        f.write(blob)
    os.chmod(str(path), 0o755)
    return path
