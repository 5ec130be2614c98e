"""The environment and the process's memory through /proc files (issue 12 §2, technique 14 of docs/evasion.md).

github.com/cfgsrc/envfile (testdata/go/evasion/deps/procenv) is granted what its techniques need to reach
the open (files.read, files.write for its symlink and the write-open of /proc/self/mem, system.read for
getpid/gettid, system.modify for chdir) but neither env.read nor tamper. It reads the environment as a file
under every name the kernel accepts for it, and writes its own code through /proc/self/mem. gohook decides
from the file the kernel opened (gohook/bpf/c/lib/fileopen.h: procfs `environ` is env.read, procfs `mem`
opened for writing is tamper), so no spelling of the path matters.

One background `gohook attach --json` session per policy (tests/attach_helpers.py), each on a private copy
of the evasion program; every technique runs under each, and on an unhooked copy (the control: the
technique does print the secret when nobody watches):

- enforce: killed (137); the secret never reaches stdout, and nothing at all is printed after the open
  (the SIGKILL is delivered when openat returns to user space, so no read(2) of the file ever runs); the
  deny event names envfile, env.read (tamper), through the stack;
- audit: the run completes; the audit event names envfile and the capability;
- granted (env.read and tamper added): the run completes and prints the value, with no deny (no false kill);
- nosys (envfile without system.modify): writing its own /proc/self/comm, a write-open of another procfs
  file, is killed as system.modify;
- main's own work under every session is never killed.

Runs as root; in CI (CI=true) nothing here skips.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gofixtures
import pytest
from attach_helpers import KILLED, Ran, Session, for_pid, policy_file, private_copy, run, sessions, show

pytestmark = pytest.mark.bpf

MAIN = "example.com/evasion"
ENVFILE = "github.com/cfgsrc/envfile"
GO_VERSION = "1.27.3"
SECRET_NAME, SECRET_VALUE = "GOHOOK_PROC_SECRET", "pr0c-s3cr3t-9d41"
#: what envfile needs to get to its opens; never env.read or tamper
GRANT = ["files.read", "files.write", "system.read", "system.modify"]
#: session -> (gohook --mode, envfile's capabilities)
SESSIONS: dict[str, tuple[str, list[str]]] = {
    "enforce": ("enforce", GRANT),
    "audit": ("audit", GRANT),
    "granted": ("enforce", [*GRANT, "env.read", "tamper"]),
    "nosys": ("enforce", ["files.read", "files.write"]),  # for procsys-write: no system.modify
}
#: technique -> (capability, the variant's row in docs/evasion.md)
TECHNIQUES: dict[str, tuple[str, str]] = {
    "procenv-read": ("env.read", "`os.ReadFile(\"/proc/self/environ\")`"),
    "procenv-relative": ("env.read", "`os.Chdir(\"/proc/self\")` then `os.ReadFile(\"environ\")`"),
    "procenv-thread": ("env.read", "`/proc/thread-self/environ`"),
    "procenv-task": ("env.read", "`/proc/self/task/<gettid>/environ`"),
    "procenv-pid": ("env.read", "`/proc/<getpid>/environ`"),
    "procenv-dirfd": ("env.read", "`syscall.Openat(dirfd of /proc/self, \"environ\")`"),
    "procenv-symlink": ("env.read", "a symlink of its own to `/proc/self/environ`"),
    "procmem-write": ("tamper", "`/proc/self/mem` opened O_RDWR, one byte of its own code written back"),
}
#: techniques of the "nosys" session: (capability, variant)
NOSYS: dict[str, tuple[str, str]] = {
    "procsys-write": ("system.modify", "`os.WriteFile(\"/proc/self/comm\", ...)` (process state through /proc)"),
}
WHY = ("decided in the kernel from the file the open returned (procfs `environ`: env.read; procfs `mem` for "
       "writing: tamper), not from the path string; the SIGKILL lands when the open returns, before any read")

Event = dict[str, Any]
UNHOOKED = {"env.read": "the secret printed", "tamper": "the byte written", "system.modify": "the name written"}


@dataclass
class Trial:
    """One technique under one session, and on an unhooked copy."""

    name: str
    ran: Ran
    control: Ran
    events: list[Event] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.name}: {self.ran}\ncontrol {self.control}\n{show(self.events)}"


@pytest.fixture(scope="module", autouse=True)
def _root() -> None:
    gofixtures.require_root("the /proc boundary suite's uprobes")


def _args(technique: str, scratch: Path) -> list[str]:
    if technique in ("procmem-write", "procsys-write"):
        return [technique]
    if technique == "procenv-symlink":
        scratch.mkdir(parents=True)
        return [technique, str(scratch), SECRET_NAME]
    if technique == "main-write":
        scratch.mkdir(parents=True)
        return [technique, str(scratch / "out.txt")]
    return [technique, SECRET_NAME]


@pytest.fixture(scope="module")
def proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Trial]]]:
    """Every technique (and main-write) under every session of SESSIONS: trials by session and technique."""
    root = tmp_path_factory.mktemp("boundary-proc")
    built = gofixtures.build(gofixtures.live_toolchain(GO_VERSION), "evasion", "default")
    control = private_copy(built, root / "control", "evasion-proc-control")
    specs: dict[str, Session] = {}
    for name, (mode, granted) in SESSIONS.items():
        work = root / name
        work.mkdir()
        policy = policy_file(work / "policy.yaml", {MAIN: ["all"], ENVFILE: granted})
        specs[name] = Session(private_copy(built, work, f"evasion-proc-{name}"), policy, work, mode=mode)
    env = {SECRET_NAME: SECRET_VALUE}
    runs = 0
    ran: dict[str, dict[str, tuple[Ran, Ran]]] = {name: {} for name in specs}
    with sessions(*specs.values()):
        for technique in [*TECHNIQUES, *NOSYS, "main-write"]:
            for name, session in specs.items():
                if (name == "nosys") != (technique in NOSYS) and technique != "main-write":
                    continue
                runs += 1
                enforced = run(session.binary, *_args(technique, root / "scratch" / f"r{runs}"), env=env)
                runs += 1
                unhooked = run(control, *_args(technique, root / "scratch" / f"r{runs}"), env=env)
                ran[name][technique] = (enforced, unhooked)
    yield {name: {t: Trial(t, r, c, for_pid(specs[name].events, r.pid)) for t, (r, c) in by.items()}
           for name, by in ran.items()}


def _effect(technique: str, ran: Ran) -> bool:
    """The technique's side effect is in its output: the secret printed, or the code byte written."""
    if technique == "procmem-write":
        return "wrote 1 byte" in ran.stdout
    if technique == "procsys-write":
        return "renamed itself" in ran.stdout
    return f"envfile: {SECRET_NAME}" not in ran.stdout and SECRET_VALUE in ran.stdout


def _events(trial: Trial, decision: str, capability: str) -> list[Event]:
    return [e for e in trial.events if e["decision"] == decision and e["capability"] == capability
            and e["module"] == ENVFILE and e["via"] == "stack" and e["function"].startswith("syscall:open")]


@pytest.mark.parametrize("technique", [*TECHNIQUES, *NOSYS])
def test_enforce_kills_before_the_file_is_read(proc: dict[str, dict[str, Trial]], record: Callable[..., None],
                                               technique: str) -> None:
    capability, variant = {**TECHNIQUES, **NOSYS}[technique]
    t = proc["nosys" if technique in NOSYS else "enforce"][technique]
    assert t.control.returncode == 0 and _effect(technique, t.control), f"the technique fails unhooked:\n{t}"
    assert t.ran.returncode == KILLED, f"not killed:\n{t}"
    # nothing printed after the open: no read of the file ran, let alone the secret's printing
    assert t.ran.stdout == "" and SECRET_VALUE not in t.ran.stdout + t.ran.stderr, str(t)
    denied = _events(t, "deny", capability)
    assert denied, f"no deny of {capability} charged to {ENVFILE} via the stack:\n{t}"
    ev = denied[0]
    assert any(f["module"] == ENVFILE for f in ev["stack"]), show([ev])
    if capability == "env.read":
        assert ev["argument"] and ev["argument"].endswith(("environ", "/x")), show([ev])
    # no other kill: the capabilities envfile holds were allowed on the way
    assert all(e["capability"] == capability for e in t.events if e["decision"] == "deny"), show(t.events)
    arg = ev["argument"] if ev["argument"] and not ev["argument"].startswith("/tmp/") else "DIR/x"
    # process and thread numbers change from run to run: the docs row names them
    arg = re.sub(r"^/proc/\d+/", "/proc/PID/", re.sub(r"/task/\d+/", "/task/TID/", arg))
    record(14, variant, "blocked", WHY,
           f"deny {capability} at `{ev['function']}` `{arg}`: {ENVFILE}, via stack; killed (SIGKILL) with "
           f"nothing printed (unhooked: {UNHOOKED[capability]})")


@pytest.mark.parametrize("technique", list(TECHNIQUES))
def test_audit_names_the_module_and_the_run_completes(proc: dict[str, dict[str, Trial]], technique: str) -> None:
    capability, _variant = TECHNIQUES[technique]
    t = proc["audit"][technique]
    assert t.ran.returncode == 0 and _effect(technique, t.ran), str(t)
    assert _events(t, "audit", capability), f"no audit of {capability} charged to {ENVFILE}:\n{t}"


@pytest.mark.parametrize("technique", list(TECHNIQUES))
def test_granted_capability_runs_to_completion(proc: dict[str, dict[str, Trial]], technique: str) -> None:
    """With env.read and tamper granted the same code prints the value: the judge is not a blanket deny."""
    t = proc["granted"][technique]
    assert t.ran.returncode == 0 and _effect(technique, t.ran), str(t)
    assert not [e for e in t.events if e["decision"] != "allow"], show(t.events)


@pytest.mark.parametrize("session", list(SESSIONS))
def test_main_own_work_is_never_killed(proc: dict[str, dict[str, Trial]], session: str) -> None:
    """main (granted all) writes its file; the runtime's and the standard library's own opens of /proc and
    /sys files at start-up (hpage_pmd_size, cgroup limits) carry no capability or are allowed."""
    t = proc[session]["main-write"]
    assert t.ran.returncode == 0, str(t)
    assert not [e for e in t.events if e["decision"] != "allow"], show(t.events)
