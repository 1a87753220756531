"""Fusing a reranker's run with its first stage: reciprocal-rank and linear fusion.

Practitioners rarely ship a reranker's scores alone: they combine them with the first stage
(BM25, a dense retriever), which both guards against a reranker's blind spots and recovers the
first stage's strength on out-of-domain data. Two standard forms:

* **RRF** (Cormack, Clarke & Büttcher, SIGIR 2009): ``s(d) = Σ_r w_r / (k + rank_r(d))`` with
  1-based ranks and ``k = 60``; a document missing from a run adds nothing from it. Scale-free:
  only ranks are used.
* **Linear interpolation** of per-query normalised scores:
  ``s(d) = w · norm(s_rerank(d)) + (1 − w) · norm(s_first(d))``. ``norm`` is min-max to [0, 1]
  (or z-score); a document one run lacks gets that run's normalised minimum (0 with min-max),
  which is what a run's "not retrieved" means. ``w`` must be chosen on validation queries
  (:func:`tune_linear_weight`), never on the test queries it is reported on.

A run is ``{qid: [(docid, score), ...]}`` best first (:mod:`llmrank.runs`). Outputs are best
first with strictly decreasing scores: ties are broken by the reranker's order, then the first
stage's, then docid, and nudged apart (:func:`llmrank.runs.strictly_decreasing`), because
trec_eval and ir-measures would otherwise break them by docid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from llmrank.evaluate import evaluate_run
from llmrank.runs import Qrels, Run, strictly_decreasing

FUSION_METHODS = ("rrf", "linear")
NORMALIZATIONS = ("minmax", "zscore")
#: the validation grid for the linear weight: 0 (first stage alone) .. 1 (reranker alone)
DEFAULT_WEIGHT_GRID = tuple(round(0.05 * i, 2) for i in range(21))


def _ranks(ranked: Sequence[tuple[str, float]]) -> dict[str, int]:
    """1-based rank of each document of a best-first list (first occurrence wins)."""
    out: dict[str, int] = {}
    for i, (docid, _) in enumerate(ranked, start=1):
        out.setdefault(docid, i)
    return out


def _order(fused: Mapping[str, float], tie_ranks: Sequence[Mapping[str, int]]) -> list[tuple[str, float]]:
    big = 1 << 60

    def key(docid: str) -> tuple[Any, ...]:
        return (-fused[docid], *(r.get(docid, big) for r in tie_ranks), docid)

    ordered = sorted(fused, key=key)
    # ir-measures / trec_eval break score ties by docid, not by list order: nudge ties apart
    return list(zip(ordered, strictly_decreasing([fused[d] for d in ordered])))


def rrf(runs: Sequence[Run], k: float = 60.0, weights: Sequence[float] | None = None) -> Run:
    """Reciprocal-rank fusion of ``runs`` (each best first): ``Σ_r w_r / (k + rank_r(d))``.

    Queries are the union of the runs' queries; ``weights`` default to 1 per run.
    """
    if not runs:
        raise ValueError("rrf needs at least one run")
    if k <= 0 or not math.isfinite(k):
        raise ValueError(f"rrf k must be a positive number, got {k!r}")
    weights = [1.0] * len(runs) if weights is None else [float(w) for w in weights]
    if len(weights) != len(runs):
        raise ValueError(f"rrf got {len(weights)} weights for {len(runs)} runs")
    out: Run = {}
    qids = list(dict.fromkeys(q for run in runs for q in run))
    for qid in qids:
        rank_maps = [_ranks(run.get(qid, [])) for run in runs]
        fused: dict[str, float] = {}
        for w, ranks in zip(weights, rank_maps):
            for docid, r in ranks.items():
                fused[docid] = fused.get(docid, 0.0) + w / (k + r)
        out[qid] = _order(fused, rank_maps)
    return out


def normalize_scores(scores: Mapping[str, float], method: str = "minmax") -> dict[str, float]:
    """Per-query score normalisation: ``minmax`` to [0, 1] or ``zscore`` (population std).

    A list whose scores are all equal maps to all zeros (it carries no ordering information).
    """
    if method not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {method!r}; use one of {', '.join(NORMALIZATIONS)}")
    if not scores:
        return {}
    values = [float(v) for v in scores.values()]
    if not all(math.isfinite(v) for v in values):
        bad = next(d for d, v in scores.items() if not math.isfinite(float(v)))
        raise ValueError(f"score of document {bad!r} is not finite; cannot normalise")
    if method == "minmax":
        lo, hi = min(values), max(values)
        span = hi - lo
        return {d: (float(v) - lo) / span if span > 0 else 0.0 for d, v in scores.items()}
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return {d: (float(v) - mean) / std if std > 0 else 0.0 for d, v in scores.items()}


def linear_fusion(reranked: Run, first_stage: Run, weight: float, normalization: str = "minmax") -> Run:
    """``w · norm(rerank) + (1 − w) · norm(first stage)`` per query over the union of documents.

    A document missing from one run takes that run's normalised minimum for the query.
    """
    if not 0.0 <= float(weight) <= 1.0:
        raise ValueError(f"the linear fusion weight must lie in [0, 1], got {weight!r}")
    w = float(weight)
    out: Run = {}
    for qid in dict.fromkeys([*reranked, *first_stage]):
        a = normalize_scores(dict(reversed(reranked.get(qid, []))), normalization)
        b = normalize_scores(dict(reversed(first_stage.get(qid, []))), normalization)
        floor_a = min(a.values(), default=0.0)
        floor_b = min(b.values(), default=0.0)
        fused = {d: w * a.get(d, floor_a) + (1.0 - w) * b.get(d, floor_b) for d in dict.fromkeys([*a, *b])}
        out[qid] = _order(fused, [_ranks(reranked.get(qid, [])), _ranks(first_stage.get(qid, []))])
    return out


def fuse(
    reranked: Run,
    first_stage: Run,
    method: str,
    *,
    weight: float | None = None,
    k: float = 60.0,
    normalization: str = "minmax",
) -> Run:
    """Fuse a reranker's run with its first stage by ``method`` (``rrf`` or ``linear``)."""
    if method == "rrf":
        return rrf([reranked, first_stage], k=k)
    if method == "linear":
        if weight is None:
            raise ValueError(
                "linear fusion needs a weight chosen on validation queries "
                "(llmrank.fusion.tune_linear_weight, or `llmrank tune-fusion`)"
            )
        return linear_fusion(reranked, first_stage, weight, normalization)
    raise ValueError(f"unknown fusion {method!r}; use one of {', '.join(FUSION_METHODS)}")


def tune_linear_weight(
    reranked: Run,
    first_stage: Run,
    qrels: Qrels,
    *,
    measure: str = "nDCG@10",
    grid: Sequence[float] = DEFAULT_WEIGHT_GRID,
    normalization: str = "minmax",
) -> tuple[float, list[dict[str, float]]]:
    """Pick the linear weight that maximises ``measure`` on *validation* queries.

    Returns ``(best weight, [{weight, measure value}, ...])``; ties go to the smaller weight
    (closer to the first stage, the safer choice). Only queries judged in ``qrels`` count.
    """
    if not grid:
        raise ValueError("the weight grid is empty")
    judged = {q for q in qrels if q in reranked or q in first_stage}
    if not judged:
        raise ValueError("no validation query of the qrels appears in the runs; check the query ids")
    rr = {q: v for q, v in reranked.items() if q in judged}
    fs = {q: v for q, v in first_stage.items() if q in judged}
    sub_qrels = {q: qrels[q] for q in judged}
    curve: list[dict[str, float]] = []
    best_w, best_v = None, -math.inf
    for w in sorted(float(x) for x in grid):
        value = evaluate_run(linear_fusion(rr, fs, w, normalization), sub_qrels, [measure]).aggregate[measure]
        curve.append({"weight": w, measure: value})
        if value > best_v + 1e-12:
            best_w, best_v = w, value
    assert best_w is not None
    return best_w, curve
