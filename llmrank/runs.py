"""Plain-file I/O for IR experiments: TREC runs, qrels, topics, corpora and rank_llm JSON.

This module holds the **one** parser of each format; the training readers
(:mod:`llmrank.data.readers`), reranking, evaluation and the benchmark pipeline all call it,
so the same checks and messages hold everywhere. Every reader reads UTF-8 text (a UTF-8 BOM is
accepted; anything else is "not UTF-8 text" with the file named) and reports a malformed line as
``file:line: what is wrong; what to do`` (:class:`FormatError`, a ``ValueError``).

A *run* here is ``{qid: [(docid, score), ...]}`` with each list best first. Runs are written
with strictly decreasing scores (trec_eval and ir-measures break score ties by docid, not by
rank, so a tie would silently reorder a reranker's output) and without duplicate documents,
atomically (temp file + rename, :mod:`llmrank.io_utils`) so an interrupted job never leaves half
a run behind. The formats are documented in ``docs/data-formats.md``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmrank.document import Doc
from llmrank.io_utils import (
    FormatError,
    atomic_open,
    atomic_write_json,
    atomic_write_text,
    check_readable_file,
    json_object,
    read_text,
    text_lines,
)

Run = dict[str, list[tuple[str, float]]]
Qrels = dict[str, dict[str, int]]
Topics = dict[str, str]

__all__ = [
    "FormatError",
    "Qrels",
    "RankLLMCandidate",
    "RankLLMRequest",
    "Run",
    "Topics",
    "atomic_open",
    "corpus_file",
    "is_rank_llm_json",
    "iter_corpus",
    "missing_text_error",
    "parse_rank_llm",
    "read_corpus",
    "read_documents",
    "read_qrels",
    "read_rank_llm",
    "read_run",
    "read_topics",
    "read_trec_run",
    "best_first",
    "run_to_dict",
    "strictly_decreasing",
    "truncate",
    "write_csv",
    "write_json",
    "write_rank_llm",
    "write_text",
    "write_trec_run",
]

# The writers other modules import from here; one implementation, in llmrank.io_utils.
write_json = atomic_write_json
write_text = atomic_write_text

_RUN_LINE = "'qid Q0 docid rank score tag'"
_RANK_LLM_SHAPE = (
    "rank_llm requests {query: {text, qid}, candidates: [{docid, score, doc: {text|segment|contents, title?}}]} "
    "or the older {query, hits: [{content, qid, docid, rank, score}]}"
)


def _first_content_line(path: Path, what: str) -> tuple[int, str] | None:
    for lineno, line in text_lines(path, what):
        if line.strip():
            return lineno, line.strip()
    return None


def _reject_json(path: Path, what: str, expected: str) -> None:
    """A JSON file where a whitespace-separated text format is expected: say so instead of
    reporting a wrong column count."""
    first = _first_content_line(path, what)
    if first and first[1][0] in "[{":
        raise FormatError(
            f"{path}:{first[0]}: this is JSON, not a {what} file ({expected}); "
            f"rank_llm candidates must be a JSON list or JSONL of {_RANK_LLM_SHAPE}"
        )


# --------------------------------------------------------------------------- runs
def read_trec_run(path: str | os.PathLike) -> Run:
    """Read ``qid Q0 docid rank score tag`` lines; lists are ordered by score, then file order.

    Errors (with file and line): a JSON file, wrong column count, a non-numeric or non-finite
    score, the same document twice for one query, an empty file, text that is not UTF-8.
    """
    path = check_readable_file(path, "run")
    _reject_json(path, "run", f"TREC run lines {_RUN_LINE}")
    rows: dict[str, list[tuple[str, float, int]]] = {}
    seen: dict[tuple[str, str], int] = {}
    for lineno, line in text_lines(path, "run"):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 6:
            raise FormatError(f"{path}:{lineno}: expected 6 columns {_RUN_LINE}, got {len(parts)}: {line.strip()!r}")
        qid, _, docid, _, score_text, _ = parts
        try:
            score = float(score_text)
        except ValueError:
            raise FormatError(f"{path}:{lineno}: score {score_text!r} is not a number") from None
        if not math.isfinite(score):
            raise FormatError(f"{path}:{lineno}: score {score_text!r} is not finite")
        key = (qid, docid)
        if key in seen:
            raise FormatError(
                f"{path}:{lineno}: document {docid!r} appears twice for query {qid!r} (first on line {seen[key]})"
            )
        seen[key] = lineno
        rows.setdefault(qid, []).append((docid, score, lineno))
    if not rows:
        raise FormatError(f"{path}: the run is empty (no {_RUN_LINE} lines)")
    return {qid: [(d, s) for d, s, _ in sorted(items, key=lambda t: (-t[1], t[2]))] for qid, items in rows.items()}


def strictly_decreasing(scores: Sequence[float], gap: float = 1e-6) -> list[float]:
    """Scores of a best-first list made strictly decreasing by nudging ties down by ``gap``."""
    out: list[float] = []
    for s in scores:
        s = float(s)
        if out and s >= out[-1]:
            s = out[-1] - gap
        out.append(s)
    return out


def best_first(ranked: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """A list sorted best first (stable: ties keep the given order) with strictly decreasing scores,
    so that any tool ranking by score (trec_eval, ir-measures) sees exactly this order."""
    ordered = sorted(ranked, key=lambda t: -float(t[1]))
    return list(zip((d for d, _ in ordered), strictly_decreasing([s for _, s in ordered])))


def write_trec_run(path: str | os.PathLike, run: Mapping[str, Sequence[tuple[str, float]]], tag: str = "llmrank") -> None:
    """Write a best-first run atomically with ranks 1.. and strictly decreasing scores.

    Each list is sorted by score (stable, so ties keep the given order) before writing.
    A duplicate document within a query is an error, not something to hide.
    """
    if not run or not any(run.values()):
        raise ValueError(f"refusing to write an empty run to {path}")
    with atomic_open(path) as f:
        for qid, ranked in run.items():
            docids = [d for d, _ in ranked]
            if len(set(docids)) != len(docids):
                dup = next(d for d in docids if docids.count(d) > 1)
                raise ValueError(f"run for query {qid!r} lists document {dup!r} twice")
            for rank, (docid, score) in enumerate(best_first(ranked), start=1):
                f.write(f"{qid} Q0 {docid} {rank} {score!r} {tag}\n")


def truncate(run: Run, k: int) -> Run:
    """Top ``k`` of every list."""
    return {qid: ranked[:k] for qid, ranked in run.items()}


def run_to_dict(run: Run) -> dict[str, dict[str, float]]:
    """``{qid: {docid: score}}`` (the form ir-measures accepts), with ties broken as
    :func:`write_trec_run` breaks them: an in-memory run scores exactly as the file written from it
    (ir-measures would otherwise order tied documents by docid)."""
    return {qid: dict(best_first(ranked)) for qid, ranked in run.items()}


# --------------------------------------------------------------------------- qrels
_QRELS_HEADER_IDS = ("query-id", "query_id", "queryid", "qid")
_TREC_QRELS = "TREC 'qid iter docid rel'"
_BEIR_QRELS = "BEIR 'query-id corpus-id score'"
_INTEGER_GRADES = (
    "ir-measures / trec_eval need integer relevance grades: map the grades to integers (e.g. 0/1/2/3)"
)


def _is_int_text(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _grade(text: str, where: str, layout: str) -> int:
    """An integer relevance grade; ``"2.0"`` is accepted as 2, ``"0.5"`` and ``"high"`` are errors."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        hint = (
            " (is this TREC 'qid iter docid' without its relevance column? add it back)"
            if layout == _BEIR_QRELS
            else ""
        )
        raise FormatError(f"{where}: relevance {text!r} is not a number{hint}; {_INTEGER_GRADES}") from None
    if not math.isfinite(value) or value != int(value):
        raise FormatError(f"{where}: relevance {text!r} is not an integer; {_INTEGER_GRADES}")
    return int(value)


def read_qrels(path: str | os.PathLike) -> Qrels:
    """Judgments ``{qid: {docid: grade}}`` from TREC or BEIR qrels; the layout is decided once per file.

    * 4 columns on every line: TREC ``qid iter docid rel`` (``iter`` ignored).
    * 3 columns on every line: BEIR ``query-id corpus-id score``, normally after BEIR's header
      line ``query-id<TAB>corpus-id<TAB>score`` (a first line whose first field is a query-id
      name and whose last field is not an integer is taken as a header, for either layout).

    Errors (with file:line): lines of different widths; a headerless 3-column file whose middle
    column is always ``0``/``Q0`` (TREC qrels that lost the relevance column, which would
    otherwise evaluate to 0.0 on every measure); a grade that is not an integer; the same
    (qid, docid) judged twice with different grades; a JSON file; an empty file.
    """
    path = check_readable_file(path, "qrels")
    rows = [(lineno, line.split()) for lineno, line in text_lines(path, "qrels") if line.strip()]
    if not rows:
        raise FormatError(f"{path}: no judgments found; expected {_TREC_QRELS} or {_BEIR_QRELS} lines")
    first_line, first = rows[0]
    if first[0][0] in "[{":
        raise FormatError(f"{path}:{first_line}: this is JSON, not a qrels file ({_TREC_QRELS} or {_BEIR_QRELS})")
    header = first[0].lower() in _QRELS_HEADER_IDS and not _is_int_text(first[-1])
    if header:
        rows = rows[1:]
        if not rows:
            raise FormatError(f"{path}: only a header line, no judgments")
    width = len(first)
    layouts = {4: _TREC_QRELS, 3: _BEIR_QRELS}
    if width not in layouts:
        raise FormatError(
            f"{path}:{first_line}: {width} columns; expected 4 ({_TREC_QRELS}) or 3 ({_BEIR_QRELS}, "
            f"with its header line)"
        )
    layout = layouts[width]
    for lineno, parts in rows:
        if len(parts) != width:
            raise FormatError(
                f"{path}:{lineno}: {len(parts)} columns, but line {first_line} makes this a {width}-column "
                f"{layout} file; every line of a qrels file must have the same layout"
            )
    if width == 3 and not header:
        middle = {parts[1] for _, parts in rows}
        if len(middle) == 1 and middle <= {"0", "Q0", "q0"}:
            raise FormatError(
                f"{path}:{rows[0][0]}: every line has 3 columns and the second is always {middle.pop()!r}: "
                f"this looks like {_TREC_QRELS} with the relevance column lost; add it back, or start a "
                f"BEIR file with the header 'query-id<TAB>corpus-id<TAB>score'"
            )
    qrels: Qrels = {}
    first_seen: dict[tuple[str, str], int] = {}
    for lineno, parts in rows:
        qid, docid, rel = (parts[0], parts[2], parts[3]) if width == 4 else (parts[0], parts[1], parts[2])
        grade = _grade(rel, f"{path}:{lineno}", layout)
        judged = qrels.setdefault(qid, {})
        if docid in judged and judged[docid] != grade:
            raise FormatError(
                f"{path}:{lineno}: document {docid!r} of query {qid!r} is judged {grade} here but "
                f"{judged[docid]} on line {first_seen[(qid, docid)]}; keep one judgment"
            )
        first_seen.setdefault((qid, docid), lineno)
        judged[docid] = grade
    return qrels


# --------------------------------------------------------------------------- topics
def read_topics(path: str | os.PathLike) -> Topics:
    """Topics from ``qid<TAB>query`` TSV, BEIR ``queries.jsonl`` (``_id``, ``text``) or
    JSONL with ``qid``/``query``. A qid given twice with different texts is an error."""
    path = check_readable_file(path, "topics")
    first = _first_content_line(path, "topics")
    if first is None:
        raise FormatError(f"{path}: no topics found; expected 'qid<TAB>query' lines or BEIR queries.jsonl")
    if first[1].startswith("["):
        raise FormatError(f"{path}:{first[0]}: a JSON list; expected 'qid<TAB>query' lines or JSONL {{_id, text}}")
    topics: Topics = {}
    lines_of: dict[str, int] = {}
    jsonl = first[1].startswith("{")
    for lineno, line in text_lines(path, "topics"):
        if not line.strip():
            continue
        if jsonl:
            obj = json_object(line, f"{path}:{lineno}", "an object {_id, text}")
            qid_value = next((obj[k] for k in ("_id", "qid", "query_id") if k in obj), None)
            text = next((obj[k] for k in ("text", "query", "title") if k in obj), None)
            if not isinstance(qid_value, str | int) or isinstance(qid_value, bool) or not isinstance(text, str):
                raise FormatError(f"{path}:{lineno}: need an '_id'/'qid' and a string 'text'/'query'")
            qid = str(qid_value)
        else:
            line = line.rstrip("\n\r")
            if "\t" not in line:
                raise FormatError(f"{path}:{lineno}: expected 'qid<TAB>query', got {line!r}")
            qid, text = (part.strip() for part in line.split("\t", 1))
            if not qid:
                raise FormatError(f"{path}:{lineno}: empty qid; expected 'qid<TAB>query'")
        if qid in topics and topics[qid] != text:
            raise FormatError(f"{path}:{lineno}: query {qid!r} already has a different text on line {lines_of[qid]}")
        lines_of.setdefault(qid, lineno)
        topics[qid] = text
    return topics


# --------------------------------------------------------------------------- corpora
_CORPUS_SHAPE = "one document per line {_id, title?, text} (BEIR), {id, contents} (Pyserini) or {docid, text}"


def _corpus_docs(path: Path) -> Iterator[tuple[int, Doc]]:
    for lineno, line in text_lines(path, "corpus"):
        if not line.strip():
            continue
        obj = json_object(line, f"{path}:{lineno}", _CORPUS_SHAPE)
        docid = next((obj[k] for k in ("_id", "id", "docid") if k in obj), None)
        text = next((obj[k] for k in ("text", "contents", "passage") if k in obj), None)
        if docid is None or isinstance(docid, dict | list | bool) or not isinstance(text, str):
            raise FormatError(f"{path}:{lineno}: need an id ('_id'/'id'/'docid') and a string 'text'/'contents'")
        title = obj.get("title")
        yield lineno, Doc(str(docid), text, title if isinstance(title, str) and title else None)


def iter_corpus(path: str | os.PathLike) -> Iterator[Doc]:
    """Documents of a JSONL corpus (BEIR ``_id,title,text``; Pyserini ``id,contents``;
    ``docid,text``) or a BEIR folder (its ``corpus.jsonl``)."""
    for _, doc in _corpus_docs(corpus_file(path)):
        yield doc


def corpus_file(path: str | os.PathLike) -> Path:
    """The JSONL file behind a corpus path (a BEIR folder means its ``corpus.jsonl``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "corpus.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"corpus {str(path)!r} does not exist (give a JSONL file or a BEIR folder)")
    return path


def read_corpus(path: str | os.PathLike, needed: set[str] | None = None) -> dict[str, Doc]:
    """Documents of a corpus by docid (only ``needed`` ones if given); a docid twice is an error."""
    file = corpus_file(path)
    docs: dict[str, Doc] = {}
    for lineno, doc in _corpus_docs(file):
        if needed is not None and doc.docid not in needed:
            continue
        if doc.docid in docs:
            # find the first occurrence only on this error path: no line table for millions of docs
            first = next(n for n, d in _corpus_docs(file) if d.docid == doc.docid)
            raise FormatError(f"{file}:{lineno}: document {doc.docid!r} appears twice (first on line {first})")
        docs[doc.docid] = doc
    return docs


# --------------------------------------------------------------------------- rank_llm JSON
#: where rank_llm looks for a candidate's text inside ``doc``, in its order
#: (rank_llm ``convert_doc_to_prompt_content``: text, segment, contents, content, body, passage)
_DOC_TEXT_KEYS = ("text", "segment", "contents", "content", "body", "passage")


@dataclass
class RankLLMCandidate:
    """One candidate of a rank_llm request; ``text`` is None when the file carries no passage."""

    docid: str
    score: float | None
    text: str | None
    title: str | None = None


@dataclass
class RankLLMRequest:
    """One query of a rank_llm file, candidates in ranking order; ``where`` locates it in the file."""

    qid: str | None
    query: str
    candidates: list[RankLLMCandidate] = field(default_factory=list)
    where: str = ""


def is_rank_llm_json(path: str | os.PathLike) -> bool:
    """True for a rank_llm candidate file: a JSON list, or JSON(L) whose first object is a request.

    Anything else (a TREC run, a corpus JSONL, an unrelated JSON object) is False, so the TREC
    reader reports it clearly.
    """
    path = Path(path)
    if not path.is_file():
        return False
    with path.open("rb") as f:
        head = f.read(65536)
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"["):
        return True
    if not head.startswith(b"{"):
        return False
    try:
        obj = json.loads(head.split(b"\n", 1)[0])
    except (json.JSONDecodeError, UnicodeDecodeError):
        # a pretty-printed single request: look for its keys near the top
        return b'"query"' in head and (b'"candidates"' in head or b'"hits"' in head)
    return isinstance(obj, dict) and "query" in obj and ("candidates" in obj or "hits" in obj)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _qid_text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)


def _request_from_candidates(obj: dict[str, Any], where: str) -> RankLLMRequest:
    """rank_llm's current format (rank_llm.data.Request): ``{query: {text, qid}, candidates: [...]}``."""
    query = obj["query"]
    if not isinstance(query, dict) or not isinstance(query.get("text"), str) or _qid_text(query.get("qid")) is None:
        raise FormatError(f"{where}: 'query' must be {{text: string, qid: string or int}}; got {query!r:.80}")
    candidates = obj["candidates"]
    if not isinstance(candidates, list):
        raise FormatError(f"{where}: 'candidates' must be a list of {{docid, score, doc}}")
    out = []
    for j, cand in enumerate(candidates):
        at = f"{where}, candidate {j}"
        if not isinstance(cand, dict) or _qid_text(cand.get("docid")) is None:
            raise FormatError(f"{at}: expected {{docid, score, doc: {{text|segment|contents, title?}}}}")
        doc = cand.get("doc")
        if doc is not None and not isinstance(doc, dict):
            raise FormatError(f"{at}: 'doc' must be an object such as {{contents: ...}} or {{title, text}}")
        doc = doc or {}
        text = next((doc[k] for k in _DOC_TEXT_KEYS if isinstance(doc.get(k), str)), None)
        title = doc.get("title") if isinstance(doc.get("title"), str) and doc.get("title") else None
        out.append(RankLLMCandidate(str(cand["docid"]), _score(cand, at), text, title))
    return RankLLMRequest(str(query["qid"]), query["text"], out, where)


def _score(item: dict[str, Any], at: str) -> float | None:
    if "score" not in item or item["score"] is None:
        return None
    score = _number(item["score"])
    if score is None:
        raise FormatError(f"{at}: score {item['score']!r} is not a finite number")
    return score


def _request_from_hits(obj: dict[str, Any], where: str) -> RankLLMRequest:
    """The older rank_llm / RankGPT format: ``{query, hits: [{content, qid, docid, rank, score}]}``."""
    query, hits = obj["query"], obj["hits"]
    qid = _qid_text(obj.get("qid"))
    if isinstance(query, dict):  # tolerate {text, qid} here too
        qid = qid or _qid_text(query.get("qid"))
        query = query.get("text")
    if not isinstance(query, str) or not isinstance(hits, list):
        raise FormatError(f"{where}: expected {{query: string, hits: [{{content, qid, docid, rank, score}}]}}")
    out = []
    ranks = []
    for j, hit in enumerate(hits):
        at = f"{where}, hit {j}"
        if not isinstance(hit, dict) or _qid_text(hit.get("docid")) is None:
            raise FormatError(f"{at}: expected {{content, qid, docid, rank, score}}")
        hit_qid = _qid_text(hit.get("qid"))
        if hit_qid is not None:
            if qid is not None and hit_qid != qid:
                raise FormatError(f"{at}: qid {hit_qid!r} differs from the request's qid {qid!r}")
            qid = hit_qid
        text = next((hit[k] for k in ("content", "text") if isinstance(hit.get(k), str)), None)
        title = hit.get("title") if isinstance(hit.get("title"), str) and hit.get("title") else None
        out.append(RankLLMCandidate(str(hit["docid"]), _score(hit, at), text, title))
        ranks.append(hit.get("rank"))
    if out and qid is None:
        raise FormatError(f"{where}: no qid (give 'qid' in the hits or in the request)")
    if out and all(isinstance(r, int) and not isinstance(r, bool) for r in ranks):
        if len(set(ranks)) != len(ranks):
            raise FormatError(f"{where}: two hits share a rank; ranks must be distinct")
        out = [c for _, c in sorted(zip(ranks, out), key=lambda t: t[0])]
    return RankLLMRequest(qid, query, out, where)


def _request(obj: Any, where: str) -> RankLLMRequest:
    if not isinstance(obj, dict):
        raise FormatError(f"{where}: a JSON {type(obj).__name__}; expected {_RANK_LLM_SHAPE}")
    if "query" in obj and "candidates" in obj:
        request = _request_from_candidates(obj, where)
    elif "query" in obj and "hits" in obj:
        request = _request_from_hits(obj, where)
    else:
        raise FormatError(f"{where}: keys {sorted(obj)[:6]} are not a rank_llm request; expected {_RANK_LLM_SHAPE}")
    seen: set[str] = set()
    for cand in request.candidates:
        if cand.docid in seen:
            raise FormatError(f"{where} (query {request.qid!r}) lists document {cand.docid!r} twice")
        seen.add(cand.docid)
    scored = [c.score is not None for c in request.candidates]
    if any(scored) and not all(scored):
        j = scored.index(False)
        raise FormatError(f"{where}: candidate {j} has no score but others do; give every candidate a score or none")
    return request


def parse_rank_llm(path: str | os.PathLike) -> list[RankLLMRequest]:
    """Every request of a rank_llm candidate file, in file order, candidates in ranking order.

    Accepted: a JSON list of requests (rank_llm's ``write_in_json_format``) or JSONL with one
    request per line (``write_in_jsonl_format`` and rank_llm's retrieval cache). Each request is
    either the current ``{query: {text, qid}, candidates: [{docid, score, doc}]}`` (the text is
    the first of ``doc``'s text/segment/contents/content/body/passage, as rank_llm reads it; the
    title is kept apart) or the older ``{query, hits: [{content, qid, docid, rank, score}]}``
    (hits ordered by ``rank`` when every hit has one). A qid twice, a document twice in one
    request, or scores on some candidates only are errors.
    """
    path = check_readable_file(path, "rank_llm candidates")
    text = read_text(path, "rank_llm candidates")
    stripped = text.lstrip()
    if not stripped:
        raise FormatError(f"{path}: empty file; expected {_RANK_LLM_SHAPE}")
    entries: list[tuple[str, Any]]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if not stripped.startswith("{"):
            raise FormatError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); expected {_RANK_LLM_SHAPE}") from None
        entries = []  # JSONL: one request per line
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entries.append((f"{path}:{lineno}", json.loads(line)))
            except json.JSONDecodeError as err:
                raise FormatError(f"{path}:{lineno}: not valid JSON ({err.msg}); expected one request per line") from None
    else:
        if isinstance(data, list):
            entries = [(f"{path}: entry {i}", item) for i, item in enumerate(data)]
        elif isinstance(data, dict):
            first_line = len(text[: len(text) - len(stripped)].splitlines()) + 1
            entries = [(f"{path}:{first_line}", data)]
        else:
            raise FormatError(f"{path}: top level is a JSON {type(data).__name__}; expected {_RANK_LLM_SHAPE}")
    requests = [_request(obj, where) for where, obj in entries]
    where_of: dict[str, str] = {}
    for request in requests:
        if request.qid is None:
            continue
        if request.qid in where_of:
            raise FormatError(f"{request.where}: query {request.qid!r} already appears at {where_of[request.qid]}")
        where_of[request.qid] = request.where
    return requests


def missing_text_error(request: RankLLMRequest, index: int, fix: str) -> FormatError:
    """The error for a candidate without passage text (names the field and the fix)."""
    cand = request.candidates[index]
    return FormatError(
        f"{request.where}, candidate {index} (query {request.qid!r}, document {cand.docid!r}) has no passage "
        f"text: give 'content' in a hit or doc.text/segment/contents in a candidate; {fix}"
    )


def read_rank_llm(path: str | os.PathLike, require_text: bool = False) -> tuple[Run, Topics, dict[str, Doc]]:
    """A rank_llm candidate file as (run, topics, documents) (formats: :func:`parse_rank_llm`).

    Run lists are ordered by score (as trec_eval orders rank_llm's own TREC output; candidates
    without scores get ``-position``). Passage texts must be given for every candidate or for
    none (then documents come from a corpus or index); with ``require_text`` they are required.
    """
    run: Run = {}
    topics: Topics = {}
    docs: dict[str, Doc] = {}
    for request in parse_rank_llm(path):
        if request.qid is None or not request.candidates:
            if request.qid is not None:
                topics[request.qid] = request.query
            continue
        topics[request.qid] = request.query
        has_text = [c.text is not None for c in request.candidates]
        if not all(has_text) and (require_text or any(has_text)):
            fix = (
                "or pass --corpus/--index to take the texts from there"
                if require_text
                else "or give no text for any candidate and pass --corpus/--index"
            )
            raise missing_text_error(request, has_text.index(False), fix)
        ranked = [(c.docid, c.score if c.score is not None else -float(j + 1)) for j, c in enumerate(request.candidates)]
        run[request.qid] = sorted(ranked, key=lambda t: -t[1])
        for c in request.candidates:
            if c.text is not None:
                docs[c.docid] = Doc(c.docid, c.text, c.title)
    if not run:
        raise FormatError(f"{path}: no candidates found; expected {_RANK_LLM_SHAPE}")
    return run, topics, docs


def read_run(path: str | os.PathLike) -> Run:
    """The run of a TREC run file or of a rank_llm candidate file (told apart by :func:`is_rank_llm_json`)."""
    return read_rank_llm(path)[0] if is_rank_llm_json(path) else read_trec_run(path)


def read_documents(path: str | os.PathLike) -> dict[str, Doc]:
    """Documents by docid from a corpus (JSONL or BEIR folder, :func:`read_corpus`) or from the
    passages of a rank_llm candidate file."""
    return read_rank_llm(path)[2] if is_rank_llm_json(path) else read_corpus(path)


def write_rank_llm(path: str | os.PathLike, run: Run, topics: Topics, docs: Mapping[str, Doc]) -> None:
    """Write a run with query and passage texts as rank_llm requests, atomically.

    Format: rank_llm's current JSON list ``[{query: {text, qid}, candidates: [{docid, score,
    doc: {text, title?}}]}]`` (what ``rank_llm.data.read_requests_from_file`` reads), best first.
    """
    out = []
    for qid, ranked in run.items():
        candidates = []
        for docid, score in ranked:
            doc = docs.get(docid)
            if doc is None:
                raise ValueError(f"no text for document {docid!r} of query {qid!r}; rank_llm requests carry every passage")
            body: dict[str, str] = {"text": doc.text}
            if doc.title:
                body["title"] = doc.title
            candidates.append({"docid": docid, "score": float(score), "doc": body})
        out.append({"query": {"text": topics.get(qid, ""), "qid": qid}, "candidates": candidates})
    write_json(path, out)


# --------------------------------------------------------------------------- CSV
def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A CSV with a header row, atomically."""
    with atomic_open(path) as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
