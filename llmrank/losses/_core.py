"""Shared machinery of every llmrank loss: input checks, padding, Rax-style reductions, gains,
discounts, ranks and the checks of the fast paths.  Every module of :mod:`llmrank.losses` imports
from here; this module imports none of them."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

Tensor = torch.Tensor

_REDUCTIONS = ("mean", "sum", "none")


def _compute_dtype(scores: Tensor) -> torch.dtype:
    return torch.float64 if scores.dtype == torch.float64 else torch.float32


def _prepare(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None,
    weights: Tensor | None,
    reduction: str,
    name: str,
    labels_name: str = "labels",
    pad_low: bool = False,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Validate and return ``(scores, labels, mask, weights)``: float, padding zeroed (padded scores
    get the most negative finite value instead with ``pad_low``, for softmax-style losses: it saves
    them a second masking op, see :func:`_masked_fill_low`).

    Padded entries are replaced by 0 *before* any arithmetic (the first half of the "double
    where" trick): whatever a padded entry holds (NaN, inf) can then never leak into a value
    or a gradient; the second ``where`` masks the per-item results."""
    dtype = _check_inputs(scores, labels, mask, weights, reduction, name, labels_name)
    if mask is None:
        mask = torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
    zero = torch.zeros((), dtype=dtype, device=scores.device)
    pad = torch.full((), torch.finfo(dtype).min, dtype=dtype, device=scores.device) if pad_low else zero
    scores = torch.where(mask, scores.to(dtype), pad)
    labels = torch.where(mask, labels.detach().to(dtype), zero)  # int / bool labels are fine: cast (documented)
    # Finiteness of the valid entries (padding is finite by now) with one reduction and one sync: x − x is 0
    # for finite x and NaN for ±inf / NaN, and a sum of zeros cannot overflow.  (~isfinite & mask).any()
    # per tensor costs ~4x more, which matters for the small pointwise and listwise losses.
    s = scores.detach()
    if (s - s).add_(labels).sub_(labels).sum().item() != 0:
        which = "scores" if not bool(torch.isfinite(s).all()) else labels_name
        raise ValueError(f"{name}: {which} contain NaN or inf at valid (mask=True) positions")
    if weights is not None:
        weights = torch.where(mask, weights.to(dtype), zero)
    return scores, labels, mask, weights


def _check_inputs(
    scores: Tensor,
    labels: Tensor,
    mask: Tensor | None,
    weights: Tensor | None,
    reduction: str,
    name: str,
    labels_name: str = "labels",
) -> torch.dtype:
    """The checks that need no tensor arithmetic (types, shapes, dtypes); returns the compute dtype."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not torch.is_tensor(scores) or not torch.is_tensor(labels):
        raise ValueError(f"{name}: scores and {labels_name} must be torch tensors")
    if scores.dim() != 2:
        raise ValueError(f"{name}: scores must be [batch, list_size], got shape {tuple(scores.shape)}")
    if labels.shape != scores.shape:
        raise ValueError(f"{name}: {labels_name} shape {tuple(labels.shape)} != scores shape {tuple(scores.shape)}")
    if not (scores.is_floating_point()):
        raise ValueError(f"{name}: scores must be floating point, got {scores.dtype}")
    if labels.is_complex():
        raise ValueError(f"{name}: {labels_name} must be real numbers, got {labels.dtype}")
    if mask is not None:
        if mask.shape != scores.shape:
            raise ValueError(f"{name}: mask shape {tuple(mask.shape)} != scores shape {tuple(scores.shape)}")
        if mask.dtype != torch.bool:
            raise ValueError(f"{name}: mask must be a bool tensor (True = real item), got {mask.dtype}")
    if weights is not None and weights.shape != scores.shape:
        raise ValueError(f"{name}: weights shape {tuple(weights.shape)} != scores shape {tuple(scores.shape)}")
    return _compute_dtype(scores)


def _reduce(values: Tensor, valid: Tensor, reduction: str, zeroed: bool = False) -> Tensor:
    """Rax ``safe_reduce``: masked entries are 0; a mean over nothing is 0 (not NaN).  ``zeroed``: the
    caller guarantees ``values`` is already 0 where not ``valid`` (skips a masking op)."""
    if not zeroed:
        values = torch.where(valid, values, torch.zeros((), dtype=values.dtype, device=values.device))
    if reduction == "none":
        return values
    return _total(values.sum(), valid, reduction)


def _total(total: Tensor, valid: Tensor, reduction: str) -> Tensor:
    """``sum`` or ``mean`` of an already summed loss: the mean divides by the number of valid units
    (at least 1; no host sync, so it stays cheap on GPU)."""
    return total if reduction == "sum" else total / valid.sum().clamp_min(1)


def _masked_fill_low(scores: Tensor, mask: Tensor) -> Tensor:
    """Padded items get the most negative finite value: ``exp`` underflows to exactly 0 for them,
    yet a fully padded row stays finite (``-inf`` would give NaN in ``log_softmax``)."""
    low = torch.finfo(scores.dtype).min
    return torch.where(mask, scores, torch.full((), low, dtype=scores.dtype, device=scores.device))


def normalize_probabilities(values: Tensor, mask: Tensor) -> Tensor:
    """``rax.utils.normalize_probabilities``: ``v / Σ_valid v``; a list summing to 0 becomes
    uniform over its valid items (over all items when none is valid)."""
    values = torch.where(mask, values, 0.0)
    total = values.sum(-1, keepdim=True)
    nonzero = total != 0
    count = mask.sum(-1, keepdim=True)
    uniform = torch.where(count == 0, mask.shape[-1], count).to(values.dtype).reciprocal()
    # the inner where keeps 0/0 out of the unselected branch (its gradient would be NaN)
    return torch.where(nonzero, values / torch.where(nonzero, total, 1.0), uniform)


def ranks(scores: Tensor, mask: Tensor) -> Tensor:
    """1-based ranks by descending score, padded items last, ties in input order (stable sort,
    as ``rax.utils.ranks`` without a PRNG key).  No gradient."""
    with torch.no_grad():
        key = torch.where(mask, -scores, torch.full((), math.inf, dtype=scores.dtype, device=scores.device))
        order = torch.sort(key, dim=-1, stable=True).indices
        out = torch.empty_like(order)
        pos = torch.arange(1, scores.shape[-1] + 1, device=scores.device).expand_as(order)
        out.scatter_(-1, order, pos)
    return out.to(scores.dtype)


def _gain(labels: Tensor) -> Tensor:
    return torch.pow(2.0, labels) - 1.0  # G(y) = 2^y − 1 (Burges et al. 2005)


def _discount(ranks: Tensor) -> Tensor:
    return 1.0 / torch.log2(1.0 + ranks)  # D(r) = 1 / log2(1 + r)


def _check_topn(name: str, topn: int | None) -> None:
    if topn is not None and (isinstance(topn, bool) or not isinstance(topn, int) or topn < 1):
        raise ValueError(f"{name}: topn must be a positive int or None, got {topn!r}")


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


# ---------------------------------------------------------------------------------- citations
class Paper(NamedTuple):
    """A paper a loss implements: a short title for people and its BibTeX entry."""

    short: str  # e.g. "RankNet (Burges et al., ICML 2005)"
    bibtex: str


def cite(short: str, key: str, kind: str, **fields: str) -> Paper:
    """``Paper(short, "@kind{key,\n  field = {value},\n  ...\n}")``."""
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields.items())
    return Paper(short, f"@{kind}{{{key},\n{body}\n}}")


#: the reference definitions llmrank's classic losses follow (names, formulas, edge cases)
RAX = cite(
    "Rax (Jagerman et al., KDD 2022)", "jagerman2022rax", "inproceedings",
    title="Rax: Composable Learning-to-Rank Using JAX",
    author="Jagerman, Rolf and Wang, Xuanhui and Zhuang, Honglei and Qin, Zhen and Bendersky, Michael and "
    "Najork, Marc",
    booktitle="Proceedings of KDD", year="2022",
)  # fmt: skip
