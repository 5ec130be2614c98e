"""Hand-made plans for the BPF tests and benchmarks (no catalog, no policy file).

The product builds plans with gohook/plan/build.py (catalog + policy). Tests of
the BPF side want plans with chosen hooks and masks instead; this module
builds them from the same parts the planner uses: probe sites from
gohook.sites.probesite and inline-aware ranges from gohook.attribution.ranges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gohook.attribution.ranges import Range, build_ranges
from gohook.errors import AddressError
from gohook.gosym import STD, GoBinary
from gohook.plan.model import (
    ArgRead,
    EnforcementPlan,
    FlagRule,
    HookPoint,
)
from gohook.policy.format import Action, Attribution, Mode
from gohook.sites.goruntime import table_goid_offset
from gohook.sites.probesite import PROLOGUE_WINDOW, find_probe_site


def probe_address(binary: GoBinary, function: str) -> int:
    """Static vaddr where gohook probes function (see gohook.sites.probesite)."""
    f = binary.functions_by_name.get(function)
    if f is None:
        raise AddressError(f"{binary.path}: no function {function}")
    return find_probe_site(binary.image.read(f.entry, min(PROLOGUE_WINDOW, f.end - f.entry)), f.entry).address


def module_ids(binary: GoBinary) -> tuple[str, ...]:
    """Non-std modules that own functions, sorted: module id i + 1 is the i-th."""
    found = {binary.module_of(f.name) for f in binary.functions}
    found.discard(STD)
    return tuple(sorted(found))


def function_ranges(binary: GoBinary, modules: Sequence[str],
                    trusted: frozenset[str] = frozenset()) -> tuple[Range, ...]:
    """Inline-aware ranges (gohook.attribution.ranges) for module ids 1..N in `modules` order; trusted ones are 0."""
    ids = {m: i + 1 for i, m in enumerate(modules) if m not in trusted}
    return tuple(build_ranges(binary, lambda m: ids.get(m, 0)))


_NO_ARG = ArgRead()


def hook(binary: GoBinary, hook_id: int, function: str, capability: int, *, arg: ArgRead = _NO_ARG,
         rule: FlagRule | None = None, direct_caller_only: bool = False, at_entry: bool = False) -> HookPoint:
    """A HookPoint on function (at its probe address, or at its entry with at_entry)."""
    f = binary.functions_by_name.get(function)
    if f is None:
        raise AddressError(f"{binary.path}: no function {function}")
    probe = f.entry if at_entry else probe_address(binary, function)
    return HookPoint(hook_id=hook_id, function=function, entry=f.entry, probe=probe,
                     file_offset=binary.vaddr_to_offset(probe), capability=capability, arg=arg, rule=rule,
                     direct_caller_only=direct_caller_only)


def plan_for(binary: GoBinary, hooks: Sequence[HookPoint], capabilities: Sequence[str], *,
             allowed: Mapping[str, int] | None = None, default_mask: int = 0, mode: Mode = Mode.ENFORCE,
             action: Action = Action.KILL, attribution: Attribution = Attribution.CALLER,
             deny_unattributed: bool = False) -> EnforcementPlan:
    """A plan for binary; `allowed` maps module paths to capability masks."""
    modules = module_ids(binary)
    ids = {m: i + 1 for i, m in enumerate(modules)}
    goexit = binary.functions_by_name.get("runtime.goexit")
    return EnforcementPlan(
        binary=binary.path,
        pie=binary.is_pie,
        text_start=binary.text_start,
        text_end=binary.text_end,
        capabilities=tuple(capabilities),
        modules=modules,
        ranges=function_ranges(binary, modules),
        hooks=tuple(hooks),
        allowed={ids[m]: mask for m, mask in (allowed or {}).items()},
        default_mask=default_mask,
        action=action,
        mode=mode,
        attribution=attribution,
        deny_unattributed=deny_unattributed,
        goexit=(goexit.entry, goexit.end) if goexit else (0, 0),
        goid_offset=table_goid_offset(binary.go_minor),
    )
