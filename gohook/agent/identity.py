"""What a program file is, to the agent: which version of which file, and which Go program it holds.

A process is recognized by its executable file (`/proc/PID/exe`, which reaches a file in another mount
namespace too): FileVersion (device, inode, ctime: a new file at a reused inode, or a file changed in place,
is another version), the Go build ID (gohook.gosym.gobuildid: the same program in a container's copy) and
the main module of its build info. A file that is not a Go program (no build ID) is identified too, so
the agent can let it run without looking again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gohook.errors import GohookError
from gohook.gosym.binary import image_build_info
from gohook.gosym.elfimage import ElfImage
from gohook.gosym.gobuildid import go_build_id


@dataclass(frozen=True)
class FileVersion:
    """One version of one file: st_dev, st_ino and st_ctime_ns as stat(2) gives them."""

    dev: int
    ino: int
    ctime_ns: int

    @classmethod
    def of_stat(cls, st: os.stat_result) -> FileVersion:
        return cls(st.st_dev, st.st_ino, st.st_ctime_ns)

    @classmethod
    def of_path(cls, path: str | Path) -> FileVersion:
        return cls.of_stat(os.stat(path))

    def same_file(self, other: FileVersion) -> bool:
        return (self.dev, self.ino) == (other.dev, other.ino)


@dataclass(frozen=True)
class Program:
    """A program file as the agent sees it. path: where the agent can open it (for a process: /proc/PID/exe,
    valid while that process lives); build_id/main_module: None when the file is not a Go program (or has
    no build info)."""

    version: FileVersion
    path: str
    build_id: str | None
    main_module: str | None

    @property
    def is_go(self) -> bool:
        return self.build_id is not None


def identify(path: str | Path) -> Program:
    """Stat and read the file at path. OSError when it is gone; any file that is not a Go ELF program is a
    Program with no build ID."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read()
    finally:
        os.close(fd)
    version = FileVersion.of_stat(st)
    try:
        image = ElfImage(data, str(path))
        build_id = go_build_id(image)
    except GohookError:
        return Program(version, str(path), None, None)
    try:
        info = image_build_info(image)
    except GohookError:
        info = None
    main = info.main.path if info is not None and info.main is not None else (info.path if info else None)
    return Program(version, str(path), build_id, main or None)
