"""`gohook doctor`: can `gohook attach` work on this machine? Each check says why, and how to fix it.

Checks, in order (ids as in `--json`):

| id | looks at | fails when |
|---|---|---|
| privileges | CapEff in /proc/self/status | no CAP_SYS_ADMIN (uprobes need it, see has_bpf_privileges) |
| bcc | `import bcc` | missing, broken libbcc, or PyPI's unrelated `bcc` |
| kernel-headers | BCC_KERNEL_SOURCE, /lib/modules/R/build (+ source), kheaders | bcc finds no headers |
| tracefs | /sys/kernel/tracing/uprobe_events, the uprobe PMU | no way to make a uprobe (PMU only: warn) |
| lockdown | /sys/kernel/security/lockdown | never: none/integrity ok, confidentiality warns |
| probe-limit | BCC_PROBE_LIMIT, RLIMIT_NOFILE, catalog hook count | open-files limit below one attach's need |
| uprobes | a uprobe on a throwaway helper process | no hit, or [rsp] / R14 read wrong |
| send-signal | bpf_send_signal(SIGKILL) from that uprobe | the helper survives or runs the body |
| ring-buffer | BPF_RINGBUF_OUTPUT from that uprobe | it does not load, or no event arrives |

The last three compile one small BPF program (the whole doctor takes about
0.7s here) and run a helper process twice. The helper is a 640-byte static x86-64 ELF
executable that this module writes to a temporary directory: no Go
toolchain is needed on user machines, and it looks like what gohook really
probes (a static, non-PIE executable whose probed function starts with Go's
stack check `cmp rsp, [r14+0x10]`, an instruction the kernel single-steps out
of line, as at real Go function entries). It reads one byte from stdin, then
calls `doctor_target`, which writes "x" to stdout; the doctor attaches its
uprobe per process (as `attach --pid` does) while the helper waits in read().
The same run checks that the probe sees the right process, that
bpf_probe_read_user reads the return address at [rsp] (what stack walks need)
and that R14 (Go's current g) is readable. For send-signal the helper must die
of SIGKILL without printing: the kill lands before the probed function's body
runs, which is gohook's enforcement guarantee.

When securityfs is not mounted, the lockdown check (as root) mounts it in a
private mount namespace of an `unshare` child to read the mode: nothing
changes outside that child.

`preflight()` is the fast subset (privileges, bcc, headers, tracefs: no BPF
compile) that `gohook attach` runs first; `first_failure()` turns it into the
one-line message attach fails with.

Exit status: 0 when attach can work (warnings allowed), 1 when a check
failed. `--quick` runs only the checks that load nothing into the kernel.
JSON (`--json`): {"ok", "seconds", "checks": [{"id", "title", "status",
"detail", "fix", "seconds"}]}.
"""

from __future__ import annotations

import argparse
import ctypes as ct
import enum
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gohook.errors import Exit

__all__ = [
    "Check",
    "Environment",
    "ProbeHelper",
    "Status",
    "bpf_checks",
    "first_failure",
    "has_bpf_privileges",
    "preflight",
    "probe_helper",
    "register",
    "run",
    "run_checks",
]

SETUP_HINT = "scripts/setup.sh does it on Debian"


class Status(enum.Enum):
    OK = "ok"
    WARN = "warn"  # attach works, but something is worth knowing
    FAIL = "fail"  # attach cannot work until this is fixed


@dataclass(frozen=True, slots=True)
class Check:
    """One check's verdict: `detail` says what was found, `fix` what to do (empty when ok)."""

    id: str
    title: str
    status: Status
    detail: str
    fix: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "status": self.status.value, "detail": self.detail,
                "fix": self.fix, "seconds": round(self.seconds, 3)}


def _ok(id_: str, title: str, detail: str) -> Check:
    return Check(id_, title, Status.OK, detail)


@dataclass(frozen=True)
class Environment:
    """Where the checks look. Tests point single fields elsewhere (e.g. a missing modules_dir)."""

    proc_status: Path = Path("/proc/self/status")
    modules_dir: Path = field(default_factory=lambda: Path("/lib/modules") / os.uname().release)
    kernel_source: Path | None = field(  # bcc's override of modules_dir/build
        default_factory=lambda: Path(os.environ["BCC_KERNEL_SOURCE"]) if os.environ.get("BCC_KERNEL_SOURCE") else None)
    kheaders: Path = Path("/sys/kernel/kheaders.tar.xz")
    tracefs: tuple[Path, ...] = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
    uprobe_pmu: Path = Path("/sys/bus/event_source/devices/uprobe/type")
    lockdown: Path = Path("/sys/kernel/security/lockdown")
    # read lockdown through a private mount namespace when securityfs is not mounted (root only)
    lockdown_via_unshare: bool = True


# --- privileges -------------------------------------------------------------------------------

CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39


def effective_capabilities(proc_status: Path = Path("/proc/self/status")) -> int:
    """The CapEff bit mask of this process (0 when it cannot be read)."""
    try:
        for line in proc_status.read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _has(cap_eff: int, bit: int) -> bool:
    return bool(cap_eff >> bit & 1)


def has_bpf_privileges(cap_eff: int) -> bool:
    """Enough to load gohook's programs and create its uprobes: CAP_SYS_ADMIN.

    CAP_BPF + CAP_PERFMON (Linux 5.8+) load tracing programs and once created
    uprobes too, but the 2025 fix "perf: Require CAP_SYS_ADMIN for uprobes"
    (in mainline and stable kernels) took that back: on this machine's 6.18
    kernel perf_event_open of the uprobe PMU returns EACCES to a process
    holding CAP_BPF and CAP_PERFMON only.
    """
    return _has(cap_eff, CAP_SYS_ADMIN)


def check_privileges(env: Environment) -> Check:
    title = "privileges"
    caps = effective_capabilities(env.proc_status)
    uid = os.geteuid()
    names = [n for n, b in (("CAP_BPF", CAP_BPF), ("CAP_PERFMON", CAP_PERFMON), ("CAP_SYS_ADMIN", CAP_SYS_ADMIN))
             if _has(caps, b)]
    held = ", ".join(names) or "none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN"
    who = "root (uid 0)" if uid == 0 else f"uid {uid}"
    if has_bpf_privileges(caps):
        return _ok("privileges", title, f"{who} with {held} effective")
    if _has(caps, CAP_BPF) and _has(caps, CAP_PERFMON):
        return Check("privileges", title, Status.FAIL,
                     f"{who} with {held} but not CAP_SYS_ADMIN: BPF programs load, but creating uprobes needs "
                     "CAP_SYS_ADMIN on current kernels (2025: 'perf: Require CAP_SYS_ADMIN for uprobes')",
                     "run as root (sudo gohook ...), or add CAP_SYS_ADMIN")
    if uid == 0:
        return Check("privileges", title, Status.FAIL,
                     f"uid 0 but CapEff {caps:#x} holds {held} (a container without them?)",
                     "run the container with --privileged (or --cap-add SYS_ADMIN and a seccomp profile "
                     "that allows bpf and perf_event_open)")
    return Check("privileges", title, Status.FAIL,
                 f"not root (uid {uid}) and CapEff holds {held}: loading BPF and creating uprobes need root",
                 "run as root (sudo gohook ...)")


# --- bcc --------------------------------------------------------------------------------------

BCC_FIX = ("install Debian's python3-bpfcc and run gohook from a venv made with "
           "/usr/bin/python3 -m venv --system-site-packages (" + SETUP_HINT + ")")


def import_bcc() -> Any:
    """bcc's module, or an exception describing why it cannot be used."""
    import bcc  # Debian's python3-bpfcc, through the venv's system site packages

    if not hasattr(bcc, "BPF"):
        raise ImportError(f"the bcc imported from {getattr(bcc, '__file__', '?')} is not iovisor bcc "
                          "(PyPI's 'bcc' is an unrelated package)")
    return bcc


def check_bcc(env: Environment) -> Check:
    title = "bcc importable"
    try:
        bcc = import_bcc()
    except Exception as exc:  # ImportError, or OSError from loading libbcc.so
        return Check("bcc", title, Status.FAIL,
                     f"cannot import bcc in {sys.executable}: {type(exc).__name__}: {exc}", BCC_FIX)
    version = getattr(bcc, "__version__", "?")
    return _ok("bcc", title, f"bcc {version} from {Path(bcc.__file__).parent}")


# --- kernel headers ---------------------------------------------------------------------------

HEADERS_FIX = ("apt install linux-headers-$(uname -r); with no package for this kernel, link "
               "/lib/modules/$(uname -r)/build and source to the newest /usr/src/linux-headers-*-amd64 and -common "
               "(" + SETUP_HINT + ")")


def _uts_release(build: Path) -> str | None:
    try:
        text = (build / "include/generated/utsrelease.h").read_text()
    except OSError:
        return None
    parts = text.split('"')
    return parts[1] if len(parts) >= 3 else None


def check_kernel_headers(env: Environment) -> Check:
    """What bcc's loader does: BCC_KERNEL_SOURCE, else modules_dir/build (+ source), else kheaders."""
    title = "kernel headers"
    running = os.uname().release
    if env.kernel_source is not None:
        build = source = env.kernel_source
        where = f"BCC_KERNEL_SOURCE={env.kernel_source}"
    else:
        build = env.modules_dir / "build"
        source = env.modules_dir / "source" if os.path.isdir(env.modules_dir / "source") else build
        where = str(build)
    generated = os.path.isfile(build / "include/generated/autoconf.h")
    common = any(os.path.isfile(d / "include/linux/kconfig.h") for d in (build, source))
    if generated and common:
        release = _uts_release(build)
        note = "" if release in (None, running) else f" (headers of {release} for kernel {running}: enough for uprobes)"
        return _ok("kernel-headers", title, f"bcc compiles against {where}{note}")
    if env.kernel_source is None and not os.path.exists(build) and os.path.exists(env.kheaders):
        return _ok("kernel-headers", title, f"{build} missing; bcc extracts {env.kheaders} (CONFIG_IKHEADERS)")
    if not os.path.exists(build):
        found = f"{where} does not exist"
    elif not generated:
        found = f"{where} has no include/generated/autoconf.h (not a configured kernel tree)"
    else:
        found = f"{where} has no include/linux/kconfig.h (the common headers: {source} missing?)"
    return Check("kernel-headers", title, Status.FAIL, f"{found}: bcc cannot compile BPF programs", HEADERS_FIX)


# --- tracefs ----------------------------------------------------------------------------------

def check_tracefs(env: Environment) -> Check:
    title = "tracefs"
    for root in env.tracefs:
        if os.path.exists(root / "uprobe_events"):
            return _ok("tracefs", title, f"mounted at {root} (uprobe_events present)")
    closed = [r for r in env.tracefs if os.path.isdir(r) and not os.access(r, os.R_OK | os.X_OK)]
    if closed:
        return Check("tracefs", title, Status.WARN, f"cannot look into {closed[0]} as uid {os.geteuid()}",
                     "run as root")
    mounted = [r for r in env.tracefs if os.path.exists(r / "available_events")]
    pmu = os.path.exists(env.uprobe_pmu)
    if mounted and not pmu:
        return Check("tracefs", title, Status.FAIL,
                     f"tracefs at {mounted[0]} has no uprobe_events and there is no uprobe PMU: "
                     "the kernel was built without CONFIG_UPROBE_EVENTS",
                     "use a kernel with CONFIG_UPROBES=y and CONFIG_UPROBE_EVENTS=y")
    mount_fix = "mount -t tracefs tracefs /sys/kernel/tracing"
    if pmu:
        return Check("tracefs", title, Status.WARN,
                     f"tracefs not mounted at {env.tracefs[0]}; bcc creates uprobes through the uprobe PMU "
                     f"({env.uprobe_pmu.parent}), so attach works, but bcc's fallback and tracepoints need tracefs",
                     mount_fix)
    return Check("tracefs", title, Status.FAIL,
                 f"no tracefs at {' or '.join(map(str, env.tracefs))} and no uprobe PMU: uprobes cannot be created",
                 mount_fix + " (the kernel needs CONFIG_UPROBE_EVENTS=y)")


# --- lockdown ---------------------------------------------------------------------------------

def parse_lockdown(text: str) -> str | None:
    """The selected mode of /sys/kernel/security/lockdown ("none [integrity] confidentiality")."""
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return None


def _lockdown_via_unshare(path: Path) -> str | None:
    """Read lockdown by mounting securityfs in a private mount namespace: nothing changes outside it."""
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        return None
    script = f"mount -t securityfs securityfs {path.parent} && cat {path}"
    try:
        out = subprocess.run([unshare, "--mount", "--propagation", "private", "sh", "-c", script],
                             capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _nonempty_dir(path: Path) -> bool:
    try:
        return any(path.iterdir())
    except OSError:
        return False


def check_lockdown(env: Environment) -> Check:
    title = "lockdown"
    try:
        text: str | None = env.lockdown.read_text()
        how = str(env.lockdown)
    except OSError:
        text, how = None, ""
    if text is None and _nonempty_dir(env.lockdown.parent):
        return _ok("lockdown", title, f"securityfs is mounted but has no {env.lockdown.name}: no lockdown LSM")
    if text is None and env.lockdown_via_unshare:
        text = _lockdown_via_unshare(env.lockdown)
        how = "read through a private securityfs mount"
    mode = parse_lockdown(text) if text is not None else None
    if mode is None:
        return Check("lockdown", title, Status.WARN,
                     f"lockdown mode unknown: cannot read {env.lockdown} (securityfs not mounted?); "
                     "the uprobes check below shows whether BPF can read user memory",
                     "mount -t securityfs securityfs /sys/kernel/security to see the mode")
    if mode == "none":
        return _ok("lockdown", title, f"none ({how})")
    if mode == "integrity":
        return _ok("lockdown", title, f"integrity ({how}): only bpf_probe_write_user is off, which gohook does not use")
    if mode == "confidentiality":
        return Check("lockdown", title, Status.WARN,
                     f"confidentiality ({how}): bpf_probe_read and bpf_probe_read_kernel are off; gohook reads "
                     "only user memory (bpf_probe_read_user), so attach works, other bcc tools may not",
                     "boot with lockdown=integrity if kernel-memory reads are needed")
    return Check("lockdown", title, Status.WARN, f"unknown lockdown mode {mode!r} ({how})",
                 "check the kernel's lockdown documentation")


# --- probe limit ------------------------------------------------------------------------------

DEFAULT_BCC_PROBE_LIMIT = 1000  # bcc/__init__.py _default_probe_limit
FDS_PER_HOOK = 2  # one program fd and one perf-event fd per hook point
FD_MARGIN = 64  # maps, the ring buffer, stdio, the binary


def catalog_hook_count() -> tuple[int, str]:
    """Most hook points one binary can need (catalog hooks of the verified Go release with the most)."""
    from gohook.sites.catalog import load_catalog

    cat = load_catalog()
    best = max(cat.verified, key=lambda v: len(cat.hooks_for(v)))
    return len(cat.hooks_for(best)), f"Go {best}"


def check_probe_limit(env: Environment, *, nofile: tuple[int, int] | None = None,
                      hooks: tuple[int, str] | None = None) -> Check:
    title = "probe limit"
    raw = os.environ.get("BCC_PROBE_LIMIT", "")
    bcc_limit = int(raw) if raw.isdigit() else DEFAULT_BCC_PROBE_LIMIT
    soft, hard = nofile if nofile is not None else resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        count, release = hooks if hooks is not None else catalog_hook_count()
    except Exception as exc:  # the catalog is gohook's own data: report, never crash the doctor
        return Check("probe-limit", title, Status.WARN, f"cannot count hook points: {exc}", "reinstall gohook")
    need = FDS_PER_HOOK * count + FD_MARGIN
    soft_text = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
    detail = (f"up to {count} hook points per binary (catalog, {release}; ~100 with provenance probes), one uprobe "
              f"each (per pid with --pid): ~{need} open files, limit {soft_text}; BCC_PROBE_LIMIT={bcc_limit} "
              "does not apply (attach calls libbcc directly)")
    if soft != resource.RLIM_INFINITY and soft < need:
        return Check("probe-limit", title, Status.FAIL, detail,
                     f"raise the open-files limit: ulimit -n {max(4096, need)} (hard limit {hard})")
    if bcc_limit < count:
        return Check("probe-limit", title, Status.WARN, detail,
                     f"unset BCC_PROBE_LIMIT or set it to at least {count} for other bcc tools")
    return _ok("probe-limit", title, detail)


# --- the probe helper ---------------------------------------------------------------------------

HELPER_BASE = 0x400000  # static, non-PIE, like a default Go build
_EHDR, _PHDR, _SHDR, _SYM = 64, 56, 64, 24


@dataclass(frozen=True, slots=True)
class ProbeHelper:
    """The helper executable: its bytes and the facts the checks compare the probe's view against."""

    data: bytes
    target_offset: int  # file offset of doctor_target (where the uprobe goes)
    target_address: int  # its virtual address
    return_address: int  # [rsp] at doctor_target's entry
    output: bytes  # what doctor_target writes to stdout

    @property
    def rsp_to_r14(self) -> int:
        """R14 - RSP at doctor_target's entry: _start sets R14 = RSP, the call pushes 8 bytes."""
        return 8


def _code() -> tuple[bytes, int, int, int]:
    """Machine code of _start and doctor_target: (code, target offset, return-site offset, message offset)."""
    start = bytes.fromhex(
        "4989e6"          # mov r14, rsp           (Go keeps g in R14: give the stack check a valid base)
        "31c0"            # xor eax, eax           (SYS_read)
        "31ff"            # xor edi, edi           (fd 0)
        "488d7424f0"      # lea rsi, [rsp-0x10]
        "ba01000000"      # mov edx, 1
        "0f05"            # syscall                (wait for the doctor to attach)
    )
    call_at = len(start)
    after_call = bytes.fromhex(
        "b83c000000"      # mov eax, 60            (SYS_exit)
        "31ff"            # xor edi, edi
        "0f05"            # syscall
    )
    ret_site = call_at + 5
    target = ret_site + len(after_call)
    body_head = bytes.fromhex(
        "493b6610"        # cmp rsp, [r14+0x10]    (Go's stack check: the probed, single-stepped instruction)
        "7600"            # jbe +0
        "55"              # push rbp
        "4889e5"          # mov rbp, rsp
        "b801000000"      # mov eax, 1             (SYS_write)
        "bf01000000"      # mov edi, 1             (fd 1)
        "488d35"          # lea rsi, [rip+msg]     (rel32 follows)
    )
    body_tail = bytes.fromhex(
        "ba01000000"      # mov edx, 1
        "0f05"            # syscall
        "5d"              # pop rbp
        "c3"              # ret
    )
    lea_end = target + len(body_head) + 4
    msg = lea_end + len(body_tail)
    code = (start + b"\xe8" + struct.pack("<i", target - ret_site) + after_call
            + body_head + struct.pack("<i", msg - lea_end) + body_tail + b"x")
    return code, target, ret_site, msg


def probe_helper() -> ProbeHelper:
    """Build the helper: ELF header, one R+X PT_LOAD, code, and .symtab naming _start and doctor_target."""
    code, target, ret_site, msg = _code()
    text_off = _EHDR + _PHDR
    strtab = b"\0_start\0doctor_target\0"
    shstrtab = b"\0.text\0.symtab\0.strtab\0.shstrtab\0"
    symtab_off = (text_off + len(code) + 7) & ~7
    syms = [(0, 0, 0, 0, 0), (1, 0x12, 1, HELPER_BASE + text_off, target),  # _start: GLOBAL FUNC in .text
            (8, 0x12, 1, HELPER_BASE + text_off + target, len(code) - target)]
    symtab = b"".join(struct.pack("<IBBHQQ", name, info, 0, shndx, value, size)
                      for name, info, shndx, value, size in syms)
    strtab_off = symtab_off + len(symtab)
    shstrtab_off = strtab_off + len(strtab)
    shoff = (shstrtab_off + len(shstrtab) + 7) & ~7
    sections = [
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        (1, 1, 6, HELPER_BASE + text_off, text_off, len(code), 0, 0, 16, 0),  # .text PROGBITS AX
        (7, 2, 0, 0, symtab_off, len(symtab), 3, 1, 8, _SYM),  # .symtab -> .strtab, first global 1
        (15, 3, 0, 0, strtab_off, len(strtab), 0, 0, 1, 0),
        (23, 3, 0, 0, shstrtab_off, len(shstrtab), 0, 0, 1, 0),
    ]
    ehdr = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0,  # 64-bit, LSB, SysV
                       2, 62, 1, HELPER_BASE + text_off, _EHDR, shoff,  # ET_EXEC, EM_X86_64, entry
                       0, _EHDR, _PHDR, 1, _SHDR, len(sections), 4)
    load_size = text_off + len(code)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, HELPER_BASE, HELPER_BASE, load_size, load_size, 0x1000)  # PT_LOAD R+X
    out = bytearray(ehdr + phdr + code)
    out += bytes(symtab_off - len(out)) + symtab + strtab + shstrtab
    out += bytes(shoff - len(out))
    out += b"".join(struct.pack("<IIQQQQIIQQ", *s) for s in sections)
    return ProbeHelper(bytes(out), text_off + target, HELPER_BASE + text_off + target,
                       HELPER_BASE + text_off + ret_site, code[msg:msg + 1])


# --- the BPF checks -----------------------------------------------------------------------------

BPF_SOURCE = r"""
#include <uapi/linux/ptrace.h>

struct doctor_event {
	u32 pid;
	s32 read_err;
	u64 ret;
	u64 sp;
	u64 r14;
};

BPF_ARRAY(hits, u64, 1);
BPF_ARRAY(last, struct doctor_event, 1);
BPF_ARRAY(signal_ret, s64, 1);
#ifdef DOCTOR_RINGBUF
BPF_RINGBUF_OUTPUT(events, 8);
#endif

int doctor_hit(struct pt_regs *ctx)
{
	u32 zero = 0;
	u64 *n = hits.lookup(&zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	struct doctor_event ev = {};
	ev.pid = bpf_get_current_pid_tgid() >> 32;
	ev.sp = ctx->sp;
	ev.r14 = ctx->r14;
	ev.read_err = bpf_probe_read_user(&ev.ret, sizeof(ev.ret), (void *)ctx->sp);
	last.update(&zero, &ev);
#ifdef DOCTOR_RINGBUF
	events.ringbuf_output(&ev, sizeof(ev), 0);
#endif
	return 0;
}

int doctor_kill(struct pt_regs *ctx)
{
	u32 zero = 0;
	s64 r = bpf_send_signal(9);
	signal_ret.update(&zero, &r);
	return 0;
}
"""


class DoctorEvent(ct.Structure):
    """struct doctor_event of BPF_SOURCE."""

    _fields_ = [("pid", ct.c_uint32), ("read_err", ct.c_int32), ("ret", ct.c_uint64), ("sp", ct.c_uint64),
                ("r14", ct.c_uint64)]


_BPF_PROG_TYPE_KPROBE = 2  # uprobes load as kprobe programs
CHILD_TIMEOUT = 5.0


class _Failed(Exception):
    """A BPF-check step failed: the message is the one-line detail, `fix` what to do."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.fix = fix


@contextmanager
def _stderr_to(out: list[str]) -> Iterator[None]:
    """Capture file descriptor 2 (libbcc and clang print there) into out[0]."""
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out[0] = tmp.read().decode("utf-8", "replace")


def _first_error(text: str, fallback: str) -> str:
    for line in text.splitlines():
        if "error" in line.lower():
            return line.strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else fallback


@dataclass
class _Helper:
    path: Path
    spec: ProbeHelper


@contextmanager
def _installed_helper() -> Iterator[_Helper]:
    """The helper written to the first temporary directory where it can execute (not mounted noexec)."""
    spec = probe_helper()
    candidates = [Path(tempfile.gettempdir()), Path("/dev/shm"), Path("/var/tmp"), Path.home() / ".cache"]
    problems: list[str] = []
    for base in candidates:
        try:
            tmp = tempfile.TemporaryDirectory(prefix="gohook-doctor-", dir=base)
        except OSError as exc:
            problems.append(f"{base}: {exc.strerror}")
            continue
        with tmp as d:
            path = Path(d) / "doctorprobe"
            path.write_bytes(spec.data)
            path.chmod(0o755)
            try:  # a baseline run without probes: EOF on stdin, so it calls doctor_target at once
                run = subprocess.run([str(path)], stdin=subprocess.DEVNULL, capture_output=True,
                                     timeout=CHILD_TIMEOUT, check=False)
            except (OSError, subprocess.SubprocessError) as exc:
                problems.append(f"{base}: {exc}")
                continue
            if run.returncode != 0 or run.stdout != spec.output:
                raise _Failed(f"the helper misbehaved without probes (status {run.returncode}, "
                              f"output {run.stdout!r})", "gohook attach supports x86-64 Linux only")
            yield _Helper(path, spec)
            return
    raise _Failed("cannot run the helper from any temporary directory: " + "; ".join(problems),
                  "set TMPDIR to a directory on a file system not mounted noexec")


@dataclass
class _ChildRun:
    pid: int
    returncode: int
    stdout: bytes
    seconds: float


class _Session:
    """One compiled doctor program and the helper; attaches per child process, like `attach --pid`."""

    def __init__(self, bcc: Any, helper: _Helper, ringbuf: bool) -> None:
        self.bcc = bcc
        self.helper = helper
        self.bpf: Any = None
        self.events: list[DoctorEvent] = []
        self._cb: Any = None
        err = [""]
        with _stderr_to(err):
            try:
                cflags = ["-DDOCTOR_RINGBUF"] if ringbuf else []
                self.bpf = bcc.BPF(text=BPF_SOURCE.encode(), cflags=cflags)
                failure: Exception | None = None
            except Exception as exc:  # bcc raises bare Exceptions
                failure = exc
        if failure is not None:
            raise _Failed(f"bcc cannot compile a tiny uprobe program: {_first_error(err[0], str(failure))}",
                          HEADERS_FIX)
        if ringbuf:
            self._cb = self._on_event
            try:
                self.bpf[b"events"].open_ring_buffer(self._cb)
            except Exception as exc:
                self.close()
                raise _Failed(f"cannot open the ring buffer: {exc}", RINGBUF_FIX) from None

    def _on_event(self, _ctx: Any, data: Any, size: int) -> int:
        if size >= ct.sizeof(DoctorEvent):
            self.events.append(DoctorEvent.from_buffer_copy(ct.string_at(data, ct.sizeof(DoctorEvent))))
        return 0

    def load(self, name: str) -> int:
        err = [""]
        with _stderr_to(err):
            try:
                fn = self.bpf.load_func(name.encode(), self.bcc.BPF.KPROBE)
                failure: Exception | None = None
            except Exception as exc:
                failure = exc
        if failure is not None:
            raise _Failed(f"the kernel refused program {name}: {_first_error(err[0], str(failure))}",
                          "look for seccomp, SELinux or container limits on bpf(); see the privileges line")
        return int(fn.fd)

    def run_child(self, program: str) -> _ChildRun:
        """Start the helper, attach `program` to doctor_target for its pid only, let it call the target."""
        fd = self.load(program)
        lib = self.bcc.lib
        child = subprocess.Popen([str(self.helper.path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL)
        ev_name = f"gohook_doctor_{os.getpid()}_{child.pid}".encode()
        perf_fd = -1
        try:
            ct.set_errno(0)
            perf_fd = lib.bpf_attach_uprobe(fd, 0, ev_name, os.fsencode(self.helper.path),
                                            self.helper.spec.target_offset, child.pid)
            if perf_fd < 0:
                errno = ct.get_errno()
                raise _Failed(f"cannot attach a uprobe at file offset {self.helper.spec.target_offset:#x} of "
                              f"the helper for process {child.pid}: {os.strerror(errno) if errno else 'libbcc error'}",
                              UPROBE_FIX)
            start = time.monotonic()
            try:  # one byte ends the helper's read(): it calls doctor_target now
                out, _ = child.communicate(b"g", timeout=CHILD_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise _Failed(f"the probed helper (pid {child.pid}) did not finish within {CHILD_TIMEOUT:.0f}s",
                              UPROBE_FIX) from None
            return _ChildRun(child.pid, child.returncode, out, time.monotonic() - start)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
            if perf_fd >= 0:
                lib.bpf_close_perf_event_fd(perf_fd)
                lib.bpf_detach_uprobe(ev_name)  # only does something for probes made through tracefs

    def poll(self, timeout_ms: int) -> None:
        self.bpf.ring_buffer_poll(timeout_ms)

    def close(self) -> None:
        if self.bpf is not None:
            bpf, self.bpf = self.bpf, None
            bpf.cleanup()


UPROBE_FIX = "the kernel needs CONFIG_UPROBES=y; look for seccomp, SELinux or container limits on perf_event_open"
SIGNAL_FIX = ("bpf_send_signal needs Linux 5.3+; without it gohook can only observe: use attach --mode audit")
RINGBUF_FIX = "BPF ring buffers need Linux 5.8+"


def _uprobe_check(session: _Session) -> Check:
    title = "uprobes work"
    spec = session.helper.spec
    run = session.run_child("doctor_hit")
    hits = int(session.bpf[b"hits"][ct.c_int(0)].value)
    ev = session.bpf[b"last"][ct.c_int(0)]
    if run.returncode != 0 or run.stdout != spec.output:
        raise _Failed(f"the probed helper exited with status {run.returncode} and output {run.stdout!r} "
                      f"(expected 0 and {spec.output!r})", UPROBE_FIX)
    if hits == 0:
        return Check("uprobes", title, Status.FAIL,
                     f"the uprobe was attached but never hit while the helper called the probed function "
                     f"({session.helper.path.name} at {spec.target_address:#x})", UPROBE_FIX)
    problems = [] if ev.pid == run.pid else [f"the hit came from pid {ev.pid}, not the helper's {run.pid}"]
    if ev.read_err != 0:
        problems.append(f"bpf_probe_read_user of [rsp] failed ({os.strerror(-ev.read_err)}): "
                        "stack walks cannot work")
    elif ev.ret != spec.return_address:
        problems.append(f"[rsp] read {ev.ret:#x}, expected the return address {spec.return_address:#x}")
    if ev.r14 - ev.sp != spec.rsp_to_r14:
        problems.append(f"R14 - RSP = {ev.r14 - ev.sp:#x}, expected {spec.rsp_to_r14}: registers read wrong")
    if problems:
        return Check("uprobes", title, Status.FAIL, "the uprobe hit, but " + "; ".join(problems),
                     "bpf_probe_read_user needs Linux 5.5+ and no lockdown=confidentiality on old kernels")
    return _ok("uprobes", title, f"a per-process uprobe on a helper's Go-style entry (single-stepped) hit {hits}x; "
               "bpf_probe_read_user read the return address at [rsp]; R14 read right")


def _signal_check(session: _Session) -> Check:
    title = "bpf_send_signal"
    run = session.run_child("doctor_kill")
    ret = int(session.bpf[b"signal_ret"][ct.c_int(0)].value)
    if run.returncode == -9 and not run.stdout:
        return _ok("send-signal", title, f"bpf_send_signal(SIGKILL) from the uprobe killed the helper before the "
                   f"probed function's body ran ({run.seconds * 1000:.0f} ms)")
    why = f"bpf_send_signal returned {ret}" + (f" ({os.strerror(-ret)})" if ret < 0 else "")
    if run.returncode == -9:
        return Check("send-signal", title, Status.FAIL,
                     f"the helper died of SIGKILL only after the probed function's body ran ({why})", SIGNAL_FIX)
    return Check("send-signal", title, Status.FAIL,
                 f"the helper survived the uprobe (exit status {run.returncode}, output {run.stdout!r}; {why})",
                 SIGNAL_FIX)


def _ringbuf_check(session: _Session) -> Check:
    title = "ring buffer"
    for _ in range(10):
        if session.events:
            break
        session.poll(100)
    spec = session.helper.spec
    mine = [e for e in session.events if e.ret == spec.return_address]
    if mine:
        return _ok("ring-buffer", title, f"BPF_RINGBUF_OUTPUT delivered the uprobe's event ({len(mine)} event)")
    return Check("ring-buffer", title, Status.FAIL,
                 f"BPF_RINGBUF_OUTPUT compiled, but no event of the helper arrived within 1s "
                 f"({len(session.events)} other events)", RINGBUF_FIX)


BPF_CHECKS = (("uprobes", "uprobes work"), ("send-signal", "bpf_send_signal"), ("ring-buffer", "ring buffer"))


def _not_tried(reason: str, fix: str) -> list[Check]:
    return [Check(id_, title, Status.FAIL, f"not tried: {reason}", fix) for id_, title in BPF_CHECKS]


def _failed(id_: str, exc: _Failed) -> Check:
    title = dict(BPF_CHECKS)[id_]
    return Check(id_, title, Status.FAIL, str(exc), exc.fix)


@contextmanager
def _session(bcc: Any, helper: _Helper) -> Iterator[tuple[_Session, _Failed | None]]:
    """The program with a ring buffer; when that fails but the one without works, the ring buffer is the problem."""
    ringbuf_problem: _Failed | None = None
    try:
        session = _Session(bcc, helper, ringbuf=True)
    except _Failed as first:
        session = _Session(bcc, helper, ringbuf=False)
        ringbuf_problem = _Failed(str(first), RINGBUF_FIX)
    try:
        yield session, ringbuf_problem
    finally:
        session.close()


def _session_checks(session: _Session, ringbuf_problem: _Failed | None) -> list[Check]:
    t0 = time.monotonic()
    try:
        uprobe = _uprobe_check(session)
    except _Failed as exc:
        uprobe = _failed("uprobes", exc)
    t1 = time.monotonic()
    if uprobe.status is Status.FAIL:
        return [replace(uprobe, seconds=t1 - t0), *_not_tried("the uprobe did not work", uprobe.fix)[1:]]
    try:
        signal = _signal_check(session)
    except _Failed as exc:
        signal = _failed("send-signal", exc)
    t2 = time.monotonic()
    ring = _failed("ring-buffer", ringbuf_problem) if ringbuf_problem else _ringbuf_check(session)
    t3 = time.monotonic()
    return [replace(uprobe, seconds=t1 - t0), replace(signal, seconds=t2 - t1), replace(ring, seconds=t3 - t2)]


def bpf_checks() -> list[Check]:
    """uprobes, send-signal and ring-buffer: one compiled program, two runs of the helper.

    The first check's time includes writing the helper and compiling the program.
    """
    try:
        bcc = import_bcc()
    except Exception as exc:
        return _not_tried(f"bcc is not importable ({exc})", BCC_FIX)
    start = time.monotonic()
    try:
        with _installed_helper() as helper, _session(bcc, helper) as (session, ringbuf_problem):
            setup = time.monotonic() - start
            checks = _session_checks(session, ringbuf_problem)
            return [replace(checks[0], seconds=checks[0].seconds + setup), *checks[1:]]
    except _Failed as exc:
        return [replace(_failed(id_, exc), seconds=time.monotonic() - start) for id_, _ in BPF_CHECKS]


# --- running and reporting -------------------------------------------------------------------------

PREFLIGHT: tuple[Callable[[Environment], Check], ...] = (
    check_privileges, check_bcc, check_kernel_headers, check_tracefs)
STATIC: tuple[Callable[[Environment], Check], ...] = (check_lockdown, check_probe_limit)


def _timed(fn: Callable[[Environment], Check], env: Environment) -> Check:
    """Run one check; a bug in it becomes a failed check line, never a traceback."""
    start = time.monotonic()
    try:
        check = fn(env)
    except Exception as exc:
        name = fn.__name__.removeprefix("check_").replace("_", "-")
        check = Check(name, name, Status.FAIL, f"the check itself failed: {type(exc).__name__}: {exc}",
                      "report this as a gohook bug")
    return replace(check, seconds=time.monotonic() - start)


def preflight(env: Environment | None = None) -> list[Check]:
    """The fast checks attach runs before compiling anything: privileges, bcc, headers, tracefs (milliseconds)."""
    env = env or Environment()
    return [_timed(fn, env) for fn in PREFLIGHT]


def run_checks(env: Environment | None = None, *, quick: bool = False) -> list[Check]:
    """Every check (quick: the preflight subset plus lockdown and probe limit, no BPF)."""
    env = env or Environment()
    checks = preflight(env) + [_timed(fn, env) for fn in STATIC]
    if quick:
        return checks
    blockers = [c for c in checks[:3] if c.status is Status.FAIL]  # privileges, bcc, headers
    if blockers:
        b = blockers[0]
        return checks + _not_tried(f"{b.title} failed", f"fix {b.title} first")
    return checks + bpf_checks()


def first_failure(checks: Sequence[Check]) -> str | None:
    """The one-line message for the first failed check ("kernel headers: ...; fix: ..."), or None."""
    for c in checks:
        if c.status is Status.FAIL:
            return f"{c.title}: {c.detail}; fix: {c.fix}" if c.fix else f"{c.title}: {c.detail}"
    return None


def exit_code(checks: Sequence[Check]) -> Exit:
    return Exit.FINDINGS if any(c.status is Status.FAIL for c in checks) else Exit.OK


def render_text(checks: Sequence[Check], seconds: float) -> str:
    width = max(len(c.title) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status.value:<4}  {c.title:<{width}}  {c.detail}")
        if c.fix and c.status is not Status.OK:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {c.fix}")
    failed = sum(c.status is Status.FAIL for c in checks)
    warned = sum(c.status is Status.WARN for c in checks)
    verdict = (f"attach cannot work: {failed} check{'s' * (failed != 1)} failed" if failed
               else "attach can work" + (f" ({warned} warning{'s' * (warned != 1)})" if warned else ""))
    lines.append(f"doctor: {verdict} ({seconds:.1f}s)")
    return "\n".join(lines) + "\n"


def render_json(checks: Sequence[Check], seconds: float) -> str:
    doc = {"ok": exit_code(checks) is Exit.OK, "seconds": round(seconds, 3), "checks": [c.to_json() for c in checks]}
    return json.dumps(doc, separators=(",", ":")) + "\n"


def run(*, as_json: bool = False, quick: bool = False, env: Environment | None = None) -> int:
    start = time.monotonic()
    checks = run_checks(env, quick=quick)
    seconds = time.monotonic() - start
    sys.stdout.write(render_json(checks, seconds) if as_json else render_text(checks, seconds))
    return int(exit_code(checks))


EPILOG = """checks: privileges, bcc importable, kernel headers, tracefs, lockdown, probe limit,
        uprobes work, bpf_send_signal, ring buffer (the last three load BPF: about 2s)

examples:
  gohook doctor            can attach work here? each problem with its fix; exit 1 if not
  gohook doctor --quick    only the checks that load nothing into the kernel
  gohook doctor --json     the same as one JSON document
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("doctor", help="check that this machine can run gohook attach, with fixes",
                              description="Check that gohook attach can work here; exit 1 when it cannot.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--quick", action="store_true", help="skip the checks that compile and load BPF programs")
    p.set_defaults(run=lambda args: run(as_json=args.json, quick=args.quick))
