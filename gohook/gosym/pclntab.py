"""The Go function table (pclntab): a pure parser over bytes.

`LineTable(data, text_start=..., gofunc=..., memory=...)` reads the table once
it is handed the bytes of the pclntab; nothing here opens files. The format
version is decided once, from the magic, in `_parse_header`; every later
difference branches on `self.version`.

Header (all versions): magic u32 @0, 0 u8 @4, 0 u8 @5, PC quantum u8 @6,
pointer size u8 @7. Then pointer-sized words, word k at 8 + k*ptrsize:

    word  Go 1.16-1.17    Go 1.18+
    0     nfunc           nfunc
    1     nfiles          nfiles
    2     funcnameOffset  textStart (0 since Go 1.26: never used here)
    3     cuOffset        funcnameOffset
    4     filetabOffset   cuOffset
    5     pctabOffset     filetabOffset
    6     pclnOffset      pctabOffset
    7     -               pclnOffset

Go 1.2-1.15: nfunc at word 0, functab right after it; names, files and PC
tables are all addressed from the pclntab start.

functab (at pclnOffset; Go 1.2: at 8+ptrsize): nfunc pairs then one end
value.  Go 1.18+: (u32 entry offset from text start, u32 funcoff); before:
(uintptr absolute entry, uintptr funcoff).  funcoff is relative to pclnOffset
(1.16+) or to the pclntab start (1.2-1.15).

_func record, 64-bit byte offsets:

    field        1.12-1.15  1.16-1.17  1.18-1.19  1.20+
    entry        0 (u64)    0 (u64)    0 (u32)    0 (u32)
    nameOff      8          8          4          4
    args         12         12         8          8
    deferreturn  16         16         12         12
    pcsp         20         20         16         16
    pcfile       24         24         20         20
    pcln         28         28         24         24
    npcdata      32         32         28         28
    cuOffset     -          36         32         32
    startLine    -          -          -          36
    funcID u8    36         40         36         40
    flag u8      -          41 (1.17)  37         41
    nfuncdata u8 39         43         39         43
    size         40         44         40         44

then pcdata u32[npcdata] (offsets into pctab), then funcdata: u32 offsets from
moduledata.gofunc (1.18+, 0xffffffff = absent) or 8-aligned absolute pointers.

inlinedCall records (at the InlTree funcdata):
  Go 1.20+  (16 bytes): funcID u8 @0, nameOff i32 @4, parentPc i32 @8, startLine i32 @12
  Go 1.12-1.19 (20 bytes): parent i16 @0, funcID u8 @2, file i32 @4, line i32 @8,
                           nameOff i32 @12, parentPc i32 @16

PC-value tables: val=-1, pc=entry; repeat: uvarint uv (0 ends the table except
on the first pair); val += zigzag(uv); uvarint pd; pc += pd*quantum; val holds
for [previous pc, pc).
"""

from __future__ import annotations

import bisect
import enum
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

from gohook.errors import GohookError, PclntabError

# Memory access for data outside the pclntab (inline trees live in rodata).
ReadMemory = Callable[[int, int], bytes]


def name_for_print(name: str) -> str:
    """A function name as the runtime prints it (runtime.funcNameForPrint).

    Everything from the first `[` to the last `]` (the shape/type arguments
    of a generic instantiation) becomes `[...]`.
    """
    i = name.find("[")
    j = name.rfind("]")
    if i < 0 or j <= i:
        return name
    return name[:i] + "[...]" + name[j + 1 :]


class Version(enum.IntEnum):
    """pclntab format generations, named by the first Go release of each."""

    GO12 = 12  # magic 0xfffffffb, Go 1.2-1.15
    GO116 = 116  # magic 0xfffffffa, Go 1.16-1.17
    GO118 = 118  # magic 0xfffffff0, Go 1.18-1.19
    GO120 = 120  # magic 0xfffffff1, Go 1.20-1.27


MAGIC_TO_VERSION = {
    0xFFFFFFFB: Version.GO12,
    0xFFFFFFFA: Version.GO116,
    0xFFFFFFF0: Version.GO118,
    0xFFFFFFF1: Version.GO120,
}

# _func flag bits (Go 1.18+): TopFrame, SPWrite, Asm.
FLAG_TOPFRAME = 1
FLAG_SPWRITE = 2
FLAG_ASM = 4

NO_FUNCDATA = 0xFFFFFFFF
_U32 = struct.Struct("<I")
_FOUR_U32 = struct.Struct("<4I")  # Go 1.18+ _func: pcfile, pcln, npcdata, cuOffset
_ZIGZAG = tuple((u >> 1) ^ -(u & 1) for u in range(128))  # single-byte value deltas
MAX_STRING = 1 << 16
# Inline tree records as (funcID, name offset, parent pc): Go 1.20+ 16 bytes (funcID u8, 3 pad, nameOff i32,
# parentPc i32, startLine i32), Go 1.12-1.19 20 bytes (parent i16, funcID u8, pad, file i32, line i32, nameOff
# i32, parentPc i32).
_INL_RECORD_120 = struct.Struct("<B3xii4x")
_INL_RECORD_OLD = struct.Struct("<2xBx8xii")


@dataclass(frozen=True, slots=True)
class Function:
    """A physical function from the table."""

    name: str
    entry: int
    end: int
    func_id: int
    flag: int
    record: int  # offset of its _func record inside the pclntab

    def __contains__(self, pc: int) -> bool:
        return self.entry <= pc < self.end


class Frame(NamedTuple):
    """One logical frame: a physical function or a call inlined into it.

    A NamedTuple rather than a frozen dataclass: lookups build millions of
    these, and tuple construction is several times cheaper.
    """

    function: str
    file: str
    line: int
    inlined: bool
    func_id: int = 0


class InlinedCall(NamedTuple):
    """One record of a function's inline tree."""

    func_id: int
    name: str
    parent_pc: int


# A decoded PC-value table: (end pcs, values). values has one entry more than
# pcs, a trailing -1 for pcs past the table's end, so a lookup is one bisect
# and one index with no bounds check: values[bisect_right(pcs, pc)].
PCTable = tuple[tuple[int, ...], tuple[int, ...]]


# The per-function caches below are NamedTuples of ints, strings and tuples,
# not dataclasses: the garbage collector stops tracking such tuples, while
# tens of thousands of tracked records would be rescanned by every full
# collection during a lookup pass.


class _FuncMeta(NamedTuple):
    """The record fields a lookup needs, read once per function."""

    pcfile: int
    pcln: int
    cu: int
    inl_table: int | None  # PCDATA_InlTreeIndex table, None without an inline tree
    inl_tree: int | None  # address of the inlinedCall array


class _FrameInfo(NamedTuple):
    """Everything `frames` needs about one function, built on its first lookup.

    The three tables are decoded whole (about 20 entries on average): a
    second lookup in the same function is then bisects and tuple indexing.
    """

    entry: int
    end: int
    name: str  # as the runtime prints it
    func_id: int
    cu: int
    inl_tree: int | None
    single_file: str | None  # the file of every instruction, when there is only one
    pcfile: PCTable
    pcln: PCTable
    inl: PCTable | None


def _uvarint_rest(d: bytes, p: int, b: int) -> tuple[int, int]:
    """A multi-byte uvarint whose first byte b was read; p is just past it. Returns (value, next p)."""
    v, shift = b & 0x7F, 7
    while b & 0x80:
        if shift > 28:
            raise ValueError(f"varint longer than 5 bytes at {p}")
        b = d[p]
        p += 1
        v |= (b & 0x7F) << shift
        shift += 7
    return v, p


def decode_pctable_python(data: bytes, start: int, entry: int, quantum: int) -> PCTable:
    """Decode the PC-value table at byte `start` of data, for a function at `entry`.

    The reference decoder (and the fallback when the C accelerator
    gohook.gosym._pcvalue is not built; both must return the same tuples).
    Single-byte varints (most of them) take the short branch with a zigzag
    lookup table; running off the data raises IndexError instead of a bounds
    check per byte (each step consumes input, so a corrupt table stops at
    the end of data at the latest); a varint longer than 5 bytes (the
    runtime reads uint32s) raises ValueError.
    """
    d = data
    q = quantum
    pc = entry
    p = start
    zz = _ZIGZAG
    pcs: list[int] = []
    vals: list[int] = []
    add_pc = pcs.append
    add_val = vals.append
    val = -1
    if p < 0:
        raise IndexError(f"negative table offset {p}")
    b = d[p]
    while True:
        c = d[p + 1]
        if b < 0x80 and c < 0x80:  # both varints one byte long: most pairs
            val += zz[b]
            pc += c * q
            p += 2
        else:
            p += 1
            if b < 0x80:
                val += zz[b]
            else:
                uv, p = _uvarint_rest(d, p, b)
                val += (uv >> 1) ^ -(uv & 1)
            b = d[p]
            p += 1
            if b < 0x80:
                pc += b * q
            else:
                pd, p = _uvarint_rest(d, p, b)
                pc += pd * q
        add_pc(pc)
        add_val(val)
        b = d[p]
        if not b:  # a zero byte where a value delta starts ends the table (never tested on the first pair)
            break
    add_val(-1)
    # Tuples, not lists: the collector untracks a tuple of ints, while
    # tens of thousands of live lists would be rescanned by every full
    # collection (about 15 % of a first lookup pass, measured).
    return tuple(pcs), tuple(vals)


try:  # the C accelerator, built by setup.py when a compiler is present
    from gohook.gosym._pcvalue import decode as decode_pctable_c
    from gohook.gosym._pcvalue import value_at as pctable_value_at_c
except ImportError:  # pragma: no cover - depends on the install
    decode_pctable_c = None
    pctable_value_at_c = None

# GOHOOK_PURE_PYTHON=1 selects the reference decoder (benchmarks compare the two).
decode_pctable: Callable[[bytes, int, int, int], PCTable] = (
    decode_pctable_python if os.environ.get("GOHOOK_PURE_PYTHON") == "1" or decode_pctable_c is None
    else decode_pctable_c)


@dataclass(frozen=True, slots=True)
class _Layout:
    """Byte offsets of the _func fields for one format generation (64-bit)."""

    entry_size: int
    name: int
    pcfile: int
    pcln: int
    npcdata: int
    cu: int | None
    func_id: int
    flag: int | None
    nfuncdata: int
    size: int


_LAYOUTS = {
    # Go 1.12-1.15: no cuOffset; pcfile values index the file table directly.
    Version.GO12: _Layout(8, 8, 24, 28, 32, None, 36, None, 39, 40),
    # Go 1.16 added cuOffset and moved funcID after it; Go 1.17 put the flag
    # byte in what was padding at 41 (still 0 in Go 1.16 binaries).
    Version.GO116: _Layout(8, 8, 24, 28, 32, 36, 40, 41, 43, 44),
    # Go 1.18 turned entry into a u32 offset from the text start and added flag.
    Version.GO118: _Layout(4, 4, 20, 24, 28, 32, 36, 37, 39, 40),
    # Go 1.20 added startLine before funcID.
    Version.GO120: _Layout(4, 4, 20, 24, 28, 32, 40, 41, 43, 44),
}


class LineTable:
    """Functions, file:line and inline trees of one pclntab.

    data: the pclntab bytes (from its start to at least its end).
    text_start: address of runtime.text (required for Go 1.18+ tables).
    gofunc: address of go:func.* (moduledata.gofunc; Go 1.18+ inline trees).
    memory: reads bytes at a virtual address (inline trees live outside).
    go_minor: the Go 1.x minor version when known (only Go 1.12 differs in
        its PCDATA/FUNCDATA numbering).
    """

    def __init__(
        self,
        data: bytes,
        *,
        text_start: int | None = None,
        gofunc: int | None = None,
        memory: ReadMemory | None = None,
        go_minor: int | None = None,
    ) -> None:
        self.data = data
        self.text_start = text_start
        self.gofunc = gofunc
        self.memory = memory
        self.go_minor = go_minor
        self._table_cache: dict[tuple[int, int], PCTable] = {}
        self._meta_cache: dict[int, _FuncMeta] = {}
        self._file_cache: dict[tuple[int, int], str] = {}
        self._inl_names: dict[int, str] = {}  # inline record name offset -> name (inlined_names)
        self._inl_cache: dict[tuple[int, int], InlinedCall] = {}
        self._parse_header()

    # -- header (the one place that decides the version) -------------------

    def _parse_header(self) -> None:
        d = self.data
        if len(d) < 16:
            raise PclntabError("pclntab shorter than its 16-byte header", 0)
        magic = struct.unpack_from("<I", d, 0)[0]
        version = MAGIC_TO_VERSION.get(magic)
        if version is None:
            raise PclntabError(f"unknown pclntab magic {magic:#010x}", 0)
        if d[4] != 0 or d[5] != 0 or d[6] not in (1, 2, 4) or d[7] not in (4, 8):
            raise PclntabError("bad pclntab header (pad bytes, PC quantum or pointer size)", 4)
        self.version = version
        self.quantum = d[6]
        self.ptr_size = d[7]
        if self.ptr_size != 8:
            raise PclntabError("only 64-bit pclntabs are supported", 7)
        self._uptr = struct.Struct("<Q")

        def word(k: int) -> int:
            return self._read_uptr(8 + k * self.ptr_size)

        self.nfunc = word(0)
        if version >= Version.GO118:
            # Go 1.18: word 2 became textStart (written 0 since Go 1.26: ignored).
            self.funcname_off, self.cu_off, self.filetab_off = word(3), word(4), word(5)
            self.pctab_off, self.func_base = word(6), word(7)
            if self.text_start is None:
                raise PclntabError("a Go 1.18+ pclntab needs the text start address (runtime.text)")
        elif version == Version.GO116:
            self.funcname_off, self.cu_off, self.filetab_off = word(2), word(3), word(4)
            self.pctab_off, self.func_base = word(5), word(6)
        else:
            # Go 1.2-1.15: everything is addressed from the pclntab start.
            self.funcname_off = self.cu_off = self.pctab_off = self.func_base = 0
            ftab_end = 8 + self.ptr_size + (2 * self.nfunc + 1) * self.ptr_size
            self.filetab_off = self._u32(ftab_end)
        self.functab_off = self.func_base if version >= Version.GO116 else 8 + self.ptr_size
        self.layout = _LAYOUTS[version]
        field = 4 if version >= Version.GO118 else self.ptr_size
        need = self.functab_off + (2 * self.nfunc + 1) * field
        if self.nfunc <= 0 or need > len(d):
            raise PclntabError(f"function table of {self.nfunc} entries runs past the pclntab end", self.functab_off)
        for name, off in (("funcname", self.funcname_off), ("cu", self.cu_off), ("filetab", self.filetab_off),
                          ("pctab", self.pctab_off), ("pcln", self.func_base)):
            if off > len(d):
                raise PclntabError(f"{name} offset {off:#x} lies past the pclntab end", 8)
        # Go 1.12 numbered PCDATA_InlTreeIndex 1 and FUNCDATA_InlTree 2; Go
        # 1.13-1.15 used 2 and 4; Go 1.16+ uses 2 and 3.
        if version >= Version.GO116:
            self.pcdata_inl, self.funcdata_inl = 2, 3
        elif self.go_minor == 12:
            self.pcdata_inl, self.funcdata_inl = 1, 2
        else:
            self.pcdata_inl, self.funcdata_inl = 2, 4

    # -- primitive reads ----------------------------------------------------

    def _u32(self, off: int) -> int:
        try:
            return struct.unpack_from("<I", self.data, off)[0]
        except struct.error as exc:
            raise PclntabError(f"read past the pclntab end at {off:#x}", off) from exc

    def _i32(self, off: int) -> int:
        try:
            return struct.unpack_from("<i", self.data, off)[0]
        except struct.error as exc:
            raise PclntabError(f"read past the pclntab end at {off:#x}", off) from exc

    def _read_uptr(self, off: int) -> int:
        try:
            return self._uptr.unpack_from(self.data, off)[0]
        except struct.error as exc:
            raise PclntabError(f"read past the pclntab end at {off:#x}", off) from exc

    def _cstring(self, off: int) -> str:
        d = self.data
        if off < 0 or off >= len(d):
            raise PclntabError(f"string offset {off:#x} outside the pclntab", off)
        end = d.find(b"\x00", off, off + MAX_STRING)
        if end < 0:
            raise PclntabError(f"unterminated string at {off:#x}", off)
        return d[off:end].decode("utf-8", "replace")

    # -- functions -----------------------------------------------------------

    @cached_property
    def functions(self) -> list[Function]:
        """Every physical function, sorted by entry (parsed once, on first use)."""
        d = self.data
        n = self.nfunc
        lay = self.layout
        if self.version >= Version.GO118:
            raw = struct.unpack_from(f"<{2 * n + 1}I", d, self.functab_off)
            base = self.text_start or 0
            entries = [base + e for e in raw[0::2]]
        else:
            raw = struct.unpack_from(f"<{2 * n + 1}Q", d, self.functab_off)
            entries = list(raw[0::2])
        funcoffs = raw[1::2]
        name_base = self.funcname_off
        func_base = self.func_base
        out: list[Function] = []
        find = d.find
        unpack_name = struct.Struct("<I").unpack_from
        flag_at = lay.flag
        size = len(d)
        for i in range(n):
            rec = func_base + funcoffs[i]
            if rec + lay.size > size:
                raise PclntabError(f"_func record of function {i} at {rec:#x} runs past the pclntab", rec)
            noff = name_base + unpack_name(d, rec + lay.name)[0]
            end = find(b"\x00", noff, noff + MAX_STRING)
            if noff >= size or end < 0:
                raise PclntabError(f"bad name offset for function {i} at {rec:#x}", rec)
            entry, nxt = entries[i], entries[i + 1]
            if nxt < entry:
                raise PclntabError(f"function table not sorted at entry {i}", self.functab_off)
            out.append(
                Function(
                    name=d[noff:end].decode("utf-8", "replace"),
                    entry=entry,
                    end=nxt,
                    func_id=d[rec + lay.func_id],
                    flag=d[rec + flag_at] if flag_at is not None else 0,
                    record=rec,
                )
            )
        return out

    @cached_property
    def _entries(self) -> list[int]:
        return [f.entry for f in self.functions]

    @property
    def text_end(self) -> int:
        return self.functions[-1].end if self.functions else 0

    def function_at(self, pc: int) -> Function | None:
        """The physical function whose [entry, end) holds pc, or None."""
        fns = self.functions
        i = bisect.bisect_right(self._entries, pc) - 1
        if i < 0:
            return None
        f = fns[i]
        return f if pc < f.end else None

    # -- per-function record fields -----------------------------------------

    def _field(self, f: Function, off: int) -> int:
        return self._u32(f.record + off)

    def npcdata(self, f: Function) -> int:
        return self._field(f, self.layout.npcdata)

    def nfuncdata(self, f: Function) -> int:
        return self.data[f.record + self.layout.nfuncdata]

    def pcdata_offset(self, f: Function, index: int) -> int | None:
        """Offset into pctab of PC table `index`, or None when absent."""
        if index >= self.npcdata(f):
            return None
        off = self._u32(f.record + self.layout.size + 4 * index)
        return off or None

    def funcdata_address(self, f: Function, index: int) -> int | None:
        """Virtual address of funcdata `index`, or None when absent."""
        nfd = self.nfuncdata(f)
        if index >= nfd:
            return None
        base = f.record + self.layout.size + 4 * self.npcdata(f)
        if self.version >= Version.GO118:
            # Go 1.18: funcdata became u32 offsets from moduledata.gofunc.
            off = self._u32(base + 4 * index)
            if off == NO_FUNCDATA or self.gofunc is None:
                return None
            return self.gofunc + off
        # Before Go 1.18: pointer-aligned absolute addresses.
        if base % 8:
            base += 4
        addr = self._read_uptr(base + 8 * index)
        return addr or None

    # -- PC-value tables ---------------------------------------------------

    def _table(self, table: int, entry: int) -> PCTable:
        """The PC-value table at pctab offset `table` for a function at `entry`, decoded whole.

        Cached per (table, entry): the linker shares identical tables between
        functions, and the pcs are absolute.
        """
        key = (table, entry)
        t = self._table_cache.get(key)
        if t is None:
            start = self.pctab_off + table
            try:
                t = self._table_cache[key] = decode_pctable(self.data, start, entry, self.quantum)
            except (IndexError, ValueError) as exc:
                raise PclntabError(f"PC table at {start:#x}: {exc}", start) from None
        return t

    def pcvalue(self, table: int, entry: int, pc: int) -> int:
        """Value of a PC table at pc (-1 when pc is past the table's end).

        A table not decoded yet is walked in C up to pc, without decoding or caching it (when the accelerator
        is built): most lookups are one-offs (the source file of each function's entry), and caching 110,000
        whole tables for them cost 105 MB and 0.7 s on Debian's prometheus (issue 17 §6)."""
        t = self._table_cache.get((table, entry))
        if t is None and pctable_value_at_c is not None and decode_pctable is decode_pctable_c:
            start = self.pctab_off + table
            try:
                return pctable_value_at_c(self.data, start, entry, self.quantum, pc)
            except (IndexError, ValueError) as exc:
                raise PclntabError(f"PC table at {start:#x}: {exc}", start) from None
        pcs, vals = t if t is not None else self._table(table, entry)
        return vals[bisect.bisect_right(pcs, pc)]

    # -- per-function metadata (cached: every lookup needs it) ----------------

    def _meta(self, f: Function) -> _FuncMeta:
        meta = self._meta_cache.get(f.record)
        if meta is None:
            meta = self._meta_cache[f.record] = (self._meta_go118(f) if self.version >= Version.GO118
                                                 else self._meta_fields(f))
        return meta

    def _meta_fields(self, f: Function) -> _FuncMeta:
        """_meta's record fields, read one by one through the field accessors (every release)."""
        lay = self.layout
        cu = self._field(f, lay.cu) if lay.cu is not None else 0
        inl_table = self.pcdata_offset(f, self.pcdata_inl)
        inl_tree = self.funcdata_address(f, self.funcdata_inl) if inl_table is not None else None
        if inl_tree is None:
            inl_table = None
        return _FuncMeta(self._field(f, lay.pcfile), self._field(f, lay.pcln), cu, inl_table, inl_tree)

    def _meta_go118(self, f: Function) -> _FuncMeta:
        """_meta_fields for Go 1.18+ records, where pcfile, pcln, npcdata and cuOffset are four consecutive u32
        and funcdata are u32 offsets: one unpack for the four (issue 17 §6: every function's metadata is read,
        63,000 in Debian's prometheus; tests/gosym compare the two readers on every function)."""
        lay = self.layout
        d = self.data
        rec = f.record
        try:
            pcfile, pcln, npcdata, cu = _FOUR_U32.unpack_from(d, rec + lay.pcfile)
            inl_table = inl_tree = None
            if self.pcdata_inl < npcdata:
                inl_table = _U32.unpack_from(d, rec + lay.size + 4 * self.pcdata_inl)[0] or None
                if inl_table is not None and self.funcdata_inl < d[rec + lay.nfuncdata]:
                    off = _U32.unpack_from(d, rec + lay.size + 4 * npcdata + 4 * self.funcdata_inl)[0]
                    if off != NO_FUNCDATA and self.gofunc is not None:
                        inl_tree = self.gofunc + off
        except (struct.error, IndexError) as exc:
            raise PclntabError(f"_func record of {f.name} at {rec:#x} runs past the pclntab", rec) from exc
        return _FuncMeta(pcfile, pcln, cu, inl_table if inl_tree is not None else None, inl_tree)

    @cached_property
    def _frame_infos(self) -> list[_FrameInfo | None]:
        """Lookup records by function index, each built on the function's first lookup."""
        return [None] * len(self.functions)

    def _frame_info_at(self, i: int) -> _FrameInfo:
        """The lookup record of function i (built once)."""
        infos = self._frame_infos
        info = infos[i]
        if info is None:
            f = self.functions[i]
            meta = self._meta(f)
            pcfile = self._table(meta.pcfile, f.entry)
            pcln = self._table(meta.pcln, f.entry)
            inl = self._table(meta.inl_table, f.entry) if meta.inl_table is not None else None
            single = None
            if len(pcfile[0]) == 1 and pcfile[0][0] >= f.end and pcfile[1][0] >= 0:
                single = self._file_name(meta.cu, pcfile[1][0])
            name = name_for_print(f.name) if "[" in f.name else f.name
            info = infos[i] = _FrameInfo(f.entry, f.end, name, f.func_id, meta.cu, meta.inl_tree, single,
                                         pcfile, pcln, inl)
        return info

    # -- files and lines -----------------------------------------------------

    def file_name(self, f: Function, fileno: int) -> str:
        return self._file_name(self._meta(f).cu, fileno)

    def _file_name(self, cu: int, fileno: int) -> str:
        if fileno < 0:
            return "?"
        key = (cu, fileno)
        name = self._file_cache.get(key)
        if name is None:
            if self.version >= Version.GO116:
                off = self._u32(self.cu_off + 4 * ((cu + fileno) & 0xFFFFFFFF))  # uint32 arithmetic, as the runtime
                name = "?" if off == 0xFFFFFFFF else self._cstring(self.filetab_off + off)
            else:
                # Go 1.2-1.15: filetab is a u32 array of offsets from the pclntab
                # start; its entry 0 is the count, so file numbers start at 1.
                name = self._cstring(self._u32(self.filetab_off + 4 * fileno)) if fileno else "?"
            self._file_cache[key] = name
        return name

    def line_at(self, f: Function, pc: int) -> tuple[str, int]:
        """File and line of the instruction at pc (no return-address adjustment).

        A PC without line information gives ("?", 0), as the runtime says.
        """
        meta = self._meta(f)
        fileno = self.pcvalue(meta.pcfile, f.entry, pc)
        line = self.pcvalue(meta.pcln, f.entry, pc)
        if fileno < 0 or line < 0:
            return "?", 0
        return self._file_name(meta.cu, fileno), line

    def file_at(self, f: Function, pc: int) -> str:
        """Source file of the instruction at pc: line_at's file, read from the file table alone ("?" when it
        has no entry there). The analysis asks it of every function's entry (which package's file, assembly
        or not), where decoding the line table as well doubled the cost (issue 17 §6)."""
        meta = self._meta(f)
        fileno = self.pcvalue(meta.pcfile, f.entry, pc)
        return self._file_name(meta.cu, fileno) if fileno >= 0 else "?"

    # -- inlining --------------------------------------------------------------

    def has_inline_tree(self, f: Function) -> bool:
        return self._meta(f).inl_table is not None

    def inline_table(self, f: Function) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The decoded PCDATA_InlTreeIndex table: (end pcs, inline indexes)."""
        table = self._meta(f).inl_table
        if table is None:
            return (f.end,), (-1,)
        pcs, vals = self._table(table, f.entry)
        return pcs, vals[:-1]

    def inline_index(self, f: Function, pc: int) -> int:
        table = self._meta(f).inl_table
        if table is None:
            return -1
        return self.pcvalue(table, f.entry, pc)

    def inlined_names(self, f: Function) -> frozenset[str]:
        """The names of every record of f's inline tree: {inlined_call(f, ix).name for ix in range(n)}, n being
        one more than the largest index of its inline table; empty without an inline tree.

        Reads the records in one go and each name once (issue 17 §6: hook-site search asks this of every
        function; record by record it was 200,000 inlined_call lookups in prometheus)."""
        names = self._inl_names
        out = set()
        for off in {off for _fid, off, _ppc in self.inline_records(f)}:
            name = names.get(off)
            if name is None:
                name = self.inlined_name(off)
            out.add(name)
        return frozenset(out)

    def inline_records(self, f: Function) -> list[tuple[int, int, int]]:
        """f's inline tree by index, each record as (funcID, name offset, parent pc), read in one go (as many
        records as its inline table uses: one more than its largest index); empty without an inline tree.
        inlined_name(offset) is the name; inlined_call(f, ix) is the same record, read on its own."""
        meta = self._meta(f)
        if meta.inl_table is None:
            return []
        _pcs, vals = self.inline_table(f)
        n = max(vals, default=-1) + 1
        if n <= 0:
            return []
        base = meta.inl_tree
        if base is None or self.memory is None:
            raise PclntabError(f"{f.name}: inline tree not readable", f.record)
        size, layout = (16, _INL_RECORD_120) if self.version >= Version.GO120 else (20, _INL_RECORD_OLD)
        try:
            return list(layout.iter_unpack(self.memory(base, size * n)))
        except (struct.error, GohookError) as exc:
            raise PclntabError(f"{f.name}: inline records at {base:#x} unreadable: {exc}", f.record) from exc

    def inlined_name(self, offset: int) -> str:
        """The function name at this offset of the name table (an inline record's), read once."""
        name = self._inl_names.get(offset)
        if name is None:
            name = self._inl_names[offset] = self._cstring(self.funcname_off + offset)
        return name

    def inlined_call(self, f: Function, index: int) -> InlinedCall:
        base = self._meta(f).inl_tree
        if base is None or self.memory is None:
            raise PclntabError(f"{f.name}: inline tree not readable", f.record)
        key = (base, index)
        call = self._inl_cache.get(key)
        if call is not None:
            return call
        try:
            if self.version >= Version.GO120:
                # Go 1.20: 16-byte records, no parent index or file/line.
                raw = self.memory(base + 16 * index, 16)
                func_id, name_off, parent_pc = raw[0], *struct.unpack_from("<ii", raw, 4)
            else:
                raw = self.memory(base + 20 * index, 20)
                func_id = raw[2]
                name_off, parent_pc = struct.unpack_from("<ii", raw, 12)
        except (struct.error, GohookError) as exc:
            raise PclntabError(f"{f.name}: inline record {index} at {base:#x} unreadable: {exc}", f.record) from exc
        call = InlinedCall(func_id, self.inlined_name(name_off), parent_pc)
        self._inl_cache[key] = call
        return call

    def frames(self, pc: int, *, return_address: bool = True, wrapper_id: int | None = None,
               panic_ids: frozenset[int] = frozenset()) -> list[Frame]:
        """Logical frames at pc, innermost first, as runtime.CallersFrames gives them.

        With return_address, pc is a return address: lookups use pc-1 (when
        pc > entry), as the runtime does. Frames whose funcID is `wrapper_id`
        are elided unless the frame inside them is a panic function, as
        runtime.Callers does.
        """
        i = bisect.bisect_right(self._entries, pc) - 1
        if i < 0:
            return []
        entry, end, fname, fid, cu, inl_tree, single_file, (file_pcs, file_vals), (line_pcs, line_vals), inl = (
            self._frame_infos[i] or self._frame_info_at(i))
        if pc >= end:
            return []
        if return_address and pc > entry:
            pc -= 1
        bisect_right = bisect.bisect_right
        ix = inl[1][bisect_right(inl[0], pc)] if inl is not None else -1
        out: list[Frame] = []
        callee_id = depth = 0
        inlined = self._inl_cache
        files = self._file_cache
        while depth < 256:
            if ix >= 0:
                call = inlined.get((inl_tree, ix)) or self.inlined_call(self.functions[i], ix)
                name, func_id = call.name, call.func_id
                if "[" in name:
                    name = name_for_print(name)
            else:
                name, func_id = fname, fid
            if func_id != wrapper_id or callee_id in panic_ids:  # (never equal when wrapper_id is None)
                line = line_vals[bisect_right(line_pcs, pc)]
                fileno = 0 if single_file is not None else file_vals[bisect_right(file_pcs, pc)]
                if fileno < 0 or line < 0:
                    file, line = "?", 0  # as runtime.funcline1 reports a PC without line info
                else:
                    file = single_file or files.get((cu, fileno)) or self._file_name(cu, fileno)
                out.append(Frame(name, file, line, ix >= 0, func_id))
            if ix < 0:
                return out
            callee_id = func_id
            depth += 1
            pc = entry + call.parent_pc
            ix = inl[1][bisect_right(inl[0], pc)]  # type: ignore[index]
        raise PclntabError(f"{fname}: inline tree loops", self.functions[i].record)
