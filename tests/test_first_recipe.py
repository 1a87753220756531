"""FIRST through the real training entry point (``llmrank.train``): the demo recipe with each
objective FIRST's paper and issue name (LM + 10 x weighted RankNet, LM only, softmax, lambda, and
LiPO-λ against the frozen base via disabled LoRA adapters), saved and reloaded."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llmrank.config import load_recipe
from llmrank.data.record import Doc, RankingList
from llmrank.loading import load_ranker
from llmrank.train import run_training

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "demo" / "tiny-first.yaml"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_models import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def _recipe(tiny: Path, out: Path, objective: list[dict], **extra: object):
    overrides = {
        "model.model_name_or_path": str(tiny),
        "data.train.num_queries": 8,
        "data.eval.num_queries": 4,
        "training.output_dir": str(out),
        "training.max_steps": 2,
        "training.logging_steps": 1,
        "training.per_device_train_batch_size": 2,
        "objective": objective,
        **extra,
    }
    return load_recipe(RECIPE, overrides)


OBJECTIVES = {
    "first": [{"name": "lm", "weight": 1.0}, {"name": "first_ranknet", "weight": 10.0}],
    "lm": [{"name": "lm", "weight": 1.0}],
    "softmax": [{"name": "softmax", "weight": 1.0}],
    "lambda": [{"name": "lambdaloss", "weight": 1.0}],
}


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_first_recipe_trains_saves_and_reloads(tiny: Path, tmp_path: Path, name: str) -> None:
    recipe = _recipe(tiny, tmp_path / name, OBJECTIVES[name])
    result = run_training(recipe)
    assert (tmp_path / name / "recipe.yaml").exists() and (tmp_path / name / "llmrank_config.json").exists()
    assert "eval_ndcg@10" in result.metrics or any(k.endswith("ndcg@10") for k in result.metrics)
    reloaded = load_ranker(tmp_path / name)
    lists = [RankingList("q", "gold", [Doc(str(i), f"passage {i} gold" * (i % 2)) for i in range(5)], [0, 1, 0, 1, 0])]
    assert reloaded.score_lists(lists) == result.ranker.score_lists(lists)


def test_first_lipo_with_lora_uses_disabled_adapters_as_reference(tiny: Path, tmp_path: Path) -> None:
    """LiPO-λ on first-token scores s_i = β(log p_θ(id_i) − log p_ref(id_i)), the reference being the
    same model with its adapters disabled; LoRA + gradient checkpointing through llmrank.train."""
    recipe = _recipe(
        tiny, tmp_path / "lipo", [{"name": "lipo_lambda", "weight": 1.0, "beta": 0.5}],
        lora={"r": 4, "alpha": 8, "dropout": 0.0}, **{"training.gradient_checkpointing": True,
                                                     "training.learning_rate": 5e-2},
    )  # fmt: skip
    result = run_training(recipe)
    ranker = result.ranker
    assert ranker.is_peft and ranker.compute_reference
    assert ranker.backbone.is_activation_checkpointing  # the Trainer's switch reached the backbone
    lists = [RankingList("q", "gold", [Doc(str(i), f"passage {i}") for i in range(4)], [1, 0, 2, 0])]
    batch = ranker.collate(lists)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "first_pos", "num_docs")}
    ranker.eval()
    with torch.no_grad():
        out = ranker(**inputs)
    # trained adapters move the policy away from the frozen base; the reference is the base itself
    assert not torch.allclose(out.logprobs, out.ref_logprobs)
    from llmrank.rankers.base import RankerSettings
    from llmrank.rankers.first import FirstRanker

    base = FirstRanker.build(RankerSettings(family="first", model_name_or_path=str(tiny), max_length=1024)).eval()
    with torch.no_grad():
        ref = base(**inputs).logprobs
    assert torch.allclose(out.ref_logprobs, ref, atol=1e-5)
    assert (tmp_path / "lipo" / "adapter").exists()


@pytest.mark.slow
def test_first_ddp_two_processes_equal_one(tiny: Path, tmp_path: Path) -> None:
    """FIRST under ``accelerate launch``: two gloo processes with per-device batch 2 end with the
    same weights as one process with batch 4 (SGD, so the update is linear in the gradient).

    10 synthetic queries give 8 training lists, two full global batches. With a partial last batch
    (8 queries -> 6 lists) Accelerate's ``even_batches`` makes the second process repeat two lists
    of the epoch in the last step, so the runs differ by design; ``llmrank.train`` warns about it."""
    import os
    import subprocess
    import sys

    import yaml
    from safetensors.torch import load_file

    root = Path(__file__).resolve().parents[1]
    raw = yaml.safe_load(RECIPE.read_text())
    raw["model"]["model_name_or_path"] = str(tiny)
    raw["data"]["train"]["num_queries"] = 10  # -> 8 training lists
    raw["data"].pop("eval", None)
    raw["training"].update({"max_steps": 2, "logging_steps": 1, "optim": "sgd", "learning_rate": 0.5,
                            "lr_scheduler_type": "constant", "warmup_steps": 0})  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    base = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no"]  # fmt: skip
    outs = {}
    for procs, per_device, port in ((1, 4, "29518"), (2, 2, "29519")):
        out = tmp_path / f"p{procs}"
        recipe = tmp_path / f"p{procs}.yaml"
        recipe.write_text(yaml.safe_dump({**raw, "training": {**raw["training"], "output_dir": str(out)}}))
        launch = [*base, "--num_processes", str(procs)] + (["--multi_gpu", "--main_process_port", port] if procs > 1 else [])
        proc = subprocess.run([*launch, "-m", "llmrank.train", "--config", str(recipe),
                               f"--per_device_train_batch_size={per_device}"],
                              env=env, cwd=root, capture_output=True, text=True)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        outs[procs] = load_file(str(out / "backbone" / "model.safetensors"))
    assert outs[1].keys() == outs[2].keys()
    base_weights = load_file(str(tiny / "model.safetensors"))
    assert any(not torch.equal(outs[2][k], base_weights[k]) for k in outs[2] if k in base_weights)  # it trained
    worst = max(((outs[1][k] - outs[2][k]).abs().max().item(), k) for k in outs[1])
    assert worst[0] < 1e-5, f"2-process weights differ from 1-process: {worst[1]} by {worst[0]:.3g}"


def test_uneven_last_batch_under_several_processes_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    from types import SimpleNamespace

    from llmrank.train import _warn_uneven_last_batch

    args = SimpleNamespace(world_size=2, per_device_train_batch_size=2, dataloader_drop_last=False)
    with caplog.at_level("WARNING", logger="llmrank.train"):
        _warn_uneven_last_batch(8, args)  # two full global batches of 4
        _warn_uneven_last_batch(6, SimpleNamespace(**{**vars(args), "world_size": 1}))  # one process: no repeats
        assert not caplog.records
        _warn_uneven_last_batch(6, args)
    assert "repeats 2 lists" in caplog.text and "dataloader_drop_last" in caplog.text


def test_first_trains_on_whole_windows_in_their_given_order(tiny: Path) -> None:
    """A FIRST training example is the whole window, unsampled and in the data's order: a window
    shorter than data.group_size is not padded with duplicate passages, the passage order is the
    same every epoch, and the teacher ranks are one permutation of the window's own passages."""
    from llmrank.data.sampling import GroupDataset, WindowDataset
    from llmrank.rankers import family_class
    from llmrank.train import training_dataset

    recipe = load_recipe(RECIPE, {"model.model_name_or_path": str(tiny), "data.group_size": 6,
                                  "data.positives_per_group": 0})  # fmt: skip
    windows = [
        RankingList("q1", "gold", [Doc(f"a{i}", f"passage {i}") for i in range(3)], [3.0, 1.0, 2.0]),
        RankingList("q2", "gold", [Doc(f"b{i}", f"text {i}") for i in range(5)], [0.0, 4.0, 3.0, 2.0, 1.0]),
    ]
    dataset = training_dataset(recipe, windows)
    assert isinstance(dataset, WindowDataset)
    for epoch in (0, 1, 2):
        dataset.set_epoch(epoch)
        for i, window in enumerate(windows):
            item = dataset[i]
            assert [d.docid for d in item.docs] == [d.docid for d in window.docs]  # all, once, in order
            assert item.labels == window.labels
    ranker = family_class("first").build(recipe.model)
    batch = ranker.collate([dataset[0], dataset[1]])
    assert batch["list_mask"].sum(-1).tolist() == [3, 5]
    assert sorted(batch["teacher_ranks"][0, :3].tolist()) == [1, 2, 3]
    assert sorted(batch["teacher_ranks"][1, :5].tolist()) == [1, 2, 3, 4, 5]
    # what the pointwise sampler did to the same windows: duplicates of a 3-passage window
    padded = GroupDataset(windows, group_size=5, positives_per_group=0, seed=42)[0]
    assert len(padded) == 5 and len({d.docid for d in padded.docs}) == 3


def test_first_windows_longer_than_the_identifiers_fail_before_training(tiny: Path) -> None:
    from llmrank.config import RecipeError
    from llmrank.rankers.first import MAX_WINDOW
    from llmrank.train import training_dataset

    recipe = load_recipe(RECIPE, {"model.model_name_or_path": str(tiny)})
    long = RankingList("q", "x", [Doc(str(i), "p") for i in range(MAX_WINDOW + 1)], [0.0] * (MAX_WINDOW + 1))
    with pytest.raises((ValueError, RecipeError), match=f"more than {MAX_WINDOW} passages"):
        training_dataset(recipe, [long])


def test_first_ranknet_pair_reduction_through_the_recipe(tiny: Path, tmp_path: Path) -> None:
    """``{name: first_ranknet, reduction: pairs}`` (FIRST's mean over all pairs of the batch) trains."""
    recipe = _recipe(tiny, tmp_path / "pairs", [{"name": "lm", "weight": 1.0},
                                               {"name": "first_ranknet", "weight": 10.0, "reduction": "pairs"}])  # fmt: skip
    result = run_training(recipe)
    assert (tmp_path / "pairs" / "llmrank_config.json").exists() and result.metrics
