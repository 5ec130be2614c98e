"""Policy operations: merge (union with provenance), diff (what a change grants), check, pure and argparse-free.

merge_policies(sources)
    The union: every module key of every input; a key's capabilities are
    everything any input gave the modules that key names (its own rule there,
    else the glob or default that decided them there), so the merged policy
    allows whatever any input allowed. Defaults and trust lists are unions.
    The comment lines above each module key (provenance: `# static: ...`
    from `policy generate`, `# learned: ...` from learn mode) are kept, input
    order, duplicates once; a capability a key gets only through another
    input's glob or default gets a `# merge: ...` line saying so. Settings
    that differ take the stricter value (action kill over error over audit,
    stack over caller, deny over allow), and the header says which.

    Actions per module: a key's merged action is the strictest of the
    actions the inputs' own rules for that key set (kill > error > audit);
    an input whose rule sets none, or that has no such key, has no say (its
    top-level action is in the merged top-level one), so a module's action
    exception survives a merge with a policy that merely lists the module.
    None set: the merged rule sets none (the merged top-level action). Two
    different actions on one key are a conflict line in the header.

    Scoped capabilities (argument patterns) are merged per capability: the
    union of the patterns (each text once, first input first), and `any` in
    any input wins. A union that needs more than MAX_PORTS_PER_NETWORK ports
    for one network is a PolicyError (the merged policy would not load).

diff_policies(old, new)
    Per module key of either policy: capabilities added and removed,
    comparing what each policy gives the modules that key names (so dropping
    a key that denied more than the default is a grant, and a new glob is
    compared with what it overrides). Then default, trust and settings.
    `grants_new` when NEW grants anything OLD did not: a capability for some
    module, a wider default, a newly trusted module, action kill or error ->
    audit (top-level or per module), unattributed deny -> allow, attribution
    stack -> caller.

    Actions (strictness kill > error > audit): per module key of either
    policy, the effective action (the key's own rule's action, else the
    rule deciding the key's text, else the top-level one: Policy.action_of)
    of OLD and NEW. A change is reported on the key's line unless on both
    sides it is only the top-level action (that change is the `action`
    setting line, once, not once per key). A change to audit is a loosening
    and counts as a grant (a violating call now runs); kill <-> error and
    any change away from audit are reported but grant nothing (the call is
    stopped either way).

    At argument level (ArgumentChange, per capability scoped on either
    side): scoped -> any is a grant and any -> scoped a narrowing; a pattern
    of NEW that OLD did not list is a grant unless one pattern of OLD covers
    it (gohook.policy.patterns.covers: conservative, so a pattern covered
    only by several old ones together still counts as a grant); a pattern
    OLD listed and NEW does not is a narrowing. A new capability granted
    only with patterns is a grant like any new capability.

A glob key is compared and merged by reading its text as a module path
(what would decide `github.com/acme/*` itself). That is exact for module
paths and prefix globs (`github.com/acme/*`, `x.org/a*`), the forms policies
use, and is what the property tests check; two globs of other shapes that
overlap without one containing the other are only approximated.

JSON of a diff (PolicyDiff.to_json): {"grants_new", "modules": [{"module",
"change", "old", "new", "added", "removed", "grants", "notes"[, "arguments"][, "action"]}],
"default": {"old", "new", "added", "removed", "grants"}, "trust": {"added",
"removed", "grants"}, "settings": [{"key", "old", "new", "grants"}]}; capability
lists are sorted names (a module's lists hold every capability allowed with
some argument), "old"/"new" of a module are null when the file has no such
key. "arguments" is there when either policy scopes a capability of that
key: [{"capability", "old", "new", "added", "removed", "wider", "grants"}],
"old"/"new" being the pattern texts, "any" (any argument) or [] (not
allowed), "wider" the added patterns no old pattern covers. "action" is there
when the key's effective action changes (as above): {"old", "new", "grants"}.

check_patterns(policy)
    What `policy check` reports about argument patterns the loader accepts:
    patterns that never match (a Unix socket path or abstract name longer
    than the 107 bytes sun_path holds) and, as notes, patterns another
    pattern of the same capability already covers.

vocabulary() is the capability names of the packaged catalog, the one every
policy command validates against.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gohook.errors import PolicyError
from gohook.policy.format import (
    Action,
    Attribution,
    CapabilityNames,
    ModuleRule,
    Policy,
    PolicyComments,
    load_policy_with_comments,
    quote_pattern,
    render_policy,
)
from gohook.policy.patterns import (
    UNIX_PATH_MAX_BYTES,
    Pattern,
    UnixPattern,
    covers,
    table_limit_violation,
)

__all__ = [
    "ArgumentChange",
    "Grants",
    "MergeResult",
    "ModuleChange",
    "PatternFinding",
    "PolicyDiff",
    "SettingChange",
    "Source",
    "check_patterns",
    "diff_policies",
    "effective",
    "effective_action",
    "effective_grants",
    "load_source",
    "merge_policies",
    "render_diff",
    "rule_grants",
    "vocabulary",
]

# capability -> its patterns, or None for any argument; a capability that is not a key is not allowed
Grants = dict[str, tuple[Pattern, ...] | None]


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


def rule_grants(rule: ModuleRule) -> Grants:
    """Every capability `rule` allows: None for any argument, else its patterns."""
    grants: Grants = {cap: None for cap in rule.capabilities}
    grants.update(rule.scopes)
    return grants


def effective_grants(policy: Policy, pattern: str) -> tuple[Grants, str]:
    """What `policy` gives the modules `pattern` names (per capability, with patterns), and which rule says so.

    Its own rule when it has the key ("rule"); else, reading the pattern as a
    module path, the glob or default that would decide it ("glob X" / "default").
    """
    for rule in policy.modules:
        if rule.pattern == pattern:
            return rule_grants(rule), "rule"
    rule = policy.rule_for(pattern)
    if rule is not None:
        return rule_grants(rule), f"glob {rule.pattern}"
    return {cap: None for cap in policy.default}, "default"


def effective(policy: Policy, pattern: str) -> tuple[frozenset[str], str]:
    """The capabilities `policy` allows (with any or some arguments) the modules `pattern` names, and why."""
    grants, why = effective_grants(policy, pattern)
    return frozenset(grants), why


def _caps(caps: Iterable[str]) -> str:
    return ", ".join(sorted(caps)) or "nothing"


def _texts(texts: Iterable[str]) -> str:
    return "[" + ", ".join(quote_pattern(t) for t in texts) + "]"


# --- merge -------------------------------------------------------------------------------------

SETTINGS = ("action", "attribution", "unattributed")


def _setting(policy: Policy, key: str) -> object:
    return {"action": policy.action, "attribution": policy.attribution,
            "unattributed": policy.deny_unattributed}[key]


def _strictness(key: str, value: object) -> int:
    """How strict a setting's value is: kill 2 > error 1 > audit 0, stack > caller, deny > allow."""
    if isinstance(value, Action):
        return value.strictness
    return int(value is Attribution.STACK if key == "attribution" else bool(value))


def _loosens(key: str, old: object, new: object) -> bool:
    """The change old -> new of a setting grants: for `action` only a change to audit (error and kill both stop
    the call), for the others any change to the laxer value."""
    if key == "action":
        return new is Action.AUDIT and old is not Action.AUDIT
    return _strictness(key, new) < _strictness(key, old)


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


def _union(into: dict[str, list[Pattern] | None], got: Grants) -> list[str]:
    """Add `got` to `into` (any wins, patterns once each); what it added, one phrase per capability."""
    said: list[str] = []
    for cap in sorted(got):
        g, have = got[cap], into.get(cap, ())
        if cap not in into:
            into[cap] = None if g is None else list(g)
            said.append(cap if g is None else f"{cap} {_texts(p.text for p in g)}")
        elif have is None:
            continue
        elif g is None:
            into[cap] = None
            said.append(f"{cap} (any argument)")
        else:
            new = [p for p in g if p not in have]
            if new:
                have.extend(new)
                said.append(f"{cap} +{_texts(p.text for p in new)}")
    return said


def _merged_rule(pattern: str, grants: dict[str, list[Pattern] | None], action: Action | None) -> ModuleRule:
    scopes = {cap: tuple(pats) for cap, pats in grants.items() if pats is not None}
    for cap, pats in scopes.items():
        over = table_limit_violation(pats)
        if over is not None:
            raise PolicyError(f"merge: module {pattern} {cap}: the union of the inputs' patterns does not fit the "
                              f"kernel's tables: {over[1]}")
    return ModuleRule.with_scopes(pattern, (cap for cap, pats in grants.items() if pats is None), scopes,
                                  action=action)


def _own_rule(policy: Policy, pattern: str) -> ModuleRule | None:
    return next((r for r in policy.modules if r.pattern == pattern), None)


def _merged_action(sources: Sequence[Source], pattern: str) -> tuple[Action | None, str | None]:
    """The strictest action the inputs' own rules for `pattern` set (None: none sets one), and a conflict line
    when they set different ones."""
    said = [(s.name, r.action) for s in sources if (r := _own_rule(s.policy, pattern)) is not None
            and r.action is not None]
    if not said:
        return None, None
    chosen = max((a for _, a in said), key=lambda a: a.strictness)
    if len({a for _, a in said}) == 1:
        return chosen, None
    return chosen, (f"conflict: module {pattern} action: {', '.join(f'{n} {a.value}' for n, a in said)}; "
                    f"kept {chosen.value} (the stricter)")


def merge_policies(sources: Sequence[Source]) -> MergeResult:
    """The union of `sources` (see the module docstring); pure. PolicyError when a union exceeds a kernel limit."""
    if not sources:
        raise ValueError("merge_policies needs at least one policy")
    patterns = list(dict.fromkeys(r.pattern for s in sources for r in s.policy.modules))
    rules: list[ModuleRule] = []
    notes: dict[str, list[str]] = {}
    module_conflicts: list[str] = []
    for pattern in patterns:
        views = [(s, *effective_grants(s.policy, pattern)) for s in sources]
        lines: list[str] = []
        grants: dict[str, list[Pattern] | None] = {}  # what the inputs that list this key give it, then more
        for s, got, why in views:
            if why == "rule":
                _union(grants, got)
                lines += [c for c in s.comments.modules.get(pattern, ()) if c not in lines]
        for s, got, why in views:
            if why != "rule":
                said = _union(grants, got)  # another input's glob or default allowed more
                if said:
                    lines.append(f"merge: {', '.join(said)} from {s.name} ({why})")
        action, conflict = _merged_action(sources, pattern)
        rules.append(_merged_rule(pattern, grants, action))
        if conflict is not None:
            module_conflicts.append(conflict)
        if lines:
            notes[pattern] = lines
    kw: dict[str, Any] = {}
    conflicts: list[str] = []
    for key in SETTINGS:
        values = [(s.name, _setting(s.policy, key)) for s in sources]
        chosen = max((v for _, v in values), key=lambda v: _strictness(key, v))  # the first of equals: input order
        if len({_setting_text(key, v) for _, v in values}) > 1:
            said = ", ".join(f"{name} {_setting_text(key, v)}" for name, v in values)
            conflicts.append(f"conflict: {key}: {said}; kept {_setting_text(key, chosen)} (the stricter)")
        kw["deny_unattributed" if key == "unattributed" else key] = chosen
    conflicts += module_conflicts
    merged = Policy(
        path="merged",
        default=frozenset().union(*(s.policy.default for s in sources)),
        modules=tuple(rules),
        trust=tuple(dict.fromkeys(t for s in sources for t in s.policy.trust)),
        # the agent's match: kept when every source says the same, else dropped (a merge of policies for
        # different programs has no single match; the header says so)
        match=sources[0].policy.match if len({s.policy.match for s in sources}) == 1 else None,
        **kw,
    )
    if len({s.policy.match for s in sources}) > 1:
        conflicts.append("conflict: match: the sources match different programs; the merged policy has no match:")
    header = [f"merged by gohook policy merge from {', '.join(s.name for s in sources)}"]
    for s in sources:
        header += [f"{s.name}: {h}" for h in s.comments.header]
    header += conflicts
    return MergeResult(merged, notes, header, conflicts)


# --- diff --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ArgumentChange:
    """How the arguments one capability of one module key may take change (see the module docstring)."""

    capability: str
    old: tuple[str, ...] | None  # OLD's pattern texts; None: any argument; (): not allowed
    new: tuple[str, ...] | None
    added: tuple[str, ...] = ()  # patterns NEW lists and OLD did not (both sides lists)
    removed: tuple[str, ...] = ()  # patterns OLD listed and NEW does not
    wider: tuple[str, ...] = ()  # of `added`, those no pattern of OLD covers: what NEW grants

    @property
    def grants(self) -> bool:
        return (self.new is None and self.old is not None) or bool(self.wider)

    def to_json(self) -> dict[str, Any]:
        return {"capability": self.capability,
                "old": "any" if self.old is None else list(self.old),
                "new": "any" if self.new is None else list(self.new),
                "added": list(self.added), "removed": list(self.removed), "wider": list(self.wider),
                "grants": self.grants}

    def describe(self) -> str:
        """One line's text: `any -> [...]`, `[...] -> any` or `+"p" -"q"`."""
        if self.old is None:
            return f"any -> {_texts(self.new or ())} (narrowed to these patterns)"
        if self.new is None:
            return f"{_texts(self.old)} -> any (every argument)"
        parts = [f"+{quote_pattern(t)}" + ("" if t in self.wider else " (covered by an old pattern)")
                 for t in self.added]
        parts += [f"-{quote_pattern(t)}" for t in self.removed]
        return " ".join(parts)


def _argument_changes(old: Grants, new: Grants) -> tuple[ArgumentChange, ...]:
    """Per capability scoped on either side and changed, what changes (sorted by capability)."""
    out: list[ArgumentChange] = []
    for cap in sorted(set(old) | set(new)):
        o, n = old.get(cap, ()), new.get(cap, ())
        if not o and not n:  # any/not allowed on both sides: a capability-level change only
            continue
        o_texts = None if o is None else tuple(p.text for p in o)
        n_texts = None if n is None else tuple(p.text for p in n)
        if o is None or n is None:
            out.append(ArgumentChange(cap, o_texts, n_texts))
            continue
        assert o_texts is not None and n_texts is not None
        added = [p for p in n if p.text not in o_texts]
        removed = tuple(t for t in o_texts if t not in n_texts)
        if not added and not removed:
            continue
        wider = tuple(p.text for p in added if not any(covers(q, p) for q in o))
        out.append(ArgumentChange(cap, o_texts, n_texts, tuple(p.text for p in added), removed, wider))
    return tuple(out)


def _comparable(grants: Grants) -> dict[str, frozenset[str] | None]:
    return {cap: None if g is None else frozenset(p.text for p in g) for cap, g in grants.items()}


@dataclass(frozen=True)
class ModuleChange:
    pattern: str
    old_rule: frozenset[str] | None  # None: OLD has no such key; else the capabilities its rule allows
    new_rule: frozenset[str] | None
    old: frozenset[str]  # what OLD gives the modules the key names (capabilities with any or some arguments)
    new: frozenset[str]
    old_from: str  # "rule X" / "glob X" / "default"
    new_from: str
    notes: tuple[str, ...] = ()  # NEW's comments above the key (why it grants)
    arguments: tuple[ArgumentChange, ...] = ()  # changes of scoped capabilities
    scoped: bool = False  # either side scopes a capability of this key
    action: tuple[Action, Action] | None = None  # (OLD's, NEW's) effective action when the key reports its change

    @property
    def action_grants(self) -> bool:
        """The key's action becomes audit: a violating call that was stopped now runs."""
        return self.action is not None and _loosens("action", *self.action)

    @property
    def added(self) -> frozenset[str]:
        return self.new - self.old

    @property
    def removed(self) -> frozenset[str]:
        return self.old - self.new

    @property
    def grants(self) -> bool:
        return bool(self.added) or any(a.grants for a in self.arguments) or self.action_grants

    @property
    def change(self) -> str:
        if self.old_rule is None:
            return "added"
        return "removed" if self.new_rule is None else "changed"

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "module": self.pattern, "change": self.change,
            "old": sorted(self.old_rule) if self.old_rule is not None else None,
            "new": sorted(self.new_rule) if self.new_rule is not None else None,
            "added": sorted(self.added), "removed": sorted(self.removed), "grants": self.grants,
            "notes": list(self.notes)}
        if self.scoped:
            doc["arguments"] = [a.to_json() for a in self.arguments]
        if self.action is not None:
            doc["action"] = {"old": self.action[0].value, "new": self.action[1].value, "grants": self.action_grants}
        return doc


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


def effective_action(policy: Policy, pattern: str) -> tuple[Action, bool]:
    """The action of the modules `pattern` names in `policy`, and whether a rule (not the top level) sets it.

    Its own rule's action when it has the key and that rule sets one; else (reading the pattern as a module
    path, as effective_grants does) Policy.action_of.
    """
    rule = _own_rule(policy, pattern) or policy.rule_for(pattern)
    if rule is not None and rule.action is not None:
        return rule.action, True
    return policy.action, False


def _action_change(old: Policy, new: Policy, pattern: str) -> tuple[Action, Action] | None:
    """(OLD's, NEW's) action of the key when it changes and a rule sets it on some side (else None)."""
    (a, a_rule), (b, b_rule) = effective_action(old, pattern), effective_action(new, pattern)
    return (a, b) if a is not b and (a_rule or b_rule) else None


def diff_policies(old: Policy, new: Policy, new_comments: PolicyComments | None = None) -> PolicyDiff:
    """What changes from `old` to `new` (see the module docstring); pure."""
    comments = new_comments or PolicyComments()
    old_rules = {r.pattern: r.allowed for r in old.modules}
    new_rules = {r.pattern: r.allowed for r in new.modules}
    changes = []
    for pattern in dict.fromkeys([*old_rules, *new_rules]):
        (o, o_from), (n, n_from) = effective_grants(old, pattern), effective_grants(new, pattern)
        o_rule, n_rule = old_rules.get(pattern), new_rules.get(pattern)
        action = _action_change(old, new, pattern)
        if _comparable(o) == _comparable(n) and (o_rule is None) == (n_rule is None) and action is None:
            continue
        scoped = any(g is not None for g in (*o.values(), *n.values()))
        changes.append(ModuleChange(pattern, o_rule, n_rule, frozenset(o), frozenset(n), o_from, n_from,
                                    comments.modules.get(pattern, ()), _argument_changes(o, n), scoped, action))
    settings = []
    for key in SETTINGS:
        a, b = _setting(old, key), _setting(new, key)
        if a != b:
            settings.append(SettingChange(key, _setting_text(key, a), _setting_text(key, b), _loosens(key, a, b)))
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
        said = " ".join(parts) or "same capabilities"
        if m.action is not None:
            said += f"; action {m.action[0].value} -> {m.action[1].value}"
            said += f" ({_LAXER['action']})" if m.action_grants else ""
        lines.append(f"{mark} module {m.pattern}: {said}  ({what})")
        for a in m.arguments:
            lines.append(f"{'GRANTS' if a.grants else '      '}   {a.capability}: {a.describe()}")
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


# --- check --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PatternFinding:
    """A pattern `policy check` reports: one that never matches (`never`), or one another pattern covers."""

    rule: ModuleRule
    capability: str
    pattern: Pattern
    problem: str
    never: bool  # True: the pattern can never match; False: a note (it is redundant)


def check_patterns(policy: Policy) -> list[PatternFinding]:
    """Findings on the argument patterns of `policy` (see the module docstring), in file order."""
    out: list[PatternFinding] = []
    for rule in policy.modules:
        for cap, pats in rule.scopes:
            for i, p in enumerate(pats):
                if isinstance(p, UnixPattern) and all(g.min_length() > UNIX_PATH_MAX_BYTES for g in p.globs):
                    what = "an abstract socket name" if p.abstract else "a Unix socket path"
                    out.append(PatternFinding(rule, cap, p, f"never matches: {what} holds at most "
                                                            f"{UNIX_PATH_MAX_BYTES} bytes", True))
                    continue
                # covered by another pattern; of two equivalent ones, the later is the redundant one
                by = next((q for j, q in enumerate(pats)
                           if j != i and covers(q, p) and (j < i or not covers(p, q))), None)
                if by is not None:
                    out.append(PatternFinding(rule, cap, p, f"redundant: {quote_pattern(by.text)} covers it", False))
    return out


def load_source(path: str, vocab: CapabilityNames) -> Source:
    """A policy file with its comments, named by its path."""
    policy, comments = load_policy_with_comments(path, vocab)
    return Source(path, policy, comments)
