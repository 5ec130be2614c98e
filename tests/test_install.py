"""gohook installs as a wheel and works from it: `gohook doctor` and a live `gohook attach` kill, outside the checkout.

The editable install of the project venv hides packaging mistakes: a C file
or the catalog left out of the package data, a module importing the source
tree, a missing dependency. Here the project is built into a wheel (from a
copy of the sources in a temporary directory, so that setuptools' build/ and
egg-info never land in the checkout), installed into a fresh venv made like
the one scripts/setup.sh makes (Debian's /usr/bin/python3 with system site
packages, for bcc; the declared dependencies come from the package index, as
for a user), and run from a directory outside the checkout:

- the wheel holds the BPF C (every .c/.h of gohook/bpf/c) and the catalog, and no tests;
- `import gohook` in the new venv finds the installed files, not the checkout;
- `gohook doctor` exits 0 (root: every check passes, BPF included);
- `gohook attach ... -- capapp create FILE` with a policy that does not grant
  github.com/acme/fileutil files.write: the program is killed (exit status
  137), FILE never appears and the deny event names the module.

Building and installing take about a minute: once per test session. Runs as
root; in CI (CI=true) nothing here skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import gofixtures
import pytest
from attach_helpers import STATUS_KILLED, policy_file, private_copy

pytestmark = pytest.mark.bpf

REPO_ROOT = gofixtures.REPO_ROOT
SYSTEM_PYTHON = Path("/usr/bin/python3")  # Debian's, with python3-bpfcc (scripts/setup.sh)
BUILD_TIMEOUT = 600.0  # seconds: compiling the optional C accelerator on 2 shared cores
INSTALL_TIMEOUT = 600.0  # seconds: the dependencies may come from the package index
ATTACH_TIMEOUT = 300.0

CAPAPP = "example.com/capapp"
FILEUTIL = "github.com/acme/fileutil"
#: capapp's main keeps what it needs; fileutil may read but not write, so `capapp create` is killed
POLICY = {CAPAPP: ["files.read", "env.read"], FILEUTIL: ["files.read"]}


@dataclass(frozen=True)
class Installed:
    """A venv outside the checkout with the gohook wheel installed."""

    venv: Path
    workdir: Path  # a directory outside the checkout to run from

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def gohook(self) -> Path:
        return self.venv / "bin" / "gohook"

    def env(self) -> dict[str, str]:
        """This environment without anything that points Python at the checkout or the project venv."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV")}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        env["PYTHONNOUSERSITE"] = "1"
        return env

    def run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=self.workdir, env=self.env(), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout, check=False)


def _outside_checkout(path: Path) -> Path:
    path = path.resolve()
    assert not path.is_relative_to(REPO_ROOT), f"{path} is inside the checkout {REPO_ROOT}"
    return path


def _checked(proc: subprocess.CompletedProcess[str], what: str) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"{what} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _source_copy(dest: Path) -> Path:
    """The files a build reads (top-level files and the gohook package), without build products."""
    dest.mkdir(parents=True)
    for item in REPO_ROOT.iterdir():
        if item.is_file():
            shutil.copy2(item, dest / item.name)
    shutil.copytree(REPO_ROOT / "gohook", dest / "gohook",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.egg-info"))
    return dest


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gohook's wheel, built without build isolation (setuptools from the project venv) in a temporary copy."""
    base = _outside_checkout(tmp_path_factory.mktemp("gohook-wheel"))
    src = _source_copy(base / "src")
    out = base / "dist"
    _checked(subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                             "--disable-pip-version-check", "-w", str(out), str(src)],
                            cwd=base, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False),
             "pip wheel")
    [built] = out.glob("gohook-*.whl")
    return built


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A fresh venv on Debian's python3 with system site packages (bcc), the wheel and its dependencies."""
    if not SYSTEM_PYTHON.exists():
        gofixtures.loud_skip(f"{SYSTEM_PYTHON} is missing: run scripts/setup.sh")
    base = _outside_checkout(tmp_path_factory.mktemp("gohook-installed"))
    inst = Installed(base / "venv", base / "work")
    inst.workdir.mkdir()
    _checked(subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--system-site-packages", str(inst.venv)],
                            capture_output=True, text=True, timeout=120, check=False), "python3 -m venv")
    _checked(inst.run([str(inst.python), "-m", "pip", "install", "--disable-pip-version-check", str(wheel)],
                      INSTALL_TIMEOUT), "pip install of the wheel")
    return inst


def test_the_wheel_holds_the_c_and_the_catalog_and_no_tests(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    c_files = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "gohook" / "bpf" / "c").rglob("*")
               if p.suffix in (".c", ".h")}
    assert {"gohook/bpf/c/gohook.bpf.c", "gohook/bpf/c/doctor.bpf.c", "gohook/bpf/c/gohook.h"} <= c_files
    assert c_files <= names, sorted(c_files - names)
    assert "gohook/sites/catalog.yaml" in names
    assert "gohook/sites/syscalls.yaml" in names
    assert "gohook/commands/main.py" in names and "gohook/bpf/selftest.py" in names
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n]
    assert all(n.startswith(("gohook/", "gohook-")) for n in names), sorted(names)[:20]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as zf:
        assert "gohook = gohook.commands.main:main_entry" in zf.read(entry_points).decode()


def test_the_new_venv_imports_the_installed_files_not_the_checkout(installed: Installed) -> None:
    out = _checked(installed.run([str(installed.python), "-c",
                                  "import gohook, gohook.bpf.sources as s, gohook.sites.catalog as c\n"
                                  "print(gohook.__file__); print(s.c_dir()); print(c.__file__)"], 60), "import")
    paths = [Path(line) for line in out.stdout.splitlines()]
    assert len(paths) == 3, out.stdout
    for path in paths:
        assert path.resolve().is_relative_to(installed.venv.resolve()), f"{path} is not in {installed.venv}"
        assert not path.resolve().is_relative_to(REPO_ROOT), f"{path} comes from the checkout"
    assert (paths[1] / "doctor.bpf.c").is_file() and (paths[1] / "gohook.h").is_file()
    assert installed.gohook.is_file() and installed.gohook.read_text().startswith(f"#!{installed.python}")


def test_installed_gohook_doctor_exits_0(installed: Installed) -> None:
    gofixtures.require_root("gohook doctor's BPF checks")
    res = installed.run([str(installed.gohook), "doctor"], 120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[-1].startswith("doctor: attach can work"), res.stdout


def test_installed_gohook_attach_kills_a_denied_dependency_call(installed: Installed, tmp_path: Path) -> None:
    gofixtures.require_root("live attach tests")
    toolchain = gofixtures.live_toolchain("1.27")
    app = private_copy(gofixtures.build(toolchain, "capapp", "default"), tmp_path / "bin", "capapp-installed")
    policy = policy_file(tmp_path / "no-write.yaml", POLICY)
    created = tmp_path / "out" / "created-by-capapp.txt"
    created.parent.mkdir()
    res = installed.run([str(installed.gohook), "attach", "--binary", str(app), "--policy", str(policy), "--json",
                         "--", str(app), "create", str(created)], ATTACH_TIMEOUT)
    assert res.returncode == STATUS_KILLED, f"exit status {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert not created.exists(), f"{created} was created although the call was denied"
    events = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    denies = [e for e in events if e.get("decision") == "deny"]
    assert denies, f"no deny event:\n{res.stdout}\n{res.stderr}"
    assert (denies[0]["capability"], denies[0]["module"]) == ("files.write", FILEUTIL), denies[0]
