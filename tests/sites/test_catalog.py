"""Tests of the capability catalog (gohook/sites/catalog.yaml, gohook/sites/catalog/).

Fast unit tests of the loader, its API and its validation, plus one test per
installed Go toolchain that builds testdata/go/catalogprobe (a program calling
every public API the catalog promises to funnel) and checks, with `go tool nm`
as an oracle independent of gohook, that every hook function the catalog
lists for that Go release is in the binary, and, by running the probe, that
the struct field offsets the catalog records match the compiler's.

Probe builds are cached under build/catalogprobe/<go version>/, keyed by a hash
of the probe sources, the toolchain and the build mode.
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import gofixtures
import pytest
import yaml
from gofixtures import Toolchain

from gohook.errors import GohookError
from gohook.sites.catalog import (
    ArgKind,
    CatalogError,
    FlagRule,
    GoVersion,
    Location,
    Presence,
    Register,
    UnknownCapabilityError,
    ValueRule,
    VersionRange,
    load_catalog,
    parse_catalog,
    parse_signature,
)

REPO = Path(__file__).resolve().parents[2]
PROBE_SOURCE = REPO / "testdata" / "go" / "catalogprobe"
PROBE_BUILD = REPO / "build" / "catalogprobe"
CATALOG_YAML = REPO / "gohook" / "sites" / "catalog.yaml"

O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND, O_CLOEXEC, O_DIRECTORY = (
    0,
    0x1,
    0x2,
    0x40,
    0x200,
    0x400,
    0x80000,
    0x10000,
)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def raw_doc() -> dict[str, Any]:
    return yaml.safe_load(CATALOG_YAML.read_text())


# --- the packaged catalog and its API ------------------------------------------------


def test_packaged_catalog_loads_through_importlib_resources(catalog) -> None:
    assert catalog.capabilities and catalog.entries and catalog.gaps
    assert [str(v) for v in catalog.verified] == ["1.19", "1.21", "1.24", "1.27"]


def test_capabilities_have_stable_unique_bits_in_order(catalog) -> None:
    names = [c.name for c in catalog.capabilities]
    assert names == [
        "files.read",
        "files.write",
        "network.connect",
        "network.listen",
        "exec",
        "env.read",
        "env.write",
        "system.read",
        "system.modify",
        "syscall",
        "cgo",
        "plugin",
        "memory.exec",
        "io_uring",
        "process.debug",
        "kernel.trace",
        "tamper",
    ]
    assert [c.bit for c in catalog.capabilities] == list(range(17))
    assert all(c.description and c.capslock for c in catalog.capabilities)
    assert catalog.capability("files.read").capslock == ("CAPABILITY_FILES",)
    assert catalog.capability("syscall").capslock == ("CAPABILITY_SYSTEM_CALLS",)


def test_expand_capability_family_and_all(catalog) -> None:
    assert [c.name for c in catalog.expand("files")] == ["files.read", "files.write"]
    assert [c.name for c in catalog.expand("network.listen")] == ["network.listen"]
    assert [c.name for c in catalog.expand("exec")] == ["exec"]
    assert catalog.expand("all") == tuple(c for c in catalog.capabilities if c.name != "tamper")
    assert [c.name for c in catalog.expand("tamper")] == ["tamper"]  # only by name
    assert catalog.families == (
        "files", "network", "exec", "env", "system", "syscall", "cgo", "plugin",
        "memory", "io_uring", "process", "kernel", "tamper",
    )
    assert "all" in catalog.names and "files" in catalog.names


def test_unknown_capability_is_a_typed_error_with_a_suggestion(catalog) -> None:
    with pytest.raises(UnknownCapabilityError, match=r"'files\.raed'.*did you mean files\.read") as info:
        catalog.expand("files.raed")
    assert isinstance(info.value, CatalogError) and isinstance(info.value, GohookError)
    with pytest.raises(UnknownCapabilityError):
        catalog.capability("network")  # a family, not a capability


def test_masks_round_trip(catalog) -> None:
    mask = catalog.mask(["files", "network.connect"])
    assert mask == 0b0111
    assert catalog.names_of(mask) == ("files.read", "files.write", "network.connect")
    assert catalog.mask(["all"]) == (1 << 16) - 1  # every bit but tamper (16)
    assert catalog.mask([]) == 0


def test_open_flag_rule_decides_read_or_write(catalog) -> None:
    (openat,) = catalog.hooks_named("syscall.openat", GoVersion.parse("go1.27.3"))
    rule = openat.rule
    assert isinstance(rule, FlagRule)
    assert rule.at == Location(register=Register.RDI) and rule.at.register.pt_regs == "di"
    assert openat.capabilities == {"files.read", "files.write"}
    reads = [O_RDONLY | O_CLOEXEC, O_RDONLY | O_DIRECTORY | O_CLOEXEC]
    writes = [O_WRONLY, O_RDWR, O_RDONLY | O_CREAT, O_RDONLY | O_TRUNC, O_WRONLY | O_APPEND | O_CREAT]
    assert {rule.evaluate(f) for f in reads} == {"files.read"}
    assert {rule.evaluate(f) for f in writes} == {"files.write"}
    path = openat.argument
    assert path is not None and path.kind is ArgKind.STRING
    assert [str(loc) for loc in path.at] == ["rbx", "rcx"]


def test_syscall_number_rule_on_assembly_function(catalog) -> None:
    (spec,) = catalog.hooks_named("syscall.rawSyscallNoError", GoVersion(1, 21))
    assert spec.abi == "abi0" and spec.direct_caller_only
    rule = spec.rule
    assert isinstance(rule, ValueRule)
    assert rule.at == Location(stack_offset=8)
    assert rule.evaluate(102) == "system.read"  # getuid
    assert rule.evaluate(95) == "system.modify"  # umask
    assert rule.evaluate(0) is None


def test_per_version_names(catalog) -> None:
    old = {s.function for s in catalog.hooks_for(GoVersion(1, 19))}
    new = {s.function for s in catalog.hooks_for(GoVersion(1, 21))}
    assert "net.(*sysListener).listenTCP" in old and "net.(*sysListener).listenTCPProto" not in old
    assert "net.(*sysListener).listenTCPProto" in new and "net.(*sysListener).listenTCP" not in new
    (tcp,) = catalog.hooks_named("net.(*sysListener).listenTCPProto", GoVersion(1, 27))
    laddr = tcp.argument
    assert laddr is not None and laddr.kind is ArgKind.STRUCT
    assert [(f.name, f.offset) for f in laddr.fields] == [("ip", 0), ("port", 24)]
    assert "internal/syscall/unix.Mkdirat" not in catalog.function_names(GoVersion(1, 21))
    assert "internal/syscall/unix.Mkdirat" in catalog.function_names(GoVersion(1, 24))
    assert "internal/syscall/unix.Fstatat" not in catalog.function_names(GoVersion(1, 21))


def test_every_capability_has_hooks_and_syscall_hooks_are_direct_only(catalog) -> None:
    v = GoVersion(1, 27)
    for cap in catalog.capabilities:  # `hooked: false`: only the system call classification names it (yet)
        assert bool(catalog.hooks_for_capability(cap.name, v)) == cap.hooked, cap.name
    for spec in catalog.hooks_for_capability("syscall", v):
        assert spec.direct_caller_only, spec.function
    assert {g.kind for g in catalog.gaps_for(v)} == {"cgo", "plugin", "raw_syscall", "exec"}


def test_spec_mask(catalog) -> None:
    (openat,) = catalog.hooks_named("syscall.openat", GoVersion(1, 19))
    assert catalog.spec_mask(openat) == 0b11


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.21", (1, 21)), ("go1.21.13", (1, 21)), ("go1.22rc1", (1, 22)), ("go1.27.3 X:nodwarf5", (1, 27))],
)
def test_go_version_parse(text: str, expected: tuple[int, int]) -> None:
    assert GoVersion.parse(text) == GoVersion(*expected)


def test_version_ranges() -> None:
    assert GoVersion(1, 22) in VersionRange.parse("1.21-")
    assert GoVersion(1, 20) not in VersionRange.parse("1.21-")
    assert GoVersion(1, 19) in VersionRange.parse("-1.20")
    assert VersionRange.parse("1.24-1.25").within(VersionRange.parse("1.21-"))
    assert not VersionRange.parse("-1.20").overlaps(VersionRange.parse("1.21-"))
    with pytest.raises(ValueError):
        VersionRange.parse("1.25-1.21")


def test_signature_register_assignment() -> None:
    name, params = parse_signature(
        "func (sl *sysListener) listenTCPProto(ctx context.Context, laddr *TCPAddr, proto int) (*TCPListener, error)",
        "internal",
    )
    assert name == "listenTCPProto"
    assert [(p.name, [str(w) for w in p.words]) for p in params] == [
        ("sl", ["rax"]),
        ("ctx", ["rbx", "rcx"]),
        ("laddr", ["rdi"]),
        ("proto", ["rsi"]),
    ]
    _, params = parse_signature("func forkExec(argv0 string, argv []string, attr *ProcAttr) (pid int, err error)", "x")
    assert [str(w) for p in params for w in p.words] == ["rax", "rbx", "rcx", "rdi", "rsi", "r8"]
    _, params = parse_signature("func rawSyscallNoError(trap, a1, a2, a3 uintptr) (r1, r2 uintptr)", "abi0")
    assert [str(w) for p in params for w in p.words] == ["stack+8", "stack+16", "stack+24", "stack+32"]


# --- validation: a broken catalog fails with one clear message ----------------------------


def _find_hook(doc: dict[str, Any], function: str) -> dict[str, Any]:
    return next(h for h in doc["hooks"] if h["function"] == function)


def _set(path: str, value: Any):
    def mutate(doc: dict[str, Any]) -> None:
        function, _, keys = path.partition(":")
        node: Any = _find_hook(doc, function)
        *parents, last = keys.split(".")
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _dup_bit(doc: dict[str, Any]) -> None:
    doc["capabilities"][1]["bit"] = 0


def _both(doc: dict[str, Any]) -> None:
    _find_hook(doc, "syscall.unlinkat")["rule"] = _find_hook(doc, "syscall.openat")["rule"]


def _unhooked_but_charged(doc: dict[str, Any]) -> None:
    doc["capabilities"][0]["hooked"] = False


def _hooked_but_never_charged(doc: dict[str, Any]) -> None:
    next(c for c in doc["capabilities"] if c["name"] == "io_uring").pop("hooked")


def _drop_key(doc: dict[str, Any]) -> None:
    del _find_hook(doc, "syscall.Getenv")["why"]


def _extra_key(doc: dict[str, Any]) -> None:
    _find_hook(doc, "syscall.Getenv")["captures"] = True


def _no_arguments(doc: dict[str, Any]) -> None:
    hook = _find_hook(doc, "syscall.Getenv")
    hook["arguments"] = []


def _variant_outside(doc: dict[str, Any]) -> None:
    hook = _find_hook(doc, "net.(*sysListener).listenTCP")
    hook["go"] = "1.19-1.20"


def _duplicate_hook(doc: dict[str, Any]) -> None:
    doc["hooks"].append(copy.deepcopy(_find_hook(doc, "syscall.Chdir")))


BROKEN = [
    (_set("syscall.unlinkat:capability", "files.delete"), r"unknown capability 'files\.delete'"),
    (
        _set("syscall.openat:arguments.0.at", ["rax", "rbx"]),
        r"hooks\[0\] syscall\.openat\.arguments\[0\]\.at: the signature puts 'path' in \[rbx, rcx\], not \[rax, rbx\]",
    ),
    (_set("syscall.openat:rule.at", "rsi"), r"rule\.at: parameter 'flags' is at rdi, not rsi"),
    (_set("syscall.openat:rule.mask", "0x643"), r"rule\.mask: expected an integer"),
    (_set("syscall.Getenv:arguments.0.at", ["rax", "rbp"]), r"unknown location 'rbp'"),
    (_set("syscall.Getenv:arguments.0.kind", "int"), r"a int takes 1 location\(s\), got 2"),
    (_set("syscall.Getenv:arguments.0.kind", "wstring"), r"unknown kind 'wstring'"),
    (_set("syscall.Getenv:signature", "func Getenv(key []byte) string"), r"a string cannot be read from parameter"),
    (_set("syscall.Getenv:signature", "func Lookup(key string) string"), r"declares 'Lookup'"),
    (_set("syscall.Getenv:signature", "func Getenv(key Str) string"), r"type 'Str' is not in the catalog's ABI"),
    (_set("syscall.Getenv:presence", "sometimes"), r"presence: expected always, cgo or not_inlined"),
    (_set("syscall.Getenv:go", "1.25-1.21"), r"empty Go version range"),
    (_set("net.(*sysListener).listenUDP:arguments.0.fields.1.offset", 20), r"20 is not a word-aligned offset"),
    (_dup_bit, r"capability files\.write: bit 0 already belongs to files\.read"),
    (_both, r"syscall\.unlinkat: give exactly one of capability and rule"),
    (_unhooked_but_charged, r"capability files\.read: is `hooked: false`, but a hook charges it"),
    (_hooked_but_never_charged, r"capability io_uring: no hook charges it"),
    (_drop_key, r"syscall\.Getenv: missing key\(s\) why"),
    (_extra_key, r"syscall\.Getenv: unknown key\(s\) captures"),
    (_no_arguments, r"syscall\.Getenv: no arguments: say why in not_captured"),
    (_variant_outside, r"Go range 1\.21- lies outside the entry's range 1\.19-1\.20"),
    (_duplicate_hook, r"syscall\.Chdir: listed twice"),
]


@pytest.mark.parametrize(("mutate", "message"), BROKEN, ids=[m for _, m in BROKEN])
def test_broken_catalog_raises_catalog_error(raw_doc: dict[str, Any], mutate, message: str) -> None:
    doc = copy.deepcopy(raw_doc)
    mutate(doc)
    with pytest.raises(CatalogError, match=message) as info:
        parse_catalog(yaml.safe_dump(doc, sort_keys=False), "broken.yaml")
    assert str(info.value).startswith("broken.yaml: ")
    assert "\n" not in str(info.value)


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(CatalogError, match=r"^bad\.yaml:5: invalid YAML"):
        parse_catalog("schema: 1\ncapabilities: []\nhooks: [\n  {a: }\n  - b\n", "bad.yaml")


def test_wrong_schema_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"unsupported schema 2"):
        parse_catalog("schema: 2\ncapabilities: []\nhooks: []\ngaps: []\n")
    with pytest.raises(CatalogError, match=r"cannot read"):
        load_catalog(tmp_path / "nope.yaml")


# --- the probe program, built with every installed toolchain ----------------------------


def _gocache(toolchain: Toolchain) -> Path:
    shared = gofixtures.GOHOOK_CACHE / "gocache" / toolchain.version
    try:
        shared.mkdir(parents=True, exist_ok=True)
        if os.access(shared, os.W_OK):
            return shared
    except OSError:
        pass
    return PROBE_BUILD / "gocache" / toolchain.version


def _go_env(toolchain: Toolchain, cgo: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GO", "CGO_"))}
    env.setdefault("HOME", str(PROBE_BUILD))
    env.update(
        GOTOOLCHAIN="local",
        GOENV="off",
        GOTELEMETRY="off",
        GOPROXY="off",
        GOFLAGS="-mod=mod",
        GOCACHE=str(_gocache(toolchain)),
        CGO_ENABLED="1" if cgo else "0",
    )
    return env


def _source_hash() -> str:
    h = hashlib.sha256()
    for path in sorted(PROBE_SOURCE.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(PROBE_SOURCE).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def build_probe(toolchain: Toolchain, cgo: bool) -> Path:
    """Build (or reuse) the probe binary for one toolchain and mode.

    A lock file serializes concurrent test processes; the binary is written
    under a private name and renamed into place.
    """
    mode = "cgo" if cgo else "default"
    out_dir = PROBE_BUILD / toolchain.version
    key = f"{_source_hash()}-{toolchain.version}-{mode}"
    out = out_dir / f"catalogprobe-{mode}"
    stamp = out_dir / f"catalogprobe-{mode}.key"
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / f".catalogprobe-{mode}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.exists() and stamp.exists() and stamp.read_text() == key:
            return out
        if cgo and shutil.which("gcc") is None and not gofixtures.in_ci():
            pytest.skip("gcc is missing (scripts/setup.sh installs it): cannot build the cgo probe")
        tmp = out_dir / f".catalogprobe-{mode}.{os.getpid()}.tmp"
        proc = subprocess.run(
            [str(toolchain.go), "build", "-trimpath", "-o", str(tmp), "."],
            cwd=PROBE_SOURCE,
            env=_go_env(toolchain, cgo),
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert proc.returncode == 0, f"building catalogprobe ({mode}) with {toolchain} failed:\n{proc.stderr}"
        tmp.replace(out)
        stamp.write_text(key)
    return out


def nm_functions(toolchain: Toolchain, binary: Path) -> set[str]:
    """Text symbols as `go tool nm` lists them, with the ".abi0" suffix of assembly functions removed."""
    proc = subprocess.run(
        [str(toolchain.go), "tool", "nm", str(binary)],
        env=_go_env(toolchain, cgo=False),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    names = set()
    for line in proc.stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[1] in ("T", "t"):
            names.add(parts[2].removesuffix(".abi0"))
    return names


def test_catalog_hooks_are_in_probe_binaries(toolchain: Toolchain, catalog) -> None:
    version = GoVersion.parse(toolchain.version)
    assert version in catalog.verified, f"{toolchain} is not a release the catalog was verified for"
    plain = nm_functions(toolchain, build_probe(toolchain, cgo=False))
    with_cgo = nm_functions(toolchain, build_probe(toolchain, cgo=True))
    missing = []
    for spec in catalog.hooks_for(version):
        if spec.presence is Presence.ALWAYS and spec.function not in plain:
            missing.append(f"{spec.function} (pure-Go build)")
        if spec.presence is not Presence.NOT_INLINED and spec.function not in with_cgo:
            missing.append(f"{spec.function} (cgo build)")
    assert not missing, f"catalog hook functions absent from catalogprobe built with {toolchain}: {missing}"
    std_gaps = [g.function for g in catalog.gaps_for(version) if not g.function.startswith("golang.org/")]
    assert set(std_gaps) <= with_cgo


def test_struct_offsets_match_the_compiler(toolchain: Toolchain, catalog) -> None:
    binary = build_probe(toolchain, cgo=False)
    proc = subprocess.run([str(binary), "offsets"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    actual = dict(line.rsplit(" ", 1) for line in proc.stdout.splitlines())
    recorded = {
        f.go_field: f.offset
        for spec in catalog.hooks_for(GoVersion.parse(toolchain.version))
        for arg in spec.arguments
        for f in arg.fields
    }
    assert recorded, "the catalog records no struct fields"
    assert {k: int(actual[k]) for k in recorded if k in actual} == recorded, json.dumps(actual)
    assert set(recorded) <= set(actual), f"probe does not print {set(recorded) - set(actual)}"


def test_exec_memory_flag_rule_has_a_no_capability_outcome(catalog) -> None:
    """`clear: null`: mprotect/mmap without PROT_EXEC are no capability call (bbolt's read-only maps pass)."""
    for function in ("syscall.Mprotect", "syscall.mmap"):
        (spec,) = catalog.hooks_named(function, GoVersion(1, 27))
        rule = spec.rule
        assert isinstance(rule, FlagRule) and rule.clear is None, function
        assert spec.capabilities == {"memory.exec"}
        assert rule.evaluate(0x1 | 0x4) == "memory.exec"  # PROT_READ|PROT_EXEC
        assert rule.evaluate(0x1) is None and rule.evaluate(0x1 | 0x2) is None  # PROT_READ, PROT_READ|PROT_WRITE
    assert catalog.capability("memory.exec").hooked


def test_send_destination_rule(catalog) -> None:
    """`destination`: a NULL destination (connected socket) and the kernel over netlink are no capability;
    any other address, of any family, is network.connect. The length is the rule's own register."""
    import struct

    from gohook.sites.catalog import DestinationRule

    for function, at, length_at in (("syscall.sendto", "r8", "r9"), ("syscall.sendmsgN", "r10", "r11")):
        for version in catalog.verified:
            (spec,) = catalog.hooks_named(function, version)
            rule = spec.rule
            assert isinstance(rule, DestinationRule), (function, version)
            assert (str(rule.at), str(rule.length_at)) == (at, length_at)
            assert spec.argument is not None and spec.argument.kind is ArgKind.SOCKADDR
            assert [str(loc) for loc in spec.argument.at] == [at, length_at]
        kernel_nl = struct.pack("<HHII", 16, 0, 0, 0)
        inet = struct.pack("<HH4s8x", 2, 53, bytes([127, 0, 0, 1]))
        assert rule.evaluate_sockaddr(0, 0, b"") is None
        assert rule.evaluate_sockaddr(0x1000, 12, kernel_nl) is None
        assert rule.evaluate_sockaddr(0x1000, 12, struct.pack("<HHII", 16, 0, 4242, 0)) == "network.connect"
        assert rule.evaluate_sockaddr(0x1000, 16, kernel_nl + b"\0" * 4) == "network.connect"  # length decides
        assert rule.evaluate_sockaddr(0x1000, 16, inet) == "network.connect"
        assert rule.evaluate(0) is None and rule.evaluate(0x1000) == "network.connect"


def test_destination_and_null_rules_are_validated(raw_doc: dict[str, Any]) -> None:
    """A destination rule on a parameter that is not an unsafe.Pointer, or a misspelt `clear`, is refused."""
    doc = copy.deepcopy(raw_doc)
    sendto = next(h for h in doc["hooks"] if h["function"] == "syscall.sendto")
    sendto["rule"]["param"], sendto["rule"]["at"] = "flags", "rsi"
    with pytest.raises(CatalogError, match="destination is an unsafe.Pointer"):
        parse_catalog(yaml.safe_dump(doc))
    doc = copy.deepcopy(raw_doc)
    mprotect = next(h for h in doc["hooks"] if h["function"] == "syscall.Mprotect")
    mprotect["rule"]["clear"] = "nothing"
    with pytest.raises(CatalogError, match="unknown capability 'nothing'"):
        parse_catalog(yaml.safe_dump(doc))


def test_send_system_call_wrappers_have_only_hooked_callers(toolchain: Toolchain) -> None:
    """Oracle go tool objdump: in catalogprobe, the generated sendmsg wrapper is called only from sendmsgN and
    sendto only from Sendto / sendtoInet4/6 (and the hooks sit on sendmsgN and sendto): no inlined copy of
    sendmsgN elsewhere reaches sendmsg(2) past the hook."""
    binary = build_probe(toolchain, cgo=False)
    out = subprocess.run([str(toolchain.go), "tool", "objdump", str(binary)], capture_output=True, text=True,
                         env=_go_env(toolchain, cgo=False), timeout=600, check=True).stdout
    callers: dict[str, set[str]] = {"syscall.sendmsg": set(), "syscall.sendmsgN": set(), "syscall.sendto": set()}
    fn = ""
    for line in out.splitlines():
        if line.startswith("TEXT "):
            fn = line.split()[1]
            continue
        for target in callers:
            if f"CALL {target}(SB)" in line:
                callers[target].add(fn)
    assert callers["syscall.sendmsg"] == {"syscall.sendmsgN(SB)"}, callers
    assert callers["syscall.sendmsgN"], "nothing calls sendmsgN out of line"
    assert callers["syscall.sendto"] <= {"syscall.Sendto(SB)", "syscall.sendtoInet4(SB)", "syscall.sendtoInet6(SB)",
                                         "syscall.SendtoInet4(SB)", "syscall.SendtoInet6(SB)"}, callers
