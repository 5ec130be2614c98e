#!/usr/bin/env python3
"""What enforcement costs a real server (issue 17 §7): a Debian server under its learned policy.

    sudo .venv/bin/python bench/bench_real_server.py [--server node_exporter|etcd] [--rounds 3]
                                                     [--requests N] [--json] [--details]

Two servers, both fetched by scripts/setup.sh (sha256-pinned), each run from a private copy (uprobes are per
file: another session probing the cached file does not touch this one):
- node_exporter (the default): Debian's prometheus-node-exporter; a request is one scrape of /metrics on a new
  connection (hundreds of /proc and /sys files opened per scrape: the worst case for gohook);
- etcd: Debian's etcd-server 3.4 as one member on 127.0.0.1 with a private data directory; a request is one
  v3 put (gRPC gateway, POST /v3/kv/put) of a small value to a rotating key, then one range of that key,
  over one keep-alive HTTP connection (the client's connection set-up is not in the numbers).

The server is first run once under `gohook attach --mode learn` with the same kind of traffic (start, the
request mix, a graceful stop by SIGTERM), which gives the policy. Then, per round and in a shuffled order, it
is started
- none:    alone;
- enforce: under `gohook attach --policy LEARNED -- server` (action kill, the sentinel as `auto` picks it);
- error:   the same with `action: error` (gohook traces every thread of it);
each time warmed up, then sent --requests requests one after the other (node_exporter: --scrapes, the same).
The cost is the server's own CPU (utime + stime from /proc/PID/stat, before and after the measured requests)
per request, and the wall time per request. Reported: medians per configuration and the ratios to `none`
(medians of the per-round ratios). gohook's own CPU is not in the number: what the service pays. With
--details (etcd's default) also the min-max spreads, the statuses answered, the load average at start and end,
and per gohook run its `hooked calls` total (startup, warm-up and stop included) and why the system-call
sentinel was on or off; node_exporter's default output stays what docs/performance.md quotes.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

CACHE = Path(os.environ.get("GOHOOK_CACHE", "/var/cache/gohook"))
EXPORTER = CACHE / "real/prometheus-node-exporter/root/usr/bin/prometheus-node-exporter"
ETCD = CACHE / "real/etcd-server/root/usr/bin/etcd"
GOHOOK = [sys.executable, "-m", "gohook"]
TICK = os.sysconf("SC_CLK_TCK")


class BenchFailure(RuntimeError):
    """The measurement is void: a server that did not start or answer, or one gohook killed or denied."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15)


# --- the servers ----------------------------------------------------------------------------------------------


class Client(Protocol):
    """One client of a server: request(i) makes the i-th request and returns its HTTP statuses (it raises
    BenchFailure or OSError when the server does not answer as it should)."""

    def request(self, i: int) -> list[int]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Server:
    """What the bench needs to know of one server.

    argv(binary, ports, data) is its command line, listening on 127.0.0.1 on ports (the same for every run:
    the learned policy's network.listen names them) with its state in data (emptied before each run: the
    learned file paths name it). ready(ports) returns once it serves; client(ports) opens a client.
    Learning: learn_requests requests, and at least learn_seconds of them, then either gohook's --duration
    (learn_duration) ends the run or, when None, the bench stops gohook with SIGINT right after the traffic
    (gohook stops the server with SIGTERM: its shutdown path is learned)."""

    name: str
    binary: Path
    unit: str  # one request, in the output: "scrape", "request"
    requests: int  # the default of --requests
    warmup: int
    ports: int
    argv: Callable[[Path, tuple[int, ...], Path], list[str]]
    ready: Callable[[tuple[int, ...]], None]
    client: Callable[[tuple[int, ...]], Client]
    learn_requests: int
    learn_seconds: float = 0.0
    learn_duration: float | None = None
    details: bool = False  # --details by default


def wait_until(ready: Callable[[], object], what: str, timeout: float = 120.0) -> None:
    """Call ready() until it does not raise OSError (connection refused, an HTTP error status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ready()
            return
        except OSError:
            time.sleep(0.2)
    raise BenchFailure(f"{what} did not answer in {timeout:.0f}s")


# node_exporter: a scrape of /metrics, each on a new connection (urllib raises HTTPError on a non-2xx status)

def scrape(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:
        return len(resp.read())


@dataclass
class ScrapeClient:
    """node_exporter's client: every request a new connection, as Prometheus's scrapes of a target often are."""

    port: int

    def request(self, i: int) -> list[int]:
        scrape(self.port)
        return [200]

    def close(self) -> None:
        pass


def exporter_argv(binary: Path, ports: tuple[int, ...], data: Path) -> list[str]:
    return [str(binary), f"--web.listen-address=127.0.0.1:{ports[0]}"]


def exporter_ready(ports: tuple[int, ...]) -> None:
    wait_until(lambda: scrape(ports[0]), f"the exporter on port {ports[0]}")


# etcd: v3 put + range through the gRPC gateway, on one keep-alive connection

def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass
class EtcdClient:
    """etcd's client: one HTTP/1.1 connection kept alive; request i puts value-i under one of `keys` rotating
    keys and reads it back (the range must return it)."""

    port: int
    keys: int = 64
    conn: http.client.HTTPConnection = field(init=False)

    def __post_init__(self) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def post(self, path: str, doc: dict[str, str]) -> tuple[int, bytes]:
        self.conn.request("POST", path, body=json.dumps(doc).encode(), headers={"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def request(self, i: int) -> list[int]:
        key, value = b64(f"gohook-bench/{i % self.keys}"), b64(f"value-{i}")
        put, _ = self.post("/v3/kv/put", {"key": key, "value": value})
        got, body = self.post("/v3/kv/range", {"key": key})
        if put != 200 or got != 200 or value.encode() not in body:
            raise BenchFailure(f"etcd request {i}: put {put}, range {got}: {body[:300]!r}")
        return [put, got]

    def close(self) -> None:
        self.conn.close()


def etcd_argv(binary: Path, ports: tuple[int, ...], data: Path) -> list[str]:
    client, peer = (f"http://127.0.0.1:{p}" for p in ports)
    return [str(binary), "--name", "gohook-bench", "--data-dir", str(data), "--listen-client-urls", client,
            "--advertise-client-urls", client, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"gohook-bench={peer}"]


def etcd_health(port: int) -> None:
    """/health says true once the member has a leader (a 503, an HTTPError, before)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
        body = resp.read()
    if b'"true"' not in body:
        raise ConnectionError(f"etcd not healthy yet: {body!r}")


def etcd_ready(ports: tuple[int, ...]) -> None:
    wait_until(lambda: etcd_health(ports[0]), f"etcd on port {ports[0]}")


SERVERS: Mapping[str, Server] = MappingProxyType({
    "node_exporter": Server("node_exporter", EXPORTER, "scrape", requests=60, warmup=5, ports=1,
                            argv=exporter_argv, ready=exporter_ready, client=lambda ports: ScrapeClient(ports[0]),
                            learn_requests=10, learn_duration=30.0),
    "etcd": Server("etcd", ETCD, "request", requests=2000, warmup=50, ports=2, argv=etcd_argv, ready=etcd_ready,
                   client=lambda ports: EtcdClient(ports[0]), learn_requests=500, learn_seconds=25.0, details=True),
})


# --- one run --------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One start of the server: its CPU and wall seconds per request, the statuses it answered, and for a run
    under gohook what gohook said (hooked calls over the whole run, the sentinel's reason)."""

    cpu: float
    wall: float
    statuses: dict[int, int]
    hooked_calls: int | None = None
    sentinel: str | None = None


def server_pid(err: Path, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> int:
    """The pid of the server gohook started (its `started ... (pid N)` line)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"gohook: started .* \(pid (\d+)\)", err.read_text(errors="replace"))
        if m:
            return int(m[1])
        if proc.poll() is not None:
            raise BenchFailure(f"gohook exited: {err.read_text()}")
        time.sleep(0.1)
    raise BenchFailure("gohook did not start the server")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT (gohook's stop; the server's own graceful stop), SIGKILL after 120 s."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def fresh(data: Path) -> Path:
    shutil.rmtree(data, ignore_errors=True)
    return data


def not_allowed(events: Path) -> list[str]:
    """gohook's --json events that are not an allowed call (a violation, a tamper): each one line."""
    if not events.exists():
        return []
    return [line for line in events.read_text(errors="replace").splitlines()
            if line.startswith("{") and json.loads(line).get("decision") != "allow"]


def run_once(server: Server, binary: Path, policy: Path | None, requests: int, work: Path,
             ports: tuple[int, ...], attach_options: tuple[str, ...] = ()) -> Run:
    """One start of the server (alone when policy is None), warmed up, then `requests` requests measured."""
    argv = server.argv(binary, ports, fresh(work / "data"))
    stamp = time.monotonic_ns()
    err, events = work / f"run-{stamp}.stderr", work / f"run-{stamp}.events"
    statuses: dict[int, int] = {}
    with open(err, "wb") as e, open(events, "wb") as ev:
        if policy is None:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=e, stdin=subprocess.DEVNULL)
            pid = proc.pid
        else:
            proc = subprocess.Popen([*GOHOOK, "attach", "--binary", str(binary), "--policy", str(policy), "--json",
                                     "--allow-unmatched", *attach_options, "--", *argv], stdout=ev, stderr=e,
                                    stdin=subprocess.DEVNULL)
            pid = server_pid(err, proc)
    try:
        try:
            server.ready(ports)
            client = server.client(ports)
            try:
                for i in range(server.warmup):
                    for s in client.request(i):
                        statuses[s] = statuses.get(s, 0) + 1
                c0, t0 = cpu_seconds(pid), time.perf_counter()
                for i in range(server.warmup, server.warmup + requests):
                    for s in client.request(i):
                        statuses[s] = statuses.get(s, 0) + 1
                c1, t1 = cpu_seconds(pid), time.perf_counter()
            finally:
                client.close()
        finally:
            stop(proc)
    except (OSError, BenchFailure) as exc:
        raise BenchFailure(f"{server.name} ({'none' if policy is None else policy.name}) failed: {exc!r}; "
                           f"gohook's events: {not_allowed(events)[:20]}; "
                           f"stderr: {err.read_text(errors='replace')[-3000:]}") from exc
    run = Run((c1 - c0) / requests, (t1 - t0) / requests, statuses)
    if policy is not None:
        text = err.read_text(errors="replace")
        denied = not_allowed(events)
        if " 0 killed" not in text or "denied calls returned an error" in text or denied:
            raise BenchFailure(f"the learned policy denied {server.name} a call: {denied[:20]}; {text[-2000:]}")
        if m := re.search(r"gohook: (\d+) hooked calls", text):
            run.hooked_calls = int(m[1])
        if m := re.search(r"system-call sentinel (.*)\)$", text, re.MULTILINE):
            run.sentinel = m[1]
    return run


def learn(server: Server, binary: Path, work: Path, ports: tuple[int, ...]) -> tuple[Path, str]:
    """The learned policy of a run with the bench's kind of traffic, and gohook's stderr of it."""
    out, err = work / "learned.yaml", work / "learn.stderr"
    duration = ["--duration", str(server.learn_duration)] if server.learn_duration is not None else []
    argv = server.argv(binary, ports, fresh(work / "data"))
    with open(err, "wb") as e:
        proc = subprocess.Popen([*GOHOOK, "attach", "--binary", str(binary), "--mode", "learn", "--allow-unmatched",
                                 *duration, "-o", str(out), "--", *argv],
                                stdout=subprocess.DEVNULL, stderr=e, stdin=subprocess.DEVNULL)
    try:
        server.ready(ports)
        client = server.client(ports)
        try:
            t0, i = time.monotonic(), 0
            while i < server.learn_requests or time.monotonic() - t0 < server.learn_seconds:
                client.request(i)
                i += 1
        finally:
            client.close()
        if server.learn_duration is None:
            proc.send_signal(signal.SIGINT)
        proc.wait(180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if not out.exists():
        raise BenchFailure(f"learn mode wrote no policy: {err.read_text(errors='replace')[-3000:]}")
    return out, err.read_text(errors="replace")


# --- the rounds and the report --------------------------------------------------------------------------------


def spread(values: list[float], scale: float = 1.0) -> dict[str, float]:
    return {"median": statistics.median(values) * scale, "min": min(values) * scale, "max": max(values) * scale}


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def per_round_ratios(num: list[float], den: list[float]) -> list[float]:
    """num/den per round, rounds whose baseline is 0 left out: CPU is read in clock ticks (10 ms), so a short
    run of the server alone can measure 0 and has no ratio."""
    return [a / b for a, b in zip(num, den, strict=True) if b]


def median_or_none(values: list[float]) -> float | None:
    """The median, or None (null in --json) when no round gave a value."""
    return statistics.median(values) if values else None


def ratio_text(ratio: object) -> str:
    return f"x{ratio:.3f}" if isinstance(ratio, float) else "n/a (the server alone measured 0 CPU ticks)"


def details_of(runs: dict[str, list[Run]], cpu: dict[str, list[float]], wall: dict[str, list[float]],
               learn_text: str, load: tuple[list[float], list[float]], unit: str) -> dict[str, object]:
    """The --details part of the result: spreads, statuses, load, and what gohook said per configuration."""
    ratio = {k: per_round_ratios(cpu[k], cpu["none"]) for k in cpu if k != "none"}
    wratio = {k: per_round_ratios(wall[k], wall["none"]) for k in wall if k != "none"}
    fired = re.search(r"gohook: learn mode: (\d+ of \d+ hooked functions fired)", learn_text)
    learn_calls = re.search(r"gohook: (\d+) hooked calls", learn_text)
    sentinel = re.search(r"system-call sentinel (.*)\)$", learn_text, re.MULTILINE)
    return {
        f"cpu_ms_per_{unit}_spread": {k: spread(v, 1e3) for k, v in cpu.items()},
        f"wall_ms_per_{unit}_spread": {k: spread(v, 1e3) for k, v in wall.items()},
        "cpu_ratio_to_none_spread": {k: spread(v) for k, v in ratio.items() if v},
        "wall_ratio_to_none_spread": {k: spread(v) for k, v in wratio.items() if v},
        "statuses": {k: [{str(s): n for s, n in r.statuses.items()} for r in v] for k, v in runs.items()},
        "hooked_calls_per_run": {k: [r.hooked_calls for r in v] for k, v in runs.items() if k != "none"},
        "sentinel": {k: sorted({r.sentinel or "?" for r in v}) for k, v in runs.items() if k != "none"},
        "learn": {"fired": fired[1] if fired else None, "hooked_calls": int(learn_calls[1]) if learn_calls else None,
                  "sentinel": sentinel[1] if sentinel else None},
        "load_average": {"start": load[0], "end": load[1]},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", choices=sorted(SERVERS), default="node_exporter")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", "--scrapes", dest="requests", type=int, default=None,
                    help="measured requests per run (default: node_exporter 60 scrapes, etcd 2000 put+range)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--sentinel-off", action="store_true",
                    help="one more configuration: enforce with `--sentinel off` (what the system-call sentinel costs)")
    ap.add_argument("--details", action=argparse.BooleanOptionalAction, default=None,
                    help="spreads, statuses, load average, gohook's hooked calls and sentinel (default: on for "
                         "etcd, off for node_exporter)")
    args = ap.parse_args(argv)
    server = SERVERS[args.server]
    requests = args.requests if args.requests is not None else server.requests
    details = server.details if args.details is None else args.details
    if not server.binary.exists():
        print(f"bench_real_server: {server.binary} missing: run scripts/setup.sh", file=sys.stderr)
        return 2
    load_start = loadavg()
    with tempfile.TemporaryDirectory(prefix="gohook-bench-real-") as tmp:
        work = Path(tmp)
        binary = work / server.binary.name
        shutil.copy2(server.binary, binary)
        ports = tuple(free_port() for _ in range(server.ports))  # the same for every run: the policy names them
        learned, learn_text = learn(server, binary, work, ports)
        error = work / "error.yaml"
        error.write_text(learned.read_text().replace("action: kill", "action: error"))
        configs: dict[str, Path | None] = {"none": None, "enforce": learned, "error": error}
        options: dict[str, tuple[str, ...]] = {}
        if args.sentinel_off:
            configs["sentinel-off"] = learned
            options["sentinel-off"] = ("--sentinel", "off")
        runs: dict[str, list[Run]] = {k: [] for k in configs}
        for _ in range(args.rounds):
            order = list(configs)
            random.shuffle(order)
            for name in order:
                runs[name].append(run_once(server, binary, configs[name], requests, work, ports,
                                           options.get(name, ())))
    cpu = {k: [r.cpu for r in v] for k, v in runs.items()}
    wall = {k: [r.wall for r in v] for k, v in runs.items()}
    unit = server.unit
    result: dict[str, object] = {
        f"{unit}s": requests, "rounds": args.rounds,
        f"cpu_ms_per_{unit}": {k: statistics.median(v) * 1e3 for k, v in cpu.items()},
        f"wall_ms_per_{unit}": {k: statistics.median(v) * 1e3 for k, v in wall.items()},
        "cpu_ratio_to_none": {k: median_or_none(per_round_ratios(cpu[k], cpu["none"]))
                              for k in configs if k != "none"},
        "wall_ratio_to_none": {k: median_or_none(per_round_ratios(wall[k], wall["none"]))
                               for k in configs if k != "none"},
        "raw": {"cpu": cpu, "wall": wall},
    }
    if details:
        result = {"server": server.name, **result,
                  **details_of(runs, cpu, wall, learn_text, (load_start, loadavg()), unit)}
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    cpu_ms, wall_ms = result[f"cpu_ms_per_{unit}"], result[f"wall_ms_per_{unit}"]
    assert isinstance(cpu_ms, dict) and isinstance(wall_ms, dict)
    cpu_ratio, wall_ratio = result["cpu_ratio_to_none"], result["wall_ratio_to_none"]
    assert isinstance(cpu_ratio, dict) and isinstance(wall_ratio, dict)
    for k in configs:
        print(f"{k:8s} CPU {cpu_ms[k]:7.2f} ms/{unit}   wall {wall_ms[k]:7.2f} ms/{unit}")
    for k in (k for k in configs if k != "none"):
        print(f"{k}/none: CPU {ratio_text(cpu_ratio[k])}, wall {ratio_text(wall_ratio[k])} "
              "(medians of per-round ratios)")
    if details:
        for key in (f"cpu_ms_per_{unit}_spread", "cpu_ratio_to_none_spread", "hooked_calls_per_run", "sentinel",
                    "learn", "load_average"):
            print(f"{key}: {json.dumps(result[key])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
