"""Policy operations: merge (union with provenance) and diff (what a change grants), pure and argparse-free.

merge_policies(sources)
    The union: every module key of every input; a key's capabilities are
    everything any input gave the modules that key names (its own rule there,
    else the glob or default that decided them there), so the merged policy
    allows whatever any input allowed. Defaults and trust lists are unions.
    The comment lines above each module key (provenance: `# static: ...`
    from `policy generate`, `# learned: ...` from learn mode) are kept, input
    order, duplicates once; a capability a key gets only through another
    input's glob or default gets a `# merge: ...` line saying so. Settings
    that differ take the stricter value (kill over audit, stack over caller,
    deny over allow), and the header says which.

diff_policies(old, new)
    Per module key of either policy: capabilities added and removed,
    comparing what each policy gives the modules that key names (so dropping
    a key that denied more than the default is a grant, and a new glob is
    compared with what it overrides). Then default, trust and settings.
    `grants_new` when NEW grants anything OLD did not: a capability for some
    module, a wider default, a newly trusted module, action kill -> audit,
    unattributed deny -> allow, attribution stack -> caller.

A glob key is compared and merged by reading its text as a module path
(what would decide `github.com/acme/*` itself). That is exact for module
paths and prefix globs (`github.com/acme/*`, `x.org/a*`), the forms policies
use, and is what the property tests check; two globs of other shapes that
overlap without one containing the other are only approximated.

JSON of a diff (PolicyDiff.to_json): {"grants_new", "modules": [{"module",
"change", "old", "new", "added", "removed", "grants", "notes"}], "default":
{"old", "new", "added", "removed", "grants"}, "trust": {"added", "removed",
"grants"}, "settings": [{"key", "old", "new", "grants"}]}; capability lists
are sorted names, "old"/"new" of a module are null when the file has no such key.

vocabulary() is the capability names of the packaged catalog, the one every
policy command validates against.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gohook.policy.format import (
    Action,
    Attribution,
    CapabilityNames,
    ModuleRule,
    Policy,
    PolicyComments,
    load_policy_with_comments,
    render_policy,
)

__all__ = [
    "MergeResult",
    "ModuleChange",
    "PolicyDiff",
    "SettingChange",
    "Source",
    "diff_policies",
    "effective",
    "load_source",
    "merge_policies",
    "render_diff",
    "vocabulary",
]


def vocabulary() -> CapabilityNames:
    """The capability names of the packaged catalog."""
    from gohook.sites.catalog import load_catalog

    return CapabilityNames([c.name for c in load_catalog().capabilities])


@dataclass(frozen=True)
class Source:
    """One input policy with its comments; `name` is how headers and notes refer to it."""

    name: str
    policy: Policy
    comments: PolicyComments = field(default_factory=PolicyComments)


def effective(policy: Policy, pattern: str) -> tuple[frozenset[str], str]:
    """What `policy` gives the modules `pattern` names, and which rule says so.

    Its own rule when it has the key ("rule"); else, reading the pattern as a
    module path, the glob or default that would decide it ("glob X" / "default").
    """
    for rule in policy.modules:
        if rule.pattern == pattern:
            return rule.capabilities, "rule"
    rule = policy.rule_for(pattern)
    if rule is not None:
        return rule.capabilities, f"glob {rule.pattern}"
    return policy.default, "default"


def _caps(caps: Iterable[str]) -> str:
    return ", ".join(sorted(caps)) or "nothing"


# --- merge -------------------------------------------------------------------------------------

# each setting with its stricter value (a Policy field value)
_STRICTER: tuple[tuple[str, object], ...] = (("action", Action.KILL), ("attribution", Attribution.STACK),
                                            ("unattributed", True))


def _setting(policy: Policy, key: str) -> object:
    return {"action": policy.action, "attribution": policy.attribution,
            "unattributed": policy.deny_unattributed}[key]


def _setting_text(key: str, value: object) -> str:
    if key == "unattributed":
        return "deny" if value else "allow"
    return str(getattr(value, "value", value))


@dataclass(frozen=True)
class MergeResult:
    policy: Policy
    notes: dict[str, list[str]]  # module pattern -> comment lines above its key
    header: list[str]
    conflicts: list[str]  # also in header

    def render(self, vocab: CapabilityNames) -> str:
        return render_policy(self.policy, header=self.header, notes=self.notes, all_names=vocab.names)


def merge_policies(sources: Sequence[Source]) -> MergeResult:
    """The union of `sources` (see the module docstring); pure."""
    if not sources:
        raise ValueError("merge_policies needs at least one policy")
    patterns = list(dict.fromkeys(r.pattern for s in sources for r in s.policy.modules))
    rules: list[ModuleRule] = []
    notes: dict[str, list[str]] = {}
    for pattern in patterns:
        views = [(s, *effective(s.policy, pattern)) for s in sources]
        lines: list[str] = []
        own: set[str] = set()  # what the inputs that list this key give it
        for s, got, why in views:
            if why == "rule":
                own |= got
                lines += [c for c in s.comments.modules.get(pattern, ()) if c not in lines]
        caps = set(own)
        for s, got, why in views:
            if why != "rule" and got - caps:  # another input's glob or default allowed more
                lines.append(f"merge: {_caps(got - caps)} from {s.name} ({why})")
                caps |= got
        rules.append(ModuleRule(pattern, frozenset(caps)))
        if lines:
            notes[pattern] = lines
    first = sources[0].policy
    kw: dict[str, Any] = {}
    conflicts: list[str] = []
    for key, strict in _STRICTER:
        values = [(s.name, _setting(s.policy, key)) for s in sources]
        chosen = strict if any(v == strict for _, v in values) else _setting(first, key)
        if len({_setting_text(key, v) for _, v in values}) > 1:
            said = ", ".join(f"{name} {_setting_text(key, v)}" for name, v in values)
            conflicts.append(f"conflict: {key}: {said}; kept {_setting_text(key, chosen)} (the stricter)")
        kw["deny_unattributed" if key == "unattributed" else key] = chosen
    merged = Policy(
        path="merged",
        default=frozenset().union(*(s.policy.default for s in sources)),
        modules=tuple(rules),
        trust=tuple(dict.fromkeys(t for s in sources for t in s.policy.trust)),
        **kw,
    )
    header = [f"merged by gohook policy merge from {', '.join(s.name for s in sources)}"]
    for s in sources:
        header += [f"{s.name}: {h}" for h in s.comments.header]
    header += conflicts
    return MergeResult(merged, notes, header, conflicts)


# --- diff --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModuleChange:
    pattern: str
    old_rule: frozenset[str] | None  # None: OLD has no such key
    new_rule: frozenset[str] | None
    old: frozenset[str]  # what OLD gives the modules the key names
    new: frozenset[str]
    old_from: str  # "rule X" / "glob X" / "default"
    new_from: str
    notes: tuple[str, ...] = ()  # NEW's comments above the key (why it grants)

    @property
    def added(self) -> frozenset[str]:
        return self.new - self.old

    @property
    def removed(self) -> frozenset[str]:
        return self.old - self.new

    @property
    def grants(self) -> bool:
        return bool(self.added)

    @property
    def change(self) -> str:
        if self.old_rule is None:
            return "added"
        return "removed" if self.new_rule is None else "changed"

    def to_json(self) -> dict[str, Any]:
        return {"module": self.pattern, "change": self.change,
                "old": sorted(self.old_rule) if self.old_rule is not None else None,
                "new": sorted(self.new_rule) if self.new_rule is not None else None,
                "added": sorted(self.added), "removed": sorted(self.removed), "grants": self.grants,
                "notes": list(self.notes)}


@dataclass(frozen=True)
class SettingChange:
    key: str
    old: str
    new: str
    grants: bool  # the new value is the laxer one


@dataclass(frozen=True)
class PolicyDiff:
    modules: tuple[ModuleChange, ...]
    default_old: frozenset[str]
    default_new: frozenset[str]
    trust_added: tuple[str, ...]
    trust_removed: tuple[str, ...]
    settings: tuple[SettingChange, ...]

    @property
    def default_added(self) -> frozenset[str]:
        return self.default_new - self.default_old

    @property
    def default_removed(self) -> frozenset[str]:
        return self.default_old - self.default_new

    @property
    def grants_new(self) -> bool:
        return (any(m.grants for m in self.modules) or bool(self.default_added) or bool(self.trust_added)
                or any(s.grants for s in self.settings))

    @property
    def empty(self) -> bool:
        return not (self.modules or self.default_added or self.default_removed or self.trust_added
                    or self.trust_removed or self.settings)

    def to_json(self) -> dict[str, Any]:
        return {
            "grants_new": self.grants_new,
            "modules": [m.to_json() for m in self.modules],
            "default": {"old": sorted(self.default_old), "new": sorted(self.default_new),
                        "added": sorted(self.default_added), "removed": sorted(self.default_removed),
                        "grants": bool(self.default_added)},
            "trust": {"added": list(self.trust_added), "removed": list(self.trust_removed),
                      "grants": bool(self.trust_added)},
            "settings": [{"key": s.key, "old": s.old, "new": s.new, "grants": s.grants} for s in self.settings],
        }


def diff_policies(old: Policy, new: Policy, new_comments: PolicyComments | None = None) -> PolicyDiff:
    """What changes from `old` to `new` (see the module docstring); pure."""
    comments = new_comments or PolicyComments()
    old_rules = {r.pattern: r.capabilities for r in old.modules}
    new_rules = {r.pattern: r.capabilities for r in new.modules}
    changes = []
    for pattern in dict.fromkeys([*old_rules, *new_rules]):
        (o, o_from), (n, n_from) = effective(old, pattern), effective(new, pattern)
        o_rule, n_rule = old_rules.get(pattern), new_rules.get(pattern)
        if o == n and (o_rule is None) == (n_rule is None):
            continue
        changes.append(ModuleChange(pattern, o_rule, n_rule, o, n, o_from, n_from,
                                    comments.modules.get(pattern, ())))
    settings = []
    for key, strict in _STRICTER:
        a, b = _setting(old, key), _setting(new, key)
        if a != b:
            settings.append(SettingChange(key, _setting_text(key, a), _setting_text(key, b), a == strict))
    return PolicyDiff(
        modules=tuple(changes),
        default_old=old.default,
        default_new=new.default,
        trust_added=tuple(t for t in new.trust if t not in old.trust),
        trust_removed=tuple(t for t in old.trust if t not in new.trust),
        settings=tuple(settings),
    )


_LAXER = {"action": "violations are no longer stopped", "attribution": "only the nearest module is checked",
          "unattributed": "calls with no module frame are allowed"}


def render_diff(d: PolicyDiff, old_name: str, new_name: str) -> str:
    lines: list[str] = []
    for m in d.modules:
        parts = [f"+{c}" for c in sorted(m.added)] + [f"-{c}" for c in sorted(m.removed)]
        what = {"added": f"new key (was {m.old_from}: [{_caps(m.old)}])",
                "removed": f"key dropped (now {m.new_from}: [{_caps(m.new)}])",
                "changed": f"[{_caps(m.old)}] -> [{_caps(m.new)}]"}[m.change]
        mark = "GRANTS" if m.grants else "      "
        lines.append(f"{mark} module {m.pattern}: {' '.join(parts) or 'same capabilities'}  ({what})")
        if m.grants:
            lines += [f"         # {n}" for n in m.notes]
    if d.default_added or d.default_removed:
        parts = [f"+{c}" for c in sorted(d.default_added)] + [f"-{c}" for c in sorted(d.default_removed)]
        lines.append(f"{'GRANTS' if d.default_added else '      '} default: {' '.join(parts)}")
    for t in d.trust_added:
        lines.append(f"GRANTS trust: +{t} (treated like the standard library: unchecked)")
    for t in d.trust_removed:
        lines.append(f"       trust: -{t}")
    for s in d.settings:
        why = f" ({_LAXER[s.key]})" if s.grants else ""
        lines.append(f"{'GRANTS' if s.grants else '      '} {s.key}: {s.old} -> {s.new}{why}")
    if d.empty:
        verdict = f"no differences between {old_name} and {new_name}"
    elif d.grants_new:
        n = sum(ln.startswith("GRANTS") for ln in lines)
        verdict = f"{new_name} grants what {old_name} did not ({n} line{'s' * (n != 1)} marked GRANTS)"
    else:
        verdict = f"{new_name} grants nothing new over {old_name}"
    return "\n".join([*lines, f"diff: {verdict}"]) + "\n"


def load_source(path: str, vocab: CapabilityNames) -> Source:
    """A policy file with its comments, named by its path."""
    policy, comments = load_policy_with_comments(path, vocab)
    return Source(path, policy, comments)
