"""The candidate document type, shared by the file readers (:mod:`llmrank.runs`) and the
training records (:mod:`llmrank.data.record`).

It lives outside the ``llmrank.data`` package so that :mod:`llmrank.runs` (plain-file parsing)
needs nothing from ``llmrank.data`` and ``llmrank.data.readers`` can import :mod:`llmrank.runs`
without an import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Cascade sample stages a document can be tagged with (RankTower's full-stage sampling, Yan & Li,
#: arXiv 2407.12385, Sec. 4.1): ``impression`` = the top of the downstream ranker's ordering,
#: ``candidate`` = the rest of the first-stage top-k, ``random`` = documents drawn from the corpus.
#: Collation turns a stage into its index here (``targets["stages"]``, -1 = padding / untagged).
STAGES = ("impression", "candidate", "random")


@dataclass
class Doc:
    """A candidate document. ``title`` is kept apart so each family can join it its own way;
    ``stage`` (one of :data:`STAGES`, optional) says which cascade stage sampled it."""

    docid: str
    text: str
    title: str | None = None
    stage: str | None = None

    def __post_init__(self) -> None:
        if self.stage is not None and self.stage not in STAGES:
            raise ValueError(f"document {self.docid!r}: stage {self.stage!r} is not one of {', '.join(STAGES)}")

    def full_text(self, sep: str = " ") -> str:
        """Title and text joined the BEIR way (``title + sep + text``) when a title exists."""
        return f"{self.title}{sep}{self.text}" if self.title else self.text
