"""Ranker families. Importing this package registers every built-in family."""

import importlib

from llmrank.rankers.base import (
    LoraSettings,
    Ranker,
    RankerOutput,
    RankerSettings,
    family_class,
    load_ranker,
    register_family,
)

# each module registers its family with @register_family; a module not written yet is skipped
for _name in ("cross_encoder", "seq2seq", "first", "two_tower"):
    try:
        importlib.import_module(f"llmrank.rankers.{_name}")
    except ModuleNotFoundError as exc:  # pragma: no cover - only while a family is missing
        if exc.name != f"llmrank.rankers.{_name}":
            raise

__all__ = ["Ranker", "RankerOutput", "RankerSettings", "LoraSettings", "family_class", "load_ranker", "register_family"]
