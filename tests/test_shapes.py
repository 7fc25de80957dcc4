"""Types checked where values enter, and valid or refused on every path that writes (issue 21,
rules 3 and 4), as tables: for each boundary where a decoded value enters (an index.json entry, a
manifest, a config, a docker save manifest.json entry, build info), each field given values of the
wrong type (a list, an object, a number, true, a huge number, null, a string with a lone surrogate),
and every verb that reads that boundary: a one-line error and exit 1, or, where the value is one a
reader may take (null as absent, text made valid Unicode), exit 0 and a valid image. Then the
writing verbs (copy, pull, push) given images that read well but are not valid: refused, nothing
written. The verbs run in this process (``main``), so the tables stay fast; every archive written
is judged by speccheck (conftest), as with ``run_cli``.
"""

import contextlib
import io
import json
import os
import tarfile
import traceback
import types
import zlib

import pytest

import zeroimage
from binaries import craft_elf, make_elf
from helpers import fails, ok
from imagetools import DOCKER, OCI, SMALL_CONFIG, SMALL_IMAGE, SMALL_LAYER, DockerSaveBuilder, LayoutBuilder, \
    make_layer, read_file, ref, run_cli, sha256
from registries import jdump, manifest_route, open_v2

SURROGATE = "x\udcff"       # json.dumps writes the escape "x\\udcff": what a file or a server can send
WRONG = [("a list", [1, "x"]), ("an object", {"x": 1}), ("a number", 5), ("true", True), ("huge", 10 ** 30),
         ("null", None), ("a surrogate", SURROGATE)]
MEMBERS = [("etc", "dir", None, 0o755), ("etc/x", "file", b"x", 0o644)]      # a layer's
NO_NETWORK = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "",
              "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9", "no_proxy": ""}


def cli(*args):
    """``zeroimage ARGS`` run by ``main`` in this process, as ``run_cli`` runs it in another (the same
    result fields, for ``ok`` and ``fails``); an exception that escapes is a traceback in stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = zeroimage.main([str(a) for a in args])
        except BaseException:       # noqa: B902 -- shown as the program would show it
            traceback.print_exc()
            code = 1
    return types.SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


@pytest.fixture(autouse=True)
def no_network(request, monkeypatch):
    """Archives only: a verb that asked a registry would meet a refusing proxy."""
    if "registry_servers" not in request.fixturenames and "servers" not in request.fixturenames:
        for key, value in NO_NETWORK.items():
            monkeypatch.setenv(key, value)


@pytest.fixture
def prog(tmp_path):
    path = tmp_path / "prog"
    path.write_bytes(make_elf(62) + b"\0" * 64)
    return path


def _put(value, path, item):
    """Set ``path`` (dotted; numbers index lists) in ``value`` to ``item``."""
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for key in keys[:-1]:
        value = value[key]
    value[keys[-1]] = item


def oci_archive(path, index=None, manifest=None, config=None, family=OCI):
    """A one-image OCI layout tar; ``index``, ``manifest``, ``config``: {dotted field: value} put into
    index.json's entry, the manifest, the config before they are written."""
    b = LayoutBuilder()
    blob, diff_id = make_layer(MEMBERS)
    value = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
             "config": {"Env": ["PATH=/bin"], "Labels": {"a": "b"}, "Entrypoint": ["/x"]},
             "rootfs": {"type": "layers", "diff_ids": [diff_id]}, "history": [{"created_by": "x"}]}
    for field, item in (config or {}).items():
        _put(value, field, item)
    config_bytes = json.dumps(value).encode()
    value = {"schemaVersion": 2, "mediaType": family["manifest"],
             "config": {"mediaType": family["config"], "digest": b.add(config_bytes), "size": len(config_bytes)},
             "layers": [{"mediaType": family["layer"], "digest": b.add(blob), "size": len(blob)}]}
    for field, item in (manifest or {}).items():
        _put(value, field, item)
    data = json.dumps(value).encode()
    entry = ref({"mediaType": family["manifest"], "digest": b.add(data), "size": len(data),
                 "platform": {"os": "linux", "architecture": "amd64"}}, "1")
    for field, item in (index or {}).items():
        _put(entry, field, item)
    return b.write_tar(path, [entry])


def docker_archive(path, entry=None):
    """A ``docker save`` archive of one image; ``entry``: {field: value} put into its manifest.json entry."""
    b = DockerSaveBuilder()
    b.image([MEMBERS], {"config": {"Entrypoint": ["/x"]}}, tags=["app:1"])
    for field, item in (entry or {}).items():
        b.manifest[0][field] = item
    return b.write(path)


# ---- rule 3: the table ----

# (boundary, field, {value name: the verbs that take it}); every other value is refused by every verb
# that reads the boundary. "all": exit 0 and a valid image; "read": shown (inspect, digest), but no
# image is made of it (copy and build refuse); "not copied": all but copy, which would write it as it is.
ALL, READ, NOT_COPIED = {"inspect", "digest", "copy", "build"}, {"inspect", "digest"}, {"inspect", "digest", "build"}
FIELDS = [
    ("index", "digest", {}),
    ("index", "size", {}),
    ("index", "mediaType", {"null": ALL}),
    ("index", "annotations", {"null": ALL}),
    ("index", "platform", {"null": ALL, "an object": ALL}),     # an object naming no platform: the config's counts
    ("manifest", "config", {}),
    ("manifest", "layers", {}),
    ("manifest", "mediaType", {"null": NOT_COPIED}),
    ("manifest", "annotations", {"null": NOT_COPIED}),
    ("manifest", "layers.0.digest", {}),
    ("manifest", "layers.0.size", {"a number": READ}),         # 5: a wrong size, of a layer inspect does not read
    ("manifest", "config.digest", {}),
    ("config", "rootfs", {"an object": READ}),                  # an object without diff_ids: no layers
    ("config", "rootfs.diff_ids", {}),
    ("config", "history", {}),
    ("config", "history.0", {"an object": ALL}),               # unknown fields are kept
    ("config", "config", {"an object": ALL}),
    ("config", "config.Env", {}),
    ("config", "config.Entrypoint", {}),
    ("config", "config.Labels", {}),
    ("config", "config.ExposedPorts", {}),
    ("config", "architecture", {"a surrogate": NOT_COPIED}),   # "x\\ufffd": not what index.json lists (build: its own)
    ("config", "created", {"a surrogate": NOT_COPIED}),        # not an RFC 3339 time: build replaces it
    ("docker", "Config", {}),
    ("docker", "Layers", {}),
    ("docker", "RepoTags", {"null": ALL}),
]
CASES = [(boundary, field, name, value, taken.get(name, set())) for boundary, field, taken in FIELDS
         for name, value in WRONG if not (boundary == "config" and name == "null")]
# (null in a config is absent, as Go reads it: test_names' ODD_CONFIGS)


def _archive_for(tmp_path, boundary, field, value):
    path = tmp_path / "in.tar"
    if boundary == "docker":
        return docker_archive(path, {field: value})
    return oci_archive(path, **{boundary: {field: value}})


def _verbs(boundary, tmp_path, path, prog):
    """Every verb that reads ``boundary`` (``digest`` reads an archive's index.json, not what it names)."""
    verbs = [["inspect", path], ["inspect", "--json", path], ["copy", path, tmp_path / "out.tar"],
             ["build", "--from-archive", path, "-o", tmp_path / "built.tar", prog]]
    return verbs + ([["digest", path]] if boundary in ("index", "docker") else [])


@pytest.mark.parametrize("boundary, field, name, value, taken", CASES,
                         ids=["%s-%s-%s" % (c[0], c[1], c[2].replace(" ", "-")) for c in CASES])
def test_wrong_types_at_every_boundary_are_one_line_for_every_verb(tmp_path, prog, boundary, field, name, value,
                                                                    taken):
    path = _archive_for(tmp_path, boundary, field, value)
    for args in _verbs(boundary, tmp_path, path, prog):
        r = cli(*args)
        if args[0] in taken:
            ok(r)
            if args[0] == "inspect" and "--json" in args:
                json.loads(r.stdout)
        else:
            fails(r, 1)
            assert not (tmp_path / "out.tar").exists() and not (tmp_path / "built.tar").exists(), args
        assert [p for p in os.listdir(str(tmp_path)) if p.endswith(".tmp")] == []
        for out in ("out.tar", "built.tar"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(str(tmp_path / out))


@pytest.mark.parametrize("where", ["label", "annotation", "entry name", "history"])
def test_text_with_a_lone_surrogate_is_read_as_valid_unicode(tmp_path, prog, where):
    """A lone surrogate in a string (``"\\udcff"``: JSON can write it, no UTF-8 text can hold it) is
    read as Go's encoding/json reads it, U+FFFD: shown, copied and built on, never a traceback."""
    fields = {"label": {"config": {"config.Labels": {"a": SURROGATE}}},
              "annotation": {"manifest": {"annotations": {"org.example.a": SURROGATE}}},
              "entry name": {"index": {"annotations": {"org.opencontainers.image.ref.name": SURROGATE}}},
              "history": {"config": {"history.0.created_by": SURROGATE}}}[where]
    path = oci_archive(tmp_path / "in.tar", **fields)
    info = json.loads(ok(cli("inspect", "--json", path)).stdout)
    if where == "label":
        assert info["labels"]["a"] == "x\ufffd"
    if where == "annotation":
        assert info["annotations"]["org.example.a"] == "x\ufffd"
    ok(cli("inspect", path))
    ok(cli("copy", path, tmp_path / "out.tar"))
    ok(cli("build", "--from-archive", path, "-o", tmp_path / "built.tar", prog))
    ok(cli("inspect", "--json", tmp_path / "built.tar"))


def _damaged_tar(tmp_path, offset, field):
    """A valid archive with one header field of its first member overwritten (checksum made right again)."""
    data = bytearray(read_file(oci_archive(tmp_path / "good.tar")))
    data[offset:offset + len(field)] = field
    data[148:156] = b" " * 8
    data[148:156] = b"%06o\0 " % sum(data[:512])
    path = tmp_path / "damaged.tar"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("offset, field", [
    (124, b"\x80" + b"\xff" * 11),          # size: base-256, huge (tarfile: ValueError, offset-sized integer)
    (124, b"\xff" * 12),                    # size: base-256, negative
    (124, b"77777777777\0"),                # size: past the end of the archive
    (136, b"\x80" + b"\xff" * 11),          # mtime: base-256, huge
    (345, b"\xff" * 155),                   # prefix: bytes that are not UTF-8
    (156, b"L"),                            # a GNU long name whose data is the next header
    (156, b"x"),                            # a pax header made of the first member's bytes
    (124, b"%011o\0" % (1 << 30) + b"\0" * 20 + b"L"),   # a GNU long name of 1 GiB, which tarfile reads whole
])
def test_a_damaged_tar_header_is_one_line_for_every_verb(tmp_path, prog, offset, field):
    path = _damaged_tar(tmp_path, offset, field)
    for args in _verbs("index", tmp_path, path, prog):
        r = cli(*args)
        assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr
        if r.returncode:
            fails(r, 1)


@pytest.mark.parametrize("damage", ["huge size", "cut short", "not gzip", "garbage tar", "pax bomb", "long name bomb"])
def test_a_damaged_layer_is_one_line(tmp_path, damage):
    """A layer read through (build, to see what the base holds where the program goes; inspect, to
    find the program's build info) that is damaged: one line naming the layer, whatever the parser raised."""
    raw = io.BytesIO()
    import tarfile
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("usr/local/bin/x")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"prog"))
    plain = bytearray(raw.getvalue())
    if damage == "huge size":
        plain[124:136] = b"\x80" + b"\xff" * 11
        plain[148:156] = b" " * 8
        plain[148:156] = b"%06o\0 " % sum(plain[:512])
    elif damage == "garbage tar":
        plain[0:512] = b"\xff" * 512
    elif damage.endswith("bomb"):      # a record tarfile reads whole, claiming 1 GiB (a 1.5 MB gzip can)
        plain[124:136] = b"%011o\0" % (1 << 30)
        plain[156:157] = b"x" if damage == "pax bomb" else b"L"
        plain[148:156] = b" " * 8
        plain[148:156] = b"%06o\0 " % sum(plain[:512])
    import gzip
    blob = gzip.compress(bytes(plain), mtime=0)
    blob = blob[:len(blob) // 2] if damage == "cut short" else b"\0" * 64 if damage == "not gzip" else blob
    b = LayoutBuilder()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/usr/local/bin/x"]},
                         "rootfs": {"type": "layers", "diff_ids": [sha256(bytes(plain))]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI["manifest"],
                           "config": {"mediaType": OCI["config"], "digest": b.add(config), "size": len(config)},
                           "layers": [{"mediaType": OCI["layer"], "digest": b.add(blob), "size": len(blob)}]}).encode()
    path = b.write_tar(tmp_path / "in.tar", [{"mediaType": OCI["manifest"], "digest": b.add(manifest),
                                               "size": len(manifest)}])
    prog = tmp_path / "x"
    prog.write_bytes(make_elf(62))
    last = fails(cli("build", "--from-archive", path, "--target", "/usr/local/bin/x", "-o", tmp_path / "o.tar", prog),
                 1, "layer")
    assert "a tar header record of 1073741824 bytes" in last or not damage.endswith("bomb"), last
    assert not (tmp_path / "o.tar").exists()
    r = ok(cli("inspect", "-v", "--build-info", path))      # the image is shown; its program's build info is not
    assert "no build info shown" in r.stderr
    assert "no build info shown" not in ok(cli("inspect", "-v", path)).stderr      # not asked: no layer read


def _rust_program(tmp_path, name, version):
    packages = [{"name": name, "version": version, "source": "local", "root": True},
                {"name": "serde" + name[-1:], "version": version, "source": "crates.io"}]
    data = craft_elf([(".dep-v0", zlib.compress(json.dumps({"packages": packages}).encode()))])
    path = tmp_path / "app"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name, version", [("serde\udcff", "1.0.0"), ("app", "1.0.0\udcff"), ("app\x1b[2J", "1.0"),
                                           ("app\u202e", "1.0\n2")])
def test_build_info_text_is_made_printable(tmp_path, name, version):
    """A crate name or version with a lone surrogate or a control character (``cargo auditable``'s JSON
    can say so): build, build --sbom and inspect of the image all work; the text comes out escaped,
    and a label is never made of it."""
    program = _rust_program(tmp_path, name, version)
    ok(cli("build", "-o", tmp_path / "a.tar", program))
    ok(cli("build", "--sbom", "-o", tmp_path / "s.tar", program))
    info = json.loads(ok(cli("inspect", "--json", "--build-info", tmp_path / "a.tar")).stdout)
    text = json.dumps(info["buildInfo"], ensure_ascii=False)
    assert all(c.isprintable() for c in text), text
    assert "org.opencontainers.image.version" not in info["labels"] or \
        info["labels"]["org.opencontainers.image.version"] == version
    document = json.loads(ok(cli("inspect", "--sbom", tmp_path / "s.tar")).stdout)
    assert all(c.isprintable() for p in document["packages"] for c in p["name"] + p.get("versionInfo", ""))
    summary = ok(cli("inspect", "--build-info", tmp_path / "a.tar")).stdout
    assert "\x1b" not in summary and "\u202e" not in summary


def test_the_shape_helpers_name_the_field():
    """_expect and the shape checks say which field is wrong, as one line, and pass what is right."""
    assert zeroimage._expect([], "?strings", "x") == []
    assert zeroimage._expect(None, "?object", "x") is None
    for value, kind in [(True, "int"), (-1, "size"), (2 ** 63, "size"), ("a b", "media type"), ({"a": 1}, "string map"),
                        (["sha256:x"], "digests"), ("", "digest string")]:
        with pytest.raises(zeroimage.ArchiveError, match="^where is not "):
            zeroimage._expect(value, kind, "where")
    with pytest.raises(zeroimage.ArchiveError, match=r"descriptor's size is not a size"):
        zeroimage.descriptor_shape({"digest": "sha256:" + "0" * 64, "size": "3"}, "here")
    with pytest.raises(zeroimage.ArchiveError, match=r"its layers: a descriptor's digest"):
        zeroimage.manifest_shape({"layers": [{"digest": ["x"], "size": 1}]}, "here")
    with pytest.raises(zeroimage.ArchiveError, match=r"config's history\[1\].empty_layer is not true or false"):
        zeroimage.config_shape({"history": [{}, {"empty_layer": "no"}]}, "here")
    assert zeroimage.parse_json(b'{"a\\udcff": ["\\ud83d\\ude00", "\\ud800"]}', "x") == {"a\ufffd": ["\U0001F600",
                                                                                                 "\ufffd"]}


def test_parser_errors_become_one_line():
    """The one guard: what tarfile, gzip, zlib, lzma, struct raise on damaged input is an ArchiveError;
    zeroimage's own errors and programming errors pass as they are."""
    import lzma
    import struct
    for error in (ValueError("v"), OverflowError("o"), EOFError(), struct.error("s"), zlib.error("z"),
                  lzma.LZMAError("l"), OSError("bad gzip")):
        with pytest.raises(zeroimage.ArchiveError, match="^in.tar is a damaged tar archive"):
            with zeroimage._damaged_input("in.tar", "tar archive"):
                raise error
    for error in (zeroimage.DigestMismatchError("x", "a", "b"), zeroimage.CancelledError(), TypeError("bug")):
        with pytest.raises(type(error)):
            with zeroimage._damaged_input("in.tar", "tar archive"):
                raise error


REFERRER_FIELDS = [("digest", {}), ("size", {"a number"}),        # (5: a size, a wrong one)
                   ("mediaType", {"null"}), ("artifactType", {"null"}),
                   ("annotations", {"null"})]
REFERRER_CASES = [(field, name, value, name in taken) for field, taken in REFERRER_FIELDS for name, value in WRONG]


@pytest.mark.parametrize("field, name, value, taken", REFERRER_CASES,
                         ids=["%s-%s" % (c[0], c[1].replace(" ", "-")) for c in REFERRER_CASES])
def test_a_referrers_list_of_wrong_types(servers, tmp_path, monkeypatch, field, name, value, taken):
    """A registry's referrers list whose descriptor has a field of the wrong type: inspect shows the
    image with its referrers unknown (saying why); copy --referrers fails in one line, writing nothing."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    artifact = {"mediaType": OCI["manifest"], "digest": sha256(b"{}"), "size": 2,
                "artifactType": "application/spdx+json", "annotations": {"a": "b"}}
    artifact[field] = value
    listed = jdump({"schemaVersion": 2, "mediaType": OCI["index"], "manifests": [artifact]})
    server = servers({"/v2/": open_v2, "/v2/a/manifests/1": manifest_route(SMALL_IMAGE),
                      "/v2/a/manifests/" + sha256(SMALL_IMAGE): manifest_route(SMALL_IMAGE),
                      "/v2/a/blobs/" + sha256(SMALL_CONFIG): lambda h: h.reply(200, SMALL_CONFIG),
                      "/v2/a/blobs/" + sha256(SMALL_LAYER): lambda h: h.reply(200, SMALL_LAYER),
                      "/v2/a/referrers/" + sha256(SMALL_IMAGE): manifest_route(listed, OCI["index"])})
    info = json.loads(ok(cli("inspect", "--json", server.netloc + "/a:1")).stdout)
    if not taken:
        assert info["referrers"] is None and "referrers list" in info["referrersUnknown"], info
        fails(cli("copy", "--referrers", server.netloc + "/a:1", tmp_path / "out.tar"), 1, "referrers list")
        assert not (tmp_path / "out.tar").exists()


# ---- rule 4: valid or refused, on every path that writes ----

# (name, what makes the image invalid, whether build --from-archive refuses it too: build converts media types)
INVALID = [
    ("diff_ids one too many", {"config": {"rootfs.diff_ids": [sha256(b"a"), sha256(b"b")]}}, True),
    ("diff_ids none", {"config": {"rootfs.diff_ids": []}}, True),
    ("history of more layers", {"config": {"history": [{"created_by": "a"}, {"created_by": "b"}]}}, True),
    ("history time not RFC 3339", {"config": {"history.0.created": "yesterday"}}, True),
    ("Env without =", {"config": {"config.Env": ["PATH"]}}, True),
    ("OCI manifest, Docker layer", {"manifest": {"layers.0.mediaType": DOCKER["layer"]}}, False),
    ("OCI manifest, Docker config", {"manifest": {"config.mediaType": DOCKER["config"]}}, False),
    ("Docker manifest, OCI layer", {"family": DOCKER, "manifest": {"layers.0.mediaType": OCI["layer"]}}, False),
    ("Docker manifest, OCI config", {"family": DOCKER, "manifest": {"config.mediaType": OCI["config"]}}, False),
    ("schemaVersion 3", {"manifest": {"schemaVersion": 3}}, False),
    ("layer type not a media type", {"manifest": {"layers.0.mediaType": "gzip"}}, True),
    ("layer type missing", {"manifest": {"layers.0.mediaType": ""}}, True),
    ("annotations null", {"manifest": {"annotations": None}}, False),
    ("layer urls null", {"manifest": {"layers.0.urls": None}}, False),
    # the rules of descriptors' and annotations' fields (the second hunt)
    ("layer data not its blob", {"manifest": {"layers.0.data": "eA=="}}, True),
    ("config data not base64", {"manifest": {"config.data": "!!"}}, False),
    ("layer artifactType no media type", {"manifest": {"layers.0.artifactType": "bad"}}, True),
    ("annotation key reserved", {"manifest": {"annotations": {"org.opencontainers.foo": "x"}}}, False),
    ("annotation created no time", {"manifest": {"annotations": {"org.opencontainers.image.created": "yesterday"}}},
     False),
    ("annotation base.digest no digest", {"manifest": {"annotations": {"org.opencontainers.image.base.digest": "no"}}},
     False),
    ("annotation key empty", {"manifest": {"annotations": {"": "x"}}}, False),
    ("label key empty", {"config": {"config.Labels": {"": "x"}}}, False),
]


@pytest.mark.parametrize("name, fields, build_refuses", INVALID, ids=[c[0] for c in INVALID])
def test_copy_and_push_of_an_invalid_image_are_refused(tmp_path, prog, name, fields, build_refuses):
    """An image that reads well (inspect shows it) but is not valid: copy to an archive and push
    refuse it before anything is written or sent; build --from-archive refuses the same configs."""
    path = oci_archive(tmp_path / "in.tar", **fields)
    ok(cli("inspect", path))
    ok(cli("digest", path))
    fails(cli("copy", path, tmp_path / "out.tar"), 1, "in.tar: image sha256:")
    assert not (tmp_path / "out.tar").exists()
    fails(cli("push", path, "localhost:9/app:1"), 1, "in.tar: image sha256:")      # never reached: refused first
    r = cli("build", "--from-archive", path, "-o", tmp_path / "built.tar", prog)
    if build_refuses:
        fails(r, 1)
    else:
        ok(r)


def test_an_index_of_two_families_is_refused_on_write(tmp_path):
    """An OCI index that lists a Docker manifest (or a Docker list an OCI one): copy refuses it."""
    for outer, inner in ((OCI, DOCKER), (DOCKER, OCI)):
        b = LayoutBuilder()
        child = b.image([MEMBERS], {"config": {}}, family=inner)
        top = b.index([child], family=outer)
        path = b.write_tar(tmp_path / "in.tar", [ref(top, "1")])
        ok(cli("inspect", path))
        fails(cli("copy", path, tmp_path / "out.tar"), 1, "one index is of one family")
        assert not (tmp_path / "out.tar").exists()


@pytest.mark.parametrize("media_type", ["application/vnd.example.thing+json", "../../etc/passwd",
                                        "application/vnd.#oci.image.manifest.v1+json"])
def test_a_manifest_that_calls_itself_no_manifest_is_refused_on_write(tmp_path, media_type):
    """index.json lists an OCI manifest; the manifest's own mediaType says something else: what the
    copy would list it as is no image's, so it is refused, not written under that name."""
    path = oci_archive(tmp_path / "in.tar", manifest={"mediaType": media_type})
    for out in (tmp_path / "out.tar", tmp_path / "out-layout"):
        fails(cli("copy", path, out), 1, "in.tar: image sha256:", "mediaType")
        assert not out.exists()


def test_an_artifact_copied_to_an_archive_gets_no_manifest_json(tmp_path):
    """An artifact (its config of another type) is copied as it is, but never listed for docker load."""
    path = oci_archive(tmp_path / "in.tar", manifest={"config.mediaType": "application/vnd.example.config+json"})
    ok(cli("copy", path, tmp_path / "out.tar"))
    with tarfile.open(str(tmp_path / "out.tar")) as tar:
        assert "manifest.json" not in tar.getnames() and "index.json" in tar.getnames()


def test_a_valid_image_is_copied_byte_for_byte(tmp_path):
    """The check refuses; it never changes: a valid image's manifest digest is the same after copy."""
    path = oci_archive(tmp_path / "in.tar", manifest={"annotations": {"org.example.a": "b"}},
                       config={"config.Cmd": ["x"], "config.Volumes": {"/v": {}}})
    digest = ok(cli("digest", path)).stdout.strip()
    ok(cli("copy", path, tmp_path / "out.tar"))
    assert ok(cli("digest", tmp_path / "out.tar")).stdout.strip() == digest


# ---- from the real registry: pull -o and copy of what it serves ----


def _upload(session, host, repository, tag, config, family=OCI):
    """An image put straight into the registry, bytes as given (the registry checks no config)."""
    registry = session.registry(host)
    blob, _ = make_layer(MEMBERS)
    config_blob = zeroimage.bytes_blob(json.dumps(config).encode())
    layer_blob = zeroimage.bytes_blob(blob)
    scopes = ["repository:%s:push,pull" % repository]
    zeroimage.push_blobs(session, registry, repository, [config_blob, layer_blob], scopes)
    manifest = {"schemaVersion": 2, "mediaType": family["manifest"],
                "config": {"mediaType": family["config"], "digest": config_blob.digest, "size": config_blob.size},
                "layers": [{"mediaType": family["layer"], "digest": layer_blob.digest, "size": layer_blob.size}]}
    registry.put_manifest(repository, tag, json.dumps(manifest).encode(), family["manifest"], scopes)


REGISTRY_CONFIGS = [
    ("diff_ids a string", {"rootfs": {"type": "layers", "diff_ids": sha256(b"x")}}),
    ("diff_ids a list of numbers", {"rootfs": {"type": "layers", "diff_ids": [5]}}),
    ("diff_ids one too many", {"rootfs": {"type": "layers", "diff_ids": [sha256(b"a"), sha256(b"b")]}}),
    ("Labels a list", {"config": {"Labels": ["a=b"]}, "rootfs": {"type": "layers", "diff_ids": [sha256(b"a")]}}),
    ("history a map", {"history": {"0": {}}, "rootfs": {"type": "layers", "diff_ids": [sha256(b"a")]}}),
]


def test_pull_and_copy_from_a_registry_refuse_an_invalid_config(tmp_path, registry_servers):
    server = registry_servers("open")
    env = {"DOCKER_CONFIG": str(tmp_path / "docker-config")}
    with zeroimage.Session(dict(os.environ, **env)) as session:
        for n, (_, config) in enumerate(REGISTRY_CONFIGS):
            _upload(session, server.host, "shapes/bad", str(n), dict(config, os="linux", architecture="amd64"))
    for n, (name, _) in enumerate(REGISTRY_CONFIGS):
        where = "%s/shapes/bad:%d" % (server.host, n)
        for args in (["pull", "-o", tmp_path / "out.tar", where], ["copy", where, tmp_path / "out.tar"],
                     ["copy", where, "%s/shapes/copied:%d" % (server.host, n)]):
            fails(run_cli(*args, env=env), 1, "shapes/bad")
            assert not (tmp_path / "out.tar").exists(), name
        r = run_cli("inspect", "--raw", "%s/shapes/copied:%d" % (server.host, n), env=env)
        assert r.returncode == 1 and "not found" in r.stderr, (name, r.stderr)      # nothing was pushed
