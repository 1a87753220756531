"""BAR (Born-Again neural Rankers, Qin et al. arXiv 2109.15285): objective, teacher scores,
generations and `llmrank score`, on a tiny BERT and the synthetic task (a few steps each)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from llmrank.config import DistillArgs, RecipeError, load_recipe
from llmrank.data.readers import read_lists_jsonl, write_lists_jsonl
from llmrank.data.synthetic import make_synthetic_task
from llmrank.distill import attach_teacher_scores, distillation_terms
from llmrank.train import run_generations, run_training
from tests.tiny_models import make_tiny_bert


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMRANK_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bar-data")
    task = make_synthetic_task(num_queries=32, docs_per_query=12, seed=1)
    write_lists_jsonl(task.train, folder / "train.jsonl")
    write_lists_jsonl(task.test, folder / "test.jsonl")
    return folder


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("bar-bert"))


def _recipe(tmp: Path, bert: Path, data: Path, out: Path, distill: dict | None = None, **training) -> Path:
    recipe = {
        "model": {"family": "cross-encoder", "model_name_or_path": str(bert), "max_length": 40, "query_max_length": 12},
        "data": {
            "train": {"format": "jsonl", "path": str(data / "train.jsonl")},
            "eval": {"format": "jsonl", "path": str(data / "test.jsonl")},
            "group_size": 6,
            "seed": 7,
            "eval_max_lists": 4,
        },
        "objective": [{"name": "softmax", "weight": 1.0}],
        "distill": distill,
        "training": {
            "output_dir": str(out), "learning_rate": 1e-3, "per_device_train_batch_size": 4, "max_steps": 3,
            "save_strategy": "no", "seed": 3, "use_cpu": True, "disable_tqdm": True, "logging_steps": 50,
            **training,
        },
    }  # fmt: skip
    path = tmp / f"recipe-{out.name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, bert, data):
    """A plain (no distillation) run: the teacher of the other tests and the alpha=0 reference."""
    tmp = tmp_path_factory.mktemp("bar-teacher")
    run_training(load_recipe(_recipe(tmp, bert, data, tmp / "teacher")))
    return tmp / "teacher"


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    sd = load_file(str(folder / "backbone" / "model.safetensors"))
    sd.update({f"head.{k}": v for k, v in load_file(str(folder / "head.safetensors")).items()})
    return sd


# ----------------------------------------------------------------------------- objective
def test_distillation_terms_mixing():
    terms = [{"name": "softmax", "weight": 2.0}, {"name": "ranknet", "weight": 0.5}]
    assert distillation_terms(terms, DistillArgs(alpha=0.0, teacher="t")) == terms
    half = distillation_terms(terms, DistillArgs(alpha=0.25, teacher="t"))
    assert [t["weight"] for t in half] == [1.5, 0.375, 0.25]
    assert half[-1] == {"name": "bar_distillation", "weight": 0.25, "transform": "affine_relu", "a": 1.0, "b": 0.0,
                        "temperature": 1.0}  # fmt: skip
    only = distillation_terms(terms, DistillArgs(alpha=1.0, teacher="t", loss="mse", transform={"name": "none"}))
    assert [(t["name"], t["weight"], t["transform"]) for t in only] == [("mse_distillation", 1.0, "none")]
    ens = distillation_terms(terms, DistillArgs(alpha=0.5, teacher=["t1", "t2"], transform={"name": "affine_relu", "a": 2, "b": 1}))
    assert (ens[-1]["transform"], ens[-1]["a"], ens[-1]["b"]) == ("affine_relu", 1.0, 0.0)
    for bad in (DistillArgs(alpha=1.5), DistillArgs(loss="pairwise"), DistillArgs(transform={"name": "sigmoid"})):
        with pytest.raises(RecipeError):
            distillation_terms(terms, bad)


def test_distillation_term_uses_teacher_without_gradient():
    from llmrank.losses import Objective
    from llmrank.rankers.base import RankerOutput

    objective = Objective(distillation_terms([{"name": "softmax", "weight": 1.0}], DistillArgs(alpha=0.5, teacher="t")))
    scores = torch.randn(2, 4, requires_grad=True)
    teacher = torch.tensor([[3.0, 1.0, 0.0, -1.0], [0.5, 2.0, 1.0, 0.0]], requires_grad=True)
    out = RankerOutput(scores=scores, mask=torch.ones(2, 4, dtype=torch.bool))
    targets = {"labels": torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]), "teacher_scores": teacher}
    loss, terms = objective(out, targets)
    loss.backward()
    assert set(terms) == {"softmax", "bar_distillation"}
    assert scores.grad is not None and teacher.grad is None
    # the distillation target is normalise(ReLU(t)): exactly the CE against that distribution
    p = torch.relu(teacher.detach()) / torch.relu(teacher.detach()).sum(-1, keepdim=True)
    expected = -(p * torch.log_softmax(scores.detach(), -1)).sum(-1).mean()
    torch.testing.assert_close(torch.tensor(terms["bar_distillation"]), expected)


# ----------------------------------------------------------------------------- training
def test_alpha_zero_is_plain_training_bit_for_bit(tmp_path, bert, data, teacher):
    out = tmp_path / "alpha0"
    run_training(load_recipe(_recipe(tmp_path, bert, data, out, {"alpha": 0.0, "teacher": str(teacher)})))
    plain, distilled = _weights(teacher), _weights(out)
    assert plain.keys() == distilled.keys()
    for key in plain:
        assert torch.equal(plain[key], distilled[key]), key


def _mean_tau(a: list[list[float]], b: list[list[float]]) -> float:
    from scipy.stats import kendalltau

    return sum(kendalltau(x, y).statistic for x, y in zip(a, b)) / len(a)


def test_alpha_one_student_moves_towards_teacher(tmp_path, bert, data):
    """Teacher scores that contradict the labels (reversed grades, non-negative so that ReLU keeps
    them): with alpha = 1 the student can only have learned them from the teacher."""
    from llmrank.rankers import family_class

    lists = read_lists_jsonl(data / "train.jsonl")
    for rl in lists:
        rl.teacher_scores = [(3.0 - y) ** 2 + 0.01 * (len(rl) - i) for i, y in enumerate(rl.labels)]
    write_lists_jsonl(lists, tmp_path / "teacher.jsonl")
    recipe = load_recipe(_recipe(tmp_path, bert, data, tmp_path / "student",
                                 {"alpha": 1.0, "teacher_scores": str(tmp_path / "teacher.jsonl")},
                                 max_steps=12, learning_rate=2e-3))  # fmt: skip
    probe = lists[:8]
    before = family_class("cross-encoder").build(recipe.model).score_lists(probe, batch_size=64)
    result = run_training(recipe)
    after = result.ranker.score_lists(probe, batch_size=64)
    t = [rl.teacher_scores for rl in probe]
    assert _mean_tau(after, t) > _mean_tau(before, t) + 0.1


def test_teacher_checkpoint_scores_are_cached_and_ensemble_is_mean_of_transformed(tmp_path, teacher, data):
    from llmrank.loading import load_ranker

    lists = read_lists_jsonl(data / "train.jsonl")[:3]
    raw = load_ranker(teacher).score_lists(lists, batch_size=64)
    single = attach_teacher_scores(lists, DistillArgs(teacher=str(teacher)))
    assert all(rl.teacher_scores is None for rl in lists)  # inputs untouched
    for got, want in zip(single, raw):
        assert got.teacher_scores == pytest.approx(want, abs=1e-5)
    assert len(list((tmp_path / "cache" / "teacher_scores").glob("*.jsonl"))) == 1
    tf = {"name": "affine_relu", "a": 2.0, "b": 0.1}
    ens = attach_teacher_scores(lists, DistillArgs(teacher=[str(teacher), str(teacher)], transform=tf))
    for got, want in zip(ens, raw):
        assert got.teacher_scores == pytest.approx([max(0.0, 2 * t + 0.1) for t in want], abs=1e-5)


def test_bad_teacher_inputs(tmp_path, data):
    lists = read_lists_jsonl(data / "train.jsonl")[:2]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        attach_teacher_scores(lists, DistillArgs(teacher=str(tmp_path / "nope")))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        attach_teacher_scores(lists, DistillArgs(teacher_scores=str(tmp_path / "nope.jsonl")))
    scored = [rl.subset(list(range(len(rl) - 1))) for rl in lists]  # last document of each list unscored
    for rl in scored:
        rl.teacher_scores = [1.0] * len(rl)
    write_lists_jsonl(scored, tmp_path / "partial.jsonl")
    with pytest.raises(ValueError, match=r"2 document\(s\) have no teacher score.*llmrank score"):
        attach_teacher_scores(lists, DistillArgs(teacher_scores=str(tmp_path / "partial.jsonl")))
    with pytest.raises(RecipeError, match="no teacher"):
        attach_teacher_scores(lists, DistillArgs())


def test_generations_chain(tmp_path, bert, data, capsys):
    root = tmp_path / "bar"
    recipe = load_recipe(_recipe(tmp_path, bert, data, root, {"alpha": 0.5, "generations": 2}, max_steps=2))
    rows = run_generations(recipe)
    assert [r["generation"] for r in rows] == [0, 1, 2]
    assert rows[0]["teacher"] is None
    assert rows[1]["teacher"] == str(root / "gen-0") and rows[2]["teacher"] == str(root / "gen-1")
    for gen in range(3):
        saved = yaml.safe_load((root / f"gen-{gen}" / "recipe.yaml").read_text())
        assert saved["distill"] is None if gen == 0 else saved["distill"]["teacher"] == str(root / f"gen-{gen - 1}")
        assert saved["model"]["model_name_or_path"] == str(bert)  # same initialisation every generation
    report = json.loads((root / "generations.json").read_text())
    assert len(report["generations"]) == 3 and report["generations"][2]["ndcg@10"] is not None
    assert "| generation | teacher | nDCG@10 | MRR@10 |" in capsys.readouterr().out


# ----------------------------------------------------------------------------- llmrank score
def test_score_cli_resumes_after_interruption(tmp_path, teacher, data, monkeypatch):
    from llmrank.cli import main
    from llmrank.loading import load_ranker

    ranker = load_ranker(teacher)
    cls = type(ranker)
    original = cls.score_lists
    calls: list[int] = []
    crash = [True]

    def flaky(self, lists, batch_size=32):
        calls.append(len(lists))
        if crash[0] and len(calls) == 2:
            raise RuntimeError("simulated crash")
        return original(self, lists, batch_size=batch_size)

    out = tmp_path / "scored.jsonl"
    argv = ["score", "--model", str(teacher), "--data", str(data / "train.jsonl"), "--out", str(out),
            "--batch-size", "16", "--chunk-lists", "5"]  # fmt: skip
    monkeypatch.setattr(cls, "score_lists", flaky)
    with pytest.raises(RuntimeError, match="simulated"):
        main(argv)
    partial = out.with_name(out.name + ".partial")
    assert not out.exists() and len(partial.read_text().splitlines()) == 5
    with partial.open("a") as fh:
        fh.write('{"qid": "half-writ')  # a line cut by the crash is ignored
    calls.clear()
    crash[0] = False
    assert main(argv) == 0
    lists = read_lists_jsonl(data / "train.jsonl")
    assert sum(calls) == len(lists) - 5  # only the unfinished lists were scored again
    assert not partial.exists()
    scored = read_lists_jsonl(out)
    assert [rl.qid for rl in scored] == [rl.qid for rl in lists]
    want = original(ranker, lists, batch_size=16)
    for rl, w in zip(scored, want):
        assert rl.teacher_scores == pytest.approx(w, abs=1e-5)
    # the file is a valid distill.teacher_scores source
    attached = attach_teacher_scores(lists, DistillArgs(teacher_scores=str(out)))
    assert attached[0].teacher_scores == scored[0].teacher_scores


def test_score_cli_bad_input(tmp_path, data, capsys):
    from llmrank.cli import main

    rc = main(["score", "--model", str(tmp_path / "nope"), "--data", str(data / "train.jsonl"), "--out", str(tmp_path / "o")])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
