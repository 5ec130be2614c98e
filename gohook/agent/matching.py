"""Which policy of the directory applies to a program file.

A policy's `match:` keys must all hold (gohook.policy.format.PolicyMatch):
- build_id: the program's Go build ID equals it;
- binary: the program is the file at that path (same device and inode), or a copy of it (same build ID as
  the file now at the path: a container's copy, a copy under another name);
- main_module: the program's build info names that main module.
When several policies match, the most specific wins: build_id, then binary, then main_module (a policy
naming more keys beats one naming fewer at the same rank). Two policies that tie are refused at load
(gohook.agent.policies: identical matches); different ones that still tie (e.g. a build_id policy and a
binary policy naming the same program) are decided by rank, and the order is documented in docs/agent.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gohook.agent.identity import FileVersion, Program, identify
from gohook.agent.policies import AgentPolicy


@dataclass
class BinaryRefs:
    """The program at each policy `binary:` path, cached by file version (re-read when the file changes)."""

    read: Callable[[str], Program] = identify

    def __post_init__(self) -> None:
        self._cache: dict[str, Program | None] = {}

    def at(self, path: str) -> Program | None:
        """The program now at path (None when nothing readable is there)."""
        try:
            version = FileVersion.of_path(path)
        except OSError:
            self._cache.pop(path, None)
            return None
        cached = self._cache.get(path)
        if cached is not None and cached.version == version:
            return cached
        try:
            program = self.read(path)
        except OSError:
            return None
        self._cache[path] = program
        return program


def _rank(policy: AgentPolicy) -> tuple[int, int]:
    m = policy.match
    first = 3 if m.build_id is not None else 2 if m.binary is not None else 1
    return first, sum(v is not None for v in (m.build_id, m.binary, m.main_module))


def matches(policy: AgentPolicy, program: Program, refs: BinaryRefs) -> bool:
    """Whether every key of the policy's match holds for program."""
    m = policy.match
    if m.build_id is not None and program.build_id != m.build_id:
        return False
    if m.main_module is not None and program.main_module != m.main_module:
        return False
    if m.binary is not None:
        try:
            same = FileVersion.of_path(m.binary).same_file(program.version)
        except OSError:
            same = False
        if not same:
            at = refs.at(m.binary)
            if at is None or at.build_id is None or at.build_id != program.build_id:
                return False
    return True


def choose(policies: Iterable[AgentPolicy], program: Program, refs: BinaryRefs) -> AgentPolicy | None:
    """The policy that applies to program, or None. Only Go programs match."""
    if not program.is_go:
        return None
    found = [p for p in policies if matches(p, program, refs)]
    if not found:
        return None
    return max(found, key=_rank)  # max keeps the first of equals: files in name order


def binary_names(policies: Iterable[AgentPolicy]) -> set[str]:
    """The file names of every `binary:` path (what the kernel may hold exec of by name)."""
    return {os.path.basename(p.match.binary) for p in policies if p.match.binary is not None}
