"""Switching the enforcer off, from inside the process (issue 12 §3, §4): the guard and the raw rules.

testdata/go/evasion/deps/rawx (github.com/sysutil/rawx) makes its system calls with its own `syscall`
instruction and goes for the calls that would disable gohook or slip past it: code made writable and
the breakpoints put back, code pages dropped (MADV_DONTNEED), an anonymous page made executable, an
io_uring, a look at the host's BPF programs, signals / ptrace / process_vm_writev aimed at gohook's own
process, a datagram sent with sendto and no connect.

The module is granted `syscall` and files.read (it reads /proc/self/exe), so every one of these needs
the capability of the system call it makes, not only `syscall`. Two background sessions judge them in
two ways: `--sentinel on` (the uprobe on the module's `syscall` instruction, before it runs) and
`--sentinel off` (only the guard: per-system-call tracepoints, always on, whose SIGKILL lands before the
process runs another instruction). Each technique also runs on an unhooked copy (the control: the
technique works when nobody watches), and under a third session that grants the capabilities (no false
kill). Oracles: exit statuses, the secret variable's value in stdout, a UDP listener on 127.0.0.1.

Fail closed: `gohook attach --pid` targets die with gohook (SIGKILL included).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gofixtures
import pytest
from attach_helpers import (
    KILLED,
    STATUS_KILLED,
    Ran,
    Session,
    UdpSink,
    attach_cmd,
    for_pid,
    policy_file,
    private_copy,
    run,
    sessions,
    show,
)

pytestmark = pytest.mark.bpf

MAIN = "example.com/evasion"
RAWX = "github.com/sysutil/rawx"
SECRET = ("RAWX_SECRET", "hunter2-rawx")

#: the capabilities every rawx technique needs besides the one it smuggles
BASE = ["syscall", "files.read"]
#: ... and everything it smuggles (the no-false-kill session)
GRANTED = [*BASE, "memory.exec", "io_uring", "kernel.trace", "network.connect", "tamper", "env.read"]


@pytest.fixture(scope="module", autouse=True)
def _root() -> None:
    gofixtures.require_root("the guard's tracepoints and uprobes")


@dataclass
class Runs:
    """One technique: its run under each session and on the control copy."""

    args: tuple[str, ...]
    runs: dict[str, Ran] = field(default_factory=dict)
    received: dict[str, list[bytes]] = field(default_factory=dict)  # UDP datagrams per run
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


#: technique name -> (argv builder from (gohook pid, udp address), judged capability, docs technique number)
TECHNIQUES: dict[str, tuple[Callable[[int, str], tuple[str, ...]], str, int]] = {
    "unhook-write": (lambda g, a: ("rawx-unhook", "write", "1", SECRET[0]), "memory.exec", 16),
    "unhook-madvise": (lambda g, a: ("rawx-unhook", "madvise", "1", SECRET[0]), "tamper", 16),
    "unhook-int80": (lambda g, a: ("rawx-unhook", "int80", "1", SECRET[0]), "tamper", 16),
    "exec-page": (lambda g, a: ("rawx-exec-page",), "memory.exec", 13),
    "io_uring": (lambda g, a: ("rawx-uring",), "io_uring", 16),
    "bpf": (lambda g, a: ("rawx-bpf",), "kernel.trace", 16),
    "signal-gohook": (lambda g, a: ("rawx-kill", str(g), "0"), "tamper", 16),
    "ptrace-gohook": (lambda g, a: ("rawx-ptrace", str(g)), "tamper", 16),
    "pvwrite-gohook": (lambda g, a: ("rawx-pvwrite", str(g)), "tamper", 16),
    "sendto": (lambda g, a: ("rawx-sendto", a), "network.connect", 12),
    "race-8-goroutines": (lambda g, a: ("rawx-race", "200", SECRET[0]), "memory.exec", 9),
}
#: what `--sentinel off` leaves to the guard: sendto from a module's own instruction is the sentinel's, and
#: so is the i386 table (`int 0x80`: no per-syscall tracepoint fires for it, no uprobe sits on `int`)
GUARDED = tuple(t for t in TECHNIQUES if t not in ("sendto", "unhook-int80"))

#: session name -> (extra gohook arguments, rawx's grant, mode)
SESSIONS: dict[str, tuple[tuple[str, ...], list[str], str]] = {
    "site": (("--sentinel", "on"), BASE, "enforce"),
    "guard": (("--sentinel", "off"), BASE, "enforce"),
    "granted": (("--sentinel", "on"), GRANTED, "enforce"),
    "audit": (("--sentinel", "off"), BASE, "audit"),
}


@pytest.fixture(scope="module")
def trials(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Runs]]:
    root = tmp_path_factory.mktemp("rawx")
    built = gofixtures.build(gofixtures.live_toolchain("1.27"), "evasion", "default")
    specs: dict[str, Session] = {}
    for name, (extra, grant, mode) in SESSIONS.items():
        work = root / name
        binary = private_copy(built, work, f"evasion-{name}")
        policy = policy_file(work / "policy.yaml", {MAIN: ["all"], RAWX: grant})
        specs[name] = Session(binary, policy, work, mode=mode, extra=extra)
    control = private_copy(built, root / "control", "evasion-control")
    udp = UdpSink()
    out = {t: Runs(()) for t in TECHNIQUES}
    env = {SECRET[0]: SECRET[1]}
    try:
        with sessions(*specs.values()):
            for technique, (argv, _cap, _n) in TECHNIQUES.items():
                for name, session in specs.items():
                    if name == "audit" and technique not in GUARDED:
                        continue
                    if name == "guard" and technique not in (*GUARDED, "unhook-int80"):
                        continue
                    assert session.proc is not None
                    args = argv(session.proc.pid, udp.addr)
                    out[technique].runs[name] = run(session.binary, *args, env=env)
                    out[technique].received[name] = udp.received()
                args = argv(os.getpid(), udp.addr)  # the control names a process that is not gohook
                out[technique].runs["control"] = run(control, *args, env=env)
                out[technique].received["control"] = udp.received()
            for technique, args in _limits(root).items():  # known limits: under enforcement, they work
                out[technique] = Runs(args, runs={"site": run(specs["site"].binary, *args, env=env)})
        for trial in out.values():
            for name, session in specs.items():
                if name in trial.runs:
                    trial.events[name] = for_pid(session.events, trial.runs[name].pid)
        yield out
    finally:
        udp.sock.close()


def _limits(root: Path) -> dict[str, tuple[str, ...]]:
    return {"limit-unsafe-env": ("rawx-unsafe-env", SECRET[0]), "limit-held-fd": ("held-fd", str(root / "held.txt"))}


@pytest.mark.parametrize("technique", list(TECHNIQUES))
def test_control_shows_the_technique_works(trials: dict[str, Runs], technique: str) -> None:
    trial = trials[technique]
    ran = trial.runs["control"]
    assert ran.returncode == 0, ran
    if technique.startswith("unhook"):
        assert SECRET[1] in ran.stdout, ran
    if technique == "sendto":
        assert trial.received["control"] == [b"rawx datagram"], trial.received


@pytest.mark.parametrize("session", ["site", "guard"])
@pytest.mark.parametrize("technique", list(TECHNIQUES))
def test_killed_before_the_effect(trials: dict[str, Runs], technique: str, session: str,
                                  record: Callable[..., None]) -> None:
    trial = trials[technique]
    if session == "guard" and technique not in GUARDED:
        pytest.skip(f"{technique} from a module's own instruction is the sentinel's (not a guard call)")
    ran, events = trial.runs[session], trial.events[session]
    _argv, capability, number = TECHNIQUES[technique]
    assert ran.returncode == KILLED, f"{ran}\n{show(events)}"
    assert SECRET[1] not in ran.stdout and not trial.received[session], ran
    denied = [e for e in events if e["decision"] == "deny"]
    assert denied, show(events)
    e = denied[0]
    assert (e["module"], e["capability"]) == (RAWX, capability), show(events)
    assert e["via"] == ("syscall-site" if session == "site" and technique != "unhook-int80" else "stack"), \
        show(events)
    judge = ("the uprobe on the module's own `syscall` instruction (--sentinel on)" if session == "site"
             else "the guard's syscalls:sys_enter tracepoint (--sentinel off)")
    if technique == "unhook-int80":
        judge = "the sentinel, which sees the i386 table (TS_COMPAT) and charges tamper"
    record(number, f"rawx: {technique.replace('-', ' ')}, {judge}", "blocked",
           f"needs {capability} besides `syscall`; the SIGKILL lands before the next instruction",
           f"exit -9, effect absent; event {e['capability']} {e['module']} via {e['via']} ({e['function']})")


def test_i386_call_without_the_sentinel(trials: dict[str, Runs], tmp_path: Path,
                                        record: Callable[..., None]) -> None:
    """`--sentinel off`: an `int 0x80` mprotect of the text is seen by nothing at its entry (no syscall
    tracepoint fires for the i386 table, uprobes refuse `int`). Under `-- CMD` the periodic probe check
    finds the restored breakpoint and kills the process before its wait ends and the variable is read; a
    system-wide session checks no process, so there it goes through (pinned down)."""
    trial = trials["unhook-int80"]
    ran, events = trial.runs["guard"], trial.events["guard"]
    assert ran.returncode == 0 and SECRET[1] in ran.stdout, ran  # system-wide, sentinel off: not covered
    record(10, "rawx: `int 0x80` mprotect of the text with `--sentinel off`, system-wide session (no --pid, no "
           "-- CMD)", "not covered", "only the sentinel sees the i386 table (`gohook attach` turns it on for "
           "module assembly unless told `--sentinel off`); a system-wide session runs no probe check",
           f"exit 0, the secret printed; {len([e for e in events if e['decision'] != 'allow'])} violations")
    built = gofixtures.build(gofixtures.live_toolchain("1.27"), "evasion", "default")
    binary = private_copy(built, tmp_path, "evasion-int80")
    policy = policy_file(tmp_path / "policy.yaml", {MAIN: ["all"], RAWX: BASE})
    os.environ[SECRET[0]] = SECRET[1]
    try:
        cmd = attach_cmd(binary, policy, [str(binary), "rawx-unhook", "int80", "2", SECRET[0]], tmp_path,
                         extra=("--sentinel", "off"))
    finally:
        del os.environ[SECRET[0]]
    tampered = [e for e in cmd.events if e.get("tamper")]
    assert cmd.status == STATUS_KILLED and not any(SECRET[1] in line for line in cmd.child_stdout), cmd.stderr
    assert tampered and tampered[0]["decision"] == "deny", show(cmd.events)
    record(16, "rawx: `int 0x80` mprotect of the text, then the breakpoints put back, `--sentinel off`, "
           "under `-- CMD`", "flagged", "only the sentinel sees the i386 table; without it the probe check "
           "finds the restored byte within its interval and kills from user space",
           f"exit 137 before the read; event: {tampered[0]['tamper']}")


@pytest.mark.parametrize("technique", GUARDED)
def test_audit_names_the_module_and_lets_it_run(trials: dict[str, Runs], technique: str) -> None:
    """Audit mode (guard only): the run completes, and the event names the module and the capability."""
    trial = trials[technique]
    ran, events = trial.runs["audit"], trial.events["audit"]
    _argv, capability, _n = TECHNIQUES[technique]
    assert ran.returncode == 0, f"{ran}\n{show(events)}"
    assert [e for e in events if e["decision"] == "audit" and (e["module"], e["capability"]) == (RAWX, capability)], \
        show(events)
    assert not [e for e in events if e["decision"] == "deny"], show(events)


@pytest.mark.parametrize("session", ["site", "guard"])
def test_race_of_allowed_and_denied_calls_charges_every_denial_right(trials: dict[str, Runs],
                                                                       session: str) -> None:
    """8 goroutines of allowed files.read calls, each with one text patch half-way: every deny is the
    module's memory.exec, every allowed call its files.read (none charged to another module), and no
    goroutine got to read the variable."""
    trial = trials["race-8-goroutines"]
    ran, events = trial.runs[session], trial.events[session]
    assert ran.returncode == KILLED and "goroutine" not in ran.stdout, ran
    denied = [e for e in events if e["decision"] == "deny"]
    assert denied and all((e["module"], e["capability"]) == (RAWX, "memory.exec") for e in denied), show(events)
    mine = [e for e in events if e["decision"] == "allow" and e["capability"] == "files.read"]
    assert mine and all(e["module"] == RAWX for e in mine), show(events)
    assert not [e for e in events if e["module"] not in (RAWX, MAIN, "std:init")], show(events)


@pytest.mark.parametrize("technique", list(TECHNIQUES))
def test_granted_runs_to_completion(trials: dict[str, Runs], technique: str) -> None:
    """No false kill: with the capability granted, every technique runs to its end."""
    trial = trials[technique]
    ran = trial.runs["granted"]
    assert ran.returncode == 0, f"{ran}\n{show(trial.events['granted'])}"
    assert not [e for e in trial.events["granted"] if e["decision"] != "allow"], show(trial.events["granted"])
    if technique == "sendto":
        assert trial.received["granted"] == [b"rawx datagram"]


# --- known limits ----------------------------------------------------------------------------------------


def test_known_limit_unsafe_read_of_the_environment(trials: dict[str, Runs], record: Callable[..., None]) -> None:
    """The environment strings sit after the argument strings on the initial stack: a read through unsafe
    is no call at all. Pinned down: it works under enforcement, and nothing is reported."""
    trial = trials["limit-unsafe-env"]
    ran, events = trial.runs["site"], trial.events["site"]
    assert ran.returncode == 0 and f"{SECRET[0]}={SECRET[1]}" in ran.stdout, ran
    assert not [e for e in events if e["module"] == RAWX and e["capability"] == "env.read"], show(events)
    record(10, "`unsafe` read of the environment strings after os.Args on the initial stack", "not covered",
           "a read of the process's own memory is neither a system call nor a function call: no probe can see "
           "it (only a process boundary would). `gohook inspect` cannot name it either; the module's use of "
           "`unsafe` is the only trace", "exit 0, the secret printed, no env.read event")


def test_known_limit_write_to_a_descriptor_another_module_opened(trials: dict[str, Runs], tmp_path: Path,
                                                                  record: Callable[..., None]) -> None:
    """main opens a file for writing and hands the *os.File to rawx, which has no files.write: write(2) on a
    held descriptor needs no capability (it was decided at the open, for main)."""
    trial = trials["limit-held-fd"]
    ran, events = trial.runs["site"], trial.events["site"]
    path = Path(trial.args[1])
    assert ran.returncode == 0 and "borrowed descriptor" in path.read_text(), ran
    assert not [e for e in events if e["decision"] != "allow"], show(events)
    record(10, "write to a file the app opened and handed over (`*os.File` as an argument)", "not covered",
           "capabilities are decided when a descriptor is opened, connected or bound, for the module that does "
           "it; reads and writes on a held descriptor are `none` in the classification. Hand dependencies "
           "paths, not open files, when it matters", "exit 0, the dependency's text in the file, no deny")


# --- fail closed for --pid targets --------------------------------------------------------------------------


def test_pid_target_dies_with_gohook(tmp_path: Path, record: Callable[..., None]) -> None:
    """`gohook attach --pid P` traces P (PTRACE_O_EXITKILL): SIGKILL of gohook kills P before it can make
    another call; the file P writes afterwards never appears."""
    built = gofixtures.build(gofixtures.live_toolchain("1.27"), "evasion", "default")
    binary = private_copy(built, tmp_path, "evasion-pid")
    policy = policy_file(tmp_path / "policy.yaml", {MAIN: ["all"], RAWX: BASE})
    later = tmp_path / "after-gohook.txt"
    target = subprocess.Popen([str(binary), "rawx-wait", "60", str(later)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    session = Session(binary, policy, tmp_path, pids=(target.pid,))
    try:
        session.start()
        session.wait_attached()
        assert target.poll() is None, "the target ended before gohook attached"
        assert session.proc is not None
        session.proc.send_signal(signal.SIGKILL)
        session.proc.wait(30)
        status = target.wait(60)
    finally:
        if target.poll() is None:
            target.kill()
            target.wait()
        if session.proc is not None and session.proc.poll() is None:
            session.proc.kill()
    assert status == KILLED, f"target exited {status}: {target.stdout.read() if target.stdout else ''}"
    assert not later.exists()
    record(16, "SIGKILL of `gohook attach --pid` (not a -- CMD start)", "blocked",
           "gohook traces --pid targets with PTRACE_O_EXITKILL: the kernel kills them when gohook dies",
           "target exit -9, its later file write absent")
