"""The verifier budget: every variant of the BPF program loads, and how much of the kernel's limit it uses.

The kernel verifies a program by walking its paths, at most 1,000,000 instructions (BPF_COMPLEXITY_LIMIT_INSNS)
per program. The stack walk is a bounded loop the verifier checks frame by frame, and the policy's knobs are
compile-time defines, so each combination of them is another program: `unattributed: deny` with reporting off
once went past the limit on every binary (issue 12). Here every combination of mode (enforce, audit, learn),
report_allowed (on, off), unattributed (deny, allow), attribution (caller, stack) and the sentinel (on, off) is
planned for real fixture binaries (the evasion program's cgo build has every kind of hook point: plain and
direct-caller hooks, runtime.cgocall, raw system-call functions, `syscall` instructions of module code) and
compiled and loaded (not attached), and each program's verified instruction count (bpf_prog_info
verified_insns) is recorded. Variants whose rendered program is the same (learn mode reports allowed calls
whatever the option says, and kills nothing, like audit with reporting on) are loaded once.

The table goes to build/verifier/headroom.json and to the terminal; docs/performance.md quotes its worst
cases. Each variant must stay under VERIFIED_BUDGET, half the kernel's limit, so that growth in the program
fails here long before a kernel refuses it. Runs as root; in CI (CI=true) nothing here skips.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import gofixtures
import pytest

from gohook.bpf.abi import HookKind
from gohook.bpf.loader import attach
from gohook.bpf.render import ProgramOptions, handler_classes, handler_name, render_cflags
from gohook.gosym import GoBinary
from gohook.plan.build import build_plan
from gohook.plan.model import EnforcementPlan
from gohook.policy.format import Action, Attribution, Mode, ModuleRule, Policy
from gohook.policy.patterns import parse_pattern
from gohook.sites.catalog import load_catalog
from gohook.sites.hooks import HookReport, find_hook_sites

pytestmark = pytest.mark.bpf

KERNEL_LIMIT = 1_000_000  # BPF_COMPLEXITY_LIMIT_INSNS: instructions the verifier processes per program
VERIFIED_BUDGET = KERNEL_LIMIT // 2  # what a variant may use here
HEADROOM = gofixtures.REPO_ROOT / "build" / "verifier" / "headroom.json"
GO_VERSION = "1.27.3"

#: (fixture, build mode): the evasion program's cgo build has every kind of hook point; attachapp is a plain one
FIXTURES = (("evasion", "cgo"), ("attachapp", "default"))


@dataclass(frozen=True)
class Variant:
    mode: Mode
    report_allowed: bool
    deny_unattributed: bool
    attribution: Attribution
    sentinel: str  # the `--sentinel` setting
    scoped: bool = False  # every module holds every scopable capability for some arguments (lib/argmatch.h)
    error: bool = False  # action error: a violation may be handed to the tracer (lib/deny.h)

    @property
    def name(self) -> str:
        return (f"{self.mode.value}/report-{'on' if self.report_allowed else 'off'}/unattributed-"
                f"{'deny' if self.deny_unattributed else 'allow'}/{self.attribution.value}/sentinel-{self.sentinel}"
                + ("/scoped" if self.scoped else "") + ("/action-error" if self.error else ""))


VARIANTS = [Variant(*v) for v in itertools.product((Mode.ENFORCE, Mode.AUDIT, Mode.LEARN), (True, False),
                                                   (True, False), (Attribution.CALLER, Attribution.STACK),
                                                   ("on", "off"))]
#: argument-scoped grants add the argument check and its glob match (their own programs) and a branch to the
#: handlers: the knobs that reach them, each way
VARIANTS += [Variant(m, r, d, Attribution.CALLER, s, scoped=True) for m, r, d, s in
             itertools.product((Mode.ENFORCE, Mode.AUDIT), (True, False), (True, False), ("on", "off"))]
#: action error adds the mark and the signal to every handler's violation path and to the argument check's
VARIANTS += [Variant(Mode.ENFORCE, r, d, a, s, scoped=sc, error=True) for r, d, a, s, sc in
             itertools.product((True, False), (True, False), (Attribution.CALLER, Attribution.STACK), ("on", "off"),
                               (False, True)) if not (sc and a is Attribution.STACK)]

#: patterns of every class for every module (`*`), for the scoped variants
SCOPES = {"files.read": ["/etc/acme/**", "/var/lib/acme/*.yaml"], "files.write": ["/var/lib/acme/cache/**"],
          "exec": ["/usr/bin/git"], "env.read": ["OTEL_*", "HOME"], "env.write": ["ACME_*"],
          "network.connect": ["127.0.0.1:4317", "10.0.0.0/8:443", "unix:/run/otel/*.sock", "unix:@agent"],
          "network.listen": ["127.0.0.1:*"]}


@pytest.fixture(scope="module", autouse=True)
def _root() -> None:
    gofixtures.require_root("loading BPF programs")


@dataclass
class Budget:
    """What the module measured: the planned binaries, the loads by rendered program, the table's rows."""

    binaries: dict[tuple[str, str], tuple[GoBinary, HookReport]] = field(default_factory=dict)
    loads: dict[tuple[str, ...], dict[str, int]] = field(default_factory=dict)  # cflags -> program -> insns
    rows: list[dict[str, Any]] = field(default_factory=list)


def _table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """headroom.json: every row, and the worst program of each variant over the fixtures."""
    worst: dict[str, dict[str, Any]] = {}
    for r in rows:
        w = worst.get(r["variant"])
        if w is None or r["worst_insns"] > w["worst_insns"]:
            worst[r["variant"]] = {k: r[k] for k in ("fixture", "worst_program", "worst_insns", "headroom")}
        d = worst[r["variant"]].get("decision_insns", 0)
        if r["decision_insns"] > d:
            worst[r["variant"]].update({k: r[k] for k in ("decision_program", "decision_insns")})
    return {"kernel": os.uname().release, "limit": KERNEL_LIMIT, "budget": VERIFIED_BUDGET, "go": GO_VERSION,
            "worst": dict(sorted(worst.items(), key=lambda kv: -kv[1]["worst_insns"])), "rows": rows}


@pytest.fixture(scope="module")
def budget(request: pytest.FixtureRequest) -> Iterator[Budget]:
    b = Budget()
    yield b
    if not b.rows:
        return
    table = _table(b.rows)
    HEADROOM.parent.mkdir(parents=True, exist_ok=True)
    HEADROOM.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    lines = [f"verified instructions per variant, worst program over {len(FIXTURES)} fixtures "
             f"(kernel {table['kernel']}, limit {KERNEL_LIMIT:,}) -> {HEADROOM}"]
    lines += [f"  {name:58s} {w['worst_insns']:>9,}  {w['headroom']:5.1f} % headroom  ({w['worst_program']}, "
              f"{w['fixture']}); handlers and sentinel: {w['decision_insns']:,} ({w['decision_program']})"
              for name, w in table["worst"].items()]
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():  # printed whatever the capture mode
        print("\n" + "\n".join(lines))


def _plan(budget: Budget, fixture: str, build_mode: str, v: Variant) -> EnforcementPlan:
    key = (fixture, build_mode)
    if key not in budget.binaries:
        binary = GoBinary.open(gofixtures.build(gofixtures.live_toolchain(GO_VERSION), fixture, build_mode))
        budget.binaries[key] = binary, find_hook_sites(binary, load_catalog())
    binary, hooks = budget.binaries[key]
    modules = (ModuleRule.with_scopes("*", [], {cap: [parse_pattern(cap, t) for t in texts]
                                                for cap, texts in SCOPES.items()}),) if v.scoped else ()
    policy = Policy(path="budget.yaml", attribution=v.attribution, deny_unattributed=v.deny_unattributed,
                    modules=modules, action=Action.ERROR if v.error else Action.KILL)
    return build_plan(binary, hooks, load_catalog(), policy, v.mode, v.sentinel).plan


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
@pytest.mark.parametrize(("fixture", "build_mode"), FIXTURES, ids=[f"{f}-{m}" for f, m in FIXTURES])
def test_every_variant_loads_within_the_budget(budget: Budget, fixture: str, build_mode: str,
                                               variant: Variant) -> None:
    plan = _plan(budget, fixture, build_mode, variant)
    assert (plan.sentinel is not None) == (variant.sentinel == "on"), "the fixture has no goroutine provenance"
    if fixture == "evasion" and variant.sentinel == "on":  # every kind of handler program is in this one
        assert {k for k, _ in handler_classes(plan)} == {HookKind.CALL, HookKind.CGOCALL, HookKind.SITE,
                                                         HookKind.RAWCALL}, handler_classes(plan)
    options = ProgramOptions(report_allowed=variant.report_allowed)
    key = tuple(render_cflags(plan, options))
    if key not in budget.loads:
        with attach(plan, options=options, attach_probes=False) as att:  # compile + load; VerifierError fails
            budget.loads[key] = {s.name: s.verified_insns for s in att.program_stats()}
    programs = budget.loads[key]
    wanted = {handler_name(k, d) for k, d in handler_classes(plan)} | {f"gohook_hook_{h.hook_id}" for h in plan.hooks}
    if plan.sentinel is not None:
        wanted.add("gohook_sentinel")
    if variant.scoped:
        assert plan.scoped and plan.arg_patterns, "the scoped policy gave no module a scoped grant"
        wanted |= {"gohook_argcheck", "gohook_globmatch"}
    assert wanted <= set(programs), sorted(wanted - set(programs))
    assert all(n > 0 for n in programs.values()), programs  # fdinfo reports verified_insns
    worst = max(programs, key=lambda p: programs[p])
    # the programs the variant's knobs change (the others, entries and the goroutine-created probe, do not)
    decision = max((p for p in programs if p.startswith("gohook_handler_")
                    or p in ("gohook_sentinel", "gohook_argcheck", "gohook_globmatch")),
                   key=lambda p: programs[p])
    budget.rows.append({"fixture": f"{fixture}-{build_mode}", "variant": variant.name, "worst_program": worst,
                        "worst_insns": programs[worst],
                        "headroom": round(100 * (1 - programs[worst] / KERNEL_LIMIT), 1),
                        "decision_program": decision, "decision_insns": programs[decision],
                        "programs": dict(sorted(programs.items()))})
    assert programs[worst] < VERIFIED_BUDGET, f"{worst} verified {programs[worst]:,} instructions"
