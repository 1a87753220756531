"""`llmrank score`: teacher scores for BAR distillation (Qin et al., arXiv 2109.15285).

    llmrank score --model outputs/minilm-softmax --data train.jsonl --out train.scored.jsonl
    llmrank score --model CKPT --format beir --data ../shared/data/beir/scifact \\
        --set run=runs/scifact-train.bm25.trec --set split=train --out scifact-train.scored.jsonl

Every document of every list is scored with the checkpoint (any family) and the lists are
written as canonical JSONL with ``teacher_scores`` -- the file a recipe's
``distill.teacher_scores`` takes; ``--trec-out`` also writes the scores as a TREC run (what
``distill.teacher_run`` takes, like any other run file: SPLADE, a cross-encoder...). Resumable: finished lists are appended to ``OUT.partial``; a
rerun after an interruption skips the qids already there and ends with an atomic rename.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from llmrank.commands import CLIError, check_model_arg, check_output_file, positive_int
from llmrank.commands.model_args import add_model_arguments, model_kwargs
from llmrank.runs import strictly_decreasing, write_trec_run


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "score",
        help="score training lists with a checkpoint (teacher scores for BAR distillation)",
        description="Score every document of the lists with an llmrank checkpoint and write canonical JSONL "
        "with teacher_scores (resumable: rerun the same command after an interruption).",
    )
    p.add_argument("--model", required=True, help="llmrank checkpoint folder (or Hub id) of the teacher")
    p.add_argument("--data", required=True, help="lists to score: a path (canonical JSONL by default), or a "
                   "full reader spec in YAML/JSON, e.g. '{format: beir, path: ..., run: ..., split: train}'")
    p.add_argument("--format", default="jsonl", help="reader format of --data (see llmrank.data.readers.load_source)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra reader option (repeatable), e.g. --set run=bm25.trec --set split=train")
    p.add_argument("--out", required=True, help="output canonical JSONL with teacher_scores")
    p.add_argument("--trec-out", default=None, metavar="RUN",
                   help="also write the scores as a TREC run (a teacher_run for distill:, or for `llmrank evaluate`)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="scoring batch (pairs for pairwise families)")
    p.add_argument("--chunk-lists", type=positive_int, default=None,
                   help="lists scored between two appends to the partial file (default: --batch-size)")
    add_model_arguments(p)
    p.set_defaults(func=run)
    return p


def data_spec(data: str, fmt: str, options: list[str]) -> dict[str, Any]:
    """The ``load_source`` spec from ``--data`` / ``--format`` / ``--set``."""
    if data.lstrip().startswith("{"):
        try:
            spec = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            raise CLIError(f"--data looks like a reader spec but is not valid YAML/JSON: {exc}") from None
        if not isinstance(spec, dict) or "format" not in spec:
            raise CLIError("--data spec must be a mapping with a 'format' key")
    else:
        spec = {"format": fmt, "path": data}
    for item in options:
        if "=" not in item:
            raise CLIError(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        spec[key.strip()] = yaml.safe_load(value)
    return spec


def run(args: argparse.Namespace) -> int:
    # torch loads when the command runs, not when `llmrank --help` builds the parser
    from llmrank.data.readers import load_source
    from llmrank.distill import score_lists_to_file
    from llmrank.loading import device_ranker

    check_output_file(args.out, "--out")
    check_output_file(f"{args.out}.partial", "--out")
    spec = data_spec(args.data, args.format, args.set)
    if "path" in spec and not Path(str(spec["path"])).exists():
        raise CLIError(f"--data {spec['path']} does not exist")
    lists = list(load_source(spec))
    check_model_arg(args.model)
    ranker = device_ranker(args.model, **model_kwargs(args))

    def progress(done: int, total: int) -> None:
        print(f"\rscored {done}/{total} lists", end="", file=sys.stderr, flush=True)

    scored = score_lists_to_file(
        ranker,
        lists,
        args.out,
        batch_size=args.batch_size,
        chunk_lists=args.chunk_lists,
        meta={"model": str(args.model), "data": {k: str(v) for k, v in spec.items()}},
        progress=progress,
    )
    print(file=sys.stderr)
    if args.trec_out:
        run = {}
        for rl in scored:
            ranked = sorted(zip((d.docid for d in rl.docs), rl.teacher_scores or []), key=lambda t: -t[1])
            # ties broken by a tiny gap so every TREC tool keeps this order (scores stay within 1e-6)
            run[rl.qid] = list(zip((d for d, _ in ranked), strictly_decreasing([s for _, s in ranked])))
        write_trec_run(args.trec_out, run, tag="llmrank-score")
        print(f"wrote {args.trec_out} (TREC run of the same scores)")
    docs = sum(len(rl) for rl in scored)
    print(f"wrote {args.out} ({len(scored)} lists, {docs} documents with teacher_scores)")
    return 0
