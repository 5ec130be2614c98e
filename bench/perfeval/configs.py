"""The instrumentations compared, behind one interface.

Removing a uprobe costs about 0.1 s on this kernel (measured: 50 probes take
5.8 s to detach, in parallel or not), so configurations are not switched by
attaching and detaching probes. Each configuration owns a private copy of
the workload binary instead (uprobes are per file), compiled, loaded and
attached once; a run of that configuration executes its copy:

    proc = config.start(argv, stdout=...)   # config.app ARGS..., under the configuration
    ...                                     # the workload runs (and may be stopped: config.stop(proc))
    stats = config.finish()                 # what the instrumentation saw during the run

The workload starts behind a gate (`sh -c 'read _ && exec ...'`): its pid is
known and registered (the syscall tracer's target map) before the shell execs
the workload, so no instrumented call is missed and the exec'd process keeps
the pid. The syscall tracer's raw tracepoint is attached for the run only (it
is system-wide; attaching and detaching it is immediate). `AttachCli` runs the
real `gohook attach -- CMD` command instead, which starts the workload itself
once every probe is attached.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import IO, Any

from gohook.bpf.loader import Attached, ProgramStats, attach
from gohook.bpf.render import ProgramOptions
from gohook.events.decode import decode_event
from gohook.events.symbolize import Symbolizer
from gohook.gosym import GoBinary
from gohook.plan.model import EnforcementPlan
from perfeval.systrace import SyscallTrace

GATE = 'read _ && exec "$0" "$@"'
Stats = dict[str, float]


class Instrumentation:
    """No instrumentation; the base of the others. `app` is the binary copy this configuration runs."""

    def __init__(self, name: str, description: str, app: Path) -> None:
        self.name = name
        self.description = description
        self.app = app
        self.timings: dict[str, float] = {}

    # -- one run ---------------------------------------------------------------------

    def start(self, args: list[str], **popen: Any) -> subprocess.Popen[str]:
        """Run `self.app ARGS...` under this configuration."""
        proc = subprocess.Popen(["sh", "-c", GATE, str(self.app), *args], stdin=subprocess.PIPE, text=True,
                                **popen)
        try:
            self.arm(proc.pid)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.close()
        proc.stdin = None  # released: communicate() must not touch it
        return proc

    def workload_pid(self, proc: subprocess.Popen[str]) -> int:
        """Process id of the workload itself (the gate execs it, so the same pid)."""
        return proc.pid

    def agent_cpu_seconds(self, proc: subprocess.Popen[str]) -> float:
        """CPU time so far of a separate gohook process serving this run (none here)."""
        return 0.0

    def stop(self, proc: subprocess.Popen[str]) -> None:
        """End a workload that does not end by itself (a service)."""
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=60)

    def arm(self, pid: int) -> None:
        """Get ready for a run of process pid (not yet exec'd)."""

    def finish(self) -> Stats:
        """The run is over: counts of what the instrumentation saw in it."""
        return {}

    # -- diagnostics -------------------------------------------------------------------

    def program_stats(self) -> list[ProgramStats]:
        return []

    def close(self) -> None:
        pass


class _Consumer:
    """A thread that reads events while a run lasts, as `gohook attach` does (symbolize, JSON, write)."""

    def __init__(self, poll: Any, handle: Any) -> None:
        self._poll, self._handle = poll, handle
        self._stop = threading.Event()
        self.count = 0
        self.cpu_s = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start = time.thread_time()
        while not self._stop.is_set():
            for item in self._poll(100) or ():
                self._handle(item)
                self.count += 1
        self.cpu_s = time.thread_time() - start

    def join(self) -> None:
        self._stop.set()
        self._thread.join()


class Gohook(Instrumentation):
    """gohook's BPF program for a plan, attached to the configuration's copy for the whole evaluation."""

    def __init__(self, name: str, description: str, plan: EnforcementPlan, binary: GoBinary,
                 options: ProgramOptions, app: Path) -> None:
        super().__init__(name, description, app)
        self.plan = replace(plan, binary=str(app))  # same bytes, so the same file offsets
        self.options = options
        self.att: Attached = attach(self.plan, options=options)
        self.symbolizer = Symbolizer(binary, self.plan)
        self._sink: IO[str] = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the configuration
        self._consumer: _Consumer | None = None
        self._violations: list[str] = []
        self._before = self.att.counters()
        self.timings = dict(self.att.timings)

    def _emit(self, ev: Any) -> None:
        rec = self.symbolizer.record(decode_event(ev, self.att.options.layout))
        line = json.dumps(rec.as_json(), separators=(",", ":"))
        self._sink.write(line + "\n")
        if rec.decision != "allow" and len(self._violations) < 5:
            self._violations.append(line)

    def arm(self, pid: int) -> None:
        self.att.drain()  # anything left from outside a run
        self._before = self.att.counters()
        if self.options.report_allowed:
            self._consumer = _Consumer(self.att.poll, self._emit)

    def finish(self) -> Stats:
        consumed, cpu = 0, 0.0
        if self._consumer is not None:
            self._consumer.join()
            consumed, cpu = self._consumer.count, self._consumer.cpu_s
            self._consumer = None
        start = time.thread_time()
        for ev in self.att.drain():
            self._emit(ev)
            consumed += 1
        cpu += time.thread_time() - start
        after = self.att.counters()
        b = self._before
        if after.denied != b.denied:
            shown = "\n".join(self._violations)
            raise RuntimeError(f"{self.name}: gohook killed the workload ({after.denied - b.denied} violations): "
                               f"the benchmark policy must allow everything perfapp does\n{shown}")
        out: Stats = {k: v - getattr(b, k) for k, v in asdict(after).items()}  # every counter the program has
        out.update(probe_runs=out["hits"] + out["ignored"], events=consumed, consumer_cpu_s=cpu)
        return out

    def program_stats(self) -> list[ProgramStats]:
        return self.att.program_stats()

    def close(self) -> None:
        start = time.monotonic()
        self.att.close()
        self.timings["detach"] = time.monotonic() - start
        self._sink.close()


class SyscallTraceConfig(Instrumentation):
    """bench/perfeval/syscall_trace.bpf.c for the workload's pid, audit only, attached for each run."""

    def __init__(self, name: str, description: str, plan: EnforcementPlan, app: Path, *,
                 walk_all: bool = True) -> None:
        super().__init__(name, description, app)
        start = time.monotonic()
        self.tracer = SyscallTrace(plan, walk_all=walk_all)
        self.timings["load"] = time.monotonic() - start
        self._consumer: _Consumer | None = None
        self._before: dict[str, int] = {}

    def arm(self, pid: int) -> None:
        self._before = self.tracer.counters()
        self.tracer.set_targets([pid])
        self.tracer.attach()
        self._consumer = _Consumer(self._poll, lambda _v: None)

    def _poll(self, timeout_ms: int) -> list[object]:
        n = len(self.tracer.violations)
        self.tracer.poll(timeout_ms)
        return self.tracer.violations[n:]

    def finish(self) -> Stats:
        self.tracer.detach()
        if self._consumer is not None:
            self._consumer.join()
            self._consumer = None
        self.tracer.set_targets([])
        self.tracer.poll(0)
        after = self.tracer.counters()
        out: Stats = {k: after[k] - self._before.get(k, 0) for k in after}
        out["probe_runs"] = out["syscalls"]
        return out

    def program_stats(self) -> list[ProgramStats]:
        return self.tracer.program_stats()

    def close(self) -> None:
        self.tracer.close()


_CALLS = re.compile(r"gohook: (\d+) hooked calls, (\d+) killed(?:, (\d+) events lost)?")


class AttachCli(Instrumentation):
    """The real command: `gohook attach --binary APP --policy P --json [EXTRA] -- APP ARGS` (compiles at every start).

    gohook detaches its probes when it exits, which takes seconds here: that happens after the measured part
    of a run, and costs only wall time.
    """

    def __init__(self, name: str, description: str, app: Path, policy: Path, log_dir: Path,
                 extra_args: tuple[str, ...] = (), tree: Path | None = None) -> None:
        super().__init__(name, description, app)
        self.policy, self.log_dir = policy, log_dir
        self.extra_args = extra_args
        self.tree = tree  # run another checkout's gohook (PYTHONPATH=tree, cwd=tree): before/after a change
        self._log: Path | None = None
        self._out: Path | None = None
        self._runs = 0

    def command(self, args: list[str]) -> list[str]:
        return [sys.executable, "-m", "gohook", "attach", "--binary", str(self.app), "--policy", str(self.policy),
                "--json", *self.extra_args, "--", str(self.app), *args]

    def start(self, args: list[str], **popen: Any) -> subprocess.Popen[str]:
        self._runs += 1
        self._log = self.log_dir / f"{self.name}-{self._runs}.stderr"
        self._out = self.log_dir / f"{self.name}-{self._runs}.jsonl"
        popen.pop("stdout", None)
        popen.pop("stderr", None)
        if self.tree is not None:
            popen.setdefault("env", dict(os.environ, PYTHONPATH=str(self.tree)))
            popen.setdefault("cwd", self.tree)
        with self._log.open("w") as err, self._out.open("w") as out:
            return subprocess.Popen(self.command(args), stdout=out, stderr=err, text=True, **popen)

    def workload_pid(self, proc: subprocess.Popen[str]) -> int:
        """The service: the one descendant of the command running this configuration's binary.

        Not simply the command's child: gohook starts the command under a PID-namespace init of its own
        (fail closed, issue 12), so the child is that init's wrapper and the service a grandchild or
        deeper; its CPU time would be the wrapper's, a few ms, and the cost per request would read 0.
        """
        app = self.app.resolve()
        found: list[int] = []
        todo, seen = [proc.pid], set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            try:
                if pid != proc.pid and Path(f"/proc/{pid}/exe").resolve() == app:
                    found.append(pid)
                    continue
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue
        if len(found) != 1:
            raise RuntimeError(f"{self.name}: expected one process running {app} under gohook attach "
                               f"(pid {proc.pid}), found {found}")
        return found[0]

    def agent_cpu_seconds(self, proc: subprocess.Popen[str]) -> float:
        return process_cpu_seconds(proc.pid)

    def stop(self, proc: subprocess.Popen[str]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # gohook kills its child (fail closed) and prints its counters
        proc.wait(timeout=300)

    def finish(self) -> Stats:
        text = self._log.read_text() if self._log else ""
        m = _CALLS.search(text)
        if m is None:
            raise RuntimeError(f"{self.name}: no summary line in {self._log}:\n{text[-2000:]}")
        if int(m.group(2)):
            raise RuntimeError(f"{self.name}: gohook attach killed the workload:\n{text[-2000:]}")
        events = 0
        if self._out is not None:
            with self._out.open("rb") as f:
                events = sum(1 for _ in f)
            self._out.unlink()  # can be large: one JSON line per reported call
        return {"hits": int(m.group(1)), "probe_runs": int(m.group(1)), "lost": int(m.group(3) or 0),
                "events": events}


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (its own, not its children's)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
