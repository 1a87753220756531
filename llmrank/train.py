"""Train a reranker from a recipe.

    accelerate launch --config_file accelerate_config.yaml -m llmrank.train \
        --config recipes/t5-base/rankt5-softmax.yaml --learning_rate=1e-4

Everything that can be checked is checked before the output directory is touched: the recipe,
the objective's terms and targets, the data files and the model path. A bad input therefore
never leaves a half-written output directory behind.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmrank.config import Recipe, RecipeError, recipe_from_argv

logger = logging.getLogger("llmrank.train")


@dataclass
class TrainResult:
    output_dir: str
    metrics: dict[str, float]
    ranker: Any


def build_objective(recipe: Recipe) -> Any:
    """The recipe's Objective; BAR's ``distill`` block mixes in the distillation term."""
    from llmrank.losses import Objective

    terms = [dict(t) for t in recipe.objective]
    if recipe.distill is not None:
        from llmrank.distill import distillation_terms

        terms = distillation_terms(terms, recipe.distill)
    try:
        objective = Objective(terms)
    except ValueError as exc:
        raise RecipeError(f"objective: {exc}") from None
    _check_logprobs(objective, recipe)
    return objective


def _check_logprobs(objective: Any, recipe: Recipe) -> None:
    """LiPO-λ scores with policy and reference log-probabilities; a family without them would
    silently train LambdaRank on raw scores, so refuse at build time."""
    if not getattr(objective, "needs_logprobs", False):
        return
    from llmrank.losses import LOGPROB_LOSSES, NEEDS_REFERENCE
    from llmrank.rankers import family_class

    try:
        cls = family_class(recipe.model.family)
    except ValueError as exc:
        raise RecipeError(f"model.family: {exc}") from None
    if not cls.provides_logprobs(recipe.model):
        name = next(t.name for t in objective.terms if t.name in LOGPROB_LOSSES)
        where = f"family {recipe.model.family!r}"
        if recipe.model.family == "seq2seq":
            where += f" in mode {recipe.model.options.get('mode', 'rankt5')!r}"
        raise RecipeError(f"objective: {where}: " + NEEDS_REFERENCE.format(name=name))


def load_lists(recipe: Recipe) -> tuple[list, list]:
    from llmrank.data.readers import load_source

    if not recipe.data.train:
        raise RecipeError("data.train is required: a reader spec like {format: jsonl, path: lists.jsonl}")
    train = load_source(dict(recipe.data.train))
    if not train:
        raise RecipeError(f"data.train {recipe.data.train} produced no lists")
    evals = load_source(dict(recipe.data.eval)) if recipe.data.eval else []
    if evals:
        evals = [lst.subset(list(range(min(len(lst), recipe.data.eval_top_k)))) for lst in evals]
        if recipe.data.eval_max_lists:
            evals = evals[: recipe.data.eval_max_lists]
    return train, evals


def _check_targets(objective: Any, recipe: Recipe, train: list) -> None:
    needs = set(getattr(objective, "needs", set()))
    scoped = sorted({s for t in getattr(objective, "terms", []) for s in (getattr(t, "scope", None) or ())})
    if scoped and any(doc.stage is None for lst in train for doc in lst.docs):
        raise RecipeError(
            f"objective terms are scoped to stages {scoped} but some training documents have no `stage`; "
            "tag every document (impression, candidate or random) or drop the scopes"
        )
    if "teacher_scores" in needs and any(lst.teacher_scores is None for lst in train):
        raise RecipeError(
            "the objective needs teacher_scores but some training lists have none; "
            "add a distill: block with a teacher, or score the data with `llmrank score`"
        )
    from llmrank.rankers import family_class

    # FIRST derives a teacher order from graded labels (stable sort) when a list has none
    derives = getattr(family_class(recipe.model.family), "derives_teacher_order", False)
    if "teacher_ranks" in needs and not derives and any(lst.order is None for lst in train):
        raise RecipeError(
            "the objective needs a teacher order (first_ranknet) but some training lists have no `order`; "
            "use data with a teacher permutation (e.g. format: sharegpt)"
        )


def training_dataset(recipe: Recipe, train_lists: list) -> Any:
    """Sampled groups for pointwise families (by cascade stage when ``data.stages`` is set); whole
    windows in their given order for listwise families (FIRST), whose prompt and LM target are the
    window itself."""
    from llmrank.data.sampling import GroupDataset, WindowDataset
    from llmrank.data.stages import stage_dataset
    from llmrank.rankers import family_class

    cls = family_class(recipe.model.family)
    if recipe.data.stages:  # cascade-stage sampling (RankTower's full-stage groups)
        return stage_dataset(train_lists, recipe.data)
    if getattr(cls, "listwise_windows", False):
        logger.info(
            "family %r trains on whole windows in their given order: data.group_size and "
            "data.positives_per_group are not used", recipe.model.family,
        )  # fmt: skip
        return WindowDataset(
            train_lists, label_source=recipe.data.label_source, max_size=getattr(cls, "max_window", None)
        )
    return GroupDataset(
        train_lists,
        group_size=recipe.data.group_size,
        positives_per_group=recipe.data.positives_per_group,
        seed=recipe.data.seed,
        label_source=recipe.data.label_source,
    )


def _card_metric_name(key: str) -> str:
    """``eval_mrr@10_rel1`` -> ``MRR@10``, ``eval_mrr@10_rel2`` -> ``MRR(rel=2)@10`` (ir-measures style)."""
    import re

    name = key.removeprefix("eval_").replace("ndcg", "nDCG")
    match = re.fullmatch(r"mrr@(\d+)_rel([\d.]+)", name)
    if match:
        k, rel = match.groups()
        return f"MRR@{k}" if float(rel) == 1 else f"MRR(rel={rel})@{k}"
    return name.replace("mrr", "MRR")


def _card_rows(recipe: Recipe, metrics: dict[str, float]) -> list[dict[str, Any]]:
    """Validation metrics in the evaluation-table shape the model card reads."""
    name = Path(str((recipe.data.eval or {}).get("path", "validation"))).stem or "validation"
    clean = {_card_metric_name(k): v for k, v in metrics.items()}
    return [{"dataset": f"{name} (validation)", "first_stage": "validation lists", "metrics": clean}]


def run_training(recipe: Recipe) -> TrainResult:
    """Build the ranker, data and objective from ``recipe`` and train; returns final metrics."""
    from transformers import set_seed

    from llmrank.data.stages import tag_lists
    from llmrank.rankers import family_class
    from llmrank.trainer import RankingTrainer, clean_stale_saves, latest_complete_checkpoint

    args = recipe.training
    set_seed(args.seed)
    objective = build_objective(recipe)
    train_lists, eval_lists = load_lists(recipe)
    if recipe.distill is not None:
        from llmrank.distill import attach_teacher_scores

        train_lists = attach_teacher_scores(train_lists, recipe.distill)
    if recipe.data.stages:  # every document gets its cascade stage (scoped terms are checked next)
        train_lists = tag_lists(train_lists, recipe.data.stages)
    _check_targets(objective, recipe, train_lists)
    dataset = training_dataset(recipe, train_lists)
    ranker = family_class(recipe.model.family).build(recipe.model)
    if getattr(objective, "needs_logprobs", False):
        ranker.compute_reference = True
    if hasattr(ranker, "pretokenize"):
        ranker.pretokenize(train_lists + eval_lists)

    resume = args.resume_from_checkpoint
    if resume is True or (isinstance(resume, str) and resume.lower() in ("auto", "true", "latest")):
        resume = None
        if Path(args.output_dir).is_dir():
            if args.process_index == 0:
                clean_stale_saves(args.output_dir)
            resume = latest_complete_checkpoint(args.output_dir)
        logger.info("resuming from %s", resume or "scratch (no checkpoint found)")
    elif isinstance(resume, str) and resume:
        from llmrank.trainer import checkpoint_problem

        if not Path(resume).is_dir():
            raise RecipeError(f"training.resume_from_checkpoint: {resume} is not a checkpoint folder")
        problem = checkpoint_problem(resume)
        if problem:
            raise RecipeError(
                f"training.resume_from_checkpoint: {resume} is incomplete ({problem}; its save was interrupted); "
                "give an earlier checkpoint or `auto` for the newest complete one"
            )

    trainer = RankingTrainer(
        model=ranker,
        args=args,
        objective=objective,
        train_dataset=dataset,
        eval_lists=eval_lists,
        recipe=recipe,
    )
    if args.early_stopping_patience is not None:
        from transformers import EarlyStoppingCallback

        trainer.add_callback(EarlyStoppingCallback(args.early_stopping_patience, args.early_stopping_threshold))
    _warn_uneven_last_batch(len(dataset), args)
    trainer.train(resume_from_checkpoint=resume)
    metrics: dict[str, float] = {}
    if eval_lists:
        if trainer.is_world_process_zero():
            write_validation_curve(trainer.state, args, Path(args.output_dir) / "validation_curve.json")
        metrics = trainer.evaluate()
        if trainer.is_world_process_zero():
            from llmrank.io_utils import atomic_write_json

            atomic_write_json(Path(args.output_dir) / "eval_results.json", _card_rows(recipe, metrics))
    # the final model and its card (with the results above); with training.push_to_hub, pushed too
    trainer.save_model(args.output_dir)
    return TrainResult(output_dir=args.output_dir, metrics=metrics, ranker=ranker)


def validation_curve(state: Any, args: Any) -> dict[str, Any]:
    """Step -> validation metric of every evaluation during training (from ``state.log_history``),
    plus the best step Trainer selected. The metric is ``metric_for_best_model`` when set, else
    the validation nDCG@k."""
    metric = str(args.metric_for_best_model or f"ndcg@{args.eval_k}")
    key = metric if metric.startswith("eval_") else f"eval_{metric}"
    points = [
        {"step": int(entry["step"]), "value": float(entry[key])}
        for entry in state.log_history
        if key in entry and "step" in entry
    ]
    best_step = getattr(state, "best_global_step", None) or None
    if best_step is None and points and args.metric_for_best_model is not None:
        best_step = max(points, key=lambda p: p["value"])["step"]  # no checkpoint saved: the curve's own best
    return {
        "metric": key,
        "points": points,
        "best_step": best_step,
        "best_metric": state.best_metric,
        "best_model_checkpoint": state.best_model_checkpoint,
        "global_step": state.global_step,
        "max_steps": state.max_steps,
        "stopped_early": bool(state.max_steps and state.global_step < state.max_steps),
    }


def write_validation_curve(state: Any, args: Any, path: Path) -> None:
    from llmrank.io_utils import atomic_write_json

    atomic_write_json(path, validation_curve(state, args))


def _warn_uneven_last_batch(num_lists: int, args: Any) -> None:
    """Under several processes Accelerate keeps batches even: when the lists of an epoch do not
    fill the last global batch, the processes short of lists repeat lists from the start of the
    epoch (``even_batches``). Training still works, but those lists count twice in that step, so
    the run is not equal to a one-process run with the same global batch. Say so up front."""
    world = max(1, int(getattr(args, "world_size", 1)))
    per_step = args.per_device_train_batch_size * world
    if world > 1 and num_lists % per_step and not args.dataloader_drop_last:
        logger.warning(
            "%d training lists is not a multiple of the global batch %d (%d processes x %d): the last "
            "batch of each epoch repeats %d lists from the start of the epoch. Use a multiple, or set "
            "training.dataloader_drop_last: true to drop the partial batch.",
            num_lists, per_step, world, args.per_device_train_batch_size, per_step - num_lists % per_step,
        )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # `datasets` announces optional backends at INFO on import ("JAX version ... available"): noise
    # that would turn a recipe error into several lines
    logging.getLogger("datasets").setLevel(logging.WARNING)
    try:
        recipe = recipe_from_argv(argv)
        if recipe.distill is not None and recipe.distill.generations > 1:
            from llmrank.distill import run_generations

            run_generations(recipe)
        else:
            run_training(recipe)
    except (RecipeError, FileNotFoundError, ValueError) as exc:
        print(f"llmrank.train: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
