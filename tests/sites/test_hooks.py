"""direct_caller_only hooks probed at their call sites in non-std code (gohook.sites.hooks.place_direct_hooks).

Static part: the call sites found in capapp (whose github.com/acme/rawsys
calls syscall.Syscall directly) match what Go's own disassembler,
`go tool objdump`, prints for the non-std packages; functions whose address
is taken as a func value keep their function probe; the planner turns call
sites into hook points. Live part (root): the call-site probe decides the raw
syscall of rawsys, and the standard library's own syscalls hit no probe.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import gofixtures
import pytest

from gohook.events.decode import decode_events
from gohook.gosym import GoBinary
from gohook.plan.build import PlanBuild, build_plan
from gohook.policy.format import CapabilityNames, Mode, load_policy
from gohook.sites.catalog import load_catalog
from gohook.sites.hooks import HookSite, find_hook_sites

RAWSYS = "github.com/acme/rawsys"
DIRECT_SYSCALLS = ("syscall.Syscall", "syscall.Syscall6", "syscall.RawSyscall", "syscall.RawSyscall6")
_OBJDUMP_TEXT = re.compile(r"^TEXT (\S+)\(SB\)")
_OBJDUMP_CALL = re.compile(r"^\s+\S+\s+0x([0-9a-f]+)\s+[0-9a-f]+\s+(CALL|JMP) (\S+)\(SB\)")


def _newest() -> gofixtures.Toolchain:
    chains = gofixtures.toolchains()
    if not chains:
        pytest.skip("no Go toolchain installed: run scripts/setup.sh")
    return max(chains, key=lambda t: t.release)


@pytest.fixture(scope="module", params=["default", "pie"])
def capapp(request: pytest.FixtureRequest) -> tuple[gofixtures.Toolchain, Path]:
    go = _newest()
    return go, gofixtures.build(go, "capapp", request.param)


def _sites(path: Path) -> dict[str, HookSite]:
    report = find_hook_sites(GoBinary.open(path), load_catalog())
    return {s.function.name: s for s in report.sites}


def _objdump_calls(go: gofixtures.Toolchain, path: Path, targets: tuple[str, ...]) -> set[tuple[int, str, str]]:
    """(address, CALL|JMP, target) of calls to targets from non-std packages, as `go tool objdump` prints them."""
    proc = subprocess.run([str(go.go), "tool", "objdump", "-s", r"^(github\.com|gopkg\.in|example\.com|main\.)",
                           str(path)], capture_output=True, text=True, timeout=300, check=True)
    out = set()
    for line in proc.stdout.splitlines():
        m = _OBJDUMP_CALL.match(line)
        if m and m.group(3) in targets:
            out.add((int(m.group(1), 16), m.group(2), m.group(3)))
    return out


def test_call_sites_match_go_tool_objdump(capapp: tuple[gofixtures.Toolchain, Path]) -> None:
    go, path = capapp
    sites = _sites(path)
    found = {(c.address, "CALL" if c.call_len else "JMP", name)
             for name in DIRECT_SYSCALLS if sites[name].call_sites for c in sites[name].call_sites or ()}
    assert found == _objdump_calls(go, path, DIRECT_SYSCALLS)
    [site] = sites["syscall.Syscall"].call_sites or ()
    assert site.caller == f"{RAWSYS}.Getpid" and site.call_len == 5
    b = GoBinary.open(path)
    assert b.image.read(site.address, 1) == b"\xe8"
    assert b.vaddr_to_offset(site.address) == site.file_offset


def test_no_non_std_caller_means_no_probe_and_taken_address_keeps_the_function_probe(
        capapp: tuple[gofixtures.Toolchain, Path]) -> None:
    _go, path = capapp
    sites = _sites(path)
    for name in ("syscall.Syscall6", "syscall.RawSyscall", "syscall.RawSyscall6"):
        assert sites[name].call_sites == (), name
    # net keeps syscall.Listen in a variable (listenFunc): it may be called indirectly, so the function is probed
    assert sites["syscall.Listen"].call_sites is None
    assert all(s.call_sites is None for s in sites.values() if not s.spec.direct_caller_only)


def _plan(path: Path, policy_text: str, tmp_path: Path, mode: Mode = Mode.ENFORCE) -> tuple[GoBinary, PlanBuild]:
    catalog = load_catalog()
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(policy_text)
    policy = load_policy(str(policy_path), CapabilityNames([c.name for c in catalog.capabilities]))
    b = GoBinary.open(path)
    return b, build_plan(b, find_hook_sites(b, catalog), catalog, policy, mode)


POLICY = """version: 1
action: kill
unattributed: allow
default: [all]
modules:
  github.com/acme/rawsys: [{caps}]
"""


def test_planner_makes_one_hook_point_per_call_site(capapp: tuple[gofixtures.Toolchain, Path],
                                                     tmp_path: Path) -> None:
    _go, path = capapp
    _b, build = _plan(path, POLICY.format(caps=""), tmp_path)
    [hook] = [h for h in build.plan.hooks if h.function == "syscall.Syscall"]
    [site] = _sites(path)["syscall.Syscall"].call_sites or ()
    assert (hook.probe, hook.file_offset, hook.call_len, hook.direct_caller_only) == (
        site.address, site.file_offset, 5, True)
    assert build.sites[hook.hook_id].function.name == "syscall.Syscall"
    skipped = dict(build.skipped)
    assert "no direct call from non-std code" in skipped["syscall.Syscall6"]
    assert len({h.hook_id for h in build.plan.hooks}) == len(build.plan.hooks)


# --- live ------------------------------------------------------------------------------------------------


def _root_or_skip() -> None:
    if os.geteuid() != 0:
        if gofixtures.in_ci():
            pytest.fail("live BPF tests need root (CI=true: BPF tests never skip)")
        pytest.skip("SKIPPED LOUDLY: live BPF tests need root (CAP_BPF, CAP_PERFMON): run the suite as root")


@pytest.mark.bpf
@pytest.mark.parametrize("allowed", [False, True], ids=["denied", "allowed"])
def test_call_site_probe_decides_the_raw_syscall_and_std_syscalls_hit_nothing(tmp_path: Path,
                                                                                allowed: bool) -> None:
    _root_or_skip()
    from gohook.bpf.loader import attach
    from gohook.bpf.render import ProgramOptions

    go = _newest()
    app = tmp_path / "capapp"  # a private copy: uprobes are per file and system-wide
    shutil.copy2(gofixtures.build(go, "capapp"), app)
    # a raw getpid needs `syscall` and the capability of its number (system.read)
    b, build = _plan(app, POLICY.format(caps="syscall, system.read" if allowed else "syscall"), tmp_path)
    [hook] = [h for h in build.plan.hooks if h.function == "syscall.Syscall"]
    infile = tmp_path / "in.txt"
    infile.write_text("hello")
    with attach(build.plan, options=ProgramOptions(report_allowed=True)) as att:
        quiet = subprocess.run([str(app), "read", str(infile)], capture_output=True, text=True, timeout=60)
        after_read = att.counters()
        raw = subprocess.run([str(app), "rawsyscall"], capture_output=True, text=True, timeout=60)
        events, deadline = [], time.monotonic() + 3
        while time.monotonic() < deadline and not any(e.hook_id == hook.hook_id for e in events):
            events += decode_events(att.poll(50), att.options.layout)
        counters = att.counters()
    assert quiet.returncode == 0, quiet.stderr
    # the read made every kind of std syscall; none reached a direct_caller_only probe
    assert after_read.ignored == 0
    mine = [e for e in events if e.hook_id == hook.hook_id]
    assert mine
    for ev in mine:
        assert build.plan.module_name(ev.module) == RAWSYS
        assert b.function_at(ev.static_frames[0] - 1).name == f"{RAWSYS}.Getpid"
    if allowed:
        assert raw.returncode == 0 and raw.stdout.startswith("pid "), raw
        assert {ev.decision.label for ev in mine} == {"allow"} and counters.denied == 0
    else:
        assert raw.returncode == -9, raw  # killed before syscall.Syscall ran
        assert "deny" in {ev.decision.label for ev in mine} and counters.denied == 1
