"""Which hook points can match their argument against argument patterns (gohook.plan.argscope), read from
the real catalog: the class by the capabilities the hook charges, the directory fd a path is relative to,
and the second path of a rename, link or symlink."""

from __future__ import annotations

import pytest

from gohook.bpf.abi import GO_ARG_REGS, ArgClass
from gohook.plan.argscope import hook_scope, parameter_registers, plan_scopes
from gohook.plan.build import arg_read
from gohook.policy.format import CapabilityNames, parse_policy
from gohook.sites.catalog import load_catalog

CATALOG = load_catalog()
SPECS = {e.base.function: e.base for e in CATALOG.entries}


def _reg(name: str) -> int:
    return GO_ARG_REGS.index(name)


def _scope(function: str):  # type: ignore[no-untyped-def]
    spec = SPECS[function]
    arg = arg_read(spec.argument)
    return hook_scope(spec, arg.kind, arg.regs, CATALOG)


@pytest.mark.parametrize(("function", "cls", "dirfd"), [
    ("syscall.openat", ArgClass.PATH, "rax"),  # openat(dirfd int, path string, ...): flags rule read/write
    ("internal/syscall/unix.Openat", ArgClass.PATH, "rax"),
    ("syscall.unlinkat", ArgClass.PATH, "rax"),
    ("syscall.fstatat", ArgClass.PATH, "rax"),
    ("syscall.Truncate", ArgClass.PATH, None),  # Truncate(path string, length int64): no directory fd
    ("syscall.forkExec", ArgClass.PATH, None),  # exec: argv0, the program's path
    ("syscall.Getenv", ArgClass.ENV, None),
    ("syscall.Setenv", ArgClass.ENV, None),
    ("syscall.connect", ArgClass.ADDRESS, None),
    ("syscall.sendto", ArgClass.ADDRESS, None),  # destination rule: network.connect
    ("net.(*sysListener).listenTCP", ArgClass.ADDRESS, None),
    ("net.(*sysListener).listenUnix", ArgClass.ADDRESS, None),
])
def test_matchable_hooks(function: str, cls: ArgClass, dirfd: str | None) -> None:
    scope = _scope(function)
    assert scope is not None and scope.arg_class == cls
    assert scope.dirfd_reg == (_reg(dirfd) if dirfd else -1)
    assert scope.second is None


@pytest.mark.parametrize("function", [
    "syscall.Fchmod",  # an fd: the file is not named
    "syscall.Ftruncate",
    "syscall.Environ",  # the whole environment
    "syscall.Clearenv",
    "syscall.Mprotect",  # memory.exec takes no patterns
    "syscall.Chdir",  # system.modify
])
def test_unmatchable_hooks_have_no_scope(function: str) -> None:
    """Only a grant for any argument covers these: a scoped grant cannot (fail closed)."""
    assert _scope(function) is None


@pytest.mark.parametrize(("function", "second", "second_dirfd", "caps"), [
    ("syscall.Renameat", ("rsi", "r8"), "rdi", ("files.write",)),
    ("syscall.linkat", ("rbx", "rcx"), "rax", ("files.write",)),  # reported: newpath; second: the existing file
    ("syscall.symlinkat", ("rax", "rbx"), None, ("files.write", "files.read")),  # the target, read through it
])
def test_second_paths(function: str, second: tuple[str, str], second_dirfd: str | None,
                      caps: tuple[str, ...]) -> None:
    scope = _scope(function)
    assert scope is not None and scope.arg_class == ArgClass.PATH
    assert scope.second == (_reg(second[0]), _reg(second[1]))
    assert scope.second_dirfd_reg == (_reg(second_dirfd) if second_dirfd else -1)
    assert scope.second_caps == tuple(CATALOG.capability(c).bit for c in caps)


def test_parameter_registers_follow_the_register_abi() -> None:
    regs = parameter_registers(SPECS["syscall.Renameat"])
    assert regs == {"olddirfd": 0, "oldpath": 1, "newdirfd": 3, "newpath": 4}


def test_plan_scopes() -> None:
    vocab = CapabilityNames(c.name for c in CATALOG.capabilities)
    policy = parse_policy('version: 1\nmodules:\n  a: [files]\n  b:\n    env.read: ["OTEL_*", "HOME"]\n'
                          '    system.read: any\n  c/*:\n    network.connect: ["127.0.0.1:4317"]\n', vocab)
    masks, patterns = plan_scopes(policy, ["a", "b", "c/x", "d"], CATALOG)
    bit = {c.name: c.bit for c in CATALOG.capabilities}
    assert masks == {2: 1 << bit["env.read"], 3: 1 << bit["network.connect"]}
    assert [(p.module, p.capability, p.pattern.text) for p in patterns] == [
        (2, bit["env.read"], "OTEL_*"), (2, bit["env.read"], "HOME"), (3, bit["network.connect"], "127.0.0.1:4317")]
