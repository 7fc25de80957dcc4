"""SBOMs judged by the SPDX tools (issue 23, parts 2 and 3): what `build --sbom` writes is valid SPDX 2.3
by the SPDX project's validator (spdx-tools' `pyspdxtools -i`) and is judged by the NTIA
minimum-elements checker (`ntia-conformance-checker`), for real Go binaries of this machine, a
cargo-auditable (Rust) program, a program with no build info, with and without a vendor. The
judges are programs run with the python3 on PATH (tests/run installs them there), so they judge
under every interpreter the suite runs with. The rules behind the documents (suppliers, versions,
the standard library's purl, Rust build dependencies) are unit tables here; so are Go's build info
in a renamed section (real binaries, rewritten) and inspect's settings, shown whole."""

import json
import os
import shutil
import struct
import subprocess

import pytest

import zeroimage
from zeroimage import Module
from conftest import REQUIRE_INTEROP, static_busybox
from binaries import RUST, craft_elf, go_inline, rewritten_go_binary, rust_packages
from helpers import EPOCH, counting_reader, ok
from imagetools import run_cli
from sboms import CHECKSUMS, check_spdx, go_info

VENDOR = "org.opencontainers.image.vendor"
GO = "Organization: The Go Project"
# Go binaries this machine may have (Debian's, built without a module list; official static ones with one)
GO_CANDIDATES = ("skopeo", "umoci", "docker", "runc", "docker-registry", "containerd", "terraform", "kubectl")
ELEMENTS = {"componentNames": "name", "componentVersions": "version", "componentIdentifiers": "identifier",
            "componentSuppliers": "supplier"}


# ---- the judges ----


@pytest.fixture(scope="session")
def judges():
    """The python3 that has spdx-tools and ntia-conformance-checker; skip (or fail under
    ZEROIMAGE_REQUIRE_INTEROP=1) when there is none."""
    python = shutil.which("python3")
    if python and subprocess.run([python, "-c", "import spdx_tools, ntia_conformance_checker"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
        return python
    message = "the SBOM judges (pip install spdx-tools ntia-conformance-checker) are not installed for python3"
    if REQUIRE_INTEROP:
        pytest.fail(message + "; ZEROIMAGE_REQUIRE_INTEROP=1 makes this a failure")
    pytest.skip(message)


def judged(judges, tmp_path, document):
    """The NTIA checker's report of a document the SPDX validator found valid."""
    path = tmp_path / "judged.spdx.json"
    path.write_bytes(document if isinstance(document, bytes) else document.encode())
    valid = subprocess.run([judges, "-m", "spdx_tools.spdx.clitools.pyspdxtools", "-i", str(path)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    assert valid.returncode == 0 and not valid.stdout.strip(), valid.stdout
    ntia = subprocess.run([judges, "-m", "ntia_conformance_checker.main", "-r", "json", str(path)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    report = json.loads(ntia.stdout)
    assert ntia.returncode == (0 if report["isNtiaConformant"] else 1), ntia.stderr
    assert not report["validationMessages"] and not report["parsingError"]
    assert report["authorNameProvided"] and report["timestampProvided"] and report["dependencyRelationshipsProvided"]
    return report


def missing(report):
    """NTIA minimum element -> the components the checker finds without it (only those with some)."""
    return {ELEMENTS[key]: report[key]["nonconformantComponents"] for key in ELEMENTS
            if report[key]["nonconformantComponents"]}


def test_the_judges_judge(judges, tmp_path):
    """They are real judges: a broken document is invalid, a package without supplier is reported."""
    doc = json.loads(zeroimage.spdx_document("/app", CHECKSUMS, None, "2023-11-14T22:13:20Z"))
    doc["relationships"][0]["relatedSpdxElement"] = "SPDXRef-nothing"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc))
    out = subprocess.run([judges, "-m", "spdx_tools.spdx.clitools.pyspdxtools", "-i", str(path)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    assert out.returncode != 0 and "SPDXRef-nothing" in out.stdout
    report = judged(judges, tmp_path, zeroimage.spdx_document("/app", CHECKSUMS, None, "2023-11-14T22:13:20Z"))
    assert missing(report) == {"supplier": ["app"]}         # NOASSERTION is no supplier to the checker


# ---- the rules, pure ----


@pytest.mark.parametrize("toolchain, version", [
    ("go1.22.1", "1.22.1"),
    ("go1.23.1 X:nocoverageredesign", "1.23.1"),        # experiments: the toolchain's suffix
    ("go1.24.0 X:boringcrypto,nocoverageredesign", "1.24.0"),
    ("go1.22rc1", "1.22rc1"),
    ("go1.21beta2", "1.21beta2"),
    ("go1.20", "1.20"),
    ("go1.22.5-microsoft", "1.22.5"),
    ("devel go1.24-abc1234 Tue Mar 4 10:00:00 2025 +0000", None),      # no release: no purl
    ("devel +b7a4d0fa Thu Jan 1 00:00:00 2021", None),
    ("go", None), ("gox1", None), ("", None),
])
def test_stdlib_purl_version(toolchain, version):
    assert zeroimage._stdlib_version(toolchain) == version
    doc = json.loads(zeroimage.spdx_document("/app", CHECKSUMS, go_info()._replace(toolchain=toolchain),
                                             "2023-11-14T22:13:20Z"))
    stdlib = [p for p in doc["packages"] if p["name"] == "stdlib"]
    if not toolchain:
        assert stdlib == []
        return
    assert stdlib[0]["versionInfo"] == toolchain, "the whole toolchain string: what built it"
    assert stdlib[0].get("externalRefs", [{}])[0].get("referenceLocator") == (
        version and "pkg:golang/stdlib@" + version)
    assert stdlib[0]["supplier"] == GO


@pytest.mark.parametrize("language, module, supplier", [
    ("go", Module("github.com/acme/app/v2"), "Organization: acme"),
    ("go", Module("github.com/acme"), "NOASSERTION"),                     # no repository: no owner
    ("go", Module("github.com/../x"), "NOASSERTION"),
    ("go", Module("gitlab.com/group/sub/project"), "Organization: group"),
    ("go", Module("bitbucket.org/team/repo"), "Organization: team"),
    ("go", Module("codeberg.org/o/r"), "Organization: o"),
    ("go", Module("git.sr.ht/~sircmpwn/getopt"), "Person: sircmpwn"),
    ("go", Module("gopkg.in/yaml.v3"), "Organization: go-yaml"),           # gopkg.in/NAME.vN: github.com/go-NAME
    ("go", Module("gopkg.in/natefinch/lumberjack.v2"), "Organization: natefinch"),
    ("go", Module("golang.org/x/sys"), GO),
    ("go", Module("std"), GO),
    ("go", Module("k8s.io/api"), "NOASSERTION"),                          # a host that names no owner
    ("go", Module("example.com/app"), "NOASSERTION"),
    ("go", Module("../local"), "Organization: Me"),                       # a local directory: the program's
    ("go", Module("/abs/dir"), "Organization: Me"),
    ("rust", Module("serde", source="crates.io"), "NOASSERTION"),          # crates.io names no author
    ("rust", Module("fork", source="git"), "NOASSERTION"),
    ("rust", Module("member", source="local"), "Organization: Me"),       # the program's workspace
    ("rust", Module("github.com/acme/x", source="registry"), "NOASSERTION"),
])
def test_module_supplier(language, module, supplier):
    assert zeroimage._module_supplier(language, module, "Organization: Me") == supplier


@pytest.mark.parametrize("vendor, supplier", [
    ("ACME", "Organization: ACME"),
    ("  ACME\n Corp\t", "Organization: ACME Corp"),                       # one line
    ("ACME (Europe)", "Organization: ACME [Europe]"),                     # not read as an e-mail address
    ("Organization: ACME (ops@acme.example)", "Organization: ACME (ops@acme.example)"),    # an SPDX actor already
    ("Person: Jane Doe", "Person: Jane Doe"),
    ("A\x1bB", "Organization: A\\x1bB"),
    ("", "NOASSERTION"), (" \n", "NOASSERTION"),
    ("NOASSERTION", "NOASSERTION"), ("Organization:", "NOASSERTION"), ("Person: ", "NOASSERTION"),
])
def test_supplier_from_the_vendor(vendor, supplier):
    assert zeroimage._spdx_supplier(vendor) == supplier


def program_of(doc):
    return next(p for p in doc["packages"] if p["SPDXID"] == "SPDXRef-Package-program")


def test_program_supplier_and_version():
    doc = lambda info, **kw: json.loads(zeroimage.spdx_document("/app", CHECKSUMS, info, "2023-11-14T22:13:20Z",
                                                                **kw))
    assert (program_of(doc(None))["supplier"], program_of(doc(None))["versionInfo"]) == ("NOASSERTION", "NOASSERTION")
    assert program_of(doc(None, supplier="ACME", version="1.2"))["supplier"] == "Organization: ACME"
    assert program_of(doc(None, supplier="ACME", version="1.2"))["versionInfo"] == "1.2"
    go = go_info()      # main module example.com/app v1.2.3: a host that names no owner
    assert (program_of(doc(go))["supplier"], program_of(doc(go, version="9"))["versionInfo"]) == \
        ("NOASSERTION", "v1.2.3"), "what the binary states comes first"
    devel = go._replace(main=Module("github.com/acme/app", "(devel)"))
    assert (program_of(doc(devel))["supplier"], program_of(doc(devel))["versionInfo"]) == \
        ("Organization: acme", "NOASSERTION")
    assert program_of(doc(devel, supplier="Vendor Inc"))["supplier"] == "Organization: Vendor Inc", "the vendor wins"
    by_name = {p["name"]: p for p in doc(go, supplier="V")["packages"]}
    assert by_name["../net"]["supplier"] == "Organization: V" and by_name["../net"]["versionInfo"] == "NOASSERTION"


def test_rust_build_dependencies_are_build_dependency_of_the_program():
    info = zeroimage._rust_build_info(rust_packages(RUST))
    doc = json.loads(zeroimage.spdx_document("/app", CHECKSUMS, info, "2023-11-14T22:13:20Z"))
    check_spdx(doc)
    ids = {p["name"]: p["SPDXID"] for p in doc["packages"]}
    relations = {(r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"]) for r in doc["relationships"]}
    program = "SPDXRef-Package-program"
    assert (ids["libc"], "BUILD_DEPENDENCY_OF", program) in relations              # SPDX 2.3: A is a build dependency of B
    assert (program, "DEPENDS_ON", ids["libc"]) not in relations
    assert {(program, "DEPENDS_ON", ids[name]) for name in ("serde", "fork")} <= relations


def test_the_supplier_and_version_are_what_the_user_said():
    def says(labels=(), annotations=()):
        return zeroimage._user_says(zeroimage.ImageOptions(labels=labels, annotations=annotations), VENDOR)
    assert says([(VENDOR, "L")]) == "L"
    assert says([(VENDOR, "L")], [(VENDOR, "A")]) == "A", "the annotation first"
    assert says([(VENDOR, "first"), (VENDOR, "last")]) == "last"
    assert says() == "" and says([(VENDOR, " \n")]) == ""
    assert says([(VENDOR, "a\n b\x1b")]) == "a b\\x1b"
    assert says([("org.example.vendor", "x")]) == ""


def test_a_vendor_the_user_repeats_from_the_base_is_still_the_users(tmp_path, busybox_program):
    base = tmp_path / "base.tar"
    ok(run_cli("build", "--from", "scratch", "--label", VENDOR + "=Same Inc", "-o", base, busybox_program, env=EPOCH))
    archive = tmp_path / "app.tar"
    ok(run_cli("build", "--sbom", "--from-archive", base, "--target", "/app", "--label", VENDOR + "=Same Inc",
               "-o", archive, busybox_program, env=EPOCH))
    document = json.loads(ok(run_cli("inspect", "--sbom", archive)).stdout)
    assert document["packages"][0]["supplier"] == "Organization: Same Inc"
    archive = tmp_path / "inherited.tar"        # the base's own vendor is not the program's supplier
    ok(run_cli("build", "--sbom", "--from-archive", base, "--target", "/app", "-o", archive, busybox_program,
               env=EPOCH))
    assert json.loads(ok(run_cli("inspect", "--sbom", archive)).stdout)["packages"][0]["supplier"] == "NOASSERTION"


# ---- documents zeroimage writes, judged ----


def sbom_of(tmp_path, program, *options, name="app"):
    archive = tmp_path / (name + ".tar")
    ok(run_cli("build", "--sbom", "--from", "scratch", "-o", archive, *(list(options) + [program]), env=EPOCH))
    return ok(run_cli("inspect", "--sbom", archive)).stdout


def go_binaries():
    """The real Go binaries on this machine among GO_CANDIDATES, as zeroimage's own reader finds them
    (the `go version -m` check): [(path, BuildInfo)]."""
    found, seen = [], set()
    for name in GO_CANDIDATES:
        for path in (shutil.which(name), "/usr/bin/" + name, "/usr/sbin/" + name, "/usr/local/bin/" + name):
            if not path or not os.path.isfile(path) or os.path.realpath(path) in seen:
                continue
            seen.add(os.path.realpath(path))
            with open(path, "rb") as f:
                try:
                    info = zeroimage.read_build_info(f)
                except ValueError:
                    continue
            if info is not None and info.language == "go":
                found.append((path, info))
    return found


@pytest.fixture(scope="module")
def real_go():
    found = go_binaries()
    if not found:
        message = "no Go binary on this machine (skopeo, umoci and docker.io have some)"
        if REQUIRE_INTEROP:
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_real_go_programs_judged(judges, real_go, tmp_path):
    """Each real Go binary's SBOM: valid; with a vendor, every component the build info names has a
    supplier but those from hosts that name no owner (and nothing else is missing); without one,
    the program's own supplier comes from its main module's host, else is missing."""
    for n, (path, info) in enumerate(real_go[:3]):
        program = tmp_path / ("go%d" % n) / os.path.basename(path)
        program.parent.mkdir()
        os.symlink(path, str(program))
        report = judged(judges, tmp_path, sbom_of(program.parent, program, "--label", VENDOR + "=ACME Corp"))
        unknown = sorted((m.replace or m).path for m in info.deps
                         if zeroimage._module_supplier("go", m.replace or m) == "NOASSERTION")
        assert {k: sorted(v) for k, v in missing(report).items()} == ({"supplier": unknown} if unknown else {}), path
        document = zeroimage.spdx_document("/" + program.name, CHECKSUMS, info, "2023-11-14T22:13:20Z")
        doc = json.loads(document)
        check_spdx(doc)
        without = {k: sorted(v) for k, v in missing(judged(judges, tmp_path, document)).items()}
        if program_of(doc)["supplier"] == "NOASSERTION":        # no vendor, and no owner its main module names
            unknown = sorted(unknown + [program_of(doc)["name"]])
        assert without == ({"supplier": unknown} if unknown else {}), path
        stdlib = next(p for p in doc["packages"] if p["name"] == "stdlib")
        assert stdlib["externalRefs"][0]["referenceLocator"] == "pkg:golang/stdlib@" + info.toolchain[2:].split()[0]
        assert program_of(doc)["versionInfo"] == (info.main.version if info.main and info.main.version != "(devel)"
                                                  else "NOASSERTION")
        expected = zeroimage._module_supplier("go", info.main) if info.main else "NOASSERTION"
        assert program_of(doc)["supplier"] == expected


def test_program_without_build_info_judged(judges, tmp_path):
    program = tmp_path / "tool"
    busybox = static_busybox()
    if busybox:
        shutil.copyfile(busybox, str(program))
    else:
        program.write_bytes(craft_elf([(".text", b"\0" * 64)]))
    document = sbom_of(tmp_path, program, "--annotation", VENDOR + "=ACME",
                       "--label", "org.opencontainers.image.version=1.4")
    report = judged(judges, tmp_path, document)
    assert report["isNtiaConformant"] and missing(report) == {}
    doc = json.loads(document)
    assert (program_of(doc)["supplier"], program_of(doc)["versionInfo"]) == ("Organization: ACME", "1.4")
    document = sbom_of(tmp_path, program, name="plain")
    report = judged(judges, tmp_path, document)
    assert missing(report) == {"supplier": ["tool"]}, "no vendor: NOASSERTION, which the checker counts as none"
    assert program_of(json.loads(document))["versionInfo"] == "NOASSERTION"


def test_a_bases_vendor_is_not_the_programs(judges, tmp_path):
    program = tmp_path / "tool"
    program.write_bytes(craft_elf([(".text", b"\0" * 64)]))
    base = tmp_path / "base.tar"
    ok(run_cli("build", "--from", "scratch", "--label", VENDOR + "=Base Inc", "-o", base, program, env=EPOCH))
    archive = tmp_path / "on-base.tar"
    ok(run_cli("build", "--sbom", "--from-archive", base, "--target", "/tool2", "-o", archive, program, env=EPOCH))
    doc = json.loads(ok(run_cli("inspect", "--sbom", archive)).stdout)
    assert program_of(doc)["supplier"] == "NOASSERTION"
    ok(run_cli("build", "--sbom", "--from-archive", base, "--target", "/tool2", "--label", VENDOR + "=Mine",
               "-o", archive, program, env=EPOCH))
    document = ok(run_cli("inspect", "--sbom", archive)).stdout
    assert program_of(json.loads(document))["supplier"] == "Organization: Mine"
    assert missing(judged(judges, tmp_path, document)) == {}


def test_rust_program_judged(judges, tmp_path):
    """cargo auditable's crates: the build-only one is a BUILD_DEPENDENCY_OF the program, which the
    NTIA checker does not follow from the root (a "floating" component it leaves out); crates.io and
    git crates have no supplier the binary names."""
    program = tmp_path / "app"
    program.write_bytes(craft_elf([(".text", b"\0" * 16), (".dep-v0", rust_packages(RUST))]))
    document = sbom_of(tmp_path, program, "--label", VENDOR + "=ACME")
    doc = json.loads(document)
    check_spdx(doc)
    assert program_of(doc)["supplier"] == "Organization: ACME" and program_of(doc)["versionInfo"] == "0.3.1"
    report = judged(judges, tmp_path, document)
    libc = next(p["SPDXID"] for p in doc["packages"] if p["name"] == "libc")
    assert report["graphValidation"]["floatingComponents"]["floatingComponentIds"] == [libc]
    assert missing(report) == {"supplier": ["fork", "serde"]}
    assert not any(r["relationshipType"] == "DEPENDS_ON" and r["relatedSpdxElement"] == libc
                   for r in doc["relationships"])


def test_go_program_with_modules_judged(judges, tmp_path):
    """A real binary rewritten to carry modules from several hosts, with the toolchain's experiments."""
    modinfo = ("path\tgithub.com/acme/app/cmd/app\n"
               "mod\tgithub.com/acme/app\t(devel)\t\n"
               "dep\tgolang.org/x/sys\tv0.15.0\th1:syssum=\n"
               "dep\tgitlab.com/group/sub/lib\tv1.0.0\th1:a=\n"
               "dep\tgopkg.in/yaml.v3\tv3.0.1\th1:b=\n"
               "dep\tgithub.com/old/lib\tv1.0.0\th1:oldsum=\n"
               "=>\t../local\t\t\n"
               "build\tGOOS=linux\n")
    program = rewritten_go_binary(tmp_path, modinfo, version="go1.23.1 X:nocoverageredesign")
    document = sbom_of(tmp_path, program)
    report = judged(judges, tmp_path, document)
    assert report["isNtiaConformant"] and missing(report) == {}, "every supplier and version known, or NOASSERTION"
    doc = json.loads(document)
    by_name = {p["name"]: p for p in doc["packages"]}
    assert program_of(doc)["supplier"] == "Organization: acme" and program_of(doc)["versionInfo"] == "NOASSERTION"
    assert by_name["stdlib"]["externalRefs"][0]["referenceLocator"] == "pkg:golang/stdlib@1.23.1"
    assert by_name["stdlib"]["versionInfo"] == "go1.23.1 X:nocoverageredesign"
    assert [by_name[n]["supplier"] for n in ("golang.org/x/sys", "gitlab.com/group/sub/lib", "gopkg.in/yaml.v3",
                                             "../local")] == [GO, "Organization: group", "Organization: go-yaml",
                                                              "Organization: acme"]


# ---- Go's build info where the section is renamed: found as Go's debug/buildinfo finds it ----


def renamed(source, dest):
    """A copy of a real Go binary with ``.go.buildinfo`` in .shstrtab renamed ``.zz.buildinfo``; and
    whether Go's debug/buildinfo (1.23 and later) still finds the info: it searches the first
    writable, not executable PT_LOAD segment for the magic at a 16-byte aligned address (a binary
    linked with a RELRO segment first has its build info in the second: not found)."""
    shutil.copyfile(source, str(dest))
    with open(str(dest), "r+b") as f:
        header = f.read(64)
        assert header[4] == 2 and header[5] == 1, "64-bit little-endian"
        phoff, shoff = struct.unpack_from("<QQ", header, 32)
        phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from("<HHHHH", header, 54)
        start = filesz = None
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            kind, flags, _, vaddr, _, filesz = struct.unpack("<IIQQQQ", f.read(40))
            if kind == 1 and flags & 3 == 2:
                start = vaddr
                break
        sections = []
        for i in range(shnum):
            f.seek(shoff + i * shentsize)
            name, _, _, addr, offset, size = struct.unpack("<IIQQQQ", f.read(40))
            sections.append((name, addr, offset, size))
        names_at = sections[shstrndx][2]
        f.seek(names_at)
        names = f.read(sections[shstrndx][3])
        at = names.index(b".go.buildinfo\0")
        addr = next(a for name, a, _, _ in sections if name == at)
        f.seek(names_at + at)
        f.write(b".zz.buildinfo")
    return addr % 16 == 0 and start <= addr and addr + 32 <= start + filesz


def test_renamed_build_info_section_of_real_go_binaries(real_go, tmp_path):
    found = 0
    for path, info in real_go:
        with open(path, "rb") as f:
            if zeroimage._elf_header(f).is64 is False:
                continue
        copy = tmp_path / os.path.basename(path)
        go_finds_it = renamed(path, copy)
        with open(str(copy), "rb") as f:
            assert ".go.buildinfo" not in zeroimage._elf_sections(f, zeroimage._elf_header(f))
            assert zeroimage.read_build_info(f) == (info if go_finds_it else None), path
        found += go_finds_it
        copy.unlink()
    if not found:
        pytest.skip("no Go binary here keeps its build info in its first writable segment")


def test_renamed_section_crafted_and_bounded():
    """Crafted: a renamed section in the writable segment is found wherever it is (16-aligned, a whole
    header after it), also 8 MiB in; not when misaligned; and the search reads 1 MiB at a time."""
    Counting = counting_reader()

    def info(*sections):
        return zeroimage.read_build_info(Counting(craft_elf(sections)))
    found = info((".zz.buildinfo", go_inline()))
    assert found.toolchain == "go1.22.1" and found.main.path == "github.com/acme/app/v2"
    assert info((".pad", b"\0" * 4096), (".zz.buildinfo", go_inline())) == found
    assert info((".pad", b"\0" * 8), (".zz", b"\0" * 8 + go_inline())) is None, "not aligned"
    misaligned_first = b"\0" * 8 + go_inline()[:20] + b"\0" * 4
    assert info((".zz", misaligned_first + go_inline())) == found, "a misaligned magic is passed over"
    Counting.largest = 0
    assert info((".pad", b"\0" * (8 << 20)), (".zz.buildinfo", go_inline())) == found
    assert Counting.largest <= 1 << 20


# ---- inspect: settings whole and in order, the kind of each crate ----


def test_inspect_shows_settings_exactly(tmp_path):
    modinfo = ("path\texample.com/app\n"
               "build\t-ldflags=\" -X \\\"main.v=1\\\"  -extldflags -static\"\n"     # docker's: a leading space
               "build\tGOOS=linux\n"
               "build\t\"odd key\"=\"line\\none\\ttab \\x1b\"\n"
               "build\tCGO_ENABLED=0\n"
               "build\tvcs.revision=" + "a" * 300 + "\n")
    program = rewritten_go_binary(tmp_path, modinfo)
    out = tmp_path / "app.tar"
    ok(run_cli("build", "--from", "scratch", "-o", out, program))
    lines = [line for line in ok(run_cli("inspect", "--build-info", out)).stdout.splitlines()
             if line.startswith("  Build:")]
    assert lines == ['  Build:     -ldflags= -X "main.v=1"  -extldflags -static',
                     "  Build:     GOOS=linux",
                     "  Build:     odd key=line\\x0aone\\x09tab \\x1b",
                     "  Build:     CGO_ENABLED=0",
                     "  Build:     vcs.revision=" + "a" * 300]


def test_inspect_lines_of_real_go_binaries(real_go):
    for path, info in real_go:
        lines = zeroimage._build_info_lines(zeroimage.build_info_json(info))
        assert [line for line in lines if line.startswith("  Build:")] == \
            ["  Build:     %s=%s" % setting for setting in info.settings], path


def test_inspect_shows_each_crates_kind(tmp_path):
    program = tmp_path / "app"
    program.write_bytes(craft_elf([(".text", b"\0" * 16), (".dep-v0", rust_packages(RUST))]))
    out = tmp_path / "app.tar"
    ok(run_cli("build", "--from", "scratch", "-o", out, program))
    assert "  Deps:      3 (1 of them build dependencies)\n" in ok(run_cli("inspect", "--build-info", out)).stdout
    value = json.loads(ok(run_cli("inspect", "--json", "--build-info", out)).stdout)["buildInfo"]
    assert [(d["path"], d["kind"]) for d in value["deps"]] == [("fork", "runtime"), ("libc", "build"),
                                                              ("serde", "runtime")]
