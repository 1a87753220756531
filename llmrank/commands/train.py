"""`llmrank train --config recipe.yaml [--key=value ...]`: the same as `python -m llmrank.train`.

Also accepted: `llmrank train recipe.yaml [--key=value ...]`. ``llmrank.cli.main`` hands every
argument after ``train`` to :func:`llmrank.train.main` unchanged.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a reranker from a recipe (for many GPUs: accelerate launch -m llmrank.train)",
        description="Train a reranker from a YAML recipe; --key=value overrides any recipe field.",
        usage="llmrank train [--config] recipe.yaml [--key=value ...]",
    )
    p.add_argument("rest", nargs=argparse.REMAINDER, help="--config recipe.yaml [--key=value ...]")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llmrank.commands import check_input_file
    from llmrank.config import parse_overrides
    from llmrank.train import main

    config, _ = parse_overrides(list(args.rest))
    check_input_file(config, "recipe")  # a folder given as the recipe is one line, not IsADirectoryError
    return main(list(args.rest))
