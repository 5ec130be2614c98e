"""gohook.static.analysis: a raw system call reaches what the kernel charges its number with (issue 17 §4).

The kernel charges a raw call (syscall.Syscall*, x/sys's unix.Syscall* and their ABI0 stubs) `syscall` and the
capability its number's rule gives for its arguments (gohook/bpf/c/lib/sysrules.h, rules from
gohook.sites.syscalls). Static analysis must grant the same: by the same rules, from the constants at the call
site, every capability the rule can give where an argument that decides is not a constant, nothing more where
the number has no rule (or its tests cannot hold), and a gap where the number itself is not a constant.

Oracles, not the analysis's own reading: the plan's syscall_rules (the table the loader puts in the kernel's
sys_rules map) evaluated here by the kernel's semantics (gohook_systest, gohook_sysrule), over argument values
and over every way the tests can go; the x86 encodings of the instructions; the SYS_* constants of the x/sys
each toolchain vendors; the fixture's Go source (tests/static/rawapp.py: which module passes which flags).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import gofixtures
import pytest
from gofixtures import Toolchain

from gohook.plan.build import syscall_rules
from gohook.plan.model import RuleTestKind, SyscallRule
from gohook.sites.catalog import load_catalog
from gohook.sites.syscalls import MAX_NR, NONE, UNUSED, classify
from gohook.static import analysis, cache
from gohook.static.callgraph import DECODER
from gohook.static.inspection import Inspection, inspect_binary
from static.rawapp import EXPECTED, XSYS, XSYS_ALLOWED, XSYS_NEEDED, build_rawapp

MODES = {"default": (), "stripped": ("-ldflags=-s -w",), "pie": ("-buildmode=pie",)}
ALL_ONES = 2**64 - 1

# --- the rules: the analysis against the table the kernel is given -------------------------------------------


def _kernel_rules() -> tuple[dict[int, SyscallRule], dict[int, str]]:
    """The plan's rules by number, and capability bit -> name (the packaged catalog, as attach builds them)."""
    catalog = load_catalog()
    return {r.nr: r for r in syscall_rules(catalog)}, {c.bit: c.name for c in catalog.capabilities}


def _holds(kind: RuleTestKind, operand: int, value: int) -> bool:
    """gohook_systest for the tests an argument's value decides."""
    if kind is RuleTestKind.MASK:
        return value & operand != 0
    if kind is RuleTestKind.EQ:
        return value == operand
    assert kind is RuleTestKind.TYPE
    return (1 << (value & 0xF)) & operand != 0


_VALUE_KINDS = (RuleTestKind.MASK, RuleTestKind.EQ, RuleTestKind.TYPE)
# guard, text: the call aims at gohook's own processes or the binary's code, which a module's code never needs
_ATTACK_KINDS = tuple(k for k in RuleTestKind if k.name in ("GUARD", "TEXT"))


def _outcomes(rule: SyscallRule, names: dict[int, str], args: tuple[int, ...] | None) -> set[str]:
    """Every capability gohook_sysrule can charge with these arguments (None: any arguments), over every way the
    tests that no argument decides can go (an attack test never holds): a brute force over truth values."""
    choices = []
    for t in rule.tests:
        if t.kind in _ATTACK_KINDS:
            choices.append((False,))
        elif t.kind in _VALUE_KINDS and args is not None:
            choices.append((_holds(t.kind, t.operand, args[t.arg]),))
        else:
            choices.append((True, False))
    out = set()
    for truth in itertools.product(*choices):
        cap = next((t.capability for t, holds in zip(rule.tests, truth, strict=True) if holds), rule.capability)
        if cap >= 0:
            out.add(names[cap])
    return out


#: argument vectors: nothing set, everything set, and the operands the rules test (O_CREAT, AF_PACKET, SOCK_RAW
#: and SOCK_STREAM, PROT_EXEC, the personality query, PTRACE_TRACEME's 0 ...)
_ARGS = [tuple([v] * 6) for v in (0, 1, 2, 3, 0x40, 0x80000, 17, 10, 4, 0xFFFFFFFF, ALL_ONES)]


@pytest.mark.parametrize("args", [*_ARGS, None], ids=[*(f"{a[0]:#x}" for a in _ARGS), "not-constant"])
def test_every_number_is_charged_what_the_kernels_rules_give(args: tuple[int, ...] | None) -> None:
    """For every number the kernel's table can hold, with constant arguments and with none: the analysis's
    capabilities are what the kernel's rule can charge; a number without a rule gives nothing."""
    rules, names = _kernel_rules()
    for nr in range(MAX_NR):
        charge = analysis.raw_charge(nr, args if args is not None else ())
        rule = rules.get(nr)
        expected = _outcomes(rule, names, args) if rule is not None else set()
        assert set(charge.capabilities) == expected, (nr, charge, rule)
        if args is not None:  # constant arguments leave undecided only what no argument shows (sendmsg's msghdr)
            assert all(u.startswith("what argument") for u in charge.undecided), (nr, charge)


def test_numbers_the_kernel_charges_only_syscall_give_nothing_more() -> None:
    """The class of numbers with no rule in the kernel's table (class none or unused: read, close, futex ...),
    and those past it, add nothing to `syscall`, whatever their arguments; a rule none of whose tests holds
    (socket(AF_INET, SOCK_STREAM)) neither."""
    rules, _names = _kernel_rules()
    quiet = [nr for nr in range(MAX_NR) if classify(nr).class_ in (NONE, UNUSED)]
    assert len(quiet) > 100 and not set(quiet) & set(rules)
    for nr in [*quiet, MAX_NR, 1000, 2**32 + 3]:
        assert analysis.raw_charge(nr).capabilities == frozenset(), nr
    assert analysis.raw_charge(41, (2, 1, 0, 0, 0, 0)).capabilities == frozenset()  # AF_INET, SOCK_STREAM
    assert analysis.raw_charge(41, (16, 3, 0, 0, 0, 0)).capabilities == {"network.listen"}  # AF_NETLINK, SOCK_RAW


def test_the_path_says_what_was_not_constant() -> None:
    """openat's flags decide read or write: constant flags give one, flags not constant both, and the label says
    so; an attack test's capability (kill's tamper against gohook's own processes) is withheld, not granted."""
    assert analysis.raw_charge(257, (ALL_ONES - 99, 0x1000, 0x80000, 0, 0, 0)).label == "257: openat"
    assert analysis.raw_charge(257, (0, 0, 0x241, 0, 0, 0)).capabilities == {"files.write"}
    dynamic = analysis.raw_charge(257, (0, 0, None, 0, 0, 0))
    assert dynamic.capabilities == {"files.read", "files.write"}
    assert dynamic.label == "257: openat, depends on flags: not constant here"
    kill = analysis.raw_charge(62)
    assert kill.capabilities == {"system.modify"} and kill.withheld == {"tamper"}


# --- constants at a call site, read from real instruction bytes ------------------------------------------------


def _decoded(hex_bytes: str) -> list[tuple[str, str]]:
    return [(m, o) for _a, _s, m, o in DECODER.disasm_lite(bytes.fromhex(hex_bytes), 0x1000)]


def test_register_copies_and_zeroed_stack_words_are_constants() -> None:
    """Go loads Syscall6's zero arguments by copying a zeroed register (`xor ecx, ecx; mov edi, ecx`) and zeroes
    two ABI0 stack words at once with X15 (`movups [rsp + 0x28], xmm15`): both are constants (the encodings are
    the oracle: 31 c9 / 89 cf / 44 0f 11 7c 24 28)."""
    assert analysis._register_constant(_decoded("31c9" "89cf"), "rdi") == 0  # xor ecx, ecx; mov edi, ecx
    assert analysis._register_constant(_decoded("b941020000" "4889cf"), "rdi") == 0x241  # mov ecx, 0x241; mov rdi, rcx
    # mov rcx, -1; mov edi, ecx: a 32-bit copy zero-extends
    assert analysis._register_constant(_decoded("48c7c1ffffffff" "89cf"), "rdi") == 0xFFFFFFFF
    # mov ecx, 5; call; mov edi, ecx: the call may change ecx
    assert analysis._register_constant(_decoded("b905000000" "e800000000" "89cf"), "rdi") is None
    zeroed = _decoded("440f117c2428")  # movups xmmword ptr [rsp + 0x28], xmm15
    assert [analysis._stack_constant(zeroed, off, True) for off in (0x20, 0x28, 0x30, 0x38)] == [None, 0, 0, None]
    assert analysis._stack_constant(zeroed, 0x28, False) is None  # assembly: X15 is not known to be zero
    stored = _decoded("48c744240829000000")  # mov qword ptr [rsp + 8], 0x29
    assert analysis._stack_constant(stored, 8) == 0x29
    # ... then mov dword ptr [rsp + 0xc], eax: half of it is overwritten
    assert analysis._stack_constant(stored + _decoded("8944240c"), 8) is None


# --- the fixture: each toolchain's x/sys, every build mode ------------------------------------------------------


@pytest.fixture(scope="module", params=gofixtures.toolchains(), ids=str)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[Toolchain, dict[str, int], dict[str, Path]]:
    """(toolchain, x/sys's SYS_* numbers, mode -> rawapp binary)."""
    toolchain: Toolchain = request.param
    xsys, _go = gofixtures.vendored_xsys(toolchain)
    out = {mode: build_rawapp(toolchain, tmp_path_factory.mktemp(f"rawapp-{toolchain.version}-{mode}"), flags)
           for mode, flags in MODES.items()}
    return toolchain, gofixtures.xsys_numbers(xsys / "unix"), out


_insp: dict[Path, Inspection] = {}


def _inspect(binary: Path) -> Inspection:
    if binary not in _insp:
        _insp[binary] = inspect_binary(str(binary))
    return _insp[binary]


def _last(ins: Inspection, module: str, cap: str) -> str:
    return ins.analysis.modules[module].capabilities[cap].path[-1]


@pytest.mark.parametrize("mode", list(MODES))
def test_reach_is_what_the_kernel_charges_the_raw_calls(built: tuple[Toolchain, dict[str, int], dict[str, Path]],
                                                        mode: str) -> None:
    """Each module's reach is `syscall` and what its raw calls' numbers are charged: reader's O_RDONLY openat
    files.read only, writer's O_CREAT|O_WRONLY one files.write only, dyn's openat of unknown flags both, quiet's
    socket(AF_INET, SOCK_STREAM), close and sched_yield nothing more; x/sys network.listen (socket, type not
    constant), files.read and files.write (its openat passes its caller's flags on), system.read (getpid). Each
    path ends at the raw call with its number, x/sys's own SYS_* constant (reader's files.read keeps the path
    of its os.ReadFile, a hook's: its raw openat is asked of raw_calls)."""
    _toolchain, sysno, binaries = built
    ins = _inspect(binaries[mode])
    reach = {m: frozenset(r.capabilities) for m, r in ins.analysis.modules.items()}
    assert {m: reach.get(m) for m in EXPECTED} == EXPECTED
    assert XSYS_NEEDED <= reach[XSYS] <= XSYS_ALLOWED, sorted(reach[XSYS])
    openat, socket, getpid = sysno["SYS_OPENAT"], sysno["SYS_SOCKET"], sysno["SYS_GETPID"]
    assert ins.graph is not None
    raws = [r for r in analysis.raw_calls(ins.binary, ins.graph, ins.analysis.call_sites)
            if r.module == "example.com/reader" and r.charge is not None and r.charge.nr == openat]
    assert [(r.capabilities, r.path[-1]) for r in raws] == \
        [({"syscall", "files.read"}, f"syscall.Syscall6 ({openat}: openat)")], raws
    assert _last(ins, "example.com/reader", "files.read") == "syscall.openat"
    assert _last(ins, "example.com/writer", "files.write") == f"syscall.Syscall6 ({openat}: openat)"
    for cap in ("files.read", "files.write"):
        assert _last(ins, "example.com/dyn", cap) == \
            f"syscall.Syscall6 ({openat}: openat, depends on flags: not constant here)"
        assert re.fullmatch(rf"golang\.org/x/sys/unix\.Syscall6 \({openat}: openat, depends on flags: not constant "
                            r"here\)", _last(ins, XSYS, cap)), _last(ins, XSYS, cap)
    assert re.fullmatch(rf"golang\.org/x/sys/unix\.RawSyscall \({socket}: socket(, .*)?\)",
                        _last(ins, XSYS, "network.listen")), _last(ins, XSYS, "network.listen")
    assert _last(ins, XSYS, "system.read").endswith(f"({getpid}: getpid)"), _last(ins, XSYS, "system.read")


@pytest.mark.parametrize("mode", list(MODES))
def test_numbers_not_constant_stay_a_gap_that_says_the_grant_may_be_incomplete(
        built: tuple[Toolchain, dict[str, int], dict[str, Path]], mode: str) -> None:
    """dyn.Call's number is not a constant: the module's raw_syscall gap names the call and says the grant may
    be incomplete; quiet's gap lists its numbers (socket, close, sched_yield), none of which adds to `syscall`."""
    _toolchain, sysno, binaries = built
    gaps = {g.module: g for g in _inspect(binaries[mode]).analysis.gaps
            if g.kind == "raw_syscall" and g.detail.startswith("makes raw system calls")}
    dyn = gaps["example.com/dyn"]
    assert "1 call site(s) pass a system call number that is not a constant there (e.g. example.com/dyn.Call" \
        in dyn.detail and "the grant may be incomplete" in dyn.detail, dyn.detail
    assert "not a constant" not in gaps["example.com/reader"].detail
    assert set(gaps["example.com/quiet"].syscalls) == {sysno[n] for n in ("SYS_SOCKET", "SYS_CLOSE",
                                                                          "SYS_SCHED_YIELD")}


def test_cached_raw_paths_equal_fresh(built: tuple[Toolchain, dict[str, int], dict[str, Path]], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The analysis cache round-trips the new paths: an entry read back equals the fresh analysis."""
    monkeypatch.setenv(cache.ENV_DIR, str(tmp_path / "analysis"))
    binary = built[2]["default"]
    fresh = _inspect(binary)
    inspect_binary(str(binary), cache=True)
    hit = inspect_binary(str(binary), cache=True)
    assert "cache" in hit.timings and hit.analysis == fresh.analysis
    assert "(" in _last(hit, "example.com/writer", "files.write") and "(" in _last(hit, XSYS, "network.listen")
