"""The workload binary (testdata/go/perfapp) and a private workspace to run it from.

Uprobes are per file and system-wide, and other engineers run live tests on
this machine at the same time: every probe of the evaluation is attached to
a private copy of the binary in a temporary directory, never to the build
output. The upstream service of the HTTP workload runs from a second copy
that is never probed.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for _p in (ROOT / "tests", ROOT):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import gofixtures  # noqa: E402

PERFAPP = gofixtures.FIXTURES["perfapp"]

#: Modules of perfapp and what each needs (testdata/go/perfapp): the policy
#: allows exactly this, so every hooked call is decided "allow" after a full
#: attribution, and any attribution error would kill the workload.
POLICY = """\
# Allows everything perfapp does (bench/evaluate.py); anything else is killed.
version: 1
action: kill
attribution: {attribution}
unattributed: allow
default: []
modules:
  # files.write: the -ready file the service writes once it listens
  example.com/perfapp: [files.read, files.write, network.listen]
  github.com/acme/envconfig: [env.read]
  github.com/acme/upclient: [network.connect]
  # files.write: os/exec opens /dev/null for writing, for the child's stdout
  github.com/acme/perfwork: [files.read, files.write, env.read, network.connect, network.listen, exec]
"""

#: Files the HTTP service serves: (name, size in bytes).
SERVED_FILES = (("small.txt", 512), ("page.html", 4096), ("asset.bin", 16384))


def build_perfapp() -> Path:
    """The perfapp binary built (or reused) by the test suite's fixture builder, with the newest Go."""
    chains = gofixtures.toolchains()
    if not chains:
        raise gofixtures.FixtureError("no Go toolchain installed: run scripts/setup.sh")
    newest = max(chains, key=lambda t: t.release)
    return gofixtures.build(newest, PERFAPP.name)


@dataclass
class Workspace:
    """A private temporary directory with the probed copy, the upstream copy, served files and policies."""

    root: Path
    app: Path  # every probe attaches to this copy
    upstream: Path  # never probed
    files: Path
    policy: Path  # caller attribution
    stack_policy: Path  # the same with stack attribution

    @classmethod
    def create(cls, source: Path, base: str | None = None) -> Workspace:
        root = Path(tempfile.mkdtemp(prefix="gohook-perf-", dir=base))
        app, upstream = root / "perfapp", root / "perfapp-upstream"
        shutil.copy2(source, app)
        shutil.copy2(source, upstream)
        files = root / "files"
        files.mkdir()
        for name, size in SERVED_FILES:
            (files / name).write_bytes(os.urandom(size))
        policy, stack_policy = root / "policy.yaml", root / "policy-stack.yaml"
        policy.write_text(POLICY.format(attribution="caller"))
        stack_policy.write_text(POLICY.format(attribution="stack"))
        return cls(root, app, upstream, files, policy, stack_policy)

    def copy_of(self, source: Path, name: str) -> Path:
        """A private copy of another binary (attach-latency targets)."""
        dest = self.root / name
        shutil.copy2(source, dest)
        return dest

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
