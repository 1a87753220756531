"""Pointwise losses: one value per valid item; ``mean`` divides by the number of valid items
(Rax's pointwise convention).  Each has one fast path (see :func:`llmrank.losses._core._fast_ok`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from llmrank.losses._core import Tensor, _check_inputs, _fast_ok, _finite, _prepare, _reduce, _total

__all__ = ["pointwise_mse_loss", "pointwise_sigmoid_loss"]


def _unit_weights(mask: Tensor | None, like: Tensor, reduction: str) -> Tensor:
    """1 at valid items, 0 at padding, divided by the number of valid items for ``mean``."""
    w = torch.ones_like(like) if mask is None else mask.to(like.dtype)
    return w if reduction == "sum" else w.div_(w.sum().clamp_min_(1.0))


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
    loss = (s - y).square()
    if w is not None:
        loss = loss * w
    return _reduce(loss, m, reduction, zeroed=True)

