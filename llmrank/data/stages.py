"""Cascade-stage ("full-stage") group sampling (Yan, "RankTower", Sec. 4.1-4.2).

A pre-ranker sits between the first stage and the downstream ranker, so RankTower trains it on
samples from every stage of the cascade, each a label scope:

* ``impression``: the top of the downstream ranker's ordering (what it would show);
* ``candidate``: the rest of the first-stage top-k (passed pre-ranking, not shown);
* ``random``: documents drawn from the whole corpus (what pre-ranking must push down).

A document's stage comes from its own tag (``Doc.stage``, or the list's ``meta["stages"]``) or, when a list has no tags, from the downstream ranker's ordering: the
``impression_depth`` best documents by ``teacher_scores`` (or the teacher ``order``) are
impressions, the rest candidates. Random documents are drawn from ``corpus`` at sampling time, so
each epoch sees new ones.

Recipe: ``data: {stages: {impression: 4, candidate: 8, random: 4, impression_depth: 20,
corpus: path/to/corpus.jsonl}}`` -- the three counts give the group composition.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmrank.data.record import STAGES, Doc, RankingList
from llmrank.data.sampling import SeededDraws, check_label_source, relabel, subset_with_meta
from llmrank.runs import iter_corpus

_OPTION_KEYS = ("impression_depth", "corpus")

__all__ = ["STAGES", "StageGroupDataset", "StageSpec", "document_stages", "parse_stages", "stage_dataset", "tag_lists"]


@dataclass(frozen=True)
class StageSpec:
    """Group composition per stage, how impressions are derived, and the random-document pool."""

    counts: dict[str, int]
    impression_depth: int = 0
    corpus: str | None = None

    @property
    def group_size(self) -> int:
        return sum(self.counts.values())


def parse_stages(block: Mapping[str, Any], where: str = "data.stages") -> StageSpec:
    """The recipe's ``data.stages`` block as a :class:`StageSpec`.

    Raises:
        ValueError: an unknown key, a count that is not an integer >= 0, no document at all, or
            random documents without a ``corpus`` (the message names the key).
    """
    if not isinstance(block, Mapping):
        raise ValueError(f"{where} must be a mapping like {{impression: 4, candidate: 8, random: 4}}")
    unknown = sorted(set(block) - set(STAGES) - set(_OPTION_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; valid: {', '.join((*STAGES, *_OPTION_KEYS))}")
    counts = {}
    for stage in STAGES:
        value = block.get(stage, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{where}.{stage}={value!r}; expected an integer >= 0 (documents of that stage per group)")
        counts[stage] = value
    if not sum(counts.values()):
        raise ValueError(f"{where}: every stage count is 0; a group needs at least one document")
    depth = block.get("impression_depth", 0)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ValueError(f"{where}.impression_depth={depth!r}; expected an integer >= 0")
    corpus = block.get("corpus")
    if counts["random"] and not corpus:
        raise ValueError(f"{where}.random={counts['random']} needs {where}.corpus (the documents to draw from)")
    return StageSpec(counts, depth, None if corpus is None else str(corpus))


def document_stages(rl: RankingList, impression_depth: int) -> list[str]:
    """The stage of each document of ``rl``: its tags when it has them, else the downstream
    ranker's top ``impression_depth`` (by ``teacher_scores``, else ``order``) are impressions.

    Raises:
        ValueError: a list without tags and without a downstream ordering, or an unknown tag.
    """
    tags = [d.stage for d in rl.docs]
    if all(t is None for t in tags):
        meta = rl.meta.get("stages")
        tags = list(meta) if isinstance(meta, list) and len(meta) == len(rl) else tags
    if any(t is not None for t in tags):
        bad = sorted({str(t) for t in tags if t not in STAGES})
        if bad:
            raise ValueError(f"list {rl.qid!r}: stage tag(s) {bad}; valid: {', '.join(STAGES)}")
        return [str(t) for t in tags]
    if rl.teacher_scores is not None:
        ranked = sorted(range(len(rl)), key=lambda j: -rl.teacher_scores[j])  # stable: ties keep list order
    elif rl.order is not None:
        ranked = list(rl.order)
    else:
        raise ValueError(
            f"list {rl.qid!r} has no stage tags and no downstream ordering (teacher_scores or order): add a "
            "distill: block with a teacher, score the lists with `llmrank score`, or tag the documents' stages"
        )
    top = set(ranked[:impression_depth])
    return ["impression" if j in top else "candidate" for j in range(len(rl))]


def _with_stage(doc: Doc, stage: str) -> Doc:
    """A copy of ``doc`` tagged with ``stage`` (documents are shared between lists: never mutated)."""
    return doc if doc.stage == stage else dataclasses.replace(doc, stage=stage)


def tag_lists(lists: Sequence[RankingList], block: Mapping[str, Any]) -> list[RankingList]:
    """Copies of ``lists`` whose documents carry their stage (:func:`document_stages` with the
    block's ``impression_depth``), so stage-scoped objective terms can be checked before training.

    Raises:
        ValueError: a bad block, or a list without tags and without a downstream ordering.
    """
    spec = parse_stages(block)
    out = []
    for rl in lists:
        stages = document_stages(rl, spec.impression_depth)
        docs = [_with_stage(d, s) for d, s in zip(rl.docs, stages)]
        out.append(dataclasses.replace(rl, docs=docs, meta=dict(rl.meta)))
    return out


class StageGroupDataset(SeededDraws):
    """Item ``i``: a group from ``lists[i]`` with ``counts[stage]`` documents of each stage.

    Per list: ``min(positives_per_group, #positives)`` positives (label > 0) among its impression
    and candidate documents are drawn first and count towards their own stage; each of those two
    stages is then filled from its other documents without replacement (with replacement when the
    stage has too few; from the other of the two stages when it has none). ``random`` documents are
    drawn from ``corpus`` among those not in the list, with label 0 and, when the list has teacher
    scores, the list's lowest teacher score (the downstream ranker would put them below every
    candidate; an objective term scoped to impressions ignores them anyway). A group therefore has
    ``sum(counts)`` documents unless a stage's positives exceed its count.

    The draw is a pure function of ``(seed, epoch, i)``; ``meta["stages"]`` gives each document's
    stage and ``meta["indices"]`` its position in the source list (-1 for random documents).
    """

    def __init__(
        self,
        lists: Sequence[RankingList],
        spec: StageSpec,
        corpus: Sequence[Doc] = (),
        positives_per_group: int = 1,
        seed: int = 42,
        label_source: str = "labels",
        shuffle_docs: bool = True,
    ) -> None:
        if positives_per_group < 0:
            raise ValueError(f"positives_per_group={positives_per_group}; must be >= 0")
        lists = list(lists)
        if not lists:
            raise ValueError("StageGroupDataset needs at least one list")
        if spec.counts["random"] and len(corpus) == 0:
            raise ValueError(f"random={spec.counts['random']} documents per group but the corpus is empty")
        check_label_source(lists, label_source)
        super().__init__(lists, seed, label_source, shuffle_docs)
        self.stages = [document_stages(rl, spec.impression_depth) for rl in lists]  # checked up front
        self.spec = spec
        self.corpus = list(corpus)
        self.positives_per_group = positives_per_group

    def _draw_listed(self, rng: random.Random, i: int) -> list[tuple[int, str]]:
        rl, stages, counts = self.lists[i], self.stages[i], self.spec.counts
        pools = {s: [j for j, t in enumerate(stages) if t == s] for s in ("impression", "candidate")}
        positives = [j for s in pools for j in pools[s] if rl.labels[j] > 0]
        chosen = rng.sample(positives, min(self.positives_per_group, len(positives)))
        out = [(j, stages[j]) for j in chosen]
        for stage, other in (("impression", "candidate"), ("candidate", "impression")):
            need = counts[stage] - sum(1 for j in chosen if stages[j] == stage)
            if need <= 0:
                continue
            pool = [j for j in pools[stage] if j not in chosen] or [j for j in pools[other] if j not in chosen]
            pool = pool or pools[stage] or pools[other]
            if not pool:
                continue
            picked = rng.sample(pool, min(need, len(pool)))
            picked += rng.choices(pool, k=need - len(picked))
            out += [(j, stage) for j in picked]
        return out

    def _draw_random(self, rng: random.Random, rl: RankingList) -> list[Doc]:
        listed = {d.docid for d in rl.docs}
        out: list[Doc] = []
        for _ in range(self.spec.counts["random"]):
            for _attempt in range(100):  # rejection: the corpus is far larger than a list
                doc = self.corpus[rng.randrange(len(self.corpus))]
                if doc.docid not in listed:
                    break
            out.append(doc)
        return out

    def __getitem__(self, i: int) -> RankingList:
        rl = self.lists[i]
        rng = self._rng(i)
        listed = self._draw_listed(rng, i)
        randoms = self._draw_random(rng, rl)
        group = subset_with_meta(rl, [j for j, _ in listed])
        stages = [s for _, s in listed] + ["random"] * len(randoms)
        group.docs = [_with_stage(d, s) for d, s in zip(group.docs + randoms, stages)]
        group.labels = list(group.labels) + [0.0] * len(randoms)
        if group.teacher_scores is not None:
            floor = min(rl.teacher_scores)  # type: ignore[arg-type]
            group.teacher_scores = list(group.teacher_scores) + [floor] * len(randoms)
        if group.order is not None:  # random documents come last in the teacher order
            group.order = list(group.order) + list(range(len(listed), len(stages)))
        indices = [j for j, _ in listed] + [-1] * len(randoms)
        positions = list(range(len(stages)))
        if self.shuffle_docs:
            rng.shuffle(positions)
            group = _permute(group, positions)
            stages = [stages[p] for p in positions]
            indices = [indices[p] for p in positions]
        relabel(group, self.label_source)
        if randoms:  # corpus documents have no first-stage score
            group.meta.pop("first_stage_scores", None)
        group.meta["stages"] = stages
        group.meta["indices"] = indices
        return group


def stage_dataset(lists: Sequence[RankingList], data: Any) -> StageGroupDataset:
    """The training dataset for a recipe's ``data`` section with a ``stages`` block (reads the corpus).

    Raises:
        ValueError: a bad ``data.stages`` block or lists without stages (see :func:`parse_stages`).
    """
    spec = parse_stages(data.stages)
    corpus = list(iter_corpus(spec.corpus)) if spec.counts["random"] else []
    return StageGroupDataset(
        lists, spec, corpus, positives_per_group=data.positives_per_group, seed=data.seed,
        label_source=data.label_source,
    )  # fmt: skip


def _permute(rl: RankingList, positions: list[int]) -> RankingList:
    """``rl`` with its documents (and per-document targets) in the order ``positions``."""
    out = RankingList(rl.qid, rl.query, list(rl.docs), list(rl.labels), rl.teacher_scores, rl.order, dict(rl.meta))
    out.order = None
    shuffled = out.subset(positions)
    if rl.order is not None:
        rank = {doc: r for r, doc in enumerate(rl.order)}
        shuffled.order = sorted(range(len(positions)), key=lambda k: rank[positions[k]])
    scores = rl.meta.get("first_stage_scores")
    if isinstance(scores, list) and len(scores) == len(rl):
        shuffled.meta["first_stage_scores"] = [scores[p] for p in positions]
    return shuffled
