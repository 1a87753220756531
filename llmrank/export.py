"""Export a trained ranker to the layouts other tools load (``llmrank export``, ``llmrank push``).

Formats (``--format``):

* ``sentence-transformers`` -- cross-encoders: a standard ``*ForSequenceClassification`` folder
  (``num_labels=1``, tokenizer at the root) written by sentence-transformers' own
  ``CrossEncoder.save``, with the activation set to ``Identity`` so ``CrossEncoder(DIR).predict``
  returns llmrank's raw scores (sentence-transformers applies a Sigmoid by default for one label).
  The folder also loads with ``AutoModelForSequenceClassification.from_pretrained(DIR)``.
* ``transformers`` -- the stock transformers class of the family: ``*ForSequenceClassification``
  (cross-encoders), ``T5ForConditionalGeneration`` (monoT5 / RankT5: what pygaggle and rank_llm
  load), ``*ForCausalLM`` with its chat template (FIRST: what rank_llm loads).
* ``vllm`` -- what vLLM serves: the same folders (sequence classification for ``/score``,
  the causal LM for FIRST's first-token logprobs).
* ``llmrank`` -- llmrank's own layout (``llmrank_config.json`` + ``backbone/`` ...).

A LoRA checkpoint is merged into full weights; with ``adapter=True`` a cross-encoder is written
instead as a standard PEFT ``SEQ_CLS`` adapter whose score head sits in ``modules_to_save``, which
``PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(base, num_labels=1), DIR)``
loads.

Exports are exact or refused. llmrank's cross-encoder head is ``Linear(hidden, 1)`` on a pooled
state (``cls`` / ``last`` / ``mean`` / ``pooler``); a stock head only reproduces some of these:

* BERT-like ``*ForSequenceClassification`` = ``classifier(pooler(h_CLS))`` with
  ``pooler(x) = tanh(W x + b)``: exactly llmrank's ``pooler`` pooling (``classifier`` <- score head).
* RoBERTa / XLM-R = ``out_proj(tanh(dense(h_CLS)))``: also llmrank's ``pooler`` pooling, with
  ``dense`` <- the backbone's pooler dense layer and ``out_proj`` <- the score head.
* Decoder ``*ForSequenceClassification`` (Llama, Mistral, Qwen...) = ``score(h_last non-pad)``
  without bias: llmrank's ``last`` pooling (RankLLaMA), exact when the score head's bias is 0;
  a non-zero bias is refused unless ``drop_score_bias`` (every score then shifts by ``-bias``;
  orderings are unchanged).
* DeBERTa(-v2/v3) = ``classifier(act(dense(h_CLS)))`` (``ContextPooler``): llmrank's ``cls``
  pooling, with ``pooler_hidden_act: linear`` and ``dense`` = identity.
* Other ``cls`` and all ``mean`` pooling: no stock head feeds the raw ``[CLS]`` state (BERT's
  applies the tanh pooler, RoBERTa/ELECTRA a dense layer and activation) or the mean to a
  linear layer: refused with the option to change.

Every cross-encoder export is checked before it is written: the exported model scores a few
probe pairs from llmrank's own input ids and must match llmrank's scores (float32: 1e-5
relative), else :class:`ExportError`.

Exporters live in :data:`EXPORTERS`, a table ``{(family, format): function(ranker, out)}``, so
other families add theirs with one entry. Output is built in a temporary folder next to ``out``
and renamed into place; an existing non-empty ``out`` is refused unless ``overwrite``.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from llmrank.checkpoint_layout import EXPORT_META
from llmrank.data.record import Doc, RankingList
from llmrank.export_yes_no import export_causal_lm, export_vllm_seq_cls
from llmrank.io_utils import replace_dir
from llmrank.loading import load_ranker
from llmrank.merge import merge_ranker
from llmrank.model_card import write_model_card
from llmrank.rankers.base import CONFIG_NAME, Ranker, _version, eval_mode

logger = logging.getLogger(__name__)

FORMATS = ("sentence-transformers", "transformers", "vllm", "llmrank")
#: side files of a checkpoint copied into an export (recipe, evaluation results)
SIDE_FILE_GLOBS = ("recipe.yaml", "eval_results*.json", "beir_results*.json", "trec_dl_results*.json", "evaluation*.json")

#: relative tolerance of the export check for float32 weights (half precision: see _tolerance)
FLOAT32_RTOL = 1e-5

Exporter = Callable[..., None]


class ExportError(ValueError):
    """An export that cannot be exact (unsupported pooling/format) or a bad request; one line."""


# ----------------------------------------------------------------------------------- helpers
def _probe_lists() -> list[RankingList]:
    """Pairs the exported model must score like llmrank (short: no truncation applies)."""
    docs = [
        Doc("p1", "the virus protein binds the cell", title="Virus protein"),
        Doc("p2", "a river runs through the city in the north of the country"),
        Doc("p3", "solar energy"),
    ]
    return [
        RankingList(qid="q1", query="what is the protein of the virus?", docs=docs, labels=[0.0] * 3),
        RankingList(qid="q2", query="neural ranking", docs=docs[:2], labels=[0.0] * 2),
    ]


def _tolerance(dtype: torch.dtype) -> float:
    return FLOAT32_RTOL if dtype == torch.float32 else 2e-2


def _check_close(expected: torch.Tensor, got: torch.Tensor, what: str, dtype: torch.dtype) -> None:
    expected, got = expected.float().cpu(), got.float().cpu()
    scale = max(1.0, float(expected.abs().max()))
    err = float((expected - got).abs().max()) / scale
    if err > _tolerance(dtype):
        raise ExportError(
            f"{what} does not reproduce llmrank's scores (max relative difference {err:.2e}); "
            "export refused -- use --format llmrank"
        )


def _base_model(model: nn.Module) -> nn.Module:
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def _dtype(model: nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


# ----------------------------------------------------------------------------- cross-encoders
def _pad_for_decoder(tokenizer: Any) -> int:
    """A pad id that is not eos: the stock decoder head scores the rightmost non-pad token, and
    llmrank's decoder input ends in eos, so pad == eos would move the score to the wrong token."""
    eos = tokenizer.eos_token_id
    for cand in (tokenizer.pad_token_id, tokenizer.unk_token_id):
        if cand is not None and cand != eos:
            return int(cand)
    raise ExportError(
        "the tokenizer has no pad (or unk) token distinct from eos, which the stock decoder "
        "sequence-classification head needs; add a pad token to the tokenizer before training"
    )


def _head_copies(model: nn.Module, ranker: Any, drop_score_bias: bool) -> tuple[str, list[tuple[nn.Linear, nn.Linear]]]:
    """``(head module name, [(target Linear, source Linear)])`` mapping llmrank's head onto the
    stock head of ``model``; :class:`ExportError` when no exact mapping exists."""
    arch = type(model).__name__
    pooling = ranker.pooling
    head = ranker.score_head
    backbone = _base_model(ranker.backbone)
    classifier = getattr(model, "classifier", None)
    if ranker.is_decoder:
        score = getattr(model, "score", None)
        if pooling != "last" or not isinstance(score, nn.Linear):
            raise ExportError(f"pooling {pooling!r} on a decoder has no stock {arch} equivalent (it scores the last token)")
        bias = float(head.bias.detach().abs().max()) if head.bias is not None else 0.0
        if score.bias is None and bias != 0.0 and not drop_score_bias:
            raise ExportError(
                f"the score head has a bias ({float(head.bias.detach()[0]):.6g}) but {arch}.score has none; "
                "pass --drop-score-bias to export without it (every score shifts by -bias, orderings unchanged)"
            )
        return "score", [(score, head)]
    if pooling == "pooler":
        pooler = getattr(backbone, "pooler", None)
        if isinstance(classifier, nn.Linear) and getattr(model.base_model, "pooler", None) is not None:
            return "classifier", [(classifier, head)]  # BERT: classifier(tanh(dense(h_CLS)))
        dense, out_proj = getattr(classifier, "dense", None), getattr(classifier, "out_proj", None)
        pooler_dense = getattr(pooler, "dense", None)
        if isinstance(dense, nn.Linear) and isinstance(out_proj, nn.Linear) and isinstance(pooler_dense, nn.Linear):
            # RoBERTa / XLM-R: out_proj(tanh(dense(h_CLS))) -- the same function with the pooler's weights
            return "classifier", [(dense, pooler_dense), (out_proj, head)]
    pooler_dense = getattr(getattr(model, "pooler", None), "dense", None)
    if pooling == "cls" and isinstance(classifier, nn.Linear) and isinstance(pooler_dense, nn.Linear) and (
        getattr(model.config, "pooler_hidden_act", None) == "linear"
    ):
        # DeBERTa: classifier(act(dense(h_CLS))) with act = identity and dense = I is the raw [CLS] state
        identity = nn.Linear(pooler_dense.in_features, pooler_dense.out_features)
        with torch.no_grad():
            identity.weight.copy_(torch.eye(pooler_dense.out_features, pooler_dense.in_features))
            identity.bias.zero_()
        return "classifier", [(pooler_dense, identity), (classifier, head)]
    if pooling in ("cls", "mean"):
        what = "transforms the [CLS] state before its classifier" if pooling == "cls" else "reads the first token, not the mean"
        raise ExportError(
            f"pooling {pooling!r} has no stock {arch} equivalent ({arch}'s head {what}); "
            "train with options.pooling: pooler (BERT/RoBERTa-like backbones) to export, or use --format llmrank"
        )
    raise ExportError(f"pooling {pooling!r} on {arch} cannot be exported exactly; use --format llmrank")


def _sequence_classification_config(ranker: Any) -> tuple[Any, Any]:
    """(config with one label, tokenizer copy) for the stock sequence-classification class."""
    config = copy.deepcopy(_base_model(ranker.backbone).config)
    if ranker.pooling == "cls" and hasattr(config, "pooler_hidden_act"):
        # DeBERTa's ContextPooler is act(dense(h_CLS)): a linear act + identity dense give raw [CLS]
        config.pooler_hidden_act = "linear"
        config.pooler_hidden_size = config.hidden_size
    config.num_labels = 1
    config.id2label, config.label2id = {0: "LABEL_0"}, {"LABEL_0": 0}
    tokenizer = copy.deepcopy(ranker.tokenizer)
    if ranker.is_decoder:
        pad = _pad_for_decoder(tokenizer)
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(pad)
        config.pad_token_id = pad
        tokenizer.padding_side = "right"
    return config, tokenizer


def _probe_inputs(ranker: Any, pad_id: int | None) -> dict[str, torch.Tensor]:
    inputs = ranker.pad_pairs(ranker.list_pairs(_probe_lists()))
    if pad_id is not None:  # the stock decoder head finds the last token by the pad id
        inputs["input_ids"] = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, pad_id)
    return {k: v.to(ranker.device) for k, v in inputs.items()}


@torch.no_grad()
def _check_scores(ranker: Any, model: nn.Module, pad_id: int | None, what: str, shift: float = 0.0) -> None:
    model.eval()
    with eval_mode(ranker):
        inputs = _probe_inputs(ranker, pad_id)
        expected = ranker.score_pairs(**inputs).float() - shift
        got = model(**inputs).logits[:, 0]
    _check_close(expected, got, what, _dtype(model))


def build_sequence_classifier(ranker: Any, *, drop_score_bias: bool = False) -> tuple[nn.Module, Any]:
    """A stock ``AutoModelForSequenceClassification`` (one label) computing the cross-encoder's
    scores, and its tokenizer; checked on probe pairs. The ranker must hold full weights."""
    from transformers import AutoModelForSequenceClassification

    if ranker.is_peft:
        raise ExportError("merge the LoRA adapter first (llmrank.merge.merge_ranker) or export with --adapter")
    config, tokenizer = _sequence_classification_config(ranker)
    backbone = ranker.backbone
    try:
        model = AutoModelForSequenceClassification.from_config(config, dtype=_dtype(backbone))
    except ValueError as exc:
        raise ExportError(f"{config.model_type} has no transformers sequence-classification class: {exc}") from None
    head_name, copies = _head_copies(model, ranker, drop_score_bias)
    base = model.base_model
    missing, unexpected = base.load_state_dict(backbone.state_dict(), strict=False)
    used_pooler = any(src is getattr(getattr(backbone, "pooler", None), "dense", None) for _, src in copies)
    unexpected = [k for k in unexpected if not (used_pooler and k.startswith("pooler."))]
    missing = [k for k in missing if k not in _tied(base)]
    if missing or unexpected:
        raise ExportError(f"backbone weights do not fit {type(model).__name__}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    with torch.no_grad():
        for target, source in copies:
            target.weight.copy_(source.weight.to(target.weight.dtype))
            if target.bias is not None:
                target.bias.copy_(source.bias.to(target.bias.dtype))
    model.to(ranker.device)
    pad = config.pad_token_id if ranker.is_decoder else None
    _check_scores(ranker, model, pad, type(model).__name__, _dropped_bias(ranker, copies))
    return model, tokenizer


def _dropped_bias(ranker: Any, copies: list[tuple[nn.Linear, nn.Linear]]) -> float:
    """The score-head bias a bias-free stock head leaves out (scores shift by minus it)."""
    for target, source in copies:
        if source is ranker.score_head and target.bias is None and source.bias is not None:
            return float(source.bias.detach()[0])
    return 0.0


def _tied(model: nn.Module) -> set[str]:
    keys = getattr(model, "_tied_weights_keys", None) or []
    return set(keys if not isinstance(keys, dict) else list(keys))


def export_cross_encoder_transformers(ranker: Any, out: Path, *, drop_score_bias: bool = False) -> None:
    """Standard ``*ForSequenceClassification`` folder (safetensors) + tokenizer at the root."""
    model, tokenizer = build_sequence_classifier(ranker, drop_score_bias=drop_score_bias)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def export_cross_encoder_sentence_transformers(ranker: Any, out: Path) -> None:
    """The transformers folder, saved by sentence-transformers' ``CrossEncoder`` with an Identity
    activation (raw scores) and llmrank's ``max_length``."""
    from sentence_transformers import CrossEncoder

    if ranker.is_decoder:
        raise ExportError(
            "a decoder cross-encoder's input is 'query: {q} document: {d}' + eos, which CrossEncoder's "
            "pair tokenization does not build; use --format transformers or vllm"
        )
    model, tokenizer = build_sequence_classifier(ranker)
    staging = out / ".tmp-hf"
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    ce = CrossEncoder(
        str(staging), activation_fn=nn.Identity(), max_length=ranker.settings.max_length,
        device="cpu", local_files_only=True,
    )
    ce.save(str(out))
    shutil.rmtree(staging)
    # sentence-transformers < 6 read the activation from config.json (v6 from config_sentence_transformers.json)
    cfg_path = out / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["sentence_transformers"] = {"activation_fn": "torch.nn.modules.linear.Identity"}
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def export_cross_encoder_adapter(ranker: Any, out: Path, *, drop_score_bias: bool = False) -> None:
    """A standard PEFT ``SEQ_CLS`` LoRA adapter on the base model's sequence-classification class,
    the score head in ``modules_to_save``; checked on probe pairs."""
    from peft import LoraConfig, TaskType, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
    from transformers import AutoModelForSequenceClassification

    if not ranker.is_peft:
        raise ExportError("--adapter needs a LoRA checkpoint; this one holds full weights")
    source_cfg = ranker.backbone.peft_config[ranker.backbone.active_adapter]
    config, tokenizer = _sequence_classification_config(ranker)
    base_path = ranker.settings.model_name_or_path
    with _quiet_transformers():  # its "classifier newly initialized" report: we set the head next
        model = AutoModelForSequenceClassification.from_pretrained(
            base_path, config=config, dtype=_dtype(ranker.backbone), trust_remote_code=ranker.settings.trust_remote_code
        )
    head_name, copies = _head_copies(model, ranker, drop_score_bias)
    if any(src is not ranker.score_head for _, src in copies):
        raise ExportError("--adapter supports BERT-like and decoder heads; export merged weights for this backbone")
    with torch.no_grad():
        for target, source in copies:
            target.weight.copy_(source.weight.to(target.weight.dtype))
            if target.bias is not None:
                target.bias.copy_(source.bias.to(target.bias.dtype))
    # the same wrapped layers, named inside the sequence-classification model
    prefix = model.base_model_prefix
    lora_layers = sorted({n.rsplit(".lora_A", 1)[0] for n, _ in _base_model(ranker.backbone).named_modules() if n.endswith(".lora_A")})
    target_modules = [f"{prefix}.{n}" for n in lora_layers]
    peft_cfg = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=source_cfg.r,
        lora_alpha=source_cfg.lora_alpha,
        lora_dropout=source_cfg.lora_dropout,
        use_rslora=source_cfg.use_rslora,
        target_modules=target_modules,
        modules_to_save=[head_name],
    )
    wrapped = get_peft_model(model, peft_cfg).to(ranker.device)
    state = get_peft_model_state_dict(ranker.backbone)
    renamed = {k.replace("base_model.model.", f"base_model.model.{prefix}.", 1): v for k, v in state.items()}
    full = get_peft_model_state_dict(wrapped)  # LoRA (fresh) + the head copy in modules_to_save (ours)
    unknown = sorted(set(renamed) - set(full))
    fresh = sorted(k for k in full if "lora_" in k and k not in renamed)
    if unknown or fresh:
        raise ExportError(f"LoRA weights do not map onto {type(model).__name__}: {(unknown + fresh)[:3]}")
    set_peft_model_state_dict(wrapped, {**full, **renamed})
    _check_scores(
        ranker, wrapped, config.pad_token_id if ranker.is_decoder else None,
        f"PEFT adapter on {type(model).__name__}", _dropped_bias(ranker, copies),
    )
    wrapped.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


# ------------------------------------------------------------------------- seq2seq and FIRST
def export_seq2seq_transformers(ranker: Any, out: Path) -> None:
    """monoT5 / RankT5-EncDec: the stock ``T5ForConditionalGeneration`` folder + tokenizer."""
    if ranker.is_peft:
        raise ExportError("merge the LoRA adapter first")
    if ranker.mode == "rankt5-enc":
        raise ExportError(
            "seq2seq mode 'rankt5-enc' scores with a head outside T5 (no stock transformers class); "
            "use --format llmrank"
        )
    ranker.backbone.save_pretrained(out, safe_serialization=True)
    ranker.tokenizer.save_pretrained(out)


def export_causal_lm_first(ranker: Any, out: Path) -> None:
    """FIRST: the stock ``*ForCausalLM`` folder + tokenizer with its chat template (rank_llm loads it)."""
    if ranker.is_peft:
        raise ExportError("merge the LoRA adapter first")
    if not getattr(ranker.tokenizer, "chat_template", None):
        raise ExportError("the FIRST tokenizer has no chat template; rank_llm needs one to build its prompt")
    ranker.backbone.save_pretrained(out, safe_serialization=True)
    ranker.tokenizer.save_pretrained(out)


#: ``{(family, format): exporter(ranker, out)}``; exporters write into an empty folder ``out``.
EXPORTERS: dict[tuple[str, str], Exporter] = {
    ("cross-encoder", "sentence-transformers"): export_cross_encoder_sentence_transformers,
    ("cross-encoder", "transformers"): export_cross_encoder_transformers,
    ("cross-encoder", "vllm"): export_cross_encoder_transformers,
    ("seq2seq", "transformers"): export_seq2seq_transformers,
    ("first", "transformers"): export_causal_lm_first,
    ("first", "vllm"): export_causal_lm_first,
    # yes/no LLM rerankers: the stock causal LM (+ chat template, sentence-transformers' CrossEncoder
    # files) and vLLM's single-logit sequence-classification conversion
    ("yes-no", "transformers"): export_causal_lm,
    ("yes-no", "sentence-transformers"): export_causal_lm,
    ("yes-no", "vllm"): export_vllm_seq_cls,
}
#: ``{family: exporter}`` of standard PEFT adapters (``adapter=True``), any non-llmrank format.
ADAPTER_EXPORTERS: dict[str, Exporter] = {"cross-encoder": export_cross_encoder_adapter}

#: the format ``llmrank push`` uses by default, per family (else the first one in EXPORTERS)
PREFERRED_FORMATS = {"cross-encoder": "sentence-transformers", "yes-no": "transformers"}


def default_format(family: str) -> str | None:
    """The standard format a family is pushed in by default; None if it has none."""
    preferred = PREFERRED_FORMATS.get(family)
    if preferred and (family, preferred) in EXPORTERS:
        return preferred
    return next((fmt for fam, fmt in EXPORTERS if fam == family), None)


def supported_formats(family: str) -> list[str]:
    return [fmt for fam, fmt in EXPORTERS if fam == family] + ["llmrank"]


# ----------------------------------------------------------------------------------- driver
def _run_exporter(fn: Exporter, ranker: Ranker, out: Path, options: dict[str, Any]) -> None:
    options = {k: v for k, v in options.items() if v}
    params = inspect.signature(fn).parameters
    for key in options:
        if key not in params:
            raise ExportError(f"--{key.replace('_', '-')} does not apply to a {ranker.family} export")
    fn(ranker, out, **options)


def _copy_side_files(source: Path, staged: Path) -> None:
    for pattern in SIDE_FILE_GLOBS:
        for file in sorted(source.glob(pattern)):
            if file.is_file():
                shutil.copy2(file, staged / file.name)


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"--out {out} exists and is not empty; choose another folder or pass --overwrite")


def export_ranker(
    ranker: Ranker,
    out: str | os.PathLike,
    fmt: str,
    *,
    adapter: bool = False,
    overwrite: bool = False,
    drop_score_bias: bool = False,
    source: str | os.PathLike | None = None,
    write_card: bool = True,
) -> Path:
    """Write ``ranker`` to ``out`` in format ``fmt`` (see the module docstring); returns ``out``.

    A LoRA ranker is merged (in place) unless ``adapter``. ``source`` (the checkpoint folder) is
    recorded in ``llmrank_export.json`` and its recipe / evaluation files are copied along.
    """
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    family = ranker.family
    out = Path(out)
    _check_out(out, overwrite)
    if adapter and not ranker.is_peft:
        raise ExportError("--adapter needs a LoRA checkpoint; this one holds full weights")
    if fmt == "llmrank":
        if drop_score_bias:
            raise ExportError("--drop-score-bias does not apply to --format llmrank")
        fn: Exporter | None = None
    elif adapter:
        fn = ADAPTER_EXPORTERS.get(family)
        if fn is None:
            raise ExportError(f"--adapter export is not available for family {family!r}; export merged weights")
    else:
        fn = EXPORTERS.get((family, fmt))
        if fn is None:
            raise ExportError(
                f"family {family!r} cannot be exported as {fmt!r}; formats for it: {', '.join(supported_formats(family))}"
            )
    lora = ranker.settings.lora
    merged = False
    if ranker.is_peft and not adapter:
        merge_ranker(ranker)  # fold W + (alpha/r)·B·A into the weights
        merged = True

    out.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=".tmp-export-", dir=out.parent))
    try:
        if fn is None:
            shutil.rmtree(staged)
            ranker.save_pretrained(staged)
        else:
            _run_exporter(fn, ranker, staged, {"drop_score_bias": drop_score_bias})
        if source is not None:
            _copy_side_files(Path(source), staged)
        meta = {
            "format": fmt,
            "family": family,
            "adapter": bool(adapter),
            "merged_lora": ({"r": lora.r, "alpha": lora.alpha, "target_modules": lora.target_modules} if merged and lora else None),
            "settings": ranker.settings.to_dict(),
            "source": str(source) if source is not None else None,
            "llmrank_version": _version(),
        }
        if fn is not None:
            (staged / EXPORT_META).write_text(json.dumps(meta, indent=2) + "\n")
        if write_card:
            write_model_card(staged, model_name=out.name, load_id=str(out))
        replace_dir(staged, out)
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
    return out


def export_checkpoint(
    ckpt: str | os.PathLike,
    out: str | os.PathLike,
    fmt: str,
    *,
    adapter: bool = False,
    overwrite: bool = False,
    drop_score_bias: bool = False,
    write_card: bool = True,
) -> Path:
    """Load the llmrank checkpoint ``ckpt`` and export it (:func:`export_ranker`)."""
    src = Path(ckpt)
    if not (src / CONFIG_NAME).is_file():
        raise ExportError(f"{ckpt} has no {CONFIG_NAME}: give an llmrank checkpoint folder to --model")
    if Path(out).resolve() == src.resolve():
        raise ExportError("--out must differ from --model")
    _check_out(Path(out), overwrite)  # before the (slow) load
    ranker = load_ranker(src)
    return export_ranker(
        ranker, out, fmt, adapter=adapter, overwrite=overwrite, drop_score_bias=drop_score_bias,
        source=src, write_card=write_card,
    )
