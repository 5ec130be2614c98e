"""Subcommands defined outside cli.py, by module name.

Each module listed here exposes `register(subparsers)`, which adds its
parser(s) and sets `run=` to a function `(argparse.Namespace) -> int`.
Modules are imported when the parser is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

COMMAND_MODULES: tuple[str, ...] = ("gohook.inspect_cmd", "gohook.attach_cmd", "gohook.doctor", "gohook.policy_cmd")


def registrars() -> list[Callable[[Any], None]]:
    return [importlib.import_module(name).register for name in COMMAND_MODULES]
