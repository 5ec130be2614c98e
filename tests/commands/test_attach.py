"""`gohook attach` arguments -> session options (gohook.commands.attach.options_from), without attaching."""

from __future__ import annotations

import pytest

from gohook.commands.attach import options_from
from gohook.commands.main import build_parser
from gohook.policy.format import Mode
from gohook.policy.learn import LearnScope


def test_learn_scope_defaults_to_arguments() -> None:
    args = build_parser().parse_args(["attach", "--binary", "./app", "--mode", "learn", "-o", "l.yaml"])
    opts = options_from(args)
    assert opts.mode is Mode.LEARN and opts.learned_policy == "l.yaml"
    assert opts.learn_scope is LearnScope.ARGUMENTS


def test_learn_scope_capabilities_is_the_unscoped_form() -> None:
    args = build_parser().parse_args(["attach", "--binary", "./app", "--mode", "learn",
                                      "--learn-scope", "capabilities", "--", "./app", "run"])
    opts = options_from(args)
    assert opts.learn_scope is LearnScope.CAPABILITIES
    assert opts.cmd == ("./app", "run")


def test_unknown_learn_scope_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["attach", "--binary", "./app", "--learn-scope", "paths"])
    assert exc.value.code == 2
    assert "--learn-scope" in capsys.readouterr().err
