"""Stand-in plan building for the BPF tests and the benchmark.

Interim: gohook/hooks.py (the static hook-point finder) and gohook/ranges.py
(the inline-aware range builder) will replace `probe_address` and
`function_ranges`. Until then this module builds EnforcementPlans directly
from a GoBinary:

- probe_address: disassemble the function's entry and take the first
  conditional branch after the stack-check `cmp` (the `jbe` to morestack),
  which the kernel emulates instead of single-stepping; the entry when there
  is no stack check.
- function_ranges: one range per function, attributed to its physical
  function's module (no inline expansion).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import capstone

from gohook.errors import AddressError
from gohook.gosym import STD, GoBinary
from gohook.plan import (
    Action,
    ArgRead,
    Attribution,
    EnforcementPlan,
    FlagRule,
    HookPoint,
    Mode,
    Range,
)

#: runtime.g goid offsets on amd64 by Go minor release (REFERENCE.md section 6).
GOID_OFFSETS = {21: 152, 22: 152, 23: 160, 24: 160, 25: 160, 26: 152, 27: 152}

_PROLOGUE_BYTES = 32


def probe_address(binary: GoBinary, function: str) -> int:
    """Static vaddr of the first jcc after the entry stack check of function, else its entry."""
    f = binary.functions_by_name.get(function)
    if f is None:
        raise AddressError(f"{binary.path}: no function {function}")
    code = binary.image.read(f.entry, min(_PROLOGUE_BYTES, f.end - f.entry))
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    seen_cmp = False
    for insn in md.disasm(code, f.entry):
        if insn.mnemonic == "cmp":
            seen_cmp = True
        elif seen_cmp and insn.mnemonic.startswith("j") and insn.mnemonic != "jmp":
            return int(insn.address)
        elif insn.mnemonic not in ("lea", "mov"):
            break
    return f.entry


def module_ids(binary: GoBinary) -> tuple[str, ...]:
    """Non-std modules that own functions, sorted: module id i + 1 is the i-th."""
    found = {binary.module_of(f.name) for f in binary.functions}
    found.discard(STD)
    return tuple(sorted(found))


def function_ranges(binary: GoBinary, modules: Sequence[str],
                    trusted: frozenset[str] = frozenset()) -> tuple[Range, ...]:
    """One range per non-std, untrusted function (module of the physical function), sorted."""
    ids = {m: i + 1 for i, m in enumerate(modules)}
    out = []
    for f in sorted(binary.functions, key=lambda f: f.entry):
        mod = binary.module_of(f.name)
        if mod == STD or mod in trusted or f.end <= f.entry:
            continue
        out.append(Range(f.entry, f.end, (ids[mod],)))
    return tuple(out)


_NO_ARG = ArgRead()


def hook(binary: GoBinary, hook_id: int, function: str, capability: int, *, arg: ArgRead = _NO_ARG,
         rule: FlagRule | None = None, direct_caller_only: bool = False, at_entry: bool = False) -> HookPoint:
    """A HookPoint on function (at its probe address, or at its entry with at_entry)."""
    f = binary.functions_by_name.get(function)
    if f is None:
        raise AddressError(f"{binary.path}: no function {function}")
    probe = f.entry if at_entry else probe_address(binary, function)
    return HookPoint(hook_id=hook_id, function=function, entry=f.entry, probe=probe,
                     file_offset=binary.vaddr_to_offset(probe), capability=capability, arg=arg, rule=rule,
                     direct_caller_only=direct_caller_only)


def plan_for(binary: GoBinary, hooks: Sequence[HookPoint], capabilities: Sequence[str], *,
             allowed: Mapping[str, int] | None = None, default_mask: int = 0, mode: Mode = Mode.ENFORCE,
             action: Action = Action.KILL, attribution: Attribution = Attribution.CALLER,
             deny_unattributed: bool = False) -> EnforcementPlan:
    """A plan for binary; `allowed` maps module paths to capability masks."""
    modules = module_ids(binary)
    ids = {m: i + 1 for i, m in enumerate(modules)}
    goexit = binary.functions_by_name.get("runtime.goexit")
    return EnforcementPlan(
        binary=binary.path,
        pie=binary.is_pie,
        text_start=binary.text_start,
        text_end=binary.text_end,
        capabilities=tuple(capabilities),
        modules=modules,
        ranges=function_ranges(binary, modules),
        hooks=tuple(hooks),
        allowed={ids[m]: mask for m, mask in (allowed or {}).items()},
        default_mask=default_mask,
        action=action,
        mode=mode,
        attribution=attribution,
        deny_unattributed=deny_unattributed,
        goexit=(goexit.entry, goexit.end) if goexit else (0, 0),
        goid_offset=GOID_OFFSETS.get(binary.go_minor or 0, 0),
    )
