"""Shared-prefix scoring (``options.prefix_cache``) gives the plain path's scores, for every
published template, with LoRA, across batches and for lists it cannot help (one candidate)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llmrank.data.record import Doc, RankingList
from llmrank.rankers.base import LoraSettings
from llmrank.rankers.prefix_cache import cache_is_exact, shared_prefix_length
from tests.test_yes_no import DOCS, QUERIES, build, qwen_tokenizer, tiny_gemma, tiny_gemma2, tiny_qwen2, tiny_qwen3  # noqa: F401

MORE_DOCS = [*DOCS, "Short.", "Rankers order documents by relevance to the query, " * 3, "virus"]


def lists() -> list[RankingList]:
    return [
        RankingList("q0", QUERIES[0], [Doc(f"a{i}", t) for i, t in enumerate(MORE_DOCS)], [0.0] * len(MORE_DOCS)),
        RankingList("q1", QUERIES[1], [Doc("b0", DOCS[2])], [0.0]),  # one candidate: the plain path
        RankingList("q2", QUERIES[1], [Doc(f"c{i}", t) for i, t in enumerate(DOCS)], [0.0] * len(DOCS)),
    ]


def both(path: Path, template, max_length: int = 512, lora: LoraSettings | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    cached = build(path, template, max_length=max_length, lora=lora, prefix_cache=True)
    plain = build(path, template, max_length=max_length, lora=lora, prefix_cache=False)
    if lora is not None:  # same (random) adapter weights in both
        plain.load_state_dict(cached.state_dict())
    a = cached.score_lists(lists(), batch_size=2)
    b = plain.score_lists(lists(), batch_size=2)
    return torch.tensor([x for row in a for x in row]), torch.tensor([x for row in b for x in row])


def test_shared_prefix_length() -> None:
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]]) == 2
    # every sequence keeps at least its last token
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3, 4]]) == 2
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2
    assert shared_prefix_length([[7, 1], [8, 1]]) == 0
    assert shared_prefix_length([[5]]) == 0
    assert shared_prefix_length([]) == 0


def test_sliding_window_guard() -> None:
    class Cfg:
        sliding_window = 8
        layer_types = ["full_attention", "sliding_attention"]

    assert not cache_is_exact(Cfg(), 9) and cache_is_exact(Cfg(), 8)
    Cfg.layer_types = ["full_attention"] * 2
    assert cache_is_exact(Cfg(), 100)


@pytest.mark.parametrize(
    ("model", "template", "max_length"),
    [
        ("tiny_qwen3", "qwen3-reranker", 512),
        ("tiny_qwen3", "qwen3-reranker", 60),  # truncated bodies
        ("tiny_qwen2", "mxbai-rerank-v2", 512),
        ("tiny_gemma", "bge-reranker-v2-gemma", 512),
    ],
)
def test_prefix_cache_equals_plain_scoring(model: str, template: str, max_length: int, request) -> None:
    cached, plain = both(request.getfixturevalue(model), template, max_length)
    torch.testing.assert_close(cached, plain, atol=1e-5, rtol=0)


def test_prefix_cache_with_softcapping_and_lora(tiny_gemma2: Path, tiny_qwen3: Path) -> None:  # noqa: F811
    template = {"prefix": "Judge the passage for this query. Query: ", "truncation": "pair", "query_format": "{query}",
                "sep": " Document: ", "doc_format": "{document}", "suffix": [" Relevant:"], "add_bos": True,
                "true_token": "true", "false_token": "false", "scoring": "log_softmax"}  # fmt: skip
    cached, plain = both(tiny_gemma2, template, max_length=128)
    torch.testing.assert_close(cached, plain, atol=1e-5, rtol=0)
    lora = LoraSettings(r=4, alpha=8)
    cached, plain = both(tiny_qwen3, "qwen3-reranker", lora=lora)
    torch.testing.assert_close(cached, plain, atol=1e-5, rtol=0)


def test_prefix_cache_runs_the_shared_prompt_once(tiny_qwen3: Path) -> None:  # noqa: F811
    """The decoder reads the shared prefix once per query, not once per candidate (``max_padding: 0``
    makes every batch padding-free, so the token counts are exact)."""
    seen = {True: 0, False: 0}
    for flag in (True, False):
        ranker = build(tiny_qwen3, "qwen3-reranker", prefix_cache=flag, max_padding=0.0)
        embed = ranker._causal_lm().get_input_embeddings()
        handle = embed.register_forward_hook(lambda m, i, o, f=flag: seen.__setitem__(f, seen[f] + i[0].numel()))
        try:
            ranker.score_lists([lists()[0]], batch_size=len(MORE_DOCS))
        finally:
            handle.remove()
    lengths = [len(p[0]) for p in ranker.list_pairs([lists()[0]])]
    shared = shared_prefix_length([p[0] for p in ranker.list_pairs([lists()[0]])])
    assert shared >= 40  # Qwen3-Reranker's system message and instruction come before the document
    assert seen[False] == sum(lengths)
    assert seen[True] == shared + sum(n - shared for n in lengths)


def test_prefix_cache_option_must_be_boolean(tiny_qwen3: Path) -> None:  # noqa: F811
    with pytest.raises(ValueError, match="options.prefix_cache must be true or false"):
        build(tiny_qwen3, "qwen3-reranker", prefix_cache="yes")
