"""`llmrank` command line: thin subcommands that parse, call the library and print.

Each subcommand lives in ``llmrank/commands/<name>.py`` and exposes
``add_parser(subparsers)`` (registering its arguments, ``set_defaults(func=run)``) and
``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand modules, in the order `llmrank --help` lists them
COMMANDS = [
    "train",
    "rerank",
    "evaluate",
    "trec_dl",
    "beir",
    "score",
    "push",
    "merge_lora",
    "fuse",
    "tune_fusion",
    "export",
]


class CLIError(Exception):
    """An error the user can fix; printed as one line without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmrank", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"llmrank.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"llmrank.commands.{name}":
                continue  # not built yet
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CLIError, FileNotFoundError, ValueError) as exc:
        print(f"llmrank {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
