"""The ``prunefuse`` command. Exit codes: 0 success, 2 bad input (one line, no traceback), 1 a bug.

One module per command family, each with a ``COMMANDS`` table of (add_arguments, run, help); a command
parses, builds a config and calls the public API. Imports go from here to the command modules to
``args``, never back."""

from __future__ import annotations

import json
import os
import sys

from .. import distributed
from ..errors import UserError
from ..io.rundir import package_version
from . import active, merge, pool, train
from .args import Parser

COMMANDS = {**train.COMMANDS, **active.COMMANDS, **pool.COMMANDS, **merge.COMMANDS}


def build_parser() -> Parser:
    parser = Parser(prog="prunefuse", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"prunefuse {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, (add_arguments, _run, help_text) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if distributed.init() and not distributed.is_main():
            sys.stdout = open(os.devnull, "w")  # under torchrun, rank 0 alone reports  # noqa: SIM115
        result = COMMANDS[args.command][1](args)
    except UserError as e:
        print(f"prunefuse {args.command}: error: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if isinstance(result, (dict, list)):
        print(json.dumps(result, indent=2))
    return 0
