"""RankingTrainer: ``transformers.Trainer`` with a ranking objective.

Trainer keeps doing what it does well (schedules, accumulation, mixed precision, DDP / FSDP /
DeepSpeed through Accelerate, checkpoints and resume, logging); we override only
``compute_loss`` (the recipe's :class:`~llmrank.losses.Objective` over the ranker's ``[B, n]``
scores), ``evaluate`` (nDCG@k / MRR@k on held-out lists) and the save/load hooks (our checkpoint
layout: adapter or backbone + score head + tokenizer + resolved recipe + model card); the Hub push
hooks come from :class:`~llmrank.hub.HubPushMixin` (``TrainingArguments.push_to_hub`` & co).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback

from llmrank.data.record import RankingList
from llmrank.hub import HubPushMixin, args_without_token
from llmrank.io_utils import atomic_write_json
from llmrank.metrics import mrr_at_k, mrr_key, ndcg_at_k
from llmrank.model_card import write_model_card
from llmrank.rankers.base import ADAPTER_DIR, BACKBONE_DIR, CONFIG_NAME, TARGET_KEYS, Ranker

logger = logging.getLogger(__name__)


class EpochSampler(torch.utils.data.Sampler[int]):
    """A random order of the lists that depends only on (seed, epoch).

    Trainer's default sampler draws its seed from the global RNG at a moment that differs
    between one process and several, so a 2-process run would see other batches than a
    1-process run with the same global batch. Seeding from (seed, epoch) makes the order the
    same for any process count and after resuming in any epoch.
    """

    def __init__(self, num_items: int, seed: int) -> None:
        self.num_items = num_items
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):  # noqa: ANN204
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.num_items, generator=generator).tolist())

    def __len__(self) -> int:
        return self.num_items


class _EpochSetter(TrainerCallback):
    """Tell the group sampler and the list order which epoch it is (new negatives each epoch)."""

    def __init__(self, *targets: Any) -> None:
        self.targets = targets

    def on_epoch_begin(self, args, state, control, **kwargs):  # noqa: ANN001
        epoch = int(state.epoch or 0)
        for target in self.targets:
            if hasattr(target, "set_epoch"):
                target.set_epoch(epoch)


class RankingTrainer(HubPushMixin, Trainer):
    """Train any :class:`~llmrank.rankers.base.Ranker` with any :class:`~llmrank.losses.Objective`."""

    def __init__(
        self,
        model: Ranker,
        args: Any,
        objective: Any,
        train_dataset: Any = None,
        eval_lists: Sequence[RankingList] | None = None,
        recipe: Any = None,
        **kwargs: Any,
    ) -> None:
        self.objective = objective
        self.eval_lists = list(eval_lists) if eval_lists else None
        self.recipe = recipe
        self._term_sums: dict[str, float] = defaultdict(float)
        self._term_count = 0
        super().__init__(
            model=model,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=self.eval_lists,
            data_collator=model.collate,
            **kwargs,
        )
        self._sampler = None
        if train_dataset is not None:
            seed = args.data_seed if args.data_seed is not None else args.seed
            self._sampler = EpochSampler(len(train_dataset), seed)
            self.add_callback(_EpochSetter(train_dataset, self._sampler))

    def _get_train_sampler(self, train_dataset=None):  # noqa: ANN001
        return self._sampler if self._sampler is not None else super()._get_train_sampler(train_dataset)

    def create_optimizer(self, model=None):  # noqa: ANN001, ANN201
        """Trainer's optimizer; with ``head_learning_rate`` each of its parameter groups is split into
        the backbone part (``learning_rate``) and the head part (``head_learning_rate``), keeping the
        group's weight decay. The scheduler, built afterwards, scales both groups alike."""
        fresh = self.optimizer is None
        optimizer = super().create_optimizer(model)
        head_lr = getattr(self.args, "head_learning_rate", None)
        if not fresh or head_lr is None:
            return optimizer
        opt_model = self.model if model is None else model
        head = {id(p) for n, p in opt_model.named_parameters() if not n.startswith("backbone.")}
        if not head:
            raise ValueError(
                f"training.head_learning_rate = {head_lr} but the {getattr(opt_model, 'family', 'model')} ranker "
                "has no parameters outside its backbone; remove head_learning_rate"
            )
        for group in list(optimizer.param_groups):
            moved = [p for p in group["params"] if id(p) in head]
            if moved:
                group["params"] = [p for p in group["params"] if id(p) not in head]
                optimizer.add_param_group({**{k: v for k, v in group.items() if k != "params"}, "params": moved, "lr": head_lr})
        optimizer.param_groups[:] = [g for g in optimizer.param_groups if g["params"]]
        return optimizer

    # ----------------------------------------------------------------------------- loss
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
        targets = {k: inputs.pop(k) for k in TARGET_KEYS if k in inputs}
        outputs = model(**inputs)
        loss, terms = self.objective(outputs, targets)
        if model.training:
            for name, value in terms.items():
                self._term_sums[name] += float(value)
            self._term_count += 1
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # report each objective term (averaged since the last log) next to Trainer's loss
        if "loss" in logs and self._term_count:
            for name, total in self._term_sums.items():
                logs[f"loss/{name}"] = round(total / self._term_count, 6)
            self._term_sums.clear()
            self._term_count = 0
        super().log(logs, start_time)

    # ----------------------------------------------------------------------------- validation
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:  # noqa: ANN001
        lists = list(eval_dataset) if eval_dataset is not None else self.eval_lists
        if not lists:
            return {}
        metrics = evaluate_lists(
            self.accelerator.unwrap_model(self.model),
            lists,
            k=self.args.eval_k,
            batch_lists=self.args.eval_batch_lists,
            accelerator=self.accelerator,
            mrr_min_relevance=self.recipe.data.mrr_min_relevance if self.recipe is not None else 1.0,
        )
        metrics = {f"{metric_key_prefix}_{name}": value for name, value in metrics.items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    # ----------------------------------------------------------------------------- save / load
    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir or self.args.output_dir
        if not self.args.should_save:
            return
        ranker: Ranker = self.accelerator.unwrap_model(self.model)
        ranker.save_pretrained(output_dir, state_dict=state_dict)
        torch.save(args_without_token(self.args), os.path.join(output_dir, "training_args.bin"))
        if self.recipe is not None:
            self.recipe.save(Path(output_dir) / "recipe.yaml")
        write_model_card(output_dir, recipe=self.recipe, repo_id=self.args.hub_model_id)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:  # noqa: ANN001
        ranker = self.accelerator.unwrap_model(model if model is not None else self.model)
        logger.info("Loading ranker weights from %s", resume_from_checkpoint)
        ranker.load_trained_weights(resume_from_checkpoint)

    def _load_best_model(self) -> None:
        self._load_from_checkpoint(self.state.best_model_checkpoint)


# ----------------------------------------------------------------------------- resume
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
STALE_SAVE_PREFIX = ".tmp-save-"


def checkpoint_problem(folder: str | os.PathLike) -> str | None:
    """Why ``folder`` is not a complete checkpoint, or None when it is.

    Trainer writes a checkpoint in steps (model, optimizer, RNG, then ``trainer_state.json``
    last), so a kill during a save leaves a ``checkpoint-N`` without a readable trainer state or
    without the model files; resuming from it would fail or, worse, start from the wrong weights."""
    path = Path(folder)
    state = path / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "trainer_state.json is truncated or unreadable"
    if not (path / CONFIG_NAME).is_file():
        return f"no {CONFIG_NAME}"
    if not ((path / ADAPTER_DIR).is_dir() or (path / BACKBONE_DIR).is_dir()):
        return f"no model files ({ADAPTER_DIR}/ or {BACKBONE_DIR}/)"
    return None


def latest_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest ``checkpoint-N`` of ``output_dir`` that is complete (see :func:`checkpoint_problem`);
    newer incomplete ones (a save killed midway) are skipped with a warning naming each."""
    folder = Path(output_dir)
    found = []
    for child in folder.iterdir() if folder.is_dir() else ():
        match = _CHECKPOINT.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    for _, child in sorted(found, reverse=True):
        problem = checkpoint_problem(child)
        if problem is None:
            return str(child)
        logger.warning("skipping incomplete checkpoint %s (%s; a save was interrupted)", child, problem)
    return None


def clean_stale_saves(output_dir: str | os.PathLike) -> list[str]:
    """Remove ``.tmp-save-*`` folders that a killed save left in ``output_dir``; returns them.
    Call only before training starts (no save of this run can be in progress then)."""
    removed = []
    folder = Path(output_dir)
    for child in folder.iterdir() if folder.is_dir() else ():
        if child.name.startswith(STALE_SAVE_PREFIX) and child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
            removed.append(str(child))
            logger.warning("removed %s, left by an interrupted save", child)
    return removed


@torch.no_grad()
def evaluate_lists(
    ranker: Ranker,
    lists: Sequence[RankingList],
    k: int = 10,
    batch_lists: int = 8,
    accelerator: Any = None,
    mrr_min_relevance: float = 1.0,
) -> dict[str, float]:
    """nDCG@k and MRR@k of ``ranker`` over ``lists``; split across processes if any.

    MRR counts a document as relevant when its label >= ``mrr_min_relevance`` (1 for binary
    qrels; TREC DL's convention is 2), and the key says which: ``mrr@10_rel2``."""
    was_training = ranker.training
    ranker.eval()
    shard = list(lists)
    world = accelerator.num_processes if accelerator is not None else 1
    if world > 1:
        shard = shard[accelerator.process_index :: world]
    per_list: list[tuple[float, float]] = []
    for lst, scores in zip(shard, ranker.score_lists(shard, batch_size=batch_lists)):
        s = torch.tensor([scores], dtype=torch.float64)
        y = torch.tensor([lst.labels], dtype=torch.float64)
        rr = mrr_at_k(s, y, k=k, rel=mrr_min_relevance)
        per_list.append((float(ndcg_at_k(s, y, k=k)[0]), float(rr[0])))
    if world > 1:
        from accelerate.utils import gather_object  # several processes only (accelerate launch)

        per_list = gather_object(per_list)
    if was_training:
        ranker.train()
    n = max(1, len(per_list))
    return {
        f"ndcg@{k}": sum(p[0] for p in per_list) / n,
        mrr_key(k, mrr_min_relevance): sum(p[1] for p in per_list) / n,
    }


# ----------------------------------------------------------------------------- validation curve
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
    """:func:`validation_curve` as JSON at ``path`` (atomically)."""
    atomic_write_json(path, validation_curve(state, args))
