"""Results in Go's amd64 register ABI (gohook.sites.catalog.goabi.parse_results), against the compiler.

The oracle is the toolchain itself: small //go:noinline functions that return distinct constants are
compiled with `go build -gcflags=-S`, and the assembly says which register (or stack slot) each result
word is loaded into before RET. One function per distinct result shape of the catalog (generated from
the catalog's own signatures), plus hand-written cases for what the catalog does not show: results
after arguments that filled the registers (the index restarts at RAX), a nil error, results that do
not fit and go to the stack (and a later one that still takes a register), stack arguments before
stack results. ABI0 results are checked against the toolchain's own assembly of
syscall.rawSyscallNoError. Every installed toolchain (1.19, 1.21, 1.24, 1.27).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import gofixtures
import pytest
from gofixtures import Toolchain

from gohook.sites.catalog import Location, load_catalog, parse_results, parse_signature

# --- the Go side --------------------------------------------------------------------------------

#: Catalog result types -> the Go type the generated function declares.
GO_TYPES = {
    "int": "int", "int32": "int32", "uintptr": "uintptr", "bool": "bool", "string": "string",
    "[]string": "[]string", "[]int": "[]int", "error": "error", "Errno": "syscall.Errno",
}

ERRNO_DATA = "<errno data>"  # the address of a static word holding EPERM (a compiler static temp)
ITAB = "go:itab.syscall.Errno,error"


@dataclass(frozen=True)
class Case:
    """A Go function: its declaration (as goabi reads it), its body, and the token each result word holds."""

    name: str
    declaration: str  # "func NAME(params) results", with Go types
    body: str
    tokens: tuple[str, ...]  # what the assembly loads into each result word, in result-word order


def _value(go_type: str, k: int, globals_: list[str]) -> tuple[str, tuple[str, ...]]:
    """A Go expression of go_type that is distinct for k, and the tokens of its words in the assembly."""
    if go_type in ("int", "int32", "uintptr"):
        return str(1000 + k), (f"${1000 + k}",)
    if go_type == "bool":
        return "true", ("$1",)
    if go_type == "string":
        text = f"s{k}"
        return f'"{text}"', (f'go:string."{text}"', f"${len(text)}")
    if go_type.startswith("[]"):
        globals_.append(f"var g{k} {go_type}")
        return f"g{k}", (f"main.g{k}", f"main.g{k}+8", f"main.g{k}+16")
    if go_type.startswith("*"):
        globals_.append(f"var g{k} {go_type}")
        return f"g{k}", (f"main.g{k}",)
    if go_type == "error":
        return "syscall.EPERM", (ITAB, ERRNO_DATA)
    if go_type == "syscall.Errno":
        return "syscall.EPERM", ("$1",)
    raise AssertionError(f"no Go value for {go_type}")


def catalog_cases() -> tuple[list[Case], list[str]]:
    """One function per distinct result-type list of the catalog's register-ABI hooks."""
    catalog = load_catalog()
    shapes: dict[tuple[str, ...], str] = {}
    for entry in catalog.entries:
        for spec in entry.specs:
            if spec.abi != "internal":
                continue
            types = tuple(r.type for r in parse_results(spec.signature, spec.abi))
            shapes.setdefault(types, spec.function)
    cases: list[Case] = []
    globals_: list[str] = []
    for i, types in enumerate(sorted(shapes)):
        if not types:
            continue
        go_types = [GO_TYPES.get(t, "*T") if not t.startswith("*") else "*T" for t in types]
        exprs, tokens = [], []
        for j, t in enumerate(go_types):
            expr, toks = _value(t, 100 * i + j, globals_)
            exprs.append(expr)
            tokens += toks
        results = go_types[0] if len(go_types) == 1 else f"({', '.join(go_types)})"
        cases.append(Case(f"shape{i}", f"func shape{i}() {results}", f"return {', '.join(exprs)}", tuple(tokens)))
    return cases, globals_


HAND_CASES = (
    # arguments fill six registers; the results start over at RAX
    Case("fdEperm", "func fdEperm(dirfd int, path string, flags int, mode uint32) (fd int, err error)",
         "return -1, syscall.EPERM", ("$-1", ITAB, ERRNO_DATA)),
    Case("unnamedZero", "func unnamedZero(dirfd int, path string, flags int, perm uint32) (int, error)",
         "return 0, syscall.EPERM", ("$0", ITAB, ERRNO_DATA)),
    Case("threeNil", "func threeNil(a []string, b []string, c []string) (x, y int, err error)",
         "return 7, 9, nil", ("$7", "$9", "$0", "$0")),
    Case("unset", "func unset(key string) (value string, found bool)", 'return "", false', ("$0", "$0", "$0")),
    Case("rawErrno", "func rawErrno(trap, a1, a2, a3 uintptr) (r1, r2 uintptr, err syscall.Errno)",
         "return 5, 6, syscall.EPERM", ("$5", "$6", "$1")),
    Case("listen", "func (l *T) listen(ctx context.Context, laddr *T, proto int) (*T, error)",
         "return gt, gerr", ("main.gt", "main.gerr", "main.gerr+8")),
    # nine ints take every register: the string and the int after it go to the stack
    Case("allStack", "func allStack() (a, b, c, d, e, f, g, h, i int, s string, j int)",
         'return 1, 2, 3, 4, 5, 6, 7, 8, 9, "xy", 11',
         ("$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", 'go:string."xy"', "$2", "$11")),
    # the string does not fit in the one register left, the int after it does
    Case("mixed", "func mixed() (a, b, c, d, e, f, g, h int, s string, j int)",
         'return 1, 2, 3, 4, 5, 6, 7, 8, "xy", 11',
         ("$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", 'go:string."xy"', "$2", "$11")),
    # a stack argument (s: 16 bytes at stack+8) comes before the stack result t
    Case("stackArgs", "func stackArgs(x1, x2, x3, x4, x5, x6, x7, x8 int, s string, y int) "
                      "(a, b, c, d, e, f, g, h, i int, t string)",
         'return 1, 2, 3, 4, 5, 6, 7, 8, 9, "xy"',
         ("$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", 'go:string."xy"', "$2")),
)


def go_source(cases: list[Case], globals_: list[str]) -> str:
    lines = ["package main", "", 'import (\n\t"context"\n\t"syscall"\n)', "",
             "type T struct{ x int }", "", "var gt *T", "var gerr error", *globals_, ""]
    for case in cases:
        lines += ["//go:noinline", f"{case.declaration} {{ {case.body} }}", ""]
    lines += ["var _ = context.Background", "", "func main() {}", ""]
    return "\n".join(lines)


# --- reading the assembly ---------------------------------------------------------------------------

_INSN = re.compile(r"^\t0x[0-9a-f]+ \d+ \([^)]*\)\t(?P<op>\S+)(?:\t(?P<args>.*))?$")
_HEAD = re.compile(r"^(?P<name>\S+) STEXT")
_TEXT_FRAME = re.compile(r"\$(?P<frame>-?\d+)-\d+$")
_REGS = {"AX": "rax", "BX": "rbx", "CX": "rcx", "DI": "rdi", "SI": "rsi",
         "R8": "r8", "R9": "r9", "R10": "r10", "R11": "r11"}
_SP_SLOT = re.compile(r"^[\w.~]*\+(?P<off>\d+)\(SP\)$")


def _token(operand: str, regs: dict[str, str]) -> str:
    operand = operand.strip()
    if operand.startswith("$"):
        return operand
    if operand.endswith("(SB)"):
        sym = operand[: -len("(SB)")].replace("go.string.", "go:string.").replace("go.itab.", "go:itab.")
        if re.search(r"\.stmp_\d+$|runtime\.staticuint64s\+8$", sym):
            return ERRNO_DATA
        return sym
    return regs.get(operand, f"?{operand}")


def result_words(asm: str, function: str) -> dict[str, str]:
    """Location (str) -> token of what the function's code leaves in each register and stack slot at RET."""
    regs: dict[str, str] = {}
    stack: dict[str, str] = {}
    inside = False
    frame = None
    for line in asm.splitlines():
        head = _HEAD.match(line)
        if head:
            inside = head.group("name") in (f"main.{function}", f"main.(*T).{function}")
            continue
        m = _INSN.match(line)
        if not inside or not m:
            continue
        op, args = m.group("op"), [a.strip() for a in re.split(r",\s(?![^()]*\))", m.group("args") or "")]
        if op == "TEXT":
            frame = int(_TEXT_FRAME.search(m.group("args")).group("frame"))
        elif op == "RET":
            assert frame == 0, f"{function} has a frame of {frame} bytes: its SP offsets are not entry offsets"
            out = {_REGS[r]: v for r, v in regs.items() if r in _REGS}
            out.update(stack)
            return out
        elif op in ("MOVQ", "MOVL", "LEAQ") and len(args) == 2:
            slot = _SP_SLOT.match(args[1])
            if slot:
                stack[f"stack+{slot.group('off')}"] = _token(args[0], regs)
            else:
                regs[args[1]] = _token(args[0], regs)
        elif op == "XORL" and len(args) == 2 and args[0] == args[1]:
            regs[args[1]] = "$0"
        elif len(args) == 2:
            regs[args[1]] = f"?{op}"
    raise AssertionError(f"no RET for {function} in the assembly")


def compile_asm(toolchain: Toolchain, source: str, workdir: Path) -> str:
    """`go build -gcflags=-S` of a one-file main package; the compiler's assembly listing."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "go.mod").write_text("module example.com/abiresults\n\ngo 1.19\n")
    (workdir / "main.go").write_text(source)
    env = gofixtures.go_env(toolchain)
    proc = subprocess.run([str(toolchain.go), "build", "-gcflags=-S", "-o", str(workdir / "out"), "."],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout + proc.stderr


def _goabi_declaration(case: Case) -> str:
    """The declaration as the catalog writes it (package-qualified types the ABI table knows)."""
    return case.declaration.replace("syscall.Errno", "Errno")


# --- tests --------------------------------------------------------------------------------------------


def test_results_restart_at_rax_and_split_into_words() -> None:
    results = parse_results("func openat(dirfd int, path string, flags int, mode uint32) (fd int, err error)",
                            "internal")
    assert [(r.label, [str(w) for w in r.words]) for r in results] == [("fd", ["rax"]), ("err", ["rbx", "rcx"])]
    assert [r.label for r in parse_results("func Openat(a int, p string) (int, error)", "internal")] == ["#0", "#1"]
    (env,) = parse_results("func Environ() []string", "internal")
    assert [str(w) for w in env.words] == ["rax", "rbx", "rcx"] and env.name == ""
    value, found = parse_results("func Getenv(key string) (value string, found bool)", "internal")
    assert [str(w) for w in (*value.words, *found.words)] == ["rax", "rbx", "rcx"]
    r1, r2, err = parse_results("func Syscall(trap, a1, a2, a3 uintptr) (r1, r2 uintptr, err Errno)", "internal")
    assert err.is_error and [str(w) for w in err.words] == ["rcx"]  # a bare Errno is one word
    assert parse_results("func Clearenv()", "internal") == ()
    assert [r.type for r in parse_results("func open(name string) (*Plugin, error)", "internal")] == ["*Plugin",
                                                                                                      "error"]


def test_results_that_do_not_fit_go_to_the_stack_after_the_stack_arguments() -> None:
    *_, s, j = parse_results("func mixed() (a, b, c, d, e, f, g, h int, s string, j int)", "internal")
    assert [str(w) for w in s.words] == ["stack+8", "stack+16"] and not s.in_registers
    assert [str(w) for w in j.words] == ["r11"]  # a later result still takes the register left
    *_, t = parse_results("func f(x1, x2, x3, x4, x5, x6, x7, x8 int, s string, y int) "
                          "(a, b, c, d, e, f, g, h, i int, t string)", "internal")
    assert [str(w) for w in t.words] == ["stack+24", "stack+32"]  # after s's 16 bytes at stack+8
    # ABI0: everything on the stack, results after the arguments
    r1, r2 = parse_results("func rawSyscallNoError(trap, a1, a2, a3 uintptr) (r1, r2 uintptr)", "abi0")
    assert (r1.words, r2.words) == ((Location(stack_offset=40),), (Location(stack_offset=48),))


@pytest.mark.parametrize("text", [
    "func f() (a int, b)",  # a name without a type
    "func f() int, error",  # several results without parentheses
    "func f() (x func() int)",  # a function type (not in the ABI table)
    "func f() (m map[string]int)",  # a map (not in the ABI table)
])
def test_unparsable_results_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_results(text, "internal")


def test_parameters_are_unchanged_by_the_results() -> None:
    _, params = parse_signature("func sendmsgN(fd int, p, oob []byte, ptr unsafe.Pointer, salen _Socklen, "
                                "flags int) (n int, err error)", "internal")
    assert [[str(w) for w in p.words] for p in params] == [
        ["rax"], ["rbx", "rcx", "rdi"], ["rsi", "r8", "r9"], ["r10"], ["r11"], ["None"]]


def test_result_registers_match_the_compiler(toolchain: Toolchain, tmp_path: Path) -> None:
    generated, globals_ = catalog_cases()
    cases = [*generated, *HAND_CASES]
    asm = compile_asm(toolchain, go_source(cases, globals_), tmp_path / "abiresults")
    for case in cases:
        results = parse_results(_goabi_declaration(case), "internal")
        locations = [str(w) for r in results for w in r.words]
        assert len(locations) == len(case.tokens), case
        expected = dict(zip(locations, case.tokens, strict=True))
        got = result_words(asm, case.name)
        assert {loc: got.get(loc) for loc in expected} == expected, (toolchain, case.declaration)
    assert len(generated) >= 10  # every distinct result shape of the catalog is in there


def test_abi0_results_match_the_toolchains_own_assembly(toolchain: Toolchain) -> None:
    """syscall.rawSyscallNoError (assembly) stores r1, r2 at FP offsets; FP+0 is stack+8 at entry."""
    spec = next(s for s in load_catalog().entries if s.base.function == "syscall.rawSyscallNoError").base
    asm = (gofixtures.goroot(toolchain) / "src/syscall/asm_linux_amd64.s").read_text()
    body = asm.split("TEXT ·rawSyscallNoError(SB)", 1)[1].split("TEXT ", 1)[0]
    stored = {m.group(1): 8 + int(m.group(2)) for m in re.finditer(r"MOVQ\s+\w+, (r\d)\+(\d+)\(FP\)", body)}
    results = parse_results(spec.signature, spec.abi)
    assert stored == {r.name: r.words[0].stack_offset for r in results}
