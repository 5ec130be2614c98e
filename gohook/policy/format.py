"""Policy files: load (with line numbers in every error), match modules, render.

Format (version 1):

    version: 1
    action: kill            # kill | error | audit: what a violation does in enforce mode
    attribution: caller     # caller | stack
    unattributed: allow     # allow | deny: a hooked call with no non-std frame
    default: []             # capabilities of modules not listed (any argument)
    modules:
      example.com/app: [files, network.connect, env.read]    # list form: any argument
      github.com/acme/*: [network.connect]
      github.com/evil/telemetry: []
      go.opentelemetry.io/otel/exporters/otlp:                # mapping form: argument patterns
        env.read: ["OTEL_*"]
        network.connect: ["127.0.0.1:4317", "10.0.0.0/8:443", "[::1]:*", "unix:/run/otel/*.sock"]
        system.read: any
      github.com/evil/telemetry/v2:                           # mapping form with its own action
        action: error
        network.connect: ["127.0.0.1:4317"]
    trust: [golang.org/x/sys]   # modules treated like the standard library

A capability is a catalog name (`files.read`), a family (`files` = every
`files.*`) or `all`. Module keys are exact module paths or shell-style globs
(fnmatch; `*` also crosses `/`). Which rule applies to a module: the exact
key if there is one, else the matching glob with the longest text, else
`default`. Errors name the file and line: `p.yaml:7: unknown capability ...`.

A module's value is either a list of capabilities (each allowed with any
argument) or a mapping from capability or family (not `all`) to a list of
argument patterns (gohook.policy.patterns) or the scalar `any`. A family
with a pattern list gives every member those patterns; a member outside
SCOPABLE is an error, as is an empty list (it would allow nothing). A
capability that is `any` and also scoped in one module is `any`. Pattern
errors name the line of the pattern: `p.yaml:9: network.connect pattern
"10.0.0.0/33:443": prefix length 33 is out of range for IPv4`. A module may
list at most MAX_PORTS_PER_NETWORK distinct ports per network and
capability. `default:` takes the list form only.

Actions: `kill` (the process dies), `error` (the call is refused and fails
in the program) and `audit` (only recorded); strictness kill > error > audit
(Action.strictness). The top-level `action:` is every module's; a module in
the mapping form may set its own with an `action:` key beside its
capabilities (a mapping holding only `action:` allows nothing). A module's
action is that of the rule deciding it (Policy.action_of), else the
top-level one: like capabilities, an exact key that sets no action does not
inherit a glob's, it gets the top-level action. `action` given twice in a
module or a value other than the three is an error with its line.

In memory, ModuleRule.capabilities holds only the any-argument grants and
ModuleRule.scopes the scoped ones (capability -> patterns, sorted by
capability), so code that knows nothing of scopes fails closed: it sees a
scoped capability as not granted. render_policy writes scoped modules and
modules with their own action in the mapping form (`action:` first, then
`any` grants as `cap: any` entries) and other modules in the list form.
"""

from __future__ import annotations

import difflib
import enum
import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gohook.errors import PatternError, PolicyError
from gohook.policy.patterns import (
    SCOPABLE,
    Pattern,
    parse_pattern,
    table_limit_violation,
)
from gohook.sites.catalog.model import NOT_IN_ALL

ACTIONS = ("kill", "error", "audit")  # the values of `action:`, strictest first


class Action(enum.Enum):
    """What a violation does in enforce mode: kill the process, fail the call (error), or only record it."""


    KILL = "kill"
    ERROR = "error"
    AUDIT = "audit"

    @property
    def strictness(self) -> int:
        """kill 2 > error 1 > audit 0: merge keeps the strictest; only a change to audit lets a violating call run."""
        return len(ACTIONS) - 1 - ACTIONS.index(self.value)


class Mode(enum.Enum):
    """How `gohook attach` treats the policy."""


    ENFORCE = "enforce"  # the policy's action applies to violations
    AUDIT = "audit"  # violations are only recorded
    LEARN = "learn"  # every attributed call is recorded; nothing is denied


class Attribution(enum.Enum):
    """Which frames of a call's stack the policy checks."""


    CALLER = "caller"  # the nearest non-std logical frame decides
    STACK = "stack"  # every non-std module on the logical stack must hold the capability


KEYS = ("version", "match", "action", "attribution", "unattributed", "default", "modules", "trust")
MATCH_KEYS = ("binary", "main_module", "build_id")  # the keys of `match:` (gohook agent)


@dataclass(frozen=True)
class PolicyMatch:
    """Which programs a policy applies to under `gohook agent` (the `match:` section).

    binary: a path; the file at that path, wherever a process runs it from, and any copy with the same Go
    build ID (a container's). main_module: any Go binary whose build info names this main module.
    build_id: the Go build ID. Several keys: all must hold. `gohook attach` ignores the section.
    """

    binary: str | None = None
    main_module: str | None = None
    build_id: str | None = None
    line: int = field(default=0, compare=False)

    def describe(self) -> str:
        return ", ".join(f"{k}: {getattr(self, k)}" for k in MATCH_KEYS if getattr(self, k) is not None)


Scopes = tuple[tuple[str, tuple[Pattern, ...]], ...]  # capability -> its patterns, sorted by capability


@dataclass(frozen=True, slots=True)
class ModuleRule:
    """What one module key allows: `capabilities` with any argument, `scopes` only with matching arguments.

    A capability is in at most one of the two (any wins); `capabilities` alone
    is what consumers that know nothing of scopes see, so they fail closed.
    `action` is the module's own action (None: the policy's top-level one);
    it compares, so diff and round-trip tests see it.
    """

    pattern: str
    capabilities: frozenset[str]
    line: int = field(default=0, compare=False)
    scopes: Scopes = field(default=(), compare=True)
    action: Action | None = None

    @classmethod
    def with_scopes(cls, pattern: str, capabilities: Iterable[str], scopes: Mapping[str, Iterable[Pattern]],
                    line: int = 0, action: Action | None = None) -> ModuleRule:
        """A rule in canonical form: scopes sorted, duplicate patterns once, any-argument grants win."""
        caps = frozenset(capabilities)
        canon: list[tuple[str, tuple[Pattern, ...]]] = []
        for cap in sorted(scopes):
            pats = tuple(dict.fromkeys(scopes[cap]))
            if cap not in caps and pats:
                canon.append((cap, pats))
        return cls(pattern, caps, line, tuple(canon), action)

    def patterns(self, capability: str) -> tuple[Pattern, ...] | None:
        """The argument patterns of `capability`; None when it is not scoped (any argument, or not granted)."""
        for cap, pats in self.scopes:
            if cap == capability:
                return pats
        return None

    @property
    def allowed(self) -> frozenset[str]:
        """Every capability the rule allows with some argument: any-argument grants and scoped ones."""
        return self.capabilities | {cap for cap, _ in self.scopes}

    @property
    def is_glob(self) -> bool:
        return any(c in self.pattern for c in "*?[")

    def matches(self, module: str) -> bool:
        return fnmatch.fnmatchcase(module, self.pattern) if self.is_glob else module == self.pattern


@dataclass(frozen=True)
class Policy:
    path: str
    version: int = 1
    action: Action = Action.KILL
    attribution: Attribution = Attribution.CALLER
    deny_unattributed: bool = False
    default: frozenset[str] = frozenset()
    modules: tuple[ModuleRule, ...] = ()
    trust: tuple[str, ...] = ()
    trust_lines: tuple[int, ...] = field(default=(), compare=False)
    match: PolicyMatch | None = None

    def rule_for(self, module: str) -> ModuleRule | None:
        """The rule deciding `module`: exact key first, else the longest matching glob."""
        for r in self.modules:
            if not r.is_glob and r.pattern == module:
                return r
        globs = [r for r in self.modules if r.is_glob and r.matches(module)]
        return max(globs, key=lambda r: len(r.pattern)) if globs else None

    def capabilities_of(self, module: str) -> frozenset[str]:
        """The capabilities `module` may use with any argument (scoped ones are in scopes_of)."""
        rule = self.rule_for(module)
        return rule.capabilities if rule is not None else self.default

    def scopes_of(self, module: str) -> dict[str, tuple[Pattern, ...]]:
        """The capabilities `module` may use only with matching arguments, each with its patterns."""
        rule = self.rule_for(module)
        return dict(rule.scopes) if rule is not None else {}

    def allowed_of(self, module: str) -> frozenset[str]:
        """Every capability `module` may use with some argument: capabilities_of and the keys of scopes_of."""
        rule = self.rule_for(module)
        return rule.allowed if rule is not None else self.default

    def action_of(self, module: str) -> Action:
        """What a violation by `module` does: the deciding rule's own action, else the top-level `action`."""
        rule = self.rule_for(module)
        return rule.action if rule is not None and rule.action is not None else self.action

    def is_trusted(self, module: str) -> bool:
        return any(fnmatch.fnmatchcase(module, t) if any(c in t for c in "*?[") else module == t
                   for t in self.trust)


class CapabilityNames:
    """The capability vocabulary: exact names, families (prefix before the dot) and `all`.

    `all` is every capability except NOT_IN_ALL (gohook.sites.catalog): a policy that trusts the
    application with everything does not thereby let it switch gohook off.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(names)
        self.families = {n.split(".", 1)[0] for n in self.names}

    def expand(self, word: str) -> frozenset[str] | None:
        if word == "all":
            return frozenset(self.names) - NOT_IN_ALL
        if word in self.names:
            return frozenset((word,))
        if word in self.families:
            return frozenset(n for n in self.names if n == word or n.startswith(word + "."))
        return None

    def suggest(self, word: str) -> str:
        close = difflib.get_close_matches(word, [*self.names, *sorted(self.families), "all"], n=1)
        return f" (did you mean {close[0]}?)" if close else ""


def _err(path: str, node: Node | None, message: str) -> PolicyError:
    line = node.start_mark.line + 1 if node is not None else 1
    return PolicyError(f"{path}:{line}: {message}")


def _scalar(path: str, node: Node, what: str) -> str:
    if not isinstance(node, ScalarNode):
        raise _err(path, node, f"{what} must be a single value")
    return str(node.value)


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag.endswith("null")


def _capability_list(path: str, node: Node, vocab: CapabilityNames, what: str, hint: str = "") -> frozenset[str]:
    if _is_null(node) and node.value in ("", "null", "~", "Null", "NULL"):
        return frozenset()
    if not isinstance(node, SequenceNode):
        raise _err(path, node, f"{what} must be a list of capabilities, e.g. [files.read, network.connect]{hint}")
    out: set[str] = set()
    for item in node.value:
        word = _scalar(path, item, "a capability")
        caps = vocab.expand(word)
        if caps is None:
            raise _err(path, item, f"unknown capability {word!r} in {what}{vocab.suggest(word)}")
        out |= caps
    return frozenset(out)


def _choice(path: str, node: Node, key: str, options: Sequence[str]) -> str:
    value = _scalar(path, node, key)
    if value not in options:
        raise _err(path, node, f"{key} must be one of {', '.join(options)}, not {value!r}")
    return value


_MAPPING_HINT = ', or a mapping of capability to argument patterns (env.read: ["OTEL_*"])'


def _pattern_error(path: str, node: Node, word: str, text: str, problem: str) -> PatternError:
    return PatternError(f'{path}:{node.start_mark.line + 1}: {word} pattern "{text}": {problem}')


def _scoped_module(path: str, node: MappingNode, vocab: CapabilityNames, module: str, line: int) -> ModuleRule:
    """A module in the mapping form: capability or family -> pattern list or `any`, and optionally `action:`."""
    any_caps: set[str] = set()
    scoped: dict[str, dict[Pattern, Node]] = {}  # capability -> pattern -> its node (first one), file order
    words: set[str] = set()
    action: Action | None = None
    for key_node, value_node in node.value:
        word = _scalar(path, key_node, "a capability")
        if word == "action":
            if action is not None:
                raise _err(path, key_node, f"action given twice in module {module}")
            action = Action(_choice(path, value_node, "action", ACTIONS))
            continue
        if word in words:
            raise _err(path, key_node, f"capability {word!r} listed twice in module {module}")
        words.add(word)
        if word == "all":
            raise _err(path, key_node, "`all` takes no argument patterns: name capabilities or families here, "
                                       "or write the module as a list ([all])")
        caps = vocab.expand(word)
        if caps is None:
            raise _err(path, key_node, f"unknown capability {word!r} in module {module}{vocab.suggest(word)}")
        if isinstance(value_node, ScalarNode):
            if value_node.value == "any" and not _is_null(value_node):
                any_caps |= caps
                continue
            if _is_null(value_node):
                raise _err(path, value_node, f"{word} needs a list of argument patterns, or `any`")
            raise _err(path, value_node, f"{word} must be a list of argument patterns or `any`, "
                                         f"not {value_node.value!r}")
        if not isinstance(value_node, SequenceNode):
            raise _err(path, value_node, f"{word} must be a list of argument patterns or `any`")
        if not value_node.value:
            raise _err(path, value_node, f"{word}: an empty list allows nothing: leave the capability out")
        for cap in sorted(caps):
            if cap not in SCOPABLE:
                via = f" ({word} includes {cap})" if cap != word else ""
                raise _err(path, value_node, f"{cap} takes no argument patterns: grant it with `any`{via}")
        for item in value_node.value:
            if not isinstance(item, ScalarNode) or _is_null(item):
                raise _err(path, item, f'a {word} pattern must be a quoted string, e.g. "/etc/acme/**"')
            text = str(item.value)
            if text == "any":
                raise _err(path, item, f"`any` goes without brackets: {word}: any")
            for cap in sorted(caps):
                try:
                    pattern = parse_pattern(cap, text)
                except PatternError as exc:
                    raise _pattern_error(path, item, word, text, str(exc)) from None
                scoped.setdefault(cap, {}).setdefault(pattern, item)
    for cap, pats in sorted(scoped.items()):
        if cap in any_caps:
            continue
        over = table_limit_violation(pats)
        if over is not None:
            culprit, problem = over
            raise _pattern_error(path, pats[culprit], cap, culprit.text, f"in module {module}, {problem}")
    return ModuleRule.with_scopes(module, any_caps, {c: tuple(p) for c, p in scoped.items()}, line, action)


def _match(path: str, node: Node) -> PolicyMatch:
    """The `match:` mapping: at least one of MATCH_KEYS, each a non-empty string; binary an absolute path."""
    if not isinstance(node, MappingNode) or not node.value:
        raise _err(path, node, "match must be a mapping with binary:, main_module: or build_id:")
    values: dict[str, str] = {}
    for key_node, value_node in node.value:
        key = _scalar(path, key_node, "a match key")
        if key not in MATCH_KEYS:
            close = difflib.get_close_matches(key, MATCH_KEYS, n=1)
            raise _err(path, key_node, f"unknown match key {key!r}" + (f" (did you mean {close[0]}?)" if close else "")
                       + f"; expected one of {', '.join(MATCH_KEYS)}")
        if key in values:
            raise _err(path, key_node, f"duplicate match key {key!r}")
        value = _scalar(path, value_node, f"match {key}")
        if not value.strip():
            raise _err(path, value_node, f"match {key} is empty")
        if key == "binary" and not value.startswith("/"):
            raise _err(path, value_node, f"match binary must be an absolute path, not {value!r}")
        values[key] = value
    return PolicyMatch(line=node.start_mark.line + 1, **values)


def parse_policy(text: str, vocab: CapabilityNames, path: str = "<policy>") -> Policy:
    """Parse policy text; raises PolicyError naming path and line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise PolicyError(f"{path}:{line}: YAML error: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: YAML error: {exc}") from None
    if root is None:
        raise PolicyError(f"{path}:1: empty policy (expected a mapping with version: 1)")
    if not isinstance(root, MappingNode):
        raise _err(path, root, "a policy must be a mapping (version:, modules:, ...)")
    seen: dict[str, Node] = {}
    for key_node, value_node in root.value:
        key = _scalar(path, key_node, "a key")
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise _err(path, key_node, f"unknown key {key!r}{hint}")
        if key in seen:
            raise _err(path, key_node, f"duplicate key {key!r}")
        seen[key] = value_node
    if "version" not in seen:
        raise _err(path, root, "missing 'version: 1'")
    if _scalar(path, seen["version"], "version") != "1":
        raise _err(path, seen["version"], "unsupported policy version (this gohook reads version 1)")
    kw: dict[str, object] = {}
    if "match" in seen:
        kw["match"] = _match(path, seen["match"])
    if "action" in seen:
        kw["action"] = Action(_choice(path, seen["action"], "action", ACTIONS))
    if "attribution" in seen:
        kw["attribution"] = Attribution(_choice(path, seen["attribution"], "attribution", ("caller", "stack")))
    if "unattributed" in seen:
        kw["deny_unattributed"] = _choice(path, seen["unattributed"], "unattributed", ("allow", "deny")) == "deny"
    if "default" in seen:
        if isinstance(seen["default"], MappingNode):
            raise _err(path, seen["default"], "default takes a list of capabilities (any argument); "
                                              "argument patterns go under modules:, per module")
        kw["default"] = _capability_list(path, seen["default"], vocab, "default")
    rules: list[ModuleRule] = []
    if "modules" in seen:
        mods = seen["modules"]
        if isinstance(mods, ScalarNode) and mods.tag.endswith("null"):
            mods = MappingNode("tag:yaml.org,2002:map", [])
        if not isinstance(mods, MappingNode):
            raise _err(path, mods, "modules must be a mapping of module path (or glob) to a capability list "
                                   "(or to a mapping of capability to argument patterns)")
        patterns: set[str] = set()
        for key_node, value_node in mods.value:
            pattern = _scalar(path, key_node, "a module path")
            if not pattern or " " in pattern:
                raise _err(path, key_node, f"bad module path {pattern!r}")
            if pattern in patterns:
                raise _err(path, key_node, f"module {pattern!r} listed twice")
            patterns.add(pattern)
            line = key_node.start_mark.line + 1
            if isinstance(value_node, MappingNode):
                rules.append(_scoped_module(path, value_node, vocab, pattern, line))
            else:
                caps = _capability_list(path, value_node, vocab, f"module {pattern}", _MAPPING_HINT)
                rules.append(ModuleRule(pattern, caps, line))
    trust: list[str] = []
    trust_lines: list[int] = []
    if "trust" in seen:
        node = seen["trust"]
        if not isinstance(node, SequenceNode):
            raise _err(path, node, "trust must be a list of module paths, e.g. [golang.org/x/sys]")
        for item in node.value:
            trust.append(_scalar(path, item, "a trusted module"))
            trust_lines.append(item.start_mark.line + 1)
    return Policy(path=path, modules=tuple(rules), trust=tuple(trust), trust_lines=tuple(trust_lines),
                  **kw)  # type: ignore[arg-type]


def load_policy(path: str | Path, vocab: CapabilityNames) -> Policy:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{p}: cannot read policy: {exc}") from None
    return parse_policy(text, vocab, str(p))


def _flow(caps: Iterable[str]) -> str:
    return "[" + ", ".join(sorted(caps)) + "]"


def quote_pattern(text: str) -> str:
    """`text` as a YAML double-quoted scalar on one line (escapes included), as render_policy writes patterns."""
    return yaml.safe_dump(text, default_style='"', allow_unicode=True, width=1 << 30).rstrip("\n")


def _scoped_lines(rule: ModuleRule) -> list[str]:
    """The mapping form's entries: the rule's own `action:` first, then each capability (`any` or its patterns)."""
    entries = {cap: "any" for cap in rule.capabilities}
    entries.update({cap: "[" + ", ".join(quote_pattern(p.text) for p in pats) + "]" for cap, pats in rule.scopes})
    head = [f"    action: {rule.action.value}"] if rule.action is not None else []
    return head + [f"    {cap}: {entries[cap]}" for cap in sorted(entries)]


def render_policy(policy: Policy, *, header: Sequence[str] = (), notes: dict[str, Sequence[str]] | None = None,
                  all_names: Sequence[str] = ()) -> str:
    """Policy as YAML text, with `header` comment lines and per-module comment lines (`notes`)."""
    notes = notes or {}
    lines = [f"# {h}" for h in header]
    lines.append("version: 1")
    if policy.match is not None:
        lines.append("match:")
        lines += [f"  {k}: {quote_pattern(getattr(policy.match, k))}" for k in MATCH_KEYS
                  if getattr(policy.match, k) is not None]
    lines += [
        f"action: {policy.action.value}",
        f"attribution: {policy.attribution.value}",
        f"unattributed: {'deny' if policy.deny_unattributed else 'allow'}",
        f"default: {_flow(policy.default)}",
    ]
    if policy.modules:
        lines.append("modules:")
        for rule in policy.modules:
            for note in notes.get(rule.pattern, ()):
                lines.append(f"  # {note}")
            key = rule.pattern if not rule.is_glob and ":" not in rule.pattern else f'"{rule.pattern}"'
            if rule.scopes or rule.action is not None:
                lines.append(f"  {key}:")
                lines += _scoped_lines(rule)
                continue
            caps = ["all"] if all_names and set(rule.capabilities) == set(all_names) - NOT_IN_ALL else rule.capabilities
            lines.append(f"  {key}: {_flow(caps)}")
    else:
        lines.append("modules: {}")
    lines.append(f"trust: {_flow(policy.trust) if policy.trust else '[]'}")
    return "\n".join(lines) + "\n"


# --- comments (provenance) ---------------------------------------------------------------------
#
# PyYAML's tree has no comments, so they are read from the text: a module's
# comments are the whole-line comments directly above its key (no blank line
# in between), which is where render_policy writes `notes`. Inline comments
# after a value are not kept.


@dataclass(frozen=True)
class PolicyComments:
    """Comment lines of a policy file, without the leading `# `."""

    header: tuple[str, ...] = ()  # comment lines before the first key
    modules: dict[str, tuple[str, ...]] = field(default_factory=dict)  # module pattern -> lines above its key


def _comment(line: str) -> str | None:
    s = line.strip()
    if not s.startswith("#"):
        return None
    s = s[1:]
    return s[1:] if s.startswith(" ") else s


def policy_comments(text: str, policy: Policy) -> PolicyComments:
    """The header comments and the comments directly above each module key of `policy` (parsed from `text`)."""
    lines = text.splitlines()
    header: list[str] = []
    for line in lines:
        c = _comment(line)
        if c is None:
            if line.strip():
                break
            continue
        header.append(c)
    modules: dict[str, tuple[str, ...]] = {}
    for rule in policy.modules:
        if not 0 < rule.line <= len(lines):
            continue
        key_line = lines[rule.line - 1].lstrip()
        if not key_line.startswith((rule.pattern, f'"{rule.pattern}', f"'{rule.pattern}")):
            continue  # flow style ({a: [...], b: [...]}): no line of its own, so no comments of its own
        above: list[str] = []
        i = rule.line - 2  # 0-based index of the line above the key
        while i >= 0 and (c := _comment(lines[i])) is not None:
            above.append(c)
            i -= 1
        if above:
            modules[rule.pattern] = tuple(reversed(above))
    return PolicyComments(tuple(header), modules)


def load_policy_with_comments(path: str | Path, vocab: CapabilityNames) -> tuple[Policy, PolicyComments]:
    """load_policy, plus the file's header and per-module comment lines (provenance notes)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{p}: cannot read policy: {exc}") from None
    policy = parse_policy(text, vocab, str(p))
    return policy, policy_comments(text, policy)
