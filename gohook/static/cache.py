"""A cache of the binary-only static results (hook sites and the capability analysis), one JSON file per Go build ID.

Why: on a ~50 MB Go binary with ~100 modules (Debian's prometheus) finding the
hook sites and analysing the call graph take seconds, and inspect, policy
generate and attach redo them for the same file every time (issue 17 §6).
Their results depend only on the file and on gohook's own analysis code, so
they are kept, keyed by both.

Where: $GOHOOK_ANALYSIS_CACHE if set; as root /var/cache/gohook/analysis;
otherwise $XDG_CACHE_HOME/gohook/analysis or ~/.cache/gohook/analysis. One
file per build ID (`<sha256 of the build ID>.json`), written atomically (a
temporary file in the same directory, then rename).

Key and validation. An entry is used only when all of these hold, and is
otherwise ignored and recomputed (never a traceback):

  - its format number and the hash of gohook's analysis code (every source and
    data file of gohook.gosym, gohook.sites, gohook.static and
    gohook.attribution: an upgrade of gohook invalidates it) match;
  - its Go build ID and file size match the binary's, and so does the SHA-256
    of the whole file (about 70 ms for 50 MB): the build ID is only a claim a
    file makes about itself, so a crafted file that copies another program's
    build ID and size does not get that program's hook sites;
  - the directory and the file are owned by the effective user and writable by
    no one else (the file is opened with O_NOFOLLOW). As root the entries are
    therefore root's own, in a directory only root can write;
  - it parses into the expected structure: every hook site names a function of
    the binary at its recorded entry and a hook of the catalog for the binary's
    Go release, which is taken from the catalog, not from the file.

JSON, not pickle: loading an entry builds only gohook's own dataclasses from
plain values; nothing in the file can run code. A poisoned entry would need
write access to a directory only the (effective) user running gohook can
write, and a matching SHA-256 of the binary; attach (enforcement) reads it
under the same rules.

Only the packaged catalog is cached: a caller that passes its own catalog
gets a fresh analysis.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gohook.gosym import GoBinary
from gohook.gosym.gobuildid import BuildIdError, go_build_id
from gohook.sites.catalog import Catalog, GoVersion
from gohook.sites.hooks import CallSite, HookReport, HookSite
from gohook.sites.probesite import ProbeSite
from gohook.static.analysis import Analysis, CapabilityPath, Gap, ModuleReport

FORMAT = 1
ENV_DIR = "GOHOOK_ANALYSIS_CACHE"
ROOT_DIR = Path("/var/cache/gohook/analysis")
#: gohook packages whose code decides the cached results (their .py, .yaml and .c files are hashed).
CODE_PACKAGES = ("gosym", "sites", "static", "attribution")
_CODE_SUFFIXES = (".py", ".yaml", ".yml", ".c")


class CacheEntryError(ValueError):
    """A cache entry that does not parse into the expected structure (handled inside this module)."""


@dataclass(frozen=True)
class CachedResults:
    """What the cache holds for one binary: its hook sites and its capability analysis."""

    hooks: HookReport
    analysis: Analysis


def cache_dir() -> Path:
    """The cache directory for the current user (see the module docstring)."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return ROOT_DIR
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "gohook" / "analysis"


def code_version() -> str:
    """SHA-256 over gohook's analysis code and data (file names and contents), hex."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(f"format {FORMAT}\n".encode())
    for pkg in CODE_PACKAGES:
        for p in sorted((root / pkg).rglob("*")):
            if p.suffix in _CODE_SUFFIXES and p.is_file():
                h.update(str(p.relative_to(root)).encode() + b"\0")
                h.update(p.read_bytes())
    return h.hexdigest()


@dataclass(frozen=True)
class CacheKey:
    """Identity of a binary for the cache: Go build ID, file size, SHA-256 of the file, and the code version."""

    build_id: str
    size: int
    sha256: str
    code: str

    @property
    def filename(self) -> str:
        return hashlib.sha256(self.build_id.encode()).hexdigest() + ".json"


def cache_key(binary: GoBinary) -> CacheKey | None:
    """The key of a binary, or None when it has no Go build ID (it is then never cached)."""
    try:
        build_id = go_build_id(binary.image)
    except BuildIdError:
        return None
    data = binary.image.data
    return CacheKey(build_id, len(data), hashlib.sha256(data).hexdigest(), code_version())


def _private(st: os.stat_result) -> bool:
    """Owned by the effective user and writable by no one else."""
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def load(binary: GoBinary, catalog: Catalog, key: CacheKey, directory: Path | None = None) -> CachedResults | None:
    """The cached results for `binary`, or None (absent, untrusted, stale, or corrupt: recompute)."""
    d = directory or cache_dir()
    try:
        if not _private(os.stat(d)):
            return None
        fd = os.open(d / key.filename, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        try:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or not _private(st):
                return None
            doc = json.loads(f.read())
        except (OSError, ValueError, RecursionError):
            return None
    try:
        return _decode(doc, binary, catalog, key)
    except (CacheEntryError, KeyError, TypeError, ValueError, AttributeError, IndexError):
        return None


def store(results: CachedResults, key: CacheKey, directory: Path | None = None) -> bool:
    """Write the entry atomically (temporary file + rename); False when the directory cannot be used."""
    d = directory or cache_dir()
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(os.stat(d)):
            return False
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=d)
    except OSError:
        return False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(_encode(results, key), f, separators=(",", ":"))
        os.replace(tmp, d / key.filename)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return False
    return True


# -- encoding -----------------------------------------------------------------------------


def _encode(results: CachedResults, key: CacheKey) -> dict[str, Any]:
    h, a = results.hooks, results.analysis
    return {
        "format": FORMAT, "code": key.code, "build_id": key.build_id, "size": key.size, "sha256": key.sha256,
        "hooks": {
            "go_version": str(h.go_version), "assumed": h.version_assumed,
            "sites": [{"function": s.function.name, "entry": s.function.entry,
                       "probe": [s.probe.address, s.probe.kind, s.probe.reason], "file_offset": s.file_offset,
                       "call_sites": None if s.call_sites is None else
                       [[c.address, c.file_offset, c.caller, c.call_len] for c in s.call_sites]}
                      for s in h.sites],
            "absent": list(h.absent), "inlined_only": list(h.inlined_only),
        },
        "analysis": {
            "modules": [{"path": m.path, "version": m.version, "inferred": m.inferred, "functions": m.functions,
                         "capabilities": [[c, list(p.path)] for c, p in m.capabilities.items()],
                         "indirect_calls": m.indirect_calls} for m in a.modules.values()],
            "gaps": [[g.kind, g.module, g.detail, g.remedy, g.function, g.address, list(g.syscalls)] for g in a.gaps],
            "functions_scanned": a.functions_scanned, "frame_pointer_checked": a.frame_pointer_checked,
            # flat [caller, site, callee, caller, ...] per module: 280,000 call sites in prometheus
            "call_sites": {m: [x for t in v for x in t] for m, v in a.call_sites.items()},
        },
    }


def _typed(value: Any, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CacheEntryError(f"expected {kind}, got {type(value).__name__}")
    return value


def _int(value: Any) -> int:
    return _typed(value, int)  # type: ignore[no-any-return]


def _str(value: Any) -> str:
    return _typed(value, str)  # type: ignore[no-any-return]


def _strs(values: Any) -> tuple[str, ...]:
    return tuple(_str(v) for v in _typed(values, list))


def _decode(doc: Any, binary: GoBinary, catalog: Catalog, key: CacheKey) -> CachedResults:
    _typed(doc, dict)
    if (doc.get("format"), doc.get("code"), doc.get("build_id"), doc.get("size"), doc.get("sha256")) != (
            FORMAT, key.code, key.build_id, key.size, key.sha256):
        raise CacheEntryError("another binary or another gohook")
    return CachedResults(_decode_hooks(_typed(doc["hooks"], dict), binary, catalog),
                         _decode_analysis(_typed(doc["analysis"], dict), len(binary.functions)))


def _decode_hooks(h: dict[str, Any], binary: GoBinary, catalog: Catalog) -> HookReport:
    version = GoVersion.parse(_str(h["go_version"]))
    specs: dict[str, Any] = {}
    for spec in catalog.hooks_for(version):
        specs.setdefault(spec.function, spec)  # the first spec per function, as find_hook_sites takes it
    by_entry = {f.entry: f for f in binary.functions}
    sites = []
    for s in _typed(h["sites"], list):
        f = by_entry.get(_int(s["entry"]))
        name = _str(s["function"])
        if f is None or f.name != name or name not in specs:
            raise CacheEntryError(f"hook site {name!r} is not in this binary or the catalog")
        address, kind, reason = _typed(s["probe"], list)
        calls = s["call_sites"]
        call_sites = None if calls is None else tuple(
            CallSite(_int(c[0]), _int(c[1]), _str(c[2]), _int(c[3])) for c in _typed(calls, list))
        sites.append(HookSite(specs[name], f, ProbeSite(_int(address), _str(kind), _str(reason)),
                              _int(s["file_offset"]), call_sites))
    return HookReport(version, _typed(h["assumed"], bool), tuple(sites), _strs(h["absent"]),
                      _strs(h["inlined_only"]))


def _decode_analysis(a: dict[str, Any], nfunctions: int) -> Analysis:
    modules: dict[str, ModuleReport] = {}
    for m in _typed(a["modules"], list):
        rep = ModuleReport(_str(m["path"]), _str(m["version"]), _typed(m["inferred"], bool), _int(m["functions"]),
                           {}, _int(m["indirect_calls"]))
        for cap, path in _typed(m["capabilities"], list):
            rep.capabilities[_str(cap)] = CapabilityPath(cap, _strs(path))
        modules[rep.path] = rep
    gaps = []
    for kind, module, detail, remedy, function, address, syscalls in _typed(a["gaps"], list):
        gaps.append(Gap(_str(kind), _str(module), _str(detail), _str(remedy), _str(function), _int(address),
                        tuple(_int(n) for n in _typed(syscalls, list))))
    call_sites: dict[str, list[tuple[int, int, int]]] = {}
    for mod, flat in _typed(a["call_sites"], dict).items():
        _typed(flat, list)
        if len(flat) % 3 or not all(type(x) is int for x in flat):
            raise CacheEntryError("call sites are not (caller, site, callee) integers")
        indexes = flat[0::3] + flat[2::3]
        if indexes and not (min(indexes) >= 0 and max(indexes) < nfunctions):
            raise CacheEntryError("call site outside the function table")
        call_sites[_str(mod)] = list(zip(flat[0::3], flat[1::3], flat[2::3], strict=True))
    return Analysis(modules, gaps, _int(a["functions_scanned"]), _int(a["frame_pointer_checked"]), call_sites)


def hook_sites(binary: GoBinary, catalog: Catalog, use_cache: bool = True) -> HookReport:
    """The hook sites of `binary` for attach's plan: from the cache entry inspect or policy generate wrote for
    the same file (under the rules of the module docstring), else found afresh (and not stored: an entry holds
    the analysis too, which attach does not compute)."""
    from gohook.sites.hooks import find_hook_sites

    key = cache_key(binary) if use_cache else None
    hit = load(binary, catalog, key) if key is not None else None
    return hit.hooks if hit is not None else find_hook_sites(binary, catalog)
