#!/usr/bin/env python3
"""Measure zeroimage against its peers on this machine, in one run.

    python3 bench/bench.py [--runs N] [--skip-containerify]

Starts a local docker-registry, pushes a two-layer Debian-like base made from real files of this
host, then times, interleaved and N times each (medians):

  * build --from <base> --push <same registry> with a large static binary (the Docker CLI when
    installed, else the largest static binary found): zeroimage, containerify 4.1.0 (npm) and a
    skopeo pipeline (skopeo copy, a layer made with tar + gzip, a config edited, skopeo copy);
  * pigz -6 -p <cores> over the same binary, the floor for compressing it;
  * an unchanged re-push of the same build (same SOURCE_DATE_EPOCH) against sha256sum of the binary;
  * pull --all-platforms of a ~150 MB two-platform image against skopeo copy --all;
  * peak memory of a build whose program is 1 GiB, and 10 MB, of incompressible bytes;
  * python3 zeroimage.pyz --help.

Prints a Markdown table (for README.md). Needs docker-registry, skopeo, pigz and GNU time; npm for
containerify. Nothing here reaches the internet but npm's registry for containerify.
"""

import argparse
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
    docker = shutil.which("docker")
    if docker and "statically linked" in run(["file", "-L", docker], check=False).stdout:
        return os.path.realpath(docker)
    raise SystemExit("bench: no large static binary found (install the Docker CLI, or edit find_binary)")


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
    try:
        make_images(workdir, zeroimage, registry)
        app_dir = os.path.join(workdir, "app")
        os.makedirs(app_dir)
        shutil.copy(binary, os.path.join(app_dir, "app"))
        results = {"zeroimage": [], "skopeo pipeline": [], "containerify 4.1.0": [], "pigz": [],
                   "re-push": [], "sha256sum": [], "pull zeroimage": [], "pull skopeo": [], "help": [], "python": []}
        warm = {"SOURCE_DATE_EPOCH": EPOCH, "ZEROIMAGE_CACHE_DIR": os.path.join(workdir, "cache")}
        run([sys.executable, zeroimage, "build", "--from", "%s/base:1" % registry, "--push", "%s/zi-repush:1" % registry,
             os.path.join(app_dir, "app")], env=warm)
        for i in range(args.runs):
            # a new binary in CI has nothing cached: each timed build gets an empty layer cache
            cold = {"SOURCE_DATE_EPOCH": EPOCH, "ZEROIMAGE_CACHE_DIR": os.path.join(workdir, "cache-%d" % i)}
            results["zeroimage"].append(timed([sys.executable, zeroimage, "build", "--from", "%s/base:1" % registry,
                                               "--push", "%s/zi%d:1" % (registry, i), os.path.join(app_dir, "app")],
                                              env=cold))
            results["skopeo pipeline"].append(timed_call(skopeo_pipeline, workdir, registry, binary,
                                                         "%s/skopeo%d:1" % (registry, i)))
            if containerify:
                results["containerify 4.1.0"].append(timed(
                    [containerify, "--registry", "http://%s/v2/" % registry, "--fromImage", "base:1",
                     "--toImage", "cfy%d:1" % i, "--folder", app_dir, "--customContent", "app,/app",
                     "--entrypoint", "/app", "--allowNoPushAuth", "--allowInsecureRegistries"], cwd=app_dir))
            results["pigz"].append(timed(["sh", "-c", "pigz -6 -p %d -c %s > /dev/null" % (cores, binary)]))
            results["re-push"].append(timed([sys.executable, zeroimage, "build", "--from", "%s/base:1" % registry,
                                             "--push", "%s/zi-repush:1" % registry, os.path.join(app_dir, "app")],
                                            env=warm))
            results["sha256sum"].append(timed(["sha256sum", binary]))
            out = os.path.join(workdir, "pulled.tar")
            results["pull zeroimage"].append(timed([sys.executable, zeroimage, "pull", "--all-platforms", "-o", out,
                                                    "%s/multi:1" % registry]))
            os.unlink(out)
            results["pull skopeo"].append(timed(["skopeo", "copy", "--quiet", "--all", "--src-tls-verify=false",
                                                 "docker://%s/multi:1" % registry, "oci-archive:%s" % out]))
            os.unlink(out)
        for _ in range(10):
            results["help"].append(timed([sys.executable, zeroimage, "--help"]))
            results["python"].append(timed([sys.executable, "-c", "pass"]))
        repush = run([sys.executable, zeroimage, "build", "--from", "%s/base:1" % registry, "--push",
                      "%s/zi-repush:1" % registry, os.path.join(app_dir, "app")], env=warm).stderr
        memory = {}
        for size_mb in (10, 1024):
            big = os.path.join(workdir, "random-%d" % size_mb)
            with open(big, "wb") as f:
                for _ in range(size_mb):
                    f.write(os.urandom(1 << 20))
            memory[size_mb] = peak_rss_mb([sys.executable, zeroimage, "build", "--from", "scratch", "--platform",
                                           "linux/amd64", "-o", os.path.join(workdir, "mem.tar"), big])
            os.unlink(big)
        report(results, memory, repush, binary, cores, args.runs)
    finally:
        server.close()
        shutil.rmtree(workdir, ignore_errors=True)


def timed_call(function, *args):
    started = time.monotonic()
    function(*args)
    return time.monotonic() - started


def report(results, memory, repush, binary, cores, runs):
    med = {k: statistics.median(v) for k, v in results.items() if v}
    size = os.path.getsize(binary) / 1e6
    print("Machine: %s, %d cores, Python %s; %d runs each, interleaved, medians; binary: %s (%.0f MB)\n"
          % (platform.platform(), cores, platform.python_version(), runs, os.path.basename(binary), size))
    print("| work | zeroimage | peer | ratio | target |")
    print("|---|---|---|---|---|")
    zi = med["zeroimage"]
    for peer in ("containerify 4.1.0", "skopeo pipeline"):
        if peer in med:
            print("| build + push, %.0f MB binary | %.2f s | %s %.2f s | %.2fx | <= 0.5x |"
                  % (size, zi, peer, med[peer], zi / med[peer]))
        else:
            print("| build + push, %.0f MB binary | %.2f s | %s: not installed | | <= 0.5x |" % (size, zi, peer))
    print("| build + push vs compressing the binary | %.2f s | pigz -6 -p %d %.2f s | %.2fx | <= 1.5x |"
          % (zi, cores, med["pigz"], zi / med["pigz"]))
    summary = repush.strip().splitlines()[-1].replace("zeroimage: ", "")
    print("| unchanged re-push | %.2f s (%s) | sha256sum %.2f s | %.2fx | <= 2x, nothing uploaded |"
          % (med["re-push"], summary.rsplit(" in ", 1)[0], med["sha256sum"],
             med["re-push"] / med["sha256sum"]))
    print("| pull --all-platforms, ~150 MB, 2 platforms | %.2f s | skopeo copy --all %.2f s | %.2fx | <= 1.0x |"
          % (med["pull zeroimage"], med["pull skopeo"], med["pull zeroimage"] / med["pull skopeo"]))
    print("| peak RSS, 1 GiB / 10 MB incompressible program | %.0f MB / %.0f MB | | | <= 64 MB both |"
          % (memory[1024], memory[10]))
    print("| zeroimage.pyz --help | %.0f ms | python3 -c pass %.0f ms | | <= 150 ms |"
          % (med["help"] * 1000, med["python"] * 1000))


if __name__ == "__main__":
    main()
