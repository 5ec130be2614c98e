"""The package follows the pipeline: no import runs from a lower stage to a higher one, and there are no loops.

Stages, in pipeline order (docs/architecture.md):

    gosym -> attribution -> sites -> static -> policy -> plan -> bpf -> attach -> events -> views -> session ->
    commands

A module may import from its own stage or an earlier one. `gohook.errors` and
`gohook.bpf.abi` (the Python mirror of the C ABI) are the base every stage may
use; they import nothing else of gohook. Lazy imports inside functions count
the same as top-level ones: a climb hidden in a function is still a climb.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gohook"

STAGES: tuple[str, ...] = ("gosym", "attribution", "sites", "static", "policy", "plan", "bpf", "attach", "events",
                           "views", "session", "agent", "commands")
BASE = frozenset({"gohook.errors", "gohook.bpf.abi"})
TOP_LEVEL_FILES = frozenset({"__init__", "__main__", "errors", "session"})


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def stage_of(module: str) -> int | None:
    """Index of the module's stage; None for the base and the package entry points."""
    if module in BASE or any(module.startswith(b + ".") for b in BASE):
        return None
    parts = module.split(".")
    if len(parts) < 2 or parts[1] in ("__main__", "errors") or module == "gohook":
        return None
    return STAGES.index(parts[1])


def gohook_imports(path: Path) -> set[str]:
    """Every gohook module the file imports, at any depth (names imported from a package count as submodules)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "gohook")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gohook":
            found.add(node.module)
            for alias in node.names:  # `from gohook.commands import attach` imports the submodule
                candidate = f"{node.module}.{alias.name}"
                if (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists() or \
                        (PACKAGE.parent / candidate.replace(".", "/") / "__init__.py").exists():
                    found.add(candidate)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            found.add("<importlib>")  # registries of module-name strings hide the graph
    return found


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_belongs_to_a_stage() -> None:
    for name in all_modules():
        parts = name.split(".")
        if name == "gohook" or name in BASE or (len(parts) == 2 and parts[1] in TOP_LEVEL_FILES):
            continue
        assert parts[1] in STAGES, f"{name}: not in a pipeline stage folder ({', '.join(STAGES)})"


def test_no_import_climbs_to_a_later_stage() -> None:
    climbs = []
    for name, path in all_modules().items():
        mine = stage_of(name)
        for imported in gohook_imports(path):
            if imported == "<importlib>":
                climbs.append(f"{name} imports modules by name string (importlib): the graph is hidden")
                continue
            theirs = stage_of(imported)
            if name in BASE:
                assert imported in BASE, f"{name} is base and must not import {imported}"
                continue
            if theirs is not None and mine is not None and theirs > mine:
                climbs.append(f"{name} ({STAGES[mine]}) imports {imported} ({STAGES[theirs]})")
    assert not climbs, "imports against the pipeline order:\n" + "\n".join(climbs)


def test_no_import_loops_between_modules() -> None:
    modules = all_modules()
    graph = {name: {i for i in gohook_imports(path) if i in modules and i != name} for name, path in modules.items()}
    # a package's __init__ re-exporting its own submodules is not a loop
    graph = {n: {i for i in deps if not i.startswith(n + ".")} for n, deps in graph.items()}
    state: dict[str, int] = {}
    loops: list[str] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                loops.append(" -> ".join([*trail[trail.index(nxt):], nxt]) if nxt in trail else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not loops, "import loops:\n" + "\n".join(loops)


@pytest.mark.parametrize(("importer", "imported", "allowed"), [
    ("gohook.plan.build", "gohook.sites.hooks", True),
    ("gohook.sites.hooks", "gohook.plan.build", False),
    ("gohook.bpf.loader", "gohook.events.decode", False),
    ("gohook.events.decode", "gohook.bpf.abi", True),
    ("gohook.gosym.binary", "gohook.bpf.abi", True),
])
def test_the_rule_itself(importer: str, imported: str, allowed: bool) -> None:
    """The stage rule says what the docs say (so the two tests above cannot pass by accident)."""
    a, b = stage_of(importer), stage_of(imported)
    assert (b is None or (a is not None and b <= a)) is allowed
