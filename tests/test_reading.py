"""Reading archives and layouts, and inspecting them: what a target names (a path or a registry
reference), compressed archives, layouts read for what was asked, inspect of indexes.

No network (the registry comparison lives in test_registry.py) and no external tools.
"""

import bz2
import gzip
import json
import lzma

import pytest

import zeroimage
from binaries import make_elf
from helpers import fails
from imagetools import LayoutBuilder, run_cli


def _layout_with_layers(builder, count, size):
    """An image of ``count`` layers of ``size`` distinct bytes each (the bytes need not be a tar to be read)."""
    layers = [bytes([i + 1]) * size for i in range(count)]
    descs = [{"mediaType": zeroimage.OCI_LAYER_GZIP, "digest": builder.add(layer), "size": size} for layer in layers]
    config = json.dumps({"os": "linux", "architecture": "amd64",
                         "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": zeroimage.OCI_MANIFEST, "layers": descs,
                           "config": {"mediaType": zeroimage.OCI_CONFIG, "digest": builder.add(config),
                                      "size": len(config)}}).encode()
    return {"mediaType": zeroimage.OCI_MANIFEST, "digest": builder.add(manifest), "size": len(manifest),
            "platform": {"os": "linux", "architecture": "amd64"}}


# ---- compressed archives ----


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress], ids=["gzip", "bzip2", "xz"])
def test_compressed_layout_is_decompressed_once(tmp_path, compress):
    """A .tar.gz (.tar.bz2, .tar.xz) of a layout is decompressed once when opened: blobs read in turn
    never go back to the compressed file (tarfile seeking backwards in a gzip stream decompresses again
    from the start, which made interleaved reads quadratic). Shown by emptying the file once it is
    open: every blob still reads back, verified."""
    b = LayoutBuilder()
    desc = _layout_with_layers(b, 4, 64 * 1024)
    plain = b.write_tar(tmp_path / "layout.tar", [desc])
    packed = tmp_path / "layout.tar.gz"
    with open(plain, "rb") as f:
        packed.write_bytes(compress(f.read()))
    with zeroimage.Layout(str(packed)) as layout:
        with open(str(packed), "r+b") as f:
            f.truncate(0)
        chosen = zeroimage.choose_image(layout.candidates(), None, None, str(packed))
        manifest = json.loads(layout.read_manifest(chosen.descriptor))
        readers = [layout.blob(d).open() for d in manifest["layers"]]
        got = [b"" for _ in readers]
        while any(r is not None for r in readers):         # interleaved, 4 KiB from each in turn
            for i, r in enumerate(readers):
                if r is not None:
                    chunk = r.read(4096)
                    got[i] += chunk
                    if not chunk:
                        r.close()
                        readers[i] = None
    assert [len(g) for g in got] == [64 * 1024] * 4 and got[2] == b"\x03" * 64 * 1024


def test_damaged_compressed_archive_is_one_line(tmp_path):
    b = LayoutBuilder()
    plain = b.write_tar(tmp_path / "layout.tar", [_layout_with_layers(b, 1, 100000)])
    with open(plain, "rb") as f:
        data = gzip.compress(f.read())
    (tmp_path / "cut.tar.gz").write_bytes(data[:len(data) // 2])
    fails(run_cli("inspect", tmp_path / "cut.tar.gz"), 1, "cut.tar.gz is a damaged gzip stream")
    (tmp_path / "junk.tgz").write_bytes(b"\x1f\x8b" + b"junk" * 100)
    fails(run_cli("inspect", tmp_path / "junk.tgz"), 1, "junk.tgz is a damaged gzip stream")
    (tmp_path / "text.tar.gz").write_bytes(gzip.compress(b"not a tar at all" * 100))
    fails(run_cli("inspect", tmp_path / "text.tar.gz"), 1, "is not a tar archive")


# ---- a path or a registry reference ----

NO_NETWORK = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "",
              "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9", "no_proxy": ""}


@pytest.mark.parametrize("text, is_path", [
    ("./missing.tar", True), ("../x", True), ("/abs/layout", True), ("~/base.tar", True), (".", True),
    ("missing.tar", True), ("app.tar:1", True), ("app.tar:alpine:3.19", True), ("dist/base.tgz", True),
    ("base.tar.gz", True), ("layout.oci:v1", True), ("APP.TAR", True),
    ("alpine", False), ("alpine:3.19", False), ("layout", False), ("layout:1", False), ("dist/app", False),
    ("ghcr.io/me/app:1", False), ("localhost:5000/app", False), ("app@sha256:" + "a" * 64, False),
    ("registry.example.com/tar", False),
])
def test_the_path_rule(text, is_path):
    assert zeroimage.looks_like_path(text) is is_path


@pytest.mark.parametrize("target", ["./missing.tar", "missing.tar", "missing.tar:1", "~/missing.tar",
                                    "../nope/layout", "./layout-dir:1"])
def test_inspect_of_a_missing_path_says_so_and_asks_no_registry(tmp_path, target):
    """Before: './missing.tar' was "bad registry host '.'", and 'missing.tar' went to Docker Hub."""
    (tmp_path / "work").mkdir()
    env = dict(NO_NETWORK, HOME=str(tmp_path))
    last = fails(run_cli("inspect", target, cwd=str(tmp_path / "work"), env=env), 1, "no such file or directory")
    assert last == "zeroimage: error: %s: no such file or directory" % target


def _image(b, name, platform=("linux", "amd64", ""), **config):
    members = [("etc", "dir", None, 0o755), ("etc/" + name, "file", name.encode(), 0o644)]
    desc = b.image([members], {"config": dict(config)}, platform=platform)
    return dict(desc, annotations={"org.opencontainers.image.ref.name": name})


def test_a_reference_is_never_shadowed_by_a_file_of_that_name(tmp_path):
    """A layout directory called 'store' next to `inspect store:2`: the registry is asked (here, a
    proxy that refuses: the error says so), with a note on how to read the file; ./store:2 reads it."""
    b = LayoutBuilder()
    b.write_dir(tmp_path / "store", [_image(b, "2")])
    r = run_cli("inspect", "store:2", cwd=str(tmp_path), env=NO_NETWORK)
    fails(r, 1, "registry-1.docker.io")
    assert "write ./store:2" in r.stderr
    assert zeroimage.archive_target("store:2") is None
    r = run_cli("inspect", "--json", "./store:2", cwd=str(tmp_path), env=NO_NETWORK)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["name"] == "2"
    # what is no reference at all but exists is still read from disk
    b.write_dir(tmp_path / "My Layout", [_image(b, "1")])
    r = run_cli("inspect", "--json", "My Layout", cwd=str(tmp_path), env=NO_NETWORK)
    assert r.returncode == 0 and json.loads(r.stdout)["name"] == "1", r.stderr


@pytest.mark.parametrize("args, words", [
    (["build", "--from", "base.tar", "prog"], "--from-archive base.tar"),
    (["build", "--push", "app.tar", "prog"], "'app.tar' looks like a path"),
    (["pull", "alpine.tar"], "'alpine.tar' looks like a path"),
    (["push", "app.tar", "./out"], "'./out' looks like a path"),
    (["check-auth", "~/x.tar"], "looks like a path"),
])
def test_a_path_where_a_reference_belongs_is_a_usage_error(tmp_path, args, words):
    (tmp_path / "prog").write_bytes(b"x")
    r = run_cli(*args, cwd=str(tmp_path), env=NO_NETWORK)
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize("args", [["push", "", "localhost:5000/x"], ["build", "--from-archive", "", "prog"],
                                  ["build", "--from-archive", ":app:1", "prog"]])
def test_an_empty_archive_path_is_a_usage_error(tmp_path, args):
    """An archive word with no path (``push ""``, ``--from-archive ""``) is said so, not ": no such file"."""
    (tmp_path / "prog").write_bytes(b"x")
    r = run_cli(*args, cwd=str(tmp_path), env=NO_NETWORK)
    assert r.returncode == 2 and "the archive path is empty" in r.stderr and "Traceback" not in r.stderr, r.stderr
    with pytest.raises(zeroimage.UsageError, match="the archive path is empty"):
        zeroimage._split_archive_spec("")


# The library reads these words as the CLI does: a path where only a registry reference belongs is a
# UsageError, never a request to Docker Hub for docker.io/library/app.tar (HTTPS_PROXY is a dead port
# here: a call that went to the network would fail with NetworkError instead).
LIBRARY_PATHS = [
    ("pull", lambda: zeroimage.pull("alpine.tar", "out.tar")),
    ("push_archive", lambda: zeroimage.push_archive("app.tar", "./out")),
    ("check_auth", lambda: zeroimage.check_auth("~/x.tar")),
    ("tag_image", lambda: zeroimage.tag_image("app.tar", ["2"])),
    ("delete_image", lambda: zeroimage.delete_image("../app.tar")),
    ("list_tags", lambda: zeroimage.list_tags("app.oci")),
    ("build push", lambda: zeroimage.build(zeroimage.BuildOptions("prog", base="scratch", push="app.tar"))),
]


@pytest.mark.parametrize("call", [c for _, c in LIBRARY_PATHS], ids=[n for n, _ in LIBRARY_PATHS])
def test_a_path_where_a_reference_belongs_is_a_usage_error_in_the_library_too(tmp_path, monkeypatch, call):
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    (tmp_path / "prog").write_bytes(make_elf(62))
    (tmp_path / "app.tar").write_bytes(b"")
    with pytest.raises(zeroimage.UsageError, match="looks like a path; a (registry image|repository in a registry) is wanted here"):
        call()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.tar", "prog"]


# ---- a layout is read for what was asked ----


def _artifact(b, artifact_type="application/vnd.example.sbom+json", platform=None):
    empty = b.add(b"{}")
    blob = b.add(b'{"sbom": true}')
    manifest = json.dumps({"schemaVersion": 2, "mediaType": zeroimage.OCI_MANIFEST, "artifactType": artifact_type,
                           "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
                           "layers": [{"mediaType": "application/json", "digest": blob, "size": 14}]}).encode()
    desc = {"mediaType": zeroimage.OCI_MANIFEST, "digest": b.add(manifest), "size": len(manifest)}
    if platform:
        desc["platform"] = {"os": platform[0], "architecture": platform[1]}
    return desc


def _schema1(b):
    manifest = json.dumps({"schemaVersion": 1, "name": "library/old", "tag": "1", "architecture": "amd64",
                           "fsLayers": [], "history": []}).encode()
    return {"mediaType": "application/vnd.docker.distribution.manifest.v1+prettyjws", "digest": b.add(manifest),
            "size": len(manifest)}


def _named(desc, name):
    return dict(desc, annotations={"org.opencontainers.image.ref.name": name})


def _siblings_layout(tmp_path, as_dir):
    """Image 'good', and entries not asked for that cannot be used: a wrong size, an unknown digest
    algorithm, an artifact, a schema 1 manifest, an entry that is not even an object is not among them
    (that is a broken index.json, not an entry)."""
    b = LayoutBuilder()
    good = _image(b, "good")
    other = _image(b, "other")
    entries = [good, dict(other, size=other["size"] + 1, annotations={"org.opencontainers.image.ref.name": "sized"}),
               {"mediaType": zeroimage.OCI_MANIFEST, "digest": "sha384:" + "a" * 96, "size": 10,
                "annotations": {"org.opencontainers.image.ref.name": "sha384"}},
               _named(_artifact(b), "sbom"), _named(_schema1(b), "old"), {"digest": "md5:x", "size": 1}]
    path = tmp_path / ("layout" if as_dir else "layout.tar")
    return b.write_dir(path, entries) if as_dir else b.write_tar(path, entries)


@pytest.mark.parametrize("as_dir", [False, True], ids=["archive", "directory"])
def test_entries_not_asked_for_never_stop_a_command(tmp_path, as_dir, prog_file):
    path = _siblings_layout(tmp_path, as_dir)
    r = run_cli("inspect", "--json", path + ":good", env=NO_NETWORK)
    assert r.returncode == 0 and json.loads(r.stdout)["name"] == "good", r.stderr
    r = run_cli("build", "--from-archive", path + ":good", "-o", tmp_path / "out.tar", prog_file, env=NO_NETWORK)
    assert r.returncode == 0, r.stderr
    # push reads the whole image before it asks the registry anything: here the refusing proxy
    fails(run_cli("push", path + ":good", "localhost:9/app:1", env=NO_NETWORK), 1, "cannot reach", "localhost:9")
    # each bad entry fails when it is the one asked for, saying what it is
    for name, words in [("sized", "its descriptor says"), ("sha384", "sha384"), ("sbom", "is an artifact"),
                        ("old", "schema 1")]:
        for args in (["inspect", path + ":" + name], ["build", "--from-archive", path + ":" + name, prog_file]):
            last = fails(run_cli(*args, cwd=str(tmp_path), env=NO_NETWORK), 1, words)
            assert "--platform" not in last


@pytest.fixture
def prog_file(tmp_path):
    path = tmp_path / "prog"
    path.write_bytes(make_elf(62) + b"\0" * 64)
    return str(path)


@pytest.mark.parametrize("command", ["inspect", "build", "push"])
def test_a_name_that_matches_nothing_is_an_error_for_every_command(tmp_path, command, prog_file):
    """Before: an image whose ref name is a bare tag ("1", as skopeo writes it) answered to "latest"
    (the tag Reference.parse supplies), so `inspect L:latest` showed the only image."""
    b = LayoutBuilder()
    single = b.write_tar(tmp_path / "one.tar", [_image(b, "1")])
    unnamed = b.write_tar(tmp_path / "unnamed.tar", [b.image([[("x", "file", b"x", 0o644)]], {"config": {}})])
    for path, name in [(single, "nope"), (single, "latest"), (unnamed, "nope"), (unnamed, "latest")]:
        spec = "%s:%s" % (path, name)
        args = {"inspect": ["inspect", spec], "push": ["push", spec, "localhost:9/a:1"],
                "build": ["build", "--from-archive", spec, "-o", tmp_path / "o.tar", prog_file]}[command]
        fails(run_cli(*args, env=NO_NETWORK), 1, "has no image named %r" % name)
    assert not (tmp_path / "o.tar").exists()


@pytest.mark.parametrize("entries, words", [
    ("empty", "is an empty layout"),
    ("artifact", "is an artifact (application/vnd.example.sbom+json), not an image"),
    ("artifact-with-platform", "is an artifact (application/vnd.example.sbom+json), not an image"),
    ("schema1", "is a Docker schema 1 manifest"),
    ("index-of-artifacts", "is an artifact"),
])
def test_errors_say_what_the_entry_is(tmp_path, prog_file, entries, words):
    b = LayoutBuilder()
    top = {"empty": lambda: [], "artifact": lambda: [_artifact(b)],
           "artifact-with-platform": lambda: [_artifact(b, platform=("linux", "amd64"))],
           "schema1": lambda: [_schema1(b)],
           "index-of-artifacts": lambda: [b.index([_artifact(b), _artifact(b, "application/vnd.example.sig")])]}
    path = b.write_tar(tmp_path / "l.tar", top[entries]())
    for args in (["inspect", path], ["inspect", "--platform", "linux/amd64", path],
                 ["build", "--from-archive", path, "-o", tmp_path / "o.tar", prog_file]):
        last = fails(run_cli(*args, env=NO_NETWORK), 1, words)
        assert "--platform" not in last


def test_a_broken_sibling_in_an_index_fails_only_when_chosen(tmp_path, prog_file):
    """An index whose arm64 entry says the wrong size: amd64 is read and built on; arm64 fails, saying why."""
    b = LayoutBuilder()
    amd = _image(b, "amd")
    arm = _image(b, "arm", platform=("linux", "arm64", ""))
    md5 = {"mediaType": zeroimage.OCI_MANIFEST, "digest": "md5:" + "0" * 32, "size": 3,
           "platform": {"os": "linux", "architecture": "s390x"}}
    index = b.index([amd, dict(arm, size=arm["size"] - 1), md5])
    path = b.write_tar(tmp_path / "l.tar", [_named(index, "multi")])
    r = run_cli("inspect", "--json", "--platform", "linux/amd64", path, env=NO_NETWORK)
    assert r.returncode == 0 and json.loads(r.stdout)["manifest"] == amd["digest"], r.stderr
    assert r.returncode == 0, r.stderr
    r = run_cli("build", "--from-archive", path, "--platform", "linux/amd64", "-o", tmp_path / "o.tar", prog_file)
    assert r.returncode == 0, r.stderr
    fails(run_cli("inspect", "--platform", "linux/arm64", path), 1, "its descriptor says")


# ---- inspect of an index in an archive: as a registry shows it ----


def test_inspect_of_a_multi_platform_archive_shows_the_index(tmp_path):
    (tmp_path / "a").write_bytes(make_elf(62) + b"a")
    (tmp_path / "r").write_bytes(make_elf(183) + b"r")
    out = tmp_path / "multi.tar"
    r = run_cli("build", "-o", out, "-t", "app:2", "--label", "team=core", "--expose", "8080",
                "--annotation", "org.example.note=hello", "linux/amd64=%s" % (tmp_path / "a"),
                "linux/arm64=%s" % (tmp_path / "r"), env={"SOURCE_DATE_EPOCH": "1700000000"})
    assert r.returncode == 0, r.stderr
    index_digest = r.stdout.strip()
    with zeroimage.Layout(str(out)) as layout:
        top = layout.index()["manifests"][0]
        index_bytes = layout.read_manifest(top)
    children = json.loads(index_bytes)["manifests"]
    info = json.loads(run_cli("inspect", "--json", out).stdout)
    assert (info["digest"], info["mediaType"]) == (index_digest, zeroimage.OCI_INDEX)
    assert info["manifests"] == [{"platform": p, "digest": d["digest"], "size": d["size"], "mediaType": d["mediaType"]}
                                 for p, d in zip(["linux/amd64", "linux/arm64"], children)]
    assert info["labels"] == {"team": "core"} and info["exposedPorts"] == ["8080/tcp"]
    assert info["annotations"] == {"org.example.note": "hello"}
    arm = json.loads(run_cli("inspect", "--json", "--platform", "linux/arm64", str(out) + ":2").stdout)
    assert arm["digest"] == index_digest and arm["manifest"] == children[1]["digest"] and arm["platform"] == "linux/arm64"
    raw = run_cli("inspect", "--raw", out).stdout
    assert raw.rstrip("\n").encode() == index_bytes
    assert json.loads(run_cli("inspect", "--raw", "--platform", "linux/arm64", out).stdout)["config"]
    summary = run_cli("inspect", out).stdout
    for line in ["Digest:      " + index_digest, "Media type:  " + zeroimage.OCI_INDEX,
                 "Platforms:   linux/amd64, linux/arm64", "Manifest:    " + children[0]["digest"],
                 "Ports:       8080/tcp", "  team=core", "  org.example.note=hello"]:
        assert line in summary, summary
    assert children[1]["digest"] in summary
