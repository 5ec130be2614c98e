"""The gaps `gohook inspect` names but cannot block (issue 12 §5), on the gapsapp fixture.

testdata/go/gapsapp holds one kind per dependency: envpeek reads the environment through
`//go:linkname runtime_envs syscall.runtime_envs` (gap `linkname`), relay returns the method value
cmd.Run (os/exec.(*Cmd).Run-fm) and os.Remove as values (gap `func_value`), uring calls
syscall.Mprotect / Mmap / Madvise / Sendto / Sendmsg, has an IoUringSetup and makes system calls by
number, from Go (syscall.Syscall(425, ...)) and from its own assembly (MOVQ $39, AX; SYSCALL).
deps/plain and the main module do none of it and must get none of these gaps.

The oracles are not gohook: function bounds from Go's debug/gosym (gofixtures.oracle), the
instruction at each reported address from `go tool objdump`, a static function value's first word
read from the ELF file with pyelftools, and system call numbers from the SYS_* constants of the
newest toolchain's golang.org/x/sys/unix (zsysnum_linux_amd64.go).
"""

from __future__ import annotations

import functools
import io
import json
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import gofixtures
import pytest
from elftools.elf.elffile import ELFFile

from gohook.static.analysis import linkname_only
from gohook.static.callgraph import scan_code

ENVPEEK = "github.com/sysprobe/envpeek"
RELAY = "github.com/taskq/relay"
URING = "github.com/fastio/uring"
PLAIN = "github.com/acme/plain"
MAIN = "example.com/gapsapp"
NEW_KINDS = ("linkname", "func_value", "syscall_wrapper")

# (kind, module, function, what the instruction at the gap's address is, system call numbers)
# what: ("call", callees...) a direct CALL to one of them; ("lea", symbol) a LEAQ of a code address;
# ("funcval", function) a LEAQ of a static function value whose first word is that function's entry;
# ("entry",) the function's entry; ("syscall",) a SYSCALL instruction.
EXPECTED: tuple[tuple[str, str, str, tuple[str, ...], tuple[int, ...]], ...] = (
    ("linkname", ENVPEEK, f"{ENVPEEK}.Environ", ("call", "syscall.runtime_envs"), ()),
    ("func_value", RELAY, f"{RELAY}.Jobs", ("lea", "os/exec.(*Cmd).Run-fm"), ()),
    ("func_value", RELAY, f"{RELAY}.Remover", ("funcval", "os.Remove"), ()),
    ("syscall_wrapper", URING, f"{URING}.Protect", ("call", "syscall.Mprotect", "syscall.mprotect"), (10,)),
    ("syscall_wrapper", URING, f"{URING}.Map", ("call", "syscall.Mmap", "syscall.(*mmapper).Mmap"), (9,)),
    ("syscall_wrapper", URING, f"{URING}.Drop", ("call", "syscall.Madvise", "syscall.madvise"), (28,)),
    ("syscall_wrapper", URING, f"{URING}.SendTo", ("call", "syscall.Sendto", "syscall.sendto"), (44,)),
    ("syscall_wrapper", URING, f"{URING}.SendMsg", ("call", "syscall.Sendmsg", "syscall.SendmsgN"), (46,)),
    ("syscall_wrapper", URING, f"{URING}.IoUringSetup", ("entry",), (425,)),
    ("raw_syscall", URING, f"{URING}.getpid", ("syscall",), (39,)),
    ("asm", URING, f"{URING}.getpid", ("syscall",), (39,)),
)
MODES = ("default", "pie")
_DOCS: dict[tuple[str, str], dict[str, Any]] = {}

_OBJDUMP = re.compile(r"^\s+\S+\s+0x([0-9a-f]+)\s+([0-9a-f]+)\s+(.*?)\s*$")


def inspect_doc(toolchain: gofixtures.Toolchain, mode: str) -> tuple[Path, dict[str, Any]]:
    binary = gofixtures.build(toolchain, "gapsapp", mode)
    key = (toolchain.version, mode)
    if key not in _DOCS:
        proc = subprocess.run([sys.executable, "-m", "gohook", "inspect", str(binary), "--json"],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        _DOCS[key] = json.loads(proc.stdout)
    return binary, _DOCS[key]


def objdump(toolchain: gofixtures.Toolchain, binary: Path, function: str) -> dict[int, tuple[str, str]]:
    """address -> (hex bytes, instruction text) of one function, as `go tool objdump` prints it."""
    pattern = "^" + re.escape(function) + r"(\.abi0)?$"  # assembly functions print as NAME.abi0
    proc = subprocess.run([str(toolchain.go), "tool", "objdump", "-s", pattern, str(binary)],
                          capture_output=True, text=True, timeout=300, check=True)
    out = {}
    for line in proc.stdout.splitlines():
        m = _OBJDUMP.match(line)
        if m:
            out[int(m.group(1), 16)] = (m.group(2), m.group(3))
    assert out, f"objdump printed nothing for {function}"
    return out


@functools.cache
def sys_numbers() -> dict[int, str]:
    """System call number -> lower-case name, from x/sys/unix's SYS_* constants (newest toolchain's GOROOT)."""
    newest = max(gofixtures.toolchains(), key=lambda t: t.release)
    text = (gofixtures.goroot(newest) / "src/cmd/vendor/golang.org/x/sys/unix/zsysnum_linux_amd64.go").read_text()
    return {int(m.group(2)): m.group(1).lower() for m in re.finditer(r"^\s*SYS_(\w+)\s*=\s*(\d+)", text, re.M)}


def word_at(binary: Path, vaddr: int) -> int:
    """The 8-byte little-endian word at a virtual address, read from the ELF sections with pyelftools."""
    with binary.open("rb") as fh:
        elf = ELFFile(fh)
        for sec in elf.iter_sections():
            start, size = sec["sh_addr"], sec["sh_size"]
            if start and start <= vaddr < start + size and sec["sh_type"] != "SHT_NOBITS":
                data = sec.data()
                return int(struct.unpack_from("<Q", data, vaddr - start)[0])
    raise AssertionError(f"{vaddr:#x} is in no section with file data")


def _gaps(doc: dict[str, Any], kind: str, function: str) -> list[dict[str, Any]]:
    return [g for g in doc["gaps"] if g["kind"] == kind and g["function"] == function]


@pytest.mark.parametrize("mode", MODES)
def test_each_gap_names_its_module_function_and_site(toolchain: gofixtures.Toolchain, mode: str) -> None:
    binary, doc = inspect_doc(toolchain, mode)
    bounds = {f["name"]: (f["entry"], f["end"]) for f in gofixtures.oracle(binary)["functions"]}
    for kind, module, function, what, numbers in EXPECTED:
        found = _gaps(doc, kind, function)
        assert found, (kind, function, [(g["kind"], g["function"]) for g in doc["gaps"]])
        gap = found[0]
        assert gap["module"] == module, gap
        entry, end = bounds[function]
        assert entry <= gap["address"] < end, (gap, hex(entry), hex(end))
        if numbers:
            assert [s["nr"] for s in gap["syscalls"]] == list(numbers), gap
        code = objdump(toolchain, binary, function)
        hexbytes, insn = code[gap["address"]]
        if what[0] == "call":
            callee = re.fullmatch(r"CALL (\S+)\(SB\)", insn)
            assert callee and callee.group(1) in what[1:], (gap, insn)
            assert callee.group(1) in gap["detail"], gap
        elif what[0] == "lea":
            assert insn.startswith(f"LEAQ {what[1]}(SB),"), (gap, insn)
            assert what[1] in gap["detail"], gap
        elif what[0] == "funcval":
            disp = re.fullmatch(r"LEAQ (-?0x[0-9a-f]+)\(IP\), \w+", insn)
            assert disp, (gap, insn)
            target = gap["address"] + len(hexbytes) // 2 + int(disp.group(1), 16)
            assert word_at(binary, target) == bounds[what[1]][0], gap
            assert what[1] in gap["detail"], gap
        elif what[0] == "entry":
            assert gap["address"] == entry, gap
        else:
            assert insn == "SYSCALL", (gap, insn)
            before = max(a for a in code if a < gap["address"])
            assert re.fullmatch(rf"MOV[LQ] \${numbers[0]:#x}, AX", code[before][1]), code[before]


@pytest.mark.parametrize("mode", MODES)
def test_no_new_gaps_for_modules_without_such_code(toolchain: gofixtures.Toolchain, mode: str) -> None:
    _, doc = inspect_doc(toolchain, mode)
    for g in doc["gaps"]:
        if g["module"] in (PLAIN, MAIN):
            assert g["kind"] not in (*NEW_KINDS, "raw_syscall", "asm"), g
    expected = {(kind, function) for kind, _m, function, _w, _n in EXPECTED}
    reported = {(g["kind"], g["function"]) for g in doc["gaps"] if g["kind"] in NEW_KINDS}
    assert reported == {(k, f) for k, f in expected if k in NEW_KINDS}


def test_function_values_name_what_the_runner_is_charged_for(toolchain: gofixtures.Toolchain) -> None:
    _, doc = inspect_doc(toolchain, "default")
    [jobs] = _gaps(doc, "func_value", f"{RELAY}.Jobs")
    [remover] = _gaps(doc, "func_value", f"{RELAY}.Remover")
    assert "exec" in jobs["detail"] and "files.write" in remover["detail"]
    # relay itself only builds the command: starting it is charged to whoever runs the job
    relay = next(m for m in doc["modules"] if m["path"] == RELAY)
    assert "exec" not in relay["capabilities"] and "files.write" not in relay["capabilities"]


def test_system_call_numbers_named_as_go_names_them(toolchain: gofixtures.Toolchain) -> None:
    _, doc = inspect_doc(toolchain, "default")
    names = sys_numbers()
    seen = [s for g in doc["gaps"] for s in g["syscalls"]]
    assert {s["nr"] for s in seen} >= {9, 10, 28, 39, 44, 46, 425}
    for s in seen:
        assert s["name"] == names[s["nr"]], s
        assert s["name"] in next(g["detail"] for g in doc["gaps"] if s in g["syscalls"])
    # syscall.Syscall(425, ...) at uring's call site: the module-level raw_syscall gap names it
    [raw] = [g for g in doc["gaps"] if g["kind"] == "raw_syscall" and g["module"] == URING
             and g["function"] != f"{URING}.getpid"]
    assert [s["nr"] for s in raw["syscalls"]] == [425] and "io_uring_setup (425, io_uring)" in raw["detail"]


def test_table_shows_the_new_gaps(toolchain: gofixtures.Toolchain) -> None:
    from rich.console import Console

    from gohook.views.tables import inspection_renderables

    _, doc = inspect_doc(toolchain, "default")
    console = Console(width=400, record=True, file=io.StringIO())
    for r in inspection_renderables(doc):
        console.print(r)
    text = console.export_text()
    for kind, _module, function, _what, _numbers in EXPECTED:
        line = next((ln for ln in text.splitlines() if kind in ln and function in ln), None)
        assert line is not None, (kind, function)
    assert "getpid 39 (system.read)" in text and "io_uring_setup 425 (io_uring)" in text


@pytest.mark.parametrize(("name", "goroot", "expected"), [
    ("syscall.runtime_envs", False, True),      # the runtime's copy, pushed by linkname
    ("runtime.nanotime", False, True),           # a runtime internal modules pull by linkname
    ("internal/poll.(*FD).Read", False, True),   # an internal package
    ("internal/poll.(*FD).Read", True, False),   # ... which GOROOT code (cmd/*) may import
    ("os.Getenv", False, False),
    ("net.(*Dialer).DialContext", False, False),
    ("runtime.mallocgc", False, False),          # the compiler calls these from any package
    ("runtime.morestack_noctxt", False, False),
    ("runtime.panicIndex", False, False),
    ("runtime.gcWriteBarrier2", False, False),
    ("sort.Slice.func1", False, False),          # compiler-generated closure
    ("os/exec.(*Cmd).Run-fm", False, False),     # method value wrapper
    ("type:.eq.main.T", False, False),
])
def test_linkname_only(name: str, goroot: bool, expected: bool) -> None:
    assert linkname_only(name, goroot_code=goroot) is expected


def test_scan_collects_rip_relative_addresses() -> None:
    # lea rax, [rip + 0x1496]; lea rdx, [rip - 0x10]; lea rax, [rbx + 8] (not rip-relative)
    scan = scan_code(bytes.fromhex("488d0596140000" "488d15f0ffffff" "488d4308"), 0x1000)
    assert list(scan.address_refs()) == [(0x1000, 0x1007 + 0x1496), (0x1007, 0x100E - 0x10)]
