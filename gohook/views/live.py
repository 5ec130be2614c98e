"""The live terminal view of `gohook attach` (rich): modules x capabilities as they happen.

Shape (after rich's top_lite_simulator): all state lives in `ViewState`,
which only aggregates (counters, a bounded list of recent events, the latest
violation), so it keeps up with tens of thousands of events per second;
`render(state)` is a pure function from state to a renderable; `LiveView`
owns the one `rich.live.Live`, refreshes it at most 10 times a second from
the poll loop, and reads `q` from the keyboard.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import time
import tty
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from gohook.errors import GohookError
from gohook.events.symbolize import UNATTRIBUTED, EventRecord

REFRESH_SECONDS = 0.1  # at most 10 refreshes a second
RECENT = 12


@dataclass
class Cell:
    allow: int = 0
    deny: int = 0  # killed
    audit: int = 0  # would have been denied
    error: int = 0  # returned a denial (action error); the process ran on

    def add(self, decision: str) -> None:
        if decision == "deny":
            self.deny += 1
        elif decision == "error":
            self.error += 1
        elif decision == "audit":
            self.audit += 1
        else:
            self.allow += 1


@dataclass
class ViewState:
    binary: str
    mode: str
    hooks: int
    started: float = field(default_factory=time.monotonic)
    pids: set[int] = field(default_factory=set)
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    capabilities: list[str] = field(default_factory=list)  # columns, in order of first sight
    recent: deque[EventRecord] = field(default_factory=lambda: deque(maxlen=RECENT))
    violation: EventRecord | None = None
    total: int = 0
    lost: int = 0
    rate: float = 0.0  # events per second, smoothed
    _rate_mark: tuple[float, int] = (0.0, 0)

    def add(self, rec: EventRecord) -> None:
        self.total += 1
        self.pids.add(rec.pid)
        key = (rec.module, rec.capability)
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = Cell()
            if rec.capability not in self.capabilities:
                self.capabilities.append(rec.capability)
        cell.add(rec.decision)
        self.recent.append(rec)
        if rec.decision in ("deny", "error", "audit"):
            self.violation = rec

    def update_rate(self, now: float) -> None:
        t, n = self._rate_mark
        if t == 0.0:
            self._rate_mark = (now, self.total)
        elif now - t >= 1.0:
            self.rate = (self.total - n) / (now - t)
            self._rate_mark = (now, self.total)


def _uptime(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h:d}:{m:02d}:{s:02d}"


def render_header(state: ViewState, now: float) -> Panel:
    pids = ", ".join(str(p) for p in sorted(state.pids)[:6]) or "-"
    if len(state.pids) > 6:
        pids += f" (+{len(state.pids) - 6})"
    text = Text()
    text.append(state.binary, style="bold")
    text.append(f"   mode {state.mode}   hooks {state.hooks}   pids {pids}\n")
    text.append(f"events {state.total}   {state.rate:,.0f}/s   lost {state.lost}   up {_uptime(now - state.started)}")
    if state.lost:
        text.append("   (events were lost: enforcement was not affected)", style="yellow")
    return Panel(text, title="gohook attach", title_align="left")


def render_matrix(state: ViewState) -> Table:
    table = Table(title="modules x capabilities (allowed / denied)", title_justify="left", expand=False)
    table.add_column("module")
    caps = sorted(state.capabilities)
    for cap in caps:
        table.add_column(cap, justify="right")
    modules = sorted({m for m, _ in state.cells}, key=lambda m: (m == UNATTRIBUTED, m))
    for module in modules:
        row: list[RenderableType] = [Text(module, style="dim" if module == UNATTRIBUTED else "")]
        for cap in caps:
            cell = state.cells.get((module, cap))
            if cell is None:
                row.append("")
                continue
            t = Text()
            if cell.allow:
                t.append(str(cell.allow), style="green")
            if cell.deny or cell.audit or cell.error:
                if cell.allow:
                    t.append(" / ")
                style = "bold red" if cell.deny else "red" if cell.error else "yellow"
                t.append(str(cell.deny + cell.audit + cell.error), style=style)
            row.append(t)
        table.add_row(*row)
    return table


_DECISION_STYLE = {"allow": "green", "deny": "bold red", "error": "red", "audit": "yellow"}


def render_recent(state: ViewState) -> Table:
    table = Table(title="recent events", title_justify="left")
    for col in ("time", "pid", "module", "capability", "function", "argument", "pattern", "decision"):
        table.add_column(col, overflow="ellipsis", no_wrap=True)
    for rec in reversed(state.recent):
        pattern = "" if rec.pattern is None else rec.pattern or "(none matches)"
        table.add_row(time.strftime("%H:%M:%S", time.localtime(rec.time)), str(rec.pid), rec.module, rec.capability,
                      rec.function, rec.argument or "", pattern,
                      Text(rec.decision, style=_DECISION_STYLE.get(rec.decision, "")))
    return table


def render_violation(state: ViewState) -> Panel:
    rec = state.violation
    if rec is None:
        return Panel(Text("no violation yet", style="dim"), title="latest violation", title_align="left")
    text = Text()
    text.append(f"{rec.module} used {rec.capability} via {rec.function}", style="bold")
    if rec.argument:
        text.append(f" ({rec.argument!r})")
    if rec.pattern is not None:
        text.append(f" allowed by {rec.pattern!r}" if rec.pattern else " no pattern of the module matches")
    text.append(f"  pid {rec.pid}  goroutine {rec.goid}  -> {rec.decision}\n")
    for fr in rec.stack[:16]:
        mark = "  inlined " if fr.inlined else "  "
        style = "" if fr.module == "std" else "bold"
        text.append(f"{mark}{fr.function}", style=style)
        text.append(f"  {fr.file}:{fr.line}  [{fr.module}]\n", style="dim")
    return Panel(text, title="latest violation (stack, innermost first)", title_align="left")


def render(state: ViewState, now: float | None = None) -> RenderableType:
    """The whole screen for one state (pure)."""
    now = time.monotonic() if now is None else now
    # The violation comes before the scrolling list: on a short terminal the list is what gets cut.
    return Group(render_header(state, now), render_matrix(state), render_violation(state), render_recent(state))


def render_summary(state: ViewState) -> RenderableType:
    return Group(Text(f"gohook: {state.total} events from {len(state.pids)} process(es), lost {state.lost}"),
                 render_matrix(state))


class LiveView:
    """Drives rich.live.Live from the attach poll loop; `tick()` returns True when the user pressed q."""

    def __init__(self, state: ViewState) -> None:
        from rich.console import Console
        from rich.live import Live

        self.state = state
        self.console = Console()
        self.live = Live(render(state), console=self.console, auto_refresh=False, screen=False,
                         redirect_stderr=False)
        self._last = 0.0
        self._tty_state: list[Any] | None = None

    def __enter__(self) -> LiveView:
        if sys.stdin.isatty():
            self._tty_state = termios.tcgetattr(sys.stdin.fileno())
            tty.setcbreak(sys.stdin.fileno())
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.update(render(self.state), refresh=True)
        self.live.__exit__(None, None, None)
        if self._tty_state is not None:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._tty_state)
        self.console.print(render_summary(self.state))

    def _quit_pressed(self) -> bool:
        if self._tty_state is None:
            return False
        fd = sys.stdin.fileno()
        while select.select([fd], [], [], 0)[0]:
            ch = os.read(fd, 1)
            if ch in (b"q", b"Q"):
                return True
            if not ch:
                return False
        return False

    def tick(self, attached: Any) -> bool:
        now = time.monotonic()
        if now - self._last >= REFRESH_SECONDS:
            self._last = now
            with contextlib.suppress(GohookError):  # a detached program only stops the lost counter
                self.state.lost = attached.counters().lost
            self.state.update_rate(now)
            self.live.update(render(self.state, now), refresh=True)
        return self._quit_pressed()
