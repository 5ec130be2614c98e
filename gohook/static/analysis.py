"""Static capability analysis of a Go binary: what each module can reach, and the gaps.

Inputs: the parsed binary, its hook sites (catalog functions present) and the
lazily disassembled call graph. Output: per module, the capabilities its code
reaches through direct calls, one shortest example path each, its count of
indirect calls (unresolvable), and the gaps gohook cannot see.

Attribution follows `attribution: caller` enforcement: a call site belongs
to the innermost non-std logical frame at that instruction (inline-aware,
via gohook.attribution.ranges), and the search from a module's call sites continues only
through standard-library functions; calls into another module are that
module's own (its call sites are sources of its own search). So the
capabilities listed for a module are exactly those a caller-mode policy must
grant it for the calls this analysis can see.
"""

from __future__ import annotations

import bisect
import fnmatch
from collections import deque
from dataclasses import dataclass, field

import capstone

from gohook.attribution.ranges import function_ranges
from gohook.gosym import STD, GoBinary
from gohook.gosym.pclntab import FLAG_ASM, Function
from gohook.sites.catalog import FlagRule, ValueRule
from gohook.sites.hooks import HookReport, HookSite
from gohook.static.callgraph import CallGraph

# Standard-library handlers that serve files on a module's behalf: the opens happen later, in std code on
# the server's goroutines, so they are charged to whoever runs the server (docs/evasion.md).
STD_HANDLERS = frozenset({"net/http.FileServer", "net/http.FileServerFS", "net/http.ServeFile",
                          "net/http.ServeFileFS", "net/http.ServeContent"})

# Packages whose own `syscall` instructions are the runtime's business (memory,
# scheduling, signals, timers), not capabilities of the code that reaches them.
RUNTIME_PACKAGES = ("runtime.", "internal/runtime/", "runtime/")


@dataclass(frozen=True)
class CapabilityPath:
    capability: str
    path: tuple[str, ...]  # module function -> ... -> hook function


@dataclass(frozen=True)
class Gap:
    kind: str  # cgo, exec, plugin, raw_syscall, asm, inlined_hook, frame_pointer, unhooked_syscall, no_buildinfo
    module: str  # module path, or "" for the whole binary
    detail: str
    remedy: str


@dataclass
class ModuleReport:
    path: str
    version: str = ""
    inferred: bool = False
    functions: int = 0
    capabilities: dict[str, CapabilityPath] = field(default_factory=dict)
    indirect_calls: int = 0


@dataclass
class Analysis:
    modules: dict[str, ModuleReport]
    gaps: list[Gap]
    functions_scanned: int
    frame_pointer_checked: int


def _module_versions(binary: GoBinary) -> dict[str, str]:
    info = binary.build_info if binary._build_info_ok() else None
    out: dict[str, str] = {}
    if info is None:
        return out
    if info.main is not None:
        out[info.main.path] = info.main.version
    for d in info.deps:
        out[d.path] = d.version if d.replace is None else f"{d.version} => {d.replace.path} {d.replace.version}".strip()
    return out


def _saves_frame_pointer(code: bytes, entry: int) -> bool:
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    for _addr, _size, mnemonic, op_str in md.disasm_lite(code, entry):
        if mnemonic == "push" and op_str == "rbp":
            return True
        if mnemonic == "mov" and op_str.startswith("qword ptr [rsp") and op_str.endswith(", rbp"):
            return True
        if mnemonic in ("call", "ret"):
            return False
    return False


def rule_enforceable(rule: FlagRule | ValueRule) -> bool:
    """Whether the BPF program evaluates this capability rule (gohook.plan.build.hook_point): flag bits of a
    register argument, or a value table on a stack argument."""
    if isinstance(rule, FlagRule):
        return rule.at.register is not None
    return rule.at.stack_offset is not None


def analyze(binary: GoBinary, hooks: HookReport, graph: CallGraph) -> Analysis:
    fns = binary.functions
    module_of = [binary.module_of(f.name) for f in fns]
    versions = _module_versions(binary)
    modules: dict[str, ModuleReport] = {}
    for f, mod in zip(fns, module_of, strict=True):
        if mod == STD:
            continue
        rep = modules.get(mod)
        if rep is None:
            ref = binary.module_ref(f.name)
            rep = modules[mod] = ModuleReport(mod, versions.get(mod, ""), ref.inferred)
        rep.functions += 1
    for path, version in versions.items():  # listed modules with no code left in the binary
        modules.setdefault(path, ModuleReport(path, version))
    ids = {m: i + 1 for i, m in enumerate(sorted(modules))}
    names = {i: m for m, i in ids.items()}

    def module_id(path: str) -> int:
        return ids.get(path, 0)

    hook_at = {graph.index_of(e): s for e, s in hooks.by_entry.items()}
    anchors = _reach_anchors(fns, hooks)
    funnels = _flag_funnels(binary, hooks, graph)
    gaps: list[Gap] = []
    # -- call sites attributed to modules (inline-aware) ---------------------------
    sources: dict[str, list[tuple[int, int, int]]] = {m: [] for m in modules}  # module -> (caller, site, callee)
    fp_checked = 0
    for i, f in enumerate(fns):
        own = module_of[i]
        # A standard-library function can hold inlined module code only when it is a
        # generic instantiation (its type arguments may come from a module).
        if own == STD and ("[" not in f.name or not binary.table.has_inline_tree(f)):
            continue
        ranges = function_ranges(binary, f, module_id)
        if own == STD and not any(r.modules for r in ranges):
            continue
        scan = graph.scan(i)
        if own != STD:
            modules[own].indirect_calls += scan.indirect_calls
            if scan.syscalls:
                gaps.append(Gap("raw_syscall", own, f"{f.name} issues the syscall instruction itself "
                                f"({len(scan.syscalls)} site(s), e.g. {scan.syscalls[0]:#x}): no hook point sees it",
                                "deny the module or review its assembly; the syscall sentinel reports it at run time"))
            if f.flag & FLAG_ASM or binary.line_at(f.entry)[0].endswith(".s"):
                gaps.append(Gap("asm", own, f"{f.name} is assembly: it may bypass frame pointers and hooks",
                                "review the assembly; use unattributed: deny so forged stacks are not allowed"))
            if scan.calls:
                fp_checked += 1
                code = binary.image.read(f.entry, min(64, f.end - f.entry))
                if not _saves_frame_pointer(code, f.entry):
                    gaps.append(Gap("frame_pointer", own, f"{f.name} calls other functions without saving RBP: "
                                    "stack walks through it lose the caller",
                                    "rebuild with frame pointers (the default on amd64); use unattributed: deny"))
        if own != STD and binary.table.has_inline_tree(f):
            _pcs, vals = binary.table.inline_table(f)
            for ix in range(max(vals, default=-1) + 1):
                inl = binary.table.inlined_call(f, ix).name
                if inl in STD_HANDLERS:
                    gaps.append(Gap("std_handler", own, f"{f.name} hands requests to {inl} (inlined): the files it "
                                    "serves are opened by standard-library code on the server's goroutines and "
                                    "charged to the module that runs the server, not to this one",
                                    "review what this module serves; restrict files.read of the serving module"))
        starts = [r.start for r in ranges]
        for site, target in scan.calls + scan.tail_jumps:
            ti = graph.index_of(target)
            if ti is None:
                continue
            k = _range_index(starts, site)
            mods = ranges[k].modules if k >= 0 and site < ranges[k].end else ()
            if mods:
                sources[names[mods[0]]].append((i, site, ti))
                if fns[ti].name in STD_HANDLERS:
                    gaps.append(Gap("std_handler", names[mods[0]],
                                    f"{f.name} hands requests to {fns[ti].name}: the files it serves are opened "
                                    "by standard-library code on the server's goroutines and charged to the module "
                                    "that runs the server, not to this one",
                                    "review what this module serves; restrict files.read of the serving module"))
    # -- reachability through the standard library ---------------------------------------
    for mod, calls in sources.items():
        rep = modules[mod]
        parent: dict[int, int] = {}
        queue: deque[int] = deque()

        def path_to(node: int, parent: dict[int, int] = parent) -> tuple[str, ...]:
            out = []
            while node != -1:
                out.append(fns[node].name)
                node = parent[node]
            return tuple(reversed(out))

        def record(caller: int, hook_index: int, rep: ModuleReport = rep) -> None:
            site = hook_at[hook_index]
            for cap in sorted(site.capabilities):
                if cap not in rep.capabilities:
                    rep.capabilities[cap] = CapabilityPath(cap, (*path_to(caller), site.function.name))

        def flag_funnel(caller: int, site: int, target: int, rep: ModuleReport = rep) -> bool:
            """Record a call into a flag funnel (os.OpenFile) whose flag is a constant; True if decided."""
            funnel = funnels.get(target)
            if funnel is None:
                return False
            value = constant_register(binary, graph, caller, site, funnel.register)
            if value is None:
                return False
            cap = funnel.rule.evaluate(value)
            if cap not in rep.capabilities:
                rep.capabilities[cap] = CapabilityPath(
                    cap, (*path_to(caller), f"{fns[target].name} (flags {value:#x})", funnel.hook))
            return True

        for caller, site, ti in calls:
            parent.setdefault(caller, -1)
            if ti in hook_at:
                record(caller, ti)
            elif flag_funnel(caller, site, ti):
                continue
            elif module_of[ti] == STD and ti not in parent:
                parent[ti] = caller
                queue.append(ti)
        while queue:
            n = queue.popleft()
            scan = graph.scan(n)
            if scan.syscalls and not _is_runtime_code(binary, fns[n]):
                gaps.append(Gap("unhooked_syscall", mod, f"{fns[n].name} issues a system call and is reachable "
                                f"without a hook point: {' -> '.join(path_to(n))}",
                                "extend the catalog with a hook on this path; the syscall sentinel covers it"))
            anchor = anchors.get(n)
            if anchor is not None:
                for cap in sorted(anchor.capabilities):
                    if cap not in rep.capabilities:
                        rep.capabilities[cap] = CapabilityPath(cap, (*path_to(n), f"({anchor.function.name})"))
            for site, target in scan.calls + scan.tail_jumps:
                m = graph.index_of(target)
                if m is None:
                    continue
                if m in hook_at:
                    if not hook_at[m].spec.direct_caller_only:
                        record(n, m)
                elif flag_funnel(n, site, m):
                    continue
                elif module_of[m] == STD and m not in parent:
                    parent[m] = n
                    queue.append(m)
    # -- binary-level and capability-derived gaps ------------------------------------------
    for mod, rep in sorted(modules.items()):
        caps = rep.capabilities
        if "cgo" in caps:
            gaps.append(Gap("cgo", mod, "calls into C: " + " -> ".join(caps["cgo"].path),
                            "allow `cgo` only to modules you trust; what C code does is invisible to hooks"))
        if "exec" in caps:
            gaps.append(Gap("exec", mod, "starts programs: " + " -> ".join(caps["exec"].path),
                            "the child process is outside enforcement: deny exec or confine the child separately"))
        if "plugin" in caps:
            gaps.append(Gap("plugin", mod, "loads Go plugins: " + " -> ".join(caps["plugin"].path),
                            "plugin code is not in this binary's analysis: deny plugin"))
        if "syscall" in caps:
            gaps.append(Gap("raw_syscall", mod, "makes raw system calls: " + " -> ".join(caps["syscall"].path),
                            "hooked at the syscall.Syscall* entry (capability `syscall`); deny it unless needed"))
        if rep.indirect_calls:
            gaps.append(Gap("indirect_calls", mod, f"{rep.indirect_calls} indirect call sites (interfaces, closures, "
                            "function values) cannot be resolved statically: their capabilities are not listed",
                            "run in audit or learn mode to observe them; enforcement still sees them at run time"))
    if binary.has_cgo:
        needed = ", ".join(binary.image.needed) or "none"
        gaps.append(Gap("cgo", "", f"cgo binary: C code is linked in (DT_NEEDED: {needed})",
                        "C code's own system calls bypass hooks; the syscall sentinel reports them"))
    for site in hooks.sites:
        if site.spec.rule is not None and not rule_enforceable(site.spec.rule):
            gaps.append(Gap("unenforced_hook", "", f"{site.function.name} decides "
                            f"{'|'.join(sorted(site.capabilities))} by an argument the BPF program does not read "
                            "there: calls through it are not enforced",
                            "deny the modules that make these calls by other capabilities, or review them"))
    for name in hooks.inlined_only:
        gaps.append(Gap("inlined_hook", "", f"{name} is present only inlined: its uprobe can never fire",
                        "its callers are covered by another hook (e.g. syscall.rawSyscallNoError) or not at all"))
    if hooks.version_assumed:
        gaps.append(Gap("no_buildinfo", "", f"no build info: catalog names for Go {hooks.go_version} assumed",
                        "rebuild with module mode to embed build info"))
    return Analysis(modules, _dedupe(gaps), graph.scanned, fp_checked)


@dataclass(frozen=True)
class FlagFunnel:
    """A std function whose flag argument decides a rule hook further down (os.OpenFile -> syscall.openat)."""

    register: str  # where the flag is at the call (Go register ABI)
    rule: FlagRule
    hook: str


# function -> (flag register, hook whose rule the flag feeds). os.OpenFile(name string, flag int, perm FileMode):
# name in rax/rbx, flag in rcx. os.Open, os.Create, os.ReadFile, os.WriteFile all call it with constants.
FLAG_FUNNELS = {"os.OpenFile": ("rcx", "syscall.openat")}
_REG_ALIASES = {"rcx": ("rcx", "ecx", "cx", "cl"), "rdi": ("rdi", "edi", "di", "dil")}


def _flag_funnels(binary: GoBinary, hooks: HookReport, graph: CallGraph) -> dict[int, FlagFunnel]:
    out = {}
    by_name = {s.function.name: s for s in hooks.sites}
    for fname, (reg, hook_name) in FLAG_FUNNELS.items():
        f = binary.functions_by_name.get(fname)
        site = by_name.get(hook_name)
        if f is None or site is None or not isinstance(site.spec.rule, FlagRule):
            continue
        i = graph.index_of(f.entry)
        if i is not None:
            out[i] = FlagFunnel(reg, site.spec.rule, hook_name)
    return out


def constant_register(binary: GoBinary, graph: CallGraph, caller: int, site: int, register: str) -> int | None:
    """The constant a register holds at a call instruction, when the few instructions before it set it.

    Looks back at most 8 instructions, stopping (unknown) at any branch, call
    or return: `xor ecx, ecx` is 0, `mov ecx, 0x242` is 0x242, anything else
    writing the register is unknown.
    """
    f = graph.function(caller)
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    insns = [(a, m, o) for a, _s, m, o in md.disasm_lite(binary.image.read(f.entry, site - f.entry), f.entry)]
    names = _REG_ALIASES.get(register, (register,))
    for _addr, mnemonic, op_str in reversed(insns[-8:]):
        if mnemonic.startswith("j") or mnemonic in ("call", "ret"):
            return None
        dest, _, src = op_str.partition(", ")
        if dest not in names:
            continue
        if mnemonic == "xor" and src == dest:
            return 0
        if mnemonic == "mov" and src.startswith("0x"):
            return int(src, 16)
        if mnemonic == "mov" and src.isdigit():
            return int(src)
        return None
    return None


def _is_runtime_code(binary: GoBinary, f: Function) -> bool:
    """The runtime's own code (also where it is linknamed into other packages, like time.now)."""
    if f.name.startswith(RUNTIME_PACKAGES):
        return True
    file = binary.line_at(f.entry)[0]
    return "/src/runtime/" in file or "/src/internal/runtime/" in file


def _normalize(name: str) -> str:
    """`net.(*Dialer).DialContext` -> `net.Dialer.DialContext` (the catalog's `reaches` spelling)."""
    return name.replace("(*", "").replace(")", "")


def _reach_anchors(fns: list[Function], hooks: HookReport) -> dict[int, HookSite]:
    """Std functions the catalog says funnel into a present hook (its `reaches` list).

    Some funnels pass through function variables (net's connectFunc) that a
    static call graph cannot follow; reaching the public API is then proof
    enough, and the path ends with the hook's name in parentheses.
    """
    exact: dict[str, HookSite] = {}
    globs: list[tuple[str, HookSite]] = []
    for site in hooks.sites:
        if site.spec.rule is not None:
            continue  # argument-decided hooks are reached through the call graph (and flag_at_call_site)
        for api in site.spec.reaches:
            if any(c in api for c in "*?["):
                globs.append((api, site))
            else:
                exact.setdefault(api, site)
    out: dict[int, HookSite] = {}
    for i, f in enumerate(fns):
        norm = _normalize(f.name)
        probe = norm
        for _ in range(4):  # the name itself, then its enclosing type/function prefixes
            site = exact.get(probe)
            if site is not None:
                out[i] = site
                break
            cut = probe.rfind(".")
            if cut <= probe.rfind("/"):
                break
            probe = probe[:cut]
        else:
            site = None
        if i not in out:
            for api, site in globs:
                if fnmatch.fnmatchcase(norm, api):
                    out[i] = site
                    break
    return out


def _range_index(starts: list[int], pc: int) -> int:
    return bisect.bisect_right(starts, pc) - 1


def _dedupe(gaps: list[Gap]) -> list[Gap]:
    seen: set[tuple[str, str, str]] = set()
    out = []
    for g in gaps:
        key = (g.kind, g.module, g.detail)
        if key not in seen:
            seen.add(key)
            out.append(g)
    return out
