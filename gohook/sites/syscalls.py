"""Capability system calls: what the sentinel and the `syscall`-instruction sites decide on.

The hook catalog (gohook/sites/catalog.yaml) names Go functions; code that
reaches the kernel without them (a module's own assembly, C code behind cgo,
a path the catalog misses) is judged at the system call instead. This table
says which x86-64 system calls need which capability, with the same
semantics as the catalog's hooks for them: an open needs files.write when
its flags ask for writing (O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND, the mask
of the syscall.openat hook), else files.read; every call that changes a path
needs files.write; connect needs network.connect; bind and listen need
network.listen; execve and execveat need exec.

System calls that only use what the process already holds (read, write,
close, mmap, ...) are not listed: gohook governs acquiring capabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

OPEN_WRITE_MASK = 0x643  # O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND (as the catalog's syscall.openat rule)


@dataclass(frozen=True, slots=True)
class SyscallSpec:
    nr: int
    name: str
    capability: str  # when there is no flags rule, or the flags say read
    write_capability: str = ""  # when args[flags_arg] & OPEN_WRITE_MASK
    flags_arg: int = -1
    path_arg: int = -1  # argument index of a NUL-terminated path to report
    sockaddr_arg: int = -1  # argument index of a struct sockaddr (its length follows)


SYSCALLS: tuple[SyscallSpec, ...] = (
    SyscallSpec(2, "open", "files.read", "files.write", flags_arg=1, path_arg=0),
    SyscallSpec(257, "openat", "files.read", "files.write", flags_arg=2, path_arg=1),
    SyscallSpec(437, "openat2", "files.write", path_arg=1),  # flags sit in a struct: assume the worst
    SyscallSpec(85, "creat", "files.write", path_arg=0),
    SyscallSpec(87, "unlink", "files.write", path_arg=0),
    SyscallSpec(263, "unlinkat", "files.write", path_arg=1),
    SyscallSpec(84, "rmdir", "files.write", path_arg=0),
    SyscallSpec(83, "mkdir", "files.write", path_arg=0),
    SyscallSpec(258, "mkdirat", "files.write", path_arg=1),
    SyscallSpec(82, "rename", "files.write", path_arg=0),
    SyscallSpec(264, "renameat", "files.write", path_arg=1),
    SyscallSpec(316, "renameat2", "files.write", path_arg=1),
    SyscallSpec(86, "link", "files.write", path_arg=0),
    SyscallSpec(265, "linkat", "files.write", path_arg=1),
    SyscallSpec(88, "symlink", "files.write", path_arg=1),
    SyscallSpec(266, "symlinkat", "files.write", path_arg=2),
    SyscallSpec(76, "truncate", "files.write", path_arg=0),
    SyscallSpec(133, "mknod", "files.write", path_arg=0),
    SyscallSpec(259, "mknodat", "files.write", path_arg=1),
    SyscallSpec(42, "connect", "network.connect", sockaddr_arg=1),
    SyscallSpec(49, "bind", "network.listen", sockaddr_arg=1),
    SyscallSpec(50, "listen", "network.listen"),
    SyscallSpec(59, "execve", "exec", path_arg=0),
    SyscallSpec(322, "execveat", "exec", path_arg=1),
)

BY_NUMBER = {s.nr: s for s in SYSCALLS}
MAX_NR = 512  # size of the kernel's rule table (GOHOOK_NSYSCALLS)


def syscall_name(nr: int) -> str:
    """`openat` for 257; `syscall 999` for numbers the table does not know."""
    spec = BY_NUMBER.get(nr)
    return spec.name if spec is not None else f"syscall {nr}"
