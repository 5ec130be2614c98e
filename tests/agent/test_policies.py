"""gohook.agent.policies: the policy directory, with the last good version kept on a bad edit."""

from __future__ import annotations

from pathlib import Path

import pytest

from gohook.agent.policies import PolicyDir
from gohook.errors import PolicyError
from gohook.policy.format import CapabilityNames

VOCAB = CapabilityNames(["files.read", "files.write", "network.connect", "exec"])
GOOD = "version: 1\nmatch:\n  binary: /usr/bin/app\nmodules:\n  example.com/a: [files.read]\n"


def test_scan_loads_parses_and_reports_changes(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(GOOD)
    (tmp_path / "notes.txt").write_text("not a policy")
    (tmp_path / ".hidden.yaml").write_text("junk: [")
    d = PolicyDir(tmp_path, VOCAB)
    change = d.scan()
    assert [p.path for p in change.updated] == [str(tmp_path / "app.yaml")] and not change.errors
    assert d.in_force[str(tmp_path / "app.yaml")].match.binary == "/usr/bin/app"
    assert not d.scan()  # nothing changed: nothing to do


def test_bad_edit_keeps_the_last_good_policy_and_says_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "app.yaml"
    f.write_text(GOOD)
    d = PolicyDir(tmp_path, VOCAB)
    d.scan()
    f.write_text(GOOD.replace("files.read", "files.raed"))
    change = d.scan()
    assert not change.updated and len(change.errors) == 1
    assert change.errors[0].startswith(f"{f}:5: ") and "files.raed" in change.errors[0]
    assert "last good version stays in force" in change.errors[0]
    assert d.in_force[str(f)].policy.capabilities_of("example.com/a") == {"files.read"}
    assert not d.scan().errors  # the same bad content is reported once
    f.write_text(GOOD.replace("files.read", "files.write"))
    change = d.scan()
    assert [p.path for p in change.updated] == [str(f)]
    assert d.in_force[str(f)].policy.capabilities_of("example.com/a") == {"files.write"}


def test_removed_file_is_removed_and_a_policy_needs_a_match(tmp_path: Path) -> None:
    f = tmp_path / "app.yaml"
    f.write_text(GOOD)
    d = PolicyDir(tmp_path, VOCAB)
    d.scan()
    f.unlink()
    assert d.scan().removed == (str(f),) and not d.in_force
    (tmp_path / "nomatch.yml").write_text("version: 1\nmodules: {}\n")
    change = d.scan()
    assert change.errors and "needs a match: section" in change.errors[0] and not d.in_force


def test_two_files_matching_the_same_program_the_second_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD.replace("files.read", "exec"))
    d = PolicyDir(tmp_path, VOCAB)
    change = d.scan()
    assert [Path(p.path).name for p in change.updated] == ["a.yaml"]
    assert len(change.errors) == 1 and "b.yaml:3: matches exactly what" in change.errors[0]


def test_unreadable_directory_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the policy directory"):
        PolicyDir(tmp_path / "missing", VOCAB).scan()
