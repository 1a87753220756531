"""`llmrank rerank`: rerank a first-stage run with a trained ranker, write the run + latency JSON."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from llmrank.commands import CLIError, check_input_file, check_model_arg, check_output_file, positive_int
from llmrank.commands.fuse import add_fusion_arguments, fusion_from_args
from llmrank.commands.model_args import add_model_arguments, model_kwargs
from llmrank.retrieval import BM25Searcher, DocStore, load_topics
from llmrank.runs import is_rank_llm_json, read_documents, read_rank_llm, read_trec_run, write_json, write_trec_run


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "rerank",
        help="rerank a TREC run (or rank_llm JSON) with a ranker checkpoint",
        description="Rerank the top-k of a first-stage run with any llmrank ranker. Runs under "
        "`accelerate launch` too: queries are split across processes and one run is written.",
    )
    p.add_argument("--model", required=True, help="llmrank checkpoint folder (or Hub id)")
    p.add_argument("--run", required=True, help="TREC run file, or rank_llm candidate JSON (carries texts)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--index", help="Pyserini prebuilt index name or local Lucene index (stored raw docs)")
    src.add_argument("--corpus", help="corpus JSONL (BEIR _id/title/text or id/contents) or a BEIR folder")
    p.add_argument("--topics", help="topics file (TSV qid<TAB>query, BEIR queries.jsonl) or Pyserini name")
    p.add_argument("--top-k", type=positive_int, default=100, help="candidates reranked per query (default 100)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="pairs (or FIRST windows) per forward pass")
    p.add_argument("--queries-per-chunk", type=positive_int, default=64,
                   help="queries scored together, so batches span queries (default 64; 1 = one query at a time)")
    p.add_argument("--out", required=True, help="output TREC run")
    p.add_argument("--latency", help="latency JSON (default: OUT.latency.json)")
    p.add_argument("--no-tail", action="store_true", help="write only the reranked top-k (default appends the "
                   "first stage's remaining hits below them)")
    p.add_argument("--no-progress", action="store_true")
    add_fusion_arguments(p)
    p.add_argument("--fuse-out", help="fused run with --fuse (default: OUT with .fused-METHOD before its suffix)")
    add_model_arguments(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    # torch loads when the command runs, not when `llmrank --help` builds the parser
    from llmrank.pipeline import load_ranker_or_none
    from llmrank.rerank import build_lists, fuse_with_first_stage, is_main_process, merge_with_tail, rerank_lists

    if args.model.lower() == "none":
        raise CLIError("--model none is only meaningful for trec-dl / beir")
    latency = args.latency or f"{args.out}.latency.json"
    # every check that can fail runs before the model is loaded, so a long rerank is not lost at its end
    check_output_file(args.out, "--out")
    check_output_file(latency, "--latency")
    fuse_method, fuse_weight = fusion_from_args(args)
    fuse_out = None
    if fuse_method is not None:
        out_path = Path(args.out)
        fuse_out = args.fuse_out or str(out_path.with_name(f"{out_path.stem}.fused-{fuse_method}{out_path.suffix}"))
        check_output_file(fuse_out, "--fuse-out")
    check_input_file(args.run, "--run")
    docs: dict = {}
    topics: dict = {}
    if is_rank_llm_json(args.run):
        run_, topics, docs = read_rank_llm(args.run, require_text=not (args.corpus or args.index))
    else:
        run_ = read_trec_run(args.run)
    if args.topics:
        topics = load_topics(args.topics)
    elif args.corpus and Path(args.corpus, "queries.jsonl").exists():
        topics = load_topics(Path(args.corpus, "queries.jsonl"))
    if not topics:
        raise CLIError("no query texts: pass --topics (a TREC run carries only query ids)")
    if args.corpus:
        docs.update(read_documents(args.corpus))
        store = DocStore(docs)
    elif args.index:
        store = DocStore(docs, BM25Searcher(args.index))
    elif docs:
        store = DocStore(docs)
    else:
        raise CLIError("no document texts: pass --index or --corpus (or a rank_llm JSON run)")
    wanted = {d for ranked in run_.values() for d, _ in ranked[: args.top_k]}
    lists = build_lists(run_, topics, store.get(wanted), args.top_k)
    check_model_arg(args.model)  # after the inputs: a bad data file is reported whatever the model
    ranker = load_ranker_or_none(args.model, **model_kwargs(args))
    reranked, stats = rerank_lists(ranker, lists, args.batch_size, progress=not args.no_progress,
                                   queries_per_chunk=args.queries_per_chunk)
    if is_main_process():
        out = reranked if args.no_tail else merge_with_tail(reranked, run_, args.top_k)
        write_trec_run(args.out, out, tag="llmrank")
        if fuse_method is not None:
            fused = fuse_with_first_stage(reranked, run_, args.top_k, fuse_method, fuse_weight, tail=not args.no_tail)
            write_trec_run(fuse_out, fused, tag=f"llmrank-{fuse_method}")
            print(f"wrote {fuse_out} (reranker fused with the first stage: {fuse_method}"
                  + (f", weight {fuse_weight}" if fuse_weight is not None else "") + ")")
        write_json(latency, {"model": args.model, "run": args.run, "top_k": args.top_k,
                             "batch_size": args.batch_size, **stats.to_dict()})
        s = stats.summary()
        print(f"wrote {args.out} ({s['queries']} queries, {s['pairs']} pairs, {s['pairs_per_s']} pairs/s, "
              f"{s['fraction_outside_model']} of wall time outside the model); latency: {latency}")
    return 0
