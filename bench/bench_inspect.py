"""Benchmark `gohook inspect` on a large real binary (default: the toolchain's `compile`, ~28 MB).

Reports, as medians over repeated runs in fresh processes, the wall time of
the whole command and its breakdown (parse, hook sites, disassembly + call
graph + analysis), plus how many functions were disassembled. A second line
measures disassembling *every* function (the full call graph, two worker
processes), which inspect itself does not need: it disassembles only what
module code can reach. Inspect runs with --no-cache (the analysis cache would
answer every run after the first); bench/bench_inspect_real.py measures the
cached runs, on real binaries.

Usage: .venv/bin/python bench/bench_inspect.py [--binary PATH] [--repeat N]
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
DEFAULT_BINARY = CACHE / "go/1.27.3/go/pkg/tool/linux_amd64/compile"

FULL_SCAN = r"""
import json, sys, time
from gohook.gosym import GoBinary
from gohook.static.callgraph import CallGraph
b = GoBinary.open(sys.argv[1]); b.functions
t = time.perf_counter()
g = CallGraph(b); g.scan_all(workers=int(sys.argv[2]))
print(json.dumps({"full_scan": time.perf_counter() - t, "functions": g.scanned}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", type=Path, default=DEFAULT_BINARY)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    walls, parts, scans = [], [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "gohook", "inspect", str(args.binary), "--json", "--no-cache"],
                             capture_output=True, text=True, check=True).stdout
        walls.append(time.perf_counter() - t)
        doc = json.loads(out)
        parts.append(doc["timings"])
        full = subprocess.run([sys.executable, "-c", FULL_SCAN, str(args.binary), "2"], capture_output=True,
                              text=True, check=True).stdout
        scans.append(json.loads(full))
    med = {k: statistics.median(p[k] for p in parts) for k in parts[0]}
    print(f"binary: {args.binary} ({args.binary.stat().st_size / 1e6:.1f} MB), {args.repeat} runs, medians\n")
    print("| measure | median | min - max |")
    print("|---|---|---|")
    print(f"| `gohook inspect --json` wall (target < 3 s) | {statistics.median(walls):.2f} s | "
          f"{min(walls):.2f} - {max(walls):.2f} |")
    for k, v in med.items():
        print(f"| - {k} | {v:.3f} s | |")
    fs = [s["full_scan"] for s in scans]
    print(f"| disassemble every function ({scans[0]['functions']}, 2 workers; not needed by inspect) | "
          f"{statistics.median(fs):.2f} s | {min(fs):.2f} - {max(fs):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
