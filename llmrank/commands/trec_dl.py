"""`llmrank trec-dl`: first stage -> rerank -> evaluate on TREC DL passage years, one table."""

from __future__ import annotations

import argparse
from typing import Any

from llmrank.commands.pipeline_args import add_pipeline_arguments, settings_from_args


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "trec-dl",
        help="evaluate a reranker on TREC DL 2019-2023 passage",
        description="BM25 (or a given run) -> rerank top-k -> ir-measures (DL conventions), per year, "
        "then one table. Per-year options take one value, a comma list, or a {year} template.",
    )
    p.add_argument("--years", default="2019,2020", help="comma list of 2019..2023 (default 2019,2020)")
    p.add_argument("--first-stage", default="bm25", help="'bm25' (Pyserini) or a TREC run / rank_llm JSON")
    p.add_argument("--qrels", help="qrels file(s) instead of the Pyserini names")
    p.add_argument("--topics", help="topics file(s) instead of the Pyserini names")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--index", help="Lucene index(es) instead of msmarco-v1/v2-passage")
    src.add_argument("--corpus", help="corpus JSONL / rank_llm JSON with the passage texts")
    add_pipeline_arguments(p, "results/trec-dl")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    # torch loads when the command runs, not when `llmrank --help` builds the parser
    from llmrank.pipeline import run_pipeline, trec_dl_tasks
    from llmrank.rerank import is_main_process

    settings = settings_from_args(args)
    tasks = trec_dl_tasks(args.years.split(","), args.first_stage, args.qrels, args.topics, args.index, args.corpus)
    md, _ = run_pipeline(tasks, settings)
    if is_main_process():
        print(md)
        print(f"\nwrote {settings.out_dir}/summary.{{md,csv,json}}")
    return 0
