"""Workload runs: one microbenchmark process, or the HTTP service under wrk for a fixed time.

Every run starts its workload through a configuration (configs.py), so the
instrumentation is in place before the workload's first instruction.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from perfeval.configs import Instrumentation, Stats, process_cpu_seconds

WRK_SCRIPT = Path(__file__).with_name("wrk_report.lua")


class WorkloadError(RuntimeError):
    """A workload failed; the message has its output."""


@dataclass(frozen=True)
class MicroResult:
    ns_per_op: float
    n: int
    stats: Stats


def micro(config: Instrumentation, op: str, n: int, *, depth: int = 10, threads: int = 1,
          timeout: float = 600) -> MicroResult:
    """One `perfapp micro` process under config: ns per operation as the process measured it."""
    args = ["micro", "-op", op, "-n", str(n), "-depth", str(depth), "-threads", str(threads)]
    proc = config.start(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        proc.kill()
        proc.wait()
        config.finish()
        raise
    stats = config.finish()
    if proc.returncode != 0:
        raise WorkloadError(f"perfapp micro {op} under {config.name} exited with {proc.returncode}: {err.strip()}")
    try:
        doc = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise WorkloadError(f"perfapp micro {op} under {config.name}: no result in {out!r}") from exc
    return MicroResult(float(doc["ns_per_op"]), n, stats)


@dataclass(frozen=True)
class HttpResult:
    rps: float
    p50_us: float
    p90_us: float
    p99_us: float
    requests: int  # measured requests
    total_requests: int  # including the warm-up
    errors: int
    service_cpu_s: float  # CPU time of the service process while loaded (user + system, BPF programs included)
    agent_cpu_s: float  # CPU time of gohook's user space meanwhile (a separate command, or the event consumer)
    stats: Stats = field(default_factory=dict)

    @property
    def cpu_us_per_request(self) -> float:
        """Service plus agent CPU per request: the cost least sensitive to whatever else the machine runs."""
        return (self.service_cpu_s + self.agent_cpu_s) * 1e6 / max(self.total_requests, 1)


def _wait_for_file(path: Path, proc: subprocess.Popen[str], timeout: float, what: str) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text().strip()
        if proc.poll() is not None:
            raise WorkloadError(f"{what} exited with {proc.returncode} before listening")
        time.sleep(0.02)
    raise WorkloadError(f"{what} did not listen within {timeout:.0f}s")


def _wrk(url: str, seconds: float, connections: int, threads: int) -> dict[str, float]:
    # wrk takes whole seconds only
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s", "-s",
            str(WRK_SCRIPT), url]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise WorkloadError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()} {proc.stdout[-500:]}")
    return json.loads(lines[-1])


class HttpBench:
    """The upstream service (an unprobed copy, started once) and runs of the probed service under wrk."""

    def __init__(self, upstream: Path, files: Path, workdir: Path, *, seconds: float, warmup: float = 1.0,
                 connections: int = 16, wrk_threads: int = 1) -> None:
        if shutil.which("wrk") is None:
            raise WorkloadError("wrk is not installed: apt-get install wrk (scripts/setup.sh)")
        self.files, self.workdir = files, workdir
        self.seconds, self.warmup = seconds, warmup
        self.connections, self.wrk_threads = connections, wrk_threads
        self._runs = 0
        ready = workdir / "upstream.url"
        ready.unlink(missing_ok=True)
        self.upstream = subprocess.Popen([str(upstream), "upstream", "-ready", str(ready)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        try:
            self.upstream_url = _wait_for_file(ready, self.upstream, 30, "the upstream service")
        except BaseException:
            self.close()
            raise

    def run(self, config: Instrumentation) -> HttpResult:
        """One run: start the service under config, load it (warm-up, then measured), stop it."""
        self._runs += 1
        ready = self.workdir / f"service-{id(self):x}-{self._runs}.url"
        ready.unlink(missing_ok=True)  # a stale file would name a service that is gone
        args = ["serve", "-root", str(self.files), "-upstream", self.upstream_url, "-ready", str(ready)]
        proc = config.start(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = _wait_for_file(ready, proc, 300, f"the service under {config.name}")
            pid = config.workload_pid(proc)
            cpu0, agent0 = process_cpu_seconds(pid), config.agent_cpu_seconds(proc)
            warm = _wrk(url, self.warmup, self.connections, self.wrk_threads) if self.warmup > 0 else {}
            doc = _wrk(url, self.seconds, self.connections, self.wrk_threads)
            cpu, agent = process_cpu_seconds(pid) - cpu0, config.agent_cpu_seconds(proc) - agent0
        finally:
            config.stop(proc)
            stats = config.finish()
        seconds = doc["duration_us"] / 1e6
        return HttpResult(rps=doc["requests"] / seconds, p50_us=doc["p50_us"], p90_us=doc["p90_us"],
                          p99_us=doc["p99_us"], requests=int(doc["requests"]),
                          total_requests=int(doc["requests"] + warm.get("requests", 0)),
                          errors=int(doc["errors"] + doc["status_errors"] + doc["timeouts"]), service_cpu_s=cpu,
                          agent_cpu_s=agent + stats.get("consumer_cpu_s", 0.0), stats=stats)

    def close(self) -> None:
        if self.upstream.poll() is None:
            self.upstream.terminate()
        self.upstream.wait(timeout=30)

    def __enter__(self) -> HttpBench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
