"""Rich tables of the static documents: what `gohook inspect` and `gohook symbols` show on a terminal.

Pure functions, document in, renderables out (the documents of
gohook.static.inspection); the commands print them with one rich Console. rich
is imported inside the functions so the JSON paths never pay for it.
"""

from __future__ import annotations

from typing import Any

#: the width tables are laid out for when stdout is not a terminal (a pipe, a file): rich would take 80 and cut
#: module paths ("github.com/prome…"); tables are as wide as their content up to this
PIPE_WIDTH = 4096


def output_console() -> Any:
    """The rich Console for stdout: the terminal's width on a terminal, else wide enough never to cut a cell."""
    import sys

    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=PIPE_WIDTH)


def inspection_renderables(doc: dict[str, Any]) -> list[Any]:
    """Rich renderables for the `gohook inspect` document: binary panel, modules, hook points (with how each
    denies under `action: error`), gaps."""
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
    out: list[Any] = [Panel(head, title="gohook inspect", title_align="left", expand=False)]

    mt = Table(title="Modules and the capabilities their code reaches", title_justify="left")
    for col in ("module", "version", "functions", "capabilities", "indirect calls"):
        mt.add_column(col)
    for m in doc["modules"]:
        caps = ", ".join(m["capabilities"]) or "-"
        name = m["path"] + (" (inferred)" if m["inferred"] else "")
        mt.add_row(name, m["version"] or "", str(m["functions"]), caps, str(m.get("indirect_calls", "")))
    out.append(mt)

    ht = Table(title=f"Hook points ({len(doc['hooks'])})", title_justify="left")
    for col in ("function", "capability", "address", "probe offset", "probe", "deny"):
        ht.add_column(col)
    for h in doc["hooks"]:
        ht.add_row(h["function"], h["capability"], f"{h['address']:#x}", f"{h['probe_offset']:#x}",
                   h.get("probe_kind", ""), deny_text(h.get("deny")))
    out.append(ht)

    gt = Table(title=f"Gaps ({len(doc['gaps'])}): what gohook cannot see", title_justify="left")
    for col in ("kind", "module", "where", "detail", "remedy"):
        gt.add_column(col, overflow="fold")
    for g in doc["gaps"]:
        where = g.get("function", "") + (f" @ {g['address']:#x}" if g.get("address") else "")
        if g.get("syscalls"):
            where += "\n" + ", ".join(f"{s['name'] or 'syscall'} {s['nr']} ({s['class']})" for s in g["syscalls"])
        gt.add_row(g["kind"], g["module"] or "(binary)", where, g["detail"], g["remedy"])
    out.append(gt)
    return out


def deny_text(deny: dict[str, Any] | None) -> str:
    """The `deny` column: "error: fd=-1, err=EPERM", "unset: value=\"\", found=false", "noop", "kill"."""
    if not deny:
        return ""
    values = deny.get("values", "-")
    return deny["kind"] + (f": {values}" if values and values != "-" else "")


def pcs_renderables(doc: dict[str, Any]) -> list[Any]:
    """One table of logical frames per address of a `gohook symbols --pc` document."""
    from rich.table import Table

    out: list[Any] = []
    for entry in doc["pcs"]:
        table = Table(title=f"pc {entry['pc']:#x}", title_justify="left")
        for col in ("#", "function", "file:line", "inlined"):
            table.add_column(col)
        if not entry["frames"]:
            table.add_row("-", "(not in any Go function)", "", "")
        for i, fr in enumerate(entry["frames"]):
            table.add_row(str(i), fr["function"], f"{fr['file']}:{fr['line']}", "yes" if fr["inlined"] else "")
        out.append(table)
    return out


def functions_renderables(path: str, doc: dict[str, Any]) -> list[Any]:
    """A headline (rich markup) and the table of every function of a `gohook symbols` document."""
    from rich.table import Table

    head = (f"[bold]{path}[/]  Go {doc['go_version'] or '?'}  main module {doc['main_module'] or '?'}  "
            f"{len(doc['functions'])} functions")
    table = Table()
    for col in ("entry", "end", "function", "module"):
        table.add_column(col)
    for f in doc["functions"]:
        table.add_row(f"{f['entry']:#x}", f"{f['end']:#x}", f["name"], f["module"])
    return [head, table]
