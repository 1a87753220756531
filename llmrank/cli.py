"""`llmrank` command line: thin subcommands that parse, call the library and print.

Each subcommand lives in ``llmrank/commands/<name>.py`` and exposes
``add_parser(subparsers)`` (registering its arguments, ``set_defaults(func=run)``) and
``run(args) -> int``.

Errors the user can fix (bad paths, malformed files, unknown model ids, bad values) end the
command with exit status 2 and one line on stderr, ``llmrank <command>: error: <what and where>``;
Ctrl-C ends it with status 130 and one line. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from llmrank.commands import CLIError

__all__ = ["CLIError", "build_parser", "main"]

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

#: exit status of a command stopped by SIGINT (128 + signal number 2, as shells report it)
EXIT_INTERRUPTED = 130
EXIT_USER_ERROR = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse parser whose usage errors are one line (the usage block is in ``--help``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="llmrank", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"llmrank.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"llmrank.commands.{name}":
                continue  # not built yet
            raise
        module.add_parser(sub)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean bad input, not a bug: ours, the library's (RecipeError,
    FormatError, HubError are ValueErrors), OSError (missing/unreadable files, and what
    ``from_pretrained`` / ``huggingface_hub`` raise for unknown or unreachable model ids),
    YAML syntax errors, corrupt safetensors files and a missing Pyserini/Java."""
    errors: list[type[BaseException]] = [CLIError, ValueError, OSError]
    for module, name in [("yaml", "YAMLError"), ("safetensors", "SafetensorError"),
                         ("llmrank.pyserini_env", "PyseriniUnavailable")]:  # fmt: skip
        mod = sys.modules.get(module)  # only types that can have been raised: never import here
        if mod is not None and hasattr(mod, name):
            errors.append(getattr(mod, name))
    return tuple(errors)


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (OSError: ``path: reason``)."""
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    if type(exc).__module__.startswith(("yaml", "safetensors")):
        text = f"{type(exc).__name__}: {text}"
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    as_script = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if as_script and not sys.stderr.isatty():
        # weight-loading / download progress bars in a log file are noise around the one-line
        # errors and the results; an explicit HF_HUB_DISABLE_PROGRESS_BARS wins
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    prog = "llmrank"
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        prog = f"llmrank {args.command}"
        if args.command == "train":
            # `train` passes everything after it to llmrank.train (argparse cannot take a
            # remainder that starts with an option such as --config)
            args.rest = argv[argv.index("train") + 1 :]
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if not isinstance(exc, _user_errors()):
            raise
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
