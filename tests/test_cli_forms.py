"""Every command form the README shows, run through the installed ``llmrank`` console script (and
``python -m llmrank.train`` / ``accelerate launch -m llmrank.train``) as subprocesses, on the
shipped demo recipe with a tiny local BERT and the synthetic task."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmrank.data.readers import write_lists_jsonl
from llmrank.data.synthetic import make_synthetic_task
from tests.tiny_models import make_tiny_bert

ROOT = Path(__file__).resolve().parents[1]
DEMO_RECIPE = ROOT / "recipes" / "demo" / "listwise-softmax.yaml"


def console_script() -> str:
    """The installed ``llmrank`` entry point (next to this interpreter, else on PATH)."""
    here = Path(sys.executable).parent / "llmrank"
    found = str(here) if here.exists() else shutil.which("llmrank")
    if not found:
        pytest.skip("the llmrank console script is not installed (pip install -e .)")
    return found


def run_cli(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip
    return subprocess.run(argv, cwd=cwd, env={**base, **(env or {})}, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a tiny BERT and the synthetic task's train/test lists."""
    root = tmp_path_factory.mktemp("forms")
    make_tiny_bert(root / "bert")
    task = make_synthetic_task(num_queries=16, docs_per_query=12, seed=3)
    write_lists_jsonl(task.train, root / "train.jsonl")
    write_lists_jsonl(task.test, root / "test.jsonl")
    return root


def overrides(work: Path, out: Path) -> list[str]:
    """--key=value overrides that point the demo recipe at the tiny local files, 2 steps."""
    return [f"--model.model_name_or_path={work / 'bert'}", f"--data.train.path={work / 'train.jsonl'}",
            f"--data.eval.path={work / 'test.jsonl'}", f"--output_dir={out}", "--max_steps=2",
            "--logging_steps=1", "--disable_tqdm=true", "--learning_rate=1e-4"]  # fmt: skip


def assert_trained(out: Path, proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "llmrank_config.json").is_file() and (out / "head.safetensors").is_file(), proc.stderr[-2000:]
    saved = (out / "recipe.yaml").read_text()
    assert "learning_rate: 1e-4" in saved or "learning_rate: 0.0001" in saved, "the override reached the recipe"


@pytest.fixture(scope="module")
def trained(work: Path) -> Path:
    """`llmrank train --config recipe.yaml --key=value ...` (the README's form)."""
    out = work / "model-config-flag"
    proc = run_cli([console_script(), "train", "--config", str(DEMO_RECIPE), *overrides(work, out)], cwd=work)
    assert_trained(out, proc)
    return out


def test_train_config_flag(trained: Path) -> None:
    assert json.loads((trained / "llmrank_config.json").read_text())["family"] == "cross-encoder"


def test_train_positional_recipe_and_config_equals(work: Path) -> None:
    """`llmrank train recipe.yaml --key=value` and `llmrank train --config=recipe.yaml`."""
    out = work / "model-positional"
    assert_trained(out, run_cli([console_script(), "train", str(DEMO_RECIPE), *overrides(work, out)], cwd=work))
    out2 = work / "model-config-equals"
    assert_trained(out2, run_cli([console_script(), "train", f"--config={DEMO_RECIPE}", *overrides(work, out2)],
                                 cwd=work))  # fmt: skip


def test_python_m_llmrank_train(work: Path) -> None:
    """`python -m llmrank.train --config recipe.yaml --learning_rate=1e-4`."""
    out = work / "model-module"
    assert_trained(out, run_cli([sys.executable, "-m", "llmrank.train", "--config", str(DEMO_RECIPE),
                                 *overrides(work, out)], cwd=work))  # fmt: skip


@pytest.mark.slow
def test_accelerate_launch_llmrank_train(work: Path) -> None:
    """`accelerate launch --config_file accelerate_config.yaml -m llmrank.train --config R --learning_rate=1e-4`
    (the shipped config is for 8 GPUs; on this CPU machine one process, no mixed precision)."""
    out = work / "model-accelerate"
    argv = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ROOT / "accelerate_config.yaml"),
            "--cpu", "--num_processes", "1", "--mixed_precision", "no", "-m", "llmrank.train",
            "--config", str(DEMO_RECIPE), *overrides(work, out)]  # fmt: skip
    assert_trained(out, run_cli(argv, cwd=work, env={"CUDA_VISIBLE_DEVICES": ""}))


def test_train_help_and_bad_forms(work: Path) -> None:
    script = console_script()
    proc = run_cli([script, "train", "--help"], cwd=work)
    assert proc.returncode == 0 and "--config" in proc.stdout
    proc = run_cli([script, "train", "--config", str(work)], cwd=work)  # a folder as the recipe
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "is a directory, expected a file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_score(work: Path, trained: Path) -> None:
    """`llmrank score --model CKPT --data train.jsonl --out train.scored.jsonl`."""
    proc = run_cli([console_script(), "score", "--model", str(trained), "--data", "train.jsonl",
                    "--out", "train.scored.jsonl"], cwd=work)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in (work / "train.scored.jsonl").read_text().splitlines() if line.strip()]
    lists = [r for r in rows if "docs" in r]
    assert len(lists) == 12 and all(len(r["teacher_scores"]) == len(r["docs"]) for r in lists)


@pytest.mark.slow
def test_merge_lora_and_push(work: Path) -> None:
    """`llmrank merge-lora --model LORA --out MERGED` and both `llmrank push` forms, against a local fake Hub."""
    from tests.fake_hub import FakeHub

    script = console_script()
    lora = work / "model-lora"
    proc = run_cli([script, "train", "--config", str(DEMO_RECIPE), *overrides(work, lora), "--lora.r=4"], cwd=work)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (lora / "adapter" / "adapter_config.json").is_file()
    merged = work / "model-merged"
    proc = run_cli([script, "merge-lora", "--model", str(lora), "--out", str(merged)], cwd=work)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (merged / "backbone").is_dir() and not (merged / "adapter").exists()

    token = "hf_cliformstesttoken42"
    with FakeHub(token=token, lifetime=300) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": token, "HF_HUB_OFFLINE": "0"}
        proc = run_cli([script, "push", "--model", str(merged), "--repo-id", "me/merged-ce"], cwd=work, env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        proc = run_cli([script, "push", "--model", str(lora), "--repo-id", "me/lora-ce", "--merge-lora", "--private"],
                       cwd=work, env=env)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        # the demo's cross-encoder has the stock head, so a push is a sentence-transformers CrossEncoder folder
        assert {"config.json", "model.safetensors", "llmrank_export.json"} <= set(hub.files("me/merged-ce"))
        assert hub.repos["me/lora-ce"].private and not any(p.startswith("adapter/") for p in hub.files("me/lora-ce"))
        assert token not in proc.stdout + proc.stderr
