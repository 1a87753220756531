"""Learning-to-rank losses for LLM rerankers, in plain torch, with Rax semantics.

Every loss has one signature::

    loss(scores, labels, *, mask=None, weights=None, reduction="mean", **hyper) -> Tensor

``scores`` and ``labels`` are ``[batch, list_size]``; ``mask`` is a bool ``[batch, list_size]``
(True = real item, None = all real); ``weights`` are optional per-item weights.  Names, formulas and
edge cases follow Rax (Jagerman et al., "Rax: Composable Learning-to-Rank using JAX", KDD 2022,
google/rax 0.4.0), so ``tests/test_losses_rax.py`` can compare values and gradients one to one.

The package, by kind (each module imports only :mod:`._core` and the siblings it builds on):

* :mod:`.pointwise` (sigmoid, MSE), :mod:`.pairwise` (RankNet, hinge, LiPO-λ, FIRST's weighted
  RankNet), :mod:`.listwise` (softmax, Poly-1, ListMLE);
* :mod:`.lambdaweights`: lambda-weight functions, passed to the pairwise losses as ``lambdaweight=``
  (LambdaRank = RankNet with ``dcg_lambdaweight``, LambdaLoss NDCG-Loss2 = with ``dcg2_lambdaweight``);
* :mod:`.t12n`: ``approx_t12n(metric)`` turns a metric into a loss (ApproxNDCG, ApproxMRR) and
  ``gumbel(loss)`` perturbs one;
* :mod:`.distillation` (BAR, MSE, RankTower's distillation terms, the teacher transform),
  :mod:`.ranktower` (SoftSort, Rankmax, AM-Rankmax), :mod:`.policy` (PG-Rank);
* :mod:`.objective`: the registry :data:`LOSSES` (name -> function, target, paper) and :class:`Objective`.

Reductions (Rax's three denominators, see ``rax._src.utils.safe_reduce``):

* listwise losses (softmax, poly1, listmle, approx_*, bar_distillation): one value per list; ``mean``
  averages over lists with at least one valid item (lists with valid items but all-zero labels
  still count in the denominator);
* pairwise losses: one value per pair ``(i, j)`` with ``labels_i > labels_j``, both valid; ``mean``
  divides by the number of such pairs (lambda weights do not change the denominator);
* pointwise losses: one value per valid item; ``mean`` divides by the number of valid items.

When nothing is valid the loss is ``0`` (not NaN) with zero gradients.  ``reduction="none"`` returns
the unreduced tensor (``[B]``, ``[B, n, n]`` or ``[B, n]``) with masked entries set to 0, so
``none.sum() == sum``.

Input policy (deliberate, tested):

* computation runs in float32; float64 inputs stay float64 (used by the Rax equivalence tests);
  bfloat16/float16 scores are upcast;
* integer or bool labels are accepted and cast to float (graded qrels are integers);
* shapes must match, ``mask`` must be bool, valid scores and labels must be finite -> ``ValueError``
  (padding may hold anything, NaN included: padded entries never reach a value or a gradient);
* a batch whose mask hides everything gives 0 (like Rax), not an error.

Differences from Rax (deliberate): ``segments`` are not supported (pad lists instead);
``approx_ndcg_loss``/``approx_mrr_loss`` have no ``topn`` (Rax's default is no cutoff);
``listmle_loss`` and ``approx_mrr_loss`` reject ``weights`` (Rax ignores or handles them
differently); Gumbel noise comes from a torch generator, so samples differ from Rax's PRNG.
"""

from __future__ import annotations

from llmrank.losses._core import Paper, normalize_probabilities, ranks
from llmrank.losses.distillation import (
    TEACHER_TRANSFORMS,
    bar_distillation_loss,
    listwise_distillation_loss,
    mse_distillation_loss,
    pairwise_distillation_loss,
    pointwise_distillation_loss,
    teacher_transform,
)
from llmrank.losses.lambdaweights import (
    LAMBDAWEIGHTS,
    LambdaweightFn,
    dcg2_lambdaweight,
    dcg_lambdaweight,
    labeldiff_lambdaweight,
)
from llmrank.losses.listwise import listmle_loss, poly1_softmax_loss, softmax_loss
from llmrank.losses.objective import (
    LOGPROB_LOSSES,
    LOSSES,
    NEEDS_REFERENCE,
    LossSpec,
    Objective,
    ObjectiveTerm,
    loss_citations,
)
from llmrank.losses.pairwise import (
    first_ranknet_loss,
    lipo_lambda_loss,
    lipo_scores,
    pairwise_hinge_loss,
    pairwise_logistic_loss,
)
from llmrank.losses.pointwise import pointwise_mse_loss, pointwise_sigmoid_loss
from llmrank.losses.policy import ndcg_of_rankings, pg_rank_loss, plackett_luce_log_prob
from llmrank.losses.ranktower import am_rankmax_loss, rankmax_loss, softsort, softsort_loss
from llmrank.losses.t12n import (
    approx_mrr_loss,
    approx_ndcg_loss,
    approx_ranks,
    approx_t12n,
    gumbel,
    mrr_metric,
    ndcg_metric,
)

__all__ = [
    "LAMBDAWEIGHTS",
    "LOGPROB_LOSSES",
    "LOSSES",
    "NEEDS_REFERENCE",
    "TEACHER_TRANSFORMS",
    "LambdaweightFn",
    "LossSpec",
    "Objective",
    "ObjectiveTerm",
    "Paper",
    "am_rankmax_loss",
    "approx_mrr_loss",
    "approx_ndcg_loss",
    "approx_ranks",
    "approx_t12n",
    "bar_distillation_loss",
    "dcg2_lambdaweight",
    "dcg_lambdaweight",
    "first_ranknet_loss",
    "gumbel",
    "labeldiff_lambdaweight",
    "lipo_lambda_loss",
    "lipo_scores",
    "listmle_loss",
    "listwise_distillation_loss",
    "loss_citations",
    "mrr_metric",
    "mse_distillation_loss",
    "ndcg_metric",
    "ndcg_of_rankings",
    "normalize_probabilities",
    "pairwise_distillation_loss",
    "pairwise_hinge_loss",
    "pairwise_logistic_loss",
    "pg_rank_loss",
    "plackett_luce_log_prob",
    "pointwise_distillation_loss",
    "pointwise_mse_loss",
    "pointwise_sigmoid_loss",
    "poly1_softmax_loss",
    "rankmax_loss",
    "ranks",
    "softmax_loss",
    "softsort",
    "softsort_loss",
    "teacher_transform",
]
