"""Probe integrity (gohook.bpf.integrity): maps parsing, run-time probe addresses, reading, live checks.

The address computation runs on real processes of a fixture binary (non-PIE:
every address must be the probe's static address; PIE: static + one load
bias for all), and the bytes read there must be the file's bytes at the
probe's offset. Live: with the plan's uprobes attached to a process every probe
reads 0xCC and check() finds nothing; a probe byte written back through
/proc/PID/mem (the third way to take a probe out) is found, and only that
one; with the probes detached every probe is reported. Runs as root; in CI
(CI=true) nothing skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import gofixtures
import pytest
from attach_helpers import Waiting, private_copy

from gohook.bpf.integrity import (
    INT3,
    FileId,
    IntegrityChecker,
    Mapping,
    ProcessReader,
    parse_maps,
    plan_probes,
    probe_addresses,
)
from gohook.bpf.loader import attach
from gohook.plan.model import EnforcementPlan
from gohook.policy.format import Mode
from gohook.session import AttachOptions, prepare

MAPS = """\
00400000-004b3000 r-xp 00000000 fd:01 1835017                            /work/bin/app
004b3000-00563000 r--p 000b3000 fd:01 1835017                            /work/bin/app
00563000-0057a000 rw-p 00163000 fd:01 1835017                            /work/bin/app (deleted)
0057a000-005b5000 rw-p 00000000 00:00 0 \n\
c000000000-c004000000 rw-p 00000000 00:00 0                              [heap]
7ffd1c5e4000-7ffd1c605000 rw-p 00000000 00:00 0                          [stack]
"""


@pytest.fixture(scope="module", autouse=True)
def _root() -> None:
    gofixtures.require_root("process_vm_readv of another process and uprobes")


@pytest.fixture(scope="module")
def newest_go() -> gofixtures.Toolchain:
    return gofixtures.live_toolchain("1.27")


def _plan(binary: Path) -> EnforcementPlan:
    return prepare(AttachOptions(binary=str(binary), mode=Mode.LEARN))[1].plan


def _static(plan: EnforcementPlan) -> dict[int, int]:
    """file offset -> static address of every probe of plan."""
    out = {h.file_offset: h.probe for h in plan.hooks}
    if plan.provenance is not None:
        out.update({r.file_offset: r.address for r in plan.provenance.created})
    if plan.sentinel is not None:
        out.update({r.file_offset: r.address for r in plan.sentinel.cgocall_returns})
    return out


def _mem(pid: int, address: int) -> int:
    with open(f"/proc/{pid}/mem", "rb") as f:
        f.seek(address)
        return f.read(1)[0]


def test_parse_maps_reads_every_field() -> None:
    maps = parse_maps(MAPS)
    assert len(maps) == 6
    assert maps[0] == Mapping(0x400000, 0x4B3000, "r-xp", 0, (0xFD, 1), 1835017, "/work/bin/app")
    assert maps[2].path == "/work/bin/app (deleted)" and maps[2].offset == 0x163000
    assert maps[3].path == "" and maps[3].inode == 0
    assert maps[4].start == 0xC000000000 and maps[4].path == "[heap]"
    fid = FileId((0xFD, 1), 1835017, "/elsewhere/app")
    assert [fid.matches(m) for m in maps] == [True, True, True, False, False, False]
    by_path = FileId((8, 1), 99, "/work/bin/app")  # other device numbers (overlayfs): the path decides
    assert [by_path.matches(m) for m in maps][:3] == [True, True, True]


def test_probe_addresses_prefer_the_executable_mapping_and_say_when_nothing_covers() -> None:
    from gohook.bpf.integrity import Probe

    maps = parse_maps(MAPS)
    fid = FileId((0xFD, 1), 1835017, "/work/bin/app")
    probes = [Probe(0x1000, "a"), Probe(0xB3010, "b"), Probe(0x200000, "c")]
    assert probe_addresses(probes, maps, fid) == [0x401000, 0x4B3010, None]
    # a page mapped twice (end of text, start of rodata): the executable one wins
    twice = [Mapping(0x4B3000, 0x4B4000, "r--p", 0xB3000, (0xFD, 1), 1835017, ""), *maps]
    twice.append(Mapping(0x900000, 0x901000, "r-xp", 0xB3000, (0xFD, 1), 1835017, ""))
    assert probe_addresses(probes, twice, fid)[1] == 0x900010
    assert probe_addresses(probes, maps[3:], fid) is None  # the binary is not mapped at all


@pytest.mark.parametrize("mode", ["default", "pie"])
def test_run_time_addresses_of_a_real_process_are_static_plus_bias_and_hold_the_files_bytes(
        newest_go: gofixtures.Toolchain, tmp_path: Path, mode: str) -> None:
    app = private_copy(gofixtures.build(newest_go, "attachapp", mode), tmp_path / "bin")
    plan = _plan(app)
    probes = plan_probes(plan)
    static = _static(plan)
    assert len(probes) == len(static) and len(probes) > 10
    proc = Waiting(app, "wait")
    try:
        maps = parse_maps(Path(f"/proc/{proc.pid}/maps").read_text())
        addresses = probe_addresses(probes, maps, FileId.of(app))
        assert addresses is not None and None not in addresses
        # one load bias for every probe: none without PIE, a page-aligned one with it (Go links PIE
        # binaries at 0x400000 since 1.21 or so: not at 0)
        biases = {a - static[p.file_offset] for p, a in zip(probes, addresses, strict=True)}
        assert len(biases) == 1, biases
        [bias] = biases
        assert (bias != 0) == (mode == "pie") and bias % 4096 == 0
        raw = app.read_bytes()
        expected = [raw[p.file_offset] for p in probes]
        assert [_mem(proc.pid, a) for a in addresses] == expected
        assert ProcessReader().read_bytes(proc.pid, addresses) == expected
        assert INT3 not in expected  # nothing attached: the check would report every probe
        assert len(IntegrityChecker(plan, app).check(proc.pid) or ()) == len(probes)
    finally:
        proc.kill()


def test_reader_marks_unreadable_addresses_and_goes_on(tmp_path: Path) -> None:
    sleep = shutil.which("sleep")
    assert sleep is not None
    proc = subprocess.Popen([sleep, "30"])
    try:
        deadline = time.monotonic() + 10
        while True:  # sleep's text, once it is exec'd (not Python's, not [vsyscall])
            maps = parse_maps(Path(f"/proc/{proc.pid}/maps").read_text())
            found = [m for m in maps if "x" in m.perms and m.path == os.path.realpath(sleep)]
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        [text] = found
        reader = ProcessReader()
        got = reader.read_bytes(proc.pid, [text.start, 0x10, text.start + 1, 0x20, text.start + 2])
        assert got is not None
        assert got[1] is None and got[3] is None
        assert got[0::2] == [_mem(proc.pid, text.start + i) for i in range(3)]
        many = [text.start + i for i in range(3000)]  # more than one process_vm_readv call (IOV_MAX)
        assert reader.read_bytes(proc.pid, many) == [_mem(proc.pid, a) for a in many]
    finally:
        proc.kill()
        proc.wait()
    assert reader.read_bytes(proc.pid, [text.start]) is None  # gone


def test_check_skips_processes_that_do_not_map_the_binary(newest_go: gofixtures.Toolchain, tmp_path: Path) -> None:
    app = private_copy(gofixtures.build(newest_go, "attachapp", "default"), tmp_path / "bin")
    checker = IntegrityChecker(_plan(app), app)
    proc = subprocess.Popen(["sleep", "30"])
    try:
        assert checker.check(proc.pid) is None
    finally:
        proc.kill()
        proc.wait()
    assert checker.check(proc.pid) is None


@pytest.mark.bpf
def test_attached_probes_pass_and_a_byte_written_back_through_proc_mem_is_found(
        newest_go: gofixtures.Toolchain, tmp_path: Path) -> None:
    app = private_copy(gofixtures.build(newest_go, "attachapp", "default"), tmp_path / "bin")
    plan = _plan(app)
    checker = IntegrityChecker(plan, app)
    proc = Waiting(app, "wait")
    try:
        assert len(checker.check(proc.pid) or ()) == len(checker.probes)
        with attach(plan, pids=[proc.pid]) as att:
            assert att.probe_count == len(checker.probes)
            assert checker.check(proc.pid) == []
            victim = checker.probes[len(checker.probes) // 2]
            address = _static(plan)[victim.file_offset]  # not PIE: the static address
            original = app.read_bytes()[victim.file_offset]
            assert _mem(proc.pid, address) == INT3
            fd = os.open(f"/proc/{proc.pid}/mem", os.O_WRONLY)
            try:
                os.pwrite(fd, bytes([original]), address)
            finally:
                os.close(fd)
            [t] = checker.check(proc.pid)
            assert (t.pid, t.probe, t.address, t.found) == (proc.pid, victim, address, original)
            assert t.describe() == f"probe removed at {victim.what}: byte {original:#04x} instead of int3 at " \
                                   f"{address:#x}"
        assert len(checker.check(proc.pid) or ()) == len(checker.probes)  # detached: every probe is gone
    finally:
        proc.kill()
