#!/usr/bin/env python3
"""What argument-scoped rules (issue 14, gohook/bpf/c/lib/argmatch.h) cost a hooked call.

    sudo .venv/bin/python bench/bench_argrules.py [--rounds 7] [--scale 1.0] [--perf 1] [--json]

A module granted a capability for some arguments only (`env.read: ["ACME_*"]`) is not in module_mask for
it: the handler finds the bit in module_scoped, fills the event (the argument included) and tail-calls
`gohook_argcheck` (the hook point's scope, the trie key), which tail-calls `gohook_globmatch` (the path's
cleanliness or the name's NULs, then longest-prefix lookups in the arg_globs LPM trie, longest first,
up to MATCH_TRIES). A module granted the capability for any argument stops in the handler.

`argscope loop-getenv NAME N` and `argscope loop-stat PATH N` (testdata/go/argscope, module
github.com/acme/config) make one hooked call N times from a non-std module (os.Getenv: the syscall.Getenv
hook, env.read; os.Stat: the syscall.fstatat hook, files.read, a system call without I/O) and print ns per
call, measured inside the process. Configurations, interleaved (a shuffled order per round):

- none:            nothing attached
- caps:            config: [env.read, files.read] (capability-only: the call stops in the handler)
- scoped-1:        config: env.read: ["ACME_*"], files.read: ["ROOT/etc/acme/conf.d/service/*.yaml"]
                   (one lookup)
- scoped-N:        N patterns per capability: N - 1 distinct exact names (paths) beside the argument,
                   then the pattern that allows it; one trie lookup, in a trie of N entries
- scoped-N-deep:   N patterns per capability, the worst case the kernel allows: MATCH_TRIES - 1 of them
                   are globs whose literal prefixes are ever shorter prefixes of the argument and whose
                   suffix fails, so the kernel looks up MATCH_TRIES entries, longest first, before the
                   last, the allowing pattern; the rest are distinct exact names (paths)

Each gohook configuration is the plan `gohook attach --binary COPY --policy P` makes (perfeval.plans.shipped),
enforce/kill, allowed calls counted and not reported (the default service mode), loaded and attached once
to a private copy of the binary (uprobes are per file; perfeval.configs.Gohook).

Then, with kernel.bpf_stats_enabled=1, the kernel's accounting of the BPF programs per call. Only entry
programs are counted: the handler, gohook_argcheck and gohook_globmatch are tail calls, which the kernel
runs inside the entry program's accounted run (their own run_cnt stays 0), so the hook program's ns per
run is the whole chain. `--perf RUNS` splits it: `perf record -g` samples of the workload, each BPF
program's inclusive share (its frame and the helpers it calls; a tail call replaces the frame) of the
chain's samples, times the chain's bpf_stats ns per run. Finally the verifier's verified instruction
counts of every program of each plan (bpf_prog_info verified_insns) against the kernel's 1,000,000.

Other sessions on this machine may have gohook attached (their tracepoint programs run in every
configuration, `none` included): compare the columns, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import gofixtures  # noqa: E402
from perfeval import configs as cfg  # noqa: E402
from perfeval import plans  # noqa: E402
from perfeval.stats import Summary, difference, interleaved, ratio  # noqa: E402

from gohook.bpf.abi import MATCH_TRIES, ArgClass  # noqa: E402
from gohook.bpf.argtables import ArgTables, build_arg_tables, match_glob  # noqa: E402
from gohook.bpf.loader import attach  # noqa: E402
from gohook.bpf.render import render_cflags  # noqa: E402
from gohook.gosym import GoBinary  # noqa: E402
from gohook.plan.model import EnforcementPlan  # noqa: E402
from gohook.policy.format import Mode  # noqa: E402
from gohook.session import program_options  # noqa: E402
from gohook.sites.catalog import load_catalog  # noqa: E402

MAIN = "example.com/argscope"
CONFIG = "github.com/acme/config"
#: the variable the getenv loop reads, and the glob that allows it
ENV_NAME, ENV_GLOB = "ACME_SERVICE_LOG_LEVEL", "ACME_*"
#: where the variable's deep-case decoys start cutting it: after "ACME_SERVICE_", so no exact decoy
#: ("ACME_SERVICE_OPT_000") has a decoy's prefix
ENV_CUT_FROM = len("ACME_SERVICE_L")
#: the file the stat loop stats, below the workspace, and the glob that allows it in its directory (one trie
#: entry: a `DIR/**` pattern is two, DIR/ and DIR itself, both prefixes of every path below)
PATH_DIR, PATH_FILE, PATH_GLOB = "etc/acme/conf.d/service", "app.yaml", "*.yaml"
#: operations per run at --scale 1 (each run is about 0.3 s under gohook here)
OPS = {"getenv": 200_000, "stat": 100_000}
#: configuration -> (patterns per capability, deep); None: capability-only
SHAPES: dict[str, tuple[int, bool] | None] = {
    "caps": None, "scoped-1": (1, False), "scoped-20": (20, False), "scoped-200": (200, False),
    "scoped-20-deep": (20, True), "scoped-200-deep": (200, True)}
CONFIGS = ("none", *SHAPES)
KERNEL_LIMIT = 1_000_000  # BPF_COMPLEXITY_LIMIT_INSNS
STATS_SYSCTL = Path("/proc/sys/kernel/bpf_stats_enabled")
CHAIN = ("gohook_hook_", "gohook_handler_", "gohook_argcheck", "gohook_globmatch")
PERF_SYMBOL = re.compile(r"^\s*([\d.]+)%\s+([\d.]+)%\s+\[k\] bpf_prog_[0-9a-f]+_(\w+)\s*$")


# --- the patterns ------------------------------------------------------------------------------------------


def env_patterns(count: int, deep: bool) -> list[str]:
    """`count` env.read patterns, the one allowing ENV_NAME last (see the module's docstring)."""
    if count < 1 or (deep and count < MATCH_TRIES):
        raise ValueError(f"{count} patterns: at least 1, {MATCH_TRIES} for the deep case")
    chain = [ENV_NAME[:k] + "*_FILE" for k in range(ENV_CUT_FROM, ENV_CUT_FROM + MATCH_TRIES - 1)] if deep else []
    exact = [f"ACME_SERVICE_OPT_{i:03d}" for i in range(count - 1 - len(chain))]
    return [*exact, *chain, ENV_GLOB]


def stat_path(root: Path) -> Path:
    """The file the stat loop stats."""
    return root / PATH_DIR / PATH_FILE


def path_patterns(root: Path, count: int, deep: bool) -> list[str]:
    """`count` files.read patterns, the one allowing stat_path(root) last (see the module's docstring)."""
    if count < 1 or (deep and count < MATCH_TRIES):
        raise ValueError(f"{count} patterns: at least 1, {MATCH_TRIES} for the deep case")
    d = f"{root}/{PATH_DIR}"
    chain = [f"{d}/{PATH_FILE[:k]}*.json" for k in range(1, MATCH_TRIES)] if deep else []
    exact = [f"{d}/opt-{i:03d}.conf" for i in range(count - 1 - len(chain))]
    return [*exact, *chain, f"{d}/{PATH_GLOB}"]


def policy_text(root: Path, shape: tuple[int, bool] | None) -> str:
    """The policy of one configuration: the main module may do anything, config what the shape says."""
    lines = ["version: 1", "action: kill", "modules:", f"  {MAIN}: [all]"]
    if shape is None:
        return "\n".join([*lines, f"  {CONFIG}: [env.read, files.read]", ""])
    count, deep = shape
    return "\n".join([*lines, f"  {CONFIG}:", f"    env.read: {json.dumps(env_patterns(count, deep))}",
                      f"    files.read: {json.dumps(path_patterns(root, count, deep))}", ""])


@dataclass(frozen=True)
class Lookup:
    """How the kernel's algorithm (gohook.bpf.argtables.match_glob) decides one argument of a plan."""

    pattern: str  # the text of the pattern that allows it ("" when none does)
    trie_entries: int  # arg_globs entries of the module and capability, all classes
    lookups: int  # entries on the argument's way down: trie lookups per call


def lookup(plan: EnforcementPlan, tables: ArgTables, capability: str, cls: ArgClass, argument: str) -> Lookup:
    """What the argument costs in trie lookups, and which pattern allows it, by the kernel's algorithm."""
    module = plan.modules.index(CONFIG) + 1
    bit = {c.name: c.bit for c in load_catalog().capabilities}[capability]
    data = argument.encode()
    pattern_id = match_glob(tables, module, bit, cls, data)
    text = plan.arg_patterns[pattern_id - 1].pattern.text if pattern_id else ""
    keys = [p for (m, c, k, p) in tables.globs if (m, c, k) == (module, bit, cls)]
    return Lookup(text, len(keys), sum(1 for p in keys if data.startswith(p)))


# --- runs --------------------------------------------------------------------------------------------------


def loop_args(op: str, root: Path, n: int) -> list[str]:
    """The argscope command line of one run."""
    return ["loop-getenv", ENV_NAME, str(n)] if op == "getenv" else ["loop-stat", str(stat_path(root)), str(n)]


def workload_env() -> dict[str, str]:
    """A small, fixed environment: the variable the getenv loop reads is set."""
    return {"PATH": "/usr/bin:/bin", ENV_NAME: "debug"}


def run(config: cfg.Instrumentation, op: str, root: Path, n: int) -> tuple[float, cfg.Stats]:
    """(ns per call as the process measured it, the instrumentation's counters) of one loop run."""
    proc = config.start(loop_args(op, root, n), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=workload_env())
    try:
        out, err = proc.communicate(timeout=600)
    except BaseException:
        proc.kill()
        proc.wait()
        config.finish()
        raise
    stats = config.finish()  # raises when gohook denied a call
    if proc.returncode != 0:
        raise RuntimeError(f"argscope {op} under {config.name} exited with {proc.returncode}: {out} {err}")
    return float(json.loads(out.splitlines()[0])["ns_per_op"]), stats


@contextmanager
def bpf_stats() -> Iterator[None]:
    """kernel.bpf_stats_enabled=1 for the block (restored after)."""
    old = STATS_SYSCTL.read_text().strip()
    STATS_SYSCTL.write_text("1")
    try:
        yield
    finally:
        STATS_SYSCTL.write_text(old)


def program_counts(config: cfg.Instrumentation) -> dict[str, tuple[int, int]]:
    """(run_cnt, run_time_ns) of every program of a configuration so far, by name."""
    return {s.name: (s.run_cnt, s.run_time_ns) for s in config.program_stats()}


def kernel_accounting(config: cfg.Instrumentation, op: str, root: Path, n: int, runs: int) -> dict[str, object]:
    """`runs` loop runs with bpf_stats on: the entry programs that ran about once per call, their runs per
    call and ns per run (medians), and every program's runs per call."""
    rows = []
    for _ in range(runs):
        before = program_counts(config)
        run(config, op, root, n)
        after = program_counts(config)
        rows.append({name: (cnt - before.get(name, (0, 0))[0], ns - before.get(name, (0, 0))[1])
                     for name, (cnt, ns) in after.items() if cnt > before.get(name, (0, 0))[0]})
    calls = n + 1  # and the warm-up call
    hooks = sorted({name for r in rows for name, (cnt, _) in r.items() if name.startswith("gohook_hook_")
                    and cnt >= 0.9 * calls})
    entry = {name: {"runs_per_call": statistics.median(r.get(name, (0, 0))[0] / calls for r in rows),
                    "ns_per_run": statistics.median(r[name][1] / r[name][0] for r in rows if r.get(name, (0, 0))[0])}
             for name in hooks}
    tail = {name: max(r.get(name, (0, 0))[0] for r in rows) for name in ("gohook_argcheck", "gohook_globmatch")}
    return {"entry": entry, "ns_per_call": sum(e["runs_per_call"] * e["ns_per_run"] for e in entry.values()),
            "tail_call_run_cnt": tail,
            "all_programs_runs_per_call": {name: statistics.median(r.get(name, (0, 0))[0] / calls for r in rows)
                                           for name in sorted({k for r in rows for k in r})}}


def perf_split(config: cfg.Instrumentation, op: str, root: Path, n: int, out: Path) -> dict[str, float]:
    """One loop run under `perf record -g` (cpu-clock): each gohook BPF program's inclusive share of the
    samples of the hooked call's chain (entry, handler, argcheck, globmatch), by program name."""
    data = out / f"perf-{config.name}-{op}.data"
    config.arm(0)
    proc = subprocess.run(["perf", "record", "-q", "-g", "-e", "cpu-clock", "-F", "20000", "-o", str(data), "--",
                           str(config.app), *loop_args(op, root, n)], capture_output=True, text=True,
                          env=workload_env(), timeout=600)
    config.finish()
    if proc.returncode != 0:
        raise RuntimeError(f"perf record of {config.name} {op} failed: {proc.stderr[-2000:]}")
    report = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--children", "--sort", "sym", "-g", "none",
                             "--percent-limit", "0"], capture_output=True, text=True, check=True, timeout=600).stdout
    data.unlink()
    inclusive: dict[str, float] = {}
    for line in report.splitlines():
        m = PERF_SYMBOL.match(line)
        if m and m.group(3).startswith(CHAIN):
            name = "gohook_hook_N" if m.group(3).startswith("gohook_hook_") else m.group(3)
            inclusive[name] = inclusive.get(name, 0.0) + float(m.group(1))
    total = sum(inclusive.values())
    return {name: share / total for name, share in sorted(inclusive.items())} if total else {}


def verified(config: cfg.Gohook) -> dict[str, int]:
    """Verified instructions of the chain's programs: the handlers, argcheck, globmatch, the worst entry."""
    insns = {s.name: s.verified_insns for s in config.program_stats()}
    out = {n: v for n, v in insns.items() if n.startswith("gohook_handler_") or n in CHAIN}
    hooks = [v for n, v in insns.items() if n.startswith("gohook_hook_")]
    out["gohook_hook_* (max)"] = max(hooks, default=0)
    out["worst"] = max(insns.values(), default=0)
    return dict(sorted(out.items()))


def verifier_variants(app: Path, policy: Path) -> list[dict[str, object]]:
    """The scoped plan under each knob that reaches the argument check (mode enforce/audit, allowed calls
    reported or not, sentinel on/off), compiled and loaded (not attached): each rendered program once,
    with the verified instructions of argcheck, globmatch, the handlers and the worst program."""
    rows: list[dict[str, object]] = []
    seen: set[tuple[str, ...]] = set()
    for mode in (Mode.ENFORCE, Mode.AUDIT):
        for report in (False, True):
            for sentinel in ("off", "on"):
                plan = plans.shipped(app, policy, mode=mode.value, sentinel=sentinel)[1].plan
                options = program_options(report_allowed=report, mode=mode)
                key = tuple(render_cflags(plan, options))
                if key in seen:
                    continue
                seen.add(key)
                with attach(plan, options=options, attach_probes=False) as att:
                    insns = {st.name: st.verified_insns for st in att.program_stats()}
                worst = max(insns, key=lambda n: insns[n])
                rows.append({"variant": f"{mode.value}/report-{'on' if report else 'off'}/sentinel-{sentinel}"
                             f"{'' if plan.sentinel is not None or sentinel == 'off' else ' (no sentinel planned)'}",
                             **{n: v for n, v in sorted(insns.items())
                                if n.startswith("gohook_handler_") or n in ("gohook_argcheck", "gohook_globmatch",
                                                                            "gohook_sentinel")},
                             "worst_program": worst, "worst_insns": insns[worst],
                             "headroom": 1 - insns[worst] / KERNEL_LIMIT})
    return rows


# --- main --------------------------------------------------------------------------------------------------


def build_argscope() -> tuple[Path, str]:
    """The argscope binary, built (or reused) by the test suite's fixture builder with the newest Go, and
    that Go's version."""
    chains = gofixtures.toolchains()
    if not chains:
        raise SystemExit("bench_argrules: no Go toolchain installed: run scripts/setup.sh")
    newest = max(chains, key=lambda t: t.release)
    return gofixtures.build(newest, "argscope", "default"), newest.version


def machine() -> dict[str, object]:
    """Kernel, CPUs and load of this machine."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "")
    return {"kernel": os.uname().release, "cpus": os.cpu_count(), "cpu": model,
            "loadavg": Path("/proc/loadavg").read_text().split()[:3]}


def summarize(samples: dict[str, dict[str, list[float]]], names: list[str]) -> dict[str, object]:
    """Medians per configuration, and against caps (and none): differences of medians, paired per-round
    differences and ratios."""
    out: dict[str, object] = {}
    for op, by in samples.items():
        med = {c: Summary.of(by[c]).as_json() for c in names}
        vs: dict[str, object] = {}
        for c in names:
            row: dict[str, object] = {}
            for base in ("caps", "none"):
                if base in by and c != base:
                    row[base] = {"added_ns": med[c]["median"] - med[base]["median"],
                                 "paired_added_ns": difference(by[c], by[base]).as_json(),
                                 "ratio": med[c]["median"] / med[base]["median"],
                                 "paired_ratio": ratio(by[c], by[base]).as_json()}
            vs[c] = row
        out[op] = {"ns_per_op": med, "against": vs}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the calls per run")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of " + ", ".join(CONFIGS))
    ap.add_argument("--ops", default=",".join(OPS), help="comma-separated subset of " + ", ".join(OPS))
    ap.add_argument("--stats-runs", type=int, default=3, help="runs per configuration and op with bpf_stats on")
    ap.add_argument("--perf", type=int, default=1, metavar="RUNS",
                    help="perf record runs per gohook configuration and op, splitting the chain's BPF time by "
                         "program (0: skip)")
    ap.add_argument("--no-variants", action="store_true",
                    help="skip loading the scoped plan under every mode, reporting and sentinel setting")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--results", type=Path, metavar="FILE",
                    help="print the tables of a saved --json run, measure nothing")
    args = ap.parse_args(argv)
    if args.results is not None:
        print_tables(json.loads(args.results.read_text()))
        return 0
    names = [c for c in args.configs.split(",") if c]
    ops = [o for o in args.ops.split(",") if o]
    if not names or any(c not in CONFIGS for c in names) or not ops or any(o not in OPS for o in ops):
        ap.error(f"--configs names only {', '.join(CONFIGS)}; --ops only {', '.join(OPS)}")
    if args.rounds < 1 or args.scale <= 0 or args.stats_runs < 1 or args.perf < 0:
        ap.error("--rounds and --stats-runs must be at least 1, --scale positive, --perf not negative")
    if os.geteuid() != 0:
        raise SystemExit("bench_argrules: needs root (uprobes, BPF, kernel.bpf_stats_enabled)")
    if args.perf and shutil.which("perf") is None:
        ap.error("--perf needs the perf command (0: skip)")
    counts = {op: max(1, int(OPS[op] * args.scale)) for op in ops}
    source, go = build_argscope()
    host = machine()

    root = Path(tempfile.mkdtemp(prefix="gohook-argrules-"))
    configs: dict[str, cfg.Instrumentation] = {}
    try:
        stat_path(root).parent.mkdir(parents=True)
        stat_path(root).write_text("level: debug\n")
        binary = GoBinary.open(source)
        shapes: dict[str, object] = {}
        for name in names:
            app = root / f"argscope-{name}"
            shutil.copy2(source, app)
            if name == "none":
                configs[name] = cfg.Instrumentation(name, "nothing attached", app)
                continue
            policy = root / f"policy-{name}.yaml"
            policy.write_text(policy_text(root, SHAPES[name]))
            plan = plans.shipped(app, policy)[1].plan
            tables = build_arg_tables(plan)
            if tables is not None:
                shapes[name] = {
                    "patterns_per_capability": SHAPES[name][0],  # type: ignore[index]
                    "getenv": vars(lookup(plan, tables, "env.read", ArgClass.ENV, ENV_NAME)),
                    "stat": vars(lookup(plan, tables, "files.read", ArgClass.PATH, str(stat_path(root))))}
            print(f"attaching {name} ({len(plan.hooks)} hook points)", file=sys.stderr)
            configs[name] = cfg.Gohook(name, policy.read_text(), plan, binary, program_options(report_allowed=False),
                                       app)

        samples: dict[str, dict[str, list[float]]] = {op: {c: [] for c in names} for op in ops}
        hits: dict[str, dict[str, list[float]]] = {op: {c: [] for c in names if c != "none"} for op in ops}
        for r, name in interleaved(names, args.rounds, seed=14):
            for op in ops:
                ns, stats = run(configs[name], op, root, counts[op])
                samples[op][name].append(ns)
                if name != "none":
                    hits[op][name].append(stats["hits"] / (counts[op] + 1))
            if name == names[-1]:
                print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

        accounting: dict[str, dict[str, object]] = {op: {} for op in ops}
        with bpf_stats():
            for name in names:
                if name != "none":
                    for op in ops:
                        accounting[op][name] = kernel_accounting(configs[name], op, root, counts[op], args.stats_runs)
        split: dict[str, dict[str, object]] = {op: {} for op in ops}
        for name in names:
            if args.perf and name != "none":
                for op in ops:
                    shares = [perf_split(configs[name], op, root, counts[op], root) for _ in range(args.perf)]
                    mean = {p: statistics.mean(s.get(p, 0.0) for s in shares) for p in {k for s in shares for k in s}}
                    chain_ns = accounting[op][name]["ns_per_call"]  # type: ignore[index]
                    split[op][name] = {p: {"share": v, "ns_per_call": v * chain_ns} for p, v in sorted(mean.items())}
        insns = {name: verified(c) for name, c in configs.items() if isinstance(c, cfg.Gohook)}
        scoped = [n for n in names if SHAPES.get(n) is not None]
        variants = [] if args.no_variants or not scoped else verifier_variants(
            configs[scoped[-1]].app, root / f"policy-{scoped[-1]}.yaml")
    finally:
        for c in configs.values():
            c.close()
        shutil.rmtree(root, ignore_errors=True)

    worst = {name: max((v for p, v in i.items() if p in ("gohook_argcheck", "gohook_globmatch")), default=0)
             for name, i in insns.items()}
    doc = {
        "rounds": args.rounds, "calls_per_run": counts, "configs": names, "go": go,
        "machine": {**host, "loadavg_end": machine()["loadavg"]}, "shapes": shapes,
        "summary": summarize(samples, names),
        "hooked_calls_per_call": {op: {c: statistics.median(v) for c, v in by.items()} for op, by in hits.items()},
        "bpf_stats": accounting, "perf_split": split, "verified_insns": insns,
        "argmatch_headroom": {n: {"worst_argmatch_insns": w, "headroom": 1 - w / KERNEL_LIMIT}
                              for n, w in worst.items() if w},
        "verifier_variants": variants,
        "samples": samples,
    }
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    print_tables(doc)
    return 0


def _ns(v: float) -> str:
    return f"{v:,.0f}"


def print_tables(doc: dict) -> None:  # type: ignore[type-arg]
    """The results as Markdown tables."""
    names, summary, acct = doc["configs"], doc["summary"], doc["bpf_stats"]
    print(f"argscope loops, {doc['rounds']} interleaved rounds, median ns per call inside the process; "
          f"BPF ns per call: bpf_stats of the hook's entry program (the whole tail-call chain)\n")
    for op, s in summary.items():
        print(f"### {op} ({doc['calls_per_run'][op]:,} calls per run)\n")
        print("| configuration | trie lookups / call | ns / call | vs caps | paired vs caps [IQR] | ratio to caps "
              "| vs none | BPF ns / call |")
        print("|---|---:|---:|---:|---|---:|---:|---:|")
        for c in names:
            a = s["against"][c]
            caps, none = a.get("caps"), a.get("none")
            shape = doc["shapes"].get(c, {}).get(op)
            bpf = acct[op].get(c, {}).get("ns_per_call")
            cells = [c, str(shape["lookups"]) if shape else "", _ns(s["ns_per_op"][c]["median"]), "", "", "", "",
                     _ns(bpf) if bpf is not None else ""]
            if caps:
                p = caps["paired_added_ns"]
                cells[3:6] = [f"{caps['added_ns']:+,.0f}", f"{p['median']:+,.0f} [{p['p25']:+,.0f}, {p['p75']:+,.0f}]",
                              f"{caps['ratio']:.3f}"]
            if none:
                cells[6] = f"{none['added_ns']:+,.0f}"
            print("| " + " | ".join(cells) + " |")
        print()
    if any(doc["perf_split"].values()):
        print("### BPF time per call by program (perf samples x bpf_stats of the chain)\n")
        progs = ("gohook_hook_N", *sorted({p for by in doc["perf_split"].values() for sp in by.values() for p in sp}
                                          - {"gohook_hook_N"}))
        print("| op | configuration | " + " | ".join(progs) + " |")
        print("|---|---|" + "---:|" * len(progs))
        for op, by in doc["perf_split"].items():
            for c, sp in by.items():
                cells = [f"{_ns(sp[p]['ns_per_call'])} ({100 * sp[p]['share']:.0f} %)" if p in sp else ""
                         for p in progs]
                print(f"| {op} | {c} | " + " | ".join(cells) + " |")
        print()
    print("### Verified instructions (limit 1,000,000)\n")
    progs = sorted({p for i in doc["verified_insns"].values() for p in i})
    print("| configuration | " + " | ".join(progs) + " |")
    print("|---|" + "---:|" * len(progs))
    for c, i in doc["verified_insns"].items():
        print(f"| {c} | " + " | ".join(f"{i[p]:,}" if p in i else "" for p in progs) + " |")
    if doc["verifier_variants"]:
        print("\n### The scoped plan under every setting that reaches the argument check (loaded, not attached)\n")
        progs = sorted({k for r in doc["verifier_variants"] for k in r if k.startswith("gohook_")})
        print("| variant | " + " | ".join(progs) + " | worst program | headroom |")
        print("|---|" + "---:|" * len(progs) + "---|---:|")
        for r in doc["verifier_variants"]:
            print(f"| {r['variant']} | " + " | ".join(f"{r[p]:,}" if p in r else "" for p in progs)
                  + f" | {r['worst_program']} {r['worst_insns']:,} | {100 * r['headroom']:.1f} % |")


if __name__ == "__main__":
    raise SystemExit(main())
