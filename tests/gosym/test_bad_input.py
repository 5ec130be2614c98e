"""Bad input never crashes gohook: one error line, exit 2, typed exceptions, no hang.

Inputs: non-ELF files, non-Go ELF, truncated Go binaries, and a fuzz run
(hypothesis) that corrupts the pclntab and build info of a real fixture.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import gofixtures
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gohook.commands.main import main
from gohook.errors import GohookError
from gohook.gosym import ElfImage, GoBinary


@pytest.fixture(scope="module")
def real_binary() -> bytes:
    tc = gofixtures.oracle_toolchain()
    return gofixtures.build(tc, "capapp", "default").read_bytes()


def exercise(data: bytes) -> None:
    """Everything `gohook symbols` does, on bytes in memory."""
    b = GoBinary(ElfImage(data, "fuzzed"))
    fns = b.functions
    for f in fns[:: max(1, len(fns) // 40)]:
        b.module_of(f.name)
        b.frames(f.entry + 1)
    b.build_info  # noqa: B018 - the parse is the point
    b.main_module  # noqa: B018


def run_cli(tmp_path: Path, data: bytes, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "input"
    path.write_bytes(data)
    code = main(["symbols", str(path), "--json"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "data",
    [b"", b"hello world\n", b"\x7fELF", b"\x7fELF" + b"\x00" * 60, b"MZ" + b"\x00" * 200],
    ids=["empty", "text", "elf-magic-only", "elf-zero-header", "pe-stub"],
)
def test_garbage_files(tmp_path: Path, data: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(tmp_path, data, capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("gohook: ")


def test_non_go_elf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(tmp_path, Path("/bin/true").read_bytes(), capsys)
    assert code == 2 and "no Go function table" in err


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["symbols", "/nonexistent/app"]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
def test_truncated_go_binary(tmp_path: Path, real_binary: bytes, fraction: float,
                             capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(tmp_path, real_binary[: int(len(real_binary) * fraction)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err


def test_no_traceback_end_to_end(tmp_path: Path, real_binary: bytes) -> None:
    path = tmp_path / "cut"
    path.write_bytes(real_binary[: len(real_binary) // 2])
    proc = subprocess.run([sys.executable, "-m", "gohook", "symbols", str(path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def _regions(data: bytes) -> list[tuple[int, int]]:
    img = ElfImage(data)
    out = []
    for name in (".gopclntab", ".go.buildinfo", ".noptrdata", ".go.module"):
        sec = img.section(name)
        if sec is not None and not sec.nobits:
            out.append((sec.offset, sec.size))
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(st.data())
def test_fuzz_corrupted_tables(real_binary: bytes, data: st.DataObject) -> None:
    regions = _regions(real_binary)
    start, size = data.draw(st.sampled_from(regions))
    buf = bytearray(real_binary)
    edits = data.draw(st.lists(st.tuples(st.integers(0, min(size, 4096) - 1), st.integers(0, 255)),
                               min_size=1, max_size=16))
    window = data.draw(st.integers(0, max(0, size - 4096)))
    for off, value in edits:
        buf[start + window + off] = value
    with contextlib.suppress(GohookError):  # a typed error is the allowed outcome; anything else fails
        exercise(bytes(buf))
