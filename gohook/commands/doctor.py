"""`gohook doctor`: can `gohook attach` work on this machine? Each check says why, and how to fix it.

This module parses the arguments and renders the verdicts; the checks
themselves live in the bpf stage: gohook.bpf.host (the static ones, also
attach's preflight and the loader's privilege check) and gohook.bpf.selftest
(the live ones, which load a small BPF program and run a probe helper).

Checks, in order (ids as in `--json`):

| id | looks at | fails when |
|---|---|---|
| privileges | CapEff in /proc/self/status | no CAP_SYS_ADMIN (uprobes need it, see has_bpf_privileges) |
| bcc | `import bcc` | missing, broken libbcc, or PyPI's unrelated `bcc` |
| kernel-headers | BCC_KERNEL_SOURCE, /lib/modules/R/build (+ source), kheaders | bcc finds no headers |
| tracefs | /sys/kernel/tracing/uprobe_events, the uprobe PMU | no way to make a uprobe (PMU only: warn) |
| lockdown | /sys/kernel/security/lockdown | never: none/integrity ok, confidentiality warns |
| probe-limit | BCC_PROBE_LIMIT, RLIMIT_NOFILE, catalog hook count | open-files limit below one attach's need |
| uprobes | a uprobe on a throwaway helper process | no hit, or [rsp] / R14 read wrong |
| send-signal | bpf_send_signal(SIGKILL) from that uprobe | the helper survives or runs the body |
| ring-buffer | BPF_RINGBUF_OUTPUT from that uprobe | it does not load, or no event arrives |

Exit status: 0 when attach can work (warnings allowed), 1 when a check
failed. `--quick` runs only the checks that load nothing into the kernel.
JSON (`--json`): {"ok", "seconds", "checks": [{"id", "title", "status",
"detail", "fix", "seconds"}]}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from gohook.bpf.host import Check, Environment, Status
from gohook.bpf.selftest import run_checks
from gohook.errors import Exit

__all__ = ["exit_code", "register", "render_json", "render_text", "run"]


def exit_code(checks: Sequence[Check]) -> Exit:
    return Exit.FINDINGS if any(c.status is Status.FAIL for c in checks) else Exit.OK


def render_text(checks: Sequence[Check], seconds: float) -> str:
    width = max(len(c.title) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status.value:<4}  {c.title:<{width}}  {c.detail}")
        if c.fix and c.status is not Status.OK:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {c.fix}")
    failed = sum(c.status is Status.FAIL for c in checks)
    warned = sum(c.status is Status.WARN for c in checks)
    verdict = (f"attach cannot work: {failed} check{'s' * (failed != 1)} failed" if failed
               else "attach can work" + (f" ({warned} warning{'s' * (warned != 1)})" if warned else ""))
    lines.append(f"doctor: {verdict} ({seconds:.1f}s)")
    return "\n".join(lines) + "\n"


def render_json(checks: Sequence[Check], seconds: float) -> str:
    doc = {"ok": exit_code(checks) is Exit.OK, "seconds": round(seconds, 3), "checks": [c.to_json() for c in checks]}
    return json.dumps(doc, separators=(",", ":")) + "\n"


def run(*, as_json: bool = False, quick: bool = False, env: Environment | None = None) -> int:
    start = time.monotonic()
    checks = run_checks(env, quick=quick)
    seconds = time.monotonic() - start
    sys.stdout.write(render_json(checks, seconds) if as_json else render_text(checks, seconds))
    return int(exit_code(checks))


EPILOG = """checks: privileges, bcc importable, kernel headers, tracefs, lockdown, probe limit,
        uprobes work, bpf_send_signal, ring buffer (the last three load BPF: about 2s)

examples:
  gohook doctor            can attach work here? each problem with its fix; exit 1 if not
  gohook doctor --quick    only the checks that load nothing into the kernel
  gohook doctor --json     the same as one JSON document
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("doctor", help="check that this machine can run gohook attach, with fixes",
                              description="Check that gohook attach can work here; exit 1 when it cannot.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--quick", action="store_true", help="skip the checks that compile and load BPF programs")
    p.set_defaults(run=lambda args: run(as_json=args.json, quick=args.quick))
