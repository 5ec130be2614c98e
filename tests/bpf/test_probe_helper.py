"""The byte-layout table in gohook.bpf.probe_helper's docstring describes the bytes probe_helper() builds.

pyelftools (not the module's own struct packing) reads the helper: the table's
rows must tile the whole file, and the rows naming the ELF header, the
program header, the code, the symbol and string tables and the section
headers must sit where the ELF file says they are.
"""

from __future__ import annotations

import io
import re

from elftools.elf.elffile import ELFFile

from gohook.bpf import probe_helper as module
from gohook.bpf.probe_helper import HELPER_BASE, probe_helper

ROW = re.compile(r"^\| (0x[0-9a-f]+) \| (\d+) \| (.*) \|$", re.M)


def _rows() -> list[tuple[int, int, str]]:
    assert module.__doc__
    return [(int(off, 16), int(size), what) for off, size, what in ROW.findall(module.__doc__)]


def _row(prefix: str) -> tuple[int, int]:
    [(off, size)] = [(off, size) for off, size, what in _rows() if what.startswith(prefix)]
    return off, size


def test_rows_tile_the_whole_file() -> None:
    helper = probe_helper()
    rows = _rows()
    assert rows and rows[0][0] == 0
    for (off, size, what), (nxt, _, _) in zip(rows, rows[1:], strict=False):
        assert off + size == nxt, f"row {what!r} ends at {off + size:#x}, the next starts at {nxt:#x}"
    assert rows[-1][0] + rows[-1][1] == len(helper.data) == 640
    assert f"Total {len(helper.data):#x} = {len(helper.data)} bytes." in (module.__doc__ or "")


def test_rows_are_where_the_elf_file_says() -> None:
    helper = probe_helper()
    elf = ELFFile(io.BytesIO(helper.data))
    assert _row("ELF header") == (0, elf["e_ehsize"])
    assert _row("program header") == (elf["e_phoff"], elf["e_phentsize"] * elf["e_phnum"])
    assert _row("section headers") == (elf["e_shoff"], elf["e_shentsize"] * elf["e_shnum"])
    [load] = list(elf.iter_segments())
    assert (load["p_offset"], load["p_vaddr"]) == (0, HELPER_BASE)
    text = elf.get_section_by_name(".text")
    start, _ = _row("`_start`")
    msg, msg_size = _row("msg")
    assert (text["sh_offset"], text["sh_offset"] + text["sh_size"]) == (start, msg + msg_size) == (
        elf["e_entry"] - HELPER_BASE, load["p_filesz"])
    for name in (".symtab", ".strtab", ".shstrtab"):
        section = elf.get_section_by_name(name)
        assert _row(name) == (section["sh_offset"], section["sh_size"]), name
    symbols = {s.name: s["st_value"] - HELPER_BASE for s in elf.get_section_by_name(".symtab").iter_symbols()}
    assert _row("`doctor_target`")[0] == symbols["doctor_target"] == helper.target_offset
    assert _row("`_start`")[0] == symbols["_start"]
    call, call_size = _row("call doctor_target")
    assert call + call_size == _row("return site")[0] == helper.return_address - HELPER_BASE
