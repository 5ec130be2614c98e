"""Two gohook checkouts side by side: first (uncached) `gohook inspect --json --no-cache` runs of each on the
same binaries, interleaved round by round (the order alternating), so both see the same machine.

For each binary: median wall time, CPU time (user + system) and peak RSS of each checkout, their spread,
the per-round ratio new/old (median), and whether the two `--json` documents are identical (timings aside).
Each checkout needs its C extensions built in place (`python setup.py build_ext --inplace`) and is byte-
compiled first, as an installed package is (see bench_inspect_real.py).

Usage: .venv/bin/python bench/bench_inspect_ab.py OLD_TREE NEW_TREE BIN [BIN ...] [--rounds N]
(e.g. OLD_TREE from `git worktree add /tmp/old <commit>`).
"""

from __future__ import annotations

import argparse
import compileall
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_inspect_real import Run, run_inspect  # noqa: E402


def spread(runs: list[Run], what: str) -> str:
    values = [getattr(r, what) for r in runs]
    unit = " MB" if what == "rss_mb" else " s"
    return f"{statistics.median(values):.2f}{unit} ({min(values):.2f}-{max(values):.2f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    args.old, args.new = (str(Path(t).resolve()) for t in (args.old, args.new))
    for tree in (args.old, args.new):
        compileall.compile_dir(str(Path(tree) / "gohook"), quiet=1)
    print(f"{args.rounds} rounds, interleaved; old = {args.old}, new = {args.new}\n")
    print("| binary | old wall | new wall | new/old wall (median of rounds) | old CPU | new CPU | old peak RSS "
          "| new peak RSS | output identical |")
    print("|---|---|---|---|---|---|---|---|---|")
    same = True
    for binary in args.binaries:
        runs: dict[str, list[Run]] = {"old": [], "new": []}
        with tempfile.TemporaryDirectory() as cache_dir:
            for k in range(args.rounds):
                for which in (("old", "new") if k % 2 == 0 else ("new", "old")):
                    runs[which].append(run_inspect(binary, cache_dir, True, getattr(args, which)))
        docs = [dict(runs[w][0].doc) for w in ("old", "new")]
        for d in docs:
            d.pop("timings")
        identical = docs[0] == docs[1]
        same &= identical
        ratio = statistics.median(n.wall / o.wall for o, n in zip(runs["old"], runs["new"], strict=True))
        print(f"| {Path(binary).name} | {spread(runs['old'], 'wall')} | {spread(runs['new'], 'wall')} | "
              f"{ratio:.2f} | {spread(runs['old'], 'cpu')} | {spread(runs['new'], 'cpu')} | "
              f"{spread(runs['old'], 'rss_mb')} | {spread(runs['new'], 'rss_mb')} | {'yes' if identical else 'NO'} |",
              flush=True)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
