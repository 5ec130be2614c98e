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
PyPI wheels there) plus the large ones of BENCH_DEBS (Debian's prometheus 49.9 MB / 101 modules and hugo
53.5 MB / 107 modules: the issue's "~50 MB Go binary with ~100 modules"), which --fetch downloads
(`apt-get download`, the .deb's sha256 checked against its pin, `dpkg-deb -x`) into
/var/cache/gohook/bench-real/<package>/ for the benchmark only: the tests do not need them. Each row says
whether the issue 17 §6 target holds: first inspect under 3 s and under 300 MB.

gohook's modules are byte-compiled first (compileall), as an installed package is: a child started
with PYTHONDONTWRITEBYTECODE (set on these machines) would otherwise compile them again in every run.

Usage: .venv/bin/python bench/bench_inspect_real.py [BIN ...] [--repeat N] [--fetch]
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

CACHE = Path(os.environ.get("GOHOOK_CACHE", "/var/cache/gohook"))
REAL = (f"{CACHE}/real/*/root/usr/bin/*", f"{CACHE}/real/*/root/*.data/scripts/*")
# package, Debian version, sha256 of the .deb, the binary inside it (Debian bookworm amd64)
BENCH_DEBS = (
    ("prometheus", "2.42.0+ds-5+deb12u1", "81d59a24fce84f7fbe97a45a4f2914b6a5881b5cd1db2a6a0e129e515e1a5f55",
     "usr/bin/prometheus"),
    ("hugo", "0.111.3-1", "6c3508f7b0f0009e6f774806dcb061d9ad24782d71b1688c700c016772df586e", "usr/bin/hugo"),
)
TARGET_S, TARGET_MB = 3.0, 300.0  # issue 17 §6: a first inspect of a ~50 MB binary


@dataclass
class Run:
    """One `gohook inspect` process: wall seconds, CPU seconds (user + system, with its workers), peak RSS in
    MB, and its JSON document."""

    wall: float
    cpu: float
    rss_mb: float
    doc: dict[str, Any] = field(repr=False)


def run_inspect(binary: str, cache_dir: str, no_cache: bool, tree: str | None = None) -> Run:
    """Run inspect in a child process and wait4() it for its peak RSS; `tree`: the gohook checkout to run
    (the child's working directory and PYTHONPATH: `python -m` puts the working directory first on sys.path,
    ahead of PYTHONPATH; default: the installed one)."""
    binary = os.path.abspath(binary)
    argv = [sys.executable, "-m", "gohook", "inspect", binary, "--json"] + (["--no-cache"] if no_cache else [])
    env = dict(os.environ, GOHOOK_ANALYSIS_CACHE=os.path.abspath(cache_dir))
    if tree is not None:
        env["PYTHONPATH"] = tree
    with tempfile.TemporaryFile() as out:
        t = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=tree)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"inspect {binary} exited {proc.returncode}")
        out.seek(0)
        doc = json.loads(out.read())
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, doc)


def bench_deb_path(package: str, inner: str) -> Path:
    return CACHE / "bench-real" / package / "root" / inner


def fetch_bench_debs() -> None:
    """Download and unpack BENCH_DEBS not there yet; a .deb whose sha256 is not its pin is an error."""
    import hashlib
    import shutil

    for package, version, sha256, inner in BENCH_DEBS:
        if bench_deb_path(package, inner).exists():
            continue
        dest = CACHE / "bench-real" / package
        tmp = dest.with_name(package + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        subprocess.run(["apt-get", "download", f"{package}={version}"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        (deb,) = tmp.glob("*.deb")
        got = hashlib.sha256(deb.read_bytes()).hexdigest()
        if got != sha256:
            raise SystemExit(f"{deb}: sha256 {got}, pinned {sha256}")
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "root")], check=True)
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
        print(f"fetched {package} {version} (sha256 checked) into {dest}", file=sys.stderr)


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
    ap.add_argument("--fetch", action="store_true", help="download the pinned BENCH_DEBS first")
    args = ap.parse_args()
    if args.fetch:
        fetch_bench_debs()
    large = [str(p) for p in (bench_deb_path(pkg, inner) for pkg, _v, _s, inner in BENCH_DEBS) if p.exists()]
    binaries = args.binaries or sorted(p for g in REAL for p in glob.glob(g)) + large
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
