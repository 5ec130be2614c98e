"""Plan -> BPF program: the -D defines, the kernel tables and the program text. Pure (no bcc, no kernel).

Pipeline stage 3 of: binary -> plan -> **BPF** -> attach -> events -> views.

The C source (bpf/c: gohook.bpf.c, its lib/ headers, gohook.h) is never
edited from Python: every plan-dependent constant is a -D define with an
`#ifndef` default in the C (lib/config.h), and the hook points are one
define, GOHOOK_HOOKS, holding one `HOOK(...)` macro call per hook that the C
expands into an entry program. program_source() pastes the lib/ headers into
gohook.bpf.c (bcc rewrites map accesses only in the main file). The values
both sides share (struct layouts, flags, kinds, table constants) come from
gohook.bpf.abi, the Python mirror of gohook.h.

Kernel tables (filled into array maps by the loader):

- range_start[i] / range_mods[i]: the text split into ranges that cover it
  without gaps, sorted by start (offset from text start, u32), each with up to
  4 module ids packed as u16 (innermost logical frame first). Gaps between the
  plan's ranges become std ranges (all zero); neighbours with the same
  modules are merged.
- page_first[p]: index of the range holding text offset p << PAGE_SHIFT, for
  p in 0..npages. A lookup of offset `off` binary-searches
  [page_first[off >> PAGE_SHIFT], page_first[(off >> PAGE_SHIFT) + 1]], which takes at most
  `search_steps` steps (bit length of the largest such span).
- range_deny[i]: the capability bits that some module of range i lacks, so
  that stack attribution tests one word per frame and looks at the modules
  only for the frame that violates.
- module_mask[m]: allowed capability bits of module m (the plan's default mask
  for modules it does not list); index 0 (std) is never consulted.
- range_flags[i]: RANGE_TRUSTED when range i is a trusted module's code (its
  module ids are 0, like std): a trusted frame on a stack stops the
  goroutine-provenance fallback.
- sys_rules[nr]: the capability rule of system call nr (struct
  gohook_sysrule; the plan's syscall_rules, from gohook.sites.syscalls), for
  the raw system-call hooks, the `syscall` instruction sites and the sentinel.

The handler programs: GOHOOK_HANDLERS holds one `HANDLER(kind, direct)` per
(hook kind, direct_caller_only) of the plan's hook points; each is the shared
handler compiled for those constants (handler_name), in slot
abi.handler_slot(kind, direct) of the `handler` program array.
"""

from __future__ import annotations

import bisect
import os
import re
from dataclasses import dataclass
from pathlib import Path

from gohook.bpf.abi import (
    DEFAULT_LAYOUT,
    GO_ARG_REGS,
    HANDLER_SLOTS,
    NOARG,
    NOCAP,
    NSYSCALLS,
    PAGE_SHIFT,
    RANGE_MODULES,
    RANGE_TRUSTED,
    ActionCode,
    ArgKind,
    EventLayout,
    HookKind,
    handler_slot,
)
from gohook.bpf.argtables import build_arg_tables
from gohook.bpf.btf import BtfError, kernel_offsets
from gohook.bpf.errors import PlanTableError
from gohook.bpf.sources import c_dir
from gohook.plan.model import (
    DestinationRule,
    EnforcementPlan,
    HookPoint,
    Provenance,
    SyscallRule,
    ValueRule,
)
from gohook.policy.format import Attribution, Mode

#: gohook/bpf/c, the C as package data (a source checkout, an editable install or a wheel).
BPF_DIR = c_dir()
PROGRAM_FILE = "gohook.bpf.c"
HEADER_FILE = "gohook.h"

LIB_DIR = "lib"  # headers of the program by concern, inlined into it by program_source
CGOCALL_RET_NAME = "gohook_cgocall_ret"
SENTINEL_NAME = "gohook_sentinel"
#: HOOK_RAW_STACK: the stack offsets of a raw call's number at its probe (HookPoint.syscall_stack): a CALL
#: into an ABI0 function ([RSP]), a tail JMP into one from a called assembly stub ([RSP+8])
RAW_STACK_OFFSETS = (0, 8)
GUARD_NAME = "gohook_guard"  # the guard: attached to syscalls:sys_enter_<name> of each guarded call
FORGET_NAME = "gohook_forget"
ARGCHECK_NAME = "gohook_argcheck"  # the argument check of argument-scoped grants (lib/argmatch.h)
GLOBMATCH_NAME = "gohook_globmatch"  # its glob match
MAX_MODULE_ID = 0xFFFF  # module ids are u16 in the range table and the event
MAX_CAPABILITIES = 64  # allowed masks are u64


@dataclass(frozen=True, slots=True)
class ProgramOptions:
    """Loader choices that are not part of the policy.

    report_allowed: report allowed calls too (learn mode always does). Off,
    the caller-mode walk stops at the deciding frame of an allowed call.
    shared_handler: entry programs tail-call the handler program of their
    kind (each verified once) instead of each inlining it (tens of thousands
    of verified instructions and 45 ms of loading per hook);
    bench/bench_probe.py measures both.
    """

    report_allowed: bool = True
    ringbuf_pages: int = 256
    layout: EventLayout = DEFAULT_LAYOUT
    shared_handler: bool = True
    # the GOHOOK_KO_* kernel struct offsets of lib/fileopen.h as (define, offset); None: the running
    # kernel's, from its BTF (gohook.bpf.btf.kernel_offsets)
    kernel_offsets: tuple[tuple[str, int], ...] | None = None
    # action error: the thread group of the tracer (gohook's pid; tests and benchmarks may name another)
    tracer_tgid: int | None = None
    # (st_dev, st_ino) of the pid namespace gohook's own processes are named in (the guard's GUARD test);
    # None: this process's (/proc/self/ns/pid)
    pid_namespace: tuple[int, int] | None = None
    # count every hooked call by hook x module x capability in the kernel (learned_calls), as learn mode
    # does: gohook agent's per-module metrics, without an event per allowed call
    count_calls: bool = False

    def __post_init__(self) -> None:
        pages = self.ringbuf_pages
        if pages < 1 or pages & (pages - 1):
            raise ValueError(f"ringbuf_pages must be a power of two, not {pages}")


DEFAULT_OPTIONS = ProgramOptions()


@dataclass(frozen=True, slots=True)
class KernelTables:
    """Contents of the range, page and mask maps."""

    range_start: tuple[int, ...]  # text offsets, sorted, range_start[0] == 0
    range_mods: tuple[int, ...]  # 4 x u16 module ids, slot 0 in the low bits
    range_deny: tuple[int, ...]  # capability bits some module of the range lacks
    page_first: tuple[int, ...]  # npages + 1 entries
    module_mask: tuple[int, ...]  # index = module id
    search_steps: int
    range_flags: tuple[int, ...] = ()  # RANGE_* per range (same length as range_start)
    #: sys_rules entries (the plan's syscall_rules): (system call number, sys_rule_values' field values)
    sys_rules: tuple[tuple[int, tuple[int, ...]], ...] = ()
    module_action: tuple[int, ...] = ()  # index = module id: ACT_* (0: std and unattributed calls)
    hook_deny: tuple[int, ...] = ()  # index = hook id: 1 when its function can return a denial (action error)

    @property
    def npages(self) -> int:
        return len(self.page_first) - 1

    def lookup(self, off: int) -> tuple[int, ...]:
        """Module ids at text offset off, by the kernel's algorithm (a model for tests and debugging)."""
        page = off >> PAGE_SHIFT
        lo, hi = self.page_first[page], self.page_first[page + 1]
        for _ in range(self.search_steps):
            if lo >= hi:
                break
            mid = lo + ((hi - lo + 1) >> 1)
            if self.range_start[mid] <= off:
                lo = mid
            else:
                hi = mid - 1
        return unpack_modules(self.range_mods[lo])


def pack_modules(ids: tuple[int, ...]) -> int:
    value = 0
    for slot, m in enumerate(ids[:RANGE_MODULES]):
        value |= m << (16 * slot)
    return value


def unpack_modules(value: int) -> tuple[int, ...]:
    return tuple((value >> (16 * slot)) & 0xFFFF for slot in range(RANGE_MODULES))


def _slots(modules: tuple[int, ...], stack_mode: bool, where: str) -> tuple[int, ...]:
    """The 4 kernel slots of one range's logical-frame modules (innermost first).

    Slot 0 keeps the innermost logical frame as is (0 when it is std code):
    direct_caller_only hooks look at it alone. Then every other non-std module
    once, in order. Caller mode needs only the first non-std module, so extra
    ones are dropped; stack mode needs all of them, so too many is an error.
    """
    if not modules:
        return (0,) * RANGE_MODULES
    out = [modules[0]]
    for m in modules[1:]:
        if m and m not in out:
            out.append(m)
    if len(out) > RANGE_MODULES:
        if stack_mode:
            raise PlanTableError(f"{where}: {len(out) - (out[0] == 0)} distinct modules in one range's logical "
                                 f"frames; stack attribution supports at most {RANGE_MODULES - (out[0] == 0)}")
        out = out[:RANGE_MODULES]
    return tuple(out) + (0,) * (RANGE_MODULES - len(out))


def build_tables(plan: EnforcementPlan) -> KernelTables:
    """The kernel tables for plan. Raises PlanTableError when the plan's data is inconsistent."""
    text_start, text_end = plan.text_start, plan.text_end
    size = text_end - text_start
    if size <= 0 or size >= 1 << 32:
        raise PlanTableError(f"text [{text_start:#x}, {text_end:#x}) is empty or larger than 4 GiB")
    nmodules = len(plan.modules)
    if nmodules > MAX_MODULE_ID:
        raise PlanTableError(f"{nmodules} modules; the kernel tables hold at most {MAX_MODULE_ID}")
    stack_mode = plan.attribution == Attribution.STACK

    masks = [0] * (nmodules + 1)
    for m in range(1, nmodules + 1):
        masks[m] = plan.allowed.get(m, plan.default_mask)
    for m in plan.allowed:
        if not 1 <= m <= nmodules:
            raise PlanTableError(f"allowed mask given for module id {m}; the plan has {nmodules} modules")
    for value in [*masks, plan.default_mask]:
        if not 0 <= value < 1 << MAX_CAPABILITIES:
            raise PlanTableError(f"capability mask {value:#x} does not fit 64 bits")
    segments: list[tuple[int, int]] = []  # (start offset, packed modules), covering the text
    cursor = 0  # end offset of the previous range
    for r in plan.ranges:
        where = f"range [{r.start:#x}, {r.end:#x})"
        if not text_start <= r.start < r.end <= text_end:
            raise PlanTableError(f"{where} is empty or outside the text [{text_start:#x}, {text_end:#x})")
        if r.start - text_start < cursor:
            raise PlanTableError(f"{where} overlaps the range before it or is out of order")
        for m in r.modules:
            if not 0 <= m <= nmodules:
                raise PlanTableError(f"{where} names module id {m}; the plan has {nmodules} modules")
        if r.start - text_start > cursor:
            segments.append((cursor, 0))  # a gap: standard library
        segments.append((r.start - text_start, pack_modules(_slots(r.modules, stack_mode, where))))
        cursor = r.end - text_start
    if cursor < size:
        segments.append((cursor, 0))
    flagged = _with_trusted(segments, plan, size)
    starts: list[int] = []
    mods: list[int] = []
    flags: list[int] = []
    for start, packed, flag in flagged:
        if not mods or packed != mods[-1] or flag != flags[-1]:  # neighbours with the same attribution merge
            starts.append(start)
            mods.append(packed)
            flags.append(flag)

    npages = (size + (1 << PAGE_SHIFT) - 1) >> PAGE_SHIFT
    page_first = tuple(bisect.bisect_right(starts, p << PAGE_SHIFT) - 1 for p in range(npages + 1))
    steps = max((page_first[p + 1] - page_first[p]).bit_length() for p in range(npages))

    every = (1 << MAX_CAPABILITIES) - 1
    deny = tuple(_deny(m, masks, every) for m in mods)
    rules = tuple(sys_rule_values(plan.syscall_rules, len(plan.capabilities)).items())
    actions = tuple(int(ActionCode[plan.action_of(m).name]) for m in range(nmodules + 1))
    hook_deny = [0] * (1 + max((h.hook_id for h in plan.hooks), default=0))
    for h in plan.hooks:
        if h.hook_id >= 0:  # (a negative one is refused by render_defines)
            hook_deny[h.hook_id] = int(h.deny is not None)
    return KernelTables(tuple(starts), tuple(mods), deny, page_first, tuple(masks), max(steps, 1), tuple(flags),
                        rules, actions, tuple(hook_deny))


def _with_trusted(segments: list[tuple[int, int]], plan: EnforcementPlan, size: int) -> list[tuple[int, int, int]]:
    """segments (covering the text, sorted) split so that std pieces inside trusted spans carry RANGE_TRUSTED."""
    spans: list[tuple[int, int]] = []
    for start, end in plan.trusted:
        if not plan.text_start <= start < end <= plan.text_end:
            raise PlanTableError(f"trusted span [{start:#x}, {end:#x}) is empty or outside the text")
        spans.append((start - plan.text_start, end - plan.text_start))
    if not spans:
        return [(s, p, 0) for s, p in segments]
    spans.sort()
    seg_starts = [s for s, _ in segments]
    span_starts = [s for s, _ in spans]
    points = sorted({*seg_starts, *(s for s, _ in spans), *(e for _, e in spans if e < size)})
    out = []
    for p in points:
        packed = segments[bisect.bisect_right(seg_starts, p) - 1][1]
        k = bisect.bisect_right(span_starts, p) - 1
        trusted = k >= 0 and p < spans[k][1]
        out.append((p, packed, RANGE_TRUSTED if trusted and not packed else 0))
    return out


def sys_rule_values(rules: tuple[SyscallRule, ...], ncaps: int) -> dict[int, tuple[int, ...]]:
    """struct gohook_sysrule fields (abi.SYSRULE.value_fields: all but the padding) by system call number:
    (judges, cap, arg, arg_kind, len_arg, test, test_arg, cap_set, operand, test2, test2_arg, cap2_set,
    operand2); argument index -1 becomes NOARG, capability -1 NOCAP."""
    out: dict[int, tuple[int, ...]] = {}
    for r in rules:
        if not 0 <= r.nr < NSYSCALLS:
            raise PlanTableError(f"system call {r.name}: number {r.nr} is outside the rule table (0..{NSYSCALLS - 1})")
        if len(r.tests) > 2:
            raise PlanTableError(f"system call {r.name}: {len(r.tests)} argument tests (at most 2)")
        for bit in (r.capability, *(t.capability for t in r.tests)):
            if bit != -1 and not 0 <= bit < min(ncaps, MAX_CAPABILITIES):
                raise PlanTableError(f"system call {r.name}: capability bit {bit} is not one of the plan's {ncaps}")
        for idx in (r.arg, r.len_arg, *(t.arg for t in r.tests)):
            if not -1 <= idx < 6:
                raise PlanTableError(f"system call {r.name}: argument index {idx} is not 0..5")
        if not r.judges:
            raise PlanTableError(f"system call {r.name}: a rule no judge uses")
        tests = [(int(t.kind), t.arg & NOARG, t.capability & NOCAP, t.operand & (2**64 - 1)) for t in r.tests]
        tests += [(0, NOARG, NOCAP, 0)] * (2 - len(tests))
        out[r.nr] = (int(r.judges), r.capability & NOCAP, r.arg & NOARG, int(r.arg_kind), r.len_arg & NOARG,
                     *tests[0], *tests[1])
    return out


def _deny(packed: int, masks: list[int], every: int) -> int:
    out = 0
    for m in unpack_modules(packed):
        if m:
            out |= every & ~masks[m]
    return out


# --- defines -------------------------------------------------------------------


def _reg(index: int | None, hook: HookPoint, what: str) -> int:
    if index is None:
        return -1
    if not 0 <= index < len(GO_ARG_REGS):
        raise PlanTableError(f"hook {hook.hook_id} ({hook.function}): {what} register index {index} "
                             f"is not one of Go's {len(GO_ARG_REGS)} integer argument registers")
    return index


_ARG_REGS_NEEDED = {ArgKind.NONE: 0, ArgKind.STRING: 2, ArgKind.CSTRING: 1, ArgKind.STRING_SLICE0: 2,
                    ArgKind.INT: 1, ArgKind.SOCKADDR: 2,
                    ArgKind.IPPORT: 1, ArgKind.STRFIELD0: 1, ArgKind.INTFIELD0: 1}


def _capability(bit: int, hook: HookPoint, ncaps: int) -> int:
    if not 0 <= bit < min(ncaps, MAX_CAPABILITIES):
        raise PlanTableError(f"hook {hook.hook_id} ({hook.function}): capability bit {bit} is not one of "
                             f"the plan's {ncaps} capabilities (at most {MAX_CAPABILITIES})")
    return bit


def hook_macro(hook: HookPoint, ncaps: int) -> str:
    """One `HOOK(...)` call: the entry program of hook (see the HOOK macro in gohook.bpf.c)."""
    if hook.hook_id < 0:
        raise PlanTableError(f"hook {hook.function}: negative hook id {hook.hook_id}")
    kind = ArgKind(hook.arg.kind)
    regs = hook.arg.regs
    if len(regs) < _ARG_REGS_NEEDED[kind]:
        raise PlanTableError(f"hook {hook.hook_id} ({hook.function}): argument kind {kind.name} needs "
                             f"{_ARG_REGS_NEEDED[kind]} registers, the plan gives {len(regs)}")
    a0 = _reg(regs[0] if len(regs) > 0 and kind != ArgKind.NONE else None, hook, "argument")
    a1 = _reg(regs[1] if len(regs) > 1 and _ARG_REGS_NEEDED[kind] > 1 else None, hook, "argument")
    rule = hook.rule
    if not 0 <= hook.call_len < 16:
        raise PlanTableError(f"hook {hook.hook_id} ({hook.function}): call instruction length {hook.call_len} "
                             "is not an x86 instruction length")
    if isinstance(rule, ValueRule):
        return _value_hook_macro(hook, rule, ncaps)
    if rule is None:
        cap = _capability(hook.capability, hook, ncaps)
        rreg, rmask, cset, cclear = -1, 0, 0, 0
    else:
        cap = 0
        rreg = _reg(rule.reg, hook, "flag rule")
        if not 0 <= rule.mask < 1 << 64:
            raise PlanTableError(f"hook {hook.hook_id} ({hook.function}): flag mask {rule.mask:#x} is not 64-bit")
        rmask = rule.mask
        cset = _capability(rule.cap_if_set, hook, ncaps)
        cclear = -1 if rule.cap_if_clear == -1 else _capability(rule.cap_if_clear, hook, ncaps)  # -1: no capability
        if isinstance(rule, DestinationRule):
            return _destination_hook_macro(hook, rule, cset)
    if hook.kind == HookKind.SITE:
        if hook.owner <= 0:
            raise PlanTableError(f"hook {hook.hook_id} ({hook.function}): a syscall site needs its owner module")
        return f"SITE({hook.hook_id}, {hook.probe:#x}ULL, {hook.owner})"
    if hook.kind == HookKind.RAWCALL:
        if rule is not None or hook.syscall_args not in (3, 6):
            raise PlanTableError(f"hook {hook.hook_id} ({hook.function}): a raw system-call hook takes the "
                                 "number and 3 or 6 arguments, and no capability rule")
        common = (f"{hook.hook_id}, {hook.probe:#x}ULL, {cap}, {hook.syscall_args}, "
                  f"{int(hook.direct_caller_only)}, {hook.call_len}")
        if hook.syscall_stack is None:
            return f"HOOK_RAW({common})"
        if hook.syscall_stack not in RAW_STACK_OFFSETS:
            raise PlanTableError(f"hook {hook.hook_id} ({hook.function}): a raw system call's number is at "
                                 f"[RSP+{RAW_STACK_OFFSETS[0]}] or [RSP+{RAW_STACK_OFFSETS[1]}], "
                                 f"not [RSP+{hook.syscall_stack}]")
        return f"HOOK_RAW_STACK({common}, {hook.syscall_stack})"
    name = "HOOK_CGO" if hook.kind == HookKind.CGOCALL else "HOOK"
    return (f"{name}({hook.hook_id}, {hook.probe:#x}ULL, {cap}, {int(kind)}, {a0}, {a1}, "
            f"{rreg}, {rmask:#x}ULL, {cset}, {cclear}, {int(hook.direct_caller_only)}, {hook.call_len})")


def _destination_hook_macro(hook: HookPoint, rule: DestinationRule, cap: int) -> str:
    """`HOOK_DEST(id, probe, cap, dest_reg, len_reg, direct, call_len)`: cap when the send has a destination
    (other than the kernel over netlink), no capability without one; the destination is the argument."""
    if hook.kind != HookKind.CALL or rule.mask != (1 << 64) - 1:
        raise PlanTableError(f"hook {hook.hook_id} ({hook.function}): a destination rule goes on a plain hook "
                             "and tests the whole pointer")
    dreg = _reg(rule.reg, hook, "destination")
    lreg = _reg(rule.len_reg, hook, "destination length")
    if lreg < 0:
        raise PlanTableError(f"hook {hook.hook_id} ({hook.function}): a destination rule needs its length register")
    return (f"HOOK_DEST({hook.hook_id}, {hook.probe:#x}ULL, {cap}, {dreg}, {lreg}, "
            f"{int(hook.direct_caller_only)}, {hook.call_len})")


def _value_hook_macro(hook: HookPoint, rule: ValueRule, ncaps: int) -> str:
    """`HOOK_VALUE(id, probe, rsp_offset, default, direct, call_len, VCASE(value, cap)...)`.

    The value is read at RSP + offset where the probe sits: the catalog's offset is taken at the function
    entry ([RSP] = the return address); at a call site the CALL has not pushed it yet, so 8 bytes lower.
    """
    if hook.kind != HookKind.CALL or hook.arg.kind != ArgKind.NONE:
        raise PlanTableError(f"hook {hook.hook_id} ({hook.function}): a value rule goes on a plain hook "
                             "without argument capture")
    off = rule.stack_offset - 8 if hook.call_len else rule.stack_offset
    if not 0 <= off < 4096 or off % 8:
        raise PlanTableError(f"hook {hook.hook_id} ({hook.function}): stack offset {rule.stack_offset} is not a "
                             "plausible argument slot")
    if not rule.cases:
        raise PlanTableError(f"hook {hook.hook_id} ({hook.function}): a value rule without cases")
    values = [v for v, _ in rule.cases]
    if len(set(values)) != len(values) or not all(0 <= v < 1 << 63 for v in values):
        raise PlanTableError(f"hook {hook.hook_id} ({hook.function}): value cases must be distinct and "
                             "non-negative")
    default = -1 if rule.default == -1 else _capability(rule.default, hook, ncaps)
    cases = " ".join(f"VCASE({v}ULL, {_capability(c, hook, ncaps)})" for v, c in rule.cases)
    return (f"HOOK_VALUE({hook.hook_id}, {hook.probe:#x}ULL, {off}, {default}, "
            f"{int(hook.direct_caller_only)}, {hook.call_len}, {cases})")


def hook_macros(plan: EnforcementPlan) -> list[str]:
    """The GOHOOK_HOOKS entries: one per hook point."""
    ncaps = len(plan.capabilities)
    return [hook_macro(h, ncaps) for h in sorted(plan.hooks, key=lambda h: h.hook_id)]


def handler_classes(plan: EnforcementPlan) -> list[tuple[HookKind, bool]]:
    """The (kind, direct_caller_only) of the plan's hook points: one handler program each, sorted by slot."""
    return sorted({(HookKind(h.kind), h.direct_caller_only) for h in plan.hooks}, key=lambda k: handler_slot(*k))


def handler_name(kind: HookKind, direct: bool) -> str:
    """Name of the handler program of hook points of this kind (gohook.bpf.c's HANDLER(kind, direct))."""
    return f"gohook_handler_{int(kind)}_{int(direct)}"


def created_name(index: int) -> str:
    """Name of the program on the index-th `created` probe of goroutine provenance (CREATED's gohook_created_##i)."""
    return f"gohook_created_{index}"


def provenance_defines(plan: EnforcementPlan, prov: Provenance) -> dict[str, str]:
    """The defines of goroutine provenance (validated: offsets are plausible, probes inside the text)."""
    if not plan.goid_offset:
        raise PlanTableError("goroutine provenance needs the goid offset of runtime.g")
    offsets = {"gopc": prov.gopc_offset, "parentGoid": prov.parent_goid_offset, "m": prov.g_m_offset,
               "m.curg": prov.m_curg_offset}
    for what, off in offsets.items():
        if not 0 <= off < 4096 or off % 8:
            raise PlanTableError(f"provenance: {what} offset {off} is not a plausible runtime offset")
    if prov.parent_goid_offset and abs(prov.parent_goid_offset - plan.goid_offset) > 248:
        raise PlanTableError(f"provenance: parentGoid ({prov.parent_goid_offset}) is too far from goid "
                             f"({plan.goid_offset}) to be read with it")
    if not prov.g_m_offset or not prov.m_curg_offset:
        raise PlanTableError("provenance: the offsets of runtime.g.m and runtime.m.curg are needed")
    if prov.new_g_register not in ("ax", "bx"):
        raise PlanTableError(f"provenance: the new g cannot be in register {prov.new_g_register!r}")
    if not prov.created:
        raise PlanTableError("provenance: no probe where goroutines are created")
    for probe in prov.created:
        if not plan.text_start <= probe.address < plan.text_end:
            raise PlanTableError(f"provenance: probe {probe.address:#x} is outside the text")
    return {
        "GOHOOK_PROVENANCE": "1",
        "GOHOOK_NEWG_REG": prov.new_g_register,
        "GOHOOK_GOPC_OFFSET": str(prov.gopc_offset),
        "GOHOOK_PARENT_GOID_OFFSET": str(prov.parent_goid_offset),
        "GOHOOK_G_M_OFFSET": str(prov.g_m_offset),
        "GOHOOK_M_CURG_OFFSET": str(prov.m_curg_offset),
        "GOHOOK_NOT_INHERITED": str(prov.not_inherited),
        "GOHOOK_CREATED": " ".join(f"CREATED({i}, {p.address:#x}ULL)" for i, p in enumerate(prov.created)),
    }


#: Capabilities lib/fileopen.h charges, by the define that carries each one's bit index.
FILEOPEN_CAPABILITIES = (("GOHOOK_FO_ENV_READ", "env.read"), ("GOHOOK_FO_TAMPER", "tamper"),
                         ("GOHOOK_FO_SYSTEM_MODIFY", "system.modify"))
#: The file-open program and the system calls it runs at the exit of (syscalls:sys_exit_<name>).
FILEOPEN_NAME = "gohook_fileopen"
FILEOPEN_SYSCALLS = ("openat", "openat2", "open", "creat")


def _kernel_offsets(options: ProgramOptions, needed_by: str) -> tuple[tuple[str, int], ...]:
    """The kernel struct offsets (options', else the running kernel's BTF); PlanTableError saying who needs them."""
    if options.kernel_offsets is not None:
        return options.kernel_offsets
    try:
        return kernel_offsets()
    except BtfError as exc:
        raise PlanTableError(f"{needed_by} needs the kernel's BTF: {exc}") from exc


def fileopen_defines(plan: EnforcementPlan, options: ProgramOptions) -> dict[str, str]:
    """The defines of lib/fileopen.h: the kernel struct offsets (from BTF) and the capability bits."""
    offsets = _kernel_offsets(options, "judging opens of /proc and /sys files")
    out = {"GOHOOK_FILEOPEN": "1"}
    for name, off in offsets:
        if not name.startswith("GOHOOK_KO_") or not 0 <= off < 1 << 16:
            raise PlanTableError(f"kernel offset {name}={off} is not plausible")
        out[name] = str(off)
    for define, cap in FILEOPEN_CAPABILITIES:
        if cap not in plan.capabilities:
            raise PlanTableError(f"judging opens of /proc and /sys files needs capability {cap!r} in the plan")
        out[define] = str(plan.capabilities.index(cap))
    return out


#: the task_struct offsets lib/deny.h reads: does the thread block SIGSYS, is it traced, by which process
ERROR_OFFSETS = ("GOHOOK_KO_TASK_BLOCKED", "GOHOOK_KO_TASK_PTRACE", "GOHOOK_KO_TASK_PARENT", "GOHOOK_KO_TASK_TGID")


def error_defines(options: ProgramOptions) -> dict[str, str]:
    """The defines of action error (lib/deny.h): on, the task_struct offsets (from BTF) that tell whether the
    thread would take SIGSYS now and whether gohook's tracer would get it, and gohook's own process id (the
    tracer's thread group, as the kernel numbers it: gohook runs in the initial pid namespace)."""
    offsets = dict(_kernel_offsets(options, "action error (task_struct.blocked, ptrace, parent)"))
    out = {"GOHOOK_ERROR_ACTION": "1", "GOHOOK_TRACER_TGID": str(options.tracer_tgid or os.getpid())}
    for name in ERROR_OFFSETS:
        off = offsets.get(name, 0)
        if not 0 < off < 1 << 16:  # (no field read here is a task_struct's first)
            raise PlanTableError(f"kernel offset {name}={off} is not plausible")
        out[name] = str(off)
    return out


def own_pid_namespace() -> tuple[int, int]:
    """(st_dev, st_ino) of this process's pid namespace: the namespace gohook's own pids are numbers in."""
    st = os.stat("/proc/self/ns/pid")
    return st.st_dev, st.st_ino


def render_defines(plan: EnforcementPlan, options: ProgramOptions = DEFAULT_OPTIONS,
                   tables: KernelTables | None = None) -> dict[str, str]:
    """Every -D define of the program for plan, in a stable order."""
    if not plan.hooks:
        raise PlanTableError("the plan has no hook points: nothing to attach")
    ids = [h.hook_id for h in plan.hooks]
    if len(set(ids)) != len(ids):
        raise PlanTableError("hook ids are not unique")
    tables = tables if tables is not None else build_tables(plan)
    goexit_start, goexit_end = plan.goexit
    if goexit_end < goexit_start or (goexit_start and not plan.text_start <= goexit_start < plan.text_end):
        raise PlanTableError(f"runtime.goexit range [{goexit_start:#x}, {goexit_end:#x}) is not inside the text")
    if not 0 <= plan.goid_offset < 4096:
        raise PlanTableError(f"goid offset {plan.goid_offset} is not a plausible runtime.g offset")
    enforce = plan.mode == Mode.ENFORCE
    report_allowed = options.report_allowed or plan.mode == Mode.LEARN
    hooks = " ".join(hook_macros(plan))
    classes = handler_classes(plan)
    if any(handler_slot(*k) >= HANDLER_SLOTS for k in classes):
        raise PlanTableError(f"hook kinds {classes} do not fit the {HANDLER_SLOTS} handler slots")
    handlers = " ".join(f"HANDLER({int(k)}, {int(d)})" for k, d in classes) if options.shared_handler else ""
    prov, sentinel = plan.provenance, plan.sentinel
    if sentinel is not None and prov is None:
        raise PlanTableError("the system-call sentinel needs goroutine provenance (its probe registers "
                             "the processes)")
    extra: dict[str, str] = {}
    if prov is not None:
        extra.update(provenance_defines(plan, prov))
    if sentinel is not None:
        extra["GOHOOK_SENTINEL"] = "1"
        cap = sentinel.syscall_capability
        extra["GOHOOK_SYSCALL_CAPBIT"] = f"{(1 << cap) if cap >= 0 else 0:#x}ULL"  # (build_tables validated the rules)
        if sentinel.compat_capability >= 0:
            if not sentinel.compat_capability < min(len(plan.capabilities), MAX_CAPABILITIES):
                raise PlanTableError(f"the sentinel's i386 capability bit {sentinel.compat_capability} is not "
                                     "one of the plan's")
            extra["GOHOOK_COMPAT_CAP"] = str(sentinel.compat_capability)
    guard = plan.guard
    if guard is not None:
        if prov is None:
            raise PlanTableError("the guard needs goroutine provenance (its probe registers the processes)")
        if sentinel is not None and sentinel.exempt != guard.exempt:
            raise PlanTableError("the sentinel and the guard exempt different runtime functions")
        extra["GOHOOK_GUARD"] = "1"
        dev, ino = options.pid_namespace or own_pid_namespace()
        extra["GOHOOK_PIDNS_DEV"] = f"{dev:#x}ULL"
        extra["GOHOOK_PIDNS_INO"] = f"{ino:#x}ULL"
    exempt = guard.exempt if guard is not None else sentinel.exempt if sentinel is not None else ()
    for start, end in exempt:
        if not plan.text_start <= start < end <= plan.text_end:
            raise PlanTableError(f"exempt range [{start:#x}, {end:#x}) is empty or outside the text")
    if exempt:
        extra["GOHOOK_EXEMPT"] = " ".join(f"EXEMPT({s:#x}ULL, {e:#x}ULL)" for s, e in exempt)
    if plan.file_open:
        if prov is None:
            raise PlanTableError("judging opens of /proc and /sys files needs goroutine provenance (its probe "
                                 "registers the processes)")
        extra.update(fileopen_defines(plan, options))
    if plan.error_action:
        extra.update(error_defines(options))
    arg_tables = build_arg_tables(plan)
    if arg_tables is not None:
        if not options.shared_handler:
            raise PlanTableError("argument-scoped grants need the shared handler (its tail call reaches the "
                                 "argument check)")
        extra["GOHOOK_ARG_RULES"] = "1"
        extra["GOHOOK_NHOOKSCOPES"] = str(1 + max((h.hook_id for h in plan.hooks), default=0))
        extra["GOHOOK_NGLOBS"] = str(max(1, len(arg_tables.globs)))
        extra["GOHOOK_NADDRS"] = str(max(1, len(arg_tables.addrs)))
    return {
        "GOHOOK_MAX_FRAMES": str(options.layout.max_frames),
        "GOHOOK_ARG_MAX": str(options.layout.arg_max),
        "GOHOOK_TEXT_START": f"{plan.text_start:#x}ULL",
        "GOHOOK_TEXT_SIZE": f"{plan.text_end - plan.text_start:#x}ULL",
        "GOHOOK_GOEXIT_START": f"{goexit_start:#x}ULL",
        "GOHOOK_GOEXIT_SIZE": f"{goexit_end - goexit_start:#x}ULL",
        "GOHOOK_GOID_OFFSET": str(plan.goid_offset),
        "GOHOOK_NRANGES": str(len(tables.range_start)),
        "GOHOOK_NPAGES": str(tables.npages),
        "GOHOOK_SEARCH_STEPS": str(tables.search_steps),
        "GOHOOK_NMODULES": str(len(tables.module_mask) - 1),
        "GOHOOK_ENFORCE": str(int(enforce)),
        "GOHOOK_LEARN_COUNTS": str(int(plan.mode == Mode.LEARN or options.count_calls)),
        "GOHOOK_NHOOKS": str(len(tables.hook_deny)),
        "GOHOOK_STACK_MODE": str(int(plan.attribution == Attribution.STACK)),
        "GOHOOK_DENY_UNATTRIBUTED": str(int(plan.deny_unattributed)),
        "GOHOOK_REPORT_ALLOWED": str(int(report_allowed)),
        "GOHOOK_RINGBUF_PAGES": str(options.ringbuf_pages),
        "GOHOOK_SHARED_HANDLER": str(int(options.shared_handler)),
        **extra,
        "GOHOOK_HANDLERS": handlers,
        "GOHOOK_HOOKS": hooks,
    }


def render_cflags(plan: EnforcementPlan, options: ProgramOptions = DEFAULT_OPTIONS,
                  tables: KernelTables | None = None) -> list[str]:
    """The bcc cflags: the include path of bpf/ and one -D per define."""
    defines = render_defines(plan, options, tables)
    return [f"-I{BPF_DIR}", *(f"-D{name}={value}" for name, value in defines.items())]


def entry_name(hook: HookPoint) -> str:
    """Name of hook's entry program in the compiled module (HOOK's gohook_hook_##id)."""
    return f"gohook_hook_{hook.hook_id}"


def source_path() -> Path:
    return BPF_DIR / PROGRAM_FILE


_LIB_INCLUDE = re.compile(rf'#include "({LIB_DIR}/[^"]+)"\s*')


def program_source() -> str:
    """The text bcc compiles: gohook.bpf.c with the lib/ headers it includes pasted in.

    bcc rewrites map accesses (`counters.lookup(&i)`) only in the main file of a compilation, not in the
    headers it includes, so the lib/ headers cannot be #included: each is inlined at its first #include
    (recursively; later #includes of it are dropped, like its include guard would), between #line
    directives that keep compiler messages pointing at the real files. gohook.h (no map access) stays an
    #include, found through the -I of render_cflags.
    """
    seen: set[str] = set()

    def inline(name: str) -> list[str]:
        path = BPF_DIR / name
        out = [f'#line 1 "{path}"']
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = _LIB_INCLUDE.fullmatch(line)
            if m is None:
                out.append(line)
                continue
            if m[1] not in seen:
                seen.add(m[1])
                out += inline(m[1])
            out.append(f'#line {number + 1} "{path}"')
        return out

    return "\n".join(inline(PROGRAM_FILE)) + "\n"


def render_program(plan: EnforcementPlan, options: ProgramOptions = DEFAULT_OPTIONS) -> str:
    """What `--print-program` shows: the defines as #define lines, then the header and the program text.

    The text compiles to the same program as the loader's (program_source with the cflags' -I of bpf/c).
    """
    defines = render_defines(plan, options)
    lines = [f"/* gohook program for {plan.binary}: {len(plan.hooks)} hooks; "
             f"bcc compiles {PROGRAM_FILE} (its {LIB_DIR}/ headers inlined) with -I{BPF_DIR} and these defines */"]
    for name, value in defines.items():
        if name != "GOHOOK_HOOKS":
            lines.append(f"#define {name} {value}")
    lines.append("#define GOHOOK_HOOKS \\\n\t" + " \\\n\t".join(hook_macros(plan)))
    lines += ["", f"/* ---- {HEADER_FILE} ---- */", (BPF_DIR / HEADER_FILE).read_text(),
              "", f"/* ---- {PROGRAM_FILE}, its {LIB_DIR}/ headers inlined ---- */", program_source()]
    return "\n".join(lines)
