"""Hold a new process before its first instruction until the agent has probed its file (issue 16).

What: `ExecHold` compiles and attaches gohook/bpf/c/exechold.bpf.c to the tracepoint
sched:sched_process_exec. Every exec of a file without a verdict (`set_verdict`) is stopped with
SIGSTOP by BPF (when `hold_unknown` is on, or the file's basename is one of `names`) and reported as a
`HeldExec` by `poll()`; the agent probes the file, records its verdict and `release()`s the process
(SIGCONT). Files are named by `FileKey`: device, inode number and the inode's change time.

Why: `gohook agent` enforces on binaries it did not start. Uprobes attached to a file fire in every
process mapping it, but only once attached: a binary exec'd before the agent has read it would run
unprobed. Stopping it in the exec tracepoint (after the new image is mapped, before its first
instruction: the signal is delivered on the way back to user space) closes that window. A file already
COVERED has its uprobes in place from its first instruction and is not held; an IGNOREd one runs.

The ctime in the key is the verdict's expiry: an inode number reused by a new file (delete + create)
has another ctime, and a file changed in place (write, chmod, touch, rename) gets a new one, so neither
inherits an old verdict; they are held again.

Fail-closed notes:
- An exe file the program cannot read is held without a key (`HeldExec.key` None) whenever holding is
  on (counter `unreadable`); the agent decides from /proc/PID/exe.
- A full ring buffer leaves the process stopped without an event (counter `lost`): the agent must then
  look for stopped processes itself (state T in /proc/PID/stat) rather than wait.
- `bpf_send_signal` failing is the one way a process runs unheld: its event has `signal_error` set
  (`HeldExec.stopped` False; counter `signal_failed`) and the agent must act on it (kill it, or accept
  it ran unprobed).
- SIGSTOP is a job-control stop: any process allowed to signal the held one (same user, its parent) can
  SIGCONT it before the agent does. The hold orders the agent's probing before the program's start for
  processes that do not fight it; a hostile parent can release its child early, so an agent that must
  also stop those checks the process is still stopped (or kills it) when its probes land late.
- The agent's own process (`agent_tgid`, default this process) and its direct children are never held,
  so the agent's helpers cannot deadlock it. The id is the one of the initial pid namespace (the kernel's):
  an agent in a pid namespace passes it.
- Scope: with `cgroup` (a cgroup v2 directory) only tasks under it are held, otherwise the whole machine.
- `FileKey.of_stat` converts what stat(2) returns to what the kernel stores. On file systems whose stat
  device is not the super block's (btrfs subvolumes, overlayfs) the keys differ and such files are
  always held: safe, not silent.

Kernel struct offsets come from the running kernel's BTF (`exechold_offsets`), as for the enforcement
program (gohook.bpf.btf): bcc compiles against another kernel's headers here.
"""

from __future__ import annotations

import ctypes as ct
import enum
import os
import signal
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any

from gohook.bpf.btf import VMLINUX, Btf, BtfError
from gohook.bpf.errors import AttachError, BpfError, BpfUnavailableError, CompileError
from gohook.bpf.loader import stderr_captured
from gohook.bpf.sources import c_dir

__all__ = ["EXECHOLD_FIELDS", "PROGRAM_FILE", "ExecEvent", "ExecHold", "ExecHoldCounters", "ExecKey",
           "FileKey", "HeldExec", "Verdict", "exechold_offsets", "kernel_dev"]

PROGRAM_FILE = "exechold.bpf.c"
HEADER_FILE = "exechold.h"

# mirrors of exechold.h (tests/bpf/test_exechold.py compares them with the header)
CFG_HOLD_UNKNOWN, CFG_AGENT_TGID, CFG_SCOPED, CFG_NAMES = 0, 1, 2, 3
NCONFIG = 4
CNT_EXECS, CNT_KNOWN, CNT_HELD, CNT_LOST, CNT_SIGNAL_FAILED, CNT_UNREADABLE, CNT_SCOPE_ERROR = range(7)
NCOUNTERS = 7
FLAG_NOKEY = 1
NAME_LEN = 64
COMM_LEN = 16
FILENAME_LEN = 256
CTIME_NSEC_MASK = 0x7FFFFFFF  # the kernel's I_CTIME_QUERIED flag (bit 31 of i_ctime_nsec) is not part of the time


class Verdict(enum.IntEnum):
    """The agent's answer for one file (values of the `verdicts` map)."""

    IGNORE = 1  # not enforced: runs unheld
    COVERED = 2  # probed: its uprobes cover it from its first instruction


class ExecKey(ct.Structure):
    """struct gohook_exec_key of exechold.h."""

    _fields_ = [("dev", ct.c_uint32), ("pad0", ct.c_uint32), ("ino", ct.c_uint64), ("ctime_sec", ct.c_int64),
                ("ctime_nsec", ct.c_uint32), ("pad1", ct.c_uint32)]


class ExecEvent(ct.Structure):
    """struct gohook_exec_event of exechold.h (one record of the ring buffer `held`)."""

    _fields_ = [("tgid", ct.c_uint32), ("ppid", ct.c_uint32), ("key", ExecKey), ("ktime_ns", ct.c_uint64),
                ("comm", ct.c_char * COMM_LEN), ("filename", ct.c_char * FILENAME_LEN),
                ("signal_err", ct.c_int32), ("flags", ct.c_uint32)]


def kernel_dev(st_dev: int) -> int:
    """The kernel's dev_t (MKDEV: major << 20 | minor, what super_block.s_dev holds) of a stat(2) st_dev.

    stat(2) reports new_encode_dev()'s userspace encoding; os.major/os.minor decode it.
    """
    major, minor = os.major(st_dev), os.minor(st_dev)
    if major >= 1 << 12 or minor >= 1 << 20:
        raise BpfError(f"device {major}:{minor} does not fit the kernel's 12-bit major, 20-bit minor encoding")
    return major << 20 | minor


@dataclass(frozen=True, slots=True)
class FileKey:
    """A file as exechold.bpf.c keys it: device (kernel encoding), inode number, inode change time."""

    dev: int
    ino: int
    ctime_sec: int
    ctime_nsec: int

    @classmethod
    def of_stat(cls, st: os.stat_result) -> FileKey:
        """The key of the file stat(2) described (st_dev converted to the kernel's encoding)."""
        sec, nsec = divmod(st.st_ctime_ns, 1_000_000_000)
        return cls(kernel_dev(st.st_dev), st.st_ino, sec, nsec)

    @classmethod
    def of_path(cls, path: str | os.PathLike[str]) -> FileKey:
        """The key of the file at path now (following symlinks, as exec does)."""
        return cls.of_stat(os.stat(path))

    @classmethod
    def of_c(cls, key: ExecKey) -> FileKey:
        return cls(int(key.dev), int(key.ino), int(key.ctime_sec), int(key.ctime_nsec))

    def to_c(self) -> ExecKey:
        """The map key (padding zero: the hash compares all 32 bytes)."""
        if not (0 <= self.dev < 1 << 32 and 0 <= self.ino < 1 << 64 and 0 <= self.ctime_nsec < 1_000_000_000
                and -(1 << 63) <= self.ctime_sec < 1 << 63):
            raise BpfError(f"file key {self} is out of range for struct gohook_exec_key")
        return ExecKey(self.dev, 0, self.ino, self.ctime_sec, self.ctime_nsec, 0)


@dataclass(frozen=True, slots=True)
class HeldExec:
    """One exec the program held (or tried to): decoded struct gohook_exec_event."""

    tgid: int
    ppid: int  # the real parent's process id
    key: FileKey | None  # None: the exe file could not be read (held anyway: fail closed)
    ktime_ns: int  # CLOCK_MONOTONIC (time.monotonic_ns) when the program ran
    comm: str
    filename: str  # as passed to execve (the tracepoint's filename), at most 255 bytes
    signal_error: int  # 0: stopped; else bpf_send_signal's -errno: the process runs unheld

    @property
    def stopped(self) -> bool:
        return self.signal_error == 0

    @classmethod
    def decode(cls, raw: bytes) -> HeldExec:
        if len(raw) < ct.sizeof(ExecEvent):
            raise BpfError(f"exec-hold event of {len(raw)} bytes, {ct.sizeof(ExecEvent)} expected")
        ev = ExecEvent.from_buffer_copy(raw[:ct.sizeof(ExecEvent)])
        key = None if ev.flags & FLAG_NOKEY else FileKey.of_c(ev.key)
        return cls(int(ev.tgid), int(ev.ppid), key, int(ev.ktime_ns), ev.comm.decode("utf-8", "replace"),
                   os.fsdecode(ev.filename), int(ev.signal_err))


@dataclass(frozen=True, slots=True)
class ExecHoldCounters:
    """The program's counters (array `counters`)."""

    execs: int  # execs looked at: in scope, not the agent's nor its children's
    known: int  # ... whose file had a verdict (not held)
    held: int  # stopped
    lost: int  # stopped, but no event (ring buffer full)
    signal_failed: int  # not stopped: bpf_send_signal failed
    unreadable: int  # held without a key
    scope_error: int  # the cgroup check failed (not held)


#: The fields exechold.bpf.c reads, as (define, struct, member chain, size the C code reads); ctime apart.
EXECHOLD_FIELDS: tuple[tuple[str, str, str, int], ...] = (
    ("GOHOOK_EH_KO_TASK_MM", "task_struct", "mm", 8),
    ("GOHOOK_EH_KO_TASK_REAL_PARENT", "task_struct", "real_parent", 8),
    ("GOHOOK_EH_KO_TASK_TGID", "task_struct", "tgid", 4),
    ("GOHOOK_EH_KO_MM_EXE_FILE", "mm_struct", "exe_file", 8),
    ("GOHOOK_EH_KO_FILE_INODE", "file", "f_inode", 8),
    ("GOHOOK_EH_KO_FILE_DENTRY", "file", "f_path.dentry", 8),
    ("GOHOOK_EH_KO_DENTRY_NAME", "dentry", "d_name.name", 8),
    ("GOHOOK_EH_KO_INODE_INO", "inode", "i_ino", 8),
    ("GOHOOK_EH_KO_INODE_SB", "inode", "i_sb", 8),
    ("GOHOOK_EH_KO_SB_DEV", "super_block", "s_dev", 4),
)
#: Where kernels keep an inode's ctime, newest first: (seconds, nanoseconds) member chains of struct inode.
CTIME_LAYOUTS: tuple[tuple[str, str], ...] = (
    ("i_ctime_sec", "i_ctime_nsec"),  # 6.11+: time64_t and u32
    ("__i_ctime.tv_sec", "__i_ctime.tv_nsec"),  # 6.6-6.10: struct timespec64
    ("i_ctime.tv_sec", "i_ctime.tv_nsec"),  # before 6.6
)


def exechold_offsets(btf: Btf) -> dict[str, int]:
    """define -> byte offset of everything exechold.bpf.c reads, checked against the sizes it reads."""
    out: dict[str, int] = {}
    for define, struct_name, chain, size in EXECHOLD_FIELDS:
        m = btf.member(struct_name, chain)
        if m.size != size:
            raise BtfError(f"struct {struct_name}.{chain} is {m.size} bytes here; exechold.bpf.c reads {size}")
        out[define] = m.offset
    tried = []
    for sec_chain, nsec_chain in CTIME_LAYOUTS:
        try:
            sec, nsec = btf.member("inode", sec_chain), btf.member("inode", nsec_chain)
        except BtfError as exc:
            tried.append(f"{sec_chain}: {exc}")
            continue
        if sec.size != 8 or nsec.size not in (4, 8):  # a long tv_nsec is read as its low (little-endian) half
            raise BtfError(f"struct inode.{sec_chain}/{nsec_chain} are {sec.size}/{nsec.size} bytes: "
                           "exechold.bpf.c reads 8 and 4")
        out["GOHOOK_EH_KO_INODE_CTIME_SEC"] = sec.offset
        out["GOHOOK_EH_KO_INODE_CTIME_NSEC"] = nsec.offset
        return out
    raise BtfError("struct inode has none of the ctime layouts exechold.bpf.c knows (" + "; ".join(tried) + ")")


@lru_cache(maxsize=1)
def _kernel_exechold_offsets(path: str) -> tuple[tuple[str, int], ...]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BtfError(f"cannot read the kernel's BTF at {path}: {exc.strerror or exc}") from exc
    return tuple(exechold_offsets(Btf(data)).items())


def _encode_name(name: str) -> bytes:
    raw = os.fsencode(name)
    if not raw or b"/" in raw or b"\0" in raw:
        raise BpfError(f"exec-hold name {name!r} is not a file name (a basename, without / or NUL)")
    if len(raw) >= NAME_LEN:
        raise BpfError(f"exec-hold name {name!r} is {len(raw)} bytes; at most {NAME_LEN - 1} are compared")
    return raw


class ExecHold:
    """The exec-hold program, compiled, loaded and attached; close with `close()` or `with`.

    `hold_unknown`: hold every exec of a file without a verdict; else only files whose basename is in
    `names` (the name of the file exec'd, after symlinks: /usr/bin/python3 runs as `python3.11`).
    `cgroup`: a cgroup v2 directory to scope holding to (None: the whole machine).
    `agent_tgid`: the process never held, nor its direct children (default: this process; 0: none). A
    child of the agent that forks and execs again (a shell running two commands) is held.
    """

    def __init__(self, *, hold_unknown: bool, names: Iterable[str] = (), cgroup: str | None = None,
                 agent_tgid: int | None = None, ringbuf_pages: int = 64, max_verdicts: int = 65536) -> None:
        if os.geteuid() != 0:
            raise BpfUnavailableError("holding execs needs root (CAP_BPF, CAP_PERFMON, CAP_KILL)")
        if ringbuf_pages <= 0 or ringbuf_pages & (ringbuf_pages - 1):
            raise BpfError(f"ring buffer pages {ringbuf_pages} is not a power of two")
        encoded = [_encode_name(n) for n in names]  # before loading: bad input attaches nothing
        self._bpf: Any = None
        self._events: list[HeldExec] = []
        self._errors: list[BpfError] = []
        self._cb: Any = None
        try:
            import bcc  # Debian's python3-bpfcc, through the venv's system site packages
        except ImportError as exc:
            raise BpfUnavailableError("cannot import bcc: install Debian's python3-bpfcc (scripts/setup.sh)") from exc
        try:
            offsets = _kernel_exechold_offsets(str(VMLINUX))
        except BtfError as exc:
            raise BpfUnavailableError(f"holding execs needs the kernel's struct offsets from BTF: {exc}") from exc
        cflags = [f"-I{c_dir()}", f"-DGOHOOK_EH_RINGBUF_PAGES={ringbuf_pages}",
                  f"-DGOHOOK_EH_MAX_VERDICTS={max_verdicts}", *(f"-D{k}={v}" for k, v in offsets)]
        source = c_dir() / PROGRAM_FILE
        with stderr_captured() as err:
            try:  # bcc attaches TRACEPOINT_PROBE programs while loading: all config slots are 0 (hold nothing)
                self._bpf = bcc.BPF(src_file=str(source).encode(), cflags=cflags)
                failure: Exception | None = None
            except Exception as exc:  # bcc raises bare Exceptions
                failure = exc
        if failure is not None:
            tail = "\n".join(err[0].strip().splitlines()[-25:])
            if "attach" in str(failure).lower():
                raise AttachError(f"cannot attach {PROGRAM_FILE} to sched:sched_process_exec: {failure}\n{tail}")
            raise CompileError(f"bcc could not compile or load {source}: {failure}\n{tail}", err[0])
        try:
            self._cb = self._on_event
            self._bpf[b"held"].open_ring_buffer(self._cb)
            if cgroup is not None:
                self._set_scope(cgroup)
            self._set_config(CFG_AGENT_TGID, os.getpid() if agent_tgid is None else agent_tgid)
            self._set_names(encoded)
            self.set_hold_unknown(hold_unknown)
        except BaseException:
            self.close()
            raise

    # -- configuration -----------------------------------------------------------

    def _live(self) -> Any:
        if self._bpf is None:
            raise BpfError("the exec-hold program is closed")
        return self._bpf

    def _set_config(self, slot: int, value: int) -> None:
        table = self._live()[b"config"]
        table[table.Key(slot)] = table.Leaf(value)

    def _set_scope(self, cgroup: str) -> None:
        try:
            fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise AttachError(f"cannot open cgroup {cgroup}: {exc.strerror}") from exc
        try:
            table = self._live()[b"scope"]
            try:
                table[0] = fd
            except Exception as exc:  # bcc raises bare Exceptions
                raise AttachError(f"cannot scope exec holding to {cgroup} (a cgroup v2 directory is needed): "
                                  f"{exc}") from exc
        finally:
            os.close(fd)
        self._set_config(CFG_SCOPED, 1)

    def set_hold_unknown(self, on: bool) -> None:
        """Hold every exec of a file without a verdict (on), or only the named files (off)."""
        self._set_config(CFG_HOLD_UNKNOWN, int(bool(on)))

    def set_names(self, names: Iterable[str]) -> None:
        """Replace the basenames held in names mode (at most 63 bytes each; longer basenames match on those)."""
        self._set_names([_encode_name(n) for n in names])

    def _set_names(self, encoded: list[bytes]) -> None:
        table = self._live()[b"names"]
        wanted = set(encoded)
        for key in list(table.keys()):
            if bytes(key.name) not in wanted:
                del table[key]
        for raw in wanted:
            key = table.Key()
            key.name = raw
            table[key] = table.Leaf(1)
        self._set_config(CFG_NAMES, len(wanted))

    def set_verdict(self, key: FileKey, verdict: Verdict) -> None:
        """Record the agent's verdict for a file: its later execs are not held."""
        table = self._live()[b"verdicts"]
        try:
            table[self._key(table, key)] = table.Leaf(int(Verdict(verdict)))
        except Exception as exc:  # bcc: the map is full
            raise BpfError(f"cannot store the verdict of {key}: {exc}") from exc

    def forget(self, key: FileKey) -> None:
        """Drop a file's verdict (no error when it has none): its next exec is held again."""
        table = self._live()[b"verdicts"]
        with suppress(KeyError):
            del table[self._key(table, key)]

    def verdict(self, key: FileKey) -> Verdict | None:
        """The stored verdict of a file, if any."""
        table = self._live()[b"verdicts"]
        try:
            return Verdict(table[self._key(table, key)].value)
        except KeyError:
            return None

    @staticmethod
    def _key(table: Any, key: FileKey) -> Any:
        c = key.to_c()
        return table.Key(c.dev, 0, c.ino, c.ctime_sec, c.ctime_nsec, 0)

    # -- events --------------------------------------------------------------------

    def _on_event(self, _ctx: Any, data: Any, size: int) -> int:
        try:
            self._events.append(HeldExec.decode(ct.string_at(data, size)))
        except BpfError as exc:
            self._errors.append(exc)
        return 0

    def poll(self, timeout_ms: int) -> list[HeldExec]:
        """The held execs reported since the last poll, waiting up to timeout_ms (-1: forever) for the first."""
        self._live().ring_buffer_poll(timeout_ms)
        events, self._events = self._events, []
        if self._errors:
            errors, self._errors = self._errors, []
            raise errors[0]
        return events

    @staticmethod
    def release(tgid: int) -> bool:
        """Let a held process run (SIGCONT). False when it no longer exists."""
        try:
            os.kill(tgid, signal.SIGCONT)
        except ProcessLookupError:
            return False
        return True

    def counters(self) -> ExecHoldCounters:
        table = self._live()[b"counters"]
        values = [int(table[table.Key(i)].value) for i in range(NCOUNTERS)]
        return ExecHoldCounters(*values)

    # -- life cycle ------------------------------------------------------------------

    def close(self) -> None:
        """Detach and unload (processes already held stay stopped: release them first)."""
        if self._bpf is not None:
            bpf, self._bpf = self._bpf, None
            bpf.cleanup()

    def __enter__(self) -> ExecHold:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
