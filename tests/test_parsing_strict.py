"""Strict parsing of data files (issue 14, items 2, 10 and 12).

qrels layout decided once per file, integer grades, rank_llm's current and older request
formats through one parser, "not UTF-8 text" naming the file, JSON never sniffed as a TREC
run, one atomic writer, and the bad-input table of tests/bad_inputs_data.py replayed through
the CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmrank import io_utils, runs
from llmrank.data.readers import load_source, read_rankllm, read_trec
from llmrank.document import Doc
from llmrank.io_utils import FormatError
from llmrank.runs import (
    is_rank_llm_json,
    parse_rank_llm,
    read_corpus,
    read_qrels,
    read_rank_llm,
    read_topics,
    read_trec_run,
)
from tests.bad_inputs_data import CASES

REPO = Path(__file__).resolve().parents[1]


def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


# ----------------------------------------------------------------------------- qrels (item 2)


def test_qrels_trec_without_relevance_column_is_an_error(tmp_path: Path) -> None:
    # DL19-style numeric docids: read per line as BEIR 'qid docid rel' this used to give document
    # 'Q0' a grade equal to the docid, and every measure 0.0
    q = _write(tmp_path / "qrels.txt", "19335 Q0 1017759\n19335 Q0 1082489\n")
    with pytest.raises(FormatError, match=r"qrels\.txt:1: .*second is always 'Q0'.*relevance column lost"):
        read_qrels(q)
    _write(q, "19335 0 1017759\n")
    with pytest.raises(FormatError, match="relevance column lost"):
        read_qrels(q)


def test_qrels_mixed_widths_name_the_line(tmp_path: Path) -> None:
    q = _write(tmp_path / "qrels.txt", "1 0 d1 1\n1 0 d2 0\n\n1 Q0 1234\n")
    with pytest.raises(FormatError, match=r"qrels\.txt:4: 3 columns, but line 1 makes this a 4-column TREC"):
        read_qrels(q)
    b = _write(tmp_path / "test.tsv", "query-id\tcorpus-id\tscore\n1\td1\t1\n1 0 d2 1\n")
    with pytest.raises(FormatError, match=r"test\.tsv:3: 4 columns, but line 1 makes this a 3-column BEIR"):
        read_qrels(b)


def test_qrels_grades_must_be_integers(tmp_path: Path) -> None:
    q = _write(tmp_path / "q.txt", "1 0 d1 2.0\n1 0 d2 0\n1 0 d3 -1\n")
    assert read_qrels(q) == {"1": {"d1": 2, "d2": 0, "d3": -1}}  # an integral value written as a float is fine
    for grade, message in [("0.5", "is not an integer"), ("high", "is not a number"), ("inf", "is not an integer")]:
        _write(q, f"1 0 d1 1\n1 0 d2 {grade}\n")
        with pytest.raises(FormatError, match=rf"q\.txt:2: relevance '{grade}' {message}; ir-measures"):
            read_qrels(q)


def test_qrels_layouts_accepted(tmp_path: Path) -> None:
    beir = _write(tmp_path / "test.tsv", "query-id\tcorpus-id\tscore\n1\t31715818\t1\n3\t14717500\t0\n")
    assert read_qrels(beir) == {"1": {"31715818": 1}, "3": {"14717500": 0}}
    headerless = _write(tmp_path / "b.tsv", "1\td1\t1\n2\td2\t2\n")
    assert read_qrels(headerless) == {"1": {"d1": 1}, "2": {"d2": 2}}
    trec = _write(tmp_path / "t.txt", "\ufeff1 Q0 d1 3\r\n1 Q0 d1 3\r\n")  # BOM, CRLF, identical repeat
    assert read_qrels(trec) == {"1": {"d1": 3}}
    _write(trec, "1 0 d1 1\n1 0 d1 2\n")
    with pytest.raises(FormatError, match=r"t\.txt:2: .* judged 2 here but 1 on line 1"):
        read_qrels(trec)


def test_training_reads_qrels_with_the_same_strictness(tmp_path: Path) -> None:
    _write(tmp_path / "run.trec", "1 Q0 d1 1 2.0 x\n1 Q0 d2 2 1.0 x\n")
    _write(tmp_path / "topics.tsv", "1\tq\n")
    _write(tmp_path / "corpus.jsonl", '{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": "b"}\n')
    qrels = _write(tmp_path / "qrels.txt", "1 Q0 d1\n1 Q0 d2\n")
    spec = {"format": "trec", "path": tmp_path / "run.trec", "topics": tmp_path / "topics.tsv",
            "corpus": tmp_path / "corpus.jsonl", "qrels": qrels}  # fmt: skip
    with pytest.raises(FormatError, match="relevance column lost"):  # used to give all-zero labels
        load_source(spec)
    _write(qrels, "1 0 d1 0.5\n")
    with pytest.raises(FormatError, match=r"qrels\.txt:1: relevance '0\.5' is not an integer"):
        read_trec(**{k: v for k, v in spec.items() if k != "format"})
    _write(qrels, "1 0 d1 2\n")
    (rl,) = load_source(spec)
    assert rl.labels == [2.0, 0.0]


def test_evaluate_cli_rejects_trec_qrels_without_relevance(tmp_path: Path) -> None:
    """The issue's reproduction: exit 0 and nDCG@10 = 0.0000 before; a one-line error now."""
    run = _write(tmp_path / "run.trec", "19335 Q0 1017759 1 2.0 x\n19335 Q0 1082489 2 1.0 x\n")
    qrels = _write(tmp_path / "qrels.txt", "19335 Q0 1017759\n19335 Q0 1082489\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "llmrank.cli", "evaluate", "--run", str(run), "--qrels", str(qrels)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2 and "0.0000" not in proc.stdout
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert f"{qrels}:1: every line has 3 columns" in proc.stderr


def test_qrels_one_bad_line_no_longer_changes_dl19(tmp_path: Path) -> None:
    """One 'qid Q0 docid' line inside the real DL19 qrels used to move nDCG@10 from 0.5058 to 0.4944."""
    dl19 = Path(os.environ.get("LLMRANK_SHARED_DATA", "/work/shared/data")) / "trec-dl-2019"
    if not (dl19 / "qrels.txt").exists():
        pytest.skip("shared DL19 data not present")
    lines = (dl19 / "qrels.txt").read_text().splitlines(keepends=True)
    assert len(read_qrels(dl19 / "qrels.txt")) == 43
    broken = _write(tmp_path / "qrels.txt", "".join(lines[:100]) + "19335 Q0 1017759\n" + "".join(lines[100:]))
    with pytest.raises(FormatError, match=r"qrels\.txt:101: 3 columns, but line 1 makes this a 4-column"):
        read_qrels(broken)


# ----------------------------------------------------------------------------- rank_llm (item 10)

#: rank_llm's current request format, as rank_llm.data.DataWriter.write_in_jsonl_format writes it
CURRENT = [
    {"query": {"text": "how long is life cycle of flea", "qid": 264014},
     "candidates": [
         {"docid": "5611210", "score": 15.78, "doc": {"contents": "A flea can live up to a year."}},
         {"docid": "6641238", "score": 15.09, "doc": {"segment": "The life cycle of a flea.", "title": "Fleas"}},
         {"docid": "4834547", "score": 14.97, "doc": {"text": "It depends on the stage.", "title": ""}},
     ]},
    {"query": {"text": "empty", "qid": "2"}, "candidates": []},
]  # fmt: skip
#: the same request in the older ``hits`` format (rank_llm's Retriever.from_inline_hits / RankGPT)
OLDER = [
    {"query": "how long is life cycle of flea",
     "hits": [
         {"content": "It depends on the stage.", "qid": 264014, "docid": "4834547", "rank": 3, "score": 14.97},
         {"content": "A flea can live up to a year.", "qid": 264014, "docid": "5611210", "rank": 1, "score": 15.78},
         {"content": "The life cycle of a flea.", "title": "Fleas", "qid": 264014, "docid": "6641238",
          "rank": 2, "score": 15.09},
     ]},
]  # fmt: skip


@pytest.mark.parametrize("layout", ["json", "jsonl", "older"])
def test_rank_llm_formats_read_alike_by_eval_and_training(tmp_path: Path, layout: str) -> None:
    if layout == "json":
        path = _write(tmp_path / "requests.json", json.dumps(CURRENT, indent=2))
    elif layout == "jsonl":
        path = _write(tmp_path / "requests.jsonl", "".join(json.dumps(r) + "\n" for r in CURRENT))
    else:
        path = _write(tmp_path / "hits.json", json.dumps(OLDER))
    assert is_rank_llm_json(path)
    run, topics, docs = read_rank_llm(path)
    assert run == {"264014": [("5611210", 15.78), ("6641238", 15.09), ("4834547", 14.97)]}
    assert topics["264014"] == "how long is life cycle of flea"
    assert docs["6641238"] == Doc("6641238", "The life cycle of a flea.", "Fleas")
    assert docs["4834547"] == Doc("4834547", "It depends on the stage.", None)
    qrels = _write(tmp_path / "qrels.txt", "264014 0 6641238 2\n")
    lists = read_rankllm(path, qrels=qrels) if layout == "older" else _without_empty_warning(path, qrels)
    (rl,) = lists
    assert rl.qid == "264014" and [d.docid for d in rl.docs] == ["5611210", "6641238", "4834547"]
    assert rl.labels == [0.0, 2.0, 0.0] and rl.meta["first_stage_scores"] == [15.78, 15.09, 14.97]
    assert rl.docs[1].title == "Fleas"


def _without_empty_warning(path: Path, qrels: Path) -> list:
    with pytest.warns(UserWarning, match="dropped 1 list"):
        return read_rankllm(path, qrels=qrels)


def test_rank_llm_single_pretty_printed_request_and_text_keys(tmp_path: Path) -> None:
    req = {"query": {"text": "q", "qid": "7"}, "candidates": [
        {"docid": "a", "score": 1.0, "doc": {"body": "from body"}},
        {"docid": "b", "score": 0.5, "doc": {"passage": "from passage", "contents": "from contents"}},
    ]}  # fmt: skip
    path = _write(tmp_path / "one.json", "\n" + json.dumps(req, indent=2))
    assert is_rank_llm_json(path)
    (request,) = parse_rank_llm(path)
    assert request.where.endswith("one.json:2")
    # rank_llm's order: text, segment, contents, content, body, passage
    assert [c.text for c in request.candidates] == ["from body", "from contents"]


def test_rank_llm_errors_name_the_place(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    _write(path, json.dumps(CURRENT[0]) + "\n" + json.dumps({"query": {"text": "x"}, "candidates": []}) + "\n")
    with pytest.raises(FormatError, match=r"c\.jsonl:2: 'query' must be \{text: string, qid"):
        parse_rank_llm(path)
    _write(path, json.dumps({"query": "q", "results": []}) + "\n")
    with pytest.raises(FormatError, match=r"c\.jsonl:1: keys \['query', 'results'\] are not a rank_llm request"):
        parse_rank_llm(path)
    bad_doc = {"query": {"text": "q", "qid": 1}, "candidates": [{"docid": "a", "score": 1, "doc": "text"}]}
    _write(path, json.dumps(bad_doc) + "\n")
    with pytest.raises(FormatError, match=r"c\.jsonl:1, candidate 0: 'doc' must be an object"):
        parse_rank_llm(path)
    two_qids = [{"query": "q", "hits": [{"qid": 1, "docid": "a", "content": "x"},
                                        {"qid": 2, "docid": "b", "content": "y"}]}]  # fmt: skip
    _write(path, json.dumps(two_qids))
    with pytest.raises(FormatError, match=r"entry 0, hit 1: qid '2' differs from the request's qid '1'"):
        parse_rank_llm(path)


def test_rank_llm_missing_text(tmp_path: Path) -> None:
    no_text = [{"query": {"text": "q", "qid": "1"}, "candidates": [{"docid": "a", "score": 1.0, "doc": {}}]}]
    path = _write(tmp_path / "ids.json", json.dumps(no_text))
    run, _, docs = read_rank_llm(path)  # ids only: the texts may come from --corpus / --index
    assert run == {"1": [("a", 1.0)]} and docs == {}
    with pytest.raises(FormatError, match=r"candidate 0 \(query '1', document 'a'\) has no passage text: .*--corpus"):
        read_rank_llm(path, require_text=True)
    with pytest.raises(FormatError, match="has no passage text.*training needs every passage's text"):
        read_rankllm(path)


def test_rerank_without_content_says_the_field_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Used to say 'run documents are not in the corpus/index' though no corpus was given."""
    from llmrank.cli import main

    hits = [{"query": "q", "hits": [{"qid": 1, "docid": "a", "rank": 1, "score": 1.0}]}]
    path = _write(tmp_path / "cands.json", json.dumps(hits))
    rc = main(["rerank", "--model", str(tmp_path / "none"), "--run", str(path), "--out", str(tmp_path / "o.trec")])
    err = capsys.readouterr().err
    assert rc == 2 and "has no passage text: give 'content' in a hit" in err and "not in the corpus" not in err
    assert not (tmp_path / "o.trec").exists()


# ----------------------------------------------------------------------------- encodings and sniffing (item 12)


@pytest.mark.parametrize(
    ("reader", "name"),
    [(read_trec_run, "run.trec"), (read_qrels, "qrels.txt"), (read_topics, "topics.tsv"),
     (read_corpus, "corpus.jsonl"), (parse_rank_llm, "cands.json")],
)  # fmt: skip
def test_every_reader_names_the_file_when_not_utf8(tmp_path: Path, reader, name: str) -> None:
    content = {"run.trec": "1 Q0 d1 1 1.0 x\n", "qrels.txt": "1 0 d1 1\n", "topics.tsv": "1\tq\n",
               "corpus.jsonl": '{"_id": "d1", "text": "t"}\n', "cands.json": json.dumps(OLDER)}[name]  # fmt: skip
    path = tmp_path / name
    for data, message in [
        (content.encode("utf-16"), "not UTF-8 text (it starts with a UTF-16 byte-order mark); re-save it as UTF-8"),
        (content.encode("utf-16-le"), "not UTF-8 text (binary data or UTF-16 without a byte-order mark)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8 text (binary data"),
    ]:
        _write(path, data)
        with pytest.raises(FormatError, match=rf"{name}: " + message.replace("(", r"\(").replace(")", r"\)")):
            reader(path)
    _write(path, content.replace("1", "\u00e9", 1).encode("latin-1"))
    with pytest.raises(FormatError, match=rf"{name}:1: not UTF-8 text \(byte 0xe9 at column \d+\)"):
        reader(path)
    _write(path, b"\xef\xbb\xbf" + content.encode())  # a UTF-8 BOM is accepted
    assert reader(path)


def test_json_is_never_read_as_a_trec_run(tmp_path: Path) -> None:
    obj = _write(tmp_path / "metrics.json", json.dumps({"nDCG@10": 0.5}, indent=2))
    assert not is_rank_llm_json(obj)
    with pytest.raises(FormatError, match=r"metrics\.json:1: this is JSON, not a run file"):
        read_trec_run(obj)
    corpus = _write(tmp_path / "corpus.jsonl", '{"_id": "d1", "text": "t"}\n')
    assert not is_rank_llm_json(corpus)  # a corpus given as --corpus is not mistaken for candidates
    with pytest.raises(FormatError, match=r"corpus\.jsonl:1: this is JSON, not a run file"):
        read_trec_run(corpus)


# ----------------------------------------------------------------------------- one atomic writer


def test_one_atomic_writer(tmp_path: Path) -> None:
    assert runs.write_json is io_utils.atomic_write_json and runs.write_text is io_utils.atomic_write_text
    assert runs.atomic_open is io_utils.atomic_open
    target = _write(tmp_path / "m.json", "old\n")
    with pytest.raises(TypeError):
        runs.write_json(target, {"x": object()})
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["m.json"]
    runs.write_json(target, {"x": "é"})
    assert json.loads(target.read_text(encoding="utf-8")) == {"x": "é"}


def test_runs_does_not_import_the_data_package() -> None:
    """llmrank.data.readers imports llmrank.runs at module level, so llmrank.runs (and what it
    imports) must not import llmrank.data, not even inside a function: no import cycle."""
    import ast

    for module in ("runs", "io_utils", "document"):
        tree = ast.parse((REPO / "llmrank" / f"{module}.py").read_text())
        imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in imported if m and m.startswith("llmrank.data")], (module, imported)
    import llmrank.data.readers as readers

    assert readers.read_qrels is read_qrels and readers.parse_rank_llm is parse_rank_llm


# ----------------------------------------------------------------------------- the bad-input table


def _materialize(case: dict, tmp: Path) -> list[str]:
    for rel, data in case["files"].items():
        _write(tmp / rel, data.replace(b"{tmp}", str(tmp).encode()))
    return [a.replace("{tmp}", str(tmp)) for a in case["argv"]]


def _snapshot(tmp: Path) -> dict[str, bytes]:
    return {str(p.relative_to(tmp)): p.read_bytes() for p in sorted(tmp.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_bad_data_files_give_one_line_errors(case: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from llmrank.cli import main

    tmp = tmp_path / "case"
    argv = _materialize(case, tmp)
    before = _snapshot(tmp)
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse
        rc = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and " INFO " not in line]
    assert rc not in (0, None), f"{case['name']}: exit {rc}"
    assert "Traceback" not in err
    assert len(lines) == 1, f"{case['name']}: stderr is not one line: {err!r}"
    assert case["expect_in_stderr"] in lines[0], f"{case['name']}: {lines[0]!r}"
    assert str(tmp) in lines[0], f"{case['name']}: the error names no file: {lines[0]!r}"
    assert _snapshot(tmp) == before, f"{case['name']}: files were created or changed"


def test_bad_input_table_is_large_enough() -> None:
    assert len(CASES) >= 15 and len({c["name"] for c in CASES}) == len(CASES)
