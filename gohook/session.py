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

Decisions happen in the kernel; this process reports, and checks that
the probes are still there (gohook.bpf.integrity: at attach and every
AttachOptions.integrity_interval seconds, in the `-- CMD` processes and the
--pid targets; a removed probe is an event, and in enforce mode with action
kill the process is killed from here).

Fail closed: a started command runs in a new PID namespace whose init is
gohook's (`_namespace_init`), not the command. That init dies with gohook
(PR_SET_PDEATHSIG=SIGKILL, through a wrapper that has the same death
signal), and when a namespace's init dies the kernel kills every process of
the namespace. The command cannot clear the init's death signal (it is per
process), cannot signal the init (a namespace's init gets no signal from
inside that it has no handler for, SIGKILL included), and sees no pid
outside its namespace (the namespace also gets its own /proc). So if gohook
dies for any reason, SIGKILL included, the command dies too, before another
hooked call. The session's status is the command's (128+N when signal N
killed it: 137 for a kill). --pid targets are not gohook's children: in
enforce mode gohook traces each one (`PidLeash`: PTRACE_SEIZE of its main
thread with PTRACE_O_EXITKILL, so the kernel SIGKILLs it when gohook's
tracing thread exits, gohook's death included) and detaches at a clean stop.
A target that is already traced cannot be leashed: gohook says so and goes
on without (docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import enum
import inspect
import logging
import os
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
from gohook.events.symbolize import UNATTRIBUTED, EventRecord, Symbolizer
from gohook.gosym import STD, GoBinary
from gohook.policy.format import Action, CapabilityNames, Mode, Policy, load_policy
from gohook.policy.learn import Learner, LearnScope
from gohook.views.jsonlines import LineOutput
from gohook.views.progress import Progress

if TYPE_CHECKING:
    from gohook.attach.returns import DenyReturns
    from gohook.attach.tracer import Tracer
    from gohook.bpf.integrity import Tamper
    from gohook.bpf.loader import Attached, Counters
    from gohook.bpf.render import ProgramOptions
    from gohook.plan.build import PlanBuild
    from gohook.plan.model import EnforcementPlan

log = logging.getLogger("gohook")
TAMPER_CAPABILITY = "tamper"  # EventRecord.capability of a removed-probe event


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
    the learned policy to this file (None: to stdout, unless JSON output);
    learn_scope: what the learned policy keeps of each call (argument
    patterns, or only the capability: gohook.policy.learn.LearnScope);
    allow_unmatched: accept policy module rules that match no module of the
    binary (else a typo'd module name is an error, not a silent `default`);
    use_cache: take the hook sites from the analysis cache entry of this
    file when there is a trusted one (gohook.static.cache; the command sets
    it unless --no-cache).
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
    learn_scope: LearnScope = LearnScope.ARGUMENTS
    integrity_interval: float = 0.5
    allow_unmatched: bool = False  # accept module rules that match no module of the binary
    use_cache: bool = False  # hook sites from gohook.static.cache when an entry for this file is there

    @property
    def as_json(self) -> bool:
        return self.output is OutputFormat.JSON


class ProbeGuard:
    """Probe-integrity checks of one session (gohook.bpf.integrity): removed probes -> records, kills.

    Each removed probe of a process is reported once; with kill (enforce mode, action kill) the process is
    SIGKILLed from here, right after the check that found it. checks and seconds measure the cost (one
    check = one process).
    """

    def __init__(self, plan: EnforcementPlan, binary: str, kill: bool) -> None:
        from gohook.bpf.integrity import IntegrityChecker

        self.checker = IntegrityChecker(plan, binary)
        self.kill = kill
        self.decision = "deny" if kill else "audit"
        self.reported: set[tuple[int, int]] = set()  # (pid, file offset)
        self.tampered: set[int] = set()
        self.killed: set[int] = set()
        self.checks = 0
        self.seconds = 0.0

    def check(self, pids: list[int]) -> list[EventRecord]:
        """Check every pid (gone ones and ones that do not run the binary are skipped)."""
        out: list[EventRecord] = []
        for pid in pids:
            if pid in self.killed:
                continue
            start = time.perf_counter()
            found = self.checker.check(pid)
            self.seconds += time.perf_counter() - start
            self.checks += 1
            fresh = [t for t in found or () if (pid, t.probe.file_offset) not in self.reported]
            if not fresh:
                continue
            killed = False
            if self.kill:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed = True
                    self.killed.add(pid)
                except ProcessLookupError:
                    pass
            self.tampered.add(pid)
            for t in fresh:
                self.reported.add((pid, t.probe.file_offset))
                out.append(self.record(t, killed))
        return out

    def record(self, t: Tamper, killed: bool) -> EventRecord:
        what = t.describe()
        return EventRecord(time=time.time(), pid=t.pid, tid=t.pid, goid=0, capability=TAMPER_CAPABILITY,
                           function=t.probe.what, module=UNATTRIBUTED, decision=self.decision, argument=None,
                           unattributed=True, via="none",
                           note=what + ("; killed from user space" if killed else ""), tamper=what)


class BinaryWatch:
    """Notices when --binary's path comes to hold another file (a new build moved in, a package upgrade).

    Uprobes belong to the file attach probed (its inode): processes started from the new file run without
    them. attach cannot plan the new file in the middle of a session, so it says so loudly, once per new
    file, on stderr (gohook agent re-plans and attaches instead: docs/agent.md)."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.first = self._inode()
        self.reported: set[tuple[int, int]] = set()

    def _inode(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.binary)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def check(self) -> bool:
        """True (and a WARNING on stderr, the first time) when the path now holds another file."""
        now = self._inode()
        if now is None or now == self.first:
            return False
        if now not in self.reported:
            self.reported.add(now)
            was = self.first[1] if self.first else "?"
            print(f"gohook: WARNING: {self.binary} was replaced by another file (inode {was} -> {now[1]}): "
                  "processes started from the new file are NOT enforced by this session; restart gohook attach "
                  "on it, or use gohook agent, which probes replaced files", file=sys.stderr)
        return True


def _namespace_init(argv: list[str]) -> None:
    """The `-- CMD` wrapper: `python -I -S -c SOURCE HOLD_FD GOHOOK_PID CMD ARGS...` (standard library only).

    This process (the wrapper, a child of gohook) sets its death signal,
    checks that gohook is still its parent, unshares the PID namespace and
    forks the namespace's init (pid 1), which sets its own death signal,
    checks that the wrapper is still alive (a pipe only the wrapper writes),
    mounts a private /proc, forks CMD (pid 2), which waits for a byte on HOLD_FD
    (gohook traces it meanwhile, under action error) and execs, reaps every orphan
    and exits with CMD's status when CMD exits (128+N for signal N); the
    wrapper exits with the init's. The kernel then kills whatever is left in
    the namespace. SIGINT, SIGTERM, SIGHUP and SIGQUIT are ignored by both
    (the command gets them from the terminal itself; gohook ends the
    session by SIGKILL of the wrapper); CMD starts with default handlers.
    """
    import ctypes
    import os
    import signal
    import sys

    pr_set_pdeathsig, clone_newpid, clone_newns = 1, 0x20000000, 0x00020000
    ms_nosuid, ms_nodev, ms_noexec, ms_rec, ms_private = 0x2, 0x4, 0x8, 0x4000, 0x40000
    libc = ctypes.CDLL(None, use_errno=True)
    quiet = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)

    def status(wait_status: int) -> int:
        code = os.waitstatus_to_exitcode(wait_status)
        return 128 - code if code < 0 else code

    hold, argv = int(argv[0]), argv[1:]
    for s in quiet:
        signal.signal(s, signal.SIG_IGN)
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != int(argv[0]):  # gohook died before the death signal was set
        os._exit(128 + signal.SIGKILL)
    if libc.unshare(clone_newpid) != 0:
        print(f"gohook: cannot make a PID namespace for the command: {os.strerror(ctypes.get_errno())}",
              file=sys.stderr)
        os._exit(126)
    alive_r, alive_w = os.pipe()
    init = os.fork()
    if init == 0:  # pid 1 of the new namespace
        os.close(alive_w)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        os.set_blocking(alive_r, False)
        try:
            if os.read(alive_r, 1) == b"":  # the wrapper died before the death signal was set
                os._exit(128 + signal.SIGKILL)
        except BlockingIOError:
            pass
        os.close(alive_r)
        # a /proc of this namespace: no host pid (gohook's /proc/PID/mem) is reachable through it
        if (libc.unshare(clone_newns) != 0 or libc.mount(None, b"/", None, ms_rec | ms_private, None) != 0
                or libc.mount(b"proc", b"/proc", b"proc", ms_nosuid | ms_nodev | ms_noexec, None) != 0):
            print(f"gohook: warning: the command sees the host's /proc: {os.strerror(ctypes.get_errno())}",
                  file=sys.stderr)
        cmd = os.fork()
        if cmd == 0:
            for s in (*quiet, signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(s, signal.SIG_DFL)
            if os.read(hold, 1) != b"x":  # gohook traces this process first (action error), then says go
                os._exit(128 + signal.SIGKILL)  # gohook is gone, or refused
            os.close(hold)
            try:
                os.execvp(argv[1], argv[1:])
            except OSError as exc:
                print(f"gohook: cannot run {argv[1]}: {exc.strerror}", file=sys.stderr)
            os._exit(127)
        os.close(hold)
        while True:
            pid, wait_status = os.wait()  # orphans of the namespace are reaped here too
            if pid == cmd:
                os._exit(status(wait_status))
    os.close(alive_r)
    os._exit(status(os.waitpid(init, 0)[1]))


def _start_in_namespace(cmd: tuple[str, ...], as_json: bool) -> tuple[subprocess.Popen[bytes], int]:
    """Start cmd under _namespace_init; the Popen is the wrapper (its status is the command's). CMD waits
    before its exec until a byte "x" is written to the returned pipe end (_release_command): gohook traces it
    first under action error, so that its every thread is traced from its first instruction."""
    source = inspect.getsource(_namespace_init) + "\nimport sys\n_namespace_init(sys.argv[1:])\n"
    hold_r, hold_w = os.pipe()
    try:
        # with --json, stdout carries only JSON lines: the child's own output goes to stderr
        wrapper = subprocess.Popen([sys.executable, "-I", "-S", "-c", source, str(hold_r), str(os.getpid()), *cmd],
                                   stdout=sys.stderr.fileno() if as_json else None, pass_fds=(hold_r,))
    except BaseException:
        os.close(hold_w)
        raise
    finally:
        os.close(hold_r)
    return wrapper, hold_w


def _release_command(hold_w: int) -> None:
    """Let the held command exec (see _start_in_namespace)."""
    with contextlib.suppress(OSError):
        os.write(hold_w, b"x")
    os.close(hold_w)


def _children(pid: int) -> list[int]:
    """Children of every thread of process pid (/proc/PID/task/TID/children)."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            out += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except OSError:
            continue
    return out


def _tracer(plan: EnforcementPlan, attached: Attached, targets: bool) -> tuple[Tracer, DenyReturns] | None:
    """The session's ptrace tracer (gohook.attach.tracer), in enforce mode with targets to trace (--pid targets, and
    `-- CMD` under action error: its PID namespace already makes it fail closed otherwise): --pid targets are
    leashed (fail closed: they die with gohook) and, under action error, every thread of every target is
    traced so that a denied call returns an error (gohook.attach.returns) instead of killing."""
    if plan.mode is not Mode.ENFORCE or not targets:
        return None
    from gohook.attach.returns import DenyReturns
    from gohook.attach.tracer import Tracer

    returns = DenyReturns(plan, attached.take_deny_mark)

    def on_error(message: str) -> None:
        print(f"gohook: ERROR: {message}", file=sys.stderr)

    return Tracer(returns.registers, attached.set_traced, on_error), returns


def _trace_target(tracer: Tracer, pid: int, plan: EnforcementPlan, what: str) -> None:
    """Trace one target: every thread under action error, else its main thread (the leash); a warning when
    it cannot be traced (it then keeps running if gohook dies, and its denials kill)."""
    why = tracer.add(pid, all_threads=plan.error_action)
    if why:
        extra = "; action error: its denied calls kill it" if plan.error_action else ""
        print(f"gohook: WARNING: {what}: cannot trace it ({why}): it keeps running if gohook dies "
              f"(not fail-closed){extra}", file=sys.stderr)
    elif plan.error_action:
        print(f"gohook: action error: tracing every thread of {what} (pid {pid}); a denied call returns "
              "an error there (other processes of the binary are killed instead)", file=sys.stderr)


def _report_tracer(tracer: Tracer, returns: DenyReturns) -> None:
    """The tracer's numbers, at the session's end."""
    stats = tracer.stats()
    counts = returns.counts
    if counts.returned or counts.mismatched:
        print(f"gohook: {counts.returned} denied calls returned an error"
              + (f", {counts.mismatched} could not be (killed)" if counts.mismatched else ""), file=sys.stderr)
    log.info("gohook: tracer: %d stops (%.1f/s), %d signals passed on, %.0f us handling per stop", stats.stops,
             stats.per_second(), stats.passed, stats.handling_seconds / stats.stops * 1e6 if stats.stops else 0)


def _learn_from_kernel(learned: Learner, counts: dict[tuple[int, int, int], int], plan: EnforcementPlan,
                       lost: int) -> None:
    """Learn mode's end: complete the learned policy with the calls the kernel counted (their events may have
    been lost) and say which hook points never fired (issue 17 §1), on stderr and in the policy's header."""
    pairs: dict[tuple[str, str], int] = {}
    fired: set[int] = set()
    for (hook, module, cap), calls in counts.items():
        fired.add(hook)
        if module and cap < len(plan.capabilities):
            key = (plan.module_name(module), plan.capabilities[cap])
            pairs[key] = pairs.get(key, 0) + calls
    completed = learned.reconcile(pairs)
    if lost or completed:
        print(f"gohook: WARNING: learn mode: {lost} events lost (ring buffer full); the kernel counted every call: "
              f"{len(completed)} module capabilities are granted for any argument because some of their events "
              "were lost (see the policy's header)", file=sys.stderr)
    functions: dict[str, bool] = {}
    for h in plan.hooks:
        functions[h.function] = functions.get(h.function, False) or h.hook_id in fired
    never = sorted(f for f, hit in functions.items() if not hit)
    learned.coverage(never, len(functions))
    print(f"gohook: learn mode: {len(functions) - len(never)} of {len(functions)} hooked functions fired"
          + (f"; never: {', '.join(never[:12])}{' ...' if len(never) > 12 else ''} (the run did not exercise "
             "them: a longer or fuller run may need more)" if never else ""), file=sys.stderr)


def _own_processes(*others: int | None) -> list[int]:
    """gohook's own process, every thread of it, its process group, and others (the -- CMD wrapper and
    namespace init): what a target may not signal, trace or write (the guard's GUARD test; threads come and
    go, so the session names them again at every integrity check)."""
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = []
    # -pgid: kill(-pgid) signals gohook's whole process group
    return [os.getpid(), *tids, -os.getpgrp(), *(p for p in others if p is not None)]


#: seconds learn mode waits for the command to stop after SIGTERM (what a service manager gives it)
LEARN_STOP_GRACE = 10.0


def _stop_gracefully(child: subprocess.Popen[bytes], init: int | None, pump: Callable[[], None]) -> bool:
    """Learn mode's end: SIGTERM to the command (the processes under the namespace's init), events still
    handled (pump) while it shuts down, until it exits or LEARN_STOP_GRACE passes (issue 17 §1: a SIGKILL
    here hid etcd's own shutdown handler from learning, and the enforced service was killed at its first
    stop). True when it exited within the grace; the caller's kill then does nothing."""
    for pid in _descendants(init) if init is not None else []:
        with contextlib.suppress(OSError):  # (gone already)
            os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + LEARN_STOP_GRACE
    while child.poll() is None and time.monotonic() < end:
        pump()
    return child.poll() is not None


def _descendants(pid: int) -> list[int]:
    """Every process below pid (host pids), parents before children."""
    out: list[int] = []
    todo = _children(pid)
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo += _children(p)
    return out


def _command_pid(wrapper: subprocess.Popen[bytes], timeout: float = 5.0) -> tuple[int | None, int | None]:
    """(host pid of the namespace's init, host pid of the command), None until they exist."""
    init: int | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and wrapper.poll() is None:
        if init is None:
            init = next(iter(_children(wrapper.pid)), None)
        if init is not None:
            cmd = next(iter(_children(init)), None)
            if cmd is not None:
                return init, cmd
        time.sleep(0.002)
    return init, None


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
    from gohook.static.cache import hook_sites

    progress = progress or Progress(enabled=False)
    catalog = load_catalog()
    vocab = CapabilityNames([c.name for c in catalog.capabilities])
    policy = load_or_empty_policy(options.policy, options.mode, vocab)
    with progress.step("reading the binary"):
        binary = GoBinary.open(options.binary)
        hooks = hook_sites(binary, catalog, options.use_cache)
    if not options.allow_unmatched:
        refuse_unmatched(policy, binary)
    with progress.step("building the plan"):
        build = build_plan(binary, hooks, catalog, policy, options.mode, options.sentinel)
    for fn, why in build.skipped:
        log.info("hook %s not attached: %s", fn, why)
    return binary, build


def refuse_unmatched(policy: Policy, binary: GoBinary) -> None:
    """A module rule that matches no module of the binary is a typo until said otherwise: the module it meant
    would run under `default` (issue 17: a misspelt node_exporter module got killed). AttachUsageError naming
    the rule's line, with the closest module of the binary."""
    import difflib

    from gohook.policy.generate import unmatched_patterns

    modules = sorted({binary.module_of(f.name) for f in binary.functions} - {STD})
    bad = unmatched_patterns(policy, modules)
    if not bad:
        return
    rule = bad[0]
    close = difflib.get_close_matches(rule.pattern, modules, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    more = f", and {len(bad) - 1} more rule{'s' * (len(bad) > 2)}" if len(bad) > 1 else ""
    raise AttachUsageError(f"{policy.path}:{rule.line}: module {rule.pattern!r} matches no module of "
                           f"{binary.path}{hint}{more}; fix the policy, or pass --allow-unmatched")


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
    learned = Learner(options.learn_scope) if plan.mode is Mode.LEARN else None
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
        view = None
        if live:
            from gohook.views.live import LiveView, ViewState

            state = ViewState(binary=options.binary, mode=plan.mode.value, hooks=attached.probe_count)
            view = LiveView(state)
            on_record = state.add
        traced = _tracer(plan, attached, bool(options.pids or (options.cmd and plan.error_action)))
        tracer = traced[0] if traced is not None else None
        try:
            init: int | None = None
            if tracer is not None:  # before "attached": a --pid target is held once gohook says so
                tracer.start()
                for pid in options.pids:
                    _trace_target(tracer, pid, plan, f"--pid {pid}")
            print(f"gohook: attached {attached.probe_count} probes to {options.binary} in "
                  f"{time.monotonic() - t0:.2f}s (mode {plan.mode.value}, {len(plan.modules)} modules, "
                  f"{len(plan.ranges)} ranges; system-call sentinel {build.sentinel_reason})", file=sys.stderr)
            if attached.deny_path:
                kernel = ("refuses uprobe programs that write registers" if attached.deny_path == "ptrace" else
                          "accepts uprobe register writes (not used yet)")
                print(f"gohook: action error: this kernel {kernel}: denied calls return through gohook's ptrace "
                      "tracer", file=sys.stderr)
                if not (options.pids or options.cmd):
                    print("gohook: action error: a system-wide session traces no process: a denied call kills "
                          "(use -- CMD or --pid for errors)", file=sys.stderr)
            if view is not None:
                view.__enter__()
            if options.cmd:
                child, hold = _start_in_namespace(options.cmd, options.as_json)
                init, cmd_pid = _command_pid(child)
                if tracer is not None and plan.error_action and cmd_pid is not None:
                    _trace_target(tracer, cmd_pid, plan, options.cmd[0])
                _release_command(hold)
                print(f"gohook: started {' '.join(options.cmd)} (pid {cmd_pid or child.pid})", file=sys.stderr)
            deliver = on_record if on_record is not None else out.emit
            watch = BinaryWatch(options.binary)
            guard = ProbeGuard(plan, options.binary, plan.mode is Mode.ENFORCE and plan.action is not Action.AUDIT)

            def check_probes() -> None:
                nonlocal init
                if init is None and child is not None:  # the wrapper was slow to fork the namespace's init
                    init = next(iter(_children(child.pid)), None)
                waker = tracer.waker_pid if tracer is not None else 0
                attached.guard_processes(_own_processes(child.pid if child is not None else None, init,
                                                        waker or None))
                targets = list(options.pids) + (_descendants(init) if init is not None else [])
                for rec in guard.check(targets):
                    deliver(rec)
                watch.check()

            def handle(records: list[bytes]) -> None:
                for ev in decode_events(records, attached.options.layout):
                    rec = symbolizer.record(ev)
                    if learned is not None:
                        learned.observe(rec.module, rec.capability, rec.argument, rec.stack,
                                        unattributed=rec.unattributed)
                    deliver(rec)

            deadline = time.monotonic() + options.duration if options.duration else None
            check_probes()
            next_check = time.monotonic() + options.integrity_interval
            while not stop["flag"]:
                handle(attached.poll(100))
                if options.integrity_interval > 0 and time.monotonic() >= next_check:
                    check_probes()
                    next_check = time.monotonic() + options.integrity_interval
                if view is not None and view.tick(attached):
                    break
                if child is not None and child.poll() is not None:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
            if plan.mode is Mode.LEARN and child is not None and child.poll() is None:
                graceful = _stop_gracefully(child, init, lambda: handle(attached.poll(100)))
                print(f"gohook: learn mode: stopped {options.cmd[0]} with SIGTERM"
                      + ("" if graceful else f", then SIGKILL ({LEARN_STOP_GRACE:.0f}s later)")
                      + " (its shutdown path is in the learned policy)", file=sys.stderr)
            handle(attached.drain())
            counters = attached.counters()
            if learned is not None:
                _learn_from_kernel(learned, attached.learned_counts(), plan, counters.lost)
        finally:
            if traced is not None:
                attached.detach_probes()  # no new denial, then the SIGSYS stops in flight are served (the marks)
                traced[0].stop()
                _report_tracer(*traced)
            if child is not None and child.poll() is None:
                child.kill()  # fail closed: the wrapper's death kills the namespace's init, and with it the command
                child.wait()
            if view is not None:
                view.__exit__(None, None, None)
            attached.close()
        return _finish(options, counters, learned, child, guard)
    finally:
        # restored only now: a second Ctrl-C while the summary or the learned policy is written is ignored
        for s, h in old.items():
            signal.signal(s, h)


def _finish(options: AttachOptions, counters: Counters, learned: Learner | None,
            child: subprocess.Popen[bytes] | None, guard: ProbeGuard) -> int:
    """Summary lines, the learned policy, and the exit status."""
    lost = f", {counters.lost} events lost" if counters.lost else ""
    print(f"gohook: {counters.hits} hooked calls, {counters.denied} killed{lost}", file=sys.stderr)
    if guard.reported:
        print(f"gohook: TAMPER: {len(guard.reported)} probes removed in {len(guard.tampered)} processes "
              f"({len(guard.killed)} killed from user space)", file=sys.stderr)
    if guard.checks:
        log.info("gohook: %d probe-integrity checks of %d probes, %.1f us each", guard.checks,
                 len(guard.checker.probes), guard.seconds / guard.checks * 1e6)
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
