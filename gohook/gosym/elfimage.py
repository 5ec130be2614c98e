"""The ELF edge of the reader: sections, segments, a few symbols, address maps.

Everything above this module sees a Go binary through `ElfImage`: bytes in
memory plus the mapping between virtual addresses and file offsets. The
pclntab, buildinfo and moduledata parsers never touch pyelftools.

Address rule (what uprobes need)
--------------------------------
A uprobe is placed at a *file offset*. For a virtual address `va` inside the
PT_LOAD segment `(p_vaddr, p_offset, p_filesz)`:

    file_offset = va - p_vaddr + p_offset

At run time the kernel maps that segment at `p_vaddr + bias`, where the load
bias is 0 for ET_EXEC (non-PIE) and the mmap base for ET_DYN (PIE). So a PC
seen in a process is `va + bias`, and `bias = runtime_pc - static_va` for any
known pair (BPF computes it from the probe address: `ctx->ip - probe_va`).

Symbols: Go binaries have tens of thousands of symbols; we only ever need a
handful (`runtime.text`, `runtime.firstmoduledata`, `go:func.*`), so we find
their names in .strtab with bytes.find and match `st_name` in .symtab, instead
of decoding every symbol through pyelftools.

Elf64_Sym (24 bytes): st_name u32 @0, st_info u8 @4, st_other u8 @5,
st_shndx u16 @6, st_value u64 @8, st_size u64 @16.

DWARF: `ElfImage.dwarf` hands out pyelftools' DWARFInfo of the ELFFile the
image already holds (parsed once, on first use), so readers of debug info
(gohook.sites.goruntime) do not parse the file a second time.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.dwarf.dwarfinfo import DWARFInfo
from elftools.elf.elffile import ELFFile

from gohook.errors import AddressError, NotElfError

ELF_MAGIC = b"\x7fELF"
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
PF_X = 0x1
PF_W = 0x2


@dataclass(frozen=True, slots=True)
class Section:
    """One ELF section header, reduced to what the reader needs."""

    name: str
    vaddr: int
    offset: int
    size: int
    flags: int
    nobits: bool

    @property
    def writable(self) -> bool:
        return bool(self.flags & SHF_WRITE)

    @property
    def executable(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR)


@dataclass(frozen=True, slots=True)
class Segment:
    """One PT_LOAD program header."""

    vaddr: int
    offset: int
    filesz: int
    memsz: int
    flags: int


class ElfImage:
    """An ELF file held in memory, with lazy, cached views of its parts.

    Construct with `ElfImage(data)` (pure, for tests and fuzzing) or
    `ElfImage.open(path)` (reads the file once).
    """

    def __init__(self, data: bytes, path: str | None = None) -> None:
        if len(data) < 64 or data[:4] != ELF_MAGIC:
            raise NotElfError(f"{path or 'input'}: not an ELF file", 0)
        self.data = data
        self.path = path
        try:
            self._elf = ELFFile(io.BytesIO(data))
            self.elfclass: int = self._elf.elfclass
            self.little_endian: bool = self._elf.little_endian
            self.machine: str = self._elf["e_machine"]
            self.elf_type: str = self._elf["e_type"]
            self.sections: list[Section] = self._read_sections()
            self.segments: list[Segment] = self._read_segments()
        except (ELFError, struct.error, ValueError, KeyError, IndexError, OSError) as exc:
            raise NotElfError(f"{path or 'input'}: malformed ELF headers: {exc}", 0) from exc
        self._check_complete(path or "input")

    def _check_complete(self, where: str) -> None:
        """Refuse truncated files: every header and loaded byte must lie inside the file."""
        size = len(self.data)
        shend = self._elf["e_shoff"] + self._elf["e_shnum"] * self._elf["e_shentsize"]
        if shend > size:
            raise NotElfError(f"{where}: truncated: section headers end at {shend:#x}, file is {size:#x} bytes", size)
        for seg in self.segments:
            if seg.offset + seg.filesz > size:
                raise NotElfError(f"{where}: truncated: a PT_LOAD segment ends at {seg.offset + seg.filesz:#x}, "
                                  f"file is {size:#x} bytes", size)
        for sec in self.sections:
            if not sec.nobits and sec.size and sec.offset + sec.size > size:
                raise NotElfError(f"{where}: truncated: section {sec.name} ends at {sec.offset + sec.size:#x}, "
                                  f"file is {size:#x} bytes", size)

    @classmethod
    def open(cls, path: str | Path) -> ElfImage:
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise NotElfError(f"{p}: cannot read: {exc.strerror or exc}") from exc
        return cls(data, str(p))

    # -- headers ---------------------------------------------------------

    def _read_sections(self) -> list[Section]:
        out = []
        for i in range(self._elf.num_sections()):
            hdr = self._elf._get_section_header(i)
            try:
                name = self._elf._get_section_name(hdr)
            except (ELFError, struct.error, UnicodeDecodeError, KeyError, IndexError):
                name = ""
            out.append(
                Section(
                    name=name,
                    vaddr=hdr["sh_addr"],
                    offset=hdr["sh_offset"],
                    size=hdr["sh_size"],
                    flags=hdr["sh_flags"],
                    nobits=hdr["sh_type"] == "SHT_NOBITS",
                )
            )
        return out

    def _read_segments(self) -> list[Segment]:
        out = []
        for i in range(self._elf.num_segments()):
            hdr = self._elf._get_segment_header(i)
            if hdr["p_type"] == "PT_LOAD":
                out.append(Segment(hdr["p_vaddr"], hdr["p_offset"], hdr["p_filesz"], hdr["p_memsz"], hdr["p_flags"]))
        return out

    @property
    def ptr_size(self) -> int:
        return 8 if self.elfclass == 64 else 4

    @property
    def is_pie(self) -> bool:
        """ET_DYN executables are position independent: their load bias is not 0."""
        return self.elf_type == "ET_DYN"

    def section(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def section_bytes(self, sec: Section) -> bytes:
        """The section's bytes (a copy; b"" for SHT_NOBITS)."""
        return bytes(self.section_view(sec))

    def section_view(self, sec: Section) -> memoryview:
        """The section's bytes as a view of the file (no copy; empty for SHT_NOBITS)."""
        if sec.nobits:
            return memoryview(b"")
        end = sec.offset + sec.size
        if sec.offset > len(self.data) or end > len(self.data):
            raise AddressError(f"section {sec.name} [{sec.offset:#x}, {end:#x}) lies outside the file")
        return memoryview(self.data)[sec.offset : end]

    @cached_property
    def needed(self) -> list[str]:
        """DT_NEEDED shared libraries (a dynamically linked binary, e.g. cgo)."""
        dyn = self._elf.get_section_by_name(".dynamic")
        if dyn is None:
            return []
        try:
            return [t.needed for t in dyn.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
        except (ELFError, struct.error, UnicodeDecodeError):
            return []

    @cached_property
    def dwarf(self) -> DWARFInfo | None:
        """The DWARF debug info of the ELFFile this image holds (read once, on first use); None without a
        .debug_info (.zdebug_info) section, e.g. a binary built with -ldflags=-w, or when it is unreadable."""
        if self.section(".debug_info") is None and self.section(".zdebug_info") is None:
            return None
        try:
            if not self._elf.has_dwarf_info():
                return None
            return self._elf.get_dwarf_info()
        except (ELFError, ValueError, KeyError, IndexError, UnicodeDecodeError, struct.error):
            return None

    # -- addresses ---------------------------------------------------------

    def vaddr_to_offset(self, vaddr: int) -> int:
        """File offset of a virtual address; raises AddressError when unmapped."""
        for seg in self.segments:
            if seg.vaddr <= vaddr < seg.vaddr + seg.filesz:
                return vaddr - seg.vaddr + seg.offset
        raise AddressError(f"address {vaddr:#x} is in no file-backed PT_LOAD segment")

    def offset_to_vaddr(self, offset: int) -> int:
        for seg in self.segments:
            if seg.offset <= offset < seg.offset + seg.filesz:
                return offset - seg.offset + seg.vaddr
        raise AddressError(f"file offset {offset:#x} is in no PT_LOAD segment")

    def read(self, vaddr: int, size: int) -> bytes:
        """Bytes at a virtual address; raises AddressError on a short read."""
        off = self.vaddr_to_offset(vaddr)
        for seg in self.segments:
            if seg.vaddr <= vaddr < seg.vaddr + seg.filesz:
                if vaddr + size > seg.vaddr + seg.filesz or off + size > len(self.data):
                    raise AddressError(f"read of {size} bytes at {vaddr:#x} runs past its segment")
                return self.data[off : off + size]
        raise AddressError(f"address {vaddr:#x} is unmapped")  # pragma: no cover - vaddr_to_offset raised

    def read_loaded(self, vaddr: int, size: int) -> bytes:
        """Bytes at a virtual address as the loader maps them: the part of a
        PT_LOAD segment past its file bytes (.bss, .noptrbss) reads as zeros.
        Raises AddressError outside every segment's memory image."""
        for seg in self.segments:
            if seg.vaddr <= vaddr and vaddr + size <= seg.vaddr + seg.memsz:
                in_file = max(0, min(size, seg.vaddr + seg.filesz - vaddr))
                return (self.read(vaddr, in_file) if in_file else b"") + bytes(size - in_file)
        raise AddressError(f"read of {size} bytes at {vaddr:#x} lies outside every PT_LOAD segment")

    def section_at(self, vaddr: int) -> Section | None:
        for s in self.sections:
            if s.vaddr and s.vaddr <= vaddr < s.vaddr + s.size:
                return s
        return None

    # -- symbols -----------------------------------------------------------

    @cached_property
    def has_symtab(self) -> bool:
        return self.section(".symtab") is not None

    def symbol(self, name: str) -> int | None:
        """Value of a .symtab symbol by exact name, or None (also when stripped)."""
        return self._symbols_named((name,)).get(name)

    def symbols(self, *names: str) -> dict[str, int]:
        return self._symbols_named(names)

    def _symbols_named(self, names: tuple[str, ...]) -> dict[str, int]:
        symtab = self.section(".symtab")
        strtab = self.section(".strtab")
        if symtab is None or strtab is None or self.elfclass != 64:
            return {}
        try:
            strs = self.section_bytes(strtab)
            syms = self.section_bytes(symtab)
        except AddressError:
            return {}
        wanted: dict[int, str] = {}
        for name in names:
            needle = b"\x00" + name.encode() + b"\x00"
            pos = strs.find(needle)
            while pos >= 0:
                wanted[pos + 1] = name
                pos = strs.find(needle, pos + 1)
        if not wanted:
            return {}
        found: dict[str, int] = {}
        endian = "<" if self.little_endian else ">"
        fmt = struct.Struct(endian + "IBBHQQ")
        usable = len(syms) - len(syms) % fmt.size
        for st_name, _info, _other, _shndx, value, _size in fmt.iter_unpack(syms[:usable]):
            name = wanted.get(st_name)
            if name is not None and name not in found:
                found[name] = value
        return found
