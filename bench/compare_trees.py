#!/usr/bin/env python3
"""Did a change move gohook's costs? Two checkouts side by side, interleaved, in one run.

    sudo .venv/bin/python bench/compare_trees.py OLD_TREE NEW_TREE [--rounds 5] [--json]

For each round, in a shuffled order of the two trees (so machine drift hits
both alike), each tree's own code measures:

- gosym: 100k random PC lookups with inline expansion on the toolchain's
  `compile` (the worker of bench/bench_gosym.py, in a fresh process);
- attach: seconds from starting `gohook attach --binary BIN --policy P` to
  its "attached" line (compile, load, fill maps, attach every probe), on the
  bpfprobe fixture;
- per call: ns added per hooked call (bench/bench_probe.py's `probe`
  configuration against `none`, one round each).

Prints medians per tree and the NEW/OLD ratio of each median. A tree is any
directory holding a gohook checkout (e.g. `git worktree add /tmp/old REV`);
the C accelerator (`gohook/gosym/_pcvalue*.so`) must be built in both, or
copied from this checkout. Needs root (uprobes).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

import bench_gosym  # noqa: E402
import gofixtures  # noqa: E402

LOOKUPS = 100_000
ATTACH_TIMEOUT = 600.0


def _env(tree: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(tree))


def gosym_lookups(tree: Path) -> float:
    """Seconds for LOOKUPS PC lookups with inline expansion, by the tree's gosym in a fresh process."""
    argv = [sys.executable, "-c", bench_gosym.WORKER, str(bench_gosym.DEFAULT_BINARY), str(LOOKUPS)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, env=_env(tree), cwd=tree).stdout
    return float(json.loads(out)["lookups"])


def attach_seconds(tree: Path, binary: Path, policy: Path) -> float:
    """Seconds from starting the tree's `gohook attach` to its line saying every probe is attached."""
    argv = [sys.executable, "-m", "gohook", "attach", "--binary", str(binary), "--policy", str(policy), "--json"]
    with tempfile.TemporaryFile("w+") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=_env(tree), cwd=tree)
        try:
            while time.monotonic() - t0 < ATTACH_TIMEOUT:
                err.seek(0)
                text = err.read()
                if "gohook: attached" in text:
                    return time.monotonic() - t0
                if proc.poll() is not None:
                    raise RuntimeError(f"{tree}: gohook attach exited {proc.returncode}:\n{text[-2000:]}")
                time.sleep(0.01)
            raise RuntimeError(f"{tree}: gohook attach did not attach within {ATTACH_TIMEOUT:.0f}s")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)


def added_ns_per_call(tree: Path) -> float:
    """ns added per hooked call (probe vs none), one interleaved round of the tree's bench_probe.py."""
    argv = [sys.executable, str(tree / "bench" / "bench_probe.py"), "--rounds", "1", "--configs", "none,probe",
            "--json"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, env=_env(tree), cwd=tree).stdout
    return float(json.loads(out)["added_ns_per_call"]["probe"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    binary = gofixtures.build(max(gofixtures.toolchains(), key=lambda t: t.release), "bpfprobe")
    with tempfile.TemporaryDirectory(prefix="gohook-compare-") as d:
        policy = Path(d) / "policy.yaml"
        policy.write_text("version: 1\naction: kill\nunattributed: allow\ndefault: [all]\n")
        measures = {"gosym_lookups_s": gosym_lookups,
                    "attach_s": lambda t: attach_seconds(t, binary, policy),
                    "added_ns_per_call": added_ns_per_call}
        samples: dict[str, dict[str, list[float]]] = {m: {n: [] for n in trees} for m in measures}
        rng = random.Random(3)
        for r in range(args.rounds):
            for measure, fn in measures.items():
                order = list(trees)
                rng.shuffle(order)
                for name in order:
                    samples[measure][name].append(fn(trees[name]))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    med = {m: {n: statistics.median(v) for n, v in by.items()} for m, by in samples.items()}
    doc = {"trees": {n: str(t) for n, t in trees.items()}, "rounds": args.rounds, "median": med,
           "ratio_new_over_old": {m: v["new"] / v["old"] if v["old"] else float("nan") for m, v in med.items()},
           "samples": samples}
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    print(f"old: {trees['old']}\nnew: {trees['new']}\n{args.rounds} interleaved rounds, medians\n")
    print("| measure | old | new | new / old | samples old | samples new |")
    print("|---|---|---|---|---|---|")
    for m in measures:
        o, n = samples[m]["old"], samples[m]["new"]
        print(f"| {m} | {med[m]['old']:.3f} | {med[m]['new']:.3f} | {doc['ratio_new_over_old'][m]:.2f} | "
              f"{' '.join(f'{v:.3g}' for v in o)} | {' '.join(f'{v:.3g}' for v in n)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
