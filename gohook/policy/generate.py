"""Policies from and against a binary: what `gohook policy generate` writes and `gohook policy check` matches.

generate_policy_text(): the static analysis (gohook.static.inspection) lists
what each module's code reaches; the generated policy allows each module
exactly that and nothing else, each rule commented with its example path
(`# static: ...`). A capability that takes argument patterns is scoped to the
constants the module passes (gohook.static.arguments: string literals given
to os.Getenv, os.Open, net.Dial, exec.Command ...) when every call reaching
it passes one that is an exact pattern; otherwise it is `any`, and the
comment says where the argument is not constant (`argument not constant at
FUNCTION -> CALLEE`).

unmatched_patterns(): the module rules of a policy that match no module of
a binary (a typo, or a dependency that is gone).

The command-line parts (arguments, output files, exit codes) are in
gohook.commands.policy.
"""

from __future__ import annotations

import datetime
import fnmatch
from collections.abc import Collection
from pathlib import Path

from gohook.errors import GohookError
from gohook.policy.arguments import Refused, Rule, argument_class, literal_pattern, module_rule, scope_addresses
from gohook.policy.format import ModuleRule, Policy, render_policy
from gohook.policy.patterns import ArgClass
from gohook.static.analysis import raw_calls
from gohook.static.arguments import CapArgs, ModuleArguments, analyze_arguments
from gohook.static.inspection import Steps, inspect_binary


def scoped_rule(cap: str, args: CapArgs | None, commands: CapArgs) -> tuple[Rule, list[str]]:
    """One capability's rule from what the static analysis saw it called with, and its comment lines.

    Patterns only when every call reaching the capability passes a constant that is an exact pattern
    (gohook.policy.arguments.literal_pattern); `any` otherwise, saying where the argument is not constant.
    """
    if args is None:
        return None, [f"static: {cap}: any: its arguments were not analysed"]
    if args.dynamic is not None:
        return None, [f"static: {cap}: any: argument not constant at {args.dynamic}"]
    literals = set(args.literals)
    if args.command:
        if commands.dynamic is not None:
            return None, [f"static: {cap}: any: program not constant at {commands.dynamic}"]
        if not commands.literals:
            return None, [f"static: {cap}: any: runs an os/exec.Cmd this module did not name with exec.Command"]
        literals |= commands.literals
    if not literals:
        return None, [f"static: {cap}: any: no constant argument seen"]
    texts: set[str] = set()
    lines: list[str] = []
    for lit in sorted(literals, key=lambda x: (x.value, x.where)):
        got = literal_pattern(cap, lit.value, lit.network)
        if isinstance(got, Refused):
            return None, [f"static: {cap}: any: constant {lit.value!r} at {lit.where}: {got.reason}"]
        texts.add(got.text)
        lines.append(f"static: {cap} {got.text} at {lit.where}")
    if argument_class(cap) is ArgClass.ADDRESS:
        scoped = scope_addresses(cap, texts)
        return scoped.patterns, lines + [f"static: {n}" for n in scoped.notes]
    return sorted(texts), lines


def module_rules(capabilities: list[str], found: ModuleArguments | None,
                 raw: Collection[str] = ()) -> tuple[dict[str, Rule], list[str]]:
    """A module's rules (capability -> patterns or None for any) and the comment lines on its arguments.

    raw: the capabilities the module's raw system calls are charged (gohook.static.analysis.raw_calls): `any`,
    whatever other calls pass, since the kernel checks a raw call against the module's unscoped grants only (an
    argument-scoped grant covers calls of hooked Go functions).
    """
    rules: dict[str, Rule] = {}
    lines: list[str] = []
    for cap in sorted(capabilities):
        if argument_class(cap) is None:
            rules[cap] = None
            continue
        if cap in raw:
            rules[cap] = None
            lines.append(f"static: {cap}: any: its raw system calls need it for every argument")
            continue
        args = found.capabilities.get(cap) if found is not None else None
        commands = found.commands if found is not None else CapArgs()
        rules[cap], notes = scoped_rule(cap, args, commands)
        lines += notes
    return rules, lines


def generated_rules(binary_path: str, progress: Steps | None = None,
                    cache: bool = False) -> tuple[dict[str, dict[str, Rule]],
                                                                               dict[str, list[str]], list[str]]:
    """module -> capability -> patterns (None: any), the comment lines per module, and the header lines.

    `cache`: read/write the hook sites and analysis through gohook.static.cache (inspect_binary)."""
    ins = inspect_binary(binary_path, progress=progress, cache=cache)
    b = ins.binary
    if ins.graph is None:
        raise GohookError(f"{binary_path}: the static analysis kept no call graph to read arguments from")
    found = analyze_arguments(b, ins.hooks, ins.graph, ins.analysis)
    raw: dict[str, set[str]] = {}
    for call in raw_calls(b, ins.graph, ins.analysis.call_sites):
        raw.setdefault(call.module, set()).update(call.capabilities)
    rules: dict[str, dict[str, Rule]] = {}
    notes: dict[str, list[str]] = {}
    mods = sorted(ins.analysis.modules.values(), key=lambda r: (r.path != b.main_module, r.path))
    for rep in mods:
        if rep.functions == 0:
            continue  # listed in build info, no code in the binary
        lines = [f"static: {cap} via {' -> '.join(p.path)}" for cap, p in sorted(rep.capabilities.items())]
        rules[rep.path], arg_lines = module_rules(list(rep.capabilities), found.get(rep.path),
                                                  raw.get(rep.path, ()))
        lines += arg_lines
        if rep.indirect_calls:
            lines.append(f"static: {rep.indirect_calls} indirect calls not analysed (learn mode observes them)")
        if not rep.capabilities:
            lines.append("static: reaches no capability")
        notes[rep.path] = lines
    today = datetime.date.today().isoformat()
    header = [
        f"generated by gohook policy generate from {Path(binary_path).name} ({b.go_version or 'Go ?'}) on {today}",
        "static analysis of direct calls: each module may use exactly what its code was seen to reach;",
        "indirect calls (interfaces, closures) are not resolved: run `gohook attach --mode learn` and merge.",
        "arguments: the constants passed where every call has one (paths, names, IP:port), else any.",
    ]
    return rules, notes, header


def generate_policy_text(binary_path: str, progress: Steps | None = None, cache: bool = False) -> str:
    """The generated policy as YAML: scoped rules where the arguments are constants, comments with evidence."""
    rules, notes, header = generated_rules(binary_path, progress, cache)
    policy = Policy(path=binary_path, modules=tuple(module_rule(m, r) for m, r in rules.items()))
    return render_policy(policy, header=header, notes=notes)


def unmatched_patterns(policy: Policy, modules: list[str]) -> list[ModuleRule]:
    """The module rules of `policy` that match none of `modules`."""
    out = []
    for rule in policy.modules:
        hit = any(fnmatch.fnmatchcase(m, rule.pattern) if rule.is_glob else m == rule.pattern for m in modules)
        if not hit:
            out.append(rule)
    return out
