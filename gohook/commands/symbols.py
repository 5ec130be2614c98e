"""`gohook symbols`: functions with their modules, or PCs expanded into frames.

JSON shapes (the required interface):
    {"go_version", "main_module", "functions": [{"name", "entry", "end", "package", "module"}]}
    {"pcs": [{"pc", "frames": [{"function", "file", "line", "inlined"}]}]}
"""

from __future__ import annotations

import json
import sys
from typing import Any

from gohook.gosym import GoBinary


def functions_document(binary: GoBinary) -> dict[str, Any]:
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
    out = []
    for pc in pcs:
        frames = [{"function": fr.function, "file": fr.file, "line": fr.line, "inlined": fr.inlined}
                  for fr in binary.frames(pc, return_address=True)]
        out.append({"pc": pc, "frames": frames})
    return {"pcs": out}


def run(path: str, *, pcs: list[int], as_json: bool) -> int:
    binary = GoBinary.open(path)
    doc = pcs_document(binary, pcs) if pcs else functions_document(binary)
    if as_json:
        sys.stdout.write(json.dumps(doc, separators=(",", ":")))
        sys.stdout.write("\n")
        return 0
    from rich.console import Console  # imported here: the JSON path stays fast
    from rich.table import Table

    console = Console()
    if pcs:
        for entry in doc["pcs"]:
            table = Table(title=f"pc {entry['pc']:#x}", title_justify="left")
            for col in ("#", "function", "file:line", "inlined"):
                table.add_column(col)
            if not entry["frames"]:
                table.add_row("-", "(not in any Go function)", "", "")
            for i, fr in enumerate(entry["frames"]):
                table.add_row(str(i), fr["function"], f"{fr['file']}:{fr['line']}", "yes" if fr["inlined"] else "")
            console.print(table)
        return 0
    console.print(f"[bold]{path}[/]  Go {doc['go_version'] or '?'}  main module {doc['main_module'] or '?'}  "
                  f"{len(doc['functions'])} functions")
    table = Table()
    for col in ("entry", "end", "function", "module"):
        table.add_column(col)
    for f in doc["functions"]:
        table.add_row(f"{f['entry']:#x}", f"{f['end']:#x}", f["name"], f["module"])
    console.print(table)
    return 0
