"""The attach pipeline as an API: typed options in, an exit status out, no argparse.

    binary -> plan -> BPF -> attach -> events -> views

run_session(AttachOptions(...)) is the whole of `gohook attach`: the host
preflight (gohook.bpf.host), reading the binary and planning (prepare:
catalog + policy -> EnforcementPlan), compiling, loading and attaching the
BPF program, optionally starting a command (only after every probe is
attached, so package init() is covered), then decoding and symbolizing
events into a view (JSON lines, readable lines or the live table) until the
command exits, the duration ends or a signal arrives; then the summary, the
learned policy (learn mode) and the exit status. The command line
(gohook.commands.attach) only turns its arguments into AttachOptions;
benchmarks and tests call prepare() and program_options() directly.

Decisions happen in the kernel; this process only reports. A started
command dies with gohook (PR_SET_PDEATHSIG, and an explicit kill on every
exit path: fail closed), and the session's status is the command's (137
when it was killed).
"""

from __future__ import annotations

import ctypes
import enum
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gohook.errors import GohookError
from gohook.events.decode import decode_events
from gohook.events.symbolize import EventRecord, Symbolizer
from gohook.gosym import GoBinary
from gohook.policy.format import CapabilityNames, Mode, Policy, load_policy
from gohook.policy.learn import Learner
from gohook.views.jsonlines import LineOutput
from gohook.views.progress import Progress

if TYPE_CHECKING:
    from gohook.bpf.loader import Counters
    from gohook.bpf.render import ProgramOptions
    from gohook.plan.build import PlanBuild

log = logging.getLogger("gohook")
PR_SET_PDEATHSIG = 1


class AttachUsageError(GohookError):
    """Bad combination of attach options."""


class OutputFormat(enum.Enum):
    """Where events go: JSON lines on stdout, readable lines on stdout, or the live terminal view."""

    JSON = "json"
    TEXT = "text"
    LIVE = "live"


@dataclass(frozen=True)
class AttachOptions:
    """One attach session, as `gohook attach` takes it on the command line.

    binary: the Go executable to hook (uprobes are per file); policy: policy
    YAML (None only in learn mode); pids: only these processes (empty: every
    process running the binary); cmd: a command to start once every probe is
    attached; duration: stop after this many seconds (None or 0: no limit);
    report_allowed: allowed calls become events too (None: only in learn mode
    and the live view); sentinel: the system-call sentinel setting
    (gohook.plan.model.SENTINEL_SETTINGS); learned_policy: learn mode writes
    the learned policy to this file (None: to stdout, unless JSON output).
    """

    binary: str
    policy: str | None = None
    mode: Mode = Mode.ENFORCE
    pids: tuple[int, ...] = ()
    cmd: tuple[str, ...] = ()
    duration: float | None = None
    report_allowed: bool | None = None
    sentinel: str = "auto"
    output: OutputFormat = OutputFormat.TEXT
    learned_policy: str | None = None

    @property
    def as_json(self) -> bool:
        return self.output is OutputFormat.JSON


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL it when gohook dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def exit_status(returncode: int) -> int:
    """A child's status as a shell reports it: 128+N when killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def check_options(options: AttachOptions) -> None:
    """The option combinations a session cannot run with (AttachUsageError)."""
    if options.cmd and options.pids:
        raise AttachUsageError("give either --pid or -- CMD, not both")
    if not Path(options.binary).exists():
        raise AttachUsageError(f"{options.binary}: no such file")


def load_or_empty_policy(path: str | None, mode: Mode, vocab: CapabilityNames) -> Policy:
    """The policy file, or in learn mode without one the empty policy."""
    if path is None:
        if mode is not Mode.LEARN:
            raise AttachUsageError("--policy is required unless --mode learn")
        return Policy(path="(learn)")
    return load_policy(path, vocab)


def prepare(options: AttachOptions, progress: Progress | None = None) -> tuple[GoBinary, PlanBuild]:
    """Read the binary and plan: catalog + policy + hook sites -> the enforcement plan (no BPF yet)."""
    # Imported here: building the CLI parser imports the attach command and
    # with it this module, and the catalog and call-site finder (capstone)
    # are start-up cost the other commands should not pay.
    from gohook.plan.build import build_plan
    from gohook.sites.catalog import load_catalog
    from gohook.sites.hooks import find_hook_sites

    progress = progress or Progress(enabled=False)
    catalog = load_catalog()
    vocab = CapabilityNames([c.name for c in catalog.capabilities])
    policy = load_or_empty_policy(options.policy, options.mode, vocab)
    with progress.step("reading the binary"):
        binary = GoBinary.open(options.binary)
        hooks = find_hook_sites(binary, catalog)
    with progress.step("building the plan"):
        build = build_plan(binary, hooks, catalog, policy, options.mode, options.sentinel)
    for fn, why in build.skipped:
        log.info("hook %s not attached: %s", fn, why)
    return binary, build


def _preflight() -> None:
    """The host's fast checks (privileges, bcc, headers, tracefs): the first failure, with its fix, is fatal."""
    from gohook.bpf.host import first_failure, preflight

    message = first_failure(preflight())
    if message:
        raise GohookError(message)


def program_options(*, report_allowed: bool | None = None, mode: Mode = Mode.ENFORCE,
                    live: bool = False) -> ProgramOptions:
    """Loader options of a session.

    Allowed calls become events only where someone reads them: in learn mode
    (always), in the live view (its table is built from them), or with
    --report-allowed. Otherwise (enforce and audit with --json or plain
    output) only violations are events and allowed calls are counted in the
    kernel: each event costs tens of microseconds here, which on a busy
    service is most of gohook's cost (docs/performance.md).
    """
    from gohook.bpf.render import ProgramOptions

    report = report_allowed
    if report is None:
        report = live or mode is Mode.LEARN
    return ProgramOptions(report_allowed=report)


def run_session(options: AttachOptions, *, on_record: Callable[[EventRecord], None] | None = None) -> int:
    """The whole attach session; returns gohook's exit status.

    Events go to on_record when given, else to the view options.output names.
    """
    from gohook.bpf.loader import attach as bpf_attach

    check_options(options)
    live = options.output is OutputFormat.LIVE
    progress = Progress(enabled=sys.stderr.isatty())
    _preflight()
    binary, build = prepare(options, progress)
    plan = build.plan
    if not plan.hooks:
        raise GohookError(f"{options.binary}: no hookable capability function found (nothing to enforce)")
    symbolizer = Symbolizer(binary, plan)
    out = LineOutput(options.as_json)
    learned = Learner() if plan.mode is Mode.LEARN else None
    child: subprocess.Popen[bytes] | None = None
    stop = {"flag": False}

    def request_stop(signum: int, _frame: Any) -> None:
        stop["flag"] = True

    old = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    t0 = time.monotonic()
    try:
        with progress.step(f"compiling and attaching {len(plan.hooks)} probes"):
            loader_options = program_options(report_allowed=options.report_allowed, mode=options.mode, live=live)
            attached = bpf_attach(plan, pids=list(options.pids), options=loader_options)
        print(f"gohook: attached {attached.probe_count} probes to {options.binary} in "
              f"{time.monotonic() - t0:.2f}s (mode {plan.mode.value}, {len(plan.modules)} modules, "
              f"{len(plan.ranges)} ranges; system-call sentinel {build.sentinel_reason})", file=sys.stderr)
        view = None
        if live:
            from gohook.views.live import LiveView, ViewState

            state = ViewState(binary=options.binary, mode=plan.mode.value, hooks=attached.probe_count)
            view = LiveView(state)
            on_record = state.add
        try:
            if view is not None:
                view.__enter__()
            if options.cmd:
                # with --json, stdout carries only JSON lines: the child's own output goes to stderr
                child = subprocess.Popen(list(options.cmd), preexec_fn=_die_with_parent,  # noqa: PLW1509 - PDEATHSIG
                                         stdout=sys.stderr.fileno() if options.as_json else None)
                print(f"gohook: started {' '.join(options.cmd)} (pid {child.pid})", file=sys.stderr)
            deliver = on_record if on_record is not None else out.emit

            def handle(records: list[bytes]) -> None:
                for ev in decode_events(records, attached.options.layout):
                    rec = symbolizer.record(ev)
                    if learned is not None:
                        learned.observe(rec.module, rec.capability, rec.argument, rec.stack,
                                        unattributed=rec.unattributed)
                    deliver(rec)

            deadline = time.monotonic() + options.duration if options.duration else None
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
        return _finish(options, counters, learned, child)
    finally:
        # restored only now: a second Ctrl-C while the summary or the learned policy is written is ignored
        for s, h in old.items():
            signal.signal(s, h)


def _finish(options: AttachOptions, counters: Counters, learned: Learner | None,
            child: subprocess.Popen[bytes] | None) -> int:
    """Summary lines, the learned policy, and the exit status."""
    lost = f", {counters.lost} events lost" if counters.lost else ""
    print(f"gohook: {counters.hits} hooked calls, {counters.denied} killed{lost}", file=sys.stderr)
    if counters.signal_failed:
        print(f"gohook: WARNING: {counters.signal_failed} kill signals failed", file=sys.stderr)
    if learned is not None:
        text = learned.policy_text(options.binary)
        if options.learned_policy:
            Path(options.learned_policy).write_text(text, encoding="utf-8")
            print(f"gohook: wrote learned policy to {options.learned_policy}", file=sys.stderr)
        elif not options.as_json:
            sys.stdout.write(text)
    if child is not None:
        status = exit_status(child.returncode)
        print(f"gohook: {options.cmd[0]} exited with status {status}", file=sys.stderr)
        return status
    return 0
