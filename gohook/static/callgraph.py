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

The scanner: gohook.gosym._scan (C over libcapstone; optional, setup.py
builds it when the capstone headers are there) when it loads, else
scan_code_python, the reference it must equal (tests/static/
test_scan_accel.py checks every function of fixtures and real binaries).
The C one scans batches of functions out of one view of the text segment
(TextView) and disassembles without the GIL, so CallGraph.start_prescan runs
it in a thread while the caller finds the hook sites. On Debian's prometheus
(63,000 functions, 22 MB of code, a loaded 2-core machine) it scans them all
in 1.5-2.0 s of CPU, the Python scanner in 4.6-6.1 s; inspect took 6.2 s
(median) with the prescan in a thread, 6.7 s without. Forked workers do
not pay with the C scanner (about 3.5 s more CPU than the thread, their
results pickled back, and no faster), so the pool, and PARALLEL_MIN_BYTES,
are for the Python scanner only: without the extension, large binaries are
disassembled by worker processes (fork: they share the already-read file)
when more than one core is available.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import capstone

from gohook.gosym import GoBinary, machinecode
from gohook.gosym.pclntab import Function

#: the C scanner (gohook.gosym.machinecode: built by setup.py when a compiler and capstone's headers are
#: present), or None: the Python scanner
_scan = machinecode.scanner()

#: Whether the C scanner is in use (scan_code and every batch scan go through it).
ACCELERATED = _scan is not None


PARALLEL_MIN_BYTES = 2 << 20  # Python scanner only: below this much text, one process is faster than forking
BATCH = 4096  # functions per call of the C scanner in scan_binary / a prescan: progress and cancel points


#: One (instruction address, target) pair of FunctionScan's packed fields: two little-endian u64.
PAIR = struct.Struct("<QQ")
_U64 = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class FunctionScan:
    """What the machine code of one function calls.

    The pairs are packed, PAIR after PAIR in instruction order, the target modulo 2**64 (as the CPU computes
    a rip-relative address): a binary has hundreds of thousands of them, and as tuples of ints Debian's
    prometheus' 520,000 pairs held 77 MB, packed 8 MB (issue 17 §6). calls(), tail_jumps(), address_refs()
    and transfers() give them as (address, target) tuples; FunctionScan.of builds one from such tuples.
    """

    call_pairs: bytes  # (call instruction address, target) of direct calls
    jump_pairs: bytes  # (jmp address, target) of jumps leaving the function
    indirect_calls: int
    syscalls: tuple[int, ...]  # addresses of `syscall` instructions
    ref_pairs: bytes = b""  # (lea instruction address, rip-relative address it loads)

    @staticmethod
    def of(calls: Iterable[tuple[int, int]], tail_jumps: Iterable[tuple[int, int]], indirect_calls: int,
           syscalls: Iterable[int], address_refs: Iterable[tuple[int, int]] = ()) -> FunctionScan:
        return FunctionScan(_pack(calls), _pack(tail_jumps), indirect_calls, tuple(syscalls), _pack(address_refs))

    def calls(self) -> Iterator[tuple[int, int]]:
        return PAIR.iter_unpack(self.call_pairs)

    def tail_jumps(self) -> Iterator[tuple[int, int]]:
        return PAIR.iter_unpack(self.jump_pairs)

    def transfers(self) -> Iterator[tuple[int, int]]:
        """The direct calls, then the tail jumps: every edge leaving the function."""
        return PAIR.iter_unpack(self.call_pairs + self.jump_pairs)

    def address_refs(self) -> Iterator[tuple[int, int]]:
        return PAIR.iter_unpack(self.ref_pairs)


def _pack(pairs: Iterable[tuple[int, int]]) -> bytes:
    return b"".join(PAIR.pack(a & _U64, t & _U64) for a, t in pairs)


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
    """Disassemble one function's bytes (at vaddr `entry`) and collect its edges (the C scanner when built)."""
    if _scan is None:
        return scan_code_python(code, entry)
    return _scan.scan_many(code, entry, (entry,), (entry + len(code),), FunctionScan)[0]


def scan_code_python(code: bytes, entry: int) -> FunctionScan:
    """scan_code in Python, over capstone's binding: the reference the C scanner (_scan.c) must equal."""
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
    return FunctionScan.of(calls, jumps, indirect, syscalls, refs)


class TextView:
    """The text segment of a binary as one memoryview (no copy), for batch scans: function i is
    view[entry - base : end - base]. Functions outside it (none in a Go binary, whose functions all lie in
    its text) are read one by one with image.read, which raises AddressError as before."""

    def __init__(self, binary: GoBinary) -> None:
        self.binary = binary
        self.base, self.view = machinecode.text_view(binary)

    def scan(self, indexes: Sequence[int]) -> list[FunctionScan]:
        """FunctionScans of these functions (indexes into binary.functions), in that order."""
        fns = self.binary.functions
        if _scan is None:
            read = self.binary.image.read
            return [scan_code_python(read(f.entry, f.end - f.entry), f.entry) for f in (fns[i] for i in indexes)]
        lo, hi = self.base, self.base + len(self.view)
        picked = [fns[i] for i in indexes]
        if all(lo <= f.entry <= f.end <= hi for f in picked):
            return _scan.scan_many(self.view, lo, [f.entry for f in picked], [f.end for f in picked], FunctionScan)
        read = self.binary.image.read
        out = []
        for f in picked:
            if lo <= f.entry <= f.end <= hi:
                out.append(_scan.scan_many(self.view, lo, (f.entry,), (f.end,), FunctionScan)[0])
            else:
                out.append(scan_code(read(f.entry, f.end - f.entry), f.entry))
        return out


# -- parallel scan (Python scanner only) ---------------------------------------------
# Worker processes are forked; each gets the binary through the pool initializer
# (fork passes it by memory, not by pickling). The parent never sets this.

_WORKER: dict[str, GoBinary] = {}


def _init_worker(binary: GoBinary) -> None:
    _WORKER["binary"] = binary


def _scan_slice(bounds: tuple[int, int]) -> list[FunctionScan]:
    return TextView(_WORKER["binary"]).scan(range(bounds[0], bounds[1]))


def _scan_indexes(indexes: list[int]) -> list[FunctionScan]:
    return TextView(_WORKER["binary"]).scan(indexes)


def _pool_pays(workers: int, size: int) -> bool:
    """Whether to fork worker processes for `size` bytes of code: only for the Python scanner (the C one is
    faster in this process than forked workers whose results come back pickled)."""
    return _scan is None and workers > 1 and size >= PARALLEL_MIN_BYTES


def scan_binary(binary: GoBinary, workers: int | None = None,
                progress: Callable[[int], None] | None = None) -> list[FunctionScan]:
    """Scan every function, in function-table order: with the C scanner in this process (`workers` is then
    ignored), with the Python one in `workers` forked processes when the binary is large enough."""
    fns = binary.functions
    text = binary.text_end - binary.text_start
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    if _pool_pays(workers, text):
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
    view = TextView(binary)
    step = BATCH if _scan is not None else 1
    result: list[FunctionScan] = []
    for k in range(0, len(fns), step):
        part = view.scan(range(k, min(k + step, len(fns))))
        result.extend(part)
        if progress:
            progress(len(part))
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
        self._text: TextView | None = None
        self._pending: Prescan | None = None  # a running prescan: scan() takes its results as they come

    @property
    def text(self) -> TextView:
        if self._text is None:
            self._text = TextView(self.binary)
        return self._text

    @property
    def scanned(self) -> int:
        return len(self._scans)

    def index_of(self, address: int) -> int | None:
        return self._index.get(address)

    def scan(self, i: int) -> FunctionScan:
        s = self._scans.get(i)
        if s is None:
            pending = self._pending
            if pending is not None:
                s = pending.take(i)
            if s is None:
                s = self.text.scan((i,))[0]
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
        """Start disassembling these functions, in this order; Prescan.join() stores the scans. The analysis
        knows up front that it scans every module function (issue 17 §6: 50,000 of them in Debian's
        prometheus), then the standard-library ones they reach, and the caller can find the hook sites
        meanwhile. Results are those scan(i) gives. While it runs, scan(i) of a
        function it covers waits for that function only (the analysis walks functions in the order the thread
        scans them, so the two overlap), and a further prescan leaves out what it covers.

        With the C scanner: in a thread (the disassembly runs without the GIL), when more than one core is
        available, else at join(). With the Python one: in a pool of forked worker processes when the
        functions hold enough code to be worth it (PARALLEL_MIN_BYTES), else lazily."""
        pending = self._pending
        todo = list(dict.fromkeys(i for i in indexes if i not in self._scans
                                  and (pending is None or not pending.covers(i))))
        fns = self._fns
        workers = workers if workers is not None else min(4, os.cpu_count() or 1)
        if _scan is not None:
            return Prescan(self, todo, threaded=workers > 1)
        size = sum(fns[i].end - fns[i].entry for i in todo)
        if not _pool_pays(workers, size):
            return Prescan(self, [])  # scanned lazily, in this process
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        chunk = max(1, len(todo) // (workers * 8))
        parts = [todo[k : k + chunk] for k in range(0, len(todo), chunk)]
        pool = ctx.Pool(workers, initializer=_init_worker, initargs=(self.binary,))
        return Prescan(self, todo, pool=pool, parts=parts)

    def edges(self, i: int) -> tuple[int, ...]:
        e = self._edges.get(i)
        if e is None:
            s = self.scan(i)
            index = self._index
            targets = {index[t] for _, t in s.transfers() if t in index}
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
    """A running disassembly (CallGraph.start_prescan): join() waits and stores the scans; leaving the `with`
    block without join() stops it (the workers are terminated; the thread stops at its next batch).

    C scanner: a thread takes the next BATCH functions of its queue (`todo`, in order), scans them (each
    disassembled without the GIL) into its own table, and take(i) hands out a function's scan as soon as its
    batch is done; join(), in the caller's thread, writes the graph's scans. Python scanner with a pool: the
    workers scan `parts`, and take(i) joins them all. (Moving the module functions to the front of the queue
    once their modules are known was measured, interleaved: slower on prometheus and hugo, not kept.)"""

    def __init__(self, graph: CallGraph, todo: list[int], *, threaded: bool = False, pool: Any = None,
                 parts: list[list[int]] | None = None) -> None:
        self._graph = graph
        self._todo = todo  # every function it covers, in the order given (start_prescan's, duplicates left out)
        self._covered = frozenset(todo)
        self._queue = deque(todo)  # the thread's: what it has not taken yet, next first
        self._parts = parts or []
        self._pool = pool
        self._result = pool.map_async(_scan_indexes, self._parts) if pool is not None else None
        self._scans: dict[int, FunctionScan] = {}  # the thread's results so far
        self._ready = threading.Condition()  # guards _queue, _scans and _finished while the thread runs
        self._finished = False
        self._error: Exception | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if todo and graph._pending is None:
            graph._pending = self
        if threaded and todo and pool is None:
            graph.text  # noqa: B018 - made here, not raced for by the thread
            self._thread = threading.Thread(target=self._run, name="gohook-prescan", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            text = self._graph.text
            while not self._stop.is_set():
                with self._ready:
                    batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
                if not batch:
                    return
                part = text.scan(batch)
                with self._ready:
                    self._scans.update(zip(batch, part, strict=True))
                    self._ready.notify_all()
        except Exception as exc:  # handed to join(), in the caller's thread
            self._error = exc
        finally:
            with self._ready:
                self._finished = True
                self._ready.notify_all()

    def covers(self, i: int) -> bool:
        return i in self._covered

    def take(self, i: int) -> FunctionScan | None:
        """Function i's scan once it is done (None when this prescan does not cover i); an error of the
        thread is raised here, as join() raises it."""
        if i not in self._covered:
            return None
        if self._thread is not None:
            with self._ready:
                while i not in self._scans and not self._finished:
                    self._ready.wait()
                got = self._scans.get(i)
                if got is not None:
                    return got
        self.join()
        return self._graph._scans.get(i)

    def join(self) -> None:
        if self._pool is not None:
            if self._result is not None:
                self._store([i for part in self._parts for i in part], [s for got in self._result.get() for s in got])
            self._result = None
            self._pool.close()
            self._pool.join()
            self._pool = None
        elif self._thread is not None:
            self._thread.join()
            self._thread = None
            error, self._error = self._error, None
            if error is not None:
                self._forget()
                raise error
            self._store(list(self._scans), list(self._scans.values()))
        elif self._todo:  # the C scanner on one core: here, now
            self._store(self._todo, self._graph.text.scan(self._todo))
        self._forget()

    def _forget(self) -> None:
        self._todo, self._scans, self._covered, self._queue = [], {}, frozenset(), deque()
        if self._graph._pending is self:
            self._graph._pending = None

    def _store(self, indexes: list[int], scans: list[FunctionScan]) -> None:
        stored = self._graph._scans
        for i, scan in zip(indexes, scans, strict=True):
            stored.setdefault(i, scan)

    def __enter__(self) -> Prescan:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
            self._result = None
        self._forget()
