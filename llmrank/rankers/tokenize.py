"""Pre-tokenised (query, document) pairs and the pointwise machinery shared by pair rankers.

Pointwise rerankers (cross-encoders after Nogueira & Cho 2019, monoT5 -- Nogueira et al. 2020,
RankT5 -- Zhuang et al. SIGIR 2023, RankLLaMA -- Ma et al. 2023) score each (query, document)
pair independently. Training revisits the same texts every epoch, so texts are tokenised once
(:class:`TokenCache`) and pair inputs are built by concatenating cached ids with the family's
template tokens; the backbone only ever sees real pairs (padding entries of a ragged batch of
lists are never run). A training batch is collated padded to its longest pair; :meth:`PointwiseRanker.forward`
then runs it in length-sorted chunks of at most ``train_chunk_tokens`` padded tokens, each cut to
its own longest pair, so little compute goes to padding (:func:`length_chunks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from llmrank.data.record import Doc, RankingList
from llmrank.rankers.base import Ranker, RankerOutput, eval_mode, stage_ids

#: Tokenise cache misses in calls of this many texts (one batched call to the fast tokenizer).
_TOKENIZE_CHUNK = 2048

#: The keys of :meth:`PointwiseRanker.pad_pairs` whose second dimension is the (right-padded) sequence.
_SEQUENCE_KEYS = ("input_ids", "attention_mask", "token_type_ids")


class TokenCache:
    """``text -> token ids`` (no special tokens), filled by batched tokenizer calls for misses.

    Ids are stored truncated to ``max_tokens`` (no pair can use more), which bounds memory for
    long documents. The cache grows with the number of distinct texts seen; :meth:`clear` frees it.
    """

    def __init__(self, tokenizer: Any, max_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self._ids: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, text: str) -> bool:
        return text in self._ids

    def clear(self) -> None:
        self._ids.clear()

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids of every text, tokenising only the texts not seen before."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._ids))
        for start in range(0, len(missing), _TOKENIZE_CHUNK):
            chunk = missing[start : start + _TOKENIZE_CHUNK]
            encoded = self.tokenizer(chunk, add_special_tokens=False, verbose=False)["input_ids"]
            for text, ids in zip(chunk, encoded):
                self._ids[text] = list(ids[: self.max_tokens])
        return [self._ids[t] for t in texts]


@dataclass(frozen=True)
class PairTemplate:
    """``prefix + query + middle + document + suffix``; ``segment_ids`` gives BERT-style token types."""

    prefix: tuple[int, ...]
    middle: tuple[int, ...]
    suffix: tuple[int, ...]
    segment_ids: bool = False

    @property
    def overhead(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)


def encoder_pair_template(tokenizer: Any) -> PairTemplate:
    """The special tokens an encoder tokenizer puts around a text pair (``[CLS] a [SEP] b [SEP]``,
    ``<s> a </s></s> b </s>``...), found by encoding a probe pair and locating its two halves."""
    ids_a = tokenizer("a", add_special_tokens=False)["input_ids"]
    ids_b = tokenizer("b", add_special_tokens=False)["input_ids"]
    enc = tokenizer("a", "b")
    ids = list(enc["input_ids"])
    i = _find(ids, ids_a, 0)
    j = _find(ids, ids_b, i + len(ids_a)) if i >= 0 else -1
    if i < 0 or j < 0:
        if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
            raise ValueError(f"cannot infer the pair template of tokenizer {type(tokenizer).__name__}")
        return PairTemplate((tokenizer.cls_token_id,), (tokenizer.sep_token_id,), (tokenizer.sep_token_id,), True)
    segments = "token_type_ids" in enc and any(enc["token_type_ids"])
    return PairTemplate(tuple(ids[:i]), tuple(ids[i + len(ids_a) : j]), tuple(ids[j + len(ids_b) :]), segments)


def length_chunks(lengths: Sequence[int], max_tokens: int | None) -> list[list[int]]:
    """Positions ``0..len(lengths)-1`` grouped into backbone calls of at most ``max_tokens`` padded tokens.

    Positions are sorted longest first and cut greedily: a chunk takes as many pairs as fit in
    ``max_tokens`` when padded to its first (longest) pair, and at least one. Pairs of similar
    length share a chunk, so each chunk, padded to its own longest pair, wastes little on padding.
    ``max_tokens`` None or <= 0 gives one chunk in the original order.
    """
    if not max_tokens or max_tokens <= 0:
        return [list(range(len(lengths)))]
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # stable: ties keep collate order
    chunks, start = [], 0
    while start < len(order):
        rows = max(1, max_tokens // max(1, lengths[order[start]]))
        chunks.append(order[start : start + rows])
        start += rows
    return chunks


def padding_bounded_batches(lengths: Sequence[int], batch_size: int, max_padding: float | None) -> list[list[int]]:
    """Positions grouped into inference batches: longest first, at most ``batch_size`` pairs each,
    and (with ``max_padding``) cut early so that padding stays at most that fraction of a batch's
    padded tokens.

    Sorting alone leaves a batch padded to its longest pair; where lengths fall steeply (the long
    tail of passages) a batch of 32 sorted DL19 pairs is still ~30 % padding. On a CPU the cost of
    a call is its padded tokens (a call of a few sequences keeps the matrix units busy: 4 pairs of
    200 tokens are 800 rows), so smaller batches where lengths change fast and full batches where
    they do not remove that waste. ``max_padding`` None: plain batches of ``batch_size``.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # stable: ties keep input order
    step = max(1, batch_size)
    if max_padding is None:
        return [order[i : i + step] for i in range(0, len(order), step)]
    batches, start = [], 0
    while start < len(order):
        width = max(1, lengths[order[start]])
        end, real = start + 1, lengths[order[start]]
        while end < len(order) and end - start < step:
            nxt = real + lengths[order[end]]
            if (end + 1 - start) * width - nxt > max_padding * (end + 1 - start) * width:
                break
            real, end = nxt, end + 1
        batches.append(order[start:end])
        start = end
    return batches


def _find(seq: list[int], sub: list[int], start: int) -> int:
    for k in range(start, len(seq) - len(sub) + 1):
        if seq[k : k + len(sub)] == sub:
            return k
    return -1


class PointwiseRanker(Ranker):
    """A ranker that scores each (query, document) pair on its own.

    Subclasses set ``self.template`` (a :class:`PairTemplate`) in ``__init__`` and implement
    :meth:`score_pairs` (``[P]`` scores of ``P`` padded pairs). This class provides the cached
    tokenisation, :meth:`collate`, length-chunked scoring and the scatter of pair scores into
    ``[B, n]`` in :meth:`forward`, and length-sorted inference batches in :meth:`score_lists`.

    Option ``max_padding``: inference batches (:meth:`score_lists`) hold at most this fraction of
    padding (:func:`padding_bounded_batches`); default 0.05 on CPU, unbounded on accelerators.

    Option ``train_chunk_tokens`` (``RankerSettings.options``): the most padded tokens (pairs x
    padded length) one backbone call of :meth:`forward` gets; the batch's pairs are sorted by
    length and split greedily (:func:`length_chunks`). ``0`` runs the whole batch in one call
    padded to its longest pair. Without the option, batches on CPU use the family's
    ``default_train_chunk_tokens`` and batches on accelerators run in one call (:meth:`chunk_budget`).
    """

    template: PairTemplate
    #: ``train_chunk_tokens`` on CPU when the options give none; None: one call per batch.
    default_train_chunk_tokens: ClassVar[int | None] = None

    def __init__(self, backbone: Any, tokenizer: Any, settings: Any) -> None:
        super().__init__(backbone, tokenizer, settings)
        self.token_cache = TokenCache(tokenizer, settings.max_length)
        self.pad_token_id = _pad_id(tokenizer)
        chunk_tokens = settings.options.get("train_chunk_tokens")
        if chunk_tokens is not None and (type(chunk_tokens) is not int or chunk_tokens < 0):  # bool is no int here
            raise ValueError(f"option train_chunk_tokens={chunk_tokens!r}; expected an integer >= 0 (0: no chunking)")
        #: the ``train_chunk_tokens`` option (None: not given, the default applies)
        self.train_chunk_tokens: int | None = chunk_tokens
        max_padding = settings.options.get("max_padding")
        if max_padding is not None and (
            isinstance(max_padding, bool) or not isinstance(max_padding, (int, float)) or not 0 <= max_padding <= 1
        ):
            raise ValueError(f"option max_padding={max_padding!r}; expected a fraction in [0, 1] (1: plain batches)")
        #: the ``max_padding`` option (None: not given, the default applies)
        self.max_padding: float | None = max_padding

    # ----------------------------------------------------------------------------- text -> ids
    def doc_text(self, doc: Doc) -> str:
        """The document text given to the model (title and text joined BEIR-style)."""
        return doc.full_text(" ")

    def pretokenize(self, lists: Sequence[RankingList]) -> None:
        """Warm the token cache with every query and document of ``lists``."""
        texts = [t for lst in lists for t in (lst.query, *(self.doc_text(d) for d in lst.docs))]
        self.token_cache.encode(texts)

    def pair_ids(self, query_ids: Sequence[int], doc_ids: Sequence[int]) -> tuple[list[int], list[int] | None]:
        """Input ids (and token types) of one pair: the query is cut to ``query_max_length``, the
        document fills what is left of ``max_length``."""
        t = self.template
        budget = self.settings.max_length - t.overhead
        q = list(query_ids[: max(0, min(self.settings.query_max_length, budget))])
        d = list(doc_ids[: max(0, budget - len(q))])
        first = [*t.prefix, *q, *t.middle]
        second = [*d, *t.suffix]
        types = [0] * len(first) + [1] * len(second) if t.segment_ids else None
        return first + second, types

    def list_pairs(self, lists: Sequence[RankingList]) -> list[tuple[list[int], list[int] | None]]:
        """Pair ids of every document of every list, flattened in list order."""
        queries = self.token_cache.encode([lst.query for lst in lists])
        docs = self.token_cache.encode([self.doc_text(d) for lst in lists for d in lst.docs])
        out, k = [], 0
        for lst, q in zip(lists, queries):
            for _ in lst.docs:
                out.append(self.pair_ids(q, docs[k]))
                k += 1
        return out

    def pad_pairs(self, pairs: Sequence[tuple[list[int], list[int] | None]]) -> dict[str, torch.Tensor]:
        """Right-pad pairs to the longest one (dynamic padding); one tensor build per input, no per-row copies."""
        lengths = [len(ids) for ids, _ in pairs]
        length = max(lengths, default=1)
        shape = (len(pairs), length)
        pad = self.pad_token_id
        input_ids = torch.tensor([[*ids, *[pad] * (length - len(ids))] for ids, _ in pairs], dtype=torch.long)
        attention_mask = torch.arange(length) < torch.tensor(lengths, dtype=torch.long).unsqueeze(1)
        out = {"input_ids": input_ids.view(shape), "attention_mask": attention_mask.long()}
        if self.template.segment_ids:
            types = [t or [] for _, t in pairs]
            out["token_type_ids"] = torch.tensor(
                [[*t, *[0] * (length - len(t))] for t in types], dtype=torch.long
            ).view(shape)
        return out

    # ----------------------------------------------------------------------------- training
    def collate(self, lists: Sequence[RankingList]) -> dict[str, torch.Tensor]:
        """Inputs of the real pairs (``input_ids [P, L]``...), ``pair_mask [B, n]`` (where each pair
        goes, row-major) and the targets ``labels``, ``list_mask``, ``teacher_scores``, ``teacher_ranks``,
        ``stages``."""
        if not lists:
            raise ValueError("collate needs at least one list")
        batch = self.pad_pairs(self.list_pairs(lists))
        n = max(len(lst) for lst in lists)
        mask = torch.zeros((len(lists), n), dtype=torch.bool)
        labels = torch.zeros((len(lists), n), dtype=torch.float32)
        for b, lst in enumerate(lists):
            mask[b, : len(lst)] = True
            labels[b, : len(lst)] = torch.tensor(lst.labels, dtype=torch.float32)
        batch["pair_mask"] = mask
        batch["labels"] = labels
        batch["list_mask"] = mask.clone()
        if all(lst.teacher_scores is not None for lst in lists):
            teacher = torch.zeros((len(lists), n), dtype=torch.float32)
            for b, lst in enumerate(lists):
                teacher[b, : len(lst)] = torch.tensor(lst.teacher_scores, dtype=torch.float32)
            batch["teacher_scores"] = teacher
        if all(lst.order is not None for lst in lists):
            ranks = torch.zeros((len(lists), n), dtype=torch.long)  # 0 = padding, ranks are 1-based
            for b, lst in enumerate(lists):
                ranks[b, : len(lst)] = torch.tensor(lst.teacher_ranks(), dtype=torch.long)
            batch["teacher_ranks"] = ranks
        stages = stage_ids(lists, n)
        if stages is not None:
            batch["stages"] = stages
        return batch

    def score_pairs(self, **inputs: torch.Tensor) -> torch.Tensor:
        """``[P]`` scores of ``P`` padded pairs (``input_ids``, ``attention_mask``, ...)."""
        raise NotImplementedError

    def forward(self, pair_mask: torch.Tensor, **inputs: torch.Tensor) -> RankerOutput:  # type: ignore[override]
        """Score the real pairs and scatter them into ``[B, n]`` (padding entries are 0)."""
        pair_mask = pair_mask.bool()
        if inputs["input_ids"].shape[0] == 0:
            flat = torch.zeros(0, device=pair_mask.device)
        else:
            flat = self.score_chunked(inputs)
        scores = torch.zeros(pair_mask.shape, dtype=torch.float32, device=flat.device)
        scores = scores.masked_scatter(pair_mask.to(flat.device), flat)
        return RankerOutput(scores=scores, mask=pair_mask)

    def chunk_budget(self, device: torch.device) -> int | None:
        """Padded tokens per backbone call for a batch on ``device`` (None: one call): the
        ``train_chunk_tokens`` option when given, else ``default_train_chunk_tokens`` on CPU. Small
        calls cost little on CPU; accelerators need large calls to stay busy, so they chunk only
        when asked (e.g. ``train_chunk_tokens: 16384``)."""
        if self.train_chunk_tokens is not None:
            return self.train_chunk_tokens or None
        return self.default_train_chunk_tokens if device.type == "cpu" else None

    def inference_padding(self, device: torch.device) -> float | None:
        """Most padding an inference batch may hold (fraction of its padded tokens): the
        ``max_padding`` option when given, else 0.05 on CPU and no bound on accelerators (which
        want full batches; sorting already keeps their padding low)."""
        if self.max_padding is not None:
            return float(self.max_padding)
        return 0.05 if device.type == "cpu" else None

    def score_chunked(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[P]`` float32 scores of right-padded pairs, run in length-sorted chunks of at most
        ``train_chunk_tokens`` padded tokens, each cut to its own longest pair; the scores come
        back in input order through a differentiable gather. A batch within the budget is one call."""
        input_ids = inputs["input_ids"]
        budget = self.chunk_budget(input_ids.device)
        if budget is None or input_ids.numel() <= budget:
            return self.score_pairs(**inputs).float()
        lengths = inputs["attention_mask"].sum(dim=1).tolist()
        chunks = length_chunks(lengths, budget)
        parts = []
        for chunk in chunks:
            rows = torch.tensor(chunk, device=input_ids.device)
            width = max(lengths[i] for i in chunk)
            part = {k: v.index_select(0, rows) for k, v in inputs.items()}
            part.update({k: part[k][:, :width] for k in _SEQUENCE_KEYS if k in part})
            parts.append(self.score_pairs(**part).float())
        order = torch.tensor([i for chunk in chunks for i in chunk], device=input_ids.device)
        return torch.cat(parts)[torch.argsort(order)]

    # ----------------------------------------------------------------------------- inference
    @torch.inference_mode()
    def score_lists(self, lists: Sequence[RankingList], batch_size: int = 32) -> list[list[float]]:
        """Scores of every document of every list. All pairs of all lists are sorted by length and
        run ``batch_size`` pairs at a time, so little compute goes to padding."""
        with eval_mode(self):
            pairs = self.list_pairs(lists)
            flat = torch.empty(len(pairs), dtype=torch.float32)
            self.score_pairs_into(flat, pairs, range(len(pairs)), batch_size)
        return split_by_list(flat, lists)

    def score_pairs_into(
        self, out: torch.Tensor, pairs: Sequence[tuple[list[int], list[int] | None]], positions: Sequence[int], batch_size: int
    ) -> None:
        """Score ``pairs[i]`` for each ``i`` in ``positions`` into ``out[i]``, in padding-bounded batches."""
        positions = list(positions)
        device = self.device
        lengths = [len(pairs[i][0]) for i in positions]
        for batch in padding_bounded_batches(lengths, batch_size, self.inference_padding(device)):
            idx = [positions[j] for j in batch]
            inputs = {k: v.to(device) for k, v in self.pad_pairs([pairs[i] for i in idx]).items()}
            out[torch.tensor(idx)] = self.score_pairs(**inputs).float().cpu()


def split_by_list(flat: torch.Tensor, lists: Sequence[RankingList]) -> list[list[float]]:
    """Cut a flat ``[P]`` tensor of every list's scores (in list order) back into one list per query."""
    out, k = [], 0
    for lst in lists:
        out.append(flat[k : k + len(lst)].tolist())
        k += len(lst)
    return out


def _pad_id(tokenizer: Any) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id):
        if candidate is not None:
            return int(candidate)
    return 0
