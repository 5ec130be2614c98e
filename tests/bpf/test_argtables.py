"""The maps of argument-scoped grants (gohook.bpf.argtables): the kernel's algorithm over them must decide
exactly as the reference semantics of gohook.policy.patterns, for every argument; and the packed bytes must
be what the C structs hold."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gohook.bpf.abi import ADDRKEY, ADDRVAL, GLOBKEY, GLOBVAL, HOOKSCOPE, NOCAP, NOREG, ArgClass, ArgKind, HookKind
from gohook.bpf.argtables import build_arg_tables, clean_path_last_slash, match_address, match_glob
from gohook.bpf.errors import PlanTableError
from gohook.bpf.render import render_defines
from gohook.plan.model import ArgPattern, ArgRead, ArgScope, EnforcementPlan, HookPoint
from gohook.policy.patterns import AddressPattern, UnixPattern, parse_pattern, pattern_matches

TEXT = 0x401000
CAPS = ("files.read", "files.write", "network.connect", "network.listen", "exec", "env.read")
BIT = {c: i for i, c in enumerate(CAPS)}

PATH_PATTERNS = ("/etc/acme/**", "/var/lib/acme/*.yaml", "/var/lib/acme/*.json", "/var/lib/acme/state",
                 "/etc/acme/secret/key.pem", "/tmp/*", "/srv/a*b", "/**")
ENV_PATTERNS = ("OTEL_*", "*_URL", "HOME", "PG*FILE", "A")
ADDR_PATTERNS = ("127.0.0.1:4317", "10.0.0.0/8:443", "10.1.0.0/16:*", "[::1]:*", "[fd00::/8]:80", "0.0.0.0:8080",
                 "10.1.2.0/24:22")
UNIX_PATTERNS = ("unix:/run/otel/*.sock", "unix:@agent*", "unix:/run/x.sock")


def _plan(patterns: list[tuple[int, str, str]], hooks: tuple[HookPoint, ...] = ()) -> EnforcementPlan:
    scoped: dict[int, int] = {}
    arg_patterns = []
    for module, cap, text in patterns:
        scoped[module] = scoped.get(module, 0) | 1 << BIT[cap]
        arg_patterns.append(ArgPattern(module, BIT[cap], parse_pattern(cap, text)))
    hook = HookPoint(hook_id=0, function="syscall.openat", entry=TEXT + 0x100, probe=TEXT + 0x100, file_offset=0x100,
                     capability=0, arg=ArgRead(ArgKind.STRING, (1, 2)), scope=ArgScope(ArgClass.PATH, dirfd_reg=0))
    return EnforcementPlan(binary="/bin/app", pie=False, text_start=TEXT, text_end=TEXT + 0x10000, capabilities=CAPS,
                           modules=("m1", "m2"), ranges=(), hooks=hooks or (hook,), scoped=scoped,
                           arg_patterns=tuple(arg_patterns))


PLAN = _plan([(1, "files.read", p) for p in PATH_PATTERNS] + [(1, "env.read", p) for p in ENV_PATTERNS]
             + [(1, "network.connect", p) for p in ADDR_PATTERNS + UNIX_PATTERNS]
             + [(2, "files.read", "/home/app/**")])
TABLES = build_arg_tables(PLAN)


def _reference(module: int, cap: str, argument: str) -> set[int]:
    """Pattern ids (1-based) of module's cap whose reference semantics allow argument."""
    return {i for i, ap in enumerate(PLAN.arg_patterns, 1)
            if ap.module == module and ap.capability == BIT[cap] and pattern_matches(ap.pattern, argument)}


_path_bits = st.sampled_from(["/", "etc", "acme", "var", "lib", "state", "x.yaml", "y.json", ".", "..", "", "tmp",
                              "secret", "key.pem", "srv", "ab", "a", "b", "home", "app"])
paths = st.lists(_path_bits, max_size=6).map(lambda parts: "/".join(parts)) | st.text(max_size=30)


@settings(max_examples=600, deadline=None)
@given(paths)
def test_paths_decide_as_the_reference(path: str) -> None:
    """Whatever the path (clean or not, relative, traversal, `//`), the kernel's lookup allows it exactly when a
    pattern of the module allows it, and names one of those patterns."""
    assert TABLES is not None
    data = path.encode("utf-8", "surrogatepass")
    for module in (1, 2):
        got = match_glob(TABLES, module, BIT["files.read"], ArgClass.PATH, data)
        want = _reference(module, "files.read", path)
        assert (got != 0) == bool(want), (path, module, got, want)
        assert not got or got in want


names = st.sampled_from(["OTEL_", "X", "_URL", "HOME", "PG", "FILE", "A", "B", "\0", "="]).map(str) \
    | st.text(max_size=12)


@settings(max_examples=400, deadline=None)
@given(st.lists(names, max_size=4).map("".join))
def test_names_decide_as_the_reference(name: str) -> None:
    assert TABLES is not None
    got = match_glob(TABLES, 1, BIT["env.read"], ArgClass.ENV, name.encode("utf-8", "surrogatepass"))
    want = _reference(1, "env.read", name)
    assert (got != 0) == bool(want) and (not got or got in want), (name, got, want)


addresses = st.sampled_from(["127.0.0.1", "10.0.0.1", "10.1.9.9", "10.1.2.3", "11.0.0.1", "0.0.0.0", "::1", "::",
                             "fd00::5", "fe80::1", "::ffff:10.1.2.3", "::ffff:127.0.0.1"])
ports = st.sampled_from([0, 22, 80, 443, 4317, 8080, 65535])


@settings(max_examples=400, deadline=None)
@given(addresses, ports)
def test_addresses_decide_as_the_reference(ip: str, port: int) -> None:
    """IPv4 as IPv4-mapped IPv6, the unspecified address as ::; the most specific network first, then the
    ones containing it, each with its ports."""
    assert TABLES is not None
    addr = ipaddress.ip_address(ip)
    v6 = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + addr.packed) if addr.version == 4 else addr
    if v6 == ipaddress.IPv6Address("::ffff:0.0.0.0"):
        v6 = ipaddress.IPv6Address("::")
    text = f"{ip}:{port}" if addr.version == 4 else f"[{ip}]:{port}"
    got = match_address(TABLES, 1, BIT["network.connect"], v6, port)
    want = {i for i in _reference(1, "network.connect", text)
            if isinstance(PLAN.arg_patterns[i - 1].pattern, AddressPattern)}
    assert (got != 0) == bool(want) and (not got or got in want), (text, got, want)


@pytest.mark.parametrize(("argument", "abstract", "allowed"), [
    ("/run/otel/a.sock", False, True), ("/run/otel/a.socket", False, False), ("/run/otel/x/a.sock", False, False),
    ("/run/x.sock", False, True), ("/run/otel/../x.sock", False, False), ("agent-1", True, True),
    ("other", True, False)])
def test_unix_names(argument: str, abstract: bool, allowed: bool) -> None:
    assert TABLES is not None
    got = match_glob(TABLES, 1, BIT["network.connect"], ArgClass.ABSTRACT if abstract else ArgClass.UNIX,
                     argument.encode())
    text = ("unix:@" if abstract else "unix:") + argument
    want = {i for i in _reference(1, "network.connect", text)
            if isinstance(PLAN.arg_patterns[i - 1].pattern, UnixPattern)}
    assert (got != 0) == allowed == bool(want)


@pytest.mark.parametrize(("path", "last"), [("/", 0), ("/etc/", 4), ("/etc/x", 4), ("/a//b", -1), ("/a/./b", -1),
                                            ("/a/..", -1), ("a/b", -1), ("/a/...", 2), ("/a\0b", -1), ("", -1)])
def test_clean_path(path: str, last: int) -> None:
    assert clean_path_last_slash(path.encode()) == last


def test_packed_entries_have_the_c_sizes() -> None:
    assert TABLES is not None
    for key, value in TABLES.glob_items():
        assert len(key) == GLOBKEY.size and len(value) == GLOBVAL.size
        prefixlen = int.from_bytes(key[:4], "little")
        assert prefixlen >= 32 and (prefixlen - 32) % 8 == 0
    for key, value in TABLES.addr_items():
        assert len(key) == ADDRKEY.size and len(value) == ADDRVAL.size
    assert TABLES.module_scoped == (0, 1 << BIT["files.read"] | 1 << BIT["env.read"] | 1 << BIT["network.connect"],
                                    1 << BIT["files.read"])
    (scope,) = TABLES.hook_scopes.values()
    fields = dict(zip(HOOKSCOPE.value_fields, HOOKSCOPE.format.unpack(scope)[:-1], strict=True))
    assert fields == {"arg_class": ArgClass.PATH, "dirfd_reg": 0, "second_ptr": NOREG, "second_len": NOREG,
                      "second_dirfd": NOREG, "second_cap0": NOCAP, "second_cap1": NOCAP}


def test_a_plan_without_scopes_has_no_tables_and_no_define() -> None:
    plan = _plan([])
    assert build_arg_tables(plan) is None
    assert "GOHOOK_ARG_RULES" not in render_defines(plan)
    assert render_defines(PLAN)["GOHOOK_ARG_RULES"] == "1"


def test_hook_scopes_only_for_go_function_hooks() -> None:
    """A raw system-call hook (RAWCALL) never defers to the argument check: it gets no scope entry."""
    raw = HookPoint(hook_id=1, function="syscall.Syscall6", entry=TEXT, probe=TEXT, file_offset=0, capability=0,
                    arg=ArgRead(ArgKind.STRING, (1, 2)), kind=HookKind.RAWCALL, syscall_args=6,
                    scope=ArgScope(ArgClass.PATH))
    tables = build_arg_tables(_plan([(1, "files.read", "/x")], hooks=(raw,)))
    assert tables is not None and tables.hook_scopes == {}


def test_too_many_globs_on_one_prefix() -> None:
    with pytest.raises(PlanTableError, match="share the literal prefix '/d/'"):
        build_arg_tables(_plan([(1, "files.read", f"/d/*.{ext}") for ext in ("a", "b", "c", "d", "e")]))


def test_too_deep_a_nest_of_prefixes() -> None:
    nested = ["/a" + "/a" * i for i in range(9)]
    with pytest.raises(PlanTableError, match="the kernel tries at most 8"):
        build_arg_tables(_plan([(1, "files.read", p) for p in nested]))


def test_too_many_ports_on_one_network() -> None:
    with pytest.raises(PlanTableError, match="more than 8 ports"):
        build_arg_tables(_plan([(1, "network.connect", f"127.0.0.1:{p}") for p in range(1, 10)]))
