"""Readers: every supported training / evaluation data format -> ``list[RankingList]``.

Formats (the ``format`` key of a recipe's ``data.train`` / ``data.eval`` block):

``jsonl``      canonical JSONL, one :meth:`RankingList.to_dict` per line
``group``      FlagEmbedding / Tevatron-style ``{query, pos, neg, pos_scores?, neg_scores?}`` JSONL
``rankllm``    rank_llm candidates: ``{query: {text, qid}, candidates: [{docid, score, doc}]}`` or the
               older ``{query, hits: [{content, qid, docid, rank, score}]}``, as a JSON list or JSONL
``trec``       a TREC run + topics + corpus (+ qrels)
``beir``       a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) + a TREC run
``hf``         any ``datasets`` dataset (Hub id, ``save_to_disk`` folder or json/parquet/csv files)
``synthetic``  the generated demo task of :mod:`llmrank.data.synthetic`

:func:`load_source` dispatches on ``format`` through a registry, so other modules add formats
with :func:`register_reader` (``llmrank.data.sharegpt`` registers ``sharegpt`` that way).

Conventions shared by all readers:

* Lists without any document are **dropped with a warning** (a :class:`UserWarning` naming how
  many and the first qids); if nothing is left, :func:`load_source` raises ``ValueError``.
* Malformed input raises ``ValueError`` naming the file, the line number and what was expected.
* A docid the run/qrels need but the corpus lacks raises ``ValueError`` naming docid and corpus file.
* First-stage scores, when a format has them, are kept in ``meta["first_stage_scores"]``
  (not in ``teacher_scores``: a BM25 score is not a teacher).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from llmrank.data.record import Doc, RankingList
from llmrank.data.synthetic import make_synthetic_task
from llmrank.io_utils import atomic_open, json_object, text_lines
from llmrank.runs import (
    corpus_file,
    missing_text_error,
    parse_rank_llm,
    read_corpus,
    read_qrels,
    read_topics,
    read_trec_run,
)
from llmrank.suggest import did_you_mean

PathLike = str | os.PathLike[str]
Reader = Callable[..., Any]

__all__ = [
    "beir_training_lists",
    "content_docid",
    "iter_lists_jsonl",
    "load_source",
    "read_beir",
    "read_group_jsonl",
    "read_hf",
    "read_lists_jsonl",
    "read_rankllm",
    "read_trec",
    "register_reader",
    "registered_formats",
    "write_lists_jsonl",
]

# --------------------------------------------------------------------------- registry

_READERS: dict[str, Reader] = {}
#: Modules that register extra formats on import; imported lazily by :func:`load_source`.
_PLUGIN_MODULES = ("llmrank.data.sharegpt",)
_plugins_loaded = False


def register_reader(name: str) -> Callable[[Reader], Reader]:
    """Register ``fn(path, **options)`` as the reader of format ``name`` for :func:`load_source`.

    The reader's keyword parameters are the format's valid spec keys: :func:`load_source` rejects
    any other key with a ``ValueError`` naming the closest valid one. Example::

        @register_reader("sharegpt")
        def read_sharegpt(path, window_size=20): ...
    """

    def deco(fn: Reader) -> Reader:
        if name in _READERS and _READERS[name] is not fn:
            raise ValueError(f"a reader for format {name!r} is already registered ({_READERS[name].__qualname__})")
        _READERS[name] = fn
        return fn

    return deco


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for module in _PLUGIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:  # the plugin is optional; re-raise its own broken imports
            if err.name != module:
                raise


def registered_formats() -> list[str]:
    """Names of all formats :func:`load_source` accepts."""
    _load_plugins()
    return sorted(_READERS)


def load_source(spec: Mapping[str, Any]) -> list[RankingList] | Iterator[RankingList]:
    """Read one data source described by a recipe block (``data.train`` / ``data.eval``).

    ``spec["format"]`` picks the reader; every other key is passed to it. Keys per format
    (``path`` is required unless noted; paths may be ``str`` or ``Path``):

    * ``jsonl``: ``path`` (canonical JSONL file).
    * ``group``: ``path`` (JSONL), ``query_key="query"``, ``pos_key="pos"``, ``neg_key="neg"``,
      ``pos_scores_key="pos_scores"``, ``neg_scores_key="neg_scores"`` (-> ``teacher_scores``
      when present), ``qid_key="qid"`` (qid = hash of the query text when absent).
    * ``rankllm``: ``path`` (JSON list or JSONL of requests), ``qrels=None`` (TREC or BEIR qrels; unjudged = 0),
      ``top_k=None``.
    * ``trec``: ``path`` (TREC run), ``topics`` (TSV ``qid<TAB>query`` or BEIR ``queries.jsonl``),
      ``corpus`` (JSONL ``{_id,title,text}`` or a BEIR folder), ``qrels=None``, ``top_k=None``.
    * ``beir``: ``path`` (BEIR folder), ``run`` (TREC run), ``split="test"``, ``top_k=None``,
      ``add_missing_positives=False`` (add judged-relevant docs the run missed: training),
      ``num_negatives=None`` (keep only this many non-relevant docs, best-ranked first: hard negatives).
    * ``hf``: ``path`` (Hub id, ``save_to_disk`` folder or a .json/.jsonl/.parquet/.csv file),
      ``name=None``, ``split="train"``, ``streaming=False`` (returns an iterator), ``data_files=None``,
      ``qid_column=None``, ``query_column="query"``, ``positive_column`` / ``negative_column``
      (lists of strings or ``{docid,title,text}``), ``pos_scores_column`` / ``neg_scores_column``,
      ``docs_column`` / ``labels_column`` / ``teacher_column``, ``limit=None``. Columns default to
      whatever the dataset has among Tevatron (``positive_passages``/``negative_passages``),
      group (``pos``/``neg``) and canonical (``docs``/``labels``) names.
    * ``synthetic``: no ``path``; ``split="train"|"test"``, ``num_queries=200``,
      ``docs_per_query=24``, ``seed=0``.

    Formats registered by other modules (e.g. ``sharegpt``) document their own keys.

    Raises:
        ValueError: unknown format or key (naming the closest valid one), malformed input,
            or a source that yields no non-empty list.
    """
    _load_plugins()
    if "format" not in spec:
        raise ValueError(f"data source {dict(spec)!r} has no 'format'; valid formats: {sorted(_READERS)}")
    fmt = spec["format"]
    if fmt not in _READERS:
        raise ValueError(
            f"unknown data format {fmt!r}{did_you_mean(str(fmt), _READERS, cutoff=0.0)} (valid: {', '.join(sorted(_READERS))})"
        )
    reader = _READERS[fmt]
    params = inspect.signature(reader).parameters
    valid = [p for p, v in params.items() if v.kind in (v.POSITIONAL_OR_KEYWORD, v.KEYWORD_ONLY)]
    options = {k: v for k, v in spec.items() if k != "format"}
    for key in options:
        if key not in valid:
            raise ValueError(
                f"unknown key {key!r} for data format {fmt!r}{did_you_mean(key, valid, cutoff=0.0)} (valid: {', '.join(valid)})"
            )
    missing = [p for p, v in params.items() if v.default is inspect.Parameter.empty and p not in options]
    if missing:
        raise ValueError(f"data format {fmt!r} needs key(s) {missing}")
    result = reader(**options)
    if isinstance(result, list):
        if not result:
            raise ValueError(f"data source {dict(spec)!r} produced no non-empty ranking list")
        return result
    return iter(result)


# --------------------------------------------------------------------------- helpers


def content_docid(text: str, title: str | None = None) -> str:
    """A stable synthetic docid from the content: ``"h"`` + 16 hex digits of SHA-1(title, text)."""
    key = f"{title or ''}\x1f{text}".encode()
    return "h" + hashlib.sha1(key).hexdigest()[:16]


def _query_id(query: str) -> str:
    return "q" + hashlib.sha1(query.encode()).hexdigest()[:12]


def _drop_empty(lists: Iterable[RankingList], source: PathLike) -> list[RankingList]:
    kept, dropped = [], []
    for rl in lists:
        (kept if len(rl) else dropped).append(rl)
    if dropped:
        warnings.warn(
            f"{source}: dropped {len(dropped)} list(s) without documents (first qids: "
            f"{[rl.qid for rl in dropped[:5]]})",
            UserWarning,
            stacklevel=3,
        )
    return kept


def _iter_jsonl(path: PathLike, expected: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line_number, object)`` for each non-blank line; ValueError naming file:line otherwise."""
    for lineno, line in text_lines(path, "data"):
        if not line.strip():
            continue
        yield lineno, json_object(line, f"{path}:{lineno}", expected)


def _to_doc(item: Any, where: str) -> Doc:
    """A passage given as a string or as ``{docid?, title?, text}`` (also ``_id``/``content``)."""
    if isinstance(item, str):
        return Doc(content_docid(item), item)
    if isinstance(item, Mapping):
        text = item.get("text", item.get("content"))
        if not isinstance(text, str):
            raise ValueError(
                f"{where}: passage {dict(item)!r} has no 'text'; expected a string or {{docid,title,text}}"
            )
        title = item.get("title") or None
        docid = item.get("docid", item.get("_id", item.get("id")))
        return Doc(str(docid) if docid is not None else content_docid(text, title), text, title)
    raise ValueError(f"{where}: passage of type {type(item).__name__}; expected a string or {{docid,title,text}}")


def _floats(values: Any, n: int, where: str, what: str) -> list[float]:
    if not isinstance(values, list | tuple) or len(values) != n:
        got = len(values) if isinstance(values, list | tuple) else type(values).__name__
        raise ValueError(f"{where}: '{what}' has {got} entries; expected a list of {n} numbers")
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: '{what}' must contain numbers") from None


def _group_to_list(
    obj: Mapping[str, Any],
    where: str,
    *,
    qid: Any,
    query_key: str,
    pos_key: str,
    neg_key: str,
    pos_scores_key: str | None,
    neg_scores_key: str | None,
) -> RankingList:
    query = obj.get(query_key)
    if not isinstance(query, str):
        raise ValueError(f"{where}: no string '{query_key}'; expected {{{query_key}, {pos_key}, {neg_key}}}")
    pos, neg = obj.get(pos_key) or [], obj.get(neg_key) or []
    if not isinstance(pos, list) or not isinstance(neg, list):
        raise ValueError(f"{where}: '{pos_key}' and '{neg_key}' must be lists of passages")
    docs = [_to_doc(p, where) for p in pos] + [_to_doc(x, where) for x in neg]
    labels = [1.0] * len(pos) + [0.0] * len(neg)
    teacher = None
    ps = obj.get(pos_scores_key) if pos_scores_key else None
    ns = obj.get(neg_scores_key) if neg_scores_key else None
    if ps is not None or ns is not None:
        teacher = _floats(ps or [], len(pos), where, str(pos_scores_key)) + _floats(
            ns or [], len(neg), where, str(neg_scores_key)
        )
    return RankingList(
        qid=str(qid) if qid is not None else _query_id(query),
        query=query,
        docs=docs,
        labels=labels,
        teacher_scores=teacher,
    )


# --------------------------------------------------------------------------- 1. canonical JSONL

_CANONICAL = (
    "one RankingList object per line: {qid, query, docs: [{docid, text, title?}], labels, teacher_scores?, order?}"
)


def iter_lists_jsonl(path: PathLike) -> Iterator[RankingList]:
    """Stream canonical JSONL lists (empty lists included; :func:`read_lists_jsonl` drops them)."""
    for lineno, obj in _iter_jsonl(path, _CANONICAL):
        try:
            yield RankingList.from_dict(obj)
        except KeyError as err:
            raise ValueError(f"{path}:{lineno}: missing key {err}; expected {_CANONICAL}") from None
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}:{lineno}: {err}; expected {_CANONICAL}") from None


@register_reader("jsonl")
def read_lists_jsonl(path: PathLike) -> list[RankingList]:
    """Read canonical JSONL (one :meth:`RankingList.to_dict` per line)."""
    return _drop_empty(iter_lists_jsonl(path), path)


def write_lists_jsonl(lists: Iterable[RankingList], path: PathLike) -> Path:
    """Write lists as canonical JSONL atomically (temp file in the same folder + ``os.replace``)."""
    path = Path(path)
    with atomic_open(path) as f:
        for rl in lists:
            f.write(rl.to_json() + "\n")
    return path


# --------------------------------------------------------------------------- 2. group format


@register_reader("group")
def read_group_jsonl(
    path: PathLike,
    query_key: str = "query",
    pos_key: str = "pos",
    neg_key: str = "neg",
    pos_scores_key: str | None = "pos_scores",
    neg_scores_key: str | None = "neg_scores",
    qid_key: str = "qid",
) -> list[RankingList]:
    """Read ``{query, pos, neg, pos_scores?, neg_scores?}`` JSONL (FlagEmbedding / Tevatron style).

    Positives get label 1, negatives 0. Passages may be strings (docid = :func:`content_docid`)
    or ``{docid, title, text}``. ``pos_scores``/``neg_scores`` become ``teacher_scores``. The qid is
    ``obj[qid_key]`` when present, else a hash of the query text. Other keys (e.g. ``prompt``) go to
    ``meta``.
    """
    expected = f"one object per line {{{query_key}, {pos_key}, {neg_key}, {pos_scores_key}?, {neg_scores_key}?}}"
    used = {query_key, pos_key, neg_key, pos_scores_key, neg_scores_key, qid_key}
    out = []
    for lineno, obj in _iter_jsonl(path, expected):
        rl = _group_to_list(
            obj,
            f"{path}:{lineno}",
            qid=obj.get(qid_key),
            query_key=query_key,
            pos_key=pos_key,
            neg_key=neg_key,
            pos_scores_key=pos_scores_key,
            neg_scores_key=neg_scores_key,
        )
        rl.meta.update({k: v for k, v in obj.items() if k not in used})
        out.append(rl)
    return _drop_empty(out, path)


# --------------------------------------------------------------------------- TREC files
# One parser per format for the whole package (llmrank.runs): the same checks and file:line errors
# for training data as for reranking and evaluation.


def _read_topics(path: PathLike) -> dict[str, str]:
    """Topics as TSV ``qid<TAB>query`` or BEIR ``queries.jsonl`` (``{_id, text}``; a BEIR folder works too)."""
    path = Path(path)
    return read_topics(path / "queries.jsonl" if path.is_dir() else path)


def _doc(corpus: dict[str, Doc], docid: str, corpus_path: Path) -> Doc:
    try:
        return corpus[docid]
    except KeyError:
        raise ValueError(f"docid {docid!r} has no text in corpus {corpus_path}") from None


# --------------------------------------------------------------------------- 3. rank_llm JSON


@register_reader("rankllm")
def read_rankllm(path: PathLike, qrels: PathLike | None = None, top_k: int | None = None) -> list[RankingList]:
    """Read rank_llm candidates: the current ``{query: {text, qid}, candidates: [{docid, score, doc}]}``
    or the older ``{query, hits: [{content, qid, docid, rank, score}]}``, as a JSON list or JSONL
    (one parser for the package: :func:`llmrank.runs.parse_rank_llm`).

    Candidates keep the file's order (older hits sorted by ``rank`` when present); every candidate
    needs its passage text; ``labels`` come from ``qrels`` (graded; unjudged and no-qrels = 0);
    candidate scores go to ``meta["first_stage_scores"]`` (None when the file has none).
    """
    judged = read_qrels(qrels) if qrels is not None else {}
    out = []
    for i, request in enumerate(parse_rank_llm(path)):
        candidates = request.candidates[:top_k] if top_k is not None else request.candidates
        for j, cand in enumerate(candidates):
            if cand.text is None:
                raise missing_text_error(request, j, "training needs every passage's text")
        qid = request.qid if request.qid is not None else f"entry{i}"
        rel = judged.get(qid, {})
        out.append(
            RankingList(
                qid=qid,
                query=request.query,
                docs=[Doc(c.docid, str(c.text), c.title) for c in candidates],
                labels=[float(rel.get(c.docid, 0)) for c in candidates],
                meta={"first_stage_scores": [c.score for c in candidates]},
            )
        )
    return _drop_empty(out, path)


# --------------------------------------------------------------------------- 4. TREC run / BEIR


def _lists_from_run(
    run: dict[str, list[tuple[str, float]]],
    topics: dict[str, str],
    topics_path: PathLike,
    corpus_path: PathLike,
    qrels: dict[str, dict[str, int]],
    top_k: int | None,
    add_missing_positives: bool = False,
    num_negatives: int | None = None,
) -> list[RankingList]:
    qids = list(run)
    if add_missing_positives:
        qids += [q for q in qrels if q not in run and any(r > 0 for r in qrels[q].values())]
    plans: dict[str, list[tuple[str, float | None]]] = {}
    for qid in qids:
        hits: list[tuple[str, float | None]] = list(run.get(qid, []))[:top_k]
        rel = qrels.get(qid, {})
        if num_negatives is not None:
            negs = [h for h in hits if rel.get(h[0], 0) <= 0][:num_negatives]
            keep = {h[0] for h in negs}
            hits = [h for h in hits if rel.get(h[0], 0) > 0 or h[0] in keep]
        if add_missing_positives:
            seen = {h[0] for h in hits}
            hits += [(d, None) for d, r in rel.items() if r > 0 and d not in seen]
        plans[qid] = hits
    needed = {d for hits in plans.values() for d, _ in hits}
    corpus, cpath = read_corpus(corpus_path, needed), corpus_file(corpus_path)
    out = []
    for qid, hits in plans.items():
        if qid not in topics:
            raise ValueError(f"query {qid!r} of the run has no text in topics {topics_path}")
        rel = qrels.get(qid, {})
        out.append(
            RankingList(
                qid=qid,
                query=topics[qid],
                docs=[_doc(corpus, d, cpath) for d, _ in hits],
                labels=[float(rel.get(d, 0)) for d, _ in hits],
                meta={"first_stage_scores": [s for _, s in hits]},
            )
        )
    return out


@register_reader("trec")
def read_trec(
    path: PathLike,
    topics: PathLike,
    corpus: PathLike,
    qrels: PathLike | None = None,
    top_k: int | None = None,
) -> list[RankingList]:
    """Lists from a TREC run (``path``) with query texts from ``topics`` and passages from ``corpus``.

    ``topics``: TSV ``qid<TAB>query`` or BEIR ``queries.jsonl``; ``corpus``: JSONL ``{_id,title,text}``
    or a BEIR folder; ``qrels`` (optional): graded labels, unjudged = 0; ``top_k``: keep the best k
    of each query. Only the documents the run needs are kept in memory.
    """
    run = read_trec_run(path)
    judged = read_qrels(qrels) if qrels is not None else {}
    return _drop_empty(_lists_from_run(run, _read_topics(topics), topics, corpus, judged, top_k), path)


@register_reader("beir")
def read_beir(
    path: PathLike,
    run: PathLike,
    split: str = "test",
    top_k: int | None = None,
    add_missing_positives: bool = False,
    num_negatives: int | None = None,
) -> list[RankingList]:
    """Lists for the queries of a BEIR folder's ``qrels/<split>.tsv`` from a TREC ``run``.

    Only queries judged in the split are kept. For training lists set ``add_missing_positives``
    (judged-relevant docs outside the run's ``top_k`` are appended, so every judged query has its
    positives) and ``num_negatives`` (keep the best-ranked non-relevant docs: hard negatives).
    """
    folder = Path(path)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        have = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise ValueError(f"BEIR folder {folder} has no split {split!r} ({qrels_path} missing; splits: {have})")
    judged = read_qrels(qrels_path)
    full_run = read_trec_run(run)
    run_split = {q: hits for q, hits in full_run.items() if q in judged}
    lists = _lists_from_run(
        run_split,
        _read_topics(folder / "queries.jsonl"),
        folder / "queries.jsonl",
        folder,
        judged,
        top_k,
        add_missing_positives,
        num_negatives,
    )
    return _drop_empty(lists, run)


def beir_training_lists(
    path: PathLike, run: PathLike, split: str = "train", top_k: int | None = 100, num_negatives: int | None = 31
) -> list[RankingList]:
    """Training lists from a BEIR split + a first-stage run: the qrels' positives (added when the
    run missed them) and the ``num_negatives`` best-ranked non-relevant docs of the run's ``top_k``
    (hard negatives). Queries the run lacks get their positives only."""
    return read_beir(path, run, split=split, top_k=top_k, add_missing_positives=True, num_negatives=num_negatives)


# --------------------------------------------------------------------------- 5. datasets


def _load_hf(path: PathLike, name: str | None, split: str, streaming: bool, data_files: Any) -> Any:
    import datasets

    p = Path(path)
    if p.is_dir() and (
        (p / "dataset_info.json").exists() or (p / "dataset_dict.json").exists() or (p / "state.json").exists()
    ):
        ds = datasets.load_from_disk(str(p))
        if isinstance(ds, datasets.DatasetDict):
            if split not in ds:
                raise ValueError(f"{p}: no split {split!r}{did_you_mean(split, ds, cutoff=0.0)} (splits: {list(ds)})")
            ds = ds[split]
        return ds.to_iterable_dataset() if streaming else ds
    if p.is_file():
        kind = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}.get(p.suffix)
        if kind is None:
            raise ValueError(f"{p}: cannot load a {p.suffix!r} file; expected .json, .jsonl, .parquet or .csv")
        return datasets.load_dataset(kind, data_files=str(p), split="train", streaming=streaming)
    return datasets.load_dataset(str(path), name, split=split, streaming=streaming, data_files=data_files)


def _pick(columns: list[str], wanted: str | None, candidates: tuple[str, ...]) -> str | None:
    if wanted is not None:
        return wanted
    return next((c for c in candidates if c in columns), None)


@register_reader("hf")
def read_hf(
    path: PathLike,
    name: str | None = None,
    split: str = "train",
    streaming: bool = False,
    data_files: Any = None,
    qid_column: str | None = None,
    query_column: str = "query",
    positive_column: str | None = None,
    negative_column: str | None = None,
    pos_scores_column: str | None = None,
    neg_scores_column: str | None = None,
    docs_column: str | None = None,
    labels_column: str | None = None,
    teacher_column: str | None = None,
    limit: int | None = None,
) -> list[RankingList] | Iterator[RankingList]:
    """Lists from a ``datasets`` dataset (Hub id, ``save_to_disk`` folder, or a json/parquet/csv file).

    Two row layouts: positives/negatives columns (label 1 / 0; e.g. Tevatron's
    ``positive_passages``/``negative_passages`` of ``{docid,title,text}``) or a docs column with a
    labels column (canonical). Unset columns are auto-detected. ``streaming=True`` returns a lazy
    iterator (empty rows skipped silently) instead of a list.
    """
    ds = _load_hf(path, name, split, streaming, data_files)
    columns = list(ds.column_names or []) if getattr(ds, "column_names", None) is not None else []
    if not columns and streaming:
        columns = list(next(iter(ds)).keys())
    if query_column not in columns:
        raise ValueError(
            f"dataset {path}: no query column {query_column!r}{did_you_mean(query_column, columns, cutoff=0.0)} (columns: {columns})"
        )
    pos_col = _pick(columns, positive_column, ("positive_passages", "pos", "positives"))
    docs_col = None if pos_col else _pick(columns, docs_column, ("docs", "passages"))
    if pos_col is None and docs_col is None:
        raise ValueError(
            f"dataset {path}: set positive_column/negative_column or docs_column/labels_column (columns: {columns})"
        )
    neg_col = _pick(columns, negative_column, ("negative_passages", "neg", "negatives")) if pos_col else None
    labels_col = _pick(columns, labels_column, ("labels", "label")) if docs_col else None
    if docs_col and labels_col is None:
        raise ValueError(f"dataset {path}: docs column {docs_col!r} needs a labels_column (columns: {columns})")
    for col in (
        pos_col,
        neg_col,
        docs_col,
        labels_col,
        qid_column,
        pos_scores_column,
        neg_scores_column,
        teacher_column,
    ):
        if col is not None and col not in columns:
            raise ValueError(f"dataset {path}: no column {col!r}{did_you_mean(col, columns, cutoff=0.0)} (columns: {columns})")

    def rows() -> Iterator[RankingList]:
        for i, row in enumerate(ds):
            if limit is not None and i >= limit:
                return
            where = f"dataset {path} row {i}"
            qid = row[qid_column] if qid_column else None
            if pos_col:
                yield _group_to_list(
                    row,
                    where,
                    qid=qid,
                    query_key=query_column,
                    pos_key=pos_col,
                    neg_key=neg_col or "",
                    pos_scores_key=pos_scores_column,
                    neg_scores_key=neg_scores_column,
                )
                continue
            docs = [_to_doc(d, where) for d in row[docs_col] or []]
            labels = _floats(row[labels_col] or [], len(docs), where, str(labels_col))
            teacher = _floats(row[teacher_column], len(docs), where, teacher_column) if teacher_column else None
            yield RankingList(
                qid=str(qid) if qid is not None else _query_id(row[query_column]),
                query=row[query_column],
                docs=docs,
                labels=labels,
                teacher_scores=teacher,
            )

    if streaming:
        return (rl for rl in rows() if len(rl))
    return _drop_empty(rows(), str(path))


# --------------------------------------------------------------------------- 6. synthetic


@register_reader("synthetic")
def read_synthetic(
    split: str = "train", num_queries: int = 200, docs_per_query: int = 24, seed: int = 0
) -> list[RankingList]:
    """The generated demo task (:func:`llmrank.data.synthetic.make_synthetic_task`), ``split`` train|test."""
    if split not in ("train", "test"):
        raise ValueError(f"synthetic split {split!r}{did_you_mean(split, ['train', 'test'], cutoff=0.0)}; expected 'train' or 'test'")
    task = make_synthetic_task(num_queries=num_queries, docs_per_query=docs_per_query, seed=seed)
    return list(task.train if split == "train" else task.test)
