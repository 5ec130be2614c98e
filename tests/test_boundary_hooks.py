"""Go-level hooks for the newly classified system calls, live (issue 12 §2): egress without connect(2),
executable memory, and linkname access to the runtime's copy of the environment.

The evasion program (testdata/go/evasion) runs each technique of three fake malicious dependencies
(github.com/otelkit/exporter, github.com/hotcode/jit, github.com/fastenv/linkenv) under three background
`gohook attach` sessions at once (enforce and audit with the capability withheld, enforce with it
granted), on Go 1.27 and Go 1.21 (where every linkname links without -checklinkname), and on an unhooked
copy (the control: the technique does work when nobody watches). Oracles that are not gohook: datagrams at
a loopback UDP socket, connections accepted by a loopback TCP listener, what the program prints, its exit
status. Each passing check records a row for docs/evasion.md (`record`, tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gofixtures
import pytest
from attach_helpers import (
    KILLED,
    Listener,
    Ran,
    Session,
    Trial,
    UdpSink,
    for_pid,
    policy_file,
    private_copy,
    run,
    sessions,
    show,
)

pytestmark = pytest.mark.bpf

MAIN = "example.com/evasion"
EXPORTER = "github.com/otelkit/exporter"
JIT = "github.com/hotcode/jit"
LINKENV = "github.com/fastenv/linkenv"
SECRET_NAME, SECRET_VALUE = "GOHOOK_LINKENV_SECRET", "s3cr3t-5e1f09aa"
TFO_SYSCTL = Path("/proc/sys/net/ipv4/tcp_fastopen")
TFO_CLIENT = 0x1  # net.ipv4.tcp_fastopen: client side enabled

Event = dict[str, Any]


@dataclass(frozen=True)
class Technique:
    """A technique: the capability it smuggles, the hook that must charge it, the module, the side effect
    (a key of the observed facts and its value when the technique worked), and its docs row."""

    capability: str
    function: str
    module: str
    effect: str
    number: int  # docs/evasion.md technique: 12 egress, 13 memory, 15 linkname
    variant: str


TECHNIQUES: dict[str, Technique] = {
    "egress-udp": Technique("network.connect", "syscall.sendto", EXPORTER, "datagrams", 12,
                            "`syscall.Socket` + `syscall.Sendto(addr)` on an unconnected UDP socket"),
    "egress-tfo": Technique("network.connect", "syscall.sendto", EXPORTER, "connections", 12,
                            "TCP Fast Open: `syscall.Sendto(fd, data, MSG_FASTOPEN, addr)` on an unconnected "
                            "stream socket (no connect(2))"),
    "egress-sendmsg": Technique("network.connect", "syscall.sendmsgN", EXPORTER, "datagrams", 12,
                                "`syscall.SendmsgN` with a destination on an unconnected UDP socket"),
    "egress-writeto": Technique("network.connect", "syscall.sendto", EXPORTER, "datagrams", 12,
                                "`net.ListenPacket` (granted `network.listen`) + `WriteTo(addr)`"),
    "jit-mprotect": Technique("memory.exec", "syscall.Mprotect", JIT, "executed", 13,
                              "JIT: anonymous RW mapping, write code, `syscall.Mprotect(PROT_READ|PROT_EXEC)`, "
                              "call it"),
    "jit-mmap-exec": Technique("memory.exec", "syscall.mmap", JIT, "executed", 13,
                               "`syscall.Mmap(..., PROT_EXEC, ...)` of anonymous memory, write code, call it"),
    "linkenv-read": Technique("env.read", "syscall.runtime_envs", LINKENV, "printed", 15,
                              "`//go:linkname` to `syscall.runtime_envs` (the runtime's copy of the environment)"),
}
#: What each dependency gets besides the capability it tries to smuggle: exporter binds a UDP socket
#: (egress-writeto), jit opens the file it maps read-only (jit-mmap-file).
BASE: dict[str, list[str]] = {MAIN: ["all"], EXPORTER: ["network.listen"], JIT: ["files.read"], LINKENV: []}
GRANTS: dict[str, list[str]] = {EXPORTER: ["network.connect"], JIT: ["memory.exec"], LINKENV: ["env.read"]}
#: session -> (gohook --mode, whether the smuggled capabilities are granted)
SESSIONS: dict[str, tuple[str, bool]] = {"enforce": ("enforce", False), "audit": ("audit", False),
                                         "granted": ("enforce", True)}
#: Negative controls, run in every session: no capability needed (jit-mmap-file), or only network.connect at
#: the dial of a connected UDP socket and none at its plain Write (egress-connected; killed at the dial where
#: exporter lacks network.connect).
CONTROLS = ("jit-mmap-file", "egress-connected")
VERSIONS = ("1.27", "1.21")


@pytest.fixture(scope="module", autouse=True)
def _root() -> None:
    gofixtures.require_root("the boundary hooks' uprobes")


@pytest.fixture(scope="module")
def fastopen() -> Iterator[None]:
    """The TCP Fast Open client bit, as the technique needs it; the sysctl is restored afterwards."""
    old = TFO_SYSCTL.read_text()
    TFO_SYSCTL.write_text(str(int(old) | TFO_CLIENT))
    try:
        yield
    finally:
        TFO_SYSCTL.write_text(old)


@pytest.fixture(scope="module")
def trials(tmp_path_factory: pytest.TempPathFactory,
           fastopen: None) -> Iterator[dict[str, dict[str, dict[str, Trial]]]]:
    """Trials by Go version, session and technique (TECHNIQUES and CONTROLS)."""
    root = tmp_path_factory.mktemp("boundary-hooks")
    udp, tcp = UdpSink(), Listener()
    mapped = root / "mapped.txt"
    mapped.write_text("bbolt-like read-only data\n")

    def step(technique: str) -> tuple[list[str], Callable[[Ran], dict[str, Any]]]:
        udp.received()  # drop what earlier runs left
        tcp.received()
        if technique == "egress-tfo":
            return [technique, tcp.addr], lambda ran: {"connections": len(tcp.received())}
        if technique.startswith("egress-"):
            return [technique, udp.addr], lambda ran: {"datagrams": len(udp.received())}
        if technique == "linkenv-read":
            return [technique, SECRET_NAME], lambda ran: {"printed": SECRET_VALUE in ran.stdout}
        if technique == "jit-mmap-file":
            return [technique, str(mapped)], lambda ran: {"mapped": "bbolt" in ran.stdout}
        return [technique], lambda ran: {"executed": "executed" in ran.stdout}

    def attempt(binary: Path, technique: str) -> tuple[Ran, dict[str, Any]]:
        args, observe = step(technique)
        ran = run(binary, *args, env={SECRET_NAME: SECRET_VALUE})
        return ran, observe(ran)

    out: dict[str, dict[str, dict[str, Trial]]] = {}
    try:
        for version in VERSIONS:
            built = gofixtures.build(gofixtures.live_toolchain(version), "evasion", "default")
            work = root / version
            control = private_copy(built, work / "control", "evasion-boundary-control")
            specs: dict[str, Session] = {}
            for name, (mode, granted) in SESSIONS.items():
                modules = {m: caps + (GRANTS.get(m, []) if granted else []) for m, caps in BASE.items()}
                policy = policy_file(work / f"{name}.yaml", modules)
                specs[name] = Session(private_copy(built, work, f"evasion-boundary-{name}"), policy, work, mode=mode)
            ran: dict[str, dict[str, tuple[Ran, dict[str, Any], Ran, dict[str, Any]]]] = {n: {} for n in specs}
            with sessions(*specs.values()):
                for technique in (*TECHNIQUES, *CONTROLS):
                    for name, session in specs.items():
                        ran[name][technique] = (*attempt(session.binary, technique), *attempt(control, technique))
            out[version] = {
                name: {t: Trial(t, *o, events=for_pid(specs[name].events, o[0].pid)) for t, o in by_t.items()}
                for name, by_t in ran.items()}
        yield out
    finally:
        udp.close()
        tcp.close()


def _decided(trial: Trial, decision: str, tech: Technique) -> Event:
    """The event of trial charging tech's capability to tech's module at tech's hook, with this decision."""
    found = [e for e in trial.events if e["decision"] == decision and e["capability"] == tech.capability
             and e["module"] == tech.module and e["function"] == tech.function]
    assert found, f"no {decision} {tech.capability} of {tech.module} at {tech.function} in\n{trial}"
    return found[0]


def _evidence(ev: Event, fact: str) -> str:
    arg = ev.get("argument") or ""
    if arg.startswith("127.0.0.1:"):
        arg = "127.0.0.1:PORT"
    shown = f" `{arg}`" if arg else ""
    return f"{ev['decision']} {ev['capability']} at `{ev['function']}`{shown}: {ev['module']}; {fact}"


WHY = {
    12: "a send with a destination is network.connect at `syscall.sendto` / `syscall.sendmsgN` (rule "
        "`destination`), before the system call; without one (a connected socket) it needs nothing",
    13: "`prot & PROT_EXEC` at `syscall.Mprotect` / `syscall.mmap` is memory.exec (flags rule, no capability "
        "otherwise), before the system call",
    15: "a module can call an unexported runtime function only through //go:linkname: the call site in "
        "module code is probed (direct_caller_only); std's own call (syscall.copyenv) is not counted",
}


@pytest.mark.parametrize("technique", list(TECHNIQUES))
def test_killed_before_the_side_effect(trials: dict[str, dict[str, dict[str, Trial]]],
                                       record: Callable[..., None], technique: str) -> None:
    """Enforce, capability withheld: SIGKILL before the side effect (the control run had it); the event names
    the module, the capability and the hook."""
    tech = TECHNIQUES[technique]
    for version, by_session in trials.items():
        t = by_session["enforce"][technique]
        assert t.control.returncode == 0 and t.control_facts[tech.effect], f"Go {version}: the control failed\n{t}"
        assert t.ran.returncode == KILLED, f"Go {version}: not killed\n{t}"
        assert not t.facts[tech.effect], f"Go {version}: side effect done before the kill\n{t}"
        ev = _decided(t, "deny", tech)
        if tech.capability == "network.connect":
            want = t.ran  # the destination is the listener's address
            assert ev["argument"].startswith("127.0.0.1:"), f"Go {version}: argument {ev['argument']!r}\n{want}"
        if technique == "linkenv-read":
            assert SECRET_VALUE not in t.ran.stdout
        fact = f"killed (SIGKILL), {tech.effect} absent (unhooked: present); Go {', '.join(trials)}"
        if version == VERSIONS[0]:
            record(tech.number, tech.variant, "blocked", WHY[tech.number], _evidence(ev, fact))


@pytest.mark.parametrize("technique", list(TECHNIQUES))
def test_audit_names_the_module_and_lets_it_run(trials: dict[str, dict[str, dict[str, Trial]]],
                                                record: Callable[..., None], technique: str) -> None:
    """Audit, capability withheld: the event names the module; nothing is killed and the run completes."""
    tech = TECHNIQUES[technique]
    for version, by_session in trials.items():
        t = by_session["audit"][technique]
        assert t.ran.returncode == 0 and t.facts[tech.effect], f"Go {version}:\n{t}"
        ev = _decided(t, "audit", tech)
        assert not [e for e in t.events if e["decision"] == "deny"], f"Go {version}:\n{show(t.events)}"
    record(tech.number, f"{tech.variant}, audit mode", "flagged", WHY[tech.number],
           _evidence(ev, "exit 0: audit mode lets it run"))


@pytest.mark.parametrize("technique", list(TECHNIQUES))
def test_runs_when_granted(trials: dict[str, dict[str, dict[str, Trial]]], record: Callable[..., None],
                           technique: str) -> None:
    """Enforce with the capability granted: no false kill, the side effect happens, the call is allowed."""
    tech = TECHNIQUES[technique]
    for version, by_session in trials.items():
        t = by_session["granted"][technique]
        assert t.ran.returncode == 0 and t.facts[tech.effect], f"Go {version}: false kill\n{t}"
        ev = _decided(t, "allow", tech)
        assert not [e for e in t.events if e["decision"] == "deny"], f"Go {version}:\n{show(t.events)}"
    record(tech.number, f"{tech.variant}, capability granted", "allowed", WHY[tech.number],
           _evidence(ev, "exit 0, side effect done: no false kill"))


def test_read_only_file_mapping_needs_no_capability(trials: dict[str, dict[str, dict[str, Trial]]],
                                                    record: Callable[..., None]) -> None:
    """jit-mmap-file (a read-only mapping of a file, what bbolt does) runs in every session, and no event charges
    memory.exec: mmap without PROT_EXEC is not a capability call."""
    for version, by_session in trials.items():
        for name, by_t in by_session.items():
            t = by_t["jit-mmap-file"]
            assert t.ran.returncode == 0 and t.facts["mapped"], f"Go {version} {name}:\n{t}"
            assert not [e for e in t.events if e["capability"] == "memory.exec"], f"Go {version} {name}:\n{t}"
            assert not [e for e in t.events if e["decision"] == "deny"], f"Go {version} {name}:\n{t}"
    record(13, "`syscall.Mmap(fd, ..., PROT_READ, MAP_SHARED)` of a file (negative control), granted nothing",
           "allowed", WHY[13], "exit 0 under enforce, no memory.exec event: no false kill")


def test_connected_socket_needs_only_the_dial(trials: dict[str, dict[str, dict[str, Trial]]],
                                              record: Callable[..., None]) -> None:
    """egress-connected: net.Dial("udp") then Write. With network.connect granted it runs, with one connect
    event and no send charged; without it, it is killed at the dial (syscall.connect), not at a send."""
    for version, by_session in trials.items():
        t = by_session["granted"]["egress-connected"]
        assert t.ran.returncode == 0, f"Go {version}:\n{t}"
        sends = [e for e in t.events if e["function"] in ("syscall.sendto", "syscall.sendmsgN")]
        assert not sends, f"Go {version}: a send on a connected socket was charged\n{show(sends)}"
        connects = [e for e in t.events if e["function"] == "syscall.connect" and e["module"] == EXPORTER]
        assert connects and all(e["decision"] == "allow" for e in connects), f"Go {version}:\n{t}"
        denied = by_session["enforce"]["egress-connected"]
        assert denied.ran.returncode == KILLED, f"Go {version}:\n{denied}"
        assert {e["function"] for e in denied.events if e["decision"] == "deny"} == {"syscall.connect"}, denied
    record(12, "`net.Dial(\"udp\")` + `Write` (a connected socket), `network.connect` granted", "allowed",
           WHY[12], "exit 0; the dial is the only network.connect event: no false kill on a connected send")


def test_main_own_work_is_allowed(trials: dict[str, dict[str, dict[str, Trial]]]) -> None:
    """The main module (granted all) is never charged a denial in any run."""
    for version, by_session in trials.items():
        for name, by_t in by_session.items():
            for t in by_t.values():
                bad = [e for e in t.events if e["module"] == MAIN and e["decision"] == "deny"]
                assert not bad, f"Go {version} {name}:\n{show(bad)}"
