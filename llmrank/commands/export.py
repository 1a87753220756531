"""`llmrank export`: write a checkpoint in a layout other tools load (sentence-transformers, transformers, vLLM)."""

from __future__ import annotations

import argparse

#: the target layouts of llmrank.export.FORMATS, repeated here so that parsing the command line does
#: not import torch (tests/test_cli_errors.py checks that the two stay equal)
FORMATS = ("sentence-transformers", "transformers", "vllm", "llmrank")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export",
        help="export a checkpoint for sentence-transformers / transformers / vLLM",
        description="Export an llmrank checkpoint to a standard folder: a sequence-classification model with "
        "sentence-transformers CrossEncoder metadata (cross-encoders), a stock T5 (monoT5/RankT5) or causal LM "
        "(FIRST). LoRA is merged, or written as a PEFT adapter with --adapter. The export is checked to "
        "reproduce llmrank's scores, else refused.",
    )
    p.add_argument("--model", required=True, help="llmrank checkpoint folder (llmrank_config.json, ...)")
    p.add_argument("--format", required=True, choices=FORMATS, help="target layout")
    p.add_argument("--out", required=True, help="output folder (written atomically)")
    p.add_argument("--adapter", action="store_true", help="LoRA checkpoints: write a PEFT adapter instead of merging")
    p.add_argument(
        "--drop-score-bias", action="store_true",
        help="decoder cross-encoders: export although the stock score layer has no bias (scores shift by -bias)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    # torch loads when the command runs, not when `llmrank --help` builds the parser
    from llmrank.export import export_checkpoint

    out = export_checkpoint(
        args.model, args.out, args.format, adapter=args.adapter, overwrite=args.overwrite,
        drop_score_bias=args.drop_score_bias,
    )
    print(f"exported {args.model} ({args.format}{', adapter' if args.adapter else ''}) -> {out}")
    return 0
