"""`llmrank merge-lora`: a merged standalone checkpoint scores like the adapter it came from,
per family, and the merge is written atomically with the LoRA settings removed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from llmrank.cli import main as cli_main
from llmrank.loading import load_ranker
from llmrank.merge import merge_lora
from llmrank.rankers import LoraSettings, Ranker, RankerSettings, family_class
from llmrank.rankers.base import TARGET_KEYS
from tests.conftest import make_lists

CASES = [
    ("bert", "tiny_bert", "cross-encoder", {}),
    ("llama", "tiny_llama", "cross-encoder", {}),
    ("rankt5", "tiny_t5", "seq2seq", {"mode": "rankt5"}),
]
try:
    import llmrank.rankers.first  # noqa: F401

    CASES.append(("first", "tiny_llama", "first", {}))
except ModuleNotFoundError:  # pragma: no cover - FIRST not written yet
    pass


def build_lora_ranker(path: str, family: str, options: dict) -> Ranker:
    torch.manual_seed(0)
    ranker = family_class(family).build(
        RankerSettings(
            family=family,
            model_name_or_path=path,
            options=dict(options),
            lora=LoraSettings(r=4, alpha=8, dropout=0.0),
        )
    )
    # LoRA B starts at zero: move every trainable weight so the merge has something to fold in
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in ranker.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return ranker.eval()


@torch.inference_mode()
def forward_scores(ranker: Ranker) -> torch.Tensor:
    ranker.eval()
    batch = ranker.collate(make_lists())
    out = ranker(**{k: v for k, v in batch.items() if k not in TARGET_KEYS})
    return out.scores.float().masked_fill(~out.mask, 0.0)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_merged_scores_equal_adapter_scores(case, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    name, fixture, family, options = case
    base_path = request.getfixturevalue(fixture)
    ranker = build_lora_ranker(base_path, family, options)
    assert ranker.is_peft
    ckpt = tmp_path / "adapter-ckpt"
    ranker.save_pretrained(ckpt)
    (ckpt / "recipe.yaml").write_text(f"model:\n  family: {family}\nobjective:\n  - {{name: softmax, weight: 1.0}}\n")
    (ckpt / "optimizer.pt").write_bytes(b"resume state, not for the merged model")

    out = tmp_path / "merged"
    assert merge_lora(ckpt, out) == out
    assert not list(tmp_path.glob(".tmp-*")), "temporary folders left behind"

    # layout: full backbone in safetensors, no adapter, config without lora, side files kept
    assert (out / "backbone" / "config.json").is_file() and list((out / "backbone").glob("*.safetensors"))
    assert not (out / "adapter").exists()
    assert not list(out.rglob("*.bin")) and not (out / "optimizer.pt").exists()
    meta = json.loads((out / "llmrank_config.json").read_text())
    assert meta["settings"]["lora"] is None
    assert meta["merged_lora"]["r"] == 4 and meta["merged_lora"]["base_model"] == base_path
    assert (out / "recipe.yaml").is_file() and (out / "README.md").is_file()
    assert (out / "tokenizer").is_dir()

    adapter = load_ranker(ckpt)
    merged = load_ranker(out)
    assert adapter.is_peft and not merged.is_peft
    expected, got = forward_scores(adapter), forward_scores(merged)
    assert torch.allclose(expected, got, atol=1e-4, rtol=1e-4), (expected, got)
    # and the merge is not trivially the base model
    if family != "first":
        lists = make_lists()
        a, b = adapter.score_lists(lists), merged.score_lists(lists)
        for row_a, row_b in zip(a, b):
            assert row_a == pytest.approx(row_b, abs=1e-4)


def test_merge_rejects_full_checkpoints_and_existing_out(tmp_path: Path, tiny_bert: str) -> None:
    torch.manual_seed(0)
    full = family_class("cross-encoder").build(RankerSettings(family="cross-encoder", model_name_or_path=tiny_bert))
    full.save_pretrained(tmp_path / "full")
    with pytest.raises(ValueError, match="not a LoRA adapter"):
        merge_lora(tmp_path / "full", tmp_path / "out")

    lora = build_lora_ranker(tiny_bert, "cross-encoder", {})
    lora.save_pretrained(tmp_path / "lora")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="exists and is not empty"):
        merge_lora(tmp_path / "lora", tmp_path / "busy")
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
    merge_lora(tmp_path / "lora", tmp_path / "busy", overwrite=True)
    assert not (tmp_path / "busy" / "keep.txt").exists() and (tmp_path / "busy" / "backbone").is_dir()


def test_merge_cli(tmp_path: Path, tiny_bert: str, capsys: pytest.CaptureFixture[str]) -> None:
    lora = build_lora_ranker(tiny_bert, "cross-encoder", {})
    lora.save_pretrained(tmp_path / "lora")
    assert cli_main(["merge-lora", "--model", str(tmp_path / "lora"), "--out", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "backbone").is_dir()

    capsys.readouterr()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "llmrank_config.json").write_text("{}")
    assert cli_main(["merge-lora", "--model", str(tmp_path / "broken"), "--out", str(tmp_path / "m2")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "tokenizer/" in err and "backbone/ or adapter/" in err
    assert not (tmp_path / "m2").exists()
