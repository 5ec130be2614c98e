"""The optional C machine-code scanner (gohook/gosym/_scan.c) and the view of the text it scans.

Shared by the two stages that read a binary's machine code: hook-site search
(gohook.sites.hooks: the byte prefilter of direct call sites) and the call
graph (gohook.static.callgraph: every function's calls, jumps, system calls
and address loads; the analysis' frame-pointer checks). It lives with the
binary readers because both stages read the same bytes the same way. The
accelerator is optional: scanner() is None when it is not built or does not
load, and each caller then runs its Python reference.
"""

from __future__ import annotations

from typing import Any

from gohook.gosym.binary import GoBinary

try:  # built by setup.py when a compiler and capstone's headers are present
    from gohook.gosym import _scan
except ImportError:  # pragma: no cover - not built, or libcapstone not loadable: the Python scanners
    _scan = None


def scanner() -> Any:
    """The C scanner module (gohook.gosym._scan), or None when it is not built or did not load."""
    return _scan


def text_view(binary: GoBinary) -> tuple[int, memoryview]:
    """(vaddr of its first byte, a memoryview without copy) of the loaded segment holding the binary's text;
    (0, empty view) when no segment holds it."""
    image = binary.image
    start = binary.text_start
    for seg in image.segments:
        if seg.vaddr <= start < seg.vaddr + seg.filesz:
            return seg.vaddr, memoryview(image.data)[seg.offset : seg.offset + seg.filesz]
    return 0, memoryview(b"")
