"""The yes/no LLM reranker: a causal LM scored by its next-token logits for an answer token.

The form of Qwen3-Reranker (Zhang et al., "Qwen3 Embedding: Advancing Text Embedding and
Reranking Through Foundation Models", 2025), bge-reranker-v2-gemma (BAAI, FlagEmbedding) and
mxbai-rerank-v2 (mixedbread, 2025), and of monoT5 (Nogueira et al., Findings of EMNLP 2020) for
decoders: the pair is written into a prompt that asks for a relevance judgement, and the logits of
the answer tokens at the last prompt position give the score (:mod:`llmrank.rankers.prompts` holds
the prompts, answer tokens and truncation rules).

Only the rows of the LM head that are read are computed: ``h_last @ W[ids].T (+ b[ids])`` with
``h_last`` the decoder's final (normed) hidden state at the last position -- exactly what the LM
head sees -- so no ``[batch, vocab]`` tensor is ever built (151,669 logits per pair for Qwen3).
Tied embeddings need nothing special (the head's weight *is* the embedding matrix); a head bias
and Gemma-2-style final logit soft-capping are applied as the model's own forward does.

Inputs are left-padded (the last position is every row's last real token) with explicit position
ids, so a pair scores the same alone and in a padded batch.

Training: any objective of the registry on ``scores``. For LiPO-λ (Liu et al., NAACL 2025) the
family also returns ``logprobs`` = log p_θ(yes | q, d) and ``ref_logprobs`` = log p_ref(yes | q, d)
with the reference = the same model with its LoRA adapters disabled (full fine-tuning: a frozen
copy of the base model), so LiPO's scores are β·(log p_θ − log p_ref). With two answer tokens the
probability is the model's own relevance probability ``softmax([l_yes, l_no])[yes]`` (what
Qwen3-Reranker reports); with one answer token (bge-gemma) it is the full-vocabulary
``log softmax(logits)[yes]``, computed in vocabulary chunks (``logsumexp`` per chunk, recomputed in
backward) so that, again, no ``[batch, vocab]`` tensor is kept.

Options (``model.options``): ``template`` (a name from :data:`~llmrank.rankers.prompts.TEMPLATES`
or a mapping of template fields), ``instruction`` (overrides the template's), ``logprob``
(``pair`` | ``vocab``; default ``pair`` with two answer tokens, else ``vocab``),
``reference_model_name_or_path`` (full fine-tuning + LiPO), plus the pointwise options
``train_chunk_tokens`` and ``max_padding``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from llmrank.data.record import RankingList
from llmrank.rankers.base import RankerOutput, RankerSettings, eval_mode, from_pretrained_kwargs, register_family
from llmrank.rankers.prefix_cache import (
    MIN_SHARED_TOKENS,
    cache_is_exact,
    score_with_shared_prefix,
    shared_prefix_length,
)
from llmrank.rankers.prompts import YesNoTemplate, get_template
from llmrank.rankers.seq2seq import token_id
from llmrank.rankers.tokenize import (
    PairTemplate,
    PointwiseRanker,
    length_chunks,
    padding_bounded_batches,
    split_by_list,
)

#: LoRA on every attention and MLP projection of Llama/Qwen/Gemma/Mistral-style decoders.
YES_NO_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
OPTION_KEYS = {
    "template", "instruction", "logprob", "reference_model_name_or_path", "train_chunk_tokens", "max_padding",
    "prefix_cache",
}  # fmt: skip
LOGPROB_MODES = ("pair", "vocab")
#: vocabulary rows per chunk of the streamed full-vocabulary log-softmax (``logprob: vocab``)
VOCAB_CHUNK = 16384


def vocab_logsumexp(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                    softcap: float | None, chunk: int = VOCAB_CHUNK) -> torch.Tensor:  # fmt: skip
    """``logsumexp(hidden @ weight.T + bias)`` over the vocabulary, ``[B]`` float32, computed over
    chunks of rows; each chunk's ``[B, chunk]`` logits are recomputed in backward (checkpoint)
    instead of being kept, so memory stays ``O(B·chunk)``."""

    def part(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        logits = (h @ w.T).float()
        if b is not None:
            logits = logits + b.float()
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        return torch.logsumexp(logits, dim=-1)

    parts = []
    for start in range(0, weight.shape[0], chunk):
        w = weight[start : start + chunk]
        b = bias[start : start + chunk] if bias is not None else None
        if torch.is_grad_enabled() and (hidden.requires_grad or w.requires_grad):
            parts.append(checkpoint(part, hidden, w, b, use_reentrant=False))
        else:
            parts.append(part(hidden, w, b))
    return torch.logsumexp(torch.stack(parts, dim=-1), dim=-1)


def _gathered(params: list[torch.Tensor]) -> AbstractContextManager:
    """DeepSpeed ZeRO-3 partitions parameters and gathers them only around a module's own forward;
    the LM head's forward never runs here, so its weight is gathered explicitly (read-only; with
    LoRA the head is frozen). FSDP needs nothing: the head sits in the root unit, unsharded during
    the ranker's forward."""
    if any(hasattr(p, "ds_id") for p in params):
        import deepspeed  # only present when the run uses ZeRO

        return deepspeed.zero.GatheredParameters(params, modifier_rank=None)
    return nullcontext()


@register_family("yes-no")
class YesNoRanker(PointwiseRanker):
    """Causal LM + prompt template, scored from the answer-token logits at the last position."""

    default_lora_targets = YES_NO_LORA_TARGETS
    default_train_chunk_tokens = 2048
    citation = "@article{zhang2025qwen3embedding, title = {Qwen3 Embedding: Advancing Text Embedding and Reranking Through Foundation Models}, author = {Zhang, Yanzhao and Li, Mingxin and Long, Dingkun and Zhang, Xin and Lin, Huan and Yang, Baosong and Xie, Pengjun and Yang, An and Liu, Dayiheng and Lin, Junyang and Huang, Fei and Zhou, Jingren}, journal = {arXiv:2506.05176}, year = {2025}}\n@inproceedings{nogueira2020monot5, title = {Document Ranking with a Pretrained Sequence-to-Sequence Model}, author = {Nogueira, Rodrigo and Jiang, Zhiying and Pradeep, Ronak and Lin, Jimmy}, booktitle = {Findings of EMNLP}, year = {2020}, note = {arXiv:2003.06713}}"  # Qwen3-Reranker, monoT5's yes/no form
    @classmethod
    def provides_logprobs(cls, settings: RankerSettings) -> bool:
        """log p(yes | q, d) under the policy and the reference (LiPO-λ), when ``compute_reference`` is set."""
        return True

    def __init__(self, backbone: nn.Module, tokenizer: Any, settings: RankerSettings) -> None:
        opts = settings.options
        unknown = sorted(set(opts) - OPTION_KEYS)
        if unknown:
            raise ValueError(f"unknown yes-no option(s) {unknown}; valid: {sorted(OPTION_KEYS)}")
        self.yes_no_template: YesNoTemplate = get_template(opts.get("template"), instruction=opts.get("instruction"))
        if tokenizer.pad_token_id is None:  # left padding needs a pad id; it is never attended to
            tokenizer.pad_token = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
        super().__init__(backbone, tokenizer, settings)
        tokenizer.padding_side = "left"
        t = self.yes_no_template
        self.true_id = token_id(tokenizer, t.true_token, what="true_token", as_text=True)
        self.false_id = token_id(tokenizer, t.false_token, what="false_token", as_text=True) if t.false_token else None
        self.logprob_mode = opts.get("logprob") or ("pair" if self.false_id is not None else "vocab")
        if self.logprob_mode not in LOGPROB_MODES:
            raise ValueError(f"options.logprob {self.logprob_mode!r} is not one of {', '.join(LOGPROB_MODES)}")
        if self.logprob_mode == "pair" and self.false_id is None:
            raise ValueError(f"options.logprob 'pair' needs a template with a false_token; {t.name!r} has one answer token")

        def ids(text: str) -> list[int]:
            return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

        bos = tokenizer.bos_token_id
        # FlagEmbedding prepends BOS only when the tokenizer has one distinct from its pad token
        self.bos_ids = [bos] if t.add_bos and bos is not None and bos != tokenizer.pad_token_id else []
        self.prefix_ids = ids(t.prefix)
        self.sep_ids = ids(t.sep)
        self.suffix_ids = [i for piece in t.suffix for i in ids(piece)]
        # PairTemplate keeps PointwiseRanker's bookkeeping (overhead) meaningful; pairs are built below
        self.template = PairTemplate((*self.bos_ids, *self.prefix_ids), tuple(self.sep_ids), tuple(self.suffix_ids))
        fixed = len(self.bos_ids) + len(self.prefix_ids) + len(self.suffix_ids)
        if t.truncation == "body" and settings.max_length <= fixed:
            raise ValueError(
                f"model.max_length {settings.max_length} leaves no room for the pair: template {t.name!r} "
                f"takes {fixed} fixed tokens; raise max_length (Qwen3-Reranker's card uses 8192)"
            )
        prefix_cache = opts.get("prefix_cache", True)
        if not isinstance(prefix_cache, bool):
            raise ValueError(f"options.prefix_cache must be true or false, got {prefix_cache!r}")
        #: inference reuses each query's shared prompt prefix (keys/values computed once per query)
        self.prefix_cache = prefix_cache
        #: set by the trainer when the objective needs reference log-probabilities (LiPO-λ)
        self.compute_reference = False
        self._reference: list[nn.Module] = []  # full fine-tuning reference, kept out of state_dict
        self._with_logprobs = False
        # saved resolved: a reloaded checkpoint builds the same prompt even if the registry changes
        opts["template"] = t.to_dict()
        opts.pop("instruction", None)

    # ----------------------------------------------------------------------------- building
    @classmethod
    def load_backbone(cls, settings: RankerSettings) -> tuple[nn.Module, Any]:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        path = settings.model_name_or_path
        config = AutoConfig.from_pretrained(path, trust_remote_code=settings.trust_remote_code)
        if getattr(config, "is_encoder_decoder", False):
            raise ValueError(f"{path} ({config.model_type}) is an encoder-decoder model: use `family: seq2seq` (monoT5)")
        model = AutoModelForCausalLM.from_pretrained(path, **from_pretrained_kwargs(settings))
        tokenizer = AutoTokenizer.from_pretrained(
            settings.tokenizer_name_or_path or path, trust_remote_code=settings.trust_remote_code
        )
        return model, tokenizer

    # ----------------------------------------------------------------------------- text -> ids
    def pretokenize(self, lists: Sequence[RankingList]) -> None:
        self.list_pairs(lists)

    def list_pairs(self, lists: Sequence[RankingList]) -> list[tuple[list[int], list[int] | None]]:
        """Input ids of every (query, document) pair, flattened in list order, built as the
        template's authors build them (see :mod:`llmrank.rankers.prompts`)."""
        t = self.yes_no_template
        max_length = self.settings.max_length
        out: list[tuple[list[int], list[int] | None]] = []
        if t.truncation == "body":
            # Qwen3-Reranker: the whole rendered text is cut to max_length - len(prefix) - len(suffix)
            budget = max(0, max_length - len(self.bos_ids) - len(self.prefix_ids) - len(self.suffix_ids))
            texts = [t.render_body(lst.query, self.doc_text(d)) for lst in lists for d in lst.docs]
            for body in self.token_cache.encode(texts):
                out.append(([*self.bos_ids, *self.prefix_ids, *body[:budget], *self.suffix_ids], None))
            return out
        # FlagEmbedding / mxbai: query <= fraction of max_length, then (bos + q, sep + d) cut only_second
        q_max = int(max_length * t.query_max_fraction) if t.query_max_fraction else self.settings.query_max_length
        budget = max_length + (len(self.suffix_ids) if t.pair_budget == "max_length_plus_suffix" else 0)
        queries = self.token_cache.encode([t.render_query(lst.query) for lst in lists])
        docs = self.token_cache.encode([t.render_doc(self.doc_text(d)) for lst in lists for d in lst.docs])
        k = 0
        for lst, q in zip(lists, queries):
            first = [*self.bos_ids, *q[:q_max]]
            for _ in lst.docs:
                second = [*self.sep_ids, *docs[k][:max_length]]
                second = second[: max(0, budget - len(first))]
                # BOS counts against the pair budget (FlagEmbedding) but leads the sequence
                out.append(([*self.bos_ids, *self.prefix_ids, *first[len(self.bos_ids) :], *second, *self.suffix_ids], None))
                k += 1
        return out

    def pad_pairs(self, pairs: Sequence[tuple[list[int], list[int] | None]]) -> dict[str, torch.Tensor]:
        """Left-pad pairs to the longest one, so that the last position is every pair's last token."""
        lengths = [len(ids) for ids, _ in pairs]
        width = max(lengths, default=1)
        pad = self.pad_token_id
        input_ids = torch.tensor([[*[pad] * (width - len(ids)), *ids] for ids, _ in pairs], dtype=torch.long)
        attention_mask = torch.arange(width).unsqueeze(0) >= (width - torch.tensor(lengths, dtype=torch.long)).unsqueeze(1)
        return {"input_ids": input_ids.view(len(pairs), width), "attention_mask": attention_mask.long()}

    # ----------------------------------------------------------------------------- model parts
    def _causal_lm(self, backbone: nn.Module | None = None) -> nn.Module:
        model = self.backbone if backbone is None else backbone
        get_base = getattr(model, "get_base_model", None)
        return get_base() if callable(get_base) else model

    def _last_hidden(self, causal_lm: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``[P, H]`` final hidden state (after the final norm: what the LM head reads) at the last position."""
        # explicit positions: left padding must not shift them (RoPE is relative, but be exact)
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)
        decoder = causal_lm.get_decoder()
        out = decoder(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False)
        return out.last_hidden_state[:, -1]

    def _head(self, causal_lm: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None, float | None]:
        head = causal_lm.get_output_embeddings()
        softcap = getattr(causal_lm.config, "final_logit_softcapping", None)
        return head.weight, getattr(head, "bias", None), softcap

    def _answer_logits(self, causal_lm: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        """``[P, k]`` float32 logits of the answer tokens (true[, false]): only those LM-head rows."""
        weight, bias, softcap = self._head(causal_lm)
        ids = [self.true_id] if self.false_id is None else [self.true_id, self.false_id]
        with _gathered([weight] + ([bias] if bias is not None else [])):
            rows = torch.tensor(ids, device=weight.device)
            w = weight.index_select(0, rows)
            b = bias.index_select(0, rows) if bias is not None else None
        logits = (hidden.to(w.dtype) @ w.T).float()
        if b is not None:
            logits = logits + b.float()
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        return logits

    def _score(self, logits: torch.Tensor) -> torch.Tensor:
        scoring = self.yes_no_template.scoring
        if scoring == "logit":
            return logits[:, 0]
        if scoring == "difference":
            return logits[:, 0] - logits[:, 1]
        return torch.log_softmax(logits, dim=-1)[:, 0]

    def _logprob(self, causal_lm: nn.Module, hidden: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """log p(true | q, d): over the two answer tokens (``pair``) or the whole vocabulary (``vocab``)."""
        if self.logprob_mode == "pair":
            return torch.log_softmax(logits, dim=-1)[:, 0]
        weight, bias, softcap = self._head(causal_lm)
        if hasattr(weight, "ds_id"):
            raise ValueError(
                "options.logprob 'vocab' (one answer token) reads the whole LM head, which DeepSpeed ZeRO-3 keeps "
                "partitioned; use ZeRO-2 or FSDP (recipes/accelerate/fsdp.yaml), or a template with two answer tokens"
            )
        return logits[:, 0] - vocab_logsumexp(hidden.to(weight.dtype), weight, bias, softcap)

    # ----------------------------------------------------------------------------- scoring
    def score_pairs(self, **inputs: torch.Tensor) -> torch.Tensor:
        """``[P]`` scores, or ``[P, 3]`` (score, log p_θ, log p_ref) while :meth:`forward` asks for log-probs."""
        causal_lm = self._causal_lm()
        hidden = self._last_hidden(causal_lm, inputs["input_ids"], inputs["attention_mask"])
        logits = self._answer_logits(causal_lm, hidden)
        scores = self._score(logits)
        if not self._with_logprobs:
            return scores
        logp = self._logprob(causal_lm, hidden, logits)
        ref = self._reference_logprobs(inputs["input_ids"], inputs["attention_mask"])
        return torch.stack([scores, logp, ref.to(logp.dtype)], dim=-1)

    @torch.no_grad()
    def _reference_logprobs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """log p_ref(true | q, d): LoRA -> the same model with adapters disabled (no second copy);
        full fine-tuning -> a frozen copy of ``reference_model_name_or_path`` (default: the base model)."""
        if self.is_peft:
            with self.backbone.disable_adapter():
                causal_lm = self._causal_lm()
                hidden = self._last_hidden(causal_lm, input_ids, attention_mask)
                return self._logprob(causal_lm, hidden, self._answer_logits(causal_lm, hidden))
        causal_lm = self.reference_model()
        hidden = self._last_hidden(causal_lm, input_ids, attention_mask)
        return self._logprob(causal_lm, hidden, self._answer_logits(causal_lm, hidden))

    def reference_model(self) -> nn.Module:
        if not self._reference:
            path = self.settings.options.get("reference_model_name_or_path") or self.settings.model_name_or_path
            base = RankerSettings.from_dict({**self.settings.to_dict(), "lora": None, "model_name_or_path": path})
            model, _ = type(self).load_backbone(base)
            model.requires_grad_(False).eval().to(self.device)
            self._reference.append(model)
        return self._reference[0]

    @torch.inference_mode()
    def score_lists(self, lists: Sequence[RankingList], batch_size: int = 32) -> list[list[float]]:
        """Scores of every document of every list. With ``options.prefix_cache`` (default), the
        prompt tokens a query's candidates share run once per query and only each candidate's own
        tokens run per pair (:mod:`llmrank.rankers.prefix_cache`); lists with one candidate or a short
        shared prefix go through the plain length-sorted batches."""
        if not self.prefix_cache:
            return super().score_lists(lists, batch_size)
        with eval_mode(self):
            pairs = self.list_pairs(lists)
            flat = torch.empty(len(pairs), dtype=torch.float32)
            causal_lm = self._causal_lm()
            decoder = causal_lm.get_decoder()
            device, padding = self.device, self.inference_padding(self.device)
            plain: list[int] = []
            start = 0
            for lst in lists:
                positions = list(range(start, start + len(lst)))
                start += len(lst)
                seqs = [pairs[i][0] for i in positions]
                shared = shared_prefix_length(seqs)
                longest = max((len(s) for s in seqs), default=0)
                if len(seqs) < 2 or shared < MIN_SHARED_TOKENS or not cache_is_exact(causal_lm.config, longest):
                    plain.extend(positions)
                    continue
                batches = padding_bounded_batches([len(s) - shared for s in seqs], batch_size, padding)
                scores = score_with_shared_prefix(
                    decoder, seqs, shared, batches,
                    head=lambda h: self._score(self._answer_logits(causal_lm, h)),
                    pad_id=self.pad_token_id, device=device,
                )  # fmt: skip
                flat[torch.tensor(positions)] = scores
            if plain:
                self.score_pairs_into(flat, pairs, plain, batch_size)
        return split_by_list(flat, lists)

    def forward(self, pair_mask: torch.Tensor, **inputs: torch.Tensor) -> RankerOutput:  # type: ignore[override]
        """Scores ``[B, n]``; with ``compute_reference`` also ``logprobs`` / ``ref_logprobs`` ``[B, n]`` (LiPO-λ)."""
        pair_mask = pair_mask.bool()
        self._with_logprobs = self.compute_reference
        try:
            flat = self.score_chunked(inputs)
        finally:
            self._with_logprobs = False
        mask = pair_mask.to(flat.device)

        def scatter(values: torch.Tensor) -> torch.Tensor:
            return torch.zeros(mask.shape, dtype=torch.float32, device=flat.device).masked_scatter(mask, values)

        if flat.dim() == 1:
            return RankerOutput(scores=scatter(flat), mask=mask)
        return RankerOutput(scores=scatter(flat[:, 0]), mask=mask, logprobs=scatter(flat[:, 1]), ref_logprobs=scatter(flat[:, 2]))

    def score_chunked(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scores of left-padded pairs in length-sorted chunks of at most ``train_chunk_tokens`` padded
        tokens, each cut to its own longest pair (from the left: the padding is on the left)."""
        input_ids = inputs["input_ids"]
        if input_ids.shape[0] == 0:
            return torch.zeros((0, 3) if self._with_logprobs else (0,), device=input_ids.device)
        budget = self.chunk_budget(input_ids.device)
        if budget is None or input_ids.numel() <= budget:
            return self.score_pairs(**inputs).float()
        lengths = inputs["attention_mask"].sum(dim=1).tolist()
        chunks = length_chunks(lengths, budget)
        parts = []
        for chunk in chunks:
            rows = torch.tensor(chunk, device=input_ids.device)
            width = max(lengths[i] for i in chunk)
            part = {k: v.index_select(0, rows)[:, -width:] for k, v in inputs.items()}
            parts.append(self.score_pairs(**part).float())
        order = torch.tensor([i for chunk in chunks for i in chunk], device=input_ids.device)
        return torch.cat(parts)[torch.argsort(order)]
