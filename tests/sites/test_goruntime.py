"""gohook.sites.goruntime: runtime.g and runtime.m offsets for goroutine provenance.

The per-release table G_OFFSETS (the fallback for binaries without DWARF, and the planner's only table) is
checked against the DWARF of a binary built by every installed toolchain, read by dwarf_g_fields; the
curg offsets against hand-assembled runtime.systemstack code. The binary's DWARF comes from the ELF its
GoBinary already parsed (ElfImage.dwarf): the file is parsed once.

No root needed: nothing here attaches (these tests used to live in tests/test_evasion.py, behind its
module-wide root fixture).
"""

from __future__ import annotations

import gofixtures
import pytest
from elftools.elf.elffile import ELFFile

from gohook.gosym import GoBinary
from gohook.sites.goruntime import (
    G_OFFSETS,
    CurgOffsets,
    GOffsets,
    curg_offsets_from_systemstack,
    dwarf_g_fields,
    dwarf_struct_fields,
    g_offsets,
    table_goid_offset,
)


def _check_g_offsets(toolchain: gofixtures.Toolchain, fixture: str) -> None:
    binary = GoBinary.open(gofixtures.build(toolchain, fixture, "default"))
    fields = dwarf_g_fields(binary.image.data, ("goid", "gopc", "parentGoid", "startpc"))
    assert fields is not None, "no runtime.g in the DWARF"
    table = G_OFFSETS.get(toolchain.release[1])
    assert table is not None, f"G_OFFSETS has no entry for Go {toolchain.version}: {fields}"
    assert (table.goid, table.gopc, table.parent_goid) == (fields["goid"], fields["gopc"],
                                                           fields.get("parentGoid", 0)), fields
    assert g_offsets(binary) == GOffsets(fields["goid"], fields["gopc"], fields.get("parentGoid", 0), "dwarf")


def test_runtime_g_offsets_match_the_dwarf_of_every_toolchain(toolchain: gofixtures.Toolchain) -> None:
    """G_OFFSETS (the fallback for binaries without DWARF) against runtime.g's DWARF, per installed release."""
    _check_g_offsets(toolchain, "capapp")
    stripped = GoBinary.open(gofixtures.build(toolchain, "capapp", "stripped"))
    assert g_offsets(stripped) == G_OFFSETS[toolchain.release[1]]  # no DWARF: the table


#: runtime.systemstack's switch back (Go 1.27): call rdi; mov rax, fs:[-8]; mov rbx, [rax+0x30];
#: mov rax, [rbx+0xb8]; mov fs:[-8], rax
_SWITCH_BACK = bytes.fromhex("ffd7" "64488b0425f8ffffff" "488b5830" "488b83b8000000" "64488904" "25f8ffffff")


def test_curg_offsets_from_systemstack_code() -> None:
    assert curg_offsets_from_systemstack(_SWITCH_BACK, 0x4866A8) == CurgOffsets(g_m=0x30, m_curg=0xB8)
    # the m.curg load must use the register g.m went to
    other_base = _SWITCH_BACK.replace(bytes.fromhex("488b83b8000000"), bytes.fromhex("488b81b8000000"))
    assert curg_offsets_from_systemstack(other_base, 0x4866A8) is None
    assert curg_offsets_from_systemstack(_SWITCH_BACK[2:], 0x4866AA) is None  # no `call reg` before
    assert curg_offsets_from_systemstack(_SWITCH_BACK[:2] + b"\xc3" + _SWITCH_BACK[2:], 0) is None  # RET between
    assert curg_offsets_from_systemstack(b"", 0) is None
    assert curg_offsets_from_systemstack(bytes(range(256)) * 4, 0) is None  # garbage: no crash


@pytest.mark.parametrize("version", ["1.21.13", "1.27.3"])
def test_runtime_g_offsets_of_the_evasion_binaries(version: str) -> None:
    _check_g_offsets(gofixtures.live_toolchain(version), "evasion")


# --- the one table, and the DWARF read through the GoBinary's own ELF ---------------------------------------


def test_the_table_covers_every_release_the_planner_knows() -> None:
    """Go 1.19..1.27, each with goid before parentGoid before gopc (1.21+), and table_goid_offset reads it."""
    assert sorted(G_OFFSETS) == list(range(19, 28))
    for minor, row in G_OFFSETS.items():
        assert row.source == "table"
        assert table_goid_offset(minor) == row.goid
        if minor >= 21:
            assert row.goid < row.parent_goid == row.gopc - 8, minor
        else:
            assert row.parent_goid == 0 and row.goid < row.gopc, minor
    assert table_goid_offset(None) == 0 and table_goid_offset(18) == 0 and table_goid_offset(28) == 0


def test_g_offsets_parse_the_elf_once(newest_toolchain: gofixtures.Toolchain,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """GoBinary.open parses the ELF; g_offsets reads the DWARF from that same ELFFile instead of a second one."""
    path = gofixtures.build(newest_toolchain, "capapp", "default")
    made: list[object] = []
    real_init = ELFFile.__init__

    def counting_init(self: ELFFile, *args: object, **kwargs: object) -> None:
        made.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(ELFFile, "__init__", counting_init)
    binary = GoBinary.open(path)
    offsets = g_offsets(binary)
    assert offsets is not None and offsets.source == "dwarf"
    assert len(made) == 1, f"{len(made)} ELFFile objects for one binary"
    assert binary.image.dwarf is binary.image.dwarf  # cached
    assert g_offsets(binary) == offsets and len(made) == 1
    monkeypatch.setattr(ELFFile, "__init__", real_init)
    # the pure-bytes reader (a second parse, by design) agrees with the binary's own DWARF
    assert dwarf_g_fields(path.read_bytes()) == dwarf_struct_fields(binary.image.dwarf)


def test_no_dwarf_no_fields(newest_toolchain: gofixtures.Toolchain) -> None:
    stripped = GoBinary.open(gofixtures.build(newest_toolchain, "capapp", "stripped"))
    assert stripped.image.dwarf is None
    data = stripped.image.data
    assert dwarf_g_fields(data) is None
    assert dwarf_g_fields(b"not an ELF file at all" * 4) is None
    assert dwarf_g_fields(b"") is None
    full = gofixtures.build(newest_toolchain, "capapp", "default").read_bytes()
    assert dwarf_g_fields(full[: len(full) // 2]) is None  # truncated: not an ELF image gohook reads
    assert dwarf_g_fields(full, ("goid",), "runtime.no_such_struct") is None
