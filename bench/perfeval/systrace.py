"""Loader of the syscall-tracing alternative (bench/perfeval/syscall_trace.bpf.c), audit only.

Built from the same enforcement plan as gohook, so both attribute with the
same range table (gohook.bpf.render.build_tables) and the same module masks.
One raw-tracepoint program on sys_enter, attached for a run and detached
after it (while attached, every syscall of every process on the machine runs
its pid filter). Targets are thread-group ids put into a hash map before the
target process starts its work; the target must not be PIE (return
addresses are compared with static addresses).
"""

from __future__ import annotations

import ctypes as ct
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_probe import _fdinfo_stats  # kernel run_cnt / run_time_ns of one program fd

from gohook.bpf.abi import NSYSCALLS
from gohook.bpf.loader import ProgramStats
from gohook.bpf.render import build_tables
from gohook.plan.model import EnforcementPlan
from gohook.sites.catalog import load_catalog

SOURCE = Path(__file__).resolve().parent / "syscall_trace.bpf.c"
FUNCTION = b"st_sys_enter"
TRACEPOINT = b"sys_enter"

#: x86_64 syscall numbers -> the catalog capability a peer would charge them to.
#: The child side of fork+exec runs in a new process (not a target), so exec
#: is charged at clone/vfork, as syscall tracers that do not follow children do;
#: the runtime's own thread clones are std-only stacks and so unattributed.
SYSCALL_CAPABILITIES: dict[str, tuple[int, ...]] = {
    "files.read": (2, 4, 6, 21, 89, 217, 257, 262, 267, 269, 332, 437, 439),
    "files.write": (76, 77, 82, 83, 84, 85, 86, 87, 88, 90, 91, 92, 93, 94, 133, 258, 259, 260, 263, 264, 265,
                    266, 268, 280, 316),
    "network.connect": (42,),
    "network.listen": (49, 50),
    "exec": (56, 58, 59, 322, 435),
    "system.read": (63, 99, 115),
    "system.modify": (62, 80, 81, 101, 141, 160, 161, 164, 165, 166, 169, 170, 171, 200, 234),
}
#: counters of the program (ST_C_* in syscall_trace.bpf.c)
COUNTER_NAMES = ("syscalls", "walked", "frames", "attributed", "checked", "violations", "lost")
EVENT = struct.Struct("<6Q")  # struct st_event


@dataclass(frozen=True, slots=True)
class Violation:
    time_ns: int
    pid: int
    tid: int
    nr: int
    module: int
    capabilities: int
    ret: int


def decode_violation(data: bytes) -> Violation:
    t, pid_tgid, nr, module, caps, ret = EVENT.unpack_from(data)
    return Violation(t, pid_tgid >> 32, pid_tgid & 0xFFFFFFFF, nr, module, caps, ret)


def syscall_caps(capability_bits: dict[str, int]) -> list[int]:
    """syscall number -> capability bitmask, NSYSCALLS entries."""
    table = [0] * NSYSCALLS
    for name, numbers in SYSCALL_CAPABILITIES.items():
        for nr in numbers:
            table[nr] |= 1 << capability_bits[name]
    return table


def cflags(plan: EnforcementPlan, *, walk_all: bool, max_frames: int = 64) -> list[str]:
    tables = build_tables(plan)
    goexit_start, goexit_end = plan.goexit
    defines = {
        "ST_TEXT_START": f"{plan.text_start:#x}ULL",
        "ST_TEXT_SIZE": f"{plan.text_end - plan.text_start:#x}ULL",
        "ST_GOEXIT_START": f"{goexit_start:#x}ULL",
        "ST_GOEXIT_SIZE": f"{goexit_end - goexit_start:#x}ULL",
        "ST_NRANGES": str(len(tables.range_start)),
        "ST_NPAGES": str(tables.npages),
        "ST_SEARCH_STEPS": str(tables.search_steps),
        "ST_NMODULES": str(len(tables.module_mask) - 1),
        "ST_MAX_FRAMES": str(max_frames),
        "ST_NSYSCALLS": str(NSYSCALLS),
        "ST_WALK_ALL": str(int(walk_all)),
    }
    return [f"-D{k}={v}" for k, v in defines.items()]


class SyscallTrace:
    """The compiled and loaded tracer for one plan; attach()/detach() around each run."""

    def __init__(self, plan: EnforcementPlan, *, walk_all: bool = True) -> None:
        if plan.pie:
            raise ValueError(f"{plan.binary}: the syscall tracer handles only non-PIE binaries")
        import bcc

        self.plan = plan
        self.walk_all = walk_all
        self._bcc = bcc
        self.bpf: Any = bcc.BPF(src_file=str(SOURCE).encode(), cflags=cflags(plan, walk_all=walk_all))
        tables = build_tables(plan)
        self._fill(b"range_start", tables.range_start, ct.c_uint32)
        self._fill(b"range_mods", tables.range_mods, ct.c_uint64)
        self._fill(b"page_first", tables.page_first, ct.c_uint32)
        self._fill(b"module_mask", tables.module_mask, ct.c_uint64)
        bits = {c.name: c.bit for c in load_catalog().capabilities}
        self._fill(b"syscall_caps", tuple(syscall_caps(bits)), ct.c_uint64)
        self.fn = self.bpf.load_func(FUNCTION, bcc.BPF.RAW_TRACEPOINT)
        self.violations: list[Violation] = []
        self.bpf[b"events"].open_ring_buffer(self._on_event)
        self.attached = False

    def _fill(self, name: bytes, values: tuple[int, ...], ctype: Any) -> None:
        table = self.bpf[name]
        for i, v in enumerate(values):
            table[ct.c_uint32(i)] = ctype(v)

    def _on_event(self, _ctx: Any, data: Any, size: int) -> int:
        self.violations.append(decode_violation(ct.string_at(data, size)))
        return 0

    def set_targets(self, pids: list[int]) -> None:
        targets = self.bpf[b"targets"]
        targets.clear()
        for pid in pids:
            targets[ct.c_uint32(pid)] = ct.c_uint8(1)

    def attach(self) -> None:
        if not self.attached:
            self.bpf.attach_raw_tracepoint(tp=TRACEPOINT, fn_name=FUNCTION)
            self.attached = True

    def detach(self) -> None:
        if self.attached:
            self.bpf.detach_raw_tracepoint(tp=TRACEPOINT)
            self.attached = False

    def poll(self, timeout_ms: int = 0) -> None:
        self.bpf.ring_buffer_poll(timeout_ms)

    def counters(self) -> dict[str, int]:
        table = self.bpf[b"counters"]
        return {name: sum(int(v) for v in table.getvalue(ct.c_int(i))) for i, name in enumerate(COUNTER_NAMES)}

    def program_stats(self) -> list[ProgramStats]:
        return [_fdinfo_stats(FUNCTION.decode(), self.fn.fd)]

    def close(self) -> None:
        self.detach()
        self.bpf.cleanup()

    def __enter__(self) -> SyscallTrace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

