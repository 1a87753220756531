"""The [CLS]-only last layer gives the same scores and gradients as the full forward."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llmrank.data.record import Doc, RankingList
from llmrank.rankers.base import TARGET_KEYS, LoraSettings, RankerSettings
from llmrank.rankers.cross_encoder import CrossEncoderRanker


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_models import make_tiny_bert

    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def _lists() -> list[RankingList]:
    words = "gold silver river stone paper cloud green table music light".split()
    return [
        RankingList(f"q{q}", f"{words[q]} query", [Doc(f"d{i}", " ".join(words[: 2 + (i * 3 + q) % 9]))
                                                  for i in range(5)], [1, 0, 2, 0, 0][: 5])
        for q in range(3)
    ]  # fmt: skip


def _pair(path: Path, lora: bool, **options: object) -> CrossEncoderRanker:
    torch.manual_seed(0)
    ranker = CrossEncoderRanker.build(
        RankerSettings(family="cross-encoder", model_name_or_path=str(path), max_length=64,
                       options={"pooling": "cls", "train_chunk_tokens": 0, **options})
    )  # fmt: skip
    if lora:
        torch.manual_seed(1)
        ranker.apply_lora(LoraSettings(r=4, alpha=8, dropout=0.0))
    return ranker


@pytest.mark.parametrize("lora", [False, True])
def test_first_token_last_layer_is_exact(tiny: Path, lora: bool) -> None:
    fast, full = _pair(tiny, lora), _pair(tiny, lora, first_token_last_layer=False)
    assert fast.first_token_only and not full.first_token_only
    full.load_state_dict(fast.state_dict())
    assert set(fast.state_dict()) == set(full.state_dict())  # checkpoints are interchangeable
    for r in (fast, full):
        r.eval()  # no dropout: the two forwards must see the same numbers
    batch = fast.collate(_lists())
    inputs = {k: v for k, v in batch.items() if k not in TARGET_KEYS}
    s_fast, s_full = fast(**inputs).scores, full(**inputs).scores
    torch.testing.assert_close(s_fast, s_full, atol=1e-5, rtol=1e-5)
    (s_fast * batch["labels"]).sum().backward()
    (s_full * batch["labels"]).sum().backward()
    for (name, a), (_, b) in zip(fast.named_parameters(), full.named_parameters()):
        if a.grad is not None or b.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4, msg=name)
    torch.testing.assert_close(torch.tensor(fast.score_lists(_lists())), torch.tensor(full.score_lists(_lists())),
                               atol=1e-5, rtol=1e-5)  # fmt: skip


def test_mean_pooling_keeps_the_full_last_layer(tiny: Path) -> None:
    assert not _pair(tiny, False, pooling="mean").first_token_only
