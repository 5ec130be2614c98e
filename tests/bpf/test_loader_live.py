"""The BPF program, live on this kernel, against real Go binaries built by the suite.

Hook points and ranges come from gohook.plan.handmade (probe offsets from
the prologue, inline-aware ranges), not from the planner: these tests choose
their hooks and masks. Runs as root; in CI (CI=true) a missing privilege or toolchain fails,
elsewhere it skips with a loud reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import gofixtures
import pytest

from gohook.bpf.abi import ArgKind, Decision, EventFlag
from gohook.bpf.errors import AttachError
from gohook.bpf.loader import Attached, attach
from gohook.bpf.render import ProgramOptions
from gohook.events.decode import Event, decode_events
from gohook.gosym import GoBinary
from gohook.plan import handmade
from gohook.plan.model import ArgRead, EnforcementPlan, FlagRule
from gohook.policy.format import Action, Attribution, Mode

pytestmark = pytest.mark.bpf

CAPS = ("files.read", "files.write", "env.read")
READ, WRITE, ENV = 1, 2, 4
OPEN_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND  # Go's os.O_* on linux
FILEUTIL, MONO, SUB, LIB = ("github.com/acme/fileutil", "github.com/acme/mono", "github.com/acme/mono/sub",
                            "github.com/acme/lib")
BPFPROBE = gofixtures.FIXTURES["bpfprobe"]


_loud_skip = gofixtures.loud_skip


@pytest.fixture(scope="module", autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        _loud_skip("live BPF tests need root (CAP_BPF, CAP_PERFMON): run the suite as root")


@pytest.fixture(scope="module")
def newest_go() -> gofixtures.Toolchain:
    chains = gofixtures.toolchains()
    if not chains:
        _loud_skip("no Go toolchain installed: run scripts/setup.sh")
    return max(chains, key=lambda t: t.release)


def _build(toolchain: gofixtures.Toolchain, fixture: str, mode: str = "default") -> GoBinary:
    """A private copy of the fixture: uprobes are per file and system-wide, so probing the shared build
    would also hit other test processes running it."""
    private = Path(tempfile.mkdtemp(prefix="gohook-bpf-live-")) / f"{fixture}-{mode}"
    shutil.copy2(gofixtures.build(toolchain, fixture, mode), private)
    return GoBinary.open(private)


@pytest.fixture(scope="module")
def capapp(newest_go: gofixtures.Toolchain) -> GoBinary:
    return _build(newest_go, "capapp")


@pytest.fixture(scope="module")
def capapp_pie(newest_go: gofixtures.Toolchain) -> GoBinary:
    return _build(newest_go, "capapp", "pie")


@pytest.fixture(scope="module")
def bpfprobe(newest_go: gofixtures.Toolchain) -> GoBinary:
    return _build(newest_go, "bpfprobe")


def _openfile_plan(b: GoBinary, allowed: dict[str, int], **kw: object) -> EnforcementPlan:
    """os.OpenFile hooked: files.write when the flags ask for writing, else files.read; the path as argument."""
    direct = bool(kw.pop("direct_caller_only", False))
    h = handmade.hook(b, 0, "os.OpenFile", 0, arg=ArgRead(ArgKind.STRING, (0, 1)),
                     rule=FlagRule(reg=2, mask=OPEN_WRITE_FLAGS, cap_if_set=1, cap_if_clear=0),
                     direct_caller_only=direct)
    return handmade.plan_for(b, [h], CAPS, allowed={b.main_module: READ | WRITE, **allowed}, **kw)  # type: ignore[arg-type]


def _run(b: GoBinary, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([b.path, *args], capture_output=True, text=True, timeout=60)


def _events(att: Attached, want: Callable[[Event], bool], count: int = 1, timeout: float = 3.0) -> list[Event]:
    got: list[Event] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(got) < count:
        got += [e for e in decode_events(att.poll(50), att.options.layout) if want(e)]
    return got


def _arg(path: object) -> Callable[[Event], bool]:
    return lambda e: e.argument == str(path)


def _functions(b: GoBinary, ev: Event) -> list[str]:
    out = []
    for pc in ev.static_frames:
        f = b.function_at(pc - 1)
        out.append(f.name if f else "?")
    return out


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "created.txt"


def test_allowed_read_names_the_module(capapp: GoBinary, tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("hello")
    plan = _openfile_plan(capapp, {FILEUTIL: READ})
    with attach(plan) as att:
        proc = _run(capapp, "read", str(src))
        assert proc.returncode == 0, proc.stderr
        [ev] = _events(att, _arg(src))
        counters = att.counters()
    assert ev.decision is Decision.ALLOW
    assert plan.module_name(ev.module) == FILEUTIL
    assert ev.capability == 0 and ev.hook_id == 0 and ev.bias == 0
    assert ev.pid == ev.tid or ev.pid > 0
    assert ev.goid == 1  # capapp reads on the main goroutine
    assert EventFlag.STOP_GOEXIT in ev.flags and EventFlag.UNATTRIBUTED not in ev.flags
    names = _functions(capapp, ev)
    assert names[0] == f"{FILEUTIL}.ReadAll"
    assert "main.main" in names and names[-1] == "runtime.main"
    assert counters.hits >= 1 and counters.denied == 0 and counters.lost == 0


def test_denied_create_is_killed_before_the_file_exists(capapp: GoBinary, target: Path) -> None:
    plan = _openfile_plan(capapp, {FILEUTIL: READ})
    with attach(plan) as att:
        proc = _run(capapp, "create", str(target))
        [ev] = _events(att, _arg(target))
        counters = att.counters()
    assert proc.returncode == -signal.SIGKILL  # a shell reports 137
    assert not target.exists()
    assert ev.decision is Decision.DENY and ev.capability == 1
    assert plan.module_name(ev.module) == FILEUTIL
    assert counters.denied == 1 and counters.signal_failed == 0


def test_audit_mode_records_and_lets_the_call_run(capapp: GoBinary, target: Path) -> None:
    plan = _openfile_plan(capapp, {FILEUTIL: READ}, mode=Mode.AUDIT)
    with attach(plan) as att:
        proc = _run(capapp, "create", str(target))
        [ev] = _events(att, _arg(target))
    assert proc.returncode == 0, proc.stderr
    assert target.exists()
    assert ev.decision is Decision.AUDIT and plan.module_name(ev.module) == FILEUTIL


def test_action_audit_in_enforce_mode_does_not_kill(capapp: GoBinary, target: Path) -> None:
    plan = _openfile_plan(capapp, {FILEUTIL: READ}, action=Action.AUDIT)
    with attach(plan) as att:
        proc = _run(capapp, "create", str(target))
        [ev] = _events(att, _arg(target))
    assert proc.returncode == 0 and target.exists()
    assert ev.decision is Decision.AUDIT


def test_pie_binary(capapp_pie: GoBinary, target: Path) -> None:
    assert capapp_pie.is_pie
    plan = _openfile_plan(capapp_pie, {FILEUTIL: READ | WRITE})
    with attach(plan) as att:
        proc = _run(capapp_pie, "create", str(target))
        [ev] = _events(att, _arg(target))
    assert proc.returncode == 0 and target.exists()
    assert ev.bias != 0 and ev.bias % 4096 == 0
    assert ev.decision is Decision.ALLOW and plan.module_name(ev.module) == FILEUTIL
    assert _functions(capapp_pie, ev)[0] == f"{FILEUTIL}.Create"


def test_pie_binary_denied(capapp_pie: GoBinary, target: Path) -> None:
    plan = _openfile_plan(capapp_pie, {FILEUTIL: READ})
    with attach(plan):
        proc = _run(capapp_pie, "create", str(target))
    assert proc.returncode == -signal.SIGKILL and not target.exists()


def test_stripped_binary(newest_go: gofixtures.Toolchain, target: Path) -> None:
    stripped = _build(newest_go, "capapp", "stripped")
    assert stripped.is_stripped
    plan = _openfile_plan(stripped, {FILEUTIL: READ})
    with attach(plan) as att:
        proc = _run(stripped, "create", str(target))
        [ev] = _events(att, _arg(target))
    assert proc.returncode == -signal.SIGKILL and not target.exists()
    assert plan.module_name(ev.module) == FILEUTIL


def test_two_concurrent_processes_of_one_pie_binary(capapp_pie: GoBinary, tmp_path: Path) -> None:
    src = tmp_path / "small.txt"
    src.write_text("x" * 10)
    plan = _openfile_plan(capapp_pie, {FILEUTIL: READ})
    with attach(plan) as att:
        procs = [subprocess.Popen([capapp_pie.path, "loop", "20", str(src)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        events: list[Event] = []
        while any(p.poll() is None for p in procs):
            events += decode_events(att.poll(20), att.options.layout)
        events = [e for e in events if e.argument == str(src)]
        events += _events(att, _arg(src), count=2 * 8 * 20 - len(events))  # what is still in the ring buffer
        counters = att.counters()
    assert [p.returncode for p in procs] == [0, 0], [p.stderr.read() for p in procs if p.stderr]
    assert counters.lost == 0
    by_pid: dict[int, list[Event]] = {}
    for e in events:
        by_pid.setdefault(e.pid, []).append(e)
    assert sorted(by_pid) == sorted(p.pid for p in procs)
    for evs in by_pid.values():
        assert len(evs) == 8 * 20
        assert len({e.bias for e in evs}) == 1
        assert all(e.decision is Decision.ALLOW and plan.module_name(e.module) == FILEUTIL for e in evs)
        assert len({e.goid for e in evs}) == 8 and 1 not in {e.goid for e in evs}
    assert len({evs[0].bias for evs in by_pid.values()}) == 2  # two load addresses


def test_caller_vs_stack_attribution(capapp: GoBinary, tmp_path: Path) -> None:
    """main -> mono.Open -> sub.OpenFile -> os.OpenFile: sub may read, mono may not."""
    src = tmp_path / "chain.txt"
    src.write_text("chain")
    allowed = {SUB: READ, MONO: 0}
    caller = _openfile_plan(capapp, allowed, mode=Mode.AUDIT)
    with attach(caller) as att:
        assert _run(capapp, "chain", str(src)).returncode == 0
        [ev] = _events(att, _arg(src))
    assert ev.decision is Decision.ALLOW and caller.module_name(ev.module) == SUB
    stack = _openfile_plan(capapp, allowed, mode=Mode.AUDIT, attribution=Attribution.STACK)
    with attach(stack) as att:
        assert _run(capapp, "chain", str(src)).returncode == 0
        [ev] = _events(att, _arg(src))
    assert ev.decision is Decision.AUDIT and stack.module_name(ev.module) == MONO
    with attach(_openfile_plan(capapp, allowed, attribution=Attribution.STACK)):
        assert _run(capapp, "chain", str(src)).returncode == -signal.SIGKILL


def test_direct_caller_only_ignores_calls_from_std(capapp: GoBinary, tmp_path: Path) -> None:
    """capapp inline: main -> (inlined fileutil.ReadFile) -> os.ReadFile -> os.OpenFile: the direct caller is std."""
    src = tmp_path / "inline.txt"
    src.write_text("inline")
    plan = _openfile_plan(capapp, {FILEUTIL: 0}, direct_caller_only=True)
    with attach(plan) as att:
        proc = _run(capapp, "inline", str(src))
        quiet = _events(att, _arg(src), timeout=0.5)
        ignored = att.counters().ignored
        direct = _run(capapp, "read", str(src))  # fileutil.ReadAll calls os.OpenFile itself: counted, denied
    assert proc.returncode == 0, proc.stderr
    assert quiet == [] and ignored >= 1
    assert direct.returncode == -signal.SIGKILL


def test_enforcement_does_not_depend_on_event_delivery(capapp: GoBinary, tmp_path: Path, target: Path) -> None:
    """A one-page ring buffer that nobody reads fills up; a violation is still killed."""
    src = tmp_path / "small.txt"
    src.write_text("x")
    plan = _openfile_plan(capapp, {FILEUTIL: READ})
    with attach(plan, options=ProgramOptions(ringbuf_pages=1)) as att:
        assert _run(capapp, "loop", "10", str(src)).returncode == 0
        proc = _run(capapp, "create", str(target))
        counters = att.counters()
    assert counters.lost > 0
    assert proc.returncode == -signal.SIGKILL and not target.exists()
    assert counters.denied == 1


def test_pid_filter_and_attaching_to_a_running_process(bpfprobe: GoBinary) -> None:
    env_hook = handmade.hook(bpfprobe, 3, "os.Getenv", 2, arg=ArgRead(ArgKind.STRING, (0, 1)))
    plan = handmade.plan_for(bpfprobe, [env_hook], CAPS, allowed={LIB: ENV})
    waiting = subprocess.Popen([bpfprobe.path, "wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert waiting.stdout is not None and waiting.stdout.readline().strip() == "ready"
        with attach(plan, pids=[waiting.pid]) as att:
            other = _run(bpfprobe, "bench", "5", "0")  # same binary, not filtered in: no events
            assert other.returncode == 0
            out, _ = waiting.communicate("go\n", timeout=30)
            evs = _events(att, lambda e: e.argument in ("GOHOOK_WAIT", "GOHOOK_BENCH"), timeout=1.0)
    finally:
        waiting.kill()
    assert waiting.returncode == 0 and out.strip() == "done"
    assert [(e.pid, e.argument, e.hook_id, e.capability) for e in evs] == [(waiting.pid, "GOHOOK_WAIT", 3, 2)]
    assert plan.module_name(evs[0].module) == LIB


def test_attach_errors_are_typed(capapp: GoBinary) -> None:
    plan = _openfile_plan(capapp, {})
    with pytest.raises(AttachError, match="process"):
        attach(plan, pids=[2**22 + 12345])  # beyond pid_max


@pytest.mark.parametrize("version", ["1.21", "1.27"])
def test_load_bias_of_a_pie_process_maps_static_addresses_to_its_code(version: str, tmp_path: Path) -> None:
    """load_bias (the bias --pid targets are registered with for the sentinel, the guard and the file-open
    judge) against the kernel's mapping: the bytes of main.main in the running process, read through
    /proc/PID/mem at static address + bias, are the file's bytes there. Go 1.21 links PIE at 0, Go 1.27 at
    0x400000: a bias taken as the mapping's start would be off by that much."""
    from gohook.bpf.loader import load_bias

    toolchain = gofixtures.live_toolchain(version)
    app = tmp_path / "attachapp-pie"
    shutil.copy2(gofixtures.build(toolchain, "attachapp", "pie"), app)
    binary = GoBinary.open(str(app))
    assert binary.is_pie
    f = binary.functions_by_name["main.main"]
    want = binary.image.read(f.entry, 32)
    proc = subprocess.Popen([str(app), "wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("waiting pid")
        bias = load_bias(proc.pid, str(app), True)
        with open(f"/proc/{proc.pid}/mem", "rb") as mem:
            mem.seek(f.entry + bias)
            assert mem.read(32) == want, f"bias {bias:#x}"
    finally:
        proc.kill()
        proc.wait()


CGROUP2 = Path("/sys/fs/cgroup/unified")  # cgroup v2 in the hybrid layout of this machine


def _cgroup2_path(pid: int) -> str:
    """The cgroup v2 path of pid: its "0::" line of /proc/PID/cgroup."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    raise AssertionError(f"/proc/{pid}/cgroup has no cgroup v2 line")


def test_event_carries_the_cgroup_v2_id_of_a_killed_process(bpfprobe: GoBinary) -> None:
    """cgroup_id is the inode number of the process's cgroup v2 directory at the call: what `gohook agent`
    maps to a container's cgroup path after the killed process (and its /proc/PID/cgroup) is gone. The
    process runs in a cgroup of its own, so the id is neither the root's nor this test's."""
    if not (CGROUP2 / "cgroup.procs").exists():
        _loud_skip(f"cgroup v2 is not mounted at {CGROUP2}")
    own = CGROUP2 / f"gohook-test-{os.getpid()}-{time.monotonic_ns()}"
    own.mkdir()
    env_hook = handmade.hook(bpfprobe, 3, "os.Getenv", 2, arg=ArgRead(ArgKind.STRING, (0, 1)))
    plan = handmade.plan_for(bpfprobe, [env_hook], CAPS, allowed={})  # lib lacks env.read: killed
    waiting = subprocess.Popen([bpfprobe.path, "wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert waiting.stdout is not None and waiting.stdout.readline().strip() == "ready"
        (own / "cgroup.procs").write_text(str(waiting.pid))
        path = _cgroup2_path(waiting.pid)
        expected = os.stat(str(CGROUP2) + path).st_ino
        with attach(plan, pids=[waiting.pid]) as att:
            waiting.communicate("go\n", timeout=30)
            evs = _events(att, lambda e: e.pid == waiting.pid)
    finally:
        waiting.kill()
        waiting.wait()
        own.rmdir()
    assert path == "/" + own.name
    assert waiting.returncode == -signal.SIGKILL
    assert [(e.decision, e.argument) for e in evs] == [(Decision.DENY, "GOHOOK_WAIT")]
    assert evs[0].cgroup_id == expected
    assert expected != os.stat(CGROUP2).st_ino and expected != os.stat(str(CGROUP2) + _cgroup2_path(os.getpid())).st_ino
