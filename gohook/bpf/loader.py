"""Compile the gohook BPF program for a plan, fill its maps, attach its uprobes, read its events.

Pipeline stage 4 of: binary -> plan -> BPF -> **attach** -> events -> views.

    with attach(plan) as att:           # compiled, maps filled, every uprobe attached
        while ...:
            for record in att.poll(100): decode_event(record, att.options.layout)
        att.counters().lost

Uprobes are attached per file (every process running the binary, now or
later) or, with `pids`, per process (the kernel filters by address space, so
all threads of each process are covered). The offset given to the kernel is
HookPoint.file_offset, passed to the kernel directly: bcc's Python
`attach_uprobe(addr=...)` would instead treat the number as a virtual
address and translate it through the ELF program headers on every call.

Every probe is a BPF link (gohook.bpf.links): closing its fd detaches it, and
`Attached.pin` pins them all in bpffs, so that enforcement outlives this
process (until gohook.bpf.links.unpin_dir).

With goroutine provenance and the system-call sentinel in the plan, more
programs come along: one on newproc.func1's call of runtime.runqput (or one
per RET instruction of runtime.newproc1), one per RET of runtime.cgocall
(uprobes on instructions, never uretprobes: Go moves stacks), the sentinel on
the raw_syscalls:sys_enter raw tracepoint, and a small program on
sched:sched_process_exec/exit that forgets processes. Processes given with
`pids` are registered for the sentinel right away (with their load bias);
the others register themselves when they start a goroutine (runtime.main's
own creation does, before package initialization).
"""

from __future__ import annotations

import contextlib
import ctypes as ct
import logging
import os
import struct
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gohook.bpf.abi import ARGCHECK_SLOT, DENYMARK, GLOBMATCH_SLOT, SYSRULE, CounterIndex, handler_slot
from gohook.bpf.argtables import ArgTables, build_arg_tables
from gohook.bpf.errors import AttachError, BpfUnavailableError, CompileError, VerifierError
from gohook.bpf.links import (
    DEFAULT_BPFFS,
    ensure_bpffs,
    make_pin_dir,
    pin,
    raw_tracepoint_link,
    tracepoint_link,
    uprobe_link,
)
from gohook.bpf.render import (
    ARGCHECK_NAME,
    CGOCALL_RET_NAME,
    DEFAULT_OPTIONS,
    FILEOPEN_NAME,
    FILEOPEN_SYSCALLS,
    FORGET_NAME,
    GLOBMATCH_NAME,
    GUARD_NAME,
    SENTINEL_NAME,
    KernelTables,
    ProgramOptions,
    build_tables,
    created_name,
    entry_name,
    handler_classes,
    handler_name,
    program_source,
    render_cflags,
    render_program,
    source_path,
)
from gohook.plan.model import EnforcementPlan
from gohook.policy.format import Mode

__all__ = ["Attached", "Counters", "ProgramStats", "attach", "render_cflags", "render_program"]

log = logging.getLogger("gohook")

_VERIFIER_LOG_SIZE = 1 << 22  # the kernel keeps the tail of a longer log, which is what matters
_BPF_PROG_TYPE_KPROBE = 2  # uprobes are kprobe-type programs
_BPF_PROG_TYPE_TRACEPOINT = 5
_BPF_PROG_TYPE_RAW_TRACEPOINT = 17


@dataclass(frozen=True, slots=True)
class Counters:
    """Sums of the per-CPU counters of the program: one field per gohook.bpf.abi.CounterIndex, in its order."""

    lost: int  # events dropped because the ring buffer was full
    hits: int  # counted hook hits
    denied: int  # SIGKILLs sent
    signal_failed: int  # bpf_send_signal errors (the process was NOT killed)
    ignored: int  # direct-caller-only hooks called from std
    garbled: int  # calls or events dropped because a preempting run reused a per-CPU slot
    no_handler: int  # tail calls into the handler that failed (calls not checked)
    goroutines: int = 0  # goroutines created with an inherited module (provenance records)
    syscalls: int = 0  # capability system calls the sentinel decided (no hook point covered them)
    covered: int = 0  # capability system calls inside a hooked call (left to the hook)
    exempt: int = 0  # capability system calls of the runtime itself, or of C code no module called
    errors: int = 0  # denials handed to the tracer to return as an error (action error)


@dataclass(frozen=True, slots=True)
class ProgramStats:
    """Kernel statistics of one entry program (/proc/self/fdinfo of its fd)."""

    name: str
    run_cnt: int  # counted only while sysctl kernel.bpf_stats_enabled=1
    run_time_ns: int
    verified_insns: int


def _may_create_uprobes() -> bool:
    """CAP_SYS_ADMIN in the effective set (uprobes need it on current kernels; see gohook.bpf.host)."""
    from gohook.bpf.host import effective_capabilities, has_bpf_privileges

    return has_bpf_privileges(effective_capabilities())


def _bcc() -> Any:
    try:
        import bcc  # Debian's python3-bpfcc, through the venv's system site packages
    except ImportError as exc:
        raise BpfUnavailableError(
            "cannot import bcc: install Debian's python3-bpfcc and use a venv made with "
            "--system-site-packages on /usr/bin/python3 (scripts/setup.sh does both)") from exc
    return bcc


@contextmanager
def stderr_captured() -> Iterator[list[str]]:
    """Capture file descriptor 2 (where libbcc and clang print) into out[0] while inside."""
    out: list[str] = [""]
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out[0] = tmp.read().decode("utf-8", "replace")


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class Attached:
    """A compiled, loaded and attached gohook program. Use `attach()`; close with `close()` or `with`."""

    def __init__(self, plan: EnforcementPlan, *, pids: Iterable[int] = (),
                 options: ProgramOptions = DEFAULT_OPTIONS, attach_probes: bool = True) -> None:
        if not _may_create_uprobes():
            raise BpfUnavailableError("attaching uprobes needs CAP_SYS_ADMIN (root): run `gohook doctor`")
        self.plan = plan
        self.options = options
        self.pids = tuple(pids)
        self.tables: KernelTables = build_tables(plan)
        self.arg_tables: ArgTables | None = build_arg_tables(plan)
        self.cflags = render_cflags(plan, options, self.tables)
        self._bcc = _bcc()
        self._bpf: Any = None
        self._probes: list[tuple[str, int]] = []  # (pin name, BPF link fd) of attached uprobes
        self._records: list[bytes] = []
        self._entry_fds: dict[int, int] = {}  # hook id -> program fd
        self._extra_fds: dict[str, int] = {}  # provenance / sentinel program name -> fd
        self._tracepoints: list[tuple[str, int]] = []  # (category:event, BPF link fd) of (raw) tracepoints
        self._ringbuf_cb: Any = None
        self._logbuf: Any = None
        self.timings: dict[str, float] = {}
        # action error: how a denied call returns on this kernel (gohook.bpf.selftest.DENY_IN_BPF or
        # DENY_BY_PTRACE: the verifier's answer to gohook_ctxwrite); "" without action error
        self.deny_path = ""
        try:
            self._compile()
            self._fill_maps()
            self._load()
            if attach_probes:
                self.attach_probes()
        except BaseException:
            self.close()
            raise

    # -- set-up -----------------------------------------------------------------

    def _compile(self) -> None:
        start = time.monotonic()
        with stderr_captured() as err:
            try:
                self._bpf = self._bcc.BPF(text=program_source().encode(), cflags=self.cflags)
            except Exception as exc:  # bcc raises a bare Exception
                failure: Exception | None = exc
            else:
                failure = None
        if failure is not None:
            raise CompileError(f"bcc could not compile {source_path()}: {failure}\n{_tail(err[0])}", err[0])
        self.timings["compile"] = time.monotonic() - start

    def _fill_maps(self) -> None:
        start = time.monotonic()
        t = self.tables
        self._fill(b"range_start", t.range_start, ct.c_uint32)
        self._fill(b"range_mods", t.range_mods, ct.c_uint64)
        self._fill(b"range_deny", t.range_deny, ct.c_uint64)
        self._fill(b"page_first", t.page_first, ct.c_uint32)
        self._fill(b"module_mask", t.module_mask, ct.c_uint64)
        if t.module_action:
            self._fill(b"module_action", t.module_action, ct.c_uint32)
        if self.plan.error_action:
            self._fill(b"hook_deny", t.hook_deny, ct.c_uint32)
        if t.range_flags:
            self._fill(b"range_flags", t.range_flags, ct.c_uint32)
        rules = self._bpf[b"sys_rules"]
        for nr, values in t.sys_rules:
            leaf = rules.Leaf()
            for name, value in zip(SYSRULE.value_fields, values, strict=True):
                setattr(leaf, name, value)
            rules[ct.c_uint32(nr)] = leaf
        if self.arg_tables is not None:
            self._fill_arg_tables(self.arg_tables)
        if self._uses_targets:
            targets = self._bpf[b"targets"]
            for pid in self.pids:
                targets[ct.c_uint32(pid)] = ct.c_uint64(load_bias(pid, self.plan.binary, self.plan.pie))
        self.timings["fill"] = time.monotonic() - start

    def refill(self, plan: EnforcementPlan) -> bool:
        """Enforce plan (the same binary under another policy) by rewriting the maps in place, with no probe
        detached (gohook agent's reload). False, and nothing changed, when plan needs another program: other
        defines (a new action, argument rules where there were none, ...) or other probes.

        Arrays are overwritten element by element and hash maps get their new keys before stale ones go, so
        a call racing the update is judged by the old or the new entry of each table, never by a missing one.
        """
        tables = build_tables(plan)
        if (render_cflags(plan, self.options, tables) != self.cflags or _probe_shape(plan) != _probe_shape(self.plan)
                or (build_arg_tables(plan) is None) != (self.arg_tables is None)):
            return False
        stale: dict[bytes, set[bytes]] = {}
        for name in (b"sys_rules", b"hook_scopes", b"arg_globs", b"arg_addrs"):
            if self.arg_tables is not None or name == b"sys_rules":
                stale[name] = {bytes(k) for k in self._bpf[name]}
        self.plan, self.tables, self.arg_tables = plan, tables, build_arg_tables(plan)
        self._fill_maps()
        for name, keys in stale.items():
            table = self._bpf[name]
            for raw in keys - self._fresh_keys(name):
                k = table.Key()
                ct.memmove(ct.byref(k), raw, ct.sizeof(k))
                with contextlib.suppress(KeyError):
                    del table[k]
        return True

    def _fresh_keys(self, name: bytes) -> set[bytes]:
        """The keys the current plan writes into hash map name (refill's stale-key test)."""
        t = self.arg_tables
        if name == b"sys_rules":
            raws = [struct.pack("<I", nr) for nr, _ in self.tables.sys_rules]
        elif t is None:
            raws = []
        elif name == b"hook_scopes":
            raws = [struct.pack("<I", i) for i in t.hook_scopes]
        else:
            raws = [k for k, _ in (t.glob_items() if name == b"arg_globs" else t.addr_items())]
        key_type = self._bpf[name].Key
        out = set()
        for raw in raws:  # as the map's key type holds them (bytes() of a key read back compares equal)
            k = key_type()
            ct.memmove(ct.byref(k), raw, min(len(raw), ct.sizeof(k)))
            out.add(bytes(k))
        return out

    def _fill_arg_tables(self, t: ArgTables) -> None:
        """The maps of argument-scoped grants (gohook.bpf.argtables): raw bytes into bcc's leaf types."""
        self._fill(b"module_scoped", t.module_scoped, ct.c_uint64)
        for name, items in ((b"hook_scopes", [(struct.pack("<I", i), v) for i, v in t.hook_scopes.items()]),
                            (b"arg_globs", t.glob_items()), (b"arg_addrs", t.addr_items())):
            table = self._bpf[name]
            for key, value in items:
                k, v = table.Key(), table.Leaf()
                ct.memmove(ct.byref(k), key, ct.sizeof(k))
                ct.memmove(ct.byref(v), value, ct.sizeof(v))
                table[k] = v

    def _fill(self, name: bytes, values: tuple[int, ...], ctype: Any) -> None:
        table = self._bpf[name]
        n = len(values)
        keys = (ct.c_uint32 * n)(*range(n))
        vals = (ctype * n)(*values)
        try:
            table.items_update_batch(keys, vals)
        except Exception:  # kernels without batch ops on arrays: one update per element
            for i, v in enumerate(values):
                table[ct.c_uint32(i)] = ctype(v)

    def _load_one(self, name: bytes, what: str, prog_type: int = _BPF_PROG_TYPE_KPROBE) -> int:
        bpf, lib = self._bpf, self._bcc.lib
        if self._logbuf is None:
            self._logbuf = ct.create_string_buffer(_VERIFIER_LOG_SIZE)
        logbuf = self._logbuf
        fd, errno = -1, 0
        for log_level in (0, 1):  # the log only when loading fails (libbcc does not always retry with one)
            logbuf[0] = b"\0"
            with stderr_captured() as err:
                fd = lib.bcc_func_load(bpf.module, prog_type, name,
                                       lib.bpf_function_start(bpf.module, name),
                                       lib.bpf_function_size(bpf.module, name),
                                       lib.bpf_module_license(bpf.module), lib.bpf_module_kern_version(bpf.module),
                                       log_level, logbuf, ct.sizeof(logbuf), None, -1)
                errno = ct.get_errno()
            if fd >= 0 or logbuf.value:
                break
        if fd < 0:
            text = logbuf.value.decode("utf-8", "replace") + err[0]
            raise VerifierError(
                f"the kernel refused program {name.decode()} ({what}): "
                f"{os.strerror(errno) if errno else 'error'}\n{_tail(text)}", text, name.decode())
        bpf.funcs[name] = self._bcc.BPF.Function(bpf, name, fd)
        return int(fd)

    def _load(self) -> None:
        start = time.monotonic()
        if self.options.shared_handler:
            if self.arg_tables is not None:
                for name, slot, what in ((ARGCHECK_NAME, ARGCHECK_SLOT, "the argument check of argument-scoped grants"),
                                         (GLOBMATCH_NAME, GLOBMATCH_SLOT, "the glob match of argument-scoped grants")):
                    fd = self._load_one(name.encode(), what)
                    self._extra_fds[name] = fd
                    self._bpf[b"handler"][ct.c_int(slot)] = ct.c_int(fd)
            for kind, direct in handler_classes(self.plan):
                name = handler_name(kind, direct)
                handler_fd = self._load_one(name.encode(), f"the handler of {kind.name} hooks"
                                            + (" (direct caller only)" if direct else ""))
                self._bpf[b"handler"][ct.c_int(handler_slot(kind, direct))] = ct.c_int(handler_fd)
        self._entry_fds = {h.hook_id: self._load_one(entry_name(h).encode(), f"hook {h.hook_id}, {h.function}")
                           for h in self.plan.hooks}
        if self.plan.provenance is not None:
            for i in range(len(self.plan.provenance.created)):
                self._extra_fds[created_name(i)] = self._load_one(created_name(i).encode(),
                                                                  "the goroutine-created probe")
        if self.plan.sentinel is not None:
            self._extra_fds[CGOCALL_RET_NAME] = self._load_one(CGOCALL_RET_NAME.encode(), "runtime.cgocall's RET")
            self._extra_fds[SENTINEL_NAME] = self._load_one(SENTINEL_NAME.encode(), "the system-call sentinel",
                                                            _BPF_PROG_TYPE_RAW_TRACEPOINT)
        if self.plan.file_open:
            self._extra_fds[FILEOPEN_NAME] = self._load_one(FILEOPEN_NAME.encode(), "the file-open judge",
                                                            _BPF_PROG_TYPE_TRACEPOINT)
        if self.plan.guard is not None:
            self._extra_fds[GUARD_NAME] = self._load_one(GUARD_NAME.encode(), "the guard", _BPF_PROG_TYPE_TRACEPOINT)
        if self._uses_targets:
            self._extra_fds[FORGET_NAME] = self._load_one(FORGET_NAME.encode(), "process exit/exec",
                                                          _BPF_PROG_TYPE_TRACEPOINT)
        if self.plan.error_action:
            self.deny_path = self._deny_path()
        self._ringbuf_cb = self._on_record
        self._bpf[b"events"].open_ring_buffer(self._ringbuf_cb)
        self._bpf[b"violations"].open_ring_buffer(self._ringbuf_cb)  # deny/audit: never crowded out
        self.timings["load"] = time.monotonic() - start

    def _deny_path(self) -> str:
        """Whether the verifier loads gohook_ctxwrite (a uprobe program writing its registers). Either way the
        denial returns through the tracer: the in-BPF return is not built yet (docs/policy.md)."""
        from gohook.bpf.selftest import DENY_BY_PTRACE, DENY_IN_BPF

        with stderr_captured():
            try:
                self._bpf.load_func(b"gohook_ctxwrite", self._bcc.BPF.KPROBE)
            except Exception:  # bcc raises bare Exceptions
                return DENY_BY_PTRACE
        return DENY_IN_BPF

    def _probe_path(self) -> bytes:
        """The file to put the uprobes on. /proc/PID/exe and /proc/PID/root/... stay as they are: the kernel
        follows those magic links into the target's mount namespace, which Path.resolve() would leave (it
        reads the link as a path of ours)."""
        binary = str(self.plan.binary)
        path = os.fsencode(binary if binary.startswith("/proc/") else Path(binary).resolve())
        if not os.path.exists(path):
            raise AttachError(f"{self.plan.binary}: no such file")
        return path

    def attach_probes(self) -> None:
        """Attach one uprobe per hook (per pid, when pids were given), each a BPF link; a no-op when attached."""
        if self._probes:
            return
        start = time.monotonic()
        path = self._probe_path()
        try:
            # the sentinel first: a process the goroutine-created probe registers must already be watched
            self._attach_tracepoints()
            for fd, offset, what, name in self._uprobe_list():
                for pid in self.pids or (-1,):
                    try:
                        link = uprobe_link(fd, path, offset, pid)
                    except AttachError as exc:
                        raise type(exc)(f"{what}: {exc}") from None
                    self._probes.append((name if pid < 0 else f"{name}_pid{pid}", link))
        except BaseException:
            self.detach_probes()
            raise
        self.timings["attach"] = time.monotonic() - start
        log.debug("gohook BPF: compile %.2fs, fill %.3fs, load %.2fs, attach %.2fs for %d uprobes",
                  self.timings["compile"], self.timings["fill"], self.timings["load"], self.timings["attach"],
                  len(self._probes))

    def attach_copy(self, path: str) -> list[tuple[str, int]]:
        """The same uprobes, for every process, on another file with the same content (a container's copy of
        the binary, reached as /proc/PID/exe): (name, link fd) pairs the caller owns; closing a link detaches
        it. The caller checks the content is the same (gohook.agent.sessions)."""
        links: list[tuple[str, int]] = []
        try:
            for fd, offset, what, name in self._uprobe_list():
                try:
                    links.append((name, uprobe_link(fd, path, offset, -1)))
                except AttachError as exc:
                    raise type(exc)(f"{what}: {exc}") from None
        except BaseException:
            for _name, link in links:
                os.close(link)
            raise
        return links

    def _uprobe_list(self) -> list[tuple[int, int, str, str]]:
        """(program fd, file offset, what, pin name) of every uprobe to attach."""
        out = [(self._entry_fds[h.hook_id], h.file_offset, f"hook {h.hook_id} ({h.function})", f"hook_{h.hook_id}")
               for h in self.plan.hooks]
        prov, sentinel = self.plan.provenance, self.plan.sentinel
        if prov is not None:
            what = "runtime.newproc.func1's runqput call" if prov.new_g_register == "bx" else "runtime.newproc1's RET"
            out += [(self._extra_fds[created_name(i)], r.file_offset, what, f"newg{i}")
                    for i, r in enumerate(prov.created)]
        if sentinel is not None:
            out += [(self._extra_fds[CGOCALL_RET_NAME], r.file_offset, "runtime.cgocall's RET", f"cgoret{i}")
                    for i, r in enumerate(sentinel.cgocall_returns)]
        return out

    @property
    def _uses_targets(self) -> bool:
        """Judges that run for the processes of the binary in `targets` (the sentinel, the file-open judge,
        the guard): `targets` is then filled, and emptied by the forget program at exec and exit."""
        return self.plan.sentinel is not None or self.plan.file_open or self.plan.guard is not None

    def _attach_tracepoints(self) -> None:
        """Every tracepoint program of the plan; before the uprobes, so that a process the goroutine-created
        probe registers is already watched: the sentinel on raw_syscalls:sys_enter, the file-open judge at
        syscalls:sys_exit_<open> (lib/fileopen.h), the guard at syscalls:sys_enter_<name> of each guarded
        system call (lib/guard.h), the forget program at sched:sched_process_exec/exit."""
        if self._tracepoints:
            return
        if self.plan.sentinel is not None:
            try:
                fd = raw_tracepoint_link(self._extra_fds[SENTINEL_NAME], "sys_enter")
            except AttachError as exc:
                raise type(exc)(f"the system-call sentinel: {exc}") from None
            self._tracepoints.append(("raw_syscalls:sys_enter", fd))
        events: list[tuple[str, str, str, str]] = []  # (program, category, event, what)
        if self.plan.file_open:
            events += [(FILEOPEN_NAME, "syscalls", f"sys_exit_{n}", "the file-open judge") for n in FILEOPEN_SYSCALLS]
        if self.plan.guard is not None:
            events += [(GUARD_NAME, "syscalls", f"sys_enter_{n}", "the guard") for n in self.plan.guard.syscalls]
        if self._uses_targets:
            events += [(FORGET_NAME, "sched", e, "process exit/exec") for e in ("sched_process_exec",
                                                                                 "sched_process_exit")]
        for prog, category, event, what in events:
            try:
                fd = tracepoint_link(self._extra_fds[prog], category, event)
            except AttachError as exc:
                raise type(exc)(f"{what}: {exc}") from None
            self._tracepoints.append((f"{category}:{event}", fd))

    def guard_processes(self, pids: Iterable[int]) -> None:
        """Name gohook's own processes and threads (numbers of this pid namespace) to the GUARD test:
        signals, ptrace and memory writes aimed at them are tamper. -1 (every process) always is."""
        table = self._bpf[b"guarded"]
        for pid in (-1, *pids):
            table[ct.c_uint32(pid & 0xFFFFFFFF)] = ct.c_uint8(1)

    def set_traced(self, tgid: int, traced: bool) -> None:
        """Tell the program whether gohook's tracer holds every thread of tgid (action error: only then may a
        denial be returned as an error; else it kills). A no-op when no module's action is error."""
        if self._bpf is None or not self.plan.error_action:
            return
        table = self._bpf[b"traced"]
        key = ct.c_uint32(tgid)
        if traced:
            table[key] = ct.c_uint32(1)
        else:
            with contextlib.suppress(KeyError):
                del table[key]

    def take_deny_mark(self, tid: int) -> dict[str, int] | None:
        """The mark the program left thread tid with its SIGSYS (struct gohook_denymark, gohook.bpf.abi.DENYMARK),
        removed from the map; None when there is none (a SIGSYS that is not gohook's)."""
        if self._bpf is None or not self.plan.error_action:
            return None
        table = self._bpf[b"deny_marks"]
        key = ct.c_uint32(tid)
        try:
            leaf = table[key]
        except KeyError:
            return None
        with contextlib.suppress(KeyError):
            del table[key]
        raw = ct.string_at(ct.byref(leaf), DENYMARK.size)
        return dict(zip(DENYMARK.value_fields, DENYMARK.format.unpack(raw), strict=True))

    def detach_probes(self) -> None:
        """Close every uprobe and tracepoint link: each detaches, unless pinned (`pin`: then it stays until
        gohook.bpf.links.unpin_dir). The program, its maps and pending events stay."""
        while self._tracepoints:
            _what, fd = self._tracepoints.pop()
            os.close(fd)
        while self._probes:
            _name, fd = self._probes.pop()
            os.close(fd)

    def pin(self, directory: str) -> int:
        """Pin every uprobe and tracepoint link, and every map, in directory (made if missing; inside a bpffs,
        which is mounted on /sys/fs/bpf if it is not yet); how many pins.

        Names: hook_<id> (hook_<id>_pid<pid> with pids), newg<i>, cgoret<i>, tp_<category>_<event>, and
        map_<name>. The link pins hold the probes, and through them the programs and their maps, after this
        process closes them or exits: enforcement goes on until gohook.bpf.links.unpin_dir(directory). The
        maps are pinned because a program array is emptied when its last user reference (fd or pin) goes:
        without the pin of `handler`, every entry program's tail call into its handler would fail once this
        process exits, and no hooked call would be checked (and a later agent finds the maps by name). On
        failure the pins made so far are removed again.
        """
        if not self._probes and not self._tracepoints:
            raise AttachError("nothing to pin: no probe is attached (attach_probes first)")
        if os.path.abspath(directory).startswith(DEFAULT_BPFFS + "/"):
            ensure_bpffs(DEFAULT_BPFFS)
        make_pin_dir(directory)
        items = [(name, fd) for name, fd in self._probes]
        items += [("tp_" + what.replace(":", "_"), fd) for what, fd in self._tracepoints]
        items += [("map_" + name, fd) for name, fd in self._map_fds()]
        made: list[str] = []
        try:
            for name, fd in items:
                path = os.path.join(directory, name)
                pin(fd, path)
                made.append(path)
        except BaseException:
            for path in made:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            raise
        return len(made)

    def _map_fds(self) -> list[tuple[str, int]]:
        """(name, fd) of every map of the program, from libbcc's module (bcc's Python knows only those it
        opened)."""
        if self._bpf is None:
            return []
        lib, module = self._bcc.lib, self._bpf.module
        lib.bpf_num_tables.argtypes, lib.bpf_num_tables.restype = [ct.c_void_p], ct.c_size_t
        lib.bpf_table_name.argtypes, lib.bpf_table_name.restype = [ct.c_void_p, ct.c_size_t], ct.c_char_p
        out = []
        for i in range(lib.bpf_num_tables(module)):
            name = lib.bpf_table_name(module, i)
            fd = lib.bpf_table_fd(module, name) if name else -1
            if fd >= 0:
                out.append((name.decode(), int(fd)))
        return out

    # -- events -------------------------------------------------------------------

    def _on_record(self, _ctx: Any, data: Any, size: int) -> int:
        self._records.append(ct.string_at(data, size))
        return 0

    def poll(self, timeout_ms: int = 100) -> list[bytes]:
        """Event records that arrived within timeout_ms (all that are ready; none after the timeout).

        Records are the raw bytes of struct gohook_event: gohook.events.decode turns them into Events
        (with this session's `options.layout`).
        """
        if self._bpf is None:
            return []
        self._bpf.ring_buffer_poll(timeout_ms)
        return self._drain()

    def drain(self) -> list[bytes]:
        """Event records already in the ring buffer, without waiting."""
        if self._bpf is None:
            return []
        self._bpf.ring_buffer_consume()
        return self._drain()

    def _drain(self) -> list[bytes]:
        records, self._records = self._records, []
        return records

    def counters(self) -> Counters:
        """The program's counters, summed over CPUs."""
        if self._bpf is None:
            raise AttachError("the program is detached")
        table = self._bpf[b"counters"]
        values = [sum(int(v) for v in table.getvalue(ct.c_int(i))) for i in CounterIndex]
        return Counters(*values)

    def learned_counts(self) -> dict[tuple[int, int, int], int]:
        """Calls counted in the kernel by (hook id, module id, capability bit), whatever became of their events:
        in learn mode and with ProgramOptions.count_calls (empty otherwise)."""
        if self._bpf is None or (self.plan.mode is not Mode.LEARN and not self.options.count_calls):
            return {}
        out: dict[tuple[int, int, int], int] = {}
        for key, value in self._bpf[b"learned_calls"].items():
            k = int(key.value)
            out[(k >> 32, (k >> 8) & 0xFFFF, k & 0xFF)] = int(value.value)
        return out

    def program_stats(self) -> list[ProgramStats]:
        """run_cnt / run_time_ns / verified_insns of every entry program."""
        out = []
        for name, fn in (self._bpf.funcs.items() if self._bpf is not None else ()):
            fields: dict[str, int] = {}
            for line in Path(f"/proc/self/fdinfo/{fn.fd}").read_text().splitlines():
                key, _, value = line.partition(":")
                if value.strip().isdigit():
                    fields[key.strip()] = int(value.strip())
            out.append(ProgramStats(name.decode(), fields.get("run_cnt", 0), fields.get("run_time_ns", 0),
                                    fields.get("verified_insns", 0)))
        return out

    @property
    def probe_count(self) -> int:
        return len(self._probes)

    # -- tear-down ----------------------------------------------------------------------

    def close(self) -> None:
        """Detach every uprobe and free the program (idempotent)."""
        self.detach_probes()
        if self._bpf is not None:
            bpf, self._bpf = self._bpf, None
            bpf.cleanup()

    def __enter__(self) -> Attached:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _probe_shape(plan: EnforcementPlan) -> tuple[object, ...]:
    """What decides which programs are loaded and where probes go: equal shapes can share attached probes."""
    return (tuple((h.hook_id, h.function, h.file_offset) for h in plan.hooks), plan.provenance, plan.sentinel,
            plan.file_open, plan.guard)


def _first_load_vaddr(binary: str) -> int:
    """The link-time address of file offset 0 (the PT_LOAD segment that starts the file): 0 for Go PIE
    binaries up to 1.26, 0x400000 for Go 1.27's (which link PIE at the non-PIE base)."""
    from elftools.elf.elffile import ELFFile  # pyelftools: only needed for --pid targets of PIE binaries

    try:
        with open(binary, "rb") as f:
            for seg in ELFFile(f).iter_segments():
                if seg["p_type"] == "PT_LOAD" and seg["p_offset"] == 0:
                    return int(seg["p_vaddr"])
    except (OSError, ValueError) as exc:
        raise AttachError(f"{binary}: cannot read its program headers: {exc}") from exc
    raise AttachError(f"{binary}: no loadable segment starts the file")


def load_bias(pid: int, binary: str, pie: bool) -> int:
    """Run-time address - static address of binary in process pid (0 unless PIE), from /proc/PID/maps: where
    file offset 0 is mapped, less its link-time address."""
    if not pie:
        return 0
    target = os.path.realpath(binary)
    try:
        lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
    except OSError as exc:
        raise AttachError(f"process {pid}: cannot read its memory map: {exc.strerror or exc}") from exc
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == target and int(fields[2], 16) == 0:
            return int(fields[0].split("-")[0], 16) - _first_load_vaddr(target)
    raise AttachError(f"process {pid} does not map {binary}")


def attach(plan: EnforcementPlan, *, pids: Iterable[int] = (), options: ProgramOptions = DEFAULT_OPTIONS,
           attach_probes: bool = True) -> Attached:
    """Compile the program for plan, fill its maps and attach one uprobe per hook (per pid, if given)."""
    return Attached(plan, pids=pids, options=options, attach_probes=attach_probes)
