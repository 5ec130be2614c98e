"""Learn mode's policy: every (module, capability) observed, written as a policy that allows exactly that.

The session feeds each observed call in as plain values (module, capability,
argument, the logical frames of its stack) rather than as an event record:
the policy stage sits below the events, so it knows a frame only as
something with a `function` and a `module` (the `Frame` protocol, which
gohook.events.symbolize.StackFrame fits).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gohook.policy.format import ModuleRule, Policy, render_policy


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


class Learner:
    """Learn mode: every (module, capability) seen, with one example stack and argument."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, Observation]] = {}

    def observe(self, module: str, capability: str, argument: str | None, frames: Sequence[Frame], *,
                unattributed: bool = False) -> None:
        """Record one call; unattributed calls and std:init are not modules a policy names."""
        if unattributed or module.startswith("std:"):
            return
        caps = self.seen.setdefault(module, {})
        if capability not in caps:
            caps[capability] = Observation(argument, tuple(frames))

    def policy_text(self, binary: str) -> str:
        """The learned policy as YAML, each rule commented with its example (`# learned: ...`)."""
        rules = []
        notes: dict[str, list[str]] = {}
        for module in sorted(self.seen):
            caps = self.seen[module]
            rules.append(ModuleRule(module, frozenset(caps)))
            lines = []
            for cap, seen in sorted(caps.items()):
                arg = f" {seen.argument!r}" if seen.argument else ""
                lines.append(f"learned: {cap}{arg} via {example_path(module, seen.frames)}")
            notes[module] = lines
        policy = Policy(path="learned", modules=tuple(rules))
        header = [f"learned by gohook attach --mode learn on {Path(binary).name} "
                  f"({time.strftime('%Y-%m-%d %H:%M')}): allows exactly what was observed"]
        return render_policy(policy, header=header, notes=notes)
