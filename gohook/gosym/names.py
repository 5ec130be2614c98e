"""Function names -> packages -> modules.

Package of a function name (the rule Go's own tools use):
  1. linker- and compiler-generated names belong to no package (they are
     runtime), recognised by their exact forms (see `is_linker_name`):
     `go:` / `type:` (Go 1.20+), `go.` / `type.` names that are not a
     package path (before Go 1.20), and symbols without a dot;
  2. hide everything inside `[...]` (generic instantiations may hold any
     type name, slashes and dots included);
  3. the package is the text up to the first `.` after the last `/`
     (only slashes before the first `(` count: a promoted method can name
     another package, `reflect.(*ptrType).internal/abi.Uncommon`);
  4. the last path element escapes `.` as `%2e` (and bytes <= space, `%`,
     `"`, >= 0x7f as %xx): undo that.

Module of a package:
  - `main` is the main module;
  - a package whose first path element has no dot is standard library
    (`vendor/golang.org/x/...`, the toolchain's own vendored copies, too);
  - otherwise the longest module path (main module or dependency) equal to
    the package or prefixing it followed by `/`;
  - GOPATH builds with a vendor directory carry no module list and name
    packages `<main path>/vendor/<import path>`: the module is inferred from
    the import path (see `infer_module_path`) and marked inferred.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STD = "std"
_LINKER_PREFIXES = ("go:", "type:")  # Go 1.20+: a colon never occurs in an import path
_OLD_LINKER_PREFIXES = ("go.", "type.")  # before Go 1.20: also the start of module paths such as go.uber.org/zap
# The first element of a module path (golang.org/x/mod/module.CheckPath): lower-case letters, digits, dashes and
# dots, at least one dot, no empty label. `type..eq.T`, `go.(*struct {...}).M` and `go.shape.*T` never match.
_MODULE_HOST = re.compile(r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9-]+)+$")
_ESCAPE = re.compile(r"%([0-9a-fA-F]{2})")
_MAJOR = re.compile(r"^v[0-9]+$")
_GOPKG_ELEM = re.compile(r"\.v[0-9]+$")
_THREE_ELEMENT_HOSTS = ("github.com", "gitlab.com", "bitbucket.org", "golang.org", "gitee.com", "codeberg.org")


def _hide_brackets(name: str) -> str:
    if "[" not in name:
        return name
    out = []
    depth = 0
    for ch in name:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    return "".join(out)


_HOST = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
_NOT_IN_PATHS = re.compile(r"[ ()*]")  # characters of receivers and types, never of import paths


def _plausible_path_prefix(prefix: str) -> bool:
    """Could `prefix` (text before a '/') be the leading elements of an import path?"""
    first = prefix.split("/", 1)[0]
    if "." in first and not _HOST.match(first):
        return False  # e.g. "net.addrPortUDPAddr.net": a type name, not a host
    return not _NOT_IN_PATHS.search(prefix)


def is_linker_name(name: str) -> bool:
    """Is this a linker- or compiler-generated symbol (no package), on any Go release?

    Go 1.20 renamed them from `go.` / `type.` to `go:` / `type:` (`go:buildid`,
    `type:.eq.[2]interface {}`, `go:(*struct { sync.Mutex }).Lock`). Before
    1.20 the prefixes `go.` and `type.` are shared with module paths
    (go.uber.org/zap, go.etcd.io/bbolt, go.opentelemetry.io/otel): such a name
    is generated only when it is not a package path, i.e. when it has no `/`
    (`go.buildid`, `type..eq.main.T`; a one-element module path escapes its
    dots as %2e) or the text before its first `/` is not a module host
    (`type..eq.[2]net/http.T`, `go.(*struct { net/http.Handler }).ServeHTTP`).
    A bare `go.` prefix is never enough: a dependency named go.evil.example/x
    would be standard library to every rule that looks at the package.
    """
    if name.startswith(_LINKER_PREFIXES):
        return True
    if not name.startswith(_OLD_LINKER_PREFIXES):
        return False
    slash = name.find("/")
    return slash < 0 or not _MODULE_HOST.match(name[:slash])


#: A closure's name: the function it is in, then `.funcN` (`.gowrapN`, `.deferwrapN` for go and defer
#: statements since Go 1.22), with `.M` for closures inside it. Not the package of its code: see
#: GoBinary.closure_package.
CLOSURE_NAME = re.compile(r"\.(?:func|gowrap|deferwrap)\d+(?:\.\d+)*$")


def package_of(name: str) -> str | None:
    """Import path of the package a function belongs to, or None (runtime/linker)."""
    if is_linker_name(name):
        return None
    plain = _hide_brackets(name)
    # A receiver or a promoted method may itself name a package with slashes
    # (`reflect.(*ptrType).internal/abi.X`, `net.addrPortUDPAddr.net/netip.isZero`):
    # only slashes before the first parenthesis can belong to this function's
    # package, and a dotted first element must be a plausible host name.
    paren = plain.find("(")
    end = paren if paren >= 0 else len(plain)
    slash = plain.rfind("/", 0, end)
    while slash > 0 and not _plausible_path_prefix(plain[:slash]):
        slash = plain.rfind("/", 0, slash)
    dot = plain.find(".", slash + 1)
    if dot <= 0:
        return None
    pkg = plain[:dot]
    if "%" in pkg:
        pkg = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), pkg)
    return pkg


def is_std_package(pkg: str) -> bool:
    """Standard library: the first path element has no dot (`main` excluded)."""
    first = pkg.split("/", 1)[0]
    return pkg != "main" and "." not in first


def infer_module_path(import_path: str) -> str:
    """Module path for an import path when the binary has no module list.

    Rule (documented in docs/gosym.md): hosts that nest repositories two
    levels deep (github.com, gitlab.com, bitbucket.org, golang.org, ...)
    take three elements (`github.com/org/repo`, `golang.org/x/name`);
    gopkg.in takes elements up to the first one ending in `.vN`; any other
    host takes two (`go.uber.org/zap`, `k8s.io/client-go`). A following
    major-version element `vN` (N >= 2) is kept (`github.com/o/r/v2`).
    """
    elems = import_path.split("/")
    host = elems[0]
    if host == "gopkg.in":
        for i, e in enumerate(elems[1:], start=1):
            if _GOPKG_ELEM.search(e):
                return "/".join(elems[: i + 1])
        return "/".join(elems[:2])
    n = 3 if host in _THREE_ELEMENT_HOSTS else 2
    n = min(n, len(elems))
    if len(elems) > n and _MAJOR.match(elems[n]) and elems[n] not in ("v0", "v1"):
        n += 1
    return "/".join(elems[:n])


@dataclass(frozen=True, slots=True)
class ModuleRef:
    """The module a package was attributed to."""

    path: str  # module path, or "std"
    inferred: bool = False


class ModuleResolver:
    """Maps packages to modules for one binary (results cached).

    main_module: path of the main module ("" when unknown).
    modules: every module path the build info lists (main module included).
    main_package: the main package path (`path` line); in GOPATH mode its
        `vendor/` subtree marks vendored dependencies.
    """

    def __init__(self, main_module: str, modules: list[str], main_package: str = "") -> None:
        self.main_module = main_module
        self.modules = sorted(set(modules), key=len, reverse=True)
        self.main_package = main_package
        self.inferred_modules: set[str] = set()
        self._cache: dict[str, ModuleRef] = {}

    def module_of_package(self, pkg: str | None) -> ModuleRef:
        if pkg is None:
            return ModuleRef(STD)
        hit = self._cache.get(pkg)
        if hit is None:
            hit = self._resolve(pkg)
            self._cache[pkg] = hit
        return hit

    def _resolve(self, pkg: str) -> ModuleRef:
        if pkg == "main":
            # GOPATH builds carry no module list: the main package path stands in.
            return ModuleRef(self.main_module or self.main_package or "main", inferred=not self.main_module)
        if is_std_package(pkg):
            return ModuleRef(STD)
        vendor = pkg.find("/vendor/")
        if vendor >= 0 and not self._listed(pkg):
            # GOPATH mode: <main path>/vendor/<import path>.
            return self._resolve_inferred(pkg[vendor + len("/vendor/") :])
        listed = self._listed(pkg)
        if listed:
            return ModuleRef(listed)
        if self.main_package and (pkg == self.main_package or pkg.startswith(self.main_package + "/")):
            return ModuleRef(self.main_module or infer_module_path(pkg), inferred=not self.main_module)
        return self._resolve_inferred(pkg)

    def _resolve_inferred(self, import_path: str) -> ModuleRef:
        if is_std_package(import_path):
            return ModuleRef(STD)
        listed = self._listed(import_path)
        if listed:
            return ModuleRef(listed)
        mod = infer_module_path(import_path)
        self.inferred_modules.add(mod)
        return ModuleRef(mod, inferred=True)

    def _listed(self, pkg: str) -> str | None:
        for mod in self.modules:
            if pkg == mod or pkg.startswith(mod + "/"):
                return mod
        return None
