"""gohook.static.arguments: string constants at call sites, read from hand-assembled x86-64 code.

The real-binary checks (every installed toolchain, literals taken from Go
source) are in tests/policy/test_generate.py; here the look-back rules are
pinned on code whose every byte is written out: a literal is the last
`lea reg, [rip+X]` into read-only data and `mov reg, imm` before the call,
within the basic block.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, cast

import pytest

from gohook.static.arguments import ConstantReader, resolves_nothing

TEXT = 0x401000
RODATA = 0x500000
DATA = 0x600000


@dataclass(frozen=True)
class _Section:
    writable: bool
    executable: bool


class _Image:
    """Code at TEXT, "USER" in read-only data at RODATA, "HOME" in writable data at DATA."""

    def __init__(self, code: bytes) -> None:
        self.code = code

    def read(self, vaddr: int, size: int) -> bytes:
        for base, blob in ((TEXT, self.code), (RODATA, b"USER...."), (DATA, b"HOME....")):
            if base <= vaddr and vaddr + size <= base + len(blob):
                return blob[vaddr - base:vaddr - base + size]
        raise AssertionError(f"read outside the fake image: {vaddr:#x}+{size}")

    def section_at(self, vaddr: int) -> _Section | None:
        if RODATA <= vaddr < RODATA + 8:
            return _Section(False, False)
        if DATA <= vaddr < DATA + 8:
            return _Section(True, False)
        return None


@dataclass(frozen=True)
class _Function:
    entry: int
    end: int


class _Asm:
    """A few x86-64 encodings, placed from TEXT on."""

    def __init__(self) -> None:
        self.code = bytearray()

    @property
    def here(self) -> int:
        return TEXT + len(self.code)

    def lea_rax(self, target: int) -> None:  # lea rax, [rip + disp32]
        self.code += b"\x48\x8d\x05" + struct.pack("<i", target - (self.here + 7))

    def mov_ebx(self, imm: int) -> None:  # mov ebx, imm32
        self.code += b"\xbb" + struct.pack("<I", imm)

    def xor_ebx(self) -> None:
        self.code += b"\x31\xdb"

    def mov_rax_rcx(self) -> None:
        self.code += b"\x48\x89\xc8"

    def je(self, target: int) -> None:  # je rel8
        self.code += b"\x74" + struct.pack("<b", target - (self.here + 2))

    def nop(self) -> None:
        self.code += b"\x90"

    def call(self) -> int:  # call rel32 to itself; returns the call's address
        site = self.here
        self.code += b"\xe8" + struct.pack("<i", -5)
        return site

    def ret(self) -> None:
        self.code += b"\xc3"


def _read(asm: _Asm, site: int) -> str | None:
    asm.ret()
    binary = cast(Any, type("B", (), {"image": _Image(bytes(asm.code))})())
    f = cast(Any, _Function(TEXT, TEXT + len(asm.code)))
    return ConstantReader(binary).string(f, site, "rax", "rbx")


def test_lea_into_rodata_and_a_length_make_a_literal() -> None:
    asm = _Asm()
    asm.lea_rax(RODATA)
    asm.mov_ebx(4)
    assert _read(asm, asm.call()) == "USER"


def test_the_last_write_decides_and_a_zero_length_is_the_empty_string() -> None:
    asm = _Asm()
    asm.mov_ebx(7)
    asm.lea_rax(RODATA)
    asm.mov_ebx(2)
    assert _read(asm, asm.call()) == "US"
    asm = _Asm()
    asm.mov_rax_rcx()
    asm.xor_ebx()
    assert _read(asm, asm.call()) == ""


def test_a_register_copy_is_not_a_constant() -> None:
    asm = _Asm()
    asm.lea_rax(RODATA)
    asm.mov_rax_rcx()  # rax = rcx: computed elsewhere
    asm.mov_ebx(4)
    assert _read(asm, asm.call()) is None


def test_writable_data_is_not_a_literal() -> None:
    asm = _Asm()
    asm.lea_rax(DATA)  # a package-level variable's bytes can change at run time
    asm.mov_ebx(4)
    assert _read(asm, asm.call()) is None


def test_a_jump_landing_between_the_load_and_the_call_stops_the_look_back() -> None:
    asm = _Asm()
    branch = asm.here
    asm.code += b"\x74\x00"  # je +0, patched below to land after the lea
    asm.lea_rax(RODATA)
    target = asm.here
    asm.mov_ebx(4)
    site = asm.call()
    asm.code[branch - TEXT + 1] = target - (branch + 2)
    assert _read(asm, site) is None  # on the jump's path rax is whatever it was
    # the same code with the jump landing before the lea: the literal holds on both paths
    asm = _Asm()
    before = asm.here
    asm.nop()
    asm.lea_rax(RODATA)
    asm.mov_ebx(4)
    site = asm.call()
    asm.je(before)
    assert _read(asm, site) == "USER"


def test_a_branch_between_the_load_and_the_call_stops_the_look_back() -> None:
    asm = _Asm()
    asm.lea_rax(RODATA)
    asm.je(TEXT)
    asm.mov_ebx(4)
    assert _read(asm, asm.call()) is None


@pytest.mark.parametrize(("network", "address", "expected"), [
    ("tcp", "127.0.0.1:4317", True),
    ("udp", "[::1]:53", True),
    ("tcp", ":8080", True),
    (None, "10.0.0.1:443", True),
    ("unix", "/run/x.sock", True),
    ("tcp", "localhost:80", False),  # a name: the resolver dials its servers
    ("tcp", "127.0.0.1:http", False),  # a named port: looked up
    ("ip4:icmp", "127.0.0.1", False),
])
def test_resolves_nothing(network: str | None, address: str, expected: bool) -> None:
    assert resolves_nothing(network, address) is expected
