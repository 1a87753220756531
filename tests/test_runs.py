"""TREC run / qrels / topics / corpus / rank_llm JSON I/O."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmrank.data.record import Doc
from llmrank.runs import (
    FormatError,
    read_corpus,
    read_qrels,
    read_rank_llm,
    read_topics,
    read_trec_run,
    strictly_decreasing,
    write_rank_llm,
    write_trec_run,
)


def test_run_roundtrip_sorted_by_score(tmp_path: Path) -> None:
    path = tmp_path / "run.trec"
    path.write_text("q1 Q0 d1 1 1.5 x\nq1 Q0 d2 2 2.5 x\nq2 Q0 d3 1 0.1 x\n")
    run = read_trec_run(path)
    assert run == {"q1": [("d2", 2.5), ("d1", 1.5)], "q2": [("d3", 0.1)]}
    out = tmp_path / "out.trec"
    write_trec_run(out, run, tag="t")
    assert read_trec_run(out) == run
    assert out.read_text().splitlines()[0] == "q1 Q0 d2 1 2.5 t"


def test_written_scores_strictly_decreasing_keep_order_on_ties(tmp_path: Path) -> None:
    out = tmp_path / "tie.trec"
    write_trec_run(out, {"q": [("b", 1.0), ("a", 1.0), ("c", 1.0), ("d", 0.5)]})
    lines = [line.split() for line in out.read_text().splitlines()]
    assert [x[2] for x in lines] == ["b", "a", "c", "d"]
    scores = [float(x[4]) for x in lines]
    assert all(s > t for s, t in zip(scores, scores[1:]))
    # ir-measures would otherwise order the tie by docid: check it now follows our order
    import ir_measures

    run = list(ir_measures.read_trec_run(str(out)))
    assert sorted(run, key=lambda r: -r.score)[0].doc_id == "b"
    assert strictly_decreasing([3, 3, 2.9999995]) == pytest.approx([3.0, 3.0 - 1e-6, 3.0 - 2e-6], abs=1e-12)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("q1 Q0 d1 1 1.0 x\nq1 Q0 d1 2 0.5 x\n", "run.trec:2: document 'd1' appears twice"),
        ("q1 Q0 d1 1 1.0 x\nq1 Q0 d2 2 high x\n", "run.trec:2: score 'high' is not a number"),
        ("q1 Q0 d1 1 1.0\n", "run.trec:1: expected 6 columns"),
        ("q1 Q0 d1 1 nan x\n", "run.trec:1: score 'nan' is not finite"),
        ("\n\n", "the run is empty"),
    ],
)
def test_malformed_runs_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "run.trec"
    path.write_text(content)
    with pytest.raises(FormatError, match=message.replace("(", r"\(")):
        read_trec_run(path)


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.trec"
    out.write_text("previous content\n")
    with pytest.raises(ValueError, match="twice"):
        write_trec_run(out, {"q": [("a", 2.0), ("b", 1.0)], "r": [("x", 1.0), ("x", 0.5)]})
    assert out.read_text() == "previous content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.trec"]
    with pytest.raises(ValueError, match="empty run"):
        write_trec_run(tmp_path / "empty.trec", {})
    assert not (tmp_path / "empty.trec").exists()


def test_qrels_trec_and_beir(tmp_path: Path) -> None:
    trec = tmp_path / "q.txt"
    trec.write_text("1 0 d1 2\n1 0 d2 0\n2 0 d3 1\n")
    assert read_qrels(trec) == {"1": {"d1": 2, "d2": 0}, "2": {"d3": 1}}
    beir = tmp_path / "test.tsv"
    beir.write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n")
    assert read_qrels(beir) == {"1": {"d1": 1}}
    bad = tmp_path / "bad.txt"
    bad.write_text("1 0 d1 2\n1 0 d2 x\n")
    with pytest.raises(FormatError, match=r"bad.txt:2: relevance 'x'"):
        read_qrels(bad)


def test_topics_tsv_and_beir_jsonl(tmp_path: Path) -> None:
    tsv = tmp_path / "t.tsv"
    tsv.write_text("1\twhat is x\n2\twhy y\n")
    assert read_topics(tsv) == {"1": "what is x", "2": "why y"}
    jl = tmp_path / "queries.jsonl"
    jl.write_text('{"_id": "5", "text": "claim", "metadata": {}}\n')
    assert read_topics(jl) == {"5": "claim"}
    bad = tmp_path / "bad.tsv"
    bad.write_text("1\tok\n2 no tab\n")
    with pytest.raises(FormatError, match="bad.tsv:2"):
        read_topics(bad)


def test_corpus_beir_folder_and_pyserini_jsonl(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"_id": "a", "title": "T", "text": "body"}\n')
    docs = read_corpus(tmp_path)
    assert docs["a"] == Doc("a", "body", "T") and docs["a"].full_text() == "T body"
    p = tmp_path / "c2.jsonl"
    p.write_text('{"id": "b", "contents": "x y"}\n{"id": "c"}\n')
    with pytest.raises(FormatError, match="c2.jsonl:2"):
        read_corpus(p)


def test_rank_llm_roundtrip(tmp_path: Path) -> None:
    run = {"1": [("d1", 3.0), ("d2", 2.0)]}
    docs = {"d1": Doc("d1", "one"), "d2": Doc("d2", "two", "T2")}
    path = tmp_path / "cands.json"
    write_rank_llm(path, run, {"1": "query one"}, docs)
    data = json.loads(path.read_text())
    # rank_llm's current request format (rank_llm.data.Request: Query(text, qid), Candidate(docid, score, doc))
    assert data[0]["query"] == {"text": "query one", "qid": "1"}
    assert data[0]["candidates"][0] == {"docid": "d1", "score": 3.0, "doc": {"text": "one"}}
    assert data[0]["candidates"][1]["doc"] == {"text": "two", "title": "T2"}
    run2, topics, docs2 = read_rank_llm(path)
    assert run2 == run and topics == {"1": "query one"} and docs2["d2"] == Doc("d2", "two", "T2")
    with pytest.raises(ValueError, match="no text for document 'd3'"):
        write_rank_llm(tmp_path / "x.json", {"1": [("d3", 1.0)]}, {"1": "q"}, docs)
    assert not (tmp_path / "x.json").exists()
