"""Build info blob and modinfo parsing (pure logic)."""

import struct

import pytest

from gohook.errors import BuildInfoError
from gohook.gosym.buildinfo import MAGIC, find_blob, parse_blob, parse_modinfo

SENTINEL = "0123456789abcdef"
MODINFO = (
    "path\texample.com/app/cmd/app\n"
    "mod\texample.com/app\t(devel)\t\n"
    "dep\tgithub.com/acme/x\tv1.2.3\th1:abc=\n"
    "=>\t./x\t(devel)\t\n"
    "dep\tgolang.org/x/sys\tv0.1.0\th1:def=\n"
    'build\t-ldflags="-s -w"\n'
    "build\tCGO_ENABLED=0\n"
    "build\tGOARCH=amd64\n"
)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def inline_blob(version: str, modinfo: str) -> bytes:
    framed = SENTINEL + modinfo + SENTINEL
    head = MAGIC + bytes([8, 2]) + b"\x00" * 16
    return head + _varint(len(version)) + version.encode() + _varint(len(framed)) + framed.encode()


def test_inline_format() -> None:
    info = parse_blob(inline_blob("go1.27.3", MODINFO))
    assert info.go_version == "go1.27.3"
    assert info.path == "example.com/app/cmd/app"
    assert info.main is not None and info.main.path == "example.com/app"
    assert [d.path for d in info.deps] == ["github.com/acme/x", "golang.org/x/sys"]
    assert info.deps[0].replace is not None and info.deps[0].replace.path == "./x"
    assert info.deps[1].replace is None
    assert info.settings == {"-ldflags": "-s -w", "CGO_ENABLED": "0", "GOARCH": "amd64"}


def test_pointer_format() -> None:
    version, framed = b"go1.15.2", (SENTINEL + MODINFO + SENTINEL).encode()
    memory = {
        0x1000: struct.pack("<QQ", 0x2000, len(version)),
        0x2000: version,
        0x1010: struct.pack("<QQ", 0x3000, len(framed)),
        0x3000: framed,
    }

    def read(addr: int, size: int) -> bytes:
        return memory[addr][:size]

    blob = MAGIC + bytes([8, 0]) + struct.pack("<QQ", 0x1000, 0x1010)
    info = parse_blob(blob, read)
    assert info.go_version == "go1.15.2" and info.main is not None and info.main.path == "example.com/app"


def test_find_blob_needs_alignment() -> None:
    data = b"x" * 5 + MAGIC + b"\x00" * 13 + MAGIC
    assert find_blob(data) == 32


@pytest.mark.parametrize(
    "bad",
    [
        "mod\tonlyone\n",
        "=>\tx\tv1\n",
        "=>\tx\tv1\th\n",
        "build\tnoequals\n",
        'build\t"key\n',
    ],
)
def test_bad_modinfo(bad: str) -> None:
    with pytest.raises(BuildInfoError):
        parse_modinfo("go1.27", bad)


def test_truncated_blob() -> None:
    blob = inline_blob("go1.27.3", MODINFO)
    for cut in (10, 33, 40, len(blob) - 5):
        with pytest.raises(BuildInfoError):
            parse_blob(blob[:cut])
