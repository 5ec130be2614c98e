"""Live view rendering: pure functions from state to renderables, checked by captured output."""

from rich.console import Console

from gohook.events.symbolize import UNATTRIBUTED, EventRecord, StackFrame
from gohook.views.live import RECENT, ViewState, render, render_summary


def rec(module: str, cap: str, decision: str, pid: int = 7, arg: str | None = "/etc/passwd") -> EventRecord:
    stack = (StackFrame("syscall.openat", "zsyscall.go", 92, "std", False),
             StackFrame("os.Open", "file.go", 390, "std", True),
             StackFrame(f"{module}.Read", "dep.go", 16, module, False))
    return EventRecord(time=1_700_000_000.0, pid=pid, tid=pid, goid=1, capability=cap, function="syscall.openat",
                       module=module, decision=decision, argument=arg, stack=stack)


def text_of(renderable: object, width: int = 160) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_matrix_counts_and_unattributed_row() -> None:
    s = ViewState(binary="/srv/app", mode="enforce", hooks=24)
    for _ in range(3):
        s.add(rec("github.com/acme/x", "files.read", "allow"))
    s.add(rec("github.com/evil/t", "network.connect", "deny", pid=8, arg="10.0.0.1:443"))
    s.add(rec(UNATTRIBUTED, "env.read", "allow", arg="HOME"))
    out = text_of(render(s, now=s.started + 65))
    assert "/srv/app" in out and "hooks 24" in out and "pids 7, 8" in out and "up 0:01:05" in out
    lines = out.splitlines()
    acme = next(line for line in lines if "github.com/acme/x" in line and "│" in line and "files.read" not in line)
    assert "3" in acme
    evil = next(line for line in lines if line.startswith("│ github.com/evil/t"))
    assert "1" in evil
    rows = [line for line in lines if line.startswith("│ ")]
    matrix_rows = [r for r in rows if "(unattributed)" in r or "github.com" in r]
    assert "(unattributed)" in matrix_rows[2]  # unattributed calls sort last, in their own row
    assert "latest violation" in out and "github.com/evil/t used network.connect" in out
    assert "10.0.0.1:443" in out and "os.Open" in out and "inlined" in out


def test_recent_is_bounded_and_newest_first() -> None:
    s = ViewState(binary="b", mode="audit", hooks=1)
    for i in range(RECENT + 20):
        s.add(rec("m.io/a", "files.read", "allow", arg=f"/f{i}"))
    assert len(s.recent) == RECENT
    out = text_of(render(s))
    assert f"/f{RECENT + 19}" in out and "/f0 " not in out
    assert out.index(f"/f{RECENT + 19}") < out.index(f"/f{RECENT + 18}")


def test_no_violation_yet_and_summary() -> None:
    s = ViewState(binary="b", mode="enforce", hooks=1)
    s.add(rec("m.io/a", "files.read", "allow"))
    assert "no violation yet" in text_of(render(s))
    assert "1 events from 1 process(es)" in text_of(render_summary(s))


def test_rate_is_aggregated_not_per_event() -> None:
    s = ViewState(binary="b", mode="enforce", hooks=1)
    s.update_rate(100.0)
    for _ in range(50_000):
        s.add(rec("m.io/a", "files.read", "allow"))
    s.update_rate(101.0)
    assert s.rate == 50_000
    assert len(s.cells) == 1 and s.total == 50_000


def test_error_decisions_count_as_violations() -> None:
    s = ViewState(binary="/srv/app", mode="enforce", hooks=3)
    s.add(rec("github.com/evil/t", "files.read", "error"))
    s.add(rec("github.com/evil/t", "files.read", "error"))
    assert s.cells[("github.com/evil/t", "files.read")].error == 2
    assert s.violation is not None and s.violation.decision == "error"
    out = text_of(render(s, now=s.started + 1))
    assert next(line for line in out.splitlines() if line.startswith("│ github.com/evil/t")).count("2") >= 1
