"""`gohook attach` live, through the real CLI, on this kernel, against fixture binaries built by the suite.

The matrix of issue 4 section 4. Fake third-party modules of capapp
(testdata/go/capapp) and attachapp (testdata/go/attachapp: waiting, exec of a
given program, standard-library callbacks into a dependency, a timed loop)
open files for reading, create files, dial and listen on loopback, read and
set the environment and exec programs. For each capability:

- allowed: the call succeeds and its JSON event names capability, module and argument;
- denied in kill mode: the process dies with SIGKILL (137) and the side effect never happened;
- audit (`--mode audit`, and `action: audit` in the policy): the process goes on, the event says "audit".

Then attribution through an inlined wrapper, standard-library callbacks,
goroutines, PIE and stripped builds, two concurrent processes, --pid on a
running process, `attribution: stack` vs `caller`, `trust`, and 8 goroutines
hammering an allowed call for 10 s.

Each test attaches to its own copy of the binary (uprobes are per file and
system-wide; other test runs share the machine). Each `gohook attach` costs
about 1 s of BPF compilation and, on this kernel, about 0.1 s per uprobe to
detach, so checks are grouped: one background attach per policy, many
processes under it. Runs as root; in CI (CI=true) nothing here skips.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gofixtures
import pytest
from attach_helpers import (
    ATTACHED_TIMEOUT,
    KILLED,
    STATUS_KILLED,
    Event,
    Listener,
    Ran,
    Session,
    Waiting,
    attach_cmd,
    for_pid,
    gohook_argv,
    policy_file,
    private_copy,
    run,
    sessions,
    show,
    stack_functions,
    stack_modules,
)

pytestmark = pytest.mark.bpf

# capapp's modules (testdata/go/capapp/README.md)
CAPAPP = "example.com/capapp"
FILEUTIL = "github.com/acme/fileutil"
NETCLIENT = "github.com/acme/netclient"
TELEMETRY = "github.com/evil/telemetry"
RUNNER = "github.com/acme/runner"
MONO = "github.com/acme/mono"
SUB = "github.com/acme/mono/sub"
STRUTIL = "github.com/acme/go.strutil"
# attachapp's modules
ATTACHAPP = "example.com/attachapp"
VISIT = "github.com/acme/visit"
SPAWN = "github.com/acme/spawn"

UNATTRIBUTED = "(unattributed)"

#: Toolchains for what depends on the binary (probe sites, inline trees, wrappers, goid offset, PIE,
#: stripped): the newest, and Debian's Go 1.19 (the 1.18 table format, older prologues). Decisions that only
#: depend on the policy (audit, stack, trust, --pid, the loop) run with the newest only: each attach costs.
LIVE_GO = ("1.27", "1.19")

#: What capapp's modules need to do every action (found with `gohook attach --mode learn`).
CAPAPP_NEEDS: dict[str, list[str]] = {
    CAPAPP: ["files.read", "env.read"],  # main reads back the gowrap file and prints the variable setenv set
    FILEUTIL: ["files.read", "files.write"],
    NETCLIENT: ["files.read", "network.connect", "network.listen"],  # net reads /proc/sys/net/core/somaxconn
    TELEMETRY: ["env.read", "env.write", "network.connect"],
    RUNNER: ["env.read", "exec", "files.read", "files.write"],  # os/exec opens /dev/null, reads the environment
    MONO: [],  # caller attribution: mono -> sub -> os.OpenFile is sub's call
    SUB: ["files.read"],
}

#: Each dependency loses the capability its actions are about; main keeps its own reads, so every
#: kill below is charged to a dependency, not to main.
CAPAPP_DENIES: dict[str, list[str]] = {
    CAPAPP: ["files.read", "env.read"],
    FILEUTIL: [],
    NETCLIENT: ["files.read"],  # network.connect and network.listen denied
    TELEMETRY: [],
    RUNNER: ["env.read", "files.read", "files.write"],  # exec denied
    MONO: ["files.read"],  # caller attribution: does not help sub
    SUB: [],
}


_toolchain = gofixtures.live_toolchain


@pytest.fixture(scope="module", autouse=True)
def _root() -> None:
    gofixtures.require_root("live attach tests")


@pytest.fixture(scope="module", params=LIVE_GO, ids=lambda v: f"go{v}")
def go(request: pytest.FixtureRequest) -> gofixtures.Toolchain:
    return _toolchain(request.param)


@pytest.fixture(scope="module")
def newest_go() -> gofixtures.Toolchain:
    return _toolchain(LIVE_GO[0])


def _binary(toolchain: gofixtures.Toolchain, fixture: str, mode: str, tmp_path: Path, name: str = "") -> Path:
    """A private copy of a fixture build (never attach to the shared build/fixtures file)."""
    return private_copy(gofixtures.build(toolchain, fixture, mode), tmp_path / "bin", name or f"{fixture}-{mode}")


@dataclass(frozen=True)
class Data:
    """Input files for the fixtures."""

    infile: Path  # a small file to read
    tree: Path  # a directory with two files, for walks
    tree_files: tuple[Path, ...]
    out: Path  # a directory for files the fixtures create


@pytest.fixture
def data(tmp_path: Path) -> Data:
    infile = tmp_path / "in.txt"
    infile.write_text("hello gohook\n")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    files = (tree / "a.txt", tree / "sub" / "b.txt")
    for i, f in enumerate(files):
        f.write_text("x" * (i + 1))
    out = tmp_path / "out"
    out.mkdir()
    return Data(infile, tree, files, out)


# --- event checks -----------------------------------------------------------------------


@dataclass(frozen=True)
class Contains:
    """An expected argument given by a part of it (a dial's address: the event may add the network)."""

    text: str


Argument = str | Contains | None  # None: not checked


def argument_is(actual: str | None, want: Argument) -> bool:
    if isinstance(want, Contains):
        return actual is not None and want.text in actual
    return want is None or actual == want


def matching(events: list[Event], pid: int, capability: str, argument: Argument = None) -> list[Event]:
    return [e for e in events if e["pid"] == pid and e["capability"] == capability
            and argument_is(e["argument"], argument)]


def allowed(events: list[Event], ran: Ran, capability: str, module: str, argument: Argument = None) -> Event:
    """The allowed event of `ran` for capability (and argument); checks its module and the process's success."""
    mine = for_pid(events, ran.pid)
    assert ran.returncode == 0, f"{ran}\n{show(mine)}"
    assert all(e["decision"] == "allow" for e in mine), show(mine)
    hits = matching(events, ran.pid, capability, argument)
    assert hits, f"no {capability} {argument!r} event for {ran}\n{show(mine)}"
    assert {e["module"] for e in hits} == {module}, show(hits)
    return hits[0]


def denied(events: list[Event], ran: Ran, capability: str, module: str, argument: Argument) -> Event:
    """The kill of `ran`: SIGKILL, and its first non-allowed event is a deny of capability by module."""
    mine = for_pid(events, ran.pid)
    assert ran.returncode == KILLED, f"{ran}\n{show(mine)}"
    verdicts = [e for e in mine if e["decision"] != "allow"]
    assert verdicts, f"killed without a deny event: {ran}\n{show(mine)}"
    ev = verdicts[0]
    assert (ev["decision"], ev["capability"], ev["module"]) == ("deny", capability, module), show(mine)
    assert argument_is(ev["argument"], argument), show(mine)
    return ev


def audited(events: list[Event], ran: Ran, capability: str, module: str, argument: Argument) -> Event:
    """`ran` went on (exit 0) and its call of capability was recorded as audit, charged to module."""
    mine = for_pid(events, ran.pid)
    assert ran.returncode == 0, f"{ran}\n{show(mine)}"
    assert not [e for e in mine if e["decision"] == "deny"], show(mine)
    hits = [e for e in matching(events, ran.pid, capability, argument) if e["decision"] == "audit"]
    assert hits, f"no audit event of {capability} {argument!r} by {module} for {ran}\n{show(mine)}"
    assert {e["module"] for e in hits} == {module}, show(hits)
    return hits[0]


def has_frame(ev: Event, pred: Callable[[str], bool]) -> bool:
    return any(pred(f) for f in stack_functions(ev))


# --- the capability matrix (capapp) -----------------------------------------------------------


@dataclass
class Case:
    """One capapp action whose dependency lacks the capability under CAPAPP_DENIES."""

    action: str
    args: tuple[str, ...]
    capability: str
    module: str
    argument: Argument  # None: not checked (no argument is captured for this hook yet)
    creates: Path | None = None  # a file the action creates when it is let through
    listener: Listener | None = None  # a loopback listener the action connects to when let through
    sends: bytes = b""  # what it sends there
    env: dict[str, str] | None = None
    goroutine: bool = False  # the call is made on a goroutine other than main's


def capability_cases(d: Data, tag: str) -> list[Case]:
    """Every fake-module capability of capapp, with its visible side effect."""
    o = d.out
    dial, phone = Listener(), Listener()
    var = f"GOHOOK_{tag.upper()}_VAR"
    return [
        Case("read", (str(d.infile),), "files.read", FILEUTIL, str(d.infile)),
        Case("create", (str(o / f"{tag}-create.txt"),), "files.write", FILEUTIL, str(o / f"{tag}-create.txt"),
             creates=o / f"{tag}-create.txt"),
        Case("dial", (dial.addr,), "network.connect", NETCLIENT, Contains(dial.addr), listener=dial,
             sends=b"hello from netclient\n"),
        Case("phonehome", (phone.addr,), "network.connect", TELEMETRY, Contains(phone.addr), listener=phone,
             sends=b"user="),
        Case("listen", (), "network.listen", NETCLIENT, None),
        Case("getenv", (var,), "env.read", TELEMETRY, var, env={var: "present"}),
        Case("setenv", (f"{var}=1",), "env.write", TELEMETRY, var),
        Case("exec", (), "exec", RUNNER, "/bin/true"),
        Case("inline", (str(d.infile),), "files.read", FILEUTIL, str(d.infile)),
        Case("goroutine", (str(d.infile),), "files.read", FILEUTIL, str(d.infile), goroutine=True),
        Case("gowrap", (str(o / f"{tag}-gowrap.txt"),), "files.write", FILEUTIL, str(o / f"{tag}-gowrap.txt"),
             creates=o / f"{tag}-gowrap.txt", goroutine=True),
        Case("generic", (str(d.infile),), "files.read", FILEUTIL, str(d.infile)),
        # filepath.WalkDir (called by fileutil.Walk) stats the root first: that is fileutil's call
        Case("walk", (str(d.tree),), "files.read", FILEUTIL, str(d.tree)),
        Case("chain", (str(d.infile),), "files.read", SUB, str(d.infile)),
    ]


def _close(cases: list[Case]) -> None:
    for c in cases:
        if c.listener is not None:
            c.listener.close()


def test_allowed_calls_succeed_and_name_module_capability_argument(go: gofixtures.Toolchain, tmp_path: Path,
                                                                   data: Data) -> None:
    app = _binary(go, "capapp", "default", tmp_path)
    policy = policy_file(tmp_path / "allow.yaml", CAPAPP_NEEDS)
    cases = capability_cases(data, "allow")
    try:
        with sessions(Session(app, policy, tmp_path)) as (s,):
            ran = {c.action: run(app, c.action, *c.args, env=c.env) for c in cases}
            ran["sort"] = run(app, "sort", "pear", "Apple", "fig")
            received = {c.action: c.listener.received() for c in cases if c.listener is not None}
    finally:
        _close(cases)
    events = s.events
    for c in cases:
        ev = allowed(events, ran[c.action], c.capability, c.module, c.argument)
        if c.creates is not None:
            assert c.creates.exists(), f"{c.action}: {ran[c.action]}"
        if c.listener is not None:
            assert len(received[c.action]) == 1 and received[c.action][0].startswith(c.sends), received
        assert (ev["goid"] != 1) == c.goroutine, show([ev])
        assert ev["stack"][0]["function"] == ev["function"] and ev["stack"][0]["module"] == "std", ev["stack"][0]
    # the self-connection of `listen` is dialed on a goroutine netclient starts
    allowed(events, ran["listen"], "network.connect", NETCLIENT)
    assert "listened on 127.0.0.1:" in ran["listen"].stdout
    assert ran["getenv"].stdout.strip().endswith("=present") and ran["exec"].stdout == "ran /bin/true\n"

    # an inlined dependency wrapper: fileutil.ReadFile has no frame of its own, only an inline-tree entry
    inline = allowed(events, ran["inline"], "files.read", FILEUTIL, str(data.infile))
    frames = [(f["function"], f["inlined"]) for f in inline["stack"]]
    i = frames.index((f"{FILEUTIL}.ReadFile", True))
    assert frames[i + 1] == ("main.doInline", False), frames

    # a standard-library callback: filepath.WalkDir calls fileutil's closure, which reads each file
    for f in data.tree_files:
        ev = allowed(events, ran["walk"], "files.read", FILEUTIL, str(f))
        names = stack_functions(ev)
        assert "path/filepath.WalkDir" in names and f"{FILEUTIL}.Walk.func1" in names, names

    # goroutines that fileutil starts: a closure, and `go os.WriteFile(...)` (only the compiler's wrapper is there)
    ev = allowed(events, ran["goroutine"], "files.read", FILEUTIL, str(data.infile))
    assert has_frame(ev, lambda n: n.startswith(f"{FILEUTIL}.ReadAsync.func")), stack_functions(ev)
    ev = allowed(events, ran["gowrap"], "files.write", FILEUTIL)
    assert has_frame(ev, lambda n: n.startswith(f"{FILEUTIL}.WriteAsync.")), stack_functions(ev)
    assert "runtime.goexit" not in stack_functions(ev) and "main.main" not in stack_functions(ev)

    ev = allowed(events, ran["generic"], "files.read", FILEUTIL, str(data.infile))
    assert has_frame(ev, lambda n: n.startswith(f"{FILEUTIL}.ReadAs[")), stack_functions(ev)

    # caller attribution: main -> mono -> sub -> os.OpenFile is sub's call; mono holds nothing
    ev = allowed(events, ran["chain"], "files.read", SUB, str(data.infile))
    assert [m for m in dict.fromkeys(stack_modules(ev)) if m != "std"] == [SUB, MONO, CAPAPP], stack_modules(ev)

    # sort.Slice calling back into go.strutil: pure computation, nothing hooked
    assert ran["sort"].returncode == 0 and ran["sort"].stdout == "Apple fig pear\n", ran["sort"]
    assert not [e for e in events if e["module"] == STRUTIL]
    assert s.summary().killed == 0


def test_denied_calls_are_killed_before_their_side_effect(go: gofixtures.Toolchain, tmp_path: Path,
                                                          data: Data) -> None:
    app = _binary(go, "capapp", "default", tmp_path)
    policy = policy_file(tmp_path / "deny.yaml", CAPAPP_DENIES)
    cases = capability_cases(data, "deny")
    try:
        with sessions(Session(app, policy, tmp_path)) as (s,):
            ran = {c.action: run(app, c.action, *c.args, env=c.env) for c in cases}
            received = {c.action: c.listener.received() for c in cases if c.listener is not None}
    finally:
        _close(cases)
    events = s.events
    for c in cases:
        ev = denied(events, ran[c.action], c.capability, c.module, c.argument)
        assert ran[c.action].stdout == "", f"{c.action} got past its call: {ran[c.action]}"
        if c.creates is not None:
            assert not c.creates.exists(), f"{c.action} created {c.creates} although killed"
        if c.listener is not None:
            assert received[c.action] == [], f"{c.action}: the listener saw a connection: {received[c.action]}"
        assert (ev["goid"] != 1) == c.goroutine, show([ev])
    assert s.summary().killed == len(cases)
    # the inlined wrapper is charged to fileutil even though main, whose function holds the code, may read
    assert "main.doInline" in stack_functions(denied(events, ran["inline"], "files.read", FILEUTIL, None))


def test_audit_mode_and_audit_action_let_the_call_run_and_record_it(newest_go: gofixtures.Toolchain, tmp_path: Path,
                                                                      data: Data) -> None:
    by_mode = _binary(newest_go, "capapp", "default", tmp_path, "capapp-audit-mode")
    by_action = _binary(newest_go, "capapp", "default", tmp_path, "capapp-audit-action")
    kill_policy = policy_file(tmp_path / "deny.yaml", CAPAPP_DENIES)
    audit_policy = policy_file(tmp_path / "audit.yaml", CAPAPP_DENIES, action="audit")
    runs: dict[str, tuple[list[Case], dict[str, Ran], dict[str, list[bytes]]]] = {}
    with sessions(Session(by_mode, kill_policy, tmp_path, mode="audit"),
                  Session(by_action, audit_policy, tmp_path)) as (s_mode, s_action):
        for app, tag in ((by_mode, "mode"), (by_action, "action")):
            cases = capability_cases(data, tag)
            try:
                ran = {c.action: run(app, c.action, *c.args, env=c.env) for c in cases}
                received = {c.action: c.listener.received() for c in cases if c.listener is not None}
            finally:
                _close(cases)
            runs[app.name] = (cases, ran, received)
    for app, s in ((by_mode, s_mode), (by_action, s_action)):
        cases, ran, received = runs[app.name]
        for c in cases:
            audited(s.events, ran[c.action], c.capability, c.module, c.argument)
            if c.creates is not None:
                assert c.creates.exists(), f"{app.name} {c.action}: {ran[c.action]}"
            if c.listener is not None:
                assert len(received[c.action]) == 1 and received[c.action][0].startswith(c.sends), received
        assert "listened on 127.0.0.1:" in ran["listen"].stdout and ran["exec"].stdout == "ran /bin/true\n"
        assert s.summary().killed == 0


# --- attachapp: callbacks, exec side effects, concurrency, --pid, stripped, loop ------------------


def _marker_script(tmp_path: Path) -> tuple[Path, Path]:
    """A program whose only effect is to create a marker file: did a child run?"""
    marker = tmp_path / "out" / "child-ran"
    script = tmp_path / "make-marker.sh"
    script.write_text(f"#!/bin/sh\necho ran > '{marker}'\n")
    script.chmod(0o755)
    return script, marker


def test_std_callbacks_are_charged_to_the_dependency_and_a_denied_exec_starts_no_child(
        go: gofixtures.Toolchain, tmp_path: Path, data: Data) -> None:
    app = _binary(go, "attachapp", "default", tmp_path)
    policy = policy_file(tmp_path / "callbacks.yaml", {
        ATTACHAPP: ["files.read"],  # filepath.WalkDir's own stat and directory reads are main's (main calls it)
        VISIT: ["files.read", "env.read"],  # main may not read the environment: sort's less function may
        SPAWN: ["env.read", "files.read", "files.write"],  # but not exec
    })
    script, marker = _marker_script(tmp_path)
    with sessions(Session(app, policy, tmp_path)) as (s,):
        walk = run(app, "walk", str(data.tree))
        srt = run(app, "sort", "GOHOOK_B", "GOHOOK_A", env={"GOHOOK_A": "1", "GOHOOK_B": "2"})
        spawn = run(app, "exec", str(script))
        spawn_true = run(app, "exec", "/bin/true")
    events = s.events
    for f in data.tree_files:
        ev = allowed(events, walk, "files.read", VISIT, str(f))
        names = stack_functions(ev)
        assert names.index(f"{VISIT}.File") < names.index("path/filepath.WalkDir") < names.index("main.doWalk")
    assert walk.stdout == "walked 2 files\n"
    for name in ("GOHOOK_A", "GOHOOK_B"):
        ev = allowed(events, srt, "env.read", VISIT, name)
        names = stack_functions(ev)
        assert names.index(f"{VISIT}.ByEnv.func1") < names.index("sort.Slice") < names.index("main.doSort"), names
    assert srt.stdout == "sorted GOHOOK_A GOHOOK_B\n"
    denied(events, spawn, "exec", SPAWN, str(script))
    assert not marker.exists(), "the denied exec started its child"
    denied(events, spawn_true, "exec", SPAWN, "/bin/true")


def test_two_concurrent_processes_of_one_pie_binary_are_both_governed(go: gofixtures.Toolchain, tmp_path: Path,
                                                                      data: Data) -> None:
    app = _binary(go, "attachapp", "pie", tmp_path)
    # (the wait step's os.Getpid is main's system.read)
    policy = policy_file(tmp_path / "pie.yaml", {VISIT: ["files.read"], ATTACHAPP: ["system.read"]})
    created = data.out / "pie-create.txt"
    with sessions(Session(app, policy, tmp_path)) as (s,):
        reader = Waiting(app, "wait", "+", "read", str(data.infile))
        try:
            writer = Waiting(app, "wait", "+", "create", str(created))
            try:
                reader.poke()
                writer.poke()  # both are running now, each with its own load address
                r, w = reader.finish(), writer.finish()
            finally:
                writer.kill()
        finally:
            reader.kill()
    assert r.pid != w.pid
    allowed(s.events, r, "files.read", VISIT, str(data.infile))
    assert r.stdout.endswith(f"read {len(data.infile.read_bytes())} bytes\n"), r
    denied(s.events, w, "files.write", VISIT, str(created))
    assert not created.exists()


def test_stripped_binary_under_cmd_exits_with_the_childs_status(go: gofixtures.Toolchain, tmp_path: Path,
                                                                 data: Data) -> None:
    app = _binary(go, "attachapp", "stripped", tmp_path)
    assert b".symtab" not in app.read_bytes(), "the stripped build still has a symbol table"
    policy = policy_file(tmp_path / "stripped.yaml", {VISIT: ["files.read"]})
    created = data.out / "stripped-create.txt"
    res = attach_cmd(app, policy, [str(app), "read", str(data.infile), "+", "create", str(created)], tmp_path)
    assert res.status == STATUS_KILLED, res.stderr
    assert f"exited with status {STATUS_KILLED}" in res.stderr
    [pid] = {e["pid"] for e in res.events}
    ran = Ran(pid, KILLED, "\n".join(res.child_stdout), "")
    ev = denied(res.events, ran, "files.write", VISIT, str(created))
    assert f"{VISIT}.Create" in stack_functions(ev)  # names from the pclntab, no .symtab needed
    assert [e["decision"] for e in matching(res.events, pid, "files.read", str(data.infile))] == ["allow"]
    assert res.child_stdout[-1].startswith("read "), res.child_stdout
    assert not created.exists()


def test_attach_to_an_already_running_pid_governs_only_that_process(newest_go: gofixtures.Toolchain, tmp_path: Path,
                                                                    data: Data) -> None:
    app = _binary(newest_go, "attachapp", "default", tmp_path)
    policy = policy_file(tmp_path / "pid.yaml", {VISIT: []})
    target_file, other_file = data.out / "by-target.txt", data.out / "by-other.txt"
    target = Waiting(app, "wait", "+", "create", str(target_file))
    other = Waiting(app, "wait", "+", "create", str(other_file))
    try:
        with sessions(Session(app, policy, tmp_path, pids=(target.pid,))) as (s,):
            target.poke()
            other.poke()
            t, o = target.finish(), other.finish()
    finally:
        target.kill()
        other.kill()
    denied(s.events, t, "files.write", VISIT, str(target_file))
    assert not target_file.exists()
    assert o.returncode == 0 and other_file.exists(), o  # same file, another process: not covered by --pid
    assert not for_pid(s.events, o.pid)


def test_stack_attribution_needs_every_module_on_the_stack(newest_go: gofixtures.Toolchain, tmp_path: Path,
                                                           data: Data) -> None:
    """capapp chain: main -> mono.Open -> sub.OpenFile -> os.OpenFile (caller attribution: see the allow test)."""
    without_mono = _binary(newest_go, "capapp", "default", tmp_path, "capapp-stack-without-mono")
    with_all = _binary(newest_go, "capapp", "default", tmp_path, "capapp-stack-all")
    base = {CAPAPP: ["files.read"], SUB: ["files.read"], FILEUTIL: ["files.read"]}
    p_without = policy_file(tmp_path / "stack-without-mono.yaml", {**base, MONO: []}, attribution="stack")
    p_all = policy_file(tmp_path / "stack-all.yaml", {**base, MONO: ["files.read"]}, attribution="stack")
    with sessions(Session(without_mono, p_without, tmp_path), Session(with_all, p_all, tmp_path)) as (s1, s2):
        chain_killed = run(without_mono, "chain", str(data.infile))
        read_ok = run(without_mono, "read", str(data.infile))  # main and fileutil both hold files.read
        chain_ok = run(with_all, "chain", str(data.infile))
    denied(s1.events, chain_killed, "files.read", MONO, str(data.infile))
    allowed(s1.events, read_ok, "files.read", FILEUTIL, str(data.infile))
    ev = allowed(s2.events, chain_ok, "files.read", SUB, str(data.infile))
    assert {CAPAPP, MONO, SUB} <= set(stack_modules(ev))


def test_trusted_modules_are_transparent(newest_go: gofixtures.Toolchain, tmp_path: Path, data: Data) -> None:
    """Trusting a module charges its calls to the next module out, or leaves them unattributed."""
    lenient = _binary(newest_go, "capapp", "default", tmp_path, "capapp-trust")
    strict = _binary(newest_go, "capapp", "default", tmp_path, "capapp-trust-strict")
    modules = {CAPAPP: ["files.read"], MONO: ["files.read"], SUB: [], FILEUTIL: []}
    p_lenient = policy_file(tmp_path / "trust.yaml", modules, trust=[SUB, FILEUTIL])
    # trusting main as well leaves nothing on `read`'s stack: unattributed, and denied as such
    p_strict = policy_file(tmp_path / "trust-strict.yaml", modules, trust=[SUB, FILEUTIL, CAPAPP],
                           unattributed="deny")
    created = data.out / "trust-create.txt"
    with sessions(Session(lenient, p_lenient, tmp_path), Session(strict, p_strict, tmp_path)) as (s1, s2):
        chain = run(lenient, "chain", str(data.infile))
        read = run(lenient, "read", str(data.infile))
        goroutine = run(lenient, "goroutine", str(data.infile))
        create = run(lenient, "create", str(created))
        read_strict = run(strict, "read", str(data.infile))
    ev = allowed(s1.events, chain, "files.read", MONO, str(data.infile))  # sub is trusted: mono is next out
    assert f"{SUB}.OpenFile" in stack_functions(ev)
    allowed(s1.events, read, "files.read", CAPAPP, str(data.infile))  # fileutil is trusted: main is next out
    denied(s1.events, create, "files.write", CAPAPP, str(created))  # main lacks files.write
    assert not created.exists()
    # fileutil's own goroutine has no other module on its stack: unattributed (or, where gohook carries
    # goroutine provenance, charged to main, which started it through fileutil); never to fileutil
    [ev] = matching(s1.events, goroutine.pid, "files.read", str(data.infile))
    assert ev["module"] in (UNATTRIBUTED, CAPAPP) and ev["decision"] == "allow", show([ev])
    assert set(stack_modules(ev)) == {"std", FILEUTIL} and goroutine.returncode == 0, stack_modules(ev)
    # (Go 1.19 programs would die earlier: internal/intern's init reads GODEBUG through os.Getenv, a call
    # with no module frame, so `unattributed: deny` kills every Go 1.19 program during initialization)
    denied(s2.events, read_strict, "files.read", UNATTRIBUTED, str(data.infile))


def test_eight_goroutines_for_ten_seconds_no_false_kill_then_a_denied_call_kills(newest_go: gofixtures.Toolchain,
                                                                                 tmp_path: Path, data: Data) -> None:
    app = _binary(newest_go, "attachapp", "default", tmp_path)
    policy = policy_file(tmp_path / "loop.yaml", {VISIT: ["files.read"]})
    created = data.out / "after-loop.txt"
    res = attach_cmd(app, policy, [str(app), "loop", "10", str(data.infile), "+", "create", str(created)], tmp_path,
                     keep_allowed=False)  # hundreds of thousands of allowed events: counted, not kept
    assert res.status == STATUS_KILLED, res.stderr
    m = re.fullmatch(r"loop 8 goroutines (\d+) calls", res.child_stdout[-1] if res.child_stdout else "")
    assert m, f"the loop did not finish: {res.child_stdout}\n{res.stderr}"
    calls = int(m[1])
    assert calls > 0
    summary = res.summary()
    assert summary.killed == 1, res.stderr  # no false kill: only the create
    assert summary.hits >= calls + 1, summary  # every call went through the decision in the kernel
    assert res.allowed_seen > 0 and res.allowed_seen + summary.lost <= summary.hits, (res.allowed_seen, summary)
    assert not created.exists()
    assert all(e["decision"] == "deny" for e in res.events), show(res.events)
    # Violations have their own ring buffer: a flood of allowed-call events (often lost here: the
    # loop makes ~60k calls a second) never crowds out the deny event.
    [ev] = res.events
    denied(res.events, Ran(ev["pid"], KILLED, "", ""), "files.write", VISIT, str(created))


def test_by_default_only_violations_are_events_and_allowed_calls_are_counted(newest_go: gofixtures.Toolchain,
                                                                             tmp_path: Path, data: Data) -> None:
    """`gohook attach --json` without --report-allowed: allowed calls are decided and counted in the kernel but
    never become events (each one costs user-space time); the violation still arrives and kills."""
    app = _binary(newest_go, "attachapp", "default", tmp_path)
    policy = policy_file(tmp_path / "loop.yaml", {VISIT: ["files.read"]})
    created = data.out / "after-short-loop.txt"
    res = attach_cmd(app, policy, [str(app), "loop", "2", str(data.infile), "+", "create", str(created)], tmp_path,
                     report_allowed=None)
    assert res.status == STATUS_KILLED, res.stderr
    m = re.fullmatch(r"loop 8 goroutines (\d+) calls", res.child_stdout[-1] if res.child_stdout else "")
    assert m and int(m[1]) > 0, f"the loop did not finish: {res.child_stdout}\n{res.stderr}"
    summary = res.summary()
    assert summary.hits >= int(m[1]) + 1, summary
    assert (summary.killed, summary.lost, res.allowed_seen) == (1, 0, 0), (summary, res.allowed_seen)
    [ev] = res.events
    denied(res.events, Ran(ev["pid"], KILLED, "", ""), "files.write", VISIT, str(created))
    assert not created.exists()


def test_a_value_table_on_a_stack_argument_decides_inlined_getpid(go: gofixtures.Toolchain, tmp_path: Path) -> None:
    """os.Getpid is inlined into main.doWait: what remains is main's call of the assembly function
    syscall.rawSyscallNoError with the system call number (39, getpid) on the stack, which the catalog's
    value table makes system.read. Denied: killed before the wait step prints; granted: allowed."""
    app = _binary(go, "attachapp", "default", tmp_path)
    res = attach_cmd(app, policy_file(tmp_path / "nopid.yaml", {VISIT: []}), [str(app), "wait"], tmp_path)
    assert res.status == STATUS_KILLED, res.stderr
    [ev] = [e for e in res.events if e["decision"] != "allow"]
    assert (ev["decision"], ev["capability"], ev["module"], ev["function"]) == \
        ("deny", "system.read", ATTACHAPP, "syscall.rawSyscallNoError"), show([ev])
    assert not [line for line in res.child_stdout if line.startswith("waiting")], res.child_stdout
    res = attach_cmd(app, policy_file(tmp_path / "pid.yaml", {ATTACHAPP: ["system.read"]}), [str(app), "wait"],
                     tmp_path)
    assert res.status == 0, res.stderr
    assert [line for line in res.child_stdout if line.startswith("waiting pid")], res.child_stdout
    hits = [e for e in res.events if e["capability"] == "system.read"]
    assert hits and all((e["decision"], e["module"]) == ("allow", ATTACHAPP) for e in hits), show(hits)


# --- issue 12 section 4: a tamper-proof enforcer ---------------------------------------------------------------

EVASION = "example.com/evasion"
UNPIN = "github.com/procguard/unpin"  # testdata/go/evasion/deps/unpin
#: unpin may make raw system calls (prctl, kill, getppid, mprotect PROT_EXEC, madvise), read files and process
#: state, signal processes; not env.read, files.write. It is granted `tamper` too, so that the guard (which
#: charges an mprotect or madvise of the text `memory.exec` / `tamper` at its system call: the first line,
#: tests/test_boundary_tamper.py) lets the removal happen and these tests see the second line, the probe check.
UNPIN_POLICY = {EVASION: ["all"],
                UNPIN: ["syscall", "files.read", "system.read", "system.modify", "memory.exec", "tamper"]}


def _wait_for(what: str, cond: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout}s")
        time.sleep(0.01)


def _dead(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True


def test_sigkill_of_gohook_kills_its_command_which_cannot_clear_its_way_out(newest_go: gofixtures.Toolchain,
                                                                             tmp_path: Path) -> None:
    """Fail closed (issue 12 §4.1): the command clears its own PR_SET_PDEATHSIG, tries to SIGKILL its parent
    and gohook (whose pid it is given), says "ready", sleeps 10 s and then writes a file that unpin may not
    write. gohook is SIGKILLed from outside after "ready": the command must die with it (the namespace's
    init dies with gohook, and the kernel kills the namespace), before the write. Under the old
    `-- CMD` (a plain child with PR_SET_PDEATHSIG) the prctl undoes the death signal (on every thread: it
    is per thread), the command's kill of its parent ends gohook, and once the dead gohook's uprobes are
    gone (about 0.1 s each here, so seconds: hence the 10 s) the file appears (checked by hand with the
    previous gohook/session.py)."""
    app = _binary(newest_go, "evasion", "default", tmp_path)
    policy = policy_file(tmp_path / "unpin.yaml", UNPIN_POLICY)
    written = tmp_path / "outlived.txt"
    err_path = tmp_path / "gohook-orphan.stderr"
    argv = gohook_argv(app, policy, report_allowed=None)
    # exec: the shell's pid ($$) becomes gohook's, so the command can be given gohook's host pid
    script = " ".join(shlex.quote(a) for a in argv) + f" -- {shlex.quote(str(app))} unpin-orphan $$ 10 " \
        + shlex.quote(str(written))
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(["/bin/sh", "-c", "exec " + script], stdout=subprocess.DEVNULL, stderr=err,
                                stdin=subprocess.DEVNULL)
    try:
        stderr = lambda: err_path.read_text(errors="replace")  # noqa: E731
        _wait_for("the command's ready", lambda: "\nready\n" in stderr() or proc.poll() is not None,
                  ATTACHED_TIMEOUT)
        assert proc.poll() is None, f"gohook exited ({proc.returncode}) before the command was ready:\n{stderr()}"
        m = re.search(r"gohook: started .* \(pid (\d+)\)", stderr())
        assert m, stderr()
        cmd_pid = int(m[1])
        assert not _dead(cmd_pid)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
        _wait_for(f"the command (pid {cmd_pid}) to die with gohook", lambda: _dead(cmd_pid), 10)
        time.sleep(10 + 3)  # the command's sleep, and a margin
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = stderr()
    assert not written.exists(), f"the command outlived gohook and wrote {written}:\n{out}"
    assert "prctl(PR_SET_PDEATHSIG, 0): ok" in out, out  # it did clear its own death signal
    # its parent is the namespace's init (pid 1): the kill "succeeds" and is dropped; gohook is not visible
    assert "kill(1, SIGKILL): ok" in out, out
    assert f"kill({proc.pid}, SIGKILL): no such process" in out, out


@pytest.mark.parametrize("method", ["write", "madvise"])
def test_a_removed_probe_is_found_and_the_process_killed_before_the_unseen_call(
        newest_go: gofixtures.Toolchain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """Probe integrity (issue 12 §4.2): unpin takes the int3 out of syscall.Getenv in its own process (by
    writing the file's byte back through an RWX mprotect, or by madvise(MADV_DONTNEED) of the page), waits
    2 s, then reads a variable it may not read. The kernel never sees that call; gohook's periodic check
    does see the restored byte, reports it and kills the process before the read."""
    monkeypatch.setenv("GOHOOK_SECRET", "s3cret")
    app = _binary(newest_go, "evasion", "default", tmp_path)
    policy = policy_file(tmp_path / "unpin.yaml", UNPIN_POLICY)
    res = attach_cmd(app, policy, [str(app), "unpin-getenv", method, "2", "GOHOOK_SECRET"], tmp_path,
                     report_allowed=None)
    assert res.status == STATUS_KILLED, res.stderr
    assert f"unhooked syscall.Getenv ({method}): 1 breakpoints" in res.child_stdout, res.stderr
    assert not any("s3cret" in line for line in res.child_stdout), res.stderr
    tampers = [e for e in res.events if "tamper" in e]
    assert tampers, show(res.events)
    getenv = [e for e in tampers if e["function"] == "syscall.Getenv"]
    assert len(getenv) == 1, tampers
    ev = getenv[0]
    assert (ev["decision"], ev["capability"], ev["module"]) == ("deny", "tamper", UNATTRIBUTED), ev
    assert ev["tamper"].startswith("probe removed at syscall.Getenv: byte 0x"), ev
    assert ev["note"].endswith("killed from user space"), ev
    assert re.search(r"gohook: TAMPER: \d+ probes removed in 1 processes \(1 killed from user space\)", res.stderr)


def test_a_removed_probe_under_audit_is_reported_and_the_call_goes_unseen(
        newest_go: gofixtures.Toolchain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same under --mode audit: the removal is an audit event, nothing is killed; the read itself is
    not seen (the probe is gone), which is why enforce mode kills."""
    monkeypatch.setenv("GOHOOK_SECRET", "s3cret")
    app = _binary(newest_go, "evasion", "default", tmp_path)
    policy = policy_file(tmp_path / "unpin.yaml", UNPIN_POLICY)
    res = attach_cmd(app, policy, [str(app), "unpin-getenv", "madvise", "2", "GOHOOK_SECRET"], tmp_path,
                     mode="audit", report_allowed=None)
    assert res.status == 0, res.stderr
    assert "GOHOOK_SECRET=s3cret" in res.child_stdout, res.stderr
    [ev] = [e for e in res.events if e.get("tamper") and e["function"] == "syscall.Getenv"]
    assert (ev["decision"], ev["capability"], ev["module"]) == ("audit", "tamper", UNATTRIBUTED), ev
    assert ev["note"] == ev["tamper"], ev  # not killed
    assert not [e for e in res.events if e["capability"] == "env.read"], show(res.events)
    assert "0 killed from user space" in res.stderr, res.stderr


def test_no_integrity_event_without_tampering(newest_go: gofixtures.Toolchain, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch, data: Data) -> None:
    """Controls: unpin waits 3 s under the periodic checks without touching its text, then its read is
    killed by the kernel hook (env.read, not a tamper event); attachapp's 8 goroutines make allowed calls
    for 3 s: no integrity event, status 0."""
    monkeypatch.setenv("GOHOOK_SECRET", "s3cret")
    app = _binary(newest_go, "evasion", "default", tmp_path)
    res = attach_cmd(app, policy_file(tmp_path / "unpin.yaml", UNPIN_POLICY),
                     [str(app), "unpin-getenv", "none", "3", "GOHOOK_SECRET"], tmp_path, report_allowed=None)
    assert res.status == STATUS_KILLED, res.stderr
    assert not [e for e in res.events if "tamper" in e], show(res.events)
    [ev] = res.events
    assert (ev["decision"], ev["capability"], ev["module"], ev["function"]) == \
        ("deny", "env.read", UNPIN, "syscall.Getenv"), show(res.events)
    assert "TAMPER" not in res.stderr
    loop = _binary(newest_go, "attachapp", "default", tmp_path)
    res = attach_cmd(loop, policy_file(tmp_path / "loop.yaml", {VISIT: ["files.read"]}),
                     [str(loop), "loop", "3", str(data.infile)], tmp_path, report_allowed=None)
    assert res.status == 0, res.stderr
    assert not res.events and "TAMPER" not in res.stderr, (show(res.events), res.stderr)
