"""Tiny causal LMs with real vocabularies for the yes/no reranker tests (builders only, no tests).

* :func:`make_qwen_tokenizer` -- Qwen2/Qwen3's real byte-level BPE (``llmrank.testing.tiny_models``).
* :func:`make_tiny_qwen3` / :func:`make_tiny_qwen2` -- ``Qwen3ForCausalLM`` (tied embeddings, as
  Qwen3-0.6B) / ``Qwen2ForCausalLM`` (untied head, as mxbai's) with hidden 32 and that tokenizer.
* :func:`make_tiny_gemma` -- ``GemmaForCausalLM`` (or ``Gemma2ForCausalLM`` with final logit
  soft-capping) with Mistral v0.1's real SentencePiece tokenizer standing in for Gemma's (no Gemma
  tokenizer ships offline); pad = ``<unk>`` (id 0) and BOS = 1 differ, as in Gemma (0 and 2), so
  FlagEmbedding's "prepend BOS when it is not the pad token" rule applies.
"""

from __future__ import annotations

from pathlib import Path

import torch

# the Qwen tokenizer is shared with bench/rerank_throughput_yes_no.py, so it lives in the package
from llmrank.testing.tiny_models import QWEN_SPECIAL_START, make_qwen_tokenizer  # noqa: F401 - re-exported for the tests


def _qwen_like(directory: str | Path, tokenizer_dir: str | Path, qwen3: bool) -> Path:
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

    out = Path(directory)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    tokenizer.save_pretrained(out)
    torch.manual_seed(1 if qwen3 else 2)
    common = dict(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        bos_token_id=QWEN_SPECIAL_START, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    if qwen3:
        model = Qwen3ForCausalLM(Qwen3Config(**common, head_dim=8, tie_word_embeddings=True))
    else:
        model = Qwen2ForCausalLM(Qwen2Config(**common, tie_word_embeddings=False))
    model.save_pretrained(out)
    return out


def make_tiny_qwen3(directory: str | Path, tokenizer_dir: str | Path) -> Path:
    return _qwen_like(directory, tokenizer_dir, qwen3=True)


def make_tiny_qwen2(directory: str | Path, tokenizer_dir: str | Path) -> Path:
    return _qwen_like(directory, tokenizer_dir, qwen3=False)


def make_tiny_gemma(directory: str | Path, softcap: float | None = None) -> Path:
    """``GemmaForCausalLM`` (``Gemma2ForCausalLM`` with ``final_logit_softcapping`` when ``softcap``)."""
    from transformers import (
        Gemma2Config,
        Gemma2ForCausalLM,
        GemmaConfig,
        GemmaForCausalLM,
        LlamaTokenizer,
        PreTrainedTokenizerFast,
    )

    from tests.tiny_models import mistral_v1_sentencepiece

    out = Path(directory)
    spm = out / "_spm"
    spm.mkdir(parents=True, exist_ok=True)
    (spm / "tokenizer.model").write_bytes(Path(mistral_v1_sentencepiece()).read_bytes())
    slow = LlamaTokenizer.from_pretrained(str(spm), add_bos_token=True, add_eos_token=False)
    (spm / "tokenizer.model").unlink()
    spm.rmdir()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=slow.backend_tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        pad_token="<unk>", model_max_length=8192,
    )  # fmt: skip
    tokenizer.save_pretrained(out)
    torch.manual_seed(3)
    common = dict(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=1, head_dim=8, max_position_embeddings=4096, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )  # fmt: skip
    if softcap:
        model = Gemma2ForCausalLM(Gemma2Config(**common, final_logit_softcapping=softcap, sliding_window=4096))
    else:
        model = GemmaForCausalLM(GemmaConfig(**common))
    model.save_pretrained(out)
    return out
