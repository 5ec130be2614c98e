"""`gohook policy check|diff|merge` on scoped policies (argument patterns): output, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gohook.commands import main as cli
from gohook.policy.format import parse_policy
from gohook.policy.ops import vocabulary

OLD = """\
version: 1
modules:
  example.com/app: [files, network, env.read]
  # learned: env.read "OTEL_SERVICE_NAME"
  go.opentelemetry.io/otel/exporters/otlp:
    env.read: ["OTEL_*"]
    network.connect: ["127.0.0.1:4317", "10.0.0.0/8:443"]
  github.com/acme/config:
    files.read: ["/etc/acme/**"]
    system.read: any
"""

NEW = """\
version: 1
modules:
  example.com/app: [files, network, env.read]
  go.opentelemetry.io/otel/exporters/otlp:
    env.read: ["OTEL_*", "AWS_SECRET_ACCESS_KEY"]
    network.connect: ["127.0.0.1:4317", "10.1.0.0/16:443"]
  github.com/acme/config:
    files.read: ["/etc/acme/**", "/etc/acme/app.yaml"]
    system.read: any
"""


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_check_valid_scoped_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _write(tmp_path, "old.yaml", OLD)
    assert cli.main(["policy", "check", p]) == 0
    assert capsys.readouterr().out == f"gohook: {p}: valid (3 module rules, 4 argument patterns)\n"


def test_check_reports_never_matching_patterns_and_notes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _write(tmp_path, "p.yaml", NEW)
    assert cli.main(["policy", "check", p]) == 0  # a redundant pattern is only a note
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (f'gohook: {p}:7: note: module github.com/acme/config: files.read pattern '
                                   f'"/etc/acme/app.yaml": redundant: "/etc/acme/**" covers it')
    sock = "/run/" + "x" * 103
    bad = _write(tmp_path, "bad.yaml", f'version: 1\nmodules:\n  a.com/x:\n    network.connect: ["unix:{sock}"]\n')
    assert cli.main(["policy", "check", bad]) == 1
    assert capsys.readouterr().out == (f'gohook: {bad}:3: module a.com/x: network.connect pattern "unix:{sock}": '
                                       "never matches: a Unix socket path holds at most 107 bytes\n")


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ('    network.connect: ["10.0.0.0/33:443"]\n', 4,
         'network.connect pattern "10.0.0.0/33:443": prefix length 33 is out of range for IPv4'),
        ('    network.connect: ["1.2.3.4:70000"]\n', 4, 'network.connect pattern "1.2.3.4:70000": port 70000 is above'),
        ('    files.read: ["etc/acme/x"]\n', 4, 'files.read pattern "etc/acme/x": must be an absolute path'),
        ('    files.read: ["/a/../b"]\n', 4, "never matches: paths are matched as the process passed them"),
        ("    system.read: [\"x\"]\n", 4, "system.read takes no argument patterns: grant it with `any`"),
        ('    env.read: [""]\n', 4, 'env.read pattern "": empty environment variable name'),
    ],
)
@pytest.mark.parametrize("command", ["check", "diff", "merge"])
def test_bad_patterns_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str,
                                         body: str, line: int, message: str) -> None:
    good = _write(tmp_path, "good.yaml", OLD)
    bad = _write(tmp_path, "p.yaml", "version: 1\nmodules:\n  a.com/x:\n" + body)
    argv = ["policy", command, bad] if command == "check" else ["policy", command, good, bad]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"gohook: {bad}:{line}: ") and message in captured.err
    assert captured.err.count("\n") == 1


def test_diff_exit_1_and_patterns_in_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = _write(tmp_path, "old.yaml", OLD), _write(tmp_path, "new.yaml", NEW)
    assert cli.main(["policy", "diff", old, new]) == 1
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "GRANTS module go.opentelemetry.io/otel/exporters/otlp: same capabilities  "
        "([env.read, network.connect] -> [env.read, network.connect])",
        'GRANTS   env.read: +"AWS_SECRET_ACCESS_KEY"',
        '         network.connect: +"10.1.0.0/16:443" (covered by an old pattern) -"10.0.0.0/8:443"',
        "       module github.com/acme/config: same capabilities  "
        "([files.read, system.read] -> [files.read, system.read])",
        '         files.read: +"/etc/acme/app.yaml" (covered by an old pattern)',
        f"diff: {new} grants what {old} did not (2 lines marked GRANTS)",
    ]
    assert cli.main(["policy", "diff", new, old]) == 1  # back: AWS_* gone, but 10.0.0.0/8 is wider than /16
    assert 'GRANTS   network.connect: +"10.0.0.0/8:443" -"10.1.0.0/16:443"' in capsys.readouterr().out
    assert cli.main(["policy", "diff", old, old]) == 0
    assert "no differences" in capsys.readouterr().out


def test_diff_any_and_scoped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scoped = _write(tmp_path, "scoped.yaml", 'version: 1\nmodules:\n  a.com/x:\n    env.read: ["HOME"]\n')
    anyarg = _write(tmp_path, "any.yaml", "version: 1\nmodules:\n  a.com/x: [env.read]\n")
    assert cli.main(["policy", "diff", anyarg, scoped]) == 0
    assert '         env.read: any -> ["HOME"] (narrowed to these patterns)' in capsys.readouterr().out
    assert cli.main(["policy", "diff", scoped, anyarg]) == 1
    assert 'GRANTS   env.read: ["HOME"] -> any (every argument)' in capsys.readouterr().out


def test_diff_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = _write(tmp_path, "old.yaml", OLD), _write(tmp_path, "new.yaml", NEW)
    assert cli.main(["policy", "diff", old, new, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["grants_new"] is True
    otel = doc["modules"][0]
    assert otel["module"] == "go.opentelemetry.io/otel/exporters/otlp" and otel["grants"] is True
    assert otel["arguments"] == [
        {"capability": "env.read", "old": ["OTEL_*"], "new": ["OTEL_*", "AWS_SECRET_ACCESS_KEY"],
         "added": ["AWS_SECRET_ACCESS_KEY"], "removed": [], "wider": ["AWS_SECRET_ACCESS_KEY"], "grants": True},
        {"capability": "network.connect", "old": ["127.0.0.1:4317", "10.0.0.0/8:443"],
         "new": ["127.0.0.1:4317", "10.1.0.0/16:443"], "added": ["10.1.0.0/16:443"], "removed": ["10.0.0.0/8:443"],
         "wider": [], "grants": False},
    ]


def test_merge_unions_patterns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = _write(tmp_path, "old.yaml", OLD), _write(tmp_path, "new.yaml", NEW)
    out = tmp_path / "merged.yaml"
    assert cli.main(["policy", "merge", old, new, "-o", str(out)]) == 0
    text = out.read_text()
    assert ('  # learned: env.read "OTEL_SERVICE_NAME"\n  go.opentelemetry.io/otel/exporters/otlp:\n'
            '    env.read: ["OTEL_*", "AWS_SECRET_ACCESS_KEY"]\n'
            '    network.connect: ["127.0.0.1:4317", "10.0.0.0/8:443", "10.1.0.0/16:443"]\n') in text
    assert "  example.com/app: [env.read, files.read, files.write, network.connect, network.listen]\n" in text
    merged = parse_policy(text, vocabulary(), str(out))
    assert cli.main(["policy", "diff", new, str(out)]) == 1  # merged grants 10.0.0.0/8 that NEW did not
    assert cli.main(["policy", "diff", str(out), old]) == 0 and cli.main(["policy", "diff", str(out), new]) == 0
    assert merged.scopes_of("github.com/acme/config")["files.read"][1].text == "/etc/acme/app.yaml"
    capsys.readouterr()


def test_merge_over_the_port_limit_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def ports(r: range) -> str:
        listed = ", ".join(f'"1.2.3.4:{i}"' for i in r)
        return f"version: 1\nmodules:\n  a.com/x:\n    network.connect: [{listed}]\n"

    a, b = _write(tmp_path, "a.yaml", ports(range(1, 6))), _write(tmp_path, "b.yaml", ports(range(6, 10)))
    assert cli.main(["policy", "merge", a, b]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gohook: merge: module a.com/x network.connect: ") and err.count("\n") == 1
    assert "more than 8 ports for 1.2.3.4" in err


def test_generate_cannot_write_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import gohook.policy.generate

    monkeypatch.setattr(gohook.policy.generate, "generate_policy_text", lambda *a, **k: "version: 1\n")
    assert cli.main(["policy", "generate", "app", "-o", str(tmp_path / "no" / "dir.yaml")]) == 2
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text",
    [
        'version: 1\nmodules:\n  a.com/x:\n    network.connect: ["[fe80::1%eth0]:1"]\n',
        'version: 1\nmodules:\n  a.com/x:\n    files.read: ["/\\uD800"]\n',
        "version: 1\nmodules:\n  a.com/x:\n    files.read: &a [*a]\n",
        "version: 1\nmodules:\n  a.com/x:\n    files.read:\n      - [::1]:1\n",
        "version: 1\nmodules:\n  a.com/x:\n    files.read: {a: b}\n",
        "version: 1\ndefault:\n  files.read: any\n",
        b"\xff\xfe".decode("latin-1"),
    ],
)
def test_no_traceback_on_bad_input(tmp_path: Path, text: str) -> None:
    p = tmp_path / "p.yaml"
    p.write_bytes(text.encode("latin-1") if text.startswith("\xff") else text.encode())
    for argv in (["check", str(p)], ["diff", str(p), str(p)], ["merge", str(p), str(p)]):
        r = subprocess.run([sys.executable, "-m", "gohook", "policy", *argv], capture_output=True, text=True,
                           errors="backslashreplace", check=False, timeout=60)
        assert r.returncode == 2, (argv, r.stderr)
        assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1 and r.stderr.startswith("gohook: "), r.stderr


ACTION_OLD = """\
version: 1
action: kill
modules:
  example.com/app: [files, network, env.read]
  # hand-written: telemetry's calls fail instead of killing the service
  github.com/evil/telemetry:
    action: error
    network.connect: ["127.0.0.1:4317"]
"""


def test_diff_exit_codes_for_action_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A change to audit (per module or top-level) is a grant: exit 1; kill <-> error is reported, exit 0."""
    old = _write(tmp_path, "old.yaml", ACTION_OLD)
    audit = _write(tmp_path, "audit.yaml", ACTION_OLD.replace("action: error", "action: audit"))
    assert cli.main(["policy", "diff", old, audit]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "GRANTS module github.com/evil/telemetry: same capabilities; action error -> audit "
        "(violations are no longer stopped)  ([network.connect] -> [network.connect])",
        "         # hand-written: telemetry's calls fail instead of killing the service",
        f"diff: {audit} grants what {old} did not (1 line marked GRANTS)",
    ]
    kill = _write(tmp_path, "kill.yaml", ACTION_OLD.replace("    action: error\n", "    action: kill\n"))
    assert cli.main(["policy", "diff", old, kill]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "       module github.com/evil/telemetry: same capabilities; action error -> kill  "
        "([network.connect] -> [network.connect])",
        f"diff: {kill} grants nothing new over {old}",
    ]
    top_error = _write(tmp_path, "top.yaml", ACTION_OLD.replace("action: kill", "action: error"))
    assert cli.main(["policy", "diff", old, top_error]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "       action: kill -> error"
    top_audit = _write(tmp_path, "top_audit.yaml", ACTION_OLD.replace("action: kill", "action: audit"))
    assert cli.main(["policy", "diff", old, top_audit, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["settings"] == [{"key": "action", "old": "kill", "new": "audit", "grants": True}]
    assert doc["modules"] == []  # telemetry keeps its own error; example.com/app only inherits: the setting says it


def test_merge_keeps_the_stricter_action_and_check_accepts_it(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path, "a.yaml", ACTION_OLD)
    b = _write(tmp_path, "b.yaml", ACTION_OLD.replace("action: kill", "action: audit")
               .replace("action: error", "action: audit"))
    out = tmp_path / "merged.yaml"
    assert cli.main(["policy", "merge", a, b, "-o", str(out)]) == 0
    text = out.read_text()
    assert "\naction: kill\n" in text
    assert ('  github.com/evil/telemetry:\n    action: error\n    network.connect: ["127.0.0.1:4317"]\n') in text
    assert "# conflict: module github.com/evil/telemetry action: " in text
    assert cli.main(["policy", "check", str(out)]) == 0
    assert cli.main(["policy", "diff", a, str(out)]) == 0  # the merge is exactly as strict as a
    capsys.readouterr()
