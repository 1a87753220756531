"""A synthetic FIRST task a 2-layer Llama learns on a CPU in a few minutes, shared by
``tests/test_first_training.py`` and ``bench/first_latency.py`` (FIRST: Reddy et al., EMNLP 2024).

Each window holds ``n`` passages of ``n - 1`` words; a passage's grade is how many times it says ``gold``
(n-1, ..., 1, 0: every grade once, so each window has exactly one correct order and a model that
learned the task has no ties for its two decoding modes to break differently). The query also says
``gold``: relevance is then a query-term match, which attention picks up within a few hundred steps
(with a query that does not name the word, the same model was still at chance after 1,600 steps).
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import torch

from llmrank.data.record import Doc, RankingList
from llmrank.losses import Objective
from llmrank.rankers.base import TARGET_KEYS
from llmrank.testing.tiny_models import make_tiny_llama

FILLER = ("river", "stone", "cloud", "paper", "green", "table", "music", "light", "horse", "glass", "storm", "bread")
QUERY = "which passage is gold"


def gold_windows(num: int, n: int = 4, seed: int = 0) -> list[RankingList]:
    """``num`` windows of ``n`` passages in random order; passage grades n-1..0 = its ``gold`` count."""
    if not 2 <= n <= len(FILLER):
        raise ValueError(f"n={n}; must be between 2 and {len(FILLER)}")
    rng = random.Random(seed)
    out = []
    for q in range(num):
        grades = rng.sample(range(n), n)
        docs = [Doc(f"q{q}d{i}", " ".join(["gold"] * g + rng.sample(FILLER, n - 1 - g))) for i, g in enumerate(grades)]
        out.append(RankingList(f"q{q}", QUERY, docs, [float(g) for g in grades]))
    return out


def make_first_model(path: Path) -> Path:
    """``make_tiny_llama`` widened to hidden 64 (4 heads, 2 layers): enough capacity for the task."""
    from transformers import LlamaConfig, LlamaForCausalLM

    make_tiny_llama(path)
    config = LlamaConfig.from_pretrained(path)
    config.hidden_size, config.intermediate_size, config.num_attention_heads, config.num_key_value_heads = 64, 128, 4, 4
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    return path


def train_first(ranker, lists: list[RankingList], steps: int, batch_size: int = 8, lr: float = 1e-3,  # noqa: ANN001
                warmup: int = 50) -> dict[str, float]:  # fmt: skip
    """FIRST's objective (LM x 1 + weighted RankNet x 10 on the first-token logits), AdamW with a
    linear warm-up then linear decay to 0; returns the last step's loss terms. Peak lr 1e-3: at
    3e-3 the same model learned erratically (95% identical orderings after 3,000 steps, 20% after
    5,000), at 1e-3 smoothly (100% after 1,600 steps with this schedule, and after 3,000)."""
    if steps <= warmup:
        raise ValueError(f"steps={steps}; must exceed the {warmup} warm-up steps")
    if len(lists) < steps * batch_size:
        raise ValueError(f"{len(lists)} lists for {steps} steps of {batch_size}")
    objective = Objective([{"name": "lm", "weight": 1.0}, {"name": "first_ranknet", "weight": 10.0}])
    opt = torch.optim.AdamW(ranker.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, (steps - s) / (steps - warmup)))
    ranker.train()
    logs: dict = {}
    for step in range(steps):
        batch = ranker.collate(lists[step * batch_size : (step + 1) * batch_size])
        targets = {k: batch.pop(k) for k in TARGET_KEYS if k in batch}
        loss, logs = objective(ranker(**batch), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    ranker.eval()
    return {k: float(v) for k, v in logs.items()}


def ndcg10(scores: list[float], labels: list[float]) -> float:
    """nDCG@10 with exponential gain 2^g - 1 (Burges et al. 2005) of one list's scores."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    dcg = sum((2 ** labels[i] - 1) / math.log2(r + 2) for r, i in enumerate(order[:10]))
    ideal = sorted(labels, reverse=True)
    idcg = sum((2**g - 1) / math.log2(r + 2) for r, g in enumerate(ideal[:10]))
    return dcg / idcg if idcg > 0 else 0.0


def compare_modes(single: list[list[int]], generated: list[list[int]], lists: list[RankingList]) -> dict[str, float]:
    """How the single-token and the generated orderings of the same windows relate: identical
    orderings, mean Kendall's tau, and how often each is the correct (label) order."""
    from scipy.stats import kendalltau

    ideal = [sorted(range(len(lst.labels)), key=lambda i: -lst.labels[i]) for lst in lists]
    # tau between the two orderings, compared as each passage's rank in each
    ranks = [([a.index(i) for i in range(len(a))], [b.index(i) for i in range(len(b))]) for a, b in zip(single, generated)]
    return {
        "windows": len(lists),
        "identical_orderings": sum(a == b for a, b in zip(single, generated)) / len(lists),
        "kendall_tau": sum(float(kendalltau(a, b).statistic) for a, b in ranks) / len(lists),
        "top1_agreement": sum(a[0] == b[0] for a, b in zip(single, generated)) / len(lists),
        "single_token_correct_order": sum(a == i for a, i in zip(single, ideal)) / len(lists),
        "generate_correct_order": sum(b == i for b, i in zip(generated, ideal)) / len(lists),
    }
