"""`action: error`, live (issue 15 §3): a denied call fails with EPERM in the dependency, the process runs on.

The denyapp program (testdata/go/denyapp) makes capability calls in its dependency github.com/evil/grab
(denied: the policy gives it nothing but opening /dev/null, which os/exec needs) and the same calls in
github.com/good/worker (allowed), and prints what each call returned. Under `gohook attach -- CMD` with
`action: error` the tests check, with oracles that are not gohook: the exact error the dependency got
("operation not permitted", errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EPERM), the Errno
1), what an environment read returned instead of the value, that nothing happened (no file created or
removed, no connection at a loopback listener, no child started), that main went on and the process
exited 0; and that gohook reported each denial with decision "error" and killed nothing. On every
toolchain of the suite, default, stripped and PIE builds.

Beyond one call at a time: an HTTP service whose handler calls a denied dependency function answers that
request with 500 and the next 1,000 with 200, in the same process (the --pid path: gohook traces a
running process); 8 goroutines mixing denied and allowed calls for 3 seconds: every denied call errors
with EPERM, no allowed call fails, gohook returned exactly as many denials as the program counted (no
signal lost, no deadlock); and a process of the binary that gohook does not trace is killed, not failed
open.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import gofixtures
import pytest
from attach_helpers import (
    ATTACHED_TIMEOUT,
    KILLED,
    STOP_TIMEOUT,
    Listener,
    attach_cmd,
    gohook_argv,
    private_copy,
)

pytestmark = pytest.mark.bpf

MAIN, GRAB, WORKER = "example.com/denyapp", "github.com/evil/grab", "github.com/good/worker"
VERSIONS = ("1.27", "1.24", "1.21", "1.19")  # every toolchain of the suite
MODES = ("default", "stripped", "pie")
VAR, VAR_VALUE = "DENYAPP_SECRET", "s3cr3t-91f2"
EPERM_TEXT = "operation not permitted"

Result = dict[str, Any]


@pytest.fixture(scope="module", autouse=True)
def _root() -> None:
    gofixtures.require_root("the uprobes and the tracer of action error")


def write_policy(path: Path, *, grab_action: str | None = None, top: str = "error") -> Path:
    """main and worker may do anything; grab may open /dev/null only (os/exec opens it for the child's stdin,
    stdout and stderr before the exec)."""
    grab = [f"    action: {grab_action}"] if grab_action else []
    path.write_text("\n".join([
        "version: 1", f"action: {top}", "modules:",
        f"  {MAIN}: [all]", f"  {WORKER}: [all]", f"  {GRAB}:", *grab,
        '    files.read: ["/dev/null"]', '    files.write: ["/dev/null"]', ""]), encoding="utf-8")
    return path


def results(lines: list[str]) -> list[Result]:
    out = []
    for line in lines:
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def assert_eperm(r: Result, text: str | None = None) -> None:
    """r failed with EPERM, as every Go caller sees it."""
    assert not r["ok"] and r["errno"] == 1 and r["is_eperm"] and r["is_permission"], r
    assert EPERM_TEXT in r["err"], r
    if text is not None:
        assert r["err"] == text, r


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("version", VERSIONS)
def test_every_class_returns_eperm(tmp_path: Path, version: str, mode: str) -> None:
    toolchain = gofixtures.live_toolchain(version)
    binary = private_copy(gofixtures.build(toolchain, "denyapp", mode), tmp_path / "bin")
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    keep = tmp_path / "keep.txt"
    keep.write_text("keep me\n")
    created, marker = tmp_path / "created.txt", tmp_path / "marker"
    listener = Listener()
    script = [
        f"read\t{secret}", f"create\t{created}", f"remove\t{keep}", f"stat\t{secret}", f"dial\t{listener.addr}",
        "listen", f"exec\t/bin/sh\t-c\ttouch {marker}", f"getenv\t{VAR}", f"lookupenv\t{VAR}", f"environ\t{VAR}",
        f"setenv\t{VAR}\tchanged", f"unsetenv\t{VAR}", f"-by\tworker\tenviron\t{VAR}", "clearenv", "kill",
        "uname", "mmapexec", "rawsyscall",
        # the allowed twin, in the same process after every denial: it works
        f"-by\tworker\tread\t{secret}", f"-by\tworker\tgetenv\t{VAR}",
    ]
    try:
        ran = attach_cmd(binary, write_policy(tmp_path / "p.yaml"), [str(binary), "script"], tmp_path,
                         report_allowed=False, stdin_text="\n".join(script) + "\n", env={VAR: VAR_VALUE})
        got = listener.received()
    finally:
        listener.close()
    out = results(ran.child_stdout)
    assert ran.status == 0, ran.stderr
    assert out[-1] == {"main": "continues"}, ran.stderr
    by = {(r["by"], r["action"]): r for r in out[:-1]}
    assert len(by) == len(script), out  # one result per line, each (dependency, action) once
    g = {action: r for (who, action), r in by.items() if who == "grab"}
    assert_eperm(g["read"], f"open {secret}: {EPERM_TEXT}")
    assert_eperm(g["create"], f"open {created}: {EPERM_TEXT}")
    assert_eperm(g["remove"], f"remove {keep}: {EPERM_TEXT}")
    assert_eperm(g["stat"], f"stat {secret}: {EPERM_TEXT}")
    assert_eperm(g["dial"], f"dial tcp {listener.addr}: connect: {EPERM_TEXT}")
    assert_eperm(g["listen"], f"listen tcp 127.0.0.1:0: {EPERM_TEXT}")
    assert_eperm(g["exec"], f"fork/exec /bin/sh: {EPERM_TEXT}")
    for action in ("setenv", "unsetenv", "uname", "mmapexec", "rawsyscall", "kill"):
        assert_eperm(g[action])
    assert g["kill"]["errs"] == [EPERM_TEXT, EPERM_TEXT], g["kill"]
    # environment reads that cannot fail read as unset; writes leave the environment as it was
    assert g["getenv"]["ok"] and g["getenv"]["value"] == "", g["getenv"]
    assert g["lookupenv"]["value"] == "false" and g["lookupenv"]["found"] is False, g["lookupenv"]
    assert g["environ"]["value"] == "0" and g["environ"]["found"] is False, g["environ"]
    assert g["setenv"]["value"] == VAR_VALUE and g["unsetenv"]["found"] is True
    environ = by[("worker", "environ")]
    assert environ["found"] is True and int(environ["value"]) > 1
    assert g["clearenv"]["value"] == environ["value"], (g["clearenv"], environ)  # nothing cleared
    # no side effect
    assert not created.exists() and keep.exists() and not marker.exists()
    assert got == [], got
    # the allowed twin works, after all of that, in the same process
    assert by[("worker", "read")]["ok"] and by[("worker", "read")]["value"] == str(len("top secret\n"))
    assert by[("worker", "getenv")]["value"] == VAR_VALUE
    # gohook: every denial of grab an "error" with EPERM where the function returns an error; nothing killed
    denials = [e for e in ran.events if e["decision"] != "allow"]
    assert denials and all(e["decision"] == "error" and e["module"] == GRAB for e in denials), denials
    # errno 1 where the function returns an error; none for a read that shows unset, a Clearenv that did nothing
    assert all(e["returned"] and (e["errno"] == 1) == ("EPERM" in e["returned"]) for e in denials), denials
    functions = {e["function"] for e in denials}
    assert {"syscall.openat", "syscall.unlinkat", "syscall.connect", "syscall.forkExec", "syscall.Getenv",
            "syscall.Setenv", "syscall.Clearenv", "syscall.Uname", "syscall.mmap"} <= functions, functions
    assert {e["errno"] for e in denials if e["function"] in ("syscall.Getenv", "syscall.Clearenv")} == {None}
    assert ran.summary().killed == 0
    # the path of this kernel (6.18 without commit 7384893d970e; gohook doctor's deny-path check agrees)
    assert ("action error: this kernel refuses uprobe programs that write registers: denied calls return "
            "through gohook's ptrace tracer") in ran.stderr
    calls = {(e["tid"], e["time"]) for e in denials}  # (a raw system call reports each capability it lacks)
    assert f"{len(calls)} denied calls returned an error" in ran.stderr


def test_sendto_without_connect_returns_eperm(tmp_path: Path) -> None:
    """A datagram to an address without connect (network.connect) fails; the sink receives nothing."""
    import socket

    binary = private_copy(gofixtures.build(gofixtures.live_toolchain("1.27"), "denyapp"), tmp_path / "bin")
    policy = tmp_path / "p.yaml"
    policy.write_text("\n".join(["version: 1", "action: error", "modules:", f"  {MAIN}: [all]",
                                 f"  {GRAB}: [network.listen]", ""]), encoding="utf-8")
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    host, port = sink.getsockname()
    try:
        ran = attach_cmd(binary, policy, [str(binary), "sendto", f"{host}:{port}"], tmp_path, report_allowed=False)
        with pytest.raises(BlockingIOError):
            sink.recv(100)
    finally:
        sink.close()
    out = results(ran.child_stdout)
    assert ran.status == 0 and out[-1] == {"main": "continues"}, ran.stderr
    assert_eperm(out[0])
    assert [e["function"] for e in ran.events] == ["syscall.sendto"], ran.events


class Gohook:
    """A background `gohook attach --pid PID --json` session."""

    def __init__(self, binary: Path, policy: Path, pid: int, workdir: Path) -> None:
        self.err_path = workdir / "gohook.stderr"
        self._err = open(self.err_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(gohook_argv(binary, policy, pids=[pid], report_allowed=False),
                                     stdout=subprocess.PIPE, stderr=self._err, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + ATTACHED_TIMEOUT
        while "action error: tracing every thread" not in self.stderr():
            assert self.proc.poll() is None, self.stderr()
            assert time.monotonic() < deadline, self.stderr()
            time.sleep(0.1)

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def stop(self) -> tuple[list[dict[str, Any]], str]:
        self.proc.send_signal(2)
        out, _ = self.proc.communicate(timeout=STOP_TIMEOUT)
        self._err.close()
        return [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")], self.stderr()


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path)
    resp = conn.getresponse()
    return resp.status, resp.read()


def test_http_service_keeps_serving(tmp_path: Path) -> None:
    """--pid on a running service: the request whose handler calls the denied dependency gets a 500, the next
    1,000 get 200, and it is the same process all along (never restarted, never killed)."""
    binary = private_copy(gofixtures.build(gofixtures.live_toolchain("1.27"), "denyapp"), tmp_path / "bin")
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    addr_file = tmp_path / "addr"
    service = subprocess.Popen([str(binary), "serve", str(addr_file)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not addr_file.exists():
            assert service.poll() is None and time.monotonic() < deadline, service.communicate()
            time.sleep(0.05)
        host, port = addr_file.read_text().strip().rsplit(":", 1)
        session = Gohook(binary, write_policy(tmp_path / "p.yaml"), service.pid, tmp_path)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        status, body = _get(conn, f"/deny?path={secret}")
        assert status == 500 and EPERM_TEXT.encode() in body, body
        ok = [_get(conn, "/ok")[0] for _ in range(1000)]
        assert ok == [200] * 1000
        status, body = _get(conn, f"/allowed?path={secret}")
        assert status == 200, body
        assert service.poll() is None  # the same process, still running
        events, stderr = session.stop()
        assert service.poll() is None, "gohook's detach stopped the service"
        _get(conn, "/quit")
        out, err = service.communicate(timeout=30)
    finally:
        if service.poll() is None:
            service.kill()
            service.communicate()
    assert service.returncode == 0, (out, err)
    assert [(e["decision"], e["function"], e["errno"]) for e in events] == [("error", "syscall.openat", 1)], events
    assert "1 denied calls returned an error" in stderr


def test_goroutines_mixing_denied_and_allowed_calls(tmp_path: Path) -> None:
    """8 goroutines for 3 s (4 denied, 4 allowed, concurrently): every denied call is EPERM, no allowed call
    fails, gohook returned as many denials as the program made (none lost), the program exits 0."""
    binary = private_copy(gofixtures.build(gofixtures.live_toolchain("1.27"), "denyapp"), tmp_path / "bin")
    secret, ok = tmp_path / "secret.txt", tmp_path / "ok.txt"
    secret.write_text("top secret\n")
    ok.write_text("fine\n")
    ran = attach_cmd(binary, write_policy(tmp_path / "p.yaml"), [str(binary), "mixed", "3", str(secret), str(ok)],
                     tmp_path, report_allowed=False)
    out = results(ran.child_stdout)
    assert ran.status == 0 and out[-1] == {"main": "continues"}, ran.stderr
    counts = out[0]
    assert counts["denied_calls"] > 100 and counts["allowed_calls"] > 100, counts
    assert counts["denied_eperm"] == counts["denied_calls"] and counts["denied_other"] == 0, counts
    assert counts["allowed_failed"] == 0, counts
    assert f"{counts['denied_calls']} denied calls returned an error" in ran.stderr, ran.stderr
    assert ran.summary().killed == 0


def test_untraced_process_of_the_binary_is_killed(tmp_path: Path) -> None:
    """action error where gohook traces nothing (a system-wide session): the denial kills, it never fails
    open, and the event says why."""
    binary = private_copy(gofixtures.build(gofixtures.live_toolchain("1.27"), "denyapp"), tmp_path / "bin")
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    err_path = tmp_path / "gohook.stderr"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(gohook_argv(binary, write_policy(tmp_path / "p.yaml"), report_allowed=False),
                                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + ATTACHED_TIMEOUT
        while "attached" not in err_path.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, err_path.read_text()
            time.sleep(0.1)
        target = subprocess.run([str(binary), "read", str(secret)], capture_output=True, text=True, timeout=60,
                                env={**os.environ})
    finally:
        proc.send_signal(2)
        out, _ = proc.communicate(timeout=STOP_TIMEOUT)
    assert target.returncode == KILLED, (target.stdout, target.stderr)
    assert target.stdout == ""
    events = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    assert [(e["decision"], e["function"]) for e in events] == [("deny", "syscall.openat")], events
    assert "not traced by gohook" in (events[0]["note"] or ""), events


def test_per_module_action_kill_beside_error(tmp_path: Path) -> None:
    """The module's own action wins: grab's `action: kill` under a top-level `action: error` kills."""
    binary = private_copy(gofixtures.build(gofixtures.live_toolchain("1.21"), "denyapp"), tmp_path / "bin")
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    ran = attach_cmd(binary, write_policy(tmp_path / "p.yaml", grab_action="kill"),
                     [str(binary), "read", str(secret)], tmp_path, report_allowed=False)
    assert ran.status == 128 + 9, ran.stderr
    assert results(ran.child_stdout) == []
    assert [e["decision"] for e in ran.events] == ["deny"], ran.events


def test_blocking_sigsys_does_not_let_the_call_through(tmp_path: Path) -> None:
    """A module that knows the mechanism blocks SIGSYS on its thread (it holds `syscall` for the mask), then
    makes a denied call: the signal could not arrive before the call ran, so the kernel kills instead."""
    binary = private_copy(gofixtures.build(gofixtures.live_toolchain("1.27"), "denyapp"), tmp_path / "bin")
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    policy = tmp_path / "p.yaml"
    policy.write_text("\n".join(["version: 1", "action: error", "modules:", f"  {MAIN}: [all]",
                                 f"  {GRAB}: [syscall]", ""]), encoding="utf-8")
    ran = attach_cmd(binary, policy, [str(binary), "blockread", str(secret)], tmp_path, report_allowed=False)
    assert ran.status == 128 + 9, ran.stderr
    assert results(ran.child_stdout) == [], ran.child_stdout  # nothing read, nothing printed
    assert [(e["decision"], e["function"]) for e in ran.events] == [("deny", "syscall.openat")], ran.events
    assert "blocked SIGSYS" in (ran.events[0]["note"] or "")


def test_a_thread_gohook_does_not_trace_is_killed_even_if_its_process_is_marked(tmp_path: Path) -> None:
    """The kernel checks the thread itself (traced, by a thread of gohook's process), not only the process
    mark: a thread that a SIGSYS would reach untraced (CLONE_UNTRACED, another tracer) would let a
    signal.Notify handler swallow the signal and the call run. Here the process is marked traced by hand and
    nobody traces it: the denial kills (SIGKILL), it never hands the call to a handler (SIGSYS)."""
    from gohook.bpf.loader import attach
    from gohook.session import AttachOptions, prepare

    binary = private_copy(gofixtures.build(gofixtures.live_toolchain("1.27"), "denyapp"), tmp_path / "bin")
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    _, build = prepare(AttachOptions(binary=str(binary), policy=str(write_policy(tmp_path / "p.yaml")),
                                     allow_unmatched=True))
    assert build.plan.error_action
    with attach(build.plan) as att:
        target = subprocess.Popen([str(binary), "script"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert target.stdin is not None
        try:
            att.set_traced(target.pid, True)
            out, _ = target.communicate(f"read\t{secret}\n", timeout=60)
        finally:
            if target.poll() is None:
                target.kill()
        counters = att.counters()
    assert target.returncode == KILLED, (target.returncode, out)
    assert out == ""
    assert counters.errors == 0 and counters.denied == 1, counters
