"""The line views of `gohook attach` (gohook.views.jsonlines): JSON lines and readable lines, one per event."""

from __future__ import annotations

import io
import json
import time

from gohook.events.symbolize import EventRecord, StackFrame
from gohook.views.jsonlines import LineOutput, json_line, text_line

REC = EventRecord(time=1_700_000_000.25, pid=42, tid=43, goid=7, capability="files.read", function="os.OpenFile",
                  module="acme/cfg", decision="deny", argument="/etc/shadow",
                  stack=(StackFrame("os.OpenFile", "file.go", 10, "std", False),))


def test_json_line_is_the_records_json_in_one_compact_line() -> None:
    line = json_line(REC)
    assert "\n" not in line and ", " not in line and ": " not in line
    doc = json.loads(line)
    assert doc == REC.as_json()
    assert doc["time"] == "2023-11-14T22:13:20.250000Z"


def test_text_line_names_pid_decision_module_capability_and_argument() -> None:
    when = time.strftime("%H:%M:%S", time.localtime(REC.time))
    assert text_line(REC) == f"{when} pid 42 DENY  acme/cfg files.read os.OpenFile '/etc/shadow'"
    no_arg = EventRecord(**{**REC.__dict__, "argument": None, "decision": "audit"})
    assert text_line(no_arg) == f"{when} pid 42 AUDIT acme/cfg files.read os.OpenFile"


def test_line_output_writes_one_line_per_record() -> None:
    buf = io.StringIO()
    LineOutput(as_json=True, stream=buf).emit(REC)
    LineOutput(as_json=False, stream=buf).emit(REC)
    first, second, rest = buf.getvalue().split("\n")
    assert json.loads(first)["pid"] == 42
    assert second == text_line(REC) and rest == ""


def test_a_call_decided_by_its_argument_names_the_pattern() -> None:
    """JSON has "pattern" (the one that allowed the call, null when none did) only for calls an argument-scoped
    grant decided; the text line says it too."""
    assert "pattern" not in REC.as_json()
    allowed = EventRecord(**{**REC.__dict__, "decision": "allow", "argument": "/etc/acme/a.yaml",
                             "pattern": "/etc/acme/**"})
    denied = EventRecord(**{**REC.__dict__, "pattern": ""})
    assert allowed.as_json()["pattern"] == "/etc/acme/**"
    assert "pattern" in denied.as_json() and denied.as_json()["pattern"] is None
    assert text_line(allowed).endswith("'/etc/acme/a.yaml' (allowed by '/etc/acme/**')")
    assert text_line(denied).endswith("'/etc/shadow' (no pattern of the module matches)")


def test_a_call_denied_with_an_error_says_what_it_returned() -> None:
    """action error: the JSON carries the errno and the results the function returned; the text line too."""
    rec = EventRecord(**{**REC.__dict__, "decision": "error", "errno": 1, "returned": "fd=-1, err=EPERM"})
    doc = json.loads(json_line(rec))
    assert (doc["decision"], doc["errno"], doc["returned"]) == ("error", 1, "fd=-1, err=EPERM")
    assert text_line(rec).endswith("ERROR acme/cfg files.read os.OpenFile '/etc/shadow' -> returned fd=-1, err=EPERM")
    assert "errno" not in json.loads(json_line(REC))  # only for decision error
