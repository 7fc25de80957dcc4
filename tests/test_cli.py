"""The command line as a user meets it: outputs, reproducibility, errors, the zipapp.

No network and no external tools; the program built is a crafted ELF file or a copy
of the Python interpreter, so these run everywhere (Python 3.8 included).
"""

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import signal
import tempfile
import time

import pytest

import zeroimage
from binaries import make_elf
from helpers import EPOCH, fails, ok, python38
from imagetools import DOCKER, OCI, LayoutBuilder, image_of, layer_members, read_archive, ref, run_cli, small_base

pytestmark = pytest.mark.prog(machine=183, name="prog")     # `prog`: a small static arm64 program


def test_default_build_writes_named_archive_and_prints_digest(tmp_path, prog):
    r = ok(run_cli("build", prog, cwd=str(tmp_path), env=EPOCH))
    digest = r.stdout.strip()
    assert digest.startswith("sha256:") and len(r.stdout.splitlines()) == 1
    index, manifest, config, layers = image_of(str(tmp_path / "prog.tar"))
    assert index["manifests"][0]["digest"] == digest
    assert index["manifests"][0]["annotations"] == {
        "io.containerd.image.name": "localhost/prog:latest", "org.opencontainers.image.ref.name": "latest"}
    assert index["manifests"][0]["platform"] == {"os": "linux", "architecture": "arm64"}
    assert manifest["mediaType"] == OCI["manifest"] and len(layers) == 2
    assert config["config"]["Entrypoint"] == ["/prog"] and config["architecture"] == "arm64"
    assert config["created"] == "2023-11-14T22:13:20Z"
    assert [h["created_by"] for h in config["history"]][-1] == "zeroimage: COPY prog /prog"
    base = layer_members(layers[0])
    assert sorted(base) == ["etc", "etc/group", "etc/nsswitch.conf", "etc/passwd", "etc/ssl", "etc/ssl/certs",
                            "etc/ssl/certs/ca-certificates.crt", "home", "home/nonroot", "root", "tmp"]
    assert base["tmp"].mode == 0o1777 and base["home/nonroot"].uid == 65532 and base["root"].mode == 0o700
    docker = json.loads(read_archive(str(tmp_path / "prog.tar"))["manifest.json"])
    assert docker == [{"Config": "blobs/sha256/" + manifest["config"]["digest"][7:], "RepoTags": ["localhost/prog:latest"],
                       "Layers": ["blobs/sha256/" + d["digest"][7:] for d in manifest["layers"]]}]


def test_minimal_base_users_and_ca_bundle(tmp_path, prog):
    bundle = tmp_path / "roots.pem"
    bundle.write_bytes(b"-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n")
    ok(run_cli("build", "--ca-bundle", bundle, "-o", tmp_path / "a.tar", prog, env=EPOCH))
    _, _, _, layers = image_of(str(tmp_path / "a.tar"))
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layers[0]))) as tar:
        passwd = tar.extractfile("etc/passwd").read().decode()
        assert "nonroot:x:65532:65532:nonroot:/home/nonroot:" in passwd
        assert passwd.startswith("root:x:0:0:") and "nobody:x:65534:65534:" in passwd
        assert tar.extractfile("etc/group").read() == b"root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"
        assert tar.extractfile("etc/nsswitch.conf").read() == b"hosts: files dns\n"
        assert tar.extractfile("etc/ssl/certs/ca-certificates.crt").read() == bundle.read_bytes()


def test_no_ca_bundle_on_host_warns_and_leaves_it_out(tmp_path, prog, monkeypatch):
    monkeypatch.setattr(zeroimage, "find_host_ca_bundle", lambda environ=None: None)
    monkeypatch.chdir(tmp_path)
    assert zeroimage.main(["build", str(prog)]) == 0
    _, _, _, layers = image_of(str(tmp_path / "prog.tar"))
    assert "etc/ssl/certs/ca-certificates.crt" not in layer_members(layers[0])


def test_scratch_holds_only_the_program(tmp_path, prog):
    ok(run_cli("build", "--from", "scratch", "--target", "/usr/bin/app", "-t", "reg.example.com/team/app:2",
               "-o", tmp_path / "s.tar", prog, env=EPOCH))
    index, _, config, layers = image_of(str(tmp_path / "s.tar"))
    assert len(layers) == 1 and config["config"]["Entrypoint"] == ["/usr/bin/app"]
    members = layer_members(layers[0])
    assert list(members) == ["usr", "usr/bin", "usr/bin/app"]
    assert members["usr/bin/app"].mode == 0o755 and members["usr/bin"].mode == 0o755
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == "reg.example.com/team/app:2"
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "2"
    assert json.loads(read_archive(str(tmp_path / "s.tar"))["manifest.json"])[0]["RepoTags"] == ["reg.example.com/team/app:2"]


def test_same_inputs_give_identical_archives(tmp_path, prog):
    """Same bytes whatever the source file's mtime, mode and the umask; created from SOURCE_DATE_EPOCH."""
    other = tmp_path / "other" / "prog"
    other.parent.mkdir()
    shutil.copyfile(str(prog), str(other))
    os.chmod(str(other), 0o700)
    os.utime(str(other), (12345, 12345))
    bundle = tmp_path / "roots.pem"
    bundle.write_bytes(b"roots")
    ok(run_cli("build", "--ca-bundle", bundle, "-o", tmp_path / "1.tar", prog, env=EPOCH))
    proc = subprocess.run(["sh", "-c", 'umask 077 && exec "$@"', "sh", sys.executable, zeroimage.__file__,
                           "build", "--ca-bundle", str(bundle), "-o", str(tmp_path / "2.tar"), str(other)],
                          env=dict(os.environ, **EPOCH), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "1.tar").read_bytes() == (tmp_path / "2.tar").read_bytes()
    ok(run_cli("build", "--ca-bundle", bundle, "-o", tmp_path / "3.tar", prog, env={"SOURCE_DATE_EPOCH": "1"}))
    assert (tmp_path / "1.tar").read_bytes() != (tmp_path / "3.tar").read_bytes()
    assert image_of(str(tmp_path / "3.tar"))[3] == image_of(str(tmp_path / "1.tar"))[3], "layers do not depend on time"


def test_same_archive_from_another_python(tmp_path, prog):
    """The oldest supported Python writes the very same bytes."""
    py = python38()
    if py is None:
        pytest.skip("no Python 3.8 here")
    bundle = tmp_path / "roots.pem"
    bundle.write_bytes(b"roots")
    ok(run_cli("build", "--ca-bundle", bundle, "-o", tmp_path / "a.tar", prog, env=EPOCH))
    ok(run_cli("build", "--ca-bundle", bundle, "-o", tmp_path / "b.tar", prog, env=EPOCH, python=py))
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def test_platform_comes_from_elf_and_disagreement_warns(tmp_path):
    arm = tmp_path / "armprog"
    arm.write_bytes(make_elf(40, is64=False))
    r = ok(run_cli("build", "--from", "scratch", "-o", tmp_path / "a.tar", arm))
    assert image_of(str(tmp_path / "a.tar"))[2]["variant"] == "v7"
    r = ok(run_cli("build", "--from", "scratch", "--platform", "linux/amd64", "-o", tmp_path / "b.tar", arm))
    assert "warning: --platform linux/amd64 disagrees" in r.stderr and "linux/arm/v7" in r.stderr
    assert image_of(str(tmp_path / "b.tar"))[2]["architecture"] == "amd64"
    r = ok(run_cli("build", "--from", "scratch", "--platform", "linux/arm/v6", "-o", tmp_path / "c.tar", arm))
    assert "warning" not in r.stderr


def test_non_elf_falls_back_to_amd64_with_a_note(tmp_path):
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    r = ok(run_cli("build", "--from", "scratch", "-o", tmp_path / "s.tar", script))
    assert "not an ELF binary" in r.stderr and "linux/amd64" in r.stderr
    assert image_of(str(tmp_path / "s.tar"))[2]["architecture"] == "amd64"


def test_dynamic_binary_on_scratch_warns(tmp_path):
    dyn = tmp_path / "dyn"
    dyn.write_bytes(make_elf(62, interpreter="/lib64/ld-linux-x86-64.so.2"))
    for args in (["--from", "scratch"], []):
        r = ok(run_cli("build", *args, "-o", tmp_path / "d.tar", dyn))
        warning = [line for line in r.stderr.splitlines() if "dynamically linked" in line]
        assert warning and "/lib64/ld-linux-x86-64.so.2" in warning[0] and "CGO_ENABLED=0" in warning[0]


# ---- Bases from archives ----


@pytest.mark.parametrize("family", [OCI, DOCKER], ids=["oci", "docker"])
def test_build_on_archive_base_keeps_layers_and_config(tmp_path, prog, family):
    b = LayoutBuilder()
    desc = small_base(b, family)
    base = b.write_tar(tmp_path / "base.tar", [ref(desc, "1.0")])
    ok(run_cli("build", "--from-archive", base, "-o", tmp_path / "app.tar", prog, env=EPOCH))
    _, manifest, config, layers = image_of(str(tmp_path / "app.tar"))
    base_manifest = json.loads(b.blobs[desc["digest"]])
    assert manifest["mediaType"] == family["manifest"] and manifest["config"]["mediaType"] == family["config"]
    assert manifest["layers"][:2] == base_manifest["layers"]
    assert manifest["layers"][2]["mediaType"] == family["layer"]
    assert config["config"]["Env"] == ["PATH=/bin", "BASE=1"] and config["config"]["User"] == "65532"
    assert "Cmd" not in config["config"] and config["x-unknown"] == [1, 2]
    assert (config["architecture"], config["variant"]) == ("arm64", "v8")
    assert len(config["rootfs"]["diff_ids"]) == 3 and len(layers) == 3


def test_base_directory_and_nested_index_pick_platform(tmp_path, prog):
    b = LayoutBuilder()
    arm = small_base(b)
    amd = small_base(b, platform=("linux", "amd64", ""))
    top = b.index([b.index([amd, arm])])
    base = b.write_dir(tmp_path / "base", [ref(top, "multi")])
    ok(run_cli("build", "--from-archive", base, "-o", tmp_path / "arm.tar", prog))
    assert image_of(str(tmp_path / "arm.tar"))[1]["layers"][0] == json.loads(b.blobs[arm["digest"]])["layers"][0]
    r = run_cli("build", "--from-archive", base, "--platform", "linux/s390x", "-o", tmp_path / "x.tar", prog)
    fails(r, 1, "no image for linux/s390x", "linux/amd64", "linux/arm64/v8")
    assert not (tmp_path / "x.tar").exists()


def test_ambiguous_archive_lists_candidates_and_name_picks(tmp_path, prog):
    b = LayoutBuilder()
    one = small_base(b)
    two = b.image([[("x", "file", b"two", 0o644)]], {"config": {}}, platform=("linux", "arm64", ""))
    base = b.write_tar(tmp_path / "two.tar", [ref(one, "one"), ref(two, "two")])
    fails(run_cli("build", "--from-archive", base, "-o", tmp_path / "o.tar", prog), 1, "several images", "one", "two")
    ok(run_cli("build", "--from-archive", "%s:two" % base, "-o", tmp_path / "o.tar", prog))
    assert image_of(str(tmp_path / "o.tar"))[1]["layers"][0] == json.loads(b.blobs[two["digest"]])["layers"][0]


def test_hostile_base_archive_is_refused(tmp_path, prog):
    b = LayoutBuilder()
    desc = small_base(b)
    evil = tarfile.TarInfo("blobs/sha256/" + "0" * 64)
    evil.type = tarfile.SYMTYPE
    evil.linkname = "/etc/shadow"
    base = b.write_tar(tmp_path / "evil.tar", [desc], extra=[(evil, None)])
    fails(run_cli("build", "--from-archive", base, "-o", tmp_path / "app.tar", prog), 1, "refusing", "link")
    assert not (tmp_path / "app.tar").exists()


def test_corrupt_base_blob_writes_nothing(tmp_path, prog):
    b = LayoutBuilder()
    desc = small_base(b)
    layer = json.loads(b.blobs[desc["digest"]])["layers"][1]["digest"]
    b.blobs[layer] = b"X" + b.blobs[layer][1:]
    base = b.write_tar(tmp_path / "base.tar", [desc])
    fails(run_cli("build", "--from-archive", base, "-o", tmp_path / "app.tar", prog), 1, "does not match its digest", layer)
    assert sorted(os.listdir(str(tmp_path))) == ["base.tar", "prog"]
    fails(run_cli("build", "--from-archive", base, "--format", "oci-layout", "-o", tmp_path / "layout", prog), 1,
          "does not match its digest")
    assert sorted(os.listdir(str(tmp_path))) == ["base.tar", "prog"], "a layout this build started is removed"


def test_inspect_of_something_neither_archive_nor_reference_is_a_usage_error(tmp_path):
    r = run_cli("inspect", "not..valid", cwd=str(tmp_path))
    fails(r, 2, "invalid reference", "no such archive")


def test_a_closed_stdout_ends_quietly(tmp_path, prog):
    """`zeroimage inspect ... | head -1`: when stdout's reader is gone, exit 141 without an error line."""
    ok(run_cli("build", "-o", tmp_path / "a.tar", prog))
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        r = subprocess.run([sys.executable, zeroimage.__file__, "inspect", "--raw", str(tmp_path / "a.tar")],
                           stdout=write_end, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    finally:
        os.close(write_end)
    assert r.returncode == 141 and r.stderr == "", r.stderr


# ---- Errors ----


def test_errors_are_one_line_and_leave_nothing(tmp_path, prog):
    (tmp_path / "dir").mkdir()
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"junk" * 1000)
    fails(run_cli("build", tmp_path / "missing"), 1, "missing", "No such file")
    fails(run_cli("build", tmp_path / "dir"), 1, "is a directory")
    fails(run_cli("build", "--from-archive", junk, prog), 1, "not a tar archive")
    fails(run_cli("build", "--from-archive", tmp_path / "nope.tar", prog), 1, "no such file")
    fails(run_cli("build", "-o", tmp_path / "dir", prog), 1, "is a directory")
    fails(run_cli("build", "-o", tmp_path / "no" / "such" / "x.tar", prog), 1, "cannot write")
    fails(run_cli("build", "--from", "127.0.0.1:1/nothing:1", "-o", tmp_path / "x.tar", prog), 1, "cannot reach 127.0.0.1:1")
    fails(run_cli("build", "-o", tmp_path / "x.tar", prog, env={"SOURCE_DATE_EPOCH": "soon"}), 1, "SOURCE_DATE_EPOCH")
    fails(run_cli("build", "--ca-bundle", tmp_path / "none.pem", "-o", tmp_path / "x.tar", prog), 1, "--ca-bundle")
    assert sorted(os.listdir(str(tmp_path))) == ["dir", "junk.tar", "prog"]


def test_unreadable_entrypoint_and_unwritable_output(prog):
    """Run as an unprivileged user (root reads and writes anything), from a world-readable copy."""
    command = [sys.executable]
    if os.geteuid() == 0:
        if not (shutil.which("setpriv") and os.path.exists("/usr/bin/python3")):
            pytest.skip("needs setpriv and /usr/bin/python3 to drop root")
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3"]
    work = tempfile.mkdtemp(prefix="zeroimage-perm-")
    try:
        os.chmod(work, 0o777)
        shutil.copy(zeroimage.__file__, work)
        shutil.copy(str(prog), os.path.join(work, "prog"))
        os.chmod(os.path.join(work, "prog"), 0)
        os.mkdir(os.path.join(work, "ro"), 0o555)
        os.chmod(os.path.join(work, "ro"), 0o555)

        def run(*args):
            return subprocess.run(command + [os.path.join(work, "zeroimage.py")] + list(args), cwd=work,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        fails(run("build", "-o", "/tmp/never-written.tar", "prog"), 1, "cannot read the program", "Permission denied")
        os.chmod(os.path.join(work, "prog"), 0o644)
        fails(run("build", "-o", "ro/x.tar", "prog"), 1, "cannot write ro/x.tar", "Permission denied")
        assert os.listdir(os.path.join(work, "ro")) == []
    finally:
        shutil.rmtree(work)


@pytest.mark.parametrize("args, words", [
    (["build", "--platform", "linux", "p"], ["--platform", "os/arch"]),
    (["build", "--platform", "linux/amd64/v1/x", "p"], ["--platform"]),
    (["build", "--compression-level", "11", "p"], ["--compression-level"]),
    (["build", "-t", "Bad:Name", "p"], ["--tag", "lowercase"]),
    (["build", "--target", "relative/path", "p"], ["--target", "absolute"]),
    (["build", "--from", "scratch", "--from-archive", "x", "p"], ["not allowed with"]),
    (["build"], ["[PLATFORM=]PROGRAM"]),
    (["frobnicate"], ["unknown command 'frobnicate'"]),
])
def test_usage_errors_exit_2(args, words):
    r = run_cli(*args)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("usage: zeroimage")
    for word in words:
        assert word in r.stderr


def test_no_command_prints_help_and_exits_2():
    r = run_cli()
    assert r.returncode == 2 and "build" in r.stderr and r.stdout == ""


def test_version():
    r = ok(run_cli("--version"))
    assert r.stdout.strip() == "zeroimage " + zeroimage.__version__


def test_debug_shows_traceback(tmp_path):
    r = run_cli("build", tmp_path / "missing", env={"ZEROIMAGE_DEBUG": "1"})
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_library_api(tmp_path, prog):
    result = zeroimage.build(zeroimage.BuildOptions(str(prog), str(tmp_path / "lib.tar"), base="scratch",
                                                    platform=zeroimage.Platform.parse("linux/arm64")), environ=EPOCH)
    assert result.digest == image_of(str(tmp_path / "lib.tar"))[0]["manifests"][0]["digest"]
    assert result.images[0].config["created"] == "2023-11-14T22:13:20Z"


def test_archive_name_may_contain_colons(tmp_path, prog):
    b = LayoutBuilder()
    one = small_base(b)
    two = b.image([[("x", "file", b"two", 0o644)]], {"config": {}}, platform=("linux", "arm64", ""))
    base = b.write_tar(tmp_path / "multi.tar", [ref(one, "alpine:3.19"), ref(two, "alpine:3.20")])
    ok(run_cli("build", "--from-archive", "%s:alpine:3.20" % base, "-o", tmp_path / "o.tar", prog))
    assert image_of(str(tmp_path / "o.tar"))[1]["layers"][0] == json.loads(b.blobs[two["digest"]])["layers"][0]
    fails(run_cli("build", "--from-archive", "%s:alpine:9" % base, "-o", tmp_path / "o.tar", prog), 1,
          "no image named 'alpine:9'", "alpine:3.19, alpine:3.20")


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_build_leaves_nothing(tmp_path, sig, code):
    big = tmp_path / "big"
    with open(str(big), "wb") as f:
        f.write(make_elf(62))
        for _ in range(48):
            f.write(os.urandom(1 << 20))
    out = tmp_path / "out"
    out.mkdir()
    (out / "app.tar").write_bytes(b"the previous archive")
    proc = subprocess.Popen([sys.executable, zeroimage.__file__, "build", "--compression-level", "9",
                             "-o", str(out / "app.tar"), str(big)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    deadline = time.monotonic() + 30
    while len(os.listdir(str(out))) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)        # poll (bounded) until the build has its temporary output open
    assert proc.poll() is None, "the build ended before it could be interrupted"
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code and stdout == "" and "Traceback" not in stderr, (proc.returncode, stderr)
    assert stderr.strip().splitlines()[-1] in ("zeroimage: interrupted", "zeroimage: terminated")
    assert os.listdir(str(out)) == ["app.tar"] and (out / "app.tar").read_bytes() == b"the previous archive"



def test_a_stop_signal_python_ignores_still_cancels_the_work():
    # A signal's exception raised where Python cannot raise it (a finalizer, a weakref callback in
    # an import) is printed as "Exception ignored" and dropped: the session must be cancelled anyway.
    class Finalized:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)         # the handler runs here and raises into the finalizer

    session = zeroimage.Session(environ={})
    stops = zeroimage._StopSignals(session)
    try:
        Finalized()
        assert session.cancelled.wait(10) and stops.received == signal.SIGTERM
    finally:
        stops.close()
        session.close()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL and signal.set_wakeup_fd(-1) == -1

BAD_INPUT = [
    # references
    (["pull", "Bad/Name"], 2), (["pull", ""], 2), (["pull", "a//b"], 2), (["pull", "name:"], 2),
    (["push", "x.tar", "UPPER"], 2), (["check-auth", "x y"], 2), (["build", "--push", "a b", "p"], 2),
    (["login", "bad host"], 2), (["logout", "https://"], 2), (["inspect", "-bad-"], 2),
    # digests
    (["pull", "name@sha256:abc"], 2), (["pull", "name@md5:" + "a" * 32], 2), (["pull", "name@sha256:" + "A" * 64], 2),
    # platforms
    (["build", "--platform", "linux", "p"], 2), (["pull", "--platform", "a/b/c/d", "x"], 2),
    (["inspect", "--platform", "", "x"], 2), (["build", "linux/amd64=p", "p"], 2),
    # key=value options
    (["build", "--env", "NOVALUE", "p"], 2), (["build", "--label", "=v", "p"], 2),
    (["build", "--annotation", "k", "p"], 2), (["build", "--expose", "http", "p"], 2),
    # paths
    (["build", "missing-program"], 1), (["build", "--from-archive", "missing.tar", "p"], 1),
    (["build", "--add", "missing:/x", "p"], 1), (["build", "-o", "/nonexistent/dir/x.tar", "p"], 1),
    (["push", "missing.tar", "localhost:1/x:1"], 1), (["inspect", "missing.tar"], 1),
    (["build", "--target", "/", "p"], 2), (["build", "--target", "/a/../b", "p"], 2),
    (["build", "--compression-level", "x", "p"], 2),
    # names and values (issue 11): ASCII references, ref names, reserved keys, environment variables
    (["build", "--from", "app:café", "p"], 2), (["build", "--from", "a b", "p"], 2), (["build", "-t", "app:café", "p"], 2),
    (["build", "-t", "app:x__y", "p"], 2), (["pull", "localhost:1/app:x__y"], 2), (["check-auth", "app:café"], 2),
    (["build", "--env=A=1\n2", "p"], 2), (["build", "--label", "org.opencontainers.mine=1", "p"], 2),
    (["build", "--annotation", "org.opencontainers.image.created=now", "p"], 2),
]


@pytest.mark.parametrize("args, code", BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_table(tmp_path, prog, args, code):
    args = [str(prog) if a == "p" else a for a in args]
    r = run_cli(*args, cwd=str(tmp_path))
    assert r.returncode == code, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and r.stdout == ""
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("zeroimage: error: ") or (code == 2 and ": error: " in last), r.stderr
    assert sorted(os.listdir(str(tmp_path))) == ["prog"], "nothing written"


def test_push_refuses_a_hostile_archive_before_any_network(tmp_path, prog):
    b = LayoutBuilder()
    desc = small_base(b)
    evil = tarfile.TarInfo("../../etc/cron.d/evil")
    evil.size = 1
    base = b.write_tar(tmp_path / "evil.tar", [desc], extra=[(evil, b"x")])
    fails(run_cli("push", base, "127.0.0.1:1/x:1"), 1, "refusing unsafe archive member")


class _Unwritable(io.StringIO):
    def __init__(self, error):
        super().__init__()
        self.error = error

    def flush(self):
        raise self.error


@pytest.mark.parametrize("error, code, said", [
    (OSError(28, "No space left on device"), 1, "zeroimage: error: standard output: No space left on device\n"),
    (BrokenPipeError(32, "Broken pipe"), 141, ""),            # its reader gone (| head): quietly, as main() says it
    (None, 0, ""),
])
def test_the_program_ends_with_an_error_when_the_last_of_its_output_cannot_be_written(monkeypatch, error, code, said):
    """_end_now ends the process without Python's own ending, whose flush of stdout said a failure (exit
    120): what is left to write is written first, and a failure is an error, not exit 0 with the output lost."""
    stdout, stderr, ended = _Unwritable(error) if error else io.StringIO(), io.StringIO(), []
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.setattr(os, "_exit", ended.append)
    zeroimage._end_now(0)
    assert ended == [code] and stderr.getvalue() == said
    if error:
        ended.clear()
        zeroimage._end_now(3)       # a command's own failure stays its status
        assert ended == [3 if error.errno == 28 else 141]


STDOUT_VERBS = [["--version"], ["--help"], ["build", "--help"], ["digest", "--help"], ["digest", "IMAGE"],
                ["digest", "--json", "IMAGE"], ["inspect", "IMAGE"], ["inspect", "--json", "IMAGE"],
                ["inspect", "--raw", "IMAGE"], ["inspect", "--config", "IMAGE"], ["inspect", "--files", "IMAGE"],
                ["inspect", "--sbom", "IMAGE"], ["build", "-o", "-", "PROGRAM"], ["build", "-o", "OUT", "PROGRAM"],
                ["build", "--json", "-o", "OUT", "PROGRAM"], ["export", "-o", "-", "IMAGE"], ["export", "-o", "OUT", "IMAGE"],
                ["copy", "IMAGE", "OUT"], ["mutate", "--env", "A=1", "-o", "-", "IMAGE"]]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
@pytest.mark.parametrize("stdout", ["full", "pipe"])
@pytest.mark.parametrize("args", STDOUT_VERBS)
def test_what_cannot_be_written_to_stdout_is_an_error(tmp_path, prog, args, stdout):
    """stdout onto a full disk (/dev/full): exit 1 and one line naming standard output, for every verb that
    prints there (text or an archive), --help and --version too (argparse dropped their failed write: exit 0,
    nothing printed; the others said "No space left on device", as if of a file). Its reader gone (| head):
    141, quietly."""
    image = tmp_path / "image.tar"
    ok(run_cli("build", "-q", "--sbom", "--from", "scratch", "-o", image, prog))
    words = [str({"IMAGE": image, "PROGRAM": prog, "OUT": tmp_path / "out.tar"}.get(a, a)) for a in args]
    from imagetools import cli_argv, run_env
    if stdout == "full":
        out = os.open("/dev/full", os.O_WRONLY)
    else:
        read_end, out = os.pipe()
        os.close(read_end)
    try:
        r = subprocess.run(cli_argv() + ["-q"] * (args[0] != "--version") + words, stdout=out, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=60, env=run_env())
    finally:
        os.close(out)
    if stdout == "pipe":
        assert (r.returncode, r.stderr) == (141, ""), r.stderr
        return
    assert r.returncode == 1 and r.stderr == "zeroimage: error: standard output: No space left on device\n", r.stderr
