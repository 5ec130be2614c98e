"""Learn mode's policy: every (module, capability) observed, and with which arguments, written as a policy.

The session feeds each observed call in as plain values (module, capability,
argument, the logical frames of its stack) rather than as an event record:
the policy stage sits below the events, so it knows a frame only as
something with a `function` and a `module` (the `Frame` protocol, which
gohook.events.symbolize.StackFrame fits).

Two scopes (`gohook attach --mode learn --learn-scope ...`):

- `arguments` (the default): a scoped rule per capability that takes
  argument patterns (gohook.policy.patterns.SCOPABLE): exact environment
  variable names, addresses as `IP:port` (`unix:/path`, `unix:@name`), exact
  paths; `any` for every other capability.
- `capabilities`: the list form, any argument (what learn mode wrote before
  argument-scoped rules).

Paths are collapsed when a module touched many files under one directory
(gohook.policy.arguments, the rule in full): more than 8 distinct paths
directly in a directory D become `D/*`; more than 8 remaining paths spread
over several directories under D become `D/**` (the deepest such D); never
to `/`, a top-level directory (`/etc/**`, `/home/*`), a home directory
(`/home/NAME`) or anything under `/proc`: those stay exact. More than 8
ports of one address become `IP:*` (the kernel's per-address port table).

A learned rule never refuses an argument it was learned from: an argument no
pattern can match as the process passes it (a relative path, one with `.`,
`..` or `//`, one longer than the kernel matches — which includes every
argument the capture buffer truncated —, a file descriptor, a missing or
uncaptured argument, a whole-environment read with no name) makes that
capability `any`, and the comment above the module says why. Every pattern
is checked with gohook.policy.patterns against the arguments it stands for.
Evidence comments (`# learned: CAP 'ARG' via STACK`, the first call of each
capability) are written as before.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gohook.policy.arguments import Refused, Rule, argument_class, exact_pattern, module_rule, scope_exact
from gohook.policy.format import Policy, render_policy

#: Distinct arguments kept per module and capability; beyond this the capability is learned as `any`.
MAX_ARGUMENTS = 4096


class LearnScope(enum.Enum):
    """What learn mode writes per capability: the arguments seen (scoped rules) or just the capability."""

    ARGUMENTS = "arguments"
    CAPABILITIES = "capabilities"


class Frame(Protocol):
    """One logical frame of a recorded stack, innermost first in a stack."""

    @property
    def function(self) -> str: ...

    @property
    def module(self) -> str: ...


def example_path(module: str, frames: Sequence[Frame], limit: int = 6) -> str:
    """`module function -> ... -> hooked function` from a recorded stack (outermost relevant frame first).

    `frames` is innermost first; the path starts at the first frame of `module` (all frames when none is).
    """
    k = next((i for i, f in enumerate(frames) if f.module == module), len(frames) - 1)
    names = [f.function for f in reversed(frames[: k + 1])]
    if len(names) > limit:
        names = [*names[:2], "...", *names[-(limit - 3):]]
    return " -> ".join(names)


@dataclass(frozen=True)
class Observation:
    """The first call seen of one (module, capability): its argument and stack, the rule's example."""

    argument: str | None
    frames: tuple[Frame, ...]


@dataclass
class Arguments:
    """What one (module, capability) was called with: exact patterns, or why it must be `any`."""

    first: Observation
    exact: set[str] = field(default_factory=set)
    refused: str | None = None  # why `any`: the first argument no exact pattern matches
    calls: int = 0  # events observed


@dataclass(frozen=True)
class Learned:
    """The learned rules: module -> capability -> sorted patterns (None: any), and the comments per module."""

    rules: dict[str, dict[str, Rule]]
    notes: dict[str, list[str]]


class Learner:
    """Learn mode: every (module, capability) seen, with one example stack and the arguments it took."""

    def __init__(self, scope: LearnScope = LearnScope.ARGUMENTS, max_arguments: int = MAX_ARGUMENTS) -> None:
        self.scope = scope
        self.max_arguments = max_arguments
        self.seen: dict[str, dict[str, Arguments]] = {}
        self.header: list[str] = []  # more lines for the policy's header (loss, coverage)

    def observe(self, module: str, capability: str, argument: str | None, frames: Sequence[Frame], *,
                unattributed: bool = False) -> None:
        """Record one call; unattributed calls and std:init are not modules a policy names."""
        if unattributed or module.startswith("std:"):
            return
        caps = self.seen.setdefault(module, {})
        got = caps.get(capability)
        if got is None:
            got = caps[capability] = Arguments(Observation(argument, tuple(frames)))
        got.calls += 1
        if (self.scope is LearnScope.CAPABILITIES or got.refused is not None
                or argument_class(capability) is None):
            return
        pattern = exact_pattern(capability, argument)
        if isinstance(pattern, Refused):
            shown = f" ({argument!r})" if argument is not None and argument not in pattern.reason else ""
            got.refused = pattern.reason + shown
        elif len(got.exact) >= self.max_arguments and pattern.text not in got.exact:
            got.refused = f"more than {self.max_arguments} distinct arguments"
            got.exact.clear()
        else:
            got.exact.add(pattern.text)

    def reconcile(self, counted: Mapping[tuple[str, str], int]) -> list[str]:
        """Complete what was observed with what the kernel counted per (module, capability) (learn mode's
        learned_calls map): a pair whose events were lost, all or some (a full ring buffer), is granted for
        any argument, since the arguments it was called with are not all known. Returns a line per such
        pair (also kept for the policy's header)."""
        lines = []
        for (module, capability), calls in sorted(counted.items()):
            if module.startswith("std:") or calls <= 0:
                continue
            got = self.seen.setdefault(module, {}).get(capability)
            if got is not None and got.calls >= calls:
                continue
            seen = got.calls if got is not None else 0
            why = f"the events of {calls - seen} of its {calls} calls were lost: any argument"
            if got is None:
                got = self.seen[module][capability] = Arguments(Observation(None, ()), calls=0)
            got.refused = why
            got.exact.clear()
            lines.append(f"{module} {capability}: {why}")
        self.header += [f"LOSS: {line}" for line in lines]
        return lines

    def coverage(self, never_fired: Sequence[str], hooks: int) -> None:
        """Say in the policy's header which hook points never fired during the run (what it did not exercise)."""
        if never_fired:
            self.header.append(f"coverage: {hooks - len(never_fired)} of {hooks} hook points fired; never: "
                               + ", ".join(never_fired))

    def learned(self) -> Learned:
        """The learned rules and their comments (evidence first, then how each scoped rule was made)."""
        rules: dict[str, dict[str, Rule]] = {}
        notes: dict[str, list[str]] = {}
        for module in sorted(self.seen):
            caps = self.seen[module]
            lines = []
            for cap, got in sorted(caps.items()):
                seen = got.first
                arg = f" {seen.argument!r}" if seen.argument else ""
                via = f"via {example_path(module, seen.frames)}" if seen.frames else "(counted in the kernel)"
                lines.append(f"learned: {cap}{arg} {via}")
            out: dict[str, Rule] = {}
            for cap, got in sorted(caps.items()):
                if self.scope is LearnScope.CAPABILITIES or argument_class(cap) is None:
                    out[cap] = None
                elif got.refused is not None or not got.exact:
                    out[cap] = None
                    lines.append(f"learned: {cap}: any: {got.refused or 'no argument seen'}")
                else:
                    scoped = scope_exact(cap, got.exact)
                    out[cap] = scoped.patterns
                    lines += [f"learned: {n}" for n in scoped.notes]
            rules[module] = out
            notes[module] = lines
        return Learned(rules, notes)

    def rules(self) -> dict[str, dict[str, Rule]]:
        """module -> capability -> sorted list of patterns, or None for any argument."""
        return self.learned().rules

    def policy_text(self, binary: str) -> str:
        """The learned policy as YAML, each rule commented with its example (`# learned: ...`)."""
        got = self.learned()
        policy = Policy(path="learned", modules=tuple(module_rule(m, r) for m, r in got.rules.items()))
        header = [f"learned by gohook attach --mode learn on {Path(binary).name} "
                  f"({time.strftime('%Y-%m-%d %H:%M')}): allows exactly what was observed"]
        header += self.header
        if self.scope is LearnScope.ARGUMENTS:
            header.append("arguments as seen: exact names, IP:port addresses and paths; more than 8 paths in one "
                          "directory -> DIR/*, in a tree -> DIR/** (never /, a top-level or home directory, /proc)")
        return render_policy(policy, header=header, notes=got.notes)
