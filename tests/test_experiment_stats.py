"""The experiments' significance tests (``llmrank.beir_experiment``) against scipy on hand-made runs."""

from __future__ import annotations

import statistics

import pytest
from scipy.stats import ttest_rel

from llmrank.beir_experiment import paired_diff, seed_paired_diff, verdict

QIDS = ["q1", "q2", "q3", "q4"]


def run(seed: int, values: list[float]) -> dict:
    return {"seed": seed, "per_query": {"nDCG@10": dict(zip(QIDS, values))}}


A = [run(1, [0.9, 0.5, 0.7, 0.2]), run(2, [0.8, 0.4, 0.9, 0.1]), run(3, [0.7, 0.6, 0.8, 0.3])]
B = [run(3, [0.5, 0.5, 0.6, 0.2]), run(1, [0.6, 0.3, 0.7, 0.4]), run(2, [0.9, 0.2, 0.5, 0.0])]


def test_paired_diff_is_a_per_query_test_on_seed_averages() -> None:
    ours = [statistics.fmean(r["per_query"]["nDCG@10"][q] for r in A) for q in QIDS]
    theirs = [statistics.fmean(r["per_query"]["nDCG@10"][q] for r in B) for q in QIDS]
    got = paired_diff(A, B, QIDS, "nDCG@10")
    assert got["diff"] == pytest.approx(statistics.fmean(ours) - statistics.fmean(theirs))
    assert got["p"] == pytest.approx(ttest_rel(ours, theirs).pvalue)


def test_seed_paired_diff_pairs_runs_by_seed_whatever_their_order() -> None:
    means = {r["seed"]: statistics.fmean(r["per_query"]["nDCG@10"].values()) for r in A}
    peer = {r["seed"]: statistics.fmean(r["per_query"]["nDCG@10"].values()) for r in B}
    got = seed_paired_diff(A, B, QIDS, "nDCG@10")
    assert got["seeds"] == [1, 2, 3]
    assert got["wins"] == sum(means[s] > peer[s] for s in (1, 2, 3))
    assert got["p"] == pytest.approx(ttest_rel([means[s] for s in (1, 2, 3)], [peer[s] for s in (1, 2, 3)]).pvalue)
    assert got["diff"] == pytest.approx(statistics.fmean(means.values()) - statistics.fmean(peer.values()))
    # fewer than two shared seeds: no test; only the shared seeds count
    assert seed_paired_diff(A[:1], B, QIDS, "nDCG@10")["p"] is None
    assert seed_paired_diff(A[:2], B[1:], QIDS, "nDCG@10")["seeds"] == [1, 2]
    assert seed_paired_diff(A[:1], B[:1], QIDS, "nDCG@10") == {"diff": None, "p": None, "seeds": [], "wins": 0}


def test_verdict() -> None:
    assert verdict({"diff": 0.1, "p": 0.01}) == "holds"
    assert verdict({"diff": -0.1, "p": 0.01}) == "reversed"
    assert verdict({"diff": 0.1, "p": 0.2}) == "not significant"
    assert verdict({"diff": 0.0, "p": None}) == "not significant"
