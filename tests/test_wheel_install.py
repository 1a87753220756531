"""A regular (non-editable) install works: build a wheel, install it into a temporary folder and run
`llmrank trec-dl` from outside the source tree (the dataset table is package data)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip wheel`` of a copy of the source (so no build/ lands in the checkout), then
    ``pip install --no-deps --target``; returns the target folder."""
    pytest.importorskip("setuptools")
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "llmrank", src / "llmrank", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(src)],
                   check=True, capture_output=True, timeout=600)  # fmt: skip
    (wheel,) = (root / "dist").glob("llmrank-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        assert "llmrank/datasets.yaml" in zf.namelist(), "the dataset table is not in the wheel"
    target = root / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=600)  # fmt: skip
    return target


def _run(target: Path, argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("LLMRANK_DATASETS", None)
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_dataset_table_from_installed_wheel(installed: Path, tmp_path: Path) -> None:
    code = ("import llmrank.pipeline as p, pathlib; t = p.dataset_table(); "
            "print(pathlib.Path(p.__file__).parent); print(sorted(t['trec_dl'])[0], 'scifact' in t['beir'])")  # fmt: skip
    proc = _run(installed, ["-c", code], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    where, first = proc.stdout.splitlines()
    assert Path(where).resolve() == (installed / "llmrank").resolve(), "imported the installed copy"
    assert first == "2019 True"


def test_trec_dl_cli_from_installed_wheel(installed: Path, tmp_path: Path) -> None:
    """`llmrank trec-dl --model none` with a local run, qrels and topics: the table's year lookup,
    evaluation and summary, from the installed package in a folder outside the source tree."""
    (tmp_path / "run.trec").write_text("q1 Q0 d1 1 3.0 bm25\nq1 Q0 d2 2 2.0 bm25\nq2 Q0 d3 1 1.0 bm25\n")
    (tmp_path / "qrels.txt").write_text("q1 0 d2 2\nq2 0 d3 1\n")
    (tmp_path / "topics.tsv").write_text("q1\tfirst query\nq2\tsecond query\n")
    argv = ["-m", "llmrank.cli", "trec-dl", "--model", "none", "--years", "2019", "--first-stage", "run.trec",
            "--qrels", "qrels.txt", "--topics", "topics.tsv", "--out-dir", "res", "--no-progress"]  # fmt: skip
    proc = _run(installed, argv, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "res" / "summary.json").read_text())
    assert summary["rows"][0]["dataset"] == "dl19"
    # published BM25 numbers come from the packaged table
    assert summary["rows"][0]["published BM25 nDCG@10"] is None  # a given run: no published baseline
    proc = _run(installed, ["-m", "llmrank.cli", "trec-dl", "--model", "none", "--years", "2018"], cwd=tmp_path)
    assert proc.returncode == 2 and "unknown TREC DL year '2018'" in proc.stderr
