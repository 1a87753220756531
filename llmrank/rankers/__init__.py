"""Ranker families. Importing this package registers every built-in family."""

# each family module registers itself with @register_family when imported
from llmrank.rankers import cross_encoder, first, published, seq2seq, two_tower, yes_no  # noqa: F401
from llmrank.rankers.base import (
    LoraSettings,
    Ranker,
    RankerOutput,
    RankerSettings,
    family_class,
    register_family,
)

__all__ = ["Ranker", "RankerOutput", "RankerSettings", "LoraSettings", "family_class", "register_family"]
