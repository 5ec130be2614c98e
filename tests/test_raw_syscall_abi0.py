"""Live: raw system calls through golang.org/x/sys/unix are judged by the number they really pass (issue 17 §4).

x/sys/unix's Go wrappers call its assembly stubs (unix.RawSyscall, unix.Syscall, ...) with Go's ABI0: the
number at [RSP], the arguments above it, RAX holding whatever the wrapper had (unix.socket's domain, 16 for
AF_NETLINK; Uname's buffer pointer). The stubs tail-jump to syscall·RawSyscall(SB), the ABI0 wrapper of the
hooked syscall.RawSyscall, and the raw-call hook sits on that JMP: the number is at [RSP+8] there
(HookPoint.syscall_stack, HOOK_RAW_STACK). Before, the hook read RAX: the socket call was reported as 16 and
charged ioctl's system.modify, and uname as a heap address with no capability of its own.

The fixture is built against the golang.org/x/sys each toolchain vendors (src/cmd/vendor), default and stripped
(ABI0-ness must not need symbols). Oracles, not gohook's tables: the SYS_* constants of that x/sys's
zsysnum_linux_amd64.go for the numbers; the fixture's own stdout for which calls ran.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import gofixtures
import pytest
from attach_helpers import STATUS_KILLED, Event, attach_cmd, policy_file, private_copy

XSYS = "golang.org/x/sys"
APP = "example.com/xsysapp"
MAIN = """package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func main() {
	var u unix.Utsname
	fmt.Println("uname", unix.Uname(&u))
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, 0)
	fmt.Println("socket", err)
	if err == nil {
		unix.Close(fd)
	}
	fmt.Println("done")
}
"""
LIVE_GO = ("1.27", "1.19")
MODES = {"default": (), "stripped": ("-ldflags=-s -w",)}


@pytest.fixture(scope="module", autouse=True)
def _root() -> None:
    gofixtures.require_root("live attach tests")


@pytest.fixture(scope="module", params=[(v, m) for v in LIVE_GO for m in MODES], ids=lambda p: f"go{p[0]}-{p[1]}")
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """(the fixture binary, x/sys's SYS_* numbers) for one toolchain and build mode."""
    version, mode = request.param
    toolchain = gofixtures.live_toolchain(version)
    xsys, go_version = gofixtures.vendored_xsys(toolchain)
    root = tmp_path_factory.mktemp(f"abi0-{version}-{mode}")
    shutil.copytree(xsys, root / "xsys")
    (root / "xsys" / "go.mod").write_text(f"module golang.org/x/sys\n\ngo {go_version}\n")
    app = root / "app"
    app.mkdir()
    (app / "main.go").write_text(MAIN)
    (app / "go.mod").write_text(f"module {APP}\n\ngo {go_version}\n\nrequire golang.org/x/sys v0.0.0\n\n"
                                "replace golang.org/x/sys => ../xsys\n")
    out = root / f"xsysapp-{mode}"
    proc = subprocess.run([str(toolchain.go), "build", *MODES[mode], "-o", str(out), "."], cwd=app,
                          env=gofixtures.go_env(toolchain), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return out, gofixtures.xsys_numbers(xsys / "unix")


def _raw(events: list[Event], wrapper: str) -> list[Event]:
    """The raw-call events (function syscall.*) whose caller frame is x/sys/unix's `wrapper`."""
    return [e for e in events if e["function"].startswith("syscall.")
            and any(fr["function"] == f"golang.org/x/sys/unix.{wrapper}" for fr in e["stack"])]


def test_learn_reports_the_numbers_xsys_passes(built: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    """Learn mode: unix.socket's raw call carries SYS_SOCKET (41, not AF_NETLINK's 16) and is charged
    network.listen (a SOCK_RAW socket); Uname's carries SYS_UNAME (63, not its buffer's address) and is
    system.read."""
    binary, numbers = built
    app = private_copy(binary, tmp_path)
    res = attach_cmd(app, None, [str(app)], tmp_path, mode="learn", extra=["-o", str(tmp_path / "learned.yaml")])
    assert res.status == 0, res.stderr
    assert "done" in res.child_stdout, res.child_stdout
    socket, uname = _raw(res.events, "socket"), _raw(res.events, "Uname")
    assert socket and uname, res.events
    assert {e["argument"] for e in socket} == {str(numbers["SYS_SOCKET"])}, socket
    assert {e["argument"] for e in uname} == {str(numbers["SYS_UNAME"])}, uname
    assert {e["capability"] for e in socket} == {"syscall", "network.listen"}, socket
    assert {e["capability"] for e in uname} == {"syscall", "system.read"}, uname
    assert all(e["module"] == XSYS for e in socket + uname), socket + uname


def test_enforce_kills_at_the_call_whose_number_needs_an_ungranted_capability(
        built: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    """x/sys granted `syscall` and system.read: uname runs, the raw socket is killed for network.listen with
    its number 41. Granted `syscall` and network.listen instead: killed at uname (system.read, 63), before
    the socket."""
    binary, numbers = built
    app = private_copy(binary, tmp_path)
    res = attach_cmd(app, policy_file(tmp_path / "nosock.yaml", {XSYS: ["syscall", "system.read"], APP: []}),
                     [str(app)], tmp_path)
    assert res.status == STATUS_KILLED, res.stderr
    assert "uname <nil>" in res.child_stdout and not any(ln.startswith("socket") for ln in res.child_stdout), \
        res.child_stdout
    [deny] = [e for e in res.events if e["decision"] == "deny"]
    assert (deny["capability"], deny["module"], deny["argument"]) == \
        ("network.listen", XSYS, str(numbers["SYS_SOCKET"])), deny
    res = attach_cmd(app, policy_file(tmp_path / "nouname.yaml", {XSYS: ["syscall", "network.listen"], APP: []}),
                     [str(app)], tmp_path)
    assert res.status == STATUS_KILLED, res.stderr
    assert not any(ln.startswith(("uname", "socket")) for ln in res.child_stdout), res.child_stdout
    [deny] = [e for e in res.events if e["decision"] == "deny"]
    assert (deny["capability"], deny["module"], deny["argument"]) == \
        ("system.read", XSYS, str(numbers["SYS_UNAME"])), deny


#: half the kernel's BPF_COMPLEXITY_LIMIT_INSNS, as tests/bpf/test_verifier_budget.py holds every program to
VERIFIED_BUDGET = 1_000_000 // 2


@pytest.mark.parametrize("shared", [True, False], ids=["shared-handler", "inlined-handler"])
def test_stack_raw_hooks_are_planned_at_the_stub_jumps_and_load_within_the_budget(
        built: tuple[Path, dict[str, int]], shared: bool) -> None:
    """The raw-call hook points on x/sys's stubs (a JMP, E9/EB, into syscall's ABI0 wrappers) read the number
    at [RSP+8], those on a CALL into an ABI0 function at [RSP], those on a call of a Go function RAX (the
    instruction bytes are the oracle); their entry programs (HOOK_RAW_STACK), with the handler shared or
    inlined into each, pass the verifier within the budget of tests/bpf/test_verifier_budget.py."""
    from gohook.bpf.abi import HookKind
    from gohook.bpf.loader import attach
    from gohook.bpf.render import ProgramOptions
    from gohook.gosym import GoBinary
    from gohook.plan.build import build_plan
    from gohook.policy.format import Mode, Policy
    from gohook.sites.catalog import load_catalog
    from gohook.sites.hooks import find_hook_sites

    binary_path, _numbers = built
    binary = GoBinary.open(binary_path)
    plan = build_plan(binary, find_hook_sites(binary, load_catalog()), load_catalog(), Policy(path="p.yaml"),
                      Mode.ENFORCE).plan
    raw = [h for h in plan.hooks if h.kind is HookKind.RAWCALL]
    stubs = []
    for h in raw:
        op = binary.image.read(h.probe, 1)[0]
        callee = binary.function_at(h.probe)
        assert callee is not None
        if op in (0xE9, 0xEB):
            assert h.syscall_stack == 8 and h.call_len == 0, (h, callee.name)
            stubs.append(callee.name)
        elif h.syscall_stack is None:
            assert op == 0xE8, h
        else:
            assert (op, h.syscall_stack) == (0xE8, 0), h
    assert {"golang.org/x/sys/unix.RawSyscall", "golang.org/x/sys/unix.Syscall"} <= {
        n.removesuffix(".abi0") for n in stubs} or binary.is_stripped, stubs
    assert len(stubs) >= 2, raw
    with attach(plan, options=ProgramOptions(shared_handler=shared), attach_probes=False) as att:
        programs = {s.name: s.verified_insns for s in att.program_stats()}
    for h in raw:
        assert 0 < programs[f"gohook_hook_{h.hook_id}"] < VERIFIED_BUDGET, (h, programs)
    assert max(programs.values()) < VERIFIED_BUDGET, programs


def test_the_stack_offset_renders_as_hook_raw_stack_and_register_sites_stay_hook_raw() -> None:
    """HookPoint.syscall_stack None renders HOOK_RAW as before; 0 and 8 HOOK_RAW_STACK with the offset; any
    other offset is refused (the number is at [RSP] at a CALL, [RSP+8] at a stub's JMP, nowhere else)."""
    from dataclasses import replace

    from gohook.bpf.abi import ArgKind, HookKind
    from gohook.bpf.errors import PlanTableError
    from gohook.bpf.render import hook_macro
    from gohook.plan.model import ArgRead, HookPoint

    reg = HookPoint(hook_id=5, function="syscall.RawSyscall", entry=0x401000, probe=0x401008, file_offset=0x1008,
                    capability=2, arg=ArgRead(ArgKind.INT, (0,)), direct_caller_only=True, call_len=5,
                    kind=HookKind.RAWCALL, syscall_args=3)
    assert hook_macro(reg, 3) == "HOOK_RAW(5, 0x401008ULL, 2, 3, 1, 5)"
    assert hook_macro(replace(reg, syscall_stack=0), 3) == "HOOK_RAW_STACK(5, 0x401008ULL, 2, 3, 1, 5, 0)"
    assert hook_macro(replace(reg, call_len=0, syscall_args=6, syscall_stack=8), 3) == \
        "HOOK_RAW_STACK(5, 0x401008ULL, 2, 6, 1, 0, 8)"
    with pytest.raises(PlanTableError, match="RSP"):
        hook_macro(replace(reg, syscall_stack=16), 3)
