"""Group sampling: one group of ``group_size`` documents per list per step, seeded per epoch.

Groups are cheap :class:`RankingList` subsets (no tokenization here: rankers pre-tokenize and
cache texts), so the data loader can rebuild them every epoch.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

from torch.utils.data import Dataset

from llmrank.data.record import RankingList

__all__ = ["EvalDataset", "GroupDataset", "WindowDataset", "collate_lists", "subset_with_meta", "truncate_lists"]

LabelSource = Literal["labels", "binary", "teacher"]


def subset_with_meta(rl: RankingList, indices: list[int]) -> RankingList:
    """:meth:`RankingList.subset` that also subsets per-document ``meta`` lists
    (``first_stage_scores``)."""
    out = rl.subset(indices)
    scores = rl.meta.get("first_stage_scores")
    if isinstance(scores, list) and len(scores) == len(rl):
        out.meta["first_stage_scores"] = [scores[j] for j in indices]
    return out


def collate_lists(batch: list[RankingList]) -> list[RankingList]:
    """``DataLoader`` collate function that keeps the records as they are (rankers collate them)."""
    return list(batch)


def _nonempty(lists: Sequence[RankingList], owner: str, noun: str) -> list[RankingList]:
    """``lists`` as a list; a ValueError when there is none or one has no documents."""
    lists = list(lists)
    if not lists:
        raise ValueError(f"{owner} needs at least one {noun}")
    empty = [rl.qid for rl in lists if len(rl) == 0]
    if empty:
        raise ValueError(f"{len(empty)} {noun}(s) have no documents (first qids: {empty[:5]})")
    return lists


class SeededDraws(Dataset):
    """Base of the sampled-group datasets: item ``i`` is a draw from ``lists[i]`` that is a pure
    function of ``(seed, epoch, i)``; :meth:`set_epoch` selects the epoch."""

    def __init__(self, lists: list[RankingList], seed: int, label_source: str, shuffle_docs: bool) -> None:
        self.lists = lists
        self.seed = seed
        self.label_source = label_source
        self.shuffle_docs = shuffle_docs
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose draw ``__getitem__`` returns (call at the start of each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lists)

    def _rng(self, i: int) -> random.Random:
        # a string seed is hashed with SHA-512 by random.Random: stable across processes and runs
        return random.Random(f"{self.seed}/{self.epoch}/{i}")


class GroupDataset(SeededDraws):
    """Map-style dataset of sampled groups: item ``i`` is a group drawn from ``lists[i]``.

    A group has exactly ``group_size`` documents: ``min(positives_per_group, #relevant)`` positives
    (label > 0) drawn at random, the rest negatives (label <= 0) drawn without replacement. When a
    list has too few negatives, all of them are used and the missing slots are filled by drawing
    negatives again (with replacement), so the number of positives stays as asked; a list without
    negatives fills them from its other documents. A list with no positive still yields a group
    (all negatives): losses must cope with all-zero labels (most treat such a list as empty).

    The draw is a pure function of ``(seed, epoch, i)``; :meth:`set_epoch` changes it. With
    ``shuffle_docs`` the group's order is shuffled by the same generator (position does not leak
    the label); without it positives come first, then negatives in drawn order.

    ``label_source``: ``"labels"`` keeps graded labels, ``"binary"`` maps label > 0 to 1 else 0,
    ``"teacher"`` uses ``teacher_scores`` as the labels (positives are still chosen by ``labels``).
    ``teacher_scores`` and a teacher ``order`` are kept in the group whenever the list has them.
    ``meta["indices"]`` records which positions of the source list were drawn.

    Raises:
        ValueError: ``group_size`` larger than every list (names the largest size), bad
            arguments, or ``label_source="teacher"`` with a list lacking teacher scores.
    """

    def __init__(
        self,
        lists: Sequence[RankingList],
        group_size: int,
        positives_per_group: int = 1,
        seed: int = 42,
        label_source: LabelSource = "labels",
        shuffle_docs: bool = True,
    ) -> None:
        if group_size < 1:
            raise ValueError(f"group_size={group_size}; must be >= 1")
        if not 0 <= positives_per_group <= group_size:
            raise ValueError(
                f"positives_per_group={positives_per_group}; must be between 0 and group_size={group_size}"
            )
        lists = _nonempty(lists, "GroupDataset", "list")
        largest = max(len(rl) for rl in lists)
        if group_size > largest:
            raise ValueError(
                f"group_size={group_size} is larger than every list (the largest has {largest} documents)"
            )
        check_label_source(lists, label_source)
        super().__init__(lists, seed, label_source, shuffle_docs)
        self.group_size = group_size
        self.positives_per_group = positives_per_group

    def sample_indices(self, i: int) -> list[int]:
        """Positions of ``lists[i]`` drawn for the current epoch (in group order)."""
        rl = self.lists[i]
        rng = self._rng(i)
        pos = [j for j, y in enumerate(rl.labels) if y > 0]
        neg = [j for j, y in enumerate(rl.labels) if y <= 0]
        chosen_pos = rng.sample(pos, min(self.positives_per_group, len(pos)))
        need = self.group_size - len(chosen_pos)
        if len(neg) >= need:
            chosen_neg = rng.sample(neg, need)
        elif neg:  # too few negatives: all of them, then negatives again (with replacement)
            chosen_neg = rng.sample(neg, len(neg)) + rng.choices(neg, k=need - len(neg))
        else:  # no negative at all: the other positives, then any document again
            spare = [j for j in pos if j not in chosen_pos]
            chosen_neg = rng.sample(spare, min(need, len(spare)))
            chosen_neg += rng.choices(range(len(rl)), k=need - len(chosen_neg))
        indices = chosen_pos + chosen_neg
        if self.shuffle_docs:
            rng.shuffle(indices)
        return indices

    def __getitem__(self, i: int) -> RankingList:
        rl = self.lists[i]
        indices = self.sample_indices(i)
        group = relabel(subset_with_meta(rl, indices), self.label_source)
        group.meta["indices"] = indices
        return group


def check_label_source(lists: Sequence[RankingList], label_source: str) -> None:
    """``label_source`` is a known mapping, and every list has teacher scores when it is ``teacher``."""
    if label_source not in ("labels", "binary", "teacher"):
        raise ValueError(f"label_source={label_source!r}; expected 'labels', 'binary' or 'teacher'")
    if label_source == "teacher":
        missing = [rl.qid for rl in lists if rl.teacher_scores is None]
        if missing:
            raise ValueError(
                f"label_source='teacher' but {len(missing)} list(s) lack teacher_scores (first qids: {missing[:5]})"
            )


def relabel(group: RankingList, label_source: str) -> RankingList:
    """``group`` with its labels mapped by ``label_source`` (see :class:`GroupDataset`), in place."""
    if label_source == "binary":
        group.labels = [1.0 if y > 0 else 0.0 for y in group.labels]
    elif label_source == "teacher":
        assert group.teacher_scores is not None
        group.labels = list(group.teacher_scores)
    return group


class WindowDataset(Dataset):
    """Training examples of listwise families (FIRST): item ``i`` is the whole window ``lists[i]``,
    unsampled and in its given order -- no group sampling, no duplicate padding passages, the same
    passage order every epoch, as FIRST / FirstMistral train on their data's fixed windows (the
    passage order is part of the prompt, and the LM target orders the window's own identifiers).

    ``label_source`` maps labels as in :class:`GroupDataset`; ``max_size`` (the family's most
    passages per window) is checked up front so a long list fails before training starts.
    """

    def __init__(
        self, lists: Sequence[RankingList], label_source: LabelSource = "labels", max_size: int | None = None
    ) -> None:
        lists = _nonempty(lists, "WindowDataset", "window")
        if max_size is not None:
            long = [(rl.qid, len(rl)) for rl in lists if len(rl) > max_size]
            if long:
                raise ValueError(
                    f"{len(long)} training window(s) hold more than {max_size} passages (first: qid {long[0][0]!r} "
                    f"with {long[0][1]}); cut the lists into windows of at most {max_size} before training"
                )
        check_label_source(lists, label_source)
        self.lists = lists
        self.label_source = label_source

    def set_epoch(self, epoch: int) -> None:
        """Windows do not change between epochs (only their order in the batches does)."""

    def __len__(self) -> int:
        return len(self.lists)

    def __getitem__(self, i: int) -> RankingList:
        rl = self.lists[i]
        window = relabel(subset_with_meta(rl, list(range(len(rl)))), self.label_source)
        window.meta["indices"] = list(range(len(rl)))
        return window


def truncate_lists(lists: Sequence[RankingList], top_k: int | None) -> list[RankingList]:
    """Each list cut to its first ``top_k`` documents (first-stage order); ``None`` keeps all."""
    if top_k is None:
        return list(lists)
    if top_k < 1:
        raise ValueError(f"top_k={top_k}; must be >= 1")
    return [rl if len(rl) <= top_k else subset_with_meta(rl, list(range(top_k))) for rl in lists]


class EvalDataset(Dataset):
    """Validation lists truncated to ``top_k`` in their given order, without sampling.

    Lists without any relevant document are kept (they count as nDCG 0 in trec_eval-style
    averages only if the caller includes them; ``drop_unjudged=True`` removes them).
    """

    def __init__(self, lists: Sequence[RankingList], top_k: int | None = None, drop_unjudged: bool = False) -> None:
        lists = truncate_lists(lists, top_k)
        if drop_unjudged:
            lists = [rl for rl in lists if any(y > 0 for y in rl.labels)]
        self.lists = lists
        self.top_k = top_k

    def __len__(self) -> int:
        return len(self.lists)

    def __getitem__(self, i: int) -> RankingList:
        return self.lists[i]
