"""gohook.attribution.ranges: text address -> modules of the logical frames, for the BPF range table.

On real binaries the ranges are checked against the Go runtime itself: testdata/go/inlineapp records raw
runtime.Callers PCs inside inlined code and the frames runtime.CallersFrames expands them to, and the
modules of each physical frame's logical frames (innermost first, std and transparent modules left out)
must be what the range holding its return address - 1 says. Module paths of the runtime's function names
come from their package paths here, not from gohook. Every piece of every function is also checked
against gohook's own inline expansion (GoBinary.frames, itself checked against the runtime in
tests/gosym/test_oracle.py). merge and module_id_map are checked on synthetic input.

The fixtures have no module function inlined into a standard-library function (Go does not inline across
a function value, and std code calls module code only that way), so "inlined into transparent code" is
checked with the caller's module made transparent: std and trusted modules are both id 0.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from itertools import groupby, pairwise
from typing import Any

import gofixtures
import pytest
from gofixtures import Toolchain

from gohook.attribution.ranges import (
    MAX_MODULES_PER_RANGE,
    Range,
    build_ranges,
    function_ranges,
    merge,
    module_id_map,
)
from gohook.gosym import STD, GoBinary

MAIN = "example.com/inlineapp"
PROBE = "github.com/acme/probe"


def _module_by_name(function: str) -> str:
    """The module of an inlineapp function name as the runtime prints it (package path prefix)."""
    if function.startswith("main."):
        return MAIN
    if function.startswith(PROBE + "."):
        return PROBE
    return STD


def _dedupe(ids: list[int]) -> tuple[int, ...]:
    out: list[int] = []
    for i in ids:
        if i and i not in out:
            out.append(i)
    return tuple(out[:MAX_MODULES_PER_RANGE])


def _lookup(ranges: list[Range], pc: int) -> tuple[int, ...]:
    found = [r for r in ranges if r.start <= pc < r.end]
    assert len(found) <= 1, f"overlapping ranges at {pc:#x}: {found}"
    return found[0].modules if found else ()


@cache
def _binary(toolchain: Toolchain, fixture: str, mode: str = "default") -> GoBinary:
    return GoBinary.open(gofixtures.build(toolchain, fixture, mode))


# --- against the runtime ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["default", "pie"])
@pytest.mark.parametrize("transparent", [(), (MAIN,)], ids=["all-modules", "main-transparent"])
def test_ranges_give_the_modules_of_the_runtimes_frames(toolchain: Toolchain, mode: str,
                                                        transparent: tuple[str, ...]) -> None:
    path = gofixtures.build(toolchain, "inlineapp", mode)
    binary = _binary(toolchain, "inlineapp", mode)
    run = gofixtures.runtime_frames(path)
    main_main = binary.functions_by_name["main.main"].entry
    bias = run["main_main"] - main_main  # PIE load bias (0 otherwise)
    module_id, ordered = module_id_map([MAIN, PROBE], lambda m: m in transparent)
    ranges = build_ranges(binary, module_id)

    checked: dict[str, tuple[int, ...]] = {}
    for point in run["points"]:
        frames: list[dict[str, Any]] = point["frames"]
        assert len(frames) == len(point["pcs"]), point["name"]
        i = 0
        # one physical frame = consecutive logical frames with one entry (the inlined ones and their home)
        for _entry, group in groupby(frames, key=lambda f: f["entry"]):
            chain = list(group)
            ret = point["pcs"][i] - bias
            want = _dedupe([module_id(_module_by_name(f["function"])) for f in chain])
            got = _lookup(ranges, ret - 1)
            assert got == want, (f"{point['name']}: return address {ret:#x} ({[f['function'] for f in chain]}): "
                                 f"ranges say {got}, the runtime's frames {want}")
            checked.setdefault(chain[0]["function"], got)
            i += len(chain)
    probe, main = module_id(PROBE), module_id(MAIN)
    assert ordered == tuple(m for m in (MAIN, PROBE) if m not in transparent)
    # probe.Callers inlined into main.viaWrapper: (probe, main), or probe alone when main is transparent
    assert checked["github.com/acme/probe.Callers"] == _dedupe([probe, main])
    assert checked["main.main"] == _dedupe([main])  # () when transparent: no range
    assert checked["runtime.main"] == ()


def _check_against_frames(binary: GoBinary, module_id: Callable[[str], int],
                          module_of: Callable[[str], str]) -> int:
    """Every function's unmerged pieces tile it, and each piece's modules are those of GoBinary.frames at its
    first and last PC. Returns the number of pieces with an inlined chain of more than one module."""
    wrapper = max(f.func_id for f in binary.functions)
    multi = 0
    for f in binary.functions:
        if f.end <= f.entry:
            continue
        pieces = function_ranges(binary, f, module_id, module_of)
        assert pieces and pieces[0].start == f.entry and pieces[-1].end == f.end, f.name
        assert all(a.end == b.start for a, b in pairwise(pieces)), f.name
        assert all(p.start < p.end for p in pieces), f.name
        if f.func_id == wrapper:
            continue  # frames() elides wrappers like the runtime; attribution keeps their module on purpose
        for piece in pieces:
            for pc in (piece.start, piece.end - 1):
                names = [fr.function for fr in binary.frames(pc, return_address=False)]
                want = _dedupe([module_id(module_of(n)) for n in names])
                assert piece.modules == want, f"{f.name} at {pc:#x}: {piece.modules} != {want} ({names})"
            multi += len(piece.modules) > 1
    return multi


def test_function_ranges_follow_the_inline_trees(newest_toolchain: Toolchain) -> None:
    binary = _binary(newest_toolchain, "inlineapp")
    module_id, _ = module_id_map([MAIN, PROBE], lambda m: False)
    assert _check_against_frames(binary, module_id, binary.module_of) > 0, "no piece with two modules"


def test_function_ranges_name_inlined_code_with_module_of(newest_toolchain: Toolchain) -> None:
    """The module_of hook (the planner's std:init pseudo-module) names inlined functions too, not only the
    physical one: probe's functions renamed to a module of their own."""
    binary = _binary(newest_toolchain, "inlineapp")
    module_id, _ = module_id_map([MAIN, PROBE, "renamed"], lambda m: False)

    def module_of(name: str) -> str:
        module = binary.module_of(name)
        return "renamed" if module == PROBE else module

    _check_against_frames(binary, module_id, module_of)
    ranges = build_ranges(binary, module_id, module_of)
    ids = {i for r in ranges for i in r.modules}
    assert module_id("renamed") in ids and module_id(PROBE) not in ids
    viawrapper = binary.functions_by_name["main.viaWrapper"]
    chains = {_lookup(ranges, pc) for pc in range(viawrapper.entry, viawrapper.end)}
    assert (module_id("renamed"), module_id(MAIN)) in chains, chains


def test_build_ranges_are_sorted_disjoint_and_merged(toolchain: Toolchain) -> None:
    binary = _binary(toolchain, "capapp")
    modules = sorted({binary.module_of(f.name) for f in binary.functions} - {STD})
    module_id, _ = module_id_map(modules, lambda m: False)
    ranges = build_ranges(binary, module_id)
    assert ranges and all(r.modules and r.start < r.end for r in ranges)
    for a, b in pairwise(ranges):
        assert a.end <= b.start, (a, b)
        assert not (a.end == b.start and a.modules == b.modules), f"unmerged neighbours {a} {b}"
    ids = {i for r in ranges for i in r.modules}
    assert ids == set(range(1, len(modules) + 1)), "every module with code has a range"
    std = binary.functions_by_name["runtime.main"]
    assert _lookup(ranges, std.entry) == ()


# --- synthetic ----------------------------------------------------------------------------------------------


def test_merge_drops_std_and_joins_equal_neighbours() -> None:
    pieces = [
        Range(0x100, 0x110, (1,)),
        Range(0x110, 0x120, (1,)),  # touches, same modules: joined
        Range(0x120, 0x130, (2, 1)),  # other modules: kept apart
        Range(0x130, 0x140, ()),  # std only: dropped
        Range(0x140, 0x150, (2, 1)),  # same modules as two pieces back, but not touching (std between)
        Range(0x160, 0x170, (2, 1)),  # a gap: not joined
        Range(0x170, 0x180, (2, 1)),  # touching again: joined
        Range(0x180, 0x190, (1, 2)),  # the same modules in another order are other modules
    ]
    assert merge(pieces) == [
        Range(0x100, 0x120, (1,)),
        Range(0x120, 0x130, (2, 1)),
        Range(0x140, 0x150, (2, 1)),
        Range(0x160, 0x180, (2, 1)),
        Range(0x180, 0x190, (1, 2)),
    ]
    assert merge([]) == [] and merge([Range(0, 8, ())]) == []
    assert merge(iter([Range(0, 8, (3,)), Range(8, 16, (3,))])) == [Range(0, 16, (3,))]  # any iterable


def test_module_id_map_numbers_the_non_transparent_modules() -> None:
    lookup, ordered = module_id_map(["b.example/x", STD, "a.example/y", "trusted.example/z", "c.example/w"],
                                    lambda m: m.startswith("trusted."))
    assert ordered == ("b.example/x", "a.example/y", "c.example/w")  # input order, std and trusted left out
    assert [lookup(m) for m in ordered] == [1, 2, 3]
    assert lookup(STD) == 0 and lookup("trusted.example/z") == 0 and lookup("never.example/seen") == 0
    empty, none = module_id_map([], lambda m: False)
    assert none == () and empty("a.example/y") == 0


@pytest.mark.parametrize("version", ["1.21", "1.24", "1.27"])
def test_a_dependencys_closure_named_after_its_caller_is_the_dependencys(version: str) -> None:
    """config.Indirect hands a closure to a function of its own and is inlined into main.main: Go (1.21-1.24)
    names the closure main.main.Indirect.func1. Its code is config's (its source file, deps/config/config.go,
    holds only config's functions), so its range charges config: by name, a dependency could hand every
    capability call of its closures to whoever inlines it (main holds `all`)."""
    toolchain = gofixtures.live_toolchain(version)
    binary = GoBinary.open(gofixtures.build(toolchain, "argscope"))
    closures = [f for f in binary.functions if f.name.endswith("Indirect.func1")]
    assert len(closures) == 1, [f.name for f in closures]
    f = closures[0]
    assert binary.line_at(f.entry)[0].endswith("/deps/config/config.go")
    config, main = "github.com/acme/config", "example.com/argscope"
    module_id, _ = module_id_map([main, config], lambda m: False)
    assert binary.code_module(f.name, pc=f.entry) == config
    assert _lookup(build_ranges(binary, module_id), f.entry) == (module_id(config),)
    if f.name.startswith("main."):  # the naming that misled attribution by name
        assert binary.module_of(f.name) == main
