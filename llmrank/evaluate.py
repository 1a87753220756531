"""ir-measures with the field's conventions, paired significance tests and tables.

Conventions (Pyserini 2CR / trec_eval ``-c``):

* ``dl``: nDCG@10 on graded labels 0-3 (linear gain, as trec_eval ``ndcg_cut``); RR@10, AP,
  R@100 and R@1000 with relevance >= 2 counted as relevant (trec_eval ``-l 2``).
* ``beir``: nDCG@10 and R@100 with relevance >= 1.
* every judged query counts; a judged query absent from the run scores 0 (trec_eval ``-c``),
  which keeps a reranker from looking better by dropping hard queries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ir_measures

from llmrank.runs import Qrels, Run, run_to_dict, write_csv, write_json, write_text

MEASURE_SETS: dict[str, list[str]] = {
    "dl": ["nDCG@10", "RR(rel=2)@10", "AP(rel=2)", "R(rel=2)@100", "R(rel=2)@1000"],
    "beir": ["nDCG@10", "R@100"],
}


def parse_measures(spec: str | Sequence[str]) -> list[Any]:
    """``dl`` | ``beir`` | a comma list of ir-measures names (``nDCG@10,R(rel=2)@1000``)."""
    names = MEASURE_SETS.get(spec, None) if isinstance(spec, str) else None
    if names is None:
        names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    out = []
    for name in names:
        if not name:
            continue
        try:
            out.append(ir_measures.parse_measure(name))
        except Exception as exc:
            raise ValueError(
                f"unknown measure {name!r} ({exc}); use 'dl', 'beir' or ir-measures names like nDCG@10,R@100"
            ) from None
    if not out:
        raise ValueError("no measures given")
    return out


@dataclass
class Evaluation:
    """Aggregates (mean over judged queries) and per-query values of one run."""

    measures: list[str]
    aggregate: dict[str, float]
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    judged_queries: int = 0
    run_queries_judged: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "measures": self.measures,
            "aggregate": self.aggregate,
            "judged_queries": self.judged_queries,
            "run_queries_judged": self.run_queries_judged,
        }


def evaluate_run(run: Run | Mapping[str, Mapping[str, float]], qrels: Qrels, measures: str | Sequence[Any] = "dl") -> Evaluation:
    """Evaluate ``run`` on ``qrels``: aggregates over every judged query (missing = 0)."""
    ms = parse_measures(measures) if isinstance(measures, str) or (measures and isinstance(measures[0], str)) else list(measures)
    scored = run_to_dict(run) if run and isinstance(next(iter(run.values())), list) else {q: dict(d) for q, d in run.items()}
    judged = [q for q in qrels if q in scored]
    if not judged:
        raise ValueError(
            f"the run and the qrels share no query ids (run: {sorted(scored)[:3]}..., qrels: {sorted(qrels)[:3]}...); "
            "check that they are for the same topics"
        )
    names = [str(m) for m in ms]
    per_query: dict[str, dict[str, float]] = {q: dict.fromkeys(names, 0.0) for q in qrels}
    for metric in ir_measures.iter_calc(ms, qrels, {q: scored[q] for q in judged}):
        if metric.query_id in per_query:
            per_query[metric.query_id][str(metric.measure)] = float(metric.value)
    aggregate = {n: sum(v[n] for v in per_query.values()) / len(per_query) for n in names}
    return Evaluation(names, aggregate, per_query, judged_queries=len(qrels), run_queries_judged=len(judged))


def paired_ttest(a: Evaluation, b: Evaluation) -> dict[str, dict[str, float | None]]:
    """Two-sided paired t-test of ``a`` against ``b`` per measure over all judged queries
    (``scipy.stats.ttest_rel``; a query missing from a run counts 0, as in trec_eval -c)."""
    from scipy.stats import ttest_rel

    out: dict[str, dict[str, float | None]] = {}
    qids = sorted(set(a.per_query) | set(b.per_query))
    for name in a.measures:
        if name not in b.measures:
            continue
        xa = [a.per_query.get(q, {}).get(name, 0.0) for q in qids]
        xb = [b.per_query.get(q, {}).get(name, 0.0) for q in qids]
        diff = sum(x - y for x, y in zip(xa, xb)) / len(qids) if qids else 0.0
        if len(qids) < 2 or all(x == y for x, y in zip(xa, xb)):
            p = None  # identical per-query values: no test to run
        else:
            res = ttest_rel(xa, xb)
            p = None if math.isnan(res.pvalue) else float(res.pvalue)
        out[name] = {"delta": diff, "p_value": p}
    return out


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], digits: int = 4) -> str:
    """A GitHub markdown table; floats printed with ``digits`` decimals, None as '–'."""

    def fmt(v: Any) -> str:
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{v:.{digits}f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def report(
    evaluation: Evaluation,
    name: str = "run",
    baseline: Evaluation | None = None,
    baseline_name: str = "baseline",
    alpha: float = 0.05,
) -> tuple[str, dict[str, Any]]:
    """Markdown and JSON for a run (and its paired test against a baseline)."""
    rows = [{"run": name, **evaluation.aggregate}]
    result: dict[str, Any] = {"run": name, **evaluation.to_dict()}
    if baseline is not None:
        tests = paired_ttest(evaluation, baseline)
        rows.insert(0, {"run": baseline_name, **baseline.aggregate})
        row = {"run": f"Δ vs {baseline_name} (p)"}
        for m, t in tests.items():
            p = t["p_value"]
            mark = "*" if p is not None and p < alpha else ""
            row[m] = f"{t['delta']:+.4f}{mark} ({'–' if p is None else f'{p:.3g}'})"
        rows.append(row)
        result["baseline"] = {"run": baseline_name, **baseline.to_dict()}
        result["ttest_rel"] = tests
    md = markdown_table(rows, ["run", *evaluation.measures])
    md += f"\n\n{evaluation.judged_queries} judged queries ({evaluation.run_queries_judged} in the run; missing count 0)."
    if baseline is not None:
        md += f" `*`: paired t-test p < {alpha}."
    return md, result


def write_outputs(out_dir: str | Path, evaluation: Evaluation, markdown: str, result: Mapping[str, Any], baseline: Evaluation | None = None) -> None:
    """``metrics.json``, ``metrics.md`` and ``per_query.csv`` in ``out_dir`` (atomic writes)."""
    out = Path(out_dir)
    header = ["query_id", *evaluation.measures]
    rows = []
    for qid in sorted(evaluation.per_query):
        rows.append([qid, *(f"{evaluation.per_query[qid][m]:.6f}" for m in evaluation.measures)])
    if baseline is not None:
        header += [f"baseline {m}" for m in evaluation.measures]
        rows = [r + [f"{baseline.per_query.get(r[0], {}).get(m, 0.0):.6f}" for m in evaluation.measures] for r in rows]
    write_csv(out / "per_query.csv", header, rows)
    write_json(out / "metrics.json", dict(result))
    write_text(out / "metrics.md", markdown + "\n")
