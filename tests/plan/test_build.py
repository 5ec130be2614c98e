"""gohook.plan.build: binary + catalog + policy -> EnforcementPlan, on real Go binaries.

The fixtures (tests/gofixtures.py) are built by the installed toolchains. Where a fact can be had without
gohook it comes from elsewhere: function addresses from Go's debug/gosym (the oracle program of
testdata/go/oracle), the binary's modules from `go version -m`, file offsets from the ELF program headers
as pyelftools reads them, call instructions from their bytes, and masks are decoded through the plan's own
bit -> name table rather than built with the catalog's mask().
"""

from __future__ import annotations

import re
import struct
from functools import cache
from pathlib import Path
from typing import Any

import gofixtures
import pytest
from elftools.elf.elffile import ELFFile
from gofixtures import Toolchain

from gohook.attribution.ranges import Range
from gohook.bpf.abi import HookKind
from gohook.errors import PolicyError
from gohook.gosym import GoBinary
from gohook.plan.build import RAW_CALL_ARGS, STD_INIT, STD_LAZY_INIT, PlanBuild, build_plan, is_std_init
from gohook.plan.model import EnforcementPlan
from gohook.policy.format import CapabilityNames, Mode, ModuleRule, Policy, parse_policy
from gohook.sites.catalog import Catalog, GoVersion, UnknownCapabilityError, load_catalog
from gohook.sites.hooks import find_hook_sites

MAIN = "example.com/capapp"
FILEUTIL = "github.com/acme/fileutil"
NETCLIENT = "github.com/acme/netclient"
STRUTIL = "github.com/acme/go.strutil"
TELEMETRY = "github.com/evil/telemetry"


@cache
def _catalog() -> Catalog:
    return load_catalog()


@cache
def _binary(toolchain: Toolchain, fixture: str, mode: str = "default") -> GoBinary:
    return GoBinary.open(gofixtures.build(toolchain, fixture, mode))


def _plan(binary: GoBinary, policy: Policy, sentinel: str = "auto") -> PlanBuild:
    catalog = _catalog()
    return build_plan(binary, find_hook_sites(binary, catalog), catalog, policy, Mode.ENFORCE, sentinel)


def _policy(text: str) -> Policy:
    return parse_policy(text, CapabilityNames(c.name for c in _catalog().capabilities), "test.yaml")


def _names(plan: EnforcementPlan, mask: int) -> set[str]:
    """Capability names of a mask, by the plan's own bit -> name table."""
    return {name for bit, name in enumerate(plan.capabilities) if mask >> bit & 1}


def _module_id(plan: EnforcementPlan, module: str) -> int:
    return plan.modules.index(module) + 1


def _covering(ranges: tuple[Range, ...], pc: int) -> Range | None:
    found = [r for r in ranges if r.start <= pc < r.end]
    assert len(found) <= 1, f"overlapping ranges at {pc:#x}: {found}"
    return found[0] if found else None


@cache
def _oracle_functions(path: Path) -> tuple[dict[str, Any], ...]:
    return tuple(gofixtures.oracle(path)["functions"])


# --- masks per module ---------------------------------------------------------------------------------------


def test_masks_per_module_follow_the_policy(newest_toolchain: Toolchain) -> None:
    """Exact keys, the longest matching glob, `default` for the rest; modules are those of `go version -m`."""
    path = gofixtures.build(newest_toolchain, "capapp", "default")
    binary = _binary(newest_toolchain, "capapp")
    policy = _policy(f"""
version: 1
default: [env.read]
modules:
  {FILEUTIL}: [files.read]
  github.com/acme/*: [network.connect]
  {TELEMETRY}: []
  {MAIN}: [files, exec]
""")
    plan = _plan(binary, policy).plan
    info = gofixtures.go_version_m(newest_toolchain, path)
    listed = {info["main"]["path"], *(d["path"] for d in info["deps"])}
    assert plan.modules[-1] == STD_INIT
    assert set(plan.modules[:-1]) <= listed, set(plan.modules) - listed
    assert list(plan.modules[:-1]) == sorted(plan.modules[:-1])
    assert {MAIN, FILEUTIL, NETCLIENT, STRUTIL, TELEMETRY} <= set(plan.modules)
    assert set(plan.allowed) == set(range(1, len(plan.modules) + 1))
    masks = {m: _names(plan, plan.allowed[_module_id(plan, m)]) for m in plan.modules}
    assert masks[FILEUTIL] == {"files.read"}  # the exact key wins over the glob
    assert masks[NETCLIENT] == masks[STRUTIL] == {"network.connect"}  # the glob
    assert masks[TELEMETRY] == set()
    assert masks[MAIN] == {"files.read", "files.write", "exec"}  # a family expands
    assert masks["gopkg.in/acme.v2"] == {"env.read"}  # unlisted: the default
    assert masks[STD_INIT] == set(plan.capabilities) - {"tamper"}  # package initializers hold `all`
    assert _names(plan, plan.default_mask) == {"env.read"}


def test_unknown_capability_in_a_policy_is_an_error(newest_toolchain: Toolchain) -> None:
    """A policy built in code (not parsed against the catalog) naming a capability the catalog lacks."""
    binary = _binary(newest_toolchain, "capapp")
    bad_module = Policy(path="t", modules=(ModuleRule(FILEUTIL, frozenset({"files.delete"})),))
    with pytest.raises(UnknownCapabilityError, match="files.delete") as err:
        _plan(binary, bad_module)
    assert err.value.name == "files.delete"
    with pytest.raises(UnknownCapabilityError, match="netwrok"):
        _plan(binary, Policy(path="t", default=frozenset({"netwrok"})))
    # the same policy text is refused when parsed against the catalog's vocabulary, before any plan
    with pytest.raises(PolicyError, match="files.delete"):
        _policy(f"version: 1\nmodules:\n  {FILEUTIL}: [files.delete]\n")


# --- trusted modules ----------------------------------------------------------------------------------------


def test_trusted_modules_are_transparent(newest_toolchain: Toolchain) -> None:
    """A trusted module gets no id, no mask and no range; its functions (by Go's debug/gosym) are the trusted
    spans; code of it inlined into an untrusted function attributes to that function's module only."""
    path = gofixtures.build(newest_toolchain, "capapp", "default")
    binary = _binary(newest_toolchain, "capapp")
    open_plan = _plan(binary, _policy("version: 1\n")).plan
    trusted_plan = _plan(binary, _policy(f"version: 1\ntrust: [{FILEUTIL}]\n")).plan

    assert FILEUTIL in open_plan.modules and FILEUTIL not in trusted_plan.modules
    assert set(trusted_plan.modules) == set(open_plan.modules) - {FILEUTIL}
    assert open_plan.trusted == ()
    own = sorted((f["entry"], f["end"]) for f in _oracle_functions(path)
                 if f["name"].startswith(FILEUTIL + ".") and f["end"] > f["entry"])
    assert own, "no fileutil function in the oracle's table"
    assert list(trusted_plan.trusted) == own

    fid = _module_id(open_plan, FILEUTIL)
    main_open, main_trusted = _module_id(open_plan, MAIN), _module_id(trusted_plan, MAIN)
    for entry, _end in own:  # untrusted: charged to fileutil; trusted: no range at all (transparent)
        r = _covering(open_plan.ranges, entry)
        assert r is not None and r.modules[0] == fid, (hex(entry), r)
        assert _covering(trusted_plan.ranges, entry) is None, hex(entry)
    ids = {i for r in trusted_plan.ranges for i in r.modules}
    assert ids <= set(range(1, len(trusted_plan.modules) + 1))

    # fileutil.ReadFile is inlined into main.doInline (the compiler says so, tests/gosym/test_oracle.py):
    # there the open plan has (fileutil, main), the trusted one main alone
    do_inline = next(f for f in _oracle_functions(path) if f["name"] == "main.doInline")
    pcs = range(do_inline["entry"], do_inline["end"])
    open_chains = {r.modules for pc in pcs if (r := _covering(open_plan.ranges, pc)) is not None}
    trusted_chains = {r.modules for pc in pcs if (r := _covering(trusted_plan.ranges, pc)) is not None}
    assert (fid, main_open) in open_chains, open_chains
    assert trusted_chains == {(main_trusted,)}, trusted_chains


# --- the std:init pseudo-module ----------------------------------------------------------------------------

#: pkg.init or pkg.init.N, pkg a path whose last element has no dot (no method, no closure)
_INIT = re.compile(r"(?P<pkg>(?:[\w.\-]+/)*[\w\-]+)\.init(?:\.\d+)?")


def _std_init_by_name(name: str) -> bool:
    """Independent of gohook.gosym: a standard-library package has no dot in its first path element."""
    m = _INIT.fullmatch(name)
    return m is not None and m["pkg"] != "main" and "." not in m["pkg"].split("/", 1)[0]


def test_std_init_is_package_initializers_of_the_standard_library_only(newest_toolchain: Toolchain) -> None:
    path = gofixtures.build(newest_toolchain, "capapp", "default")
    binary = _binary(newest_toolchain, "capapp")
    names = {f["name"] for f in _oracle_functions(path)}
    initializers = {n for n in names if _std_init_by_name(n)}
    expected = initializers | (STD_LAZY_INIT & names)  # and the lazy initializers of system configuration
    assert {n for n in names if is_std_init(binary, n)} == expected
    assert {"runtime.init", "errors.init"} <= expected and "time.initLocal" in expected
    assert any(re.fullmatch(r"runtime\.init\.\d+", n) for n in expected)
    # closures of initializers (which run later, on anyone's behalf), methods called init and module
    # initializers are not std:init
    closures = [n for n in names if re.fullmatch(r"[\w/]+\.init(\.\d+)?\.func\d+", n)]
    methods = [n for n in names if re.fullmatch(r"runtime\.\(\*\w+\)\.init", n)]
    assert closures and methods
    assert not [n for n in closures + methods if is_std_init(binary, n)]
    assert not is_std_init(binary, "main.init") and not is_std_init(binary, FILEUTIL + ".init")

    plan = _plan(binary, _policy("version: 1\n")).plan
    sid = _module_id(plan, STD_INIT)
    assert sid == len(plan.modules)  # after the real modules
    by_name = {f["name"]: f for f in _oracle_functions(path)}
    for name in sorted(expected):
        f = by_name[name]
        r = _covering(plan.ranges, f["entry"])
        assert r is not None and r.modules[0] == sid, (name, r)
    runtime_main = by_name["runtime.main"]
    assert _covering(plan.ranges, runtime_main["entry"]) is None  # other std code: no range
    assert plan.provenance is not None and plan.provenance.not_inherited == sid


# --- the system-call sentinel ------------------------------------------------------------------------------


@pytest.mark.parametrize(("fixture", "mode", "setting", "on", "reason"), [
    ("inlineapp", "default", "auto", False, "off (auto: no cgo, module assembly or module system calls)"),
    ("inlineapp", "default", "on", True, "on (--sentinel on)"),
    ("capapp", "default", "auto", True, "on (auto: raw system calls from module code (syscall.Syscall))"),
    ("capapp", "default", "off", False, "off (--sentinel off), although the binary has raw system calls"),
    ("capapp", "cgo", "auto", True, "on (auto: cgo: C code makes its own system calls)"),
])
def test_sentinel_reasons(newest_toolchain: Toolchain, fixture: str, mode: str, setting: str, on: bool,
                          reason: str) -> None:
    build = _plan(_binary(newest_toolchain, fixture, mode), _policy("version: 1\n"), setting)
    assert build.sentinel_reason.startswith(reason), build.sentinel_reason
    assert (build.plan.sentinel is not None) == on
    kinds = [h.kind for h in build.plan.hooks]
    if not on:
        assert HookKind.SITE not in kinds and HookKind.CGOCALL not in kinds
    elif any(h.function == "runtime.cgocall" for h in build.plan.hooks):
        assert HookKind.CGOCALL in kinds  # the sentinel learns whose C code a thread runs
    # `syscall` instruction sites, if any, come after every catalog hook point
    sites = [i for i, k in enumerate(kinds) if k == HookKind.SITE]
    assert sites == list(range(len(kinds) - len(sites), len(kinds)))


def test_sentinel_setting_must_be_known(newest_toolchain: Toolchain) -> None:
    with pytest.raises(ValueError, match="'sometimes'"):
        _plan(_binary(newest_toolchain, "inlineapp"), _policy("version: 1\n"), "sometimes")


# --- hook points on a real binary ---------------------------------------------------------------------------


def _file_offset(elf: ELFFile, vaddr: int) -> int:
    for seg in elf.iter_segments():
        if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= vaddr < seg["p_vaddr"] + seg["p_filesz"]:
            return vaddr - seg["p_vaddr"] + seg["p_offset"]
    raise AssertionError(f"{vaddr:#x} is in no PT_LOAD segment")


def _branch_target(data: bytes, offset: int, address: int) -> int:
    """Target of the CALL rel32 / JMP rel32 / JMP rel8 at a file offset."""
    op = data[offset]
    if op in (0xE8, 0xE9):
        return address + 5 + struct.unpack_from("<i", data, offset + 1)[0]
    if op == 0xEB:
        return address + 2 + struct.unpack_from("<b", data, offset + 1)[0]
    raise AssertionError(f"no direct call or jump at {address:#x} (opcode {op:#x})")


def test_hook_points_are_where_go_says_the_functions_are(toolchain: Toolchain) -> None:
    """Every catalog function in the binary is planned or skipped with a reason; each hook point's entry is
    the function's entry by Go's debug/gosym, its probe lies in the function (or is a direct call or jump
    to it from module code, for direct_caller_only hooks), and its file offset is the probe's by the ELF
    program headers."""
    path = gofixtures.build(toolchain, "capapp", "default")
    binary = _binary(toolchain, "capapp")
    build = _plan(binary, _policy("version: 1\n"), "off")
    plan = build.plan
    functions = _oracle_functions(path)
    entries: dict[str, set[int]] = {}
    for f in functions:
        entries.setdefault(f["name"], set()).add(f["entry"])
    ends = {f["entry"]: f["end"] for f in functions}
    data = path.read_bytes()
    with path.open("rb") as fh:
        elf = ELFFile(fh)
        offsets = {h.probe: _file_offset(elf, h.probe) for h in plan.hooks}

    catalog = _catalog()
    wanted = {s.function for s in catalog.hooks_for(GoVersion.parse(binary.go_version or ""))} & set(entries)
    planned = {h.function for h in plan.hooks}
    skipped = dict(build.skipped)
    assert wanted == planned | set(skipped), (wanted - planned - set(skipped), (planned | set(skipped)) - wanted)
    assert all(skipped.values()), skipped
    assert {"syscall.openat", "syscall.connect"} <= planned
    assert [h.hook_id for h in plan.hooks] == list(range(len(plan.hooks)))
    assert len(build.sites) == len(plan.hooks)  # sentinel off: no SITE points

    for hook in plan.hooks:
        where = f"{hook.function} #{hook.hook_id}"
        # a raw system-call function is judged by the number it passes too (RAWCALL), even without the sentinel
        assert hook.kind == (HookKind.RAWCALL if hook.function in RAW_CALL_ARGS else HookKind.CALL), where
        assert hook.entry in entries[hook.function], where
        assert hook.file_offset == offsets[hook.probe], where
        if hook.entry <= hook.probe < ends[hook.entry]:
            assert hook.call_len == 0, where
        else:  # a call site in module code
            assert hook.direct_caller_only, where
            assert _branch_target(data, hook.file_offset, hook.probe) == hook.entry, where
            assert hook.call_len in (0, 5) and (hook.call_len == 5) == (data[hook.file_offset] == 0xE8), where
            caller = binary.function_at(hook.probe)
            assert caller is not None and not binary.is_std(caller.name), where


def test_raw_system_calls_are_judged_by_their_number(newest_toolchain: Toolchain) -> None:
    """rawio's calls of syscall.Syscall6 and syscall.RawSyscall are RAWCALL hook points: `syscall`, and the
    capability of the number they pass (the plan's syscall_rules, with or without the sentinel); its own
    `syscall` instruction is a SITE, which needs `syscall` too (Sentinel.syscall_capability)."""
    from gohook.bpf.abi import Judge, RuleTestKind
    from gohook.plan.build import syscall_rules
    from gohook.plan.model import RuleTest
    from gohook.sites.syscalls import OPEN_WRITE_MASK, syscall_table

    catalog = _catalog()
    bits = {c.name: c.bit for c in catalog.capabilities}
    binary = _binary(newest_toolchain, "evasion")
    rawio = "github.com/perfkit/rawio"
    for setting in ("off", "on"):
        plan = _plan(binary, _policy("version: 1\n"), setting).plan
        raw = {h.function: h for h in plan.hooks if h.kind == HookKind.RAWCALL
               and binary.module_of(binary.function_at(h.probe).name) == rawio}  # type: ignore[union-attr]
        assert set(raw) == {"syscall.Syscall6", "syscall.RawSyscall"}, raw
        assert (raw["syscall.Syscall6"].syscall_args, raw["syscall.RawSyscall"].syscall_args) == (6, 3)
        assert all(h.capability == bits["syscall"] and h.direct_caller_only and h.call_len for h in raw.values())
        assert plan.syscall_rules == syscall_rules(catalog)
        openat = {r.nr: r for r in plan.syscall_rules}[257]
        assert (openat.capability, openat.tests) == (
            bits["files.read"], (RuleTest(RuleTestKind.MASK, 2, bits["files.write"], OPEN_WRITE_MASK),))
        # every capability or tamper class of the classification has a rule for the raw judges
        rules = {r.nr: r for r in plan.syscall_rules}
        for entry in syscall_table().entries:
            if entry.capability is not None or entry.class_ == "tamper":
                assert entry.nr in rules and rules[entry.nr].judges & Judge.RAW, entry
        # the guard's calls are attached as tracepoints; the sentinel keeps to the hooked semantics
        assert plan.guard is not None
        assert set(plan.guard.syscalls) == {r.name for r in plan.syscall_rules if r.judges & Judge.GUARD}
        assert {"mprotect", "madvise", "kill", "ptrace", "io_uring_setup"} <= set(plan.guard.syscalls)
        assert not any(r.judges & Judge.SENTINEL for r in plan.syscall_rules if r.judges & Judge.GUARD)
        sites = [h for h in plan.hooks if h.kind == HookKind.SITE]
        if setting == "off":
            assert plan.sentinel is None and not sites
        else:
            assert plan.sentinel is not None and plan.sentinel.syscall_capability == bits["syscall"]
            assert f"{rawio}.openat" in {h.function for h in sites}, sites  # (other modules may have some)


def test_i386_system_call_instructions_are_found_and_turn_the_sentinel_on(newest_toolchain: Toolchain) -> None:
    """rawx.int80 (testdata/go/evasion/deps/rawx) executes `int 0x80`: compat_instructions finds it at the
    address `go tool objdump` prints `INT $0x80` at, the sentinel is planned to charge such calls `tamper`
    (Sentinel.compat_capability), and no SITE probe goes on it (uprobes refuse `int`)."""
    import subprocess

    from gohook.plan.build import compat_instructions

    binary = _binary(newest_toolchain, "evasion")
    path = gofixtures.build(newest_toolchain, "evasion", "default")
    dump = subprocess.run([str(newest_toolchain.go), "tool", "objdump", "-s", "rawx.int80", str(path)],
                          capture_output=True, text=True, check=True, timeout=300).stdout
    expected = {int(line.split()[1], 16) for line in dump.splitlines() if "INT $0x80" in line}
    assert expected, dump
    build = _plan(binary, _policy("version: 1\n"), "on")
    found = compat_instructions(binary, lambda m: 0 if m in ("std", "example.com/evasion") else 1)
    assert {a for f, a in found if f == "github.com/sysutil/rawx.int80"} == expected
    assert build.plan.sentinel is not None
    assert build.plan.sentinel.compat_capability == _catalog().capability("tamper").bit
    assert not [h for h in build.plan.hooks if h.probe in expected]


@pytest.mark.parametrize("mode", ["default", "stripped", "pie"])
def test_error_returns_are_resolved_for_the_binary(newest_toolchain: Toolchain, mode: str) -> None:
    """action error: each hook point carries its return plan with the binary's own addresses. The error value
    EPERM is (the itab of (syscall.Errno, error), the staticuint64s word holding 1); the oracle for the word
    is the binary's bytes (a little-endian 1 there), for the itab the catalog's result layout (gohook's itab
    finder is checked against the runtime in tests/gosym/test_itabs.py). Per-module actions reach the plan."""
    binary = _binary(newest_toolchain, "capapp", mode)
    policy = _policy("version: 1\naction: error\nmodules:\n  github.com/evil/telemetry:\n    action: kill\n")
    plan = _plan(binary, policy).plan
    telemetry = _module_id(plan, "github.com/evil/telemetry")
    assert plan.action_of(telemetry).value == "kill" and plan.action_of(0).value == "error" and plan.error_action
    hooks = {h.function: h for h in plan.hooks}
    itab = binary.itab_address("syscall.Errno", "error")
    assert itab is not None
    openat = hooks["syscall.openat"].deny
    assert openat is not None and openat.kind == "error" and openat.errno == 1
    regs = {w.register: w for w in openat.writes}
    assert regs["rax"].value == (1 << 64) - 1 and not regs["rax"].relocate  # fd = -1
    assert regs["rbx"].value == itab and regs["rbx"].relocate
    word = regs["rcx"].value
    assert regs["rcx"].relocate and struct.unpack("<Q", binary.image.read(word, 8))[0] == 1
    getenv = hooks["syscall.Getenv"].deny
    assert getenv is not None and getenv.kind == "unset" and {w.value for w in getenv.writes} == {0}
    assert hooks["runtime.cgocall"].deny is None if "runtime.cgocall" in hooks else True  # it kills
    raw = [h for h in plan.hooks if h.kind is HookKind.RAWCALL]
    assert raw and all(h.deny is not None and h.call_len > 0 for h in raw)  # the call is skipped, not returned from


def test_std_lazy_initializers_are_real_functions(toolchain: Toolchain) -> None:
    """Every name of STD_LAZY_INIT is a function of that Go release (a misspelt one would silently charge the
    first caller again): in denyapp's binary (it links net/http, crypto/x509, time), else in the release's
    source (mime.initMime: denyapp serves no files, so the linker drops it); and it is std:init."""
    binary = _binary(toolchain, "denyapp")
    absent = set(STD_LAZY_INIT) - set(binary.functions_by_name)
    if toolchain.release < (1, 21):
        assert {"net.(*nsswitchConfig).init", "net.(*nsswitchConfig).tryUpdate"} <= absent  # (1.21's nss.go)
        absent -= {"net.(*nsswitchConfig).init", "net.(*nsswitchConfig).tryUpdate"}
    assert absent <= {"mime.initMime"}, absent
    assert "func initMime() {" in (gofixtures.goroot(toolchain) / "src/mime/type.go").read_text()
    for name in set(STD_LAZY_INIT) - absent:
        if name in binary.functions_by_name:
            assert is_std_init(binary, name), name


def test_lazy_std_initialization_is_charged_to_std_init(newest_toolchain: Toolchain) -> None:
    """A dependency's first use of time.Local runs time.initLocal (TZ, /etc/localtime): the range of
    initLocal is std:init's, so the nearest module frame of those calls is std:init, not the dependency."""
    binary = _binary(newest_toolchain, "denyapp")
    plan = _plan(binary, _policy("version: 1\n")).plan
    init = binary.functions_by_name["time.initLocal"]
    covering = _covering(plan.ranges, init.entry)
    assert covering is not None and covering.modules[0] == _module_id(plan, STD_INIT), covering
