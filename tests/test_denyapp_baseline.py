"""The graceful-deny fixture without gohook (issue 15): what denyapp does when nobody denies anything.

testdata/go/denyapp makes one capability call per run in a dependency (github.com/evil/grab, which the
live tests deny, or github.com/good/worker, which they allow) and reports it as one JSON line, then
{"main": "continues"}. The live tests under gohook compare against this baseline, so it must hold on
every toolchain and build mode: allowed calls work, their side effects are real, errors are reported
with the errno Python's own errno module names, and the concurrent `mixed` run has no failure of its
own. Oracles: files on disk, the environment the test passes, Python's errno, an HTTP client.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import gofixtures
import pytest
from gofixtures import Toolchain

CONTINUES = {"main": "continues"}
CONTENT = b"denyapp baseline\n"


@pytest.fixture(scope="session")
def denyapp(toolchain: Toolchain) -> Path:
    """denyapp built in the default mode with the toolchain under test."""
    return gofixtures.build(toolchain, "denyapp", "default")


def run(binary: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> list[dict[str, Any]]:
    """Run denyapp and return its JSON lines; it must exit 0 and end with {"main": "continues"}."""
    proc = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[-1] == CONTINUES, proc.stdout
    return lines[:-1]


def action(binary: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one action: its single result line, with the fields every result has checked."""
    lines = run(binary, *args, env=env)
    assert len(lines) == 1, lines
    result = lines[0]
    by = args[1] if args[0] == "-by" else "grab"
    name = args[2] if args[0] == "-by" else args[0]
    module = {"grab": "github.com/evil/grab", "worker": "github.com/good/worker"}[by]
    assert (result["action"], result["by"], result["module"]) == (name, by, module)
    assert result["ok"] == (result["err"] == "")
    return result


def assert_ok(result: dict[str, Any]) -> None:
    """A call that succeeded: no error, no errno, no permission flags."""
    assert result["ok"] is True, result
    assert (result["err"], result["errno"], result["is_permission"], result["is_eperm"]) == ("", 0, False, False)


@pytest.fixture
def readable(tmp_path: Path) -> Path:
    """A file with CONTENT."""
    path = tmp_path / "readable.txt"
    path.write_bytes(CONTENT)
    return path


@pytest.mark.parametrize("by", ["grab", "worker"])
def test_read_existing_file(denyapp: Path, readable: Path, by: str) -> None:
    result = action(denyapp, "-by", by, "read", str(readable))
    assert_ok(result)
    assert result["value"] == str(len(CONTENT))


def test_create_makes_the_file(denyapp: Path, tmp_path: Path) -> None:
    target = tmp_path / "created.txt"
    assert_ok(action(denyapp, "create", str(target)))
    assert target.read_bytes() == b"created\n"
    assert_ok(action(denyapp, "-by", "worker", "remove", str(target)))
    assert not target.exists()


def test_environment_actions_see_the_environment_given(denyapp: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "DENYAPP_SECRET": "s3cr3t-15", "DENYAPP_OTHER": "x"}
    result = action(denyapp, "getenv", "DENYAPP_SECRET", env=env)
    assert_ok(result)
    assert result["value"] == "s3cr3t-15"
    assert action(denyapp, "lookupenv", "DENYAPP_SECRET", env=env)["found"] is True
    assert action(denyapp, "lookupenv", "DENYAPP_UNSET", env=env)["found"] is False
    environ = action(denyapp, "-by", "worker", "environ", "DENYAPP_OTHER", env=env)
    assert (environ["value"], environ["found"]) == (str(len(env)), True)
    assert action(denyapp, "setenv", "DENYAPP_NEW", "v-15", env=env)["value"] == "v-15"  # main reads it back
    unset = action(denyapp, "unsetenv", "DENYAPP_SECRET", env=env)
    assert (unset["ok"], unset["found"], unset["value"]) == (True, False, "")
    assert action(denyapp, "clearenv", env=env)["value"] == "0"


def test_exec_runs_the_program(denyapp: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    assert_ok(action(denyapp, "exec", "/bin/sh", "-c", f"touch '{marker}'"))
    assert marker.exists()


def test_process_and_system_actions(denyapp: Path) -> None:
    kill = action(denyapp, "kill")
    assert_ok(kill)
    assert kill["errs"] == ["", ""]
    assert action(denyapp, "uname")["value"] == os.uname().sysname
    assert action(denyapp, "hostname")["value"] == os.uname().nodename
    assert action(denyapp, "mmapexec")["value"] == str(os.sysconf("SC_PAGE_SIZE"))
    raw = action(denyapp, "rawsyscall")
    assert_ok(raw)
    assert int(raw["value"]) > 1


def test_network_actions(denyapp: Path) -> None:
    with socket.socket() as server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(10)
        host, port = server.getsockname()
        dial = action(denyapp, "dial", f"{host}:{port}")
        assert_ok(dial)
        assert dial["value"] == f"{host}:{port}"
        server.accept()[0].close()  # the connection did arrive
        host, port = sink.getsockname()
        sent = action(denyapp, "-by", "worker", "sendto", f"{host}:{port}")
        assert_ok(sent)
        assert sink.recv(100) == b"datagram\n"
        assert sent["value"] == "9"
    listen = action(denyapp, "listen")
    assert_ok(listen)
    assert listen["value"].startswith("127.0.0.1:")


def test_errors_are_reported_with_their_errno(denyapp: Path, tmp_path: Path) -> None:
    missing = action(denyapp, "read", str(tmp_path / "missing"))
    assert missing["ok"] is False
    assert (missing["errno"], missing["is_permission"], missing["is_eperm"]) == (errno.ENOENT, False, False)
    assert "no such file or directory" in missing["err"]
    invalid = action(denyapp, "setenv", "", "x")
    assert (invalid["ok"], invalid["errno"], invalid["is_eperm"]) == (False, errno.EINVAL, False)
    refused = socket_refused_port()
    dial = action(denyapp, "-by", "worker", "dial", f"127.0.0.1:{refused}")
    assert (dial["ok"], dial["errno"]) == (False, errno.ECONNREFUSED)


def socket_refused_port() -> int:
    """A loopback TCP port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("args", [["bogus"], ["-by", "nobody", "read", "/"], ["read"], ["mixed", "1", "x"], []])
def test_bad_usage_exits_2(denyapp: Path, args: list[str]) -> None:
    proc = subprocess.run([str(denyapp), *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc
    assert "usage: denyapp" in proc.stderr
    assert proc.stdout == ""


def test_mixed_has_no_failures_of_its_own(denyapp: Path, readable: Path) -> None:
    lines = run(denyapp, "mixed", "1", str(readable), str(readable))
    assert len(lines) == 1, lines
    out = lines[0]
    assert out["denied_other"] == 0 and out["denied_eperm"] == 0 and out["denied_errnos"] == {}, out
    assert out["allowed_failed"] == 0, out
    assert out["denied_ok"] == out["denied_calls"] > 0
    assert out["allowed_calls"] > 0
    assert len(out["per_goroutine"]) == 8 and all(n > 0 for n in out["per_goroutine"]), out
    assert sum(out["per_goroutine"]) == out["denied_calls"] + out["allowed_calls"]


def test_serve_counts_requests(denyapp: Path, readable: Path, tmp_path: Path) -> None:
    addr_file = tmp_path / "addr"
    proc = subprocess.Popen([str(denyapp), "serve", str(addr_file)], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not addr_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not write its address"
            time.sleep(0.02)
        base = "http://" + addr_file.read_text().strip()

        def get(path: str) -> tuple[int, str, str | None]:
            try:
                with urllib.request.urlopen(base + path, timeout=10) as r:
                    return r.status, r.read().decode(), r.headers.get("X-Errno")
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode(), e.headers.get("X-Errno")

        assert get("/ok") == (200, "ok\n", None)
        assert get(f"/deny?path={readable}") == (200, f"{len(CONTENT)}\n", None)
        status, body, err = get(f"/allowed?path={tmp_path / 'missing'}")
        assert (status, err) == (500, str(errno.ENOENT)) and "no such file" in body
        assert get("/quit")[0] == 200
        stdout, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0
    counts, continues = (json.loads(line) for line in stdout.splitlines())
    assert continues == CONTINUES
    assert counts == {"served": 4, "ok": 1, "deny": 1, "deny_failed": 0, "allowed": 1, "allowed_failed": 1, "quit": 1}


@pytest.mark.parametrize("mode", ["stripped", "pie"])
def test_other_build_modes_run(toolchain: Toolchain, mode: str, readable: Path, tmp_path: Path) -> None:
    binary = gofixtures.build(toolchain, "denyapp", mode)
    result = action(binary, "read", str(readable))
    assert_ok(result)
    assert result["value"] == str(len(CONTENT))
    marker = tmp_path / "marker"
    assert_ok(action(binary, "-by", "worker", "exec", "/bin/sh", "-c", f"touch '{marker}'"))
    assert marker.exists()
    out = run(binary, "mixed", "0.3", str(readable), str(readable))[0]
    assert (out["denied_other"], out["allowed_failed"]) == (0, 0) and out["denied_calls"] > 0, out
