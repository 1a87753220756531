"""llmrank.losses: golden values, degenerate inputs, properties, FIRST/BAR formulas, Objective, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrank import losses as L
from llmrank.rankers.base import RankerOutput

LABEL_LOSSES = [
    L.pointwise_sigmoid_loss, L.pointwise_mse_loss, L.pairwise_logistic_loss, L.pairwise_hinge_loss,
    L.softmax_loss, L.poly1_softmax_loss, L.listmle_loss, L.approx_ndcg_loss, L.approx_mrr_loss,
    L.lipo_lambda_loss, L.first_ranknet_loss, L.bar_distillation_loss, L.mse_distillation_loss,
]
LISTWISE = [L.softmax_loss, L.poly1_softmax_loss, L.listmle_loss, L.approx_ndcg_loss, L.approx_mrr_loss,
            L.bar_distillation_loss]


def t(x, dtype=torch.float32):
    return torch.tensor(x, dtype=dtype)


# ------------------------------------------------------------------------------------- golden values
def test_golden_values():
    assert L.softmax_loss(t([[2.0, 1, 3]]), t([[1.0, 0, 0]])).item() == pytest.approx(1.40761, abs=1e-5)
    s, y = t([[0.0, 3, 1, 2]]), t([[0.0, 0, 1, 1]])
    assert L.poly1_softmax_loss(s, y, reduction="sum").item() == pytest.approx(4.718366, abs=1e-5)
    assert L.pairwise_hinge_loss(s, y, reduction="sum").item() == pytest.approx(5.0)
    assert L.pairwise_logistic_loss(s, y, reduction="sum").item() == pytest.approx(3.880379, abs=1e-5)
    assert L.pairwise_logistic_loss(t([[1.2, 0.4, 1.9]]), t([[1.0, 2, 0]]), lambdaweight="labeldiff").item() == \
        pytest.approx(1.89237, abs=1e-5)
    a_s, a_y = t([[0.0, 1, 3, 2]]), t([[0.0, 0, 1, 2]])
    assert L.approx_ndcg_loss(a_s, a_y).item() == pytest.approx(-0.71789, abs=1e-5)
    assert L.approx_mrr_loss(a_s, a_y).item() == pytest.approx(-0.69659, abs=1e-5)
    # LiPO-λ on the Algorithm-1 toy input
    assert L.lipo_lambda_loss(t([[2.0, 1, 3]]), t([[1.0, 0, 0]])).item() == pytest.approx(0.788552, abs=1e-5)


def test_softmax_gradient_golden():
    s = t([[0.0, 1, 3], [1.0, 2, 0]]).requires_grad_(True)
    L.softmax_loss(s, t([[0.0, 0, 1], [1.0, 0, 0]])).backward()
    ref = t([[0.02100503, 0.0570976, -0.07810265], [-0.37763578, 0.33262047, 0.04501529]])
    torch.testing.assert_close(s.grad, ref, atol=1e-6, rtol=1e-5)


def test_lipo_scores_and_step0_tie_order():
    pol = torch.tensor([[-10.0, -12.0]], dtype=torch.bfloat16, requires_grad=True)
    ref = torch.tensor([[-11.0, -11.0]], dtype=torch.bfloat16)
    s = L.lipo_scores(pol, ref, beta=0.05)
    assert s.dtype == torch.float32
    torch.testing.assert_close(s, t([[0.05, -0.05]]))
    # at step 0 all scores are 0: ranks follow the input order (stable, as Rax)
    zeros = torch.zeros(1, 3)
    lam = L.dcg_lambdaweight(zeros, t([[0.0, 0, 1]]), torch.ones(1, 3, dtype=torch.bool))
    d = [1 / math.log2(1 + r) for r in (1, 2, 3)]
    assert lam[0, 2, 0].item() == pytest.approx(3 * 1 * (d[0] - d[2]), rel=1e-6)
    assert lam[0, 2, 1].item() == pytest.approx(3 * 1 * (d[1] - d[2]), rel=1e-6)


# ----------------------------------------------------------------------------------- FIRST and BAR
def test_first_ranknet_hand_computed():
    s = t([[1.0, 3.0, 0.5], [2.0, -1.0, 0.0]]).requires_grad_(True)
    r = torch.tensor([[2, 1, 3], [1, 3, 2]])
    m = torch.tensor([[True, True, True], [True, True, False]])
    out = L.first_ranknet_loss(s, r, mask=m, reduction="none")
    sp = lambda x: math.log1p(math.exp(-x))  # noqa: E731  softplus(-x)
    # list 0: pairs (1,0) w 1/3, (1,2) w 1/4, (0,2) w 1/5
    l0 = (sp(3 - 1) / 3 + sp(3 - 0.5) / 4 + sp(1 - 0.5) / 5) / 3
    l1 = sp(2 - (-1)) / 4  # one pair (0,1), ranks 1 and 3
    torch.testing.assert_close(out, t([l0, l1]))
    mean = L.first_ranknet_loss(s, r, mask=m)
    assert mean.item() == pytest.approx((l0 + l1) / 2, rel=1e-6)
    mean.backward()
    assert torch.isfinite(s.grad).all() and s.grad[1, 2] == 0


def test_bar_distillation_hand_computed():
    s = t([[0.5, -1.0, 2.0]]).requires_grad_(True)
    teacher = t([[1.0, -2.0, 3.0]]).requires_grad_(True)
    logp = torch.log_softmax(s.detach(), -1)
    relu = torch.relu(2.0 * teacher.detach() + 1.0)
    q = relu / relu.sum()
    out = L.bar_distillation_loss(s, teacher, a=2.0, b=1.0)
    assert out.item() == pytest.approx(-(q * logp).sum().item(), rel=1e-6)
    out.backward()
    assert teacher.grad is None  # teacher detached
    q_soft = torch.softmax(teacher.detach() / 0.5, -1)
    out = L.bar_distillation_loss(s, teacher, transform="softmax", temperature=0.5)
    assert out.item() == pytest.approx(-(q_soft * logp).sum().item(), rel=1e-6)
    mse = L.mse_distillation_loss(s, teacher, transform="affine_relu", a=2.0, b=1.0)
    assert mse.item() == pytest.approx(((s.detach() - relu) ** 2).mean().item(), rel=1e-6)
    with pytest.raises(ValueError, match="affine_relu"):
        L.bar_distillation_loss(s, teacher, transform="affine_rel")


# --------------------------------------------------------------------------------- degenerate inputs
def _call(fn, s, y, m, **kw):
    if fn is L.first_ranknet_loss:
        y = torch.argsort(torch.argsort(-y, stable=True), stable=True).to(s.dtype) + 1
    return fn(s, y, mask=m, **kw)


DEGENERATE = {
    "all_masked": (torch.zeros(2, 4), torch.zeros(2, 4, dtype=torch.bool)),
    "one_item": (t([[1.0, 0, 0, 0]]), torch.tensor([[True, False, False, False]])),
    "zero_labels": (torch.zeros(2, 4), torch.ones(2, 4, dtype=torch.bool)),
    "padded_row": (t([[1.0, 2, 0, 3], [0, 0, 0, 0]]), torch.tensor([[True] * 4, [False] * 4])),
}


@pytest.mark.parametrize("case", list(DEGENERATE))
@pytest.mark.parametrize("fn", LABEL_LOSSES, ids=lambda f: f.__name__)
def test_degenerate_inputs_finite(fn, case):
    y, m = DEGENERATE[case]
    base = torch.tensor([[1e4, -1e4, 0.0, 0.0], [3.0, 3.0, 3.0, -2.0]])[: y.shape[0]]
    # padding may hold garbage: it must never reach a value or a gradient
    s = torch.where(m, base, torch.tensor(float("nan"))).requires_grad_(True)
    for reduction in ("mean", "sum", "none"):
        out = _call(fn, s, y, m, reduction=reduction)
        assert torch.isfinite(out).all(), (fn.__name__, case, reduction, out)
        (g,) = torch.autograd.grad(out.sum(), s, allow_unused=True)
        if g is not None:
            assert torch.isfinite(g).all(), (fn.__name__, case, reduction, g)
            assert (g[~m] == 0).all()
    if case == "all_masked":
        assert _call(fn, s, y, m).item() == 0.0


@pytest.mark.parametrize("fn", LABEL_LOSSES, ids=lambda f: f.__name__)
def test_none_sums_to_sum(fn):
    g = torch.Generator().manual_seed(0)
    s = torch.randn(3, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (3, 6), generator=g).double()
    m = torch.rand(3, 6, generator=g) < 0.7
    m[2] = False
    none = _call(fn, s, y, m, reduction="none")
    assert none.sum().item() == pytest.approx(_call(fn, s, y, m, reduction="sum").item(), rel=1e-9, abs=1e-12)


def test_gumbel_is_seeded_and_shaped():
    s, y = torch.randn(2, 5), torch.randint(0, 3, (2, 5)).float()
    a = L.approx_ndcg_loss(s, y, gumbel_samples=4, generator=torch.Generator().manual_seed(1))
    b = L.approx_ndcg_loss(s, y, gumbel_samples=4, generator=torch.Generator().manual_seed(1))
    c = L.approx_ndcg_loss(s, y, gumbel_samples=4, generator=torch.Generator().manual_seed(2))
    assert a.item() == b.item() != c.item()
    none = L.approx_mrr_loss(s, y, gumbel_samples=3, reduction="none", generator=torch.Generator().manual_seed(0))
    assert none.shape == (3, 2)
    wrapped = L.gumbel(L.softmax_loss, samples=2, beta=0.0)
    assert wrapped(s, y).item() == pytest.approx(L.softmax_loss(s, y).item(), rel=1e-6)  # beta 0: no noise


def test_pairwise_memory_path_matches_autograd():
    g = torch.Generator().manual_seed(3)
    s = torch.randn(4, 30, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 4, (4, 30), generator=g).double()
    for lw in (None, "labeldiff", "dcg", "dcg2"):
        fused = L.pairwise_logistic_loss(s, y, lambdaweight=lw, topn=5)
        (g1,) = torch.autograd.grad(fused, s)
        none = L.pairwise_logistic_loss(s, y, lambdaweight=lw, topn=5, reduction="none")
        count = (y.unsqueeze(-1) > y.unsqueeze(-2)).sum()
        (g2,) = torch.autograd.grad(none.sum() / count, s)
        torch.testing.assert_close(g1, g2)


# ---------------------------------------------------------------------------------------- properties
lists = st.integers(2, 7).flatmap(lambda n: st.tuples(
    st.lists(st.floats(-20, 20, allow_nan=False, width=32), min_size=n, max_size=n),
    st.lists(st.integers(0, 3), min_size=n, max_size=n),
    st.permutations(list(range(n))),
))


@settings(max_examples=40, deadline=None)
@given(lists)
def test_listwise_permutation_invariance(data):
    s, y, perm = data
    s, y = t([s], torch.float64), t([y], torch.float64)
    p = torch.tensor(perm)
    for fn in LISTWISE:
        if fn is L.listmle_loss and len(set(y[0].tolist())) < y.shape[1]:
            continue  # ListMLE with tied labels depends on the input order (stable tie-break, as Rax)
        a = fn(s, y).item()
        b = fn(s[:, p], y[:, p]).item()
        assert a == pytest.approx(b, rel=1e-9, abs=1e-9), fn.__name__


@settings(max_examples=40, deadline=None)
@given(lists, st.floats(-50, 50, allow_nan=False))
def test_softmax_shift_invariance(data, c):
    s, y, _ = data
    s, y = t([s], torch.float64), t([y], torch.float64)
    for kw in ({}, {"normalize_labels": True}):
        assert L.softmax_loss(s + c, y, **kw).item() == pytest.approx(L.softmax_loss(s, y, **kw).item(), abs=1e-9)


def test_int_labels_accepted_and_low_precision_upcast():
    s = torch.tensor([[0.3, -0.2, 1.0]], dtype=torch.bfloat16)
    out = L.softmax_loss(s, torch.tensor([[1, 0, 2]]))
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(L.softmax_loss(s.float(), t([[1.0, 0, 2]])).item())


# ---------------------------------------------------------------------------------------- bad input
def test_bad_inputs():
    s, y = torch.zeros(2, 3), torch.zeros(2, 3)
    with pytest.raises(ValueError, match="shape"):
        L.softmax_loss(s, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="NaN"):
        L.softmax_loss(t([[float("nan"), 0, 0]]), t([[1.0, 0, 0]]))
    with pytest.raises(ValueError, match="NaN"):
        L.pairwise_logistic_loss(s, t([[float("nan"), 0, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="bool"):
        L.softmax_loss(s, y, mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match="reduction"):
        L.softmax_loss(s, y, reduction="avg")
    with pytest.raises(ValueError, match="floating"):
        L.softmax_loss(torch.zeros(2, 3, dtype=torch.long), y)
    with pytest.raises(ValueError, match="lambdaweight"):
        L.pairwise_logistic_loss(s, y, lambdaweight="ndcg")
    with pytest.raises(ValueError, match="1-based"):
        L.first_ranknet_loss(s, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="batch, list_size"):
        L.softmax_loss(torch.zeros(3), torch.zeros(3))


# ----------------------------------------------------------------------------------------- Objective
def _output(**kw):
    s = t([[2.0, 1.0, 0.0], [0.5, 0.1, -1.0]]).requires_grad_(True)
    return RankerOutput(scores=s, mask=torch.ones(2, 3, dtype=torch.bool), **kw)


def test_objective_sums_and_logs():
    out = _output(lm_loss=torch.tensor(0.7))
    y = t([[1.0, 0, 0], [0, 2, 0]])
    ranks = torch.tensor([[1, 2, 3], [2, 1, 3]])
    obj = L.Objective([{"name": "softmax"}, L.ObjectiveTerm("lambdarank", 0.5, {"topn": 2}),
                       {"name": "first_ranknet", "weight": 10.0}, {"name": "lm"}])
    assert obj.needs == {"labels", "teacher_ranks", "lm_loss"}
    targets = {"labels": y, "list_mask": out.mask, "teacher_ranks": ranks}
    total, logs = obj(out, targets)
    sm = L.softmax_loss(out.scores, y).item()
    lr = L.pairwise_logistic_loss(out.scores, y, lambdaweight="dcg", topn=2).item()
    fr = L.first_ranknet_loss(out.scores, ranks).item()
    assert logs == pytest.approx({"softmax": sm, "lambdarank": lr, "first_ranknet": fr, "lm": 0.7})
    assert total.item() == pytest.approx(sm + 0.5 * lr + 10 * fr + 0.7, rel=1e-6)
    total.backward()
    assert out.scores.grad is not None


def test_objective_lipo_uses_logprobs():
    pol = t([[-3.0, -5.0, -4.0], [-1.0, -2.0, -3.0]])
    ref = t([[-4.0, -4.0, -4.0], [-2.0, -2.0, -2.0]])
    out = _output(logprobs=pol, ref_logprobs=ref)
    y = t([[1.0, 0, 0.5], [0, 1, 0]])
    obj = L.Objective([{"name": "lipo_lambda", "params": {"beta": 0.1}}])
    total, _ = obj(out, {"labels": y, "list_mask": out.mask})
    assert total.item() == pytest.approx(L.lipo_lambda_loss(L.lipo_scores(pol, ref, 0.1), y).item(), rel=1e-6)
    assert L.Objective([{"name": "lipo_lambda"}]).needs_logprobs
    assert not L.Objective([{"name": "lambdarank"}]).needs_logprobs


def test_objective_lipo_without_logprobs_is_an_error_naming_lambdarank():
    """Without policy/reference log-probs LiPO-λ used to fall back to LambdaRank on raw scores."""
    y = t([[1.0, 0, 0.5], [0, 1, 0]])
    out = _output()
    with pytest.raises(ValueError, match=r"reference log-probabilities.*`lambdarank`"):
        L.Objective([{"name": "lipo_lambda"}])(out, {"labels": y, "list_mask": out.mask})
    only_policy = _output(logprobs=t([[-1.0, -2.0, -3.0], [-1.0, -2.0, -3.0]]))
    with pytest.raises(ValueError, match="reference"):
        L.Objective([{"name": "lipo_lambda"}])(only_policy, {"labels": y, "list_mask": out.mask})


def test_first_ranknet_pair_reduction_differs_from_list_mean_for_uneven_windows():
    """FIRST's reduction is one mean over every valid pair of the batch; the per-list mean weighs a
    3-passage window (3 pairs) like a 2-passage one (1 pair). Both match a hand computation."""
    import math

    s = t([[2.0, 0.5, 1.0], [0.3, 1.3, 0.0]])
    r = torch.tensor([[1, 2, 3], [2, 1, 0]])  # second window: 2 passages (rank 0 = padding)
    mask = r > 0

    def sp(x: float) -> float:
        return math.log1p(math.exp(-x))

    # window 1: pairs (r_i < r_j) = (0,1) w=1/3, (0,2) w=1/4, (1,2) w=1/5; window 2: (1,0) w=1/3
    w1 = [1 / 3 * sp(2.0 - 0.5), 1 / 4 * sp(2.0 - 1.0), 1 / 5 * sp(0.5 - 1.0)]
    w2 = [1 / 3 * sp(1.3 - 0.3)]
    per_list = (sum(w1) / 3 + sum(w2) / 1) / 2
    pairs = (sum(w1) + sum(w2)) / 4
    got_mean = L.first_ranknet_loss(s, r, mask=mask).item()
    got_pairs = L.first_ranknet_loss(s, r, mask=mask, reduction="pairs").item()
    assert got_mean == pytest.approx(per_list, rel=1e-6)
    assert got_pairs == pytest.approx(pairs, rel=1e-6)
    assert abs(got_mean - got_pairs) > 1e-3
    # equal pair counts: the two reductions agree
    full = torch.ones_like(mask)
    r2 = torch.tensor([[1, 2, 3], [3, 1, 2]])
    assert L.first_ranknet_loss(s, r2, mask=full).item() == pytest.approx(
        L.first_ranknet_loss(s, r2, mask=full, reduction="pairs").item(), rel=1e-6
    )
    # as an objective term: {name: first_ranknet, reduction: pairs}
    out = RankerOutput(scores=s, mask=mask)
    total, _ = L.Objective([{"name": "first_ranknet", "reduction": "pairs"}])(
        out, {"teacher_ranks": r, "list_mask": mask}
    )
    assert total.item() == pytest.approx(pairs, rel=1e-6)


def test_objective_errors():
    with pytest.raises(ValueError, match="lambdaloss"):
        L.Objective([{"name": "lamdaloss"}])
    with pytest.raises(ValueError, match="temperature"):
        L.Objective([{"name": "approx_ndcg", "params": {"temprature": 0.5}}])
    with pytest.raises(ValueError, match="distill"):
        L.Objective([{"name": "bar_distillation"}])(_output(), {"labels": torch.zeros(2, 3)})
    with pytest.raises(ValueError, match="lm_loss"):
        L.Objective([{"name": "lm"}])(_output(), {})
    assert set(L.LOSSES) >= {"ranknet", "lambdaloss", "poly1", "mse_distillation", "lm"}
    assert all(spec.target in {"labels", "teacher_scores", "teacher_ranks", "lm_loss"} for spec in L.LOSSES.values())


def test_pointwise_sigmoid_gradient_at_zero_is_exact():
    s = torch.zeros(1, 2, requires_grad=True)
    L.pointwise_sigmoid_loss(s, t([[1.0, 0.0]])).backward()
    torch.testing.assert_close(s.grad, t([[-0.25, 0.25]]))  # (σ(0) − y)/2; Rax gives [-0.75, -0.25]
    assert F.softplus(torch.zeros(1)).item() == pytest.approx(math.log(2))


# ------------------------------------------------------------------------- fast paths vs exact paths
FAST = [L.pointwise_sigmoid_loss, L.pointwise_mse_loss, L.softmax_loss, L.poly1_softmax_loss]


@pytest.mark.parametrize("fn", FAST, ids=lambda f: f.__name__)
def test_fast_path_equals_exact_path(fn):
    """The fast paths (no weights, mean/sum) against the exact masked path, reached with unit
    weights: values and gradients in float64, on random masks, padded rows and garbage padding."""
    g = torch.Generator().manual_seed(11)
    for trial in range(30):
        s = torch.randn(5, 7, generator=g, dtype=torch.float64) * (1e3 if trial % 5 == 0 else 3)
        y = torch.randint(0, 4, (5, 7), generator=g).double()
        m = torch.rand(5, 7, generator=g) < 0.7
        m[trial % 5] = False
        s = torch.where(m, s, torch.full((), 7.5, dtype=torch.float64)).requires_grad_(True)  # finite padding
        for reduction in ("mean", "sum"):
            kw = {"normalize_labels": True} if fn is L.softmax_loss and trial % 2 else {}
            fast = fn(s, y, mask=m, reduction=reduction, **kw)
            exact = fn(s, y, mask=m, reduction=reduction, weights=torch.ones_like(s), **kw)
            (gf,) = torch.autograd.grad(fast, s)
            (ge,) = torch.autograd.grad(exact, s)
            assert fast.item() == pytest.approx(exact.item(), rel=1e-10, abs=1e-12)
            torch.testing.assert_close(gf, ge, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("fn", FAST, ids=lambda f: f.__name__)
def test_fast_path_falls_back_on_non_finite_input(fn):
    m = torch.tensor([[True, True, False]])
    y = t([[1.0, 0.0, 0.0]])
    # garbage in padding: the exact path masks it
    s = t([[0.5, -0.5, float("nan")]]).requires_grad_(True)
    assert torch.isfinite(fn(s, y, mask=m))
    (grad,) = torch.autograd.grad(fn(s, y, mask=m), s)
    assert torch.isfinite(grad).all() and grad[0, 2] == 0
    # ±inf / NaN among valid labels or scores: a clear error, also where a clip would hide them
    for bad in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(ValueError, match="labels contain NaN or inf"):
            fn(t([[0.5, -0.5, 0.0]]), t([[bad, 0.0, 0.0]]), mask=m)
        with pytest.raises(ValueError, match="scores contain NaN or inf"):
            fn(t([[bad, -0.5, 0.0]]), y, mask=m)
    # huge valid scores: the fast softmax padding would overflow; the exact path answers
    big = t([[3e37, -3e37, 0.0]])
    assert fn(big, y, mask=m).item() == fn(big, y, mask=m, weights=torch.ones(1, 3)).item()
