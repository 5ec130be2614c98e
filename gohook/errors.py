"""One error hierarchy for gohook.

Every failure that bad input can cause surfaces as a subclass of
`GohookError`; the CLI turns any of them into one line and exit status 2.
Parsers attach the byte offset (or address) where they gave up, so a report
can say where a file is damaged.
"""

from __future__ import annotations

import enum


class Exit(enum.IntEnum):
    """gohook's exit statuses."""

    OK = 0
    FINDINGS = 1  # the command worked and found something that should fail CI
    BAD_INPUT = 2  # unreadable binary, bad policy, bad usage


class GohookError(Exception):
    """Base class of every error gohook raises on purpose."""


class BinaryError(GohookError):
    """The executable could not be read as a Go binary.

    `offset` is the file offset (or virtual address, as the message says)
    where reading failed, when one is known.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class NotElfError(BinaryError):
    """The file is not an ELF executable."""


class NotGoBinaryError(BinaryError):
    """The ELF file holds no Go function table."""


class UnsupportedArchError(BinaryError):
    """The binary is for another architecture than the one gohook's machine-code analysis and BPF read (amd64)."""


class PclntabError(BinaryError):
    """The Go function table (pclntab) is malformed."""


class BuildInfoError(BinaryError):
    """The .go.buildinfo blob is malformed."""


class AddressError(GohookError):
    """An address maps to no segment, section or function."""


class PolicyError(GohookError):
    """A policy file is invalid; the message names file and line."""


class PatternError(PolicyError):
    """An argument pattern of a scoped rule is invalid (gohook.policy.patterns).

    parse_pattern raises it with the problem alone; the policy loader re-raises
    it with file, line, capability and the pattern's text in front.
    """
