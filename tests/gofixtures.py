"""Build harness for the Go fixture programs under testdata/go/.

The test suite checks gohook against real binaries built here, with every
installed Go toolchain and several build modes, and against two independent
oracles: testdata/go/oracle (Go's own debug/elf, debug/gosym and
debug/buildinfo, built with the newest toolchain) and `go version -m`.

Binaries are cached under build/fixtures/<go version>/<fixture>-<mode>, next
to a `<name>.build.json` record holding the cache key (a hash of the fixture
sources, the local module proxy, the toolchain, the mode and this recipe),
so repeated test runs do not rebuild. Each toolchain has its own GOCACHE
(/var/cache/gohook/gocache/<version>), shared by all fixtures and modes.

No module proxy is reachable: fixtures get their fake third-party modules
through `replace` directives pointing at local directories, and through a
file:// module proxy generated from testdata/go/modproxy/ (so that some
dependencies carry real versions and go.sum hashes in their build info).

Builds take a per-output file lock and write through a temporary file, so
concurrent test processes do not step on each other.
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
GO_TESTDATA = REPO_ROOT / "testdata" / "go"
BUILD_ROOT = REPO_ROOT / "build" / "fixtures"
GOHOOK_CACHE = Path(os.environ.get("GOHOOK_CACHE", "/var/cache/gohook"))

#: Bump when the way fixtures are built changes: it invalidates every cached binary.
RECIPE = 1

#: The toolchain that builds the oracle (the newest one; debug/gosym of older
#: releases would not know newer table formats).
ORACLE_GO_VERSION = "1.27.3"

#: Toolchains the suite knows about: (expected version, go binary).
CANDIDATES: tuple[tuple[str, Path], ...] = (
    ("1.19", Path("/usr/lib/go-1.19/bin/go")),  # Debian golang-1.19-go: the 1.18 table format
    ("1.21.13", GOHOOK_CACHE / "go/1.21.13/go/bin/go"),
    ("1.24.11", GOHOOK_CACHE / "go/1.24.11/go/bin/go"),
    ("1.27.3", GOHOOK_CACHE / "go/1.27.3/go/bin/go"),
)

#: Build modes: extra environment and `go build` flags.
MODES: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "default": ({"CGO_ENABLED": "0"}, ()),
    "stripped": ({"CGO_ENABLED": "0"}, ("-ldflags=-s -w",)),
    "pie": ({"CGO_ENABLED": "0"}, ("-buildmode=pie",)),
    "cgo": ({"CGO_ENABLED": "1"}, ()),
    "arm64": ({"CGO_ENABLED": "0", "GOARCH": "arm64"}, ()),  # cross-compiled: what gohook must refuse cleanly
}

BUILD_TIMEOUT = 1800  # seconds; a cold std build with -buildmode=pie on 2 cores takes minutes


class FixtureError(Exception):
    """A fixture could not be built or an oracle failed; the message says why."""


@dataclass(frozen=True)
class Toolchain:
    """One installed Go toolchain."""

    version: str  # as `go env GOVERSION` reports it, without "go": "1.19.8", "1.27.3"
    go: Path

    def __str__(self) -> str:
        return f"go{self.version}"

    @property
    def release(self) -> tuple[int, int]:
        """(major, minor): (1, 21) for 1.21.13."""
        major, minor = self.version.split(".")[:2]
        return int(major), int(minor)


@dataclass(frozen=True)
class Fixture:
    """A Go program under testdata/go/."""

    name: str
    source: Path  # the tree hashed into the cache key
    target: str  # what `go build` builds
    gopath: bool = False  # GOPATH mode (GO111MODULE=off) instead of module mode


FIXTURES: dict[str, Fixture] = {
    "capapp": Fixture("capapp", GO_TESTDATA / "capapp", "."),
    "inlineapp": Fixture("inlineapp", GO_TESTDATA / "inlineapp", "."),
    "vendored": Fixture("vendored", GO_TESTDATA / "gopath", "example.com/vendored", gopath=True),
    "evasion": Fixture("evasion", GO_TESTDATA / "evasion", "."),
    "attachapp": Fixture("attachapp", GO_TESTDATA / "attachapp", "."),
    "bpfprobe": Fixture("bpfprobe", GO_TESTDATA / "bpfprobe", "."),
    "perfapp": Fixture("perfapp", GO_TESTDATA / "perfapp", "."),  # bench/evaluate.py's workload
    "gapsapp": Fixture("gapsapp", GO_TESTDATA / "gapsapp", "."),  # gaps inspect names (tests/static/test_gaps.py)
    "argscope": Fixture("argscope", GO_TESTDATA / "argscope", "."),  # argument-scoped rules (test_argument_rules)
    "errnoval": Fixture("errnoval", GO_TESTDATA / "errnoval", "."),  # the runtime's EPERM words (gosym/test_itabs)
    "denyapp": Fixture("denyapp", GO_TESTDATA / "denyapp", "."),  # graceful deny, issue 15 (test_denyapp_baseline)
    "traceapp": Fixture("traceapp", GO_TESTDATA / "traceapp", "."),  # the ptrace tracer (tests/attach/test_tracer.py)
}
ORACLE_FIXTURE = Fixture("oracle", GO_TESTDATA / "oracle", ".")
MODPROXY_SOURCE = GO_TESTDATA / "modproxy"


def loud_skip(reason: str) -> None:
    """Skip a live test outside CI with a loud reason; in CI (CI=true) live tests never skip: they fail."""
    import pytest

    if in_ci():
        pytest.fail(reason + " (CI=true: live tests never skip)")
    pytest.skip("SKIPPED LOUDLY: " + reason)


def require_root(what: str) -> None:
    """Live tests attach uprobes and load BPF programs: outside root, skip loudly (fail in CI)."""
    if os.geteuid() != 0:
        loud_skip(f"{what} need root (CAP_BPF, CAP_PERFMON): run the suite as root")


def live_toolchain(prefix: str) -> Toolchain:
    """The installed toolchain whose version is prefix or starts with `prefix.`; loud skip (CI: fail) if none.

    GOHOOK_GO_VERSIONS leaving it out is a plain skip outside CI.
    """
    import pytest

    for t in toolchains():  # raises in CI when one is missing
        if t.version == prefix or t.version.startswith(prefix + "."):
            return t
    if os.environ.get("GOHOOK_GO_VERSIONS") and not in_ci():
        pytest.skip(f"Go {prefix} left out by GOHOOK_GO_VERSIONS={os.environ['GOHOOK_GO_VERSIONS']}")
    loud_skip(f"Go {prefix} is not installed: run scripts/setup.sh")
    raise AssertionError("unreachable")


def in_ci() -> bool:
    """True when running in CI, where a missing toolchain is an error."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


# --- toolchains ---------------------------------------------------------------


def _clean_env() -> dict[str, str]:
    """The caller's environment without any Go or cgo settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GO", "CGO_"))}
    env.setdefault("HOME", str(BUILD_ROOT))
    env["GOTOOLCHAIN"] = "local"
    env["GOENV"] = "off"
    env["GOTELEMETRY"] = "off"
    return env


@cache
def _go_version(go: Path) -> str:
    proc = subprocess.run([str(go), "env", "GOVERSION"], env=_clean_env(), capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 or not proc.stdout.startswith("go"):
        raise FixtureError(f"{go} env GOVERSION failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.strip().removeprefix("go")


@cache
def _installed() -> tuple[Toolchain, ...]:
    found = []
    for expected, go in CANDIDATES:
        if not os.access(go, os.X_OK):
            if in_ci():
                raise FixtureError(f"Go {expected} is missing at {go} (CI=true): run scripts/setup.sh")
            continue
        version = _go_version(go)
        if version != expected and not version.startswith(expected + "."):
            raise FixtureError(f"{go} is go{version}, expected go{expected}")
        found.append(Toolchain(version, go))
    return tuple(found)


def toolchains() -> list[Toolchain]:
    """Installed toolchains the suite builds fixtures with, oldest first.

    GOHOOK_GO_VERSIONS (comma-separated prefixes, e.g. "1.27,1.19") narrows
    the set for quick local runs. In CI (CI=true) a missing toolchain raises.
    """
    chosen = list(_installed())
    wanted = [w.strip() for w in os.environ.get("GOHOOK_GO_VERSIONS", "").split(",") if w.strip()]
    if wanted:
        chosen = [t for t in chosen if any(t.version == w or t.version.startswith(w + ".") for w in wanted)]
    return chosen


@cache
def goroot(toolchain: Toolchain) -> Path:
    """GOROOT of a toolchain (`go env GOROOT`)."""
    proc = subprocess.run(
        [str(toolchain.go), "env", "GOROOT"], env=_clean_env(), capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise FixtureError(f"{toolchain.go} env GOROOT failed: {proc.stderr.strip()}")
    return Path(proc.stdout.strip())


_FUNCID_START = re.compile(r"^\s*(FuncID\w*|funcID_\w+)\s+(?:abi\.)?(?:FuncID|funcID)\s*=\s*iota\b")
_FUNCID_NAME = re.compile(r"^\s*(FuncID\w*|funcID_\w+)\s*(?://.*)?$")


@cache
def source_func_ids(toolchain: Toolchain) -> dict[str, int]:
    """funcID values as the toolchain's own source declares them.

    Read from GOROOT/src/internal/abi/symtab.go (Go 1.21+) or
    runtime/symtab.go (before): the iota block that starts with the normal
    funcID. Names are normalized: FuncIDWrapper / funcID_wrapper -> "wrapper",
    FuncID_goexit -> "goexit".
    """
    root = goroot(toolchain) / "src"
    for path in (root / "internal/abi/symtab.go", root / "runtime/symtab.go"):
        if not path.exists():
            continue
        ids: dict[str, int] = {}
        for line in path.read_text().splitlines():
            if not ids:
                m = _FUNCID_START.match(line)
            elif line.strip() == ")":
                break
            else:
                m = _FUNCID_NAME.match(line)
                if m is None:
                    if line.strip() and not line.strip().startswith("//"):
                        raise FixtureError(f"{path}: unexpected line in the funcID block: {line!r}")
                    continue
            if m is not None:
                name = re.sub(r"^(FuncID_?|funcID_)", "", m.group(1)).lower()
                ids[name] = len(ids)
        if ids:
            return ids
    raise FixtureError(f"no funcID declarations under {root}")


def oracle_toolchain() -> Toolchain:
    """The toolchain that builds the oracle: Go ORACLE_GO_VERSION, else the newest installed."""
    installed = _installed()
    for t in installed:
        if t.version == ORACLE_GO_VERSION:
            return t
    if in_ci() or not installed:
        raise FixtureError(f"the oracle needs Go {ORACLE_GO_VERSION}: run scripts/setup.sh")
    return max(installed, key=lambda t: t.release)


# --- hashing, locking ---------------------------------------------------------


def tree_hash(root: Path) -> str:
    """SHA-256 over the relative paths and contents of every file under root."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def file_hash(path: Path) -> str:
    """SHA-256 of one file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on path (created if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


# --- local module proxy ---------------------------------------------------------


def _escape_module_path(path: str) -> str:
    """Module proxy path escaping: an upper-case letter becomes '!' + lower case."""
    return "".join("!" + c.lower() if c.isupper() else c for c in path)


def module_proxy() -> Path:
    """A file:// GOPROXY directory generated from testdata/go/modproxy/<module>@<version>/.

    Zips are deterministic (fixed timestamps, sorted names), so the h1: hashes
    committed in the fixtures' go.sum files stay valid.
    """
    digest = tree_hash(MODPROXY_SOURCE)[:16]
    proxy = BUILD_ROOT / f"goproxy-{digest}"
    with _locked(BUILD_ROOT / ".goproxy.lock"):
        if (proxy / ".complete").exists():
            return proxy
        shutil.rmtree(proxy, ignore_errors=True)
        versions: dict[str, list[str]] = {}
        for moddir in sorted(p for p in MODPROXY_SOURCE.rglob("*@*") if p.is_dir()):
            name, _, version = moddir.name.partition("@")
            modpath = str(moddir.relative_to(MODPROXY_SOURCE).parent / name)
            vdir = proxy / _escape_module_path(modpath) / "@v"
            vdir.mkdir(parents=True, exist_ok=True)
            (vdir / f"{version}.info").write_text(
                json.dumps({"Version": version, "Time": "2024-01-01T00:00:00Z"}) + "\n"
            )
            (vdir / f"{version}.mod").write_bytes((moddir / "go.mod").read_bytes())
            with zipfile.ZipFile(vdir / f"{version}.zip", "w", zipfile.ZIP_DEFLATED) as z:
                for f in sorted(p for p in moddir.rglob("*") if p.is_file()):
                    info = zipfile.ZipInfo(f"{modpath}@{version}/{f.relative_to(moddir)}", (1980, 1, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    z.writestr(info, f.read_bytes())
            versions.setdefault(modpath, []).append(version)
        for modpath, vs in versions.items():
            (proxy / _escape_module_path(modpath) / "@v" / "list").write_text("".join(v + "\n" for v in vs))
        (proxy / ".complete").write_text("")
    return proxy


# --- building -------------------------------------------------------------------


def go_env(toolchain: Toolchain) -> dict[str, str]:
    """The environment to run `go build` of a scratch module with: no Go settings of the caller, the
    toolchain's build cache, no network, no cgo (tests that compile Go source of their own)."""
    env = _clean_env()
    env.update(GOCACHE=str(_gocache(toolchain)), GOFLAGS="-mod=mod", GOPROXY="off", CGO_ENABLED="0")
    return env


def _gocache(toolchain: Toolchain) -> Path:
    """GOCACHE of a toolchain: under GOHOOK_CACHE when writable, else under build/."""
    for base in (GOHOOK_CACHE / "gocache", BUILD_ROOT / "gocache"):
        try:
            (base / toolchain.version).mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(base / toolchain.version, os.W_OK):
            return base / toolchain.version
    raise FixtureError(f"no writable GOCACHE for {toolchain}")


def _gopath_copy(fixture: Fixture, digest: str) -> Path:
    """A stable copy of a GOPATH-mode fixture tree, named by its content hash."""
    dest = BUILD_ROOT / "gopath" / f"{fixture.name}-{digest[:16]}"
    with _locked(BUILD_ROOT / "gopath" / f".{fixture.name}.lock"):
        if not (dest / ".complete").exists():
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(fixture.source, dest)
            (dest / ".complete").write_text("")
    return dest


@dataclass(frozen=True)
class _Command:
    argv: tuple[str, ...]
    env: dict[str, str]  # only the Go settings (added to _clean_env())
    cwd: Path
    inputs: dict[str, str]  # what the cache key covers besides argv and env


def _command(toolchain: Toolchain, fixture: Fixture, mode: str, out: Path, extra: tuple[str, ...] = ()) -> _Command:
    if mode not in MODES:
        raise FixtureError(f"unknown build mode {mode!r}; known: {', '.join(MODES)}")
    mode_env, mode_flags = MODES[mode]
    digest = tree_hash(fixture.source)
    env = {"GOCACHE": str(_gocache(toolchain)), **mode_env}
    inputs = {"source": digest}
    if fixture.gopath:
        gopath = _gopath_copy(fixture, digest)
        env.update(GO111MODULE="off", GOPATH=str(gopath), GOPROXY="off", GOFLAGS="")
        cwd = gopath
    else:
        proxy = module_proxy()
        inputs["proxy"] = proxy.name
        env.update(
            GO111MODULE="on",
            GOWORK="off",
            GOFLAGS="-mod=mod -modcacherw",
            GOPROXY=f"file://{proxy}",
            GOSUMDB="off",
            GOPATH=str(BUILD_ROOT / "gopath-modules"),
            GOMODCACHE=str(BUILD_ROOT / f"gomodcache-{proxy.name}"),
        )
        cwd = fixture.source
    argv = (str(toolchain.go), "build", "-buildvcs=false", *mode_flags, *extra, "-o", str(out), fixture.target)
    return _Command(argv, env, cwd, inputs)


def _key(toolchain: Toolchain, command: _Command, out: Path) -> str:
    material = {
        "recipe": RECIPE,
        "toolchain": [toolchain.version, str(toolchain.go)],
        "argv": [a for a in command.argv if a != str(out)],
        "env": command.env,
        "inputs": command.inputs,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _run_build(toolchain: Toolchain, fixture: Fixture, mode: str, out: Path, extra: tuple[str, ...] = ()) -> Path:
    """Build fixture into out unless the cached copy has the same key."""
    record_path = out.with_name(out.name + ".build.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    with _locked(out.with_name(f".{out.name}.lock")):
        tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
        command = _command(toolchain, fixture, mode, tmp, extra)
        key = _key(toolchain, command, tmp)
        if out.exists() and _read_json(record_path).get("key") == key:
            return out
        start = time.monotonic()
        try:
            proc = subprocess.run(
                command.argv,
                cwd=command.cwd,
                env={**_clean_env(), **command.env},
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT,
            )
        except subprocess.TimeoutExpired as e:
            raise FixtureError(f"go build of {fixture.name} ({mode}) with {toolchain} timed out") from e
        seconds = round(time.monotonic() - start, 2)
        shown = " ".join(f"{k}={v}" for k, v in sorted(command.env.items()))
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise FixtureError(
                f"go build of {fixture.name} ({mode}) with {toolchain} failed (exit {proc.returncode})\n"
                f"$ cd {command.cwd} && {shown} {' '.join(command.argv)}\n{proc.stderr}"
            )
        if tree_hash(fixture.source) != command.inputs["source"]:
            tmp.unlink(missing_ok=True)
            raise FixtureError(
                f"go build of {fixture.name} with {toolchain} modified {fixture.source} "
                "(go.mod or go.sum not tidy?): check `git status` and commit the result"
            )
        os.replace(tmp, out)
        _write_json(
            record_path,
            {
                "key": key,
                "seconds": seconds,
                "toolchain": toolchain.version,
                "fixture": fixture.name,
                "mode": mode,
                "command": list(command.argv),
                "env": command.env,
                "output": proc.stderr,
            },
        )
    return out


def build(toolchain: Toolchain, fixture: str, mode: str = "default") -> Path:
    """Build (or reuse) testdata fixture `fixture` with toolchain in mode; return the binary.

    Modes: default (CGO_ENABLED=0), stripped (-ldflags=-s -w), pie
    (-buildmode=pie), cgo (CGO_ENABLED=1). Raises FixtureError with go
    build's stderr when the build fails.
    """
    if fixture not in FIXTURES:
        raise FixtureError(f"unknown fixture {fixture!r}; known: {', '.join(FIXTURES)}")
    out = BUILD_ROOT / toolchain.version / f"{fixture}-{mode}"
    return _run_build(toolchain, FIXTURES[fixture], mode, out)


def build_record(binary: Path) -> dict[str, Any]:
    """The record written next to a built binary (key, seconds, command, go output)."""
    return _read_json(binary.with_name(binary.name + ".build.json"))


def gcflags_m(toolchain: Toolchain, fixture: str) -> str:
    """The compiler's inlining report (`go build -gcflags=-m`) for the fixture's main package."""
    if fixture not in FIXTURES:
        raise FixtureError(f"unknown fixture {fixture!r}")
    out = BUILD_ROOT / toolchain.version / f"{fixture}-gcflags-m"
    _run_build(toolchain, FIXTURES[fixture], "default", out, ("-gcflags=-m",))
    return str(build_record(out).get("output", ""))


# --- oracles --------------------------------------------------------------------


def oracle_executable() -> Path:
    """The oracle program, built once with the oracle toolchain."""
    toolchain = oracle_toolchain()
    return _run_build(toolchain, ORACLE_FIXTURE, "default", BUILD_ROOT / "oracle" / f"oracle-go{toolchain.version}")


def oracle(binary: Path, text_start: int | None = None) -> dict[str, Any]:
    """What Go's debug/gosym, debug/buildinfo and debug/elf say about binary.

    Keys: build_info (or build_info_error), text_start, text_start_from,
    text_section, pclntab_magic, functions [{name, entry, end, file, line,
    func_id, flag}], samples [{pc, file, line, function}], table_error
    (stripped binaries: no runtime.text symbol, unless text_start is given).
    Cached next to the binary (or under build/ for a binary elsewhere),
    keyed by the binary's and the oracle's hashes.
    """
    exe = oracle_executable()
    binary = Path(binary).resolve()
    digest = file_hash(binary)
    key = f"{digest}:{build_record(exe).get('key', '')}:{text_start}"
    suffix = ".oracle.json" if text_start is None else f".oracle-text-{text_start:x}.json"
    if binary.is_relative_to(BUILD_ROOT.resolve()):
        cache_path = binary.with_name(binary.name + suffix)
    else:
        cache_path = BUILD_ROOT / "oracle-cache" / f"{digest[:32]}{suffix}"
        cache_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [str(exe)] + ([] if text_start is None else [f"-text={text_start:#x}"]) + [str(binary)]
    with _locked(cache_path.with_name(f".{cache_path.name}.lock")):
        cached = _read_json(cache_path)
        if cached.get("key") == key:
            return dict(cached["oracle"])
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise FixtureError(f"oracle failed on {binary} (exit {proc.returncode}):\n{proc.stderr}")
        doc = json.loads(proc.stdout)
        _write_json(cache_path, {"key": key, "oracle": doc})
    return dict(doc)


def _unquote(s: str) -> str:
    """Undo Go's strconv.Quote (used by debug.BuildInfo.String for odd keys/values)."""
    if s.startswith('"'):
        value = ast.literal_eval(s)
        if not isinstance(value, str):
            raise FixtureError(f"not a quoted string: {s!r}")
        return value
    return s


def _split_setting(text: str) -> tuple[str, str]:
    """Split `KEY=VALUE` of a build line, either part possibly Go-quoted."""
    if text.startswith('"'):
        i = 1
        while i < len(text) and text[i] != '"':
            i += 2 if text[i] == "\\" else 1
        key, rest = text[: i + 1], text[i + 1 :]
        if not rest.startswith("="):
            raise FixtureError(f"bad build setting {text!r}")
        return _unquote(key), _unquote(rest[1:])
    key, sep, value = text.partition("=")
    if not sep:
        raise FixtureError(f"bad build setting {text!r}")
    return key, _unquote(value)


def parse_version_m(text: str) -> dict[str, Any]:
    """Parse `go version -m` output into the oracle's build_info shape."""
    lines = text.splitlines()
    if not lines or ": go" not in lines[0]:
        raise FixtureError(f"unexpected go version -m output: {text[:200]!r}")
    empty: dict[str, Any] = {"path": "", "version": "", "sum": "", "replace": None}
    info: dict[str, Any] = {
        "go_version": lines[0].rsplit(": ", 1)[1].strip(),
        "path": "",
        "main": dict(empty),
        "deps": [],
        "settings": [],
    }
    last: dict[str, Any] | None = None
    for line in lines[1:]:
        fields = line.removeprefix("\t").split("\t")
        word = fields[0]
        if word == "path":
            info["path"] = fields[1]
        elif word in ("mod", "dep", "=>"):
            module = {
                "path": fields[1],
                "version": fields[2] if len(fields) > 2 else "",
                "sum": fields[3] if len(fields) > 3 else "",
                "replace": None,
            }
            if word == "mod":
                info["main"] = last = module
            elif word == "dep":
                info["deps"].append(module)
                last = module
            else:
                if last is None:
                    raise FixtureError(f"'=>' line without a module before it: {line!r}")
                last["replace"] = module
        elif word == "build":
            info["settings"].append(list(_split_setting("\t".join(fields[1:]))))
        elif line.strip():
            raise FixtureError(f"unexpected go version -m line {line!r}")
    return info


def go_version_m(toolchain: Toolchain, binary: Path) -> dict[str, Any]:
    """Build info of binary as `go version -m` prints it, parsed like oracle()['build_info']."""
    proc = subprocess.run(
        [str(toolchain.go), "version", "-m", str(binary)],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise FixtureError(f"go version -m {binary} failed (exit {proc.returncode}):\n{proc.stderr}")
    return parse_version_m(proc.stdout)


def runtime_frames(binary: Path) -> dict[str, Any]:
    """Run an inlineapp binary: the runtime's raw PCs and CallersFrames for each probe point.

    Keys: go_version, main_main (run-time address of main.main, for the PIE
    load bias), points [{name, pcs, frames [{function, file, line, entry}]}].
    Not cached: PIE addresses change from run to run.
    """
    proc = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise FixtureError(f"{binary} failed (exit {proc.returncode}):\n{proc.stderr}")
    return dict(json.loads(proc.stdout))


def run_fixture(binary: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a fixture binary with arguments; the caller checks the result."""
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout)


def vendored_xsys(toolchain: Toolchain) -> tuple[Path, str]:
    """The golang.org/x/sys directory a toolchain vendors (GOROOT/src/cmd/vendor), and the go version its
    modules.txt requires: an x/sys of that Go release's time, with no download."""
    vendor = goroot(toolchain) / "src" / "cmd" / "vendor"
    m = re.search(r"^# golang\.org/x/sys \S+\n## explicit; go (\S+)", (vendor / "modules.txt").read_text(), re.M)
    if m is None:
        raise FixtureError(f"{vendor}/modules.txt lists no golang.org/x/sys")
    return vendor / "golang.org" / "x" / "sys", m[1]


def xsys_numbers(unix_dir: Path) -> dict[str, int]:
    """SYS_* name -> number, from x/sys's own zsysnum_linux_amd64.go (the oracle for system-call numbers)."""
    text = (unix_dir / "zsysnum_linux_amd64.go").read_text()
    return {name: int(nr) for name, nr in re.findall(r"^\s*(SYS_\w+)\s*=\s*(\d+)", text, re.M)}


# -- real third-party binaries (scripts/setup.sh fetches them, pinned and checksummed) ----------------------------

REAL_CACHE = Path(os.environ.get("GOHOOK_CACHE", "/var/cache/gohook"))
REAL_BINARIES = {
    "node_exporter": REAL_CACHE / "real/prometheus-node-exporter/root/usr/bin/prometheus-node-exporter",
    "etcd": REAL_CACHE / "real/etcd-server/root/usr/bin/etcd",
    "shfmt": REAL_CACHE / "real/shfmt-py/root/shfmt_py-4.2.0.data/scripts/shfmt",
}


def real_binary_path(name: str) -> Path:
    """One of REAL_BINARIES; missing: a failure in CI (scripts/setup.sh fetches it), a skip elsewhere."""
    import pytest

    path = REAL_BINARIES[name]
    if not path.exists():
        if in_ci():
            raise AssertionError(f"{path} missing: scripts/setup.sh fetches it")
        pytest.skip(f"{path} missing: run scripts/setup.sh")
    return path
