"""The attach pipeline API (gohook.session) without the command line: options, planning, loader options."""

from __future__ import annotations

from pathlib import Path

import gofixtures
import pytest

from gohook.errors import GohookError
from gohook.policy.format import Mode
from gohook.session import (
    AttachOptions,
    AttachUsageError,
    OutputFormat,
    check_options,
    exit_status,
    prepare,
    program_options,
)


@pytest.fixture(scope="module")
def capapp() -> Path:
    return gofixtures.build(gofixtures.oracle_toolchain(), "capapp", "default")


def test_check_options_rejects_pid_with_command_and_missing_binaries(capapp: Path, tmp_path: Path) -> None:
    check_options(AttachOptions(binary=str(capapp), pids=(1,)))
    check_options(AttachOptions(binary=str(capapp), cmd=(str(capapp), "read")))
    with pytest.raises(AttachUsageError, match=r"^give either --pid or -- CMD, not both$"):
        check_options(AttachOptions(binary=str(capapp), pids=(1,), cmd=("true",)))
    with pytest.raises(AttachUsageError, match="no such file"):
        check_options(AttachOptions(binary=str(tmp_path / "gone")))


def test_prepare_plans_the_policy_for_the_binary(capapp: Path, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\naction: audit\nmodules:\n  github.com/acme/fileutil: [files.read]\n")
    binary, build = prepare(AttachOptions(binary=str(capapp), policy=str(policy), mode=Mode.AUDIT, sentinel="off"))
    plan = build.plan
    assert binary.path == str(capapp) and plan.binary == str(capapp)
    assert plan.mode is Mode.AUDIT and plan.hooks
    assert "github.com/acme/fileutil" in plan.modules
    fileutil = plan.modules.index("github.com/acme/fileutil") + 1
    assert plan.allowed[fileutil] == 1 << plan.capabilities.index("files.read")
    assert plan.sentinel is None


def test_prepare_needs_a_policy_except_in_learn_mode(capapp: Path) -> None:
    with pytest.raises(AttachUsageError, match=r"^--policy is required unless --mode learn$"):
        prepare(AttachOptions(binary=str(capapp)))
    _b, build = prepare(AttachOptions(binary=str(capapp), mode=Mode.LEARN))
    assert build.plan.mode is Mode.LEARN and not build.plan.allowed.get(1)


def test_prepare_reports_a_bad_policy_file(capapp: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nmodules:\n  acme/x: [no.such.capability]\n")
    with pytest.raises(GohookError, match="bad.yaml:3"):
        prepare(AttachOptions(binary=str(capapp), policy=str(bad)))


@pytest.mark.parametrize(("report_allowed", "mode", "live", "expected"), [
    (None, Mode.ENFORCE, False, False),  # only violations are events
    (None, Mode.AUDIT, False, False),
    (None, Mode.LEARN, False, True),  # learn mode reads every call
    (None, Mode.ENFORCE, True, True),  # the live view's table is built from allowed calls
    (True, Mode.ENFORCE, False, True),
    (False, Mode.LEARN, True, False),  # an explicit choice wins
])
def test_program_options_reports_allowed_calls_only_where_they_are_read(
        report_allowed: bool | None, mode: Mode, live: bool, expected: bool) -> None:
    assert program_options(report_allowed=report_allowed, mode=mode, live=live).report_allowed is expected


def test_options_defaults_and_exit_status() -> None:
    o = AttachOptions(binary="app")
    assert (o.mode, o.output, o.sentinel, o.as_json) == (Mode.ENFORCE, OutputFormat.TEXT, "auto", False)
    assert AttachOptions(binary="app", output=OutputFormat.JSON).as_json
    assert exit_status(0) == 0 and exit_status(3) == 3 and exit_status(-9) == 137


def test_a_policy_module_that_matches_nothing_is_refused(capapp: Path, tmp_path: Path) -> None:
    """Issue 17: a typo'd module name would leave the module it meant under `default`; attach refuses it with
    the rule's line and the closest module of the binary, unless allow_unmatched."""
    policy = tmp_path / "typo.yaml"
    policy.write_text("version: 1\nmodules:\n  example.com/capapp: [all]\n  github.com/evil/telemetri: [env.read]\n")
    with pytest.raises(AttachUsageError, match=r"typo.yaml:4: module 'github.com/evil/telemetri' matches no module "
                                               r".*\(did you mean github.com/evil/telemetry\?\)"):
        prepare(AttachOptions(binary=str(capapp), policy=str(policy), mode=Mode.AUDIT, sentinel="off"))
    _b, build = prepare(AttachOptions(binary=str(capapp), policy=str(policy), mode=Mode.AUDIT, sentinel="off",
                                      allow_unmatched=True))
    assert "github.com/evil/telemetry" in build.plan.modules


def test_binary_watch_says_once_when_the_path_holds_another_file(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 16: attach keeps enforcing the inode it probed; a new file moved over --binary is said, not silent."""
    from gohook.session import BinaryWatch

    app = tmp_path / "app"
    app.write_bytes(b"old")
    watch = BinaryWatch(str(app))
    assert not watch.check()
    app.write_bytes(b"changed in place")  # the same inode: the probes still hold
    assert not watch.check()
    new = tmp_path / "new"
    new.write_bytes(b"new build")
    new.replace(app)
    assert watch.check() and watch.check()
    err = capsys.readouterr().err
    assert err.count("WARNING") == 1 and "was replaced by another file" in err and "NOT enforced" in err
