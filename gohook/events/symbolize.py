"""Events made readable: kernel events -> symbolized records (pipeline stage events -> views).

`Symbolizer` turns an `Event` (raw return addresses, ids) into an
`EventRecord` with names: the capability, the hooked function, the
responsible module, the argument and the logical stack (inlined frames
included, each with file:line and module). Symbolized stacks are cached by
their static return addresses: a service repeats the same few call paths.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from typing import Any

from gohook.bpf.abi import Decision, EventFlag
from gohook.events.decode import Event
from gohook.gosym import GoBinary
from gohook.plan.model import EnforcementPlan
from gohook.policy.format import Mode
from gohook.sites.syscalls import syscall_name

UNATTRIBUTED = "(unattributed)"


@dataclass(frozen=True)
class StackFrame:
    function: str
    file: str
    line: int
    module: str
    inlined: bool

    def as_json(self) -> dict[str, Any]:
        return {"function": self.function, "file": self.file, "line": self.line, "module": self.module,
                "inlined": self.inlined}


@dataclass(frozen=True)
class EventRecord:
    time: float  # seconds since the epoch
    pid: int
    tid: int
    goid: int
    capability: str
    function: str
    module: str
    decision: str  # allow | deny (killed) | audit | error (the call returned a denial; action error)
    argument: str | None
    stack: tuple[StackFrame, ...] = field(default=())
    unattributed: bool = False
    via: str = "stack"  # how the module was found: one of VIA
    note: str | None = None  # what the decision does not say (an exec's child, a sentinel kill)
    tamper: str | None = None  # a removed probe (gohook.session.ProbeGuard), not a hooked call
    # decided by the argument (an argument-scoped grant): the pattern that allowed it, "" when none did
    pattern: str | None = None
    # decision error: the errno the call returned (EPERM) or None (an environment read that reads as unset, a
    # call that returned having done nothing); `returned` says what the function returned ("fd=-1, err=EPERM")
    errno: int | None = None
    returned: str | None = None
    # the cgroup v2 id of the process at the call (Event.cgroup_id; 0: unknown), for `gohook agent`, which
    # reports its path; not part of as_json()
    cgroup_id: int = 0

    def as_json(self) -> dict[str, Any]:
        stamp = datetime.datetime.fromtimestamp(self.time, datetime.UTC).isoformat(timespec="microseconds")
        out: dict[str, Any] = {
            "time": stamp.replace("+00:00", "Z"), "pid": self.pid, "tid": self.tid, "goid": self.goid,
            "capability": self.capability, "function": self.function, "module": self.module,
            "decision": self.decision, "argument": self.argument, "via": self.via, "note": self.note,
            "stack": [f.as_json() for f in self.stack]}
        if self.tamper is not None:
            out["tamper"] = self.tamper
        if self.pattern is not None:
            out["pattern"] = self.pattern or None  # null: no pattern of the module allowed the argument
        if self.decision == "error":
            out["errno"] = self.errno
            out["returned"] = self.returned
        return out


#: EventRecord.via: how the responsible module was found (docs/evasion.md)
VIA = {
    "stack": "a module frame on the stack (the nearest one, or the violating one in stack mode)",
    "direct": "the direct caller (direct_caller_only hooks)",
    "syscall-site": "the module's own `syscall` instruction",
    "creator": "no module frame: the module that created the goroutine (goroutine provenance)",
    "go-statement": "no module frame: the module of the goroutine's go statement (g.gopc)",
    "cgo": "the module whose cgo call the thread is in (sentinel)",
    "none": "no module at all: unattributed",
}
NOTE_EXEC_CHILD = "the started program runs outside enforcement"
NOTE_SENTINEL_KILL = "killed at system-call entry: a tracepoint cannot stop the call, so the call itself ran"
NOTE_KILL_FALLBACK = ("action error, but killed: the process is not traced by gohook (started by someone "
                      "else, or --pid without tracing), its thread blocked SIGSYS, the call is not a Go function's "
                      "(a `syscall` instruction), or the hooked function cannot return a denial (gohook inspect: "
                      "deny column)")
NOTE_OPENED_KILL = ("killed when the open returned, by what the opened file is: the process ran no instruction "
                    "after it (nothing was read or written through it)")


def via_of(flags: EventFlag) -> str:
    """EventRecord.via for an event's flags."""
    for flag, via in ((EventFlag.UNATTRIBUTED, "none"), (EventFlag.SITE, "syscall-site"), (EventFlag.CGO, "cgo"),
                      (EventFlag.INHERITED, "creator"), (EventFlag.GOPC, "go-statement"),
                      (EventFlag.DIRECT, "direct")):
        if flags & flag:
            return via
    return "stack"


class Symbolizer:
    """Names for events of one plan and binary."""

    def __init__(self, binary: GoBinary, plan: EnforcementPlan) -> None:
        self.binary = binary
        self.plan = plan
        self.hooks = {h.hook_id: h for h in plan.hooks}
        self._stacks: dict[tuple[int, ...], tuple[StackFrame, ...]] = {}
        self._mono_to_wall = time.time() - time.monotonic()

    def decision_label(self, event: Event) -> str:
        if self.plan.mode is Mode.LEARN:
            return "audit" if event.decision is not Decision.ALLOW else "allow"
        return event.decision.label

    def module_name(self, event: Event) -> str:
        if event.flags & EventFlag.UNATTRIBUTED or event.module == 0:
            return UNATTRIBUTED
        if event.module - 1 < len(self.plan.modules):
            return self.plan.modules[event.module - 1]
        return f"module#{event.module}"

    def stack(self, event: Event) -> tuple[StackFrame, ...]:
        key = event.static_frames
        cached = self._stacks.get(key)
        if cached is not None:
            return cached
        out: list[StackFrame] = []
        hook = self.hooks.get(event.hook_id)
        if hook is not None and not event.flags & (EventFlag.SITE | EventFlag.SENTINEL):
            # (a `syscall` instruction's own function is frame 0 of its event)
            file, line = self.binary.line_at(hook.entry)
            out.append(StackFrame(hook.function, file, line, "std", False))
        for pc in key:
            frames = self.binary.frames(pc)
            for fr in frames:
                out.append(StackFrame(fr.function, fr.file, fr.line, self.binary.code_module(fr.function, fr.file),
                                          fr.inlined))
            if not frames:
                # frames() elides wrappers as the runtime does; a return address inside a wrapper (a
                # dependency's `go os.WriteFile(...)` runs under its gowrap1) would then vanish, although the
                # kernel charged the call to the wrapper's module: show the physical function instead.
                f = self.binary.function_at(pc - 1)
                if f is not None:
                    file, line = self.binary.line_at(pc - 1)
                    out.append(StackFrame(f.name, file, line, self.binary.code_module(f.name, file), False))
        result = tuple(out)
        if len(self._stacks) < 100_000:
            self._stacks[key] = result
        return result

    def function_name(self, event: Event) -> str:
        """The hooked function, `syscall:openat` for the sentinel, `syscall:openat in F` for a syscall site."""
        nr = event.syscall_nr
        if nr is not None:
            return f"syscall:{syscall_name(nr)}"
        if event.i386_nr is not None:
            return f"syscall:i386 {event.i386_nr}"
        hook = self.hooks.get(event.hook_id)
        if hook is None:
            return f"hook#{event.hook_id}"
        return hook.function

    def note(self, event: Event, capability: str) -> str | None:
        if event.decision is Decision.DENY and event.opened:
            return NOTE_OPENED_KILL
        if event.decision is Decision.DENY and event.flags & EventFlag.SENTINEL:
            return NOTE_SENTINEL_KILL
        if event.decision is Decision.DENY and event.flags & EventFlag.KILL_FALLBACK:
            return NOTE_KILL_FALLBACK
        if capability == "exec" and event.decision is not Decision.DENY:
            return NOTE_EXEC_CHILD
        return None

    def record(self, event: Event, with_stack: bool = True) -> EventRecord:
        caps = self.plan.capabilities
        capability = caps[event.capability] if event.capability < len(caps) else f"cap#{event.capability}"
        return EventRecord(
            time=event.time_ns / 1e9 + self._mono_to_wall,
            pid=event.pid,
            tid=event.tid,
            goid=event.goid,
            capability=capability,
            function=self.function_name(event),
            module=self.module_name(event),
            decision=self.decision_label(event),
            argument=event.argument,
            stack=self.stack(event) if with_stack else (),
            unattributed=not event.attributed,
            via=via_of(event.flags),
            note=self.note(event, capability),
            pattern=self.pattern_text(event),
            cgroup_id=event.cgroup_id,
            **self.returned(event),
        )

    def returned(self, event: Event) -> dict[str, Any]:
        """errno and returned of a call denied with an error: its hook point's return plan."""
        if event.decision is not Decision.ERROR:
            return {}
        hook = self.hooks.get(event.hook_id)
        deny = hook.deny if hook is not None else None
        if deny is None:
            return {}
        return {"errno": deny.errno, "returned": deny.text or deny.kind}

    def pattern_text(self, event: Event) -> str | None:
        """For a call decided by its argument: the pattern that allowed it ("" when none did); else None."""
        if not event.flags & EventFlag.ARG_SCOPED:
            return None
        patterns = self.plan.arg_patterns
        return patterns[event.pattern - 1].pattern.text if 0 < event.pattern <= len(patterns) else ""
