"""gohook command line: `main(argv) -> int`, one fatal-error path, named exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from gohook.errors import Exit, GohookError

log = logging.getLogger("gohook")

EPILOG = """examples:
  gohook symbols ./app --json                 every function with its package and module
  gohook symbols ./app --pc 0x4a1b2c --json   expand return addresses into logical frames
"""


def _pc(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an address: {text!r} (use 0x... or decimal)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"negative address: {text}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line with exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise SystemExit(_fatal(f"usage: {message}", Exit.BAD_INPUT))


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The CLI parser; with `only` (a subcommand's name), that subcommand alone: main() builds just the one
    the command line names, so that `gohook inspect` does not import attach's, agent's and policy's modules
    (about 50 ms of its start-up, issue 17 §6); --help and unknown commands get every one."""
    parser = _Parser(prog="gohook", description="Per-module capability enforcement for Go binaries.",
                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sym = sub.add_parser("symbols", help="list functions, modules, or expand PCs into frames",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sym.add_argument("binary", help="a Go ELF binary (stripped or not)")
    sym.add_argument("--pc", type=_pc, action="append", default=[],
                     help="a return address to expand into logical frames (repeatable)")
    sym.add_argument("--json", action="store_true", help="print one JSON document")
    sym.set_defaults(run=_run_symbols)

    for name in SUBCOMMANDS:
        if only is None or only == name:
            _subcommand_module(name).register(sub)
    return parser


# Subcommands in their own modules (gohook.commands.<name>), in --help order: each exposes
# register(subparsers), which adds its parser and sets run= to a function (argparse.Namespace)
# -> int. The modules import their pipeline stages lazily, so building the parser stays cheap.
SUBCOMMANDS = ("inspect", "attach", "agent", "doctor", "policy")


def _subcommand_module(name: str) -> ModuleType:
    """The module of a subcommand of SUBCOMMANDS, imported now (and only now)."""
    if name == "inspect":
        from gohook.commands import inspect as module
    elif name == "attach":
        from gohook.commands import attach as module
    elif name == "agent":
        from gohook.commands import agent as module
    elif name == "doctor":
        from gohook.commands import doctor as module
    elif name == "policy":
        from gohook.commands import policy as module
    else:
        raise ValueError(f"no subcommand {name!r}")
    return module


def _named_command(argv: Sequence[str]) -> str | None:
    """The subcommand the command line names (its first word that is no option), when it is one of ours."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in SUBCOMMANDS or word == "symbols" else None


def _run_symbols(args: argparse.Namespace) -> int:
    from gohook.commands import symbols

    return symbols.run(args.binary, pcs=args.pc, as_json=args.json)


def _fatal(message: str, code: Exit) -> int:
    print(f"gohook: {message}", file=sys.stderr)
    return int(code)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=_named_command(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help or a usage error already reported
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="gohook: %(message)s")
    try:
        return int(args.run(args))
    except GohookError as exc:
        return _fatal(str(exc), Exit.BAD_INPUT)
    except BrokenPipeError:
        return int(Exit.OK)
    except KeyboardInterrupt:
        return 130
    except (RecursionError, MemoryError, ValueError, IndexError, KeyError, OverflowError,
            UnicodeDecodeError) as exc:  # defensive: malformed input must never show a traceback
        return _fatal(f"failed on this input ({type(exc).__name__}: {exc}); please report it", Exit.BAD_INPUT)


def main_entry() -> None:
    sys.exit(main())


def dump_json(obj: object) -> None:
    json.dump(obj, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
