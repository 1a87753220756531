"""`llmrank merge-lora`: fold a LoRA adapter into its base model and save a standalone ranker."""

from __future__ import annotations

import argparse
from pathlib import Path

from llmrank.commands import CLIError, check_output_dir


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "merge-lora",
        help="merge a LoRA checkpoint into standalone weights",
        description="Load an llmrank LoRA checkpoint with its base model, merge the adapter into the weights "
        "and write a standalone checkpoint (backbone/ in safetensors, head, tokenizer, config without lora).",
    )
    p.add_argument("--model", required=True, help="LoRA checkpoint folder (with adapter/)")
    p.add_argument("--out", required=True, help="folder for the merged checkpoint (written atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    # torch loads when the command runs, not when `llmrank --help` builds the parser
    from llmrank.merge import merge_lora

    if not Path(args.model).is_dir():
        raise CLIError(f"--model {args.model} is not a checkpoint folder (it should hold llmrank_config.json and adapter/)")
    check_output_dir(args.out, "--out")
    out = merge_lora(args.model, args.out, overwrite=args.overwrite)
    print(f"merged {args.model} -> {out}")
    return 0
