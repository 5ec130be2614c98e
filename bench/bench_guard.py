#!/usr/bin/env python3
"""What the guard (issue 12, gohook/bpf/c/lib/guard.h) costs a process: its target, and everyone else.

    sudo .venv/bin/python bench/bench_guard.py [--rounds 5] [--scale 1.0] [--json]

The guard is one BPF program on the syscalls:sys_enter_<name> tracepoint of
each system call that can switch enforcement off (mmap, mprotect, madvise,
kill, tgkill, ptrace, io_uring_setup, bpf, ...). A tracepoint is
system-wide: while `gohook attach` runs, the program runs for those calls of
EVERY process on the machine; it looks the process up in `targets` and
returns at once for any other. In a target, the Go runtime makes such calls
on its own (heap growth, the scavenger's madvise, preemption's tgkill),
and the program judges each (rule test, PC exemption of the runtime).

`perfapp churn -op OP -n N` (testdata/go/perfapp/churn.go) makes one kind of
call N times and reports ns per operation, measured inside the process:

- madvise:  syscall.Madvise on a data page (guarded; no Go-level hook)
- mprotect: syscall.Mprotect(RW) on a data page (the new Go-level hook + the guard)
- mmap:     syscall.Mmap + Munmap of one page (the new Go-level hook + the guard)
- gc:       1 MiB allocation + runtime.GC() with a spinning goroutine (the
            runtime's own mmap / madvise / tgkill)
- getpid:   no guarded system call: the control (the guard must cost nothing)

Configurations, interleaved (shuffled order per round, so drift hits all
alike); gohook is the library attach of the plan `gohook attach` makes
(perfeval.plans.shipped), the guard included:

- none:      nothing attached
- target:    gohook attached to the binary copy that runs (the process becomes
             a target through the goroutine-created probe)
- bystander: gohook attached to another copy of the binary; the process that
             runs is not a target (the guard's cost to the rest of the machine)

Then one pass with kernel.bpf_stats_enabled=1 gives the guard program's own
runs per operation and ns per run, from the kernel's accounting.
Other sessions on this machine may have their own gohook attached (its guard
then runs in every configuration, `none` included): compare the columns, not
the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from perfeval import configs as cfg  # noqa: E402
from perfeval import fixture, plans, workloads  # noqa: E402

from gohook.bpf.loader import Attached, attach  # noqa: E402
from gohook.bpf.render import GUARD_NAME  # noqa: E402
from gohook.gosym import GoBinary  # noqa: E402
from gohook.session import program_options  # noqa: E402

#: Operations per run at --scale 1 (each run is about 50-200 ms here).
OPS = {"madvise": 200_000, "mprotect": 50_000, "mmap": 30_000, "gc": 300, "getpid": 200_000}
CONFIGS = ("none", "target", "bystander")
POLICY = "version: 1\naction: kill\nunattributed: allow\ndefault: [all]\n"
STATS_SYSCTL = Path("/proc/sys/kernel/bpf_stats_enabled")


def run(binary: Path, op: str, n: int) -> tuple[float, float]:
    """(ns per operation inside the process, CPU ns per operation of the process) of one churn run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([str(binary), "churn", "-op", op, "-n", str(n)], capture_output=True, text=True,
                          check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return float(json.loads(proc.stdout)["ns_per_op"]), cpu * 1e9 / (n + 1)


def guard_stats(att: Attached) -> tuple[int, int]:
    """(run_cnt, run_time_ns) of the guard program so far."""
    for s in att.program_stats():
        if s.name == GUARD_NAME:
            return s.run_cnt, s.run_time_ns
    raise RuntimeError(f"the plan has no guard program ({GUARD_NAME})")


def all_stats(att: Attached) -> dict[str, tuple[int, int]]:
    """(run_cnt, run_time_ns) of every program of the attachment so far, by name."""
    return {s.name: (s.run_cnt, s.run_time_ns) for s in att.program_stats()}


def per_op(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], n: int) -> dict[str, list[float]]:
    """[runs per operation, ns per operation] of each program that ran between two all_stats."""
    out = {}
    for name, (cnt, ns) in after.items():
        c0, ns0 = before.get(name, (0, 0))
        if cnt > c0:
            out[name] = [(cnt - c0) / n, (ns - ns0) / n]
    return out


def http_programs(ws: fixture.Workspace, runs: int, seconds: int) -> dict[str, object]:
    """The HTTP workload of bench/evaluate.py under gohook (the plan `gohook attach` makes with the
    evaluation's policy, the guard included) with bpf_stats on: each BPF program's runs and ns per request,
    and the service's CPU per request, per run."""
    plan = plans.shipped(ws.app, ws.policy)[1].plan
    config = cfg.Gohook("gohook", "", plan, GoBinary.open(ws.app), program_options(report_allowed=False), ws.app)
    rows = []
    old = STATS_SYSCTL.read_text().strip()
    STATS_SYSCTL.write_text("1")
    try:
        with workloads.HttpBench(ws.upstream, ws.files, ws.root, seconds=seconds, warmup=1, connections=16) as hb:
            for _ in range(runs):
                before = {s.name: (s.run_cnt, s.run_time_ns) for s in config.program_stats()}
                res = hb.run(config)
                after = {s.name: (s.run_cnt, s.run_time_ns) for s in config.program_stats()}
                reqs = max(res.total_requests, 1)
                programs = per_op(before, after, reqs)
                rows.append({"requests": reqs, "cpu_us_per_request": res.cpu_us_per_request,
                             "programs_runs_and_ns_per_request": programs,
                             "guard_ns_per_request": programs.get(GUARD_NAME, [0.0, 0.0])[1],
                             "all_programs_ns_per_request": sum(v[1] for v in programs.values())})
    finally:
        STATS_SYSCTL.write_text(old)
        config.close()
    guard = [r["guard_ns_per_request"] / (r["cpu_us_per_request"] * 1e3) for r in rows]
    return {"runs": rows, "median_guard_share_of_cpu": statistics.median(guard),
            "median_guard_ns_per_request": statistics.median(r["guard_ns_per_request"] for r in rows),
            "median_guard_runs_per_request": statistics.median(
                r["programs_runs_and_ns_per_request"].get(GUARD_NAME, [0.0])[0] for r in rows),
            "median_cpu_us_per_request": statistics.median(r["cpu_us_per_request"] for r in rows)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the operations per run")
    ap.add_argument("--ops", default=",".join(OPS), help="comma-separated subset of " + ", ".join(OPS))
    ap.add_argument("--http", type=int, default=3, metavar="RUNS",
                    help="then RUNS runs of the HTTP workload with bpf_stats on: the guard's share of CPU per request "
                         "(0: skip)")
    ap.add_argument("--http-seconds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    ops = [o for o in args.ops.split(",") if o]
    if not ops or any(o not in OPS for o in ops):
        ap.error(f"--ops names only {', '.join(OPS)}")
    if args.rounds < 1 or args.scale <= 0:
        ap.error("--rounds must be at least 1 and --scale positive")
    counts = {op: max(1, int(OPS[op] * args.scale)) for op in ops}

    with fixture.Workspace.create(fixture.build_perfapp()) as ws:
        target, plain = ws.app, ws.copy_of(ws.app, "perfapp-plain")
        policy = ws.root / "guard-policy.yaml"
        policy.write_text(POLICY)
        plan = plans.shipped(target, policy)[1].plan
        if plan.guard is None:
            raise SystemExit("bench_guard: the plan has no guard (no goroutine provenance in this binary?)")
        samples: dict[str, dict[str, list[float]]] = {op: {c: [] for c in CONFIGS} for op in ops}
        cpu: dict[str, dict[str, list[float]]] = {op: {c: [] for c in CONFIGS} for op in ops}
        guard_bpf: dict[str, dict[str, dict[str, float]]] = {}
        with attach(plan, options=program_options(report_allowed=False), attach_probes=False) as att:
            att.guard_processes([])
            rng = random.Random(12)
            for r in range(args.rounds):
                order = list(CONFIGS)
                rng.shuffle(order)
                for config in order:
                    if config != "none":
                        att.attach_probes()
                    try:
                        for op in ops:
                            ns, c = run(target if config == "target" else plain, op, counts[op])
                            samples[op][config].append(ns)
                            cpu[op][config].append(c)
                    finally:
                        if config != "none":
                            att.detach_probes()
                            att.drain()
                print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
            denied = att.counters().denied
            # the guard's own run time, from the kernel's accounting (which costs a little itself)
            old = STATS_SYSCTL.read_text().strip()
            STATS_SYSCTL.write_text("1")
            att.attach_probes()
            try:
                for op in ops:
                    guard_bpf[op] = {}
                    for config in ("target", "bystander"):
                        cnt0, ns0 = guard_stats(att)
                        total0 = all_stats(att)
                        run(target if config == "target" else plain, op, counts[op])
                        cnt1, ns1 = guard_stats(att)
                        total1 = all_stats(att)
                        n = counts[op] + 1
                        guard_bpf[op][config] = {
                            "guard_runs_per_op": (cnt1 - cnt0) / n,
                            "guard_ns_per_run": (ns1 - ns0) / (cnt1 - cnt0) if cnt1 > cnt0 else 0.0,
                            "guard_ns_per_op": (ns1 - ns0) / n,
                            "all_programs_ns_per_op": sum(v[1] for v in per_op(total0, total1, n).values()),
                            "programs_runs_and_ns_per_op": per_op(total0, total1, n),
                        }
            finally:
                att.detach_probes()
                STATS_SYSCTL.write_text(old)
        http = http_programs(ws, args.http, args.http_seconds) if args.http > 0 else None
    if denied:
        raise SystemExit(f"bench_guard: gohook denied {denied} calls: the policy must allow everything churn does")

    med = {op: {c: statistics.median(v) for c, v in by.items()} for op, by in samples.items()}
    med_cpu = {op: {c: statistics.median(v) for c, v in by.items()} for op, by in cpu.items()}
    doc = {
        "rounds": args.rounds, "ops_per_run": counts, "guarded_syscalls": list(plan.guard.syscalls),
        "median_ns_per_op": med, "median_cpu_ns_per_op": med_cpu,
        "added_ns_per_op": {op: {c: med[op][c] - med[op]["none"] for c in CONFIGS[1:]} for op in ops},
        "ratio_over_none": {op: {c: med[op][c] / med[op]["none"] for c in CONFIGS[1:]} for op in ops},
        "bpf_stats": guard_bpf, "http": http, "samples": samples, "cpu_samples": cpu,
    }
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    print(f"perfapp churn, {args.rounds} interleaved rounds, medians of ns per operation (inside the process)")
    print("| op | none | target | bystander | target / none | bystander / none | guard runs/op (target) "
          "| guard ns/run (target) | guard ns/run (bystander) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for op in ops:
        m, r, g = med[op], doc["ratio_over_none"][op], guard_bpf[op]
        print(f"| {op} | {m['none']:.0f} | {m['target']:.0f} | {m['bystander']:.0f} | {r['target']:.3f} | "
              f"{r['bystander']:.3f} | {g['target']['guard_runs_per_op']:.2f} | "
              f"{g['target']['guard_ns_per_run']:.0f} | {g['bystander']['guard_ns_per_run']:.0f} |")
    if http is not None:
        print(f"HTTP workload ({args.http} runs, bpf_stats on): guard {http['median_guard_runs_per_request']:.2f} "
              f"runs and {http['median_guard_ns_per_request']:.0f} ns per request, "
              f"{100 * http['median_guard_share_of_cpu']:.3f} % of {http['median_cpu_us_per_request']:.1f} us CPU "
              f"per request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
