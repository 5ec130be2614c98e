"""Where gohook's BPF C files are: gohook/bpf/c, package data of gohook.bpf.

bcc compiles from real files (`-I` include paths, `#include "gohook.h"`), so
the C must sit in a real directory on disk. It does in a source checkout, an
editable install and an installed wheel (setuptools installs package data
unzipped next to the modules). This one function finds it, for the
enforcement program (gohook.bpf.render's BPF_DIR) and the doctor's program
(gohook.bpf.selftest) alike.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["c_dir", "c_source"]


def c_dir() -> Path:
    """The directory holding gohook.bpf.c, gohook.h and doctor.bpf.c."""
    return Path(__file__).resolve().parent / "c"


def c_source(name: str) -> str:
    """The text of one C file of c_dir() (e.g. "doctor.bpf.c")."""
    return (c_dir() / name).read_text(encoding="utf-8")
