"""Transformations of losses and metrics (Rax's ``t12n``): :func:`approx_t12n` turns a ranking metric
into a differentiable loss by evaluating it at smooth ranks, :func:`gumbel` perturbs any loss with
Gumbel noise.  ApproxNDCG and ApproxMRR are ``approx_t12n(ndcg_metric)`` and ``approx_t12n(mrr_metric)``.

A metric here is ``metric(scores, labels, mask, *, rank_fn[, weights]) -> Tensor [batch]`` on inputs
already checked and zeroed at padding; ``rank_fn(scores, mask)`` gives the 1-based ranks it is
evaluated at (exact :func:`~llmrank.losses._core.ranks` by default, so the metric is the metric).
A metric without a ``weights`` parameter makes a loss that rejects ``weights``.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import torch

from llmrank.losses._core import Tensor, _compute_dtype, _discount, _gain, _prepare, _reduce, cite, ranks

__all__ = ["approx_mrr_loss", "approx_ndcg_loss", "approx_t12n", "gumbel", "mrr_metric", "ndcg_metric"]

RankFn = Callable[[Tensor, Tensor], Tensor]


def ndcg_metric(
    scores: Tensor, labels: Tensor, mask: Tensor, *, rank_fn: RankFn = ranks, weights: Tensor | None = None
) -> Tensor:
    """nDCG per list (``rax.ndcg_metric``): ``Σ_i G_i·D(r_i) / IDCG``, G = (2^y − 1)·w, D(r) = 1/log2(1 + r),
    IDCG from the list's own gains (0 -> 1, so a list without relevant items scores 0)."""
    g = _gain(labels) if weights is None else _gain(labels) * weights
    dcg = torch.where(mask, g * _discount(rank_fn(scores, mask)), torch.zeros_like(scores)).sum(-1)
    with torch.no_grad():
        ideal = torch.where(mask, g, torch.full_like(g, -math.inf)).sort(dim=-1, descending=True).values
        pos = torch.arange(1, scores.shape[-1] + 1, device=scores.device, dtype=scores.dtype)
        idcg = torch.where(torch.isfinite(ideal), ideal * _discount(pos), torch.zeros_like(ideal)).sum(-1)
        idcg = torch.where(idcg == 0, torch.ones_like(idcg), idcg)
    return dcg / idcg


def mrr_metric(scores: Tensor, labels: Tensor, mask: Tensor, *, rank_fn: RankFn = ranks) -> Tensor:
    """Reciprocal rank per list (``rax.mrr_metric``): ``max_{i: y_i ≥ 1} 1/r_i``, 0 without a relevant item."""
    rr = 1.0 / rank_fn(scores, mask)
    return torch.where(mask & (labels >= 1), rr, torch.zeros_like(rr)).amax(-1)


def approx_ranks(scores: Tensor, mask: Tensor, temperature: float = 1.0) -> Tensor:
    """Smooth ranks (Qin et al., "A General Approximation Framework for Direct Optimization of
    Information Retrieval Measures", IR Journal 2010; ``rax.utils.approx_ranks``):
    ``r̂_i = 1 + Σ_{j≠i, valid} σ((s_j − s_i)/T)``.

    The sum over valid j multiplies by the [B, 1, n] mask (no [B, n, n] bool mask, no masked copy:
    4 [B, n, n] passes forward instead of 8; a batched mat-vec is slower on CPU).  It includes j = i,
    whose term is σ(0) = 1/2 exactly, hence ``1 + Σ_{j≠i} = 1/2 + Σ_j``.  Padded i get a finite
    meaningless value (≥ 1/2): metrics mask them out."""
    st = scores / temperature  # on [B, n]: the [B, n, n] differences need no division
    pair = torch.sigmoid(st.unsqueeze(-2) - st.unsqueeze(-1))
    return 0.5 + (pair * mask.to(scores.dtype).unsqueeze(-2)).sum(-1)


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


def approx_t12n(metric_fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """The loss ``−metric(s, y)`` with the metric evaluated at :func:`approx_ranks` at ``temperature``
    (``rax.approx_t12n``, Qin et al. 2010).  ``gumbel_samples > 0`` adds Gumbel noise to the scores
    (Bruch et al., SIGIR 2019; seeded by ``generator``).  Mean over lists with ≥ 1 valid item."""
    metric = metric_fn.__name__.removesuffix("_metric")
    name = f"approx_{metric}_loss"
    takes_weights = "weights" in inspect.signature(metric_fn).parameters

    def loss(
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
        if weights is not None and not takes_weights:
            raise ValueError(f"{name} does not support weights")
        if gumbel_samples:
            return _gumbel_apply(
                loss, scores, labels, mask, weights, reduction, gumbel_samples, gumbel_beta, generator,
                temperature=temperature,
            )  # fmt: skip
        s, y, m, w = _prepare(scores, labels, mask, weights, reduction, name)
        extra = {"weights": w} if takes_weights else {}
        rank_fn = functools.partial(approx_ranks, temperature=temperature)
        return _reduce(-metric_fn(s, y, m, rank_fn=rank_fn, **extra), m.any(-1), reduction)

    loss.__name__ = loss.__qualname__ = name
    loss.__doc__ = f"Approx{metric.upper()} (``rax.approx_t12n(rax.{metric_fn.__name__})``): −{metric_fn.__doc__}"
    return loss


approx_ndcg_loss = approx_t12n(ndcg_metric)
approx_mrr_loss = approx_t12n(mrr_metric)

#: ApproxNDCG / ApproxMRR: the smooth-rank framework of Qin et al. (2010)
APPROX = cite(
    "ApproxNDCG (Qin et al., Information Retrieval 2010)", "qin2010approx", "article",
    title="A General Approximation Framework for Direct Optimization of Information Retrieval Measures",
    author="Qin, Tao and Liu, Tie-Yan and Li, Hang", journal="Information Retrieval", volume="13", number="4",
    year="2010",
)  # fmt: skip
