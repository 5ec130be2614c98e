"""Can this host run gohook's BPF? The static checks: privileges, bcc, kernel headers, tracefs, lockdown, probe limit.

Each check looks at the machine (through `Environment`, which tests point
elsewhere) and returns a `Check`: what it found and, when something is wrong,
the fix. None of them loads anything into the kernel; the live checks that
do (a uprobe, bpf_send_signal, a ring buffer) are gohook.bpf.selftest.

| id | looks at | fails when |
|---|---|---|
| privileges | CapEff in /proc/self/status | no CAP_SYS_ADMIN (uprobes need it, see has_bpf_privileges) |
| bcc | `import bcc` | missing, broken libbcc, or PyPI's unrelated `bcc` |
| kernel-headers | BCC_KERNEL_SOURCE, /lib/modules/R/build (+ source), kheaders | bcc finds no headers |
| tracefs | /sys/kernel/tracing/uprobe_events, the uprobe PMU | no way to make a uprobe (PMU only: warn) |
| lockdown | /sys/kernel/security/lockdown | never: none/integrity ok, confidentiality warns |
| probe-limit | BCC_PROBE_LIMIT, RLIMIT_NOFILE, catalog hook count | open-files limit below one attach's need |

When securityfs is not mounted, the lockdown check (as root) mounts it in a
private mount namespace of an `unshare` child to read the mode: nothing
changes outside that child.

`preflight()` is the fast subset (privileges, bcc, headers, tracefs: no BPF
compile) that `gohook attach` runs first; `first_failure()` turns it into the
one-line message attach fails with. The loader asks `has_bpf_privileges`
before it creates uprobes. This module lives in the bpf stage so that both
can use it without reaching up to the `doctor` command.
"""

from __future__ import annotations

import enum
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = [
    "BCC_FIX",
    "HEADERS_FIX",
    "Check",
    "Environment",
    "Status",
    "effective_capabilities",
    "first_failure",
    "has_bpf_privileges",
    "import_bcc",
    "preflight",
    "static_checks",
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

    @classmethod
    def ok(cls, id_: str, title: str, detail: str) -> Check:
        """A passed check (no fix)."""
        return cls(id_, title, Status.OK, detail)


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
        return Check.ok("privileges", title, f"{who} with {held} effective")
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
    return Check.ok("bcc", title, f"bcc {version} from {Path(bcc.__file__).parent}")


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
        return Check.ok("kernel-headers", title, f"bcc compiles against {where}{note}")
    if env.kernel_source is None and not os.path.exists(build) and os.path.exists(env.kheaders):
        return Check.ok("kernel-headers", title, f"{build} missing; bcc extracts {env.kheaders} (CONFIG_IKHEADERS)")
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
            return Check.ok("tracefs", title, f"mounted at {root} (uprobe_events present)")
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
        return Check.ok("lockdown", title, f"securityfs is mounted but has no {env.lockdown.name}: no lockdown LSM")
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
        return Check.ok("lockdown", title, f"none ({how})")
    if mode == "integrity":
        return Check.ok("lockdown", title,
                        f"integrity ({how}): only bpf_probe_write_user is off, which gohook does not use")
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
    return Check.ok("probe-limit", title, detail)


# --- running -----------------------------------------------------------------------------------

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


def static_checks(env: Environment | None = None) -> list[Check]:
    """Every check that loads nothing into the kernel: the preflight subset plus lockdown and probe limit."""
    env = env or Environment()
    return preflight(env) + [_timed(fn, env) for fn in STATIC]


def first_failure(checks: Sequence[Check]) -> str | None:
    """The one-line message for the first failed check ("kernel headers: ...; fix: ..."), or None."""
    for c in checks:
        if c.status is Status.FAIL:
            return f"{c.title}: {c.detail}; fix: {c.fix}" if c.fix else f"{c.title}: {c.detail}"
    return None
