"""The capability catalog: which standard-library functions gohook hooks.

The data lives in ``gohook/data/catalog.yaml`` (documented in
docs/capabilities.md); this module loads it into frozen dataclasses and
validates it strictly, so that a mistake in the data fails at load time with
one clear :class:`CatalogError` instead of as a wrong register read in the
kernel.

Typical use by the code that plans hook points and renders the BPF program::

    catalog = load_catalog()
    version = GoVersion.parse(binary.go_version)          # "go1.21.13"
    for hook in catalog.hooks_for(version):               # one Go release's view
        ...  # look hook.function up in the pclntab, attach at its probe offset
        bit = catalog.capability(hook.capability).bit     # fixed capability, or
        hook.rule                                         # FlagRule / ValueRule
        hook.argument                                     # what to read, where
    allowed = catalog.mask(["files", "network.connect"])  # policy -> u64 bitmask

Three details shape the data model:

* Locations (:class:`Location`) are Go's amd64 register ABI at function
  entry, or a stack slot for assembly (ABI0) functions. The loader derives
  them again from each entry's Go signature and rejects a mismatch.
* A hook whose capability depends on an argument carries a rule the BPF
  program evaluates on one integer location: :class:`FlagRule` (any bit of a
  mask set) or :class:`ValueRule` (a table of values, e.g. syscall numbers).
* ``direct_caller_only`` hooks count only when the physical function holding
  the return address at ``[rsp]`` is not standard-library code.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from gohook.errors import GohookError

__all__ = [
    "ArgKind",
    "ArgSpec",
    "Capability",
    "Catalog",
    "CatalogError",
    "FieldKind",
    "FlagRule",
    "GapSpec",
    "GoVersion",
    "HookEntry",
    "HookSpec",
    "Location",
    "Presence",
    "Register",
    "StructField",
    "UnknownCapabilityError",
    "ValueCase",
    "ValueRule",
    "VersionRange",
    "load_catalog",
    "parse_catalog",
]

SCHEMA = 1
ALL = "all"
#: Capslock's capability names (google/capslock proto), for the mapping check.
CAPSLOCK_NAMES = frozenset(
    {
        "CAPABILITY_SAFE",
        "CAPABILITY_FILES",
        "CAPABILITY_NETWORK",
        "CAPABILITY_RUNTIME",
        "CAPABILITY_READ_SYSTEM_STATE",
        "CAPABILITY_MODIFY_SYSTEM_STATE",
        "CAPABILITY_OPERATING_SYSTEM",
        "CAPABILITY_SYSTEM_CALLS",
        "CAPABILITY_ARBITRARY_EXECUTION",
        "CAPABILITY_CGO",
        "CAPABILITY_UNANALYZED",
        "CAPABILITY_UNSAFE_POINTER",
        "CAPABILITY_REFLECT",
        "CAPABILITY_EXEC",
    }
)
_CAPABILITY_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")
_GO_FIELD = re.compile(r"^[\w/.]+\.\w+\.\w+$")


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


# --- locations and the register ABI ----------------------------------------------


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


# --- data model -------------------------------------------------------------------


@dataclass(frozen=True)
class Capability:
    """One capability of the taxonomy.

    ``bit`` is its index in the u64 capability bitmask the BPF program and
    the policy maps use; it never changes once released. ``family`` is the
    part before the dot (``files`` for ``files.read``), or the name itself.
    """

    name: str
    bit: int
    description: str
    capslock: tuple[str, ...]

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
    tests/test_catalog.py runs against each toolchain.
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
    """Capability by flag bits: ``set`` if ``value & mask`` is non-zero, else ``clear``."""

    param: str
    at: Location
    mask: int
    set: str
    clear: str

    @property
    def outcomes(self) -> frozenset[str]:
        """Every capability this rule can decide."""
        return frozenset({self.set, self.clear})

    def evaluate(self, value: int) -> str:
        """The capability for one argument value (what the BPF program computes)."""
        return self.set if value & self.mask else self.clear


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


Rule = FlagRule | ValueRule


class Presence(Enum):
    """When a hook function is expected to exist in a binary that uses its APIs."""

    ALWAYS = "always"
    CGO = "cgo"  # only in cgo builds
    NOT_INLINED = "not_inlined"  # normally inlined away; an out-of-line copy is hooked if present


@dataclass(frozen=True)
class HookSpec:
    """A hook point as it applies to one Go release.

    Exactly one of ``capability`` and ``rule`` is set. ``arguments[0]`` is the
    argument events report; ``not_captured`` explains an empty tuple.
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
            return self.capabilities
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


# --- loading and validation ---------------------------------------------------------


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and validate the packaged catalog (or the YAML file at ``path``)."""
    if path is None:
        text = resources.files("gohook.sites").joinpath("catalog.yaml").read_text(encoding="utf-8")
        return parse_catalog(text, "catalog.yaml")
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise CatalogError(f"{p}: cannot read: {e.strerror}") from e
    return parse_catalog(text, str(p))


def parse_catalog(text: str, source: str = "catalog.yaml") -> Catalog:
    """Parse and validate catalog YAML; every problem raises :class:`CatalogError`."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise CatalogError(f"{source}{line}: invalid YAML: {problem}") from e
    return _Loader(source).catalog(doc)


class _Loader:
    """Turns the YAML document into a Catalog, naming the place of every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> CatalogError:
        return CatalogError(f"{self.source}: {where}: {message}", where)

    # generic field readers

    def mapping(self, value: Any, where: str, required: Sequence[str], optional: Sequence[str] = ()) -> dict:
        if not isinstance(value, Mapping):
            raise self.fail(where, f"expected a mapping, got {type(value).__name__}")
        unknown = sorted(set(value) - set(required) - set(optional), key=str)
        if unknown:
            raise self.fail(where, f"unknown key(s) {', '.join(map(str, unknown))}")
        missing = [k for k in required if k not in value]
        if missing:
            raise self.fail(where, f"missing key(s) {', '.join(missing)}")
        return dict(value)

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"expected a non-empty string, got {value!r}")
        return value.strip()

    def integer(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"expected an integer, got {value!r}")
        return value

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, got {value!r}")
        return value

    def listing(self, value: Any, where: str) -> list:
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list, got {type(value).__name__}")
        return value

    def version_range(self, value: Any, where: str) -> VersionRange:
        try:
            return VersionRange.parse(str(value))
        except ValueError as e:
            raise self.fail(where, str(e)) from None

    def location(self, value: Any, where: str) -> Location:
        try:
            return Location.parse(str(value))
        except ValueError as e:
            raise self.fail(where, str(e)) from None

    # top level

    def catalog(self, doc: Any) -> Catalog:
        top = self.mapping(doc, "top level", ("schema", "capabilities", "hooks", "gaps"), ("verified",))
        if top["schema"] != SCHEMA:
            raise self.fail("schema", f"unsupported schema {top['schema']!r} (this gohook reads {SCHEMA})")
        verified = tuple(
            self.version(v, f"verified[{i}]") for i, v in enumerate(self.listing(top.get("verified", []), "verified"))
        )
        caps = self.capabilities(top["capabilities"])
        self.known = {c.name for c in caps}
        entries = tuple(self.entry(e, i) for i, e in enumerate(self.listing(top["hooks"], "hooks")))
        self.check_overlaps(entries)
        gaps = tuple(self.gap(g, i) for i, g in enumerate(self.listing(top["gaps"], "gaps")))
        return Catalog(caps, entries, gaps, verified, self.source)

    def version(self, value: Any, where: str) -> GoVersion:
        try:
            return GoVersion.parse(str(value))
        except ValueError as e:
            raise self.fail(where, str(e)) from None

    def capabilities(self, value: Any) -> tuple[Capability, ...]:
        caps: list[Capability] = []
        for i, raw in enumerate(self.listing(value, "capabilities")):
            where = f"capabilities[{i}]"
            m = self.mapping(raw, where, ("name", "bit", "description", "capslock"))
            name = self.string(m["name"], f"{where}.name")
            where = f"{where} {name}"
            if not _CAPABILITY_NAME.match(name) or name == ALL:
                raise self.fail(where, f"bad capability name {name!r} (lower case, 'family' or 'family.name')")
            bit = self.integer(m["bit"], f"{where}.bit")
            if not 0 <= bit < 64:
                raise self.fail(f"{where}.bit", f"{bit} does not fit a u64 mask (0..63)")
            capslock = tuple(
                self.string(c, f"{where}.capslock") for c in self.listing(m["capslock"], f"{where}.capslock")
            )
            for c in capslock:
                if c not in CAPSLOCK_NAMES:
                    raise self.fail(f"{where}.capslock", f"{c!r} is not a Capslock capability")
            caps.append(Capability(name, bit, self.string(m["description"], f"{where}.description"), capslock))
        if not caps:
            raise self.fail("capabilities", "no capabilities defined")
        seen_names: set[str] = set()
        seen_bits: dict[int, str] = {}
        for cap in caps:
            if cap.name in seen_names:
                raise self.fail(f"capability {cap.name}", "defined twice")
            if cap.bit in seen_bits:
                raise self.fail(f"capability {cap.name}", f"bit {cap.bit} already belongs to {seen_bits[cap.bit]}")
            seen_names.add(cap.name)
            seen_bits[cap.bit] = cap.name
        if [c.bit for c in caps] != sorted(c.bit for c in caps):
            raise self.fail("capabilities", "list capabilities in bit order")
        families = {c.family for c in caps if "." in c.name}
        for cap in caps:
            if "." not in cap.name and cap.name in families:
                raise self.fail(f"capability {cap.name}", "is also the name of a family")
        return tuple(caps)

    def cap_name(self, value: Any, where: str) -> str:
        name = self.string(value, where)
        if name not in self.known:
            close = difflib.get_close_matches(name, sorted(self.known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise self.fail(where, f"unknown capability {name!r}{hint}")
        return name

    # hooks

    _ENTRY_KEYS = ("function", "signature", "reaches", "why")
    _ENTRY_OPTIONAL = (
        "go",
        "abi",
        "capability",
        "rule",
        "arguments",
        "not_captured",
        "direct_caller_only",
        "presence",
        "versions",
    )
    _VARIANT_KEYS = ("function", "signature", "arguments", "not_captured", "rule", "capability")

    def entry(self, raw: Any, index: int) -> HookEntry:
        name = raw.get("function", "?") if isinstance(raw, Mapping) else "?"
        where = f"hooks[{index}] {name}"
        m = self.mapping(raw, where, self._ENTRY_KEYS, self._ENTRY_OPTIONAL)
        base = self.spec(m, where, self.version_range(m.get("go", "-"), f"{where}.go"))
        variants = []
        for j, vraw in enumerate(self.listing(m.get("versions", []), f"{where}.versions")):
            vwhere = f"{where}.versions[{j}]"
            vm = self.mapping(vraw, vwhere, ("go",), self._VARIANT_KEYS)
            rng = self.version_range(vm.pop("go"), f"{vwhere}.go")
            if not rng.within(base.go):
                raise self.fail(vwhere, f"Go range {rng} lies outside the entry's range {base.go}")
            merged = {k: v for k, v in m.items() if k != "versions"}
            if "capability" in vm or "rule" in vm:
                merged.pop("capability", None)
                merged.pop("rule", None)
            merged.update(vm)
            variants.append(self.spec(merged, vwhere, rng))
        for a, b in _pairs(variants):
            if a.go.overlaps(b.go):
                raise self.fail(where, f"variants for Go {a.go} and {b.go} overlap")
        return HookEntry(base, tuple(variants))

    def spec(self, m: Mapping[str, Any], where: str, go: VersionRange) -> HookSpec:
        function = self.string(m["function"], f"{where}.function")
        abi = self.string(m.get("abi", "internal"), f"{where}.abi")
        if abi not in ("internal", "abi0"):
            raise self.fail(f"{where}.abi", f"expected internal or abi0, got {abi!r}")
        signature = self.string(m["signature"], f"{where}.signature")
        try:
            sig_name, params = parse_signature(signature, abi)
        except ValueError as e:
            raise self.fail(f"{where}.signature", str(e)) from None
        short = function.rsplit(".", 1)[-1]
        if sig_name != short:
            raise self.fail(f"{where}.signature", f"declares {sig_name!r}, but the function is {short!r}")
        has_cap, has_rule = "capability" in m, "rule" in m
        if has_cap == has_rule:
            raise self.fail(where, "give exactly one of capability and rule")
        capability = self.cap_name(m["capability"], f"{where}.capability") if has_cap else None
        rule = self.rule(m["rule"], f"{where}.rule", params) if has_rule else None
        arguments = tuple(
            self.argument(a, f"{where}.arguments[{i}]", params)
            for i, a in enumerate(self.listing(m.get("arguments", []), f"{where}.arguments"))
        )
        not_captured = m.get("not_captured")
        if not arguments and not_captured is None:
            raise self.fail(where, "no arguments: say why in not_captured")
        if not_captured is not None:
            not_captured = self.string(not_captured, f"{where}.not_captured")
        presence_text = self.string(m.get("presence", "always"), f"{where}.presence")
        try:
            presence = Presence(presence_text)
        except ValueError:
            raise self.fail(
                f"{where}.presence", f"expected always, cgo or not_inlined, got {presence_text!r}"
            ) from None
        reaches = tuple(self.string(r, f"{where}.reaches") for r in self.listing(m["reaches"], f"{where}.reaches"))
        if not reaches:
            raise self.fail(f"{where}.reaches", "name at least one public API")
        return HookSpec(
            function=function,
            signature=signature,
            abi=abi,
            capability=capability,
            rule=rule,
            arguments=arguments,
            not_captured=not_captured,
            direct_caller_only=self.boolean(m.get("direct_caller_only", False), f"{where}.direct_caller_only"),
            presence=presence,
            reaches=reaches,
            why=self.string(m["why"], f"{where}.why"),
            go=go,
        )

    def param(self, name: str, params: Sequence[Param], where: str) -> int:
        for i, p in enumerate(params):
            if p.name == name:
                return i
        raise self.fail(where, f"the signature has no parameter {name!r} ({', '.join(p.name for p in params)})")

    def words_from(self, params: Sequence[Param], index: int, count: int, where: str) -> tuple[Location, ...]:
        flat = [w for p in params[index:] for w in p.words][:count]
        if len(flat) < count or any(w is None for w in flat):
            raise self.fail(where, f"parameter {params[index].name!r} is not in {count} argument register(s)")
        return tuple(w for w in flat if w is not None)

    def rule(self, raw: Any, where: str, params: Sequence[Param]) -> Rule:
        kind = raw.get("kind") if isinstance(raw, Mapping) else None
        if kind == "flags":
            m = self.mapping(raw, where, ("kind", "param", "at", "mask", "set", "clear"))
        elif kind == "value":
            m = self.mapping(raw, where, ("kind", "param", "at", "cases"), ("default",))
        else:
            raise self.fail(f"{where}.kind", f"expected flags or value, got {kind!r}")
        pname = self.string(m["param"], f"{where}.param")
        at = self.location(m["at"], f"{where}.at")
        expected = self.words_from(params, self.param(pname, params, f"{where}.param"), 1, f"{where}.param")
        if expected[0] != at:
            raise self.fail(f"{where}.at", f"parameter {pname!r} is at {expected[0]}, not {at}")
        if kind == "flags":
            mask = self.integer(m["mask"], f"{where}.mask")
            if mask <= 0:
                raise self.fail(f"{where}.mask", "must be a positive bit mask")
            return FlagRule(
                pname, at, mask, self.cap_name(m["set"], f"{where}.set"), self.cap_name(m["clear"], f"{where}.clear")
            )
        cases = []
        for i, c in enumerate(self.listing(m["cases"], f"{where}.cases")):
            cw = f"{where}.cases[{i}]"
            cm = self.mapping(c, cw, ("value", "name", "capability"))
            cases.append(
                ValueCase(
                    self.integer(cm["value"], f"{cw}.value"),
                    self.string(cm["name"], f"{cw}.name"),
                    self.cap_name(cm["capability"], f"{cw}.capability"),
                )
            )
        values = [c.value for c in cases]
        if len(set(values)) != len(values):
            raise self.fail(f"{where}.cases", "a value appears twice")
        if not cases:
            raise self.fail(f"{where}.cases", "give at least one case")
        default = m.get("default")
        default = None if default is None else self.cap_name(default, f"{where}.default")
        return ValueRule(pname, at, tuple(cases), default)

    def argument(self, raw: Any, where: str, params: Sequence[Param]) -> ArgSpec:
        m = self.mapping(raw, where, ("name", "kind", "at"), ("fields",))
        name = self.string(m["name"], f"{where}.name")
        kind_text = self.string(m["kind"], f"{where}.kind")
        try:
            kind = ArgKind(kind_text)
        except ValueError:
            kinds = ", ".join(k.value for k in ArgKind)
            raise self.fail(f"{where}.kind", f"unknown kind {kind_text!r} (expected {kinds})") from None
        at = tuple(self.location(a, f"{where}.at") for a in self.listing(m["at"], f"{where}.at"))
        if len(at) != ARG_WORDS[kind]:
            raise self.fail(f"{where}.at", f"a {kind.value} takes {ARG_WORDS[kind]} location(s), got {len(at)}")
        index = self.param(name, params, f"{where}.name")
        ptype = params[index].type
        compatible = {
            ArgKind.STRING: ptype == "string",
            ArgKind.CSTRING: ptype == "*byte",
            ArgKind.STRINGS_FIRST: ptype == "[]string",
            ArgKind.INT: len(params[index].words) == 1,
            ArgKind.SOCKADDR: ptype == "unsafe.Pointer",
            ArgKind.STRUCT: ptype.startswith("*"),
        }[kind]
        if not compatible:
            raise self.fail(f"{where}.kind", f"a {kind.value} cannot be read from parameter {name!r} of type {ptype}")
        expected = self.words_from(params, index, len(at), f"{where}.at")
        if expected != at:
            got = ", ".join(map(str, at))
            want = ", ".join(map(str, expected))
            raise self.fail(f"{where}.at", f"the signature puts {name!r} in [{want}], not [{got}]")
        fields: list[StructField] = []
        if kind is ArgKind.STRUCT:
            for i, f in enumerate(self.listing(m.get("fields"), f"{where}.fields")):
                fw = f"{where}.fields[{i}]"
                fm = self.mapping(f, fw, ("name", "go_field", "offset", "kind"))
                go_field = self.string(fm["go_field"], f"{fw}.go_field")
                if not _GO_FIELD.match(go_field):
                    raise self.fail(f"{fw}.go_field", f"expected package.Type.Field, got {go_field!r}")
                offset = self.integer(fm["offset"], f"{fw}.offset")
                if offset < 0 or offset % 8:
                    raise self.fail(f"{fw}.offset", f"{offset} is not a word-aligned offset")
                fkind_text = self.string(fm["kind"], f"{fw}.kind")
                try:
                    fkind = FieldKind(fkind_text)
                except ValueError:
                    raise self.fail(f"{fw}.kind", f"expected int, string or bytes, got {fkind_text!r}") from None
                fields.append(StructField(self.string(fm["name"], f"{fw}.name"), go_field, offset, fkind))
            if not fields:
                raise self.fail(f"{where}.fields", "a struct argument needs at least one field")
        elif "fields" in m:
            raise self.fail(f"{where}.fields", "only struct arguments have fields")
        return ArgSpec(name, kind, at, tuple(fields))

    def check_overlaps(self, entries: Sequence[HookEntry]) -> None:
        """Two entries may share a function only for disjoint releases or capabilities."""
        specs = [(spec, e) for e in entries for spec in e.specs]
        for (a, ea), (b, eb) in _pairs(specs):
            if ea is eb or a.function != b.function or not a.go.overlaps(b.go):
                continue
            if a.capabilities & b.capabilities:
                raise self.fail(
                    f"hooks {a.function}", f"listed twice for Go {a.go} and {b.go} with the same capability"
                )

    # gaps

    def gap(self, raw: Any, index: int) -> GapSpec:
        name = raw.get("function", "?") if isinstance(raw, Mapping) else "?"
        where = f"gaps[{index}] {name}"
        m = self.mapping(raw, where, ("function", "kind", "detail", "remedy"), ("abi", "go"))
        kind = self.string(m["kind"], f"{where}.kind")
        if kind not in GAP_KINDS:
            raise self.fail(f"{where}.kind", f"expected one of {', '.join(sorted(GAP_KINDS))}, got {kind!r}")
        abi = self.string(m.get("abi", "internal"), f"{where}.abi")
        if abi not in ("internal", "abi0"):
            raise self.fail(f"{where}.abi", f"expected internal or abi0, got {abi!r}")
        return GapSpec(
            function=self.string(m["function"], f"{where}.function"),
            kind=kind,
            abi=abi,
            go=self.version_range(m.get("go", "-"), f"{where}.go"),
            detail=self.string(m["detail"], f"{where}.detail"),
            remedy=self.string(m["remedy"], f"{where}.remedy"),
        )


def _pairs(items: Sequence[Any]) -> Iterable[tuple[Any, Any]]:
    for i, a in enumerate(items):
        for b in items[i + 1 :]:
            yield a, b
