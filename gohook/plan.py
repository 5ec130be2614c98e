"""The enforcement plan: everything the BPF side needs, as plain data.

Pipeline stage 2 of: binary -> **plan** -> BPF -> attach -> events -> views.
A plan is built from a GoBinary, the capability catalog and a policy, and is
the only input of the BPF loader. It is pure data (frozen dataclasses), so it
can be built, printed and tested without a kernel.

Addresses are static virtual addresses of the binary (as in the ELF file).
At run time a PIE binary is loaded at a bias; the BPF program computes it per
hit as `ctx->ip - hook.probe` and subtracts it from every return address.

Module ids: 0 means "standard library / runtime / trusted" (transparent to
attribution); 1..N index `EnforcementPlan.modules`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Action(enum.Enum):
    KILL = "kill"
    AUDIT = "audit"


class Mode(enum.Enum):
    ENFORCE = "enforce"  # the policy's action applies to violations
    AUDIT = "audit"  # violations are only recorded
    LEARN = "learn"  # every attributed call is recorded; nothing is denied


class Attribution(enum.Enum):
    CALLER = "caller"  # the nearest non-std logical frame decides
    STACK = "stack"  # every non-std module on the logical stack must hold the capability


class ArgKind(enum.IntEnum):
    """How the BPF program reads a hook's interesting argument (Go amd64 register ABI)."""

    NONE = 0
    STRING = 1  # Go string in two registers: (ptr, len)
    CSTRING = 2  # NUL-terminated bytes at a pointer register
    STRING_SLICE0 = 3  # first element of a []string whose (ptr, len) are in two registers
    INT = 4  # an integer register, reported as decimal
    SOCKADDR = 5  # kernel struct sockaddr at (ptr, len) in two registers: family, address and port


# Register numbers shared with bpf/gohook.h (GO_REG_*): Go's integer argument order.
GO_ARG_REGS = ("rax", "rbx", "rcx", "rdi", "rsi", "r8", "r9", "r10", "r11")


@dataclass(frozen=True, slots=True)
class ArgRead:
    kind: ArgKind = ArgKind.NONE
    regs: tuple[int, ...] = ()  # indexes into GO_ARG_REGS


@dataclass(frozen=True, slots=True)
class FlagRule:
    """Capability decided by an integer argument: `cap_if_set` when reg & mask != 0."""

    reg: int  # index into GO_ARG_REGS
    mask: int
    cap_if_set: int  # capability bit index
    cap_if_clear: int


@dataclass(frozen=True, slots=True)
class HookPoint:
    """One uprobe: where it goes and what a hit means."""

    hook_id: int
    function: str  # pclntab name of the hooked function
    entry: int  # static vaddr of the function entry
    probe: int  # static vaddr of the instruction the uprobe is placed on
    file_offset: int  # file offset of `probe` (what the kernel wants)
    capability: int  # capability bit index (ignored when `rule` is set)
    arg: ArgRead = ArgRead()
    rule: FlagRule | None = None
    direct_caller_only: bool = False  # counts only when the frame right above is non-std


@dataclass(frozen=True, slots=True)
class Range:
    """[start, end) of text whose return addresses attribute to `modules` (innermost first)."""

    start: int
    end: int
    modules: tuple[int, ...]


@dataclass(frozen=True)
class EnforcementPlan:
    binary: str
    pie: bool
    text_start: int
    text_end: int
    capabilities: tuple[str, ...]  # bit index -> capability name
    modules: tuple[str, ...]  # module id - 1 -> module path (id 0 = std)
    ranges: tuple[Range, ...]
    hooks: tuple[HookPoint, ...]
    allowed: dict[int, int] = field(default_factory=dict)  # module id -> capability bitmask
    default_mask: int = 0  # capabilities of modules not listed in the policy
    action: Action = Action.KILL
    mode: Mode = Mode.ENFORCE
    attribution: Attribution = Attribution.CALLER
    deny_unattributed: bool = False
    goexit: tuple[int, int] = (0, 0)  # [entry, end) of runtime.goexit: the stack walk stops there
    goid_offset: int = 0  # offset of goid in runtime.g (0 = unknown)

    def module_name(self, module_id: int) -> str:
        return "std" if module_id == 0 else self.modules[module_id - 1]
