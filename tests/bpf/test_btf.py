"""gohook.bpf.btf: kernel struct offsets from BTF, checked against pahole, and malformed BTF.

The oracle is pahole (Debian package dwarves, installed by scripts/setup.sh), which reads the same
/sys/kernel/btf/vmlinux with its own decoder (libbpf) and prints every member's byte offset and size. The
members are the ones lib/fileopen.h reads, plus members inside anonymous unions and structs (file.f_path,
qstr.name, qstr.len). Malformed bytes are built here, record by record, from the layout table of the
module's docstring, and each must raise BtfError (never IndexError or struct.error).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from gohook.bpf.btf import FILEOPEN_FIELDS, VMLINUX, Btf, BtfError, Member, kernel_offsets, resolve_defines
from gohook.errors import GohookError

# --- the running kernel, against pahole ------------------------------------------------------------------

_PAHOLE_MEMBER = r"[\s*]{name};\s*/\*\s*(\d+)\s+(\d+)\s*\*/"


def _pahole(struct_name: str, member: str) -> Member:
    """(offset, size) of member of struct_name as pahole prints it (offsets from the start of the struct)."""
    if shutil.which("pahole") is None:
        pytest.skip("pahole is not installed (scripts/setup.sh installs dwarves)")
    out = subprocess.run(["pahole", "-C", struct_name, str(VMLINUX)], capture_output=True, text=True,
                         check=True).stdout
    found = re.findall(_PAHOLE_MEMBER.format(name=re.escape(member)), out)
    assert len(found) == 1, f"pahole: {struct_name}.{member} appears {len(found)} times:\n{out}"
    return Member(int(found[0][0]), int(found[0][1]))


@pytest.fixture(scope="module")
def kernel() -> Btf:
    if not VMLINUX.exists():
        pytest.skip(f"{VMLINUX}: this kernel has no BTF")
    return Btf(VMLINUX.read_bytes())


MEMBERS = [
    ("file", "f_mode"), ("file", "f_inode"), ("file", "f_path"), ("file", "f_pos"), ("path", "dentry"),
    ("dentry", "d_name"), ("qstr", "name"), ("qstr", "len"), ("inode", "i_sb"), ("inode", "i_mode"),
    ("super_block", "s_magic"), ("task_struct", "files"), ("task_struct", "tgid"), ("files_struct", "fdt"),
    ("fdtable", "max_fds"), ("fdtable", "fd"),
]


@pytest.mark.parametrize(("struct_name", "member"), MEMBERS, ids=[f"{s}.{m}" for s, m in MEMBERS])
def test_member_offsets_match_pahole(kernel: Btf, struct_name: str, member: str) -> None:
    assert kernel.member(struct_name, member) == _pahole(struct_name, member)


def test_chains_add_up_as_pahole_says(kernel: Btf) -> None:
    """file.f_path.dentry = file.f_path + path.dentry; dentry.d_name.name = dentry.d_name + qstr.name."""
    for outer, first, inner_struct, second in (("file", "f_path", "path", "dentry"),
                                               ("dentry", "d_name", "qstr", "name")):
        want = _pahole(outer, first).offset + _pahole(inner_struct, second).offset
        got = kernel.member(outer, f"{first}.{second}")
        assert got == Member(want, _pahole(inner_struct, second).size)


def test_every_fileopen_define_is_resolved_with_the_size_the_program_reads(kernel: Btf) -> None:
    defines = resolve_defines(kernel)
    assert set(defines) == {d for d, *_ in FILEOPEN_FIELDS}
    assert dict(kernel_offsets()) == defines
    # f_path is in an anonymous union on 6.18: a parser that skipped anonymous members would not find it
    assert defines["GOHOOK_KO_FILE_DENTRY"] == _pahole("file", "f_path").offset + _pahole("path", "dentry").offset


def test_unknown_members_and_structs_are_btf_errors(kernel: Btf) -> None:
    with pytest.raises(BtfError, match="no member 'nosuch'"):
        kernel.member("file", "f_path.nosuch")
    with pytest.raises(BtfError, match="no struct or union"):
        kernel.member("no_such_struct_here", "x")
    with pytest.raises(BtfError, match="not a struct"):
        kernel.member("file", "f_mode.x")  # f_mode is an integer
    with pytest.raises(BtfError, match="is 4 bytes here"):
        resolve_defines(kernel, (("GOHOOK_KO_X", "file", "f_mode", 8),))


def test_unreadable_btf_is_a_btf_error(tmp_path: Path) -> None:
    with pytest.raises(BtfError, match="cannot read"):
        kernel_offsets.__wrapped__(str(tmp_path / "missing"))
    assert issubclass(BtfError, GohookError)


# --- synthetic BTF: the layout table, record by record ---------------------------------------------------


class Blob:
    """A little-endian BTF blob built from records (kind, name, vlen, kind_flag, size_or_type, extra bytes)."""

    def __init__(self) -> None:
        self.strings = b"\0"
        self.types = b""

    def name(self, s: str) -> int:
        if not s:
            return 0
        off = len(self.strings)
        self.strings += s.encode() + b"\0"
        return off

    def add(self, kind: int, name: str, vlen: int, size_or_type: int, extra: bytes = b"", flag: bool = False) -> None:
        info = (int(flag) << 31) | (kind << 24) | vlen
        self.types += struct.pack("<III", self.name(name), info, size_or_type) + extra

    def member(self, name: str, type_id: int, offset: int) -> bytes:
        return struct.pack("<III", self.name(name), type_id, offset)

    def bytes(self, *, magic: int = 0xEB9F, version: int = 1) -> bytes:
        header = struct.pack("<HBBIIIII", magic, version, 0, 24, 0, len(self.types), len(self.types),
                             len(self.strings))
        return header + self.types + self.strings


def _sample() -> Blob:
    """1 int (4 bytes); 2 ptr to 1; 3 typedef u32 = 1; 4 anonymous union {int a; ptr b}; 5 struct s {
    u32 x @0; union (anonymous) @64 bits; int bf:3 @96 (bitfield, kind_flag); int y @128}; 6 fwd s."""
    b = Blob()
    b.add(1, "int", 0, 4, struct.pack("<I", 32))
    b.add(2, "", 0, 1)
    b.add(8, "u32", 0, 1)
    b.add(5, "", 2, 8, b.member("a", 1, 0) + b.member("b", 2, 0))
    b.add(4, "s", 4, 24, b.member("x", 3, 0) + b.member("", 4, 64) + b.member("bf", 1, (3 << 24) | 96)
          + b.member("y", 1, 128), flag=True)
    b.add(7, "s", 0, 0)
    return b


def test_synthetic_blob_resolves_anonymous_members_typedefs_and_sizes() -> None:
    btf = Btf(_sample().bytes())
    assert btf.member("s", "x") == Member(0, 4)  # through the typedef
    assert btf.member("s", "a") == Member(8, 4)  # inside the anonymous union at byte 8
    assert btf.member("s", "b") == Member(8, 8)  # a pointer: 8 bytes
    assert btf.member("s", "y") == Member(16, 4)
    with pytest.raises(BtfError, match="bitfield"):
        btf.member("s", "bf")


@pytest.mark.parametrize(("what", "data", "match"), [
    ("empty", b"", "truncated"),
    ("truncated header", _sample().bytes()[:20], "truncated"),
    ("bad magic", _sample().bytes(magic=0x1234), "bad BTF magic"),
    ("version 2", _sample().bytes(version=2), "version 2"),
    ("sections past the end", _sample().bytes()[:-4], "run past"),
], ids=["empty", "truncated-header", "bad-magic", "version-2", "past-the-end"])
def test_malformed_headers_are_btf_errors(what: str, data: bytes, match: str) -> None:
    with pytest.raises(BtfError, match=match):
        Btf(data)


def test_type_index_out_of_range_is_a_btf_error() -> None:
    b = Blob()
    b.add(4, "t", 1, 8, b.member("m", 99, 0))  # member of type 99: there is no such type
    btf = Btf(b.bytes())
    with pytest.raises(BtfError, match="type id 99 is out of range"):
        btf.member("t", "m")
    with pytest.raises(BtfError, match="type id 0 is out of range"):
        btf.type(0)


def test_truncated_records_unknown_kinds_and_bad_strings_are_btf_errors() -> None:
    b = _sample()
    b.types = b.types[:-6]  # the last record cut short
    with pytest.raises(BtfError, match="truncated|runs past"):
        Btf(b.bytes())
    b = Blob()
    b.add(4, "t", 3, 8, b.member("m", 1, 0))  # says 3 members, holds 1
    with pytest.raises(BtfError, match="runs past the type section"):
        Btf(b.bytes())
    b = Blob()
    b.add(25, "k", 0, 0)
    with pytest.raises(BtfError, match="unknown kind 25"):
        Btf(b.bytes())
    b = Blob()
    b.types = struct.pack("<III", 1000, 1 << 24, 4) + struct.pack("<I", 32)  # name offset past the strings
    with pytest.raises(BtfError, match="string offset 1000"):
        Btf(b.bytes())
    b = Blob()
    b.add(1, "int", 0, 4, struct.pack("<I", 32))
    b.strings = b.strings[:-1]  # "int" without its NUL
    with pytest.raises(BtfError, match="not NUL-terminated"):
        Btf(b.bytes())


def test_typedef_loops_are_btf_errors() -> None:
    b = Blob()
    b.add(8, "loop", 0, 1)  # typedef loop = loop
    b.add(4, "t", 1, 8, b.member("m", 1, 0))
    btf = Btf(b.bytes())
    with pytest.raises(BtfError, match="deeper"):
        btf.member("t", "m")
