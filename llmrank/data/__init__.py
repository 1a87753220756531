"""Data: the canonical RankingList record, readers, group sampling and the synthetic task."""

from llmrank.data.record import Doc, RankingList

__all__ = ["Doc", "RankingList"]
