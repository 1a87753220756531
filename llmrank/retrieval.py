"""First stage: Pyserini BM25 over a prebuilt or locally built Lucene index; topics, qrels
and document texts by Pyserini name or local file.

Local corpora (a JSONL file or a BEIR folder) are indexed with Pyserini's own indexer
(``python -m pyserini.index.lucene --collection JsonCollection ... --storeRaw``) over
``{"id", "contents"}`` with ``contents = title + ' ' + text`` (the BEIR "flat" convention that
Pyserini's published BM25-flat numbers use), into a cache folder keyed by the corpus path,
size and mtime so the next run reuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from llmrank import pyserini_env
from llmrank.document import Doc
from llmrank.io_utils import cache_root, staged_dir
from llmrank.runs import Qrels, Run, Topics, corpus_file, iter_corpus, read_corpus, read_qrels, read_topics

#: Pyserini's BM25 defaults, used for every published MS MARCO / BEIR BM25 number.
BM25_K1 = 0.9
BM25_B = 0.4


def default_cache_dir() -> Path:
    """Where local Lucene indexes go: ``$LLMRANK_CACHE`` or ``~/.cache/llmrank``."""
    return cache_root() / "indexes"


# --------------------------------------------------------------------------- indexing
def corpus_key(path: str | os.PathLike) -> str:
    """Cache key of a corpus: its absolute path, size and mtime."""
    f = corpus_file(path)
    st = f.stat()
    raw = f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha1(raw.encode()).hexdigest()[:16]


def index_corpus(
    corpus: str | os.PathLike, cache_dir: str | os.PathLike | None = None, threads: int = 1
) -> Path:
    """A Lucene index of ``corpus`` (built once, then reused from the cache)."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    src = corpus_file(corpus)
    target = cache / f"{src.parent.name}-{src.stem}-{corpus_key(src)}"
    if (target / "segments_done").exists() or any(target.glob("segments_*")):
        return target
    with staged_dir(cache, ".tmp-index-") as work:
        coll = work / "collection"
        coll.mkdir()
        n = 0
        with (coll / "docs.jsonl").open("w", encoding="utf-8") as out:
            for doc in iter_corpus(src):
                out.write(json.dumps({"id": doc.docid, "contents": doc.full_text()}, ensure_ascii=False) + "\n")
                n += 1
        if n == 0:
            raise ValueError(f"corpus {src} has no documents")
        index_dir = work / "index"
        argv = pyserini_env.run_module_argv(
            "pyserini.index.lucene",
            "--collection", "JsonCollection",
            "--input", str(coll),
            "--index", str(index_dir),
            "--generator", "DefaultLuceneDocumentGenerator",
            "--threads", str(threads),
            "--storeRaw",
        )  # fmt: skip
        proc = subprocess.run(argv, env=pyserini_env.subprocess_env(), capture_output=True, text=True)
        if proc.returncode != 0 or not any(index_dir.glob("segments_*")):
            tail = (proc.stderr or proc.stdout)[-2000:]
            raise RuntimeError(f"Pyserini indexing of {src} failed (exit {proc.returncode}):\n{tail}")
        try:
            os.replace(index_dir, target)
        except OSError:
            if not any(target.glob("segments_*")):  # not a concurrent builder that won the race
                raise
    return target


# --------------------------------------------------------------------------- searching
class BM25Searcher:
    """Pyserini ``LuceneSearcher`` with BM25 over a prebuilt index name or a local index folder."""

    def __init__(self, index: str | os.PathLike, k1: float = BM25_K1, b: float = BM25_B) -> None:
        lucene = pyserini_env.lucene()
        self.index = str(index)
        if Path(index).is_dir():
            self.searcher = lucene.LuceneSearcher(str(index))
        else:
            try:
                self.searcher = lucene.LuceneSearcher.from_prebuilt_index(str(index))
            except Exception as exc:  # download failures, unknown names
                raise ValueError(
                    f"cannot open Pyserini prebuilt index {str(index)!r} ({_first_line(exc)}); give a local index folder "
                    "or a local corpus instead (prebuilt indexes need network access the first time)"
                ) from exc
            if self.searcher is None:
                raise ValueError(f"unknown Pyserini prebuilt index {str(index)!r}")
        self.searcher.set_bm25(k1=k1, b=b)

    def search(
        self, topics: Mapping[str, str], k: int = 1000, threads: int = 1, remove_query: bool = False
    ) -> Run:
        """Top-``k`` BM25 hits per query, best first. ``remove_query`` drops a hit whose docid
        equals the qid (Pyserini's ``--remove-query``, which matters for ArguAna and Quora)."""
        qids = list(topics)
        queries = [topics[q] for q in qids]
        hits = self.searcher.batch_search(queries, qids, k=k + (1 if remove_query else 0), threads=threads)
        run: Run = {}
        for qid in qids:
            ranked = [(h.docid, float(h.score)) for h in hits.get(qid, [])]
            if remove_query:
                ranked = [(d, s) for d, s in ranked if d != qid]
            run[qid] = ranked[:k]
        return run

    def documents(self, docids: Iterable[str]) -> dict[str, Doc]:
        """Texts from the index's stored raw JSON (docids it lacks are left out)."""
        out: dict[str, Doc] = {}
        for docid in docids:
            doc = self.searcher.doc(docid)
            if doc is None:
                continue
            out[docid] = doc_from_raw(docid, doc.raw() or doc.contents() or "")
        return out


def doc_from_raw(docid: str, raw: str) -> Doc:
    """A :class:`Doc` from a stored raw record: MS MARCO v1 ``contents``, v2 ``passage``,
    BEIR ``title`` + ``text``; non-JSON raw text is taken as is."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError:
        return Doc(docid, raw)
    if not isinstance(obj, dict):
        return Doc(docid, raw)
    text = obj.get("text", obj.get("contents", obj.get("passage", "")))
    return Doc(docid, str(text), obj.get("title") or None)


# --------------------------------------------------------------------------- document stores
class DocStore:
    """Document texts by docid, from a corpus file, a rank_llm JSON or an index."""

    def __init__(self, docs: Mapping[str, Doc] | None = None, searcher: BM25Searcher | None = None) -> None:
        self._docs = dict(docs or {})
        self._searcher = searcher

    @classmethod
    def from_corpus(cls, path: str | os.PathLike) -> DocStore:
        return cls(read_corpus(path))

    def get(self, docids: Iterable[str]) -> dict[str, Doc]:
        """The documents found; the caller decides what a missing one means."""
        docids = list(docids)
        out = {d: self._docs[d] for d in docids if d in self._docs}
        missing = [d for d in docids if d not in out]
        if missing and self._searcher is not None:
            out.update(self._searcher.documents(missing))
        return out


# --------------------------------------------------------------------------- topics, qrels
def load_topics(spec: str | os.PathLike) -> Topics:
    """Topics from a local file, else a Pyserini topics name (``dl19-passage``,
    ``beir-v1.0.0-scifact-test``)."""
    if Path(spec).exists():
        return read_topics(spec)
    raw = _pyserini_named(spec, "topics", "get_topics")
    if not raw:
        raise ValueError(f"{str(spec)!r} is neither a topics file nor a Pyserini topics name")
    return {str(q): str(v.get("title", v.get("text", ""))) for q, v in raw.items()}


def load_qrels(spec: str | os.PathLike) -> Qrels:
    """Qrels from a local file (TREC or BEIR TSV), else a Pyserini qrels name."""
    if Path(spec).exists():
        return read_qrels(spec)
    return read_qrels(_pyserini_named(spec, "qrels", "get_qrels_file"))


def _pyserini_named(spec: str | os.PathLike, what: str, getter: str) -> Any:
    """``pyserini.search.<getter>(spec)``: a Pyserini topics / qrels resource by name."""
    pyserini_env.prepare()
    # pyserini is optional and starts a JVM: imported only when a name (not a local file) is given
    import pyserini.search

    try:
        return getattr(pyserini.search, getter)(str(spec))
    except Exception as exc:
        raise ValueError(
            f"{str(spec)!r} is neither a {what} file nor a usable Pyserini {what} name ({_first_line(exc)})"
        ) from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
