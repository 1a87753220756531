"""PG-Rank (Gao et al. 2023): the REINFORCE estimator against the exact gradient of the expected
nDCG (all permutations enumerated), a hand recomputation of the value, determinism, padding,
degenerate lists and float64 gradcheck."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from llmrank.losses import LOSSES, Objective, ndcg_of_rankings, pg_rank_loss, plackett_luce_log_prob
from llmrank.rankers.base import RankerOutput


def ndcg_ref(labels: list[float], ranking: list[int], topn: int | None) -> float:
    """nDCG@topn of one ranking, from the definition (gain 2^y − 1, discount 1/log2(1 + rank))."""

    def dcg(order: list[int]) -> float:
        return sum(
            (2.0 ** labels[i] - 1.0) / math.log2(r + 1) for r, i in enumerate(order, 1) if topn is None or r <= topn
        )

    ideal = dcg(sorted(range(len(labels)), key=lambda i: -labels[i]))
    return dcg(ranking) / ideal if ideal > 0 else 0.0


def log_pl_ref(z: torch.Tensor, ranking: list[int]) -> torch.Tensor:
    """Plackett-Luce log-probability of a full ranking, term by term."""
    return sum(z[ranking[r]] - torch.logsumexp(z[ranking[r:]], 0) for r in range(len(ranking)))


def exact_expected_ndcg_grad(z: torch.Tensor, labels: list[float], topn: int | None) -> tuple[float, torch.Tensor]:
    """E_{σ∼PL(z)}[nDCG@topn(σ)] and its gradient, by enumerating all n! rankings."""
    z = z.detach().clone().requires_grad_(True)
    total = sum(
        torch.exp(log_pl_ref(z, list(p))) * ndcg_ref(labels, list(p), topn)
        for p in itertools.permutations(range(len(labels)))
    )
    (grad,) = torch.autograd.grad(total, z)
    return float(total.detach()), grad


CASES = [
    # (scores, labels, topn): binary and graded labels, nDCG@k cut and full nDCG, 3 to 5 items
    ([0.3, -0.5, 1.2, 0.0, -1.0], [1.0, 0.0, 0.0, 1.0, 0.0], 3),
    ([0.0, 0.4, -0.2, 0.9], [2.0, 0.0, 1.0, 0.0], None),
    ([1.0, -1.0, 0.5], [0.0, 1.0, 3.0], 2),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_estimator_mean_matches_the_exact_gradient_of_expected_ndcg(case: int) -> None:
    scores, labels, topn = CASES[case]
    n = len(scores)
    z = torch.tensor(scores, dtype=torch.float64)
    _, exact = exact_expected_ndcg_grad(z, labels, topn)
    # R independent estimates: each row of the batch is the same list with its own K samples, and the
    # gradient of the summed loss w.r.t. each row is one estimate of −∇E[nDCG].  A padded column
    # checks that padding changes nothing.
    R, K = 20000, 4
    rows = torch.cat([z, torch.tensor([7.0], dtype=torch.float64)]).expand(R, n + 1).clone().requires_grad_(True)
    y = torch.tensor([*labels, 3.0], dtype=torch.float64).expand(R, n + 1)
    mask = torch.tensor([True] * n + [False]).expand(R, n + 1)
    g = torch.Generator().manual_seed(100 + case)
    loss = pg_rank_loss(rows, y, mask=mask, samples=K, topn=topn, reduction="sum", generator=g)
    (grads,) = torch.autograd.grad(loss, rows)
    assert (grads[:, n] == 0).all()
    est = -grads[:, :n]
    mean, sem = est.mean(0), est.std(0) / math.sqrt(R)
    # unbiased estimator: the mean lies within 5 standard errors of the truth in every coordinate
    # (a false failure has probability < 1e-5 per coordinate); the bound is tight enough to matter
    assert ((mean - exact).abs() <= 5 * sem + 1e-12).all(), (mean, exact, sem)
    assert (5 * sem).max() < 0.25 * exact.abs().max()


def test_estimator_is_permutation_equivariant_in_expectation() -> None:
    scores, labels, topn = CASES[0]
    perm = [3, 0, 4, 2, 1]
    _, exact = exact_expected_ndcg_grad(torch.tensor(scores, dtype=torch.float64), labels, topn)
    _, exact_p = exact_expected_ndcg_grad(
        torch.tensor([scores[i] for i in perm], dtype=torch.float64), [labels[i] for i in perm], topn
    )
    torch.testing.assert_close(exact_p, exact[perm])
    R = 20000
    z = torch.tensor([scores[i] for i in perm], dtype=torch.float64).expand(R, 5).clone().requires_grad_(True)
    y = torch.tensor([labels[i] for i in perm], dtype=torch.float64).expand(R, 5)
    loss = pg_rank_loss(z, y, samples=4, topn=topn, reduction="sum", generator=torch.Generator().manual_seed(9))
    (grads,) = torch.autograd.grad(loss, z)
    sem = grads.std(0) / math.sqrt(R)
    assert ((-grads.mean(0) - exact[perm]).abs() <= 5 * sem + 1e-12).all()


def test_value_recomputed_by_hand() -> None:
    """Same Gumbel draws, then the formula term by term: samples, nDCG rewards, leave-one-out
    baselines, PL log-probabilities, −mean_k (R_k − b_k)·log π(σ_k), mean over lists."""
    z = torch.tensor([[0.2, -0.4, 1.0, 0.3], [0.5, 0.1, -0.2, 0.0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0, 2.0, 0.0], [0.0, 1.0, 0.0, 1.0]], dtype=torch.float64)
    K, seed, topn = 3, 11, 2
    got = pg_rank_loss(z, y, samples=K, topn=topn, generator=torch.Generator().manual_seed(seed))
    u = torch.rand((K, 2, 4), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    gumbel = -torch.log(-torch.log(u))
    per_list = []
    for b in range(2):
        rankings = [sorted(range(4), key=lambda i: -(z[b, i] + gumbel[k, b, i]).item()) for k in range(K)]
        rewards = [ndcg_ref(y[b].tolist(), r, topn) for r in rankings]
        terms = []
        for k in range(K):
            baseline = (sum(rewards) - rewards[k]) / (K - 1)
            terms.append((rewards[k] - baseline) * log_pl_ref(z[b], rankings[k]).item())
        per_list.append(-sum(terms) / K)
    assert got.item() == pytest.approx(sum(per_list) / 2, rel=1e-10, abs=1e-12)


def test_helpers_match_the_definitions() -> None:
    z = torch.tensor([[0.3, -1.0, 2.0, 0.5]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0, 3.0, 2.0]], dtype=torch.float64)
    mask = torch.ones(1, 4, dtype=torch.bool)
    for perm in itertools.permutations(range(4)):
        order = torch.tensor([perm])
        assert plackett_luce_log_prob(z, order, mask).item() == pytest.approx(log_pl_ref(z[0], list(perm)).item())
        for topn in (None, 1, 3):
            assert ndcg_of_rankings(y, order, mask, topn).item() == pytest.approx(
                ndcg_ref(y[0].tolist(), list(perm), topn)
            )
    # the PL probabilities of all 4! rankings sum to 1
    total = sum(
        torch.exp(plackett_luce_log_prob(z, torch.tensor([p]), mask)) for p in itertools.permutations(range(4))
    )
    assert total.item() == pytest.approx(1.0)


def test_seeded_generator_is_deterministic() -> None:
    z, y = torch.randn(4, 6), torch.randint(0, 3, (4, 6)).float()
    a = pg_rank_loss(z, y, generator=torch.Generator().manual_seed(1))
    b = pg_rank_loss(z, y, generator=torch.Generator().manual_seed(1))
    c = pg_rank_loss(z, y, generator=torch.Generator().manual_seed(2))
    assert a.item() == b.item() and a.item() != c.item()


@pytest.mark.parametrize("case", ["empty", "one_item", "all_padded", "no_relevant"])
def test_degenerate_lists_give_zero(case: str) -> None:
    if case == "empty":
        z, y, m = torch.zeros(2, 0), torch.zeros(2, 0), None
    elif case == "one_item":
        z, y, m = torch.tensor([[0.7], [0.1]]), torch.tensor([[1.0], [0.0]]), None
    elif case == "all_padded":
        z, y, m = torch.randn(2, 4), torch.ones(2, 4), torch.zeros(2, 4, dtype=torch.bool)
    else:
        z, y, m = torch.randn(2, 4), torch.zeros(2, 4), None
    z = z.clone().requires_grad_(True)
    for reduction in ("mean", "sum", "none"):
        loss = pg_rank_loss(z, y, mask=m, reduction=reduction, generator=torch.Generator().manual_seed(0))
        assert torch.isfinite(loss).all() and (loss == 0).all()
    if z.numel():
        pg_rank_loss(z, y, mask=m).backward()
        assert torch.isfinite(z.grad).all() and (z.grad == 0).all()


def test_padding_never_enters_a_ranking() -> None:
    """NaN / huge values at padding reach neither the value nor the gradient (the estimator's
    agreement with the exact gradient on padded lists is checked above)."""
    z = torch.tensor([[0.2, 1.0, -0.5, math.nan, 1e30]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1.0, 0.0, 1.0, 5.0, math.nan]], dtype=torch.float64)
    m = torch.tensor([[True, True, True, False, False]])
    loss = pg_rank_loss(z, y, mask=m, samples=6, generator=torch.Generator().manual_seed(3))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all() and (z.grad[0, 3:] == 0).all()


def test_gradcheck_float64() -> None:
    z = torch.randn(2, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(5)).requires_grad_(True)
    y = torch.tensor([[1.0, 0.0, 2.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[True] * 5, [True, True, False, True, True]])

    def fn(s: torch.Tensor) -> torch.Tensor:  # the same samples at every evaluation
        return pg_rank_loss(s, y, mask=mask, samples=5, topn=3, generator=torch.Generator().manual_seed(7))

    assert torch.autograd.gradcheck(fn, (z,), eps=1e-6, atol=1e-6)


def test_bad_arguments_are_clear_errors() -> None:
    z, y = torch.zeros(1, 3), torch.zeros(1, 3)
    with pytest.raises(ValueError, match="samples must be an int >= 2"):
        pg_rank_loss(z, y, samples=1)
    with pytest.raises(ValueError, match="topn must be a positive int"):
        pg_rank_loss(z, y, topn=0)
    with pytest.raises(ValueError, match="does not support weights"):
        pg_rank_loss(z, y, weights=torch.ones(1, 3))


def test_registered_and_usable_in_an_objective() -> None:
    assert LOSSES["pg_rank"].fn is pg_rank_loss and LOSSES["pg_rank"].target == "labels"
    assert LOSSES["pg_rank"].param_names() - {"reduction"} == {"samples", "topn", "generator"}
    torch.manual_seed(0)
    z = torch.randn(2, 4, requires_grad=True)
    targets = {"labels": torch.tensor([[1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 1.0, 0.0]])}
    total, logs = Objective([{"name": "pg_rank", "samples": 4, "topn": 3}])(
        RankerOutput(scores=z, mask=torch.ones(2, 4, dtype=torch.bool)), targets
    )
    total.backward()
    assert "pg_rank" in logs and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_policy_gradient_learns_to_rank() -> None:
    """Plain REINFORCE steps on free scores raise the policy's expected nDCG@3 close to 1."""
    labels = [0.0, 2.0, 0.0, 1.0, 0.0]
    z = torch.zeros(1, 5, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([labels], dtype=torch.float64)
    start, _ = exact_expected_ndcg_grad(z[0], labels, 3)
    opt = torch.optim.SGD([z], lr=2.0)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        opt.zero_grad()
        pg_rank_loss(z, y, samples=8, topn=3, generator=g).backward()
        opt.step()
    end, _ = exact_expected_ndcg_grad(z[0], labels, 3)
    assert start < 0.6 and end > 0.95
