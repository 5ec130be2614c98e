#!/usr/bin/env python3
"""gohook's performance evaluation: gohook against the alternatives, side by side (issue 6).

    sudo .venv/bin/python bench/evaluate.py [--quick] [--out docs] [--only micro,http,scale,attach,diagnostics]

Runs every workload under every configuration on this machine, interleaved
and repeated, and writes docs/performance.md (the report, with the numbers)
and docs/perf/*.png (the plots), plus docs/perf/results.json (every sample).
The full run takes about a quarter of an hour, --quick about 3 minutes.
See docs/performance.md, "Reproducing", for what it measures and how.

Needs root (uprobes, BPF), a Go toolchain (scripts/setup.sh), wrk (Debian
package) and matplotlib (the `bench` extra). Every probe is attached to a
private copy of each binary in a temporary directory: uprobes are per file
and system-wide, and other people's processes must never meet them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from perfeval import configs as cfg  # noqa: E402
from perfeval import fixture, plans, report, workloads  # noqa: E402
from perfeval.stats import interleaved  # noqa: E402

from gohook.bpf import render  # noqa: E402
from gohook.bpf.loader import ProgramStats  # noqa: E402
from gohook.events.decode import decode_events  # noqa: E402
from gohook.gosym import GoBinary  # noqa: E402
from gohook.session import program_options  # noqa: E402

log = logging.getLogger("evaluate")
T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
BIG_BINARY = Path("/var/cache/gohook/go/1.27.3/go/pkg/tool/linux_amd64/compile")
STATS_SYSCTL = Path("/proc/sys/kernel/bpf_stats_enabled")
PHASES = ("micro", "scale", "http", "attach", "diagnostics")
OPS = ("open", "getenv", "dial", "exec")


# Configuration names (the report's tables and plots use them).
NONE, GOHOOK, EVENTS, CALLEE, ENTRY, SENTINEL, HOOKS_ONLY, STRACE, STRACE_CAPS, CLI, CLI_EVENTS, TRAPS = (
    "none", "gohook", "gohook+events", "gohook-callee", "gohook-entry", "gohook+sentinel", "gohook-hooksonly",
    "syscall-trace", "syscall-trace-caps", "gohook-cli", "gohook-cli+events", "uprobes-noop")
CLI_BASE = "gohook-cli@base"  # `gohook-cli` run from another checkout (--base-tree): before/after a change

DESCRIPTIONS = {
    NONE: "no instrumentation",
    GOHOOK: "gohook enforce (kill) with a policy allowing everything perfapp does: every hooked call is walked "
            "and decided in the kernel; allowed calls are counted, not reported (what `gohook attach` does by default)",
    EVENTS: "the same, reporting every allowed call as an event that user space symbolizes and writes as JSON "
            "(`gohook attach --report-allowed`, the live view, learn mode)",
    CALLEE: "`gohook` with the direct_caller_only hooks (syscall.Syscall & co.) probed at the callee, as before "
            "this evaluation, instead of at their call sites in non-std code",
    ENTRY: "`gohook` with every probe at the function's first instruction (the naive placement: the kernel "
           "single-steps it out of line)",
    SENTINEL: "`gohook` with its raw_syscalls:sys_enter sentinel forced on (`--sentinel on`: the program that "
              "judges capability syscalls no hook point covered; `auto`, the default, leaves it off for perfapp, "
              "which has no cgo, module assembly or module system calls), to show what the sentinel costs",
    HOOKS_ONLY: "`gohook` with its hook points alone: no goroutine provenance (the probe on the call of "
                "runtime.runqput in runtime.newproc.func1) and so neither the sentinel, the guard nor the "
                "file-open judge",
    TRAPS: "the kernel's part alone: a BPF program that returns at once on every probe point of `gohook` (its hook "
           "points and the goroutine-created probe), so the uprobe traps and nothing else; the floor of any "
           "design that probes these functions",
    STRACE: "the syscall-tracing alternative (bench/perfeval/syscall_trace.bpf.c): raw_syscalls:sys_enter for the "
            "workload's pid, frame-pointer walk to the first non-std module on every syscall, same range "
            "table; audit only",
    STRACE_CAPS: "the same, walking only for syscalls that map to a capability (the cheapest syscall tracer)",
    CLI: "the real command with its defaults, `gohook attach --json -- CMD` (a separate process, compiling "
         "at every start; only violations are events)",
    CLI_EVENTS: "the real command reporting every allowed call, `gohook attach --report-allowed --json -- CMD` "
                "(what the live view and learn mode do)",
    CLI_BASE: "`gohook-cli` run from the checkout given by --base-tree (PYTHONPATH=that tree): the same command "
              "before a change, interleaved with the one after it",
}


@dataclass(frozen=True)
class Settings:
    """How much to measure: --quick and the full run differ only here."""

    quick: bool
    micro_configs: tuple[str, ...]
    micro_rounds: int
    micro_seconds: float  # target duration of one microbenchmark run
    depth: int  # stack depth of the microbenchmarks
    scale_configs: tuple[str, ...]  # for depth and threads
    scale_rounds: int
    scale_seconds: float
    depths: tuple[int, ...]
    hook_counts: tuple[int, ...]
    module_counts: tuple[int, ...]
    thread_counts: tuple[int, ...]
    http_configs: tuple[str, ...]
    http_rounds: int
    http_seconds: int  # wrk takes whole seconds
    http_warmup: int
    http_connections: int
    attach_reps: int


FULL = Settings(
    quick=False, micro_configs=(NONE, GOHOOK, EVENTS, CALLEE, ENTRY, SENTINEL, HOOKS_ONLY, STRACE, STRACE_CAPS),
    micro_rounds=7, micro_seconds=0.3, depth=10, scale_configs=(NONE, GOHOOK, EVENTS, STRACE), scale_rounds=5,
    scale_seconds=0.25, depths=(10, 50, 200), hook_counts=(10, 100, 500), module_counts=(10, 1000),
    thread_counts=(1, 2),
    # the entry placement is measured by the microbenchmarks (the HTTP run would only repeat it, slowly)
    http_configs=(NONE, GOHOOK, CLI, CLI_EVENTS, CALLEE, SENTINEL, HOOKS_ONLY, TRAPS, STRACE, STRACE_CAPS),
    http_rounds=7, http_seconds=6, http_warmup=1, http_connections=16, attach_reps=3)
# Detaching a uprobe takes about 0.2 s here: --quick keeps the plans small.
QUICK = Settings(
    quick=True, micro_configs=(NONE, GOHOOK, EVENTS, ENTRY, STRACE), micro_rounds=3, micro_seconds=0.05, depth=10,
    scale_configs=(NONE, GOHOOK, STRACE), scale_rounds=3, scale_seconds=0.05, depths=(10, 200), hook_counts=(10, 50),
    module_counts=(10, 1000), thread_counts=(1, 2), http_configs=(NONE, GOHOOK, CLI_EVENTS, STRACE), http_rounds=2,
    http_seconds=2, http_warmup=1, http_connections=16, attach_reps=1)


class Context:
    """What the phases share: settings, the workspace, the loaded configurations."""

    def __init__(self, settings: Settings, ws: fixture.Workspace, binary: GoBinary, results: dict[str, Any],
                 base_tree: Path | None = None) -> None:
        self.settings = settings
        self.base_tree = base_tree
        self.ws = ws
        self.binary = binary
        self.results = results
        self._configs: dict[str, cfg.Instrumentation] = {}
        self._shipped = plans.shipped(ws.app, ws.policy)
        self.failed: set[str] = set()

    def attempt(self, phase: str, config: str, run: Callable[[], T]) -> T | None:
        """run(); if it fails, record the failure, drop the configuration for good and return None.

        A long evaluation should not die at minute fifteen because one configuration stopped compiling
        (the BPF program is shared code that changes under it): the report lists what failed and why.
        """
        if config in self.failed:
            return None
        try:
            return run()
        except Exception as exc:  # bcc raises bare Exception; everything is recorded and reported
            if config == NONE:
                raise
            log.warning("%s: configuration %s failed, dropped: %s", phase, config, str(exc).splitlines()[0])
            self.failed.add(config)
            self.results.setdefault("failures", []).append(
                {"phase": phase, "config": config, "error": f"{type(exc).__name__}: {exc}"[:4000]})
            self.drop(config)
            return None

    @property
    def plan(self) -> Any:
        return self._shipped[1].plan

    def options(self, report_allowed: bool) -> Any:
        return program_options(report_allowed=report_allowed)

    def config(self, name: str) -> cfg.Instrumentation:
        """The configuration called name, compiled and loaded on first use."""
        c = self._configs.get(name)
        if c is None:
            c = self._make(name)
            self._configs[name] = c
        return c

    def copy(self, name: str) -> Path:
        """The private copy of perfapp that configuration `name` runs (its probes are on this file only)."""
        return self.ws.copy_of(self.ws.app, f"perfapp-{name.replace('@', '-')}")

    def _make(self, name: str) -> cfg.Instrumentation:
        plan, b, d = self.plan, self.binary, DESCRIPTIONS.get(name, name)
        log.info("loading configuration %s", name)
        app = self.copy(name)
        if name == NONE:
            return cfg.Instrumentation(name, d, app)
        if name == GOHOOK:
            return cfg.Gohook(name, d, plan, b, self.options(False), app)
        if name == EVENTS:
            return cfg.Gohook(name, d, plan, b, self.options(True), app)
        if name == CALLEE:
            return cfg.Gohook(name, d, plans.callee_placement(plan, b), b, self.options(False), app)
        if name == ENTRY:
            return cfg.Gohook(name, d, plans.at_entry(plan, b), b, self.options(False), app)
        if name == SENTINEL:
            with_sentinel = plans.shipped(self.ws.app, self.ws.policy, sentinel="on")[1].plan
            return cfg.Gohook(name, d, with_sentinel, b, self.options(False), app)
        if name == HOOKS_ONLY:
            return cfg.Gohook(name, d, plans.hook_points_only(plan), b, self.options(False), app)
        if name == TRAPS:
            created = plan.provenance.created if getattr(plan, "provenance", None) is not None else ()
            return _NoopConfig(name, d, app, [h.file_offset for h in plan.hooks] + [p.file_offset for p in created])
        if name == STRACE:
            return cfg.SyscallTraceConfig(name, d, plan, app)
        if name == STRACE_CAPS:
            return cfg.SyscallTraceConfig(name, d, plan, app, walk_all=False)
        if name == CLI:
            return cfg.AttachCli(name, d, app, self.ws.policy, self.ws.root)
        if name == CLI_EVENTS:
            return cfg.AttachCli(name, d, app, self.ws.policy, self.ws.root, ("--report-allowed",))
        if name == CLI_BASE:
            if self.base_tree is None:
                raise KeyError(f"{name} needs --base-tree")
            return cfg.AttachCli(name, d, app, self.ws.policy, self.ws.root, tree=self.base_tree)
        raise KeyError(name)

    def add(self, config: cfg.Instrumentation) -> cfg.Instrumentation:
        """Register an extra configuration (scale variants); closed with the others."""
        self._configs[config.name] = config
        return config

    def drop(self, name: str) -> dict[str, float]:
        """Close one configuration (detaching its probes); its timings."""
        c = self._configs.pop(name, None)
        if c is None:
            return {}
        c.close()
        return dict(c.timings)

    def close(self) -> None:
        for name in list(self._configs):
            self.drop(name)


# --- microbenchmark grids -------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One (configuration, operation, depth, threads) combination, measured in every round."""

    key: str
    config: str
    op: str
    depth: int
    threads: int = 1


def run_cells(ctx: Context, cells: Sequence[Cell], rounds: int, seconds: float, what: str) -> dict[str, Any]:
    """Calibrate each cell, then run all of them `rounds` times, interleaved; samples by cell key.

    A configuration that fails (it does not compile or load, or its workload fails) is dropped from the
    grid with every cell of it, and the failure recorded; `none` failing is fatal.
    """
    ns: dict[str, int] = {}
    for c in cells:
        n = ctx.attempt(what, c.config, lambda c=c: calibrate(ctx.config(c.config), c.op, seconds, depth=c.depth,
                                                                threads=c.threads))
        if n is not None:
            ns[c.key] = n
    samples: dict[str, list[float]] = {c.key: [] for c in cells}
    stats: dict[str, list[dict[str, float]]] = {c.key: [] for c in cells}
    total = rounds * len(cells)
    for i, (_r, c) in enumerate(interleaved(cells, rounds, seed=len(what))):
        if c.config in ctx.failed:
            continue
        res = ctx.attempt(what, c.config, lambda c=c: workloads.micro(ctx.config(c.config), c.op, ns[c.key],
                                                                        depth=c.depth, threads=c.threads))
        if res is None:
            continue
        samples[c.key].append(res.ns_per_op)
        stats[c.key].append({k: v / ns[c.key] / c.threads for k, v in res.stats.items() if k != "consumer_cpu_s"})
        if (i + 1) % max(1, total // 10) == 0:
            log.info("%s: %d/%d runs", what, i + 1, total)
    return {c.key: {"config": c.config, "op": c.op, "depth": c.depth, "threads": c.threads, "n": ns[c.key],
                    "ns_per_op": samples[c.key], "per_op": _mean_stats(stats[c.key])}
            for c in cells if c.config not in ctx.failed}


def calibrate(config: cfg.Instrumentation, op: str, seconds: float, *, depth: int, threads: int) -> int:
    """Operations per run so that a run lasts about `seconds` (pilot runs grow tenfold until one takes 20 ms)."""
    n = 100
    while True:
        r = workloads.micro(config, op, n, depth=depth, threads=threads)
        if r.ns_per_op * n >= 2e7 or n >= 10**8:
            return max(100, int(seconds * 1e9 / max(r.ns_per_op, 1.0)))
        n *= 10


def _mean_stats(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = {k for r in rows for k in r}
    return {k: sum(r.get(k, 0.0) for r in rows) / max(len(rows), 1) for k in sorted(keys)}


def phase_micro(ctx: Context) -> None:
    s = ctx.settings
    cells = [Cell(f"{op}/{c}", c, op, s.depth) for op in OPS for c in s.micro_configs]
    res = run_cells(ctx, cells, s.micro_rounds, s.micro_seconds, "micro")
    ctx.results["micro"] = {"depth": s.depth, "configs": [c for c in s.micro_configs if c not in ctx.failed],
                            "ops": list(OPS), "cells": res}


def phase_scale(ctx: Context) -> None:
    s = ctx.settings
    out: dict[str, Any] = {}
    # stack depth and threads: both ops gohook and the syscall tracer see, and getenv (gohook only)
    depth_configs = s.scale_configs
    cells = [Cell(f"{op}/{c}/d{d}", c, op, d) for op in ("getenv", "open") for c in depth_configs
             for d in s.depths]
    res = run_cells(ctx, cells, s.scale_rounds, s.scale_seconds, "scale/depth")
    out["depth"] = {"points": list(s.depths), "configs": [c for c in depth_configs if c not in ctx.failed],
                    "cells": res}
    cells = [Cell(f"{op}/{c}/t{t}", c, op, s.depth, t) for op in ("getenv", "open") for c in depth_configs
             for t in s.thread_counts]
    res = run_cells(ctx, cells, s.scale_rounds, s.scale_seconds, "scale/threads")
    out["threads"] = {"points": list(s.thread_counts), "configs": [c for c in depth_configs if c not in ctx.failed],
                      "cells": res}
    # hook points and modules: the plan grows, the measured call stays syscall.Getenv
    plan, b = ctx.plan, ctx.binary
    for dim, counts, make in (
            ("hooks", s.hook_counts, lambda n: plans.with_hook_count(plan, b, n, keep=("syscall.Getenv",))),
            ("modules", s.module_counts, lambda n: plans.with_module_count(plan, b, n))):
        points: list[tuple[str, int]] = []
        shapes: dict[str, dict[str, int]] = {}
        for n in counts:
            name = f"gohook@{n}{dim}"
            log.info("loading configuration %s", name)
            g = ctx.attempt(f"scale/{dim}", name, lambda name=name, n=n, make=make: ctx.add(cfg.Gohook(
                name, f"gohook, {name}", make(n), b, ctx.options(False), ctx.copy(name))))
            if isinstance(g, cfg.Gohook):
                points.append((name, n))
                shapes[name] = _shape(g)
        names = [name for name, _n in points]
        ref = ctx.attempt(f"scale/{dim}", GOHOOK, lambda: ctx.config(GOHOOK))  # perfapp's own plan, for reference
        if isinstance(ref, cfg.Gohook):
            shapes[GOHOOK] = _shape(ref)
            names_run = [GOHOOK, *names]
        else:
            names_run = names
        cells = [Cell(f"getenv/{name}", name, "getenv", s.depth) for name in names_run]
        cells.append(Cell("getenv/none", NONE, "getenv", s.depth))
        res = run_cells(ctx, cells, s.scale_rounds, s.scale_seconds, f"scale/{dim}")
        timings = {name: ctx.drop(name) for name in names}  # detaching is slow: time it too
        if isinstance(ref, cfg.Gohook):
            timings[GOHOOK] = dict(ref.timings)
        kept = [(name, n) for name, n in points if name not in ctx.failed]
        out[dim] = {"points": [n for _name, n in kept], "names": [name for name, _n in kept], "cells": res,
                    "timings": timings, "shapes": shapes,
                    "reference": GOHOOK if isinstance(ref, cfg.Gohook) and GOHOOK not in ctx.failed else None}
    ctx.results["scale"] = out


def _shape(g: cfg.Gohook) -> dict[str, int]:
    return {"hooks": len(g.plan.hooks), "modules": len(g.plan.modules), "ranges": len(g.att.tables.range_start),
            "search_steps": g.att.tables.search_steps}


def phase_http(ctx: Context) -> None:
    s = ctx.settings
    names = list(s.http_configs)
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    with workloads.HttpBench(ctx.ws.upstream, ctx.ws.files, ctx.ws.root, seconds=s.http_seconds,
                             warmup=s.http_warmup, connections=s.http_connections) as hb:
        total = s.http_rounds * len(names)
        for i, (_r, name) in enumerate(interleaved(names, s.http_rounds, seed=6)):
            res = ctx.attempt("http", name, lambda name=name: hb.run(ctx.config(name)))
            if res is None:
                continue
            row = asdict(res)
            row["cpu_us_per_request"] = res.cpu_us_per_request
            runs[name].append(row)
            log.info("http %d/%d: %s %.0f req/s, p99 %.0f us, %.1f us CPU/request", i + 1, total, name, res.rps,
                     res.p99_us, res.cpu_us_per_request)
            if res.errors:
                log.warning("http: %d errors under %s", res.errors, name)
    names = [n for n in names if n not in ctx.failed]
    ctx.results["http"] = {"configs": names, "seconds": s.http_seconds, "warmup": s.http_warmup,
                           "connections": s.http_connections, "wrk_threads": 1,
                           "runs": {n: runs[n] for n in names}}


def _attach_latency(binary: Path, policy: Path, workdir: Path) -> float:
    """Seconds from starting `gohook attach` to its line saying every probe is attached."""
    err = workdir / f"attach-{binary.name}.stderr"
    argv = [sys.executable, "-m", "gohook", "attach", "--binary", str(binary), "--policy", str(policy)]
    start = time.monotonic()
    with err.open("w") as f:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=f, text=True)
    try:
        deadline = start + 600
        while time.monotonic() < deadline:
            text = err.read_text()
            if "gohook: attached" in text:
                return time.monotonic() - start
            if proc.poll() is not None:
                raise RuntimeError(f"gohook attach {binary} exited {proc.returncode}:\n{text[-2000:]}")
            time.sleep(0.01)
        raise RuntimeError(f"gohook attach {binary} did not attach within 600s")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)


def _stages(binary: Path, policy: Path) -> dict[str, float]:
    """The same pipeline in this process, stage by stage (one run)."""
    from gohook.bpf.loader import attach

    t0 = time.monotonic()
    _b, build = plans.shipped(binary, policy)
    t1 = time.monotonic()
    with attach(build.plan, options=program_options(report_allowed=True)) as att:
        timings = dict(att.timings)
        probes = att.probe_count
    return {"read_and_plan": t1 - t0, **timings, "probes": probes}


def phase_attach(ctx: Context) -> None:
    s = ctx.settings
    small = ctx.ws.copy_of(ctx.ws.app, "perfapp-attach")
    targets = [("perfapp", small, ctx.ws.policy)]
    if BIG_BINARY.exists():
        big = ctx.ws.copy_of(BIG_BINARY, "compile")
        allow = ctx.ws.root / "allow-all.yaml"
        allow.write_text("version: 1\naction: kill\nunattributed: allow\ndefault: [all]\n")
        targets.append(("compile", big, allow))
    else:
        log.warning("no %s: attach latency measured for the small binary only", BIG_BINARY)
    out: dict[str, Any] = {}
    names = [t[0] for t in targets]
    samples: dict[str, list[float]] = {n: [] for n in names}
    by_name = {t[0]: t for t in targets}
    for _r, name in interleaved(names, s.attach_reps, seed=7):
        _n, path, pol = by_name[name]
        samples[name].append(_attach_latency(path, pol, ctx.ws.root))
        log.info("attach %s: %.2fs", name, samples[name][-1])
    for name, path, pol in targets:
        b = GoBinary.open(path)
        out[name] = {"size": path.stat().st_size, "functions": len(b.functions), "seconds": samples[name],
                     "stages": _stages(path, pol)}
    ctx.results["attach"] = out


def _run_stats(config: cfg.Instrumentation, op: str, n: int, depth: int) -> dict[str, float]:
    """One run with kernel.bpf_stats_enabled=1: BPF run time per program run, programs' runs per operation."""
    before = {p.name: p for p in config.program_stats()}
    res = workloads.micro(config, op, n, depth=depth)
    after = config.program_stats()
    zero = ProgramStats("", 0, 0, 0)
    runs = sum(p.run_cnt - before.get(p.name, zero).run_cnt for p in after)
    ns = sum(p.run_time_ns - before.get(p.name, zero).run_time_ns for p in after)
    return {"ns_per_op": res.ns_per_op, "bpf_runs_per_op": runs / n, "bpf_ns_per_op": ns / n,
            "bpf_ns_per_run": ns / runs if runs else 0.0,
            "verified_insns": float(sum(p.verified_insns for p in after))}


def phase_diagnostics(ctx: Context) -> None:
    """Where the cost goes: BPF run time (bpf_stats), the kernel's uprobe floor, the user-space event path."""
    s = ctx.settings
    out: dict[str, Any] = {}
    n = 20000 if s.quick else 100000
    old = STATS_SYSCTL.read_text().strip()
    STATS_SYSCTL.write_text("1")
    try:
        names = [GOHOOK, EVENTS, ENTRY, *(c for c in (SENTINEL, HOOKS_ONLY) if c in s.micro_configs), STRACE,
                 STRACE_CAPS]
        if GOHOOK not in ctx.failed:
            out["http/gohook"] = _http_program_stats(ctx, GOHOOK)
        for op in ("getenv", "open"):
            for name in names:
                k = n // 10 if name == ENTRY else n
                row = ctx.attempt("diagnostics", name,
                                  lambda name=name, op=op, k=k: _run_stats(ctx.config(name), op, k, s.depth))
                if row is not None:
                    out[f"{op}/{name}"] = row
    finally:
        STATS_SYSCTL.write_text(old)
    out["uprobe_floor"] = _uprobe_floor(ctx, n)
    out["spawn"] = _spawn(ctx)
    if EVENTS not in ctx.failed:
        out["event_path"] = _event_path(ctx)
    ctx.results["diagnostics"] = out


def _http_program_stats(ctx: Context, name: str) -> dict[str, Any]:
    """One short HTTP run under `name` with bpf_stats on: each BPF program's runs and run time per request."""
    c = ctx.config(name)
    before = {p.name: p for p in c.program_stats()}
    with workloads.HttpBench(ctx.ws.upstream, ctx.ws.files, ctx.ws.root, seconds=3, warmup=1,
                             connections=ctx.settings.http_connections) as hb:
        res = hb.run(c)
    zero = ProgramStats("", 0, 0, 0)
    reqs = max(res.total_requests, 1)
    label = {f"gohook_hook_{h.hook_id}": f"{h.function} hook" for h in getattr(c, "plan", ctx.plan).hooks}
    prov = getattr(getattr(c, "plan", ctx.plan), "provenance", None)
    for i in range(len(prov.created) if prov is not None else 0):
        label[render.created_name(i)] = "goroutine created (provenance)"
    programs = {}
    for p in c.program_stats():
        b = before.get(p.name, zero)
        if p.run_cnt > b.run_cnt:
            programs[p.name] = {"runs_per_request": (p.run_cnt - b.run_cnt) / reqs,
                                "ns_per_run": (p.run_time_ns - b.run_time_ns) / (p.run_cnt - b.run_cnt),
                                "what": label.get(p.name, "")}
    return {"cpu_us_per_request": res.cpu_us_per_request, "requests": reqs, "programs": programs,
            "counters_per_request": {k: v / reqs for k, v in res.stats.items() if isinstance(v, int | float)}}


def _spawn(ctx: Context) -> dict[str, Any]:
    """ns per goroutine started (and waited for) by a module, under none and the gohook variants."""
    s = ctx.settings
    names = [c for c in (NONE, GOHOOK, SENTINEL, HOOKS_ONLY) if c not in ctx.failed
             and (c in (NONE, GOHOOK) or c in s.micro_configs)]
    cells = [Cell(f"spawn/{c}", c, "spawn", s.depth) for c in names]
    return run_cells(ctx, cells, s.scale_rounds, s.scale_seconds, "diagnostics/spawn")


class _NoopConfig(cfg.Instrumentation):
    """bench_probe's NoopProbe (a BPF program that returns at once) on the given probe offsets of app."""

    def __init__(self, name: str, description: str, app: Path, offsets: list[int]) -> None:
        from bench_probe import NoopProbe

        super().__init__(name, description, app)
        self.probe = NoopProbe(self.app, *offsets)
        self.probe.attach_probes()

    def close(self) -> None:
        self.probe.__exit__(None, None, None)


def _uprobe_floor(ctx: Context, n: int) -> dict[str, list[float]]:
    """getenv under a bare uprobe against none, on 1 and 2 threads: the kernel's own cost of a probe hit."""
    getenv = next(h for h in ctx.plan.hooks if h.function == "syscall.Getenv")
    noop = ctx.add(_NoopConfig("uprobe-noop", "a BPF program that returns at once, on syscall.Getenv's probe",
                               ctx.copy("uprobe-noop"), [getenv.file_offset]))
    keys = ["none", "noop", "none/t2", "noop/t2"]
    samples: dict[str, list[float]] = {k: [] for k in keys}
    for _r, key in interleaved(keys, ctx.settings.scale_rounds, seed=8):
        c = ctx.config(NONE) if key.startswith("none") else noop
        threads = 2 if key.endswith("/t2") else 1
        samples[key].append(workloads.micro(c, "getenv", n, depth=ctx.settings.depth, threads=threads).ns_per_op)
    ctx.drop(noop.name)
    return samples


def _event_path(ctx: Context) -> dict[str, float]:
    """Microseconds per event in user space, stage by stage, for the events of a getenv microbenchmark run."""
    from gohook.events.symbolize import Symbolizer

    g = ctx.config(EVENTS)
    assert isinstance(g, cfg.Gohook)
    n = 1000  # fits the ring buffer: nothing is lost while nobody reads
    g.att.drain()
    proc = subprocess.run([str(g.app), "micro", "-op", "getenv", "-n", str(n), "-depth", str(ctx.settings.depth)],
                          capture_output=True, timeout=300, check=True)
    del proc
    t0 = time.perf_counter()
    events = decode_events(g.att.drain(), g.att.options.layout)
    t1 = time.perf_counter()
    sym = Symbolizer(ctx.binary, g.plan)
    t2 = time.perf_counter()
    recs = [sym.record(e) for e in events]
    t3 = time.perf_counter()
    docs = [r.as_json() for r in recs]
    t4 = time.perf_counter()
    lines = [json.dumps(d, separators=(",", ":")) for d in docs]
    t5 = time.perf_counter()
    k = max(len(events), 1)
    return {"events": float(len(events)), "read_decode_us": 1e6 * (t1 - t0) / k, "symbolize_us": 1e6 * (t3 - t2) / k,
            "as_json_us": 1e6 * (t4 - t3) / k, "dumps_us": 1e6 * (t5 - t4) / k,
            "line_bytes": float(len(lines[0]) if lines else 0)}


# --- main -----------------------------------------------------------------------------------


def run_phase(ctx: Context, phase: str) -> None:
    """One phase; a phase that fails is recorded in the report, and the others still run."""
    log.info("phase %s", phase)
    t = time.monotonic()
    try:
        globals()[f"phase_{phase}"](ctx)
    except Exception as exc:  # reported, not swallowed: the report lists it under the failures
        log.exception("phase %s failed", phase)
        ctx.results.setdefault("failures", []).append(
            {"phase": phase, "config": "(the phase)", "error": f"{type(exc).__name__}: {exc}"[:4000]})
    ctx.results.setdefault("phase_seconds", {})[phase] = time.monotonic() - t


def source_state() -> dict[str, Any]:
    """The code measured: commit, uncommitted files, and a hash of the BPF program (the tree changes often)."""
    import hashlib

    def git(*a: str) -> str:
        proc = subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True, timeout=30)
        return proc.stdout.rstrip("\n") if proc.returncode == 0 else ""  # porcelain lines start with a space

    bpf = ROOT / "gohook" / "bpf" / "c" / "gohook.bpf.c"
    return {"commit": git("rev-parse", "--short", "HEAD").strip(),
            "modified": [ln[3:] for ln in git("status", "--porcelain", "--untracked-files=no").splitlines()],
            "bpf_sha256": hashlib.sha256(render.program_source().encode()).hexdigest()[:16] if bpf.exists() else ""}


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"kernel": platform.release(), "cpu": cpu, "cpus": os.cpu_count(), "python": platform.python_version(),
            "loadavg": Path("/proc/loadavg").read_text().split()[:3]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="examples:\n  sudo .venv/bin/python bench/evaluate.py --quick\n"
                                        "  sudo .venv/bin/python bench/evaluate.py            # the full run, "
                                        "about 15 minutes\n"
                                        "  sudo .venv/bin/python bench/evaluate.py --only http --out /tmp/perf")
    ap.add_argument("--quick", action="store_true", help="fewer rounds and configs, shorter runs (about 3 min)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs", help="where performance.md and perf/ go (docs/)")
    ap.add_argument("--only", default=",".join(PHASES), help=f"comma-separated phases: {', '.join(PHASES)}")
    ap.add_argument("--configs", help="only these configurations (comma-separated; `none` is always kept): "
                    + ", ".join(DESCRIPTIONS))
    ap.add_argument("--results", type=Path, help="write the report from this results.json instead of measuring")
    ap.add_argument("--http-rounds", type=int, help="interleaved rounds of the HTTP phase (7 full, 2 quick): more "
                    "rounds narrow the spread on a busy machine")
    ap.add_argument("--base-tree", type=Path, help=f"another gohook checkout (e.g. `git worktree add /tmp/base REV`): "
                    f"adds the configuration {CLI_BASE}, that tree's `gohook attach`, to the HTTP phase")
    ap.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(relativeCreated)7.0fms: %(message)s")
    log.setLevel(logging.INFO if args.verbose else logging.WARNING)
    if args.results is not None:
        results = json.loads(args.results.read_text())
        report.write(results, args.out)
        return 0
    phases = [p for p in args.only.split(",") if p]
    unknown = set(phases) - set(PHASES)
    if unknown:
        ap.error(f"unknown phases {', '.join(sorted(unknown))}; known: {', '.join(PHASES)}")
    if os.geteuid() != 0:
        print("evaluate: needs root (uprobes and BPF programs)", file=sys.stderr)
        return 2
    settings = QUICK if args.quick else FULL
    absent = {c for c, ok in ((HOOKS_ONLY, plans.has_provenance()),) if not ok}
    settings = replace(settings, **{f: tuple(c for c in getattr(settings, f) if c not in absent)
                                    for f in ("micro_configs", "scale_configs", "http_configs")})
    if args.configs:
        keep = {NONE, *(c for c in args.configs.split(",") if c)}
        if keep - set(DESCRIPTIONS):
            ap.error(f"unknown configurations {', '.join(sorted(keep - set(DESCRIPTIONS)))}")
        settings = replace(settings, **{f: tuple(c for c in getattr(settings, f) if c in keep)
                                        for f in ("micro_configs", "scale_configs", "http_configs")})
    if args.base_tree is not None:
        if not (args.base_tree / "gohook" / "__main__.py").is_file():
            ap.error(f"--base-tree {args.base_tree}: not a gohook checkout")
        settings = replace(settings, http_configs=(*settings.http_configs, CLI_BASE))
    if args.http_rounds is not None:
        if args.http_rounds < 1:
            ap.error("--http-rounds must be at least 1")
        settings = replace(settings, http_rounds=args.http_rounds)
    started = time.time()
    source = fixture.build_perfapp()
    results: dict[str, Any] = {"settings": asdict(settings), "machine": machine(), "source": source_state(),
                               "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
                               "phases": phases, "descriptions": DESCRIPTIONS,
                               "base_tree": str(args.base_tree.resolve()) if args.base_tree else None}
    with fixture.Workspace.create(source) as ws:
        binary = GoBinary.open(ws.app)
        results["binary"] = {"go": binary.go_version, "size": ws.app.stat().st_size}
        ctx = Context(settings, ws, binary, results, args.base_tree.resolve() if args.base_tree else None)
        results["plan"] = {"hooks": len(ctx.plan.hooks), "modules": list(ctx.plan.modules),
                           "ranges": len(ctx.plan.ranges),
                           "functions": sorted({h.function for h in ctx.plan.hooks}),
                           "skipped": [list(x) for x in ctx._shipped[1].skipped]}  # noqa: SLF001
        try:
            for phase in PHASES:
                if phase in phases:
                    run_phase(ctx, phase)
        finally:
            ctx.close()
            results["seconds"] = time.time() - started
            results["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
            report.write(results, args.out)  # also what was measured before an interruption
    print(f"evaluate: wrote {args.out / 'performance.md'} and {args.out / 'perf'}/ in {results['seconds']:.0f}s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
