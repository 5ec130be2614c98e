"""Go's amd64 register ABI, as far as the catalog needs it: where each argument word is at function entry.

The catalog records, for every hooked function, the location of the arguments the BPF program reads
(a register of ABIInternal, or a stack slot of an ABI0 assembly function). Those locations are facts of
the function's Go signature, so the loader derives them again here from the declaration and rejects an
entry whose recorded locations disagree: a wrong register in the data fails at load time instead of as a
wrong read in the kernel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

__all__ = ["INT_REGISTERS", "Location", "Param", "Register", "parse_signature"]


class Register(Enum):
    """amd64 integer argument registers of Go's ABIInternal, in assignment order.

    ``value`` is the name used in the catalog; :attr:`pt_regs` the field of
    the kernel's ``struct pt_regs`` (what a uprobe program reads).
    """

    RAX = "rax"
    RBX = "rbx"
    RCX = "rcx"
    RDI = "rdi"
    RSI = "rsi"
    R8 = "r8"
    R9 = "r9"
    R10 = "r10"
    R11 = "r11"

    @property
    def pt_regs(self) -> str:
        """Field name in struct pt_regs: "ax", "bx", ..., "r8"."""
        return self.value[1:] if self.value in ("rax", "rbx", "rcx", "rdi", "rsi") else self.value


INT_REGISTERS: tuple[Register, ...] = tuple(Register)


@dataclass(frozen=True)
class Location:
    """Where one machine word of an argument is at function entry.

    Exactly one of ``register`` (ABIInternal) and ``stack_offset`` (ABI0:
    bytes above the stack pointer; 0 is the return address, so the first
    argument is at 8) is set.
    """

    register: Register | None = None
    stack_offset: int | None = None

    @classmethod
    def parse(cls, text: str) -> Location:
        """Parse "rax" ... "r11" or "stack+N"; ValueError otherwise."""
        text = str(text).strip().lower()
        if text.startswith("stack+"):
            off = int(text.removeprefix("stack+"), 0)
            if off < 8 or off % 8:
                raise ValueError(f"stack slot {text!r} must be a positive multiple of 8")
            return cls(stack_offset=off)
        try:
            return cls(register=Register(text))
        except ValueError:
            names = ", ".join(r.value for r in Register)
            raise ValueError(f"unknown location {text!r} (expected one of {names}, or stack+N)") from None

    def __str__(self) -> str:
        return self.register.value if self.register else f"stack+{self.stack_offset}"


# Words each Go type occupies in the register ABI, for the signature check.
_INTERFACES = frozenset({"context.Context", "os.Signal", "Sockaddr", "syscall.Sockaddr", "error", "any", "interface{}"})
_SCALARS = {
    **dict.fromkeys(("int", "uint", "int64", "uint64", "uintptr", "Signal", "syscall.Signal", "Errno"), 8),
    **dict.fromkeys(("int32", "uint32", "_Socklen"), 4),
    **dict.fromkeys(("int16", "uint16"), 2),
    **dict.fromkeys(("int8", "uint8", "byte", "bool"), 1),
}


def _type_words(typ: str) -> tuple[int, int]:
    """(words, size of the first word) of a Go type in the amd64 ABI; ValueError if unknown."""
    if typ == "string":
        return 2, 8
    if typ.startswith("[]"):
        return 3, 8
    if typ in _INTERFACES:
        return 2, 8
    if typ.startswith("*") or typ in ("unsafe.Pointer",) or typ.startswith("func("):
        return 1, 8
    if typ in _SCALARS:
        return 1, _SCALARS[typ]
    raise ValueError(f"type {typ!r} is not in the catalog's ABI table")


@dataclass(frozen=True)
class Param:
    """One parameter of a parsed signature (the receiver counts as one)."""

    name: str
    type: str
    words: tuple[Location | None, ...]  # None: passed on the stack in ABIInternal (not supported)


_SIGNATURE = re.compile(r"^func\s*(?:\((?P<recv>[^()]*)\)\s*)?(?P<name>\w+)\s*\((?P<params>[^()]*)\)")


def parse_signature(signature: str, abi: str) -> tuple[str, tuple[Param, ...]]:
    """Parse a Go declaration and assign its parameters to locations.

    Returns (function name, params). ABIInternal assigns integer words to
    :data:`INT_REGISTERS` in order (receiver first); a parameter that does
    not fit entirely goes on the stack and later ones may still use
    registers, as in Go's abi-internal spec. ABI0 (assembly) puts every
    parameter on the stack from offset 8, each aligned to its size.
    """
    m = _SIGNATURE.match(signature.strip())
    if not m:
        raise ValueError(f"cannot parse signature {signature!r}")
    raw: list[tuple[str, str]] = []
    if m.group("recv"):
        parts = m.group("recv").split()
        if len(parts) != 2:
            raise ValueError(f"receiver {m.group('recv')!r} must be 'name Type'")
        raw.append((parts[0], parts[1]))
    pending: list[str] = []
    for item in (p.strip() for p in m.group("params").split(",")):
        if not item:
            continue
        parts = item.split(None, 1)
        if len(parts) == 1:
            pending.append(parts[0])
            continue
        for name in (*pending, parts[0]):
            raw.append((name, parts[1].strip()))
        pending = []
    if pending:
        raise ValueError(f"parameters {pending} have no type in {signature!r}")
    params: list[Param] = []
    next_reg = 0
    stack = 8
    for name, typ in raw:
        words, first_size = _type_words(typ)
        if abi == "abi0":
            align = first_size if words == 1 else 8
            stack = (stack + align - 1) // align * align
            locs = tuple(Location(stack_offset=stack + 8 * i) for i in range(words))
            stack += 8 * words if words > 1 else first_size
            params.append(Param(name, typ, locs))
        elif next_reg + words <= len(INT_REGISTERS):
            locs = tuple(Location(register=INT_REGISTERS[next_reg + i]) for i in range(words))
            next_reg += words
            params.append(Param(name, typ, locs))
        else:
            params.append(Param(name, typ, (None,) * words))
    return m.group("name"), tuple(params)
