"""RankTower's hybrid-objective losses (softsort, rankmax, am_rankmax) and the distillation terms:
hand-computed values, limits, permutation invariance, padding, degenerate lists, float64 gradcheck."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from llmrank.losses import (
    LOSSES,
    Objective,
    am_rankmax_loss,
    listwise_distillation_loss,
    pairwise_distillation_loss,
    pointwise_distillation_loss,
    rankmax_loss,
    softsort,
    softsort_loss,
)
from llmrank.rankers.base import RankerOutput

LABEL_LOSSES = {
    "softsort": softsort_loss,
    "rankmax": rankmax_loss,
    "am_rankmax": am_rankmax_loss,
}
TEACHER_LOSSES = {
    "listwise_distillation": listwise_distillation_loss,
    "pointwise_distillation": pointwise_distillation_loss,
    "pairwise_distillation": pairwise_distillation_loss,
}
ALL = {**LABEL_LOSSES, **TEACHER_LOSSES}


# ------------------------------------------------------------------------- reference formulas
def softsort_ref(v: list[float], tau: float, p: float) -> list[list[float]]:
    """SoftSort from its definition, with loops: row r = softmax_c(−|sort(v)_r − v_c|^p / τ)."""
    top = sorted(v, reverse=True)
    rows = []
    for a in top:
        logits = [-(abs(a - b) ** p) / tau for b in v]
        z = sum(math.exp(x) for x in logits)
        rows.append([math.exp(x) / z for x in logits])
    return rows


def softsort_loss_ref(z: list[float], y: list[float], tau: float = 1.0, p: float = 2.0) -> float:
    pz, py = softsort_ref(z, tau, p), softsort_ref(y, tau, p)
    return -sum(py[r][c] * math.log(pz[r][c]) for r in range(len(z)) for c in range(len(z)))


def am_rankmax_ref(z, y, alpha=2.0, delta="constant", beta=1.0, power=1.0) -> float:
    total = 0.0
    for j in range(len(z)):
        if y[j] <= 0:
            continue
        inner = 0.0
        for i in range(len(z)):
            if y[i] < y[j]:
                d = 1.0 if delta == "constant" else beta * abs(y[i] - y[j]) ** power
                m = alpha * (y[i] == 0) + d
                inner += max(0.0, z[i] - z[j] + m)
        total += math.log(1.0 + inner)
    return total


# ------------------------------------------------------------------------------- hand values
def test_softsort_two_items_by_hand() -> None:
    # z = [0, 1], y = [1, 0], τ = 1, d = |·|²: with a = σ(1), P(z) = [[1−a, a], [a, 1−a]] and
    # P(y) = [[a, 1−a], [1−a, a]]; two rows of −[a·log(1−a) + (1−a)·log a]
    a = 1.0 / (1.0 + math.exp(-1.0))
    expected = 2.0 * -(a * math.log(1.0 - a) + (1.0 - a) * math.log(a))
    got = softsort_loss(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]]))
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(2.0886, abs=1e-4)


def test_softsort_matches_definition_on_random_lists() -> None:
    g = torch.Generator().manual_seed(0)
    for tau, p in [(1.0, 2.0), (0.5, 1.0), (2.0, 1.5)]:
        z = torch.randn(3, 6, generator=g, dtype=torch.float64)
        y = torch.randint(0, 3, (3, 6), generator=g).double()
        got = softsort_loss(z, y, tau=tau, power=p, reduction="none")
        for b in range(3):
            assert got[b].item() == pytest.approx(softsort_loss_ref(z[b].tolist(), y[b].tolist(), tau, p), rel=1e-10)
        mat = softsort(z, tau=tau, power=p)
        torch.testing.assert_close(mat[0], torch.tensor(softsort_ref(z[0].tolist(), tau, p), dtype=torch.float64))


def test_softsort_label_tau() -> None:
    z, y = torch.tensor([[0.3, -1.0, 2.0]]), torch.tensor([[1.0, 0.0, 2.0]])
    pz, py = softsort_ref(z[0].tolist(), 1.0, 2.0), softsort_ref(y[0].tolist(), 0.25, 2.0)
    expected = -sum(py[r][c] * math.log(pz[r][c]) for r in range(3) for c in range(3))
    assert softsort_loss(z, y, label_tau=0.25).item() == pytest.approx(expected, rel=1e-5)


def test_softsort_tau_to_zero_is_the_hard_permutation_matrix() -> None:
    g = torch.Generator().manual_seed(1)
    # distinct scores at least 0.4 apart: the limit is reached once the gaps' d / τ are large
    s = torch.stack([torch.randperm(7, generator=g) for _ in range(4)]).double() * 0.5
    s = s + 0.1 * torch.rand(4, 7, generator=g, dtype=torch.float64)
    hard = torch.nn.functional.one_hot(s.argsort(dim=-1, descending=True), 7).double()  # row r: item of rank r
    for p in (1.0, 2.0):
        torch.testing.assert_close(softsort(s, tau=1e-3, power=p), hard, atol=1e-12, rtol=0)
        assert (softsort(s, tau=1.0, power=p) - hard).abs().max() > 0.1  # far from it at τ = 1
    # and the loss between a list and itself tends to 0 (the label matrix becomes one-hot too)
    assert softsort_loss(s, s, tau=1e-4, power=1.0).item() < 1e-8


def test_rankmax_by_hand() -> None:
    # z = [1, 3, 2], y = [0, 2, 1]: j = 1: (1−3+1)_+ + 1 + (2−3+1)_+ = 1 -> log 1 = 0;
    # j = 2: (1−2+1)_+ + (3−2+1)_+ + 1 = 3 -> log 3
    z, y = torch.tensor([[1.0, 3.0, 2.0]]), torch.tensor([[0.0, 2.0, 1.0]])
    assert rankmax_loss(z, y).item() == pytest.approx(math.log(3.0), rel=1e-6)
    # weights multiply each relevant j's term
    w = torch.tensor([[5.0, 7.0, 0.5]])
    assert rankmax_loss(z, y, weights=w).item() == pytest.approx(0.5 * math.log(3.0), rel=1e-6)


def test_am_rankmax_by_hand() -> None:
    # α = 2, δ = 1: j = 1 (y 2, z 3): i = 0 margin 3 -> (1−3+3) = 1, i = 2 margin 1 -> (2−3+1) = 0: log 2;
    # j = 2 (y 1, z 2): i = 0 margin 3 -> (1−2+3) = 2: log 3
    z, y = torch.tensor([[1.0, 3.0, 2.0]]), torch.tensor([[0.0, 2.0, 1.0]])
    assert am_rankmax_loss(z, y).item() == pytest.approx(math.log(2.0) + math.log(3.0), rel=1e-6)
    # δ = β|y_i − y_j|^p with β = 0.5, p = 2: j = 1: i = 0 m = 2 + 2 = 4 -> 2, i = 2 m = 0.5 -> 0: log 3;
    # j = 2: i = 0 m = 2 + 0.5 -> (1−2+2.5) = 1.5: log 2.5
    got = am_rankmax_loss(z, y, delta="labeldiff", beta=0.5, power=2.0)
    assert got.item() == pytest.approx(math.log(3.0) + math.log(2.5), rel=1e-6)
    g = torch.Generator().manual_seed(2)
    z = torch.randn(2, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (2, 6), generator=g).double()
    for kw in ({}, {"alpha": 3.5}, {"delta": "labeldiff", "beta": 0.7, "power": 1.5, "alpha": 0.0}):
        got = am_rankmax_loss(z, y, reduction="none", **kw)
        for b in range(2):
            assert got[b].item() == pytest.approx(am_rankmax_ref(z[b].tolist(), y[b].tolist(), **kw), rel=1e-10)


def test_am_rankmax_reduces_to_rankmax_with_one_positive() -> None:
    """Binary labels, one relevant item, α = 0, δ = 1: the i = j unit term of Rankmax is our guard."""
    g = torch.Generator().manual_seed(3)
    z = torch.randn(5, 8, generator=g, dtype=torch.float64)
    y = torch.zeros(5, 8, dtype=torch.float64)
    y[torch.arange(5), torch.randint(0, 8, (5,), generator=g)] = 1.0
    torch.testing.assert_close(am_rankmax_loss(z, y, alpha=0.0), rankmax_loss(z, y))


def test_am_rankmax_met_margins_give_zero_not_log_zero() -> None:
    z = torch.tensor([[10.0, 0.0, -5.0]], requires_grad=True)
    y = torch.tensor([[2.0, 1.0, 0.0]])
    loss = am_rankmax_loss(z, y, alpha=2.0)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(z.grad).all() and (z.grad == 0).all()


def test_distillation_losses_by_hand() -> None:
    z = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    t = torch.tensor([[1.0, 3.0, -2.0]], dtype=torch.float64)
    p = torch.softmax(t / 0.5, -1)
    expected = -(p * torch.log_softmax(z, -1)).sum()
    torch.testing.assert_close(listwise_distillation_loss(z, t, temperature=0.5), expected)
    # teacher probabilities as given: the paper's −Σ p_i log softmax(z)_i with unnormalised p
    probs = torch.tensor([[0.9, 0.2, 0.05]], dtype=torch.float64)
    expected = -(probs * torch.log_softmax(z, -1)).sum()
    torch.testing.assert_close(listwise_distillation_loss(z, probs, teacher="probabilities"), expected)
    # pointwise: logloss against σ(t), mean over items
    q = torch.sigmoid(t)
    expected = -(q * torch.log(torch.sigmoid(z)) + (1 - q) * torch.log(1 - torch.sigmoid(z))).mean()
    torch.testing.assert_close(pointwise_distillation_loss(z, t), expected)
    # pairwise: RankNet on the teacher order: pairs (1, 0), (1, 2), (0, 2)
    pairs = [(1, 0), (1, 2), (0, 2)]
    expected = sum(math.log1p(math.exp(-(z[0, i] - z[0, j]).item())) for i, j in pairs) / 3
    assert pairwise_distillation_loss(z, t).item() == pytest.approx(expected, rel=1e-10)


def test_distillation_bad_teacher_option_and_range() -> None:
    z, t = torch.zeros(1, 3), torch.tensor([[0.2, 1.5, 0.1]])
    with pytest.raises(ValueError, match="teacher must be one of"):
        listwise_distillation_loss(z, t, teacher="logit")
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        pointwise_distillation_loss(z, t, teacher="probabilities")
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        listwise_distillation_loss(z, t, teacher="probabilities")


# -------------------------------------------------------------------------- contract checks
def _inputs(seed: int, b: int = 3, n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, n, generator=g, dtype=torch.float64), torch.randint(0, 3, (b, n), generator=g).double()


@pytest.mark.parametrize("name", sorted(ALL))
def test_permutation_invariance(name: str) -> None:
    fn = ALL[name]
    z, y = _inputs(4)
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(5))
    if name in ("softsort", "rankmax", "am_rankmax", "listwise_distillation"):  # listwise: one value per list
        torch.testing.assert_close(fn(z, y, reduction="none"), fn(z[:, perm], y[:, perm], reduction="none"))
    torch.testing.assert_close(fn(z, y), fn(z[:, perm], y[:, perm]))


@pytest.mark.parametrize("name", sorted(ALL))
def test_padding_is_invisible(name: str) -> None:
    """A padded list (padding holding NaN / huge values) gives the unpadded list's loss, no grad there."""
    fn = ALL[name]
    z, y = _inputs(6, b=1, n=4)
    pad_z = torch.cat([z, torch.tensor([[math.nan, 1e30]], dtype=torch.float64)], -1).requires_grad_(True)
    pad_y = torch.cat([y, torch.tensor([[math.nan, 5.0]], dtype=torch.float64)], -1)
    mask = torch.tensor([[True] * 4 + [False] * 2])
    got = fn(pad_z, pad_y, mask=mask)
    torch.testing.assert_close(got, fn(z, y))
    got.backward()
    assert torch.isfinite(pad_z.grad).all() and (pad_z.grad[0, 4:] == 0).all()
    # a second list that is fully padded does not change the mean
    z2 = torch.cat([pad_z.detach(), torch.zeros(1, 6, dtype=torch.float64)])
    y2 = torch.cat([pad_y, torch.ones(1, 6, dtype=torch.float64)])
    m2 = torch.cat([mask, torch.zeros(1, 6, dtype=torch.bool)])
    torch.testing.assert_close(fn(z2, y2, mask=m2), fn(z, y))


@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize("case", ["empty", "one_item", "all_padded", "no_relevant", "all_tied_scores"])
def test_degenerate_lists_are_finite(name: str, case: str) -> None:
    fn = ALL[name]
    if case == "empty":
        z, y, m = torch.zeros(2, 0), torch.zeros(2, 0), None
    elif case == "one_item":
        z, y, m = torch.tensor([[0.7]]), torch.tensor([[1.0]]), None
    elif case == "all_padded":
        z, y, m = torch.randn(2, 4), torch.ones(2, 4), torch.zeros(2, 4, dtype=torch.bool)
    elif case == "no_relevant":
        z, y, m = torch.randn(2, 4), torch.zeros(2, 4), None
    else:
        z, y, m = torch.zeros(2, 4), torch.tensor([[1.0, 0.0, 2.0, 0.0], [0.0, 0.0, 1.0, 1.0]]), None
    z = z.clone().requires_grad_(True)
    for reduction in ("mean", "sum"):
        loss = fn(z, y, mask=m, reduction=reduction)
        assert torch.isfinite(loss), (case, reduction)
        (grad,) = torch.autograd.grad(loss, z, allow_unused=True) if z.numel() else (None,)
        assert grad is None or torch.isfinite(grad).all()
    if case in ("empty", "all_padded") or (case == "one_item" and name != "pointwise_distillation"):
        assert fn(z, y, mask=m).item() == 0.0
    if case == "no_relevant" and name in ("rankmax", "am_rankmax"):
        assert fn(z, y, mask=m).item() == 0.0


@pytest.mark.parametrize("name", sorted(ALL))
def test_gradcheck_float64(name: str) -> None:
    fn = ALL[name]
    z, y = _inputs(7, b=2, n=5)
    mask = torch.tensor([[True] * 5, [True, True, True, False, True]])
    z = z.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s: fn(s, y, mask=mask), (z,), eps=1e-6, atol=1e-6)


def test_reductions_agree() -> None:
    z, y = _inputs(8)
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3, [False] * 6])
    for fn in ALL.values():
        none = fn(z, y, mask=mask, reduction="none")
        torch.testing.assert_close(none.sum(), fn(z, y, mask=mask, reduction="sum"))


def test_bad_hyperparameters_are_clear_errors() -> None:
    z, y = _inputs(9)
    with pytest.raises(ValueError, match="tau must be > 0"):
        softsort_loss(z, y, tau=0.0)
    with pytest.raises(ValueError, match="power must be >= 1"):
        softsort_loss(z, y, power=0.5)
    with pytest.raises(ValueError, match="does not support weights"):
        softsort_loss(z, y, weights=torch.ones_like(z))
    with pytest.raises(ValueError, match="delta must be one of"):
        am_rankmax_loss(z, y, delta="linear")
    with pytest.raises(ValueError, match="scores contain NaN"):
        rankmax_loss(torch.full_like(z, math.nan), y)


def test_softsort_training_sorts_a_list() -> None:
    """Minimising the sorting loss from random scores recovers the label order (a real optimisation)."""
    y = torch.tensor([[3.0, 0.0, 2.0, 1.0, 4.0]])
    z = torch.randn(1, 5, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        softsort_loss(z, y, tau=0.5).backward()
        opt.step()
    assert z.detach().argsort(descending=True).tolist() == y.argsort(descending=True).tolist()


@pytest.mark.parametrize("name", sorted(ALL))
def test_registered_with_parameter_names(name: str) -> None:
    spec = LOSSES[name]
    assert spec.fn is ALL[name]
    expected = {
        "softsort": {"tau", "power", "label_tau"},
        "rankmax": set(),
        "am_rankmax": {"alpha", "delta", "beta", "power"},
        "listwise_distillation": {"teacher", "temperature"},
        "pointwise_distillation": {"teacher"},
        "pairwise_distillation": {"lambdaweight", "topn"},
    }[name]
    assert spec.param_names() - {"reduction"} == expected
    assert spec.target == ("teacher_scores" if name in TEACHER_LOSSES else "labels")
    with pytest.raises(ValueError, match="has no parameter"):
        Objective([{"name": name, "no_such_param": 1}])


def test_hybrid_objective_runs_on_a_ranker_output() -> None:
    """RankTower's L = λ1·L_D + λ2·L_S + λ3·L_AM through the registry, with the targets a collate gives."""
    z, y = _inputs(10, b=2, n=5)
    z = z.float().requires_grad_(True)
    targets = {
        "labels": y.float(),
        "teacher_scores": torch.randn(2, 5),
        "list_mask": torch.ones(2, 5, dtype=torch.bool),
    }
    objective = Objective(
        [
            {"name": "listwise_distillation", "weight": 1.0},
            {"name": "softsort", "weight": 0.5, "tau": 0.5},
            {"name": "am_rankmax", "weight": 0.2, "alpha": 3.0},
        ]
    )
    total, logs = objective(RankerOutput(scores=z, mask=targets["list_mask"]), targets)
    expected = (
        listwise_distillation_loss(z, targets["teacher_scores"])
        + 0.5 * softsort_loss(z, targets["labels"], tau=0.5)
        + 0.2 * am_rankmax_loss(z, targets["labels"], alpha=3.0)
    )
    torch.testing.assert_close(total, expected)
    assert set(logs) == {"listwise_distillation", "softsort", "am_rankmax"}
    total.backward()
    assert torch.isfinite(z.grad).all()


def test_all_permutations_of_ties_give_the_same_softsort_target() -> None:
    """Binary labels: the label matrix spreads each row over the tied items, so any tie order is equal."""
    y = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    z = torch.tensor([[0.1, 0.4, -0.3, 0.9]])
    base = softsort_loss(z, y)
    for perm in itertools.permutations(range(4)):
        p = list(perm)
        torch.testing.assert_close(softsort_loss(z[:, p], y[:, p]), base)
