"""The OCI image spec's rules (and Docker's, for the Docker media types) applied to an image layout,
as a tar archive or a directory: an independent judge of what zeroimage writes. Standard library only.

``check(path)`` returns a list of problems (strings); ``assert_valid(path)`` raises AssertionError
listing them. The rules and where they come from (image-spec v1.1, github.com/opencontainers/image-spec):

- image-layout.md: ``oci-layout`` ({"imageLayoutVersion": "1.0.0"}), ``index.json`` (an image index),
  ``blobs/``; ``blobs/<alg>/<encoded>`` MUST match its digest, with the digest grammar's characters.
- descriptor.md and schema/content-descriptor.json: mediaType (RFC 6838), digest (grammar; sha256 and
  sha512 lower-case hex of the right length), size (a non-negative integer), urls, data, annotations.
  Every referenced blob exists here, its size and digest equal to the descriptor's.
- manifest.md, image-index.md and their schemas: schemaVersion 2, required fields and their types,
  ``mediaType`` equal to the descriptor's; an OCI index lists no Docker manifests, a Docker list only
  Docker manifests; a manifest's config and layers are of its own family (media-types.md, "Compatibility
  Matrix": annotations are "only present in OCI", so no Docker manifest, list or their descriptors
  carry them; distribution's manifest-v2-2.md has no such field either).
- config.md and schema/config-schema.json: architecture, os and rootfs required; rootfs.type "layers";
  diff_ids the sha256 of each uncompressed layer, in order; history entries whose ``empty_layer`` is
  not true, one per layer; ``created`` times RFC 3339 section 5.6; typed fields (Env a list of strings,
  ExposedPorts and Volumes maps of objects, Labels following the annotation rules, ...). Fields that are
  maps or lists are never ``null`` (the schema types Env, ExposedPorts, history, os.features without a
  null; issue 11 section 4 holds zeroimage to it for the others too).
- annotations.md: annotations are a map of strings to strings; keys under ``org.opencontainers`` are
  reserved: only the pre-defined ones; ``org.opencontainers.image.created`` is RFC 3339;
  ``org.opencontainers.image.ref.name`` follows the ref grammar; ``...base.digest`` is a digest.
- layer.md: a layer is a tar (compressed as its media type says) without duplicate paths; members
  relative, no ``..``, no member that is only ``/`` or ``.``; every parent present (earlier in the layer,
  or a directory or symlink left by the layers below); no member both a file and a parent of another;
  whiteouts name something; hardlinks point at an earlier member of the same layer.
- Docker's ``manifest.json`` (docker save / docker load): a list of {Config, RepoTags, Layers}, every path
  an existing blob, equal to one image's config and layers; RepoTags are NAME:TAG references.
"""

import base64
import binascii
import datetime
import gzip
import hashlib
import json
import os
import posixpath
import re
import tarfile
import zlib

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
# A Docker manifest's config as older skopeo and registries described it (containers/image reads it;
# manifest-v2-2.md names only DOCKER_CONFIG, but images so written are in registries still).
DOCKER_LEGACY_CONFIG = "application/octet-stream"
OCI_LAYERS = frozenset("application/vnd.oci.image.layer.%sv1.tar%s" % (nd, comp)
                       for nd in ("", "nondistributable.") for comp in ("", "+gzip", "+zstd"))
DOCKER_LAYERS = frozenset(["application/vnd.docker.image.rootfs.diff.tar.gzip",
                           "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                           "application/vnd.docker.image.rootfs.diff.tar"])
DOCKER_TYPES = frozenset([DOCKER_MANIFEST, DOCKER_LIST, DOCKER_CONFIG]) | DOCKER_LAYERS
DOCKER_SCHEMA1 = frozenset(["application/vnd.docker.distribution.manifest.v1+json",
                            "application/vnd.docker.distribution.manifest.v1+prettyjws"])

# annotations.md, "Pre-Defined Annotation Keys"
PREDEFINED_ANNOTATIONS = frozenset("org.opencontainers.image." + k for k in (
    "created", "authors", "url", "documentation", "source", "version", "revision", "vendor", "licenses",
    "ref.name", "title", "description", "base.digest", "base.name")) | {
    "org.opencontainers.artifact.created", "org.opencontainers.artifact.description"}   # the artifact spec's

_MEDIA_TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\Z")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+\Z")
_REGISTERED = {"sha256": 64, "sha512": 128, "blake3": 64}     # descriptor.md, "Registered algorithms"
_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
_RFC3339_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))\Z")
# annotations.md: ref ::= component ("/" component)*; component ::= alphanum (separator alphanum)*;
# alphanum ::= [A-Za-z0-9]+; separator ::= [-._:@+] | "--"
_REF_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_REF_NAME_RE = re.compile(r"^%s(?:/%s)*\Z" % (_REF_COMPONENT, _REF_COMPONENT))
# distribution/reference's grammar (ASCII only), for Docker's RepoTags
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = r"(?:%s(?:\.%s)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?" % (_DOMAIN_COMPONENT, _DOMAIN_COMPONENT)
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO_TAG_RE = re.compile(r"^(?:%s/)?(%s(?:/%s)*):([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})\Z"
                          % (_DOMAIN, _PATH_COMPONENT, _PATH_COMPONENT))
_PORT_RE = re.compile(r"^[0-9]{1,5}(?:-[0-9]{1,5})?(?:/(?:tcp|udp|sctp))?\Z")
_MAX_SIZE = 2 ** 63 - 1
_CHUNK = 1024 * 1024


def check(path):
    """Problems (strings) with the image layout at ``path``, a tar archive or a directory."""
    path = os.fspath(path)
    checker = _Checker(path)
    try:
        checker.run()
    finally:
        checker.close()
    return checker.problems


def assert_valid(path):
    problems = check(path)
    if problems:
        raise AssertionError("%s breaks the image spec:\n  %s" % (path, "\n  ".join(problems)))


def is_rfc3339(value):
    """RFC 3339 section 5.6 date-time, with real dates and times."""
    m = _RFC3339_RE.fullmatch(value) if isinstance(value, str) else None
    if not m:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    if hour > 23 or minute > 59 or second > 60:
        return False
    return m.group(9) is None or (int(m.group(9)) <= 23 and int(m.group(10)) <= 59)


def is_ref_name(value):
    return isinstance(value, str) and bool(_REF_NAME_RE.fullmatch(value))


def is_repo_tag(value):
    if not isinstance(value, str):
        return False
    return bool(_REPO_TAG_RE.fullmatch(value)) and len(value.rsplit(":", 1)[0]) <= 255


def _not_json(name):
    raise ValueError("%s is not JSON (Go's encoding/json refuses it)" % name)


def strict_json(data):
    """JSON as Go reads it: NaN and Infinity are not numbers there."""
    return json.loads(data.decode("utf-8"), parse_constant=_not_json)


def _zstd():
    """The standard library's zstd module (3.14+; in a test, what stands in for it), or None."""
    import importlib
    try:
        return importlib.import_module("compression.zstd")
    except ImportError:
        return None


def _short(digest):
    return digest[:19] if isinstance(digest, str) else repr(digest)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


# ---- where the layout's files come from ----


class _DirSource:
    def __init__(self, path, problem):
        self.path = path
        self.files = {}
        for top, dirs, files in os.walk(path):
            for name in files + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
                full = os.path.join(top, name)
                rel = os.path.relpath(full, path).replace(os.sep, "/")
                if os.path.islink(full) or not os.path.isfile(full):
                    problem(rel, "is not a regular file (a link or special file)")
                    continue
                self.files[rel] = os.path.getsize(full)
        self.has_blobs_dir = os.path.isdir(os.path.join(path, "blobs"))

    def open(self, name):
        return open(os.path.join(self.path, name), "rb")

    def close(self):
        pass


class _TarSource:
    def __init__(self, path, problem):
        self.files = {}
        self._members = {}
        self.has_blobs_dir = False
        self._tar = tarfile.open(path, "r:*")
        seen = set()
        for member in self._tar.getmembers():
            name = member.name
            parts = name.split("/")
            clean = [p for p in parts if p not in ("", ".")]
            if name.startswith("/") or ".." in parts or not clean:
                problem("archive member %r" % name, "is not a relative path inside the archive")
                continue
            key = "/".join(clean)
            if key in seen:
                problem("archive member %r" % name, "appears twice")
            seen.add(key)
            if key == "blobs" or key.startswith("blobs/"):
                self.has_blobs_dir = True
            if member.isdir():
                continue
            if not member.isreg():
                if key in ("oci-layout", "index.json", "manifest.json") or key.startswith("blobs/"):
                    problem("archive member %r" % name, "is a link or special file where a file belongs")
                continue
            self.files[key] = member.size
            self._members[key] = member

    def open(self, name):
        return self._tar.extractfile(self._members[name])

    def close(self):
        self._tar.close()


class _HashingReader:
    """Passes reads through, hashing (sha256) and counting what passes."""

    def __init__(self, raw):
        self.raw = raw
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, n=-1):
        data = self.raw.read(n)
        self.hash.update(data)
        self.size += len(data)
        return data

    def drain(self):
        while self.read(_CHUNK):
            pass
        return "sha256:" + self.hash.hexdigest()


# ---- the checker ----


class _Checker:
    def __init__(self, path):
        self.path = path
        self.problems = []
        self.source = None
        self._blob_ok = {}          # blob file name -> its content matches its name
        self._json = {}             # digest -> parsed JSON (or None)
        self._layers = {}           # digest -> (diff_id or None, members)
        self._checked = set()       # (kind, digest) checked already
        self.images = []            # (manifest digest, config path, layer paths) for manifest.json

    def problem(self, where, text):
        line = "%s: %s" % (where, text)
        if line not in self.problems:
            self.problems.append(line)

    def close(self):
        if self.source is not None:
            self.source.close()

    # -- the layout --

    def run(self):
        if os.path.isdir(self.path):
            self.source = _DirSource(self.path, self.problem)
        else:
            try:
                self.source = _TarSource(self.path, self.problem)
            except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
                self.problem(self.path, "is neither a layout directory nor a readable tar archive (%s)" % e)
                return
        files = self.source.files
        layout = self.read_json_file("oci-layout")
        if layout is not None:
            if not isinstance(layout, dict):
                self.problem("oci-layout", "is not a JSON object (image-layout.md)")
            elif layout.get("imageLayoutVersion") != "1.0.0":
                self.problem("oci-layout", "imageLayoutVersion is %r, not \"1.0.0\" (schema/image-layout-schema.json)"
                             % (layout.get("imageLayoutVersion"),))
        if not self.source.has_blobs_dir:
            self.problem("blobs", "the directory is missing (image-layout.md: it MUST exist)")
        for name in sorted(files):
            if name.startswith("blobs/"):
                self.check_blob_file(name)
        index = self.read_json_file("index.json")
        if index is not None:
            self.check_index(index, "index.json", None, top=True)
        if "manifest.json" in files:
            self.check_docker_manifest_json()

    def read_json_file(self, name):
        if name not in self.source.files:
            self.problem(name, "is missing (image-layout.md: it MUST exist)")
            return None
        with self.source.open(name) as f:
            data = f.read()
        try:
            return strict_json(data)
        except (UnicodeDecodeError, ValueError) as e:
            self.problem(name, "is not valid JSON (%s)" % e)
            return None

    def check_blob_file(self, name):
        """blobs/<alg>/<encoded>: names in the digest grammar, content matching the name (image-layout.md)."""
        parts = name.split("/")
        if len(parts) != 3:
            self.problem(name, "is not at blobs/<algorithm>/<encoded> (image-layout.md)")
            return
        algorithm, encoded = parts[1], parts[2]
        problem = _digest_problem(algorithm + ":" + encoded)
        if problem:
            self.problem(name, "the name is not a digest: " + problem)
            return
        hasher = _HASHES.get(algorithm)
        if hasher is None:
            return                              # blake3 and others: no verifier in the standard library
        h = hasher()
        with self.source.open(name) as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
        ok = h.hexdigest() == encoded
        self._blob_ok[name] = ok
        if not ok:
            self.problem(name, "its content hashes to %s:%s, not to its name (image-layout.md: the content of "
                         "blobs/<alg>/<encoded> MUST match the digest)" % (algorithm, h.hexdigest()))

    # -- descriptors --

    def check_descriptor(self, desc, where, docker=False):
        """A descriptor's fields (descriptor.md); True when the blob it names is here, whole and right."""
        if not isinstance(desc, dict):
            self.problem(where, "a descriptor is not a JSON object")
            return False
        media_type, digest, size = desc.get("mediaType"), desc.get("digest"), desc.get("size")
        if not isinstance(media_type, str) or not _MEDIA_TYPE_RE.fullmatch(media_type):
            self.problem(where, "mediaType %r is missing or not an RFC 6838 media type (descriptor.md)" % (media_type,))
        if not _is_int(size) or not 0 <= size <= _MAX_SIZE:
            self.problem(where, "size %r is not a non-negative integer (descriptor.md)" % (size,))
            size = None
        problem = _digest_problem(digest)
        if problem:
            self.problem(where, "digest %r: %s (descriptor.md)" % (digest, problem))
            return False
        for field in ("urls", "annotations", "data", "artifactType", "platform"):
            if field in desc and desc[field] is None:
                self.problem(where, "%s is null (a map, list or string is expected; schema/content-descriptor.json)"
                             % field)
        urls = desc.get("urls")
        if urls is not None and (not isinstance(urls, list) or not all(isinstance(u, str) for u in urls)):
            self.problem(where, "urls is not a list of strings (descriptor.md)")
        artifact_type = desc.get("artifactType")
        if artifact_type is not None and (not isinstance(artifact_type, str) or not _MEDIA_TYPE_RE.fullmatch(artifact_type)):
            self.problem(where, "artifactType %r is not a media type (descriptor.md)" % (artifact_type,))
        if "annotations" in desc:
            if docker:
                self.problem(where, "a descriptor in a Docker manifest or list carries annotations (media-types.md, "
                             "Compatibility Matrix: only present in OCI)")
            self.check_annotations(desc["annotations"], where + " annotations")
        algorithm, encoded = digest.split(":", 1)
        name = "blobs/%s/%s" % (algorithm, encoded)
        actual = self.source.files.get(name)
        if actual is None:
            self.problem(where, "blob %s is not in the layout" % digest)
            return False
        if size is not None and actual != size:
            self.problem(where, "blob %s is %d bytes, the descriptor says %d (descriptor.md)" % (_short(digest), actual, size))
            return False
        data = desc.get("data")
        if data is not None:
            try:
                decoded = base64.b64decode(data, validate=True) if isinstance(data, str) else None
            except (binascii.Error, ValueError):
                decoded = None
            if decoded is None or decoded != self.read_blob(digest):
                self.problem(where, "data is not the base64 of the blob (descriptor.md)")
        return self._blob_ok.get(name, True)

    def read_blob(self, digest):
        algorithm, encoded = digest.split(":", 1)
        with self.source.open("blobs/%s/%s" % (algorithm, encoded)) as f:
            return f.read()

    def read_json_blob(self, digest, where):
        if digest not in self._json:
            try:
                self._json[digest] = strict_json(self.read_blob(digest))
            except (UnicodeDecodeError, ValueError) as e:
                self.problem(where, "is not valid JSON (%s)" % e)
                self._json[digest] = None
        return self._json[digest]

    def check_platform(self, platform, where):
        if not isinstance(platform, dict):
            self.problem(where, "platform is not an object (image-index.md)")
            return
        for field in ("architecture", "os"):
            if not isinstance(platform.get(field), str) or not platform.get(field):
                self.problem(where, "platform.%s is missing or not a string (image-index.md: REQUIRED)" % field)
        for field in ("os.version", "variant"):
            if field in platform and not isinstance(platform[field], str):
                self.problem(where, "platform.%s is not a string (image-index.md)" % field)
        for field in ("os.features", "features"):
            if field in platform and (not isinstance(platform[field], list)
                                      or not all(isinstance(v, str) for v in platform[field])):
                self.problem(where, "platform.%s is not a list of strings (image-index.md)" % field)

    # -- annotations --

    def check_annotations(self, annotations, where):
        """annotations.md, Rules and Pre-Defined Annotation Keys (Labels follow the same rules: config.md)."""
        if annotations is None:
            return              # reported by the caller, as a null field
        if not isinstance(annotations, dict):
            self.problem(where, "is not a map of strings (annotations.md)")
            return
        for key, value in sorted(annotations.items()):
            if not key:
                self.problem(where, "an empty key (schema/defs.json mapStringString: keys of one or more characters)")
            if not isinstance(value, str):
                self.problem(where, "%s: the value %r is not a string (annotations.md: MUST be strings)" % (key, value))
                continue
            if key.startswith("org.opencontainers.") and key not in PREDEFINED_ANNOTATIONS:
                self.problem(where, "%s: the org.opencontainers prefix is reserved for the keys the OCI specifications "
                             "define (annotations.md)" % key)
            if key == "org.opencontainers.image.created" and not is_rfc3339(value):
                self.problem(where, "%s: %r is not an RFC 3339 date-time (annotations.md)" % (key, value))
            if key == "org.opencontainers.image.ref.name" and not is_ref_name(value):
                self.problem(where, "%s: %r does not follow the ref grammar (annotations.md: alphanum separated by "
                             "one of -._:@+ or --, components joined by /)" % (key, value))
            if key == "org.opencontainers.image.base.digest" and _digest_problem(value):
                self.problem(where, "%s: %r is not a digest (annotations.md)" % (key, value))

    # -- indexes --

    def check_index(self, index, where, desc, top=False):
        """image-index.md (index.json and nested indexes) or a Docker manifest list."""
        if not isinstance(index, dict):
            self.problem(where, "is not a JSON object")
            return
        declared = desc.get("mediaType") if desc else None
        docker = declared == DOCKER_LIST or index.get("mediaType") == DOCKER_LIST
        if index.get("schemaVersion") != 2 or not _is_int(index.get("schemaVersion")):
            self.problem(where, "schemaVersion is %r, not 2 (image-index.md)" % (index.get("schemaVersion"),))
        media_type = index.get("mediaType")
        if top and media_type not in (None, OCI_INDEX):
            self.problem(where, "mediaType %r: index.json is an OCI image index (image-layout.md)" % (media_type,))
        elif docker and media_type != DOCKER_LIST:
            self.problem(where, "a Docker manifest list without mediaType %s (manifest-v2-2.md: required)" % DOCKER_LIST)
        elif not top and media_type is not None and media_type != declared:
            self.problem(where, "mediaType %r differs from its descriptor's %r" % (media_type, declared))
        for field in ("annotations", "subject", "artifactType"):
            if field in index and docker:
                self.problem(where, "a Docker manifest list has no %s field (media-types.md, Compatibility Matrix)"
                             % field)
        if "annotations" in index:
            if index["annotations"] is None:
                self.problem(where, "annotations is null (annotations.md: absent or an empty map)")
            self.check_annotations(index["annotations"], where + " annotations")
        if "subject" in index:
            self.check_descriptor(index["subject"], where + " subject")
        manifests = index.get("manifests")
        if not isinstance(manifests, list):
            self.problem(where, "manifests is missing or not a list (image-index.md: REQUIRED)")
            return
        ref_names = {}
        # zeroimage's index of an image and its referrers (io.zeroimage.image) holds an image of either
        # family beside OCI artifacts, as index.json itself may: a holder, not an image's index
        holder = isinstance(index.get("annotations"), dict) and "io.zeroimage.image" in index["annotations"]
        for i, child in enumerate(manifests):
            child_where = "%s manifests[%d]" % (where, i)
            if not self.check_descriptor(child, child_where, docker=docker):
                continue
            child_type = child.get("mediaType")
            if top:
                name = (child.get("annotations") or {}).get("org.opencontainers.image.ref.name")
                if isinstance(name, str):
                    if name in ref_names:
                        self.problem(child_where, "ref name %r is also manifests[%d]'s (image-layout.md: a ref names "
                                     "one descriptor)" % (name, ref_names[name]))
                    ref_names.setdefault(name, i)
            elif docker and child_type != DOCKER_MANIFEST:
                self.problem(child_where, "a Docker manifest list lists %r (manifest-v2-2.md: only %s)"
                             % (child_type, DOCKER_MANIFEST))
            elif not docker and child_type in DOCKER_TYPES and not holder:
                self.problem(child_where, "an OCI index lists the Docker type %r (image-index.md: OCI manifests and "
                             "indexes; one family per image)" % child_type)
            if docker and "platform" not in child:
                self.problem(child_where, "no platform (manifest-v2-2.md: required in a manifest list)")
            if "platform" in child and child["platform"] is not None:
                self.check_platform(child["platform"], child_where)
            self.check_child(child, child_where)

    def check_child(self, desc, where):
        media_type, digest = desc.get("mediaType"), desc["digest"]
        if media_type in DOCKER_SCHEMA1:
            self.problem(where, "a Docker schema 1 manifest (deprecated; not an image manifest this spec knows)")
            return
        if media_type not in (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST):
            return              # an artifact or another type: the blob's presence is all that is checked
        where = "%s %s %s" % (where, "index" if media_type in (OCI_INDEX, DOCKER_LIST) else "manifest", _short(digest))
        content = self.read_json_blob(digest, where)
        if content is None:
            return
        if media_type in (OCI_INDEX, DOCKER_LIST):
            if ("index", digest) not in self._checked:
                self._checked.add(("index", digest))
                self.check_index(content, where, desc)
        else:
            self.check_manifest(content, where, desc)

    # -- manifests --

    def check_manifest(self, manifest, where, desc):
        """manifest.md and schema/image-manifest-schema.json, or distribution's manifest-v2-2.md."""
        if not isinstance(manifest, dict):
            self.problem(where, "is not a JSON object")
            return
        declared = desc["mediaType"]
        docker = declared == DOCKER_MANIFEST
        first = ("manifest", desc["digest"]) not in self._checked
        self._checked.add(("manifest", desc["digest"]))
        if first:
            self.check_manifest_fields(manifest, where, declared, docker)
        config_desc, layers = manifest.get("config"), manifest.get("layers")
        if not isinstance(config_desc, dict) or not isinstance(layers, list):
            return
        config_ok = self.check_descriptor(config_desc, where + " config", docker=docker) if first else True
        config_type = config_desc.get("mediaType")
        wanted_config = DOCKER_CONFIG if docker else OCI_CONFIG
        if first and config_type != wanted_config and not (docker and config_type == DOCKER_LEGACY_CONFIG) \
                and (docker or config_type in DOCKER_TYPES):
            self.problem(where + " config", "mediaType %r in a %s manifest (wanted %s: one family per manifest)"
                         % (config_type, "Docker" if docker else "OCI", wanted_config))
        layer_ok = []
        for i, layer in enumerate(layers):
            layer_where = "%s layers[%d]" % (where, i)
            ok = self.check_descriptor(layer, layer_where, docker=docker) if first else True
            layer_type = layer.get("mediaType") if isinstance(layer, dict) else None
            if first and docker and layer_type not in DOCKER_LAYERS:
                self.problem(layer_where, "mediaType %r in a Docker manifest (a Docker layer type is wanted: one "
                             "family per manifest)" % (layer_type,))
            elif first and not docker and layer_type in DOCKER_LAYERS:
                self.problem(layer_where, "the Docker layer type %r in an OCI manifest (media-types.md: its OCI "
                             "equivalent is wanted: one family per manifest)" % (layer_type,))
            layer_ok.append(ok and isinstance(layer, dict) and isinstance(layer.get("digest"), str))
        if (config_type not in (OCI_CONFIG, DOCKER_CONFIG) and not docker) or not config_ok \
                or not isinstance(config_desc.get("digest"), str):
            return
        config_where = "%s config %s" % (where, _short(config_desc["digest"]))
        config = self.read_json_blob(config_desc["digest"], config_where)
        if config is None:
            return
        if ("config", config_desc["digest"]) not in self._checked:
            self._checked.add(("config", config_desc["digest"]))
            self.check_config(config, config_where)
        if isinstance(config, dict) and isinstance(desc.get("platform"), dict):
            for field in ("os", "architecture", "variant"):
                if field in desc["platform"] and field in config and desc["platform"][field] != config[field]:
                    self.problem(where, "the index says platform.%s %r, the config says %r (image-index.md: the "
                                 "platform of the image the descriptor names)"
                                 % (field, desc["platform"][field], config[field]))
        if first and all(layer_ok):
            self.check_layers(layers, config, where)
            self.images.append((desc["digest"], "blobs/" + config_desc["digest"].replace(":", "/", 1),
                                ["blobs/" + d["digest"].replace(":", "/", 1) for d in layers]))

    def check_manifest_fields(self, manifest, where, declared, docker):
        if manifest.get("schemaVersion") != 2 or not _is_int(manifest.get("schemaVersion")):
            self.problem(where, "schemaVersion is %r, not 2 (manifest.md)" % (manifest.get("schemaVersion"),))
        media_type = manifest.get("mediaType")
        if docker and media_type != DOCKER_MANIFEST:
            self.problem(where, "a Docker manifest without mediaType %s (manifest-v2-2.md: required)" % DOCKER_MANIFEST)
        elif media_type is not None and media_type != declared:
            self.problem(where, "mediaType %r differs from its descriptor's %r (manifest.md)" % (media_type, declared))
        if "manifests" in manifest:
            self.problem(where, "an image manifest with a manifests field (an index posing as a manifest)")
        if not isinstance(manifest.get("config"), dict):
            self.problem(where, "config is missing or not a descriptor (manifest.md: REQUIRED)")
        layers = manifest.get("layers")
        if not isinstance(layers, list):
            self.problem(where, "layers is missing or not a list (manifest.md: REQUIRED)")
        elif not layers:
            self.problem(where, "layers is empty (schema/image-manifest-schema.json: minItems 1)")
        for field in ("annotations", "subject", "artifactType"):
            if field in manifest and docker:
                self.problem(where, "a Docker manifest has no %s field (media-types.md, Compatibility Matrix: only "
                             "present in OCI)" % field)
        if "annotations" in manifest:
            if manifest["annotations"] is None:
                self.problem(where, "annotations is null (annotations.md: absent or an empty map)")
            self.check_annotations(manifest["annotations"], where + " annotations")
        if "subject" in manifest:
            self.check_descriptor(manifest["subject"], where + " subject")
        if "artifactType" in manifest and (not isinstance(manifest["artifactType"], str)
                                           or not _MEDIA_TYPE_RE.fullmatch(manifest["artifactType"])):
            self.problem(where, "artifactType %r is not a media type (manifest.md)" % (manifest["artifactType"],))

    # -- configs --

    def check_config(self, config, where):
        """config.md and schema/config-schema.json (Docker's image spec v1.2 is the same for these fields)."""
        if not isinstance(config, dict):
            self.problem(where, "is not a JSON object (config.md)")
            return
        for field in ("architecture", "os"):
            if not isinstance(config.get(field), str) or not config.get(field):
                self.problem(where, "%s is missing or not a string (config.md: REQUIRED)" % field)
        self._typed(config, where, {"created": "time", "author": "str", "variant": "str", "os.version": "str",
                                    "os.features": "strs", "config": "obj", "history": "list", "rootfs": "obj"})
        runtime = config.get("config")
        if isinstance(runtime, dict):
            self._typed(runtime, where + " config", {
                "User": "str", "ExposedPorts": "objmap", "Env": "strs", "Entrypoint": "strs", "Cmd": "strs",
                "Volumes": "objmap", "WorkingDir": "str", "Labels": "strmap", "StopSignal": "str",
                "ArgsEscaped": "bool"})
            for entry in runtime.get("Env") if isinstance(runtime.get("Env"), list) else []:
                if isinstance(entry, str) and ("=" not in entry or entry.startswith("=")):
                    self.problem(where + " config.Env", "%r is not VARNAME=VARVALUE (config.md)" % (entry,))
            for port in runtime.get("ExposedPorts") if isinstance(runtime.get("ExposedPorts"), dict) else {}:
                if not _PORT_RE.fullmatch(port):
                    self.problem(where + " config.ExposedPorts", "%r is not port, port/tcp or port/udp (config.md)"
                                 % port)
            if isinstance(runtime.get("Labels"), dict):
                self.check_annotations(runtime["Labels"], where + " config.Labels")
        rootfs = config.get("rootfs")
        if not isinstance(rootfs, dict):
            self.problem(where, "rootfs is missing or not an object (config.md: REQUIRED)")
        else:
            if rootfs.get("type") != "layers":
                self.problem(where, "rootfs.type is %r (config.md: MUST be \"layers\")" % (rootfs.get("type"),))
            diff_ids = rootfs.get("diff_ids")
            if not isinstance(diff_ids, list):
                self.problem(where, "rootfs.diff_ids is missing or not a list (config.md: REQUIRED)")
            else:
                for diff_id in diff_ids:
                    if _digest_problem(diff_id):
                        self.problem(where, "rootfs.diff_ids holds %r, not a digest (config.md)" % (diff_id,))
        for i, entry in enumerate(config.get("history") if isinstance(config.get("history"), list) else []):
            if not isinstance(entry, dict):
                self.problem(where, "history[%d] is not an object (config.md)" % i)
                continue
            self._typed(entry, "%s history[%d]" % (where, i), {"created": "time", "author": "str",
                                                                "created_by": "str", "comment": "str",
                                                                "empty_layer": "bool"})

    def _typed(self, obj, where, fields):
        for field, kind in fields.items():
            if field not in obj:
                continue
            value = obj[field]
            if value is None:
                self.problem(where, "%s is null (schema/config-schema.json gives it a type; zeroimage writes no null "
                             "field: issue 11)" % field)
            elif kind == "time":
                if not is_rfc3339(value):
                    self.problem(where, "%s %r is not an RFC 3339 date-time (config.md)" % (field, value))
            elif not _of_kind(value, kind):
                self.problem(where, "%s is %r, not %s (schema/config-schema.json)" % (field, _brief(value), {
                    "str": "a string", "strs": "a list of strings", "obj": "an object", "list": "a list",
                    "bool": "a boolean", "objmap": "a map of objects", "strmap": "a map of strings"}[kind]))

    # -- layers --

    def check_layers(self, layers, config, where):
        """diff_ids and history against the layers (config.md), and each layer's members (layer.md)."""
        rootfs = config.get("rootfs") if isinstance(config, dict) else None
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        if isinstance(diff_ids, list) and len(diff_ids) != len(layers):
            self.problem(where, "the config has %d diff_ids for %d layers (config.md)" % (len(diff_ids), len(layers)))
        history = config.get("history") if isinstance(config, dict) else None
        if isinstance(history, list):
            non_empty = [h for h in history if not (isinstance(h, dict) and h.get("empty_layer") is True)]
            if len(non_empty) != len(layers):
                self.problem(where, "the config's history has %d entries without empty_layer for %d layers "
                             "(config.md: history describes each layer, empty_layer marks those without one)"
                             % (len(non_empty), len(layers)))
        state = {}          # path -> "dir", "symlink" or "file": the filesystem the layers below make
        for i, desc in enumerate(layers):
            layer_where = "%s layers[%d] %s" % (where, i, _short(desc["digest"]))
            diff_id, members = self.read_layer(desc, layer_where)
            if diff_id is not None and isinstance(diff_ids, list) and i < len(diff_ids) and diff_ids[i] != diff_id:
                self.problem(layer_where, "the uncompressed layer is %s, rootfs.diff_ids[%d] says %r (config.md)"
                             % (diff_id, i, diff_ids[i]))
            if members is not None:
                self.apply_layer(members, state, layer_where)

    def read_layer(self, desc, where):
        """(diff_id, [(name, type, linkname)]) of a layer, (None, None) when it cannot be read here."""
        digest, media_type = desc["digest"], desc.get("mediaType") or ""
        if digest in self._layers:
            return self._layers[digest]
        result = (None, None)
        zstd = _zstd() if media_type.endswith("+zstd") else None
        if media_type.endswith("+zstd") and zstd is None or not (media_type in OCI_LAYERS or media_type in DOCKER_LAYERS):
            self._layers[digest] = result
            return result       # zstd: no reader in this Python's standard library (3.14 has one); others: not tars
        kind = "gzip" if media_type.endswith("gzip") else "zstd" if zstd is not None else None
        algorithm, encoded = digest.split(":", 1)
        with self.source.open("blobs/%s/%s" % (algorithm, encoded)) as raw:
            magic = raw.read(4)
        found = "gzip" if magic[:2] == b"\x1f\x8b" else "zstd" if magic == b"\x28\xb5\x2f\xfd" else None
        if found != kind:
            self.problem(where, "the media type says %s, the blob is %s" % (kind or "uncompressed",
                                                                            found or "uncompressed"))
            self._layers[digest] = result
            return result
        with self.source.open("blobs/%s/%s" % (algorithm, encoded)) as raw:
            stream = gzip.GzipFile(fileobj=raw, mode="rb") if kind == "gzip" else \
                zstd.ZstdFile(raw, mode="rb") if kind == "zstd" else raw
            reader = _HashingReader(stream)
            members = []
            try:
                with tarfile.open(fileobj=reader, mode="r|") as tar:
                    for member in tar:
                        members.append((member.name, member.type, member.linkname))
                        if member.size > 1 << 34:   # tarfile would skip it one empty read at a time, for ages
                            raise tarfile.TarError("member %r claims %d bytes" % (member.name, member.size))
                result = (reader.drain(), members)
            except (tarfile.TarError, OSError, EOFError, zlib.error, getattr(zstd, "ZstdError", OSError)) as e:
                self.problem(where, "is not a readable tar%s (%s)" % (" in " + kind if kind else "", e))
        self._layers[digest] = result
        return result

    def apply_layer(self, members, state, where):
        """layer.md: one layer's members in order, on the filesystem the layers below left."""
        here = {}           # clean path -> kind, this layer
        for name, kind_code, linkname in members:
            at = "%s member %r" % (where, name)
            path = self.member_path(name, at)
            if path is None:
                continue
            kind = "dir" if kind_code == tarfile.DIRTYPE else "symlink" if kind_code == tarfile.SYMTYPE \
                else "hardlink" if kind_code == tarfile.LNKTYPE else "file"
            if path in here:
                self.problem(at, "a second entry for %s (layer.md: MUST NOT include duplicate entries)" % path)
                continue
            parent = posixpath.dirname(path)
            if parent:
                known = here.get(parent) or state.get(parent)
                if parent in here and known not in ("dir",):
                    self.problem(at, "its parent %s is a %s in this layer: a path cannot be both a file and a "
                                 "directory" % (parent, known))
                elif known is None:
                    self.problem(at, "its parent directory %s is neither earlier in this layer nor in the layers "
                                 "below" % parent)
                elif known not in ("dir", "symlink"):
                    self.problem(at, "its parent %s is a %s in the layers below, not a directory" % (parent, known))
            base = posixpath.basename(path)
            if base.startswith(".wh."):
                self.whiteout(path, state, here, at)
                continue
            if kind == "hardlink":
                target = self.member_path(linkname, at + " (link target)")
                if target is not None and here.get(target) not in ("file", "hardlink", "symlink"):
                    self.problem(at, "a hardlink to %r, which is not an earlier file of this layer (layer.md: links "
                                 "outside the layer may fail)" % linkname)
            here[path] = kind
        for path, kind in here.items():         # a later directory entry replaces a lower file; drop lower children
            if kind != "dir":
                for other in [p for p in state if p.startswith(path + "/")]:
                    del state[other]
            state[path] = "file" if kind == "hardlink" else kind
        parents = {posixpath.dirname(p) for p in here}
        for path, kind in here.items():
            if kind != "dir" and path in parents:
                self.problem(where, "%s is a %s and the parent of other members (tar and umoci cannot unpack it)"
                             % (path, kind))

    def member_path(self, name, at):
        """The clean relative path of a member name, or None (with a problem) when it is unsafe or odd."""
        parts = name.split("/")
        while len(parts) > 1 and parts[0] == ".":
            parts = parts[1:]                       # ./etc/passwd: the form layer.md's examples use
        if parts and parts[-1] == "" and len(parts) > 1:
            parts = parts[:-1]                      # dir/
        if name.startswith("/") or not name or all(p in ("", ".") for p in parts):
            self.problem(at, "a member named %r: absolute or only '/' and '.' (tar and umoci fail on it)" % name)
            return None
        if ".." in parts:
            self.problem(at, "a '..' component (layer.md: changesets are relative to the root)")
            return None
        if "" in parts or "." in parts:
            self.problem(at, "an empty or '.' component inside the path")
            return None
        return "/".join(parts)

    def whiteout(self, path, state, here, at):
        parent, base = posixpath.split(path)
        if base == ".wh..wh..opq":
            prefix = parent + "/" if parent else ""
            for p in [p for p in state if p.startswith(prefix) and p != parent]:
                del state[p]
            return
        target = posixpath.join(parent, base[len(".wh."):])
        if not base[len(".wh."):]:
            self.problem(at, "a whiteout without a name (layer.md: invalid)")
            return
        if target in here:
            self.problem(at, "a whiteout of %s, which this same layer adds (layer.md: whiteouts apply only to lower "
                         "layers)" % target)
        for p in [p for p in state if p == target or p.startswith(target + "/")]:
            del state[p]

    # -- Docker's manifest.json --

    def check_docker_manifest_json(self):
        """What docker save writes and docker load reads: [{Config, RepoTags, Layers}]."""
        where = "manifest.json"
        entries = self.read_json_file(where)
        if entries is None:
            return
        if not isinstance(entries, list):
            self.problem(where, "is not a JSON list")
            return
        images = {(config, tuple(layers)) for _, config, layers in self.images}
        for i, entry in enumerate(entries):
            at = "%s[%d]" % (where, i)
            if not isinstance(entry, dict):
                self.problem(at, "is not an object")
                continue
            config, layers, tags = entry.get("Config"), entry.get("Layers"), entry.get("RepoTags")
            if not isinstance(config, str):
                self.problem(at, "Config is missing or not a string")
            elif config not in self.source.files:
                self.problem(at, "Config %r is not a file in the archive" % config)
            if not isinstance(layers, list) or not all(isinstance(p, str) for p in layers):
                self.problem(at, "Layers is missing or not a list of strings")
                layers = []
            for path in layers:
                if path not in self.source.files:
                    self.problem(at, "Layers names %r, which is not a file in the archive" % path)
            if not isinstance(tags, list):
                self.problem(at, "RepoTags is %r, not a list" % (tags,))
            else:
                for tag in tags:
                    if not is_repo_tag(tag):
                        self.problem(at, "RepoTags holds %r, not a NAME:TAG reference (distribution's reference "
                                     "grammar, ASCII)" % (tag,))
            if isinstance(config, str) and (config, tuple(layers)) not in images:
                self.problem(at, "Config and Layers are not the config and layers of an image in index.json")


def _of_kind(value, kind):
    if kind == "str":
        return isinstance(value, str)
    if kind == "strs":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "obj":
        return isinstance(value, dict)
    if kind == "list":
        return isinstance(value, list)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "objmap":
        return isinstance(value, dict) and all(k and isinstance(v, dict) for k, v in value.items())
    if kind == "strmap":
        return isinstance(value, dict) and all(k and isinstance(v, str) for k, v in value.items())
    raise ValueError(kind)


def _brief(value):
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _digest_problem(digest):
    """None when ``digest`` follows descriptor.md's grammar and its registered algorithm's encoding."""
    if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
        return "not in the digest grammar algorithm:encoded"
    algorithm, encoded = digest.split(":", 1)
    length = _REGISTERED.get(algorithm)
    if length is not None and not re.fullmatch(r"[a-f0-9]{%d}" % length, encoded):
        return "%s wants %d lower-case hex digits" % (algorithm, length)
    return None


if __name__ == "__main__":      # python3 tests/speccheck.py PATH...: the problems of each, exit 1 if any
    import sys
    found = [(path, problem) for path in sys.argv[1:] for problem in check(path)]
    for path, problem in found:
        print("%s: %s" % (path, problem))
    sys.exit(1 if found else 0)
