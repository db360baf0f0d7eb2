"""The CLI reference page (``docs/cli.md``), generated from the parsers themselves so that it cannot
drift from them unnoticed: ``python -m prunefuse.cli.reference > docs/cli.md`` rewrites it, and a test
compares it with the committed page."""

from __future__ import annotations

import argparse

from . import COMMANDS, build_parser


def option_row(action: argparse.Action) -> str:
    flags = ", ".join(f"`{f}`" for f in action.option_strings)
    if action.nargs == 0:
        value = "flag"
    else:
        value = getattr(action.type, "__name__", "text") if action.type else "text"
        value = {"number": "number", "integer": "integer", "list": "list", "shape": "C,H,W", "names": "names"}.get(
            value, "text")
    empty = action.default is None or action.default is False or action.default == argparse.SUPPRESS
    default = "required" if action.required else ("" if empty else f"`{format_default(action.default)}`")
    text = (action.help or "").replace("|", "\\|").replace("[", "\\[").replace("]", "\\]")
    return f"| {flags} | {value} | {default} | {text} |"


def format_default(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def cli_reference() -> str:
    """Markdown: every command, its purpose, and a table of its options."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    lines = ["# Command-line reference", "",
             "Generated from the parsers by `python -m prunefuse.cli.reference > docs/cli.md`; a test fails when "
             "this page and the parsers disagree. Every command exits 0 on success, 2 on bad input (one line that "
             "names the problem and the fix, no traceback) and 1 on a bug.", ""]
    for name, parser in sub.choices.items():
        lines += [f"## `prunefuse {name}`", "", COMMANDS[name][2][0].upper() + COMMANDS[name][2][1:] + ".", "",
                  "| option | value | default | meaning |", "|---|---|---|---|"]
        lines += [option_row(a) for a in parser._actions if a.option_strings and a.dest != "help"]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(cli_reference(), end="")
