"""Evaluation results of a model folder as rows, a markdown table and Hub ``model-index`` entries.

Evaluation JSON (files matching :data:`EVAL_RESULT_GLOBS`, or passed in) may be a list of rows
``{"dataset", "first_stage"?, "split"?, "metrics" | "reranker_metrics", "first_stage_metrics"?}``
(``first_stage`` may be ``{"name", "metrics"}``; the `llmrank beir` / `trec-dl` tables are such
rows), ``{"rows" | "results": [...]}``, one row, or ``{dataset: {metric: value}}``; values that
are not numbers are ignored.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult

logger = logging.getLogger(__name__)

EVAL_RESULT_GLOBS = ("eval_results*.json", "beir_results*.json", "trec_dl_results*.json", "evaluation*.json")
#: metrics listed first in tables, in this order; others follow alphabetically
METRIC_ORDER = ("nDCG@10", "RR@10", "MRR@10", "R@100", "R(rel=2)@1000", "AP(rel=2)", "AP")


@dataclass
class EvalRow:
    """One dataset's scores: the reranker's ``metrics`` and, if known, the first stage's."""

    dataset: str
    metrics: dict[str, float]
    first_stage: str | None = None
    first_stage_metrics: dict[str, float] = field(default_factory=dict)
    split: str | None = None


def _numbers(obj: Any) -> dict[str, float]:
    ok = isinstance(obj, Mapping)
    return {str(k): float(v) for k, v in obj.items() if isinstance(v, int | float) and not isinstance(v, bool)} if ok else {}


def _row(obj: Mapping[str, Any]) -> EvalRow | None:
    dataset = obj.get("dataset") or obj.get("name")
    metrics = _numbers(obj.get("reranker_metrics") or obj.get("metrics"))
    first, first_metrics = obj.get("first_stage"), _numbers(obj.get("first_stage_metrics"))
    if isinstance(first, Mapping):
        first_metrics, first = first_metrics or _numbers(first.get("metrics")), first.get("name")
    if not isinstance(dataset, str) or not (metrics or first_metrics):
        return None
    split = obj.get("split")
    return EvalRow(dataset, metrics, str(first) if first else None, first_metrics, str(split) if split else None)


def parse_eval_results(obj: Any) -> list[EvalRow]:
    """Normalise one evaluation JSON object (any shape in the module docstring) to rows."""
    if isinstance(obj, list):
        return [row for item in obj for row in parse_eval_results(item)]
    if not isinstance(obj, Mapping):
        return []
    for key in ("rows", "results"):
        if isinstance(obj.get(key), list):
            return parse_eval_results(obj[key])
    row = _row(obj)
    if row is not None:
        return [row]
    by_name = ({"dataset": name, "metrics": v, **v} for name, v in obj.items() if isinstance(v, Mapping))
    return [r for r in map(_row, by_name) if r is not None]


def read_eval_results(paths: Iterable[str | os.PathLike]) -> list[EvalRow]:
    """Rows from evaluation JSON files; unreadable files are skipped with a warning."""
    rows: list[EvalRow] = []
    for p in paths:
        try:
            rows += parse_eval_results(json.loads(Path(p).read_text()))
        except (OSError, ValueError) as exc:
            logger.warning("model card: skipping evaluation file %s (%s)", p, exc)
    return rows


def _metric_order(names: Iterable[str]) -> list[str]:
    names = set(names)
    return [m for m in METRIC_ORDER if m in names] + sorted(names - set(METRIC_ORDER))


def eval_table(rows: list[EvalRow]) -> str:
    """Markdown table: one line per dataset, cells ``first stage → reranked`` where both exist."""
    fmt = lambda x: "–" if x is None else f"{x:.4f}"  # noqa: E731
    metrics = _metric_order(m for r in rows for m in (*r.metrics, *r.first_stage_metrics))
    lines = ["| " + " | ".join(["Dataset", "First stage", *metrics]) + " |", "|" + "---|" * (len(metrics) + 2)]
    for r in rows:
        cells = [r.dataset + (f" ({r.split})" if r.split else ""), r.first_stage or "–"]
        for m in metrics:
            a, b = r.first_stage_metrics.get(m), r.metrics.get(m)
            cells.append(f"{fmt(a)} → **{fmt(b)}**" if a is not None and b is not None else fmt(b if b is not None else a))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) if rows else ""


def model_index_results(rows: list[EvalRow]) -> list[EvalResult]:
    """One Hub ``EvalResult`` per dataset x reranker metric (BEIR names -> ``BeIR/<name>``, DL -> MS MARCO)."""
    def hub_dataset(name: str) -> str:
        if "/" in name:
            return name
        return "microsoft/ms_marco" if name.lower().startswith(("dl19", "dl20", "msmarco", "trec-dl", "dl-")) else f"BeIR/{name.lower().split(':')[0]}"

    return [
        EvalResult(task_type="text-ranking", task_name="Reranking", dataset_type=hub_dataset(r.dataset), dataset_name=r.dataset,
                   dataset_split=r.split, metric_type=re.sub(r"[^a-z0-9]+", "_", m.lower().replace("@", "_at_")).strip("_"),
                   metric_name=m, metric_value=round(r.metrics[m], 6))  # fmt: skip
        for r in rows
        if r.dataset.lower() not in ("average", "mean", "macro-average", "avg")
        for m in _metric_order(r.metrics)
    ]


def folder_eval_results(folder: str | os.PathLike) -> list[EvalRow]:
    """Rows of the folder's evaluation files (:data:`EVAL_RESULT_GLOBS`)."""
    root = Path(folder)
    return read_eval_results(sorted({p for g in EVAL_RESULT_GLOBS for p in root.glob(g) if p.is_file()}))
