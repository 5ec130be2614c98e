"""Hook sites: which catalog functions a binary contains, and where to probe each.

Stage between the binary and the plan: for every catalog hook spec that
applies to the binary's Go release, find the function in the pclntab, pick
the probe instruction (gohook.sites.probesite) and compute its file offset.
Catalog functions that are absent are reported, and so are those that exist
only as inlined copies (named in some inline tree but with no physical
function: a uprobe can never see them).

direct_caller_only hooks (syscall.Syscall and its siblings, runtime.cgocall,
syscall.Listen/Bind) count a call only when non-std code makes it, yet the
standard library calls them all the time: syscall.Syscall runs for every
read and write of a net/http server (about 30 uprobe hits per request, each
about 1.5 us, measured in docs/performance.md). So they are probed at their
call sites in non-std code instead: every direct `call` and tail `jmp` to
them from a non-std function (found by a byte scan of the non-std code,
confirmed by disassembling the function). The calls std makes then cost
nothing. A function whose address appears in the binary's data (a func
value: `f := syscall.Syscall`, or a relocation of one in a PIE) may be
called indirectly, which no call site shows: such a function keeps its
entry-side probe.
"""

from __future__ import annotations

import bisect
import re
import struct
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from functools import cached_property

import capstone

from gohook.gosym import GoBinary, machinecode
from gohook.gosym.elfimage import SHF_ALLOC
from gohook.gosym.pclntab import Function
from gohook.sites.catalog import Catalog, GoVersion, HookSpec
from gohook.sites.probesite import PROLOGUE_WINDOW, ProbeSite, find_probe_site


@dataclass(frozen=True, slots=True)
class CallSite:
    """A direct call or tail jump from non-std code to a hooked function: where a direct_caller_only hook is probed."""

    address: int  # static vaddr of the call / jmp instruction
    file_offset: int
    caller: str  # the physical function holding it
    call_len: int  # bytes of the call instruction (the return address is address + call_len); 0 for a jump,
    #                where the registers already hold the callee's entry state ([RSP] = the return address)


@dataclass(frozen=True)
class HookSite:
    spec: HookSpec
    function: Function
    probe: ProbeSite
    file_offset: int  # of probe.address
    # direct_caller_only hooks whose address no data holds: probe these call sites instead of `probe`
    # (possibly none: then nothing needs a probe). None: probe the function itself.
    call_sites: tuple[CallSite, ...] | None = None

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
        if table.has_inline_tree(f):
            names.update(table.inlined_names(f))
    return frozenset(names)


def find_hook_sites(binary: GoBinary, catalog: Catalog) -> HookReport:
    binary.require_amd64("finding hook sites (and so inspect, policy generate and attach)")
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
    sites = place_direct_hooks(binary, sites)
    inlined = inlined_function_names(binary) if missing else frozenset()
    absent = tuple(n for n in missing if n not in inlined)
    inlined_only = tuple(n for n in missing if n in inlined)
    return HookReport(version, assumed, tuple(sites), absent, inlined_only)


# -- call sites of direct_caller_only hooks -----------------------------------------------

#: Sections that list function addresses without making func values of them.
_ADDRESS_TABLES = frozenset((".gopclntab", ".gosymtab", ".symtab", ".dynsym"))
_CALL_OR_JMP = re.compile(rb"[\xe8\xe9]")  # call rel32, jmp rel32
_REL32 = struct.Struct("<i")


def address_taken(binary: GoBinary, entries: Iterable[int], accelerated: bool = True) -> frozenset[int]:
    """Entries stored as 8-byte words in loaded, non-executable data: func values (or PIE relocations of them).

    Symbol tables and the pclntab are left out: they name functions without making them callable values.
    With the C scanner, one pass over each section finds every entry (words_present); the Python search is
    one pass per entry (0.18 s for 12 entries over prometheus' 14 MB of data, issue 17 §6).
    """
    image = binary.image
    sections = [sec for sec in image.sections if sec.flags & SHF_ALLOC and not sec.executable and not sec.nobits
                and sec.size and sec.name not in _ADDRESS_TABLES]
    wanted = list(entries)
    accel = machinecode.scanner() if accelerated else None
    if accel is not None:
        found: set[int] = set()
        for sec in sections:
            found.update(accel.words_present(image.section_view(sec), wanted))
        return frozenset(found)
    data = [image.section_bytes(sec) for sec in sections]
    return frozenset(e for e in wanted if any(d.find(struct.pack("<Q", e)) >= 0 for d in data))


def direct_call_sites(binary: GoBinary, targets: Collection[int]) -> dict[int, tuple[CallSite, ...]]:
    """Direct calls (`call rel32`) and jumps (`jmp rel32`) from non-std functions to `targets`, by target.

    A byte scan of each non-std function finds candidate E8/E9 opcodes whose rel32 lands on a target
    (_rel32_candidates: in C when gohook.gosym._scan is built, 1.1 s of Python on Debian's prometheus);
    a function with candidates is disassembled so that only real instruction starts count.
    """
    wanted = frozenset(targets)
    found: dict[int, list[CallSite]] = {}
    md: capstone.Cs | None = None
    fns = [f for f in binary.functions if f.end > f.entry and not binary.is_std(f.name)]
    for f, candidates in _rel32_candidates(binary, fns, wanted):
        code = binary.image.read(f.entry, f.end - f.entry)
        md = md or capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        for address, size, mnemonic, _op in md.disasm_lite(code, f.entry):
            target = candidates.get(address)
            if target is None or size != 5 or mnemonic not in ("call", "jmp"):
                continue
            site = CallSite(address, binary.vaddr_to_offset(address), f.name, 5 if mnemonic == "call" else 0)
            found.setdefault(target, []).append(site)
    return {t: tuple(v) for t, v in found.items()}


def _rel32_candidates(binary: GoBinary, fns: list[Function], wanted: frozenset[int],
                      accelerated: bool = True) -> list[tuple[Function, dict[int, int]]]:
    """(function, {E8/E9 byte address: the target its rel32 lands on}) for the functions with any such byte
    whose target is wanted, in fns' order (byte positions p with p + 5 <= the function's length). In C when
    `accelerated` and the scanner is built (the same answer: tests/sites/test_direct_sites.py)."""
    accel = machinecode.scanner() if accelerated else None
    lo, view = machinecode.text_view(binary)
    hi = lo + len(view)
    starts = [f.entry for f in fns]
    out: list[tuple[Function, dict[int, int]]] = []
    if (accel is not None and all(lo <= f.entry <= f.end <= hi for f in fns)
            and all(a < b for a, b in zip(starts, starts[1:], strict=False))):
        by_function: dict[int, dict[int, int]] = {}
        for address, target in accel.rel32_sites(view, lo, starts, [f.end for f in fns], sorted(wanted)):
            k = bisect.bisect_right(starts, address) - 1
            by_function.setdefault(k, {})[address] = target
        return [(fns[k], c) for k, c in sorted(by_function.items())]
    for f in fns:
        code = binary.image.read(f.entry, f.end - f.entry)
        candidates = {}
        for m in _CALL_OR_JMP.finditer(code, 0, max(len(code) - 4, 0)):
            p = m.start()
            target = f.entry + p + 5 + _REL32.unpack_from(code, p + 1)[0]
            if target in wanted:
                candidates[f.entry + p] = target
        if candidates:
            out.append((f, candidates))
    return out


def place_direct_hooks(binary: GoBinary, sites: list[HookSite]) -> list[HookSite]:
    """sites with call_sites set for every direct_caller_only hook whose address no data holds."""
    names = {s.function.name for s in sites if s.spec.direct_caller_only}
    if not names:
        return sites
    # every function of that name: the hooked one and any ABI wrapper (asm calls reach Go through one)
    entries: dict[str, list[int]] = {}
    for f in binary.functions:
        if f.name in names:
            entries.setdefault(f.name, []).append(f.entry)
    every = [e for es in entries.values() for e in es]
    taken = address_taken(binary, every)
    calls = direct_call_sites(binary, every)
    out = []
    for s in sites:
        mine = entries.get(s.function.name, []) if s.spec.direct_caller_only else []
        if mine and not taken.intersection(mine):
            found = sorted((c for e in mine for c in calls.get(e, ())), key=lambda c: c.address)
            s = replace(s, call_sites=tuple(found))
        out.append(s)
    return out
