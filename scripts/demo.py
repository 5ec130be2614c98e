"""The README demo: a service whose dependency quietly phones home, caught by gohook.

Steps (each printed before it runs):
  1. build testdata/go/demo (a service + github.com/evil/telemetry) with Go 1.27.3;
  2. gohook inspect: what the binary can do, from the binary alone;
  3. gohook policy generate: the static starting point (it allows what the code reaches,
     including the telemetry module's dial and file write);
  4. tighten it (telemetry gets nothing) and show `gohook policy diff`;
  5. run the service under audit: it works, gohook records the telemetry module's calls;
  6. run it under enforcement: the service's own config read goes through, and the
     telemetry module is killed before its connect(2): the "home" server never hears from it
     and the dropped file never appears;
  7. the same with `action: error`: the telemetry module's connect and write fail with
     "operation not permitted", and the service runs on and exits 0.
Run as root after scripts/setup.sh (scripts/demo.sh does both).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("GOHOOK_CACHE", "/var/cache/gohook"))
GO = CACHE / "go/1.27.3/go/bin/go"
OUT = ROOT / "build" / "demo"
GOHOOK = [sys.executable, "-m", "gohook"]


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def show(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    printable = " ".join(shlex.quote(c) for c in cmd).replace(sys.executable + " -m gohook", "gohook")
    print(f"$ {printable}", flush=True)
    return subprocess.run(cmd, text=True, **kw)  # type: ignore[call-overload]


class Home:
    """A loopback TCP server standing in for the attacker's collector."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()
        return f"{host}:{port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(1)
                try:
                    self.received.append(conn.recv(4096))
                except OSError:
                    self.received.append(b"")

    def close(self) -> None:
        self._stop.set()
        self.thread.join()
        self.sock.close()


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    app = OUT / "demo"
    say("1. build the demo service (example.com/demo + github.com/evil/telemetry)")
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOPROXY": "off", "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0",
           "GOCACHE": str(CACHE / "gocache" / "1.27.3")}
    show([str(GO), "build", "-o", str(app), "."], cwd=ROOT / "testdata/go/demo", env=env, check=True)

    say("2. what can this binary do? (static analysis of the machine code)")
    show([*GOHOOK, "inspect", str(app)], check=True)

    say("3. a starting policy from the static analysis")
    generated = OUT / "generated.yaml"
    show([*GOHOOK, "policy", "generate", str(app), "-o", str(generated)], check=True)
    print(generated.read_text())

    say("4. tighten it: telemetry gets nothing; the service keeps its own file reads")
    tight = OUT / "policy.yaml"
    tight.write_text("version: 1\naction: kill\nattribution: caller\nunattributed: allow\ndefault: []\n"
                     "modules:\n  example.com/demo: [files.read]\n  github.com/evil/telemetry: []\n"
                     "trust: []\n")
    print(tight.read_text())
    show([*GOHOOK, "policy", "diff", str(generated), str(tight)])

    config = OUT / "config.txt"
    config.write_text("listen=:8080")
    drop = OUT / "dropped-by-telemetry"

    graceful = OUT / "policy-error.yaml"
    graceful.write_text(tight.read_text().replace("action: kill", "action: error"))
    runs = (("audit", tight, "5. run under audit"), ("enforce", tight, "6. run under enforcement"),
            ("error", graceful, "7. run under enforcement with `action: error`: the call fails, the service lives"))
    for mode, policy, title in runs:
        drop.unlink(missing_ok=True)
        home = Home()
        say(title)
        proc = show([*GOHOOK, "attach", "--binary", str(app), "--policy", str(policy), "--mode",
                     "audit" if mode == "audit" else "enforce", "--json",
                     "--", str(app), str(config), home.address, str(drop)], capture_output=True)
        home.close()
        for line in proc.stderr.splitlines():
            print(f"  {line}")
        for line in proc.stdout.splitlines():
            if not line.startswith("{"):
                print(f"  {line}")
                continue
            ev = json.loads(line)
            mark = {"allow": "ok   ", "audit": "AUDIT", "deny": "KILL ", "error": "EPERM"}[ev["decision"]]
            print(f"  {mark} {ev['module']:<28} {ev['capability']:<16} {ev['function']:<16} {ev['argument']!r}")
        print(f"  exit status: {proc.returncode}")
        print(f"  home server received: {home.received or 'nothing'}")
        print(f"  dropped file exists: {drop.exists()}")
        if mode == "enforce" and (proc.returncode != 137 or home.received or drop.exists()):
            print("demo: enforcement did not stop the telemetry module", file=sys.stderr)
            return 1
        if mode == "error" and (proc.returncode != 0 or home.received or drop.exists()):
            print("demo: action error did not stop the telemetry module with the service alive", file=sys.stderr)
            return 1
    say("done: the telemetry module was observed in audit mode, stopped under enforcement, and refused "
        "with EPERM while the service ran on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
