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

Raw system calls (raw_calls: a module's calls of syscall.Syscall* and x/sys's
unix.Syscall* stubs) are charged as the kernel charges them (lib/sysrules.h):
`syscall` and the capability the number's rule gives (raw_charge, the rules of
gohook.sites.syscalls), from the number and arguments that are constants at
the call site; an argument that decides and is not constant gives every
capability the rule can (openat with flags not constant: files.read and
files.write); a number with no rule gives nothing more; a number that is not
constant gives nothing more either, and the module's raw_syscall gap says the
grant may then be incomplete.

Gaps name what no hook can block (docs/capabilities.md, "What inspect cannot
block: gaps"): besides C, plugins, exec and the module's own `syscall`
instructions, a module's calls of unexported standard-library functions
(`linkname`: reachable only through //go:linkname), capability functions it
takes as values for other code to run (`func_value`), its calls of system-call
wrappers whose class depends on their arguments (`syscall_wrapper`: mprotect,
mmap, madvise, sendto, sendmsg, io_uring setup: judged at run time by their
hooks, the raw rules and the guard, but worth a reviewer's look), and the
system call numbers its raw calls load as constants, named by
gohook.sites.syscalls (and the raw calls whose number is not a constant).
"""

from __future__ import annotations

import bisect
import fnmatch
import re
import struct
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType

from gohook.attribution.ranges import function_pieces
from gohook.errors import GohookError
from gohook.gosym import STD, GoBinary, machinecode
from gohook.gosym.pclntab import Function
from gohook.sites.catalog import FlagRule, ValueRule
from gohook.sites.hooks import HookReport, HookSite
from gohook.sites.syscalls import RAW, ArgTest, SyscallSpec, all_rules, classify, syscall_name
from gohook.static.callgraph import DECODER, CallGraph, TextView

# Standard-library handlers that serve files on a module's behalf: the opens happen later, in std code on
# the server's goroutines, so they are charged to whoever runs the server (docs/evasion.md).
STD_HANDLERS = frozenset({"net/http.FileServer", "net/http.FileServerFS", "net/http.ServeFile",
                          "net/http.ServeFileFS", "net/http.ServeContent"})

# Packages whose own `syscall` instructions are the runtime's business (memory,
# scheduling, signals, timers), not capabilities of the code that reaches them.
RUNTIME_PACKAGES = ("runtime.", "internal/runtime/", "runtime/")

# Runtime functions the compiler and linker call from any package's code (the builtin declarations
# of cmd/compile/internal/typecheck/_builtin/runtime.go in Go 1.19 to 1.27, and what the back end
# emits: stack growth, write barriers, bounds panics, malloc specializations, cgo stubs). Calls to
# other unexported standard-library functions from a module's own frame are reachable only through
# //go:linkname (gap `linkname`).
_COMPILER_RUNTIME_NAMES = """
    KeepAlive addCovMeta asanread asanregisterglobals asanwrite assertE2I assertE2I2 assertI2I assertI2I2 block
    c128equal c128hash c64equal c64hash chancap chanlen chanrecv1 chanrecv2 chansend1 checkptrAlignment
    checkptrArithmetic closechan cmpstring complex128div concatbyte2 concatbyte3 concatbyte4 concatbyte5 concatbytes
    concatstring2 concatstring3 concatstring4 concatstring5 concatstrings convI2I convT convT16 convT32 convT64
    convTnoptr convTslice convTstring countrunes decoderune deferrangefunc efaceeq f32equal f32hash f64equal
    f64hash fastrand float64toint64 float64touint32 float64touint64 getcallerpc getcallersp gopanic gorecover
    goschedguarded growslice growsliceBuf growsliceBufNoAlias growsliceNoAlias ifaceeq int64div int64mod
    int64tofloat32 int64tofloat64 interequal interfaceSwitch interhash intstring makechan makechan64 makemap
    makemap64 makemap_small makeslice makeslice64 makeslicecopy mallocgc mapIterNext mapIterStart mapaccess1
    mapaccess1_fast32 mapaccess1_fast64 mapaccess1_faststr mapaccess1_fat mapaccess2 mapaccess2_fast32
    mapaccess2_fast64 mapaccess2_faststr mapaccess2_fat mapassign mapassign_fast32 mapassign_fast32ptr
    mapassign_fast64 mapassign_fast64ptr mapassign_faststr mapclear mapdelete mapdelete_fast32 mapdelete_fast64
    mapdelete_faststr mapiterinit mapiternext memclrHasPointers memclrNoHeapPointers memmove moveSlice
    moveSliceNoCap moveSliceNoCapNoScan moveSliceNoScan msanmove msanread msanwrite mulUintptr newobject
    nilinterequal nilinterhash printbool printcomplex printcomplex128 printcomplex64 printeface printfloat
    printfloat32 printfloat64 printhex printiface printint printlock printnl printpointer printquoted printslice
    printsp printstring printuint printuintptr printunlock rand rand32 selectgo selectnbrecv selectnbsend
    selectsetpc slicebytetostring slicebytetostringtmp slicecopy slicerunetostring strequal strhash
    stringtoslicebyte stringtoslicerune throwinit typeAssert typedmemclr typedmemmove typedslicecopy
    uint32tofloat64 uint64div uint64mod uint64tofloat32 uint64tofloat64 unsafeslicecheckptr unsafestringcheckptr
    deferproc deferprocStack deferreturn newproc duffzero duffcopy wbZero wbMove memequal_varlen memhash_varlen
    cgocall cgocallback addmoduledata gcWriteBarrier procyield
"""
COMPILER_RUNTIME = frozenset(_COMPILER_RUNTIME_NAMES.split())
COMPILER_RUNTIME_PREFIXES = ("morestack", "gcWriteBarrier", "panic", "goPanic", "memequal", "memhash", "race",
                             "msan", "asan", "libfuzzer", "mallocgc", "mallocTiny", "cgo", "_cgo", "check")
_GENERATED = re.compile(r"^(func|gowrap|deferwrap|glob\.func)\d+$|-fm$|-range\d+$")

# Wrappers of system calls whose classes (gohook/sites/syscalls.yaml: memory.exec, tamper, io_uring,
# sendto/sendmsg with an address) no hook charges: function -> system call number.
_WRAPPED = MappingProxyType({"Mprotect": 10, "Mmap": 9, "MmapPtr": 9, "Madvise": 28, "Sendto": 44, "Sendmsg": 46,
                             "SendmsgN": 46, "SendmsgBuffers": 46})
# Their unexported callees are listed too: where the compiler inlines a wrapper into module code, the call
# site left there calls them (syscall.Mmap inlined calls syscall.(*mmapper).Mmap).
_WRAPPED_INNER = MappingProxyType({"(*mmapper).Mmap": 9, "mmap": 9, "mprotect": 10, "madvise": 28, "sendto": 44,
                                   "sendmsg": 46, "sendmsgN": 46})
SYSCALL_WRAPPERS = MappingProxyType({f"{pkg}.{name}": nr for pkg in ("syscall", "golang.org/x/sys/unix")
                                     for name, nr in (_WRAPPED | _WRAPPED_INNER).items()})
IO_URING_SETUP = re.compile(r"io_?uring_?setup|setup_?io_?uring", re.IGNORECASE)
IO_URING_SETUP_NR = 425

# Entry points whose first argument (rax, Go register ABI) is the system call number.
RAW_SYSCALL_ENTRIES = frozenset(f"{pkg}.{name}" for pkg in ("syscall", "golang.org/x/sys/unix")
                                for name in ("Syscall", "Syscall6", "RawSyscall", "RawSyscall6", "RawSyscallNoError",
                                             "SyscallNoError"))
FUNC_VALUE_SEARCH_LIMIT = 4000  # std functions visited per function value before giving up (capabilities so far)


@dataclass(frozen=True)
class CapabilityPath:
    capability: str
    path: tuple[str, ...]  # module function -> ... -> hook function


@dataclass(frozen=True)
class Gap:
    kind: str  # cgo, exec, plugin, raw_syscall, asm, inlined_hook, frame_pointer, unhooked_syscall, no_buildinfo,
    # linkname, func_value, syscall_wrapper, std_handler, indirect_calls, unenforced_hook
    module: str  # module path, or "" for the whole binary
    detail: str
    remedy: str
    function: str = ""  # the module function at fault, when one is
    address: int = 0  # an example address in it (a call site, a `syscall` or `lea` instruction), when one is
    syscalls: tuple[int, ...] = ()  # system call numbers seen as constants there (raw_syscall, asm, syscall_wrapper)


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
    # module -> its direct call sites (caller function index, call address, callee function index), inline-aware:
    # where the searches of the capabilities start (gohook.static.arguments reads the arguments there)
    call_sites: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)


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


def _saves_frame_pointer_python(code: bytes, entry: int) -> bool:
    """Whether a function whose first bytes are `code` saves RBP (push, or a store below RSP) before any call or
    return: the reference for gohook.gosym._scan.frame_pointer_saves, and its fallback."""
    md = DECODER
    for _addr, _size, mnemonic, op_str in md.disasm_lite(code, entry):
        if mnemonic == "push" and op_str == "rbp":
            return True
        if mnemonic == "mov" and op_str.startswith("qword ptr [rsp") and op_str.endswith(", rbp"):
            return True
        if mnemonic in ("call", "ret"):
            return False
    return False


def frame_pointer_saves(binary: GoBinary, functions: list[Function]) -> list[bool]:
    """_saves_frame_pointer_python of each function's first 64 bytes; in C when the scanner is built (1.1 s of
    Python per-instruction steps on Debian's prometheus, 0.13 s in C: issue 17 §6)."""
    accel = machinecode.scanner()
    view = TextView(binary)
    lo, hi = view.base, view.base + len(view.view)
    if accel is not None and all(lo <= f.entry <= f.end <= hi for f in functions):
        flags = accel.frame_pointer_saves(view.view, lo, [f.entry for f in functions], [f.end for f in functions])
        return [bool(b) for b in flags]
    return [_saves_frame_pointer_python(binary.image.read(f.entry, min(64, f.end - f.entry)), f.entry)
            for f in functions]


def rule_enforceable(rule: FlagRule | ValueRule) -> bool:
    """Whether the BPF program evaluates this capability rule (gohook.plan.build.hook_point): flag bits of a
    register argument, or a value table on a stack argument."""
    if isinstance(rule, FlagRule):
        return rule.at.register is not None
    return rule.at.stack_offset is not None


def analyze(binary: GoBinary, hooks: HookReport, graph: CallGraph) -> Analysis:
    fns = binary.functions
    module_of = binary.function_modules
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

    # every module function is scanned below: do it up front, in parallel where worthwhile
    graph.prescan(i for i, mod in enumerate(module_of) if mod != STD)
    hook_at = {graph.index_of(e): s for e, s in hooks.by_entry.items()}
    # a direct_caller_only hook is probed at the calls of every function of its name (the hooked one and its
    # ABI wrapper: gohook.sites.hooks.place_direct_hooks), so a module calling the other one is charged at
    # run time too: it is the hook here as well (kingpin and dennwc/ioctl call syscall.Syscall6's ABIInternal
    # entry while the site is on its ABI0 wrapper: learn saw `syscall` that static analysis did not grant)
    direct_by_name = {s.function.name: s for s in hooks.by_entry.values() if s.spec.direct_caller_only}
    for i, f in enumerate(fns):
        site = direct_by_name.get(f.name)
        if site is not None:
            hook_at.setdefault(i, site)
    anchors = _reach_anchors(fns, hooks, module_of)
    funnels = _flag_funnels(binary, hooks, graph)
    gaps: list[Gap] = []
    linked: set[tuple[str, str, str]] = set()
    valued: set[tuple[str, str, int]] = set()
    value_caps: dict[int, frozenset[str]] = {}
    abi0 = Abi0Callees(binary)

    def module_of_name(name: str) -> str:
        return binary.module_of(name)

    linkname_memo: dict[tuple[str, bool], bool] = {}
    value_memo: dict[int, int | None] = {}  # _function_value by address (170,000 lea operands in prometheus)

    def linkname_only_memo(name: str, goroot_code: bool) -> bool:
        """linkname_only, memoized by its arguments (asked once per call site: 240,000 times in prometheus)."""
        got = linkname_memo.get((name, goroot_code))
        if got is None:
            got = linkname_memo[(name, goroot_code)] = linkname_only(name, goroot_code)
        return got

    def value_capabilities(target: int) -> frozenset[str]:
        """Capabilities a std function taken as a value reaches through the standard library (memoized)."""
        got = value_caps.get(target)
        if got is None:
            got = value_caps[target] = _reach_capabilities(graph, target, module_of, hook_at, anchors)
        return got

    # -- call sites attributed to modules (inline-aware) ---------------------------
    sources: dict[str, list[tuple[int, int, int]]] = {m: [] for m in modules}  # module -> (caller, site, callee)
    fp_checked = 0
    goroot = {m: m.split("/")[0] == "cmd" for m in modules}  # a module whose code is GOROOT's (linkname_only)
    handler_names: dict[int, str] = {}  # inline-record name offset -> the name when in STD_HANDLERS, else ""
    module_functions = [i for i, mod in enumerate(module_of) if mod != STD]
    # the frame-pointer check runs beside the loop below (in C, without the GIL: issue 17 §6); the loop notes
    # where each of its gaps would go, and they are put there once the check is done
    fp_pool = ThreadPoolExecutor(1, thread_name_prefix="gohook-fp")
    fp_saves_job = fp_pool.submit(frame_pointer_saves, binary, [fns[i] for i in module_functions])
    fp_pool.shutdown(wait=False)
    fp_wanted: list[tuple[int, int, str, str]] = []  # (position in gaps, function index, module, name)
    for i, f in enumerate(fns):
        own = module_of[i]
        # A standard-library function can hold inlined module code only when it is a
        # generic instantiation (its type arguments may come from a module).
        if own == STD and ("[" not in f.name or not binary.table.has_inline_tree(f)):
            continue
        # the inline-aware attribution of f's code: piece starts and their modules (innermost first)
        starts, piece_modules = function_pieces(binary, f, module_id)
        if own == STD and not any(piece_modules):
            continue
        scan = graph.scan(i)
        if own != STD:
            modules[own].indirect_calls += scan.indirect_calls
            numbers = _numbers(binary, f, scan.syscalls)
            if scan.syscalls:
                gaps.append(Gap("raw_syscall", own, f"{f.name} issues the syscall instruction itself "
                                f"({len(scan.syscalls)} site(s), e.g. {scan.syscalls[0]:#x}): no hook point sees it"
                                + _numbers_note(numbers),
                                "deny the module or review its assembly; the syscall sentinel reports it at run time",
                                f.name, scan.syscalls[0], numbers))
            if binary.is_assembly(f):
                gaps.append(Gap("asm", own, f"{f.name} is assembly: it may bypass frame pointers and hooks"
                                + _numbers_note(numbers),
                                "review the assembly; use unattributed: deny so forged stacks are not allowed",
                                f.name, scan.syscalls[0] if scan.syscalls else f.entry, numbers))
            if "uring" in f.name.lower() and IO_URING_SETUP.search(f.name.rpartition("/")[2]):
                gaps.append(_wrapper_gap(own, f.name, f.name, f.entry, IO_URING_SETUP_NR))
            if scan.call_pairs:
                fp_checked += 1
                fp_wanted.append((len(gaps), i, own, f.name))
        if own != STD and binary.table.has_inline_tree(f):
            for _fid, name_off, _ppc in binary.table.inline_records(f):
                inl = handler_names.get(name_off)
                if inl is None:
                    inl = binary.table.inlined_name(name_off)
                    handler_names[name_off] = inl = inl if inl in STD_HANDLERS else ""
                if inl:
                    gaps.append(Gap("std_handler", own, f"{f.name} hands requests to {inl} (inlined): the files it "
                                    "serves are opened by standard-library code on the server's goroutines and "
                                    "charged to the module that runs the server, not to this one",
                                    "review what this module serves; restrict files.read of the serving module"))
        fend = f.end
        whole = piece_modules[0] if len(starts) == 1 else None  # no inline tree: the whole function is one piece
        for site, target in scan.transfers():
            ti = graph.index_of(target)
            if ti is None:
                continue
            mods = _piece_at(starts, piece_modules, whole, fend, site)
            if mods:
                mod = names[mods[0]]
                sources[mod].append((i, site, ti))
                callee = fns[ti].name
                if callee in SYSCALL_WRAPPERS:
                    gaps.append(_wrapper_gap(mod, f.name, callee, site, SYSCALL_WRAPPERS[callee]))
                elif callee in RAW_SYSCALL_ENTRIES:
                    continue  # (raw_calls, below)
                elif (module_of[ti] == STD and linkname_only_memo(callee, goroot[mod])
                      and (mod, f.name, callee) not in linked):
                    frame = next(iter(_frames(binary, site)), None)
                    if frame is not None and module_of_name(frame) == mod and not _cgo_generated(frame):
                        linked.add((mod, f.name, callee))
                        gaps.append(Gap("linkname", mod, f"{frame} calls {callee} (at {site:#x}), an unexported "
                                        "standard-library function its code can reach only through //go:linkname: "
                                        "hooks on the public API it bypasses do not see it",
                                        "review the module; deny it the capabilities the linknamed function "
                                        "reaches by other means, or remove the dependency", frame, site))
        for site, ref in scan.address_refs():
            ti = value_memo.get(ref, -1)
            if ti == -1:
                ti = value_memo[ref] = _function_value(binary, graph, ref)
            if ti is None or ti == i or module_of[ti] != STD:
                continue
            mods = _piece_at(starts, piece_modules, whole, fend, site)
            if not mods or (names[mods[0]], f.name, ti) in valued:
                continue
            valued.add((names[mods[0]], f.name, ti))
            # Not when standard-library code inlined into the module takes a function of its own package (a
            # closure of its own, like telemetry's counter.CountFlags.func1): that is std's business. Arguments
            # an inlined std call materializes (reflect.ValueOf(os.WriteFile)) are the module's.
            frames = _frames(binary, site)
            if not frames or (module_of_name(frames[0]) == STD
                              and binary.package_of(frames[0]) == binary.package_of(fns[ti].name)):
                continue
            frame = next((fr for fr in frames if module_of_name(fr) == names[mods[0]]), f.name)
            caps = value_capabilities(ti)
            if caps:
                gaps.append(Gap("func_value", names[mods[0]],
                                f"{frame} takes {fns[ti].name} as a value (at {site:#x}), which reaches "
                                f"{', '.join(sorted(caps))}: whichever code calls it (another module's goroutine) "
                                "is charged, not this module",
                                "review where the value goes; deny those capabilities to the modules that run it",
                                frame, site))
                if fns[ti].name in STD_HANDLERS:
                    gaps.append(Gap("std_handler", names[mods[0]],
                                    f"{f.name} hands requests to {fns[ti].name}: the files it serves are opened "
                                    "by standard-library code on the server's goroutines and charged to the module "
                                    "that runs the server, not to this one",
                                    "review what this module serves; restrict files.read of the serving module"))
    fp_saves = dict(zip(module_functions, fp_saves_job.result(), strict=True))
    for at, i, own, name in reversed(fp_wanted):  # (from the last: the earlier positions stay right)
        if not fp_saves[i]:
            gaps.insert(at, Gap("frame_pointer", own, f"{name} calls other functions without saving RBP: stack "
                                "walks through it lose the caller",
                                "rebuild with frame pointers (the default on amd64); use unattributed: deny"))
    # -- raw system calls: `syscall` and what the kernel charges their numbers -------------------------
    raws: dict[str, list[RawCall]] = {}
    for raw in raw_calls(binary, graph, sources, abi0):
        raws.setdefault(raw.module, []).append(raw)
    # -- reachability through the standard library ---------------------------------------
    # (a std function's resolved edges, shared by every module's walk: 1,000,000 edge visits on prometheus)
    std_edges: dict[int, tuple[tuple[int, int], ...]] = {}
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

        def record(caller: int, hook_index: int, call: int, rep: ModuleReport = rep) -> None:
            site = hook_at[hook_index]
            caps = site.capabilities
            rule = site.spec.rule
            if isinstance(rule, ValueRule) and rule.at.stack_offset is not None:
                # a value rule on a stack argument (syscall.rawSyscallNoError's number): the constant the call
                # site stores decides, as the kernel's HOOK_VALUE does (getpid is system.read, not modify)
                value = constant_stack_argument(binary, fns[caller], call, rule.at.stack_offset - 8)
                if value is not None:
                    cap = rule.evaluate(value)
                    caps = frozenset({cap}) if cap is not None else frozenset()
            for cap in sorted(caps):
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
                record(caller, ti, site)
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
            # (a direct_caller_only hook reached through the standard library is the mechanism of another hook:
            # the kernel does not charge it, so neither does the analysis: issue 17 §4, SetBlocking -> fcntl ->
            # syscall.Syscall made `syscall` look needed by 35 of 109 modules)
            if anchor is not None and not anchor.spec.direct_caller_only:
                for cap in sorted(anchor.capabilities):
                    if cap not in rep.capabilities:
                        rep.capabilities[cap] = CapabilityPath(cap, (*path_to(n), f"({anchor.function.name})"))
            edges = std_edges.get(n)
            if edges is None:
                edges = std_edges[n] = tuple((site, m) for site, target in scan.transfers()
                                             if (m := graph.index_of(target)) is not None)
            for site, m in edges:
                if m in hook_at:
                    if not hook_at[m].spec.direct_caller_only:
                        record(n, m, site)
                elif m in funnels and flag_funnel(n, site, m):
                    continue
                elif module_of[m] == STD and m not in parent:
                    parent[m] = n
                    queue.append(m)
    # the raw calls' capabilities, after the hooks' (whose example paths stay): from a call whose number and
    # arguments decide first
    for mod, calls in raws.items():
        rep = modules.get(mod)
        if rep is None:
            continue
        for raw in sorted(calls, key=lambda r: r.charge is None or bool(r.charge.undecided)):
            for cap in sorted(raw.capabilities):
                if cap not in rep.capabilities:
                    rep.capabilities[cap] = CapabilityPath(cap, raw.path)
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
            mine = raws.get(mod, [])
            numbers = tuple(sorted({r.charge.nr for r in mine if r.charge is not None}))
            gaps.append(Gap("raw_syscall", mod, "makes raw system calls: " + " -> ".join(caps["syscall"].path)
                            + _numbers_note(numbers, "at its call sites") + _raw_charge_note(mine),
                            "hooked at the syscall.Syscall* entry (capability `syscall`, and the capability of "
                            "each call's system call number); deny it unless needed",
                            caps["syscall"].path[0], 0, numbers))
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
    return Analysis(modules, _dedupe(gaps), graph.scanned, fp_checked, sources)


@dataclass(frozen=True)
class FlagFunnel:
    """A std function whose flag argument decides a rule hook further down (os.OpenFile -> syscall.openat)."""

    register: str  # where the flag is at the call (Go register ABI)
    rule: FlagRule
    hook: str


# function -> (flag register, hook whose rule the flag feeds). os.OpenFile(name string, flag int, perm FileMode):
# name in rax/rbx, flag in rcx. os.Open, os.Create, os.ReadFile, os.WriteFile all call it with constants.
FLAG_FUNNELS = {"os.OpenFile": ("rcx", "syscall.openat")}
_GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", *(f"r{n}" for n in range(8, 16)))


def _full_names(register: str) -> tuple[str, ...]:
    """The names of a general-purpose register whose writes set all of it: the 64-bit name and the 32-bit one
    (a 32-bit write zero-extends). A write to an 8- or 16-bit part leaves the rest as it was, so it is not read
    as a constant (rax -> (rax, eax); r8 -> (r8, r8d))."""
    if register.startswith("r") and register[1:].isdigit():
        return (register, f"{register}d")
    if register in _GPRS:
        return (register, f"e{register[1:]}")
    return (register,)


def _all_names(register: str) -> tuple[str, ...]:
    """Every name of a general-purpose register's parts (rax -> rax, eax, ax, al, ah; r8 -> r8, r8d, r8w, r8b)."""
    if register.startswith("r") and register[1:].isdigit():
        return (register, f"{register}d", f"{register}w", f"{register}b")
    if register not in _GPRS:
        return (register,)
    base = register[1:]  # ax, bx, si, bp
    low = f"{base[0]}l" if base.endswith("x") else f"{base}l"
    high = (f"{base[0]}h",) if base.endswith("x") else ()
    return (register, f"e{base}", base, low, *high)


def _immediate(src: str) -> int | None:
    """The value of an immediate operand as capstone prints it (`0x29`, `9`), else None."""
    if src.startswith("0x"):
        return int(src, 16)
    return int(src) if src.isdigit() else None


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
    or return: `xor ecx, ecx` is 0, `mov ecx, 0x242` is 0x242, `mov edi, ecx`
    is what ecx held, anything else writing the register is unknown.
    """
    return _constant_before(binary, graph.function(caller), site, register)


LOOK_BACK = 8  # instructions read back from a call for a constant (a register, the number of a raw call)
# ... for the arguments of a raw system call: Syscall6 takes seven registers, which the compiler loads in any order
RAW_ARGUMENT_LOOK_BACK = 16


def _instructions_before(binary: GoBinary, f: Function, site: int, count: int) -> list[tuple[str, str]]:
    """The last `count` instructions of f before `site`, as (mnemonic, operands) (decoded from f's entry, so
    that they are the instructions the CPU runs)."""
    code = binary.image.read(f.entry, site - f.entry)
    return [(m, o) for _a, _s, m, o in DECODER.disasm_lite(code, f.entry)][-count:]


def _constant_before(binary: GoBinary, f: Function, site: int, register: str) -> int | None:
    """The constant `register` holds at `site` in f (see constant_register)."""
    return _register_constant(_instructions_before(binary, f, site, LOOK_BACK), register)


def _register_constant(insns: list[tuple[str, str]], register: str) -> int | None:
    """The constant `register` holds after insns (mnemonic, operands), from the last one writing it: `xor eax,
    eax` is 0, `mov eax, 0x29` is 0x29, `mov edi, ecx` what ecx held before (a 32-bit write zero-extends); any
    other write (of a part of it too), and a branch, call or return on the way back, make it unknown (None)."""
    full, names = _full_names(register), _all_names(register)
    for k in range(len(insns) - 1, -1, -1):
        mnemonic, op_str = insns[k]
        if mnemonic.startswith("j") or mnemonic in ("call", "ret"):
            return None
        dest, _, src = op_str.partition(", ")
        if dest not in names:
            continue
        if dest not in full:
            return None
        if mnemonic == "xor" and src == dest:
            return 0
        if mnemonic != "mov":
            return None
        value = _immediate(src)
        if value is not None:
            return value
        source = _register_of(src)
        if source is None or source == register:
            return None
        value = _register_constant(insns[:k], source)  # a copy of a register holding a constant
        if value is None:
            return None
        return value if dest == full[0] else value & 0xFFFFFFFF
    return None


def _register_of(operand: str) -> str | None:
    """The 64-bit general-purpose register an operand names in full or in its low 32 bits (`ecx` -> `rcx`,
    `r8d` -> `r8`), else None (memory, immediates, 8- and 16-bit parts)."""
    if operand in _GPRS:
        return operand
    if operand.startswith("r") and operand.endswith("d") and f"{operand[:-1]}" in _GPRS:
        return operand[:-1]
    wide = f"r{operand[1:]}"
    return wide if operand.startswith("e") and wide in _GPRS else None


_RSP_OPERAND = re.compile(r"^(byte|word|dword|qword|xmmword|ymmword|zmmword) ptr \[rsp(?: \+ (0x[0-9a-f]+|\d+))?\]$")
_OPERAND_SIZE = MappingProxyType({"byte": 1, "word": 2, "dword": 4, "qword": 8, "xmmword": 16, "ymmword": 32,
                                  "zmmword": 64})


def _rsp_store(operand: str) -> tuple[int, int] | None:
    """(offset, size) of a memory operand [RSP + offset] as capstone prints it, else None."""
    m = _RSP_OPERAND.match(operand)
    if m is None:
        return None
    offset = m[2] or "0"
    return int(offset, 16) if offset.startswith("0x") else int(offset), _OPERAND_SIZE[m[1]]


def constant_stack_argument(binary: GoBinary, f: Function, site: int, offset: int) -> int | None:
    """The constant f stores at [RSP + offset] for the call at `site` (an ABI0 stack argument), when one of
    the 8 instructions before it does (`mov qword ptr [rsp + 8], 0x27`; a register loaded with a constant
    first is followed); None when unknown. A branch, call or return in between stops the look-back."""
    return _stack_constant(_instructions_before(binary, f, site, LOOK_BACK), offset, _x15_is_zero(binary, f))


def _x15_is_zero(binary: GoBinary, f: Function) -> bool:
    """Whether X15 holds zero in f's code: Go's register ABI keeps it zero in every Go function (the compiler
    zeroes two stack words at once with `movups [rsp + N], xmm15`); assembly may use it for anything."""
    return not binary.is_assembly(f)


def _stack_constant(insns: list[tuple[str, str]], offset: int, x15_zero: bool = False) -> int | None:
    """The constant the qword at [RSP + offset] holds after insns (see constant_stack_argument): the last store
    overlapping it decides; a 16-byte store of X15 covering it is 0 where x15_zero."""
    for k in range(len(insns) - 1, -1, -1):
        mnemonic, op_str = insns[k]
        if mnemonic.startswith("j") or mnemonic in ("call", "ret"):
            return None
        dest, _, src = op_str.partition(", ")
        store = _rsp_store(dest)
        if store is None or not (store[0] < offset + 8 and offset < store[0] + store[1]):
            continue
        if (store[0], store[1]) != (offset, 8):
            covered = store[0] <= offset and offset + 8 <= store[0] + store[1]
            zero = x15_zero and src == "xmm15" and mnemonic in ("movups", "movdqu", "movaps", "movdqa")
            return 0 if covered and zero else None
        if mnemonic != "mov":
            return None
        value = _immediate(src)
        if value is not None:
            return value
        return _register_constant(insns[:k], src) if src in _GPRS else None  # a register holding a constant
    return None


class Abi0Callees:
    """Which functions take their arguments on the stack (Go's ABI0), memoized per binary.

    Go code calls an assembly function directly through its ABI0 symbol, with the arguments stored at [RSP],
    [RSP+8], ... (golang.org/x/sys/unix.socket: `mov qword ptr [rsp], 0x29; mov qword ptr [rsp+8], rax;
    call unix.RawSyscall.abi0`): RAX there holds whatever the caller had in it (socket's own first argument,
    the domain: 16 for AF_NETLINK; Uname's buffer pointer). Assembly reaches Go functions through an ABI0
    wrapper of the same name (syscall.RawSyscall.abi0) that loads the registers from the stack. Both are ABI0:
    a function marked assembly (funcFlag_ASM, or whose source is a .s file), and a function sharing its name
    with another that loads a register argument from the stack before its first call.
    """

    def __init__(self, binary: GoBinary) -> None:
        self.binary = binary
        self._memo: dict[int, bool] = {}
        self._shared: frozenset[str] | None = None

    def shared_names(self) -> frozenset[str]:
        """Names held by more than one function (a function and its ABI wrapper)."""
        if self._shared is None:
            seen: set[str] = set()
            dup: set[str] = set()
            for f in self.binary.functions:
                (dup if f.name in seen else seen).add(f.name)
            self._shared = frozenset(dup)
        return self._shared

    def __call__(self, f: Function) -> bool:
        got = self._memo.get(f.entry)
        if got is None:
            got = self._memo[f.entry] = self._abi0(f)
        return got

    def _abi0(self, f: Function) -> bool:
        if self.binary.is_assembly(f):
            return True
        if f.name not in self.shared_names() or f.end <= f.entry:
            return False
        code = self.binary.image.read(f.entry, min(96, f.end - f.entry))
        for _a, _s, mnemonic, op_str in DECODER.disasm_lite(code, f.entry):
            if mnemonic in ("call", "ret") or mnemonic.startswith("j"):
                return False
            dest, _, src = op_str.partition(", ")
            if mnemonic == "mov" and dest in ("rax", "eax") and src.startswith("qword ptr [rsp + "):
                return True  # the wrapper loads the first register argument from its caller's stack
        return False


def raw_syscall_number(binary: GoBinary, f: Function, site: int, callee: Function, *, tail: bool = False,
                       abi0: Abi0Callees | None = None) -> int | None:
    """The system call number f passes at `site` to a raw system-call entry `callee` (RAW_SYSCALL_ENTRIES), or
    None when it is not a constant there.

    The number is the entry's first argument: RAX for a Go (ABIInternal) function, [RSP] at the call for an
    ABI0 one (Abi0Callees: the assembly of golang.org/x/sys/unix and of syscall.rawSyscallNoError, an ABI0
    wrapper). A tail jump into an ABI0 function passes on its own caller's stack arguments: unknown here.
    The look-back is RAW_ARGUMENT_LOOK_BACK instructions: x/sys's openat stores its number before six
    arguments, and loads some of them from its own frame on the way.
    """
    if (abi0 or Abi0Callees(binary))(callee):
        if tail:
            return None
        return _stack_constant(_instructions_before(binary, f, site, RAW_ARGUMENT_LOOK_BACK), 0,
                               _x15_is_zero(binary, f))
    return _register_constant(_instructions_before(binary, f, site, RAW_ARGUMENT_LOOK_BACK), "rax")


# How a call site decides the argument tests of the system-call rules (gohook.sites.syscalls.ArgTest kinds): by
# an argument's value (a constant there decides: mask, eq, type), by run-time state no constant shows (self: the
# pid is the calling process; ptr: the memory an argument points to), or by whether the call aims at gohook's own
# processes or at the binary's probed code (guard, text). What the kernel charges for the last (tamper,
# memory.exec) is the attack the rule stops, never a capability a module's code needs: it is not granted.
_VALUE_TESTS = frozenset({"mask", "eq", "type"})
_STATE_TESTS = frozenset({"self", "ptr"})
_ATTACK_TESTS = frozenset({"guard", "text"})
# a1..a6 of a call of syscall.Syscall6 in Go's register ABI, as the kernel reads them (GOHOOK_GOSYSARGS)
_GO_SYSCALL_ARGUMENTS = ("rbx", "rcx", "rdi", "rsi", "r8", "r9")
SYSCALL_CAPABILITY = "syscall"  # what every raw system call needs (the catalog's raw_syscall hooks)


@cache
def raw_rules() -> Mapping[int, SyscallSpec]:
    """The rules the kernel judges a raw system call by, by number: gohook.sites.syscalls.all_rules, the ones
    the RAW judge uses (the plan's syscall_rules, loaded into sys_rules). A number without one is charged
    `syscall` only."""
    return MappingProxyType({s.nr: s for s in all_rules() if RAW in s.judges})


@dataclass(frozen=True)
class RawCharge:
    """What the kernel charges a raw system call of number `nr` with besides `syscall`, as far as its call site
    shows (raw_charge)."""

    nr: int
    name: str
    capabilities: frozenset[str] = frozenset()
    undecided: tuple[str, ...] = ()  # what decides among them and is not a constant at the call ("flags")
    withheld: frozenset[str] = frozenset()  # charged only when the call aims at gohook itself: not granted

    @property
    def label(self) -> str:
        """`41: socket`, or `257: openat, depends on flags: not constant here`."""
        text = f"{self.nr}: {self.name}"
        if self.undecided:
            text += f", depends on {' and '.join(self.undecided)}: not constant here"
        return text


def raw_charge(nr: int, args: Sequence[int | None] = ()) -> RawCharge:
    """The capabilities the kernel charges a raw system call of number nr with besides `syscall`, by the rule it
    judges the number by (raw_rules, as gohook_sysrule does: the first test that holds decides, else the
    rule's capability); args[k] is argument k+1's value at the call, None where it is not a constant.

    A test on an argument that is not a constant, or on run-time state, may go either way: every capability
    the rule can give then (openat with flags not constant: files.read and files.write), and `undecided` says
    what decides. A test on whether the call aims at gohook's own processes or code (`guard`, `text`) is taken
    not to hold: its capability is `withheld`. A number without a rule gives nothing (the kernel charges it
    `syscall` only).
    """
    rule = raw_rules().get(nr & 0xFFFFFFFF) if nr >= 0 else None  # the kernel reads the number as a u32
    name = syscall_name(nr)
    if rule is None:
        return RawCharge(nr, name)
    caps: set[str] = set()
    undecided: list[str] = []
    withheld: set[str] = set()
    for test in rule.all_tests:
        if test.kind in _ATTACK_TESTS:
            if test.capability is not None:
                withheld.add(test.capability)
            continue
        holds: bool | None = None
        if test.kind in _VALUE_TESTS:
            value = args[test.arg] if test.arg < len(args) else None
            holds = None if value is None else _test_holds(test, value)
            if holds is None:
                undecided.append("flags" if rule.write_capability and test.arg == rule.flags_arg
                                 else f"argument {test.arg + 1}")
        elif test.capability is not None:
            undecided.append(f"what argument {test.arg + 1} points to" if test.kind == "ptr"
                             else f"whose process argument {test.arg + 1} is")
        if holds is not False and test.capability is not None:
            caps.add(test.capability)
        if holds is True:
            break
    else:
        if rule.capability is not None:
            caps.add(rule.capability)
    return RawCharge(nr, name, frozenset(caps), tuple(dict.fromkeys(undecided)), frozenset(withheld - caps))


def _test_holds(test: ArgTest, value: int) -> bool:
    """Whether a value test holds for a constant argument (gohook_systest's mask, eq and type)."""
    value &= 0xFFFFFFFFFFFFFFFF
    if test.kind == "mask":
        return value & test.operand != 0
    if test.kind == "eq":
        return value == test.operand
    return (1 << (value & 0xF)) & test.operand != 0  # type: socket(2)'s type without its flags, one of a set


def raw_call_arguments(binary: GoBinary, f: Function, site: int, callee: Function, *, tail: bool = False,
                       abi0: Abi0Callees | None = None) -> tuple[int | None, ...]:
    """The six system-call arguments f passes at `site` to a raw system-call entry `callee`, each a constant or
    None (not constant there), as the kernel reads them: RBX, RCX, RDI, RSI, R8, R9 for a Go entry, [RSP+8],
    [RSP+16] ... for an ABI0 one (see raw_syscall_number); a three-argument entry (Syscall, RawSyscall, the
    NoError ones) passes 0 for the others."""
    nargs = 6 if callee.name.endswith("6") else 3
    if (abi0 or Abi0Callees(binary))(callee):
        if tail:
            known: tuple[int | None, ...] = (None,) * nargs
        else:
            insns = _instructions_before(binary, f, site, RAW_ARGUMENT_LOOK_BACK)
            x15 = _x15_is_zero(binary, f)
            known = tuple(_stack_constant(insns, 8 * (k + 1), x15) for k in range(nargs))
    else:
        insns = _instructions_before(binary, f, site, RAW_ARGUMENT_LOOK_BACK)
        known = tuple(_register_constant(insns, reg) for reg in _GO_SYSCALL_ARGUMENTS[:nargs])
    return known + (0,) * (6 - nargs)


@dataclass(frozen=True)
class RawCall:
    """A call of a raw system-call entry (RAW_SYSCALL_ENTRIES) in module code, as the kernel charges it."""

    module: str  # the module charged
    frames: tuple[str, ...]  # the logical functions at the call, outermost first
    site: int
    callee: str
    charge: RawCharge | None  # None: the number is not a constant at the call

    @property
    def capabilities(self) -> frozenset[str]:
        """`syscall` and what its number is charged (nothing more known when the number is not)."""
        return frozenset({SYSCALL_CAPABILITY}) | (self.charge.capabilities if self.charge else frozenset())

    @property
    def path(self) -> tuple[str, ...]:
        """The example path of its capabilities: `golang.org/x/sys/unix.socket -> golang.org/x/sys/unix.RawSyscall
        (41: socket)`."""
        return (*self.frames, f"{self.callee} ({self.charge.label if self.charge else 'number not constant here'})")


def raw_calls(binary: GoBinary, graph: CallGraph, call_sites: Mapping[str, Iterable[tuple[int, int, int]]],
              abi0: Abi0Callees | None = None) -> list[RawCall]:
    """The raw system calls among modules' direct call sites (Analysis.call_sites: module -> (caller, site,
    callee)), each with the module the kernel charges and what its number is charged.

    The module is the call site's (the hook on syscall.Syscall* and their ABI0 wrappers, where x/sys's stubs
    jump, charges the frame that called), except for an entry that issues the system call itself (x/sys's
    SyscallNoError and RawSyscallNoError assembly: a `syscall` instruction site of its own module, charged to
    that module whatever the caller). An x/sys stub's own jump on is left out: it passes its caller's number,
    charged at the calls of the stub.
    """
    abi0 = abi0 or Abi0Callees(binary)
    fns = binary.functions
    tails: dict[int, frozenset[int]] = {}
    out = []
    for module, sites in call_sites.items():
        for caller, site, callee in sites:
            target, f = fns[callee], fns[caller]
            if target.name not in RAW_SYSCALL_ENTRIES or f.name in RAW_SYSCALL_ENTRIES:
                continue
            charged = module
            owner = binary.code_module(target.name, pc=target.entry)
            if owner != STD and graph.scan(callee).syscalls:
                charged = owner
            if caller not in tails:
                tails[caller] = frozenset(s for s, _t in graph.scan(caller).tail_jumps())
            tail = site in tails[caller]
            nr = raw_syscall_number(binary, f, site, target, tail=tail, abi0=abi0)
            charge = None
            if nr is not None:
                rule = raw_rules().get(nr & 0xFFFFFFFF) if nr >= 0 else None
                args = raw_call_arguments(binary, f, site, target, tail=tail, abi0=abi0) if rule and rule.all_tests \
                    else ()
                charge = raw_charge(nr, args)
            frames = tuple(reversed(_frames(binary, site))) or (f.name,)
            out.append(RawCall(charged, frames, site, target.name, charge))
    return out


def linkname_only(name: str, goroot_code: bool = False) -> bool:
    """Whether a standard-library function is reachable from other packages only through //go:linkname.

    Its own identifier (a method's name, not its receiver's) is unexported, or its package is internal
    (`internal/...`, `.../internal/...`, `vendor/...`; unless the caller is itself in GOROOT, like the
    `cmd` tools, which may import them: `goroot_code`); compiler-generated code (closures, wrappers,
    type algorithms) and the runtime entry points the compiler itself calls (COMPILER_RUNTIME) are not.
    """
    if name.startswith(("type:", "type.", "go:", "go.")):
        return False
    base = name.split("[", 1)[0]
    slash = base.rfind("/")
    dot = base.find(".", slash + 1)
    if dot < 0:
        return False
    pkg, ident = base[:dot], base[dot + 1 :].rpartition(".")[2]
    if not ident or _GENERATED.search(ident) or _GENERATED.search(base[dot + 1 :]):
        return False
    runtime = pkg in ("runtime", "internal/runtime/sys", "internal/abi") or pkg.startswith("runtime/internal/")
    if runtime and (ident in COMPILER_RUNTIME or ident.startswith(COMPILER_RUNTIME_PREFIXES)):
        return False
    internal = pkg.startswith(("internal/", "vendor/")) or "/internal/" in pkg or pkg.endswith("/internal")
    return (internal and not goroot_code) or not ident[0].isupper()


def _cgo_generated(name: str) -> bool:
    """cmd/cgo's glue (_cgo_cmalloc, _Cfunc_*): it reaches runtime internals by its own //go:linkname."""
    return name.rpartition(".")[2].startswith(("_cgo", "_C"))


def _frames(binary: GoBinary, site: int) -> list[str]:
    """The logical functions at an instruction, innermost first (inline-aware); empty if unknown."""
    try:
        return [fr.function for fr in binary.frames(site, return_address=False)]
    except GohookError:
        return []


def _function_value(binary: GoBinary, graph: CallGraph, ref: int) -> int | None:
    """The function an address loaded by `lea` stands for: a function entry (a code pointer, as the
    compiler builds method values and closures with), or a static function value (a funcval whose first
    word is a function entry, as `os.Remove` passed as data is); None otherwise."""
    if binary.text_start <= ref < binary.text_end:
        return graph.index_of(ref)
    try:
        (word,) = struct.unpack("<Q", binary.image.read(ref, 8))
    except (GohookError, struct.error):
        return None
    if binary.text_start <= word < binary.text_end:
        return graph.index_of(word)
    return None


def _reach_capabilities(graph: CallGraph, start: int, module_of: list[str], hook_at: dict[int, HookSite],
                        anchors: dict[int, HookSite]) -> frozenset[str]:
    """Capabilities reachable from a std function through std code (bounded by FUNC_VALUE_SEARCH_LIMIT)."""
    caps: set[str] = set()
    seen = {start}
    queue = deque([start])
    while queue and len(seen) <= FUNC_VALUE_SEARCH_LIMIT:
        n = queue.popleft()
        site = hook_at.get(n)
        if site is not None:
            if n == start or not site.spec.direct_caller_only:
                caps.update(site.capabilities)
            continue
        anchor = anchors.get(n)
        if anchor is not None:
            caps.update(anchor.capabilities)
        for m in graph.edges(n):
            if m not in seen and module_of[m] == STD:
                seen.add(m)
                queue.append(m)
    return frozenset(caps)


def _numbers(binary: GoBinary, f: Function, syscalls: tuple[int, ...]) -> tuple[int, ...]:
    """System call numbers loaded as constants into rax before f's `syscall` instructions."""
    out = set()
    for site in syscalls:
        nr = _constant_before(binary, f, site, "rax")
        if nr is not None:
            out.add(nr)
    return tuple(sorted(out))


def _numbers_note(numbers: tuple[int, ...] | list[int], where: str = "") -> str:
    """`; system calls seen: openat (257, files.write), getpid (39, system.read)` (empty without numbers)."""
    if not numbers:
        return ""
    named = ", ".join(f"{c.name or 'syscall'} ({n}, {c.class_})" for n, c in ((n, classify(n)) for n in numbers))
    return f"; system calls seen{' ' + where if where else ''}: {named}"


def _raw_charge_note(calls: list[RawCall]) -> str:
    """What the raw_syscall gap adds about a module's raw calls: the calls whose number is not a constant (the
    kernel charges whatever system call it is: no static grant can name it) and the capabilities withheld."""
    note = ""
    unknown = [r for r in calls if r.charge is None]
    if unknown:
        note += (f"; {len(unknown)} call site(s) pass a system call number that is not a constant there (e.g. "
                 f"{unknown[0].frames[-1]} at {unknown[0].site:#x}): the kernel charges that system call's "
                 "capability too, which static analysis cannot name: the grant may be incomplete")
    withheld: dict[str, set[str]] = {}
    for r in calls:
        if r.charge is not None:
            for cap in r.charge.withheld:
                withheld.setdefault(cap, set()).add(r.charge.name)
    if withheld:
        named = ", ".join(f"{cap} ({', '.join(sorted(n))})" for cap, n in sorted(withheld.items()))
        note += (f"; not granted: {named}, charged only when the call aims at gohook's own processes or at the "
                 "binary's code")
    return note


def _wrapper_gap(module: str, function: str, callee: str, site: int, nr: int) -> Gap:
    c = classify(nr)
    what = f"calls {callee}" if callee != function else "is named like an io_uring setup"
    return Gap("syscall_wrapper", module,
               f"{function} {what} (at {site:#x}): {c.name} ({nr}) can be {c.class_} ({c.reason}); enforcement "
               "judges each call by its arguments (its hook, the raw-system-call rules, the guard's tracepoint)",
               f"grant {c.class_} only if the module needs it; review why it makes this call",
               function, site, (nr,))


def _is_runtime_code(binary: GoBinary, f: Function) -> bool:
    """The runtime's own code (also where it is linknamed into other packages, like time.now)."""
    if f.name.startswith(RUNTIME_PACKAGES):
        return True
    file = binary.file_at(f.entry)
    return "/src/runtime/" in file or "/src/internal/runtime/" in file


def _normalize(name: str) -> str:
    """`net.(*Dialer).DialContext` -> `net.Dialer.DialContext` (the catalog's `reaches` spelling)."""
    return name.replace("(*", "").replace(")", "")


def _reach_anchors(fns: list[Function], hooks: HookReport, module_of: Sequence[str]) -> dict[int, HookSite]:
    """Std functions the catalog says funnel into a present hook (its `reaches` list); module_of[i] is the
    module of function i (the searches ask only about standard-library functions).

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
    # one regular expression for every glob: most names match none, and trying each glob on each of 63,000
    # names was 0.1 s on Debian's prometheus (issue 17 §6); a name it matches tries the globs in order
    any_glob = re.compile("|".join(fnmatch.translate(api) for api, _ in globs)) if globs else None
    for i, f in enumerate(fns):
        if module_of[i] != STD:
            continue
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
        if i not in out and any_glob is not None and any_glob.match(norm):
            for api, site in globs:
                if fnmatch.fnmatchcase(norm, api):
                    out[i] = site
                    break
    return out


def _piece_at(starts: list[int], modules: list[tuple[int, ...]], whole: tuple[int, ...] | None, end: int,
              pc: int) -> tuple[int, ...]:
    """The modules of the function_pieces piece holding pc (`whole`: those of a function in one piece; `end`:
    the function's end), () outside the function."""
    if not starts[0] <= pc < end:
        return ()
    if whole is not None:
        return whole
    return modules[bisect.bisect_right(starts, pc) - 1]


def _dedupe(gaps: list[Gap]) -> list[Gap]:
    seen: set[tuple[str, str, str]] = set()
    out = []
    for g in gaps:
        key = (g.kind, g.module, g.detail)
        if key not in seen:
            seen.add(key)
            out.append(g)
    return out
