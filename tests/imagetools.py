"""Test helpers: make base images from real files, written by hand (not by zeroimage),
and run zeroimage as a user would; the bases and small images several test files build on."""

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULE = os.path.join(ROOT, "zeroimage.py")

OCI = {
    "manifest": "application/vnd.oci.image.manifest.v1+json",
    "index": "application/vnd.oci.image.index.v1+json",
    "config": "application/vnd.oci.image.config.v1+json",
    "layer": "application/vnd.oci.image.layer.v1.tar+gzip",
}
# What `docker save` 25+ (classic store) writes: OCI media types, layers not compressed.
DOCKER_SAVE = dict(OCI, layer="application/vnd.oci.image.layer.v1.tar")
DOCKER = {
    "manifest": "application/vnd.docker.distribution.manifest.v2+json",
    "index": "application/vnd.docker.distribution.manifest.list.v2+json",
    "config": "application/vnd.docker.container.image.v1+json",
    "layer": "application/vnd.docker.image.rootfs.diff.tar.gzip",
}


def compiled_module():
    """Write zeroimage.py's bytecode for this interpreter beside it (as an import would, even where
    PYTHONDONTWRITEBYTECODE forbids imports to write it), so every program the tests start reads it
    instead of compiling 11,000 lines again: a tenth of a second a run, thousands of runs a suite."""
    import importlib.util
    import py_compile
    py_compile.compile(MODULE, cfile=importlib.util.cache_from_source(MODULE), doraise=True)


def cli_argv(python=None):
    """The argv that runs zeroimage as a program: ``python -m zeroimage`` from the checkout, which is
    zeroimage.py run as ``__main__`` (as ``python3 zeroimage.py`` runs it) from its cached bytecode.
    (The tests of the file itself as a script and of the zipapp run those.)"""
    return [python or sys.executable, "-m", "zeroimage"]


def run_env(env=None):
    """The environment run_cli gives zeroimage: this one, without ZEROIMAGE_DEBUG, with ``env`` on it
    and the checkout first on the module path (for ``-m zeroimage`` from any directory)."""
    full_env = dict(os.environ)
    full_env.pop("ZEROIMAGE_DEBUG", None)
    full_env.update(env or {})
    full_env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [full_env.get("PYTHONPATH")] if p])
    return full_env


def run_cli(*args, cwd=None, env=None, python=None):
    """Run zeroimage with ARGS in a subprocess, as a user would (``cli_argv``); an image it wrote with
    ``build``/``pull -o PATH`` must satisfy the image spec (``speccheck``)."""
    full_env = run_env(env)
    result = subprocess.run(cli_argv(python) + [str(a) for a in args],
                            cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, timeout=300)
    if result.returncode == 0:
        check_output_of([str(a) for a in args], cwd)
    return result


def output_of(args, cwd=None):
    """The image a successful ``zeroimage build/pull ... -o PATH`` or ``copy SRC ARCHIVE[:NAME]`` wrote
    (None for stdout or none named)."""
    command = next((a for a in args if not a.startswith("-")), None)
    if command == "copy":
        return _copy_output(args[args.index(command) + 1:], cwd)
    if command not in ("build", "pull") or "--" in args[:args.index(command)]:
        return None
    path = None
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg in ("-o", "--output") and i + 1 < len(args):
            path = args[i + 1]
        elif arg.startswith("--output="):
            path = arg[len("--output="):]
        elif arg.startswith("-o") and not arg.startswith("--"):
            path = arg[2:]
    if not path or path == "-":
        return None
    return os.path.join(str(cwd), path) if cwd is not None else path


def _copy_output(args, cwd):
    """``copy``'s DST when it is an archive (ARCHIVE[:NAME]: the path)."""
    import zeroimage
    positional, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--platform":
            skip = True
        elif not arg.startswith("-"):
            positional.append(arg)
    if len(positional) != 2 or not zeroimage.looks_like_path(positional[1]):
        return None
    path = zeroimage.copy_destination(positional[1])[0]
    return os.path.join(str(cwd), path) if cwd is not None else path


def check_output_of(args, cwd=None):
    """After an exit 0: the archive or layout directory ``args`` named satisfies the image spec."""
    import speccheck
    path = output_of(args, cwd)
    if path is not None and (os.path.isfile(path) or os.path.isfile(os.path.join(path, "oci-layout"))):
        speccheck.assert_valid(path)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


ZSTD_BLOCK = 128 * 1024     # the largest block of a zstd frame (its window here)


def zstd_frame(data=b"", rle=None):
    """A zstd frame written by hand, without a zstd library: raw blocks of ``data`` (stored, as zstd
    writes what does not compress), or ``rle`` (byte, count): run-length blocks, count of that byte,
    4 bytes a block (a bomb: 256 MiB in 8 KiB). Any zstd decoder reads it."""
    blocks = []
    if rle is not None:
        byte, count = rle
        while count:
            n = min(count, ZSTD_BLOCK)
            blocks.append((1, n, bytes([byte])))
            count -= n
    else:
        blocks = [(0, len(data[i:i + ZSTD_BLOCK]), data[i:i + ZSTD_BLOCK])
                  for i in range(0, len(data), ZSTD_BLOCK)] or [(0, 0, b"")]
    out = [b"\x28\xb5\x2f\xfd", b"\x00", bytes([7 << 3])]      # no content size, no checksum; a 128 KiB window
    for i, (kind, size, payload) in enumerate(blocks):
        header = (i == len(blocks) - 1) | kind << 1 | size << 3
        out.append(header.to_bytes(3, "little") + payload)
    return b"".join(out)


def zstd_unframe(data, limit=None):
    """What a frame of ``zstd_frame``'s kind (raw and run-length blocks; frames one after another) holds;
    None for anything else (a compressed block, damage) or for more than ``limit`` bytes."""
    out, at, total = [], 0, 0
    while at < len(data):
        if data[at:at + 4] != b"\x28\xb5\x2f\xfd" or len(data) < at + 6 or data[at + 4] != 0:
            return None
        at += 6
        while True:
            if len(data) < at + 3:
                return None
            header = int.from_bytes(data[at:at + 3], "little")
            last, kind, size = header & 1, header >> 1 & 3, header >> 3
            at += 3
            if kind == 0 and len(data) >= at + size:
                out.append(data[at:at + size])
                at += size
            elif kind == 1 and len(data) > at and size <= ZSTD_BLOCK:
                out.append(data[at:at + 1] * size)
                at += 1
            else:
                return None
            total += size
            if limit is not None and total > limit:
                return None
            if last:
                break
    return b"".join(out) if data else None


def compressed(data, compress):
    """``data`` as a layer stores it: ``compress`` True or "gzip", "zstd" (``zstd_frame``), or False."""
    if compress == "zstd":
        return zstd_frame(data)
    return gzip.compress(data, mtime=0) if compress else data


def make_layer(members, compress=True):
    """A tar layer from (path, kind, payload, mode) tuples; payload is bytes, a host path, or a link target.
    ``compress``: True or "gzip", "zstd", or False for a plain tar."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path, kind, payload, mode in members:
            info = tarfile.TarInfo(path)
            info.mode = mode
            info.mtime = 1700000000
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = payload
                tar.addfile(info)
            else:
                data = payload if isinstance(payload, bytes) else read_file(payload)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    uncompressed = raw.getvalue()
    return compressed(uncompressed, compress), sha256(uncompressed)


class LayoutBuilder:
    """Collects blobs and writes an OCI layout as a directory or a tar archive."""

    def __init__(self):
        self.blobs = {}

    def add(self, data):
        digest = sha256(data)
        self.blobs[digest] = data
        return digest

    def image(self, layers, config, family=OCI, platform=("linux", "amd64", "")):
        """Add an image; returns its manifest descriptor (with platform)."""
        os_name, arch, variant = platform
        config = dict(config, os=os_name, architecture=arch)
        if variant:
            config["variant"] = variant
        layer_descs, diff_ids = [], []
        for members in layers:
            blob, diff_id = make_layer(members, compress=family["layer"].endswith("gzip") or
                                       family["layer"].endswith("zstd") and "zstd")
            layer_descs.append({"mediaType": family["layer"], "digest": self.add(blob), "size": len(blob)})
            diff_ids.append(diff_id)
        config["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
        config_bytes = json.dumps(config).encode()
        manifest = {"schemaVersion": 2, "mediaType": family["manifest"],
                    "config": {"mediaType": family["config"], "digest": self.add(config_bytes), "size": len(config_bytes)},
                    "layers": layer_descs}
        manifest_bytes = json.dumps(manifest, indent=2).encode()
        desc = {"mediaType": family["manifest"], "digest": self.add(manifest_bytes), "size": len(manifest_bytes),
                "platform": {"os": os_name, "architecture": arch}}
        if variant:
            desc["platform"]["variant"] = variant
        return desc

    def index(self, descriptors, family=OCI):
        data = json.dumps({"schemaVersion": 2, "mediaType": family["index"], "manifests": descriptors}).encode()
        return {"mediaType": family["index"], "digest": self.add(data), "size": len(data)}

    def files(self, top):
        """(name, bytes) of the layout, top being index.json's manifests."""
        yield "oci-layout", b'{"imageLayoutVersion":"1.0.0"}'
        yield "index.json", json.dumps({"schemaVersion": 2, "manifests": top}).encode()
        for digest, data in sorted(self.blobs.items()):
            yield "blobs/sha256/" + digest.split(":")[1], data

    def write_dir(self, path, top):
        for name, data in self.files(top):
            full = os.path.join(path, name)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(data)
        return str(path)

    def write_tar(self, path, top, extra=()):
        """Write the layout as a tar; ``extra`` TarInfo/bytes pairs are appended as-is."""
        with tarfile.open(path, "w") as tar:
            for name, data in self.files(top):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            for info, data in extra:
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        return str(path)


def ref(desc, name):
    """A descriptor for index.json carrying a ref name, as skopeo and docker write it."""
    return dict(desc, annotations={"org.opencontainers.image.ref.name": name})


def read_archive(path):
    """{member name: bytes} of a small archive written by zeroimage."""
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def image_of(path):
    """(index, manifest, config, layer blobs) of a single-image archive."""
    files = read_archive(path)
    index = json.loads(files["index.json"])
    digest = index["manifests"][0]["digest"]
    manifest = json.loads(files["blobs/sha256/" + digest.split(":")[1]])
    config = json.loads(files["blobs/sha256/" + manifest["config"]["digest"].split(":")[1]])
    layers = [files["blobs/sha256/" + d["digest"].split(":")[1]] for d in manifest["layers"]]
    return index, manifest, config, layers


def layer_members(blob):
    plain = zstd_unframe(blob) if blob[:4] == b"\x28\xb5\x2f\xfd" else gzip.decompress(blob)
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        return {m.name: m for m in tar.getmembers()}


class DockerSaveBuilder:
    """Writes a ``docker save`` archive as Docker wrote it before version 25: manifest.json,
    ``<id>/layer.tar`` (uncompressed), ``<id>/json`` and ``<id>/VERSION``, ``<id>.json`` config,
    ``repositories``; each image's layers from real files (``make_layer`` member tuples)."""

    def __init__(self):
        self.files = {}         # name -> bytes, or ("symlink", target)
        self.manifest = []
        self.repositories = {}

    def image(self, layers, config, tags=(), platform=("linux", "amd64"), compress=False, podman=False,
              diff_ids=None):
        """Add an image; ``podman`` names layers ``<hex>.tar`` as podman's docker-archive does;
        ``compress`` gzips them (as some writers do); ``diff_ids`` replaces the config's list."""
        config = dict(config, os=platform[0], architecture=platform[1])
        names, ids, parent = [], [], ""
        for members in layers:
            blob, diff_id = make_layer(members, compress=compress)
            ids.append(diff_id)
            if podman:
                name = diff_id[7:] + ".tar"
                self.files[name] = blob
            else:
                layer_id = hashlib.sha256((parent + diff_id).encode()).hexdigest()
                name = layer_id + "/layer.tar"
                if any(data == blob for data in self.files.values()):      # Docker links a repeated layer
                    first = next(n for n, data in self.files.items() if data == blob)
                    self.files[name] = ("symlink", "../" + first)
                else:
                    self.files[name] = blob
                self.files[layer_id + "/VERSION"] = b"1.0"
                self.files[layer_id + "/json"] = json.dumps({"id": layer_id, "parent": parent}).encode()
                parent = layer_id
            names.append(name)
        config["rootfs"] = {"type": "layers", "diff_ids": diff_ids if diff_ids is not None else ids}
        config_bytes = json.dumps(config).encode()
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
        self.files[config_name] = config_bytes
        self.manifest.append({"Config": config_name, "RepoTags": list(tags) or None, "Layers": names})
        for tag in tags:
            repo, _, version = tag.rpartition(":")
            self.repositories.setdefault(repo, {})[version] = parent or "x"
        return config_name

    def write(self, path, extra=()):
        """Write the archive; ``extra`` TarInfo/bytes pairs are appended as-is."""
        files = dict(self.files)
        files["manifest.json"] = json.dumps(self.manifest).encode()
        if self.repositories:
            files["repositories"] = json.dumps(self.repositories).encode()
        with tarfile.open(str(path), "w") as tar:
            for name, data in sorted(files.items()):
                info = tarfile.TarInfo(name)
                if isinstance(data, tuple):
                    info.type, info.linkname = tarfile.SYMTYPE, data[1]
                    tar.addfile(info)
                else:
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
            for info, data in extra:
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        return str(path)


# ---- bases and images the test files share ----


def small_base(builder, family=OCI, platform=("linux", "arm64", "v8")):
    """A two-layer base (an /etc file, a /usr/share/doc file) with Env, Cmd, User and a label, as LayoutBuilder.image."""
    return builder.image(
        [[("etc/", "dir", None, 0o755), ("etc/base-release", "file", b"base 1\n", 0o644)],
         [("usr/", "dir", None, 0o755), ("usr/share/", "dir", None, 0o755), ("usr/share/doc/", "dir", None, 0o755),
          ("usr/share/doc/base.txt", "file", b"docs\n", 0o644)]],
        {"config": {"Env": ["PATH=/bin", "BASE=1"], "Cmd": ["/bin/sh"], "User": "65532",
                    "Labels": {"org.example": "yes"}}, "x-unknown": [1, 2]},
        family=family, platform=platform)


def real_base(builder, busybox, platform=("linux", "amd64", ""), family=OCI):
    """A two-layer base from real files: busybox with a /bin/sh link, and the host's /etc/protocols."""
    return builder.image(
        [[("bin", "dir", None, 0o755), ("bin/busybox", "file", busybox, 0o755), ("bin/sh", "symlink", "busybox", 0o777),
          ("etc", "dir", None, 0o755), ("etc/base-release", "file", b"zeroimage test base 1.0\n", 0o644)],
         [("etc/protocols", "file", "/etc/protocols", 0o644), ("srv", "dir", None, 0o755)]],
        {"config": {"Env": ["PATH=/bin", "BASE_VAR=from-base"], "Cmd": ["/bin/sh"], "WorkingDir": "/srv",
                    "Labels": {"org.example.base": "yes"}}, "x-unknown": {"kept": True}},
        platform=platform, family=family)


def multi_platform_base(tmp_path, busybox, family=None):
    """An archive of real_base for linux/amd64 and linux/arm64/v8 (and, OCI only, a Docker attestation
    manifest): (path, builder, amd64 descriptor, arm64 descriptor, index descriptor)."""
    b = LayoutBuilder()
    kwargs = {"family": family} if family else {}
    amd = real_base(b, busybox, **kwargs)
    arm = real_base(b, busybox, platform=("linux", "arm64", "v8"), **kwargs)
    images = [amd, arm]
    if family is None:
        attestation = b.image([[("x", "file", b"{}", 0o644)]], {"config": {}}, platform=("unknown", "unknown", ""))
        images.append(dict(attestation, annotations={"vnd.docker.reference.type": "attestation-manifest",
                                                     "vnd.docker.reference.digest": amd["digest"]}))
    top = b.index(images, **kwargs)
    path = b.write_tar(tmp_path / "multi.tar", [ref(top, "multi")])
    return path, b, amd, arm, top


def fhs_base(tmp_path, *more_layers):
    """A base as real distributions make them: /tmp 1777, /root 0700, /bin a symlink (merged /usr)."""
    b = LayoutBuilder()
    first = [("bin", "symlink", "usr/bin", 0o777), ("etc", "dir", None, 0o755), ("etc/motd", "file", b"hi", 0o644),
             ("root", "dir", None, 0o700), ("tmp", "dir", None, 0o1777), ("usr", "dir", None, 0o755),
             ("usr/bin", "dir", None, 0o755)]
    desc = b.image([first] + list(more_layers), {"config": {}})
    return b.write_tar(str(tmp_path / "base.tar"), [ref(desc, "base:1")])


def program_layer(archive):
    """{name: TarInfo} of the last layer of the archive's image (the program's)."""
    return layer_members(image_of(str(archive))[3][-1])


def dirs_of_program_layer(archive):
    """{name: mode} of the directories in the program's layer."""
    return {name: m.mode for name, m in program_layer(archive).items() if m.isdir()}


# A small valid image as a registry serves it: the bytes of its one layer (a file /app), config and manifest.
SMALL_LAYER, SMALL_LAYER_DIFF_ID = make_layer([("app", "file", b"app", 0o755)])
SMALL_CONFIG = json.dumps({"architecture": "amd64", "os": "linux",
                           "rootfs": {"type": "layers", "diff_ids": [SMALL_LAYER_DIFF_ID]},
                           "config": {"Entrypoint": ["/app"]}}).encode()
SMALL_IMAGE = json.dumps({"schemaVersion": 2, "mediaType": OCI["manifest"],
                          "config": {"mediaType": OCI["config"], "digest": sha256(SMALL_CONFIG), "size": len(SMALL_CONFIG)},
                          "layers": [{"mediaType": OCI["layer"], "digest": sha256(SMALL_LAYER),
                                      "size": len(SMALL_LAYER)}]}).encode()
