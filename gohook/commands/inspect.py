"""`gohook inspect BIN [--json]`: hook points, per-module capabilities and gaps, from the binary alone.

JSON document (the required interface):
    {"binary": {"path", "go_version", "main_module", "pie", "stripped", "cgo"},
     "modules": [{"path", "version", "inferred", "functions", "capabilities": [...]}],
     "hooks": [{"function", "capability", "address", "file_offset", "probe_offset"}],
     "gaps": [{"kind", "module", "detail"}]}
Extra keys (paths per capability, probe kinds, timings) are added beside
these; consumers must ignore keys they do not know.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gohook.gosym import GoBinary
from gohook.views.progress import Progress

if TYPE_CHECKING:
    from gohook.sites.catalog import Catalog
    from gohook.sites.hooks import HookReport
    from gohook.static.analysis import Analysis


@dataclass
class Inspection:
    binary: GoBinary
    hooks: HookReport
    analysis: Analysis
    timings: dict[str, float]


def inspect_binary(path: str, catalog: Catalog | None = None, progress: Progress | None = None) -> Inspection:
    """Run the whole static pipeline: parse -> hook sites -> call graph -> analysis."""
    # Imported here, not at the top: every command module is imported to
    # build the CLI parser, and capstone plus the catalog cost ~0.1 s of
    # start-up that `gohook symbols` and `gohook --help` should not pay.
    from gohook.sites.catalog import load_catalog
    from gohook.sites.hooks import find_hook_sites
    from gohook.static.analysis import analyze
    from gohook.static.callgraph import CallGraph

    progress = progress or Progress(enabled=False)
    t0 = time.perf_counter()
    with progress.step("parsing the Go function table"):
        binary = GoBinary.open(path)
        binary.functions  # noqa: B018 - parse now, for the timing
        binary.build_info  # noqa: B018
    t1 = time.perf_counter()
    catalog = catalog or load_catalog()
    with progress.step("finding hook points"):
        hooks = find_hook_sites(binary, catalog)
    t2 = time.perf_counter()
    with progress.step("disassembling and walking the call graph"):
        graph = CallGraph(binary)
        analysis = analyze(binary, hooks, graph)
    t3 = time.perf_counter()
    return Inspection(binary, hooks, analysis, {"parse": t1 - t0, "hooks": t2 - t1, "analysis": t3 - t2})


def inspection_document(ins: Inspection) -> dict[str, Any]:
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
    } for s in ins.hooks.sites]
    gaps = [{"kind": g.kind, "module": g.module, "detail": g.detail, "remedy": g.remedy} for g in ins.analysis.gaps]
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


def render(doc: dict[str, Any]) -> list[Any]:
    """Rich renderables for the document (pure: document in, renderables out)."""
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    b = doc["binary"]
    settings = b.get("settings", {})
    head = Text()
    head.append(f"{b['path']}\n", style="bold")
    head.append(f"Go {b['go_version'] or '?'}   main module {b['main_module'] or '?'}\n")
    flags = [f"PIE: {'yes' if b['pie'] else 'no'}", f"stripped: {'yes' if b['stripped'] else 'no'}",
             f"cgo: {'yes' if b['cgo'] else 'no'}"]
    flags += [f"{k}={settings[k]}" for k in ("-buildmode", "-ldflags", "GOARCH", "-tags") if k in settings]
    head.append("   ".join(flags))
    out: list[Any] = [Panel(head, title="gohook inspect", title_align="left")]

    mt = Table(title="Modules and the capabilities their code reaches", title_justify="left")
    for col in ("module", "version", "functions", "capabilities", "indirect calls"):
        mt.add_column(col)
    for m in doc["modules"]:
        caps = ", ".join(m["capabilities"]) or "-"
        name = m["path"] + (" (inferred)" if m["inferred"] else "")
        mt.add_row(name, m["version"] or "", str(m["functions"]), caps, str(m.get("indirect_calls", "")))
    out.append(mt)

    ht = Table(title=f"Hook points ({len(doc['hooks'])})", title_justify="left")
    for col in ("function", "capability", "address", "probe offset", "probe"):
        ht.add_column(col)
    for h in doc["hooks"]:
        ht.add_row(h["function"], h["capability"], f"{h['address']:#x}", f"{h['probe_offset']:#x}",
                   h.get("probe_kind", ""))
    out.append(ht)

    gt = Table(title=f"Gaps ({len(doc['gaps'])}): what gohook cannot see", title_justify="left")
    for col in ("kind", "module", "detail", "remedy"):
        gt.add_column(col, overflow="fold")
    for g in doc["gaps"]:
        gt.add_row(g["kind"], g["module"] or "(binary)", g["detail"], g["remedy"])
    out.append(gt)
    return out


def run(args: argparse.Namespace) -> int:
    progress = Progress(enabled=not args.json and sys.stderr.isatty())
    ins = inspect_binary(args.binary, progress=progress)
    doc = inspection_document(ins)
    if args.json:
        sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")
        return 0
    from rich.console import Console

    console = Console()
    for r in render(doc):
        console.print(r)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("inspect", help="what a Go binary can do, where gohook hooks it, and what it cannot see",
                       description="Static analysis of a Go binary: hook points, per-module capabilities "
                                   "(from machine code), gaps.",
                       epilog="examples:\n  gohook inspect ./app\n  gohook inspect ./app --json | jq .modules",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binary", help="a Go ELF binary (stripped or not)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(run=run)
