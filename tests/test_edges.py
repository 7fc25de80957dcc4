"""Edges a user can hand zeroimage (issue 11): every output path, what --add puts in the layer,
programs and users, global options. Each is a class of input: the tests walk the class."""

import io
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile

import pytest

import zeroimage
from conftest import need_tool
from binaries import make_elf
from helpers import EPOCH, fails, ok
from imagetools import MODULE, LayoutBuilder, dirs_of_program_layer, fhs_base, image_of, layer_members, \
    program_layer, ref, run_cli

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="makes device nodes and drops to another user: needs root")


# ---- 1. Output paths ----

def _special(tmp_path, kind):
    """A path holding a file of the given kind (not a regular file)."""
    path = tmp_path / ("out-" + kind)
    if kind == "fifo":
        os.mkfifo(str(path))
    elif kind == "dir":
        path.mkdir()
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        s.close()
    elif kind == "chardev":
        os.mknod(str(path), stat.S_IFCHR | 0o666, os.makedev(1, 3))     # a /dev/null of our own
    elif kind == "blockdev":
        os.mknod(str(path), stat.S_IFBLK | 0o600, os.makedev(7, 200))
    return path


SPECIAL_KINDS = [("fifo", "a FIFO"), ("dir", "a directory"), ("socket", "a socket"),
                 pytest.param("chardev", "a character device", marks=ROOT_ONLY),
                 pytest.param("blockdev", "a block device", marks=ROOT_ONLY)]


def _still(path, kind):
    mode = os.lstat(str(path)).st_mode
    return {"fifo": stat.S_ISFIFO, "dir": stat.S_ISDIR, "socket": stat.S_ISSOCK, "chardev": stat.S_ISCHR,
            "blockdev": stat.S_ISBLK}[kind](mode)


@pytest.mark.parametrize("kind, words", SPECIAL_KINDS)
def test_an_output_that_is_not_a_regular_file_is_refused_before_any_work(tmp_path, prog, kind, words):
    out = _special(tmp_path, kind)
    before = sorted(os.listdir(str(tmp_path)))
    fails(run_cli("build", "-o", out, prog), 1, "cannot write", words)
    # pull is refused before it reaches the (unreachable) registry
    fails(run_cli("pull", "-o", out, "127.0.0.1:9/nothing:1"), 1, "cannot write", words)
    if kind != "dir":
        fails(run_cli("build", "--format", "oci-layout", "-o", out, prog), 1, "layout", words, "not a directory")
    assert _still(out, kind) and sorted(os.listdir(str(tmp_path))) == before


@pytest.mark.parametrize("kind, words", SPECIAL_KINDS)
def test_a_symlink_to_a_special_file_is_refused_too(tmp_path, prog, kind, words):
    out = _special(tmp_path, kind)
    link = tmp_path / "link.tar"
    link.symlink_to(out)
    fails(run_cli("build", "-o", link, prog), 1, words)
    assert link.is_symlink() and _still(out, kind)


def test_a_regular_file_is_refused_as_a_layout_directory(tmp_path, prog):
    out = tmp_path / "file"
    out.write_bytes(b"keep")
    fails(run_cli("build", "--format", "oci-layout", "-o", out, prog), 1, "a regular file, not a directory")
    assert out.read_bytes() == b"keep"


def test_an_empty_output_path_is_a_usage_error(tmp_path, prog):
    fails(run_cli("build", "-o", "", prog, cwd=str(tmp_path)), 2, "empty")
    fails(run_cli("pull", "-o", "", "127.0.0.1:9/x", cwd=str(tmp_path)), 2, "empty")
    fails(run_cli("build", "-o", "newdir/", prog, cwd=str(tmp_path)), 2, "ending in / names a directory")
    (tmp_path / "old.tar").write_bytes(b"keep")
    fails(run_cli("pull", "-o", "old.tar/", "127.0.0.1:9/x", cwd=str(tmp_path)), 2, "ending in /")
    assert (tmp_path / "old.tar").read_bytes() == b"keep"
    (tmp_path / "old.tar").unlink()
    with pytest.raises(zeroimage.UsageError, match="empty"):
        zeroimage.build(zeroimage.BuildOptions(str(prog), ""), environ={})
    assert sorted(os.listdir(str(tmp_path))) == ["app"]


def test_a_symlinked_output_is_written_through(tmp_path, prog):
    target = tmp_path / "real" / "image.tar"
    target.parent.mkdir()
    target.write_bytes(b"the old archive")
    link = tmp_path / "image.tar"
    link.symlink_to(target)
    digest = ok(run_cli("build", "-o", link, prog, env=EPOCH)).stdout.strip()
    assert link.is_symlink() and os.readlink(str(link)) == str(target)
    assert image_of(str(target))[0]["manifests"][0]["digest"] == digest
    assert sorted(os.listdir(str(tmp_path / "real"))) == ["image.tar"]      # no temporary left beside it
    dangling = tmp_path / "dangling.tar"
    dangling.symlink_to(tmp_path / "real" / "new.tar")          # as cp does: the link's target is made
    ok(run_cli("build", "-o", dangling, prog, env=EPOCH))
    assert dangling.is_symlink() and (tmp_path / "real" / "new.tar").is_file()


def test_layout_directories_through_and_under_symlinks(tmp_path, prog):
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "via").symlink_to(tmp_path / "real")
    (tmp_path / "layout-link").symlink_to(tmp_path / "real" / "made-here")
    under = tmp_path / "via" / "sub" / "layout"
    one = ok(run_cli("build", "--format", "oci-layout", "-t", "app:1", "-o", under, prog, env=EPOCH)).stdout.strip()
    two = ok(run_cli("build", "--format", "oci-layout", "-t", "app:2", "--env", "A=1", "-o", under, prog,
                     env=EPOCH)).stdout.strip()
    ok(run_cli("build", "--format", "oci-layout", "-o", tmp_path / "layout-link", prog, env=EPOCH))
    assert (tmp_path / "layout-link").is_symlink() and (tmp_path / "real" / "made-here" / "index.json").is_file()
    index = json.loads((tmp_path / "real" / "sub" / "layout" / "index.json").read_text())
    assert [d["digest"] for d in index["manifests"]] == [one, two]
    assert one in ok(run_cli("inspect", "%s:app:1" % under)).stdout


def test_logout_writes_through_a_symlinked_config(tmp_path):
    real = tmp_path / "dotfiles" / "docker.json"
    real.parent.mkdir()
    real.write_text(json.dumps({"auths": {"127.0.0.1:5999": {"auth": "dTpw"}, "other.example": {"auth": "eDp5"}}}))
    (tmp_path / "home" / ".docker").mkdir(parents=True)
    link = tmp_path / "home" / ".docker" / "config.json"
    link.symlink_to(real)
    ok(run_cli("logout", "127.0.0.1:5999", env={"HOME": str(tmp_path / "home"), "DOCKER_CONFIG": ""}))
    assert link.is_symlink()
    assert list(json.loads(real.read_text())["auths"]) == ["other.example"]
    assert stat.S_IMODE(os.stat(str(real)).st_mode) == 0o600


@pytest.mark.parametrize("how", ["program", "link to the program", "add source", "base archive"])
def test_an_output_that_is_an_input_of_the_build_is_refused(tmp_path, prog, how):
    (tmp_path / "base.tar").write_bytes(b"")
    ok(run_cli("build", "--from", "scratch", "-o", tmp_path / "base.tar", prog))
    before = {p: (tmp_path / p).read_bytes() for p in ("app", "base.tar")}
    (tmp_path / "plink").symlink_to(prog)
    args = {"program": ["-o", "app", "app"], "link to the program": ["-o", "plink", "app"],
            "add source": ["--add", "base.tar:/base.tar", "-o", "base.tar", "app"],
            "base archive": ["--from-archive", "base.tar", "-o", "base.tar", "app"]}[how]
    fails(run_cli("build", *args, cwd=str(tmp_path)), 2, "which the build reads; name another with -o")
    assert {p: (tmp_path / p).read_bytes() for p in ("app", "base.tar")} == before


# ---- 2. What --add puts in the layer ----

@pytest.mark.parametrize("adds, words", [
    (["static:/app"], ["--add static:/app and the program", "/app"]),              # the program's own path
    (["static:/app/www"], ["inside /app", "the program"]),                          # under it
    (["static/index.html:/app/x"], ["inside /app"]),
    (["static:/srv", "static/index.html:/srv"], ["both put something at /srv", "a directory and a file"]),
    (["static/index.html:/srv/x", "static/index.html:/srv/x"], ["both put something at /srv/x"]),
    (["static/index.html:/srv", "static:/srv/sub"], ["inside /srv"]),
    (["links:/l", "static/index.html:/l/etc/x"], ["inside /l/etc", "a symlink"]),
])
def test_add_paths_that_collide_are_usage_errors_before_anything_is_written(tmp_path, prog, adds, words):
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "index.html").write_text("hi")
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "etc").symlink_to("/etc")
    args = [a for add in adds for a in ("--add", add)]
    fails(run_cli("build", *args, "-o", "out.tar", "app", cwd=str(tmp_path)), 2, *words)
    assert not (tmp_path / "out.tar").exists()


@pytest.mark.parametrize("target", ["/etc", "/tmp", "/home/nonroot", "/etc/ssl/certs"])
def test_the_program_cannot_replace_a_directory_of_the_minimal_base(tmp_path, prog, target):
    fails(run_cli("build", "--target", target, "-o", tmp_path / "o.tar", prog), 2, "the minimal base", target)
    ok(run_cli("build", "--from", "scratch", "--target", target, "-o", tmp_path / "o.tar", prog))


def test_an_added_tree_is_its_contents_its_destination_0755(tmp_path, prog):
    tree = tmp_path / "private"
    (tree / "inner").mkdir(parents=True)
    (tree / "inner" / "f").write_text("x")
    os.chmod(str(tree), 0o700)
    os.chmod(str(tree / "inner"), 0o750)
    (tmp_path / "passwd").write_text("root:x:0:0::/:/bin/sh\n")
    ok(run_cli("build", "--add", "%s:/srv" % tree, "--add", "%s:/etc" % tree, "--add", "passwd:/etc/passwd",
               "-o", "o.tar", "app", cwd=str(tmp_path)))
    members = program_layer(tmp_path / "o.tar")
    assert members["srv"].mode == members["etc"].mode == 0o755 and members["srv/inner"].mode == 0o750


def test_two_directories_merge_at_one_path(tmp_path, prog):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / (name + ".txt")).write_text(name)
    ok(run_cli("build", "--add", "a:/srv", "--add", "b:/srv", "-o", "out.tar", "app", cwd=str(tmp_path)))
    assert {"srv/a.txt", "srv/b.txt"} <= set(program_layer(tmp_path / "out.tar"))


def test_add_to_the_root_writes_no_root_member_and_keeps_the_roots_mode(tmp_path, prog):
    tree = tmp_path / "rootfs"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "motd").write_text("hello")
    os.chmod(str(tree), 0o700)
    ok(run_cli("build", "--from", "scratch", "--add", "%s:/" % tree, "-o", tmp_path / "out.tar", prog))
    members = program_layer(tmp_path / "out.tar")
    assert sorted(members) == ["app", "etc", "etc/motd"]
    with tarfile.open(str(tmp_path / "out.tar")) as tar:       # and nothing anywhere named / or ./
        for blob in image_of(str(tmp_path / "out.tar"))[3]:
            names = layer_members(blob)
            assert not any(n in ("/", ".", "./", "") or n.startswith("/") for n in names), names
        assert tar.getnames()


def test_an_add_tree_is_copied_as_it_is_with_hard_links_stored_once(tmp_path, prog):
    tree = tmp_path / "www"
    (tree / "sub").mkdir(parents=True)
    payload = os.urandom(300000)
    (tree / "index.html").write_bytes(payload)
    os.link(str(tree / "index.html"), str(tree / "sub" / "copy.html"))
    os.link(str(tree / "index.html"), str(tree / "a0.html"))
    ok(run_cli("build", "--add", "%s:/srv" % tree, "-o", tmp_path / "out.tar", prog))
    layer = image_of(str(tmp_path / "out.tar"))[3][-1]
    members = layer_members(layer)
    holder = members["srv/a0.html"]              # the first in layer order holds the bytes
    assert holder.isfile() and holder.size == len(payload)
    for name in ("srv/index.html", "srv/sub/copy.html"):
        assert members[name].islnk() and members[name].linkname == "srv/a0.html"
    assert len(layer) < len(payload) * 1.5      # once, not three times (random bytes do not compress)
    with tarfile.open(fileobj=io.BytesIO(__import__("gzip").decompress(layer))) as tar:
        assert tar.extractfile("srv/sub/copy.html").read() == payload


def test_hard_links_unpack_with_umoci(tmp_path, prog):
    umoci = need_tool("umoci")
    tree = tmp_path / "www"
    tree.mkdir()
    (tree / "a").write_text("same")
    os.link(str(tree / "a"), str(tree / "b"))
    ok(run_cli("build", "--format", "oci-layout", "-t", "app:1", "--add", "%s:/srv" % tree,
               "-o", tmp_path / "layout", prog))
    subprocess.run([umoci, "unpack", "--image", "%s:1" % (tmp_path / "layout"), str(tmp_path / "bundle")],
                   check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    a, b = tmp_path / "bundle" / "rootfs" / "srv" / "a", tmp_path / "bundle" / "rootfs" / "srv" / "b"
    assert a.read_text() == b.read_text() == "same" and os.stat(str(a)).st_ino == os.stat(str(b)).st_ino


@pytest.mark.parametrize("kind, words", [("fifo", "a FIFO"), ("socket", "a socket"),
                                         pytest.param("chardev", "a character device", marks=ROOT_ONLY)])
def test_special_files_in_an_add_tree_are_errors_naming_them(tmp_path, prog, kind, words):
    tree = tmp_path / "tree"
    (tree / "deep").mkdir(parents=True)
    (tree / "ok.txt").write_text("x")
    special = _special(tree / "deep", kind)
    last = fails(run_cli("build", "--add", "%s:/srv" % tree, "-o", tmp_path / "out.tar", prog), 1, words)
    assert str(special) in last and not (tmp_path / "out.tar").exists()
    fails(run_cli("build", "--add", "%s:/srv/x" % special, "-o", tmp_path / "out.tar", prog), 1, words)


def test_names_that_are_not_utf8_are_errors_naming_them(tmp_path, prog):
    tree = tmp_path / "tree"
    tree.mkdir()
    bad = os.path.join(os.fsencode(str(tree)), b"caf\xe9.txt")
    with open(bad, "wb") as f:
        f.write(b"x")
    fails(run_cli("build", "--add", "%s:/srv" % tree, "-o", tmp_path / "o.tar", prog), 1, "not UTF-8", "rename it")
    os.unlink(bad)
    os.symlink(b"/caf\xe9", os.path.join(os.fsencode(str(tree)), b"link"))
    fails(run_cli("build", "--add", "%s:/srv" % tree, "-o", tmp_path / "o.tar", prog), 1, "link target", "not UTF-8")
    odd = os.path.join(os.fsencode(str(tmp_path)), b"\xff")
    shutil.copyfile(str(prog), odd)
    python_argv = [sys.executable, MODULE, "build", "-o", str(tmp_path / "o.tar")]
    result = subprocess.run(python_argv + [odd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    fails(result, 2, "is not UTF-8", "--target")
    result = subprocess.run(python_argv + ["--target", "/app", odd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    ok(result)
    assert not (tmp_path / "o.tar").is_symlink()


@pytest.mark.parametrize("option", [["--env", b"A=\xff"], ["--env", b"\xff=1"], ["--label", b"a=\xff"],
                                    ["--annotation", b"a=\xff"], ["--cmd", b"\xff"], ["--workdir", b"/\xff"]])
def test_metadata_that_is_not_utf8_is_a_usage_error(tmp_path, prog, option):
    result = subprocess.run([sys.executable, MODULE, "build", "-o", str(tmp_path / "o.tar")] + option + [str(prog)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    fails(result, 2, option[0], "not UTF-8")
    assert not (tmp_path / "o.tar").exists()


@pytest.mark.parametrize("user, words", [(b"\xff", "UTF-8"), (b"a:b", "cannot hold ':'")])
def test_login_refuses_what_basic_auth_cannot_carry(tmp_path, user, words):
    result = subprocess.run([sys.executable, MODULE, "login", "-u", user, "--password-stdin", "127.0.0.1:9"],
                            input="secret\n", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, env=dict(os.environ, HOME=str(tmp_path), DOCKER_CONFIG=""))
    fails(result, 2, words)
    assert "secret" not in result.stderr and not (tmp_path / ".docker").exists()


def test_a_file_cannot_be_added_as_the_root(tmp_path, prog):
    fails(run_cli("build", "--add", "%s:/." % prog, "-o", tmp_path / "o.tar", prog), 2, "cannot be the root")


@ROOT_ONLY
@pytest.mark.parametrize("what", ["directory", "listable directory", "file"])
def test_unreadable_parts_of_an_add_tree_are_errors_naming_them(tmp_path, what):
    # As root everything is readable: run zeroimage as nobody, on a copy of the module it can read,
    # with the system's Python (pyenv's live under /root, which nobody cannot enter).
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    if python is None:
        pytest.skip("no system python3 that another user can run")
    work = tempfile.mkdtemp(prefix="zeroimage-unreadable-")
    try:
        os.chmod(work, 0o755)
        shutil.copy(MODULE, work)
        with open(os.path.join(work, "app"), "wb") as f:
            f.write(make_elf(62) + b"\0" * 64)
        os.makedirs(os.path.join(work, "tree", "sub", "inner"))
        with open(os.path.join(work, "tree", "sub", "inner", "f"), "w") as f:
            f.write("x")
        out = os.path.join(work, "out")
        os.mkdir(out)
        for root, dirs, files in os.walk(work):
            for name in dirs + files:
                os.chown(os.path.join(root, name), 65534, 65534)
        bad = {"directory": (os.path.join(work, "tree", "sub"), 0o000),
               "listable directory": (os.path.join(work, "tree", "sub"), 0o444),
               "file": (os.path.join(work, "tree", "sub", "inner", "f"), 0o000)}[what]
        os.chmod(bad[0], bad[1])
        env = dict(os.environ, HOME=work, ZEROIMAGE_CACHE_DIR=os.path.join(work, "cache"))
        result = subprocess.run(
            [python, os.path.join(work, "zeroimage.py"), "build", "--add", "tree:/srv", "-o", "out/x.tar",
             "app"], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
            preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)), timeout=120)
        last = fails(result, 1, "cannot be read")
        assert bad[0].replace(work + "/", "") in last and os.listdir(out) == []
    finally:
        shutil.rmtree(work)


def test_directories_of_the_base_keep_their_mode(tmp_path, prog):
    base = fhs_base(tmp_path)
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "f").write_text("x")
    ok(run_cli("build", "--from-archive", base, "--add", "%s:/tmp/x" % prog, "--add", "%s:/root" % (tmp_path / "tree"),
               "--target", "/usr/local/bin/app", "-o", tmp_path / "o.tar", prog))
    assert dirs_of_program_layer(tmp_path / "o.tar") == {"tmp": 0o1777, "root": 0o700, "usr": 0o755,
                                                         "usr/local": 0o755, "usr/local/bin": 0o755}
    # the minimal base's own directories likewise
    ok(run_cli("build", "--add", "%s:/tmp/x" % prog, "--add", "%s:/home/nonroot/cfg" % prog, "-o", tmp_path / "m.tar",
               prog))
    members = program_layer(tmp_path / "m.tar")
    assert members["tmp"].mode == 0o1777 and (members["home/nonroot"].mode, members["home/nonroot"].uid) == (0o700, 65532)


@pytest.mark.parametrize("args, words", [
    (["--target", "/bin/app"], ["/bin", "a symlink to usr/bin", "under the link's target"]),
    (["--add", "PROG:/bin/"], ["a symlink"]),
    (["--add", "PROG:/etc/motd/x"], ["/etc/motd", "as a file"]),
])
def test_a_path_through_a_file_or_symlink_of_the_base_is_a_usage_error(tmp_path, prog, args, words):
    base = fhs_base(tmp_path)
    args = [str(prog) if a == "PROG" else a.replace("PROG", str(prog)) for a in args]
    fails(run_cli("build", "--from-archive", base, *args, "-o", tmp_path / "o.tar", prog), 2, *words)
    assert not (tmp_path / "o.tar").exists()


def test_whiteouts_in_the_base_are_followed(tmp_path, prog):
    gone = [(".wh.tmp", "file", b"", 0o644), ("usr", "dir", None, 0o755), ("usr/.wh..wh..opq", "file", b"", 0o644),
            ("bin", "dir", None, 0o711)]
    base = fhs_base(tmp_path, gone)
    ok(run_cli("build", "--from-archive", base, "--add", "%s:/tmp/x" % prog, "--target", "/usr/bin/app",
               "--add", "%s:/bin/x" % prog, "-o", tmp_path / "o.tar", prog))
    assert dirs_of_program_layer(tmp_path / "o.tar") == {"tmp": 0o755, "usr": 0o755, "usr/bin": 0o755, "bin": 0o711}


def test_base_metadata_the_spec_does_not_allow_is_left_out_with_a_warning(tmp_path, prog):
    b = LayoutBuilder()
    config = {"Labels": {"org.opencontainers.foo": "x", "org.opencontainers.image.ref.name": "ubuntu",
                         "org.opencontainers.image.created": "yesterday", "com.example.ok": "1"},
              "ExposedPorts": {"http": {}, "80/tcp": {}}}
    desc = b.image([[("etc", "dir", None, 0o755)]], {"config": config})
    base = b.write_tar(str(tmp_path / "base.tar"), [ref(desc, "base:1")])
    result = ok(run_cli("build", "--from-archive", base, "-o", tmp_path / "o.tar", prog))
    warned = [line for line in result.stderr.splitlines() if "left out" in line]
    assert len(warned) == 3 and any("'http'" in w for w in warned) and any("org.opencontainers.foo" in w for w in warned)
    runtime = image_of(str(tmp_path / "o.tar"))[2]["config"]
    assert runtime["Labels"] == {"org.opencontainers.image.ref.name": "ubuntu", "com.example.ok": "1"}
    assert runtime["ExposedPorts"] == {"80/tcp": {}}


def test_a_base_env_entry_without_a_value_is_refused(tmp_path, prog):
    b = LayoutBuilder()
    desc = b.image([[("etc", "dir", None, 0o755)]], {"config": {"Env": ["FOO", "PATH=/bin"]}})
    base = b.write_tar(str(tmp_path / "base.tar"), [ref(desc, "base:1")])
    fails(run_cli("build", "--from-archive", base, "-o", tmp_path / "o.tar", prog), 1, "Env holds 'FOO'", "NAME=VALUE")
    assert not (tmp_path / "o.tar").exists()


def test_paths_with_a_double_slash_are_normalised(tmp_path, prog):
    ok(run_cli("build", "--from", "scratch", "--add", "%s://srv//x" % prog, "--workdir", "//srv/",
               "-o", tmp_path / "o.tar", prog))
    assert "srv/x" in program_layer(tmp_path / "o.tar")
    assert image_of(str(tmp_path / "o.tar"))[2]["config"]["WorkingDir"] == "/srv"
    fails(run_cli("build", "--target", "//app", "-o", tmp_path / "o.tar", prog), 2, "normalised")


def test_every_file_the_build_reads_is_protected_from_o(tmp_path, prog):
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "f").write_text("keep")
    fails(run_cli("build", "--add", "tree:/d", "-o", "tree/f", "app", cwd=str(tmp_path)), 2, "which the build reads")
    (tmp_path / "ca.pem").write_text("keep")
    fails(run_cli("build", "--ca-bundle", "ca.pem", "-o", "ca.pem", "app", cwd=str(tmp_path)), 2, "which the build reads")
    # (SSL_CERT_FILE is no input of the build: trust for registries only, tests/test_network_hints.py)
    assert (tmp_path / "tree" / "f").read_text() == (tmp_path / "ca.pem").read_text() == "keep"
    # a layout may be the base of an image added to it
    ok(run_cli("build", "--from", "scratch", "--format", "oci-layout", "-t", "base:1", "-o", "lay", "app",
               cwd=str(tmp_path)))
    ok(run_cli("build", "--from-archive", "lay:base:1", "--format", "oci-layout", "-t", "app:1", "-o", "lay", "app",
               cwd=str(tmp_path)))


def test_a_layer_never_replaces_a_directory_or_symlink_of_the_base(tmp_path, prog):
    base = fhs_base(tmp_path)
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "bin" / "tool").write_text("x")
    fails(run_cli("build", "--from-archive", base, "--add", "%s:/" % rootfs, "-o", tmp_path / "o.tar", prog), 2,
          "replace the base's symlink /bin (to usr/bin)")
    fails(run_cli("build", "--from-archive", base, "--target", "/usr/bin", "-o", tmp_path / "o.tar", prog), 2,
          "replace the base's directory /usr/bin")
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "etc").symlink_to("/elsewhere")
    fails(run_cli("build", "--from-archive", base, "--add", "%s:/" % (tmp_path / "links"), "-o", tmp_path / "o.tar",
                  prog), 2, "replace the base's directory /etc with a symlink")
    assert not (tmp_path / "o.tar").exists()


def test_whiteouts_remove_only_what_lower_layers_hold(tmp_path, prog):
    # in one layer: entries first, then the opaque marker of their directory (tar order is free)
    layer = [("usr", "dir", None, 0o755), ("usr/lib", "dir", None, 0o711), ("usr/.wh..wh..opq", "file", b"", 0o644)]
    base = fhs_base(tmp_path, layer)
    ok(run_cli("build", "--from-archive", base, "--target", "/usr/lib/x/app", "-o", tmp_path / "o.tar", prog))
    assert dirs_of_program_layer(tmp_path / "o.tar")["usr/lib"] == 0o711


def test_a_directory_replaced_in_the_base_loses_what_was_under_it(tmp_path, prog):
    b = LayoutBuilder()
    desc = b.image([[("opt", "dir", None, 0o755), ("opt/bin", "dir", None, 0o700)], [("opt", "file", b"x", 0o644)],
                    [("opt", "dir", None, 0o750)]], {"config": {}})
    base = b.write_tar(str(tmp_path / "base.tar"), [ref(desc, "base:1")])
    ok(run_cli("build", "--from-archive", base, "--target", "/opt/bin/app", "-o", tmp_path / "o.tar", prog))
    assert dirs_of_program_layer(tmp_path / "o.tar") == {"opt": 0o750, "opt/bin": 0o755}


def test_the_output_is_never_inside_a_base_layout_directory(tmp_path, prog):
    ok(run_cli("build", "--from", "scratch", "--format", "oci-layout", "-t", "base:1", "-o", "lay", "app",
               cwd=str(tmp_path)))
    before = (tmp_path / "lay" / "index.json").read_bytes()
    fails(run_cli("build", "--from-archive", "lay:base:1", "-o", "lay/index.json", "app", cwd=str(tmp_path)), 2,
          "inside lay, which the build reads")
    assert (tmp_path / "lay" / "index.json").read_bytes() == before


def test_a_layout_is_never_written_among_other_files(tmp_path, prog):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "index.json").write_text("{}")         # a web project, say
    fails(run_cli("build", "--format", "oci-layout", "-o", tmp_path / "proj", prog), 1, "a directory of other files")
    assert os.listdir(str(tmp_path / "proj")) == ["index.json"]
    (tmp_path / "empty").mkdir()
    ok(run_cli("build", "--format", "oci-layout", "-o", tmp_path / "empty", prog))
    ok(run_cli("build", "--format", "oci-layout", "-o", tmp_path / "new" / "parents" / "lay", prog))   # as mkdir -p
    assert (tmp_path / "new" / "parents" / "lay" / "oci-layout").is_file()


def test_an_output_name_as_long_as_names_go(tmp_path, prog):
    out = tmp_path / ("y" * 251 + ".tar")
    ok(run_cli("build", "-o", out, prog))
    assert out.is_file() and sorted(os.listdir(str(tmp_path))) == sorted(["app", out.name])


# ---- 3. Programs and users ----

def test_a_directory_as_the_program_says_so(tmp_path):
    last = fails(run_cli("build", ".", cwd=str(tmp_path)), 1, "is a directory; give the program file")
    assert "--target" not in last
    fails(run_cli("build", "linux/amd64=%s" % tmp_path, "linux/arm64=%s" % tmp_path), 1, "is a directory")
    fails(run_cli("build", "%s/" % tmp_path), 1, "is a directory")
    os.mkfifo(str(tmp_path / "pipe"))
    fails(run_cli("build", tmp_path / "pipe"), 1, "is a FIFO; give the program file")


@pytest.mark.parametrize("base, user, adds, warned", [
    ("scratch", "app", [], ["no /etc/passwd", "user 'app'"]),
    ("scratch", "app:staff", [], ["no /etc/passwd", "no /etc/group", "group 'staff'"]),
    ("scratch", "1000:1000", [], []),
    (None, "app", [], ["/etc/passwd in the image lists no user 'app'"]),
    (None, "nonroot", [], []),
    (None, "nobody:nogroup", [], ["lists no group 'nogroup'"]),
    ("scratch", "app", ["passwd:/etc/passwd"], []),
    ("scratch", "app:app", ["passwd:/etc/passwd"], ["no /etc/group"]),
])
def test_a_user_name_the_image_cannot_resolve_is_a_warning(tmp_path, prog, base, user, adds, warned):
    (tmp_path / "passwd").write_text("root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n")
    args = (["--from", base] if base else []) + [a for add in adds for a in ("--add", add)]
    result = ok(run_cli("build", *args, "--user", user, "-o", "out.tar", "app", cwd=str(tmp_path)))
    warnings = [line for line in result.stderr.splitlines() if "--user" in line]
    assert bool(warnings) == bool(warned) and all(any(w in line for line in warnings) for w in warned), warnings
    if warned:
        assert "numeric id" in warnings[0]


@pytest.mark.parametrize("kind, words", [("fifo", "a FIFO"), ("dir", "a directory"), ("socket", "a socket")])
def test_every_file_input_must_be_a_file(tmp_path, prog, kind, words):
    special = _special(tmp_path, kind)      # a FIFO would make a plain open() wait for ever
    fails(run_cli("build", special, "-o", tmp_path / "o.tar"), 1, "program", words)
    fails(run_cli("build", "--ca-bundle", special, "-o", tmp_path / "o.tar", prog), 1, "--ca-bundle", words)
    if kind != "dir":           # a directory is a layout directory, read as one
        fails(run_cli("build", "--from-archive", special, "-o", tmp_path / "o.tar", prog), 1, words, "not a tar")
        fails(run_cli("push", special, "127.0.0.1:9/x:1"), 1, words, "not a tar")
        fails(run_cli("inspect", "%s:x" % special), 1, words, "not a tar")
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    (home / ".docker" / "config.json").symlink_to(special)
    fails(run_cli("logout", "127.0.0.1:5999", env={"HOME": str(home), "DOCKER_CONFIG": ""}), 1,
          "credentials file", words)
    assert not (tmp_path / "o.tar").exists()


@pytest.mark.parametrize("user, words", [("4294967296", "out of range"), ("2147483648:0", "out of range"),
                                         ("-1", "expected USER"), ("a b", "expected USER"), ("app:", "expected USER")])
def test_a_user_a_runtime_cannot_take_is_a_usage_error(tmp_path, prog, user, words):
    fails(run_cli("build", "--user=" + user, "-o", tmp_path / "o.tar", prog), 2, words)


def test_a_long_program_file_name_still_names_the_image(tmp_path, prog):
    long = tmp_path / ("x" * 240)
    shutil.copyfile(str(prog), str(long))
    ok(run_cli("build", "-o", tmp_path / "o.tar", long))
    with tarfile.open(str(tmp_path / "o.tar")) as tar:
        assert json.load(tar.extractfile("manifest.json"))[0]["RepoTags"] == ["localhost/%s:latest" % ("x" * 128)]


def test_program_arguments_that_name_no_file_are_usage_errors(tmp_path):
    fails(run_cli("build", "linux/amd64=", cwd=str(tmp_path)), 2, "names no program file")
    fails(run_cli("build", "", cwd=str(tmp_path)), 2, "the program path is empty")


def test_layouts_of_another_version_and_plain_directories_say_what_they_are(tmp_path):
    fails(run_cli("inspect", tmp_path), 1, "is a directory but not an OCI image layout")
    (tmp_path / "oci-layout").write_text('{"imageLayoutVersion": "2.0.0"}')
    (tmp_path / "index.json").write_text('{"schemaVersion": 2, "manifests": []}')
    fails(run_cli("inspect", tmp_path), 1, "image layout version '2.0.0'")


def test_a_layout_file_that_is_there_but_not_a_file_is_not_called_missing(tmp_path, prog):
    lay = tmp_path / "lay"
    ok(run_cli("build", "-q", "--from", "scratch", "--format", "oci-layout", "-o", lay, prog))
    (lay / "oci-layout").unlink()
    (lay / "oci-layout").mkdir()
    fails(run_cli("inspect", lay), 1, "not a plain file inside the layout")
    (lay / "oci-layout").rmdir()
    (lay / "oci-layout").symlink_to(tmp_path / "nothing")
    fails(run_cli("inspect", lay), 1, "not a plain file inside the layout")


def test_a_layout_that_lists_a_manifest_it_does_not_hold_says_so(tmp_path, prog):
    lay = tmp_path / "lay"
    ok(run_cli("build", "-q", "--from", "scratch", "--format", "oci-layout", "-o", lay, prog))
    digest = json.loads((lay / "index.json").read_text())["manifests"][0]["digest"]
    (lay / "blobs" / "sha256" / digest.split(":")[1]).unlink()
    for verb in (["inspect", lay], ["digest", lay], ["copy", lay, tmp_path / "o.tar"],
                 ["build", "--from-archive", lay, "-o", tmp_path / "b.tar", prog]):
        last = fails(run_cli(*verb), 1, digest)
        assert "holds no image" not in last and ("missing" in last or "does not hold" in last), last


# ---- 7. The command line ----

def test_global_options_work_before_the_command(tmp_path, prog):
    quiet = ok(run_cli("-q", "build", "-o", tmp_path / "q.tar", prog))
    assert quiet.stderr == "" and quiet.stdout.startswith("sha256:")
    verbose = fails(run_cli("-v", "pull", "-o", tmp_path / "v.tar", "127.0.0.1:9/x:1"), 1)
    assert verbose
    fails(run_cli("-q", "build", "-v", prog), 2, "-q and -v")
    ok(run_cli("--insecure", "-q", "inspect", tmp_path / "q.tar"))
