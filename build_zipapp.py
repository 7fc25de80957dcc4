#!/usr/bin/env python3
"""Pack zeroimage.py into zeroimage.pyz, byte-identical on every run.

    python3 build_zipapp.py [-o PATH]

zipapp.create_archive keeps file mtimes and directory order, so the archive is
written here by hand: sorted entries, a fixed date, fixed permissions.

The archive also holds zeroimage.pyc, compiled by the Python that builds it
(an unchecked-hash .pyc: no timestamp in it). A zipapp cannot cache bytecode, so
without it every run would compile the whole module first (about 14,000 lines: a
quarter of a second on a small CI machine); a Python of another version finds the
magic number wrong and uses zeroimage.py, as before. It is stored, not deflated:
inflating it took longer at every start (8 ms) than its size costs once.
"""

import argparse
import os
import py_compile
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SHEBANG = b"#!/usr/bin/env python3\n"
# A stop signal is taken from the first line, before zeroimage is imported (nothing is written yet:
# it exits at once, 130 or 143); zeroimage._run_program takes over from there.
MAIN = b"""import os
import signal
import sys


def stop_at_once(signum, frame):
    try:
        os.write(2, b"zeroimage: interrupted\\n" if signum == signal.SIGINT else b"zeroimage: terminated\\n")
    finally:
        os._exit(128 + signum)


for signum in (signal.SIGINT, signal.SIGTERM):
    if signal.getsignal(signum) is not signal.SIG_IGN:
        signal.signal(signum, stop_at_once)

import zeroimage  # noqa: E402

sys.exit(zeroimage._run_program())
"""
FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def compiled(source_path):
    with tempfile.TemporaryDirectory() as directory:
        target = os.path.join(directory, "zeroimage.pyc")
        py_compile.compile(source_path, cfile=target, dfile="zeroimage.py", doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        with open(target, "rb") as f:
            return f.read()


def entries():
    source_path = os.path.join(HERE, "zeroimage.py")
    with open(source_path, "rb") as f:
        module = f.read()
    return sorted([("__main__.py", MAIN), ("zeroimage.py", module), ("zeroimage.pyc", compiled(source_path))])


def write_pyz(path):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(SHEBANG)
            with zipfile.ZipFile(f, "w") as archive:
                for name, data in entries():
                    info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
                    # the bytecode is stored as it is: inflating it cost more at every start than the
                    # file's size does once
                    info.compress_type = zipfile.ZIP_STORED if name.endswith(".pyc") else zipfile.ZIP_DEFLATED
                    info.create_system = 3
                    info.external_attr = 0o644 << 16
                    archive.writestr(info, data, compress_type=info.compress_type, compresslevel=9)
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv=None):
    parser = argparse.ArgumentParser(description="Build zeroimage.pyz from zeroimage.py (reproducibly).")
    parser.add_argument("-o", "--output", default=os.path.join(HERE, "zeroimage.pyz"), metavar="PATH",
                        help="where to write the zipapp (default: zeroimage.pyz beside this script)")
    args = parser.parse_args(argv)
    try:
        write_pyz(args.output)
    except OSError as e:
        print("build_zipapp: error: cannot write %s: %s" % (args.output, e.strerror or e), file=sys.stderr)
        return 1
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
