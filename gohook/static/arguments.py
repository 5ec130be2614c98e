"""Constant arguments of capability calls: which paths, names and addresses a module's code passes as literals.

`gohook policy generate` scopes a capability of a module to patterns only when
every way the analysis sees that module reach the capability passes a
constant it can read from the binary; one call with an argument computed at
run time makes the capability `any` (gohook.policy.generate writes which).

How an argument is read. In Go's register ABI (amd64) a string argument is
a (pointer, length) pair in two registers; a string literal lives in
read-only data and is loaded right before the call:

    lea  rax, [rip + X]     ; pointer into .rodata
    mov  ebx, 4             ; length
    call os.Getenv

string_constant() looks back from the call, within the basic block (it
stops at a branch, a call, a return, or an instruction some jump lands on),
for the last write of each register; a `lea reg, [rip+X]` into a read-only
section and a `mov reg, imm` (or `xor reg, reg`) give the literal, any other
write (a register copy, a load from memory, a computed value) makes the
argument not constant. Package-level string variables are loaded from
memory and so are never constants: they can change at run time.

Where arguments are read (ARGUMENT_FUNNELS, plus every hook of the catalog
whose first argument is a Go string in registers, e.g. syscall.Getenv):
os.Getenv/LookupEnv/Setenv/Unsetenv (names), os.Open/OpenFile/ReadFile/
WriteFile/Create/Stat/Lstat/ReadDir/Readlink/Remove/Mkdir/Chmod/Chtimes/
Truncate/Chown/Lchown (paths), os.StartProcess, syscall.ForkExec/StartProcess
(programs), net.Dial/DialTimeout/Listen/ListenPacket and the Dialer and
ListenConfig methods (network and address), and os/exec.Command/
CommandContext: the program the methods of os/exec.Cmd start (Run, Start,
Output, CombinedOutput) is the one named to Command, so a module's exec
through a *Cmd is scoped to the names its own Command calls pass (a *Cmd
built or changed elsewhere is not seen: a limit of this reading).

What a call reaches (per standard-library function, computed once over the
strongly connected components of the call graph, the same edges and stops
as gohook.static.analysis): a capability reached through a funnel's
argument takes that call's literal; one reached by any other way inside the
standard library (a hook called with a computed argument, an anchor whose
argument flows through a function variable) is not constant. Constants
inside the standard library count too (os/exec's lookPath reads
os.Getenv("PATH")), though most std paths pass their caller's argument on
and are therefore not constant. A constant net.Dial/Listen address with an
IP literal (or no host) and a numeric port looks nothing up, so the
resolver's own connects that net reaches are dropped for that call.

Limits: indirect calls (interfaces, closures, function values) are not
followed here any more than in the capability analysis; jump tables are not
read, so a jump-table target between a literal's load and the call would go
unnoticed (Go places such targets at case starts, before any load).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

import capstone
from capstone import x86_const

from gohook.errors import GohookError
from gohook.gosym import STD, GoBinary
from gohook.gosym.pclntab import Function
from gohook.sites.catalog.model import ArgKind, FlagRule
from gohook.sites.hooks import HookReport, HookSite
from gohook.static.analysis import Analysis, FlagFunnel, _flag_funnels, _frames, _reach_anchors, constant_register
from gohook.static.callgraph import CallGraph

PATH_CAPS = frozenset({"files.read", "files.write"})
SCOPED_CAPS = frozenset({"files.read", "files.write", "exec", "env.read", "env.write", "network.connect",
                         "network.listen"})
LOOKBACK = 16  # instructions looked at before a call
MAX_LITERAL = 4096  # longest string literal read


@dataclass(frozen=True)
class Funnel:
    """A standard-library function whose string argument decides `capabilities` of whatever it reaches."""

    ptr: str  # registers of the string argument at the call (Go register ABI)
    length: str
    capabilities: frozenset[str]
    network: tuple[str, str] | None = None  # registers of the `network` argument (net.Dial ...)
    command: bool = False  # os/exec.Command: names the program a *Cmd runs


def _funnels() -> dict[str, Funnel]:
    out: dict[str, Funnel] = {}
    for name in ("Getenv", "LookupEnv"):
        out[f"os.{name}"] = Funnel("rax", "rbx", frozenset({"env.read"}))
    for name in ("Setenv", "Unsetenv"):
        out[f"os.{name}"] = Funnel("rax", "rbx", frozenset({"env.write"}))
    for name in ("Open", "OpenFile", "ReadFile", "WriteFile", "Create", "Stat", "Lstat", "ReadDir", "Readlink",
                 "Remove", "Mkdir", "Chmod", "Chtimes", "Truncate", "Chown", "Lchown"):
        out[f"os.{name}"] = Funnel("rax", "rbx", PATH_CAPS)
    out["syscall.Open"] = Funnel("rax", "rbx", PATH_CAPS)
    for name in ("os.StartProcess", "syscall.ForkExec", "syscall.StartProcess"):
        out[name] = Funnel("rax", "rbx", frozenset({"exec"}))
    out["os/exec.Command"] = Funnel("rax", "rbx", frozenset(), command=True)
    out["os/exec.CommandContext"] = Funnel("rcx", "rdi", frozenset(), command=True)
    connect, listen = frozenset({"network.connect"}), frozenset({"network.listen"})
    for name in ("net.Dial", "net.DialTimeout"):
        out[name] = Funnel("rcx", "rdi", connect, ("rax", "rbx"))
    for name in ("net.Listen", "net.ListenPacket"):
        out[name] = Funnel("rcx", "rdi", listen, ("rax", "rbx"))
    out["net.(*Dialer).Dial"] = Funnel("rdi", "rsi", connect, ("rbx", "rcx"))
    out["net.(*Dialer).DialContext"] = Funnel("r8", "r9", connect, ("rdi", "rsi"))
    out["net.(*ListenConfig).Listen"] = Funnel("r8", "r9", listen, ("rdi", "rsi"))
    out["net.(*ListenConfig).ListenPacket"] = Funnel("r8", "r9", listen, ("rdi", "rsi"))
    return out


ARGUMENT_FUNNELS = _funnels()
#: Methods of os/exec.Cmd: the program they start (through (*Cmd).Start) is the Cmd's, named to exec.Command.
CMD_METHODS = "os/exec.(*Cmd)."

_REGISTERS = {  # capstone register id -> the 64-bit register it is part of
    **{getattr(x86_const, f"X86_REG_{n}"): r for r, names in {
        "rax": ("RAX", "EAX", "AX", "AL", "AH"), "rbx": ("RBX", "EBX", "BX", "BL", "BH"),
        "rcx": ("RCX", "ECX", "CX", "CL", "CH"), "rdx": ("RDX", "EDX", "DX", "DL", "DH"),
        "rsi": ("RSI", "ESI", "SI", "SIL"), "rdi": ("RDI", "EDI", "DI", "DIL"),
        **{f"r{k}": (f"R{k}", f"R{k}D", f"R{k}W", f"R{k}B") for k in range(8, 16)},
    }.items() for n in names},
}


def resolves_nothing(network: str | None, address: str) -> bool:
    """Whether net.Dial/Listen of this constant address looks nothing up (net's resolveAddrList): a Unix
    socket, or `host:port` with an IP literal (or empty) host and a numeric port."""
    if network in ("unix", "unixgram", "unixpacket"):
        return True
    if network is not None and network not in ("tcp", "tcp4", "tcp6", "udp", "udp4", "udp6"):
        return False
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return False
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# --- reading constants --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Insn:
    address: int
    size: int
    mnemonic: str
    op_str: str
    writes: frozenset[str]  # 64-bit registers written (explicitly or implicitly)


class ConstantReader:
    """String constants in registers at call instructions (see the module docstring); per-function cache."""

    def __init__(self, binary: GoBinary) -> None:
        self.binary = binary
        self._md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        self._md.detail = True
        self._code: dict[int, tuple[list[_Insn], dict[int, int], frozenset[int]]] = {}

    def _function(self, f: Function) -> tuple[list[_Insn], dict[int, int], frozenset[int]]:
        """Instructions, address -> index, and jump targets inside the function."""
        got = self._code.get(f.entry)
        if got is None:
            insns: list[_Insn] = []
            targets: set[int] = set()
            for ins in self._md.disasm(self.binary.image.read(f.entry, f.end - f.entry), f.entry):
                try:
                    _read, written = ins.regs_access()
                except capstone.CsError:
                    written = ()
                writes = frozenset(_REGISTERS[r] for r in written if r in _REGISTERS)
                insns.append(_Insn(ins.address, ins.size, ins.mnemonic, ins.op_str, writes))
                if ins.mnemonic.startswith("j") and ins.op_str.startswith("0x"):
                    target = int(ins.op_str, 16)
                    if f.entry <= target < f.end:
                        targets.add(target)
            got = (insns, {x.address: i for i, x in enumerate(insns)}, frozenset(targets))
            self._code[f.entry] = got
        return got

    def registers(self, f: Function, site: int, wanted: tuple[str, ...]) -> dict[str, int | tuple[str, int]]:
        """What each wanted register holds at the call at `site`: an int (mov imm / xor), ("rip", address)
        for `lea reg, [rip+X]`; registers whose value is not such a constant are left out."""
        insns, index, targets = self._function(f)
        k = index.get(site)
        if k is None:
            return {}
        out: dict[str, int | tuple[str, int]] = {}
        open_regs = set(wanted)
        for ins in reversed(insns[max(0, k - LOOKBACK):k]):
            if ins.mnemonic.startswith("j") or ins.mnemonic in ("call", "ret"):
                break
            for reg in sorted(open_regs & ins.writes):
                open_regs.discard(reg)
                value = _constant_write(ins, reg)
                if value is not None:
                    out[reg] = value
            if not open_regs or ins.address in targets:
                break
        return out

    def string(self, f: Function, site: int, ptr: str, length: str) -> str | None:
        """The string literal passed in (ptr, length) at the call at `site`, None when it is not one."""
        regs = self.registers(f, site, (ptr, length))
        n, p = regs.get(length), regs.get(ptr)
        if not isinstance(n, int) or n < 0 or n > MAX_LITERAL:
            return None
        if n == 0:
            return ""
        if not isinstance(p, tuple):
            return None
        sec = self.binary.image.section_at(p[1])
        if sec is None or sec.writable or sec.executable:
            return None
        try:
            return self.binary.image.read(p[1], n).decode("utf-8")
        except (GohookError, UnicodeDecodeError):
            return None


def _constant_write(ins: _Insn, reg: str) -> int | tuple[str, int] | None:
    """The constant an instruction writes to the 64-bit register `reg` (or its 32-bit half, zero-extended)."""
    dest, _, src = ins.op_str.partition(", ")
    full32 = {"rax": "eax", "rbx": "ebx", "rcx": "ecx", "rdx": "edx", "rsi": "esi", "rdi": "edi"}.get(reg, reg + "d")
    if dest not in (reg, full32):
        return None
    if ins.mnemonic == "xor" and src == dest:
        return 0
    if ins.mnemonic == "mov":
        try:
            return int(src, 0)
        except ValueError:
            return None
    if ins.mnemonic == "lea" and dest == reg and src.startswith("[rip ") and src.endswith("]"):
        sign, _, disp = src[5:-1].partition(" ")
        try:
            off = int(disp, 16)
        except ValueError:
            return None
        return ("rip", ins.address + ins.size + (off if sign == "+" else -off))
    return None


# --- what each call passes, and what reaches what -------------------------------------------------


@dataclass(frozen=True)
class Literal:
    """A constant argument: the text passed, at which call."""

    value: str
    network: str | None  # the network argument of net.Dial/Listen when it is constant
    where: str  # `caller -> callee`


@dataclass(frozen=True)
class CapArgs:
    """What one capability is reached with: literals, or a call whose argument is not constant."""

    literals: frozenset[Literal] = frozenset()
    dynamic: str | None = None  # `caller -> callee` of a call whose argument is not constant (first one found)
    command: bool = False  # the program of a *Cmd: named by the exec.Command calls of the module

    def merge(self, other: CapArgs) -> CapArgs:
        if self.dynamic is not None or other.dynamic is not None:
            return CapArgs(dynamic=self.dynamic or other.dynamic)
        return CapArgs(self.literals | other.literals, None, self.command or other.command)


Reach = dict[str, CapArgs]


def _merge_into(into: Reach, got: Reach) -> None:
    for cap, args in got.items():
        have = into.get(cap)
        into[cap] = args if have is None else have.merge(args)


@dataclass
class ModuleArguments:
    """Per scoped capability of one module: what the analysis found it is called with."""

    capabilities: dict[str, CapArgs] = field(default_factory=dict)
    commands: CapArgs = field(default_factory=CapArgs)  # the names its os/exec.Command calls pass


class ArgumentAnalysis:
    """Constant arguments of every module's capability calls (run after gohook.static.analysis.analyze)."""

    def __init__(self, binary: GoBinary, hooks: HookReport, graph: CallGraph, analysis: Analysis) -> None:
        self.binary = binary
        self.graph = graph
        self.analysis = analysis
        self.fns = binary.functions
        self.module_of = binary.function_modules
        self.hook_at: dict[int, HookSite] = {}
        for entry, s in hooks.by_entry.items():
            i = graph.index_of(entry)
            if i is not None:
                self.hook_at[i] = s
        self.anchors = _reach_anchors(self.fns, hooks, self.module_of)
        self.flag_funnels: dict[int, FlagFunnel] = _flag_funnels(binary, hooks, graph)
        self.funnels: dict[int, Funnel] = {}
        for i, f in enumerate(self.fns):
            spec = ARGUMENT_FUNNELS.get(f.name)
            if spec is not None and i not in self.hook_at:
                self.funnels[i] = spec
        self.reader = ConstantReader(binary)
        self._reach: dict[int, Reach] = {}

    # -- one call -------------------------------------------------------------------------------

    def _hook_arg(self, site: HookSite) -> Funnel | None:
        """The string argument of a hook as a funnel, when it is one Go string in registers that alone decides."""
        arg = site.spec.argument
        if arg is None or arg.kind is not ArgKind.STRING or len(arg.at) != 2:
            return None
        if any(loc.register is None for loc in arg.at):
            return None
        strings = sum(1 for a in site.spec.arguments if a.kind is ArgKind.STRING)
        caps = frozenset(site.capabilities) & SCOPED_CAPS
        if caps & (PATH_CAPS | {"exec"}) and strings > 1:
            return None  # rename, link, symlink: two paths, the hook reports one
        reg0, reg1 = (loc.register.value for loc in arg.at if loc.register is not None)
        return Funnel(reg0, reg1, caps)

    def _literal(self, caller: int, site: int, callee: int, spec: Funnel, where: str) -> Literal | None:
        f = self.fns[caller]
        value = self.reader.string(f, site, spec.ptr, spec.length)
        if value is None:
            return None
        network = self.reader.string(f, site, *spec.network) if spec.network else None
        return Literal(value, network, where)

    def _where(self, caller: int, site: int, callee: int, module: str | None) -> str:
        """`function -> callee` of a call; for a module's call the function is its innermost frame of that
        module at the call (inline-aware), for std code the physical function."""
        name = self.fns[caller].name
        if module is not None:
            name = next((fr for fr in _frames(self.binary, site) if self.binary.module_of(fr) == module), name)
        return f"{name} -> {self.fns[callee].name}"

    def _with_argument(self, reach: Reach, caps: frozenset[str], lit: Literal | None, where: str) -> Reach:
        """`reach` with the capabilities the argument decides replaced by that argument."""
        out = dict(reach)
        for cap in caps & reach.keys():
            out[cap] = CapArgs(frozenset({lit})) if lit is not None else CapArgs(dynamic=where)
        return out

    def edge(self, caller: int, site: int, callee: int, module: str | None) -> Reach:
        """What the call at `site` (in function `caller`) to `callee` reaches, with its arguments; `module` is
        the module whose code makes the call (None: the standard library's)."""
        where = self._where(caller, site, callee, module)
        hook = self.hook_at.get(callee)
        if hook is not None:
            if module is None and hook.spec.direct_caller_only:
                return {}
            reach: Reach = {cap: CapArgs(dynamic=where) for cap in hook.capabilities}
            spec = self._hook_arg(hook)
            if spec is None:
                return reach
            return self._with_argument(reach, spec.capabilities, self._literal(caller, site, callee, spec, where),
                                       where)
        flags = self.flag_funnels.get(callee)
        if flags is not None:
            value = constant_register(self.binary, self.graph, caller, site, flags.register)
            if value is not None and isinstance(flags.rule, FlagRule):
                cap = flags.rule.evaluate(value)
                if cap is None:
                    return {}
                spec = self.funnels.get(callee) or Funnel("rax", "rbx", PATH_CAPS)
                lit = self._literal(caller, site, callee, spec, where)
                return {cap: CapArgs(frozenset({lit})) if lit is not None else CapArgs(dynamic=where)}
        if self.module_of[callee] != STD:
            return {}
        reach = self.reach(callee)
        if module is not None and self.fns[callee].name.startswith(CMD_METHODS) and "exec" in reach:
            reach = {**reach, "exec": CapArgs(command=True)}
        spec = self.funnels.get(callee)
        if spec is None:
            return reach
        if spec.command:
            if module is None:  # a *Cmd the standard library builds itself: its program is not the module's
                reach = {**reach, "exec": CapArgs(dynamic=where)}
            return reach
        lit = self._literal(caller, site, callee, spec, where)
        if spec.network is not None and lit is not None and resolves_nothing(lit.network, lit.value):
            # no name to look up: the resolver's own connects (DNS) are not reached at run time
            reach = {c: a for c, a in reach.items() if not c.startswith("network.") or c in spec.capabilities}
        return self._with_argument(reach, spec.capabilities, lit, where)

    # -- what a standard-library function reaches ----------------------------------------------

    def _successors(self, n: int) -> list[tuple[int, int]]:
        scan = self.graph.scan(n)
        out = []
        for site, target in scan.transfers():
            m = self.graph.index_of(target)
            if m is not None:
                out.append((site, m))
        return out

    def _follows(self, m: int) -> bool:
        return m not in self.hook_at and self.module_of[m] == STD

    def reach(self, start: int) -> Reach:
        """Scoped capabilities a standard-library function reaches through std code, with their arguments."""
        got = self._reach.get(start)
        if got is None:
            self._solve(start)
            got = self._reach[start]
        return got

    def _solve(self, start: int) -> None:
        """Tarjan's strongly connected components from `start`; each component's Reach once its successors'
        are known (a component's members reach each other, so they share one Reach)."""
        index: dict[int, int] = {}
        low: dict[int, int] = {}
        stack: list[int] = []
        on_stack: set[int] = set()
        counter = 0
        work: list[tuple[int, int]] = [(start, 0)]
        succ_cache: dict[int, list[int]] = {}

        def succs(n: int) -> list[int]:
            s = succ_cache.get(n)
            if s is None:
                s = succ_cache[n] = [m for _site, m in self._successors(n)
                                     if self._follows(m) and m not in self._reach]
            return s

        while work:
            n, i = work.pop()
            if i == 0:
                index[n] = low[n] = counter
                counter += 1
                stack.append(n)
                on_stack.add(n)
            ss = succs(n)
            if i < len(ss):
                work.append((n, i + 1))
                m = ss[i]
                if m not in index:
                    work.append((m, 0))
                elif m in on_stack:
                    low[n] = min(low[n], index[m])
                continue
            if low[n] == index[n]:
                members = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    members.append(m)
                    if m == n:
                        break
                self._component(members)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[n])

    def _component(self, members: list[int]) -> None:
        inside = set(members)
        reach: Reach = {}
        for n in members:
            anchor = self.anchors.get(n)
            if anchor is not None:
                for cap in anchor.capabilities:
                    _merge_into(reach, {cap: CapArgs(dynamic=f"{self.fns[n].name} ({anchor.function.name})")})
            for site, m in self._successors(n):
                if m in inside:
                    continue
                _merge_into(reach, self.edge(n, site, m, None))
        reach = {cap: args for cap, args in reach.items() if cap in SCOPED_CAPS}
        for n in members:
            self._reach[n] = reach

    # -- per module -----------------------------------------------------------------------------

    def module(self, module: str) -> ModuleArguments:
        """Per scoped capability of `module`, the arguments of every way its code reaches it."""
        out = ModuleArguments()
        for caller, site, callee in self.analysis.call_sites.get(module, ()):
            spec = self.funnels.get(callee)
            if spec is not None and spec.command:
                where = self._where(caller, site, callee, module)
                lit = self._literal(caller, site, callee, spec, where)
                out.commands = out.commands.merge(CapArgs(frozenset({lit})) if lit is not None
                                                  else CapArgs(dynamic=where))
            entry = self._where(caller, site, callee, module)
            got = {c: a if a.dynamic is None or a.dynamic.startswith(entry) else
                   CapArgs(dynamic=f"{a.dynamic} (reached through {entry})")
                   for c, a in self.edge(caller, site, callee, module).items() if c in SCOPED_CAPS}
            _merge_into(out.capabilities, got)
        return out


def analyze_arguments(binary: GoBinary, hooks: HookReport, graph: CallGraph, analysis: Analysis,
                      modules: Callable[[], list[str]] | None = None) -> dict[str, ModuleArguments]:
    """ModuleArguments of every module with call sites (or of `modules()`)."""
    aa = ArgumentAnalysis(binary, hooks, graph, analysis)
    names = modules() if modules is not None else sorted(analysis.call_sites)
    return {m: aa.module(m) for m in names}
