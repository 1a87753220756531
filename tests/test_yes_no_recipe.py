"""The yes/no family through the real training entry point (``llmrank.train``): the offline demo
recipe trains a tiny Qwen3 with LoRA (softmax, and LiPO-λ against the adapters-disabled
reference), saves, reloads and reranks; the published recipes parse and build their templates."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llmrank.config import load_recipe
from llmrank.data.record import Doc, RankingList
from llmrank.loading import load_ranker
from llmrank.rankers.prompts import get_template
from llmrank.train import run_training
from tests.test_yes_no_models import make_qwen_tokenizer, make_tiny_qwen3

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
DEMO = RECIPES / "demo" / "tiny-yes-no.yaml"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tok = make_qwen_tokenizer(tmp_path_factory.mktemp("qwen-tok"))
    return make_tiny_qwen3(tmp_path_factory.mktemp("tiny-qwen3"), tok)


@pytest.mark.parametrize(
    "path", ["qwen3-reranker-0.6b/lora-softmax.yaml", "qwen3-reranker-0.6b/lora-lipo.yaml",
             "bge-reranker-v2-gemma/lora-softmax.yaml", "demo/tiny-yes-no.yaml"],
)  # fmt: skip
def test_published_recipes_parse(path: str) -> None:
    # bf16 recipes are for GPUs; TrainingArguments refuses them on a CPU-only machine
    cpu = {} if torch.cuda.is_available() else {"training.bf16": False}
    recipe = load_recipe(RECIPES / path, cpu if "demo" not in path else {})
    assert recipe.model.family == "yes-no"
    get_template(recipe.model.options["template"])  # a known template
    if "lipo" in path:
        assert recipe.objective[0]["name"] == "lipo_lambda"
    if "qwen3" in path:
        assert recipe.model.model_name_or_path == "Qwen/Qwen3-Reranker-0.6B"


@pytest.mark.parametrize("objective", [[{"name": "softmax"}], [{"name": "lipo_lambda", "beta": 0.5}]], ids=["softmax", "lipo"])
def test_demo_recipe_trains_reloads_and_reranks(tiny: Path, tmp_path: Path, objective: list[dict]) -> None:
    out = tmp_path / "run"
    recipe = load_recipe(DEMO, {
        "model.model_name_or_path": str(tiny), "training.output_dir": str(out), "training.max_steps": 3,
        "training.logging_steps": 1, "data.train.num_queries": 8, "data.eval.num_queries": 4, "objective": objective,
    })  # fmt: skip
    result = run_training(recipe)
    assert result.ranker.compute_reference == (objective[0]["name"] == "lipo_lambda")
    assert any(k.endswith("ndcg@10") for k in result.metrics)
    lora_b = [v for k, v in result.ranker.backbone.state_dict().items() if "lora_B" in k]
    assert lora_b and any(float(v.abs().sum()) > 0 for v in lora_b)  # the adapters moved
    reloaded = load_ranker(out)
    docs = [Doc(str(i), f"passage {i} about the virus protein" * (1 + i % 3)) for i in range(6)]
    lst = RankingList("q", "virus protein", docs, [0.0] * 6)
    torch.testing.assert_close(torch.tensor(reloaded.score_lists([lst])[0]),
                               torch.tensor(result.ranker.score_lists([lst])[0]), atol=1e-6, rtol=0)  # fmt: skip
    ranked = reloaded.rerank("virus protein", docs)
    assert sorted(d for d, _ in ranked) == sorted(d.docid for d in docs)
    # `llmrank rerank` on the trained checkpoint: a rank_llm candidate file in, a TREC run out
    import json

    from llmrank.cli import main as cli

    cands = [{"query": {"text": "virus protein", "qid": "7"},
              "hits": [{"qid": "7", "docid": d.docid, "content": d.text, "rank": i + 1, "score": -i} for i, d in enumerate(docs)]}]  # fmt: skip
    (tmp_path / "cands.json").write_text(json.dumps(cands))
    assert cli(["rerank", "--model", str(out), "--run", str(tmp_path / "cands.json"), "--top-k", "6",
                "--out", str(tmp_path / "rerank.trec"), "--no-progress"]) == 0  # fmt: skip
    lines = [line.split() for line in (tmp_path / "rerank.trec").read_text().splitlines()]
    by_doc = {parts[2]: float(parts[4]) for parts in lines}
    expected = dict(ranked)
    assert set(by_doc) == set(expected)
    for docid, score in by_doc.items():
        assert abs(score - expected[docid]) < 1e-4
    # llmrank merge-lora folds the adapters in: the merged checkpoint scores the same
    from llmrank.merge import merge_lora

    merged = load_ranker(merge_lora(out, tmp_path / "merged", write_card=False))
    assert not merged.is_peft
    torch.testing.assert_close(torch.tensor(merged.score_lists([lst])[0]),
                               torch.tensor(reloaded.score_lists([lst])[0]), atol=1e-5, rtol=0)  # fmt: skip


def test_bad_template_is_a_one_line_error(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from llmrank.train import main

    out = tmp_path / "never"
    code = main(["--config", str(DEMO), f"--model.model_name_or_path={tiny}", f"--training.output_dir={out}",
                 "--model.options.template=qwen4-reranker"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not out.exists()
    assert err[-1].startswith("llmrank.train: error: unknown yes/no template 'qwen4-reranker'") and "Traceback" not in "\n".join(err)
