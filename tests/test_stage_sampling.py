"""Cascade-stage sampling: group composition per stage, determinism per (seed, epoch, index),
stage derivation from the downstream ranker, random corpus documents, recipe hook and errors."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from llmrank.data.record import Doc, RankingList
from llmrank.data.stages import StageGroupDataset, StageSpec, document_stages, parse_stages


def _lists(n_lists: int = 3, n_docs: int = 30) -> list[RankingList]:
    out = []
    for i in range(n_lists):
        docs = [Doc(f"q{i}d{j}", f"text {i} {j}") for j in range(n_docs)]
        labels = [1.0 if j in (3, 17) else 0.0 for j in range(n_docs)]
        teacher = [float(n_docs - j) for j in range(n_docs)]  # the downstream ranker keeps the list order
        out.append(RankingList(f"q{i}", f"query {i}", docs, labels, teacher_scores=teacher))
    return out


CORPUS = [Doc(f"c{j}", f"corpus text {j}") for j in range(200)] + [Doc("q0d0", "listed already")]


def _spec(**kw: int) -> StageSpec:
    block = {"impression": 4, "candidate": 8, "random": 4, "impression_depth": 10, "corpus": "x", **kw}
    return parse_stages(block)


def test_composition_per_stage() -> None:
    ds = StageGroupDataset(_lists(), _spec(), CORPUS, positives_per_group=1, seed=7)
    for epoch in range(4):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            g = ds[i]
            stages = g.meta["stages"]
            assert Counter(stages) == {"impression": 4, "candidate": 8, "random": 4}
            assert len(g) == len(g.labels) == len(g.teacher_scores) == 16
            for doc, stage, idx in zip(g.docs, stages, g.meta["indices"]):
                if stage == "random":
                    assert idx == -1 and doc.docid.startswith("c")  # never a document of the list
                else:  # impressions are the teacher's top 10, candidates the rest of the list
                    assert doc.docid == f"q{i}d{idx}"
                    assert (idx < 10) == (stage == "impression")
            assert sum(g.labels) >= 1  # the positive is drawn
            assert [d.stage for d in g.docs] == stages  # the documents carry their stage (targets["stages"])
            listed = [j for j, s in zip(g.meta["indices"], stages) if s != "random"]
            assert len(set(listed)) == len(listed)  # without replacement while the stage has enough
            floor = min(ds.lists[i].teacher_scores)
            assert all(t == floor for t, s in zip(g.teacher_scores, stages) if s == "random")
            assert all(y == 0.0 for y, s in zip(g.labels, stages) if s == "random")


def test_deterministic_per_seed_epoch_index() -> None:
    a = StageGroupDataset(_lists(), _spec(), CORPUS, seed=3)
    b = StageGroupDataset(_lists(), _spec(), CORPUS, seed=3)
    ids = lambda ds, i: [d.docid for d in ds[i].docs]  # noqa: E731
    assert ids(a, 1) == ids(b, 1)
    assert ids(a, 1) == ids(a, 1)  # reading an item twice gives the same group
    b.set_epoch(1)
    assert ids(a, 1) != ids(b, 1)  # a new epoch, a new draw
    c = StageGroupDataset(_lists(), _spec(), CORPUS, seed=4)
    assert ids(a, 1) != ids(c, 1)
    assert ids(a, 0) != ids(a, 1)


def test_stage_falls_back_and_fills_with_replacement() -> None:
    lst = _lists(1, n_docs=6)  # 3 impressions, 3 candidates for depth 3
    spec = parse_stages({"impression": 5, "candidate": 2, "impression_depth": 3})
    g = StageGroupDataset(lst, spec, seed=0)[0]
    assert Counter(g.meta["stages"]) == {"impression": 5, "candidate": 2}
    imp = [j for j, s in zip(g.meta["indices"], g.meta["stages"]) if s == "impression"]
    assert set(imp) <= {0, 1, 2, 3} and set(range(3)) <= set(imp)  # all 3 impressions, then repeats
    # a list without candidates fills the candidate slots from the impressions
    spec = parse_stages({"impression": 2, "candidate": 3, "impression_depth": 6})
    g = StageGroupDataset(lst, spec, seed=0)[0]
    assert len(g) == 5


def test_tags_win_over_derivation_and_binary_labels() -> None:
    rl = _lists(1, n_docs=8)[0]
    rl.meta["stages"] = ["candidate"] * 6 + ["impression"] * 2
    assert document_stages(rl, impression_depth=5) == rl.meta["stages"]
    rl.teacher_scores = None
    rl.labels = [2.0 if j == 7 else 0.0 for j in range(8)]
    g = StageGroupDataset([rl], parse_stages({"impression": 2, "candidate": 2}), label_source="binary", seed=1)[0]
    assert {rl.docs[j].docid for j in (6, 7)} == {d.docid for d, s in zip(g.docs, g.meta["stages"]) if s == "impression"}
    assert sorted(g.labels) == [0.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize(
    "block,match",
    [
        ({"impression": 4, "candidat": 8}, r"unknown key\(s\) \['candidat'\]"),
        ({"impression": -1}, r"data.stages.impression=-1"),
        ({"impression": 0}, "every stage count is 0"),
        ({"impression": 2, "random": 2}, r"data.stages.random=2 needs data.stages.corpus"),
        ({"impression": 2, "impression_depth": "top"}, "impression_depth='top'"),
    ],
)
def test_bad_blocks(block: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_stages(block)


def test_list_without_ordering_is_an_error() -> None:
    rl = _lists(1)[0]
    rl.teacher_scores = None
    with pytest.raises(ValueError, match="no stage tags and no downstream ordering"):
        StageGroupDataset([rl], _spec(random=0), seed=0)
    rl.meta["stages"] = ["impression", "shown"] + ["candidate"] * 28
    with pytest.raises(ValueError, match=r"stage tag\(s\) \['shown'\]"):
        document_stages(rl, 0)


def test_recipe_hook_trains_with_stages(tiny_bert: str, tmp_path: Path) -> None:
    from llmrank.config import recipe_from_dict
    from llmrank.data.readers import write_lists_jsonl
    from llmrank.train import main

    write_lists_jsonl(_lists(4, n_docs=12), tmp_path / "train.jsonl")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": f"c{j}", "title": "", "text": f"corpus {j}"}) + "\n" for j in range(20)))
    recipe = {
        "model": {"family": "two-tower", "model_name_or_path": tiny_bert, "max_length": 16, "query_max_length": 8},
        "data": {"train": {"format": "jsonl", "path": str(tmp_path / "train.jsonl")},
                 "stages": {"impression": 2, "candidate": 2, "random": 1, "impression_depth": 3, "corpus": str(corpus)}},
        "objective": [{"name": "softmax"}, {"name": "listwise_distillation", "scope": ["impression"]},
                      {"name": "softsort", "scope": ["impression", "candidate"]}, {"name": "am_rankmax"}],
        "training": {"output_dir": str(tmp_path / "out"), "max_steps": 2, "per_device_train_batch_size": 2,
                     "save_strategy": "no", "use_cpu": True, "disable_tqdm": True, "report_to": "none"},
    }  # fmt: skip
    recipe_from_dict(recipe, where="test")  # the block is accepted by the recipe schema
    path = tmp_path / "recipe.yaml"
    import yaml

    path.write_text(yaml.safe_dump(recipe))
    assert main(["--config", str(path)]) == 0
    assert (tmp_path / "out" / "llmrank_config.json").exists()
    recipe["data"]["stages"]["random"] = 3
    del recipe["data"]["stages"]["corpus"]
    path.write_text(yaml.safe_dump(recipe))
    recipe["training"]["output_dir"] = str(tmp_path / "out2")
    path.write_text(yaml.safe_dump(recipe))
    assert main(["--config", str(path)]) == 2
    assert not (tmp_path / "out2").exists()


def test_two_tower_collates_stages(tiny_bert: str) -> None:
    from llmrank.data.record import STAGES
    from llmrank.rankers import RankerSettings, family_class

    ranker = family_class("two-tower").build(RankerSettings("two-tower", tiny_bert, max_length=16, query_max_length=8))
    ds = StageGroupDataset(_lists(2), _spec(), CORPUS, seed=0)
    batch = ranker.collate([ds[0], ds[1]])
    assert batch["stages"].shape == (2, 16)
    assert [STAGES[k] for k in batch["stages"][0].tolist()] == ds[0].meta["stages"]
