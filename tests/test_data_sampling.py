"""GroupDataset / EvalDataset: group composition, determinism per (seed, epoch, i), label sources."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from llmrank.data import Doc, EvalDataset, GroupDataset, RankingList, collate_lists, truncate_lists


def _list(qid: str, labels: list[float], teacher: bool = True) -> RankingList:
    n = len(labels)
    return RankingList(
        qid,
        f"query {qid}",
        [Doc(f"{qid}-d{j}", f"text {j}") for j in range(n)],
        list(labels),
        teacher_scores=[float(j) / 10 for j in range(n)] if teacher else None,
        order=list(range(n))[::-1],
        meta={"first_stage_scores": [float(-j) for j in range(n)]},
    )


LISTS = [_list("a", [0, 2, 0, 0, 1, 0, 0, 0]), _list("b", [1, 0, 0, 0, 0, 0]), _list("c", [0, 0, 0, 0, 0])]


def test_group_composition_and_determinism() -> None:
    ds = GroupDataset(LISTS, group_size=4, positives_per_group=1, seed=1)
    assert len(ds) == 3
    g = ds[0]
    assert len(g) == 4 and sum(y > 0 for y in g.labels) == 1
    assert len({d.docid for d in g.docs}) == 4  # enough negatives: no replacement
    assert g.teacher_scores == [LISTS[0].teacher_scores[j] for j in g.meta["indices"]]
    assert g.meta["first_stage_scores"] == [-float(j) for j in g.meta["indices"]]
    assert g.order is not None and sorted(g.order) == [0, 1, 2, 3]
    # same (seed, epoch, i) -> same group, also in a fresh dataset
    assert GroupDataset(LISTS, 4, seed=1)[0].to_dict() == g.to_dict()
    draws = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        draws.add(tuple(ds[0].meta["indices"]))
    assert len(draws) > 1
    ds.set_epoch(0)
    assert ds[0].to_dict() == g.to_dict()
    assert len({tuple(GroupDataset(LISTS, 4, seed=s)[0].meta["indices"]) for s in range(6)}) > 1


def test_no_positive_list_yields_all_negatives() -> None:
    g = GroupDataset(LISTS, group_size=4)[2]
    assert len(g) == 4 and g.labels == [0.0] * 4


def test_short_list_uses_replacement_and_too_large_group_errors() -> None:
    ds = GroupDataset(LISTS, group_size=7, positives_per_group=1)
    g = ds[1]  # 6 docs: 1 positive + 5 negatives, one negative drawn twice
    assert len(g) == 7 and g.labels.count(1.0) == 1
    counts = Counter(g.meta["indices"])
    assert sorted(counts.values()) == [1, 1, 1, 1, 1, 2] and LISTS[1].labels[max(counts, key=counts.get)] == 0
    with pytest.raises(ValueError, match="larger than every list.*largest has 8 documents"):
        GroupDataset(LISTS, group_size=9)


def test_all_positive_list() -> None:
    g = GroupDataset([_list("p", [1, 2, 3])], group_size=3, positives_per_group=1)[0]
    assert sorted(g.meta["indices"]) == [0, 1, 2]


def test_label_sources_and_unshuffled_order() -> None:
    binary = GroupDataset(LISTS, 4, positives_per_group=2, label_source="binary", shuffle_docs=False)[0]
    assert binary.labels == [1.0, 1.0, 0.0, 0.0]  # positives first without shuffling
    teacher = GroupDataset(LISTS, 4, label_source="teacher")[0]
    assert teacher.labels == teacher.teacher_scores
    with pytest.raises(ValueError, match="lack teacher_scores.*'x'"):
        GroupDataset([_list("x", [1, 0], teacher=False)], 2, label_source="teacher")
    with pytest.raises(ValueError, match="label_source"):
        GroupDataset(LISTS, 4, label_source="teachers")  # type: ignore[arg-type]


def test_shuffle_does_not_leak_position() -> None:
    lists = [_list(str(i), [1] + [0] * 9) for i in range(200)]
    positions = Counter(g.labels.index(1.0) for g in GroupDataset(lists, group_size=4))
    assert set(positions) == {0, 1, 2, 3} and min(positions.values()) > 25


def test_dataloader_and_eval_dataset() -> None:
    loader = DataLoader(GroupDataset(LISTS, 3), batch_size=2, collate_fn=collate_lists)
    batches = list(loader)
    assert [len(b) for b in batches] == [2, 1] and all(isinstance(g, RankingList) for g in batches[0])
    ev = EvalDataset(LISTS, top_k=5)
    assert [len(rl) for rl in ev] == [5, 5, 5] and ev[0].docs == LISTS[0].docs[:5]
    assert ev[0].meta["first_stage_scores"] == [0.0, -1.0, -2.0, -3.0, -4.0]
    assert len(EvalDataset(LISTS, drop_unjudged=True)) == 2
    assert truncate_lists(LISTS, None) == LISTS
    with pytest.raises(ValueError, match="top_k"):
        truncate_lists(LISTS, 0)


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.lists(st.sampled_from([0.0, 0.0, 1.0, 2.0]), min_size=1, max_size=12), min_size=1, max_size=4),
    group_size=st.integers(1, 12),
    ppg=st.integers(0, 3),
    seed=st.integers(0, 5),
    epoch=st.integers(0, 3),
)
def test_group_invariants(labels: list[list[float]], group_size: int, ppg: int, seed: int, epoch: int) -> None:
    lists = [_list(str(i), ys) for i, ys in enumerate(labels)]
    if group_size > max(len(rl) for rl in lists) or ppg > group_size:
        with pytest.raises(ValueError):
            GroupDataset(lists, group_size, ppg, seed=seed)
        return
    ds = GroupDataset(lists, group_size, ppg, seed=seed)
    ds.set_epoch(epoch)
    for i, rl in enumerate(lists):
        g = ds[i]
        n_pos = sum(y > 0 for y in rl.labels)
        n_neg = len(rl) - n_pos
        assert len(g) == group_size
        if n_neg:  # with negatives available the positive count is exactly as asked (or all there are)
            assert sum(y > 0 for y in g.labels) == min(ppg, n_pos)
        if len(rl) >= group_size and n_neg >= group_size - min(ppg, n_pos):
            assert len(set(g.meta["indices"])) == group_size  # without replacement
        assert ds[i].to_dict() == g.to_dict()


def test_window_dataset_keeps_each_window_whole_and_in_order() -> None:
    """Listwise families (FIRST) train on whole windows: every passage once, in the given order,
    the same in every epoch; labels mapped like GroupDataset's."""
    from llmrank.data.sampling import WindowDataset

    windows = [_list("a", [0.0, 3.0, 1.0]), _list("b", [2.0, 0.0, 0.0, 1.0, 0.0])]
    data = WindowDataset(windows, label_source="binary")
    assert len(data) == 2
    for epoch in (0, 3):
        data.set_epoch(epoch)
        for window, item in zip(windows, (data[0], data[1])):
            assert [d.docid for d in item.docs] == [d.docid for d in window.docs]
            assert item.labels == [1.0 if y > 0 else 0.0 for y in window.labels]
            assert item.teacher_scores == window.teacher_scores
            assert item.meta["indices"] == list(range(len(window)))
    assert windows[0].labels == [0.0, 3.0, 1.0]  # the source lists are not modified
    with pytest.raises(ValueError, match="more than 4 passages"):
        WindowDataset(windows, max_size=4)
    with pytest.raises(ValueError, match="teacher_scores"):
        WindowDataset([_list("c", [1.0, 0.0], teacher=False)], label_source="teacher")
