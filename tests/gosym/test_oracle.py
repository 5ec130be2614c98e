"""gohook.gosym against independent oracles, on real binaries.

Every installed toolchain x build mode (default, stripped, pie, cgo) x
fixture is built by tests/gofixtures.py and read three ways:

- gohook.gosym.GoBinary (the code under test);
- testdata/go/oracle: Go's own debug/gosym, debug/buildinfo, debug/elf;
- `go version -m` (build info) and the Go runtime itself
  (runtime.Callers + runtime.CallersFrames in testdata/go/inlineapp) for
  inline expansion.

Stripped binaries have no symbol table, so the oracle cannot find
runtime.text by itself. -s -w changes .text bytes (rodata moves, so
RIP-relative displacements change) but not where .text is nor .gopclntab:
the tests check that against the unstripped build of the same source, then
run the oracle with the .text address as text start (valid for these static
builds) and require the unstripped build's function table.

Function names are not unique (ABI wrappers share their target's name), so
per-function facts are keyed by entry address.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import gofixtures
import pytest
from elftools.elf.elffile import ELFFile
from gofixtures import Toolchain

from gohook.errors import GohookError
from gohook.gosym import GoBinary
from gohook.gosym.pclntab import name_for_print

MODES = tuple(m for m in gofixtures.MODES if m != "arm64")  # (arm64: cross-compiled, cannot run here)
PANIC_FUNCTIONS = ("runtime.gopanic", "runtime.sigpanic", "runtime.panicwrap")
APPS = ("capapp", "inlineapp")

Build = Callable[[Toolchain, str, str], Path]
Oracle = Callable[..., dict[str, Any]]

# Expected module of functions in capapp (package -> module is the rule;
# these pin the tricky cases). Names are matched by prefix up to "[" so
# that generic instantiations match whatever each Go release calls them.
CAPAPP_MODULES = {
    "main.main": "example.com/capapp",
    "main.doInline": "example.com/capapp",
    "github.com/acme/fileutil.ReadAll": "github.com/acme/fileutil",
    "github.com/acme/fileutil.Walk.func1": "github.com/acme/fileutil",
    "github.com/acme/fileutil.ReadAs[": "github.com/acme/fileutil",
    "github.com/acme/go%2estrutil.Sort": "github.com/acme/go.strutil",
    "github.com/acme/go%2estrutil.Sort.func1": "github.com/acme/go.strutil",
    "gopkg.in/acme%2ev2.Parse": "gopkg.in/acme.v2",
    "github.com/acme/mono.Open": "github.com/acme/mono",
    "github.com/acme/mono/sub.OpenFile": "github.com/acme/mono/sub",
    "github.com/acme/netclient.Dial": "github.com/acme/netclient",
    "github.com/acme/runner.True": "github.com/acme/runner",
    "github.com/evil/telemetry.PhoneHome": "github.com/evil/telemetry",
    "os.OpenFile": "std",
    "runtime.main": "std",
    "runtime.goexit": "std",
    "internal/poll.(*FD).Read": "std",
    "vendor/golang.org/x/net/dns/dnsmessage.": "std",
}
CAPAPP_PACKAGES = {
    "main.main": "main",
    "github.com/acme/go%2estrutil.Sort.func1": "github.com/acme/go.strutil",
    "gopkg.in/acme%2ev2.Parse": "gopkg.in/acme.v2",
    "github.com/acme/mono/sub.OpenFile": "github.com/acme/mono/sub",
    "github.com/acme/fileutil.ReadAs[": "github.com/acme/fileutil",
    "internal/poll.(*FD).Read": "internal/poll",
    "vendor/golang.org/x/net/dns/dnsmessage.": "vendor/golang.org/x/net/dns/dnsmessage",
}


# --- helpers ------------------------------------------------------------------


@cache
def _open(path: Path) -> GoBinary:
    """One GoBinary per file for the whole session (parsing is the slow part)."""
    return GoBinary.open(path)


def _section(path: Path, name: str) -> tuple[int, bytes]:
    """(address, bytes) of an ELF section, read with pyelftools."""
    with path.open("rb") as f:
        sec = ELFFile(f).get_section_by_name(name)
        if sec is None:
            raise AssertionError(f"{path}: no section {name}")
        return sec["sh_addr"], sec.data()


def _is_static(path: Path) -> bool:
    """No program interpreter: linked by Go's internal linker without cgo, so runtime.text starts .text."""
    with path.open("rb") as f:
        return not any(seg["p_type"] == "PT_INTERP" for seg in ELFFile(f).iter_segments())


def _table_oracle(go_build: Build, go_oracle: Oracle, toolchain: Toolchain, app: str, mode: str) -> dict[str, Any]:
    """Oracle document whose function table describes the build (toolchain, app, mode).

    A stripped build has no runtime.text symbol. It is checked two ways: its
    .gopclntab must equal the unstripped build's (at the same .text address
    and size), and the oracle run with the .text address as text start (the
    build is static) must give the unstripped build's table.
    """
    binary = go_build(toolchain, app, mode)
    if mode != "stripped":
        doc = go_oracle(binary)
        assert not doc.get("table_error"), f"oracle could not read {binary}: {doc['table_error']}"
        if _is_static(binary):
            assert doc["text_start"] == doc["text_section"], "runtime.text is not the start of .text"
        return doc
    assert go_oracle(binary).get("table_error"), "the oracle unexpectedly read a stripped binary's table"
    unstripped = go_build(toolchain, app, "default")
    # -s -w keeps the layout of code but not its bytes: the longer build-info
    # string shifts rodata, so RIP-relative displacements in .text change.
    # The function table only depends on .gopclntab and where .text is.
    text, text_unstripped = _section(binary, ".text"), _section(unstripped, ".text")
    assert (text[0], len(text[1])) == (text_unstripped[0], len(text_unstripped[1])), (
        f".text of {binary} is not where the unstripped build {unstripped} has it"
    )
    assert _section(binary, ".gopclntab")[1] == _section(unstripped, ".gopclntab")[1], (
        f".gopclntab of {binary} differs from the unstripped build {unstripped}: "
        "the unstripped oracle cannot stand in for the stripped binary"
    )
    assert _is_static(binary)
    doc = go_oracle(binary, text[0])
    assert not doc.get("table_error"), doc.get("table_error")
    assert doc["functions"] == go_oracle(unstripped)["functions"]
    return doc


def _same_position(got: tuple[str, int], want: tuple[str, int]) -> bool:
    """gohook's file:line equals the oracle's; "no line information" matches in any spelling.

    For PCs without a line table (Go 1.24+'s go:textfipsstart/end markers)
    debug/gosym says ("", -1), the runtime ("?", 0); gohook must say there is
    none, spelled either way.
    """
    if want[0] == "" and want[1] <= 0:
        return got[0] in ("", "?") and got[1] <= 0
    return got == want


def _find(names: list[str], prefix: str) -> str:
    """The first name equal to prefix, or starting with it when prefix ends in '[' or '.'."""
    if prefix in names:
        return prefix
    if prefix.endswith(("[", ".")):
        for n in names:
            if n.startswith(prefix):
                return n
    raise AssertionError(f"no function {prefix!r} in the binary")


def _assert_same_functions(b: GoBinary, doc: dict[str, Any]) -> None:
    """gohook's function list equals the oracle's: name, entry, end, funcID, flag; reports the first difference."""
    got = [(f.name, f.entry, f.end, f.func_id, f.flag) for f in b.functions]
    want = [(f["name"], f["entry"], f["end"], f["func_id"], f["flag"]) for f in doc["functions"]]
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        assert g == w, f"function {i}: gohook {g} != oracle {w}"
    assert len(got) == len(want), f"{len(got)} functions vs oracle {len(want)}"


def _module_dict(m: Any) -> dict[str, Any]:
    if m is None:
        return {"path": "", "version": "", "sum": "", "replace": None}
    replace = _module_dict(m.replace) if m.replace else None
    return {"path": m.path, "version": m.version, "sum": m.sum, "replace": replace}


def _gohook_build_info(b: GoBinary) -> dict[str, Any]:
    info = b.build_info
    assert info is not None, f"{b.path}: gohook found no build info"
    return {
        "go_version": info.go_version,
        "path": info.path,
        "main": _module_dict(info.main),
        "deps": [_module_dict(d) for d in info.deps],
        "settings": dict(info.settings),
    }


def _reference_build_info(doc: dict[str, Any]) -> dict[str, Any]:
    keys = [k for k, _ in doc["settings"]]
    assert len(keys) == len(set(keys)), f"duplicate build settings: {keys}"
    return {**doc, "settings": dict(doc["settings"])}


# --- function table -------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("app", APPS)
def test_functions_match_oracle(toolchain: Toolchain, app: str, mode: str, go_build: Build, go_oracle: Oracle) -> None:
    doc = _table_oracle(go_build, go_oracle, toolchain, app, mode)
    b = _open(go_build(toolchain, app, mode))
    _assert_same_functions(b, doc)
    assert [f.entry for f in b.functions] == sorted(f.entry for f in b.functions)
    # The oracle's funcID reading agrees with the toolchain's source.
    ids = gofixtures.source_func_ids(toolchain)
    by_name = {f["name"]: f for f in doc["functions"]}
    assert by_name["runtime.goexit"]["func_id"] == ids["goexit"]
    assert by_name["runtime.goexit"]["flag"] & 1, "runtime.goexit lacks the TopFrame flag"
    assert by_name["runtime.main"]["func_id"] == ids["runtime_main"]
    assert by_name["main.main"]["func_id"] == ids["normal"] == 0
    bad = [
        (f["name"], hex(f["entry"]), b.line_at(f["entry"]), (f["file"], f["line"]))
        for f in doc["functions"]
        if not _same_position(b.line_at(f["entry"]), (f["file"], f["line"]))
    ]
    assert not bad, f"{len(bad)} function entries with a different file:line, first: {bad[:5]}"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("app", APPS)
def test_sampled_pcs_match_oracle(
    toolchain: Toolchain, app: str, mode: str, go_build: Build, go_oracle: Oracle
) -> None:
    doc = _table_oracle(go_build, go_oracle, toolchain, app, mode)
    b = _open(go_build(toolchain, app, mode))
    samples = doc["samples"]
    assert len(samples) > 1000
    # Physical wrapper functions (funcID wrapper, numbered as the toolchain's
    # own source declares it) are elided by the runtime, and by frames().
    wrapper_id = gofixtures.source_func_ids(toolchain)["wrapper"]
    # By entry: ABI wrappers share their target's name.
    entries = [f["entry"] for f in doc["functions"]]
    bad = []
    for s in samples:
        pc = s["pc"]
        fn = b.function_at(pc)
        line = b.line_at(pc)
        got = (fn.name if fn else None, line)
        want = (s["function"], (s["file"], s["line"]))
        if got[0] != want[0] or not _same_position(line, want[1]):
            bad.append((hex(pc), got, want))
            continue
        chain = b.frames(pc, return_address=False)
        physical = [f for f in chain if not f.inlined]
        if doc["functions"][bisect_right(entries, pc) - 1]["func_id"] == wrapper_id:
            # Kept only when the frame inside it is a panic (elideWrapperCalling).
            kept = physical and len(chain) > 1 and chain[-2].function in PANIC_FUNCTIONS
            if physical and not kept:
                bad.append((hex(pc), "wrapper not elided", chain))
            continue
        # The outermost frame is the physical function; the innermost sits
        # at the pc's own file:line (unless an inlined wrapper was elided,
        # which only happens in <autogenerated> code).
        if [f.function for f in physical] != [name_for_print(s["function"])] or chain[-1].inlined:
            bad.append((hex(pc), "outermost frame", chain, s["function"]))
        elif s["file"] != "<autogenerated>" and not _same_position((chain[0].file, chain[0].line), want[1]):
            bad.append((hex(pc), "innermost frame", chain, want[1]))
    assert not bad, f"{len(bad)} of {len(samples)} sampled PCs disagree, first: {bad[:5]}"


@pytest.mark.parametrize("mode", MODES)
def test_addresses_outside_functions(toolchain: Toolchain, mode: str, go_build: Build, go_oracle: Oracle) -> None:
    doc = _table_oracle(go_build, go_oracle, toolchain, "capapp", mode)
    b = _open(go_build(toolchain, "capapp", mode))
    first, last = doc["functions"][0], doc["functions"][-1]
    assert b.function_at(first["entry"] - 1) is None
    assert b.function_at(last["end"]) is None
    assert b.function_at(last["end"] - 1) is not None
    assert b.frames(last["end"] + 16) == []
    with pytest.raises(GohookError):
        b.line_at(last["end"] + 16)


@pytest.mark.slow
def test_toolchain_compiler_matches_oracle(toolchain: Toolchain, go_oracle: Oracle) -> None:
    """A large production binary: the toolchain's own cmd/compile (Debian's is stripped)."""
    binary = gofixtures.goroot(toolchain) / "pkg" / "tool" / "linux_amd64" / "compile"
    with binary.open("rb") as f:
        stripped = ELFFile(f).get_section_by_name(".symtab") is None
    if stripped:
        assert _is_static(binary), f"{binary} is stripped and dynamically linked: no independent text start"
        doc = go_oracle(binary, _section(binary, ".text")[0])
    else:
        doc = go_oracle(binary)
    assert not doc.get("table_error"), doc.get("table_error")
    b = _open(binary)
    assert b.is_stripped == stripped
    _assert_same_functions(b, doc)
    bad = [
        (hex(smp["pc"]), smp["function"], b.line_at(smp["pc"]))
        for smp in doc["samples"]
        if getattr(b.function_at(smp["pc"]), "name", None) != smp["function"]
        or not _same_position(b.line_at(smp["pc"]), (smp["file"], smp["line"]))
    ]
    assert not bad, f"{len(bad)} of {len(doc['samples'])} sampled PCs disagree, first: {bad[:5]}"
    assert _gohook_build_info(b) == _reference_build_info(doc["build_info"])


# --- build info -----------------------------------------------------------------


@pytest.mark.parametrize(("app", "mode"), [(app, mode) for app in APPS for mode in MODES] + [("vendored", "default")])
def test_build_info_matches_oracles(
    toolchain: Toolchain,
    app: str,
    mode: str,
    go_build: Build,
    go_oracle: Oracle,
    go_version_m: Callable[[Toolchain, Path], dict[str, Any]],
) -> None:
    binary = go_build(toolchain, app, mode)
    doc = go_oracle(binary)
    assert not doc.get("build_info_error"), doc.get("build_info_error")
    oracle = _reference_build_info(doc["build_info"])
    version_m = _reference_build_info(go_version_m(toolchain, binary))
    assert oracle == version_m, "the two oracles disagree (gofixtures.parse_version_m bug?)"
    got = _gohook_build_info(_open(binary))
    assert got == oracle
    assert got["go_version"] == f"go{toolchain.version}"


def test_capapp_build_info_shapes(toolchain: Toolchain, go_build: Build, go_oracle: Oracle) -> None:
    """The fixture really has every module-line shape gohook must parse."""
    info = go_oracle(go_build(toolchain, "capapp", "default"))["build_info"]
    assert info["path"] == "example.com/capapp"
    assert info["main"]["path"] == "example.com/capapp"
    deps = {d["path"]: d for d in info["deps"]}
    # A plain dependency with a go.sum hash (served by the local file proxy).
    assert deps["github.com/acme/netclient"]["version"] == "v1.8.0"
    assert deps["github.com/acme/netclient"]["sum"].startswith("h1:")
    # A module replaced by another module version (with its hash).
    runner = deps["github.com/acme/runner"]
    assert runner["replace"]["path"] == "github.com/acme/runner-fork"
    assert runner["replace"]["version"] == "v0.3.1"
    assert runner["replace"]["sum"].startswith("h1:")
    # Modules replaced by local directories, dotted and nested paths.
    for path in ("github.com/acme/go.strutil", "gopkg.in/acme.v2", "github.com/acme/mono", "github.com/acme/mono/sub"):
        assert deps[path]["replace"]["path"].startswith("./deps/"), deps[path]


# --- packages and modules ---------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_capapp_module_attribution(toolchain: Toolchain, mode: str, go_build: Build, go_oracle: Oracle) -> None:
    binary = go_build(toolchain, "capapp", mode)
    doc = _table_oracle(go_build, go_oracle, toolchain, "capapp", mode)
    info = go_oracle(binary)["build_info"]
    b = _open(binary)
    names = [f["name"] for f in doc["functions"]]
    for prefix, module in CAPAPP_MODULES.items():
        name = _find(names, prefix)
        assert b.module_of(name) == module, name
    for prefix, package in CAPAPP_PACKAGES.items():
        name = _find(names, prefix)
        assert b.package_of(name) == package, name
    # Whole table: every attribution is "std" or a module the build info
    # lists; functions of listed modules never land in "std".
    listed = {info["main"]["path"]} | {d["path"] for d in info["deps"]}
    for name in names:
        module = b.module_of(name)
        assert module == "std" or module in listed, (name, module)
        if name.startswith("main.") or any(_in_module(name, m) for m in listed):
            assert module != "std", name


def _in_module(name: str, module: str) -> bool:
    """Whether a function name lies in module (its root package or a package below it)."""
    head, _, last = module.rpartition("/")
    escaped = f"{head}/{last.replace('.', '%2e')}" if head else last.replace(".", "%2e")
    return name.startswith((escaped + ".", module + "/"))


def test_vendored_gopath_names(toolchain: Toolchain, go_build: Build, go_oracle: Oracle) -> None:
    binary = go_build(toolchain, "vendored", "default")
    doc = go_oracle(binary)
    b = _open(binary)
    _assert_same_functions(b, doc)
    info = doc["build_info"]
    assert info["path"] == "example.com/vendored" and info["main"]["path"] == "" and info["deps"] == []
    names = {f["name"] for f in doc["functions"]}
    x = "example.com/vendored/vendor/github.com/acme/x.ReadFile"
    width = "example.com/vendored/vendor/golang.org/x/text/width.Narrow"
    assert {x, width, "main.main"} <= names
    assert b.package_of(x) == "example.com/vendored/vendor/github.com/acme/x"
    # No module list: gohook infers the module from the vendored import path.
    assert b.module_of(x) == "github.com/acme/x"
    assert b.module_of(width) == "golang.org/x/text"
    assert b.module_of("os.ReadFile") == "std"


def test_vendored_gopath_main_module(toolchain: Toolchain, go_build: Build) -> None:
    b = _open(go_build(toolchain, "vendored", "default"))
    assert b.main_module == "example.com/vendored"
    assert b.module_of("main.main") == b.main_module


# --- inline expansion against the runtime -------------------------------------------


def _for_print(name: str) -> str:
    """A function name as the runtime shows it since Go 1.21 (funcNameForPrint).

    Each bracketed type-argument list becomes "[...]": since Go 1.21 the
    table says probe.Generic[go.shape.int] where runtime.Frame.Function says
    probe.Generic[...] (Go 1.19 writes "[...]" into the table itself).
    """
    out: list[str] = []
    depth = 0
    for ch in name:
        if ch == "[":
            if depth == 0:
                out.append("[...]")
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


@pytest.mark.parametrize("mode", MODES)
def test_inline_frames_match_runtime(
    toolchain: Toolchain,
    mode: str,
    go_build: Build,
    go_oracle: Oracle,
    go_runtime_frames: Callable[[Path], dict[str, Any]],
) -> None:
    binary = go_build(toolchain, "inlineapp", mode)
    run = go_runtime_frames(binary)
    doc = _table_oracle(go_build, go_oracle, toolchain, "inlineapp", mode)
    main_main = next(f["entry"] for f in doc["functions"] if f["name"] == "main.main")
    bias = run["main_main"] - main_main  # non-zero only for PIE
    if mode != "pie":
        assert bias == 0, f"non-PIE build loaded at a bias of {bias:#x}"
    b = _open(binary)

    # The runtime itself shows inlining: consecutive logical frames with one physical entry.
    inlined_points = {
        p["name"] for p in run["points"] if any(a["entry"] == c["entry"] for a, c in pairwise(p["frames"]))
    }
    assert {"wrapper", "chain"} <= inlined_points, f"inlining did not happen: {inlined_points}"

    longest = 0
    for point in run["points"]:
        pcs = [pc - bias for pc in point["pcs"]]
        frames = [(_for_print(f["function"]), f["file"], f["line"]) for f in point["frames"]]
        assert len(pcs) == len(frames), point["name"]
        i = 0
        while i < len(pcs):
            raw = b.frames(pcs[i])
            chain = [(_for_print(f.function), f.file, f.line) for f in raw]
            where = f"{point['name']}: pcs[{i}]={pcs[i]:#x}"
            assert chain, f"{where}: gohook gives no frames (runtime: {frames[i]})"
            want = frames[i : i + len(chain)]
            assert chain == want, f"{where}: gohook {chain} != runtime {want}"
            assert not raw[-1].inlined and all(f.inlined for f in raw[:-1]), f"{where}: inlined flags {raw}"
            physical = b.function_at(pcs[i] - 1)
            assert physical is not None and physical.entry == point["frames"][i]["entry"] - bias, where
            # Every virtual PC of the chain expands to the rest of the chain.
            for k in range(1, len(chain)):
                tail = [(_for_print(f.function), f.file, f.line) for f in b.frames(pcs[i + k])]
                assert tail == chain[k:], f"{where}+{k}: {tail} != {chain[k:]}"
            longest = max(longest, len(chain))
            i += len(chain)
    assert longest >= 3, "expected a three-deep inline chain (probe.Outer -> Middle -> Callers)"


def test_capapp_gowrap_is_a_wrapper(toolchain: Toolchain, go_build: Build, go_oracle: Oracle) -> None:
    """`go os.WriteFile(...)` in fileutil runs under a compiler wrapper the runtime hides.

    On that goroutine the wrapper (WriteAsync.gowrap1 since Go 1.22,
    WriteAsync.func1 before) is the only frame of fileutil: frames() elides
    it like the runtime does, so attribution must not rely on frames() alone.
    """
    binary = go_build(toolchain, "capapp", "default")
    doc = go_oracle(binary)
    name = "github.com/acme/fileutil.WriteAsync." + ("gowrap1" if toolchain.release >= (1, 22) else "func1")
    fn = next(f for f in doc["functions"] if f["name"] == name)
    assert fn["func_id"] == gofixtures.source_func_ids(toolchain)["wrapper"]
    b = _open(binary)
    assert b.module_of(name) == "github.com/acme/fileutil"
    assert b.frames(fn["entry"] + 1) == []


def test_capapp_wrapper_is_inlined(toolchain: Toolchain) -> None:
    """The compiler's own report: fileutil.ReadFile is inlined into main.doInline."""
    report = gofixtures.gcflags_m(toolchain, "capapp")
    assert "inlining call to fileutil.ReadFile" in report, report[-2000:]


# --- the fixtures themselves ----------------------------------------------------------


def test_capapp_cgo_mode(newest_toolchain: Toolchain, go_build: Build) -> None:
    cgo = gofixtures.run_fixture(go_build(newest_toolchain, "capapp", "cgo"), "cgo")
    assert cgo.returncode == 0 and "2+3=5" in cgo.stdout, cgo.stderr
    plain = gofixtures.run_fixture(go_build(newest_toolchain, "capapp", "default"), "cgo")
    assert plain.returncode == 1 and "built without cgo" in plain.stderr
    # C start-up code precedes runtime.text in the cgo build only.
    doc = gofixtures.oracle(go_build(newest_toolchain, "capapp", "cgo"))
    assert doc["text_section"] < doc["text_start"]


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("read", "/proc/self/stat"), "read "),
        (("sort", "b", "A", "c"), "A b c"),
        (("chain", "/proc/self/stat"), "through mono and mono/sub"),
        (("inline", "/proc/self/stat"), "inlined wrapper"),
        (("generic", "/proc/self/stat"), "generic function"),
        (("goroutine", "/proc/self/stat"), "on a goroutine"),
        (("loop", "3"), "8 goroutines x 3 reads"),
        (("exec",), "ran /bin/true"),
        (("listen",), "listened on 127.0.0.1:"),
        (("setenv", "K=V"), "set K=V"),
    ],
)
def test_capapp_actions(newest_toolchain: Toolchain, go_build: Build, args: tuple[str, ...], expect: str) -> None:
    proc = gofixtures.run_fixture(go_build(newest_toolchain, "capapp", "default"), *args)
    assert proc.returncode == 0, proc.stderr
    assert expect in proc.stdout


def test_capapp_failure_exit_status(newest_toolchain: Toolchain, go_build: Build, tmp_path: Path) -> None:
    binary = go_build(newest_toolchain, "capapp", "default")
    missing = gofixtures.run_fixture(binary, "read", str(tmp_path / "missing"))
    assert missing.returncode == 1 and "capapp read:" in missing.stderr
    assert gofixtures.run_fixture(binary, "no-such-action").returncode == 2
    walked = gofixtures.run_fixture(binary, "create", str(tmp_path / "f"))
    assert walked.returncode == 0 and (tmp_path / "f").read_text() == "created by capapp\n"


# --- the harness itself -------------------------------------------------------------


def test_parse_version_m_shapes() -> None:
    text = (
        "/x/capapp: go1.27.3\n"
        "\tpath\texample.com/capapp\n"
        "\tmod\texample.com/capapp\t(devel)\t\n"
        "\tdep\tgithub.com/acme/netclient\tv1.8.0\th1:abc=\n"
        "\tdep\tgithub.com/acme/runner\tv0.3.0\n"
        "\t=>\tgithub.com/acme/runner-fork\tv0.3.1\th1:def=\n"
        '\tbuild\t-ldflags="-s -w"\n'
        '\tbuild\t"odd key"="x\\ty"\n'
        "\tbuild\tCGO_ENABLED=0\n"
    )
    info = gofixtures.parse_version_m(text)
    assert info["go_version"] == "go1.27.3" and info["path"] == "example.com/capapp"
    assert info["main"] == {"path": "example.com/capapp", "version": "(devel)", "sum": "", "replace": None}
    assert info["deps"][0] == {
        "path": "github.com/acme/netclient",
        "version": "v1.8.0",
        "sum": "h1:abc=",
        "replace": None,
    }
    assert info["deps"][1]["replace"] == {
        "path": "github.com/acme/runner-fork",
        "version": "v0.3.1",
        "sum": "h1:def=",
        "replace": None,
    }
    assert info["settings"] == [["-ldflags", "-s -w"], ["odd key", "x\ty"], ["CGO_ENABLED", "0"]]


def test_build_failure_shows_go_stderr(newest_toolchain: Toolchain, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "go.mod").write_text("module example.com/broken\n\ngo 1.19\n")
    (src / "main.go").write_text("package main\n\nfunc main() { undefinedThing() }\n")
    fixture = gofixtures.Fixture("broken", src, ".")
    with pytest.raises(gofixtures.FixtureError, match=r"(?s)failed \(exit 1\).*undefined: undefinedThing"):
        gofixtures._run_build(newest_toolchain, fixture, "default", tmp_path / "out" / "broken")
    with pytest.raises(gofixtures.FixtureError, match="unknown build mode"):
        gofixtures.build(newest_toolchain, "capapp", "no-such-mode")


def test_builds_are_cached(newest_toolchain: Toolchain, go_build: Build) -> None:
    first = go_build(newest_toolchain, "inlineapp", "default")
    record, mtime = gofixtures.build_record(first), first.stat().st_mtime_ns
    again = go_build(newest_toolchain, "inlineapp", "default")
    assert again == first and again.stat().st_mtime_ns == mtime
    assert gofixtures.build_record(again) == record
