"""BPF links for gohook's probes, and pinning them in bpffs, by hand over libc's `syscall`.

What: every probe gohook attaches (uprobes, tracepoints, the raw tracepoint)
becomes a BPF link: a kernel object of its own, with a file descriptor,
that holds the program on its hook. Closing the last reference detaches it,
as closing a perf event fd did before. A link can also be pinned: a file in
a BPF file system (bpffs, usually /sys/fs/bpf) that is one more reference.

Why: a pinned link outlives the process that made it. The probes, their
programs and the maps those programs use stay in the kernel after gohook
exits or dies, so a future `gohook agent` can restart while enforcement goes
on (issue 16); removing the pins (`unpin_dir`) is what ends it.

Why by hand: bcc (Debian's python3-bpfcc) attaches uprobes and tracepoints as
bare perf events (`bpf_attach_uprobe`, `bpf_attach_tracepoint`: an ioctl
PERF_EVENT_IOC_SET_BPF, no link, nothing to pin) and has no API for
BPF_LINK_CREATE; libbpf's Python bindings are not packaged. The four
commands below are small, stable kernel ABI: packing them with `struct` costs
no new dependency.

How a uprobe link is made:

1. perf_event_open(2) on the uprobe PMU (its type number is in
   /sys/bus/event_source/devices/uprobe/type): config1 points to the path,
   config2 is the file offset. pid -1 means every process mapping the file;
   the kernel wants a cpu then, and 0 is what libbcc passes (the BPF program
   runs on every CPU anyway: it hangs off the probe, not off the perf event).
2. bpf(BPF_LINK_CREATE) with the program fd, the perf event fd as target and
   attach type BPF_PERF_EVENT. The link takes its own reference to the perf
   event's file, so the perf fd is closed right after: one fd per probe is
   left in this process, the link's, and closing it (or removing its last
   pin) frees the perf event, which unregisters the uprobe.

Tracepoints go the same way (PERF_TYPE_TRACEPOINT, config = the event's id
from tracefs); a raw tracepoint is one command, BPF_RAW_TRACEPOINT_OPEN,
whose fd already is a link.

Byte layouts packed here (little-endian; unlisted bytes are zero, which the
kernel requires of fields it knows and the command does not use):

| structure                          | offset | size | field        | value                                  |
|------------------------------------|--------|------|--------------|----------------------------------------|
| perf_event_attr (128 bytes, VER7)  | 0      | 4    | type         | uprobe PMU type, or 2 (TRACEPOINT)     |
|                                    | 4      | 4    | size         | 128                                    |
|                                    | 8      | 8    | config       | 0 (uprobe, not uretprobe); tracepoint id |
|                                    | 16     | 8    | sample_period| 1                                      |
|                                    | 48     | 4    | wakeup_events| 1                                      |
|                                    | 56     | 8    | config1      | uprobe: address of the NUL-ended path  |
|                                    | 64     | 8    | config2      | uprobe: file offset                    |
| bpf_attr, BPF_LINK_CREATE (28)     | 0      | 4    | prog_fd      | the program                            |
|                                    | 4      | 4    | target_fd    | the perf event fd                      |
|                                    | 8      | 4    | attach_type  | 41 (BPF_PERF_EVENT)                    |
|                                    | 12     | 4    | flags        | 0                                      |
| bpf_attr, BPF_RAW_TRACEPOINT_OPEN (17) | 0  | 8    | name         | address of the NUL-ended name          |
|                                    | 8      | 4    | prog_fd      | the program                            |
| bpf_attr, BPF_OBJ_PIN (6) / BPF_OBJ_GET (7) | 0 | 8 | pathname     | address of the NUL-ended bpffs path    |
|                                    | 8      | 4    | bpf_fd       | PIN: the fd to pin; GET: 0             |
|                                    | 12     | 4    | file_flags   | 0 (read-write)                         |

Every bpf_attr is passed as a 64-byte zeroed buffer (the size argument says
so; the kernel checks that bytes past the command's fields are zero).
Failures raise gohook.bpf.errors.LinkError (an AttachError) with one line
naming what failed and strerror(errno).
"""

from __future__ import annotations

import ctypes as ct
import errno as errno_mod
import functools
import os
import platform
import re
import struct
from pathlib import Path
from types import MappingProxyType

from gohook.bpf.errors import LinkError

__all__ = ["BPF_FS_MAGIC", "DEFAULT_BPFFS", "ensure_bpffs", "is_bpffs", "make_pin_dir", "open_pinned", "pin",
           "raw_tracepoint_link", "tracepoint_link", "unpin_dir", "uprobe_link"]

DEFAULT_BPFFS = "/sys/fs/bpf"
BPF_FS_MAGIC = 0xCAFE4A11  # statfs f_type of a bpffs

# system call numbers: (bpf, perf_event_open) by machine
_SYSCALLS = MappingProxyType({"x86_64": (321, 298), "aarch64": (280, 241)})

_BPF_OBJ_PIN = 6
_BPF_OBJ_GET = 7
_BPF_RAW_TRACEPOINT_OPEN = 17
_BPF_LINK_CREATE = 28
_BPF_PERF_EVENT = 41  # enum bpf_attach_type
_BPF_ATTR_SIZE = 64

_PERF_TYPE_TRACEPOINT = 2
_PERF_ATTR_SIZE = 128  # PERF_ATTR_SIZE_VER7
_PERF_FLAG_FD_CLOEXEC = 8
_PERF_EVENT_IOC_ENABLE = 0x2400  # _IO('$', 0)

_UPROBE_PMU_TYPE = "/sys/bus/event_source/devices/uprobe/type"
_TRACEFS_ROOTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
_EVENT_NAME = re.compile(r"[A-Za-z0-9_]+")
_STATFS_SIZE = 256  # struct statfs is 120 bytes on 64-bit Linux; f_type (a long) comes first


@functools.cache
def _libc() -> ct.CDLL:
    libc = ct.CDLL(None, use_errno=True)
    libc.syscall.restype = ct.c_long
    return libc


def _numbers() -> tuple[int, int]:
    machine = platform.machine()
    if machine not in _SYSCALLS:
        raise LinkError(f"BPF links are not supported on {machine} (gohook knows x86_64 and aarch64)")
    return _SYSCALLS[machine]


def _syscall(nr: int, *args: int) -> tuple[int, int]:
    """(result, errno) of syscall(nr, args...); errno is 0 on success."""
    ct.set_errno(0)
    result = int(_libc().syscall(ct.c_long(nr), *(ct.c_long(a) for a in args)))
    return result, (ct.get_errno() if result < 0 else 0)


def _bpf(cmd: int, attr: ct.Array[ct.c_char]) -> tuple[int, int]:
    return _syscall(_numbers()[0], cmd, ct.addressof(attr), ct.sizeof(attr))


def _why(err: int) -> str:
    return os.strerror(err) if err else "unknown error"


def _cstring(value: bytes | str, what: str) -> ct.Array[ct.c_char]:
    """A NUL-ended C copy of value (a path or a name), kept alive by the caller for the system call."""
    if not isinstance(value, (bytes, str)):
        raise LinkError(f"{what} must be a path or name (str or bytes), not {type(value).__name__}")
    raw = os.fsencode(value)
    if not raw or b"\0" in raw:
        raise LinkError(f"{what} {value!r} is empty or holds a NUL byte")
    return ct.create_string_buffer(raw)


def _fd_arg(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LinkError(f"{what} must be an open file descriptor (an int >= 0), not {value!r}")
    return value


def _perf_link(prog_fd: int, attr: ct.Array[ct.c_char], pid: int, what: str) -> int:
    """perf_event_open(attr, pid, cpu) then BPF_LINK_CREATE on it; the link fd (the perf fd is closed)."""
    cpu = 0 if pid == -1 else -1
    pfd, err = _syscall(_numbers()[1], ct.addressof(attr), pid, cpu, -1, _PERF_FLAG_FD_CLOEXEC)
    if pfd < 0:
        raise LinkError(f"cannot open the perf event of {what}: {_why(err)}")
    try:
        link_attr = ct.create_string_buffer(_BPF_ATTR_SIZE)
        struct.pack_into("<IIII", link_attr, 0, prog_fd, pfd, _BPF_PERF_EVENT, 0)
        link, err = _bpf(_BPF_LINK_CREATE, link_attr)
        if link < 0:
            hint = " (is it a loaded BPF program of the right type?)" if err in (errno_mod.EBADF,
                                                                                errno_mod.EINVAL) else ""
            raise LinkError(f"cannot link program fd {prog_fd} to {what}: {_why(err)}{hint}")
        # the event is created enabled; libbpf enables it once more after linking, and so do we (harmless)
        ct.set_errno(0)
        if _libc().ioctl(ct.c_int(pfd), ct.c_ulong(_PERF_EVENT_IOC_ENABLE), ct.c_ulong(0)) < 0:
            err = ct.get_errno()
            os.close(link)
            raise LinkError(f"cannot enable the perf event of {what}: {_why(err)}")
        return int(link)
    finally:
        os.close(pfd)  # the link holds its own reference to the perf event's file


def _uprobe_pmu_type() -> int:
    try:
        return int(Path(_UPROBE_PMU_TYPE).read_text().strip())
    except (OSError, ValueError) as exc:
        raise LinkError(f"this kernel has no uprobe PMU ({_UPROBE_PMU_TYPE}: "
                        f"{getattr(exc, 'strerror', None) or exc})") from None


def uprobe_link(prog_fd: int, path: bytes | str, offset: int, pid: int = -1) -> int:
    """Attach the (kprobe-type) program prog_fd as a uprobe at file offset `offset` of path; the link fd.

    pid -1: every process that maps the file, now or later; else only process pid (all its threads).
    The caller owns the fd: closing it (with no pin left) detaches the probe.
    """
    prog_fd = _fd_arg(prog_fd, "the program fd")
    c_path = _cstring(path, "the uprobe's file")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < 1 << 64:
        raise LinkError(f"the uprobe's file offset must be an int >= 0, not {offset!r}")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid < -1:
        raise LinkError(f"the uprobe's pid must be a process id or -1 (every process), not {pid!r}")
    attr = ct.create_string_buffer(_PERF_ATTR_SIZE)
    struct.pack_into("<IIQQ", attr, 0, _uprobe_pmu_type(), _PERF_ATTR_SIZE, 0, 1)
    struct.pack_into("<I", attr, 48, 1)
    struct.pack_into("<QQ", attr, 56, ct.addressof(c_path), offset)
    who = "every process" if pid == -1 else f"process {pid}"
    name = os.fsdecode(c_path.value)
    try:
        size = os.stat(c_path.value).st_size
    except OSError:
        size = None  # perf_event_open says why
    if size is not None and offset >= size:
        raise LinkError(f"cannot attach the uprobe at file offset {offset:#x} of {name} for {who}: "
                        f"past the end of the file ({size} bytes)")
    return _perf_link(prog_fd, attr, pid, f"the uprobe at file offset {offset:#x} of {name} for {who}")


def _tracepoint_id(category: str, event: str) -> int:
    for name, value in (("category", category), ("event", event)):
        if not isinstance(value, str) or not _EVENT_NAME.fullmatch(value):
            raise LinkError(f"bad tracepoint {name} {value!r} (letters, digits and _ only)")
    tried = []
    for root in _TRACEFS_ROOTS:
        id_path = Path(root, "events", category, event, "id")
        try:
            return int(id_path.read_text().strip())
        except FileNotFoundError:
            tried.append(str(id_path))
        except (OSError, ValueError) as exc:
            raise LinkError(f"cannot read tracepoint {category}:{event}'s id from {id_path}: "
                            f"{getattr(exc, 'strerror', None) or exc}") from None
    raise LinkError(f"no tracepoint {category}:{event} on this kernel (or tracefs is not mounted): "
                    f"none of {', '.join(tried)}")


def tracepoint_link(prog_fd: int, category: str, event: str) -> int:
    """Attach the (tracepoint-type) program prog_fd to tracepoint category:event; the link fd."""
    prog_fd = _fd_arg(prog_fd, "the program fd")
    attr = ct.create_string_buffer(_PERF_ATTR_SIZE)
    struct.pack_into("<IIQQ", attr, 0, _PERF_TYPE_TRACEPOINT, _PERF_ATTR_SIZE, _tracepoint_id(category, event), 1)
    struct.pack_into("<I", attr, 48, 1)
    return _perf_link(prog_fd, attr, -1, f"tracepoint {category}:{event}")


def raw_tracepoint_link(prog_fd: int, name: str) -> int:
    """Attach the (raw-tracepoint-type) program prog_fd to raw tracepoint name (e.g. sys_enter); the link fd."""
    prog_fd = _fd_arg(prog_fd, "the program fd")
    c_name = _cstring(name, "the raw tracepoint")
    attr = ct.create_string_buffer(_BPF_ATTR_SIZE)
    struct.pack_into("<QI", attr, 0, ct.addressof(c_name), prog_fd)
    fd, err = _bpf(_BPF_RAW_TRACEPOINT_OPEN, attr)
    if fd < 0:
        raise LinkError(f"cannot attach program fd {prog_fd} to raw tracepoint {c_name.value.decode()}: {_why(err)}")
    return int(fd)


# -- bpffs ----------------------------------------------------------------------------------------------------


def _fs_magic(path: str) -> int | None:
    """statfs(path).f_type; None when path does not exist."""
    buf = ct.create_string_buffer(_STATFS_SIZE)
    ct.set_errno(0)
    if _libc().statfs(os.fsencode(path), buf) < 0:
        err = ct.get_errno()
        if err in (errno_mod.ENOENT, errno_mod.ENOTDIR):
            return None
        raise LinkError(f"cannot statfs {path}: {_why(err)}")
    return int(struct.unpack_from("<Q", buf, 0)[0]) & 0xFFFFFFFF


def is_bpffs(path: str) -> bool:
    """Whether path exists and lies on a BPF file system (statfs magic 0xcafe4a11)."""
    return _fs_magic(path) == BPF_FS_MAGIC


def ensure_bpffs(root: str = DEFAULT_BPFFS) -> None:
    """Mount a bpffs on root (made if missing) unless it already lies on one."""
    if is_bpffs(root):
        return
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as exc:
        raise LinkError(f"cannot make {root} to mount bpffs on: {exc.strerror or exc}") from None
    ct.set_errno(0)
    if _libc().mount(b"bpf", os.fsencode(root), b"bpf", ct.c_ulong(0), b"mode=0700") < 0:
        raise LinkError(f"cannot mount bpffs on {root}: {_why(ct.get_errno())}")
    if not is_bpffs(root):
        raise LinkError(f"mounted bpffs on {root}, yet it does not show as one")


def _nearest_existing(path: str) -> str:
    p = os.path.abspath(path)
    while not os.path.exists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    return p


def make_pin_dir(directory: str) -> None:
    """Make directory (and missing parents) inside an existing bpffs; LinkError when it is not inside one."""
    if not isinstance(directory, str) or not directory:
        raise LinkError(f"the pin directory must be a non-empty path, not {directory!r}")
    base = _nearest_existing(directory)
    if not is_bpffs(base):
        raise LinkError(f"cannot pin in {directory}: {base} is not on a BPF file system (bpffs); "
                        f"use a directory under {DEFAULT_BPFFS}")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise LinkError(f"cannot make pin directory {directory}: {exc.strerror or exc}") from None


def pin(fd: int, path: str) -> None:
    """Pin the BPF object fd (a link, program or map) at path, a new file in a bpffs."""
    fd = _fd_arg(fd, "the fd to pin")
    c_path = _cstring(path, "the pin path")
    parent = os.path.dirname(os.path.abspath(os.fsdecode(c_path.value)))
    if not is_bpffs(parent):
        raise LinkError(f"cannot pin fd {fd} at {path}: {parent} is not on a BPF file system (bpffs)")
    attr = ct.create_string_buffer(_BPF_ATTR_SIZE)
    struct.pack_into("<QI", attr, 0, ct.addressof(c_path), fd)
    result, err = _bpf(_BPF_OBJ_PIN, attr)
    if result < 0:
        raise LinkError(f"cannot pin fd {fd} at {path}: {_why(err)}")


def open_pinned(path: str) -> int:
    """A new fd of the BPF object pinned at path (the caller closes it)."""
    c_path = _cstring(path, "the pin path")
    attr = ct.create_string_buffer(_BPF_ATTR_SIZE)
    struct.pack_into("<Q", attr, 0, ct.addressof(c_path))
    fd, err = _bpf(_BPF_OBJ_GET, attr)
    if fd < 0:
        raise LinkError(f"cannot open the BPF object pinned at {path}: {_why(err)}")
    return int(fd)


def unpin_dir(directory: str) -> int:
    """Remove every pin under directory (subdirectories too) and the directory; how many pins went.

    Refuses a directory that is not on a bpffs (this deletes files). A missing directory is 0. A link whose
    last pin goes (and that no process holds open) detaches.
    """
    if not isinstance(directory, str) or not directory:
        raise LinkError(f"the pin directory must be a non-empty path, not {directory!r}")
    if not os.path.lexists(directory):
        return 0
    if not os.path.isdir(directory) or not is_bpffs(directory):
        raise LinkError(f"will not unpin {directory}: not a directory on a BPF file system (bpffs)")
    count = 0
    try:
        for dirpath, dirnames, filenames in os.walk(directory, topdown=False):
            for name in filenames:
                os.unlink(os.path.join(dirpath, name))
                count += 1
            for name in dirnames:
                os.rmdir(os.path.join(dirpath, name))
        os.rmdir(directory)
    except OSError as exc:
        raise LinkError(f"cannot unpin {exc.filename or directory}: {exc.strerror or exc}") from None
    return count
