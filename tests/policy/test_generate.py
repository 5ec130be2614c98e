"""`gohook policy generate` and `gohook policy check` on a real binary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gofixtures
import pytest

from gohook.commands.main import main
from gohook.policy.format import CapabilityNames, parse_policy
from gohook.sites.catalog import load_catalog

VOCAB = CapabilityNames([c.name for c in load_catalog().capabilities])


@pytest.fixture(scope="module")
def capapp() -> Path:
    return gofixtures.build(gofixtures.oracle_toolchain(), "capapp", "default")


def test_generate_allows_exactly_what_inspect_finds(capapp: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.yaml"
    assert main(["policy", "generate", str(capapp), "-o", str(out)]) == 0
    text = out.read_text()
    policy = parse_policy(text, VOCAB, str(out))
    inspected = json.loads(subprocess.run([sys.executable, "-m", "gohook", "inspect", str(capapp), "--json"],
                                          capture_output=True, text=True, check=True).stdout)
    for m in inspected["modules"]:
        if m["functions"]:
            assert policy.capabilities_of(m["path"]) == set(m["capabilities"]), m["path"]
    assert policy.default == frozenset() and not policy.deny_unattributed
    # each rule carries its evidence
    assert "# static: files.write via github.com/acme/fileutil.Create -> os.OpenFile (flags 0x242)" in text
    assert "# static: reaches no capability" in text


def test_check_reports_patterns_matching_nothing(capapp: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("version: 1\nmodules:\n  github.com/acme/*: [files.read]\n  github.com/nobody/x: []\n")
    assert main(["policy", "check", str(p)]) == 0
    assert main(["policy", "check", str(p), "--binary", str(capapp)]) == 1
    out = capsys.readouterr().out
    assert f"{p}:4: module 'github.com/nobody/x' matches no module" in out
    assert "github.com/acme/*" not in out


def test_check_bad_policy_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("version: 1\nmodules:\n  a.com/b: [files.raed]\n")
    assert main(["policy", "check", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"gohook: {p}:3: unknown capability 'files.raed' in module a.com/b "
                           "(did you mean files.read?)")
