"""Windows simulated on Linux: ``simulated_windows()`` takes away, for the length of a ``with``, the
POSIX-only facilities Windows' Python lacks, the way it lacks them, so zeroimage's portable paths
run for real here (tests/test_portable.py). os.name, os.sep and os.path stay POSIX: faking them
would change the standard library under the test too; zeroimage's Windows conventions (USERPROFILE,
no execute bit, the engine's named pipe) follow ``zeroimage._WINDOWS``, which it sets (when zeroimage
is imported already; else set it after importing zeroimage inside the block).

Taken away: os.preadv/pread/pwritev/pwrite, os.O_NOFOLLOW, os.fchmod, os.getuid/geteuid/getgid,
os.fork, os.set_blocking on a pipe; socket.AF_UNIX (socketpair made as Windows makes it: two TCP
sockets on loopback); signal.SIGHUP/SIGPIPE/SIGALRM/SIGUSR1, signal.pthread_sigmask, and
signal.set_wakeup_fd given anything but a socket (ValueError, as on Windows); select.select on
anything but sockets (OSError, WinError 10038), the default selector a select() one; the modules
pwd, grp, fcntl, termios, resource and posix (ImportError). The home directory is USERPROFILE
(HOME unset)."""

import contextlib
import errno
import os
import select
import selectors
import signal
import socket
import stat
import sys

import pytest

AF_UNIX = socket.AF_UNIX        # the real one, for the tests' own fakes (the engine's socket)

GONE_FROM_OS = ("preadv", "pread", "pwritev", "pwrite", "O_NOFOLLOW", "fchmod", "getuid", "geteuid", "getgid",
                "getegid", "fork", "forkpty")
GONE_FROM_SIGNAL = ("SIGHUP", "SIGPIPE", "SIGALRM", "SIGUSR1", "SIGUSR2", "pthread_sigmask", "pthread_kill",
                    "setitimer", "alarm")
GONE_MODULES = ("pwd", "grp", "fcntl", "termios", "resource", "posix")


def _is_socket(fd):
    try:
        return stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:
        return False


def _socketpair(family=socket.AF_INET, type=socket.SOCK_STREAM, proto=0):
    """socket.socketpair as Windows' Python makes it: a listener on loopback, a connection to it."""
    with socket.socket(family, type, proto) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        a = socket.socket(family, type, proto)
        try:
            a.connect(listener.getsockname())
            b, _ = listener.accept()
        except BaseException:
            a.close()
            raise
    return a, b


def _only_sockets(real, what):
    def check(fd, *args, **kwargs):
        if fd != -1 and not _is_socket(fd if isinstance(fd, int) else fd.fileno()):
            raise ValueError("the fd %s must be in non-blocking mode" % fd if what == "wakeup" else what)
        return real(fd, *args, **kwargs)
    return check


def _select_sockets_only(real):
    def select_(r, w, x, *timeout):
        for f in list(r) + list(w) + list(x):
            if not _is_socket(f if isinstance(f, int) else f.fileno()):
                raise OSError(errno.ENOTSOCK, "An operation was attempted on something that is not a socket "
                                              "(WinError 10038)")
        return real(r, w, x, *timeout)
    return select_


@contextlib.contextmanager
def simulated_windows(home):
    """Within the block, this process lacks what Windows lacks (the module docstring); ``home`` is the
    user's profile directory (USERPROFILE). Everything is given back on the way out."""
    with pytest.MonkeyPatch.context() as mp:
        for name in GONE_FROM_OS:
            if hasattr(os, name):
                mp.delattr(os, name)
        for name in GONE_FROM_SIGNAL:
            if hasattr(signal, name):
                mp.delattr(signal, name)
        mp.delattr(socket, "AF_UNIX")
        mp.setattr(socket, "socketpair", _socketpair)
        mp.setattr(signal, "set_wakeup_fd", _only_sockets(signal.set_wakeup_fd, "wakeup"))
        mp.setattr(os, "set_blocking", _only_sockets(os.set_blocking, "set_blocking: not a pipe on this Windows"))
        mp.setattr(select, "select", _select_sockets_only(select.select))
        for name in ("poll", "epoll", "devpoll", "kqueue"):
            if hasattr(select, name):
                mp.delattr(select, name)
        mp.setattr(selectors, "DefaultSelector", selectors.SelectSelector)
        mp.setattr(selectors.SelectSelector, "_select", staticmethod(select.select))    # (bound at its import)
        for name in GONE_MODULES:
            mp.setitem(sys.modules, name, None)         # import NAME: ImportError
        zeroimage = sys.modules.get("zeroimage")      # (not imported yet: it is imported under the simulation)
        if zeroimage is not None:
            mp.setattr(zeroimage, "_WINDOWS", True)
            for name, value in list(vars(zeroimage).items()):    # its lazy modules forget what they looked up
                if isinstance(value, zeroimage._LazyModule):
                    mp.setattr(zeroimage, name, zeroimage._LazyModule(value._lazy_name))
        mp.delenv("HOME", raising=False)
        mp.delenv("DOCKER_CONFIG", raising=False)
        mp.setenv("USERPROFILE", str(home))
        yield mp
