"""gohook.bpf.render: plan -> defines and kernel tables (pure; no kernel, no bcc)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gohook.attribution.ranges import Range
from gohook.bpf.errors import PlanTableError
from gohook.bpf.render import (
    ProgramOptions,
    build_tables,
    hook_macro,
    pack_modules,
    render_cflags,
    render_defines,
    render_program,
    unpack_modules,
)
from gohook.plan.model import (
    ArgKind,
    ArgRead,
    EnforcementPlan,
    FlagRule,
    HookPoint,
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
    assert (d["GOHOOK_KILL"], d["GOHOOK_STACK_MODE"], d["GOHOOK_REPORT_ALLOWED"]) == ("1", "0", "1")
    assert d["GOHOOK_TEXT_START"] == "0x401000ULL" and d["GOHOOK_TEXT_SIZE"] == "0x10000ULL"
    assert d["GOHOOK_GOEXIT_SIZE"] == "0x20ULL" and d["GOHOOK_GOID_OFFSET"] == "152"
    assert render_defines(_plan(mode=Mode.AUDIT))["GOHOOK_KILL"] == "0"
    assert render_defines(_plan(action=Action.AUDIT))["GOHOOK_KILL"] == "0"
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


def test_print_program_shows_defines_and_source() -> None:
    text = render_program(_plan(hooks=(_hook(0), _hook(1))))
    assert "#define GOHOOK_KILL 1" in text
    assert "\tHOOK(1, 0x402004ULL" in text
    assert "struct gohook_event {" in text and "int gohook_handler(struct pt_regs *ctx)" in text
