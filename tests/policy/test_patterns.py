"""Argument patterns: what each text compiles to, every error, matching tables and the cover relation.

Oracles that are not gohook: hand-written tables, a regular-expression
translation of the pattern text with a segment-wise clean-path test
(independent of Glob), `ipaddress.IPv4Network` containment for IPv4 rules,
and brute-force enumeration of short paths for `covers`.
"""

from __future__ import annotations

import ipaddress
import itertools
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gohook.errors import PatternError, PolicyError
from gohook.policy.patterns import (
    MAX_PORTS_PER_NETWORK,
    PATH_MAX_BYTES,
    SCOPABLE,
    SUFFIX_MAX_BYTES,
    AddressPattern,
    ArgClass,
    Glob,
    GlobKind,
    NamePattern,
    PathPattern,
    UnixPattern,
    covers,
    network_text,
    parse_pattern,
    pattern_matches,
    port_limit_violation,
)

E, T, S, X = GlobKind.EXACT, GlobKind.TREE, GlobKind.SEGMENT, GlobKind.SUFFIX


def test_interface_constants() -> None:
    assert (E, T, S, X) == (1, 2, 3, 4)  # shared with the BPF C code
    assert PATH_MAX_BYTES == 240 and SUFFIX_MAX_BYTES == 16 and MAX_PORTS_PER_NETWORK == 8
    assert SCOPABLE == {"files.read": ArgClass.PATH, "files.write": ArgClass.PATH, "exec": ArgClass.PATH,
                        "env.read": ArgClass.ENV, "env.write": ArgClass.ENV,
                        "network.connect": ArgClass.ADDRESS, "network.listen": ArgClass.ADDRESS}
    assert issubclass(PatternError, PolicyError)


# --- what a pattern compiles to ------------------------------------------------------------------

@pytest.mark.parametrize(
    ("capability", "text", "globs"),
    [
        ("files.read", "/etc/hosts", (Glob(b"/etc/hosts", E),)),
        ("files.read", "/", (Glob(b"/", E),)),
        ("files.read", "/etc/acme/", (Glob(b"/etc/acme/", E),)),
        ("files.read", "/etc/acme/**", (Glob(b"/etc/acme/", T), Glob(b"/etc/acme", E))),
        ("files.write", "/**", (Glob(b"/", T),)),
        ("files.read", "/var/lib/acme/*.yaml", (Glob(b"/var/lib/acme/", S, b".yaml"),)),
        ("files.read", "/run/*", (Glob(b"/run/", S, b""),)),
        ("exec", "/opt/app-*.d", (Glob(b"/opt/app-", S, b".d"),)),
        ("exec", "/usr/bin/git", (Glob(b"/usr/bin/git", E),)),
        ("files.read", "/tmp/é*", (Glob("/tmp/é".encode(), S, b""),)),
        ("env.read", "HOME", (Glob(b"HOME", E),)),
        ("env.read", "OTEL_*", (Glob(b"OTEL_", T),)),
        ("env.write", "*_URL", (Glob(b"", X, b"_URL"),)),
        ("env.read", "A*B", (Glob(b"A", X, b"B"),)),
        ("env.read", "*", (Glob(b"", T),)),
        ("env.read", "a/b*", (Glob(b"a/b", T),)),
    ],
)
def test_glob_patterns_compile(capability: str, text: str, globs: tuple[Glob, ...]) -> None:
    p = parse_pattern(capability, text)
    assert p.text == text and p.globs == globs  # type: ignore[union-attr]
    assert isinstance(p, PathPattern if SCOPABLE[capability] is ArgClass.PATH else NamePattern)


V4 = "::ffff:{}/{}"


@pytest.mark.parametrize(
    ("text", "network", "ports"),
    [
        ("127.0.0.1:4317", "::ffff:127.0.0.1/128", {4317}),
        ("10.0.0.0/8:443", "::ffff:10.0.0.0/104", {443}),
        ("0.0.0.0/0:*", "::ffff:0.0.0.0/96", None),
        ("[::1]:*", "::1/128", None),
        ("[fd00::/8]:*", "fd00::/8", None),
        ("[fd00::/8]:5432", "fd00::/8", {5432}),
        ("[::ffff:10.0.0.0/104]:1", "::ffff:10.0.0.0/104", {1}),
        ("0.0.0.0:8080", "::/128", {8080}),
        ("0.0.0.0/32:8080", "::/128", {8080}),
        ("[::]:80", "::/128", {80}),
        ("[::ffff:0.0.0.0]:80", "::/128", {80}),
        ("[::/0]:0", "::/0", {0}),
        ("1.2.3.4:65535", "::ffff:1.2.3.4/128", {65535}),
    ],
)
def test_address_patterns_compile(text: str, network: str, ports: set[int] | None) -> None:
    p = parse_pattern("network.connect", text)
    assert p == AddressPattern(text, ipaddress.IPv6Network(network), None if ports is None else frozenset(ports))


def test_unix_patterns_compile() -> None:
    assert parse_pattern("network.listen", "unix:/run/otel/*.sock") == UnixPattern(
        "unix:/run/otel/*.sock", False, (Glob(b"/run/otel/", S, b".sock"),))
    assert parse_pattern("network.connect", "unix:@otel-*") == UnixPattern("unix:@otel-*", True, (Glob(b"otel-", T),))
    assert parse_pattern("network.connect", "unix:@a=b/c") == UnixPattern("unix:@a=b/c", True, (Glob(b"a=b/c", E),))
    assert parse_pattern("network.connect", "unix:/run/**").globs == (Glob(b"/run/", T), Glob(b"/run", E))


def test_longest_literal_is_accepted() -> None:
    text = "/" + "a" * (PATH_MAX_BYTES - 1)
    assert parse_pattern("files.read", text).globs == (Glob(text.encode(), E),)  # type: ignore[union-attr]
    assert parse_pattern("env.read", "A*" + "B" * SUFFIX_MAX_BYTES).globs[0].suffix == b"B" * 16  # type: ignore


# --- every error ---------------------------------------------------------------------------------

HINT = "gohook matches one `*` or a final `/**`"
NORM = "never matches: paths are matched as the process passed them, not normalised"


@pytest.mark.parametrize(
    ("capability", "text", "message"),
    [
        ("files.read", "etc/hosts", "must be an absolute path"),
        ("files.read", "", "must be an absolute path"),
        ("exec", "git", "must be an absolute path"),
        ("files.read", "/a\0b", "holds a NUL byte"),
        ("files.read", "/a//b", f"{NORM} (`//`)"),
        ("files.read", "/a/./b", f"{NORM} (a `.` segment)"),
        ("files.read", "/a/../b", f"{NORM} (a `..` segment)"),
        ("files.read", "/a/..", f"{NORM} (a `..` segment)"),
        ("files.read", "/a/.", f"{NORM} (a `.` segment)"),
        ("files.read", "/a/?.txt", f"`?` is not a wildcard gohook knows: {HINT}"),
        ("files.read", "/a/[ab]", f"`[` is not a wildcard gohook knows: {HINT}"),
        ("files.read", "/a/{b,c}", f"`{{` is not a wildcard gohook knows: {HINT}"),
        ("files.read", "/a/*/b", f"`*` matches within the last segment only (nothing after it may hold '/'): {HINT}"),
        ("files.read", "/a/**/b", f"`**` must be the whole last segment (as in /dir/**): {HINT}"),
        ("files.read", "/a/b**", f"`**` must be the whole last segment (as in /dir/**): {HINT}"),
        ("files.read", "/**/b", f"`**` must be the whole last segment (as in /dir/**): {HINT}"),
        ("files.read", "/a*/**", f"`*` together with `**`: {HINT}"),
        ("files.read", "/a/*b*", f"2 `*` in one pattern: {HINT}"),
        ("files.read", "/" + "a" * PATH_MAX_BYTES, "the literal part is 241 bytes, above the 240 bytes"),
        ("files.read", "/" + "a" * PATH_MAX_BYTES + "/**", "the literal part is 242 bytes"),
        ("files.read", "/a*" + "b" * 17, "the text after `*` is 17 bytes, above the 16 bytes"),
        ("files.read", "/" + "a" * 230 + "*" + "b" * 16, "never matches: it needs 247 bytes"),
        ("files.read", "/\ud800", "is not valid UTF-8 text"),
        ("env.read", "", "empty environment variable name"),
        ("env.read", "A=B", "'=' cannot be part of an environment variable name"),
        ("env.read", "A\0", "holds a NUL byte"),
        ("env.read", "A*B*", "2 `*` in one environment variable name: gohook matches one `*` in a name"),
        ("env.read", "A?", "`?` is not a wildcard gohook knows"),
        ("env.read", "A" * 241, "the literal part is 241 bytes"),
        ("env.read", "*" + "A" * 17, "the text after `*` is 17 bytes"),
        ("network.connect", "10.0.0.0/33:443", "prefix length 33 is out of range for IPv4"),
        ("network.connect", "[fd00::/129]:443", "prefix length 129 is out of range for IPv6"),
        ("network.connect", "10.0.0.0/x:443", "bad prefix length 'x' (a number 0..32 for IPv4)"),
        ("network.connect", "10.0.0.1/8:443", "10.0.0.1/8 has host bits set: did you mean 10.0.0.0/8?"),
        ("network.connect", "[fd00::1/8]:443", "fd00::1/8 has host bits set: did you mean [fd00::/8]?"),
        ("network.connect", "10.0.0.256:443", "bad IPv4 address '10.0.0.256'"),
        ("network.connect", "localhost:443", "bad IPv4 address 'localhost' (host names are not resolved"),
        ("network.connect", "[fd00::g]:443", "bad IPv6 address 'fd00::g'"),
        ("network.connect", "[10.0.0.1]:443", "IPv4 addresses go without brackets: 10.0.0.1:PORT"),
        ("network.connect", "[fe80::1%eth0]:443", "zone index in 'fe80::1%eth0' is not supported"),
        ("network.connect", "1.2.3.4:70000", "port 70000 is above 65535"),
        ("network.connect", "1.2.3.4:-1", "bad port '-1': write a number 0..65535, or * for any port"),
        ("network.connect", "1.2.3.4:http", "bad port 'http'"),
        ("network.connect", "1.2.3.4", "missing port: write IP:port, or IP:* for any port"),
        ("network.connect", "1.2.3.4:", "missing port: write IP:port, or IP:* for any port"),
        ("network.connect", "10.0.0.0/8", "missing port: write IP:port, or IP:* for any port"),
        ("network.connect", "[::1]", "missing port: write IP:port, or IP:* for any port"),
        ("network.connect", "[::1]443", "expected :port after ']'"),
        ("network.connect", "[::1:443", "missing ']' after the IPv6 address"),
        ("network.connect", "::1:443", "an IPv6 address goes in brackets"),
        ("network.connect", ":443", "missing IP address before :port"),
        ("network.listen", "*:443", "`*` is not an address"),
        ("network.connect", "unix:run/x.sock", "write unix:/path for a socket file or unix:@name"),
        ("network.connect", "unix:/run/../x", NORM),
        ("network.connect", "unix:/run/**/x", "`**` must be the whole last segment"),
        ("network.connect", "unix:@", "empty abstract socket name"),
        ("network.connect", "unix:@a*b*", "2 `*` in one abstract socket name"),
        ("system.read", "/x", "system.read takes no argument patterns: grant it with `any`"),
    ],
)
def test_pattern_errors(capability: str, text: str, message: str) -> None:
    with pytest.raises(PatternError) as exc:
        parse_pattern(capability, text)
    assert message in str(exc.value)
    assert not re.match(r"\S+:\d+:", str(exc.value))  # no file:line: the loader adds them


# --- matching tables -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "yes", "no"),
    [
        ("/etc/hosts", ["/etc/hosts"], ["/etc/hosts/", "/etc/host", "/etc/hostsx", "etc/hosts", "/etc//hosts"]),
        ("/etc/acme/**", ["/etc/acme", "/etc/acme/", "/etc/acme/a", "/etc/acme/a/b/c.yaml"],
         ["/etc/acmex", "/etc/acme/../passwd", "/etc/acme/./x", "/etc/acme//x", "/etc/acme/..", "/etc/acme/.",
          "etc/acme/x", "acme/x", "/etc/acme/x\0", "/etc/acme/" + "a" * 240]),
        ("/**", ["/", "/etc/shadow", "/a/b/"], ["", ".", "..", "x", "./x", "/a/../b", "//x", "/a//"]),
        ("/var/lib/acme/*.yaml", ["/var/lib/acme/a.yaml", "/var/lib/acme/.yaml", "/var/lib/acme/x.y.yaml"],
         ["/var/lib/acme/a/b.yaml", "/var/lib/acme/a.yml", "/var/lib/acme/a.yaml/", "/var/lib/acme/../x.yaml",
          "/var/lib/acme/a.yaml.bak"]),
        ("/run/*", ["/run/", "/run/x", "/run/x.sock"], ["/run", "/run/x/y", "/run/x/", "/run/.."]),
        ("/a*a", ["/aa", "/aba"], ["/a", "/a/a"]),
        ("/tmp/é*", ["/tmp/é", "/tmp/éa"], ["/tmp/e"]),
    ],
)
def test_path_matching(text: str, yes: list[str], no: list[str]) -> None:
    p = parse_pattern("files.read", text)
    assert [a for a in yes if not pattern_matches(p, a)] == []
    assert [a for a in no if pattern_matches(p, a)] == []


def test_long_paths_fail_closed() -> None:
    p = parse_pattern("files.read", "/**")
    exactly = "/" + "a" * (PATH_MAX_BYTES - 1)
    assert pattern_matches(p, exactly) and not pattern_matches(p, exactly + "a")
    assert not pattern_matches(p, "/" + "é" * 120)  # 241 bytes in UTF-8, 121 characters
    assert pattern_matches(parse_pattern("files.read", exactly), exactly)


def test_surrogate_escaped_paths_are_their_bytes() -> None:
    p = parse_pattern("files.read", "/tmp/\udcff")  # byte 0xff, as os.fsdecode gives it
    assert pattern_matches(p, "/tmp/\udcff") and not pattern_matches(p, "/tmp/\ud800")


@pytest.mark.parametrize(
    ("text", "yes", "no"),
    [
        ("HOME", ["HOME"], ["HOMEX", "home", "HOM", ""]),
        ("OTEL_*", ["OTEL_", "OTEL_EXPORTER_OTLP_ENDPOINT"], ["OTEL", "XOTEL_A", "OTEL_A\0"]),
        ("*_URL", ["_URL", "DATABASE_URL"], ["DATABASE_URL_X", "URL"]),
        ("PG*FILE", ["PGFILE", "PGPASSFILE"], ["PGFIL", "XPGFILE", "PGFILEX"]),
        ("A*A", ["AA", "ABA"], ["A"]),
        ("*", ["", "ANYTHING", "a=b"], ["A" * 241, "A\0"]),
    ],
)
def test_name_matching(text: str, yes: list[str], no: list[str]) -> None:
    p = parse_pattern("env.read", text)
    assert [a for a in yes if not pattern_matches(p, a)] == []
    assert [a for a in no if pattern_matches(p, a)] == []


@pytest.mark.parametrize(
    ("text", "yes", "no"),
    [
        ("127.0.0.1:4317", ["127.0.0.1:4317", "[::ffff:127.0.0.1]:4317", "[::ffff:7f00:1]:4317"],
         ["127.0.0.1:4318", "127.0.0.2:4317", "[::1]:4317", "[::127.0.0.1]:4317", "localhost:4317",
          "unix:/127.0.0.1:4317", "127.0.0.1:04317x", "127.0.0.1", "family 17: 00"]),
        ("10.0.0.0/8:443", ["10.0.0.1:443", "10.255.255.255:443", "[::ffff:10.1.2.3]:443"],
         ["11.0.0.1:443", "10.0.0.1:80", "[fd00::1]:443", "0.0.0.0:443", ":443"]),
        ("[::1]:*", ["[::1]:0", "[::1]:65535"], ["127.0.0.1:80", "[::2]:80", "[::1]:65536", "[::1]:-1"]),
        ("[fd00::/8]:*", ["[fd12::1]:5432", "[fdff:ffff::]:1"], ["[fe00::]:1", "10.0.0.1:1"]),
        ("0.0.0.0:8080", [":8080", "0.0.0.0:8080", "[::]:8080", "[::ffff:0.0.0.0]:8080"],
         [":8081", "127.0.0.1:8080", "[::1]:8080"]),
        ("[::]:8080", [":8080", "0.0.0.0:8080", "[::]:8080"], ["[::1]:8080"]),
        ("0.0.0.0/0:80", ["1.2.3.4:80", "255.255.255.255:80", "[::ffff:1.2.3.4]:80"],
         ["0.0.0.0:80", ":80", "[::]:80", "[::1]:80"]),  # the unspecified address is ::, not an IPv4 one
        ("[::/0]:80", ["1.2.3.4:80", "[::1]:80", ":80", "0.0.0.0:80"], ["1.2.3.4:81"]),
        ("unix:/run/otel/*.sock", ["unix:/run/otel/a.sock"],
         ["unix:/run/otel/a/b.sock", "unix:/run/otel/../x.sock", "unix:run/otel/a.sock", "unix:@/run/otel/a.sock",
          "/run/otel/a.sock", "127.0.0.1:80"]),
        ("unix:@otel-*", ["unix:@otel-", "unix:@otel-collector"], ["unix:/otel-x", "unix:otel-x", "unix:@otel"]),
        ("unix:@*.sock", ["unix:@a/b.sock"], ["unix:@a.sock.x"]),
    ],
)
def test_address_matching(text: str, yes: list[str], no: list[str]) -> None:
    p = parse_pattern("network.connect", text)
    assert [a for a in yes if not pattern_matches(p, a)] == []
    assert [a for a in no if pattern_matches(p, a)] == []


# --- properties against independent oracles ------------------------------------------------------

def _clean_oracle(path: str) -> bool:
    """Segment-wise: absolute; no empty segment but a final one; no `.` or `..`; at most 240 bytes; no NUL."""
    if not path.startswith("/") or "\0" in path or len(path.encode()) > PATH_MAX_BYTES:
        return False
    segs = path.split("/")[1:]
    return all(s not in ("", ".", "..") for s in segs[:-1]) and segs[-1] not in (".", "..")


def _path_regex(text: str) -> re.Pattern[str]:
    if text.endswith("/**"):
        return re.compile(re.escape(text[:-3]) + "(?:/.*)?", re.DOTALL)
    return re.compile("[^/]*".join(re.escape(part) for part in text.split("*")), re.DOTALL)


SEG = st.sampled_from(["a", "b", "ab", ".", "..", "", "*", "a*", "*b", "**", "x.y"])
PATHS = st.lists(st.sampled_from(["a", "b", "ab", ".", "..", "", "x.y", "b/a"]), min_size=0, max_size=5).map(
    lambda segs: "/" + "/".join(segs)) | st.text(alphabet="ab./", max_size=10)


@settings(max_examples=400, deadline=None)
@given(st.lists(SEG, min_size=1, max_size=4), st.lists(PATHS, min_size=1, max_size=12))
def test_path_matching_agrees_with_regex_oracle(segs: list[str], args: list[str]) -> None:
    text = "/" + "/".join(segs)
    try:
        p = parse_pattern("files.read", text)
    except PatternError:
        assume(False)
        return
    rx = _path_regex(text)
    for a in args:
        assert pattern_matches(p, a) == (_clean_oracle(a) and rx.fullmatch(a) is not None), (text, a)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="AB_*", min_size=1, max_size=6), st.lists(st.text(alphabet="AB_", max_size=7), max_size=10))
def test_name_matching_agrees_with_regex_oracle(text: str, args: list[str]) -> None:
    assume(text.count("*") <= 1)
    p = parse_pattern("env.read", text)
    rx = re.compile(".*".join(re.escape(part) for part in text.split("*")), re.DOTALL)
    for a in args:
        assert pattern_matches(p, a) == (rx.fullmatch(a) is not None), (text, a)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 32), st.integers(0, 2**32 - 1), st.integers(0, 65535),
       st.booleans(), st.booleans())
def test_ipv4_rules_agree_with_ipaddress(net: int, length: int, ip: int, port: int, other_port: bool,
                                         mapped: bool) -> None:
    network = ipaddress.IPv4Network((net, length), strict=False)
    p = parse_pattern("network.connect", f"{network}:{port}")
    addr = ipaddress.IPv4Address(ip)
    arg_port = (port + 1) % 65536 if other_port else port
    arg = f"[::ffff:{addr}]:{arg_port}" if mapped else f"{addr}:{arg_port}"
    # the unspecified address 0.0.0.0 is matched as ::, which only 0.0.0.0/32 (:: itself) holds
    unspecified_rule = network.prefixlen == 32 and int(network.network_address) == 0
    expected = addr in network if ip else unspecified_rule
    assert pattern_matches(p, arg) == (expected and not other_port), (str(network), arg)


# --- covers --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("capability", "old", "new", "expected"),
    [
        ("files.read", "/etc/**", "/etc/acme/**", True),
        ("files.read", "/etc/**", "/etc", True),
        ("files.read", "/etc/**", "/etc/*.conf", True),
        ("files.read", "/etc/acme/**", "/etc/**", False),
        ("files.read", "/etc/*", "/etc/a.yaml", True),
        ("files.read", "/etc/*", "/etc/a/b", False),
        ("files.read", "/etc/*", "/etc/**", False),
        ("files.read", "/etc/*.yaml", "/etc/app-*.yaml", True),
        ("files.read", "/etc/*.yaml", "/etc/*.yml", False),
        ("files.read", "/etc/*", "/etc/a*", True),
        ("files.read", "/e*", "/etc/*", False),
        ("files.read", "/**", "/x/y/*.z", True),
        ("files.read", "/a/b", "/a/b", True),
        ("env.read", "OTEL_*", "OTEL_EXPORTER_*", True),
        ("env.read", "OTEL_*", "OTEL_A", True),
        ("env.read", "*_URL", "DB_*_URL", True),
        ("env.read", "*_URL", "DB_URL", True),
        ("env.read", "*_URL", "DB_*", False),
        ("env.read", "DB_*", "*_URL", False),
        ("env.read", "*", "X*Y", True),
        ("network.connect", "10.0.0.0/8:*", "10.1.0.0/16:443", True),
        ("network.connect", "10.0.0.0/8:443", "10.1.0.0/16:*", False),
        ("network.connect", "10.0.0.0/8:443", "10.1.2.3:443", True),
        ("network.connect", "10.0.0.0/8:443", "10.1.2.3:80", False),
        ("network.connect", "10.0.0.0/16:443", "10.0.0.0/8:443", False),
        ("network.connect", "[::/0]:443", "10.0.0.0/8:443", True),
        ("network.connect", "[::ffff:10.0.0.0/104]:443", "10.0.0.0/8:443", True),
        ("network.connect", "unix:/run/**", "unix:/run/x.sock", True),
        ("network.connect", "unix:/run/**", "unix:@run", False),
        ("network.connect", "unix:@*", "unix:@x", True),
        ("network.connect", "unix:/**", "10.0.0.0/8:443", False),
    ],
)
def test_covers_table(capability: str, old: str, new: str, expected: bool) -> None:
    assert covers(parse_pattern(capability, old), parse_pattern(capability, new)) is expected


def test_covers_never_crosses_kinds() -> None:
    assert not covers(parse_pattern("files.read", "/**"), parse_pattern("env.read", "*"))
    assert not covers(parse_pattern("env.read", "*"), parse_pattern("files.read", "/a"))


SHORT_PATHS = ["/" + "".join(t) for n in range(6) for t in itertools.product("ab/.", repeat=n)]
PATTERN_SEGS = st.sampled_from(["a", "b", "ab", "*", "a*", "*b", "a*b", "**", "."])


@settings(max_examples=300, deadline=None)
@given(st.lists(PATTERN_SEGS, min_size=1, max_size=3), st.lists(PATTERN_SEGS, min_size=1, max_size=3))
def test_covers_is_sound_on_every_short_path(old_segs: list[str], new_segs: list[str]) -> None:
    try:
        old = parse_pattern("files.read", "/" + "/".join(old_segs))
        new = parse_pattern("files.read", "/" + "/".join(new_segs))
    except PatternError:
        assume(False)
        return
    if covers(old, new):
        assert [a for a in SHORT_PATHS if new.matches(a) and not old.matches(a)] == []  # type: ignore[union-attr]
    assert covers(new, new)


SHORT_NAMES = ["".join(t) for n in range(6) for t in itertools.product("AB_", repeat=n)]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="AB*", min_size=1, max_size=4), st.text(alphabet="AB*", min_size=1, max_size=4))
def test_name_covers_is_sound(old_text: str, new_text: str) -> None:
    assume(old_text.count("*") <= 1 and new_text.count("*") <= 1)
    old, new = parse_pattern("env.read", old_text), parse_pattern("env.read", new_text)
    if covers(old, new):
        assert [a for a in SHORT_NAMES if new.matches(a) and not old.matches(a)] == []  # type: ignore[union-attr]


# --- helpers -------------------------------------------------------------------------------------

def test_port_limit_violation_is_the_ninth_distinct_port() -> None:
    pats = [parse_pattern("network.connect", f"10.0.0.0/8:{p}") for p in range(1, 9)]
    assert port_limit_violation(pats) is None
    assert port_limit_violation([*pats, parse_pattern("network.connect", "10.0.0.0/8:1")]) is None  # not distinct
    assert port_limit_violation([*pats, parse_pattern("network.connect", "10.0.0.0/8:*")]) is None  # any port
    assert port_limit_violation([*pats, parse_pattern("network.connect", "10.0.0.0/16:9")]) is None  # other network
    ninth = parse_pattern("network.connect", "[::ffff:10.0.0.0/104]:9")  # the same network, written as IPv6
    assert port_limit_violation([*pats, ninth]) == ninth


def test_network_text() -> None:
    assert [network_text(parse_pattern("network.connect", t).network) for t in  # type: ignore[union-attr]
            ("10.0.0.0/8:1", "1.2.3.4:1", "0.0.0.0/0:1", "[fd00::/8]:1", "[::1]:1", "0.0.0.0:1")] == [
        "10.0.0.0/8", "1.2.3.4", "0.0.0.0/0", "[fd00::/8]", "[::1]", "[::]"]
