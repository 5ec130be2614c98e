"""pclntab parsing over a hand-built Go 1.20 table (pure logic, no toolchain).

The real formats are proven against Go's debug/gosym in test_gosym_oracle.py;
this file pins the PC-value decoding and the error paths on bytes we control.
"""

import struct

import pytest

from gohook.errors import PclntabError
from gohook.gosym.pclntab import LineTable, Version

TEXT = 0x401000


def uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pcvalue_table(pairs: list[tuple[int, int]]) -> bytes:
    """Encode [(value, pc_delta), ...] as a PC-value table (val starts at -1)."""
    out, val = bytearray(), -1
    for value, delta in pairs:
        d = value - val
        out += uvarint((d << 1) ^ (d >> 63) if d >= 0 else ((-d - 1) << 1) | 1)
        out += uvarint(delta)
        val = value
    return bytes(out) + b"\x00"


def build_table(funcs: list[tuple[str, int, int, list[tuple[int, int]]]]) -> bytes:
    """funcs: (name, entry offset, size, line pairs). One file, no inlining."""
    names = b"".join(n.encode() + b"\x00" for n, *_ in funcs)
    cutab = struct.pack("<I", 0)
    filetab = b"/src/a.go\x00"
    pctab = bytearray(b"\x00")
    tables = []
    for _name, _e, size, lines in funcs:
        file_off = len(pctab)
        pctab += pcvalue_table([(0, size)])
        line_off = len(pctab)
        pctab += pcvalue_table(lines)
        tables.append((file_off, line_off))
    header_size = 8 + 8 * 8
    funcname_off = header_size
    cu_off = funcname_off + len(names)
    filetab_off = cu_off + len(cutab)
    pctab_off = filetab_off + len(filetab)
    pcln_off = pctab_off + len(pctab)
    n = len(funcs)
    ftab_size = (2 * n + 1) * 4
    records = b""
    ftab = b""
    name_off = 0
    for i, (name, entry, _size, _lines) in enumerate(funcs):
        ftab += struct.pack("<II", entry, ftab_size + 44 * i)
        file_off, line_off = tables[i]
        records += struct.pack("<IiiIIIIIII", entry, name_off, 0, 0, 0, file_off, line_off, 0, 0, 10)
        records += bytes([0, 0, 0, 0])
        name_off += len(name) + 1
    last = funcs[-1]
    ftab += struct.pack("<I", last[1] + last[2])
    header = struct.pack("<IBBBB", 0xFFFFFFF1, 0, 0, 1, 8)
    header += struct.pack("<8Q", n, 1, 0, funcname_off, cu_off, filetab_off, pctab_off, pcln_off)
    return header + names + cutab + filetab + bytes(pctab) + ftab + records


FUNCS = [("main.a", 0, 0x20, [(10, 0x10), (11, 0x10)]), ("github.com/x/y.B", 0x20, 0x200, [(5, 0x100), (3, 0x100)])]


def test_functions_and_lines() -> None:
    t = LineTable(build_table(FUNCS), text_start=TEXT)
    assert t.version == Version.GO120
    assert [(f.name, f.entry, f.end) for f in t.functions] == [
        ("main.a", TEXT, TEXT + 0x20),
        ("github.com/x/y.B", TEXT + 0x20, TEXT + 0x220),
    ]
    a, b = t.functions
    assert t.line_at(a, TEXT) == ("/src/a.go", 10)
    assert t.line_at(a, TEXT + 0x0F) == ("/src/a.go", 10)
    assert t.line_at(a, TEXT + 0x10) == ("/src/a.go", 11)
    assert t.line_at(b, TEXT + 0x20 + 0x100) == ("/src/a.go", 3)  # 2-byte varint pc delta, negative delta
    assert t.function_at(TEXT + 0x21) == b
    assert t.function_at(TEXT + 0x220) is None
    assert t.function_at(TEXT - 1) is None


def test_frames_use_pc_minus_one_for_return_addresses() -> None:
    t = LineTable(build_table(FUNCS), text_start=TEXT)
    assert t.frames(TEXT + 0x10)[0].line == 10  # return address: the call was before it
    assert t.frames(TEXT + 0x10, return_address=False)[0].line == 11


def test_needs_text_start() -> None:
    with pytest.raises(PclntabError, match="text start"):
        LineTable(build_table(FUNCS))


@pytest.mark.parametrize("cut", [0, 8, 15, 40, 80, 120, 200])
def test_truncation_raises_typed_error(cut: int) -> None:
    data = build_table(FUNCS)[:cut]
    with pytest.raises(PclntabError):
        t = LineTable(data, text_start=TEXT)
        for f in t.functions:
            t.line_at(f, f.entry)


def test_bad_magic() -> None:
    data = bytearray(build_table(FUNCS))
    data[0] = 0x00
    with pytest.raises(PclntabError, match="magic"):
        LineTable(bytes(data), text_start=TEXT)
