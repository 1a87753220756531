"""FIRST identifier handling on the real Mistral tokenizers shipped in ``mistral_common``.

* Mistral-7B v0.1 / Zephyr SentencePiece (``tokenizer.model.v1``) and Mistral-7B-Instruct-v0.3
  (``mistral_instruct_tokenizer_240323.model.v3``): ``LlamaTokenizer.from_pretrained(folder with
  tokenizer.model)`` converts them offline (``LlamaTokenizer(vocab_file=...)`` silently builds an
  empty vocabulary in transformers 5).
* tekken (tiktoken-style BPE): ``TikTokenConverter`` on the base64 ranks -> ``PreTrainedTokenizerFast``
  (``MistralCommonBackend`` also loads it, but renders chat templates as plain text, so ``[/INST]``
  is not a special token and merges with the ``"["`` into ``"]["``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from torch import nn

from llmrank.data.record import Doc, RankingList
from llmrank.rankers.base import RankerSettings
from llmrank.rankers.first import FirstRanker, IdentifierTokens, passage_text, render_prompt, target_text

mistral_common = pytest.importorskip("mistral_common")
DATA = Path(mistral_common.__file__).parent / "data"

ZEPHYR = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + "
    "eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
)
# Mistral instruct style: no system role (FIRST prepends the system message to the user turn)
MISTRAL_INST = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}"
    "{% endif %}{% endfor %}"
)


def _spm(tmp_path: Path, name: str, template: str, inst_special: bool = False):
    from transformers import LlamaTokenizer

    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(DATA / name, folder / "tokenizer.model")
    tok = LlamaTokenizer.from_pretrained(str(folder))
    if inst_special:
        tok.add_special_tokens({"additional_special_tokens": ["[INST]", "[/INST]"]})
    tok.chat_template = template
    tok.name_or_path = name
    return tok


def _tekken(tmp_path: Path, template: str):
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    spec = json.loads((DATA / "tekken_240911.json").read_text())
    n = spec["config"]["default_vocab_size"] - spec["config"]["default_num_special_tokens"]
    ranks = tmp_path / "tekken.tiktoken"
    ranks.write_text("".join(f"{e['token_bytes']} {e['rank']}\n" for e in spec["vocab"][:n]))
    backend = TikTokenConverter(vocab_file=str(ranks), pattern=spec["config"]["pattern"]).converted()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    tok.add_special_tokens({"additional_special_tokens": ["[INST]", "[/INST]", "<|user|>", "<|assistant|>"]})
    tok.chat_template = template
    tok.name_or_path = "tekken_240911"
    return tok


def _window(n: int) -> RankingList:
    return RankingList("q", "what is [A] a query", [Doc(str(i), f"passage {i} cites [C] and [12]") for i in range(n)],
                       [0.0] * n)


def _ranker(tok, **options) -> FirstRanker:
    return FirstRanker(nn.Identity(), tok, RankerSettings(family="first", model_name_or_path="x", max_length=4096,
                                                         options=options))


def test_zephyr_v1_ids_and_prompt(tmp_path: Path) -> None:
    tok = _spm(tmp_path, "tokenizer.model.v1", ZEPHYR)
    ids = IdentifierTokens(tok)
    assert ids.letter_ids[:2] == [28741, 28760]  # bare 'A', 'B' -- not '▁A' (330) / '▁B' (365)
    assert tok.convert_tokens_to_ids("▁A") == 330
    ranker = _ranker(tok)
    for n in (2, 7, 20):
        order = list(range(n))[::-1]
        enc = ranker.encode(_window(n), order)  # checks canonical == concatenated ids
        assert enc.prompt_ids[-1] == tok.convert_tokens_to_ids("[")
        assert enc.target_ids[0] == ids.letter_ids[n - 1]
        text = tok.decode(enc.prompt_ids + enc.target_ids)
        assert text.endswith(f"<|assistant|>\n[{target_text(order)[1:]}</s>")
    prompt = render_prompt(tok, "q", [passage_text(Doc("d", "p [B] x", title="T"))])
    assert prompt.startswith("<|system|>\nYou are RankLLM, an intelligent assistant")
    assert "[A] T. p (B) x\nSearch Query: q.\nRank the 1 passages" in prompt


def test_v3_with_special_inst_tokens(tmp_path: Path) -> None:
    tok = _spm(tmp_path, "mistral_instruct_tokenizer_240323.model.v3", MISTRAL_INST, inst_special=True)
    ids = IdentifierTokens(tok)
    assert ids.letter_ids[:2] == [29509, 29528]
    ranker = _ranker(tok)
    enc = ranker.encode(_window(20), list(range(20)))
    assert tok.convert_ids_to_tokens(enc.prompt_ids[-2:]) == ["[/INST]", "["]
    prompt = render_prompt(tok, "q", ["p"])
    assert "[INST] You are RankLLM" in prompt and "<|system|>" not in prompt  # no system role -> prepended


def test_plain_text_inst_merges_bracket_and_is_caught(tmp_path: Path) -> None:
    # without [/INST] as a special token the template ends in a plain ']' and '][' is one piece
    tok = _spm(tmp_path, "tokenizer.model.v1", MISTRAL_INST)
    with pytest.raises(ValueError, match=r"tokenizer\.model\.v1.*last token is not '\['"):
        _ranker(tok)
    ranker = _ranker(tok, id_tokenization="concat")  # concatenated ids: "[" kept as its own token
    enc = ranker.encode(_window(3), [1, 0, 2])
    assert enc.prompt_ids[-1] == ranker.ids.open_id


def test_tekken_merged_identifier_is_caught_or_concatenated(tmp_path: Path) -> None:
    tok = _tekken(tmp_path, ZEPHYR)
    pieces = tok.convert_ids_to_tokens(tok.encode("\n[A] > [B]", add_special_tokens=False))
    assert pieces[:2] == ["Ċ", "[A"]  # the tiktoken regex + BPE merge "[A" into one token
    with pytest.raises(ValueError, match=r"tekken_240911.*identifier \[A\]"):
        _ranker(tok)  # the build-time check tries every identifier after "["
    concat = _ranker(tok, id_tokenization="concat")
    enc = concat.encode(_window(3), [0, 1, 2])
    a = concat.ids.letter_ids[0]
    assert enc.prompt_ids[-1] == concat.ids.open_id and enc.target_ids[0] == a
    assert tok.convert_ids_to_tokens([a, concat.ids.letter_ids[1]]) == ["A", "B"]
