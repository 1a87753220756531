"""llmrank.losses as composable parts: lambda weights passed in, approx_t12n over metrics, the one
teacher transform, citations carried by the registry."""

from __future__ import annotations

import math

import pytest
import torch

from llmrank import losses as L
from llmrank.distill import _apply_transform


def _batch(seed: int = 0, b: int = 3, n: int = 6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(b, n, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (b, n), generator=g).double()
    m = torch.ones(b, n, dtype=torch.bool)
    m[0, -2:] = False
    return s, y, m


def test_lambdaweight_is_a_function_passed_in_or_its_name():
    s, y, m = _batch()
    for name, fn in L.LAMBDAWEIGHTS.items():
        by_name = L.pairwise_logistic_loss(s, y, mask=m, lambdaweight=name, topn=3)
        by_fn = L.pairwise_logistic_loss(s, y, mask=m, lambdaweight=fn, topn=3)
        assert by_fn.item() == by_name.item()
    # any function of the contract works: a constant 2 doubles RankNet (the mean's denominator is unchanged)
    def twice(scores, labels, mask, **kw):
        return torch.full((*scores.shape, scores.shape[-1]), 2.0, dtype=scores.dtype)

    plain = L.pairwise_logistic_loss(s, y, mask=m)
    assert L.pairwise_logistic_loss(s, y, mask=m, lambdaweight=twice).item() == pytest.approx(2 * plain.item())
    assert L.LOSSES["lambdarank"].fixed["lambdaweight"] is L.dcg_lambdaweight
    with pytest.raises(ValueError, match=r"lambdaweight must return \[batch, n, n\]"):
        L.pairwise_logistic_loss(s, y, lambdaweight=lambda *a, **k: torch.ones(3))


def test_lambdaweights_are_zero_on_padded_pairs():
    s, y, m = _batch()
    y[0, -1] = float("nan")  # padding may hold anything
    for fn in L.LAMBDAWEIGHTS.values():
        lam = fn(s, y, m)
        assert torch.isfinite(lam).all()
        assert (lam[0, -2:, :] == 0).all() and (lam[0, :, -2:] == 0).all()


def test_approx_t12n_turns_a_metric_into_its_loss():
    s, y, m = _batch(1)
    assert L.approx_t12n(L.ndcg_metric)(s, y, mask=m, temperature=0.5).item() == L.approx_ndcg_loss(
        s, y, mask=m, temperature=0.5
    ).item()
    assert L.approx_mrr_loss.__name__ == "approx_mrr_loss"
    with pytest.raises(ValueError, match="approx_mrr_loss does not support weights"):
        L.approx_mrr_loss(s, y, weights=torch.ones_like(s))
    # at exact ranks the metric is the metric: nDCG of one list by hand
    s1, y1, m1 = torch.tensor([[0.1, 0.9, 0.5]]), torch.tensor([[2.0, 0.0, 1.0]]), torch.ones(1, 3, dtype=torch.bool)
    dcg = 3 / math.log2(4) + 1 / math.log2(3)  # ranks: item 1 -> 1, item 2 -> 2, item 0 -> 3
    idcg = 3 / math.log2(2) + 1 / math.log2(3)
    assert L.ndcg_metric(s1, y1, m1).item() == pytest.approx(dcg / idcg, rel=1e-6)
    assert L.mrr_metric(s1, y1, m1).item() == pytest.approx(1 / 2)  # first item with y >= 1 at rank 2
    # as the temperature falls the smooth ranks tend to the exact ones
    assert -L.approx_ndcg_loss(s1, y1, mask=m1, temperature=1e-3).item() == pytest.approx(dcg / idcg, rel=1e-4)


def test_distill_uses_the_one_teacher_transform():
    rows = [[1.0, -2.0, 3.0], [0.5], []]
    for tf in (
        {"name": "affine_relu", "a": 2.0, "b": 0.1, "temperature": 1.0},
        {"name": "softmax", "a": 1.0, "b": 0.0, "temperature": 0.5},
        {"name": "none", "a": 1.0, "b": 0.0, "temperature": 1.0},
    ):
        got = _apply_transform(rows, tf)
        for row, out in zip(rows, got):
            t = torch.tensor([row], dtype=torch.float64)
            kw = {"a": tf["a"], "b": tf["b"], "temperature": tf["temperature"]}
            want = L.teacher_transform(t, torch.ones_like(t, dtype=torch.bool), tf["name"], **kw)[0].tolist()
            assert out == want
    assert _apply_transform([[1.0, -2.0]], {"name": "affine_relu", "a": 2.0, "b": 0.1, "temperature": 1.0}) == [
        [2.1, 0.0]
    ]
    with pytest.raises(ValueError, match=r"transform must be one of .* \(did you mean 'softmax'\?\)"):
        L.teacher_transform(torch.zeros(1, 2), torch.ones(1, 2, dtype=torch.bool), "softmx")


def test_every_registered_loss_carries_its_paper():
    for name, spec in L.LOSSES.items():
        assert spec.citation.startswith("@") and spec.citation.rstrip().endswith("}"), name
        assert "title = {" in spec.citation and "year = {" in spec.citation, name
        assert spec.paper, name
    assert L.LOSSES["lambdarank"].paper == "LambdaRank (Burges et al., NIPS 2006)"
    cites = L.loss_citations(["ranknet", "pairwise_logistic", "lambdaloss", "bar_distillation", "mse_distillation"])
    assert [c.split(",")[0] for c in cites] == [
        "@inproceedings{burges2005ranknet",
        "@inproceedings{wang2018lambdaloss",
        "@article{qin2021bar",
    ]
    with pytest.raises(ValueError, match=r"unknown loss 'lamdaloss' \(did you mean 'lambdaloss'\?\)"):
        L.loss_citations(["lamdaloss"])
