"""llmrank: fine-tune LLM rerankers with learning-to-rank objectives and evaluate them honestly."""

from typing import Any

__all__ = ["Doc", "RankingList", "load_ranker", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Doc / RankingList load on first use: `import llmrank` (e.g. by the `llmrank` console script)
    # must not import torch, so usage errors are fast and Ctrl-C during start-up is handled
    if name in ("Doc", "RankingList"):
        from llmrank.data import record

        return getattr(record, name)
    raise AttributeError(f"module 'llmrank' has no attribute {name!r}")


def load_ranker(name_or_path, **overrides):
    """Load a saved llmrank ranker from a local folder or a Hub id (see :mod:`llmrank.rankers.base`)."""
    from llmrank.rankers.base import load_ranker as _load

    return _load(name_or_path, **overrides)
