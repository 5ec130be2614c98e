"""Errors of the BPF stage: each names what failed and why, in one message.

bcc reports failures as bare `Exception`s and prints compiler and verifier
output to stderr; the loader turns them into these, carrying that output.
"""

from __future__ import annotations

from gohook.errors import GohookError


class BpfError(GohookError):
    """Base class of BPF-stage failures."""


class BpfUnavailableError(BpfError):
    """BPF cannot be used here: not root, bcc missing, no kernel headers."""


class PlanTableError(BpfError):
    """The enforcement plan cannot be expressed in the kernel tables (bad ranges, ids, registers)."""


class CompileError(BpfError):
    """clang (through bcc) rejected the generated program; `log` holds its diagnostics."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.log = log


class VerifierError(BpfError):
    """The kernel refused to load one entry program; `log` holds the verifier's output."""

    def __init__(self, message: str, log: str = "", program: str = "") -> None:
        super().__init__(message)
        self.log = log
        self.program = program


class AttachError(BpfError):
    """A uprobe could not be attached (missing file, bad offset, no such pid)."""


class LinkError(AttachError):
    """A BPF link could not be made, pinned or opened (gohook.bpf.links): the message names what and why."""
