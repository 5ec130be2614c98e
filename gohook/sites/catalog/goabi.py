"""Go's amd64 register ABI, as far as the catalog needs it: where each argument and result word is.

The catalog records, for every hooked function, the location of the arguments the BPF program reads
(a register of ABIInternal, or a stack slot of an ABI0 assembly function). Those locations are facts of
the function's Go signature, so the loader derives them again here from the declaration and rejects an
entry whose recorded locations disagree: a wrong register in the data fails at load time instead of as a
wrong read in the kernel.

The results matter for a denial that returns at once (`action: error`, issue 15): the hook sets the
result registers, pops the return address and resumes the caller, without running the function. Go's
ABIInternal (GOROOT/src/cmd/compile/abi-internal.md, "Function call argument and result passing")
assigns them as follows, and :func:`parse_results` follows it:

* After the receiver and the arguments, the integer register index is reset to 0: results use the
  same sequence RAX, RBX, RCX, RDI, RSI, R8, R9, R10, R11 from the start, whatever the arguments took.
* Each result is split into words as an argument is (a string 2: ptr, len; a slice 3: ptr, len, cap;
  an interface, `error` included, 2: itab or type word, data word; a pointer or integer 1) and takes
  consecutive registers. A result that does not fit entirely in the registers left goes on the stack,
  and later results may still take registers.
* Stack-assigned results live in the caller's frame: at entry, above the return address at [RSP],
  come the stack-assigned receiver and arguments (each aligned to its type), a pointer alignment, then
  the stack-assigned results. Only register-assigned *arguments* get a spill area (above the results,
  uninitialized at the call and used only by the callee's stack-growth path); results have none, and
  the callee must store every result register and stack result before it returns. So a denial that
  returns from the entry needs nothing of the spill area, but a stack result would be a write into the
  caller's memory: the catalog refuses a deny plan that needs one (only `kill` is allowed there).
* R14 (the current goroutine) and X15 (zero) are fixed registers of ABIInternal; returning from the
  entry leaves both as the caller set them, which is what the caller expects.

ABI0 (assembly) functions take arguments and results on the stack: arguments from offset 8, then,
pointer-aligned, the results. No register can return one of their results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "ERROR_TYPES",
    "INT_REGISTERS",
    "Location",
    "Param",
    "Register",
    "Result",
    "integer_bits",
    "parse_results",
    "parse_signature",
]


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
    """Where one machine word of an argument or result is at function entry.

    Exactly one of ``register`` (ABIInternal) and ``stack_offset`` (bytes
    above the stack pointer at entry; 0 is the return address, so the first
    stack word is at 8) is set.
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
    **dict.fromkeys(("int", "uint", "int64", "uint64", "uintptr", "Signal", "syscall.Signal", "Errno",
                     "syscall.Errno"), 8),
    **dict.fromkeys(("int32", "uint32", "_Socklen"), 4),
    **dict.fromkeys(("int16", "uint16"), 2),
    **dict.fromkeys(("int8", "uint8", "byte", "bool"), 1),
}
_UNSIGNED = frozenset({"uint", "uint64", "uintptr", "uint32", "_Socklen", "uint16", "uint8", "byte"})
#: Result types that report an error: the `error` interface (2 words) and syscall.Errno (1 word, the
#: number itself: syscall.Syscall and friends return it bare).
ERROR_TYPES = frozenset({"error", "Errno", "syscall.Errno"})


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


def integer_bits(typ: str) -> tuple[int, bool] | None:
    """(bits, signed) of an integer type of the ABI table ("int" -> (64, True)); None for any other type
    (bool, pointers, strings, errors: syscall.Errno is an error here)."""
    if typ not in _SCALARS or typ == "bool" or typ in ERROR_TYPES:
        return None
    return 8 * _SCALARS[typ], typ not in _UNSIGNED


def _size_align(typ: str) -> tuple[int, int]:
    """(size, alignment) in bytes of a Go type in memory (a stack field)."""
    words, first = _type_words(typ)
    return (8 * words, 8) if words > 1 else (first, first)


def _align(offset: int, alignment: int) -> int:
    return (offset + alignment - 1) // alignment * alignment


@dataclass(frozen=True)
class Param:
    """One parameter of a parsed signature (the receiver counts as one)."""

    name: str
    type: str
    words: tuple[Location | None, ...]  # None: passed on the stack in ABIInternal (not supported)


@dataclass(frozen=True)
class Result:
    """One result of a parsed signature.

    ``name`` is empty for an unnamed result (``(int, error)``); ``index`` is
    its position. ``words`` are registers, or stack slots (at entry) when the
    result did not fit in the registers left (ABIInternal) or the function
    is ABI0.
    """

    index: int
    name: str
    type: str
    words: tuple[Location, ...]

    @property
    def label(self) -> str:
        """The name, or "#index" for an unnamed result."""
        return self.name or f"#{self.index}"

    @property
    def in_registers(self) -> bool:
        """True when every word of the result is returned in a register."""
        return all(w.register is not None for w in self.words)

    @property
    def is_error(self) -> bool:
        """True for an `error` or syscall.Errno result."""
        return self.type in ERROR_TYPES

    @property
    def is_integer(self) -> bool:
        """True for an integer result (int, uintptr, int32, ...; not bool, not syscall.Errno)."""
        return integer_bits(self.type) is not None


_SIGNATURE = re.compile(r"^func\s*(?:\((?P<recv>[^()]*)\)\s*)?(?P<name>\w+)\s*\((?P<params>[^()]*)\)")


def _fields(text: str, signature: str, what: str, unnamed_ok: bool) -> list[tuple[str, str]]:
    """(name, type) of each field of a Go parameter or result list ("a, b int, s string" / "int, error").

    A list is all named or all unnamed (Go's rule); names of an unnamed list are "".
    """
    items = [p.strip() for p in text.split(",") if p.strip()]
    if unnamed_ok and items and all(len(item.split()) == 1 for item in items):
        return [("", item) for item in items]
    out: list[tuple[str, str]] = []
    pending: list[str] = []
    for item in items:
        parts = item.split(None, 1)
        if len(parts) == 1:
            pending.append(parts[0])
            continue
        for name in (*pending, parts[0]):
            out.append((name, parts[1].strip()))
        pending = []
    if pending:
        raise ValueError(f"{what} {pending} have no type in {signature!r}")
    return out


def _declaration(signature: str) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]]]:
    """(name, receiver + parameters, results) of a Go declaration, as (name, type) pairs."""
    text = signature.strip()
    m = _SIGNATURE.match(text)
    if not m:
        raise ValueError(f"cannot parse signature {signature!r}")
    params: list[tuple[str, str]] = []
    if m.group("recv"):
        parts = m.group("recv").split()
        if len(parts) != 2:
            raise ValueError(f"receiver {m.group('recv')!r} must be 'name Type'")
        params.append((parts[0], parts[1]))
    params += _fields(m.group("params"), signature, "parameters", unnamed_ok=False)
    rest = text[m.end():].strip()
    if rest.startswith("{"):  # a declaration copied with its body
        rest = ""
    if rest.startswith("("):
        if not rest.endswith(")") or "(" in rest[1:-1] or ")" in rest[1:-1]:
            raise ValueError(f"cannot parse the results {rest!r} of {signature!r}")
        results = _fields(rest[1:-1], signature, "results", unnamed_ok=True)
    elif rest:
        if len(rest.split()) != 1:
            raise ValueError(f"cannot parse the result {rest!r} of {signature!r} (several results need parentheses)")
        results = [("", rest)]
    else:
        results = []
    return m.group("name"), params, results


def parse_signature(signature: str, abi: str) -> tuple[str, tuple[Param, ...]]:
    """Parse a Go declaration and assign its parameters to locations.

    Returns (function name, params). ABIInternal assigns integer words to
    :data:`INT_REGISTERS` in order (receiver first); a parameter that does
    not fit entirely goes on the stack and later ones may still use
    registers, as in Go's abi-internal spec. ABI0 (assembly) puts every
    parameter on the stack from offset 8, each aligned to its size.
    """
    name, raw, _results = _declaration(signature)
    params: list[Param] = []
    next_reg = 0
    stack = 8
    for pname, typ in raw:
        words, first_size = _type_words(typ)
        if abi == "abi0":
            align = first_size if words == 1 else 8
            stack = (stack + align - 1) // align * align
            locs = tuple(Location(stack_offset=stack + 8 * i) for i in range(words))
            stack += 8 * words if words > 1 else first_size
            params.append(Param(pname, typ, locs))
        elif next_reg + words <= len(INT_REGISTERS):
            locs = tuple(Location(register=INT_REGISTERS[next_reg + i]) for i in range(words))
            next_reg += words
            params.append(Param(pname, typ, locs))
        else:
            params.append(Param(pname, typ, (None,) * words))
    return name, tuple(params)


def parse_results(signature: str, abi: str) -> tuple[Result, ...]:
    """Parse a Go declaration's results and assign them to locations, as Go's ABIInternal does.

    ABIInternal: the integer register index restarts at 0 for the results
    (independently of the parameters); a result that does not fit entirely
    in the registers left is stack-assigned and later results may still take
    registers. Its stack slot (offset at entry) follows the stack-assigned
    receiver and arguments, pointer-aligned, each field aligned to its type.
    ABI0: every result on the stack after the arguments, pointer-aligned.
    """
    _name, params, results = _declaration(signature)
    # The stack sequence: stack-assigned parameters (every one, in ABI0), then the results.
    stack = 0
    next_reg = 0
    for _pname, typ in params:
        words, _first = _type_words(typ)
        if abi != "abi0" and next_reg + words <= len(INT_REGISTERS):
            next_reg += words
            continue
        size, alignment = _size_align(typ)
        stack = _align(stack, alignment) + size
    stack = _align(stack, 8)
    out: list[Result] = []
    next_reg = 0  # results start over at RAX
    for index, (rname, typ) in enumerate(results):
        words, _first = _type_words(typ)
        if abi != "abi0" and next_reg + words <= len(INT_REGISTERS):
            locs = tuple(Location(register=INT_REGISTERS[next_reg + i]) for i in range(words))
            next_reg += words
        else:
            size, alignment = _size_align(typ)
            stack = _align(stack, alignment)
            locs = tuple(Location(stack_offset=8 + stack + 8 * i) for i in range(words))
            stack += size
        out.append(Result(index, rname, typ, locs))
    return tuple(out)
