"""A real Docker Engine (Debian's docker.io) for the tests: dockerd on a private socket, data root
and exec root under a short temporary path (unix socket paths are limited to ~107 bytes), vfs
storage, no iptables, no bridge; it starts its own containerd. Stopped after the session."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

DOCKER_CLI = "/usr/bin/docker"      # the package's (another docker may come first on PATH)
START_TIMEOUT = 90


def ping(sock_path):
    """Whether the engine answers GET /_ping on its socket."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(sock_path)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return s.recv(64).split(b"\r\n")[0].split()[1:2] == [b"200"]
    except OSError:
        return False


def short_socket_path(name):
    """A socket path in a new directory of its own under /tmp (short enough for AF_UNIX)."""
    return os.path.join(tempfile.mkdtemp(prefix="zi-%s-" % name, dir="/tmp"), "s.sock")


def wait_for(condition, timeout):
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def stop(proc, grace=30):
    """SIGTERM, wait, then SIGKILL."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextlib.contextmanager
def podman_service(skip):
    """podman's Docker-compatible API (podman system service) on a private socket, for a test:
    yields (the podman program, the socket path); ``skip(reason)`` when it cannot run here."""
    podman = shutil.which("podman")
    if podman is None or os.geteuid() != 0:
        skip("podman system service needs podman and root here")
    sock = short_socket_path("podman")
    service = subprocess.Popen([podman, "system", "service", "--time=0", "unix://" + sock],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        if not wait_for(lambda: ping(sock) or service.poll() is not None, 30) or service.poll() is not None:
            skip("podman system service does not run here: %s" % service.stderr.read(2000).decode(errors="replace"))
        yield podman, sock
    finally:
        stop(service)
        service.stderr.close()
        shutil.rmtree(os.path.dirname(sock), ignore_errors=True)


class DockerEngine:
    def __init__(self, dockerd):
        self.root = tempfile.mkdtemp(prefix="zi-dockerd-", dir="/tmp")
        self.sock = os.path.join(self.root, "d.sock")
        self.host = "unix://" + self.sock
        self.log_path = os.path.join(self.root, "dockerd.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [dockerd, "--host", self.host, "--data-root", os.path.join(self.root, "data"),
                 "--exec-root", os.path.join(self.root, "exec"), "--pidfile", os.path.join(self.root, "dockerd.pid"),
                 "--storage-driver", "vfs", "--iptables=false", "--ip6tables=false", "--bridge=none"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        if not wait_for(lambda: ping(self.sock) or self.proc.poll() is not None, START_TIMEOUT) \
                or self.proc.poll() is not None:
            log_text = self.log()
            self.close()
            raise RuntimeError("dockerd did not start: %s" % log_text[-2000:])

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    @property
    def env(self):
        return {"DOCKER_HOST": self.host}

    def docker(self, *args, input=None, check=True, timeout=180):
        """The docker CLI against this engine; its stdout."""
        proc = subprocess.run([DOCKER_CLI, "-H", self.host] + [str(a) for a in args], input=input,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if check:
            assert proc.returncode == 0, "docker %s failed: %s%s" % (args[0], proc.stdout, proc.stderr.decode(errors="replace"))
        return proc.stdout.decode(errors="replace")

    def inspect(self, name):
        return json.loads(self.docker("image", "inspect", name))[0]

    def run(self, image, *args):
        return self.docker("run", "--rm", "--network", "none", image, *args)

    def close(self):
        stop(self.proc)
        # containers' mounts are gone with dockerd; vfs data is plain files
        shutil.rmtree(self.root, ignore_errors=True)
