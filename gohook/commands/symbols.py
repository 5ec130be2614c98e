"""`gohook symbols`: functions with their modules, or PCs expanded into frames.

The documents (the JSON interface) are gohook.static.inspection's, the
tables gohook.views.tables'; the parser is in gohook.commands.main.
"""

from __future__ import annotations

import json
import sys

from gohook.gosym import GoBinary
from gohook.static.inspection import functions_document, pcs_document


def run(path: str, *, pcs: list[int], as_json: bool) -> int:
    binary = GoBinary.open(path)
    doc = pcs_document(binary, pcs) if pcs else functions_document(binary)
    if as_json:
        sys.stdout.write(json.dumps(doc, separators=(",", ":")))
        sys.stdout.write("\n")
        return 0
    from gohook.views.tables import (  # (rich: not on the JSON path)
        functions_renderables,
        output_console,
        pcs_renderables,
    )

    console = output_console()
    for r in pcs_renderables(doc) if pcs else functions_renderables(path, doc):
        console.print(r)
    return 0
