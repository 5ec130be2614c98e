"""The Python mirror of gohook/bpf/c/gohook.h: what the BPF program and user space share.

Every struct layout the Python side packs or unpacks (the event record, the sys_rules entry), every
value it reads from the kernel or writes into its maps (decisions, event flags, counters, argument
and hook kinds, the registers of Go's calling convention) and every constant of the header it relies
on is declared here and nowhere else, so no other module hard-codes a number of the C side.

tests/bpf/test_abi.py compiles gohook.h with gcc and checks everything declared here against it (like
Tetragon's alignchecker): an int constant X mirrors `#define GOHOOK_X` (DEFAULT_X: the default value of
GOHOOK_X, which the renderer may override with a -D define); member M of an enum E mirrors
`#define <ENUM_PREFIXES[E]>M`; a CStruct mirrors the C struct of its name field by field (offsets and
size); EventLayout mirrors struct gohook_event for any GOHOOK_MAX_FRAMES / GOHOOK_ARG_MAX; GO_ARG_REGS
mirrors the GOHOOK_REG macro. A name added here without its C counterpart fails that test.

A base module: it imports nothing from gohook, so that every pipeline stage may import it.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

# --- constants (#define GOHOOK_<name>) --------------------------------------------------------------------

#: Return addresses recorded per event, also the stack-walk bound (GOHOOK_MAX_FRAMES; a power of two).
DEFAULT_MAX_FRAMES: Final = 64
#: Bytes of the captured argument (GOHOOK_ARG_MAX; a power of two).
DEFAULT_ARG_MAX: Final = 256
#: Module ids kept per address range of the range table (its logical frames, innermost first), u16 each.
RANGE_MODULES: Final = 4
#: range_flags bit: the range is a trusted module's code.
RANGE_TRUSTED: Final = 1
#: The text is split into pages of 1 << PAGE_SHIFT bytes; page_first[p] bounds the range search.
PAGE_SHIFT: Final = 12
#: Entries of the sys_rules map: x86-64 system call numbers 0..NSYSCALLS - 1.
NSYSCALLS: Final = 512
#: struct gohook_sysrule argument index "none" (-1 & 0xff).
NOARG: Final = 0xFF
#: struct gohook_sysrule capability "none": the call needs nothing (-1 & 0xff).
NOCAP: Final = 0xFF
#: gohook_event.hook_id of sentinel events: this bit | the system call number.
SYSCALL_HOOK: Final = 0x80000000
#: ... | this bit too: the number is of the i386 table (`int 0x80`, `sysenter` from 64-bit code).
SYSCALL_I386: Final = 0x40000000
#: ... | this bit instead: judged at the open's exit by the file it opened (the file-open judge).
SYSCALL_OPENED: Final = 0x20000000
#: Slots of the `handler` program array: one handler program per (hook kind, direct_caller_only), at
#: handler_slot(kind, direct) (GOHOOK_HANDLER_SLOT).
HANDLER_SLOTS: Final = 14
#: ... and the slot of the argument check (lib/argmatch.h), which handlers tail-call for argument-scoped grants.
ARGCHECK_SLOT: Final = 12
#: ... and of its glob match.
GLOBMATCH_SLOT: Final = 13
#: Bytes of an argument the argument-pattern tries can match (longer ones match nothing).
GLOB_DATA: Final = 240
#: The signal that hands a denied call to gohook's tracer (action error; lib/deny.h).
SIGSYS: Final = 31
#: Globs sharing one literal prefix (one arg_globs entry).
GLOB_ALTS: Final = 4
#: Bytes of a glob's literal suffix.
SUFFIX_MAX: Final = 16
#: Ports per network of one arg_addrs entry.
ADDR_PORTS: Final = 8
#: Nested prefixes the argument check tries, longest first.
MATCH_TRIES: Final = 8
#: struct gohook_hookscope register "none".
NOREG: Final = 0xFF

#: Go's integer argument registers (ABIInternal, amd64) in order: a plan names a register by its index here,
#: and the entry programs read register i with GOHOOK_REG(ctx, i).
GO_ARG_REGS: Final = ("rax", "rbx", "rcx", "rdi", "rsi", "r8", "r9", "r10", "r11")


# --- enums (#define <prefix><member>) ---------------------------------------------------------------------


class ArgKind(enum.IntEnum):
    """How the BPF program reads a hook's interesting argument (gohook_event.arg_kind, GOHOOK_ARG_*)."""

    NONE = 0
    STRING = 1  # Go string in two registers: (ptr, len)
    CSTRING = 2  # NUL-terminated bytes at a pointer register
    STRING_SLICE0 = 3  # first element of a []string whose (ptr, len) are in two registers
    INT = 4  # an integer register, reported as decimal
    SOCKADDR = 5  # kernel struct sockaddr at (ptr, len) in two registers: family, address and port
    IPPORT = 6  # *net.TCPAddr / UDPAddr / IPAddr in one register: IP []byte at +0, Port at +24
    STRFIELD0 = 7  # a Go string that is the first field of the struct a register points to
    INTFIELD0 = 8  # a word that is the first field of the struct a register points to


class ArgClass(enum.IntEnum):
    """What an argument-scoped grant matches a hook point's argument as (gohook_hookscope.arg_class, the
    class byte of an arg_globs key; GOHOOK_AC_*)."""

    NONE = 0  # not matched: a scoped grant does not cover the call
    PATH = 1  # an absolute path (files.*, exec)
    ENV = 2  # an environment variable name
    ADDRESS = 3  # a struct sockaddr or an IP and port (network.*)
    UNIX = 4  # arg_globs class of Unix socket paths
    ABSTRACT = 5  # arg_globs class of abstract Unix socket names


class GlobKind(enum.IntEnum):
    """One glob of an arg_globs entry after its literal prefix (gohook_globalt.kind, GOHOOK_GLOB_*)."""

    EXACT = 1  # the argument is the prefix
    TREE = 2  # the prefix, then anything
    SEGMENT = 3  # the prefix, then no '/', ending with the suffix
    SUFFIX = 4  # the prefix, then anything ending with the suffix


class HookKind(enum.IntEnum):
    """What a hook point's entry program does (gohook_call.kind, GOHOOK_K_*)."""

    CALL = 0  # a hooked Go function: the capability call is charged by the stack walk
    CGOCALL = 1  # runtime.cgocall: also tells the sentinel whose C code the thread runs
    SITE = 3  # a `syscall` instruction in a module's own code: `syscall` and its number's capability, owner decides
    RAWCALL = 5  # a call site of syscall.Syscall*: `syscall` and the capability of the number it passes


class Judge(enum.IntFlag):
    """Which judges use a sys_rules entry (gohook_sysrule.judges, GOHOOK_J_*)."""

    RAW = 1 << 0  # raw system-call hooks (HOOK_RAW) and module `syscall` instructions (SITE)
    SENTINEL = 1 << 1  # the raw_syscalls:sys_enter sentinel
    GUARD = 1 << 2  # the per-system-call guard tracepoints


class RuleTestKind(enum.IntEnum):
    """The argument tests of a sys_rules entry (gohook_sysrule.test, test2; GOHOOK_T_*)."""

    NONE = 0
    MASK = 1  # args[a] & operand
    EQ = 2  # args[a] == operand
    GUARD = 3  # (u32)args[a] names one of gohook's own processes or threads (from gohook's pid namespace)
    TEXT = 4  # [args[a], args[a] + args[a + 1]) overlaps the binary's text in this process
    SELF = 5  # (u32)args[a] is the calling process
    PTR = 6  # the u64 at user address args[a] + operand is not 0
    TYPE = 7  # bit (args[a] & 0xf) of operand: socket(2)'s type is one of a set


class ActionCode(enum.IntEnum):
    """module_action values (GOHOOK_ACT_*): what a violation of the module does in enforce mode."""

    KILL = 0
    ERROR = 1
    AUDIT = 2


def handler_slot(kind: HookKind, direct: bool) -> int:
    """The `handler` array slot of the handler program for hook points of this kind (GOHOOK_HANDLER_SLOT)."""
    return int(kind) * 2 + int(direct)


class Decision(enum.IntEnum):
    """gohook_event.decision (GOHOOK_ALLOW, _DENY, _AUDIT, _ERROR)."""

    ALLOW = 0  # allowed, or unattributed and allowed
    DENY = 1  # violation; SIGKILL was sent
    AUDIT = 2  # violation; only recorded
    ERROR = 3  # violation; the call returns a denial (action error, through gohook's tracer)

    @property
    def label(self) -> str:
        return self.name.lower()


class EventFlag(enum.IntFlag):
    """gohook_event.flags (GOHOOK_F_*)."""

    NONE = 0
    UNATTRIBUTED = 1 << 0
    DIRECT = 1 << 1
    STOP_FP_ZERO = 1 << 2
    STOP_GOEXIT = 1 << 3
    STOP_OUTSIDE = 1 << 4
    STOP_FAULT = 1 << 5
    TRUNCATED = 1 << 6
    ARG_TRUNCATED = 1 << 7
    ARG_FAULT = 1 << 8
    SIGNAL_FAILED = 1 << 9
    INHERITED = 1 << 10  # no non-std frame: the module the goroutine inherited from its creator decided
    GOPC = 1 << 11  # no non-std frame: the module of the goroutine's go statement decided
    CGO = 1 << 12  # sentinel: the module whose cgo call the thread is in decided
    SENTINEL = 1 << 13  # a system call seen by the sentinel, not a hook point
    SITE = 1 << 14  # a `syscall` instruction in the module's own code
    TRUSTED = 1 << 15  # a trusted module's frame was on the stack
    ARG_SCOPED = 1 << 16  # decided by the argument (argument-scoped grant): `pattern` names the one that matched
    KILL_FALLBACK = 1 << 17  # action error could not be applied (process not traced, ...): killed instead


class CounterIndex(enum.IntEnum):
    """Indexes of the per-CPU `counters` map (GOHOOK_C_*), in the order of gohook.bpf.loader.Counters."""

    LOST = 0  # events dropped: ring buffer full
    HITS = 1  # hook hits that were counted (not ignored)
    DENIED = 2  # SIGKILLs sent
    SIGFAIL = 3  # bpf_send_signal errors
    IGNORED = 4  # direct-caller-only hooks called from std: not counted
    GARBLED = 5  # per-CPU slot reused by a preempting run: call or event dropped
    NOHANDLER = 6  # the tail call into the handler failed: the call was not checked
    GOROUTINES = 7  # goroutines created with an inherited module (provenance records)
    SYSCALLS = 8  # capability system calls the sentinel decided (no hook point covered them)
    COVERED = 9  # capability system calls inside a hooked call (left to the hook)
    EXEMPT = 10  # capability system calls of the runtime itself, or of std cgo calls
    ERRORS = 11  # denials handed to the tracer to return as an error (SIGSYS sent)


#: Entries of the `counters` map.
NCOUNTERS: Final = len(CounterIndex)

#: The C name of every enum member: member M of enum E is `#define <ENUM_PREFIXES[E.__name__]>M` in gohook.h
#: (EventFlag.NONE, no bit, has none).
ENUM_PREFIXES: Final[Mapping[str, str]] = MappingProxyType({
    "ArgKind": "GOHOOK_ARG_",
    "HookKind": "GOHOOK_K_",
    "Decision": "GOHOOK_",
    "EventFlag": "GOHOOK_F_",
    "CounterIndex": "GOHOOK_C_",
    "Judge": "GOHOOK_J_",
    "RuleTestKind": "GOHOOK_T_",
    "ArgClass": "GOHOOK_AC_",
    "GlobKind": "GOHOOK_GLOB_",
    "ActionCode": "GOHOOK_ACT_",
})


# --- structs ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CStruct:
    """A struct of gohook.h as Python packs it: its fields in declaration order with `struct` codes.

    Little-endian and without implicit padding: the C struct declares its padding as fields, so that
    C's natural alignment and Python's packed layout agree (tests/bpf/test_abi.py checks they do).
    """

    name: str  # the struct tag in gohook.h
    fields: tuple[tuple[str, str], ...]  # (field name, struct code)

    @property
    def format(self) -> struct.Struct:
        return struct.Struct("<" + "".join(code for _, code in self.fields))

    @property
    def size(self) -> int:
        return self.format.size

    def offsets(self) -> dict[str, int]:
        """Byte offset of every field, as C's offsetof gives it."""
        out: dict[str, int] = {}
        fmt = "<"
        for name, code in self.fields:
            out[name] = struct.calcsize(fmt)
            fmt += code
        return out

    @property
    def value_fields(self) -> tuple[str, ...]:
        """The fields that carry values: all but the padding (pad, pad2, ...)."""
        return tuple(name for name, _ in self.fields if not name.startswith("pad"))


#: One entry of the sys_rules map (struct gohook_sysrule): the capability rule of one system call.
SYSRULE: Final = CStruct("gohook_sysrule", (
    ("judges", "B"), ("cap", "B"), ("arg", "B"), ("arg_kind", "B"), ("len_arg", "B"), ("test", "B"),
    ("test_arg", "B"), ("cap_set", "B"), ("operand", "Q"), ("test2", "B"), ("test2_arg", "B"),
    ("cap2_set", "B"), ("pad", "5s"), ("operand2", "Q"),
))

#: hook_scopes value (struct gohook_hookscope): how a hook point's argument is matched.
HOOKSCOPE: Final = CStruct("gohook_hookscope", (
    ("arg_class", "B"), ("dirfd_reg", "B"), ("second_ptr", "B"), ("second_len", "B"), ("second_dirfd", "B"),
    ("second_cap0", "B"), ("second_cap1", "B"), ("pad", "B"),
))
#: arg_globs key (struct gohook_globkey): bits of prefix, then (module, capability, class) and the bytes.
GLOBKEY: Final = CStruct("gohook_globkey", (
    ("prefixlen", "I"), ("module", "H"), ("cap", "B"), ("arg_class", "B"), ("data", f"{GLOB_DATA}s"),
))
#: arg_globs value (struct gohook_globval): the prefix's length and its GLOB_ALTS globs.
GLOBVAL: Final = CStruct("gohook_globval", (("plen", "I"), ("lastslash", "i"), *(
    field for i in range(GLOB_ALTS) for field in (
        (f"alt[{i}].kind", "I"), (f"alt[{i}].pattern", "I"), (f"alt[{i}].suffix_len", "I"),
        (f"alt[{i}].suffix", f"{SUFFIX_MAX}s")))))
#: arg_addrs key (struct gohook_addrkey): bits of prefix, then (module, capability) and the IPv6 address.
ADDRKEY: Final = CStruct("gohook_addrkey", (
    ("prefixlen", "I"), ("module", "H"), ("cap", "B"), ("pad", "B"), ("addr", "16s"),
))
#: arg_addrs value (struct gohook_addrval): the network's ports and the patterns that allow them.
ADDRVAL: Final = CStruct("gohook_addrval", (
    ("prefixlen", "I"), ("any_port", "I"), *((f"ports[{i}]", "H") for i in range(ADDR_PORTS)),
    *((f"patterns[{i}]", "I") for i in range(ADDR_PORTS)),
))

#: deny_marks value (struct gohook_denymark): a denied call the tracer returns from (lib/deny.h).
DENYMARK: Final = CStruct("gohook_denymark", (
    ("resume_ip", "Q"), ("resume_sp", "Q"), ("bp", "Q"), ("bias", "Q"), ("probe_ip", "Q"), ("time_ns", "Q"),
    ("hook_id", "I"), ("tgid", "I"),
))

#: The fixed part of struct gohook_event, before arg[] and frames[]: fields in declaration order, struct codes.
HEADER_FIELDS: Final = (
    ("time_ns", "Q"),
    ("goid", "Q"),
    ("bias", "Q"),
    ("cgroup_id", "Q"),
    ("pid", "I"),
    ("tid", "I"),
    ("hook_id", "I"),
    ("capability", "I"),
    ("flags", "I"),
    ("module", "H"),
    ("decision", "B"),
    ("arg_kind", "B"),
    ("arg_len", "H"),
    ("nframes", "H"),
    ("pattern", "I"),
)

_HEADER = struct.Struct("<" + "".join(code for _, code in HEADER_FIELDS))


@dataclass(frozen=True, slots=True)
class EventLayout:
    """struct gohook_event for the sizes that parametrize it (GOHOOK_MAX_FRAMES, GOHOOK_ARG_MAX).

    The header (HEADER_FIELDS), then char arg[arg_max], then __u64 frames[max_frames]. Only the first
    nframes frames are valid; a record may stop right after them.
    """

    max_frames: int = DEFAULT_MAX_FRAMES
    arg_max: int = DEFAULT_ARG_MAX

    def __post_init__(self) -> None:
        for name in ("max_frames", "arg_max"):
            value = getattr(self, name)
            if value < 8 or value & (value - 1):
                raise ValueError(f"{name} must be a power of two >= 8, not {value}")

    @property
    def header(self) -> struct.Struct:
        """The fixed part before arg[]."""
        return _HEADER

    @property
    def arg_offset(self) -> int:
        return self.header.size

    @property
    def frames_offset(self) -> int:
        """offsetof(struct gohook_event, frames): also the smallest valid record."""
        return self.arg_offset + self.arg_max

    @property
    def size(self) -> int:
        """sizeof(struct gohook_event)."""
        return self.frames_offset + 8 * self.max_frames

    def offsets(self) -> dict[str, int]:
        """Byte offset of every field, as C's offsetof would give it."""
        out: dict[str, int] = {}
        fmt = "<"
        for name, code in HEADER_FIELDS:
            out[name] = struct.calcsize(fmt)
            fmt += code
        out["arg"] = self.arg_offset
        out["frames"] = self.frames_offset
        return out


#: The layout of the defaults (GOHOOK_MAX_FRAMES and GOHOOK_ARG_MAX not overridden).
DEFAULT_LAYOUT: Final = EventLayout()
