"""gohook.bpf.exechold: new processes held before their first instruction, live on this kernel.

Oracles outside gohook: /proc/PID/stat says a held child is stopped (state T) and a marker file the
child's program would create is absent; os.stat of the exec'd file gives the key the kernel must report;
pahole reads the kernel struct offsets with its own BTF decoder; gcc lays out the shared structs of
exechold.h for the host.

Other processes run on this machine: every live test scopes holding, either to a cgroup v2 group made
here (only the test's child is moved into it, by a shell that then execs the program) or to a unique
basename (names mode), and kills whatever it held in a finally block. The exec'd program is a copy of
/bin/touch under a unique name: `prog MARKER` creates MARKER, so it shows whether the program ran.
The module's holder exempts a stand-in agent (a `sleep` process), not pytest: pytest is the parent of
the test children and the agent's children are never held.
"""

from __future__ import annotations

import contextlib
import ctypes as ct
import itertools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import gofixtures
import pytest

from gohook.bpf import exechold
from gohook.bpf.btf import VMLINUX, Btf, BtfError, Member
from gohook.bpf.errors import BpfError
from gohook.bpf.exechold import (
    EXECHOLD_FIELDS,
    ExecEvent,
    ExecHold,
    ExecKey,
    FileKey,
    HeldExec,
    Verdict,
    exechold_offsets,
    kernel_dev,
)
from gohook.bpf.sources import c_dir

CGROUP2 = Path("/sys/fs/cgroup/unified")
TIMEOUT = 5.0

# --- the shared header, without root ----------------------------------------------------------------------


def _header() -> str:
    return (c_dir() / exechold.HEADER_FILE).read_text(encoding="utf-8")


def test_every_constant_of_the_header_is_mirrored() -> None:
    defines = dict(re.findall(r"^#define GOHOOK_EH_(\w+) (0x[0-9a-f]+|\d+)", _header(), re.M))
    assert defines, "no GOHOOK_EH_ constants in exechold.h"
    mirrored = {"SIGSTOP": int(signal.SIGSTOP)}
    for name in defines:
        if name.startswith("VERDICT_"):
            mirrored[name] = int(Verdict[name.removeprefix("VERDICT_")])
        elif name != "SIGSTOP":
            mirrored[name] = getattr(exechold, name)
    assert {k: int(v, 0) for k, v in defines.items()} == mirrored
    assert len(exechold.ExecHoldCounters.__dataclass_fields__) == exechold.NCOUNTERS


def _c_struct(name: str) -> str:
    m = re.search(rf"^struct {name} \{{.*?^\}};", _header(), re.M | re.S)
    assert m, f"no struct {name} in exechold.h"
    return m.group(0)


def _layout(struct: type[ct.Structure]) -> dict[str, int]:
    out = {f: getattr(struct, f).offset for f, _ in struct._fields_}
    out |= {f"sizeof_{f}": ct.sizeof(t) for f, t in struct._fields_}
    return out | {"sizeof": ct.sizeof(struct)}


def test_gcc_layout_matches_the_ctypes_mirrors(tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc is missing (scripts/setup.sh installs it)")
    structs = {"gohook_exec_key": ExecKey, "gohook_exec_event": ExecEvent}
    body = []
    for cname, py in structs.items():
        body.append(f'    printf("\\"{cname}\\": {{");')
        for f, _ in py._fields_:
            body.append(f'    printf("\\"{f}\\": %zu, \\"sizeof_{f}\\": %zu, ", offsetof(struct {cname}, {f}), '
                        f"sizeof(((struct {cname} *)0)->{f}));")
        body.append(f'    printf("\\"sizeof\\": %zu}}%s", sizeof(struct {cname}), '
                    f'"{", " if cname != "gohook_exec_event" else ""}");')
    defines = "\n".join(re.findall(r"^#define GOHOOK_EH_\w+ (?:0x)?[0-9a-f]+.*$", _header(), re.M))
    src = tmp_path / "exechold_layout.c"
    src.write_text(f"""#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
typedef uint32_t u32;
typedef int32_t s32;
typedef uint64_t u64;
typedef int64_t s64;
{defines}
{_c_struct("gohook_exec_key")}
{_c_struct("gohook_exec_event")}
int main(void) {{
    printf("{{");
{chr(10).join(body)}
    printf("}}\\n");
    return 0;
}}
""")
    exe = tmp_path / "exechold_layout"
    subprocess.run([gcc, "-Wall", "-Werror", "-o", str(exe), str(src)], check=True, capture_output=True, text=True)
    c = json.loads(subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout)
    assert c == {cname: _layout(py) for cname, py in structs.items()}


# --- keys -------------------------------------------------------------------------------------------------


def _new_encode_dev(major: int, minor: int) -> int:
    """The kernel's new_encode_dev (include/linux/kdev_t.h): what stat(2) reports as st_dev."""
    return (minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)


@pytest.mark.parametrize(("major", "minor"), [(254, 0), (8, 1), (259, 0x12345), (0, 37), (0xFFF, 0xFFFFF)])
def test_kernel_dev_undoes_new_encode_dev(major: int, minor: int) -> None:
    assert kernel_dev(_new_encode_dev(major, minor)) == major << 20 | minor


def test_file_key_of_stat_splits_the_nanosecond_ctime(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"")
    os.utime(f, ns=(1, 2))  # sets ctime to now; atime/mtime apart
    st = os.stat(f)
    key = FileKey.of_stat(st)
    assert key.ino == st.st_ino
    assert key.ctime_sec * 1_000_000_000 + key.ctime_nsec == st.st_ctime_ns
    assert 0 <= key.ctime_nsec < 1_000_000_000 and key.ctime_sec == int(st.st_ctime)
    c = key.to_c()
    assert FileKey.of_c(c) == key and c.pad0 == 0 and c.pad1 == 0


def test_names_that_cannot_match_are_refused() -> None:
    for bad in ("a/b", "", "x" * 64, "nul\0"):
        with pytest.raises(BpfError):
            exechold._encode_name(bad)
    assert exechold._encode_name("x" * 63) == b"x" * 63


# --- kernel offsets, against pahole -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kernel_btf() -> Btf:
    if not VMLINUX.exists():
        pytest.skip(f"{VMLINUX}: this kernel has no BTF")
    return Btf(VMLINUX.read_bytes())


def _pahole(struct_name: str, member: str) -> Member:
    if shutil.which("pahole") is None:
        pytest.skip("pahole is not installed (scripts/setup.sh installs dwarves)")
    out = subprocess.run(["pahole", "-C", struct_name, str(VMLINUX)], capture_output=True, text=True,
                         check=True).stdout
    found = re.findall(rf"[\s*]{re.escape(member)};\s*/\*\s*(\d+)\s+(\d+)\s*\*/", out)
    assert len(found) == 1, f"pahole: {struct_name}.{member} appears {len(found)} times"
    return Member(int(found[0][0]), int(found[0][1]))


def test_offsets_match_pahole(kernel_btf: Btf) -> None:
    got = exechold_offsets(kernel_btf)
    for define, struct_name, chain, _size in EXECHOLD_FIELDS:
        if "." not in chain:
            assert got[define] == _pahole(struct_name, chain).offset, define
    assert got["GOHOOK_EH_KO_FILE_DENTRY"] == _pahole("file", "f_path").offset + _pahole("path", "dentry").offset
    assert got["GOHOOK_EH_KO_DENTRY_NAME"] == _pahole("dentry", "d_name").offset + _pahole("qstr", "name").offset
    try:
        kernel_btf.member("inode", "i_ctime_sec")
    except BtfError:
        pytest.skip("this kernel keeps ctime in a timespec64 (before 6.11)")
    assert got["GOHOOK_EH_KO_INODE_CTIME_SEC"] == _pahole("inode", "i_ctime_sec").offset
    assert got["GOHOOK_EH_KO_INODE_CTIME_NSEC"] == _pahole("inode", "i_ctime_nsec").offset


class _CtimeBtf(Btf):
    """The real kernel's BTF with struct inode's ctime members replaced by `ctime` (chain -> Member)."""

    def __init__(self, real: Btf, ctime: dict[str, Member]) -> None:  # noqa: D107 (no super().__init__: a view)
        self._real, self._ctime = real, ctime

    def member(self, struct_name: str, chain: str) -> Member:
        if struct_name == "inode" and "ctime" in chain:
            if chain not in self._ctime:
                raise BtfError(f"struct inode: no member {chain!r}")
            return self._ctime[chain]
        return self._real.member(struct_name, chain)


def test_older_ctime_layouts_and_none(kernel_btf: Btf) -> None:
    timespec = {"__i_ctime.tv_sec": Member(96, 8), "__i_ctime.tv_nsec": Member(104, 8)}
    got = exechold_offsets(_CtimeBtf(kernel_btf, timespec))
    assert (got["GOHOOK_EH_KO_INODE_CTIME_SEC"], got["GOHOOK_EH_KO_INODE_CTIME_NSEC"]) == (96, 104)
    with pytest.raises(BtfError, match="none of the ctime layouts"):
        exechold_offsets(_CtimeBtf(kernel_btf, {}))
    with pytest.raises(BtfError, match="reads 8 and 4"):
        exechold_offsets(_CtimeBtf(kernel_btf, {"i_ctime_sec": Member(1, 4), "i_ctime_nsec": Member(5, 4)}))


# --- live -----------------------------------------------------------------------------------------------------

_seq = itertools.count()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def _wait_state(pid: int, want: str, timeout: float = TIMEOUT) -> str:
    end = time.monotonic() + timeout
    state = _state(pid)
    while state != want and time.monotonic() < end:
        time.sleep(0.002)
        state = _state(pid)
    return state


def _reap(*procs: subprocess.Popen[bytes]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()  # SIGKILL ends a stopped process too
        p.wait(TIMEOUT)


class Cgroups:
    """cgroup v2 groups made for this module under CGROUP2, removed (their processes killed) at the end."""

    def __init__(self) -> None:
        self.made: list[Path] = []

    def new(self) -> Path:
        path = CGROUP2 / f"gohook-test-exechold-{os.getpid()}-{next(_seq)}"
        path.mkdir()
        self.made.append(path)
        return path

    def remove(self) -> None:
        for path in self.made:
            for pid in (path / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            end = time.monotonic() + TIMEOUT
            while True:
                try:
                    path.rmdir()
                    break
                except OSError:
                    if time.monotonic() > end:
                        raise
                    time.sleep(0.01)


@pytest.fixture(scope="module")
def cgroups() -> Iterator[Cgroups]:
    gofixtures.require_root("exec-hold tests")
    if not (CGROUP2 / "cgroup.procs").exists():
        gofixtures.loud_skip(f"no cgroup v2 hierarchy at {CGROUP2}")
    groups = Cgroups()
    try:
        yield groups
    finally:
        groups.remove()


@pytest.fixture(scope="module")
def fake_agent() -> Iterator[int]:
    """A stand-in for the agent's process (pytest must not be it: it is the test children's parent)."""
    p = subprocess.Popen(["sleep", "600"])
    try:
        yield p.pid
    finally:
        _reap(p)


@pytest.fixture(scope="module")
def scope(cgroups: Cgroups) -> Path:
    return cgroups.new()


@pytest.fixture(scope="module")
def hold(scope: Path, fake_agent: int) -> Iterator[ExecHold]:
    """Hold every unknown exec, of tasks in `scope` only."""
    with ExecHold(hold_unknown=True, cgroup=str(scope), agent_tgid=fake_agent) as h:
        yield h


@pytest.fixture()
def prog(tmp_path: Path) -> Path:
    """A fresh copy of /bin/touch with a unique name (its own inode)."""
    path = tmp_path / f"ehprobe-{os.getpid()}-{next(_seq)}"
    shutil.copy2("/bin/touch", path)
    path.chmod(0o755)
    return path


def _copy(prog: Path, name: str) -> Path:
    path = prog.parent / name
    shutil.copy2(prog, path)
    return path


def _start(prog: Path, marker: Path, cgroup: Path | None, *, exec_: bool = True) -> subprocess.Popen[bytes]:
    """`prog marker` in a shell that first moves itself into cgroup; exec_=False forks it (the shell stays)."""
    move = 'echo $$ > "$1"; ' if cgroup is not None else ""
    run = 'exec "$2" "$3"' if exec_ else '"$2" "$3"; exit $?'
    procs = str(cgroup / "cgroup.procs") if cgroup is not None else ""
    return subprocess.Popen(["sh", "-c", move + run, "sh", procs, str(prog), str(marker)])


def _wait_held(hold: ExecHold, pid: int | None = None, name: str | None = None,
               timeout: float = TIMEOUT) -> HeldExec:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for ev in hold.poll(50):
            if (pid is None or ev.tgid == pid) and (name is None or Path(ev.filename).name == name):
                return ev
    raise AssertionError(f"no held exec of pid {pid} name {name} within {timeout}s; {hold.counters()}")


def _assert_held_and_release(hold: ExecHold, p: subprocess.Popen[bytes], prog: Path, marker: Path) -> HeldExec:
    ev = _wait_held(hold, p.pid)
    assert ev.stopped and ev.key == FileKey.of_stat(os.stat(prog))
    assert ev.filename == str(prog) and ev.comm == prog.name[:15]
    assert _wait_state(p.pid, "T") == "T"
    time.sleep(0.05)  # it stays stopped, and has not run
    assert _state(p.pid) == "T" and not marker.exists()
    assert hold.release(p.pid)
    assert p.wait(TIMEOUT) == 0 and marker.exists()
    return ev


def _assert_not_held(hold: ExecHold, p: subprocess.Popen[bytes], marker: Path) -> None:
    assert p.wait(TIMEOUT) == 0 and marker.exists()
    assert not [ev for ev in hold.poll(20) if ev.tgid == p.pid]



@pytest.mark.bpf
def test_held_before_its_first_instruction_then_released(hold: ExecHold, scope: Path, prog: Path,
                                                         tmp_path: Path) -> None:
    before = hold.counters()
    marker = tmp_path / "ran"
    # a stat before the exec sets I_CTIME_QUERIED (6.13+ multigrain timestamps: bit 31 of i_ctime_nsec),
    # which is not part of the time: the key must not carry it
    os.stat(prog)
    p = _start(prog, marker, scope)
    try:
        ev = _assert_held_and_release(hold, p, prog, marker)
        assert ev.ppid == os.getpid()
        after = hold.counters()
        assert after.held == before.held + 1 and after.lost == 0 and after.signal_failed == 0
    finally:
        _reap(p)


@pytest.mark.bpf
def test_a_verdict_stops_holding_until_the_file_changes(hold: ExecHold, scope: Path, prog: Path,
                                                        tmp_path: Path) -> None:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        key = FileKey.of_stat(os.stat(prog))
        hold.set_verdict(key, Verdict.IGNORE)
        assert hold.verdict(key) == Verdict.IGNORE
        known = hold.counters().known
        procs.append(p := _start(prog, tmp_path / "m1", scope))
        _assert_not_held(hold, p, tmp_path / "m1")
        assert hold.counters().known == known + 1

        prog.chmod(0o750)  # a new ctime: a new key, held again
        key2 = FileKey.of_stat(os.stat(prog))
        assert key2 != key and key2.ino == key.ino
        procs.append(p := _start(prog, tmp_path / "m2", scope))
        assert _assert_held_and_release(hold, p, prog, tmp_path / "m2").key == key2

        hold.set_verdict(key2, Verdict.COVERED)
        procs.append(p := _start(prog, tmp_path / "m3", scope))
        _assert_not_held(hold, p, tmp_path / "m3")

        os.utime(prog)  # touch: a new ctime again
        assert FileKey.of_path(prog) not in (key, key2)
        procs.append(p := _start(prog, tmp_path / "m4", scope))
        _assert_held_and_release(hold, p, prog, tmp_path / "m4")

        hold.forget(key2)
        hold.forget(key2)  # no verdict: no error
        assert hold.verdict(key2) is None
    finally:
        _reap(*procs)


@pytest.mark.bpf
def test_a_copy_of_an_ignored_file_is_held(hold: ExecHold, scope: Path, prog: Path, tmp_path: Path) -> None:
    hold.set_verdict(FileKey.of_path(prog), Verdict.IGNORE)
    copy = _copy(prog, prog.name + "-copy")
    assert os.stat(copy).st_ino != os.stat(prog).st_ino
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(p := _start(prog, tmp_path / "m1", scope))
        _assert_not_held(hold, p, tmp_path / "m1")
        procs.append(p := _start(copy, tmp_path / "m2", scope))
        _assert_held_and_release(hold, p, copy, tmp_path / "m2")
    finally:
        _reap(*procs)


@pytest.mark.bpf
def test_outside_the_cgroup_nothing_is_held(hold: ExecHold, prog: Path, tmp_path: Path) -> None:
    p = _start(prog, tmp_path / "m", None)
    try:
        _assert_not_held(hold, p, tmp_path / "m")
    finally:
        _reap(p)


@pytest.mark.bpf
def test_names_mode_holds_only_the_named_files(fake_agent: int, prog: Path, tmp_path: Path) -> None:
    """No cgroup: the whole machine, but the names are unique to this test."""
    other = _copy(prog, prog.name + "-other")
    procs: list[subprocess.Popen[bytes]] = []
    with ExecHold(hold_unknown=False, names=[prog.name], agent_tgid=fake_agent) as h:
        try:
            procs.append(p := _start(other, tmp_path / "m1", None))
            _assert_not_held(h, p, tmp_path / "m1")
            procs.append(p := _start(prog, tmp_path / "m2", None))
            _assert_held_and_release(h, p, prog, tmp_path / "m2")

            h.set_names([other.name])
            procs.append(p := _start(prog, tmp_path / "m3", None))
            _assert_not_held(h, p, tmp_path / "m3")
            procs.append(p := _start(other, tmp_path / "m4", None))
            _assert_held_and_release(h, p, other, tmp_path / "m4")

            h.set_names([])  # names mode with no names: nothing is held
            procs.append(p := _start(other, tmp_path / "m5", None))
            _assert_not_held(h, p, tmp_path / "m5")
        finally:
            _reap(*procs)


@pytest.mark.bpf
def test_the_agents_children_are_not_held_its_grandchildren_are(cgroups: Cgroups, prog: Path,
                                                                 tmp_path: Path) -> None:
    group = cgroups.new()
    procs: list[subprocess.Popen[bytes]] = []
    with ExecHold(hold_unknown=True, cgroup=str(group)) as h:  # the agent: this process (pytest)
        try:
            procs.append(p := _start(prog, tmp_path / "m1", group))  # sh (child of pytest) execs prog
            _assert_not_held(h, p, tmp_path / "m1")
            procs.append(p := _start(prog, tmp_path / "m2", group, exec_=False))  # sh forks prog
            ev = _wait_held(h, name=prog.name)
            assert ev.ppid == p.pid and ev.key == FileKey.of_path(prog)
            assert _wait_state(ev.tgid, "T") == "T" and not (tmp_path / "m2").exists()
            h.release(ev.tgid)
            assert p.wait(TIMEOUT) == 0 and (tmp_path / "m2").exists()
        finally:
            _reap(*procs)


def test_release_of_a_gone_process_is_false() -> None:
    p = subprocess.Popen(["true"])
    p.wait()
    assert ExecHold.release(p.pid) is False


@pytest.mark.bpf
def test_hold_to_release_latency(hold: ExecHold, scope: Path, prog: Path, tmp_path: Path) -> None:
    """An agent loop that releases at once: exec -> event seen, event -> SIGCONT sent, SIGCONT -> exit."""
    seen, released, finished = [], [], []
    for i in range(30):
        marker = tmp_path / f"m{i}"
        p = _start(prog, marker, scope)
        try:
            ev = _wait_held(hold, p.pid)
            t_seen = time.monotonic_ns()
            hold.release(p.pid)
            t_rel = time.monotonic_ns()
            assert p.wait(TIMEOUT) == 0 and marker.exists()
            t_end = time.monotonic_ns()
        finally:
            _reap(p)
        seen.append((t_seen - ev.ktime_ns) / 1e6)
        released.append((t_rel - ev.ktime_ns) / 1e6)
        finished.append((t_end - t_rel) / 1e6)
    for what, ms in (("exec -> event polled", seen), ("exec -> SIGCONT sent", released),
                     ("SIGCONT -> child exited", finished)):
        q = statistics.quantiles(ms, n=20)
        print(f"exec-hold latency, {what}: median {statistics.median(ms):.3f} ms, p95 {q[18]:.3f} ms, "
              f"max {max(ms):.3f} ms (n={len(ms)})")
    assert statistics.median(released) < 100
