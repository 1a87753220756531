"""`llmrank evaluate`: ir-measures with TREC DL / BEIR conventions, paired t-test, tables."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from llmrank.commands import check_input_file, check_output_dir, looks_like_path
from llmrank.evaluate import evaluate_run, parse_measures, report, write_outputs
from llmrank.retrieval import load_qrels
from llmrank.runs import read_run


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a TREC run (trec_eval -c conventions), optionally against a baseline",
        description="Evaluate a run with ir-measures. Every judged query counts (missing = 0).",
    )
    p.add_argument("--run", required=True, help="TREC run file (or rank_llm JSON)")
    p.add_argument("--qrels", required=True, help="qrels file (TREC or BEIR TSV) or Pyserini qrels name")
    p.add_argument("--measures", default="dl",
                   help="'dl' (nDCG@10, RR(rel=2)@10, AP(rel=2), R(rel=2)@100, R(rel=2)@1000), "
                   "'beir' (nDCG@10, R@100) or a comma list of ir-measures names")
    p.add_argument("--baseline", help="baseline run for a paired t-test (scipy.stats.ttest_rel)")
    p.add_argument("--out-dir", help="write metrics.json, metrics.md and per_query.csv here")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    check_output_dir(args.out_dir, "--out-dir")
    check_input_file(args.run, "--run")
    check_input_file(args.baseline, "--baseline")
    if looks_like_path(args.qrels):  # else a Pyserini qrels name, resolved by load_qrels
        check_input_file(args.qrels, "--qrels")
    measures = parse_measures(args.measures)
    qrels = load_qrels(args.qrels)
    evaluation = evaluate_run(read_run(args.run), qrels, measures)
    baseline = evaluate_run(read_run(args.baseline), qrels, measures) if args.baseline else None
    md, result = report(evaluation, Path(args.run).name, baseline, Path(args.baseline).name if args.baseline else "")
    result["qrels"] = args.qrels
    if args.out_dir:
        write_outputs(args.out_dir, evaluation, md, result, baseline)
    print(md)
    return 0
