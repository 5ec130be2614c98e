"""Enforcement plans for every configuration, all derived from the plan `gohook attach` builds.

- shipped(): binary + catalog + policy -> plan, through gohook.session.prepare
  (what `gohook attach` does, so the benchmark follows any change to it);
- at_entry(): the same hooks with every probe moved to the function entry
  (the naive placement, single-stepped by the kernel);
- callee_placement(): direct_caller_only hooks probed at the hooked function
  (as before call-site placement) rather than at their callers;
- with_hook_count(): N hook points: the measured ones, then real ones, then
  extra probes on functions the workload never calls (cold packages);
- with_module_count(): N modules: the real ones plus synthetic modules, each
  owning ranges of functions that are never on a measured stack, so the
  range table is as dense as a many-module binary's and every lookup
  searches a full page.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import fields, replace
from pathlib import Path

from gohook.attribution.ranges import Range
from gohook.gosym import GoBinary
from gohook.gosym.pclntab import Function
from gohook.plan.build import PlanBuild, hook_point
from gohook.plan.model import EnforcementPlan, HookPoint
from gohook.policy.format import Mode
from gohook.session import AttachOptions, prepare
from gohook.sites.catalog import load_catalog
from gohook.sites.hooks import find_hook_sites
from gohook.sites.probesite import PROLOGUE_WINDOW, find_probe_site
from gohook.views.progress import Progress

#: Packages perfapp links but never runs in the microbenchmarks (TLS, compression, ...).
COLD_PACKAGES = ("crypto/", "vendor/golang.org/x/crypto/", "compress/", "encoding/asn1", "encoding/pem", "math/big")
#: Packages on the measured stacks: never given a synthetic module.
HOT_PACKAGES = ("runtime", "internal/", "syscall", "os", "sync", "time", "io", "errors", "unique", "weak", "iter")


def shipped(binary: Path, policy: Path, mode: str = "enforce", sentinel: str = "auto") -> tuple[GoBinary, PlanBuild]:
    """What `gohook attach --binary BINARY --policy POLICY --mode MODE --sentinel SENTINEL` plans."""
    options = AttachOptions(binary=str(binary), policy=str(policy), mode=Mode(mode), sentinel=sentinel,
                            allow_unmatched=True)
    return prepare(options, Progress(enabled=False))


def at_entry(plan: EnforcementPlan, binary: GoBinary) -> EnforcementPlan:
    """Every hooked function probed at its first instruction instead of the emulated one after it.

    Call-site hook points (gohook.sites.hooks.CallSite) of one function become that function's entry probe.
    """
    hooks: list[HookPoint] = []
    seen: set[int] = set()
    for h in plan.hooks:
        if h.entry in seen:
            continue
        seen.add(h.entry)
        hooks.append(replace(h, hook_id=len(hooks), probe=h.entry, file_offset=binary.vaddr_to_offset(h.entry),
                             call_len=0))
    return replace(plan, hooks=tuple(hooks))


def callee_placement(plan: EnforcementPlan, binary: GoBinary) -> EnforcementPlan:
    """plan with every direct_caller_only hook probed at its function (the placement before call sites).

    The hooks the planner put at call sites, or left out for having none, get one probe on their
    function's emulated prologue instruction instead.
    """
    catalog = load_catalog()
    moved = [s for s in find_hook_sites(binary, catalog).sites if s.call_sites is not None]
    names = {s.function.name for s in moved}
    hooks = [h for h in plan.hooks if not (h.direct_caller_only and h.function in names)]
    for site in moved:
        point, _why = hook_point(len(hooks), replace(site, call_sites=None), catalog)
        if point is not None:
            hooks.append(point)
    return replace(plan, hooks=tuple(replace(h, hook_id=i) for i, h in enumerate(hooks)))


def has_provenance() -> bool:
    """Whether plans carry goroutine provenance (the goroutine-created probe)."""
    return "provenance" in {f.name for f in fields(EnforcementPlan)}


def hook_points_only(plan: EnforcementPlan) -> EnforcementPlan:
    """plan without provenance, and without what needs it (the sentinel, the guard, the file-open judge): the
    hook points alone."""
    return (replace(plan, provenance=None, sentinel=None, guard=None, file_open=False) if has_provenance()
            else plan)


def _package(binary: GoBinary, name: str) -> str:
    return binary.package_of(name) or ""


def _in(pkg: str, prefixes: tuple[str, ...]) -> bool:
    """pkg is one of prefixes ("a/b") or below one ("a/b/c"); a prefix ending in "/" matches only below."""
    return any(pkg.startswith(p) if p.endswith("/") else pkg == p or pkg.startswith(p + "/") for p in prefixes)


def cold_functions(binary: GoBinary) -> list[tuple[Function, int]]:
    """Functions of COLD_PACKAGES whose probe site is emulated, by entry."""
    out = []
    for f in sorted(binary.functions, key=lambda f: f.entry):
        if f.end <= f.entry or not _in(_package(binary, f.name), COLD_PACKAGES):
            continue
        code = binary.image.read(f.entry, min(PROLOGUE_WINDOW, f.end - f.entry))
        site = find_probe_site(code, f.entry)
        if site.kind != "entry":
            out.append((f, site.address))
    return out


def with_hook_count(plan: EnforcementPlan, binary: GoBinary, total: int, keep: tuple[str, ...]) -> EnforcementPlan:
    """plan with exactly `total` hook points: those on `keep` functions first, then other real ones, then cold ones."""
    first = [h for h in plan.hooks if h.function in keep]
    rest = [h for h in plan.hooks if h.function not in keep]
    chosen = (first + rest)[:total]
    if len(chosen) < total:
        taken = {h.entry for h in chosen}
        for f, probe in cold_functions(binary):
            if len(chosen) >= total:
                break
            if f.entry in taken:
                continue
            chosen.append(HookPoint(hook_id=0, function=f.name, entry=f.entry, probe=probe,
                                    file_offset=binary.vaddr_to_offset(probe), capability=0))
    if len(chosen) < total:
        raise ValueError(f"{binary.path}: only {len(chosen)} hookable functions for {total} hook points")
    return replace(plan, hooks=tuple(replace(h, hook_id=i) for i, h in enumerate(chosen)))


def with_module_count(plan: EnforcementPlan, binary: GoBinary, total: int) -> EnforcementPlan:
    """plan with `total` modules: synthetic ones own the std functions outside HOT_PACKAGES, one range each."""
    real = len(plan.modules)
    if total <= real:
        return plan
    synthetic = tuple(f"example.com/synthetic/m{i:04d}" for i in range(total - real))
    ids = itertools.cycle(range(real + 1, total + 1))
    every = (1 << len(plan.capabilities)) - 1
    starts = [r.start for r in plan.ranges]
    extra = []
    for f in sorted(binary.functions, key=lambda f: f.entry):
        if f.end <= f.entry or not binary.is_std(f.name) or _in(_package(binary, f.name), HOT_PACKAGES):
            continue
        k = bisect.bisect_left(starts, f.end)  # plan ranges starting before f ends
        if k and plan.ranges[k - 1].end > f.entry:
            continue  # holds inlined non-std code (a generic instantiation): keep the real attribution
        extra.append(Range(f.entry, f.end, (next(ids),)))
    ranges = tuple(sorted((*plan.ranges, *extra), key=lambda r: r.start))
    allowed = dict(plan.allowed)
    allowed.update({m: every for m in range(real + 1, total + 1)})
    return replace(plan, modules=plan.modules + synthetic, ranges=ranges, allowed=allowed)
