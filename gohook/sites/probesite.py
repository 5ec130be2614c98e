"""Where to put a uprobe in a Go function: a pure function over machine code.

x86 uprobes emulate branches (jmp/jcc/call) and `push reg`; any other
instruction under a probe is single-stepped out of line, which costs about
12 us per hit on this kind of machine instead of about 0.75 us. The function
entry of a Go function is `cmp rsp,[r14+0x10]` (or `lea r12,[rsp-N]; cmp
r12,[r14+0x10]`), which must be single-stepped. So we probe the first
emulated instruction reached from the entry *while the registers still hold
the entry state* (argument registers, RSP with the return address at [RSP],
RBP = the caller's frame pointer):

    1. `push rbp` reached by falling through the stack check (Go 1.21+
       prologue `cmp; jbe morestack; push rbp`): one hit per call, even when
       the stack grows (the morestack path re-enters at the entry and passes
       the check the second time);
    2. otherwise the `jbe`/`jcc` of the stack check (Go 1.19 prologues set up
       the frame with `sub rsp` instead of `push rbp`): hit twice when the
       stack grows (the function restarts after morestack);
    3. otherwise the entry itself (single-stepped), with the reason.

Instructions allowed before the probe: the stack-check `cmp`, and `lea r12`
/ `lea r13` of the big-frame check (they write no register the probe reads).
"""

from __future__ import annotations

from dataclasses import dataclass

import capstone
from capstone import x86

_MD = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
_MD.detail = True
_SCRATCH = {x86.X86_REG_R12, x86.X86_REG_R13}
PROLOGUE_WINDOW = 48  # bytes of the function start we look at


@dataclass(frozen=True, slots=True)
class ProbeSite:
    address: int
    kind: str  # "push-rbp", "stack-check-branch" or "entry"
    reason: str


def _is_stack_check_cmp(insn: capstone.CsInsn) -> bool:
    if insn.id != x86.X86_INS_CMP or len(insn.operands) != 2:
        return False
    mem = insn.operands[1]
    return mem.type == x86.X86_OP_MEM and mem.mem.base == x86.X86_REG_R14


def find_probe_site(code: bytes, entry: int) -> ProbeSite:
    """Best probe address for a function whose first bytes are `code` (at vaddr `entry`)."""
    insns = list(_MD.disasm(code[:PROLOGUE_WINDOW], entry))
    if not insns:
        return ProbeSite(entry, "entry", "could not disassemble the function start")
    branch: capstone.CsInsn | None = None
    for insn in insns:
        if insn.id == x86.X86_INS_PUSH and insn.op_str == "rbp":
            return ProbeSite(insn.address, "push-rbp", "push rbp is emulated; entry state intact")
        if _is_stack_check_cmp(insn):
            continue
        if insn.id == x86.X86_INS_LEA and insn.operands and insn.operands[0].reg in _SCRATCH:
            continue
        if branch is None and insn.group(capstone.CS_GRP_JUMP) and insn.id != x86.X86_INS_JMP:
            # the conditional branch of the stack check: keep looking for a push after it
            branch = insn
            continue
        break
    if branch is not None:
        return ProbeSite(branch.address, "stack-check-branch",
                         "no push rbp in the prologue; the stack-check branch is emulated (hit twice on stack growth)")
    first = insns[0]
    return ProbeSite(entry, "entry",
                     f"no emulated instruction before the frame is set up (starts with {first.mnemonic} "
                     f"{first.op_str}); probe single-stepped at the entry")
