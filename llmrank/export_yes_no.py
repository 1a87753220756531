"""Export a ``yes-no`` ranker to layouts other tools load without llmrank.

* :func:`export_causal_lm` -- a stock ``*ForCausalLM`` folder (LoRA merged) with the tokenizer at
  the root and a chat template that renders a sentence-transformers ``query``/``document`` pair into
  the ranker's exact prompt, plus sentence-transformers' module files (``Transformer`` +
  ``LogitScore(true, false)``), so that ``CrossEncoder(DIR)`` (sentence-transformers >= 5.4) and
  ``AutoModelForCausalLM.from_pretrained(DIR)`` + the template's formula give llmrank's scores.
* :func:`export_vllm_seq_cls` -- the single-logit ``*ForSequenceClassification`` conversion that
  vLLM serves with ``/score`` (vllm-project/vllm#19260, #19675): the decoder's weights and a score
  row ``w_true - w_false`` (``from_2_way_softmax``) or ``w_true`` alone (``no_post_processing``) with
  no bias, so the sequence-classification logit at the last token is exactly llmrank's score
  (``difference`` / ``logit`` scorings; a ``log_softmax`` template exports its difference, whose
  ``logsigmoid`` is the score: same ranking).

Both write into ``out_dir`` (created if missing); ``llmrank export`` (:func:`llmrank.export.export_ranker`)
stages them in a temporary folder and renames it into place, so a failed export leaves nothing.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from llmrank.rankers.prompts import YesNoTemplate
from llmrank.rankers.yes_no import YesNoRanker


def _check(ranker: object) -> YesNoRanker:
    if not isinstance(ranker, YesNoRanker):
        raise ValueError(f"this export needs a yes-no ranker, got family {getattr(ranker, 'family', type(ranker).__name__)!r}")
    return ranker


def merged_causal_lm(ranker: YesNoRanker) -> nn.Module:
    """The ranker's causal LM with any LoRA adapters merged. A LoRA ranker is merged on a copy (the
    ranker is untouched); a merged one is returned as is, read only, so a large model is not copied."""
    if not ranker.is_peft:
        return ranker.backbone
    return copy.deepcopy(ranker.backbone).merge_and_unload().eval()


def _literal(text: str) -> str:
    """A Jinja expression printing ``text`` verbatim (JSON string syntax is valid Jinja)."""
    return "{{ " + json.dumps(text) + " }}" if text else ""


def pair_chat_template(t: YesNoTemplate, bos_token: str | None) -> str:
    """A chat template rendering ``[{"role": "query"}, {"role": "document"}]`` messages (what
    sentence-transformers' causal-LM CrossEncoder sends) into the template's prompt text. The
    rendered text tokenises to llmrank's ids when pieces meet at pre-token boundaries (true for
    Qwen's BPE templates; SentencePiece vocabularies add a word-start marker per piece, so
    bge-gemma's separately-tokenised pieces are not reproduced by one tokenisation)."""
    head = (
        "{%- set ns = namespace(query='', document='') -%}"
        "{%- for message in messages -%}"
        "{%- if message['role'] == 'query' -%}{%- set ns.query = message['content'] -%}"
        "{%- elif message['role'] == 'document' -%}{%- set ns.document = message['content'] -%}{%- endif -%}"
        "{%- endfor -%}"
    )
    parts = [_literal(bos_token) if t.add_bos and bos_token else "", _literal(t.prefix)]

    def render(text: str, values: dict[str, str]) -> str:
        # split the format text on its placeholders; literal runs are printed verbatim
        out, rest = [], text
        while rest:
            hits = [(rest.find("{" + k + "}"), k) for k in values if "{" + k + "}" in rest]
            if not hits:
                out.append(_literal(rest))
                break
            pos, key = min(hits)
            out.append(_literal(rest[:pos]))
            out.append("{{ " + values[key] + " }}")
            rest = rest[pos + len(key) + 2 :]
        return "".join(out)

    instruction = json.dumps(t.instruction or "")
    if t.truncation == "body":
        parts.append(render(t.body, {"instruction": instruction, "query": "ns.query", "document": "ns.document"}))
    else:
        if t.instruction and t.instruction_format:
            parts.append(render(t.instruction_format, {"instruction": instruction}) + _literal(t.sep))
        parts.append(render(t.query_format, {"instruction": instruction, "query": "ns.query"}))
        parts.append(_literal(t.sep))
        parts.append(render(t.doc_format, {"instruction": instruction, "document": "ns.document"}))
    parts.extend(_literal(p) for p in t.suffix)
    return head + "".join(parts)


def _sentence_transformers_files(out: Path, ranker: YesNoRanker) -> None:
    """modules.json + LogitScore config: ``CrossEncoder(out)`` = Transformer (text-generation) + LogitScore."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.base.modules.transformer.Transformer"},
        {"idx": 1, "name": "1", "path": "1_LogitScore",
         "type": "sentence_transformers.cross_encoder.modules.logit_score.LogitScore"},
    ]  # fmt: skip
    (out / "modules.json").write_text(json.dumps(modules, indent=2))
    (out / "1_LogitScore").mkdir()
    score_cfg = {"true_token_id": ranker.true_id, "false_token_id": ranker.false_id, "module_input_name": "causal_logits"}
    (out / "1_LogitScore" / "config.json").write_text(json.dumps(score_cfg, indent=2))
    bert_cfg = {
        "transformer_task": "text-generation",
        "modality_config": {
            "text": {"method": "forward", "method_output_name": "logits"},
            "message": {"method": "forward", "method_output_name": "logits", "format": "flat"},
        },
        "module_output_name": "causal_logits",
        "max_seq_length": ranker.settings.max_length,
    }
    (out / "sentence_bert_config.json").write_text(json.dumps(bert_cfg, indent=2))
    st_cfg = {"model_type": "CrossEncoder", "activation_fn": "torch.nn.modules.activation.Sigmoid", "prompts": {},
              "default_prompt_name": None}  # fmt: skip
    (out / "config_sentence_transformers.json").write_text(json.dumps(st_cfg, indent=2))


def export_causal_lm(ranker: YesNoRanker, out_dir: str | os.PathLike) -> Path:
    """Write a stock ``*ForCausalLM`` folder (LoRA merged, safetensors) with the tokenizer, a
    query/document chat template and sentence-transformers' CrossEncoder module files at the root."""
    ranker = _check(ranker)
    model = merged_causal_lm(ranker)
    tokenizer = copy.deepcopy(ranker.tokenizer)
    tokenizer.padding_side = "left"
    tokenizer.chat_template = pair_chat_template(ranker.yes_no_template, tokenizer.bos_token)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    _sentence_transformers_files(out, ranker)
    meta = {"template": ranker.yes_no_template.to_dict(), "true_token_id": ranker.true_id,
            "false_token_id": ranker.false_id, "max_length": ranker.settings.max_length}  # fmt: skip
    (out / "llmrank_yes_no.json").write_text(json.dumps(meta, indent=2))
    return Path(out_dir)


def score_row(ranker: YesNoRanker, causal_lm: nn.Module) -> torch.Tensor:
    """``[1, hidden]`` sequence-classification weight equal to the ranker's score: ``w_true - w_false``
    or ``w_true``. Refuses heads a single bias-free linear row cannot reproduce."""
    head = causal_lm.get_output_embeddings()
    if getattr(causal_lm.config, "final_logit_softcapping", None):
        raise ValueError("this model soft-caps its logits (final_logit_softcapping): a linear score row cannot reproduce it")
    if getattr(head, "bias", None) is not None:
        raise ValueError("the LM head has a bias: the vLLM sequence-classification conversion has none")
    w = head.weight.detach()
    row = w[ranker.true_id].clone()
    if ranker.yes_no_template.scoring != "logit":
        row = row - w[ranker.false_id]
    return row.unsqueeze(0)


def export_vllm_seq_cls(ranker: YesNoRanker, out_dir: str | os.PathLike) -> Path:
    """Write the single-logit ``*ForSequenceClassification`` conversion (decoder weights + score row,
    ``num_labels`` 1, no bias) with the tokenizer at the root."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    ranker = _check(ranker)
    causal_lm = merged_causal_lm(ranker)
    row = score_row(ranker, causal_lm)
    config = AutoConfig.for_model(**causal_lm.config.to_dict())
    arch = type(causal_lm).__name__.replace("ForCausalLM", "ForSequenceClassification")
    config.architectures = [arch]
    config.num_labels = 1
    config.id2label, config.label2id = {0: "LABEL_0"}, {"LABEL_0": 0}
    config.pad_token_id = ranker.tokenizer.pad_token_id  # the classifier reads the last non-pad token
    config.tie_word_embeddings = False
    seq: nn.Module = AutoModelForSequenceClassification.from_config(config, dtype=causal_lm.dtype)
    if type(seq).__name__ != arch:
        raise ValueError(f"transformers has no {arch} for this model type ({config.model_type})")
    base: Callable = getattr(seq, seq.base_model_prefix)
    missing, unexpected = base.load_state_dict(causal_lm.get_decoder().state_dict(), strict=False)
    if missing or unexpected:
        raise RuntimeError(f"decoder weights do not fit {arch}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    if getattr(seq.score, "bias", None) is not None:
        raise ValueError(f"{arch}.score has a bias; the conversion needs a bias-free score row")
    with torch.no_grad():
        seq.score.weight.copy_(row.to(seq.score.weight.dtype))
    tokenizer = copy.deepcopy(ranker.tokenizer)
    tokenizer.padding_side = "left"
    tokenizer.chat_template = pair_chat_template(ranker.yes_no_template, tokenizer.bos_token)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seq.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    meta = {"template": ranker.yes_no_template.to_dict(), "score": "w_true" if ranker.false_id is None
            or ranker.yes_no_template.scoring == "logit" else "w_true - w_false"}  # fmt: skip
    (out / "llmrank_yes_no.json").write_text(json.dumps(meta, indent=2))
    return Path(out_dir)
