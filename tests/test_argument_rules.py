"""Argument-scoped rules, live (issue 14 §4): the kernel decides from the argument, before the call runs.

The argscope program (testdata/go/argscope) makes one capability call of its dependency
github.com/acme/config with the arguments it is given. config holds every capability only for some
arguments (POLICY below): its files, its variables, its collector's address, its socket, /bin/true.
Each case runs under a background `gohook attach --mode enforce` (allowed calls reported) on Go 1.27 and
Go 1.21, and on an unhooked copy (the control: the call does work when nobody watches). Oracles that are
not gohook: files on disk, connections and datagrams at loopback sockets the test owns, what the program
prints, its exit status. An allowed argument runs and its event names the pattern that allowed it; a
disallowed one is killed before the side effect, and its event says no pattern matched.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gofixtures
import pytest
from attach_helpers import KILLED, Listener, Ran, Session, Trial, UdpSink, for_pid, private_copy, run, sessions, show

pytestmark = pytest.mark.bpf

MAIN = "example.com/argscope"
CONFIG = "github.com/acme/config"
VERSIONS = ("1.27", "1.24", "1.21", "1.19")  # every toolchain of the suite
SECRET_NAME, SECRET_VALUE = "AWS_SECRET_ACCESS_KEY", "s3cr3t-4e9d"
LEVEL_NAME, LEVEL_VALUE = "ACME_LEVEL", "debug-77"
HAMMER_ROUNDS = 50  # per goroutine, 8 goroutines

Event = dict[str, Any]


@pytest.fixture(scope="module", autouse=True)
def _root() -> None:
    gofixtures.require_root("the argument-scoped rules' uprobes")


class UnixListener:
    """A Unix stream socket the test owns: how many connections arrived?"""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(16)
        self.sock.setblocking(False)

    def received(self) -> int:
        n = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return n
            conn.close()
            n += 1

    def close(self) -> None:
        self.sock.close()


@dataclass
class World:
    """The files and sockets the cases use, and the policy that scopes config to some of them."""

    root: Path
    tcp: Listener  # the collector: config may connect here
    tcp_other: Listener  # somewhere else
    udp: UdpSink
    udp_other: UdpSink
    unix: UnixListener  # ROOT/sock/agent.sock: allowed
    unix_other: UnixListener  # ROOT/sock/agent.socket: not

    @property
    def allowed(self) -> Path:
        return self.root / "allowed"

    @property
    def outside(self) -> Path:
        return self.root / "outside"

    def policy_text(self) -> str:
        a, r = self.allowed, self.root
        return "\n".join([
            "version: 1",
            "action: kill",
            "modules:",
            f"  {MAIN}: [all]",
            f"  {CONFIG}:",
            '    env.read: ["ACME_*"]',
            f'    files.read: ["{a}/**", "/dev/null", "/bin/true", "/usr/bin/true", "/bin/sh"]',
            f'    files.write: ["{a}/*.txt", "{a}/h/**", "{a}/m/**", "/dev/null"]',
            f'    network.connect: ["{self.tcp.addr}", "{self.udp.addr}", "unix:{r}/sock/*.sock"]',
            '    network.listen: ["127.0.0.1:*"]',
            '    exec: ["/bin/true", "/usr/bin/true"]',
            "",
        ])


@dataclass(frozen=True)
class Case:
    """One call: allowed (the pattern that must allow it) or denied (pattern None), the capability it is
    charged with, and how to run and observe it (fresh state for each run)."""

    capability: str
    pattern: str | None  # {a} is the allowed directory, {tcp} / {udp} the allowed addresses, {r} the root
    step: Callable[[World], tuple[list[str], Callable[[Ran], dict[str, Any]]]]
    effect: str  # the observed fact that is true when the call did its work


def _write(path: Path, op: str = "write") -> Callable[[World], tuple[list[str], Callable[[Ran], dict[str, Any]]]]:
    def step(w: World) -> tuple[list[str], Callable[[Ran], dict[str, Any]]]:
        target = Path(str(path).format(a=w.allowed, o=w.outside))
        target.unlink(missing_ok=True)
        return [op, str(target)], lambda ran: {"written": target.exists()}
    return step


def _read(arg: Callable[[World], str]) -> Callable[[World], tuple[list[str], Callable[[Ran], dict[str, Any]]]]:
    def step(w: World) -> tuple[list[str], Callable[[Ran], dict[str, Any]]]:
        return ["read", arg(w)], lambda ran: {"read": "read 9 bytes" in ran.stdout}
    return step


def _rename(dest: str) -> Callable[[World], tuple[list[str], Callable[[Ran], dict[str, Any]]]]:
    def step(w: World) -> tuple[list[str], Callable[[Ran], dict[str, Any]]]:
        src = w.allowed / "from.txt"
        src.write_text("from\n")
        target = Path(dest.format(a=w.allowed, o=w.outside))
        target.unlink(missing_ok=True)
        return ["rename", str(src), str(target)], lambda ran: {"renamed": target.exists()}
    return step


def _linked(op: str) -> Callable[[World], tuple[list[str], Callable[[Ran], dict[str, Any]]]]:
    def step(w: World) -> tuple[list[str], Callable[[Ran], dict[str, Any]]]:
        link = w.allowed / f"{op}.txt"
        link.unlink(missing_ok=True)
        return [op, str(w.outside / "secret.txt"), str(link)], lambda ran: {"linked": os.path.lexists(link)}
    return step


def _dial(target: Callable[[World], str], sink: Callable[[World], Listener | UnixListener]
          ) -> Callable[[World], tuple[list[str], Callable[[Ran], dict[str, Any]]]]:
    def step(w: World) -> tuple[list[str], Callable[[Ran], dict[str, Any]]]:
        s = sink(w)
        s.received()

        def observe(ran: Ran) -> dict[str, Any]:
            got = s.received()
            return {"connections": got if isinstance(got, int) else len(got)}
        return ["dial", target(w)], observe
    return step


def _connect_mapped(w: World) -> tuple[list[str], Callable[[Ran], dict[str, Any]]]:
    """An AF_INET6 socket connected to ::ffff:127.0.0.1 (syscall.Connect): IPv4 rules match it."""
    w.tcp.received()
    return ["connect-mapped", w.tcp.addr.rsplit(":", 1)[1]], lambda ran: {"connections": len(w.tcp.received())}


def _sendto(sink: Callable[[World], UdpSink]) -> Callable[[World], tuple[list[str], Callable[[Ran], dict[str, Any]]]]:
    def step(w: World) -> tuple[list[str], Callable[[Ran], dict[str, Any]]]:
        s = sink(w)
        s.received()
        return ["sendto", "127.0.0.1:0", s.addr], lambda ran: {"datagrams": len(s.received())}
    return step


def _hammer(sub: str, denied: bool) -> Callable[[World], tuple[list[str], Callable[[Ran], dict[str, Any]]]]:
    def step(w: World) -> tuple[list[str], Callable[[Ran], dict[str, Any]]]:
        d = w.allowed / sub
        for old in d.glob("*"):
            old.unlink()
        d.mkdir(exist_ok=True)
        bad = w.outside / "hammer-denied.txt"
        bad.unlink(missing_ok=True)

        def observe(ran: Ran) -> dict[str, Any]:
            return {"files": len(list(d.glob("*.txt"))), "denied_written": bad.exists(), "done": ran.returncode == 0}
        return ["hammer", str(d), str(bad) if denied else "", str(HAMMER_ROUNDS)], observe
    return step


def _plain(*args: str, effect: str, text: str) -> Callable[[World], tuple[list[str], Callable[[Ran], dict[str, Any]]]]:
    def step(w: World) -> tuple[list[str], Callable[[Ran], dict[str, Any]]]:
        return list(args), lambda ran: {effect: text in ran.stdout}
    return step


def _exec_shell(w: World) -> tuple[list[str], Callable[[Ran], dict[str, Any]]]:
    mark = w.outside / "exec-mark"
    mark.unlink(missing_ok=True)
    return ["exec", "/bin/sh", "-c", f"echo x > {mark}"], lambda ran: {"ran": mark.exists()}


CASES: dict[str, Case] = {
    "env-allowed": Case("env.read", "ACME_*", _plain("getenv", LEVEL_NAME, effect="value", text=LEVEL_VALUE),
                        "value"),
    "env-denied": Case("env.read", None, _plain("getenv", SECRET_NAME, effect="value", text=SECRET_VALUE), "value"),
    "read-allowed": Case("files.read", "{a}/**", _read(lambda w: str(w.allowed / "conf.txt")), "read"),
    "read-denied": Case("files.read", None, _read(lambda w: str(w.outside / "secret.txt")), "read"),
    "read-traversal": Case("files.read", None, _read(lambda w: f"{w.allowed}/../outside/secret.txt"), "read"),
    "read-relative": Case("files.read", None, _read(lambda w: os.path.relpath(w.allowed / "conf.txt")), "read"),
    "read-dotslash": Case("files.read", None, _read(lambda w: f"{w.allowed}/./conf.txt"), "read"),
    "read-doubleslash": Case("files.read", None, _read(lambda w: f"{w.allowed}//conf.txt"), "read"),
    "read-dirfd": Case("files.read", None, lambda w: (["readat", str(w.allowed), "conf.txt"],
                                                      lambda ran: {"read": "ok" in ran.stdout}), "read"),
    "write-allowed": Case("files.write", "{a}/*.txt", _write(Path("{a}/new.txt")), "written"),
    "write-other-suffix": Case("files.write", None, _write(Path("{a}/new.yaml")), "written"),
    "write-subdir": Case("files.write", None, _write(Path("{a}/sub/new.txt")), "written"),
    "write-outside": Case("files.write", None, _write(Path("{o}/new.txt")), "written"),
    "rename-allowed": Case("files.write", "{a}/*.txt", _rename("{a}/to.txt"), "renamed"),
    "rename-out": Case("files.write", None, _rename("{a}/sub/to.txt"), "renamed"),  # readable, not writable
    "symlink-escape": Case("files.write", None, _linked("symlink"), "linked"),
    "hardlink-escape": Case("files.write", None, _linked("link"), "linked"),
    "dial-allowed": Case("network.connect", "{tcp}", _dial(lambda w: w.tcp.addr, lambda w: w.tcp), "connections"),
    "dial-mapped": Case("network.connect", "{tcp}",
                        _dial(lambda w: "[::ffff:127.0.0.1]:" + w.tcp.addr.rsplit(":", 1)[1], lambda w: w.tcp),
                        "connections"),
    "connect-mapped": Case("network.connect", "{tcp}", _connect_mapped, "connections"),
    "dial-denied": Case("network.connect", None, _dial(lambda w: w.tcp_other.addr, lambda w: w.tcp_other),
                        "connections"),
    "unix-allowed": Case("network.connect", "unix:{r}/sock/*.sock",
                         _dial(lambda w: f"unix:{w.unix.path}", lambda w: w.unix), "connections"),
    "unix-denied": Case("network.connect", None, _dial(lambda w: f"unix:{w.unix_other.path}", lambda w: w.unix_other),
                        "connections"),
    "sendto-allowed": Case("network.connect", "{udp}", _sendto(lambda w: w.udp), "datagrams"),
    "sendto-denied": Case("network.connect", None, _sendto(lambda w: w.udp_other), "datagrams"),
    "listen-denied": Case("network.listen", None, _plain("listen", "0.0.0.0:0", effect="ok", text="ok"), "ok"),
    "exec-allowed": Case("exec", "/bin/true", _plain("exec", "/bin/true", effect="ok", text="ok"), "ok"),
    "exec-denied": Case("exec", None, _exec_shell, "ran"),
    # config.Indirect inlined into main: Go names its closure main.main.Indirect.func1; the code is config's
    "closure-inlined": Case("files.write", None, _write(Path("{o}/indirect.txt"), op="indirect"), "written"),
    "hammer-allowed": Case("files.write", "{a}/h/**", _hammer("h", False), "done"),
    "hammer-mixed": Case("files.write", None, _hammer("m", True), "denied_written"),
}


@pytest.fixture(scope="module")
def trials(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, dict[str, dict[str, Trial]]]]:
    """Every case by Go version, under enforcement and on an unhooked copy."""
    root = tmp_path_factory.mktemp("argrules")
    for d in ("allowed", "outside", "sock", "allowed/sub"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "allowed" / "conf.txt").write_text("conf=yes\n")  # 9 bytes
    (root / "outside" / "secret.txt").write_text("password\n")  # 9 bytes
    w = World(root, Listener(), Listener(), UdpSink(), UdpSink(), UnixListener(root / "sock" / "agent.sock"),
              UnixListener(root / "sock" / "agent.socket"))
    policy = root / "policy.yaml"
    policy.write_text(w.policy_text())
    env = {SECRET_NAME: SECRET_VALUE, LEVEL_NAME: LEVEL_VALUE}
    out: dict[str, dict[str, Trial]] = {}
    try:
        for version in VERSIONS:
            built = gofixtures.build(gofixtures.live_toolchain(version), "argscope", "default")
            work = root / version
            control = private_copy(built, work / "control", "argscope-control")
            session = Session(private_copy(built, work, "argscope"), policy, work, mode="enforce")
            ran: dict[str, tuple[Ran, dict[str, Any], Ran, dict[str, Any]]] = {}
            with sessions(session):
                for name, case in CASES.items():
                    args, observe = case.step(w)
                    hooked = run(session.binary, *args, env=env)
                    facts = observe(hooked)
                    args, observe = case.step(w)
                    unhooked = run(control, *args, env=env)
                    ran[name] = (hooked, facts, unhooked, observe(unhooked))
            out[version] = {n: Trial(n, *r, events=for_pid(session.events, r[0].pid)) for n, r in ran.items()}
        yield w, out
    finally:
        for s in (w.tcp, w.tcp_other, w.udp, w.udp_other, w.unix, w.unix_other):
            s.close()


def _expected_pattern(case: Case, w: World) -> str | None:
    if case.pattern is None:
        return None
    return case.pattern.format(a=w.allowed, r=w.root, tcp=w.tcp.addr, udp=w.udp.addr)


def _events(t: Trial, decision: str, capability: str) -> list[Event]:
    return [e for e in t.events if e["decision"] == decision and e["capability"] == capability
            and e["module"] == CONFIG]


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.pattern is None])
def test_disallowed_argument_is_killed_before_the_side_effect(trials: tuple[World, dict[str, dict[str, Trial]]],
                                                              name: str) -> None:
    """The control did the work; under enforcement the process dies first, and the deny event says no pattern
    of config matched the argument."""
    w, by_version = trials
    case = CASES[name]
    for version, by_case in by_version.items():
        t = by_case[name]
        assert t.control.returncode == 0 and t.control_facts[case.effect], f"Go {version}: the control failed\n{t}"
        assert t.ran.returncode == KILLED, f"Go {version}: not killed\n{t}"
        assert not t.facts[case.effect], f"Go {version}: the side effect happened before the kill\n{t}"
        denied = _events(t, "deny", case.capability)
        assert denied, f"Go {version}: no deny of {case.capability}\n{t}"
        assert all("pattern" in e and e["pattern"] is None for e in denied), show(denied)


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.pattern is not None])
def test_allowed_argument_runs_and_names_its_pattern(trials: tuple[World, dict[str, dict[str, Trial]]],
                                                     name: str) -> None:
    """No false kill: the same result as the control, and the allow event names the pattern that allowed it."""
    w, by_version = trials
    case = CASES[name]
    for version, by_case in by_version.items():
        t = by_case[name]
        assert t.control.returncode == 0 and t.control_facts[case.effect], f"Go {version}: the control failed\n{t}"
        assert t.ran.returncode == 0 and t.facts == t.control_facts, f"Go {version}: differs from the control\n{t}"
        assert not [e for e in t.events if e["decision"] != "allow"], show(t.events)
        allowed = _events(t, "allow", case.capability)
        want = _expected_pattern(case, w)
        assert any(e.get("pattern") == want for e in allowed), f"Go {version}: no allow by {want!r}\n{show(allowed)}"


def test_mixed_goroutines_kill_only_at_the_denied_write(trials: tuple[World, dict[str, dict[str, Trial]]]) -> None:
    """8 goroutines write allowed files while one writes a denied path once: the denied file never exists, the
    allowed writes before it are there, and the only deny is the denied path."""
    w, by_version = trials
    for by_case in by_version.values():
        t = by_case["hammer-mixed"]
        denied = _events(t, "deny", "files.write")
        assert [e["argument"] for e in denied] == [str(w.outside / "hammer-denied.txt")], show(denied)
        assert t.facts["files"] > 0 and t.control_facts["files"] == 8 * HAMMER_ROUNDS, t


def test_a_closure_named_after_main_is_charged_to_its_module(trials: tuple[World, dict[str, dict[str, Trial]]],
                                                             record: Callable[..., None]) -> None:
    """config.Indirect is inlined into main.main, and Go 1.21-1.24 name its closure main.main.Indirect.func1:
    the write in that closure is still config's (its source file), on every toolchain."""
    _w, by_version = trials
    for version, by_case in by_version.items():
        t = by_case["closure-inlined"]
        (ev,) = _events(t, "deny", "files.write")
        assert ev["function"] == "syscall.openat" and t.ran.returncode == KILLED, f"Go {version}\n{t}"
        assert any(fr["function"].endswith("Indirect.func1") and fr["module"] == CONFIG for fr in ev["stack"]), \
            f"Go {version}: the closure's frame is not config's\n{show([ev])}"
    record(4, "a dependency's closure whose defining function is inlined into main (Go 1.21-1.24 name it "
              "`main.main.Indirect.func1`)", "blocked",
           "a closure's module is the package of its source file, not of its name (GoBinary.closure_package)",
           f"deny files.write at `syscall.openat`: {CONFIG}; killed (SIGKILL) before the file exists, Go "
           + ", ".join(by_version))
