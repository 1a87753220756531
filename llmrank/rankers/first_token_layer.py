"""Exact compute saving for [CLS]-pooled encoders: the last layer only for the first token.

A cross-encoder that scores from the final [CLS] vector never reads the final states of the
other positions, yet a standard forward computes them all. In the last layer, [CLS]'s output is

    a   = LayerNorm(x_0 + W_o · Attention(q_0, K, V))       (q_0 = W_q x_0; K, V from every x_j)
    out = LayerNorm(a + W_2 · act(W_1 a))

which needs every key and value but only the first query and one position of the feed-forward.
Computing just that gives the same [CLS] vector (same operations on the same numbers) for about
(L-1)/L of the last layer's query, attention-output and feed-forward cost — roughly 1/num_layers
of the whole encoder (MiniLM-L6: ~15%).

Applies to BERT-style layers (BERT, MiniLM, ELECTRA: ``layer.attention.self.{query,key,value}``,
``layer.attention.output``, ``layer.feed_forward_chunk``) under the ``sdpa`` or ``eager``
attention implementations, whose masks are additive or boolean ``[B, 1, Lq, L]`` tensors.
The layer's parameters and ``state_dict`` are untouched (only the instance's ``forward`` is
replaced), so checkpoints, LoRA adapters and merging are unaffected.
"""

from __future__ import annotations

import types
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

SUPPORTED_ATTENTION = ("sdpa", "eager")


def _first_token_forward(self: nn.Module, hidden_states: torch.Tensor, attention_mask: Any = None,
                         *args: Any, **kwargs: Any) -> torch.Tensor:  # fmt: skip
    """Drop-in ``BertLayer.forward`` returning ``[B, 1, H]``: the first position's output only."""
    sa = self.attention.self
    b, n, _ = hidden_states.shape
    d = sa.attention_head_size
    first = hidden_states[:, :1]
    q = sa.query(first).view(b, 1, -1, d).transpose(1, 2)  # [B, h, 1, d]
    k = sa.key(hidden_states).view(b, n, -1, d).transpose(1, 2)  # [B, h, n, d]
    v = sa.value(hidden_states).view(b, n, -1, d).transpose(1, 2)
    mask = attention_mask
    if isinstance(mask, torch.Tensor) and mask.dim() == 4 and mask.shape[-2] != 1:
        mask = mask[:, :, :1, :]  # the first query's row
    p = sa.dropout.p if self.training else 0.0
    ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, scale=sa.scaling)
    ctx = ctx.transpose(1, 2).reshape(b, 1, -1)
    attention_output = self.attention.output(ctx, first)
    return self.feed_forward_chunk(attention_output)


def _bert_style(layer: nn.Module) -> bool:
    att = getattr(layer, "attention", None)
    sa = getattr(att, "self", None)
    return (
        sa is not None
        and all(hasattr(sa, name) for name in ("query", "key", "value", "attention_head_size", "scaling"))
        and hasattr(att, "output")
        and hasattr(layer, "feed_forward_chunk")
        and not getattr(layer, "is_decoder", False)
        and not getattr(layer, "add_cross_attention", False)
    )


def first_token_last_layer(encoder_model: nn.Module) -> bool:
    """Make the last layer of a BERT-style ``encoder_model`` (the transformers model itself, not a
    PEFT wrapper: apply before adding adapters) compute the first token only.

    Returns True when applied, False when the model is not one this is exact for (then nothing
    changes). After it, ``last_hidden_state`` has length 1: only [CLS] pooling may read it."""
    layers = getattr(getattr(encoder_model, "encoder", None), "layer", None)
    config = getattr(encoder_model, "config", None)
    if layers is None or len(layers) == 0 or config is None:
        return False
    if getattr(config, "_attn_implementation", None) not in SUPPORTED_ATTENTION:
        return False
    last = layers[-1]
    if not _bert_style(last):
        return False
    last.forward = types.MethodType(_first_token_forward, last)
    return True
