"""The trainer end to end on real components: tiny models, real PEFT, real Accelerate processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from llmrank.config import load_recipe
from llmrank.data.readers import write_lists_jsonl
from llmrank.data.synthetic import make_synthetic_task
from llmrank.train import run_training
from tests.tiny_models import make_tiny_bert

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def task_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    task = make_synthetic_task(num_queries=64, docs_per_query=16, seed=1)
    write_lists_jsonl(task.train, folder / "train.jsonl")
    write_lists_jsonl(task.test, folder / "test.jsonl")
    return folder


@pytest.fixture(scope="module")
def bert_path(tmp_path_factory):
    path = make_tiny_bert(tmp_path_factory.mktemp("bert"))
    # no dropout: its random masks would differ between one and two processes
    config = json.loads((path / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (path / "config.json").write_text(json.dumps(config))
    return path


def _recipe(tmp_path: Path, bert: Path, data: Path, out: Path, **training) -> Path:
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
            "learning_rate": 1e-3,
            "per_device_train_batch_size": 4,
            "max_steps": 6,
            "lr_scheduler_type": "linear",
            "logging_steps": 2,
            "save_strategy": "no",
            "seed": 3,
            "use_cpu": True,
            "disable_tqdm": True,
            **training,
        },
    }
    path = tmp_path / f"recipe-{out.name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    sd = load_file(str(folder / "backbone" / "model.safetensors"))
    sd.update({f"head.{k}": v for k, v in load_file(str(folder / "head.safetensors")).items()})
    return sd


def _assert_same(a: dict, b: dict, atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=atol, rtol=1e-5, msg=f"parameter {key} differs")


def test_training_writes_checkpoint_and_logs_terms(tmp_path, bert_path, task_files):
    out = tmp_path / "run"
    recipe = load_recipe(_recipe(tmp_path, bert_path, task_files, out, max_steps=4))
    result = run_training(recipe)
    for name in ("llmrank_config.json", "backbone", "head.safetensors", "tokenizer", "recipe.yaml", "eval_results.json"):
        assert (out / name).exists(), name
    # the MRR key names its relevance threshold (data.mrr_min_relevance, default 1)
    assert {"eval_ndcg@10", "eval_mrr@10_rel1"} <= set(result.metrics)
    # the resolved recipe is saved and parses back to the same run
    again = load_recipe(out / "recipe.yaml")
    assert again.training.max_steps == 4 and again.data.group_size == 6


def test_exact_resume(tmp_path, bert_path, task_files):
    """Resuming from a mid-run checkpoint ends with the same weights as the uninterrupted run."""
    full = tmp_path / "full"
    run_training(load_recipe(_recipe(tmp_path, bert_path, task_files, full, save_strategy="steps", save_steps=3)))
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    import shutil

    shutil.copytree(full / "checkpoint-3", resumed / "checkpoint-3")
    recipe = load_recipe(
        _recipe(tmp_path, bert_path, task_files, resumed, save_strategy="steps", save_steps=3),
        {"resume_from_checkpoint": "auto"},
    )
    run_training(recipe)
    _assert_same(_weights(full), _weights(resumed))


def test_resume_skips_incomplete_checkpoint_and_cleans_stale_temp(tmp_path, bert_path, task_files, caplog):
    """A save killed midway leaves checkpoint-6 without trainer_state.json and a .tmp-save-* folder:
    auto-resume must pick checkpoint-3 (warning about checkpoint-6), remove the temp folder and end
    with the weights of the uninterrupted run."""
    import shutil

    full = tmp_path / "full"
    run_training(load_recipe(_recipe(tmp_path, bert_path, task_files, full, save_strategy="steps", save_steps=3)))
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(full / "checkpoint-3", resumed / "checkpoint-3")
    shutil.copytree(full / "checkpoint-6", resumed / "checkpoint-6")
    (resumed / "checkpoint-6" / "trainer_state.json").unlink()  # killed before Trainer wrote its state
    stale = resumed / ".tmp-save-k1ll3d"
    (stale / "backbone").mkdir(parents=True)
    (stale / "backbone" / "model.safetensors").write_bytes(b"\x00" * 64)  # a half-written model
    recipe = load_recipe(
        _recipe(tmp_path, bert_path, task_files, resumed, save_strategy="steps", save_steps=3),
        {"resume_from_checkpoint": "auto"},
    )
    with caplog.at_level("WARNING", logger="llmrank.trainer"):
        run_training(recipe)
    assert any("checkpoint-6" in r.getMessage() and "incomplete" in r.getMessage() for r in caplog.records)
    assert not stale.exists()
    assert (resumed / "checkpoint-6" / "trainer_state.json").exists()  # rewritten by the resumed run
    _assert_same(_weights(full), _weights(resumed), atol=0.0)


def test_explicit_resume_from_an_incomplete_checkpoint_is_a_clear_error(tmp_path, bert_path, task_files):
    from llmrank.config import RecipeError

    out = tmp_path / "run"
    broken = out / "checkpoint-4"
    (broken / "backbone").mkdir(parents=True)  # killed before trainer_state.json
    recipe = load_recipe(_recipe(tmp_path, bert_path, task_files, out), {"resume_from_checkpoint": str(broken)})
    with pytest.raises(RecipeError, match=r"checkpoint-4 is incomplete \(no trainer_state.json"):
        run_training(recipe)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-4"]


def test_checkpoint_completeness_rules(tmp_path):
    from llmrank.trainer import checkpoint_problem, latest_complete_checkpoint

    assert latest_complete_checkpoint(tmp_path) is None
    good = tmp_path / "checkpoint-2"
    (good / "adapter").mkdir(parents=True)
    (good / "llmrank_config.json").write_text("{}")
    (good / "trainer_state.json").write_text('{"global_step": 2}')
    assert checkpoint_problem(good) is None
    truncated = tmp_path / "checkpoint-10"
    shutil_copy = __import__("shutil").copytree
    shutil_copy(good, truncated)
    (truncated / "trainer_state.json").write_text('{"global_st')
    assert "truncated" in checkpoint_problem(truncated)
    no_model = tmp_path / "checkpoint-7"
    no_model.mkdir()
    (no_model / "llmrank_config.json").write_text("{}")
    (no_model / "trainer_state.json").write_text("{}")
    assert "model files" in checkpoint_problem(no_model)
    assert latest_complete_checkpoint(tmp_path) == str(good)


def test_validation_mrr_threshold_is_a_setting_named_in_the_key(tmp_path, bert_path, task_files):
    """MRR@k counts label >= data.mrr_min_relevance (TREC DL: 2) and says so in its key."""
    from llmrank.data.readers import load_source
    from llmrank.loading import load_ranker
    from llmrank.trainer import evaluate_lists

    out = tmp_path / "rel2"
    recipe = load_recipe(_recipe(tmp_path, bert_path, task_files, out, max_steps=1), {"data.mrr_min_relevance": 2})
    result = run_training(recipe)
    assert "eval_mrr@10_rel2" in result.metrics and not any(k.endswith("_rel1") for k in result.metrics)
    card_rows = json.loads((out / "eval_results.json").read_text())
    assert "MRR(rel=2)@10" in card_rows[0]["metrics"]
    lists = load_source({"format": "jsonl", "path": str(task_files / "test.jsonl")})[:8]
    ranker = load_ranker(out)
    scores = ranker.score_lists(lists)
    for rel in (1, 2):
        expected = 0.0
        for lst, s in zip(lists, scores):
            order = sorted(range(len(s)), key=lambda i: -s[i])[:10]
            expected += next((1 / (r + 1) for r, i in enumerate(order) if lst.labels[i] >= rel), 0.0)
        got = evaluate_lists(ranker, lists, k=10, mrr_min_relevance=rel)[f"mrr@10_rel{rel}"]
        assert got == pytest.approx(expected / len(lists), abs=1e-9)


@pytest.mark.slow
def test_ddp_two_processes_equal_one(tmp_path, bert_path, task_files):
    """Two gloo processes with per-device batch 2 == one process with batch 4 (same global batch)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    # SGD: the update is linear in the gradient (Adam divides by sqrt(v) and turns float noise in
    # near-zero gradients into visible weight differences)
    sgd = ["--optim=sgd", "--learning_rate=0.5"]
    one = tmp_path / "one"
    two = tmp_path / "two"
    base = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no"]  # fmt: skip
    subprocess.run(
        [*base, "--num_processes", "1", "-m", "llmrank.train", "--config",
         str(_recipe(tmp_path, bert_path, task_files, one)), "--per_device_train_batch_size=4", *sgd],
        check=True, env=env, cwd=ROOT, capture_output=True,
    )  # fmt: skip
    proc = subprocess.run(
        [*base, "--multi_gpu", "--num_processes", "2", "--main_process_port", "29517", "-m", "llmrank.train",
         "--config", str(_recipe(tmp_path, bert_path, task_files, two)), "--per_device_train_batch_size=2", *sgd],
        env=env, cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_same(_weights(one), _weights(two), atol=1e-5)


def test_lora_training_saves_adapter_and_reloads(tmp_path, bert_path, task_files):
    from llmrank import load_ranker
    from llmrank.data.readers import read_lists_jsonl

    out = tmp_path / "lora"
    recipe = load_recipe(_recipe(tmp_path, bert_path, task_files, out, max_steps=3))
    recipe.model.lora = recipe.lora = __import__("llmrank.rankers.base", fromlist=["LoraSettings"]).LoraSettings(r=4)
    result = run_training(recipe)
    assert (out / "adapter" / "adapter_config.json").exists()
    assert not (out / "backbone").exists()
    lists = read_lists_jsonl(task_files / "test.jsonl")[:3]
    trained = result.ranker.score_lists(lists)
    reloaded = load_ranker(out).score_lists(lists)
    for a, b in zip(trained, reloaded):
        assert a == pytest.approx(b, abs=1e-5)


def _train_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "llmrank.train", *args], capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


def test_bad_inputs_fail_cleanly(tmp_path, bert_path, task_files):
    out = tmp_path / "never"
    recipe = _recipe(tmp_path, bert_path, task_files, out)
    cases = {
        "unknown key": (["--config", str(recipe), "--learning_rat=1"], "learning_rate"),
        "missing model": (["--config", str(recipe), f"--model.model_name_or_path={tmp_path}/nope"], "does not exist"),
        "group too large": (["--config", str(recipe), "--data.group_size=500"], "group_size"),
        "bad data file": (["--config", str(recipe), f"--data.train.path={recipe}"], "line"),
        "no recipe": ([], "--config"),
    }
    for name, (argv, message) in cases.items():
        proc = _train_cli(*argv)
        assert proc.returncode != 0, name
        assert message in proc.stderr, f"{name}: {proc.stderr[-500:]}"
        assert len(proc.stderr.strip().splitlines()) <= 3, f"{name}: not a one-line error:\n{proc.stderr[-1500:]}"
        assert not out.exists(), f"{name}: left an output directory behind"


def test_recipe_push_to_hub_every_save_and_at_end(tmp_path, bert_path, task_files, monkeypatch):
    """`training: {push_to_hub: true, hub_strategy: every_save}` pushes each checkpoint and the final
    model, with a card; the recipe's hub_token is used and never written."""
    import huggingface_hub.constants as constants

    from tests.fake_hub import FakeHub

    token = "hf_trainingtesttoken123"
    with FakeHub(token=token, lifetime=120) as fake:
        monkeypatch.setattr(constants, "ENDPOINT", fake.url)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        out = tmp_path / "hubrun"
        recipe = load_recipe(_recipe(tmp_path, bert_path, task_files, out, save_strategy="steps", save_steps=2,
                                     max_steps=4, push_to_hub=True, hub_model_id="me/tiny-ranker",
                                     hub_strategy="every_save", hub_token=token))  # fmt: skip
        run_training(recipe)
        files = fake.files("me/tiny-ranker")
        # the default (pooler) head exports exactly: pushed as a sentence-transformers CrossEncoder folder
        assert {"config.json", "model.safetensors", "README.md", "llmrank_export.json"} <= set(files)
        commits = fake.calls("POST", "commit")
        assert len(commits) >= 3, "checkpoint-2, checkpoint-4 and the final model"
        assert b"model-index" in files["README.md"]
        for path in out.rglob("*"):
            if path.is_file():
                assert token.encode() not in path.read_bytes(), path
        assert all(token.encode() not in data for data in files.values())
