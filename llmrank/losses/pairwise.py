"""Pairwise losses: one value per pair ``(i, j)`` with ``labels_i > labels_j``, both valid; ``mean``
divides by the number of such pairs (lambda weights do not change the denominator), as Rax does.

Lambda weights are functions passed in (``lambdaweight=``, see :mod:`llmrank.losses.lambdaweights`).
The reduced losses run through one memory path, :class:`_PairwiseReduced`: the gradient is computed in
the forward pass chunk by chunk over lists, so only ``[chunk, n, n]`` temporaries exist and the
backward keeps ``[B, n]``.  ``reduction="none"`` runs plain autograd.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from llmrank.losses._core import Tensor, _check_topn, _compute_dtype, _prepare, _reduce, cite
from llmrank.losses.lambdaweights import LambdaweightFn, dcg_lambdaweight, resolve_lambdaweight

__all__ = [
    "first_ranknet_loss",
    "lipo_lambda_loss",
    "lipo_scores",
    "pairwise_hinge_loss",
    "pairwise_logistic_loss",
]

# Pair chunks hold at most this many [chunk, n, n] elements (~64 MB in float32 per temporary).
_PAIR_CHUNK_ELEMS = 1 << 24


def _pair_scale(
    s: Tensor, y: Tensor, m: Tensor, w: Tensor | None, lambdaweight: LambdaweightFn | None, topn: int | None
) -> Tensor | None:
    """Per-pair factor ``w_i·λ_ij`` (Rax weights pair (i, j) by w_i), 0 at padded pairs when λ is
    given; None if all 1.  ``s``, ``y``, ``w`` are zeroed at padding (``_prepare``)."""
    if lambdaweight is None:
        return None if w is None else w.unsqueeze(-1)
    with torch.no_grad():
        lam = lambdaweight(s, y, m, weights=w, topn=topn)
        if lam.shape != (*s.shape, s.shape[-1]):
            raise ValueError(f"lambdaweight must return [batch, n, n] = {[*s.shape, s.shape[-1]]}, got {list(lam.shape)}")
        lam = lam.to(s.dtype)
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
    s: Tensor, y: Tensor, m: Tensor, w: Tensor | None, kind: str, lambdaweight: LambdaweightFn | None, topn: int | None
) -> Tensor:
    """``[B, n, n]`` pair losses (0 for invalid pairs), differentiable by autograd (``reduction="none"``)."""
    d = s.unsqueeze(-1) - s.unsqueeze(-2)  # d_ij = s_i − s_j
    loss = F.softplus(-d) if kind == "logistic" else (1.0 - d).clamp_min(0.0)
    scale = _pair_scale(s.detach(), y, m, w, lambdaweight, topn)
    if scale is not None:
        loss = loss * scale
    return torch.where(_valid_pairs(y, m), loss, 0.0)


def _pair_chunk(
    s: Tensor, y: Tensor, m: Tensor, w: Tensor | None, kind: str, lambdaweight: LambdaweightFn | None, topn: int | None
) -> tuple[Tensor, Tensor, Tensor]:
    """For a chunk of lists, without autograd: Σ of the pair losses over valid pairs, the number of
    valid pairs and the gradient w.r.t. s.  In place, so that at most four [chunk, n, n] float
    temporaries (pair factor, validity, loss, derivative) live at a time."""
    scale = _pair_scale(s, y, m, w, lambdaweight, topn)
    factor = _valid_pairs(y, m, s.dtype)  # 1.0 / 0.0
    count = factor.sum()
    if scale is not None:
        factor.mul_(scale)  # valid · w_i · λ_ij: one factor for the loss and its derivative
        del scale
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
    # × 0 is an exact mask: loss and derivative are finite (padding was zeroed; only scores beyond
    # ~1e38 could overflow s_j − s_i)
    loss.mul_(factor)
    neg_dloss.mul_(factor)
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
    lambdaweight: str | LambdaweightFn | None,
    topn: int | None,
) -> Tensor:
    s, y, m, w = _prepare(scores, labels, mask, weights, reduction, name)
    lambdaweight_fn = resolve_lambdaweight(lambdaweight, name)
    _check_topn(name, topn)
    if reduction == "none":
        return _pair_loss_unreduced(s, y, m, w, kind, lambdaweight_fn, topn)
    total, count = _PairwiseReduced.apply(s, y, m, w, kind, lambdaweight_fn, topn)
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
    lambdaweight: str | LambdaweightFn | None = None,
    topn: int | None = None,
) -> Tensor:
    """RankNet (Burges et al., ICML 2005) as ``rax.pairwise_logistic_loss``: ``λ_ij·log(1 + e^{−(s_i−s_j)})``
    over pairs with ``y_i > y_j``.  ``lambdaweight``: None, a lambda-weight function
    (``lambdaweight_fn`` in Rax) or its name: "labeldiff" | "dcg" (LambdaRank) | "dcg2" (LambdaLoss
    NDCG-Loss2); ``topn`` is passed to it (cuts the DCG weights).  Mean over valid pairs."""
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
    lambdaweight: str | LambdaweightFn | None = None,
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
    return _pairwise("lipo_lambda_loss", "logistic", scores, labels, mask, weights, reduction, dcg_lambdaweight, topn)


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
    ``sum`` sums them; ``none`` returns ``[B]``.  ``pairs`` is FIRST's own reduction: one mean over all
    valid pairs of the batch, ``Σ_b Σ w_ij·softplus(·) / Σ_b P_b``, so a window of 20 (190 pairs) weighs
    more than one of 5 (10 pairs); ``mean`` gives every list the same weight.  The two agree when all
    lists have the same number of pairs.  ``weights`` (per item) multiply pair (i, j) by w_i."""
    over_pairs = reduction == "pairs"
    s, r, m, w = _prepare(
        scores, teacher_ranks, mask, weights, "sum" if over_pairs else reduction, "first_ranknet_loss", "teacher_ranks"
    )
    if bool(((r < 1) & m).any()):
        raise ValueError("first_ranknet_loss: teacher_ranks must be 1-based (>= 1) at valid positions")
    d = s.unsqueeze(-1) - s.unsqueeze(-2)
    valid = (r.unsqueeze(-1) < r.unsqueeze(-2)) & m.unsqueeze(-1) & m.unsqueeze(-2)
    pair_w = 1.0 / (r.unsqueeze(-1) + r.unsqueeze(-2)).clamp_min(1.0)
    if w is not None:
        pair_w = pair_w * w.unsqueeze(-1)
    loss = torch.where(valid, pair_w * F.softplus(-d), torch.zeros_like(d)).sum((-1, -2))
    pairs = valid.sum((-1, -2))
    if over_pairs:
        return loss.sum() / pairs.sum().clamp_min(1).to(loss.dtype)
    per_list = loss / pairs.clamp_min(1).to(loss.dtype)
    return _reduce(per_list, pairs > 0, reduction)


# ------------------------------------------------------------------------------------ citations
RANKNET = cite(
    "RankNet (Burges et al., ICML 2005)", "burges2005ranknet", "inproceedings", title="Learning to Rank Using Gradient Descent",
    author="Burges, Chris and Shaked, Tal and Renshaw, Erin and Lazier, Ari and Deeds, Matt and Hamilton, Nicole "
    "and Hullender, Greg",
    booktitle="Proceedings of ICML", year="2005",
)  # fmt: skip
HINGE = cite(
    "Ordinal regression SVM (Herbrich et al., ICANN 1999)", "herbrich1999ordinal", "inproceedings", title="Support Vector Learning for Ordinal Regression",
    author="Herbrich, Ralf and Graepel, Thore and Obermayer, Klaus", booktitle="Proceedings of ICANN", year="1999",
)  # fmt: skip
LAMBDARANK = cite(
    "LambdaRank (Burges et al., NIPS 2006)", "burges2006lambdarank", "inproceedings", title="Learning to Rank with Nonsmooth Cost Functions",
    author="Burges, Christopher J. C. and Ragno, Robert and Le, Quoc V.", booktitle="Proceedings of NIPS",
    year="2006",
)  # fmt: skip
LAMBDALOSS = cite(
    "LambdaLoss (Wang et al., CIKM 2018)", "wang2018lambdaloss", "inproceedings", title="The LambdaLoss Framework for Ranking Metric Optimization",
    author="Wang, Xuanhui and Li, Cheng and Golbandi, Nadav and Bendersky, Michael and Najork, Marc",
    booktitle="Proceedings of CIKM", year="2018",
)  # fmt: skip
LIPO = cite(
    "LiPO (Liu et al., NAACL 2025)", "liu2025lipo", "inproceedings", title="LiPO: Listwise Preference Optimization through Learning-to-Rank",
    author="Liu, Tianqi and Qin, Zhen and Wu, Junru and Shen, Jiaming and Khalman, Misha and Joshi, Rishabh and "
    "Zhao, Yao and Saleh, Mohammad and Baumgartner, Simon and Liu, Jialu and Liu, Peter J. and Wang, Xuanhui",
    booktitle="Proceedings of NAACL", year="2025", note="arXiv:2402.01878",
)  # fmt: skip
FIRST = cite(
    "FIRST (Reddy et al., EMNLP 2024)", "reddy2024first", "inproceedings", title="FIRST: Faster Improved Listwise Reranking with Single Token Decoding",
    author="Reddy, Revanth Gangi and Doo, JaeHyeok and Xu, Yifei and Sultan, Md Arafat and Swain, Deevya and "
    "Sil, Avirup and Ji, Heng",
    booktitle="Proceedings of EMNLP", year="2024", note="arXiv:2406.15657",
)  # fmt: skip
