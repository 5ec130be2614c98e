"""The real live view of `gohook attach`, driven under tmux (send-keys / capture-pane).

Live BPF test: runs as root, in CI always (CI=true makes a missing
prerequisite a failure); outside CI it skips loudly when not root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import gofixtures
import pytest

REPO = Path(__file__).resolve().parents[2]


def _require_root_and_tmux() -> None:
    problems = []
    if os.geteuid() != 0:
        problems.append("not root")
    if shutil.which("tmux") is None:
        problems.append("tmux missing (scripts/setup.sh installs it)")
    if problems:
        if gofixtures.in_ci():
            pytest.fail("live view test cannot run in CI: " + ", ".join(problems))
        pytest.skip("LIVE VIEW TEST SKIPPED: " + ", ".join(problems))


SOCKET = f"gohook-test-{os.getpid()}"  # a private tmux server: its size is ours, whatever else runs


def _tmux(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True, check=check)


def _capture(session: str) -> str:
    return _tmux("capture-pane", "-p", "-t", session).stdout


def _wait_for(session: str, needle: str, tries: int = 300) -> str:
    screen = ""
    for _ in range(tries):  # bounded: gives up after tries * 0.1 s
        screen = _capture(session)
        if needle in screen:
            return screen
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} never appeared; screen:\n{screen}")


def test_live_view_under_tmux(tmp_path: Path) -> None:
    _require_root_and_tmux()
    tc = gofixtures.oracle_toolchain()
    app = tmp_path / "capapp"
    shutil.copy2(gofixtures.build(tc, "capapp", "default"), app)  # private copy: uprobes are per file
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\naction: audit\nmodules:\n  github.com/acme/fileutil: [files.read]\n")
    data = tmp_path / "in.txt"
    data.write_text("hello\n")
    session = f"gohook-test-{os.getpid()}"
    log = tmp_path / "after.txt"
    cmd = (f"unset COLUMNS LINES; cd {REPO} && {sys.executable} -m gohook attach --binary {app} --policy {policy}; "
           f"echo EXITED=$? > {log}; sleep 60")
    _tmux("new-session", "-d", "-s", session, "-x", "200", "-y", "80", cmd, check=True)
    try:
        _wait_for(session, "hooks ")
        subprocess.run([str(app), "loop", "50", str(data)], check=True, capture_output=True)
        subprocess.run([str(app), "create", str(tmp_path / "made")], check=True, capture_output=True)
        screen = _wait_for(session, "used files.write")
        assert "github.com/acme/fileutil" in screen
        assert "files.read" in screen and "400" in screen  # 8 goroutines x 50 reads, aggregated in one cell
        assert "latest violation" in screen and "fileutil.Create" in screen
        assert (tmp_path / "made").exists()  # audit: the call went through
        _tmux("send-keys", "-t", session, "q", check=True)
        for _ in range(300):
            if log.exists():
                break
            time.sleep(0.1)
        assert log.read_text().strip() == "EXITED=0"
        screen = _capture(session)
        assert "events from" in screen  # the summary printed after quitting
    finally:
        _tmux("kill-server")
