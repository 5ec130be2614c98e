"""Feedback on long steps: a rich spinner/progress on a terminal, silence elsewhere."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Progress:
    """`with progress.step("parsing"):` shows a spinner on stderr when enabled (a terminal)."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._console: Any = None

    def _con(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True)
        return self._console

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        with self._con().status(label + " ..."):
            yield

    @contextmanager
    def bar(self, label: str, total: int) -> Iterator[Any]:
        """A progress bar; yields advance(n) to call as work completes."""
        if not self.enabled:
            yield lambda n=1: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
        from rich.progress import Progress as RichProgress

        with RichProgress(TextColumn(label), BarColumn(), MofNCompleteColumn(), console=self._con(),
                          transient=True) as prog:
            task = prog.add_task(label, total=total)
            yield lambda n=1: prog.advance(task, n)
