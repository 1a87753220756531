"""First stage -> rerank -> evaluate, per dataset, then one table (``llmrank trec-dl`` / ``beir``).

Each dataset writes into ``out_dir/<name>/``: ``first_stage.trec``, ``rerank.trec``,
``latency.json``, ``per_query.csv`` and finally ``result.json`` (atomically). A dataset whose
``result.json`` exists with the same settings is skipped, so an interrupted job resumes where it
stopped. Under ``accelerate launch`` the main process does the first stage and the evaluation,
every process reranks its share of the queries.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from llmrank.evaluate import Evaluation, evaluate_run, markdown_table, paired_ttest
from llmrank.loading import load_ranker
from llmrank.rerank import (
    build_lists,
    fuse_with_first_stage,
    is_main_process,
    merge_with_tail,
    rerank_lists,
    wait_for_everyone,
)
from llmrank.retrieval import BM25Searcher, DocStore, index_corpus, load_qrels, load_topics
from llmrank.runs import (
    Qrels,
    Run,
    Topics,
    is_rank_llm_json,
    read_documents,
    read_rank_llm,
    read_run,
    read_trec_run,
    write_csv,
    write_json,
    write_text,
    write_trec_run,
)
from llmrank.suggest import did_you_mean

#: the dataset table ships inside the package (package data), so a wheel install has it too
DATASETS_RESOURCE = "datasets.yaml"


def dataset_table() -> dict[str, Any]:
    """The dataset table (``llmrank/datasets.yaml``, read with :mod:`importlib.resources`;
    ``$LLMRANK_DATASETS`` names another file)."""
    override = os.environ.get("LLMRANK_DATASETS")
    if override:
        path = Path(override)
        if not path.is_file():
            raise FileNotFoundError(f"LLMRANK_DATASETS={path}: no such file (unset it to use the built-in table)")
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    resource = resources.files("llmrank").joinpath(DATASETS_RESOURCE)
    return yaml.safe_load(resource.read_text(encoding="utf-8"))


@dataclass
class Task:
    """One dataset to evaluate. ``index`` is a Pyserini name or local index; ``corpus`` a local
    corpus (indexed on demand); ``first_stage_run`` a TREC run or rank_llm JSON to start from."""

    name: str
    topics: str | None
    qrels: str
    measures: str
    index: str | None = None
    corpus: str | None = None
    first_stage_run: str | None = None
    remove_query: bool = False
    published: dict[str, float] = field(default_factory=dict)
    group: str | None = None  # e.g. "cqadupstack": rows averaged into one in the table


@dataclass
class PipelineSettings:
    """Settings shared by every dataset of one job."""

    model: str | None
    out_dir: Path
    top_k: int = 100
    hits: int = 1000
    batch_size: int = 32
    threads: int = 1
    cache_dir: str | None = None
    progress: bool = True
    queries_per_chunk: int = 64
    #: :func:`llmrank.load_ranker` keyword arguments (--family, --revision, ...; llmrank.commands.model_args)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    #: also fuse the reranked top-k with the first stage: "rrf" | "linear" (with ``fuse_weight``)
    fuse: str | None = None
    fuse_weight: float | None = None

    def signature(self) -> dict[str, Any]:
        sig: dict[str, Any] = {"model": self.model, "top_k": self.top_k, "hits": self.hits}
        if self.fuse:
            sig["fuse"] = {"method": self.fuse, "weight": self.fuse_weight}
        return sig


# --------------------------------------------------------------------------- dataset resolution
def _unknown(name: str, known: Sequence[str], what: str) -> ValueError:
    hint = did_you_mean(name, known, n=3) or f"; known: {', '.join(known)}"
    return ValueError(f"unknown {what} {name!r}{hint}")


def beir_tasks(datasets: Sequence[str], beir_dir: str | None = None, split: str = "test") -> list[Task]:
    """Tasks for BEIR dataset names (``cqadupstack`` expands to its 12 forums)."""
    table = dataset_table()["beir"]
    forums = list(table["cqadupstack"]["forums"])
    known = [d for d in table if d != "cqadupstack"] + ["cqadupstack"] + [f"cqadupstack-{f}" for f in forums]
    tasks: list[Task] = []
    for raw in datasets:
        name = raw.strip()
        if not name:
            continue
        local = Path(beir_dir) / name if beir_dir else None
        if name == "cqadupstack":
            names = [(f"cqadupstack-{f}", Path(beir_dir) / "cqadupstack" / f if beir_dir else None) for f in forums]
        elif name in known or (local is not None and local.is_dir()):
            sub = name.split("-", 1)[1] if name.startswith("cqadupstack-") else None
            path = local
            if beir_dir and sub and not (local and local.is_dir()):
                path = Path(beir_dir) / "cqadupstack" / sub
            names = [(name, path)]
        else:
            raise _unknown(name, known, "BEIR dataset")
        for ds, folder in names:
            published = _published_beir(table, ds)
            group = "cqadupstack" if ds.startswith("cqadupstack-") else None
            if beir_dir:
                assert folder is not None
                if not folder.is_dir():
                    raise FileNotFoundError(f"BEIR folder {folder} for dataset {ds!r} does not exist")
                qrels = folder / "qrels" / f"{split}.tsv"
                tasks.append(Task(ds, str(folder / "queries.jsonl"), str(qrels), "beir", corpus=str(folder),
                                  remove_query=True, published=published, group=group))
            else:
                tasks.append(Task(ds, f"beir-v1.0.0-{ds}-{split}", f"beir-v1.0.0-{ds}-{split}", "beir",
                                  index=f"beir-v1.0.0-{ds}.flat", remove_query=True, published=published, group=group))
    if not tasks:
        raise ValueError("no datasets given")
    return tasks


def _published_beir(table: dict[str, Any], ds: str) -> dict[str, float]:
    if ds.startswith("cqadupstack-"):
        forum = table["cqadupstack"]["forums"].get(ds.split("-", 1)[1]) or {}
        return dict(forum.get("bm25", {}))
    return dict((table.get(ds) or {}).get("bm25", {}))


def _per_year(value: str | None, years: Sequence[str], what: str) -> list[str | None]:
    """A per-year option: one value for all, a comma list (one per year) or a ``{year}`` template."""
    if value is None:
        return [None] * len(years)
    if "{year}" in value:
        return [value.replace("{year}", y) for y in years]
    parts = value.split(",")
    if len(parts) == 1:
        return [value] * len(years)
    if len(parts) != len(years):
        raise ValueError(f"--{what} has {len(parts)} values for {len(years)} years")
    return parts


def trec_dl_tasks(
    years: Sequence[str],
    first_stage: str = "bm25",
    qrels: str | None = None,
    topics: str | None = None,
    index: str | None = None,
    corpus: str | None = None,
) -> list[Task]:
    """Tasks for TREC DL passage years (2019-2023)."""
    table = dataset_table()["trec_dl"]
    years = [y.strip() for y in years if y.strip()]
    for y in years:
        if y not in table:
            raise _unknown(y, list(table), "TREC DL year")
    runs = [None if first_stage == "bm25" else r for r in _per_year(first_stage, years, "first-stage")]
    qrels_l, topics_l = _per_year(qrels, years, "qrels"), _per_year(topics, years, "topics")
    index_l, corpus_l = _per_year(index, years, "index"), _per_year(corpus, years, "corpus")
    tasks = []
    for i, y in enumerate(years):
        row = table[y]
        own_topics = runs[i] is not None and is_rank_llm_json(runs[i])  # rank_llm JSON carries the queries
        tasks.append(Task(
            name=f"dl{y[2:]}", topics=topics_l[i] or (None if own_topics else row["topics"]), qrels=qrels_l[i] or row["qrels"], measures="dl",
            index=index_l[i] or (None if corpus_l[i] else row["index"]), corpus=corpus_l[i],
            first_stage_run=runs[i], published=dict(row.get("bm25", {})) if runs[i] is None else {},
        ))  # fmt: skip
    return tasks


# --------------------------------------------------------------------------- running
def load_ranker_or_none(model: str | None, **kwargs: Any) -> Any:
    """``llmrank.load_ranker(model, **kwargs)``; ``None``/``'none'`` means first stage only."""
    if model is None or model.lower() == "none":
        return None
    return load_ranker(model, **kwargs)


def _first_stage(task: Task, settings: PipelineSettings, topics: Topics) -> tuple[Run, Any]:
    """(first-stage run, BM25 searcher or None)."""
    if task.first_stage_run:
        return read_run(task.first_stage_run), None
    index = task.index or str(index_corpus(task.corpus, settings.cache_dir, threads=settings.threads))
    searcher = BM25Searcher(index)
    return searcher.search(topics, k=settings.hits, threads=settings.threads, remove_query=task.remove_query), searcher


def _topics_for(task: Task, qrels: Qrels) -> Topics:
    if task.topics is None:
        if not (task.first_stage_run and is_rank_llm_json(task.first_stage_run)):
            raise ValueError(f"{task.name}: no topics given")
        return read_rank_llm(task.first_stage_run)[1]
    topics = load_topics(task.topics)
    judged = {q: t for q, t in topics.items() if q in qrels}
    return judged or topics  # BEIR queries.jsonl holds every split: keep the judged ones


def _doc_store(task: Task, searcher: Any) -> DocStore:
    docs = {}
    if task.first_stage_run and is_rank_llm_json(task.first_stage_run):
        docs = read_rank_llm(task.first_stage_run)[2]
    if task.corpus:
        docs.update(read_documents(task.corpus))
        return DocStore(docs)
    if searcher is None and task.index and not docs:
        searcher = BM25Searcher(task.index)
    return DocStore(docs, searcher)


def run_task(task: Task, ranker: Any, settings: PipelineSettings) -> dict[str, Any]:
    """First stage, rerank and evaluate one dataset (or load its finished result)."""
    out = settings.out_dir / task.name
    done = out / "result.json"
    if done.exists():
        prev = json.loads(done.read_text())
        if prev.get("settings") == settings.signature():
            return prev
    qrels = load_qrels(task.qrels)
    topics = _topics_for(task, qrels)
    searcher = None
    fs_path = out / "first_stage.trec"
    if is_main_process():
        first, searcher = _first_stage(task, settings, topics)
        write_trec_run(fs_path, first, tag="first-stage")
    wait_for_everyone()
    first = read_trec_run(fs_path)
    result: dict[str, Any] = {"dataset": task.name, "settings": settings.signature(), "published_bm25": task.published}
    fs_eval = evaluate_run(first, qrels, task.measures) if is_main_process() else None
    if fs_eval is not None:
        result["first_stage"] = fs_eval.aggregate
    if ranker is not None:
        store = _doc_store(task, searcher)
        wanted = {d for ranked in first.values() for d, _ in ranked[: settings.top_k]}
        lists = build_lists(first, topics, store.get(wanted), settings.top_k)
        reranked, stats = rerank_lists(ranker, lists, settings.batch_size, settings.progress, desc=task.name,
                                       queries_per_chunk=settings.queries_per_chunk)
        if is_main_process():
            full = merge_with_tail(reranked, first, settings.top_k)
            write_trec_run(out / "rerank.trec", full, tag="llmrank")
            write_json(out / "latency.json", stats.to_dict())
            rr_eval = evaluate_run(full, qrels, task.measures)
            result["rerank"] = rr_eval.aggregate
            result["ttest_rel"] = paired_ttest(rr_eval, fs_eval)
            result["latency"] = stats.summary()
            fused_eval = None
            if settings.fuse:
                fused = fuse_with_first_stage(reranked, first, settings.top_k, settings.fuse, settings.fuse_weight)
                write_trec_run(out / f"fused-{settings.fuse}.trec", fused, tag=f"llmrank-{settings.fuse}")
                fused_eval = evaluate_run(fused, qrels, task.measures)
                result["fused"] = fused_eval.aggregate
                result["fusion"] = {"method": settings.fuse, "weight": settings.fuse_weight}
                result["ttest_rel_fused"] = paired_ttest(fused_eval, fs_eval)
            _per_query_csv(out / "per_query.csv", fs_eval, rr_eval, fused_eval)
    elif fs_eval is not None:
        _per_query_csv(out / "per_query.csv", fs_eval, None)
    if is_main_process():
        write_json(done, result)
    wait_for_everyone()
    return result


def _per_query_csv(path: Path, first: Evaluation, rerank: Evaluation | None, fused: Evaluation | None = None) -> None:
    runs = [("first_stage", first), ("rerank", rerank), ("fused", fused)]
    runs = [(name, ev) for name, ev in runs if ev is not None]
    header = ["query_id"] + [f"{name} {m}" for name, ev in runs for m in ev.measures]
    rows = []
    for q in sorted(first.per_query):
        rows.append([q] + [f"{ev.per_query[q][m]:.6f}" for _, ev in runs for m in ev.measures])
    write_csv(path, header, rows)


def run_pipeline(
    tasks: Sequence[Task], settings: PipelineSettings, log: Callable[[str], None] = print
) -> tuple[str, list[dict[str, Any]]]:
    """Run every task (resuming finished ones) and write ``summary.{md,csv,json}``."""
    ranker = load_ranker_or_none(settings.model, **settings.model_kwargs)
    results = []
    for task in tasks:
        res = run_task(task, ranker, settings)
        if is_main_process():
            fs = res.get("first_stage", {}).get("nDCG@10")
            rr = res.get("rerank", {}).get("nDCG@10")
            log(f"[{task.name}] nDCG@10 first stage {fs:.4f}" + (f", rerank {rr:.4f}" if rr is not None else ""))
        results.append(res)
    md = ""
    if is_main_process():
        md = write_summary(tasks, results, settings)
    return md, results


def summary_rows(tasks: Sequence[Task], results: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Table rows: one per dataset (groups such as CQADupStack averaged) plus the average."""
    measures: list[str] = []
    for r in results:
        for m in r.get("first_stage", {}):
            if m not in measures:
                measures.append(m)
    has_rerank = any("rerank" in r for r in results)
    has_fused = any("fused" in r for r in results)
    units: dict[str, list[dict[str, Any]]] = {}
    for task, res in zip(tasks, results):
        units.setdefault(task.group or task.name, []).append(res)
    columns = ["dataset", "published BM25 nDCG@10"]
    columns += [f"first stage {m}" for m in measures]
    if has_rerank:
        columns += [f"rerank {m}" for m in measures]
    if has_fused:  # the fused rows sit next to the reranker alone
        columns += [f"fused {m}" for m in measures]
    rows = []
    for name, group in units.items():
        row: dict[str, Any] = {"dataset": name}
        row["published BM25 nDCG@10"] = _mean([g.get("published_bm25", {}).get("nDCG@10") for g in group])
        for m in measures:
            row[f"first stage {m}"] = _mean([g.get("first_stage", {}).get(m) for g in group])
            if has_rerank:
                row[f"rerank {m}"] = _mean([g.get("rerank", {}).get(m) for g in group])
            if has_fused:
                row[f"fused {m}"] = _mean([g.get("fused", {}).get(m) for g in group])
        rows.append(row)
    if len(rows) > 1:
        avg = {"dataset": "average"}
        for c in columns[1:]:
            avg[c] = _mean([r.get(c) for r in rows])
        rows.append(avg)
    return rows, columns


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.fmean(vals) if vals and len(vals) == len(values) else None


def write_summary(tasks: Sequence[Task], results: Sequence[dict[str, Any]], settings: PipelineSettings) -> str:
    """``summary.md`` / ``summary.csv`` / ``summary.json`` in the output folder; returns the markdown."""
    rows, columns = summary_rows(tasks, results)
    md = markdown_table(rows, columns)
    out = settings.out_dir
    write_text(out / "summary.md", md + "\n")
    write_csv(out / "summary.csv", columns, [[("" if r.get(c) is None else r.get(c)) for c in columns] for r in rows])
    write_json(out / "summary.json", {"settings": settings.signature(), "rows": rows, "datasets": list(results)})
    return md
