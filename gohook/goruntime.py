"""Offsets of runtime.g fields (amd64) that goroutine provenance reads.

The BPF program reads the current goroutine's g through R14 (and a new
goroutine's g from runtime.newproc1's result in RAX): `goid` names the
goroutine, `gopc` is the PC of the go statement that created it. Their
offsets change between Go releases, so they come from the binary's own DWARF
(`runtime.g` in the runtime compile unit) when it has debug info, else from
G_OFFSETS, a per-release table that tests/test_evasion.py checks against the
DWARF of a binary built by every installed toolchain.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from gohook.gosym import GoBinary


@dataclass(frozen=True, slots=True)
class GOffsets:
    goid: int
    gopc: int
    source: str = "table"  # "dwarf" or "table"


#: amd64 runtime.g offsets by Go minor release. 1.19 has no parentGoid before gopc; 1.23 and 1.24 moved
#: goid to 160 (syscallbp and friends before it), 1.26 moved it back to 152. 1.20, 1.22 and 1.25 are not
#: listed: no toolchain of theirs was measured (their binaries' DWARF is used, or provenance is off).
G_OFFSETS: dict[int, GOffsets] = {
    19: GOffsets(goid=152, gopc=296),
    21: GOffsets(goid=152, gopc=280),
    23: GOffsets(goid=160, gopc=288),
    24: GOffsets(goid=160, gopc=288),
    26: GOffsets(goid=152, gopc=288),
    27: GOffsets(goid=152, gopc=288),
}

_FIELDS = ("goid", "gopc")


def dwarf_g_fields(data: bytes, names: tuple[str, ...] = _FIELDS) -> dict[str, int] | None:
    """Member offsets of runtime.g from the DWARF in an ELF image; None without debug info or runtime.g.

    Only compile units named `runtime` are searched (Go writes several: functions, then types; they come
    early, so this takes a fraction of a second).
    """
    try:
        elf = ELFFile(io.BytesIO(data))
        if not elf.has_dwarf_info() or elf.get_section_by_name(".debug_info") is None and \
                elf.get_section_by_name(".zdebug_info") is None:
            return None
        dwarf = elf.get_dwarf_info()
        for cu in dwarf.iter_CUs():
            top = cu.get_top_DIE()
            name = top.attributes.get("DW_AT_name")
            if name is None or name.value != b"runtime":
                continue
            for die in top.iter_children():
                dname = die.attributes.get("DW_AT_name")
                if die.tag != "DW_TAG_structure_type" or dname is None or dname.value != b"runtime.g":
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


def g_offsets(binary: GoBinary) -> GOffsets | None:
    """goid and gopc offsets for binary: its DWARF, else the table for its Go release, else None."""
    fields = dwarf_g_fields(binary.image.data)
    if fields is not None and all(f in fields for f in _FIELDS):
        return GOffsets(goid=fields["goid"], gopc=fields["gopc"], source="dwarf")
    return G_OFFSETS.get(binary.go_minor or 0)
