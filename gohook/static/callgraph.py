"""Static call graph from machine code (capstone), and reachability per module.

Stage of `gohook inspect`: every function is disassembled once (linear sweep
over [entry, end): Go emits no data inside functions, only int3 padding).
From each function we keep:

  - direct calls (`call rel32`) and tail jumps (`jmp rel32` leaving the
    function) to other functions' entries: the edges of the graph;
  - the number of indirect calls (`call reg/mem`: interface methods,
    closures, function values), which cannot be resolved from the binary;
  - the addresses of `syscall` instructions;
  - the addresses a function loads with `lea reg, [rip + disp]` (code
    pointers and static function values: gohook.static.analysis follows
    them to functions taken as values).

Reachability: from the functions of a module, breadth first over the
edges, stopping at hook functions (a hook is where gohook sees the call).
The first hook of each capability found gives the shortest example path.

Large binaries are disassembled by a pool of worker processes (fork: they
share the already-read file) when more than one core is available.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import capstone

from gohook.gosym import GoBinary
from gohook.gosym.pclntab import Function

PARALLEL_MIN_BYTES = 2 << 20  # below this much text, one process is faster than forking


@dataclass(frozen=True, slots=True)
class FunctionScan:
    """What the machine code of one function calls."""

    calls: tuple[tuple[int, int], ...]  # (call instruction address, target) of direct calls
    tail_jumps: tuple[tuple[int, int], ...]  # (jmp address, target) of jumps leaving the function
    indirect_calls: int
    syscalls: tuple[int, ...]  # addresses of `syscall` instructions
    address_refs: tuple[tuple[int, int], ...] = ()  # (lea instruction address, rip-relative address it loads)


def _disassembler(skipdata: bool) -> capstone.Cs:
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.skipdata = skipdata
    return md


#: x86-64 disassemblers, built once: a capstone.Cs costs about 0.1 ms to build (13,700 builds were 1.5 s of
#: inspect on node_exporter, issue 17 §6); disasm_lite keeps no state between calls. SCANNER steps over bytes
#: that are not instructions (data in the text), DECODER stops there.
SCANNER = _disassembler(skipdata=True)
DECODER = _disassembler(skipdata=False)


def scan_code(code: bytes, entry: int) -> FunctionScan:
    """Disassemble one function's bytes (at vaddr `entry`) and collect its edges."""
    md = SCANNER
    end = entry + len(code)
    calls: list[tuple[int, int]] = []
    jumps: list[tuple[int, int]] = []
    syscalls: list[int] = []
    refs: list[tuple[int, int]] = []
    indirect = 0
    for address, size, mnemonic, op_str in md.disasm_lite(code, entry):
        if mnemonic == "lea":
            at = op_str.find("[rip ")
            if at >= 0 and op_str.endswith("]"):
                sign, _, disp = op_str[at + 5 : -1].partition(" ")
                with contextlib.suppress(ValueError):
                    off = int(disp, 16)
                    refs.append((address, address + size + (off if sign == "+" else -off)))
        elif mnemonic == "call":
            if op_str.startswith("0x"):
                calls.append((address, int(op_str, 16)))
            else:
                indirect += 1
        elif mnemonic == "jmp":
            if op_str.startswith("0x"):
                target = int(op_str, 16)
                if not entry <= target < end:
                    jumps.append((address, target))
        elif mnemonic == "syscall":
            syscalls.append(address)
    return FunctionScan(tuple(calls), tuple(jumps), indirect, tuple(syscalls), tuple(refs))


# -- parallel scan ------------------------------------------------------------------
# Worker processes are forked; each gets the binary through the pool initializer
# (fork passes it by memory, not by pickling). The parent never sets this.

_WORKER: dict[str, GoBinary] = {}


def _init_worker(binary: GoBinary) -> None:
    _WORKER["binary"] = binary


def _scan_slice(bounds: tuple[int, int]) -> list[FunctionScan]:
    b = _WORKER["binary"]
    out = []
    for f in b.functions[bounds[0] : bounds[1]]:
        out.append(scan_code(b.image.read(f.entry, f.end - f.entry), f.entry))
    return out


def _scan_indexes(indexes: list[int]) -> list[FunctionScan]:
    b = _WORKER["binary"]
    fns = b.functions
    out = []
    for i in indexes:
        f = fns[i]
        out.append(scan_code(b.image.read(f.entry, f.end - f.entry), f.entry))
    return out


def scan_binary(binary: GoBinary, workers: int | None = None,
                progress: Callable[[int], None] | None = None) -> list[FunctionScan]:
    """Scan every function, in function-table order."""
    fns = binary.functions
    text = binary.text_end - binary.text_start
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    if workers > 1 and text >= PARALLEL_MIN_BYTES:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        chunk = max(1, len(fns) // (workers * 8))
        slices = [(i, min(i + chunk, len(fns))) for i in range(0, len(fns), chunk)]
        out: list[FunctionScan] = []
        with ctx.Pool(workers, initializer=_init_worker, initargs=(binary,)) as pool:
            for part in pool.imap(_scan_slice, slices):
                out.extend(part)
                if progress:
                    progress(len(part))
        return out
    result = []
    for f in fns:
        result.append(scan_code(binary.image.read(f.entry, f.end - f.entry), f.entry))
        if progress:
            progress(1)
    return result


class CallGraph:
    """Edges between functions (indexes into binary.functions), disassembled lazily.

    `scan(i)` / `edges(i)` disassemble function i on first use; analyses that
    start from non-std code touch only what that code can reach. `scan_all()`
    disassembles everything (in parallel when worthwhile).
    """

    def __init__(self, binary: GoBinary) -> None:
        self.binary = binary
        self._fns = binary.functions
        self._index = {f.entry: i for i, f in enumerate(self._fns)}
        self._scans: dict[int, FunctionScan] = {}
        self._edges: dict[int, tuple[int, ...]] = {}

    @property
    def scanned(self) -> int:
        return len(self._scans)

    def index_of(self, address: int) -> int | None:
        return self._index.get(address)

    def scan(self, i: int) -> FunctionScan:
        s = self._scans.get(i)
        if s is None:
            f = self._fns[i]
            s = scan_code(self.binary.image.read(f.entry, f.end - f.entry), f.entry)
            self._scans[i] = s
        return s

    def scan_all(self, workers: int | None = None, progress: Callable[[int], None] | None = None) -> None:
        for i, s in enumerate(scan_binary(self.binary, workers, progress)):
            self._scans[i] = s

    def prescan(self, indexes: Iterable[int], workers: int | None = None) -> None:
        """Disassemble these functions now: what scan(i) would compute, only sooner (see start_prescan)."""
        with self.start_prescan(indexes, workers) as job:
            job.join()

    def start_prescan(self, indexes: Iterable[int], workers: int | None = None) -> Prescan:
        """Start disassembling these functions in a pool of forked worker processes, when they hold enough
        code to be worth it (PARALLEL_MIN_BYTES); Prescan.join() stores the scans. The analysis knows up front
        that it scans every module function (issue 17 §6: 50,000 of them in Debian's prometheus), and the
        caller can find the hook sites meanwhile. Results are those scan(i) gives."""
        todo = [i for i in indexes if i not in self._scans]
        fns = self._fns
        size = sum(fns[i].end - fns[i].entry for i in todo)
        workers = workers if workers is not None else min(4, os.cpu_count() or 1)
        if workers < 2 or size < PARALLEL_MIN_BYTES:
            return Prescan(self, [], None)  # scanned lazily, in this process
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        chunk = max(1, len(todo) // (workers * 8))
        parts = [todo[k : k + chunk] for k in range(0, len(todo), chunk)]
        pool = ctx.Pool(workers, initializer=_init_worker, initargs=(self.binary,))
        return Prescan(self, parts, pool)

    def edges(self, i: int) -> tuple[int, ...]:
        e = self._edges.get(i)
        if e is None:
            s = self.scan(i)
            index = self._index
            targets = {index[t] for _, t in s.calls if t in index}
            targets.update(index[t] for _, t in s.tail_jumps if t in index)
            e = tuple(sorted(targets))
            self._edges[i] = e
        return e

    def function(self, i: int) -> Function:
        return self._fns[i]

    def reach(self, sources: Iterable[int], stop: set[int]) -> dict[int, int]:
        """BFS from sources, not expanding `stop` nodes: node -> predecessor (-1 for sources)."""
        parent: dict[int, int] = {}
        queue: deque[int] = deque()
        for s in sources:
            if s not in parent:
                parent[s] = -1
                queue.append(s)
        while queue:
            n = queue.popleft()
            if n in stop and parent[n] != -1:
                continue
            for m in self.edges(n):
                if m not in parent:
                    parent[m] = n
                    queue.append(m)
        return parent

    def path(self, parent: dict[int, int], node: int) -> list[str]:
        """Function names from a source to `node`."""
        names = []
        while node != -1:
            names.append(self.function(node).name)
            node = parent[node]
        return names[::-1]


class Prescan:
    """A running parallel disassembly (CallGraph.start_prescan): join() waits and stores the scans; leaving
    the `with` block without join() terminates the workers."""

    def __init__(self, graph: CallGraph, parts: list[list[int]], pool: Any) -> None:
        self._graph = graph
        self._parts = parts
        self._pool = pool
        self._result = pool.map_async(_scan_indexes, parts) if pool is not None else None

    def join(self) -> None:
        if self._result is None:
            return
        for part, scans in zip(self._parts, self._result.get(), strict=True):
            for i, scan in zip(part, scans, strict=True):
                self._graph._scans.setdefault(i, scan)
        self._result = None
        self._pool.close()
        self._pool.join()
        self._pool = None

    def __enter__(self) -> Prescan:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
            self._result = None
