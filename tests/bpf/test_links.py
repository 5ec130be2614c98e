"""gohook.bpf.links live: BPF links for uprobes and tracepoints, pinned in bpffs, outliving their maker.

The main test is issue 16's promise: a child Python process plans capapp
under a policy that denies fileutil's file creation (action kill), attaches,
pins every link and exits; afterwards the kernel alone still kills capapp at
the forbidden call (status -SIGKILL, no file created) while the allowed read
still works; once the pins are removed the same run creates its file. The
oracles are the process's exit status, the file system and the kernel's own
/proc/PID/fdinfo of the pinned links, not gohook.

Then the error paths: one-line LinkErrors (an AttachError) for a missing
file, an offset past the end, bad program fds, a tracepoint that does not
exist, a pin outside bpffs and an unpin of a directory that is not bpffs.
Runs as root; in CI (CI=true) nothing here skips.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gofixtures
import pytest
from attach_helpers import KILLED, policy_file, private_copy, run

from gohook.bpf import links
from gohook.bpf.errors import AttachError, LinkError

pytestmark = pytest.mark.bpf

CAPAPP = "example.com/capapp"
FILEUTIL = "github.com/acme/fileutil"

#: capapp's modules may do what they need (tests/test_attach_live.py's CAPAPP_NEEDS) except that fileutil
#: may only read: `capapp read` works, `capapp create` is fileutil's files.write, denied (action kill).
POLICY: dict[str, list[str]] = {
    CAPAPP: ["files.read", "env.read"],
    FILEUTIL: ["files.read"],
    "github.com/acme/netclient": ["files.read", "network.connect", "network.listen"],
    "github.com/evil/telemetry": ["env.read", "env.write", "network.connect"],
    "github.com/acme/runner": ["env.read", "exec", "files.read", "files.write"],
    "github.com/acme/mono": [],
    "github.com/acme/mono/sub": ["files.read"],
}

#: The child: plan + attach + pin, print what it pinned, exit (bcc's atexit clean-up included).
CHILD = """
import sys
from gohook.bpf.loader import attach
from gohook.session import AttachOptions, prepare, program_options

binary, policy, pin_dir = sys.argv[1:4]
_binary, build = prepare(AttachOptions(binary=binary, policy=policy, allow_unmatched=True))
att = attach(build.plan, options=program_options())
pinned = att.pin(pin_dir)
print(pinned, att.probe_count, flush=True)
"""

CHILD_TIMEOUT = 300.0  # seconds: planning and compiling on 2 shared cores
UNPIN_TIMEOUT = 30.0  # seconds for the kernel to free an unpinned link (deferred work) and remove its uprobe


@pytest.fixture(scope="module", autouse=True)
def _root() -> None:
    gofixtures.require_root("live BPF link tests")


@pytest.fixture
def pin_dir() -> Iterator[str]:
    """A fresh directory name under /sys/fs/bpf; whatever is pinned there is removed after the test."""
    path = f"{links.DEFAULT_BPFFS}/gohook-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield path
    links.unpin_dir(path)


@pytest.fixture(scope="module")
def programs() -> Iterator[dict[str, int]]:
    """Do-nothing programs of the three types gohook links: kprobe (uprobes), tracepoint, raw tracepoint."""
    import bcc

    bpf = bcc.BPF(text=b"int up(void *ctx) { return 0; } int tp(void *ctx) { return 0; } "
                       b"int raw(void *ctx) { return 0; }")
    yield {"uprobe": bpf.load_func(b"up", bcc.BPF.KPROBE).fd,
           "tracepoint": bpf.load_func(b"tp", bcc.BPF.TRACEPOINT).fd,
           "raw": bpf.load_func(b"raw", bcc.BPF.RAW_TRACEPOINT).fd}
    bpf.cleanup()


@pytest.fixture
def target_file(tmp_path: Path) -> Path:
    """A private copy of /bin/true: something to put uprobes on that nobody runs."""
    return private_copy(Path("/bin/true"), tmp_path / "bin")


def _fdinfo(fd: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip()
    return out


def _pinned_info(path: str) -> dict[str, str]:
    fd = links.open_pinned(path)
    try:
        return _fdinfo(fd)
    finally:
        os.close(fd)


# --- issue 16: enforcement outlives the process that attached -------------------------------------------------


def test_pinned_enforcement_outlives_its_process_and_unpinning_ends_it(tmp_path: Path, pin_dir: str) -> None:
    app = private_copy(gofixtures.build(gofixtures.live_toolchain("1.27"), "capapp", "default"), tmp_path / "bin")
    policy = policy_file(tmp_path / "policy.yaml", POLICY)
    infile = tmp_path / "in.txt"
    infile.write_text("hello gohook\n")
    created = tmp_path / "created.txt"

    child = subprocess.run([sys.executable, "-c", CHILD, str(app), str(policy), pin_dir], capture_output=True,
                           text=True, timeout=CHILD_TIMEOUT)
    assert child.returncode == 0, child.stderr
    pinned, probes = map(int, child.stdout.split())
    names = sorted(os.listdir(pin_dir))
    assert probes > 0 and pinned == len(names) > probes, names  # every uprobe, the tracepoints, the maps
    assert any(n.startswith("hook_") for n in names) and any(n.startswith("tp_") for n in names), names
    assert "map_handler" in names, names  # the program array: emptied with its last user reference

    # the kernel's view of the pins: uprobe links on our binary, held by nobody but bpffs
    infos = {n: _pinned_info(f"{pin_dir}/{n}") for n in names}
    link_infos = [i for n, i in infos.items() if not n.startswith("map_")]
    uprobes = [i for i in link_infos if i.get("event_type") == "uprobe"]
    assert len(uprobes) == probes and {i["name"] for i in uprobes} == {str(app)}, infos
    assert all(i["link_type"] in ("perf", "raw_tracepoint") for i in link_infos), infos
    assert infos["map_handler"]["map_type"] == "3", infos["map_handler"]  # BPF_MAP_TYPE_PROG_ARRAY

    # the attaching process is gone; the forbidden call still dies before its side effect
    denied = run(app, "create", str(created))
    assert denied.returncode == KILLED and not created.exists(), denied
    assert denied.stdout == "", denied
    allowed = run(app, "read", str(infile))
    assert allowed.returncode == 0 and allowed.stdout == "read 13 bytes\n", allowed

    assert links.unpin_dir(pin_dir) == pinned
    assert not os.path.exists(pin_dir)
    deadline = time.monotonic() + UNPIN_TIMEOUT  # the last reference goes in deferred kernel work
    while True:
        free = run(app, "create", str(created))
        if free.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert free.returncode == 0 and created.read_text() == "created by capapp\n", free


def test_a_pinned_link_survives_closing_its_fd_and_reopens_as_the_same_link(programs: dict[str, int],
                                                                            target_file: Path, pin_dir: str) -> None:
    fd = links.uprobe_link(programs["uprobe"], str(target_file), 0x100)
    info = _fdinfo(fd)
    assert (info["link_type"], info["event_type"], info["name"], info["offset"]) == \
        ("perf", "uprobe", str(target_file), "0x100")
    links.make_pin_dir(pin_dir)
    links.pin(fd, f"{pin_dir}/u")
    os.close(fd)
    again = _pinned_info(f"{pin_dir}/u")
    assert again["link_id"] == info["link_id"] and again["prog_id"] == info["prog_id"]


def test_tracepoint_and_raw_tracepoint_links(programs: dict[str, int]) -> None:
    tp = links.tracepoint_link(programs["tracepoint"], "sched", "sched_process_exit")
    raw = links.raw_tracepoint_link(programs["raw"], "sys_enter")
    try:
        assert (_fdinfo(tp)["event_type"], _fdinfo(tp)["tp_name"]) == ("tracepoint", "sched_process_exit")
        assert (_fdinfo(raw)["link_type"], _fdinfo(raw)["tp_name"]) == ("raw_tracepoint", "sys_enter")
    finally:
        os.close(tp)
        os.close(raw)


# --- errors: one line, typed -------------------------------------------------------------------------------------


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _one_line_error(fn: Any, *args: Any, match: str) -> LinkError:
    with pytest.raises(LinkError, match=match) as info:
        fn(*args)
    assert isinstance(info.value, AttachError) and "\n" not in str(info.value)
    return info.value


def test_uprobe_link_errors_name_what_failed(programs: dict[str, int], target_file: Path, tmp_path: Path) -> None:
    up = programs["uprobe"]
    _one_line_error(links.uprobe_link, up, str(tmp_path / "missing"), 0, match="missing.*No such file or directory")
    size = target_file.stat().st_size
    _one_line_error(links.uprobe_link, up, str(target_file), size + 4096, match="past the end of the file")
    _one_line_error(links.uprobe_link, up, str(target_file), -1, match="offset must be an int >= 0")
    _one_line_error(links.uprobe_link, up, str(target_file), 0x100, 2**22 + 12345, match="No such process")
    _one_line_error(links.uprobe_link, up, "a\0b", 0, match="NUL byte")
    _one_line_error(links.uprobe_link, -1, str(target_file), 0x100, match="program fd")
    with open(target_file, "rb") as not_bpf:  # an fd, but no BPF program
        _one_line_error(links.uprobe_link, not_bpf.fileno(), str(target_file), 0x100,
                        match=f"cannot link program fd {not_bpf.fileno()} to the uprobe.*Invalid argument")
    unused = next(fd for fd in range(4000, 5000) if not _is_open(fd))  # not reused by the perf event's own fd
    _one_line_error(links.uprobe_link, unused, str(target_file), 0x100, match="Bad file descriptor")
    # a program of the wrong type (a tracepoint program on a uprobe)
    _one_line_error(links.uprobe_link, programs["tracepoint"], str(target_file), 0x100, match="Invalid argument")


def test_tracepoint_errors(programs: dict[str, int]) -> None:
    _one_line_error(links.tracepoint_link, programs["tracepoint"], "sched", "no_such_event",
                    match="no tracepoint sched:no_such_event")
    _one_line_error(links.tracepoint_link, programs["tracepoint"], "../sched", "x", match="bad tracepoint category")
    _one_line_error(links.raw_tracepoint_link, programs["raw"], "no_such_raw_tp", match="raw tracepoint no_such_raw_tp")


def test_pin_outside_bpffs_and_unpin_of_a_plain_directory_are_refused(programs: dict[str, int], target_file: Path,
                                                                       tmp_path: Path) -> None:
    fd = links.uprobe_link(programs["uprobe"], str(target_file), 0x100)
    try:
        _one_line_error(links.pin, fd, str(tmp_path / "pin"), match="not on a BPF file system")
        _one_line_error(links.make_pin_dir, str(tmp_path / "pins"), match="not on a BPF file system")
    finally:
        os.close(fd)
    assert not (tmp_path / "pin").exists() and not (tmp_path / "pins").exists()
    (tmp_path / "keep").write_text("x")
    _one_line_error(links.unpin_dir, str(tmp_path), match="will not unpin")
    assert (tmp_path / "keep").read_text() == "x"
    _one_line_error(links.open_pinned, f"{links.DEFAULT_BPFFS}/gohook-no-such-pin", match="No such file")
    assert links.unpin_dir(f"{links.DEFAULT_BPFFS}/gohook-no-such-dir") == 0


def _bpffs_mounts_on(root: str) -> int:
    """How many bpf mounts /proc/self/mountinfo lists at root (the oracle: the kernel's mount table)."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return sum(1 for line in lines if line.split()[4] == root and line.split(" - ")[1].startswith("bpf "))


def test_ensure_bpffs_keeps_an_existing_mount() -> None:
    links.ensure_bpffs()
    before = _bpffs_mounts_on(links.DEFAULT_BPFFS)
    links.ensure_bpffs()  # already a bpffs: no second mount on top
    assert _bpffs_mounts_on(links.DEFAULT_BPFFS) == before >= 1
    assert links.is_bpffs(links.DEFAULT_BPFFS) and not links.is_bpffs("/tmp")
