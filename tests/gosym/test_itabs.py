"""gohook.gosym.itabs: the itab of (syscall.Errno, error) and runtime.staticuint64s, found without symbols.

Oracles, none of them gohook:

- the ELF symbol table (read with pyelftools): `go:itab.syscall.Errno,error`
  (`go.itab.` in Go 1.19) and `runtime.staticuint64s`. Go 1.27's internal
  linker writes no itab symbols any more (its external-linked cgo builds
  still carry them);
- DWARF: the `syscall.Errno` and `error` type entries carry
  DW_AT_go_runtime_type, the offset of their runtime type descriptor from
  `runtime.types`: the itab's two type pointers must be those (every build
  with DWARF, Go 1.27 included);
- `strip` (GNU binutils): a copy of an unstripped build without .symtab,
  every address unchanged, must give the symbols' answers;
- the Go runtime itself: testdata/go/errnoval prints the two words of an
  `error` holding syscall.EPERM, made three ways (a constant conversion, a
  run-time conversion, a type assertion); gohook's itab plus the load bias
  must be the runtime's, and the run-time conversion's data word must be
  gohook's &staticuint64s[1].

Go's own `-ldflags=-s -w` builds are not address-identical to the default
build of the same source: the build info records the flags, the longer
string grows .rodata (0x20 bytes here) and moves whatever follows it
(staticuint64s by 0x20 in capapp on 1.24 and 1.27, the itab by 0x20 on
1.27). So those builds are checked against the runtime (errnoval) and, for
capapp, against the default build's itab list by content, not by address.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import struct
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import gofixtures
import pytest
from elftools.elf.elffile import ELFFile
from gofixtures import Toolchain
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gohook.errors import AddressError, BinaryError, GohookError
from gohook.gosym import ElfImage, GoBinary
from gohook.gosym import itabs as it

ERRNO, ERROR = "syscall.Errno", "error"
ITAB_SYMBOLS = ("go:itab.syscall.Errno,error", "go.itab.syscall.Errno,error")
DW_AT_GO_RUNTIME_TYPE = 0x2904
SYMBOL_MODES = ("default", "pie", "cgo")
def build_errnoval(toolchain: Toolchain, mode: str) -> Path:
    """The testdata fixture printing the runtime's own words."""
    return gofixtures.build(toolchain, "errnoval", mode)


@cache
def elf_symbols(path: Path) -> dict[str, int]:
    """Every .symtab symbol's value, read with pyelftools (not gohook)."""
    with path.open("rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        return {} if symtab is None else {s.name: s["st_value"] for s in symtab.iter_symbols() if s.name}


def itab_symbol(path: Path) -> int | None:
    syms = elf_symbols(path)
    return next((syms[n] for n in ITAB_SYMBOLS if n in syms), None)


@cache
def dwarf_runtime_types(path: Path) -> dict[str, int]:
    """DW_AT_go_runtime_type + runtime.types of the `syscall.Errno` and `error` type entries."""
    types = elf_symbols(path)["runtime.types"]
    found: dict[str, int] = {}
    with path.open("rb") as f:
        dwarf = ELFFile(f).get_dwarf_info()
        for cu in dwarf.iter_CUs():
            for die in cu.iter_DIEs():
                name = die.attributes.get("DW_AT_name")
                rtype = die.attributes.get(DW_AT_GO_RUNTIME_TYPE)
                if name is not None and rtype is not None and name.value in (b"syscall.Errno", b"error"):
                    found.setdefault(name.value.decode(), types + rtype.value)
            if len(found) == 2:
                return found
    raise AssertionError(f"{path}: no DWARF type entries with DW_AT_go_runtime_type for syscall.Errno and error")


def errno_itab(b: GoBinary) -> it.Itab:
    found = it.find_itab(b.itabs, ERRNO, ERROR)
    assert found is not None, f"{b.path}: no ({ERRNO}, {ERROR}) itab"
    return found


def gnu_strip(src: Path, dest: Path) -> Path:
    strip = shutil.which("strip")
    if strip is None:
        gofixtures.loud_skip("GNU strip (binutils) is not installed")
    subprocess.run([str(strip), "-o", str(dest), str(src)], check=True, capture_output=True, timeout=120)
    return dest


# --- symbols, DWARF and strip as oracles ---------------------------------------------------


@pytest.mark.parametrize("mode", SYMBOL_MODES)
def test_errno_itab_is_the_symbol(toolchain: Toolchain, mode: str) -> None:
    path = gofixtures.build(toolchain, "capapp", mode)
    b = GoBinary.open(path)
    found = b.itab_address(ERRNO, ERROR)
    assert found is not None
    symbol = itab_symbol(path)
    if symbol is None:
        # Go 1.27's internal linker stopped writing go:itab.* symbols; nothing older may lack one.
        assert toolchain.release >= (1, 27) and mode != "cgo", f"{path}: no itab symbol"
        assert not any(n.startswith(("go:itab.", "go.itab.")) for n in elf_symbols(path))
    else:
        assert found == symbol
    assert b.module_types.layout is (it.Layout.TABLE_127 if toolchain.release >= (1, 27) else
                                     it.Layout.LINKS_120 if toolchain.release >= (1, 20) else it.Layout.LINKS_118)


@pytest.mark.parametrize("mode", SYMBOL_MODES)
def test_errno_itab_types_are_dwarfs(toolchain: Toolchain, mode: str) -> None:
    path = gofixtures.build(toolchain, "capapp", mode)
    itab = errno_itab(GoBinary.open(path))
    dwarf = dwarf_runtime_types(path)
    assert (itab.concrete_type, itab.interface_type) == (dwarf["syscall.Errno"], dwarf["error"])


@pytest.mark.parametrize("mode", ("default", "pie", "stripped", "cgo"))
def test_errno_itab_methods(toolchain: Toolchain, mode: str) -> None:
    """error has one method: the itab's fun[0] is Errno's Error, through the pointer-receiver wrapper
    (the interface's data word points to the value), by the pclntab."""
    b = GoBinary.open(gofixtures.build(toolchain, "capapp", mode))
    itab = errno_itab(b)
    assert len(itab.fun) == 1 and itab.size == 32
    f = b.function_at(itab.fun[0])
    assert f is not None and f.entry == itab.fun[0] and f.name == "syscall.(*Errno).Error"


@pytest.mark.parametrize("mode", SYMBOL_MODES)
def test_every_itab_symbol_is_listed(toolchain: Toolchain, mode: str) -> None:
    """Where the linker names itabs, moduledata lists exactly those: static and dynamic ones alike."""
    path = gofixtures.build(toolchain, "capapp", mode)
    listed = {t.address for t in GoBinary.open(path).itabs}
    named = {v for n, v in elf_symbols(path).items() if n.startswith(("go:itab.", "go.itab."))}
    if not named:
        assert toolchain.release >= (1, 27) and mode != "cgo"
        assert len(listed) > 20
    else:
        assert listed == named


@pytest.mark.parametrize("mode", SYMBOL_MODES)
def test_staticuint64s_is_the_symbol(toolchain: Toolchain, mode: str) -> None:
    path = gofixtures.build(toolchain, "capapp", mode)
    b = GoBinary.open(path)
    symbol = elf_symbols(path)["runtime.staticuint64s"]
    assert b.static_uint64s == symbol
    assert b.static_uint64_address(1) == symbol + 8
    assert b.static_uint64_address(255) == symbol + 8 * 255
    assert b.static_uint64_address(256) is None and b.static_uint64_address(-1) is None
    assert struct.unpack("<Q", b.image.read(symbol + 8, 8))[0] == 1


@pytest.mark.parametrize("mode", ("default", "pie"))
def test_gnu_stripped_copy(toolchain: Toolchain, mode: str, tmp_path: Path) -> None:
    """Symbols gone, addresses kept: the answers without symbols are the unstripped build's."""
    path = gofixtures.build(toolchain, "capapp", mode)
    stripped = GoBinary.open(gnu_strip(path, tmp_path / "stripped"))
    assert stripped.is_stripped and stripped.image.symbol("runtime.firstmoduledata") is None
    unstripped = GoBinary.open(path)
    assert stripped.itab_address(ERRNO, ERROR) == (itab_symbol(path) or unstripped.itab_address(ERRNO, ERROR))
    assert stripped.static_uint64s == elf_symbols(path)["runtime.staticuint64s"]
    assert [(t.address, t.concrete, t.interface) for t in stripped.itabs] == \
        [(t.address, t.concrete, t.interface) for t in unstripped.itabs]


def test_go_stripped_build(toolchain: Toolchain) -> None:
    """-ldflags=-s -w: the same itabs as the default build, in the same order, by content (addresses may move)."""
    stripped = GoBinary.open(gofixtures.build(toolchain, "capapp", "stripped"))
    default = GoBinary.open(gofixtures.build(toolchain, "capapp", "default"))
    assert stripped.is_stripped

    def content(b: GoBinary) -> list[tuple[str, str, int, tuple[str | None, ...]]]:
        return [(t.concrete, t.interface, t.hash, tuple(getattr(b.function_at(pc), "name", None) for pc in t.fun))
                for t in b.itabs]

    assert content(stripped) == content(default)
    assert stripped.image.read(stripped.static_uint64s, 2048) == it.STATIC_UINT64S


# --- the runtime as oracle -------------------------------------------------------------------


@cache
def run_errnoval(toolchain: Toolchain, mode: str) -> tuple[Path, dict[str, Any]]:
    path = build_errnoval(toolchain, mode)
    proc = gofixtures.run_fixture(path)
    assert proc.returncode == 0, proc.stderr
    return path, json.loads(proc.stdout)


@pytest.mark.parametrize("mode", ("default", "pie", "stripped"))
def test_runtime_builds_the_same_error(toolchain: Toolchain, mode: str) -> None:
    path, doc = run_errnoval(toolchain, mode)
    b = GoBinary.open(path)
    bias = doc["marker"] - b.functions_by_name["main.marker"].entry
    assert (bias != 0) == (mode == "pie")
    itab = b.itab_address(ERRNO, ERROR)
    assert itab is not None
    for how in ("constant", "dynamic", "asserted"):
        assert doc[how]["itab"] == itab + bias, how
        assert doc[how]["value"] == 1 and doc[how]["text"] == "operation not permitted"
    # Run-time conversions of values below 256 point into staticuint64s (runtime.convT64)...
    assert doc["dynamic"]["data"] == b.static_uint64_address(1) + bias
    assert doc["asserted"]["data"] == b.static_uint64_address(1) + bias
    # ... a constant conversion points at a read-only static copy of the constant instead.
    sec = b.image.section_at(doc["constant"]["data"] - bias)
    assert sec is not None and not sec.writable


def test_errnoval_symbols_agree(toolchain: Toolchain) -> None:
    """The live oracle's own binary also agrees with its symbols (or, on Go 1.27, has none for itabs)."""
    path, _doc = run_errnoval(toolchain, "default")
    b = GoBinary.open(path)
    assert b.static_uint64s == elf_symbols(path)["runtime.staticuint64s"]
    symbol = itab_symbol(path)
    assert symbol is None or b.itab_address(ERRNO, ERROR) == symbol


# --- malformed input: typed errors, never a crash ----------------------------------------------


class FakeMemory:
    """Sparse memory for synthetic modules: read(vaddr, size) like ElfImage.read."""

    def __init__(self) -> None:
        self.regions: dict[int, bytearray] = {}

    def put(self, vaddr: int, data: bytes) -> None:
        for base, buf in self.regions.items():
            if base <= vaddr <= base + len(buf):
                end = vaddr - base + len(data)
                if end > len(buf):
                    buf.extend(bytes(end - len(buf)))
                buf[vaddr - base : end] = data
                return
        self.regions[vaddr] = bytearray(data)

    def read(self, vaddr: int, size: int) -> bytes:
        for base, buf in self.regions.items():
            if base <= vaddr and vaddr + size <= base + len(buf):
                return bytes(buf[vaddr - base : vaddr - base + size])
        raise AddressError(f"{vaddr:#x}+{size} unmapped")


TYPES = 0x10000


def name(text: str, extra_star: bool = False) -> bytes:
    raw = (("*" + text) if extra_star else text).encode()
    n, varint = len(raw), bytearray()
    while True:
        varint.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return b"\x00" + bytes(varint) + raw


def rtype(hash_: int, kind: int, str_off: int, tflag: int = 0) -> bytes:
    return struct.pack("<QQIBBBBQQii", 8, 0, hash_, tflag, 8, 8, kind, 0, 0, str_off, 0)


class Module:
    """A synthetic types region: names, types, interface types and itabs at chosen addresses."""

    def __init__(self) -> None:
        self.mem = FakeMemory()
        self.mem.put(TYPES, bytes(0x4000))
        self.next = TYPES + 8

    def alloc(self, data: bytes) -> int:
        addr = self.next
        self.mem.put(addr, data)
        self.next = (addr + len(data) + 7) & ~7
        return addr

    def type(self, text: str, hash_: int, kind: int = 12) -> int:
        off = self.alloc(name(text, extra_star=True)) - TYPES
        return self.alloc(rtype(hash_, kind, off, tflag=it.TFLAG_EXTRA_STAR))

    def interface(self, text: str, methods: int) -> int:
        off = self.alloc(name(text)) - TYPES
        return self.alloc(rtype(0x1111, it.KIND_INTERFACE, off) + struct.pack("<QQQQ", 0, 0, methods, methods))

    def itab(self, inter: int, typ: int, hash_: int, fun: list[int]) -> int:
        return self.alloc(struct.pack("<QQII", inter, typ, hash_, 0) + struct.pack(f"<{len(fun)}Q", *fun))

    def links(self, itabs: list[int], extra_len: int = 0) -> it.ModuleTypes:
        ptr = 0x90000
        self.mem.put(ptr, struct.pack(f"<{len(itabs)}Q", *itabs))
        return it.ModuleTypes(it.Layout.LINKS_120, TYPES, TYPES + 0x4000, (ptr, len(itabs) + extra_len), None)

    def table(self, start: int, size: int) -> it.ModuleTypes:
        return it.ModuleTypes(it.Layout.TABLE_127, TYPES, TYPES + 0x4000, None, (start, size))


def two_itabs(m: Module) -> tuple[int, int]:
    err = m.interface("error", 1)
    rw = m.interface("io.ReadWriter", 2)
    errno = m.type("syscall.Errno", 0xABCD)
    first = m.itab(err, errno, 0xABCD, [0x401000])
    second = m.itab(rw, errno, 0xABCD, [0x401100, 0x401200])
    return first, second


def test_synthetic_links_and_table() -> None:
    m = Module()
    first, second = two_itabs(m)
    by_links = it.read_itabs(m.mem.read, m.links([first, second]))
    by_table = it.read_itabs(m.mem.read, m.table(first, second + 40 - first))
    assert by_links == by_table
    found = it.find_itab(by_links, "syscall.Errno", "error")
    assert found is not None and found.address == first and found.fun == (0x401000,)
    assert it.find_itab(by_links, "syscall.Errno", "io.ReadWriter").fun == (0x401100, 0x401200)  # type: ignore[union-attr]
    assert it.find_itab(by_links, "syscall.Errno", "fmt.Stringer") is None
    with pytest.raises(it.ItabError, match="ambiguous"):
        it.find_itab(by_links + by_links, "syscall.Errno", "error")


def test_long_names_use_multi_byte_varints() -> None:
    m = Module()
    long = "example.com/" + "x" * 300 + ".T"
    typ = m.type(long, 7)
    itab = m.itab(m.interface("error", 1), typ, 7, [1])
    assert it.read_itabs(m.mem.read, m.links([itab]))[0].concrete == long


def broken(case: str) -> tuple[FakeMemory, it.ModuleTypes]:
    """One malformed module per case; reading its itabs must raise ItabError."""
    m = Module()
    first, second = two_itabs(m)
    mt = m.links([first, second])
    if case == "links unmapped":
        mt = it.ModuleTypes(mt.layout, TYPES, TYPES + 0x4000, (0xDEAD0000, 2), None)
    elif case == "links truncated":
        mt = m.links([first, second], extra_len=5)
    elif case == "itab pointer garbage":
        mt = m.links([first, 0xFFFF_FFFF_FFFF_FFF8])
    elif case == "itab misaligned":
        mt = m.links([first + 4])
    elif case == "hash mismatch":
        m.mem.put(first + it.ITAB_HASH, struct.pack("<I", 0xBEEF))
    elif case == "interface is no interface":
        m.mem.put(first, struct.pack("<Q", m.type("int", 1)))
    elif case == "type outside types region":
        m.mem.put(first + it.ITAB_TYPE, struct.pack("<Q", TYPES + 0x4000 - 8))
    elif case == "name offset negative":
        typ = m.type("x", 1)
        m.mem.put(typ + it.TYPE_STR, struct.pack("<i", -64))
        mt = m.links([m.itab(m.interface("error", 1), typ, 1, [1])])
    elif case == "name runs past types region":
        m.mem.put(TYPES + 0x4000 - 3, b"\x00\x7f\x41")
        typ = m.alloc(rtype(1, 12, 0x4000 - 3))
        mt = m.links([m.itab(m.interface("error", 1), typ, 1, [1])])
    elif case == "varint too long":
        m.mem.put(TYPES + 0x3000, b"\x00" + b"\xff" * 8)
        typ = m.alloc(rtype(1, 12, 0x3000))
        mt = m.links([m.itab(m.interface("error", 1), typ, 1, [1])])
    elif case == "name not utf-8":
        off = m.alloc(b"\x00\x02\xff\xfe") - TYPES
        typ = m.alloc(rtype(1, 12, off))
        mt = m.links([m.itab(m.interface("error", 1), typ, 1, [1])])
    elif case == "extra star without star":
        off = m.alloc(name("T")) - TYPES
        typ = m.alloc(rtype(1, 12, off, tflag=it.TFLAG_EXTRA_STAR))
        mt = m.links([m.itab(m.interface("error", 1), typ, 1, [1])])
    elif case == "interface without methods":
        mt = m.links([m.itab(m.interface("any", 0), m.type("T", 1), 1, [1])])
    elif case == "methods len above cap":
        inter = m.interface("error", 1)
        m.mem.put(inter + it.INTERFACETYPE_METHODS + 8, struct.pack("<QQ", 9, 1))
        mt = m.links([m.itab(inter, m.type("T", 1), 1, [1])])
    elif case == "table overshoots":
        mt = m.table(first, second + 40 - first - 8)
    elif case == "table walks out of types":
        mt = m.table(TYPES + 0x4000 - 16, 16)
    else:  # pragma: no cover - a typo in the parametrization
        raise AssertionError(case)
    return m.mem, mt


BROKEN = ("links unmapped", "links truncated", "itab pointer garbage", "itab misaligned", "hash mismatch",
          "interface is no interface", "type outside types region", "name offset negative",
          "name runs past types region", "varint too long", "name not utf-8", "extra star without star",
          "interface without methods", "methods len above cap", "table overshoots", "table walks out of types")


@pytest.mark.parametrize("case", BROKEN)
def test_synthetic_malformed(case: str) -> None:
    mem, mt = broken(case)
    with pytest.raises(it.ItabError) as info:
        it.read_itabs(mem.read, mt)
    assert isinstance(info.value, BinaryError)


def test_parse_module_types() -> None:
    raw = bytearray(it.MODULEDATA_PREFIX)
    struct.pack_into("<QQ", raw, 296, 0x1000, 0x9000)
    struct.pack_into("<3Q", raw, 376, 0x5000, 3, 3)
    mt = it.parse_module_types(bytes(raw), 0x8000, it.Layout.LINKS_120)
    assert mt == it.ModuleTypes(it.Layout.LINKS_120, 0x1000, 0x9000, (0x5000, 3), None)
    with pytest.raises(it.ItabError, match="truncated"):
        it.parse_module_types(bytes(raw[:380]), 0x8000, it.Layout.LINKS_120)
    struct.pack_into("<3Q", raw, 376, 0x5000, 4, 3)
    with pytest.raises(it.ItabError, match="implausible itablinks"):
        it.parse_module_types(bytes(raw), 0x8000, it.Layout.LINKS_120)
    struct.pack_into("<QQ", raw, 296, 0x9000, 0x1000)
    with pytest.raises(it.ItabError, match="bad types range"):
        it.parse_module_types(bytes(raw), 0x8000, it.Layout.LINKS_120)
    table = bytearray(it.MODULEDATA_PREFIX)
    struct.pack_into("<QQQQQ", table, 296, 0x1000, 0x100, 0x9000, 0x7000, 0x2000)
    with pytest.raises(it.ItabError, match="outside the types region"):
        it.parse_module_types(bytes(table), 0x8000, it.Layout.TABLE_127)


def test_layout_for() -> None:
    raw = bytearray(it.MODULEDATA_PREFIX)
    assert it.layout_for(19, bytes(raw), None) is it.Layout.LINKS_118
    assert it.layout_for(24, bytes(raw), None) is it.Layout.LINKS_120
    assert it.layout_for(27, bytes(raw), None) is it.Layout.TABLE_127
    with pytest.raises(it.ItabError, match="not supported"):
        it.layout_for(16, bytes(raw), None)
    struct.pack_into("<Q", raw, 344, 0x555000)
    assert it.layout_for(None, bytes(raw), 0x555000) is it.Layout.TABLE_127
    with pytest.raises(it.ItabError, match="cannot tell"):
        it.layout_for(None, bytes(raw), 0x666000)


def test_find_static_uint64s() -> None:
    table = it.STATIC_UINT64S
    assert it.find_static_uint64s([(0x1000, b"\x00" * 8 + table)]) == [0x1008]
    assert it.find_static_uint64s([(0x1000, b"\x00" * 4 + table)]) == []  # misaligned: not the runtime's
    assert it.find_static_uint64s([(0x1000, table[:-1]), (0x9000, table + table)]) == [0x9000, 0x9800]


# --- real binaries, damaged -----------------------------------------------------------------------


@cache
def real(toolchain: Toolchain) -> tuple[bytes, GoBinary]:
    data = gofixtures.build(toolchain, "capapp", "default").read_bytes()
    return data, GoBinary(ElfImage(data, "capapp"))


def patched(data: bytes, b: GoBinary, edits: dict[int, bytes]) -> GoBinary:
    """A fresh GoBinary over data with bytes at virtual addresses replaced."""
    buf = bytearray(data)
    for vaddr, new in edits.items():
        off = b.vaddr_to_offset(vaddr)
        buf[off : off + len(new)] = new
    return GoBinary(ElfImage(bytes(buf), "patched"))


def list_region(b: GoBinary) -> tuple[int, int]:
    """(address, size) of the itablinks array or the Go 1.27 itab table."""
    mt = b.module_types
    if mt.itablinks is not None:
        return mt.itablinks[0], 8 * mt.itablinks[1]
    assert mt.itab_table is not None
    return mt.itab_table


def moduledata_field(b: GoBinary, field: str, delta: int = 0) -> int:
    off = getattr(it.MODULEDATA_OFFSETS[b.module_types.layout], field)
    assert off is not None
    return b.moduledata.address + off + delta  # type: ignore[union-attr]


def damage_cases(b: GoBinary) -> dict[str, dict[int, bytes]]:
    start, size = list_region(b)
    itab = errno_itab(b)
    cases = {
        "list garbled": {start: b"\xa5" * min(size, 256)},
        "errno itab garbled": {itab.address: b"\x5a" * 32},
        "errno itab type pointer": {itab.address + 8: struct.pack("<Q", itab.interface_type)},
    }
    if b.module_types.itablinks is not None:
        cases["itablinks len past cap"] = {moduledata_field(b, "itablinks", 8): struct.pack("<Q", 1 << 40)}
        cases["itablinks pointer unmapped"] = {moduledata_field(b, "itablinks"): struct.pack("<Q", 0xDEAD0000)}
        cases["itablinks truncated"] = {moduledata_field(b, "itablinks", 8): struct.pack("<QQ", 1 << 19, 1 << 19)}
    else:
        cases["itabsize short"] = {moduledata_field(b, "itabsize"): struct.pack("<Q", size - 8)}
        cases["itaboffset garbage"] = {moduledata_field(b, "itaboffset"): struct.pack("<Q", 0x7FFF_FFFF_FFFF)}
        # start the walk 8 bytes into the first itab (and end at the real end): it reads a type as an itab
        shifted = struct.pack("<QQ", start - b.module_types.types + 8, size - 8)
        cases["itab table shifted"] = {moduledata_field(b, "itaboffset"): shifted}
    return cases


def test_damaged_real_binary(toolchain: Toolchain) -> None:
    data, b = real(toolchain)
    cases = damage_cases(b)
    for case, edits in cases.items():
        try:
            patched(data, b, edits).itab_address(ERRNO, ERROR)
        except it.ItabError:
            continue
        pytest.fail(f"{toolchain}, {case}: no ItabError")
    assert len(cases) == 6


def test_staticuint64s_missing_or_doubled(toolchain: Toolchain, tmp_path: Path) -> None:
    data, b = real(toolchain)
    table = b.static_uint64s
    with pytest.raises(it.StaticWordError, match="no runtime.staticuint64s"):
        patched(data, b, {table + 8: struct.pack("<Q", 7)}).static_uint64_address(1)
    # A second copy elsewhere in read-only data: the symbol decides; without symbols, refuse to guess.
    rodata = b.image.section(".rodata")
    assert rodata is not None
    spot = next(a for a in range(rodata.vaddr + 0x100 & ~7, rodata.vaddr + rodata.size - 2048, 2048)
                if not (a <= table < a + 2048 or table <= a < table + 2048))
    doubled = patched(data, b, {spot: it.STATIC_UINT64S})
    assert doubled.static_uint64s == table
    path = tmp_path / "doubled"
    path.write_bytes(doubled.image.data)
    with pytest.raises(it.StaticWordError, match="2 copies"):
        GoBinary.open(gnu_strip(path, tmp_path / "doubled-stripped")).static_uint64_address(1)


FUZZ_TOOLCHAINS = ("1.24", "1.27")  # one itablinks release, one itab-table release


@pytest.mark.parametrize("prefix", FUZZ_TOOLCHAINS)
def test_fuzz_itab_list(prefix: str) -> None:
    """Random bytes over the itab list and the itabs it points to: an answer or an ItabError, nothing else."""
    data, b = real(gofixtures.live_toolchain(prefix))
    start, size = list_region(b)
    itab = errno_itab(b)
    targets = [(start, size), (itab.address, itab.size), (b.moduledata.address + 280, 64)]  # type: ignore[union-attr]
    run_fuzz(lambda edits: patched(data, b, edits), targets)


def run_fuzz(make: Callable[[dict[int, bytes]], GoBinary], targets: list[tuple[int, int]]) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(st.data())
    def fuzz(draw: st.DataObject) -> None:
        base, size = draw.draw(st.sampled_from(targets))
        edits = draw.draw(st.dictionaries(st.integers(0, size - 1), st.binary(min_size=1, max_size=8),
                                          min_size=1, max_size=8))
        try:
            damaged = make({base + off: value[: max(1, size - off)] for off, value in edits.items()})
        except GohookError:
            return  # the damage broke the binary before the itabs: a typed error is fine
        with contextlib.suppress(it.ItabError):
            found = damaged.itab_address(ERRNO, ERROR)
            assert found is None or isinstance(found, int)
        with contextlib.suppress(GohookError):
            damaged.static_uint64_address(1)

    fuzz()
