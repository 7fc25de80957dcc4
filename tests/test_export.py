"""export and inspect --files (issue 25, item 4): an image's filesystem as one tar, as crane export
writes it. First the rules (whiteouts, opaque directories, a later layer replacing an earlier one,
hard links kept valid, member names) on layers made here with tarfile, as a table; then the refusals
and the CLI; then against the real registry, judged by umoci: what ``umoci unpack`` makes of the same
image is what extracting our tar makes."""

import gzip
import io
import json
import os
import pty
import stat
import subprocess
import tarfile
import tracemalloc

import pytest

import zeroimage
from clients import Client
from conftest import need_tool
from helpers import fails, ok, sh
from imagetools import LayoutBuilder, cli_argv, multi_platform_base, ref, run_cli, run_env, sha256

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def layer_tar(members):
    """An uncompressed layer from (name, kind, payload[, mode]) tuples: kind "dir", "file" (payload
    bytes), "symlink" or "hardlink" (payload the target), "fifo"."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            name, kind, payload = (tuple(member) + (None,))[:3]
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            info.mode = member[3] if len(member) > 3 else (0o755 if kind == "dir" else 0o644)
            data = None
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, payload
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, payload
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            else:
                data = payload
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return raw.getvalue()


def image_archive(path, layers, compress=True, diff_ids=None):
    """An OCI archive (img:1) of one linux/amd64 image of these layers (lists of members, or bytes);
    ``diff_ids`` in its config instead of the right ones."""
    b, wrong_ids = LayoutBuilder(), diff_ids
    descs, diff_ids = [], []
    for members in layers:
        raw = members if isinstance(members, bytes) else layer_tar(members)
        blob = gzip.compress(raw, mtime=0) if compress else raw
        descs.append({"mediaType": LAYER if compress else LAYER[:-5], "digest": b.add(blob), "size": len(blob)})
        diff_ids.append(sha256(raw))
    config = json.dumps({"os": "linux", "architecture": "amd64", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": wrong_ids or diff_ids}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": b.add(config), "size": len(config)}, "layers": descs}).encode()
    desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": b.add(manifest),
            "size": len(manifest)}
    return b.write_tar(str(path), [ref(desc, "img:1")])


def tar_members(path):
    """[(name, kind, data or link target)] of a tar, in order; every hard link leads to a member before it."""
    found, seen = [], set()
    with tarfile.open(path) as tar:
        for m in tar:
            kind = "dir" if m.isdir() else "symlink" if m.issym() else "hardlink" if m.islnk() else \
                "fifo" if m.isfifo() else "file"
            value = tar.extractfile(m).read() if m.isreg() else m.linkname if kind in ("symlink", "hardlink") \
                else None
            if kind == "hardlink":
                assert m.linkname in seen, "a hard link before its target: %s -> %s" % (m.name, m.linkname)
            assert m.name.rstrip("/") not in seen, "%s twice" % m.name
            assert not os.path.basename(m.name.rstrip("/")).startswith(".wh."), m.name
            seen.add(m.name.rstrip("/"))
            found.append((m.name.rstrip("/"), kind, value))
    return found


def exported(tmp_path, layers):
    """{path: (kind, data or link target)} of what export writes for an image of ``layers``."""
    archive = image_archive(tmp_path / "img.tar", layers)
    result = zeroimage.export(archive, str(tmp_path / "out.tar"))
    members = tar_members(str(tmp_path / "out.tar"))
    assert result.entries == len(members) and result.size == os.path.getsize(str(tmp_path / "out.tar"))
    listed = zeroimage.image_files(archive)
    assert sorted(f.path for f in listed) == sorted(name for name, _, _ in members), "inspect --files lists the same"
    return {name: (kind, value) for name, kind, value in members}


# ---- the rules, as a table: (layers, what the filesystem holds) ----

D, F, S, H = "dir", "file", "symlink", "hardlink"
RULES = {
    "layers in order": (
        [[("etc/", D), ("etc/a", F, b"1")], [("etc/b", F, b"2")]],
        {"etc": (D, None), "etc/a": (F, b"1"), "etc/b": (F, b"2")}),
    "a whiteout removes a file": (
        [[("a", F, b"1"), ("b", F, b"2")], [(".wh.a", F, b"")]],
        {"b": (F, b"2")}),
    "a whiteout removes a directory and all below it": (
        [[("d/", D), ("d/e/", D), ("d/e/f", F, b"1"), ("k", F, b"k")], [(".wh.d", F, b"")]],
        {"k": (F, b"k")}),
    "a whiteout hides only lower layers: the same layer's file stays": (
        [[("a", F, b"old")], [(".wh.a", F, b""), ("a", F, b"new")]],
        {"a": (F, b"new")}),
    "a whiteout after the same layer's file still hides only lower ones": (
        [[("a", F, b"old")], [("a", F, b"new"), (".wh.a", F, b"")]],
        {"a": (F, b"new")}),
    "an opaque directory hides lower contents, keeps its own": (
        [[("o/", D), ("o/old", F, b"1"), ("o/sub/", D), ("o/sub/x", F, b"x")],
         [("o/", D, None, 0o700), ("o/.wh..wh..opq", F, b""), ("o/new", F, b"2")]],
        {"o": (D, None), "o/new": (F, b"2")}),
    "a later file replaces an earlier one": (
        [[("a", F, b"1")], [("a", F, b"22")]],
        {"a": (F, b"22")}),
    "a file replaces a directory and what was in it": (
        [[("d/", D), ("d/x", F, b"x")], [("d", F, b"now a file")]],
        {"d": (F, b"now a file")}),
    "a directory replaces a file": (
        [[("d", F, b"file")], [("d/", D), ("d/x", F, b"x")]],
        {"d": (D, None), "d/x": (F, b"x")}),
    "a directory over a directory keeps what is in it": (
        [[("d/", D), ("d/x", F, b"x")], [("d/", D, None, 0o700), ("d/y", F, b"y")]],
        {"d": (D, None), "d/x": (F, b"x"), "d/y": (F, b"y")}),
    "a symlink replaces a directory": (
        [[("d/", D), ("d/x", F, b"x")], [("d", S, "elsewhere")]],
        {"d": (S, "elsewhere")}),
    "a file under a lower symlink makes the path a directory": (
        [[("l", S, "target")], [("l/f", F, b"f")]],
        {"l": (D, None), "l/f": (F, b"f")}),
    "names as the spec reads them": (
        [[("./a", F, b"1"), ("/b", F, b"2"), ("c//d/", D), ("./", D)]],
        {"a": (F, b"1"), "b": (F, b"2"), "c": (D, None), "c/d": (D, None)}),
    "a name twice in one layer: the later one": (
        [[("a", F, b"first"), ("a", F, b"second")]],
        {"a": (F, b"second")}),
    "implied parents are directories": (
        [[("x/y/z", F, b"z")]],
        {"x": (D, None), "x/y": (D, None), "x/y/z": (F, b"z")}),
    "a hard link in one layer": (
        [[("a", F, b"data"), ("b", H, "a")]],
        {"a": (F, b"data"), "b": (H, "a")}),
    "a hard link whose target a later layer replaced keeps the old data": (
        [[("a", F, b"old"), ("b", H, "a"), ("c", H, "a")], [("a", F, b"new")]],
        {"a": (F, b"new"), "b": (F, b"old"), "c": (H, "b")}),
    "a hard link whose target a later layer removed": (
        [[("a", F, b"old"), ("b", H, "a")], [(".wh.a", F, b"")]],
        {"b": (F, b"old")}),
    "a hard link to a lower layer's file comes after it": (
        [[("z/", D), ("z/a", F, b"low")], [("b", H, "z/a")]],
        {"z": (D, None), "z/a": (F, b"low"), "b": (H, "z/a")}),
    "a hard link to a lower file that its own layer replaced": (
        [[("a", F, b"low")], [("b", H, "a"), ("a", F, b"high")]],
        {"a": (F, b"high"), "b": (F, b"low")}),
    "a hard link to a hard link": (
        [[("a", F, b"x"), ("b", H, "a")], [("c", H, "b")]],
        {"a": (F, b"x"), "b": (H, "a"), "c": (H, "a")}),
    "AUFS metadata is never written": (
        [[(".wh..wh.plnk/", D), (".wh..wh.plnk/1.2", F, b"x"), (".wh..wh.aufs", F, b""), ("a", F, b"a")]],
        {"a": (F, b"a")}),
    "a fifo and an empty file": (
        [[("p", "fifo"), ("e", F, b"")]],
        {"p": ("fifo", None), "e": (F, b"")}),
}


@pytest.mark.parametrize("name", sorted(RULES))
def test_rules(tmp_path, name):
    layers, expected = RULES[name]
    assert exported(tmp_path, layers) == expected


def test_the_kept_metadata_is_the_top_layers(tmp_path):
    archive = image_archive(tmp_path / "img.tar", [[("d/", D, None, 0o755), ("d/x", F, b"x", 0o600)],
                                                   [("d/", D, None, 0o700)]])
    files = {f.path: f for f in zeroimage.image_files(archive)}
    assert files["d"].mode == 0o700 and files["d/x"].mode == 0o600 and files["d/x"].size == 1
    assert files["d"].mtime == 1700000000


@pytest.mark.parametrize("members, words", [
    ([("../etc/passwd", F, b"x")], ["'..'"]),
    ([("a/../../b", F, b"x")], ["'..'"]),
    ([("b", H, "nothing")], ["hard link", "nothing"]),
    ([("d/", D), ("b", H, "d")], ["hard link", "a directory"]),
    ([(".wh.", F, b"")], ["whiteout"]),
])
def test_malformed_layers_are_refused_naming_the_layer(tmp_path, members, words):
    archive = image_archive(tmp_path / "img.tar", [[("ok", F, b"1")], members])
    for call in (lambda: zeroimage.export(archive, str(tmp_path / "out.tar")), lambda: zeroimage.image_files(archive)):
        with pytest.raises(zeroimage.ArchiveError) as e:
            call()
        message = str(e.value)
        assert "\n" not in message and "the layer sha256:" in message, message
        for word in words:
            assert word in message, message
    assert os.listdir(str(tmp_path)) == ["img.tar"], "nothing half-written"
    r = run_cli("export", archive, "-o", tmp_path / "out.tar")
    fails(r, 1, "the layer sha256:")
    assert os.listdir(str(tmp_path)) == ["img.tar"]


def test_a_layer_that_is_not_its_diff_id_is_refused(tmp_path):
    archive = image_archive(tmp_path / "img.tar", [[("a", F, b"1")]], diff_ids=["sha256:" + "0" * 64])
    for argv in (["export", archive, "-o", tmp_path / "out.tar"], ["inspect", "--files", archive]):
        fails(run_cli(*argv), 1, "the layer sha256:", "diff_id", "sha256:" + "0" * 64)
    assert os.listdir(str(tmp_path)) == ["img.tar"]


def test_build_reads_base_layers_by_the_same_rule(tmp_path, prog):
    """``..`` in a base's layer is refused by build as by export: one rule for every reader of members."""
    archive = image_archive(tmp_path / "img.tar", [[("usr/", D), ("usr/../../evil", F, b"x")]])
    line = fails(run_cli("build", "--from-archive", archive, "--target", "/usr/local/bin/app", "-o",
                         tmp_path / "out.tar", prog), 1, "layer sha256:", "'..'")
    assert "usr/../../evil" in line and not (tmp_path / "out.tar").exists()


def test_the_image_of_a_platform(tmp_path, busybox):
    archive = multi_platform_base(tmp_path, busybox)[0]
    r = ok(run_cli("export", "--json", "--platform", "linux/arm64", archive, "-o", tmp_path / "arm.tar"))
    assert json.loads(r.stdout)["platform"] == "linux/arm64/v8"
    assert dict((n, k) for n, k, _ in tar_members(str(tmp_path / "arm.tar")))["bin/sh"] == "symlink"
    fails(run_cli("export", "--platform", "linux/s390x", archive, "-o", tmp_path / "s390x.tar"), 1, "linux/s390x")
    assert not (tmp_path / "s390x.tar").exists()


def test_export_to_standard_output_and_the_cli(tmp_path):
    archive = image_archive(tmp_path / "img.tar", [[("etc/", D), ("etc/a", F, b"1"), ("l", S, "etc/a")],
                                                   [("etc/b", F, b"2"), ("h", H, "etc/a")]])
    r = ok(run_cli("export", "--json", archive, "-o", tmp_path / "out.tar"))
    value = json.loads(r.stdout)
    assert value["path"] == str(tmp_path / "out.tar") and value["entries"] == 5 and value["platform"] == "linux/amd64"
    assert value["size"] == os.path.getsize(str(tmp_path / "out.tar")) and value["digest"].startswith("sha256:")
    piped = subprocess.run(cli_argv() + ["export", "-q", archive], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=run_env(), timeout=120)
    assert piped.returncode == 0 and piped.stderr == b"", piped.stderr
    assert piped.stdout == (tmp_path / "out.tar").read_bytes(), "the same tar, to a file or a pipe"
    plain = ok(run_cli("export", archive, "-o", tmp_path / "again.tar"))
    assert plain.stdout == value["digest"] + "\n"
    lines = ok(run_cli("inspect", "--files", archive)).stdout.splitlines()
    assert lines == ["drwxr-xr-x 0/0          0 etc/", "-rw-r--r-- 0/0          1 etc/a", "-rw-r--r-- 0/0          1 etc/b",
                     "hrw-r--r-- 0/0          0 h link to etc/a", "lrw-r--r-- 0/0          0 l -> etc/a"], lines
    listed = json.loads(ok(run_cli("inspect", "--files", "--json", archive)).stdout)
    assert listed[3] == {"path": "h", "kind": "hardlink", "mode": 0o644, "uid": 0, "gid": 0, "size": 0,
                         "mtime": 1700000000, "linkname": "etc/a"}
    for argv in (["--json", archive], ["--json", "-o", "-", archive]):
        line = fails(run_cli("export", *argv), 2, "--json", "-o FILE")
        assert "archive" not in line        # (export writes a filesystem's tar, not an image's archive)
    fails(run_cli("export", archive, "-o", tmp_path / "no" / "such" / "out.tar"), 1)
    fails(run_cli("export", tmp_path / "missing.tar"), 1)
    fails(run_cli("export", "--files", archive), 2)


def test_export_counts_its_entries_in_words(tmp_path):
    archive = image_archive(tmp_path / "img.tar", [[("a", F, b"1")]])
    r = ok(run_cli("export", archive, "-o", tmp_path / "one.tar"))
    assert ": 1 entry, " in r.stderr and "1 entries" not in r.stderr, r.stderr
    archive = image_archive(tmp_path / "two.tar", [[("a", F, b"1"), ("b", F, b"2")]])
    assert ": 2 entries, " in ok(run_cli("export", archive, "-o", tmp_path / "two-out.tar")).stderr


def test_export_refuses_a_terminal(tmp_path):
    archive = image_archive(tmp_path / "img.tar", [[("a", F, b"1")]])
    controller, terminal = pty.openpty()
    try:
        r = subprocess.run(cli_argv() + ["export", archive], stdout=terminal, stderr=subprocess.PIPE, env=run_env(),
                           timeout=120, universal_newlines=True)
    finally:
        os.close(terminal)
        os.close(controller)
    assert r.returncode == 2 and "standard output, which is a terminal" in r.stderr and "Traceback" not in r.stderr


def test_memory_does_not_grow_with_file_size(tmp_path):
    big = 48 * 1024 * 1024
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("big")
        info.size = big
        tar.addfile(info, io.BytesIO(bytes(big)))
    archive = image_archive(tmp_path / "img.tar", [raw.getvalue(), [("small", F, b"s")]])
    del raw
    tracemalloc.start()
    try:
        result = zeroimage.export(archive, str(tmp_path / "out.tar"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.entries == 2 and os.path.getsize(str(tmp_path / "out.tar")) > big
    assert peak < 8 * 1024 * 1024, peak


def test_a_cancelled_export_leaves_nothing(tmp_path, monkeypatch):
    """Ctrl-C as the data is copied: CancelledError, and no tar (nor its temporary) left behind."""
    archive = image_archive(tmp_path / "img.tar", [[("a", F, b"x" * 300000)], [("b", F, b"y" * 300000)]])
    os.mkdir(str(tmp_path / "out"))
    real, written = zeroimage._Counted.write, []
    with zeroimage.Session() as session:
        def write(self, data):
            written.append(len(data))
            if sum(written) > 100000:
                session.cancel()
            return real(self, data)
        monkeypatch.setattr(zeroimage._Counted, "write", write)
        with pytest.raises(zeroimage.CancelledError):
            zeroimage.export(archive, str(tmp_path / "out" / "fs.tar"), session=session)
    assert os.listdir(str(tmp_path / "out")) == [] and sum(written) < 600000


# ---- against the real registry, judged by umoci ----


def tree(root):
    """{relative path: (type, mode, content or link target)} of a directory, and the hard-linked groups."""
    found, inodes = {}, {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(top, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("symlink", None, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = ("dir", stat.S_IMODE(st.st_mode), None)
            else:
                with open(path, "rb") as f:
                    found[rel] = ("file", stat.S_IMODE(st.st_mode), sha256(f.read()))
                if st.st_nlink > 1:
                    inodes.setdefault(st.st_ino, set()).add(rel)
    return found, sorted(sorted(group) for group in inodes.values())


def extracted(tar_path, directory):
    os.makedirs(directory)
    # our own export, whole, as tar would extract it: modes and links as written ("fully_trusted", the
    # behaviour before extraction filters; 3.14 would otherwise filter by default)
    trusted = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
    with tarfile.open(tar_path) as tar:
        for member in tar:
            tar.extract(member, directory, set_attrs=not member.isdir(), **trusted)
    with tarfile.open(tar_path) as tar:     # directories' modes last, as tar does
        for member in tar:
            if member.isdir():
                os.chmod(os.path.join(directory, member.name), member.mode)
    return tree(directory)


def umoci_tree(tmp_path, source, skopeo_flags=()):
    skopeo, umoci = need_tool("skopeo"), need_tool("umoci")
    layout, bundle = tmp_path / "layout", tmp_path / "bundle"
    tmp_path.mkdir()
    sh(skopeo, "copy", "--quiet", *skopeo_flags, source, "oci:%s:img" % layout)
    sh(umoci, "unpack", *([] if os.geteuid() == 0 else ["--rootless"]), "--image", "%s:img" % layout, bundle)
    return tree(str(bundle / "rootfs"))


def base_with_whiteouts(tmp_path, busybox):
    """A base of two layers, the second with whiteouts, an opaque directory, a replaced file and a hard
    link whose target it replaces."""
    with open(busybox, "rb") as f:
        program = f.read()
    first = [("bin/", D), ("bin/busybox", F, program, 0o755), ("bin/sh", S, "busybox"),
             ("etc/", D), ("etc/motd", F, b"hello\n"), ("etc/issue", F, b"issue 1\n"), ("etc/issue.net", H, "etc/issue"),
             ("etc/motd.link", H, "etc/motd"),
             ("var/", D), ("var/cache/", D), ("var/cache/apt/", D), ("var/cache/apt/pkgcache.bin", F, b"x" * 5000),
             ("opt/", D), ("opt/old/", D), ("opt/old/a", F, b"a"), ("opt/keep", F, b"k"),
             ("usr/", D), ("usr/share/", D), ("usr/share/doc/", D), ("usr/share/doc/README", F, b"doc\n")]
    second = [("var/cache/.wh.apt", F, b""), ("opt/", D, None, 0o750), ("opt/.wh..wh..opq", F, b""),
              ("opt/new", F, b"n"), ("etc/issue", F, b"issue 2\n"), ("usr/share/.wh.doc", F, b""),
              ("srv/", D), ("srv/data", F, b"data")]
    return image_archive(tmp_path / "base.tar", [first, second])


@pytest.mark.interop
def test_export_matches_umoci_unpack(tmp_path, pki, registry_servers, busybox_program, busybox):
    client = Client(tmp_path, pki, registry_servers("open"))
    base = base_with_whiteouts(tmp_path, busybox)
    app = tmp_path / "app.tar"
    client.ok("build", "-q", "--from-archive", base, "-o", app, busybox_program)
    pushed = client.ok("build", "-q", "--from-archive", base, "--push", client.ref("export/app:1"),
                       busybox_program).stdout.strip()
    digest = pushed.split("@")[1]
    r = client.ok("export", "-v", "--json", client.ref("export/app:1"), "-o", tmp_path / "from-registry.tar")
    assert json.loads(r.stdout)["digest"] == digest
    gets = [line for line in r.stderr.splitlines() if "GET" in line and "/blobs/" in line]
    assert len(gets) == len(set(gets)) == 4, "the config and each of the 3 layers downloaded once"
    client.ok("export", str(app), "-o", tmp_path / "from-archive.tar")
    assert (tmp_path / "from-registry.tar").read_bytes() == (tmp_path / "from-archive.tar").read_bytes()
    ours, our_links = extracted(str(tmp_path / "from-registry.tar"), str(tmp_path / "ours"))
    theirs, their_links = umoci_tree(tmp_path / "umoci-registry", "docker://" + client.ref("export/app:1"),
                                     client.skopeo_flags("src-"))
    assert ours == theirs
    assert our_links == their_links == [["etc/motd", "etc/motd.link"]]
    assert "var/cache/apt" not in ours and "usr/share/doc" not in ours and "opt/old" not in ours
    assert ours["etc/issue.net"][2] == sha256(b"issue 1\n") and ours["opt"][1] == 0o750 and "busybox" in ours
    archive_tree = umoci_tree(tmp_path / "umoci-archive", "oci-archive:%s" % app)
    assert archive_tree == (ours, our_links)
    listed = json.loads(client.ok("inspect", "--files", "--json", client.ref("export/app:1")).stdout)
    assert sorted(f["path"] for f in listed) == sorted(ours)
