"""The agent's metrics in the Prometheus text format (prometheus-client), and its /healthz endpoint.

Why prometheus-client: it is the reference implementation of the exposition format, and its parser is
what the tests read /metrics with. Counters the kernel keeps (hooked calls per module and capability, lost
events) are read at scrape time by a custom collector, so a scrape never races a counter reset: the agent
carries the counts of a program it replaced (AgentMetrics.carry). Labels are bounded: the program's file
name and policy file, module, capability, decision, result; never a pid or an argument.

Families:
    gohook_agent_calls_total{binary,policy,module,capability,decision}   hooked calls, allow included
    gohook_agent_violations_total{binary,policy,module,capability,decision}  deny / error / audit events
    gohook_agent_events_lost_total{binary,policy}        events the ring buffers dropped (counted in kernel)
    gohook_agent_processes{binary,policy}                processes running a probed file
    gohook_agent_probes{binary,policy}                   attached uprobes
    gohook_agent_policy_reloads_total{result}            success | failure
    gohook_agent_last_reload_timestamp_seconds
    gohook_agent_unplannable_total{binary}               matched programs that could not be planned (killed)
    gohook_agent_binary_replaced_total{policy}           a policy's binary path now holds another file
    gohook_agent_exec_holds_total{result}                execs held before their first instruction, by outcome
    gohook_agent_exec_hold_seconds                       exec to release (histogram)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gohook.errors import GohookError

DECISIONS = ("allow", "deny", "error", "audit")
HEALTH_STALE_SECONDS = 5.0  # /healthz fails when the agent's loop has not run for this long


class MetricsError(GohookError):
    """The metrics endpoint cannot be served (bad --metrics address, port taken)."""


@dataclass(frozen=True)
class SessionSample:
    """What the collector reads of one probed file at scrape time."""

    binary: str
    policy: str
    calls: dict[tuple[str, str], int]  # (module, capability) -> calls the kernel counted
    violations: dict[tuple[str, str, str], int]  # (module, capability, decision) -> events
    lost: int
    processes: int
    probes: int


class _KernelCollector(Collector):
    """Reads the sessions' kernel counters at each scrape."""

    def __init__(self, sample: Callable[[], Iterable[SessionSample]]) -> None:
        self._sample = sample

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily("gohook_agent_calls", "Hooked calls by program, module, capability and "
                                    "decision (allow: counted by the kernel minus the violations reported)",
                                    labels=["binary", "policy", "module", "capability", "decision"])
        lost = CounterMetricFamily("gohook_agent_events_lost", "Events the kernel's ring buffers dropped",
                                   labels=["binary", "policy"])
        procs = GaugeMetricFamily("gohook_agent_processes", "Processes running a probed file",
                                  labels=["binary", "policy"])
        probes = GaugeMetricFamily("gohook_agent_probes", "Attached uprobes", labels=["binary", "policy"])
        for s in self._sample():
            for (module, cap), n in sorted(s.calls.items()):
                denied = sum(v for (m, c, _d), v in s.violations.items() if (m, c) == (module, cap))
                calls.add_metric([s.binary, s.policy, module, cap, "allow"], max(n - denied, 0))
            for (module, cap, decision), n in sorted(s.violations.items()):
                calls.add_metric([s.binary, s.policy, module, cap, decision], n)
            lost.add_metric([s.binary, s.policy], s.lost)
            procs.add_metric([s.binary, s.policy], s.processes)
            probes.add_metric([s.binary, s.policy], s.probes)
        yield from (calls, lost, procs, probes)


class AgentMetrics:
    """The agent's registry: counters it increments, and the kernel's read at scrape time."""

    def __init__(self, sample: Callable[[], Iterable[SessionSample]]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.violations = Counter("gohook_agent_violations", "Violations reported as events",
                                  ["binary", "policy", "module", "capability", "decision"], registry=r)
        self.reloads = Counter("gohook_agent_policy_reloads", "Policy file loads", ["result"], registry=r)
        self.last_reload = Gauge("gohook_agent_last_reload_timestamp_seconds", "When a policy file was last "
                                 "loaded successfully (Unix time)", registry=r)
        self.unplannable = Counter("gohook_agent_unplannable", "Matched programs that could not be planned and "
                                   "were killed", ["binary"], registry=r)
        self.replaced = Counter("gohook_agent_binary_replaced", "A policy's binary path now holds another file",
                                ["policy"], registry=r)
        self.holds = Counter("gohook_agent_exec_holds", "Execs held before their first instruction, by outcome",
                             ["result"], registry=r)
        self.hold_seconds = Histogram("gohook_agent_exec_hold_seconds", "Exec to release of a held process",
                                      buckets=(.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30),
                                      registry=r)
        r.register(_KernelCollector(sample))
        self._beat = time.monotonic()
        self._server: WSGIServer | None = None

    def heartbeat(self) -> None:
        self._beat = time.monotonic()

    def healthy(self) -> bool:
        return time.monotonic() - self._beat < HEALTH_STALE_SECONDS

    def serve(self, address: str) -> tuple[str, int]:
        """Serve /metrics and /healthz on ADDR:PORT in a daemon thread; the address bound (port 0: any)."""
        host, sep, port_text = address.rpartition(":")
        if not sep or not port_text.isdigit() or int(port_text) > 65535:
            raise MetricsError(f"--metrics {address!r}: expected ADDR:PORT, e.g. 127.0.0.1:9464")
        host = host.strip("[]") or "0.0.0.0"
        metrics_app = make_wsgi_app(self.registry)

        def app(environ: dict, start_response: Callable) -> Iterable[bytes]:  # type: ignore[type-arg]
            if environ.get("PATH_INFO") == "/healthz":
                ok = self.healthy()
                start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
                return [b"ok\n" if ok else b"stale: the agent's loop has stopped\n"]
            return metrics_app(environ, start_response)

        class _Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base's name)
                pass

        try:
            self._server = make_server(host, int(port_text), app, handler_class=_Quiet)
        except OSError as exc:
            raise MetricsError(f"--metrics {address}: cannot listen: {exc.strerror or exc}") from None
        threading.Thread(target=self._server.serve_forever, name="gohook-metrics", daemon=True).start()
        bound = self._server.server_address
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
