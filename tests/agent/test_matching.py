"""gohook.agent.identity and .matching on real Go builds: build IDs against `go tool buildid`, main modules
against `go version -m`, copies, renames and non-Go files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import gofixtures
import pytest

from gohook.agent.identity import FileVersion, identify
from gohook.agent.matching import BinaryRefs, binary_names, choose
from gohook.agent.policies import PolicyDir
from gohook.policy.format import CapabilityNames

VOCAB = CapabilityNames(["files.read", "exec"])


def _toolchain() -> gofixtures.Toolchain:
    tcs = gofixtures.toolchains()
    if not tcs:
        gofixtures.loud_skip("no Go toolchain: run scripts/setup.sh")
    return tcs[-1]


def _main_module(tc: gofixtures.Toolchain, binary: Path) -> str:
    out = subprocess.run([str(tc.go), "version", "-m", str(binary)], capture_output=True, text=True, check=True,
                         env=gofixtures.go_env(tc)).stdout
    return next(line.split("\t")[2] for line in out.splitlines() if line.startswith("\tmod\t"))


def _policies(tmp_path: Path, **files: str) -> PolicyDir:
    d = tmp_path / "policies"
    d.mkdir()
    for name, match in files.items():
        (d / f"{name}.yaml").write_text(f"version: 1\nmatch:\n{match}modules: {{}}\n")
    pd = PolicyDir(d, VOCAB)
    assert not pd.scan().errors
    return pd


def test_identity_of_a_go_build_and_of_a_non_go_file(tmp_path: Path) -> None:
    tc = _toolchain()
    binary = gofixtures.build(tc, "denyapp", "stripped")
    prog = identify(binary)
    oracle = subprocess.run([str(tc.go), "tool", "buildid", str(binary)], capture_output=True, text=True,
                            check=True, env=gofixtures.go_env(tc)).stdout.strip()
    assert prog.build_id == oracle and prog.main_module == _main_module(tc, binary)
    assert prog.version == FileVersion.of_path(binary)
    sh = identify("/bin/sh")
    assert not sh.is_go and sh.build_id is None
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x7fELF not really")
    assert not identify(junk).is_go


def test_binary_policy_matches_the_file_and_its_copies_not_another_program(tmp_path: Path) -> None:
    tc = _toolchain()
    app = tmp_path / "app"
    shutil.copy(gofixtures.build(tc, "denyapp", "default"), app)
    other = gofixtures.build(tc, "traceapp", "default")
    pd = _policies(tmp_path, app=f"  binary: {app}\n")
    refs = BinaryRefs()
    copy = tmp_path / "renamed-copy"
    shutil.copy(app, copy)
    assert choose(pd.in_force.values(), identify(app), refs) is not None
    chosen = choose(pd.in_force.values(), identify(copy), refs)  # same build ID, another inode and name
    assert chosen is not None and Path(chosen.path).name == "app.yaml"
    assert choose(pd.in_force.values(), identify(other), refs) is None
    assert choose(pd.in_force.values(), identify("/bin/sh"), refs) is None
    assert binary_names(pd.in_force.values()) == {"app"}


def test_the_most_specific_policy_wins(tmp_path: Path) -> None:
    tc = _toolchain()
    binary = gofixtures.build(tc, "denyapp", "default")
    prog = identify(binary)
    pd = _policies(tmp_path, by_module=f"  main_module: {prog.main_module}\n",
                   by_path=f"  binary: {binary}\n", by_id=f'  build_id: "{prog.build_id}"\n')
    refs = BinaryRefs()
    assert Path(choose(pd.in_force.values(), prog, refs).path).name == "by_id.yaml"  # type: ignore[union-attr]
    del pd.in_force[str(tmp_path / "policies" / "by_id.yaml")]
    assert Path(choose(pd.in_force.values(), prog, refs).path).name == "by_path.yaml"  # type: ignore[union-attr]
    del pd.in_force[str(tmp_path / "policies" / "by_path.yaml")]
    assert Path(choose(pd.in_force.values(), prog, refs).path).name == "by_module.yaml"  # type: ignore[union-attr]


def test_all_keys_must_hold(tmp_path: Path) -> None:
    tc = _toolchain()
    binary = gofixtures.build(tc, "denyapp", "default")
    prog = identify(binary)
    pd = _policies(tmp_path, both=f"  main_module: {prog.main_module}\n  build_id: \"not-this-one\"\n")
    assert choose(pd.in_force.values(), prog, BinaryRefs()) is None


@pytest.mark.parametrize("content", [b"", b"#!/bin/sh\nexit 0\n"])
def test_binary_refs_follow_the_file_at_the_path(tmp_path: Path, content: bytes) -> None:
    tc = _toolchain()
    path = tmp_path / "app"
    shutil.copy(gofixtures.build(tc, "denyapp", "default"), path)
    refs = BinaryRefs()
    first = refs.at(str(path))
    assert first is not None and first.is_go
    new = tmp_path / "new"
    new.write_bytes(content)
    new.replace(path)  # mv of a new file over the path
    again = refs.at(str(path))
    assert again is not None and not again.is_go and not again.version.same_file(first.version)
