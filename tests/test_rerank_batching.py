"""Cross-query batching in CLI reranking (`llmrank rerank` / `trec-dl` / `beir` use
``rerank_lists``): queries are scored in chunks, the scores equal one-query-at-a-time scoring,
and the per-query latency is each query's pair share of its chunk's time."""

from __future__ import annotations

import pytest
import torch

from llmrank.data.record import RankingList
from llmrank.data.synthetic import make_synthetic_task
from llmrank.rankers.base import RankerSettings, family_class
from llmrank.rerank import PER_QUERY_MS_DEFINITION, rerank_lists


def ragged_lists(n: int = 10) -> list[RankingList]:
    """Synthetic queries cut to different lengths (3..12 documents), so batches mix lengths."""
    task = make_synthetic_task(num_queries=16, docs_per_query=12, seed=5)
    lists = []
    for i, lst in enumerate((task.train + task.test)[:n]):
        keep = 3 + (i * 5) % 10
        lists.append(RankingList(qid=lst.qid, query=lst.query, docs=lst.docs[:keep], labels=[0.0] * keep))
    return lists


class CallLog:
    """Wraps ``ranker.score_lists`` to record how many lists each call got."""

    def __init__(self, ranker) -> None:
        self.sizes: list[int] = []
        inner = ranker.score_lists

        def spy(lists, batch_size=32):
            self.sizes.append(len(lists))
            return inner(lists, batch_size=batch_size)

        ranker.score_lists = spy


def _build(path: str, family: str, options: dict):
    torch.manual_seed(0)
    return family_class(family).build(
        RankerSettings(family=family, model_name_or_path=path, max_length=1024 if family == "first" else 96,
                       options=options)  # fmt: skip
    )


@pytest.mark.parametrize("family", ["cross-encoder", "first"])
def test_chunked_scores_equal_per_query_scores(family: str, request: pytest.FixtureRequest) -> None:
    path = request.getfixturevalue("tiny_bert" if family == "cross-encoder" else "tiny_llama")
    options = {"pooling": "cls"} if family == "cross-encoder" else {"window_size": 4, "stride": 2}
    ranker = _build(path, family, options)
    lists = ragged_lists()
    log = CallLog(ranker)
    one, _ = rerank_lists(ranker, lists, batch_size=8, progress=False, queries_per_chunk=1)
    assert log.sizes == [1] * len(lists)
    log.sizes.clear()
    chunked, stats = rerank_lists(ranker, lists, batch_size=8, progress=False, queries_per_chunk=4)
    assert log.sizes == [4, 4, 2], "queries are handed to the ranker together"
    assert list(chunked) == list(one)
    for qid in one:
        assert [d for d, _ in chunked[qid]] == [d for d, _ in one[qid]], qid
        assert [s for _, s in chunked[qid]] == pytest.approx([s for _, s in one[qid]], abs=1e-5)
    assert stats.pairs == sum(len(lst.docs) for lst in lists)
    assert stats.queries_per_chunk == 4


def test_per_query_latency_is_the_pair_share_of_its_chunk(tiny_bert: str) -> None:
    ranker = _build(tiny_bert, "cross-encoder", {"pooling": "cls"})
    lists = ragged_lists(6)
    _, stats = rerank_lists(ranker, lists, batch_size=8, progress=False, queries_per_chunk=3)
    report = stats.to_dict()
    assert report["per_query_ms_definition"] == PER_QUERY_MS_DEFINITION and report["queries_per_chunk"] == 3
    ms = stats.per_query_ms
    for chunk in (lists[:3], lists[3:]):
        total = sum(ms[lst.qid] for lst in chunk)
        pairs = sum(len(lst.docs) for lst in chunk)
        for lst in chunk:  # each query's share is proportional to its pairs (rounding to 1e-3 ms)
            assert ms[lst.qid] == pytest.approx(total * len(lst.docs) / pairs, abs=2e-3)
    assert report["summary"]["queries"] == 6
