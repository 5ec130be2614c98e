"""Real third-party Go programs (issue 17 §8), live: Debian's prometheus-node-exporter 1.5.0 (Go 1.19, cgo,
stripped), fetched by scripts/setup.sh with a pinned sha256.

A new user's path, with scripted traffic on 127.0.0.1 only: inspect it (the modules against `go version -m`),
learn a policy while it is scraped, enforce that policy while it is scraped again (no false kill: every
scrape answered, no violation, nothing killed), and enforce a policy that withholds one file with
`action: error` (issue 15): that collector fails with EPERM, the exporter reports it as a failed scrape of
that collector and keeps serving every other one.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import gofixtures
import pytest
from attach_helpers import private_copy

pytestmark = pytest.mark.bpf

CACHE = Path(os.environ.get("GOHOOK_CACHE", "/var/cache/gohook"))
NODE_EXPORTER = CACHE / "real/prometheus-node-exporter/root/usr/bin/prometheus-node-exporter"
RUN_SECONDS = 25  # gohook's --duration: attach, start, three scrapes, stop
SCRAPES = 3


@pytest.fixture(scope="module", autouse=True)
def _root() -> None:
    gofixtures.require_root("uprobes on a real server")


@pytest.fixture(scope="module")
def exporter() -> Path:
    if not NODE_EXPORTER.exists():
        if gofixtures.in_ci():
            raise AssertionError(f"{NODE_EXPORTER} missing: scripts/setup.sh fetches it")
        pytest.skip(f"{NODE_EXPORTER} missing: run scripts/setup.sh")
    return NODE_EXPORTER


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """One gohook session over the exporter: its scrapes, gohook's events and stderr."""

    status: int = 0
    scrapes: list[str] = field(default_factory=list)
    events: list[dict[str, object]] = field(default_factory=list)
    stderr: str = ""


def serve(binary: Path, port: int, workdir: Path, *args: str) -> Served:
    """`gohook attach ... --duration RUN_SECONDS -- node_exporter` while a thread scrapes /metrics SCRAPES times."""
    served = Served()
    err_path = workdir / f"gohook-{port}-{len(list(workdir.glob('gohook-*')))}.stderr"

    def scrape() -> None:
        deadline = time.monotonic() + RUN_SECONDS - 5
        while len(served.scrapes) < SCRAPES and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
                    served.scrapes.append(resp.read().decode())
                time.sleep(1)
            except OSError:
                time.sleep(0.3)

    with open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "gohook", "attach", "--binary", str(binary), "--json",
                                 "--duration", str(RUN_SECONDS), *args, "--", str(binary),
                                 f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
    scraper = threading.Thread(target=scrape)
    scraper.start()
    out, _ = proc.communicate(timeout=RUN_SECONDS + 180)
    scraper.join()
    served.status = proc.returncode
    served.events = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    served.stderr = err_path.read_text(errors="replace")
    return served


def test_inspect_reads_the_real_binary(exporter: Path) -> None:
    """inspect on a stripped cgo binary built by Debian (GOPATH-style: its build info names no dependency, so
    gohook infers the modules from the function names): the main module and Go version are those `go version
    -m` (Go's own build-info reader) prints, the dependencies it found include the ones the exporter is made
    of, and the analysis is not empty."""
    done = subprocess.run([sys.executable, "-m", "gohook", "inspect", str(exporter), "--json"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    inspected = [m["path"] for m in report["modules"]]
    oracle = gofixtures.go_version_m(gofixtures.oracle_toolchain(), exporter)
    assert inspected[0] == oracle["path"] == "github.com/prometheus/node_exporter"
    assert report["binary"]["go_version"] == oracle["go_version"], (report["binary"], oracle)
    assert {"github.com/prometheus/procfs", "github.com/prometheus/client_golang", "golang.org/x/sys",
            "github.com/go-kit/log", "gopkg.in/alecthomas/kingpin.v2"} <= set(inspected), inspected
    reaching = {m["path"]: set(m["capabilities"]) for m in report["modules"] if m["capabilities"]}
    assert "files.read" in reaching["github.com/prometheus/procfs"]  # reads /proc: not an empty analysis
    # getpid/getuid through syscall.rawSyscallNoError are system.read, not system.modify (issue 17 §4)
    assert "system.read" in reaching["github.com/prometheus/client_golang"]
    # `syscall` only where module code calls a raw system-call function itself, as the kernel charges it (a
    # learn run of the exporter saw it for golang.org/x/sys alone), not through std's own fcntl (issue 17 §4)
    assert {m for m, caps in reaching.items() if "syscall" in caps} == {"golang.org/x/sys"}, reaching
    # (these four reach rawSyscallNoError only with getpid/getuid-style numbers; x/sys's own raw calls are
    # another matter: issue 17 §4)
    for module in ("github.com/prometheus/client_golang", "github.com/prometheus/node_exporter",
                   "github.com/coreos/go-systemd", "github.com/godbus/dbus"):
        assert "system.modify" not in reaching.get(module, set()), (module, reaching.get(module))


def test_learn_then_enforce_with_no_false_kill_then_action_error(exporter: Path, tmp_path: Path) -> None:
    binary = private_copy(exporter, tmp_path / "bin")
    port = free_port()
    learned = tmp_path / "learned.yaml"
    learn = serve(binary, port, tmp_path, "--mode", "learn", "-o", str(learned))
    assert learn.status == 143, learn.stderr  # stopped with SIGTERM: node_exporter's shutdown path, learned
    assert len(learn.scrapes) == SCRAPES and all("node_cpu_seconds_total" in s for s in learn.scrapes)
    text = learned.read_text()
    assert "github.com/prometheus/procfs:" in text and '"/proc/diskstats"' in text, text
    assert "LOSS" not in text, text

    enforced = serve(binary, port, tmp_path, "--policy", str(learned), "--allow-unmatched")
    assert len(enforced.scrapes) == SCRAPES, enforced.stderr
    assert [e for e in enforced.events if e["decision"] != "allow"] == [], enforced.events
    assert "0 killed" in enforced.stderr, enforced.stderr

    # action error: procfs may no longer read /proc/diskstats
    graceful = tmp_path / "error.yaml"
    graceful.write_text(text.replace("action: kill", "action: error").replace('"/proc/diskstats", ', ""))
    assert '"/proc/diskstats"' not in graceful.read_text()
    refused = serve(binary, port, tmp_path, "--policy", str(graceful), "--allow-unmatched")
    assert len(refused.scrapes) == SCRAPES, refused.stderr  # the exporter served every scrape
    for scrape in refused.scrapes:
        assert 'node_scrape_collector_success{collector="diskstats"} 0' in scrape
        assert 'node_scrape_collector_success{collector="cpu"} 1' in scrape
    denials = [e for e in refused.events if e["decision"] != "allow"]
    assert denials and all((e["decision"], e["module"], e["argument"], e["errno"]) ==
                           ("error", "github.com/prometheus/procfs", "/proc/diskstats", 1) for e in denials), denials
    assert "0 killed" in refused.stderr and f"{len(denials)} denied calls returned an error" in refused.stderr
