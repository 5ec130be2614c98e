"""Helpers for the live `gohook attach` tests (tests/test_attach_live.py, tests/test_evasion.py).

Everything goes through the real CLI, `python -m gohook attach`, in a child
process: `Session` is a system-wide (or --pid) attach running in the
background while a test runs fixture binaries; `attach_cmd` is one
`gohook attach ... -- CMD` run. Both collect the JSON events from stdout
and the status lines from stderr.

Uprobes are per file and system-wide, and other test runs share this
machine: every test attaches to its own copy of a fixture binary
(`private_copy`), never to the shared build/fixtures path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gofixtures

#: testdata/go/attachapp: waits, execs a given program, std callbacks into a dependency, a timed loop.
ATTACHAPP = gofixtures.FIXTURES["attachapp"]

KILLED = -signal.SIGKILL  # returncode of a fixture process killed by gohook
STATUS_KILLED = 128 + signal.SIGKILL  # gohook's own exit status when its `-- CMD` child was killed

ATTACHED_TIMEOUT = 120.0  # seconds for gohook to compile and attach (2 cores shared with other test runs)
STOP_TIMEOUT = 120.0  # seconds for gohook to drain and detach (uprobe removal is slow on this kernel)
RUN_TIMEOUT = 60.0  # seconds for one fixture process

Event = dict[str, Any]

_SUMMARY = re.compile(r"gohook: (\d+) hooked calls, (\d+) killed(?:, (\d+) events lost)?")


def gohook_argv(binary: Path, policy: Path | None, *, mode: str | None = None, pids: Iterable[int] = (),
                extra: Sequence[str] = (), report_allowed: bool | None = True) -> list[str]:
    """argv of `gohook attach ... --json`; report_allowed None leaves gohook's default (violations only).
    The suites' policies name every module of a fixture family (some builds lack some): --allow-unmatched."""
    argv = [sys.executable, "-m", "gohook", "attach", "--binary", str(binary), "--json", "--allow-unmatched"]
    if report_allowed is not None:
        argv.append("--report-allowed" if report_allowed else "--no-report-allowed")
    if policy is not None:
        argv += ["--policy", str(policy)]
    if mode is not None:
        argv += ["--mode", mode]
    for pid in pids:
        argv += ["--pid", str(pid)]
    return argv + list(extra)


def private_copy(binary: Path, directory: Path, name: str | None = None) -> Path:
    """A copy of binary that only this test attaches to and runs (uprobes are per file)."""
    directory.mkdir(parents=True, exist_ok=True)
    dest = directory / (name or binary.name)
    shutil.copy2(binary, dest)
    dest.chmod(0o755)
    return dest


def policy_file(path: Path, modules: dict[str, Sequence[str]], *, action: str = "kill",
                attribution: str = "caller", unattributed: str = "allow", default: Sequence[str] = (),
                trust: Sequence[str] = ()) -> Path:
    """Write a version-1 policy; returns its path."""
    lines = ["version: 1", f"action: {action}", f"attribution: {attribution}", f"unattributed: {unattributed}",
             f"default: [{', '.join(default)}]", "modules:"]
    lines += [f"  {module}: [{', '.join(caps)}]" for module, caps in modules.items()] or ["  {}"]
    lines.append(f"trust: [{', '.join(trust)}]")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class Summary:
    """gohook's closing status line: `gohook: N hooked calls, M killed[, L events lost]`."""

    hits: int
    killed: int
    lost: int


def parse_summary(stderr: str) -> Summary:
    m = _SUMMARY.search(stderr)
    if m is None:
        raise AssertionError(f"no summary line in gohook's stderr:\n{stderr}")
    return Summary(int(m[1]), int(m[2]), int(m[3] or 0))


class _StdoutReader(threading.Thread):
    """Reads gohook's stdout: JSON events (allowed ones only counted when keep_allowed is False) and other lines."""

    def __init__(self, stream: Any, keep_allowed: bool) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.keep_allowed = keep_allowed
        self.events: list[Event] = []
        self.allowed_seen = 0
        self.other: list[str] = []  # a `-- CMD` child's own stdout lines (it shares gohook's stdout)
        self.bad: list[str] = []  # lines that look like JSON but do not parse

    def run(self) -> None:
        for raw in self.stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if not line.startswith("{"):
                self.other.append(line)
                continue
            if not self.keep_allowed and '"decision":"allow"' in line:
                self.allowed_seen += 1
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                self.bad.append(line)
                continue
            self.allowed_seen += ev.get("decision") == "allow"
            self.events.append(ev)


@dataclass
class Session:
    """A background `gohook attach` (no `-- CMD`): covers every process running the binary, or --pid ones."""

    binary: Path
    policy: Path | None
    workdir: Path
    mode: str | None = None
    pids: tuple[int, ...] = ()
    keep_allowed: bool = True
    report_allowed: bool | None = True
    extra: tuple[str, ...] = ()  # more `gohook attach` arguments (e.g. --sentinel off)
    proc: subprocess.Popen[bytes] | None = None
    returncode: int | None = None
    _interrupted: bool = False
    _reader: _StdoutReader | None = None
    _stderr_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self._stderr_path = self.workdir / f"gohook-{self.binary.name}.stderr"

    @property
    def stderr(self) -> str:
        return self._stderr_path.read_text(errors="replace") if self._stderr_path.exists() else ""

    def start(self) -> None:
        with open(self._stderr_path, "wb") as err:
            self.proc = subprocess.Popen(gohook_argv(self.binary, self.policy, mode=self.mode, pids=self.pids,
                                                     report_allowed=self.report_allowed, extra=self.extra),
                                         stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        self._reader = _StdoutReader(self.proc.stdout, self.keep_allowed)
        self._reader.start()

    def wait_attached(self) -> None:
        """Block until gohook says every probe is attached; fail with its stderr if it exits first."""
        assert self.proc is not None
        deadline = time.monotonic() + ATTACHED_TIMEOUT
        while "gohook: attached " not in self.stderr:
            if self.proc.poll() is not None:
                raise AssertionError(f"gohook attach exited ({self.proc.returncode}) before attaching:\n"
                                     f"{self.stderr}")
            if time.monotonic() > deadline:
                raise AssertionError(f"gohook attach did not attach within {ATTACHED_TIMEOUT}s:\n{self.stderr}")
            time.sleep(0.05)

    def interrupt(self) -> None:
        """SIGINT, once: gohook drains the ring buffer, detaches and prints its summary. (A second SIGINT
        after gohook has put back Python's own handler would end it with KeyboardInterrupt.)"""
        if self.proc is not None and not self._interrupted and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self._interrupted = True

    def stop(self) -> None:
        """interrupt(), then wait for gohook and collect its output."""
        if self.proc is None or self.returncode is not None:
            return
        self.interrupt()
        try:
            self.returncode = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            self.proc.kill()
            self.returncode = self.proc.wait()
            raise AssertionError(f"gohook attach did not stop within {STOP_TIMEOUT}s of SIGINT:\n{self.stderr}") \
                from exc
        finally:
            if self._reader is not None:
                self._reader.join(30)

    @property
    def events(self) -> list[Event]:
        assert self._reader is not None and self.returncode is not None, "stop() the session first"
        assert not self._reader.bad, f"gohook printed broken JSON lines: {self._reader.bad[:3]}"
        return self._reader.events

    @property
    def allowed_seen(self) -> int:
        assert self._reader is not None
        return self._reader.allowed_seen

    def summary(self) -> Summary:
        return parse_summary(self.stderr)

    def check_clean_exit(self) -> None:
        assert self.returncode == 0, f"gohook attach exited {self.returncode}:\n{self.stderr}"
        assert "WARNING" not in self.stderr, self.stderr


@contextmanager
def sessions(*specs: Session) -> Iterator[tuple[Session, ...]]:
    """Start every session (they compile concurrently), wait until all are attached, stop all on exit."""
    try:
        for s in specs:
            s.start()
        for s in specs:
            s.wait_attached()
        yield specs
    finally:
        errors = []
        for s in specs:
            s.interrupt()  # all detach at once
        for s in specs:
            try:
                s.stop()
            except AssertionError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
    for s in specs:
        s.check_clean_exit()


@dataclass(frozen=True)
class CmdRun:
    """One `gohook attach ... -- CMD` run."""

    status: int  # gohook's exit status
    events: list[Event]
    child_stdout: list[str]
    stderr: str
    allowed_seen: int

    def summary(self) -> Summary:
        return parse_summary(self.stderr)


def attach_cmd(binary: Path, policy: Path | None, cmd: Sequence[str], workdir: Path, *, mode: str | None = None,
               keep_allowed: bool = True, report_allowed: bool | None = True, timeout: float = 300.0,
               extra: Sequence[str] = (), stdin_text: str | None = None,
               env: dict[str, str] | None = None) -> CmdRun:
    """Run `gohook attach --binary B --policy P --json -- CMD`.

    With --json, gohook's stdout carries only JSON lines; the child's own
    stdout goes to gohook's stderr, beside gohook's `gohook: ...` status lines.
    stdin_text: what CMD reads on its stdin (else nothing); env: added to gohook's (and CMD's) environment.
    """
    err_path = workdir / f"gohook-cmd-{binary.name}.stderr"
    in_path = workdir / f"gohook-cmd-{binary.name}.stdin"
    in_path.write_text(stdin_text or "", encoding="utf-8")
    with open(err_path, "wb") as err, open(in_path, "rb") as stdin:
        argv = gohook_argv(binary, policy, mode=mode, extra=[*extra, "--", *cmd], report_allowed=report_allowed)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, stdin=stdin,
                                env={**os.environ, **(env or {})})
    reader = _StdoutReader(proc.stdout, keep_allowed)
    reader.start()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # gohook kills its child (fail closed)
        proc.wait(STOP_TIMEOUT)
        raise
    finally:
        reader.join(30)
    assert not reader.bad, f"gohook printed broken JSON lines: {reader.bad[:3]}"
    assert not reader.other, f"non-JSON lines on gohook's stdout under --json: {reader.other[:3]}"
    stderr = err_path.read_text(errors="replace")
    child_stdout = [line for line in stderr.splitlines() if line and not line.startswith("gohook:")]
    return CmdRun(proc.returncode, reader.events, child_stdout, stderr, reader.allowed_seen)


@dataclass(frozen=True)
class Ran:
    """A finished fixture process."""

    pid: int
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"pid {self.pid} exited {self.returncode}; stdout {self.stdout!r}; stderr {self.stderr!r}"


def run(binary: Path, *args: str, env: dict[str, str] | None = None) -> Ran:
    """Run a fixture binary to completion (under whatever sessions are attached to it)."""
    proc = subprocess.Popen([str(binary), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return Ran(proc.pid, proc.returncode, out, err)


class Waiting:
    """A fixture process started with a `wait` step: running, blocked on stdin until released."""

    def __init__(self, binary: Path, *args: str) -> None:
        self.proc = subprocess.Popen([str(binary), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()  # attachapp's wait step prints "waiting pid N" first
        if not first.startswith("waiting"):
            self.proc.kill()
            raise AssertionError(f"{binary} {' '.join(args)} did not reach its wait step: {first!r} "
                                 f"{self.proc.communicate()}")
        self.pid = self.proc.pid

    def poke(self) -> None:
        """Let it go on past its wait step (without waiting for it)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.close()
        self.proc.stdin = None  # so that communicate() does not touch it again

    def finish(self) -> Ran:
        """Wait for it to exit (poke() it first)."""
        out, err = self.proc.communicate(timeout=RUN_TIMEOUT)
        return Ran(self.pid, self.proc.returncode, out, err)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


class UdpSink:
    """A loopback UDP socket owned by the test: how many datagrams arrived?"""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        host, port = self.sock.getsockname()
        self.addr = f"{host}:{port}"

    def received(self) -> list[bytes]:
        """Every datagram that arrived since the last call (loopback delivery is done when sendto returns)."""
        out = []
        while True:
            try:
                out.append(self.sock.recv(65536))
            except BlockingIOError:
                return out

    def close(self) -> None:
        self.sock.close()


class Listener:
    """A loopback TCP listener owned by the test: did anyone connect, and what did they send?"""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        host, port = self.sock.getsockname()
        self.addr = f"{host}:{port}"

    def received(self) -> list[bytes]:
        """Everything sent on each connection made so far (completed connects wait in the accept queue)."""
        out = []
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return out
            with conn:
                conn.settimeout(10)
                chunks = []
                while chunk := conn.recv(4096):
                    chunks.append(chunk)
                out.append(b"".join(chunks))

    def close(self) -> None:
        self.sock.close()


def for_pid(events: Iterable[Event], pid: int) -> list[Event]:
    return [e for e in events if e["pid"] == pid]


def show(events: Iterable[Event]) -> str:
    """Events in one line each, for assertion messages."""
    return "\n".join(f"  pid {e['pid']} goid {e['goid']} {e['decision']} {e['capability']} {e['module']} "
                     f"{e['function']} {e['argument']!r} <- "
                     + " <- ".join(f["function"] for f in e["stack"][1:6]) for e in events) or "  (no events)"


def stack_functions(event: Event) -> list[str]:
    return [f["function"] for f in event["stack"]]


def stack_modules(event: Event) -> list[str]:
    return [f["module"] for f in event["stack"]]


@dataclass
class Trial:
    """One technique run (tests/test_evasion.py, tests/test_boundary_hooks.py): under enforcement (`ran`,
    `events`, `facts`) and on an unhooked copy (`control*`)."""

    name: str
    ran: Ran
    facts: dict[str, Any]
    control: Ran
    control_facts: dict[str, Any]
    events: list[Event] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.name}: {self.ran}\nfacts {self.facts}\ncontrol {self.control} {self.control_facts}\n" \
               f"{show(self.events)}"
