"""Tests of the system call classification (gohook/sites/syscalls.yaml, gohook/sites/syscalls.py).

The table must classify every x86-64 system call. Three sources independent of gohook list them, and
each must agree with the table, number by number and name by name:

- the kernel headers (/usr/include/x86_64-linux-gnu/asm/unistd_64.h, Debian's linux-libc-dev);
- every installed Go toolchain's golang.org/x/sys/unix (zsysnum_linux_amd64.go; the newest one knows
  newer kernels than the headers);
- the running kernel's syscall tracepoints (/sys/kernel/tracing/events/syscalls/, names only: the
  tracepoints do not carry numbers). Without tracefs the part is skipped loudly (CI: it fails).

A number a source knows and the table does not, or a name that differs, fails. The rest checks the
table's shape and API, the agreement of the sentinel's rules (SYSCALLS) and of the catalog's
syscall-number rule with it, the classes of the calls an attacker would reach for, and the loader's
file:line errors.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import gofixtures
import pytest

from gohook.errors import GohookError
from gohook.sites.catalog import CatalogError, GoVersion, ValueRule, load_catalog
from gohook.sites.syscalls import (
    BY_NUMBER,
    MAX_NR,
    NON_CAPABILITY_CLASSES,
    SYSCALLS,
    TAMPER,
    UNKNOWN,
    UNUSED,
    SyscallTable,
    SyscallTableError,
    classify,
    load_syscall_table,
    parse_syscall_table,
    rule_disagreements,
    syscall_name,
)

REPO = Path(__file__).resolve().parents[2]
SYSCALLS_YAML = REPO / "gohook" / "sites" / "syscalls.yaml"
UNISTD_64 = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
ZSYSNUM = Path("src/cmd/vendor/golang.org/x/sys/unix/zsysnum_linux_amd64.go")
TRACEFS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))

#: Tracepoints named after the kernel's SYSCALL_DEFINE function where it differs from the table's name.
TRACEPOINT_NAMES = {
    "newstat": "stat",
    "newfstat": "fstat",
    "newlstat": "lstat",
    "newuname": "uname",
    "sendfile64": "sendfile",
    "umount": "umount2",
}


@pytest.fixture(scope="module")
def table() -> SyscallTable:
    return load_syscall_table()


@pytest.fixture(scope="module")
def capabilities() -> list[str]:
    return [c.name for c in load_catalog().capabilities]


def _disagreements(table: SyscallTable, source: dict[int, str]) -> list[str]:
    """Numbers of a source the table leaves unclassified, or names differently."""
    problems = []
    for nr, name in sorted(source.items()):
        entry = table.classify(nr)
        if entry.class_ in (UNKNOWN, UNUSED):
            problems.append(f"{nr} {name}: unclassified ({entry.class_})")
        elif entry.name != name:
            problems.append(f"{nr} {name}: the table calls it {entry.name}")
    return problems


# --- the table against the kernel's own lists ----------------------------------------------------


def test_every_number_of_the_kernel_headers_is_classified(table: SyscallTable) -> None:
    if not UNISTD_64.is_file():
        gofixtures.loud_skip(f"{UNISTD_64} is missing: install linux-libc-dev")
    found = {int(nr): name for name, nr in re.findall(r"^#define __NR_(\w+)\s+(\d+)$", UNISTD_64.read_text(), re.M)}
    assert len(found) > 300 and found[0] == "read" and found[257] == "openat"
    assert _disagreements(table, found) == []


def _zsysnum(toolchain: gofixtures.Toolchain) -> dict[int, str]:
    text = (gofixtures.goroot(toolchain) / ZSYSNUM).read_text()
    return {int(nr): name.lower() for name, nr in re.findall(r"^\s+SYS_(\w+)\s+=\s+(\d+)$", text, re.M)}


def test_every_number_go_knows_is_classified(table: SyscallTable, toolchain: gofixtures.Toolchain) -> None:
    found = _zsysnum(toolchain)
    assert len(found) > 300 and found[0] == "read" and found[437] == "openat2"
    assert _disagreements(table, found) == []


def test_the_table_reaches_the_newest_go_toolchains_last_number(table: SyscallTable) -> None:
    installed = gofixtures.toolchains()
    if not installed:
        gofixtures.loud_skip("no Go toolchain installed")
    newest = max(installed, key=lambda t: tuple(int(p) for p in t.version.split(".")[:3]))
    last = max(_zsysnum(newest))
    assert table.last >= last
    assert table.classify(table.last + 1).class_ == UNKNOWN


def test_every_syscall_tracepoint_of_the_running_kernel_is_a_classified_name(table: SyscallTable) -> None:
    events = next((root / "events" / "syscalls" for root in TRACEFS if (root / "events" / "syscalls").is_dir()), None)
    if events is None:
        gofixtures.loud_skip("tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing, as root)")
    names = {p.name.removeprefix("sys_enter_") for p in events.iterdir() if p.name.startswith("sys_enter_")}
    assert len(names) > 300, f"only {len(names)} syscall tracepoints under {events}"
    known = table.named()
    missing = sorted(n for n in names if TRACEPOINT_NAMES.get(n, n) not in known)
    assert missing == []
    assert set(TRACEPOINT_NAMES) <= names, "an alias no longer needed: drop it"


# --- shape and API --------------------------------------------------------------------------------


def test_every_class_is_a_capability_tamper_none_or_unused(table: SyscallTable, capabilities: list[str]) -> None:
    classes = {e.class_ for e in table.entries}
    assert classes <= set(capabilities) | NON_CAPABILITY_CLASSES
    assert all(e.reason and "\n" not in e.reason for e in table.entries)
    assert all(e.name for e in table.entries if e.class_ != UNUSED)
    assert [e.nr for e in table.entries] == list(range(table.last + 1))
    assert table.last < MAX_NR  # the kernel rule table holds every number


def test_capabilities_without_hooks_come_from_the_classification(table: SyscallTable) -> None:
    unhooked = {c.name for c in load_catalog().capabilities if not c.hooked}
    assert unhooked == {"io_uring", "kernel.trace", "tamper"}  # memory.exec: Mprotect, mmap; process.debug: ptrace
    assert unhooked <= {e.class_ for e in table.entries}


def test_classify_and_syscall_name() -> None:
    openat = classify(257)
    assert (openat.name, openat.class_, openat.capability) == ("openat", "files.write", "files.write")
    assert "0x643" in openat.depends and openat.line > 0
    assert classify(400).class_ == UNUSED and classify(400).name == "" and classify(400).capability is None
    assert classify(9999).class_ == UNKNOWN and classify(-1).class_ == UNKNOWN
    assert classify(28).capability is None and classify(28).class_ == TAMPER
    assert syscall_name(257) == "openat" and syscall_name(335) == "uretprobe"
    assert syscall_name(400) == "syscall 400" and syscall_name(999) == "syscall 999"
    assert all(syscall_name(s.nr) == s.name for s in SYSCALLS)


def test_package_data_ships_the_table() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "syscalls.yaml" in pyproject["tool"]["setuptools"]["package-data"]["gohook.sites"]


# --- agreement with the sentinel's rules and the catalog -------------------------------------------


def test_the_sentinel_rules_agree_with_the_classification(table: SyscallTable) -> None:
    assert rule_disagreements(table) == []
    assert set(BY_NUMBER) == {s.nr for s in SYSCALLS}


def test_a_rule_that_disagrees_is_reported(table: SyscallTable) -> None:
    openat = BY_NUMBER[257]
    wrong_class = dataclasses.replace(BY_NUMBER[42], capability="network.listen")
    wrong_name = dataclasses.replace(BY_NUMBER[87], name="unlinkat")
    no_flags = dataclasses.replace(openat, write_capability="")
    problems = rule_disagreements(table, [wrong_class, wrong_name, no_flags])
    assert problems == [
        "connect: the rule's worst case is network.listen, the table's class network.connect",
        "87: the rule says 'unlinkat', the table 'unlink'",
        "openat: the rule's worst case is files.read, the table's class files.write",
    ]
    chmod = dataclasses.replace(openat, nr=90, name="chmod")  # a flags rule on an entry without depends
    assert "that the entry's depends does not describe" in rule_disagreements(table, [chmod])[0]


def test_the_catalogs_syscall_number_rule_agrees_with_the_classification(table: SyscallTable) -> None:
    (spec,) = load_catalog().hooks_named("syscall.rawSyscallNoError", GoVersion(1, 27))
    assert isinstance(spec.rule, ValueRule)
    for case in spec.rule.cases:
        entry = table.classify(case.value)
        assert (entry.name, entry.class_) == (case.name, case.capability)


# --- what an attacker reaches for ---------------------------------------------------------------

ATTACKER = {
    # another way to the network: sending with an address needs no connect (TCP fast open connects)
    "sendto": "network.connect",
    "sendmsg": "network.connect",
    "sendmmsg": "network.connect",
    "socket": "network.listen",  # raw and packet sockets receive without bind
    # a second system call interface
    "io_uring_setup": "io_uring",
    "io_uring_enter": "io_uring",
    "io_uring_register": "io_uring",
    # other processes
    "ptrace": "process.debug",
    "process_vm_readv": "process.debug",
    "process_vm_writev": "process.debug",
    "pidfd_getfd": "process.debug",
    "kcmp": "process.debug",
    # code
    "mmap": "memory.exec",
    "mprotect": "memory.exec",
    "pkey_mprotect": "memory.exec",
    "mremap": "memory.exec",
    "personality": "memory.exec",
    "memfd_create": "none",  # running it needs execveat or mmap(PROT_EXEC)
    "execveat": "exec",
    "clone": "exec",
    "clone3": "exec",
    "fork": "exec",
    # the monitor itself
    "madvise": TAMPER,  # MADV_DONTNEED on code drops the uprobe breakpoints
    "process_madvise": TAMPER,
    "init_module": TAMPER,
    "finit_module": TAMPER,
    "iopl": TAMPER,
    "bpf": "kernel.trace",
    "perf_event_open": "kernel.trace",
    # files without a path, or by handle
    "name_to_handle_at": "files.read",
    "open_by_handle_at": "files.write",
    # descriptor I/O between held descriptors
    "splice": "none",
    "copy_file_range": "none",
    "sendfile": "none",
    "unshare": "system.modify",
    "setns": "system.modify",
    "mount": "system.modify",
}


@pytest.mark.parametrize(("name", "expected"), sorted(ATTACKER.items()))
def test_what_an_attacker_reaches_for(table: SyscallTable, name: str, expected: str) -> None:
    entry = table.named()[name]
    assert entry.class_ == expected, entry.reason


# --- validation: file:line for every broken entry ----------------------------------------------------

_GOOD = """\
schema: 1
syscalls:
  - nr: 0
    name: read
    class: none
    reason: reads
  - nr: 1
    name: write
    class: none
    reason: writes
  - nr: 2
    last: 3
    class: unused
    reason: nothing here
"""

BROKEN = [
    (_GOOD.replace("nr: 1\n", "nr: 4\n"), r"^t\.yaml:7: nr 4: expected 1 \(one entry per number, in order, no gap\)"),
    (_GOOD.replace("class: none\n    reason: writes", "class: files.wirte\n    reason: writes"),
     r"^t\.yaml:7: class 'files\.wirte' is not a capability.*did you mean files\.write"),
    (_GOOD.replace("name: write", "name: read"), r"^t\.yaml:7: read is also number 0"),
    (_GOOD.replace("    reason: writes\n", ""), r"^t\.yaml:7: missing key\(s\) reason"),
    (_GOOD.replace("    reason: writes\n", "    reason: |\n      two\n      lines\n"),
     r"^t\.yaml:7: reason: expected one line"),
    (_GOOD.replace("    reason: writes\n", "    reason: ''\n"), r"^t\.yaml:7: reason: expected a non-empty string"),
    (_GOOD.replace("    name: write\n", ""), r"^t\.yaml:7: number 1 \(none\) needs a name"),
    (_GOOD.replace("last: 3", "last: 1"), r"^t\.yaml:11: last: expected an integer >= 2"),
    (_GOOD.replace("    last: 3\n", "    last: 3\n    name: x\n"), r"^t\.yaml:11: an unused number has no name"),
    (_GOOD.replace("    reason: writes\n", "    reason: writes\n    last: 5\n"), r"^t\.yaml:7: only unused numbers"),
    (_GOOD.replace("    reason: writes\n", "    reason: writes\n    why: x\n"), r"^t\.yaml:7: unknown key\(s\) why"),
    (_GOOD.replace("    name: write\n", "    name: write\n    name: writev\n"),
     r"^t\.yaml:9: invalid YAML: key 'name'"),
    (_GOOD.replace("  - nr: 1\n", "  - 7\n  - nr: 1\n"), r"^t\.yaml:7: entry for number 1: expected a mapping"),
    (_GOOD.replace("name: write", "name: Write"), r"^t\.yaml:7: bad system call name 'Write'"),
    (_GOOD.replace("schema: 1", "schema: 2"), r"^t\.yaml:1: unsupported schema 2"),
    (_GOOD.replace("  - nr: 0\n    name: read", "  - nr: 0\n    name: read:\n"), r"^t\.yaml:\d+: invalid YAML"),
]


@pytest.mark.parametrize(("text", "message"), BROKEN, ids=[m for _, m in BROKEN])
def test_broken_table_names_file_and_line(text: str, message: str) -> None:
    with pytest.raises(SyscallTableError, match=message) as info:
        parse_syscall_table(text, "t.yaml", ["files.read", "files.write"])
    assert isinstance(info.value, CatalogError) and isinstance(info.value, GohookError)
    assert "\n" not in str(info.value)


def test_a_small_table_parses_and_ranges_expand() -> None:
    t = parse_syscall_table(_GOOD, "t.yaml", ["files.read"])
    assert [(e.nr, e.name, e.class_) for e in t.entries] == [
        (0, "read", "none"), (1, "write", "none"), (2, "", UNUSED), (3, "", UNUSED)]
    assert [e.line for e in t.entries] == [3, 7, 11, 11]
    assert t.classify(4).class_ == UNKNOWN and "whose last number is 3" in t.classify(4).reason


def test_the_packaged_file_parses_the_same_from_a_path(table: SyscallTable, tmp_path: Path) -> None:
    assert load_syscall_table(SYSCALLS_YAML) == dataclasses.replace(table, source=str(SYSCALLS_YAML))
    with pytest.raises(SyscallTableError, match=r"cannot read"):
        load_syscall_table(tmp_path / "nope.yaml")
