"""`llmrank train --config recipe.yaml [--key=value ...]`: the same as `python -m llmrank.train`.

Also accepted: `llmrank train recipe.yaml [--key=value ...]`. ``llmrank.cli.main`` hands every
argument after ``train`` to :func:`llmrank.train.main` unchanged.
"""

from __future__ import annotations

import argparse
import logging

from llmrank.commands import check_input_file, check_output_dir


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
    # transformers loads when the command runs, not when `llmrank --help` builds the parser
    from llmrank.config import load_recipe, parse_overrides
    from llmrank.train import main

    config, overrides = parse_overrides(list(args.rest))
    if config is not None:
        # checked here, before llmrank.train loads any model: the recipe path, then the resolved
        # recipe (errors raise to llmrank.cli, one line) and its output folder
        check_input_file(config, "recipe")
        recipe = load_recipe(config, overrides)
        check_output_dir(recipe.training.output_dir, f"{config}: training.output_dir")
    # `datasets` logs "JAX version ... available" at INFO on import, which llmrank.train's INFO
    # logging would print on every run; the library's own default level is WARNING
    logging.getLogger("datasets").setLevel(logging.WARNING)
    return main(list(args.rest))
