#!/usr/bin/env python3
"""How long a new process waits for `gohook agent` (issue 16): exec to its first enforced call.

    sudo .venv/bin/python bench/bench_agent.py [--rounds 5] [--json]

One agent (scoped to a cgroup of this bench, run with -v) enforces a policy on testdata/go/denyapp; the Go
runs below exec a process whose first capability call is one the policy denies (github.com/evil/grab
creating a file): each must die at that first call (status -9, a deny event). What a new process waits is
the hold: from the exec (the exec tracepoint's CLOCK_MONOTONIC stamp) to the agent's SIGCONT, which the
agent logs per exec ("exec of F (pid P) held X ms: released"). Cases, interleaved in each round:

- probed:  the policy's `binary:` file, probed when the agent started: never held (the bench checks the agent
           logged no hold for it), covered from the first instruction; reported: its run's wall time
- copy:    a copy of that file on a private tmpfs in a new mount namespace (a container's copy): held at
           exec, identified through /proc/PID/exe, the same program's uprobes attached to the copy, released
- rebuild: a different build of the program (another toolchain) at a fresh path under a `main_module:`
           policy: held at exec, planned, compiled and attached, released (the worst case)
- unknown: exec of a fresh copy of /bin/true (not Go, first exec of that file): the hold of a file the
           agent has no verdict for, and the wall time of `sh -c exec true` against:
- known:   /bin/true itself once its verdict is cached (not held): wall time, against
- none:    the same /bin/true exec without the agent's cgroup scope (no hold possible): wall time

Reported: medians and spread per case over the rounds (ms): holds for copy, rebuild and unknown; wall time
of the whole run for probed, unknown, known and none.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import gofixtures  # noqa: E402

GRAB = "github.com/evil/grab"
CGROUP2 = Path("/sys/fs/cgroup/unified")


def policy_text(match: str) -> str:
    return "\n".join(["version: 1", "match:", match, "action: kill", "modules:",
                      "  example.com/denyapp: [all]", "  github.com/good/worker: [all]",
                      f"  {GRAB}: [files.read]", ""])


class AgentProc:
    def __init__(self, policies: Path, cgroup: Path, pins: Path) -> None:
        self.events: list[dict[str, object]] = []
        self.err: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "gohook", "-v", "agent", "--policy-dir", str(policies),
                                      "--json", "--cgroup", str(cgroup), "--pin-root", str(pins),
                                      "--metrics", "127.0.0.1:0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True).start()
        deadline = time.monotonic() + 300
        while not any("ready:" in line for line in self.err):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("agent did not start:\n" + "\n".join(self.err))
            time.sleep(0.05)
        self.metrics = re.search(r"(http://\S+)/metrics", "\n".join(self.err)).group(1)  # type: ignore[union-attr]

    def _read(self, stream, is_json: bool) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            if is_json and line.startswith("{"):
                self.events.append(json.loads(line))
            elif not is_json:
                self.err.append(line.rstrip())

    def hold_ms(self, name_part: str, count: int, timeout: float = 60) -> float:
        """The agent's logged hold of the count-th exec whose file name contains name_part."""
        deadline = time.monotonic() + timeout
        pattern = re.compile(r"exec of (\S+) \(pid \d+\) held ([\d.]+) ms")
        while time.monotonic() < deadline:
            holds = [float(m.group(2)) for line in self.err for m in [pattern.search(line)]
                     if m is not None and name_part in m.group(1)]
            if len(holds) > count:
                return holds[count]
            time.sleep(0.01)
        raise SystemExit(f"no hold logged for {name_part}:\n" + "\n".join(self.err[-20:]))

    def deny_after(self, count: int, timeout: float = 120) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            denies = [e for e in self.events if e["decision"] == "deny"]
            if len(denies) > count:
                return denies[count]
            time.sleep(0.01)
        raise SystemExit("no deny event:\n" + "\n".join(self.err[-20:]))

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)


def run_in(cgroup: Path | None, argv: list[str], setup: str = "", unshare: bool = False) -> tuple[float, int]:
    """(wall seconds of the whole run, exit status) of argv exec'd in cgroup (after setup)."""
    join = f"echo $$ > {cgroup}/cgroup.procs && " if cgroup is not None else ""
    script = f'{setup}\n{join}exec "$@"'
    cmd = (["unshare", "--mount", "--propagation", "private"] if unshare else []) + ["sh", "-c", script, "sh", *argv]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return time.perf_counter() - start, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_agent needs root")
    tcs = sorted(gofixtures.toolchains(), key=lambda t: t.release)
    if len(tcs) < 2:
        raise SystemExit("needs two Go toolchains (scripts/setup.sh)")
    tmp = Path(tempfile.mkdtemp(prefix="gohook-bench-agent-"))
    cgroup = CGROUP2 / f"gohook-bench-agent-{os.getpid()}"
    cgroup.mkdir()
    pins = Path(f"/sys/fs/bpf/gohook-bench-agent-{os.getpid()}")
    agent = None
    results: dict[str, list[float]] = {k: [] for k in ("probed", "copy", "rebuild", "unknown", "unknown_hold",
                                                           "known", "none")}
    try:
        app = tmp / "bin" / "denyapp"
        app.parent.mkdir()
        shutil.copy(gofixtures.build(tcs[-1], "denyapp", "default"), app)
        policies = tmp / "policies"
        policies.mkdir()
        (policies / "app.yaml").write_text(policy_text(f"  binary: {app}"))
        builds = [gofixtures.build(tc, "denyapp", mode) for tc in tcs[:-1] for mode in ("default", "pie", "stripped")]
        (policies / "module.yaml").write_text(policy_text("  main_module: example.com/denyapp"))
        agent = AgentProc(policies, cgroup, pins)
        true_known = tmp / "true-known"
        shutil.copy("/bin/true", true_known)
        run_in(cgroup, [str(true_known)])  # its verdict is cached from now on
        denies, holds = 0, {"/mnt/app": 0, "rebuild-": 0, "true-": 0}
        for r in range(args.rounds):
            target = tmp / f"x{r}"
            cases = ["probed", "copy", "rebuild", "unknown", "known", "none"]
            cases = cases[r % len(cases):] + cases[:r % len(cases)]  # interleaved, rotating order
            for case in cases:
                if case in ("probed", "copy", "rebuild"):
                    if case == "probed":
                        took, rc = run_in(cgroup, [str(app), "create", str(target)])
                        results[case].append(took * 1e3)
                    elif case == "copy":
                        took, rc = run_in(cgroup, ["/mnt/app", "create", str(target)], unshare=True,
                                          setup=f"mount -t tmpfs bench /mnt && cp {app} /mnt/app")
                    else:
                        fresh = tmp / f"rebuild-{r}"
                        shutil.copy(builds[r % len(builds)], fresh)
                        took, rc = run_in(cgroup, [str(fresh), "create", str(target)])
                    if rc != -signal.SIGKILL and rc != 128 + signal.SIGKILL:
                        raise SystemExit(f"{case}: not killed (status {rc})")
                    agent.deny_after(denies)
                    denies += 1
                    if case != "probed":
                        key = "/mnt/app" if case == "copy" else "rebuild-"
                        results[case].append(agent.hold_ms(key, holds[key]))
                        holds[key] += 1
                elif case == "unknown":
                    fresh = tmp / f"true-{r}"
                    shutil.copy("/bin/true", fresh)
                    results[case].append(run_in(cgroup, [str(fresh)])[0] * 1e3)
                    results["unknown_hold"].append(agent.hold_ms("true-", holds["true-"]))
                    holds["true-"] += 1
                elif case == "known":
                    results[case].append(run_in(cgroup, [str(true_known)])[0] * 1e3)
                else:
                    results[case].append(run_in(None, [str(true_known)])[0] * 1e3)
        if any(str(app) in line and "held" in line for line in agent.err):
            raise SystemExit("the probed file was held: it must be covered without a hold")
        import urllib.request

        metrics = urllib.request.urlopen(agent.metrics + "/metrics", timeout=10).read().decode()
    finally:
        if agent is not None:
            agent.stop()
        from gohook.bpf.links import unpin_dir

        if pins.exists():
            for sub in pins.iterdir():
                unpin_dir(str(sub))
            pins.rmdir()
        for pid in (cgroup / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.2)
        cgroup.rmdir()
        shutil.rmtree(tmp, ignore_errors=True)
    summary = {k: {"median_ms": statistics.median(v), "min_ms": min(v), "max_ms": max(v), "n": len(v)}
               for k, v in results.items() if v}
    count = re.search(r"^gohook_agent_exec_hold_seconds_count (\S+)$", metrics, re.M)
    summary["agent_holds"] = {"count": float(count.group(1)) if count else 0.0}
    if args.json:
        print(json.dumps({"rounds": args.rounds, "raw_ms": results, "summary": summary}))
    else:
        for k, v in summary.items():
            print(k, {kk: round(vv, 2) if isinstance(vv, float) else vv for kk, vv in v.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
