"""llmrank: fine-tune LLM rerankers with learning-to-rank objectives and evaluate them honestly."""

from llmrank.data.record import Doc, RankingList

__all__ = ["Doc", "RankingList", "load_ranker", "__version__"]
__version__ = "0.1.0"


def load_ranker(name_or_path, **overrides):
    """Load a saved llmrank ranker from a local folder or a Hub id (see :mod:`llmrank.rankers.base`)."""
    from llmrank.rankers.base import load_ranker as _load

    return _load(name_or_path, **overrides)
