"""`gohook inspect` (and the other commands that read machine code) on binaries it cannot analyse."""

from __future__ import annotations

import json
from pathlib import Path

import gofixtures
import pytest

from gohook.commands import main as cli


@pytest.mark.parametrize("command", [["inspect"], ["policy", "generate"], ["attach", "--policy", "POLICY"]])
def test_an_arm64_binary_gets_one_line_and_no_analysis(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       command: list[str]) -> None:
    """Issue 17 §3: hook sites, static analysis and the BPF program read amd64 code and registers; an arm64
    binary (cross-compiled from the same source) is refused with one line and status 2, never analysed
    wrongly (it used to be: every module reaching nothing) nor attached to."""
    binary = gofixtures.build(gofixtures.live_toolchain("1.27"), "capapp", "arm64")
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nmodules: {}\n")
    argv = [a.replace("POLICY", str(policy)) for a in command]
    argv = [*argv, str(binary)] if command[0] != "attach" else ["attach", "--binary", str(binary), *argv[1:]]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is an arm64 binary" in err[0] and "amd64 binaries only" in err[0], err


def test_tables_to_a_pipe_are_not_cut(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 17 §6: stdout that is not a terminal got rich's 80 columns, and module paths came out as
    "github.com/prome…". Now every cell is whole: no ellipsis, and every hook point's full name is there."""
    binary = gofixtures.build(gofixtures.live_toolchain("1.27"), "capapp")
    assert cli.main(["inspect", str(binary)]) == 0
    out = capsys.readouterr().out
    assert "…" not in out
    assert cli.main(["inspect", "--json", str(binary)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert all(h["function"] in out for h in doc["hooks"]) and all(m["path"] in out for m in doc["modules"])


def test_symbols_pc_inside_a_wrapper_names_the_wrapper(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 17 §5: logical-frame expansion elides wrapper functions as the runtime's tracebacks do, so a PC
    inside one had no frame at all; runtime.FuncForPC names the wrapper itself, and so does `symbols --pc`."""
    from gohook.gosym import GoBinary

    path = gofixtures.build(gofixtures.live_toolchain("1.27"), "capapp")
    binary = GoBinary.open(path)
    wrapper_id = max(f.func_id for f in binary.functions)  # FuncIDWrapper: the last funcID of every release
    wrappers = [f for f in binary.functions if f.func_id == wrapper_id and f.end - f.entry > 8
                and not binary.frames(f.entry + 5)][:20]  # elided by the expansion
    assert wrappers, "the fixture has wrappers whose PCs expand to nothing"
    argv = ["symbols", str(path), "--json"] + [a for f in wrappers for a in ("--pc", hex(f.entry + 5))]
    assert cli.main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [p["frames"][0]["function"] if p["frames"] else None for p in doc["pcs"]] == [f.name for f in wrappers]


def test_a_named_subcommand_loads_only_its_own_module() -> None:
    """`gohook inspect` builds its own parser only (attach's, agent's, doctor's and policy's modules are not
    imported: issue 17 §6's start-up), while `gohook --help` still lists every subcommand."""
    import subprocess
    import sys

    probe = ("import sys\nfrom gohook.commands.main import main\nmain(['inspect', '--help'])\n"
             "print(sorted(m for m in sys.modules if m.startswith('gohook.commands.')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    loaded = out.strip().splitlines()[-1]
    assert "gohook.commands.inspect" in loaded
    assert not any(f"gohook.commands.{m}'" in loaded for m in ("attach", "agent", "doctor", "policy"))
    listing = subprocess.run([sys.executable, "-m", "gohook", "--help"], capture_output=True, text=True).stdout
    assert all(name in listing for name in ("symbols", "inspect", "attach", "agent", "doctor", "policy"))
