"""runtime.moduledata: the runtime's own index of the pclntab.

Only three fields matter to gohook: where the text starts (Go 1.18+ entry
offsets are relative to it), the function PC range (for validation) and
gofunc (Go 1.18+ funcdata offsets are relative to it).

moduledata (amd64 byte offsets):

    field                     offset
    pcHeader *pcHeader        0     (== the pclntab address: how we find it)
    funcnametab []byte        8     (data pointer == pclntab + funcnameOffset)
    minpc, maxpc              160, 168
    text, etext               176, 184   (Go 1.16+)
    gofunc                    304 (Go 1.18-1.19), 320 (Go 1.20-1.26), 344 (Go 1.27)

moduledata sits in .noptrdata up to Go 1.25 and in its own .go.module section
since Go 1.26. With symbols it is `runtime.firstmoduledata`; without, we scan
writable sections for a pointer to the pclntab and validate the candidate.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from gohook.errors import PclntabError

OFF_PCHEADER = 0
OFF_FUNCNAMETAB = 8
OFF_MINPC = 160
OFF_MAXPC = 168
OFF_TEXT = 176
OFF_ETEXT = 184
MODULEDATA_SIZE = 400


def gofunc_offsets(go_minor: int | None) -> tuple[int, ...]:
    """Candidate offsets of moduledata.gofunc, most likely first."""
    if go_minor is None:
        return (344, 320, 304)
    if go_minor >= 27:
        return (344,)  # Go 1.27 added typedesclen, itaboffset, itabsize before it
    if go_minor >= 20:
        return (320,)  # Go 1.20 added covctrs/ecovctrs
    return (304,)


@dataclass(frozen=True, slots=True)
class ModuleData:
    address: int
    minpc: int
    maxpc: int
    text: int
    etext: int
    gofunc: int | None


def parse_moduledata(raw: bytes, address: int, gofunc_offset: int | None) -> ModuleData:
    """Decode the fields gohook uses from moduledata bytes at `address`."""
    try:
        minpc, maxpc, text, etext = struct.unpack_from("<4Q", raw, OFF_MINPC)
        gofunc = struct.unpack_from("<Q", raw, gofunc_offset)[0] if gofunc_offset is not None else None
    except struct.error as exc:
        raise PclntabError(f"moduledata at {address:#x} is truncated", address) from exc
    return ModuleData(address, minpc, maxpc, text, etext, gofunc)


def plausible(raw: bytes, pclntab_addr: int, funcname_off: int | None) -> bool:
    """Does moduledata-shaped `raw` point at this pclntab consistently?"""
    if len(raw) < OFF_ETEXT + 8:
        return False
    pchdr, fnt = struct.unpack_from("<QQ", raw, 0)
    minpc, maxpc, text, _etext = struct.unpack_from("<4Q", raw, OFF_MINPC)
    if pchdr != pclntab_addr or not (0 < minpc < maxpc):
        return False
    if funcname_off is not None and fnt != pclntab_addr + funcname_off:
        return False
    return text <= minpc


def scan_for_moduledata(data: bytes, base: int, pclntab_addr: int, funcname_off: int | None) -> list[int]:
    """Addresses in data (mapped at base) where a plausible moduledata starts."""
    needle = struct.pack("<Q", pclntab_addr)
    hits = []
    pos = data.find(needle)
    while pos >= 0:
        if pos % 8 == 0 and plausible(data[pos : pos + MODULEDATA_SIZE], pclntab_addr, funcname_off):
            hits.append(base + pos)
        pos = data.find(needle, pos + 1)
    return hits
