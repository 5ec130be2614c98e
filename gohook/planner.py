"""Build the enforcement plan: binary + catalog + policy -> EnforcementPlan.

Pipeline stage 2 (binary -> **plan** -> BPF -> attach -> events -> views).
Every catalog hook site present in the binary becomes a HookPoint whose
argument read and capability rule are translated to what the BPF program
evaluates; the inline-aware range table (gohook.ranges) maps text to module
ids; the policy becomes one capability bitmask per module. Trusted modules
and the standard library get id 0 (transparent).

Hook specs the BPF program cannot evaluate yet (a rule on an argument passed
on the stack, i.e. an assembly function) are left out and listed in
`PlanBuild.skipped` with the reason, so `attach` can say so.
"""

from __future__ import annotations

from dataclasses import dataclass

from gohook.catalog import ArgKind as CatArgKind
from gohook.catalog import ArgSpec, Catalog, HookSpec
from gohook.catalog import FlagRule as CatFlagRule
from gohook.gosym import STD, GoBinary
from gohook.hooks import HookReport, HookSite
from gohook.plan import (
    GO_ARG_REGS,
    ArgKind,
    ArgRead,
    EnforcementPlan,
    FlagRule,
    HookPoint,
    Mode,
)
from gohook.policy import Policy
from gohook.ranges import build_ranges, module_id_map

#: Offset of goid in runtime.g on amd64, by Go minor release (REFERENCE.md section 6;
#: 1.19-1.22 and 1.25-1.27 agree on 152, 1.23-1.24 moved it to 160).
GOID_OFFSETS = {19: 152, 20: 152, 21: 152, 22: 152, 23: 160, 24: 160, 25: 152, 26: 152, 27: 152}

_ARG_KINDS = {
    CatArgKind.STRING: ArgKind.STRING,
    CatArgKind.CSTRING: ArgKind.CSTRING,
    CatArgKind.STRINGS_FIRST: ArgKind.STRING_SLICE0,
    CatArgKind.INT: ArgKind.INT,
    CatArgKind.SOCKADDR: ArgKind.SOCKADDR,
}


@dataclass(frozen=True)
class PlanBuild:
    plan: EnforcementPlan
    sites: tuple[HookSite, ...]  # hook id i is sites[i]
    skipped: tuple[tuple[str, str], ...]  # (function, reason)


def _reg_index(loc: object) -> int | None:
    name = str(loc)
    return GO_ARG_REGS.index(name) if name in GO_ARG_REGS else None


def arg_read(spec: ArgSpec | None) -> ArgRead:
    """The catalog's argument location as the BPF program reads it (NONE when it cannot)."""
    if spec is None or spec.kind not in _ARG_KINDS:
        return ArgRead()
    regs = [_reg_index(loc) for loc in spec.at]
    if any(r is None for r in regs):
        return ArgRead()  # on the stack (assembly function): not read
    return ArgRead(_ARG_KINDS[spec.kind], tuple(r for r in regs if r is not None))


def hook_point(hook_id: int, site: HookSite, catalog: Catalog) -> tuple[HookPoint | None, str]:
    spec: HookSpec = site.spec
    rule = None
    capability = 0
    if spec.rule is not None:
        if not isinstance(spec.rule, CatFlagRule):
            return None, "capability decided by a value table (not evaluated in BPF yet)"
        reg = _reg_index(spec.rule.at)
        if reg is None:
            return None, "capability decided by a stack argument (not read in BPF yet)"
        rule = FlagRule(reg, spec.rule.mask, catalog.capability(spec.rule.set).bit,
                        catalog.capability(spec.rule.clear).bit)
    elif spec.capability is not None:
        capability = catalog.capability(spec.capability).bit
    else:
        return None, "no capability"
    f = site.function
    return HookPoint(hook_id=hook_id, function=f.name, entry=f.entry, probe=site.probe.address,
                     file_offset=site.file_offset, capability=capability, arg=arg_read(spec.argument),
                     rule=rule, direct_caller_only=spec.direct_caller_only), ""


def build_plan(binary: GoBinary, hooks: HookReport, catalog: Catalog, policy: Policy, mode: Mode) -> PlanBuild:
    modules = sorted({binary.module_of(f.name) for f in binary.functions} - {STD})
    module_id, ordered = module_id_map(modules, policy.is_trusted)
    ranges = build_ranges(binary, module_id)
    points: list[HookPoint] = []
    used: list[HookSite] = []
    skipped: list[tuple[str, str]] = []
    for site in hooks.sites:
        point, why = hook_point(len(points), site, catalog)
        if point is None:
            skipped.append((site.function.name, why))
            continue
        points.append(point)
        used.append(site)
    allowed = {i + 1: catalog.mask(policy.capabilities_of(m)) for i, m in enumerate(ordered)}
    goexit = binary.functions_by_name.get("runtime.goexit")
    plan = EnforcementPlan(
        binary=binary.path,
        pie=binary.is_pie,
        text_start=binary.text_start,
        text_end=binary.text_end,
        capabilities=tuple(c.name for c in catalog.capabilities),
        modules=ordered,
        ranges=tuple(ranges),
        hooks=tuple(points),
        allowed=allowed,
        default_mask=catalog.mask(policy.default),
        action=policy.action,
        mode=mode,
        attribution=policy.attribution,
        deny_unattributed=policy.deny_unattributed,
        goexit=(goexit.entry, goexit.end) if goexit else (0, 0),
        goid_offset=GOID_OFFSETS.get(binary.go_minor or 0, 0),
    )
    return PlanBuild(plan, tuple(used), tuple(skipped))
