"""Readers: every format on small hand-made files, bad input, load_source, and the real shared data."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest

from llmrank.data import Doc, RankingList, load_source, register_reader, write_lists_jsonl
from llmrank.data.readers import (
    beir_training_lists,
    content_docid,
    iter_lists_jsonl,
    read_beir,
    read_group_jsonl,
    read_hf,
    read_lists_jsonl,
    read_rankllm,
    read_trec,
    registered_formats,
)


def _shared_data() -> Path | None:
    env = os.environ.get("LLMRANK_SHARED_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return path if path.is_dir() else None


SHARED = _shared_data()
needs_shared = pytest.mark.skipif(SHARED is None, reason="../shared/data (or $LLMRANK_SHARED_DATA) is absent")


def _write(path: Path, lines: list[object]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def _lists() -> list[RankingList]:
    return [
        RankingList("q1", "what is a cat", [Doc("d1", "a cat is an animal", "Cat"), Doc("d2", "dogs bark")], [2.0, 0.0],
                    teacher_scores=[1.5, -0.5], order=[0, 1]),
        RankingList("q2", "rain", [Doc("d3", "water falls")], [1.0]),
    ]  # fmt: skip


# ----------------------------------------------------------------------------- canonical JSONL


def test_jsonl_roundtrip_atomic(tmp_path: Path) -> None:
    path = write_lists_jsonl(_lists(), tmp_path / "sub" / "lists.jsonl")
    assert [p.name for p in path.parent.iterdir()] == ["lists.jsonl"]  # no temp file left behind
    back = read_lists_jsonl(path)
    assert [rl.to_dict() for rl in back] == [rl.to_dict() for rl in _lists()]
    assert load_source({"format": "jsonl", "path": str(path)})[0].teacher_scores == [1.5, -0.5]


def test_write_failure_keeps_old_file(tmp_path: Path) -> None:
    path = write_lists_jsonl(_lists()[:1], tmp_path / "lists.jsonl")

    def broken():
        yield _lists()[1]
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_lists_jsonl(broken(), path)
    assert len(read_lists_jsonl(path)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["lists.jsonl"]


def test_jsonl_bad_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(_lists()[0].to_json() + "\n\n{not json\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:3: not valid JSON.*RankingList"):
        read_lists_jsonl(path)
    _write(path, [{"qid": "q", "query": "x", "docs": []}])
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: missing key 'labels'"):
        read_lists_jsonl(path)
    _write(path, [[1, 2]])
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: found a JSON list"):
        read_lists_jsonl(path)


def test_empty_lists_dropped_with_warning(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "l.jsonl", [{"qid": "empty", "query": "x", "docs": [], "labels": []}, _lists()[1].to_dict()]
    )
    assert len(list(iter_lists_jsonl(path))) == 2
    with pytest.warns(UserWarning, match=r"dropped 1 list.*'empty'"):
        lists = read_lists_jsonl(path)
    assert [rl.qid for rl in lists] == ["q2"]
    _write(path, [{"qid": "empty", "query": "x", "docs": [], "labels": []}])
    with warnings.catch_warnings(), pytest.raises(ValueError, match="no non-empty ranking list"):
        warnings.simplefilter("ignore")
        load_source({"format": "jsonl", "path": path})


# ----------------------------------------------------------------------------- group format


def test_group_format(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.jsonl", [
        {"query": "q one", "pos": ["p1"], "neg": ["n1", "n2"], "pos_scores": [3.0], "neg_scores": [1.0, 0.5], "prompt": "x"},
        {"query": "q two", "qid": 7, "pos": [{"docid": "D9", "title": "T", "text": "p2"}], "neg": []},
    ])  # fmt: skip
    a, b = read_group_jsonl(path)
    assert a.labels == [1.0, 0.0, 0.0] and a.teacher_scores == [3.0, 1.0, 0.5]
    assert a.docs[0].docid == content_docid("p1") and a.docs[0].text == "p1" and a.meta["prompt"] == "x"
    assert a.qid == read_group_jsonl(path)[0].qid  # stable hash
    assert b.qid == "7" and b.docs == [Doc("D9", "p2", "T")] and b.teacher_scores is None


def test_group_bad_input(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.jsonl", [{"query": "q", "pos": ["p"], "neg": ["n"]}, {"question": "q", "pos": []}])
    with pytest.raises(ValueError, match=r"g\.jsonl:2: no string 'query'"):
        read_group_jsonl(path)
    _write(path, [{"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": [1.0], "neg_scores": [1.0, 2.0]}])
    with pytest.raises(ValueError, match=r"g\.jsonl:1: 'neg_scores' has 2 entries; expected a list of 1"):
        read_group_jsonl(path)
    _write(path, [{"query": "q", "pos": [3], "neg": []}])
    with pytest.raises(ValueError, match=r"g\.jsonl:1: passage of type int"):
        read_group_jsonl(path)
    _write(path, [{"query": "q", "pos": [], "neg": []}, {"query": "r", "pos": ["p"]}])
    with pytest.warns(UserWarning, match="dropped 1"):
        assert len(read_group_jsonl(path)) == 1


# ----------------------------------------------------------------------------- TREC pieces


@pytest.fixture()
def beir_dir(tmp_path: Path) -> Path:
    d = tmp_path / "beir"
    (d / "qrels").mkdir(parents=True)
    _write(d / "corpus.jsonl", [{"_id": f"d{i}", "title": f"t{i}", "text": f"text {i}"} for i in range(6)])
    _write(
        d / "queries.jsonl",
        [{"_id": "1", "text": "first"}, {"_id": "2", "text": "second"}, {"_id": "3", "text": "third"}],
    )
    (d / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t2\n1\td5\t1\n2\td0\t0\n")
    (d / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n3\td4\t1\n1\td2\t1\n")
    (d / "run.trec").write_text(
        "1 Q0 d0 1 9.0 bm25\n1 Q0 d1 2 8.0 bm25\n1 Q0 d2 3 7.0 bm25\n1 Q0 d3 4 6.0 bm25\n2 Q0 d3 1 3.0 bm25\n"
    )
    return d


def test_trec_reader(beir_dir: Path, tmp_path: Path) -> None:
    topics = tmp_path / "topics.tsv"
    topics.write_text("1\tfirst query\n2\tsecond\n")
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("1 0 d1 3\n1 0 d2 1\n")
    lists = read_trec(beir_dir / "run.trec", topics=topics, corpus=beir_dir / "corpus.jsonl", qrels=qrels, top_k=3)
    assert [rl.qid for rl in lists] == ["1", "2"]
    assert [d.docid for d in lists[0].docs] == ["d0", "d1", "d2"] and lists[0].labels == [0.0, 3.0, 1.0]
    assert lists[0].query == "first query" and lists[0].docs[1] == Doc("d1", "text 1", "t1")
    assert lists[0].meta["first_stage_scores"] == [9.0, 8.0, 7.0]
    same = load_source({"format": "trec", "path": beir_dir / "run.trec", "topics": beir_dir, "corpus": beir_dir})
    assert len(same[0]) == 4 and same[0].query == "first" and same[0].labels == [0.0] * 4  # no qrels


def test_trec_missing_text_and_bad_lines(beir_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run.trec"
    run.write_text("1 Q0 d99 1 1.0 x\n")
    with pytest.raises(ValueError, match=r"docid 'd99' has no text in corpus .*corpus\.jsonl"):
        read_trec(run, topics=beir_dir, corpus=beir_dir)
    run.write_text("7 Q0 d1 1 1.0 x\n")
    with pytest.raises(ValueError, match=r"query '7' of the run has no text in topics"):
        read_trec(run, topics=beir_dir, corpus=beir_dir)
    run.write_text("1 Q0 d1 1 1.0 x\n1 d1 1.0\n")
    with pytest.raises(ValueError, match=r"run\.trec:2: expected 6 columns .*got 3"):
        read_trec(run, topics=beir_dir, corpus=beir_dir)
    topics = tmp_path / "topics.tsv"
    topics.write_text("1 no tab here\n")
    with pytest.raises(ValueError, match=r"topics\.tsv:1: expected 'qid<TAB>query'"):
        read_trec(beir_dir / "run.trec", topics=topics, corpus=beir_dir)


def test_beir_reader_and_training_lists(beir_dir: Path) -> None:
    lists = read_beir(beir_dir, beir_dir / "run.trec", split="test", top_k=2)
    assert [(rl.qid, [d.docid for d in rl.docs], rl.labels) for rl in lists] == [
        ("1", ["d0", "d1"], [0.0, 2.0]),
        ("2", ["d3"], [0.0]),
    ]
    train = beir_training_lists(beir_dir, beir_dir / "run.trec", split="test", top_k=3, num_negatives=1)
    by_qid = {rl.qid: rl for rl in train}
    # positives: d1 from the run, d5 (missed by the run) appended; negatives: only the best one (d0)
    assert [d.docid for d in by_qid["1"].docs] == ["d0", "d1", "d5"] and by_qid["1"].labels == [0.0, 2.0, 1.0]
    assert by_qid["1"].meta["first_stage_scores"] == [9.0, 8.0, None]
    tr = load_source({"format": "beir", "path": beir_dir, "run": beir_dir / "run.trec", "split": "train",
                      "add_missing_positives": True})  # fmt: skip
    assert {rl.qid: [d.docid for d in rl.docs] for rl in tr} == {"1": ["d0", "d1", "d2", "d3"], "3": ["d4"]}
    with pytest.raises(ValueError, match=r"no split 'dev'.*\['test', 'train'\]"):
        read_beir(beir_dir, beir_dir / "run.trec", split="dev")


# ----------------------------------------------------------------------------- rank_llm JSON


def test_rankllm_reader(tmp_path: Path) -> None:
    hits = [{"content": f"c{i}", "qid": 5, "docid": f"d{i}", "rank": i + 1, "score": 10.0 - i} for i in range(4)]
    path = tmp_path / "c.json"
    path.write_text(json.dumps([{"query": "q", "hits": hits[::-1]}, {"query": "empty", "hits": []}]))
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("5 0 d2 3\n5 0 d9 1\n")
    with pytest.warns(UserWarning, match="dropped 1"):
        (rl,) = read_rankllm(path, qrels=qrels, top_k=3)
    assert rl.qid == "5" and [d.docid for d in rl.docs] == ["d0", "d1", "d2"] and rl.labels == [0.0, 0.0, 3.0]
    assert rl.meta["first_stage_scores"] == [10.0, 9.0, 8.0]
    path.write_text(json.dumps([{"query": "q", "hits": [{"qid": 1, "docid": "x"}]}]))
    with pytest.raises(ValueError, match=r"c\.json: entry 0, candidate 0 \(query '1', document 'x'\) has no passage text: give 'content'"):
        read_rankllm(path)
    path.write_text('[{"query": "q",\n "hits": [}]')
    with pytest.raises(ValueError, match=r"c\.json:2: not valid JSON"):
        read_rankllm(path)


# ----------------------------------------------------------------------------- datasets


def _tevatron_rows() -> list[dict]:
    return [
        {"query_id": "1", "query": "cats", "positive_passages": [{"docid": "p1", "title": "C", "text": "cat"}],
         "negative_passages": [{"docid": "n1", "title": "", "text": "dog"}, {"docid": "n2", "title": "", "text": "cow"}]},
        {"query_id": "2", "query": "rain", "positive_passages": [{"docid": "p2", "title": "", "text": "wet"}],
         "negative_passages": []},
    ]  # fmt: skip


def test_hf_save_to_disk_and_streaming(tmp_path: Path) -> None:
    import datasets

    datasets.DatasetDict({"train": datasets.Dataset.from_list(_tevatron_rows())}).save_to_disk(str(tmp_path / "ds"))
    lists = read_hf(tmp_path / "ds", qid_column="query_id")
    assert [rl.qid for rl in lists] == ["1", "2"] and lists[0].labels == [1.0, 0.0, 0.0]
    assert lists[0].docs[0] == Doc("p1", "cat", "C") and lists[0].docs[1].title is None
    streamed = load_source({"format": "hf", "path": str(tmp_path / "ds"), "streaming": True, "qid_column": "query_id"})
    assert not isinstance(streamed, list)
    assert [rl.to_dict() for rl in streamed] == [rl.to_dict() for rl in lists]
    with pytest.raises(ValueError, match=r"no split 'dev'"):
        read_hf(tmp_path / "ds", split="dev")
    with pytest.raises(ValueError, match=r"no column 'query_idx'; did you mean 'query_id'"):
        read_hf(tmp_path / "ds", qid_column="query_idx")


def test_hf_json_docs_labels(tmp_path: Path) -> None:
    rows = [
        {"q": "a", "passages": ["x", "y"], "grades": [0, 2], "t": [0.1, 0.9]},
        {"q": "b", "passages": [], "grades": []},
    ]
    path = _write(tmp_path / "rows.jsonl", rows)
    spec = {
        "format": "hf",
        "path": str(path),
        "query_column": "q",
        "docs_column": "passages",
        "labels_column": "grades",
    }
    with pytest.warns(UserWarning, match="dropped 1"):
        (rl,) = load_source(spec)
    assert rl.labels == [0.0, 2.0] and rl.docs[1].docid == content_docid("y")
    (rl,) = load_source({**spec, "path": str(path), "limit": 1, "teacher_column": "t"})
    assert rl.teacher_scores == [0.1, 0.9]
    with pytest.raises(ValueError, match="needs a labels_column"):
        read_hf(path, query_column="q", docs_column="passages")


# ----------------------------------------------------------------------------- load_source


def test_load_source_errors_and_registry(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown data format 'jsonll'; did you mean 'jsonl'"):
        load_source({"format": "jsonll", "path": "x"})
    with pytest.raises(ValueError, match=r"unknown key 'topk' for data format 'rankllm'; did you mean 'top_k'"):
        load_source({"format": "rankllm", "path": "x", "topk": 3})
    with pytest.raises(ValueError, match=r"needs key\(s\) \['path'\]"):
        load_source({"format": "group"})
    with pytest.raises(ValueError, match="has no 'format'"):
        load_source({"path": "x"})
    assert {"jsonl", "group", "rankllm", "trec", "beir", "hf", "synthetic"} <= set(registered_formats())

    @register_reader("toy-test-format")
    def _toy(path: str, n: int = 1) -> list[RankingList]:
        return [RankingList(str(i), path, [Doc("d", "t")], [1.0]) for i in range(n)]

    assert len(load_source({"format": "toy-test-format", "path": "p", "n": 2})) == 2
    with pytest.raises(ValueError, match="already registered"):
        register_reader("toy-test-format")(lambda path: [])


def test_load_source_synthetic() -> None:
    train = load_source({"format": "synthetic", "split": "train", "num_queries": 24, "docs_per_query": 12})
    test = load_source({"format": "synthetic", "split": "test", "num_queries": 24, "docs_per_query": 12})
    assert len(train) + len(test) == 24 and all(len(rl) == 12 for rl in train)


# ----------------------------------------------------------------------------- real shared data


@needs_shared
def test_shared_group_files() -> None:
    assert SHARED is not None
    lists = load_source(
        {"format": "group", "path": SHARED / "msmarco-train-samples" / "flagembedding_reranker_examples.jsonl"}
    )
    assert len(lists) == 10 and all(rl.labels[0] == 1.0 and sum(rl.labels) == 1.0 for rl in lists)
    assert all(rl.teacher_scores is not None and len(rl) == 26 for rl in lists)
    toy = read_group_jsonl(SHARED / "msmarco-train-samples" / "flagembedding_llara_toy_finetune_data.jsonl")
    # (the data README says 10 rows without scores; the file holds 11 rows with pos/neg_scores)
    assert len(toy) >= 10 and all(len(rl) == 31 and rl.labels.count(1.0) == 1 for rl in toy)


@needs_shared
def test_shared_dl19_rankllm_and_trec_agree() -> None:
    assert SHARED is not None
    dl19 = SHARED / "trec-dl-2019"
    lists = read_rankllm(dl19 / "bm25_top100.json", qrels=dl19 / "qrels.txt")
    assert len(lists) == 43 and all(len(rl) == 100 for rl in lists)
    assert sum(y > 0 for rl in lists for y in rl.labels) > 1000
    rl = lists[0]
    assert rl.qid == "264014" and rl.query == "how long is life cycle of flea" and rl.docs[0].docid == "5611210"
    # the TREC run holds the same ranking as the JSON
    import ir_measures

    run = {rl.qid: {d.docid: s for d, s in zip(rl.docs, rl.meta["first_stage_scores"])} for rl in lists}
    qrels = list(ir_measures.read_trec_qrels(str(dl19 / "qrels.txt")))
    assert ir_measures.calc_aggregate([ir_measures.nDCG @ 10], qrels, run)[ir_measures.nDCG @ 10] == pytest.approx(
        0.5058, abs=1e-4
    )


@needs_shared
def test_shared_scifact_beir() -> None:
    assert SHARED is not None
    scifact = SHARED / "beir" / "scifact"
    # a tiny run built from the qrels themselves plus two fixed negatives
    run_lines = []
    qrels = [line.split("\t") for line in (scifact / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    first_positive = {}
    for qid, docid, _ in qrels:
        first_positive.setdefault(qid, docid)
    for qid, docid in list(first_positive.items())[:20]:
        run_lines += [f"{qid} Q0 {docid} 1 3.0 t", f"{qid} Q0 4983 2 2.0 t", f"{qid} Q0 5836 3 1.0 t"]
    run = Path(os.environ.get("TMPDIR", "/tmp")) / f"llmrank_scifact_run_{os.getpid()}.trec"
    run.write_text("\n".join(run_lines) + "\n")
    try:
        lists = read_beir(scifact, run, split="test")
        assert lists and all(rl.labels[0] == 1.0 and rl.docs[1].docid == "4983" for rl in lists)
        assert lists[0].docs[0].title  # BEIR titles kept apart
        train = beir_training_lists(scifact, run, split="train", num_negatives=2)
        assert len(train) > 400 and all(any(y > 0 for y in rl.labels) for rl in train)
    finally:
        run.unlink()
