"""`llmrank beir`: BM25-flat -> rerank -> evaluate on BEIR datasets, one table."""

from __future__ import annotations

import argparse
from typing import Any

from llmrank.commands.pipeline_args import add_pipeline_arguments, settings_from_args


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "beir",
        help="evaluate a reranker on BEIR datasets",
        description="Pyserini BM25 'flat' (prebuilt beir-v1.0.0-<ds>.flat, or a local BEIR folder indexed "
        "on demand) -> rerank top-k -> nDCG@10 / R@100, per dataset, then one table "
        "(CQADupStack averaged over its 12 forums).",
    )
    p.add_argument("--datasets", required=True, help="comma list, e.g. scifact,nfcorpus,trec-covid,cqadupstack")
    p.add_argument("--beir-dir", help="folder with BEIR datasets (DIR/<name>/corpus.jsonl, queries.jsonl, qrels/)")
    p.add_argument("--split", default="test", help="qrels split (default test)")
    add_pipeline_arguments(p, "results/beir")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    # torch loads when the command runs, not when `llmrank --help` builds the parser
    from llmrank.pipeline import beir_tasks, run_pipeline
    from llmrank.rerank import is_main_process

    settings = settings_from_args(args)
    tasks = beir_tasks(args.datasets.split(","), args.beir_dir, args.split)
    md, _ = run_pipeline(tasks, settings)
    if is_main_process():
        print(md)
        print(f"\nwrote {settings.out_dir}/summary.{{md,csv,json}}")
    return 0
