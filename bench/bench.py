#!/usr/bin/env python3
"""Measure zeroimage against its peers on this machine, in one run.

    python3 bench/bench.py [--runs N] [--skip-containerify]

Starts a local docker-registry, pushes a two-layer Debian-like base made from real files of this
host, then times, interleaved and N times each (medians):

  * build --from <base> --push <same registry> with a large binary (the Docker CLI): zeroimage,
    containerify 4.1.0 (npm) and a skopeo pipeline (skopeo copy, a layer made with tar + gzip, a
    config edited, skopeo copy);
  * pigz -6 -p <cores> over the same binary, the floor for compressing it; the same for a 256 MB
    binary (the Docker CLI six times over) and for a two-platform build of two binaries;
  * the same build + push through a 100 Mbit/s link (tests/registries.py's FaultProxy, "throttle"),
    where uploading while compressing shows: the local registry shares the 2 cores otherwise;
  * an unchanged re-push of the same build (same SOURCE_DATE_EPOCH) against sha256sum of the binary;
  * copy of a ~150 MB two-platform image to another repository of the registry (mounts) and to a
    second registry, and pull --all-platforms of it, against skopeo copy --all;
  * peak memory of every verb (build to an archive, build --push, push, pull, copy) on a 1 GiB
    program of incompressible bytes (and a build of a 10 MB one);
  * python3 zeroimage.pyz --help.

Prints a Markdown table (for README.md). Needs docker-registry, skopeo, pigz and GNU time; npm for
containerify. Nothing here reaches the internet but npm's registry for containerify.
"""

import argparse
import collections
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, ROOT)

import registries  # noqa: E402
from imagetools import LayoutBuilder  # noqa: E402

EPOCH = "1700000000"
LINK_RATE = 12500000        # bytes a second: a 100 Mbit/s link to the registry


def run(cmd, env=None, cwd=None, check=True):
    full = dict(os.environ, **(env or {}))
    proc = subprocess.run([str(c) for c in cmd], env=full, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    if check and proc.returncode != 0:
        raise SystemExit("bench: %s failed:\n%s%s" % (" ".join(map(str, cmd)), proc.stdout, proc.stderr))
    return proc


def timed(cmd, **kwargs):
    started = time.monotonic()
    run(cmd, **kwargs)
    return time.monotonic() - started


def peak_rss_mb(cmd, env=None):
    proc = run(["/usr/bin/time", "-f", "%M"] + list(cmd), env=env)
    return int(proc.stderr.strip().splitlines()[-1]) / 1024.0


def find_binary():
    """The Docker CLI (static or not: only its bytes matter here)."""
    docker = shutil.which("docker")
    if docker:
        return os.path.realpath(docker)
    raise SystemExit("bench: no Docker CLI found (install docker.io, or edit find_binary)")


def concatenated(path, source, times, tail=b""):
    """A large "binary": ``source``'s bytes ``times`` over (compresses as code does), then ``tail``."""
    with open(source, "rb") as f:
        data = f.read()
    with open(path, "wb") as out:
        for _ in range(times):
            out.write(data)
        out.write(tail)
    os.chmod(path, 0o755)
    return path


def real_files_layer(paths, limit):
    """Members for a layer from real files of this host, up to ``limit`` bytes."""
    members, total = [], 0
    for top in paths:
        for root, dirs, files in os.walk(top):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                if os.path.islink(full) or not os.path.isfile(full):
                    continue
                size = os.path.getsize(full)
                if total + size > limit:
                    return members
                members.append((full.lstrip("/"), "file", full, 0o755 if os.access(full, os.X_OK) else 0o644))
                total += size
    return members


def make_images(workdir, zeroimage, registry):
    """Push base:1 (two layers, ~60 MB of real files) and multi:1 (two platforms, ~150 MB)."""
    b = LayoutBuilder()
    base = b.image([real_files_layer(["/usr/lib/x86_64-linux-gnu", "/usr/lib"], 45 << 20),
                    real_files_layer(["/usr/share"], 20 << 20)],
                   {"config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["/bin/sh"]}})
    b.write_dir(os.path.join(workdir, "base"), [dict(base, annotations={"org.opencontainers.image.ref.name": "1"})])
    run([sys.executable, zeroimage, "push", os.path.join(workdir, "base"), "%s/base:1" % registry])
    m = LayoutBuilder()
    amd = m.image([real_files_layer(["/usr/lib/x86_64-linux-gnu"], 75 << 20)], {"config": {}})
    arm = m.image([real_files_layer(["/usr/share", "/usr/bin"], 75 << 20)], {"config": {}},
                  platform=("linux", "arm64", "v8"))
    top = m.index([amd, arm])
    m.write_dir(os.path.join(workdir, "multi"), [dict(top, annotations={"org.opencontainers.image.ref.name": "1"})])
    run([sys.executable, zeroimage, "push", os.path.join(workdir, "multi"), "%s/multi:1" % registry])


def skopeo_pipeline(workdir, registry, binary, target):
    """What a user scripts with skopeo: pull the base, add a layer made by tar + gzip, push."""
    layout = os.path.join(workdir, "skopeo-layout")
    shutil.rmtree(layout, ignore_errors=True)
    run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://%s/base:1" % registry, "oci:%s:app" % layout])
    layer_dir = os.path.join(workdir, "skopeo-layer")
    shutil.rmtree(layer_dir, ignore_errors=True)
    os.makedirs(layer_dir)
    shutil.copy(binary, os.path.join(layer_dir, "app"))
    tarball = os.path.join(workdir, "layer.tar")
    run(["tar", "--sort=name", "--owner=0", "--group=0", "--mtime=@0", "-C", layer_dir, "-cf", tarball, "app"])
    diff_id = "sha256:" + run(["sha256sum", tarball]).stdout.split()[0]
    run(["gzip", "-6", "-n", "-f", tarball])
    blob = tarball + ".gz"
    digest = run(["sha256sum", blob]).stdout.split()[0]
    blobs = os.path.join(layout, "blobs", "sha256")
    shutil.move(blob, os.path.join(blobs, digest))
    index = json.load(open(os.path.join(layout, "index.json")))
    manifest_desc = index["manifests"][0]
    manifest = json.load(open(os.path.join(blobs, manifest_desc["digest"][7:])))
    config = json.load(open(os.path.join(blobs, manifest["config"]["digest"][7:])))
    config["config"]["Entrypoint"] = ["/app"]
    config["rootfs"]["diff_ids"].append(diff_id)
    config_bytes = json.dumps(config).encode()
    config_digest = hashlib.sha256(config_bytes).hexdigest()
    open(os.path.join(blobs, config_digest), "wb").write(config_bytes)
    manifest["config"] = dict(manifest["config"], digest="sha256:" + config_digest, size=len(config_bytes))
    manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + digest,
                               "size": os.path.getsize(os.path.join(blobs, digest))})
    manifest_bytes = json.dumps(manifest).encode()
    manifest_digest = hashlib.sha256(manifest_bytes).hexdigest()
    open(os.path.join(blobs, manifest_digest), "wb").write(manifest_bytes)
    index["manifests"][0] = dict(manifest_desc, digest="sha256:" + manifest_digest, size=len(manifest_bytes))
    json.dump(index, open(os.path.join(layout, "index.json"), "w"))
    run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:%s:app" % layout, "docker://%s" % target])


C_PIPELINE = r"""
set -eu
location() { tr -d '\r' | sed -n 's/^[Ll]ocation: *//p' | tail -n 1; }
absolute() { case "$1" in http*) echo "$1" ;; *) echo "http://$REGISTRY$1" ;; esac; }
url=$(absolute "$(curl -sf -o /dev/null -D - -X POST "http://$REGISTRY/v2/$REPO/blobs/uploads/" | location)")
rm -f "$WORK/sum.fifo"; mkfifo "$WORK/sum.fifo"
sha256sum < "$WORK/sum.fifo" > "$WORK/sum" &
tar --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$DIR" -cf - app | pigz -6 -n -p "$CORES" | tee "$WORK/sum.fifo" \
    | curl -sf -o /dev/null -D "$WORK/patch" -X PATCH -H 'Content-Type: application/octet-stream' -T - "$url"
wait
url=$(absolute "$(location < "$WORK/patch")")
case "$url" in *\?*) sep='&' ;; *) sep='?' ;; esac
curl -sf -o /dev/null -X PUT "$url${sep}digest=sha256:$(cut -d' ' -f1 "$WORK/sum")"
"""


def c_pipeline(workdir, registry, app_dir, repository, cores):
    """The new layer's work done by C programs: tar | pigz | curl, the layer streamed into the registry
    while it is compressed and hashed on the way (tee into sha256sum), then the PUT with its digest.
    No manifest, no base: the floor for the part of build + push that costs."""
    run(["sh", "-c", C_PIPELINE], env={"REGISTRY": registry, "REPO": repository, "DIR": app_dir,
                                       "WORK": workdir, "CORES": str(cores)})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-containerify", action="store_true")
    parser.add_argument("--readme", metavar="PATH", help="write the table into PATH (README.md) between its "
                                                          "bench markers, besides printing it")
    args = parser.parse_args()
    for tool in ("docker-registry", "skopeo", "pigz", "curl", "file"):
        if not shutil.which(tool):
            raise SystemExit("bench: %s is not installed" % tool)
    workdir = tempfile.mkdtemp(prefix="zeroimage-bench-")
    # zeroimage's caches (layers, where blobs were seen) in the bench's directory, never the user's; each
    # timed build gets an empty one below (a new binary in CI has nothing cached)
    os.environ["ZEROIMAGE_CACHE_DIR"] = os.path.join(workdir, "cache-shared")
    zeroimage = os.path.join(workdir, "zeroimage.pyz")
    run([sys.executable, os.path.join(ROOT, "build_zipapp.py"), "-o", zeroimage])
    binary = find_binary()
    cores = os.cpu_count() or 1
    servers = []

    def registry(name):
        server = registries.RegistryProcess(shutil.which("docker-registry"), os.path.join(workdir, name), "open",
                                            pki={"ca": None})
        servers.append(server)
        return server.host

    host = registry("registry")
    containerify = None
    if not args.skip_containerify and shutil.which("npm"):
        cdir = os.path.join(workdir, "containerify")
        os.makedirs(cdir)
        if run(["npm", "install", "--silent", "--prefix", cdir, "containerify@4.1.0"], check=False).returncode == 0:
            containerify = os.path.join(cdir, "node_modules", ".bin", "containerify")
    second = registry("registry2")
    link = registries.FaultProxy(host, "throttle")
    link.rate = LINK_RATE
    try:
        make_images(workdir, zeroimage, host)
        app_dir = os.path.join(workdir, "app")
        os.makedirs(app_dir)
        shutil.copy(binary, os.path.join(app_dir, "app"))
        big = concatenated(os.path.join(workdir, "big"), binary, max(1, (256 << 20) // os.path.getsize(binary)))
        twin = concatenated(os.path.join(workdir, "twin"), binary, 1, b"another build")
        results = collections.defaultdict(list)
        warm = {"SOURCE_DATE_EPOCH": EPOCH, "ZEROIMAGE_CACHE_DIR": os.path.join(workdir, "cache")}
        zi = [sys.executable, zeroimage]
        run(zi + ["build", "--from", "%s/base:1" % host, "--push", "%s/zi-repush:1" % host,
                  os.path.join(app_dir, "app")], env=warm)
        for i in range(args.runs):
            # a new binary in CI has nothing cached: each timed build gets an empty cache
            cold = {"SOURCE_DATE_EPOCH": EPOCH, "ZEROIMAGE_CACHE_DIR": os.path.join(workdir, "cache-%d" % i)}
            results["zeroimage"].append(timed(zi + ["build", "--from", "%s/base:1" % host, "--push",
                                                    "%s/zi%d:1" % (host, i), os.path.join(app_dir, "app")], env=cold))
            results["c pipeline"].append(timed_call(c_pipeline, workdir, host, app_dir, "c%d" % i, cores))
            results["skopeo pipeline"].append(timed_call(skopeo_pipeline, workdir, host, binary,
                                                         "%s/skopeo%d:1" % (host, i)))
            if containerify:
                results["containerify 4.1.0"].append(timed(
                    [containerify, "--registry", "http://%s/v2/" % host, "--fromImage", "base:1",
                     "--toImage", "cfy%d:1" % i, "--folder", app_dir, "--customContent", "app,/app",
                     "--entrypoint", "/app", "--allowNoPushAuth", "--allowInsecureRegistries"], cwd=app_dir))
            results["pigz"].append(timed(["sh", "-c", "pigz -6 -p %d -c %s > /dev/null" % (cores, binary)]))
            results["big"].append(timed(zi + ["build", "--from", "%s/base:1" % host, "--push",
                                              "%s/big%d:1" % (host, i), big], env=cold))
            results["link"].append(timed(zi + ["build", "--from", "%s/base:1" % link.host, "--push",   # base: mounted
                                               "%s/link%d:1" % (link.host, i), os.path.join(app_dir, "app")], env=cold))
            results["pigz big"].append(timed(["sh", "-c", "pigz -6 -p %d -c %s > /dev/null" % (cores, big)]))
            results["two"].append(timed(zi + ["build", "--push",      # the minimal base: it has every platform
                                              "%s/two%d:1" % (host, i), "--no-platform-check", "--target", "/app",
                                              "linux/amd64=%s" % binary, "linux/arm64=%s" % twin], env=cold))
            results["pigz two"].append(timed(["sh", "-c", "pigz -6 -p %d -c %s %s > /dev/null" % (cores, binary, twin)]))
            results["re-push"].append(timed(zi + ["build", "--from", "%s/base:1" % host, "--push",
                                                  "%s/zi-repush:1" % host, os.path.join(app_dir, "app")], env=warm))
            results["sha256sum"].append(timed(["sha256sum", binary]))
            results["inspect"].append(timed(zi + ["inspect", "%s/zi0:1" % host]))
            results["inspect skopeo"].append(timed(["skopeo", "inspect", "--tls-verify=false",
                                                    "docker://%s/zi0:1" % host]))
            copies(results, zi, host, second, registry("fresh%d" % i), workdir, i)
        for _ in range(10):
            results["help"].append(timed(zi + ["--help"]))
            results["no-op"].append(timed(zi + ["logout", "registry.invalid"], env={"DOCKER_CONFIG": workdir}))
            results["python"].append(timed([sys.executable, "-c", "pass"]))
        repush = run(zi + ["build", "--from", "%s/base:1" % host, "--push", "%s/zi-repush:1" % host,
                           os.path.join(app_dir, "app")], env=warm).stderr
        memory = peak_memory(zi, host, second, workdir)
        table = report(results, memory, repush, binary, cores, args.runs, os.path.getsize(big))
        print(table)
        if args.readme:
            write_between_markers(args.readme, table)
    finally:
        for server in servers:
            server.close()
        link.close()
        shutil.rmtree(workdir, ignore_errors=True)


def copies(results, zi, registry, other, fresh, workdir, i):
    """copy and pull of the two-platform image, zeroimage and skopeo in turn: within the registry (a
    new repository: mounts), again onto what is there, to a registry that has none of it (a new one
    each run: every blob sent), then to another repository of the second registry, where earlier
    copies left the blobs (a tool that remembers where blobs were seen mounts them)."""
    skopeo = ["skopeo", "copy", "--quiet", "--all", "--src-tls-verify=false", "--dest-tls-verify=false"]
    src = "%s/multi:1" % registry
    for key, dst in (("copy same", "%s/{tool}copy%d:1" % (registry, i)),
                     ("copy again", "%s/{tool}copy%d:1" % (registry, i)),
                     ("copy first", "%s/{tool}copy:1" % fresh),
                     ("copy other", "%s/{tool}copy%d:1" % (other, i))):
        results[key].append(timed(zi + ["copy", src, dst.format(tool="z")]))
        results[key + " skopeo"].append(timed(skopeo + ["docker://" + src, "docker://" + dst.format(tool="s")]))
    out = os.path.join(workdir, "pulled.tar")
    results["pull zeroimage"].append(timed(zi + ["pull", "--all-platforms", "-o", out, src]))
    os.unlink(out)
    results["pull skopeo"].append(timed(skopeo[:-1] + ["docker://" + src, "oci-archive:%s" % out]))
    os.unlink(out)


def peak_memory(zi, registry, other, workdir):
    """Peak RSS (MB) of each verb on a 1 GiB program of incompressible bytes (a 10 MB one for a build)."""
    memory = {}
    for size_mb in (10, 1024):
        path = os.path.join(workdir, "random-%d" % size_mb)
        with open(path, "wb") as f:
            for _ in range(size_mb):
                f.write(os.urandom(1 << 20))
        archive = os.path.join(workdir, "mem.tar")
        memory["build %d" % size_mb] = peak_rss_mb(zi + ["build", "--from", "scratch", "--platform", "linux/amd64",
                                                         "-o", archive, path])
        if size_mb == 1024:
            image = "%s/mem-push:1" % registry
            memory["build --push"] = peak_rss_mb(zi + ["build", "--from", "scratch", "--platform", "linux/amd64",
                                                       "--push", "%s/mem-build:1" % registry, path])
            memory["push"] = peak_rss_mb(zi + ["push", archive, image])
            pulled = os.path.join(workdir, "mem-pulled.tar")
            memory["pull"] = peak_rss_mb(zi + ["pull", "-o", pulled, image])
            os.unlink(pulled)
            memory["copy"] = peak_rss_mb(zi + ["copy", image, "%s/mem-copy:1" % other])
            memory["inspect"] = peak_rss_mb(zi + ["inspect", image])
            memory["export"] = peak_rss_mb(zi + ["export", "-o", pulled, image])
            os.unlink(pulled)
            memory["append"] = peak_rss_mb(zi + ["append", "--add", "%s:/etc/motd" % os.path.join(ROOT, "LICENSE"),
                                                 "--push", "%s/mem-append:1" % registry, image])
            memory["mutate"] = peak_rss_mb(zi + ["mutate", "--env", "A=1", "-o", pulled, image])
            os.unlink(pulled)
            memory["sync"] = peak_rss_mb(zi + ["sync", "%s/mem-push" % registry, "%s/mem-sync" % other])
        os.unlink(archive)
        os.unlink(path)
    return memory


MEMORY_VERBS = ("build 1024", "build --push", "push", "pull", "copy", "inspect", "export", "append", "mutate", "sync")


def timed_call(function, *args):
    started = time.monotonic()
    function(*args)
    return time.monotonic() - started


def report(results, memory, repush, binary, cores, runs, big_size):
    """The Markdown table: each row a zeroimage time, its reference measured in the same run, the
    ratio and the target."""
    med = {k: statistics.median(v) for k, v in results.items() if v}
    size = os.path.getsize(binary) / 1e6
    lines = ["Machine: %s, %d cores, Python %s; %d runs each, interleaved, medians; binary: %s (%.0f MB)" % (
        platform.platform(), cores, platform.python_version(), runs, os.path.basename(binary), size), "",
        "| work | zeroimage | reference | ratio | target |", "|---|---|---|---|---|"]

    def row(work, ours, peer, theirs, target, note=""):
        lines.append("| %s | %.2f s%s | %s %.2f s | %.2fx | %s |" % (work, med[ours], note, peer, med[theirs],
                                                                   med[ours] / med[theirs], target))
    pigz = "pigz -6 -p %d" % cores
    row("build + push, %.0f MB binary" % size, "zeroimage", "the C pipeline (tar, pigz, curl)", "c pipeline",
        "<= 1.15x")
    for peer in ("containerify 4.1.0", "skopeo pipeline"):
        if peer in med:
            row("build + push, %.0f MB binary" % size, "zeroimage", peer, peer, "<= 0.4x")
    row("build + push vs compressing the binary", "zeroimage", pigz, "pigz", "")
    row("build + push, %.0f MB binary" % (big_size / 1e6), "big", pigz, "pigz big", "<= 1.2x")
    row("two-platform build + push (two binaries)", "two", pigz + " over both", "pigz two", "<= 1.3x")
    lines.append("| build + push through a 100 Mbit/s link, %.0f MB binary | %.2f s | | | |" % (size, med["link"]))
    said = [line.replace("zeroimage: ", "") for line in repush.strip().splitlines()]
    summary = "nothing sent: the tag names it" if any(" already: nothing sent" in line for line in said) \
        else said[-1].rsplit(" in ", 1)[0]      # (else the blobs' summary: what went, what was skipped)
    row("unchanged re-push", "re-push", "sha256sum", "sha256sum", "<= 1.5x, nothing uploaded", " (%s)" % summary)
    row("inspect of the image built", "inspect", "skopeo inspect", "inspect skopeo", "<= 3x")
    for key, what in (("copy same", "copy, two platforms, to a new repository of the registry"),
                      ("copy again", "the same copy again (all there)"),
                      ("copy first", "copy to a registry holding none of it"),
                      ("copy other", "copy to a new repository of a registry that has its blobs")):
        row(what, key, "skopeo copy --all", key + " skopeo", "<= 1.0x")
    row("pull --all-platforms of it", "pull zeroimage", "skopeo copy --all", "pull skopeo", "<= 0.5x")
    row("zeroimage.pyz --help", "help", "python3 -c pass", "python", "<= 2x")
    row("zeroimage.pyz logout (nothing to do)", "no-op", "python3 -c pass", "python", "<= 2x")
    worst = max(MEMORY_VERBS, key=lambda k: memory[k])
    lines.append("| peak RSS, 1 GiB program: %s (10 MB build: %.0f MB) | at most %.0f MB (%s) | | | <= 64 MB each |"
                 % (" / ".join("%s %.0f" % (k.replace(" 1024", " -o"), memory[k]) for k in MEMORY_VERBS),
                    memory["build 10"], memory[worst], worst.replace(" 1024", " -o")))
    return "\n".join(lines)


BEGIN, END = "<!-- bench/bench.py writes this table -->", "<!-- end of the bench's table -->"


def write_between_markers(path, table):
    """Put ``table`` between the bench markers of ``path`` (README.md), in place of the last one."""
    with open(path) as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        raise SystemExit("bench: %s has no bench markers (%s ... %s)" % (path, BEGIN, END))
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    with open(path, "w") as f:
        f.write(head + BEGIN + "\n" + table + "\n" + END + tail)


if __name__ == "__main__":
    main()
