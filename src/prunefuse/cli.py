"""The ``prunefuse`` command. Exit codes: 0 success, 2 bad input (one line, no traceback), 1 a bug."""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import __version__, distributed
from .commands import COMMANDS
from .errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prunefuse", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"prunefuse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (add_arguments, _run, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if distributed.init() and not distributed.is_main():
        sys.stdout = open(os.devnull, "w")  # under torchrun, rank 0 alone reports  # noqa: SIM115
    try:
        result = COMMANDS[args.command][1](args)
    except UserError as e:
        print(f"prunefuse {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if isinstance(result, (dict, list)):
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
