"""gohook's function name -> package -> module rule over every real name of real binaries (issue 12 §0).

"Nothing is std that is not std": before Go 1.20 the linker named its own
functions `go.` / `type.` ..., the prefix of module paths such as
go.uber.org/zap or go.evil.example/telemetry. tests/gosym/test_names.py pins
the rule on hand-written names; this file checks it on every function name
of real binaries from every installed toolchain (Go 1.19 writes the old
prefixes), against oracles that are not gohook:

- the names: Go's own debug/gosym (gofixtures.oracle), with each function's
  source file;
- the packages and their modules: `go list -deps` of the fixture, run with
  the toolchain that built it, in the environment gofixtures builds it with
  (its module proxy, GOFLAGS, GOCACHE, CGO_ENABLED of the build mode);
- the symbol prefix of a package: the compiler's objabi.PathToPrefix,
  restated here from the Go source (dots of the last path element and odd
  bytes escaped as %xx).

Checks: (i) every package gohook names is one go list lists (or a
`//go:linkname` name of std code, read from the source file debug/gosym
gives); (ii) every name that starts with a listed package's prefix and a
dot gets that package, and that package's module (go list's, `std` for
the standard library); (iii) every name gohook gives no package is
linker-generated, in the exact forms of its release (asserted per release),
an assembly symbol without a package (its source file is a `.s` file) or a
std function that `//go:linkname` renamed to a bare symbol (the directive is
in its source file).
The evasion fixture links go.evil.example/telemetry: its functions belong to
that module on every release, never to std.
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
from gofixtures import Toolchain

from gohook.gosym import GoBinary
from gohook.gosym.names import STD, package_of

#: (fixture, build mode): the evasion fixture (go.evil.example/telemetry and nine more fake modules), capapp
#: (escaped dots: go%2estrutil, gopkg.in/acme%2ev2; generics; github.com/evil/telemetry), each with and without
#: cgo, and inlineapp.
CASES = (("evasion", "default"), ("evasion", "cgo"), ("capapp", "default"), ("capapp", "cgo"),
         ("inlineapp", "default"))

TELEMETRY = "go.evil.example/telemetry"
TELEMETRY_FUNCTIONS = {f"{TELEMETRY}.{f}" for f in ("Secret", "Beacon", "Drop")}

#: Linker-generated function names seen in these fixtures, by release: type equality and hash algorithms,
#: methods of unnamed struct types with embedded fields (promoted methods), the FIPS text markers. Go 1.20
#: renamed `go.` / `type.` to `go:` / `type:`.
_OLD = frozenset({"type..eq.", "type..hash.", "go.(", "go.struct "})
_NEW = frozenset({"type:.eq.", "type:.hash.", "go:(", "go:struct "})
_FIPS = frozenset({"go:textfipsstart", "go:textfipsend"})  # Go 1.24+: the bounds of the FIPS 140 module's code
LINKER_FORMS: dict[tuple[int, int], frozenset[str]] = {
    (1, 19): _OLD,
    (1, 21): _NEW,
    (1, 24): _NEW | _FIPS,
    (1, 27): _NEW | _FIPS,
}
#: Every form a name may take: prefixes, and whole names (no trailing separator).
KNOWN_FORMS = frozenset().union(*LINKER_FORMS.values(), {"go.buildid", "go:buildid"})
ASM = "(assembly symbol)"
BARE = "(std Go function renamed to a bare symbol by //go:linkname)"


def symbol_prefix(path: str) -> str:
    """cmd/internal/objabi.PathToPrefix: the prefix of a package's symbols for its import path."""
    slash = path.rfind("/")
    return "".join(f"%{ord(c):02x}" if ord(c) <= 0x20 or (c == "." and i > slash) or c in '%"' or ord(c) >= 0x7F
                   else c for i, c in enumerate(path))


@dataclass(frozen=True)
class Listed:
    """What `go list -deps` says about a fixture: import path -> module path ("std" for the standard library)."""

    modules: dict[str, str]
    main_package: str  # import path of the fixture's main package; its functions are named `main.`

    def symbol_package(self, pkg: str) -> str:
        """The import path of a package as named in symbols (`main` for the main package)."""
        return "main" if pkg == self.main_package else pkg


@cache
def go_list(toolchain: Toolchain, fixture: str, mode: str) -> Listed:
    """`go list -deps` of the fixture with the toolchain, in the environment gofixtures builds it with."""
    spec = gofixtures.FIXTURES[fixture]
    command = gofixtures._command(toolchain, spec, mode, Path("/dev/null"))  # the build's env and directory
    proc = subprocess.run(
        [str(toolchain.go), "list", "-deps", "-f",
         "{{.ImportPath}}\t{{.Name}}\t{{.DepOnly}}\t{{with .Module}}{{.Path}}{{end}}", spec.target],
        cwd=command.cwd, env={**gofixtures._clean_env(), **command.env}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"go list of {fixture} ({mode}) with {toolchain} failed:\n{proc.stderr}"
    modules: dict[str, str] = {}
    main = []
    for line in proc.stdout.splitlines():
        path, name, dep_only, module = line.split("\t")
        modules[path] = module or STD
        if name == "main" and dep_only == "false":
            main.append(path)
    assert len(main) == 1, f"go list names {main} as the main package"
    return Listed(modules, main[0])


@cache
def functions(toolchain: Toolchain, fixture: str, mode: str) -> tuple[list[dict[str, Any]], GoBinary]:
    """Go's debug/gosym function table of the build, and gohook's reading of the same binary."""
    binary = gofixtures.build(toolchain, fixture, mode)
    doc = gofixtures.oracle(binary)
    assert not doc.get("table_error"), doc.get("table_error")
    return doc["functions"], GoBinary.open(binary)


def linker_form(name: str) -> str | None:
    """The known linker form a name has (longest match), else None."""
    hits = [f for f in KNOWN_FORMS if name == f or (f[-1] in ".( " and name.startswith(f))]
    return max(hits, key=len) if hits else None


def linknamed_std(fn: dict[str, Any], pkg: str | None, toolchain: Toolchain, listed: Listed) -> bool:
    """A std function whose symbol was renamed by `//go:linkname` to a package that is not linked, or to none.

    `//go:linkname setTraceback runtime/debug.SetTraceback` in runtime (runtime/debug not imported);
    `//go:linkname _cgo_panic _cgo_panic` in runtime/cgo (a bare name, for C); Go 1.27's closure of a
    one-argument `//go:linkname goready`, named `_.goready.func1`. The source file (from debug/gosym) must be
    in a listed std package of the toolchain's GOROOT and carry the directive.
    """
    src = (gofixtures.goroot(toolchain) / "src").resolve()
    file = Path(fn["file"]).resolve()
    if not file.is_relative_to(src) or listed.modules.get(str(file.parent.relative_to(src))) != STD:
        return False
    name = fn["name"]
    if pkg is None:
        directive = rf"^//go:linkname \S+ {re.escape(name)}$"
    elif pkg == "_":
        directive = rf"^//go:linkname {re.escape(name[2:].split('.', 1)[0])}$"
    else:
        directive = rf"^//go:linkname \S+ {re.escape(pkg)}\.{re.escape(name[len(pkg) + 1:].split('.', 1)[0])}$"
    return re.search(directive, file.read_text(encoding="utf-8"), re.MULTILINE) is not None


@pytest.mark.parametrize(("fixture", "mode"), CASES, ids=[f"{f}-{m}" for f, m in CASES])
def test_packages_and_modules_match_go_list(toolchain: Toolchain, fixture: str, mode: str) -> None:
    listed = go_list(toolchain, fixture, mode)
    funcs, binary = functions(toolchain, fixture, mode)
    # longest first: a name starts with at most one prefix that is followed by a dot at the right place
    prefixes = sorted(((symbol_prefix(listed.symbol_package(p)) + ".", p) for p in listed.modules),
                      key=lambda x: -len(x[0]))
    unlisted, wrong = [], []
    for fn in funcs:
        name = fn["name"]
        pkg = package_of(name)
        real = pkg is None or (pkg if pkg != "main" else listed.main_package) in listed.modules
        if not real and not (linknamed_std(fn, pkg, toolchain, listed) and binary.module_of(name) == STD):
            unlisted.append((name, pkg, fn["file"]))
        for prefix, path in prefixes:
            if name.startswith(prefix):
                want = (listed.symbol_package(path), listed.modules[path])
                if (pkg, binary.module_of(name)) != want:
                    wrong.append((name, (pkg, binary.module_of(name)), want))
                break
    assert not unlisted, f"{len(unlisted)} names get a package go list does not list, first: {unlisted[:5]}"
    assert not wrong, f"{len(wrong)} names of listed packages get another (package, module), first: {wrong[:5]}"


def test_linker_names_have_the_exact_forms_of_their_release(toolchain: Toolchain) -> None:
    """Every name gohook gives no package is linker-generated in a form of its release, or assembly."""
    seen: set[str] = set()
    bad = []
    for fixture, mode in CASES:
        funcs, _binary = functions(toolchain, fixture, mode)
        for fn in funcs:
            name = fn["name"]
            if package_of(name) is not None:
                continue
            form = linker_form(name)
            if form is None and "." not in name and fn["file"].endswith(".s"):
                form = ASM  # `TEXT cmpbody<>(SB)`, `_rt0_amd64_linux`: assembly with no package
            elif form is None and "." not in name and linknamed_std(fn, None, toolchain, go_list(toolchain, fixture,
                                                                                                  mode)):
                form = BARE  # runtime/cgo's _cgo_panic, exported to C
            if form is None:
                bad.append((fixture, mode, name, fn["file"]))
            else:
                seen.add(form)
    assert not bad, f"{len(bad)} names without a package that are no linker form, first: {bad[:5]}"
    assert toolchain.release in LINKER_FORMS, f"add the linker forms of Go {toolchain.version}: {sorted(seen)}"
    assert seen == LINKER_FORMS[toolchain.release] | {ASM, BARE}


@pytest.mark.parametrize("mode", ["default", "cgo"])
def test_go_prefixed_module_is_not_std(toolchain: Toolchain, mode: str) -> None:
    """go.evil.example/telemetry's functions are that module's on every release, Go 1.19's `go.` era included."""
    funcs, binary = functions(toolchain, "evasion", mode)
    assert go_list(toolchain, "evasion", mode).modules[TELEMETRY] == TELEMETRY
    names = {fn["name"] for fn in funcs if fn["name"].startswith(TELEMETRY + ".")}
    assert names == TELEMETRY_FUNCTIONS, "the fixture's telemetry functions are not in the binary (inlined?)"
    for name in sorted(names):
        assert (package_of(name), binary.module_of(name), binary.is_std(name)) == (TELEMETRY, TELEMETRY, False), name
        ref = binary.module_ref(name)
        assert not ref.inferred, f"{name}: module {ref.path} guessed, not read from the build info"
    old = toolchain.release < (1, 20)
    assert any(fn["name"].startswith("type..eq.") for fn in funcs) is old, "not the linker prefix of this release"
