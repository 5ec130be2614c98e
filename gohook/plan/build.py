"""Build the enforcement plan: binary + catalog + policy -> EnforcementPlan.

Pipeline stage 2 (binary -> **plan** -> BPF -> attach -> events -> views).
Every catalog hook site present in the binary becomes a HookPoint whose
argument read and capability rule are translated to what the BPF program
evaluates; the inline-aware range table (gohook.attribution.ranges) maps text to module
ids; the policy becomes one capability bitmask per module. Trusted modules
and the standard library get id 0 (transparent).

Hook specs the BPF program cannot evaluate yet (a rule on an argument passed
on the stack, i.e. an assembly function) are left out and listed in
`PlanBuild.skipped` with the reason, so `attach` can say so. A
direct_caller_only hook placed at call sites (gohook.sites.hooks.place_direct_hooks)
becomes one HookPoint per call site, or none (listed in `skipped`) when no
non-std code calls it.

Beyond the catalog (docs/evasion.md): a raw system call is judged by its own
number (gohook.sites.syscalls, the plan's syscall_rules): the call sites of
syscall.Syscall and its siblings become RAWCALL hook points, which need
`syscall` and the capability of the number they pass, and every `syscall`
instruction in an untrusted module's own code becomes a SITE hook point,
which needs the same; newproc.func1's call of
runtime.runqput (or newproc1's RET instructions) carries goroutine
provenance; the
raw_syscalls sentinel judges capability system calls no hook point covered,
except inside the runtime's own system-call functions (`exempt`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

import capstone

from gohook.attribution.ranges import build_ranges, module_id_map
from gohook.bpf.abi import GO_ARG_REGS, ArgKind, HookKind, Judge, RuleTestKind
from gohook.errors import GohookError
from gohook.gosym import STD, GoBinary
from gohook.gosym.pclntab import FLAG_ASM, Function
from gohook.plan.argscope import hook_scope, plan_scopes
from gohook.plan.model import (
    SENTINEL_SETTINGS,
    ArgRead,
    DenyReturn,
    DestinationRule,
    EnforcementPlan,
    FlagRule,
    Guard,
    HookPoint,
    ProbeAddress,
    Provenance,
    RegisterWrite,
    RuleTest,
    Sentinel,
    SyscallRule,
    ValueRule,
)
from gohook.policy.format import Mode, Policy
from gohook.sites.catalog import ArgKind as CatArgKind
from gohook.sites.catalog import ArgSpec, Catalog, DenyKind, HookSpec, ReturnPlan, ValueKind
from gohook.sites.catalog import DestinationRule as CatDestinationRule
from gohook.sites.catalog import FlagRule as CatFlagRule
from gohook.sites.catalog import ValueRule as CatValueRule
from gohook.sites.goruntime import GOffsets, curg_offsets, g_offsets
from gohook.sites.hooks import HookReport, HookSite
from gohook.sites.syscalls import GUARD, RAW, SENTINEL, all_rules
from gohook.static.analysis import Abi0Callees

_ARG_KINDS = {
    CatArgKind.STRING: ArgKind.STRING,
    CatArgKind.CSTRING: ArgKind.CSTRING,
    CatArgKind.STRINGS_FIRST: ArgKind.STRING_SLICE0,
    CatArgKind.INT: ArgKind.INT,
    CatArgKind.SOCKADDR: ArgKind.SOCKADDR,
}


@dataclass(frozen=True)
class PlanBuild:
    plan: EnforcementPlan
    sites: tuple[HookSite, ...]  # hook id i is sites[i] (a site probed at several call sites repeats);
    #                               SITE hook points (syscall instructions) come after them and have none
    skipped: tuple[tuple[str, str], ...]  # (function, reason)
    sentinel_reason: str = ""  # why the system-call sentinel is on or off (SENTINEL_* settings)


#: the raw system-call functions (direct_caller_only hooks): module code calling them is raw system calls
RAW_SYSCALL_FUNCTIONS = frozenset({"syscall.Syscall", "syscall.Syscall6", "syscall.RawSyscall",
                                   "syscall.RawSyscall6"})
#: functions whose hook points are RAWCALL (func(trap, a1, ... uintptr), trap in RAX): `syscall` and the
#: capability of the number trap; value: how many system-call arguments follow the number
RAW_CALL_ARGS = {"syscall.Syscall": 3, "syscall.Syscall6": 6, "syscall.RawSyscall": 3, "syscall.RawSyscall6": 6,
                 "syscall.AllThreadsSyscall": 3, "syscall.AllThreadsSyscall6": 6}


def _reg_index(loc: object) -> int | None:
    name = str(loc)
    return GO_ARG_REGS.index(name) if name in GO_ARG_REGS else None


def _struct_kind(spec: ArgSpec) -> ArgKind | None:
    """The struct shapes the BPF program reads: (IP []byte @0, Port int @24), string @0, int @0."""
    shape = tuple((f.offset, f.kind.value) for f in spec.fields)
    if shape == ((0, "bytes"), (24, "int")) or shape == ((0, "bytes"),):
        return ArgKind.IPPORT
    if shape[:1] == ((0, "string"),):
        return ArgKind.STRFIELD0
    if shape[:1] == ((0, "int"),):
        return ArgKind.INTFIELD0
    return None


def arg_read(spec: ArgSpec | None) -> ArgRead:
    """The catalog's argument location as the BPF program reads it (NONE when it cannot)."""
    if spec is None:
        return ArgRead()
    kind = _struct_kind(spec) if spec.kind is CatArgKind.STRUCT else _ARG_KINDS.get(spec.kind)
    if kind is None:
        return ArgRead()
    regs = [_reg_index(loc) for loc in spec.at]
    if any(r is None for r in regs):
        return ArgRead()  # on the stack (assembly function): not read
    return ArgRead(kind, tuple(r for r in regs if r is not None))


def hook_point(hook_id: int, site: HookSite, catalog: Catalog) -> tuple[HookPoint | None, str]:
    spec: HookSpec = site.spec
    rule = None
    capability = 0
    if spec.rule is not None:
        if isinstance(spec.rule, CatValueRule):
            off = spec.rule.at.stack_offset
            if off is None:
                return None, "capability decided by a value table in a register (not evaluated in BPF yet)"
            cases = tuple((c.value, catalog.capability(c.capability).bit) for c in spec.rule.cases)
            default = catalog.capability(spec.rule.default).bit if spec.rule.default is not None else -1
            f = site.function
            return HookPoint(hook_id=hook_id, function=f.name, entry=f.entry, probe=site.probe.address,
                             file_offset=site.file_offset, capability=0, rule=ValueRule(off, cases, default),
                             direct_caller_only=spec.direct_caller_only), ""
        if not isinstance(spec.rule, CatFlagRule):
            return None, "capability decided by a rule the BPF program does not evaluate"
        reg = _reg_index(spec.rule.at)
        if reg is None:
            return None, "capability decided by a stack argument (not read in BPF yet)"
        clear = catalog.capability(spec.rule.clear).bit if spec.rule.clear is not None else -1
        if isinstance(spec.rule, CatDestinationRule):
            len_reg = _reg_index(spec.rule.length_at)
            if len_reg is None:
                return None, "destination length on the stack (not read in BPF)"
            rule = DestinationRule(reg, spec.rule.mask, catalog.capability(spec.rule.set).bit, -1, len_reg)
        else:
            rule = FlagRule(reg, spec.rule.mask, catalog.capability(spec.rule.set).bit, clear)
    elif spec.capability is not None:
        capability = catalog.capability(spec.capability).bit
    else:
        return None, "no capability"
    f = site.function
    arg = arg_read(spec.argument)
    point = HookPoint(hook_id=hook_id, function=f.name, entry=f.entry, probe=site.probe.address,
                      file_offset=site.file_offset, capability=capability, arg=arg,
                      rule=rule, direct_caller_only=spec.direct_caller_only,
                      scope=hook_scope(spec, arg.kind, arg.regs, catalog))
    return raw_call(point), ""


def raw_call(point: HookPoint) -> HookPoint:
    """point as a RAWCALL hook point when it hooks a raw system-call function with the number in RAX.

    The call then needs the hook's capability (`syscall`) and the capability of the system call number it
    passes (EnforcementPlan.syscall_rules), so that an allowed `syscall` is no master key.
    """
    nargs = RAW_CALL_ARGS.get(point.function)
    if nargs is None or point.rule is not None or point.arg != ArgRead(ArgKind.INT, (0,)):
        return point
    return replace(point, kind=HookKind.RAWCALL, syscall_args=nargs)


#: opcodes of the direct transfers at a call site (gohook.sites.hooks.direct_call_sites finds E8 and E9): a CALL
#: puts an ABI0 callee's number at [RSP] of the probe, a JMP (from a called stub) at [RSP+8]
_CALL_REL32, _JMP_REL32, _JMP_REL8 = 0xE8, 0xE9, 0xEB


def raw_stack_offset(binary: GoBinary, address: int, abi0: Abi0Callees) -> int | None:
    """Where a raw system-call function called at `address` finds its number: None in RAX (the callee is a Go
    ABIInternal function), else the stack offset of the number at the probe (HookPoint.syscall_stack).

    The instruction at `address` is a direct CALL (E8 rel32) or JMP (E9 rel32, EB rel8). Its target, when an
    ABI0 function (Abi0Callees: assembly, or the ABI0 wrapper of syscall.Syscall and the like, which loads
    the registers from the stack), takes the number at [RSP] and its arguments above it: at a CALL, [RSP] at
    the probe is that slot (0); a JMP is a tail jump from an assembly stub (x/sys's unix.RawSyscall: `JMP
    syscall·RawSyscall(SB)`) that was itself called, so [RSP] is the stub's return address and the number is
    at [RSP+8]. Any other instruction, or a target that is no function entry, keeps the registers.
    """
    code = binary.image.read(address, 5)
    if len(code) >= 5 and code[0] in (_CALL_REL32, _JMP_REL32):
        target = address + 5 + int.from_bytes(code[1:5], "little", signed=True)
    elif len(code) >= 2 and code[0] == _JMP_REL8:
        target = address + 2 + int.from_bytes(code[1:2], "little", signed=True)
    else:
        return None
    callee = binary.function_at(target)
    if callee is None or callee.entry != target or not abi0(callee):
        return None
    return 0 if code[0] == _CALL_REL32 else 8


def hook_points(first_id: int, site: HookSite, catalog: Catalog,
                stack_offset: Callable[[int], int | None] | None = None) -> tuple[list[HookPoint], str]:
    """The hook points of one site: its probe, or one per call site (hooks.place_direct_hooks); ids from first_id.

    stack_offset(address): where a RAWCALL call site at address finds the number (raw_stack_offset); without
    it, every call site reads registers.
    """
    point, why = hook_point(first_id, site, catalog)
    if point is None or site.call_sites is None:
        return ([point] if point is not None else []), why
    if not site.call_sites:
        return [], "no direct call from non-std code (direct_caller_only): nothing to probe"
    raw = point.kind is HookKind.RAWCALL and stack_offset is not None
    return [replace(point, hook_id=first_id + i, probe=c.address, file_offset=c.file_offset, call_len=c.call_len,
                    syscall_stack=stack_offset(c.address) if raw and stack_offset is not None else None)
            for i, c in enumerate(site.call_sites)], ""


#: Pseudo-module of standard-library package initializers (`net/http.init`, `internal/godebug.init.0`):
#: they run before main with no module on the stack and read GODEBUG and the like. Charging them to
#: this module, which holds every capability, keeps `unattributed: deny` usable: only code that no
#: module and no std initializer accounts for is unattributed. A dependency's own init() is its frame,
#: innermost, and is charged to the dependency as before.
STD_INIT = "std:init"


_INITIALIZER = re.compile(r"init(\.\d+)?")

#: Standard-library functions that read fixed system configuration once (a sync.Once initializer) or re-check
#: the same files, on behalf of whichever caller first needs it (issue 17 §2: time.initLocal was charged to
#: BurntSushi/toml in Caddy, to x/net/trace in Prometheus, to capnslog in etcd). Charged to std:init, like
#: package initializers. Reviewed in the sources of Go 1.19, 1.21, 1.24 and 1.27 (each exists in all four
#: but the nsswitchConfig pair, 1.21+). What a module controls stays its own: setting TZ or SSL_CERT_FILE
#: first is that module's env.write; time.LoadLocation(name) and os/user lookups are not here (the caller
#: picks what is read).
STD_LAZY_INIT = frozenset({
    "time.initLocal",  # TZ, /etc/localtime: the first use of time.Local
    "net.initConfVal",  # GODEBUG netdns, and (Go 1.19) /etc/nsswitch.conf: the first name lookup
    "net.(*resolverConfig).init", "net.(*resolverConfig).tryUpdate",  # /etc/resolv.conf, re-checked every 5 s
    "net.(*nsswitchConfig).init", "net.(*nsswitchConfig).tryUpdate",  # /etc/nsswitch.conf (Go 1.21+)
    "crypto/x509.initSystemRoots",  # SSL_CERT_FILE, SSL_CERT_DIR, the system's certificate bundle
    "mime.initMime",  # /etc/mime.types and the other system MIME tables
    "net/http.envProxyFunc.func1",  # HTTP_PROXY, HTTPS_PROXY, NO_PROXY: a proxy-aware transport's first request
})


def is_std_init(binary: GoBinary, name: str) -> bool:
    """A standard-library package initializer: pkg.init (package variables) or pkg.init.N (an init function);
    or a lazy initializer of fixed system configuration (STD_LAZY_INIT).

    Not the closures named after them: pkg.init.func1 is a closure in a package variable's initializer
    (net's lookup hook, on every name lookup's stack) and pkg.init.0.func1 one in an init function; both
    may run at any time later on anyone's behalf. While an initializer runs, its own frame is on the stack
    below its closures anyway.
    """
    if name in STD_LAZY_INIT:
        return binary.module_of(name) == STD
    pkg = binary.package_of(name)
    if pkg is None or binary.module_of(name) != STD or not name.startswith(pkg + "."):
        return False
    return _INITIALIZER.fullmatch(name[len(pkg) + 1 :]) is not None


def sentinel_needs(binary: GoBinary, points: list[HookPoint], sites: list[HookPoint], module_id: object) -> str:
    """Why this binary needs the sentinel in `auto` mode, or "" when no hook-blind system call is in sight.

    The sentinel is syscall tracing: a raw_syscalls:sys_enter program that runs for every system call of
    every process on the machine (docs/performance.md: the largest single cost on a busy service). Without
    C code, module assembly, `syscall` instructions in module code and raw system calls from module code,
    every capability system call of a Go program goes through a hooked standard-library function, except
    where the catalog misses a path: `gohook inspect` lists those as `unhooked_syscall` gaps (then use
    `--sentinel on`).
    """
    if binary.has_cgo:
        return "cgo: C code makes its own system calls"
    if sites:
        return f"{len(sites)} `syscall` instructions in module code"
    compat = compat_instructions(binary, module_id)
    if compat:
        return (f"{len(compat)} `int 0x80`/`sysenter` instructions in module code (the i386 system-call table: "
                f"only the sentinel sees those calls; {compat[0][0]})")
    raw = sorted({p.function for p in points if p.function in RAW_SYSCALL_FUNCTIONS})
    if raw:
        return "raw system calls from module code (" + ", ".join(raw) + ")"
    for f in binary.functions:
        if f.flag & FLAG_ASM and f.end > f.entry and not binary.is_std(f.name) \
                and module_id(binary.module_of(f.name)):  # type: ignore[operator]
            return f"assembly in module code ({f.name})"
    return ""


def build_plan(binary: GoBinary, hooks: HookReport, catalog: Catalog, policy: Policy, mode: Mode,
               sentinel_setting: str = "auto") -> PlanBuild:
    def module_of(name: str) -> str:
        return STD_INIT if is_std_init(binary, name) else binary.module_of(name)

    found = {module_of(f.name) for f in binary.functions} - {STD}
    modules = sorted(found - {STD_INIT}) + ([STD_INIT] if STD_INIT in found else [])
    module_id, ordered = module_id_map(modules, policy.is_trusted)
    ranges = build_ranges(binary, module_id, module_of)
    points: list[HookPoint] = []
    used: list[HookSite] = []
    skipped: list[tuple[str, str]] = []
    abi0 = Abi0Callees(binary)
    for site in hooks.sites:
        new, why = hook_points(len(points), site, catalog, lambda a: raw_stack_offset(binary, a, abi0))
        if not new:
            skipped.append((site.function.name, why))
            continue
        points.extend(new)
        used.extend([site] * len(new))
    offsets = g_offsets(binary)  # the binary's DWARF, else the per-release table (gohook.sites.goruntime)
    goid_offset = offsets.goid if offsets is not None else 0
    provenance = plan_provenance(binary, offsets) if goid_offset else None
    if provenance is not None and module_id(STD_INIT):
        provenance = replace(provenance, not_inherited=module_id(STD_INIT))
    if sentinel_setting not in SENTINEL_SETTINGS:
        raise ValueError(f"sentinel setting {sentinel_setting!r} is not one of {', '.join(SENTINEL_SETTINGS)}")
    sites = syscall_sites(binary, module_id, len(points))
    need = sentinel_needs(binary, points, sites, module_id)
    if provenance is None:
        sentinel, reason = None, "off: no goroutine provenance for this binary (its probe registers the processes)"
    elif sentinel_setting == "off":
        sentinel, reason = None, "off (--sentinel off)" + (f", although the binary has {need}" if need else "")
    elif sentinel_setting == "on" or need:
        sentinel = plan_sentinel(binary, catalog)
        reason = "on (--sentinel on)" if sentinel_setting == "on" else f"on (auto: {need})"
    else:
        sentinel, reason = None, "off (auto: no cgo, module assembly or module system calls)"
    if sentinel is not None:
        cgocall = [i for i, h in enumerate(points) if h.function == "runtime.cgocall"]
        for i in cgocall:
            points[i] = replace(points[i], kind=HookKind.CGOCALL)
        points.extend(sites)
    rules = syscall_rules(catalog)
    all_caps = catalog.mask(["all"])
    allowed = {i + 1: all_caps if m == STD_INIT else catalog.mask(policy.capabilities_of(m))
               for i, m in enumerate(ordered)}
    scoped, arg_patterns = plan_scopes(policy, ordered, catalog, granted=lambda m: m != STD_INIT)
    actions = {i + 1: policy.action_of(m) for i, m in enumerate(ordered) if m != STD_INIT}
    resolver = DenyResolver(binary)
    for i, site in enumerate(used):
        points[i] = replace(points[i], deny=resolver.resolve(site.spec.deny))
    goexit = binary.functions_by_name.get("runtime.goexit")
    plan = EnforcementPlan(
        binary=binary.path,
        pie=binary.is_pie,
        text_start=binary.text_start,
        text_end=binary.text_end,
        capabilities=tuple(c.name for c in catalog.capabilities),
        modules=ordered,
        ranges=tuple(ranges),
        hooks=tuple(points),
        allowed=allowed,
        default_mask=catalog.mask(policy.default),
        action=policy.action,
        actions={m: a for m, a in actions.items() if a != policy.action},
        mode=mode,
        attribution=policy.attribution,
        deny_unattributed=policy.deny_unattributed,
        goexit=(goexit.entry, goexit.end) if goexit else (0, 0),
        goid_offset=goid_offset,
        trusted=trusted_spans(binary, policy),
        provenance=provenance,
        sentinel=sentinel,
        guard=plan_guard(binary, rules) if provenance is not None else None,
        syscall_rules=rules,
        file_open=provenance is not None,  # its goroutine-created probe registers the processes
        scoped=scoped,
        arg_patterns=arg_patterns,
    )
    return PlanBuild(plan, tuple(used), tuple(skipped), reason)


class DenyResolver:
    """A catalog ReturnPlan made concrete for one binary (HookPoint.deny): registers and 64-bit values.

    The error interface value EPERM is two words: the itab of (syscall.Errno, error) and a pointer to a
    word holding 1, inside runtime.staticuint64s (what Go's convT64 boxes a small Errno to); both are found
    in the binary, stripped ones included (gohook.gosym.itabs). A binary without them (no itab: nothing in
    it converts an Errno to an error) gets no error return for such hooks: they kill. ``missing`` says why.
    """

    def __init__(self, binary: GoBinary) -> None:
        self.binary = binary
        self.missing = ""
        self._itab: int | None = None
        self._looked = False

    def _errno_itab(self) -> int | None:
        if not self._looked:
            self._looked = True
            try:
                self._itab = self.binary.itab_address("syscall.Errno", "error")
            except GohookError as exc:
                self.missing = str(exc)
            else:
                if self._itab is None:
                    self.missing = "the binary has no itab of (syscall.Errno, error)"
        return self._itab

    def _errno_word(self, value: int) -> int | None:
        try:
            return self.binary.static_uint64_address(value)
        except GohookError as exc:
            self.missing = str(exc)
            return None

    def resolve(self, plan: ReturnPlan) -> DenyReturn | None:
        """The hook's DenyReturn; None when it kills (plan kind kill, or an address the binary lacks)."""
        if plan.kind is DenyKind.KILL:
            return None
        writes: list[RegisterWrite] = []
        for w in plan.words:
            if w.at.register is None:
                return None  # (the catalog loader refuses stack results; fail closed all the same)
            if w.kind is ValueKind.CONST:
                writes.append(RegisterWrite(w.at.register.value, w.word))
                continue
            address = self._errno_itab() if w.kind is ValueKind.ERRNO_ITAB else self._errno_word(w.value)
            if address is None:
                return None
            writes.append(RegisterWrite(w.at.register.value, address, relocate=True))
        return DenyReturn(plan.kind.value, tuple(writes), plan.errno, plan.values_text)


# -- beyond the catalog: trusted code, provenance, syscall instructions, the sentinel ----------------


def trusted_spans(binary: GoBinary, policy: Policy) -> tuple[tuple[int, int], ...]:
    """[entry, end) of every function of a trusted module, sorted (their code is transparent, not std)."""
    if not policy.trust:
        return ()
    return tuple(sorted((f.entry, f.end) for f in binary.functions
                        if f.end > f.entry and policy.is_trusted(binary.module_of(f.name))))


_MD = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)


def _instructions(binary: GoBinary, f: Function, mnemonic: str) -> list[int]:
    """Addresses of every `mnemonic` instruction of f (linear sweep: Go emits no data inside functions)."""
    code = binary.image.read(f.entry, f.end - f.entry)
    return [a for a, _size, m, _op in _MD.disasm_lite(code, f.entry) if m == mnemonic]


def _probe(binary: GoBinary, address: int) -> ProbeAddress:
    return ProbeAddress(address, binary.vaddr_to_offset(address))


def go_function(binary: GoBinary, name: str) -> Function | None:
    """The Go (ABIInternal) function called name, not an ABI wrapper of the same name.

    A Go function that assembly calls (runtime.newproc, from rt0_go) also has an ABI0 wrapper with the
    same name and funcID wrapper (the largest funcID in the binary); Go code calls the real one.
    """
    candidates = [f for f in binary.functions if f.name == name]
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    wrapper = max(f.func_id for f in binary.functions)
    real = [f for f in candidates if f.func_id != wrapper]
    return real[0] if real else candidates[0]


def _calls_to(binary: GoBinary, f: Function, target: Function) -> list[int]:
    """Addresses of the direct `call target` instructions of f."""
    code = binary.image.read(f.entry, f.end - f.entry)
    return [a for a, _size, m, op in _MD.disasm_lite(code, f.entry)
            if m == "call" and op.startswith("0x") and int(op, 16) == target.entry]


def plan_provenance(binary: GoBinary, offsets: GOffsets | None) -> Provenance | None:
    """Where the new g is known on the creating thread; None when the runtime's shape is not recognised.

    Preferred: the `call runtime.runqput` in runtime.newproc.func1 (newproc's closure on the system stack:
    `newg := newproc1(...); runqput(pp, newg, true)`), where RBX holds newg by the register ABI and the
    kernel emulates the CALL. Fallback: runtime.newproc1's RET instructions (RAX), single-stepped. Both
    run on the system stack, where the creator is g0.m.curg (offsets read from runtime.systemstack).
    """
    curg = curg_offsets(binary)
    if curg is None:
        return None
    gopc, parent = (offsets.gopc, offsets.parent_goid) if offsets is not None else (0, 0)
    closure = go_function(binary, "runtime.newproc.func1")
    runqput = go_function(binary, "runtime.runqput")
    calls = _calls_to(binary, closure, runqput) if closure is not None and runqput is not None else []
    if len(calls) == 1:
        created, register = (_probe(binary, calls[0]),), "bx"
    else:
        newproc1 = go_function(binary, "runtime.newproc1")
        rets = _instructions(binary, newproc1, "ret") if newproc1 is not None else []
        if not rets:
            return None
        created, register = tuple(_probe(binary, a) for a in rets), "ax"
    return Provenance(created, register, gopc, curg.g_m, curg.m_curg, parent)


#: Package runtime's own `syscall` instructions (runtime.open of the huge-page size file at start-up, ...)
#: are the runtime's business. Not the other internal/runtime packages: internal/runtime/syscall[/linux]
#: (runtime/internal/syscall before Go 1.23) is where package syscall's calls go.
_RUNTIME = re.compile(r"^runtime\.")


def exempt_ranges(binary: GoBinary) -> tuple[tuple[int, int], ...]:
    """[entry, end) of the runtime's own assembly functions that issue `syscall`, merged when adjacent."""
    spans: list[tuple[int, int]] = []
    for f in sorted(binary.functions, key=lambda f: f.entry):
        if f.end <= f.entry or not f.flag & FLAG_ASM or not _RUNTIME.match(f.name):
            continue
        if b"\x0f\x05" not in binary.image.read(f.entry, f.end - f.entry) or not _instructions(binary, f, "syscall"):
            continue
        if spans and spans[-1][1] == f.entry:
            spans[-1] = (spans[-1][0], f.end)
        else:
            spans.append((f.entry, f.end))
    return tuple(spans)


_JUDGES = {RAW: Judge.RAW, SENTINEL: Judge.SENTINEL, GUARD: Judge.GUARD}


def syscall_rules(catalog: Catalog) -> tuple[SyscallRule, ...]:
    """gohook.sites.syscalls.all_rules with capability bits of this catalog (rules naming a capability it
    lacks are left out)."""
    names = {c.name: c.bit for c in catalog.capabilities}

    def bit(name: str | None) -> int | None:
        return -1 if name is None else names.get(name)

    out = []
    for spec in all_rules():
        tests = tuple(RuleTest(RuleTestKind[t.kind.upper()], t.arg, bit(t.capability), t.operand)  # type: ignore[arg-type]
                      for t in spec.all_tests)
        if bit(spec.capability) is None or any(t.capability is None for t in tests):
            continue
        if spec.sockaddr_arg >= 0:
            arg, kind, length = spec.sockaddr_arg, ArgKind.SOCKADDR, spec.sockaddr_arg + 1
        elif spec.path_arg >= 0:
            arg, kind, length = spec.path_arg, ArgKind.CSTRING, -1
        else:
            arg, kind, length = -1, ArgKind.NONE, -1
        judges = Judge(0)
        for j in spec.judges:
            judges |= _JUDGES[j]
        out.append(SyscallRule(nr=spec.nr, name=spec.name, capability=bit(spec.capability),  # type: ignore[arg-type]
                               tests=tests, judges=judges, arg=arg, arg_kind=kind, len_arg=length))
    return tuple(out)


def plan_guard(binary: GoBinary, rules: tuple[SyscallRule, ...]) -> Guard:
    """The guard tracepoints: one per system call whose rule names the GUARD judge."""
    return Guard(syscalls=tuple(r.name for r in rules if r.judges & Judge.GUARD), exempt=exempt_ranges(binary))


def plan_sentinel(binary: GoBinary, catalog: Catalog) -> Sentinel:
    cgocall = go_function(binary, "runtime.cgocall")
    rets = tuple(_probe(binary, a) for a in _instructions(binary, cgocall, "ret")) if cgocall else ()
    bits = {c.name: c.bit for c in catalog.capabilities}
    return Sentinel(exempt=exempt_ranges(binary), cgocall_returns=rets, syscall_capability=bits.get("syscall", -1),
                    compat_capability=bits.get("tamper", -1))


#: The system-call instructions of x86-64 code: `syscall` (0F 05) enters the x86-64 table; `int 0x80`
#: (CD 80) and `sysenter` (0F 34) enter the i386 table (CONFIG_IA32_EMULATION), with other numbers. The
#: kernel's per-system-call tracepoints (the guard) do not fire for i386 calls, and uprobes refuse `int`
#: instructions (verified on 6.18): only the sentinel sees them (Sentinel.compat_capability).
_SYSCALL_BYTES = (b"\x0f\x05", b"\xcd\x80", b"\x0f\x34")


def _system_call_instructions(binary: GoBinary, f: Function) -> list[tuple[int, bool]]:
    """(address, compat) of every system-call instruction of f; compat: `int 0x80` or `sysenter`."""
    code = binary.image.read(f.entry, f.end - f.entry)
    if not any(b in code for b in _SYSCALL_BYTES):
        return []
    out = []
    for address, _size, mnemonic, op in _MD.disasm_lite(code, f.entry):
        if mnemonic == "syscall":
            out.append((address, False))
        elif mnemonic == "sysenter" or (mnemonic == "int" and op.strip() == "0x80"):
            out.append((address, True))
    return out


def compat_instructions(binary: GoBinary, module_id: object) -> list[tuple[str, int]]:
    """(function, address) of every `int 0x80` and `sysenter` in an untrusted module's own code."""
    out = []
    for f in sorted(binary.functions, key=lambda f: f.entry):
        if f.end > f.entry and not binary.is_std(f.name) and module_id(binary.module_of(f.name)):  # type: ignore[operator]
            out += [(f.name, a) for a, compat in _system_call_instructions(binary, f) if compat]
    return out


def syscall_sites(binary: GoBinary, module_id: object, first_id: int) -> list[HookPoint]:
    """A SITE hook point on every `syscall` instruction of an untrusted module's own code.

    Its call needs `syscall` (Sentinel.syscall_capability) and the capability of the number in RAX.

    module_id maps a module path to its id (0: std or trusted). A byte scan picks the functions to
    disassemble, so only real instruction starts count.
    """
    out: list[HookPoint] = []
    for f in sorted(binary.functions, key=lambda f: f.entry):
        if f.end <= f.entry or binary.is_std(f.name):
            continue
        owner = module_id(binary.module_of(f.name))  # type: ignore[operator]
        if not owner:
            continue
        for address, compat in _system_call_instructions(binary, f):
            if not compat:
                out.append(HookPoint(hook_id=first_id + len(out), function=f.name, entry=f.entry, probe=address,
                                     file_offset=binary.vaddr_to_offset(address), capability=0,
                                     kind=HookKind.SITE, owner=owner))
    return out
