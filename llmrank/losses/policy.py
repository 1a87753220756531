"""Policy-gradient ranking losses.

:func:`pg_rank_loss` is PG-Rank (Gao, Chang, Cardie, Brantley & Joachims, "Policy-Gradient Training of
Language Models for Ranking", arXiv 2310.04407, 2023): the scores define a Plackett-Luce policy over
rankings of the list, rankings are sampled with the Gumbel trick, each is rewarded with its nDCG@k,
and REINFORCE with a leave-one-out baseline turns the rewards into a gradient.  Follows the :mod:`llmrank.losses`
contract (``[batch, list_size]``, mask True = real item, one value per list).
"""

from __future__ import annotations

import torch

from llmrank.losses._core import Tensor, _check_topn, _discount, _gain, _masked_fill_low, _prepare, _reduce, cite

__all__ = ["ndcg_of_rankings", "pg_rank_loss", "plackett_luce_log_prob"]


def plackett_luce_log_prob(scores: Tensor, order: Tensor, mask: Tensor) -> Tensor:
    """``log π(σ) = Σ_r [s_σ(r) − log Σ_{l ≥ r} e^{s_σ(l)}]`` over the valid positions of each ranking.

    ``scores``/``mask`` are ``[..., n]``; ``order`` ``[..., n]`` lists item indices best first with
    every padded item after the valid ones.  Scores must be finite at padding (0 is fine)."""
    s_sorted = torch.gather(scores, -1, order)
    m_sorted = torch.gather(mask, -1, order)
    low = _masked_fill_low(s_sorted, m_sorted)  # padding adds e^{low} = 0 to every tail sum
    tail = torch.logcumsumexp(low.flip(-1), dim=-1).flip(-1)
    zero = torch.zeros((), dtype=scores.dtype, device=scores.device)
    return torch.where(m_sorted, s_sorted - tail, zero).sum(-1)


def ndcg_of_rankings(labels: Tensor, order: Tensor, mask: Tensor, topn: int | None = None) -> Tensor:
    """nDCG@topn of rankings ``order`` (item indices best first, padding last), gains ``2^y − 1``,
    discount ``1/log2(1 + r)`` (Järvelin & Kekäläinen 2002; the convention of :mod:`llmrank.metrics`
    and Rax).  A list without relevant items scores 0.  No gradient."""
    with torch.no_grad():
        n = labels.shape[-1]
        pos = torch.arange(1, n + 1, device=labels.device, dtype=labels.dtype)
        disc = _discount(pos)
        if topn is not None:
            disc = torch.where(pos <= topn, disc, torch.zeros_like(disc))
        gain = torch.where(mask, _gain(labels), torch.zeros_like(labels))
        dcg = (torch.gather(gain.expand_as(order), -1, order) * disc).sum(-1)
        ideal = (gain.sort(dim=-1, descending=True).values * disc).sum(-1)
        return torch.where(
            ideal > 0, dcg / torch.where(ideal > 0, ideal, torch.ones_like(ideal)), torch.zeros_like(dcg)
        )


def pg_rank_loss(
    scores: Tensor,
    labels: Tensor,
    *,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
    reduction: str = "mean",
    samples: int = 8,
    topn: int | None = 10,
    generator: torch.Generator | None = None,
) -> Tensor:
    """PG-Rank (Gao et al. 2023): REINFORCE on a Plackett-Luce ranking policy.

    Per list, with the scores as PL logits: draw ``samples`` = K rankings σ_k = argsort(s + G_k),
    G_k i.i.d. Gumbel(0, 1) (the Gumbel trick samples exactly from the PL distribution), reward each
    with ``R_k = nDCG@topn(σ_k)``, baseline each with the mean reward of the other K − 1 samples
    (leave-one-out, Kool et al., "Buy 4 REINFORCE Samples, Get a Baseline for Free!", 2019), and
    return ``−(1/K)·Σ_k (R_k − b_k)·log π(σ_k)``.  Its gradient is an unbiased estimate of
    ``−∇ E_{σ∼π}[nDCG@topn(σ)]``; the value itself is not a metric (its expectation is 0).

    Sampling uses ``generator`` when given (deterministic), else torch's global RNG (which the
    trainer seeds).  Padded items never enter a ranking; single-item lists, lists without relevant
    items and lists of K identical rewards give 0.  No ``weights``.  ``topn=None``: full nDCG.
    Mean over lists with ≥ 1 valid item."""
    if weights is not None:
        raise ValueError("pg_rank_loss does not support weights")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
        raise ValueError(
            f"pg_rank_loss: samples must be an int >= 2 (the baseline needs another sample), got {samples!r}"
        )
    _check_topn("pg_rank_loss", topn)
    s, y, m, _ = _prepare(scores, labels, mask, None, reduction, "pg_rank_loss")
    b, n = s.shape
    with torch.no_grad():
        u = torch.rand((samples, b, n), generator=generator, dtype=s.dtype, device=s.device)
        tiny = torch.finfo(s.dtype).tiny
        gumbel = -torch.log(-torch.log(u.clamp(tiny, 1.0 - torch.finfo(s.dtype).eps)))
        key = torch.where(m, s.detach() + gumbel, torch.full((), -float("inf"), dtype=s.dtype, device=s.device))
        order = torch.sort(key, dim=-1, descending=True, stable=True).indices  # [K, b, n], padding last
        mk = m.expand(samples, b, n)
        reward = ndcg_of_rankings(y.expand(samples, b, n), order, mk, topn)  # [K, b]
        baseline = (reward.sum(0, keepdim=True) - reward) / (samples - 1)
        advantage = reward - baseline
    log_prob = plackett_luce_log_prob(s.expand(samples, b, n), order, mk)  # [K, b]
    per_list = -(advantage * log_prob).mean(0)
    return _reduce(per_list, m.any(-1), reduction)


PG_RANK = cite(
    "PG-Rank (Gao et al., 2023)", "gao2023pgrank", "article", title="Policy-Gradient Training of Language Models for Ranking",
    author="Gao, Ge and Chang, Jonathan D. and Cardie, Claire and Brantley, Kiant{\\'e} and Joachims, Thorsten",
    journal="arXiv:2310.04407", year="2023",
)  # fmt: skip
