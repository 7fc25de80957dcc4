"""The zipapp: reproducible, and it runs."""

import os
import subprocess
import sys

from imagetools import ROOT


def build(path):
    subprocess.run([sys.executable, os.path.join(ROOT, "build_zipapp.py"), "-o", str(path)], check=True,
                   stdout=subprocess.PIPE)
    return path.read_bytes()


def test_pyz_is_byte_identical_across_builds(tmp_path):
    first = build(tmp_path / "a.pyz")
    os.utime(os.path.join(ROOT, "zeroimage.py"))      # a fresh mtime must not matter
    assert build(tmp_path / "b.pyz") == first
    assert first.startswith(b"#!/usr/bin/env python3\n")
    assert os.stat(str(tmp_path / "a.pyz")).st_mode & 0o111


def test_pyz_holds_bytecode_and_source(tmp_path):
    import zipfile
    build(tmp_path / "z.pyz")
    with zipfile.ZipFile(str(tmp_path / "z.pyz")) as archive:
        assert archive.namelist() == ["__main__.py", "zeroimage.py", "zeroimage.pyc"]


def test_pyz_runs(tmp_path):
    build(tmp_path / "z.pyz")
    out = subprocess.run([sys.executable, str(tmp_path / "z.pyz"), "--version"],
                         stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    assert out.startswith("zeroimage ")
    bad = subprocess.run([sys.executable, str(tmp_path / "z.pyz"), "build", str(tmp_path / "missing")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert bad.returncode == 1 and bad.stderr.startswith("zeroimage: error:")
