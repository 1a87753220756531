"""Recipes: YAML -> dataclasses, overrides, unknown keys, and every shipped recipe parses."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from llmrank.config import RecipeError, load_recipe, parse_overrides, recipe_from_argv

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted(p for p in (ROOT / "recipes").rglob("*.yaml") if "accelerate" not in p.parts)


def _write(tmp_path: Path, obj: dict) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(obj))
    return path


BASE = {
    "model": {"family": "cross-encoder", "model_name_or_path": "some/model"},
    "training": {"output_dir": "out", "learning_rate": "1e-4"},
}


def test_overrides_and_types(tmp_path):
    path = _write(tmp_path, BASE)
    recipe = recipe_from_argv(
        ["--config", str(path), "--learning_rate=3e-5", "--model.max_length", "128", "--data.group_size=4"]
    )
    assert recipe.training.learning_rate == pytest.approx(3e-5)
    assert recipe.model.max_length == 128
    assert recipe.data.group_size == 4
    # YAML reads 1e-4 as a string; the recipe coerces it to the field's type
    assert load_recipe(path).training.learning_rate == pytest.approx(1e-4)


def test_positional_yaml_works(tmp_path):
    path = _write(tmp_path, BASE)
    config, overrides = parse_overrides([str(path), "--seed=3"])
    assert config == str(path) and overrides == {"seed": 3}


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"learning_rat": 1}, "learning_rate"),
        ({"model.max_lenght": 1}, "max_length"),
        ({"data.grup_size": 1}, "group_size"),
    ],
)
def test_unknown_override_suggests(tmp_path, override, expected):
    path = _write(tmp_path, BASE)
    with pytest.raises(RecipeError, match=expected):
        load_recipe(path, override)


def test_unknown_yaml_key_and_section(tmp_path):
    with pytest.raises(RecipeError, match="did you mean 'training'"):
        load_recipe(_write(tmp_path, {**BASE, "trainig": {}}))
    bad = {**BASE, "lora": {"rank": 8}}
    with pytest.raises(RecipeError, match="lora.rank"):
        load_recipe(_write(tmp_path, bad))


def test_bad_value_type(tmp_path):
    with pytest.raises(RecipeError, match="max_length"):
        load_recipe(_write(tmp_path, BASE), {"model.max_length": "long"})


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "nope.yaml")


def test_resolved_recipe_roundtrip(tmp_path):
    recipe = load_recipe(_write(tmp_path, BASE), {"data.group_size": 5})
    recipe.save(tmp_path / "resolved.yaml")
    again = load_recipe(tmp_path / "resolved.yaml")
    assert again.data.group_size == 5
    assert again.model.model_name_or_path == "some/model"


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(ROOT / "recipes")))
def test_every_shipped_recipe_parses(path):
    """Each recipe builds its objective and data config (no model download)."""
    from llmrank.train import build_objective

    raw = yaml.safe_load(path.read_text())
    # bf16/fp16 recipes are for GPUs; TrainingArguments refuses them on a CPU-only machine
    cpu = {} if torch.cuda.is_available() else {k: False for k in ("bf16", "fp16") if raw["training"].get(k)}
    recipe = load_recipe(path, cpu)
    objective = build_objective(recipe)
    assert objective.needs, path
    assert recipe.data.train, f"{path}: data.train missing"
    assert recipe.data.train.get("format"), f"{path}: data.train.format missing"
