"""`llmrank push`: upload a checkpoint, exported to its standard layout by default, with its model card in one commit."""

from __future__ import annotations

import argparse
from pathlib import Path

from llmrank.commands import CLIError
from llmrank.commands.export import FORMATS

#: llmrank.hub.PUSH_FORMATS, built without importing torch (tests/test_cli_errors.py checks they agree)
PUSH_FORMATS = ("auto", *FORMATS)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "push",
        help="push a checkpoint to the Hugging Face Hub",
        description="Push an llmrank checkpoint folder to the Hugging Face Hub in a single commit, with a "
        "generated model card. By default the model is exported to its family's standard layout (see "
        "`llmrank export`) so that sentence-transformers / transformers / vLLM load it; --format llmrank keeps "
        "llmrank's own layout. The token comes from HF_TOKEN or `hf auth login`; HF_ENDPOINT selects the Hub.",
    )
    p.add_argument("--model", required=True, help="checkpoint folder (llmrank_config.json, backbone/ or adapter/, ...)")
    p.add_argument("--repo-id", required=True, help="target repo, 'namespace/name'")
    p.add_argument("--private", action="store_true", help="create the repo private (ignored if it exists)")
    p.add_argument(
        "--format", default="auto", choices=PUSH_FORMATS,
        help="layout pushed (default auto: the family's standard layout, else llmrank's with a warning)",
    )
    p.add_argument("--adapter", action="store_true", help="LoRA: push a PEFT adapter instead of merged weights")
    p.add_argument("--merge-lora", action="store_true", help="--format llmrank: merge a LoRA adapter first")
    p.add_argument("--revision", default=None, help="branch to push to (created from main if missing)")
    p.add_argument("--commit-message", default=None, help="commit message (default: describes the model)")
    p.add_argument("--no-card", action="store_true", help="do not (re)write README.md before pushing")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from llmrank.hub import push_checkpoint  # imports torch: not for `llmrank --help`

    if not Path(args.model).is_dir():
        raise CLIError(f"--model {args.model} is not a checkpoint folder (push uploads a local llmrank checkpoint)")
    url = push_checkpoint(
        args.model, args.repo_id, private=args.private, revision=args.revision, format=args.format,
        adapter=args.adapter, merge_lora=args.merge_lora, commit_message=args.commit_message, write_card=not args.no_card,
    )  # fmt: skip
    print(f"pushed {args.model} to {args.repo_id}: {url}")
    return 0
