"""gohook.static.analysis: the system call numbers of raw calls through golang.org/x/sys/unix (issue 17 §4).

x/sys/unix's wrappers call its assembly (unix.Syscall, RawSyscall, Syscall6, RawSyscallNoError) directly,
with Go's ABI0: the number is stored at [RSP] before the call, while RAX holds whatever the wrapper had in it
(unix.socket's domain, 16 for AF_NETLINK; Uname's buffer pointer). The analysis must read the stack there,
and RAX only for Go (register ABI) entries.

The fixture is built with each toolchain of the suite against the golang.org/x/sys its GOROOT vendors
(src/cmd/vendor: four versions from 2022 to 2025), in the default, stripped and PIE modes. Oracles, not
gohook's own tables: the SYS_* constants of that x/sys's zsysnum_linux_amd64.go, and its Go source (which SYS_*
constant each wrapper function passes).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import gofixtures
import pytest
from gofixtures import Toolchain

from gohook.static.analysis import RAW_SYSCALL_ENTRIES, Abi0Callees, raw_syscall_number
from gohook.static.inspection import Inspection, inspect_binary

MAIN = """package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	var u unix.Utsname
	fmt.Println(unix.Uname(&u))
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, 0)
	fmt.Println("socket", fd, err)
	if err == nil {
		unix.Close(fd)
	}
	fmt.Println(unix.Getpid(), unix.Getuid(), unix.Gettid())
	var st unix.Stat_t
	fmt.Println(unix.Stat("/", &st))
	var ts unix.Timespec
	fmt.Println(unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts))
	fmt.Println(unix.Getrandom(make([]byte, 16), 0))
	if len(os.Args) > 5 {
		fmt.Println(unix.Kill(1, 0))
	}
}
"""

# What main calls, as x/sys's SYS_* names (Stat is fstatat on amd64).
CALLED = ("SYS_UNAME", "SYS_SOCKET", "SYS_CLOSE", "SYS_GETPID", "SYS_GETUID", "SYS_GETTID", "SYS_NEWFSTATAT",
          "SYS_CLOCK_GETTIME", "SYS_GETRANDOM", "SYS_KILL")
MODES = {"default": (), "stripped": ("-ldflags=-s -w",), "pie": ("-buildmode=pie",)}
_LINUX_AMD64 = re.compile(r"^(syscall|zsyscall)_(linux|unix)(_gc)?(_amd64)?(_gc)?\.go$")
_FUNC = re.compile(r"^func (?:\([^)]*\) )?(\w+)\(", re.MULTILINE)


def source_numbers(unix_dir: Path, numbers: dict[str, int]) -> dict[str, set[int]]:
    """x/sys/unix function name -> the system call numbers its Go source passes (linux/amd64 files)."""
    out: dict[str, set[int]] = {}
    for path in sorted(unix_dir.glob("*.go")):
        if not _LINUX_AMD64.match(path.name):
            continue
        text = path.read_text()
        starts = list(_FUNC.finditer(text))
        for k, m in enumerate(starts):
            body = text[m.start(): starts[k + 1].start() if k + 1 < len(starts) else len(text)]
            used = {numbers[n] for n in re.findall(r"\bSYS_\w+\b", body) if n in numbers}
            out.setdefault(m[1], set()).update(used)
    return out


@pytest.fixture(scope="module", params=gofixtures.toolchains(), ids=str)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[Toolchain, Path, dict[str, Path]]:
    """(toolchain, its x/sys unix directory, mode -> binary) of the fixture."""
    toolchain: Toolchain = request.param
    xsys, go_version = gofixtures.vendored_xsys(toolchain)
    if not (xsys / "unix" / "zsysnum_linux_amd64.go").exists():
        pytest.skip(f"{toolchain} vendors no golang.org/x/sys/unix")
    root = tmp_path_factory.mktemp(f"xsys-{toolchain.version}")
    shutil.copytree(xsys, root / "xsys")
    (root / "xsys" / "go.mod").write_text(f"module golang.org/x/sys\n\ngo {go_version}\n")
    app = root / "app"
    app.mkdir()
    (app / "main.go").write_text(MAIN)
    (app / "go.mod").write_text(f"module example.com/xsysapp\n\ngo {go_version}\n\nrequire golang.org/x/sys v0.0.0\n\n"
                                "replace golang.org/x/sys => ../xsys\n")
    out = {}
    for mode, flags in MODES.items():
        out[mode] = root / f"app-{mode}"
        proc = subprocess.run([str(toolchain.go), "build", *flags, "-o", str(out[mode]), "."], cwd=app,
                              env=gofixtures.go_env(toolchain), capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr
    return toolchain, xsys / "unix", out


@pytest.mark.parametrize("mode", list(MODES))
def test_raw_numbers_are_xsys_constants(built: tuple[Toolchain, Path, dict[str, Path]], mode: str) -> None:
    """The x/sys module's raw_syscall gap lists the numbers of the calls main makes, and only numbers the
    x/sys source passes (no argument of another register, no pointer)."""
    _toolchain, unix_dir, binaries = built
    numbers = gofixtures.xsys_numbers(unix_dir)
    passed = set().union(*source_numbers(unix_dir, numbers).values())
    insp = inspect_binary(str(binaries[mode]))
    listed = {nr for g in insp.analysis.gaps if g.kind == "raw_syscall" and g.module == "golang.org/x/sys"
              for nr in g.syscalls}
    assert {numbers[n] for n in CALLED} <= listed, sorted({numbers[n] for n in CALLED} - listed)
    assert listed <= passed, sorted(listed - passed)
    assert numbers["SYS_SOCKET"] != 16 and max(listed) < 1024  # the wrong readings: AF_NETLINK, a pointer


def _sites(insp: Inspection) -> list[tuple[str, int, str, int | None]]:
    """(innermost frame, call site, callee, number read) of every call of a raw entry in the binary."""
    binary, graph = insp.binary, insp.graph
    assert graph is not None
    abi0 = Abi0Callees(binary)
    fns = binary.functions
    out = []
    for i, f in enumerate(fns):
        if binary.is_std(f.name):
            continue
        scan = graph.scan(i)
        tails = {s for s, _t in scan.tail_jumps()}
        for site, target in scan.transfers():
            ti = graph.index_of(target)
            if ti is None or fns[ti].name not in RAW_SYSCALL_ENTRIES:
                continue
            frame = binary.frames(site, return_address=False)[0].function
            out.append((frame, site, fns[ti].name,
                        raw_syscall_number(binary, f, site, fns[ti], tail=site in tails, abi0=abi0)))
    return out


@pytest.mark.parametrize("mode", list(MODES))
def test_each_call_site_reads_its_wrappers_number(built: tuple[Toolchain, Path, dict[str, Path]], mode: str) -> None:
    """At every call of a raw entry, the number read is one the innermost x/sys function's source passes;
    unix.socket's is SYS_SOCKET and Uname's SYS_UNAME (issue 17 §4: 16 and a heap pointer were reported);
    the assembly's own tail jumps to package syscall (whose number comes from their callers) are unknown."""
    _toolchain, unix_dir, binaries = built
    numbers = gofixtures.xsys_numbers(unix_dir)
    by_function = source_numbers(unix_dir, numbers)
    sites = _sites(inspect_binary(str(binaries[mode])))
    known = [(fr, s, c, nr) for fr, s, c, nr in sites if nr is not None]
    for frame, site, callee, nr in known:
        name = frame.rpartition(".")[2]
        assert frame.startswith("golang.org/x/sys/unix."), (frame, hex(site), callee, nr)
        assert nr in by_function.get(name, set()), (frame, hex(site), callee, nr, by_function.get(name))
    got = {fr.rpartition(".")[2]: nr for fr, _s, _c, nr in known}
    assert got.get("socket") == numbers["SYS_SOCKET"]
    assert got.get("Uname") == numbers["SYS_UNAME"]
    assert got.get("Getpid") == numbers["SYS_GETPID"]
    stubs = [(fr, c, nr) for fr, _s, c, nr in sites if c.startswith("syscall.")]
    assert stubs and all(nr is None for _fr, _c, nr in stubs), stubs
