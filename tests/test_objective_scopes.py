"""Per-term sample-stage scopes of ``Objective`` (RankTower's full-stage sampling): the ``stage`` tag of
``Doc``, its collation into ``targets["stages"]`` by every family, the masking, and the errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from llmrank.config import RecipeError, load_recipe
from llmrank.data.readers import read_lists_jsonl, write_lists_jsonl
from llmrank.data.record import STAGES, Doc, RankingList
from llmrank.data.synthetic import make_synthetic_task
from llmrank.losses import (
    Objective,
    ObjectiveTerm,
    am_rankmax_loss,
    listwise_distillation_loss,
    softmax_loss,
    softsort_loss,
)
from llmrank.rankers import RankerSettings, family_class
from llmrank.rankers.base import TARGET_KEYS, RankerOutput
from llmrank.train import build_objective, run_training
from tests.tiny_models import make_tiny_bert

ROOT = Path(__file__).resolve().parents[1]
IMP, CAND, RAND = (STAGES.index(s) for s in ("impression", "candidate", "random"))


def tagged_lists() -> list[RankingList]:
    stages = ["impression", "impression", "candidate", "candidate", "random"]
    docs = [
        "the virus protein binds the cell",
        "proteins of viruses and their receptors",
        "a river runs through the city",
        "solar energy and climate",
        "the king and the queen",
    ]
    return [
        RankingList(
            qid="q1",
            query="what is the protein of the virus?",
            docs=[Doc(f"d{i}", t, stage=s) for i, (t, s) in enumerate(zip(docs, stages))],
            labels=[2.0, 1.0, 0.0, 1.0, 0.0],
            teacher_scores=[3.0, 1.0, -1.0, 0.5, -2.0],
        ),
        RankingList(
            qid="q2",
            query="neural ranking",
            docs=[Doc("e0", "a neural ranking model", stage="impression"), Doc("e1", "bread", stage="random")],
            labels=[1.0, 0.0],
            teacher_scores=[1.0, -2.0],
        ),
    ]


# ------------------------------------------------------------------------------ record / data
def test_doc_stage_round_trips_and_is_validated(tmp_path: Path) -> None:
    lists = tagged_lists()
    again = RankingList.from_dict(json.loads(lists[0].to_json()))
    assert [d.stage for d in again.docs] == [d.stage for d in lists[0].docs]
    assert "stage" not in RankingList("q", "x", [Doc("a", "t")], [0.0]).to_dict()["docs"][0]
    path = write_lists_jsonl(lists, tmp_path / "lists.jsonl")
    assert [d.stage for d in read_lists_jsonl(path)[1].docs] == ["impression", "random"]
    assert [d.stage for d in lists[0].subset([4, 0]).docs] == ["random", "impression"]
    with pytest.raises(ValueError, match="stage 'impresion' is not one of impression, candidate, random"):
        Doc("a", "t", stage="impresion")
    with pytest.raises(ValueError, match="1 of 2 documents have a stage; tag all of them or none"):
        RankingList("q", "x", [Doc("a", "t", stage="random"), Doc("b", "u")], [0.0, 0.0])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"qid": "q", "query": "x", "docs": [{"docid": "a", "text": "t", "stage": "top"}], "labels": [1]})
        + "\n"
    )
    with pytest.raises(ValueError, match=r"bad.jsonl:1: document 'a': stage 'top'"):
        read_lists_jsonl(bad)


# -------------------------------------------------------------------------------- objective
def test_scope_masks_the_term_to_its_stages() -> None:
    torch.manual_seed(0)
    scores = torch.randn(2, 5, requires_grad=True)
    labels = torch.tensor([[2.0, 1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 1.0, 0.0, 0.0]])
    teacher = torch.randn(2, 5)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    stages = torch.tensor([[IMP, IMP, CAND, CAND, RAND], [IMP, RAND, CAND, -1, -1]])
    objective = Objective(
        [
            {"name": "listwise_distillation", "scope": ["impression"]},
            {"name": "softsort", "weight": 0.5, "scope": ["impression", "candidate"], "tau": 0.5},
            {"name": "am_rankmax", "weight": 0.25},
        ]
    )
    targets = {"labels": labels, "teacher_scores": teacher, "list_mask": mask, "stages": stages}
    total, logs = objective(RankerOutput(scores=scores, mask=mask), targets)
    impression = mask & (stages == IMP)
    imp_cand = mask & ((stages == IMP) | (stages == CAND))
    expected = (
        listwise_distillation_loss(scores, teacher, mask=impression)
        + 0.5 * softsort_loss(scores, labels, mask=imp_cand, tau=0.5)
        + 0.25 * am_rankmax_loss(scores, labels, mask=mask)
    )
    torch.testing.assert_close(total, expected)
    # and the scope really changes something: unscoped distillation differs
    assert logs["listwise_distillation"] != pytest.approx(
        listwise_distillation_loss(scores, teacher, mask=mask).item()
    )
    # by hand for list 1: distillation over its two impressions only
    t, s = teacher[0, :2], scores[0, :2]
    by_hand = -(torch.softmax(t, 0) * torch.log_softmax(s, 0)).sum()
    per_list = listwise_distillation_loss(scores, teacher, mask=impression, reduction="none")
    torch.testing.assert_close(per_list[0], by_hand)
    total.backward()
    assert torch.isfinite(scores.grad).all()


def test_scope_accepts_a_single_stage_string_and_term_objects() -> None:
    assert Objective([{"name": "softmax", "scope": "random"}]).terms[0].scope == ("random",)
    assert ObjectiveTerm("softmax", scope=["impression", "candidate"]).scope == ("impression", "candidate")


def test_unknown_stage_is_a_recipe_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"loss 'softsort': unknown stage 'impresion' in scope \(did you mean 'impression'\?\)"
    ):
        Objective([{"name": "softsort", "scope": ["impresion", "candidate"]}])
    with pytest.raises(ValueError, match="scope must be a non-empty list"):
        Objective([{"name": "softsort", "scope": []}])
    with pytest.raises(ValueError, match="loss 'lm' is not computed over documents"):
        Objective([{"name": "lm", "scope": ["impression"]}])
    recipe = _recipe(tmp_path, "unused", tmp_path, tmp_path / "out", [{"name": "rankmax", "scope": ["impressions"]}])
    with pytest.raises(RecipeError, match="objective: loss 'rankmax': unknown stage 'impressions'"):
        build_objective(load_recipe(recipe))


def test_scoped_term_without_stage_tags_is_a_clear_error() -> None:
    objective = Objective([{"name": "softmax", "scope": ["impression"]}])
    out = RankerOutput(scores=torch.zeros(1, 2), mask=torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"has scope \['impression'\] but the batch has no stage tags"):
        objective(out, {"labels": torch.tensor([[1.0, 0.0]])})
    # unscoped objectives do not need tags
    total, _ = Objective([{"name": "softmax"}])(out, {"labels": torch.tensor([[1.0, 0.0]])})
    torch.testing.assert_close(total, softmax_loss(out.scores, torch.tensor([[1.0, 0.0]])))


# ------------------------------------------------------------------------------- collation
@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_tiny_bert(tmp_path_factory.mktemp("bert-scopes")))


def test_cross_encoder_collates_stages_and_scoped_objective_trains(bert: str) -> None:
    """Real tiny BERT cross-encoder: collate -> forward -> scoped objective -> backward."""
    assert "stages" in TARGET_KEYS
    torch.manual_seed(0)
    ranker = family_class("cross-encoder").build(RankerSettings(family="cross-encoder", model_name_or_path=bert))
    batch = ranker.collate(tagged_lists())
    assert batch["stages"].tolist() == [[IMP, IMP, CAND, CAND, RAND], [IMP, RAND, -1, -1, -1]]
    targets = {k: batch.pop(k) for k in TARGET_KEYS if k in batch}
    out = ranker(**batch)
    objective = Objective(
        [
            {"name": "listwise_distillation", "scope": ["impression"]},
            {"name": "softsort", "scope": ["impression", "candidate"]},
        ]
    )
    total, _ = objective(out, targets)
    imp = targets["list_mask"] & (targets["stages"] == IMP)
    imp_cand = targets["list_mask"] & (targets["stages"] >= 0) & (targets["stages"] <= CAND)
    expected = listwise_distillation_loss(out.scores, targets["teacher_scores"], mask=imp) + softsort_loss(
        out.scores, targets["labels"], mask=imp_cand
    )
    torch.testing.assert_close(total, expected)
    total.backward()
    grads = [p.grad for p in ranker.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    # untagged data: no stages key at all
    plain = [RankingList("q", "x", [Doc("a", "t"), Doc("b", "u")], [1.0, 0.0])]
    assert "stages" not in ranker.collate(plain)


def test_first_collates_stages(tiny_llama: str) -> None:
    from llmrank.rankers.first import FirstRanker

    ranker = FirstRanker.build(RankerSettings(family="first", model_name_or_path=tiny_llama, max_length=1024))
    lists = tagged_lists()
    for lst in lists:
        lst.order = sorted(range(len(lst)), key=lambda i: -lst.labels[i])
    batch = ranker.collate(lists)
    assert batch["stages"].tolist() == [[IMP, IMP, CAND, CAND, RAND], [IMP, RAND, -1, -1, -1]]


# -------------------------------------------------------------------------------- end to end
def _recipe(tmp_path: Path, bert: str, data: Path, out: Path, objective: list[dict]) -> Path:
    recipe = {
        "model": {
            "family": "cross-encoder",
            "model_name_or_path": str(bert),
            "max_length": 48,
            "query_max_length": 12,
        },
        "data": {"train": {"format": "jsonl", "path": str(data / "train.jsonl")}, "group_size": 8, "seed": 7},
        "objective": objective,
        "training": {
            "output_dir": str(out),
            "learning_rate": 1e-3,
            "per_device_train_batch_size": 4,
            "max_steps": 3,
            "logging_steps": 1,
            "save_strategy": "no",
            "seed": 3,
            "use_cpu": True,
            "disable_tqdm": True,
            "report_to": [],
        },
    }
    path = tmp_path / f"recipe-{out.name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _stage_tagged_task(folder: Path) -> Path:
    """Synthetic lists tagged as a cascade would: top 4 = impression, next 8 = candidate, rest random;
    teacher scores = labels + a fixed offset pattern (a teacher that agrees with the labels)."""
    task = make_synthetic_task(num_queries=16, docs_per_query=16, seed=1)
    tagged = []
    for lst in task.train:
        stages = ["impression" if i < 4 else "candidate" if i < 12 else "random" for i in range(len(lst))]
        docs = [Doc(d.docid, d.text, d.title, stage=s) for d, s in zip(lst.docs, stages)]
        teacher = [2.0 * y - 0.1 * i for i, y in enumerate(lst.labels)]
        tagged.append(RankingList(lst.qid, lst.query, docs, lst.labels, teacher_scores=teacher))
    write_lists_jsonl(tagged, folder / "train.jsonl")
    return folder


def test_training_with_the_scoped_hybrid_objective(tmp_path: Path, bert: str, monkeypatch) -> None:
    """`llmrank.train` on stage-tagged data with RankTower's scoped hybrid objective plus PG-Rank."""
    from llmrank.trainer import RankingTrainer

    logged: list[dict] = []
    original = RankingTrainer.log

    def recording_log(self, logs, *args, **kwargs):  # noqa: ANN001, ANN202
        result = original(self, logs, *args, **kwargs)  # adds the per-term "loss/<name>" entries in place
        logged.append(dict(logs))
        return result

    monkeypatch.setattr(RankingTrainer, "log", recording_log)
    data = _stage_tagged_task(tmp_path)
    objective = [
        {"name": "listwise_distillation", "weight": 1.0, "scope": ["impression"]},
        {"name": "softsort", "weight": 0.5, "scope": ["impression", "candidate"]},
        {"name": "am_rankmax", "weight": 0.5, "alpha": 3.0},
        {"name": "pg_rank", "weight": 0.1, "samples": 4, "topn": 5},
    ]
    out = tmp_path / "run"
    run_training(load_recipe(_recipe(tmp_path, bert, data, out, objective)))
    assert (out / "llmrank_config.json").exists()
    steps = [row for row in logged if "loss" in row]
    assert len(steps) == 3
    for row in steps:
        terms = {k: v for k, v in row.items() if k.startswith("loss/")}
        assert set(terms) == {"loss/listwise_distillation", "loss/softsort", "loss/am_rankmax", "loss/pg_rank"}
        assert all(math.isfinite(v) for v in terms.values())
        assert terms["loss/softsort"] > 0 and terms["loss/listwise_distillation"] > 0


def test_cli_unknown_stage_fails_in_one_line(tmp_path: Path, bert: str) -> None:
    data = _stage_tagged_task(tmp_path)
    out = tmp_path / "never"
    recipe = _recipe(tmp_path, bert, data, out, [{"name": "softsort", "scope": ["impression", "candidat"]}])
    proc = subprocess.run(
        [sys.executable, "-m", "llmrank.train", "--config", str(recipe)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode != 0
    assert "unknown stage 'candidat' in scope (did you mean 'candidate'?)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 3, proc.stderr[-1500:]
    assert not out.exists()


def test_scoped_objective_on_untagged_data_fails_before_training(tmp_path: Path, bert: str) -> None:
    task = make_synthetic_task(num_queries=4, docs_per_query=12, seed=1)
    write_lists_jsonl(task.train, tmp_path / "train.jsonl")
    out = tmp_path / "never"
    recipe = load_recipe(_recipe(tmp_path, bert, tmp_path, out, [{"name": "softmax", "scope": ["impression"]}]))
    with pytest.raises(
        RecipeError, match=r"scoped to stages \['impression'\] but some training documents have no `stage`"
    ):
        run_training(recipe)
    assert not out.exists()
