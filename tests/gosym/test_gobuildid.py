"""gohook.gosym.gobuildid against `go tool buildid` on real builds, and malformed notes."""

from __future__ import annotations

import struct
import subprocess

import gofixtures
import pytest

from gohook.gosym.elfimage import ElfImage
from gohook.gosym.gobuildid import BuildIdError, go_build_id, parse_note, parse_text


def _note(desc: bytes, name: bytes = b"Go\x00\x00", typ: int = 4) -> bytes:
    return struct.pack("<III", 4, len(desc), typ) + name + desc + b"\x00" * (-len(desc) % 4)


@pytest.mark.parametrize("mode", ["default", "stripped", "pie"])
def test_build_id_is_what_go_tool_buildid_prints(mode: str) -> None:
    tcs = gofixtures.toolchains()
    if not tcs:
        gofixtures.loud_skip("no Go toolchain: run scripts/setup.sh")
    for tc in tcs:
        binary = gofixtures.build(tc, "denyapp", mode)
        oracle = subprocess.run([str(tc.go), "tool", "buildid", str(binary)], capture_output=True, text=True,
                                check=True, env=gofixtures.go_env(tc)).stdout.strip()
        assert go_build_id(ElfImage.open(binary)) == oracle, (tc.version, mode)


def test_note_and_text_forms() -> None:
    assert parse_note(_note(b"abc/def")) == "abc/def"
    assert parse_text(b'junk\xff Go build ID: "x/y/z"\n \xffmore') == "x/y/z"


@pytest.mark.parametrize("data", [b"", b"\x00" * 8, _note(b"id", name=b"GNU\x00"), _note(b"id", typ=3),
                                  _note(b"")[:-0 or None], struct.pack("<III", 4, 999, 4) + b"Go\x00\x00id",
                                  _note(b"\xff\xfe"), _note(b"a\nb")])
def test_malformed_notes_raise_build_id_error(data: bytes) -> None:
    with pytest.raises(BuildIdError):
        parse_note(data)


def test_text_without_an_id() -> None:
    with pytest.raises(BuildIdError):
        parse_text(b"no id here")
    with pytest.raises(BuildIdError):
        parse_text(b'\xff Go build ID: "unterminated')
