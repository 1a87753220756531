"""Shared-prefix scoring for decoder rerankers: run a query's common prompt once, then only each
document's tokens.

A yes/no reranker reads ``system + instruction + query + document + answer prompt`` for every
candidate, so the 100 candidates of one query repeat the same leading tokens 100 times
(Qwen3-Reranker: the system message, the instruction and the query come before the document).
Causal attention makes the keys and values of those tokens independent of what follows them, so
they can be computed once per query and reused (what vLLM calls prefix caching):

    h(x_{1..P}, d_i) = decoder(d_i | KV(x_{1..P}))   for every candidate i

The shared part is found on the token ids themselves (the longest common prefix of the query's
sequences), never by splitting the prompt text, so the model reads exactly the ids the plain path
reads: BPE merges across the prompt/document boundary are kept as they are.

The documents after the prefix are right-padded (the causal mask keeps padding after a row's last
token invisible to it) with positions ``P, P + 1, ...`` continuing the prefix, and each row's score
is read at its own last token.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

#: a prefix shorter than this saves less than the extra prefix call costs
MIN_SHARED_TOKENS = 16


def shared_prefix_length(seqs: Sequence[Sequence[int]]) -> int:
    """Length of the longest common prefix of ``seqs``, leaving every sequence at least one token
    of its own (its last token is where the score is read)."""
    if not seqs:
        return 0
    first = seqs[0]
    n = min(len(s) for s in seqs) - 1
    for s in seqs[1:]:
        k = 0
        limit = min(n, len(s))
        while k < limit and s[k] == first[k]:
            k += 1
        n = k
        if n <= 0:
            return 0
    return max(n, 0)


def cache_is_exact(config: Any, longest: int) -> bool:
    """True when every layer attends to the whole sequence of ``longest`` tokens (no sliding window
    would drop cached prefix tokens that the plain path attends to)."""
    window = getattr(config, "sliding_window", None)
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None and all(t == "full_attention" for t in layer_types):
        return True
    return not window or longest <= window


def _cache_keyword(decoder: nn.Module) -> str:
    """transformers 5.2x renamed the forward's ``past_key_values`` to ``cache``; accept both."""
    return "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"


def score_with_shared_prefix(
    decoder: nn.Module,
    seqs: Sequence[Sequence[int]],
    prefix_len: int,
    batches: Sequence[Sequence[int]],
    head: Callable[[torch.Tensor], torch.Tensor],
    pad_id: int,
    device: torch.device,
) -> torch.Tensor:
    """``[len(seqs)]`` scores: ``head`` applied to the final hidden state at each sequence's last
    token. The first ``prefix_len`` tokens (identical in all ``seqs``) run once; ``batches`` group
    the positions of ``seqs`` whose remaining tokens run together."""
    prefix = torch.tensor([list(seqs[0][:prefix_len])], dtype=torch.long, device=device)
    positions = torch.arange(prefix_len, device=device).unsqueeze(0)
    keyword = _cache_keyword(decoder)
    prefix_out = decoder(input_ids=prefix, position_ids=positions, use_cache=True)
    cache = prefix_out.get("cache")
    cache = prefix_out.get("past_key_values") if cache is None else cache
    out = torch.empty(len(seqs), dtype=torch.float32)
    for batch in batches:
        tails = [list(seqs[i][prefix_len:]) for i in batch]
        lengths = torch.tensor([len(t) for t in tails], device=device)
        width = int(lengths.max())
        ids = torch.tensor([t + [pad_id] * (width - len(t)) for t in tails], dtype=torch.long, device=device)
        own = torch.arange(width, device=device).unsqueeze(0) < lengths.unsqueeze(1)
        attention_mask = torch.cat([own.new_ones((len(batch), prefix_len)), own], dim=1).long()
        position_ids = (prefix_len + torch.arange(width, device=device)).expand(len(batch), width)
        # the forward appends this batch's keys/values to the cache it is given: give it a copy
        batch_cache = copy.deepcopy(cache)
        batch_cache.batch_repeat_interleave(len(batch))
        hidden = decoder(
            input_ids=ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=True,
            **{keyword: batch_cache},
        ).last_hidden_state
        last = hidden[torch.arange(len(batch), device=device), lengths - 1]
        out[torch.tensor(list(batch))] = head(last).float().cpu()
    return out
