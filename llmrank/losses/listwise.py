"""Listwise losses: one value per list; ``mean`` averages over lists with at least one valid item
(lists with valid items but all-zero labels still count in the denominator), as Rax does.

``softmax_loss`` and ``poly1_softmax_loss`` have one fast path each (see
:func:`llmrank.losses._core._fast_ok`); ``_softmax_ce`` is shared with BAR's distillation loss.
"""

from __future__ import annotations

import math

import torch

from llmrank.losses._core import (
    Tensor,
    _check_inputs,
    _fast_ok,
    _finite,
    _masked_fill_low,
    _prepare,
    _reduce,
    cite,
    normalize_probabilities,
)

__all__ = ["listmle_loss", "poly1_softmax_loss", "softmax_loss"]


def _fast_listwise(
    scores: Tensor, labels: Tensor, mask: Tensor | None, dtype: torch.dtype, reduction: str
) -> tuple[Tensor, Tensor, Tensor, Tensor | float]:
    """``(log softmax over valid items, labels zeroed at padding, mask, −1/#lists)`` for the fast
    softmax-style paths.  Padding holds the most negative finite score, so its log-probability is
    finite (while valid scores stay below ~1e31; beyond, the result turns non-finite and the exact
    path runs) and its zero label removes it from every sum."""
    if mask is None:
        mask = torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
        s = scores.to(dtype)
        lists = float(max(1, scores.shape[0])) if scores.shape[-1] else 1.0
        per_list: Tensor | float = -1.0 if reduction == "sum" else -1.0 / lists
    else:
        s = torch.where(mask, scores.to(dtype), torch.finfo(dtype).min)
        per_list = -1.0 if reduction == "sum" else mask.any(-1).sum().clamp_min(1).to(dtype).reciprocal_().neg_()
    y = torch.where(mask, labels.detach().to(dtype), 0.0)
    return torch.log_softmax(s, dim=-1), y, mask, per_list


def _softmax_ce(s: Tensor, targets: Tensor, m: Tensor) -> tuple[Tensor, Tensor]:
    """Per-list ``−Σ_valid t_i·log softmax(s)_i`` and ``log softmax(s)``.  ``s`` comes from
    ``_prepare(pad_low=True)``, so the softmax runs over valid items only; padding is still masked
    out of the sum (its log-probability is finite only while the valid scores stay below ~1e31).
    The (gradient-free) targets are negated rather than the result: one autograd node less."""
    logp = torch.log_softmax(s, dim=-1)
    return torch.where(m, logp * -targets, 0.0).sum(-1), logp


def _normalized(y: Tensor, m: Tensor) -> Tensor:
    """ŷ = y / Σy per list, or 1/count when Σy = 0 (``normalize_probabilities`` in fewer ops, for y
    already 0 at padding; padded entries of ŷ are meaningless).  No 0/0, even in the unselected branch."""
    total = y.sum(-1, keepdim=True)
    nonzero = total != 0
    uniform = m.sum(-1, keepdim=True, dtype=y.dtype).clamp_min_(1.0).reciprocal_()
    return torch.where(nonzero, y / torch.where(nonzero, total, 1.0), uniform)


def softmax_loss(
    scores: Tensor,
    labels: Tensor,
    *,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
    normalize_labels: bool = False,
) -> Tensor:
    """Listwise softmax cross-entropy (ListNet top-1, Cao et al. ICML 2007; ``rax.softmax_loss``):
    ``ℓ = −Σ_i y_i·log softmax(s)_i``.  Labels are not normalised by default (Rax), so graded
    lists weigh Σy; ``normalize_labels=True`` uses ``y/Σy`` (uniform when Σy = 0), i.e.
    ``label_fn=rax.utils.normalize_probabilities``.  Mean over lists with ≥1 valid item."""
    dtype = _check_inputs(scores, labels, mask, weights, reduction, "softmax_loss")
    if _fast_ok(scores, weights, reduction):
        logp, y, m, per_list = _fast_listwise(scores, labels, mask, dtype, reduction)
        if normalize_labels:
            y = normalize_probabilities(y, m).mul_(m)  # its uniform fallback also covers padding
        out = (logp * y.mul_(per_list)).sum()  # Σ_lists −Σ_i y_i·log p_i / #lists, in two nodes
        if _finite(out):
            return out
    s, y, m, w = _prepare(scores, labels, mask, weights, reduction, "softmax_loss", pad_low=True)
    if w is not None:
        y = y * w
    if normalize_labels:
        y = normalize_probabilities(y, m)
    # a list without valid items gives exactly 0 (every term is masked), so no second masking
    return _reduce(_softmax_ce(s, y, m)[0], m.any(-1), reduction, zeroed=True)


def poly1_softmax_loss(
    scores: Tensor,
    labels: Tensor,
    *,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
    epsilon: float = 1.0,
) -> Tensor:
    """Poly-1 softmax (Leng et al., "PolyLoss", ICLR 2022; used by RankT5), as
    ``rax.poly1_softmax_loss``: ``softmax_loss(s, y) + ε·(1 − Σ_i ŷ_i·softmax(s)_i)``, ŷ = y/Σy."""
    dtype = _check_inputs(scores, labels, mask, weights, reduction, "poly1_softmax_loss")
    if _fast_ok(scores, weights, reduction):
        logp, y, m, per_list = _fast_listwise(scores, labels, mask, dtype, reduction)
        # Σŷ = 1 over the valid items of a list, so ε·(1 − Σ ŷ_i·p_i) = Σ_i ε·ŷ_i·(1 − p_i): one sum over
        # items, ŷ zero at padding; per item  c_i + a_i·log p_i − ε·c'_i·p_i  with gradient-free
        # a = −y/#lists, c' = ŷ/#lists, c = ε·c'.  Two fused multiply-adds instead of ~8 nodes.
        y_hat = _normalized(y, m).mul_(m).mul_(-per_list)
        per_item = torch.addcmul(y_hat * epsilon, logp, y.mul_(per_list))
        out = torch.addcmul(per_item, logp.exp(), y_hat, value=-epsilon).sum()
        if _finite(out):
            return out
    s, y, m, w = _prepare(scores, labels, mask, weights, reduction, "poly1_softmax_loss", pad_low=True)
    if w is not None:
        y = y * w
    ce, logp = _softmax_ce(s, y, m)
    # The softmax comes from the same log-softmax (one op) and is exactly 0 at padding (exp
    # underflows), so ŷ only matters at valid items.  Fully padded lists are zeroed by _reduce.
    pt = (_normalized(y, m) * logp.exp()).sum(-1)
    return _reduce(torch.add(ce, 1.0 - pt, alpha=epsilon), m.any(-1), reduction)  # ce + ε·(1 − pt)


def listmle_loss(
    scores: Tensor,
    labels: Tensor,
    *,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """ListMLE (Xia et al., "Listwise Approach to Learning to Rank", ICML 2008; ``rax.listmle_loss``):
    Plackett-Luce NLL of the label order, ``−Σ_k [s_π(k) − log Σ_{l≥k} e^{s_π(l)}]``, π = stable sort
    by label descending (ties keep input order), padded items excluded.  No ``weights``."""
    if weights is not None:
        raise ValueError("listmle_loss does not support weights")
    s, y, m, _ = _prepare(scores, labels, mask, None, reduction, "listmle_loss")
    key = torch.where(m, -y, torch.full((), math.inf, dtype=y.dtype, device=y.device))
    order = torch.sort(key, dim=-1, stable=True).indices
    s_sorted = torch.gather(s, -1, order)
    m_sorted = torch.gather(m, -1, order)
    low = _masked_fill_low(s_sorted, m_sorted)
    # reverse log-cumsum-exp: lse_k = log Σ_{l≥k} e^{s_l}; padded items (at the end) add e^{low} = 0
    lse = torch.logcumsumexp(low.flip(-1), dim=-1).flip(-1)
    per_list = -torch.where(m_sorted, s_sorted - lse, torch.zeros_like(lse)).sum(-1)
    return _reduce(per_list, m.any(-1), reduction)


# ------------------------------------------------------------------------------------ citations
LISTNET = cite(
    "ListNet (Cao et al., ICML 2007)", "cao2007listnet", "inproceedings", title="Learning to Rank: From Pairwise Approach to Listwise Approach",
    author="Cao, Zhe and Qin, Tao and Liu, Tie-Yan and Tsai, Ming-Feng and Li, Hang",
    booktitle="Proceedings of ICML", year="2007",
)  # fmt: skip
POLY1 = cite(
    "PolyLoss (Leng et al., ICLR 2022)", "leng2022polyloss", "inproceedings",
    title="PolyLoss: A Polynomial Expansion Perspective of Classification Loss Functions",
    author="Leng, Zhaoqi and Tan, Mingxing and Liu, Chenxi and Cubuk, Ekin Dogus and Shi, Xiaojie and "
    "Cheng, Shuyang and Anguelov, Dragomir",
    booktitle="Proceedings of ICLR", year="2022", note="arXiv:2204.12511",
)  # fmt: skip
LISTMLE = cite(
    "ListMLE (Xia et al., ICML 2008)", "xia2008listmle", "inproceedings", title="Listwise Approach to Learning to Rank: Theory and Algorithm",
    author="Xia, Fen and Liu, Tie-Yan and Wang, Jue and Zhang, Wensheng and Li, Hang",
    booktitle="Proceedings of ICML", year="2008",
)  # fmt: skip
