"""The C scanner (gohook/gosym/_scan.c) against the Python one (callgraph.scan_code_python), which is the
reference: the same FunctionScan, field for field and in the same order, for every function of fixture
binaries and of the real third-party binaries scripts/setup.sh fetches, and for handcrafted and generated
machine code. The handcrafted code is also checked against what its encodings mean (targets computed here
from the rel32/disp32 we wrote, not by gohook), so a bug shared by both scanners fails too.

The wiring of callgraph is checked on the same terms: CallGraph.scan, scan_binary, a prescan in a thread,
in this thread, one abandoned and one that fails; functions that fall outside the text view; the Python
fallback (and its forked prescan) when the extension cannot be imported.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType

import gofixtures
import pytest
from gofixtures import Toolchain
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gohook.gosym import GoBinary
from gohook.static import callgraph
from gohook.static.callgraph import CallGraph, FunctionScan, TextView, scan_binary, scan_code, scan_code_python

REAL = gofixtures.REAL_BINARIES
ENTRY = 0x1000


@pytest.fixture(scope="module")
def accel() -> ModuleType:
    """The built extension: scripts/setup.sh builds it, so in CI its absence fails; elsewhere, a skip."""
    if callgraph._scan is None:
        if gofixtures.in_ci():
            raise AssertionError("gohook.gosym._scan is not built or does not load: scripts/setup.sh builds it")
        pytest.skip("gohook.gosym._scan not built (run scripts/setup.sh)")
    return callgraph._scan


def real_binary(name: str) -> GoBinary:
    return GoBinary.open(gofixtures.real_binary_path(name))


def reference(binary: GoBinary) -> list[FunctionScan]:
    """Every function of binary by the Python scanner, each read with image.read as before the C one."""
    read = binary.image.read
    return [scan_code_python(read(f.entry, f.end - f.entry), f.entry) for f in binary.functions]


def assert_same(got: list[FunctionScan], want: list[FunctionScan], binary: GoBinary) -> None:
    assert len(got) == len(want)
    bad = [(f.name, g, w) for f, g, w in zip(binary.functions, got, want, strict=True) if g != w]
    assert not bad, f"{len(bad)} functions differ, first: {bad[0]}"


# -- handcrafted machine code -----------------------------------------------------------------------------

class Asm:
    """A tiny x86-64 assembler: the bytes of a function at ENTRY, and what each instruction means."""

    def __init__(self, entry: int = ENTRY) -> None:
        self.entry = entry
        self.code = b""
        self.calls: list[tuple[int, int]] = []
        self.jumps: list[tuple[int, int]] = []
        self.syscalls: list[int] = []
        self.refs: list[tuple[int, int]] = []
        self.indirect = 0

    @property
    def here(self) -> int:
        return self.entry + len(self.code)

    def raw(self, hexbytes: str) -> int:
        at = self.here
        self.code += bytes.fromhex(hexbytes)
        return at

    def rel32(self, opcode: str, target: int) -> int:
        at = self.here
        op = bytes.fromhex(opcode)
        self.code += op + struct.pack("<i", target - (at + len(op) + 4))
        return at

    def call(self, target: int) -> None:
        self.calls.append((self.rel32("e8", target), target))

    def jmp(self, target: int, leaves: bool) -> None:
        at = self.rel32("e9", target)
        if leaves:
            self.jumps.append((at, target))

    def lea(self, modrm: str, disp: int) -> None:
        """lea r64, [rip + disp] (REX.W 8D, ModRM mod=00 r/m=101): loads the address after it plus disp."""
        at = self.here
        self.code += bytes.fromhex("488d" + modrm) + struct.pack("<i", disp)
        self.refs.append((at, at + 7 + disp))

    def indirect_call(self, hexbytes: str) -> None:
        self.raw(hexbytes)
        self.indirect += 1

    def syscall(self) -> None:
        self.syscalls.append(self.raw("0f05"))

    def expected(self) -> FunctionScan:
        return FunctionScan.of(self.calls, self.jumps, self.indirect, self.syscalls, self.refs)


def handcrafted() -> Asm:
    a = Asm()
    a.call(0x2000)
    a.raw("06")  # not an instruction in 64-bit mode: skipped as data (.byte 0x06)
    a.indirect_call("ffd0")  # call rax
    a.indirect_call("ff5008")  # call qword ptr [rax + 8]
    a.indirect_call("ff1510000000")  # call qword ptr [rip + 0x10]: indirect, and no lea, so no reference
    a.raw("0627")  # two more data bytes
    a.syscall()
    a.lea("15", -0x10)  # lea rdx, [rip - 0x10]: a negative displacement
    a.lea("05", 8)  # lea rax, [rip + 8]: capstone prints a small displacement in decimal
    a.lea("3d", 0x7FFFFFFF)
    a.lea("05", -0x80000000)  # loads below the entry
    a.raw("488d0500000000")  # lea rax, [rip]: no "[rip " operand, no reference (the scanner's rule)
    a.raw("488d8000010000")  # lea rax, [rax + 0x100]: not rip-relative
    a.raw("ebfe")  # jmp to itself: inside the function, dropped
    a.jmp(a.entry, leaves=False)  # to the entry: inside
    a.jmp(a.entry - 1, leaves=True)  # just before it
    a.jmp(0x40_0000, leaves=True)
    a.raw("ff2425" "00100000")  # jmp qword ptr [0x1000]: indirect, not a tail jump
    a.raw("3effe0")  # notrack jmp rax
    end = a.here + 5 + 5 + 3  # the jmp below, the one after it, and the truncated call at the end
    a.jmp(end, leaves=True)  # to the function's end: outside
    a.jmp(end - 1, leaves=False)  # to its last byte: inside
    a.raw("e80000")  # a call cut off by the end: data (0xe8), then `add byte ptr [rax], al`
    assert a.here == end
    return a


def test_handcrafted_code_means_what_it_encodes(accel: ModuleType) -> None:
    a = handcrafted()
    want = a.expected()
    assert scan_code_python(a.code, a.entry) == want  # the reference reads the encodings as written
    assert scan_code(a.code, a.entry) == want  # scan_code is the C scanner here
    assert FunctionScan(*accel.scan_many(a.code, a.entry, [a.entry], [a.here])[0]) == want
    assert want.indirect_calls == 3 and len(list(want.tail_jumps())) == 3 and len(list(want.address_refs())) == 4
    assert list(want.calls()) == a.calls and list(want.transfers()) == a.calls + a.jumps


def test_empty_and_data_only_functions(accel: ModuleType) -> None:
    empty = FunctionScan.of((), (), 0, (), ())
    for code in (b"", b"\x06", b"\xcc" * 16, b"\xe8", bytes.fromhex("0607") * 3):
        assert scan_code(code, ENTRY) == scan_code_python(code, ENTRY) == empty


def test_addresses_near_the_top_of_the_address_space(accel: ModuleType) -> None:
    # capstone's addresses are 64-bit and wrap; a lea near 2**64 loads an address that wraps past it, as the
    # CPU computes it (Python's ints would go past 2**64: the pairs hold it modulo 2**64): both agree
    entry = 2**64 - 16
    code = bytes.fromhex("488d0500010000" "e8f0ffffff" "e9f0ffffff")
    got = scan_code(code, entry)
    assert got == scan_code_python(code, entry)
    assert list(got.address_refs()) == [(entry, entry + 7 + 0x100 - 2**64)]


def test_batch_over_one_buffer(accel: ModuleType) -> None:
    """scan_many over several functions of one buffer, in any order, equals scanning each on its own."""
    a, b = handcrafted(), Asm(ENTRY + len(handcrafted().code))
    b.lea("05", -0x20)
    b.call(ENTRY)
    b.syscall()
    buf = a.code + b.code
    entries = [b.entry, a.entry, a.entry + 5, b.entry]
    ends = [b.here, a.here, a.here - 3, b.entry]  # b, a, a's middle, an empty function at b
    got = [FunctionScan(*t) for t in accel.scan_many(memoryview(buf), ENTRY, entries, ends)]
    want = [scan_code_python(buf[s - ENTRY : e - ENTRY], s) for s, e in zip(entries, ends, strict=True)]
    assert got == want and got[0] == b.expected() and got[1] == a.expected()
    assert accel.scan_many(buf, ENTRY, entries, ends, FunctionScan) == want  # the factory form


def test_bad_ranges_are_refused(accel: ModuleType) -> None:
    buf = handcrafted().code
    with pytest.raises(ValueError):
        accel.scan_many(buf, ENTRY, [ENTRY - 1], [ENTRY + 4])  # starts before the buffer
    with pytest.raises(ValueError):
        accel.scan_many(buf, ENTRY, [ENTRY], [ENTRY + len(buf) + 1])  # ends after it
    with pytest.raises(ValueError):
        accel.scan_many(buf, ENTRY, [ENTRY + 4], [ENTRY])  # ends before it starts
    with pytest.raises(ValueError):
        accel.scan_many(buf, ENTRY, [ENTRY], [])
    with pytest.raises(ValueError):
        accel.scan_many(buf, -1, [], [])


# pieces of generated functions: instructions with random operands, and junk bytes between them
PIECES = st.one_of(
    st.tuples(st.sampled_from(["e8", "e9"]), st.integers(-(2**31), 2**31 - 1)).map(
        lambda t: bytes.fromhex(t[0]) + struct.pack("<i", t[1])),
    st.tuples(st.sampled_from(["488d05", "488d15", "4c8d3d", "8d05", "67488d05"]),
              st.integers(-(2**31), 2**31 - 1)).map(lambda t: bytes.fromhex(t[0]) + struct.pack("<i", t[1])),
    st.integers(-128, 127).map(lambda d: b"\xeb" + struct.pack("<b", d)),
    st.sampled_from([bytes.fromhex(h) for h in ("ffd0", "ff5008", "ff1510000000", "0f05", "cc", "c3", "90",
                                                 "3effe0", "f2e800000000", "ff2425" "00100000", "06")]),
    st.binary(min_size=1, max_size=6),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(PIECES, max_size=24), entry=st.one_of(st.integers(0, 2**48), st.integers(0, 2**64 - 1)))
def test_generated_code(accel: ModuleType, pieces: list[bytes], entry: int) -> None:
    code = b"".join(pieces)
    assert scan_code(code, entry) == scan_code_python(code, entry)


# -- whole binaries ----------------------------------------------------------------------------------------

def binaries(toolchain: Toolchain) -> Iterator[GoBinary]:
    yield GoBinary.open(gofixtures.build(toolchain, "capapp", "default"))
    yield GoBinary.open(gofixtures.build(toolchain, "gapsapp", "pie"))  # its own assembly, raw syscalls


def test_every_function_of_fixtures(accel: ModuleType, toolchain: Toolchain) -> None:
    for binary in binaries(toolchain):
        want = reference(binary)
        assert_same(TextView(binary).scan(range(len(binary.functions))), want, binary)
        assert_same(scan_binary(binary, workers=2), want, binary)
        # a view that ends halfway: the functions past it are read one by one (image.read), same results
        text = TextView(binary)
        text.view = text.view[: len(text.view) // 2]
        assert_same(text.scan(range(len(binary.functions))), want, binary)


@pytest.mark.parametrize("name", sorted(REAL))
def test_every_function_of_real_binaries(accel: ModuleType, name: str) -> None:
    binary = real_binary(name)
    want = reference(binary)
    assert_same(TextView(binary).scan(range(len(binary.functions))), want, binary)


def test_call_graph_scans(accel: ModuleType, toolchain: Toolchain) -> None:
    binary = GoBinary.open(gofixtures.build(toolchain, "capapp", "default"))
    want = reference(binary)
    n = len(binary.functions)
    lazy = CallGraph(binary)
    assert [lazy.scan(i) for i in range(n)] == want
    for workers in (1, 2):  # in this thread at join(), and in a thread
        graph = CallGraph(binary)
        graph.scan(3)
        graph.prescan(range(0, n, 2), workers=workers)
        assert graph.scanned == len(set(range(0, n, 2)) | {3})
        assert [graph.scan(i) for i in range(n)] == want
    graph = CallGraph(binary)
    with graph.start_prescan(range(n), workers=2) as job:
        pass  # left without join(): stopped, nothing stored
    assert job._thread is None and graph.scanned == 0
    assert [graph.scan(i) for i in range(n)] == want


def test_scan_takes_a_running_prescans_results(accel: ModuleType, toolchain: Toolchain) -> None:
    """While a prescan thread runs, scan(i) of a function it covers waits for that one function and gives what
    the lazy scan gives, in any order; a function it does not cover is scanned at once, in this thread; a
    second prescan leaves out what the running one covers; join() afterwards stores every covered scan. The thread
    scans in the order it was given (module functions before the standard-library ones), each function once."""
    binary = GoBinary.open(gofixtures.build(toolchain, "capapp", "default"))
    want = reference(binary)
    n = len(binary.functions)
    covered = list(range(0, n, 3))
    graph = CallGraph(binary)
    with graph.start_prescan([*reversed(covered), covered[0]], workers=2) as job:
        assert job._todo == covered[::-1] and job.covers(covered[-1]) and not job.covers(1)  # in the order given
        with graph.start_prescan(range(n // 2), workers=2) as second:
            assert second._todo == [i for i in range(n // 2) if i % 3]
        assert graph._pending is job  # the second prescan stopped without taking the first one's place
        order = [covered[-1], 1, covered[len(covered) // 2], 2, covered[0]]
        assert [graph.scan(i) for i in order] == [want[i] for i in order]
        job.join()
    assert graph._pending is None
    assert graph.scanned == len(set(covered) | {1, 2})
    assert [graph.scan(i) for i in range(n)] == want


def test_prescan_thread_hands_its_error_to_join(accel: ModuleType, toolchain: Toolchain,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    binary = GoBinary.open(gofixtures.build(toolchain, "capapp", "default"))

    def broken(self: TextView, indexes: object) -> list[FunctionScan]:
        raise RuntimeError("scanner broke")

    monkeypatch.setattr(TextView, "scan", broken)
    graph = CallGraph(binary)
    with pytest.raises(RuntimeError, match="scanner broke"):
        graph.prescan(range(len(binary.functions)), workers=2)
    assert graph.scanned == 0
    # a scan taken from a running prescan raises its error too
    with graph.start_prescan(range(len(binary.functions)), workers=2), \
            pytest.raises(RuntimeError, match="scanner broke"):
        graph.scan(0)
    assert graph.scanned == 0 and graph._pending is None


BLOCKED = "import sys; sys.modules['gohook.gosym._scan'] = None\nfrom gohook.static import callgraph\n"


def test_python_fallback_when_the_extension_does_not_load() -> None:
    """With gohook.gosym._scan unimportable, callgraph scans in Python, with the same results."""
    a = handcrafted()
    probe = BLOCKED + (f"code = bytes.fromhex({a.code.hex()!r})\n"
                       f"print(callgraph.ACCELERATED, callgraph.scan_code(code, {a.entry}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == f"False {a.expected()}"


def test_python_fallback_prescan_in_worker_processes(toolchain: Toolchain) -> None:
    """Without the extension, a prescan of enough code forks worker processes, which scan as scan_code_python."""
    path = gofixtures.build(toolchain, "capapp", "default")
    probe = BLOCKED + ("from gohook.gosym import GoBinary\n"
                       "callgraph.PARALLEL_MIN_BYTES = 0\n"
                       f"b = GoBinary.open({str(path)!r}); n = len(b.functions); g = callgraph.CallGraph(b)\n"
                       "with g.start_prescan(range(n), workers=2) as job:\n"
                       "    assert job._pool is not None\n"
                       "    job.join()\n"
                       "assert g.scanned == n\n"
                       "print(repr([g.scan(i) for i in range(n)]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600, check=True)
    assert out.stdout.strip() == repr(reference(GoBinary.open(path)))


# -- rel32_sites: the byte prefilter of gohook.sites.hooks.direct_call_sites --------------------------------------


def _candidates(binary: GoBinary, accelerated: bool) -> list[tuple[str, dict[int, int]]]:
    from gohook.sites import hooks

    fns = [f for f in binary.functions if f.end > f.entry and not binary.is_std(f.name)]
    wanted = frozenset(f.entry for f in binary.functions if f.name.startswith(("syscall.", "runtime.cgocall",
                                                                                 "os.", "net.")))
    return [(f.name, c) for f, c in hooks._rel32_candidates(binary, fns, wanted, accelerated)]


@pytest.mark.parametrize("name", sorted(REAL))
def test_rel32_candidates_of_real_binaries(accel: ModuleType, name: str) -> None:
    """The C byte scan finds exactly the candidates of the Python one (every E8/E9 of non-std code whose rel32
    lands on an entry of syscall, os, net or runtime.cgocall), and direct_call_sites confirms the same sites
    from them."""
    from gohook.sites import hooks

    binary = real_binary(name)
    got = _candidates(binary, True)
    assert got == _candidates(binary, False)
    assert sum(len(c) for _, c in got) > 20
    targets = [f.entry for f in binary.functions if f.name in ("syscall.Syscall", "syscall.Syscall6")]
    sites = hooks.direct_call_sites(binary, targets)
    assert sites and all(binary.image.read(s.address, 1)[0] in (0xE8, 0xE9) for v in sites.values() for s in v)


def test_rel32_sites_on_handmade_bytes(accel: ModuleType) -> None:
    """Positions whose 5 bytes end past the function are not candidates; a backward rel32 counts; targets
    need not be sorted; a function outside the buffer is an error, not a read past it."""
    code = bytes.fromhex("e8 0b 00 00 00" "e9 f6 ff ff ff" "90" "e8 00")  # call +11, jmp -10, nop, cut call
    base = 0x400000
    got = accel.rel32_sites(code, base, [base], [base + len(code)], [base + 16, base])
    assert got == [(base, base + 16), (base + 5, base)]
    assert accel.rel32_sites(code, base, [base], [base + 9], [base + 16, base]) == [(base, base + 16)]
    with pytest.raises(ValueError):
        accel.rel32_sites(code, base, [base], [base + len(code) + 1], [base])


# -- words_present: the data search of hooks.address_taken in C ------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REAL))
def test_address_taken_of_real_binaries(accel: ModuleType, name: str) -> None:
    """address_taken with the C search is the Python one's answer, over entries some data holds (itab method
    addresses: e.g. os.(*File).Read) and many it does not; both find some and miss some."""
    from gohook.sites import hooks

    binary = real_binary(name)
    fns = binary.functions
    entries = [f.entry for f in fns[:: max(1, len(fns) // 400)]]
    entries += [f.entry for f in fns if f.name in ("os.(*File).Read", "os.(*File).Write", "syscall.Syscall")]
    got = hooks.address_taken(binary, entries)
    assert got == hooks.address_taken(binary, entries, accelerated=False)
    assert 0 < len(got) < len(set(entries))


def test_words_present_on_handmade_bytes(accel: ModuleType) -> None:
    """At any byte offset, up to the last full word; each word once however often it occurs or is asked; a
    word cut by the end of the buffer is not there; no words, no buffer: nothing."""
    words = [0x401000, 0x401020, 0x7FFF_FFFF_FFFF_FFFF, 0x401010]
    data = b"\x01" + struct.pack("<Q", 0x401020) + struct.pack("<Q", 0x401000) * 2 + struct.pack("<Q", 0x401010)[:7]
    assert accel.words_present(data, words + [0x401000]) == [0x401000, 0x401020]
    assert accel.words_present(data + b"\x00", words) == [0x401000, 0x401010, 0x401020]
    assert accel.words_present(data, []) == [] and accel.words_present(b"", words) == []
    assert accel.words_present(struct.pack("<Q", 2**64 - 1), [2**64 - 1]) == [2**64 - 1]


# -- frame_pointer_saves: analysis._saves_frame_pointer_python in C--------------------------------------------------


@pytest.mark.parametrize("name", sorted(REAL))
def test_frame_pointer_saves_of_real_binaries(accel: ModuleType, name: str) -> None:
    """For every function of a real binary, the C answer is _saves_frame_pointer_python's on the
    same 64 bytes; most functions save RBP, and some (leaf functions, assembly) do not."""
    from gohook.static.analysis import _saves_frame_pointer_python

    binary = real_binary(name)
    view, fns = TextView(binary), binary.functions
    got = accel.frame_pointer_saves(view.view, view.base, [f.entry for f in fns], [f.end for f in fns])
    want = [_saves_frame_pointer_python(binary.image.read(f.entry, min(64, f.end - f.entry)), f.entry) for f in fns]
    assert [bool(b) for b in got] == want
    assert len(fns) // 2 < sum(want) < len(fns)


@pytest.mark.parametrize("code, saves", [
    ("55 48 89 e5 c3", True),                          # push rbp; mov rbp, rsp; ret
    ("48 83 ec 18 48 89 6c 24 10 c3", True),           # sub rsp, 0x18; mov qword ptr [rsp + 0x10], rbp
    ("48 89 c3 e8 00 00 00 00 55", False),             # a call before the push
    ("c3 55", False),                                  # ret first
    ("06 55", False),                                  # not an instruction in 64-bit mode: the decoder stops
    ("48 89 6c 24", False),                            # cut short
])
def test_frame_pointer_saves_on_handmade_bytes(accel: ModuleType, code: str, saves: bool) -> None:
    from gohook.static.analysis import _saves_frame_pointer_python

    data = bytes.fromhex(code)
    assert _saves_frame_pointer_python(data, ENTRY) is saves
    assert accel.frame_pointer_saves(data, ENTRY, [ENTRY], [ENTRY + len(data)]) == bytes([saves])
