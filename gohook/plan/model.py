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

from dataclasses import dataclass, field

from gohook.attribution.ranges import Range
from gohook.bpf.abi import ArgClass, ArgKind, HookKind, Judge, RuleTestKind
from gohook.policy.format import Action, Attribution, Mode
from gohook.policy.patterns import Pattern


@dataclass(frozen=True, slots=True)
class ArgRead:
    kind: ArgKind = ArgKind.NONE
    regs: tuple[int, ...] = ()  # indexes into gohook.bpf.abi.GO_ARG_REGS


@dataclass(frozen=True, slots=True)
class FlagRule:
    """Capability decided by an integer argument: `cap_if_set` when reg & mask != 0."""

    reg: int  # index into gohook.bpf.abi.GO_ARG_REGS
    mask: int
    cap_if_set: int  # capability bit index
    cap_if_clear: int  # capability bit index; -1: no capability (the call is not counted)


@dataclass(frozen=True, slots=True)
class DestinationRule(FlagRule):
    """A send's destination (struct sockaddr * in `reg`, its length in `len_reg`): `cap_if_set` when given,
    except the kernel over netlink (AF_NETLINK, pid 0, no groups, length 12); none otherwise (HOOK_DEST)."""

    len_reg: int = -1  # index into gohook.bpf.abi.GO_ARG_REGS


@dataclass(frozen=True, slots=True)
class ValueRule:
    """Capability decided by the value of a stack argument (an ABI0 function's syscall number).

    stack_offset: bytes above RSP at the function entry (8: the first argument); at a call-site probe,
    where the return address is not pushed yet, the slot is 8 bytes lower (render.hook_macro).
    cases: (value, capability bit index); default: the capability of other values, -1 when they are
    not capability calls at all.
    """

    stack_offset: int
    cases: tuple[tuple[int, int], ...]
    default: int = -1


@dataclass(frozen=True, slots=True)
class ArgScope:
    """How an argument-scoped grant is checked at a hook point (lib/argmatch.h, hook_scopes).

    arg_class: what the reported argument is matched as. dirfd_reg: the register of the directory fd a
    path is relative to (matched only when it is AT_FDCWD); -1: none. second: the (ptr, len) registers of
    a second path the call acts on (rename's new path, a link's target), with its own dirfd register; it
    must be granted too, for each capability of second_caps (bit indexes, at most two).
    """

    arg_class: ArgClass
    dirfd_reg: int = -1
    second: tuple[int, int] | None = None
    second_dirfd_reg: int = -1
    second_caps: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ArgPattern:
    """One argument pattern of the policy in the plan: the module and capability (bit index) it grants.
    Events name it by 1 + its index in EnforcementPlan.arg_patterns."""

    module: int
    capability: int
    pattern: Pattern


@dataclass(frozen=True, slots=True)
class RegisterWrite:
    """One register a denied call returns with (action error): a user_regs_struct field and its value.

    ``value`` is the 64-bit register contents; with ``relocate`` it is a static address in the binary (the
    itab of (syscall.Errno, error), the word holding the errno) to which the tracer adds the load bias.
    """

    register: str  # "rax", "rbx", ... (gohook.sites.catalog.goabi.Register values)
    value: int
    relocate: bool = False


@dataclass(frozen=True, slots=True)
class DenyReturn:
    """How a hook point's function returns a denial under action error (its catalog ReturnPlan, resolved).

    kind: "error" (an error result EPERM, the others their failure values), "unset" (an environment read:
    not set), "empty" (the environment: none), "noop" (returns having done nothing). The return itself is
    the mark's (gohook_denymark: the return address and stack pointer); ``writes`` are the result registers.
    ``text`` shows the results as Go would print them ("fd=-1, err=EPERM"); ``errno`` is EPERM for "error".
    """

    kind: str
    writes: tuple[RegisterWrite, ...]
    errno: int | None = None
    text: str = ""


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
    rule: FlagRule | ValueRule | None = None
    direct_caller_only: bool = False  # counts only when the frame right above is non-std
    # 0: `probe` is on the function's side, registers in the entry state ([RSP] = the return address);
    # N > 0: `probe` is an N-byte call instruction at a call site of the function (gohook.sites.hooks.CallSite),
    # whose return address is probe + N
    call_len: int = 0
    kind: HookKind = HookKind.CALL
    owner: int = 0  # SITE: module id of the code holding the `syscall` instruction
    # RAWCALL (a call site of syscall.Syscall and the like, the number in RAX): how many system-call
    # arguments the function passes after the number (3 or 6; the kernel gets 0 for the others)
    syscall_args: int = 0
    # RAWCALL: where the number and its arguments are. None: in registers (Go's register ABI: a call of the
    # ABIInternal function, RAX = the number). N >= 0: on the stack, the number at [RSP+N] and argument k at
    # [RSP+N+8k], for a call site of an ABI0 function (gohook.static.analysis.Abi0Callees: x/sys/unix's
    # assembly reaches syscall.Syscall through its ABI0 wrapper): 0 at a CALL (the caller stored them at
    # [RSP]), 8 at a JMP (a tail jump from an assembly stub that was itself called: [RSP] is its return address)
    syscall_stack: int | None = None
    # how an argument-scoped grant is matched here; None: it is not (such a grant does not cover the call)
    scope: ArgScope | None = None
    # how a denial returns under action error; None: it cannot (the process is killed instead)
    deny: DenyReturn | None = None


@dataclass(frozen=True, slots=True)
class ProbeAddress:
    """A uprobe location that is not a capability hook (provenance and cgo bookkeeping)."""

    address: int  # static vaddr of the instruction
    file_offset: int


@dataclass(frozen=True)
class Provenance:
    """Goroutine provenance: the creator's module follows the goroutines it creates.

    One probe per goroutine, on the creating thread's system stack where the
    new g is in a register: the `call runtime.runqput` of
    runtime.newproc.func1 (RBX, runqput's second argument; a CALL is emulated
    by the kernel's uprobes), or else runtime.newproc1's RET instructions (RAX,
    its result; a RET is single-stepped out of line, about 10x dearer). The
    frame-pointer chain from there runs through runtime.systemstack into the
    creator's stack; the creator's g is g0.m.curg. The new goroutine gets a
    record only when its child could not find the creator's own record
    through g.parentGoid (Go 1.21+) at a hooked call: most goroutines the
    standard library starts for a module inherit without a map update.
    Offsets of runtime.g fields are per Go release (gohook.sites.goruntime).
    """

    created: tuple[ProbeAddress, ...]
    new_g_register: str  # the pt_regs field holding the new g at the `created` probes: "bx" or "ax"
    gopc_offset: int  # offset of gopc (the go statement's PC) in runtime.g; 0 = unknown
    g_m_offset: int  # offset of m in runtime.g
    m_curg_offset: int  # offset of curg in runtime.m
    parent_goid_offset: int = 0  # offset of parentGoid in runtime.g; 0 = none (before Go 1.21)
    not_inherited: int = 0  # a module id goroutines never inherit (the std:init pseudo-module); 0 = none


@dataclass(frozen=True, slots=True)
class RuleTest:
    """One argument test of a SyscallRule (gohook.sites.syscalls.ArgTest with a capability bit)."""

    kind: RuleTestKind
    arg: int  # argument index 0..5
    capability: int  # bit index when the test holds; -1: the call then needs nothing
    operand: int = 0  # mask (MASK), value (EQ), offset (PTR)


@dataclass(frozen=True, slots=True)
class SyscallRule:
    """The capability of one system call number (gohook.sites.syscalls).

    Three judges use the rules (EnforcementPlan.syscall_rules), each only the rules that name it in
    ``judges``: the raw system-call hooks (HookKind.RAWCALL: syscall.Syscall6(SYS_OPENAT, ...) needs
    `syscall` and files.write) and the `syscall` instructions of module code (HookKind.SITE), the sentinel,
    and the guard tracepoints (Guard). The tests run in order; the first that holds decides, else
    ``capability``. A number without a rule needs no capability of its own.
    """

    nr: int  # x86-64 system call number
    name: str
    capability: int  # bit index when no test holds; -1: none
    tests: tuple[RuleTest, ...] = ()  # at most two
    judges: Judge = Judge.RAW | Judge.SENTINEL
    arg: int = -1  # argument index reported (-1: none)
    arg_kind: ArgKind = ArgKind.NONE  # CSTRING or SOCKADDR
    len_arg: int = -1  # SOCKADDR: argument index of its length


@dataclass(frozen=True)
class Guard:
    """The guard: per-system-call tracepoints (syscalls:sys_enter_NAME) that judge, in every enforced process
    and whatever --sentinel says, the system calls that can disable enforcement or escape it (the rules
    whose judges include Judge.GUARD: executable or writable code, dropped code pages, signals, ptrace and
    memory writes aimed at gohook's own processes, io_uring, bpf). Each fires only for its own system call.
    """

    syscalls: tuple[str, ...]  # tracepoint names: sys_enter_<name>
    exempt: tuple[tuple[int, int], ...]  # [start, end) of the runtime's own system-call functions


@dataclass(frozen=True)
class Sentinel:
    """The raw_syscalls:sys_enter program: capability system calls (EnforcementPlan.syscall_rules) no hook
    point covered. A hooked call covers the system calls inside it that need the capability it checked,
    no others: an allowed `syscall` hook (syscall.Syscall6) covers only the call of the number it judged."""

    exempt: tuple[tuple[int, int], ...]  # [start, end) of the runtime's own system-call functions
    cgocall_returns: tuple[ProbeAddress, ...]  # RET instructions of runtime.cgocall (the thread left C)
    # bit of the `syscall` capability, which a `syscall` instruction site needs besides its number's; -1: none
    syscall_capability: int = -1
    # bit of `tamper`, which a system call through the i386 table (`int 0x80`, `sysenter`) needs whatever it
    # calls; -1: none
    compat_capability: int = -1


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
    action: Action = Action.KILL  # of std (unattributed calls) and of modules without one in `actions`
    actions: dict[int, Action] = field(default_factory=dict)  # module id -> its own action (policy per module)
    mode: Mode = Mode.ENFORCE
    attribution: Attribution = Attribution.CALLER
    deny_unattributed: bool = False
    goexit: tuple[int, int] = (0, 0)  # [entry, end) of runtime.goexit: the stack walk stops there
    goid_offset: int = 0  # offset of goid in runtime.g (0 = unknown)
    trusted: tuple[tuple[int, int], ...] = ()  # [start, end) of trusted modules' functions (sorted)
    provenance: Provenance | None = None
    sentinel: Sentinel | None = None  # needs provenance (its goroutine-created probe registers the processes)
    guard: Guard | None = None  # needs provenance too
    # the capability of each system call number: for RAWCALL and SITE hook points and the sentinel
    syscall_rules: tuple[SyscallRule, ...] = ()
    # judge opens of procfs/sysfs files by the file the kernel opened (/proc/PID/environ: env.read,
    # /proc/PID/mem for writing: tamper, other write-opens: system.modify; gohook/bpf/c/lib/fileopen.h)
    file_open: bool = False
    # argument-scoped grants: module id -> capability bits it holds for some arguments only (not in
    # `allowed`), and the patterns that say which (gohook/bpf/c/lib/argmatch.h)
    scoped: dict[int, int] = field(default_factory=dict)
    arg_patterns: tuple[ArgPattern, ...] = ()

    def module_name(self, module_id: int) -> str:
        return "std" if module_id == 0 else self.modules[module_id - 1]

    def action_of(self, module_id: int) -> Action:
        """What a violation of module_id does in enforce mode (0: std and unattributed calls)."""
        return self.actions.get(module_id, self.action) if module_id else self.action

    @property
    def error_action(self) -> bool:
        """Whether a violation can be answered with an error (some module's action is error, in enforce mode)."""
        return self.mode == Mode.ENFORCE and any(
            self.action_of(m) == Action.ERROR for m in range(len(self.modules) + 1))


#: `gohook attach --sentinel`: on, off, or auto (on when the binary has code that makes system calls no hook
#: point sees: cgo, `syscall` instructions or assembly in module code, raw system calls from module code).
SENTINEL_SETTINGS = ("auto", "on", "off")
