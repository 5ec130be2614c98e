"""Learn mode end to end: observe a run, write a policy, enforce it (live BPF, root; never skipped in CI)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import gofixtures

from gohook.policy.format import CapabilityNames, load_policy
from gohook.sites.catalog import load_catalog

VOCAB = CapabilityNames([c.name for c in load_catalog().capabilities])


def _require_root() -> None:
    if os.geteuid() != 0:
        gofixtures.loud_skip("live BPF test needs root: run the suite as root")


def attach(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gohook", "attach", *args], capture_output=True, text=True,
                          timeout=300)


def test_learn_then_enforce(tmp_path: Path) -> None:
    _require_root()
    app = tmp_path / "capapp"
    shutil.copy2(gofixtures.build(gofixtures.oracle_toolchain(), "capapp", "default"), app)  # private copy
    data = tmp_path / "in.txt"
    data.write_text("x\n")
    learned = tmp_path / "learned.yaml"
    proc = attach("--binary", str(app), "--mode", "learn", "-o", str(learned), "--", str(app), "read", str(data))
    assert proc.returncode == 0, proc.stderr
    text = learned.read_text()
    policy = load_policy(learned, VOCAB)
    rule = policy.rule_for("github.com/acme/fileutil")
    assert rule is not None and rule.allowed == {"files.read"}
    # learned with its argument (--learn-scope arguments, the default): the one file read
    assert [p.text for p in policy.scopes_of("github.com/acme/fileutil")["files.read"]] == [str(data)]
    assert "# learned: files.read" in text and str(data) in text and "fileutil.ReadAll" in text
    assert not policy.default  # everything else stays denied
    # the learned policy lets the observed behaviour run ...
    ok = attach("--binary", str(app), "--policy", str(learned), "--json", "--", str(app), "read", str(data))
    assert ok.returncode == 0, ok.stderr
    # ... and nothing more: the same module creating a file is killed before the file exists
    made = tmp_path / "made"
    bad = attach("--binary", str(app), "--policy", str(learned), "--json", "--", str(app), "create", str(made))
    assert bad.returncode == 137, bad.stderr
    assert not made.exists()
    # ... nor the learned capability with another argument: reading a second file is killed before it returns
    other = tmp_path / "other.txt"
    other.write_text("secret\n")
    denied = attach("--binary", str(app), "--policy", str(learned), "--json", "--", str(app), "read", str(other))
    assert denied.returncode == 137, denied.stderr
    assert "read 7 bytes" not in denied.stdout


def test_stopping_learn_mode_learns_the_shutdown_path(tmp_path: Path) -> None:
    """Issue 17 §1: the end of a learn run (here --duration) stops the command with SIGTERM and keeps observing
    while it shuts down, so what its shutdown handler does is learned (a SIGKILL hid it, and the enforced
    service was then killed at its first stop); the command's own status (0), not 137, is reported."""
    _require_root()
    app = tmp_path / "argscope"
    shutil.copy2(gofixtures.build(gofixtures.live_toolchain("1.27"), "argscope", "default"), app)
    learned = tmp_path / "learned.yaml"
    proc = attach("--binary", str(app), "--mode", "learn", "--duration", "3", "-o", str(learned), "--", str(app),
                  "until-term", "ACME_SHUTDOWN_HOOK")
    assert proc.returncode == 0, proc.stderr
    assert "stopped" in proc.stderr and "with SIGTERM" in proc.stderr and "SIGKILL" not in proc.stderr, proc.stderr
    policy = load_policy(learned, VOCAB)
    env = policy.scopes_of("github.com/acme/config").get("env.read")
    assert env is not None and [p.text for p in env] == ["ACME_SHUTDOWN_HOOK"], learned.read_text()
