"""Learn mode's policy (gohook.policy.learn): what is kept of each observed call, and the policy text it becomes.

The scoped rules are checked two ways: against the patterns written out by
hand from the rule in gohook.policy.learn's docstring, and by parsing the
policy text back (gohook.policy.format) and asking each pattern
(gohook.policy.patterns, the kernel's reference matcher) whether every
argument the run was seen to pass is allowed: a learned policy must never
kill the run it was learned from.
"""

from __future__ import annotations

import pytest

from gohook.events.symbolize import StackFrame
from gohook.policy.format import CapabilityNames, Policy, parse_policy
from gohook.policy.learn import Learner, LearnScope, example_path
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


def _cfg_frames() -> tuple[StackFrame, ...]:
    return _frames(("os.ReadFile", "std"), ("acme/cfg.Load", "acme/cfg"))


def _allowed(policy: Policy, module: str, capability: str, argument: str | None) -> bool:
    """Whether `policy` lets `module` call `capability` with `argument` (any-argument grant or a matching pattern)."""
    if capability in policy.capabilities_of(module):
        return True
    patterns = policy.scopes_of(module).get(capability, ())
    if capability.startswith("network.") and argument is not None and argument.startswith(("/", "@")):
        argument = "unix:" + argument  # net.(*sysListener).listenUnix reports the bare socket name
    return argument is not None and any(p.matches(argument) for p in patterns)


def _learn(calls: list[tuple[str, str, str | None]], scope: LearnScope = LearnScope.ARGUMENTS
           ) -> tuple[Learner, str, Policy]:
    """Feed (module, capability, argument) calls; the learner, its text, and that text parsed back.

    Every call must be allowed by the learned policy (the run it was learned from is never killed).
    """
    learner = Learner(scope)
    for module, cap, arg in calls:
        learner.observe(module, cap, arg, _cfg_frames())
    text = learner.policy_text("/usr/local/bin/app")
    policy = parse_policy(text, VOCAB)
    for module, cap, arg in calls:
        assert _allowed(policy, module, cap, arg), (module, cap, arg)
    return learner, text, policy


def test_capabilities_scope_keeps_the_first_call_of_each_module_and_capability() -> None:
    learner = Learner(LearnScope.CAPABILITIES)
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
    assert all(not r.scopes for r in policy.modules)
    assert "  acme/cfg: [files.read]\n" in text
    assert not policy.default
    assert "# learned: files.read '/etc/app.conf' via acme/cfg.Load -> os.ReadFile" in text
    assert "/etc/other" not in text
    assert "# learned: network.connect via acme/net.Get -> net.Dial" in text
    assert "learned by gohook attach --mode learn on app (" in text
    assert learner.rules() == {"acme/cfg": {"files.read": None}, "acme/net": {"network.connect": None}}


def test_arguments_scope_is_the_default_and_keeps_the_evidence_comments() -> None:
    learner = Learner()
    assert learner.scope is LearnScope.ARGUMENTS
    first = _frames(("os.ReadFile", "std"), ("acme/cfg.Load", "acme/cfg"))
    learner.observe("acme/cfg", "files.read", "/etc/app.conf", first)
    learner.observe("acme/cfg", "files.read", "/etc/other", first)
    learner.observe("acme/cfg", "system.read", None, first)
    text = learner.policy_text("/usr/local/bin/app")
    assert "# learned: files.read '/etc/app.conf' via acme/cfg.Load -> os.ReadFile" in text
    assert learner.rules() == {"acme/cfg": {"files.read": ["/etc/app.conf", "/etc/other"], "system.read": None}}
    assert '  acme/cfg:\n    files.read: ["/etc/app.conf", "/etc/other"]\n    system.read: any\n' in text
    policy = parse_policy(text, VOCAB)
    assert policy.capabilities_of("acme/cfg") == {"system.read"}
    assert [p.text for p in policy.scopes_of("acme/cfg")["files.read"]] == ["/etc/app.conf", "/etc/other"]


def test_environment_names_are_exact_and_a_whole_environment_read_is_any() -> None:
    learner, text, _ = _learn([
        ("otel/exp", "env.read", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ("otel/exp", "env.read", "OTEL_SERVICE_NAME"),
        ("otel/exp", "env.read", "OTEL_SERVICE_NAME"),
        ("otel/exp", "env.write", "OTEL_SDK_DISABLED"),
        ("acme/cfg", "env.read", "HOME"),
        ("acme/cfg", "env.read", None),  # os.Environ: no name
        ("acme/cfg", "env.write", None),  # os.Clearenv
    ])
    assert learner.rules() == {
        "acme/cfg": {"env.read": None, "env.write": None},
        "otel/exp": {"env.read": ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"],
                     "env.write": ["OTEL_SDK_DISABLED"]},
    }
    assert "# learned: env.read: any: the whole environment (a call with no variable name, e.g. os.Environ)" in text
    assert "  acme/cfg: [env.read, env.write]\n" in text  # nothing scoped: the list form


@pytest.mark.parametrize(("capability", "argument", "pattern"), [
    ("network.connect", "127.0.0.1:4317", "127.0.0.1:4317"),
    ("network.connect", "[::ffff:1.2.3.4]:80", "1.2.3.4:80"),  # IPv4-mapped: written as IPv4
    ("network.connect", "[::ffff:102:304]:80", "1.2.3.4:80"),  # the same, as Python < 3.13 prints it
    ("network.connect", "[2001:db8:0:0:0:0:0:1]:443", "[2001:db8::1]:443"),
    ("network.connect", "unix:/run/otel/collector.sock", "unix:/run/otel/collector.sock"),
    ("network.connect", "unix:@otel-agent", "unix:@otel-agent"),
    ("network.listen", ":8080", "0.0.0.0:8080"),  # unspecified listen address
    ("network.listen", "[::]:9090", "[::]:9090"),
    ("network.listen", "/run/app.sock", "unix:/run/app.sock"),  # listenUnix reports the bare name
    ("network.listen", "@app", "unix:@app"),
    ("exec", "/usr/bin/git", "/usr/bin/git"),
    ("files.write", "/var/lib/acme/cache/x.json", "/var/lib/acme/cache/x.json"),
])
def test_arguments_become_exact_patterns(capability: str, argument: str, pattern: str) -> None:
    learner, _, _ = _learn([("m/a", capability, argument)])
    assert learner.rules() == {"m/a": {capability: [pattern]}}


@pytest.mark.parametrize(("capability", "argument", "why"), [
    ("files.read", "conf/app.yaml", "is relative"),
    ("files.read", "./app.yaml", "is relative"),
    ("files.read", "/allowed/../etc/passwd", "holds `//`, `.` or `..`"),
    ("files.read", "/etc//passwd", "holds `//`, `.` or `..`"),
    ("files.read", "/etc/./passwd", "holds `//`, `.` or `..`"),
    ("files.write", "3", "file descriptor"),  # syscall.Fchmod reports its fd
    ("files.read", "/" + "a" * 300, "longer than 240 bytes"),  # also what a truncated capture looks like
    ("files.read", "/tmp/x*y", "cannot spell exactly"),
    ("files.read", None, "argument not captured"),
    ("exec", "git", "is relative"),
    ("network.connect", "family 16: 0011", "another family"),
    ("network.connect", ":80", "no IP"),
    ("network.listen", "7", "file descriptor"),  # syscall.Listen(fd)
    ("network.connect", "unix:", "autobind"),
    ("network.connect", "unix:sock", "is relative"),
    ("env.read", "", "empty name"),
])
def test_arguments_no_pattern_matches_make_the_capability_any(capability: str, argument: str | None,
                                                             why: str) -> None:
    calls = [("m/a", capability, "/etc/ok" if capability.startswith("files") else None), ("m/a", capability, argument)]
    learner, text, _ = _learn(calls[1:])
    assert learner.rules() == {"m/a": {capability: None}}
    note = next(line for line in text.splitlines() if line.startswith(f"  # learned: {capability}: any: "))
    assert why in note


def test_a_relative_path_after_exact_ones_still_makes_the_capability_any() -> None:
    learner, text, _ = _learn([("m/a", "files.read", "/etc/hosts"), ("m/a", "files.read", "data/x"),
                               ("m/a", "files.read", "/etc/resolv.conf")])
    assert learner.rules() == {"m/a": {"files.read": None}}
    assert "# learned: files.read: any: 'data/x' is relative" in text


def _paths(directory: str, n: int, prefix: str = "f") -> list[str]:
    return [f"{directory}/{prefix}{i}.json" for i in range(n)]


def test_more_than_8_files_in_one_directory_collapse_to_dir_star() -> None:
    calls = [("m/a", "files.read", p) for p in _paths("/var/lib/acme/cache", 9)]
    learner, text, _ = _learn(calls)
    assert learner.rules() == {"m/a": {"files.read": ["/var/lib/acme/cache/*"]}}
    assert ("# learned: files.read: /var/lib/acme/cache/* stands for 9 distinct paths directly in "
            "/var/lib/acme/cache (more than 8)") in text


def test_8_files_in_one_directory_stay_exact() -> None:
    paths = _paths("/var/lib/acme/cache", 8)
    learner, _, _ = _learn([("m/a", "files.read", p) for p in paths])
    assert learner.rules() == {"m/a": {"files.read": sorted(paths)}}


def test_more_than_8_files_across_subdirectories_collapse_to_the_deepest_tree() -> None:
    paths = _paths("/srv/acme/data/a", 5) + _paths("/srv/acme/data/b/c", 4) + ["/srv/acme/data"]
    other = ["/srv/acme/other.conf"]
    learner, text, policy = _learn([("m/a", "files.write", p) for p in paths + other])
    assert learner.rules() == {"m/a": {"files.write": ["/srv/acme/data/**", "/srv/acme/other.conf"]}}
    assert "/srv/acme/data/** stands for 10 distinct paths in 3 directories under /srv/acme/data" in text
    pats = policy.scopes_of("m/a")["files.write"]
    assert any(p.matches("/srv/acme/data/new/deeper/file") for p in pats)  # what the collapse is for
    assert not any(p.matches("/srv/acme/secret") for p in pats)


def test_a_directory_collapse_inside_a_tree_collapse_is_absorbed() -> None:
    paths = _paths("/opt/acme/plugins/x", 12) + _paths("/opt/acme/plugins/y", 3) + _paths("/opt/acme/plugins/z", 6)
    learner, _, _ = _learn([("m/a", "files.read", p) for p in paths])
    # x collapses to x/*; the 9 left in y and z span two directories: the tree above them
    assert learner.rules() == {"m/a": {"files.read": ["/opt/acme/plugins/**"]}}


@pytest.mark.parametrize(("directory", "why"), [
    ("/etc", "a top-level directory"),
    ("/home", "a top-level directory"),
    ("/home/alice", "a home directory"),
    ("/proc/self", "under /proc"),
])
def test_never_collapsed_to_a_top_level_home_or_proc_directory(directory: str, why: str) -> None:
    paths = _paths(directory, 12)
    learner, text, _ = _learn([("m/a", "files.read", p) for p in paths])
    assert learner.rules() == {"m/a": {"files.read": sorted(paths)}}
    assert f"12 paths directly in {directory} kept exact (not collapsed: {why}" in text


def test_no_tree_collapse_to_a_top_level_directory() -> None:
    paths = _paths("/etc/ssl", 5) + _paths("/etc/pki", 5)  # 10 under /etc, in two directories
    learner, text, _ = _learn([("m/a", "files.read", p) for p in paths])
    assert learner.rules() == {"m/a": {"files.read": sorted(paths)}}
    assert "10 paths under /etc kept exact (not collapsed: a top-level directory)" in text
    rules = text[text.index("modules:"):]
    assert "/**" not in rules and "/*\"" not in rules


def test_files_in_the_root_directory_are_never_collapsed() -> None:
    paths = [f"/f{i}" for i in range(10)]
    learner, _, _ = _learn([("m/a", "exec", p) for p in paths])
    assert learner.rules() == {"m/a": {"exec": sorted(paths)}}


def test_more_than_8_ports_of_one_address_become_any_port() -> None:
    calls = [("m/a", "network.connect", f"10.0.0.5:{7000 + i}") for i in range(9)]
    calls += [("m/a", "network.connect", "10.0.0.6:443")]
    learner, text, _ = _learn(calls)
    assert learner.rules() == {"m/a": {"network.connect": ["10.0.0.5:*", "10.0.0.6:443"]}}
    assert "10.0.0.5:* stands for 9 ports" in text


def test_the_unspecified_address_counts_its_ports_across_families() -> None:
    # 0.0.0.0 and [::] are one address to the policy loader: 5 + 5 ports are more than 8 of it
    calls = [("m/a", "network.listen", f":{8000 + i}") for i in range(5)]
    calls += [("m/a", "network.listen", f"[::]:{9000 + i}") for i in range(5)]
    learner, _, _ = _learn(calls)
    assert learner.rules() == {"m/a": {"network.listen": ["0.0.0.0:*", "[::]:*"]}}


def test_too_many_distinct_arguments_make_the_capability_any() -> None:
    learner = Learner(max_arguments=3)
    for name in ("A", "B", "C", "A", "D"):
        learner.observe("m/a", "env.read", name, ())
    assert learner.rules() == {"m/a": {"env.read": None}}
    assert "# learned: env.read: any: more than 3 distinct arguments" in learner.policy_text("app")


def test_capabilities_without_argument_patterns_are_any_in_the_mapping() -> None:
    learner, text, policy = _learn([("m/a", "system.read", None), ("m/a", "memory.exec", "7"),
                                    ("m/a", "env.read", "HOME")])
    assert learner.rules() == {"m/a": {"env.read": ["HOME"], "memory.exec": None, "system.read": None}}
    assert policy.capabilities_of("m/a") == {"memory.exec", "system.read"}
    assert "learned: system.read: any" not in text  # no argument class: nothing to explain


def test_only_any_grants_use_the_list_form() -> None:
    _, text, policy = _learn([("m/a", "system.read", None), ("m/a", "files.read", "rel")])
    assert "  m/a: [files.read, system.read]\n" in text
    assert policy.capabilities_of("m/a") == {"files.read", "system.read"}


def test_calls_whose_events_were_lost_are_granted_for_any_argument() -> None:
    """The kernel's per-(module, capability) counts complete the policy: a capability with no event at all,
    and one with fewer events than calls (the arguments seen are not all the arguments), become `any`, with
    the reason in the rule's notes and the policy's header; a fully observed one keeps its exact patterns."""
    learner = Learner()
    frames = (StackFrame("github.com/acme/x.Load", "x.go", 3, "github.com/acme/x", False),)
    learner.observe("github.com/acme/x", "files.read", "/etc/x.conf", frames)
    learner.observe("github.com/acme/y", "env.read", "HOME", frames)
    lines = learner.reconcile({("github.com/acme/x", "files.read"): 1, ("github.com/acme/y", "env.read"): 3,
                               ("github.com/acme/z", "network.connect"): 2, ("std:init", "env.read"): 5})
    assert lines == ["github.com/acme/y env.read: the events of 2 of its 3 calls were lost: any argument",
                     "github.com/acme/z network.connect: the events of 2 of its 2 calls were lost: any argument"]
    rules = learner.rules()
    assert rules["github.com/acme/x"] == {"files.read": ["/etc/x.conf"]}
    assert rules["github.com/acme/y"] == {"env.read": None} and rules["github.com/acme/z"] == {"network.connect": None}
    assert "std:init" not in rules
    text = learner.policy_text("/bin/app")
    assert "# LOSS: github.com/acme/z network.connect: the events of 2 of its 2 calls were lost" in text
    assert "learned: network.connect (counted in the kernel)" in text
    learner.coverage(["syscall.Kill", "syscall.Uname"], 30)
    assert "# coverage: 28 of 30 hook points fired; never: syscall.Kill, syscall.Uname" in learner.policy_text("/b")
