"""Policy loading, matching and rendering (pure logic), list form and scoped (argument pattern) form."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gohook.errors import PatternError, PolicyError
from gohook.policy.format import (
    Action,
    Attribution,
    CapabilityNames,
    ModuleRule,
    Policy,
    parse_policy,
    render_policy,
)
from gohook.policy.patterns import AddressPattern, Glob, GlobKind, NamePattern, PathPattern, parse_pattern

VOCAB = CapabilityNames(["files.read", "files.write", "network.connect", "network.listen", "env.read", "exec"])

EXAMPLE = """\
version: 1
action: kill            # kill | audit
attribution: caller
unattributed: allow
default: []
modules:
  example.com/app: [files, network.connect, env.read]    # main module
  github.com/acme/*: [network.connect]
  github.com/acme/special/*: [files.read]
  github.com/evil/telemetry: []
trust: [golang.org/x/sys]
"""


def test_example_from_the_issue() -> None:
    p = parse_policy(EXAMPLE, VOCAB, "p.yaml")
    assert p.action is Action.KILL and p.attribution is Attribution.CALLER and not p.deny_unattributed
    assert p.capabilities_of("example.com/app") == {"files.read", "files.write", "network.connect", "env.read"}
    assert p.capabilities_of("github.com/acme/netclient") == {"network.connect"}
    assert p.capabilities_of("github.com/acme/special/x") == {"files.read"}  # longest glob wins
    assert p.capabilities_of("github.com/evil/telemetry") == frozenset()
    assert p.capabilities_of("github.com/unknown/x") == frozenset()  # default
    assert p.is_trusted("golang.org/x/sys") and not p.is_trusted("golang.org/x/net")
    assert p.rule_for("example.com/app").line == 7  # type: ignore[union-attr]


def test_all_and_defaults() -> None:
    p = parse_policy("version: 1\ndefault: [all]\n", VOCAB)
    assert p.capabilities_of("x.org/y") == frozenset(VOCAB.names)
    assert p == Policy(path="<policy>", default=frozenset(VOCAB.names))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nmodules:\n  a.com/b: [file.read]\n", "p.yaml:3: unknown capability 'file.read'"),
        ("version: 1\nmodules:\n  a.com/b: [file.read]\n", "did you mean files.read"),
        ("version: 2\n", "p.yaml:1: unsupported policy version"),
        ("action: kill\n", "missing 'version: 1'"),
        ("version: 1\naction: block\n", "p.yaml:2: action must be one of kill, error, audit, not 'block'"),
        ("version: 1\nmodule: {}\n", "p.yaml:2: unknown key 'module' (did you mean modules?)"),
        ("version: 1\nmodules: [a]\n", "p.yaml:2: modules must be a mapping"),
        ("version: 1\nmodules:\n  a.com/b: files\n", "p.yaml:3: module a.com/b must be a list"),
        ("version: 1\nmodules:\n  a.com/b: []\n  a.com/b: []\n", "p.yaml:4: module 'a.com/b' listed twice"),
        ("version: 1\nversion: 1\n", "p.yaml:2: duplicate key"),
        ("version: 1\nmodules: {a: [\n", "p.yaml:3: YAML error"),
        ("", "p.yaml:1: empty policy"),
        ("- 1\n", "p.yaml:1: a policy must be a mapping"),
        ("version: 1\ntrust: golang.org/x/sys\n", "p.yaml:2: trust must be a list"),
    ],
)
def test_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as exc:
        parse_policy(text, VOCAB, "p.yaml")
    assert message in str(exc.value)


def test_render_round_trips() -> None:
    p = parse_policy(EXAMPLE, VOCAB, "p.yaml")
    text = render_policy(p, header=["generated"], notes={"example.com/app": ["files.read: main.main -> os.Open"]})
    assert text.startswith("# generated\nversion: 1\n")
    assert "  # files.read: main.main -> os.Open\n  example.com/app:" in text
    again = parse_policy(text, VOCAB, "again.yaml")
    assert again.modules == p.modules and again.trust == p.trust and again.default == p.default


# --- scoped rules (argument patterns) ------------------------------------------------------------

FULL = CapabilityNames(["files.read", "files.write", "network.connect", "network.listen", "exec", "env.read",
                        "env.write", "system.read", "system.modify", "tamper"])

ISSUE = """\
version: 1
action: kill
modules:
  example.com/app: [files, network, env.read]          # any argument, as today
  go.opentelemetry.io/otel/exporters/otlp:
    env.read: ["OTEL_*"]
    network.connect: ["127.0.0.1:4317", "10.0.0.0/8:443", "[::1]:*", "unix:/run/otel/*.sock"]
  github.com/acme/config:
    files.read: ["/etc/acme/**", "/var/lib/acme/*.yaml"]
    files.write: ["/var/lib/acme/cache/**"]
    env.read: ["ACME_*", "HOME"]
    exec: ["/usr/bin/git"]
    system.read: any
"""


def test_the_issues_scoped_example() -> None:
    p = parse_policy(ISSUE, FULL, "p.yaml")
    assert p.capabilities_of("example.com/app") == {"files.read", "files.write", "network.connect",
                                                    "network.listen", "env.read"}
    assert p.scopes_of("example.com/app") == {}
    otel = "go.opentelemetry.io/otel/exporters/otlp"
    assert p.capabilities_of(otel) == frozenset()  # scoped grants are not any-argument grants: fail closed
    scopes = p.scopes_of(otel)
    assert list(scopes) == ["env.read", "network.connect"]
    assert scopes["env.read"] == (NamePattern("OTEL_*", (Glob(b"OTEL_", GlobKind.TREE),)),)
    assert [q.text for q in scopes["network.connect"]] == ["127.0.0.1:4317", "10.0.0.0/8:443", "[::1]:*",
                                                          "unix:/run/otel/*.sock"]
    rule = p.rule_for("github.com/acme/config")
    assert rule is not None and rule.line == 8
    assert rule.capabilities == {"system.read"}
    assert [c for c, _ in rule.scopes] == ["env.read", "exec", "files.read", "files.write"]  # sorted
    assert rule.patterns("exec") == (PathPattern("/usr/bin/git", (Glob(b"/usr/bin/git", GlobKind.EXACT),)),)
    assert rule.patterns("system.read") is None and rule.patterns("network.connect") is None
    assert rule.allowed == {"system.read", "env.read", "exec", "files.read", "files.write"}
    assert p.scopes_of("unknown.org/x") == {}
    assert p.allowed_of("github.com/acme/config") == rule.allowed
    assert p.allowed_of(otel) == {"env.read", "network.connect"} and p.allowed_of("unknown.org/x") == frozenset()


def test_family_keys_expand_and_any_wins() -> None:
    text = ("version: 1\nmodules:\n  a.com/x:\n    files: [\"/etc/acme/**\"]\n    files.read: [\"/opt/**\"]\n"
            "    network: [\"10.0.0.0/8:443\"]\n    network.listen: any\n    env: any\n    env.read: [\"HOME\"]\n")
    rule = parse_policy(text, FULL).rule_for("a.com/x")
    assert rule is not None
    assert rule.capabilities == {"network.listen", "env.read", "env.write"}
    assert [q.text for q in rule.patterns("files.read") or ()] == ["/etc/acme/**", "/opt/**"]  # family + member add up
    assert [q.text for q in rule.patterns("files.write") or ()] == ["/etc/acme/**"]
    assert rule.patterns("network.connect") == (parse_pattern("network.connect", "10.0.0.0/8:443"),)
    assert rule.patterns("network.listen") is None and rule.patterns("env.read") is None  # any wins, silently


def test_duplicate_patterns_count_once_and_empty_mapping_allows_nothing() -> None:
    rule = parse_policy('version: 1\nmodules:\n  a.com/x:\n    env.read: ["A", "A", "B"]\n', FULL).modules[0]
    assert [q.text for q in rule.patterns("env.read") or ()] == ["A", "B"]
    p = parse_policy("version: 1\nmodules:\n  a.com/x: {}\n", FULL)
    assert p.modules == (ModuleRule("a.com/x", frozenset()),)


def _ports(n: int, net: str = "10.0.0.0/8") -> str:
    return ", ".join(f'"{net}:{i}"' for i in range(1, n + 1))


def test_eight_ports_per_network_is_the_limit() -> None:
    ok = parse_policy(f"version: 1\nmodules:\n  a.com/x:\n    network.connect: [{_ports(8)}, \"10.0.0.0/9:9\"]\n", FULL)
    assert len(ok.modules[0].patterns("network.connect") or ()) == 9  # a different network has its own table
    assert parse_policy(f"version: 1\nmodules:\n  a.com/x:\n    network.connect: [{_ports(9)}]\n"
                        "    network: any\n", FULL).modules[0].scopes == ()  # any wins before the limit applies


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('modules:\n  a.com/x:\n    network.connect: ["10.0.0.0/33:443"]\n',
         'p.yaml:4: network.connect pattern "10.0.0.0/33:443": prefix length 33 is out of range for IPv4'),
        ('modules:\n  a.com/x:\n    network.connect:\n      - "127.0.0.1:80"\n      - "1.2.3.4:70000"\n',
         'p.yaml:6: network.connect pattern "1.2.3.4:70000": port 70000 is above 65535'),
        ('modules:\n  a.com/x:\n    files: ["etc/x"]\n',
         'p.yaml:4: files pattern "etc/x": must be an absolute path'),
        ('modules:\n  a.com/x:\n    files.read: ["/a/../b"]\n',
         'p.yaml:4: files.read pattern "/a/../b": never matches: paths are matched as the process passed them'),
        ('modules:\n  a.com/x:\n    exec: ["/usr/bin/*/x"]\n', "gohook matches one `*` or a final `/**`"),
        ('modules:\n  a.com/x:\n    env.read: ["A=B"]\n', 'p.yaml:4: env.read pattern "A=B": \'=\' cannot be part'),
        ('modules:\n  a.com/x:\n    system.read: ["/x"]\n',
         "p.yaml:4: system.read takes no argument patterns: grant it with `any`"),
        ('modules:\n  a.com/x:\n    system: ["/x"]\n',
         "p.yaml:4: system.modify takes no argument patterns: grant it with `any` (system includes system.modify)"),
        ("modules:\n  a.com/x:\n    files.read: []\n",
         "p.yaml:4: files.read: an empty list allows nothing: leave the capability out"),
        ("modules:\n  a.com/x:\n    files.read: any\n    files.read: any\n",
         "p.yaml:5: capability 'files.read' listed twice in module a.com/x"),
        ("modules:\n  a.com/x:\n    all: any\n", "p.yaml:4: `all` takes no argument patterns"),
        ("modules:\n  a.com/x:\n    file.read: any\n",
         "p.yaml:4: unknown capability 'file.read' in module a.com/x (did you mean files.read?)"),
        ("modules:\n  a.com/x:\n    files.read: anything\n",
         "p.yaml:4: files.read must be a list of argument patterns or `any`, not 'anything'"),
        ("modules:\n  a.com/x:\n    files.read:\n", "p.yaml:4: files.read needs a list of argument patterns, or `any`"),
        ("modules:\n  a.com/x:\n    files.read: {a: b}\n", "p.yaml:4: files.read must be a list of argument patterns"),
        ("modules:\n  a.com/x:\n    files.read: [any]\n", "p.yaml:4: `any` goes without brackets: files.read: any"),
        ("modules:\n  a.com/x:\n    files.read: [[a]]\n", "p.yaml:4: a files.read pattern must be a quoted string"),
        ("modules:\n  a.com/x:\n    files.read: [~]\n", "p.yaml:4: a files.read pattern must be a quoted string"),
        (f"modules:\n  a.com/x:\n    network.connect:\n      [{_ports(8)},\n       \"10.0.0.0/8:9\"]\n",
         'p.yaml:6: network.connect pattern "10.0.0.0/8:9": in module a.com/x, more than 8 ports for 10.0.0.0/8'),
        ("default:\n  files.read: [\"/x\"]\n", "p.yaml:3: default takes a list of capabilities (any argument)"),
        ("modules:\n  a.com/x: files\n", "p.yaml:3: module a.com/x must be a list of capabilities"),
        ("modules:\n  a.com/x: files\n", "or a mapping of capability to argument patterns"),
    ],
)
def test_scoped_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as exc:
        parse_policy("version: 1\n" + text, FULL, "p.yaml")
    assert message in str(exc.value)


def test_pattern_errors_are_pattern_errors() -> None:
    with pytest.raises(PatternError):
        parse_policy('version: 1\nmodules:\n  a.com/x:\n    env.read: [""]\n', FULL, "p.yaml")


def test_render_writes_scoped_modules_as_mappings() -> None:
    p = parse_policy(ISSUE, FULL, "p.yaml")
    text = render_policy(p, all_names=FULL.names)
    assert "  example.com/app: [env.read, files.read, files.write, network.connect, network.listen]\n" in text
    assert ("  go.opentelemetry.io/otel/exporters/otlp:\n"
            '    env.read: ["OTEL_*"]\n'
            '    network.connect: ["127.0.0.1:4317", "10.0.0.0/8:443", "[::1]:*", "unix:/run/otel/*.sock"]\n') in text
    assert ('  github.com/acme/config:\n    env.read: ["ACME_*", "HOME"]\n    exec: ["/usr/bin/git"]\n'
            '    files.read: ["/etc/acme/**", "/var/lib/acme/*.yaml"]\n    files.write: ["/var/lib/acme/cache/**"]\n'
            "    system.read: any\n") in text
    again = parse_policy(text, FULL, "again.yaml")
    assert again.modules == p.modules


ODD_TEXTS = {
    "files.read": ["/etc/acme/**", "/**", "/run/*", '/tmp/a "b"\\c', "/tmp/é*", "/tmp/new\nline", "/tmp/\x7f\u2028",
                   "/tmp/\udcff", "/tmp/#x: y", "/tmp/\U0001F600*.log"],
    "files.write": ["/var/cache/**", "/tmp/*.tmp", "/tmp/'q'"],
    "exec": ["/usr/bin/git", "/usr/local/bin/*"],
    "env.read": ["OTEL_*", "HOME", "*_URL", "PG*FILE", "*", "a b"],
    "env.write": ["TZ"],
    "network.connect": ["127.0.0.1:4317", "10.0.0.0/8:443", "[::1]:*", "[fd00::/8]:*", "unix:/run/x.sock",
                        "unix:@otel-*", "0.0.0.0/0:53"],
    "network.listen": ["0.0.0.0:8080", "[::]:443", "unix:/run/app/*.sock"],
}

rule_st = st.builds(
    lambda name, anys, scoped: ModuleRule.with_scopes(
        name, anys, {cap: [parse_pattern(cap, t) for t in texts] for cap, texts in scoped.items()}),
    st.sampled_from(["a.com/x", "b.org/y/v2", "c.net/*", "d.io/z:1"]),
    st.frozensets(st.sampled_from(FULL.names)),
    st.dictionaries(st.sampled_from(sorted(ODD_TEXTS)), st.just(0)).flatmap(
        lambda caps: st.fixed_dictionaries({c: st.lists(st.sampled_from(ODD_TEXTS[c]), min_size=1, max_size=4,
                                                        unique=True) for c in caps})),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(rule_st, max_size=4, unique_by=lambda r: r.pattern))
def test_render_round_trips_scoped_policies(rules: list[ModuleRule]) -> None:
    p = Policy(path="p", modules=tuple(rules))
    text = render_policy(p, all_names=FULL.names)
    again = parse_policy(text, FULL, "again.yaml")
    assert again.modules == p.modules
    for r in rules:  # modules without scopes keep the flow list form
        assert (f"{r.pattern}: [" in text or f'"{r.pattern}": [' in text) == (not r.scopes)


def test_module_rule_with_scopes_is_canonical() -> None:
    a = parse_pattern("env.read", "A")
    rule = ModuleRule.with_scopes("m", {"env.write"}, {"env.write": [a], "files.read": [], "env.read": [a, a]})
    assert rule == ModuleRule("m", frozenset({"env.write"}), 0, (("env.read", (a,)),))
    assert rule != ModuleRule("m", frozenset({"env.write"}))  # scopes compare
    assert isinstance(parse_pattern("network.connect", "1.2.3.4:5"), AddressPattern)


@pytest.mark.parametrize(("patterns", "message"), [
    ('["/a/*.x", "/a/*.y", "/a/*.z", "/a/*.w", "/a/*.v"]', "more than 4 patterns share the literal prefix '/a/'"),
    ("[" + ", ".join('"' + "/a" * i + '"' for i in range(1, 10)) + "]", "9 patterns are prefixes of"),
])
def test_patterns_the_kernel_tables_cannot_hold_fail_at_load(patterns: str, message: str) -> None:
    """The kernel's limits (globs per literal prefix, nested prefixes tried) are load errors with file and line,
    not attach-time surprises."""
    with pytest.raises(PolicyError, match="p.yaml:4: files.read pattern") as exc:
        parse_policy(f"version: 1\nmodules:\n  a.com/x:\n    files.read: {patterns}\n", FULL, "p.yaml")
    assert message in str(exc.value)


# --- actions: top-level kill | error | audit, and per module in the mapping form ---------------------

ACTIONS_TEXT = """\
version: 1
action: error
modules:
  example.com/app: [files]
  github.com/evil/telemetry:
    action: kill
    network.connect: ["127.0.0.1:4317"]
    env.read: any
  "github.com/acme/*":
    action: audit
  github.com/acme/special: [exec]
  "github.com/acme/loud/*":
    files.read: ["/etc/**"]
"""


def test_actions_parse_top_level_and_per_module() -> None:
    p = parse_policy(ACTIONS_TEXT, FULL, "p.yaml")
    assert p.action is Action.ERROR
    tele = p.rule_for("github.com/evil/telemetry")
    assert tele == ModuleRule.with_scopes("github.com/evil/telemetry", {"env.read"},
                                          {"network.connect": [parse_pattern("network.connect", "127.0.0.1:4317")]},
                                          action=Action.KILL)
    glob = p.rule_for("github.com/acme/x")
    assert glob is not None and glob.pattern == "github.com/acme/*" and glob.line == 9
    assert glob.action is Action.AUDIT and glob.allowed == frozenset()  # only `action:`: allows nothing
    assert p.rule_for("example.com/app").action is None  # type: ignore[union-attr]  # list form: top-level action


@pytest.mark.parametrize(
    ("module", "action"),
    [
        ("github.com/evil/telemetry", Action.KILL),  # exact key with its own action
        ("example.com/app", Action.ERROR),  # exact key without one: the top-level action
        ("github.com/acme/x/y", Action.AUDIT),  # glob with an action
        ("github.com/acme/special", Action.ERROR),  # an exact key does not inherit the glob's action
        ("github.com/acme/loud/z", Action.ERROR),  # the longer glob decides, and sets none
        ("unknown.org/m", Action.ERROR),  # no rule: default, top-level action
    ],
)
def test_action_of_is_the_deciding_rules_else_the_top_level(module: str, action: Action) -> None:
    assert parse_policy(ACTIONS_TEXT, FULL).action_of(module) is action


def test_action_defaults_to_kill_and_strictness_orders_the_three() -> None:
    p = parse_policy("version: 1\nmodules:\n  a.com/x: {action: audit}\n", FULL)
    assert p.action is Action.KILL and p.action_of("a.com/x") is Action.AUDIT and p.action_of("b.com/y") is Action.KILL
    assert [a.value for a in sorted(Action, key=lambda a: -a.strictness)] == ["kill", "error", "audit"]
    assert parse_policy("version: 1\naction: error\n", FULL).action is Action.ERROR


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nmodules:\n  a.com/x:\n    action: error\n    env.read: any\n    action: kill\n",
         "p.yaml:6: action given twice in module a.com/x"),
        ("version: 1\nmodules:\n  a.com/x:\n    env.read: any\n    action: deny\n",
         "p.yaml:5: action must be one of kill, error, audit, not 'deny'"),
        ("version: 1\nmodules:\n  a.com/x:\n    action: [kill]\n", "p.yaml:4: action must be a single value"),
        ("version: 1\nmodules:\n  a.com/x:\n    action:\n", "p.yaml:4: action must be one of kill, error, audit"),
        ("version: 1\naction: Error\n", "p.yaml:2: action must be one of kill, error, audit, not 'Error'"),
        ("version: 1\ndefault:\n  action: error\n", "p.yaml:3: default takes a list of capabilities"),
        ("version: 1\nmodules:\n  a.com/x: [action]\n", "p.yaml:3: unknown capability 'action'"),
    ],
)
def test_action_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as exc:
        parse_policy(text, FULL, "p.yaml")
    assert message in str(exc.value)


def test_render_writes_an_action_rule_in_the_mapping_form_action_first() -> None:
    p = parse_policy(ACTIONS_TEXT, FULL, "p.yaml")
    text = render_policy(p, all_names=FULL.names)
    assert "\naction: error\n" in text
    assert ("  github.com/evil/telemetry:\n    action: kill\n    env.read: any\n"
            '    network.connect: ["127.0.0.1:4317"]\n') in text
    assert '  "github.com/acme/*":\n    action: audit\n  github.com/acme/special: [exec]\n' in text
    assert "  example.com/app: [files.read, files.write]\n" in text  # no action: the list form, as before
    assert parse_policy(text, FULL, "p.yaml") == p
    every = Policy(path="p", modules=(ModuleRule("a.com/x", frozenset(FULL.names), action=Action.ERROR),))
    assert parse_policy(render_policy(every, all_names=FULL.names), FULL, "p") == every  # `all` spelled out


action_rule_st = st.builds(
    lambda rule, action: ModuleRule(rule.pattern, rule.capabilities, 0, rule.scopes, action),
    rule_st, st.none() | st.sampled_from(Action))


@settings(max_examples=300, deadline=None)
@given(st.lists(action_rule_st, max_size=4, unique_by=lambda r: r.pattern), st.sampled_from(Action),
       st.frozensets(st.sampled_from(FULL.names)))
def test_render_round_trips_whole_policies_with_actions(rules: list[ModuleRule], action: Action,
                                                        default: frozenset[str]) -> None:
    """parse(render(p)) == p for list-form, scoped and action rules (all compared: action, scopes, capabilities)."""
    p = Policy(path="p", action=action, default=default, modules=tuple(rules))
    text = render_policy(p, all_names=FULL.names)
    assert parse_policy(text, FULL, "p") == p
    for r in rules:  # the list form exactly for rules with neither scopes nor an action
        assert (f"{r.pattern}: [" in text or f'"{r.pattern}": [' in text) == (not r.scopes and r.action is None)
