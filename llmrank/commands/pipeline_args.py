"""Options shared by `llmrank trec-dl` and `llmrank beir`, and the checks that run before any model
or index is loaded. Kept apart from :mod:`llmrank.pipeline` so that parsing the command line does
not import torch (fast usage errors, and Ctrl-C during start-up is caught by ``llmrank.cli``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from llmrank.commands import CLIError, check_model_arg, check_output_dir, positive_int
from llmrank.commands.fuse import add_fusion_arguments, fusion_from_args
from llmrank.commands.model_args import add_model_arguments, model_kwargs

if TYPE_CHECKING:
    from llmrank.pipeline import PipelineSettings


def add_pipeline_arguments(p: argparse.ArgumentParser, default_out: str) -> None:
    """Options shared by `llmrank trec-dl` and `llmrank beir`."""
    p.add_argument("--model", required=True, help="llmrank checkpoint, or 'none' for the first-stage table alone")
    p.add_argument("--top-k", type=positive_int, default=100, help="candidates reranked per query (default 100)")
    p.add_argument("--hits", type=positive_int, default=1000, help="first-stage depth (default 1000)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="pairs (or FIRST windows) per forward pass")
    p.add_argument("--queries-per-chunk", type=positive_int, default=64,
                   help="queries scored together, so batches span queries (default 64)")
    p.add_argument("--threads", type=positive_int, default=1, help="BM25 search / indexing threads")
    p.add_argument("--cache-dir", help="where local Lucene indexes are cached (default ~/.cache/llmrank/indexes)")
    p.add_argument("--out-dir", default=default_out, help=f"results folder (default {default_out}); "
                   "finished datasets found there are skipped")
    p.add_argument("--no-progress", action="store_true")
    add_fusion_arguments(p)
    add_model_arguments(p)


def settings_from_args(args: argparse.Namespace) -> PipelineSettings:
    """PipelineSettings from the options added by :func:`add_pipeline_arguments`; checks the output
    folder and the model argument before anything is loaded or created."""
    if args.hits < args.top_k:
        raise CLIError(f"--top-k {args.top_k} is larger than --hits {args.hits}; need --top-k <= --hits")
    check_output_dir(args.out_dir, "--out-dir")
    check_output_dir(args.cache_dir, "--cache-dir")
    fuse, fuse_weight = fusion_from_args(args)
    model = None if args.model.lower() == "none" else args.model
    if fuse is not None and model is None:
        raise CLIError("--fuse needs a reranker: --model none has nothing to fuse with the first stage")
    if model is not None:
        check_model_arg(model)
    # torch loads when the command runs, not when `llmrank --help` builds the parser
    from llmrank.pipeline import PipelineSettings

    return PipelineSettings(model=model, out_dir=Path(args.out_dir), top_k=args.top_k, hits=args.hits,
                            batch_size=args.batch_size, threads=args.threads, cache_dir=args.cache_dir,
                            progress=not args.no_progress, queries_per_chunk=args.queries_per_chunk,
                            model_kwargs=model_kwargs(args), fuse=fuse, fuse_weight=fuse_weight)
