"""`llmrank train --config recipe.yaml [--key=value ...]`: the same as `python -m llmrank.train`."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a reranker from a recipe (for many GPUs: accelerate launch -m llmrank.train)",
        description="Train a reranker from a YAML recipe; --key=value overrides any recipe field.",
    )
    p.add_argument("rest", nargs=argparse.REMAINDER, help="--config recipe.yaml [--key=value ...]")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llmrank.train import main

    return main(list(args.rest))
