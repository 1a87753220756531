"""The ranking losses of RankTower's hybrid objective (Yan & Li, "RankTower: A Synergistic Framework
for Enhancing Two-Tower Pre-Ranking Model", arXiv 2407.12385, Sec. 4.3), in plain torch.

* :func:`softsort_loss`: the sorting loss (eq. 16) over SoftSort relaxed permutation matrices
  (Prillo & Eisenschlos, "SoftSort: A Continuous Relaxation for the argsort Operator", ICML 2020);
* :func:`rankmax_loss`: the Rankmax loss (Kong et al., "Rankmax: An Adaptive Projection Alternative to
  the Softmax Function", NeurIPS 2020) as RankTower writes it (eq. 17);
* :func:`am_rankmax_loss`: RankTower's adaptive-margin Rankmax (eq. 18-19).

The distillation terms of Sec. 4.3.1 (listwise, and the pointwise / pairwise ablations of Table 4)
reuse llmrank's distillation and pairwise losses and live in :mod:`llmrank.losses.distillation`.

All follow the :mod:`llmrank.losses` contract: ``loss(scores, labels, *, mask=None, weights=None,
reduction="mean", **hyper)`` on ``[batch, list_size]``, mask True = real item, one value per list
(``mean`` averages over lists with at least one valid item, Rax's listwise convention), 0 and finite
gradients for empty, single-item, fully padded lists and lists without relevant items.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from llmrank.losses._core import Tensor, _masked_fill_low, _prepare, _reduce, cite

__all__ = ["am_rankmax_loss", "rankmax_loss", "softsort", "softsort_loss"]

_DELTAS = ("constant", "labeldiff")


def _check_positive(name: str, **values: float) -> None:
    for key, value in values.items():
        if not float(value) > 0:
            raise ValueError(f"{name}: {key} must be > 0, got {value!r}")


def _sorted_desc(values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """``(values sorted descending, mask of the sorted rows)``: valid entries first, padding last,
    ties in input order.  Differentiable in ``values`` (a gather); padding must already be finite."""
    key = torch.where(mask, -values.detach(), torch.full((), float("inf"), dtype=values.dtype, device=values.device))
    order = torch.sort(key, dim=-1, stable=True).indices
    return torch.gather(values, -1, order), torch.gather(mask, -1, order)


def _log_softsort(values: Tensor, mask: Tensor, tau: float, power: float) -> tuple[Tensor, Tensor]:
    """``log SoftSort(values)`` ``[B, n, n]`` and the mask of its valid rows ``[B, n]``.

    Row r is ``log softmax_c(−|sort(v)_r − v_c|^p / τ)`` over the valid columns c (Prillo &
    Eisenschlos eq. 1, sorted descending as in RankTower).  Padded columns get the most negative
    finite logit (exactly 0 probability, no NaN even for a fully padded row); ``values`` must be 0
    (or any finite number) at padding, which :func:`llmrank.losses._core._prepare` guarantees."""
    top, row_mask = _sorted_desc(values, mask)
    # d(a, b) = |a − b|^p; the diagonal entry (an item against itself) is |0|^p = 0, whose gradient
    # is 0 for p ≥ 1 (p < 1 would give 0·inf = NaN there, hence the check in the callers)
    dist = (top.unsqueeze(-1) - values.unsqueeze(-2)).abs().pow(power)
    logits = _masked_fill_low(-dist / tau, mask.unsqueeze(-2).expand_as(dist))
    return torch.log_softmax(logits, dim=-1), row_mask


def softsort(scores: Tensor, mask: Tensor | None = None, *, tau: float = 1.0, power: float = 1.0) -> Tensor:
    """SoftSort relaxed permutation matrix ``P[b, r, c] = softmax_c(−|sort(s)_r − s_c|^p / τ)``,
    ``sort`` descending (Prillo & Eisenschlos, ICML 2020, eq. 1; RankTower eq. 15).  Rows r ≥ the
    number of valid items and padded columns are 0.  As ``τ → 0`` it tends to the hard permutation
    matrix with ``P[r, c] = 1`` iff item c has rank r (distinct scores)."""
    if mask is None:
        mask = torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
    _check_positive("softsort", tau=tau)
    if not float(power) >= 1.0:
        raise ValueError(f"softsort: power must be >= 1 (|·|^p has an infinite slope at 0 below), got {power!r}")
    s = torch.where(mask, scores, torch.zeros((), dtype=scores.dtype, device=scores.device))
    logp, rows = _log_softsort(s, mask, float(tau), float(power))
    keep = rows.unsqueeze(-1) & mask.unsqueeze(-2)
    return torch.where(keep, logp.exp(), torch.zeros((), dtype=logp.dtype, device=logp.device))


def softsort_loss(
    scores: Tensor,
    labels: Tensor,
    *,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
    tau: float = 1.0,
    power: float = 2.0,
    label_tau: float | None = None,
) -> Tensor:
    """RankTower's sorting loss (eq. 16): ``L = −Σ_{r,c} SoftSort(y)_{rc} · log SoftSort(z)_{rc}``,
    the cross-entropy between the relaxed permutation matrices of the labels y and the scores z,
    summed over the n valid rows (each row is a distribution over the list).  ``d = |·|^power``
    (RankTower uses the squared distance, the default; Prillo & Eisenschlos use ``power=1``), ``tau``
    the temperature of both matrices unless ``label_tau`` sets the labels' one.

    Tied labels (binary relevance) make the label rows uniform over the tied items, so the loss is
    exactly invariant to how ties are ordered.  A list whose labels are all equal (no relevant item)
    still has a well-defined target (every row uniform) and is kept, like Rax keeps zero-label lists
    in ``softmax_loss``; a single item gives 0.  No ``weights`` (a per-item weight has no meaning for
    a permutation matrix).  Mean over lists with ≥ 1 valid item."""
    if weights is not None:
        raise ValueError("softsort_loss does not support weights")
    _check_positive("softsort_loss", tau=tau, **({} if label_tau is None else {"label_tau": label_tau}))
    if not float(power) >= 1.0:
        raise ValueError(f"softsort_loss: power must be >= 1 (|·|^p has an infinite slope at 0 below), got {power!r}")
    s, y, m, _ = _prepare(scores, labels, mask, None, reduction, "softsort_loss")
    with torch.no_grad():
        log_target, rows = _log_softsort(y, m, float(label_tau if label_tau is not None else tau), float(power))
    log_pred, _ = _log_softsort(s, m, float(tau), float(power))
    keep = rows.unsqueeze(-1) & m.unsqueeze(-2)
    # the target is exactly 0 at padded columns and rows are masked: no 0·(−huge) reaches the sum
    ce = torch.where(keep, -log_target.exp() * log_pred, torch.zeros((), dtype=s.dtype, device=s.device))
    return _reduce(ce.sum((-1, -2)), m.any(-1), reduction, zeroed=True)


def rankmax_loss(
    scores: Tensor,
    labels: Tensor,
    *,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Rankmax loss with margin 1 (Kong et al., NeurIPS 2020; RankTower eq. 17):
    ``L = Σ_{j: y_j > 0} log Σ_{i valid} (z_i − z_j + 1)_+``.

    The sum over i includes i = j, whose term is exactly 1, so the inner sum is ≥ 1 and the loss
    ≥ 0 (0 once every other item scores at least 1 below z_j).  Labels > 0 count as relevant (the
    paper's labels are binary).  ``weights`` multiply the term of each relevant j.  Lists without a
    relevant item give 0.  Mean over lists with ≥ 1 valid item."""
    s, y, m, w = _prepare(scores, labels, mask, weights, reduction, "rankmax_loss")
    hinge = F.relu(s.unsqueeze(-2) - s.unsqueeze(-1) + 1.0)  # [b, j, i] = (z_i − z_j + 1)_+
    inner = torch.where(m.unsqueeze(-2), hinge, torch.zeros((), dtype=s.dtype, device=s.device)).sum(-1)
    positive = m & (y > 0)
    # for a relevant j the inner sum holds the i = j term 1: log is finite; elsewhere log(1) = 0
    per_item = torch.log(torch.where(positive, inner, torch.ones((), dtype=s.dtype, device=s.device)))
    if w is not None:
        per_item = per_item * w
    return _reduce(per_item.sum(-1), m.any(-1), reduction, zeroed=True)


def am_rankmax_loss(
    scores: Tensor,
    labels: Tensor,
    *,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
    alpha: float = 2.0,
    delta: str = "constant",
    beta: float = 1.0,
    power: float = 1.0,
) -> Tensor:
    """Adaptive-margin Rankmax (RankTower eq. 18-19):
    ``L = Σ_{j: y_j > 0} log(1 + Σ_{i: y_i < y_j} (z_i − z_j + m(i, j))_+)`` with the margin
    ``m(i, j) = α·𝟙[y_i = 0] + δ(y_i, y_j)``, ``δ = 1`` (``delta="constant"``, the paper's choice) or
    ``δ = β·|y_i − y_j|^power`` (``delta="labeldiff"``).  RankTower searched α in [2, 5] with δ = 1.

    The ``1 +``: the paper's inner sum runs over i with ``y_i < y_j`` only, so it is 0 — and its log
    −inf — whenever every margin is met (or j has no less relevant item).  We add the unit term that
    Rankmax's own i = j summand contributes (eq. 17: ``(z_j − z_j + 1)_+ = 1``), which keeps the loss
    finite, ≥ 0 and 0 exactly when all margins hold; with binary labels, ``α = 0``, ``δ = 1`` and one
    relevant item per list it equals :func:`rankmax_loss`.  ``weights`` multiply the term of each
    relevant j.  Mean over lists with ≥ 1 valid item."""
    if delta not in _DELTAS:
        raise ValueError(f"am_rankmax_loss: delta must be one of {_DELTAS}, got {delta!r}")
    if float(alpha) < 0 or float(beta) < 0 or float(power) <= 0:
        raise ValueError(f"am_rankmax_loss: need alpha >= 0, beta >= 0, power > 0; got {alpha}, {beta}, {power}")
    s, y, m, w = _prepare(scores, labels, mask, weights, reduction, "am_rankmax_loss")
    yj, yi = y.unsqueeze(-1), y.unsqueeze(-2)  # [b, j, i]
    with torch.no_grad():
        gap = 1.0 if delta == "constant" else beta * (yi - yj).abs().pow(power)
        margin = alpha * (yi == 0).to(s.dtype) + gap
        below = (yi < yj) & m.unsqueeze(-1) & m.unsqueeze(-2)
    hinge = F.relu(s.unsqueeze(-2) - s.unsqueeze(-1) + margin)
    inner = torch.where(below, hinge, torch.zeros((), dtype=s.dtype, device=s.device)).sum(-1)
    per_item = torch.where(m & (y > 0), torch.log1p(inner), torch.zeros((), dtype=s.dtype, device=s.device))
    if w is not None:
        per_item = per_item * w
    return _reduce(per_item.sum(-1), m.any(-1), reduction, zeroed=True)


RANKTOWER = cite(
    "RankTower (Yan & Li, 2024)", "yan2024ranktower", "article", title="RankTower: A Synergistic Framework for Enhancing Two-Tower Pre-Ranking Model",
    author="Yan, YaChen and Li, Liubo", journal="arXiv:2407.12385", year="2024",
)  # fmt: skip
