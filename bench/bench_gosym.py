"""Benchmark the Go binary reader on a large real binary (the toolchain's `compile`).

Measures, as medians over repeated runs in fresh processes:
  - full parse: all functions, names, modules, build info;
  - 100k PC lookups with inline expansion (random PCs inside random functions,
    treated as return addresses);
  - peak memory (ru_maxrss) of a process doing both;
  - `gohook symbols BIN --json > /dev/null` against `go tool nm BIN > /dev/null`,
    interleaved in the same run.

Usage: .venv/bin/python bench/bench_gosym.py [--binary PATH] [--go PATH] [--repeat N]
Prints a Markdown table; targets from the issue are printed beside each number.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CACHE = Path(os.environ.get("GOHOOK_CACHE", "/var/cache/gohook"))
DEFAULT_GO = CACHE / "go/1.27.3/go/bin/go"
DEFAULT_BINARY = CACHE / "go/1.27.3/go/pkg/tool/linux_amd64/compile"

WORKER = r"""
import json, random, resource, sys, time
from gohook.gosym import GoBinary
path, n = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
b = GoBinary.open(path)
fns = b.functions
mods = [b.module_of(f.name) for f in fns]
info = b.build_info
t1 = time.perf_counter()
rng = random.Random(7)
pcs = []
for _ in range(n):
    f = fns[rng.randrange(len(fns))]
    pcs.append(rng.randrange(f.entry + 1, f.end + 1) if f.end > f.entry + 1 else f.end)
t2 = time.perf_counter()
frames = 0
for pc in pcs:
    frames += len(b.frames(pc))
t3 = time.perf_counter()
t4 = time.perf_counter()
for pc in pcs:
    b.frames(pc)
t5 = time.perf_counter()
print(json.dumps({"parse": t1 - t0, "lookups": t3 - t2, "again": t5 - t4, "functions": len(fns), "frames": frames,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def _accelerator_built() -> bool:
    probe = "import gohook.gosym.pclntab as p; print(p.decode_pctable_c is not None)"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "True"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", type=Path, default=DEFAULT_BINARY)
    ap.add_argument("--go", type=Path, default=DEFAULT_GO)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--lookups", type=int, default=100_000)
    args = ap.parse_args()
    gohook = [sys.executable, "-m", "gohook", "symbols", str(args.binary), "--json"]
    nm = [str(args.go), "tool", "nm", str(args.binary)]
    runs = []
    pure: list[dict[str, float]] = []
    cli_gohook: list[float] = []
    cli_nm: list[float] = []
    worker = [sys.executable, "-c", WORKER, str(args.binary), str(args.lookups)]
    for _ in range(args.repeat):
        runs.append(json.loads(subprocess.run(worker, capture_output=True, text=True, check=True).stdout))
        # the pure-Python PC-table decoder (the fallback without the C accelerator), same run
        env = dict(os.environ, GOHOOK_PURE_PYTHON="1")
        pure.append(json.loads(subprocess.run(worker, capture_output=True, text=True, check=True, env=env).stdout))
        # interleave the two CLIs so machine noise hits both alike
        cli_gohook.append(timed(gohook))
        cli_nm.append(timed(nm))
    keys = ("parse", "lookups", "again", "maxrss_mb")
    med = {k: statistics.median(r[k] for r in runs) for k in keys}
    spread = {k: (min(r[k] for r in runs), max(r[k] for r in runs)) for k in keys}
    pure_med = {k: statistics.median(r[k] for r in pure) for k in keys}
    pure_spread = {k: (min(r[k] for r in pure), max(r[k] for r in pure)) for k in keys}
    accel = "C accelerator" if _accelerator_built() else "C accelerator NOT BUILT: both rows are pure Python"
    g, n = statistics.median(cli_gohook), statistics.median(cli_nm)
    size_mb = args.binary.stat().st_size / 1e6
    print(f"binary: {args.binary} ({size_mb:.1f} MB, {runs[0]['functions']} functions), {args.repeat} runs, medians\n")
    print("| measure | median | min - max | target |")
    print("|---|---|---|---|")
    print(f"| full parse (functions, names, modules, build info) | {med['parse']:.3f} s | "
          f"{spread['parse'][0]:.3f} - {spread['parse'][1]:.3f} | < 0.5 s |")
    print(f"| {args.lookups} PC lookups with inline expansion ({accel}) | {med['lookups']:.3f} s | "
          f"{spread['lookups'][0]:.3f} - {spread['lookups'][1]:.3f} | < 1.0 s |")
    print(f"| the same lookups, pure-Python decoder (GOHOOK_PURE_PYTHON=1) | {pure_med['lookups']:.3f} s | "
          f"{pure_spread['lookups'][0]:.3f} - {pure_spread['lookups'][1]:.3f} | |")
    print(f"| the same lookups again, tables decoded (stack walks repeat call sites) | {med['again']:.3f} s | "
          f"{spread['again'][0]:.3f} - {spread['again'][1]:.3f} | |")
    print(f"| peak memory (parse + lookups) | {med['maxrss_mb']:.0f} MB | "
          f"{spread['maxrss_mb'][0]:.0f} - {spread['maxrss_mb'][1]:.0f} | < 300 MB |")
    print(f"| `gohook symbols --json` | {g:.3f} s | {min(cli_gohook):.3f} - {max(cli_gohook):.3f} | |")
    print(f"| `go tool nm` | {n:.3f} s | {min(cli_nm):.3f} - {max(cli_nm):.3f} | |")
    print(f"| ratio gohook / nm | {g / n:.2f}x | | <= 3x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
