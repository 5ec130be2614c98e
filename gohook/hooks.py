"""Hook sites: which catalog functions a binary contains, and where to probe each.

Stage between the binary and the plan: for every catalog hook spec that
applies to the binary's Go release, find the function in the pclntab, pick
the probe instruction (gohook.probesite) and compute its file offset.
Catalog functions that are absent are reported, and so are those that exist
only as inlined copies (named in some inline tree but with no physical
function: a uprobe can never see them).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from gohook.catalog import Catalog, GoVersion, HookSpec
from gohook.gosym import GoBinary
from gohook.gosym.pclntab import Function
from gohook.probesite import PROLOGUE_WINDOW, ProbeSite, find_probe_site


@dataclass(frozen=True)
class HookSite:
    spec: HookSpec
    function: Function
    probe: ProbeSite
    file_offset: int  # of probe.address

    @property
    def capabilities(self) -> frozenset[str]:
        return self.spec.capabilities

    @property
    def capability_label(self) -> str:
        """`files.read` or, for a rule, `files.read|files.write`."""
        return "|".join(sorted(self.capabilities)) or "-"


@dataclass(frozen=True)
class HookReport:
    go_version: GoVersion
    version_assumed: bool  # the binary has no build info: newest verified release assumed
    sites: tuple[HookSite, ...]
    absent: tuple[str, ...]
    inlined_only: tuple[str, ...]

    @cached_property
    def by_entry(self) -> dict[int, HookSite]:
        return {s.function.entry: s for s in self.sites}


def binary_go_version(binary: GoBinary, catalog: Catalog) -> tuple[GoVersion, bool]:
    """The binary's Go release, or the newest verified catalog release (assumed=True)."""
    if binary.go_version:
        try:
            return GoVersion.parse(binary.go_version), False
        except ValueError:  # devel or odd version strings fall through to the assumption
            pass
    return max(catalog.verified, key=lambda v: (v.major, v.minor)), True


def inlined_function_names(binary: GoBinary) -> frozenset[str]:
    """Names of every function that appears as an inlined call anywhere in the binary."""
    table = binary.table
    names: set[str] = set()
    for f in binary.functions:
        if not table.has_inline_tree(f):
            continue
        _pcs, vals = table.inline_table(f)
        for ix in range(max(vals, default=-1) + 1):
            names.add(table.inlined_call(f, ix).name)
    return frozenset(names)


def find_hook_sites(binary: GoBinary, catalog: Catalog) -> HookReport:
    version, assumed = binary_go_version(binary, catalog)
    by_name = binary.functions_by_name
    sites: list[HookSite] = []
    missing: list[str] = []
    seen: set[str] = set()
    for spec in catalog.hooks_for(version):
        if spec.function in seen:
            continue
        seen.add(spec.function)
        f = by_name.get(spec.function)
        if f is None:
            missing.append(spec.function)
            continue
        code = binary.image.read(f.entry, min(PROLOGUE_WINDOW, f.end - f.entry))
        probe = find_probe_site(code, f.entry)
        sites.append(HookSite(spec, f, probe, binary.vaddr_to_offset(probe.address)))
    inlined = inlined_function_names(binary) if missing else frozenset()
    absent = tuple(n for n in missing if n not in inlined)
    inlined_only = tuple(n for n in missing if n in inlined)
    return HookReport(version, assumed, tuple(sites), absent, inlined_only)
