"""Go build info (`.go.buildinfo`): Go version, modules and build settings.

Blob layout (16-byte aligned, at the start of .go.buildinfo or, without that
section, somewhere in the first writable data):

    byte  field
    0     magic "\\xff Go buildinf:" (14 bytes)
    14    pointer size
    15    flags: bit 0 big endian, bit 1 inline strings (Go 1.18+)
    16    pointer format (before Go 1.18): pointer to the version string
          header, then pointer to the modinfo string header (Go string
          headers: data pointer, length)
    32    inline format (Go 1.18+): uvarint length + bytes of the version,
          then uvarint length + bytes of modinfo

Modinfo is framed by 16-byte sentinels when `mod[len-17] == '\\n'`; inside,
tab-separated lines: `path P`, `mod P V [SUM]`, `dep P V [SUM]`,
`=> P V SUM` (replaces the module on the line before), `build K=V`.
This mirrors Go's debug/buildinfo and runtime/debug.ParseBuildInfo.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from gohook.errors import AddressError, BuildInfoError

MAGIC = b"\xff Go buildinf:"
HEADER_SIZE = 32
FLAG_BIG_ENDIAN = 0x1
FLAG_INLINE = 0x2
MAX_STRING = 1 << 24

ReadMemory = Callable[[int, int], bytes]


@dataclass(frozen=True, slots=True)
class Module:
    path: str
    version: str = ""
    sum: str = ""
    replace: Module | None = None


@dataclass(frozen=True)
class BuildInfo:
    go_version: str
    path: str = ""
    main: Module | None = None
    deps: list[Module] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)

    def setting(self, key: str, default: str = "") -> str:
        return self.settings.get(key, default)


def find_blob(data: bytes, start: int = 0) -> int:
    """Offset of the first 16-aligned build info magic in data at/after start, or -1."""
    pos = data.find(MAGIC, start)
    while pos >= 0:
        if pos % 16 == 0:
            return pos
        pos = data.find(MAGIC, pos + 1)
    return -1


def _uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise BuildInfoError("truncated varint in build info", pos)
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def parse_blob(blob: bytes, read: ReadMemory | None = None) -> BuildInfo:
    """Decode the build info blob that starts at blob[0].

    blob must hold the header and, for the inline format, the strings after
    it; `read(vaddr, size)` resolves the pointers of the pre-1.18 format.
    """
    if len(blob) < HEADER_SIZE or not blob.startswith(MAGIC):
        raise BuildInfoError("build info header missing or short", 0)
    ptr_size, flags = blob[14], blob[15]
    if flags & FLAG_INLINE:
        vlen, pos = _uvarint(blob, HEADER_SIZE)
        if vlen > MAX_STRING or pos + vlen > len(blob):
            raise BuildInfoError("build info version string runs past its section", pos)
        version = blob[pos : pos + vlen].decode("utf-8", "replace")
        pos += vlen
        mlen, pos = _uvarint(blob, pos)
        if mlen > MAX_STRING or pos + mlen > len(blob):
            raise BuildInfoError("build info module string runs past its section", pos)
        modinfo = blob[pos : pos + mlen].decode("utf-8", "replace")
    else:
        if ptr_size not in (4, 8) or read is None:
            raise BuildInfoError(f"bad pointer size {ptr_size} in build info", 14)
        order = ">" if flags & FLAG_BIG_ENDIAN else "<"
        fmt = order + ("Q" if ptr_size == 8 else "I")
        vptr, mptr = struct.unpack_from(order + ("QQ" if ptr_size == 8 else "II"), blob, 16)
        version = read_go_string(read, vptr, fmt, ptr_size)
        modinfo = read_go_string(read, mptr, fmt, ptr_size)
    if not version:
        raise BuildInfoError("build info has an empty Go version", 16)
    modinfo = modinfo[16:-16] if len(modinfo) >= 33 and modinfo[-17] == "\n" else ""
    return parse_modinfo(version, modinfo)


def read_go_string(read: ReadMemory, ptr: int, fmt: str, ptr_size: int) -> str:
    """The Go string whose header (data pointer, length) is at ptr."""
    try:
        hdr = read(ptr, 2 * ptr_size)
        data_ptr = struct.unpack_from(fmt, hdr, 0)[0]
        length = struct.unpack_from(fmt, hdr, ptr_size)[0]
        if length > MAX_STRING:
            raise BuildInfoError(f"build info string of {length} bytes at {ptr:#x}", ptr)
        return read(data_ptr, length).decode("utf-8", "replace") if length else ""
    except (AddressError, struct.error) as exc:
        raise BuildInfoError(f"build info pointer {ptr:#x} does not resolve: {exc}", ptr) from exc


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == "`" and value[-1] == "`":
        return value[1:-1]
    if len(value) >= 2 and value[0] == '"':
        try:
            out = json.loads(value)
        except ValueError as exc:
            raise BuildInfoError(f"bad quoted build setting {value!r}") from exc
        return str(out)
    return value


def _module(cols: list[str], line_no: int) -> Module:
    if len(cols) not in (2, 3):
        raise BuildInfoError(f"modinfo line {line_no}: expected 2 or 3 columns, got {len(cols)}")
    return Module(cols[0], cols[1], cols[2] if len(cols) == 3 else "")


def parse_modinfo(go_version: str, modinfo: str) -> BuildInfo:
    """Parse the text form of runtime/debug.BuildInfo (without the Go version)."""
    path = ""
    main: Module | None = None
    deps: list[Module] = []
    settings: dict[str, str] = {}
    last: str | None = None  # "main" or "dep": which module a "=>" line replaces
    for n, line in enumerate(modinfo.split("\n")[:-1] if modinfo else [], start=1):
        kind, _, rest = line.partition("\t")
        if kind == "path":
            path = rest
        elif kind == "mod":
            main, last = _module(rest.split("\t"), n), "main"
        elif kind == "dep":
            deps.append(_module(rest.split("\t"), n))
            last = "dep"
        elif kind == "=>":
            cols = rest.split("\t")
            if len(cols) != 3:
                raise BuildInfoError(f"modinfo line {n}: expected 3 columns for replacement")
            repl = Module(cols[0], cols[1], cols[2])
            if last == "main" and main is not None:
                main = Module(main.path, main.version, main.sum, repl)
            elif last == "dep":
                d = deps[-1]
                deps[-1] = Module(d.path, d.version, d.sum, repl)
            else:
                raise BuildInfoError(f"modinfo line {n}: replacement with no module before it")
            last = None
        elif kind == "build":
            if rest.startswith(("`", '"')):
                end = rest.find(rest[0], 1)
                if end < 0 or end + 1 >= len(rest) or rest[end + 1] != "=":
                    raise BuildInfoError(f"modinfo line {n}: bad quoted build key")
                key, value = _unquote(rest[: end + 1]), rest[end + 2 :]
            else:
                key, eq, value = rest.partition("=")
                if not eq or not key:
                    raise BuildInfoError(f"modinfo line {n}: build line without key=value")
            settings[key] = _unquote(value)
    return BuildInfo(go_version=go_version, path=path, main=main, deps=deps, settings=settings)
