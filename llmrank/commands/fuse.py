"""`llmrank fuse`: fuse a reranked run with its first stage (RRF or linear interpolation)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from llmrank.commands import CLIError, check_output_file
from llmrank.fusion import fuse
from llmrank.runs import read_trec_run, write_trec_run


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "fuse",
        help="fuse a reranked run with its first-stage run (reciprocal-rank or linear fusion)",
        description="Fuse two TREC runs. RRF: sum of 1/(k + rank). Linear: w * minmax(rerank) + "
        "(1 - w) * minmax(first stage) per query, with w chosen on validation queries "
        "(`llmrank tune-fusion`), never on the queries you report.",
    )
    p.add_argument("--run", required=True, help="the reranker's TREC run")
    p.add_argument("--first-stage", required=True, help="the first stage's TREC run")
    p.add_argument("--method", choices=["rrf", "linear"], required=True)
    weight = p.add_mutually_exclusive_group()
    weight.add_argument("--weight", type=float, help="linear weight of the reranker in [0, 1]")
    weight.add_argument("--weight-from", help="JSON written by `llmrank tune-fusion` (its 'weight')")
    p.add_argument("--k", type=float, default=60.0, help="RRF constant (default 60)")
    p.add_argument("--normalization", choices=["minmax", "zscore"], default="minmax")
    p.add_argument("--out", required=True, help="output TREC run")
    p.set_defaults(func=run)
    return p


def add_fusion_arguments(p: argparse.ArgumentParser) -> None:
    """`--fuse` for `rerank`, `trec-dl` and `beir`: also fuse the reranked top-k with the first stage."""
    p.add_argument("--fuse", choices=["rrf", "linear"],
                   help="also fuse the reranked top-k with the first stage (RRF k=60, or linear with a weight "
                   "chosen on validation queries) and report it next to the reranker alone")
    weight = p.add_mutually_exclusive_group()
    weight.add_argument("--fuse-weight", type=float, help="linear fusion: the reranker's weight in [0, 1]")
    weight.add_argument("--fuse-weight-from", help="linear fusion: JSON written by `llmrank tune-fusion`")


def fusion_from_args(args: argparse.Namespace) -> tuple[str | None, float | None]:
    """``(method, weight)`` from :func:`add_fusion_arguments`' options, checked before any model loads."""
    if args.fuse is None:
        if args.fuse_weight is not None or args.fuse_weight_from:
            raise CLIError("--fuse-weight / --fuse-weight-from need --fuse linear")
        return None, None
    if args.fuse == "rrf":
        if args.fuse_weight is not None or args.fuse_weight_from:
            raise CLIError("--fuse rrf takes no weight (it fuses ranks); drop --fuse-weight / --fuse-weight-from")
        return "rrf", None
    if args.fuse_weight is None and not args.fuse_weight_from:
        raise CLIError("--fuse linear needs --fuse-weight or --fuse-weight-from (tune it on validation queries "
                       "with `llmrank tune-fusion`)")
    weight = tuned_weight(args.fuse_weight_from) if args.fuse_weight_from else float(args.fuse_weight)
    if not 0.0 <= weight <= 1.0:
        raise CLIError(f"the linear fusion weight must lie in [0, 1], got {weight}")
    return "linear", weight


def tuned_weight(path: str) -> float:
    """The weight stored by `llmrank tune-fusion`, with a one-line error when it is not there."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
        return float(obj["weight"])
    except FileNotFoundError:
        raise CLIError(f"{path}: no such file; write it with `llmrank tune-fusion`") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise CLIError(f"{path}: not a `llmrank tune-fusion` result (needs a numeric 'weight')") from None


def run(args: argparse.Namespace) -> int:
    check_output_file(args.out, "--out")
    if args.method == "linear" and args.weight is None and args.weight_from is None:
        raise CLIError("--method linear needs --weight or --weight-from (tune it with `llmrank tune-fusion`)")
    weight = tuned_weight(args.weight_from) if args.weight_from else args.weight
    fused = fuse(read_trec_run(args.run), read_trec_run(args.first_stage), args.method,
                 weight=weight, k=args.k, normalization=args.normalization)
    write_trec_run(args.out, fused, tag=f"llmrank-{args.method}")
    print(f"wrote {args.out} ({len(fused)} queries, {args.method}"
          + (f", weight {weight}" if args.method == "linear" else f", k {args.k:g}") + ")")
    return 0
