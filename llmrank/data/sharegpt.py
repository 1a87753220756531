"""Reader ``sharegpt``: RankZephyr/FIRST ShareGPT ``conversations`` records -> RankingList with ``order``.

The format of ``rryisthebest/rank_zephyr_training_data_alpha`` (FIRST, Reddy et al., EMNLP 2024)
and ``castorini/rank_zephyr_training_data`` (numeric identifiers): ``conversations[0]`` is the
system message, ``conversations[1]`` the user prompt with ``[A] passage`` lines and
``Search Query: ...``, ``conversations[2]`` the teacher permutation ``[B] > [A] > ...``.
Turns may be ``{"from", "value"}`` (ShareGPT) or ``{"role", "content"}``.  A teacher permutation
that misses or repeats identifiers is repaired the usual way (repeats dropped, missing appended
in prompt order).  ``labels`` are ``n - teacher_rank`` so that sorting by labels gives ``order``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from llmrank.data.readers import register_reader
from llmrank.data.record import Doc, RankingList
from llmrank.rankers.first import SYSTEM_MESSAGE, passage_text, target_text, user_message

_ID_LINE = re.compile(r"^\[([A-Z]|\d+)\] ?(.*)$")
_QUERY = re.compile(r"Search Query: (.*?)\.?\nRank the \d+ passages", re.S)
_QUERY_PREFIX = re.compile(r"relevance to the search query: (.*?)\.\n", re.S)
_TARGET_ID = re.compile(r"\[([A-Z]|\d+)\]")


def _ident_index(ident: str) -> int:
    return int(ident) - 1 if ident.isdigit() else ord(ident) - ord("A")


def _turn_text(turn: Any) -> str:
    if isinstance(turn, Mapping):
        for key in ("value", "content", "text"):
            if key in turn:
                return str(turn[key])
    return str(turn)


def parse_conversation(conversations: list[Any], qid: str) -> RankingList:
    """One ShareGPT record (system, user, assistant turns) -> RankingList with the teacher ``order``."""
    texts = [_turn_text(t) for t in conversations]
    if len(texts) < 2:
        raise ValueError(f"record {qid}: needs at least the user prompt and the ranking turns")
    user, target = texts[-2], texts[-1]
    m = _QUERY.search(user) or _QUERY_PREFIX.search(user)
    if m is None:
        raise ValueError(f"record {qid}: no 'Search Query:' in the user prompt")
    query = m.group(1).strip()
    passages: list[str] = []
    idents: list[str] = []
    for line in user.split("\n"):
        hit = _ID_LINE.match(line)
        if hit:
            idents.append(hit.group(1))
            passages.append(hit.group(2))
        elif line.startswith("Search Query:"):
            break
        elif passages and line.strip():  # a passage that spans lines
            passages[-1] += "\n" + line
    if not passages:
        raise ValueError(f"record {qid}: no '[A] passage' lines in the user prompt")
    expected = [_ident_index(i) for i in idents]
    if expected != list(range(len(passages))):
        raise ValueError(f"record {qid}: identifiers {idents} are not consecutive from the first")
    n = len(passages)
    order: list[int] = []
    for ident in _TARGET_ID.findall(target):
        k = _ident_index(ident)
        if 0 <= k < n and k not in order:
            order.append(k)
    order += [k for k in range(n) if k not in order]
    labels = [0.0] * n
    for rank, k in enumerate(order):
        labels[k] = float(n - rank)
    docs = [Doc(docid=f"{qid}-{k}", text=p) for k, p in enumerate(passages)]
    return RankingList(qid=qid, query=query, docs=docs, labels=labels, order=order, meta={"source": "sharegpt"})


def _records(path: str | Path, split: str) -> Iterator[dict[str, Any]]:
    p = Path(path)
    if p.is_file():
        if p.suffix == ".jsonl":
            with p.open(encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        yield json.loads(line)
            return
        if p.suffix == ".json":
            data = json.loads(p.read_text(encoding="utf-8"))
            yield from data if isinstance(data, list) else data.get("data", [])
            return
    import datasets  # Hub id, save_to_disk folder, or a parquet file

    if p.is_dir() and (p / "dataset_info.json").exists():
        ds = datasets.load_from_disk(str(p))
    elif p.is_file():
        ds = datasets.load_dataset(p.suffix.lstrip("."), data_files=str(p), split=split)
    else:
        ds = datasets.load_dataset(str(path), split=split)
    yield from ds


@register_reader("sharegpt")
def read_sharegpt(
    path: str | Path, split: str = "train", conversations_key: str = "conversations", limit: int | None = None
) -> list[RankingList]:
    """Read ShareGPT ranking conversations from a .jsonl/.json file, a ``save_to_disk`` folder or a Hub id.

    Keys: ``path``, ``split="train"``, ``conversations_key="conversations"``, ``limit=None``."""
    out: list[RankingList] = []
    for k, rec in enumerate(_records(path, split)):
        if limit is not None and len(out) >= limit:
            break
        conv = rec[conversations_key] if isinstance(rec, Mapping) else rec
        qid = str(rec.get("id", k)) if isinstance(rec, Mapping) else str(k)
        out.append(parse_conversation(list(conv), qid))
    return out


def to_sharegpt(lists: Iterable[RankingList], tokenizer: Any = None, max_passage_words: int = 300) -> list[dict]:
    """The inverse (for tests and data preparation): records in the alpha ShareGPT format."""
    out = []
    for lst in lists:
        order = lst.order if lst.order is not None else sorted(range(len(lst)), key=lambda i: -lst.labels[i])
        user = user_message(lst.query, [passage_text(d, max_passage_words) for d in lst.docs])
        out.append({"id": lst.qid, "conversations": [
            {"from": "system", "value": SYSTEM_MESSAGE},
            {"from": "human", "value": user},
            {"from": "gpt", "value": target_text(order)},
        ]})
    return out
