"""`llmrank tune-fusion`: choose the linear fusion weight on validation queries."""

from __future__ import annotations

import argparse
from typing import Any

from llmrank.commands import check_output_file
from llmrank.evaluate import parse_measures
from llmrank.fusion import tune_linear_weight
from llmrank.io_utils import atomic_write_json
from llmrank.retrieval import load_qrels
from llmrank.runs import read_trec_run


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "tune-fusion",
        help="choose the linear fusion weight on validation queries (never on test queries)",
        description="Grid-search w in w * norm(rerank) + (1 - w) * norm(first stage) on validation "
        "runs and qrels; writes the weight and the curve as JSON for `llmrank fuse --weight-from` (or `--fuse-weight-from` of rerank, trec-dl and beir).",
    )
    p.add_argument("--run", required=True, help="the reranker's TREC run on the validation queries")
    p.add_argument("--first-stage", required=True, help="the first stage's TREC run on the same queries")
    p.add_argument("--qrels", required=True, help="validation qrels (TREC or BEIR TSV)")
    p.add_argument("--measure", default="nDCG@10", help="ir-measures name to maximise (default nDCG@10)")
    p.add_argument("--normalization", choices=["minmax", "zscore"], default="minmax")
    p.add_argument("--out", required=True, help="JSON with the chosen weight and the validation curve")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    check_output_file(args.out, "--out")
    measure = str(parse_measures(args.measure)[0])
    weight, curve = tune_linear_weight(read_trec_run(args.run), read_trec_run(args.first_stage),
                                       load_qrels(args.qrels), measure=measure, normalization=args.normalization)
    atomic_write_json(args.out, {"weight": weight, "measure": measure, "normalization": args.normalization,
                                 "run": args.run, "first_stage": args.first_stage, "qrels": args.qrels,
                                 "curve": curve})
    best = next(row[measure] for row in curve if row["weight"] == weight)
    print(f"weight {weight} ({measure} {best:.4f} on {args.qrels}); wrote {args.out}")
    return 0
