"""gohook.bpf.render: plan -> defines and kernel tables (pure; no kernel, no bcc)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gohook.attribution.ranges import Range
from gohook.bpf.abi import (
    HANDLER_SLOTS,
    RANGE_TRUSTED,
    ActionCode,
    ArgKind,
    HookKind,
    Judge,
    RuleTestKind,
    handler_slot,
)
from gohook.bpf.errors import PlanTableError
from gohook.bpf.render import (
    BPF_DIR,
    ProgramOptions,
    build_tables,
    handler_classes,
    handler_name,
    hook_macro,
    pack_modules,
    program_source,
    render_cflags,
    render_defines,
    render_program,
    sys_rule_values,
    unpack_modules,
)
from gohook.plan.model import (
    ArgRead,
    DenyReturn,
    EnforcementPlan,
    FlagRule,
    HookPoint,
    ProbeAddress,
    Provenance,
    RegisterWrite,
    RuleTest,
    Sentinel,
    SyscallRule,
    ValueRule,
)
from gohook.policy.format import Action, Attribution, Mode

TEXT = 0x401000


def _hook(hook_id: int = 0, **changes: object) -> HookPoint:
    base = dict(hook_id=hook_id, function="os.OpenFile", entry=0x402000, probe=0x402004, file_offset=0x2004,
                capability=0, arg=ArgRead(ArgKind.STRING, (0, 1)))
    base.update(changes)
    return HookPoint(**base)  # type: ignore[arg-type]


def _valued(hook_id: int, rule: ValueRule, **changes: object) -> HookPoint:
    """A hook whose capability comes from a value table (no argument capture)."""
    return _hook(hook_id, rule=rule, arg=ArgRead(), **changes)


def _plan(ranges: tuple[Range, ...] = (), **changes: object) -> EnforcementPlan:
    base = dict(binary="/bin/app", pie=False, text_start=TEXT, text_end=TEXT + 0x10000,
                capabilities=("files.read", "files.write", "env.read"), modules=("a", "b", "c"),
                ranges=ranges, hooks=(_hook(),), allowed={1: 0b01}, default_mask=0b100,
                goexit=(TEXT + 0x100, TEXT + 0x120), goid_offset=152)
    base.update(changes)
    return EnforcementPlan(**base)  # type: ignore[arg-type]


def test_gaps_become_std_and_neighbours_merge() -> None:
    plan = _plan((Range(TEXT + 0x100, TEXT + 0x200, (1,)), Range(TEXT + 0x200, TEXT + 0x300, (1,)),
                  Range(TEXT + 0x400, TEXT + 0x500, (2, 1))))
    t = build_tables(plan)
    assert t.range_start == (0, 0x100, 0x300, 0x400, 0x500)
    assert [unpack_modules(m) for m in t.range_mods] == [(0, 0, 0, 0), (1, 0, 0, 0), (0, 0, 0, 0),
                                                         (2, 1, 0, 0), (0, 0, 0, 0)]
    assert t.npages == 16
    assert t.lookup(0x0FF) == (0, 0, 0, 0)
    assert t.lookup(0x100) == (1, 0, 0, 0)
    assert t.lookup(0x2FF) == (1, 0, 0, 0)
    assert t.lookup(0x450) == (2, 1, 0, 0)
    assert t.lookup(0xFFFF) == (0, 0, 0, 0)


def test_masks_use_the_default_for_unlisted_modules() -> None:
    t = build_tables(_plan())
    assert t.module_mask == (0, 0b01, 0b100, 0b100)


def test_slots_keep_the_innermost_frame_then_distinct_modules() -> None:
    # logical frames: std (inlined), a, a, b, std, c, b
    plan = _plan((Range(TEXT, TEXT + 0x10, (0, 1, 1, 2, 0, 3, 2)),))
    assert build_tables(plan).lookup(0) == (0, 1, 2, 3)


def test_caller_mode_truncates_and_stack_mode_refuses_too_many_modules() -> None:
    ranges = (Range(TEXT, TEXT + 0x10, (1, 2, 3, 1, 2, 3)),)
    assert build_tables(_plan(ranges)).lookup(0) == (1, 2, 3, 0)
    wide = _plan((Range(TEXT, TEXT + 0x10, (0, 1, 2, 3)),), modules=("a", "b", "c", "d"))
    build_tables(wide)
    too_wide = _plan((Range(TEXT, TEXT + 0x10, (0, 1, 2, 3, 4)),), modules=("a", "b", "c", "d"),
                     attribution=Attribution.STACK)
    with pytest.raises(PlanTableError, match="stack attribution"):
        build_tables(too_wide)


@pytest.mark.parametrize(("ranges", "message"), [
    ((Range(TEXT - 0x10, TEXT + 0x10, (1,)),), "outside the text"),
    ((Range(TEXT + 0x10, TEXT + 0x10, (1,)),), "empty"),
    ((Range(TEXT + 0x10, TEXT + 0x30, (1,)), Range(TEXT + 0x20, TEXT + 0x40, (2,))), "overlaps"),
    ((Range(TEXT + 0x40, TEXT + 0x50, (1,)), Range(TEXT + 0x10, TEXT + 0x20, (2,))), "out of order"),
    ((Range(TEXT, TEXT + 0x10, (4,)),), "module id 4"),
])
def test_bad_ranges(ranges: tuple[Range, ...], message: str) -> None:
    with pytest.raises(PlanTableError, match=message):
        build_tables(_plan(ranges))


def test_bad_masks_and_text() -> None:
    with pytest.raises(PlanTableError, match="module id 9"):
        build_tables(_plan(allowed={9: 1}))
    with pytest.raises(PlanTableError, match="64 bits"):
        build_tables(_plan(default_mask=1 << 64))
    with pytest.raises(PlanTableError, match="text"):
        build_tables(_plan(text_end=TEXT))


@given(st.lists(st.tuples(st.integers(1, 0x300), st.integers(0, 0x200), st.integers(0, 3)), max_size=60),
       st.integers(0, 0x7FFF))
def test_lookup_matches_a_linear_scan(spec: list[tuple[int, int, int]], probe: int) -> None:
    """The kernel's paged binary search finds what a scan of the plan's ranges finds."""
    ranges, cursor = [], TEXT
    for length, gap, module in spec:
        start = cursor + gap
        if start + length > TEXT + 0x8000:
            break
        ranges.append(Range(start, start + length, (module,)))
        cursor = start + length
    plan = _plan(tuple(ranges), text_end=TEXT + 0x8000)
    tables = build_tables(plan)
    expected = next((r.modules[0] for r in ranges if r.start <= TEXT + probe < r.end), 0)
    assert tables.lookup(probe)[0] == expected
    spans = [tables.page_first[p + 1] - tables.page_first[p] for p in range(tables.npages)]
    assert tables.search_steps == max(max(s.bit_length() for s in spans), 1)


def test_pack_unpack() -> None:
    assert unpack_modules(pack_modules((1, 0xFFFF, 3))) == (1, 0xFFFF, 3, 0)


def test_hook_macro() -> None:
    assert hook_macro(_hook(5), 3) == "HOOK(5, 0x402004ULL, 0, 1, 0, 1, -1, 0x0ULL, 0, 0, 0, 0)"
    ruled = _hook(6, rule=FlagRule(reg=2, mask=0x643, cap_if_set=1, cap_if_clear=0), direct_caller_only=True,
                  arg=ArgRead(ArgKind.CSTRING, (3,)))
    assert hook_macro(ruled, 3) == "HOOK(6, 0x402004ULL, 0, 2, 3, -1, 2, 0x643ULL, 1, 0, 1, 0)"


def test_value_rule_macro_reads_the_stack_slot_where_the_probe_is() -> None:
    rule = ValueRule(stack_offset=8, cases=((39, 1), (95, 2)))
    # at the function entry [RSP] is the return address: the first argument is at RSP+8
    assert hook_macro(_valued(7, rule), 3) == "HOOK_VALUE(7, 0x402004ULL, 8, -1, 0, 0, VCASE(39ULL, 1) VCASE(95ULL, 2))"
    # at a call site the CALL has not pushed the return address yet: the same argument is at RSP+0
    assert hook_macro(_valued(8, ValueRule(8, ((39, 1),), default=0), call_len=5, direct_caller_only=True),
                      3) == "HOOK_VALUE(8, 0x402004ULL, 0, 0, 1, 5, VCASE(39ULL, 1))"


@pytest.mark.parametrize(("hook", "message"), [
    (_hook(capability=3), "capability bit 3"),
    (_valued(0, ValueRule(8, ((39, 5),))), "capability bit 5"),
    (_valued(0, ValueRule(8, ((39, 1), (39, 2)))), "distinct"),
    (_valued(0, ValueRule(8, ())), "without cases"),
    (_valued(0, ValueRule(12, ((39, 1),))), "stack offset 12"),
    (_hook(rule=ValueRule(8, ((39, 1),)), arg=ArgRead(ArgKind.INT, (0,))), "without argument capture"),
    (_hook(arg=ArgRead(ArgKind.STRING, (0,))), "needs 2 registers"),
    (_hook(arg=ArgRead(ArgKind.INT, (9,))), "register index 9"),
    (_hook(rule=FlagRule(reg=2, mask=1, cap_if_set=7, cap_if_clear=0)), "capability bit 7"),
    (_hook(hook_id=-1), "negative hook id"),
])
def test_bad_hooks(hook: HookPoint, message: str) -> None:
    with pytest.raises(PlanTableError, match=message):
        render_defines(_plan(hooks=(hook,)))


def test_defines_follow_mode_and_action() -> None:
    d = render_defines(_plan())
    assert (d["GOHOOK_ENFORCE"], d["GOHOOK_STACK_MODE"], d["GOHOOK_REPORT_ALLOWED"]) == ("1", "0", "1")
    assert d["GOHOOK_TEXT_START"] == "0x401000ULL" and d["GOHOOK_TEXT_SIZE"] == "0x10000ULL"
    assert d["GOHOOK_GOEXIT_SIZE"] == "0x20ULL" and d["GOHOOK_GOID_OFFSET"] == "152"
    assert render_defines(_plan(mode=Mode.AUDIT))["GOHOOK_ENFORCE"] == "0"
    assert "GOHOOK_ERROR_ACTION" not in d
    # the action is per module, in module_action (0: std and unattributed calls, the top-level action)
    assert build_tables(_plan(action=Action.AUDIT)).module_action[0] == ActionCode.AUDIT
    assert render_defines(_plan(action=Action.AUDIT))["GOHOOK_ENFORCE"] == "1"


def test_module_actions_and_error_defines() -> None:
    """Per-module actions land in module_action; action error turns on lib/deny.h with task_struct.blocked's
    offset, and hook_deny marks the hook points that can return a denial."""
    deny = DenyReturn("error", (RegisterWrite("rax", 1 << 64 - 1),), 1, "err=EPERM")
    plan = _plan(hooks=(_hook(0), replace(_hook(1), deny=deny)), action=Action.KILL,
                 actions={1: Action.ERROR})
    tables = build_tables(plan)
    assert tables.module_action[:2] == (ActionCode.KILL, ActionCode.ERROR)
    assert tables.hook_deny == (0, 1)
    offsets = (("GOHOOK_KO_TASK_BLOCKED", 1864), ("GOHOOK_KO_TASK_PTRACE", 48), ("GOHOOK_KO_TASK_PARENT", 1288),
               ("GOHOOK_KO_TASK_TGID", 1268))
    d = render_defines(plan, ProgramOptions(kernel_offsets=offsets, tracer_tgid=4321))
    assert d["GOHOOK_ERROR_ACTION"] == "1" and d["GOHOOK_KO_TASK_BLOCKED"] == "1864"
    assert d["GOHOOK_KO_TASK_PARENT"] == "1288" and d["GOHOOK_TRACER_TGID"] == "4321"
    assert d["GOHOOK_NHOOKS"] == "2"
    assert "GOHOOK_ERROR_ACTION" not in render_defines(replace(plan, mode=Mode.AUDIT))
    with pytest.raises(PlanTableError, match="TASK_BLOCKED"):
        render_defines(plan, ProgramOptions(kernel_offsets=(("GOHOOK_KO_TASK_BLOCKED", 0), *offsets[1:])))
    assert render_defines(_plan(attribution=Attribution.STACK))["GOHOOK_STACK_MODE"] == "1"
    quiet = ProgramOptions(report_allowed=False)
    assert render_defines(_plan(), quiet)["GOHOOK_REPORT_ALLOWED"] == "0"
    assert render_defines(_plan(mode=Mode.LEARN), quiet)["GOHOOK_REPORT_ALLOWED"] == "1"


def test_plan_without_hooks_or_with_duplicate_ids() -> None:
    with pytest.raises(PlanTableError, match="no hook points"):
        render_defines(_plan(hooks=()))
    with pytest.raises(PlanTableError, match="not unique"):
        render_defines(_plan(hooks=(_hook(1), _hook(1))))


def test_cflags_are_defines_only() -> None:
    flags = render_cflags(_plan(hooks=(_hook(0), _hook(1))))
    assert flags[0].startswith("-I") and flags[0].endswith("/bpf/c")
    assert all(re.fullmatch(r"-DGOHOOK_[A-Z_]+=.+", f) for f in flags[1:])
    hooks = next(f for f in flags if f.startswith("-DGOHOOK_HOOKS="))
    assert hooks.count("HOOK(") == 2


def test_program_source_inlines_the_lib_headers() -> None:
    """bcc rewrites map accesses only in the main file: every lib/ header is pasted in once, gohook.h stays."""
    text = program_source()
    headers = sorted((BPF_DIR / "lib").glob("*.h"))
    assert headers, "no lib/ headers"
    assert '#include "lib/' not in text
    for header in headers:
        assert text.count(f'#line 1 "{header}"') == 1, header.name
    assert text.count('#include "gohook.h"') >= 1
    assert "int gohook_sentinel(struct bpf_raw_tracepoint_args *ctx)" in text


def test_print_program_shows_defines_and_source() -> None:
    text = render_program(_plan(hooks=(_hook(0), _hook(1))))
    assert "#define GOHOOK_ENFORCE 1" in text
    assert "\tHOOK(1, 0x402004ULL" in text
    assert "struct gohook_event {" in text and "int gohook_handler_##kind_##_##direct_(struct pt_regs *ctx)" in text


# --- provenance, the sentinel and trusted code (moved from tests/test_evasion.py: pure, no root needed) ---------


def _prov_plan(**changes: Any) -> Any:
    text = 0x401000
    hook = HookPoint(hook_id=0, function="os.OpenFile", entry=0x402000, probe=0x402004, file_offset=0x2004,
                     capability=0)
    base: dict[str, Any] = dict(binary="/bin/app", pie=False, text_start=text, text_end=text + 0x10000,
                                capabilities=("files.read", "files.write", "syscall"), modules=("a", "b"),
                                ranges=(Range(text + 0x2000, text + 0x3000, (1,)),), hooks=(hook,), goid_offset=152)
    base.update(changes)
    return EnforcementPlan(**base)


def test_trusted_code_is_marked_where_attribution_says_std() -> None:
    text = 0x401000
    t = build_tables(_prov_plan(trusted=((text + 0x1800, text + 0x2800), (text + 0x4000, text + 0x5000))))
    assert t.range_start == (0, 0x1800, 0x2000, 0x3000, 0x4000, 0x5000)
    assert [m & 0xFFFF for m in t.range_mods] == [0, 0, 1, 0, 0, 0]  # module ranges win over trusted spans
    assert t.range_flags == (0, RANGE_TRUSTED, 0, 0, RANGE_TRUSTED, 0)
    assert build_tables(_prov_plan()).range_flags == (0, 0, 0)


def test_provenance_and_sentinel_defines() -> None:
    text = 0x401000
    prov = Provenance((ProbeAddress(text + 0x200, 0x200),), "bx", 288, g_m_offset=48, m_curg_offset=184,
                      parent_goid_offset=280)
    rule = SyscallRule(257, "openat", 0, (RuleTest(RuleTestKind.MASK, 2, 1, 0x643),), arg=1, arg_kind=ArgKind.CSTRING)
    sentinel = Sentinel(((text + 0x300, text + 0x340),), (), syscall_capability=2)
    d = render_defines(_prov_plan(provenance=prov, sentinel=sentinel, syscall_rules=(rule,)))
    assert (d["GOHOOK_PROVENANCE"], d["GOHOOK_GOPC_OFFSET"], d["GOHOOK_SENTINEL"]) == ("1", "288", "1")
    assert (d["GOHOOK_NEWG_REG"], d["GOHOOK_PARENT_GOID_OFFSET"], d["GOHOOK_M_CURG_OFFSET"]) == ("bx", "280", "184")
    assert d["GOHOOK_CREATED"] == "CREATED(0, 0x401200ULL)"
    with pytest.raises(PlanTableError, match="register 'cx'"):
        render_defines(_prov_plan(provenance=replace(prov, new_g_register="cx")))
    with pytest.raises(PlanTableError, match="m.curg offset 4100"):
        render_defines(_prov_plan(provenance=replace(prov, m_curg_offset=4100)))
    with pytest.raises(PlanTableError, match="too far from goid"):  # goid and parentGoid are read at once
        render_defines(_prov_plan(provenance=replace(prov, parent_goid_offset=1024)))
    with pytest.raises(PlanTableError, match="outside the text"):
        render_defines(_prov_plan(provenance=replace(prov, created=(ProbeAddress(0x10, 0x10),))))
    assert d["GOHOOK_SYSCALL_CAPBIT"] == "0x4ULL"
    assert d["GOHOOK_EXEMPT"] == "EXEMPT(0x401300ULL, 0x401340ULL)"
    assert "CREATED" not in d["GOHOOK_HOOKS"]
    assert "GOHOOK_PROVENANCE" not in render_defines(_prov_plan())
    raw_sentinel = int(Judge.RAW | Judge.SENTINEL)
    assert sys_rule_values((rule,), 3) == {257: (raw_sentinel, 0, 1, int(ArgKind.CSTRING), 0xFF,
                                                 int(RuleTestKind.MASK), 2, 1, 0x643, 0, 0xFF, 0xFF, 0)}
    # "needs nothing" is NOCAP, both as the fallback and as a test's outcome
    kill = SyscallRule(62, "kill", 2, (RuleTest(RuleTestKind.GUARD, 0, 1), RuleTest(RuleTestKind.SELF, 0, -1)),
                       judges=Judge.RAW | Judge.GUARD)
    assert sys_rule_values((kill,), 3)[62][1:] == (2, 0xFF, 0, 0xFF, int(RuleTestKind.GUARD), 0, 1, 0,
                                                   int(RuleTestKind.SELF), 0, 0xFF, 0)
    with pytest.raises(PlanTableError, match="at most 2"):
        sys_rule_values((replace(kill, tests=kill.tests * 2),), 3)
    with pytest.raises(PlanTableError, match="no judge"):
        sys_rule_values((replace(kill, judges=Judge(0)),), 3)
    site = HookPoint(hook_id=3, function="m.f", entry=text, probe=text + 8, file_offset=8, capability=0,
                     kind=HookKind.SITE, owner=2)
    assert hook_macro(site, 3) == "SITE(3, 0x401008ULL, 2)"
    cgo = HookPoint(hook_id=4, function="runtime.cgocall", entry=text, probe=text, file_offset=0, capability=0,
                    kind=HookKind.CGOCALL, direct_caller_only=True)
    assert hook_macro(cgo, 3).startswith("HOOK_CGO(4, ")
    with pytest.raises(PlanTableError, match="needs goroutine provenance"):
        render_defines(_prov_plan(sentinel=sentinel))
    # the file-open judge reads `targets`, which the provenance probe fills: refused without it, not a compile
    # error (bench/evaluate.py's hook-points-only configuration met one)
    with pytest.raises(PlanTableError, match="opens of /proc and /sys files needs goroutine provenance"):
        render_defines(_prov_plan(file_open=True))
    with pytest.raises(PlanTableError, match="capability bit 7"):
        sys_rule_values((SyscallRule(42, "connect", 7),), 3)


def test_tables_carry_the_sentinel_rules() -> None:
    """build_tables computes the sys_rules entries once; the loader fills the map from them."""
    rule = SyscallRule(257, "openat", 0, (RuleTest(RuleTestKind.MASK, 2, 1, 0x643),), arg=1, arg_kind=ArgKind.CSTRING)
    assert build_tables(_prov_plan(syscall_rules=(rule,))).sys_rules == (
        (257, (int(Judge.RAW | Judge.SENTINEL), 0, 1, int(ArgKind.CSTRING), 0xFF, int(RuleTestKind.MASK), 2, 1,
               0x643, 0, 0xFF, 0xFF, 0)),)
    assert build_tables(_prov_plan()).sys_rules == ()
    with pytest.raises(PlanTableError, match="capability bit 7"):
        build_tables(_prov_plan(syscall_rules=(SyscallRule(42, "connect", 7),)))


def test_raw_system_call_hooks_and_the_handler_program_of_each_kind() -> None:
    """A raw system-call hook point renders as HOOK_RAW (the number in RAX, 3 or 6 arguments after it); each
    (kind, direct_caller_only) of the plan's hook points gets one handler program, in its slot."""
    raw = _hook(5, function="syscall.Syscall6", capability=2, arg=ArgRead(ArgKind.INT, (0,)), kind=HookKind.RAWCALL,
                direct_caller_only=True, call_len=5, syscall_args=6, probe=TEXT + 8)
    assert hook_macro(raw, 3) == "HOOK_RAW(5, 0x401008ULL, 2, 6, 1, 5)"
    for bad in (replace(raw, syscall_args=4), replace(raw, rule=FlagRule(2, 0x643, 1, 0))):
        with pytest.raises(PlanTableError, match="raw system-call hook"):
            hook_macro(bad, 3)
    plan = _plan(hooks=(_hook(0), _hook(1, direct_caller_only=True), raw, _hook(6, kind=HookKind.CGOCALL,
                                                                                  direct_caller_only=True)))
    classes = handler_classes(plan)
    assert classes == [(HookKind.CALL, False), (HookKind.CALL, True), (HookKind.CGOCALL, True),
                       (HookKind.RAWCALL, True)]
    assert [handler_slot(k, d) for k, d in classes] == [0, 1, 3, 11]
    assert all(handler_slot(k, d) < HANDLER_SLOTS for k in HookKind for d in (False, True))
    assert render_defines(plan)["GOHOOK_HANDLERS"] == "HANDLER(0, 0) HANDLER(0, 1) HANDLER(1, 1) HANDLER(5, 1)"
    assert handler_name(HookKind.RAWCALL, True) == "gohook_handler_5_1"
    assert render_defines(plan, ProgramOptions(shared_handler=False))["GOHOOK_HANDLERS"] == ""
