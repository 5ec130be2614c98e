"""The whole static reading of a Go binary, and its JSON documents: what `gohook inspect` and `gohook symbols` show.

inspect_binary() runs parse -> hook sites -> call graph -> analysis (the
static stages, in order) and inspection_document() turns the result into the
`gohook inspect --json` document:

    {"binary": {"path", "go_version", "main_module", "pie", "stripped", "cgo"},
     "modules": [{"path", "version", "inferred", "functions", "capabilities": [...]}],
     "hooks": [{"function", "capability", "address", "file_offset", "probe_offset", "deny"}],
     "gaps": [{"kind", "module", "detail", "remedy", "function", "address", "syscalls": [{"nr", "name", "class"}]}]}

A hook's `deny` says how a denied call returns under `action: error` (the catalog's ReturnPlan):
{"kind": error|unset|empty|noop|kill, "values": "fd=-1, err=EPERM" ("-" for none), "registers":
[{"at": "rax", "kind": const|errno_itab|errno_data, "value", "result"}]}.

A gap's `function` is the module function at fault and `address` an example
site in it (a call, a `syscall` or `lea` instruction), both empty/0 for
binary-level gaps; `syscalls` are the system call numbers seen there as
constants, named and classified by gohook.sites.syscalls. Gap kinds are
listed in docs/capabilities.md ("What inspect cannot block: gaps").

Extra keys (paths per capability, probe kinds, timings) are added beside
these; consumers must ignore keys they do not know. functions_document() and
pcs_document() are the `gohook symbols --json` documents:

    {"go_version", "main_module", "functions": [{"name", "entry", "end", "package", "module"}]}
    {"pcs": [{"pc", "frames": [{"function", "file", "line", "inlined"}]}]}

Here, below the views, so that policy generation and benchmarks reach the
analysis without going through a command; feedback on the long steps goes
through the small `Steps` protocol (gohook.views.progress.Progress fits it).
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from gohook.gosym import GoBinary

if TYPE_CHECKING:
    from gohook.sites.catalog import Catalog, ReturnPlan
    from gohook.sites.hooks import HookReport
    from gohook.static.analysis import Analysis
    from gohook.static.callgraph import CallGraph


class Steps(Protocol):
    """Feedback on long steps: `with steps.step("parsing"): ...` (gohook.views.progress.Progress is one)."""

    def step(self, label: str) -> AbstractContextManager[None]: ...


class QuietSteps:
    """Steps that show nothing."""

    def step(self, label: str) -> AbstractContextManager[None]:
        return contextlib.nullcontext()


@dataclass
class Inspection:
    binary: GoBinary
    hooks: HookReport
    analysis: Analysis
    timings: dict[str, float]
    graph: CallGraph | None = None  # the call graph the analysis disassembled (for further static questions)


def inspect_binary(path: str, catalog: Catalog | None = None, progress: Steps | None = None,
                   cache: bool = False) -> Inspection:
    """Run the whole static pipeline: parse -> hook sites -> call graph -> analysis.

    With `cache`, the hook sites and the analysis are read from / written to
    gohook.static.cache (keyed by the Go build ID, the file's size and hash, and
    gohook's code); only with the packaged catalog. The commands pass it; the
    library default stays off so that callers that patch the analysis see it run.
    On a cache hit `graph` is a fresh, lazily disassembled call graph and the
    timings hold `cache` (the lookup) instead of `hooks` and `analysis`.
    """
    # The stages are imported in _inspect, not at the top: every command module is imported to build the CLI
    # parser, and capstone plus the catalog cost ~0.1 s of start-up that `gohook symbols` and `gohook --help`
    # should not pay.
    with collector_paused():
        return _inspect(path, catalog, progress, cache)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the duration, back on after (if it was on). The static
    pipeline allocates millions of objects and frees them by reference counting (it makes no garbage cycles
    worth a pass), while the collector's passes over everything alive cost 0.2-0.3 s of prometheus' 2.5 s
    first inspect, with the same peak RSS either way (issue 17 §6). What is alive at the end is moved to the
    collector's permanent generation (gc.freeze) before it is switched back on: its first pass would walk all
    of it (0.13 s on hugo). Frozen objects are still freed by reference counting; only reference cycles among
    them would never be collected, which matters to a long-lived process inspecting again and again, not to
    the one-shot commands (inspect, policy generate) that run this."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_on:
            gc.enable()


def _inspect(path: str, catalog: Catalog | None, progress: Steps | None, cache: bool) -> Inspection:
    """inspect_binary's work (the garbage collector paused around it)."""
    from gohook.sites.catalog import load_catalog
    from gohook.sites.hooks import find_hook_sites
    from gohook.static import analysis as analysis_module
    from gohook.static import cache as results_cache
    from gohook.static.callgraph import CallGraph

    steps: Steps = progress or QuietSteps()
    t0 = time.perf_counter()
    with steps.step("parsing the Go function table"):
        binary = GoBinary.open(path)
        binary.functions  # noqa: B018 - parse now, for the timing
        binary.build_info  # noqa: B018
    t1 = time.perf_counter()
    use_cache = cache and catalog is None
    catalog = catalog or load_catalog()
    graph = CallGraph(binary)
    # The analysis disassembles every module function and the standard-library functions module code reaches:
    # a thread (or worker processes) starts on every function now, while this one looks in the cache (hashing
    # the file), works out each function's module and finds the hook sites, and the analysis takes each
    # function's scan as soon as it is done (issue 17 §6). The scans are the same as the lazy ones. A cache
    # hit stops it.
    with graph.start_prescan(range(len(binary.functions))) as prescan:
        key = results_cache.cache_key(binary) if use_cache else None
        if key is not None:
            hit = results_cache.load(binary, catalog, key)
            if hit is not None:
                timings = {"parse": t1 - t0, "cache": time.perf_counter() - t1}
                return Inspection(binary, hit.hooks, hit.analysis, timings, CallGraph(binary))
        binary.function_modules  # noqa: B018 - here, beside the prescan
        with steps.step("finding hook points"):
            hooks = find_hook_sites(binary, catalog)
        t2 = time.perf_counter()
        with steps.step("disassembling and walking the call graph"):
            analysis = analysis_module.analyze(binary, hooks, graph)
            prescan.join()
    t3 = time.perf_counter()
    if key is not None:
        results_cache.store(results_cache.CachedResults(hooks, analysis), key)
    return Inspection(binary, hooks, analysis, {"parse": t1 - t0, "hooks": t2 - t1, "analysis": t3 - t2}, graph)


def inspection_document(ins: Inspection) -> dict[str, Any]:
    """The `gohook inspect --json` document of an inspection (see the module docstring)."""
    b = ins.binary
    modules = []
    for rep in sorted(ins.analysis.modules.values(), key=lambda r: (r.path != b.main_module, r.path)):
        modules.append({
            "path": rep.path,
            "version": rep.version,
            "inferred": rep.inferred,
            "functions": rep.functions,
            "capabilities": sorted(rep.capabilities),
            "paths": {c: list(p.path) for c, p in sorted(rep.capabilities.items())},
            "indirect_calls": rep.indirect_calls,
        })
    hooks = [{
        "function": s.function.name,
        "capability": s.capability_label,
        "address": s.function.entry,
        "file_offset": b.vaddr_to_offset(s.function.entry),
        "probe_offset": s.file_offset,
        "probe_address": s.probe.address,
        "probe_kind": s.probe.kind,
        "probe_note": s.probe.reason,
        "direct_caller_only": s.spec.direct_caller_only,
        "deny": deny_document(s.spec.deny),
    } for s in ins.hooks.sites]
    from gohook.sites.syscalls import classify

    gaps = [{"kind": g.kind, "module": g.module, "detail": g.detail, "remedy": g.remedy, "function": g.function,
             "address": g.address,
             "syscalls": [{"nr": nr, "name": classify(nr).name, "class": classify(nr).class_} for nr in g.syscalls]}
            for g in ins.analysis.gaps]
    return {
        "binary": {
            "path": b.path,
            "go_version": b.go_version,
            "main_module": b.main_module,
            "pie": b.is_pie,
            "stripped": b.is_stripped,
            "cgo": b.has_cgo,
            "settings": dict(b.build_info.settings) if b._build_info_ok() and b.build_info else {},
            "catalog_version": str(ins.hooks.go_version),
        },
        "modules": modules,
        "hooks": hooks,
        "absent": list(ins.hooks.absent),
        "inlined_only": list(ins.hooks.inlined_only),
        "gaps": gaps,
        "timings": {k: round(v, 4) for k, v in ins.timings.items()},
    }


def deny_document(plan: ReturnPlan) -> dict[str, Any]:
    """How a hook denies under `action: error`, as the `deny` of an inspect hook (see the module docstring)."""
    return {
        "kind": plan.kind.value,
        "values": plan.values_text,
        "registers": [{"at": str(w.at), "kind": w.kind.value, "value": w.value, "result": w.result}
                      for w in plan.words],
    }


def functions_document(binary: GoBinary) -> dict[str, Any]:
    """Every function of the binary with its package and module (`gohook symbols --json`)."""
    funcs = []
    for f in binary.functions:
        funcs.append({
            "name": f.name,
            "entry": f.entry,
            "end": f.end,
            "package": binary.package_of(f.name),
            "module": binary.module_of(f.name),
        })
    return {"go_version": binary.go_version, "main_module": binary.main_module, "functions": funcs}


def pcs_document(binary: GoBinary, pcs: list[int]) -> dict[str, Any]:
    """Return addresses expanded into logical frames (`gohook symbols --pc PC --json`)."""
    out = []
    for pc in pcs:
        frames = [{"function": fr.function, "file": fr.file, "line": fr.line, "inlined": fr.inlined}
                  for fr in binary.frames(pc, return_address=True)]
        if not frames:
            # frames() elides wrapper functions, as the runtime's tracebacks do; a PC inside one (issue 17 §5:
            # 228 of 1,378 sampled PCs of the docker CLI) would have no frame, where runtime.CallersFrames and
            # runtime.FuncForPC name the wrapper itself: its physical function, then
            f = binary.function_at(pc - 1)
            if f is not None:
                file, line = binary.line_at(pc - 1)
                frames = [{"function": f.name, "file": file, "line": line, "inlined": False}]
        out.append({"pc": pc, "frames": frames})
    return {"pcs": out}
