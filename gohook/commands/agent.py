"""`gohook agent`: enforce a directory of policies on every matching process of the machine.

    gohook agent --policy-dir DIR [--metrics ADDR:PORT] [--json] [--events FILE] [--mode enforce|audit]
                 [--pin-root DIR] [--cgroup DIR]

The command turns its arguments into gohook.agent.service.AgentOptions and runs the agent until SIGTERM
or SIGINT (docs/agent.md).
"""

from __future__ import annotations

import argparse
from typing import Any

from gohook.agent import PIN_ROOT
from gohook.policy.format import Mode


def run(args: argparse.Namespace) -> int:
    from gohook.agent.service import AgentOptions, run_agent  # prometheus-client, watchdog: only when run

    return run_agent(AgentOptions(policy_dir=args.policy_dir, metrics=args.metrics, json=args.json,
                                  events=args.events, mode=Mode(args.mode), pin_root=args.pin_root,
                                  cgroup=args.cgroup))


def register(sub: Any) -> None:
    p = sub.add_parser(
        "agent", help="enforce a directory of policies on every matching process of the machine",
        description="Run one long-lived enforcer: every policy file in --policy-dir (with a match: section) is "
                    "enforced on the processes it matches, those running now and those started later (held "
                    "at exec until their file is probed), in containers too; policy edits apply live.",
        epilog="examples:\n"
               "  gohook agent --policy-dir /etc/gohook/policies --json\n"
               "  gohook agent --policy-dir /etc/gohook/policies --events /var/log/gohook/events.jsonl "
               "--metrics 127.0.0.1:9464",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy-dir", required=True, help="directory of policy files (*.yaml, *.yml), each with match:")
    p.add_argument("--metrics", metavar="ADDR:PORT", help="serve Prometheus metrics on /metrics and /healthz")
    p.add_argument("--json", action="store_true", help="events as JSON lines on stdout (default: readable lines)")
    p.add_argument("--events", metavar="FILE", help="append events (JSON lines) to FILE; reopened on SIGHUP")
    p.add_argument("--mode", choices=[Mode.ENFORCE.value, Mode.AUDIT.value], default=Mode.ENFORCE.value,
                   help="enforce: each policy's action applies; audit: only record")
    p.add_argument("--pin-root", default=PIN_ROOT,
                   help=f"bpffs directory where probes are pinned so they outlive the agent (default {PIN_ROOT})")
    p.add_argument("--cgroup", metavar="DIR",
                   help="only processes under this cgroup v2 directory (default: the whole machine)")
    p.set_defaults(run=run)
