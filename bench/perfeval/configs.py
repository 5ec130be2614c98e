"""The instrumentations compared, behind one interface.

Each configuration is compiled and loaded once; a run then goes

    proc = config.start(argv, stdout=...)   # the workload, started under the configuration
    ...                                     # the workload runs (and may be stopped: config.stop(proc))
    stats = config.finish()                 # probes off again; what the instrumentation saw in the run

Configurations that attach to a process id start the workload behind a gate
(`sh -c 'read _ && exec ...'`): the pid is known and registered, the probes
are attached, and only then does the shell exec the workload, so no
instrumented call of the workload is missed and the exec'd process keeps the
pid. `AttachCli` instead runs the real `gohook attach -- CMD` command, which
starts the workload itself once every probe is attached.
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
from pathlib import Path
from typing import IO, Any

from gohook.bpf.loader import Attached, ProgramStats, attach
from gohook.bpf.render import ProgramOptions
from gohook.eventview import Symbolizer
from gohook.gosym import GoBinary
from gohook.plan import EnforcementPlan
from perfeval.systrace import SyscallTrace

GATE = 'read _ && exec "$0" "$@"'
Stats = dict[str, float]


class Instrumentation:
    """No instrumentation; the base of the others."""

    def __init__(self, name: str, description: str) -> None:
        self.name = name
        self.description = description

    # -- one run ---------------------------------------------------------------------

    def start(self, argv: list[str], **popen: Any) -> subprocess.Popen[str]:
        proc = subprocess.Popen(["sh", "-c", GATE, *argv], stdin=subprocess.PIPE, text=True, **popen)
        try:
            self.arm(proc.pid)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.close()
        return proc

    def stop(self, proc: subprocess.Popen[str]) -> None:
        """End a workload that does not end by itself (a service)."""
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=60)

    def arm(self, pid: int) -> None:
        """Attach whatever this configuration attaches, for process pid (not yet exec'd)."""

    def finish(self) -> Stats:
        """Detach; counts of the run."""
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
    """gohook's BPF program for a plan, attached per file (like `gohook attach -- CMD`)."""

    def __init__(self, name: str, description: str, plan: EnforcementPlan, binary: GoBinary,
                 options: ProgramOptions) -> None:
        super().__init__(name, description)
        self.plan = plan
        self.options = options
        self.att: Attached = attach(plan, options=options, attach_probes=False)
        self.symbolizer = Symbolizer(binary, plan)
        self._sink: IO[str] = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the configuration
        self._consumer: _Consumer | None = None
        self._before = self.att.counters()
        self.timings = dict(self.att.timings)

    def _emit(self, ev: Any) -> None:
        rec = self.symbolizer.record(ev)
        self._sink.write(json.dumps(rec.as_json(), separators=(",", ":")) + "\n")

    def arm(self, pid: int) -> None:
        self._before = self.att.counters()
        start = time.monotonic()
        self.att.attach_probes()
        self.timings["attach"] = time.monotonic() - start
        if self.options.report_allowed:
            self._consumer = _Consumer(self.att.poll, self._emit)

    def finish(self) -> Stats:
        consumed, cpu = 0, 0.0
        if self._consumer is not None:
            self._consumer.join()
            consumed, cpu = self._consumer.count, self._consumer.cpu_s
            self._consumer = None
        self.att.detach_probes()
        for ev in self.att.drain():
            self._emit(ev)
            consumed += 1
        after = self.att.counters()
        b = self._before
        if after.denied != b.denied:
            raise RuntimeError(f"{self.name}: gohook killed the workload ({after.denied - b.denied} violations): "
                               "the benchmark policy must allow everything perfapp does")
        return {"hits": after.hits - b.hits, "ignored": after.ignored - b.ignored,
                "probe_runs": (after.hits - b.hits) + (after.ignored - b.ignored),
                "events": consumed, "lost": after.lost - b.lost, "garbled": after.garbled - b.garbled,
                "consumer_cpu_s": cpu}

    def program_stats(self) -> list[ProgramStats]:
        return self.att.program_stats()

    def close(self) -> None:
        self.att.close()
        self._sink.close()


class SyscallTraceConfig(Instrumentation):
    """bpf/syscall_trace.bpf.c for the workload's pid, audit only."""

    def __init__(self, name: str, description: str, plan: EnforcementPlan, *, walk_all: bool = True) -> None:
        super().__init__(name, description)
        self.tracer = SyscallTrace(plan, walk_all=walk_all)
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
        if self._consumer is not None:
            self._consumer.join()
            self._consumer = None
        self.tracer.detach()
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
_ATTACHED = re.compile(r"gohook: attached (\d+) probes")


class AttachCli(Instrumentation):
    """The real command: `gohook attach --binary APP --policy P --json -- CMD` (compiles at every start)."""

    def __init__(self, name: str, description: str, binary: Path, policy: Path, log_dir: Path,
                 extra_args: tuple[str, ...] = ()) -> None:
        super().__init__(name, description)
        self.binary, self.policy, self.log_dir = binary, policy, log_dir
        self.extra_args = extra_args
        self._log: Path | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._runs = 0
        self._cpu_s = 0.0

    def command(self, argv: list[str]) -> list[str]:
        return [sys.executable, "-m", "gohook", "attach", "--binary", str(self.binary), "--policy", str(self.policy),
                "--json", *self.extra_args, "--", *argv]

    def start(self, argv: list[str], **popen: Any) -> subprocess.Popen[str]:
        self._runs += 1
        self._log = self.log_dir / f"{self.name}-{self._runs}.stderr"
        popen.pop("stdout", None)
        with self._log.open("w") as err:
            self._proc = subprocess.Popen(self.command(argv), stdout=subprocess.DEVNULL, stderr=err, text=True,
                                          **popen)
        return self._proc

    def stop(self, proc: subprocess.Popen[str]) -> None:
        self._cpu_s = process_cpu_seconds(proc.pid)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # gohook kills its child (fail closed) and prints its counters
        proc.wait(timeout=60)

    def finish(self) -> Stats:
        text = self._log.read_text() if self._log else ""
        m = _CALLS.search(text)
        if m is None:
            raise RuntimeError(f"{self.name}: no summary line in {self._log}:\n{text[-2000:]}")
        if int(m.group(2)):
            raise RuntimeError(f"{self.name}: gohook attach killed the workload:\n{text[-2000:]}")
        return {"hits": int(m.group(1)), "lost": int(m.group(3) or 0), "agent_cpu_s": self._cpu_s}


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (its own, not its children's)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
