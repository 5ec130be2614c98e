"""The live BPF checks of `gohook doctor`: a uprobe, bpf_send_signal and a ring buffer, for real on this kernel.

| id | does | fails when |
|---|---|---|
| uprobes | a per-process uprobe on the probe helper's Go-style function entry | no hit, or [rsp] / R14 read wrong |
| send-signal | bpf_send_signal(SIGKILL) from that uprobe | the helper survives or runs the body |
| ring-buffer | BPF_RINGBUF_OUTPUT from that uprobe | it does not load, or no event arrives |
| deny-path | loads a uprobe program writing a register | never: says if a graceful deny can return in BPF |

They compile one small BPF program, gohook/bpf/c/doctor.bpf.c (the whole
doctor takes about 0.7s here), and run the probe helper
(gohook.bpf.probe_helper) twice. The helper waits in read() while the
uprobe is attached to its pid only (as `attach --pid` does), then calls the
probed function. The same run checks that the probe sees the right process,
that bpf_probe_read_user reads the return address at [rsp] (what stack walks
need) and that R14 (Go's current g) is readable. For send-signal the helper
must die of SIGKILL without printing: the kill lands before the probed
function's body runs, which is gohook's enforcement guarantee.

`run_checks()` is the doctor's whole list: the static checks of
gohook.bpf.host, then these three (not tried, with the reason, when
privileges, bcc or the headers already failed).
"""

from __future__ import annotations

import ctypes as ct
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gohook.bpf.host import BCC_FIX, HEADERS_FIX, Check, Environment, Status, import_bcc, static_checks
from gohook.bpf.probe_helper import ProbeHelper, probe_helper
from gohook.bpf.sources import c_source

__all__ = ["BPF_PROGRAM_FILE", "DoctorEvent", "bpf_checks", "bpf_source", "run_checks"]

BPF_PROGRAM_FILE = "doctor.bpf.c"


def bpf_source() -> str:
    """The doctor's BPF program (package data: gohook/bpf/c/doctor.bpf.c)."""
    return c_source(BPF_PROGRAM_FILE)


class DoctorEvent(ct.Structure):
    """struct doctor_event of doctor.bpf.c (tests compare it with gcc's layout of the C struct)."""

    _fields_ = [("pid", ct.c_uint32), ("read_err", ct.c_int32), ("ret", ct.c_uint64), ("sp", ct.c_uint64),
                ("r14", ct.c_uint64)]


CHILD_TIMEOUT = 5.0


class _Failed(Exception):
    """A BPF-check step failed: the message is the one-line detail, `fix` what to do."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.fix = fix


@contextmanager
def _stderr_to(out: list[str]) -> Iterator[None]:
    """Capture file descriptor 2 (libbcc and clang print there) into out[0]."""
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out[0] = tmp.read().decode("utf-8", "replace")


def _first_error(text: str, fallback: str) -> str:
    for line in text.splitlines():
        if "error" in line.lower():
            return line.strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else fallback


@dataclass
class _Helper:
    path: Path
    spec: ProbeHelper


@contextmanager
def _installed_helper() -> Iterator[_Helper]:
    """The helper written to the first temporary directory where it can execute (not mounted noexec)."""
    spec = probe_helper()
    candidates = [Path(tempfile.gettempdir()), Path("/dev/shm"), Path("/var/tmp"), Path.home() / ".cache"]
    problems: list[str] = []
    for base in candidates:
        try:
            tmp = tempfile.TemporaryDirectory(prefix="gohook-doctor-", dir=base)
        except OSError as exc:
            problems.append(f"{base}: {exc.strerror}")
            continue
        with tmp as d:
            path = Path(d) / "doctorprobe"
            path.write_bytes(spec.data)
            path.chmod(0o755)
            try:  # a baseline run without probes: EOF on stdin, so it calls doctor_target at once
                run = subprocess.run([str(path)], stdin=subprocess.DEVNULL, capture_output=True,
                                     timeout=CHILD_TIMEOUT, check=False)
            except (OSError, subprocess.SubprocessError) as exc:
                problems.append(f"{base}: {exc}")
                continue
            if run.returncode != 0 or run.stdout != spec.output:
                raise _Failed(f"the helper misbehaved without probes (status {run.returncode}, "
                              f"output {run.stdout!r})", "gohook attach supports x86-64 Linux only")
            yield _Helper(path, spec)
            return
    raise _Failed("cannot run the helper from any temporary directory: " + "; ".join(problems),
                  "set TMPDIR to a directory on a file system not mounted noexec")


@dataclass
class _ChildRun:
    pid: int
    returncode: int
    stdout: bytes
    seconds: float


class _Session:
    """One compiled doctor program and the helper; attaches per child process, like `attach --pid`."""

    def __init__(self, bcc: Any, helper: _Helper, ringbuf: bool) -> None:
        self.bcc = bcc
        self.helper = helper
        self.bpf: Any = None
        self.events: list[DoctorEvent] = []
        self._cb: Any = None
        err = [""]
        with _stderr_to(err):
            try:
                cflags = ["-DDOCTOR_RINGBUF"] if ringbuf else []
                self.bpf = bcc.BPF(text=bpf_source().encode(), cflags=cflags)
                failure: Exception | None = None
            except Exception as exc:  # bcc raises bare Exceptions
                failure = exc
        if failure is not None:
            raise _Failed(f"bcc cannot compile a tiny uprobe program: {_first_error(err[0], str(failure))}",
                          HEADERS_FIX)
        if ringbuf:
            self._cb = self._on_event
            try:
                self.bpf[b"events"].open_ring_buffer(self._cb)
            except Exception as exc:
                self.close()
                raise _Failed(f"cannot open the ring buffer: {exc}", RINGBUF_FIX) from None

    def _on_event(self, _ctx: Any, data: Any, size: int) -> int:
        if size >= ct.sizeof(DoctorEvent):
            self.events.append(DoctorEvent.from_buffer_copy(ct.string_at(data, ct.sizeof(DoctorEvent))))
        return 0

    def load(self, name: str) -> int:
        err = [""]
        with _stderr_to(err):
            try:
                fn = self.bpf.load_func(name.encode(), self.bcc.BPF.KPROBE)
                failure: Exception | None = None
            except Exception as exc:
                failure = exc
        if failure is not None:
            raise _Failed(f"the kernel refused program {name}: {_first_error(err[0], str(failure))}",
                          "look for seccomp, SELinux or container limits on bpf(); see the privileges line")
        return int(fn.fd)

    def run_child(self, program: str) -> _ChildRun:
        """Start the helper, attach `program` to doctor_target for its pid only, let it call the target."""
        fd = self.load(program)
        lib = self.bcc.lib
        child = subprocess.Popen([str(self.helper.path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL)
        ev_name = f"gohook_doctor_{os.getpid()}_{child.pid}".encode()
        perf_fd = -1
        try:
            ct.set_errno(0)
            perf_fd = lib.bpf_attach_uprobe(fd, 0, ev_name, os.fsencode(self.helper.path),
                                            self.helper.spec.target_offset, child.pid)
            if perf_fd < 0:
                errno = ct.get_errno()
                raise _Failed(f"cannot attach a uprobe at file offset {self.helper.spec.target_offset:#x} of "
                              f"the helper for process {child.pid}: {os.strerror(errno) if errno else 'libbcc error'}",
                              UPROBE_FIX)
            start = time.monotonic()
            try:  # one byte ends the helper's read(): it calls doctor_target now
                out, _ = child.communicate(b"g", timeout=CHILD_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise _Failed(f"the probed helper (pid {child.pid}) did not finish within {CHILD_TIMEOUT:.0f}s",
                              UPROBE_FIX) from None
            return _ChildRun(child.pid, child.returncode, out, time.monotonic() - start)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
            if perf_fd >= 0:
                lib.bpf_close_perf_event_fd(perf_fd)
                lib.bpf_detach_uprobe(ev_name)  # only does something for probes made through tracefs

    def poll(self, timeout_ms: int) -> None:
        self.bpf.ring_buffer_poll(timeout_ms)

    def close(self) -> None:
        if self.bpf is not None:
            bpf, self.bpf = self.bpf, None
            bpf.cleanup()


UPROBE_FIX = "the kernel needs CONFIG_UPROBES=y; look for seccomp, SELinux or container limits on perf_event_open"
SIGNAL_FIX = ("bpf_send_signal needs Linux 5.3+; without it gohook can only observe: use attach --mode audit")
RINGBUF_FIX = "BPF ring buffers need Linux 5.8+"


def _uprobe_check(session: _Session) -> Check:
    title = "uprobes work"
    spec = session.helper.spec
    run = session.run_child("doctor_hit")
    hits = int(session.bpf[b"hits"][ct.c_int(0)].value)
    ev = session.bpf[b"last"][ct.c_int(0)]
    if run.returncode != 0 or run.stdout != spec.output:
        raise _Failed(f"the probed helper exited with status {run.returncode} and output {run.stdout!r} "
                      f"(expected 0 and {spec.output!r})", UPROBE_FIX)
    if hits == 0:
        return Check("uprobes", title, Status.FAIL,
                     f"the uprobe was attached but never hit while the helper called the probed function "
                     f"({session.helper.path.name} at {spec.target_address:#x})", UPROBE_FIX)
    problems = [] if ev.pid == run.pid else [f"the hit came from pid {ev.pid}, not the helper's {run.pid}"]
    if ev.read_err != 0:
        problems.append(f"bpf_probe_read_user of [rsp] failed ({os.strerror(-ev.read_err)}): "
                        "stack walks cannot work")
    elif ev.ret != spec.return_address:
        problems.append(f"[rsp] read {ev.ret:#x}, expected the return address {spec.return_address:#x}")
    if ev.r14 - ev.sp != spec.rsp_to_r14:
        problems.append(f"R14 - RSP = {ev.r14 - ev.sp:#x}, expected {spec.rsp_to_r14}: registers read wrong")
    if problems:
        return Check("uprobes", title, Status.FAIL, "the uprobe hit, but " + "; ".join(problems),
                     "bpf_probe_read_user needs Linux 5.5+ and no lockdown=confidentiality on old kernels")
    return Check.ok("uprobes", title,
                    f"a per-process uprobe on a helper's Go-style entry (single-stepped) hit {hits}x; "
                    "bpf_probe_read_user read the return address at [rsp]; R14 read right")


def _signal_check(session: _Session) -> Check:
    title = "bpf_send_signal"
    run = session.run_child("doctor_kill")
    ret = int(session.bpf[b"signal_ret"][ct.c_int(0)].value)
    if run.returncode == -9 and not run.stdout:
        return Check.ok("send-signal", title,
                        f"bpf_send_signal(SIGKILL) from the uprobe killed the helper before the "
                        f"probed function's body ran ({run.seconds * 1000:.0f} ms)")
    why = f"bpf_send_signal returned {ret}" + (f" ({os.strerror(-ret)})" if ret < 0 else "")
    if run.returncode == -9:
        return Check("send-signal", title, Status.FAIL,
                     f"the helper died of SIGKILL only after the probed function's body ran ({why})", SIGNAL_FIX)
    return Check("send-signal", title, Status.FAIL,
                 f"the helper survived the uprobe (exit status {run.returncode}, output {run.stdout!r}; {why})",
                 SIGNAL_FIX)


def _ringbuf_check(session: _Session) -> Check:
    title = "ring buffer"
    for _ in range(10):
        if session.events:
            break
        session.poll(100)
    spec = session.helper.spec
    mine = [e for e in session.events if e.ret == spec.return_address]
    if mine:
        return Check.ok("ring-buffer", title, f"BPF_RINGBUF_OUTPUT delivered the uprobe's event ({len(mine)} event)")
    return Check("ring-buffer", title, Status.FAIL,
                 f"BPF_RINGBUF_OUTPUT compiled, but no event of the helper arrived within 1s "
                 f"({len(session.events)} other events)", RINGBUF_FIX)


BPF_CHECKS = (("uprobes", "uprobes work"), ("send-signal", "bpf_send_signal"), ("ring-buffer", "ring buffer"),
              ("deny-path", "graceful deny path"))
#: DenyPath: how this kernel lets a denied call return an error (issue 15): the uprobe program writes the
#: result registers itself (the kernel accepts context writes from uprobe programs), or gohook does it by
#: ptrace at a signal stop
DENY_IN_BPF = "bpf"
DENY_BY_PTRACE = "ptrace"


def deny_path(session: _Session) -> tuple[str, str]:
    """(DENY_IN_BPF or DENY_BY_PTRACE, the verifier's word): whether this kernel loads a uprobe program that
    writes its context's registers."""
    err = [""]
    with _stderr_to(err):
        try:
            session.bpf.load_func(b"doctor_ctxwrite", session.bcc.BPF.KPROBE)
            refused: Exception | None = None
        except Exception as exc:  # bcc raises bare Exceptions
            refused = exc
    if refused is None:
        return DENY_IN_BPF, "the kernel accepts a uprobe program that writes its registers"
    said = next((line.strip() for line in err[0].splitlines() if "bpf_context" in line or "invalid" in line),
                _first_error(err[0], str(refused)))
    return DENY_BY_PTRACE, f"the verifier refuses a uprobe program that writes its registers ({said})"


def _deny_path_check(session: _Session) -> Check:
    path, why = deny_path(session)
    title = dict(BPF_CHECKS)["deny-path"]
    if path == DENY_IN_BPF:
        return Check.ok("deny-path", title, "a denied call can return its error from the uprobe program itself")
    return Check.ok("deny-path", title, "a denied call returns its error through ptrace (gohook traces the "
                    f"process and rewrites the registers at a signal stop): {why}")


def _not_tried(reason: str, fix: str) -> list[Check]:
    return [Check(id_, title, Status.FAIL, f"not tried: {reason}", fix) for id_, title in BPF_CHECKS]


def _failed(id_: str, exc: _Failed) -> Check:
    title = dict(BPF_CHECKS)[id_]
    return Check(id_, title, Status.FAIL, str(exc), exc.fix)


@contextmanager
def _session(bcc: Any, helper: _Helper) -> Iterator[tuple[_Session, _Failed | None]]:
    """The program with a ring buffer; when that fails but the one without works, the ring buffer is the problem."""
    ringbuf_problem: _Failed | None = None
    try:
        session = _Session(bcc, helper, ringbuf=True)
    except _Failed as first:
        session = _Session(bcc, helper, ringbuf=False)
        ringbuf_problem = _Failed(str(first), RINGBUF_FIX)
    try:
        yield session, ringbuf_problem
    finally:
        session.close()


def _session_checks(session: _Session, ringbuf_problem: _Failed | None) -> list[Check]:
    t0 = time.monotonic()
    try:
        uprobe = _uprobe_check(session)
    except _Failed as exc:
        uprobe = _failed("uprobes", exc)
    t1 = time.monotonic()
    if uprobe.status is Status.FAIL:
        return [replace(uprobe, seconds=t1 - t0), *_not_tried("the uprobe did not work", uprobe.fix)[1:]]
    try:
        signal = _signal_check(session)
    except _Failed as exc:
        signal = _failed("send-signal", exc)
    t2 = time.monotonic()
    ring = _failed("ring-buffer", ringbuf_problem) if ringbuf_problem else _ringbuf_check(session)
    t3 = time.monotonic()
    deny = _deny_path_check(session)
    t4 = time.monotonic()
    return [replace(uprobe, seconds=t1 - t0), replace(signal, seconds=t2 - t1), replace(ring, seconds=t3 - t2),
            replace(deny, seconds=t4 - t3)]


def bpf_checks() -> list[Check]:
    """uprobes, send-signal and ring-buffer: one compiled program, two runs of the helper.

    The first check's time includes writing the helper and compiling the program.
    """
    try:
        bcc = import_bcc()
    except Exception as exc:
        return _not_tried(f"bcc is not importable ({exc})", BCC_FIX)
    start = time.monotonic()
    try:
        with _installed_helper() as helper, _session(bcc, helper) as (session, ringbuf_problem):
            setup = time.monotonic() - start
            checks = _session_checks(session, ringbuf_problem)
            return [replace(checks[0], seconds=checks[0].seconds + setup), *checks[1:]]
    except _Failed as exc:
        return [replace(_failed(id_, exc), seconds=time.monotonic() - start) for id_, _ in BPF_CHECKS]


def run_checks(env: Environment | None = None, *, quick: bool = False) -> list[Check]:
    """Every check (quick: the preflight subset plus lockdown and probe limit, no BPF)."""
    checks = static_checks(env)
    if quick:
        return checks
    blockers = [c for c in checks[:3] if c.status is Status.FAIL]  # privileges, bcc, headers
    if blockers:
        b = blockers[0]
        return checks + _not_tried(f"{b.title} failed", f"fix {b.title} first")
    return checks + bpf_checks()
