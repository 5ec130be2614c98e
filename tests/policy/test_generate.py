"""`gohook policy generate` and `gohook policy check` on a real binary.

The argument scopes are checked against Go source, the oracle: capapp's
dependencies pass a few literals (exec.Command("/bin/true"),
net.Listen("tcp", "127.0.0.1:0")) and many computed arguments; litapp (below,
built by the test with every installed toolchain) passes one literal of each
kind to the functions generate reads, and in `mixed` a literal next to a
computed name and a relative path literal.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gofixtures
import pytest

from gohook.commands.main import main
from gohook.policy.format import CapabilityNames, Policy, parse_policy
from gohook.sites.catalog import load_catalog

VOCAB = CapabilityNames([c.name for c in load_catalog().capabilities])


@pytest.fixture(scope="module")
def capapp() -> Path:
    return gofixtures.build(gofixtures.oracle_toolchain(), "capapp", "default")


def test_generate_allows_exactly_what_inspect_finds(capapp: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.yaml"
    assert main(["policy", "generate", str(capapp), "-o", str(out)]) == 0
    text = out.read_text()
    policy = parse_policy(text, VOCAB, str(out))
    inspected = json.loads(subprocess.run([sys.executable, "-m", "gohook", "inspect", str(capapp), "--json"],
                                          capture_output=True, text=True, check=True).stdout)
    for m in inspected["modules"]:
        if m["functions"]:
            rule = policy.rule_for(m["path"])
            assert rule is not None and rule.allowed == set(m["capabilities"]), m["path"]
    assert policy.default == frozenset() and not policy.deny_unattributed
    # each rule carries its evidence
    assert "# static: files.write via github.com/acme/fileutil.Create -> os.OpenFile (flags 0x242)" in text
    assert "# static: reaches no capability" in text


def test_check_reports_patterns_matching_nothing(capapp: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("version: 1\nmodules:\n  github.com/acme/*: [files.read]\n  github.com/nobody/x: []\n")
    assert main(["policy", "check", str(p)]) == 0
    assert main(["policy", "check", str(p), "--binary", str(capapp)]) == 1
    out = capsys.readouterr().out
    assert f"{p}:4: module 'github.com/nobody/x' matches no module" in out
    assert "github.com/acme/*" not in out


def test_check_bad_policy_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("version: 1\nmodules:\n  a.com/b: [files.raed]\n")
    assert main(["policy", "check", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"gohook: {p}:3: unknown capability 'files.raed' in module a.com/b "
                           "(did you mean files.read?)")


def _scopes(policy: Policy, module: str) -> dict[str, list[str] | None]:
    """module's rule as capability -> pattern texts (None: any argument)."""
    rule = policy.rule_for(module)
    assert rule is not None, module
    out: dict[str, list[str] | None] = dict.fromkeys(rule.capabilities)
    out.update({cap: [p.text for p in pats] for cap, pats in rule.scopes})
    return out


def test_generate_scopes_the_literals_of_capapp(capapp: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.yaml"
    assert main(["policy", "generate", str(capapp), "-o", str(out)]) == 0
    text = out.read_text()
    policy = parse_policy(text, VOCAB, str(out))
    # runner-fork/runner.go: exec.Command("/bin/true").Run(); its os/exec internals open files by computed paths
    runner = _scopes(policy, "github.com/acme/runner")
    assert runner["exec"] == ["/bin/true"]
    assert runner["files.read"] is None and runner["system.read"] is None
    assert "# static: exec /bin/true at github.com/acme/runner.True -> os/exec.Command" in text
    # netclient.go: net.Listen("tcp", "127.0.0.1:0"); net.DialTimeout("tcp", addr, ...) with a parameter
    assert _scopes(policy, "github.com/acme/netclient") == {"network.listen": ["127.0.0.1:0"],
                                                            "network.connect": None}
    assert ("# static: network.connect: any: argument not constant at github.com/acme/netclient.Dial -> "
            "net.DialTimeout") in text
    # telemetry.go: os.Getenv("USER") and os.Getenv("HOME") are literals, but Lookup(name) passes a parameter
    assert _scopes(policy, "github.com/evil/telemetry") == dict.fromkeys(
        ("env.read", "env.write", "files.write", "network.connect"))
    assert ("# static: env.read: any: argument not constant at github.com/evil/telemetry.Lookup -> os.LookupEnv"
            in text)
    # fileutil opens whatever path it is given
    assert _scopes(policy, "github.com/acme/fileutil") == {"files.read": None, "files.write": None}


# litapp: every literal below is what generate must find; `mixed` is what it must not scope.
LITAPP = {
    "go.mod": """module example.com/litapp

go 1.19

require (
\texample.com/envlit v0.0.0
\texample.com/execlit v0.0.0
\texample.com/filelit v0.0.0
\texample.com/mixed v0.0.0
\texample.com/netlit v0.0.0
)

replace (
\texample.com/envlit => ./deps/envlit
\texample.com/execlit => ./deps/execlit
\texample.com/filelit => ./deps/filelit
\texample.com/mixed => ./deps/mixed
\texample.com/netlit => ./deps/netlit
)
""",
    "main.go": """package main

import (
\t"fmt"
\t"os"

\t"example.com/envlit"
\t"example.com/execlit"
\t"example.com/filelit"
\t"example.com/mixed"
\t"example.com/netlit"
)

func main() {
\tif len(os.Args) < 3 {
\t\treturn
\t}
\tswitch os.Args[1] {
\tcase "env":
\t\tfmt.Println(envlit.Read())
\tcase "file":
\t\tfmt.Println(filelit.Read())
\tcase "net":
\t\tfmt.Println(netlit.Connect())
\tcase "exec":
\t\tfmt.Println(execlit.Git())
\tcase "mixed":
\t\tfmt.Println(mixed.Env(os.Args[2]), mixed.Relative())
\t}
}
""",
    "deps/envlit/envlit.go": """// Package envlit reads and sets environment variables named by literals only.
package envlit

import "os"

//go:noinline
func Read() string {
\tv, _ := os.LookupEnv("LITAPP_TOKEN")
\tos.Setenv("LITAPP_MODE", "on")
\treturn os.Getenv("LITAPP_ENDPOINT") + v
}
""",
    "deps/filelit/filelit.go": """// Package filelit opens files named by literals only.
package filelit

import "os"

//go:noinline
func Read() error {
\tif _, err := os.ReadFile("/etc/litapp/config.yaml"); err != nil {
\t\treturn err
\t}
\tf, err := os.Open("/etc/hostname")
\tif err != nil {
\t\treturn err
\t}
\tf.Close()
\treturn os.WriteFile("/var/lib/litapp/state", []byte("ok\\n"), 0o600)
}
""",
    "deps/netlit/netlit.go": """// Package netlit dials and listens on literal addresses and a Unix socket path.
package netlit

import (
\t"net"
\t"time"
)

//go:noinline
func Connect() error {
\tif c, err := net.Dial("tcp", "127.0.0.1:4317"); err == nil {
\t\tc.Close()
\t}
\tif c, err := net.DialTimeout("udp", "[::1]:53", time.Second); err == nil {
\t\tc.Close()
\t}
\tif c, err := net.Dial("unix", "/run/litapp.sock"); err == nil {
\t\tc.Close()
\t}
\tln, err := net.Listen("tcp", ":8080")
\tif err != nil {
\t\treturn err
\t}
\treturn ln.Close()
}
""",
    "deps/execlit/execlit.go": """// Package execlit runs a program named by an absolute literal path.
package execlit

import "os/exec"

//go:noinline
func Git() error {
\treturn exec.Command("/usr/bin/git", "version").Run()
}
""",
    "deps/mixed/mixed.go": """// Package mixed passes one literal and one computed name, and a relative path literal.
package mixed

import "os"

//go:noinline
func Env(name string) string {
\treturn os.Getenv("MIXED_FIXED") + os.Getenv(name)
}

//go:noinline
func Relative() error {
\t_, err := os.ReadFile("conf/app.yaml")
\treturn err
}
""",
}


def _build_litapp(toolchain: gofixtures.Toolchain, root: Path) -> Path:
    """Write litapp under root and build it with `toolchain` (no network: local replaces only)."""
    for rel, text in LITAPP.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for mod in ("envlit", "execlit", "filelit", "mixed", "netlit"):
        (root / "deps" / mod / "go.mod").write_text(f"module example.com/{mod}\n\ngo 1.19\n")
    env = {**gofixtures._clean_env(), "GOFLAGS": "-mod=mod", "GOPROXY": "off", "CGO_ENABLED": "0",
           "GOCACHE": str(gofixtures._gocache(toolchain)), "GOPATH": str(root / "gopath")}
    out = root / "litapp"
    proc = subprocess.run([str(toolchain.go), "build", "-o", str(out), "."], cwd=root, env=env,
                          capture_output=True, text=True, timeout=gofixtures.BUILD_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module", params=gofixtures.toolchains(), ids=str)
def litapp(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_litapp(request.param, tmp_path_factory.mktemp(f"litapp-{request.param}"))


def test_generate_finds_the_literals_of_litapp(litapp: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.yaml"
    assert main(["policy", "generate", str(litapp), "-o", str(out)]) == 0
    text = out.read_text()
    policy = parse_policy(text, VOCAB, str(out))
    assert _scopes(policy, "example.com/envlit") == {"env.read": ["LITAPP_ENDPOINT", "LITAPP_TOKEN"],
                                                     "env.write": ["LITAPP_MODE"]}
    assert _scopes(policy, "example.com/filelit") == {"files.read": ["/etc/hostname", "/etc/litapp/config.yaml"],
                                                      "files.write": ["/var/lib/litapp/state"]}
    # ":8080" is the unspecified address; the IPv6 literal keeps its brackets; the Unix socket its path
    assert _scopes(policy, "example.com/netlit") == {
        "network.connect": ["127.0.0.1:4317", "[::1]:53", "unix:/run/litapp.sock"],
        "network.listen": ["0.0.0.0:8080"]}
    assert _scopes(policy, "example.com/execlit")["exec"] == ["/usr/bin/git"]
    # a computed name next to a literal, and a relative literal: any, saying why
    assert _scopes(policy, "example.com/mixed") == {"env.read": None, "files.read": None}
    assert "# static: env.read: any: argument not constant at example.com/mixed.Env -> os.Getenv" in text
    assert ("# static: files.read: any: constant 'conf/app.yaml' at example.com/mixed.Relative -> os.ReadFile: "
            "'conf/app.yaml' is relative") in text
    assert "# static: files.read /etc/hostname at example.com/filelit.Read -> os.OpenFile" in text  # os.Open inlined
    assert "# static: env.read LITAPP_TOKEN at example.com/envlit.Read -> os.LookupEnv" in text
    # every constant is a literal of the Go source above, and nothing else is scoped
    literals = {"LITAPP_ENDPOINT", "LITAPP_TOKEN", "LITAPP_MODE", "/etc/hostname", "/etc/litapp/config.yaml",
                "/var/lib/litapp/state", "127.0.0.1:4317", "[::1]:53", "unix:/run/litapp.sock", "0.0.0.0:8080",
                "/usr/bin/git"}
    std_constants = {"PATH", "/dev/null"}  # os/exec: lookPath's os.Getenv("PATH"), Start's os.DevNull (some releases)
    for rule in policy.modules:
        for _cap, pats in rule.scopes:
            assert {p.text for p in pats} <= literals | std_constants, rule.pattern


def test_generated_scopes_allow_what_the_program_does(litapp: Path, tmp_path: Path) -> None:
    """The patterns match the arguments the calls pass, in the form events print them."""
    out = tmp_path / "p.yaml"
    assert main(["policy", "generate", str(litapp), "-o", str(out)]) == 0
    policy = parse_policy(out.read_text(), VOCAB, str(out))
    calls = [("example.com/envlit", "env.read", "LITAPP_TOKEN"), ("example.com/envlit", "env.write", "LITAPP_MODE"),
             ("example.com/filelit", "files.read", "/etc/hostname"),
             ("example.com/filelit", "files.write", "/var/lib/litapp/state"),
             ("example.com/netlit", "network.connect", "127.0.0.1:4317"),
             ("example.com/netlit", "network.connect", "[::1]:53"),
             ("example.com/netlit", "network.connect", "unix:/run/litapp.sock"),
             ("example.com/netlit", "network.listen", ":8080"),  # listenTCP's laddr of ":8080" prints so
             ("example.com/execlit", "exec", "/usr/bin/git")]
    for module, cap, arg in calls:
        pats = policy.scopes_of(module)[cap]
        assert any(p.matches(arg) for p in pats), (module, cap, arg)
    assert not any(p.matches("OTHER") for p in policy.scopes_of("example.com/envlit")["env.read"])
    assert not any(p.matches("10.0.0.1:4317") for p in policy.scopes_of("example.com/netlit")["network.connect"])
