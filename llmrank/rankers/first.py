"""FIRST: listwise reranking with single-token decoding.

Reddy et al., "FIRST: Faster Improved Listwise Reranking with Single Token Decoding", EMNLP 2024;
reproduced and extended to Mistral-7B-Instruct-v0.3 by Chen, Pradeep & Lin, "An Early FIRST
Reproduction and Improvements to Single-Token Decoding for Fast Listwise Reranking" (2024).

The model reads a RankGPT/RankZephyr listwise prompt over up to 20 passages labelled ``[A]..[T]``
followed by the chat template's assistant prefix and a literal ``"["``. One forward pass gives the
next-token logits; the logits of the bare identifier tokens ``A..`` are the passage scores.

Training (``collate`` + ``forward``) returns those first-identifier logits as ``scores [B, n]`` and
the token-mean LM loss of the teacher permutation ``[B] > [A] > ...</s>`` (prompt masked out), so
the recipe objective ``lm x 1 + first_ranknet x 10`` is FIRST's joint loss.

Identifier tokenisation is checked, never assumed: the position whose logits are read is the
index of the prompt's final ``"["`` token, computed explicitly, and the next label there must be
an identifier id (the public Zephyr training code counted non-pad tokens, which is off by two
because Zephyr's pad token is ``</s>``).  With ``options.id_tokenization: canonical`` (default)
the canonical tokenisation of ``prompt + "[B] > [A] ..."`` must equal the concatenation
``prompt ids + "[" + B + mid + A + ... + tail``; any difference (e.g. a tekken/tiktoken vocabulary
merging ``"[A"`` into one token, or a template ending in a plain ``]`` that merges with ``[``) is a
``ValueError`` naming the tokenizer and identifier.  ``id_tokenization: concat`` instead builds
ids by concatenation everywhere (training and inference agree; generation mode still parses text).

Inference (:meth:`FirstRanker.score_lists`) runs RankGPT sliding windows (size 20, stride 10,
bottom-up) over the top-k, batching the windows of all queries at the same window position,
left-padded; ``mode: single_token`` sorts windows by identifier logits (stable), ``mode: generate``
decodes the permutation greedily and repairs it (drop repeats, append missing in prior order).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from llmrank.data.record import Doc, RankingList
from llmrank.rankers.base import (
    Ranker,
    RankerOutput,
    RankerSettings,
    from_pretrained_kwargs,
    register_family,
    stage_ids,
)

logger = logging.getLogger(__name__)

#: FIRST's system message (gangiswag/llm-reranker ``rank_listwise_os_llm.py``).
SYSTEM_MESSAGE = (
    "You are RankLLM, an intelligent assistant that can rank passages based on their relevancy to the query"
)
#: Identifiers: passage k (0-based) is labelled ``chr(ord('A') + k)``.
IDENTIFIERS = [chr(ord("A") + i) for i in range(26)]
MAX_WINDOW = len(IDENTIFIERS)

DEFAULT_OPTIONS: dict[str, Any] = {
    "window_size": 20,
    "stride": 10,
    "top_k": None,  # rerank this many first-stage candidates (None: all); the rest keep their order
    "max_passage_words": 300,
    "mode": "single_token",  # single_token | generate
    "id_tokenization": "canonical",  # canonical (checked) | concat
    "system_message": SYSTEM_MESSAGE,
    "template": "first",  # first (FIRST's training wording) | rank_llm (rank_llm's current YAML)
    "reference_model_name_or_path": None,  # full fine-tuning + LiPO: frozen reference (default: base)
}

_BRACKETED_ALPHA = re.compile(r"\[([A-Za-z]+)\]")


# ----------------------------------------------------------------------------------------- prompt
def passage_text(doc: Doc, max_words: int = 300) -> str:
    """A passage as FIRST shows it: ``title + ". " + text``, ``Title: Content:`` artefacts removed,
    the first ``max_words`` whitespace words, bracketed letters ``[X]`` rewritten to ``(X)`` so that
    passages cannot contain identifiers."""
    text = f"{doc.title}. {doc.text}" if doc.title else doc.text
    text = text.replace("Title: Content: ", "").strip()
    text = " ".join(text.split()[:max_words])
    return _BRACKETED_ALPHA.sub(r"(\1)", text)


#: User-turn wordings: FIRST's training data, and rank_llm's ``rank_zephyr_alpha_template.yaml``
#: (castorini/rank_llm, what ``castorini/first_mistral`` is served with today: "an alphabetical",
#: one newline after the prefix, "Answer concisely and directly and only respond").
TEMPLATES = ("first", "rank_llm")


def user_message(query: str, passages: Sequence[str], template: str = "first") -> str:
    """FIRST's user turn, verbatim (including "a alphabetical", which matches the training data),
    or with ``template="rank_llm"`` rank_llm's current wording (prefix + bodies + suffix, concatenated)."""
    n = len(passages)
    if not 1 <= n <= MAX_WINDOW:
        raise ValueError(f"a FIRST window holds 1..{MAX_WINDOW} passages, got {n}")
    if template == "rank_llm":
        parts = [
            f"I will provide you with {n} passages, each indicated by an alphabetical identifier []. "
            f"Rank the passages based on their relevance to the search query: {query}.\n"
        ]
        parts += [f"[{IDENTIFIERS[i]}] {p}\n" for i, p in enumerate(passages)]
        parts.append(
            f"Search Query: {query}.\nRank the {n} passages above based on their relevance to the search query. "
            "All the passages should be included and listed using identifiers, in descending order of relevance. "
            "The output format should be [] > [], e.g., [B] > [A], Answer concisely and directly and only respond "
            "with the ranking results, do not say any word or explain."
        )
        return "".join(parts)
    if template != "first":
        raise ValueError(f"FIRST template {template!r} is not one of {', '.join(TEMPLATES)}")
    parts = [
        f"I will provide you with {n} passages, each indicated by a alphabetical identifier []. "
        f"Rank the passages based on their relevance to the search query: {query}.\n\n"
    ]
    parts += [f"[{IDENTIFIERS[i]}] {p}\n" for i, p in enumerate(passages)]
    parts.append(
        f"Search Query: {query}.\nRank the {n} passages above based on their relevance to the search query. "
        "All the passages should be included and listed using identifiers, in descending order of relevance. "
        "The output format should be [] > [], e.g., [B] > [A], Only respond with the ranking results, "
        "do not say any word or explain."
    )
    return "".join(parts)


def render_prompt(
    tokenizer: Any, query: str, passages: Sequence[str], system_message: str = SYSTEM_MESSAGE, template: str = "first"
) -> str:
    """Chat-formatted prompt with the generation prompt, ``ftfy``-fixed, *without* the trailing ``"["``.

    The system message is a ``system`` turn when the chat template mentions ``system`` (as the
    official code tests), else it is prepended to the user turn as ``sys + "\\n " + user``."""
    import ftfy

    user = user_message(query, passages, template)
    template = getattr(tokenizer, "chat_template", None)
    if template is None:
        raise ValueError(
            f"tokenizer {_tokenizer_name(tokenizer)!r} has no chat template; FIRST needs a chat/instruct "
            "backbone (set tokenizer.chat_template before building the ranker)"
        )
    template_text = template if isinstance(template, str) else str(template)
    if system_message and "system" in template_text:
        messages = [{"role": "system", "content": system_message}, {"role": "user", "content": user}]
    else:
        content = f"{system_message}\n {user}" if system_message else user
        messages = [{"role": "user", "content": content}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return ftfy.fix_text(prompt)


def target_text(order: Sequence[int]) -> str:
    """``[B] > [A] > ...`` for a permutation of passage indices, best first (no EOS)."""
    return " > ".join(f"[{IDENTIFIERS[i]}]" for i in order)


def _tokenizer_name(tokenizer: Any) -> str:
    return getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__


# ------------------------------------------------------------------------------------ identifiers
class IdentifierTokens:
    """Token ids of the identifiers and of the permutation syntax around them, checked on a tokenizer.

    ``letter_ids[k]`` is the id of the bare piece ``chr(65 + k)`` (for SentencePiece the piece
    *without* ``▁``). ``open_id`` is ``"["``; ``mid_ids`` are the tokens between two identifiers
    (``"] > ["`` in whatever pieces the tokenizer uses, e.g. ``]``, ``▁>``, ``▁[``) and ``tail_ids``
    those after the last one (``]``), both read off the canonical tokenisation of ``[A] > [B] > [C]``.
    """

    def __init__(self, tokenizer: Any, strategy: str = "canonical") -> None:
        if strategy not in ("canonical", "concat"):
            raise ValueError(f"id_tokenization must be 'canonical' or 'concat', got {strategy!r}")
        self.tokenizer = tokenizer
        self.strategy = strategy
        self.name = _tokenizer_name(tokenizer)
        unk = getattr(tokenizer, "unk_token_id", None)
        self.letter_ids = [self._single_id(c, unk) for c in IDENTIFIERS]
        if len(set(self.letter_ids)) != len(self.letter_ids):
            raise ValueError(f"tokenizer {self.name!r}: identifier letters share token ids {self.letter_ids}")
        self.open_id = self._single_id("[", unk)
        self.eos_id = tokenizer.eos_token_id
        if self.eos_id is None:
            raise ValueError(f"tokenizer {self.name!r} has no eos token; FIRST targets end with EOS")
        probe = self._encode("x [A] > [B] > [C]")
        b, c = self.letter_ids[1], self.letter_ids[2]
        if probe.count(b) != 1 or probe.count(c) != 1:
            raise ValueError(
                f"tokenizer {self.name!r}: in ' [B] > [C]' the identifiers are not single tokens "
                f"({self._pieces(probe)}); this vocabulary cannot be used for FIRST"
            )
        i_b, i_c = probe.index(b), probe.index(c)
        self.mid_ids = probe[i_b + 1 : i_c]
        self.tail_ids = probe[i_c + 1 :]

    def _single_id(self, piece: str, unk: int | None) -> int:
        tid = self.tokenizer.convert_tokens_to_ids(piece)
        if tid is None or (unk is not None and tid == unk):
            ids = self._encode(piece)
            if len(ids) != 1:
                raise ValueError(
                    f"tokenizer {self.name!r}: identifier {piece!r} is not a single token ({self._pieces(ids)})"
                )
            tid = ids[0]
        return int(tid)

    def _encode(self, text: str, special: bool = False) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=special))

    def _pieces(self, ids: Sequence[int]) -> list[str]:
        return list(self.tokenizer.convert_ids_to_tokens(list(ids)))

    def prompt_ids(self, prompt: str) -> list[int]:
        """Ids of ``prompt + "["``; the last id is ``open_id`` (checked in canonical mode)."""
        ids = self._encode(prompt, special=True) + [self.open_id]
        if self.strategy == "canonical":
            canonical = self._encode(prompt + "[", special=True)
            if canonical != ids:
                raise ValueError(
                    f"tokenizer {self.name!r}: the prompt's last token is not '[' "
                    f"(prompt ends in {self._pieces(canonical[-3:])}); the chat template's end merges with '['. "
                    "Use a template that ends in a special token or newline, or options.id_tokenization: concat"
                )
        return ids

    def target_ids(self, order: Sequence[int]) -> list[int]:
        """Ids after the prompt's ``"["``: ``L(order[0]) mid L(order[1]) ... tail EOS``."""
        out: list[int] = []
        for k, i in enumerate(order):
            if k:
                out += self.mid_ids
            out.append(self.letter_ids[i])
        return out + self.tail_ids + [self.eos_id]

    def check_first_identifier(self, prompt: str, prompt_ids: list[int], k: int) -> None:
        """``prompt + "[X]"`` must tokenise as ``prompt ids, "[", X, tail``."""
        canonical = self._encode(prompt + f"[{IDENTIFIERS[k]}]", special=True)
        built = prompt_ids + [self.letter_ids[k], *self.tail_ids]
        if canonical != built:
            tail = len(self.tail_ids) + 3
            raise ValueError(
                f"tokenizer {self.name!r}: identifier [{IDENTIFIERS[k]}] is not '[' + a single token "
                f"'{IDENTIFIERS[k]}' after the prompt: canonical pieces {self._pieces(canonical[-tail:])} vs expected "
                f"{self._pieces(built[-tail:])}. Set options.id_tokenization: concat to build ids by concatenation "
                "(training and single-token inference then agree)"
            )

    def check_target(self, prompt: str, prompt_ids: list[int], order: Sequence[int]) -> None:
        """Canonical tokenisation of ``prompt + "[B] > [A] ..."`` must equal the concatenation."""
        built = prompt_ids + self.target_ids(order)[:-1]
        canonical = self._encode(prompt + target_text(order), special=True)
        if canonical == built:
            return
        diff = next((k for k, (x, y) in enumerate(zip(canonical, built)) if x != y), min(len(canonical), len(built)))
        k_letter = sum(1 for t in built[len(prompt_ids) : diff + 1] if t in self.letter_ids)
        ident = IDENTIFIERS[order[min(max(k_letter - 1, 0), len(order) - 1)]]
        raise ValueError(
            f"tokenizer {self.name!r}: identifier [{ident}] is not '[' + a single token "
            f"'{ident}' after the prompt: canonical pieces {self._pieces(canonical[diff - 1 : diff + 3])} vs expected "
            f"{self._pieces(built[diff - 1 : diff + 3])}. Set options.id_tokenization: concat to build ids by "
            "concatenation (training and single-token inference then agree)"
        )


# ------------------------------------------------------------------------------------ windows
def sliding_windows(num_candidates: int, window_size: int = 20, stride: int = 10) -> list[tuple[int, int]]:
    """RankGPT windows ``[start, end)`` from the bottom of the top-``num_candidates`` up.

    100 candidates, window 20, stride 10: ``[80,100), [70,90), ..., [0,20)``."""
    if window_size < 1 or stride < 1:
        raise ValueError("window_size and stride must be >= 1")
    if num_candidates <= 0:
        return []
    out: list[tuple[int, int]] = []
    end = num_candidates
    while True:
        start = max(0, end - window_size)
        out.append((start, end))
        if start == 0:
            return out
        end -= stride


def repair_permutation(parsed: Sequence[int], n: int) -> list[int]:
    """Keep the first occurrence of each valid index, then append the missing ones in prior order."""
    seen: list[int] = []
    for i in parsed:
        if 0 <= i < n and i not in seen:
            seen.append(i)
    return seen + [i for i in range(n) if i not in seen]


def parse_permutation(text: str, n: int) -> list[int]:
    """Indices from generated ``"B] > [A] > ..."`` (the prompt's ``"["`` is prepended), repaired."""
    found = re.findall(r"\[\s*([A-Z])\s*\]", "[" + text)
    return repair_permutation([ord(c) - ord("A") for c in found], n)


def _teacher_order(lst: RankingList) -> list[int]:
    if lst.order is not None:
        return list(lst.order)
    return sorted(range(len(lst)), key=lambda i: -lst.labels[i])  # stable: ties keep list order


@dataclass
class _Encoded:
    prompt: str
    prompt_ids: list[int]
    target_ids: list[int]


# ------------------------------------------------------------------------------------- ranker
@register_family("first")
class FirstRanker(Ranker):
    """FIRST listwise reranker (single-token decoding of the first identifier)."""

    citation = "@inproceedings{reddy2024first, title = {FIRST: Faster Improved Listwise Reranking with Single Token Decoding}, author = {Reddy, Revanth Gangi and Doo, JaeHyeok and Xu, Yifei and Sultan, Md Arafat and Swain, Deevya and Sil, Avirup and Ji, Heng}, booktitle = {Proceedings of EMNLP}, year = {2024}, note = {arXiv:2406.15657}}"  # FIRST
    # a list without a teacher ``order`` is ranked by its graded labels (stable) for the LM target
    derives_teacher_order = True
    # a training example is the whole window in its given order, never a sampled group
    listwise_windows = True
    max_window = MAX_WINDOW

    @classmethod
    def provides_logprobs(cls, settings: RankerSettings) -> bool:
        """First-identifier log-probabilities (policy) and the reference's, for LiPO-λ."""
        return True

    def __init__(self, backbone: nn.Module, tokenizer: Any, settings: RankerSettings) -> None:
        super().__init__(backbone, tokenizer, settings)
        unknown = set(settings.options) - set(DEFAULT_OPTIONS)
        if unknown:
            raise ValueError(f"unknown FIRST option(s) {sorted(unknown)}; valid: {sorted(DEFAULT_OPTIONS)}")
        self.options = {**DEFAULT_OPTIONS, **settings.options}
        if self.options["mode"] not in ("single_token", "generate"):
            raise ValueError(f"options.mode must be 'single_token' or 'generate', got {self.options['mode']!r}")
        if self.options["template"] not in TEMPLATES:
            raise ValueError(f"options.template must be one of {', '.join(TEMPLATES)}, got {self.options['template']!r}")
        if not 2 <= int(self.options["window_size"]) <= MAX_WINDOW:
            raise ValueError(f"options.window_size must be in 2..{MAX_WINDOW}")
        self.ids = IdentifierTokens(tokenizer, self.options["id_tokenization"])
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.unk_token if tokenizer.unk_token is not None else tokenizer.eos_token
        #: set by the trainer when the objective needs reference log-probabilities (LiPO-λ)
        self.compute_reference = False
        self._reference: list[nn.Module] = []  # full-FT reference model, kept out of state_dict
        # fail at build time, not mid-training, when the tokenizer/template cannot do FIRST
        probe = RankingList("probe", "probe query", [Doc("a", "first passage"), Doc("b", "second")], [0.0, 1.0])
        enc = self.encode(probe, [1, 0])
        if self.ids.strategy == "canonical":
            # every identifier a window of 20 can start with must follow "[" as its own token
            for k in range(max(20, int(self.options["window_size"]))):
                self.ids.check_first_identifier(enc.prompt, enc.prompt_ids, k)

    # ----------------------------------------------------------------------------- building
    @classmethod
    def load_backbone(cls, settings: RankerSettings) -> tuple[nn.Module, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(
            settings.tokenizer_name_or_path or settings.model_name_or_path, **settings.tokenizer_kwargs()
        )
        model = AutoModelForCausalLM.from_pretrained(settings.model_name_or_path, **from_pretrained_kwargs(settings))
        return model, tokenizer

    # ----------------------------------------------------------------------------- encoding
    def encode(self, lst: RankingList, order: Sequence[int] | None = None) -> _Encoded:
        """Prompt ids (ending in ``"["``) and target ids for one window; passages are shortened
        (gangiswag's rule) until prompt + target fit ``max_length``."""
        n = len(lst)
        if not 1 <= n <= MAX_WINDOW:
            raise ValueError(f"list {lst.qid!r}: FIRST windows hold 1..{MAX_WINDOW} documents, got {n}")
        words = int(self.options["max_passage_words"])
        order = list(range(n)) if order is None else list(order)
        target = self.ids.target_ids(order)
        while True:
            passages = [passage_text(d, words) for d in lst.docs]
            prompt = render_prompt(
                self.tokenizer, lst.query, passages, self.options["system_message"], self.options["template"]
            )
            prompt_ids = self.ids.prompt_ids(prompt)
            excess = len(prompt_ids) + len(target) - self.settings.max_length
            if excess <= 0 or words <= 1:
                break
            words = max(1, words - max(1, excess // (n * 4)))
        if self.ids.strategy == "canonical":
            self.ids.check_target(prompt, prompt_ids, order)
        return _Encoded(prompt, prompt_ids, target)

    def collate(self, lists: Sequence[RankingList]) -> dict[str, torch.Tensor]:
        """One window per list (the training group): left-padded ``prompt + target`` ids, LM labels
        on the target, the explicit index ``first_pos`` of the prompt's ``"["``, and the targets
        ``labels`` / ``list_mask`` / ``teacher_ranks`` ``[B, N]``."""
        rows: list[list[int]] = []
        lm: list[list[int]] = []
        prompt_lens: list[int] = []
        n_max = max(len(lst) for lst in lists)
        labels = torch.zeros(len(lists), n_max)
        mask = torch.zeros(len(lists), n_max, dtype=torch.bool)
        ranks = torch.zeros(len(lists), n_max, dtype=torch.long)
        for b, lst in enumerate(lists):
            order = _teacher_order(lst)
            enc = self.encode(lst, order)
            rows.append(enc.prompt_ids + enc.target_ids)
            prompt_lens.append(len(enc.prompt_ids))
            lm.append([-100] * len(enc.prompt_ids) + enc.target_ids)
            n = len(lst)
            labels[b, :n] = torch.tensor(lst.labels, dtype=torch.float)
            mask[b, :n] = True
            for r, i in enumerate(order, start=1):
                ranks[b, i] = r
        input_ids, attention_mask, first_pos = self._left_pad(rows, prompt_lens)
        lm_labels = torch.full_like(input_ids, -100)
        for b, row in enumerate(lm):
            lm_labels[b, input_ids.shape[1] - len(row) :] = torch.tensor(row)
        # the next label after each "[" must be the teacher's top identifier
        nxt = lm_labels[torch.arange(len(lists)), first_pos + 1]
        expected = torch.tensor([self.ids.letter_ids[_teacher_order(lst)[0]] for lst in lists])
        if not torch.equal(nxt, expected):
            raise AssertionError(f"FIRST collate: label after '[' is {nxt.tolist()}, expected {expected.tolist()}")
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "lm_labels": lm_labels,
            "first_pos": first_pos,
            "num_docs": mask.sum(-1),
            "labels": labels,
            "list_mask": mask,
            "teacher_ranks": ranks,
        }
        stages = stage_ids(lists, n_max)
        if stages is not None:
            batch["stages"] = stages
        return batch

    def _left_pad(self, rows: list[list[int]], prompt_lens: list[int]) -> tuple[torch.Tensor, ...]:
        """Left-pad rows; returns ids, attention mask and the index of each prompt's last token."""
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        att = torch.zeros((len(rows), width), dtype=torch.long)
        pos = torch.zeros(len(rows), dtype=torch.long)
        for b, (row, plen) in enumerate(zip(rows, prompt_lens)):
            off = width - len(row)
            ids[b, off:] = torch.tensor(row)
            att[b, off:] = 1
            pos[b] = off + plen - 1
        return ids, att, pos

    # ----------------------------------------------------------------------------- forward
    def _run(self, model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, keep: int) -> torch.Tensor:
        # explicit positions: left padding must not shift RoPE positions (generate() does the same)
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)
        out = model(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
            use_cache=False, logits_to_keep=keep,
        )
        return out.logits

    def forward(  # type: ignore[override]
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        first_pos: torch.Tensor,
        num_docs: torch.Tensor,
        lm_labels: torch.Tensor | None = None,
    ) -> RankerOutput:
        """Scores ``[B, N]`` = logits of identifiers ``A..`` at the position after the prompt's ``"["``;
        ``lm_loss`` = token-mean CE of the target; ``logprobs`` (and ``ref_logprobs`` when
        ``compute_reference``) = log-softmax over the vocabulary at that position, gathered."""
        width = input_ids.shape[1]
        # only the tail holds the "[" positions and the targets (left padding): keep those logits
        keep = int(width - first_pos.min().item())
        logits = self._run(self.backbone, input_ids, attention_mask, keep)
        off = width - keep
        n = int(num_docs.max().item())
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        letter_ids = torch.tensor(self.ids.letter_ids[:n], device=input_ids.device)
        first = logits[rows, first_pos - off].float()  # [B, V]
        scores = first[:, letter_ids]
        mask = torch.arange(n, device=input_ids.device).unsqueeze(0) < num_docs.unsqueeze(1)
        lm_loss = None
        if lm_labels is not None:
            lab = lm_labels[:, off:]
            nxt = lab[rows, first_pos - off + 1]
            if not bool(torch.isin(nxt, letter_ids).all()):
                raise AssertionError("FIRST forward: the label after '[' is not an identifier token")
            lm_loss = F.cross_entropy(
                logits[:, :-1].float().reshape(-1, logits.shape[-1]), lab[:, 1:].reshape(-1), ignore_index=-100
            )
        logprobs = torch.log_softmax(first, -1)[:, letter_ids]
        ref_logprobs = None
        if self.compute_reference:
            ref_logprobs = self._reference_logprobs(input_ids, attention_mask, first_pos, letter_ids)
        return RankerOutput(scores=scores, mask=mask, lm_loss=lm_loss, logprobs=logprobs, ref_logprobs=ref_logprobs)

    @torch.no_grad()
    def _reference_logprobs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, first_pos: torch.Tensor, letter_ids: torch.Tensor
    ) -> torch.Tensor:
        """Reference log-probs: LoRA -> the same model with adapters disabled (no second copy);
        full fine-tuning -> a frozen copy of ``reference_model_name_or_path`` (default: the base
        model), loaded once, kept out of ``state_dict`` (costs one extra model in memory)."""
        width = input_ids.shape[1]
        keep = int(width - first_pos.min().item())
        if self.is_peft:
            with self.backbone.disable_adapter():
                logits = self._run(self.backbone, input_ids, attention_mask, keep)
        else:
            logits = self._run(self.reference_model(), input_ids, attention_mask, keep)
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        first = logits[rows, first_pos - (width - keep)].float()
        return torch.log_softmax(first, -1)[:, letter_ids]

    def reference_model(self) -> nn.Module:
        if not self._reference:
            path = self.options["reference_model_name_or_path"] or self.settings.model_name_or_path
            base = RankerSettings.from_dict({**self.settings.to_dict(), "lora": None, "model_name_or_path": path})
            model, _ = type(self).load_backbone(base)
            model.requires_grad_(False).eval().to(self.device)
            self._reference.append(model)
        return self._reference[0]

    # ----------------------------------------------------------------------------- inference
    @torch.inference_mode()
    def rank_windows(self, windows: Sequence[RankingList], mode: str | None = None) -> list[list[int]]:
        """Permutation (best first) of each window, all windows in one left-padded batch."""
        mode = mode or self.options["mode"]
        encs = [self.encode(w) for w in windows]
        rows = [e.prompt_ids for e in encs]
        ids, att, pos = self._left_pad(rows, [len(r) for r in rows])
        ids, att = ids.to(self.device), att.to(self.device)
        if mode == "single_token":
            logits = self._run(self.backbone, ids, att, 1)[:, -1].float()
            out = []
            for b, w in enumerate(windows):
                s = logits[b, self.ids.letter_ids[: len(w)]]
                out.append(torch.argsort(s, descending=True, stable=True).tolist())
            return out
        if mode != "generate":
            raise ValueError(f"mode must be 'single_token' or 'generate', got {mode!r}")
        n_max = max(len(w) for w in windows)
        max_new = len(self.ids.target_ids(range(n_max))) + 2
        gen = self.backbone.generate(
            input_ids=ids, attention_mask=att, max_new_tokens=max_new, do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.ids.eos_id,
        )
        texts = self.tokenizer.batch_decode(gen[:, ids.shape[1] :], skip_special_tokens=True)
        return [parse_permutation(t, len(w)) for t, w in zip(texts, windows)]

    @torch.inference_mode()
    def score_lists(self, lists: Sequence[RankingList], batch_size: int = 32) -> list[list[float]]:
        """Sliding-window FIRST reranking; scores are ``-final rank`` (1-based), so sorting by score
        reproduces the final order; candidates beyond ``top_k`` keep their first-stage order below."""
        self.eval()
        size, stride = int(self.options["window_size"]), int(self.options["stride"])
        top_k = self.options["top_k"]
        perms = [list(range(len(lst))) for lst in lists]
        plans = [sliding_windows(min(len(lst), top_k or len(lst)), size, stride) for lst in lists]
        for step in range(max((len(p) for p in plans), default=0)):
            jobs = [(q, plans[q][step]) for q in range(len(lists)) if step < len(plans[q])]
            jobs = [(q, (s, e)) for q, (s, e) in jobs if e - s > 1]
            for c in range(0, len(jobs), max(1, batch_size)):
                chunk = jobs[c : c + batch_size]
                windows = [lists[q].subset(perms[q][s:e]) for q, (s, e) in chunk]
                for (q, (s, e)), order in zip(chunk, self.rank_windows(windows)):
                    current = perms[q][s:e]
                    perms[q][s:e] = [current[i] for i in order]
        out: list[list[float]] = []
        for lst, perm in zip(lists, perms):
            scores = [0.0] * len(lst)
            for rank, i in enumerate(perm, start=1):
                scores[i] = -float(rank)
            out.append(scores)
        return out
