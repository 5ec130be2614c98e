#!/usr/bin/env python3
"""What `action: error` (issue 15) costs a Go program that violates nothing: gohook's ptrace tracer.

    sudo .venv/bin/python bench/bench_error_action.py [--rounds 5] [--requests 30000] [--work 300000000] [--json]

(about 50 s a round on 2 CPUs: each gohook run compiles its BPF program and detaches its probes.)

Under `action: error` gohook traces every thread of the `-- CMD` process (gohook/attach/tracer.py), so
every signal the program receives is a ptrace stop: the thread stops, gohook's tracer thread wakes in
waitpid, looks at the stop and resumes it with the signal. A Go program receives signals of its own all
the time: the runtime preempts a goroutine that has run for 10 ms with SIGURG (and GC stops the world
with it). Under `action: kill` with `-- CMD` nothing is traced; the BPF program is the same. This bench
measures what the stops cost, with the real command, per configuration:

- none:  the binary alone (started by this script)
- kill:  `python -m gohook -v attach --binary COPY --policy P --json -- COPY ARGS`, P with `action: kill`
- error: the same with `action: error` in P (the only difference)

Each configuration runs its own copy of the binary (uprobes are per file). Workloads:

- http: testdata/go/perfapp `serve` (bench/evaluate.py's HTTP service: per request an environment read,
  a kept-alive request to an unprobed upstream copy, a file open; all allowed by the policy of
  bench/perfeval/fixture.py). wrk, 1 thread and --connections keep-alive connections on 127.0.0.1, sends
  --warmup requests, then exactly --requests more (a Lua script counts the responses and ends wrk: wrk
  otherwise runs for its whole -d time). Measured over the second run: the service's CPU time (utime +
  stime from /proc/PID/stat of the process running the binary, a descendant of gohook's PID-namespace
  init: bench/perfeval/configs.py AttachCli.workload_pid) per request, gohook's own CPU per request,
  and wrk's latency percentiles.
- work: testdata/go/traceapp `work N`: 8 goroutines each do N rounds of call-free arithmetic (only the
  runtime's SIGURG can preempt them; sysmon asks once a goroutine has run 10 ms, checking every 10-20 ms:
  about 100 signals a second on 2 CPUs) and the program prints the wall time of the work. Measured: that
  wall time, and the process's CPU time (utime + stime, read every 10 ms while it runs; the last reading
  before it exits, so up to 10 ms per CPU is not seen, the same in every configuration and no more than
  /proc's own 10 ms resolution).

The tracer's counts come from gohook's log at its end (`-v`: "tracer: N stops (X/s), M signals passed
on, U us handling per stop"; X/s is over the tracer thread's life, which includes the command's
start-up and gohook's probe detach at the end, so the bench divides N by its own windows instead: the
load (warm-up and measured requests) for http, the work's wall time for work. N includes the few stops
that are not signals (each new thread's first stop) and those outside the window: an upper bound).
N x U is gohook's own CPU for the stops (its tracer thread), reported per request and as a share of one
CPU: finer than gohook's CPU from /proc, whose 10 ms ticks are 0.33 us per request of a 30,000-request
run. Under kill the log line says 0 stops: the bench checks that (and /proc/PID/status TracerPid:
traced under error, not under kill), and that nothing was denied.

Rounds are interleaved: each round runs all six (workload, configuration) pairs once in a new random
order; the report gives medians, the ratio of medians and the median of per-round (paired) ratios.
Other sessions' jobs share this machine: compare the columns, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import gofixtures  # noqa: E402
from perfeval import configs as cfg  # noqa: E402
from perfeval import fixture, workloads  # noqa: E402
from perfeval.stats import Summary, ratio  # noqa: E402

CONFIGS = ("none", "kill", "error")
WORKLOADS = ("http", "work")
#: traceapp's policy: it may do everything (no violation); only `action` differs between kill and error
TRACEAPP_POLICY = "version: 1\naction: {action}\nunattributed: allow\ndefault: [all]\n"
SAMPLE_SECONDS = 0.01  # how often the work run's CPU time is read (/proc's resolution)
STOPS = re.compile(r"tracer: (\d+) stops \(([\d.]+)/s\), (\d+) signals passed on, (\d+) us handling per stop")
SECONDS = re.compile(r"^seconds ([\d.eE+-]+)$", re.MULTILINE)
RETURNED = re.compile(r"gohook: (\d+) denied calls returned an error")

#: wrk script: perfapp's three files in turn, stop after args[1] responses, one JSON summary line.
#: wrk's main thread sleeps for the whole -d duration whatever its threads do; SIGINT (its handler) ends
#: the sleep. Sent from a background shell 50 ms later: system() ignores SIGINT in its caller meanwhile.
WRK_SCRIPT = """\
local paths = {"/file/small.txt", "/file/page.html", "/file/asset.bin"}
local i, seen, limit = 0, 0, 0
init = function(args) limit = tonumber(args[1]) end
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
response = function(status, headers, body)
  seen = seen + 1
  if seen == limit then
    wrk.thread:stop()
    os.execute("(sleep 0.05; kill -INT $PPID) &")
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


class BenchError(RuntimeError):
    """A run did not measure what it claims (gohook denied or killed something, nothing was traced, ...)."""


class Attach(cfg.AttachCli):
    """`python -m gohook -v attach ... --json -- APP ARGS`: AttachCli with gohook's INFO log (the tracer line)."""

    def command(self, args: list[str]) -> list[str]:
        return [sys.executable, "-m", "gohook", "-v", "attach", "--binary", str(self.app), "--policy",
                str(self.policy), "--json", "--", str(self.app), *args]

    def log_text(self) -> str:
        """gohook's stderr of the last run (the command's stdout too: --json sends it there)."""
        return self._log.read_text(errors="replace") if self._log is not None else ""


@dataclass(frozen=True)
class TracerLine:
    """gohook's "tracer: ..." log line: every ptrace stop of the session, and the signals among them."""

    stops: int
    per_second: float  # over the tracer thread's life (start-up wait and detach included)
    signals: int
    handling_us: float  # gohook's own CPU per stop, in its tracer thread

    @classmethod
    def parse(cls, text: str) -> TracerLine:
        m = STOPS.search(text)
        if m is None:
            raise BenchError(f"no tracer line in gohook's log (is -v still INFO?):\n{text[-2000:]}")
        return cls(int(m.group(1)), float(m.group(2)), int(m.group(3)), float(m.group(4)))


def tracer_pid(pid: int) -> int:
    """TracerPid of process pid (0: not traced); -1 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def alive_cpu_seconds(pid: int) -> float | None:
    """utime + stime of process pid while it runs; None once it has exited (gone, or a zombie)."""
    try:
        after = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if after[0] in ("Z", "X"):
        return None
    return (int(after[11]) + int(after[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, requests: int, connections: int, script: Path) -> dict[str, float]:
    """Exactly `requests` responses (plus the few in flight) from wrk on keep-alive connections."""
    cap = max(60, requests // 500)  # seconds: the run ends long before, unless the service stalls
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{cap}s", "--timeout", "5s", "-s", str(script), url, "--",
            str(requests)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=cap + 60)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise BenchError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()} {proc.stdout[-500:]}")
    doc = json.loads(lines[-1])
    if doc["errors"] or doc["status_errors"] or doc["timeouts"] or doc["requests"] < requests:
        raise BenchError(f"wrk: {doc}")
    return doc


def find_workload(config: cfg.Instrumentation, proc: subprocess.Popen[str], timeout: float = 300) -> int:
    """Pid of the process running config's binary (under gohook: once gohook has started it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return config.workload_pid(proc)
        except RuntimeError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
        time.sleep(0.005)


def check_session(config: cfg.Instrumentation, traced: int) -> dict[str, Any]:
    """After a run: gohook denied nothing, traced the target exactly under error. The tracer's numbers."""
    if not isinstance(config, Attach):
        return {}
    stats = config.finish()  # raises if gohook killed anything
    text = config.log_text()
    returned = RETURNED.search(text)
    if returned is not None:
        raise BenchError(f"{config.name}: gohook denied {returned.group(1)} calls: the policy must allow everything")
    if config.name == "kill":
        # Under kill gohook starts no tracer at all (a595e54): no tracer line, and the target untraced.
        if traced != 0 or STOPS.search(text) is not None:
            raise BenchError(f"kill: the target was traced (TracerPid {traced}) or gohook started a tracer")
        line = TracerLine(stops=0, per_second=0.0, signals=0, handling_us=0.0)
    else:
        line = TracerLine.parse(text)
        if traced <= 0 or line.stops == 0:
            raise BenchError(f"error: the target was not traced (TracerPid {traced}, {line.stops} stops)")
    return {"hits": stats["hits"], "tracer": asdict(line)}


@dataclass(frozen=True)
class Http:
    """What the http runs share: the upstream, the served files, the wrk script and the load."""

    upstream_url: str
    files: Path
    workdir: Path
    script: Path
    requests: int
    warmup: int
    connections: int


def http_run(config: cfg.Instrumentation, load: Http, run: int) -> dict[str, Any]:
    """One http run under config: start the service, warm it up, measure --requests, stop it."""
    ready = load.workdir / f"service-{config.name}-{run}.url"
    ready.unlink(missing_ok=True)
    args = ["serve", "-root", str(load.files), "-upstream", load.upstream_url, "-ready", str(ready)]
    proc = config.start(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = workloads._wait_for_file(ready, proc, 300, f"the service under {config.name}")
        pid = find_workload(config, proc)
        traced = tracer_pid(pid)
        began = time.monotonic()
        warm = wrk(url, load.warmup, load.connections, load.script) if load.warmup > 0 else {"requests": 0}
        cpu0, agent0, t0 = cfg.process_cpu_seconds(pid), config.agent_cpu_seconds(proc), time.monotonic()
        doc = wrk(url, load.requests, load.connections, load.script)
        cpu, agent, t1 = cfg.process_cpu_seconds(pid) - cpu0, config.agent_cpu_seconds(proc) - agent0, time.monotonic()
    finally:
        config.stop(proc)
    out: dict[str, Any] = {
        "requests": doc["requests"], "warmup_requests": warm["requests"], "seconds": t1 - t0,
        "load_seconds": t1 - began, "rps": doc["requests"] / (t1 - t0),
        "p50_us": doc["p50_us"], "p90_us": doc["p90_us"], "p99_us": doc["p99_us"],
        "target_cpu_s": cpu, "gohook_cpu_s": agent, "cpu_us_per_request": cpu * 1e6 / doc["requests"],
        "gohook_cpu_us_per_request": agent * 1e6 / doc["requests"], "tracer_pid": traced,
        **check_session(config, traced)}
    if "tracer" in out:
        load_requests = out["requests"] + out["warmup_requests"]
        out["stops_per_second"] = out["tracer"]["stops"] / out["load_seconds"]
        out["signals_per_second"] = out["tracer"]["signals"] / out["load_seconds"]
        out["stops_per_request"] = out["tracer"]["stops"] / load_requests
        out["tracer_cpu_us_per_request"] = out["tracer"]["stops"] * out["tracer"]["handling_us"] / load_requests
    return out


def work_run(config: cfg.Instrumentation, rounds: int) -> dict[str, Any]:
    """One `traceapp work N` under config: its wall time (its own), its CPU time, gohook's CPU meanwhile."""
    proc = config.start(["work", str(rounds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        pid = find_workload(config, proc)
        traced = tracer_pid(pid)
        agent0 = agent = config.agent_cpu_seconds(proc)
        cpu = 0.0
        while (now := alive_cpu_seconds(pid)) is not None:
            cpu, agent = now, config.agent_cpu_seconds(proc)
            time.sleep(SAMPLE_SECONDS)
        out_text, _err = proc.communicate(timeout=300)
    except BaseException:
        config.stop(proc)
        raise
    text = config.log_text() if isinstance(config, Attach) else out_text or ""
    m = SECONDS.search(text)
    if m is None:
        raise BenchError(f"traceapp work under {config.name}: no `seconds` line:\n{text[-2000:]}")
    wall = float(m.group(1))
    out: dict[str, Any] = {"wall_s": wall, "target_cpu_s": cpu, "gohook_cpu_s": agent - agent0,
                           "tracer_pid": traced, **check_session(config, traced)}
    if "tracer" in out:
        out["stops_per_second"] = out["tracer"]["stops"] / wall
        out["signals_per_second"] = out["tracer"]["signals"] / wall
        out["tracer_cpu_percent"] = out["tracer"]["stops"] * out["tracer"]["handling_us"] / 1e4 / wall
    return out


def machine() -> dict[str, Any]:
    """Kernel, CPUs, load, and the tree measured."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "")
    git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return {"kernel": os.uname().release, "cpus": os.cpu_count(), "cpu": model,
            "loadavg": Path("/proc/loadavg").read_text().split()[:3], "commit": git.stdout.strip(),
            "python": sys.version.split()[0], "date": time.strftime("%Y-%m-%d %H:%M")}


# the measured quantity of each workload, and the extra ones reported beside it
PRIMARY = {"http": ("cpu_us_per_request", "target CPU us / request"), "work": ("target_cpu_s", "target CPU s")}
EXTRA = {"http": ("gohook_cpu_us_per_request", "rps", "p50_us", "p99_us"), "work": ("wall_s", "gohook_cpu_s")}
LABELS = {"gohook_cpu_us_per_request": "gohook CPU us / request", "rps": "requests / s", "p50_us": "p50 us",
          "p99_us": "p99 us", "wall_s": "wall s (the work's own)", "gohook_cpu_s": "gohook CPU s"}


def summarize(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    """Per workload: medians [IQR] per configuration, ratios error/kill, error/none, kill/none of the
    primary quantity and of the work's wall time (of medians, and the median of per-round ratios), and the
    tracer's medians under error."""
    out: dict[str, Any] = {}
    for workload, by_config in runs.items():
        key = PRIMARY[workload][0]
        keys = (key, *EXTRA[workload])
        present = [c for c in CONFIGS if by_config.get(c)]
        doc: dict[str, Any] = {"summary": {c: {k: Summary.of([r[k] for r in by_config[c]]).as_json() for k in keys}
                                           for c in present}, "ratios": {}}
        for k in (key, "wall_s") if workload == "work" else (key,):
            for a, b in (("error", "kill"), ("error", "none"), ("kill", "none")):
                if a in present and b in present:
                    xs, ys = [r[k] for r in by_config[a]], [r[k] for r in by_config[b]]
                    doc["ratios"][f"{k} {a}/{b}"] = {
                        "of_medians": Summary.of(xs).median / Summary.of(ys).median,
                        "paired": ratio(xs, ys).as_json()}
        if by_config.get("error"):
            errs = by_config["error"]
            doc["tracer_error"] = {k: Summary.of([r[k] for r in errs]).median
                                   for k in ("stops_per_second", "signals_per_second")}
            doc["tracer_error"]["stops"] = Summary.of([r["tracer"]["stops"] for r in errs]).median
            doc["tracer_error"]["log_stops_per_second"] = Summary.of([r["tracer"]["per_second"] for r in errs]).median
            doc["tracer_error"]["handling_us_per_stop"] = Summary.of([r["tracer"]["handling_us"] for r in errs]).median
            for k in ("stops_per_request", "tracer_cpu_us_per_request") if workload == "http" else (
                    "tracer_cpu_percent",):
                doc["tracer_error"][k] = Summary.of([r[k] for r in errs]).median
        if by_config.get("kill"):
            doc["kill_stops"] = [r["tracer"]["stops"] for r in by_config["kill"]]
        out[workload] = doc
    return out


def render(doc: dict[str, Any]) -> str:
    """The summary as Markdown tables."""
    lines: list[str] = []
    s = doc["settings"]
    for workload, w in doc["summary"].items():
        key, label = PRIMARY[workload]
        extra = EXTRA[workload]
        if workload == "http":
            lines.append(f"http: perfapp serve, {s['requests']} requests (after {s['warmup']}) on {s['connections']} "
                         f"keep-alive connections, {s['rounds']} interleaved rounds, medians [IQR]")
        else:
            lines.append(f"work: traceapp work {s['work']} (8 goroutines), {s['rounds']} interleaved rounds, "
                         "medians [IQR]")
        lines.append("| configuration | " + " | ".join((label, *(LABELS[k] for k in extra))) + " |")
        lines.append("|---|" + "---:|" * (1 + len(extra)))
        for config, by_key in w["summary"].items():
            cells = [f"{by_key[k]['median']:.4g} [{by_key[k]['p25']:.4g}, {by_key[k]['p75']:.4g}]"
                     for k in (key, *extra)]
            lines.append(f"| {config} | " + " | ".join(cells) + " |")
        for name, r in w["ratios"].items():
            p = r["paired"]
            lines.append(f"- {name}: {r['of_medians']:.3f} (ratio of medians); paired {p['median']:.3f} "
                         f"[{p['p25']:.3f}, {p['p75']:.3f}]")
        if "tracer_error" in w:
            t = w["tracer_error"]
            cost = (f", {t['stops_per_request']:.4f} per request; gohook's CPU for them "
                    f"{t['tracer_cpu_us_per_request']:.3f} us per request" if workload == "http" else
                    f"; gohook's CPU for them {t['tracer_cpu_percent']:.2f} % of one CPU")
            lines.append(f"- tracer under error: {t['stops']:.0f} stops, {t['stops_per_second']:.1f}/s over the "
                         f"{'load' if workload == 'http' else 'work'} ({t['signals_per_second']:.1f} signals/s)"
                         f"{cost} ({t['handling_us_per_stop']:.0f} us per stop); the log's own rate "
                         f"{t['log_stops_per_second']:.1f}/s")
        if "kill_stops" in w:
            lines.append(f"- tracer under kill: stops {w['kill_stops']} (nothing traced)")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated subset of http, work")
    ap.add_argument("--requests", type=int, default=30_000, help="http: measured requests per run")
    ap.add_argument("--warmup", type=int, default=2_000, help="http: requests before the measured ones")
    ap.add_argument("--connections", type=int, default=16, help="http: wrk's keep-alive connections")
    ap.add_argument("--work", type=int, default=300_000_000, help="work: rounds of arithmetic per goroutine")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--json", action="store_true", help="print every run and the summary as one JSON document")
    args = ap.parse_args(argv)
    chosen = [w for w in args.workloads.split(",") if w]
    if not chosen or any(w not in WORKLOADS for w in chosen):
        ap.error(f"--workloads names only {', '.join(WORKLOADS)}")
    if args.rounds < 1 or args.requests < 1 or args.warmup < 0 or args.connections < 1 or args.work < 1:
        ap.error("--rounds, --requests, --connections and --work must be positive, --warmup not negative")
    if os.geteuid() != 0:
        raise SystemExit("bench_error_action: gohook attach needs root (uprobes, BPF, ptrace)")
    if shutil.which("wrk") is None and "http" in chosen:
        raise SystemExit("bench_error_action: wrk is not installed: apt-get install wrk (scripts/setup.sh)")

    host = machine()
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {w: {c: [] for c in CONFIGS} for w in chosen}
    newest = max(gofixtures.toolchains(), key=lambda t: t.release)
    with fixture.Workspace.create(fixture.build_perfapp()) as ws:
        traceapp = gofixtures.build(newest, "traceapp")
        script = ws.root / "fixed_requests.lua"
        script.write_text(WRK_SCRIPT)
        policies = {"http": {}, "work": {}}
        for action in ("kill", "error"):
            policies["http"][action] = ws.root / f"http-{action}.yaml"
            policies["http"][action].write_text(ws.policy.read_text().replace("action: kill", f"action: {action}"))
            policies["work"][action] = ws.root / f"work-{action}.yaml"
            policies["work"][action].write_text(TRACEAPP_POLICY.format(action=action))
        setups: dict[tuple[str, str], cfg.Instrumentation] = {}
        for workload, source in (("http", ws.app), ("work", traceapp)):
            for config in CONFIGS:
                app = ws.copy_of(source, f"{workload}-{config}")
                setups[workload, config] = (cfg.Instrumentation(config, "", app) if config == "none" else
                                            Attach(config, "", app, policies[workload][config], ws.root))
        with workloads.HttpBench(ws.upstream, ws.files, ws.root, seconds=1) as hb:
            load = Http(hb.upstream_url, ws.files, ws.root, script, args.requests, args.warmup, args.connections)
            rng = random.Random(args.seed)
            started = time.monotonic()
            for r in range(args.rounds):
                order = [(w, c) for w in chosen for c in CONFIGS]
                rng.shuffle(order)
                for workload, config in order:
                    setup = setups[workload, config]
                    res = http_run(setup, load, r) if workload == "http" else work_run(setup, args.work)
                    res["round"] = r
                    runs[workload][config].append(res)
                print(f"round {r + 1}/{args.rounds} done ({time.monotonic() - started:.0f}s)", file=sys.stderr)
    host["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    doc = {"settings": {"rounds": args.rounds, "requests": args.requests, "warmup": args.warmup,
                        "connections": args.connections, "work": args.work, "workloads": chosen,
                        "go": newest.version},
           "machine": host, "summary": summarize(runs), "runs": runs}
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print(render(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
