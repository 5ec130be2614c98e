"""Real third-party Go programs (issue 17 §8), live, each fetched by scripts/setup.sh with a pinned sha256:
Debian's prometheus-node-exporter 1.5.0 (Go 1.19, cgo, stripped), Debian's etcd-server 3.4.23 (Go 1.19, cgo,
stripped, GOPATH-built: no dependency in its build info) and the shfmt 3.14.1 of the PyPI wheel shfmt-py 4.2.0
(Go 1.27, static, with full module build info).

A new user's path, with scripted traffic on 127.0.0.1 only: inspect each (every non-std function attributed to a
module `go version -m` lists, the function list against Go's debug/gosym); learn a policy while the exporter is
scraped, enforce that policy while it is scraped again (no false kill: every scrape answered, no violation,
nothing killed), and enforce a policy that withholds one file with `action: error` (issue 15): that collector
fails with EPERM, the exporter reports it as a failed scrape of that collector and keeps serving every other
one. etcd: learn twice with the same requests in two orders (the same capabilities per module both times), then
enforce while they run in a third order (every request served, nothing killed). shfmt: learn on one script,
enforce on others (the same exit status and output as without gohook).
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gofixtures
import pytest
import yaml
from attach_helpers import private_copy
from elftools.elf.elffile import ELFFile

pytestmark = pytest.mark.bpf

CACHE = gofixtures.REAL_CACHE
NODE_EXPORTER = gofixtures.REAL_BINARIES["node_exporter"]
ETCD = gofixtures.REAL_BINARIES["etcd"]
SHFMT = gofixtures.REAL_BINARIES["shfmt"]
RUN_SECONDS = 25  # gohook's --duration: attach, start, three scrapes, stop
SCRAPES = 3


@pytest.fixture(scope="module", autouse=True)
def _root() -> None:
    gofixtures.require_root("uprobes on a real server")


def fetched(binary: Path) -> Path:
    """binary, which scripts/setup.sh fetches: a loud failure in CI when it is missing, a skip elsewhere."""
    if not binary.exists():
        if gofixtures.in_ci():
            raise AssertionError(f"{binary} missing: scripts/setup.sh fetches it")
        pytest.skip(f"{binary} missing: run scripts/setup.sh")
    return binary


@pytest.fixture(scope="module")
def exporter() -> Path:
    return fetched(NODE_EXPORTER)


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


RAW_ENTRIES = ("syscall.Syscall", "syscall.Syscall6", "syscall.RawSyscall", "syscall.RawSyscall6")


def raw_callers(binary: Path, modules: Iterable[str]) -> set[str]:
    """The modules (of those given) with a function, by debug/gosym's names, that CALLs a raw system-call
    function directly, or an assembly stub that jumps to one: capstone over the function's bytes (pyelftools
    maps addresses to the file)."""
    import capstone
    from elftools.elf.elffile import ELFFile

    text = text_section(binary)
    theirs = gofixtures.oracle(binary, text)["functions"]
    # debug/gosym's entries count from .text; in a cgo binary the functions start a constant further on, which
    # the first function's name finds in gohook's own table (the other test checks the shift is one constant)
    ours = {str(f["name"]): int(f["entry"]) for f in gohook_json("symbols", str(binary))["functions"]}
    first = min(theirs, key=lambda f: int(f["entry"]))
    shift = ours[str(first["name"])] - int(first["entry"])
    fns = [{**f, "entry": int(f["entry"]) + shift, "end": int(f["end"]) + shift} for f in theirs]
    data = binary.read_bytes()
    with binary.open("rb") as f:
        segments = [(s["p_vaddr"], s["p_offset"], s["p_filesz"]) for s in ELFFile(f).iter_segments()
                    if s["p_type"] == "PT_LOAD"]

    def read(vaddr: int, size: int) -> bytes:
        for va, off, sz in segments:
            if va <= vaddr < va + sz:
                return data[off + vaddr - va:off + vaddr - va + size]
        return b""

    raw = {int(f["entry"]) for f in fns if f["name"] in RAW_ENTRIES}
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    # an assembly stub whose first instruction jumps to one of them (x/sys's unix.Syscall: `JMP syscall·Syscall`)
    # leaves its caller's return address on the stack: the kernel charges the stub's caller, like a direct call
    for f in fns:
        first = next(md.disasm(read(int(f["entry"]), 16), int(f["entry"])), None)
        if first is not None and first.mnemonic == "jmp" and first.op_str.startswith("0x") \
                and int(first.op_str, 16) in raw:
            raw.add(int(f["entry"]))
    out = set()
    for module in modules:
        head, _, last = module.rpartition("/")
        escaped = f"{head}/{last.replace('.', '%2e')}" if head else module  # the linker's symbol spelling
        for f in fns:
            name = str(f["name"])
            if not any(name.startswith(m + "/") or name.startswith(m + ".") for m in {module, escaped}):
                continue
            entry, end = int(f["entry"]), int(f["end"])
            for insn in md.disasm(read(entry, end - entry), entry):
                # a CALL, or the JMP of an assembly stub (x/sys's unix.Syscall jumps to syscall.Syscall)
                if insn.mnemonic in ("call", "jmp") and insn.op_str.startswith("0x") and int(insn.op_str, 16) in raw:
                    out.add(module)
                    break
            if module in out:
                break
    return out


def unexplained_grants(binary: Path, learned: Path) -> dict[str, list[str]]:
    """Issue 17 §4's differential: what learn saw each module use, static analysis says it can reach, or it names
    the exception: a system call the module makes itself (a gap listing its number and class: the kernel charges
    the number's capability; a class decided by arguments is its family's worst case), or calls it cannot resolve
    (an indirect_calls gap: interfaces, closures, function values). The numbers of its raw calls (syscall.Syscall*,
    x/sys's unix.Syscall*: the raw_syscall gap of the module's call sites, address 0) explain nothing: static
    analysis puts what the kernel charges them in the reach itself. The learned grants left unexplained."""
    report = gohook_json("inspect", str(binary))
    reach = {m["path"]: set(m["capabilities"]) for m in report["modules"]}
    classes: dict[str, set[str]] = {}
    indirect = set()
    for gap in report["gaps"]:
        if gap["kind"] == "raw_syscall" and not gap["address"]:
            continue  # the numbers of its raw calls: charged in the reach
        classes.setdefault(gap["module"], set()).update(sc["class"] for sc in gap.get("syscalls", ()))
        if gap["kind"] == "indirect_calls":
            indirect.add(gap["module"])
    unexplained = {}
    for module, caps in granted(learned).items():
        if module == "std:init":
            continue
        extra = caps - reach.get(module, set()) - {"action"}
        families = {c.split(".")[0] for c in classes.get(module, ())}
        left = {c for c in extra if c not in classes.get(module, ()) and c.split(".")[0] not in families}
        if left and module not in indirect:
            unexplained[module] = sorted(left)
    return unexplained


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
    # `syscall` exactly where module code calls a raw system-call function itself, as the kernel charges it, and
    # not through std's own fcntl (issue 17 §4); the oracle: direct CALLs found by capstone in the functions Go's
    # debug/gosym names, to any function named syscall.Syscall* / RawSyscall* (the ABI0 wrapper or the Go one)
    assert {m for m, caps in reaching.items() if "syscall" in caps} == raw_callers(exporter, reaching), reaching
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
    unexplained = unexplained_grants(binary, learned)
    assert unexplained == {}, unexplained

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


# --- every real binary: inspect and symbols against go version -m and debug/gosym --------------------------

REAL_BINARIES = {"prometheus-node-exporter": NODE_EXPORTER, "etcd": ETCD, "shfmt": SHFMT}


def gohook_json(*args: str) -> dict[str, Any]:
    """`gohook ARGS --json` as a document; it must exit 0 (a crash is a failure of its own)."""
    done = subprocess.run([sys.executable, "-m", "gohook", *args, "--json"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, (args, done.stderr[-3000:])
    return dict(json.loads(done.stdout))


def text_section(binary: Path) -> int:
    """The address of .text (pyelftools): where a stripped Go binary's runtime.text is, for the oracle."""
    with open(binary, "rb") as f:
        return int(ELFFile(f).get_section_by_name(".text")["sh_addr"])


def listed_modules(build_info: dict[str, Any]) -> set[str]:
    """The module paths `go version -m` lists: the main path and module, every dep and its replacement."""
    listed = {build_info["path"], build_info["main"]["path"]}
    for dep in build_info["deps"]:
        listed.add(dep["path"])
        if dep["replace"]:
            listed.add(dep["replace"]["path"])
    return listed - {""}


def owns(module: str, function: str) -> bool:
    """Whether function's name is in module's package tree (`module/...` or `module.`), with the prefixes the
    compiler puts before a package path in generated names (type equality functions) taken off and the linker's
    escape of a dot in the last path element (`gopkg.in/yaml%2ev2.Marshal`) undone."""
    function = function.replace("%2e", ".")
    for prefix in ("type:.eq.", "type..eq.", "type:.hash.", "type..hash."):
        function = function.removeprefix(prefix)
    function = function.lstrip("(*[]").removeprefix("*")
    return function.startswith((module + "/", module + "."))


@pytest.mark.parametrize("name", sorted(REAL_BINARIES))
def test_inspect_attributes_every_non_std_function_to_a_listed_module(name: str) -> None:
    """inspect and symbols run through the whole binary without a crash; the functions gohook lists are those
    Go's debug/gosym reads (names, entries); every function gohook does not call std belongs to a module `go
    version -m` lists. A binary built in module mode (shfmt) lists its dependencies: the module must be one of
    them, and for a function whose source file says `module@version/` (-trimpath) exactly that module. A
    GOPATH-built Debian binary (its build info names the main module only) gets the next best oracle: the
    function's name lies in that module's package tree, main.* in the main module, and inspect marks every
    other module as inferred."""
    binary = fetched(REAL_BINARIES[name])
    report = gohook_json("inspect", str(binary))
    symbols = gohook_json("symbols", str(binary))
    info = gofixtures.go_version_m(gofixtures.oracle_toolchain(), binary)
    listed = listed_modules(info)
    module_mode = bool(info["deps"])
    assert report["binary"]["main_module"] == info["path"] or report["binary"]["main_module"] == info["main"]["path"]

    # (the oracle reads entries relative to .text; in a cgo binary runtime.text lies a little further on: the
    # same functions, shifted by one constant)
    oracle = gofixtures.oracle(binary, text_section(binary))
    ours = sorted(symbols["functions"], key=lambda f: int(f["entry"]))
    theirs = sorted(oracle["functions"], key=lambda f: int(f["entry"]))
    assert [f["name"] for f in ours] == [f["name"] for f in theirs]
    assert len({int(a["entry"]) - int(b["entry"]) for a, b in zip(ours, theirs, strict=True)}) == 1
    files = {(a["name"], a["entry"]): b["file"] for a, b in zip(ours, theirs, strict=True)}

    wrong: list[tuple[str, str, str]] = []
    for f in symbols["functions"]:
        module, fname, file = f["module"], f["name"], files[(f["name"], f["entry"])]
        if module == "std":
            if fname.startswith("main.") or "@" in file:  # the main package, a module's file: never std
                wrong.append((fname, module, file))
            continue
        unlisted = module not in listed and not (not module_mode and owns(module, fname))
        main_elsewhere = fname.startswith("main.") and module not in (info["path"], info["main"]["path"])
        other_file = module_mode and "@" in file and file.split("@", 1)[0] != module
        other_tree = not module_mode and module != info["path"] and not owns(module, fname)
        if unlisted or main_elsewhere or other_file or other_tree:
            wrong.append((fname, module, file))
    assert wrong == [], (len(wrong), wrong[:20])

    non_std = {f["module"] for f in symbols["functions"]} - {"std"}
    assert non_std, "an empty attribution"
    for m in report["modules"]:
        assert m["path"] in non_std or m["functions"] == 0, m["path"]
        if module_mode:
            assert m["path"] in listed and not m["inferred"], (m["path"], m["inferred"])
        else:
            assert m["inferred"] or m["path"] == info["path"], m["path"]  # (no `mod` line: the main one may be too)
    assert sum(m["functions"] for m in report["modules"]) > 0


# --- etcd: learn twice in two orders, enforce in a third ----------------------------------------------------

ETCD_SECONDS = 20  # gohook's --duration: attach (~6 s), start, the requests, stop


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def etcd_step(base: str, step: str) -> list[int]:
    """One self-contained piece of traffic (its outcome does not depend on the order): the HTTP statuses."""
    def call(method: str, path: str, body: bytes | None = None, ctype: str | None = None) -> tuple[int, str]:
        req = urllib.request.Request(base + path, data=body, method=method)
        if ctype:
            req.add_header("Content-Type", ctype)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()

    if step == "v3":  # the gRPC gateway: put, then read back
        put = call("POST", "/v3/kv/put", json.dumps({"key": b64("k3"), "value": b64("v3")}).encode())
        got = call("POST", "/v3/kv/range", json.dumps({"key": b64("k3")}).encode())
        assert b64("v3") in got[1], got
        return [put[0], got[0]]
    if step == "v2":  # the v2 keys API (--enable-v2): put, then read back
        put = call("PUT", "/v2/keys/k2", b"value=v2", "application/x-www-form-urlencoded")
        got = call("GET", "/v2/keys/k2")
        assert '"value":"v2"' in got[1], got
        return [put[0], got[0]]
    status, body = call("GET", "/" + step)
    assert body, step
    return [status]


def serve_etcd(binary: Path, ports: tuple[int, int], workdir: Path, order: list[str], *args: str) -> Served:
    """`gohook attach ... -- etcd` (one member on 127.0.0.1, a fresh data directory at the same path each time)
    while a thread waits for /health, then runs the steps in order: Served.scrapes holds "step:statuses"."""
    client, peer = (f"http://127.0.0.1:{p}" for p in ports)
    data = workdir / "etcd-data"
    shutil.rmtree(data, ignore_errors=True)
    served = Served()
    err_path = workdir / f"gohook-etcd-{len(list(workdir.glob('gohook-etcd-*')))}.stderr"

    def traffic() -> None:
        deadline = time.monotonic() + ETCD_SECONDS - 4
        while time.monotonic() < deadline:
            try:
                etcd_step(client, "health")
                break
            except OSError:
                time.sleep(0.3)
        for step in order:
            try:
                served.scrapes.append(f"{step}:{etcd_step(client, step)}")
            except (OSError, AssertionError) as e:
                served.scrapes.append(f"{step}:failed {e!r}")

    with open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "gohook", "attach", "--binary", str(binary), "--json",
                                 "--duration", str(ETCD_SECONDS), *args, "--", str(binary), "--name", "gohook",
                                 "--data-dir", str(data), "--listen-client-urls", client, "--advertise-client-urls",
                                 client, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                                 "--initial-cluster", f"gohook={peer}", "--enable-v2=true"],
                                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
    driver = threading.Thread(target=traffic)
    driver.start()
    out, _ = proc.communicate(timeout=ETCD_SECONDS + 180)
    driver.join()
    served.status = proc.returncode
    served.events = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    served.stderr = err_path.read_text(errors="replace")
    return served


def granted(policy: Path) -> dict[str, set[str]]:
    """The capabilities a policy grants, per module (a module's rule is a list of capabilities or a mapping of
    capability -> arguments)."""
    doc = yaml.safe_load(policy.read_text())
    return {module: set(rule) for module, rule in (doc.get("modules") or {}).items()}


def all_served(served: Served, order: list[str]) -> bool:
    """Every step of order answered, each request with a 2xx status."""
    want = [s.split(":", 1)[0] for s in served.scrapes]
    return want == order and all("failed" not in s and all(200 <= int(c) < 300 for c in
                                                             s.split(":", 1)[1].strip("[]").split(", "))
                                 for s in served.scrapes)


ETCD_ORDERS = (["version", "health", "metrics", "v3", "v2"], ["v2", "v3", "metrics", "health", "version"],
               ["metrics", "v2", "version", "v3", "health"])


@dataclass
class EtcdLearned:
    """Two learn runs of one private copy of etcd on the same ports: the copy, the ports, the policies."""

    binary: Path
    ports: tuple[int, int]
    workdir: Path
    policies: list[Path]


@pytest.fixture(scope="module")
def etcd_learned(tmp_path_factory: pytest.TempPathFactory) -> EtcdLearned:
    """Learn etcd twice, the steps in ETCD_ORDERS[0] then ETCD_ORDERS[1]: each run stopped by gohook with SIGTERM
    (etcd's shutdown path, learned), every request served, no event lost."""
    workdir = tmp_path_factory.mktemp("etcd")
    got = EtcdLearned(private_copy(fetched(ETCD), workdir / "bin"), (free_port(), free_port()), workdir, [])
    for i, order in enumerate(ETCD_ORDERS[:2]):
        out = workdir / f"learned-{i + 1}.yaml"
        learn = serve_etcd(got.binary, got.ports, workdir, order, "--mode", "learn", "-o", str(out))
        assert learn.status == 143, learn.stderr[-3000:]
        assert all_served(learn, order), (learn.scrapes, learn.stderr[-3000:])
        assert "LOSS" not in out.read_text(), out.read_text()
        got.policies.append(out)
    return got


def test_etcd_learned_twice_in_two_orders_grants_the_same(etcd_learned: EtcdLearned) -> None:
    """etcd 3.4 (Debian, GOPATH-built, cgo) serving v2 and v3 (gRPC gateway) requests, /health, /version and
    /metrics: two learn runs with the steps in two orders grant the same capabilities per module."""
    first, second = (granted(p) for p in etcd_learned.policies)
    assert "go.etcd.io/bbolt" in first and "files.write" in first["go.etcd.io/bbolt"], first  # not empty
    assert first == second, {m: (first.get(m), second.get(m)) for m in set(first) | set(second)
                             if first.get(m) != second.get(m)}
    unexplained = unexplained_grants(etcd_learned.binary, etcd_learned.policies[0])  # issue 17 §4's differential
    assert unexplained == {}, unexplained


def test_etcd_enforced_with_the_learned_policy_in_a_third_order(etcd_learned: EtcdLearned) -> None:
    """An enforce run with the first learned policy and the steps in a third order serves every request, with
    no violation and nothing killed. (It found a false kill: etcd's descriptor monitor lstat()s every
    /proc/self/fd/N, and learn kept the numbers it saw; learn now writes /proc/self/fd/*: SELF_DESCRIPTORS.)"""
    order = ETCD_ORDERS[2]
    enforced = serve_etcd(etcd_learned.binary, etcd_learned.ports, etcd_learned.workdir, order,
                          "--policy", str(etcd_learned.policies[0]), "--allow-unmatched")
    assert [e for e in enforced.events if e["decision"] != "allow"] == [], enforced.events
    assert all_served(enforced, order), (enforced.scrapes, enforced.stderr[-3000:])
    assert "0 killed" in enforced.stderr, enforced.stderr[-3000:]


# --- shfmt (PyPI wheel): learn on one script, enforce on others ---------------------------------------------

SCRIPT_LEARN = '#!/bin/sh\nif [ -n "$1" ];then\necho  "hi $1"\nfi\nfor i in 1 2 3; do echo $i ;done\n'
SCRIPT_OTHER = ('f() {\n  local x=$(( 1+2 ))\n      case "$x" in\n 3) echo three;;\n *) echo other ;;\n esac\n}\n'
                'f | while read -r l; do printf "%s\\n" "$l"; done\n')
SCRIPT_BROKEN = "if true; then\necho missing fi\n"


def shfmt_run(binary: Path, script: Path, *gohook: str) -> subprocess.CompletedProcess[str]:
    """`shfmt -i 2 < script`, under `gohook attach ARGS -- ...` when gohook args are given."""
    argv = [str(binary), "-i", "2"]
    if gohook:
        argv = [sys.executable, "-m", "gohook", "attach", "--binary", str(binary), *gohook, "--", *argv]
    with open(script, "rb") as stdin:
        return subprocess.run(argv, stdin=stdin, capture_output=True, text=True, timeout=300)


def test_shfmt_learned_on_one_script_enforced_on_others(tmp_path: Path) -> None:
    """shfmt 3.14.1 (PyPI's shfmt-py 4.2.0, Go 1.27, module build info) formats scripts from stdin: a policy
    learned on one script lets it format another, and reject a broken one, under enforcement with the same
    exit status and output as without gohook, and nothing killed."""
    binary = private_copy(fetched(SHFMT), tmp_path / "bin")
    scripts = {}
    for name, text in (("learn", SCRIPT_LEARN), ("other", SCRIPT_OTHER), ("broken", SCRIPT_BROKEN)):
        scripts[name] = tmp_path / f"{name}.sh"
        scripts[name].write_text(text)
    learned = tmp_path / "learned.yaml"
    learn = shfmt_run(binary, scripts["learn"], "--mode", "learn", "-o", str(learned))
    assert learn.returncode == 0, learn.stderr
    assert 'echo "hi $1"' in learn.stdout and "0 killed" in learn.stderr, (learn.stdout, learn.stderr)
    assert "mvdan.cc/sh/v3" in granted(learned), learned.read_text()
    unexplained = unexplained_grants(binary, learned)  # issue 17 §4's differential
    assert unexplained == {}, unexplained

    for name in ("other", "broken"):
        plain = shfmt_run(binary, scripts[name])
        enforced = shfmt_run(binary, scripts[name], "--policy", str(learned))
        assert plain.returncode == (0 if name == "other" else 1), plain
        assert (enforced.returncode, enforced.stdout) == (plain.returncode, plain.stdout), (enforced, plain)
        assert plain.stderr in enforced.stderr and "0 killed" in enforced.stderr, enforced.stderr
        assert "VIOLATION" not in enforced.stderr.upper().replace("0 VIOLATIONS", ""), enforced.stderr
