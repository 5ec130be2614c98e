"""The line views of `gohook attach`: one JSON object per event (--json), or one readable line per event.

JSON lines are the machine interface (EventRecord.as_json, compact
separators; a removed probe has a "tamper" key saying what happened; a call decided by its argument has a
"pattern" key: the pattern that allowed it, or null);
readable lines are `HH:MM:SS pid PID DECISION module capability function
'argument'` (a removed probe: `... tamper FUNCTION: WHAT`). Each line is flushed at once, so a pipe sees events as
they happen.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO

from gohook.events.symbolize import EventRecord


def json_line(rec: EventRecord) -> str:
    """The record as one compact JSON object (no newline)."""
    return json.dumps(rec.as_json(), separators=(",", ":"))


def text_line(rec: EventRecord) -> str:
    """The record as one readable line, local time (no newline)."""
    arg = f" {rec.argument!r}" if rec.argument is not None else ""
    if rec.tamper is not None:
        arg = f": {rec.tamper}"
    if rec.pattern is not None:  # decided by the argument
        arg += f" (allowed by {rec.pattern!r})" if rec.pattern else " (no pattern of the module matches)"
    if rec.decision == "error":
        arg += f" -> returned {rec.returned}" if rec.returned else ""
    when = time.strftime("%H:%M:%S", time.localtime(rec.time))
    return f"{when} pid {rec.pid} {rec.decision.upper():5} {rec.module} {rec.capability} {rec.function}{arg}"


class LineOutput:
    """Where records go: JSON lines or readable lines, on `stream` (stdout unless given)."""

    def __init__(self, as_json: bool, stream: TextIO | None = None) -> None:
        self.as_json = as_json
        self.stream = stream

    def emit(self, rec: EventRecord) -> None:
        out = self.stream if self.stream is not None else sys.stdout
        out.write((json_line(rec) if self.as_json else text_line(rec)) + "\n")
        out.flush()
