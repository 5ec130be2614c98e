"""Smoke tests of the performance evaluation's pieces (bench/evaluate.py, bench/perfeval/).

Pure parts: the statistics, the plan variants the configurations are built
from, the syscall table of the tracer, and the report rendered from a small
synthetic result set. Live part (root, `bpf`): one tiny run of each kind of
configuration and of the HTTP workload, checking that each measures what it
claims (the counters of a run match the operations it made).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import gofixtures
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from perfeval import fixture, plans, report  # noqa: E402
from perfeval.stats import Summary, interleaved  # noqa: E402
from perfeval.systrace import syscall_caps  # noqa: E402

from gohook.bpf.render import build_tables  # noqa: E402
from gohook.sites.catalog import load_catalog  # noqa: E402

PERFWORK = "github.com/acme/perfwork"


def test_summary_is_median_and_quartiles() -> None:
    s = Summary.of([5, 1, 3, 2, 4])
    assert (s.median, s.p25, s.p75, s.low, s.high, s.n) == (3, 2, 4, 1, 5, 5)
    assert Summary.of([7]).iqr == 0
    with pytest.raises(ValueError):
        Summary.of([])


def test_interleaving_runs_everything_once_per_round_in_changing_orders() -> None:
    runs = list(interleaved("abcd", 6, seed=3))
    rounds = [[x for r, x in runs if r == k] for k in range(6)]
    assert all(sorted(r) == list("abcd") for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1


def test_tracer_charges_syscalls_to_catalog_capabilities() -> None:
    bits = {c.name: c.bit for c in load_catalog().capabilities}
    table = syscall_caps(bits)
    assert table[257] == 1 << bits["files.read"]  # openat
    assert table[42] == 1 << bits["network.connect"]  # connect
    assert table[59] == 1 << bits["exec"]  # execve
    assert table[0] == table[1] == 0  # read, write: no capability


@pytest.fixture(scope="module")
def perfapp() -> Path:
    if not gofixtures.toolchains():
        pytest.skip("no Go toolchain installed: run scripts/setup.sh")
    return fixture.build_perfapp()


@pytest.fixture(scope="module")
def shipped(perfapp: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    ws = fixture.Workspace.create(perfapp, str(tmp_path_factory.mktemp("perf")))
    yield ws, *plans.shipped(ws.app, ws.policy)
    ws.close()


def test_plan_variants_keep_the_measured_call_and_its_attribution(shipped) -> None:  # type: ignore[no-untyped-def]
    _ws, b, build = shipped
    plan = build.plan
    entry = plans.at_entry(plan, b)
    assert all(h.probe == h.entry and h.call_len == 0 for h in entry.hooks)
    assert {h.function for h in entry.hooks} == {h.function for h in plan.hooks}

    many = plans.with_hook_count(plan, b, 40, keep=("syscall.Getenv",))
    assert len(many.hooks) == 40 and many.hooks[0].function == "syscall.Getenv"
    assert sorted(h.hook_id for h in many.hooks) == list(range(40))
    extra = many.hooks[len(plan.hooks):]
    assert extra and all(b.package_of(h.function).startswith(plans.COLD_PACKAGES) for h in extra)
    assert plans.with_hook_count(plan, b, 3, keep=("syscall.Getenv",)).hooks[0].function == "syscall.Getenv"

    wide = plans.with_module_count(plan, b, 300)
    assert len(wide.modules) == 300
    tables = build_tables(wide)
    assert len(tables.range_start) > 1000 and tables.search_steps > build_tables(plan).search_steps
    perfwork = wide.modules.index(PERFWORK) + 1
    getenv = b.functions_by_name[f"{PERFWORK}.getenv"]
    assert tables.lookup(getenv.entry + 1 - wide.text_start)[0] == perfwork  # the measured frame: unchanged
    gosyscall = b.functions_by_name["syscall.Getenv"]
    assert tables.lookup(gosyscall.entry + 1 - wide.text_start) == (0, 0, 0, 0)  # the hot path stays std
    crypto = next(f for f in b.functions if (b.package_of(f.name) or "").startswith("crypto/"))
    assert tables.lookup(crypto.entry - wide.text_start)[0] > len(plan.modules)  # a synthetic module


def _results() -> dict:  # type: ignore[type-arg]
    """A small result set with every section, shaped like evaluate.py's."""
    def cell(config: str, op: str, base: float, runs: float, **extra: object) -> dict:  # type: ignore[type-arg]
        return {"config": config, "op": op, "depth": 10, "threads": 1, "n": 1000,
                "ns_per_op": [base, base * 1.01, base * 0.99], "per_op": {"probe_runs": runs}, **extra}

    configs = ["none", "gohook", "gohook-entry", "syscall-trace"]
    cost = {"none": 0.0, "gohook": 1100.0, "gohook-entry": 10000.0, "syscall-trace": 0.0}
    micro = {f"{op}/{c}": cell(c, op, base + cost[c] + (700 * 7 if c == "syscall-trace" and op == "open" else 0),
                               0 if c == "none" else 1)
             for op, base in (("open", 5000.0), ("getenv", 30.0)) for c in configs}

    def run(rps: float, cpu: float, hits: float) -> dict:  # type: ignore[type-arg]
        return {"rps": rps, "p50_us": 1000, "p90_us": 2000, "p99_us": 4000, "requests": 10000,
                "total_requests": 11000, "errors": 0, "service_cpu_s": 1.0, "agent_cpu_s": 0.0,
                "cpu_us_per_request": cpu, "stats": {"probe_runs": hits * 11000, "events": 0}}

    http = {"configs": ["none", "gohook", "syscall-trace"], "seconds": 8, "warmup": 1, "connections": 16,
            "runs": {"none": [run(10000, 80, 0), run(10100, 81, 0)], "gohook": [run(9800, 82, 2), run(9900, 83, 2)],
                     "syscall-trace": [run(8500, 110, 19), run(8600, 112, 19)]}}
    depth_cells = {f"{op}/{c}/d{d}": cell(c, op, 100.0 + (d if c != "none" else 0), 1)
                   for op in ("getenv", "open") for c in ("none", "gohook") for d in (10, 200)}
    hooks_cells = {"getenv/gohook@10hooks": cell("gohook@10hooks", "getenv", 1100, 1),
                   "getenv/none": cell("none", "getenv", 30, 0)}
    shape = {"hooks": 10, "modules": 4, "ranges": 10, "search_steps": 2}
    return {
        "started": "today", "seconds": 60, "settings": {"quick": True},
        "machine": {"kernel": "6.18", "cpus": 2, "cpu": "test", "loadavg": ["1", "1", "1"],
                    "loadavg_end": ["1", "1", "1"]},
        "binary": {"go": "go1.27.3", "size": 1e7}, "descriptions": {c: c for c in configs},
        "plan": {"hooks": 20, "modules": [PERFWORK], "ranges": 6, "functions": ["syscall.Getenv"], "skipped": []},
        "micro": {"depth": 10, "configs": configs, "ops": ["open", "getenv"], "cells": micro},
        "http": http,
        "scale": {"depth": {"points": [10, 200], "configs": ["none", "gohook"], "cells": depth_cells},
                  "hooks": {"points": [10], "names": ["gohook@10hooks"], "cells": hooks_cells,
                            "timings": {"gohook@10hooks": {"compile": 1.0, "load": 1.0, "attach": 0.01}},
                            "shapes": {"gohook@10hooks": shape}}},
        "attach": {"perfapp": {"size": 1e7, "functions": 7000, "seconds": [3.0, 3.2],
                               "stages": {"read_and_plan": 0.5, "compile": 1.5, "load": 1.0, "attach": 0.02,
                                          "probes": 20}}},
        "diagnostics": {"getenv/gohook": {"ns_per_op": 1100, "bpf_runs_per_op": 1, "bpf_ns_per_run": 500,
                                          "bpf_ns_per_op": 500, "verified_insns": 1000},
                        "uprobe_floor": {"none": [30, 31, 29], "noop": [730, 740, 720]},
                        "event_path": {"events": 1000, "read_decode_us": 9, "symbolize_us": 9, "as_json_us": 10,
                                       "dumps_us": 20, "line_bytes": 1200}},
    }


def test_report_renders_targets_sections_and_plots(tmp_path: Path) -> None:
    md = report.write(_results(), tmp_path)
    text = md.read_text()
    for heading in ("## Summary", "## Reproducing", "## Microbenchmarks", "## HTTP service under load", "## Scale",
                    "## Attach latency", "## Where the cost goes"):
        assert heading in text, heading
    assert "| HTTP throughput cost ≤ 5% (`gohook`) | +2.5% CPU per request" in text
    assert "| ≤ 1.5 µs per hooked call (`gohook`, getenv) | +1.10 µs" in text
    assert "met" in text and "**missed**" not in text
    assert "Syscall tracing is cheaper where it is blind" in text
    for png in ("micro.png", "http.png", "scale-depth.png", "scale-hooks.png"):
        assert (tmp_path / report.FIGURES / png).stat().st_size > 1000, png
    assert (tmp_path / report.FIGURES / "results.json").exists()


def test_report_keeps_the_hand_written_sections_below_the_marker(tmp_path: Path) -> None:
    md = report.write(_results(), tmp_path)
    tail = f"{report.KEPT_MARKER}\n\n## Issue 12: hand-written\n\nmeasured by hand: 42 ns\n"
    md.write_text(md.read_text().replace("## Summary", "## Summary (edited, regenerated away)") + "\n" + tail)
    text = report.write(_results(), tmp_path).read_text()
    assert text.endswith(tail) and text.count(report.KEPT_MARKER) == 1
    assert "(edited, regenerated away)" not in text and "## Where the cost goes" in text
    fresh = tmp_path / "fresh"
    assert report.KEPT_MARKER not in report.write(_results(), fresh).read_text()  # nothing to keep


# --- live --------------------------------------------------------------------------------------------------


@pytest.mark.bpf
def test_each_kind_of_run_counts_what_it_measured(shipped) -> None:  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        if gofixtures.in_ci():
            pytest.fail("live BPF tests need root (CI=true: BPF tests never skip)")
        pytest.skip("SKIPPED LOUDLY: live BPF tests need root (CAP_BPF, CAP_PERFMON): run the suite as root")
    from perfeval import configs, workloads

    from gohook.bpf.render import ProgramOptions

    ws, b, build = shipped
    one = plans.with_hook_count(build.plan, b, 1, keep=("syscall.Getenv",))  # one probe: detaching is slow here
    none = configs.Instrumentation("none", "", ws.copy_of(ws.app, "smoke-none"))
    gohook = configs.Gohook("gohook", "", one, b, ProgramOptions(report_allowed=True), ws.copy_of(ws.app, "smoke-g"))
    tracer = configs.SyscallTraceConfig("syscall-trace", "", build.plan, ws.copy_of(ws.app, "smoke-t"))
    try:
        n = 500
        r = workloads.micro(gohook, "getenv", n, depth=3)
        assert r.ns_per_op > 0
        assert n + 1 <= r.stats["hits"] <= n + 10  # the warm-up call, n calls, the few os.Getenv of start-up
        assert r.stats["events"] + r.stats["lost"] == r.stats["hits"]
        assert workloads.micro(none, "getenv", n).stats == {}
        r = workloads.micro(tracer, "open", 100)
        assert r.stats["checked"] >= 101 and r.stats["violations"] == 0  # openat of /etc/hostname: files.read
        assert r.stats["syscalls"] >= 3 * 101 and r.stats["attributed"] >= 101
        with workloads.HttpBench(ws.upstream, ws.files, ws.root, seconds=1, warmup=0) as hb:
            h = hb.run(none)
        assert h.requests > 0 and h.errors == 0 and h.p99_us >= h.p50_us > 0 and h.service_cpu_s > 0
    finally:
        gohook.close()
        tracer.close()


def _need_root() -> None:
    if os.geteuid() != 0:
        if gofixtures.in_ci():
            pytest.fail("live BPF tests need root (CI=true: BPF tests never skip)")
        pytest.skip("SKIPPED LOUDLY: live BPF tests need root (CAP_BPF, CAP_PERFMON): run the suite as root")


@pytest.mark.bpf
def test_attach_cli_measures_the_service_not_gohooks_namespace_init(shipped) -> None:  # type: ignore[no-untyped-def]
    """`gohook attach -- CMD` runs CMD under a PID-namespace init of its own: the CPU measured must be the
    service's (the process running the binary), not the init wrapper's (a few ms, 0 us per request)."""
    _need_root()
    import subprocess

    from perfeval import configs, workloads

    ws, _b, _build = shipped
    cli = configs.AttachCli("gohook-cli", "", ws.copy_of(ws.app, "smoke-cli"), ws.policy, ws.root)
    with workloads.HttpBench(ws.upstream, ws.files, ws.root, seconds=1, warmup=0) as hb:
        ready = ws.root / "smoke-cli.url"
        ready.unlink(missing_ok=True)
        proc = cli.start(["serve", "-root", str(ws.files), "-upstream", hb.upstream_url, "-ready", str(ready)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            workloads._wait_for_file(ready, proc, 300, "the service under gohook attach")  # noqa: SLF001
            pid = cli.workload_pid(proc)
            assert Path(f"/proc/{pid}/exe").resolve() == cli.app.resolve()
            assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1] == b"serve"
        finally:
            cli.stop(proc)
        assert cli.finish()["hits"] >= 0


@pytest.mark.bpf
def test_bench_guard_counts_one_guard_run_per_guarded_call() -> None:
    """bench/bench_guard.py, tiny: the kernel's own count of the guard program's runs (bpf_stats) is one per
    madvise the workload makes, in its target and in a bystander, and none per getpid (not guarded)."""
    _need_root()
    if not gofixtures.toolchains():
        pytest.skip("no Go toolchain installed: run scripts/setup.sh")
    import json
    import subprocess

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(root / "bench" / "bench_guard.py"), "--rounds", "1", "--scale", "0.01",
                          "--ops", "madvise,getpid", "--http", "0", "--json"], capture_output=True, text=True,
                         check=True, cwd=root).stdout
    doc = json.loads(out)
    assert doc["ops_per_run"] == {"madvise": 2000, "getpid": 2000}
    assert "madvise" in doc["guarded_syscalls"] and "getpid" not in doc["guarded_syscalls"]
    for config in ("none", "target", "bystander"):
        assert len(doc["samples"]["madvise"][config]) == 1 and doc["samples"]["madvise"][config][0] > 0
    stats = doc["bpf_stats"]
    for config in ("target", "bystander"):
        # n + 1 calls (the warm-up), plus the few mmap/madvise of the runtime's start-up
        assert 1.0 <= stats["madvise"][config]["guard_runs_per_op"] < 1.1
        assert stats["getpid"][config]["guard_runs_per_op"] < 0.1
    # the Go-level hook of the churn loop's getpid (a raw system call made by the main module) ran in the
    # target only: the bystander is another file, never probed
    assert any(v[0] >= 1.0 for v in stats["getpid"]["target"]["programs_runs_and_ns_per_op"].values())
    assert all(v[0] < 0.1 for v in stats["getpid"]["bystander"]["programs_runs_and_ns_per_op"].values())


def test_bench_argrules_patterns_put_the_allowing_pattern_last_and_deepest() -> None:
    """bench/bench_argrules.py's pattern sets: the argument is allowed by the last pattern only (fnmatch, not
    gohook, is the oracle: `*` never has to cross a '/' here), and in the deep case exactly MATCH_TRIES - 1
    decoys have a literal prefix that starts the argument, so the kernel walks its whole chain."""
    import fnmatch

    import bench_argrules as ar

    from gohook.bpf.abi import MATCH_TRIES

    root = Path("/srv/bench")
    arg_path = str(ar.stat_path(root))
    for count in (1, 20, 200):
        for deep in (False, True) if count >= MATCH_TRIES else (False,):
            for patterns, arg in ((ar.env_patterns(count, deep), ar.ENV_NAME),
                                  (ar.path_patterns(root, count, deep), arg_path)):
                assert len(patterns) == len(set(patterns)) == count
                assert fnmatch.fnmatchcase(arg, patterns[-1])
                assert not any(fnmatch.fnmatchcase(arg, p) for p in patterns[:-1]), patterns
                starts = [p for p in patterns[:-1] if arg.startswith(p.split("*")[0])]
                assert len(starts) == (MATCH_TRIES - 1 if deep else 0), starts
    with pytest.raises(ValueError):
        ar.env_patterns(MATCH_TRIES - 1, True)


@pytest.mark.bpf
def test_bench_argrules_measures_one_hooked_call_per_loop_iteration() -> None:
    """bench/bench_argrules.py, tiny: each loop iteration is one hooked call in every gohook configuration
    (the kernel's counters), the deep case takes MATCH_TRIES trie lookups by the kernel's algorithm, the
    scoped chain (argcheck and globmatch, tail calls counted in the hook's entry program) costs more BPF time
    than the capability-only one, and both argument programs verified."""
    _need_root()
    if not gofixtures.toolchains():
        pytest.skip("no Go toolchain installed: run scripts/setup.sh")
    import json
    import subprocess

    from gohook.bpf.abi import MATCH_TRIES

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(root / "bench" / "bench_argrules.py"), "--rounds", "1", "--scale", "0.01",
                          "--configs", "none,caps,scoped-20-deep", "--perf", "0", "--stats-runs", "1",
                          "--no-variants", "--json"], capture_output=True, text=True, check=True, cwd=root).stdout
    doc = json.loads(out)
    assert doc["calls_per_run"] == {"getenv": 2000, "stat": 1000}
    for op in ("getenv", "stat"):
        assert doc["shapes"]["scoped-20-deep"][op]["lookups"] == MATCH_TRIES
        assert doc["shapes"]["scoped-20-deep"][op]["trie_entries"] == 20
        for config in ("caps", "scoped-20-deep"):
            assert 1.0 <= doc["hooked_calls_per_call"][op][config] < 1.1  # the warm-up and start-up calls
            acct = doc["bpf_stats"][op][config]
            assert len(acct["entry"]) == 1 and all(e["runs_per_call"] >= 1.0 for e in acct["entry"].values())
            assert acct["tail_call_run_cnt"] == {"gohook_argcheck": 0, "gohook_globmatch": 0}
        assert doc["bpf_stats"][op]["scoped-20-deep"]["ns_per_call"] > doc["bpf_stats"][op]["caps"]["ns_per_call"]
        assert len(doc["samples"][op]["none"]) == 1 and doc["samples"][op]["none"][0] > 0
    assert doc["verified_insns"]["scoped-20-deep"]["gohook_argcheck"] > 0
    assert doc["verified_insns"]["scoped-20-deep"]["gohook_globmatch"] > 0
    assert "gohook_argcheck" not in doc["verified_insns"]["caps"]


def test_bench_error_action_reads_gohooks_tracer_line_and_pairs_rounds() -> None:
    """bench/bench_error_action.py's pure parts: the tracer line as gohook logs it at -v (gohook/session.py
    _report_tracer, behind logging's "gohook: " prefix), and ratios of paired rounds."""
    import bench_error_action as ea

    line = ea.TracerLine.parse("gohook: started x\ngohook: gohook: tracer: 66 stops (10.0/s), 57 signals passed on, "
                               "36 us handling per stop\ngohook: 0 hooked calls, 0 killed\n")
    assert line == ea.TracerLine(stops=66, per_second=10.0, signals=57, handling_us=36.0)
    with pytest.raises(ea.BenchError):
        ea.TracerLine.parse("gohook: 0 hooked calls, 0 killed\n")

    def run(cpu: float, wall: float, stops: int | None = None) -> dict[str, object]:
        out: dict[str, object] = {"target_cpu_s": cpu, "wall_s": wall, "gohook_cpu_s": 0.0}
        if stops is not None:  # a gohook configuration
            out["tracer"] = {"stops": stops, "per_second": 1.0, "signals": stops, "handling_us": 20.0}
            out["stops_per_second"] = out["signals_per_second"] = stops / wall
            out["tracer_cpu_percent"] = stops * 20.0 / 1e4 / wall
        return out

    runs = {"work": {"none": [run(4.0, 2.0), run(6.0, 3.0)], "kill": [run(4.0, 2.2, 0), run(6.0, 3.3, 0)],
                     "error": [run(4.4, 2.2, 220), run(6.6, 3.3, 330)]}}
    doc = ea.summarize(runs)["work"]
    assert doc["tracer_error"]["stops_per_second"] == pytest.approx(100.0) and doc["kill_stops"] == [0, 0]
    assert doc["tracer_error"]["tracer_cpu_percent"] == pytest.approx(0.2)  # 100 stops/s x 20 us
    assert doc["summary"]["error"]["target_cpu_s"]["median"] == pytest.approx(5.5)
    assert doc["ratios"]["target_cpu_s error/kill"]["paired"]["median"] == pytest.approx(1.1)
    assert doc["ratios"]["wall_s kill/none"]["of_medians"] == pytest.approx(1.1)
    assert doc["ratios"]["wall_s error/kill"]["paired"]["median"] == pytest.approx(1.0)


@pytest.mark.bpf
def test_bench_error_action_traces_only_under_error() -> None:
    """bench/bench_error_action.py, tiny: under `action: error` the kernel says the Go process is traced
    (/proc TracerPid) and gohook counted stops; under `action: kill` and without gohook it is not; every
    configuration served the requests asked for and did the work, with CPU time measured for each."""
    _need_root()
    if not gofixtures.toolchains():
        pytest.skip("no Go toolchain installed: run scripts/setup.sh")
    import json
    import shutil
    import subprocess

    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed: run scripts/setup.sh")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(root / "bench" / "bench_error_action.py"), "--rounds", "1", "--requests",
                          "1000", "--warmup", "100", "--work", "20000000", "--json"], capture_output=True, text=True,
                         check=True, cwd=root).stdout
    doc = json.loads(out)
    http, work = doc["runs"]["http"], doc["runs"]["work"]
    for runs in (http, work):
        assert {c: len(v) for c, v in runs.items()} == {"none": 1, "kill": 1, "error": 1}
        assert runs["error"][0]["tracer_pid"] > 0 and runs["error"][0]["tracer"]["stops"] > 0
        assert runs["kill"][0]["tracer_pid"] == 0 and runs["kill"][0]["tracer"]["stops"] == 0
        assert runs["none"][0]["tracer_pid"] == 0 and "tracer" not in runs["none"][0]
    for config in ("none", "kill", "error"):
        assert http[config][0]["requests"] >= 1000 and http[config][0]["cpu_us_per_request"] > 0
        assert work[config][0]["wall_s"] > 0 and work[config][0]["target_cpu_s"] > 0
    assert doc["summary"]["http"]["ratios"]["cpu_us_per_request error/kill"]["of_medians"] > 0


def test_bench_real_server_ratios_leave_out_rounds_whose_baseline_measured_zero() -> None:
    """CPU is read in clock ticks: a short run of the server alone can measure 0 (CI did, with --requests 5).
    That round has no ratio; with no round left the ratio is None (null), not a crash of the bench."""
    import bench_real_server as rs

    assert rs.per_round_ratios([0.02, 0.03, 0.05], [0.01, 0.0, 0.02]) == [2.0, 2.5]
    assert rs.median_or_none(rs.per_round_ratios([0.02], [0.0])) is None
    assert rs.median_or_none(rs.per_round_ratios([0.02, 0.03, 0.06], [0.01, 0.01, 0.02])) == 3.0
    assert rs.ratio_text(None).startswith("n/a") and rs.ratio_text(1.25) == "x1.250"


def test_bench_real_server_measures_every_configuration() -> None:
    """bench/bench_real_server.py, tiny: node_exporter learned, then scraped alone, under enforcement and under
    action error; each configuration measured (the script itself fails if the learned policy killed)."""
    _need_root()
    import json
    import subprocess

    import bench_real_server as rs

    if not rs.EXPORTER.exists():
        raise AssertionError(f"{rs.EXPORTER} missing: scripts/setup.sh fetches it")
    done = subprocess.run([sys.executable, str(Path(rs.__file__)), "--rounds", "1", "--scrapes", "20", "--json"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(done.stdout)
    assert set(doc["cpu_ms_per_scrape"]) == {"none", "enforce", "error"}
    assert all(v > 0 for v in doc["wall_ms_per_scrape"].values()), doc


@pytest.mark.bpf
def test_bench_real_server_etcd_answers_every_request_in_every_configuration() -> None:
    """bench/bench_real_server.py --server etcd, tiny: etcd learned, then alone, enforced and under action
    error, each answering every put and range of the warm-up and of the measured requests with 200 (a kill or
    a denial would have failed requests or made the script exit non-zero); gohook's summary read per run."""
    _need_root()
    import json
    import subprocess

    import bench_real_server as rs

    etcd = rs.SERVERS["etcd"]
    if not etcd.binary.exists():
        raise AssertionError(f"{etcd.binary} missing: scripts/setup.sh fetches it")
    requests = 5
    done = subprocess.run([sys.executable, str(Path(rs.__file__)), "--server", "etcd", "--rounds", "1",
                           "--requests", str(requests), "--json"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(done.stdout)
    configs = {"none", "enforce", "error"}
    assert doc["server"] == "etcd" and doc["requests"] == requests and doc["rounds"] == 1
    assert set(doc["cpu_ms_per_request"]) == configs and set(doc["cpu_ratio_to_none"]) == {"enforce", "error"}
    assert all(v > 0 for v in doc["wall_ms_per_request"].values()), doc
    assert all(s["median"] > 0 and s["min"] <= s["median"] <= s["max"]
               for s in doc["wall_ms_per_request_spread"].values()), doc
    # a put and a range per request, warm-up included, all 200
    assert doc["statuses"] == {c: [{"200": 2 * (etcd.warmup + requests)}] for c in configs}, doc["statuses"]
    assert all(len(v) == 1 and v[0] > 0 for v in doc["hooked_calls_per_run"].values()), doc
    assert all(len(v) == 1 and v[0].startswith(("on", "off")) for v in doc["sentinel"].values()), doc
    assert doc["learn"]["hooked_calls"] > 0 and doc["learn"]["fired"], doc["learn"]


@pytest.mark.bpf
def test_bench_agent_measures_every_case() -> None:
    """bench/bench_agent.py, one round: every Go case was killed at its first call (the bench exits non-zero
    otherwise), the probed file was never held, and each held case has its hold measured."""
    _need_root()
    if len(gofixtures.toolchains()) < 2:
        pytest.skip("needs two Go toolchains: run scripts/setup.sh")
    import json
    import subprocess

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(root / "bench" / "bench_agent.py"), "--rounds", "1", "--json"],
                         capture_output=True, text=True, check=True, cwd=root).stdout
    doc = json.loads(out)
    assert {k: len(v) for k, v in doc["raw_ms"].items()} == {
        "probed": 1, "copy": 1, "rebuild": 1, "unknown": 1, "unknown_hold": 1, "known": 1, "none": 1}
    assert all(v[0] > 0 for v in doc["raw_ms"].values())
    # copy, rebuild, unknown and the first exec of the "known" file (its verdict then cached); never the probed file
    assert doc["summary"]["agent_holds"]["count"] == 4


def test_bench_inspect_real_reports_a_row_per_binary_and_the_target() -> None:
    """One run of bench/bench_inspect_real.py on the wheel's shfmt: a row with its module count, a cached run
    equal to the fresh one, and the target column (its value is the machine's: not asserted)."""
    import subprocess

    shfmt = gofixtures.real_binary_path("shfmt")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(root / "bench" / "bench_inspect_real.py"), "--repeat", "1", str(shfmt)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    (row,) = [line for line in out.stdout.splitlines() if line.startswith("| shfmt |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert int(cells[2]) >= 2 and cells[-2] == "yes" and cells[-1] in ("yes", "no")
