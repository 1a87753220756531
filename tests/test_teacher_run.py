"""Teachers from anywhere: a TREC run file as the distillation teacher (matched by qid/docid, a
missing pair is an error naming it), and `llmrank score` writing any loadable ranker's scores
(here a two-tower checkpoint) as lists and as a run that trains a student."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from llmrank.cli import main as cli_main
from llmrank.config import DistillArgs, RecipeError
from llmrank.data.readers import read_lists_jsonl, write_lists_jsonl
from llmrank.distill import attach_teacher_scores, run_teacher_scores
from llmrank.runs import write_trec_run
from llmrank.train import main as train_main
from tests.conftest import make_lists


def _run_for(lists, drop: tuple[str, str] | None = None) -> dict[str, list[tuple[str, float]]]:
    run = {}
    for rl in lists:
        run[rl.qid] = [(d.docid, 10.0 - j) for j, d in enumerate(rl.docs) if (rl.qid, d.docid) != drop]
    return run


def test_run_scores_are_matched_by_qid_and_docid(tmp_path: Path) -> None:
    lists = make_lists()
    run = _run_for(lists)
    run["q1"] = list(reversed(run["q1"])) + [("other", 99.0)]  # order in the file and extra docs do not matter
    run["q9"] = [("x", 1.0)]  # a query not in training is ignored
    write_trec_run(tmp_path / "teacher.trec", run)
    out = run_teacher_scores(lists, tmp_path / "teacher.trec")
    assert out[0].teacher_scores == [10.0, 9.0, 8.0] and out[1].teacher_scores == [10.0, 9.0]
    assert lists[0].teacher_scores == [3.0, -1.0, 0.5]  # the input lists are not modified
    via_block = attach_teacher_scores(lists, DistillArgs(teacher_run=str(tmp_path / "teacher.trec")))
    assert [rl.teacher_scores for rl in via_block] == [rl.teacher_scores for rl in out]


def test_missing_pair_and_bad_run_are_errors(tmp_path: Path) -> None:
    lists = make_lists()
    write_trec_run(tmp_path / "gap.trec", _run_for(lists, drop=("q2", "d5")))
    with pytest.raises(ValueError, match=r"1 training \(qid, docid\) pair\(s\) have no score in the run \(first: q2 d5\)"):
        run_teacher_scores(lists, tmp_path / "gap.trec")
    (tmp_path / "bad.trec").write_text("q1 Q0 d1 1 3.0 t\nq1 Q0 d2 2 high t\n")
    with pytest.raises(ValueError, match=r"bad.trec:2"):
        run_teacher_scores(lists, tmp_path / "bad.trec")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_teacher_scores(lists, tmp_path / "none.trec")
    with pytest.raises(RecipeError, match="not teacher_scores and teacher_run"):
        attach_teacher_scores(lists, DistillArgs(teacher_scores="a.jsonl", teacher_run="b.trec"))


def _recipe(tmp_path: Path, model: str, distill: dict, out: str) -> Path:
    recipe = {
        "model": {"family": "two-tower", "model_name_or_path": model, "max_length": 24, "query_max_length": 12,
                  "options": {"scale": 10.0}},
        "data": {"train": {"format": "jsonl", "path": str(tmp_path / "train.jsonl")}, "group_size": 3},
        "objective": [{"name": "softmax"}],
        "distill": distill,
        "training": {"output_dir": str(tmp_path / out), "max_steps": 2, "per_device_train_batch_size": 2,
                     "save_strategy": "no", "use_cpu": True, "disable_tqdm": True, "report_to": "none"},
    }  # fmt: skip
    path = tmp_path / f"{out}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_score_writes_a_run_that_teaches(tiny_bert: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from llmrank.rankers import RankerSettings, family_class

    lists = make_lists()
    write_lists_jsonl(lists, tmp_path / "train.jsonl")
    teacher = family_class("two-tower").build(RankerSettings("two-tower", tiny_bert, max_length=24, query_max_length=12))
    teacher.save_pretrained(tmp_path / "teacher")
    rc = cli_main(["score", "--model", str(tmp_path / "teacher"), "--data", str(tmp_path / "train.jsonl"),
                   "--out", str(tmp_path / "scored.jsonl"), "--trec-out", str(tmp_path / "teacher.trec")])  # fmt: skip
    assert rc == 0
    scored = read_lists_jsonl(tmp_path / "scored.jsonl")
    expected = teacher.score_lists(lists)
    assert [rl.teacher_scores for rl in scored] == [pytest.approx(row, abs=1e-6) for row in expected]
    from_run = run_teacher_scores(lists, tmp_path / "teacher.trec")
    for rl, row in zip(from_run, expected):  # the run keeps the scores (ties nudged by at most 1e-6 per rank)
        assert rl.teacher_scores == pytest.approx(row, abs=1e-5)
    # the run trains a student through the distill: block
    assert train_main(["--config", str(_recipe(tmp_path, tiny_bert, {"teacher_run": str(tmp_path / "teacher.trec")}, "student"))]) == 0
    assert json.loads((tmp_path / "student" / "llmrank_config.json").read_text())["family"] == "two-tower"
    # a run missing a training pair: exit 2, one line naming the pair, nothing written
    run = _run_for(lists, drop=("q1", "d3"))
    write_trec_run(tmp_path / "gap.trec", run)
    capsys.readouterr()
    assert train_main(["--config", str(_recipe(tmp_path, tiny_bert, {"teacher_run": str(tmp_path / "gap.trec")}, "bad"))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "q1 d3" in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "bad").exists()
