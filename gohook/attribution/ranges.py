"""Inline-aware attribution ranges: text address -> modules, for the BPF range table.

For every instruction PC of the binary we want the modules of its logical
frames, innermost first, with the standard library (and trusted modules)
left out: the kernel charges a capability call to those modules.

A physical function without an inline tree contributes one range with its own
module. A function with an inline tree is split wherever its
PCDATA_InlTreeIndex table changes value; each piece gets the modules of the
inline chain at that PC (innermost inlined callee first, the physical
function last). Adjacent pieces with the same modules are merged, and
pieces whose chain is entirely standard library are dropped (uncovered = std).

Lookups are by *instruction* PC: a stack walk has return addresses, so it
looks up `ret - 1` (as the runtime does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gohook.gosym import STD, GoBinary
from gohook.gosym.pclntab import Function

MAX_MODULES_PER_RANGE = 4


@dataclass(frozen=True, slots=True)
class Range:
    """[start, end) of text whose return addresses attribute to `modules` (innermost first)."""

    start: int
    end: int
    modules: tuple[int, ...]

# module path -> module id (0 = transparent: std or trusted)
ModuleIds = Callable[[str], int]


def _dedupe(ids: Iterable[int]) -> tuple[int, ...]:
    out: list[int] = []
    for i in ids:
        if i and i not in out:
            out.append(i)
    return tuple(out[:MAX_MODULES_PER_RANGE])


ModuleOf = Callable[[str], str]  # function name -> module path


def function_ranges(binary: GoBinary, f: Function, module_id: ModuleIds,
                    module_of: ModuleOf | None = None) -> list[Range]:
    """Attribution ranges of one physical function (unmerged, std pieces included).

    module_of names the module of a function (default: binary.module_of); the
    planner passes one that gives standard-library package initializers their
    own pseudo-module.
    """
    module_of = module_of or binary.module_of
    own = module_id(code_module(binary, f.name, f.entry, module_of))
    table = binary.table
    if not table.has_inline_tree(f):
        return [Range(f.entry, f.end, _dedupe([own]))]
    pcs, vals = table.inline_table(f)
    out: list[Range] = []
    start = f.entry
    chain_cache: dict[int, tuple[int, ...]] = {}
    for end, ix in zip(pcs, vals, strict=True):
        end = min(end, f.end)
        if end <= start:
            continue
        mods = chain_cache.get(ix)
        if mods is None:
            mods = _dedupe(_chain_modules(binary, f, ix, start, own, module_id, module_of))
            chain_cache[ix] = mods
        out.append(Range(start, end, mods))
        start = end
    if start < f.end:
        out.append(Range(start, f.end, _dedupe([own])))
    return out


def code_module(binary: GoBinary, name: str, pc: int, module_of: ModuleOf) -> str:
    """The module of function `name`'s code at pc: module_of(name), except a closure, whose name is the function
    its code ended up in (GoBinary.closure_package): then the module of its source file's package."""
    pkg = binary.closure_package(name, pc)
    return module_of(name) if pkg is None else binary.resolver.module_of_package(pkg).path


def _chain_modules(binary: GoBinary, f: Function, ix: int, pc: int, own: int, module_id: ModuleIds,
                   module_of: ModuleOf) -> list[int]:
    """Modules of the inline chain at index ix, innermost first; pc: an address of the innermost callee's code
    (then each parent's call site, where its own code is)."""
    table = binary.table
    ids: list[int] = []
    seen = 0
    while ix >= 0 and seen < 256:
        call = table.inlined_call(f, ix)
        ids.append(module_id(code_module(binary, call.name, pc, module_of)))
        pc = f.entry + call.parent_pc
        ix = table.inline_index(f, pc)
        seen += 1
    ids.append(own)
    return ids


def merge(ranges: Iterable[Range]) -> list[Range]:
    """Drop std-only ranges and merge touching ranges with identical modules."""
    out: list[Range] = []
    for r in ranges:
        if not r.modules:
            continue
        if out and out[-1].end == r.start and out[-1].modules == r.modules:
            out[-1] = Range(out[-1].start, r.end, r.modules)
        else:
            out.append(r)
    return out


def build_ranges(binary: GoBinary, module_id: ModuleIds, module_of: ModuleOf | None = None) -> list[Range]:
    """Sorted, merged, non-overlapping ranges for the whole binary."""
    pieces: list[Range] = []
    for f in binary.functions:
        pieces.extend(function_ranges(binary, f, module_id, module_of))
    return merge(pieces)


def module_id_map(modules: list[str], transparent: Callable[[str], bool]) -> tuple[ModuleIds, tuple[str, ...]]:
    """Assign ids 1..N to non-transparent modules; std and transparent ones map to 0."""
    ordered = tuple(m for m in modules if m != STD and not transparent(m))
    index = {m: i + 1 for i, m in enumerate(ordered)}

    def lookup(module: str) -> int:
        return index.get(module, 0)

    return lookup, ordered
