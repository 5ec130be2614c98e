"""gohook.policy.arguments: the process's own numbered descriptors are learned as a directory pattern."""

from __future__ import annotations

from gohook.policy.arguments import scope_paths
from gohook.policy.patterns import parse_pattern


def test_numbered_descriptors_become_a_pattern_that_matches_the_next_runs_numbers() -> None:
    seen = ["/proc/self/fd/0", "/proc/self/fd/13", "/proc/self/fd", "/proc/thread-self/fdinfo/4", "/etc/hosts"]
    scoped = scope_paths("files.read", seen)
    assert scoped.patterns == ["/etc/hosts", "/proc/self/fd", "/proc/self/fd/*", "/proc/thread-self/fdinfo/*"]
    assert any("numbered descriptors" in n and "reopen any file" in n for n in scoped.notes)
    fds = parse_pattern("files.read", "/proc/self/fd/*")
    assert fds.matches("/proc/self/fd/14") and fds.matches("/proc/self/fd/1024")
    assert not fds.matches("/proc/self/environ") and not fds.matches("/proc/1/fd/3")
    assert not fds.matches("/proc/self/fd/3/x")


def test_other_proc_paths_stay_exact() -> None:
    seen = ["/proc/1/fd/3", "/proc/self/environ", "/proc/self/task/12/stat", "/proc/self/fd/x"]
    assert scope_paths("files.read", seen).patterns == sorted(seen)
