"""Bad data files as data: runs, qrels, topics, corpora, rank_llm JSON and training lists.

Each case is a dict:

* ``name``: a short identifier;
* ``files``: ``{relative path: content bytes}`` to create in an empty temporary folder
  (``{tmp}`` inside a file's bytes stands for that folder: replace it before writing);
* ``argv``: the arguments after ``llmrank`` (``{tmp}`` stands for that folder);
* ``expect_in_stderr``: a substring of the one-line error.

Every case must exit non-zero with one line on stderr that contains ``expect_in_stderr`` and
names the file, print no traceback, and create or replace nothing. Replayed by
``tests/test_parsing_strict.py::test_bad_data_files_give_one_line_errors``; other sweep scripts
can import :data:`CASES` too.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

GOOD_RUN = b"1 Q0 d1 1 2.0 bm25\n1 Q0 d2 2 1.0 bm25\n"
GOOD_QRELS = b"1 0 d1 1\n1 0 d2 0\n"
GOOD_TOPICS = b"1\tquery one\n"
GOOD_CORPUS = b'{"_id": "d1", "title": "", "text": "one"}\n{"_id": "d2", "title": "", "text": "two"}\n'


def _json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _hits(with_content: tuple[bool, ...]) -> bytes:
    hits = []
    for i, has in enumerate(with_content):
        hit: dict[str, Any] = {"qid": "1", "docid": f"d{i + 1}", "rank": i + 1, "score": 2.0 - i}
        if has:
            hit["content"] = f"passage {i + 1}"
        hits.append(hit)
    return _json([{"query": "query one", "hits": hits}])


def _evaluate(run: str = "run.trec", qrels: str = "qrels.txt") -> list[str]:
    return ["evaluate", "--run", "{tmp}/" + run, "--qrels", "{tmp}/" + qrels]


def _rerank(run: str, *extra: str) -> list[str]:
    # the model is never reached: every case fails while reading its inputs
    return ["rerank", "--model", "{tmp}/no-model", "--run", "{tmp}/" + run, "--out", "{tmp}/out.trec", *extra]


def _qrels_case(name: str, qrels: bytes, expect: str) -> dict[str, Any]:
    """``llmrank evaluate`` of a good run against the bad ``qrels``."""
    return {"name": name, "files": {"run.trec": GOOD_RUN, "qrels.txt": qrels}, "argv": _evaluate(),
            "expect_in_stderr": expect}  # fmt: skip


def _recipe(train: dict[str, Any]) -> bytes:
    """A recipe whose training data is bad; the data is read before any model is built."""
    lines = [
        "model: {family: cross-encoder, model_name_or_path: {tmp}/no-model}",
        f"data: {{train: {json.dumps(train)}, group_size: 2}}",
        "objective: [{name: softmax, weight: 1.0}]",
        "training: {output_dir: {tmp}/out, use_cpu: true, max_steps: 1}",
    ]
    return ("\n".join(lines) + "\n").encode()


def _train(train: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
    return {"files": {"recipe.yaml": _recipe(train), **files}, "argv": ["train", "{tmp}/recipe.yaml"]}


CASES: list[dict[str, Any]] = [
    # ------------------------------------------------------------------ qrels
    {
        "name": "qrels_trec_lost_relevance_column",
        "files": {"run.trec": b"19335 Q0 1017759 1 2.0 x\n19335 Q0 1082489 2 1.0 x\n",
                  "qrels.txt": b"19335 Q0 1017759\n19335 Q0 1082489\n"},
        "argv": _evaluate(),
        "expect_in_stderr": "qrels.txt:1: every line has 3 columns and the second is always 'Q0'",
    },
    _qrels_case("qrels_one_line_lost_relevance_in_trec_file", b"1 0 d1 1\n1 0 d2 0\n1 Q0 d3\n",
                "qrels.txt:3: 3 columns, but line 1 makes this a 4-column"),
    _qrels_case("qrels_fractional_grade", b"1 0 d1 1\n1 0 d2 0.5\n",
                "qrels.txt:2: relevance '0.5' is not an integer"),
    _qrels_case("qrels_non_numeric_grade", b"1 0 d1 high\n",
                "qrels.txt:1: relevance 'high' is not a number"),
    _qrels_case("qrels_beir_without_header_lost_grade", b"1 Q0 d1\n1 Q0 d2\n",
                "relevance column lost"),
    _qrels_case("qrels_conflicting_judgments", b"1 0 d1 1\n1 0 d1 2\n",
                "qrels.txt:2: document 'd1' of query '1' is judged 2 here but 1 on line 1"),
    _qrels_case("qrels_five_columns", b"1 0 d1 1 extra\n",
                "qrels.txt:1: 5 columns; expected 4"),
    {
        "name": "qrels_utf16",
        "files": {"run.trec": GOOD_RUN, "qrels.txt": GOOD_QRELS.decode().encode("utf-16")},
        "argv": _evaluate(),
        "expect_in_stderr": "qrels.txt: not UTF-8 text (it starts with a UTF-16 byte-order mark)",
    },
    {
        "name": "qrels_json",
        "files": {"run.trec": GOOD_RUN, "qrels.txt": _json({"1": {"d1": 1}})},
        "argv": _evaluate(),
        "expect_in_stderr": "qrels.txt:1: this is JSON, not a qrels file",
    },
    _qrels_case("qrels_empty", b"\n\n",
                "qrels.txt: no judgments found"),
    {
        "name": "qrels_header_only",
        "files": {"run.trec": GOOD_RUN, "qrels.tsv": b"query-id\tcorpus-id\tscore\n"},
        "argv": _evaluate(qrels="qrels.tsv"),
        "expect_in_stderr": "qrels.tsv: only a header line",
    },
    # ------------------------------------------------------------------ runs
    {
        "name": "run_top_level_json_object",
        "files": {"run.json": _json({"run": {"1": {"d1": 2.0}}}), "qrels.txt": GOOD_QRELS},
        "argv": _evaluate(run="run.json"),
        "expect_in_stderr": "run.json:1: this is JSON, not a run file",
    },
    {
        "name": "run_gzip_binary",
        "files": {"run.trec.gz": gzip.compress(GOOD_RUN), "qrels.txt": GOOD_QRELS},
        "argv": _evaluate(run="run.trec.gz"),
        "expect_in_stderr": "run.trec.gz: not UTF-8 text (gzip-compressed); decompress it first",
    },
    {
        "name": "run_latin1_docid",
        "files": {"run.trec": b"1 Q0 d1 1 2.0 x\n1 Q0 caf\xe9 2 1.0 x\n", "qrels.txt": GOOD_QRELS},
        "argv": _evaluate(),
        "expect_in_stderr": "run.trec:2: not UTF-8 text (byte 0xe9",
    },
    {
        "name": "run_utf16",
        "files": {"run.trec": GOOD_RUN.decode().encode("utf-16"), "qrels.txt": GOOD_QRELS},
        "argv": _evaluate(),
        "expect_in_stderr": "run.trec: not UTF-8 text (it starts with a UTF-16 byte-order mark)",
    },
    {
        "name": "run_five_columns",
        "files": {"run.trec": b"1 Q0 d1 1 2.0\n", "qrels.txt": GOOD_QRELS},
        "argv": _evaluate(),
        "expect_in_stderr": "run.trec:1: expected 6 columns",
    },
    {
        "name": "run_nan_score",
        "files": {"run.trec": b"1 Q0 d1 1 nan x\n", "qrels.txt": GOOD_QRELS},
        "argv": _evaluate(),
        "expect_in_stderr": "run.trec:1: score 'nan' is not finite",
    },
    {
        "name": "run_duplicate_document",
        "files": {"run.trec": b"1 Q0 d1 1 2.0 x\n1 Q0 d1 2 1.0 x\n", "qrels.txt": GOOD_QRELS},
        "argv": _evaluate(),
        "expect_in_stderr": "run.trec:2: document 'd1' appears twice for query '1'",
    },
    {
        "name": "run_is_a_directory",
        "files": {"runs/keep.txt": b"x", "qrels.txt": GOOD_QRELS},
        "argv": _evaluate(run="runs"),
        "expect_in_stderr": "is a directory, expected a file",
    },
    # ------------------------------------------------------------------ rank_llm JSON
    {
        "name": "rankllm_hit_without_content_no_corpus",
        "files": {"cands.json": _hits((False, False))},
        "argv": _rerank("cands.json"),
        "expect_in_stderr": "cands.json: entry 0, candidate 0 (query '1', document 'd1') has no passage text",
    },
    {
        "name": "rankllm_some_hits_without_content",
        "files": {"cands.json": _hits((True, False)), "qrels.txt": GOOD_QRELS},
        "argv": _evaluate(run="cands.json"),
        "expect_in_stderr": "cands.json: entry 0, candidate 1 (query '1', document 'd2') has no passage text",
    },
    {
        "name": "rankllm_candidates_query_without_qid",
        "files": {"cands.json": _json([{"query": "query one",
                                        "candidates": [{"docid": "d1", "score": 1.0, "doc": {"text": "x"}}]}]),
                  "qrels.txt": GOOD_QRELS},
        "argv": _evaluate(run="cands.json"),
        "expect_in_stderr": "cands.json: entry 0: 'query' must be {text: string, qid: string or int}",
    },
    {
        "name": "rankllm_duplicate_query",
        "files": {"cands.jsonl": b"".join(
            _json({"query": {"text": "q", "qid": 1},
                   "candidates": [{"docid": "d1", "score": 1.0, "doc": {"contents": "x"}}]}) + b"\n"
            for _ in range(2)), "qrels.txt": GOOD_QRELS},
        "argv": _evaluate(run="cands.jsonl"),
        "expect_in_stderr": "cands.jsonl:2: query '1' already appears at",
    },
    {
        "name": "rankllm_some_scores_missing",
        "files": {"cands.json": _json([{"query": {"text": "q", "qid": "1"}, "candidates": [
            {"docid": "d1", "score": 2.0, "doc": {"text": "x"}}, {"docid": "d2", "doc": {"text": "y"}}]}]),
            "qrels.txt": GOOD_QRELS},
        "argv": _evaluate(run="cands.json"),
        "expect_in_stderr": "candidate 1 has no score but others do",
    },
    {
        "name": "rankllm_invalid_json",
        "files": {"cands.json": b'[{"query": "q",\n "hits": [}]', "qrels.txt": GOOD_QRELS},
        "argv": _evaluate(run="cands.json"),
        "expect_in_stderr": "cands.json:2: not valid JSON",
    },
    {
        "name": "rankllm_list_of_numbers",
        "files": {"cands.json": b"[1, 2, 3]", "qrels.txt": GOOD_QRELS},
        "argv": _evaluate(run="cands.json"),
        "expect_in_stderr": "cands.json: entry 0: a JSON int; expected rank_llm requests",
    },
    # ------------------------------------------------------------------ topics
    {
        "name": "topics_without_tab",
        "files": {"run.trec": GOOD_RUN, "topics.tsv": b"1 query one\n", "corpus.jsonl": GOOD_CORPUS},
        "argv": _rerank("run.trec", "--topics", "{tmp}/topics.tsv", "--corpus", "{tmp}/corpus.jsonl"),
        "expect_in_stderr": "topics.tsv:1: expected 'qid<TAB>query'",
    },
    {
        "name": "topics_utf16",
        "files": {"run.trec": GOOD_RUN, "topics.tsv": GOOD_TOPICS.decode().encode("utf-16"),
                  "corpus.jsonl": GOOD_CORPUS},
        "argv": _rerank("run.trec", "--topics", "{tmp}/topics.tsv", "--corpus", "{tmp}/corpus.jsonl"),
        "expect_in_stderr": "topics.tsv: not UTF-8 text",
    },
    {
        "name": "topics_same_qid_two_texts",
        "files": {"run.trec": GOOD_RUN, "topics.tsv": b"1\tquery one\n1\tanother query\n",
                  "corpus.jsonl": GOOD_CORPUS},
        "argv": _rerank("run.trec", "--topics", "{tmp}/topics.tsv", "--corpus", "{tmp}/corpus.jsonl"),
        "expect_in_stderr": "topics.tsv:2: query '1' already has a different text on line 1",
    },
    {
        "name": "topics_jsonl_without_text",
        "files": {"run.trec": GOOD_RUN, "queries.jsonl": b'{"_id": "1", "metadata": {}}\n',
                  "corpus.jsonl": GOOD_CORPUS},
        "argv": _rerank("run.trec", "--topics", "{tmp}/queries.jsonl", "--corpus", "{tmp}/corpus.jsonl"),
        "expect_in_stderr": "queries.jsonl:1: need an '_id'/'qid' and a string 'text'/'query'",
    },
    # ------------------------------------------------------------------ corpora
    {
        "name": "corpus_tsv_not_jsonl",
        "files": {"run.trec": GOOD_RUN, "topics.tsv": GOOD_TOPICS, "corpus.jsonl": b"d1\tone\nd2\ttwo\n"},
        "argv": _rerank("run.trec", "--topics", "{tmp}/topics.tsv", "--corpus", "{tmp}/corpus.jsonl"),
        "expect_in_stderr": "corpus.jsonl:1: not valid JSON",
    },
    {
        "name": "corpus_document_without_text",
        "files": {"run.trec": GOOD_RUN, "topics.tsv": GOOD_TOPICS,
                  "corpus.jsonl": b'{"_id": "d1", "text": "one"}\n{"_id": "d2", "body": "two"}\n'},
        "argv": _rerank("run.trec", "--topics", "{tmp}/topics.tsv", "--corpus", "{tmp}/corpus.jsonl"),
        "expect_in_stderr": "corpus.jsonl:2: need an id ('_id'/'id'/'docid') and a string 'text'/'contents'",
    },
    {
        "name": "corpus_latin1",
        "files": {"run.trec": GOOD_RUN, "topics.tsv": GOOD_TOPICS,
                  "corpus.jsonl": b'{"_id": "d1", "text": "one"}\n{"_id": "d2", "text": "caf\xe9"}\n'},
        "argv": _rerank("run.trec", "--topics", "{tmp}/topics.tsv", "--corpus", "{tmp}/corpus.jsonl"),
        "expect_in_stderr": "corpus.jsonl:2: not UTF-8 text (byte 0xe9",
    },
    {
        "name": "corpus_duplicate_docid",
        "files": {"run.trec": GOOD_RUN, "topics.tsv": GOOD_TOPICS,
                  "corpus.jsonl": GOOD_CORPUS + b'{"_id": "d1", "text": "other"}\n'},
        "argv": _rerank("run.trec", "--topics", "{tmp}/topics.tsv", "--corpus", "{tmp}/corpus.jsonl"),
        "expect_in_stderr": "corpus.jsonl:3: document 'd1' appears twice (first on line 1)",
    },
    # ------------------------------------------------------------------ training data
    {
        "name": "train_trec_qrels_lost_relevance",
        **_train({"format": "trec", "path": "{tmp}/run.trec", "topics": "{tmp}/topics.tsv",
                  "corpus": "{tmp}/corpus.jsonl", "qrels": "{tmp}/qrels.txt"},
                 {"run.trec": GOOD_RUN, "topics.tsv": GOOD_TOPICS, "corpus.jsonl": GOOD_CORPUS,
                  "qrels.txt": b"1 Q0 d1\n1 Q0 d2\n"}),
        "expect_in_stderr": "qrels.txt:1: every line has 3 columns and the second is always 'Q0'",
    },
    {
        "name": "train_rankllm_qrels_fractional",
        **_train({"format": "rankllm", "path": "{tmp}/cands.json", "qrels": "{tmp}/qrels.txt"},
                 {"cands.json": _hits((True, True)), "qrels.txt": b"1 0 d1 0.5\n"}),
        "expect_in_stderr": "qrels.txt:1: relevance '0.5' is not an integer",
    },
    {
        "name": "train_rankllm_hit_without_content",
        **_train({"format": "rankllm", "path": "{tmp}/cands.json"}, {"cands.json": _hits((True, False))}),
        "expect_in_stderr": "cands.json: entry 0, candidate 1 (query '1', document 'd2') has no passage text",
    },
    {
        "name": "train_group_jsonl_bad_line",
        **_train({"format": "group", "path": "{tmp}/train.jsonl"},
                 {"train.jsonl": b'{"query": "q", "pos": ["a"], "neg": ["b"]}\n{"query": "q2", "pos": [\n'}),
        "expect_in_stderr": "train.jsonl:2: not valid JSON",
    },
    {
        "name": "train_lists_jsonl_utf16",
        **_train({"format": "jsonl", "path": "{tmp}/lists.jsonl"},
                 {"lists.jsonl": '{"qid": "1", "query": "q", "docs": [], "labels": []}\n'.encode("utf-16")}),
        "expect_in_stderr": "lists.jsonl: not UTF-8 text (it starts with a UTF-16 byte-order mark)",
    },
    {
        "name": "train_group_jsonl_binary",
        **_train({"format": "group", "path": "{tmp}/train.jsonl"}, {"train.jsonl": b"\x00\x01\x02binary"}),
        "expect_in_stderr": "train.jsonl: not UTF-8 text (binary data",
    },
]
