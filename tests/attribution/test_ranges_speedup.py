"""gohook.attribution.ranges.function_ranges, rewritten for speed (issue 17 §6), against the walk it replaced.

The reference below is the implementation before the rewrite, copied verbatim (only its functions renamed
with a ref_ prefix, and its Range being gohook's, so results compare equal): one plain walk per piece,
module_id(code_module(...)) of every frame of the inline chain, LineTable.inline_index between them, no memo.
The rewrite memoizes module ids per binary and per (module_id, module_of) pair, searches the inline table
itself and builds Ranges without their __init__; each of those could go wrong without any other test
noticing a difference on small inputs, so every function of fixtures built with every installed toolchain
and of the real Debian binaries is compared, under two module-id maps (one with the planner's module_of,
which gives standard-library initializers a pseudo-module), the calls interleaved so that the per-binary
memos are switched between on every function.

The reference was itself checked against the Go runtime's own frames (tests/attribution/test_ranges.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

import gofixtures
import pytest
from gofixtures import Toolchain

from gohook.attribution import ranges
from gohook.attribution.ranges import MAX_MODULES_PER_RANGE, Range, build_ranges, merge, module_id_map
from gohook.gosym import STD, GoBinary
from gohook.gosym.names import CLOSURE_NAME
from gohook.gosym.pclntab import Function
from gohook.plan.build import STD_INIT, is_std_init

ModuleIds = Callable[[str], int]
ModuleOf = Callable[[str], str]
Maps = list[tuple[str, ModuleIds, ModuleOf | None]]

FIXTURES = ("inlineapp", "argscope", "capapp")
REAL = sorted(Path(gofixtures.GOHOOK_CACHE / "real").glob("*/root/usr/bin/*"))


# --- the reference: gohook/attribution/ranges.py before the rewrite, verbatim ---------------------------------


def ref_dedupe(ids: Iterable[int]) -> tuple[int, ...]:
    out: list[int] = []
    for i in ids:
        if i and i not in out:
            out.append(i)
    return tuple(out[:MAX_MODULES_PER_RANGE])


def ref_function_ranges(binary: GoBinary, f: Function, module_id: ModuleIds,
                        module_of: ModuleOf | None = None) -> list[Range]:
    """Attribution ranges of one physical function (unmerged, std pieces included).

    module_of names the module of a function (default: binary.module_of); the
    planner passes one that gives standard-library package initializers their
    own pseudo-module.
    """
    module_of = module_of or binary.module_of
    own = module_id(ref_code_module(binary, f.name, f.entry, module_of))
    table = binary.table
    if not table.has_inline_tree(f):
        return [Range(f.entry, f.end, ref_dedupe([own]))]
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
            mods = ref_dedupe(ref_chain_modules(binary, f, ix, start, own, module_id, module_of))
            chain_cache[ix] = mods
        out.append(Range(start, end, mods))
        start = end
    if start < f.end:
        out.append(Range(start, f.end, ref_dedupe([own])))
    return out


def ref_code_module(binary: GoBinary, name: str, pc: int, module_of: ModuleOf) -> str:
    """The module of function `name`'s code at pc: module_of(name), except a closure, whose name is the function
    its code ended up in (GoBinary.closure_package): then the module of its source file's package."""
    pkg = binary.closure_package(name, pc)
    return module_of(name) if pkg is None else binary.resolver.module_of_package(pkg).path


def ref_chain_modules(binary: GoBinary, f: Function, ix: int, pc: int, own: int, module_id: ModuleIds,
                      module_of: ModuleOf) -> list[int]:
    """Modules of the inline chain at index ix, innermost first; pc: an address of the innermost callee's code
    (then each parent's call site, where its own code is)."""
    table = binary.table
    ids: list[int] = []
    seen = 0
    while ix >= 0 and seen < 256:
        call = table.inlined_call(f, ix)
        ids.append(module_id(ref_code_module(binary, call.name, pc, module_of)))
        pc = f.entry + call.parent_pc
        ix = table.inline_index(f, pc)
        seen += 1
    ids.append(own)
    return ids


# --- the comparison -------------------------------------------------------------------------------------------


def _maps(binary: GoBinary) -> Maps:
    """Two module-id maps: every module its own id with binary.module_of; and the planner's module_of
    (std initializers in STD_INIT) with the modules numbered backwards and every other one trusted."""
    modules = sorted({binary.module_of(f.name) for f in binary.functions} - {STD})
    plain, _ = module_id_map(modules, lambda m: False)
    trusted = set(modules[::2])
    planner, _ = module_id_map([STD_INIT, *reversed(modules)], lambda m: m in trusted)

    def planner_of(name: str) -> str:
        return STD_INIT if is_std_init(binary, name) else binary.module_of(name)

    return [("plain", plain, None), ("planner", planner, planner_of),
            ("planner-ids", planner, None)]  # the planner's ids with another module_of: memos are per pair


def _compare(binary: GoBinary) -> dict[str, int]:
    """Assert function_ranges == the reference for every function under both maps, interleaved, and
    build_ranges == the reference's pieces merged; returns counts showing what was exercised."""
    maps = _maps(binary)
    functions = binary.functions
    want = {label: [ref_function_ranges(binary, f, mid, mof) for f in functions] for label, mid, mof in maps}
    for n, f in enumerate(functions):
        for label, mid, mof in maps:
            got = ranges.function_ranges(binary, f, mid, mof)
            assert got == want[label][n], f"{label}: {f.name}: {got} != {want[label][n]}"
            assert all(type(r) is Range for r in got), f.name
    for label, mid, mof in maps:
        merged = merge(r for pieces in want[label] for r in pieces)
        assert build_ranges(binary, mid, mof) == merged, label
    plain = want["plain"]
    inlined = [f for f in functions if binary.table.has_inline_tree(f)]
    return {
        "functions": len(functions),
        "inline_trees": len(inlined),
        "multi_module_pieces": sum(len(r.modules) > 1 for pieces in plain for r in pieces),
        "closures": sum(bool(CLOSURE_NAME.search(f.name)) for f in functions),
        "differing_maps": sum(a != b for a, b in zip(plain, want["planner"], strict=True)),
        "differing_module_of": sum(a != b for a, b in zip(want["planner"], want["planner-ids"], strict=True)),
    }


@cache
def _fixture(toolchain: Toolchain, fixture: str) -> GoBinary:
    return GoBinary.open(gofixtures.build(toolchain, fixture))


@pytest.mark.parametrize("fixture", FIXTURES)
def test_function_ranges_equal_the_reference_on_fixtures(toolchain: Toolchain, fixture: str) -> None:
    counts = _compare(_fixture(toolchain, fixture))
    assert counts["inline_trees"] > 0 and counts["differing_maps"] > 0 and counts["differing_module_of"] > 0, counts
    if fixture == "inlineapp":
        assert counts["multi_module_pieces"] > 0, counts


@pytest.mark.parametrize("path", REAL or [None], ids=[p.name for p in REAL] or ["none"])
def test_function_ranges_equal_the_reference_on_real_binaries(path: Path | None) -> None:
    if path is None:
        if gofixtures.in_ci():
            pytest.fail(f"no real binaries under {gofixtures.GOHOOK_CACHE / 'real'} (CI=true)")
        pytest.skip(f"no real binaries under {gofixtures.GOHOOK_CACHE / 'real'}: run scripts/setup.sh")
    counts = _compare(GoBinary.open(path))
    assert counts["multi_module_pieces"] > 0 and counts["closures"] > 0 and counts["differing_maps"] > 0, counts


def test_a_closure_is_named_where_its_code_is_not_by_its_name_alone(newest_toolchain: Toolchain,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a closure's module depends on the pc (GoBinary.closure_package: its source file), so the memo
    must not remember closures by name: with a closure_package that answers by pc (every other 16 bytes
    main's package, else config's), each inlined closure's pieces must still follow the pc, as the
    reference's do."""
    binary = GoBinary.open(gofixtures.build(newest_toolchain, "argscope"))
    main_pkg, config = binary.build_info.path, "github.com/acme/config"  # type: ignore[union-attr]

    def by_pc(name: str, pc: int) -> str | None:
        return None if not CLOSURE_NAME.search(name) else main_pkg if pc >> 4 & 1 else config

    monkeypatch.setattr(binary, "closure_package", by_pc)
    mid, _ = module_id_map(sorted({binary.module_of(f.name) for f in binary.functions} - {STD}), lambda m: False)
    assert mid(binary.resolver.module_of_package(main_pkg).path) != mid(config) != 0
    want = [ref_function_ranges(binary, f, mid) for f in binary.functions]
    assert [ranges.function_ranges(binary, f, mid) for f in binary.functions] == want
    # not vacuous: some inlined closure is the innermost callee of first pieces on both sides of the fake
    parities: dict[str, set[int]] = {}
    for f, pieces in zip(binary.functions, want, strict=True):
        if binary.table.has_inline_tree(f):
            for piece in pieces:
                ix = binary.table.inline_index(f, piece.start)
                name = binary.table.inlined_call(f, ix).name if ix >= 0 else ""
                if CLOSURE_NAME.search(name):
                    parities.setdefault(name, set()).add(piece.start >> 4 & 1)
    assert any(len(p) == 2 for p in parities.values()), parities


def test_more_maps_than_the_memo_keeps_still_give_the_reference(newest_toolchain: Toolchain) -> None:
    """Six maps in turn, function by function: each call evicts a memo (a binary keeps four), none may answer
    for another map; the same maps as fresh closures again, and the memos stay bounded."""
    binary = GoBinary.open(gofixtures.build(newest_toolchain, "inlineapp"))
    modules = sorted({binary.module_of(f.name) for f in binary.functions} - {STD})

    def maps() -> list[ModuleIds]:
        return [module_id_map(modules[k:] + modules[:k], lambda m, k=k: k % 2 == 1 and m == modules[0])[0]
                for k in range(6)]

    first, second = maps(), maps()
    want = [[ref_function_ranges(binary, f, mid) for f in binary.functions] for mid in first]
    assert len({tuple(tuple(p) for p in w) for w in want}) > 1, "the maps must give different ranges"
    for mids in (first, second):
        for n, f in enumerate(binary.functions):
            for k, mid in enumerate(mids):
                assert ranges.function_ranges(binary, f, mid) == want[k][n], (k, f.name)
    assert len(binary.ranges_id_memos) <= 4


def test_ranges_built_without_init_are_ranges() -> None:
    """The fast construction gives what Range(...) gives: equal, hashable alike, frozen, same repr."""
    r = ranges._new(Range)
    ranges._set_start(r, 0x10)
    ranges._set_end(r, 0x20)
    ranges._set_modules(r, (2, 1))
    made = Range(0x10, 0x20, (2, 1))
    assert r == made and hash(r) == hash(made) and repr(r) == repr(made) and type(r) is Range
    with pytest.raises(AttributeError):
        r.start = 0  # type: ignore[misc]


def test_the_default_module_of_passed_explicitly_shares_the_default_memo(newest_toolchain: Toolchain) -> None:
    """binary.module_of is a new bound method on every access: passed explicitly, it must still find the memo
    of module_of=None (not make a new one per call, pushing the others out), with the reference's results."""
    binary = GoBinary.open(gofixtures.build(newest_toolchain, "inlineapp"))
    mid, _ = module_id_map(sorted({binary.module_of(f.name) for f in binary.functions} - {STD}), lambda m: False)
    for f in binary.functions:
        want = ref_function_ranges(binary, f, mid)
        assert ranges.function_ranges(binary, f, mid, binary.module_of) == want, f.name
        assert ranges.function_ranges(binary, f, mid) == want, f.name
    assert [(m, o) for m, o, _memo in binary.ranges_id_memos] == [(mid, None)]
