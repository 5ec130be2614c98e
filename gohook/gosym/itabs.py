"""Itabs and static words: the two addresses an `error` value holding syscall.EPERM needs.

A Go `error` is a non-empty interface: two words, an *itab and a data pointer.
`var err error = syscall.EPERM` is (itab of (syscall.Errno, error), pointer to
a word holding 1). To make a hooked function return that value, gohook needs
both addresses from the binary alone, stripped binaries included:

1. the itab, found through the list of itabs the linker records in
   runtime.moduledata (the runtime walks the same list at start-up, in
   itabsinit, to seed its itab hash table, and reflection relies on it), by
   the names of its interface type and concrete type;
2. a static word holding the errno: `runtime.staticuint64s`, the runtime's
   [256]uint64{0, 1, ..., 255} that Go itself points small integers into when
   it boxes them in interfaces, found by its 2048-byte content.

Where the itabs are listed (moduledata, amd64 byte offsets)
------------------------------------------------------------

    field                 1.18-1.19   1.20-1.26   1.27
    types                 280         296         296
    typedesclen           -           -           304   (Go 1.27)
    etypes                288         304         312
    itaboffset            -           -           320   (Go 1.27)
    itabsize              -           -           328   (Go 1.27)
    gofunc                304         320         344
    itablinks []*itab     360         376         -     (ptr, len, cap)

Up to Go 1.26 `itablinks` is a slice of pointers to itabs (the .itablink
section; Go 1.20 moved it by 16 bytes when it added covctrs/ecovctrs before
types). Go 1.27 dropped the typelinks/itablinks slices: the linker sorts the
itab symbols after the type descriptors in the types region, and the itabs
are packed back to back in [types + itaboffset, types + itaboffset +
itabsize); runtime.addModuleItabs walks them advancing by ITab.Size() (32
bytes, plus 8 per interface method after the first), with no alignment step.
In the binaries measured (1.27.3) the table ends exactly at etypes. Go
1.27's internal linker also stopped writing `go:itab.*` ELF symbols, so its
unstripped binaries have no symbol for an itab (external-linked cgo builds
still have them). The 1.20-1.26 column is verified on 1.21 and 1.24 (1.25
and 1.26 carry gofunc at 320 like them; the slice is validated before use).

Every itab the linker emits is listed, whether code converts to it
statically (`var err error = syscall.EPERM` loads the itab's address) or the
runtime looks it up (type assertions find it in the itab table seeded from
this list): in every fixture of the suite with symbols, the set of
`go:itab.*` symbols equals the list.

staticuint64s lives in .noptrdata up to Go 1.21 and in .rodata from 1.24
(measured). Go points run-time conversions of word-sized values below 256
into it (runtime.convT64: what syscall's errnoErr does for EPERM); a
constant conversion points at a read-only copy of the constant instead.
Either is a valid data word: it is never written.

Records (amd64 byte offsets)
----------------------------

    itab (runtime.itab up to 1.21, internal/abi.ITab since 1.22; same bytes)
      0   inter *interfacetype
      8   _type *_type
      16  hash uint32            copy of _type.hash (checked)
      20  4 bytes padding
      24  fun [n]uintptr         n = number of interface methods; fun[0] == 0
                                 marks a failed dynamic itab (never emitted)

    type (runtime._type up to 1.20, internal/abi.Type since 1.21; same bytes)
      0   size uintptr
      8   ptrdata uintptr
      16  hash uint32
      20  tflag uint8            bit 1 TFlagExtraStar: str carries a leading '*'
      21  align, 22 fieldAlign
      23  kind uint8             & 0x1f; Interface = 20 in every release
      24  equal func
      32  gcdata *byte
      40  str nameOff int32      name at moduledata.types + str
      44  ptrToThis typeOff int32
      48  (end; kind-specific fields follow)

    interfacetype (type + ...)
      48  pkgpath name (a *byte)
      56  methods []imethod      (ptr, len, cap); imethod = (name, typ) int32s

    name (runtime.name, internal/abi.Name), Go 1.17+
      0   flags byte
      1   uvarint length, then that many bytes
      (Go 1.16 and older: a big-endian uint16 length; not supported here:
      graceful deny needs the register ABI of Go 1.17+, and gohook reads
      moduledata layouts from Go 1.18 on.)

Type names are the runtime's type strings: "syscall.Errno", "error",
"*os.PathError". Two different packages with the same last path element
would give two itabs the same pair of names: `find_itab` refuses to guess.

Everything here is pure over a `read(vaddr, size) -> bytes` callback that
raises AddressError on unmapped memory; every malformed input raises
ItabError (or StaticWordError), never an IndexError or struct.error.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from gohook.errors import AddressError, BinaryError

ReadMemory = Callable[[int, int], bytes]

PTR_SIZE = 8

# itab
ITAB_INTER = 0
ITAB_TYPE = 8
ITAB_HASH = 16
ITAB_FUN = 24

# type
TYPE_HASH = 16
TYPE_TFLAG = 20
TYPE_KIND = 23
TYPE_STR = 40
TYPE_SIZE = 48
TFLAG_EXTRA_STAR = 1 << 1
KIND_MASK = 0x1F
KIND_INTERFACE = 20

# interfacetype
INTERFACETYPE_METHODS = TYPE_SIZE + PTR_SIZE  # after the embedded type and pkgpath

#: Refuse absurd counts from damaged data instead of allocating for them.
MAX_ITABS = 1 << 20
MAX_METHODS = 1 << 16
MAX_VARINT_BYTES = 5  # a name length fits 32 bits

#: runtime.staticuint64s: [256]uint64{0, 1, ..., 255}, little endian.
STATIC_UINT64S = struct.pack("<256Q", *range(256))


class ItabError(BinaryError):
    """The itab list, an itab, or a type it points to is malformed (offset = the virtual address)."""


class StaticWordError(BinaryError):
    """runtime.staticuint64s is missing or not unique in the binary."""


class Layout(enum.Enum):
    """Where moduledata lists the itabs: one per range of Go releases."""

    LINKS_118 = "itablinks slice, Go 1.18-1.19 moduledata"
    LINKS_120 = "itablinks slice, Go 1.20-1.26 moduledata"
    TABLE_127 = "packed itab table in the types region, Go 1.27+"


class Offsets(NamedTuple):
    """Byte offsets of the moduledata fields this module reads (None: absent in that layout)."""

    types: int
    etypes: int
    itablinks: int | None  # []*itab: ptr, len, cap
    itaboffset: int | None
    itabsize: int | None
    gofunc: int


MODULEDATA_OFFSETS: dict[Layout, Offsets] = {
    Layout.LINKS_118: Offsets(280, 288, 360, None, None, 304),
    Layout.LINKS_120: Offsets(296, 304, 376, None, None, 320),  # Go 1.20 added covctrs, ecovctrs before types
    Layout.TABLE_127: Offsets(296, 312, None, 320, 328, 344),  # Go 1.27: typedesclen, itaboffset, itabsize
}

#: Bytes of moduledata this module reads (the 1.20 itablinks slice ends at 400).
MODULEDATA_PREFIX = 400


def layout_for(go_minor: int | None, raw: bytes, gofunc: int | None) -> Layout:
    """The moduledata layout: from the Go minor version when known, else from where gofunc sits.

    `raw` is the start of moduledata (at least MODULEDATA_PREFIX bytes) and
    `gofunc` the value GoBinary validated for moduledata.gofunc.
    """
    if go_minor is not None:
        if go_minor >= 27:
            return Layout.TABLE_127
        if go_minor >= 20:
            return Layout.LINKS_120
        if go_minor >= 18:
            return Layout.LINKS_118
        raise ItabError(f"itabs of Go 1.{go_minor} binaries are not supported (Go 1.18+ moduledata only)")
    if gofunc:
        for layout, offsets in MODULEDATA_OFFSETS.items():
            off = offsets.gofunc
            if len(raw) >= off + 8 and struct.unpack_from("<Q", raw, off)[0] == gofunc:
                return layout
    raise ItabError("cannot tell the moduledata layout: no Go version and no gofunc field")


@dataclass(frozen=True, slots=True)
class ModuleTypes:
    """The moduledata fields that locate types and itabs."""

    layout: Layout
    types: int
    etypes: int
    itablinks: tuple[int, int] | None  # (pointer, length), up to Go 1.26
    itab_table: tuple[int, int] | None  # (address, size in bytes), Go 1.27+


def parse_module_types(raw: bytes, address: int, layout: Layout) -> ModuleTypes:
    """Decode and sanity-check the types/itab fields of moduledata bytes `raw` at `address`."""
    t_off, e_off, links_off, io_off, is_off, _gofunc = MODULEDATA_OFFSETS[layout]
    try:
        types, etypes = struct.unpack_from("<Q", raw, t_off)[0], struct.unpack_from("<Q", raw, e_off)[0]
        links = struct.unpack_from("<3Q", raw, links_off) if links_off is not None else None
        table = (struct.unpack_from("<Q", raw, io_off)[0], struct.unpack_from("<Q", raw, is_off)[0]) \
            if io_off is not None and is_off is not None else None
    except struct.error as exc:
        raise ItabError(f"moduledata at {address:#x} is truncated ({len(raw)} bytes)", address) from exc
    if not 0 < types < etypes:
        raise ItabError(f"moduledata at {address:#x}: bad types range [{types:#x}, {etypes:#x})", address)
    itablinks = itab_table = None
    if links is not None:
        ptr, length, cap = links
        if length > cap or length > MAX_ITABS or (length and not ptr):
            raise ItabError(f"moduledata at {address:#x}: implausible itablinks slice "
                            f"(ptr {ptr:#x}, len {length}, cap {cap})", address + (links_off or 0))
        itablinks = (ptr, length)
    if table is not None:
        offset, size = table
        if offset + size > etypes - types or size % PTR_SIZE:
            raise ItabError(f"moduledata at {address:#x}: itab table [types+{offset:#x}, +{size:#x}) "
                            f"lies outside the types region (size {etypes - types:#x})", address + (io_off or 0))
        itab_table = (types + offset, size)
    return ModuleTypes(layout, types, etypes, itablinks, itab_table)


@dataclass(frozen=True, slots=True)
class Itab:
    """One itab as the linker emitted it (static virtual addresses)."""

    address: int
    interface: str  # the interface type's string, e.g. "error"
    concrete: str  # the concrete type's string, e.g. "syscall.Errno"
    interface_type: int  # address of the interfacetype
    concrete_type: int  # address of the concrete type's descriptor
    hash: int
    fun: tuple[int, ...]  # method entry PCs, in the interface's (sorted) method order

    @property
    def size(self) -> int:
        """Bytes the itab occupies (what runtime ITab.Size returns for it)."""
        return ITAB_FUN + PTR_SIZE * max(1, len(self.fun))


class _Reader:
    """Bounds-checked reads for one module: file data via `read`, names and types inside [types, etypes)."""

    def __init__(self, read: ReadMemory, mt: ModuleTypes) -> None:
        self._read = read
        self.mt = mt

    def bytes(self, vaddr: int, size: int, what: str) -> bytes:
        try:
            data = self._read(vaddr, size)
        except AddressError as exc:
            raise ItabError(f"{what} at {vaddr:#x}: {exc}", vaddr) from exc
        if len(data) != size:
            raise ItabError(f"{what} at {vaddr:#x}: short read ({len(data)} of {size} bytes)", vaddr)
        return data

    def word(self, vaddr: int, what: str) -> int:
        value: int = struct.unpack("<Q", self.bytes(vaddr, PTR_SIZE, what))[0]
        return value

    def in_types(self, vaddr: int, size: int, what: str) -> None:
        if not (self.mt.types <= vaddr and vaddr + size <= self.mt.etypes):
            raise ItabError(f"{what} at {vaddr:#x} is outside the types region "
                            f"[{self.mt.types:#x}, {self.mt.etypes:#x})", vaddr)

    def name(self, vaddr: int, what: str) -> str:
        """A runtime name (Go 1.17+ encoding: flags byte, uvarint length, bytes) inside the types region."""
        self.in_types(vaddr, 1, what)
        length = shift = 0
        for i in range(MAX_VARINT_BYTES):
            self.in_types(vaddr + 1 + i, 1, what)
            byte = self.bytes(vaddr + 1 + i, 1, what)[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                start = vaddr + 2 + i
                break
        else:
            raise ItabError(f"{what} at {vaddr:#x}: name length varint runs past {MAX_VARINT_BYTES} bytes", vaddr)
        self.in_types(start, length, what)
        raw = self.bytes(start, length, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ItabError(f"{what} at {vaddr:#x}: name is not UTF-8", vaddr) from exc

    def type_string(self, type_addr: int) -> tuple[str, int, int]:
        """(type string, hash, kind) of the type descriptor at type_addr."""
        self.in_types(type_addr, TYPE_SIZE, "type descriptor")
        head = self.bytes(type_addr, TYPE_SIZE, "type descriptor")
        hash_, tflag, kind = struct.unpack_from("<IB2xB", head, TYPE_HASH)
        str_off = struct.unpack_from("<i", head, TYPE_STR)[0]
        if str_off <= 0:
            raise ItabError(f"type descriptor at {type_addr:#x} has no name (str {str_off})", type_addr)
        text = self.name(self.mt.types + str_off, f"name of type {type_addr:#x}")
        if tflag & TFLAG_EXTRA_STAR:  # the linker shares the "*T" name between T and *T
            if not text.startswith("*"):
                raise ItabError(f"type descriptor at {type_addr:#x}: TFlagExtraStar but name {text!r}", type_addr)
            text = text[1:]
        return text, hash_, kind & KIND_MASK

    def method_count(self, inter_addr: int) -> int:
        """len(interfacetype.methods)."""
        self.in_types(inter_addr, INTERFACETYPE_METHODS + 3 * PTR_SIZE, "interface type")
        raw = self.bytes(inter_addr + INTERFACETYPE_METHODS, 3 * PTR_SIZE, "interface type methods")
        _ptr, length, cap = struct.unpack("<3Q", raw)
        if length > cap or length > MAX_METHODS:
            raise ItabError(f"interface type at {inter_addr:#x}: implausible methods slice "
                            f"(len {length}, cap {cap})", inter_addr)
        return int(length)


def read_itab(read: ReadMemory, mt: ModuleTypes, address: int) -> Itab:
    """Decode and check the itab at `address`: both types named, the interface an interface, hashes equal."""
    r = _Reader(read, mt)
    return _read_itab(r, address)


def _read_itab(r: _Reader, address: int) -> Itab:
    if address % PTR_SIZE:
        raise ItabError(f"itab at {address:#x} is not pointer-aligned", address)
    inter, typ, hash_ = struct.unpack_from("<QQI", r.bytes(address, ITAB_FUN, "itab"))
    iname, _ihash, ikind = r.type_string(inter)
    if ikind != KIND_INTERFACE:
        raise ItabError(f"itab at {address:#x}: its interface type {inter:#x} ({iname!r}) has kind {ikind}", address)
    cname, chash, _ckind = r.type_string(typ)
    if hash_ != chash:
        raise ItabError(f"itab at {address:#x} ({cname},{iname}): hash {hash_:#x} is not its type's {chash:#x}",
                        address)
    n = r.method_count(inter)
    if n == 0:
        raise ItabError(f"itab at {address:#x}: interface {iname!r} has no methods (itabs are for non-empty "
                        "interfaces)", address)
    fun = struct.unpack(f"<{n}Q", r.bytes(address + ITAB_FUN, PTR_SIZE * n, "itab methods"))
    return Itab(address, iname, cname, inter, typ, hash_, fun)


def itab_addresses(read: ReadMemory, mt: ModuleTypes) -> list[int]:
    """Addresses of every itab the linker emitted, in the order moduledata lists them.

    Up to Go 1.26: the entries of the itablinks slice. Go 1.27+: a walk of
    the packed table, each itab's size taken from its interface's method
    count as runtime.addModuleItabs does; the walk must end exactly at the
    table's end.
    """
    r = _Reader(read, mt)
    if mt.itablinks is not None:
        ptr, length = mt.itablinks
        if not length:
            return []
        raw = r.bytes(ptr, PTR_SIZE * length, "itablinks")
        return list(struct.unpack(f"<{length}Q", raw))
    if mt.itab_table is None:
        raise ItabError("moduledata lists no itabs (neither itablinks nor an itab table)")
    start, size = mt.itab_table
    out: list[int] = []
    p, end = start, start + size
    while p < end:
        if len(out) >= MAX_ITABS:
            raise ItabError(f"itab table at {start:#x}: more than {MAX_ITABS} itabs", p)
        r.in_types(p, ITAB_FUN + PTR_SIZE, "itab")
        inter = r.word(p + ITAB_INTER, "itab")
        fun0 = r.word(p + ITAB_FUN, "itab")
        n = r.method_count(inter) if fun0 else 1
        out.append(p)
        p += ITAB_FUN + PTR_SIZE * max(1, n)  # runtime ITab.Size(): 32 + (n-1)*8, 32 when fun[0] == 0
    if p != end:
        raise ItabError(f"itab table at {start:#x}: the last itab ends at {p:#x}, past the table end {end:#x}", p)
    return out


def read_itabs(read: ReadMemory, mt: ModuleTypes) -> list[Itab]:
    """Every itab of the module, decoded and checked."""
    r = _Reader(read, mt)
    return [_read_itab(r, a) for a in itab_addresses(read, mt)]


def find_itab(itabs: Iterable[Itab], concrete: str, interface: str) -> Itab | None:
    """The itab for (concrete, interface) by type strings; None if the linker emitted none.

    Raises ItabError when two itabs carry the same pair of names (types of
    two packages with the same name): which one a caller means is unknowable.
    """
    hits = [t for t in itabs if t.concrete == concrete and t.interface == interface]
    if len(hits) > 1:
        where = ", ".join(f"{t.address:#x}" for t in hits)
        raise ItabError(f"{len(hits)} itabs for ({concrete}, {interface}) at {where}: ambiguous", hits[0].address)
    return hits[0] if hits else None


def find_static_uint64s(regions: Iterable[tuple[int, bytes]]) -> list[int]:
    """Every 8-aligned address where runtime.staticuint64s' 2048 bytes ({0, 1, ..., 255}) occur.

    `regions` are (vaddr, bytes) of the binary's loaded, non-executable sections.
    """
    hits: list[int] = []
    for base, data in regions:
        pos = data.find(STATIC_UINT64S)
        while pos >= 0:
            if (base + pos) % PTR_SIZE == 0:
                hits.append(base + pos)
            pos = data.find(STATIC_UINT64S, pos + 1)
    return hits
