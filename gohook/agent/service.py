"""The agent's loop: match every process of the machine to the policy directory and keep it enforced.

    start:  policies -> probe each policy's `binary:` file -> match running processes -> remove old pins
    loop:   held execs (kernel) -> identify -> session (plan + attach) -> release | kill
            events of every session -> JSON lines / text / --events FILE; metrics
            policy directory changed (watchdog) -> reload in place | replace | close; re-match
            a policy's binary path holds another file -> say so, count it (its execs are held and matched)
    stop:   SIGTERM / SIGINT: sessions closed, pins kept (enforcement goes on with the last policy)

No gap: the exec watcher (gohook.bpf.exechold) stops every exec of a file it has no verdict for before its
first instruction, so a process of a file not probed yet (a container's copy, a new build, a renamed copy)
waits until its file is planned and attached (released) or cannot be (killed). A file already probed is
covered by its uprobes from its first instruction and is never held. Verdicts are keyed by device, inode
and ctime, so a new file at a reused inode, or a file changed in place, is held again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from gohook.agent import PIN_ROOT
from gohook.agent.identity import FileVersion, Program, identify
from gohook.agent.matching import BinaryRefs, binary_names, choose
from gohook.agent.metrics import AgentMetrics, SessionSample
from gohook.agent.policies import AgentPolicy, Change, PolicyDir
from gohook.agent.sessions import FileSession, PlanningError, stale_pin_dirs, unpin
from gohook.errors import GohookError
from gohook.events.symbolize import EventRecord
from gohook.policy.format import Action, CapabilityNames, Mode
from gohook.views.jsonlines import text_line

if TYPE_CHECKING:
    from gohook.bpf.exechold import ExecHold, FileKey, HeldExec
    from gohook.session import ProbeGuard

log = logging.getLogger("gohook")
PROC_SCAN_SECONDS = 2.0  # how often processes of probed files are counted and their probes checked
RELOAD_DEBOUNCE_SECONDS = 0.1  # editors write a file in several steps


@dataclass(frozen=True)
class AgentOptions:
    """`gohook agent`'s options. cgroup: hold and match only processes under this cgroup v2 directory
    (a slice, a pod; tests); None: the whole machine. pin_root: where sessions pin their probes."""

    policy_dir: str
    metrics: str | None = None
    json: bool = False
    events: str | None = None
    mode: Mode = Mode.ENFORCE
    pin_root: str = PIN_ROOT
    cgroup: str | None = None


class EventSink:
    """Where events go: stdout (JSON lines or text), or a file appended to and reopened on SIGHUP."""

    def __init__(self, as_json: bool, path: str | None) -> None:
        self.as_json = as_json or path is not None
        self.path = path
        self._file: IO[str] | None = None
        self._lock = threading.Lock()
        self.reopen()

    def reopen(self) -> None:
        """(Re)open --events FILE: after log rotation moved it, a new file at the path."""
        if self.path is None:
            return
        with self._lock:
            if self._file is not None:
                self._file.close()
            try:
                self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open; closed in close)
            except OSError as exc:
                raise GohookError(f"--events {self.path}: cannot open: {exc.strerror or exc}") from None

    def emit(self, rec: EventRecord, extra: dict[str, Any]) -> None:
        if self.as_json:
            line = json.dumps({**rec.as_json(), **extra}, separators=(",", ":"))
        else:
            line = f"{text_line(rec)} [{extra.get('policy')}]"
        with self._lock:
            out = self._file if self._file is not None else sys.stdout
            out.write(line + "\n")
            out.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


CGROUP2_ROOTS = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")  # where cgroup v2 is mounted (hybrid, unified)


class CgroupNames:
    """cgroup v2 id (the inode number of its directory, what the kernel puts in events) -> its path, e.g.
    /system.slice/app.service: found by walking the cgroup2 mount, cached, walked again on a miss."""

    def __init__(self) -> None:
        self.root = next((r for r in CGROUP2_ROOTS if _is_cgroup2(r)), None)
        self._names: dict[int, str] = {}
        self._walked = 0.0

    def path(self, cgroup_id: int) -> str:
        if not cgroup_id or self.root is None:
            return ""
        name = self._names.get(cgroup_id)
        if name is None and time.monotonic() - self._walked > 0.5:  # a new cgroup: walk again (not too often)
            self._walk()
            name = self._names.get(cgroup_id)
        return name or ""

    def _walk(self) -> None:
        assert self.root is not None
        self._walked = time.monotonic()
        names: dict[int, str] = {}
        for dirpath, _dirs, _files in os.walk(self.root):
            with contextlib.suppress(OSError):
                rel = "/" + os.path.relpath(dirpath, self.root)
                names[os.stat(dirpath).st_ino] = "/" if rel == "/." else rel
        self._names = names


def _is_cgroup2(path: str) -> bool:
    try:
        with open("/proc/self/mounts", encoding="utf-8") as f:
            return any(line.split()[1:3] == [path, "cgroup2"] for line in f)
    except OSError:
        return False


def cgroup_of(pid: int) -> str:
    """The cgroup v2 path of process pid ("" when gone or none)."""
    try:
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return line[3:]
    except OSError:
        pass
    return ""


def _file_key(version: FileVersion) -> FileKey:
    """The exec watcher's key of a file version (the kernel's device encoding, ctime split)."""
    from gohook.bpf.exechold import FileKey, kernel_dev

    sec, nsec = divmod(version.ctime_ns, 1_000_000_000)
    return FileKey(kernel_dev(version.dev), version.ino, sec, nsec)


def process_state(pid: int) -> str:
    """The state letter of /proc/PID/stat ("" when gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _pids() -> Iterator[int]:
    for name in os.listdir("/proc"):
        if name.isdigit():
            yield int(name)


class Agent:
    """One agent: the policy directory, the exec watcher, the sessions; run() until a stop signal."""

    def __init__(self, options: AgentOptions) -> None:
        from gohook.sites.catalog import load_catalog

        self.options = options
        self.catalog = load_catalog()
        self.policies = PolicyDir(options.policy_dir, CapabilityNames([c.name for c in self.catalog.capabilities]))
        self.refs = BinaryRefs()
        self.sessions: dict[FileVersion, FileSession] = {}  # by the version of the file it planned
        self.copy_of: dict[FileVersion, FileVersion] = {}  # a copy's version -> the session's
        self.guards: dict[FileVersion, ProbeGuard] = {}  # probe-integrity checks, per session
        self.lost_holds = 0  # the exec watcher's `lost` counter when last looked at
        self.failed: dict[FileVersion, str] = {}  # matched files that could not be planned: their processes die
        self.ignored: set[FileVersion] = set()
        self.programs: dict[FileVersion, Program] = {}
        self.processes: dict[FileVersion, set[int]] = {}
        self.violations: dict[FileVersion, dict[tuple[str, str, str], int]] = {}
        self.carried: dict[FileVersion, dict[tuple[str, str], int]] = {}
        self.binary_versions: dict[str, FileVersion | None] = {}
        self.sink = EventSink(options.json, options.events)
        self.cgroups = CgroupNames()
        self.metrics = AgentMetrics(self._samples)
        self.hold: ExecHold | None = None
        self._stop = threading.Event()
        self._dirty = threading.Event()
        self._reopen = threading.Event()
        self._observer: Any = None

    # -- output ----------------------------------------------------------------------------------

    def say(self, message: str) -> None:
        print(f"gohook agent: {message}", file=sys.stderr, flush=True)

    # -- start and stop --------------------------------------------------------------------------

    def run(self) -> int:
        from gohook.bpf.exechold import ExecHold

        old = {s: signal.signal(s, lambda *_: self._stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
        old[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda *_: self._reopen.set())
        try:
            if self.options.metrics:
                host, port = self.metrics.serve(self.options.metrics)
                self.say(f"metrics on http://{host}:{port}/metrics, health on /healthz")
            change = self.policies.scan()
            self._report(change)
            stale = stale_pin_dirs(self.options.pin_root)
            self.hold = ExecHold(hold_unknown=bool(self.policies.in_force), names=(), cgroup=self.options.cgroup)
            self._watch()
            for p in self.policies.in_force.values():
                self._probe_binary(p)
            self._scan_processes()
            for path in stale:  # ours are attached: the last agent's pins can go (make-before-break)
                unpin(path)
            if stale:
                self.say(f"took over from an earlier agent: removed {len(stale)} pinned sessions")
            self.say(f"ready: {len(self.policies.in_force)} policies, {len(self.sessions)} files probed, "
                     f"mode {self.options.mode.value}")
            self._loop()
            return 0
        finally:
            self._shutdown()
            for s, h in old.items():
                signal.signal(s, h)

    def _shutdown(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            with contextlib.suppress(RuntimeError):
                self._observer.join(timeout=2)
        if self.hold is not None:
            with contextlib.suppress(GohookError):
                for held in self.hold.poll(0):  # decide what is still held: never leave it stopped
                    self._on_exec(held)
            self.hold.close()
        for session in self.sessions.values():
            session.close(unpin_probes=False)  # the pins keep enforcing (docs/agent.md)
        kept = sum(1 for s in self.sessions.values() if s.pin_dir)
        if self.sessions:
            self.say(f"stopped; {kept} of {len(self.sessions)} probed files stay enforced through pinned probes "
                     f"({self.options.pin_root}) until an agent starts again")
        self.metrics.close()
        self.sink.close()

    def _watch(self) -> None:
        """watchdog (inotify) on the policy directory: any change marks the policies dirty (any name: a
        Kubernetes ConfigMap volume swaps a `..data` symlink, not the policy files; a scan compares texts)."""
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        dirty = self._dirty

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type not in ("opened", "closed_no_write"):
                    dirty.set()

        self._observer = Observer()
        self._observer.schedule(Handler(), self.options.policy_dir, recursive=False)
        self._observer.daemon = True
        self._observer.start()

    # -- the loop --------------------------------------------------------------------------------

    def _loop(self) -> None:
        assert self.hold is not None
        next_scan = time.monotonic() + PROC_SCAN_SECONDS
        while not self._stop.is_set():
            for held in self.hold.poll(50):
                self._on_exec(held)
            for version, session in list(self.sessions.items()):
                for rec in session.poll():
                    self._emit(version, session, rec)
            if self._dirty.is_set():
                time.sleep(RELOAD_DEBOUNCE_SECONDS)
                self._dirty.clear()
                self._reload()
            if self._reopen.is_set():
                self._reopen.clear()
                self.sink.reopen()
            if time.monotonic() >= next_scan:
                self._check_binaries()
                self._recover_lost_holds()
                self._scan_processes()
                next_scan = time.monotonic() + PROC_SCAN_SECONDS
            self.metrics.heartbeat()

    def _emit(self, version: FileVersion, session: FileSession, rec: EventRecord) -> None:
        if rec.decision in ("deny", "error", "audit"):
            key = (rec.module, rec.capability, rec.decision)
            per = self.violations.setdefault(version, {})
            per[key] = per.get(key, 0) + 1
            self.metrics.violations.labels(self._binary_label(session), Path(session.policy.path).name,
                                           rec.module, rec.capability, rec.decision).inc()
        self.sink.emit(rec, {"policy": session.policy.path, "binary": session.program.path,
                             "build_id": session.program.build_id,
                             "cgroup": self.cgroups.path(rec.cgroup_id) or cgroup_of(rec.pid)})

    @staticmethod
    def _binary_label(session: FileSession) -> str:
        m = session.policy.match
        return Path(m.binary).name if m.binary else (session.program.main_module or "?")

    # -- matching --------------------------------------------------------------------------------

    def _identify(self, path: str) -> Program | None:
        try:
            version = FileVersion.of_path(path)
        except OSError:
            return None
        known = self.programs.get(version)
        if known is not None:
            return known
        try:
            program = identify(path)
        except OSError:
            return None
        if program.version != version:  # changed while read: read again next time
            return program
        self.programs[version] = program
        return program

    def _find(self, version: FileVersion) -> FileSession | None:
        main = self.copy_of.get(version, version)
        return self.sessions.get(main)

    def _session_for(self, program: Program) -> FileSession | None:
        """The session enforcing program's file, planned and attached now if needed; None when no policy
        matches. PlanningError when one matches and the file cannot be enforced."""
        session = self._find(program.version)
        if session is not None:
            return session
        policy = choose(self.policies.in_force.values(), program, self.refs)
        if policy is None:
            return None
        if program.version in self.failed:
            raise PlanningError(self.failed[program.version])
        for main, session in self.sessions.items():  # a copy of a probed file: the same program, new uprobes
            if session.policy.path == policy.path and session.same_content(program):
                start = time.monotonic()
                session.add_copy(program)  # PlanningError: said by the caller, its process killed
                self.copy_of[program.version] = main
                self._set_verdict(program, covered=True)
                self.say(f"probing {program.path}, a copy of {session.program.path} (build ID {program.build_id}): "
                         f"its probes attached in {time.monotonic() - start:.3f}s")
                return session
        try:
            session = FileSession(program, policy, self.catalog, mode=self.options.mode,
                                  pin_root=self.options.pin_root)
        except PlanningError as exc:
            self.failed[program.version] = str(exc)
            self.metrics.unplannable.labels(Path(program.path).name).inc()
            self.say(f"ERROR: {exc}: its processes are killed (matched by {policy.path})")
            raise
        session.attached.guard_processes([os.getpid()])
        self.sessions[program.version] = session
        self._set_verdict(program, covered=True)
        self.say(f"probing {program.path} (build ID {program.build_id}) under {policy.path}: "
                 f"{session.attached.probe_count} probes, planned in {session.plan_seconds:.2f}s, attached in "
                 f"{session.attach_seconds:.2f}s")
        return session

    def _set_verdict(self, program: Program, *, covered: bool) -> None:
        from gohook.bpf.exechold import Verdict

        if self.hold is None:
            return
        self.hold.set_verdict(_file_key(program.version), Verdict.COVERED if covered else Verdict.IGNORE)
        if not covered:
            self.ignored.add(program.version)

    def _on_exec(self, held: HeldExec) -> None:
        """A process stopped at exec: enforce its file, then let it run; kill it when its file cannot be."""
        assert self.hold is not None
        pid = held.tgid
        program = self._identify(f"/proc/{pid}/exe")
        result = "released"
        if program is None:  # gone already
            result = "gone"
        else:
            try:
                session = self._session_for(program)
            except PlanningError:
                session = None
                result = "killed"
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            else:
                if session is None:
                    self._set_verdict(program, covered=False)
                else:
                    self.processes.setdefault(program.version, set()).add(pid)
                    if process_state(pid) not in ("T", "t", ""):
                        # someone sent SIGCONT before the probes were attached: it may have run unenforced
                        result = "killed"
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                        self.say(f"ERROR: pid {pid} ({held.filename}) was continued by someone else before its "
                                 "probes were attached: killed")
        if result != "killed":
            self.hold.release(pid)
        waited = max(time.monotonic_ns() - held.ktime_ns, 0) / 1e9
        self.metrics.holds.labels(result).inc()
        self.metrics.hold_seconds.observe(waited)
        log.info("gohook agent: exec of %s (pid %d) held %.1f ms: %s", held.filename, pid, waited * 1e3, result)

    def _recover_lost_holds(self) -> None:
        """Execs the kernel stopped without an event (its ring buffer was full) wait for nobody: find them
        (stopped, in scope, their file with no verdict) and decide them as if the event had come."""
        from gohook.bpf.exechold import HeldExec

        assert self.hold is not None
        lost = self.hold.counters().lost
        if lost <= self.lost_holds:
            return
        self.lost_holds = lost
        self.say(f"WARNING: {lost} exec holds had no event (ring buffer full): looking for stopped processes")
        me = os.getpid()
        for pid in _pids():
            if pid == me or not self._in_scope(pid) or process_state(pid) not in ("T", "t"):
                continue
            program = self._identify(f"/proc/{pid}/exe")
            if program is None or self._find(program.version) is not None or program.version in self.ignored:
                continue
            self._on_exec(HeldExec(tgid=pid, ppid=0, key=None, ktime_ns=time.monotonic_ns(), comm="",
                                   filename=program.path, signal_error=0))

    def _in_scope(self, pid: int) -> bool:
        if self.options.cgroup is None:
            return True
        root = "/" + os.path.relpath(self.options.cgroup, "/sys/fs/cgroup/unified").lstrip("./")
        cg = cgroup_of(pid)
        return cg == root or cg.startswith(root.rstrip("/") + "/")

    def _scan_processes(self) -> None:
        """Every running process in scope: probe the files policies match (processes that ran before the
        agent, or before a policy for them existed), and count the processes of each probed file."""
        me = os.getpid()
        seen: dict[FileVersion, set[int]] = {}
        for pid in _pids():
            if pid == me or not self._in_scope(pid):
                continue
            program = self._identify(f"/proc/{pid}/exe")
            if program is None or not program.is_go or program.version in self.ignored:
                continue
            try:
                session = self._session_for(program)
            except PlanningError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                continue
            if session is not None:
                seen.setdefault(program.version, set()).add(pid)
            else:
                self._set_verdict(program, covered=False)
        self.processes = {}
        for version, pids in seen.items():
            self.processes.setdefault(self.copy_of.get(version, version), set()).update(pids)
        self._check_probes(seen)
        # a file probed through a process (a container's copy) that no process runs any more cannot be run
        # again under that path: its probes go (a new copy is held and probed again)
        for version, main in list(self.copy_of.items()):
            if version not in seen:
                links = self.sessions[main].drop_copy(version)
                _retire(lambda links=links: _close_all(links))
                del self.copy_of[version]
                self._forget_verdict(version)
        for version, session in list(self.sessions.items()):
            if session.program.path.startswith("/proc/") and version not in seen and not session.copies:
                for rec in session.poll():  # its last events
                    self._emit(version, session, rec)
                _retire(lambda session=session: session.close(unpin_probes=True))
                del self.sessions[version]
                self.guards.pop(version, None)
                self._forget_verdict(version)
                log.info("gohook agent: %s: no process runs it any more: probes removed", session.program.path)

    def _check_probes(self, seen: dict[FileVersion, set[int]]) -> None:
        """The probe-integrity check (gohook.session.ProbeGuard) of every process of a probed file: a process
        that removed a probe from its text is reported, and killed in enforce mode unless the policy audits."""
        from gohook.session import ProbeGuard

        for version, session in self.sessions.items():
            pids = sorted(seen.get(version, ()))
            if not pids:
                continue
            guard = self.guards.get(version)
            if guard is None:
                kill = self.options.mode is Mode.ENFORCE and session.build.plan.action is not Action.AUDIT
                try:
                    guard = self.guards[version] = ProbeGuard(session.build.plan, f"/proc/{pids[0]}/exe", kill)
                except (OSError, GohookError):
                    continue
            for rec in guard.check(pids):
                self._emit(version, session, rec)

    def _probe_binary(self, policy: AgentPolicy) -> None:
        """Attach to a policy's `binary:` file before any process runs it: its first exec is then covered from
        the first instruction, without a hold."""
        path = policy.match.binary
        if path is None:
            return
        program = self._identify(path)
        self.binary_versions[path] = program.version if program is not None else None
        if program is None or not program.is_go:
            if program is not None:
                self.say(f"WARNING: {policy.path}: {path} is not a Go program; nothing to probe there")
            return
        with contextlib.suppress(PlanningError):  # said and counted; its processes will be killed
            self._session_for(program)

    def _check_binaries(self) -> None:
        """A policy's binary path that now holds another file (a new build moved in, a package upgrade):
        probe the new file at once, and say so."""
        for policy in self.policies.in_force.values():
            path = policy.match.binary
            if path is None:
                continue
            try:
                now: FileVersion | None = FileVersion.of_path(path)
            except OSError:
                now = None
            before = self.binary_versions.get(path)
            if now is not None and before is not None and not now.same_file(before):
                self.metrics.replaced.labels(Path(policy.path).name).inc()
                self.say(f"{path} was replaced (inode {before.ino} -> {now.ino}): probing the new file; "
                         "processes of the old one stay enforced")
            if now != before:
                self._probe_binary(policy)

    # -- reload ----------------------------------------------------------------------------------

    def _report(self, change: Change) -> None:
        for line in change.errors:
            self.say(f"ERROR: {line}")
            self.metrics.reloads.labels("failure").inc()
        for p in change.updated:
            self.metrics.reloads.labels("success").inc()
            self.metrics.last_reload.set(time.time())
            self.say(f"loaded {p.path} ({p.match.describe()})")
        for path in change.removed:
            self.say(f"removed {path}")

    def _reload(self) -> None:
        """The directory changed: load what changed, then bring every session to its matching policy."""
        try:
            change = self.policies.scan()
        except GohookError as exc:
            self.say(f"ERROR: {exc} (the policies in force stay)")
            self.metrics.reloads.labels("failure").inc()
            return
        self._report(change)
        if not (change.updated or change.removed):
            return
        start = time.monotonic()
        for version, session in list(self.sessions.items()):
            policy = choose(self.policies.in_force.values(), session.program, self.refs)
            if policy is None:
                _retire(lambda session=session: session.close(unpin_probes=True))
                del self.sessions[version]
                self.guards.pop(version, None)
                self._forget_verdict(version)
                for copy in [c for c, main in self.copy_of.items() if main == version]:
                    del self.copy_of[copy]
                    self._forget_verdict(copy)
                self.say(f"{session.program.path}: no policy matches it any more: enforcement ends")
                continue
            if policy.path == session.policy.path and policy.text == session.policy.text:
                continue
            old_counts = session.call_counts()
            try:
                how = session.reload(policy)
            except PlanningError as exc:
                self.say(f"ERROR: {exc}: the previous policy stays in force for it")
                continue
            self.guards.pop(version, None)  # the next check uses the new plan's probes
            if how == "replaced":
                carried = self.carried.setdefault(version, {})
                for k, n in old_counts.items():
                    carried[k] = carried.get(k, 0) + n
            self.say(f"{session.program.path}: now under {policy.path} ({how}, "
                     f"{(time.monotonic() - start) * 1e3:.0f} ms)")
        # files no policy matched before may match now: forget those verdicts and look again
        for version in list(self.ignored):
            self._forget_verdict(version)
        self.failed.clear()
        for p in self.policies.in_force.values():
            self._probe_binary(p)
        self._scan_processes()
        if self.hold is not None:
            self.hold.set_hold_unknown(bool(self.policies.in_force))
            self.hold.set_names(binary_names(self.policies.in_force.values()))

    def _forget_verdict(self, version: FileVersion) -> None:
        self.ignored.discard(version)
        if self.hold is not None:
            self.hold.forget(_file_key(version))

    # -- metrics ---------------------------------------------------------------------------------

    def _samples(self) -> list[SessionSample]:
        out = []
        for version, session in list(self.sessions.items()):
            try:
                calls = dict(self.carried.get(version, {}))
                for k, n in session.call_counts().items():
                    calls[k] = calls.get(k, 0) + n
                lost = session.attached.counters().lost
            except GohookError:
                continue
            out.append(SessionSample(self._binary_label(session), Path(session.policy.path).name, calls,
                                     dict(self.violations.get(version, {})), lost,
                                     len(self.processes.get(version, ())), session.attached.probe_count))
        return out


def _retire(close: Callable[[], object]) -> None:
    """Run a detach in the background: the kernel unregisters a uprobe in about 0.1 s, so closing a session's
    probes takes seconds, which the loop (and the processes it holds at exec) must not wait for."""
    threading.Thread(target=close, name="gohook-retire", daemon=True).start()


def _close_all(links: list[tuple[str, int]]) -> None:
    for _name, fd in links:
        with contextlib.suppress(OSError):
            os.close(fd)


def _check_pin_root(pin_root: str) -> None:
    """--pin-root must lie in a bpffs (mounted on /sys/fs/bpf when missing): pins elsewhere fail, and enforcement
    would then end with the agent, against what docs/agent.md promises. LinkError (one line) otherwise."""
    from gohook.bpf.links import DEFAULT_BPFFS, ensure_bpffs, make_pin_dir

    if os.path.abspath(pin_root).startswith(DEFAULT_BPFFS + "/"):
        ensure_bpffs(DEFAULT_BPFFS)
    make_pin_dir(pin_root)


def run_agent(options: AgentOptions) -> int:
    """`gohook agent`: the preflight, then the agent until SIGTERM/SIGINT."""
    from gohook.bpf.host import first_failure, preflight

    if not Path(options.policy_dir).is_dir():
        raise GohookError(f"--policy-dir {options.policy_dir}: not a directory")
    message = first_failure(preflight())
    if message:
        raise GohookError(message)
    _check_pin_root(options.pin_root)
    return Agent(options).run()
