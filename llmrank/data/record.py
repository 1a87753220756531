"""The one record every reader produces and every ranker consumes.

A :class:`RankingList` is a query with candidate documents and per-document targets:
graded ``labels`` (from qrels or binary positives), optional ``teacher_scores`` (BAR
distillation, FlagEmbedding ``pos_scores``/``neg_scores``) and an optional teacher
``order`` (a permutation of document indices, best first, as in FIRST's training data).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: Cascade sample stages a document can be tagged with (RankTower's full-stage sampling, Yan & Li,
#: arXiv 2407.12385, Sec. 4.1): ``impression`` = the top of the downstream ranker's ordering,
#: ``candidate`` = the rest of the first-stage top-k, ``random`` = documents drawn from the corpus.
#: Collation turns a stage into its index here (``targets["stages"]``, −1 = padding / untagged).
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


@dataclass
class RankingList:
    """One query and its candidates: ``{qid, query, docs, labels, teacher_scores?, order?}``."""

    qid: str
    query: str
    docs: list[Doc]
    labels: list[float]
    teacher_scores: list[float] | None = None
    order: list[int] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.docs)
        if len(self.labels) != n:
            raise ValueError(
                f"list {self.qid!r}: {n} documents but {len(self.labels)} labels; give one label per document"
            )
        if self.teacher_scores is not None and len(self.teacher_scores) != n:
            raise ValueError(
                f"list {self.qid!r}: {n} documents but {len(self.teacher_scores)} teacher_scores"
            )
        if self.order is not None and sorted(self.order) != list(range(n)):
            raise ValueError(
                f"list {self.qid!r}: order {self.order} is not a permutation of 0..{n - 1}"
            )
        tagged = sum(d.stage is not None for d in self.docs)
        if 0 < tagged < n:
            raise ValueError(
                f"list {self.qid!r}: {tagged} of {n} documents have a stage; tag all of them or none"
            )

    def __len__(self) -> int:
        return len(self.docs)

    def subset(self, indices: list[int]) -> RankingList:
        """The list restricted to ``indices`` (in that order); a teacher order is re-derived."""
        order = None
        if self.order is not None:
            rank = {doc: r for r, doc in enumerate(self.order)}
            kept = sorted(range(len(indices)), key=lambda k: rank[indices[k]])
            order = kept
        return RankingList(
            qid=self.qid,
            query=self.query,
            docs=[self.docs[i] for i in indices],
            labels=[self.labels[i] for i in indices],
            teacher_scores=None
            if self.teacher_scores is None
            else [self.teacher_scores[i] for i in indices],
            order=order,
            meta=dict(self.meta),
        )

    def teacher_ranks(self) -> list[int] | None:
        """1-based teacher rank of each document (position order), from ``order``."""
        if self.order is None:
            return None
        ranks = [0] * len(self.order)
        for r, doc in enumerate(self.order, start=1):
            ranks[doc] = r
        return ranks

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "qid": self.qid,
            "query": self.query,
            "docs": [
                {
                    "docid": d.docid,
                    "text": d.text,
                    **({"title": d.title} if d.title else {}),
                    **({"stage": d.stage} if d.stage is not None else {}),
                }
                for d in self.docs
            ],
            "labels": list(self.labels),
        }
        if self.teacher_scores is not None:
            out["teacher_scores"] = list(self.teacher_scores)
        if self.order is not None:
            out["order"] = list(self.order)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> RankingList:
        docs = [Doc(str(d["docid"]), d["text"], d.get("title"), d.get("stage")) for d in obj["docs"]]
        return cls(
            qid=str(obj["qid"]),
            query=obj["query"],
            docs=docs,
            labels=[float(x) for x in obj["labels"]],
            teacher_scores=None
            if obj.get("teacher_scores") is None
            else [float(x) for x in obj["teacher_scores"]],
            order=None if obj.get("order") is None else [int(x) for x in obj["order"]],
        )
