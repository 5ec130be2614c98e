"""`gohook inspect --json` on the capapp fixture, against expectations derived from its source.

Expectations are data (tests/data/inspect_expect.yaml). Addresses are checked
against Go's own debug/gosym (the oracle) and the probe bytes against the file
itself: a `push-rbp` probe must sit on a 0x55 byte, a stack-check branch on a
`jbe`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import gofixtures
import pytest
import yaml

from gohook.commands.main import main

EXPECT = yaml.safe_load((Path(__file__).parents[1] / "data" / "inspect_expect.yaml").read_text())
MODES = ("default", "stripped", "pie", "cgo")
_DOCS: dict[tuple[str, str], dict[str, Any]] = {}


def inspect_doc(toolchain: gofixtures.Toolchain, mode: str) -> tuple[Path, dict[str, Any]]:
    binary = gofixtures.build(toolchain, "capapp", mode)
    key = (toolchain.version, mode)
    if key not in _DOCS:
        proc = subprocess.run([sys.executable, "-m", "gohook", "inspect", str(binary), "--json"],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        _DOCS[key] = json.loads(proc.stdout)
    return binary, _DOCS[key]


@pytest.mark.parametrize("mode", MODES)
def test_module_capabilities(toolchain: gofixtures.Toolchain, mode: str) -> None:
    _, doc = inspect_doc(toolchain, mode)
    modules = {m["path"]: m for m in doc["modules"]}
    for key, exp in EXPECT["modules"].items():
        if mode not in exp.get("modes", MODES):
            continue
        path = exp.get("module", key)
        assert path in modules, f"{path} missing from inspect output"
        caps = set(modules[path]["capabilities"])
        if "capabilities_exact" in exp:
            assert caps == set(exp["capabilities_exact"]), (path, modules[path]["paths"])
        else:
            assert set(exp["capabilities_include"]) <= caps, (path, caps)
        for cap, steps in modules[path]["paths"].items():
            assert cap in caps and len(steps) >= 2
    b = doc["binary"]
    assert b["main_module"] == "example.com/capapp"
    assert b["pie"] is (mode == "pie") and b["stripped"] is (mode == "stripped") and b["cgo"] is (mode == "cgo")
    assert b["go_version"] == f"go{toolchain.version}"


@pytest.mark.parametrize("mode", MODES)
def test_gaps(toolchain: gofixtures.Toolchain, mode: str) -> None:
    _, doc = inspect_doc(toolchain, mode)
    found = {(g["kind"], g["module"]) for g in doc["gaps"]}
    for gap in EXPECT["gaps"]:
        if mode in gap.get("modes", MODES):
            assert (gap["kind"], gap["module"]) in found, (gap, sorted(found))
    if mode != "cgo":
        assert not any(k == "cgo" for k, _ in found)
    # every module with indirect calls says so
    for m in doc["modules"]:
        if m.get("indirect_calls"):
            assert ("indirect_calls", m["path"]) in found


@pytest.mark.parametrize("mode", MODES)
def test_gap_system_call_numbers_and_absent_kinds(toolchain: gofixtures.Toolchain, mode: str) -> None:
    """Gaps name the system call numbers their code loads as constants (issue 12 §5d); capapp has none of the
    kinds in gap_kinds_absent (§5a-c), so none may be reported."""
    _, doc = inspect_doc(toolchain, mode)
    for gap in EXPECT["gaps"]:
        if "syscalls" in gap and mode in gap.get("modes", MODES):
            numbers = [[s["nr"] for s in g["syscalls"]] for g in doc["gaps"]
                       if (g["kind"], g["module"]) == (gap["kind"], gap["module"])]
            assert gap["syscalls"] in numbers, (gap, numbers)
    assert not [g for g in doc["gaps"] if g["kind"] in EXPECT["gap_kinds_absent"]]


@pytest.mark.parametrize("mode", ["default", "pie"])
def test_hook_addresses_against_oracle_and_file(toolchain: gofixtures.Toolchain, mode: str) -> None:
    binary, doc = inspect_doc(toolchain, mode)
    oracle = gofixtures.oracle(binary)
    entries: dict[str, set[int]] = {}
    for f in oracle["functions"]:
        entries.setdefault(f["name"], set()).add(f["entry"])
    data = binary.read_bytes()
    hooks = {h["function"]: h for h in doc["hooks"]}
    for name in EXPECT["hooks_present"]:
        assert name in hooks, f"{name} not hooked"
    for h in doc["hooks"]:
        assert h["address"] in entries[h["function"]], h
        probe = h["probe_offset"]
        if h["probe_kind"] == "push-rbp":
            assert data[probe] == 0x55, h  # push rbp
        elif h["probe_kind"] == "stack-check-branch":
            assert data[probe] == 0x76 or data[probe:probe + 2] == b"\x0f\x86", h  # jbe rel8 / rel32
        else:
            assert probe == h["file_offset"], h  # entry fallback
        assert 0 <= probe - h["file_offset"] < 32
    kinds = {h["probe_kind"] for h in doc["hooks"]}
    # Go 1.21+ prologues push rbp after the stack check; Go 1.19 sets the frame up with sub rsp.
    assert ("push-rbp" if toolchain.release >= (1, 21) else "stack-check-branch") in kinds


def test_value_rule_hooks_are_enforced_so_no_gap(toolchain: gofixtures.Toolchain) -> None:
    """syscall.rawSyscallNoError's value table on its stack argument is evaluated in BPF (HOOK_VALUE):
    inspect lists it as a hook and no longer as an `unenforced_hook` gap."""
    _, doc = inspect_doc(toolchain, "default")
    assert any(h["function"] == "syscall.rawSyscallNoError" for h in doc["hooks"])
    assert not [g for g in doc["gaps"] if g["kind"] == "unenforced_hook"], doc["gaps"]


def test_rules_the_bpf_program_cannot_read_are_unenforceable() -> None:
    from gohook.sites.catalog import FlagRule, Location, ValueCase, ValueRule
    from gohook.static.analysis import rule_enforceable

    stack, reg = Location(stack_offset=8), Location.parse("rcx")
    assert rule_enforceable(FlagRule("flag", reg, 0x40, "files.write", "files.read"))
    assert not rule_enforceable(FlagRule("flag", stack, 0x40, "files.write", "files.read"))
    case = (ValueCase(39, "getpid", "system.read"),)
    assert rule_enforceable(ValueRule("trap", stack, case, None))
    assert not rule_enforceable(ValueRule("trap", reg, case, None))


def test_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x7fELF" + b"\x01" * 100)
    assert main(["inspect", str(bad), "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gohook: ")


@pytest.mark.parametrize("mode", ["default", "stripped"])
def test_hooks_say_how_they_deny(toolchain: gofixtures.Toolchain, mode: str) -> None:
    """Every hook point carries its deny plan (issue 15) in --json, and the text table has a `deny` column."""
    from rich.console import Console

    from gohook.sites.catalog import GoVersion, load_catalog
    from gohook.views.tables import inspection_renderables

    _, doc = inspect_doc(toolchain, mode)
    catalog = load_catalog()
    version = GoVersion.parse(doc["binary"]["go_version"])
    for h in doc["hooks"]:
        plans = {str(s.deny) for s in catalog.hooks_named(h["function"], version)}
        text = h["deny"]["kind"] + (f": {h['deny']['values']}" if h["deny"]["values"] != "-" else "")
        assert text in plans, h
    hooks = {h["function"]: h["deny"] for h in doc["hooks"]}
    assert hooks["syscall.openat"] == {
        "kind": "error", "values": "fd=-1, err=EPERM",
        "registers": [{"at": "rax", "kind": "const", "value": -1, "result": "fd"},
                      {"at": "rbx", "kind": "errno_itab", "value": 0, "result": "err.itab"},
                      {"at": "rcx", "kind": "errno_data", "value": 1, "result": "err.data"}]}
    assert (hooks["syscall.Getenv"]["kind"], hooks["syscall.Getenv"]["values"]) == ("unset", 'value="", found=false')
    assert hooks["syscall.Syscall"]["values"] == "r1=-1, r2=0, err=EPERM"
    console = Console(record=True, width=400)
    for renderable in inspection_renderables(doc):
        console.print(renderable)
    table = console.export_text()
    assert re.search(r"[│┃] *deny *[│┃]", table)
    assert re.search(r"│ syscall\.openat .*│ error: fd=-1, err=EPERM *│", table)
    assert re.search(r"│ syscall\.Setenv .*│ error: EPERM *│", table)


def test_inspection_pauses_the_garbage_collector_and_restores_it(newest_toolchain: gofixtures.Toolchain) -> None:
    """inspect_binary runs with the cyclic collector off and leaves it as it found it, on or off, also when the
    pipeline raises."""
    import gc

    from gohook.errors import GohookError
    from gohook.static import inspection

    seen: list[bool] = []

    class Watch:
        def step(self, label: str) -> Any:
            seen.append(gc.isenabled())
            return inspection.QuietSteps().step(label)

    binary = str(gofixtures.build(newest_toolchain, "capapp", "default"))
    was_on = gc.isenabled()
    try:
        for start in (True, False):
            (gc.enable if start else gc.disable)()
            inspection.inspect_binary(binary, progress=Watch())
            assert gc.isenabled() is start
            with pytest.raises(GohookError):
                inspection.inspect_binary("/dev/null")
            assert gc.isenabled() is start
    finally:
        (gc.enable if was_on else gc.disable)()
    assert seen and not any(seen)
