"""llmrank: fine-tune LLM rerankers with learning-to-rank objectives and evaluate them honestly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmrank.rankers.base import Ranker

__all__ = ["Doc", "RankingList", "load_ranker", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Doc / RankingList load on first use: `import llmrank` (e.g. by the `llmrank` console script)
    # must not import torch, so usage errors are fast and Ctrl-C during start-up is handled
    if name in ("Doc", "RankingList"):
        from llmrank.data import record

        return getattr(record, name)
    raise AttributeError(f"module 'llmrank' has no attribute {name!r}")


def load_ranker(name_or_path: Any, **kwargs: Any) -> Ranker:
    """An llmrank checkpoint or a published reranker (folder or Hub id) as a ranker; see
    :func:`llmrank.loading.load_ranker` (``family``, ``template``, ``options``, ``revision``,
    ``trust_remote_code`` -- off unless the caller turns it on)."""
    from llmrank.loading import load_ranker as _load

    return _load(name_or_path, **kwargs)
