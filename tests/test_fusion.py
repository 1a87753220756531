"""Fusion of a reranker's run with its first stage, against hand-computed values."""

from __future__ import annotations

import pytest

from llmrank.fusion import fuse, linear_fusion, normalize_scores, rrf, tune_linear_weight

RERANKED = {"q1": [("b", 9.0), ("a", 5.0), ("c", 1.0)]}
FIRST = {"q1": [("a", 30.0), ("c", 20.0), ("b", 10.0), ("d", 0.0)]}


def test_rrf_hand_computed() -> None:
    fused = rrf([RERANKED, FIRST], k=60)
    scores = dict(fused["q1"])
    # b: 1/61 + 1/63, a: 1/62 + 1/61, c: 1/63 + 1/62, d: 1/64 (only in the first stage)
    assert scores["b"] == pytest.approx(1 / 61 + 1 / 63)
    assert scores["a"] == pytest.approx(1 / 62 + 1 / 61)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 62)
    assert scores["d"] == pytest.approx(1 / 64)
    assert [d for d, _ in fused["q1"]] == ["a", "b", "c", "d"]


def test_rrf_small_k_and_weights() -> None:
    fused = dict(rrf([RERANKED, FIRST], k=1, weights=[2.0, 1.0])["q1"])
    assert fused["b"] == pytest.approx(2 / 2 + 1 / 4)
    assert fused["a"] == pytest.approx(2 / 3 + 1 / 2)
    with pytest.raises(ValueError, match="2 runs"):
        rrf([RERANKED, FIRST], weights=[1.0])
    with pytest.raises(ValueError, match="positive"):
        rrf([RERANKED], k=0)


def test_rrf_ties_break_by_first_run_then_second() -> None:
    # both documents get 1/61 + 1/62: the reranker's order decides
    fused = rrf([{"q": [("x", 2.0), ("y", 1.0)]}, {"q": [("y", 2.0), ("x", 1.0)]}])
    assert [d for d, _ in fused["q"]] == ["x", "y"]


def test_minmax_and_zscore() -> None:
    assert normalize_scores({"a": 2.0, "b": 4.0, "c": 3.0}) == {"a": 0.0, "b": 1.0, "c": 0.5}
    z = normalize_scores({"a": 1.0, "b": 3.0}, "zscore")
    assert z == {"a": -1.0, "b": 1.0}
    assert normalize_scores({"a": 5.0, "b": 5.0}) == {"a": 0.0, "b": 0.0}
    with pytest.raises(ValueError, match="not finite"):
        normalize_scores({"a": float("nan")})


def test_linear_hand_computed() -> None:
    ranked = linear_fusion(RERANKED, FIRST, weight=0.25)["q1"]
    fused = dict(ranked)
    # rerank minmax: b 1, a 0.5, c 0 ; first stage minmax: a 1, c 2/3, b 1/3, d 0 ; d missing from rerank -> 0
    assert fused["a"] == pytest.approx(0.25 * 0.5 + 0.75 * 1.0)
    assert fused["b"] == pytest.approx(0.25 * 1.0 + 0.75 * (1 / 3))
    # c ties b at 0.5: the reranker's order puts b first, and c is nudged just below it
    assert fused["c"] == pytest.approx(0.25 * 0.0 + 0.75 * (2 / 3) - 1e-6, abs=1e-12)
    assert fused["d"] == pytest.approx(0.0)
    assert [d for d, _ in ranked] == ["a", "b", "c", "d"]
    # the weight's ends give back each run's order
    assert [d for d, _ in linear_fusion(RERANKED, FIRST, 1.0)["q1"]][:3] == ["b", "a", "c"]
    assert [d for d, _ in linear_fusion(RERANKED, FIRST, 0.0)["q1"]] == ["a", "c", "b", "d"]


def test_fuse_linear_requires_validated_weight() -> None:
    with pytest.raises(ValueError, match="validation"):
        fuse(RERANKED, FIRST, "linear")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fuse(RERANKED, FIRST, "linear", weight=1.5)
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse(RERANKED, FIRST, "max")


def test_tune_linear_weight_picks_the_validation_optimum() -> None:
    # the reranker is right on q1, the first stage on q2: with nDCG@1 and one relevant document,
    # a mid weight cannot beat either end on both, so the curve is checked point by point
    reranked = {"q1": [("r", 3.0), ("n", 1.0)], "q2": [("n", 3.0), ("r", 2.9)]}
    first = {"q1": [("n", 10.0), ("r", 9.0)], "q2": [("r", 10.0), ("n", 1.0)]}
    qrels = {"q1": {"r": 1}, "q2": {"r": 1}}
    best, curve = tune_linear_weight(reranked, first, qrels, measure="nDCG@1", grid=[0.0, 0.5, 1.0])
    values = {row["weight"]: row["nDCG@1"] for row in curve}
    # w=0: q1 wrong, q2 right; w=1: q1 right, q2 wrong; w=0.5: q1 r=.5+.5=1 vs n=0+.5 -> right,
    # q2 r=0+.5 vs n=.5+0 -> a tie, broken by the reranker's order (n) and kept by the evaluation -> wrong
    assert values == {0.0: 0.5, 0.5: 0.5, 1.0: 0.5}
    assert best == 0.0  # ties go to the first stage's side
    with pytest.raises(ValueError, match="no validation query"):
        tune_linear_weight(reranked, first, {"other": {"r": 1}})


def _write_run(path, run) -> str:
    from llmrank.runs import write_trec_run

    write_trec_run(path, run)
    return str(path)


def test_cli_tune_then_fuse(tmp_path) -> None:
    """`llmrank tune-fusion` on validation queries, then `llmrank fuse --weight-from` on others."""
    import json

    from llmrank.cli import main
    from llmrank.runs import read_trec_run

    val_rr = _write_run(tmp_path / "val_rr.trec", {"v1": [("r", 3.0), ("n", 1.0)], "v2": [("r", 2.0), ("n", 1.0)]})
    val_fs = _write_run(tmp_path / "val_fs.trec", {"v1": [("n", 10.0), ("r", 9.0)], "v2": [("n", 10.0), ("r", 1.0)]})
    (tmp_path / "val.qrels").write_text("v1 0 r 1\nv2 0 r 1\n")
    tuned = tmp_path / "weight.json"
    assert main(["tune-fusion", "--run", val_rr, "--first-stage", val_fs, "--qrels", str(tmp_path / "val.qrels"),
                 "--measure", "nDCG@1", "--out", str(tuned)]) == 0
    obj = json.loads(tuned.read_text())
    # the reranker is right on both validation queries: the smallest weight that follows it wins
    assert obj["measure"] == "nDCG@1" and 0.5 <= obj["weight"] <= 1.0
    assert len(obj["curve"]) == 21
    rr = _write_run(tmp_path / "rr.trec", RERANKED)
    fs = _write_run(tmp_path / "fs.trec", FIRST)
    out = tmp_path / "fused.trec"
    assert main(["fuse", "--run", rr, "--first-stage", fs, "--method", "linear", "--weight-from", str(tuned),
                 "--out", str(out)]) == 0
    expected = linear_fusion(read_trec_run(rr), read_trec_run(fs), obj["weight"])
    assert [d for d, _ in read_trec_run(out)["q1"]] == [d for d, _ in expected["q1"]]
    assert main(["fuse", "--run", rr, "--first-stage", fs, "--method", "rrf", "--out", str(out)]) == 0
    assert [d for d, _ in read_trec_run(out)["q1"]] == ["a", "b", "c", "d"]


def test_cli_linear_without_weight_is_a_one_line_error(tmp_path, capsys) -> None:
    from llmrank.cli import main

    rr = _write_run(tmp_path / "rr.trec", RERANKED)
    fs = _write_run(tmp_path / "fs.trec", FIRST)
    assert main(["fuse", "--run", rr, "--first-stage", fs, "--method", "linear", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tune-fusion" in err[0]
    assert not (tmp_path / "o").exists()
