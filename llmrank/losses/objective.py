"""The objective of a recipe: the registry of named losses (:data:`LOSSES`) and the weighted sum
of terms (:class:`Objective`) that the trainer calls on a ranker's output.

Each :class:`LossSpec` carries, next to the function, the target it reads and the paper it
implements (``spec.paper``: a short title; ``spec.citation``: the BibTeX entry), so a model card can
cite what a checkpoint was trained with (:func:`loss_citations`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from llmrank.data.record import STAGES
from llmrank.losses._core import RAX, Paper, Tensor
from llmrank.losses.distillation import (
    BAR,
    bar_distillation_loss,
    listwise_distillation_loss,
    mse_distillation_loss,
    pairwise_distillation_loss,
    pointwise_distillation_loss,
)
from llmrank.losses.lambdaweights import dcg2_lambdaweight, dcg_lambdaweight
from llmrank.losses.listwise import LISTMLE, LISTNET, POLY1, listmle_loss, poly1_softmax_loss, softmax_loss
from llmrank.losses.pairwise import (
    FIRST,
    HINGE,
    LAMBDALOSS,
    LAMBDARANK,
    LIPO,
    RANKNET,
    first_ranknet_loss,
    lipo_lambda_loss,
    lipo_scores,
    pairwise_hinge_loss,
    pairwise_logistic_loss,
)
from llmrank.losses.pointwise import pointwise_mse_loss, pointwise_sigmoid_loss
from llmrank.losses.policy import PG_RANK, pg_rank_loss
from llmrank.losses.ranktower import RANKTOWER, am_rankmax_loss, rankmax_loss, softsort_loss
from llmrank.losses.t12n import APPROX, approx_mrr_loss, approx_ndcg_loss
from llmrank.suggest import did_you_mean

__all__ = [
    "LOGPROB_LOSSES",
    "LOSSES",
    "NEEDS_REFERENCE",
    "LossSpec",
    "Objective",
    "ObjectiveTerm",
    "loss_citations",
]

# the options are few and a wrong name is a typo of a right one: always suggest the nearest
_suggest = functools.partial(did_you_mean, cutoff=0.0, parens=True)


@dataclass(frozen=True)
class LossSpec:
    """A registered loss: the function, the target it reads, fixed keyword arguments and its paper."""

    fn: Callable[..., Tensor] | None
    target: str  # "labels" | "teacher_scores" | "teacher_ranks" | "lm_loss"
    fixed: Mapping[str, Any] = field(default_factory=dict)
    source: Paper = field(kw_only=True)  # the paper the loss implements

    @property
    def paper(self) -> str:
        """Short title of the paper the loss implements, e.g. ``"RankNet (Burges et al., ICML 2005)"``."""
        return self.source.short

    @property
    def citation(self) -> str:
        """BibTeX entry of that paper."""
        return self.source.bibtex

    def param_names(self) -> set[str]:
        if self.fn is None:
            return set()
        sig = inspect.signature(self.fn)
        names = {p.name for p in sig.parameters.values() if p.kind == p.KEYWORD_ONLY}
        names -= {"mask", "weights"} | set(self.fixed)
        if self.fn is lipo_lambda_loss:
            names.add("beta")
        return names


LOSSES: dict[str, LossSpec] = {
    "pointwise_sigmoid": LossSpec(pointwise_sigmoid_loss, "labels", source=RAX),
    "pointwise_mse": LossSpec(pointwise_mse_loss, "labels", source=RAX),
    "pairwise_logistic": LossSpec(pairwise_logistic_loss, "labels", source=RANKNET),
    "ranknet": LossSpec(pairwise_logistic_loss, "labels", source=RANKNET),
    "pairwise_hinge": LossSpec(pairwise_hinge_loss, "labels", source=HINGE),
    "lambdarank": LossSpec(pairwise_logistic_loss, "labels", {"lambdaweight": dcg_lambdaweight}, source=LAMBDARANK),
    "lambdaloss": LossSpec(pairwise_logistic_loss, "labels", {"lambdaweight": dcg2_lambdaweight}, source=LAMBDALOSS),
    "softmax": LossSpec(softmax_loss, "labels", source=LISTNET),
    "poly1": LossSpec(poly1_softmax_loss, "labels", source=POLY1),
    "listmle": LossSpec(listmle_loss, "labels", source=LISTMLE),
    "approx_ndcg": LossSpec(approx_ndcg_loss, "labels", source=APPROX),
    "approx_mrr": LossSpec(approx_mrr_loss, "labels", source=APPROX),
    "lipo_lambda": LossSpec(lipo_lambda_loss, "labels", source=LIPO),
    "first_ranknet": LossSpec(first_ranknet_loss, "teacher_ranks", source=FIRST),
    "bar_distillation": LossSpec(bar_distillation_loss, "teacher_scores", source=BAR),
    "mse_distillation": LossSpec(mse_distillation_loss, "teacher_scores", source=BAR),
    # RankTower (Yan & Li, arXiv 2407.12385) hybrid objective and its ablations
    "softsort": LossSpec(softsort_loss, "labels", source=RANKTOWER),
    "rankmax": LossSpec(rankmax_loss, "labels", source=RANKTOWER),
    "am_rankmax": LossSpec(am_rankmax_loss, "labels", source=RANKTOWER),
    "listwise_distillation": LossSpec(listwise_distillation_loss, "teacher_scores", source=RANKTOWER),
    "pointwise_distillation": LossSpec(pointwise_distillation_loss, "teacher_scores", source=RANKTOWER),
    "pairwise_distillation": LossSpec(pairwise_distillation_loss, "teacher_scores", source=RANKTOWER),
    "pg_rank": LossSpec(pg_rank_loss, "labels", source=PG_RANK),
    # FIRST's language-modelling loss on the teacher ranking (computed by the ranker)
    "lm": LossSpec(None, "lm_loss", source=FIRST),
}


def loss_citations(names: Iterable[str]) -> list[str]:
    """The BibTeX entries of the papers behind the registered losses ``names``, each once, in order."""
    out: list[str] = []
    for name in names:
        if name not in LOSSES:
            raise ValueError(f"unknown loss {name!r}{_suggest(name, sorted(LOSSES))}")
        if LOSSES[name].citation not in out:
            out.append(LOSSES[name].citation)
    return out


#: losses whose scores are LiPO's implicit reward β·(log π_θ − log π_ref), not the ranker's scores
LOGPROB_LOSSES = frozenset({"lipo_lambda"})
NEEDS_REFERENCE = (
    "loss {name!r} needs policy and reference log-probabilities (LiPO's s = beta * (log pi - log pi_ref)), "
    "which this ranker does not provide (FIRST does; so does seq2seq with options.mode: monot5); "
    "use `lambdarank` for the score-only variant (the same DCG-lambda-weighted pairwise logistic loss on the scores)"
)

_TARGET_SOURCES = {
    "labels": "relevance labels of the data (qrels / `labels` of each list)",
    "teacher_scores": "teacher scores (a `distill:` section in the recipe, or scored data with teacher scores)",
    "teacher_ranks": "teacher ranks (a `distill:` section with a listwise teacher, or data with a teacher order)",
    "lm_loss": "the ranker's LM loss (`output.lm_loss`, only produced by families with a generation target, e.g. FIRST)",
}


@dataclass
class ObjectiveTerm:
    """One weighted term of an :class:`Objective`: a registered loss name, its weight, its params."""

    name: str
    weight: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)
    #: sample stages (:data:`llmrank.data.record.STAGES`) whose documents the term sees; None = all
    scope: Sequence[str] | None = None

    def __post_init__(self) -> None:
        if self.name not in LOSSES:
            raise ValueError(
                f"unknown loss {self.name!r}{_suggest(self.name, sorted(LOSSES))}; known: {', '.join(sorted(LOSSES))}"
            )
        if self.scope is not None:
            if LOSSES[self.name].fn is None:
                raise ValueError(f"loss {self.name!r} is not computed over documents: it takes no scope")
            scope = [self.scope] if isinstance(self.scope, str) else self.scope
            if not isinstance(scope, Sequence) or not scope:
                raise ValueError(f"loss {self.name!r}: scope must be a non-empty list of stages {list(STAGES)}")
            for stage in scope:
                if stage not in STAGES:
                    raise ValueError(
                        f"loss {self.name!r}: unknown stage {stage!r} in scope{_suggest(str(stage), STAGES)}; "
                        f"known: {', '.join(STAGES)}"
                    )
            self.scope = tuple(scope)
        allowed = LOSSES[self.name].param_names()
        for key in self.params:
            if key not in allowed:
                hint = _suggest(key, sorted(allowed))
                raise ValueError(
                    f"loss {self.name!r} has no parameter {key!r}{hint}; "
                    f"valid: {', '.join(sorted(allowed)) or '(none)'}"
                )
        reduction = self.params.get("reduction")
        if reduction is not None:
            # an objective needs a scalar: "none" would fail at the first batch, after the output exists
            valid = ("mean", "sum", "pairs") if LOSSES[self.name].fn is first_ranknet_loss else ("mean", "sum")
            if reduction not in valid:
                raise ValueError(f"loss {self.name!r}: reduction must be one of {', '.join(valid)}, got {reduction!r}")
        self.weight = float(self.weight)


def _scope_mask(term: ObjectiveTerm, mask: Tensor, targets: Mapping[str, Tensor]) -> Tensor:
    """``mask ∧ (stage ∈ term.scope)``: the term sees only the documents of its sample stages
    (RankTower's full-stage sampling: distillation on impressions, sorting on impressions and
    candidates, ...).  ``targets["stages"]`` holds stage ids (index in STAGES, −1 = untagged)."""
    stages = targets.get("stages")
    if stages is None:
        raise ValueError(
            f"loss {term.name!r} has scope {list(term.scope or ())} but the batch has no stage tags: "
            f"give every document a `stage` ({', '.join(STAGES)}) in the training data"
        )
    ids = torch.tensor([STAGES.index(s) for s in term.scope or ()], device=stages.device)
    return mask & torch.isin(stages.to(ids.device), ids).to(mask.device)


class Objective:
    """Weighted sum of loss terms: ``Σ_k weight_k · loss_k``.

    A term may carry ``scope``, a list of sample stages: it then sees only the documents tagged with
    those stages (``targets["stages"]``), e.g. ``{name: softsort, scope: [impression, candidate]}``.

    ``terms`` are :class:`ObjectiveTerm` or dicts ``{"name", "weight", "params"}`` (other keys of a dict
    are taken as params).  Calling it on a :class:`~llmrank.rankers.base.RankerOutput` and the targets
    returns ``(total, {name: unweighted value})``."""

    def __init__(self, terms: Sequence[ObjectiveTerm | Mapping[str, Any]]) -> None:
        parsed: list[ObjectiveTerm] = []
        for term in terms:
            if isinstance(term, ObjectiveTerm):
                parsed.append(term)
                continue
            term = dict(term)
            if "name" not in term:
                raise ValueError(f"objective term {term!r} has no 'name'")
            name = term.pop("name")
            weight = term.pop("weight", 1.0)
            scope = term.pop("scope", None)
            params = dict(term.pop("params", None) or {})
            params.update(term)
            parsed.append(ObjectiveTerm(name=name, weight=weight, params=params, scope=scope))
        if not parsed:
            raise ValueError("an objective needs at least one term")
        self.terms = parsed

    @property
    def needs(self) -> set[str]:
        """Targets the terms read ("labels", "teacher_scores", "teacher_ranks", "lm_loss")."""
        return {LOSSES[t.name].target for t in self.terms}

    @property
    def needs_logprobs(self) -> bool:
        """True when a term scores with policy and reference log-probabilities (LiPO-λ): the
        ranker must then provide ``logprobs`` and ``ref_logprobs``."""
        return any(t.name in LOGPROB_LOSSES for t in self.terms)

    def __call__(self, output: Any, targets: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        mask = targets.get("list_mask")
        if mask is None:
            mask = output.mask
        total: Tensor | None = None
        logs: dict[str, float] = {}
        unscoped = mask

        for term in self.terms:
            spec = LOSSES[term.name]
            # a scoped term sees only the documents of its sample stages
            mask = unscoped if term.scope is None else _scope_mask(term, unscoped, targets)
            if spec.fn is None:  # "lm"
                if output.lm_loss is None:
                    raise ValueError(f"loss 'lm' needs {_TARGET_SOURCES['lm_loss']}, but output.lm_loss is None")
                value = output.lm_loss.float()
            else:
                target = targets.get(spec.target)
                if target is None:
                    raise ValueError(
                        f"loss {term.name!r} needs targets[{spec.target!r}]: "
                        f"it comes from {_TARGET_SOURCES[spec.target]}"
                    )
                params = dict(term.params)
                scores = output.scores
                if term.name in LOGPROB_LOSSES:
                    beta = params.pop("beta", 0.05)
                    if output.logprobs is None or output.ref_logprobs is None:
                        # without them LiPO-λ would silently be LambdaRank on raw scores
                        raise ValueError(NEEDS_REFERENCE.format(name=term.name))
                    scores = lipo_scores(output.logprobs, output.ref_logprobs, beta=beta)
                value = spec.fn(scores, target, mask=mask, **spec.fixed, **params)
            key = term.name
            i = 2
            while key in logs:
                key = f"{term.name}_{i}"
                i += 1
            logs[key] = float(value.detach())
            weighted = term.weight * value
            total = weighted if total is None else total + weighted
        assert total is not None
        return total, logs
