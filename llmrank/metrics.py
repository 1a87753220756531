"""In-training ranking metrics in torch: nDCG@k and MRR@k per list, trec_eval conventions.

Checked against ``ir_measures`` (``nDCG@10``, ``RR@10``) in ``tests/test_metrics.py``.

Conventions (trec_eval / ir-measures defaults):

* nDCG (Järvelin & Kekäläinen, TOIS 2002) with **linear gains** (gain = label, as trec_eval's
  ``ndcg_cut`` and ir-measures' ``nDCG`` without ``gains=``; negative labels count as 0) and
  discount ``1/log2(1 + rank)``; the ideal DCG is computed from **the labels of the list itself**
  (trec_eval uses every judged document of the query, so the two agree when all judged documents
  are in the list); a list without a relevant item scores 0.
* MRR@k: ``1/rank`` of the first item with ``label >= rel`` within the top k, else 0.
* Ties: trec_eval (pytrec_eval, ir-measures' provider for ``nDCG@k``) sorts by score descending and
  breaks ties by **docid descending** (string order); ir-measures 0.4.3 computes ``RR@k`` with its
  ``msmarco`` provider, which breaks ties by **docid ascending**.  Here ties are broken by
  **position in the list** (stable sort: the earlier item ranks higher), which needs no docids and
  is deterministic.  Tests compare with ir-measures using docids whose provider order is the input
  order.
* Padded items (``mask=False``) are never ranked.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor

__all__ = ["mean_over_lists", "mrr_at_k", "mrr_key", "ndcg_at_k"]


def _order(scores: Tensor, mask: Tensor) -> Tensor:
    """Indices by descending score, ties in input order, padded items last."""
    key = torch.where(mask, -scores.double(), torch.full((), float("inf"), dtype=torch.float64, device=scores.device))
    return torch.sort(key, dim=-1, stable=True).indices


def _check(scores: Tensor, labels: Tensor, mask: Tensor | None, k: int) -> Tensor:
    if scores.dim() != 2 or labels.shape != scores.shape:
        raise ValueError(f"scores and labels must both be [batch, list_size], got {tuple(scores.shape)} "
                         f"and {tuple(labels.shape)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if mask is None:
        return torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
    if mask.shape != scores.shape or mask.dtype != torch.bool:
        raise ValueError("mask must be a bool tensor shaped like scores")
    return mask


@torch.no_grad()
def ndcg_at_k(scores: Tensor, labels: Tensor, k: int = 10, mask: Tensor | None = None) -> Tensor:
    """Per-list nDCG@k ``[batch]`` (float64): ``DCG@k / IDCG@k`` with linear gains."""
    mask = _check(scores, labels, mask, k)
    gains = torch.where(mask, labels.double().clamp_min(0.0), torch.zeros((), dtype=torch.float64,
                                                                               device=labels.device))
    kk = min(k, scores.shape[-1])
    disc = 1.0 / torch.log2(torch.arange(2, kk + 2, dtype=torch.float64, device=scores.device))
    ranked = torch.gather(gains, -1, _order(scores, mask))[:, :kk]
    dcg = (ranked * disc).sum(-1)
    ideal = gains.sort(dim=-1, descending=True).values[:, :kk]
    idcg = (ideal * disc).sum(-1)
    return torch.where(idcg > 0, dcg / torch.where(idcg > 0, idcg, torch.ones_like(idcg)), torch.zeros_like(dcg))


@torch.no_grad()
def mrr_at_k(scores: Tensor, labels: Tensor, k: int = 10, mask: Tensor | None = None, rel: float = 1) -> Tensor:
    """Per-list reciprocal rank ``[batch]`` (float64) of the first item with ``label >= rel`` in the top k."""
    mask = _check(scores, labels, mask, k)
    kk = min(k, scores.shape[-1])
    relevant = torch.gather(mask & (labels >= rel), -1, _order(scores, mask))[:, :kk]
    rr = relevant.double() / torch.arange(1, kk + 1, dtype=torch.float64, device=scores.device)
    return rr.amax(-1) if kk > 0 else torch.zeros(scores.shape[0], dtype=torch.float64, device=scores.device)


def mean_over_lists(values: Tensor, mask: Tensor | None = None) -> float:
    """Mean of per-list values over lists with at least one valid item (0.0 if there is none)."""
    keep = torch.ones(values.shape[0], dtype=torch.bool, device=values.device) if mask is None else mask.any(-1)
    if not bool(keep.any()):
        return 0.0
    return float(values[keep].double().mean())


def mrr_key(k: int, min_relevance: float) -> str:
    """Metric name of MRR@k with its relevance threshold, e.g. ``mrr@10_rel2``."""
    return f"mrr@{k}_rel{min_relevance:g}"
