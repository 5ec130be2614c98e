"""The C PC-table decoder (gohook/gosym/_pcvalue.c) against the pure-Python reference.

Both must return identical tuples for every PC-value table of real binaries
(every toolchain installed), and agree on corrupt input: the same tuples, or
the same error type. In CI the accelerator must be built (scripts/setup.sh
builds it); elsewhere a missing build skips loudly.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

import gofixtures
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gohook.gosym import GoBinary
from gohook.gosym import pclntab as P

Decoder = Callable[[bytes, int, int, int], P.PCTable]


@pytest.fixture(scope="module")
def decode_c() -> Decoder:
    if P.decode_pctable_c is None:
        gofixtures.loud_skip("gohook.gosym._pcvalue is not built (run scripts/setup.sh: needs gcc and python3-dev)")
    return P.decode_pctable_c


def outcome(decode: Decoder, data: bytes, start: int, entry: int, quantum: int) -> object:
    try:
        return decode(data, start, entry, quantum)
    except (IndexError, ValueError) as exc:
        return type(exc)


def test_accelerator_is_what_lookups_use(decode_c: Decoder) -> None:
    assert P.decode_pctable is decode_c, "GOHOOK_PURE_PYTHON is set or the import fell back"


def test_every_table_of_a_real_binary(decode_c: Decoder, toolchain: gofixtures.Toolchain) -> None:
    binary = GoBinary.open(str(gofixtures.build(toolchain, "inlineapp", "default")))
    table = binary.table
    lay = table.layout
    starts: set[tuple[int, int]] = set()
    for f in table.functions:
        offsets = [table._field(f, lay.pcfile), table._field(f, lay.pcln), table._field(f, lay.pcfile - 4)]  # pcsp
        offsets += [table.pcdata_offset(f, k) or 0 for k in range(table.npcdata(f))]
        starts.update((table.pctab_off + off, f.entry) for off in offsets if off)
    assert len(starts) > 3 * len(table.functions) // 2
    entries = 0
    for start, entry in sorted(starts):
        want = P.decode_pctable_python(table.data, start, entry, table.quantum)
        got = decode_c(table.data, start, entry, table.quantum)
        assert got == want, f"table at {start:#x}"
        assert len(got[1]) == len(got[0]) + 1 and got[1][-1] == -1
        entries += len(got[0])
    assert entries > 10 * len(table.functions)


def reference_value(data: bytes, start: int, entry: int, quantum: int, pc: int) -> object:
    """What LineTable.pcvalue answers from a decoded table: values[bisect_right(pcs, pc)], or the error type."""
    got = outcome(P.decode_pctable_python, data, start, entry, quantum)
    if isinstance(got, type):
        return got
    pcs, vals = got  # type: ignore[misc]
    return vals[bisect.bisect_right(pcs, pc)]


def value_outcome(data: bytes, start: int, entry: int, quantum: int, pc: int) -> object:
    try:
        return P.pctable_value_at_c(data, start, entry, quantum, pc)  # type: ignore[misc]
    except (IndexError, ValueError) as exc:
        return type(exc)


def test_value_at_every_boundary_of_a_real_binary(decode_c: Decoder, toolchain: gofixtures.Toolchain) -> None:
    """value_at (the walk that decodes nothing) gives the decoded table's value at every run's first and last
    byte, before the entry and past the end, for every pcfile/pcln/inline table of a real binary."""
    binary = GoBinary.open(str(gofixtures.build(toolchain, "inlineapp", "default")))
    table = binary.table
    lay = table.layout
    checked = 0
    for f in table.functions:
        offsets = [table._field(f, lay.pcfile), table._field(f, lay.pcln), table.pcdata_offset(f, table.pcdata_inl)]
        for off in filter(None, offsets):
            start = table.pctab_off + off
            pcs, vals = P.decode_pctable_python(table.data, start, f.entry, table.quantum)
            probes = {f.entry - 1, f.entry, pcs[-1], pcs[-1] + 7} | {p for pc in pcs for p in (pc - 1, pc)}
            for pc in probes:
                want = vals[bisect.bisect_right(pcs, pc)]
                assert P.pctable_value_at_c(table.data, start, f.entry, table.quantum, pc) == want, \
                    f"{f.name}: table at {start:#x}, pc {pc:#x}"
                checked += 1
    assert checked > 10 * len(table.functions)


@settings(max_examples=400, deadline=None)
@given(data=st.binary(min_size=0, max_size=64), start=st.integers(-2, 70), entry=st.integers(0, 1 << 20),
       quantum=st.sampled_from([1, 2, 4]), delta=st.integers(-4, 600))
def test_value_at_agrees_on_arbitrary_bytes(decode_c: Decoder, data: bytes, start: int, entry: int, quantum: int,
                                            delta: int) -> None:
    """On valid tables the same value; on corrupt ones the same error, or (when the walk stops at pc before the
    damage) the value the reference gives at that pc (the reference raises for the table as a whole)."""
    want = reference_value(data, start, entry, quantum, entry + delta)
    got = value_outcome(data, start, entry, quantum, entry + delta)
    if isinstance(want, type) and not isinstance(got, type):
        return  # a lookup that ends before the corrupt part: not an error for it
    assert got == want


def test_lookups_decode_no_table(decode_c: Decoder) -> None:
    """LineTable.pcvalue on a table not decoded yet walks it in C and caches nothing (issue 17 §6: 105 MB of
    cached tables on Debian's prometheus were one value each)."""
    binary = GoBinary.open(str(gofixtures.build(gofixtures.toolchains()[0], "inlineapp", "default")))
    table = binary.table
    f = binary.functions_by_name["main.main"]
    before = len(table._table_cache)
    file, line = table.line_at(f, f.entry)
    assert file.endswith(".go") and line > 0
    assert len(table._table_cache) == before


@settings(max_examples=400, deadline=None)
@given(data=st.binary(min_size=0, max_size=64), start=st.integers(-2, 70), entry=st.integers(0, 1 << 40),
       quantum=st.sampled_from([1, 2, 4]))
def test_agree_on_arbitrary_bytes(decode_c: Decoder, data: bytes, start: int, entry: int, quantum: int) -> None:
    want = outcome(P.decode_pctable_python, data, start, entry, quantum)
    assert outcome(decode_c, data, start, entry, quantum) == want


@pytest.mark.parametrize("data, error", [
    (b"\x02\x05", IndexError),                       # no terminator: runs off the end
    (b"\x02\x85", IndexError),                       # pc varint cut short
    (b"\x02\xff\xff\xff\xff\xff\x01\x00", ValueError),  # 6-byte varint: the runtime reads uint32s
])
def test_corrupt_tables_raise_the_same_error(decode_c: Decoder, data: bytes, error: type) -> None:
    assert outcome(decode_c, data, 0, 0x1000, 1) is error
    assert outcome(P.decode_pctable_python, data, 0, 0x1000, 1) is error


def test_known_table() -> None:
    # (+1 -> value 0 until pc 0x1005), (+2 -> 1 until 0x1005+200), then the end marker
    data = bytes([0x02, 0x05, 0x02, 0xC8, 0x01, 0x00])
    assert P.decode_pctable_python(data, 0, 0x1000, 1) == ((0x1005, 0x1005 + 200), (0, 1, -1))
    if P.decode_pctable_c is not None:
        assert P.decode_pctable_c(data, 0, 0x1000, 1) == ((0x1005, 0x1005 + 200), (0, 1, -1))
