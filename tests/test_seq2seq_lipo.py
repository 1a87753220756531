"""LiPO-λ on monoT5 (tiny T5, real PEFT): the policy log-probabilities are the monoT5 scores
``log p(true | q, d)``; the reference is the same model with its LoRA adapters disabled (as FIRST
does), or a frozen copy of the base model under full fine-tuning. RankT5's logit is no
log-probability, so LiPO-λ on it is refused when the objective is built."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from llmrank.config import RecipeError, load_recipe
from llmrank.data.readers import write_lists_jsonl
from llmrank.data.record import Doc, RankingList
from llmrank.data.synthetic import make_synthetic_task
from llmrank.losses import Objective, lipo_lambda_loss, lipo_scores
from llmrank.rankers.base import TARGET_KEYS, LoraSettings, RankerSettings, family_class
from llmrank.train import build_objective, run_training

LISTS = [
    RankingList("q1", "what is a cat", [Doc("a", "a cat is a small animal"), Doc("b", "stocks fell"),
                                        Doc("c", "cats purr")], [2.0, 0.0, 1.0]),  # fmt: skip
    RankingList("q2", "rain", [Doc("d", "rain falls from clouds"), Doc("e", "a dog barks")], [1.0, 0.0]),
]


def _monot5(path: str, lora: bool):
    settings = RankerSettings(
        family="seq2seq", model_name_or_path=path, max_length=64, options={"mode": "monot5"},
        lora=LoraSettings(r=2, alpha=4, dropout=0.0) if lora else None,
    )  # fmt: skip
    ranker = family_class("seq2seq").build(settings)
    ranker.compute_reference = True
    return ranker


def _forward(ranker):
    batch = ranker.collate(LISTS)
    targets = {k: batch.pop(k) for k in TARGET_KEYS if k in batch}
    return ranker(**batch), targets


def _base_scores(path: str) -> torch.Tensor:
    base = family_class("seq2seq").build(
        RankerSettings(family="seq2seq", model_name_or_path=path, max_length=64, options={"mode": "monot5"})
    )
    base.eval()
    with torch.no_grad():
        batch = base.collate(LISTS)
        for k in TARGET_KEYS:
            batch.pop(k, None)
        return base(**batch).scores


@pytest.mark.parametrize("lora", [True, False], ids=["lora-disabled-adapters", "full-ft-frozen-copy"])
def test_monot5_policy_and_reference_logprobs(tiny_t5: str, lora: bool) -> None:
    ranker = _monot5(tiny_t5, lora)
    ranker.train()
    out, targets = _forward(ranker)
    mask = targets["list_mask"]
    # policy: the monoT5 scores, real log-probabilities (<= 0, log p(true) + log p(false) over {true, false})
    assert torch.equal(out.logprobs, out.scores)
    assert bool((out.logprobs[mask] < 0).all())
    # at the start the policy is the reference (LoRA B = 0 / the same weights)
    torch.testing.assert_close(out.ref_logprobs, out.logprobs.detach(), atol=1e-5, rtol=1e-5)
    # move the policy: the reference stays the base model
    with torch.no_grad():
        for name, p in ranker.named_parameters():
            if p.requires_grad and ("lora_B" in name or not lora):
                p.add_(0.05 * torch.randn_like(p))
    out, targets = _forward(ranker)
    base = _base_scores(tiny_t5)
    torch.testing.assert_close(out.ref_logprobs[mask], base[mask], atol=1e-5, rtol=1e-5)
    assert (out.logprobs[mask] - base[mask]).abs().max() > 1e-3
    assert out.ref_logprobs.grad_fn is None  # the reference carries no gradient
    # the objective scores LiPO-λ on β·(log π − log π_ref), not on the raw scores
    total, _ = Objective([{"name": "lipo_lambda", "beta": 0.5}])(out, targets)
    expected = lipo_lambda_loss(lipo_scores(out.logprobs, out.ref_logprobs, 0.5), targets["labels"], mask=mask)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in ranker.parameters() if p.requires_grad)


def _recipe(tmp_path: Path, t5: str, mode: str) -> Path:
    task = make_synthetic_task(num_queries=12, docs_per_query=12, seed=2)
    write_lists_jsonl(task.train, tmp_path / "train.jsonl")
    recipe = {
        "model": {"family": "seq2seq", "model_name_or_path": t5, "max_length": 64, "options": {"mode": mode}},
        "lora": {"r": 2, "alpha": 4, "dropout": 0.0},
        "data": {"train": {"format": "jsonl", "path": str(tmp_path / "train.jsonl")}, "group_size": 4},
        "objective": [{"name": "lipo_lambda", "weight": 1.0, "beta": 0.5}],
        "training": {"output_dir": str(tmp_path / "out"), "max_steps": 2, "per_device_train_batch_size": 2,
                     "learning_rate": 1e-2, "logging_steps": 1, "save_strategy": "no", "use_cpu": True,
                     "disable_tqdm": True},
    }  # fmt: skip
    path = tmp_path / f"{mode}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_lipo_recipe_on_monot5_trains(tiny_t5: str, tmp_path: Path) -> None:
    result = run_training(load_recipe(_recipe(tmp_path, tiny_t5, "monot5")))
    assert (tmp_path / "out" / "adapter").is_dir()
    assert result.ranker.compute_reference


def test_lipo_on_rankt5_is_refused_at_build_time(tiny_t5: str, tmp_path: Path) -> None:
    recipe = load_recipe(_recipe(tmp_path, tiny_t5, "rankt5"))
    with pytest.raises(RecipeError, match=r"mode 'rankt5'.*`lambdarank`"):
        build_objective(recipe)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("path", sorted(Path(__file__).resolve().parents[1].glob("recipes/*/lipo-lambda.yaml")))
def test_shipped_lipo_recipes_use_a_family_with_a_reference(path: Path) -> None:
    """Every shipped LiPO-λ recipe builds its objective (a family/mode with log-probabilities)."""
    raw = yaml.safe_load(path.read_text())
    cpu = {} if torch.cuda.is_available() else {k: False for k in ("bf16", "fp16") if raw["training"].get(k)}
    recipe = load_recipe(path, cpu)
    assert recipe.model.options["mode"] == "monot5"
    assert build_objective(recipe).needs_logprobs
