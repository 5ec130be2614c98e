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
copied from this checkout: without it gosym silently falls back to pure
Python, so the script refuses to compare such a tree. Needs root (uprobes).

A round takes about 40 s here (two attaches, two compiles of bench_probe's
program, two gosym runs), 5 rounds 3-4 minutes, more on a loaded machine:
run it in the background rather than under a tool's 10-minute wait. Each
measurement prints a progress line on stderr, and each has its own time
limit (a stalled child is an error naming the tree and the measure, not a
silent hang); --measures picks a subset.
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
ATTACH_TIMEOUT = 300.0  # seconds: compile + load + attach, about 10 s here
CHILD_TIMEOUT = 600.0  # seconds: one gosym worker or one bench_probe round, about 3 s and 10 s here
MEASURES = ("gosym_lookups_s", "attach_s", "added_ns_per_call")


def _env(tree: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(tree))


def gosym_lookups(tree: Path) -> float:
    """Seconds for LOOKUPS PC lookups with inline expansion, by the tree's gosym in a fresh process."""
    argv = [sys.executable, "-c", bench_gosym.WORKER, str(bench_gosym.DEFAULT_BINARY), str(LOOKUPS)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, env=_env(tree), cwd=tree,
                         timeout=CHILD_TIMEOUT).stdout
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
    out = subprocess.run(argv, capture_output=True, text=True, check=True, env=_env(tree), cwd=tree,
                         timeout=CHILD_TIMEOUT).stdout
    return float(json.loads(out)["added_ns_per_call"]["probe"])


def check_tree(tree: Path) -> str | None:
    """Why tree cannot be compared, or None."""
    if not (tree / "gohook" / "__main__.py").is_file():
        return f"{tree}: not a gohook checkout"
    if not list((tree / "gohook" / "gosym").glob("_pcvalue*.so")):
        return (f"{tree}: gohook/gosym/_pcvalue*.so is not built (gosym would run in pure Python): "
                f"cp {ROOT}/gohook/gosym/_pcvalue*.so {tree}/gohook/gosym/")
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--measures", default=",".join(MEASURES), help="comma-separated subset of " + ", ".join(MEASURES))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    chosen = [m for m in args.measures.split(",") if m]
    if not chosen or any(m not in MEASURES for m in chosen):
        ap.error(f"--measures names only {', '.join(MEASURES)}")
    for tree in trees.values():
        problem = check_tree(tree)
        if problem:
            ap.error(problem)
    binary = gofixtures.build(max(gofixtures.toolchains(), key=lambda t: t.release), "bpfprobe")
    with tempfile.TemporaryDirectory(prefix="gohook-compare-") as d:
        policy = Path(d) / "policy.yaml"
        policy.write_text("version: 1\naction: kill\nunattributed: allow\ndefault: [all]\n")
        every = {"gosym_lookups_s": gosym_lookups,
                 "attach_s": lambda t: attach_seconds(t, binary, policy),
                 "added_ns_per_call": added_ns_per_call}
        measures = {m: every[m] for m in MEASURES if m in chosen}
        started = time.monotonic()
        samples: dict[str, dict[str, list[float]]] = {m: {n: [] for n in trees} for m in measures}
        rng = random.Random(3)
        for r in range(args.rounds):
            for measure, fn in measures.items():
                order = list(trees)
                rng.shuffle(order)
                for name in order:
                    try:
                        value = fn(trees[name])
                    except subprocess.TimeoutExpired as e:
                        raise SystemExit(f"compare_trees: {measure} of {name} ({trees[name]}) did not finish "
                                         f"within {e.timeout:.0f}s") from e
                    except subprocess.CalledProcessError as e:
                        raise SystemExit(f"compare_trees: {measure} of {name} ({trees[name]}) exited "
                                         f"{e.returncode}:\n{(e.stderr or '')[-2000:]}") from e
                    except RuntimeError as e:
                        raise SystemExit(f"compare_trees: {measure} of {name}: {e}") from e
                    samples[measure][name].append(value)
                    print(f"round {r + 1}/{args.rounds}: {measure} {name} {value:.4g} "
                          f"({time.monotonic() - started:.0f}s)", file=sys.stderr)
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
