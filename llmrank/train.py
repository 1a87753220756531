"""Train a reranker from a recipe.

    accelerate launch --config_file accelerate_config.yaml -m llmrank.train \
        --config recipes/t5-base/rankt5-softmax.yaml --learning_rate=1e-4

Everything that can be checked is checked before the output directory is touched: the recipe,
the objective's terms and targets, the data files and the model path. A bad input therefore
never leaves a half-written output directory behind.

Data flows down from here: :func:`run_training` calls the objective (:mod:`llmrank.losses`),
the readers, BAR's teacher scores (:mod:`llmrank.distill`) and the trainer, none of which
imports this module; BAR's born-again generations (:func:`run_generations`) train one model after
another, so they live here, beside :func:`run_training`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import EarlyStoppingCallback, TrainerCallback, set_seed

from llmrank.config import DistillArgs, Recipe, RecipeError, recipe_from_argv
from llmrank.data.readers import load_source
from llmrank.data.sampling import GroupDataset, WindowDataset
from llmrank.data.stages import stage_dataset, tag_lists
from llmrank.distill import (
    attach_teacher_scores,
    check_distill,
    distillation_terms,
    teacher_fingerprint,
    transform_settings,
)
from llmrank.io_utils import atomic_write_json, atomic_write_text
from llmrank.loading import device_ranker
from llmrank.losses import LOGPROB_LOSSES, NEEDS_REFERENCE, Objective
from llmrank.rankers import family_class
from llmrank.trainer import (
    RankingTrainer,
    checkpoint_problem,
    clean_stale_saves,
    evaluate_lists,
    latest_complete_checkpoint,
    write_validation_curve,
)

logger = logging.getLogger("llmrank.train")


@dataclass
class TrainResult:
    output_dir: str
    metrics: dict[str, float]
    ranker: Any


def build_objective(recipe: Recipe) -> Any:
    """The recipe's Objective; BAR's ``distill`` block mixes in the distillation term."""
    terms = [dict(t) for t in recipe.objective]
    if recipe.distill is not None:
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


def run_training(
    recipe: Recipe,
    *,
    callbacks: Sequence[TrainerCallback] = (),
    on_batch: Callable[[list[Any]], None] | None = None,
) -> TrainResult:
    """Build the ranker, data and objective from ``recipe`` and train; returns final metrics.

    ``callbacks`` are added to the Trainer (e.g. a step timer); ``on_batch`` sees every batch of
    lists before it is collated (benchmarks check that two trainers saw the same batches)."""
    args = recipe.training
    set_seed(args.seed)
    objective = build_objective(recipe)
    train_lists, eval_lists = load_lists(recipe)
    if recipe.distill is not None:
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
    for callback in callbacks:
        trainer.add_callback(callback)
    if on_batch is not None:
        collate = trainer.data_collator

        def observed(batch: list[Any]) -> Any:
            on_batch(batch)
            return collate(batch)

        trainer.data_collator = observed
    if args.early_stopping_patience is not None:
        trainer.add_callback(EarlyStoppingCallback(args.early_stopping_patience, args.early_stopping_threshold))
    _warn_uneven_last_batch(len(dataset), args)
    trainer.train(resume_from_checkpoint=resume)
    metrics: dict[str, float] = {}
    if eval_lists:
        if trainer.is_world_process_zero():
            write_validation_curve(trainer.state, args, Path(args.output_dir) / "validation_curve.json")
        metrics = trainer.evaluate()
        if trainer.is_world_process_zero():
            atomic_write_json(Path(args.output_dir) / "eval_results.json", _card_rows(recipe, metrics))
    # the final model and its card (with the results above); with training.push_to_hub, pushed too
    trainer.save_model(args.output_dir)
    return TrainResult(output_dir=args.output_dir, metrics=metrics, ranker=ranker)


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


# ----------------------------------------------------------------------------- BAR generations
def _with(recipe: Recipe, output_dir: Path, distill: DistillArgs | None) -> Recipe:
    """A copy of ``recipe`` writing to ``output_dir`` with ``distill`` (same model init, same seed)."""
    new = copy.copy(recipe)
    new.training = dataclasses.replace(recipe.training, output_dir=str(output_dir))
    new.distill = distill
    raw = copy.deepcopy(recipe.raw)
    raw.setdefault("training", {})["output_dir"] = str(output_dir)
    raw["distill"] = dataclasses.asdict(distill) if distill else None
    new.raw = raw
    return new


def _metric(metrics: dict[str, float], name: str, k: int) -> float | None:
    for key in (f"eval_{name}@{k}", f"{name}@{k}"):
        if key in metrics:
            return float(metrics[key])
    for key, value in metrics.items():  # MRR carries its relevance threshold: eval_mrr@10_rel1
        if key.removeprefix("eval_").startswith(f"{name}@{k}_rel"):
            return float(value)
    return None


def markdown_generations(rows: list[dict[str, Any]], k: int = 10) -> str:
    """The generations table (one row per generation)."""
    lines = [
        f"| generation | teacher | nDCG@{k} | MRR@{k} | seconds |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        lines.append(
            f"| {r['generation']} | {r['teacher'] or '(none: trained on labels)'} | {fmt(r[f'ndcg@{k}'])} | "
            f"{fmt(r[f'mrr@{k}'])} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


def run_generations(recipe: Recipe) -> list[dict[str, Any]]:
    """Train ``distill.generations = k`` born-again students in sequence (BAR).

    Generation 0 is the first teacher: ``distill.teacher`` when the recipe gives a single
    checkpoint (it is only evaluated), otherwise the recipe trained WITHOUT distillation into
    ``<output_dir>/gen-0``. Generation ``i >= 1`` is trained into ``<output_dir>/gen-<i>`` from the
    same initialisation (``model.model_name_or_path``) and seed, with generation ``i-1`` as its
    teacher and the recipe's ``alpha``/``transform``/``loss``. A generation whose folder already
    holds ``generation.json`` is reused, so an interrupted chain resumes. Validation nDCG@k /
    MRR@k of every generation are printed as a markdown table and written to
    ``<output_dir>/generations.json``; returns the rows."""
    d = recipe.distill
    if d is None:
        raise RecipeError("run_generations needs a distill: block")
    check_distill(d)
    if isinstance(d.teacher, list | tuple) and len(d.teacher) != 1:
        raise RecipeError("distill.generations > 1 takes one teacher checkpoint (or none), not an ensemble")
    if d.teacher_scores or getattr(d, "teacher_run", None):
        raise RecipeError(
            "distill.generations > 1 scores each generation itself; remove distill.teacher_scores / teacher_run"
        )
    root = Path(recipe.training.output_dir)
    k = int(recipe.training.eval_k)
    first = (d.teacher[0] if isinstance(d.teacher, list | tuple) else d.teacher) or None
    rows: list[dict[str, Any]] = []
    teacher: str | None = None
    for gen in range(int(d.generations) + 1):
        out = root / f"gen-{gen}"
        done = out / "generation.json"
        t0 = time.perf_counter()
        if done.exists():
            row = json.loads(done.read_text())
            logger.info("generation %d: reusing %s", gen, out)
        elif gen == 0 and first:
            teacher_fingerprint(str(first))
            metrics = _evaluate_checkpoint(recipe, str(first))
            row = _row(gen, None, str(first), metrics, k, time.perf_counter() - t0)
        else:
            student = None if gen == 0 else dataclasses.replace(d, teacher=teacher, teacher_scores=None, generations=1)
            result = run_training(_with(recipe, out, student))
            row = _row(gen, teacher, str(out), result.metrics, k, time.perf_counter() - t0)
            atomic_write_json(done, row)
        rows.append(row)
        teacher = row["output_dir"]
        logger.info("generation %d done: %s", gen, row)
    table = markdown_generations(rows, k)
    print(table, flush=True)
    atomic_write_json(root / "generations.json", {"k": k, "alpha": d.alpha, "loss": d.loss,
                                                  "transform": transform_settings(d), "generations": rows})
    atomic_write_text(root / "generations.md", table + "\n")
    return rows


def _row(gen: int, teacher: str | None, output_dir: str, metrics: dict[str, float], k: int,
         seconds: float) -> dict[str, Any]:
    return {
        "generation": gen,
        "teacher": teacher,
        "output_dir": output_dir,
        f"ndcg@{k}": _metric(metrics, "ndcg", k),
        f"mrr@{k}": _metric(metrics, "mrr", k),
        "seconds": round(seconds, 2),
    }


def _evaluate_checkpoint(recipe: Recipe, path: str) -> dict[str, float]:
    """Validation metrics of an existing checkpoint on the recipe's eval lists (gen-0 given)."""
    _, evals = load_lists(recipe)
    if not evals:
        return {}
    ranker = device_ranker(path)
    return evaluate_lists(ranker, evals, k=recipe.training.eval_k, batch_lists=recipe.training.eval_batch_lists)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # `datasets` announces optional backends at INFO on import ("JAX version ... available"): noise
    # that would turn a recipe error into several lines
    logging.getLogger("datasets").setLevel(logging.WARNING)
    try:
        recipe = recipe_from_argv(argv)
        if recipe.distill is not None and recipe.distill.generations > 1:
            run_generations(recipe)
        else:
            run_training(recipe)
    except (RecipeError, FileNotFoundError, ValueError) as exc:
        print(f"llmrank.train: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
