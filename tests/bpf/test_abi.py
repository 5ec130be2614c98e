"""gohook.bpf.abi against gohook/bpf/c/gohook.h: the Python mirror of the C ABI matches the C (an alignchecker).

Like Tetragon's pkg/alignchecker: gcc compiles small programs that include gohook.h and print what the C
says (offsetof, sizeof, the value of every #define), and every name abi.py declares is compared with it:
int constants with their `#define GOHOOK_<name>`, enum members with `#define <prefix><member>`, CStruct
layouts and the event layout field by field, GO_ARG_REGS with the GOHOOK_REG macro. The checks enumerate
abi.py itself, so a name added there without a C counterpart (or with another value) fails here, and so
does a name of a kind this file does not know how to check.

Pure (no root, no bcc) but for one test: the BPF target's layout as clang lays it out through bcc.
"""

from __future__ import annotations

import ast
import ctypes
import enum
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gohook.attribution.ranges import Range
from gohook.bpf import abi
from gohook.bpf.render import BPF_DIR, LIB_DIR, render_defines
from gohook.plan.model import EnforcementPlan, HookPoint, ProbeAddress, Provenance, Sentinel, SyscallRule

#: Public names of abi.py that mirror nothing themselves (the tools the mirrors are written with).
NOT_MIRRORS = {"CStruct": "the type of the struct mirrors", "ENUM_PREFIXES": "the C names of the enum mirrors"}
#: Public names of abi.py checked as parts of the event layout (test_event_layout_matches_the_header).
EVENT_NAMES = {"EventLayout", "DEFAULT_LAYOUT", "HEADER_FIELDS"}
#: pt_regs fields of x86-64 that GOHOOK_REG may name.
PT_REGS = ("r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx", "si", "di", "orig_ax",
           "ip", "cs", "flags", "sp", "ss")


def _kind(name: str, value: Any) -> str | None:
    """What a public name of abi.py mirrors; None when it is no declaration of abi.py (an import)."""
    if name.startswith("_") or isinstance(value, ModuleType):
        return None
    if isinstance(value, type):
        if value.__module__ != abi.__name__:
            return None  # imported
        if name in NOT_MIRRORS:
            return "tool"
        if name in EVENT_NAMES:
            return "event"
        return "enum" if issubclass(value, enum.Enum) else "unknown"
    if not name.isupper():
        return None  # `annotations`, typing forms, functions of other modules
    if name in NOT_MIRRORS:
        return "tool"
    if name in EVENT_NAMES:
        return "event"
    if name == "GO_ARG_REGS":
        return "registers"
    if isinstance(value, abi.CStruct):
        return "struct"
    if isinstance(value, int) and not isinstance(value, bool | enum.Enum):
        return "define"
    return "unknown"


def _declared(kind: str) -> dict[str, Any]:
    return {name: value for name, value in vars(abi).items() if _kind(name, value) == kind}


def _c_define(name: str) -> str:
    """The #define an int constant of abi.py mirrors: X -> GOHOOK_X, DEFAULT_X -> GOHOOK_X (its default)."""
    return "GOHOOK_" + name.removeprefix("DEFAULT_")


def _gcc() -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc is missing (scripts/setup.sh installs it)")
    return gcc


def _run_c(tmp_path: Path, body: str, *, defines: dict[str, int] | None = None,
           headers: tuple[str, ...] = ("gohook.h",)) -> dict[str, int | None]:
    """Compile a program including headers (from gohook/bpf/c) whose main is body, run it, and read its output:
    lines `name value` (value `missing`: None)."""
    src = tmp_path / "abi.c"
    includes = "".join(f'#include "{h}"\n' for h in headers)
    src.write_text(f"#include <stddef.h>\n#include <stdio.h>\n{includes}int main(void)\n{{\n{body}\treturn 0;\n}}\n")
    exe = tmp_path / "abi"
    flags = [f"-D{name}={value}" for name, value in (defines or {}).items()]
    built = subprocess.run([_gcc(), "-Wall", f"-I{BPF_DIR}", *flags, "-o", str(exe), str(src)],
                           capture_output=True, text=True)
    if built.returncode:
        pytest.fail(f"gcc rejected the check program (a name abi.py mirrors is not in the C?):\n{built.stderr}")
    out: dict[str, int | None] = {}
    for line in subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.splitlines():
        name, value = line.split()
        out[name] = None if value == "missing" else int(value)
    return out


def _print_macro(key: str, macro: str) -> str:
    return (f"#ifdef {macro}\n\tprintf(\"{key} %lld\\n\", (long long)({macro}));\n#else\n"
            f"\tprintf(\"{key} missing\\n\");\n#endif\n")


def _print_layout(struct: str, fields: list[str]) -> str:
    lines = [f'\tprintf("{f} %zu\\n", offsetof(struct {struct}, {f}));\n' for f in fields]
    return "".join(lines) + f'\tprintf("sizeof %zu\\n", sizeof(struct {struct}));\n'


# --- what abi.py declares ----------------------------------------------------------------------------------


def test_every_name_abi_declares_is_checked() -> None:
    """A new kind of mirror in abi.py needs a check here first."""
    unknown = sorted(name for name, value in vars(abi).items() if _kind(name, value) == "unknown")
    assert not unknown, f"abi.py declares {unknown}, which tests/bpf/test_abi.py does not check against gohook.h"
    assert _declared("define") and _declared("enum") and _declared("struct")


def test_abi_imports_nothing_of_gohook_but_the_errors() -> None:
    """A base module: every stage may import it, so it must not import any stage."""
    tree = ast.parse(Path(abi.__file__).read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {m for m in imported if m.split(".")[0] == "gohook"} <= {"gohook.errors"}


# --- constants and enums ----------------------------------------------------------------------------------


def test_constants_match_the_defines(tmp_path: Path) -> None:
    consts = _declared("define")
    c = _run_c(tmp_path, "".join(_print_macro(name, _c_define(name)) for name in consts))
    missing = sorted(_c_define(n) for n in consts if c[n] is None)
    assert not missing, f"gohook.h defines none of {missing}"
    assert {n: c[n] for n in consts} == consts


def test_enums_match_the_defines(tmp_path: Path) -> None:
    enums = _declared("enum")
    assert set(abi.ENUM_PREFIXES) == set(enums), "ENUM_PREFIXES names every enum of abi.py, and only those"
    members = {f"{cls}.{m.name}": (abi.ENUM_PREFIXES[cls] + m.name, int(m)) for cls, e in enums.items() for m in e
               if not (issubclass(e, enum.Flag) and int(m) == 0)}  # a flag's NONE has no bit and no define
    c = _run_c(tmp_path, "".join(_print_macro(key, macro) for key, (macro, _) in members.items()))
    missing = sorted(macro for key, (macro, _) in members.items() if c[key] is None)
    assert not missing, f"gohook.h defines none of {missing}"
    assert {key: c[key] for key in members} == {key: value for key, (_, value) in members.items()}


def test_every_counter_is_mirrored(tmp_path: Path) -> None:
    """GOHOOK_NCOUNTERS (the counters map's size) is the number of CounterIndex members: no C-only counter."""
    assert _run_c(tmp_path, _print_macro("n", "GOHOOK_NCOUNTERS"))["n"] == len(abi.CounterIndex) == abi.NCOUNTERS
    assert [int(c) for c in abi.CounterIndex] == list(range(abi.NCOUNTERS))


# --- structs ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(_declared("struct")))
def test_structs_match_the_header(tmp_path: Path, name: str) -> None:
    """A CStruct (e.g. SYSRULE, struct gohook_sysrule) as gcc lays it out: every field offset and the size."""
    mirror: abi.CStruct = getattr(abi, name)
    c = _run_c(tmp_path, _print_layout(mirror.name, [f for f, _ in mirror.fields]))
    offsets = mirror.offsets()
    for field, _code in mirror.fields:
        assert c[field] == offsets[field], field
    assert c["sizeof"] == mirror.size


EVENT_FIELDS = [name for name, _ in abi.HEADER_FIELDS] + ["arg", "frames"]


@pytest.mark.parametrize(("max_frames", "arg_max"), [(64, 256), (128, 64), (8, 4096)])
def test_event_layout_matches_the_header(tmp_path: Path, max_frames: int, arg_max: int) -> None:
    c = _run_c(tmp_path, _print_layout("gohook_event", EVENT_FIELDS),
               defines={"GOHOOK_MAX_FRAMES": max_frames, "GOHOOK_ARG_MAX": arg_max})
    layout = abi.EventLayout(max_frames=max_frames, arg_max=arg_max)
    assert {f: c[f] for f in EVENT_FIELDS} == layout.offsets()
    assert c["sizeof"] == layout.size


def test_default_event_layout_is_the_header_default(tmp_path: Path) -> None:
    c = _run_c(tmp_path, _print_layout("gohook_event", EVENT_FIELDS))
    assert {f: c[f] for f in EVENT_FIELDS} == abi.DEFAULT_LAYOUT.offsets()
    assert c["sizeof"] == abi.DEFAULT_LAYOUT.size


# --- registers and rendered defines ------------------------------------------------------------------------


def test_go_arg_regs_are_gohook_reg(tmp_path: Path) -> None:
    """Register i of GO_ARG_REGS is what GOHOOK_REG(ctx, i) reads; other indexes read nothing."""
    decl = "".join(f"\t\tunsigned long long {r};\n" for r in PT_REGS)
    init = ", ".join(f".{r} = {i + 1}" for i, r in enumerate(PT_REGS))
    indexes = range(-1, len(abi.GO_ARG_REGS) + 1)
    prints = "".join(f'\tprintf("r{i + 1} %lld\\n", (long long)GOHOOK_REG(&regs, {i}));\n' for i in indexes)
    c = _run_c(tmp_path, f"\tstruct {{\n{decl}\t}} regs = {{{init}}};\n{prints}")
    read = [PT_REGS[c[f"r{i + 1}"] - 1] if c[f"r{i + 1}"] else None for i in indexes]
    expected = [r[1:] if r[1:].isalpha() else r for r in abi.GO_ARG_REGS]  # rax -> ax, r8 -> r8
    assert read == [None, *expected, None]


def _full_plan() -> EnforcementPlan:
    text = 0x401000
    hook = HookPoint(hook_id=0, function="os.OpenFile", entry=0x402000, probe=0x402004, file_offset=0x2004,
                     capability=0)
    prov = Provenance((ProbeAddress(text + 0x200, 0x200),), "bx", 288, g_m_offset=48, m_curg_offset=184,
                      parent_goid_offset=280, not_inherited=2)
    sentinel = Sentinel(((text + 0x300, text + 0x340),), (), syscall_capability=1)
    return EnforcementPlan(binary="/bin/app", pie=False, text_start=text, text_end=text + 0x10000,
                           capabilities=("files.read", "syscall"), modules=("a", "b"),
                           ranges=(Range(text + 0x2000, text + 0x3000, (1,)),), hooks=(hook,), goid_offset=152,
                           goexit=(text + 0x100, text + 0x120), provenance=prov, sentinel=sentinel,
                           syscall_rules=(SyscallRule(257, "openat", 0),))


def test_every_rendered_define_has_a_default(tmp_path: Path) -> None:
    """Each -D the renderer emits names a define the C declares with a default (a typo would go unused)."""
    plan = _full_plan()
    names = sorted(set(render_defines(plan)) | set(render_defines(replace(plan, provenance=None, sentinel=None))))
    assert {"GOHOOK_HOOKS", "GOHOOK_CREATED", "GOHOOK_EXEMPT", "GOHOOK_SENTINEL"} <= set(names)
    body = "".join(f'#ifndef {n}\n\tprintf("{n} missing\\n");\n#endif\n' for n in names)
    missing = _run_c(tmp_path, body, headers=("gohook.h", f"{LIB_DIR}/config.h"))
    assert not missing, f"rendered, but without a default in gohook.h or {LIB_DIR}/config.h: {sorted(missing)}"


# --- the BPF target -----------------------------------------------------------------------------------------


@pytest.fixture
def bpf_root() -> None:
    """Root is needed to create BPF maps: in CI (CI=true) its absence fails, elsewhere it skips loudly."""
    if os.geteuid() != 0:
        reason = "BPF tests need root (CAP_BPF): run the suite as root"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip("SKIPPED LOUDLY: " + reason)


def _ctypes_offset(ctype: Any, path: str) -> int:
    """Offset of a member path (`plen`, `alt[2].suffix`) in a ctypes structure, as offsetof gives it."""
    offset = 0
    for part in path.split("."):
        name, _, index = part.partition("[")
        types = dict(ctype._fields_)
        offset += getattr(ctype, name).offset
        ctype = types[name]
        if index:
            ctype = ctype._type_
            offset += int(index.rstrip("]")) * ctypes.sizeof(ctype)
    return offset


@pytest.mark.bpf
def test_bpf_layout_matches_python(bpf_root: None) -> None:
    """clang's BPF-target layout, as bcc derives it from maps whose values are the structs abi.py mirrors."""
    from gohook.bpf.loader import _bcc

    bcc = _bcc()
    structs: dict[str, abi.CStruct] = _declared("struct")
    maps = "".join(f"BPF_ARRAY(m_{name.lower()}, struct {s.name}, 1);\n" for name, s in structs.items())
    text = f"#include \"{BPF_DIR / 'gohook.h'}\"\nBPF_ARRAY(scratch, struct gohook_event, 1);\n{maps}"
    bpf = bcc.BPF(text=text.encode())
    try:
        leaf = bpf[b"scratch"].Leaf
        offsets = {f: getattr(leaf, f).offset for f in EVENT_FIELDS}
        layout = abi.EventLayout()
        assert offsets == layout.offsets()
        assert ctypes.sizeof(leaf) == layout.size
        for name, s in structs.items():
            leaf = bpf[f"m_{name.lower()}".encode()].Leaf
            assert {f: _ctypes_offset(leaf, f) for f, _ in s.fields} == s.offsets(), name
            assert ctypes.sizeof(leaf) == s.size, name
    finally:
        bpf.cleanup()
