#!/usr/bin/env python3
"""What enforcement costs a real server (issue 17 §7): Debian's prometheus-node-exporter under its learned policy.

    sudo .venv/bin/python bench/bench_real_server.py [--rounds 3] [--scrapes 60] [--json]

The exporter (fetched by scripts/setup.sh, sha256-pinned) is first run once under `gohook attach --mode learn`
while it is scraped, which gives the policy. Then, per round and in a shuffled order, it is started
- none:    alone;
- enforce: under `gohook attach --policy LEARNED -- exporter` (action kill, the sentinel as `auto` picks it:
           on, the exporter has cgo);
- error:   the same with `action: error` (gohook traces every thread of it);
each time warmed up with 5 scrapes of /metrics on 127.0.0.1, then scraped --scrapes times one after the other.
The cost is the exporter's own CPU (utime + stime from /proc/PID/stat, before and after the measured
scrapes) per scrape, and the wall time per scrape. Reported: medians per configuration and the ratios to
`none` (medians of the per-round ratios too). gohook's own CPU is not in the number: what the service pays.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CACHE = Path(os.environ.get("GOHOOK_CACHE", "/var/cache/gohook"))
EXPORTER = CACHE / "real/prometheus-node-exporter/root/usr/bin/prometheus-node-exporter"
GOHOOK = [sys.executable, "-m", "gohook"]
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:
        return len(resp.read())


def wait_port(port: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            scrape(port)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the exporter did not answer on port {port}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15)


def exporter_pid(err: Path, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"gohook: started .* \(pid (\d+)\)", err.read_text(errors="replace"))
        if m:
            return int(m[1])
        if proc.poll() is not None:
            raise RuntimeError(f"gohook exited: {err.read_text()}")
        time.sleep(0.1)
    raise RuntimeError("gohook did not start the exporter")


def run_once(binary: Path, policy: Path | None, scrapes: int, work: Path, port: int) -> tuple[float, float]:
    """(CPU seconds per scrape, wall seconds per scrape) of one start of the exporter, listening on port (the
    learned policy's network.listen pattern names it)."""
    argv = [str(binary), f"--web.listen-address=127.0.0.1:{port}"]
    err = work / f"run-{time.monotonic_ns()}.stderr"
    with open(err, "wb") as e:
        if policy is None:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=e)
            pid = proc.pid
        else:
            proc = subprocess.Popen([*GOHOOK, "attach", "--binary", str(binary), "--policy", str(policy), "--json",
                                     "--allow-unmatched", "--", *argv], stdout=subprocess.DEVNULL, stderr=e)
            pid = exporter_pid(err, proc)
    try:
        wait_port(port)
        for _ in range(5):
            scrape(port)
        c0, t0 = cpu_seconds(pid), time.perf_counter()
        for _ in range(scrapes):
            scrape(port)
        c1, t1 = cpu_seconds(pid), time.perf_counter()
    finally:
        proc.send_signal(2)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if policy is not None and " 0 killed" not in err.read_text(errors="replace"):
        raise RuntimeError(f"the learned policy killed the exporter: {err.read_text()[-2000:]}")
    return (c1 - c0) / scrapes, (t1 - t0) / scrapes


def learn(binary: Path, work: Path, port: int) -> Path:
    out = work / "learned.yaml"
    proc = subprocess.Popen([*GOHOOK, "attach", "--binary", str(binary), "--mode", "learn", "--allow-unmatched",
                             "--duration", "30", "-o", str(out), "--", str(binary),
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    for _ in range(10):
        scrape(port)
    proc.wait(180)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scrapes", type=int, default=60)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not EXPORTER.exists():
        print(f"bench_real_server: {EXPORTER} missing: run scripts/setup.sh", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="gohook-bench-real-") as tmp:
        work = Path(tmp)
        binary = work / EXPORTER.name
        shutil.copy2(EXPORTER, binary)
        port = free_port()  # one port for every run: the learned policy allows listening on it only
        learned = learn(binary, work, port)
        error = work / "error.yaml"
        error.write_text(learned.read_text().replace("action: kill", "action: error"))
        configs: dict[str, Path | None] = {"none": None, "enforce": learned, "error": error}
        cpu: dict[str, list[float]] = {k: [] for k in configs}
        wall: dict[str, list[float]] = {k: [] for k in configs}
        for _ in range(args.rounds):
            order = list(configs)
            random.shuffle(order)
            for name in order:
                c, w = run_once(binary, configs[name], args.scrapes, work, port)
                cpu[name].append(c)
                wall[name].append(w)
    result = {
        "scrapes": args.scrapes, "rounds": args.rounds,
        "cpu_ms_per_scrape": {k: statistics.median(v) * 1e3 for k, v in cpu.items()},
        "wall_ms_per_scrape": {k: statistics.median(v) * 1e3 for k, v in wall.items()},
        "cpu_ratio_to_none": {k: statistics.median(a / b for a, b in zip(cpu[k], cpu["none"], strict=True) if b)
                              for k in ("enforce", "error")},
        "wall_ratio_to_none": {k: statistics.median(a / b for a, b in zip(wall[k], wall["none"], strict=True))
                               for k in ("enforce", "error")},
        "raw": {"cpu": cpu, "wall": wall},
    }
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for k in configs:
            print(f"{k:8s} CPU {result['cpu_ms_per_scrape'][k]:7.2f} ms/scrape   "
                  f"wall {result['wall_ms_per_scrape'][k]:7.2f} ms/scrape")
        for k in ("enforce", "error"):
            print(f"{k}/none: CPU x{result['cpu_ratio_to_none'][k]:.3f}, wall x{result['wall_ratio_to_none'][k]:.3f} "
                  "(medians of per-round ratios)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
