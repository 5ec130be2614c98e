"""The agent's policy directory: every `*.yaml`/`*.yml` file is one policy with a `match:` section.

Why a module of its own: a reload must never lose enforcement. A file that fails to parse (or has no
`match:`, or matches exactly what another file matches) is rejected with one error line naming the file
and line, and the last good version of that file stays in force; a removed file is removed. Pure over
(path, text) pairs; reading the directory is `PolicyDir.scan`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gohook.errors import PolicyError
from gohook.policy.format import CapabilityNames, Policy, PolicyMatch, parse_policy

SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class AgentPolicy:
    """One policy file of the directory, parsed, with its match."""

    path: str
    policy: Policy
    text: str = field(compare=False, repr=False)

    @property
    def match(self) -> PolicyMatch:
        assert self.policy.match is not None  # PolicyDir refuses files without one
        return self.policy.match


@dataclass(frozen=True)
class Change:
    """What one scan changed: files now in force with new content, files removed, files rejected (errors)."""

    updated: tuple[AgentPolicy, ...] = ()
    removed: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.updated or self.removed or self.errors)


def is_policy_file(path: str | Path) -> bool:
    name = Path(path).name
    return name.endswith(SUFFIXES) and not name.startswith(".")


class PolicyDir:
    """The policies in force, by file; `apply` takes the directory's current (path, text) pairs."""

    def __init__(self, directory: str | Path, vocab: CapabilityNames) -> None:
        self.directory = Path(directory)
        self.vocab = vocab
        self.in_force: dict[str, AgentPolicy] = {}
        self.rejected: dict[str, str] = {}  # path -> the error line of its current (bad) content

    def scan(self) -> Change:
        """Read the directory and apply what changed. An unreadable directory is a PolicyError."""
        try:
            names = sorted(p for p in self.directory.iterdir() if is_policy_file(p) and p.is_file())
        except OSError as exc:
            raise PolicyError(f"{self.directory}: cannot read the policy directory: {exc.strerror}") from None
        files: list[tuple[str, str | None]] = []
        for p in names:
            try:
                files.append((str(p), p.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                files.append((str(p), None))
                self.rejected[str(p)] = f"{p}: cannot read policy: {exc}"
        return self.apply(files)

    def apply(self, files: Iterable[tuple[str, str | None]]) -> Change:
        """Files present now (text None: unreadable, keep the last good one); files absent are removed."""
        present: dict[str, str | None] = dict(files)
        updated: list[AgentPolicy] = []
        errors: list[str] = []
        removed = [p for p in self.in_force if p not in present]
        for p in removed:
            del self.in_force[p]
        for p in list(self.rejected):
            if p not in present:
                del self.rejected[p]
        for path, text in sorted(present.items()):
            if text is None:
                errors.append(self.rejected[path])
                continue
            old = self.in_force.get(path)
            if old is not None and old.text == text:
                continue
            try:
                policy = parse_policy(text, self.vocab, path)
                if policy.match is None:
                    raise PolicyError(f"{path}:1: an agent policy needs a match: section (binary:, main_module: "
                                      "or build_id:)")
                clash = next((o for o in self.in_force.values() if o.path != path and o.policy.match == policy.match),
                             None)
                if clash is not None:
                    raise PolicyError(f"{path}:{policy.match.line}: matches exactly what {clash.path} matches "
                                      f"({policy.match.describe()}): one policy per program")
            except PolicyError as exc:
                message = str(exc)
                if self.rejected.get(path) != message:
                    errors.append(message + (" (the last good version stays in force)" if old is not None else ""))
                self.rejected[path] = message
                continue
            self.rejected.pop(path, None)
            entry = AgentPolicy(path, policy, text)
            self.in_force[path] = entry
            updated.append(entry)
        return Change(tuple(updated), tuple(removed), tuple(errors))
