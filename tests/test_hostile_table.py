"""The hostile table of issue 21: every generic mode of the fakes (tests/hostile_fakes.py), applied to
every kind of answer, for every verb that reads that kind; then a seeded mutation fuzz of the JSON
answers the fakes serve.

A verb is listed once in ``VERBS`` with the kinds of answer it reads (checked against a clean run),
and inherits every mode of those kinds. Each case runs ``zeroimage.main(argv)`` in a forked child of
this process (the deadlines in PATCHES shrunk) and must: exit 0 in the retry modes (flaky); exit 1
when it met a bent answer it needs (``allowed_exits``: 0 or 1 when the answer can be done without, or
the mode may leave a legal one: a wrong type in an optional field, userinfo in a URL); never a
traceback; never PLANTEDSECRET on stdout or stderr (userinfo cases run with -v); end within
CASE_BOUND seconds (a child still running 10 s later is killed; faulthandler says where it hung);
grow its peak RSS by at most MEMORY_BOUND; leave nothing behind on failure, and on success an output
that tests/speccheck.py accepts.

Cases run JOBS at a time (ZEROIMAGE_HOSTILE_JOBS), their results gathered once per module and
asserted one test per case. ZEROIMAGE_HOSTILE_SAMPLE=1 runs one verb for each mode and kind (what
tests/run gives the oldest and newest Pythons). ZEROIMAGE_HOSTILE_FULL=1 runs the whole cross product (every field with
every wrong type for every verb of its kind, both statuses for every N; by default each field gets one
wrong type and one verb of its kind, in turn, and each N one status per verb, alternating);
ZEROIMAGE_FUZZ_CASES (default 200) and ZEROIMAGE_FUZZ_SEED (default 21, printed) set the fuzz.
Retry waits are recorded at their full length (their sum is checked against MAX_RETRY_SECONDS) but
slept at WAIT_SCALE of it (ZEROIMAGE_HOSTILE_REAL_TIME=1: in full), so Retry-After: 1 on every 2nd
request stays fast. ZEROIMAGE_HOSTILE_PROGRESS=FILE and ZEROIMAGE_HOSTILE_RESULTS=FILE write a line a
case as it ends, and every result as JSON lines; ``python3 tests/test_hostile_table.py NAME...`` runs
single cases and prints what they printed.
"""

import contextlib
import itertools
import os
import random
import sys
import time

import pytest

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import zeroimage  # noqa: E402
import hostile_fakes  # noqa: E402
from hostile_fakes import (ENGINE_KINDS, FIELDS, SECRET, WRONG_VALUES, Case, Fault, FakeEngine, FakeRegistry,
                           run_cases, tiny_elf)
from imagetools import LayoutBuilder
import fuzz  # noqa: E402

# The deadlines shrunk for the table (names the guards of issue 21 use; set even before they exist).
PATCHES = {
    "STALL_TIMEOUT": 0.5,           # seconds with no byte before an answer is given up
    "ANSWER_DEADLINE": 1.0,         # seconds for a whole capped answer
    "ENGINE_STALL_TIMEOUT": 0.5,    # seconds an engine stream may stay silent
    "MAX_PAGES": 20,                # pages of one list
    "MAX_PAGE_ITEMS": 2000,         # items of one list
    "MAX_RETRY_SECONDS": 60.0,      # the README's budget, as it is
}
CASE_BOUND = float(os.environ.get("ZEROIMAGE_HOSTILE_BOUND") or 30)     # seconds a case may take (killed at +10 s)
MEMORY_BOUND = 80 * 1024            # KiB the peak RSS may grow by during a case (huge bodies are 100 MB)
JOBS = int(os.environ.get("ZEROIMAGE_HOSTILE_JOBS") or 6)     # most cases wait on a fake, not a core
FULL = os.environ.get("ZEROIMAGE_HOSTILE_FULL") == "1"
# One verb for each mode and kind (in turn), and a quarter of the flaky cases: what tests/run gives the
# oldest and newest Pythons. Which verbs reach the guards is the same code everywhere; what differs from
# one Python to another is the standard library under them (http.client, json, ssl), met by every mode
# on every kind all the same.
SAMPLE = os.environ.get("ZEROIMAGE_HOSTILE_SAMPLE") == "1" and not FULL
WAIT_SCALE = 1.0 if os.environ.get("ZEROIMAGE_HOSTILE_REAL_TIME") == "1" else 0.05
FUZZ_CASES = int(os.environ.get("ZEROIMAGE_FUZZ_CASES") or 200)
FUZZ_SEED = int(os.environ.get("ZEROIMAGE_FUZZ_SEED") or 21)

R = "{R}"       # the fake registry's host:port in an argv

# verb -> (argv, the output it writes or None, the kinds of answer it reads). Kinds of a registry:
# manifest, index, config, blob, tags, referrers, token, error, upload; of an engine: ping, version,
# load, export, image. test_every_verb_reads_the_kinds_it_lists checks the kinds against a clean run.
VERBS = {
    "build --from": (["build", "--from", R + "/base:1", "-o", "out.tar", "hello"], "out.tar",
                     ("manifest", "index", "config", "blob", "token", "error")),
    "build --push": (["build", "--from", "scratch", "--push", R + "/app:1", "hello"], None,
                     ("token", "error", "upload")),
    # a base whose zstd layer it must read (the program goes under /usr/local/bin): read where Python has
    # compression.zstd (before 3.14: backports.zstd standing in for it, when installed), else refused (exit 1)
    "build --from zstd": (["build", "--from", R + "/zbase:1", "--target", "/usr/local/bin/hello", "-o", "out.tar",
                           "hello"], "out.tar", ("manifest", "index", "config", "blob", "token", "error")),
    "build --from --push": (["build", "--from", R + "/base:1", "--push", R + "/app:1", "hello"], None,
                            ("manifest", "index", "config", "blob", "token", "error", "upload")),
    "pull -o": (["pull", R + "/base:1", "-o", "out.tar"], "out.tar",      # referrers: to say which stay behind
                ("manifest", "index", "config", "blob", "referrers", "token", "error")),
    # inspect reads no layer unless asked (--build-info: the program's, for its build info)
    "inspect --build-info": (["inspect", "--build-info", R + "/base:1"], None,
                             ("manifest", "index", "config", "blob", "referrers", "token", "error")),
    "inspect --json": (["inspect", "--json", R + "/base:1"], None,
                       ("manifest", "index", "config", "referrers", "token", "error")),
    "inspect --sbom": (["inspect", "--sbom", R + "/base:1"], None,
                       ("manifest", "index", "config", "blob", "referrers", "token", "error")),
    "digest": (["digest", R + "/base:1"], None, ("index", "token", "error")),
    "export -o": (["export", R + "/base:1", "-o", "out.tar"], "out.tar",
                  ("manifest", "index", "config", "blob", "token", "error")),
    "inspect --files": (["inspect", "--files", R + "/base:1"], None,
                        ("manifest", "index", "config", "blob", "token", "error")),
    "copy": (["copy", R + "/base:1", R + "/copy:1"], None,       # referrers: to say which stay behind
             ("manifest", "index", "config", "blob", "referrers", "token", "error", "upload")),
    "copy --referrers": (["copy", "--referrers", R + "/base:1", R + "/copy:1"], None,
                         ("manifest", "index", "config", "blob", "referrers", "token", "error", "upload")),
    "push": (["push", "image.tar", R + "/pushed:1"], None, ("token", "error", "upload")),
    # the changes: the source and the bases read from the registry (the layers read too when written
    # to an archive, or read for the parents of what append adds), the result pushed or written
    "mutate": (["mutate", "--env", "A=b", "--push", R + "/mutated:1", R + "/base:1"], None,    # (no mounts here)
               ("manifest", "index", "config", "blob", "token", "error", "upload")),
    "append": (["append", "--add", "hello:/usr/local/bin/hello", "-o", "out.tar", R + "/base:1"], "out.tar",
               ("manifest", "index", "config", "blob", "token", "error")),
    "rebase": (["rebase", "--old-base", R + "/base:1", "--base", R + "/base:1", "--push", R + "/rebased:1",
                R + "/base:1"], None, ("manifest", "index", "config", "blob", "token", "error", "upload")),
    "rebase -o": (["rebase", "--old-base", R + "/base:1", "--base", R + "/base:1", "-o", "out.tar", R + "/base:1"],
                  "out.tar", ("manifest", "index", "config", "blob", "token", "error")),
    "tags": (["tags", R + "/base"], None, ("tags", "token", "error")),
    # every tag of base (1, 2, latest: two pages) copied to another repository, as copy copies one
    "sync": (["sync", R + "/base", R + "/synced"], None,
             ("manifest", "index", "config", "blob", "tags", "token", "error", "upload")),
    "tag": (["tag", R + "/base:1", "new"], None, ("index", "token", "error", "upload")),
    "delete": (["delete", R + "/base:1"], None, ("index", "token", "error")),
    "login": (["login", "-u", hostile_fakes.USER, "-p", hostile_fakes.PASSWORD, R], None, ("token", "error")),
    # engine verbs
    "build --load": (["build", "--load", "-t", "app:1", "hello"], None, ("ping", "version", "load", "image")),
    "build --from docker-daemon": (["build", "--from", "docker-daemon:base:1", "-o", "out.tar", "hello"], "out.tar",
                                   ("ping", "export")),
    "pull --load": (["pull", "--load", R + "/base:1"], None,
                    ("manifest", "index", "config", "blob", "token", "error", "ping", "version", "load", "image")),
    # docker-daemon: wherever an image can be (issue 25): the engine's export read, an image loaded
    "inspect docker-daemon": (["inspect", "--json", "--build-info", "docker-daemon:base:1"], None, ("ping", "export")),
    "copy docker-daemon -o": (["copy", "docker-daemon:base:1", "out.tar"], "out.tar", ("ping", "export")),
    "push docker-daemon": (["push", "docker-daemon:base:1", R + "/pushed:1"], None,
                           ("ping", "export", "token", "error", "upload")),
    "copy to docker-daemon": (["copy", R + "/base:1", "docker-daemon:copied:1"], None,
                              ("manifest", "index", "config", "blob", "token", "error", "ping", "version", "load",
                               "image")),
}

# mode -> the kinds it applies to, and the exits allowed when it bent an answer the verb read (a bent
# answer the verb needs is an error; one it can do without may leave exit 0, bounded all the same)
MODES = {
    "self-next": ("tags", "referrers"),
    "endless": ("tags", "referrers"),
    "huge": ("manifest", "index", "config", "blob", "tags", "referrers", "token", "error", "upload",
             "ping", "version", "load", "export", "image"),
    "lying": ("manifest", "index", "config", "blob", "tags", "referrers", "token", "error", "upload",
              "ping", "version", "load", "export", "image"),
    "drip": ("manifest", "index", "config", "tags", "referrers", "token", "error", "upload",
             "ping", "version", "load", "image"),
    "types": tuple(FIELDS),
    "userinfo": ("token", "upload", "manifest", "index", "config", "blob", "tags", "referrers"),
    "damaged-layer": ("blob",),
    "bomb-layer": ("blob",),
}
# modes that bend what a layer holds, not how it is answered: for the verbs that decompress that layer;
# the wrong types go to the verbs in turn as before the zstd verb came (its JSON is read as build --from's)
MODE_VERBS = {"damaged-layer": ("build --from zstd",), "bomb-layer": ("build --from zstd",),
              "types": tuple(verb for verb in VERBS if verb != "build --from zstd")}
ZSTD_VERBS = ("build --from zstd",)


def _zstd_stand_in():
    """The module that reads zstd here: compression.zstd (3.14+), else backports.zstd (None: neither)."""
    for name in ("compression.zstd", "backports.zstd"):
        try:
            return __import__(name, fromlist=["x"])
        except ImportError:
            pass
    return None


ZSTD_READABLE = _zstd_stand_in() is not None
FLAKY = [(n, status) for n in (2, 3, 4) for status in (503, 429)]

# The answers a verb cannot do without: bent by huge, lying, drip, self-next or endless, they end it
# with exit 1. Every other answer (an error body beside its status and challenge, an upload answer's
# body, the engine's ping, version, image, its progress stream and export: a real archive followed by
# zeros for huge, a byte at a time for drip) may leave exit 0: only the bounds count.
NEEDED = ("manifest", "index", "config", "blob", "tags", "referrers", "token")
ALLOWED = {
    # plain inspect shows "Referrers: unknown (why)" and goes on; it reads layers for build info only
    ("inspect --build-info", "referrers"): {0, 1}, ("inspect --json", "referrers"): {0, 1},
    ("inspect --build-info", "blob"): {0, 1},
    # plain copy lists the referrers only to say which stay behind: unreadable, it says nothing (-v: why)
    ("copy", "referrers"): {0, 1}, ("pull -o", "referrers"): {0, 1},      # pull too: it copies none
    # a blob read to the size its descriptor gives: the 10 missing bytes may go unread
    ("lying", "blob"): {0, 1},
    # a bomb is a valid layer: read in bounded memory and time, the image is built
    ("bomb-layer", "blob"): {0},
}


def allowed_exits(mode, kind, verb):
    if verb in ZSTD_VERBS and not ZSTD_READABLE:
        return {1}          # "cannot read the base's layer ...: it is zstd-compressed and this Python ..."
    if mode in ("types", "userinfo", "fuzz"):
        return {0, 1}
    if mode in ("pass", "flaky"):
        return {0}
    return ALLOWED.get((verb, kind)) or ALLOWED.get((mode, kind)) or ({1} if kind in NEEDED else {0, 1})


def _archive(path):
    """An OCI archive of the tiny program's image (for push ARCHIVE REF)."""
    b = LayoutBuilder()
    desc = b.image([[("hello", "file", tiny_elf(), 0o755)]], {"config": {"Entrypoint": ["/hello"]}})
    desc["annotations"] = {"org.opencontainers.image.ref.name": "1"}
    b.write_tar(path, [desc])


# blobs.json in the cache directory (zeroimage.BlobPlaces: where blobs were seen, read by every push),
# hostile: whatever is there, a push or a copy ends as it would without it (a place that is wrong costs
# a mount the registry refuses, then the upload); the file's own table is in tests/test_blob_places.py
BLOB_PLACES = ("garbage", "huge", "types", "a directory", "a FIFO", "stale")
BLOB_PLACES_VERBS = ("push", "copy")


def _blob_places_file(kind, path, host, archive):
    """Write the hostile blobs.json of ``kind`` at ``path``; ``stale`` says every blob of ``archive``
    (when there is one) is in another repository of the registry at ``host``, which holds none."""
    if kind == "a directory":
        os.mkdir(path)
        return
    if kind == "a FIFO":
        os.mkfifo(path)
        return
    import json
    import tarfile
    digests = []
    if archive is not None:
        with tarfile.open(archive) as tar:
            digests = ["sha256:" + m.name.rsplit("/", 1)[1] for m in tar.getmembers()
                       if m.isfile() and m.name.startswith("blobs/sha256/")]
    stale = {"version": 1, "registries": {host: {d: ["elsewhere/repo", "base"] for d in digests}}}
    data = {"garbage": b"\x00{]\xff" * 100, "huge": b" " * (zeroimage.BlobPlaces.MAX_FILE + 1),
            "types": json.dumps({"version": 1, "registries": {host: {"sha256:" + "0" * 64: [1, None]}}}).encode(),
            "stale": json.dumps(stale).encode()}[kind]
    with open(path, "wb") as f:
        f.write(data)


def _preparer(verb, fault_registry=None, fault_engine=None, verbose=False, places=None):
    argv, output, kinds = VERBS[verb]

    def prepare(case):
        registry = FakeRegistry(fault_registry)
        engine = FakeEngine(fault_engine)
        case.fakes = [registry, engine]
        with open(os.path.join(case.workdir, "hello"), "wb") as f:
            f.write(tiny_elf())
        os.chmod(os.path.join(case.workdir, "hello"), 0o755)
        if "image.tar" in argv:
            _archive(os.path.join(case.workdir, "image.tar"))
        home = os.path.join(case.logdir, "home")
        os.makedirs(os.path.join(home, "docker"))
        case.argv = [a.replace(R, registry.host) for a in argv] + (["-v"] if verbose else [])
        case.output = os.path.join(case.workdir, output) if output else None
        if argv[0] == "export":     # a filesystem's tar, not an image: judged as such
            case.check_output = fuzz.filesystem_tar_problems
        case.env = {"HOME": home, "DOCKER_CONFIG": os.path.join(home, "docker"), "PATH": os.environ.get("PATH", ""),
                    "ZEROIMAGE_CACHE_DIR": os.path.join(home, "cache"), "DOCKER_HOST": engine.host,
                    "no_proxy": "*", "NO_PROXY": "*", "LANG": "C.UTF-8"}
        if places is not None:
            os.makedirs(case.env["ZEROIMAGE_CACHE_DIR"])
            _blob_places_file(places, os.path.join(case.env["ZEROIMAGE_CACHE_DIR"], "blobs.json"), registry.host,
                              os.path.join(case.workdir, "image.tar") if "image.tar" in argv else None)
    return prepare


def _engine_kind(kind):
    return kind in ENGINE_KINDS


def _case(mode, kind, verb, fault, expect, verbose=False, name=None):
    registry_fault = fault if kind is None or not _engine_kind(kind) else None
    engine_fault = fault if kind is not None and _engine_kind(kind) else None
    places = kind if mode == "blob-places" else None
    return Case(name or "%s/%s/%s" % (mode, kind or "all", verb),
                _preparer(verb, registry_fault, engine_fault, verbose, places), CASE_BOUND, expect,
                {"mode": mode, "kind": kind, "verb": verb})


def table_cases():
    cases = [_case("pass", None, verb, Fault(), allowed_exits("pass", None, verb)) for verb in VERBS]
    for mode, kinds in MODES.items():
        for kind in kinds:
            readers = [verb for verb, (_, _, read) in VERBS.items() if kind in read and verb in
                       MODE_VERBS.get(mode, VERBS)]
            verbose = mode == "userinfo"    # -v shows every request and auth step: more places to leak
            if not readers:
                continue
            if mode != "types":
                for verb in ([readers[len(cases) % len(readers)]] if SAMPLE else readers):
                    cases.append(_case(mode, kind, verb, Fault(mode, kind), allowed_exits(mode, kind, verb), verbose))
                continue
            turn, values = itertools.cycle(readers), itertools.cycle(WRONG_VALUES)
            pairs = itertools.product(FIELDS[kind], WRONG_VALUES) if FULL else \
                ((path, next(values)) for path in FIELDS[kind])
            for path, value in pairs:
                for verb in (readers if FULL else [next(turn)]):
                    field = ".".join(str(p) for p in path) or "(whole)"
                    cases.append(_case(mode, kind, verb, Fault(mode, kind, field=path, value=value), {0, 1},
                                       name="types/%s.%s=%s/%s" % (kind, field, value, verb)))
    registry_verbs = [verb for verb in VERBS if not set(VERBS[verb][2]) <= set(ENGINE_KINDS)]
    for i, verb in enumerate(registry_verbs):
        for n, status in FLAKY:
            if FULL or status == (503, 429)[(i + n) % 2] and not (SAMPLE and i % 3 != n - 2):
                cases.append(_case("flaky", None, verb, Fault("flaky", every=n, status=status),
                                   allowed_exits("flaky", None, verb),
                                   name="flaky-%d-every-%d/all/%s" % (status, n, verb)))
    for i, kind in enumerate(BLOB_PLACES):
        verb = "push" if kind == "stale" else BLOB_PLACES_VERBS[i % len(BLOB_PLACES_VERBS)]
        cases.append(_case("blob-places", kind, verb, Fault(), {0}, verbose=kind == "stale"))
    return cases


FUZZ_KINDS = ("manifest", "index", "config", "tags", "referrers", "token", "error", "version", "load", "image")


def fuzz_cases():
    rng = random.Random(FUZZ_SEED)
    cases = []
    for i in range(FUZZ_CASES):
        kind = FUZZ_KINDS[i % len(FUZZ_KINDS)]
        readers = [v for v, (_, _, read) in VERBS.items() if kind in read]
        if not readers:
            continue
        verb = rng.choice(readers)
        seed = "%d-%d" % (FUZZ_SEED, i)
        cases.append(_case("fuzz", kind, verb, Fault("fuzz", kind, seed=seed), allowed_exits("fuzz", kind, verb),
                           name="fuzz-%s/%s/%s" % (seed, kind, verb)))
    return cases


TABLE = {case.name: case for case in table_cases()}
FUZZ = {case.name: case for case in fuzz_cases()}


def _selected(request, names):
    """The cases of this module the session will run (other modules' parameters may be named alike)."""
    wanted = set()
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        name = params.get("name")
        if getattr(item, "module", None) is request.module and isinstance(name, str) and name in names:
            wanted.add(name)
    return wanted


def _say(case):
    """With ZEROIMAGE_HOSTILE_PROGRESS=FILE, a line for each case as it ends."""
    progress = os.environ.get("ZEROIMAGE_HOSTILE_PROGRESS")
    if progress:
        r = case.result
        with open(progress, "a") as f:
            f.write("%-75s exit %s %5.1fs%s %s\n" % (case.name, r.get("code"), r["elapsed"],
                                                    " KILLED" if r["killed"] else "", check(case)))


def _dump(cases, names):
    """With ZEROIMAGE_HOSTILE_RESULTS=FILE, every case's result and verdict added to FILE (JSON lines)."""
    path = os.environ.get("ZEROIMAGE_HOSTILE_RESULTS")
    if path:
        import json
        with open(path, "a") as f:
            for name in sorted(names):
                case = cases[name]
                r = dict(case.result, stdout=case.result["stdout"][-2000:], stderr=case.result["stderr"][-2000:])
                f.write(json.dumps({"name": name, "info": case.info, "verdict": check(case), "result": r}) + "\n")


@contextlib.contextmanager
def _zstd_in_children():
    """Before Python 3.14, backports.zstd stands in for compression.zstd in the forked children (as
    compression.zstd, only while the cases run): the zstd verbs read their layer as 3.14 does."""
    if "compression.zstd" in sys.modules or not ZSTD_READABLE or _zstd_stand_in().__name__ == "compression.zstd":
        yield
        return
    sys.modules["compression.zstd"] = _zstd_stand_in()
    try:
        yield
    finally:
        del sys.modules["compression.zstd"]


@pytest.fixture(scope="module")
def table_results(request):
    """Every selected case of the table, run once (JOBS at a time)."""
    names = _selected(request, TABLE) | {n for n in TABLE if n.startswith("pass/")}
    started = time.monotonic()
    with _zstd_in_children():
        run_cases([TABLE[n] for n in sorted(names)], PATCHES, JOBS, WAIT_SCALE, _say)
    print("\nhostile table: %d cases in %.0fs" % (len(names), time.monotonic() - started))
    _dump(TABLE, names)
    return TABLE


@pytest.fixture(scope="module")
def fuzz_results(request):
    names = _selected(request, FUZZ)
    started = time.monotonic()
    print("\nfuzz seed %d, %d cases (ZEROIMAGE_FUZZ_SEED, ZEROIMAGE_FUZZ_CASES)" % (FUZZ_SEED, len(names)))
    with _zstd_in_children():
        run_cases([FUZZ[n] for n in sorted(names)], PATCHES, JOBS, WAIT_SCALE, _say)
    print("fuzz: %d cases in %.0fs" % (len(names), time.monotonic() - started))
    _dump(FUZZ, names)
    return FUZZ


def check(case):
    """The rules every case keeps; the reasons it broke them, as one string (empty when it held)."""
    r = case.result
    problems = []
    last = (r.get("traceback") or "").strip().splitlines()[-1:] or [""]
    if r["killed"]:
        problems.append("killed after %.0fs (no end within the bound)%s" % (
            r["elapsed"], ", hung in zeroimage.py %s" % " < ".join(r["hung_in"]) if r.get("hung_in") else ""))
    elif r.get("traceback"):
        problems.append("traceback: %s" % last[0])
    if "Traceback" in r["stderr"]:
        problems.append("traceback on stderr: %s" % [l for l in r["stderr"].splitlines() if l.strip()][-1])
    for stream in ("stdout", "stderr"):
        if SECRET in r[stream]:
            problems.append("%s shows %s" % (stream, SECRET))
    code = r.get("code")
    hit = sum(r.get("hits") or [0]) > 0
    allowed = case.expect if (hit or case.info["mode"] in ("pass", "flaky") or not ZSTD_READABLE and
                              case.info["verb"] in ZSTD_VERBS) else {0}
    if not r["killed"] and code not in allowed:
        error = [l for l in r["stderr"].splitlines() if "error" in l][-1:] or \
            [" | ".join(r["stderr"].strip().splitlines()[-2:])[-200:]]
        problems.append("exit %s, not %s%s: %s" % (code, "/".join(map(str, sorted(allowed))),
                                                   "" if hit else " (the fault was never met)", error[0][:300]))
    if code == 1:
        lines = r["stderr"].rstrip("\n").split("\n")
        if not lines[-1].startswith("zeroimage: error: "):
            problems.append("exit 1 without a last line 'zeroimage: error: ...': %r" % lines[-1][:200])
    if r["elapsed"] > CASE_BOUND and not r["killed"]:
        problems.append("took %.1fs (bound %.0fs)" % (r["elapsed"], CASE_BOUND))
    growth = (r.get("rss_peak") or 0) - (r.get("rss_before") or 0)
    if growth > MEMORY_BOUND:
        problems.append("peak RSS grew by %d MiB" % (growth // 1024))
    if code != 0 and r["left"] and not r["killed"]:
        problems.append("left behind: %s" % r["left"])
    if r.get("problems"):
        problems.append("output breaks the image spec: %s" % r["problems"][:3])
    if r.get("unraisable"):
        problems.append("unraisable: %s" % r["unraisable"][:2])
    if case.info["mode"] == "flaky" and sum(r.get("waits") or []) > zeroimage.MAX_RETRY_SECONDS:
        problems.append("waited %.0fs in retries" % sum(r["waits"]))
    return "; ".join(problems)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_hostile_table(table_results, name):
    case = table_results[name]
    problem = check(case)
    assert not problem, "%s: %s (%.1fs)" % (name, problem, case.result["elapsed"])


@pytest.mark.parametrize("name", sorted(FUZZ))
def test_fuzz_json_answers(fuzz_results, name):
    case = fuzz_results[name]
    problem = check(case)
    assert not problem, "%s: %s (%.1fs)" % (name, problem, case.result["elapsed"])


def test_a_stale_blob_place_costs_a_refused_mount_then_the_upload(table_results):
    """blobs.json says the pushed archive's blobs are in elsewhere/repo of the registry, which holds none
    of them: each is mounted in vain (the fake answers 202, an upload), then uploaded; the push succeeds."""
    case = table_results["blob-places/stale/push"]
    if getattr(case, "result", None) is None:
        pytest.skip("the case did not run in this session")
    r = case.result
    assert r.get("code") == 0 and "was not to be mounted from elsewhere/repo" in r["stderr"], r["stderr"][-2000:]
    assert " 0 mounted" in r["stderr"] and "uploaded" in r["stderr"], r["stderr"][-2000:]


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_verb_reads_the_kinds_it_lists(table_results, verb):
    """The clean run of each verb read every kind VERBS lists for it (so no mode is applied in vain),
    and no kind it read is left out of the list (so no mode is missed)."""
    case = table_results["pass/all/%s" % verb]
    if verb in ZSTD_VERBS and not ZSTD_READABLE:
        pytest.skip("no compression.zstd nor backports.zstd here: %s stops before its layer" % verb)
    read = {k for k, n in case.result["kinds"].items() if n and k in hostile_fakes.REGISTRY_KINDS + ENGINE_KINDS}
    listed = set(VERBS[verb][2])
    assert read == listed, "%s reads %s, VERBS lists %s" % (verb, sorted(read), sorted(listed))


if __name__ == "__main__":
    # python3 tests/test_hostile_table.py NAME...: run those cases and show what each printed
    chosen = [(TABLE.get(n) or FUZZ[n]) for n in sys.argv[1:]]
    with _zstd_in_children():
        done_cases = run_cases(chosen, PATCHES, JOBS, WAIT_SCALE)
    for done in done_cases:
        r = done.result
        print("== %s: exit %s in %.1fs%s\n%s\n-- stdout:\n%s-- stderr:\n%s%s" % (
            done.name, r.get("code"), r["elapsed"], " (killed)" if r["killed"] else "", check(done) or "held",
            r["stdout"][-3000:], r["stderr"][-3000:], r.get("traceback") or ""))
