"""How each catalog hook denies under `action: error` (issue 15): the ReturnPlan the loader builds.

Three oracles besides the catalog itself: issue 15's rules per capability class (what a denied call of
each class must return); the standard library's own failure paths, run for real: a Go program calls every
hooked function with an integer result so that its system call fails (a missing path, a bad descriptor)
and prints what it returned, which must be the value the plan returns in its place, on every installed
toolchain; and docs/capabilities.md, whose table of deny plans must be the catalog's.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import gofixtures
import pytest
import yaml
from gofixtures import Toolchain

from gohook.sites.catalog import (
    ALL_VERSIONS,
    EPERM,
    CatalogError,
    DenyKind,
    GoVersion,
    HookSpec,
    ValueKind,
    load_catalog,
    parse_catalog,
    parse_results,
)

REPO = Path(__file__).resolve().parents[2]
CATALOG_YAML = REPO / "gohook" / "sites" / "catalog.yaml"
CAPABILITIES_MD = REPO / "docs" / "capabilities.md"
INTEGER_TYPES = frozenset({"int", "uint", "int32", "uint32", "int64", "uint64", "uintptr"})


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def raw_doc() -> dict[str, Any]:
    return yaml.safe_load(CATALOG_YAML.read_text())


def _specs(catalog) -> list[HookSpec]:
    return [spec for entry in catalog.entries for spec in entry.specs]


def _spec(catalog, function: str) -> HookSpec:
    return next(s for s in _specs(catalog) if s.function == function)


def _words(spec: HookSpec) -> list[tuple[str, str, int]]:
    return [(str(w.at), w.kind.value, w.value) for w in spec.deny.words]


# --- the plans -------------------------------------------------------------------------------


def test_error_plans_set_every_result_register(catalog) -> None:
    openat = _spec(catalog, "syscall.openat")
    assert openat.deny.kind is DenyKind.ERROR and openat.deny.errno == EPERM == 1
    assert _words(openat) == [("rax", "const", -1), ("rbx", "errno_itab", 0), ("rcx", "errno_data", 1)]
    assert openat.deny.values_text == "fd=-1, err=EPERM" and str(openat.deny) == "error: fd=-1, err=EPERM"
    assert openat.deny.words[0].word == 0xFFFF_FFFF_FFFF_FFFF
    assert _words(_spec(catalog, "internal/syscall/unix.Openat"))[0] == ("rax", "const", 0)
    assert _words(_spec(catalog, "syscall.unlinkat")) == [("rax", "errno_itab", 0), ("rbx", "errno_data", 1)]
    # a bare syscall.Errno result is the number itself, in one register
    assert _words(_spec(catalog, "syscall.Syscall6")) == [("rax", "const", -1), ("rbx", "const", 0),
                                                          ("rcx", "const", 1)]
    # zero values: nil pointer, nil slice, empty string
    assert _spec(catalog, "plugin.open").deny.values_text == "nil, EPERM"
    assert _words(_spec(catalog, "syscall.Getgroups"))[:3] == [("rax", "const", 0)] + [("rbx", "const", 0),
                                                                                        ("rcx", "const", 0)]
    assert _spec(catalog, "syscall.Getwd").deny.values_text == 'wd="", err=EPERM'


def test_environment_and_value_read_plans(catalog) -> None:
    getenv = _spec(catalog, "syscall.Getenv").deny
    assert (getenv.kind, getenv.values_text) == (DenyKind.UNSET, 'value="", found=false')
    assert [(str(w.at), w.word) for w in getenv.words] == [("rax", 0), ("rbx", 0), ("rcx", 0)]
    for name in ("syscall.Environ", "syscall.runtime_envs"):
        plan = _spec(catalog, name).deny
        assert plan.kind is DenyKind.EMPTY and [str(w.at) for w in plan.words] == ["rax", "rbx", "rcx"]
    for name in ("syscall.Clearenv", "syscall.runtimeSetenv", "syscall.setenv_c"):
        assert _spec(catalog, name).deny.kind is DenyKind.NOOP and not _spec(catalog, name).deny.words
    for name in ("syscall.rawSyscallNoError", "os.Getpid", "syscall.Umask", "runtime.cgocall"):
        assert _spec(catalog, name).deny.kind is DenyKind.KILL and _spec(catalog, name).deny.explicit


#: Issue 15 §1: what a denied call of each capability returns.
CLASS_KINDS = {
    "files": {DenyKind.ERROR}, "network": {DenyKind.ERROR}, "exec": {DenyKind.ERROR},
    "memory": {DenyKind.ERROR}, "syscall": {DenyKind.ERROR}, "process": {DenyKind.ERROR},
    "plugin": {DenyKind.ERROR},
    "env.read": {DenyKind.UNSET, DenyKind.EMPTY},
    "env.write": {DenyKind.ERROR, DenyKind.NOOP},
    # functions that cannot report an error: kill (a value read, umask)
    "system.modify": {DenyKind.ERROR, DenyKind.KILL}, "system.read": {DenyKind.ERROR, DenyKind.KILL},
    "cgo": {DenyKind.KILL},
}


def test_every_plan_fits_its_capability_class_and_its_results(catalog) -> None:
    for spec in _specs(catalog):
        for cap in spec.capabilities:
            allowed = CLASS_KINDS.get(cap) or CLASS_KINDS[cap.split(".")[0]]
            assert spec.deny.kind in allowed, (spec.function, cap, spec.deny)
        results = parse_results(spec.signature, spec.abi)
        if spec.deny.kind in (DenyKind.ERROR, DenyKind.UNSET, DenyKind.EMPTY):
            # every result word is set, in a register, in result order
            assert [w.at for w in spec.deny.words] == [w for r in results for w in r.words], spec.function
            assert all(w.at.register is not None for w in spec.deny.words)
        if any(r.is_error for r in results):
            assert spec.deny.kind is DenyKind.ERROR, spec.function
        # a kill is stated in the data, never a default
        assert spec.deny.kind is not DenyKind.KILL or spec.deny.explicit, spec.function
    errors = [s for s in _specs(catalog) if s.deny.kind is DenyKind.ERROR]
    assert all(s.deny.words and any(w.kind in (ValueKind.ERRNO_DATA, ValueKind.CONST) and w.value == EPERM
                                    for w in s.deny.words) for s in errors)


# --- validation ------------------------------------------------------------------------------


def _hook(doc: dict[str, Any], function: str) -> dict[str, Any]:
    return next(h for h in doc["hooks"] if h["function"] == function)


def _deny(function: str, value: Any):
    def mutate(doc: dict[str, Any]) -> None:
        hook = _hook(doc, function)
        if value is None:
            hook.pop("deny", None)
        else:
            hook["deny"] = value

    return mutate


BROKEN = [
    (_deny("syscall.openat", None), r"syscall\.openat\.deny: say what integer result fd \(int\) is on failure"),
    (_deny("internal/syscall/unix.Openat", "error"), r"say what integer result #0 \(int\) is on failure"),
    (_deny("os.Getuid", None), r"os\.Getuid\.deny: the results \(int\) have no error to carry a denial"),
    (_deny("syscall.Getenv", None), r"the results \(string, bool\) have no error"),
    (_deny("syscall.Getenv", "empty"), r"empty needs one slice result, not \(string, bool\)"),
    (_deny("syscall.Environ", "unset"), r"unset needs results \(string, bool\), not \(\[\]string\)"),
    (_deny("syscall.Environ", "error"), r"an error deny needs exactly one error result"),
    (_deny("syscall.Chdir", "noop"), r"noop returns no value, but the function has results \(error\)"),
    (_deny("syscall.Chdir", "ignore"), r"deny\.kind: expected one of error, unset, empty, noop, kill"),
    (_deny("syscall.Chdir", {"kind": "kill", "values": {"err": 0}}), r"only an error deny takes values, not kill"),
    (_deny("syscall.openat", {"kind": "error", "values": {"fd": -1, "count": 0}}), r"has no result 'count'"),
    (_deny("syscall.openat", {"kind": "error", "values": {"fd": -1, "err": 0}}),
     r"values\.err: only integer results take a value; error is returned as its zero value"),
    (_deny("plugin.open", {"kind": "error", "values": {0: 0}}), r"only integer results take a value; \*Plugin"),
    (_deny("syscall.openat", {"kind": "error", "values": {"fd": 1 << 63}}), r"does not fit a int"),
    (_deny("syscall.mmap", {"kind": "error", "values": {"xaddr": 1 << 64}}), r"does not fit a uintptr"),
    (_deny("syscall.openat", {"kind": "error", "values": {"fd": "-1"}}), r"values\.fd: expected an integer"),
    (_deny("syscall.rawSyscallNoError", "noop"), r"noop returns no value"),
    (_deny("syscall.rawSyscallNoError", {"kind": "error"}), r"result r1 \(uintptr\) is returned on the stack "
                                                            r"\(stack\+40\), which the error deny cannot write"),
    (_deny("syscall.Getenv", {"kind": "unset", "why": "x"}), r"syscall\.Getenv\.deny: unknown key\(s\) why"),
]


@pytest.mark.parametrize(("mutate", "message"), BROKEN, ids=[m for _, m in BROKEN])
def test_broken_deny_raises_catalog_error(raw_doc: dict[str, Any], mutate, message: str) -> None:
    doc = copy.deepcopy(raw_doc)
    mutate(doc)
    with pytest.raises(CatalogError, match=message) as info:
        parse_catalog(yaml.safe_dump(doc, sort_keys=False), "broken.yaml")
    assert str(info.value).startswith("broken.yaml: ") and "\n" not in str(info.value)


def test_a_result_on_the_stack_refuses_every_deny_but_kill() -> None:
    """A register-ABI function whose error does not fit in the registers left (nine ints before it)."""
    text = CATALOG_YAML.read_text()
    fat = ("  - function: syscall.Chdir\n"
           "    signature: func Chdir(path string) (a, b, c, d, e, f, g, h int, err error)\n")
    broken = text.replace("  - function: syscall.Chdir\n    signature: func Chdir(path string) (err error)\n", fat)
    assert broken != text
    with pytest.raises(CatalogError, match=r"result err \(error\) is returned on the stack \(stack\+8, stack\+16\)"):
        parse_catalog(broken, "fat.yaml")
    fine = parse_catalog(broken.replace(fat, fat + "    deny: kill\n"), "fat.yaml")
    assert next(s for e in fine.entries for s in e.specs if s.function == "syscall.Chdir").deny.kind is DenyKind.KILL


def test_variants_are_checked_against_their_own_signature(raw_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(raw_doc)
    hook = _hook(doc, "net.(*sysListener).listenTCP")
    hook["versions"][0]["signature"] = ("func (sl *sysListener) listenTCPProto(ctx context.Context, laddr *TCPAddr, "
                                        "proto int) (int, error)")
    with pytest.raises(CatalogError, match=r"versions\[0\]\.deny: say what integer result #0"):
        parse_catalog(yaml.safe_dump(doc, sort_keys=False), "variant.yaml")
    hook["versions"][0]["deny"] = {"kind": "error", "values": {0: -1}}
    spec = next(s for e in parse_catalog(yaml.safe_dump(doc, sort_keys=False)).entries for s in e.specs
                if s.function == "net.(*sysListener).listenTCPProto")
    assert spec.deny.values_text == "-1, EPERM"


# --- the standard library's failure paths, run -------------------------------------------------

FAILURES_GO = r'''package main

import (
	"encoding/json"
	"os"
	"syscall"
	_ "unsafe"
)

//go:linkname unixOpenat internal/syscall/unix.Openat
func unixOpenat(dirfd int, path string, flags int, perm uint32) (int, error)

//go:linkname sysMmap syscall.mmap
func sysMmap(addr uintptr, length uintptr, prot int, flags int, fd int, offset int64) (xaddr uintptr, err error)

const missing = "/nonexistent-gohook-deny/x"

var out = map[string]map[string]int64{}
var more []func()

func record(function string, err error, values map[string]int64) {
	if err == nil {
		panic(function + " did not fail")
	}
	out[function] = values
}

func raw(function string, r1, r2 uintptr, e syscall.Errno) {
	if e == 0 {
		panic(function + " did not fail")
	}
	out[function] = map[string]int64{"r1": int64(r1), "r2": int64(r2)}
}

func main() {
	fd, err := syscall.Open(missing, syscall.O_RDONLY, 0) // openat(AT_FDCWD, ...), inlined
	record("syscall.openat", err, map[string]int64{"fd": int64(fd)})
	fd, err = unixOpenat(-100, missing, syscall.O_RDONLY, 0)
	record("internal/syscall/unix.Openat", err, map[string]int64{"#0": int64(fd)})
	n, err := syscall.Readlink(missing, make([]byte, 64)) // readlinkat(AT_FDCWD, ...), inlined
	record("syscall.readlinkat", err, map[string]int64{"n": int64(n)})
	x, err := sysMmap(0, 4096, syscall.PROT_READ, syscall.MAP_SHARED, -1, 0) // EBADF
	record("syscall.mmap", err, map[string]int64{"xaddr": int64(x)})
	n, err = syscall.SendmsgN(-1, []byte("x"), nil, nil, 0) // EBADF
	record("syscall.sendmsgN", err, map[string]int64{"n": int64(n)})
	pid, err := syscall.ForkExec(missing, []string{missing}, &syscall.ProcAttr{}) // ENOENT from the child
	record("syscall.forkExec", err, map[string]int64{"pid": int64(pid)})
	bad := ^uintptr(0) // close(-1): EBADF
	r1, r2, e := syscall.Syscall(syscall.SYS_CLOSE, bad, 0, 0)
	raw("syscall.Syscall", r1, r2, e)
	r1, r2, e = syscall.Syscall6(syscall.SYS_CLOSE, bad, 0, 0, 0, 0, 0)
	raw("syscall.Syscall6", r1, r2, e)
	r1, r2, e = syscall.RawSyscall(syscall.SYS_CLOSE, bad, 0, 0)
	raw("syscall.RawSyscall", r1, r2, e)
	r1, r2, e = syscall.RawSyscall6(syscall.SYS_CLOSE, bad, 0, 0, 0, 0, 0)
	raw("syscall.RawSyscall6", r1, r2, e)
	r1, r2, e = syscall.AllThreadsSyscall(syscall.SYS_CLOSE, bad, 0, 0)
	raw("syscall.AllThreadsSyscall", r1, r2, e)
	r1, r2, e = syscall.AllThreadsSyscall6(syscall.SYS_CLOSE, bad, 0, 0, 0, 0, 0)
	raw("syscall.AllThreadsSyscall6", r1, r2, e)
	for _, f := range more {
		f()
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
'''

FAILURES_GO124 = r'''//go:build go1.24

package main

import (
	_ "unsafe"
)

//go:linkname unixReadlinkat internal/syscall/unix.Readlinkat
func unixReadlinkat(dirfd int, path string, buf []byte) (int, error)

func init() {
	more = append(more, func() {
		n, err := unixReadlinkat(-100, missing, make([]byte, 64))
		record("internal/syscall/unix.Readlinkat", err, map[string]int64{"#0": int64(n)})
	})
}
'''


def run_failures(toolchain: Toolchain, workdir: Path) -> dict[str, dict[str, int]]:
    """Build and run the program above (CGO_ENABLED=0); what each function returned when it failed."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "go.mod").write_text("module example.com/denyvalues\n\ngo 1.19\n")
    (workdir / "main.go").write_text(FAILURES_GO)
    (workdir / "readlinkat.go").write_text(FAILURES_GO124)
    (workdir / "linkname.s").write_text("// lets the package declare the linknamed functions without a body\n")
    env = gofixtures.go_env(toolchain)
    # Go 1.23+ refuses pull-only linknames into the standard library unless told not to check
    ldflags = ["-ldflags=-checklinkname=0"] if toolchain.release >= (1, 23) else []
    build = subprocess.run([str(toolchain.go), "build", *ldflags, "-o", str(workdir / "denyvalues"), "."],
                           cwd=workdir, env=env, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stderr[-4000:]
    run = subprocess.run([str(workdir / "denyvalues")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(run.stdout)


def test_integer_results_are_what_the_function_returns_on_failure(toolchain: Toolchain, tmp_path: Path) -> None:
    catalog = load_catalog()
    version = GoVersion(*toolchain.release)
    observed = run_failures(toolchain, tmp_path / "denyvalues")
    expected: dict[str, dict[str, int]] = {}
    for spec in catalog.hooks_for(version):
        integer = {r.label for r in parse_results(spec.signature, spec.abi)
                   if not r.is_error and r.type in INTEGER_TYPES}
        if spec.deny.kind is DenyKind.ERROR and integer:
            expected[spec.function] = {w.result: w.value for w in spec.deny.words if w.result in integer}
    # every hook with an integer failure value is run, and returns exactly that value
    assert observed == expected
    assert observed["syscall.openat"] == {"fd": -1} and observed["internal/syscall/unix.Openat"] == {"#0": 0}


# --- docs/capabilities.md ------------------------------------------------------------------------

DOCS_HEADER = "| function (Go releases) | capability | deny | result values | registers |"


def deny_table(catalog) -> list[str]:
    """The table of docs/capabilities.md "How each hook denies (action: error)", from the catalog."""
    rows = [DOCS_HEADER, "|---|---|---|---|---|"]
    for entry in catalog.entries:
        for spec in entry.specs:
            rows.append(_row(spec, "other releases" if spec is entry.base and entry.variants else None))
    return rows


def _row(spec: HookSpec, releases: str | None) -> str:
    releases = releases or ("" if spec.go == ALL_VERSIONS else str(spec.go))
    values = spec.deny.values_text.replace("|", "\\|")
    return (f"| `{spec.function}`{f' ({releases})' if releases else ''} | {', '.join(sorted(spec.capabilities))} | "
            f"{spec.deny.kind.value} | {values} | {spec.deny.registers_text} |")


def test_docs_table_is_the_catalogs(catalog) -> None:
    lines = CAPABILITIES_MD.read_text().splitlines()
    assert any(re.match(r"^## How each hook denies \(action: error\)$", line) for line in lines)
    start = lines.index(DOCS_HEADER)
    table = lines[start:]
    table = table[: next((i for i, line in enumerate(table) if not line.startswith("|")), len(table))]
    expected = deny_table(catalog)
    assert table == expected, "docs/capabilities.md is out of date; the table should read:\n" + "\n".join(expected)
