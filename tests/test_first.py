"""FIRST ranker: prompt, windows, permutation parsing, collate positions, forward, LoRA reference, ShareGPT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from llmrank.data.record import Doc, RankingList
from llmrank.rankers.base import TARGET_KEYS, LoraSettings, RankerSettings
from llmrank.rankers.first import (
    FirstRanker,
    parse_permutation,
    passage_text,
    sliding_windows,
    user_message,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_models import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def _lists() -> list[RankingList]:
    a = RankingList("q1", "what is x", [Doc(str(i), f"passage {i} about x") for i in range(5)], [0, 2, 1, 0, 3])
    b = RankingList("q2", "y", [Doc(str(i), f"doc {i}", title="T") for i in range(3)], [1, 0, 0], order=[2, 0, 1])
    return [a, b]


def test_sliding_windows_bottom_up() -> None:
    assert sliding_windows(100, 20, 10) == [(80, 100), (70, 90), (60, 80), (50, 70), (40, 60), (30, 50), (20, 40),
                                            (10, 30), (0, 20)]
    assert sliding_windows(15, 20, 10) == [(0, 15)]
    assert sliding_windows(25, 20, 10) == [(5, 25), (0, 15)]


def test_parse_and_repair() -> None:
    assert parse_permutation("C] > [A] > [C] > [Z]", 4) == [2, 0, 1, 3]
    assert parse_permutation("nonsense", 3) == [0, 1, 2]


def test_prompt_wording() -> None:
    u = user_message("q", ["p1", "p2"])
    assert u.startswith("I will provide you with 2 passages, each indicated by a alphabetical identifier []. "
                        "Rank the passages based on their relevance to the search query: q.\n\n[A] p1\n[B] p2\n")
    assert u.endswith("e.g., [B] > [A], Only respond with the ranking results, do not say any word or explain.")
    assert passage_text(Doc("d", "one two [AB] three", title="Ti"), max_words=4) == "Ti. one two (AB)"


def test_collate_positions_and_forward(tiny: Path) -> None:
    ranker = FirstRanker.build(RankerSettings(family="first", model_name_or_path=str(tiny), max_length=1024))
    lists = _lists()
    batch = ranker.collate(lists)
    ids, pos = batch["input_ids"], batch["first_pos"]
    lbr = ranker.tokenizer.convert_tokens_to_ids("[")
    assert (ids[torch.arange(2), pos] == lbr).all()
    top = [4, 2]  # teacher top-1: labels argmax for q1, order[0] for q2
    assert ids[torch.arange(2), pos + 1].tolist() == [ranker.ids.letter_ids[t] for t in top]
    assert batch["teacher_ranks"].tolist() == [[4, 2, 3, 5, 1], [2, 3, 1, 0, 0]]
    inputs = {k: v for k, v in batch.items() if k not in TARGET_KEYS}
    out = ranker(**inputs)
    assert out.scores.shape == (2, 5) and out.mask.tolist()[1] == [True, True, True, False, False]
    assert out.lm_loss is not None and out.lm_loss.ndim == 0
    # scores are the logits at "[" (left-padded, explicit positions) == a plain single-row forward
    row = ids[1][batch["attention_mask"][1].bool()]
    with torch.no_grad():
        plain = ranker.backbone(input_ids=row[None]).logits[0, int(pos[1]) - (ids.shape[1] - len(row))]
    assert torch.allclose(out.scores[1, :3], plain[ranker.ids.letter_ids[:3]], atol=1e-4)
    expect = torch.log_softmax(plain.float(), -1)[ranker.ids.letter_ids[:3]]
    assert torch.allclose(out.logprobs[1, :3], expect, atol=1e-4)
    # inference agrees with the scores: ranking the window by single-token logits
    perm = ranker.rank_windows([lists[1]])[0]
    assert perm == torch.argsort(plain[ranker.ids.letter_ids[:3]], descending=True, stable=True).tolist()
    scores = ranker.score_lists(lists)
    assert sorted(scores[1], reverse=True) == [-1.0, -2.0, -3.0]


def test_lora_reference_and_gradient_checkpointing(tiny: Path) -> None:
    settings = RankerSettings(family="first", model_name_or_path=str(tiny), max_length=1024, lora=LoraSettings(r=4))
    ranker = FirstRanker.build(settings)
    ranker.gradient_checkpointing_enable()
    ranker.train()
    ranker.compute_reference = True
    batch = ranker.collate(_lists())
    out = ranker(**{k: v for k, v in batch.items() if k not in TARGET_KEYS})
    assert out.ref_logprobs is not None and not out.ref_logprobs.requires_grad
    assert torch.allclose(out.logprobs, out.ref_logprobs, atol=1e-5)  # LoRA B = 0 at init
    (out.lm_loss + out.scores.sum()).backward()
    assert any(p.grad is not None for n, p in ranker.named_parameters() if "lora_" in n)


def test_sharegpt_roundtrip(tmp_path: Path) -> None:
    from llmrank.data.readers import load_source
    from llmrank.data.sharegpt import to_sharegpt

    lists = _lists()
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in to_sharegpt(lists)))
    back = load_source({"format": "sharegpt", "path": str(path)})
    assert [b.order for b in back] == [[4, 1, 2, 0, 3], [2, 0, 1]]
    assert back[0].query == "what is x" and back[1].docs[0].text == "T. doc 0"
    # the prompt rebuilt from the parsed record is the original user turn
    assert user_message(back[0].query, [d.text for d in back[0].docs]) == to_sharegpt(lists)[0]["conversations"][1][
        "value"]
    numeric = {"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": (
        "I will provide you with 2 passages.\n\n[1] aa\n[2] bb\nSearch Query: qq.\nRank the 2 passages above")},
        {"from": "gpt", "value": "[2] > [2] > [1]"}]}
    path.write_text(json.dumps(numeric) + "\n")
    (lst,) = load_source({"format": "sharegpt", "path": str(path)})
    assert lst.order == [1, 0] and lst.query == "qq" and lst.labels == [1.0, 2.0]
