"""Lambda weights for the pairwise losses, as functions passed in (Rax's ``lambdaweight_fn``).

A lambda-weight function maps a batch to per-pair weights::

    fn(scores, labels, mask, *, weights=None, topn=None) -> Tensor [batch, n, n]   (no gradient)

``λ[b, i, j]`` weighs the pair ``(i, j)``; pairs with a padded item get 0.  A pairwise loss takes one
as ``lambdaweight=`` (or its name in :data:`LAMBDAWEIGHTS`, resolved once by :func:`resolve_lambdaweight`)
and scales the result in place, so a function must return a new tensor.

The ``[B, n, n]`` weights are built in place under ``no_grad``: at most three ``[B, n, n]`` float
temporaries live at a time, which bounds the pairwise losses' memory at large n.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from llmrank.losses._core import Tensor, _discount, _gain, ranks

#: ``fn(scores, labels, mask, *, weights=None, topn=None) -> [B, n, n]``
LambdaweightFn = Callable[..., Tensor]


def _mask_pairs_(lam: Tensor, mask: Tensor) -> Tensor:
    """``lam`` with pairs that hold a padded item set to 0, in place (two broadcast multiplies by the
    float mask, ~3x cheaper than a ``[B, n, n]`` where); exact because the inputs were zeroed at
    padding first, so ``lam`` is finite there."""
    m = mask.to(lam.dtype)
    return lam.mul_(m.unsqueeze(-1)).mul_(m.unsqueeze(-2))


def _zero_padding(values: Tensor, mask: Tensor) -> Tensor:
    return torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device))


def labeldiff_lambdaweight(
    scores: Tensor, labels: Tensor, mask: Tensor, *, weights: Tensor | None = None, topn: int | None = None
) -> Tensor:
    """``λ_ij = |y_i − y_j|`` (``rax.labeldiff_lambdaweight``); ``weights`` and ``topn`` are unused
    (as in Rax).  0 on pairs with a padded item."""
    del scores, weights, topn
    with torch.no_grad():
        y = _zero_padding(labels, mask)
        return _mask_pairs_((y.unsqueeze(-1) - y.unsqueeze(-2)).abs_(), mask)


def _gains(labels: Tensor, mask: Tensor, weights: Tensor | None) -> Tensor:
    g = _gain(_zero_padding(labels, mask))
    return g if weights is None else g * _zero_padding(weights, mask)


def dcg_lambdaweight(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor,
    *,
    weights: Tensor | None = None,
    topn: int | None = None,
    list_size: int | None = None,
    rank: Tensor | None = None,
) -> Tensor:
    """LambdaRank weights (Burges et al., "Learning to Rank with Nonsmooth Cost Functions", NIPS 2006),
    as ``rax.dcg_lambdaweight``: ``λ_ij = |G_i − G_j| · |D(r_i) − D(r_j)| · n``, r = stable ranks of
    the scores, ``D(r) = 0`` beyond ``topn``, ``n`` = padded list size (Rax's scale-up), G = (2^y − 1)·w."""
    with torch.no_grad():
        r = ranks(scores, mask) if rank is None else rank
        n = scores.shape[-1] if list_size is None else list_size
        g = _gains(labels, mask, weights)
        d = _discount(r)
        if topn is not None:
            d = torch.where(r <= topn, d, torch.zeros_like(d))
        lam = (g.unsqueeze(-1) - g.unsqueeze(-2)).abs_()
        lam.mul_((d.unsqueeze(-1) - d.unsqueeze(-2)).abs_()).mul_(n)
        return _mask_pairs_(lam, mask)


def _rank_gap_discount(r: Tensor, from_ranks: bool) -> Tensor:
    """``|D(k) − D(k + 1)|`` for ``k = |r_i − r_j|``, 0 when ``r_i = r_j`` (``[B, n, n]``)."""
    if from_ranks:
        # r comes from ranks(): integers 1..n, so k takes n values.  Tabulate them once and look them
        # up (k = 0 -> 0): ~5x faster than n² log2's on CPU, same values.
        k = torch.arange(1, r.shape[-1], dtype=r.dtype, device=r.device)
        table = torch.cat([k.new_zeros(1), (_discount(k) - _discount(k + 1)).abs()])
        ri = r.to(torch.int32)
        idx = (ri.unsqueeze(-1) - ri.unsqueeze(-2)).abs_()
        return table.index_select(0, idx.view(-1)).view(idx.shape)
    diff = (r.unsqueeze(-1) - r.unsqueeze(-2)).abs_()
    untied = torch.gt(diff, 0.0, out=torch.empty_like(diff))  # 1.0 / 0.0: comparing into floats is fast
    safe = diff.clamp_min_(1.0)  # k = 0 would give D(0) = inf: clamped, then × 0
    disc = (safe + 1.0).log2_().reciprocal_()  # the operations of _discount, in place
    return disc.sub_(safe.add_(2.0).log2_().reciprocal_()).abs_().mul_(untied)


def dcg2_lambdaweight(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor,
    *,
    weights: Tensor | None = None,
    topn: int | None = None,
    list_size: int | None = None,
    rank: Tensor | None = None,
) -> Tensor:
    """LambdaLoss NDCG-Loss2 weights (Wang et al., "The LambdaLoss Framework for Ranking Metric
    Optimization", CIKM 2018), as ``rax.dcg2_lambdaweight``:
    ``λ_ij = |G_i − G_j| · |D(|r_i − r_j|) − D(|r_i − r_j| + 1)| · n`` (0 when r_i = r_j); with ``topn``
    pairs whose lower rank lies beyond ``topn`` are scaled by ``1 / (1 − D(max(r_i, r_j)))``
    (Jagerman et al., "On Optimizing Top-K Metrics for Neural Ranking Models", SIGIR 2022)."""
    with torch.no_grad():
        r = ranks(scores, mask) if rank is None else rank
        n = scores.shape[-1] if list_size is None else list_size
        g = _gains(labels, mask, weights)
        disc = _rank_gap_discount(r, from_ranks=rank is None)
        if topn is not None:
            rmax = torch.maximum(r.unsqueeze(-1), r.unsqueeze(-2))
            disc = torch.where(rmax > topn, disc / (1.0 - _discount(rmax)), disc)
        lam = disc.mul_((g.unsqueeze(-1) - g.unsqueeze(-2)).abs_()).mul_(n)
        return _mask_pairs_(lam, mask)


#: the names a recipe may give (``lambdaweight: dcg``), mapped to their functions once, here
LAMBDAWEIGHTS: dict[str, LambdaweightFn] = {
    "labeldiff": labeldiff_lambdaweight,
    "dcg": dcg_lambdaweight,
    "dcg2": dcg2_lambdaweight,
}


def resolve_lambdaweight(lambdaweight: str | LambdaweightFn | None, name: str) -> LambdaweightFn | None:
    """The function for ``lambdaweight``: a function is used as given, a name is looked up in
    :data:`LAMBDAWEIGHTS`, None means unweighted."""
    if lambdaweight is None or callable(lambdaweight):
        return lambdaweight
    if lambdaweight not in LAMBDAWEIGHTS:
        raise ValueError(
            f"{name}: lambdaweight must be None, a lambda-weight function or one of {sorted(LAMBDAWEIGHTS)}, "
            f"got {lambdaweight!r}"
        )
    return LAMBDAWEIGHTS[lambdaweight]
