"""Learning-to-rank losses for LLM rerankers, in plain torch, with Rax semantics.

Every loss has one signature::

    loss(scores, labels, *, mask=None, weights=None, reduction="mean", **hyper) -> Tensor

``scores`` and ``labels`` are ``[batch, list_size]``; ``mask`` is a bool ``[batch, list_size]``
(True = real item, None = all real); ``weights`` are optional per-item weights.  Names, formulas and
edge cases follow Rax (Jagerman et al., "Rax: Composable Learning-to-Rank using JAX", KDD 2022,
google/rax 0.4.0), so ``tests/test_losses_rax.py`` can compare values and gradients one to one.

Reductions (Rax's three denominators, see ``rax._src.utils.safe_reduce``):

* listwise losses (softmax, poly1, listmle, approx_*, bar_distillation): one value per list; ``mean``
  averages over lists with at least one valid item (lists with valid items but all-zero labels
  still count in the denominator);
* pairwise losses: one value per pair ``(i, j)`` with ``labels_i > labels_j``, both valid; ``mean``
  divides by the number of such pairs (lambda weights do not change the denominator);
* pointwise losses: one value per valid item; ``mean`` divides by the number of valid items.

When nothing is valid the loss is ``0`` (not NaN) with zero gradients.  ``reduction="none"`` returns
the unreduced tensor (``[B]``, ``[B, n, n]`` or ``[B, n]``) with masked entries set to 0, so
``none.sum() == sum``.

Input policy (deliberate, tested):

* computation runs in float32; float64 inputs stay float64 (used by the Rax equivalence tests);
  bfloat16/float16 scores are upcast;
* integer or bool labels are accepted and cast to float (graded qrels are integers);
* shapes must match, ``mask`` must be bool, valid scores and labels must be finite -> ``ValueError``
  (padding may hold anything, NaN included: padded entries never reach a value or a gradient);
* a batch whose mask hides everything gives 0 (like Rax), not an error.

Differences from Rax (deliberate): ``segments`` are not supported (pad lists instead);
``approx_ndcg_loss``/``approx_mrr_loss`` have no ``topn`` (Rax's default is no cutoff);
``listmle_loss`` and ``approx_mrr_loss`` reject ``weights`` (Rax ignores or handles them
differently); Gumbel noise comes from a torch generator, so samples differ from Rax's PRNG.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from llmrank.data.record import STAGES
from llmrank.loss_core import (  # noqa: F401  (re-exported: tests and benchmarks use llmrank.losses.*)
    _REDUCTIONS,
    _check_inputs,
    _compute_dtype,
    _discount,
    _gain,
    _masked_fill_low,
    _prepare,
    _reduce,
    _total,
    normalize_probabilities,
    ranks,
)
from llmrank.policy_losses import pg_rank_loss
from llmrank.ranktower_losses import am_rankmax_loss, rankmax_loss, softsort_loss

Tensor = torch.Tensor

__all__ = [
    "LOSSES",
    "LossSpec",
    "Objective",
    "ObjectiveTerm",
    "approx_mrr_loss",
    "approx_ndcg_loss",
    "bar_distillation_loss",
    "dcg2_lambdaweight",
    "dcg_lambdaweight",
    "first_ranknet_loss",
    "gumbel",
    "labeldiff_lambdaweight",
    "lipo_lambda_loss",
    "lipo_scores",
    "listmle_loss",
    "listwise_distillation_loss",
    "mse_distillation_loss",
    "pairwise_distillation_loss",
    "pairwise_hinge_loss",
    "pairwise_logistic_loss",
    "pointwise_distillation_loss",
    "pointwise_mse_loss",
    "pointwise_sigmoid_loss",
    "poly1_softmax_loss",
    "softmax_loss",
]

# Pair chunks hold at most this many [chunk, n, n] elements (~64 MB in float32 per temporary).
_PAIR_CHUNK_ELEMS = 1 << 24


# --------------------------------------------------------------------------------------- helpers
# Fast paths.  On a [32, 100] batch the small pointwise and listwise losses cost a few microseconds
# of arithmetic and tens of microseconds of per-op dispatch and autograd bookkeeping, so their speed is
# the number of autograd nodes.  The fast paths fold masking and the mean's denominator into
# gradient-free weights (one node fewer each) and skip masking the scores where the weights already
# zero the padding.  They check finiteness once, on the result: any NaN / inf among the valid inputs
# (or anything that would make padding leak) makes the result non-finite, and then the exact path
# (``_prepare``: mask first, then check) runs and raises the precise error or returns its value.
def _fast_ok(scores: Tensor, weights: Tensor | None, reduction: str) -> bool:
    return weights is None and reduction != "none" and scores.dtype in (torch.float32, torch.float64)


def _finite(value: Tensor, extra: Tensor | None = None) -> bool:
    value = value.detach()
    return math.isfinite((value if extra is None else value + extra.sum()).item())


def _unit_weights(mask: Tensor | None, like: Tensor, reduction: str) -> Tensor:
    """1 at valid items, 0 at padding, divided by the number of valid items for ``mean``."""
    w = torch.ones_like(like) if mask is None else mask.to(like.dtype)
    return w if reduction == "sum" else w.div_(w.sum().clamp_min_(1.0))


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


# ------------------------------------------------------------------------------- pointwise losses
def pointwise_sigmoid_loss(
    scores: Tensor,
    labels: Tensor,
    *,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Sigmoid cross-entropy per item, labels clipped to [0, 1] (``rax.pointwise_sigmoid_loss``):
    ``ℓ_i = softplus(s_i) − s_i·y_i``.  Mean over valid items."""
    dtype = _check_inputs(scores, labels, mask, weights, reduction, "pointwise_sigmoid_loss")
    if _fast_ok(scores, weights, reduction):
        # finite scores and labels at padding get weight 0 (σ(s)·0 = 0 in the gradient): no masking
        y = labels.detach().to(dtype)
        wts = _unit_weights(mask, y, reduction)
        out = F.binary_cross_entropy_with_logits(scores, y.clamp(0.0, 1.0), weight=wts, reduction="sum")
        if _finite(out, y):  # the clip would hide ±inf labels: check them too
            return out
    s, y, m, w = _prepare(scores, labels, mask, weights, reduction, "pointwise_sigmoid_loss")
    # One fused op instead of softplus, mul, sub, where: BCE-with-logits is (1 − y)·s + softplus(−s)
    # = softplus(s) − s·y, with gradient (σ(s) − y)·weight; weight = mask (× weights) zeroes padding.
    weight = m.to(s.dtype) if w is None else w  # w is already 0 at padding
    if reduction == "none":
        return F.binary_cross_entropy_with_logits(s, y.clamp(0.0, 1.0), weight=weight, reduction="none")
    total = F.binary_cross_entropy_with_logits(s, y.clamp(0.0, 1.0), weight=weight, reduction="sum")
    return _total(total, m, reduction)


def pointwise_mse_loss(
    scores: Tensor,
    labels: Tensor,
    *,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Squared error per item ``(s_i − y_i)²`` (``rax.pointwise_mse_loss``).  Mean over valid items."""
    dtype = _check_inputs(scores, labels, mask, weights, reduction, "pointwise_mse_loss")
    if _fast_ok(scores, weights, reduction):
        # Σ w·(s − y)² = Σ (√w·s − √w·y)²: the weights enter through one multiply and one fused op
        y = labels.detach().to(dtype)
        root = _unit_weights(mask, y, reduction).sqrt_()  # 0 at padding: finite padding drops out
        out = F.mse_loss(scores * root, y * root, reduction="sum")
        if _finite(out):
            return out
    s, y, m, w = _prepare(scores, labels, mask, weights, reduction, "pointwise_mse_loss")
    # s and y are both 0 at padding, so (s − y)² is already 0 there: no masking needed
    if w is None and reduction != "none":
        return _total(F.mse_loss(s, y, reduction="sum"), m, reduction)  # one fused op
    loss = (s - y).square()
    if w is not None:
        loss = loss * w
    return _reduce(loss, m, reduction, zeroed=True)


# ---------------------------------------------------------------------------- lambda weights
# The [B, n, n] weights are built in place (no_grad): at most three [B, n, n] float temporaries live at a
# time, which bounds the pairwise losses' memory at large n.  The public functions mask invalid pairs;
# the pairwise losses use the unmasked cores and apply their own (stricter) pair mask.
def _labeldiff_core(labels: Tensor) -> Tensor:
    return (labels.unsqueeze(-1) - labels.unsqueeze(-2)).abs_()  # |y_i − y_j| (labels carry no gradient)


def _dcg_core(g: Tensor, r: Tensor, n: int, topn: int | None) -> Tensor:
    d = _discount(r)
    if topn is not None:
        d = torch.where(r <= topn, d, torch.zeros_like(d))
    lam = (g.unsqueeze(-1) - g.unsqueeze(-2)).abs_()
    return lam.mul_((d.unsqueeze(-1) - d.unsqueeze(-2)).abs_()).mul_(n)  # |G_i − G_j|·|D_i − D_j|·n


def _dcg2_core(g: Tensor, r: Tensor, n: int, topn: int | None, ranks_from_scores: bool = False) -> Tensor:
    # |D(k) − D(k + 1)| for k = |r_i − r_j|, D(k) = 1 / log2(1 + k); 0 when r_i = r_j
    if ranks_from_scores:
        # r comes from ranks(): integers 1..n, so k takes n values.  Tabulate them once and look them
        # up (k = 0 -> 0): ~5x faster than n² log2's on CPU, same values.
        k = torch.arange(1, r.shape[-1], dtype=r.dtype, device=r.device)
        table = torch.cat([k.new_zeros(1), (_discount(k) - _discount(k + 1)).abs()])
        ri = r.to(torch.int32)
        idx = (ri.unsqueeze(-1) - ri.unsqueeze(-2)).abs_()
        disc = table.index_select(0, idx.view(-1)).view(idx.shape)
        del idx
    else:
        diff = (r.unsqueeze(-1) - r.unsqueeze(-2)).abs_()
        untied = torch.gt(diff, 0.0, out=torch.empty_like(diff))  # 1.0 / 0.0, see _valid_pairs
        safe = diff.clamp_min_(1.0)  # k = 0 would give D(0) = inf: clamped, then × 0
        disc = (safe + 1.0).log2_().reciprocal_()  # the operations of _discount, in place
        disc.sub_(safe.add_(2.0).log2_().reciprocal_()).abs_().mul_(untied)
        del safe, untied
    if topn is not None:
        rmax = torch.maximum(r.unsqueeze(-1), r.unsqueeze(-2))
        disc = torch.where(rmax > topn, disc / (1.0 - _discount(rmax)), disc)
    return disc.mul_((g.unsqueeze(-1) - g.unsqueeze(-2)).abs_()).mul_(n)


def _pair_mask(lam: Tensor, mask: Tensor) -> Tensor:
    return torch.where(mask.unsqueeze(-1) & mask.unsqueeze(-2), lam, 0.0)


def labeldiff_lambdaweight(scores: Tensor, labels: Tensor, mask: Tensor, *, topn: int | None = None) -> Tensor:
    """``λ_ij = |y_i − y_j|`` (``rax.labeldiff_lambdaweight``); ``topn`` is unused."""
    del scores, topn
    lam = (labels.unsqueeze(-1) - labels.unsqueeze(-2)).abs()
    return torch.where(mask.unsqueeze(-1) == mask.unsqueeze(-2), lam, torch.zeros_like(lam))


def dcg_lambdaweight(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor,
    *,
    topn: int | None = None,
    weights: Tensor | None = None,
    list_size: int | None = None,
    rank: Tensor | None = None,
) -> Tensor:
    """LambdaRank weights (Burges et al., "Learning to Rank with Nonsmooth Cost Functions", NIPS 2006),
    as ``rax.dcg_lambdaweight``: ``λ_ij = |G_i − G_j| · |D(r_i) − D(r_j)| · n``, r = stable ranks of
    the scores, ``D(r) = 0`` beyond ``topn``, ``n`` = padded list size (Rax's scale-up).  Detached."""
    with torch.no_grad():
        r = ranks(scores, mask) if rank is None else rank
        n = scores.shape[-1] if list_size is None else list_size
        g = _gain(labels) if weights is None else _gain(labels) * weights
        return _pair_mask(_dcg_core(g, r, n, topn), mask)


def dcg2_lambdaweight(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor,
    *,
    topn: int | None = None,
    weights: Tensor | None = None,
    list_size: int | None = None,
    rank: Tensor | None = None,
) -> Tensor:
    """LambdaLoss NDCG-Loss2 weights (Wang et al., "The LambdaLoss Framework for Ranking Metric
    Optimization", CIKM 2018), as ``rax.dcg2_lambdaweight``:
    ``λ_ij = |G_i − G_j| · |D(|r_i − r_j|) − D(|r_i − r_j| + 1)| · n`` (0 when r_i = r_j); with ``topn``
    pairs whose lower rank lies beyond ``topn`` are scaled by ``1 / (1 − D(max(r_i, r_j)))``
    (Jagerman et al., "On Optimizing Top-K Metrics for Neural Ranking Models", SIGIR 2022).  Detached."""
    with torch.no_grad():
        r = ranks(scores, mask) if rank is None else rank
        n = scores.shape[-1] if list_size is None else list_size
        g = _gain(labels) if weights is None else _gain(labels) * weights
        return _pair_mask(_dcg2_core(g, r, n, topn, ranks_from_scores=rank is None), mask)


_LAMBDAWEIGHTS: dict[str, Callable[..., Tensor]] = {
    "labeldiff": labeldiff_lambdaweight,
    "dcg": dcg_lambdaweight,
    "dcg2": dcg2_lambdaweight,
}


# ------------------------------------------------------------------------------ pairwise losses
def _pair_scale(
    s: Tensor, y: Tensor, m: Tensor, w: Tensor | None, lambdaweight: str | None, topn: int | None
) -> Tensor | None:
    """Per-pair factor ``w_i·λ_ij`` (Rax weights pair (i, j) by w_i), not masked; None if all 1."""
    if lambdaweight is None:
        return None if w is None else w.unsqueeze(-1)
    with torch.no_grad():
        if lambdaweight == "labeldiff":
            lam = _labeldiff_core(y)
        else:
            g = _gain(y) if w is None else _gain(y) * w
            r = ranks(s, m)
            if lambdaweight == "dcg":
                lam = _dcg_core(g, r, s.shape[-1], topn)
            else:
                lam = _dcg2_core(g, r, s.shape[-1], topn, ranks_from_scores=True)
        return lam if w is None else lam.mul_(w.unsqueeze(-1))


def _valid_pairs(y: Tensor, m: Tensor, dtype: torch.dtype = torch.bool) -> Tensor:
    """Pairs (i, j) with ``y_i > y_j``, both valid, as bool or as 1.0 / 0.0 of a float ``dtype``.
    Padded labels become NaN and every comparison with NaN is False: one [B, n, n] comparison
    instead of three ops."""
    y_cmp = torch.where(m, y, math.nan)
    yi, yj = y_cmp.unsqueeze(-1), y_cmp.unsqueeze(-2)
    if dtype == torch.bool:
        return yi > yj
    # On CPU, comparing straight into a float tensor is ~4x faster than producing a bool tensor
    # (or converting one), and masking by multiplying with it ~8x faster than masked_fill_.
    return torch.gt(yi, yj, out=y.new_empty((*y.shape, y.shape[-1]), dtype=dtype))


def _pair_loss_unreduced(
    s: Tensor, y: Tensor, m: Tensor, w: Tensor | None, kind: str, lambdaweight: str | None, topn: int | None
) -> Tensor:
    """``[B, n, n]`` pair losses (0 for invalid pairs), differentiable by autograd (``reduction="none"``)."""
    d = s.unsqueeze(-1) - s.unsqueeze(-2)  # d_ij = s_i − s_j
    loss = F.softplus(-d) if kind == "logistic" else (1.0 - d).clamp_min(0.0)
    scale = _pair_scale(s.detach(), y, m, w, lambdaweight, topn)
    if scale is not None:
        loss = loss * scale
    return torch.where(_valid_pairs(y, m), loss, 0.0)


def _pair_chunk(
    s: Tensor, y: Tensor, m: Tensor, w: Tensor | None, kind: str, lambdaweight: str | None, topn: int | None
) -> tuple[Tensor, Tensor, Tensor]:
    """For a chunk of lists, without autograd: Σ of the pair losses over valid pairs, the number of
    valid pairs and the gradient w.r.t. s.  In place, so that at most four [chunk, n, n] float
    temporaries (pair factor, validity, loss, derivative) live at a time."""
    scale = _pair_scale(s, y, m, w, lambdaweight, topn)
    valid = _valid_pairs(y, m, s.dtype)  # 1.0 / 0.0
    count = valid.sum()
    nd = s.unsqueeze(-2) - s.unsqueeze(-1)  # −d_ij = s_j − s_i
    if kind == "logistic":
        # RankNet (Burges et al., ICML 2005): ℓ = log(1 + e^{−d}) = softplus(−d); −dℓ/dd = σ(−d)
        loss = F.softplus(nd)
        neg_dloss = nd.sigmoid_()
    else:
        # hinge: ℓ = relu(1 − d); −dℓ/dd = 1[1 − d > 0] (relu'(0) = 0 as in jax)
        loss = nd.add_(1.0)  # the margin 1 − d, in place
        neg_dloss = torch.gt(loss, 0.0, out=torch.empty_like(loss))  # 1.0 / 0.0, see _valid_pairs
        loss.clamp_min_(0.0)
    if scale is not None:
        loss.mul_(scale)
        neg_dloss.mul_(scale)
    # × 0 is an exact mask: loss and derivative are finite (padding was zeroed; only scores beyond
    # ~1e38 could overflow s_j − s_i)
    loss.mul_(valid)
    neg_dloss.mul_(valid)
    # ∂/∂s_k Σ_ij ℓ(s_i − s_j) = Σ_j ℓ'_kj − Σ_i ℓ'_ik
    grad = neg_dloss.sum(-2) - neg_dloss.sum(-1)
    return loss.sum(), count, grad


class _PairwiseReduced(torch.autograd.Function):
    """Σ over valid pairs of the (weighted) pair loss, with the gradient computed in the forward
    pass, chunk by chunk over lists: only ``[chunk, n, n]`` temporaries exist at a time and only
    the ``[B, n]`` gradient is kept for backward (memory O(B·n) instead of O(B·n²))."""

    @staticmethod
    def forward(ctx, s, y, m, w, kind, lambdaweight, topn):  # type: ignore[override]
        b, n = s.shape
        chunk = max(1, _PAIR_CHUNK_ELEMS // max(1, n * n))
        if chunk >= b:  # one chunk: no slicing, no accumulation
            total, count, grad = _pair_chunk(s, y, m, w, kind, lambdaweight, topn)
        else:
            total = s.new_zeros(())
            count = s.new_zeros(())
            grad = torch.empty_like(s)
            for start in range(0, b, chunk):
                sl = slice(start, start + chunk)
                wc = None if w is None else w[sl]
                t, c, grad[sl] = _pair_chunk(s[sl], y[sl], m[sl], wc, kind, lambdaweight, topn)
                total += t
                count += c
        ctx.save_for_backward(grad)
        ctx.mark_non_differentiable(count)
        return total, count

    @staticmethod
    def backward(ctx, g_total, g_count):  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return grad * g_total, None, None, None, None, None, None


def _pairwise(
    name: str,
    kind: str,
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None,
    weights: Tensor | None,
    reduction: str,
    lambdaweight: str | None,
    topn: int | None,
) -> Tensor:
    s, y, m, w = _prepare(scores, labels, mask, weights, reduction, name)
    if lambdaweight is not None and lambdaweight not in _LAMBDAWEIGHTS:
        raise ValueError(f"{name}: lambdaweight must be None or one of {sorted(_LAMBDAWEIGHTS)}, got {lambdaweight!r}")
    if topn is not None and (not isinstance(topn, int) or topn < 1):
        raise ValueError(f"{name}: topn must be a positive int or None, got {topn!r}")
    if reduction == "none":
        return _pair_loss_unreduced(s, y, m, w, kind, lambdaweight, topn)
    total, count = _PairwiseReduced.apply(s, y, m, w, kind, lambdaweight, topn)
    if reduction == "sum":
        return total
    return total / count.clamp_min(1)


def pairwise_logistic_loss(
    scores: Tensor,
    labels: Tensor,
    *,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
    lambdaweight: str | None = None,
    topn: int | None = None,
) -> Tensor:
    """RankNet (Burges et al., ICML 2005) as ``rax.pairwise_logistic_loss``: ``λ_ij·log(1 + e^{−(s_i−s_j)})``
    over pairs with ``y_i > y_j``.  ``lambdaweight``: None | "labeldiff" | "dcg" (LambdaRank) |
    "dcg2" (LambdaLoss NDCG-Loss2); ``topn`` cuts the DCG weights.  Mean over valid pairs."""
    return _pairwise(
        "pairwise_logistic_loss", "logistic", scores, labels, mask, weights, reduction, lambdaweight, topn
    )


def pairwise_hinge_loss(
    scores: Tensor,
    labels: Tensor,
    *,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
    lambdaweight: str | None = None,
    topn: int | None = None,
) -> Tensor:
    """Pairwise hinge ``λ_ij·max(0, 1 − (s_i − s_j))`` over pairs with ``y_i > y_j``
    (Herbrich et al. 1999; ``rax.pairwise_hinge_loss``).  Mean over valid pairs."""
    return _pairwise("pairwise_hinge_loss", "hinge", scores, labels, mask, weights, reduction, lambdaweight, topn)


def lipo_lambda_loss(
    scores: Tensor,
    labels: Tensor,
    *,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
    topn: int | None = None,
) -> Tensor:
    """LiPO-λ (Liu et al., "LiPO: Listwise Preference Optimization through Learning-to-Rank",
    NAACL 2025, Eq. 8 and Algorithm 1): ``Σ_{ψ_i>ψ_j} Δ_ij·log(1 + e^{−(s_i−s_j)})`` with
    ``Δ_ij = |G_i − G_j|·|D(τ_i) − D(τ_j)|``, τ = ranks induced by the scores.  Exactly
    ``rax.pairwise_logistic_loss(s, ψ, lambdaweight_fn=rax.dcg_lambdaweight)`` (×n, stable ties:
    at step 0 all scores are 0 and τ is the input order).  Use :func:`lipo_scores` for s."""
    return _pairwise("lipo_lambda_loss", "logistic", scores, labels, mask, weights, reduction, "dcg", topn)


def lipo_scores(policy_logps: Tensor, ref_logps: Tensor, beta: float = 0.05) -> Tensor:
    """LiPO / DPO implicit reward ``s = β·(log π_θ(y|x) − log π_ref(y|x))`` (LiPO Eq. 2, β = 0.05 in
    the paper), in float32; the reference term carries no gradient."""
    if policy_logps.shape != ref_logps.shape:
        raise ValueError(f"lipo_scores: policy {tuple(policy_logps.shape)} vs reference {tuple(ref_logps.shape)}")
    dtype = _compute_dtype(policy_logps)
    return beta * (policy_logps.to(dtype) - ref_logps.detach().to(dtype))


def first_ranknet_loss(
    scores: Tensor,
    teacher_ranks: Tensor,
    *,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """FIRST weighted RankNet (Reddy et al., "FIRST: Faster Improved Listwise Reranking with Single
    Token Decoding", EMNLP 2024; gangiswag/llm-reranker ``rank_net(weighted=True)``).

    For each list: pairs (i, j) of valid items with 1-based teacher ranks ``r_i < r_j``, weight
    ``w_ij = 1/(r_i + r_j)``; ``L_b = (1/P_b)·Σ w_ij·softplus(−(s_i − s_j))`` (mean over the P_b pairs,
    not normalised by Σw).  ``mean`` averages L_b over lists with ≥1 pair (FIRST skips NaN lists);
    ``sum`` sums them; ``none`` returns ``[B]``.  ``weights`` (per item) multiply pair (i, j) by w_i."""
    s, r, m, w = _prepare(scores, teacher_ranks, mask, weights, reduction, "first_ranknet_loss", "teacher_ranks")
    if bool(((r < 1) & m).any()):
        raise ValueError("first_ranknet_loss: teacher_ranks must be 1-based (>= 1) at valid positions")
    d = s.unsqueeze(-1) - s.unsqueeze(-2)
    valid = (r.unsqueeze(-1) < r.unsqueeze(-2)) & m.unsqueeze(-1) & m.unsqueeze(-2)
    pair_w = 1.0 / (r.unsqueeze(-1) + r.unsqueeze(-2)).clamp_min(1.0)
    if w is not None:
        pair_w = pair_w * w.unsqueeze(-1)
    loss = torch.where(valid, pair_w * F.softplus(-d), torch.zeros_like(d)).sum((-1, -2))
    pairs = valid.sum((-1, -2))
    per_list = loss / pairs.clamp_min(1).to(loss.dtype)
    return _reduce(per_list, pairs > 0, reduction)


# ------------------------------------------------------------------------------ listwise losses
def _softmax_ce(s: Tensor, targets: Tensor, m: Tensor) -> tuple[Tensor, Tensor]:
    """Per-list ``−Σ_valid t_i·log softmax(s)_i`` and ``log softmax(s)``.  ``s`` comes from
    ``_prepare(pad_low=True)``, so the softmax runs over valid items only; padding is still masked
    out of the sum (its log-probability is finite only while the valid scores stay below ~1e31).
    The (gradient-free) targets are negated rather than the result: one autograd node less."""
    logp = torch.log_softmax(s, dim=-1)
    return torch.where(m, logp * -targets, 0.0).sum(-1), logp


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
        total = y.sum(-1, keepdim=True)
        nonzero = total != 0
        uniform = m.sum(-1, keepdim=True, dtype=y.dtype).clamp_min_(1.0).reciprocal_()
        y_hat = torch.where(nonzero, y / torch.where(nonzero, total, 1.0), uniform).mul_(m).mul_(-per_list)
        per_item = torch.addcmul(y_hat * epsilon, logp, y.mul_(per_list))
        out = torch.addcmul(per_item, logp.exp(), y_hat, value=-epsilon).sum()
        if _finite(out):
            return out
    s, y, m, w = _prepare(scores, labels, mask, weights, reduction, "poly1_softmax_loss", pad_low=True)
    if w is not None:
        y = y * w
    ce, logp = _softmax_ce(s, y, m)
    # The softmax comes from the same log-softmax (one op) and is exactly 0 at padding (exp
    # underflows), so ŷ only matters at valid items: ŷ = y / Σy, or 1/count when Σy = 0 (as
    # normalize_probabilities, in fewer ops: y is already 0 at padding).  Fully padded lists are
    # zeroed by _reduce.
    total = y.sum(-1, keepdim=True)
    nonzero = total != 0
    uniform = m.sum(-1, keepdim=True, dtype=y.dtype).clamp_min_(1.0).reciprocal_()
    y_hat = torch.where(nonzero, y / torch.where(nonzero, total, 1.0), uniform)  # no 0/0, even unselected
    pt = (y_hat * logp.exp()).sum(-1)
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


def _approx_ranks(s: Tensor, m: Tensor, temperature: float) -> Tensor:
    """Smooth ranks (Qin et al., "A General Approximation Framework for Direct Optimization of
    Information Retrieval Measures", IR Journal 2010; ``rax.utils.approx_ranks``):
    ``r̂_i = 1 + Σ_{j≠i, valid} σ((s_j − s_i)/T)``.

    The sum over valid j multiplies by the [B, 1, n] mask (no [B, n, n] bool mask, no masked copy:
    4 [B, n, n] passes forward instead of 8; a batched mat-vec is slower on CPU).  It includes j = i,
    whose term is σ(0) = 1/2 exactly, hence ``1 + Σ_{j≠i} = 1/2 + Σ_j``.  Padded i get a finite
    meaningless value (≥ 1/2): callers mask them out."""
    st = s / temperature  # on [B, n]: the [B, n, n] differences need no division
    pair = torch.sigmoid(st.unsqueeze(-2) - st.unsqueeze(-1))
    return 0.5 + (pair * m.to(s.dtype).unsqueeze(-2)).sum(-1)


def _gumbel_apply(
    fn: Callable[..., Tensor],
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None,
    weights: Tensor | None,
    reduction: str,
    samples: int,
    beta: float,
    generator: torch.Generator | None,
    **hyper: Any,
) -> Tensor:
    """Gumbel-perturbed loss (Bruch et al., "A Stochastic Treatment of Learning to Rank Scoring
    Functions", WSDM 2020; ``rax.gumbel_t12n``): repeat every list ``samples`` times, add
    β·Gumbel(0, 1) noise to the scores, reduce over samples × lists.  ``none`` gives ``[S, B, ...]``."""
    b, n = scores.shape
    u = torch.rand((samples, b, n), generator=generator, device=scores.device, dtype=_compute_dtype(scores))
    tiny = torch.finfo(u.dtype).tiny
    noise = -torch.log(-torch.log(u.clamp(tiny, 1.0 - 1e-7)))  # Gumbel(0, 1) = −log(−log U)
    s = (scores.to(u.dtype).unsqueeze(0) + beta * noise).reshape(samples * b, n)

    def rep(t: Tensor | None) -> Tensor | None:
        return None if t is None else t.unsqueeze(0).expand(samples, b, n).reshape(samples * b, n)

    out = fn(s, rep(labels), mask=rep(mask), weights=rep(weights), reduction=reduction, **hyper)
    return out.reshape(samples, b, *out.shape[1:]) if reduction == "none" else out


def approx_ndcg_loss(
    scores: Tensor,
    labels: Tensor,
    *,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
    temperature: float = 1.0,
    gumbel_samples: int = 0,
    gumbel_beta: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """ApproxNDCG (Qin et al. 2010; Bruch et al., SIGIR 2019), ``rax.approx_t12n(rax.ndcg_metric)``:
    ``−Σ_i G_i·D(r̂_i) / IDCG`` with smooth ranks r̂ at ``temperature``, G = 2^y − 1, IDCG from the
    list's labels (0 -> 1, so lists without relevant items give 0).  ``gumbel_samples > 0`` adds
    Gumbel noise (seeded by ``generator``).  Mean over lists with ≥1 valid item."""
    if gumbel_samples:
        return _gumbel_apply(
            approx_ndcg_loss,
            scores,
            labels,
            mask,
            weights,
            reduction,
            gumbel_samples,
            gumbel_beta,
            generator,
            temperature=temperature,
        )
    s, y, m, w = _prepare(scores, labels, mask, weights, reduction, "approx_ndcg_loss")
    g = _gain(y) if w is None else _gain(y) * w
    dcg = torch.where(m, g * _discount(_approx_ranks(s, m, temperature)), torch.zeros_like(s)).sum(-1)
    with torch.no_grad():
        ideal = torch.where(m, g, torch.full_like(g, -math.inf)).sort(dim=-1, descending=True).values
        pos = torch.arange(1, s.shape[-1] + 1, device=s.device, dtype=s.dtype)
        idcg = torch.where(torch.isfinite(ideal), ideal * _discount(pos), torch.zeros_like(ideal)).sum(-1)
        idcg = torch.where(idcg == 0, torch.ones_like(idcg), idcg)
    return _reduce(-dcg / idcg, m.any(-1), reduction)


def approx_mrr_loss(
    scores: Tensor,
    labels: Tensor,
    *,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
    temperature: float = 1.0,
    gumbel_samples: int = 0,
    gumbel_beta: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """ApproxMRR, ``rax.approx_t12n(rax.mrr_metric)``: ``−max_{i: y_i ≥ 1} 1/r̂_i`` (0 without a
    relevant item).  Same smooth ranks and Gumbel options as :func:`approx_ndcg_loss`.  No ``weights``."""
    if weights is not None:
        raise ValueError("approx_mrr_loss does not support weights")
    if gumbel_samples:
        return _gumbel_apply(
            approx_mrr_loss,
            scores,
            labels,
            mask,
            None,
            reduction,
            gumbel_samples,
            gumbel_beta,
            generator,
            temperature=temperature,
        )
    s, y, m, _ = _prepare(scores, labels, mask, None, reduction, "approx_mrr_loss")
    rr = 1.0 / _approx_ranks(s, m, temperature)
    rr = torch.where(m & (y >= 1), rr, torch.zeros_like(rr))
    return _reduce(-rr.amax(-1), m.any(-1), reduction)


def gumbel(fn: Callable[..., Tensor], samples: int = 8, beta: float = 1.0) -> Callable[..., Tensor]:
    """Wrap any loss of the common signature into its Gumbel-perturbed version (``rax.gumbel_t12n``);
    the wrapped loss takes an extra ``generator=`` keyword."""

    def wrapped(
        scores: Tensor,
        labels: Tensor,
        *,
        mask: Tensor | None = None,
        weights: Tensor | None = None,
        reduction: str = "mean",
        generator: torch.Generator | None = None,
        **hyper: Any,
    ) -> Tensor:
        return _gumbel_apply(fn, scores, labels, mask, weights, reduction, samples, beta, generator, **hyper)

    wrapped.__name__ = f"gumbel_{getattr(fn, '__name__', 'loss')}"
    wrapped.__doc__ = f"Gumbel-perturbed {getattr(fn, '__name__', 'loss')} ({samples} samples, beta={beta})."
    return wrapped


# --------------------------------------------------------------------------- distillation losses
_TRANSFORMS = ("affine_relu", "softmax", "none")


def _teacher_targets(
    t: Tensor, m: Tensor, transform: str, a: float, b: float, temperature: float, normalize: bool, name: str
) -> Tensor:
    if transform not in _TRANSFORMS:
        close = difflib.get_close_matches(str(transform), _TRANSFORMS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"{name}: transform must be one of {_TRANSFORMS}, got {transform!r}{hint}")
    t = t.detach()
    if transform == "affine_relu":
        out = torch.relu(a * t + b)
        return normalize_probabilities(out, m) if normalize else torch.where(m, out, torch.zeros_like(out))
    if transform == "softmax":
        return torch.where(m, torch.softmax(_masked_fill_low(t / temperature, m), dim=-1), torch.zeros_like(t))
    return t


def bar_distillation_loss(
    scores: Tensor,
    teacher_scores: Tensor,
    *,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
    transform: str = "affine_relu",
    a: float = 1.0,
    b: float = 0.0,
    temperature: float = 1.0,
) -> Tensor:
    """Listwise distillation of Born-Again neural Rankers (Qin et al., "Born Again Neural Rankers",
    arXiv 2109.15285): softmax cross-entropy of the student scores against transformed teacher
    scores T(t), teacher detached.

    * ``affine_relu`` (default): ``T(t) = ReLU(a·t + b)`` normalised per list to a distribution like
      ``rax.utils.normalize_probabilities`` (uniform if it sums to 0).  Our choice: BAR's text is not
      explicit about normalisation; normalising keeps the loss scale independent of a and of the
      teacher's score range (TF-Ranking's softmax loss, used by the BAR authors, also normalises).
    * ``softmax``: ``T(t) = softmax(t / temperature)`` (the paper's ablation).
    * ``none``: raw teacher scores as targets (only sensible for non-negative teacher scores).
    Mean over lists with ≥1 valid item."""
    s, t, m, w = _prepare(
        scores, teacher_scores, mask, weights, reduction, "bar_distillation_loss", "teacher_scores", pad_low=True
    )
    target = _teacher_targets(t, m, transform, a, b, temperature, True, "bar_distillation_loss")
    if w is not None:
        target = target * w
    return _reduce(_softmax_ce(s, target, m)[0], m.any(-1), reduction, zeroed=True)


def mse_distillation_loss(
    scores: Tensor,
    teacher_scores: Tensor,
    *,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
    transform: str = "none",
    a: float = 1.0,
    b: float = 0.0,
    temperature: float = 1.0,
) -> Tensor:
    """Pointwise score distillation (the BAR ablation's pointwise baseline): ``(s_i − T(t_i))²`` per
    valid item with T = ``none`` (identity, default), ``affine_relu`` (ReLU(a·t + b), not normalised)
    or ``softmax`` (per-list softmax(t/temperature)); teacher detached.  Mean over valid items."""
    s, t, m, w = _prepare(scores, teacher_scores, mask, weights, reduction, "mse_distillation_loss", "teacher_scores")
    target = _teacher_targets(t, m, transform, a, b, temperature, False, "mse_distillation_loss")
    loss = (s - target).square()
    if w is not None:
        loss = loss * w
    return _reduce(loss, m, reduction)


# RankTower's distillation terms (Yan & Li, arXiv 2407.12385, Sec. 4.3.1 and Table 4) are the losses
# above read against the teacher: thin adapters, so that each has its own registry name.
_TEACHER_KINDS = ("logits", "probabilities")


def _teacher_probabilities(teacher_scores: Tensor, mask: Tensor | None, teacher: str, name: str) -> Tensor:
    """Teacher probabilities ``[B, n]`` (0 at padding): ``σ(t)`` of logits, or ``t`` checked in [0, 1]."""
    if teacher not in _TEACHER_KINDS:
        raise ValueError(f"{name}: teacher must be one of {_TEACHER_KINDS}, got {teacher!r}")
    t = teacher_scores.detach()
    valid = torch.ones(t.shape, dtype=torch.bool, device=t.device) if mask is None else mask
    t = torch.where(valid, t, torch.zeros((), dtype=t.dtype, device=t.device))
    if teacher == "logits":
        return torch.sigmoid(t.float() if not t.is_floating_point() else t)
    if bool(((t < 0) | (t > 1) | torch.isnan(t)).any()):
        raise ValueError(f"{name}: teacher='probabilities' needs teacher_scores in [0, 1]; use teacher='logits'")
    return t


def listwise_distillation_loss(
    scores: Tensor,
    teacher_scores: Tensor,
    *,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
    teacher: str = "logits",
    temperature: float = 1.0,
) -> Tensor:
    """RankTower's distillation loss (Sec. 4.3.1): ``L_D = −Σ_i p_i·log softmax(z)_i``, the softmax
    cross-entropy of the student scores against the teacher's probabilities.  ``teacher="logits"``
    (rankers that emit logits, e.g. cross-encoders): ``p = softmax(t / temperature)`` over the list;
    ``teacher="probabilities"``: ``p = t`` as given (the paper's ranking model outputs click
    probabilities), in [0, 1].  This is :func:`bar_distillation_loss` with ``transform="softmax"`` /
    ``"none"``.  Mean over lists with ≥ 1 valid item."""
    if teacher not in _TEACHER_KINDS:
        raise ValueError(f"listwise_distillation_loss: teacher must be one of {_TEACHER_KINDS}, got {teacher!r}")
    if teacher == "probabilities":
        _teacher_probabilities(teacher_scores, mask, teacher, "listwise_distillation_loss")  # range check
    transform = "softmax" if teacher == "logits" else "none"
    return bar_distillation_loss(
        scores,
        teacher_scores,
        mask=mask,
        weights=weights,
        reduction=reduction,
        transform=transform,
        temperature=temperature,
    )


def pointwise_distillation_loss(
    scores: Tensor,
    teacher_scores: Tensor,
    *,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
    teacher: str = "logits",
) -> Tensor:
    """Pointwise distillation, RankTower Table 4's "weighted logloss": per item
    ``−[p_i·log σ(z_i) + (1 − p_i)·log(1 − σ(z_i))]``, the logloss whose two terms are weighted by the
    teacher's probability ``p_i`` (``σ(t_i)`` for ``teacher="logits"``, ``t_i`` for
    ``"probabilities"``) = :func:`pointwise_sigmoid_loss` against p.  Mean over valid items."""
    p = _teacher_probabilities(teacher_scores, mask, teacher, "pointwise_distillation_loss")
    return pointwise_sigmoid_loss(scores, p, mask=mask, weights=weights, reduction=reduction)


def pairwise_distillation_loss(
    scores: Tensor,
    teacher_scores: Tensor,
    *,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
    lambdaweight: str | None = None,
    topn: int | None = None,
) -> Tensor:
    """Pairwise distillation, RankTower Table 4's "pairwise logloss": RankNet on the teacher's order,
    ``log(1 + e^{−(z_i − z_j)})`` for every pair with ``t_i > t_j`` (teacher ties give no pair) =
    :func:`pairwise_logistic_loss` with the teacher scores as labels.  Mean over those pairs."""
    return pairwise_logistic_loss(
        scores, teacher_scores, mask=mask, weights=weights, reduction=reduction, lambdaweight=lambdaweight, topn=topn
    )


# ----------------------------------------------------------------------------- registry/objective
@dataclass(frozen=True)
class LossSpec:
    """A registered loss: the function, the target it reads and fixed keyword arguments."""

    fn: Callable[..., Tensor] | None
    target: str  # "labels" | "teacher_scores" | "teacher_ranks" | "lm_loss"
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def param_names(self) -> set[str]:
        if self.fn is None:
            return set()
        sig = inspect.signature(self.fn)
        names = {p.name for p in sig.parameters.values() if p.kind == p.KEYWORD_ONLY}
        names -= {"mask", "weights"} | set(self.fixed)
        if self.fn is lipo_lambda_loss:
            names.add("beta")
        return names


LOSSES: dict[str, LossSpec] = {
    "pointwise_sigmoid": LossSpec(pointwise_sigmoid_loss, "labels"),
    "pointwise_mse": LossSpec(pointwise_mse_loss, "labels"),
    "pairwise_logistic": LossSpec(pairwise_logistic_loss, "labels"),
    "ranknet": LossSpec(pairwise_logistic_loss, "labels"),
    "pairwise_hinge": LossSpec(pairwise_hinge_loss, "labels"),
    "lambdarank": LossSpec(pairwise_logistic_loss, "labels", {"lambdaweight": "dcg"}),
    "lambdaloss": LossSpec(pairwise_logistic_loss, "labels", {"lambdaweight": "dcg2"}),
    "softmax": LossSpec(softmax_loss, "labels"),
    "poly1": LossSpec(poly1_softmax_loss, "labels"),
    "listmle": LossSpec(listmle_loss, "labels"),
    "approx_ndcg": LossSpec(approx_ndcg_loss, "labels"),
    "approx_mrr": LossSpec(approx_mrr_loss, "labels"),
    "lipo_lambda": LossSpec(lipo_lambda_loss, "labels"),
    "first_ranknet": LossSpec(first_ranknet_loss, "teacher_ranks"),
    "bar_distillation": LossSpec(bar_distillation_loss, "teacher_scores"),
    "mse_distillation": LossSpec(mse_distillation_loss, "teacher_scores"),
    # RankTower (Yan & Li, arXiv 2407.12385) hybrid objective and its ablations
    "softsort": LossSpec(softsort_loss, "labels"),
    "rankmax": LossSpec(rankmax_loss, "labels"),
    "am_rankmax": LossSpec(am_rankmax_loss, "labels"),
    "listwise_distillation": LossSpec(listwise_distillation_loss, "teacher_scores"),
    "pointwise_distillation": LossSpec(pointwise_distillation_loss, "teacher_scores"),
    "pairwise_distillation": LossSpec(pairwise_distillation_loss, "teacher_scores"),
    # PG-Rank (Gao et al. 2023)
    "pg_rank": LossSpec(pg_rank_loss, "labels"),
    "lm": LossSpec(None, "lm_loss"),
}

_TARGET_SOURCES = {
    "labels": "relevance labels of the data (qrels / `labels` of each list)",
    "teacher_scores": "teacher scores (a `distill:` section in the recipe, or scored data with teacher scores)",
    "teacher_ranks": "teacher ranks (a `distill:` section with a listwise teacher, or data with a teacher order)",
    "lm_loss": "the ranker's LM loss (`output.lm_loss`, only produced by families with a generation target, e.g. FIRST)",
}


def _closest(name: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.0)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass
class ObjectiveTerm:
    """One weighted term of an :class:`Objective`: a registered loss name, its weight, its params."""

    name: str
    weight: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)
    #: sample stages (:data:`llmrank.data.record.STAGES`) whose documents the term sees; None = all
    scope: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if self.name not in LOSSES:
            raise ValueError(
                f"unknown loss {self.name!r}{_closest(self.name, sorted(LOSSES))}; known: {', '.join(sorted(LOSSES))}"
            )
        if self.scope is not None:
            if LOSSES[self.name].fn is None:
                raise ValueError(f"loss {self.name!r} is not computed over documents: it takes no scope")
            scope = [self.scope] if isinstance(self.scope, str) else self.scope
            if not isinstance(scope, Sequence) or not scope:
                raise ValueError(f"loss {self.name!r}: scope must be a non-empty list of stages {list(STAGES)}")
            for stage in scope:
                if stage not in STAGES:
                    raise ValueError(
                        f"loss {self.name!r}: unknown stage {stage!r} in scope{_closest(str(stage), STAGES)}; "
                        f"known: {', '.join(STAGES)}"
                    )
            self.scope = tuple(scope)
        allowed = LOSSES[self.name].param_names()
        for key in self.params:
            if key not in allowed:
                hint = _closest(key, sorted(allowed)) if allowed else ""
                raise ValueError(
                    f"loss {self.name!r} has no parameter {key!r}{hint}; "
                    f"valid: {', '.join(sorted(allowed)) or '(none)'}"
                )
        self.weight = float(self.weight)


def _scope_mask(term: ObjectiveTerm, mask: Tensor, targets: Mapping[str, Tensor]) -> Tensor:
    """``mask ∧ (stage ∈ term.scope)``: the term sees only the documents of its sample stages
    (RankTower's full-stage sampling: distillation on impressions, sorting on impressions and
    candidates, ...).  ``targets["stages"]`` holds stage ids (index in STAGES, −1 = untagged)."""
    stages = targets.get("stages")
    if stages is None:
        raise ValueError(
            f"loss {term.name!r} has scope {list(term.scope or ())} but the batch has no stage tags: "
            f"give every document a `stage` ({', '.join(STAGES)}) in the training data"
        )
    ids = torch.tensor([STAGES.index(s) for s in term.scope or ()], device=stages.device)
    return mask & torch.isin(stages.to(ids.device), ids).to(mask.device)


class Objective:
    """Weighted sum of loss terms: ``Σ_k weight_k · loss_k``.

    A term may carry ``scope``, a list of sample stages: it then sees only the documents tagged with
    those stages (``targets["stages"]``), e.g. ``{name: softsort, scope: [impression, candidate]}``.

    ``terms`` are :class:`ObjectiveTerm` or dicts ``{"name", "weight", "params"}`` (other keys of a dict
    are taken as params).  Calling it on a :class:`~llmrank.rankers.base.RankerOutput` and the targets
    returns ``(total, {name: unweighted value})``."""

    def __init__(self, terms: Sequence[ObjectiveTerm | Mapping[str, Any]]) -> None:
        parsed: list[ObjectiveTerm] = []
        for term in terms:
            if isinstance(term, ObjectiveTerm):
                parsed.append(term)
                continue
            term = dict(term)
            if "name" not in term:
                raise ValueError(f"objective term {term!r} has no 'name'")
            name = term.pop("name")
            weight = term.pop("weight", 1.0)
            scope = term.pop("scope", None)
            params = dict(term.pop("params", None) or {})
            params.update(term)
            parsed.append(ObjectiveTerm(name=name, weight=weight, params=params, scope=scope))
        if not parsed:
            raise ValueError("an objective needs at least one term")
        self.terms = parsed

    @property
    def needs(self) -> set[str]:
        """Targets the terms read ("labels", "teacher_scores", "teacher_ranks", "lm_loss")."""
        return {LOSSES[t.name].target for t in self.terms}

    def __call__(self, output: Any, targets: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        mask = targets.get("list_mask")
        if mask is None:
            mask = output.mask
        total: Tensor | None = None
        logs: dict[str, float] = {}
        unscoped = mask

        for term in self.terms:
            spec = LOSSES[term.name]
            # a scoped term sees only the documents of its sample stages
            mask = unscoped if term.scope is None else _scope_mask(term, unscoped, targets)
            if spec.fn is None:  # "lm"
                if output.lm_loss is None:
                    raise ValueError(f"loss 'lm' needs {_TARGET_SOURCES['lm_loss']}, but output.lm_loss is None")
                value = output.lm_loss.float()
            else:
                target = targets.get(spec.target)
                if target is None:
                    raise ValueError(
                        f"loss {term.name!r} needs targets[{spec.target!r}]: "
                        f"it comes from {_TARGET_SOURCES[spec.target]}"
                    )
                params = dict(term.params)
                scores = output.scores
                if term.name == "lipo_lambda":
                    beta = params.pop("beta", 0.05)
                    if output.logprobs is not None and output.ref_logprobs is not None:
                        scores = lipo_scores(output.logprobs, output.ref_logprobs, beta=beta)
                value = spec.fn(scores, target, mask=mask, **spec.fixed, **params)
            key = term.name
            i = 2
            while key in logs:
                key = f"{term.name}_{i}"
                i += 1
            logs[key] = float(value.detach())
            weighted = term.weight * value
            total = weighted if total is None else total + weighted
        assert total is not None
        return total, logs
