"""Reading archives and layouts, and inspecting them: what a target names (a path or a registry
reference), compressed archives, layouts read for what was asked, inspect of indexes.

No network (the registry comparison lives in test_registry.py) and no external tools.
"""

import bz2
import gzip
import json
import lzma
import os

import pytest

import zeroimage
from imagetools import LayoutBuilder, run_cli
from test_cli import fails


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
