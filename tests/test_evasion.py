"""The adversarial suite (issue 7): a dependency that tries to escape its allowlist.

testdata/go/evasion/ holds one fake malicious module per technique and one
program (`evasion TECHNIQUE ARGS`) that runs a technique by name;
cmd/strict is the same for the techniques tested under `unattributed: deny`
(it does not link net/http, whose package initialization has no module on
its stack). Everything goes through the real CLI (`gohook attach --json`,
tests/attach_helpers.py), on private copies of the fixture binaries (uprobes
are per file and system-wide; other test runs share the machine).

Four background sessions are attached at once (module fixture `live`): the
evasion program under the baseline policy (Go 1.27 and Go 1.21, which has
other runtime.g offsets), its cgo build, and cmd/strict under
`unattributed: deny`. Every technique runs once under enforcement and once
on an unhooked copy (the control: the technique does work when nobody
watches). A few runs need their own `gohook attach -- CMD` (init before
main, exec allowed, cgo denied, the strict policy on a net/http program).

Each test asserts one variant's outcome and records a row for docs/evasion.md
(`record`); the rows go to build/evasion/results.json at the end of the
session, scripts/evasion_table.py renders the document from them, and the
last test checks that the committed document holds the rows of this run.
Runs as root; in CI (CI=true) nothing here skips.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from pathlib import Path
from typing import Any

import gofixtures
import pytest
from attach_helpers import (
    KILLED,
    STATUS_KILLED,
    Listener,
    Ran,
    Session,
    Trial,
    attach_cmd,
    for_pid,
    policy_file,
    private_copy,
    run,
    sessions,
    show,
    stack_functions,
)
from conftest import EVASION_RESULTS

from gohook.events.symbolize import UNATTRIBUTED
from gohook.gosym import GoBinary
from gohook.sites.goruntime import dwarf_g_fields, g_offsets
from gohook.sites.hooks import inlined_function_names

pytestmark = pytest.mark.bpf

MAIN = "example.com/evasion"
ASYNCFS = "github.com/workerpool/asyncfs"
WALKERS = "github.com/funcutil/walkers"
AUTOREG = "github.com/metricsd/autoreg"
FSX = "github.com/tinyhelpers/fsx"
RAWIO = "github.com/perfkit/rawio"
NATIVEFS = "github.com/cbridge/nativefs"
SHELLCMD = "github.com/devops-kit/shellcmd"
TRAMPOLINE = "github.com/asmkit/trampoline"
FANOUT = "github.com/parallel-go/fanout"

#: cmd/strict: the techniques that leave no module on the stack, without net/http
STRICT = gofixtures.Fixture("evasion-strict", gofixtures.GO_TESTDATA / "evasion", "./cmd/strict")
gofixtures.FIXTURES.setdefault(STRICT.name, STRICT)

#: What each module may do. The dependencies get only what their technique needs besides the capability
#: it tries to smuggle: http.Get reads the proxy variables, WalkDir's own directory reads belong to its
#: caller, os/exec opens /dev/null and reads the environment, the cgo module may call C.
BASELINE: dict[str, list[str]] = {
    MAIN: ["all"],
    ASYNCFS: ["env.read"],
    WALKERS: ["files.read"],
    AUTOREG: [],
    FSX: [],
    RAWIO: [],
    NATIVEFS: ["cgo"],
    SHELLCMD: ["files", "env.read"],
    TRAMPOLINE: [],
    FANOUT: [],
}

HAMMER_WRITES = 25  # per goroutine: fanout.Workers (8) goroutines
TABLE_SCRIPT = gofixtures.REPO_ROOT / "scripts" / "evasion_table.py"

Event = dict[str, Any]


_toolchain = gofixtures.live_toolchain


@pytest.fixture(scope="module", autouse=True)
def _root() -> None:
    gofixtures.require_root("the adversarial suite's uprobes")


# --- result rows: the `record` fixture of tests/conftest.py (shared with tests/test_boundary.py) -----------


def _table_module() -> Any:
    spec = importlib.util.spec_from_file_location("evasion_table", TABLE_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the runs ----------------------------------------------------------------------------------------------


class HttpTarget:
    """A loopback HTTP server that counts requests."""

    def __init__(self) -> None:
        self.requests = 0
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                target.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", "3")
                self.end_headers()
                self.wfile.write(b"ok\n")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


#: A technique: its arguments for a fresh scratch directory, and what to observe after a run.
Step = tuple[list[str], Callable[[], dict[str, Any]]]


class Stage:
    """Scratch directories, servers and fixture-side observations for the techniques."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.listener = Listener()
        self.http = HttpTarget()
        self.n = 0

    def close(self) -> None:
        self.listener.close()
        self.http.close()

    def dir(self) -> Path:
        self.n += 1
        d = self.root / f"run{self.n}"
        d.mkdir(parents=True)
        return d

    def file_created(self, args: Callable[[Path], list[str]]) -> Callable[[], Step]:
        def make() -> Step:
            d = self.dir()
            out = d / "out.txt"
            return args(out), lambda: {"exists": out.exists()}

        return make

    def file_removed(self, args: Callable[[Path], list[str]]) -> Callable[[], Step]:
        def make() -> Step:
            d = self.dir()
            victim = d / "victim.txt"
            victim.write_text("keep me\n")
            return args(victim), lambda: {"exists": victim.exists()}

        return make

    def connected(self, args: Callable[[str], list[str]]) -> Callable[[], Step]:
        def make() -> Step:
            self.listener.received()  # drop earlier connections
            return args(self.listener.addr), lambda: {"connections": len(self.listener.received())}

        return make

    def fetched(self, host: str = "127.0.0.1") -> Step:
        """go-http of the target server; by the host name `localhost`, the resolver runs on a goroutine net
        starts (singleflight) from net/http's dialing goroutine, whose stack holds no module frame either."""
        before = self.http.requests
        return ["go-http", self.http.url.replace("127.0.0.1", host)], \
            lambda: {"requests": self.http.requests - before}

    def plain(self, *args: str) -> Callable[[], Step]:
        return lambda: (list(args), dict)

    def walk(self) -> Step:
        d = self.dir()
        (d / "tree").mkdir()
        (d / "tree" / "a.txt").write_text("a\n")
        out = d / "out.txt"
        return ["cb-walkdir", str(d / "tree"), str(out)], lambda: {"exists": out.exists()}

    def fileserver(self) -> Step:
        d = self.dir()
        (d / "secret.txt").write_text("secret\n")
        return ["cb-fileserver", str(d), "secret.txt"], dict

    def hammer(self) -> Step:
        d = self.dir()

        def facts() -> dict[str, Any]:
            return {"written": sorted(p.name for p in d.iterdir() if p.name.startswith("w"))}

        return ["hammer", str(d), str(HAMMER_WRITES)], facts


def _techniques(stage: Stage) -> dict[str, Callable[[], Step]]:
    s = stage
    return {
        "go-remove": s.file_removed(lambda p: ["go-remove", str(p)]),
        "go-write": s.file_created(lambda p: ["go-write", str(p)]),
        "go-dial": s.connected(lambda a: ["go-dial", a]),
        "go-clearenv": s.plain("go-clearenv"),
        "go-http": s.fetched,
        "go-http-name": lambda: s.fetched("localhost"),
        "cb-walkdir": s.walk,
        "cb-sort": s.file_created(lambda p: ["cb-sort", str(p)]),
        "cb-once": s.file_created(lambda p: ["cb-once", str(p)]),
        "cb-afterfunc": s.file_created(lambda p: ["cb-afterfunc", str(p)]),
        "cb-afterfunc-std": s.plain("cb-afterfunc-std"),
        "cb-finalizer": s.file_created(lambda p: ["cb-finalizer", str(p)]),
        "cb-finalizer-std": s.file_created(lambda p: ["cb-finalizer-std", str(p)]),
        "cb-reflect": s.file_created(lambda p: ["cb-reflect", str(p)]),
        "cb-methodvalue": s.connected(lambda a: ["cb-methodvalue", a]),
        "cb-defer": s.file_created(lambda p: ["cb-defer", str(p)]),
        "cb-panic": s.file_created(lambda p: ["cb-panic", str(p)]),
        "cb-handler": s.file_created(lambda p: ["cb-handler", str(p)]),
        "cb-fileserver": s.fileserver,
        "init-dial": s.connected(lambda a: ["init-dial", a]),
        "inline": s.file_created(lambda p: ["inline", str(p)]),
        "generic": s.file_created(lambda p: ["generic", str(p)]),
        "generic-inline": s.file_created(lambda p: ["generic-inline", str(p)]),
        "sys-syscall6": s.file_created(lambda p: ["sys-syscall6", str(p)]),
        "sys-rawsyscall": s.file_removed(lambda p: ["sys-rawsyscall", str(p)]),
        "sys-asm": s.file_created(lambda p: ["sys-asm", str(p)]),
        "sys-jit": s.file_created(lambda p: ["sys-jit", str(p)]),
        "cgo-add": s.plain("cgo-add"),
        "cgo-open": s.file_created(lambda p: ["cgo-open", str(p)]),
        "cgo-connect": s.connected(lambda a: ["cgo-connect", a.rsplit(":", 1)[1]]),
        "exec-sh": s.file_created(lambda p: ["exec-sh", str(p)]),
        "forge-nofp": s.file_removed(lambda p: ["forge-nofp", str(p)]),
        "forge-ret": s.file_removed(lambda p: ["forge-ret", str(p)]),
        "hammer": s.hammer,
        "main-write": s.file_created(lambda p: ["main-write", str(p)]),
    }


#: session name -> (fixture, build mode, Go version, policy changes, techniques)
PLANS: dict[str, tuple[str, str, str, dict[str, Any], tuple[str, ...]]] = {
    "enforce": ("evasion", "default", "1.27.3", {}, (
        "go-remove", "go-write", "go-dial", "go-clearenv", "go-http", "go-http-name",
        "cb-walkdir", "cb-sort", "cb-once", "cb-afterfunc", "cb-afterfunc-std", "cb-finalizer", "cb-finalizer-std",
        "cb-reflect", "cb-methodvalue", "cb-defer", "cb-panic", "cb-handler", "cb-fileserver",
        "init-dial", "inline", "generic", "generic-inline",
        "sys-syscall6", "sys-rawsyscall", "sys-asm", "sys-jit", "exec-sh", "forge-nofp", "forge-ret",
        "hammer", "main-write")),
    "go1.21": ("evasion", "default", "1.21.13", {}, ("go-clearenv", "go-http", "go-http-name", "main-write")),
    "cgo": ("evasion", "cgo", "1.27.3", {}, ("cgo-add", "cgo-open", "cgo-connect", "main-write")),
    "strict": ("evasion-strict", "default", "1.27.3", {"unattributed": "deny"}, (
        "go-clearenv", "cb-afterfunc-std", "cb-finalizer-std", "forge-ret", "main-write")),
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Trial]]]:
    """Every technique of PLANS under its session, and on an unhooked copy; trials by session and name."""
    root = tmp_path_factory.mktemp("evasion")
    stage = Stage(root / "scratch")
    specs: dict[str, Session] = {}
    controls: dict[str, Path] = {}
    for name, (fixture, mode, version, changes, _names) in PLANS.items():
        built = gofixtures.build(_toolchain(version), fixture, mode)
        work = root / name
        binary = private_copy(built, work, f"{fixture}-{name}")
        controls[name] = private_copy(built, work / "control", f"{fixture}-{name}-control")
        policy = policy_file(work / "policy.yaml", BASELINE, unattributed=changes.get("unattributed", "allow"))
        specs[name] = Session(binary, policy, work)
    trials: dict[str, dict[str, Trial]] = {name: {} for name in PLANS}
    try:
        with sessions(*specs.values()):
            steps = _techniques(stage)
            for name, (*_rest, names) in PLANS.items():
                for technique in names:
                    args, observe = steps[technique]()
                    ran = run(specs[name].binary, *args)
                    facts = observe()
                    args, observe = steps[technique]()
                    control = run(controls[name], *args)
                    trials[name][technique] = Trial(technique, ran, facts, control, observe())
        for name, session in specs.items():
            for trial in trials[name].values():
                trial.events = for_pid(session.events, trial.ran.pid)
                # the sentinel must not report what a hook point already covered
                hooked = {(e["capability"], e["argument"]) for e in trial.events if not e["function"].startswith(
                    "syscall:")}
                doubled = [e for e in trial.events if e["function"].startswith("syscall:")
                           and (e["capability"], e["argument"]) in hooked]
                assert not doubled, f"the sentinel repeated hooked calls in {trial}"
        yield trials
    finally:
        stage.close()


def decided(trial: Trial, decision: str, capability: str, module: str, *, via: str | None = None,
            function: str | None = None) -> Event:
    """The one event of trial with this decision, capability and module (and via / function)."""
    found = [e for e in trial.events if e["decision"] == decision and e["capability"] == capability
             and e["module"] == module and (via is None or e["via"] == via)
             and (function is None or e["function"] == function)]
    assert found, f"no {decision} {capability} charged to {module} (via {via}) in\n{trial}"
    if decision == "deny":
        assert len(found) <= (os.cpu_count() or 1), f"more kills than CPUs in\n{trial}"
    return found[0]


def _stable(argument: str | None, capability: str) -> str | None:
    """An event argument without what changes from run to run: scratch directories, ports, C addresses."""
    if not argument or capability == "cgo":
        return None
    if argument.startswith("/tmp/"):
        return ".../" + argument.rsplit("/", 1)[1]
    if re.fullmatch(r"127\.0\.0\.1:\d+", argument):
        return "127.0.0.1:PORT"
    return argument


def evidence(ev: Event, *facts: str) -> str:
    """Readable evidence (the same on every run): the deciding event and the observed side effects."""
    stable = _stable(ev["argument"], ev["capability"])
    arg = f" `{stable}`" if stable else ""
    text = f"{ev['decision']} {ev['capability']} at `{ev['function']}`{arg}: {ev['module']}, via {ev['via']}"
    return "; ".join([text, *facts])


def assert_killed_before(trial: Trial, effect: str, done: Any, undone: Any) -> str:
    """Killed under enforcement with the side effect absent; the control run had it. Returns the fact text."""
    assert trial.ran.returncode == KILLED, f"not killed:\n{trial}"
    assert trial.control.returncode == 0, f"the technique fails even unhooked:\n{trial}"
    assert trial.control_facts.get(effect) == done, f"control run: {effect} is not {done!r}:\n{trial}"
    assert trial.facts.get(effect) == undone, f"enforced run: {effect} is not {undone!r}:\n{trial}"
    return f"killed (SIGKILL), {effect} {undone!r} (unhooked: {done!r})"


def blocked_file(trial: Trial, capability: str, module: str, via: str, removed: bool = False) -> tuple[Event, str]:
    """Killed by a deny of capability charged to module; a file to be created is absent (to be removed: still there)."""
    fact = assert_killed_before(trial, "exists", not removed, removed)
    ev = decided(trial, "deny", capability, module, via=via)
    return ev, fact


# --- 1. goroutine laundering -------------------------------------------------------------------------------

WHY_GOWRAP = ("`go f(x)` compiles to a closure in the dependency (`gowrap1`, Go 1.22+; `func1` before) that is on "
              "the new goroutine's stack; goroutine provenance would charge the creator anyway")


@pytest.mark.parametrize(("technique", "capability", "variant"), [
    ("go-remove", "files.write", "`go os.Remove(p)`"),
    ("go-write", "files.write", "`go os.WriteFile(p, ...)`"),
    ("go-dial", "network.connect", "`go net.Dial(\"tcp\", addr)`"),
], ids=["go-remove", "go-write", "go-dial"])
def test_goroutine_laundering_through_a_go_statement(live: dict[str, dict[str, Trial]], record: Callable[..., None],
                                                     technique: str, capability: str, variant: str) -> None:
    t = live["enforce"][technique]
    if technique == "go-dial":
        fact = assert_killed_before(t, "connections", 1, 0)
        ev = decided(t, "deny", capability, ASYNCFS, via="stack")
    else:
        ev, fact = blocked_file(t, capability, ASYNCFS, "stack", removed=technique == "go-remove")
    assert ev["goid"] != 1, "the call ran on the main goroutine"
    assert any(f.startswith(f"{ASYNCFS}.") for f in stack_functions(ev)), stack_functions(ev)
    record(1, variant, "blocked", WHY_GOWRAP, evidence(ev, fact))


@pytest.mark.parametrize("session", ["enforce", "go1.21"])
def test_goroutine_with_no_dependency_frame_is_charged_to_its_creator(live: dict[str, dict[str, Trial]],
                                                                      record: Callable[..., None],
                                                                      session: str) -> None:
    """`go os.Clearenv()` hands os.Clearenv itself to runtime.newproc: no asyncfs frame on that goroutine."""
    t = live[session]["go-clearenv"]
    assert t.control.returncode == 0, t
    assert t.ran.returncode == KILLED, t
    ev = decided(t, "deny", "env.write", ASYNCFS, via="creator")
    assert ev["goid"] != 1
    assert not any(f.startswith(ASYNCFS) for f in stack_functions(ev)), stack_functions(ev)
    go = live[session]["go-clearenv"].ran
    record(1, f"`go os.Clearenv()`: no dependency frame at all ({session}, Go "
              f"{PLANS[session][2]})", "blocked",
           "goroutine provenance: the goroutine-created probe walked asyncfs's stack when it created the goroutine; "
           "runtime.g offsets of this release from DWARF (checked against the table)",
           evidence(ev, f"killed (SIGKILL, exit {go.returncode}); no asyncfs frame on the goroutine's stack"))


@pytest.mark.parametrize("session", ["enforce", "go1.21"])
def test_goroutine_started_by_the_standard_library_is_charged_to_the_dependency(
        live: dict[str, dict[str, Trial]], record: Callable[..., None], session: str) -> None:
    """asyncfs/httpfetch calls http.Get: net/http dials on a goroutine it starts itself (only net frames)."""
    t = live[session]["go-http"]
    fact = assert_killed_before(t, "requests", 1, 0)
    ev = decided(t, "deny", "network.connect", ASYNCFS, via="creator")
    names = stack_functions(ev)
    assert not any(f.startswith(ASYNCFS) for f in names), names
    assert any(f.startswith("net/http.") for f in names) or ev["goid"] != 1, names
    record(1, f"`http.Get` from the dependency: net/http dials on its own goroutine ({session}, Go "
              f"{PLANS[session][2]})", "blocked",
           "the dialing goroutine's creator (net/http, running on asyncfs's goroutine) was walked at creation: "
           "its first module frame is asyncfs", evidence(ev, fact))


@pytest.mark.parametrize("session", ["enforce", "go1.21"])
def test_goroutine_started_by_a_goroutine_of_the_standard_library(live: dict[str, dict[str, Trial]],
                                                                   record: Callable[..., None], session: str) -> None:
    """http.Get("http://localhost:...") from asyncfs: net/http dials on a goroutine it starts (filed under
    asyncfs when created), and the resolver reads its files on a goroutine that one starts in turn, whose
    creator has no module frame either: it has no record of its own and inherits through g.parentGoid."""
    t = live[session]["go-http-name"]
    fact = assert_killed_before(t, "requests", 1, 0)
    denied = [e for e in t.events if e["decision"] == "deny"]
    assert denied and all(e["module"] == ASYNCFS and e["via"] == "creator" for e in denied), t
    ev = decided(t, "deny", "files.read", ASYNCFS, via="creator")  # the resolver's files, before any connect
    assert not any(e["capability"] == "network.connect" for e in t.events), t
    names = stack_functions(ev)
    assert not any(f.startswith(ASYNCFS) for f in names), names
    assert any(f.startswith("net.") for f in names), names
    record(1, f"`http.Get` of a host name from the dependency: the resolver reads files on a goroutine started by "
              f"net/http's dialing goroutine ({session}, Go {PLANS[session][2]})", "blocked",
           "the resolver goroutine's creator has no module frame but was itself filed under asyncfs at its "
           "creation; the resolver goroutine inherits that record through g.parentGoid", evidence(ev, fact))


# --- 2. callbacks through the standard library --------------------------------------------------------------

CALLBACKS = [
    ("cb-walkdir", "`filepath.WalkDir` callback writes a file", "synchronous callback: walkers' closure is on the "
     "stack above the standard library's frames"),
    ("cb-sort", "`sort.Slice` less function writes a file", "synchronous callback: the closure is walkers' code"),
    ("cb-once", "`sync.Once.Do` writes a file", "synchronous callback: the closure is walkers' code"),
    ("cb-afterfunc", "`time.AfterFunc` closure writes a file", "the timer goroutine runs walkers' closure: its frame "
     "is on that goroutine's stack"),
    ("cb-finalizer", "`runtime.SetFinalizer` closure writes a file", "the finalizer goroutine calls walkers' closure: "
     "its frame is on the stack"),
    ("cb-reflect", "`reflect.ValueOf(os.WriteFile).Call(...)`", "reflectcall keeps the frame-pointer chain: walkers' "
     "frame is found above reflect's"),
    ("cb-defer", "`defer os.WriteFile(...)`", "deferred calls run from walkers' own frame (open-coded defers)"),
    ("cb-panic", "deferred write while a panic from a `sort.Slice` callback unwinds through walkers",
     "the deferred closure is walkers' code and runs on top of gopanic, above walkers' frame"),
    ("cb-handler", "`http.HandlerFunc` registered by the dependency on the app's mux", "the handler closure is "
     "walkers' code on net/http's connection goroutine (whose creator, the app, is not asked)"),
]


@pytest.mark.parametrize(("technique", "variant", "why"), CALLBACKS, ids=[c[0] for c in CALLBACKS])
def test_callbacks_into_the_dependency_are_charged_to_it(live: dict[str, dict[str, Trial]],
                                                         record: Callable[..., None], technique: str, variant: str,
                                                         why: str) -> None:
    t = live["enforce"][technique]
    module = WALKERS
    ev, fact = blocked_file(t, "files.write", module, "stack")
    assert any(f.startswith(module) for f in stack_functions(ev)), stack_functions(ev)
    record(2, variant, "blocked", why, evidence(ev, fact))


def test_method_value_of_a_std_type(live: dict[str, dict[str, Trial]], record: Callable[..., None]) -> None:
    t = live["enforce"]["cb-methodvalue"]
    fact = assert_killed_before(t, "connections", 1, 0)
    ev = decided(t, "deny", "network.connect", WALKERS, via="stack")
    assert "net.(*Dialer).Dial-fm" in stack_functions(ev) or "net.(*Dialer).Dial" in stack_functions(ev)
    record(2, "method value `(&net.Dialer{}).Dial` called by the dependency", "blocked",
           "the `-fm` wrapper is std code; walkers' frame is its caller", evidence(ev, fact))


@pytest.mark.parametrize(("technique", "capability", "variant", "effect"), [
    ("cb-afterfunc-std", "env.write", "`time.AfterFunc(d, os.Clearenv)`: a std function as the callback",
     "the environment was emptied"),
    ("cb-finalizer-std", "exec", "`runtime.SetFinalizer(cmd, (*exec.Cmd).Run)`: a std method as the finalizer",
     "the shell ran"),
], ids=["afterfunc", "finalizer"])
def test_std_function_as_callback_is_unattributed(live: dict[str, dict[str, Trial]], record: Callable[..., None],
                                                  technique: str, capability: str, variant: str,
                                                  effect: str) -> None:
    """No walkers frame runs at all, and the goroutine's creator is the scheduler or the finalizer goroutine."""
    t = live["enforce"][technique]
    assert t.ran.returncode == 0, t  # unattributed: allowed under `unattributed: allow` ...
    if technique == "cb-finalizer-std":
        assert t.facts["exists"], t
    ev = decided(t, "allow", capability, UNATTRIBUTED, via="none")  # ... and reported as such
    assert not any(f.startswith(WALKERS) for f in stack_functions(ev)), stack_functions(ev)
    record(2, variant + " (`unattributed: allow`)", "flagged",
           "no dependency frame runs and the goroutine has no module creator (timer callbacks start from the "
           "scheduler; the finalizer goroutine serves everyone): reported unattributed; blocked under "
           "`unattributed: deny` (technique 8)",
           evidence(ev, f"exit 0: {effect}"))


def test_std_function_as_callback_is_blocked_under_unattributed_deny(live: dict[str, dict[str, Trial]],
                                                                     record: Callable[..., None]) -> None:
    for technique, variant in (("cb-afterfunc-std", "`time.AfterFunc(d, os.Clearenv)`"),
                               ("cb-finalizer-std", "`runtime.SetFinalizer(cmd, (*exec.Cmd).Run)`")):
        t = live["strict"][technique]
        assert t.control.returncode == 0, t
        assert t.ran.returncode == KILLED, t
        if technique == "cb-finalizer-std":
            assert not t.facts["exists"] and t.control_facts["exists"], t
        # the first unattributed hooked call dies: Clearenv, or os/exec opening /dev/null before the fork
        [ev] = [e for e in t.events if e["decision"] == "deny"]
        assert (ev["module"], ev["via"]) == (UNATTRIBUTED, "none"), show([ev])
        record(2, variant + " under `unattributed: deny`", "blocked",
               "missing attribution is a violation under the strict policy (cmd/strict: no net/http)",
               evidence(ev, "killed (SIGKILL)" + (", the shell never ran" if technique == "cb-finalizer-std"
                                                   else "")))


def test_std_handler_registered_by_the_dependency_is_not_covered(live: dict[str, dict[str, Trial]],
                                                                 record: Callable[..., None]) -> None:
    """walkers registers http.FileServer on the app's mux: the reads are std code on the app's goroutines."""
    t = live["enforce"]["cb-fileserver"]
    assert t.ran.returncode == 0 and "served 7 bytes" in t.ran.stdout, t
    ev = decided(t, "allow", "files.read", MAIN, via="creator")
    assert str(ev["argument"]).endswith("secret.txt"), show([ev])
    from gohook.sites.catalog import load_catalog
    from gohook.sites.hooks import find_hook_sites
    from gohook.static.analysis import analyze
    from gohook.static.callgraph import CallGraph

    b = GoBinary.open(gofixtures.build(_toolchain("1.27.3"), "evasion", "default"))
    gaps = analyze(b, find_hook_sites(b, load_catalog()), CallGraph(b)).gaps
    assert any(g.kind == "std_handler" and g.module == "github.com/funcutil/walkers" for g in gaps), gaps
    record(10, "the dependency registers the std `http.FileServer` on the app's mux", "not covered",
           "attribution follows code, not configuration: no walkers code runs when the file server reads; the "
           "connection goroutine's creator is the app's server loop. `gohook inspect` names it (gap "
           "`std_handler` for the module); give such handlers' readers no files.read",
           evidence(ev, "exit 0: the file was served"))


# --- 3. init() before main ------------------------------------------------------------------------------------


def test_init_writes_a_file_before_main(tmp_path: Path, record: Callable[..., None]) -> None:
    """`gohook attach -- CMD` attaches every probe before it starts CMD: package init is covered."""
    app = private_copy(gofixtures.build(_toolchain("1.27.3"), "evasion", "default"), tmp_path, "evasion-init")
    policy = policy_file(tmp_path / "policy.yaml", BASELINE)
    out = tmp_path / "init.txt"
    result = attach_cmd(app, policy, [str(app), "init-file", str(out)], tmp_path)
    assert result.status == STATUS_KILLED, result.stderr
    assert not out.exists()
    [ev] = [e for e in result.events if e["decision"] == "deny"]
    assert (ev["capability"], ev["module"], ev["via"], ev["argument"]) == ("files.write", AUTOREG, "stack", str(out))
    assert f"{AUTOREG}.init.0" in stack_functions(ev) or f"{AUTOREG}.init" in stack_functions(ev), show([ev])
    assert ev["goid"] == 1
    record(3, "`init()` writes a file (`gohook attach -- CMD`)", "blocked",
           "probes are attached before CMD starts; init runs on the main goroutine with autoreg's frame on the "
           "stack", evidence(ev, f"gohook exit {result.status} (child SIGKILLed), file absent"))


def test_init_dials_before_main(live: dict[str, dict[str, Trial]], record: Callable[..., None]) -> None:
    t = live["enforce"]["init-dial"]
    fact = assert_killed_before(t, "connections", 1, 0)
    ev = decided(t, "deny", "network.connect", AUTOREG, via="stack")
    record(3, "`init()` dials out (process started while attached)", "blocked",
           "uprobes are per file: a process started after attaching is covered from its first instruction",
           evidence(ev, fact))


# --- 4. inlining and generics --------------------------------------------------------------------------------


def test_inlined_and_generic_wrappers(live: dict[str, dict[str, Trial]], record: Callable[..., None]) -> None:
    binary = GoBinary.open(gofixtures.build(_toolchain("1.27.3"), "evasion", "default"))
    inlined = inlined_function_names(binary)
    names = {f.name for f in binary.functions}
    assert f"{FSX}.Touch" in inlined and f"{FSX}.Touch" not in names, "fsx.Touch is not inlined away"
    assert any(n.startswith(f"{FSX}.Save[") for n in names), "no instantiation of fsx.Save"
    for technique, variant, why in (
            ("inline", "wrapper inlined into main (`fsx.Touch`)",
             "inline-aware ranges: the call site in main's code is inside fsx.Touch's inlined body"),
            ("generic", "generic function instantiated from main (`fsx.Save[string]`)",
             "the shape instantiation `fsx.Save[go.shape.string]` is fsx's code"),
            ("generic-inline", "generic function inlined into main (`fsx.Put[string]`)",
             "inline-aware ranges name the inlined generic's package")):
        t = live["enforce"][technique]
        ev, fact = blocked_file(t, "files.write", FSX, "stack")
        record(4, variant, "blocked", why, evidence(ev, fact))


# --- 5. direct system calls ---------------------------------------------------------------------------------


def test_raw_syscall_functions(live: dict[str, dict[str, Trial]], record: Callable[..., None]) -> None:
    for technique, function, removed, variant in (
            ("sys-syscall6", "syscall.Syscall6", False, "`syscall.Syscall6(SYS_OPENAT, ...)`"),
            ("sys-rawsyscall", "syscall.RawSyscall", True, "`syscall.RawSyscall(SYS_UNLINKAT, ...)`")):
        t = live["enforce"][technique]
        fact = assert_killed_before(t, "exists", not removed, removed)
        ev = decided(t, "deny", "syscall", RAWIO, via="direct", function=function)
        record(5, variant, "blocked", "hooked at its call sites in module code (direct caller only): needs "
               "`syscall`, and the capability of the number it passes", evidence(ev, fact))


def test_own_assembly_syscall_instruction(live: dict[str, dict[str, Trial]], record: Callable[..., None]) -> None:
    t = live["enforce"]["sys-asm"]
    ev, fact = blocked_file(t, "files.write", RAWIO, "syscall-site")
    assert ev["function"] == f"{RAWIO}.openat", show([ev])
    record(5, "the module's own assembly issues `syscall` (openat, O_CREAT)", "blocked",
           "every `syscall` instruction in module code gets a uprobe; the number in RAX says files.write",
           evidence(ev, fact))


def test_syscall_instruction_written_at_run_time(live: dict[str, dict[str, Trial]],
                                                 raw_calls: dict[str, dict[str, Trial]],
                                                 record: Callable[..., None]) -> None:
    """No scan of the binary can find the `syscall` in code written at run time. Without memory.exec the
    module cannot make the page: killed at `syscall.mmap(PROT_EXEC)`, before the open. With it (a JIT's
    grant), the sentinel sees the system call, attributes it and kills after it."""
    t = live["enforce"]["sys-jit"]
    assert t.ran.returncode == KILLED and t.control.returncode == 0 and t.control_facts["exists"], t
    assert not t.facts["exists"], "the executable mapping is refused: the code never runs"
    ev = decided(t, "deny", "memory.exec", RAWIO, function="syscall.mmap")
    record(5, "`syscall` in machine code the module writes into an executable page", "blocked",
           "the executable mapping is memory.exec at `syscall.mmap` (flags rule), refused before the system call",
           evidence(ev, "killed (SIGKILL) before the open: no file"))
    t = raw_calls["jit"]["sys-jit"]
    assert t.ran.returncode == KILLED and t.control.returncode == 0, t
    assert t.facts["exists"], "a tracepoint cannot stop the system call: the file must exist"
    ev = decided(t, "deny", "files.write", RAWIO, via="stack", function="syscall:openat")
    assert ev["note"] and "ran" in ev["note"], show([ev])
    assert not [e for e in t.events if e["capability"] == "memory.exec" and e["decision"] != "allow"], \
        show(t.events)
    record(5, "`syscall` in machine code written into an executable page by a module granted memory.exec",
           "flagged", "the raw_syscalls sentinel attributes it ([RSP] of the code outside the Go text is "
           "rawio's) and kills; a tracepoint cannot veto the call, so the one call ran",
           evidence(ev, "killed (SIGKILL) after the open: file created"))


#: rawio's grants for the raw system calls judged by their number: session -> (gohook --mode, --report-allowed,
#: rawio's capabilities). `syscall` alone is what every golang.org/x/sys user gets; the services' mode reports
#: only violations.
RAW_SESSIONS: dict[str, tuple[str, bool, list[str]]] = {
    "syscall": ("enforce", False, ["syscall"]),
    "audit": ("audit", True, ["syscall"]),
    "granted": ("enforce", True, ["syscall", "files.write"]),
    "jit": ("enforce", False, ["memory.exec"]),
}
#: the techniques a session runs instead of all of RAW_TECHNIQUES
RAW_SESSION_TECHNIQUES: dict[str, tuple[str, ...]] = {"jit": ("sys-jit",)}
#: technique -> (where the deny is reported, via, the side effect removes a file)
RAW_TECHNIQUES: dict[str, tuple[str, str, bool]] = {
    "sys-syscall6": ("syscall.Syscall6", "direct", False),
    "sys-rawsyscall": ("syscall.RawSyscall", "direct", True),
    "sys-asm": (f"{RAWIO}.openat", "syscall-site", False),
}


@pytest.fixture(scope="module")
def raw_calls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Trial]]]:
    """RAW_TECHNIQUES under each of RAW_SESSIONS (attached at once), and on an unhooked copy; by session."""
    root = tmp_path_factory.mktemp("rawcalls")
    stage = Stage(root / "scratch")
    steps = _techniques(stage)
    built = gofixtures.build(_toolchain("1.27.3"), "evasion", "default")
    control = private_copy(built, root / "control", "evasion-raw-control")
    specs = {name: Session(private_copy(built, root / name, f"evasion-raw-{name}"),
                           policy_file(root / name / "policy.yaml", {**BASELINE, RAWIO: caps}), root / name,
                           mode=mode, report_allowed=report)
             for name, (mode, report, caps) in RAW_SESSIONS.items()}
    trials: dict[str, dict[str, Trial]] = {name: {} for name in specs}
    try:
        with sessions(*specs.values()):
            for name, session in specs.items():
                for technique in RAW_SESSION_TECHNIQUES.get(name, tuple(RAW_TECHNIQUES)):
                    args, observe = steps[technique]()
                    ran = run(session.binary, *args)
                    facts = observe()
                    args, observe = steps[technique]()
                    unhooked = run(control, *args)
                    trials[name][technique] = Trial(technique, ran, facts, unhooked, observe())
        for name, session in specs.items():
            for trial in trials[name].values():
                trial.events = for_pid(session.events, trial.ran.pid)
        yield trials
    finally:
        stage.close()


@pytest.mark.parametrize("technique", list(RAW_TECHNIQUES))
def test_raw_system_call_needs_the_capability_of_its_number(raw_calls: dict[str, dict[str, Trial]],
                                                            record: Callable[..., None], technique: str) -> None:
    """A dependency granted only `syscall` issues openat(O_CREAT) / unlinkat itself: killed before the file
    changes, and the event names files.write (not `syscall`, which it holds) with the path. Reporting only
    violations, as a service would."""
    function, via, removed = RAW_TECHNIQUES[technique]
    t = raw_calls["syscall"][technique]
    fact = assert_killed_before(t, "exists", not removed, removed)
    ev = decided(t, "deny", "files.write", RAWIO, via=via, function=function)
    assert str(ev["argument"]).endswith("/victim.txt" if removed else "/out.txt"), show([ev])
    assert not [e for e in t.events if e["capability"] == "syscall" and e["decision"] != "allow"], show(t.events)
    assert not [e for e in t.events if e["decision"] == "allow"], "allowed calls reported with reporting off"
    what = {"sys-syscall6": "`syscall.Syscall6(SYS_OPENAT, ..., O_CREAT)`",
            "sys-rawsyscall": "`syscall.RawSyscall(SYS_UNLINKAT, ...)`",
            "sys-asm": "its own `syscall` instruction (openat, O_CREAT)"}[technique]
    record(5, f"{what} from a dependency granted only `syscall`", "blocked",
           "a raw system call is judged by its own number too: `syscall` and files.write", evidence(ev, fact))


@pytest.mark.parametrize("technique", list(RAW_TECHNIQUES))
def test_raw_system_call_with_both_capabilities_runs(raw_calls: dict[str, dict[str, Trial]], technique: str) -> None:
    """No false kill: granted `syscall` and files.write, the same calls run to completion, each reported
    allowed for both capabilities."""
    function, via, removed = RAW_TECHNIQUES[technique]
    t = raw_calls["granted"][technique]
    assert t.ran.returncode == 0 and t.facts["exists"] == (not removed), t
    assert not [e for e in t.events if e["decision"] != "allow"], show(t.events)
    for capability in ("syscall", "files.write"):
        decided(t, "allow", capability, RAWIO, via=via, function=function)


def test_allowed_syscall_covers_no_other_capability(raw_calls: dict[str, dict[str, Trial]],
                                                    record: Callable[..., None]) -> None:
    """In audit mode the open runs: the hook at syscall.Syscall6 records the files.write violation, and the
    sentinel, which sees the openat inside the hooked call, leaves it to the hook (no second event) because
    the hook checked files.write; an allowed `syscall` alone would not have covered it."""
    t = raw_calls["audit"]["sys-syscall6"]
    assert t.ran.returncode == 0 and t.facts["exists"], t
    ev = decided(t, "audit", "files.write", RAWIO, via="direct", function="syscall.Syscall6")
    decided(t, "allow", "syscall", RAWIO, via="direct", function="syscall.Syscall6")
    assert not [e for e in t.events if e["function"].startswith("syscall:")], show(t.events)
    record(5, "`syscall.Syscall6(SYS_OPENAT, ..., O_CREAT)` granted only `syscall`, audit mode", "flagged",
           "the hook's mark tells the sentinel which capability it checked: an allowed `syscall` covers no "
           "system call of another capability", evidence(ev, "exit 0: audit mode lets the open run"))


# --- 6. cgo ---------------------------------------------------------------------------------------------------


def test_cgo_entry_is_charged_to_the_module(live: dict[str, dict[str, Trial]], record: Callable[..., None]) -> None:
    t = live["cgo"]["cgo-add"]
    assert t.ran.returncode == 0 and "2+3=5" in t.ran.stdout, t
    ev = decided(t, "allow", "cgo", NATIVEFS, via="direct", function="runtime.cgocall")
    assert f"{NATIVEFS}._Cfunc_nf_add" in stack_functions(ev), show([ev])
    record(6, "a cgo call with the `cgo` capability allowed", "flagged",
           "runtime.cgocall's direct caller is the module's `_Cfunc_` stub: reported as the module's `cgo` call",
           evidence(ev, "exit 0"))


def test_c_code_open_and_connect(live: dict[str, dict[str, Trial]], record: Callable[..., None]) -> None:
    t = live["cgo"]["cgo-open"]
    assert t.ran.returncode == KILLED and t.control.returncode == 0, t
    ev = decided(t, "deny", "files.write", NATIVEFS, via="cgo", function="syscall:openat")
    record(6, "C code calls `open(O_CREAT)` (`cgo` allowed)", "flagged",
           "the sentinel charges the system call to the module whose cgo call the thread is in, and kills; the "
           "open itself ran", evidence(ev, f"killed (SIGKILL); file created: {t.facts['exists']}"))
    t = live["cgo"]["cgo-connect"]
    assert t.ran.returncode == KILLED and t.control.returncode == 0, t
    ev = decided(t, "deny", "network.connect", NATIVEFS, via="cgo", function="syscall:connect")
    record(6, "C code calls `connect()` (`cgo` allowed)", "flagged",
           "as for open: charged to nativefs through its cgo call, killed after the connect",
           evidence(ev, "killed (SIGKILL)"))


def test_cgo_denied(tmp_path: Path, record: Callable[..., None]) -> None:
    app = private_copy(gofixtures.build(_toolchain("1.27.3"), "evasion", "cgo"), tmp_path, "evasion-cgo-denied")
    policy = policy_file(tmp_path / "policy.yaml", {**BASELINE, NATIVEFS: []})
    out = tmp_path / "c.txt"
    result = attach_cmd(app, policy, [str(app), "cgo-open", str(out)], tmp_path)
    assert result.status == STATUS_KILLED and not out.exists(), result.stderr
    [ev] = [e for e in result.events if e["decision"] == "deny"]
    assert (ev["capability"], ev["module"], ev["function"]) == ("cgo", NATIVEFS, "runtime.cgocall"), show([ev])
    record(6, "C code calls `open()` (`cgo` denied)", "blocked",
           "runtime.cgocall is hooked: the first cgo call (C.CString) dies before any C runs",
           evidence(ev, "gohook exit 137, file absent"))


# --- 7. exec --------------------------------------------------------------------------------------------------


def test_exec_denied(live: dict[str, dict[str, Trial]], record: Callable[..., None]) -> None:
    t = live["enforce"]["exec-sh"]
    ev, fact = blocked_file(t, "exec", SHELLCMD, "stack")
    assert ev["argument"] == "/bin/sh", show([ev])
    record(7, "`exec.Command(\"/bin/sh\", \"-c\", ...)` without `exec`", "blocked",
           "syscall.forkExec is hooked: killed before the fork", evidence(ev, fact))


def test_exec_allowed_child_is_outside_enforcement(tmp_path: Path, record: Callable[..., None]) -> None:
    app = private_copy(gofixtures.build(_toolchain("1.27.3"), "evasion", "default"), tmp_path, "evasion-exec")
    policy = policy_file(tmp_path / "policy.yaml", {**BASELINE, SHELLCMD: ["files", "env.read", "exec"]})
    out = tmp_path / "sh.txt"
    result = attach_cmd(app, policy, [str(app), "exec-sh", str(out)], tmp_path)
    assert result.status == 0 and out.read_text() == "pwned\n", result.stderr
    [ev] = [e for e in result.events if e["capability"] == "exec"]
    assert (ev["decision"], ev["module"]) == ("allow", SHELLCMD), show([ev])
    assert ev["note"] == "the started program runs outside enforcement", ev
    assert not [e for e in result.events if e["pid"] != ev["pid"]], "events from the child process"
    record(7, "`/bin/sh` started with `exec` allowed", "flagged",
           "the exec is checked; the child is another program, outside enforcement: its event says so (`note`), "
           "and inspect lists an `exec` gap for the module",
           evidence(ev, f"note: {ev['note']}; the shell wrote its file"))


# --- 8. stack forgery -----------------------------------------------------------------------------------------


def test_cleared_frame_pointer(live: dict[str, dict[str, Trial]], record: Callable[..., None]) -> None:
    t = live["enforce"]["forge-nofp"]
    ev, fact = blocked_file(t, "files.write", TRAMPOLINE, "stack", removed=True)
    assert f"{TRAMPOLINE}.callNoFP" in stack_functions(ev), show([ev])
    record(8, "assembly clears RBP, then CALLs os.Remove", "blocked",
           "the return address into the assembly function is still on the chain, and it is trampoline's",
           evidence(ev, fact))


def test_forged_return_address(live: dict[str, dict[str, Trial]], record: Callable[..., None]) -> None:
    t = live["enforce"]["forge-ret"]
    assert t.ran.returncode == 0 and not t.facts["exists"], t  # removed: the default policy allows it ...
    ev = decided(t, "allow", "files.write", UNATTRIBUTED, via="none")  # ... but never silently
    assert not any(f.startswith(TRAMPOLINE) for f in stack_functions(ev)), show([ev])
    record(8, "assembly JMPs to os.Remove with a forged return address and RBP = 0 (`unattributed: allow`)",
           "flagged", "no trampoline address is on the frame-pointer chain: the event is unattributed; inspect "
           "lists an `asm` gap for the module", evidence(ev, "exit 0: the file was removed"))
    t = live["strict"]["forge-ret"]
    fact = assert_killed_before(t, "exists", False, True)
    ev = decided(t, "deny", "files.write", UNATTRIBUTED, via="none")
    record(8, "the same forged return address under `unattributed: deny`", "blocked",
           "missing attribution is a violation under the strict policy", evidence(ev, fact))


def test_strict_policy_on_a_program_linking_net_http(tmp_path: Path, record: Callable[..., None]) -> None:
    """Under `unattributed: deny`, std package initializers (which read GODEBUG before main) are charged to
    the `std:init` pseudo-module, so a program linking net/http starts; a forged stack still dies."""
    app = private_copy(gofixtures.build(_toolchain("1.27.3"), "evasion", "default"), tmp_path, "evasion-strict-all")
    policy = policy_file(tmp_path / "policy.yaml", BASELINE, unattributed="deny")
    out = tmp_path / "main.txt"
    ok = attach_cmd(app, policy, [str(app), "main-write", str(out)], tmp_path)
    assert ok.status == 0 and out.exists(), ok.stderr
    init_reads = [e for e in ok.events if e["argument"] == "GODEBUG"]
    assert init_reads and all((e["module"], e["decision"]) == ("std:init", "allow") for e in init_reads), \
        show(init_reads)
    assert any(".init" in f for f in stack_functions(init_reads[0])), show(init_reads)
    victim = tmp_path / "victim.txt"
    victim.write_text("x")
    bad = attach_cmd(app, policy, [str(app), "forge-ret", str(victim)], tmp_path)
    assert bad.status == STATUS_KILLED and victim.exists(), bad.stderr
    [ev] = [e for e in bad.events if e["decision"] == "deny"]
    assert (ev["capability"], ev["module"]) == ("files.write", UNATTRIBUTED), show([ev])
    record(8, "`unattributed: deny` on a program linking net/http: std init runs, a forged stack dies", "blocked",
           "std package initializers (GODEBUG reads before main) are charged to the `std:init` pseudo-module "
           "(all capabilities); the forged call has no module and no initializer on its stack",
           evidence(ev, "exit 0 for main-write; gohook exit 137 and the file kept for forge-ret"))


# --- 9. concurrency -------------------------------------------------------------------------------------------


def test_eight_goroutines_hammer_a_denied_call(live: dict[str, dict[str, Trial]],
                                               record: Callable[..., None]) -> None:
    t = live["enforce"]["hammer"]
    assert t.control.returncode == 0 and len(t.control_facts["written"]) == 8 * HAMMER_WRITES, t.control
    assert t.ran.returncode == KILLED, t
    assert t.facts["written"] == [], f"a denied write slipped through: {t.facts['written']}"
    denied = [e for e in t.events if e["decision"] == "deny"]
    assert denied and all((e["capability"], e["module"]) == ("files.write", FANOUT) for e in denied), show(denied)
    assert len(denied) <= (os.cpu_count() or 1), f"more denied calls than CPUs got to their probe:\n{show(denied)}"
    assert not [e for e in t.events if e["module"] == FANOUT and e["decision"] != "deny"], show(t.events)
    record(9, f"8 goroutines write {HAMMER_WRITES} files each while main reads", "blocked",
           "the SIGKILL is sent from the probe of the first denied call; another thread that reaches a probe "
           "meanwhile is denied too; none reaches the open",
           evidence({**denied[0], "argument": "/tmp/w<g>-<i>"},  # whichever goroutine got there first
                    f"killed (SIGKILL); at most one denied call per CPU; 0 of {8 * HAMMER_WRITES} "
                    f"files written (unhooked: {8 * HAMMER_WRITES})"))


def test_main_own_work_is_allowed_everywhere(live: dict[str, dict[str, Trial]]) -> None:
    """No false kill: the application's own write passes under every session, with no sentinel event."""
    for name, trials in live.items():
        t = trials["main-write"]
        assert t.ran.returncode == 0 and t.facts["exists"], (name, str(t))
        ev = decided(t, "allow", "files.write", MAIN, via="stack")
        assert ev["function"] == "syscall.openat", show([ev])
        assert not [e for e in t.events if e["function"].startswith("syscall:")], (name, show(t.events))


# --- 11. a module path that starts like a linker name ---------------------------------------------------------

TELEMETRY = "go.evil.example/telemetry"
#: The secret variable goprefix-env reads (set only in the runs' environment).
SECRET_NAME, SECRET_VALUE = "GOHOOK_EVASION_SECRET", "s3cr3t-0c7f15e2"
#: technique -> (capability, telemetry's function, observed side effect, its value when done, when not done)
GOPREFIX: dict[str, tuple[str, str, str, Any, Any]] = {
    "goprefix-env": ("env.read", "Secret", "printed", True, False),
    "goprefix-dial": ("network.connect", "Beacon", "connections", 1, 0),
    "goprefix-write": ("files.write", "Drop", "exists", True, False),
}
#: session -> (gohook --mode, telemetry's capabilities): the module is granted nothing, or what it uses.
GOPREFIX_SESSIONS: dict[str, tuple[str, list[str]]] = {
    "enforce": ("enforce", []),
    "audit": ("audit", []),
    "granted": ("enforce", ["env.read", "network.connect", "files.write"]),
}


@pytest.fixture(scope="module")
def goprefix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, dict[str, Trial]]]]:
    """The goprefix techniques on the evasion program of every toolchain (Go 1.19 writes the pre-1.20 `go.`
    linker names): trials by Go version, session (GOPREFIX_SESSIONS) and technique. One toolchain at a time:
    its three sessions attach at once; each technique also runs on an unhooked copy (the control)."""
    _toolchain("1.19")  # the release that matters: skip loudly (CI: fail) without it
    root = tmp_path_factory.mktemp("goprefix")
    listener = Listener()
    scratch = count()

    def step(technique: str) -> tuple[list[str], Callable[[Ran], dict[str, Any]]]:
        if technique == "goprefix-env":
            return [technique, SECRET_NAME], lambda ran: {"printed": SECRET_VALUE in ran.stdout}
        if technique == "goprefix-dial":
            listener.received()  # drop earlier connections
            return [technique, listener.addr], lambda ran: {"connections": len(listener.received())}
        out = root / "scratch" / f"run{next(scratch)}" / "out.txt"
        out.parent.mkdir(parents=True)
        return [technique, str(out)], lambda ran: {"exists": out.exists()}

    def attempt(binary: Path, technique: str) -> tuple[Ran, dict[str, Any]]:
        args, observe = step(technique)
        ran = run(binary, *args, env={SECRET_NAME: SECRET_VALUE})
        return ran, observe(ran)

    trials: dict[str, dict[str, dict[str, Trial]]] = {}
    try:
        for toolchain in gofixtures.toolchains():
            built = gofixtures.build(toolchain, "evasion", "default")
            work = root / toolchain.version
            control = private_copy(built, work / "control", "evasion-goprefix-control")
            specs: dict[str, Session] = {}
            for name, (mode, granted) in GOPREFIX_SESSIONS.items():
                policy = policy_file(work / f"{name}.yaml", {**BASELINE, TELEMETRY: granted})
                specs[name] = Session(private_copy(built, work, f"evasion-goprefix-{name}"), policy, work, mode=mode)
            ran: dict[str, dict[str, tuple[Ran, dict[str, Any], Ran, dict[str, Any]]]] = {n: {} for n in specs}
            with sessions(*specs.values()):
                for technique in GOPREFIX:
                    for name, session in specs.items():
                        ran[name][technique] = (*attempt(session.binary, technique), *attempt(control, technique))
            trials[toolchain.version] = {
                name: {technique: Trial(technique, *outcome, events=for_pid(specs[name].events, outcome[0].pid))
                       for technique, outcome in by_technique.items()}
                for name, by_technique in ran.items()}
        yield trials
    finally:
        listener.close()


def _goprefix_frame(trial: Trial, ev: Event) -> None:
    """The event's stack holds telemetry's function, charged to telemetry (not std): the module was seen."""
    function = f"{TELEMETRY}.{GOPREFIX[trial.name][1]}"
    frames = [(f["function"], f["module"]) for f in ev["stack"]]
    assert (function, TELEMETRY) in frames, f"{function} is not on the stack as {TELEMETRY}'s:\n{show([ev])}"


@pytest.mark.parametrize("technique", list(GOPREFIX))
def test_module_path_starting_with_go_is_blocked_on_every_release(goprefix: dict[str, dict[str, dict[str, Trial]]],
                                                                  record: Callable[..., None],
                                                                  technique: str) -> None:
    """go.evil.example/telemetry granted nothing: killed before its side effect, the event names the module
    (before the fix, every `go.` name was the linker's: the module was std, and everything was allowed)."""
    capability, _function, effect, done, undone = GOPREFIX[technique]
    seen: list[tuple[Event, str]] = []
    for version, by_session in goprefix.items():
        t = by_session["enforce"][technique]
        try:
            fact = assert_killed_before(t, effect, done, undone)
            ev = decided(t, "deny", capability, TELEMETRY, via="stack")
            _goprefix_frame(t, ev)
            if technique == "goprefix-env":
                assert ev["argument"] == SECRET_NAME and SECRET_VALUE not in t.ran.stdout, show([ev])
        except AssertionError as exc:
            raise AssertionError(f"Go {version}: {exc}") from exc
        seen.append((ev, fact))
    ev, fact = seen[0]  # the oldest release: Go 1.19, whose own linker names start with `go.` too
    variant = {"goprefix-env": "reads a secret environment variable",
               "goprefix-dial": "dials out", "goprefix-write": "writes a file"}[technique]
    record(11, f"`go.evil.example/telemetry` (granted nothing) {variant}", "blocked",
           "a `go.` prefix alone never makes a function the linker's: pre-1.20 linker names are told from module "
           "paths by the host-like first path element (`go.evil.example`); the module is read from the build "
           "info on every release", evidence(ev, f"Go {', '.join(goprefix)}: {fact}"))


@pytest.mark.parametrize("technique", list(GOPREFIX))
def test_module_path_starting_with_go_is_named_in_audit_mode(goprefix: dict[str, dict[str, dict[str, Trial]]],
                                                             technique: str) -> None:
    """--mode audit: the call goes through and the event charges it to go.evil.example/telemetry."""
    capability, _function, effect, done, _undone = GOPREFIX[technique]
    for version, by_session in goprefix.items():
        t = by_session["audit"][technique]
        assert t.ran.returncode == 0 and t.facts.get(effect) == done, f"Go {version}:\n{t}"
        ev = decided(t, "audit", capability, TELEMETRY, via="stack")
        _goprefix_frame(t, ev)
        assert not [e for e in t.events if e["decision"] == "deny"], f"Go {version}:\n{show(t.events)}"


@pytest.mark.parametrize("technique", list(GOPREFIX))
def test_module_path_starting_with_go_runs_when_granted(goprefix: dict[str, dict[str, dict[str, Trial]]],
                                                        technique: str) -> None:
    """No false kill: with the capability granted the technique runs to its end, allowed as telemetry's."""
    capability, _function, effect, done, _undone = GOPREFIX[technique]
    for version, by_session in goprefix.items():
        t = by_session["granted"][technique]
        assert t.ran.returncode == 0 and t.facts.get(effect) == done, f"Go {version}:\n{t}"
        assert f"evasion {technique}: done" in t.ran.stdout, f"Go {version}:\n{t}"
        ev = decided(t, "allow", capability, TELEMETRY, via="stack")
        _goprefix_frame(t, ev)
        assert not [e for e in t.events if e["decision"] != "allow"], f"Go {version}:\n{show(t.events)}"


# --- static view ------------------------------------------------------------------------------------------------


def test_inspect_names_the_gaps(tmp_path: Path) -> None:
    """`gohook inspect` flags what enforcement can only flag: assembly, raw syscalls, exec, cgo."""
    import subprocess
    import sys

    app = gofixtures.build(_toolchain("1.27.3"), "evasion", "cgo")
    proc = subprocess.run([sys.executable, "-m", "gohook", "inspect", str(app), "--json"], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    gaps = {(g["kind"], g["module"]) for g in json.loads(proc.stdout)["gaps"]}
    for gap in [("asm", TRAMPOLINE), ("asm", RAWIO), ("raw_syscall", RAWIO), ("exec", SHELLCMD), ("cgo", NATIVEFS),
                ("cgo", "")]:
        assert gap in gaps, f"inspect does not report {gap}: {sorted(gaps)}"


# --- plan -> BPF for provenance, the sentinel and trusted code (pure) -----------------------------------------


def test_provenance_probe_is_the_runqput_call(toolchain: Any, tmp_path: Path) -> None:
    """Every toolchain: the "created" probe is newproc.func1's one `call runtime.runqput` (E8 rel32 on disk),
    with runtime.runqput's entry as Go's debug/gosym gives it; the g.m and m.curg offsets read from
    runtime.systemstack's machine code are those of the binary's DWARF."""
    import struct

    from gohook.gosym import GoBinary
    from gohook.plan.build import plan_provenance

    path = gofixtures.build(toolchain, "capapp", "default")
    binary = GoBinary.open(str(path))
    prov = plan_provenance(binary, g_offsets(binary))
    assert prov is not None and prov.new_g_register == "bx" and len(prov.created) == 1
    listed = gofixtures.oracle(path)["functions"]
    funcs = {f["name"]: f for f in listed}
    data = path.read_bytes()
    call = prov.created[0]
    assert data[call.file_offset] == 0xE8, f"not a CALL rel32 at {call.address:#x}"
    target = call.address + 5 + struct.unpack_from("<i", data, call.file_offset + 1)[0]
    assert target == funcs["runtime.runqput"]["entry"]
    closure = funcs["runtime.newproc.func1"]
    assert closure["entry"] <= call.address < closure["end"]
    assert (prov.g_m_offset, prov.m_curg_offset) == (dwarf_g_fields(data, ("m",))["m"],
                                                     dwarf_g_fields(data, ("curg",), "runtime.m")["curg"])
    parent = dwarf_g_fields(data, ("parentGoid",))
    assert prov.parent_goid_offset == parent.get("parentGoid", 0)  # none before Go 1.21
    stripped = GoBinary.open(gofixtures.build(toolchain, "capapp", "stripped"))
    assert plan_provenance(stripped, g_offsets(stripped)) == replace(
        prov, created=plan_provenance(stripped, g_offsets(stripped)).created)  # same offsets without DWARF


@pytest.mark.parametrize("fixture, mode, setting, on, why", [
    ("inlineapp", "default", "auto", False, "off (auto: no cgo"),
    ("inlineapp", "default", "on", True, "on (--sentinel on)"),
    ("capapp", "default", "auto", True, "raw system calls from module code (syscall.Syscall)"),
    ("capapp", "default", "off", False, "although the binary has raw system calls"),
    ("capapp", "cgo", "auto", True, "on (auto: cgo"),
    ("evasion", "default", "auto", True, "on (auto: "),
])
def test_sentinel_setting(newest_toolchain: Any, fixture: str, mode: str, setting: str, on: bool, why: str) -> None:
    """auto runs the sentinel (syscall tracing, paid by every system call on the machine) only for binaries with
    code that makes system calls no hook sees; `syscall` instruction sites come with it."""
    from gohook.bpf.abi import HookKind
    from gohook.gosym import GoBinary
    from gohook.plan.build import build_plan
    from gohook.policy.format import Mode, Policy
    from gohook.sites.catalog import load_catalog
    from gohook.sites.hooks import find_hook_sites

    binary = GoBinary.open(str(gofixtures.build(newest_toolchain, fixture, mode)))
    catalog = load_catalog()
    build = build_plan(binary, find_hook_sites(binary, catalog), catalog, Policy(path="t"), Mode.ENFORCE, setting)
    assert (build.plan.sentinel is not None) == on, build.sentinel_reason
    assert why in build.sentinel_reason
    if not on:
        assert not [h for h in build.plan.hooks if h.kind in (HookKind.SITE, HookKind.CGOCALL)]
    if fixture == "evasion":
        assert [h for h in build.plan.hooks if h.kind == HookKind.SITE], "rawio's syscall instructions are probed"


def test_syscall_rules_follow_the_catalog() -> None:
    from gohook.bpf.abi import Judge, RuleTestKind
    from gohook.plan.build import syscall_rules
    from gohook.sites.catalog import load_catalog
    from gohook.sites.syscalls import BY_NUMBER, syscall_name

    catalog = load_catalog()
    bits = {c.name: c.bit for c in catalog.capabilities}
    rules = {r.nr: r for r in syscall_rules(catalog)}
    assert set(BY_NUMBER) <= set(rules)  # the sentinel's rules, and the raw judges' for every other class
    assert {nr for nr, r in rules.items() if r.judges & Judge.SENTINEL} == set(BY_NUMBER) | {44, 46, 307}
    openat = rules[257]
    assert (openat.capability, [(t.kind, t.arg, t.capability, t.operand) for t in openat.tests]) == (
        bits["files.read"], [(RuleTestKind.MASK, 2, bits["files.write"], 0x643)])
    assert rules[42].capability == bits["network.connect"] and rules[59].capability == bits["exec"]
    assert syscall_name(257) == "openat" and syscall_name(999) == "syscall 999"


# --- the document ---------------------------------------------------------------------------------------------


def test_docs_table_matches_this_run(results: Any) -> None:
    """docs/evasion.md holds the rows recorded by this run (all of them when the whole file ran)."""
    table = _table_module()
    doc = (gofixtures.REPO_ROOT / "docs" / "evasion.md").read_text(encoding="utf-8")
    if not results.rows:  # only this test was selected: check against the last complete run's results
        assert EVASION_RESULTS.exists(), "no results: run the whole of tests/test_evasion.py"
        assert doc == table.render(json.loads(EVASION_RESULTS.read_text(encoding="utf-8"))["rows"])
        return
    stale = [r["test"] for r in results.rows if table.row_markdown(r) not in doc]
    assert not stale, (f"docs/evasion.md is out of date for {stale}: run the suite, then "
                       "`.venv/bin/python scripts/evasion_table.py`")
    in_doc = {line.rsplit("`", 2)[-2] for line in doc.splitlines() if line.startswith("| ") and "`tests/" in line}
    if in_doc <= {r["test"] for r in results.rows}:  # the whole suite ran: the document is exactly its rendering
        assert doc == table.render(results.rows)
