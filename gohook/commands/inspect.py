"""`gohook inspect BIN [--json]`: hook points, per-module capabilities and gaps, from the binary alone.

The command parses its arguments and prints; the analysis and the JSON
document are gohook.static.inspection's, the tables gohook.views.tables'.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gohook.static.inspection import inspect_binary, inspection_document
from gohook.views.progress import Progress


def run(args: argparse.Namespace) -> int:
    progress = Progress(enabled=not args.json and sys.stderr.isatty())
    ins = inspect_binary(args.binary, progress=progress, cache=not args.no_cache)
    doc = inspection_document(ins)
    if args.json:
        sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")
        return 0
    from gohook.views.tables import inspection_renderables, output_console

    console = output_console()
    for r in inspection_renderables(doc):
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
    p.add_argument("--no-cache", action="store_true",
                   help="analyse afresh: neither read nor write the analysis cache (gohook.static.cache)")
    p.set_defaults(run=run)
