"""Policy loading, matching and rendering (pure logic)."""

import pytest

from gohook.errors import PolicyError
from gohook.policy.format import Action, Attribution, CapabilityNames, Policy, parse_policy, render_policy

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
        ("version: 1\naction: block\n", "p.yaml:2: action must be one of kill, audit"),
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
