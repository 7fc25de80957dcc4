"""--tzdata: the host's zone database in the minimal base's one layer, deterministic, refused
when missing or asked of another base; and a real program in the image reads it."""

import gzip
import hashlib
import io
import os
import shutil
import tarfile

import pytest

import zeroimage
from helpers import fails, ok, run_image
from imagetools import image_of, layer_members, read_file, run_cli

pytestmark = pytest.mark.prog(machine=183, name="prog")     # `prog`: a small static arm64 program

HOST = "/usr/share/zoneinfo"
EPOCH = {"SOURCE_DATE_EPOCH": "1700000000", "ZONEINFO": ""}     # empty: as unset
HISTORY = "zeroimage: minimal base (users root, nobody, nonroot; TLS roots; time zones)"


def host_zone(name):
    path = os.path.join(HOST, name)
    if not os.path.isfile(path):
        pytest.skip("the host has no %s (Debian's tzdata package)" % path)
    return path


@pytest.fixture
def zones(tmp_path):
    """A small zone database: two TZif files from the host, a relative and an absolute link, a hard
    link, a table, and right/ (left out of images)."""
    root = tmp_path / "zones"
    (root / "Europe").mkdir(parents=True)
    (root / "Etc").mkdir()
    (root / "right").mkdir()
    shutil.copyfile(host_zone("Europe/Paris"), str(root / "Europe" / "Paris"))
    shutil.copyfile(host_zone("UTC"), str(root / "UTC"))
    os.link(str(root / "UTC"), str(root / "Etc" / "Zulu"))
    os.symlink("../UTC", str(root / "Etc" / "UTC"))
    os.symlink("/etc/localtime", str(root / "localtime"))
    (root / "zone.tab").write_text("FR\t+4852+00220\tEurope/Paris\n")
    os.link(str(root / "UTC"), str(root / "right" / "UTC"))     # linked into right/, which is left out
    return root


def zone_members(archive):
    _, _, config, layers = image_of(str(archive))
    members = layer_members(layers[0])
    return config, {name[len("usr/share/zoneinfo/"):]: m for name, m in members.items()
                    if name.startswith("usr/share/zoneinfo/")}, members


def test_host_zone_database_goes_into_the_minimal_base_layer(tmp_path, prog):
    paris = host_zone("Europe/Paris")
    ok(run_cli("build", "--tzdata", "-o", tmp_path / "a.tar", prog, env=EPOCH))
    config, zones, members = zone_members(tmp_path / "a.tar")
    assert len(config["rootfs"]["diff_ids"]) == 2, "still one layer for the minimal base"
    assert config["history"][0]["created_by"] == HISTORY
    assert "etc/passwd" in members and members["usr/share/zoneinfo"].isdir()
    layer = image_of(str(tmp_path / "a.tar"))[3][0]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        assert tar.extractfile("usr/share/zoneinfo/Europe/Paris").read() == read_file(paris)
    assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in zones.values())
    assert not any(name == "right" or name.startswith("right/") for name in zones)
    for name in ("UTC", "America/New_York", "Asia/Tokyo"):
        if os.path.isfile(os.path.join(HOST, name)) and not os.path.islink(os.path.join(HOST, name)):
            assert zones[name].isfile() and zones[name].size == os.path.getsize(os.path.join(HOST, name))
    links = [p for p in sorted(zones) if os.path.islink(os.path.join(HOST, p))]
    for name in links:          # kept as links, as --add keeps them, absolute ones too
        assert zones[name].issym() and zones[name].linkname == os.readlink(os.path.join(HOST, name))


def test_same_inputs_same_digest_and_no_tzdata_is_unchanged(tmp_path, prog):
    host_zone("Europe/Paris")
    a = ok(run_cli("build", "--tzdata", "-o", tmp_path / "a.tar", prog, env=EPOCH)).stdout
    b = ok(run_cli("build", "-o", tmp_path / "b.tar", prog, "--tzdata", env=EPOCH)).stdout
    assert a == b and read_file(str(tmp_path / "a.tar")) == read_file(str(tmp_path / "b.tar"))
    ok(run_cli("build", "--tzdata", "-o", tmp_path / "c.tar", prog, env=dict(EPOCH, SOURCE_DATE_EPOCH="1")))
    assert image_of(str(tmp_path / "c.tar"))[2]["created"] == "1970-01-01T00:00:01Z"
    assert image_of(str(tmp_path / "c.tar"))[3] == image_of(str(tmp_path / "a.tar"))[3], "layers do not depend on time"
    ok(run_cli("build", "-o", tmp_path / "plain.tar", prog, env=EPOCH))
    config, zones, members = zone_members(tmp_path / "plain.tar")
    assert not zones and "usr" not in members
    assert config["history"][0]["created_by"] == "zeroimage: minimal base (users root, nobody, nonroot; TLS roots)"


def test_zoneinfo_from_the_environment_and_from_dir(tmp_path, prog, zones):
    ok(run_cli("build", "--tzdata", "-o", tmp_path / "env.tar", prog, env=dict(EPOCH, ZONEINFO=str(zones))))
    _, found, _ = zone_members(tmp_path / "env.tar")
    assert sorted(found) == ["Etc", "Etc/UTC", "Etc/Zulu", "Europe", "Europe/Paris", "UTC", "localtime", "zone.tab"]
    assert found["Etc/UTC"].linkname == "../UTC" and found["localtime"].linkname == "/etc/localtime"
    assert found["Etc/Zulu"].isfile() and found["UTC"].islnk(), "linked files stored once, the first in order"
    assert found["UTC"].linkname == "usr/share/zoneinfo/Etc/Zulu"
    ok(run_cli("build", "--tzdata=%s" % zones, "-o", tmp_path / "dir.tar", prog,
               env=dict(EPOCH, ZONEINFO=str(tmp_path / "nowhere"))))      # DIR wins over ZONEINFO
    assert read_file(str(tmp_path / "dir.tar")) == read_file(str(tmp_path / "env.tar"))
    result = zeroimage.build(zeroimage.BuildOptions(str(prog), str(tmp_path / "lib.tar"),
                                                    tzdata=True), environ=dict(os.environ, ZONEINFO=str(zones),
                                                    **{"SOURCE_DATE_EPOCH": "1700000000"}))
    assert result.digest == image_of(str(tmp_path / "env.tar"))[0]["manifests"][0]["digest"]


@pytest.mark.parametrize("case", ["missing", "file", "empty", "no-tzif"])
def test_a_missing_database_is_one_line_and_writes_nothing(tmp_path, prog, case):
    where = tmp_path / "zones"
    if case == "file":
        where.write_bytes(b"PK\3\4 not a directory")
    elif case != "missing":
        where.mkdir()
        if case == "no-tzif":
            (where / "zone.tab").write_text("FR\t+4852+00220\tEurope/Paris\n")
            (where / "right").mkdir()
            shutil.copyfile(host_zone("UTC"), str(where / "right" / "UTC"))     # left out: no zone remains
    words = {"missing": "No such file", "file": "is a regular file, not a directory", "empty": "no time zone file",
             "no-tzif": "no time zone file"}[case]
    out = tmp_path / "out.tar"
    fails(run_cli("build", "--tzdata", "-o", out, prog, env=dict(EPOCH, ZONEINFO=str(where))), 1,
          "ZONEINFO=%s" % where, words, "unset ZONEINFO")
    if case != "file":      # a file given as DIR is a usage error: it may be the program (below)
        fails(run_cli("build", "--tzdata=%s" % where, "-o", out, prog, env=EPOCH), 1, str(where), words)
    assert set(os.listdir(str(tmp_path))) <= {"prog", "zones"}, "nothing written, not even a temporary file"


def test_the_default_database_missing_says_install_tzdata(tmp_path, prog, monkeypatch, capsys):
    monkeypatch.setattr(zeroimage, "ZONEINFO_DIR", str(tmp_path / "no-zoneinfo"))
    monkeypatch.delenv("ZONEINFO", raising=False)
    assert zeroimage.main(["build", "--tzdata", "-o", str(tmp_path / "out.tar"), str(prog)]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no-zoneinfo" in last and "install the host's tzdata package" in last
    assert not (tmp_path / "out.tar").exists()


@pytest.mark.parametrize("base", [["--from", "scratch"], ["--from", "registry.example.com/base:1"],
                                  ["--from-archive", "base.tar"]])
def test_other_bases_are_a_usage_error(tmp_path, prog, base):
    fails(run_cli("build", *base, "--tzdata", "-o", tmp_path / "x.tar", prog, env=EPOCH), 2,
          "built-in minimal base", base[0], "--add /usr/share/zoneinfo:/usr/share/zoneinfo")
    with pytest.raises(zeroimage.UsageError):
        zeroimage.build(zeroimage.BuildOptions(str(prog), str(tmp_path / "y.tar"), base="scratch", tzdata=True))
    assert not (tmp_path / "x.tar").exists() and not (tmp_path / "y.tar").exists()


def test_tzdata_right_before_the_program(tmp_path, prog, zones):
    """--tzdata takes an optional DIR, so `--tzdata prog` reads prog as DIR: said, with the way out."""
    fails(run_cli("build", "-o", tmp_path / "x.tar", "--tzdata", prog, env=EPOCH), 2,
          "%s is not a directory" % prog, "--tzdata -- %s" % prog)
    ok(run_cli("build", "-o", tmp_path / "x.tar", "--tzdata", "--", prog, env=dict(EPOCH, ZONEINFO=str(zones))))
    fails(run_cli("build", "--tzdata=", "-o", tmp_path / "y.tar", prog, env=EPOCH), 2, "empty")


def test_add_cannot_replace_the_zone_directory(tmp_path, prog, zones):
    ok(run_cli("build", "--tzdata=%s" % zones, "--add", "%s:/usr/share/zoneinfo/Europe/Paris" % (zones / "UTC"),
               "-o", tmp_path / "ok.tar", prog, env=EPOCH))       # a file over a file: the upper layer's wins
    _, _, _, layers = image_of(str(tmp_path / "ok.tar"))
    paris = "usr/share/zoneinfo/Europe/Paris"
    assert layer_members(layers[0])[paris].size == (zones / "Europe" / "Paris").stat().st_size, "the zone database's"
    assert layer_members(layers[-1])[paris].size == (zones / "UTC").stat().st_size, "above it: the added file"
    fails(run_cli("build", "--tzdata=%s" % zones, "--add", "%s:/usr/share/zoneinfo" % (zones / "UTC"),
                  "-o", tmp_path / "x.tar", prog, env=EPOCH), 2, "/usr/share/zoneinfo")


@pytest.mark.interop
def test_a_real_program_reads_the_zones(tmp_path, busybox_program):
    paris = host_zone("Europe/Paris")
    ok(run_cli("build", "--tzdata", "-o", tmp_path / "app.tar", busybox_program, env=EPOCH))
    _, out = run_image(tmp_path, "oci-archive:%s" % (tmp_path / "app.tar"), [
        "/busybox", "sh", "-c", "TZ=Europe/Paris /busybox date -d @1700000000 '+%H:%M %Z'; "
        "TZ=Nowhere/Zone /busybox date -d @1700000000 '+%H:%M'; /busybox md5sum /usr/share/zoneinfo/Europe/Paris"])
    lines = out.splitlines()
    assert lines[:2] == ["23:13 CET", "22:13"], out        # the zone read; an unknown one falls back to UTC
    assert lines[2].split()[0] == hashlib.md5(read_file(paris)).hexdigest()
