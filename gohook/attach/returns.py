"""A denied call's return, built at its SIGSYS stop: the mark the BPF program left + the hook's return plan.

Pipeline stage attach (binary -> plan -> BPF -> **attach** -> events -> views). Under `action: error` the
BPF program (gohook/bpf/c/lib/deny.h) leaves a denied thread a mark (struct gohook_denymark, by thread
id) and sends it SIGSYS; the tracer (gohook.attach.tracer) stops the thread at the signal's delivery and
asks `DenyReturns.registers` what it resumes with:

=========  =====================================================================================
register   value
=========  =====================================================================================
rip        the mark's resume_ip: the hooked call's return address ([RSP] at an entry probe;
           probe + call_len at a call-site probe, whose call never happens)
rsp        the mark's resume_sp: RSP + 8 at an entry probe (the return address popped), RSP at a
           call site
rbp        the mark's bp: RBP at the probe (the function's prologue may have pushed it, no more)
results    the hook point's DenyReturn.writes (gohook.plan.model): fd=-1, the error interface
           value EPERM (itab of (syscall.Errno, error) and a pointer to a word holding 1, both
           static addresses + the mark's load bias), "" / false for an unset variable, ...
=========  =====================================================================================

Every other register is left as the stop found it: Go's ABIInternal has no callee-saved integer register
but R14 (g) and R15, which the function's first instruction did not touch, and X15 (zero) is not a
general register. The thread stopped after exactly the probed instruction (the signal is delivered on
the way back to user space from the probe); `registers` checks that (RSP within the 8 bytes a push or a
call moves it, by the hook's probe kind) and raises DenyMismatch otherwise, and the tracer then kills
the process: a stop somewhere else cannot be returned from safely (fail closed).

A SIGSYS without a mark is not gohook's (the program's own, or seccomp's): None, and the tracer passes it
on unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gohook.attach.tracer import Registers
from gohook.errors import GohookError
from gohook.plan.model import EnforcementPlan, HookPoint

#: the most an instruction at a probe moves RSP (a push, a call)
PROBE_STEP = 8

TakeMark = Callable[[int], dict[str, int] | None]


class DenyMismatch(GohookError):
    """A SIGSYS stop with a mark that does not fit the thread's state: the process is killed instead."""


@dataclass
class DenyCounts:
    """What DenyReturns did: calls returned with a denial, SIGSYS stops without a mark, mismatches."""

    returned: int = 0
    unmarked: int = 0
    mismatched: int = 0


class DenyReturns:
    """The registers a denied call returns with, per the plan's hook points (on_sigsys of the tracer)."""

    def __init__(self, plan: EnforcementPlan, take_mark: TakeMark) -> None:
        self.hooks: dict[int, HookPoint] = {h.hook_id: h for h in plan.hooks}
        self.take_mark = take_mark
        self.counts = DenyCounts()

    def registers(self, tgid: int, tid: int, regs: Registers) -> Registers | None:
        """The registers thread tid resumes with; None: not gohook's SIGSYS. DenyMismatch: kill the process."""
        mark = self.take_mark(tid)
        if mark is None:
            self.counts.unmarked += 1
            return None
        try:
            return self._apply(tgid, mark, regs)
        except DenyMismatch:
            self.counts.mismatched += 1
            raise

    def _apply(self, tgid: int, mark: dict[str, int], regs: Registers) -> Registers:
        hook = self.hooks.get(mark["hook_id"])
        if mark["tgid"] != tgid:
            raise DenyMismatch(f"thread of process {tgid} holds a mark of process {mark['tgid']}")
        if hook is None or hook.deny is None:
            raise DenyMismatch(f"hook {mark['hook_id']} has no return plan")
        probe_sp = mark["resume_sp"] - (0 if hook.call_len else 8)
        if not probe_sp - PROBE_STEP <= regs.rsp <= probe_sp:
            raise DenyMismatch(f"{hook.function}: the thread stopped with RSP {regs.rsp:#x}, not within "
                               f"{PROBE_STEP} bytes below the probe's {probe_sp:#x}")
        changes = {w.register: w.value + (mark["bias"] if w.relocate else 0) for w in hook.deny.writes}
        changes.update(rip=mark["resume_ip"], rsp=mark["resume_sp"], rbp=mark["bp"])
        self.counts.returned += 1
        return regs.replace(**changes)
