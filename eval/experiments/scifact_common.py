"""Shared pieces of the SciFact experiments (objectives table, BAR): BM25 runs, lists, recipes,
per-query metrics. CPU-sized: every knob that costs time is an argument of the callers.

The data stays where it is (``../shared/data/beir/scifact`` by default, or ``$LLMRANK_SCIFACT``);
work files (index, runs, checkpoints) go to a work folder outside ``eval/``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCIFACT = Path(os.environ.get("LLMRANK_SCIFACT", ROOT.parent / "shared" / "data" / "beir" / "scifact"))


@contextlib.contextmanager
def timed(times: dict[str, float], name: str) -> Iterator[None]:
    """Record the wall time of the block under ``times[name]`` (seconds, 0.1 s) and print it."""
    t0 = time.perf_counter()
    yield
    times[name] = round(time.perf_counter() - t0, 1)
    print(f"[{name}] {times[name]:.1f}s", flush=True)


def bm25_runs(scifact: Path, work: Path, k: int = 100) -> dict[str, Path]:
    """Pyserini BM25 top-``k`` runs for the train and test claims (indexed once, cached in ``work``)."""
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


@dataclass
class SciFactSplits:
    """Training lists (also written to ``train_file`` for the recipe), test lists, test qrels."""

    train: list[Any]
    test: list[Any]
    qrels: dict[str, dict[str, int]]
    train_file: Path


def load_splits(scifact: Path, work: Path, times: dict[str, float], *, num_negatives: int, test_top_k: int,
                train_queries: int | None = None, test_queries: int | None = None) -> SciFactSplits:  # fmt: skip
    """BM25 runs (timed as ``bm25``), training lists of judged positives + ``num_negatives`` BM25
    hard negatives, and the test claims' BM25 top-``test_top_k`` (optionally the first N of each)."""
    from llmrank.data.readers import read_beir, write_lists_jsonl
    from llmrank.runs import read_qrels

    with timed(times, "bm25"):
        runs = bm25_runs(scifact, work, k=100)
    train = read_beir(scifact, runs["train"], split="train", top_k=100, add_missing_positives=True,
                      num_negatives=num_negatives)  # fmt: skip
    train = train[:train_queries] if train_queries else train
    write_lists_jsonl(train, work / "train.jsonl")
    test = read_beir(scifact, runs["test"], split="test", top_k=test_top_k)
    test = test[:test_queries] if test_queries else test
    return SciFactSplits(train, test, read_qrels(scifact / "qrels" / "test.tsv"), work / "train.jsonl")


def per_query(lists: Sequence[Any], scores: Sequence[Sequence[float]], qrels: dict[str, dict[str, int]],
              measures: Sequence[str] = ("nDCG@10", "R@10")) -> dict[str, dict[str, float]]:
    """``{measure: {qid: value}}`` by ir-measures for the scored lists (every test query gets a value,
    0 where the measure is undefined)."""
    import ir_measures

    run = {rl.qid: {d.docid: float(s) for d, s in zip(rl.docs, row)} for rl, row in zip(lists, scores)}
    judged = {q: r for q, r in qrels.items() if q in run}
    parsed = [ir_measures.parse_measure(m) for m in measures]
    out: dict[str, dict[str, float]] = {m: {rl.qid: 0.0 for rl in lists} for m in measures}
    for m in ir_measures.iter_calc(parsed, judged, run):
        out[str(m.measure)][m.query_id] = float(m.value)
    return out


def cross_encoder_recipe(model_path: str, train_file: Path, out: Path, *, objective: list[dict],
                         steps: int, group_size: int, batch_lists: int, max_length: int, lr: float,
                         seed: int, bf16: bool, distill: dict | None = None, pooling: str = "cls",
                         eval_file: Path | None = None, eval_top_k: int = 100,
                         training: dict | None = None) -> Any:
    """The recipe every SciFact run shares: MiniLM cross-encoder on [CLS] (or ``pooling``), 1 positive
    per group, linear schedule with 10% warm-up, no checkpoints (the final model is saved).
    ``eval_file`` adds validation lists (their first ``eval_top_k`` documents); ``training`` adds or
    replaces training arguments (e.g. evaluation, early stopping)."""
    from llmrank.config import recipe_from_dict

    data: dict[str, Any] = {"train": {"format": "jsonl", "path": str(train_file)}, "group_size": group_size,
                            "positives_per_group": 1, "label_source": "binary", "seed": seed}
    if eval_file is not None:
        data.update(eval={"format": "jsonl", "path": str(eval_file)}, eval_top_k=eval_top_k)
    return recipe_from_dict(
        {
            "model": {"family": "cross-encoder", "model_name_or_path": model_path, "max_length": max_length,
                      "query_max_length": 48, "options": {"pooling": pooling}},
            "data": data,
            "objective": objective,
            "distill": distill,
            "training": {"output_dir": str(out), "learning_rate": lr, "lr_scheduler_type": "linear",
                         "warmup_steps": max(1, steps // 10), "max_steps": steps,
                         "per_device_train_batch_size": batch_lists, "logging_steps": max(1, steps // 5),
                         "save_strategy": "no", "seed": seed, "use_cpu": True, "disable_tqdm": True,
                         "bf16": bf16, "report_to": "none", **(training or {})},
        },
        where="scifact experiment",
    )  # fmt: skip


def validation_qids(qrels_path: Path, num: int, seed: int, out: Path | None = None) -> list[str]:
    """``num`` query ids drawn (``random.Random(seed)``) from the judged queries of ``qrels_path``,
    sorted; written one per line to ``out`` (atomically) when given. The same (file, num, seed)
    always gives the same ids."""
    import random

    from llmrank.io_utils import atomic_write_text
    from llmrank.runs import read_qrels

    judged = sorted(read_qrels(qrels_path), key=lambda q: (len(q), q))  # numeric order for numeric ids
    if not 0 < num < len(judged):
        raise ValueError(f"validation size {num} must be between 1 and {len(judged) - 1} ({qrels_path})")
    chosen = sorted(random.Random(seed).sample(judged, num), key=lambda q: (len(q), q))
    if out is not None:
        atomic_write_text(out, "".join(f"{q}\n" for q in chosen))
    return chosen


@contextlib.contextmanager
def inference_precision(bf16: bool) -> Iterator[None]:
    """bf16 autocast on the CPU for scoring when asked (about 1.8x on AVX512-BF16 cores)."""
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        yield


def versions() -> dict[str, str]:
    """Versions of what the numbers depend on."""
    import platform
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for pkg in ("llmrank", "torch", "transformers", "ir-measures", "pyserini", "scipy"):
        try:
            out[pkg] = version(pkg)
        except Exception:  # noqa: BLE001 - a missing optional package is reported, not fatal
            out[pkg] = "not installed"
    return out
