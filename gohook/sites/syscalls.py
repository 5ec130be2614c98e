"""x86-64 system calls: the classification of every number, and the rules the sentinel decides on.

Two things live here.

**The classification** (gohook/sites/syscalls.yaml, package data): every x86-64 system call number,
from 0 to the newest one the table knows, as a capability of the catalog (the call can use it),
``tamper`` (it can disable or evade enforcement itself), ``none`` (it only touches the process's own
memory, threads and settings, or descriptors it already holds) or ``unused`` (no system call has the
number), each with a one-line reason and, when arguments decide, a ``depends`` note; the class is
then the worst case. :func:`parse_syscall_table` validates the text strictly (every mistake is one
:class:`SyscallTableError` naming file and line), :func:`load_syscall_table` reads the packaged file
through importlib.resources, and :func:`classify` / :func:`syscall_name` answer from the packaged
table (loaded once per process). A number after the table's last entry classifies as ``unknown``: a
kernel newer than the table (tests/sites/test_syscalls.py fails until it is classified).

**The sentinel's rules** (:data:`SYSCALLS`): the hook catalog (gohook/sites/catalog.yaml) names Go
functions; code that reaches the kernel without them (a module's own assembly, C code behind cgo, a
path the catalog misses) is judged at the system call instead. These rules say which system calls
need which capability, with the same semantics as the catalog's hooks for them: an open needs
files.write when its flags ask for writing (O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND, the mask of
the syscall.openat hook), else files.read; every call that changes a path needs files.write; connect
needs network.connect; bind and listen need network.listen; execve and execveat need exec. They are
a subset of the classification and must agree with it (:func:`rule_disagreements`, tested): the
class is the rule's worst case.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

import yaml

from gohook.sites.catalog import CatalogError, load_catalog

OPEN_WRITE_MASK = 0x643  # O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND (as the catalog's syscall.openat rule)


#: The judges of a rule (SyscallSpec.judges): the raw system-call hooks and `syscall` instruction sites
#: of module code (RAW), the raw_syscalls:sys_enter sentinel (SENTINEL), the per-system-call guard
#: tracepoints that run whatever --sentinel says (GUARD).
RAW: Final = "raw"
SENTINEL: Final = "sentinel"
GUARD: Final = "guard"
JUDGES: Final = (RAW, SENTINEL, GUARD)

#: ArgTest kinds (GOHOOK_T_* of gohook.h).
TEST_KINDS: Final = ("mask", "eq", "guard", "text", "self", "ptr", "type")


@dataclass(frozen=True, slots=True)
class ArgTest:
    """One argument test of a rule: when it holds, the call needs ``capability`` (None: nothing).

    mask: ``args[arg] & operand``; eq: ``args[arg] == operand``; guard: ``args[arg]`` (a pid or tid)
    names one of gohook's own processes or threads, from gohook's pid namespace; text: the range
    ``[args[arg], args[arg] + args[arg + 1])`` overlaps the binary's code in the process; self:
    ``args[arg]`` is the calling process; ptr: the word at user address ``args[arg] + operand`` is not 0;
    type: bit ``args[arg] & 0xf`` of ``operand`` is set (socket(2)'s type, without its flags, is one of a set).
    """

    kind: str
    arg: int
    capability: str | None
    operand: int = 0


@dataclass(frozen=True, slots=True)
class SyscallSpec:
    nr: int
    name: str
    capability: str | None  # when no test holds (None: the call needs nothing), or the flags say read
    write_capability: str = ""  # when args[flags_arg] & OPEN_WRITE_MASK
    flags_arg: int = -1
    path_arg: int = -1  # argument index of a NUL-terminated path to report
    sockaddr_arg: int = -1  # argument index of a struct sockaddr (its length follows)
    tests: tuple[ArgTest, ...] = ()  # at most two, tried in order (the flags rule, if any, is the first)
    judges: frozenset[str] = frozenset({RAW, SENTINEL})

    @property
    def all_tests(self) -> tuple[ArgTest, ...]:
        """The flags rule as a mask test, then the other tests."""
        if not self.write_capability:
            return self.tests
        return (ArgTest("mask", self.flags_arg, self.write_capability, OPEN_WRITE_MASK), *self.tests)


SYSCALLS: tuple[SyscallSpec, ...] = (
    SyscallSpec(2, "open", "files.read", "files.write", flags_arg=1, path_arg=0),
    SyscallSpec(257, "openat", "files.read", "files.write", flags_arg=2, path_arg=1),
    SyscallSpec(437, "openat2", "files.write", path_arg=1),  # flags sit in a struct: assume the worst
    SyscallSpec(85, "creat", "files.write", path_arg=0),
    SyscallSpec(87, "unlink", "files.write", path_arg=0),
    SyscallSpec(263, "unlinkat", "files.write", path_arg=1),
    SyscallSpec(84, "rmdir", "files.write", path_arg=0),
    SyscallSpec(83, "mkdir", "files.write", path_arg=0),
    SyscallSpec(258, "mkdirat", "files.write", path_arg=1),
    SyscallSpec(82, "rename", "files.write", path_arg=0),
    SyscallSpec(264, "renameat", "files.write", path_arg=1),
    SyscallSpec(316, "renameat2", "files.write", path_arg=1),
    SyscallSpec(86, "link", "files.write", path_arg=0),
    SyscallSpec(265, "linkat", "files.write", path_arg=1),
    SyscallSpec(88, "symlink", "files.write", path_arg=1),
    SyscallSpec(266, "symlinkat", "files.write", path_arg=2),
    SyscallSpec(76, "truncate", "files.write", path_arg=0),
    SyscallSpec(133, "mknod", "files.write", path_arg=0),
    SyscallSpec(259, "mknodat", "files.write", path_arg=1),
    SyscallSpec(42, "connect", "network.connect", sockaddr_arg=1),
    SyscallSpec(49, "bind", "network.listen", sockaddr_arg=1),
    SyscallSpec(50, "listen", "network.listen"),
    SyscallSpec(59, "execve", "exec", path_arg=0),
    SyscallSpec(322, "execveat", "exec", path_arg=1),
)

BY_NUMBER = {s.nr: s for s in SYSCALLS}

PROT_EXEC: Final = 0x4
MREMAP_FIXED: Final = 0x2
READ_IMPLIES_EXEC: Final = 0x0400000
PERSONALITY_QUERY: Final = 0xFFFFFFFF
PTRACE_TRACEME: Final = 0
SHM_EXEC: Final = 0o100000
AF_PACKET: Final = 17
SOCK_RAW: Final = 3
SOCK_PACKET: Final = 10
MEMORY = frozenset({RAW, GUARD})

#: Rules that read the arguments of system calls whose class depends on them (the `depends` of the
#: classification). The GUARD ones are judged by per-system-call tracepoints in every enforced
#: process, sentinel or not: the calls that can make memory executable, drop or patch the probed
#: code, signal, trace or write gohook's own processes, or open a second system-call interface. A
#: tracepoint cannot stop the call itself, but the SIGKILL it sends lands before the process runs
#: another instruction: before the code made executable or writable is run or written, the
#: io_uring is used, the signal's sender makes another call. The sends are the sentinel's: their Go
#: wrappers (syscall.sendto, syscall.sendmsg) are hook points with the same semantics.
REFINED: tuple[SyscallSpec, ...] = (
    SyscallSpec(9, "mmap", None, judges=MEMORY, tests=(
        ArgTest("mask", 2, "memory.exec", PROT_EXEC), ArgTest("text", 0, "memory.exec"))),
    SyscallSpec(10, "mprotect", None, judges=MEMORY, tests=(
        ArgTest("mask", 2, "memory.exec", PROT_EXEC), ArgTest("text", 0, "memory.exec"))),
    SyscallSpec(329, "pkey_mprotect", None, judges=MEMORY, tests=(
        ArgTest("mask", 2, "memory.exec", PROT_EXEC), ArgTest("text", 0, "memory.exec"))),
    SyscallSpec(25, "mremap", None, judges=MEMORY, tests=(
        ArgTest("text", 0, "memory.exec"), ArgTest("mask", 3, "memory.exec", MREMAP_FIXED))),
    SyscallSpec(28, "madvise", None, judges=MEMORY, tests=(ArgTest("text", 0, "tamper"),)),
    SyscallSpec(135, "personality", None, judges=MEMORY, tests=(
        ArgTest("eq", 0, None, PERSONALITY_QUERY), ArgTest("mask", 0, "memory.exec", READ_IMPLIES_EXEC))),
    SyscallSpec(440, "process_madvise", "tamper", judges=MEMORY),
    SyscallSpec(62, "kill", "system.modify", judges=MEMORY, tests=(
        ArgTest("guard", 0, "tamper"), ArgTest("self", 0, None))),
    SyscallSpec(200, "tkill", "system.modify", judges=MEMORY, tests=(ArgTest("guard", 0, "tamper"),)),
    SyscallSpec(234, "tgkill", "system.modify", judges=MEMORY, tests=(
        ArgTest("guard", 0, "tamper"), ArgTest("self", 0, None))),
    SyscallSpec(129, "rt_sigqueueinfo", "system.modify", judges=MEMORY, tests=(
        ArgTest("guard", 0, "tamper"), ArgTest("self", 0, None))),
    SyscallSpec(297, "rt_tgsigqueueinfo", "system.modify", judges=MEMORY, tests=(
        ArgTest("guard", 0, "tamper"), ArgTest("self", 0, None))),
    # a pidfd by itself does nothing: signalling through it is pidfd_send_signal (system.modify)
    SyscallSpec(434, "pidfd_open", None, judges=MEMORY, tests=(ArgTest("guard", 0, "tamper"),)),
    SyscallSpec(101, "ptrace", "process.debug", judges=MEMORY, tests=(
        ArgTest("guard", 1, "tamper"), ArgTest("eq", 0, None, PTRACE_TRACEME))),
    SyscallSpec(310, "process_vm_readv", "process.debug", judges=MEMORY, tests=(
        ArgTest("guard", 0, "tamper"), ArgTest("self", 0, None))),
    SyscallSpec(311, "process_vm_writev", "process.debug", judges=MEMORY, tests=(
        ArgTest("guard", 0, "tamper"), ArgTest("self", 0, None))),
    SyscallSpec(438, "pidfd_getfd", "process.debug", judges=MEMORY),
    SyscallSpec(425, "io_uring_setup", "io_uring", judges=MEMORY),
    SyscallSpec(321, "bpf", "kernel.trace", judges=MEMORY),
    SyscallSpec(298, "perf_event_open", "kernel.trace", judges=MEMORY),
    SyscallSpec(30, "shmat", "files.write", tests=(ArgTest("mask", 2, "memory.exec", SHM_EXEC),),
                judges=frozenset({RAW})),
    # raw and packet sockets receive the host's traffic with no bind; other sockets carry nothing until
    # connect, bind or a send with an address (each judged); (AF_INET, SOCK_PACKET) is a packet socket too
    SyscallSpec(41, "socket", None, judges=frozenset({RAW}), tests=(
        ArgTest("eq", 0, "network.listen", AF_PACKET),
        ArgTest("type", 1, "network.listen", 1 << SOCK_RAW | 1 << SOCK_PACKET))),
    SyscallSpec(44, "sendto", None, sockaddr_arg=4, tests=(ArgTest("mask", 4, "network.connect", 2**64 - 1),)),
    SyscallSpec(46, "sendmsg", None, tests=(ArgTest("ptr", 1, "network.connect", 0),)),
    SyscallSpec(307, "sendmmsg", "network.connect"),
)


def all_rules(table: SyscallTable | None = None) -> tuple[SyscallSpec, ...]:
    """Every rule, by number: SYSCALLS, REFINED, and for every other capability or tamper class of the
    classification its worst case, for the RAW judge only (a module's own raw system call needs the
    capability of the number it issues; the sentinel keeps to the calls the catalog's hooks cover)."""
    table = table if table is not None else syscall_table()
    rules = {s.nr: s for s in REFINED} | {s.nr: s for s in SYSCALLS}
    for e in table.entries:
        if e.nr in rules or e.nr >= MAX_NR:
            continue
        if e.capability is not None or e.class_ == TAMPER:
            rules[e.nr] = SyscallSpec(e.nr, e.name, e.capability or TAMPER, judges=frozenset({RAW}))
    return tuple(rules[nr] for nr in sorted(rules))
MAX_NR = 512  # size of the kernel's rule table (GOHOOK_NSYSCALLS)

# --- the classification ----------------------------------------------------------------

SCHEMA: Final = 1
TAMPER: Final = "tamper"  # the call can disable or evade enforcement itself
NONE: Final = "none"  # only the process's own memory, threads, settings or held descriptors
UNUSED: Final = "unused"  # no system call has the number (ENOSYS)
UNKNOWN: Final = "unknown"  # after the table's last entry: a kernel newer than the table
NON_CAPABILITY_CLASSES: Final = frozenset({TAMPER, NONE, UNUSED})

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_LINE = "__line__"  # key the line-recording loader adds to every mapping


class SyscallTableError(CatalogError):
    """syscalls.yaml is malformed; the message starts with "file:line:" of the entry at fault."""


@dataclass(frozen=True, slots=True)
class SyscallClass:
    """The classification of one system call number.

    ``class_`` is a catalog capability, ``tamper``, ``none``, ``unused`` or (for a number after the
    table's last entry) ``unknown``. ``depends`` names the arguments that decide, when they do; the
    class is then the worst case. ``name`` is empty for unused and unknown numbers, ``line`` is the
    entry's line in the data (0 for unknown numbers).
    """

    nr: int
    name: str
    class_: str
    reason: str
    depends: str = ""
    line: int = 0

    @property
    def capability(self) -> str | None:
        """The capability the call can use, or None (tamper, none, unused, unknown)."""
        return None if self.class_ in NON_CAPABILITY_CLASSES or self.class_ == UNKNOWN else self.class_


@dataclass(frozen=True)
class SyscallTable:
    """Every number from 0 to the last entry, classified (ranges expanded: ``entries[nr].nr == nr``)."""

    entries: tuple[SyscallClass, ...]
    source: str = "syscalls.yaml"

    @property
    def last(self) -> int:
        """The highest number the table classifies."""
        return len(self.entries) - 1

    def classify(self, nr: int) -> SyscallClass:
        """The entry for ``nr``; class ``unknown`` for a number outside the table."""
        if 0 <= nr < len(self.entries):
            return self.entries[nr]
        return SyscallClass(nr, "", UNKNOWN, f"not in {self.source}, whose last number is {self.last}")

    def named(self) -> dict[str, SyscallClass]:
        """Every system call that has a name, by name."""
        return {e.name: e for e in self.entries if e.name}

    def with_class(self, class_: str) -> tuple[SyscallClass, ...]:
        """The system calls of one class, in number order."""
        return tuple(e for e in self.entries if e.class_ == class_)


def parse_syscall_table(
    text: str, source: str = "syscalls.yaml", capabilities: Iterable[str] | None = None
) -> SyscallTable:
    """Parse and validate the classification; every problem raises :class:`SyscallTableError`.

    ``capabilities`` are the capability names a class may be (the catalog's); None accepts any
    well-formed name (for callers that validate classes themselves).
    """
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # a SafeLoader that records lines
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise SyscallTableError(f"{source}{line}: invalid YAML: {problem}") from e
    return _TableParser(source, None if capabilities is None else frozenset(capabilities)).table(doc)


def load_syscall_table(path: str | Path | None = None) -> SyscallTable:
    """Load and validate the packaged classification (or the YAML file at ``path``) against the catalog."""
    names = [c.name for c in load_catalog().capabilities]
    if path is None:
        text = resources.files("gohook.sites").joinpath("syscalls.yaml").read_text(encoding="utf-8")
        return parse_syscall_table(text, "syscalls.yaml", names)
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise SyscallTableError(f"{p}: cannot read: {e.strerror}") from e
    return parse_syscall_table(text, str(p), names)


@cache
def syscall_table() -> SyscallTable:
    """The packaged classification, loaded and validated once per process (the data never changes)."""
    return load_syscall_table()


def classify(nr: int) -> SyscallClass:
    """The packaged classification of system call ``nr`` (class ``unknown`` past the table's end)."""
    return syscall_table().classify(nr)


def syscall_name(nr: int) -> str:
    """`openat` for 257; `syscall 999` for numbers the table does not name (unused or unknown)."""
    return syscall_table().classify(nr).name or f"syscall {nr}"


def rule_disagreements(table: SyscallTable, specs: Sequence[SyscallSpec] = SYSCALLS) -> list[str]:
    """Where the sentinel's rules and the classification disagree (empty when they agree).

    A rule must name the table's system call, and its worst case (the write capability of a flags
    rule, else its capability) must be the class; a flags rule must also be explained by the entry's
    ``depends`` (the mask and the read capability).
    """
    problems = []
    for spec in specs:
        entry = table.classify(spec.nr)
        worst = spec.write_capability or spec.capability or NONE
        if entry.name != spec.name:
            problems.append(f"{spec.nr}: the rule says {spec.name!r}, the table {entry.name or entry.class_!r}")
        if entry.class_ != worst:
            problems.append(f"{spec.name}: the rule's worst case is {worst}, the table's class {entry.class_}")
        described = f"{OPEN_WRITE_MASK:#x}" in entry.depends and spec.capability in entry.depends
        if spec.write_capability and not described:
            problems.append(
                f"{spec.name}: a flags rule ({OPEN_WRITE_MASK:#x} -> {spec.write_capability}, else {spec.capability})"
                f" that the entry's depends does not describe: {entry.depends!r}"
            )
    return problems


class _LinedList(list):
    """A YAML sequence that remembers the line of each item (``lines``)."""

    lines: list[int]


class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]  # libyaml when present
    """A SafeLoader that records lines (``__line__`` in mappings, ``lines`` of sequences), rejecting repeated keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice", key_node.start_mark
                )
            seen.add(key)
        mapping = super().construct_mapping(node, deep=deep)
        mapping[_LINE] = node.start_mark.line + 1
        return mapping


def _construct_lined_list(loader: _LineLoader, node: yaml.SequenceNode) -> Iterator[_LinedList]:
    data = _LinedList()
    data.lines = [item.start_mark.line + 1 for item in node.value]
    yield data
    data.extend(loader.construct_sequence(node))


_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_lined_list)


class _TableParser:
    """Turns the YAML document into a SyscallTable, naming the line of every error."""

    _KEYS = frozenset({"nr", "name", "class", "reason", "depends", "last"})

    def __init__(self, source: str, capabilities: frozenset[str] | None) -> None:
        self.source = source
        self.capabilities = capabilities

    def fail(self, line: int, message: str) -> SyscallTableError:
        return SyscallTableError(f"{self.source}:{line}: {message}", f"line {line}")

    def table(self, doc: Any) -> SyscallTable:
        if not isinstance(doc, Mapping):
            raise self.fail(1, "expected a mapping with schema and syscalls")
        line = doc.get(_LINE, 1)
        keys = set(doc) - {_LINE}
        if keys != {"schema", "syscalls"}:
            raise self.fail(line, f"expected the keys schema and syscalls, got {', '.join(sorted(map(str, keys)))}")
        if doc["schema"] != SCHEMA:
            raise self.fail(line, f"unsupported schema {doc['schema']!r} (this gohook reads {SCHEMA})")
        raw = doc["syscalls"]
        if not isinstance(raw, list) or not raw:
            raise self.fail(line, "syscalls: expected a non-empty list of entries")
        entries: list[SyscallClass] = []
        names: dict[str, int] = {}
        lines = getattr(raw, "lines", [line] * len(raw))
        for item, item_line in zip(raw, lines, strict=True):
            for entry in self.entry(item, len(entries), item_line):
                if entry.name in names:
                    raise self.fail(entry.line, f"{entry.name} is also number {names[entry.name]}")
                if entry.name:
                    names[entry.name] = entry.nr
                entries.append(entry)
        return SyscallTable(tuple(entries), self.source)

    def entry(self, raw: Any, expected: int, line: int) -> list[SyscallClass]:
        """One entry (a range of ``unused`` numbers expands to several) that must start at ``expected``."""
        if not isinstance(raw, Mapping):
            raise self.fail(line, f"entry for number {expected}: expected a mapping, got {raw!r}")
        unknown = sorted(set(raw) - self._KEYS - {_LINE}, key=str)
        if unknown:
            raise self.fail(line, f"unknown key(s) {', '.join(map(str, unknown))}")
        missing = [k for k in ("nr", "class", "reason") if k not in raw]
        if missing:
            raise self.fail(line, f"missing key(s) {', '.join(missing)}")
        nr = raw["nr"]
        if isinstance(nr, bool) or not isinstance(nr, int):
            raise self.fail(line, f"nr: expected an integer, got {nr!r}")
        if nr != expected:
            raise self.fail(line, f"nr {nr}: expected {expected} (one entry per number, in order, no gap)")
        class_ = self.text(raw["class"], line, "class")
        reason = self.text(raw["reason"], line, "reason")
        depends = self.text(raw["depends"], line, "depends") if "depends" in raw else ""
        self.check_class(class_, line)
        if class_ == UNUSED:
            if "name" in raw or depends:
                raise self.fail(line, "an unused number has no name and no depends")
            last = raw.get("last", nr)
            if isinstance(last, bool) or not isinstance(last, int) or last < nr:
                raise self.fail(line, f"last: expected an integer >= {nr}, got {last!r}")
            return [SyscallClass(n, "", UNUSED, reason, "", line) for n in range(nr, last + 1)]
        if "last" in raw:
            raise self.fail(line, "only unused numbers form ranges (last)")
        if "name" not in raw:
            raise self.fail(line, f"number {nr} ({class_}) needs a name")
        name = self.text(raw["name"], line, "name")
        if not _NAME.match(name):
            raise self.fail(line, f"bad system call name {name!r}")
        return [SyscallClass(nr, name, class_, reason, depends, line)]

    def text(self, value: Any, line: int, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(line, f"{key}: expected a non-empty string, got {value!r}")
        if "\n" in value.strip():
            raise self.fail(line, f"{key}: expected one line")
        return value.strip()

    def check_class(self, class_: str, line: int) -> None:
        if class_ in NON_CAPABILITY_CLASSES:
            return
        if self.capabilities is None:
            if re.match(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$", class_):
                return
            raise self.fail(line, f"class {class_!r} is not a capability name, tamper, none or unused")
        if class_ not in self.capabilities:
            known = sorted(self.capabilities | NON_CAPABILITY_CLASSES)
            close = difflib.get_close_matches(class_, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise self.fail(line, f"class {class_!r} is not a capability, tamper, none or unused{hint}")
