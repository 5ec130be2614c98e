"""gohook.gosym on real binaries built by old Go releases.

No toolchain we install writes the two oldest function-table formats (magic
0xfffffffb: Go 1.2-1.15; 0xfffffffa: Go 1.16-1.17), so
scripts/fetch_old_go_binaries.sh fetches esbuild executables that were
published on npm when those releases were current, pinned by checksum (the
list, with the Go version of each, is the BINARIES table in that script; see
docs/old-formats.md). Each one is read by gohook and compared with
independent oracles:

- testdata/go/oracle: Go's own debug/gosym, debug/buildinfo and debug/elf
  (built with the newest toolchain), for every function's name, entry, end
  and entry file:line, and for about 3,000 sampled PCs;
- `go version -m` for the build info;
- the Go version the script's table records, for the format version.

Most of these binaries were linked with -s (no symbol table, so no
runtime.text). debug/gosym only uses the text start for Go 1.18+ tables, so
the oracle is given the .text address of these static binaries.

In CI (CI=true) a binary that cannot be fetched fails the run; elsewhere the
tests skip with a reason that says they did not run.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import gofixtures
import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from gohook.gosym import GoBinary, Version
from gohook.gosym.pclntab import name_for_print

SCRIPT = gofixtures.REPO_ROOT / "scripts" / "fetch_old_go_binaries.sh"
PANIC_FUNCTIONS = ("runtime.gopanic", "runtime.sigpanic", "runtime.panicwrap")

# One BINARIES entry of the script: name|package|version|integrity|sha256|go version|magic
_ENTRY = re.compile(
    r'^\s*"(?P<name>[\w.-]+)\|(?P<package>[^|"]+)\|(?P<version>[^|"]+)\|sha512-[^|"]+\|[0-9a-f]{64}\|'
    r'(?P<go_version>go1\.\d+(?:\.\d+)?)\|(?P<magic>0x[0-9a-f]{8})"\s*$',
    re.MULTILINE,
)


@dataclass(frozen=True)
class OldBinary:
    """One pinned binary of the fetch script."""

    name: str
    package: str
    version: str
    go_version: str  # "go1.16"
    magic: str  # "0xfffffffa", as the oracle prints it

    @property
    def go_minor(self) -> int:
        return int(self.go_version.split(".")[1])

    @property
    def expected_version(self) -> Version:
        """The table format the Go release writes (Go 1.16 and 1.18 changed it)."""
        return Version.GO12 if self.go_minor <= 15 else Version.GO116


def _manifest() -> list[OldBinary]:
    entries = [OldBinary(**m.groupdict()) for m in _ENTRY.finditer(SCRIPT.read_text())]
    if not entries:
        raise RuntimeError(f"{SCRIPT}: no BINARIES entries found (format changed?)")
    return entries


MANIFEST = _manifest()


def _unavailable(reason: str) -> None:
    """A missing prerequisite: a failure in CI, a loud skip elsewhere."""
    if gofixtures.in_ci():
        pytest.fail(f"{reason} (CI=true: this is a failure, not a skip)", pytrace=False)
    pytest.skip(f"OLD GO FORMATS NOT TESTED: {reason}")


@dataclass(frozen=True)
class _Fetched:
    paths: dict[str, Path]  # binary name -> path
    problem: str  # why some are missing ("" when none is)


@pytest.fixture(scope="session")
def fetched() -> _Fetched:
    """Run the fetch script once."""
    try:
        proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return _Fetched({}, f"{SCRIPT.name} timed out")
    paths: dict[str, Path] = {}
    for line in proc.stdout.splitlines():
        fields = line.split()
        if len(fields) == 6 and fields[0] == "fetch:":
            paths[fields[1]] = Path(fields[2])
    problem = ""
    if proc.returncode != 0 or len(paths) < len(MANIFEST):
        problem = " | ".join(proc.stderr.strip().splitlines()[-5:]) or f"{SCRIPT.name} exited {proc.returncode}"
    return _Fetched(paths, problem)


@pytest.fixture(scope="session", params=MANIFEST, ids=lambda b: b.name)
def old(request: pytest.FixtureRequest, fetched: _Fetched) -> tuple[OldBinary, Path]:
    binary: OldBinary = request.param
    if binary.name not in fetched.paths:
        _unavailable(f"{SCRIPT.name} did not fetch {binary.name}: {fetched.problem}")
    return binary, fetched.paths[binary.name]


# --- helpers ------------------------------------------------------------------


@cache
def _open(path: Path) -> GoBinary:
    return GoBinary.open(path)


@dataclass(frozen=True)
class _Elf:
    """What pyelftools says about a binary (independent of gohook)."""

    text: int  # .text address
    static: bool  # no PT_INTERP: Go's internal linker, runtime.text starts .text
    symtab: bool  # not stripped
    build_version: str | None  # runtime.buildVersion's string, when there is a symbol table


@cache
def _elf(path: Path) -> _Elf:
    with path.open("rb") as f:
        elf = ELFFile(f)
        text = elf.get_section_by_name(".text")["sh_addr"]
        static = not any(seg["p_type"] == "PT_INTERP" for seg in elf.iter_segments())
        symtab = elf.get_section_by_name(".symtab")
        version = None
        if isinstance(symtab, SymbolTableSection):
            syms = symtab.get_symbol_by_name("runtime.buildVersion")
            if syms:
                version = _read_go_string(elf, syms[0]["st_value"])
        return _Elf(text, static, isinstance(symtab, SymbolTableSection), version)


def _read_go_string(elf: ELFFile, addr: int) -> str:
    """The Go string whose header (data pointer, length) is at addr."""

    def read(vaddr: int, size: int) -> bytes:
        for seg in elf.iter_segments():
            if (
                seg["p_type"] == "PT_LOAD"
                and seg["p_vaddr"] <= vaddr
                and vaddr + size <= seg["p_vaddr"] + seg["p_filesz"]
            ):
                elf.stream.seek(seg["p_offset"] + vaddr - seg["p_vaddr"])
                return elf.stream.read(size)
        raise AssertionError(f"{vaddr:#x} is not file-backed")

    header = read(addr, 16)
    data, length = int.from_bytes(header[:8], "little"), int.from_bytes(header[8:], "little")
    return read(data, length).decode()


def _oracle_ready() -> None:
    if not gofixtures.toolchains():
        _unavailable("no Go toolchain to build testdata/go/oracle: run scripts/setup.sh")


@cache
def _oracle(path: Path) -> dict[str, Any]:
    """The oracle's document, with the .text address as text start when there is no symbol table."""
    _oracle_ready()
    doc = gofixtures.oracle(path)
    elf = _elf(path)
    if doc.get("table_error") and not elf.symtab:
        # Only the 1.18+ formats use the text start (debug/gosym pclntab.go:
        # funcTab.pc, funcData.entryPC); in a static binary it is .text anyway.
        assert doc["pclntab_magic"] in ("0xfffffffb", "0xfffffffa"), doc["pclntab_magic"]
        assert elf.static, f"{path}: dynamically linked and stripped: no independent text start"
        doc = gofixtures.oracle(path, elf.text)
    return doc


def _table_oracle(path: Path) -> dict[str, Any]:
    """The oracle's document, which must hold the function table."""
    doc = _oracle(path)
    assert not doc.get("table_error"), f"the oracle could not read the function table of {path}: {doc['table_error']}"
    if _elf(path).symtab:
        assert doc["text_start"] == doc["text_section"], "runtime.text is not the start of .text"
    return doc


def _same_position(got: tuple[str, int], want: tuple[str, int]) -> bool:
    """gohook's file:line equals the oracle's; "no line information" matches in any spelling.

    Past the end of a function's PC tables debug/gosym says ("", -1), the
    runtime and gohook ("?", -1).
    """
    if want[0] == "" and want[1] <= 0:
        return got[0] in ("", "?") and got[1] <= 0
    return got == want


def _module_dict(m: Any) -> dict[str, Any]:
    if m is None:
        return {"path": "", "version": "", "sum": "", "replace": None}
    return {
        "path": m.path,
        "version": m.version,
        "sum": m.sum,
        "replace": _module_dict(m.replace) if m.replace else None,
    }


def _printable(name: str) -> bool:
    return bool(name) and name.isprintable() and "\ufffd" not in name


def _wrapper_id(doc: dict[str, Any], b: GoBinary) -> int:
    """funcID wrapper: the last (largest) value of the enum in every release.

    From the oracle's funcIDs where it reports them for every function
    (-1 or absent: not read), else from gohook's.
    """
    ids = [f.get("func_id", -1) for f in doc["functions"]]
    return max(ids) if min(ids) >= 0 else max(f.func_id for f in b.functions)


# --- the table format ------------------------------------------------------------


def test_manifest_covers_both_old_formats() -> None:
    magics = {b.magic for b in MANIFEST}
    assert {"0xfffffffb", "0xfffffffa"} <= magics
    assert any(13 <= b.go_minor <= 15 for b in MANIFEST), "no Go 1.13-1.15 binary"
    assert any(b.go_minor in (16, 17) for b in MANIFEST), "no Go 1.16-1.17 binary"


def test_format_version(old: tuple[OldBinary, Path]) -> None:
    binary, path = old
    doc = _oracle(path)
    assert doc["pclntab_magic"] == binary.magic, f"{binary.name}: the script's magic is wrong"
    assert _open(path).version is binary.expected_version
    # The script's Go version is the binary's own: the build info says so, or
    # (Go 1.12 and older write none) the runtime.buildVersion symbol.
    if doc.get("build_info"):
        assert doc["build_info"]["go_version"] == binary.go_version
    else:
        assert binary.go_minor <= 12, doc.get("build_info_error")
        assert _elf(path).build_version == binary.go_version


# --- function table -----------------------------------------------------------------


def test_functions_match_oracle(old: tuple[OldBinary, Path]) -> None:
    binary, path = old
    doc = _table_oracle(path)
    b = _open(path)
    got = [(f.name, f.entry, f.end) for f in b.functions]
    want = [(f["name"], f["entry"], f["end"]) for f in doc["functions"]]
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        assert g == w, f"function {i}: gohook {g} != oracle {w}"
    assert len(got) == len(want), f"{len(got)} functions vs oracle {len(want)}"
    assert len(got) > 2000
    # funcID and flag bytes, where the oracle reads them (flag only exists since Go 1.18: 0).
    bad_ids = [
        (f.name, f.func_id, f.flag, w.get("func_id"), w.get("flag"))
        for f, w in zip(b.functions, doc["functions"], strict=True)
        if ("func_id" in w and w["func_id"] >= 0 and w["func_id"] != f.func_id) or ("flag" in w and w["flag"] != f.flag)
    ]
    assert not bad_ids, f"{len(bad_ids)} functions with another funcID/flag, first: {bad_ids[:5]}"
    bad = [
        (f["name"], hex(f["entry"]), b.line_at(f["entry"]), (f["file"], f["line"]))
        for f in doc["functions"]
        if not _same_position(b.line_at(f["entry"]), (f["file"], f["line"]))
    ]
    assert not bad, f"{len(bad)} function entries with a different file:line, first: {bad[:5]}"


def test_sampled_pcs_match_oracle(old: tuple[OldBinary, Path]) -> None:
    binary, path = old
    doc = _table_oracle(path)
    b = _open(path)
    samples = doc["samples"]
    assert len(samples) > 1000
    bad = []
    for s in samples:
        fn = b.function_at(s["pc"])
        got = (fn.name if fn else None, b.line_at(s["pc"]))
        if got[0] != s["function"] or not _same_position(got[1], (s["file"], s["line"])):
            bad.append((hex(s["pc"]), got, (s["function"], s["file"], s["line"])))
    assert not bad, f"{len(bad)} of {len(samples)} sampled PCs disagree, first: {bad[:5]}"


def test_frames_at_sampled_pcs(old: tuple[OldBinary, Path]) -> None:
    """Inline expansion is coherent: no oracle reads old inline trees, so check what can be checked.

    The outermost frame is the physical function, the innermost sits at the
    pc's own file:line, every inlined name is a real string, wrappers are
    elided; a wrong PCDATA/FUNCDATA index or record layout breaks these.
    """
    binary, path = old
    doc = _table_oracle(path)
    b = _open(path)
    wrapper = _wrapper_id(doc, b)
    by_entry = {f.entry: f for f in b.functions}
    inlined = 0
    bad: list[Any] = []
    for s in doc["samples"]:
        pc = s["pc"]
        try:
            chain = b.frames(pc, return_address=False)
        except Exception as exc:  # any error is a finding here
            bad.append((hex(pc), s["function"], repr(exc)))
            continue
        physical = [f for f in chain if not f.inlined]
        inlined += len(chain) - len(physical)
        if by_entry[b.function_at(pc).entry].func_id == wrapper:
            if physical and not (len(chain) > 1 and chain[-2].function in PANIC_FUNCTIONS):
                bad.append((hex(pc), "wrapper not elided", chain))
            continue
        if not chain or [f.function for f in physical] != [name_for_print(s["function"])] or chain[-1].inlined:
            bad.append((hex(pc), "outermost frame", chain, s["function"]))
        elif not all(_printable(f.function) for f in chain):
            bad.append((hex(pc), "garbled inlined name", chain))
        elif s["file"] != "<autogenerated>" and not _same_position(
            (chain[0].file, chain[0].line), (s["file"], s["line"])
        ):
            bad.append((hex(pc), "innermost frame", chain, (s["file"], s["line"])))
    assert not bad, f"{len(bad)} of {len(doc['samples'])} sampled PCs expand wrongly, first: {bad[:5]}"
    assert inlined > 100, "hardly any inlined frames: is the inline tree read at all?"


# --- build info -------------------------------------------------------------------------


def test_build_info_matches_go_version_m(old: tuple[OldBinary, Path]) -> None:
    binary, path = old
    doc = _oracle(path)
    b = _open(path)
    toolchain = gofixtures.oracle_toolchain()
    if binary.go_minor <= 12:
        # Go 1.12 and older write no .go.buildinfo: neither Go nor gohook finds any.
        assert doc.get("build_info_error"), doc.get("build_info")
        with pytest.raises(gofixtures.FixtureError):
            gofixtures.go_version_m(toolchain, path)
        assert b.build_info is None
        assert b.go_version is None
        return
    assert not doc.get("build_info_error"), doc.get("build_info_error")
    version_m = gofixtures.go_version_m(toolchain, path)
    oracle = {**doc["build_info"], "settings": [list(kv) for kv in doc["build_info"]["settings"]]}
    assert oracle == version_m, "the two oracles disagree (gofixtures.parse_version_m bug?)"
    info = b.build_info
    assert info is not None, f"{binary.name}: gohook found no build info"
    got = {
        "go_version": info.go_version,
        "path": info.path,
        "main": _module_dict(info.main),
        "deps": [_module_dict(d) for d in info.deps],
        "settings": [list(kv) for kv in info.settings.items()],
    }
    assert got == version_m
    assert b.go_version == binary.go_version
