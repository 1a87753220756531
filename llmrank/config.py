"""Recipes: one YAML file per backbone x method, parsed into dataclasses.

A recipe has the sections ``model`` (:class:`~llmrank.rankers.base.RankerSettings`), ``lora``
(null = full fine-tune), ``data``, ``objective`` (a list of weighted loss terms), ``distill``
(BAR) and ``training`` (any :class:`transformers.TrainingArguments` field plus ours; the Hub push
is TrainingArguments' ``push_to_hub`` / ``hub_model_id`` / ``hub_strategy`` / ``hub_private_repo`` /
``hub_revision`` / ``hub_token``, see :mod:`llmrank.hub`).

Command-line overrides go on top: ``--config recipe.yaml --learning_rate=1e-4
--model.max_length=256 --data.group_size 8``. A bare key is a ``training`` field; other sections
take a dotted key. Unknown keys are errors that name the key and suggest the closest valid one
(silently ignored YAML keys are a known trap of recipe-driven trainers).
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from transformers import TrainingArguments

from llmrank.io_utils import atomic_write_text
from llmrank.metrics import mrr_key
from llmrank.rankers.base import LoraSettings, RankerSettings
from llmrank.suggest import did_you_mean

SECTIONS = ("model", "lora", "data", "objective", "distill", "training")
#: the one-line answer to a recipe that still has the old ``hub:`` section
HUB_MOVED = (
    "the `hub:` section is gone; push with the training keys training.push_to_hub: true, "
    "training.hub_model_id (was hub.repo_id), training.hub_strategy (end | every_save), "
    "training.hub_private_repo (was hub.private), training.hub_revision (was hub.revision); "
    "LoRA is merged by the default export (`llmrank push --format llmrank --merge-lora` for llmrank's layout)"
)


class RecipeError(ValueError):
    """A recipe or override the user must fix; the message says what and where."""


@dataclass
class DataArgs:
    """Where training/validation lists come from and how groups are sampled.

    ``train`` / ``eval`` are reader specs for :func:`llmrank.data.readers.load_source`
    (``{format: ..., path: ..., ...}``).
    """

    train: dict[str, Any] | None = None
    eval: dict[str, Any] | None = None
    group_size: int = 8
    positives_per_group: int = 1
    label_source: str = "labels"  # labels | binary | teacher
    seed: int = 42
    eval_top_k: int = 100
    eval_max_lists: int | None = None
    #: validation MRR counts a document as relevant when its label >= this. 1 (the default) suits
    #: binary qrels (MS MARCO dev, BEIR); TREC DL's convention is 2 (graded 0-3 qrels). The
    #: threshold is part of the logged key: ``eval_mrr@10_rel1`` / ``eval_mrr@10_rel2``.
    mrr_min_relevance: float = 1.0
    #: cascade-stage sampling instead of positives + negatives, e.g. {impression: 4, candidate: 8,
    #: random: 4, impression_depth: 20, corpus: corpus.jsonl} (llmrank.data.stages)
    stages: dict[str, Any] | None = None


@dataclass
class DistillArgs:
    """BAR born-again distillation (Qin et al., "Born Again Neural Rankers").

    Loss = (1-alpha) * objective(y, s) + alpha * distillation(g(t), s), g = ``transform``.
    ``teacher``: a checkpoint (scored on the fly and cached) or a list of checkpoints (ensemble,
    mean of transformed scores); ``teacher_scores``: a scored data file instead.
    """

    teacher: str | list[str] | None = None
    teacher_scores: str | None = None
    #: a TREC run file whose scores are the teacher's (e.g. a SPLADE or cross-encoder run), by qid/docid
    teacher_run: str | None = None
    alpha: float = 0.5
    transform: dict[str, Any] = field(default_factory=lambda: {"name": "affine_relu", "a": 1.0, "b": 0.0})
    loss: str = "listwise"  # listwise (BAR) | mse (pointwise ablation)
    generations: int = 1
    batch_size: int = 64


@dataclass
class RankingTrainingArguments(TrainingArguments):
    """``TrainingArguments`` with llmrank's defaults: keep our columns, no remote loggers."""

    remove_unused_columns: bool = False
    report_to: str | list[str] = "none"
    eval_k: int = field(default=10, metadata={"help": "cutoff of the validation nDCG/MRR"})
    eval_batch_lists: int = field(default=8, metadata={"help": "lists per forward in validation"})
    early_stopping_patience: int | None = field(
        default=None,
        metadata={
            "help": "stop after this many validations without improving metric_for_best_model "
            "(transformers.EarlyStoppingCallback); needs eval_strategy, a save strategy and data.eval"
        },
    )
    early_stopping_threshold: float = field(
        default=0.0, metadata={"help": "the least improvement of metric_for_best_model that resets the patience"}
    )
    head_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "learning rate of the parameters llmrank adds outside the pretrained backbone (e.g. the "
            "two-tower interaction head), which start from random and need a larger step than the backbone; "
            "None: learning_rate for all. Same schedule, warm-up and weight decay as the rest"
        },
    )
    #: llmrank pushes the model (in its family's standard layout) at the end, or after every save too
    hub_strategy: str = field(default="end", metadata={"help": "end | every_save (llmrank.hub)"})

    def __post_init__(self) -> None:
        # Trainer falls back to `eval_loss` when `load_best_model_at_end` has no metric, but our
        # validation reports ranking metrics only: pick the validation nDCG@k instead
        if self.load_best_model_at_end and self.metric_for_best_model is None:
            self.metric_for_best_model = f"ndcg@{self.eval_k}"
        super().__post_init__()


@dataclass
class Recipe:
    model: RankerSettings
    training: RankingTrainingArguments
    data: DataArgs = field(default_factory=DataArgs)
    objective: list[dict[str, Any]] = field(default_factory=lambda: [{"name": "softmax", "weight": 1.0}])
    lora: LoraSettings | None = None
    distill: DistillArgs | None = None
    source: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe (what was actually run), as plain data for ``recipe.yaml``."""
        out = dict(self.raw)
        out["model"] = {k: v for k, v in self.model.to_dict().items() if k != "lora"}
        out["lora"] = dataclasses.asdict(self.lora) if self.lora else None
        out["data"] = dataclasses.asdict(self.data)
        out["objective"] = self.objective
        out["distill"] = dataclasses.asdict(self.distill) if self.distill else None
        # a token given as training.hub_token is used, never written (recipe.yaml, model card)
        out["training"] = {k: v for k, v in self.raw.get("training", {}).items() if k != "hub_token"}
        return out

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))


# ----------------------------------------------------------------------------- parsing
def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def _check_keys(section: str, given: dict[str, Any], cls: type, where: str) -> None:
    valid = _fields(cls)
    for key in given:
        if key not in valid:
            raise RecipeError(f"{where}: unknown key {section}.{key}{did_you_mean(key, valid)}")


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Coerce YAML/CLI values to the field's type (YAML reads ``1e-4`` as a string)."""
    if value is None:
        return None
    if isinstance(annotation, str):
        annotation = {"int": int, "float": float, "bool": bool, "str": str}.get(annotation, Any)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        for arg in args:
            try:
                return _coerce(value, arg, key)
            except (TypeError, ValueError):
                continue
        return value
    try:
        if annotation is bool:
            if isinstance(value, str):
                if value.lower() in ("true", "1", "yes"):
                    return True
                if value.lower() in ("false", "0", "no"):
                    return False
                raise ValueError
            return bool(value)
        if annotation is int and not isinstance(value, bool):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if annotation is float and not isinstance(value, bool):
            return float(value)
    except (TypeError, ValueError):
        raise RecipeError(f"{key}: {value!r} is not a valid {annotation.__name__}") from None
    return value


def _typed(section: str, given: dict[str, Any], cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {k: _coerce(v, hints.get(k, Any), f"{section}.{k}") for k, v in given.items()}


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_overrides(argv: list[str]) -> tuple[str | None, dict[str, Any]]:
    """Split ``argv`` into the config path and ``{dotted.key: value}`` overrides."""
    config: str | None = None
    overrides: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config":
            if i + 1 >= len(argv):
                raise RecipeError("--config needs a path to a recipe YAML")
            config = argv[i + 1]
            i += 2
            continue
        if arg.startswith("--config="):
            config = arg.split("=", 1)[1]
        elif arg.startswith("--"):
            key = arg[2:]
            if "=" in key:
                key, value = key.split("=", 1)
            elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                value = argv[i + 1]
                i += 1
            else:
                value = "true"  # a bare flag
            if key in overrides:
                raise RecipeError(f"--{key} is given twice")
            overrides[key] = _parse_value(value)
        elif arg.endswith((".yaml", ".yml")) and config is None:
            config = arg  # a lone positional recipe works too
        else:
            raise RecipeError(f"unexpected argument {arg!r}; use --config recipe.yaml and --key=value overrides")
        i += 1
    return config, overrides


def _apply_override(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    if parts[0] not in SECTIONS:
        # a bare key belongs to `training`
        training_keys = _fields(RankingTrainingArguments)
        if len(parts) == 1 and parts[0] in training_keys:
            parts = ["training", parts[0]]
        else:
            dotted = [f"{s}.{k}" for s, cls in _SECTION_CLASSES.items() for k in _fields(cls)]
            raise RecipeError(
                f"override --{key}: unknown key{did_you_mean(key, list(training_keys) + dotted + list(SECTIONS))}"
            )
    node = raw
    for part in parts[:-1]:
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise RecipeError(f"override --{key}: {part} is not a mapping")
    node[parts[-1]] = value


_SECTION_CLASSES: dict[str, type] = {
    "model": RankerSettings,
    "lora": LoraSettings,
    "data": DataArgs,
    "distill": DistillArgs,
    "training": RankingTrainingArguments,
}


def load_recipe(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read a recipe YAML (``yaml.safe_load``), apply overrides, validate every key."""
    raw: dict[str, Any] = {}
    where = "overrides"
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise RecipeError(f"recipe {path} does not exist")
        if p.is_dir():
            raise RecipeError(f"recipe {path} is a directory; give the recipe's YAML file, e.g. {p}/recipe.yaml")
        where = str(p)
        try:
            raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError:
            raise RecipeError(f"{p}: not UTF-8 text; re-save the recipe as UTF-8") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f"{p}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(p)
            problem = getattr(exc, "problem", None) or str(exc)
            raise RecipeError(f"{at}: not valid YAML: {' '.join(str(problem).split())}") from None
        if not isinstance(raw, dict):
            raise RecipeError(f"{p}: a recipe is a mapping with sections {', '.join(SECTIONS)}")
    if "hub" in raw or any(key.split(".")[0] == "hub" for key in overrides or {}):
        raise RecipeError(f"{where}: {HUB_MOVED}")
    for key in raw:
        if key not in SECTIONS:
            raise RecipeError(f"{where}: unknown section {key!r}{did_you_mean(key, SECTIONS)}")
    for key, value in (overrides or {}).items():
        _apply_override(raw, key, value)
    return recipe_from_dict(raw, where=where, source=str(path) if path else None)


def recipe_from_dict(raw: dict[str, Any], where: str = "recipe", source: str | None = None) -> Recipe:
    model = dict(raw.get("model") or {})
    if "name_or_path" in model:  # friendly alias
        model["model_name_or_path"] = model.pop("name_or_path")
    _check_keys("model", {k: v for k, v in model.items() if k != "lora"}, RankerSettings, where)
    for required in ("family", "model_name_or_path"):
        if required not in model:
            raise RecipeError(f"{where}: model.{required} is required")
    lora_raw = raw.get("lora")
    lora = None
    if lora_raw:
        _check_keys("lora", lora_raw, LoraSettings, where)
        lora = LoraSettings(**_typed("lora", lora_raw, LoraSettings))
    model.pop("lora", None)
    settings = RankerSettings(**_typed("model", model, RankerSettings), lora=lora)

    data_raw = dict(raw.get("data") or {})
    _check_keys("data", data_raw, DataArgs, where)
    data = DataArgs(**_typed("data", data_raw, DataArgs))
    if data.label_source not in ("labels", "binary", "teacher"):
        raise RecipeError(f"{where}: data.label_source must be labels, binary or teacher, not {data.label_source!r}")

    objective = _objective_terms(raw.get("objective"), where)

    distill = None
    if raw.get("distill"):
        _check_keys("distill", raw["distill"], DistillArgs, where)
        distill = DistillArgs(**_typed("distill", raw["distill"], DistillArgs))
    if "hub" in raw:
        raise RecipeError(f"{where}: {HUB_MOVED}")

    training_raw = dict(raw.get("training") or {})
    _check_keys("training", training_raw, RankingTrainingArguments, where)
    training_raw.setdefault("output_dir", "outputs/llmrank")
    typed_training = _typed("training", training_raw, RankingTrainingArguments)
    _check_ranges(where, typed_training, _TRAINING_RANGES, "training")
    _check_ranges(where, dataclasses.asdict(data), _DATA_RANGES, "data")
    try:
        training = RankingTrainingArguments(**typed_training)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{where}: training: {' '.join(str(exc).split())}") from None
    _check_best_model(where, training, data)
    _check_hub(where, training)
    out = Path(training.output_dir)
    if out.exists() and not out.is_dir():
        raise RecipeError(f"{where}: training.output_dir {out} is a file; give a folder path")
    clean = dict(raw)
    clean["training"] = training_raw
    return Recipe(
        model=settings,
        training=training,
        data=data,
        objective=objective,
        lora=lora,
        distill=distill,
        source=source,
        raw=clean,
    )


def _objective_terms(objective: Any, where: str) -> list[dict[str, Any]]:
    """The ``objective`` section as a list of term dicts, with errors that name the term and key.

    Accepted: a list of ``{name, weight, ...params}`` terms, or the shorthand mapping
    ``{softmax: 1.0, ranknet: {weight: 0.5}}`` (loss name -> weight or term options)."""
    if objective is None or objective == []:
        return [{"name": "softmax", "weight": 1.0}]
    if isinstance(objective, dict):
        if "name" in objective or "weight" in objective:
            # one term written as a mapping: `objective: {name: softmax}` is not the shorthand form
            raise RecipeError(
                f"{where}: objective is a list of terms; write `objective: [{{name: "
                f"{objective.get('name', '...')}, weight: 1.0}}]` (a list, note the brackets)"
            )
        objective = [{"name": k, **(v if isinstance(v, dict) else {"weight": v})} for k, v in objective.items()]
    if not isinstance(objective, list):
        raise RecipeError(f"{where}: objective is a list of {{name: ..., weight: ...}} terms, not {objective!r}")
    for i, term in enumerate(objective):
        if not isinstance(term, dict) or "name" not in term:
            raise RecipeError(f"{where}: objective[{i}] is {term!r}; each term is a mapping like {{name: softmax}}")
        if not isinstance(term["name"], str):
            raise RecipeError(f"{where}: objective[{i}].name must be a loss name (a string), not {term['name']!r}")
        weight = term.get("weight", 1.0)
        if isinstance(weight, str):
            try:
                weight = float(weight)  # YAML reads `1e-1` as a string
            except ValueError:
                pass
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight != weight:
            raise RecipeError(f"{where}: objective[{i}].weight must be a number, not {term.get('weight')!r}")
        if "weight" in term:
            term["weight"] = float(weight)
    return objective


# (minimum, strictly greater?) for numeric settings that would otherwise fail deep inside
# training (torch's optimizer, the scheduler) after the output folder exists
_TRAINING_RANGES: dict[str, tuple[float, bool]] = {
    "learning_rate": (0.0, False),
    "head_learning_rate": (0.0, True),
    "weight_decay": (0.0, False),
    "per_device_train_batch_size": (1, False),
    "per_device_eval_batch_size": (1, False),
    "gradient_accumulation_steps": (1, False),
    "num_train_epochs": (0.0, True),
    "warmup_ratio": (0.0, False),
    "warmup_steps": (0, False),
    "logging_steps": (0.0, True),
    "save_steps": (0.0, True),
    "eval_steps": (0.0, True),
    "max_grad_norm": (0.0, False),
    "adam_epsilon": (0.0, False),
    "eval_k": (1, False),
    "eval_batch_lists": (1, False),
    "dataloader_num_workers": (0, False),
}
_DATA_RANGES: dict[str, tuple[float, bool]] = {
    "group_size": (1, False),
    "positives_per_group": (0, False),
    "eval_top_k": (1, False),
    "eval_max_lists": (1, False),
    "mrr_min_relevance": (0.0, True),
}


def _check_ranges(where: str, values: dict[str, Any], ranges: dict[str, tuple[float, bool]], section: str) -> None:
    for key, (low, strict) in ranges.items():
        value = values.get(key)
        if key == "num_train_epochs" and (values.get("max_steps") or -1) > 0:
            continue  # max_steps decides the length; epochs are not used
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if value != value or (value <= low if strict else value < low):
            bound = f"> {low}" if strict else f">= {low}"
            raise RecipeError(f"{where}: {section}.{key} = {value!r} is invalid; it must be {bound}")
    if section == "training" and (values.get("warmup_ratio") or 0) > 1:
        raise RecipeError(f"{where}: training.warmup_ratio = {values['warmup_ratio']!r} is invalid; it is a fraction in [0, 1]")


def _check_hub(where: str, training: RankingTrainingArguments) -> None:
    """The push settings llmrank can honour, checked before anything is trained or written."""
    strategy = str(getattr(training.hub_strategy, "value", training.hub_strategy))
    if strategy not in ("end", "every_save"):
        raise RecipeError(
            f"{where}: training.hub_strategy = {strategy!r} is not supported; llmrank pushes models, never "
            "trainer resume state: use end or every_save"
        )
    if training.push_to_hub and not training.hub_model_id:
        raise RecipeError(f"{where}: training.push_to_hub needs training.hub_model_id ('namespace/name', e.g. me/rankt5-base)")


def _check_best_model(where: str, training: RankingTrainingArguments, data: DataArgs) -> None:
    """Early stopping and best-model selection read the validation metrics: refuse settings that
    would fail at the first validation (a metric we never log) or never validate at all."""
    selects = training.load_best_model_at_end or training.early_stopping_patience is not None
    if not selects:
        return
    if training.early_stopping_patience is not None and training.early_stopping_patience < 1:
        raise RecipeError(
            f"{where}: training.early_stopping_patience = {training.early_stopping_patience} is invalid; it must be >= 1"
        )
    if not data.eval:
        raise RecipeError(
            f"{where}: training.early_stopping_patience / load_best_model_at_end need validation lists; "
            "add data.eval: {format: ..., path: ...}"
        )
    if str(training.eval_strategy) in ("no", "IntervalStrategy.NO"):
        raise RecipeError(
            f"{where}: training.early_stopping_patience / load_best_model_at_end need training.eval_strategy "
            "steps or epoch (and eval_steps)"
        )
    if training.early_stopping_patience is not None and training.metric_for_best_model is None:
        training.metric_for_best_model = f"ndcg@{training.eval_k}"
        training.greater_is_better = True
    logged = (f"ndcg@{training.eval_k}", mrr_key(training.eval_k, data.mrr_min_relevance))
    metric = str(training.metric_for_best_model).removeprefix("eval_")
    if metric not in logged:
        raise RecipeError(
            f"{where}: training.metric_for_best_model = {training.metric_for_best_model!r} is not a validation "
            f"metric; llmrank logs {' and '.join(logged)} (eval_k = {training.eval_k})"
        )
    if training.greater_is_better is False:
        raise RecipeError(
            f"{where}: training.greater_is_better = false, but {metric} is better when higher; drop the key"
        )


def recipe_from_argv(argv: list[str] | None = None) -> Recipe:
    config, overrides = parse_overrides(list(sys.argv[1:] if argv is None else argv))
    if config is None:
        raise RecipeError("no recipe given: use --config recipes/<backbone>/<method>.yaml")
    return load_recipe(config, overrides)
