"""Argument patterns of scoped policy rules: parse, match and compare them (pure, no I/O).

A scoped rule allows a capability only for some arguments (docs/policy.md):
`env.read: ["OTEL_*"]`, `network.connect: ["10.0.0.0/8:443"]`. This module
is the reference for what a pattern means. The kernel matches the same
globs and networks from BPF maps (a prefix table and an LPM trie), so the
Python here is the oracle the kernel's tests are checked against, and every
limit below is the kernel's.

Argument classes (SCOPABLE): files.read, files.write and exec take PATH
patterns; env.read and env.write take ENV (variable name) patterns;
network.connect and network.listen take ADDRESS patterns. No other
capability takes patterns.

What each pattern compiles to (bytes are UTF-8; GlobKind values are shared
with the BPF C code):

    pattern text                 result
    ---------------------------  ----------------------------------------------------------------
    PATH  /etc/hosts             PathPattern globs (Glob(b"/etc/hosts", EXACT),)
    PATH  /etc/acme/**           (Glob(b"/etc/acme/", TREE), Glob(b"/etc/acme", EXACT))
    PATH  /**                    (Glob(b"/", TREE),)
    PATH  /var/lib/acme/*.yaml   (Glob(b"/var/lib/acme/", SEGMENT, b".yaml"),)
    PATH  /run/*                 (Glob(b"/run/", SEGMENT, b""),)
    PATH  /opt/app-*.d           (Glob(b"/opt/app-", SEGMENT, b".d"),)
    ENV   HOME                   NamePattern globs (Glob(b"HOME", EXACT),)
    ENV   OTEL_*                 (Glob(b"OTEL_", TREE),)
    ENV   *_URL                  (Glob(b"", SUFFIX, b"_URL"),)
    ENV   PG*FILE                (Glob(b"PG", SUFFIX, b"FILE"),)
    ADDR  127.0.0.1:4317         AddressPattern network ::ffff:127.0.0.1/128, ports {4317}
    ADDR  10.0.0.0/8:443         network ::ffff:10.0.0.0/104, ports {443}
    ADDR  [::1]:*                network ::1/128, ports None (any port)
    ADDR  [fd00::/8]:5432        network fd00::/8, ports {5432}
    ADDR  0.0.0.0:8080, [::]:80  network ::/128 (the unspecified address, either family)
    ADDR  unix:/run/otel/*.sock  UnixPattern abstract False, globs as PATH
    ADDR  unix:@otel-*           UnixPattern abstract True, globs as ENV (names)

    GlobKind   matches the argument bytes A when
    EXACT  1   A == prefix
    TREE   2   A starts with prefix
    SEGMENT 3  A = prefix + R, R holds no '/', R ends with suffix (PATH only)
    SUFFIX 4   A = prefix + R, R ends with suffix (names only)

Limits: a literal prefix is at most PATH_MAX_BYTES (240) bytes, a suffix at
most SUFFIX_MAX_BYTES (16); longer ones are load errors. A module holds at
most MAX_PORTS_PER_NETWORK (8) distinct ports per network and capability
(checked by the policy loader with port_limit_violation).

Arguments are matched as gohook events print them:

- PATH: only a clean argument matches anything (fail closed): it starts
  with '/', holds no NUL, no `//`, no `.` or `..` segment, and is at most
  PATH_MAX_BYTES bytes. Paths are not normalised (the process's cwd and
  symlinks are the kernel's business, not the pattern's), so a relative
  path or `/allowed/../etc/x` matches no pattern.
- ENV: a name with a NUL or longer than PATH_MAX_BYTES matches nothing.
- ADDRESS: `127.0.0.1:80`, `[::1]:443`, `[::ffff:127.0.0.1]:80` (matches
  IPv4 rules), `:8080` (no IP: the unspecified address), `unix:/run/x.sock`,
  `unix:@name`. IPv4 0.0.0.0, IPv6 :: and ::ffff:0.0.0.0 are the
  unspecified address ::, which only a network containing :: matches
  (`0.0.0.0:PORT`, `[::]:PORT`, `[::/0]:PORT`), not `0.0.0.0/0`.

covers(old, new) is the conservative containment `policy diff` uses: True
only when `old` matches every argument `new` matches.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from gohook.bpf.abi import ADDR_PORTS, GLOB_ALTS, GLOB_DATA, MATCH_TRIES, SUFFIX_MAX, ArgClass, GlobKind
from gohook.errors import PatternError

__all__ = [
    "MAX_PORTS_PER_NETWORK",
    "PATH_MAX_BYTES",
    "SCOPABLE",
    "SUFFIX_MAX_BYTES",
    "UNIX_PATH_MAX_BYTES",
    "AddressPattern",
    "ArgClass",
    "Glob",
    "GlobKind",
    "NamePattern",
    "PathPattern",
    "Pattern",
    "PatternError",
    "UnixPattern",
    "covers",
    "network_text",
    "parse_pattern",
    "pattern_matches",
    "port_limit_violation",
]


SCOPABLE: dict[str, ArgClass] = {
    "files.read": ArgClass.PATH,
    "files.write": ArgClass.PATH,
    "exec": ArgClass.PATH,
    "env.read": ArgClass.ENV,
    "env.write": ArgClass.ENV,
    "network.connect": ArgClass.ADDRESS,
    "network.listen": ArgClass.ADDRESS,
}


PATH_MAX_BYTES = GLOB_DATA  # longest prefix / longest argument the kernel can match (LPM key data)
SUFFIX_MAX_BYTES = SUFFIX_MAX  # longest text after a `*`
MAX_PORTS_PER_NETWORK = ADDR_PORTS  # distinct ports per network, capability and module (the kernel's table)
UNIX_PATH_MAX_BYTES = 107  # sun_path holds 108 bytes: a path and its NUL, or NUL and an abstract name

_HINT_PATH = "gohook matches one `*` or a final `/**`"
_HINT_NAME = "gohook matches one `*` in a name (OTEL_*, *_URL, PG*FILE)"
_NOT_NORMALISED = "never matches: paths are matched as the process passed them, not normalised"
_DIGITS = re.compile(r"[0-9]+")
_UNSPECIFIED = ipaddress.IPv6Network("::/128")
_MAPPED_ANY = ipaddress.IPv6Network("::ffff:0.0.0.0/128")
_MAPPED_BASE = 0xFFFF << 32


@dataclass(frozen=True, slots=True)
class Glob:
    """One prefix-table entry: see GlobKind for what it matches."""

    prefix: bytes
    kind: GlobKind
    suffix: bytes = b""

    def matches(self, argument: bytes) -> bool:
        """Whether the argument bytes match, by GlobKind alone (no cleanliness or length rule)."""
        if self.kind is GlobKind.EXACT:
            return argument == self.prefix
        if not argument.startswith(self.prefix):
            return False
        if self.kind is GlobKind.TREE:
            return True
        rest = argument[len(self.prefix):]
        if self.kind is GlobKind.SEGMENT and b"/" in rest:
            return False
        return rest.endswith(self.suffix)

    def min_length(self) -> int:
        """The length of the shortest argument the glob matches."""
        return len(self.prefix) + len(self.suffix)


def _encode(text: str) -> bytes | None:
    """`text` as the bytes the kernel sees (UTF-8; surrogate escapes back to their bytes); None if impossible."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return None


def _clean_path(argument: str) -> bytes | None:
    """The argument's bytes when it is a clean absolute path the kernel can match, else None (fail closed)."""
    b = _encode(argument)
    if b is None or not b.startswith(b"/") or b"\0" in b or len(b) > PATH_MAX_BYTES or b"//" in b:
        return None
    if b"/./" in b or b"/../" in b or b.endswith((b"/.", b"/..")):
        return None
    return b


def _name_bytes(argument: str) -> bytes | None:
    """The argument's bytes when a name pattern may match it (no NUL, at most PATH_MAX_BYTES), else None."""
    b = _encode(argument)
    if b is None or b"\0" in b or len(b) > PATH_MAX_BYTES:
        return None
    return b


@dataclass(frozen=True)
class PathPattern:
    """A path glob of files.read, files.write or exec (and of `unix:/...` addresses)."""

    text: str
    globs: tuple[Glob, ...]

    def matches(self, path: str) -> bool:
        """Whether `path` (as the process passed it) matches; unclean paths never do."""
        b = _clean_path(path)
        return b is not None and any(g.matches(b) for g in self.globs)


@dataclass(frozen=True)
class NamePattern:
    """An environment variable name glob of env.read or env.write."""

    text: str
    globs: tuple[Glob, ...]

    def matches(self, name: str) -> bool:
        """Whether the variable name matches."""
        b = _name_bytes(name)
        return b is not None and any(g.matches(b) for g in self.globs)


@dataclass(frozen=True)
class AddressPattern:
    """An IP network and port set of network.connect or network.listen (IPv4 stored IPv4-mapped)."""

    text: str
    network: ipaddress.IPv6Network
    ports: frozenset[int] | None  # None: any port

    def matches(self, address: str) -> bool:
        """Whether an address argument (`127.0.0.1:80`, `[::1]:443`, `:8080`) matches."""
        parsed = _address_argument(address)
        if parsed is None:
            return False
        ip, port = parsed
        return ip in self.network and (self.ports is None or port in self.ports)


@dataclass(frozen=True)
class UnixPattern:
    """A Unix socket pattern: a path glob (`unix:/run/*.sock`) or an abstract name glob (`unix:@name*`)."""

    text: str
    abstract: bool
    globs: tuple[Glob, ...]

    def matches(self, address: str) -> bool:
        """Whether an address argument (`unix:/run/x.sock`, `unix:@name`) matches."""
        if not address.startswith("unix:"):
            return False
        rest = address[5:]
        if not self.abstract:
            b = _clean_path(rest)
        elif rest.startswith("@"):
            b = _name_bytes(rest[1:])
        else:
            return False
        return b is not None and any(g.matches(b) for g in self.globs)


Pattern = PathPattern | NamePattern | AddressPattern | UnixPattern


# --- parsing -------------------------------------------------------------------------------------

def _check_lengths(globs: tuple[Glob, ...]) -> tuple[Glob, ...]:
    for g in globs:
        if len(g.prefix) > PATH_MAX_BYTES:
            raise PatternError(f"the literal part is {len(g.prefix)} bytes, above the {PATH_MAX_BYTES} bytes "
                               f"the kernel matches (PATH_MAX_BYTES)")
        if len(g.suffix) > SUFFIX_MAX_BYTES:
            raise PatternError(f"the text after `*` is {len(g.suffix)} bytes, above the {SUFFIX_MAX_BYTES} bytes "
                               f"the kernel matches (SUFFIX_MAX_BYTES)")
        if g.min_length() > PATH_MAX_BYTES:
            raise PatternError(f"never matches: it needs {g.min_length()} bytes and arguments longer than "
                               f"{PATH_MAX_BYTES} bytes (PATH_MAX_BYTES) match nothing")
    return globs


def _text_bytes(text: str) -> bytes:
    b = _encode(text)
    if b is None:
        raise PatternError("is not valid UTF-8 text")
    return b


def _path_globs(text: str) -> tuple[Glob, ...]:
    """The globs of a PATH pattern; raises PatternError."""
    if not text.startswith("/"):
        raise PatternError("must be an absolute path (starting with /)")
    if "\0" in text:
        raise PatternError("holds a NUL byte")
    if "//" in text:
        raise PatternError(f"{_NOT_NORMALISED} (`//`)")
    for seg in text.split("/"):
        if seg in (".", ".."):
            raise PatternError(f"{_NOT_NORMALISED} (a `{seg}` segment)")
    for c in "?[{":
        if c in text:
            raise PatternError(f"`{c}` is not a wildcard gohook knows: {_HINT_PATH}")
    stars = text.count("*")
    if stars == 0:
        return _check_lengths((Glob(_text_bytes(text), GlobKind.EXACT),))
    if stars == 1:
        i = text.index("*")
        prefix, suffix = text[:i], text[i + 1:]
        if "/" in suffix:
            raise PatternError(f"`*` matches within the last segment only (nothing after it may hold '/'): "
                               f"{_HINT_PATH}")
        return _check_lengths((Glob(_text_bytes(prefix), GlobKind.SEGMENT, _text_bytes(suffix)),))
    if text.endswith("/**") and stars == 2:
        base = text[:-2]  # keeps the final '/'
        if base == "/":
            return (Glob(b"/", GlobKind.TREE),)
        return _check_lengths((Glob(_text_bytes(base), GlobKind.TREE), Glob(_text_bytes(base[:-1]), GlobKind.EXACT)))
    if text.endswith("/**") and "*" in text[:-3]:
        raise PatternError(f"`*` together with `**`: {_HINT_PATH}")
    if "**" in text:
        raise PatternError(f"`**` must be the whole last segment (as in /dir/**): {_HINT_PATH}")
    raise PatternError(f"{stars} `*` in one pattern: {_HINT_PATH}")


def _name_globs(text: str, what: str, *, allow_equals: bool = False) -> tuple[Glob, ...]:
    """The globs of a name pattern (ENV, abstract Unix socket names); raises PatternError."""
    if not text:
        raise PatternError(f"empty {what}")
    if "\0" in text:
        raise PatternError("holds a NUL byte")
    if "=" in text and not allow_equals:
        raise PatternError(f"'=' cannot be part of an {what}")
    for c in "?[{":
        if c in text:
            raise PatternError(f"`{c}` is not a wildcard gohook knows: {_HINT_NAME}")
    stars = text.count("*")
    if stars == 0:
        return _check_lengths((Glob(_text_bytes(text), GlobKind.EXACT),))
    if stars > 1:
        raise PatternError(f"{stars} `*` in one {what}: {_HINT_NAME}")
    i = text.index("*")
    if i == len(text) - 1:
        return _check_lengths((Glob(_text_bytes(text[:-1]), GlobKind.TREE),))
    return _check_lengths((Glob(_text_bytes(text[:i]), GlobKind.SUFFIX, _text_bytes(text[i + 1:])),))


def _port(text: str) -> frozenset[int] | None:
    if text == "*":
        return None
    if not text:
        raise PatternError("missing port: write IP:port, or IP:* for any port")
    if not _DIGITS.fullmatch(text):
        raise PatternError(f"bad port {text!r}: write a number 0..65535, or * for any port")
    n = int(text)
    if n > 65535:
        raise PatternError(f"port {n} is above 65535")
    return frozenset((n,))


def _mapped(net: ipaddress.IPv4Network) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network((_MAPPED_BASE | int(net.network_address), 96 + net.prefixlen))


def _canonical(net: ipaddress.IPv6Network) -> ipaddress.IPv6Network:
    """0.0.0.0 (mapped) and :: as a single address are both the unspecified address ::/128."""
    return _UNSPECIFIED if net == _MAPPED_ANY else net


def _network(host: str, family: int) -> ipaddress.IPv6Network:
    """The network of an address pattern's host part (`10.0.0.0/8`, `fd00::/8` without brackets)."""
    name = f"IPv{family}"
    if not host:
        raise PatternError("missing IP address before :port (0.0.0.0:PORT or [::]:PORT is the unspecified address)")
    addr_text, slash, length_text = host.partition("/")
    if "%" in addr_text:
        raise PatternError(f"zone index in {addr_text!r} is not supported: write the address alone")
    try:
        addr: ipaddress.IPv4Address | ipaddress.IPv6Address = (
            ipaddress.IPv4Address(addr_text) if family == 4 else ipaddress.IPv6Address(addr_text))
    except ValueError:
        if family == 6 and is_ip(addr_text, 4):
            raise PatternError(f"IPv4 addresses go without brackets: {host}:PORT") from None
        raise PatternError(f"bad {name} address {addr_text!r} (host names are not resolved: write the address)") \
            from None
    max_len = 32 if family == 4 else 128
    length = max_len
    if slash:
        if not _DIGITS.fullmatch(length_text):
            raise PatternError(f"bad prefix length {length_text!r} (a number 0..{max_len} for {name})")
        length = int(length_text)
        if length > max_len:
            raise PatternError(f"prefix length {length} is out of range for {name}")
    try:
        net = ipaddress.ip_network((addr, length), strict=True)
    except ValueError:
        loose = ipaddress.ip_network((addr, length), strict=False)
        hint = str(loose) if family == 4 else f"[{loose}]"
        raise PatternError(f"{host} has host bits set: did you mean {hint}?") from None
    if isinstance(net, ipaddress.IPv4Network):
        return _canonical(_mapped(net))
    return _canonical(net)


def is_ip(text: str, version: int) -> bool:
    """Whether text is an IP address of this version (4 or 6)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return ipaddress.ip_address(text).version == version


def _address(text: str) -> AddressPattern | UnixPattern:
    """An ADDRESS pattern; raises PatternError."""
    if text.startswith("unix:"):
        rest = text[5:]
        if rest.startswith("@"):
            return UnixPattern(text, True, _name_globs(rest[1:], "abstract socket name", allow_equals=True))
        if rest.startswith("/"):
            return UnixPattern(text, False, _path_globs(rest))
        raise PatternError("write unix:/path for a socket file or unix:@name for an abstract socket")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise PatternError("missing ']' after the IPv6 address")
        host, rest = text[1:end], text[end + 1:]
        if not rest:
            raise PatternError("missing port: write IP:port, or IP:* for any port")
        if not rest.startswith(":"):
            raise PatternError(f"expected :port after ']', not {rest!r}")
        ports = _port(rest[1:])
        return AddressPattern(text, _network(host, 6), ports)
    if ":" not in text:
        raise PatternError("missing port: write IP:port, or IP:* for any port")
    host, port_text = text.rsplit(":", 1)
    if ":" in host:
        raise PatternError("an IPv6 address goes in brackets: [::1]:443, [fd00::/8]:*")
    ports = _port(port_text)
    if host == "*":
        raise PatternError("`*` is not an address: for any address write 0.0.0.0/0:PORT (IPv4) "
                           "and [::/0]:PORT (every address)")
    return AddressPattern(text, _network(host, 4), ports)


def parse_pattern(capability: str, text: str) -> Pattern:
    """The pattern `text` of `capability` (a SCOPABLE name); raises PatternError with the problem alone."""
    cls = SCOPABLE.get(capability)
    if cls is None:
        raise PatternError(f"{capability} takes no argument patterns: grant it with `any`")
    if cls is ArgClass.PATH:
        return PathPattern(text, _path_globs(text))
    if cls is ArgClass.ENV:
        return NamePattern(text, _name_globs(text, "environment variable name"))
    return _address(text)


# --- matching ------------------------------------------------------------------------------------

def _address_argument(argument: str) -> tuple[ipaddress.IPv6Address, int] | None:
    """An address argument as (IPv6 address, port), IPv4 mapped and the unspecified address ::; None if not one."""
    if argument.startswith("["):
        end = argument.find("]")
        if end < 0 or argument[end + 1:end + 2] != ":":
            return None
        host, port_text = argument[1:end], argument[end + 2:]
        try:
            ip = ipaddress.IPv6Address(host)
        except ValueError:
            return None
    else:
        host, sep, port_text = argument.rpartition(":")
        if not sep:
            return None
        if host == "":
            ip = _UNSPECIFIED.network_address
        else:
            try:
                ip = ipaddress.IPv6Address(_MAPPED_BASE | int(ipaddress.IPv4Address(host)))
            except ValueError:
                return None
    if not _DIGITS.fullmatch(port_text) or int(port_text) > 65535:
        return None
    if int(ip) in (0, _MAPPED_BASE):  # ::, ::ffff:0.0.0.0
        ip = _UNSPECIFIED.network_address
    return ip, int(port_text)


def pattern_matches(pattern: Pattern, argument: str) -> bool:
    """Whether `argument` (as gohook events print it) matches `pattern`."""
    return pattern.matches(argument)


# --- comparing -----------------------------------------------------------------------------------

def _glob_covers(old: Glob, new: Glob) -> bool:
    """True only if `old` matches every byte string `new` matches (conservative: False when unsure)."""
    if new.kind is GlobKind.EXACT:
        return old.matches(new.prefix)
    if old.kind is GlobKind.EXACT:
        return False  # new matches infinitely many strings
    if not new.prefix.startswith(old.prefix):
        return False
    if old.kind is GlobKind.TREE:
        return True
    if new.kind is GlobKind.TREE:
        return old.kind is GlobKind.SUFFIX and old.suffix == b""
    if not new.suffix.endswith(old.suffix):
        return False
    if old.kind is GlobKind.SUFFIX:
        return True
    # old is SEGMENT: new's matches must keep their rest free of '/'
    return new.kind is GlobKind.SEGMENT and b"/" not in new.prefix[len(old.prefix):]


def _globs_cover(old: tuple[Glob, ...], new: tuple[Glob, ...]) -> bool:
    return all(any(_glob_covers(o, n) for o in old) for n in new)


def covers(old: Pattern, new: Pattern) -> bool:
    """True only when `old` matches every argument `new` matches (conservative: False when unsure).

    Globs: every glob of `new` is contained in one glob of `old`. Addresses:
    network containment and port subset (any port covers every port).
    Patterns of different kinds never cover each other.
    """
    if isinstance(old, PathPattern) and isinstance(new, PathPattern) or \
            isinstance(old, NamePattern) and isinstance(new, NamePattern):
        return _globs_cover(old.globs, new.globs)
    if isinstance(old, UnixPattern) and isinstance(new, UnixPattern):
        return old.abstract == new.abstract and _globs_cover(old.globs, new.globs)
    if isinstance(old, AddressPattern) and isinstance(new, AddressPattern):
        if not new.network.subnet_of(old.network):
            return False
        return old.ports is None or (new.ports is not None and new.ports <= old.ports)
    return False


def network_text(network: ipaddress.IPv6Network) -> str:
    """A network as a pattern writes it: `10.0.0.0/8` for IPv4-mapped ones, `[fd00::/8]` otherwise."""
    if network.prefixlen >= 96 and int(network.network_address) >> 32 == 0xFFFF:
        v4 = ipaddress.IPv4Network((int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96))
        return str(v4.network_address) if v4.prefixlen == 32 else str(v4)
    if network.prefixlen == 128:
        return f"[{network.network_address}]"
    return f"[{network}]"


def table_limit_violation(patterns: Iterable[Pattern]) -> tuple[Pattern, str] | None:
    """The first pattern of one module's capability that the kernel's tables cannot hold, and why.

    arg_globs holds GLOB_ALTS globs per literal prefix; the kernel tries MATCH_TRIES entries, longest
    literal prefix first, so no more than MATCH_TRIES literal prefixes (or networks) may be prefixes of
    one another (gohook/bpf/argtables.py checks the same on the plan)."""
    pats = list(patterns)
    port = port_limit_violation(pats)
    if port is not None:
        return port, (f"more than {MAX_PORTS_PER_NETWORK} ports for {network_text(port.network)} (the kernel holds "
                      f"{MAX_PORTS_PER_NETWORK} per network): use fewer ports, or allow any port (IP:*)")
    alts: dict[tuple[str, bytes], set[tuple[GlobKind, bytes]]] = {}
    for p in pats:
        if isinstance(p, AddressPattern):
            continue
        family = type(p).__name__ + ("@" if isinstance(p, UnixPattern) and p.abstract else "")
        for g in p.globs:
            seen = alts.setdefault((family, g.prefix), set())
            seen.add((g.kind, g.suffix))
            if len(seen) > GLOB_ALTS:
                return p, (f"more than {GLOB_ALTS} patterns share the literal prefix "
                           f"{g.prefix.decode(errors='replace')!r} (the kernel holds {GLOB_ALTS}): merge them, e.g. "
                           "into one `*` pattern")
    for (family, prefix) in alts:
        chain = [q for (f, q) in alts if f == family and prefix.startswith(q)]
        if len(chain) > MATCH_TRIES:
            culprit = next(p for p in pats if not isinstance(p, AddressPattern)
                           and any(g.prefix == prefix for g in p.globs))
            return culprit, (f"{len(chain)} patterns are prefixes of {prefix.decode(errors='replace')!r} (the kernel "
                             f"tries {MATCH_TRIES}): replace the nested ones by a `/**` pattern")
    nets = [p for p in pats if isinstance(p, AddressPattern)]
    for p in nets:
        chain = {q.network for q in nets if p.network.subnet_of(q.network)}
        if len(chain) > MATCH_TRIES:
            return p, (f"{len(chain)} networks contain {network_text(p.network)} (the kernel tries {MATCH_TRIES}): "
                       "use fewer nested networks")
    return None


def port_limit_violation(patterns: Iterable[Pattern]) -> AddressPattern | None:
    """The first address pattern that brings its network above MAX_PORTS_PER_NETWORK distinct ports, if any."""
    ports: dict[ipaddress.IPv6Network, set[int]] = {}
    for p in patterns:
        if isinstance(p, AddressPattern) and p.ports is not None:
            seen = ports.setdefault(p.network, set())
            seen |= p.ports
            if len(seen) > MAX_PORTS_PER_NETWORK:
                return p
    return None
