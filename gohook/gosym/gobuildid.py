"""The Go build ID of an executable: what `go tool buildid FILE` prints.

Why: `gohook agent` recognizes a program by it (a container's copy of a binary is another file with the
same build ID). The linker writes it into an ELF note that strip keeps (the section is allocated), and,
for the other object formats and as a fallback, as a quoted string near the start of the text.

Byte layout (cmd/internal/buildid, cmd/link/internal/ld/elf.go):

    section .note.go.buildid, one ELF note (4-byte aligned fields, the file's byte order):
      0  u32 namesz (4)     4  u32 descsz     8  u32 type (4, ELF_NOTE_GOBUILDID_TAG)
     12  name "Go\\0\\0"     16  desc: the build ID, descsz bytes (ASCII, no NUL)
    text fallback: b'\\xff Go build ID: "' + ID + b'"\\n \\xff'

Pure over bytes: `parse_note(data, little_endian)`; `go_build_id(image)` reads an ElfImage.
Malformed input raises BuildIdError, never struct.error or IndexError.
"""

from __future__ import annotations

import struct

from gohook.errors import GohookError
from gohook.gosym.elfimage import ElfImage

NOTE_SECTION = ".note.go.buildid"
NOTE_NAME = b"Go\x00\x00"
NOTE_TYPE = 4  # ELF_NOTE_GOBUILDID_TAG
TEXT_PREFIX = b'\xff Go build ID: "'
TEXT_SUFFIX = b'"\n \xff'
MAX_ID = 1024  # Go's IDs are ~83 characters; anything near this is not one


class BuildIdError(GohookError):
    """The file carries no readable Go build ID."""


def parse_note(data: bytes, little_endian: bool = True) -> str:
    """The build ID in the bytes of a .note.go.buildid section."""
    order = "<" if little_endian else ">"
    if len(data) < 16:
        raise BuildIdError(f"{NOTE_SECTION}: {len(data)} bytes, shorter than a note header")
    namesz, descsz, typ = struct.unpack_from(order + "III", data, 0)
    name_end = 12 + ((namesz + 3) & ~3)
    if namesz != 4 or data[12:16] != NOTE_NAME or typ != NOTE_TYPE:
        raise BuildIdError(f"{NOTE_SECTION}: not a Go build ID note (name {data[12:12 + min(namesz, 8)]!r}, "
                           f"type {typ})")
    if descsz == 0 or descsz > MAX_ID or name_end + descsz > len(data):
        raise BuildIdError(f"{NOTE_SECTION}: bad build ID length {descsz}")
    return _text(data[name_end:name_end + descsz])


def parse_text(data: bytes) -> str:
    """The build ID from the quoted form at the start of a Go program's text."""
    start = data.find(TEXT_PREFIX)
    if start < 0:
        raise BuildIdError("no Go build ID in the text")
    start += len(TEXT_PREFIX)
    end = data.find(TEXT_SUFFIX, start, start + MAX_ID)
    if end < 0:
        raise BuildIdError("unterminated Go build ID in the text")
    return _text(data[start:end])


def _text(raw: bytes) -> str:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise BuildIdError("the Go build ID is not ASCII") from None
    if not text.isprintable():
        raise BuildIdError("the Go build ID holds unprintable characters")
    return text


def go_build_id(image: ElfImage) -> str:
    """The Go build ID of an ELF image: the note, else the text's quoted form (the first 64 KiB of .text)."""
    sec = image.section(NOTE_SECTION)
    if sec is not None:
        return parse_note(image.section_bytes(sec), image.little_endian)
    text = image.section(".text")
    if text is None:
        raise BuildIdError(f"{image.path or 'the file'}: no {NOTE_SECTION} note and no .text section")
    return parse_text(image.section_bytes(text)[:1 << 16])
