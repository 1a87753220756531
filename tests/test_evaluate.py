"""ir-measures wrapper: conventions, missing queries, significance, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from llmrank.cli import main
from llmrank.evaluate import evaluate_run, paired_ttest, parse_measures

QRELS = {"1": {"a": 3, "b": 1, "c": 0}, "2": {"d": 2}, "3": {"e": 2}}


def test_dl_measures_and_rel2_conventions() -> None:
    run = {"1": [("b", 2.0), ("a", 1.0)], "2": [("x", 1.0), ("d", 0.5)]}
    ev = evaluate_run(run, QRELS, "dl")
    assert ev.measures == ["nDCG@10", "RR(rel=2)@10", "AP(rel=2)", "R(rel=2)@100", "R(rel=2)@1000"]
    # query 1: only 'a' (rel 3) counts for RR(rel=2): found at rank 2; query 2: rank 2; query 3 missing -> 0
    assert ev.aggregate["RR(rel=2)@10"] == pytest.approx((0.5 + 0.5 + 0.0) / 3)
    # nDCG@10 with linear gains (trec_eval ndcg_cut): q1 = (1 + 3/log2(3)) / (3 + 1/log2(3))
    q1 = (1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3))
    assert ev.per_query["1"]["nDCG@10"] == pytest.approx(q1)
    assert ev.per_query["3"]["nDCG@10"] == 0.0
    assert ev.judged_queries == 3 and ev.run_queries_judged == 2


def test_beir_measures_and_custom_list() -> None:
    assert [str(m) for m in parse_measures("beir")] == ["nDCG@10", "R@100"]
    assert [str(m) for m in parse_measures("P@5, R(rel=2)@10")] == ["P@5", "R(rel=2)@10"]
    with pytest.raises(ValueError, match="unknown measure"):
        parse_measures("nDCG@ten")


def test_disjoint_queries_is_an_error() -> None:
    with pytest.raises(ValueError, match="share no query ids"):
        evaluate_run({"99": [("a", 1.0)]}, QRELS, "beir")


def test_paired_ttest_matches_scipy() -> None:
    from scipy.stats import ttest_rel

    good = evaluate_run({"1": [("a", 2.0)], "2": [("d", 1.0)], "3": [("x", 1.0), ("e", 0.0)]}, QRELS, ["nDCG@10"])
    bad = evaluate_run({"1": [("c", 2.0), ("a", 1.0)], "2": [("z", 1.0)]}, QRELS, ["nDCG@10"])
    res = paired_ttest(good, bad)["nDCG@10"]
    qs = sorted(QRELS)
    expected = ttest_rel([good.per_query[q]["nDCG@10"] for q in qs], [bad.per_query[q]["nDCG@10"] for q in qs])
    assert res["p_value"] == pytest.approx(expected.pvalue)
    assert res["delta"] > 0
    assert paired_ttest(good, good)["nDCG@10"]["p_value"] is None


def test_evaluate_cli_writes_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("".join(f"{q} 0 {d} {r}\n" for q, docs in QRELS.items() for d, r in docs.items()))
    run = tmp_path / "run.trec"
    run.write_text("1 Q0 a 1 3 x\n1 Q0 b 2 2 x\n2 Q0 d 1 1 x\n3 Q0 e 1 1 x\n")
    base = tmp_path / "base.trec"
    base.write_text("1 Q0 c 1 3 x\n1 Q0 a 2 2 x\n2 Q0 q 1 1 x\n")
    out = tmp_path / "ev"
    assert main(["evaluate", "--run", str(run), "--qrels", str(qrels), "--baseline", str(base), "--out-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| run.trec | 1.0000 |" in printed and "Δ vs base.trec" in printed
    result = json.loads((out / "metrics.json").read_text())
    assert result["aggregate"]["nDCG@10"] == pytest.approx(1.0)
    assert "p_value" in result["ttest_rel"]["nDCG@10"]
    csv_lines = (out / "per_query.csv").read_text().splitlines()
    assert csv_lines[0].startswith("query_id,nDCG@10") and len(csv_lines) == 4


def test_evaluate_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("1 0 a 1\n")
    run = tmp_path / "run.trec"
    run.write_text("7 Q0 a 1 1 x\n")
    assert main(["evaluate", "--run", str(run), "--qrels", str(qrels), "--out-dir", str(tmp_path / "o")]) == 2
    assert "share no query ids" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_in_memory_run_scores_as_the_file_written_from_it(tmp_path: Path) -> None:
    """Tied scores: the written run keeps the given order (strictly decreasing scores), and the
    in-memory evaluation must give the same numbers, not ir-measures' docid tie-break."""
    import ir_measures

    from llmrank.runs import write_trec_run

    run = {"1": [("a", 1.0), ("c", 1.0), ("b", 1.0)], "2": [("x", 0.5), ("d", 0.5)]}
    write_trec_run(tmp_path / "run.trec", run)
    from_file = evaluate_run({q: dict(ranked) for q, ranked in _read(tmp_path / "run.trec").items()}, QRELS, "dl")
    in_memory = evaluate_run(run, QRELS, "dl")
    assert in_memory.per_query == from_file.per_query
    # the given order puts 'a' (rel 3) first: RR(rel=2) is 1 for query 1, 'd' second for query 2
    assert in_memory.per_query["1"]["RR(rel=2)@10"] == 1.0 and in_memory.per_query["2"]["RR(rel=2)@10"] == 0.5
    qrels = [ir_measures.Qrel(q, d, r) for q, docs in QRELS.items() for d, r in docs.items()]
    direct = ir_measures.calc_aggregate([ir_measures.parse_measure("nDCG@10")], qrels,
                                        list(ir_measures.read_trec_run(str(tmp_path / "run.trec"))))  # fmt: skip
    assert in_memory.aggregate["nDCG@10"] == pytest.approx(list(direct.values())[0])


def _read(path: Path) -> dict[str, list[tuple[str, float]]]:
    out: dict[str, list[tuple[str, float]]] = {}
    for line in path.read_text().splitlines():
        qid, _, docid, _, score, _ = line.split()
        out.setdefault(qid, []).append((docid, float(score)))
    return out
