"""Pointwise ranker families (cross-encoder: BERT + RankLLaMA-style Llama; seq2seq: RankT5, monoT5)
on tiny local models: collate, agreement with a naive per-pair HF forward, gradients, LoRA,
save/load round-trips, resume, gradient checkpointing, errors."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModel, AutoTokenizer, T5ForConditionalGeneration

from llmrank.loading import load_ranker
from llmrank.rankers import LoraSettings, Ranker, RankerSettings, family_class
from llmrank.rankers.base import TARGET_KEYS
from tests.conftest import make_lists

# (case id, fixture name, family, options)
CASES = [
    ("bert", "tiny_bert", "cross-encoder", {}),
    ("llama", "tiny_llama", "cross-encoder", {}),
    ("rankt5", "tiny_t5", "seq2seq", {"mode": "rankt5"}),
    ("monot5", "tiny_t5", "seq2seq", {"mode": "monot5"}),
]
IDS = [c[0] for c in CASES]
#: save/load and checkpointing tests skip monoT5: it shares RankT5's backbone path, only the score differs
HEAVY = [c for c in CASES if c[0] != "monot5"]


@pytest.fixture(params=CASES, ids=IDS)
def case(request: pytest.FixtureRequest) -> tuple[str, str, str, dict]:
    name, fixture, family, options = request.param
    return name, request.getfixturevalue(fixture), family, options


@pytest.fixture(params=HEAVY, ids=[c[0] for c in HEAVY])
def heavy_case(request: pytest.FixtureRequest) -> tuple[str, str, str, dict]:
    name, fixture, family, options = request.param
    return name, request.getfixturevalue(fixture), family, options


def build(path: str, family: str, options: dict, **kw) -> Ranker:
    torch.manual_seed(0)
    return family_class(family).build(
        RankerSettings(family=family, model_name_or_path=path, options=dict(options), **kw)
    )


def inputs_of(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k not in TARGET_KEYS}


def softmax_ce(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(scores.masked_fill(~mask, -1e9), dim=-1)
    return -(labels * logp).masked_fill(~mask, 0).sum(-1).mean()


def randomize_trainable(ranker: Ranker, seed: int = 1) -> None:
    """Move trainable weights off their init (LoRA B starts at zero) so round-trips test something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in ranker.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)


def naive_text(name: str, q: str, d: str) -> str:
    return {
        "bert": None,
        "llama": f"query: {q} document: {d}</s>",
        "rankt5": f"Query: {q} Document: {d}",
        "monot5": f"Query: {q} Document: {d} Relevant:",
    }[name]


# ----------------------------------------------------------------------------- collate


def test_collate_ragged_shapes_and_targets(case, lists) -> None:
    _, path, family, options = case
    ranker = build(path, family, options)
    batch = ranker.collate(lists)
    assert batch["input_ids"].shape[0] == 5  # only the 5 real pairs
    assert batch["attention_mask"].shape == batch["input_ids"].shape
    assert batch["input_ids"].shape[1] == int(batch["attention_mask"].sum(1).max())  # dynamic padding
    mask = torch.tensor([[True, True, True], [True, True, False]])
    assert torch.equal(batch["list_mask"], mask) and torch.equal(batch["pair_mask"], mask)
    assert batch["labels"].dtype == torch.float32
    assert torch.equal(batch["labels"], torch.tensor([[2.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
    assert torch.equal(batch["teacher_scores"], torch.tensor([[3.0, -1.0, 0.5], [1.0, -2.0, 0.0]]))
    assert torch.equal(batch["teacher_ranks"][batch["list_mask"]], torch.tensor([1, 3, 2, 1, 2]))
    lists[0].teacher_scores, lists[1].order = None, None
    partial = ranker.collate(lists)
    assert "teacher_scores" not in partial and "teacher_ranks" not in partial
    out = ranker(**inputs_of(batch))
    assert out.scores.shape == (2, 3) and out.scores.dtype == torch.float32
    assert torch.equal(out.mask, mask)


def test_pretokenize_caches_texts(case, lists, monkeypatch) -> None:
    _, path, family, options = case
    ranker = build(path, family, options)
    ranker.pretokenize(lists)
    assert len(ranker.token_cache) == 7  # 2 queries + 5 documents
    first = ranker.collate(lists)
    calls = []
    tok = ranker.token_cache.tokenizer
    monkeypatch.setattr(ranker.token_cache, "tokenizer", lambda *a, **k: calls.append(a) or tok(*a, **k))
    second = ranker.collate(lists)
    assert calls == []  # no re-tokenisation
    assert torch.equal(first["input_ids"], second["input_ids"])


@pytest.mark.parametrize("max_length", [512, 24])
def test_bert_pair_ids_match_tokenizer(tiny_bert, lists, max_length) -> None:
    ranker = build(tiny_bert, "cross-encoder", {}, max_length=max_length)
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    pairs = ranker.list_pairs(lists)
    k = 0
    for lst in lists:
        for doc in lst.docs:
            ref = tok(lst.query, doc.full_text(), truncation="only_second", max_length=max_length)
            assert pairs[k][0] == ref["input_ids"]
            assert pairs[k][1] == ref["token_type_ids"]
            k += 1


@pytest.mark.parametrize("name", ["llama", "rankt5", "monot5"])
def test_template_pair_ids_match_tokenizer(name, request, lists) -> None:
    _, fixture, family, options = CASES[IDS.index(name)]
    path = request.getfixturevalue(fixture)
    ranker = build(path, family, options)
    tok = AutoTokenizer.from_pretrained(path)
    pairs = ranker.list_pairs(lists)
    refs = [tok(naive_text(name, lst.query, d.full_text()))["input_ids"] for lst in lists for d in lst.docs]
    assert [p[0] for p in pairs] == refs


# ----------------------------------------------------------------------------- scores


def naive_scores(name: str, ranker: Ranker, path: str, lists) -> list[float]:
    """Score each pair alone with the HF model built the obvious way."""
    tok = AutoTokenizer.from_pretrained(path)
    out = []
    with torch.no_grad():
        if name in ("bert", "llama"):
            model = AutoModel.from_pretrained(path).eval()
            for lst in lists:
                for d in lst.docs:
                    if name == "bert":
                        enc = tok(lst.query, d.full_text(), return_tensors="pt")
                        out_ = model(**enc)
                        # auto pooling on BERT = the stock head's input: tanh(dense([CLS])) from the pooler
                        h = out_.pooler_output[0] if ranker.pooling == "pooler" else out_.last_hidden_state[0, 0]
                    else:
                        enc = tok(naive_text(name, lst.query, d.full_text()), return_tensors="pt")
                        h = model(**enc).last_hidden_state[0, -1]
                    out.append(float(ranker.score_head(h)))
        else:
            model = T5ForConditionalGeneration.from_pretrained(path).eval()
            for lst in lists:
                for d in lst.docs:
                    enc = tok(naive_text(name, lst.query, d.full_text()), return_tensors="pt")
                    logits = model(**enc, decoder_input_ids=torch.tensor([[model.config.decoder_start_token_id]])).logits
                    logits = logits[0, 0]
                    if name == "rankt5":
                        out.append(float(logits[tok.convert_tokens_to_ids("<extra_id_10>")]))
                    else:
                        t, f = (tok(w, add_special_tokens=False)["input_ids"][0] for w in ("true", "false"))
                        out.append(float(torch.log_softmax(logits[[t, f]], -1)[0]))
    return out


def test_scores_match_naive_per_pair_forward(case, lists) -> None:
    name, path, family, options = case
    ranker = build(path, family, options).eval()
    with torch.no_grad():
        batch = ranker.collate(lists)
        scores = ranker(**inputs_of(batch)).scores[batch["list_mask"]]
    ref = torch.tensor(naive_scores(name, ranker, path, lists))
    torch.testing.assert_close(scores, ref, atol=1e-5, rtol=1e-4)
    # length-sorted inference batches give the same scores
    flat = [s for row in ranker.score_lists(lists, batch_size=2) for s in row]
    torch.testing.assert_close(torch.tensor(flat), ref, atol=1e-5, rtol=1e-4)
    top = ranker.rerank(lists[0].query, lists[0].docs)
    assert [s for _, s in top] == sorted((s for _, s in top), reverse=True)


def test_gradient_reaches_every_trainable_parameter(case, lists) -> None:
    _, path, family, options = case
    ranker = build(path, family, options).train()
    batch = ranker.collate(lists)
    out = ranker(**inputs_of(batch))
    softmax_ce(out.scores, batch["labels"], batch["list_mask"]).backward()
    missing = [n for n, p in ranker.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    assert all(torch.isfinite(p.grad).all() for p in ranker.parameters() if p.grad is not None)


# ----------------------------------------------------------------------------- save / load


def assert_same_scores(a: Ranker, b: Ranker, lists) -> None:
    torch.testing.assert_close(torch.tensor(sum(a.score_lists(lists), [])), torch.tensor(sum(b.score_lists(lists), [])))


def test_lora_save_load_round_trip(heavy_case, lists, tmp_path) -> None:
    _, path, family, options = heavy_case
    ranker = build(path, family, options, lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    assert ranker.is_peft
    trainable = {n for n, p in ranker.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("score_head.") for n in trainable)
    if hasattr(ranker, "score_head"):
        assert ranker.score_head.weight.requires_grad
    randomize_trainable(ranker)
    ranker.save_pretrained(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "adapter" / "adapter_model.safetensors").exists()
    assert (tmp_path / "ckpt" / "head.safetensors").exists() == hasattr(ranker, "score_head")
    loaded = load_ranker(tmp_path / "ckpt")
    assert type(loaded) is type(ranker) and loaded.is_peft
    assert_same_scores(ranker, loaded, lists)
    # resume: a fresh LoRA ranker loads the trained weights in place
    fresh = build(path, family, options, lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    fresh.load_trained_weights(tmp_path / "ckpt")
    assert_same_scores(ranker, fresh, lists)


def test_full_finetune_save_load_round_trip(heavy_case, lists, tmp_path) -> None:
    _, path, family, options = heavy_case
    ranker = build(path, family, options)
    randomize_trainable(ranker)
    ranker.save_pretrained(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "backbone").is_dir() and not (tmp_path / "ckpt" / "adapter").exists()
    loaded = load_ranker(str(tmp_path / "ckpt"))
    assert loaded.settings.options == ranker.settings.options
    assert_same_scores(ranker, loaded, lists)
    fresh = build(path, family, options)
    fresh.load_trained_weights(tmp_path / "ckpt")
    assert_same_scores(ranker, fresh, lists)


def test_gradient_checkpointing_with_lora(heavy_case, lists) -> None:
    _, path, family, options = heavy_case
    ranker = build(path, family, options, lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    randomize_trainable(ranker)
    ranker.gradient_checkpointing_enable()
    ranker.train()
    batch = ranker.collate(lists)
    loss = softmax_ce(ranker(**inputs_of(batch)).scores, batch["labels"], batch["list_mask"])
    loss.backward()
    lora = [p for n, p in ranker.named_parameters() if "lora_" in n]
    assert lora and all(p.grad is not None and torch.isfinite(p.grad).all() for p in lora)
    assert any(p.grad.abs().sum() > 0 for p in lora)
    if hasattr(ranker, "score_head"):
        assert torch.isfinite(ranker.score_head.weight.grad).all() and ranker.score_head.weight.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- options and errors


def test_missing_model_path_says_how_to_fix(tmp_path) -> None:
    for family in ("cross-encoder", "seq2seq"):
        with pytest.raises(FileNotFoundError, match="does not exist.*local folder"):
            build(str(tmp_path / "no-such-model"), family, {})
    with pytest.raises(FileNotFoundError):
        load_ranker(tmp_path / "no-such-ranker")


def test_bad_score_token_is_a_clear_error(tiny_t5) -> None:
    with pytest.raises(ValueError, match="score_token 'not a token at all' is not a single token"):
        build(tiny_t5, "seq2seq", {"mode": "rankt5", "score_token": "not a token at all"})
    ranker = build(tiny_t5, "seq2seq", {"mode": "rankt5", "score_token": "<extra_id_3>"})
    assert ranker.score_token_id == ranker.tokenizer.convert_tokens_to_ids("<extra_id_3>")


def test_family_mismatch_errors(tiny_t5, tiny_bert) -> None:
    with pytest.raises(ValueError, match="family: seq2seq"):
        build(tiny_t5, "cross-encoder", {})
    with pytest.raises(ValueError, match="family: cross-encoder"):
        build(tiny_bert, "seq2seq", {})


def test_pooling_auto_and_lora_defaults(tiny_bert, tiny_llama) -> None:
    bert = build(tiny_bert, "cross-encoder", {})
    llama = build(tiny_llama, "cross-encoder", {})
    assert (bert.pooling, llama.pooling) == ("pooler", "last")  # BERT: the stock sequence-classification head
    assert bert.lora_targets() == ["query", "key", "value", "dense"]
    assert "gate_proj" in llama.lora_targets()
    assert getattr(bert.backbone, "pooler", None) is not None  # the stock head reads it
    assert getattr(build(tiny_bert, "cross-encoder", {"pooling": "cls"}).backbone, "pooler", None) is None  # unused: dropped
    with pytest.raises(ValueError, match="pooling"):
        build(tiny_bert, "cross-encoder", {"pooling": "max"})


def test_rankt5_encoder_only_variant(tiny_t5, lists, tmp_path) -> None:
    ranker = build(tiny_t5, "seq2seq", {"mode": "rankt5-enc"})
    batch = ranker.collate(lists)
    out = ranker(**inputs_of(batch))
    softmax_ce(out.scores, batch["labels"], batch["list_mask"]).backward()
    assert ranker.score_head.weight.grad is not None
    ranker.save_pretrained(tmp_path / "enc")
    assert_same_scores(ranker, load_ranker(tmp_path / "enc"), lists)


def test_sequence_classification_checkpoint_head_is_reused(tiny_bert, tmp_path) -> None:
    from transformers import BertForSequenceClassification

    torch.manual_seed(3)
    clf = BertForSequenceClassification.from_pretrained(tiny_bert, num_labels=1).eval()
    clf.save_pretrained(tmp_path / "clf")
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(tmp_path / "clf")
    ranker = build(str(tmp_path / "clf"), "cross-encoder", {}).eval()
    assert ranker.pooling == "pooler"
    lists = make_lists()
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    with torch.no_grad():
        ref = [float(clf(**tok(lst.query, d.full_text(), return_tensors="pt")).logits) for lst in lists for d in lst.docs]
    torch.testing.assert_close(torch.tensor(sum(ranker.score_lists(lists), [])), torch.tensor(ref), atol=1e-5, rtol=1e-4)
    ranker.save_pretrained(tmp_path / "ckpt")
    assert_same_scores(ranker, load_ranker(tmp_path / "ckpt"), lists)


@pytest.mark.parametrize("name", ["bert", "rankt5-enc"])
def test_score_head_stays_float32_under_autocast(name, tiny_bert, tiny_t5, lists) -> None:
    """bf16 autocast (training with bf16, CPU scoring) must not round the scores: the linear head
    runs in float32 on the (bf16) pooled state, so scores are not bf16 values that tie."""
    ranker = build(tiny_bert, "cross-encoder", {}) if name == "bert" else build(tiny_t5, "seq2seq", {"mode": "rankt5-enc"})
    ranker.eval()
    states: list[torch.Tensor] = []
    head = ranker.score_head
    hook = head.register_forward_hook(lambda module, args, out: states.append(args[0].detach()))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        batch = ranker.collate(lists)
        scores = ranker(**inputs_of(batch)).scores[batch["list_mask"]]
    hook.remove()
    assert scores.dtype == torch.float32
    expected = (states[0].float() @ head.weight.float().T + head.bias.float()).squeeze(-1)
    torch.testing.assert_close(scores, expected, atol=1e-6, rtol=1e-6)
    assert not torch.equal(scores, scores.to(torch.bfloat16).float())  # not rounded to bf16
