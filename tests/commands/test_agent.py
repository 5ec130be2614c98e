"""`gohook agent` with bad input: one `gohook: ...` line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import gofixtures
import pytest

from gohook.commands.main import main


@pytest.mark.parametrize("extra, expected", [
    (["--metrics", "foo"], "--metrics 'foo': expected ADDR:PORT"),
    (["--cgroup", "/nonexistent-cgroup"], "cannot open cgroup /nonexistent-cgroup"),
    (["--events", "/nonexistent-dir/events.jsonl"], "--events /nonexistent-dir/events.jsonl: cannot open"),
    (["--pin-root", "/tmp/gohook-not-bpffs"], "is not on a BPF file system"),
])
def test_bad_agent_options_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
                                        expected: str) -> None:
    gofixtures.require_root("the agent's preflight, which runs before these options are read")
    assert main(["agent", "--policy-dir", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gohook: ") and expected in err[0], err


def test_missing_policy_dir(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agent", "--policy-dir", "/nonexistent-policies"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gohook: --policy-dir /nonexistent-policies: not a directory"]
