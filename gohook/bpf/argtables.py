"""Plan -> the maps of argument-scoped grants (lib/argmatch.h). Pure (no bcc, no kernel).

Pipeline stage 3 (BPF). The plan's argument patterns (EnforcementPlan.arg_patterns) become:

- module_scoped[m]: the capability bits module m holds for some arguments only;
- hook_scopes[hook id]: struct gohook_hookscope, what the hook point's argument is matched as;
- arg_globs: an LPM trie of struct gohook_globkey -> struct gohook_globval. Key: (module, capability,
  class) and the literal prefix of a glob (prefixlen = 32 + 8 x its bytes); value: the prefix's length
  and up to GLOB_ALTS globs that start with it (exact, tree, segment + suffix, suffix);
- arg_addrs: an LPM trie of struct gohook_addrkey -> struct gohook_addrval. Key: (module, capability)
  and a network as IPv6 (IPv4 as ::ffff:a.b.c.d; prefixlen = 32 + the network's); value: its ports
  and the `*` port, each with the pattern that grants it.

The kernel looks up the argument's longest match, tests its globs (ports), and on failure looks up again
with the prefix one bit shorter than the entry it found, up to MATCH_TRIES entries: so no argument
may have more than MATCH_TRIES entries on its way down, which build_arg_tables checks (PlanTableError).
`match` below is the kernel's algorithm in Python, for tests: it must agree with the reference
semantics of gohook.policy.patterns on every argument.

Pattern ids: 1 + the index in EnforcementPlan.arg_patterns (events carry it; 0 is "none").
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from gohook.bpf.abi import (
    ADDR_PORTS,
    ADDRKEY,
    ADDRVAL,
    GLOB_ALTS,
    GLOB_DATA,
    GLOBKEY,
    GLOBVAL,
    HOOKSCOPE,
    MATCH_TRIES,
    NOCAP,
    NOREG,
    SUFFIX_MAX,
    ArgClass,
    GlobKind,
    HookKind,
)
from gohook.bpf.errors import PlanTableError
from gohook.plan.model import EnforcementPlan
from gohook.policy.patterns import AddressPattern, NamePattern, PathPattern, UnixPattern

#: (module, capability bit, class, literal prefix)
GlobEntry = tuple[int, int, ArgClass, bytes]
#: (module, capability bit, network)
AddrEntry = tuple[int, int, ipaddress.IPv6Network]


@dataclass(frozen=True)
class Alt:
    """One glob after a literal prefix."""

    kind: GlobKind
    pattern: int  # 1 + index in the plan's arg_patterns
    suffix: bytes = b""


@dataclass(frozen=True)
class Ports:
    """The ports of one network: port -> pattern id, and the `*` port's pattern id (0: none)."""

    ports: tuple[tuple[int, int], ...]
    any_port: int = 0


@dataclass(frozen=True)
class ArgTables:
    """Contents of the maps of argument-scoped grants."""

    module_scoped: tuple[int, ...]  # index = module id
    hook_scopes: dict[int, bytes]  # hook id -> struct gohook_hookscope
    globs: dict[GlobEntry, tuple[Alt, ...]]
    addrs: dict[AddrEntry, Ports]

    def glob_items(self) -> list[tuple[bytes, bytes]]:
        """arg_globs as (key, value) bytes."""
        out = []
        for (module, cap, cls, prefix), alts in sorted(self.globs.items(), key=lambda kv: repr(kv[0])):
            key = GLOBKEY.format.pack(32 + 8 * len(prefix), module, cap, int(cls), prefix)
            fields: list[object] = [len(prefix), prefix.rfind(b"/")]
            for i in range(GLOB_ALTS):
                a = alts[i] if i < len(alts) else None
                fields += [int(a.kind), a.pattern, len(a.suffix), a.suffix] if a else [0, 0, 0, b""]
            out.append((key, GLOBVAL.format.pack(*fields)))
        return out

    def addr_items(self) -> list[tuple[bytes, bytes]]:
        """arg_addrs as (key, value) bytes."""
        out = []
        for (module, cap, net), ports in sorted(self.addrs.items(), key=lambda kv: repr(kv[0])):
            prefixlen = 32 + net.prefixlen
            key = ADDRKEY.format.pack(prefixlen, module, cap, 0, net.network_address.packed)
            plist = list(ports.ports) + [(0, 0)] * (ADDR_PORTS - len(ports.ports))
            out.append((key, ADDRVAL.format.pack(prefixlen, ports.any_port, *(p for p, _ in plist),
                                                 *(i for _, i in plist))))
        return out


def _hook_scope_bytes(plan: EnforcementPlan) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for h in plan.hooks:
        s = h.scope
        if s is None or s.arg_class == ArgClass.NONE or h.kind not in (HookKind.CALL, HookKind.CGOCALL):
            continue
        if len(s.second_caps) > 2:
            raise PlanTableError(f"hook {h.hook_id} ({h.function}): a second path needs at most two capabilities")
        caps = [*s.second_caps, NOCAP, NOCAP][:2]
        ptr, length = s.second if s.second else (NOREG, NOREG)
        out[h.hook_id] = HOOKSCOPE.format.pack(
            int(s.arg_class), NOREG if s.dirfd_reg < 0 else s.dirfd_reg, ptr, length,
            NOREG if s.second_dirfd_reg < 0 else s.second_dirfd_reg, caps[0], caps[1], 0)
    return out


def _add_glob(globs: dict[GlobEntry, list[Alt]], entry: GlobEntry, alt: Alt, text: str) -> None:
    if len(entry[3]) > GLOB_DATA or len(alt.suffix) > SUFFIX_MAX:
        raise PlanTableError(f"argument pattern {text!r} is longer than the kernel matches ({GLOB_DATA} bytes "
                             f"of prefix, {SUFFIX_MAX} of suffix)")
    alts = globs.setdefault(entry, [])
    if any(a.kind == alt.kind and a.suffix == alt.suffix for a in alts):
        return  # the same glob twice: the first pattern names it
    if len(alts) == GLOB_ALTS:
        raise PlanTableError(f"argument pattern {text!r}: more than {GLOB_ALTS} patterns of one module and "
                             f"capability share the literal prefix {entry[3].decode(errors='replace')!r}")
    alts.append(alt)


def build_arg_tables(plan: EnforcementPlan) -> ArgTables | None:
    """The maps of plan's argument-scoped grants; None when it has none. Raises PlanTableError."""
    if not plan.scoped:
        return None
    nmodules = len(plan.modules)
    scoped = [0] * (nmodules + 1)
    for m, bits in plan.scoped.items():
        if not 1 <= m <= nmodules:
            raise PlanTableError(f"argument-scoped grants given for module id {m}; the plan has {nmodules} modules")
        scoped[m] = bits
    globs: dict[GlobEntry, list[Alt]] = {}
    addrs: dict[AddrEntry, dict[int, int]] = {}  # port (-1: any) -> pattern id
    for index, ap in enumerate(plan.arg_patterns, 1):
        p = ap.pattern
        if not scoped[ap.module] >> ap.capability & 1:
            raise PlanTableError(f"argument pattern {p.text!r} for a capability module {ap.module} does not hold "
                                 "scoped")
        if isinstance(p, PathPattern | NamePattern | UnixPattern):
            if isinstance(p, UnixPattern):
                cls = ArgClass.ABSTRACT if p.abstract else ArgClass.UNIX
            else:
                cls = ArgClass.PATH if isinstance(p, PathPattern) else ArgClass.ENV
            for g in p.globs:
                _add_glob(globs, (ap.module, ap.capability, cls, g.prefix), Alt(GlobKind(int(g.kind)), index,
                                                                                  g.suffix), p.text)
        elif isinstance(p, AddressPattern):
            ports = addrs.setdefault((ap.module, ap.capability, p.network), {})
            for port in sorted(p.ports) if p.ports is not None else [-1]:
                ports.setdefault(port, index)
            if len([q for q in ports if q >= 0]) > ADDR_PORTS:
                raise PlanTableError(f"argument pattern {p.text!r}: more than {ADDR_PORTS} ports for one network "
                                     "of one module and capability")
        else:
            raise PlanTableError(f"argument pattern of an unknown kind: {p!r}")
    tables = ArgTables(
        tuple(scoped), _hook_scope_bytes(plan), {k: tuple(v) for k, v in globs.items()},
        {k: Ports(tuple((q, i) for q, i in sorted(v.items()) if q >= 0), v.get(-1, 0)) for k, v in addrs.items()})
    _check_nesting(tables)
    return tables


def _check_nesting(tables: ArgTables) -> None:
    """No argument meets more than MATCH_TRIES entries on its way down (the kernel stops there)."""
    for (module, cap, cls, prefix) in tables.globs:
        chain = [p for (m, c, k, p) in tables.globs if (m, c, k) == (module, cap, cls) and prefix.startswith(p)]
        if len(chain) > MATCH_TRIES:
            raise PlanTableError(f"{len(chain)} argument patterns of one module and capability are prefixes of "
                                 f"{prefix.decode(errors='replace')!r}; the kernel tries at most {MATCH_TRIES}")
    for (module, cap, net) in tables.addrs:
        chain = [n for (m, c, n) in tables.addrs if (m, c) == (module, cap) and net.subnet_of(n)]
        if len(chain) > MATCH_TRIES:
            raise PlanTableError(f"{len(chain)} networks of one module and capability contain {net}; the kernel "
                                 f"tries at most {MATCH_TRIES}")


# --- the kernel's algorithm, for tests --------------------------------------------------------------------


def clean_path_last_slash(data: bytes) -> int:
    """gohook_clean_path: the index of the last '/' of a clean absolute path, else -1."""
    if not data or len(data) > GLOB_DATA or data[:1] != b"/" or b"\0" in data:
        return -1
    segments = data.split(b"/")[1:]
    for i, seg in enumerate(segments):
        if seg in (b".", b".."):
            return -1
        if seg == b"" and i < len(segments) - 1:
            return -1  # "//" (an empty last segment is a trailing '/')
    return data.rindex(b"/")


def _alt_matches(a: Alt, data: bytes, plen: int, last_slash: int) -> bool:
    if a.kind == GlobKind.EXACT:
        return len(data) == plen
    if a.kind == GlobKind.TREE:
        return True
    if a.kind == GlobKind.SEGMENT and last_slash >= plen:
        return False
    return len(data) >= plen + len(a.suffix) and data.endswith(a.suffix)


def match_glob(tables: ArgTables, module: int, cap: int, cls: ArgClass, data: bytes) -> int:
    """gohook_string_match: the pattern id that allows data, 0: none."""
    last = -1
    if cls in (ArgClass.PATH, ArgClass.UNIX):
        last = clean_path_last_slash(data)
        if last < 0:
            return 0
    elif len(data) > GLOB_DATA or b"\0" in data:
        return 0
    limit = len(data)
    for _ in range(MATCH_TRIES):
        found = [p for (m, c, k, p) in tables.globs if (m, c, k) == (module, cap, cls) and len(p) <= limit
                 and data.startswith(p)]
        if not found:
            return 0
        prefix = max(found, key=len)
        for a in tables.globs[(module, cap, cls, prefix)]:
            if _alt_matches(a, data, len(prefix), last):
                return a.pattern
        if not prefix:
            return 0
        limit = len(prefix) - 1
    return 0


def match_address(tables: ArgTables, module: int, cap: int, addr: ipaddress.IPv6Address, port: int) -> int:
    """gohook_addr_match: the pattern id that allows (addr, port), 0: none."""
    limit = 128
    for _ in range(MATCH_TRIES):
        found = [n for (m, c, n) in tables.addrs if (m, c) == (module, cap) and n.prefixlen <= limit and addr in n]
        if not found:
            return 0
        net = max(found, key=lambda n: n.prefixlen)
        ports = tables.addrs[(module, cap, net)]
        for q, pattern in ports.ports:
            if q == port:
                return pattern
        if ports.any_port:
            return ports.any_port
        if net.prefixlen == 0:
            return 0
        limit = net.prefixlen - 1
    return 0
