"""Learn mode's policy (gohook.policy.learn): what is kept of each observed call, and the policy text it becomes."""

from __future__ import annotations

from gohook.events.symbolize import StackFrame
from gohook.policy.format import CapabilityNames, parse_policy
from gohook.policy.learn import Learner, example_path
from gohook.sites.catalog import load_catalog

VOCAB = CapabilityNames([c.name for c in load_catalog().capabilities])


def _frames(*names: tuple[str, str]) -> tuple[StackFrame, ...]:
    """Frames innermost first, from (function, module) pairs."""
    return tuple(StackFrame(function=f, file="x.go", line=1, module=m, inlined=False) for f, m in names)


def test_example_path_starts_at_the_modules_frame() -> None:
    frames = _frames(("syscall.openat", "std"), ("os.OpenFile", "std"), ("acme/fileutil.ReadAll", "acme/fileutil"),
                     ("main.main", "example.com/app"))
    assert example_path("acme/fileutil", frames) == "acme/fileutil.ReadAll -> os.OpenFile -> syscall.openat"


def test_example_path_without_a_module_frame_uses_the_whole_stack() -> None:
    frames = _frames(("syscall.openat", "std"), ("runtime.main", "std"))
    assert example_path("acme/gone", frames) == "runtime.main -> syscall.openat"
    assert example_path("acme/gone", ()) == ""


def test_example_path_elides_the_middle_of_long_stacks() -> None:
    frames = _frames(*[(f"f{i}", "std") for i in range(8)], ("m.Run", "m"))
    assert example_path("m", frames) == "m.Run -> f7 -> ... -> f2 -> f1 -> f0"


def test_learner_keeps_the_first_call_of_each_module_and_capability() -> None:
    learner = Learner()
    first = _frames(("os.ReadFile", "std"), ("acme/cfg.Load", "acme/cfg"))
    later = _frames(("os.Open", "std"), ("acme/cfg.Reload", "acme/cfg"))
    learner.observe("acme/cfg", "files.read", "/etc/app.conf", first)
    learner.observe("acme/cfg", "files.read", "/etc/other", later)
    learner.observe("acme/net", "network.connect", None, _frames(("net.Dial", "std"), ("acme/net.Get", "acme/net")))
    learner.observe("std:init", "env.read", None, ())  # std's package init is no module a policy names
    learner.observe("(unattributed)", "exec", None, (), unattributed=True)
    text = learner.policy_text("/usr/local/bin/app")
    policy = parse_policy(text, VOCAB)
    assert {r.pattern: set(r.capabilities) for r in policy.modules} == {
        "acme/cfg": {"files.read"}, "acme/net": {"network.connect"}}
    assert not policy.default
    assert "# learned: files.read '/etc/app.conf' via acme/cfg.Load -> os.ReadFile" in text
    assert "/etc/other" not in text
    assert "# learned: network.connect via acme/net.Get -> net.Dial" in text
    assert "learned by gohook attach --mode learn on app (" in text
