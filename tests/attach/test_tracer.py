"""gohook.attach.tracer against real Go programs (testdata/go/traceapp, Go 1.19 and 1.27).

The targets run under a small Python wrapper so that they are grandchildren of the test process (the
tracer refuses its own process's children: the kernel would share their stops with Popen.wait). The
wrapper prints the target's pid and, at the end, its exit status as Popen.wait() reports it (-9: killed
by SIGKILL): the kernel's word on how the target ended. Other oracles: /proc (TracerPid, State, the task
list), what the Go program prints (each SIGUSR1 it received, ticks while it runs, the error tgkill
returned), the Go runtime's own crash at an unhandled SIGSYS, <sys/user.h> compiled with gcc for the
register layout, <asm/unistd_64.h> for the system call number.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import gofixtures
import pytest

from gohook.attach.tracer import REGISTER_NAMES, Registers, Tracer, TracerError, UserRegs

REPO = Path(__file__).resolve().parents[2]
# one write(2) per line: the target writes to the same pipe (and PYTHONUNBUFFERED makes print() write piecemeal)
WRAPPER = ("import os, subprocess, sys\n"
           "p = subprocess.Popen(sys.argv[1:])\n"
           "os.write(1, f'pid {p.pid}\\n'.encode())\n"
           "os.write(1, f'exit {p.wait()}\\n'.encode())\n")
TOOLCHAINS = ("1.19", "1.27")


# --- helpers -------------------------------------------------------------------------------------------


class Target:
    """A traceapp run under the wrapper: its lines as they come, its pid, its end."""

    def __init__(self, binary: Path, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", WRAPPER, str(binary), *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines: list[str] = []
        self.stderr = ""
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.pid = int(self.expect(r"pid (\d+)").group(1))
        # the program waits for stdin, so it is alive here: signals go through a pidfd, never to a pid that
        # may have been reused once the wrapper reaped it (pid_max can be 32768)
        self.pidfd = os.pidfd_open(self.pid)

    def send_signal(self, sig: int) -> None:
        signal.pidfd_send_signal(self.pidfd, sig)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def expect(self, pattern: str, timeout: float = 10.0, start: int = 0) -> re.Match[str]:
        """The first line from index start that matches pattern (waits for it)."""
        regex = re.compile(pattern)
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    if m := regex.fullmatch(line):
                        return m
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no line {pattern!r} within {timeout} s; got {self.lines[-20:]}")
                self._cond.wait(left)

    def count(self, pattern: str) -> int:
        regex = re.compile(pattern)
        with self._cond:
            return sum(1 for line in self.lines if regex.fullmatch(line))

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def exit_status(self, timeout: float = 20.0) -> int:
        """The target's status as the wrapper's Popen.wait() saw it."""
        status = int(self.expect(r"exit (-?\d+)", timeout).group(1))
        self.proc.wait(timeout)
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()
        return status

    def tasks(self) -> list[int]:
        return sorted(int(t) for t in os.listdir(f"/proc/{self.pid}/task"))

    def task_field(self, tid: int, name: str) -> str:
        for line in Path(f"/proc/{self.pid}/task/{tid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
        raise AssertionError(f"no {name} in /proc/{self.pid}/task/{tid}/status")

    def tracers(self) -> dict[int, int]:
        """TracerPid of every task."""
        out = {}
        for tid in self.tasks():
            try:
                out[tid] = int(self.task_field(tid, "TracerPid"))
            except FileNotFoundError:
                continue  # exited meanwhile
        return out

    def states(self) -> set[str]:
        """The state letters of every task (/proc/PID/task/TID/stat field 3)."""
        out = set()
        for tid in self.tasks():
            try:
                stat = Path(f"/proc/{self.pid}/task/{tid}/stat").read_text()
            except FileNotFoundError:
                continue
            out.add(stat.rsplit(")", 1)[1].split()[0])
        return out

    def close(self) -> None:
        with contextlib.suppress(OSError):  # (gone already)
            self.send_signal(signal.SIGKILL)
        os.close(self.pidfd)
        self.proc.kill()  # Popen: never signals a wrapper already reaped
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


class Recorder:
    """The three callbacks, recording what they were given."""

    def __init__(self, on_sigsys: Callable[[int, int, Registers], Registers | None] = lambda g, t, r: None) -> None:
        self.sigsys: list[tuple[int, int, Registers]] = []
        self.traced: list[tuple[int, bool]] = []
        self.errors: list[str] = []
        self._on_sigsys = on_sigsys

    def on_sigsys(self, tgid: int, tid: int, regs: Registers) -> Registers | None:
        self.sigsys.append((tgid, tid, regs))
        return self._on_sigsys(tgid, tid, regs)

    def on_traced(self, tgid: int, on: bool) -> None:
        self.traced.append((tgid, on))

    def on_error(self, message: str) -> None:
        self.errors.append(message)

    def tracer(self) -> Tracer:
        return Tracer(self.on_sigsys, self.on_traced, self.on_error)


def tgkill(tgid: int, tid: int, sig: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.tgkill(tgid, tid, sig) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def wait_for(check: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.01)


def tgkill_number() -> int:
    """__NR_tgkill from the kernel headers (234 on x86-64 when they are missing)."""
    header = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
    if header.exists():
        m = re.search(r"#define __NR_tgkill (\d+)", header.read_text())
        if m:
            return int(m.group(1))
    return 234


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=TOOLCHAINS, ids=lambda v: f"go{v}")
def traceapp(request: pytest.FixtureRequest) -> Path:
    gofixtures.require_root("ptrace of other processes")
    return gofixtures.build(gofixtures.live_toolchain(request.param), "traceapp")


@pytest.fixture
def targets(traceapp: Path) -> Iterator[Callable[..., Target]]:
    """start(*args) -> a Target of traceapp; every one is killed at the end."""
    started: list[Target] = []

    def start(*args: str) -> Target:
        target = Target(traceapp, *args)
        started.append(target)
        return target

    yield start
    for target in started:
        target.close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    yield rec


@pytest.fixture
def tracer(recorder: Recorder) -> Iterator[Tracer]:
    t = recorder.tracer()
    t.start()
    yield t
    t.stop()
    assert not t.is_alive()


# --- registers (no process) ----------------------------------------------------------------------------


def test_user_regs_layout_is_the_kernels() -> None:
    """UserRegs has the byte layout of <sys/user.h> struct user_regs_struct, as gcc compiles it."""
    assert ctypes.sizeof(UserRegs) == 27 * 8
    ours = {name: getattr(UserRegs, name).offset for name in REGISTER_NAMES}
    assert ours == {name: 8 * i for i, name in enumerate(REGISTER_NAMES)}
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc: the layout is checked against the documented order only")
    source = "#include <stddef.h>\n#include <stdio.h>\n#include <sys/user.h>\nint main(void) {\n"
    source += 'printf("size %zu\\n", sizeof(struct user_regs_struct));\n'
    for name in REGISTER_NAMES:
        source += f'printf("{name} %zu\\n", offsetof(struct user_regs_struct, {name}));\n'
    source += "return 0; }\n"
    build = Path(os.environ.get("TMPDIR", "/tmp")) / f"gohook-user-regs-{os.getpid()}"
    build.mkdir(exist_ok=True)
    (build / "regs.c").write_text(source)
    subprocess.run([gcc, "-o", str(build / "regs"), str(build / "regs.c")], check=True, capture_output=True)
    out = subprocess.run([str(build / "regs")], check=True, capture_output=True, text=True).stdout
    shutil.rmtree(build)
    theirs = dict(line.split() for line in out.splitlines())
    assert int(theirs.pop("size")) == ctypes.sizeof(UserRegs)
    assert {k: int(v) for k, v in theirs.items()} == ours


def test_registers_round_trip_and_wrap() -> None:
    values = {name: (i + 1) * 0x1111 for i, name in enumerate(REGISTER_NAMES)}
    regs = Registers(**values)
    back = Registers.from_struct(regs.to_struct())
    assert back == regs
    assert bytes(regs.to_struct())[80:88] == (11 * 0x1111).to_bytes(8, "little")  # rax at byte 80
    changed = regs.replace(rax=-errno.EPERM, rip=regs.rip + 5)
    assert changed.rax == (1 << 64) - errno.EPERM
    assert changed.rip == regs.rip + 5 and changed.rsp == regs.rsp
    assert regs.rax == 11 * 0x1111  # frozen: the original is unchanged
    with pytest.raises(TypeError):
        Registers(**{**values, "rax": "0"})  # type: ignore[arg-type]


def test_add_before_start_is_an_error() -> None:
    with pytest.raises(TracerError):
        Recorder().tracer().add(os.getpid())


# --- live ------------------------------------------------------------------------------------------


def test_busy_program_keeps_every_signal_and_its_new_threads_are_traced(
        targets: Callable[..., Target], tracer: Tracer, recorder: Recorder) -> None:
    """8 spinning goroutines (SIGURG preemption) traced ~2 s: every SIGUSR1 arrives, threads started after
    the attach are traced, the program finishes with exit 0 while traced."""
    target = targets("busy")
    target.expect("ready")
    before = set(target.tasks())
    start = time.monotonic()
    assert tracer.waker_pid == 0
    assert tracer.add(target.pid) == ""
    assert recorder.traced == [(target.pid, True)]
    waker = tracer.waker_pid
    assert Path(f"/proc/{waker}/status").read_text().count(f"TracerPid:\t{tracer.native_id}\n") == 1
    assert set(target.tracers().values()) == {tracer.native_id}

    for n in range(1, 11):  # each one acknowledged before the next (pending signals of a kind merge)
        if n % 2:
            target.send_signal(signal.SIGUSR1)
        else:
            tgkill(target.pid, random.choice(target.tasks()), signal.SIGUSR1)
        target.expect(f"usr1 {n}", timeout=5)

    target.send("spawn 6")
    target.expect("spawned 6")
    after = target.tracers()
    assert set(after) - before, "locked goroutines started no new thread"
    assert set(after.values()) == {tracer.native_id}, after
    assert sorted(tracer.traced()[target.pid]) == sorted(after)

    ticks = target.count(r"tick \d+")
    time.sleep(max(1.0, 2.0 - (time.monotonic() - start)))  # traced 2 s in all, at least 1 s of it here
    assert target.count(r"tick \d+") - ticks >= 3, "the program barely ran while traced"
    stats = tracer.stats()
    assert stats.signals.get(signal.SIGURG, 0) > 10, stats
    assert stats.signals.get(signal.SIGUSR1, 0) >= 10, stats
    assert stats.new_threads >= 1 and stats.per_second() > 0
    target.send("quit")
    done = json.loads(target.expect(r"done (.*)").group(1))
    assert done["usr1"] == 10 and done["spins"] > 0, done
    assert target.exit_status() == 0, target.stderr
    wait_for(lambda: target.pid not in tracer.traced(), what="the tracer forgets the exited process")
    assert recorder.traced == [(target.pid, True), (target.pid, False)]
    assert recorder.errors == []


def test_group_stop_stays_a_stop_until_sigcont(targets: Callable[..., Target], tracer: Tracer) -> None:
    target = targets("busy")
    target.expect("ready")
    assert tracer.add(target.pid) == ""
    target.expect(r"tick \d+")
    target.send_signal(signal.SIGSTOP)
    # traced threads in PTRACE_LISTEN show "t" (tracing stop) rather than "T"
    wait_for(lambda: target.states() <= {"T", "t"}, what="every thread stopped")
    ticks = target.count(r"tick \d+")
    time.sleep(0.5)
    assert target.count(r"tick \d+") == ticks, "ticks while stopped"
    assert tracer.stats().group_stops >= 1
    target.send_signal(signal.SIGCONT)
    # running again: ticks come (a thread may still show "t" for an instant, at a SIGURG stop)
    resumed = len(target.lines)
    target.expect(r"tick \d+", start=resumed)
    wait_for(lambda: target.count(r"tick \d+") >= ticks + 3, what="three ticks after SIGCONT")
    target.send("quit")
    assert target.exit_status() == 0


def test_a_program_stopped_before_the_attach_stays_stopped(targets: Callable[..., Target], tracer: Tracer) -> None:
    target = targets("busy")
    target.expect("ready")
    target.send_signal(signal.SIGSTOP)
    wait_for(lambda: target.states() == {"T"}, what="every thread stopped")
    assert tracer.add(target.pid) == ""
    assert set(target.tracers().values()) == {tracer.native_id}
    ticks = target.count(r"tick \d+")
    time.sleep(0.5)
    assert target.count(r"tick \d+") == ticks, "ticks while stopped"
    assert target.states() <= {"T", "t"}
    target.send_signal(signal.SIGCONT)
    wait_for(lambda: target.count(r"tick \d+") >= ticks + 3, what="three ticks after SIGCONT")
    target.send("quit")
    assert target.exit_status() == 0


def test_stop_detaches_a_stopped_program_which_stays_stopped(targets: Callable[..., Target],
                                                            recorder: Recorder) -> None:
    """stop() cannot count on the target to wake the tracer: every thread of it is in a group stop."""
    target = targets("busy")
    target.expect("ready")
    tracer = recorder.tracer()
    tracer.start()
    assert tracer.add(target.pid) == ""
    target.send_signal(signal.SIGSTOP)
    wait_for(lambda: target.states() <= {"T", "t"}, what="every thread stopped")
    begin = time.monotonic()
    tracer.stop()
    assert not tracer.is_alive() and time.monotonic() - begin < 2
    assert set(target.tracers().values()) == {0}
    # stopped, no longer by a tracer (a detached thread runs for an instant to re-enter the group stop)
    wait_for(lambda: target.states() == {"T"}, timeout=2, what="every thread back in the group stop")
    ticks = target.count(r"tick \d+")
    time.sleep(0.3)
    assert target.count(r"tick \d+") == ticks
    target.send_signal(signal.SIGCONT)
    target.expect(r"tick \d+", start=len(target.lines))
    target.send("quit")
    assert target.exit_status() == 0
    assert recorder.traced == [(target.pid, True), (target.pid, False)]


def test_stop_detaches_and_the_program_runs_on(targets: Callable[..., Target], recorder: Recorder) -> None:
    target = targets("busy")
    target.expect("ready")
    tracer = recorder.tracer()
    tracer.start()
    assert tracer.add(target.pid) == ""
    time.sleep(0.5)
    target.send_signal(signal.SIGUSR1)  # maybe pending at the detach: it goes with it
    tracer.stop()
    assert not tracer.is_alive()
    assert recorder.traced == [(target.pid, True), (target.pid, False)]
    assert set(target.tracers().values()) == {0}
    target.expect("usr1 1")
    target.send_signal(signal.SIGUSR1)
    target.expect("usr1 2")
    target.send("quit")
    assert target.exit_status() == 0
    assert tracer.add(target.pid) == "the tracer has stopped"


@pytest.mark.parametrize("all_threads", [True, False], ids=["all-threads", "leash"])
def test_the_target_dies_with_its_tracer(targets: Callable[..., Target], all_threads: bool) -> None:
    """PTRACE_O_EXITKILL: SIGKILL the process that traces the program, the program dies too."""
    target = targets("busy")
    target.expect("ready")
    code = ("import sys, time\n"
            f"sys.path.insert(0, {str(REPO)!r})\n"
            "from gohook.attach.tracer import Tracer\n"
            "t = Tracer(lambda tgid, tid, regs: None)\n"
            "t.start()\n"
            f"print(t.add(int(sys.argv[1]), all_threads={all_threads}) or 'traced', t.native_id, flush=True)\n"
            "time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(target.pid)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        word, tracer_tid = child.stdout.readline().split()
        assert word == "traced"
        tracers = target.tracers()
        if all_threads:
            assert set(tracers.values()) == {int(tracer_tid)}
        else:
            assert tracers.pop(target.pid) == int(tracer_tid) and set(tracers.values()) == {0}
        target.expect(r"tick \d+", start=len(target.lines))  # runs while traced
        child.kill()
        assert target.exit_status(timeout=10) == -signal.SIGKILL
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


@pytest.mark.parametrize("answer", ["none", "same", "eacces", "raise"])
def test_sigsys_stop(targets: Callable[..., Target], answer: str) -> None:
    """A thread raises SIGSYS on itself with tgkill. None: the Go runtime dies of it. The same registers:
    the signal is suppressed, tgkill returned 0. RAX = -EACCES: tgkill returns EACCES to the program.
    A callback that raises: the process is killed (fail closed)."""

    def decide(tgid: int, tid: int, regs: Registers) -> Registers | None:
        if answer == "raise":
            raise RuntimeError("no mark")
        return {"none": None, "same": regs, "eacces": regs.replace(rax=-errno.EACCES)}[answer]

    recorder = Recorder(decide)
    tracer = recorder.tracer()
    tracer.start()
    try:
        target = targets("sigsys")
        target.expect("ready")
        tid = int(target.expect(r"tid (\d+)").group(1))
        assert tid != target.pid
        assert tracer.add(target.pid) == ""
        target.send("go")
        status = target.exit_status()
        stats = tracer.stats()
    finally:
        tracer.stop()
    assert len(recorder.sigsys) == 1
    tgid, seen_tid, regs = recorder.sigsys[0]
    assert (tgid, seen_tid) == (target.pid, tid)
    # the registers are those of the returning tgkill system call: number, arguments, result
    assert (regs.orig_rax, regs.rdi, regs.rsi, regs.rdx, regs.rax) == (
        tgkill_number(), target.pid, tid, signal.SIGSYS, 0)
    if answer == "none":
        assert status == 2 and "SIGSYS: bad system call" in target.stderr, target.stderr
        assert stats.sigsys_passed == 1 and stats.sigsys_rewritten == 0
    elif answer == "raise":
        assert status == -signal.SIGKILL
        assert any("on_sigsys failed" in e and "no mark" in e for e in recorder.errors), recorder.errors
    else:
        want = "nil" if answer == "same" else os.strerror(errno.EACCES).lower()
        assert target.expect(r"err (.*)").group(1) == want
        assert status == 0 and "survived" in target.lines, target.stderr
        assert stats.sigsys_rewritten == 1 and stats.sigsys_passed == 0
    if answer != "raise":
        assert recorder.errors == []


def test_exec_from_another_thread_stays_traced(targets: Callable[..., Target], tracer: Tracer,
                                               recorder: Recorder) -> None:
    """A non-main thread execs: the kernel gives it the leader's tid (de_thread); the new image is still
    traced, every thread of it, and the tracer's view matches /proc."""
    target = targets("busy")
    target.expect("ready")
    assert tracer.add(target.pid) == ""
    target.send("exec")
    target.expect("ready", start=target.lines.index("ready") + 1)
    target.send("spawn 3")
    target.expect("spawned 3")
    tracers = target.tracers()
    assert set(tracers.values()) == {tracer.native_id}
    assert sorted(tracer.traced()[target.pid]) == sorted(tracers)
    assert tracer.stats().execs == 1
    target.send("quit")
    assert target.exit_status() == 0
    wait_for(lambda: target.pid not in tracer.traced(), what="the tracer forgets the exited process")
    assert recorder.traced == [(target.pid, True), (target.pid, False)]


def test_killed_program_is_forgotten_and_the_tracer_goes_on(targets: Callable[..., Target], tracer: Tracer,
                                                          recorder: Recorder) -> None:
    first, second = targets("busy"), targets("busy")
    first.expect("ready")
    second.expect("ready")
    results: dict[int, str] = {}
    adders = [threading.Thread(target=lambda p=p: results.__setitem__(p, tracer.add(p))) for p in (first.pid,
                                                                                                     second.pid)]
    for a in adders:
        a.start()
    for a in adders:
        a.join()
    assert results == {first.pid: "", second.pid: ""}
    first.send_signal(signal.SIGKILL)
    assert first.exit_status() == -signal.SIGKILL
    wait_for(lambda: first.pid not in tracer.traced(), what="the tracer forgets the killed process")
    assert (first.pid, False) in recorder.traced
    second.send_signal(signal.SIGUSR1)
    second.expect("usr1 1")
    assert set(second.tracers().values()) == {tracer.native_id}
    assert tracer.remove(second.pid)
    assert set(second.tracers().values()) == {0}
    assert recorder.traced[-1] == (second.pid, False)
    second.send("quit")
    assert second.exit_status() == 0
    assert recorder.errors == []


def test_add_refuses(targets: Callable[..., Target], tracer: Tracer, recorder: Recorder) -> None:
    target = targets("busy")
    target.expect("ready")
    assert tracer.add(os.getpid()) == "gohook's own process cannot be traced"
    assert tracer.add(0) == "0 is not a process id"
    thread = [t for t in target.tasks() if t != target.pid][0]
    assert tracer.add(thread) == f"{thread} is a thread of process {target.pid}, not a process"
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert "a child of gohook's own process" in tracer.add(child.pid)
    finally:
        child.kill()
        child.wait()
    assert tracer.add(1 << 23) == "no such process"  # above the largest pid_max (2**22)
    other = Recorder().tracer()
    other.start()
    try:
        assert other.add(target.pid) == ""
        assert tracer.add(target.pid) == f"already traced by pid {other.native_id}"
    finally:
        other.stop()
    assert tracer.add(target.pid, all_threads=False) == ""  # the leash: main thread only, no on_traced
    tracers = target.tracers()
    assert tracers.pop(target.pid) == tracer.native_id and set(tracers.values()) == {0}
    assert tracer.add(target.pid) == "already traced (main thread only)"
    assert recorder.traced == []
    target.send("quit")
    assert target.exit_status() == 0
