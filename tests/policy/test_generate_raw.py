"""`gohook policy generate` grants what the kernel charges raw system calls with, and nothing it never would
(issue 17 §4).

A raw system call is charged `syscall` and the capability of its number (gohook/bpf/c/lib/sysrules.h): a policy
that granted golang.org/x/sys `syscall` only killed its unix.Socket. The fixture (tests/static/rawapp.py) makes
raw calls through x/sys and through syscall.Syscall6 in modules of its own, with constant flags and without.

Static: the generated grants are exactly each module's reach, `any` for a capability its raw calls need (the
kernel checks a raw call against unscoped grants only). Live (root): the generated policy, enforced with action
kill, runs the program to its end; without network.listen for x/sys it is killed at the raw socket, number 41
(the fixture's stdout and gohook's events are the oracle); what learn mode sees each module use lies within the
static reach, and is that reach where the kernel's rule decides by constants (the kernel is the oracle).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gofixtures
import pytest
import yaml
from attach_helpers import STATUS_KILLED, attach_cmd, private_copy
from gofixtures import Toolchain
from static.rawapp import EXPECTED, MAIN_MODULE, XSYS, XSYS_ALLOWED, XSYS_NEEDED, build_rawapp

from gohook.policy.format import CapabilityNames, Policy, parse_policy
from gohook.sites.catalog import load_catalog

VOCAB = CapabilityNames([c.name for c in load_catalog().capabilities])
LIVE_GO = ("1.27", "1.19")


@pytest.fixture(scope="module", params=LIVE_GO, ids=lambda v: f"go{v}")
def rawapp(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    toolchain: Toolchain = gofixtures.live_toolchain(request.param)
    return build_rawapp(toolchain, tmp_path_factory.mktemp(f"rawapp-{toolchain.version}"))


def generate(binary: Path, out: Path) -> Policy:
    """`gohook policy generate BINARY -o OUT`, as a user runs it."""
    done = subprocess.run([sys.executable, "-m", "gohook", "policy", "generate", str(binary), "-o", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return parse_policy(out.read_text(), VOCAB, str(out))


def test_generate_grants_exactly_the_raw_calls_charges(rawapp: Path, tmp_path: Path) -> None:
    """Each module is granted exactly what its raw calls are charged (x/sys: socket's network.listen, both
    opens, getpid's system.read), unscoped: reader's files.read is `any` although its os.ReadFile passes a
    constant path, since its raw openat needs files.read for every path."""
    out = tmp_path / "generated.yaml"
    policy = generate(rawapp, out)
    for module, caps in EXPECTED.items():
        assert policy.allowed_of(module) == caps, (module, policy.allowed_of(module))
    assert XSYS_NEEDED <= policy.allowed_of(XSYS) <= XSYS_ALLOWED, policy.allowed_of(XSYS)
    for module in (*EXPECTED, XSYS):
        assert policy.scopes_of(module) == {}, (module, policy.scopes_of(module))
    text = out.read_text()
    assert "# static: files.read: any: its raw system calls need it for every argument" in text
    assert "depends on flags: not constant here" in text


# --- live ------------------------------------------------------------------------------------------------------


def _live(app: Path, tmp_path: Path) -> tuple[Path, Path]:
    gofixtures.require_root("live attach tests")
    work = tmp_path / "work"
    work.mkdir()
    return private_copy(app, tmp_path / "bin"), work


@pytest.mark.bpf
def test_generated_policy_runs_the_raw_calls_and_kills_without_their_capability(rawapp: Path, tmp_path: Path) -> None:
    """Enforced (action kill), the generated policy lets every raw call run (no false kill: x/sys's raw socket
    is charged network.listen for its number 41, and allowed). The same policy without network.listen for
    x/sys kills the program at that socket, before it prints its result."""
    app, work = _live(rawapp, tmp_path)
    generated = tmp_path / "generated.yaml"
    policy = generate(app, generated)
    assert policy.action.value == "kill"
    res = attach_cmd(app, generated, [str(app), str(work)], tmp_path)
    assert res.status == 0, res.stderr
    assert res.child_stdout[-1] == "done" and "socket <nil>" in res.child_stdout, res.child_stdout
    assert [e for e in res.events if e["decision"] != "allow"] == []
    charged = {(e["module"], e["capability"], e["argument"]) for e in res.events}
    assert (XSYS, "network.listen", "41") in charged, sorted(charged)
    assert ("example.com/writer", "files.write", str(work / "written")) in charged, sorted(charged)
    assert (work / "created").exists() and (work / "written").exists()

    doc = yaml.safe_load(generated.read_text())
    doc["modules"][XSYS] = [c for c in doc["modules"][XSYS] if c != "network.listen"]
    withheld = tmp_path / "nosocket.yaml"
    withheld.write_text(yaml.safe_dump(doc))
    work2 = tmp_path / "work2"
    work2.mkdir()
    res = attach_cmd(app, withheld, [str(app), str(work2)], tmp_path)
    assert res.status == STATUS_KILLED, res.stderr
    assert not any(line.startswith("socket") for line in res.child_stdout), res.child_stdout
    [deny] = [e for e in res.events if e["decision"] == "deny"]
    assert (deny["capability"], deny["module"], deny["argument"]) == ("network.listen", XSYS, "41"), deny
    assert not (work2 / "created").exists()


@pytest.mark.bpf
def test_what_learn_sees_lies_within_the_static_reach(rawapp: Path, tmp_path: Path) -> None:
    """Learn mode (the kernel's charges) grants each module a subset of its static reach; where every argument
    the rule reads is a constant (reader, writer, quiet), exactly that reach; x/sys at least what main's calls
    need. The static reach is the generated policy's."""
    app, work = _live(rawapp, tmp_path)
    static = generate(app, tmp_path / "generated.yaml")
    learned_path = tmp_path / "learned.yaml"
    res = attach_cmd(app, None, [str(app), str(work)], tmp_path, mode="learn", extra=["-o", str(learned_path)])
    assert res.status == 0 and res.child_stdout[-1] == "done", (res.stderr, res.child_stdout)
    learned = parse_policy(learned_path.read_text(), VOCAB, str(learned_path))
    for module in (*EXPECTED, XSYS):
        assert learned.allowed_of(module) <= static.allowed_of(module), \
            (module, learned.allowed_of(module) - static.allowed_of(module))
    for module in ("example.com/reader", "example.com/writer", "example.com/quiet"):
        assert learned.allowed_of(module) == EXPECTED[module], (module, learned.allowed_of(module))
    assert learned.allowed_of(XSYS) >= XSYS_NEEDED, learned.allowed_of(XSYS)
    assert learned.allowed_of(MAIN_MODULE) == frozenset()
