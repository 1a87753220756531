"""Plain-file I/O for IR experiments: TREC runs, qrels, topics, corpora and rank_llm JSON.

A *run* here is ``{qid: [(docid, score), ...]}`` with each list best first. Runs are written
with strictly decreasing scores (trec_eval and ir-measures break score ties by docid, not by
rank, so a tie would silently reorder a reranker's output) and without duplicate documents,
atomically (temp file + rename) so an interrupted job never leaves half a run behind.
Every reader reports a malformed line as ``file:line: what is wrong``.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from llmrank.data.record import Doc

Run = dict[str, list[tuple[str, float]]]
Qrels = dict[str, dict[str, int]]
Topics = dict[str, str]


class FormatError(ValueError):
    """A malformed input file; the message names the file and line."""


# --------------------------------------------------------------------------- atomic writes
@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[TextIO]:
    """Open a temp file next to ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_open(path) as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path) as f:
        f.write(text)


# --------------------------------------------------------------------------- runs
def _check_exists(path: Path, what: str) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{what} file {str(path)!r} does not exist")
    if path.is_dir():
        raise FormatError(f"{what} {str(path)!r} is a directory, expected a file")


def read_trec_run(path: str | os.PathLike) -> Run:
    """Read ``qid Q0 docid rank score tag`` lines; lists are ordered by score, then file order.

    Errors (with file and line): wrong column count, a non-numeric or non-finite score, the same
    document twice for one query, an empty file.
    """
    path = Path(path)
    _check_exists(path, "run")
    rows: dict[str, list[tuple[str, float, int]]] = {}
    seen: dict[tuple[str, str], int] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 6:
                raise FormatError(
                    f"{path}:{lineno}: expected 6 columns 'qid Q0 docid rank score tag', got {len(parts)}: {line.strip()!r}"
                )
            qid, _, docid, _, score_text, _ = parts
            try:
                score = float(score_text)
            except ValueError:
                raise FormatError(f"{path}:{lineno}: score {score_text!r} is not a number") from None
            if score != score or score in (float("inf"), float("-inf")):
                raise FormatError(f"{path}:{lineno}: score {score_text!r} is not finite")
            key = (qid, docid)
            if key in seen:
                raise FormatError(
                    f"{path}:{lineno}: document {docid!r} appears twice for query {qid!r} (first on line {seen[key]})"
                )
            seen[key] = lineno
            rows.setdefault(qid, []).append((docid, score, lineno))
    if not rows:
        raise FormatError(f"{path}: the run is empty (no 'qid Q0 docid rank score tag' lines)")
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
            ordered = sorted(ranked, key=lambda t: -float(t[1]))
            scores = strictly_decreasing([s for _, s in ordered])
            for rank, ((docid, _), score) in enumerate(zip(ordered, scores), start=1):
                f.write(f"{qid} Q0 {docid} {rank} {score!r} {tag}\n")


def truncate(run: Run, k: int) -> Run:
    """Top ``k`` of every list."""
    return {qid: ranked[:k] for qid, ranked in run.items()}


def run_to_dict(run: Run) -> dict[str, dict[str, float]]:
    """``{qid: {docid: score}}`` (the form ir-measures accepts)."""
    return {qid: {d: float(s) for d, s in ranked} for qid, ranked in run.items()}


# --------------------------------------------------------------------------- qrels
def read_qrels(path: str | os.PathLike) -> Qrels:
    """TREC ``qid iter docid rel`` or BEIR TSV ``query-id corpus-id score`` (header optional)."""
    path = Path(path)
    _check_exists(path, "qrels")
    qrels: Qrels = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            parts = line.split()
            if not parts:
                continue
            if lineno == 1 and parts[0] in ("query-id", "query_id", "qid"):
                continue  # BEIR header
            if len(parts) == 4:
                qid, _, docid, rel = parts
            elif len(parts) == 3:
                qid, docid, rel = parts
            else:
                raise FormatError(
                    f"{path}:{lineno}: expected 'qid 0 docid rel' (TREC) or 'qid docid rel' (BEIR), got {line.strip()!r}"
                )
            try:
                qrels.setdefault(qid, {})[docid] = int(float(rel))
            except ValueError:
                raise FormatError(f"{path}:{lineno}: relevance {rel!r} is not a number") from None
    if not qrels:
        raise FormatError(f"{path}: no judgments found")
    return qrels


# --------------------------------------------------------------------------- topics
def read_topics(path: str | os.PathLike) -> Topics:
    """Topics from ``qid<TAB>query`` TSV, BEIR ``queries.jsonl`` (``_id``, ``text``) or
    JSONL with ``qid``/``query``."""
    path = Path(path)
    _check_exists(path, "topics")
    topics: Topics = {}
    with path.open(encoding="utf-8") as f:
        first = f.readline()
        f.seek(0)
        if first.lstrip().startswith("{"):
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    qid = str(obj.get("_id", obj.get("qid", obj.get("query_id"))))
                    text = obj.get("text", obj.get("query", obj.get("title")))
                except (json.JSONDecodeError, AttributeError) as exc:
                    raise FormatError(f"{path}:{lineno}: not a JSON object ({exc})") from None
                if qid == "None" or text is None:
                    raise FormatError(f"{path}:{lineno}: need '_id'/'qid' and 'text'/'query' keys")
                topics[qid] = str(text)
        else:
            for lineno, line in enumerate(f, start=1):
                line = line.rstrip("\n\r")
                if not line.strip():
                    continue
                if "\t" not in line:
                    raise FormatError(f"{path}:{lineno}: expected 'qid<TAB>query', got {line!r}")
                qid, text = line.split("\t", 1)
                topics[qid.strip()] = text.strip()
    if not topics:
        raise FormatError(f"{path}: no topics found")
    return topics


# --------------------------------------------------------------------------- corpora
def iter_corpus(path: str | os.PathLike) -> Iterator[Doc]:
    """Documents of a JSONL corpus (BEIR ``_id,title,text``; Pyserini ``id,contents``;
    ``docid,text``) or a BEIR folder (its ``corpus.jsonl``)."""
    path = corpus_file(path)
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FormatError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            docid = obj.get("_id", obj.get("id", obj.get("docid")))
            text = obj.get("text", obj.get("contents", obj.get("passage")))
            if docid is None or text is None:
                raise FormatError(f"{path}:{lineno}: need an id ('_id'/'id'/'docid') and 'text'/'contents'")
            yield Doc(str(docid), str(text), obj.get("title") or None)


def corpus_file(path: str | os.PathLike) -> Path:
    """The JSONL file behind a corpus path (a BEIR folder means its ``corpus.jsonl``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "corpus.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"corpus {str(path)!r} does not exist (give a JSONL file or a BEIR folder)")
    return path


def read_corpus(path: str | os.PathLike) -> dict[str, Doc]:
    """All documents of a corpus, by docid."""
    return {doc.docid: doc for doc in iter_corpus(path)}


# --------------------------------------------------------------------------- rank_llm JSON
def is_rank_llm_json(path: str | os.PathLike) -> bool:
    """True for a rank_llm candidate file (a JSON list of ``{"query", "hits"}``)."""
    path = Path(path)
    if not path.is_file():
        return False
    with path.open(encoding="utf-8") as f:
        head = f.read(64).lstrip()
    return head.startswith("[")


def read_rank_llm(path: str | os.PathLike) -> tuple[Run, Topics, dict[str, Doc]]:
    """rank_llm candidates ``[{"query", "hits": [{"content","qid","docid","rank","score"}]}]``
    as (run, topics, documents)."""
    path = Path(path)
    _check_exists(path, "rank_llm JSON")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, list):
        raise FormatError(f"{path}: expected a JSON list of {{'query', 'hits'}} objects")
    run: Run = {}
    topics: Topics = {}
    docs: dict[str, Doc] = {}
    for i, item in enumerate(data):
        try:
            hits = item["hits"]
            query = item["query"]
            query = query["text"] if isinstance(query, dict) else query
            qid = str(item["query"]["qid"]) if isinstance(item["query"], dict) else str(hits[0]["qid"]) if hits else None
        except (KeyError, TypeError, IndexError):
            raise FormatError(f"{path}: entry {i} is not {{'query': ..., 'hits': [...]}}") from None
        if qid is None:
            continue
        topics[qid] = str(query)
        ranked = []
        seen = set()
        for j, hit in enumerate(hits):
            try:
                docid = str(hit["docid"])
                score = float(hit.get("score", -(j + 1)))
                content = hit.get("content", hit.get("text"))
            except (KeyError, TypeError, ValueError):
                raise FormatError(f"{path}: entry {i}, hit {j} needs 'docid' and a numeric 'score'") from None
            if docid in seen:
                raise FormatError(f"{path}: entry {i} (query {qid!r}) lists document {docid!r} twice")
            seen.add(docid)
            ranked.append((docid, score))
            if content is not None:
                docs[docid] = Doc(docid, str(content))
        run[qid] = sorted(ranked, key=lambda t: -t[1])
    if not run:
        raise FormatError(f"{path}: no candidates found")
    return run, topics, docs


def write_rank_llm(path: str | os.PathLike, run: Run, topics: Topics, docs: Mapping[str, Doc]) -> None:
    """Write a run with its query and passage texts in rank_llm's candidate format."""
    out = []
    for qid, ranked in run.items():
        hits = [
            {"content": docs[d].full_text() if d in docs else "", "qid": qid, "docid": d, "rank": r, "score": s}
            for r, (d, s) in enumerate(ranked, start=1)
        ]
        out.append({"query": topics.get(qid, ""), "hits": hits})
    write_json(path, out)


# --------------------------------------------------------------------------- CSV
def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A CSV with a header row, atomically."""
    with atomic_open(path) as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
