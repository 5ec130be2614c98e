"""Argument-scoped grants in the plan: which hook points can match their argument, and the patterns.

Pipeline stage 2 (plan). A policy may grant a capability for some arguments only
(`network.connect: ["127.0.0.1:4317"]`); the kernel then decides from the argument the hook point
captured (gohook/bpf/c/lib/argmatch.h). This module decides, from the capability catalog alone:

- for each hook point, what its argument is matched as (ArgScope): a path (files.*, exec), an
  environment name (env.*) or an address (network.*), by the capability class of every capability the
  hook can charge; the register of the directory fd a path is relative to (only AT_FDCWD matches);
  and a second path the call acts on (rename, link, symlink), which must be granted too. A hook whose
  argument is not of its class's shape (an fd, no argument, the whole environment) gets no scope:
  only an any-argument grant covers it (fail closed);
- for each module, the capability bits held for some arguments only, and the patterns.

The catalog states where the reported arguments are; the signature, read by the catalog's own ABI
model (gohook.sites.catalog.goabi), gives the rest (a `dirfd int` parameter right before a path string).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gohook.bpf.abi import GO_ARG_REGS, ArgClass, ArgKind
from gohook.plan.model import ArgPattern, ArgScope
from gohook.policy.format import Policy
from gohook.policy.patterns import SCOPABLE
from gohook.sites.catalog.goabi import parse_signature
from gohook.sites.catalog.model import ArgKind as CatArgKind
from gohook.sites.catalog.model import Catalog, HookSpec

#: argument kinds (as the BPF program reads them) each class can match
CLASS_KINDS: dict[ArgClass, frozenset[ArgKind]] = {
    ArgClass.PATH: frozenset({ArgKind.STRING, ArgKind.CSTRING}),
    ArgClass.ENV: frozenset({ArgKind.STRING}),
    ArgClass.ADDRESS: frozenset({ArgKind.SOCKADDR, ArgKind.IPPORT, ArgKind.STRFIELD0}),
}

def capability_class(name: str) -> ArgClass:
    """The class of a capability's arguments; ArgClass.NONE when it takes no patterns."""
    cls = SCOPABLE.get(name)
    return ArgClass[cls.name] if cls is not None else ArgClass.NONE


def parameter_registers(spec: HookSpec) -> dict[str, int]:
    """Parameter name -> index (GO_ARG_REGS) of its first register, for the parameters in registers
    (the catalog's own reading of the signature, gohook.sites.catalog.goabi); {} for an ABI0 function."""
    if spec.abi != "internal":
        return {}
    _name, params = parse_signature(spec.signature, spec.abi)
    out: dict[str, int] = {}
    for p in params:
        first = p.words[0] if p.words else None
        if first is not None and first.register is not None:
            out[p.name] = GO_ARG_REGS.index(first.register.value)
    return out


def _dirfd_before(regs: dict[str, int], first_reg: int) -> int:
    """The register of a directory fd parameter (`dirfd`, `olddirfd`, `fd` of fstatat) right before first_reg;
    -1: none."""
    for name, reg in regs.items():
        if (name.endswith("dirfd") or name == "fd") and reg == first_reg - 1:
            return reg
    return -1


def hook_scope(spec: HookSpec, kind: ArgKind, arg_regs: Sequence[int], catalog: Catalog) -> ArgScope | None:
    """How an argument-scoped grant is matched at a hook point of spec (None: it is not).

    kind and arg_regs: the reported argument as the plan reads it (HookPoint.arg).
    """
    if spec.rule is not None:
        outcomes = getattr(spec.rule, "outcomes", None)
        caps = sorted(outcomes) if outcomes is not None else []
    else:
        caps = [spec.capability] if spec.capability is not None else []
    classes = {capability_class(c) for c in caps}
    if len(classes) != 1:
        return None
    (cls,) = classes
    if cls == ArgClass.NONE or kind not in CLASS_KINDS[cls] or not arg_regs:
        return None
    if cls != ArgClass.PATH:
        return ArgScope(cls)
    regs = parameter_registers(spec)
    dirfd = _dirfd_before(regs, arg_regs[0])
    second = spec.arguments[1] if len(spec.arguments) > 1 else None
    if second is None or second.kind is not CatArgKind.STRING or not second.name.endswith("path"):
        return ArgScope(cls, dirfd_reg=dirfd)
    second_regs = [GO_ARG_REGS.index(str(loc)) for loc in second.at if str(loc) in GO_ARG_REGS]
    if len(second_regs) != 2:
        return None  # a second path the kernel cannot read: only an any-argument grant covers the call
    # a link or a rename acts on both paths as a write; a symbolic link's target is read through it too
    needs = ["files.write"] + (["files.read"] if "ymlink" in spec.function else [])
    return ArgScope(cls, dirfd_reg=dirfd, second=(second_regs[0], second_regs[1]),
                    second_dirfd_reg=_dirfd_before(regs, second_regs[0]),
                    second_caps=tuple(catalog.capability(n).bit for n in needs))


def plan_scopes(policy: Policy, modules: Sequence[str], catalog: Catalog,
                granted: Callable[[str], bool] = lambda _m: True) -> tuple[dict[int, int], tuple[ArgPattern, ...]]:
    """Module id (1-based, in `modules` order) -> capability bits held for some arguments only, and every
    pattern of those grants. granted(module) False skips a module (the std:init pseudo-module, which holds
    everything)."""
    masks: dict[int, int] = {}
    patterns: list[ArgPattern] = []
    for i, module in enumerate(modules, 1):
        if not granted(module):
            continue
        for capability, pats in sorted(policy.scopes_of(module).items()):
            bit = catalog.capability(capability).bit
            masks[i] = masks.get(i, 0) | 1 << bit
            patterns.extend(ArgPattern(i, bit, p) for p in pats)
    return masks, tuple(patterns)
