"""Shared pytest fixtures: Go toolchains, fixture builds and the two oracles.

Everything is session scoped and backed by tests/gofixtures.py, which caches
built binaries and oracle output under build/fixtures/, so only the first
run of the suite pays for compiling.

A test that takes a `toolchain` argument is parametrized over every
installed toolchain (ids like `go1.27.3`). Outside CI a machine without any
toolchain skips those tests with a reason; in CI (CI=true) a missing
toolchain is an error raised by gofixtures.toolchains().
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gofixtures
import pytest
from gofixtures import Toolchain


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "toolchain" not in metafunc.fixturenames:
        return
    found = gofixtures.toolchains()
    if found:
        metafunc.parametrize("toolchain", found, ids=str, scope="session")
    else:
        skip = pytest.mark.skip(reason="no Go toolchain installed: run scripts/setup.sh (CI=true makes this an error)")
        metafunc.parametrize("toolchain", [pytest.param(None, marks=skip)], ids=["no-go"], scope="session")


@pytest.fixture(scope="session")
def go_toolchains() -> list[Toolchain]:
    """Every installed toolchain the suite uses (possibly narrowed by GOHOOK_GO_VERSIONS)."""
    return gofixtures.toolchains()


@pytest.fixture(scope="session")
def newest_toolchain(go_toolchains: list[Toolchain]) -> Toolchain:
    """The newest installed toolchain."""
    if not go_toolchains:
        pytest.skip("no Go toolchain installed: run scripts/setup.sh")
    return max(go_toolchains, key=lambda t: t.release)


@pytest.fixture(scope="session")
def go_build() -> Callable[[Toolchain, str, str], Path]:
    """build(toolchain, fixture, mode="default") -> Path of the (cached) binary."""
    return gofixtures.build


@pytest.fixture(scope="session")
def go_oracle() -> Callable[[Path], dict[str, Any]]:
    """oracle(binary) -> dict from Go's debug/gosym, debug/buildinfo and debug/elf."""
    return gofixtures.oracle


@pytest.fixture(scope="session")
def go_version_m() -> Callable[[Toolchain, Path], dict[str, Any]]:
    """go_version_m(toolchain, binary) -> build info as `go version -m` prints it."""
    return gofixtures.go_version_m


@pytest.fixture(scope="session")
def go_runtime_frames() -> Callable[[Path], dict[str, Any]]:
    """runtime_frames(inlineapp binary) -> raw runtime.Callers PCs and CallersFrames frames."""
    return gofixtures.runtime_frames


EVASION_RESULTS = gofixtures.REPO_ROOT / "build" / "evasion" / "results.json"


# --- docs/evasion.md rows: tests/test_evasion.py and tests/test_boundary.py record, its last test renders


@dataclass
class Results:
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, request: pytest.FixtureRequest, technique: int, variant: str, outcome: str, why: str,
            evidence: str) -> None:
        self.rows.append({"technique": technique, "variant": variant, "outcome": outcome, "why": why,
                          "evidence": evidence, "test": request.node.nodeid})


@pytest.fixture(scope="session")
def results() -> Iterator[Results]:
    res = Results()
    yield res
    if res.rows:
        EVASION_RESULTS.parent.mkdir(parents=True, exist_ok=True)
        EVASION_RESULTS.write_text(json.dumps({"rows": res.rows}, indent=1) + "\n", encoding="utf-8")


@pytest.fixture
def record(request: pytest.FixtureRequest, results: Results) -> Callable[..., None]:
    """record(technique, variant, outcome, why, evidence): one row of docs/evasion.md, from a passing test."""

    def add(technique: int, variant: str, outcome: str, why: str, evidence: str) -> None:
        results.add(request, technique, variant, outcome, why, evidence)

    return add
