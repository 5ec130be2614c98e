"""gohook agent, live (issue 16): the agent enforces a policy directory on processes it did not start.

Fixture: testdata/go/denyapp (github.com/evil/grab makes the calls the policy denies, github.com/good/worker
the same calls, allowed). Oracles outside gohook: exit statuses (-9 for a kill), files on disk, the agent's
own process id (not restarted), /metrics parsed with prometheus-client's parser.

Every process the tests start runs in a cgroup v2 of their own, and the agent is scoped to it (--cgroup):
other processes of the machine are never held. Pins go to a bpffs directory of the test, removed after.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import gofixtures
import pytest
from attach_helpers import KILLED, RUN_TIMEOUT

pytestmark = pytest.mark.bpf

ROOT = Path(__file__).resolve().parent.parent
MAIN, GRAB, WORKER = "example.com/denyapp", "github.com/evil/grab", "github.com/good/worker"
CGROUP2 = Path("/sys/fs/cgroup/unified")
READY_TIMEOUT = 180.0  # seconds for the agent to compile, probe and say ready (2 shared cores)
RELOAD_TIMEOUT = 30.0  # a reload is asked to land within a second; the test only waits for the agent's line


@pytest.fixture(scope="module", autouse=True)
def _root() -> None:
    gofixtures.require_root("the agent's BPF programs")


def write_policy(path: Path, binary: Path, grab: list[str], *, action: str = "kill") -> None:
    """main and worker may do anything; grab gets `grab` (list form)."""
    path.write_text("\n".join([
        "version: 1", "match:", f"  binary: {binary}", f"action: {action}", "modules:",
        f"  {MAIN}: [all]", f"  {WORKER}: [all]", f"  {GRAB}: [{', '.join(grab)}]", ""]), encoding="utf-8")


class Agent:
    """A `gohook agent` process, its stderr lines collected by a thread, its stdout (JSON events) too."""

    def __init__(self, policy_dir: Path, cgroup: Path, pin_root: Path, workdir: Path,
                 extra: tuple[str, ...] = ("--json",)) -> None:
        self.err_lines: list[str] = []
        self.events: list[dict[str, object]] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gohook", "-v", "agent", "--policy-dir", str(policy_dir), *extra,
             "--metrics", "127.0.0.1:0", "--cgroup", str(cgroup), "--pin-root", str(pin_root)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        self._threads = [threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True)]
        for t in self._threads:
            t.start()
        self.wait_for("ready:", READY_TIMEOUT)
        m = re.search(r"metrics on (http://\S+)/metrics", self.stderr)
        assert m is not None, self.stderr
        self.metrics_url = m.group(1)

    def _read(self, stream, is_json: bool) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            if is_json:
                if line.startswith("{"):
                    self.events.append(json.loads(line))
            else:
                self.err_lines.append(line.rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.err_lines)

    def wait_for(self, text: str, timeout: float, after: int = 0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.err_lines[after:]:
                if text in line:
                    return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"agent never said {text!r} (exit {self.proc.poll()}):\n{self.stderr[-4000:]}")

    def denies(self, at_least: int, timeout: float = 10.0) -> list[dict[str, object]]:
        """The deny events, once there are at_least of them (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len([e for e in self.events if e["decision"] == "deny"]) < at_least:
            time.sleep(0.1)
        return [e for e in self.events if e["decision"] == "deny"]

    def scrape(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        from prometheus_client.parser import text_string_to_metric_families

        text = urllib.request.urlopen(self.metrics_url + "/metrics", timeout=10).read().decode()
        out: dict[str, list[tuple[dict[str, str], float]]] = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out.setdefault(s.name, []).append((dict(s.labels), s.value))
        return out

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=120)
        for t in self._threads:
            t.join(timeout=5)
        return rc


@pytest.fixture
def cgroup() -> Iterator[Path]:
    if not (CGROUP2 / "cgroup.procs").exists():
        pytest.fail("cgroup v2 is not mounted at /sys/fs/cgroup/unified")
    path = CGROUP2 / f"gohook-agent-test-{os.getpid()}-{time.monotonic_ns()}"
    path.mkdir()
    try:
        yield path
    finally:
        for pid in (path / "cgroup.procs").read_text().split():
            with_suppress_kill(int(pid))
        for _ in range(100):
            try:
                path.rmdir()
                break
            except OSError:
                time.sleep(0.05)


def with_suppress_kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def pin_root() -> Iterator[Path]:
    path = Path(f"/sys/fs/bpf/gohook-agent-test-{os.getpid()}-{time.monotonic_ns()}")
    yield path
    from gohook.bpf.links import unpin_dir

    if path.exists():
        for sub in path.iterdir():
            unpin_dir(str(sub))
        path.rmdir()


def in_cgroup(cgroup: Path, argv: list[str], *, unshare: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run argv as a process of cgroup (the shell moves itself in, then execs argv); with unshare, a shell
    script run first inside a new mount namespace (e.g. a private tmpfs with a copy of the binary)."""
    script = f'echo $$ > {cgroup}/cgroup.procs && exec "$@"'
    if unshare is not None:
        script = unshare + "\n" + script
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv]
    else:
        cmd = ["sh", "-c", script, "sh", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def outcome(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    assert lines, f"no output (status {proc.returncode}): {proc.stderr}"
    return lines[0]


@pytest.fixture
def app(tmp_path: Path) -> Path:
    tcs = gofixtures.toolchains()
    if not tcs:
        pytest.fail("no Go toolchain installed: run scripts/setup.sh")
    dest = tmp_path / "bin" / "denyapp"
    dest.parent.mkdir()
    shutil.copy(gofixtures.build(tcs[-1], "denyapp", "default"), dest)
    return dest


@pytest.fixture
def policy(tmp_path: Path, app: Path) -> Path:
    """policies/denyapp.yaml in a fresh policy directory: app's binary, grab may only read files."""
    path = tmp_path / "policies" / "denyapp.yaml"
    path.parent.mkdir()
    write_policy(path, app, ["files.read"])
    return path


def test_agent_enforces_new_processes_and_a_containers_copy_from_the_first_call(
        tmp_path: Path, app: Path, cgroup: Path, pin_root: Path, policy: Path) -> None:
    policies = policy.parent
    agent = Agent(policies, cgroup, pin_root, tmp_path)
    try:
        # started after the agent: its file was probed at start, so it is covered with no hold
        secret = tmp_path / "created-by-grab"
        denied = in_cgroup(cgroup, [str(app), "create", str(secret)])
        assert denied.returncode == KILLED and not secret.exists(), denied
        ok_file = tmp_path / "created-by-worker"
        allowed = in_cgroup(cgroup, [str(app), "-by", "worker", "create", str(ok_file)])
        assert allowed.returncode == 0 and ok_file.exists(), allowed
        assert outcome(allowed)["ok"] is True

        # a copy in a private mount namespace: another file (invisible from here), same build ID; its first
        # call is the denied one
        in_ns = tmp_path / "created-in-namespace"
        setup = f"mkdir -p /mnt && mount -t tmpfs gohook-test /mnt && cp {app} /mnt/app"
        copy = in_cgroup(cgroup, ["/mnt/app", "create", str(in_ns)], unshare=setup)
        assert copy.returncode == KILLED and not in_ns.exists(), copy
        agent.wait_for("probing /proc/", 10)  # the agent probed the copy through /proc/PID/exe
        copy_ok = in_cgroup(cgroup, ["/mnt/app", "-by", "worker", "create", str(in_ns)], unshare=setup)
        assert copy_ok.returncode == 0 and in_ns.exists(), copy_ok

        # a private root (a container's root file system): the copy at /app inside it
        root = tmp_path / "root"
        root.mkdir()
        shutil.copy(app, root / "app")
        in_root = in_cgroup(cgroup, ["unshare", "--mount", f"--root={root}", "/app", "create", "/created"])
        assert in_root.returncode == KILLED and not (root / "created").exists(), in_root
        ok_root = in_cgroup(cgroup, ["unshare", "--mount", f"--root={root}", "/app", "-by", "worker", "create",
                                     "/created"])
        assert ok_root.returncode == 0 and (root / "created").exists(), ok_root

        denies = agent.denies(3)
        assert len(denies) >= 3, agent.events
        assert {e["module"] for e in denies} == {GRAB}
        assert all(e["policy"] == str(policies / "denyapp.yaml") and e["build_id"] for e in denies)
        assert all(str(e["cgroup"]).endswith(cgroup.name) for e in denies)
        holds = agent.scrape()["gohook_agent_exec_holds_total"]
        assert sum(v for labels, v in holds if labels["result"] == "released") >= 1
    finally:
        assert agent.stop() == 0, agent.stderr


def test_policy_edit_applies_live_and_a_bad_edit_keeps_the_last_good_policy(
        tmp_path: Path, app: Path, cgroup: Path, pin_root: Path, policy: Path) -> None:
    policies = policy.parent
    agent = Agent(policies, cgroup, pin_root, tmp_path)
    pid = agent.proc.pid
    try:
        target = tmp_path / "file"
        assert in_cgroup(cgroup, [str(app), "create", str(target)]).returncode == KILLED
        assert not target.exists()

        mark = len(agent.err_lines)
        write_policy(policy, app, ["files.read", "files.write"])
        line = agent.wait_for("now under", RELOAD_TIMEOUT, mark)
        assert "in place" in line, line
        ran = in_cgroup(cgroup, [str(app), "create", str(target)])
        assert ran.returncode == 0 and target.exists() and outcome(ran)["ok"] is True, ran

        mark = len(agent.err_lines)
        policy.write_text(policy.read_text().replace("files.write", "files.wrte"))
        line = agent.wait_for("ERROR", RELOAD_TIMEOUT, mark)
        assert f"{policy}:8:" in line and "files.wrte" in line and "last good version" in line, line
        target.unlink()
        still = in_cgroup(cgroup, [str(app), "create", str(target)])  # the last good policy allows it
        assert still.returncode == 0 and target.exists(), still
        denied = in_cgroup(cgroup, [str(app), "exec", "/bin/true"])  # and still denies the rest
        assert denied.returncode == KILLED, denied

        assert agent.proc.poll() is None and agent.proc.pid == pid  # nothing restarted
        agent.denies(2)  # the events of the two kills have reached the agent's loop
        m = agent.scrape()
        reloads = {labels["result"]: v for labels, v in m["gohook_agent_policy_reloads_total"]}
        assert reloads["success"] >= 2 and reloads["failure"] >= 1, reloads
        calls = m["gohook_agent_calls_total"]
        grab_denied = [v for labels, v in calls if labels["module"] == GRAB and labels["decision"] == "deny"]
        assert sum(grab_denied) >= 2, calls
        allowed = [v for labels, v in calls if labels["decision"] == "allow"]
        assert sum(allowed) >= 1, calls
        assert any(v >= 1 for _, v in m["gohook_agent_probes"])
        assert m["gohook_agent_last_reload_timestamp_seconds"][0][1] > time.time() - 600
        health = urllib.request.urlopen(agent.metrics_url + "/healthz", timeout=10)
        assert health.status == 200
    finally:
        assert agent.stop() == 0, agent.stderr


def test_enforcement_survives_the_agents_death_and_a_new_agent_takes_over(
        tmp_path: Path, app: Path, cgroup: Path, pin_root: Path, policy: Path) -> None:
    policies = policy.parent
    target = tmp_path / "file"
    agent = Agent(policies, cgroup, pin_root, tmp_path)
    assert agent.stop(signal.SIGKILL) == -signal.SIGKILL
    pinned = [p for p in pin_root.iterdir()]
    assert len(pinned) == 1 and any(pinned[0].iterdir())
    # no agent: the pinned probes still kill
    assert in_cgroup(cgroup, [str(app), "create", str(target)]).returncode == KILLED and not target.exists()
    assert in_cgroup(cgroup, [str(app), "-by", "worker", "create", str(target)]).returncode == 0

    second = Agent(policies, cgroup, pin_root, tmp_path)
    try:
        assert "took over from an earlier agent: removed 1 pinned sessions" in second.stderr
        now = [p for p in pin_root.iterdir()]
        assert len(now) == 1 and now != pinned  # the old pins are gone, the new agent's are there
        target.unlink()
        assert in_cgroup(cgroup, [str(app), "create", str(target)]).returncode == KILLED and not target.exists()
    finally:
        assert second.stop() == 0, second.stderr  # a clean stop keeps the pins, as documented
    assert "stay enforced through pinned probes" in second.stderr
    assert in_cgroup(cgroup, [str(app), "create", str(target)]).returncode == KILLED and not target.exists()


def test_a_replaced_binary_is_noticed_and_its_new_file_enforced(
        tmp_path: Path, app: Path, cgroup: Path, pin_root: Path, policy: Path) -> None:
    policies = policy.parent
    agent = Agent(policies, cgroup, pin_root, tmp_path)
    try:
        new = app.with_name("new-build")
        tcs = gofixtures.toolchains()
        shutil.copy(gofixtures.build(tcs[0], "denyapp", "pie"), new)  # another build of the program
        mark = len(agent.err_lines)
        new.replace(app)
        agent.wait_for("was replaced", RELOAD_TIMEOUT, mark)
        target = tmp_path / "file"
        ran = in_cgroup(cgroup, [str(app), "create", str(target)])
        assert ran.returncode == KILLED and not target.exists(), ran
        m = agent.scrape()
        assert sum(v for _, v in m["gohook_agent_binary_replaced_total"]) == 1
    finally:
        assert agent.stop() == 0, agent.stderr


def test_a_process_that_removes_a_probe_is_killed_by_the_agent(
        tmp_path: Path, app: Path, cgroup: Path, pin_root: Path, policy: Path) -> None:
    """The probe-integrity check runs for every process of a probed file: restoring the original byte under a
    uprobe in a running process's text (through /proc/PID/mem, as a module rewriting its own code would) is
    a tamper event, and in enforce mode the process is killed."""
    from gohook.gosym.elfimage import ElfImage
    from gohook.session import AttachOptions, prepare

    policies = policy.parent
    _, build = prepare(AttachOptions(binary=str(app), policy=str(policies / "denyapp.yaml")))
    hook = next(h for h in build.plan.hooks if h.function == "syscall.Getenv")
    image = ElfImage.open(app)
    vaddr = image.offset_to_vaddr(hook.file_offset)
    original = app.read_bytes()[hook.file_offset]
    agent = Agent(policies, cgroup, pin_root, tmp_path)
    addr_file = tmp_path / "addr"
    script = f'echo $$ > {cgroup}/cgroup.procs && exec "$@"'
    service = subprocess.Popen(["sh", "-c", script, "sh", str(app), "serve", str(addr_file)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while not addr_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert addr_file.exists(), service.stderr
        with open(f"/proc/{service.pid}/mem", "r+b", buffering=0) as mem:
            mem.seek(vaddr)
            assert mem.read(1) == b"\xcc"  # the uprobe's int3, as the process sees its text
            mem.seek(vaddr)
            mem.write(bytes([original]))
        assert service.wait(timeout=RUN_TIMEOUT) == KILLED
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not [e for e in agent.events if e.get("tamper")]:
            time.sleep(0.1)
        [ev] = [e for e in agent.events if e.get("tamper")]
        assert ev["decision"] == "deny" and ev["function"] == "syscall.Getenv" and ev["pid"] == service.pid, ev
        assert str(ev["tamper"]).startswith("probe removed at syscall.Getenv"), ev
    finally:
        if service.poll() is None:
            service.kill()
        assert agent.stop() == 0, agent.stderr


def test_processes_running_before_the_agent_are_enforced_and_events_go_to_a_file_reopened_on_sighup(
        tmp_path: Path, app: Path, cgroup: Path, pin_root: Path) -> None:
    """A main_module policy covers a service started before the agent (probed when the agent starts); with
    --events FILE the deny event is appended there, and after a rotation (mv + SIGHUP) the next one goes to
    a new file at the path."""
    import http.client

    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "by-module.yaml").write_text("\n".join([
        "version: 1", "match:", f"  main_module: {MAIN}", "action: kill", "modules:", f"  {MAIN}: [all]",
        f"  {WORKER}: [all]", f"  {GRAB}: []", ""]))
    script = f'echo $$ > {cgroup}/cgroup.procs && exec "$@"'

    def serve(name: str) -> tuple[subprocess.Popen[str], str]:
        addr_file = tmp_path / name
        proc = subprocess.Popen(["sh", "-c", script, "sh", str(app), "serve", str(addr_file)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + RUN_TIMEOUT
        while not addr_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert addr_file.exists()
        return proc, addr_file.read_text().strip()

    def get(addr: str, path: str) -> int | None:
        host, port = addr.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        except (ConnectionError, http.client.HTTPException):
            return None  # the process died under the request
        finally:
            conn.close()

    first, addr = serve("addr1")  # runs before the agent
    events = tmp_path / "events.jsonl"
    agent = Agent(policies, cgroup, pin_root, tmp_path, extra=("--events", str(events)))
    try:
        assert get(addr, "/allowed?path=/etc/hostname") == 200
        assert get(addr, "/deny?path=/etc/hostname") is None
        assert first.wait(timeout=RUN_TIMEOUT) == KILLED
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and '"decision":"deny"' not in (events.read_text() if events.exists()
                                                                           else ""):
            time.sleep(0.1)
        [ev] = [json.loads(x) for x in events.read_text().splitlines()]
        assert ev["decision"] == "deny" and ev["module"] == GRAB and ev["pid"] == first.pid
        assert ev["policy"] == str(policies / "by-module.yaml")

        events.rename(tmp_path / "events.jsonl.1")  # logrotate's move, then its postrotate SIGHUP
        agent.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not events.exists():
            time.sleep(0.05)
        assert events.exists() and events.read_text() == ""
        second, addr2 = serve("addr2")
        assert get(addr2, "/deny?path=/etc/hostname") is None
        assert second.wait(timeout=RUN_TIMEOUT) == KILLED
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not events.read_text():
            time.sleep(0.1)
        assert [json.loads(x)["pid"] for x in events.read_text().splitlines()] == [second.pid]
        assert len((tmp_path / "events.jsonl.1").read_text().splitlines()) == 1
    finally:
        for p in (first,):
            if p.poll() is None:
                p.kill()
        assert agent.stop() == 0, agent.stderr


def test_a_replacement_that_cannot_be_planned_is_reported_and_counted(
        tmp_path: Path, app: Path, cgroup: Path, pin_root: Path, policy: Path) -> None:
    """An arm64 build moved over the policy's binary: the agent cannot plan it; it says so (one ERROR line)
    and counts it, and keeps running."""
    tcs = gofixtures.toolchains()
    arm = gofixtures.build(tcs[-1], "denyapp", "arm64")
    policies = policy.parent
    agent = Agent(policies, cgroup, pin_root, tmp_path)
    try:
        new = app.with_name("arm64-build")
        shutil.copy(arm, new)
        mark = len(agent.err_lines)
        new.replace(app)
        agent.wait_for("was replaced", RELOAD_TIMEOUT, mark)
        line = agent.wait_for("ERROR", RELOAD_TIMEOUT, mark)
        assert "arm64" in line or "amd64" in line, line
        m = agent.scrape()
        assert sum(v for _, v in m["gohook_agent_unplannable_total"]) == 1
        assert agent.proc.poll() is None
    finally:
        assert agent.stop() == 0, agent.stderr
