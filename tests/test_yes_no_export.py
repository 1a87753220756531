"""Export of trained yes/no rankers: a stock causal-LM folder (transformers and sentence-transformers'
CrossEncoder load it) and vLLM's single-logit sequence-classification conversion (checked with
transformers' ``*ForSequenceClassification``, since vLLM does not install here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llmrank.export_yes_no import export_causal_lm, export_vllm_seq_cls
from llmrank.rankers.base import LoraSettings
from llmrank.rankers.yes_no import YesNoRanker
from tests.test_yes_no import (  # noqa: F401  (fixtures are used by name)
    DOCS,
    QUERIES,
    build,
    one_list,
    qwen_tokenizer,
    tiny_gemma,
    tiny_gemma2,
    tiny_qwen2,
    tiny_qwen3,
)


def trained(path: Path, template: str) -> YesNoRanker:
    """A LoRA ranker whose adapters are not zero (as after training), so merging matters."""
    torch.manual_seed(0)
    ranker = build(path, template, max_length=256, lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    with torch.no_grad():
        for name, p in ranker.backbone.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.2)
    return ranker.eval()


def ids_batch(ranker: YesNoRanker) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    lst = one_list(QUERIES[0], DOCS)
    batch = ranker.pad_pairs(ranker.list_pairs([lst]))
    return batch, torch.tensor(ranker.score_lists([lst])[0])


@pytest.mark.parametrize("template,model", [("qwen3-reranker", "tiny_qwen3"), ("mxbai-rerank-v2", "tiny_qwen2"),
                                            ("bge-reranker-v2-gemma", "tiny_gemma")])  # fmt: skip
def test_causal_lm_export_loads_in_transformers(template: str, model: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    ranker = trained(request.getfixturevalue(model), template)
    out = export_causal_lm(ranker, tmp_path / "causal")
    assert (out / "config.json").exists() and (out / "tokenizer.json").exists() and (out / "model.safetensors").exists()
    assert not (out / "adapter_config.json").exists()
    lm = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    assert type(lm).__name__.endswith("ForCausalLM")
    batch, ours = ids_batch(ranker)
    with torch.no_grad():
        logits = lm(**batch, logits_to_keep=1).logits[:, -1]
    ref = logits[:, ranker.true_id] if ranker.false_id is None else logits[:, ranker.true_id] - logits[:, ranker.false_id]
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_causal_lm_export_loads_in_sentence_transformers(tiny_qwen3: Path, tmp_path: Path) -> None:  # noqa: F811
    """``CrossEncoder(DIR).predict(pairs)`` on raw texts renders our chat template: same ids, same scores.

    Qwen3-Reranker only: its authors tokenise the whole user turn as one string, as sentence-transformers
    does with the rendered prompt. mxbai / bge-gemma tokenise query, separator, document and prompt
    apart, which one tokenisation of the rendered text cannot reproduce (e.g. a document ending in "."
    followed by "\n" becomes Qwen's ".\n" token); use the transformers or vLLM export for those."""
    from sentence_transformers import CrossEncoder

    ranker = trained(tiny_qwen3, "qwen3-reranker")
    out = export_causal_lm(ranker, tmp_path / "st")
    ce = CrossEncoder(str(out), device="cpu")
    raw = ce.predict([(QUERIES[0], d) for d in DOCS], activation_fn=torch.nn.Identity(), convert_to_tensor=True)
    _, ours = ids_batch(ranker)
    torch.testing.assert_close(raw.float(), ours, atol=1e-5, rtol=0)
    sig = ce.predict([(QUERIES[0], d) for d in DOCS], convert_to_tensor=True).float()
    torch.testing.assert_close(sig, torch.sigmoid(ours), atol=1e-5, rtol=0)  # default: Sigmoid, as Qwen3's card
    # the rendered text is exactly the ids llmrank builds
    rendered = ce.tokenizer.apply_chat_template([{"role": "query", "content": QUERIES[0]},
                                                 {"role": "document", "content": DOCS[0]}], tokenize=False)  # fmt: skip
    assert ce.tokenizer(rendered, add_special_tokens=False)["input_ids"] == ranker.list_pairs([one_list(QUERIES[0], DOCS[:1])])[0][0]
    # truncation: sentence-transformers cuts the rendered prompt and restores the fixed suffix, which
    # equals Qwen3's rule (user turn cut to max_length - len(prefix) - len(suffix))
    short = build(tiny_qwen3, "qwen3-reranker", max_length=80)
    assert max(len(ids) for ids, _ in short.list_pairs([one_list(QUERIES[0], DOCS)])) == 80  # DOCS[1] is cut
    ce_short = CrossEncoder(str(export_causal_lm(short, tmp_path / "st-80")), device="cpu")
    assert ce_short.max_seq_length == 80
    raw = torch.tensor(ce_short.predict([(QUERIES[0], d) for d in DOCS], activation_fn=torch.nn.Identity()))
    torch.testing.assert_close(raw.float(), torch.tensor(short.score_lists([one_list(QUERIES[0], DOCS)])[0]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("template,model", [("qwen3-reranker", "tiny_qwen3"), ("mxbai-rerank-v2", "tiny_qwen2"),
                                            ("bge-reranker-v2-gemma", "tiny_gemma")])  # fmt: skip
def test_vllm_seq_cls_export_equals_llmrank(template: str, model: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from safetensors import safe_open
    from transformers import AutoModelForSequenceClassification

    ranker = trained(request.getfixturevalue(model), template)
    out = export_vllm_seq_cls(ranker, tmp_path / "vllm")
    seq = AutoModelForSequenceClassification.from_pretrained(str(out), dtype=torch.float32).eval()
    assert type(seq).__name__.endswith("ForSequenceClassification") and seq.config.num_labels == 1
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        assert "score.weight" in f.keys() and "score.bias" not in f.keys()
        assert tuple(f.get_slice("score.weight").get_shape()) == (1, seq.config.hidden_size)
    batch, ours = ids_batch(ranker)
    with torch.no_grad():
        logits = seq(**batch).logits[:, 0]
    torch.testing.assert_close(ours, logits, atol=1e-5, rtol=0)


def test_vllm_export_refuses_softcapped_logits_and_writes_nothing(tiny_gemma2: Path, tmp_path: Path) -> None:  # noqa: F811
    ranker = build(tiny_gemma2, "bge-reranker-v2-gemma")
    with pytest.raises(ValueError, match="soft-caps"):
        export_vllm_seq_cls(ranker, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".tmp-*"))


def test_export_refuses_other_families(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a yes-no ranker"):
        export_causal_lm(object(), tmp_path / "x")  # type: ignore[arg-type]


def test_llmrank_export_cli_round_trip(tiny_qwen3: Path, tmp_path: Path) -> None:  # noqa: F811
    """checkpoint -> `llmrank export` (transformers and vllm) -> the target library and load_ranker
    give the checkpoint's scores; the exported causal LM is recognised from llmrank_export.json."""
    from transformers import AutoModelForSequenceClassification

    from llmrank.cli import main
    from llmrank.loading import load_ranker

    ranker = trained(tiny_qwen3, "mxbai-rerank-v2")
    ranker.save_pretrained(tmp_path / "ckpt")
    lst = one_list(QUERIES[0], DOCS)
    ours = torch.tensor(load_ranker(tmp_path / "ckpt").score_lists([lst])[0])

    assert main(["export", "--model", str(tmp_path / "ckpt"), "--format", "transformers", "--out", str(tmp_path / "hf")]) == 0
    again = load_ranker(tmp_path / "hf")
    template = again.settings.options["template"]  # saved resolved: the template's full fields
    assert again.family == "yes-no" and (template if isinstance(template, str) else template["name"]) == "mxbai-rerank-v2"
    assert again.settings.max_length == 256
    torch.testing.assert_close(torch.tensor(again.score_lists([lst])[0]), ours, atol=1e-5, rtol=0)

    assert main(["export", "--model", str(tmp_path / "ckpt"), "--format", "vllm", "--out", str(tmp_path / "vllm")]) == 0
    seq = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "vllm"), dtype=torch.float32).eval()
    batch, _ = ids_batch(load_ranker(tmp_path / "ckpt"))
    with torch.no_grad():
        logits = seq(**batch).logits[:, 0]
    torch.testing.assert_close(logits, ours, atol=1e-5, rtol=0)
