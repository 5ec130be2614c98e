"""`gohook attach`: enforce a policy on every process running a Go binary.

    gohook attach --binary APP --policy P.yaml [--mode enforce|audit|learn] [--pid PID]...
                  [--json] [--duration SECONDS] [-o FILE] [--learn-scope arguments|capabilities]
                  [--allow-unmatched]
                  [-- CMD ARGS...]

The command turns its arguments into gohook.session.AttachOptions and runs
the session (preflight -> plan -> BPF -> attach -> events -> views); with
`-- CMD` the child dies with gohook and gohook exits with the child's status
(137 when it was killed).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gohook.plan.model import SENTINEL_SETTINGS
from gohook.policy.format import Mode
from gohook.policy.learn import LearnScope
from gohook.session import AttachOptions, OutputFormat, run_session


def options_from(args: argparse.Namespace) -> AttachOptions:
    """The session options of parsed `gohook attach` arguments (live view when --json is off on a terminal)."""
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    output = OutputFormat.JSON if args.json else (OutputFormat.LIVE if sys.stdout.isatty() else OutputFormat.TEXT)
    return AttachOptions(binary=args.binary, policy=args.policy, mode=Mode(args.mode), pids=tuple(args.pid),
                         cmd=tuple(cmd), duration=args.duration, report_allowed=args.report_allowed,
                         sentinel=args.sentinel, output=output, learned_policy=args.output,
                         learn_scope=LearnScope(args.learn_scope), allow_unmatched=args.allow_unmatched,
                         use_cache=not args.no_cache)


def run(args: argparse.Namespace) -> int:
    # privileges are checked by the session's preflight, with the fix in the message
    return run_session(options_from(args))


def register(sub: Any) -> None:
    p = sub.add_parser(
        "attach", help="enforce a policy on every process running a Go binary",
        description="Attach uprobes to the capability functions of a Go binary and enforce a per-module policy "
                    "in the kernel.",
        epilog="examples:\n"
               "  gohook attach --binary ./app --policy app.yaml                 # every process running ./app\n"
               "  gohook attach --binary ./app --policy app.yaml -- ./app serve   # start it under enforcement\n"
               "  gohook attach --binary ./app --mode learn -o learned.yaml -- ./app test-run\n"
               "  gohook attach --binary ./app --policy app.yaml --pid 4242 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", required=True, help="the Go executable to hook (uprobes are per file)")
    p.add_argument("--policy", help="policy YAML (optional in learn mode)")
    p.add_argument("--mode", choices=[m.value for m in Mode], default="enforce",
                   help="enforce: the policy's action applies; audit: only record; learn: record and write a policy")
    p.add_argument("--pid", type=int, action="append", default=[], help="only these processes (repeatable)")
    p.add_argument("--json", action="store_true", help="one JSON object per event on stdout")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--report-allowed", action=argparse.BooleanOptionalAction, default=None,
                   help="also report allowed calls as events (default: only in learn mode and the live view; "
                        "otherwise only violations are events and allowed calls are counted, which costs far "
                        "less on busy services)")
    p.add_argument("--sentinel", choices=SENTINEL_SETTINGS, default="auto",
                   help="the system-call sentinel (syscall tracing of capability system calls no hook saw; it "
                        "runs for every system call on the machine): auto (default) turns it on for binaries "
                        "with cgo, module assembly or module system calls")
    p.add_argument("-o", "--output", help="learn mode: write the learned policy here")
    p.add_argument("--learn-scope", choices=[s.value for s in LearnScope], default=LearnScope.ARGUMENTS.value,
                   help="learn mode: `arguments` (default) writes scoped rules with the arguments seen (exact "
                        "names, IP:port, paths; many paths under one directory become DIR/* or DIR/**); "
                        "`capabilities` allows each capability seen with any argument")
    p.add_argument("--allow-unmatched", action="store_true",
                   help="accept policy module rules that match no module of the binary (a typo there would "
                        "otherwise leave the misspelt module under `default`: attach refuses it)")
    p.add_argument("--no-cache", action="store_true",
                   help="find the hook sites afresh, not from the analysis cache entry of inspect/policy generate")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ARGS: start CMD once every probe is attached")
    p.set_defaults(run=run)
