"""The catalog's data model: capabilities, hook specs per Go release, argument reads, rules, gaps.

Frozen dataclasses built by gohook.sites.catalog.loader from catalog.yaml and read by the rest of
gohook (hook placement, the planner, inspect). Kept apart from the loader so the model can be read
without the validation code, and apart from the register ABI (goabi), which it only refers to through
:class:`Location`.

Three details shape the model:

* A hook whose capability depends on an argument carries a rule the BPF
  program evaluates on one integer location: :class:`FlagRule` (any bit of a
  mask set) or :class:`ValueRule` (a table of values, e.g. syscall numbers).
* A :class:`HookEntry` is a default :class:`HookSpec` plus per-release
  variants; :meth:`Catalog.hooks_for` resolves one Go release's view.
* ``direct_caller_only`` hooks count only when the physical function holding
  the return address at ``[rsp]`` is not standard-library code.
* Every :class:`HookSpec` says how a denied call returns under ``action: error``
  (issue 15): a :class:`ReturnPlan` of :class:`DenyKind` with the words to put
  in the result registers (derived by the loader from the Go signature's
  results, gohook.sites.catalog.goabi.parse_results, and the entry's ``deny``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property

from gohook.errors import GohookError
from gohook.sites.catalog.goabi import Location

ALL = "all"
#: Capabilities `all` leaves out: only granted by name (they switch enforcement itself off).
NOT_IN_ALL = frozenset({"tamper"})


class CatalogError(GohookError):
    """The catalog is malformed, or a lookup names something it does not hold.

    ``where`` is the place in the data ("hooks[3] syscall.openat: rule.mask")
    when the error comes from validation.
    """

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.where = where


class UnknownCapabilityError(CatalogError):
    """A capability, family or "all" was expected; ``name`` is none of them."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        close = difflib.get_close_matches(name, list(known), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        super().__init__(f"unknown capability {name!r}{hint}")
        self.name = name


# --- Go versions ------------------------------------------------------------------


_VERSION = re.compile(r"(?:^|go)(\d+)\.(\d+)")


@dataclass(frozen=True, order=True)
class GoVersion:
    """A Go release (major, minor); the patch level never changes the catalog."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> GoVersion:
        """Parse "1.21", "go1.21.13", "go1.22rc1" or "go1.27.3 X:exp"; ValueError otherwise."""
        m = _VERSION.search(text.strip())
        if not m:
            raise ValueError(f"not a Go version: {text!r}")
        return cls(int(m.group(1)), int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True)
class VersionRange:
    """An inclusive range of Go releases; ``None`` leaves an end open."""

    first: GoVersion | None = None
    last: GoVersion | None = None

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        """Parse "1.21", "1.19-1.20", "1.21-" or "-1.20"; ValueError otherwise."""
        text = str(text).strip()
        if "-" not in text:
            v = GoVersion.parse(text)
            return cls(v, v)
        lo, hi = (part.strip() for part in text.split("-", 1))
        rng = cls(GoVersion.parse(lo) if lo else None, GoVersion.parse(hi) if hi else None)
        if rng.first and rng.last and rng.first > rng.last:
            raise ValueError(f"empty Go version range {text!r}")
        return rng

    def __contains__(self, version: object) -> bool:
        if not isinstance(version, GoVersion):
            return False
        return (self.first is None or version >= self.first) and (self.last is None or version <= self.last)

    def within(self, other: VersionRange) -> bool:
        """True when every release in this range is also in ``other``."""
        lo_ok = other.first is None or (self.first is not None and self.first >= other.first)
        hi_ok = other.last is None or (self.last is not None and self.last <= other.last)
        return lo_ok and hi_ok

    def overlaps(self, other: VersionRange) -> bool:
        """True when some release is in both ranges."""
        lo_a, hi_a = self.first, self.last
        lo_b, hi_b = other.first, other.last
        return (hi_b is None or lo_a is None or lo_a <= hi_b) and (hi_a is None or lo_b is None or lo_b <= hi_a)

    def __str__(self) -> str:
        if self.first is not None and self.first == self.last:
            return str(self.first)
        lo = str(self.first) if self.first else ""
        hi = str(self.last) if self.last else ""
        return f"{lo}-{hi}" if (lo or hi) else "all"


ALL_VERSIONS = VersionRange()


# --- data model -------------------------------------------------------------------


@dataclass(frozen=True)
class Capability:
    """One capability of the taxonomy.

    ``bit`` is its index in the u64 capability bitmask the BPF program and
    the policy maps use; it never changes once released. ``family`` is the
    part before the dot (``files`` for ``files.read``), or the name itself.
    ``hooked`` is False for a capability no hook charges yet: it comes from
    the system call classification (gohook/sites/syscalls.yaml) alone, and
    the loader checks that no hook names it (and that every other one has a
    hook).
    """

    name: str
    bit: int
    description: str
    capslock: tuple[str, ...]
    hooked: bool = True

    @property
    def family(self) -> str:
        """ "files" for "files.read"; "exec" for "exec"."""
        return self.name.split(".", 1)[0]

    @property
    def mask(self) -> int:
        """``1 << bit``."""
        return 1 << self.bit


class ArgKind(Enum):
    """How the BPF program reads an argument (all with bpf_probe_read_user)."""

    STRING = "string"  # Go string: at = [ptr, len]
    CSTRING = "cstring"  # NUL-terminated C string: at = [ptr]
    STRINGS_FIRST = "strings_first"  # first element of a []string: at = [ptr, len, cap]
    INT = "int"  # one machine word: at = [word]
    SOCKADDR = "sockaddr"  # kernel struct sockaddr: at = [ptr, len]
    STRUCT = "struct"  # fields of a Go struct behind a pointer: at = [ptr]


#: Number of locations each kind takes.
ARG_WORDS = {
    ArgKind.STRING: 2,
    ArgKind.CSTRING: 1,
    ArgKind.STRINGS_FIRST: 3,
    ArgKind.INT: 1,
    ArgKind.SOCKADDR: 2,
    ArgKind.STRUCT: 1,
}


class FieldKind(Enum):
    """Type of a struct field read through a pointer argument."""

    INT = "int"  # one machine word
    STRING = "string"  # Go string header: ptr at offset, len at offset+8
    BYTES = "bytes"  # Go []byte header: ptr at offset, len at offset+8


@dataclass(frozen=True)
class StructField:
    """A field the BPF program reads at ``offset`` bytes from the struct pointer.

    ``go_field`` ("net.TCPAddr.Port") names it for the offset check that
    tests/sites/test_catalog.py runs against each toolchain.
    """

    name: str
    go_field: str
    offset: int
    kind: FieldKind


@dataclass(frozen=True)
class ArgSpec:
    """One argument to report, and where its words are at function entry."""

    name: str
    kind: ArgKind
    at: tuple[Location, ...]
    fields: tuple[StructField, ...] = ()


@dataclass(frozen=True)
class FlagRule:
    """Capability by flag bits: ``set`` if ``value & mask`` is non-zero, else ``clear``.

    ``clear`` None means "no capability": the call is not a capability call and is not counted
    (syscall.Mprotect without PROT_EXEC).
    """

    param: str
    at: Location
    mask: int
    set: str
    clear: str | None

    @property
    def outcomes(self) -> frozenset[str]:
        """Every capability this rule can decide."""
        return frozenset(c for c in (self.set, self.clear) if c is not None)

    def evaluate(self, value: int) -> str | None:
        """The capability for one argument value (what the BPF program computes), or None for none."""
        return self.set if value & self.mask else self.clear


#: AF_NETLINK, and the length of a struct sockaddr_nl (family u16, pad u16, pid u32, groups u32).
AF_NETLINK = 16
SOCKADDR_NL_LEN = 12


@dataclass(frozen=True)
class DestinationRule(FlagRule):
    """Capability by a send's destination (catalog rule kind ``destination``).

    A flags rule on the destination pointer (``mask`` all ones, ``clear`` None: no destination is no
    capability: a send on a connected socket) that also passes, uncounted, the one destination that
    reaches no peer: the kernel over netlink (a struct sockaddr_nl of family AF_NETLINK, pid 0, no
    groups, given with its exact length 12 in ``length_at``). That is syscall.NetlinkRIB's send, under
    net.Interfaces and net.InterfaceAddrs. The length is a register (not memory a racing thread can
    change); the contents are read from memory.
    """

    length_at: Location | None = None

    def evaluate_sockaddr(self, pointer: int, length: int, sockaddr: bytes) -> str | None:
        """What the BPF program decides for a destination pointer, its length and its first bytes."""
        if not pointer:
            return None
        if length == SOCKADDR_NL_LEN and len(sockaddr) >= SOCKADDR_NL_LEN:
            family = int.from_bytes(sockaddr[0:2], "little")
            pid = int.from_bytes(sockaddr[4:8], "little")
            groups = int.from_bytes(sockaddr[8:12], "little")
            if family == AF_NETLINK and pid == 0 and groups == 0:
                return None
        return self.set


@dataclass(frozen=True)
class ValueCase:
    """One row of a :class:`ValueRule`: ``value`` (named ``name``) means ``capability``."""

    value: int
    name: str
    capability: str


@dataclass(frozen=True)
class ValueRule:
    """Capability by value (e.g. a syscall number); ``default`` None means "no capability"."""

    param: str
    at: Location
    cases: tuple[ValueCase, ...]
    default: str | None

    @property
    def outcomes(self) -> frozenset[str]:
        """Every capability this rule can decide."""
        found = {c.capability for c in self.cases}
        if self.default is not None:
            found.add(self.default)
        return frozenset(found)

    def evaluate(self, value: int) -> str | None:
        """The capability for one argument value, or None for none."""
        for case in self.cases:
            if case.value == value:
                return case.capability
        return self.default


Rule = FlagRule | DestinationRule | ValueRule


class Presence(Enum):
    """When a hook function is expected to exist in a binary that uses its APIs."""

    ALWAYS = "always"
    CGO = "cgo"  # only in cgo builds
    NOT_INLINED = "not_inlined"  # normally inlined away; an out-of-line copy is hooked if present


#: The errno a denied call reports: syscall.EPERM ("operation not permitted"; errors.Is(err, fs.ErrPermission)).
EPERM = 1


class DenyKind(Enum):
    """How a hook's function returns when the policy denies the call with ``action: error``."""

    ERROR = "error"  # returns at once: its error result EPERM, every other result its failure value
    UNSET = "unset"  # an environment read: the variable reads as unset ("", false)
    EMPTY = "empty"  # the whole environment: a nil slice (no variable)
    NOOP = "noop"  # no result to set: returns at once, having done nothing
    KILL = "kill"  # no result can say "denied" (a value read that cannot fail): the process is killed


class ValueKind(Enum):
    """What a result word of a :class:`ReturnPlan` is set to."""

    CONST = "const"  # the integer ``value`` (two's complement in the register: :attr:`ReturnWord.word`)
    ERRNO_ITAB = "errno_itab"  # the itab of (syscall.Errno, error), found in the binary
    ERRNO_DATA = "errno_data"  # the address of a read-only word holding ``value`` (the errno), e.g. in
    # runtime.staticuint64s (what Go's convT64 boxes a small Errno to) or a compiler static temp


@dataclass(frozen=True)
class ReturnWord:
    """One register a denied call returns: where, what, and which result word it is ("err.itab")."""

    at: Location
    kind: ValueKind
    value: int
    result: str

    @property
    def word(self) -> int:
        """The 64-bit register contents of a CONST word (-1 is 0xffff_ffff_ffff_ffff); 0 for the others."""
        return self.value & 0xFFFF_FFFF_FFFF_FFFF if self.kind is ValueKind.CONST else 0

    def __str__(self) -> str:
        shown = str(self.value) if self.kind is ValueKind.CONST else self.kind.value
        return f"{self.at}={shown}"


@dataclass(frozen=True)
class ReturnPlan:
    """How a hook returns a denial (``action: error``): the kind and the result registers to set.

    ``words`` covers every result word for ERROR, UNSET and EMPTY, in result
    order (all in registers: the loader refuses a plan that would write a
    stack result); NOOP has no result and KILL returns nothing. ``results``
    shows each result's value as Go would print it ("fd=-1", "err=EPERM",
    "nil"), for inspect and the docs; ``errno`` is EPERM for ERROR. The
    returning itself is the same for every kind but KILL: RIP from [RSP],
    RSP + 8, at the probe (which runs before the function touches the stack).
    ``explicit``: stated by the catalog entry's ``deny``, not derived from
    the signature.
    """

    kind: DenyKind
    words: tuple[ReturnWord, ...] = ()
    results: tuple[str, ...] = ()
    errno: int | None = None
    explicit: bool = False

    @property
    def values_text(self) -> str:
        """ "fd=-1, err=EPERM"; "-" when nothing is returned (noop, kill)."""
        return ", ".join(self.results) or "-"

    @property
    def registers_text(self) -> str:
        """ "rax=-1, rbx=errno_itab, rcx=errno_data"; "-" when no register is set."""
        return ", ".join(map(str, self.words)) or "-"

    def __str__(self) -> str:
        """ "error: fd=-1, err=EPERM", "noop", "kill"."""
        return self.kind.value + (f": {self.values_text}" if self.results else "")


#: The plan of a spec nobody gave one (only the loader builds specs, and it always does): fail closed.
KILL_PLAN = ReturnPlan(DenyKind.KILL)


@dataclass(frozen=True)
class HookSpec:
    """A hook point as it applies to one Go release.

    Exactly one of ``capability`` and ``rule`` is set. ``arguments[0]`` is the
    argument events report; ``not_captured`` explains an empty tuple.
    ``deny`` is how a denied call returns under ``action: error``.
    """

    function: str
    signature: str
    abi: str  # "internal" (register ABI) or "abi0" (assembly, stack arguments)
    capability: str | None
    rule: Rule | None
    arguments: tuple[ArgSpec, ...]
    not_captured: str | None
    direct_caller_only: bool
    presence: Presence
    reaches: tuple[str, ...]
    why: str
    go: VersionRange  # the releases this resolved view is valid for
    deny: ReturnPlan = KILL_PLAN

    @property
    def argument(self) -> ArgSpec | None:
        """The argument events report, if any."""
        return self.arguments[0] if self.arguments else None

    @property
    def capabilities(self) -> frozenset[str]:
        """Every capability a hit can be charged with (one, or a rule's outcomes)."""
        if self.rule is not None:
            return self.rule.outcomes
        return frozenset({self.capability}) if self.capability else frozenset()


@dataclass(frozen=True)
class HookEntry:
    """One catalog entry: a default :class:`HookSpec` plus per-release variants."""

    base: HookSpec
    variants: tuple[HookSpec, ...] = ()

    def resolve(self, version: GoVersion) -> HookSpec | None:
        """The spec for ``version``, or None when the entry does not apply to it."""
        if version not in self.base.go:
            return None
        for variant in self.variants:
            if version in variant.go:
                return variant
        return self.base

    @property
    def specs(self) -> tuple[HookSpec, ...]:
        """The default spec and every variant."""
        return (self.base, *self.variants)


@dataclass(frozen=True)
class GapSpec:
    """A function whose presence the gaps report flags (kind: cgo, plugin, raw_syscall, exec)."""

    function: str
    kind: str
    abi: str
    go: VersionRange
    detail: str
    remedy: str


GAP_KINDS = frozenset({"cgo", "plugin", "raw_syscall", "exec"})


@dataclass(frozen=True)
class Catalog:
    """The validated catalog.

    ``capabilities`` is sorted by bit. ``verified`` lists the Go releases the
    data was checked against; other releases resolve by the same ranges but
    have not been checked.
    """

    capabilities: tuple[Capability, ...]
    entries: tuple[HookEntry, ...]
    gaps: tuple[GapSpec, ...]
    verified: tuple[GoVersion, ...]
    source: str = field(default="catalog.yaml", compare=False)

    @cached_property
    def _by_name(self) -> dict[str, Capability]:
        return {c.name: c for c in self.capabilities}

    @cached_property
    def families(self) -> tuple[str, ...]:
        """Family names in bit order of their first member: ("files", "network", ...)."""
        return tuple(dict.fromkeys(c.family for c in self.capabilities))

    def capability(self, name: str) -> Capability:
        """The capability called ``name``; :class:`UnknownCapabilityError` if none."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownCapabilityError(name, self.names) from None

    @property
    def names(self) -> tuple[str, ...]:
        """Every name :meth:`expand` accepts: capabilities, families and "all"."""
        return (*self._by_name, *(f for f in self.families if f not in self._by_name), ALL)

    def expand(self, name: str) -> tuple[Capability, ...]:
        """Capabilities named by a capability, a family ("files") or "all", in bit order."""
        if name == ALL:
            return tuple(c for c in self.capabilities if c.name not in NOT_IN_ALL)
        if name in self._by_name:
            return (self._by_name[name],)
        members = tuple(c for c in self.capabilities if c.family == name)
        if not members:
            raise UnknownCapabilityError(name, self.names)
        return members

    def mask(self, names: Iterable[str]) -> int:
        """The u64 bitmask of everything the names expand to."""
        bits = 0
        for name in names:
            for cap in self.expand(name):
                bits |= cap.mask
        return bits

    def names_of(self, mask: int) -> tuple[str, ...]:
        """Capability names whose bits are set in ``mask``, in bit order."""
        return tuple(c.name for c in self.capabilities if mask & c.mask)

    def hooks_for(self, version: GoVersion) -> tuple[HookSpec, ...]:
        """Every hook spec that applies to one Go release, in catalog order."""
        found = (entry.resolve(version) for entry in self.entries)
        return tuple(spec for spec in found if spec is not None)

    def hooks_named(self, function: str, version: GoVersion) -> tuple[HookSpec, ...]:
        """The specs hooking ``function`` (pclntab name) in one Go release (usually one)."""
        return tuple(spec for spec in self.hooks_for(version) if spec.function == function)

    def hooks_for_capability(self, name: str, version: GoVersion) -> tuple[HookSpec, ...]:
        """Specs that can charge any capability ``name`` expands to (a hook point plan for a policy)."""
        wanted = {c.name for c in self.expand(name)}
        return tuple(spec for spec in self.hooks_for(version) if spec.capabilities & wanted)

    def function_names(self, version: GoVersion) -> frozenset[str]:
        """pclntab names of every hook function for one Go release."""
        return frozenset(spec.function for spec in self.hooks_for(version))

    def gaps_for(self, version: GoVersion) -> tuple[GapSpec, ...]:
        """Gap functions that apply to one Go release."""
        return tuple(gap for gap in self.gaps if version in gap.go)

    def spec_mask(self, spec: HookSpec) -> int:
        """Bitmask of every capability a hook spec can charge."""
        return self.mask(spec.capabilities)
