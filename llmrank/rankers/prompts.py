"""Prompt templates of the yes/no LLM rerankers, as data.

Each :class:`YesNoTemplate` holds the exact strings a published reranker was trained with, the
answer token(s) it reads, how its score is formed from their logits, and how its authors cut an
input that is too long. The ``yes-no`` family (:mod:`llmrank.rankers.yes_no`) builds token ids
from a template the way the authors do, piece by piece (each piece is tokenised on its own,
without special tokens, exactly as their code does), so a published checkpoint scores the same
in llmrank as in its own code.

Built-in templates (sources: the model cards and reference code named below):

* ``qwen3-reranker`` -- Qwen3-Reranker (Zhang et al., "Qwen3 Embedding", 2025; model card usage of
  ``Qwen/Qwen3-Reranker-0.6B``): ``prefix + tok("<Instruct>: {i}\\n<Query>: {q}\\n<Document>: {d}")
  + suffix`` where the middle text is truncated (right side) to ``max_length - len(prefix) -
  len(suffix)`` tokens; score ``logit("yes") - logit("no")`` at the last position (the card reports
  ``softmax([no, yes])[1]`` = sigmoid of this).
* ``bge-reranker-v2-gemma`` -- FlagEmbedding ``decoder_only/base.py``: ``[bos] + tok("A: {q}")[:3/4
  max_length]`` and ``tok("\\n") + tok("B: {p}")[:max_length]`` joined with ``truncation="only_second"``
  at ``max_length + len(sep) + len(prompt)``, then ``+ tok("\\n") + tok(prompt)``; score = the raw
  logit of ``"Yes"`` (no ``No`` term).
* ``mxbai-rerank-v2`` -- mixedbread ``mxbai_rerank/mxbai_rerank_v2.py``: chat prefix + (``tok("query:
  {q}")[:3/4 max_length]``, ``tok("\\n") + tok("document: {d}")``) truncated ``only_second`` at
  ``max_length``, then ``+ tok("\\n") + tok(task prompt) + tok(chat suffix)``; score ``logit("1") -
  logit("0")``.

A recipe can give its own template: ``options: {template: {...}}`` with the fields of
:class:`YesNoTemplate` (``name`` optional), or a built-in name plus overrides:
``options: {template: qwen3-reranker, instruction: "..."}``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

#: How the score is formed from the answer-token logits at the last position.
#: ``difference``: l(true) - l(false) (Qwen3-Reranker, mxbai-rerank-v2; sigmoid of it = their probability);
#: ``logit``: l(true) (bge-reranker-v2-gemma); ``log_softmax``: log softmax([l(true), l(false)])[0] (monoT5-style).
SCORINGS = ("difference", "logit", "log_softmax")

#: How an over-long input is cut (each mirrors one author's code).
#: ``body``: the whole rendered ``body`` text is truncated on the right to ``max_length - len(prefix) - len(suffix)``
#: (Qwen3-Reranker); ``pair``: query and document are tokenised apart, the query cut to ``query_max_fraction`` of
#: ``max_length``, then ``(head + query, sep + doc)`` is cut ``only_second`` to the pair budget (FlagEmbedding, mxbai).
TRUNCATIONS = ("body", "pair")

#: The pair budget of ``truncation: pair``: ``max_length`` (mxbai) or ``max_length + len(suffix)`` (FlagEmbedding,
#: whose ``encode_max_length`` adds the separator and prompt lengths).
PAIR_BUDGETS = ("max_length", "max_length_plus_suffix")

QWEN3_SYSTEM = (
    "Judge whether the Document meets the requirements based on the Query and the Instruct provided. "
    'Note that the answer can only be "yes" or "no".'
)
QWEN3_DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
BGE_GEMMA_PROMPT = (
    "Given a query A and a passage B, determine whether the passage contains an answer to the query by "
    "providing a prediction of either 'Yes' or 'No'."
)
MXBAI_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
MXBAI_TASK = (
    "You are a search relevance expert who evaluates how well documents match search queries. For each "
    "query-document pair, carefully analyze the semantic relationship between them, then provide your binary "
    "relevance judgment (0 for not relevant, 1 for relevant).\nRelevance:"
)


@dataclass(frozen=True)
class YesNoTemplate:
    """A yes/no reranker's prompt, answer tokens and truncation rule.

    Token ids of a pair are ``[bos]? + ids(prefix) + middle + ids(suffix pieces)``; every string
    piece is tokenised separately without special tokens (as the authors' code does), so the
    split into pieces is part of the template. ``{instruction}``, ``{query}`` and ``{document}``
    are filled with :meth:`str.format`-style replacement (no other braces are interpreted).
    """

    name: str = "custom"
    truncation: str = "pair"
    #: text before the pair (a chat-template prefix), one piece
    prefix: str = ""
    #: ``truncation: body``: the text tokenised as one piece and truncated on the right
    body: str = "{query}\n{document}"
    #: ``truncation: pair``: the query and document texts (tokenised apart) and the separator between them
    query_format: str = "{query}"
    doc_format: str = "{document}"
    sep: str = "\n"
    #: pieces after the pair, each tokenised on its own (e.g. ``["\n", prompt, chat_suffix]``)
    suffix: tuple[str, ...] = ()
    #: ``truncation: pair``: a query prefix line used when an instruction is set (mxbai: ``instruction: {instruction}``)
    instruction_format: str | None = None
    #: the instruction filled into ``{instruction}`` (None: none)
    instruction: str | None = None
    add_bos: bool = False
    true_token: str = "yes"
    false_token: str | None = "no"
    scoring: str = "difference"
    #: ``truncation: pair``: queries keep at most ``int(max_length * fraction)`` tokens (integer floor, as ``3 // 4``)
    query_max_fraction: float | None = 0.75
    pair_budget: str = "max_length"
    #: the published model this template reproduces (documentation only)
    model: str = ""
    #: the authors' default ``max_length`` (a loader of the published model sets ``model.max_length`` to it)
    default_max_length: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.truncation not in TRUNCATIONS:
            raise ValueError(f"template {self.name!r}: truncation {self.truncation!r} is not one of {', '.join(TRUNCATIONS)}")
        if self.scoring not in SCORINGS:
            raise ValueError(f"template {self.name!r}: scoring {self.scoring!r} is not one of {', '.join(SCORINGS)}")
        if self.pair_budget not in PAIR_BUDGETS:
            raise ValueError(f"template {self.name!r}: pair_budget {self.pair_budget!r} is not one of {', '.join(PAIR_BUDGETS)}")
        if self.scoring in ("difference", "log_softmax") and not self.false_token:
            raise ValueError(f"template {self.name!r}: scoring {self.scoring!r} needs a false_token (e.g. 'no')")
        if self.truncation == "body" and "{document}" not in self.body:
            raise ValueError(f"template {self.name!r}: body {self.body!r} has no {{document}} placeholder")
        if self.query_max_fraction is not None and not 0 < self.query_max_fraction <= 1:
            raise ValueError(f"template {self.name!r}: query_max_fraction must be in (0, 1], got {self.query_max_fraction}")

    # ------------------------------------------------------------------------------ text
    def render_body(self, query: str, document: str) -> str:
        """The ``body`` text of one pair (``truncation: body``)."""
        return fill(self.body, instruction=self.instruction or "", query=query, document=document)

    def render_query(self, query: str) -> str:
        """The query text of one pair (``truncation: pair``), with the instruction line when set."""
        text = fill(self.query_format, instruction=self.instruction or "", query=query)
        if self.instruction and self.instruction_format:
            text = fill(self.instruction_format, instruction=self.instruction) + self.sep + text
        return text

    def render_doc(self, document: str) -> str:
        return fill(self.doc_format, instruction=self.instruction or "", document=document)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["suffix"] = list(self.suffix)
        return out


def fill(text: str, **values: str) -> str:
    """Replace ``{name}`` placeholders literally (queries and documents may contain braces)."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


TEMPLATES: dict[str, YesNoTemplate] = {
    "qwen3-reranker": YesNoTemplate(
        name="qwen3-reranker",
        truncation="body",
        prefix=f"<|im_start|>system\n{QWEN3_SYSTEM}<|im_end|>\n<|im_start|>user\n",
        body="<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}",
        suffix=("<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",),
        instruction=QWEN3_DEFAULT_INSTRUCTION,
        true_token="yes",
        false_token="no",
        scoring="difference",
        query_max_fraction=None,
        model="Qwen/Qwen3-Reranker-0.6B (also 4B, 8B)",
        default_max_length=8192,
    ),
    "bge-reranker-v2-gemma": YesNoTemplate(
        name="bge-reranker-v2-gemma",
        truncation="pair",
        query_format="A: {query}",
        doc_format="B: {document}",
        sep="\n",
        suffix=("\n", BGE_GEMMA_PROMPT),
        add_bos=True,
        true_token="Yes",
        false_token=None,
        scoring="logit",
        query_max_fraction=0.75,
        pair_budget="max_length_plus_suffix",
        model="BAAI/bge-reranker-v2-gemma",
        default_max_length=512,
    ),
    "mxbai-rerank-v2": YesNoTemplate(
        name="mxbai-rerank-v2",
        truncation="pair",
        prefix=f"<|im_start|>system\n{MXBAI_SYSTEM}<|im_end|>\n<|im_start|>user\n",
        query_format="query: {query}",
        doc_format="document: {document}",
        sep="\n",
        suffix=("\n", MXBAI_TASK, "<|im_end|>\n<|im_start|>assistant\n"),
        instruction_format="instruction: {instruction}",
        true_token="1",
        false_token="0",
        scoring="difference",
        query_max_fraction=0.75,
        pair_budget="max_length",
        model="mixedbread-ai/mxbai-rerank-base-v2 / -large-v2",
        default_max_length=8192,
    ),
}

#: the default template of a fresh ``yes-no`` ranker
DEFAULT_TEMPLATE = "qwen3-reranker"

_FIELDS = {f.name for f in fields(YesNoTemplate)}


def get_template(spec: str | dict[str, Any] | None = None, **overrides: Any) -> YesNoTemplate:
    """A template from a registry name, a dict of fields (a custom template, optionally ``base:
    <name>`` to start from a built-in one), or None (the default), with ``overrides`` applied
    (e.g. ``instruction``). Unknown names and fields are clear errors."""
    if spec is None:
        spec = DEFAULT_TEMPLATE
    if isinstance(spec, str):
        if spec not in TEMPLATES:
            raise ValueError(f"unknown yes/no template {spec!r}; known: {', '.join(sorted(TEMPLATES))} (or a dict of fields)")
        base, values = TEMPLATES[spec], {}
    elif isinstance(spec, dict):
        values = dict(spec)
        base_name = values.pop("base", None)
        if base_name is not None and base_name not in TEMPLATES:
            raise ValueError(f"options.template.base {base_name!r} is not one of {', '.join(sorted(TEMPLATES))}")
        base = TEMPLATES[base_name] if base_name else YesNoTemplate()
        values.setdefault("name", base.name if base_name else "custom")
    else:
        raise ValueError(f"options.template must be a template name or a mapping of fields, got {type(spec).__name__}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - _FIELDS)
    if unknown:
        raise ValueError(f"options.template: unknown field(s) {unknown}; valid: {sorted(_FIELDS - {'extra'})}")
    if "suffix" in values:
        suffix = values["suffix"]
        values["suffix"] = (suffix,) if isinstance(suffix, str) else tuple(suffix)
    return replace(base, **values)
