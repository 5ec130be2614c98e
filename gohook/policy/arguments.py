"""Argument patterns from observed or constant arguments: what learn mode and `policy generate` write.

Both writers of policies turn concrete arguments into the patterns of a
scoped rule (gohook.policy.patterns defines what a pattern means). The rules
here decide, for one capability of one module, either a sorted list of
pattern texts or `any`, and never a pattern that would refuse an argument it
was built from: every pattern is parsed with parse_pattern and checked to
match each argument it stands for, and anything that fails falls back to
`any` with the reason.

Exact patterns (`exact_pattern`), per argument class:

- PATH (files.read, files.write, exec): the path itself when it is clean
  (absolute, no `//`, no `.`/`..` segment, at most PATH_MAX_BYTES bytes) and
  holds no wildcard character (`*?[{`) nor a backslash (an undecodable byte
  prints as `\\xNN`). Paths are matched as the process passed them, so a
  relative or unclean path gets `any`, never a pattern it would fail.
- ENV (env.read, env.write): the name itself (no `=`, no wildcard, not empty).
  A call with no name (os.Environ, os.Clearenv) reads or changes the whole
  environment: `any`.
- ADDRESS (network.connect, network.listen): `IP:port` (IPv4-mapped IPv6
  written as IPv4, `[IPv6]:port` otherwise), `unix:/path` (a clean path) or
  `unix:@name`. `:8080` (a listen on the unspecified address) is
  `0.0.0.0:8080`, which patterns treat as the unspecified address of either
  family. A file descriptor (syscall.Bind, syscall.Listen) or an unknown
  address family is `any`.

Every other capability takes only `any`.

The collapse rule (`scope_paths`, learn mode only): a module that touched
many files under one directory gets a directory pattern instead of a list
that would break on the next file it touches:

1. more than COLLAPSE_OVER (8) distinct paths directly in one directory D
   become `D/*`;
2. then, repeatedly, the deepest directory D with more than COLLAPSE_OVER of
   the remaining exact paths anywhere under it, spread over at least two
   directories, becomes `D/**` (which also covers D itself and any `D/...*`
   of step 1);
3. never to `/`, a top-level directory (`/etc`, `/home`, `/tmp` ...), a home
   directory (`/home/NAME`) or anything under `/proc` (credentials, the
   process's memory and environment): those paths stay exact, except
0. the process's own numbered descriptors (`/proc/self/fd/N`, `fdinfo/N`,
   and under `/proc/thread-self`), always `/proc/self/fd/*` and the like:
   their numbers vary between runs (SELF_DESCRIPTORS).

Addresses: at most MAX_PORTS_PER_NETWORK (8) ports per IP fit in the kernel's
table, so more distinct ports of one IP become `IP:*`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from gohook.errors import PatternError
from gohook.policy.format import ModuleRule
from gohook.policy.patterns import (
    MAX_PORTS_PER_NETWORK,
    PATH_MAX_BYTES,
    SCOPABLE,
    UNIX_PATH_MAX_BYTES,
    AddressPattern,
    ArgClass,
    is_ip,
    parse_pattern,
)

COLLAPSE_OVER = 8  # more distinct paths than this under one directory are collapsed to a directory pattern
_WILDCARDS = "*?[{"

#: What a learned or generated rule is: None for `any`, else sorted pattern texts.
Rule = list[str] | None


@dataclass(frozen=True)
class Exact:
    """The exact pattern of one argument."""

    text: str


@dataclass(frozen=True)
class Refused:
    """Why an argument gets `any` instead of a pattern (said in the policy's comment)."""

    reason: str


def argument_class(capability: str) -> ArgClass | None:
    """The argument class of a scopable capability, None for capabilities that only take `any`."""
    return SCOPABLE.get(capability)


def _clean_path_problem(path: str) -> str | None:
    """Why `path` cannot be matched exactly as a path pattern, or None when it can."""
    if not path:
        return "empty path"
    if not path.startswith("/"):
        return f"{path!r} is relative (paths are matched as passed, not resolved)"
    if "//" in path or any(seg in (".", "..") for seg in path.split("/")):
        return f"{path!r} holds `//`, `.` or `..` (paths are matched as passed, not normalised)"
    if "\\" in path or any(c in path for c in _WILDCARDS):
        return f"{path!r} holds a character a pattern cannot spell exactly"
    if "\0" in path:
        return "the path holds a NUL byte"
    if len(path.encode("utf-8", "surrogateescape")) > PATH_MAX_BYTES:
        return f"the path is longer than {PATH_MAX_BYTES} bytes (PATH_MAX_BYTES)"
    return None


def _name_problem(name: str) -> str | None:
    if not name:
        return "empty name"
    if "=" in name or "\0" in name or "\\" in name or any(c in name for c in _WILDCARDS):
        return f"{name!r} holds a character a name pattern cannot spell exactly"
    if len(name.encode("utf-8", "surrogateescape")) > PATH_MAX_BYTES:
        return f"the name is longer than {PATH_MAX_BYTES} bytes"
    return None


def _unix_pattern(rest: str) -> Exact | Refused:
    """`unix:` + rest for a socket path or `@abstract` name."""
    if rest.startswith("@"):
        problem = _name_problem(rest[1:])
        if problem is None and len(rest.encode("utf-8", "surrogateescape")) > UNIX_PATH_MAX_BYTES:
            problem = "the socket name is too long"
        return Refused(f"unix socket: {problem}") if problem else Exact("unix:" + rest)
    if not rest:
        return Refused("unnamed unix socket (autobind)")
    problem = _clean_path_problem(rest)
    if problem is None and len(rest.encode("utf-8", "surrogateescape")) > UNIX_PATH_MAX_BYTES:
        problem = "the socket path is too long"
    return Refused(f"unix socket {problem}") if problem else Exact("unix:" + rest)


def _ip_port(host: str, port: str, *, listen: bool) -> Exact | Refused:
    """`IP:port` / `[IPv6]:port` of an address whose host is an IP literal (or empty: the unspecified address)."""
    if not port.isdigit() or int(port) > 65535:
        return Refused(f"port {port!r} is not a number (named ports are resolved at run time)")
    if host == "":
        if listen:
            return Exact(f"0.0.0.0:{int(port)}")
        return Refused("no IP: the local system, whichever address it resolves to at run time")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return Refused(f"{host!r} is not an IP address (host names are resolved at run time)")
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return Exact(f"{ip.ipv4_mapped}:{int(port)}")
        return Exact(f"[{ip.compressed}]:{int(port)}")
    return Exact(f"{ip}:{int(port)}")


def address_pattern(address: str, *, listen: bool) -> Exact | Refused:
    """The exact pattern of an address as events print it (`1.2.3.4:80`, `[::1]:443`, `:8080`, `unix:/p`)."""
    if address.startswith("unix:"):
        return _unix_pattern(address[5:])
    if address.startswith("family "):
        return Refused(f"an address of another family ({address.split(':', 1)[0]})")
    if address.startswith(("/", "@")):  # a Unix socket name as net.(*sysListener).listenUnix captures it
        return _unix_pattern(address)
    if address.startswith("["):
        end = address.find("]")
        if end < 0 or address[end + 1:end + 2] != ":":
            return Refused(f"unrecognised address {address!r}")
        host, port = address[1:end], address[end + 2:]
        if "%" in host:
            return Refused(f"{address!r} has a zone index")
        if not is_ip(host, 6):
            return Refused(f"{host!r} is not an IPv6 address")
    else:
        host, sep, port = address.rpartition(":")
        if not sep:
            if address.lstrip("-").isdigit():
                return Refused("the argument is a file descriptor, not an address")
            return Refused(f"unrecognised address {address!r}")
        if ":" in host or (host and not is_ip(host, 4) and is_ip(host, 6)):
            return Refused(f"unrecognised address {address!r}")
    return _ip_port(host, port, listen=listen)




def exact_pattern(capability: str, argument: str | None) -> Exact | Refused:
    """The exact pattern of one argument of `capability` (as events print it), or why there is none.

    The result is checked: it parses (parse_pattern) and matches the argument.
    """
    cls = argument_class(capability)
    if cls is None:
        return Refused(f"{capability} takes no argument patterns")
    if argument is None:
        if cls is ArgClass.ENV:
            return Refused("the whole environment (a call with no variable name, e.g. os.Environ)")
        return Refused("argument not captured")
    if cls is ArgClass.PATH:
        if argument.lstrip("-").isdigit():
            return Refused("the argument is a file descriptor, not a path")
        problem = _clean_path_problem(argument)
        got: Exact | Refused = Refused(problem) if problem else Exact(argument)
    elif cls is ArgClass.ENV:
        problem = _name_problem(argument)
        got = Refused(problem) if problem else Exact(argument)
    else:
        got = address_pattern(argument, listen=capability == "network.listen")
    if isinstance(got, Exact):
        if cls is ArgClass.ADDRESS and argument.startswith(("/", "@")):
            argument = "unix:" + argument  # listenUnix reports the bare socket name
        return _checked(capability, got.text, (argument,))
    return got


#: Networks of net.Dial/Listen whose addresses are `host:port`, and those whose addresses are socket paths.
IP_NETWORKS = frozenset({"tcp", "tcp4", "tcp6", "udp", "udp4", "udp6"})
UNIX_NETWORKS = frozenset({"unix", "unixgram", "unixpacket"})


def literal_pattern(capability: str, value: str, network: str | None = None) -> Exact | Refused:
    """The exact pattern of a constant argument found in the binary (`policy generate`).

    Paths and names as exact_pattern. Addresses as written to net.Dial/Listen: with a Unix network (or an
    unknown network and a value starting with `/` or `@`) a socket path or abstract name, else `host:port`
    with an IP literal host (a name is resolved at run time: `any`); `:port` is the unspecified address
    for a listen and `any` for a dial.
    """
    if argument_class(capability) is not ArgClass.ADDRESS:
        return exact_pattern(capability, value)
    if network in UNIX_NETWORKS or (network is None and value.startswith(("/", "@"))):
        return exact_pattern(capability, "unix:" + value)
    if network is not None and network not in IP_NETWORKS:
        return Refused(f"network {network!r} (no IP:port address)")
    return exact_pattern(capability, value)


def _checked(capability: str, text: str, arguments: Iterable[str]) -> Exact | Refused:
    """`text` if it parses as a pattern of `capability` and matches every argument, else Refused."""
    try:
        pattern = parse_pattern(capability, text)
    except PatternError as exc:
        return Refused(f"{text!r} is not a valid pattern: {exc}")
    for arg in arguments:
        if not pattern.matches(arg):
            return Refused(f"{text!r} would not match {arg!r}")
    return Exact(text)


# --- collapsing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scoped:
    """The patterns of one capability, with the notes that explain collapses."""

    patterns: list[str]
    notes: list[str]


def _parent(path: str) -> str:
    """The directory a path is in: `/a/b/c` -> `/a/b`, `/a` -> `/`, `/a/b/` -> `/a/b`."""
    head = path.rstrip("/").rpartition("/")[0] if path != "/" else ""
    return head or "/"


def _ancestors(path: str) -> list[str]:
    """Every directory above `path`, deepest first, `/` last."""
    out = []
    d = _parent(path)
    while True:
        out.append(d)
        if d == "/":
            return out
        d = _parent(d)


def _depth(directory: str) -> int:
    return 0 if directory == "/" else directory.count("/")


def collapse_refusal(directory: str) -> str | None:
    """Why no path pattern may cover `directory` (it would grant too much), None when one may."""
    if _depth(directory) <= 1:
        return "a top-level directory" if directory != "/" else "the root directory"
    if directory.startswith("/home/") and _depth(directory) == 2:
        return "a home directory"
    if directory == "/proc" or directory.startswith("/proc/"):
        return "under /proc (process memory and environment)"
    return None


#: the process's own numbered descriptor entries: which numbers a run sees depends on what else is open at that
#: moment (etcd's file-descriptor monitor lstat()s every /proc/self/fd entry), so learning them exactly makes
#: the policy kill the next run that has one more file open (issue 17: a real false kill)
SELF_DESCRIPTORS = re.compile(r"^(/proc/(?:self|thread-self)/(?:fd|fdinfo))/[0-9]+$")


def scope_paths(capability: str, paths: Iterable[str]) -> Scoped:
    """Exact clean paths of one module and capability as patterns, collapsed by the rule in the docstring."""
    exact = set(paths)
    patterns: set[str] = set()
    notes: list[str] = []
    # 0. the process's own descriptors, whatever their numbers (SELF_DESCRIPTORS)
    by_fd_dir: dict[str, set[str]] = {}
    for p in exact:
        m = SELF_DESCRIPTORS.match(p)
        if m is not None:
            by_fd_dir.setdefault(m.group(1), set()).add(p)
    for d, members in sorted(by_fd_dir.items()):
        text = d + "/*"
        if isinstance(_checked(capability, text, members), Exact):
            patterns.add(text)
            exact -= members
            notes.append(f"{capability}: {text} stands for {len(members)} numbered descriptors of the process "
                         "(their numbers vary between runs); it also lets the module reopen any file the process "
                         "has open")
    # 1. many files directly in one directory
    by_dir: dict[str, set[str]] = {}
    for p in exact:
        by_dir.setdefault(_parent(p), set()).add(p)
    for d, members in sorted(by_dir.items()):
        if len(members) <= COLLAPSE_OVER:
            continue
        refusal = collapse_refusal(d)
        if refusal is not None:
            notes.append(f"{capability}: {len(members)} paths directly in {d} kept exact (not collapsed: {refusal})")
            continue
        text = ("" if d == "/" else d) + "/*"
        if isinstance(_checked(capability, text, members), Exact):
            patterns.add(text)
            exact -= members
            notes.append(f"{capability}: {text} stands for {len(members)} distinct paths directly in {d} "
                         f"(more than {COLLAPSE_OVER})")
    # 2. many files in a tree of directories, deepest directory first
    refused: set[str] = set()
    while True:
        under: dict[str, set[str]] = {}
        for p in exact:
            for d in _ancestors(p):
                under.setdefault(d, set()).add(p)
        best = None
        for d in sorted(under, key=lambda d: (-_depth(d), d)):
            members = under[d] - {d}
            if len(members) <= COLLAPSE_OVER or len({_parent(p) for p in members}) < 2:
                continue
            if collapse_refusal(d) is not None:
                refused.add(d)
                continue
            best = d
            break
        if best is None:
            break
        text = best + "/**"
        covered = {p for p in exact if p == best or p.startswith(best + "/")}
        if not isinstance(_checked(capability, text, covered), Exact):
            break
        dirs = len({_parent(p) for p in covered})
        exact -= covered
        patterns = {t for t in patterns if not t.startswith(best + "/")}
        patterns.add(text)
        notes.append(f"{capability}: {text} stands for {len(covered)} distinct paths in {dirs} directories under "
                     f"{best} (more than {COLLAPSE_OVER})")
    for d in sorted(refused):
        n = sum(1 for p in exact if p.startswith(d.rstrip("/") + "/"))
        if n > COLLAPSE_OVER:
            notes.append(f"{capability}: {n} paths under {d} kept exact (not collapsed: {collapse_refusal(d)})")
    return Scoped(sorted(patterns | exact), notes)


def scope_addresses(capability: str, addresses: Iterable[str]) -> Scoped:
    """Exact address patterns; more than MAX_PORTS_PER_NETWORK ports of one address become `IP:*`.

    Ports are counted per network as the policy loader counts them (0.0.0.0 and [::] are one address).
    """
    texts = set(addresses)
    by_network: dict[object, set[str]] = {}
    for t in texts:
        pattern = parse_pattern(capability, t)
        if isinstance(pattern, AddressPattern):
            by_network.setdefault(pattern.network, set()).add(t)
    notes = []
    for members in by_network.values():
        ports = {t.rpartition(":")[2] for t in members}
        if len(ports) > MAX_PORTS_PER_NETWORK:
            texts -= members
            hosts = sorted({t.rpartition(":")[0] for t in members})
            texts.update(f"{h}:*" for h in hosts)
            notes.append(f"{capability}: {', '.join(h + ':*' for h in hosts)} stands for {len(ports)} ports "
                         f"(the kernel holds at most {MAX_PORTS_PER_NETWORK} ports per address)")
    return Scoped(sorted(texts), sorted(notes))


def scope_exact(capability: str, texts: Iterable[str]) -> Scoped:
    """Exact patterns of one module and capability, collapsed as its argument class allows."""
    cls = argument_class(capability)
    if cls is ArgClass.PATH:
        return scope_paths(capability, texts)
    if cls is ArgClass.ADDRESS:
        return scope_addresses(capability, texts)
    return Scoped(sorted(set(texts)), [])


def render_rule(rule: Rule) -> str:
    """A rule as one short text for comments: `any` or the patterns."""
    return "any" if rule is None else ", ".join(rule)


def module_rule(module: str, rules: dict[str, Rule]) -> ModuleRule:
    """One module's learned or generated rules as a ModuleRule (the list form when nothing is scoped)."""
    any_caps = [cap for cap, pats in rules.items() if pats is None]
    scopes = {cap: tuple(parse_pattern(cap, t) for t in pats) for cap, pats in rules.items() if pats is not None}
    return ModuleRule.with_scopes(module, any_caps, scopes)
