"""`gohook policy merge|diff|generate|check`: argument parsing, files and exit codes of the policy commands.

merge A.yaml B.yaml [...] [-o out.yaml]
    The union of the policies, keeping provenance comments; conflicting
    settings take the stricter value (gohook.policy.ops.merge_policies).

diff OLD.yaml NEW.yaml [--json]
    What NEW adds or removes per module key, default, trust and settings,
    and per scoped capability the argument patterns it adds, widens or drops
    (gohook.policy.ops.diff_policies). Exit status 1 when NEW grants anything
    OLD did not (a capability, a pattern no old pattern covers, patterns ->
    any), 0 otherwise.

generate BIN [-o out.yaml]
    A policy allowing each module what static analysis finds it reaches
    (gohook.policy.generate.generate_policy_text).

check P.yaml [--binary BIN]
    The policy is valid (YAML, keys, capability names, argument patterns:
    one line with file and line, exit 2); no argument pattern is one that
    can never match (gohook.policy.ops.check_patterns: exit 1, one line
    each; patterns another one covers are printed as notes); and, given
    --binary, every module pattern matches some module of that binary (exit
    1 and one line per pattern that matches nothing).

All exit 2 with one line (`gohook: p.yaml:3: ...`) on a bad policy file, and
never show a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gohook.errors import Exit, GohookError
from gohook.policy.format import load_policy, quote_pattern
from gohook.policy.ops import check_patterns, diff_policies, load_source, merge_policies, render_diff, vocabulary

__all__ = ["add_policy_subcommands", "register"]


def run_merge(args: argparse.Namespace) -> int:
    if len(args.policies) < 2:
        raise GohookError("policy merge needs at least two policy files")
    vocab = vocabulary()
    result = merge_policies([load_source(p, vocab) for p in args.policies])
    text = result.render(vocab)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise GohookError(f"{args.output}: cannot write: {exc.strerror}") from None
        print(f"gohook: wrote {args.output} ({len(result.policy.modules)} module rules"
              f"{', ' + str(len(result.conflicts)) + ' settings conflicts' if result.conflicts else ''})",
              file=sys.stderr)
    else:
        sys.stdout.write(text)
    return int(Exit.OK)


def run_diff(args: argparse.Namespace) -> int:
    vocab = vocabulary()
    old, new = load_source(args.old, vocab), load_source(args.new, vocab)
    d = diff_policies(old.policy, new.policy, new.comments)
    if args.json:
        sys.stdout.write(json.dumps(d.to_json(), separators=(",", ":")) + "\n")
    else:
        sys.stdout.write(render_diff(d, args.old, args.new))
    return int(Exit.FINDINGS if d.grants_new else Exit.OK)


def run_generate(args: argparse.Namespace) -> int:
    from gohook.policy.generate import generate_policy_text
    from gohook.views.progress import Progress

    text = generate_policy_text(args.binary, Progress(enabled=sys.stderr.isatty()), cache=not args.no_cache)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise GohookError(f"{args.output}: cannot write: {exc.strerror}") from None
        print(f"gohook: wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def run_check(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy, vocabulary())
    findings = check_patterns(policy)
    for f in findings:
        what = "" if f.never else "note: "
        print(f"gohook: {args.policy}:{f.rule.line}: {what}module {f.rule.pattern}: {f.capability} pattern "
              f"{quote_pattern(f.pattern.text)}: {f.problem}")
    never = sum(f.never for f in findings)
    if not args.binary:
        if never:
            return int(Exit.FINDINGS)
        npat = sum(len(pats) for r in policy.modules for _, pats in r.scopes)
        scoped = f", {npat} argument pattern{'s' * (npat != 1)}" if npat else ""
        print(f"gohook: {args.policy}: valid ({len(policy.modules)} module rules{scoped})")
        return 0
    from gohook.gosym import GoBinary
    from gohook.policy.generate import unmatched_patterns

    b = GoBinary.open(args.binary)
    modules = sorted({b.module_of(f.name) for f in b.functions} - {"std"})
    bad = unmatched_patterns(policy, modules)
    for rule in bad:
        print(f"gohook: {args.policy}:{rule.line}: module {rule.pattern!r} matches no module of {args.binary}")
    if bad or never:
        return int(Exit.FINDINGS)
    print(f"gohook: {args.policy}: valid; every module rule matches {args.binary}")
    return 0


MERGE_EPILOG = """examples:
  gohook policy merge static.yaml learned.yaml -o app.policy.yaml
  gohook policy merge a.yaml b.yaml c.yaml > merged.yaml
"""

DIFF_EPILOG = """exit status: 0 when NEW grants nothing new, 1 when it does, 2 on a bad policy file

examples:
  gohook policy diff main.policy.yaml pr.policy.yaml        review a change (CI gate)
  gohook policy diff old.yaml new.yaml --json
"""


def _add_merge(policy_sub: Any) -> None:
    p = policy_sub.add_parser("merge", help="union of policies, keeping provenance comments",
                              description="Merge policies: union of module rules, defaults and trust; "
                                          "conflicting settings take the stricter value.",
                              epilog=MERGE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("policies", nargs="+", metavar="POLICY.yaml", help="two or more policy files")
    p.add_argument("-o", "--output", help="write here instead of stdout")
    p.set_defaults(run=run_merge)


def _add_diff(policy_sub: Any) -> None:
    p = policy_sub.add_parser("diff", help="what NEW adds or removes per module; exit 1 if it grants anything new",
                              description="Compare two policies; exit 1 when NEW grants anything OLD did not.",
                              epilog=DIFF_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("old", metavar="OLD.yaml")
    p.add_argument("new", metavar="NEW.yaml")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(run=run_diff)


def _add_static(policy_sub: Any) -> None:
    g = policy_sub.add_parser("generate", help="write a policy allowing each module what static analysis finds",
                              epilog="example:\n  gohook policy generate ./app -o app.policy.yaml",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("binary", help="a Go ELF binary")
    g.add_argument("-o", "--output", help="write here instead of stdout")
    g.add_argument("--no-cache", action="store_true",
                   help="analyse afresh: neither read nor write the analysis cache (gohook.static.cache)")
    g.set_defaults(run=run_generate)
    c = policy_sub.add_parser("check", help="validate a policy (and match it against a binary)",
                              epilog="examples:\n  gohook policy check p.yaml\n"
                                     "  gohook policy check p.yaml --binary ./app",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("policy", help="policy YAML file")
    c.add_argument("--binary", help="report module patterns that match nothing in this binary")
    c.set_defaults(run=run_check)


def add_policy_subcommands(policy_sub: Any) -> None:
    """Add every `gohook policy` subcommand to the policy parser's subparsers, in --help order."""
    _add_merge(policy_sub)
    _add_diff(policy_sub)
    _add_static(policy_sub)  # generate, check


POLICY_EPILOG = """workflow: generate -> run in audit -> learn -> merge -> enforce; gate changes with diff

examples:
  gohook policy merge static.yaml learned.yaml -o app.policy.yaml
  gohook policy diff main.policy.yaml pr.policy.yaml
"""


def register(subparsers: Any) -> None:
    """Add `gohook policy` and its subcommands."""
    p = subparsers.add_parser("policy", help="work with policy files (merge, diff, ...)",
                              description="Work with gohook policy files.", epilog=POLICY_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    policy_sub = p.add_subparsers(dest="policy_command", required=True, metavar="SUBCOMMAND")
    add_policy_subcommands(policy_sub)
