"""Encoder-decoder (T5) pointwise rankers: RankT5 and monoT5.

* ``mode: rankt5`` -- RankT5-EncDec (Zhuang et al., "RankT5: Fine-Tuning T5 for Text Ranking with
  Ranking Losses", SIGIR 2023): input ``Query: {q} Document: {d}</s>``, one decoder step from the
  decoder start token, score = the unnormalised logit of an otherwise unused output token
  (``<extra_id_10>``, id 32089 in T5's vocabulary, as in the Rax T5X example). Trained with any
  ranking loss (the paper's best: listwise softmax cross-entropy).
* ``mode: monot5`` -- monoT5 (Nogueira et al., "Document Ranking with a Pretrained
  Sequence-to-Sequence Model", Findings of EMNLP 2020): input ``Query: {q} Document: {d} Relevant:</s>``,
  score = ``log_softmax([logit(true), logit(false)])[true]`` at the first decoder step.
* ``mode: rankt5-enc`` -- RankT5-Enc: the T5 encoder alone, first-token state -> ``Linear(d_model, 1)``.

LiPO-λ (``objective: [{name: lipo_lambda}]``) needs policy and reference log-probabilities; only
monoT5 scores are log-probabilities (``log p(true | q, d)`` over {true, false}), so only ``mode:
monot5`` provides them: the policy is the model being trained, the reference the same model with
its LoRA adapters disabled (as FIRST does), or a frozen copy of the base model (or of
``options.reference_model_name_or_path``) under full fine-tuning.

Options: ``mode`` (default ``rankt5``), ``score_token`` (default ``<extra_id_10>``),
``true_token`` / ``false_token`` (default ``true`` / ``false``), ``query_prefix`` (``Query:``),
``doc_prefix`` (``Document:``), ``suffix`` (``Relevant:`` for monoT5, empty otherwise).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from llmrank.rankers.base import (
    RankerOutput,
    RankerSettings,
    eval_mode,
    float32_head,
    from_pretrained_kwargs,
    register_family,
)
from llmrank.rankers.tokenize import PairTemplate, PointwiseRanker

MODES = ("rankt5", "monot5", "rankt5-enc")
T5_LORA_TARGETS = ["q", "k", "v", "o", "wi", "wo", "wi_0", "wi_1"]


def token_id(tokenizer: Any, token: str, *, what: str, as_text: bool = False) -> int:
    """The id of ``token``: a vocabulary entry (``<extra_id_10>``), or with ``as_text`` the single id
    the text encodes to, as the decoder would generate it (``true`` -> ``▁true``, monoT5); either
    way falling back to the other reading, and a clear error when neither is one real token."""

    def entry() -> int | None:
        tid = tokenizer.convert_tokens_to_ids(token)
        ok = isinstance(tid, int) and tid != tokenizer.unk_token_id and tokenizer.convert_ids_to_tokens(tid) == token
        return tid if ok else None

    def text() -> int | None:
        ids = tokenizer(token, add_special_tokens=False)["input_ids"]
        return int(ids[0]) if len(ids) == 1 and ids[0] != tokenizer.unk_token_id else None

    for read in (text, entry) if as_text else (entry, text):
        tid = read()
        if tid is not None:
            return tid
    ids = tokenizer(token, add_special_tokens=False)["input_ids"]
    raise ValueError(
        f"{what} {token!r} is not a single token of this tokenizer (it encodes to {ids}); "
        f"set options.{what} to a token in the vocabulary (e.g. '<extra_id_10>' for T5)"
    )


@register_family("seq2seq")
class Seq2SeqRanker(PointwiseRanker):
    """T5 ranker scoring a pair by one decoder step (RankT5, monoT5) or an encoder head (RankT5-Enc)."""

    default_lora_targets = T5_LORA_TARGETS
    citation = "@inproceedings{zhuang2023rankt5, title = {RankT5: Fine-Tuning T5 for Text Ranking with Ranking Losses}, author = {Zhuang, Honglei and Qin, Zhen and Jagerman, Rolf and Hui, Kai and Ma, Ji and Lu, Jing and Ni, Jianmo and Wang, Xuanhui and Bendersky, Michael}, booktitle = {Proceedings of SIGIR}, year = {2023}, note = {arXiv:2210.10634}}\n@inproceedings{nogueira2020monot5, title = {Document Ranking with a Pretrained Sequence-to-Sequence Model}, author = {Nogueira, Rodrigo and Jiang, Zhiying and Pradeep, Ronak and Lin, Jimmy}, booktitle = {Findings of EMNLP}, year = {2020}, note = {arXiv:2003.06713}}"  # RankT5, monoT5

    @classmethod
    def provides_logprobs(cls, settings: RankerSettings) -> bool:
        """monoT5 scores are log-probabilities, so LiPO-λ has a policy and a reference; RankT5's
        unnormalised logit and the encoder head are not."""
        return settings.options.get("mode", "rankt5") == "monot5"

    def __init__(self, backbone: nn.Module, tokenizer: Any, settings: RankerSettings) -> None:
        super().__init__(backbone, tokenizer, settings)
        opts = settings.options
        self.mode = opts.setdefault("mode", "rankt5")
        if self.mode not in MODES:
            raise ValueError(f"seq2seq mode {self.mode!r} is not one of {', '.join(MODES)}")
        #: set by the trainer when the objective needs reference log-probabilities (LiPO-λ)
        self.compute_reference = False
        self._reference: list[nn.Module] = []  # full-FT reference model, kept out of state_dict
        if tokenizer.eos_token_id is None:
            raise ValueError("the seq2seq family needs a tokenizer with an eos token")
        config = _config(backbone)
        self.decoder_start_token_id = config.decoder_start_token_id
        if self.decoder_start_token_id is None:
            self.decoder_start_token_id = config.pad_token_id if config.pad_token_id is not None else 0
        if self.mode == "rankt5":
            self.score_token_id = token_id(tokenizer, opts.setdefault("score_token", "<extra_id_10>"), what="score_token")
        elif self.mode == "monot5":
            self.true_id = token_id(tokenizer, opts.setdefault("true_token", "true"), what="true_token", as_text=True)
            self.false_id = token_id(tokenizer, opts.setdefault("false_token", "false"), what="false_token", as_text=True)
        else:
            self.score_head = nn.Linear(config.d_model, 1)
            nn.init.normal_(self.score_head.weight, std=0.02)
            nn.init.zeros_(self.score_head.bias)

        def ids(text: str) -> tuple[int, ...]:
            return tuple(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else ()

        suffix = opts.get("suffix", "Relevant:" if self.mode == "monot5" else "")
        self.template = PairTemplate(
            ids(opts.get("query_prefix", "Query:")),
            ids(opts.get("doc_prefix", "Document:")),
            (*ids(suffix), tokenizer.eos_token_id),
        )

    @classmethod
    def load_backbone(cls, settings: RankerSettings) -> tuple[nn.Module, Any]:
        from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, T5EncoderModel

        path = settings.model_name_or_path
        config = AutoConfig.from_pretrained(path, **settings.hub_kwargs())
        if settings.options.get("mode", "rankt5") == "rankt5-enc":
            backbone = T5EncoderModel.from_pretrained(path, **from_pretrained_kwargs(settings))
        else:
            if not getattr(config, "is_encoder_decoder", False):
                raise ValueError(
                    f"{path} ({config.model_type}) is not an encoder-decoder model: use `family: cross-encoder`"
                )
            backbone = AutoModelForSeq2SeqLM.from_pretrained(path, **from_pretrained_kwargs(settings))
        tokenizer = AutoTokenizer.from_pretrained(
            settings.tokenizer_name_or_path or path, **settings.tokenizer_kwargs()
        )
        return backbone, tokenizer

    def score_pairs(self, **inputs: torch.Tensor) -> torch.Tensor:
        return self._score_with(self.backbone, **inputs)

    def forward(self, pair_mask: torch.Tensor, **inputs: torch.Tensor) -> RankerOutput:  # type: ignore[override]
        """Scores ``[B, n]``; with ``compute_reference`` (monoT5 only) also the policy log-probs
        ``logprobs`` (= the monoT5 scores, ``log p(true | q, d)``) and the reference's ``ref_logprobs``."""
        out = super().forward(pair_mask, **inputs)
        if self.compute_reference:
            if self.mode != "monot5":
                raise ValueError(
                    f"seq2seq mode {self.mode!r} scores are not log-probabilities; LiPO-lambda needs options.mode: monot5"
                )
            out.logprobs = out.scores
            ref = self._reference_scores(inputs)
            out.ref_logprobs = torch.zeros_like(out.scores).masked_scatter(pair_mask.bool().to(ref.device), ref)
        return out

    @torch.no_grad()
    def _reference_scores(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[P]`` monoT5 log-probs of the reference: the same model with LoRA adapters disabled (no
        second copy), or under full fine-tuning a frozen copy of the base model. Dropout off."""
        model = self.backbone if self.is_peft else self.reference_model()
        with eval_mode(model):
            if self.is_peft:
                with self.backbone.disable_adapter():
                    return self._score_with(model, **inputs).float()
            return self._score_with(model, **inputs).float()

    def reference_model(self) -> nn.Module:
        """Frozen copy of ``options.reference_model_name_or_path`` (default: the base model),
        loaded once and kept out of ``state_dict`` (one extra model in memory)."""
        if not self._reference:
            path = self.settings.options.get("reference_model_name_or_path") or self.settings.model_name_or_path
            base = RankerSettings.from_dict({**self.settings.to_dict(), "lora": None, "model_name_or_path": path})
            model, _ = type(self).load_backbone(base)
            model.requires_grad_(False).eval().to(self.device)
            self._reference.append(model)
        return self._reference[0]

    def _score_with(self, model: nn.Module, **inputs: torch.Tensor) -> torch.Tensor:
        input_ids, attention_mask = inputs["input_ids"], inputs["attention_mask"]
        if self.mode == "rankt5-enc":
            states = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return float32_head(self.score_head, states[:, 0])
        start = torch.full((input_ids.shape[0], 1), self.decoder_start_token_id, dtype=torch.long, device=input_ids.device)
        logits = model(
            input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=start, use_cache=False
        ).logits[:, 0].float()
        if self.mode == "rankt5":
            return logits[:, self.score_token_id]
        pair = torch.stack([logits[:, self.true_id], logits[:, self.false_id]], dim=-1)
        return torch.log_softmax(pair, dim=-1)[:, 0]


def _config(backbone: nn.Module) -> Any:
    get_base = getattr(backbone, "get_base_model", None)
    return (get_base() if callable(get_base) else backbone).config
