"""The analysis cache (gohook.static.cache) on real fixture binaries: a cached result equals a fresh one, a
second inspect does not run the analysis again, and a corrupt, mismatching or untrusted entry is ignored and
recomputed without a traceback.

"Faster the second time" is shown by counting calls of the expensive stages (find_hook_sites, analyze), not
by a clock.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gofixtures
import pytest
from gofixtures import Toolchain

from gohook.commands.main import main
from gohook.sites import hooks as hooks_module
from gohook.static import analysis as analysis_module
from gohook.static import cache
from gohook.static.inspection import inspect_binary, inspection_document


class Counted:
    """Wrap a stage function and count its calls (the oracle for "not recomputed")."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.fn(*args, **kwargs)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "analysis"
    monkeypatch.setenv(cache.ENV_DIR, str(d))
    return d


@pytest.fixture
def counters(monkeypatch: pytest.MonkeyPatch) -> tuple[Counted, Counted]:
    hooks = Counted(hooks_module.find_hook_sites)
    analyze = Counted(analysis_module.analyze)
    monkeypatch.setattr(hooks_module, "find_hook_sites", hooks)
    monkeypatch.setattr(analysis_module, "analyze", analyze)
    return hooks, analyze


def document(path: Path, use_cache: bool) -> dict[str, Any]:
    doc = inspection_document(inspect_binary(str(path), cache=use_cache))
    doc.pop("timings")
    return doc


def entry_file(d: Path) -> Path:
    (f,) = [p for p in d.iterdir() if p.suffix == ".json"]
    return f


@pytest.mark.parametrize("mode", ["default", "stripped", "pie"])
def test_cached_result_equals_fresh_and_is_not_recomputed(toolchain: Toolchain, mode: str, cache_dir: Path,
                                                          counters: tuple[Counted, Counted]) -> None:
    binary = gofixtures.build(toolchain, "capapp", mode)
    fresh = inspect_binary(str(binary))
    assert not cache_dir.exists()  # the library default does not touch the cache
    hooks, analyze = counters
    assert (hooks.calls, analyze.calls) == (1, 1)
    first = inspect_binary(str(binary), cache=True)
    assert (hooks.calls, analyze.calls) == (2, 2)
    second = inspect_binary(str(binary), cache=True)
    assert (hooks.calls, analyze.calls) == (2, 2)  # served from the cache: neither stage ran again
    assert "cache" in second.timings and "analysis" not in second.timings
    assert second.hooks == fresh.hooks == first.hooks
    assert second.analysis == fresh.analysis
    assert second.hooks.sites and second.analysis.modules  # not vacuous
    a, b = inspection_document(fresh), inspection_document(second)
    a.pop("timings")
    b.pop("timings")
    assert a == b
    st = os.stat(entry_file(cache_dir))
    assert st.st_mode & 0o077 == 0


def _corrupt_variants(doc: dict[str, Any], raw: bytes) -> dict[str, bytes]:
    """Ways an entry can be wrong: unreadable, cut short, another binary, another gohook, bad structure."""
    def changed(edit: Callable[[dict[str, Any]], None]) -> bytes:
        d = json.loads(raw)
        edit(d)
        return json.dumps(d).encode()

    def bad_site(d: dict[str, Any]) -> None:
        d["hooks"]["sites"][0]["function"] = "main.notAHook"

    def bad_entry(d: dict[str, Any]) -> None:
        d["hooks"]["sites"][0]["entry"] += 1

    def bad_type(d: dict[str, Any]) -> None:
        d["analysis"]["modules"][0]["functions"] = "many"

    def bad_call_site(d: dict[str, Any]) -> None:
        next(v for v in d["analysis"]["call_sites"].values() if v)[0] = 10**9

    def short_call_site(d: dict[str, Any]) -> None:
        next(v for v in d["analysis"]["call_sites"].values() if v).pop()

    return {
        "garbage": b"\x00\xffnot json",
        "truncated": raw[: len(raw) // 2],
        "empty": b"",
        "list": b"[]",
        "other file hash": changed(lambda d: d.update(sha256="0" * 64)),
        "other size": changed(lambda d: d.update(size=d["size"] + 1)),
        "other gohook": changed(lambda d: d.update(code="0" * 64)),
        "missing key": changed(lambda d: d.pop("analysis")),
        "hook not in the binary": changed(bad_site),
        "hook at another entry": changed(bad_entry),
        "wrong type": changed(bad_type),
        "call site out of range": changed(bad_call_site),
        "call site cut short": changed(short_call_site),
        "call site not an int": changed(lambda d: next(v for v in d["analysis"]["call_sites"].values() if v)
                                        .__setitem__(1, True)),
    }


def test_corrupt_or_mismatching_entry_is_recomputed(newest_toolchain: Toolchain, cache_dir: Path,
                                                    counters: tuple[Counted, Counted]) -> None:
    binary = gofixtures.build(newest_toolchain, "capapp", "default")
    fresh = document(binary, use_cache=False)
    document(binary, use_cache=True)
    path = entry_file(cache_dir)
    raw = path.read_bytes()
    _hooks, analyze = counters
    for name, content in _corrupt_variants(json.loads(raw), raw).items():
        path.write_bytes(content)
        before = analyze.calls
        assert document(binary, use_cache=True) == fresh, name
        assert analyze.calls == before + 1, f"{name}: the entry was used"
        assert json.loads(path.read_bytes())["sha256"] == json.loads(raw)["sha256"], f"{name}: not rewritten"
    before = analyze.calls
    document(binary, use_cache=True)
    assert analyze.calls == before  # the rewritten entry is good


def test_entries_others_can_write_are_not_trusted(newest_toolchain: Toolchain, cache_dir: Path,
                                                  counters: tuple[Counted, Counted]) -> None:
    binary = gofixtures.build(newest_toolchain, "capapp", "default")
    document(binary, use_cache=True)
    _hooks, analyze = counters
    path = entry_file(cache_dir)
    for target, mode in ((path, 0o666), (cache_dir, 0o777)):
        old = os.stat(target).st_mode & 0o777
        os.chmod(target, mode)
        before = analyze.calls
        document(binary, use_cache=True)
        assert analyze.calls == before + 1, f"{target} mode {mode:o} was trusted"
        os.chmod(target, old)
    link = cache_dir / "elsewhere.json"
    path.rename(link)
    path.symlink_to(link)  # a symlinked entry is not followed
    before = analyze.calls
    document(binary, use_cache=True)
    assert analyze.calls == before + 1


def test_cli_no_cache_neither_reads_nor_writes(newest_toolchain: Toolchain, cache_dir: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               counters: tuple[Counted, Counted]) -> None:
    binary = gofixtures.build(newest_toolchain, "capapp", "default")
    _hooks, analyze = counters
    assert main(["inspect", str(binary), "--json", "--no-cache"]) == 0
    assert not cache_dir.exists() and analyze.calls == 1
    assert main(["inspect", str(binary), "--json"]) == 0
    assert main(["inspect", str(binary), "--json"]) == 0
    assert analyze.calls == 2  # the second default inspect was served from the entry the first wrote
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for d in out:
        d.pop("timings")
    assert out[0] == out[1] == out[2]


def test_binary_without_build_id_is_not_cached(tmp_path: Path, cache_dir: Path,
                                               newest_toolchain: Toolchain) -> None:
    binary = gofixtures.build(newest_toolchain, "capapp", "default")
    data = bytearray(binary.read_bytes())
    at = data.find(b"\x04\x00\x00\x00Go\x00\x00")  # the note's type + name: make it another note type
    assert at > 0
    data[at] = 5
    text = data.find(b'\xff Go build ID: "')
    if text >= 0:
        data[text + 1] = ord("X")
    copy = tmp_path / "nobuildid"
    copy.write_bytes(bytes(data))
    copy.chmod(0o755)
    document(copy, use_cache=True)
    assert not cache_dir.exists() or not list(cache_dir.iterdir())


def test_attach_takes_hook_sites_from_the_entry(newest_toolchain: Toolchain, cache_dir: Path,
                                                counters: tuple[Counted, Counted]) -> None:
    from gohook.commands.attach import options_from
    from gohook.commands.main import build_parser
    from gohook.gosym import GoBinary
    from gohook.sites.catalog import load_catalog

    binary = gofixtures.build(newest_toolchain, "capapp", "default")
    catalog = load_catalog()
    b = GoBinary.open(binary)
    hooks, _analyze = counters
    fresh = cache.hook_sites(b, catalog)  # no entry yet: found afresh, nothing stored
    assert hooks.calls == 1 and not cache_dir.exists()
    inspect_binary(str(binary), cache=True)
    assert hooks.calls == 2
    assert cache.hook_sites(b, catalog) == fresh and hooks.calls == 2
    assert cache.hook_sites(b, catalog, use_cache=False) == fresh and hooks.calls == 3
    parser = build_parser()
    assert options_from(parser.parse_args(["attach", "--binary", str(binary), "--mode", "learn"])).use_cache
    assert not options_from(parser.parse_args(["attach", "--binary", str(binary), "--no-cache"])).use_cache


def test_policy_generate_from_the_entry_equals_fresh(newest_toolchain: Toolchain, cache_dir: Path,
                                                     counters: tuple[Counted, Counted]) -> None:
    from gohook.policy.generate import generate_policy_text

    binary = gofixtures.build(newest_toolchain, "capapp", "default")
    _hooks, analyze = counters
    fresh = generate_policy_text(str(binary))
    assert generate_policy_text(str(binary), cache=True) == fresh
    assert generate_policy_text(str(binary), cache=True) == fresh
    assert analyze.calls == 2  # fresh, then the run that wrote the entry; the third read it
    assert "modules:" in fresh
