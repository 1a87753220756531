"""`llmrank export`: every family trained a few steps with llmrank's trainer, exported, loaded by
the target library (sentence-transformers CrossEncoder, transformers, PEFT) and scored like
llmrank to 1e-5; inexact exports are refused with one line naming the option, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from llmrank.cli import main as cli_main
from llmrank.config import load_recipe
from llmrank.data.record import Doc, RankingList
from llmrank.export import EXPORTERS, ExportError, default_format, export_checkpoint, export_ranker
from llmrank.loading import load_ranker
from llmrank.rankers import LoraSettings, RankerSettings, family_class
from llmrank.train import run_training
from tests.conftest import make_lists

ATOL = 1e-5


# ----------------------------------------------------------------------------------- helpers
def train(tmp: Path, name: str, family: str, base: str, *, options: dict | None = None, lora: bool = False,
          objective: list[dict] | None = None, steps: int = 3, **model: object) -> Path:
    """A few optimiser steps of llmrank's trainer on the synthetic task; returns the checkpoint."""
    out = tmp / name
    recipe = {
        "model": {"family": family, "model_name_or_path": base, "max_length": 256, "options": options or {}, **model},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0} if lora else None,
        "data": {
            "train": {"format": "synthetic", "split": "train", "num_queries": 8, "docs_per_query": 12},
            "group_size": 4,
            "seed": 1,
        },
        "objective": objective or [{"name": "softmax", "weight": 1.0}],
        "training": {
            "output_dir": str(out), "learning_rate": 5e-3, "per_device_train_batch_size": 2, "max_steps": steps,
            "save_strategy": "no", "eval_strategy": "no", "logging_steps": 1, "seed": 3, "use_cpu": True,
            "disable_tqdm": True, "dataloader_num_workers": 0,
        },
    }  # fmt: skip
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    run_training(load_recipe(path))
    return out


def pairs() -> list[tuple[str, str]]:
    return [(lst.query, doc.full_text(" ")) for lst in make_lists() for doc in lst.docs]


def llmrank_scores(ckpt: Path | str) -> list[float]:
    return [s for row in load_ranker(ckpt).score_lists(make_lists()) for s in row]


def close(a, b, atol: float = ATOL) -> None:
    a, b = [float(x) for x in a], [float(x) for x in b]
    assert len(a) == len(b)
    assert max(abs(x - y) for x, y in zip(a, b)) <= atol, (a, b)


def seq_cls_scores(folder: Path | str, texts_a: list[str], texts_b: list[str] | None = None, model=None) -> list[float]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = model or AutoModelForSequenceClassification.from_pretrained(folder)
    enc = tokenizer(texts_a, texts_b, padding=True, return_tensors="pt") if texts_b else tokenizer(
        texts_a, padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        return model.eval()(**enc).logits[:, 0].tolist()


def decoder_texts(eos: str) -> list[str]:
    """RankLLaMA input as a transformers user writes it: ``query: {q} document: {d}</s>``."""
    return [f"query: {q} document: {d}{eos}" for q, d in pairs()]


def one_line_error(capsys) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("llmrank")]
    assert len(err) == 1, err
    return err[0]


# ----------------------------------------------------------------------------- cross-encoders
@pytest.fixture(scope="module")
def bert_pooler_ckpt(tmp_path_factory, tiny_bert: str) -> Path:
    return train(tmp_path_factory.mktemp("ce"), "bert-pooler", "cross-encoder", tiny_bert, options={"pooling": "pooler"})


def test_bert_cross_encoder_to_sentence_transformers_and_transformers(bert_pooler_ckpt: Path, tmp_path: Path, capsys) -> None:
    from sentence_transformers import CrossEncoder

    expected = llmrank_scores(bert_pooler_ckpt)
    out = tmp_path / "st"
    rc = cli_main(["export", "--model", str(bert_pooler_ckpt), "--format", "sentence-transformers", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "modules.json", "config_sentence_transformers.json", "tokenizer.json",
            "README.md", "recipe.yaml"} <= files  # fmt: skip
    assert "llmrank_config.json" not in files and not list(tmp_path.glob(".tmp-*"))
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"] and len(config["id2label"]) == 1
    st_config = json.loads((out / "config_sentence_transformers.json").read_text())
    assert st_config["activation_fn"] == "torch.nn.modules.linear.Identity"

    # sentence-transformers: raw scores (Identity activation), equal to llmrank's
    model = CrossEncoder(str(out))
    close(model.predict(pairs()), expected)
    # transformers: the plain pair encoding and the stock head give the same numbers
    close(seq_cls_scores(out, [q for q, _ in pairs()], [d for _, d in pairs()]), expected)
    # a document longer than max_length (256): CrossEncoder's truncation (max_length saved with the
    # model, longest-first) cuts the document like llmrank does for a query within query_max_length
    long_doc = " ".join(["the protein of the virus binds the cell in the north of the country"] * 40)
    long_list = [RankingList("q", "what does the virus protein bind?", [Doc("long", long_doc)], [1.0])]
    assert len(model.tokenizer(long_doc)["input_ids"]) > 256
    close(model.predict([(long_list[0].query, long_doc)]), load_ranker(bert_pooler_ckpt).score_lists(long_list)[0])
    # the card says how to load it, with a library the Hub knows
    card = (out / "README.md").read_text()
    assert "library_name: sentence-transformers" in card and "pipeline_tag: text-ranking" in card
    assert f'CrossEncoder("{out}")' in card and "AutoModelForSequenceClassification" in card

    out_tf = tmp_path / "tf"
    assert cli_main(["export", "--model", str(bert_pooler_ckpt), "--format", "transformers", "--out", str(out_tf)]) == 0
    close(seq_cls_scores(out_tf, [q for q, _ in pairs()], [d for _, d in pairs()]), expected)
    assert "library_name: transformers" in (out_tf / "README.md").read_text()


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_pooling_without_stock_head_is_refused(tiny_bert: str, tmp_path: Path, pooling: str, capsys) -> None:
    ranker = family_class("cross-encoder").build(
        RankerSettings(family="cross-encoder", model_name_or_path=tiny_bert, options={"pooling": pooling})
    )
    ranker.save_pretrained(tmp_path / "ckpt")
    out = tmp_path / "out"
    rc = cli_main(["export", "--model", str(tmp_path / "ckpt"), "--format", "transformers", "--out", str(out)])
    assert rc == 2
    line = one_line_error(capsys)
    assert f"pooling '{pooling}'" in line and "options.pooling: pooler" in line and "--format llmrank" in line
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))
    # the llmrank layout is always available and reloads to the same scores
    assert cli_main(["export", "--model", str(tmp_path / "ckpt"), "--format", "llmrank", "--out", str(out)]) == 0
    close(llmrank_scores(out), llmrank_scores(tmp_path / "ckpt"))


def test_roberta_pooler_maps_onto_classification_head(tmp_path: Path, tiny_bert: str) -> None:
    """RoBERTa's head is out_proj(tanh(dense(h_CLS))): llmrank's pooler pooling, exactly."""
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel

    base = tmp_path / "roberta"
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)  # any tokenizer works for the weights mapping
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=64, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    RobertaModel(config).save_pretrained(base)
    tokenizer.save_pretrained(base)
    ranker = family_class("cross-encoder").build(
        RankerSettings(family="cross-encoder", model_name_or_path=str(base), options={"pooling": "pooler"})
    )
    with torch.no_grad():
        ranker.score_head.bias.fill_(0.3)
        ranker.backbone.pooler.dense.bias.normal_()
    expected = [s for row in ranker.score_lists(make_lists()) for s in row]
    out = export_ranker(ranker, tmp_path / "out", "transformers")
    assert json.loads((out / "config.json").read_text())["architectures"] == ["RobertaForSequenceClassification"]
    close(seq_cls_scores(out, [q for q, _ in pairs()], [d for _, d in pairs()]), expected)


def test_deberta_cls_pooling_maps_onto_context_pooler(tmp_path: Path, tiny_bert: str) -> None:
    """DeBERTa's head is classifier(act(dense(h_CLS))): llmrank's cls pooling with a linear act and dense = I."""
    from sentence_transformers import CrossEncoder
    from transformers import AutoTokenizer, DebertaV2Config, DebertaV2Model

    base = tmp_path / "deberta"
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    torch.manual_seed(0)
    config = DebertaV2Config(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=64, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    DebertaV2Model(config).save_pretrained(base)
    tokenizer.save_pretrained(base)
    ranker = family_class("cross-encoder").build(RankerSettings(family="cross-encoder", model_name_or_path=str(base)))
    assert ranker.pooling == "cls"
    with torch.no_grad():
        ranker.score_head.weight.normal_()
        ranker.score_head.bias.fill_(-0.2)
    expected = [s for row in ranker.score_lists(make_lists()) for s in row]
    out = export_ranker(ranker, tmp_path / "out", "sentence-transformers")
    saved = json.loads((out / "config.json").read_text())
    assert saved["architectures"] == ["DebertaV2ForSequenceClassification"] and saved["pooler_hidden_act"] == "linear"
    close(CrossEncoder(str(out)).predict(pairs()), expected)
    close(seq_cls_scores(out, [q for q, _ in pairs()], [d for _, d in pairs()]), expected)


@pytest.fixture(scope="module")
def llama_ce_lora_ckpt(tmp_path_factory, tiny_llama: str) -> Path:
    return train(tmp_path_factory.mktemp("dec"), "llama-ce", "cross-encoder", tiny_llama, lora=True)


def test_decoder_cross_encoder_merged_transformers_and_vllm(llama_ce_lora_ckpt: Path, tmp_path: Path, capsys) -> None:
    ranker = load_ranker(llama_ce_lora_ckpt)
    bias = float(ranker.score_head.bias)
    assert bias != 0.0  # trained: the head's bias moved
    expected = llmrank_scores(llama_ce_lora_ckpt)

    out = tmp_path / "tf"
    rc = cli_main(["export", "--model", str(llama_ce_lora_ckpt), "--format", "transformers", "--out", str(out)])
    assert rc == 2 and "--drop-score-bias" in one_line_error(capsys) and not out.exists()
    rc = cli_main(["export", "--model", str(llama_ce_lora_ckpt), "--format", "sentence-transformers", "--out", str(out)])
    assert rc == 2 and "--format transformers or vllm" in one_line_error(capsys)

    for fmt in ("transformers", "vllm"):
        dest = tmp_path / fmt
        args = ["export", "--model", str(llama_ce_lora_ckpt), "--format", fmt, "--out", str(dest), "--drop-score-bias"]
        assert cli_main(args) == 0
        config = json.loads((dest / "config.json").read_text())
        assert config["architectures"] == ["LlamaForSequenceClassification"]
        assert config["pad_token_id"] not in (None, config["eos_token_id"])  # the eos is the scored token
        meta = json.loads((dest / "llmrank_export.json").read_text())
        assert meta["merged_lora"]["r"] == 4 and meta["settings"]["lora"] is None
        assert not (dest / "adapter_config.json").exists()
        from transformers import AutoTokenizer

        eos = AutoTokenizer.from_pretrained(dest).eos_token
        close(seq_cls_scores(dest, decoder_texts(eos)), [s - bias for s in expected])
    assert "query: {query} document: {document}" in (tmp_path / "vllm" / "README.md").read_text().replace("`", "")


@pytest.mark.parametrize("kind", ["bert", "llama"])
def test_lora_adapter_export_loads_with_peft(kind: str, request, tmp_path: Path, tmp_path_factory, tiny_bert: str,
                                             tiny_llama: str) -> None:  # fmt: skip
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if kind == "bert":
        base = tiny_bert
        ckpt = train(tmp_path, "bert-lora", "cross-encoder", base, options={"pooling": "pooler"}, lora=True)
        shift = 0.0
    else:
        base = tiny_llama
        ckpt = request.getfixturevalue("llama_ce_lora_ckpt")
        shift = float(load_ranker(ckpt).score_head.bias)
    expected = llmrank_scores(ckpt)
    out = tmp_path / "adapter"
    args = ["export", "--model", str(ckpt), "--format", "transformers", "--adapter", "--out", str(out)]
    assert cli_main(args + (["--drop-score-bias"] if kind == "llama" else [])) == 0
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["task_type"] == "SEQ_CLS" and adapter_config["base_model_name_or_path"] == base
    assert ("classifier" if kind == "bert" else "score") in adapter_config["modules_to_save"]
    assert not (out / "model.safetensors").exists()

    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, pad_token_id=tokenizer.pad_token_id)
    model = PeftModel.from_pretrained(model, str(out))
    if kind == "bert":
        got = seq_cls_scores(out, [q for q, _ in pairs()], [d for _, d in pairs()], model=model)
    else:
        got = seq_cls_scores(out, decoder_texts(tokenizer.eos_token), model=model)
    close(got, [s - shift for s in expected])
    assert "library_name: peft" in (out / "README.md").read_text()


# ----------------------------------------------------------------------------- seq2seq, FIRST
@pytest.mark.parametrize("mode", ["monot5", "rankt5"])
def test_seq2seq_exports_stock_t5(mode: str, tmp_path: Path, tiny_t5: str) -> None:
    from transformers import AutoTokenizer, T5ForConditionalGeneration

    lora = mode == "rankt5"  # a LoRA checkpoint is merged into the stock T5
    ckpt = train(tmp_path, mode, "seq2seq", tiny_t5, options={"mode": mode}, lora=lora)
    assert (ckpt / "adapter").is_dir() == lora
    expected = llmrank_scores(ckpt)
    out = export_checkpoint(ckpt, tmp_path / "out", "transformers")
    assert not (out / "adapter_config.json").exists()
    assert json.loads((out / "config.json").read_text())["architectures"] == ["T5ForConditionalGeneration"]
    # monoT5 / RankT5 scoring as their authors compute it, on the stock model
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = T5ForConditionalGeneration.from_pretrained(out).eval()
    suffix = " Relevant:" if mode == "monot5" else ""
    texts = [f"Query: {q} Document: {d}{suffix}" for q, d in pairs()]
    got = []
    for text in texts:  # one at a time: no padding in the reference
        enc = tokenizer(text, return_tensors="pt")
        start = torch.full((1, 1), model.config.decoder_start_token_id)
        with torch.no_grad():
            logits = model(**enc, decoder_input_ids=start).logits[0, 0]
        if mode == "monot5":
            true_id, false_id = (tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in ("true", "false"))
            got.append(torch.log_softmax(logits[[true_id, false_id]], -1)[0])
        else:
            got.append(logits[tokenizer.convert_tokens_to_ids("<extra_id_10>")])
    close(got, expected)
    assert "T5ForConditionalGeneration" in (out / "README.md").read_text()


def test_rankt5_encoder_head_is_refused(tmp_path: Path, tiny_t5: str) -> None:
    ranker = family_class("seq2seq").build(
        RankerSettings(family="seq2seq", model_name_or_path=tiny_t5, options={"mode": "rankt5-enc"})
    )
    with pytest.raises(ExportError, match="rankt5-enc"):
        export_ranker(ranker, tmp_path / "out", "transformers")
    with pytest.raises(ExportError, match="cannot be exported as 'sentence-transformers'"):
        export_ranker(ranker, tmp_path / "out", "sentence-transformers")
    assert not (tmp_path / "out").exists()


def test_first_exports_causal_lm_with_chat_template(tmp_path: Path, tiny_llama: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmrank.rankers.first import IDENTIFIERS, passage_text, render_prompt

    ckpt = train(
        tmp_path, "first", "first", tiny_llama, max_length=1024, steps=2,
        options={"window_size": 4, "stride": 2, "max_passage_words": 20},
        objective=[{"name": "lm", "weight": 1.0}, {"name": "first_ranknet", "weight": 10.0}],
    )  # fmt: skip
    ranker = load_ranker(ckpt).eval()
    window = make_lists()[0]
    batch = ranker.collate([window])
    with torch.no_grad():
        expected = ranker(**{k: batch[k] for k in ("input_ids", "attention_mask", "first_pos", "num_docs")}).scores[0]

    out = export_checkpoint(ckpt, tmp_path / "out", "transformers")
    assert json.loads((out / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template  # rank_llm builds its prompt with the chat template
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    prompt = render_prompt(tokenizer, window.query, [passage_text(d, 20) for d in window.docs]) + "["
    enc = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        last = model(**enc).logits[0, -1]
    letters = [tokenizer.convert_tokens_to_ids(c) for c in IDENTIFIERS[: len(window)]]
    close(last[letters], expected)
    assert (tmp_path / "out" / "README.md").read_text().count("rank-llm rerank") == 1


# ----------------------------------------------------------------------------- the driver
def test_output_is_atomic_and_not_overwritten(bert_pooler_ckpt: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["export", "--model", str(bert_pooler_ckpt), "--format", "transformers", "--out", str(out)]
    assert cli_main(args) == 2
    assert "--overwrite" in one_line_error(capsys) and (out / "keep.txt").read_text() == "mine"
    assert cli_main([*args, "--overwrite"]) == 0
    assert not (out / "keep.txt").exists() and (out / "config.json").exists()
    assert not list(tmp_path.glob(".tmp-*"))
    # bad input: not a checkpoint, --adapter on full weights
    assert cli_main(["export", "--model", str(tmp_path), "--format", "transformers", "--out", str(tmp_path / "x")]) == 2
    assert "llmrank_config.json" in one_line_error(capsys)
    assert cli_main([*args[:-1], str(tmp_path / "y"), "--adapter"]) == 2
    assert "LoRA checkpoint" in one_line_error(capsys)


def test_dispatch_table_takes_new_entries(monkeypatch, tmp_path: Path, tiny_t5: str) -> None:
    """Other families plug in with one table entry ``(family, format): exporter(ranker, out)``."""
    calls = []

    def fake_exporter(ranker, out: Path) -> None:
        calls.append((ranker.family, out.parent))
        (out / "config.json").write_text("{}")

    monkeypatch.setitem(EXPORTERS, ("seq2seq", "vllm"), fake_exporter)
    ranker = family_class("seq2seq").build(RankerSettings(family="seq2seq", model_name_or_path=tiny_t5))
    out = export_ranker(ranker, tmp_path / "out", "vllm", write_card=False)
    assert calls == [("seq2seq", tmp_path)] and (out / "config.json").exists()
    assert json.loads((out / "llmrank_export.json").read_text())["format"] == "vllm"
    assert default_format("cross-encoder") == "sentence-transformers" and default_format("first") == "transformers"
    with pytest.raises(ExportError, match="--drop-score-bias does not apply"):
        export_ranker(ranker, tmp_path / "out2", "vllm", drop_score_bias=True)


def test_load_ranker_reads_exported_folders(bert_pooler_ckpt: Path, tmp_path: Path) -> None:
    expected = llmrank_scores(bert_pooler_ckpt)
    out = export_checkpoint(bert_pooler_ckpt, tmp_path / "st", "sentence-transformers")
    close(llmrank_scores(out), expected)


def test_lora_ranker_settings_unchanged_by_adapter_export(tmp_path: Path, tiny_bert: str) -> None:
    """An adapter export leaves the in-memory ranker a LoRA ranker (no merge)."""
    ranker = family_class("cross-encoder").build(
        RankerSettings(family="cross-encoder", model_name_or_path=tiny_bert, options={"pooling": "pooler"},
                       lora=LoraSettings(r=4, alpha=8, dropout=0.0))  # fmt: skip
    )
    export_ranker(ranker, tmp_path / "a", "transformers", adapter=True)
    assert ranker.is_peft and ranker.settings.lora is not None
    export_ranker(ranker, tmp_path / "m", "transformers")
    assert not ranker.is_peft and ranker.settings.lora is None  # merged for the full-weights export
    lst = [RankingList("q", "gold", [Doc("1", "gold passage"), Doc("2", "other")], [1.0, 0.0])]
    assert len(ranker.score_lists(lst)[0]) == 2


# ----------------------------------------------------------------------------- the model card
def _perturbed(family: str, base: str, **kw: object):
    ranker = family_class(family).build(RankerSettings(family=family, model_name_or_path=base, **kw))
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in ranker.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    if getattr(ranker, "is_decoder", False):
        with torch.no_grad():
            ranker.score_head.bias.zero_()  # the stock decoder head has no bias
    return ranker.eval()


@pytest.mark.parametrize(
    "case",
    ["bert-st", "bert-adapter", "llama-adapter", "llama-ce", "monot5", "rankt5"],
)
def test_card_usage_snippets_run_and_give_llmrank_scores(case: str, tmp_path: Path, tiny_bert: str, tiny_llama: str,
                                                         tiny_t5: str) -> None:  # fmt: skip
    """Each Python block of the card's Usage section, run as written, scores like llmrank."""
    import re

    if case == "bert-st":
        ranker, fmt, adapter = _perturbed("cross-encoder", tiny_bert, options={"pooling": "pooler"}), "sentence-transformers", False
    elif case == "bert-adapter":
        ranker = _perturbed("cross-encoder", tiny_bert, options={"pooling": "pooler"}, lora=LoraSettings(r=4, alpha=8, dropout=0.0))
        fmt, adapter = "transformers", True
    elif case == "llama-adapter":
        ranker, fmt, adapter = _perturbed("cross-encoder", tiny_llama, lora=LoraSettings(r=4, alpha=8, dropout=0.0)), "transformers", True
    elif case == "llama-ce":
        ranker, fmt, adapter = _perturbed("cross-encoder", tiny_llama), "vllm", False
    else:
        ranker, fmt, adapter = _perturbed("seq2seq", tiny_t5, options={"mode": case}), "transformers", False
    out = export_ranker(ranker, tmp_path / "out", fmt, adapter=adapter)
    card = (out / "README.md").read_text()
    usage = card[card.index("## Usage") : card.index("## Evaluation")]
    blocks = re.findall(r"```python\n(.*?)```", usage, re.S)
    scored = 0
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, f"README.md:{case}", "exec"), namespace)  # noqa: S102 - our own generated card
        if "scores" not in namespace:
            continue
        if "docs" in namespace:
            query, docs = namespace["query"], namespace["docs"]
        else:  # the sentence-transformers block scores literal pairs
            query = "how are T5 rerankers trained?"
            docs = ["RankT5 fine-tunes T5 with listwise ranking losses.", "The Nile is the longest river in Africa."]
        lst = RankingList("q", query, [Doc(str(i), d) for i, d in enumerate(docs)], [0.0] * len(docs))
        close(list(namespace["scores"]), ranker.score_lists([lst])[0])
        scored += 1
    assert scored == (2 if fmt == "sentence-transformers" else 1)
