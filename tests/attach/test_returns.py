"""gohook.attach.returns: a denied call's mark + its hook's return plan -> the registers it resumes with (pure)."""

from __future__ import annotations

import pytest

from gohook.attach.returns import DenyMismatch, DenyReturns
from gohook.attach.tracer import REGISTER_NAMES, Registers
from gohook.plan.model import DenyReturn, EnforcementPlan, HookPoint, RegisterWrite

ITAB, WORD, BIAS = 0x6570D0, 0x51EF48, 0x7F00_0000_0000
ENTRY = HookPoint(hook_id=0, function="syscall.openat", entry=0x4A0D60, probe=0x4A0D6A, file_offset=0xA0D6A,
                  capability=0, deny=DenyReturn("error", (RegisterWrite("rax", (1 << 64) - 1),
                                                          RegisterWrite("rbx", ITAB, True),
                                                          RegisterWrite("rcx", WORD, True)), 1, "fd=-1, err=EPERM"))
CALLSITE = HookPoint(hook_id=1, function="syscall.Syscall", entry=0x4A3060, probe=0x4B0010, file_offset=0xB0010,
                     capability=0, call_len=5,
                     deny=DenyReturn("error", (RegisterWrite("rax", (1 << 64) - 1), RegisterWrite("rbx", 0),
                                               RegisterWrite("rcx", 1)), 1, "r1=-1, r2=0, err=EPERM"))
KILLS = HookPoint(hook_id=2, function="runtime.cgocall", entry=0x47FB40, probe=0x47FB40, file_offset=0x7FB40,
                  capability=0)
PLAN = EnforcementPlan(binary="/bin/app", pie=True, text_start=0x401000, text_end=0x600000, capabilities=("x",),
                       modules=("m",), ranges=(), hooks=(ENTRY, CALLSITE, KILLS))


def regs(**values: int) -> Registers:
    base = dict.fromkeys(REGISTER_NAMES, 0x1111)
    base.update(values)
    return Registers(**base)


def mark(hook: int, sp: int, *, call_len: int = 0, tgid: int = 100) -> dict[str, int]:
    return {"resume_ip": 0x4B0015 + BIAS if call_len else 0x4C0000 + BIAS, "resume_sp": sp + (0 if call_len else 8),
            "bp": 0xC000_0100, "bias": BIAS, "probe_ip": 0x4A0D6A + BIAS, "time_ns": 1, "hook_id": hook, "tgid": tgid}


def test_entry_probe_returns_to_the_caller_with_eperm() -> None:
    sp = 0xC000_0F00
    returns = DenyReturns(PLAN, {7: mark(0, sp)}.pop)
    out = returns.registers(100, 7, regs(rsp=sp - 8, rip=0x4A0D6B + BIAS))  # after `push rbp` was stepped
    assert out is not None
    assert (out.rip, out.rsp, out.rbp) == (0x4C0000 + BIAS, sp + 8, 0xC000_0100)
    assert (out.rax, out.rbx, out.rcx) == ((1 << 64) - 1, ITAB + BIAS, WORD + BIAS)
    assert out.r14 == 0x1111 and out.rdi == 0x1111  # g and the rest: as the stop found them
    assert returns.counts.returned == 1


def test_call_site_probe_skips_the_call() -> None:
    sp = 0xC000_0F00
    returns = DenyReturns(PLAN, {7: mark(1, sp, call_len=5)}.pop)
    out = returns.registers(100, 7, regs(rsp=sp - 8, rip=0x4A3060 + BIAS))  # the call was stepped into
    assert out is not None and (out.rip, out.rsp) == (0x4B0015 + BIAS, sp)
    assert (out.rax, out.rbx, out.rcx) == ((1 << 64) - 1, 0, 1)  # constants are not relocated


def test_a_sigsys_without_a_mark_is_passed_on() -> None:
    returns = DenyReturns(PLAN, {}.get)
    assert returns.registers(100, 7, regs()) is None and returns.counts.unmarked == 1


@pytest.mark.parametrize(("the_mark", "rsp", "why"), [
    (mark(0, 0xC000_0F00, tgid=101), 0xC000_0F00, "of process 101"),  # another process's mark
    (mark(2, 0xC000_0F00), 0xC000_0F00, "no return plan"),  # a hook that kills
    (mark(9, 0xC000_0F00), 0xC000_0F00, "no return plan"),  # not a hook of the plan
    (mark(0, 0xC000_0F00), 0xC000_0F00 - 16, "stopped with RSP"),  # the thread ran on past the probe
    (mark(0, 0xC000_0F00), 0xC000_0F08, "stopped with RSP"),  # above the probe's stack pointer
])
def test_a_mark_that_does_not_fit_fails_closed(the_mark: dict[str, int], rsp: int, why: str) -> None:
    returns = DenyReturns(PLAN, {7: the_mark}.pop)
    with pytest.raises(DenyMismatch, match=why):
        returns.registers(100, 7, regs(rsp=rsp))
    assert returns.counts.mismatched == 1 and returns.counts.returned == 0
