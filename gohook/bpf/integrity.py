"""Probe integrity: are gohook's uprobe breakpoints still int3 in each target's memory?

A uprobe is an int3 (0xCC) the kernel writes into a private copy of the
page of the probed instruction, in every process that maps the file. A
process can take it back without any hooked call: mprotect its text
writable and write the original byte; madvise(MADV_DONTNEED) the page (the
private copy goes, the next fault reads the file's page, and the kernel
does not put the breakpoint back); write /proc/self/mem. From then on the
probe never fires in that process.

gohook cannot stop that in the kernel (the system calls are legitimate
elsewhere), so it notices: for a process, the mapping of the binary that
covers each probe's file offset gives the probe's run-time address
(/proc/PID/maps), one process_vm_readv call reads one byte per probe (one
iovec each), and every byte that is not 0xCC is a removed probe. A probe
whose offset no mapping of the binary covers any more while others still
do is removed too (the text was replaced by an anonymous mapping). A
process that maps the binary not at all (not exec'd yet, or exec'd
something else) has nothing to check.

Parsing and address computation are pure (tests/bpf/test_integrity.py runs
them on a fixture binary's real mappings); reading needs ptrace access to
the target (root).
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gohook.plan.model import EnforcementPlan

INT3 = 0xCC
IOV_MAX = 1024  # iovecs per process_vm_readv call (UIO_MAXIOV)


@dataclass(frozen=True, slots=True)
class Probe:
    """One uprobe of a plan: its file offset in the binary and what it is on (for messages)."""

    file_offset: int
    what: str


@dataclass(frozen=True, slots=True)
class Mapping:
    """One line of /proc/PID/maps."""

    start: int
    end: int
    perms: str
    offset: int
    dev: tuple[int, int]  # (major, minor)
    inode: int
    path: str

    def covers(self, file_offset: int) -> bool:
        return self.offset <= file_offset < self.offset + (self.end - self.start)

    def address_of(self, file_offset: int) -> int:
        return self.start + (file_offset - self.offset)


@dataclass(frozen=True, slots=True)
class Tamper:
    """A probe gone from one process: found is the byte read there (None: no mapping of the binary covers it)."""

    pid: int
    probe: Probe
    address: int | None
    found: int | None

    def describe(self) -> str:
        if self.address is None or self.found is None:
            return f"probe removed at {self.probe.what}: its text is no longer a mapping of the binary"
        return f"probe removed at {self.probe.what}: byte {self.found:#04x} instead of int3 at {self.address:#x}"


def plan_probes(plan: EnforcementPlan) -> tuple[Probe, ...]:
    """Every uprobe gohook.bpf.loader attaches for plan (hooks, goroutine-created, cgocall returns), one per offset."""
    seen: dict[int, Probe] = {}
    for h in plan.hooks:
        seen.setdefault(h.file_offset, Probe(h.file_offset, h.function))
    if plan.provenance is not None:
        for r in plan.provenance.created:
            seen.setdefault(r.file_offset, Probe(r.file_offset, "the goroutine-created probe"))
    if plan.sentinel is not None:
        for r in plan.sentinel.cgocall_returns:
            seen.setdefault(r.file_offset, Probe(r.file_offset, "runtime.cgocall's RET"))
    return tuple(sorted(seen.values(), key=lambda p: p.file_offset))


def parse_maps(text: str) -> list[Mapping]:
    """The mappings of a /proc/PID/maps text (`start-end perms offset major:minor inode [path]`)."""
    out = []
    for line in text.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) < 5:
            continue
        start, _, end = fields[0].partition("-")
        major, _, minor = fields[3].partition(":")
        out.append(Mapping(int(start, 16), int(end, 16), fields[1], int(fields[2], 16), (int(major, 16),
                           int(minor, 16)), int(fields[4]), fields[5] if len(fields) == 6 else ""))
    return out


@dataclass(frozen=True, slots=True)
class FileId:
    """How the binary shows in /proc/PID/maps: device and inode (and its path, for file systems that differ)."""

    dev: tuple[int, int]
    inode: int
    path: str

    @classmethod
    def of(cls, binary: str | os.PathLike[str]) -> FileId:
        st = os.stat(binary)
        return cls((os.major(st.st_dev), os.minor(st.st_dev)), st.st_ino, os.path.realpath(binary))

    def matches(self, m: Mapping) -> bool:
        if m.inode == 0:
            return False
        return (m.dev == self.dev and m.inode == self.inode) or m.path in (self.path, self.path + " (deleted)")


def probe_addresses(probes: Sequence[Probe], mappings: Iterable[Mapping], binary: FileId) -> list[int | None] | None:
    """Run-time address of each probe in a process with these mappings.

    None for a probe whose offset no mapping of the binary covers (an executable mapping preferred: the page
    at the end of the text can be mapped twice, as text and as read-only data); None in place of the list
    when the process maps the binary not at all.
    """
    own = [m for m in mappings if binary.matches(m)]
    if not own:
        return None
    own.sort(key=lambda m: "x" not in m.perms)  # executable mappings first
    out: list[int | None] = []
    for p in probes:
        out.append(next((m.address_of(p.file_offset) for m in own if m.covers(p.file_offset)), None))
    return out


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class ProcessReader:
    """One byte at each of many addresses of another process, with process_vm_readv (IOV_MAX per call)."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._readv = libc.process_vm_readv
        self._readv.restype = ctypes.c_ssize_t
        self._readv.argtypes = [ctypes.c_int, ctypes.POINTER(_IoVec), ctypes.c_ulong, ctypes.POINTER(_IoVec),
                                ctypes.c_ulong, ctypes.c_ulong]

    def read_bytes(self, pid: int, addresses: Sequence[int]) -> list[int | None] | None:
        """The byte at each address (None where it cannot be read); None when the process is gone."""
        out: list[int | None] = []
        i = 0
        while i < len(addresses):
            chunk = addresses[i:i + IOV_MAX]
            n = len(chunk)
            buf = ctypes.create_string_buffer(n)
            local = _IoVec(ctypes.cast(buf, ctypes.c_void_p), n)
            remote = (_IoVec * n)(*[_IoVec(a, 1) for a in chunk])
            got = self._readv(pid, ctypes.byref(local), 1, remote, n, 0)
            if got < 0:
                err = ctypes.get_errno()
                if err == errno.ESRCH:
                    return None
                if err != errno.EFAULT:
                    raise OSError(err, f"process_vm_readv of process {pid}: {os.strerror(err)}")
                got = 0
            raw = buf.raw
            out.extend(raw[:got])
            if got < n:  # the first unreadable address stops the call: mark it and go on after it
                out.append(None)
                got += 1
            i += got
        return out


class IntegrityChecker:
    """The probes of one plan, checked in any process: check(pid) lists the removed ones."""

    def __init__(self, plan: EnforcementPlan, binary: str | os.PathLike[str] | None = None) -> None:
        self.probes = plan_probes(plan)
        self.binary = FileId.of(binary if binary is not None else plan.binary)
        self.reader = ProcessReader()
        # pid -> (its last maps text, the probe addresses computed from it): parsing costs more than reading
        self._last: dict[int, tuple[bytes, list[int | None] | None]] = {}

    @staticmethod
    def _maps(pid: int) -> bytes | None:
        try:
            with open(f"/proc/{pid}/maps", "rb") as f:
                return f.read()
        except (FileNotFoundError, ProcessLookupError):
            return None

    def check(self, pid: int) -> list[Tamper] | None:
        """Removed probes of process pid; None when it is gone or does not map the binary."""
        maps = self._maps(pid)
        if maps is None:
            self._last.pop(pid, None)
            return None
        last = self._last.get(pid)
        if last is not None and last[0] == maps:
            addresses = last[1]
        else:
            addresses = probe_addresses(self.probes, parse_maps(maps.decode("utf-8", "replace")), self.binary)
            if len(self._last) > 4096:
                self._last.clear()
            self._last[pid] = (maps, addresses)
        if addresses is None:
            return None
        mapped = [(p, a) for p, a in zip(self.probes, addresses, strict=True) if a is not None]
        found = self.reader.read_bytes(pid, [a for _, a in mapped])
        if found is None:
            return None
        if (None in found or len(mapped) < len(addresses)) and self._maps(pid) != maps:
            return None  # the mappings changed under the read (an exiting process): the next check decides
        out = [Tamper(pid, p, None, None) for p, a in zip(self.probes, addresses, strict=True) if a is None]
        out += [Tamper(pid, p, a, b) for (p, a), b in zip(mapped, found, strict=True) if b != INT3]
        return sorted(out, key=lambda t: t.probe.file_offset)
