"""llmrank.metrics against ir-measures (nDCG@10, RR@10) on random runs with ties and unjudged docs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmrank.metrics import mean_over_lists, mrr_at_k, ndcg_at_k

ir_measures = pytest.importorskip("ir_measures")
from ir_measures import RR, Qrel, ScoredDoc, nDCG  # noqa: E402

N_LISTS, N = 60, 25


def _random_lists(seed: int):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=(N_LISTS, N)), 1)  # rounding -> many ties
    labels = rng.integers(0, 4, size=(N_LISTS, N)) * (rng.random((N_LISTS, N)) < 0.4)
    judged = rng.random((N_LISTS, N)) < 0.7  # the rest is missing from the qrels (label 0 here)
    judged[:, 0] = True  # every query has at least one qrel, so trec_eval keeps it
    labels = np.where(judged, labels, 0)
    lengths = rng.integers(1, N + 1, size=N_LISTS)
    mask = np.arange(N)[None, :] < lengths[:, None]
    return scores, labels, judged, mask


def _to_trec(scores, labels, judged, mask, descending: bool):
    # ir-measures 0.4.3 computes nDCG@10 with pytrec_eval (ties: docid descending) but RR@10 with its
    # msmarco provider (ties: docid ascending).  Docids are named so that the tie order of the provider
    # is the input order, as in llmrank.metrics.
    qrels, run = [], []
    for q in range(scores.shape[0]):
        for i in range(scores.shape[1]):
            if not mask[q, i]:
                continue
            docid = f"d{N - i:04d}" if descending else f"d{i:04d}"
            run.append(ScoredDoc(f"q{q}", docid, float(scores[q, i])))
            if judged[q, i]:
                qrels.append(Qrel(f"q{q}", docid, int(labels[q, i])))
    return qrels, run


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_ir_measures(seed):
    scores, labels, judged, mask = _random_lists(seed)
    qrels, run = _to_trec(scores, labels, judged, mask, descending=True)
    qrels_a, run_a = _to_trec(scores, labels, judged, mask, descending=False)
    s, y, m = torch.tensor(scores), torch.tensor(labels), torch.tensor(mask)
    ndcg = ndcg_at_k(s, y, k=10, mask=m).numpy()
    rr = mrr_at_k(s, y, k=10, mask=m).numpy()
    per_query = {(r.query_id, str(r.measure)): r.value for r in ir_measures.iter_calc([nDCG @ 10], qrels, run)}
    per_query.update({(r.query_id, str(r.measure)): r.value for r in ir_measures.iter_calc([RR @ 10], qrels_a, run_a)})
    for q in range(N_LISTS):
        assert ndcg[q] == pytest.approx(per_query[(f"q{q}", "nDCG@10")], abs=1e-9)
        assert rr[q] == pytest.approx(per_query[(f"q{q}", "RR@10")], abs=1e-9)
    agg = {**ir_measures.calc_aggregate([nDCG @ 10], qrels, run), **ir_measures.calc_aggregate([RR @ 10], qrels_a, run_a)}
    assert mean_over_lists(torch.tensor(ndcg), m) == pytest.approx(agg[nDCG @ 10], abs=1e-9)
    assert mean_over_lists(torch.tensor(rr), m) == pytest.approx(agg[RR @ 10], abs=1e-9)


def test_tie_conventions_of_ir_measures():
    # all scores tie; nDCG@10 (pytrec_eval) ranks by docid descending, RR@10 (msmarco provider) ascending,
    # whatever the order of the run
    qrels = [Qrel("q", "a", 0), Qrel("q", "b", 0), Qrel("q", "c", 1)]
    for order in ("abc", "cab"):
        run = [ScoredDoc("q", d, 1.0) for d in order]
        assert ir_measures.calc_aggregate([nDCG @ 1], qrels, run)[nDCG @ 1] == 1.0  # c first
        assert ir_measures.calc_aggregate([RR @ 10], qrels, run)[RR @ 10] == pytest.approx(1 / 3)  # c last
    s = torch.ones(1, 3)
    y = torch.tensor([[0, 0, 1]])
    assert mrr_at_k(s, y).item() == pytest.approx(1 / 3)  # ours: input order
    assert mrr_at_k(s, y.flip(-1)).item() == 1.0  # same list given in docid-descending order


def test_edge_cases():
    s = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    y = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 2.0]])
    m = torch.tensor([[True, True, True], [True, True, False]])
    assert ndcg_at_k(s, y, mask=m)[0].item() == 0.0  # no relevant item
    assert mrr_at_k(s, y, mask=m)[1].item() == 0.5  # the padded label-2 item is not ranked
    assert ndcg_at_k(s, y, k=1, mask=m)[1].item() == 0.0
    assert mean_over_lists(torch.tensor([1.0, 0.5]), torch.tensor([[True], [False]])) == 1.0
    with pytest.raises(ValueError):
        ndcg_at_k(s, y[:, :2])
    with pytest.raises(ValueError):
        mrr_at_k(s, y, k=0)
