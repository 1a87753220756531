"""Pointwise cross-encoders: an encoder or a decoder backbone with a linear score head.

* Encoder backbones (BERT, ELECTRA, MiniLM, ...): ``[CLS] query [SEP] document [SEP]``, score =
  ``Linear(hidden, 1)`` on the ``[CLS]`` state -- the BERT reranker of Nogueira & Cho (2019) and
  the sentence-transformers ``CrossEncoder``. An existing ``*ForSequenceClassification``
  checkpoint with one label (e.g. ``cross-encoder/ms-marco-MiniLM-L6-v2``) keeps its pooler and
  starts from its classifier (``pooling: pooler``).
* Decoder backbones (Llama, Mistral, Qwen, ...), RankLLaMA style (Ma et al., "Fine-Tuning LLaMA for
  Multi-Stage Text Retrieval", 2023): ``<s>query: {q} document: {d}</s>``, score = ``Linear(hidden, 1)``
  on the last real token (the appended eos).

Options (``RankerSettings.options``): ``pooling`` = ``auto`` (default: ``last`` for decoder
models, ``pooler`` for encoders that have one -- the stock sequence-classification head, which
``llmrank export`` maps exactly -- else ``cls``) | ``cls`` |
``last`` | ``mean`` | ``pooler``; ``query_prefix`` / ``doc_prefix`` (decoders; default ``query:`` /
``document:``); ``first_token_last_layer`` (default true): with ``cls``/``pooler`` pooling on a
BERT-style encoder, the last layer computes [CLS] only (same scores, ~1/num_layers less compute;
:mod:`llmrank.rankers.first_token_layer`); ``train_chunk_tokens``: in training, a batch's pairs are sorted by length and
run through the backbone in chunks of at most this many padded tokens (pairs x padded length),
each padded only to its own longest pair -- the same scores and gradients as one call padded to
the batch's longest pair, with less compute spent on padding. Default: 1024 on CPU, off on
accelerators, which need large calls to stay busy (set e.g. 16384 there to try it); ``0`` turns
it off.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from llmrank.rankers.base import RankerSettings, float32_head, from_pretrained_kwargs, register_family
from llmrank.rankers.first_token_layer import first_token_last_layer
from llmrank.rankers.tokenize import PairTemplate, PointwiseRanker, encoder_pair_template

logger = logging.getLogger(__name__)

POOLINGS = ("auto", "cls", "last", "mean", "pooler")

#: LoRA targets by backbone kind (PEFT matches module-name suffixes).
ENCODER_LORA_TARGETS = ["query", "key", "value", "dense"]
DECODER_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
_ENCODER_LORA_BY_TYPE = {
    "deberta-v2": ["query_proj", "key_proj", "value_proj", "dense"],
    "distilbert": ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"],
    "modernbert": ["Wqkv", "Wo", "Wi"],
}


def is_decoder_config(config: Any) -> bool:
    """True for causal-LM (decoder-only) backbones, False for bidirectional encoders."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    if getattr(config, "is_encoder_decoder", False):
        raise ValueError(f"{config.model_type} is an encoder-decoder model: use `family: seq2seq` (RankT5 / monoT5)")
    if config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return False
    return bool(getattr(config, "is_decoder", False)) or config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES


def _single_label_classifier(name_or_path: str, config: Any) -> dict[str, torch.Tensor] | None:
    """``classifier.weight [1, hidden]`` / ``classifier.bias`` of a one-label sequence-classification
    checkpoint, or None when the checkpoint has no such head."""
    archs = getattr(config, "architectures", None) or []
    if not any(a.endswith("ForSequenceClassification") for a in archs) or getattr(config, "num_labels", 2) != 1:
        return None
    from safetensors import safe_open
    from transformers.utils import cached_file

    try:
        file = cached_file(name_or_path, "model.safetensors", _raise_exceptions_for_missing_entries=False)
    except OSError:
        file = None
    if file is None:
        return None
    with safe_open(file, framework="pt") as f:
        keys = set(f.keys())
        if "classifier.weight" not in keys or tuple(f.get_slice("classifier.weight").get_shape())[0] != 1:
            return None
        out = {"weight": f.get_tensor("classifier.weight")}
        if "classifier.bias" in keys:
            out["bias"] = f.get_tensor("classifier.bias")
    return out


@register_family("cross-encoder")
class CrossEncoderRanker(PointwiseRanker):
    """Encoder ([CLS]) or decoder (last token, RankLLaMA) backbone + ``Linear(hidden, 1)`` score head."""

    default_lora_targets = ENCODER_LORA_TARGETS
    default_train_chunk_tokens = 1024
    citation = "@article{nogueira2019passage, title = {Passage Re-ranking with BERT}, author = {Nogueira, Rodrigo and Cho, Kyunghyun}, journal = {arXiv:1901.04085}, year = {2019}}\n@inproceedings{ma2024rankllama, title = {Fine-Tuning LLaMA for Multi-Stage Text Retrieval}, author = {Ma, Xueguang and Wang, Liang and Yang, Nan and Wei, Furu and Lin, Jimmy}, booktitle = {Proceedings of SIGIR}, year = {2024}, note = {arXiv:2310.08319}}"  # monoBERT ([CLS]), RankLLaMA (last token)

    def __init__(self, backbone: nn.Module, tokenizer: Any, settings: RankerSettings) -> None:
        super().__init__(backbone, tokenizer, settings)
        config = _base_config(backbone)
        self.is_decoder = is_decoder_config(config)
        self.pooling = self.resolve_pooling(settings.options.get("pooling", "auto"), self.is_decoder, backbone)
        settings.options["pooling"] = self.pooling  # saved resolved, so a reload builds the same head
        # [CLS]/pooler scoring reads one position of the last layer: compute only that one (exact)
        self.first_token_only = False
        if self.pooling in ("cls", "pooler") and settings.options.get("first_token_last_layer", True):
            self.first_token_only = first_token_last_layer(_base_model(backbone))
        hidden = getattr(config, "hidden_size", None) or config.d_model
        # the head stays float32 whatever the backbone dtype, and runs so under autocast (float32_head)
        self.score_head = nn.Linear(hidden, 1)
        nn.init.normal_(self.score_head.weight, std=getattr(config, "initializer_range", 0.02))
        nn.init.zeros_(self.score_head.bias)
        if self.is_decoder:
            opts = settings.options
            bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
            if tokenizer.eos_token_id is None:
                raise ValueError("a decoder cross-encoder needs a tokenizer with an eos token (scored at the end)")
            q_prefix = tokenizer(opts.get("query_prefix", "query:"), add_special_tokens=False)["input_ids"]
            d_prefix = tokenizer(opts.get("doc_prefix", "document:"), add_special_tokens=False)["input_ids"]
            self.template = PairTemplate((*bos, *q_prefix), tuple(d_prefix), (tokenizer.eos_token_id,), False)
        else:
            self.template = encoder_pair_template(tokenizer)

    @staticmethod
    def resolve_pooling(pooling: str, is_decoder: bool, backbone: nn.Module) -> str:
        if pooling not in POOLINGS:
            raise ValueError(f"pooling {pooling!r} is not one of {', '.join(POOLINGS)}")
        if pooling == "auto":
            if is_decoder:
                return "last"
            return "pooler" if getattr(_base_model(backbone), "pooler", None) is not None else "cls"
        if pooling == "pooler" and getattr(_base_model(backbone), "pooler", None) is None:
            raise ValueError("pooling 'pooler' needs a backbone with a pooler layer (BERT-like)")
        return pooling

    # ----------------------------------------------------------------------------- building
    @classmethod
    def load_backbone(cls, settings: RankerSettings) -> tuple[nn.Module, Any]:
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        path = settings.model_name_or_path
        config = AutoConfig.from_pretrained(path, **settings.hub_kwargs())
        is_decoder_config(config)  # rejects encoder-decoder models with the fix
        pooling = settings.options.get("pooling", "auto")
        # `auto` on an encoder with a pooler scores like the stock *ForSequenceClassification head
        # (classifier on tanh(pooler(CLS))), so a trained model exports exactly to transformers and
        # sentence-transformers' CrossEncoder; `cls` drops the pooler instead
        keep_pooler = pooling == "pooler" or (pooling == "auto" and not is_decoder_config(config))
        kwargs = from_pretrained_kwargs(settings)
        if not keep_pooler and _accepts_pooling_flag(config):
            # [CLS]/last/mean pooling never reads the pooler: don't create it, so it is neither
            # trained (no gradient would break DDP), saved, nor reported missing on reload
            kwargs["add_pooling_layer"] = False
        if "add_pooling_layer" in kwargs:
            backbone = _load_without_pooler(path, kwargs)
        else:
            backbone = AutoModel.from_pretrained(path, **kwargs)
        if not keep_pooler and getattr(backbone, "pooler", None) is not None:
            backbone.pooler = None
        tokenizer = AutoTokenizer.from_pretrained(
            settings.tokenizer_name_or_path or path, **settings.tokenizer_kwargs()
        )
        return backbone, tokenizer

    @classmethod
    def build(cls, settings: RankerSettings) -> CrossEncoderRanker:
        from transformers import AutoConfig

        ranker = super().build(settings)
        assert isinstance(ranker, CrossEncoderRanker)
        config = AutoConfig.from_pretrained(settings.model_name_or_path, **settings.hub_kwargs())
        head = _single_label_classifier(settings.model_name_or_path, config)
        if ranker.pooling == "pooler" and head is not None:
            with torch.no_grad():
                ranker.score_head.weight.copy_(head["weight"].float())
                if "bias" in head:
                    ranker.score_head.bias.copy_(head["bias"].float())
        elif _is_sequence_classifier(config):
            # a published reranker whose head this family cannot take over (RoBERTa/XLM-R
            # classifier.dense + out_proj, Llama `score`, ...): say so instead of dropping it quietly
            logger.warning(
                "%s is a %s whose score head (%s) family 'cross-encoder' does not use: training starts "
                "from a new, randomly initialised head; use `family: seq-cls` to keep the published head",
                settings.model_name_or_path,
                ", ".join(config.architectures),
                _head_keys(settings.model_name_or_path) or "unknown layout",
            )
        return ranker

    def lora_targets(self) -> list[str]:
        if self.is_decoder:
            return list(DECODER_LORA_TARGETS)
        return list(_ENCODER_LORA_BY_TYPE.get(_base_config(self.backbone).model_type, ENCODER_LORA_TARGETS))

    # ----------------------------------------------------------------------------- scoring
    def score_pairs(self, **inputs: torch.Tensor) -> torch.Tensor:
        attention_mask = inputs["attention_mask"]
        out = self.backbone(**inputs, return_dict=True)
        if self.pooling == "pooler":
            pooled = out.pooler_output
        else:
            states = out.last_hidden_state
            if self.pooling == "cls":
                pooled = states[:, 0]
            elif self.pooling == "last":  # right padding: the last real token is at length - 1
                last = attention_mask.sum(dim=1) - 1
                pooled = states[torch.arange(states.shape[0], device=states.device), last]
            else:  # mean
                m = attention_mask.unsqueeze(-1).to(states.dtype)
                pooled = (states * m).sum(1) / m.sum(1).clamp_min(1)
        return float32_head(self.score_head, pooled)


def _is_sequence_classifier(config: Any) -> bool:
    archs = getattr(config, "architectures", None) or []
    return any(str(a).endswith("ForSequenceClassification") for a in archs)


def _head_keys(name_or_path: str) -> str:
    """Names of the head weights (``classifier.*``, ``score.*``) in a local checkpoint's safetensors."""
    import json
    from pathlib import Path

    from safetensors import safe_open

    folder = Path(name_or_path)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        keys = list(json.loads(index.read_text())["weight_map"])
    elif (folder / "model.safetensors").is_file():
        with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
            keys = list(f.keys())
    else:
        return ""
    return ", ".join(k for k in keys if k.startswith(("classifier", "score", "head.")))


def _load_without_pooler(path: str, kwargs: dict[str, Any]) -> nn.Module:
    """``AutoModel.from_pretrained`` without the pooler: the pooler weights a base checkpoint carries
    are expected to go unused, so transformers' load report (which would list them) is replaced by
    one warning line for anything else that does not match."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        backbone, info = AutoModel.from_pretrained(path, output_loading_info=True, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
    unexpected = [k for k in info.get("unexpected_keys", []) if not k.startswith("pooler.")]
    missing = list(info.get("missing_keys", []))
    if missing or unexpected:
        logger.warning("%s: weights missing %s, unused %s", path, missing[:6], unexpected[:6])
    return backbone


def _accepts_pooling_flag(config: Any) -> bool:
    """Whether the base-model class of ``config`` takes ``add_pooling_layer`` (BERT, RoBERTa, XLM-R, ...)."""
    import inspect

    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    try:
        model_class = MODEL_MAPPING[type(config)]
    except KeyError:
        return False
    return "add_pooling_layer" in inspect.signature(model_class.__init__).parameters


def _base_model(backbone: nn.Module) -> nn.Module:
    """The transformers model under a PEFT wrapper (or the backbone itself)."""
    get_base = getattr(backbone, "get_base_model", None)
    return get_base() if callable(get_base) else backbone


def _base_config(backbone: nn.Module) -> Any:
    return _base_model(backbone).config
