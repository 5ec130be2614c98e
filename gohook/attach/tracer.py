"""A ptrace tracer for gohook's targets: signals pass through, a denied call's SIGSYS becomes an error return.

Why: this kernel refuses BPF writes to a uprobe's registers, so the BPF program cannot make a denied Go
function return an error itself. It marks the thread (a map keyed by tid) and sends it SIGSYS
(bpf_send_signal_thread). The tracer, which traces every thread of the process, sees that signal at the
thread's signal-delivery-stop before the program does: `on_sigsys(tgid, tid, registers)` looks the mark
up and returns the registers the thread resumes with (the function returning at once with an error), and
the signal is suppressed. Everything else passes through unchanged.

What the tracer does, per traced process (`Tracer.add`):

- all threads (default): PTRACE_SEIZE every tid of /proc/PID/task with PTRACE_O_TRACECLONE |
  PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL, listing again until no tid is new (threads created meanwhile by
  threads not yet traced); threads created later are attached by the kernel (TRACECLONE) and start with
  a PTRACE_EVENT_STOP. Once every thread is traced, `on_traced(tgid, True)` (the BPF side sends SIGSYS
  only to processes marked traced; it kills the others). `on_traced(tgid, False)` comes before any
  detach, and after the process is gone.
- main thread only (`all_threads=False`): the fail-closed leash of kill mode (formerly
  session.PidLeash). No on_traced: SIGSYS cannot be handled on threads that are not traced.
- PTRACE_O_EXITKILL: when the tracer thread ends, for any reason, gohook's death by SIGKILL included, the
  kernel SIGKILLs every tracee. Nothing denied can run untraced after gohook is gone.

The stops and what each becomes:

==============================================  ===============================================
stop (waitpid status)                           action
==============================================  ===============================================
signal-delivery-stop, SIGSYS                    GETREGS, on_sigsys: registers -> SETREGS, CONT 0
                                                (suppressed); None -> CONT SIGSYS (a real one);
                                                raised or SETREGS failed -> SIGKILL the process,
                                                on_error (fail closed)
signal-delivery-stop, any other signal          CONT with the signal (Go's SIGURG preemption,
                                                SIGPROF, SIGCHLD, SIGPIPE, SIGUSR1 ...)
PTRACE_EVENT_STOP, SIGSTOP/TSTP/TTIN/TTOU       group stop: PTRACE_LISTEN (stopped until SIGCONT)
PTRACE_EVENT_STOP, SIGTRAP                      a new thread's first stop, the end of a group
                                                stop, our PTRACE_INTERRUPT: CONT 0 (DETACH when
                                                detaching)
PTRACE_EVENT_CLONE / PTRACE_EVENT_EXEC          CONT 0; exec: the execing thread's former tid is
                                                forgotten (de_thread gave it the leader's tid)
exited / killed                                 the tid is forgotten; the last one ends the process
==============================================  ===============================================

Detaching (`remove`, `stop`): on_traced(tgid, False), then PTRACE_INTERRUPT every thread and
PTRACE_DETACH each at its next stop, a pending signal going with the detach (DETACH with the signal of a
signal-delivery-stop; a SIGSYS is still handled first). A thread in a group stop stays stopped, untraced.

The wait loop does not poll. The tracer thread blocks in waitpid(-1, __WALL | __WNOTHREAD) (os.waitpid
releases the GIL; __WNOTHREAD so it never reaps children of gohook's other threads, such as the `-- CMD`
wrapper), and requests from other threads (add, remove, stop) go through a queue plus a wake-up: a
signal to the *waker*, a tiny idle child process (`python -I -S -c 'os.read(0, 1)'`, reading a pipe whose
other end the tracer holds) that the tracer thread spawns and traces itself. Its signal-delivery-stop
returns from waitpid; the tracer suppresses the signal and serves the queue. A waker rather than a
signal to a target (tgkill SIGURG, which Go tolerates) because a target may be in a group stop, where
a new signal stays pending and wakes nobody, so stop() would hang until someone sent SIGCONT; and
because it touches no target. The waker is signalled through a pidfd (no pid reuse race), dies with the
tracer (EXITKILL, and EOF on its pipe if gohook dies before it is traced), and is spawned at the first
add(); before that the thread waits on the queue alone.

Why ctypes on libc rather than python-ptrace: eight requests and a wait loop, no new dependency, and
control of the GIL, which matters more than anything else here. ptrace is called through
ctypes.PyDLL, which keeps the GIL for these short non-blocking calls: every GIL release (what
ctypes.CDLL does) is a chance for another busy Python thread to take it and for this thread to wait a
whole switch interval (5 ms by default) before it can resume the target. Only waitpid, which blocks,
releases it.

x86-64 `struct user_regs_struct` (<sys/user.h>), the buffer of PTRACE_GETREGS / PTRACE_SETREGS: 27
unsigned 64-bit fields, 216 bytes, field i at byte 8*i (`REGISTER_NAMES`, `UserRegs`; the tests check
the offsets, and the live test reads a system call's number and arguments through them):

=====  ========  =====  ========  =====  ========
byte   register  byte   register  byte   register
=====  ========  =====  ========  =====  ========
0      r15       72     r8        144    eflags
8      r14       80     rax       152    rsp
16     r13       88     rcx       160    ss
24     r12       96     rdx       168    fs_base
32     rbp       104    rsi       176    gs_base
40     rbx       112    rdi       184    ds
48     r11       120    orig_rax  192    es
56     r10       128    rip       200    fs
64     r9        136    cs        208    gs
=====  ========  =====  ========  =====  ========

At a signal-delivery-stop that follows a system call, orig_rax holds its number and rax its return
value (rdi, rsi, rdx, r10, r8, r9 its arguments, which the kernel preserves).

Things the caller must know:

- A tracee must not be a child of this process: the kernel gives a traced child's stops and exit
  status to whichever thread of its parent's process waits for it first (wait_consider_task, "traced by
  its real parent's group"), so a Popen.wait() elsewhere would swallow ptrace stops. add() refuses one;
  start the target through an intermediate process (gohook's `-- CMD` namespace init is one).
- /proc/TID/status TracerPid of a tracee is the tracer *thread's* id (`Tracer.native_id`), not
  gohook's pid.
- Callbacks run on the tracer thread while a target thread is stopped: they must be quick and must not
  wait for the tracer (add() from a callback runs inline; stop() from one does not wait).
- Each stop costs the target two context switches and this thread's Python: a Go program gets one
  SIGURG per running goroutine every ~10 ms, plus SIGPROF when profiling. A CPU-bound Python thread
  elsewhere in gohook delays waitpid's GIL reacquisition by up to sys.getswitchinterval().
- The leash (main thread only) is lost if another thread of the target execs (de_thread reuses the
  leader's tid without a report to its tracer); tracing all threads follows an exec (PTRACE_EVENT_EXEC).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gohook.errors import GohookError

# ptrace requests, options and events (<sys/ptrace.h>, <linux/ptrace.h>)
PTRACE_CONT = 7
PTRACE_GETREGS = 12
PTRACE_SETREGS = 13
PTRACE_DETACH = 17
PTRACE_GETEVENTMSG = 0x4201
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_LISTEN = 0x4208
PTRACE_O_TRACECLONE = 0x8
PTRACE_O_TRACEEXEC = 0x10
PTRACE_O_EXITKILL = 0x100000
PTRACE_EVENT_CLONE = 3
PTRACE_EVENT_EXEC = 4
PTRACE_EVENT_STOP = 128
WALL = 0x40000000  # __WALL: clone children (threads) too
WNOTHREAD = 0x20000000  # __WNOTHREAD: only this thread's children and tracees

#: options of every thread of a process traced whole (new threads inherit them)
ALL_THREADS_OPTIONS = PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL
#: the stop signals whose EVENT_STOP is a group stop (anything else there is SIGTRAP)
GROUP_STOP_SIGNALS = frozenset({signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})
#: rounds of listing /proc/PID/task before add() gives up on a process that creates threads faster
SEIZE_ROUNDS = 1000
#: what the waker runs: blocks reading its stdin, the tracer's pipe (EOF when the tracer is gone)
WAKER_SOURCE = "import os\nos.read(0, 1)\n"
#: the wake-up signal sent to the waker (suppressed by the tracer; ignored by default if it ever lands)
WAKE_SIGNAL = signal.SIGURG

REGISTER_NAMES: tuple[str, ...] = (
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi", "rdi",
    "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
)
_U64 = (1 << 64) - 1


class TracerError(GohookError):
    """The tracer was used wrongly (add before start) or could not do what it must (see the message)."""


class UserRegs(ctypes.Structure):
    """x86-64 `struct user_regs_struct`, the buffer of PTRACE_GETREGS/SETREGS (layout in the module doc)."""

    _fields_ = [(name, ctypes.c_uint64) for name in REGISTER_NAMES]


@dataclass(frozen=True)
class Registers:
    """A thread's general registers at a stop, immutable: change them with `replace(rax=..., rip=...)`.

    Values are unsigned 64-bit; a negative int is taken modulo 2**64 (rax=-1 is 0xffff_ffff_ffff_ffff),
    so an errno can be written as -errno.
    """

    r15: int
    r14: int
    r13: int
    r12: int
    rbp: int
    rbx: int
    r11: int
    r10: int
    r9: int
    r8: int
    rax: int
    rcx: int
    rdx: int
    rsi: int
    rdi: int
    orig_rax: int
    rip: int
    cs: int
    eflags: int
    rsp: int
    ss: int
    fs_base: int
    gs_base: int
    ds: int
    es: int
    fs: int
    gs: int

    def __post_init__(self) -> None:
        for name in REGISTER_NAMES:
            value = getattr(self, name)
            if not isinstance(value, int):
                raise TypeError(f"register {name} must be an int, not {type(value).__name__}")
            if not 0 <= value <= _U64:
                object.__setattr__(self, name, value & _U64)

    @classmethod
    def from_struct(cls, regs: UserRegs) -> Registers:
        """The registers of a filled PTRACE_GETREGS buffer."""
        return cls(**{name: getattr(regs, name) for name in REGISTER_NAMES})

    def to_struct(self) -> UserRegs:
        """A PTRACE_SETREGS buffer holding these registers."""
        return UserRegs(*(getattr(self, name) for name in REGISTER_NAMES))

    def replace(self, **changes: int) -> Registers:
        """A copy with some registers changed (names as in REGISTER_NAMES)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class TracerStats:
    """A snapshot of what the tracer has handled since its thread started.

    `signals` counts the signal-delivery-stops passed on, by signal number (SIGURG is Go's preemption);
    `stops` counts every ptrace stop of a target (signals, group stops, events, new threads);
    `handling_seconds` is the tracer thread's CPU time from waitpid's return to the resume request,
    summed: its own share of the delay each stop adds to the target (the context switches, and the wait
    for a CPU on a busy machine, come on top).
    """

    elapsed: float
    stops: int
    signals: dict[int, int]
    sigsys_rewritten: int
    sigsys_passed: int
    group_stops: int
    new_threads: int
    execs: int
    handling_seconds: float

    @property
    def passed(self) -> int:
        """Signal-delivery-stops passed on unchanged."""
        return sum(self.signals.values())

    def per_second(self, earlier: TracerStats | None = None) -> float:
        """Stops per second since the thread started, or since the `earlier` snapshot."""
        stops = self.stops - (earlier.stops if earlier else 0)
        seconds = self.elapsed - (earlier.elapsed if earlier else 0.0)
        return stops / seconds if seconds > 0 else 0.0


OnSigsys = Callable[[int, int, Registers], Registers | None]
OnTraced = Callable[[int, bool], None]
OnError = Callable[[str], None]


def _ignore_traced(tgid: int, traced: bool) -> None:
    """Default on_traced: nobody to tell."""


def _print_error(message: str) -> None:
    """Default on_error: one line on stderr."""
    print(f"gohook: tracer: {message}", file=sys.stderr, flush=True)


@dataclass
class _Request:
    """What another thread asks of the tracer thread; `done` is set with `result` ("" or a reason)."""

    kind: str  # "add", "remove", "stop"
    pid: int = 0
    all_threads: bool = True
    done: threading.Event = field(default_factory=threading.Event)
    result: str = ""
    abandoned: bool = False  # the caller gave up waiting: undo what the request did


@dataclass
class _Process:
    """A traced process: its traced threads and where it stands."""

    tgid: int
    all_threads: bool
    tids: set[int] = field(default_factory=set)
    announced: bool = False  # on_traced(tgid, True) was called, False not yet
    detaching: bool = False
    waiters: list[_Request] = field(default_factory=list)  # remove() requests done when it is gone


def _status_fields(tid: int) -> dict[str, str]:
    """/proc/TID/status as a dict (empty when the task is gone)."""
    try:
        text = Path(f"/proc/{tid}/status").read_text()
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _tids(pid: int) -> list[int] | None:
    """The thread ids of process pid, None when it is gone."""
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return None


class Tracer(threading.Thread):
    """Trace target processes with ptrace on one thread; see the module docstring for what it does.

    on_sigsys(tgid, tid, registers) -> registers to resume with (signal suppressed) or None (SIGSYS is
    delivered); an exception kills the process. on_traced(tgid, True/False): every thread of tgid is
    traced / about to be detached or gone. on_error(message): what failed (a process killed to fail
    closed, a callback that raised). All three run on the tracer thread.
    """

    def __init__(self, on_sigsys: OnSigsys, on_traced: OnTraced = _ignore_traced,
                 on_error: OnError = _print_error) -> None:
        super().__init__(daemon=True, name="gohook-tracer")
        self._on_sigsys = on_sigsys
        self._on_traced = on_traced
        self._on_error = on_error
        libc = ctypes.PyDLL(None, use_errno=True)  # PyDLL: the GIL stays held (module docstring)
        self._ptrace_fn = libc.ptrace
        self._ptrace_fn.restype = ctypes.c_long
        self._ptrace_fn.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        self._requests: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards _ended, _waker_fd and requests' abandoned flags
        self._ended = False
        self._stopping = False
        self._waker = 0  # pid of the waker (tracer thread only)
        self._waker_fd = -1  # pidfd of the waker (used by other threads to wake this one)
        self._waker_pipe = -1  # write end of the waker's stdin
        self._procs: dict[int, _Process] = {}
        self._tasks: dict[int, int] = {}  # tid -> tgid
        self._began = 0.0
        self._stops = 0
        self._signals: dict[int, int] = {}
        self._sigsys_rewritten = 0
        self._sigsys_passed = 0
        self._group_stops = 0
        self._new_threads = 0
        self._execs = 0
        self._handling_ns = 0

    # --- the API, from any thread --------------------------------------------------------------

    def add(self, pid: int, *, all_threads: bool = True, timeout: float = 5.0) -> str:
        """Trace process pid (every thread, or only its main thread); "" when traced, else the reason.

        Blocks until the tracer thread has seized it, at most `timeout` seconds (then the reason says
        so, and a seize that completes later is undone). Raises TracerError if the thread was never
        started.
        """
        if threading.current_thread() is self:
            return self._add(pid, all_threads)
        request = _Request("add", pid, all_threads)
        if not self._submit(request):
            return "the tracer has stopped"
        if request.done.wait(timeout):
            return request.result
        with self._lock:
            if request.done.is_set():
                return request.result
            request.abandoned = True
        return f"the tracer did not answer within {timeout:g} s"

    def remove(self, pid: int, timeout: float = 10.0) -> bool:
        """Detach from process pid (it keeps running; on_traced(pid, False) first); True once done."""
        if threading.current_thread() is self:
            proc = self._procs.get(pid)
            if proc is not None:
                self._detach_process(proc)
            return pid not in self._procs
        request = _Request("remove", pid)
        if not self._submit(request):
            return True  # the tracer is gone: nothing is traced
        return request.done.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Detach everything (the targets keep running) and end the thread.

        A thread that does not end within timeout is reported through on_error (its tracees are still
        traced; they die with it by PTRACE_O_EXITKILL).
        """
        if not self.is_alive():
            with self._lock:
                self._ended = True
            return
        if threading.current_thread() is self:
            self._begin_stop()
            return
        if self._submit(_Request("stop")):
            self.join(timeout)
        if self.is_alive():
            self._report(f"the tracer thread did not end within {timeout:g} s")

    @property
    def waker_pid(self) -> int:
        """The waker process (0 before the first add): gohook's own, for a guard that lists what a target
        may not signal (killing it only costs a respawn)."""
        return self._waker

    def traced(self) -> dict[int, list[int]]:
        """The traced processes and their traced threads (a snapshot, for diagnostics)."""
        return {tgid: sorted(proc.tids) for tgid, proc in list(self._procs.items())}

    def stats(self) -> TracerStats:
        """What the tracer has handled so far (counters read without stopping the thread)."""
        return TracerStats(
            elapsed=time.monotonic() - self._began if self._began else 0.0,
            stops=self._stops,
            signals=dict(self._signals),
            sigsys_rewritten=self._sigsys_rewritten,
            sigsys_passed=self._sigsys_passed,
            group_stops=self._group_stops,
            new_threads=self._new_threads,
            execs=self._execs,
            handling_seconds=self._handling_ns / 1e9,
        )

    def _submit(self, request: _Request) -> bool:
        """Queue a request and wake the tracer thread; False when the thread has ended."""
        if not self.is_alive() and not self._ended and self.ident is None:
            raise TracerError("the tracer thread is not started: call start() before add()")
        with self._lock:
            if self._ended:
                return False
            self._requests.put(request)
            if self._waker_fd >= 0:
                # OSError: the waker is gone; the tracer thread respawns it and serves the queue then
                with contextlib.suppress(OSError):
                    signal.pidfd_send_signal(self._waker_fd, WAKE_SIGNAL)
        return True

    # --- the tracer thread ----------------------------------------------------------------------

    def run(self) -> None:
        """The tracer thread: serve requests until the first add, then the wait loop until stop."""
        self._began = time.monotonic()
        try:
            self._loop()
        except BaseException as exc:  # the thread ends: EXITKILL kills every tracee (fail closed)
            self._report(f"the tracer failed, its targets are killed: {type(exc).__name__}: {exc}")
            raise
        finally:
            self._end()

    def _loop(self) -> None:
        while True:
            while not self._requests.empty():
                self._serve(self._requests.get_nowait())
            if self._stopping and not self._procs:
                return
            if not self._waker and not self._procs:
                self._serve(self._requests.get())  # nothing traced: the queue is all there is to wait on
                continue
            try:
                tid, status = os.waitpid(-1, WALL | WNOTHREAD)
            except ChildProcessError:  # no waker (it could not be respawned) and no tracee of ours
                self._waker = 0
                for proc in list(self._procs.values()):  # listed but no longer ours (a lost leash)
                    for tid in list(proc.tids):
                        self._forget(tid)
                    self._finish(proc)
                continue
            start = time.thread_time_ns()
            try:
                self._on_status(tid, status)
            except Exception as exc:  # a bug here must not leave a target stopped forever
                tgid = self._tasks.get(tid)
                if tgid is not None:
                    self._fail(tgid, f"tracer error at a stop of thread {tid}: {type(exc).__name__}: {exc}")
                else:
                    self._report(f"tracer error at a stop of {tid}: {type(exc).__name__}: {exc}")
            self._handling_ns += time.thread_time_ns() - start

    def _end(self) -> None:
        """The thread's last act: no more requests, the pending ones answered, the waker gone."""
        with self._lock:
            self._ended = True
            if self._waker_fd >= 0:
                os.close(self._waker_fd)
                self._waker_fd = -1
        if self._waker_pipe >= 0:
            os.close(self._waker_pipe)
            self._waker_pipe = -1
        if self._waker:
            with contextlib.suppress(OSError):
                os.kill(self._waker, signal.SIGKILL)
                os.waitpid(self._waker, WALL)
            self._waker = 0
        while not self._requests.empty():
            request = self._requests.get_nowait()
            request.result = "the tracer has stopped"
            request.done.set()
        for proc in self._procs.values():
            for request in proc.waiters:
                request.done.set()

    def _serve(self, request: _Request) -> None:
        if request.kind == "stop":
            self._begin_stop()
            request.done.set()
            return
        if request.kind == "remove":
            proc = self._procs.get(request.pid)
            if proc is None:
                request.done.set()
            else:
                proc.waiters.append(request)
                self._detach_process(proc)
            return
        with self._lock:
            if request.abandoned:
                return
        result = self._add(request.pid, request.all_threads)
        with self._lock:
            request.result = result
            request.done.set()
            undo = request.abandoned and not result
        if undo and request.pid in self._procs:
            self._detach_process(self._procs[request.pid])

    def _begin_stop(self) -> None:
        self._stopping = True
        for proc in list(self._procs.values()):
            self._detach_process(proc)

    # --- seizing --------------------------------------------------------------------------------

    def _add(self, pid: int, all_threads: bool) -> str:
        """Seize process pid on this thread; "" or the reason it is not traced."""
        if self._stopping:
            return "the tracer is stopping"
        if pid <= 0:
            return f"{pid} is not a process id"
        if pid == os.getpid():
            return "gohook's own process cannot be traced"
        known = self._procs.get(pid)
        if known is not None:
            if known.detaching:
                return "being detached"
            if all_threads and not known.all_threads:
                return "already traced (main thread only)"
            return ""
        status = _status_fields(pid)
        if not status:
            return "no such process"
        if status.get("Tgid") != str(pid):
            return f"{pid} is a thread of process {status.get('Tgid', '?')}, not a process"
        if status.get("PPid") == str(os.getpid()):
            return ("a child of gohook's own process (its stops and exit would be shared with the thread "
                    "that waits for it): start it through an intermediate process")
        if status.get("TracerPid", "0") != "0":
            return f"already traced by pid {status['TracerPid']}"
        reason = self._ensure_waker()
        if reason:
            return reason
        proc = _Process(pid, all_threads)
        self._procs[pid] = proc
        if not all_threads:
            reason = self._seize(pid, PTRACE_O_EXITKILL)
            if reason:
                del self._procs[pid]
                return reason
            self._track(pid, proc)
            return ""
        reason = f"its threads kept changing through {SEIZE_ROUNDS} listings of /proc/{pid}/task"
        for _ in range(SEIZE_ROUNDS):
            tids = _tids(pid)
            new = [t for t in tids or () if t not in proc.tids]
            if not new:  # every thread listed is traced: any newer one was created by a traced one
                reason = ""
                break
            failure = ""
            for tid in new:
                got = self._seize(tid, ALL_THREADS_OPTIONS)
                if got == "":
                    self._track(tid, proc)
                elif got is not None:
                    failure = got
                    break
            if failure:
                reason = failure
                break
        if not reason and not proc.tids:
            reason = "the process exited"
        if reason:
            self._detach_process(proc)  # what was seized is released
            return reason
        try:
            self._on_traced(pid, True)
        except Exception as exc:
            proc.announced = True  # so that detaching says False
            self._detach_process(proc)
            return f"on_traced failed: {type(exc).__name__}: {exc}"
        proc.announced = True
        return ""

    def _seize(self, tid: int, options: int) -> str | None:
        """PTRACE_SEIZE one thread: "" when traced by this thread (now or already), None when it is gone,
        else the reason it cannot be traced."""
        err = self._ptrace(PTRACE_SEIZE, tid, 0, options)
        if not err:
            return ""
        status = _status_fields(tid)
        if err == errno.ESRCH or not status or status.get("State", "").startswith(("Z", "X")):
            return None  # exited between the listing and the seize
        tracer = status.get("TracerPid", "0")
        if tracer == str(self.native_id):
            return ""  # a thread created by a thread we seized: the kernel attached it (TRACECLONE)
        if tracer != "0":
            return f"already traced by pid {tracer} (thread {tid})"
        return f"cannot trace thread {tid}: {os.strerror(err)}"

    def _track(self, tid: int, proc: _Process) -> None:
        self._tasks[tid] = proc.tgid
        proc.tids.add(tid)

    def _ensure_waker(self) -> str:
        """Spawn and trace the waker if there is none; "" or the reason it could not be."""
        if self._waker:
            return ""
        if not sys.executable:
            return "cannot start the tracer's waker: no Python executable (sys.executable is empty)"
        read_end, write_end = os.pipe()
        try:
            pid = os.posix_spawn(
                sys.executable, [sys.executable, "-I", "-S", "-c", WAKER_SOURCE], {},
                file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0),
                              (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                              (os.POSIX_SPAWN_DUP2, 1, 2)],
                setsid=True)  # out of the terminal's process group: no ^C, no ^Z
        except OSError as exc:
            os.close(write_end)
            return f"cannot start the tracer's waker: {exc}"
        finally:
            os.close(read_end)
        err = self._ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_EXITKILL)
        try:
            if err:
                raise OSError(err, os.strerror(err))
            fd = os.pidfd_open(pid)
        except OSError as exc:
            os.close(write_end)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, WALL)
            return f"cannot trace the tracer's waker: {exc.strerror}"
        if self._waker_pipe >= 0:
            os.close(self._waker_pipe)
        self._waker_pipe = write_end
        self._waker = pid
        with self._lock:
            self._waker_fd = fd
        return ""

    # --- stops ----------------------------------------------------------------------------------

    def _on_status(self, tid: int, status: int) -> None:
        """Handle one waitpid report of a tracee (or of the waker)."""
        if tid == self._waker:
            self._waker_status(status)
            return
        tgid = self._tasks.get(tid)
        if not os.WIFSTOPPED(status):
            if tgid is not None and (os.WIFEXITED(status) or os.WIFSIGNALED(status)):
                self._forget(tid)
            return
        self._stops += 1
        sig, event = os.WSTOPSIG(status), status >> 16
        if tgid is None:
            found = self._adopt(tid, sig if event == 0 else 0)
            if found is None:
                return
            tgid = found
        proc = self._procs[tgid]
        if event == PTRACE_EVENT_STOP:
            if proc.detaching:
                self._resume(tid, proc, 0)
            elif sig in GROUP_STOP_SIGNALS:
                self._group_stops += 1
                # ESRCH: killed meanwhile, its exit comes next; anything else (the group stop ended
                # meanwhile): resume it rather than leave it in a stop nobody ends
                if self._ptrace(PTRACE_LISTEN, tid) not in (0, errno.ESRCH):
                    self._resume(tid, proc, 0)
            else:
                self._resume(tid, proc, 0)
        elif event == PTRACE_EVENT_EXEC:
            self._execs += 1
            former = self._eventmsg(tid)
            if former and former != tid and former in self._tasks:
                self._tasks.pop(former, None)
                proc.tids.discard(former)
            self._track(tid, proc)
            self._resume(tid, proc, 0)
        elif event:
            self._resume(tid, proc, 0)  # PTRACE_EVENT_CLONE: the new thread reports on its own
        elif sig == signal.SIGSYS:
            self._sigsys(tid, proc)
        else:
            self._signals[sig] = self._signals.get(sig, 0) + 1
            self._resume(tid, proc, sig)

    def _adopt(self, tid: int, sig: int) -> int | None:
        """A stop of a thread not yet known: one the kernel attached (TRACECLONE). Its tgid, or None
        when it is no thread of a traced process (then it is released with its signal)."""
        status = _status_fields(tid)
        try:
            tgid = int(status.get("Tgid", ""))
        except ValueError:
            tgid = 0
        proc = self._procs.get(tgid)
        if proc is None or not proc.all_threads:
            self._ptrace(PTRACE_DETACH, tid, 0, sig)
            return None
        self._new_threads += 1
        self._track(tid, proc)
        return tgid

    def _resume(self, tid: int, proc: _Process, sig: int) -> None:
        """Let a stopped thread go on with sig: PTRACE_CONT, or PTRACE_DETACH when its process detaches."""
        if not proc.detaching:
            self._ptrace(PTRACE_CONT, tid, 0, sig)  # ESRCH: killed meanwhile, its exit comes next
            return
        self._ptrace(PTRACE_DETACH, tid, 0, sig)
        self._forget(tid)

    def _sigsys(self, tid: int, proc: _Process) -> None:
        """A SIGSYS signal-delivery-stop: on_sigsys decides (module docstring)."""
        buf = UserRegs()
        err = self._ptrace(PTRACE_GETREGS, tid, 0, ctypes.addressof(buf))
        if err == errno.ESRCH:
            return  # killed meanwhile
        if err:
            self._fail(proc.tgid, f"cannot read the registers of thread {tid} at SIGSYS: {os.strerror(err)}")
            return
        try:
            new = self._on_sigsys(proc.tgid, tid, Registers.from_struct(buf))
        except Exception as exc:
            self._fail(proc.tgid, f"on_sigsys failed for thread {tid}: {type(exc).__name__}: {exc}")
            return
        if new is None:
            self._sigsys_passed += 1
            self._resume(tid, proc, signal.SIGSYS)
            return
        if not isinstance(new, Registers):
            self._fail(proc.tgid, f"on_sigsys returned {type(new).__name__} for thread {tid}, not Registers")
            return
        out = new.to_struct()
        err = self._ptrace(PTRACE_SETREGS, tid, 0, ctypes.addressof(out))
        if err:
            self._fail(proc.tgid, f"cannot set the registers of thread {tid} at SIGSYS: {os.strerror(err)}")
            return
        self._sigsys_rewritten += 1
        self._resume(tid, proc, 0)

    def _waker_status(self, status: int) -> None:
        if os.WIFSTOPPED(status):
            self._ptrace(PTRACE_CONT, self._waker, 0, 0)  # a wake-up (or any signal): suppressed
            return
        if not (os.WIFEXITED(status) or os.WIFSIGNALED(status)):
            return
        with self._lock:
            if self._waker_fd >= 0:
                os.close(self._waker_fd)
                self._waker_fd = -1
        self._waker = 0
        if not self._stopping:
            reason = self._ensure_waker()
            if reason:
                self._report(f"the waker died and {reason}: requests wait for a stop of a target")

    # --- leaving --------------------------------------------------------------------------------

    def _detach_process(self, proc: _Process) -> None:
        """Start detaching: on_traced(False) first, then PTRACE_INTERRUPT each thread (detached at its stop)."""
        if proc.detaching:
            return
        self._unannounce(proc)
        proc.detaching = True
        for tid in sorted(proc.tids):
            if self._ptrace(PTRACE_INTERRUPT, tid):
                self._forget(tid)  # gone (an exit report, if one comes, is for a tid no longer known)
        if not proc.tids:
            self._finish(proc)

    def _forget(self, tid: int) -> None:
        """A thread is no longer traced (exited, detached, gone); its process ends with its last thread."""
        tgid = self._tasks.pop(tid, None)
        proc = self._procs.get(tgid) if tgid is not None else None
        if proc is None:
            return
        proc.tids.discard(tid)
        if not proc.tids:
            self._finish(proc)

    def _finish(self, proc: _Process) -> None:
        self._unannounce(proc)
        if self._procs.get(proc.tgid) is proc:
            del self._procs[proc.tgid]
        for request in proc.waiters:
            request.done.set()

    def _unannounce(self, proc: _Process) -> None:
        if not proc.announced:
            return
        proc.announced = False
        try:
            self._on_traced(proc.tgid, False)
        except Exception as exc:
            self._report(f"on_traced({proc.tgid}, False) failed: {type(exc).__name__}: {exc}")

    def _fail(self, tgid: int, message: str) -> None:
        """Fail closed: SIGKILL the process, say why."""
        with contextlib.suppress(OSError):  # (gone already)
            os.kill(tgid, signal.SIGKILL)
        self._report(f"process {tgid} killed: {message}")

    def _report(self, message: str) -> None:
        with contextlib.suppress(Exception):  # the error channel itself failed: nothing left to tell
            self._on_error(message)

    # --- ptrace ---------------------------------------------------------------------------------

    def _ptrace(self, request: int, tid: int, addr: int = 0, data: int = 0) -> int:
        """One ptrace request: 0 or the errno."""
        if self._ptrace_fn(request, tid, addr or None, data or None) == -1:
            return ctypes.get_errno()
        return 0

    def _eventmsg(self, tid: int) -> int:
        """PTRACE_GETEVENTMSG (the new tid of a clone, the former tid of an exec), 0 on failure."""
        msg = ctypes.c_ulong(0)
        if self._ptrace(PTRACE_GETEVENTMSG, tid, 0, ctypes.addressof(msg)):
            return 0
        return int(msg.value)
