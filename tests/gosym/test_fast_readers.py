"""The one-go readers of function metadata and inline trees (issue 17 §6) against the field-by-field ones.

LineTable._meta_go118 reads a Go 1.18+ _func record's pcfile, pcln, npcdata and cuOffset in one unpack;
_meta_fields reads each through the field accessors. LineTable.inline_records reads a function's whole
inline tree at once; inlined_call reads one record. Both pairs must agree on every function of the
fixtures of every installed toolchain and of the real binaries.
"""

from __future__ import annotations

from collections.abc import Iterator

import gofixtures
import pytest

from gohook.gosym import GoBinary
from gohook.gosym.pclntab import Version


def binaries(toolchain: gofixtures.Toolchain) -> Iterator[GoBinary]:
    for fixture, mode in (("inlineapp", "default"), ("capapp", "pie")):
        yield GoBinary.open(gofixtures.build(toolchain, fixture, mode))


def assert_readers_agree(binary: GoBinary) -> None:
    table = binary.table
    trees = 0
    for f in binary.functions:
        if table.version >= Version.GO118:
            assert table._meta_go118(f) == table._meta_fields(f), f.name
        records = table.inline_records(f)
        assert bool(records) == (table.has_inline_tree(f) and max(table.inline_table(f)[1], default=-1) >= 0)
        for ix, (func_id, name_off, parent_pc) in enumerate(records):
            call = table.inlined_call(f, ix)
            assert (func_id, table.inlined_name(name_off), parent_pc) == (call.func_id, call.name, call.parent_pc)
        assert table.inlined_names(f) == {table.inlined_call(f, ix).name for ix in range(len(records))}
        trees += bool(records)
    assert trees > 10  # the binaries inline: the comparison above was not vacuous


def test_fixtures(toolchain: gofixtures.Toolchain) -> None:
    for binary in binaries(toolchain):
        assert_readers_agree(binary)


@pytest.mark.parametrize("name", sorted(gofixtures.REAL_BINARIES))
def test_real_binaries(name: str) -> None:
    assert_readers_agree(GoBinary.open(gofixtures.real_binary_path(name)))
