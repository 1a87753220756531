"""Distillation losses: the student's scores against a teacher's (detached) scores.

* BAR (Born-Again neural Rankers): :func:`bar_distillation_loss` (listwise) and its pointwise ablation
  :func:`mse_distillation_loss`, both reading the teacher through :func:`teacher_transform` -- the one
  implementation of the teacher transforms, also used by :mod:`llmrank.distill` for ensembles;
* RankTower's distillation terms (Yan & Li, arXiv 2407.12385, Sec. 4.3.1 and Table 4): the losses
  above read against the teacher, thin adapters so that each has its own registry name.
"""

from __future__ import annotations

import torch

from llmrank.losses._core import Tensor, _masked_fill_low, _prepare, _reduce, cite, normalize_probabilities
from llmrank.losses.lambdaweights import LambdaweightFn
from llmrank.losses.listwise import _softmax_ce
from llmrank.losses.pairwise import pairwise_logistic_loss
from llmrank.losses.pointwise import pointwise_sigmoid_loss
from llmrank.suggest import did_you_mean

__all__ = [
    "TEACHER_TRANSFORMS",
    "bar_distillation_loss",
    "listwise_distillation_loss",
    "mse_distillation_loss",
    "pairwise_distillation_loss",
    "pointwise_distillation_loss",
    "teacher_transform",
]

TEACHER_TRANSFORMS = ("affine_relu", "softmax", "none")


def teacher_transform(
    teacher_scores: Tensor,
    mask: Tensor,
    transform: str = "affine_relu",
    *,
    a: float = 1.0,
    b: float = 0.0,
    temperature: float = 1.0,
    normalize: bool = False,
    name: str = "teacher_transform",
) -> Tensor:
    """BAR's teacher transform ``T(t)`` per list, detached, 0 at padding (``none``: t as given):

    * ``affine_relu``: ``ReLU(a·t + b)``; with ``normalize`` divided by its sum over the list
      (``rax.utils.normalize_probabilities``: uniform when it sums to 0);
    * ``softmax``: ``softmax(t / temperature)`` over the valid items;
    * ``none``: the raw teacher scores.
    ``name`` prefixes the error for an unknown transform."""
    if transform not in TEACHER_TRANSFORMS:
        hint = did_you_mean(str(transform), TEACHER_TRANSFORMS, cutoff=0.6, parens=True)
        raise ValueError(f"{name}: transform must be one of {TEACHER_TRANSFORMS}, got {transform!r}{hint}")
    t = teacher_scores.detach()
    if transform == "affine_relu":
        out = torch.relu(a * t + b)
        return normalize_probabilities(out, mask) if normalize else torch.where(mask, out, torch.zeros_like(out))
    if transform == "softmax":
        return torch.where(mask, torch.softmax(_masked_fill_low(t / temperature, mask), dim=-1), torch.zeros_like(t))
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
    target = teacher_transform(
        t, m, transform, a=a, b=b, temperature=temperature, normalize=True, name="bar_distillation_loss"
    )
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
    target = teacher_transform(t, m, transform, a=a, b=b, temperature=temperature, name="mse_distillation_loss")
    loss = (s - target).square()
    if w is not None:
        loss = loss * w
    return _reduce(loss, m, reduction)


# RankTower's distillation terms (Yan & Li, arXiv 2407.12385, Sec. 4.3.1 and Table 4) are the losses
# above read against the teacher: thin adapters, so that each has its own registry name.
_TEACHER_KINDS = ("logits", "probabilities")


def _check_teacher_kind(teacher: str, name: str) -> None:
    if teacher not in _TEACHER_KINDS:
        raise ValueError(f"{name}: teacher must be one of {_TEACHER_KINDS}, got {teacher!r}")


def _teacher_probabilities(teacher_scores: Tensor, mask: Tensor | None, teacher: str, name: str) -> Tensor:
    """Teacher probabilities ``[B, n]`` (0 at padding): ``σ(t)`` of logits, or ``t`` checked in [0, 1]."""
    _check_teacher_kind(teacher, name)
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
    _check_teacher_kind(teacher, "listwise_distillation_loss")
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
    lambdaweight: str | LambdaweightFn | None = None,
    topn: int | None = None,
) -> Tensor:
    """Pairwise distillation, RankTower Table 4's "pairwise logloss": RankNet on the teacher's order,
    ``log(1 + e^{−(z_i − z_j)})`` for every pair with ``t_i > t_j`` (teacher ties give no pair) =
    :func:`pairwise_logistic_loss` with the teacher scores as labels.  Mean over those pairs."""
    return pairwise_logistic_loss(
        scores, teacher_scores, mask=mask, weights=weights, reduction=reduction, lambdaweight=lambdaweight, topn=topn
    )


# ------------------------------------------------------------------------------------ citations
BAR = cite(
    "Born-Again Neural Rankers (Qin et al., 2021)", "qin2021bar", "article", title="Born-Again Neural Rankers",
    author="Qin, Zhen and Yan, Le and Tay, Yi and Zhuang, Honglei and Wang, Xuanhui and Bendersky, Michael and "
    "Najork, Marc",
    journal="arXiv:2109.15285", year="2021",
)  # fmt: skip
