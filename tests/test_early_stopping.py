"""Early stopping and best-model selection through Trainer's own machinery (a tiny BERT, real data flow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from llmrank.config import RecipeError, load_recipe
from llmrank.train import run_training
from tests.test_training import _weights, bert_path, task_files  # noqa: F401  (fixtures)

PATIENCE = 2
EVAL_STEPS = 2


def _recipe(tmp_path: Path, bert: Path, data: Path, out: Path, drop_eval: bool = False, **training) -> Path:
    recipe = {
        "model": {"family": "cross-encoder", "model_name_or_path": str(bert), "max_length": 48, "query_max_length": 12},
        "data": {
            "train": {"format": "jsonl", "path": str(data / "train.jsonl")},
            "eval": {"format": "jsonl", "path": str(data / "test.jsonl")},
            "group_size": 6,
            "seed": 7,
        },
        "objective": [{"name": "softmax", "weight": 1.0}],
        "training": {
            "output_dir": str(out),
            # a learning rate high enough that validation nDCG stops improving well before max_steps
            "learning_rate": 5e-3,
            "per_device_train_batch_size": 4,
            "max_steps": 200,
            "lr_scheduler_type": "constant",
            "logging_steps": EVAL_STEPS,
            "eval_strategy": "steps",
            "eval_steps": EVAL_STEPS,
            "save_strategy": "steps",
            "save_steps": EVAL_STEPS,
            "save_total_limit": 2,
            "metric_for_best_model": "ndcg@10",
            "load_best_model_at_end": True,
            "early_stopping_patience": PATIENCE,
            "seed": 3,
            "use_cpu": True,
            "disable_tqdm": True,
            **training,
        },
    }
    if drop_eval:
        del recipe["data"]["eval"]
    path = tmp_path / f"recipe-{out.name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_patience_stops_early_and_loads_the_best_checkpoint(tmp_path, bert_path, task_files):  # noqa: F811
    out = tmp_path / "run"
    result = run_training(load_recipe(_recipe(tmp_path, bert_path, task_files, out)))
    curve = json.loads((out / "validation_curve.json").read_text())
    points = curve["points"]
    values = [p["value"] for p in points]
    assert curve["metric"] == "eval_ndcg@10"
    assert [p["step"] for p in points] == list(range(EVAL_STEPS, EVAL_STEPS * (len(points) + 1), EVAL_STEPS))
    # it stopped before max_steps, because the last PATIENCE validations did not beat the best before them
    assert curve["stopped_early"] and curve["global_step"] < 200 and curve["global_step"] == points[-1]["step"]
    best_before = max(values[:-PATIENCE])
    assert all(v <= best_before for v in values[-PATIENCE:])
    assert any(v < max(values) for v in values), "the curve must not be flat for this test to mean anything"
    # the best step is the first maximum of the curve, and Trainer kept and loaded that checkpoint
    best_index = values.index(max(values))
    assert curve["best_step"] == points[best_index]["step"]
    assert curve["best_metric"] == pytest.approx(max(values))
    assert Path(curve["best_model_checkpoint"]).name == f"checkpoint-{curve['best_step']}"
    # the final model is the best checkpoint: same weights, and its validation nDCG@10 is the curve's best
    assert result.metrics["eval_ndcg@10"] == pytest.approx(max(values), abs=1e-9)
    best, final = _weights(Path(curve["best_model_checkpoint"])), _weights(out)
    assert best.keys() == final.keys() and all(bool((best[k] == final[k]).all()) for k in best)


def test_load_best_model_defaults_to_validation_ndcg(tmp_path, bert_path, task_files):  # noqa: F811
    """Trainer's own default metric is eval_loss, which llmrank's validation does not log."""
    recipe = load_recipe(
        _recipe(tmp_path, bert_path, task_files, tmp_path / "r", metric_for_best_model=None, early_stopping_patience=None)
    )
    assert recipe.training.metric_for_best_model == "ndcg@10" and recipe.training.greater_is_better is True


@pytest.mark.parametrize(
    ("change", "drop_eval", "message"),
    [
        ({"metric_for_best_model": "loss"}, False, "not a validation metric; llmrank logs ndcg@10 and mrr@10_rel1"),
        ({"greater_is_better": False}, False, "greater_is_better = false"),
        ({"early_stopping_patience": 0}, False, "early_stopping_patience = 0 is invalid"),
        ({"eval_strategy": "no", "load_best_model_at_end": False, "save_strategy": "no"}, False, "eval_strategy"),
        ({}, True, "need validation lists; add data.eval"),
    ],
)
def test_bad_best_model_settings_are_refused(tmp_path, bert_path, task_files, change, drop_eval, message):  # noqa: F811
    out = tmp_path / "bad"
    with pytest.raises(RecipeError, match=message.replace("(", r"\(")) as info:
        load_recipe(_recipe(tmp_path, bert_path, task_files, out, drop_eval=drop_eval, **change))
    assert "\n" not in str(info.value)
    assert not out.exists()
