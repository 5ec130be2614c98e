"""Kernel struct offsets from BTF (the running kernel's /sys/kernel/btf/vmlinux), for the file-open program.

Why: bcc compiles against whatever kernel headers are installed (Debian's 6.1 here) while the kernel runs
6.18: `file->f_path` compiled from those headers reads the wrong bytes. The kernel describes its own
structs in BTF, so every offset the BPF program uses is resolved here from the running kernel and handed
to the program as a -D define (gohook/bpf/render.py, lib/fileopen.h).

Pure over bytes: `Btf(data)` parses, `Btf.member(struct, chain)` resolves; the only I/O is
`kernel_offsets()` at the edge. Malformed input raises BtfError, never IndexError or struct.error.

Byte layout (little-endian on x86-64; the magic's byte order tells):

    header (struct btf_header, hdr_len bytes, at least 24):
      0  u16 magic 0xeb9f      2  u8 version (1)     3  u8 flags
      4  u32 hdr_len           8  u32 type_off      12  u32 type_len
     16  u32 str_off          20  u32 str_len
    (type_off and str_off count from the end of the header, hdr_len)

    type section: records one after another; type id 1 is the first record (id 0 is void)
      struct btf_type, 12 bytes:
        0 u32 name_off (into the string section)
        4 u32 info: bits 0-15 vlen, bits 24-28 kind, bit 31 kind_flag
        8 u32 size (INT, STRUCT, UNION, ENUM, ENUM64, DATASEC, FLOAT) or type (the others)
      then, by kind:
        1 INT           u32 encoding
        2 PTR           -
        3 ARRAY         u32 type, u32 index_type, u32 nelems
        4 STRUCT        vlen x btf_member {u32 name_off, u32 type, u32 offset}
        5 UNION         same as STRUCT; member offset: bits, or with kind_flag set
                        bits 0-23 bit offset and bits 24-31 bitfield size
        6 ENUM          vlen x {u32 name_off, i32 val}
        7 FWD, 8 TYPEDEF, 9 VOLATILE, 10 CONST, 11 RESTRICT, 12 FUNC   -
        13 FUNC_PROTO   vlen x {u32 name_off, u32 type}
        14 VAR          u32 linkage
        15 DATASEC      vlen x {u32 type, u32 offset, u32 size}
        16 FLOAT        -
        17 DECL_TAG     i32 component_idx
        18 TYPE_TAG     -
        19 ENUM64       vlen x {u32 name_off, u32 val_lo32, u32 val_hi32}

    string section: NUL-terminated names; offset 0 is the empty name (anonymous members).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from gohook.errors import GohookError

__all__ = ["FILEOPEN_FIELDS", "Btf", "BtfError", "Member", "kernel_offsets", "resolve_defines"]

BTF_MAGIC = 0xEB9F
VMLINUX = Path("/sys/kernel/btf/vmlinux")

KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM = 1, 2, 3, 4, 5, 6
KIND_FWD, KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT = 7, 8, 9, 10, 11
KIND_FUNC, KIND_FUNC_PROTO, KIND_VAR, KIND_DATASEC, KIND_FLOAT = 12, 13, 14, 15, 16
KIND_DECL_TAG, KIND_TYPE_TAG, KIND_ENUM64 = 17, 18, 19
# bytes that follow the 12-byte record: (fixed, per vlen entry)
_EXTRA: dict[int, tuple[int, int]] = {
    KIND_INT: (4, 0), KIND_PTR: (0, 0), KIND_ARRAY: (12, 0), KIND_STRUCT: (0, 12), KIND_UNION: (0, 12),
    KIND_ENUM: (0, 8), KIND_FWD: (0, 0), KIND_TYPEDEF: (0, 0), KIND_VOLATILE: (0, 0), KIND_CONST: (0, 0),
    KIND_RESTRICT: (0, 0), KIND_FUNC: (0, 0), KIND_FUNC_PROTO: (0, 8), KIND_VAR: (4, 0),
    KIND_DATASEC: (0, 12), KIND_FLOAT: (0, 0), KIND_DECL_TAG: (4, 0), KIND_TYPE_TAG: (0, 0),
    KIND_ENUM64: (0, 12),
}
_MODIFIERS = (KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG)
_SIZED = (KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64, KIND_DATASEC, KIND_FLOAT)
_MAX_DEPTH = 32  # typedef chains and nested anonymous members deeper than this are malformed


class BtfError(GohookError):
    """The BTF bytes are malformed, or do not describe the struct member asked for."""


@dataclass(frozen=True, slots=True)
class Member:
    """A resolved member chain: byte offset from the start of the outer struct, and the member's size."""

    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class _Type:
    kind: int
    name: str
    vlen: int
    kind_flag: bool
    size_or_type: int
    extra: int  # offset of the kind-specific bytes in the type section


class Btf:
    """A parsed BTF blob: types by id and structs/unions by name."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 24:
            raise BtfError(f"BTF header truncated: {len(data)} bytes, at least 24 needed")
        magic = int.from_bytes(data[:2], "little")
        if magic == BTF_MAGIC:
            self._end = "<"
        elif int.from_bytes(data[:2], "big") == BTF_MAGIC:
            self._end = ">"
        else:
            raise BtfError(f"bad BTF magic {data[:2].hex()} (want 0xeb9f)")
        version, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(self._end + "xxBxIIIII", data)
        if version != 1:
            raise BtfError(f"BTF version {version} is not supported (1 is)")
        if hdr_len < 24 or hdr_len > len(data):
            raise BtfError(f"BTF header length {hdr_len} is outside the {len(data)} bytes")
        body = len(data) - hdr_len
        if type_off + type_len > body or str_off + str_len > body:
            raise BtfError(f"BTF sections (types {type_off}+{type_len}, strings {str_off}+{str_len}) run past "
                           f"the {body} bytes after the header")
        self._types_raw = data[hdr_len + type_off: hdr_len + type_off + type_len]
        self._strings = data[hdr_len + str_off: hdr_len + str_off + str_len]
        self.types: list[_Type | None] = [None]  # id 0: void
        self._by_name: dict[str, list[int]] = {}
        self._parse()

    def _name(self, off: int) -> str:
        if off >= len(self._strings) and off:
            raise BtfError(f"string offset {off} is outside the {len(self._strings)}-byte string section")
        end = self._strings.find(b"\0", off)
        if end < 0:
            raise BtfError(f"string at offset {off} is not NUL-terminated")
        return self._strings[off:end].decode("utf-8", "replace")

    def _parse(self) -> None:
        raw, pos = self._types_raw, 0
        while pos < len(raw):
            if pos + 12 > len(raw):
                raise BtfError(f"type record {len(self.types)} truncated at byte {pos} of the type section")
            name_off, info, size_or_type = struct.unpack_from(self._end + "III", raw, pos)
            kind = (info >> 24) & 0x1F
            vlen = info & 0xFFFF
            if kind not in _EXTRA:
                raise BtfError(f"type {len(self.types)} has unknown kind {kind}")
            fixed, per = _EXTRA[kind]
            extra = pos + 12
            pos = extra + fixed + per * vlen
            if pos > len(raw):
                raise BtfError(f"type {len(self.types)} (kind {kind}, vlen {vlen}) runs past the type section")
            t = _Type(kind, self._name(name_off), vlen, bool(info >> 31), size_or_type, extra)
            if kind in (KIND_STRUCT, KIND_UNION) and t.name:
                self._by_name.setdefault(t.name, []).append(len(self.types))
            self.types.append(t)

    def type(self, type_id: int) -> _Type:
        """The type with id type_id (BtfError for void or an id out of range)."""
        if not 0 < type_id < len(self.types):
            raise BtfError(f"type id {type_id} is out of range (1..{len(self.types) - 1})")
        t = self.types[type_id]
        assert t is not None
        return t

    def _strip(self, type_id: int) -> int:
        """type_id with typedefs and qualifiers removed."""
        for _ in range(_MAX_DEPTH):
            t = self.type(type_id)
            if t.kind not in _MODIFIERS:
                return type_id
            type_id = t.size_or_type
        raise BtfError(f"type {type_id}: typedef/qualifier chain deeper than {_MAX_DEPTH}")

    def size_of(self, type_id: int) -> int:
        """Byte size of a type (pointers are 8 bytes: x86-64)."""
        t = self.type(self._strip(type_id))
        if t.kind == KIND_PTR:
            return 8
        if t.kind in _SIZED:
            return t.size_or_type
        if t.kind == KIND_ARRAY:
            elem, _index, n = struct.unpack_from(self._end + "III", self._types_raw, t.extra)
            return self.size_of(elem) * n
        raise BtfError(f"type {type_id} (kind {t.kind}) has no size")

    def struct_id(self, name: str) -> int:
        """The id of the complete struct or union called name (a forward declaration does not count)."""
        ids = [i for i in self._by_name.get(name, ()) if self.type(i).vlen or self.type(i).size_or_type]
        if not ids:
            raise BtfError(f"no struct or union {name!r} in BTF")
        return ids[0]

    def _members(self, t: _Type) -> list[tuple[str, int, int]]:
        """(name, type id, bit offset) of each member of struct/union t."""
        out = []
        for i in range(t.vlen):
            name_off, mtype, off = struct.unpack_from(self._end + "III", self._types_raw, t.extra + 12 * i)
            bits = off & 0xFFFFFF if t.kind_flag else off
            size = off >> 24 if t.kind_flag else 0
            if size:  # a bitfield has no byte offset of its own
                bits = -1
            out.append((self._name(name_off), mtype, bits))
        return out

    def _find(self, type_id: int, name: str, depth: int = 0) -> tuple[int, int] | None:
        """(bit offset, type id) of member name of the struct/union type_id, looking into anonymous members."""
        if depth > _MAX_DEPTH:
            raise BtfError(f"anonymous members nested deeper than {_MAX_DEPTH}")
        t = self.type(self._strip(type_id))
        if t.kind not in (KIND_STRUCT, KIND_UNION):
            raise BtfError(f"type {type_id} is not a struct or union (kind {t.kind}): no member {name!r}")
        for mname, mtype, bits in self._members(t):
            if mname == name:
                if bits < 0:
                    raise BtfError(f"member {name!r} is a bitfield: it has no byte offset")
                return bits, mtype
            if not mname and self.type(self._strip(mtype)).kind in (KIND_STRUCT, KIND_UNION):
                inner = self._find(mtype, name, depth + 1)
                if inner is not None:
                    if bits < 0:
                        raise BtfError(f"anonymous member holding {name!r} is a bitfield")
                    return bits + inner[0], inner[1]
        return None

    def member(self, struct_name: str, chain: str) -> Member:
        """Resolve `a.b.c` of struct struct_name (embedded structs, anonymous unions/structs) to a byte offset."""
        type_id = self.struct_id(struct_name)
        bits = 0
        for part in chain.split("."):
            found = self._find(type_id, part)
            if found is None:
                raise BtfError(f"struct {struct_name}: no member {part!r} (in {chain!r})")
            bits += found[0]
            type_id = found[1]
        if bits % 8:
            raise BtfError(f"struct {struct_name}.{chain} is not byte-aligned (bit offset {bits})")
        return Member(bits // 8, self.size_of(type_id))


#: The fields lib/fileopen.h reads, as (define, struct, member chain, size the C code reads).
#: The size is checked: a kernel that changes a field's width must not be read with the old one.
FILEOPEN_FIELDS: tuple[tuple[str, str, str, int], ...] = (
    ("GOHOOK_KO_TASK_FILES", "task_struct", "files", 8),
    ("GOHOOK_KO_FILES_FDT", "files_struct", "fdt", 8),
    ("GOHOOK_KO_FDT_MAX_FDS", "fdtable", "max_fds", 4),
    ("GOHOOK_KO_FDT_FD", "fdtable", "fd", 8),
    ("GOHOOK_KO_FILE_MODE", "file", "f_mode", 4),
    ("GOHOOK_KO_FILE_INODE", "file", "f_inode", 8),
    ("GOHOOK_KO_FILE_DENTRY", "file", "f_path.dentry", 8),
    ("GOHOOK_KO_DENTRY_NAME", "dentry", "d_name.name", 8),
    ("GOHOOK_KO_INODE_SB", "inode", "i_sb", 8),
    ("GOHOOK_KO_SB_MAGIC", "super_block", "s_magic", 8),
    # the sentinel: is the current system call an i386 one (TS_COMPAT in the task's thread_info.status)?
    ("GOHOOK_KO_TASK_TI_STATUS", "task_struct", "thread_info.status", 4),
    # action error (lib/deny.h): does the thread block SIGSYS (the call would run before the signal)?
    ("GOHOOK_KO_TASK_BLOCKED", "task_struct", "blocked", 8),
    # ... and is the thread traced by gohook's tracer (ptrace flags, the tracer task, its thread group)?
    ("GOHOOK_KO_TASK_PTRACE", "task_struct", "ptrace", 4),
    ("GOHOOK_KO_TASK_PARENT", "task_struct", "parent", 8),
    ("GOHOOK_KO_TASK_TGID", "task_struct", "tgid", 4),
)


def resolve_defines(btf: Btf, fields: tuple[tuple[str, str, str, int], ...] = FILEOPEN_FIELDS) -> dict[str, int]:
    """define name -> byte offset for fields, each checked to have the size the C code reads."""
    out = {}
    for define, struct_name, chain, size in fields:
        m = btf.member(struct_name, chain)
        if m.size != size:
            raise BtfError(f"struct {struct_name}.{chain} is {m.size} bytes here; the program reads {size}")
        out[define] = m.offset
    return out


@lru_cache(maxsize=1)
def kernel_offsets(path: str = str(VMLINUX)) -> tuple[tuple[str, int], ...]:
    """The running kernel's FILEOPEN_FIELDS offsets (read once per process). BtfError when unreadable."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BtfError(f"cannot read the kernel's BTF at {path}: {exc.strerror or exc}") from exc
    return tuple(resolve_defines(Btf(data)).items())
