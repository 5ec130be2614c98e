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

from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gohook.gosym import STD, GoBinary
from gohook.gosym.names import CLOSURE_NAME
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


ModuleOf = Callable[[str], str]  # function name -> module path


def function_ranges(binary: GoBinary, f: Function, module_id: ModuleIds,
                    module_of: ModuleOf | None = None) -> list[Range]:
    """Attribution ranges of one physical function (unmerged, std pieces included): function_pieces as
    Ranges.

    module_of names the module of a function (default: binary.module_of); the
    planner passes one that gives standard-library package initializers their
    own pseudo-module. Both it and module_id must answer the same for the same
    name as long as the binary lives: their answers are memoized on it.
    """
    starts, modules = function_pieces(binary, f, module_id, module_of)
    out: list[Range] = []
    append = out.append
    ends = starts[1:]
    ends.append(f.end)
    for start, end, mods in zip(starts, ends, modules, strict=True):
        r = _new(Range)
        _set_start(r, start)
        _set_end(r, end)
        _set_modules(r, mods)
        append(r)
    return out


def function_pieces(binary: GoBinary, f: Function, module_id: ModuleIds,
                    module_of: ModuleOf | None = None) -> tuple[list[int], list[tuple[int, ...]]]:
    """function_ranges without the Range objects: the start of each piece and its modules (innermost first).
    The pieces cover [f.entry, f.end) end to end: a piece ends where the next starts, the last at f.end; the
    piece holding pc is bisect_right(starts, pc) - 1. The static analysis asks this of every module function
    (51,000 in Debian's prometheus, 235,000 pieces) and looks up each call site in it.

    Issue 17 §6: written for speed: module ids of non-closure names come from a per-binary memo (by name, and
    by inline-record name offset), each inline chain is walked once per index, inline and deduplicated as it
    goes, with the function's inline records read in one go, and the inline table is searched here rather
    than through LineTable.inline_index. The result is exactly that of the plain walk (module_id(code_module(
    ...)) of each frame, LineTable.inline_index between them); tests/attribution/test_ranges_speedup.py keeps
    that walk and compares the two on every function of fixtures and real binaries.
    """
    of = module_of or binary.module_of
    memo = _id_memo(binary, module_id, module_of)
    entry, fend = f.entry, f.end
    own = memo.get(f.name)
    if own is None:
        own = _code_module_id(binary, f.name, entry, module_id, of, memo)
    own_t = (own,) if own else ()
    table = binary.table
    if not table.has_inline_tree(f):
        return [entry], [own_t]
    pcs, vals = table.inline_table(f)
    records = table.inline_records(f)
    inlined_name = table.inlined_name
    n = len(pcs)
    starts: list[int] = []
    modules: list[tuple[int, ...]] = []
    start = entry
    chains: dict[int, tuple[int, ...]] = {-1: own_t}  # inline index -> modules (of its first piece's chain)
    for end, ix in zip(pcs, vals, strict=True):
        if end > fend:
            end = fend
        if end <= start:
            continue
        mods = chains.get(ix)
        if mods is None:
            # The inline chain at ix, innermost first, deduplicated as it goes: its callee's code is at start,
            # each parent's at its call site (where LineTable.inline_index finds the parent's index: the value
            # of the first table entry ending after that pc, -1 past the last).
            ids: list[int] = []
            pc, j, seen = start, ix, 0
            while j >= 0 and seen < 256:
                _fid, name_off, parent_pc = records[j]
                i = memo.get(name_off)  # (by name offset: ints, names are strs) None: not seen; -1: a closure
                if i is None or i < 0:
                    name = inlined_name(name_off)
                    i = memo.get(name)
                    if i is None:
                        i = _code_module_id(binary, name, pc, module_id, of, memo)
                    memo[name_off] = i if name in memo else -1
                if i and i not in ids:
                    ids.append(i)
                pc = entry + parent_pc
                k = bisect_right(pcs, pc)
                j = vals[k] if k < n else -1
                seen += 1
            if own and own not in ids:
                ids.append(own)
            mods = chains[ix] = tuple(ids[:MAX_MODULES_PER_RANGE])
        starts.append(start)
        modules.append(mods)
        start = end
    if start < fend:
        starts.append(start)
        modules.append(own_t)
    return starts, modules


# Range without its __init__ (a frozen dataclass's assigns each field through object.__setattr__: 0.55 µs a
# Range against 0.34, and prometheus has 235,000 pieces): a bare instance and its slots set directly, equal
# to Range(s, e, m) in every respect (tests/attribution/test_ranges_speedup.py).
_new = object.__new__
_set_start = Range.start.__set__  # type: ignore[attr-defined]
_set_end = Range.end.__set__  # type: ignore[attr-defined]
_set_modules = Range.modules.__set__  # type: ignore[attr-defined]

_MEMOS_PER_BINARY = 4


def _id_memo(binary: GoBinary, module_id: ModuleIds, module_of: ModuleOf | None) -> dict[str | int, int]:
    """The binary's memo of module ids by function name, and by inline-record name offset (-1 there: a
    closure, whose id depends on its pc), for this (module_id, module_of) pair (identity:
    the memo holds them, so no other pair can take their ids). A few recent pairs are kept: a pass uses one,
    and each plan or analysis makes its own closures."""
    if module_of is not None and module_of == binary.module_of:
        module_of = None  # the default, passed as a bound method (a new object on every access)
    memos = binary.ranges_id_memos
    for mid, mof, memo in memos:
        if mid is module_id and mof is module_of:
            return memo
    memo = {}
    memos.insert(0, (module_id, module_of, memo))
    del memos[_MEMOS_PER_BINARY:]
    return memo


def _code_module_id(binary: GoBinary, name: str, pc: int, module_id: ModuleIds, module_of: ModuleOf,
                    memo: dict[str | int, int]) -> int:
    """module_id(code_module(...)) of name's code at pc, remembered in memo when name is no closure: only a
    closure's module depends on where its code is (GoBinary.closure_package returns None for other names)."""
    if CLOSURE_NAME.search(name):
        return module_id(code_module(binary, name, pc, module_of))
    i = memo[name] = module_id(module_of(name))
    return i


def code_module(binary: GoBinary, name: str, pc: int, module_of: ModuleOf) -> str:
    """The module of function `name`'s code at pc: module_of(name), except a closure, whose name is the function
    its code ended up in (GoBinary.closure_package): then the module of its source file's package."""
    pkg = binary.closure_package(name, pc)
    return module_of(name) if pkg is None else binary.resolver.module_of_package(pkg).path


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
