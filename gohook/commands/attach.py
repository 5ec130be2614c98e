"""`gohook attach`: enforce a policy on every process running a Go binary.

    gohook attach --binary APP --policy P.yaml [--mode enforce|audit|learn] [--pid PID]...
                  [--json] [--duration SECONDS] [-o FILE] [-- CMD ARGS...]

Stages: preflight (doctor's fast checks) -> inspect the binary (hook sites)
-> plan (policy -> masks, ranges) -> compile/load/attach (gohook.bpf) ->
optionally start CMD (only after every probe is attached, so package init()
is covered) -> poll events -> output -> exit.

Decisions happen in the kernel; this process only reports. With `-- CMD`
the child dies with gohook (PR_SET_PDEATHSIG and an explicit kill on every
exit path: fail closed), and gohook exits with the child's status (137 when
it was killed).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gohook.errors import GohookError
from gohook.events.decode import decode_events
from gohook.events.symbolize import EventRecord, Symbolizer
from gohook.gosym import GoBinary
from gohook.plan.model import SENTINEL_SETTINGS
from gohook.policy.format import CapabilityNames, Mode, Policy, load_policy
from gohook.views.progress import Progress

if TYPE_CHECKING:
    from gohook.bpf.render import ProgramOptions
    from gohook.plan.build import PlanBuild

log = logging.getLogger("gohook")
PR_SET_PDEATHSIG = 1


class AttachUsageError(GohookError):
    """Bad combination of attach options."""


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL it when gohook dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def exit_status(returncode: int) -> int:
    """A child's status as a shell reports it: 128+N when killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def load_or_empty_policy(path: str | None, mode: Mode, vocab: CapabilityNames) -> Policy:
    if path is None:
        if mode is not Mode.LEARN:
            raise AttachUsageError("--policy is required unless --mode learn")
        return Policy(path="(learn)")
    return load_policy(path, vocab)


def prepare(args: argparse.Namespace, progress: Progress) -> tuple[GoBinary, PlanBuild]:
    # Imported here: building the CLI parser imports this module, and the
    # catalog and call-site finder (capstone) are start-up cost the other
    # commands should not pay.
    from gohook.plan.build import build_plan
    from gohook.sites.catalog import load_catalog
    from gohook.sites.hooks import find_hook_sites

    catalog = load_catalog()
    vocab = CapabilityNames([c.name for c in catalog.capabilities])
    mode = Mode(args.mode)
    policy = load_or_empty_policy(args.policy, mode, vocab)
    with progress.step("reading the binary"):
        binary = GoBinary.open(args.binary)
        hooks = find_hook_sites(binary, catalog)
    with progress.step("building the plan"):
        build = build_plan(binary, hooks, catalog, policy, mode, getattr(args, "sentinel", "auto"))
    for fn, why in build.skipped:
        log.info("hook %s not attached: %s", fn, why)
    return binary, build


def _preflight() -> None:
    try:
        from gohook.commands import doctor
    except ImportError:  # pragma: no cover - doctor ships with gohook
        return
    checks = doctor.preflight()
    message = doctor.first_failure(checks)
    if message:
        raise GohookError(message)


class Output:
    """Where records go: JSON lines on stdout, or readable lines."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def emit(self, rec: EventRecord) -> None:
        if self.as_json:
            sys.stdout.write(json.dumps(rec.as_json(), separators=(",", ":")) + "\n")
        else:
            arg = f" {rec.argument!r}" if rec.argument is not None else ""
            when = time.strftime("%H:%M:%S", time.localtime(rec.time))
            sys.stdout.write(f"{when} pid {rec.pid} {rec.decision.upper():5} {rec.module} {rec.capability} "
                             f"{rec.function}{arg}\n")
        sys.stdout.flush()


def program_options(args: argparse.Namespace, *, live: bool = False) -> ProgramOptions:
    """Loader options of a session.

    Allowed calls become events only where someone reads them: in learn mode
    (always), in the live view (its table is built from them), or with
    --report-allowed. Otherwise (enforce and audit with --json or plain
    output) only violations are events and allowed calls are counted in the
    kernel: each event costs tens of microseconds here, which on a busy
    service is most of gohook's cost (docs/performance.md).
    """
    from gohook.bpf.render import ProgramOptions

    report = getattr(args, "report_allowed", None)
    if report is None:
        report = live or getattr(args, "mode", "enforce") == Mode.LEARN.value
    return ProgramOptions(report_allowed=report)


def run_session(args: argparse.Namespace, *, on_record: Callable[[EventRecord], None] | None = None,
                live: bool = False) -> int:
    """The whole attach session; returns gohook's exit status."""
    from gohook.bpf.loader import attach as bpf_attach

    progress = Progress(enabled=sys.stderr.isatty())
    _preflight()
    binary, build = prepare(args, progress)
    plan = build.plan
    if not plan.hooks:
        raise GohookError(f"{args.binary}: no hookable capability function found (nothing to enforce)")
    symbolizer = Symbolizer(binary, plan)
    out = Output(args.json)
    learned = Learner() if plan.mode is Mode.LEARN else None
    child: subprocess.Popen[bytes] | None = None
    stop = {"flag": False}

    def request_stop(signum: int, _frame: Any) -> None:
        stop["flag"] = True

    old = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    t0 = time.monotonic()
    try:
        with progress.step(f"compiling and attaching {len(plan.hooks)} probes"):
            attached = bpf_attach(plan, pids=args.pid, options=program_options(args, live=live))
        print(f"gohook: attached {attached.probe_count} probes to {args.binary} in {time.monotonic() - t0:.2f}s "
              f"(mode {plan.mode.value}, {len(plan.modules)} modules, {len(plan.ranges)} ranges; "
              f"system-call sentinel {build.sentinel_reason})", file=sys.stderr)
        view = None
        if live:
            from gohook.views.live import LiveView, ViewState

            state = ViewState(binary=args.binary, mode=plan.mode.value, hooks=attached.probe_count)
            view = LiveView(state)
            on_record = state.add
        try:
            if view is not None:
                view.__enter__()
            if args.cmd:
                # with --json, stdout carries only JSON lines: the child's own output goes to stderr
                child = subprocess.Popen(args.cmd, preexec_fn=_die_with_parent,  # noqa: PLW1509 - for PDEATHSIG
                                         stdout=sys.stderr.fileno() if args.json else None)
                print(f"gohook: started {' '.join(args.cmd)} (pid {child.pid})", file=sys.stderr)
            deliver = on_record if on_record is not None else out.emit

            def handle(records: list[bytes]) -> None:
                for ev in decode_events(records, attached.options.layout):
                    rec = symbolizer.record(ev)
                    if learned is not None:
                        learned.observe(rec)
                    deliver(rec)

            deadline = time.monotonic() + args.duration if args.duration else None
            while not stop["flag"]:
                handle(attached.poll(100))
                if view is not None and view.tick(attached):
                    break
                if child is not None and child.poll() is not None:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
            handle(attached.drain())
            counters = attached.counters()
        finally:
            if child is not None and child.poll() is None:
                child.kill()  # fail closed: the child never outlives enforcement
                child.wait()
            if view is not None:
                view.__exit__(None, None, None)
            attached.close()
        return _finish(args, counters, learned, child)
    finally:
        # restored only now: a second Ctrl-C while the summary or the learned policy is written is ignored
        for s, h in old.items():
            signal.signal(s, h)


def _finish(args: argparse.Namespace, counters: Any, learned: Learner | None,
            child: subprocess.Popen[bytes] | None) -> int:
    """Summary lines, the learned policy, and the exit status."""
    lost = f", {counters.lost} events lost" if counters.lost else ""
    print(f"gohook: {counters.hits} hooked calls, {counters.denied} killed{lost}", file=sys.stderr)
    if counters.signal_failed:
        print(f"gohook: WARNING: {counters.signal_failed} kill signals failed", file=sys.stderr)
    if learned is not None:
        text = learned.policy_text(args.binary)
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
            print(f"gohook: wrote learned policy to {args.output}", file=sys.stderr)
        elif not args.json:
            sys.stdout.write(text)
    if child is not None:
        status = exit_status(child.returncode)
        print(f"gohook: {args.cmd[0]} exited with status {status}", file=sys.stderr)
        return status
    return 0


def example_path(rec: EventRecord, limit: int = 6) -> str:
    """`module function -> ... -> hooked function` from a recorded stack (outermost relevant frame first)."""
    frames = list(rec.stack)
    k = next((i for i, f in enumerate(frames) if f.module == rec.module), len(frames) - 1)
    names = [f.function for f in reversed(frames[: k + 1])]
    if len(names) > limit:
        names = [*names[:2], "...", *names[-(limit - 3):]]
    return " -> ".join(names)


class Learner:
    """Learn mode: every (module, capability) seen, with one example stack and argument."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, EventRecord]] = {}

    def observe(self, rec: EventRecord) -> None:
        if rec.unattributed or rec.module.startswith("std:"):  # std:init is not a module a policy names
            return
        self.seen.setdefault(rec.module, {}).setdefault(rec.capability, rec)

    def policy_text(self, binary: str) -> str:
        from gohook.policy.format import ModuleRule, render_policy

        rules = []
        notes: dict[str, list[str]] = {}
        for module in sorted(self.seen):
            caps = self.seen[module]
            rules.append(ModuleRule(module, frozenset(caps)))
            lines = []
            for cap, rec in sorted(caps.items()):
                arg = f" {rec.argument!r}" if rec.argument else ""
                lines.append(f"learned: {cap}{arg} via {example_path(rec)}")
            notes[module] = lines
        policy = Policy(path="learned", modules=tuple(rules))
        header = [f"learned by gohook attach --mode learn on {Path(binary).name} "
                  f"({time.strftime('%Y-%m-%d %H:%M')}): allows exactly what was observed"]
        return render_policy(policy, header=header, notes=notes)


def run(args: argparse.Namespace) -> int:
    if args.cmd and args.pid:
        raise AttachUsageError("give either --pid or -- CMD, not both")
    if not Path(args.binary).exists():
        raise AttachUsageError(f"{args.binary}: no such file")
    return run_session(args, live=not args.json and sys.stdout.isatty())


def register(sub: Any) -> None:
    p = sub.add_parser(
        "attach", help="enforce a policy on every process running a Go binary",
        description="Attach uprobes to the capability functions of a Go binary and enforce a per-module policy "
                    "in the kernel.",
        epilog="examples:\n"
               "  gohook attach --binary ./app --policy app.yaml                 # every process running ./app\n"
               "  gohook attach --binary ./app --policy app.yaml -- ./app serve   # start it under enforcement\n"
               "  gohook attach --binary ./app --mode learn -o learned.yaml -- ./app test-run\n"
               "  gohook attach --binary ./app --policy app.yaml --pid 4242 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", required=True, help="the Go executable to hook (uprobes are per file)")
    p.add_argument("--policy", help="policy YAML (optional in learn mode)")
    p.add_argument("--mode", choices=[m.value for m in Mode], default="enforce",
                   help="enforce: the policy's action applies; audit: only record; learn: record and write a policy")
    p.add_argument("--pid", type=int, action="append", default=[], help="only these processes (repeatable)")
    p.add_argument("--json", action="store_true", help="one JSON object per event on stdout")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--report-allowed", action=argparse.BooleanOptionalAction, default=None,
                   help="also report allowed calls as events (default: only in learn mode and the live view; "
                        "otherwise only violations are events and allowed calls are counted, which costs far "
                        "less on busy services)")
    p.add_argument("--sentinel", choices=SENTINEL_SETTINGS, default="auto",
                   help="the system-call sentinel (syscall tracing of capability system calls no hook saw; it "
                        "runs for every system call on the machine): auto (default) turns it on for binaries "
                        "with cgo, module assembly or module system calls")
    p.add_argument("-o", "--output", help="learn mode: write the learned policy here")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ARGS: start CMD once every probe is attached")
    p.set_defaults(run=_run_entry)


def _run_entry(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    args.cmd = cmd
    return run(args)  # privileges are checked by the doctor's preflight, with the fix in the message
