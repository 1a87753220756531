"""Published rerankers as they are distributed: recognise the format, score with the authors' head.

Two things live here:

* :class:`SequenceClassificationRanker` (``family: seq-cls``): any transformers
  ``*ForSequenceClassification`` checkpoint with one label, scored by *its own* head, so every
  published head layout is kept exactly -- BERT/ELECTRA/DeBERTa ``classifier`` (BERT's on
  ``tanh(pooler(CLS))``, as ``cross-encoder/ms-marco-MiniLM-L6-v2`` needs), RoBERTa/XLM-R
  ``classifier.dense`` + ``classifier.out_proj`` (``BAAI/bge-reranker-v2-m3``), ModernBERT's head,
  and the bias-free ``score`` row of Llama/Qwen/Mistral (RankLLaMA, Ma et al. 2023). Weights come
  from safetensors, ``.bin`` (``torch.load(weights_only=True)`` inside transformers) or shards.
  A PEFT adapter repo (``adapter_config.json``, ``task_type: SEQ_CLS``, the head in
  ``modules_to_save``) is applied on its base model and merged, as RankLLaMA's card does.
* :func:`detect_family`: which llmrank family and options a published folder needs, read from its
  ``config.json`` (``architectures``, ``is_encoder_decoder``) and ``adapter_config.json``
  (``task_type``, ``base_model_name_or_path``) and, for causal LMs, the model name.

Encoders are tokenised like sentence-transformers' ``CrossEncoder`` and FlagEmbedding:
``tokenizer(query, document, truncation=True, max_length)`` (longest-first truncation).
Decoders (RankLLaMA) have two circulating input formats (option ``input_format``):

* ``tevatron`` (default; how RankLLaMA was trained and evaluated in Tevatron):
  ``f"{query_prefix} {query} {passage_prefix} {title} {passage}".strip()`` with prefixes
  ``"query: "`` / ``"document: "`` (so two spaces follow each colon), the title's ``-`` replaced by
  spaces, tokenised with the tokenizer's special tokens, cut to ``max_length - 1``, then ``eos``;
* ``model-card`` (the Hugging Face card's snippet): ``tokenizer(f"query: {q}", f"document: {title} {p}")``.

The score is the head's single logit at the last real token (right padding; the head is applied
to that token's hidden state, which is what ``*ForSequenceClassification`` does for an unpadded
input, without depending on the checkpoint's ``pad_token_id``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from llmrank.data.record import Doc, RankingList
from llmrank.rankers.base import (
    ModelLoadError,
    RankerSettings,
    from_pretrained_kwargs,
    register_family,
)
from llmrank.rankers.cross_encoder import DECODER_LORA_TARGETS, ENCODER_LORA_TARGETS, is_decoder_config
from llmrank.rankers.tokenize import PairTemplate, PointwiseRanker

logger = logging.getLogger(__name__)

INPUT_FORMATS = ("tevatron", "model-card")

#: Hook for the yes/no LLM family (``family: yes-no``, built elsewhere): causal LMs without a score
#: head whose *name* matches a pattern are routed to that family with the named prompt template,
#: when the family is registered. Keys are regular expressions on the lower-cased model id/path.
YES_NO_TEMPLATE_PATTERNS: dict[str, str] = {
    r"qwen3-reranker": "qwen3-reranker",
    r"bge-reranker-v2-gemma": "bge-reranker-v2-gemma",
    r"mxbai-rerank-(base|large)-v2": "mxbai-rerank-v2",
}

#: Causal LMs recognised as FIRST listwise rerankers by name (``castorini/first_mistral``, ...).
FIRST_NAME_PATTERN = r"(^|[/_-])first([/_-]|$)"

#: RankT5 ports (``Soyoung97/RankT5-base``) score with ``<extra_id_10>``; other T5 rerankers are monoT5.
RANKT5_NAME_PATTERN = r"rankt5"


@dataclass
class Detected:
    """What :func:`detect_family` found: the family, its options, and why (for messages)."""

    family: str
    options: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


def detect_family(
    name: str,
    config: dict[str, Any] | None,
    adapter_config: dict[str, Any] | None = None,
    registered: Sequence[str] = (),
) -> Detected:
    """The llmrank family for a published checkpoint named ``name`` (id or path).

    ``config`` is the model's ``config.json`` (for an adapter repo: its base model's), ``registered``
    the families available (the yes/no hook is used only when ``yes-no`` is one of them). Raises
    :class:`ModelLoadError` naming what was found and the ``--family`` to pass when unsure."""
    lowered = str(name).lower()
    task = (adapter_config or {}).get("task_type")
    if adapter_config is not None and task not in (None, "SEQ_CLS", "CAUSAL_LM", "SEQ_2_SEQ_LM"):
        raise ModelLoadError(
            f"{name}: PEFT adapter with task_type {task!r} is not a reranker format llmrank knows "
            "(SEQ_CLS, CAUSAL_LM, SEQ_2_SEQ_LM)"
        )
    if config is None:
        raise ModelLoadError(f"{name}: no config.json, so the model type cannot be told; is this a model folder?")
    archs = [str(a) for a in (config.get("architectures") or [])]
    if task == "SEQ_CLS" or any(a.endswith("ForSequenceClassification") for a in archs):
        why = "adapter_config.json task_type SEQ_CLS" if task == "SEQ_CLS" else f"architectures {archs}"
        return Detected("seq-cls", {}, why)
    if config.get("is_encoder_decoder") or task == "SEQ_2_SEQ_LM":
        mode = "rankt5" if re.search(RANKT5_NAME_PATTERN, lowered) else "monot5"
        return Detected("seq2seq", {"mode": mode}, f"encoder-decoder {config.get('model_type')!r}, name -> {mode}")
    causal = task == "CAUSAL_LM" or any(a.endswith("ForCausalLM") for a in archs)
    if causal:
        if re.search(FIRST_NAME_PATTERN, lowered):
            return Detected("first", {}, "causal LM named FIRST")
        # ---- hook: yes/no LLM rerankers (family "yes-no", see llmrank/rankers/yes_no.py) ----
        for pattern, template in YES_NO_TEMPLATE_PATTERNS.items():
            if re.search(pattern, lowered) and "yes-no" in registered:
                return Detected("yes-no", {"template": template}, f"causal LM named like {template}")
        # ------------------------------------------------------------------------------------
        raise ModelLoadError(
            f"{name}: a causal LM ({', '.join(archs) or config.get('model_type')}) without a score head; "
            "say how to score it: --family first (listwise FIRST) or --family yes-no --template NAME"
        )
    raise ModelLoadError(
        f"{name}: cannot tell which reranker family fits architectures {archs or config.get('model_type')}; "
        "pass --family (cross-encoder, seq-cls, seq2seq, first)"
    )


def _head_names(model: nn.Module) -> list[str]:
    """Top-level modules of a ``*ForSequenceClassification`` model that are not its base model."""
    prefix = getattr(model, "base_model_prefix", "")
    return [name for name, _ in model.named_children() if name != prefix and name not in ("dropout",)]


@register_family("seq-cls")
class SequenceClassificationRanker(PointwiseRanker):
    """A one-label ``*ForSequenceClassification`` model scored by its own head (see module docstring).

    Options: ``input_format`` (decoders: ``tevatron`` | ``model-card``), ``query_prefix`` /
    ``passage_prefix`` (decoders; ``"query: "`` / ``"document: "``), ``adapter`` (path or id of a
    PEFT SEQ_CLS adapter applied on ``model_name_or_path`` and merged), ``adapter_revision``."""

    default_lora_targets = ENCODER_LORA_TARGETS
    merged_options = ("adapter", "adapter_revision")

    def __init__(self, backbone: nn.Module, tokenizer: Any, settings: RankerSettings) -> None:
        super().__init__(backbone, tokenizer, settings)
        config = _base(backbone).config
        self.is_decoder = is_decoder_config(config)
        self.input_format = settings.options.setdefault("input_format", "tevatron") if self.is_decoder else None
        if self.input_format is not None and self.input_format not in INPUT_FORMATS:
            raise ValueError(f"option input_format {self.input_format!r} is not one of {', '.join(INPUT_FORMATS)}")
        if self.is_decoder:
            if not hasattr(_base(backbone), "score"):
                raise ModelLoadError(
                    f"{settings.model_name_or_path}: decoder sequence-classification model without a 'score' head"
                )
            if self.input_format == "tevatron" and tokenizer.eos_token_id is None:
                raise ValueError("the tevatron input format appends eos; this tokenizer has no eos token")
        # token types only where the tokenizer produces them for a pair (BERT), never for RoBERTa/XLM-R
        probe = tokenizer("a", "b")
        segments = "token_type_ids" in probe and any(probe["token_type_ids"]) and not self.is_decoder
        self.template = PairTemplate((), (), (), bool(segments))
        # a tokenizer may add a pad token the embeddings lack (id == vocab size); padding is masked
        # out and never scored, so any in-vocabulary id pads as well
        vocab = _base(backbone).get_input_embeddings().num_embeddings
        if self.pad_token_id >= vocab:
            eos = tokenizer.eos_token_id
            self.pad_token_id = int(eos) if eos is not None and eos < vocab else 0
        limit = getattr(tokenizer, "model_max_length", None)
        self.max_length = min(settings.max_length, limit) if isinstance(limit, int) and limit > 0 else settings.max_length

    # ----------------------------------------------------------------------------- building
    @classmethod
    def load_backbone(cls, settings: RankerSettings) -> tuple[nn.Module, Any]:
        return cls._load(settings, strict=False)

    @classmethod
    def load_strict(cls, settings: RankerSettings) -> SequenceClassificationRanker:
        """A ranker for inference: any head weight the checkpoint lacks is an error (never a random head)."""
        backbone, tokenizer = cls._load(settings, strict=True)
        return cls(backbone, tokenizer, settings)

    @classmethod
    def _load(cls, settings: RankerSettings, strict: bool) -> tuple[nn.Module, Any]:
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        path = settings.model_name_or_path
        adapter = settings.options.get("adapter")
        config = AutoConfig.from_pretrained(path, **settings.hub_kwargs())
        labels = getattr(config, "num_labels", 1)
        archs = getattr(config, "architectures", None) or []
        own_head = any(str(a).endswith("ForSequenceClassification") for a in archs)
        if own_head and labels != 1 and not adapter:
            raise ModelLoadError(
                f"{path}: a sequence-classification checkpoint with {labels} labels; a reranker needs one "
                "score per pair (num_labels 1)"
            )
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the missing keys are reported below, in one line
        try:
            model, info = AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=1, output_loading_info=True, **from_pretrained_kwargs(settings)
            )
        finally:
            hf_logging.set_verbosity(verbosity)
        missing = [k for k in info.get("missing_keys", []) if k not in _tied(model)]
        supplied: set[str] = set()
        if adapter:
            model, supplied = _apply_adapter(model, str(adapter), settings.options.get("adapter_revision"), settings)
        heads = _head_names(model)
        unmatched = [k for k in missing if k.split(".")[0] not in supplied]
        if unmatched:
            head_missing = [k for k in unmatched if k.split(".")[0] in heads]
            what = (
                f"its score head ({', '.join(head_missing)}) is not in the checkpoint"
                if head_missing
                else f"weights missing from the checkpoint: {', '.join(unmatched[:6])}"
            )
            if strict:
                raise ModelLoadError(
                    f"{path}: {what}, so it would score with randomly initialised weights; load a checkpoint "
                    "trained for reranking, or name the right family with --family"
                )
            logger.warning("%s: %s; training starts from a new, randomly initialised head", path, what)
        tokenizer = AutoTokenizer.from_pretrained(settings.tokenizer_name_or_path or path, **settings.tokenizer_kwargs())
        return model, tokenizer

    def lora_targets(self) -> list[str]:
        return list(DECODER_LORA_TARGETS if self.is_decoder else ENCODER_LORA_TARGETS)

    def apply_lora(self, lora: Any) -> None:
        """LoRA on the body; the head is trained in full (PEFT ``modules_to_save``), as RankLLaMA."""
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=lora.target_modules or self.lora_targets(),
            modules_to_save=_head_names(self.backbone),
        )
        self.backbone = get_peft_model(self.backbone, config)

    # ----------------------------------------------------------------------------- text -> ids
    def pair_text(self, query: str, doc: Doc) -> tuple[str, str | None]:
        """The text(s) the authors tokenise for one pair (see the module docstring)."""
        opts = self.settings.options
        if not self.is_decoder:
            return query, doc.full_text(" ")
        qp, pp = opts.get("query_prefix", "query: "), opts.get("passage_prefix", "document: ")
        if self.input_format == "tevatron":
            title = (doc.title or "").replace("-", " ").strip()
            return f"{qp} {query} {pp} {title} {doc.text}".strip(), None
        return f"{qp}{query}", f"{pp}{doc.title or ''} {doc.text}"

    def list_pairs(self, lists: Sequence[RankingList]) -> list[tuple[list[int], list[int] | None]]:
        texts = [self.pair_text(lst.query, d) for lst in lists for d in lst.docs]
        if not texts:
            return []
        eos = self.is_decoder and self.input_format == "tevatron"
        limit = self.max_length - 1 if eos else self.max_length
        firsts = [a for a, _ in texts]
        seconds = [b for _, b in texts]
        kwargs = {"truncation": True, "max_length": limit, "verbose": False}
        enc = self.tokenizer(firsts, seconds, **kwargs) if seconds[0] is not None else self.tokenizer(firsts, **kwargs)
        ids = [list(x) + ([self.tokenizer.eos_token_id] if eos else []) for x in enc["input_ids"]]
        types = enc.get("token_type_ids") if self.template.segment_ids else None
        return [(row, list(types[i]) if types is not None else None) for i, row in enumerate(ids)]

    def pretokenize(self, lists: Sequence[RankingList]) -> None:
        """Pairs are tokenised whole (as their authors do), so there is no per-text cache to warm."""

    # ----------------------------------------------------------------------------- scoring
    def score_pairs(self, **inputs: torch.Tensor) -> torch.Tensor:
        if not self.is_decoder:
            return self.backbone(**inputs, return_dict=True).logits[:, 0]
        model = _base(self.backbone)
        body = getattr(model, model.base_model_prefix)
        states = body(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).last_hidden_state
        last = inputs["attention_mask"].sum(dim=1) - 1  # right padding: the last real token
        pooled = states[torch.arange(states.shape[0], device=states.device), last]
        return model.score(pooled)[:, 0]


def _apply_adapter(
    model: nn.Module, adapter: str, revision: str | None, settings: RankerSettings
) -> tuple[nn.Module, set[str]]:
    """Apply a PEFT adapter and merge it (RankLLaMA's card: ``merge_and_unload``); returns the
    merged model and the top-level modules whose weights the adapter supplies (``modules_to_save``)."""
    from peft import PeftConfig, PeftModel

    kwargs: dict[str, Any] = {"revision": revision} if revision else {}
    peft_config = PeftConfig.from_pretrained(adapter, **kwargs)
    supplied = {str(m).split(".")[0] for m in (getattr(peft_config, "modules_to_save", None) or [])}
    peft_model = PeftModel.from_pretrained(model, adapter, is_trainable=False, **kwargs)
    return peft_model.merge_and_unload(), supplied


def _base(backbone: nn.Module) -> nn.Module:
    get_base = getattr(backbone, "get_base_model", None)
    return get_base() if callable(get_base) else backbone


def _tied(model: nn.Module) -> set[str]:
    keys = getattr(model, "_tied_weights_keys", None) or []
    return set(keys if not isinstance(keys, dict) else list(keys))
