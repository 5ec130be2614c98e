"""gohook.static.analysis: the system call number a call site stores for syscall.rawSyscallNoError (issue 17 §4).

rawSyscallNoError (behind syscall.Getpid, Getuid, ...) is an ABI0 function: its number is a stack argument,
which the kernel's HOOK_VALUE reads at run time (getpid is system.read, kill would be system.modify). The
static analysis reads the constant the call site stores, so that a module reading its own pid is not
granted system.modify. Oracle: the number of getpid in the kernel's own header, and the Go source of
os.checkPidfd (Go 1.23+), which calls syscall.Getpid().
"""

from __future__ import annotations

import re
from pathlib import Path

import capstone
import gofixtures
import pytest
from gofixtures import Toolchain

from gohook.gosym import GoBinary
from gohook.static.analysis import constant_stack_argument

UNISTD = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")


def _nr(name: str) -> int:
    m = re.search(rf"#define __NR_{name} (\d+)", UNISTD.read_text())
    assert m, name
    return int(m[1])


def _calls(binary: GoBinary, caller: str, callee: str) -> list[int]:
    f = binary.functions_by_name[caller]
    target = binary.functions_by_name[callee].entry
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    return [a for a, _s, m, o in md.disasm_lite(binary.image.read(f.entry, f.end - f.entry), f.entry)
            if m == "call" and o == hex(target)]


@pytest.mark.parametrize("release", [t for t in gofixtures.toolchains() if t.release >= (1, 23)], ids=str)
def test_the_number_a_call_site_stores_is_read(release: Toolchain) -> None:
    """(os.checkPidfd, a Getpid inlined into std code, exists from Go 1.23)"""
    toolchain = release
    assert "syscall.Getpid()" in (gofixtures.goroot(toolchain) / "src/os/pidfd_linux.go").read_text()
    binary = GoBinary.open(gofixtures.build(toolchain, "denyapp"))
    f = binary.functions_by_name["os.checkPidfd"]
    sites = _calls(binary, "os.checkPidfd", "syscall.rawSyscallNoError")
    assert sites
    assert {constant_stack_argument(binary, f, s, 0) for s in sites} == {_nr("getpid")}


def test_an_unknown_store_is_none(newest_toolchain: Toolchain) -> None:
    """No store of a constant right before the call (another slot, or nothing): unknown, never a guess."""
    binary = GoBinary.open(gofixtures.build(newest_toolchain, "denyapp"))
    f = binary.functions_by_name["os.checkPidfd"]
    site = _calls(binary, "os.checkPidfd", "syscall.rawSyscallNoError")[0]
    assert constant_stack_argument(binary, f, site, 0x40) is None
    assert constant_stack_argument(binary, f, f.entry, 0) is None  # nothing before the first instruction
