"""Learn mode that can be trusted (issue 17 §1), live: the kernel counts every call, events or not.

In learn mode the BPF program also counts each call by (hook, module, capability) in learned_calls, so a
learned policy is complete when a full ring buffer drops events, and gohook can say which hook points the
run never exercised. Oracles: the number of calls denyapp was told to make, and the policy written.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import gofixtures
import pytest
from attach_helpers import attach_cmd, private_copy

from gohook.bpf.loader import attach
from gohook.bpf.render import ProgramOptions
from gohook.policy.format import Mode
from gohook.policy.learn import Learner
from gohook.session import AttachOptions, _learn_from_kernel, prepare

pytestmark = pytest.mark.bpf

GRAB = "github.com/evil/grab"
CALLS = 2000  # more than the violations ring buffer (64 pages) holds: learn mode reports every call as audit


@pytest.fixture(scope="module", autouse=True)
def _root() -> None:
    gofixtures.require_root("learn mode's uprobes")


def test_lost_events_still_reach_the_learned_policy(tmp_path: Path) -> None:
    """Ring buffers not read while the program runs: most of the 2,000 events are lost, the
    kernel's count is exact, and the learned rule becomes `any` with the loss in the header."""
    binary = private_copy(gofixtures.build(gofixtures.live_toolchain("1.27"), "denyapp"), tmp_path / "bin")
    secret = tmp_path / "secret.txt"
    secret.write_text("x\n")
    _, build = prepare(AttachOptions(binary=str(binary), mode=Mode.LEARN))
    plan = build.plan
    with attach(plan, options=ProgramOptions(report_allowed=True, ringbuf_pages=1)) as att:
        script = "".join(f"read\t{secret}\n" for _ in range(CALLS))
        done = subprocess.run([str(binary), "script"], input=script, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        counts = att.learned_counts()
        lost = att.counters().lost
    openat = {h.hook_id for h in plan.hooks if h.function == "syscall.openat"}
    grab = plan.modules.index(GRAB) + 1
    read = plan.capabilities.index("files.read")
    assert sum(n for (hook, module, cap), n in counts.items() if hook in openat and module == grab and cap == read) \
        == CALLS, counts
    assert lost > 0  # (the oracle that the buffer did overflow)
    learner = Learner()  # no event observed at all: the counts alone
    _learn_from_kernel(learner, counts, plan, lost)
    assert learner.rules()[GRAB] == {"files.read": None}
    assert f"LOSS: {GRAB} files.read: the events of {CALLS} of its {CALLS} calls were lost" in \
        learner.policy_text(str(binary))


def test_learn_says_which_hooks_never_fired(tmp_path: Path) -> None:
    binary = private_copy(gofixtures.build(gofixtures.live_toolchain("1.27"), "denyapp"), tmp_path / "bin")
    secret = tmp_path / "secret.txt"
    secret.write_text("x\n")
    out = tmp_path / "learned.yaml"
    ran = attach_cmd(binary, None, [str(binary), "read", str(secret)], tmp_path, mode="learn",
                     extra=["-o", str(out)])
    assert ran.status == 0, ran.stderr
    text = out.read_text()
    assert f'  {GRAB}:\n    files.read: ["{secret}"]' in text, text
    coverage = next(line for line in text.splitlines() if line.startswith("# coverage: "))
    assert "syscall.openat" not in coverage and "syscall.connect" in coverage, coverage
    assert "LOSS" not in text
    assert "hooked functions fired; never: " in ran.stderr


def test_lazy_std_initialization_is_not_the_first_callers(tmp_path: Path) -> None:
    """issue 17 §2: the dependency that first uses time.Local triggers the standard library's read of TZ and
    /etc/localtime (time.initLocal, once). Learn mode grants it nothing for that, and enforcement with no
    grant for it lets the call through (the read is std:init's)."""
    binary = private_copy(gofixtures.build(gofixtures.live_toolchain("1.27"), "denyapp"), tmp_path / "bin")
    out = tmp_path / "learned.yaml"
    ran = attach_cmd(binary, None, [str(binary), "localtime"], tmp_path, mode="learn", extra=["-o", str(out)])
    assert ran.status == 0, ran.stderr
    assert GRAB not in out.read_text()
    policy = tmp_path / "p.yaml"
    policy.write_text(f"version: 1\nmodules:\n  example.com/denyapp: [all]\n  {GRAB}: []\n", encoding="utf-8")
    enforced = attach_cmd(binary, policy, [str(binary), "localtime"], tmp_path)
    assert enforced.status == 0, enforced.stderr
    charged = {(e["module"], e["capability"]) for e in enforced.events if e["function"] in
               ("syscall.Getenv", "syscall.openat")}
    assert ("std:init", "env.read") in charged and all(m != GRAB for m, _ in charged), enforced.events
