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
    args = parser.parse_args()
    for tool in ("docker-registry", "skopeo", "pigz", "file"):
        if not shutil.which(tool):
            raise SystemExit("bench: %s is not installed" % tool)
    workdir = tempfile.mkdtemp(prefix="zeroimage-bench-")
    zeroimage = os.path.join(workdir, "zeroimage.pyz")
    run([sys.executable, os.path.join(ROOT, "build_zipapp.py"), "-o", zeroimage])
    binary = find_binary()
    cores = os.cpu_count() or 1
    server = registries.RegistryProcess(shutil.which("docker-registry"), os.path.join(workdir, "registry"), "open",
                                        pki={"ca": None})
    registry = server.host
    containerify = None
    if not args.skip_containerify and shutil.which("npm"):
        cdir = os.path.join(workdir, "containerify")
        os.makedirs(cdir)
        if run(["npm", "install", "--silent", "--prefix", cdir, "containerify@4.1.0"], check=False).returncode == 0:
            containerify = os.path.join(cdir, "node_modules", ".bin", "containerify")
    second = registries.RegistryProcess(shutil.which("docker-registry"), os.path.join(workdir, "registry2"), "open",
                                        pki={"ca": None})
    link = registries.FaultProxy(registry, "throttle")
    link.rate = LINK_RATE
    try:
        make_images(workdir, zeroimage, registry)
        app_dir = os.path.join(workdir, "app")
        os.makedirs(app_dir)
        shutil.copy(binary, os.path.join(app_dir, "app"))
        big = concatenated(os.path.join(workdir, "big"), binary, max(1, (256 << 20) // os.path.getsize(binary)))
        twin = concatenated(os.path.join(workdir, "twin"), binary, 1, b"another build")
        results = collections.defaultdict(list)
        warm = {"SOURCE_DATE_EPOCH": EPOCH, "ZEROIMAGE_CACHE_DIR": os.path.join(workdir, "cache")}
        zi = [sys.executable, zeroimage]
        run(zi + ["build", "--from", "%s/base:1" % registry, "--push", "%s/zi-repush:1" % registry,
                  os.path.join(app_dir, "app")], env=warm)
        for i in range(args.runs):
            # a new binary in CI has nothing cached: each timed build gets an empty layer cache
            cold = {"SOURCE_DATE_EPOCH": EPOCH, "ZEROIMAGE_CACHE_DIR": os.path.join(workdir, "cache-%d" % i)}
            results["zeroimage"].append(timed(zi + ["build", "--from", "%s/base:1" % registry, "--push",
                                                    "%s/zi%d:1" % (registry, i), os.path.join(app_dir, "app")], env=cold))
            results["skopeo pipeline"].append(timed_call(skopeo_pipeline, workdir, registry, binary,
                                                         "%s/skopeo%d:1" % (registry, i)))
            if containerify:
                results["containerify 4.1.0"].append(timed(
                    [containerify, "--registry", "http://%s/v2/" % registry, "--fromImage", "base:1",
                     "--toImage", "cfy%d:1" % i, "--folder", app_dir, "--customContent", "app,/app",
                     "--entrypoint", "/app", "--allowNoPushAuth", "--allowInsecureRegistries"], cwd=app_dir))
            results["pigz"].append(timed(["sh", "-c", "pigz -6 -p %d -c %s > /dev/null" % (cores, binary)]))
            results["big"].append(timed(zi + ["build", "--from", "%s/base:1" % registry, "--push",
                                              "%s/big%d:1" % (registry, i), big], env=cold))
            results["link"].append(timed(zi + ["build", "--from", "%s/base:1" % link.host, "--push",   # base: mounted
                                               "%s/link%d:1" % (link.host, i), os.path.join(app_dir, "app")], env=cold))
            results["pigz big"].append(timed(["sh", "-c", "pigz -6 -p %d -c %s > /dev/null" % (cores, big)]))
            results["two"].append(timed(zi + ["build", "--push",      # the minimal base: it has every platform
                                              "%s/two%d:1" % (registry, i), "--no-platform-check", "--target", "/app",
                                              "linux/amd64=%s" % binary, "linux/arm64=%s" % twin], env=cold))
            results["pigz two"].append(timed(["sh", "-c", "pigz -6 -p %d -c %s %s > /dev/null" % (cores, binary, twin)]))
            results["re-push"].append(timed(zi + ["build", "--from", "%s/base:1" % registry, "--push",
                                                  "%s/zi-repush:1" % registry, os.path.join(app_dir, "app")], env=warm))
            results["sha256sum"].append(timed(["sha256sum", binary]))
            copies(results, zi, registry, second.host, workdir, i)
        for _ in range(10):
            results["help"].append(timed(zi + ["--help"]))
            results["python"].append(timed([sys.executable, "-c", "pass"]))
        repush = run(zi + ["build", "--from", "%s/base:1" % registry, "--push", "%s/zi-repush:1" % registry,
                           os.path.join(app_dir, "app")], env=warm).stderr
        memory = peak_memory(zi, registry, second.host, workdir)
        report(results, memory, repush, binary, cores, args.runs, os.path.getsize(big))
    finally:
        server.close()
        second.close()
        link.close()
        shutil.rmtree(workdir, ignore_errors=True)


def copies(results, zi, registry, other, workdir, i):
    """copy and pull of the two-platform image, zeroimage and skopeo in turn."""
    skopeo = ["skopeo", "copy", "--quiet", "--all", "--src-tls-verify=false", "--dest-tls-verify=false"]
    src = "%s/multi:1" % registry
    results["copy same"].append(timed(zi + ["copy", src, "%s/zcopy%d:1" % (registry, i)]))
    results["copy same skopeo"].append(timed(skopeo + ["docker://" + src, "docker://%s/scopy%d:1" % (registry, i)]))
    results["copy other"].append(timed(zi + ["copy", src, "%s/zcopy%d:1" % (other, i)]))
    results["copy other skopeo"].append(timed(skopeo + ["docker://" + src, "docker://%s/scopy%d:1" % (other, i)]))
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
            memory["build --push"] = peak_rss_mb(zi + ["build", "--from", "scratch", "--platform", "linux/amd64",
                                                       "--push", "%s/mem-build:1" % registry, path])
            memory["push"] = peak_rss_mb(zi + ["push", archive, "%s/mem-push:1" % registry])
            pulled = os.path.join(workdir, "mem-pulled.tar")
            memory["pull"] = peak_rss_mb(zi + ["pull", "-o", pulled, "%s/mem-push:1" % registry])
            os.unlink(pulled)
            memory["copy"] = peak_rss_mb(zi + ["copy", "%s/mem-push:1" % registry, "%s/mem-copy:1" % other])
        os.unlink(archive)
        os.unlink(path)
    return memory


def timed_call(function, *args):
    started = time.monotonic()
    function(*args)
    return time.monotonic() - started


def report(results, memory, repush, binary, cores, runs, big_size):
    med = {k: statistics.median(v) for k, v in results.items() if v}
    size = os.path.getsize(binary) / 1e6
    print("Machine: %s, %d cores, Python %s; %d runs each, interleaved, medians; binary: %s (%.0f MB)\n"
          % (platform.platform(), cores, platform.python_version(), runs, os.path.basename(binary), size))
    print("| work | zeroimage | peer | ratio | target |")
    print("|---|---|---|---|---|")
    row = "| %s | %.2f s | %s %.2f s | %.2fx | %s |"
    zi = med["zeroimage"]
    for peer in ("containerify 4.1.0", "skopeo pipeline"):
        if peer in med:
            print(row % ("build + push, %.0f MB binary" % size, zi, peer, med[peer], zi / med[peer], "<= 0.4x"))
        else:
            print("| build + push, %.0f MB binary | %.2f s | %s: not installed | | <= 0.4x |" % (size, zi, peer))
    pigz = "pigz -6 -p %d" % cores
    print(row % ("build + push vs compressing the binary", zi, pigz, med["pigz"], zi / med["pigz"], "<= 1.15x"))
    print(row % ("build + push, %.0f MB binary" % (big_size / 1e6), med["big"], pigz, med["pigz big"],
                 med["big"] / med["pigz big"], "<= 1.2x"))
    print(row % ("two-platform build + push (two binaries)", med["two"], pigz + " over both", med["pigz two"],
                 med["two"] / med["pigz two"], "<= 1.3x"))
    print("| build + push through a 100 Mbit/s link, %.0f MB binary | %.2f s | | | (see README) |"
          % (size, med["link"]))
    summary = repush.strip().splitlines()[-1].replace("zeroimage: ", "")
    print("| unchanged re-push | %.2f s (%s) | sha256sum %.2f s | %.2fx | <= 2x, nothing uploaded |"
          % (med["re-push"], summary.rsplit(" in ", 1)[0], med["sha256sum"],
             med["re-push"] / med["sha256sum"]))
    for key, what, target in (("copy same", "copy, ~150 MB, 2 platforms, within the registry", "<= 0.3x"),
                              ("copy other", "copy of it to a second registry", "<= 0.7x"),
                              ("pull zeroimage", "pull --all-platforms of it", "<= 0.5x")):
        peer = "pull skopeo" if key == "pull zeroimage" else key + " skopeo"
        print(row % (what, med[key], "skopeo copy --all", med[peer], med[key] / med[peer], target))
    print("| peak RSS, 1 GiB program: build -o / build --push / push / pull / copy (10 MB build) | %s (%.0f MB) "
          "| | | <= 64 MB each |" % (" / ".join("%.0f MB" % memory[k] for k in
                                               ("build 1024", "build --push", "push", "pull", "copy")),
                                     memory["build 10"]))
    print("| zeroimage.pyz --help | %.0f ms | python3 -c pass %.0f ms | | <= 150 ms |"
          % (med["help"] * 1000, med["python"] * 1000))


if __name__ == "__main__":
    main()
