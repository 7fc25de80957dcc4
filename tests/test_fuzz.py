"""The seeded mutation fuzzer (tests/fuzz.py) over zeroimage's file inputs: OCI archives, OCI layout
directories, docker save archives and ELF programs with build info (issue 21).

Every case runs every verb that reads its surface in-process (zeroimage.main; of mutate, append,
rebase and rebase-onto, which read through one reader, one in turn) and must end in exit 0,
1 or 2, with no exception escaping main and no traceback printed, each verb within
fuzz.VERB_SECONDS and the process under fuzz.RSS_LIMIT_MB of peak memory; an `inspect --json` that
succeeds prints JSON; a failed verb leaves no output behind; every archive or layout written passes
tests/speccheck.py.  A failure names the case as SURFACE/SEED/INDEX; rerun it alone with

    python3 tests/fuzz.py run SURFACE SEED INDEX            # each verb's exit and problem
    python3 tests/fuzz.py shrink SURFACE SEED INDEX PATH    # fewest mutations that still fail so; input to PATH

The default run is short: a fixed seed and a couple of hundred cases a surface (the seed is in each
test's name).  Run it long, with another seed, with the environment:

    ZEROIMAGE_FUZZ_CASES=5000 ZEROIMAGE_FUZZ_SEED=$RANDOM \\
        python3 -m pytest -q -rA -p no:cacheprovider tests/test_fuzz.py

ZEROIMAGE_FUZZ_CASES sets the cases of every surface; ZEROIMAGE_FUZZ_VERB_SECONDS the deadline of one
verb (default 15).  The counts of exit codes by verb are printed (-rA shows them).  About 12 cases a
second on a 2-core machine: 10 minutes is ZEROIMAGE_FUZZ_CASES=1800.  A case is the same input on the
same Python (the archive bases are written by tarfile, gzip and zeroimage itself, whose bytes may differ
between versions); a saved input (fuzz.py write) is the way to hand one on.
"""

import collections
import os
import resource
import shutil
import sys

import pytest

import fuzz

SEED = int(os.environ.get("ZEROIMAGE_FUZZ_SEED", "20261207"))
DEFAULT_CASES = {"oci-archive": 200, "oci-layout": 200, "docker-save": 200, "elf": 200}


def _cases(surface):
    return int(os.environ.get("ZEROIMAGE_FUZZ_CASES", DEFAULT_CASES[surface]))


@pytest.fixture(autouse=True)
def zstd_where_it_can(monkeypatch):
    """The zstd bases' layers are read where compression.zstd exists (Python 3.14+); before it, with
    backports.zstd standing in for it when installed (without: the verbs that must read them say so, exit 1)."""
    try:
        import compression.zstd  # noqa: F401
    except ImportError:
        try:
            import backports.zstd as module
        except ImportError:
            return
        monkeypatch.setitem(sys.modules, "compression.zstd", module)


@pytest.mark.parametrize("surface", [pytest.param(s, id="%s-seed%d-n%d" % (s, SEED, _cases(s)))
                                     for s in fuzz.SURFACES])
def test_fuzz(surface, tmp_path, spec_checked_outputs):
    failures = collections.OrderedDict()      # signature -> [count, case, verb, argv, detail]
    exits = collections.defaultdict(collections.Counter)

    def check_output(path):
        """conftest's spec check already ran as the output was written: take its problems, to name the case."""
        found = list(spec_checked_outputs)
        del spec_checked_outputs[:]
        return found

    rss = fuzz._rss_mb()
    for index in range(_cases(surface)):
        case = fuzz.make_case(surface, SEED, index)
        work = tmp_path / str(index)
        work.mkdir()
        for result in fuzz.run_case(case, str(work), check_output):
            exits[result.verb][result.code if result.exception is None else result.exception[0]] += 1
            for signature, detail in fuzz.problems(result, rss):
                entry = failures.setdefault(signature, [0, case.id, result.verb, result.argv, detail])
                entry[0] += 1
            rss = result.rss_mb
        shutil.rmtree(str(work), ignore_errors=True)
    print("fuzz %s: seed %d, %d cases; exits by verb:" % (surface, SEED, _cases(surface)))
    for verb, counts in exits.items():
        print("  %-26s %s" % (verb, dict(sorted(counts.items(), key=str))))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print("  peak RSS %d MB" % peak)
    assert not failures, "fuzz %s, seed %d: %d distinct problems (rerun one: python3 tests/fuzz.py run %s %d INDEX)\n%s" % (
        surface, SEED, len(failures), surface, SEED, "\n".join(
            "- %s: %d times; first %s, %s: %s\n    %s" % (sig, n, case_id, verb, " ".join(argv),
                                                        detail.strip().replace("\n", "\n    ")[-1500:])
            for sig, (n, case_id, verb, argv, detail) in failures.items()))
    assert peak < fuzz.RSS_LIMIT_MB, "peak RSS %d MB (seed %d)" % (peak, SEED)
