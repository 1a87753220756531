"""Length-aware chunking of a pointwise training forward (``train_chunk_tokens``): the chunked
forward gives the same scores and the same gradients as one call padded to the batch's longest pair."""

from __future__ import annotations

import pytest
import torch

from llmrank.data.record import Doc, RankingList
from llmrank.rankers import Ranker, RankerSettings, family_class
from llmrank.rankers.base import TARGET_KEYS
from llmrank.rankers.tokenize import length_chunks


def ragged_lists() -> list[RankingList]:
    """Two lists of unequal size whose documents span short to truncated-at-max_length."""
    words = "neural ranking of passages with a small cross encoder model trained on lists".split()
    docs = [Doc(f"d{i}", " ".join(words[: 1 + (i * 5) % len(words)] * (1 + i % 4))) for i in range(11)]
    return [
        RankingList(qid="q1", query="how are passages ranked", docs=docs[:7], labels=[1, 0, 0, 2, 0, 0, 0]),
        RankingList(qid="q2", query="cross encoder", docs=docs[7:], labels=[0, 1, 0, 0]),
    ]


def build(path: str, chunk_tokens: int, family: str = "cross-encoder", **options: object) -> Ranker:
    torch.manual_seed(0)
    settings = RankerSettings(
        family=family,
        model_name_or_path=path,
        max_length=48,
        options={"train_chunk_tokens": chunk_tokens, **options},
    )
    return family_class(family).build(settings).eval()  # eval: no dropout, so both runs are deterministic


def scores_and_grads(ranker: Ranker, lists: list[RankingList]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    batch = ranker.collate(lists)
    out = ranker(**{k: v for k, v in batch.items() if k not in TARGET_KEYS})
    mask = batch["list_mask"]
    logp = torch.log_softmax(out.scores.masked_fill(~mask, -1e9), dim=-1)
    (-(batch["labels"] * logp).masked_fill(~mask, 0).sum(-1).mean()).backward()
    grads = {n: p.grad.detach().clone() for n, p in ranker.named_parameters() if p.grad is not None}
    return out.scores[mask].detach(), grads


def test_length_chunks_sorts_and_respects_the_budget() -> None:
    lengths = [10, 40, 25, 40, 5, 30]
    chunks = length_chunks(lengths, 80)
    assert sorted(i for c in chunks for i in c) == list(range(len(lengths)))
    flat = [lengths[i] for c in chunks for i in c]
    assert flat == sorted(lengths, reverse=True)
    assert all(len(c) * max(lengths[i] for i in c) <= 80 for c in chunks)
    assert chunks[0] == [1, 3]  # ties keep the input order
    assert length_chunks(lengths, 8) == [[i] for i in (1, 3, 5, 2, 0, 4)]  # at least one pair per call
    assert length_chunks(lengths, 0) == [list(range(6))]
    assert length_chunks(lengths, None) == [list(range(6))]


@pytest.mark.parametrize("budget", [1, 60, 150])
def test_chunked_forward_matches_one_call(tiny_bert: str, budget: int) -> None:
    lists = ragged_lists()
    ref_scores, ref_grads = scores_and_grads(build(tiny_bert, 0), lists)
    chunked = build(tiny_bert, budget)
    assert chunked.train_chunk_tokens == budget
    batch = chunked.collate(lists)
    lengths = batch["attention_mask"].sum(1).tolist()
    assert len(set(lengths)) > 3 and batch["input_ids"].numel() > budget  # really ragged, really chunked
    scores, grads = scores_and_grads(chunked, lists)
    torch.testing.assert_close(scores, ref_scores, atol=1e-5, rtol=1e-4)
    assert grads.keys() == ref_grads.keys() and grads
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_chunked_forward_last_token_pooling(tiny_llama: str) -> None:
    """Decoder cross-encoders pool the last real token: chunks cut to their own length keep it."""
    lists = ragged_lists()
    ref_scores, ref_grads = scores_and_grads(build(tiny_llama, 0), lists)
    scores, grads = scores_and_grads(build(tiny_llama, 64), lists)
    torch.testing.assert_close(scores, ref_scores, atol=1e-5, rtol=1e-4)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_cross_encoder_default_budget_and_bad_values(tiny_bert: str) -> None:
    torch.manual_seed(0)
    ranker = family_class("cross-encoder").build(RankerSettings(family="cross-encoder", model_name_or_path=tiny_bert))
    assert ranker.train_chunk_tokens is None
    assert ranker.chunk_budget(torch.device("cpu")) == type(ranker).default_train_chunk_tokens > 0
    assert ranker.chunk_budget(torch.device("cuda")) is None  # accelerators: one call unless asked
    assert build(tiny_bert, 0).chunk_budget(torch.device("cpu")) is None
    assert build(tiny_bert, 4096).chunk_budget(torch.device("cuda")) == 4096
    for bad in (-1, 1.5, "many", True):
        with pytest.raises(ValueError, match="train_chunk_tokens"):
            build(tiny_bert, bad)  # type: ignore[arg-type]


def test_pad_pairs_right_pads_with_masks_and_types(tiny_bert: str) -> None:
    ranker = build(tiny_bert, 0)
    pad = ranker.pad_token_id
    out = ranker.pad_pairs([([5, 6, 7], [0, 0, 1]), ([8], [0]), ([9, 10], None)])
    assert out["input_ids"].tolist() == [[5, 6, 7], [8, pad, pad], [9, 10, pad]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert out["token_type_ids"].tolist() == [[0, 0, 1], [0, 0, 0], [0, 0, 0]]
    assert all(v.dtype == torch.long for v in out.values())
    empty = ranker.pad_pairs([])
    assert empty["input_ids"].shape == empty["attention_mask"].shape == (0, 1)


# ------------------------------------------------------------------------- inference batches
def test_padding_bounded_batches_cover_every_pair_once_within_the_bound() -> None:
    from llmrank.rankers.tokenize import padding_bounded_batches

    g = torch.Generator().manual_seed(0)
    for _trial in range(50):
        lengths = torch.randint(5, 257, (int(torch.randint(1, 130, (1,), generator=g)),), generator=g).tolist()
        for max_padding in (0.0, 0.05, 0.3):
            batches = padding_bounded_batches(lengths, 32, max_padding)
            flat = [i for b in batches for i in b]
            assert sorted(flat) == list(range(len(lengths)))
            assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)  # longest first, stable
            for b in batches:
                padded = len(b) * max(lengths[i] for i in b)
                assert 1 <= len(b) <= 32
                assert padded - sum(lengths[i] for i in b) <= max_padding * padded + 1e-9
        plain = padding_bounded_batches(lengths, 32, None)
        assert [len(b) for b in plain[:-1]] == [32] * (len(plain) - 1)
    # equal lengths are never split below the batch size
    assert [len(b) for b in padding_bounded_batches([7] * 70, 32, 0.0)] == [32, 32, 6]


def test_max_padding_keeps_scores_and_validates(tiny_bert: str) -> None:
    lists = ragged_lists()
    plain = build(tiny_bert, 0, max_padding=1.0).score_lists(lists, batch_size=4)
    tight = build(tiny_bert, 0, max_padding=0.0)
    assert tight.inference_padding(torch.device("cpu")) == 0.0
    torch.testing.assert_close(torch.tensor(tight.score_lists(lists, batch_size=4)[0]), torch.tensor(plain[0]))
    torch.testing.assert_close(torch.tensor(tight.score_lists(lists, batch_size=4)[1]), torch.tensor(plain[1]))
    default = build(tiny_bert, 0)
    assert default.inference_padding(torch.device("cpu")) == 0.05
    assert default.inference_padding(torch.device("cuda")) is None
    for bad in (-0.1, 1.5, True, "some"):
        with pytest.raises(ValueError, match="max_padding"):
            build(tiny_bert, 0, max_padding=bad)
